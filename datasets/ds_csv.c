/* ds_csv.c: CSV readers through libcsv, for preference pairs and prompts. The first row names the
 * columns (case-insensitive): pairs need prompt, chosen, rejected and may have system, rating,
 * track, chosen_safe, rejected_safe; prompts need prompt (or goal as in AdvBench, question,
 * instruction, text) and may have system, unsafe, category (or act as in the personas file).
 * Other columns are ignored. The input is fed to libcsv one physical line at a time so that every
 * record knows the line it starts on, even with quoted fields spanning lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <csv.h>

#include "ds_impl.h"

enum { COL_PROMPT, COL_SYSTEM, COL_CHOSEN, COL_REJECTED, COL_RATING, COL_TRACK, COL_UNSAFE,
       COL_CATEGORY, COL_ACT, COL_CHOSEN_SAFE, COL_REJECTED_SAFE, COL_N };
static const char *const COL_NAMES[COL_N][6] = {
    [COL_PROMPT] = {"prompt", "goal", "question", "instruction", "text", NULL},
    [COL_SYSTEM] = {"system", "system_prompt", NULL},
    [COL_CHOSEN] = {"chosen", NULL},
    [COL_REJECTED] = {"rejected", NULL},
    [COL_RATING] = {"rating", NULL},
    [COL_TRACK] = {"track", NULL},
    [COL_UNSAFE] = {"unsafe", NULL},
    [COL_CATEGORY] = {"category", NULL},
    [COL_ACT] = {"act", NULL},
    [COL_CHOSEN_SAFE] = {"chosen_safe", NULL},
    [COL_REJECTED_SAFE] = {"rejected_safe", NULL},
};

typedef struct csv_state {
    ds_ctx *c;
    ds_format f;
    ds_buf data;   /* the current row's fields, each NUL-terminated */
    size_t *off;   /* (nf) field offsets into data */
    size_t nf, capf;
    bool too_long; /* the current row went past the record limit */
    bool oom;
    bool have_header;
    int col[COL_N]; /* column index of each known name, -1 when absent */
    size_t ncols;
    int64_t rec_line;
    bool in_record;
    rlhf_status st; /* first error from emitting; stops the read */
} csv_state;

static void on_field(void *s_, size_t len, void *p) {
    csv_state *s = p;
    if (s->st || s->oom) return;
    if (s->data.len + len > s->c->max_rec) s->too_long = true;
    if (s->too_long) { s->nf++; return; }
    if (s->nf == s->capf) {
        size_t nc = s->capf ? s->capf * 2 : 16;
        size_t *o = realloc(s->off, nc * sizeof *o);
        if (!o) { s->oom = true; return; }
        s->off = o;
        s->capf = nc;
    }
    s->off[s->nf++] = s->data.len;
    if (ds_buf_append(&s->data, s_ ? s_ : "", len) != RLHF_OK || ds_buf_append(&s->data, "", 1) != RLHF_OK)
        s->oom = true;
}

static const char *fld(const csv_state *s, int col) {
    if (col < 0 || (size_t)col >= s->nf) return NULL;
    return s->data.p + s->off[col];
}

/* "1/true/yes/unsafe" -> 1 (or 0 when flip: safe columns), "0/false/no/safe" -> the other, "" -> -1,
 * anything else -> -2. */
static int tri(const char *v, bool safe_col) {
    if (!v) return -1;
    const char *t = v;
    size_t n = strlen(v);
    ds_trim(&t, &n);
    if (n == 0) return -1;
    static const char *const yes[] = {"1", "true", "yes", NULL}, *const no[] = {"0", "false", "no", NULL};
    for (int i = 0; yes[i]; i++)
        if (strlen(yes[i]) == n && !strncasecmp(t, yes[i], n)) return 1;
    for (int i = 0; no[i]; i++)
        if (strlen(no[i]) == n && !strncasecmp(t, no[i], n)) return 0;
    if (n == 4 && !strncasecmp(t, "safe", 4)) return safe_col ? 1 : 0;
    if (n == 6 && !strncasecmp(t, "unsafe", 6)) return safe_col ? 0 : 1;
    return -2;
}

static rlhf_status row_header(csv_state *s) {
    for (int k = 0; k < COL_N; k++) s->col[k] = -1;
    for (size_t i = 0; i < s->nf; i++) {
        const char *name = s->data.p + s->off[i];
        size_t n = strlen(name);
        if (i == 0 && n >= 3 && !memcmp(name, "\xEF\xBB\xBF", 3)) { name += 3; n -= 3; } /* BOM */
        ds_trim(&name, &n);
        for (int k = 0; k < COL_N; k++)
            for (int a = 0; COL_NAMES[k][a]; a++)
                if (s->col[k] < 0 && strlen(COL_NAMES[k][a]) == n && !strncasecmp(name, COL_NAMES[k][a], n))
                    s->col[k] = (int)i;
    }
    s->ncols = s->nf;
    s->have_header = true;
    if (s->f == DS_FMT_AUTO)
        s->f = (s->col[COL_CHOSEN] >= 0 && s->col[COL_REJECTED] >= 0) ? DS_FMT_CSV_PAIRS : DS_FMT_CSV_PROMPTS;
    static const int need_pairs[] = {COL_PROMPT, COL_CHOSEN, COL_REJECTED};
    int nneed = s->f == DS_FMT_CSV_PAIRS ? 3 : 1;
    for (int k = 0; k < nneed; k++)
        if (s->col[need_pairs[k]] < 0)
            return RLHF_ERR(RLHF_ERR_FORMAT, "%s:%lld: missing column \"%s\" in the header row", s->c->path,
                            (long long)s->rec_line, COL_NAMES[need_pairs[k]][0]);
    return RLHF_OK;
}

static rlhf_status row_record(csv_state *s) {
    ds_ctx *c = s->c;
    int64_t line = s->rec_line;
    if (s->nf != s->ncols)
        return ds_ctx_bad(c, line, "expected %zu fields as in the header, got %zu", s->ncols, s->nf);
    const char *prompt = fld(s, s->col[COL_PROMPT]);
    const char *system = fld(s, s->col[COL_SYSTEM]);
    if (system && !*system) system = NULL;
    if (!prompt || !*prompt) return ds_ctx_bad(c, line, "empty prompt");
    ds_record r = {.line = line};
    if (s->f == DS_FMT_CSV_PAIRS) {
        ds_turn *t = ds_arena_alloc(&c->arena, sizeof *t);
        if (!t) return ds_ctx_nomem(c);
        t->role = DS_ROLE_USER;
        t->text = prompt;
        r.kind = DS_PAIR;
        r.pair.context.system = system;
        r.pair.context.turns = t;
        r.pair.context.n_turns = 1;
        r.pair.chosen = fld(s, s->col[COL_CHOSEN]);
        r.pair.rejected = fld(s, s->col[COL_REJECTED]);
        r.pair.track = c->o.track;
        const char *tr = fld(s, s->col[COL_TRACK]);
        if (tr && *tr && !ds_track_parse(tr, &r.pair.track)) return ds_ctx_bad(c, line, "unknown track \"%.40s\"", tr);
        const char *ra = fld(s, s->col[COL_RATING]);
        r.pair.rating = DS_RATING_NONE;
        if (ra && *ra && !ds_rating_parse(ra, &r.pair.rating)) return ds_ctx_bad(c, line, "unknown rating \"%.40s\"", ra);
        int cs = tri(fld(s, s->col[COL_CHOSEN_SAFE]), true), rs = tri(fld(s, s->col[COL_REJECTED_SAFE]), true);
        if (cs == -2 || rs == -2) return ds_ctx_bad(c, line, "chosen_safe/rejected_safe must be 1/0, true/false or safe/unsafe");
        r.pair.chosen_safe = (int8_t)cs;
        r.pair.rejected_safe = (int8_t)rs;
        if (!strcmp(r.pair.chosen, r.pair.rejected)) {
            ds_ctx_reject(c, true);
            return RLHF_OK;
        }
    } else {
        r.kind = DS_PROMPT;
        r.prompt.text = prompt;
        r.prompt.system = system;
        const char *cat = fld(s, s->col[COL_CATEGORY]);
        if (!cat || !*cat) cat = fld(s, s->col[COL_ACT]);
        r.prompt.category = (cat && *cat) ? cat : NULL;
        int u = tri(fld(s, s->col[COL_UNSAFE]), false);
        if (u == -2) return ds_ctx_bad(c, line, "unsafe must be 1/0, true/false or yes/no");
        r.prompt.unsafe = c->o.unsafe == 1 ? 1 : (int8_t)u;
    }
    return ds_ctx_emit(c, &r);
}

static void row_reset(csv_state *s) {
    s->nf = 0;
    s->data.len = 0;
    s->too_long = false;
    s->in_record = false;
}

static void on_row(int term, void *p) {
    csv_state *s = p;
    (void)term;
    if (s->st) { row_reset(s); return; }
    if (s->oom) { s->st = ds_ctx_nomem(s->c); row_reset(s); return; }
    if (s->too_long) s->st = ds_ctx_bad(s->c, s->rec_line, "record longer than the %zu-byte limit", s->c->max_rec);
    else if (!s->have_header) s->st = row_header(s);
    else s->st = row_record(s);
    row_reset(s);
}

static const unsigned char CSV_OPTS = CSV_STRICT | CSV_STRICT_FINI;

rlhf_status ds_read_csv(ds_ctx *c, ds_format f) {
    ds_in in;
    RLHF_TRY(ds_in_open(&in, c->path));
    struct csv_parser p;
    if (csv_init(&p, CSV_OPTS) != 0) {
        ds_in_close(&in);
        return ds_ctx_nomem(c);
    }
    csv_state s = {.c = c, .f = f == DS_FMT_AUTO ? DS_FMT_AUTO : f};
    ds_buf line = {0};
    bool any = false;
    for (;;) {
        int64_t ln;
        ds_in_result r = ds_in_line(&in, &line, c->max_rec, &ln);
        if (r == DS_IN_EOF) break;
        if (!s.in_record) s.rec_line = ln;
        if (r == DS_IN_TRUNC) {
            s.st = ds_ctx_bad(c, s.in_record ? s.rec_line : ln, "truncated or corrupt gzip stream (the file ends inside the data)");
            any = true;
            goto out;
        }
        bool blank = r == DS_IN_LINE && line.len == 0;
        const char *nul = r == DS_IN_LINE ? memchr(line.p ? line.p : "", '\0', line.len) : NULL;
        if (r == DS_IN_TOO_LONG || nul) {
            any = true;
            if (!s.have_header) {
                s.st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:%lld: %s in the header row", c->path, (long long)s.rec_line,
                                nul ? "NUL byte" : "line longer than the record limit");
                goto out;
            }
            if (nul) s.st = ds_ctx_bad(c, s.rec_line, "NUL byte at line %lld column %zu", (long long)ln, (size_t)(nul - line.p) + 1);
            else s.st = ds_ctx_bad(c, s.rec_line, "line longer than the %zu-byte record limit", c->max_rec);
            if (s.st) goto out;
            csv_free(&p);
            csv_init(&p, CSV_OPTS);
            row_reset(&s);
            continue;
        }
        if (!blank || s.in_record) {
            if (!blank) any = true;
            s.in_record = true;
            if (ds_buf_append(&line, "\n", 1) != RLHF_OK) { s.st = ds_ctx_nomem(c); goto out; }
            size_t used = csv_parse(&p, line.p, line.len, on_field, on_row, &s);
            if (s.st) goto out;
            if (used != line.len) {
                int e = csv_error(&p);
                const char *why = e == CSV_EPARSE ? "malformed CSV: a quote inside an unquoted field or after a closing quote"
                                  : e == CSV_ENOMEM ? "out of memory" : e == CSV_ETOOBIG ? "field too big" : "malformed CSV";
                if (!s.have_header) {
                    s.st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:%lld: %s in the header row", c->path, (long long)s.rec_line, why);
                    goto out;
                }
                s.st = ds_ctx_bad(c, s.rec_line, "%s (line %lld)", why, (long long)ln);
                if (s.st) goto out;
                csv_free(&p);
                csv_init(&p, CSV_OPTS);
                row_reset(&s);
            }
        }
    }
    if (s.in_record) {
        if (csv_fini(&p, on_field, on_row, &s) != 0 && !s.st) {
            s.st = ds_ctx_bad(c, s.rec_line, "unterminated quoted field (unbalanced quotes run to the end of the file)");
            row_reset(&s);
        }
    }
    if (!s.st && !any) s.st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: empty file (no header row)", c->path);
    else if (!s.st && !s.have_header) s.st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: no header row", c->path);
    else if (!s.st && c->st.records == 0) s.st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:2: no records after the header row", c->path);
out:
    csv_free(&p);
    ds_buf_free(&line);
    ds_buf_free(&s.data);
    free(s.off);
    ds_in_close(&in);
    return s.st;
}
