/* cmd_report.c: `rlhf report RUN [--out FILE]`, the run report: one self-contained HTML page
 * (inline CSS and SVG, no script, nothing fetched) written atomically to RUN/report/index.html.
 *
 * Everything on the page is read from the run store; every section names where its numbers come
 * from (the stage ids and the command that wrote them) and says "not run" when the run has no such
 * data. Sections:
 *   summary      rows per table, the stages (status, progress, duration), checkpoint lineage
 *   rm           reward-model accuracy per preference strength (rm-eval stages; Table 8 layout)
 *   best-of-k    max and median reward of best-of-k per round (rs-report), per temperature (rs-sweep)
 *   selections   rejection-sampling selections per round (selections table)
 *   ppo          gated and final reward and KL per iteration, one chart per ppo stage
 *   gold         gold helpfulness and safety per policy (judgments table, when the run has one) and
 *                world-compare win rates
 *   gatt         instruction recall by turn, one series per gatt-eval stage (policy)
 *   training     loss per step of sft, rm-train and pretrain stages
 * The charts come from report/svg.h, the same code that draws the commands' own SVG files. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"
#include "svg.h"

/* ---- what is read from the store ----------------------------------------------------------- */

typedef struct stage_row {
    int64_t id, progress, total; /* total -1: unknown */
    char *kind, *key, *params, *status, *started, *ended, *error, *result;
    double secs; /* ended - started; NaN while running */
} stage_row;

typedef struct ckpt_row {
    int64_t id, parent, step, stage;
    char *role, *path;
} ckpt_row;

typedef struct report {
    rlhf_store *s;
    const char *run;
    stage_row *st; /* (n_st) in id order */
    int64_t n_st, cap_st;
    ckpt_row *ck; /* (n_ck) in id order */
    int64_t n_ck, cap_ck;
    svg_buf h; /* the page */
    int32_t n_data, n_not_run;
} report;

static rlhf_status stage_row_add(void *ctx, const rlhf_store_row *r) {
    report *rp = ctx;
    if (rp->n_st == rp->cap_st) {
        int64_t cap = rp->cap_st ? 2 * rp->cap_st : 64;
        stage_row *v = realloc(rp->st, (size_t)cap * sizeof *v);
        if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        rp->st = v;
        rp->cap_st = cap;
    }
    stage_row *x = &rp->st[rp->n_st];
    *x = (stage_row){.id = (int64_t)r->num[0], .progress = (int64_t)r->num[8],
                     .total = isnan(r->num[9]) ? -1 : (int64_t)r->num[9], .secs = r->num[10]};
    char **dst[8] = {&x->kind, &x->key, &x->params, &x->status, &x->started, &x->ended, &x->error,
                     &x->result};
    const int col[8] = {1, 2, 3, 4, 5, 6, 7, 11};
    rp->n_st++; /* counted before the copies so that a failed copy is freed with the rest */
    for (int i = 0; i < 8; i++) {
        *dst[i] = cli_strdup(r->text[col[i]]);
        if (r->text[col[i]] && !*dst[i]) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    }
    return RLHF_OK;
}

static rlhf_status ckpt_row_add(void *ctx, const rlhf_store_checkpoint *c) {
    report *rp = ctx;
    if (rp->n_ck == rp->cap_ck) {
        int64_t cap = rp->cap_ck ? 2 * rp->cap_ck : 32;
        ckpt_row *v = realloc(rp->ck, (size_t)cap * sizeof *v);
        if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        rp->ck = v;
        rp->cap_ck = cap;
    }
    ckpt_row *x = &rp->ck[rp->n_ck++];
    *x = (ckpt_row){c->id, c->parent_id, c->step, c->stage_id, cli_strdup(c->role),
                    cli_strdup(c->path)};
    if (!x->role || !x->path) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    return RLHF_OK;
}

static void report_free(report *rp) {
    for (int64_t i = 0; i < rp->n_st; i++) {
        stage_row *x = &rp->st[i];
        free(x->kind), free(x->key), free(x->params), free(x->status), free(x->started);
        free(x->ended), free(x->error), free(x->result);
    }
    free(rp->st);
    for (int64_t i = 0; i < rp->n_ck; i++) free(rp->ck[i].role), free(rp->ck[i].path);
    free(rp->ck);
    svg_buf_free(&rp->h);
}

static const ckpt_row *ckpt_find(const report *rp, int64_t id) {
    for (int64_t i = 0; i < rp->n_ck; i++)
        if (rp->ck[i].id == id) return &rp->ck[i];
    return NULL;
}

/* path relative to the run when it lies inside it */
static const char *rel_path(const report *rp, const char *path) {
    size_t n = strlen(rp->run);
    while (n > 1 && rp->run[n - 1] == '/') n--;
    if (path && strncmp(path, rp->run, n) == 0 && path[n] == '/') return path + n + 1;
    return path ? path : "";
}

/* "#id role (path)" of a checkpoint, or "#id" when it is not registered. */
static void ckpt_label(const report *rp, int64_t id, char *buf, size_t cap) {
    const ckpt_row *c = ckpt_find(rp, id);
    if (c) snprintf(buf, cap, "#%" PRId64 " %s (%s)", id, c->role, rel_path(rp, c->path));
    else snprintf(buf, cap, "#%" PRId64, id);
}

/* An integer field of a stage's params JSON, -1 when absent. */
static int64_t param_int(const stage_row *x, const char *name) {
    json_t *j = x->params ? json_loads(x->params, 0, NULL) : NULL;
    json_t *v = j ? json_object_get(j, name) : NULL;
    int64_t r = v && json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
    json_decref(j);
    return r;
}

/* A string field of a stage's params JSON into buf ("" when absent). */
static void param_str(const stage_row *x, const char *name, char *buf, size_t cap) {
    json_t *j = x->params ? json_loads(x->params, 0, NULL) : NULL;
    json_t *v = j ? json_object_get(j, name) : NULL;
    snprintf(buf, cap, "%s", v && json_is_string(v) ? json_string_value(v) : "");
    json_decref(j);
}

/* ---- a stage's metrics, grouped by name ---------------------------------------------------- */

typedef struct mseries {
    char *name;
    double *x, *y; /* (n) step and value, by step */
    int32_t n, cap;
} mseries;

typedef struct mset {
    mseries *v;
    int32_t n, cap;
} mset;

static rlhf_status mset_add(void *ctx, int64_t stage, int64_t step, const char *name, double v) {
    (void)stage;
    mset *m = ctx;
    mseries *s = m->n > 0 && strcmp(m->v[m->n - 1].name, name) == 0 ? &m->v[m->n - 1] : NULL;
    if (!s) { /* rows come ordered by name, then step */
        if (m->n == m->cap) {
            int32_t cap = m->cap ? 2 * m->cap : 16;
            mseries *nv = realloc(m->v, (size_t)cap * sizeof *nv);
            if (!nv) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            m->v = nv;
            m->cap = cap;
        }
        s = &m->v[m->n++];
        *s = (mseries){0};
        s->name = cli_strdup(name);
        if (!s->name) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    }
    if (s->n == s->cap) {
        int32_t cap = s->cap ? 2 * s->cap : 16;
        double *x = realloc(s->x, (size_t)cap * sizeof *x);
        if (!x) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        s->x = x;
        double *y = realloc(s->y, (size_t)cap * sizeof *y);
        if (!y) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        s->y = y;
        s->cap = cap;
    }
    s->x[s->n] = (double)step;
    s->y[s->n++] = v;
    return RLHF_OK;
}

static void mset_free(mset *m) {
    for (int32_t i = 0; i < m->n; i++) free(m->v[i].name), free(m->v[i].x), free(m->v[i].y);
    free(m->v);
    *m = (mset){0};
}

static rlhf_status mset_load(report *rp, int64_t stage, mset *m) {
    *m = (mset){0};
    rlhf_status st = rlhf_store_metrics_each(rp->s, stage, mset_add, m);
    if (st != RLHF_OK) mset_free(m);
    return st;
}

static const mseries *mset_get(const mset *m, const char *name) {
    for (int32_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].name, name) == 0) return &m->v[i];
    return NULL;
}

/* The value at step 0 (else the last step) of a metric; NaN when absent. */
static double mset_value(const mset *m, const char *name) {
    const mseries *s = mset_get(m, name);
    if (!s || s->n == 0) return NAN;
    for (int32_t i = 0; i < s->n; i++)
        if (s->x[i] == 0) return s->y[i];
    return s->y[s->n - 1];
}

/* ---- HTML pieces ----------------------------------------------------------------------------- */

static void h_text(report *rp, const char *s) { svg_buf_escape(&rp->h, s); }

static void h_fmt(report *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends printf text, escaped. */
static void h_fmt(report *rp, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    svg_buf_escape(&rp->h, buf);
}

static void h_section(report *rp, const char *id, const char *title) {
    svg_buf_printf(&rp->h, "<section id=\"%s\">\n<h2>", id);
    h_text(rp, title);
    svg_buf_puts(&rp->h, "</h2>\n");
}

/* "Source: ..." under a section title (text escaped). */
static void h_source(report *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void h_source(report *rp, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    svg_buf_puts(&rp->h, "<p class=\"src\">Source: ");
    svg_buf_escape(&rp->h, buf);
    svg_buf_puts(&rp->h, "</p>\n");
}

static void h_not_run(report *rp, const char *why) {
    svg_buf_puts(&rp->h, "<p class=\"notrun\">not run");
    if (why) {
        svg_buf_puts(&rp->h, ": ");
        h_text(rp, why);
    }
    svg_buf_puts(&rp->h, "</p>\n");
}

static rlhf_status h_chart(report *rp, const svg_chart *c, bool bars) {
    svg_buf_puts(&rp->h, "<figure>\n");
    RLHF_TRY(bars ? svg_bar_chart(&rp->h, c) : svg_line_chart(&rp->h, c));
    svg_buf_puts(&rp->h, "</figure>\n");
    return RLHF_OK;
}

/* A number cell: 4 decimals, "-" for NaN. */
static void h_num(report *rp, double v) {
    if (isfinite(v)) svg_buf_printf(&rp->h, "<td>%.4f</td>", v);
    else svg_buf_puts(&rp->h, "<td>-</td>");
}

/* Stage ids of a kind, as "3, 7, 9" (for source lines). */
static void stage_ids(const report *rp, const char *kind, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (int64_t i = 0; i < rp->n_st && n + 24 < cap; i++)
        if (strcmp(rp->st[i].kind, kind) == 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, n ? ", " : "", rp->st[i].id);
}

static bool is_kind(const stage_row *x, const char *kind) { return strcmp(x->kind, kind) == 0; }

/* ---- summary --------------------------------------------------------------------------------- */

static rlhf_status count_row(void *ctx, const rlhf_store_row *r) {
    *(int64_t *)ctx = (int64_t)r->num[0];
    return RLHF_OK;
}

static rlhf_status sec_summary(report *rp) {
    static const char *const tables[] = {"prompts",   "pairs",      "dialogues", "samples",
                                         "scores",    "selections", "rollouts",  "checkpoints",
                                         "stages",    "metrics"};
    h_section(rp, "summary", "Run summary");
    h_source(rp, "%s/rlhf.db (tables, stages, checkpoints); `rlhf status RUN` prints the same counts",
             rp->run);
    svg_buf_puts(&rp->h, "<h3>Rows per table</h3>\n<table class=\"counts\"><tr>");
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++)
        svg_buf_printf(&rp->h, "<th>%s</th>", tables[i]);
    bool has_j = false;
    RLHF_TRY(rlhf_store_table_exists(rp->s, "judgments", &has_j));
    if (has_j) svg_buf_puts(&rp->h, "<th>judgments</th>");
    svg_buf_puts(&rp->h, "</tr>\n<tr>");
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        int64_t n = 0;
        RLHF_TRY(rlhf_store_count(rp->s, tables[i], &n));
        svg_buf_printf(&rp->h, "<td data-table=\"%s\">%" PRId64 "</td>", tables[i], n);
    }
    if (has_j) {
        int64_t n = 0;
        RLHF_TRY(rlhf_store_query_each(rp->s, "SELECT count(*) FROM judgments", NULL, 0, count_row,
                                       &n));
        svg_buf_printf(&rp->h, "<td data-table=\"judgments\">%" PRId64 "</td>", n);
    }
    svg_buf_puts(&rp->h, "</tr></table>\n<h3>Stages</h3>\n");
    if (rp->n_st == 0) {
        svg_buf_puts(&rp->h, "<p>No stages yet.</p>\n");
    } else {
        svg_buf_puts(&rp->h, "<table><tr><th>id</th><th>kind</th><th>key</th><th>status</th>"
                             "<th>progress</th><th>started (UTC)</th><th>duration</th></tr>\n");
        for (int64_t i = 0; i < rp->n_st; i++) {
            const stage_row *x = &rp->st[i];
            svg_buf_printf(&rp->h, "<tr><td>%" PRId64 "</td><td>", x->id);
            h_text(rp, x->kind);
            svg_buf_puts(&rp->h, "</td><td class=\"key\">");
            char key[100];
            snprintf(key, sizeof key, "%s", x->key ? x->key : "");
            if (x->key && strlen(x->key) >= sizeof key) memcpy(key + sizeof key - 4, "...", 4);
            h_text(rp, key);
            svg_buf_printf(&rp->h, "</td><td class=\"%s\">", x->status);
            h_text(rp, x->status);
            if (x->error) {
                svg_buf_puts(&rp->h, ": ");
                h_text(rp, x->error);
            }
            svg_buf_printf(&rp->h, "</td><td>%" PRId64, x->progress);
            if (x->total >= 0) svg_buf_printf(&rp->h, " / %" PRId64, x->total);
            svg_buf_puts(&rp->h, "</td><td>");
            h_text(rp, x->started);
            if (isfinite(x->secs)) svg_buf_printf(&rp->h, "</td><td>%.1f s</td></tr>\n", x->secs);
            else svg_buf_puts(&rp->h, "</td><td>-</td></tr>\n");
        }
        svg_buf_puts(&rp->h, "</table>\n");
    }
    svg_buf_puts(&rp->h, "<h3>Checkpoints and lineage</h3>\n");
    if (rp->n_ck == 0) {
        svg_buf_puts(&rp->h, "<p>No checkpoints registered.</p>\n");
    } else {
        svg_buf_puts(&rp->h, "<table><tr><th>id</th><th>role</th><th>path</th><th>step</th>"
                             "<th>stage</th><th>lineage (parents first)</th></tr>\n");
        for (int64_t i = 0; i < rp->n_ck; i++) {
            const ckpt_row *c = &rp->ck[i];
            svg_buf_printf(&rp->h, "<tr><td>%" PRId64 "</td><td>", c->id);
            h_text(rp, c->role);
            svg_buf_puts(&rp->h, "</td><td>");
            h_text(rp, rel_path(rp, c->path));
            svg_buf_printf(&rp->h, "</td><td>%" PRId64 "</td><td>", c->step);
            if (c->stage > 0) svg_buf_printf(&rp->h, "%" PRId64, c->stage);
            svg_buf_puts(&rp->h, "</td><td>");
            int64_t chain[64];
            int n = 0;
            for (const ckpt_row *p = c; p && n < 64; p = p->parent > 0 ? ckpt_find(rp, p->parent) : NULL)
                chain[n++] = p->id; /* at most 64 links: a cycle cannot hang the report */
            for (int k = n - 1; k >= 0; k--) {
                const ckpt_row *p = ckpt_find(rp, chain[k]);
                h_fmt(rp, "%s#%" PRId64 " %s", k == n - 1 ? "" : " \xe2\x86\x92 ", chain[k],
                      p ? p->role : "?");
            }
            svg_buf_puts(&rp->h, "</td></tr>\n");
        }
        svg_buf_puts(&rp->h, "</table>\n");
    }
    svg_buf_puts(&rp->h, "</section>\n");
    return RLHF_OK;
}

/* ---- reward-model accuracy ------------------------------------------------------------------ */

#define RM_G 6
static const char *const rm_key[RM_G] = {"significantly", "better", "slightly",
                                         "negligibly_unsure", "none", "all"};
static const char *const rm_col[RM_G] = {"significantly better", "better", "slightly better",
                                         "negligibly better / unsure", "no rating", "all"};

static rlhf_status sec_rm(report *rp) {
    h_section(rp, "rm", "Reward-model accuracy by preference strength");
    int32_t n = 0;
    for (int64_t i = 0; i < rp->n_st; i++) n += is_kind(&rp->st[i], "rm-eval");
    char ids[1024];
    stage_ids(rp, "rm-eval", ids, sizeof ids);
    if (n == 0) {
        h_source(rp, "rm-eval stages (`rlhf rm eval`)");
        h_not_run(rp, "no rm-eval stage in this run (`rlhf rm eval RUN --model RM ...`)");
        svg_buf_puts(&rp->h, "</section>\n");
        rp->n_not_run++;
        return RLHF_OK;
    }
    rp->n_data++;
    h_source(rp, "rm-eval stages %s (`rlhf rm eval`), metrics rm-eval/accuracy|n|ci_lo|ci_hi/<strength>;"
             " 95%% Wilson intervals; the layout of Llama 2's Table 8", ids);
    mset *ms = calloc((size_t)n, sizeof *ms);
    const stage_row **sr = calloc((size_t)n, sizeof *sr);
    double *vals = calloc((size_t)n * RM_G * 4, sizeof *vals); /* acc, lo, hi, n */
    char(*notes)[24] = calloc((size_t)n * RM_G, sizeof *notes);
    const char **note_p = calloc((size_t)n * RM_G, sizeof *note_p);
    char(*names)[64] = calloc((size_t)n, sizeof *names);
    svg_series *se = calloc((size_t)n, sizeof *se);
    rlhf_status st = RLHF_OK;
    if (!ms || !sr || !vals || !notes || !note_p || !names || !se) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto done;
    }
    int32_t k = 0;
    for (int64_t i = 0; i < rp->n_st; i++)
        if (is_kind(&rp->st[i], "rm-eval")) {
            sr[k] = &rp->st[i];
            RLHF_TRY_GOTO(st, mset_load(rp, rp->st[i].id, &ms[k]), done);
            k++;
        }
    bool used[RM_G] = {false};
    used[RM_G - 1] = true;
    char name[96];
    for (int32_t s = 0; s < n; s++)
        for (int g = 0; g < RM_G; g++) {
            double *v = &vals[((size_t)s * RM_G + g) * 4];
            snprintf(name, sizeof name, "rm-eval/accuracy/%s", rm_key[g]);
            v[0] = mset_value(&ms[s], name);
            snprintf(name, sizeof name, "rm-eval/ci_lo/%s", rm_key[g]);
            v[1] = mset_value(&ms[s], name);
            snprintf(name, sizeof name, "rm-eval/ci_hi/%s", rm_key[g]);
            v[2] = mset_value(&ms[s], name);
            snprintf(name, sizeof name, "rm-eval/n/%s", rm_key[g]);
            v[3] = mset_value(&ms[s], name);
            if (v[3] > 0) used[g] = true;
        }
    /* the chart: groups = strengths that have pairs, one bar per evaluation */
    const char *groups[RM_G];
    int gi[RM_G], ng = 0;
    for (int g = 0; g < RM_G; g++)
        if (used[g]) groups[ng] = rm_col[g], gi[ng++] = g;
    double *ys = calloc((size_t)n * ng * 3, sizeof *ys);
    if (!ys) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int32_t s = 0; s < n; s++) {
        char model[512], data[128];
        param_str(sr[s], "model", model, sizeof model);
        param_str(sr[s], "data", data, sizeof data);
        snprintf(names[s], sizeof names[s], "stage %" PRId64 ": %.40s", sr[s]->id,
                 rel_path(rp, model));
        for (int j = 0; j < ng; j++) {
            const double *v = &vals[((size_t)s * RM_G + gi[j]) * 4];
            ys[((size_t)s * 3 + 0) * ng + j] = v[0];
            ys[((size_t)s * 3 + 1) * ng + j] = v[1];
            ys[((size_t)s * 3 + 2) * ng + j] = v[2];
            snprintf(notes[(size_t)s * RM_G + j], 24, "n=%.0f", isfinite(v[3]) ? v[3] : 0);
            note_p[(size_t)s * RM_G + j] = notes[(size_t)s * RM_G + j];
        }
        se[s] = (svg_series){.name = names[s], .y = &ys[((size_t)s * 3) * ng],
                             .lo = &ys[((size_t)s * 3 + 1) * ng], .hi = &ys[((size_t)s * 3 + 2) * ng],
                             .notes = &note_p[(size_t)s * RM_G], .n = ng};
    }
    svg_chart c = {.title = "Reward-model accuracy by preference strength (95% CI)",
                   .xlabel = "preference strength", .ylabel = "accuracy", .series = se,
                   .n_series = n, .groups = groups, .n_groups = ng, .y_min = 0, .y_max = 1,
                   .width = 760};
    RLHF_TRY_GOTO(st, h_chart(rp, &c, true), free_ys);
    /* the table (Table 8 layout): one row per evaluation */
    svg_buf_puts(&rp->h, "<table class=\"table8\"><tr><th>stage</th><th>reward model</th>"
                         "<th>data</th><th>track</th>");
    for (int j = 0; j < ng; j++) {
        svg_buf_puts(&rp->h, "<th>");
        h_text(rp, groups[j]);
        svg_buf_puts(&rp->h, "</th>");
    }
    svg_buf_puts(&rp->h, "</tr>\n");
    for (int32_t s = 0; s < n; s++) {
        char model[512], data[128], track[32];
        param_str(sr[s], "model", model, sizeof model);
        param_str(sr[s], "data", data, sizeof data);
        param_str(sr[s], "track", track, sizeof track);
        svg_buf_printf(&rp->h, "<tr><td>%" PRId64 "</td><td>", sr[s]->id);
        h_text(rp, rel_path(rp, model));
        svg_buf_puts(&rp->h, "</td><td>");
        h_text(rp, data);
        svg_buf_puts(&rp->h, "</td><td>");
        h_text(rp, track);
        svg_buf_puts(&rp->h, "</td>");
        for (int j = 0; j < ng; j++) {
            const double *v = &vals[((size_t)s * RM_G + gi[j]) * 4];
            if (!isfinite(v[0])) {
                svg_buf_printf(&rp->h, "<td>- <small>n=%.0f</small></td>", isfinite(v[3]) ? v[3] : 0);
                continue;
            }
            svg_buf_printf(&rp->h,
                           "<td data-stage=\"%" PRId64 "\" data-metric=\"rm-eval/accuracy/%s\">"
                           "%.4f<br><small>[%.4f, %.4f] n=%.0f</small></td>",
                           sr[s]->id, rm_key[gi[j]], v[0], v[1], v[2], v[3]);
        }
        svg_buf_puts(&rp->h, "</tr>\n");
    }
    svg_buf_puts(&rp->h, "</table>\n</section>\n");
free_ys:
    free(ys);
done:
    if (ms)
        for (int32_t s = 0; s < n; s++) mset_free(&ms[s]);
    free(ms);
    free(sr);
    free(vals);
    free(notes);
    free(note_p);
    free(names);
    free(se);
    return st;
}

/* ---- line charts from metrics: one series per (stage, metric) ------------------------------- */

typedef struct line_spec {
    int64_t stage;       /* whose metrics */
    const char *metric;  /* metric name */
    char name[96];       /* legend */
    bool dashed;
} line_spec;

/* Draws the listed (stage, metric) series as one line chart; missing ones are left out. *drawn
 * (may be NULL) gets the number of series with data. */
static rlhf_status line_chart(report *rp, const char *title, const char *xlabel, const char *ylabel,
                              const line_spec *ls, int32_t n, int32_t *drawn) {
    mset *ms = calloc((size_t)(n ? n : 1), sizeof *ms);
    svg_series *se = calloc((size_t)(n ? n : 1), sizeof *se);
    rlhf_status st = RLHF_OK;
    int32_t k = 0;
    if (!ms || !se) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        RLHF_TRY_GOTO(st, mset_load(rp, ls[i].stage, &ms[i]), done);
        const mseries *m = mset_get(&ms[i], ls[i].metric);
        if (!m) continue;
        se[k++] = (svg_series){.name = ls[i].name, .x = m->x, .y = m->y, .n = m->n,
                               .dashed = ls[i].dashed};
    }
    svg_chart c = {.title = title, .xlabel = xlabel, .ylabel = ylabel, .series = se,
                   .n_series = k, .width = 760};
    if (k > 0) st = h_chart(rp, &c, false);
    if (drawn) *drawn = k;
done:
    if (ms)
        for (int32_t i = 0; i < n; i++) mset_free(&ms[i]);
    free(ms);
    free(se);
    return st;
}

static int32_t count_kind(const report *rp, const char *kind) {
    int32_t n = 0;
    for (int64_t i = 0; i < rp->n_st; i++) n += is_kind(&rp->st[i], kind);
    return n;
}

/* ---- best-of-k -------------------------------------------------------------------------------- */

static rlhf_status sec_best_of_k(report *rp) {
    h_section(rp, "best-of-k", "Rejection sampling: best-of-k reward");
    const int32_t nr = count_kind(rp, "rs-report"), nw = count_kind(rp, "rs-sweep");
    char ids[1024];
    if (nr + nw == 0) {
        h_source(rp, "rs-report stages (`rlhf rs report`), rs-sweep stages (`rlhf rs sweep`)");
        h_not_run(rp, "no rs-report or rs-sweep stage in this run");
        svg_buf_puts(&rp->h, "</section>\n");
        rp->n_not_run++;
        return RLHF_OK;
    }
    rp->n_data++;
    rlhf_status st = RLHF_OK;
    if (nr > 0) {
        stage_ids(rp, "rs-report", ids, sizeof ids);
        h_source(rp, "rs-report stages %s (`rlhf rs report RUN --round R`), metrics "
                 "rs/best_of_k_max and rs/best_of_k_median at step k: the expected max and median "
                 "combined reward of k samples (Llama 2 Figure 7)", ids);
        line_spec *ls = calloc((size_t)nr * 2, sizeof *ls);
        if (!ls) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        int32_t k = 0;
        for (int64_t i = 0; i < rp->n_st; i++) {
            const stage_row *x = &rp->st[i];
            if (!is_kind(x, "rs-report")) continue;
            const char *round = x->key && strncmp(x->key, "round=", 6) == 0 ? x->key + 6 : "?";
            ls[k] = (line_spec){.stage = x->id, .metric = "rs/best_of_k_max"};
            snprintf(ls[k++].name, sizeof ls[0].name, "round %s max", round);
            ls[k] = (line_spec){.stage = x->id, .metric = "rs/best_of_k_median", .dashed = true};
            snprintf(ls[k++].name, sizeof ls[0].name, "round %s median", round);
        }
        st = line_chart(rp, "Best-of-k: max and median reward per round", "k (samples)",
                        "combined reward", ls, k, NULL);
        free(ls);
        RLHF_TRY(st);
    }
    for (int64_t i = 0; i < rp->n_st && nw > 0; i++) {
        const stage_row *x = &rp->st[i];
        if (!is_kind(x, "rs-sweep")) continue;
        mset m;
        RLHF_TRY(mset_load(rp, x->id, &m));
        int32_t k = 0;
        line_spec ls[32];
        for (int32_t j = 0; j < m.n && k < 32; j++) {
            const char *nm = m.v[j].name;
            const char *t = strncmp(nm, "rs/sweep/T", 10) == 0 ? nm + 10 : NULL;
            const char *tail = t ? strstr(t, "/best_of_k_max") : NULL;
            if (!tail || strcmp(tail, "/best_of_k_max") != 0) continue;
            ls[k] = (line_spec){.stage = x->id, .metric = nm};
            snprintf(ls[k++].name, sizeof ls[0].name, "T=%.*s", (int)(tail - t), t);
        }
        char title[128];
        snprintf(title, sizeof title, "Best-of-k max reward by temperature (stage %" PRId64 ")",
                 x->id);
        h_source(rp, "rs-sweep stage %" PRId64 " (`rlhf rs sweep`), metrics "
                 "rs/sweep/T<t>/best_of_k_max (Llama 2 Figure 8)", x->id);
        st = line_chart(rp, title, "k (samples)", "combined reward (max of k)", ls, k, NULL);
        mset_free(&m); /* ls names point into m: drawn before it is freed */
        RLHF_TRY(st);
    }
    svg_buf_puts(&rp->h, "</section>\n");
    return RLHF_OK;
}

/* ---- selections per round ---------------------------------------------------------------------- */

typedef struct sel_rows {
    double round[256], n[256], same[256], score[256];
    int32_t k;
} sel_rows;

static rlhf_status sel_row(void *ctx, const rlhf_store_row *r) {
    sel_rows *x = ctx;
    if (x->k == 256) return RLHF_OK; /* more rounds than a page shows */
    x->round[x->k] = r->num[0], x->n[x->k] = r->num[1], x->same[x->k] = r->num[2];
    x->score[x->k++] = r->num[3];
    return RLHF_OK;
}

static rlhf_status sec_selections(report *rp) {
    h_section(rp, "selections", "Rejection sampling: selections per round");
    sel_rows *x = calloc(1, sizeof *x);
    if (!x) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    rlhf_status st = rlhf_store_query_each(
        rp->s,
        "SELECT se.round, count(*), sum(sa.round = se.round), "
        "avg((SELECT max(value) FROM scores sc WHERE sc.sample_id = se.sample_id)) "
        "FROM selections se JOIN samples sa ON sa.id = se.sample_id "
        "GROUP BY se.round ORDER BY se.round",
        NULL, 0, sel_row, x);
    if (st != RLHF_OK) goto done;
    char ids[1024];
    stage_ids(rp, "select", ids, sizeof ids);
    h_source(rp, "the selections table, written by select stages %s (`rlhf rs select` / `rlhf rs "
             "round`); score = the selected sample's highest raw reward-model score",
             ids[0] ? ids : "(none)");
    if (x->k == 0) {
        h_not_run(rp, "no selections in this run");
        rp->n_not_run++;
    } else {
        rp->n_data++;
        char(*labels)[24] = calloc((size_t)x->k, sizeof *labels);
        const char **groups = calloc((size_t)x->k, sizeof *groups);
        if (!labels || !groups) {
            free(labels);
            free(groups);
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int32_t i = 0; i < x->k; i++) {
            snprintf(labels[i], 24, "round %.0f", x->round[i]);
            groups[i] = labels[i];
        }
        svg_series se = {.name = "mean score of the selected", .y = x->score, .n = x->k};
        svg_chart c = {.title = "Selections per round", .ylabel = "reward-model score",
                       .series = &se, .n_series = 1, .groups = groups, .n_groups = x->k};
        st = h_chart(rp, &c, true);
        free(labels);
        free(groups);
        if (st != RLHF_OK) goto done;
        svg_buf_puts(&rp->h, "<table><tr><th>round</th><th>prompts selected</th><th>sampled in "
                             "that round</th><th>from earlier rounds</th><th>mean score</th></tr>\n");
        for (int32_t i = 0; i < x->k; i++) {
            svg_buf_printf(&rp->h, "<tr><td>%.0f</td><td data-round=\"%.0f\">%.0f</td><td>%.0f</td>"
                                   "<td>%.0f</td>",
                           x->round[i], x->round[i], x->n[i], x->same[i], x->n[i] - x->same[i]);
            h_num(rp, x->score[i]);
            svg_buf_puts(&rp->h, "</tr>\n");
        }
        svg_buf_puts(&rp->h, "</table>\n");
    }
    svg_buf_puts(&rp->h, "</section>\n");
done:
    free(x);
    return st;
}

/* ---- PPO ------------------------------------------------------------------------------------- */

static rlhf_status sec_ppo(report *rp) {
    h_section(rp, "ppo", "PPO: reward and KL per iteration");
    if (count_kind(rp, "ppo") == 0) {
        h_source(rp, "ppo stages (`rlhf ppo`)");
        h_not_run(rp, "no ppo stage in this run");
        svg_buf_puts(&rp->h, "</section>\n");
        rp->n_not_run++;
        return RLHF_OK;
    }
    rp->n_data++;
    for (int64_t i = 0; i < rp->n_st; i++) {
        const stage_row *x = &rp->st[i];
        if (!is_kind(x, "ppo")) continue;
        char pol[600], title[700];
        ckpt_label(rp, param_int(x, "policy"), pol, sizeof pol);
        json_t *j = x->params ? json_loads(x->params, 0, NULL) : NULL;
        json_t *b = j ? json_object_get(j, "beta") : NULL;
        const double beta = b && json_is_number(b) ? json_number_value(b) : NAN;
        json_decref(j);
        h_source(rp, "ppo stage %" PRId64 " (`rlhf ppo`, status %s, %" PRId64 " iterations), start "
                 "policy %s, beta %g; metrics ppo/reward_gated (R_c, the gated reward-model "
                 "score), ppo/score_mean (the final score: whitened logit of R_c plus the no-EOS "
                 "penalty), ppo/kl_ref (summed KL to the reference), at step = iteration",
                 x->id, x->status, x->progress, pol, beta);
        line_spec ls[3] = {{x->id, "ppo/reward_gated", "reward (gated)", false},
                           {x->id, "ppo/score_mean", "reward (final)", true},
                           {x->id, "ppo/kl_ref", "KL to reference", false}};
        snprintf(title, sizeof title, "PPO stage %" PRId64 ": reward and KL", x->id);
        int32_t drawn = 0;
        RLHF_TRY(line_chart(rp, title, "iteration", "value", ls, 3, &drawn));
        if (drawn == 0) h_not_run(rp, "this ppo stage has no iteration stored yet");
    }
    svg_buf_puts(&rp->h, "</section>\n");
    return RLHF_OK;
}

/* ---- gold judges ------------------------------------------------------------------------------- */

typedef struct gold_rows {
    int32_t k;
    int64_t round[128], ckpt[128];
    double help[128], help_n[128], safe[128], safe_n[128], viol[128];
} gold_rows;

static rlhf_status gold_row(void *ctx, const rlhf_store_row *r) {
    gold_rows *g = ctx;
    const int64_t round = (int64_t)r->num[0], ck = (int64_t)r->num[1];
    int32_t i = g->k - 1;
    if (i < 0 || g->round[i] != round || g->ckpt[i] != ck) {
        if (g->k == 128) return RLHF_OK;
        i = g->k++;
        g->round[i] = round, g->ckpt[i] = ck;
        g->help[i] = g->safe[i] = NAN;
        g->help_n[i] = g->safe_n[i] = g->viol[i] = 0;
    }
    const char *judge = r->text[2] ? r->text[2] : "";
    if (strcmp(judge, "gold-helpfulness") == 0) g->help[i] = r->num[3], g->help_n[i] = r->num[4];
    if (strcmp(judge, "gold-safety") == 0)
        g->safe[i] = r->num[3], g->safe_n[i] = r->num[4], g->viol[i] = r->num[5];
    return RLHF_OK;
}

static rlhf_status sec_gold(report *rp) {
    h_section(rp, "gold", "Gold helpfulness and safety of the policies");
    bool has_j = false;
    RLHF_TRY(rlhf_store_table_exists(rp->s, "judgments", &has_j));
    const int32_t nc = count_kind(rp, "world-compare");
    gold_rows *g = calloc(1, sizeof *g);
    if (!g) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    rlhf_status st = RLHF_OK;
    if (has_j)
        RLHF_TRY_GOTO(st,
                      rlhf_store_query_each(
                          rp->s,
                          "SELECT sa.round, sa.checkpoint_id, j.judge, avg(j.value), count(*), "
                          "sum(j.value < 0.5) FROM judgments j JOIN samples sa ON sa.id = "
                          "j.sample_id GROUP BY sa.round, sa.checkpoint_id, j.judge "
                          "ORDER BY sa.round, sa.checkpoint_id, j.judge",
                          NULL, 0, gold_row, g),
                      done);
    if (g->k == 0 && nc == 0) {
        h_source(rp, "the judgments table and world-compare stages (the demo world's gold "
                 "judges)");
        h_not_run(rp, has_j ? "the judgments table is empty and there is no world-compare stage"
                            : "this run has no judgments table and no world-compare stage");
        svg_buf_puts(&rp->h, "</section>\n");
        rp->n_not_run++;
        goto done;
    }
    rp->n_data++;
    if (g->k > 0) {
        h_source(rp, "the judgments table (judges gold-helpfulness and gold-safety) joined to the "
                 "judged samples, grouped by the samples' round and policy checkpoint; "
                 "violations = gold-safety values below 0.5");
        char(*labels)[48] = calloc((size_t)g->k, sizeof *labels);
        const char **groups = calloc((size_t)g->k, sizeof *groups);
        if (!labels || !groups) {
            free(labels);
            free(groups);
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int32_t i = 0; i < g->k; i++) {
            const ckpt_row *c = ckpt_find(rp, g->ckpt[i]);
            snprintf(labels[i], 48, "r%" PRId64 " #%" PRId64 " %s", g->round[i], g->ckpt[i],
                     c ? c->role : "");
            groups[i] = labels[i];
        }
        svg_series se[2] = {{.name = "gold helpfulness", .y = g->help, .n = g->k},
                            {.name = "gold safety", .y = g->safe, .n = g->k}};
        svg_chart c = {.title = "Gold judges: mean score per policy", .ylabel = "mean gold score",
                       .series = se, .n_series = 2, .groups = groups, .n_groups = g->k,
                       .width = 760};
        st = h_chart(rp, &c, true);
        free(labels);
        free(groups);
        if (st != RLHF_OK) goto done;
        svg_buf_puts(&rp->h, "<table><tr><th>round</th><th>policy</th><th>gold helpfulness</th>"
                             "<th>n</th><th>gold safety</th><th>n</th><th>violations</th></tr>\n");
        for (int32_t i = 0; i < g->k; i++) {
            char lab[600];
            ckpt_label(rp, g->ckpt[i], lab, sizeof lab);
            svg_buf_printf(&rp->h, "<tr><td>%" PRId64 "</td><td>", g->round[i]);
            h_text(rp, lab);
            svg_buf_puts(&rp->h, "</td>");
            h_num(rp, g->help[i]);
            svg_buf_printf(&rp->h, "<td>%.0f</td>", g->help_n[i]);
            h_num(rp, g->safe[i]);
            svg_buf_printf(&rp->h, "<td>%.0f</td><td>%.0f</td></tr>\n", g->safe_n[i], g->viol[i]);
        }
        svg_buf_puts(&rp->h, "</table>\n");
    } else {
        h_not_run(rp, has_j ? "no judgments yet" : "this run has no judgments table");
    }
    /* world-compare stages: every metric, with the win rate (and its interval when stored) drawn */
    for (int64_t i = 0; i < rp->n_st && nc > 0; i++) {
        const stage_row *x = &rp->st[i];
        if (!is_kind(x, "world-compare")) continue;
        h_source(rp, "world-compare stage %" PRId64 " (key %s): its metrics", x->id,
                 x->key ? x->key : "");
        mset m;
        RLHF_TRY_GOTO(st, mset_load(rp, x->id, &m), done);
        double wy[16], wlo[16], whi[16];
        const char *wn[16];
        int32_t nw = 0;
        char nm[256];
        for (int32_t j = 0; j < m.n && nw < 16; j++) {
            const char *name = m.v[j].name;
            if (!strstr(name, "win_rate") || strstr(name, "ci_") || strstr(name, "_lo") ||
                strstr(name, "_hi"))
                continue;
            wn[nw] = name;
            wy[nw] = mset_value(&m, name);
            snprintf(nm, sizeof nm, "%s_ci_lo", name);
            wlo[nw] = mset_value(&m, nm);
            snprintf(nm, sizeof nm, "%s_ci_hi", name);
            whi[nw] = mset_value(&m, nm);
            if (!isfinite(wlo[nw])) { /* .../win_rate -> .../ci_lo */
                const char *p = strstr(name, "win_rate");
                snprintf(nm, sizeof nm, "%.*sci_lo%s", (int)(p - name), name, p + 8);
                wlo[nw] = mset_value(&m, nm);
                snprintf(nm, sizeof nm, "%.*sci_hi%s", (int)(p - name), name, p + 8);
                whi[nw] = mset_value(&m, nm);
            }
            nw++;
        }
        if (nw > 0) {
            svg_series se = {.name = "win rate", .y = wy, .lo = wlo, .hi = whi, .n = nw};
            char title[96];
            snprintf(title, sizeof title, "Win rate (stage %" PRId64 ")", x->id);
            svg_chart c = {.title = title, .ylabel = "win rate", .series = &se, .n_series = 1,
                           .groups = wn, .n_groups = nw, .y_min = 0, .y_max = 1, .width = 760};
            st = h_chart(rp, &c, true);
        }
        if (st == RLHF_OK) {
            svg_buf_puts(&rp->h, "<table><tr><th>metric</th><th>step</th><th>value</th></tr>\n");
            for (int32_t j = 0; j < m.n; j++)
                for (int32_t q = 0; q < m.v[j].n; q++) {
                    svg_buf_puts(&rp->h, "<tr><td>");
                    h_text(rp, m.v[j].name);
                    svg_buf_printf(&rp->h, "</td><td>%.0f</td>", m.v[j].x[q]);
                    h_num(rp, m.v[j].y[q]);
                    svg_buf_puts(&rp->h, "</tr>\n");
                }
            svg_buf_puts(&rp->h, "</table>\n");
        }
        mset_free(&m);
        if (st != RLHF_OK) goto done;
    }
    svg_buf_puts(&rp->h, "</section>\n");
done:
    free(g);
    return st;
}

/* ---- GAtt -------------------------------------------------------------------------------------- */

static rlhf_status sec_gatt(report *rp) {
    h_section(rp, "gatt", "Ghost Attention: instruction recall by turn");
    const int32_t n = count_kind(rp, "gatt-eval");
    char ids[1024];
    stage_ids(rp, "gatt-eval", ids, sizeof ids);
    if (n == 0) {
        h_source(rp, "gatt-eval stages (`rlhf gatt eval`)");
        h_not_run(rp, "no gatt-eval stage in this run");
        svg_buf_puts(&rp->h, "</section>\n");
        rp->n_not_run++;
        return RLHF_OK;
    }
    rp->n_data++;
    h_source(rp, "gatt-eval stages %s (`rlhf gatt eval`), metric gatt/recall/all (percent of the "
             "probed turns whose answer follows the instruction) and gatt/n/all at step = turn",
             ids);
    line_spec *ls = calloc((size_t)n, sizeof *ls);
    if (!ls) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    int32_t k = 0;
    for (int64_t i = 0; i < rp->n_st; i++) {
        const stage_row *x = &rp->st[i];
        if (!is_kind(x, "gatt-eval")) continue;
        const int64_t pol = param_int(x, "policy");
        const ckpt_row *c = ckpt_find(rp, pol);
        ls[k] = (line_spec){.stage = x->id, .metric = "gatt/recall/all"};
        snprintf(ls[k++].name, sizeof ls[0].name, "#%" PRId64 " %s (stage %" PRId64 ")", pol,
                 c ? c->role : "", x->id);
    }
    rlhf_status st = line_chart(rp, "Instruction recall by turn", "turn", "recall (%)", ls, k, NULL);
    if (st == RLHF_OK) {
        svg_buf_puts(&rp->h, "<table><tr><th>stage</th><th>policy</th><th>recall by turn (n)</th>"
                             "</tr>\n");
        for (int32_t i = 0; i < k && st == RLHF_OK; i++) {
            mset m;
            st = mset_load(rp, ls[i].stage, &m);
            if (st != RLHF_OK) break;
            const stage_row *x = NULL;
            for (int64_t j = 0; j < rp->n_st; j++)
                if (rp->st[j].id == ls[i].stage) x = &rp->st[j];
            char pol[600];
            ckpt_label(rp, x ? param_int(x, "policy") : -1, pol, sizeof pol);
            svg_buf_printf(&rp->h, "<tr><td>%" PRId64 "</td><td>", ls[i].stage);
            h_text(rp, pol);
            svg_buf_puts(&rp->h, "</td><td>");
            const mseries *r = mset_get(&m, "gatt/recall/all"), *c = mset_get(&m, "gatt/n/all");
            for (int32_t j = 0; r && j < r->n; j++) {
                double nn = NAN;
                for (int32_t q = 0; c && q < c->n; q++)
                    if (c->x[q] == r->x[j]) nn = c->y[q];
                svg_buf_printf(&rp->h, "%sturn %.0f: %.1f%% (%.0f)", j ? ", " : "", r->x[j],
                               r->y[j], nn);
            }
            svg_buf_puts(&rp->h, "</td></tr>\n");
            mset_free(&m);
        }
        svg_buf_puts(&rp->h, "</table>\n");
    }
    free(ls);
    svg_buf_puts(&rp->h, "</section>\n");
    return st;
}

/* ---- training curves --------------------------------------------------------------------------- */

static rlhf_status sec_training(report *rp) {
    h_section(rp, "training", "Training curves");
    static const struct {
        const char *kind, *metric, *alt, *cmd;
    } kinds[] = {{"pretrain", "pretrain/loss", "loss", "rlhf pretrain"},
                 {"sft", "sft/loss", NULL, "rlhf sft"},
                 {"rm-train", "loss", NULL, "rlhf rm train"}};
    int32_t any = 0;
    rlhf_status st = RLHF_OK;
    for (size_t t = 0; t < sizeof kinds / sizeof *kinds && st == RLHF_OK; t++) {
        const int32_t n = count_kind(rp, kinds[t].kind);
        svg_buf_printf(&rp->h, "<h3>%s</h3>\n", kinds[t].kind);
        char ids[1024];
        stage_ids(rp, kinds[t].kind, ids, sizeof ids);
        if (n == 0) {
            h_source(rp, "%s stages (`%s`)", kinds[t].kind, kinds[t].cmd);
            h_not_run(rp, NULL);
            continue;
        }
        h_source(rp, "%s stages %s (`%s`), metric %s%s%s per optimizer step", kinds[t].kind, ids,
                 kinds[t].cmd, kinds[t].metric, kinds[t].alt ? " or " : "",
                 kinds[t].alt ? kinds[t].alt : "");
        line_spec *ls = calloc((size_t)n * 2, sizeof *ls);
        if (!ls) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        int32_t k = 0;
        for (int64_t i = 0; i < rp->n_st; i++) {
            const stage_row *x = &rp->st[i];
            if (!is_kind(x, kinds[t].kind)) continue;
            ls[k] = (line_spec){.stage = x->id, .metric = kinds[t].metric};
            snprintf(ls[k++].name, sizeof ls[0].name, "stage %" PRId64 " %.60s", x->id,
                     x->key ? x->key : "");
            if (kinds[t].alt) {
                ls[k] = (line_spec){.stage = x->id, .metric = kinds[t].alt};
                snprintf(ls[k++].name, sizeof ls[0].name, "stage %" PRId64, x->id);
            }
        }
        char title[96];
        snprintf(title, sizeof title, "%s: loss per step", kinds[t].kind);
        int32_t drawn = 0;
        st = line_chart(rp, title, "step", "loss", ls, k, &drawn);
        free(ls);
        if (drawn == 0) h_not_run(rp, "these stages stored no loss metric");
        any += drawn > 0;
    }
    if (any) rp->n_data++;
    else rp->n_not_run++;
    svg_buf_puts(&rp->h, "</section>\n");
    return st;
}

/* ---- the page --------------------------------------------------------------------------------- */

static const char *const css =
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}"
    "table{border-collapse:collapse;margin:.5em 0;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#f4f4f4}td.key{font-family:monospace;font-size:.85em}"
    "td.failed{color:#b00}td.running{color:#a60}"
    ".src{color:#555;font-size:.85em}.notrun{color:#999;font-style:italic}"
    "figure{margin:.5em 0}nav a{margin-right:1em}";

static rlhf_status report_write(report *rp) {
    svg_buf *h = &rp->h;
    svg_buf_puts(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<title>rlhf report: ");
    h_text(rp, rp->run);
    svg_buf_printf(h, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>Run report: ", css);
    h_text(rp, rp->run);
    svg_buf_puts(h, "</h1>\n<p class=\"src\">Written by <code>rlhf report</code> (rlhf " RLHF_VERSION
                    ") from the run store; every number below is read from its tables.</p>\n"
                    "<nav><a href=\"#summary\">summary</a><a href=\"#rm\">reward models</a>"
                    "<a href=\"#best-of-k\">best-of-k</a><a href=\"#selections\">selections</a>"
                    "<a href=\"#ppo\">PPO</a><a href=\"#gold\">gold judges</a>"
                    "<a href=\"#gatt\">GAtt</a><a href=\"#training\">training</a></nav>\n");
    RLHF_TRY(sec_summary(rp));
    RLHF_TRY(sec_rm(rp));
    RLHF_TRY(sec_best_of_k(rp));
    RLHF_TRY(sec_selections(rp));
    RLHF_TRY(sec_ppo(rp));
    RLHF_TRY(sec_gold(rp));
    RLHF_TRY(sec_gatt(rp));
    RLHF_TRY(sec_training(rp));
    svg_buf_puts(h, "</body>\n</html>\n");
    return svg_buf_status(h);
}

int cmd_report(int argc, char **argv) {
    const char *out = NULL;
    bool quiet = false;
    cli_opt opts[] = {
        {"out", 'o', CLI_STR, &out, "FILE", "RUN/report/index.html", "where to write the page",
         false},
        {"quiet", 'q', CLI_FLAG, &quiet, NULL, NULL, "print nothing on success", false},
        {"help", 'h', CLI_FLAG, NULL, NULL, NULL, "print this help and exit", false},
        {0},
    };
    cli_spec spec = {"report", "RUN [--out FILE]",
                     "Writes one self-contained HTML page (inline SVG charts and CSS, no script)\n"
                     "with what the run store holds: run summary, reward-model accuracy by\n"
                     "preference strength, best-of-k curves, selections, PPO reward and KL, gold\n"
                     "judges, GAtt recall by turn, training curves. Sections without data say\n"
                     "\"not run\". The file is written atomically (FILE.tmp, then renamed).",
                     opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    report rp = {.run = pos[0]};
    char *path = NULL;
    rlhf_status st = rlhf_store_open(&rp.s, pos[0], false);
    if (st != RLHF_OK) goto fail;
    RLHF_TRY_GOTO(st,
                  rlhf_store_query_each(rp.s,
                                        "SELECT id, kind, key, params, status, started_at, "
                                        "ended_at, error, progress, total, (julianday(ended_at) "
                                        "- julianday(started_at)) * 86400.0, result "
                                        "FROM stages ORDER BY id",
                                        NULL, 0, stage_row_add, &rp),
                  fail);
    RLHF_TRY_GOTO(st, rlhf_store_checkpoints_each(rp.s, ckpt_row_add, &rp), fail);
    RLHF_TRY_GOTO(st, report_write(&rp), fail);
    if (out) {
        path = cli_strdup(out);
    } else {
        size_t n = strlen(pos[0]) + 32;
        path = malloc(n);
        if (path) snprintf(path, n, "%s/report", pos[0]);
        if (path) RLHF_TRY_GOTO(st, rlhf_mkdirs(path), fail);
        if (path) snprintf(path, n, "%s/report/index.html", pos[0]);
    }
    if (!path) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    RLHF_TRY_GOTO(st, svg_file_write(path, rp.h.p, rp.h.n), fail);
    if (!quiet)
        printf("report: %s (%d sections with data, %d not run; %" PRId64 " stages, %" PRId64
               " checkpoints)\n",
               path, (int)rp.n_data, (int)rp.n_not_run, rp.n_st, rp.n_ck);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    free(path);
    report_free(&rp);
    rlhf_store_close(rp.s);
    return rc;
}
