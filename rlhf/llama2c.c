/* llama2c.c: reading and writing llama2.c model checkpoints (karpathy/llama2.c, export.py).
 *
 * Two fp32 layouts exist. Both hold the same tensors; only the header and the section order differ.
 *
 *   v0 (legacy_export), little-endian:
 *     int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len     (28 bytes)
 *       vocab_size > 0: the classifier is the token embedding (tied); < 0: untied, |vocab_size|
 *     tok_embeddings (V,C) | attention_norm (L,C) | wq (L,NH*HS,C) | wk (L,NKV*HS,C) |
 *     wv (L,NKV*HS,C) | wo (L,C,NH*HS) | ffn_norm (L,C) | w1 (L,FF,C) | w2 (L,C,FF) |
 *     w3 (L,FF,C) | norm (C) | freq_cis_real (seq_len,HS/2) | freq_cis_imag (seq_len,HS/2) |
 *     wcls (V,C) only when untied
 *   v1 (version1_export):
 *     uint32 magic 0x616b3432 ("ak42") | int32 version 1 | the 7 int32 above (vocab_size > 0) |
 *     uint8 shared_classifier | zero padding to 256 bytes
 *     attention_norm (L,C) | ffn_norm (L,C) | norm (C) | tok_embeddings (V,C) | wq | wk | wv |
 *     wo | w1 | w2 | w3 | wcls (V,C) only when not shared
 *
 * The in-memory parameter buffer follows rlhf_param_table() (rlhf.h), which is the v0 order
 * without the RoPE tables. This file never computes offsets itself: each version is a list of
 * sections, each section one table entry (or the v0 RoPE tables), so a change of the table cannot
 * silently misplace a tensor.
 *
 * The v0 RoPE tables are dead bytes (run.c and our model compute RoPE themselves), but the files
 * llama2.c's export.py wrote hold PyTorch's float32 values, which differ from ours (computed in C,
 * float32 as model.py does) in the last bit of a third or so of the values. rlhf_llama2c_read_ex
 * hands them back as stored and rlhf_llama2c_write_ex writes given tables, so a conversion
 * (llama2.c -> Hugging Face -> llama2.c, which keeps them in safetensors metadata) reproduces a
 * file byte for byte; without given tables the writer recomputes them.
 *
 * Reads are exact: the file size must equal header + sections, every header field is checked
 * before anything is allocated, and any mismatch is RLHF_ERR_FORMAT naming the file. Writes go to
 * PATH.tmp, are flushed and fsync'ed, then renamed over PATH.
 *
 * Assumes a little-endian host (checked at run time: RLHF_ERR_UNSUPPORTED otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rlhf.h"

#define L2C_MAGIC     0x616b3432u /* "ak42" as export.py writes it: struct.pack('I', 0x616b3432) */
#define L2C_V0_HEADER 28          /* 7 int32 */
#define L2C_V1_HEADER 256

/* Upper bounds on header fields: far beyond any Llama-2 size, small enough that every size
 * computed below fits in int64 (V*C <= 2^40, L*FF*C <= 2^48, seq_len*HS <= 2^40). */
#define L2C_MAX_DIM    (1 << 16)
#define L2C_MAX_HIDDEN (1 << 20)
#define L2C_MAX_LAYERS (1 << 12)
#define L2C_MAX_VOCAB  (1 << 24)
#define L2C_MAX_SEQ    (1 << 24)

/* A file section: a parameter table entry, or the v0 RoPE tables (cos then sin). */
#define L2C_SEC_FREQ (-1)

static const int v0_sections[] = {
    RLHF_P_TOK_EMB, RLHF_P_ATTN_NORM, RLHF_P_WQ,   RLHF_P_WK, RLHF_P_WV,
    RLHF_P_WO,      RLHF_P_FFN_NORM,  RLHF_P_W1,   RLHF_P_W2, RLHF_P_W3,
    RLHF_P_NORM,    L2C_SEC_FREQ,     RLHF_P_HEAD,
};
static const int v1_sections[] = {
    RLHF_P_ATTN_NORM, RLHF_P_FFN_NORM, RLHF_P_NORM, RLHF_P_TOK_EMB, RLHF_P_WQ, RLHF_P_WK,
    RLHF_P_WV,        RLHF_P_WO,       RLHF_P_W1,   RLHF_P_W2,      RLHF_P_W3, RLHF_P_HEAD,
};
#define L2C_NSEC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static bool host_little_endian(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static int32_t get_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void put_i32(unsigned char *p, int32_t v) { memcpy(p, &v, 4); }

/* Checks the seven header sizes (vocab as a magnitude) against the divisibility rules and the
 * bounds above. On failure records status s with a message "<what>: <why>" naming the field.
 * Cannot fail otherwise. */
static rlhf_status check_dims(rlhf_status s, const char *what, int32_t dim, int32_t hidden,
                              int32_t layers, int32_t heads, int32_t kv_heads, int32_t vocab,
                              int32_t seq) {
    static const char *names[7] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                                   "n_kv_heads", "vocab_size", "seq_len"};
    const int32_t v[7] = {dim, hidden, layers, heads, kv_heads, vocab, seq};
    const int32_t max[7] = {L2C_MAX_DIM, L2C_MAX_HIDDEN, L2C_MAX_LAYERS, L2C_MAX_DIM,
                            L2C_MAX_DIM, L2C_MAX_VOCAB,  L2C_MAX_SEQ};
    for (int i = 0; i < 7; i++) {
        if (v[i] <= 0) return RLHF_ERR(s, "%s: %s %d must be positive", what, names[i], v[i]);
        if (v[i] > max[i])
            return RLHF_ERR(s, "%s: %s %d exceeds the limit %d", what, names[i], v[i], max[i]);
    }
    if (dim % heads != 0)
        return RLHF_ERR(s, "%s: n_heads %d does not divide dim %d", what, heads, dim);
    if (heads % kv_heads != 0)
        return RLHF_ERR(s, "%s: n_kv_heads %d does not divide n_heads %d", what, kv_heads, heads);
    if ((dim / heads) % 2 != 0)
        return RLHF_ERR(s, "%s: head size %d (dim %d / n_heads %d) must be even for RoPE", what,
                        dim / heads, dim, heads);
    return RLHF_OK;
}

/* Floats in one section for config c with table t. */
static int64_t section_numel(int sec, const rlhf_model_config *c,
                             const rlhf_param_info t[RLHF_P_COUNT]) {
    if (sec == L2C_SEC_FREQ) return (int64_t)c->seq_len * (c->dim / c->n_head); /* 2 x (T,HS/2) */
    return t[sec].numel;
}

/* Total bytes of a file of this version and config (header included). Cannot fail. */
static int64_t expected_bytes(int version, const rlhf_model_config *c,
                              const rlhf_param_info t[RLHF_P_COUNT]) {
    const int *secs = version == 0 ? v0_sections : v1_sections;
    const int nsec = version == 0 ? L2C_NSEC(v0_sections) : L2C_NSEC(v1_sections);
    int64_t floats = 0;
    for (int i = 0; i < nsec; i++)
        floats += section_numel(secs[i], c, t);
    return (version == 0 ? L2C_V0_HEADER : L2C_V1_HEADER) + 4 * floats;
}

/* Config read from a header: head LM, llama2.c's fixed eps and theta, not trainable. */
static rlhf_model_config header_config(const int32_t h[7], bool shared) {
    rlhf_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = h[0];
    c.hidden_dim = h[1];
    c.n_layer = h[2];
    c.n_head = h[3];
    c.n_head_kv = h[4];
    c.vocab_size = h[5];
    c.seq_len = h[6];
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tied_head = shared;
    c.head = RLHF_HEAD_LM;
    c.trainable = false;
    return c;
}

/* Contract: NULL-safe; frees x->freq and zeroes *x. Cannot fail. */
void rlhf_llama2c_extra_free(rlhf_llama2c_extra *x) {
    if (!x) return;
    rlhf_free(x->freq);
    memset(x, 0, sizeof *x);
}

/* Contract: on success *c is filled, *params owns P floats in table order (rlhf_free) and, when x
 * is not NULL, *x holds the file's v0 RoPE tables (x->freq owned by the caller) or none (v1). On
 * failure *params is NULL, *x zeroed, *c unspecified, and rlhf_last_error() names the file:
 * RLHF_ERR_ARG (NULL arguments), RLHF_ERR_IO (cannot open/stat/read), RLHF_ERR_FORMAT (header,
 * size or version problems), RLHF_ERR_NOMEM, RLHF_ERR_UNSUPPORTED (big-endian host). */
rlhf_status rlhf_llama2c_read_ex(const char *path, rlhf_model_config *c, float **params,
                                 rlhf_llama2c_extra *x) {
    if (params) *params = NULL;
    if (x) memset(x, 0, sizeof *x);
    if (!path || !c || !params)
        return RLHF_ERR(RLHF_ERR_ARG, "llama2c_read: path, config and params must not be NULL");
    if (!host_little_endian())
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED,
                        "%s: llama2.c files are little-endian; this host "
                        "is not",
                        path);

    rlhf_status st = RLHF_OK;
    float *buf = NULL, *freq = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    const int64_t size = (int64_t)sb.st_size;

    /* Header: v1 when the first four bytes are the magic, else v0. */
    unsigned char hdr[L2C_V1_HEADER];
    const size_t want = size < L2C_V1_HEADER ? (size_t)size : L2C_V1_HEADER;
    if (fread(hdr, 1, want, f) != want) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: read error in the header: %s", path, strerror(errno));
        goto done;
    }
    uint32_t magic = 0;
    if (size >= 4) memcpy(&magic, hdr, 4);
    const int version = magic == L2C_MAGIC ? 1 : 0;
    const int64_t hbytes = version == 1 ? L2C_V1_HEADER : L2C_V0_HEADER;
    if (size < hbytes) {
        st = RLHF_ERR(RLHF_ERR_FORMAT,
                      "%s: truncated: %lld bytes is shorter than the %lld-byte llama2.c v%d header",
                      path, (long long)size, (long long)hbytes, version);
        goto done;
    }
    int32_t h[7];
    bool shared;
    if (version == 1) {
        const int32_t ver = get_i32(hdr + 4);
        if (ver != 1) {
            st = RLHF_ERR(RLHF_ERR_FORMAT,
                          "%s: llama2.c \"ak42\" file of version %d; only version 1 (fp32) is "
                          "supported%s",
                          path, ver, ver == 2 ? " (version 2 is int8-quantized)" : "");
            goto done;
        }
        for (int i = 0; i < 7; i++)
            h[i] = get_i32(hdr + 8 + 4 * i);
        if (h[5] <= 0) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: vocab_size %d must be positive in a v1 header",
                          path, h[5]);
            goto done;
        }
        const unsigned char flag = hdr[36];
        if (flag > 1) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: shared_classifier flag is %u, not 0 or 1", path,
                          (unsigned)flag);
            goto done;
        }
        shared = flag == 1;
    } else {
        for (int i = 0; i < 7; i++)
            h[i] = get_i32(hdr + 4 * i);
        if (h[5] == INT32_MIN) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: vocab_size %d is out of range", path, h[5]);
            goto done;
        }
        shared = h[5] > 0;
        if (h[5] < 0) h[5] = -h[5];
    }
    RLHF_TRY_GOTO(st, check_dims(RLHF_ERR_FORMAT, path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]),
                  done);

    *c = header_config(h, shared);
    rlhf_param_info t[RLHF_P_COUNT];
    const int64_t P = rlhf_param_table(c, t);
    const int64_t expect = expected_bytes(version, c, t);
    if (size != expect) {
        st = RLHF_ERR(RLHF_ERR_FORMAT,
                      "%s: %s: expected %lld bytes for dim %d hidden_dim %d n_layers %d n_heads %d "
                      "n_kv_heads %d vocab_size %d seq_len %d (%s classifier, llama2.c v%d), got "
                      "%lld",
                      path, size < expect ? "truncated" : "oversized", (long long)expect, h[0],
                      h[1], h[2], h[3], h[4], h[5], h[6], shared ? "shared" : "separate", version,
                      (long long)size);
        goto done;
    }

    RLHF_TRY_GOTO(st, rlhf_alloc((void **)&buf, (size_t)P * sizeof(float)), done);
    if (fseeko(f, (off_t)hbytes, SEEK_SET) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
        goto done;
    }
    const int *secs = version == 0 ? v0_sections : v1_sections;
    const int nsec = version == 0 ? L2C_NSEC(v0_sections) : L2C_NSEC(v1_sections);
    int64_t filled = 0;
    for (int i = 0; i < nsec; i++) {
        const int64_t n = section_numel(secs[i], c, t);
        if (n == 0) continue;
        if (secs[i] == L2C_SEC_FREQ) { /* RoPE tables: kept for x, else skipped */
            if (x) {
                RLHF_TRY_GOTO(st, rlhf_alloc((void **)&freq, (size_t)n * sizeof(float)), done);
                if (fread(freq, sizeof(float), (size_t)n, f) != (size_t)n) {
                    st = ferror(f) ? RLHF_ERR(RLHF_ERR_IO, "%s: read error in the RoPE tables: %s",
                                              path, strerror(errno))
                                   : RLHF_ERR(RLHF_ERR_FORMAT,
                                              "%s: file shrank while reading the RoPE tables",
                                              path);
                    goto done;
                }
            } else if (fseeko(f, (off_t)(4 * n), SEEK_CUR) != 0) {
                st = RLHF_ERR(RLHF_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
                goto done;
            }
            continue;
        }
        if (fread(buf + t[secs[i]].offset, sizeof(float), (size_t)n, f) != (size_t)n) {
            st = ferror(f) ? RLHF_ERR(RLHF_ERR_IO, "%s: read error in %s: %s", path,
                                      t[secs[i]].name, strerror(errno))
                           : RLHF_ERR(RLHF_ERR_FORMAT, "%s: file shrank while reading %s", path,
                                      t[secs[i]].name);
            goto done;
        }
        filled += n;
    }
    RLHF_ASSERT(filled == P); /* the sections cover the table exactly */
    *params = buf;
    buf = NULL;
    if (x && freq) {
        x->seq_len = c->seq_len;
        x->half = c->dim / c->n_head / 2;
        x->freq = freq;
        freq = NULL;
    }
done:
    rlhf_free(buf);
    rlhf_free(freq);
    fclose(f);
    return st;
}

/* Contract: rlhf_llama2c_read_ex without the extras. */
rlhf_status rlhf_llama2c_read(const char *path, rlhf_model_config *c, float **params) {
    return rlhf_llama2c_read_ex(path, c, params, NULL);
}

/* Writes n bytes, recording an I/O error that names path. */
static rlhf_status write_all(FILE *f, const void *p, size_t n, const char *path) {
    if (n && fwrite(p, 1, n, f) != n)
        return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return RLHF_OK;
}

/* Contract: see rlhf.h. The v0 RoPE tables as llama2.c's model.py computes them (float32):
 * freqs[i] = 1 / theta^(2i/HS), cos/sin of outer(arange(seq_len), freqs), each (seq_len, HS/2).
 * c must have passed check_dims (n_head > 0). Cannot fail. */
void rlhf_llama2c_freqs(const rlhf_model_config *c, float *freq) {
    const int hs = c->dim / c->n_head, half = hs / 2;
    const int64_t plane = (int64_t)c->seq_len * half;
    for (int32_t p = 0; p < c->seq_len; p++)
        for (int i = 0; i < half; i++) {
            const float f = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hs);
            const float ang = (float)p * f;
            freq[(int64_t)p * half + i] = cosf(ang);
            freq[plane + (int64_t)p * half + i] = sinf(ang);
        }
}

/* Writes the v0 RoPE tables: x's when given, else recomputed (rlhf_llama2c_freqs). */
static rlhf_status write_freqs(FILE *f, const rlhf_model_config *c, const rlhf_llama2c_extra *x,
                               const char *path) {
    const size_t n = 2 * (size_t)c->seq_len * (size_t)(c->dim / c->n_head / 2);
    if (x && x->freq) return write_all(f, x->freq, n * sizeof(float), path);
    float *freq = malloc(n * sizeof(float));
    if (!freq) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %zu floats", path, n);
    rlhf_llama2c_freqs(c, freq);
    const rlhf_status st = write_all(f, freq, n * sizeof(float), path);
    free(freq);
    return st;
}

/* Contract: writes version 0 or 1 of the LM model (c, params in table order; v0 RoPE tables from
 * x when x and x->freq are not NULL, else recomputed) to PATH.tmp, flushes and fsyncs it, and
 * renames it to path; on failure PATH is untouched and PATH.tmp removed.
 * RLHF_ERR_ARG: NULL arguments, version not 0/1, a scalar head, a config the format cannot hold
 * (invalid sizes, norm_eps != 1e-5 or rope_theta != 10000, which llama2.c hard-codes), tables of
 * another shape than c's (seq_len, HS/2). RLHF_ERR_IO: cannot create/write/sync/rename. */
rlhf_status rlhf_llama2c_write_ex(const char *path, const rlhf_model_config *c,
                                  const float *params, int version, const rlhf_llama2c_extra *x) {
    if (!path || !c || !params)
        return RLHF_ERR(RLHF_ERR_ARG, "llama2c_write: path, config and params must not be NULL");
    if (version != 0 && version != 1)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: llama2.c version %d not writable (0 or 1)", path,
                        version);
    if (c->head != RLHF_HEAD_LM)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: llama2.c checkpoints hold LM-head models only", path);
    if (!host_little_endian())
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED,
                        "%s: llama2.c files are little-endian; this host "
                        "is not",
                        path);
    RLHF_TRY(check_dims(RLHF_ERR_ARG, path, c->dim, c->hidden_dim, c->n_layer, c->n_head,
                        c->n_head_kv, c->vocab_size, c->seq_len));
    if (c->norm_eps != 1e-5f || c->rope_theta != 10000.0f)
        return RLHF_ERR(RLHF_ERR_ARG,
                        "%s: llama2.c fixes norm_eps 1e-5 and rope_theta 10000 (config has %g, %g)",
                        path, (double)c->norm_eps, (double)c->rope_theta);
    if (version == 0 && x && x->freq &&
        (x->seq_len != c->seq_len || x->half != c->dim / c->n_head / 2))
        return RLHF_ERR(RLHF_ERR_ARG,
                        "%s: given RoPE tables are (2, %d, %d) but the config implies (2, %d, %d)",
                        path, x->seq_len, x->half, c->seq_len, c->dim / c->n_head / 2);

    rlhf_param_info t[RLHF_P_COUNT];
    (void)rlhf_param_table(c, t);

    unsigned char hdr[L2C_V1_HEADER];
    memset(hdr, 0, sizeof hdr);
    const int32_t h[7] = {c->dim,       c->hidden_dim, c->n_layer, c->n_head,
                          c->n_head_kv, c->vocab_size, c->seq_len};
    size_t hbytes;
    if (version == 0) {
        for (int i = 0; i < 7; i++)
            put_i32(hdr + 4 * i, h[i]);
        if (!c->tied_head) put_i32(hdr + 20, -c->vocab_size); /* negative: untied classifier */
        hbytes = L2C_V0_HEADER;
    } else {
        const uint32_t magic = L2C_MAGIC;
        memcpy(hdr, &magic, 4);
        put_i32(hdr + 4, 1);
        for (int i = 0; i < 7; i++)
            put_i32(hdr + 8 + 4 * i, h[i]);
        hdr[36] = c->tied_head ? 1 : 0;
        hbytes = L2C_V1_HEADER;
    }

    const size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate a path", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    rlhf_status st = RLHF_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    RLHF_TRY_GOTO(st, write_all(f, hdr, hbytes, tmp), fail);
    const int *secs = version == 0 ? v0_sections : v1_sections;
    const int nsec = version == 0 ? L2C_NSEC(v0_sections) : L2C_NSEC(v1_sections);
    for (int i = 0; i < nsec; i++) {
        if (secs[i] == L2C_SEC_FREQ) {
            RLHF_TRY_GOTO(st, write_freqs(f, c, x, tmp), fail);
            continue;
        }
        const rlhf_param_info *p = &t[secs[i]];
        RLHF_TRY_GOTO(st, write_all(f, params + p->offset, (size_t)p->numel * sizeof(float), tmp),
                      fail);
    }
    if (fflush(f) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: flush failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fsync(fileno(f)) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
        goto fail;
    }
    const int rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    free(tmp);
    return RLHF_OK;
fail:
    if (f) fclose(f);
    remove(tmp);
    free(tmp);
    return st;
}

/* Contract: rlhf_llama2c_write_ex with recomputed RoPE tables. */
rlhf_status rlhf_llama2c_write(const char *path, const rlhf_model_config *c, const float *params,
                               int version) {
    return rlhf_llama2c_write_ex(path, c, params, version, NULL);
}

/* Contract: reads path, then creates a model on be (trainable as given) with max batch max_B and
 * max positions max_T (0 = the file's seq_len) holding its weights. *out is NULL on failure. */
rlhf_status rlhf_model_load_llama2c(rlhf_model **out, const char *path, const rlhf_backend *be,
                                    bool trainable, int32_t max_B, int32_t max_T) {
    if (!out) return RLHF_ERR(RLHF_ERR_ARG, "model_load_llama2c: out must not be NULL");
    *out = NULL;
    rlhf_model_config c;
    float *params = NULL;
    rlhf_model *m = NULL;
    rlhf_status st;
    RLHF_TRY(rlhf_llama2c_read(path, &c, &params));
    c.trainable = trainable;
    RLHF_TRY_GOTO(st, rlhf_model_init(&m, &c, be, max_B, max_T ? max_T : c.seq_len), fail);
    RLHF_TRY_GOTO(st, rlhf_model_set_params(m, params), fail);
    rlhf_free(params);
    *out = m;
    return RLHF_OK;
fail:
    rlhf_model_free(m);
    rlhf_free(params);
    return st;
}
