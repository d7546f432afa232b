/* ds_io.c: the plumbing under the dataset readers: byte buffers, the per-record arena, the
 * plain-or-gzip input stream with line and size limits, UTF-8 validation, and the read context
 * that counts records and reports bad ones as "file:line: reason". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds_impl.h"

#define DS_CHUNK ((size_t)1 << 16)

/* ---- ds_buf ---------------------------------------------------------------------------------------- */

rlhf_status ds_buf_reserve(ds_buf *b, size_t need) {
    if (need + 1 <= b->cap) return RLHF_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return RLHF_OK;
}

rlhf_status ds_buf_append(ds_buf *b, const char *s, size_t n) {
    RLHF_TRY(ds_buf_reserve(b, b->len + n));
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return RLHF_OK;
}

void ds_buf_free(ds_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- arena ------------------------------------------------------------------------------------------ */

struct ds_arena_block {
    ds_arena_block *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

void *ds_arena_alloc(ds_arena *a, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    ds_arena_block *b = a->head;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > 65536 ? bytes : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += bytes;
    return p;
}

char *ds_arena_strndup(ds_arena *a, const char *s, size_t n) {
    char *p = ds_arena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void ds_arena_reset(ds_arena *a) {
    while (a->head) {
        ds_arena_block *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

void ds_trim(const char **s, size_t *n) {
    const char *p = *s;
    size_t l = *n;
    while (l && strchr(" \t\n\r\f\v", p[0]) && p[0]) { p++; l--; }
    while (l && strchr(" \t\n\r\f\v", p[l - 1]) && p[l - 1]) l--;
    *s = p;
    *n = l;
}

/* ---- UTF-8 ------------------------------------------------------------------------------------------ */

bool ds_utf8_valid(const char *s, size_t n, size_t *bad_at) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t k;
        uint32_t cp, min;
        if (c == 0) goto bad;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else goto bad;
        if (n - i <= k) goto bad;
        for (size_t j = 1; j <= k; j++) {
            if ((u[i + j] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (u[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto bad;
        i += k + 1;
    }
    return true;
bad:
    if (bad_at) *bad_at = i;
    return false;
}

char *ds_utf8_sanitize(const char *s, size_t n) {
    char *o = malloc(3 * n + 1), *w = o; /* each bad byte grows to 3 */
    if (!o) return NULL;
    size_t i = 0, bad;
    while (i < n) {
        if (ds_utf8_valid(s + i, n - i, &bad)) bad = n - i;
        memcpy(w, s + i, bad);
        w += bad;
        i += bad;
        if (i < n) { /* the byte at i starts no valid sequence */
            memcpy(w, "\xEF\xBF\xBD", 3);
            w += 3;
            i++;
        }
    }
    *w = 0;
    return o;
}

/* ---- input stream -------------------------------------------------------------------------------- */

rlhf_status ds_in_open(ds_in *in, const char *path) {
    memset(in, 0, sizeof *in);
    in->path = path;
    in->line = 1;
    in->chunk = malloc(DS_CHUNK);
    if (!in->chunk) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory", path);
    errno = 0;
    in->gz = gzopen(path, "rb");
    if (!in->gz) {
        free(in->chunk);
        in->chunk = NULL;
        return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "gzopen failed");
    }
    gzbuffer(in->gz, 1 << 17);
    return RLHF_OK;
}

void ds_in_close(ds_in *in) {
    if (in->gz) gzclose(in->gz);
    in->gz = NULL;
    free(in->chunk);
    in->chunk = NULL;
}

/* Refills the chunk. Returns 1 with data, 0 at a clean end, -1 when the stream is damaged
 * (truncated or corrupt gzip); the bytes decoded before the damage are returned first as data. */
static int in_fill(ds_in *in) {
    in->pos = in->end = 0;
    if (in->damaged) return -1;
    if (in->eof) return 0;
    int r = gzread(in->gz, in->chunk, (unsigned)DS_CHUNK);
    int err = Z_OK;
    gzerror(in->gz, &err);
    if (r < 0 || (err != Z_OK && err != Z_STREAM_END)) {
        in->damaged = true;
        if (r <= 0) return -1;
    } else if (r == 0) {
        in->eof = true;
        return 0;
    }
    in->end = (size_t)r;
    return 1;
}

ds_in_result ds_in_line(ds_in *in, ds_buf *out, size_t max, int64_t *lineno) {
    out->len = 0;
    if (out->p) out->p[0] = '\0';
    *lineno = in->line;
    bool any = false, too_long = false;
    for (;;) {
        if (in->pos == in->end) {
            int f = in_fill(in);
            if (f < 0) return DS_IN_TRUNC;
            if (f == 0) break;
        }
        any = true;
        const char *s = in->chunk + in->pos;
        size_t avail = in->end - in->pos;
        const char *nl = memchr(s, '\n', avail);
        size_t take = nl ? (size_t)(nl - s) : avail;
        if (!too_long) {
            if (out->len + take > max || ds_buf_append(out, s, take) != RLHF_OK) too_long = true;
        }
        in->pos += take + (nl ? 1 : 0);
        if (nl) break;
    }
    if (!any) return DS_IN_EOF;
    in->line++;
    if (too_long) return DS_IN_TOO_LONG;
    if (out->len && out->p[out->len - 1] == '\r') out->p[--out->len] = '\0';
    return DS_IN_LINE;
}

ds_in_result ds_in_all(ds_in *in, ds_buf *out, size_t max) {
    out->len = 0;
    if (ds_buf_reserve(out, 0) != RLHF_OK) return DS_IN_TOO_LONG;
    out->p[0] = '\0';
    for (;;) {
        if (in->pos == in->end) {
            int f = in_fill(in);
            if (f < 0) return DS_IN_TRUNC;
            if (f == 0) return DS_IN_LINE;
        }
        size_t avail = in->end - in->pos;
        if (out->len + avail > max) return DS_IN_TOO_LONG;
        if (ds_buf_append(out, in->chunk + in->pos, avail) != RLHF_OK) return DS_IN_TOO_LONG;
        in->pos = in->end;
    }
}

/* ---- read context ---------------------------------------------------------------------------------- */

static bool str_ok(const char *s) { return !s || ds_utf8_valid(s, strlen(s), NULL); }

static bool turns_ok(const ds_turn *t, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        if (!str_ok(t[i].text)) return false;
    return true;
}

/* Which string of r is not valid UTF-8 (NULL when all are). Strings here come from C strings, so
 * an embedded NUL cannot occur; JSON "\u0000" is rejected by the parser. */
static const char *record_bad_field(const ds_record *r) {
    switch (r->kind) {
    case DS_PAIR:
        if (!str_ok(r->pair.context.system)) return "system";
        if (!turns_ok(r->pair.context.turns, r->pair.context.n_turns)) return "context";
        if (!str_ok(r->pair.chosen)) return "chosen";
        if (!str_ok(r->pair.rejected)) return "rejected";
        return NULL;
    case DS_PROMPT:
        if (!str_ok(r->prompt.text)) return "prompt";
        if (!str_ok(r->prompt.system)) return "system";
        if (!str_ok(r->prompt.category)) return "category";
        if (!turns_ok(r->prompt.turns, r->prompt.n_turns)) return "turns";
        return NULL;
    case DS_DIALOGUE:
        if (!str_ok(r->dialogue.system)) return "system";
        if (!turns_ok(r->dialogue.turns, r->dialogue.n_turns)) return "turns";
        return NULL;
    }
    return NULL;
}

rlhf_status ds_ctx_emit(ds_ctx *c, ds_record *r) {
    const char *badf = record_bad_field(r);
    if (badf) return ds_ctx_bad(c, r->line, "invalid UTF-8 in %s", badf);
    r->file = c->path;
    r->index = c->st.records++;
    c->st.good++;
    rlhf_status s = RLHF_OK;
    if (c->deliver && c->sink) s = c->sink(c->user, r);
    ds_arena_reset(&c->arena);
    return s;
}

rlhf_status ds_ctx_bad(ds_ctx *c, int64_t line, const char *fmt, ...) {
    char reason[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    ds_arena_reset(&c->arena);
    c->st.records++;
    c->st.bad++;
    if (c->o.skip_bad) {
        if (c->bad && c->deliver) c->bad(c->user, c->path, line, reason);
        return RLHF_OK;
    }
    return RLHF_ERR(RLHF_ERR_FORMAT, "%s:%lld: %s", c->path, (long long)line, reason);
}

void ds_ctx_reject(ds_ctx *c, bool same) {
    ds_arena_reset(&c->arena);
    c->st.records++;
    if (same) c->st.rejected_same++;
    else c->st.rejected_context++;
}

rlhf_status ds_ctx_nomem(ds_ctx *c) {
    ds_arena_reset(&c->arena);
    return RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory", c->path);
}
