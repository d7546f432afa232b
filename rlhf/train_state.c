/* train_state.c: the training-state file, for bit-exact resume.
 *
 * Layout (little-endian):
 *   "RLHFSTAT" | u32 version (1) | config: 7 x i32 (dim, hidden, layers, heads, kv_heads, vocab,
 *   seq_len), f32 norm_eps, f32 rope_theta, u8 tied, u8 head, 2 pad bytes | i64 step | i64 P |
 *   extra: f32 peak_lr, i64 warmup, i64 total, f32 final_frac, 5 x f32 adamw, u64 rng state,
 *   u64 rng inc, i64 data_pos | u8 has_moments, 7 pad bytes |
 *   params (P f32) | [adam m (P f32) | adam v (P f32)] | u32 CRC-32 (zlib) of all preceding bytes.
 * Written to PATH.tmp, fsynced, then renamed over PATH, so a crash never leaves a torn file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "model_impl.h"

#define STATE_MAGIC "RLHFSTAT"
#define STATE_VERSION 1u

typedef struct {
    FILE *f;
    const char *path;
    uLong crc;
} wfile;

static rlhf_status w_bytes(wfile *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->f) != n)
        return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    const unsigned char *b = p;
    while (n) { /* crc32 takes uInt lengths */
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        w->crc = crc32(w->crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return RLHF_OK;
}

typedef struct {
    const unsigned char *buf;
    size_t len, pos;
    const char *path;
} rbuf;

static rlhf_status r_bytes(rbuf *r, void *p, size_t n, const char *what) {
    if (r->len - r->pos < n)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: truncated while reading %s (offset %zu, file %zu bytes)",
                        r->path, what, r->pos, r->len);
    memcpy(p, r->buf + r->pos, n);
    r->pos += n;
    return RLHF_OK;
}

static void put_config(unsigned char out[48], const rlhf_model_config *c) {
    int32_t iv[7] = {c->dim, c->hidden_dim, c->n_layer, c->n_head, c->n_head_kv, c->vocab_size,
                     c->seq_len};
    memset(out, 0, 48);
    memcpy(out, iv, sizeof iv);
    memcpy(out + 28, &c->norm_eps, 4);
    memcpy(out + 32, &c->rope_theta, 4);
    out[36] = c->tied_head;
    out[37] = (unsigned char)c->head;
}

static void get_config(const unsigned char in[48], rlhf_model_config *c) {
    int32_t iv[7];
    memcpy(iv, in, sizeof iv);
    c->dim = iv[0], c->hidden_dim = iv[1], c->n_layer = iv[2], c->n_head = iv[3];
    c->n_head_kv = iv[4], c->vocab_size = iv[5], c->seq_len = iv[6];
    memcpy(&c->norm_eps, in + 28, 4);
    memcpy(&c->rope_theta, in + 32, 4);
    c->tied_head = in[36] != 0;
    c->head = in[37] == 1 ? RLHF_HEAD_SCALAR : RLHF_HEAD_LM;
    c->trainable = true;
}

/* Streams a backend buffer to the file through a host bounce buffer. */
static rlhf_status w_device(wfile *w, const rlhf_backend *be, const float *src, int64_t n) {
    enum { CHUNK = 1 << 20 };
    float *tmp = NULL;
    RLHF_TRY(rlhf_alloc((void **)&tmp, CHUNK * sizeof(float)));
    rlhf_status st = RLHF_OK;
    for (int64_t i = 0; i < n && st == RLHF_OK; i += CHUNK) {
        int64_t k = n - i < CHUNK ? n - i : CHUNK;
        st = be->to_host(be, tmp, src + i, (size_t)k * sizeof(float));
        if (st == RLHF_OK) st = w_bytes(w, tmp, (size_t)k * sizeof(float));
    }
    rlhf_free(tmp);
    return st;
}

rlhf_status rlhf_train_state_save(const rlhf_model *m, const rlhf_train_extra *x, const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return RLHF_ERR(RLHF_ERR_ARG, "state path too long: %s", path);
    wfile w = {.f = fopen(tmp, "wb"), .path = tmp, .crc = crc32(0L, Z_NULL, 0)};
    if (!w.f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    rlhf_status st;
    uint32_t version = STATE_VERSION;
    unsigned char cfg[48];
    put_config(cfg, &m->cfg);
    int64_t P = m->P;
    uint8_t has_m = m->adam_m != NULL, pad[7] = {0};
    RLHF_TRY_GOTO(st, w_bytes(&w, STATE_MAGIC, 8), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &version, 4), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, cfg, sizeof cfg), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &m->step, 8), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &P, 8), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &x->schedule.peak_lr, 4), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &x->schedule.warmup_steps, 8), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &x->schedule.total_steps, 8), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &x->schedule.final_frac, 4), fail);
    float ac[5] = {x->adamw.beta1, x->adamw.beta2, x->adamw.eps, x->adamw.weight_decay,
                   x->adamw.clip_norm};
    RLHF_TRY_GOTO(st, w_bytes(&w, ac, sizeof ac), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &x->rng.state, 8), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &x->rng.inc, 8), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &x->data_pos, 8), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, &has_m, 1), fail);
    RLHF_TRY_GOTO(st, w_bytes(&w, pad, 7), fail);
    RLHF_TRY_GOTO(st, w_device(&w, m->be, m->params, P), fail);
    if (has_m) {
        RLHF_TRY_GOTO(st, w_device(&w, m->be, m->adam_m, P), fail);
        RLHF_TRY_GOTO(st, w_device(&w, m->be, m->adam_v, P), fail);
    }
    uint32_t crc = (uint32_t)w.crc;
    if (fwrite(&crc, 4, 1, w.f) != 1 || fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fclose(w.f) != 0) {
        w.f = NULL;
        st = RLHF_ERR(RLHF_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto fail;
    }
    w.f = NULL;
    if (rename(tmp, path) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    return RLHF_OK;
fail:
    if (w.f) fclose(w.f);
    remove(tmp);
    return st;
}

/* Reads the whole file into memory and checks magic, version and CRC. */
static rlhf_status read_whole(const char *path, unsigned char **buf, size_t *len) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    rlhf_status st = RLHF_OK;
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot determine size", path);
        goto done;
    }
    RLHF_TRY_GOTO(st, rlhf_alloc((void **)buf, (size_t)sz + 1), done);
    if (fread(*buf, 1, (size_t)sz, f) != (size_t)sz) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: read failed", path);
        goto done;
    }
    *len = (size_t)sz;
    if (*len < 12 || memcmp(*buf, STATE_MAGIC, 8) != 0) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: not an rlhf training-state file (bad magic)", path);
        goto done;
    }
    uint32_t version;
    memcpy(&version, *buf + 8, 4);
    if (version != STATE_VERSION) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: unsupported state version %u", path, version);
        goto done;
    }
done:
    fclose(f);
    if (st != RLHF_OK) {
        rlhf_free(*buf);
        *buf = NULL;
    }
    return st;
}

typedef struct {
    rlhf_model_config cfg;
    int64_t step, P;
    rlhf_train_extra x;
    uint8_t has_m;
} state_header;

static rlhf_status parse_header(rbuf *r, state_header *h) {
    unsigned char magic[12], cfg[48] = {0}, pad[7];
    float ac[5];
    RLHF_TRY(r_bytes(r, magic, 12, "magic"));
    RLHF_TRY(r_bytes(r, cfg, 48, "config"));
    get_config(cfg, &h->cfg);
    RLHF_TRY(r_bytes(r, &h->step, 8, "step"));
    RLHF_TRY(r_bytes(r, &h->P, 8, "parameter count"));
    RLHF_TRY(r_bytes(r, &h->x.schedule.peak_lr, 4, "schedule"));
    RLHF_TRY(r_bytes(r, &h->x.schedule.warmup_steps, 8, "schedule"));
    RLHF_TRY(r_bytes(r, &h->x.schedule.total_steps, 8, "schedule"));
    RLHF_TRY(r_bytes(r, &h->x.schedule.final_frac, 4, "schedule"));
    RLHF_TRY(r_bytes(r, ac, sizeof ac, "optimizer config"));
    h->x.adamw = (rlhf_adamw_config){ac[0], ac[1], ac[2], ac[3], ac[4]};
    RLHF_TRY(r_bytes(r, &h->x.rng.state, 8, "rng"));
    RLHF_TRY(r_bytes(r, &h->x.rng.inc, 8, "rng"));
    RLHF_TRY(r_bytes(r, &h->x.data_pos, 8, "data position"));
    RLHF_TRY(r_bytes(r, &h->has_m, 1, "flags"));
    RLHF_TRY(r_bytes(r, pad, 7, "flags"));
    rlhf_status st = rlhf_config_validate(&h->cfg);
    if (st != RLHF_OK)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: invalid config: %s", r->path, rlhf_last_error());
    rlhf_param_info t[RLHF_P_COUNT];
    if (h->P != rlhf_param_table(&h->cfg, t))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: parameter count %lld does not match its config",
                        r->path, (long long)h->P);
    size_t expect = r->pos + (size_t)h->P * 4 * (h->has_m ? 3 : 1) + 4;
    if (r->len != expect)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: %s: expected %zu bytes, found %zu", r->path,
                        r->len < expect ? "truncated" : "trailing bytes", expect, r->len);
    uint32_t crc_file;
    memcpy(&crc_file, r->buf + r->len - 4, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < r->len - 4;) {
        size_t n = r->len - 4 - off;
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, r->buf + off, chunk);
        off += chunk;
    }
    if ((uint32_t)crc != crc_file)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: checksum mismatch (file is corrupt)", r->path);
    return RLHF_OK;
}

rlhf_status rlhf_train_state_peek(const char *path, rlhf_model_config *c) {
    unsigned char *buf;
    size_t len;
    RLHF_TRY(read_whole(path, &buf, &len));
    rbuf r = {buf, len, 0, path};
    state_header h;
    rlhf_status st = parse_header(&r, &h);
    if (st == RLHF_OK) *c = h.cfg;
    rlhf_free(buf);
    return st;
}

rlhf_status rlhf_train_state_load(rlhf_model *m, rlhf_train_extra *x, const char *path) {
    unsigned char *buf;
    size_t len;
    RLHF_TRY(read_whole(path, &buf, &len));
    rbuf r = {buf, len, 0, path};
    state_header h;
    rlhf_status st;
    RLHF_TRY_GOTO(st, parse_header(&r, &h), done);
    const rlhf_model_config *c = &m->cfg;
    if (h.cfg.dim != c->dim || h.cfg.hidden_dim != c->hidden_dim || h.cfg.n_layer != c->n_layer ||
        h.cfg.n_head != c->n_head || h.cfg.n_head_kv != c->n_head_kv ||
        h.cfg.vocab_size != c->vocab_size || h.cfg.seq_len != c->seq_len ||
        h.cfg.tied_head != c->tied_head || h.cfg.head != c->head || h.P != m->P) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: model config in the state file differs from the model's",
                      path);
        goto done;
    }
    const size_t pb = (size_t)m->P * sizeof(float);
    RLHF_TRY_GOTO(st, m->be->to_device(m->be, m->params, buf + r.pos, pb), done);
    if (h.has_m) {
        RLHF_TRY_GOTO(st, model_alloc_moments(m), done);
        RLHF_TRY_GOTO(st, m->be->to_device(m->be, m->adam_m, buf + r.pos + pb, pb), done);
        RLHF_TRY_GOTO(st, m->be->to_device(m->be, m->adam_v, buf + r.pos + 2 * pb, pb), done);
    } else if (m->adam_m) { /* a state saved before any step: fresh moments */
        RLHF_TRY_GOTO(st, m->be->zero(m->be, m->adam_m, pb), done);
        RLHF_TRY_GOTO(st, m->be->zero(m->be, m->adam_v, pb), done);
    }
    m->step = h.step;
    if (x) *x = h.x;
    st = RLHF_OK;
done:
    rlhf_free(buf);
    return st;
}
