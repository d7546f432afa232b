/* test_hf.c: safetensors files (rlhf/safetensors.c) and Hugging Face Llama directories (rlhf/hf.c).
 *
 *   S1 safetensors round trips: F32 bitwise with metadata and 8-byte header alignment; BF16 equal
 *      to round-to-nearest-even (hand-checked ties, NaN, inf) and within 2^-8 relative; an F16
 *      file built by hand here (known bit patterns incl. subnormal, inf) read as fp32
 *   S2 corrupt safetensors, each RLHF_ERR_FORMAT naming the file (and tensor): too short, header
 *      length larger than the file, bad JSON, non-object header, offsets past the end, overlapping
 *      offsets, shape/size mismatch, unknown dtype, duplicate names, negative shape, bad
 *      __metadata__, a valid file truncated by one byte; a missing file is RLHF_ERR_IO
 *   H1 random untied GQA model: HF write/read is bitwise, config equal, tensor names and shapes as
 *      transformers writes them, q/k rows in HF's order (checked against transformers' permute
 *      written here with view/transpose index arithmetic), logits of both models identical
 *   H2 ../shared/models/stories260K.bin (GQA, tied): llama2.c -> HF -> llama2.c without the extras
 *      byte-identical to a direct rewrite; with them (rlhf_*_ex: PyTorch's RoPE tables in the
 *      safetensors metadata) byte-identical to the original; logits identical, and the logits
 *      of the HF-loaded model match tests/fixtures/hf_stories260K_logits.bin (written by
 *      experiments/hf_reference/hf_llama_reference.py, transformers' math on the same HF dir) within 1e-4
 *   H3 sharded write (index + shards, also a shard limit below one tensor's size) reads back equal
 *      to the unsharded one
 *   H4 BF16 HF write/read equals the bf16 rounding of every parameter
 *   H5 scalar head: score.weight (1, C), LlamaForSequenceClassification, num_labels 1; round trip
 *      and values identical
 *   H6 atomic directory writes: non-empty target refused unless overwrite, empty target filled,
 *      overwrite replaces, no temporary directories left behind
 *   H7 corrupt HF dirs: shape vs config mismatch, missing tensor, unexpected tensor, config.json
 *      missing fields / wrong types / bad JSON / absent, index pointing at a missing shard or
 *      outside the directory, truncated shard, num_labels 2, rope_scaling
 *   H8 rlhf_checkpoint_read / rlhf_model_load dispatch on a .bin and a directory
 *   B1 base64: RFC 4648 vectors, round trips of every length 0..70, strict rejection (length, bad
 *      characters, padding before the end, unused bits set, "====")
 *   H9 llama2.c RoPE tables in __metadata__: tables equal to ours give no key; one-ulp changes are
 *      stored (first shard only when sharded) and come back bit for bit through HF and llama2.c
 *      v0 (v1 ignores them); wrong-shape tables are RLHF_ERR_ARG; a key without the other, a bad
 *      shape, bad base64, a wrong byte count are RLHF_ERR_FORMAT naming the file and key; tables
 *      of another config's shape are ignored
 * H2 needs ../shared/models/stories260K.bin: when missing, the rest runs and the test exits 77
 * (unless something failed). */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rlhf.h"
#include "test.h"

static char tmpdir[256];
static int missing_shared = 0;

/* ---- helpers ------------------------------------------------------------------------------------
 */

static void rm_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
                rm_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* A safetensors file from a header text and n_data bytes of data (value i & 0xff). */
static void make_st(const char *path, const char *header, size_t n_data) {
    const uint64_t hl = strlen(header);
    size_t n = 8 + hl + n_data;
    unsigned char *b = malloc(n);
    memcpy(b, &hl, 8);
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < n_data; i++)
        b[8 + hl + i] = (unsigned char)i;
    write_bytes(path, b, n);
    free(b);
}

static int count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

/* Checks that got is the expected failure and that the last error contains each non-NULL word;
 * prints the error text so the log shows what a user would read. */
static void expect_fail(int line, rlhf_status got, rlhf_status want, const char *w1, const char *w2,
                        const char *tag) {
    const char *e = rlhf_last_error();
    const char *words[2] = {w1, w2};
    test_checks++;
    bool ok = got == want;
    for (int i = 0; i < 2; i++)
        ok = ok && (!words[i] || strstr(e, words[i]));
    if (!ok) {
        test_failures++;
        fprintf(stderr, "FAIL %s:%d: %s: got %s (%s), want %s naming \"%s\" and \"%s\"\n", __FILE__,
                line, tag, rlhf_status_name(got), e, rlhf_status_name(want), w1 ? w1 : "",
                w2 ? w2 : "");
    }
    printf("  %-34s -> %s\n", tag, e);
}
#define CHECK_FAILS(expr, want, w1, w2, tag)                                                       \
    expect_fail(__LINE__, (expr), (want), (w1), (w2), (tag))

static rlhf_model_config make_config(int dim, int hidden, int layers, int heads, int kv, int vocab,
                                     int seq, bool tied, rlhf_head head) {
    rlhf_model_config c = rlhf_config_default();
    c.dim = dim;
    c.hidden_dim = hidden;
    c.n_layer = layers;
    c.n_head = heads;
    c.n_head_kv = kv;
    c.vocab_size = vocab;
    c.seq_len = seq;
    c.tied_head = tied;
    c.head = head;
    c.trainable = false;
    return c;
}

static bool same_config(const rlhf_model_config *a, const rlhf_model_config *b) {
    return a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layer == b->n_layer &&
           a->n_head == b->n_head && a->n_head_kv == b->n_head_kv &&
           a->vocab_size == b->vocab_size && a->seq_len == b->seq_len &&
           a->norm_eps == b->norm_eps && a->rope_theta == b->rope_theta && a->head == b->head &&
           (a->head == RLHF_HEAD_SCALAR || a->tied_head == b->tied_head);
}

/* P distinct random values (every tensor differs from every other, norms around 1). */
static float *random_params(const rlhf_model_config *c, uint64_t seed, int64_t *P) {
    rlhf_param_info t[RLHF_P_COUNT];
    *P = rlhf_param_table(c, t);
    float *p = malloc((size_t)*P * sizeof(float));
    rlhf_rng r;
    rlhf_rng_seed(&r, seed, 7);
    for (int i = 0; i < RLHF_P_COUNT; i++)
        for (int64_t j = 0; j < t[i].numel; j++) {
            const float z = rlhf_rng_normal(&r);
            p[t[i].offset + j] = t[i].cols == 1 ? 1.0f + 0.1f * z : 0.3f * z;
        }
    return p;
}

/* Forward of (B,T) tokens; out gets logits (B,T,V) or values (B,T). */
static rlhf_status model_out(const rlhf_model_config *c0, const float *params, const int32_t *tok,
                             int32_t B, int32_t T, float *out) {
    rlhf_model_config c = *c0;
    c.trainable = false;
    rlhf_model *m = NULL;
    rlhf_status st;
    RLHF_TRY(rlhf_model_init(&m, &c, NULL, B, T));
    RLHF_TRY_GOTO(st, rlhf_model_set_params(m, params), done);
    RLHF_TRY_GOTO(st, rlhf_model_forward(m, tok, B, T), done);
    if (c.head == RLHF_HEAD_LM)
        st = rlhf_model_get_logits(m, out);
    else
        st = rlhf_model_values(m, out);
done:
    rlhf_model_free(m);
    return st;
}

static void path_in(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* ---- S1
 * -------------------------------------------------------------------------------------------- */

static void test_st_roundtrip(void) {
    printf("S1 safetensors round trips\n");
    char path[512];
    path_in(path, sizeof path, "s1.safetensors");
    float a[6] = {1.5f, -2.25f, 3e-20f, 1e20f, -0.0f, 7.0f}, b[3] = {0.1f, 0.2f, 0.3f}, s = 42.0f;
    rlhf_st_write_tensor w[3] = {
        {"alpha.weight", 2, {2, 3}, a}, {"beta", 1, {3}, b}, {"gamma.scalar", 0, {0}, &s}};
    const char *meta[] = {"format", "pt", "note", "hello", NULL};
    CHECK_OK(rlhf_safetensors_write(path, w, 3, RLHF_DTYPE_F32, meta));
    size_t n;
    unsigned char *raw = slurp(path, &n);
    uint64_t hl = 0;
    if (raw) memcpy(&hl, raw, 8);
    CHECKF(raw && (8 + hl) % 8 == 0, "header length %llu: data area not 8-byte aligned",
           (unsigned long long)hl);
    CHECK(raw && n == 8 + hl + 4 * (6 + 3 + 1));
    free(raw);
    rlhf_safetensors *f = NULL;
    CHECK_OK(rlhf_safetensors_open(&f, path));
    if (f) {
        CHECK(rlhf_safetensors_count(f) == 3);
        CHECK(rlhf_safetensors_metadata(f, "format") &&
              !strcmp(rlhf_safetensors_metadata(f, "format"), "pt"));
        CHECK(rlhf_safetensors_metadata(f, "note") &&
              !strcmp(rlhf_safetensors_metadata(f, "note"), "hello"));
        CHECK(rlhf_safetensors_metadata(f, "missing") == NULL);
        CHECK(rlhf_safetensors_find(f, "nope") == NULL);
        const rlhf_st_tensor *t = rlhf_safetensors_find(f, "alpha.weight");
        CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6 &&
              t->dtype == RLHF_DTYPE_F32 && !strcmp(t->dtype_name, "F32"));
        float got[6] = {0};
        if (t) CHECK_OK(rlhf_safetensors_read_f32(f, t, got));
        CHECK(memcmp(got, a, sizeof a) == 0);
        t = rlhf_safetensors_find(f, "gamma.scalar");
        CHECK(t && t->ndim == 0 && t->numel == 1);
        if (t) CHECK_OK(rlhf_safetensors_read_f32(f, t, got));
        CHECK(got[0] == 42.0f);
        CHECK(!strcmp(rlhf_safetensors_tensor(f, 1)->name, "beta")); /* header order kept */
        rlhf_safetensors_close(f);
    }

    /* BF16: round to nearest, ties to even, checked on hand-made cases and random values */
    const float one = 1.0f, e8 = ldexpf(1.0f, -8), e7 = ldexpf(1.0f, -7), e6 = ldexpf(1.0f, -6);
    struct {
        float x, want;
    } cases[] = {
        {one + e8, one},          /* tie, 1.0 is even */
        {one + 3 * e8, one + e6}, /* tie, 1+2^-6 is even */
        {-(one + e8), -one},
        {one + e8 + ldexpf(1.0f, -20), one + e7}, /* above the tie */
        {one + e8 - ldexpf(1.0f, -20), one},      /* below the tie */
        {INFINITY, INFINITY},
        {-0.0f, -0.0f},
        {3.0e38f, ldexpf(226.0f, 120)}, /* 3e38 = 1.7632 * 2^127 -> 226/128 * 2^127 */
    };
    const int nc = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < nc; i++) {
        const float y = rlhf_bf16_to_f32(rlhf_f32_to_bf16(cases[i].x));
        CHECKF(memcmp(&y, &cases[i].want, 4) == 0, "bf16(%.9g) = %.9g, want %.9g",
               (double)cases[i].x, (double)y, (double)cases[i].want);
    }
    CHECK(isnan(rlhf_bf16_to_f32(rlhf_f32_to_bf16(NAN))));
    enum { NR = 4096 };
    float *x = malloc(NR * sizeof(float)), *y = malloc(NR * sizeof(float));
    rlhf_rng r;
    rlhf_rng_seed(&r, 5, 5);
    for (int i = 0; i < NR - nc; i++)
        x[i] = rlhf_rng_normal(&r) * ldexpf(1.0f, (int)(rlhf_rng_u32(&r) % 40) - 20);
    for (int i = 0; i < nc; i++)
        x[NR - nc + i] = cases[i].x;
    rlhf_st_write_tensor wb = {"x", 1, {NR}, x};
    path_in(path, sizeof path, "s1_bf16.safetensors");
    CHECK_OK(rlhf_safetensors_write(path, &wb, 1, RLHF_DTYPE_BF16, NULL));
    raw = slurp(path, &n);
    if (raw) memcpy(&hl, raw, 8);
    CHECK(raw && n == 8 + hl + 2 * NR);
    free(raw);
    CHECK_OK(rlhf_safetensors_open(&f, path));
    if (f) {
        const rlhf_st_tensor *t = rlhf_safetensors_find(f, "x");
        CHECK(t && t->dtype == RLHF_DTYPE_BF16 && !strcmp(t->dtype_name, "BF16"));
        if (t) CHECK_OK(rlhf_safetensors_read_f32(f, t, y));
        int bad = 0;
        for (int i = 0; i < NR; i++) {
            if (isinf(x[i])) {
                bad += !(isinf(y[i]) && (x[i] > 0) == (y[i] > 0));
                continue;
            }
            bad += !(fabsf(y[i] - x[i]) <= ldexpf(fabsf(x[i]), -8));
            /* nearest: no other bf16 value is closer (neighbours one ulp away on either side) */
            uint16_t h = rlhf_f32_to_bf16(x[i]);
            const float up = rlhf_bf16_to_f32((uint16_t)(h + 1)),
                        dn = rlhf_bf16_to_f32((uint16_t)(h - 1));
            if (x[i] != 0 && isfinite(up) && isfinite(dn))
                bad +=
                    fabsf(up - x[i]) < fabsf(y[i] - x[i]) || fabsf(dn - x[i]) < fabsf(y[i] - x[i]);
        }
        CHECKF(bad == 0, "%d of %d bf16 values not the nearest / not within 2^-8", bad, NR);
        rlhf_safetensors_close(f);
    }
    free(x);
    free(y);

    /* F16: a file built here from known IEEE half bit patterns */
    const uint16_t h[] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001,
                          0x8400, 0x7C00, 0x3555, 0x0000, 0x03FF};
    const float hv[] = {1.0f,
                        -2.0f,
                        0.5f,
                        65504.0f,
                        ldexpf(1.0f, -24),
                        -ldexpf(1.0f, -14),
                        INFINITY,
                        0.333251953125f,
                        0.0f,
                        ldexpf(1023.0f, -24)};
    char hdr[256];
    snprintf(hdr, sizeof hdr,
             "{\"__metadata__\":{\"format\":\"pt\"},\"h\":{\"dtype\":\"F16\",\"shape\":[2,5],"
             "\"data_offsets\":[0,20]}}");
    const uint64_t hl2 = strlen(hdr);
    unsigned char buf[512];
    memcpy(buf, &hl2, 8);
    memcpy(buf + 8, hdr, hl2);
    memcpy(buf + 8 + hl2, h, sizeof h);
    path_in(path, sizeof path, "s1_f16.safetensors");
    write_bytes(path, buf, 8 + hl2 + sizeof h);
    CHECK_OK(rlhf_safetensors_open(&f, path));
    if (f) {
        const rlhf_st_tensor *t = rlhf_safetensors_find(f, "h");
        float got[10];
        CHECK(t && t->dtype == RLHF_DTYPE_F16 && t->numel == 10);
        if (t) CHECK_OK(rlhf_safetensors_read_f32(f, t, got));
        for (int i = 0; i < 10; i++)
            CHECKF(got[i] == hv[i], "f16 0x%04x -> %.9g, want %.9g", h[i], (double)got[i],
                   (double)hv[i]);
        rlhf_safetensors_close(f);
    }

    /* write refuses duplicate names and F16 output */
    rlhf_st_write_tensor dup[2] = {{"same", 1, {3}, b}, {"same", 1, {3}, b}};
    path_in(path, sizeof path, "s1_dup.safetensors");
    CHECK_FAILS(rlhf_safetensors_write(path, dup, 2, RLHF_DTYPE_F32, NULL), RLHF_ERR_ARG, "same",
                NULL, "write duplicate names");
    CHECK_FAILS(rlhf_safetensors_write(path, dup, 1, RLHF_DTYPE_F16, NULL), RLHF_ERR_ARG, path,
                NULL, "write F16");
    CHECK(access(path, F_OK) != 0);
    CHECK(count_entries(tmpdir, "s1_dup.safetensors.tmp") == 0);
}

/* ---- S2
 * -------------------------------------------------------------------------------------------- */

static void test_st_corrupt(void) {
    printf("S2 corrupt safetensors files\n");
    char path[512];
    rlhf_safetensors *f = NULL;
    struct {
        const char *tag, *header;
        size_t n_data;
        const char *w1; /* besides the path */
    } cases[] = {
        {"bad JSON header", "{\"w\": {\"dtype\": \"F32\", ", 0, "JSON"},
        {"header not an object", "[1, 2, 3]", 0, "not an object"},
        {"offsets past the end",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "'w'"},
        {"overlapping offsets",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
         24, "overlap"},
        {"shape/size mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}",
         16, "'w'"},
        {"unknown dtype", "{\"w\":{\"dtype\":\"F33\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
         "unknown dtype"},
        {"duplicate tensor names",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "duplicate"},
        {"negative shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16,
         "'w'"},
        {"offsets end before begin",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16, "'w'"},
        {"missing data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16, "'w'"},
        {"metadata not strings", "{\"__metadata__\":{\"format\":1}}", 0, "__metadata__"},
        {"huge shape",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}",
         16, "'w'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/s2_%zu.safetensors", tmpdir, i);
        make_st(path, cases[i].header, cases[i].n_data);
        CHECK_FAILS(rlhf_safetensors_open(&f, path), RLHF_ERR_FORMAT, path, cases[i].w1,
                    cases[i].tag);
        CHECK(f == NULL);
    }
    /* too short for the length field */
    path_in(path, sizeof path, "s2_short.safetensors");
    write_bytes(path, "\x10\x00\x00\x00\x00", 5);
    CHECK_FAILS(rlhf_safetensors_open(&f, path), RLHF_ERR_FORMAT, path, "truncated",
                "truncated (5 bytes)");
    /* header length larger than the file */
    path_in(path, sizeof path, "s2_hlen.safetensors");
    {
        unsigned char b[40] = {0};
        const uint64_t big = 1000;
        memcpy(b, &big, 8);
        memcpy(b + 8, "{}", 2);
        write_bytes(path, b, sizeof b);
    }
    CHECK_FAILS(rlhf_safetensors_open(&f, path), RLHF_ERR_FORMAT, path, "header length",
                "header length > file");
    /* a valid file cut by one byte */
    path_in(path, sizeof path, "s2_cut.safetensors");
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    rlhf_st_write_tensor w = {"model.norm.weight", 1, {8}, v};
    CHECK_OK(rlhf_safetensors_write(path, &w, 1, RLHF_DTYPE_F32, NULL));
    size_t n;
    unsigned char *raw = slurp(path, &n);
    if (raw) write_bytes(path, raw, n - 1);
    free(raw);
    CHECK_FAILS(rlhf_safetensors_open(&f, path), RLHF_ERR_FORMAT, path, "model.norm.weight",
                "truncated by one byte");
    path_in(path, sizeof path, "s2_absent.safetensors");
    CHECK_FAILS(rlhf_safetensors_open(&f, path), RLHF_ERR_IO, path, NULL, "missing file");
    /* an integer tensor opens but cannot be read as floats */
    path_in(path, sizeof path, "s2_int.safetensors");
    make_st(path, "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16);
    CHECK_OK(rlhf_safetensors_open(&f, path));
    if (f) {
        float out[2];
        CHECK_FAILS(rlhf_safetensors_read_f32(f, rlhf_safetensors_find(f, "ids"), out),
                    RLHF_ERR_UNSUPPORTED, "ids", NULL, "I64 read as floats");
        rlhf_safetensors_close(f);
    }
}

/* ---- H1 .. H5
 * ------------------------------------------------------------------------------------ */

/* transformers' permute(w, n_heads, dim1, dim2) = w.view(n_heads, dim1/n_heads/2, 2, dim2)
 * .transpose(1, 2).reshape(dim1, dim2): output index (h, b, a) reads input (h, a, b). */
static void hf_permute_ref(float *out, const float *in, int heads, int rows, int cols) {
    const int per = rows / heads, half = per / 2;
    for (int h = 0; h < heads; h++)
        for (int b = 0; b < 2; b++)
            for (int a = 0; a < half; a++)
                for (int k = 0; k < cols; k++)
                    out[((h * 2 + b) * half + a) * cols + k] =
                        in[((h * half + a) * 2 + b) * cols + k];
}

/* Checks names, shapes and the q/k layout of the model.safetensors in dir against params. */
static void check_hf_tensors(const char *dir, const rlhf_model_config *c, const float *params) {
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rlhf_safetensors *f = NULL;
    CHECK_OK(rlhf_safetensors_open(&f, path));
    if (!f) return;
    CHECK(rlhf_safetensors_metadata(f, "format") &&
          !strcmp(rlhf_safetensors_metadata(f, "format"), "pt"));
    rlhf_param_info t[RLHF_P_COUNT];
    rlhf_param_table(c, t);
    int expected = 0;
    for (int i = 0; i < RLHF_P_COUNT; i++) {
        if (t[i].numel == 0) {
            CHECK(rlhf_safetensors_find(f, "lm_head.weight") == NULL);
            continue;
        }
        for (int l = 0; l < (t[i].per_layer ? c->n_layer : 1); l++) {
            char name[128];
            snprintf(name, sizeof name, t[i].name, l);
            expected++;
            const rlhf_st_tensor *e = rlhf_safetensors_find(f, name);
            CHECKF(e != NULL, "%s: no tensor %s", path, name);
            if (!e) continue;
            const bool vec = t[i].cols == 1 && i != RLHF_P_HEAD;
            CHECKF(e->ndim == (vec ? 1 : 2) && e->shape[0] == t[i].rows &&
                       (vec || e->shape[1] == t[i].cols),
                   "%s: shape of %s", path, name);
            if (i != RLHF_P_WQ && i != RLHF_P_WK) continue;
            const int rows = (int)t[i].rows, cols = (int)t[i].cols;
            float *got = malloc((size_t)rows * cols * sizeof(float));
            float *want = malloc((size_t)rows * cols * sizeof(float));
            CHECK_OK(rlhf_safetensors_read_f32(f, e, got));
            hf_permute_ref(want, params + t[i].offset + (int64_t)l * rows * cols,
                           i == RLHF_P_WQ ? c->n_head : c->n_head_kv, rows, cols);
            CHECKF(memcmp(got, want, (size_t)rows * cols * sizeof(float)) == 0,
                   "%s: rows of %s are not in transformers' permuted order", path, name);
            free(got);
            free(want);
        }
    }
    if (c->head == RLHF_HEAD_SCALAR) {
        const rlhf_st_tensor *e = rlhf_safetensors_find(f, "score.weight");
        CHECK(e && e->ndim == 2 && e->shape[0] == 1 && e->shape[1] == c->dim);
        CHECK(rlhf_safetensors_find(f, "lm_head.weight") == NULL);
    }
    CHECKF(rlhf_safetensors_count(f) == expected, "%s: %d tensors, expected %d", path,
           rlhf_safetensors_count(f), expected);
    rlhf_safetensors_close(f);
}

static json_t *load_config(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    return json_load_file(path, 0, NULL);
}

static void save_config(const char *dir, json_t *cfg) {
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(json_dump_file(cfg, path, JSON_INDENT(1)) == 0);
}

/* Writes c/params to tmpdir/name, reads it back and checks config and bits; returns the params
 * read (caller frees) or NULL. */
static float *roundtrip(const char *name, const rlhf_model_config *c, const float *params,
                        rlhf_dtype dtype, int64_t shard, rlhf_hf_info *info) {
    char dir[512];
    path_in(dir, sizeof dir, name);
    rlhf_status st = rlhf_hf_write(dir, c, params, dtype, shard, false);
    CHECKF(st == RLHF_OK, "%s: write: %s", name, rlhf_last_error());
    if (st != RLHF_OK) return NULL;
    rlhf_model_config c2;
    float *back = NULL;
    st = rlhf_hf_read(dir, &c2, &back, info);
    CHECKF(st == RLHF_OK, "%s: read: %s", name, rlhf_last_error());
    if (st != RLHF_OK) return NULL;
    CHECKF(same_config(c, &c2), "%s: config differs after the round trip", name);
    CHECK(c2.trainable == false);
    return back;
}

static void test_random_models(void) {
    printf("H1/H3/H4/H5 random models\n");
    /* H1: untied GQA; odd sizes */
    rlhf_model_config c = make_config(48, 80, 3, 6, 2, 67, 32, false, RLHF_HEAD_LM);
    c.norm_eps = 1e-6f;
    c.rope_theta = 500000.0f;
    int64_t P;
    float *params = random_params(&c, 11, &P);
    rlhf_hf_info info;
    float *back = roundtrip("h1", &c, params, RLHF_DTYPE_F32, 0, &info);
    CHECK(back && memcmp(back, params, (size_t)P * sizeof(float)) == 0);
    CHECK(info.n_shards == 0 && info.dtype == RLHF_DTYPE_F32 && info.bytes == 4 * P);
    char dir[512];
    path_in(dir, sizeof dir, "h1");
    check_hf_tensors(dir, &c, params);
    json_t *cfg = load_config(dir);
    CHECK(cfg && !strcmp(json_string_value(json_object_get(cfg, "model_type")), "llama"));
    CHECK(cfg &&
          !strcmp(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                  "LlamaForCausalLM"));
    CHECK(cfg && json_integer_value(json_object_get(cfg, "num_key_value_heads")) == 2);
    CHECK(cfg && json_is_false(json_object_get(cfg, "tie_word_embeddings")));
    CHECK(cfg && (float)json_number_value(json_object_get(cfg, "rms_norm_eps")) == 1e-6f);
    CHECK(cfg && !strcmp(json_string_value(json_object_get(cfg, "torch_dtype")), "float32"));
    json_decref(cfg);
    /* logits of the original and the HF-loaded model agree exactly */
    enum { B = 2, T = 7 };
    int32_t tok[B * T];
    for (int i = 0; i < B * T; i++)
        tok[i] = (i * 37 + 5) % c.vocab_size;
    float *l1 = malloc((size_t)B * T * c.vocab_size * sizeof(float));
    float *l2 = malloc((size_t)B * T * c.vocab_size * sizeof(float));
    CHECK_OK(model_out(&c, params, tok, B, T, l1));
    if (back) CHECK_OK(model_out(&c, back, tok, B, T, l2));
    CHECK(back && memcmp(l1, l2, (size_t)B * T * c.vocab_size * sizeof(float)) == 0);

    /* H3: sharded (several shards; and a limit below one tensor's size) equals unsharded */
    float *sh = roundtrip("h3", &c, params, RLHF_DTYPE_F32, 20000, &info);
    CHECK(sh && memcmp(sh, params, (size_t)P * sizeof(float)) == 0);
    CHECKF(info.n_shards > 2, "only %d shards", info.n_shards);
    path_in(dir, sizeof dir, "h3");
    char p2[600];
    snprintf(p2, sizeof p2, "%s/model.safetensors.index.json", dir);
    CHECK(access(p2, F_OK) == 0);
    snprintf(p2, sizeof p2, "%s/model.safetensors", dir);
    CHECK(access(p2, F_OK) != 0);
    CHECK(count_entries(dir, "model-0") == info.n_shards);
    json_t *idx = NULL;
    snprintf(p2, sizeof p2, "%s/model.safetensors.index.json", dir);
    idx = json_load_file(p2, 0, NULL);
    CHECK(idx && json_integer_value(
                     json_object_get(json_object_get(idx, "metadata"), "total_size")) == 4 * P);
    json_decref(idx);
    free(sh);
    sh = roundtrip("h3b", &c, params, RLHF_DTYPE_F32, 100, &info); /* every tensor alone */
    CHECK(sh && memcmp(sh, params, (size_t)P * sizeof(float)) == 0);
    CHECK(info.n_shards == 9 * c.n_layer + 3);
    free(sh);

    /* H4: BF16 */
    float *bf = roundtrip("h4", &c, params, RLHF_DTYPE_BF16, 0, &info);
    CHECK(info.dtype == RLHF_DTYPE_BF16 && info.bytes == 2 * P);
    int64_t bad = 0;
    for (int64_t i = 0; bf && i < P; i++)
        bad += bf[i] != rlhf_bf16_to_f32(rlhf_f32_to_bf16(params[i])) ||
               !(fabsf(bf[i] - params[i]) <= ldexpf(fabsf(params[i]), -8));
    CHECKF(bf && bad == 0, "%lld of %lld bf16 parameters off", (long long)bad, (long long)P);
    path_in(dir, sizeof dir, "h4");
    cfg = load_config(dir);
    CHECK(cfg && !strcmp(json_string_value(json_object_get(cfg, "torch_dtype")), "bfloat16"));
    json_decref(cfg);
    /* bf16 -> f32 re-type of the HF dir reads back equal */
    if (bf) {
        float *bf2 = roundtrip("h4b", &c, bf, RLHF_DTYPE_F32, 0, &info);
        CHECK(bf2 && memcmp(bf2, bf, (size_t)P * sizeof(float)) == 0);
        free(bf2);
    }
    free(bf);

    /* H5: scalar head */
    rlhf_model_config cs = make_config(32, 56, 2, 4, 4, 50, 16, true, RLHF_HEAD_SCALAR);
    int64_t Ps;
    float *ps = random_params(&cs, 12, &Ps);
    float *sb = roundtrip("h5", &cs, ps, RLHF_DTYPE_F32, 0, &info);
    CHECK(sb && memcmp(sb, ps, (size_t)Ps * sizeof(float)) == 0);
    path_in(dir, sizeof dir, "h5");
    check_hf_tensors(dir, &cs, ps);
    cfg = load_config(dir);
    CHECK(cfg &&
          !strcmp(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                  "LlamaForSequenceClassification"));
    CHECK(cfg && json_integer_value(json_object_get(cfg, "num_labels")) == 1);
    CHECK(cfg && json_object_size(json_object_get(cfg, "id2label")) == 1);
    json_decref(cfg);
    float v1[B * T], v2[B * T];
    for (int i = 0; i < B * T; i++)
        tok[i] = (i * 13 + 1) % cs.vocab_size;
    CHECK_OK(model_out(&cs, ps, tok, B, T, v1));
    if (sb) CHECK_OK(model_out(&cs, sb, tok, B, T, v2));
    CHECK(sb && memcmp(v1, v2, sizeof v1) == 0);
    free(sb);
    free(ps);

    free(l1);
    free(l2);
    free(back);
    free(params);
}

/* ---- H2: stories260K
 * ------------------------------------------------------------------------------- */

static void test_stories(void) {
    printf("H2 stories260K.bin\n");
    const char *root = getenv("RLHF_SHARED");
    char bin[512];
    snprintf(bin, sizeof bin, "%s/models/stories260K.bin", root ? root : "../shared");
    if (access(bin, R_OK) != 0) {
        printf("SKIP part: shared file %s not found (set RLHF_SHARED)\n", bin);
        missing_shared = 1;
        return;
    }
    rlhf_model_config c;
    float *params = NULL;
    CHECK_OK(rlhf_llama2c_read(bin, &c, &params));
    if (!params) return;
    CHECK(c.tied_head && c.n_head_kv < c.n_head);
    rlhf_param_info t[RLHF_P_COUNT];
    const int64_t P = rlhf_param_table(&c, t);
    rlhf_hf_info info;
    float *back = roundtrip("stories_hf", &c, params, RLHF_DTYPE_F32, 0, &info);
    CHECK(back && memcmp(back, params, (size_t)P * sizeof(float)) == 0);
    char dir[512];
    path_in(dir, sizeof dir, "stories_hf");
    check_hf_tensors(dir, &c, params);

    /* llama2.c -> HF -> llama2.c */
    char direct[512], via[512];
    path_in(direct, sizeof direct, "stories_direct.bin");
    path_in(via, sizeof via, "stories_via_hf.bin");
    CHECK_OK(rlhf_llama2c_write(direct, &c, params, 0));
    rlhf_model_config c2;
    float *p2 = NULL;
    CHECK_OK(rlhf_checkpoint_read(dir, &c2, &p2));
    if (p2) CHECK_OK(rlhf_llama2c_write(via, &c2, p2, 0));
    size_t n0, n1, n2;
    unsigned char *orig = slurp(bin, &n0), *a = slurp(direct, &n1), *b = slurp(via, &n2);
    CHECK(a && b && n1 == n2 && memcmp(a, b, n1) == 0);
    const size_t wbytes = 28 + 4 * (size_t)P; /* header + weights, before the RoPE tables */
    CHECKF(orig && b && n0 == n2 && memcmp(orig, b, wbytes) == 0,
           "llama2.c -> HF -> llama2.c differs from the original before the RoPE tables");
    printf("  llama2.c -> HF -> llama2.c: %zu bytes identical to a direct rewrite; header and "
           "weights (%zu bytes) identical to the original\n",
           n2, wbytes);
    free(a);
    free(b);

    /* with the extras: PyTorch's RoPE tables ride in the metadata; the original comes back */
    rlhf_llama2c_extra x = {0}, x2 = {0};
    rlhf_model_config c3;
    float *p3 = NULL, *p4 = NULL;
    CHECK_OK(rlhf_llama2c_read_ex(bin, &c3, &p3, &x));
    CHECK(x.freq && x.seq_len == c.seq_len && x.half == c.dim / c.n_head / 2);
    if (x.freq && orig) {
        const size_t nf = 2 * (size_t)x.seq_len * (size_t)x.half;
        CHECK(memcmp(orig + wbytes, x.freq, nf * sizeof(float)) == 0); /* as stored */
        float *ours = malloc(nf * sizeof(float));
        rlhf_llama2c_freqs(&c, ours);
        size_t differ = 0;
        for (size_t i = 0; i < nf; i++)
            differ += memcmp(&ours[i], &x.freq[i], 4) != 0;
        printf("  stories260K: %zu of %zu RoPE table floats differ from ours\n", differ, nf);
        CHECK(differ > 0); /* else this test proves nothing */
        free(ours);
    }
    char dirx[512], viax[512];
    path_in(dirx, sizeof dirx, "stories_hf_x");
    path_in(viax, sizeof viax, "stories_via_hf_x.bin");
    if (p3) CHECK_OK(rlhf_hf_write_ex(dirx, &c3, p3, RLHF_DTYPE_F32, 0, false, &x));
    CHECK_OK(rlhf_checkpoint_read_ex(dirx, &c3, &p4, &x2));
    CHECK(x2.freq && x.freq && x2.seq_len == x.seq_len && x2.half == x.half &&
          memcmp(x.freq, x2.freq, 2 * (size_t)x.seq_len * (size_t)x.half * sizeof(float)) == 0);
    if (p4) CHECK_OK(rlhf_llama2c_write_ex(viax, &c3, p4, 0, &x2));
    b = slurp(viax, &n2);
    CHECKF(orig && b && n0 == n2 && memcmp(orig, b, n0) == 0,
           "llama2.c -> HF -> llama2.c with the extras differs from the original");
    printf("  with the RoPE tables in the metadata: %zu bytes identical to the original\n", n2);
    free(b);
    free(orig);
    rlhf_free(p3);
    rlhf_free(p4);
    rlhf_llama2c_extra_free(&x);
    rlhf_llama2c_extra_free(&x2);
    rlhf_llama2c_extra_free(&x2); /* twice: zeroed, so harmless */
    rlhf_llama2c_extra_free(NULL);

    /* logits: original vs HF-loaded, exactly */
    enum { T = 16 };
    int32_t tok[T];
    for (int i = 0; i < T; i++)
        tok[i] = i == 0 ? 1 : (i * 97 + 3) % c.vocab_size;
    float *l1 = malloc((size_t)T * c.vocab_size * sizeof(float));
    float *l2 = malloc((size_t)T * c.vocab_size * sizeof(float));
    CHECK_OK(model_out(&c, params, tok, 1, T, l1));
    if (p2) CHECK_OK(model_out(&c2, p2, tok, 1, T, l2));
    CHECK(p2 && memcmp(l1, l2, (size_t)T * c.vocab_size * sizeof(float)) == 0);
    free(l1);
    free(l2);

    /* against the transformers-math reference (experiments/hf_reference/hf_llama_reference.py) */
    char fix[512];
    test_src("tests/fixtures/hf_stories260K_logits.bin", fix, sizeof fix);
    size_t nf;
    unsigned char *fx = slurp(fix, &nf);
    CHECKF(fx != NULL, "cannot read %s", fix);
    int32_t FT = 0, FV = 0;
    if (fx && nf >= 12) {
        memcpy(&FT, fx + 4, 4);
        memcpy(&FV, fx + 8, 4);
    }
    const bool ok = fx && !memcmp(fx, "HFL1", 4) && FT > 0 && FT <= 64 && FV == c.vocab_size &&
                    nf == 12 + 4 * (size_t)FT + 4 * (size_t)FT * FV;
    CHECKF(ok, "%s: bad fixture layout", fix);
    if (ok && p2) {
        int32_t *ft = malloc((size_t)FT * sizeof *ft);
        float *want = malloc((size_t)FT * FV * sizeof(float));
        float *got = malloc((size_t)FT * FV * sizeof(float));
        memcpy(ft, fx + 12, 4 * (size_t)FT);
        memcpy(want, fx + 12 + 4 * (size_t)FT, 4 * (size_t)FT * FV);
        CHECK_OK(model_out(&c2, p2, ft, 1, FT, got));
        double *g = malloc((size_t)FT * FV * sizeof(double)),
               *w = malloc((size_t)FT * FV * sizeof(double));
        for (int64_t i = 0; i < (int64_t)FT * FV; i++) {
            g[i] = got[i];
            w[i] = want[i];
        }
        size_t worst;
        const double rel = test_max_rel_err(g, w, (size_t)FT * FV, 1.0, &worst);
        CHECKF(rel <= 1e-4, "HF-loaded logits vs the transformers reference: rel err %.3g at %zu",
               rel, worst);
        printf("  HF-loaded stories260K vs transformers-math reference: max rel err %.3g over %d x "
               "%d logits\n",
               rel, FT, FV);
        free(g);
        free(w);
        free(ft);
        free(want);
        free(got);
    }
    free(fx);

    /* dispatch: rlhf_model_load on both */
    rlhf_model *m1 = NULL, *m2 = NULL;
    CHECK_OK(rlhf_model_load(&m1, bin, NULL, false, 1, 8));
    CHECK_OK(rlhf_model_load(&m2, dir, NULL, true, 1, 8));
    CHECK(m1 && m2 && rlhf_model_num_params(m1) == rlhf_model_num_params(m2));
    rlhf_model_free(m1);
    rlhf_model_free(m2);
    free(p2);
    free(back);
    rlhf_free(params);
}

/* ---- H6 / H7
 * -------------------------------------------------------------------------------------- */

static void test_dirs_and_corruption(void) {
    printf("H6 atomic directory writes, H7 corrupt HF dirs\n");
    rlhf_model_config c = make_config(32, 48, 2, 4, 2, 40, 16, false, RLHF_HEAD_LM);
    int64_t P;
    float *params = random_params(&c, 21, &P);
    char dir[512], p[700];
    rlhf_model_config cr;
    float *got = NULL;

    /* H6 */
    path_in(dir, sizeof dir, "h6");
    mkdir(dir, 0755);
    CHECK_OK(rlhf_hf_write(dir, &c, params, RLHF_DTYPE_F32, 0, false)); /* empty dir: fine */
    CHECK_FAILS(rlhf_hf_write(dir, &c, params, RLHF_DTYPE_BF16, 0, false), RLHF_ERR_ARG, dir,
                "not empty", "non-empty target, no overwrite");
    rlhf_hf_info info;
    CHECK_OK(rlhf_hf_read(dir, &cr, NULL, &info));
    CHECK(info.dtype == RLHF_DTYPE_F32); /* untouched */
    CHECK_OK(rlhf_hf_write(dir, &c, params, RLHF_DTYPE_BF16, 0, true));
    CHECK_OK(rlhf_hf_read(dir, &cr, NULL, &info));
    CHECK(info.dtype == RLHF_DTYPE_BF16); /* replaced */
    char sub[700];
    snprintf(sub, sizeof sub, "%s/subdir", dir);
    mkdir(sub, 0755);
    CHECK_FAILS(rlhf_hf_write(dir, &c, params, RLHF_DTYPE_F32, 0, true), RLHF_ERR_ARG, dir,
                "subdirectories", "overwrite a dir with a subdir");
    rmdir(sub);
    path_in(p, sizeof p, "h6_file");
    write_bytes(p, "x", 1);
    CHECK_FAILS(rlhf_hf_write(p, &c, params, RLHF_DTYPE_F32, 0, true), RLHF_ERR_ARG, p,
                "not a directory", "target is a file");
    CHECK(count_entries(tmpdir, "h6.tmp-") == 0 && count_entries(tmpdir, "h6.old-") == 0);
    path_in(p, sizeof p, "h6/");
    CHECK_OK(rlhf_hf_write(p, &c, params, RLHF_DTYPE_F32, 0, true)); /* trailing slash */
    CHECK(count_entries(tmpdir, "h6.tmp-") == 0 && count_entries(tmpdir, "h6.old-") == 0);

    /* H7: mutations of a good single-file dir */
    path_in(dir, sizeof dir, "h7");
    CHECK_OK(rlhf_hf_write(dir, &c, params, RLHF_DTYPE_F32, 0, false));
    char cfgp[700], stp[700];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    snprintf(stp, sizeof stp, "%s/model.safetensors", dir);
    json_t *good = load_config(dir);

    /* shape vs config: intermediate_size 48 -> 50 */
    json_t *m = json_deep_copy(good);
    json_object_set_new(m, "intermediate_size", json_integer(50));
    save_config(dir, m);
    json_decref(m);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT,
                "model.layers.0.mlp.gate_proj.weight", "[48, 32]", "shape vs config mismatch");
    CHECK(got == NULL);
    /* vocab mismatch names the embedding */
    m = json_deep_copy(good);
    json_object_set_new(m, "vocab_size", json_integer(41));
    save_config(dir, m);
    json_decref(m);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT, "model.embed_tokens.weight",
                stp, "vocab vs embedding mismatch");
    /* missing fields, wrong types */
    const char *required[] = {"hidden_size", "intermediate_size", "num_hidden_layers",
                              "num_attention_heads", "vocab_size"};
    for (int i = 0; i < 5; i++) {
        m = json_deep_copy(good);
        json_object_del(m, required[i]);
        save_config(dir, m);
        json_decref(m);
        char tag[64];
        snprintf(tag, sizeof tag, "config.json without %s", required[i]);
        CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT, required[i], cfgp, tag);
    }
    m = json_deep_copy(good);
    json_object_set_new(m, "num_hidden_layers", json_string("2"));
    save_config(dir, m);
    json_decref(m);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT, "num_hidden_layers", cfgp,
                "num_hidden_layers a string");
    m = json_deep_copy(good);
    json_object_set_new(m, "num_key_value_heads", json_integer(3));
    save_config(dir, m);
    json_decref(m);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT, "num_key_value_heads", cfgp,
                "kv heads not dividing heads");
    m = json_deep_copy(good);
    json_object_set_new(m, "rope_scaling",
                        json_pack("{s:s, s:f}", "type", "linear", "factor", 2.0));
    save_config(dir, m);
    json_decref(m);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_UNSUPPORTED, "rope_scaling", cfgp,
                "rope_scaling");
    m = json_deep_copy(good);
    json_object_set_new(m, "model_type", json_string("mistral"));
    save_config(dir, m);
    json_decref(m);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_UNSUPPORTED, "mistral", cfgp,
                "model_type mistral");
    m = json_deep_copy(good);
    json_array_set_new(json_object_get(m, "architectures"), 0,
                       json_string("LlamaForSequenceClassification"));
    json_object_set_new(m, "num_labels", json_integer(2));
    save_config(dir, m);
    json_decref(m);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_UNSUPPORTED, "num_labels", cfgp,
                "num_labels 2");
    write_bytes(cfgp, "{\"hidden_size\": 32,", 19);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT, cfgp, "JSON",
                "config.json bad JSON");
    unlink(cfgp);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_IO, cfgp, NULL, "config.json absent");
    CHECK(!rlhf_hf_is_dir(dir));
    save_config(dir, good);
    CHECK(rlhf_hf_is_dir(dir));
    CHECK_OK(rlhf_hf_read(dir, &cr, &got, NULL));
    CHECK(got && memcmp(got, params, (size_t)P * sizeof(float)) == 0);
    free(got);
    got = NULL;

    /* missing and unexpected tensors: rewrite model.safetensors from its own tensors */
    rlhf_safetensors *f = NULL;
    CHECK_OK(rlhf_safetensors_open(&f, stp));
    if (f) {
        const int32_t n = rlhf_safetensors_count(f);
        rlhf_st_write_tensor *w = calloc((size_t)n + 1, sizeof *w);
        float **data = calloc((size_t)n + 1, sizeof *data);
        int32_t k = 0;
        for (int32_t i = 0; i < n; i++) {
            const rlhf_st_tensor *t = rlhf_safetensors_tensor(f, i);
            data[i] = malloc((size_t)t->numel * sizeof(float));
            CHECK_OK(rlhf_safetensors_read_f32(f, t, data[i]));
            if (!strcmp(t->name, "model.layers.1.mlp.up_proj.weight")) continue;
            w[k].name = t->name;
            w[k].ndim = t->ndim;
            memcpy(w[k].shape, t->shape, sizeof t->shape);
            w[k].data = data[i];
            k++;
        }
        char alt[700];
        snprintf(alt, sizeof alt, "%s/h7_alt.safetensors", tmpdir);
        CHECK_OK(rlhf_safetensors_write(alt, w, k, RLHF_DTYPE_F32, NULL));
        rename(alt, stp);
        CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT,
                    "model.layers.1.mlp.up_proj.weight", "missing", "missing tensor");
        /* all tensors plus an unknown one */
        float extra[4] = {0};
        w[k] = (rlhf_st_write_tensor){"model.layers.0.mlp.extra.weight", 1, {4}, extra};
        k++;
        for (int32_t i = 0, j = 0; i < n; i++) /* put the up_proj back */
            if (!strcmp(rlhf_safetensors_tensor(f, i)->name, "model.layers.1.mlp.up_proj.weight")) {
                const rlhf_st_tensor *t = rlhf_safetensors_tensor(f, i);
                w[k] =
                    (rlhf_st_write_tensor){t->name, t->ndim, {t->shape[0], t->shape[1]}, data[i]};
                k += (j++ == 0);
            }
        CHECK_OK(rlhf_safetensors_write(alt, w, k, RLHF_DTYPE_F32, NULL));
        rename(alt, stp);
        CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT,
                    "model.layers.0.mlp.extra.weight", "unexpected", "unexpected tensor");
        /* an inv_freq buffer is ignored, as transformers does */
        w[k - 2] =
            (rlhf_st_write_tensor){"model.layers.0.self_attn.rotary_emb.inv_freq", 1, {4}, extra};
        CHECK_OK(rlhf_safetensors_write(alt, w, k, RLHF_DTYPE_F32, NULL));
        rename(alt, stp);
        CHECK_OK(rlhf_hf_read(dir, &cr, &got, NULL));
        CHECK(got && memcmp(got, params, (size_t)P * sizeof(float)) == 0);
        free(got);
        got = NULL;
        for (int32_t i = 0; i < n; i++)
            free(data[i]);
        free(data);
        free(w);
        rlhf_safetensors_close(f);
    }
    /* a truncated weights file */
    size_t n;
    unsigned char *raw = slurp(stp, &n);
    if (raw) write_bytes(stp, raw, n - 3);
    free(raw);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT, stp, NULL,
                "truncated model.safetensors");
    unlink(stp);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_IO, "model.safetensors", NULL,
                "no weights at all");
    json_decref(good);

    /* sharded: a missing shard, a path outside the directory */
    path_in(dir, sizeof dir, "h7s");
    CHECK_OK(rlhf_hf_write(dir, &c, params, RLHF_DTYPE_F32, 4000, false));
    char idxp[700];
    snprintf(idxp, sizeof idxp, "%s/model.safetensors.index.json", dir);
    json_t *idx = json_load_file(idxp, 0, NULL);
    const char *shard2 = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(idx, "weight_map"), k, v) {
        if (strstr(json_string_value(v), "model-00002-")) shard2 = json_string_value(v);
    }
    CHECK(shard2 != NULL);
    if (shard2) {
        snprintf(p, sizeof p, "%s/%s", dir, shard2);
        char moved[700];
        snprintf(moved, sizeof moved, "%s/h7s_moved", tmpdir);
        rename(p, moved);
        CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_IO, shard2, "index",
                    "index names a missing shard");
        rename(moved, p);
        CHECK_OK(rlhf_hf_read(dir, &cr, &got, NULL));
        CHECK(got && memcmp(got, params, (size_t)P * sizeof(float)) == 0);
        free(got);
        got = NULL;
    }
    json_object_set_new(json_object_get(idx, "weight_map"), "model.norm.weight",
                        json_string("../h7/model.safetensors"));
    CHECK(json_dump_file(idx, idxp, 0) == 0);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT, "model.norm.weight", idxp,
                "index path outside the dir");
    write_bytes(idxp, "{\"weight_map\": 3}", 17);
    CHECK_FAILS(rlhf_hf_read(dir, &cr, &got, NULL), RLHF_ERR_FORMAT, "weight_map", idxp,
                "index without a weight_map object");
    json_decref(idx);
    free(params);
}

/* ---- B1: base64
 * ----------------------------------------------------------------------------------- */

static void test_base64(void) {
    printf("B1 base64\n");
    static const char *const vec[][2] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        char *e = rlhf_base64_encode(vec[i][0], strlen(vec[i][0]));
        CHECKF(e && strcmp(e, vec[i][1]) == 0, "encode \"%s\" -> \"%s\"", vec[i][0], e ? e : "");
        unsigned char *d = NULL;
        size_t n = 99;
        CHECK_OK(rlhf_base64_decode(vec[i][1], strlen(vec[i][1]), &d, &n, "vec"));
        CHECK(n == strlen(vec[i][0]) && (n == 0 || (d && memcmp(d, vec[i][0], n) == 0)));
        free(d);
        free(e);
    }
    unsigned char all[70];
    for (int i = 0; i < 70; i++)
        all[i] = (unsigned char)(i * 151 + 7);
    int bad = 0;
    for (size_t len = 0; len <= 70; len++) {
        char *e = rlhf_base64_encode(all, len);
        unsigned char *d = NULL;
        size_t n = 0;
        if (!e || rlhf_base64_decode(e, strlen(e), &d, &n, "rt") != RLHF_OK || n != len ||
            (len && memcmp(d, all, len) != 0))
            bad++;
        free(e);
        free(d);
    }
    CHECKF(bad == 0, "%d of 71 base64 round trips failed", bad);
    static const struct {
        const char *s;
        size_t len;
        const char *why;
    } rej[] = {
        {"Zg=", 3, "multiple of 4"},        {"Zm9vY", 5, "multiple of 4"},
        {"Zm9v\n", 5, "multiple of 4"},     {"Zm 9", 4, "0x20"},
        {"Zm-v", 4, "0x2d"},                {"Zm\0v", 4, "0x00"},
        {"Zg=a", 4, "before the end"},      {"Zm9vYg==Zm9v", 12, "before the end"},
        {"====", 4, "before the end"},      {"Z===", 4, "before the end"},
        {"Zh==", 4, "unused bits"},         {"Zm9=", 4, "unused bits"},
    };
    for (size_t i = 0; i < sizeof rej / sizeof rej[0]; i++) {
        unsigned char *d = (unsigned char *)"x";
        size_t n = 5;
        char tag[64];
        snprintf(tag, sizeof tag, "base64 reject #%zu", i);
        CHECK_FAILS(rlhf_base64_decode(rej[i].s, rej[i].len, &d, &n, "what"), RLHF_ERR_FORMAT,
                    "what: ", rej[i].why, tag);
        CHECK(d == NULL && n == 0);
    }
}

/* ---- H9: llama2.c RoPE tables in __metadata__
 * ------------------------------------------------------ */

/* Rewrites DIR/model.safetensors with the same tensors and the metadata list meta. */
static void rewrite_meta(const char *dir, const char *const *meta) {
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rlhf_safetensors *f = NULL;
    CHECK_OK(rlhf_safetensors_open(&f, path));
    if (!f) return;
    const int32_t n = rlhf_safetensors_count(f);
    rlhf_st_write_tensor *w = calloc((size_t)n, sizeof *w);
    float **data = calloc((size_t)n, sizeof *data);
    for (int32_t i = 0; i < n; i++) {
        const rlhf_st_tensor *t = rlhf_safetensors_tensor(f, i);
        data[i] = malloc((size_t)t->numel * sizeof(float));
        CHECK_OK(rlhf_safetensors_read_f32(f, t, data[i]));
        w[i].name = t->name;
        w[i].ndim = t->ndim;
        memcpy(w[i].shape, t->shape, sizeof w[i].shape);
        w[i].data = data[i];
    }
    CHECK_OK(rlhf_safetensors_write(path, w, n, RLHF_DTYPE_F32, meta));
    for (int32_t i = 0; i < n; i++)
        free(data[i]);
    free(data);
    free(w);
    rlhf_safetensors_close(f);
}

/* The metadata value key of DIR/NAME (a copy, free()), or NULL. */
static char *meta_of(const char *dir, const char *name, const char *key) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    rlhf_safetensors *f = NULL;
    if (rlhf_safetensors_open(&f, path) != RLHF_OK) return NULL;
    const char *v = rlhf_safetensors_metadata(f, key);
    char *copy = v ? strdup(v) : NULL;
    rlhf_safetensors_close(f);
    return copy;
}

static void test_freq_meta(void) {
    printf("H9 llama2.c RoPE tables in __metadata__\n");
    const rlhf_model_config c = make_config(32, 48, 2, 4, 2, 40, 16, true, RLHF_HEAD_LM);
    int64_t P;
    float *params = random_params(&c, 91, &P);
    const int32_t half = c.dim / c.n_head / 2;
    const size_t nf = 2 * (size_t)c.seq_len * (size_t)half;
    float *ours = malloc(nf * sizeof(float));
    rlhf_llama2c_freqs(&c, ours);
    rlhf_llama2c_extra x = {c.seq_len, half, malloc(nf * sizeof(float))}, got = {0};
    memcpy(x.freq, ours, nf * sizeof(float));
    char dir[512], bin[512], bin2[512];
    rlhf_model_config c2;
    float *p2 = NULL;

    /* equal to ours: no key, nothing handed back */
    path_in(dir, sizeof dir, "freq_same");
    CHECK_OK(rlhf_hf_write_ex(dir, &c, params, RLHF_DTYPE_F32, 0, false, &x));
    char *v = meta_of(dir, "model.safetensors", RLHF_HF_META_FREQ);
    char *fmt = meta_of(dir, "model.safetensors", "format");
    CHECK(v == NULL && fmt && strcmp(fmt, "pt") == 0);
    free(v);
    free(fmt);
    CHECK_OK(rlhf_hf_read_ex(dir, &c2, &p2, NULL, &got));
    CHECK(got.freq == NULL && got.seq_len == 0 && p2 && memcmp(p2, params, (size_t)P * 4) == 0);
    rlhf_free(p2);
    p2 = NULL;

    /* one-ulp changes: stored, and back bit for bit */
    uint32_t u;
    for (size_t i = 1; i < nf; i += 7) {
        memcpy(&u, &x.freq[i], 4);
        u ^= 1;
        memcpy(&x.freq[i], &u, 4);
    }
    path_in(dir, sizeof dir, "freq_ulp");
    CHECK_OK(rlhf_hf_write_ex(dir, &c, params, RLHF_DTYPE_F32, 0, false, &x));
    v = meta_of(dir, "model.safetensors", RLHF_HF_META_FREQ);
    char *shape = meta_of(dir, "model.safetensors", RLHF_HF_META_FREQ_SHAPE);
    CHECK(v && strlen(v) == (nf * 4 + 2) / 3 * 4 && shape && strcmp(shape, "[2, 16, 4]") == 0);
    free(shape);
    CHECK_OK(rlhf_hf_read_ex(dir, &c2, &p2, NULL, &got));
    CHECK(got.freq && got.seq_len == c.seq_len && got.half == half &&
          memcmp(got.freq, x.freq, nf * 4) == 0);
    path_in(bin, sizeof bin, "freq_ulp.bin");
    if (p2) CHECK_OK(rlhf_llama2c_write_ex(bin, &c2, p2, 0, &got));
    rlhf_free(p2);
    p2 = NULL;
    rlhf_llama2c_extra_free(&got);
    CHECK_OK(rlhf_llama2c_read_ex(bin, &c2, &p2, &got));
    CHECK(got.freq && memcmp(got.freq, x.freq, nf * 4) == 0);
    rlhf_free(p2);
    p2 = NULL;
    rlhf_llama2c_extra_free(&got);
    path_in(bin2, sizeof bin2, "freq_ulp_v1.bin"); /* v1 has no tables: x is ignored */
    CHECK_OK(rlhf_llama2c_write_ex(bin2, &c, params, 1, &x));
    CHECK_OK(rlhf_llama2c_read_ex(bin2, &c2, &p2, &got));
    CHECK(got.freq == NULL && p2 && memcmp(p2, params, (size_t)P * 4) == 0);
    rlhf_free(p2);
    p2 = NULL;

    /* sharded: the key in the first shard only */
    path_in(dir, sizeof dir, "freq_sharded");
    CHECK_OK(rlhf_hf_write_ex(dir, &c, params, RLHF_DTYPE_BF16, 4096, false, &x));
    const int nsh = count_entries(dir, "model-");
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "model-00001-of-%05d.safetensors", nsh);
    snprintf(n2, sizeof n2, "model-00002-of-%05d.safetensors", nsh);
    char *s1 = meta_of(dir, n1, RLHF_HF_META_FREQ);
    char *s2 = meta_of(dir, n2, RLHF_HF_META_FREQ);
    CHECKF(nsh > 1 && s1 && v && strcmp(s1, v) == 0 && s2 == NULL, "%d shards", nsh);
    free(s1);
    free(s2);
    free(v);
    CHECK_OK(rlhf_hf_read_ex(dir, &c2, &p2, NULL, &got));
    CHECK(got.freq && memcmp(got.freq, x.freq, nf * 4) == 0);
    rlhf_free(p2);
    p2 = NULL;
    rlhf_llama2c_extra_free(&got);

    /* wrong shape given to the writers */
    rlhf_llama2c_extra wrong = x;
    wrong.seq_len = 8;
    path_in(dir, sizeof dir, "freq_wrong");
    CHECK_FAILS(rlhf_hf_write_ex(dir, &c, params, RLHF_DTYPE_F32, 0, false, &wrong), RLHF_ERR_ARG,
                "(2, 8, 4)", "(2, 16, 4)", "hf_write_ex wrong table shape");
    path_in(bin, sizeof bin, "freq_wrong.bin");
    CHECK_FAILS(rlhf_llama2c_write_ex(bin, &c, params, 0, &wrong), RLHF_ERR_ARG, "freq_wrong.bin",
                "(2, 8, 4)", "llama2c_write_ex wrong table shape");
    CHECK(access(bin, F_OK) != 0 && access(dir, F_OK) != 0);

    /* malformed metadata */
    path_in(dir, sizeof dir, "freq_bad");
    CHECK_OK(rlhf_hf_write_ex(dir, &c, params, RLHF_DTYPE_F32, 0, false, NULL));
    char *good = NULL, *short_b64 = rlhf_base64_encode("twelve bytes", 12);
    {
        unsigned char le[4 * 2 * 16 * 4];
        memcpy(le, x.freq, sizeof le);
        good = rlhf_base64_encode(le, sizeof le);
    }
    char *other = rlhf_base64_encode(x.freq, 4 * 2 * 8 * 4); /* a [2, 8, 4] table */
    char *badchar = strdup(good);
    badchar[10] = '!';
    char *truncated = strdup(good);
    truncated[strlen(truncated) - 1] = '\0';
    const struct {
        const char *val, *shape, *w1, *w2, *tag;
        rlhf_status want;
    } cases[] = {
        {good, NULL, RLHF_HF_META_FREQ_SHAPE, "but not", "freq without its shape", RLHF_ERR_FORMAT},
        {NULL, "[2, 16, 4]", RLHF_HF_META_FREQ, "but not", "shape without freq", RLHF_ERR_FORMAT},
        {good, "[2, 16]", RLHF_HF_META_FREQ_SHAPE, "[2, 16]", "shape of 2 dims", RLHF_ERR_FORMAT},
        {good, "[2,16,4]", RLHF_HF_META_FREQ_SHAPE, "not a shape", "shape odd spacing",
         RLHF_ERR_FORMAT},
        {good, "[3, 16, 4]", RLHF_HF_META_FREQ_SHAPE, "not a shape", "shape [3, ...]",
         RLHF_ERR_FORMAT},
        {good, "[2, -16, 4]", RLHF_HF_META_FREQ_SHAPE, "not a shape", "negative shape",
         RLHF_ERR_FORMAT},
        {good, "[2, 99999999999999999999999, 4]", RLHF_HF_META_FREQ_SHAPE, "not a shape",
         "huge shape", RLHF_ERR_FORMAT},
        {good, "[2, 016, 4]", RLHF_HF_META_FREQ_SHAPE, "not a shape", "leading zero",
         RLHF_ERR_FORMAT},
        {good, "[2, 16, 4] ", RLHF_HF_META_FREQ_SHAPE, "not a shape", "trailing space",
         RLHF_ERR_FORMAT},
        {badchar, "[2, 16, 4]", RLHF_HF_META_FREQ "\"", "0x21", "bad base64 character",
         RLHF_ERR_FORMAT},
        {truncated, "[2, 16, 4]", RLHF_HF_META_FREQ "\"", "multiple of 4", "truncated base64",
         RLHF_ERR_FORMAT},
        {short_b64, "[2, 16, 4]", RLHF_HF_META_FREQ "\"", "holds 12 bytes", "wrong byte count",
         RLHF_ERR_FORMAT},
        {other, "[2, 16, 4]", RLHF_HF_META_FREQ "\"", "needs 512", "another shape's bytes",
         RLHF_ERR_FORMAT},
        {other, "[2, 8, 4]", NULL, NULL, "another config's tables: ignored", RLHF_OK},
        {good, "[2, 16, 4]", NULL, NULL, "well-formed tables: read", RLHF_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *meta[7] = {"format", "pt"};
        int k = 2;
        if (cases[i].val) {
            meta[k++] = RLHF_HF_META_FREQ;
            meta[k++] = cases[i].val;
        }
        if (cases[i].shape) {
            meta[k++] = RLHF_HF_META_FREQ_SHAPE;
            meta[k++] = cases[i].shape;
        }
        meta[k] = NULL;
        rewrite_meta(dir, meta);
        got.seq_len = 5; /* must be zeroed on failure */
        const rlhf_status st = rlhf_checkpoint_read_ex(dir, &c2, &p2, &got);
        if (cases[i].want != RLHF_OK) {
            CHECK_FAILS(st, cases[i].want, "freq_bad/model.safetensors", cases[i].w1,
                        cases[i].tag);
            CHECK(p2 == NULL && got.freq == NULL && got.seq_len == 0);
            const char *e = rlhf_last_error();
            CHECKF(!cases[i].w2 || strstr(e, cases[i].w2), "%s: error lacks \"%s\": %s",
                   cases[i].tag, cases[i].w2, e);
        } else {
            CHECKF(st == RLHF_OK, "%s: %s", cases[i].tag, rlhf_last_error());
            const bool want_tables = strcmp(cases[i].shape, "[2, 16, 4]") == 0;
            CHECK(want_tables ? got.freq && memcmp(got.freq, x.freq, nf * 4) == 0
                              : got.freq == NULL);
            printf("  %-34s -> ok\n", cases[i].tag);
        }
        rlhf_free(p2);
        p2 = NULL;
        rlhf_llama2c_extra_free(&got);
    }
    free(good);
    free(short_b64);
    free(other);
    free(badchar);
    free(truncated);
    free(x.freq);
    free(ours);
    free(params);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf_test_hf_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_st_roundtrip();
    test_st_corrupt();
    test_random_models();
    test_stories();
    test_dirs_and_corruption();
    test_base64();
    test_freq_meta();
    rm_tree(tmpdir);
    if (missing_shared && test_failures == 0)
        test_skip("part H2 needs ../shared/models/stories260K.bin");
    TEST_MAIN_END();
}
