/* ds_impl.h: internals shared by the dataset readers (not a public header).
 * An input stream over plain or gzip files (zlib reads both) that hands out lines or the whole
 * document with a size limit, a per-record arena, and the read context that counts records and
 * turns bad ones into "file:line: reason" errors or skip reports. */
#ifndef DS_IMPL_H
#define DS_IMPL_H

#include <stdarg.h>
#include <zlib.h>

#include "ds.h"

/* ---- growable byte buffer ---------------------------------------------------------------------- */
typedef struct ds_buf {
    char *p;
    size_t len, cap;
} ds_buf;
rlhf_status ds_buf_reserve(ds_buf *b, size_t need); /* room for need bytes + NUL */
rlhf_status ds_buf_append(ds_buf *b, const char *s, size_t n); /* keeps p NUL-terminated */
void ds_buf_free(ds_buf *b);

/* ---- arena: memory for one record's strings and turn arrays, reset after each record ---------- */
typedef struct ds_arena_block ds_arena_block;
typedef struct ds_arena {
    ds_arena_block *head;
} ds_arena;
void *ds_arena_alloc(ds_arena *a, size_t bytes);             /* NULL on out of memory */
char *ds_arena_strndup(ds_arena *a, const char *s, size_t n); /* NUL-terminated copy */
void ds_arena_reset(ds_arena *a);                             /* frees everything */

/* ---- input stream -------------------------------------------------------------------------------- */
typedef struct ds_in {
    gzFile gz;
    const char *path;
    char *chunk; /* (DS_CHUNK) read buffer */
    size_t pos, end;
    bool eof, damaged;
    int64_t line; /* 1-based number of the line that the next ds_in_line returns */
} ds_in;
rlhf_status ds_in_open(ds_in *in, const char *path); /* RLHF_ERR_IO naming the file */
void ds_in_close(ds_in *in);
typedef enum ds_in_result {
    DS_IN_LINE = 0, /* *line holds the line without its "\n" (a "\r" before it is dropped) */
    DS_IN_EOF,      /* nothing more */
    DS_IN_TOO_LONG, /* the line was longer than max: it was consumed and dropped */
    DS_IN_TRUNC,    /* the gzip stream is truncated or corrupt (*line holds what was read) */
} ds_in_result;
/* Reads the next line into out (replacing its content); *lineno gets its 1-based number. */
ds_in_result ds_in_line(ds_in *in, ds_buf *out, size_t max, int64_t *lineno);
/* Reads the rest of the stream into out. DS_IN_TOO_LONG when more than max bytes. */
ds_in_result ds_in_all(ds_in *in, ds_buf *out, size_t max);

/* ---- read context ---------------------------------------------------------------------------------- */
typedef struct ds_ctx {
    const char *path;
    ds_read_opts o;
    ds_sink sink;
    ds_bad_fn bad;
    void *user;
    bool deliver;    /* false during the validation pass of stop mode */
    size_t max_rec;  /* record size limit */
    ds_read_stats st;
    ds_arena arena;
} ds_ctx;

/* Counts r as a good record and delivers it (fills file and index). Validates every string in it
 * as UTF-8 first; an invalid one makes it a bad record instead. Resets the arena. */
rlhf_status ds_ctx_emit(ds_ctx *c, ds_record *r);
/* Counts a bad record at line. Skip mode: reports it through bad and returns RLHF_OK. Stop mode:
 * RLHF_ERR_FORMAT with "path:line: reason". Resets the arena. */
rlhf_status ds_ctx_bad(ds_ctx *c, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Counts a record that is neither good nor bad (HH pairs rejected: same responses or contexts). */
void ds_ctx_reject(ds_ctx *c, bool same);
/* Out-of-memory error naming the file. */
rlhf_status ds_ctx_nomem(ds_ctx *c);

/* Readers, one per container kind (ds_json.c, ds_csv.c). */
rlhf_status ds_read_jsonl(ds_ctx *c, ds_format f);  /* HH, NeMo, MT-Bench, JSONL dialogues/prompts */
rlhf_status ds_read_jsondoc(ds_ctx *c, ds_format f); /* ShareGPT arrays, prompt lists */
rlhf_status ds_read_csv(ds_ctx *c, ds_format f);     /* CSV pairs and prompts */

/* Trims ASCII whitespace (space, \t, \n, \r, \f, \v) on both sides: *s advanced, *n shortened. */
void ds_trim(const char **s, size_t *n);

#endif /* DS_IMPL_H */
