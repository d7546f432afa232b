/* ds_read.c: the entry point of the dataset readers: format detection (extension, then content),
 * the stop-mode validation pass (a file with a bad record delivers nothing), enum names, and the
 * deterministic train/eval split by content hash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ds_impl.h"

ds_format ds_json_detect(const char *text, size_t n); /* ds_json.c */

/* ---- names -------------------------------------------------------------------------------------------- */

static const char *const FMT_NAMES[] = {"auto", "hh", "sharegpt", "nemo", "mtbench", "csv-pairs", "csv-prompts", "prompt-list"};
static const char *const TRACK_NAMES[] = {"none", "helpfulness", "safety"};
static const char *const RATING_NAMES[] = {"none", "significantly", "better", "slightly", "negligibly", "unsure"};
static const char *const ROLE_NAMES[] = {"system", "user", "assistant"};

static bool parse_name(const char *s, const char *const *names, int n, int *out) {
    if (!s) return false;
    size_t l = strlen(s);
    ds_trim(&s, &l);
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == l && !strncasecmp(s, names[i], l)) { *out = i; return true; }
    return false;
}

const char *ds_format_name(ds_format f) { return (unsigned)f < 8 ? FMT_NAMES[f] : "?"; }
const char *ds_track_name(ds_track t) { return (unsigned)t < 3 ? TRACK_NAMES[t] : "?"; }
const char *ds_rating_name(ds_rating r) { return (unsigned)r < 6 ? RATING_NAMES[r] : "?"; }
const char *ds_role_name(ds_role r) { return (unsigned)r < 3 ? ROLE_NAMES[r] : "?"; }

bool ds_format_parse(const char *name, ds_format *out) {
    int i;
    if (!parse_name(name, FMT_NAMES, 8, &i)) return false;
    *out = (ds_format)i;
    return true;
}
bool ds_track_parse(const char *name, ds_track *out) {
    int i;
    if (!parse_name(name, TRACK_NAMES, 3, &i)) {
        if (name && !strcasecmp(name, "helpful")) i = DS_TRACK_HELPFULNESS;
        else if (name && (!strcasecmp(name, "harmless") || !strcasecmp(name, "harmlessness"))) i = DS_TRACK_SAFETY;
        else return false;
    }
    *out = (ds_track)i;
    return true;
}
bool ds_rating_parse(const char *name, ds_rating *out) {
    int i;
    if (!parse_name(name, RATING_NAMES, 6, &i)) {
        /* the Llama 2 paper's wording: "significantly better", "slightly better", ... */
        static const char *const long_names[] = {"", "significantly better", "better", "slightly better",
                                                 "negligibly better", "unsure"};
        if (!parse_name(name, long_names, 6, &i)) return false;
    }
    *out = (ds_rating)i;
    return true;
}

/* ---- detection ------------------------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

typedef enum { CONT_JSONL, CONT_JSONDOC, CONT_CSV } container;

/* Reads the first bytes of the (decompressed) file into b. */
static rlhf_status peek(const char *path, ds_buf *b, size_t n) {
    ds_in in;
    RLHF_TRY(ds_in_open(&in, path));
    b->len = 0;
    rlhf_status st = ds_buf_reserve(b, n);
    if (!st) {
        int r = gzread(in.gz, b->p, (unsigned)n);
        b->len = r > 0 ? (size_t)r : 0;
        b->p[b->len] = '\0';
    }
    ds_in_close(&in);
    return st;
}

static const char *first_nonspace(const ds_buf *b) {
    for (size_t i = 0; i < b->len; i++)
        if (!strchr(" \t\r\n", b->p[i]) || !b->p[i]) return b->p + i;
    return NULL;
}

/* Chooses the container from the format, the extension and the first bytes. */
static rlhf_status pick(const char *path, ds_format f, container *cont, ds_format *fmt_out) {
    *fmt_out = f;
    if (f == DS_FMT_CSV_PAIRS || f == DS_FMT_CSV_PROMPTS) { *cont = CONT_CSV; return RLHF_OK; }
    bool csv_ext = ends_with(path, ".csv") || ends_with(path, ".csv.gz");
    if (f == DS_FMT_AUTO && csv_ext) { *cont = CONT_CSV; return RLHF_OK; }
    ds_buf b = {0};
    rlhf_status st = peek(path, &b, 1 << 20);
    if (st) { ds_buf_free(&b); return st; }
    const char *p = first_nonspace(&b);
    if (!p) {
        ds_buf_free(&b);
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: empty file (no records)", path);
    }
    if (*p == '[') {
        *cont = CONT_JSONDOC;
    } else if (*p == '{') {
        if (f == DS_FMT_HH || f == DS_FMT_NEMO || f == DS_FMT_MTBENCH || f == DS_FMT_SHAREGPT) {
            *cont = CONT_JSONL;
        } else {
            /* a complete JSON value on the first line: JSON lines; else one (nested) document */
            const char *nl = memchr(p, '\n', b.len - (size_t)(p - b.p));
            size_t l = nl ? (size_t)(nl - p) : b.len - (size_t)(p - b.p);
            json_t *one = json_loadb(p, l, 0, NULL);
            *cont = one ? CONT_JSONL : CONT_JSONDOC;
            json_decref(one);
        }
    } else if (f == DS_FMT_AUTO || f == DS_FMT_PROMPT_LIST) {
        *cont = f == DS_FMT_AUTO ? CONT_CSV : CONT_JSONDOC;
    } else {
        ds_buf_free(&b);
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: not JSON (expected '{' or '[')", path);
    }
    ds_buf_free(&b);
    return RLHF_OK;
}

rlhf_status ds_format_detect(const char *path, ds_format *out) {
    *out = DS_FMT_AUTO;
    container cont;
    ds_format f;
    RLHF_TRY(pick(path, DS_FMT_AUTO, &cont, &f));
    ds_buf b = {0};
    rlhf_status st = peek(path, &b, cont == CONT_JSONDOC ? (size_t)64 << 20 : (size_t)1 << 20);
    if (st) { ds_buf_free(&b); return st; }
    if (cont == CONT_CSV) {
        const char *nl = memchr(b.p, '\n', b.len);
        size_t l = nl ? (size_t)(nl - b.p) : b.len;
        /* header names: a crude check is enough here, ds_read parses it properly */
        char *h = strndup(b.p, l);
        if (!h) { ds_buf_free(&b); return RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory", path); }
        for (char *q = h; *q; q++) *q = (char)((*q >= 'A' && *q <= 'Z') ? *q - 'A' + 'a' : *q);
        *out = (strstr(h, "chosen") && strstr(h, "rejected")) ? DS_FMT_CSV_PAIRS : DS_FMT_CSV_PROMPTS;
        free(h);
    } else {
        const char *p = first_nonspace(&b);
        size_t off = p ? (size_t)(p - b.p) : b.len;
        *out = ds_json_detect(b.p + off, b.len - off);
        if (cont == CONT_JSONDOC && *p == '{') *out = DS_FMT_PROMPT_LIST;
    }
    ds_buf_free(&b);
    return RLHF_OK;
}

/* ---- ds_read ------------------------------------------------------------------------------------------ */

static rlhf_status run_pass(ds_ctx *c, container cont, ds_format f) {
    memset(&c->st, 0, sizeof c->st);
    switch (cont) {
    case CONT_CSV: return ds_read_csv(c, f);
    case CONT_JSONL: return ds_read_jsonl(c, f);
    case CONT_JSONDOC: return ds_read_jsondoc(c, f);
    }
    return RLHF_ERR(RLHF_ERR_ARG, "bad container");
}

rlhf_status ds_read(const char *path, const ds_read_opts *o, ds_sink sink, ds_bad_fn bad,
                    void *ctx, ds_read_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!path) return RLHF_ERR(RLHF_ERR_ARG, "ds_read: no path");
    ds_ctx c = {.path = path, .sink = sink, .bad = bad, .user = ctx};
    if (o) c.o = *o;
    else c.o.unsafe = -1;
    c.max_rec = c.o.max_record_bytes > 0 ? (size_t)c.o.max_record_bytes : DS_MAX_RECORD_BYTES;
    if ((unsigned)c.o.format > DS_FMT_PROMPT_LIST) return RLHF_ERR(RLHF_ERR_ARG, "%s: unknown format %d", path, (int)c.o.format);
    container cont;
    ds_format f;
    rlhf_status st = pick(path, c.o.format, &cont, &f);
    if (!st && !c.o.skip_bad && !c.o.no_prescan) {
        /* stop mode: validate the whole file first, so that a bad record delivers nothing */
        c.deliver = false;
        st = run_pass(&c, cont, f);
    }
    if (!st) {
        c.deliver = true;
        st = run_pass(&c, cont, f);
    }
    ds_arena_reset(&c.arena);
    if (stats) *stats = c.st;
    return st;
}

/* ---- split ------------------------------------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const char *s) {
    h ^= s ? 0x5bd1e995u : 0x27d4eb2fu; /* NULL and "" hash differently */
    h *= 0x100000001b3ull;
    if (s)
        for (; *s; s++) { h ^= (unsigned char)*s; h *= 0x100000001b3ull; }
    h ^= 0xff; /* field separator */
    h *= 0x100000001b3ull;
    return h;
}

static uint64_t fnv_turns(uint64_t h, const ds_turn *t, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        char r[2] = {(char)('0' + t[i].role), 0};
        h = fnv(fnv(h, r), t[i].text);
    }
    return h;
}

bool ds_split_is_eval(const ds_record *r, double fraction) {
    if (!(fraction > 0)) return false;
    if (fraction >= 1) return true;
    uint64_t h = 0xcbf29ce484222325ull;
    char k[2] = {(char)('0' + r->kind), 0};
    h = fnv(h, k);
    switch (r->kind) {
    case DS_PAIR:
        h = fnv(h, r->pair.context.system);
        h = fnv_turns(h, r->pair.context.turns, r->pair.context.n_turns);
        h = fnv(fnv(h, r->pair.chosen), r->pair.rejected);
        break;
    case DS_PROMPT:
        h = fnv(fnv(h, r->prompt.text), r->prompt.system);
        h = fnv_turns(h, r->prompt.turns, r->prompt.n_turns);
        break;
    case DS_DIALOGUE:
        h = fnv(h, r->dialogue.system);
        h = fnv_turns(h, r->dialogue.turns, r->dialogue.n_turns);
        break;
    }
    /* splitmix64 finalizer: spread FNV's low-entropy high bits */
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27; h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return (double)(h >> 11) * 0x1.0p-53 < fraction;
}
