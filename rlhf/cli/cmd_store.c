/* cmd_store.c: the run-store commands of the `rlhf` program: `rlhf init RUN` (create a run
 * directory), `rlhf status RUN` (what a run holds), `rlhf export RUN` (rows out as JSONL or CSV)
 * and `rlhf import RUN FILE...` (dataset files in, resumable after a crash, see import_file).
 *
 * Export's JSONL of prompts, pairs and dialogues is also an import format ("rlhf"): each line is an
 * object with "kind" and every column, so import -> export -> import reproduces the rows. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <csv.h>
#include <jansson.h>

#include "cli.h"
#include "ds.h"
#include "store.h"

/* ---- init
 * ------------------------------------------------------------------------------------------- */

int cmd_init(int argc, char **argv) {
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"quiet", 'q', CLI_FLAG, &com.quiet, NULL, NULL, "print nothing on success", false},
        {"help", 'h', CLI_FLAG, NULL, NULL, NULL, "print this help and exit", false},
        {0},
    };
    cli_spec spec = {"init",
                     "RUN",
                     "Creates the run directory RUN with its database RUN/rlhf.db (schema in\n"
                     "docs/store.md), RUN/ckpt/ and RUN/logs/. On an existing run it only brings\n"
                     "the schema up to date; a non-empty directory that is not a run is refused.",
                     opts,
                     1,
                     1};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    char db[4096];
    snprintf(db, sizeof db, "%s/%s", pos[0], RLHF_STORE_DB_NAME);
    struct stat st;
    bool existed = stat(db, &st) == 0;
    rlhf_store *s = NULL;
    rlhf_status r = rlhf_store_open(&s, pos[0], true);
    if (r != RLHF_OK) return cli_fail(spec.cmd, r);
    int32_t v = 0;
    r = rlhf_store_user_version(s, &v);
    rlhf_store_close(s);
    if (r != RLHF_OK) return cli_fail(spec.cmd, r);
    if (!com.quiet)
        printf("%s run %s (schema version %d)\n", existed ? "existing" : "created", pos[0], (int)v);
    return CLI_EXIT_OK;
}

/* ---- status
 * ------------------------------------------------------------------------------------------ */

static rlhf_status status_stage(void *ctx, const rlhf_store_stage_info *x) {
    (void)ctx;
    char prog[64];
    if (x->total >= 0)
        snprintf(prog, sizeof prog, "%" PRId64 "/%" PRId64, x->progress, x->total);
    else
        snprintf(prog, sizeof prog, "%" PRId64, x->progress);
    const char *what = "";
    json_t *p = x->params_json ? json_loads(x->params_json, 0, NULL) : NULL;
    json_t *file = p ? json_object_get(p, "file") : NULL;
    if (json_is_string(file)) what = json_string_value(file);
    printf("  #%-4" PRId64 " %-8s %-7s %-14s %s  %s\n", x->id, x->kind, x->status, prog,
           x->started_at ? x->started_at : "", what);
    if (x->error) printf("        error: %s\n", x->error);
    if (x->result_json) printf("        result: %s\n", x->result_json);
    json_decref(p);
    return RLHF_OK;
}

/* Prints the last STATUS_METRICS lines: ctx counts calls (pass 1: n = -total, counting up). */
#define STATUS_METRICS 20
static rlhf_status status_metric(void *ctx, int64_t stage_id, int64_t step, const char *name,
                                 double value) {
    int64_t *k = ctx; /* k[0] calls so far, k[1] total (0 on the counting pass) */
    k[0]++;
    if (k[1] == 0 || k[0] <= k[1] - STATUS_METRICS) return RLHF_OK;
    printf("  stage #%" PRId64 " step %" PRId64 "  %s = %.6g\n", stage_id, step, name, value);
    return RLHF_OK;
}

int cmd_status(int argc, char **argv) {
    cli_opt opts[] = {
        {"help", 'h', CLI_FLAG, NULL, NULL, NULL, "print this help and exit", false},
        {0},
    };
    cli_spec spec = {"status",
                     "RUN",
                     "Summarizes a run: rows per table, every stage with its state and progress,\n"
                     "and the last value of each metric.",
                     opts,
                     1,
                     1};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    rlhf_store *s = NULL;
    rlhf_status r = rlhf_store_open(&s, pos[0], false);
    if (r != RLHF_OK) return cli_fail(spec.cmd, r);
    static const char *const tables[] = {"prompts",    "pairs",   "dialogues", "checkpoints",
                                         "samples",    "scores",  "selections", "rollouts",
                                         "judgments",  "metrics", "stages"};
    int32_t v = 0;
    char mode[16];
    RLHF_TRY_GOTO(r, rlhf_store_user_version(s, &v), fail);
    RLHF_TRY_GOTO(r, rlhf_store_journal_mode(s, mode, sizeof mode), fail);
    printf("run %s (schema version %d, journal %s)\n", pos[0], (int)v, mode);
    printf("rows:\n");
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        int64_t n = 0;
        RLHF_TRY_GOTO(r, rlhf_store_count(s, tables[i], &n), fail);
        printf("  %-12s %" PRId64 "\n", tables[i], n);
    }
    printf("stages:\n");
    RLHF_TRY_GOTO(r, rlhf_store_stages_each(s, status_stage, NULL), fail);
    int64_t k[2] = {0, 0};
    RLHF_TRY_GOTO(r, rlhf_store_metrics_last(s, status_metric, k), fail);
    printf("last metrics%s:\n", k[0] > STATUS_METRICS ? " (the latest 20)" : "");
    k[1] = k[0];
    k[0] = 0;
    RLHF_TRY_GOTO(r, rlhf_store_metrics_last(s, status_metric, k), fail);
    rlhf_store_close(s);
    return CLI_EXIT_OK;
fail:
    rlhf_store_close(s);
    return cli_fail(spec.cmd, r);
}

/* ---- export
 * ------------------------------------------------------------------------------------------- */

typedef struct export_ctx {
    FILE *f;
    bool csv;
    const char *path; /* for error messages */
    int64_t rows;
} export_ctx;

static json_t *jstr(const char *s) {
    if (!s) return json_null();
    json_t *j = json_string(s);
    if (!j) { /* not UTF-8 (samples stored before sample sanitized them): U+FFFD, not a lost field */
        char *u = ds_utf8_sanitize(s, strlen(s));
        j = u ? json_string(u) : NULL;
        free(u);
    }
    return j;
}
static json_t *jtri(int8_t v) { return v < 0 ? json_null() : json_boolean(v); }
static json_t *jparse(const char *s) { /* JSON text from the store (checked by the schema) */
    if (!s) return json_null();
    json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
    return j ? j : json_string(s);
}
static const char *split_str(rlhf_split sp) { return sp == RLHF_SPLIT_EVAL ? "eval" : "train"; }

/* Writes one row: JSONL (the object as a line) or CSV (the values in the object's key order,
 * strings raw, null empty, anything else as its JSON text). Steals obj. */
static rlhf_status export_row(export_ctx *e, json_t *obj, bool header) {
    rlhf_status r = RLHF_OK;
    if (!obj) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot build the JSON row");
    if (!e->csv) {
        if (json_dumpf(obj, e->f, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 || fputc('\n', e->f) < 0)
            r = RLHF_ERR(RLHF_ERR_IO, "%s: write error: %s", e->path, strerror(errno));
    } else {
        if (header) {
            const char *key;
            json_t *val;
            bool first = true;
            json_object_foreach(obj, key, val) {
                (void)val;
                if (!first) fputc(',', e->f);
                first = false;
                csv_fwrite(e->f, key, strlen(key));
            }
            fputc('\n', e->f);
        }
        const char *key;
        json_t *val;
        bool first = true;
        json_object_foreach(obj, key, val) {
            if (!first) fputc(',', e->f);
            first = false;
            if (json_is_null(val)) continue;
            if (json_is_string(val)) {
                csv_fwrite(e->f, json_string_value(val), json_string_length(val));
            } else {
                char *t = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
                if (!t) {
                    r = RLHF_ERR(RLHF_ERR_NOMEM, "cannot encode a value");
                    break;
                }
                csv_fwrite(e->f, t, strlen(t));
                free(t);
            }
        }
        if (fputc('\n', e->f) < 0)
            r = RLHF_ERR(RLHF_ERR_IO, "%s: write error: %s", e->path, strerror(errno));
    }
    json_decref(obj);
    e->rows++;
    return r;
}

static rlhf_status export_prompt(void *ctx, const rlhf_store_prompt *p) {
    export_ctx *e = ctx;
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "kind", json_string("prompt"));
        json_object_set_new(o, "id", json_integer(p->id));
        json_object_set_new(o, "text", jstr(p->text));
        json_object_set_new(o, "system", jstr(p->system));
        json_object_set_new(o, "turns", jparse(p->turns_json));
        json_object_set_new(o, "unsafe", jtri(p->unsafe));
        json_object_set_new(o, "category", jstr(p->category));
        json_object_set_new(o, "split", json_string(split_str(p->split)));
        json_object_set_new(o, "source", jstr(p->source));
    }
    return export_row(e, o, e->rows == 0);
}

static rlhf_status export_pair(void *ctx, const rlhf_store_pair *p) {
    export_ctx *e = ctx;
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "kind", json_string("pair"));
        json_object_set_new(o, "id", json_integer(p->id));
        json_object_set_new(o, "track", jstr(p->track));
        json_object_set_new(o, "system", jstr(p->system));
        json_object_set_new(o, "context", jparse(p->context_json));
        json_object_set_new(o, "chosen", jstr(p->chosen));
        json_object_set_new(o, "rejected", jstr(p->rejected));
        json_object_set_new(o, "rating", jstr(p->rating));
        json_object_set_new(o, "chosen_safe", jtri(p->chosen_safe));
        json_object_set_new(o, "rejected_safe", jtri(p->rejected_safe));
        json_object_set_new(o, "split", json_string(split_str(p->split)));
        json_object_set_new(o, "source", jstr(p->source));
    }
    return export_row(e, o, e->rows == 0);
}

static rlhf_status export_dialogue(void *ctx, const rlhf_store_dialogue *d) {
    export_ctx *e = ctx;
    json_t *o = json_object(), *mask = json_array();
    if (o && mask) {
        for (int32_t i = 0; i < d->n_mask; i++)
            json_array_append_new(mask, json_integer(d->loss_mask[i]));
        json_object_set_new(o, "kind", json_string("dialogue"));
        json_object_set_new(o, "id", json_integer(d->id));
        json_object_set_new(o, "system", jstr(d->system));
        json_object_set_new(o, "turns", jparse(d->turns_json));
        json_object_set_new(o, "loss_mask", mask);
        json_object_set_new(o, "split", json_string(split_str(d->split)));
        json_object_set_new(o, "source", jstr(d->source));
    } else {
        json_decref(mask);
    }
    return export_row(e, o, e->rows == 0);
}

/* The "tokens" array and the "logprobs" array (null when logprobs is NULL) of a sample or rollout;
 * false (nothing to free) when out of memory. */
static bool json_token_arrays(const int32_t *tokens, const float *logprobs, int32_t n,
                              json_t **tok, json_t **lp) {
    *tok = json_array();
    *lp = logprobs ? json_array() : json_null();
    bool ok = *tok && *lp;
    for (int32_t i = 0; ok && i < n; i++) {
        ok = json_array_append_new(*tok, json_integer(tokens[i])) == 0;
        if (ok && logprobs) ok = json_array_append_new(*lp, json_real((double)logprobs[i])) == 0;
    }
    if (!ok) {
        json_decref(*tok);
        json_decref(*lp);
        *tok = *lp = NULL;
    }
    return ok;
}

static rlhf_status export_sample(void *ctx, const rlhf_store_sample *x) {
    export_ctx *e = ctx;
    json_t *o = json_object(), *tok = NULL, *lp = NULL;
    if (o && json_token_arrays(x->tokens, x->logprobs, x->n_tokens, &tok, &lp)) {
        json_object_set_new(o, "kind", json_string("sample"));
        json_object_set_new(o, "id", json_integer(x->id));
        json_object_set_new(o, "prompt_id", json_integer(x->prompt_id));
        json_object_set_new(o, "round", json_integer(x->round));
        json_object_set_new(o, "checkpoint_id", json_integer(x->checkpoint_id));
        json_object_set_new(o, "idx", json_integer(x->idx));
        json_object_set_new(o, "seed", json_integer((json_int_t)x->seed));
        json_object_set_new(o, "temperature", json_real((double)x->temperature));
        json_object_set_new(o, "tokens", tok);
        json_object_set_new(o, "logprobs", lp);
        json_object_set_new(o, "text", jstr(x->text));
        json_object_set_new(o, "finish", jstr(x->finish));
    } else { /* out of memory: export_row reports it */
        json_decref(o);
        o = NULL;
    }
    return export_row(e, o, e->rows == 0);
}

static rlhf_status export_rollout(void *ctx, const rlhf_store_rollout *x) {
    export_ctx *e = ctx;
    json_t *o = json_object(), *tok = NULL, *lp = NULL;
    if (o && json_token_arrays(x->tokens, x->logprobs, x->n_tokens, &tok, &lp)) {
        json_object_set_new(o, "kind", json_string("rollout"));
        json_object_set_new(o, "id", json_integer(x->id));
        json_object_set_new(o, "stage_id", json_integer(x->stage_id));
        json_object_set_new(o, "iteration", json_integer(x->iteration));
        json_object_set_new(o, "idx", json_integer(x->idx));
        json_object_set_new(o, "prompt_id", json_integer(x->prompt_id));
        json_object_set_new(o, "checkpoint_id", json_integer(x->checkpoint_id));
        json_object_set_new(o, "seed", json_integer((json_int_t)x->seed));
        json_object_set_new(o, "temperature", json_real((double)x->temperature));
        json_object_set_new(o, "tokens", tok);
        json_object_set_new(o, "logprobs", lp);
        json_object_set_new(o, "text", jstr(x->text));
        json_object_set_new(o, "finish", jstr(x->finish));
        json_object_set_new(o, "gate", jstr(x->gate));
        json_object_set_new(o, "reward_help", json_real(x->reward_help));
        json_object_set_new(o, "reward_safe", json_real(x->reward_safe));
        json_object_set_new(o, "reward_gated", json_real(x->reward_gated));
        json_object_set_new(o, "reward_final", json_real(x->reward_final));
        json_object_set_new(o, "kl", json_real(x->kl));
        json_object_set_new(o, "advantage_mean", json_real(x->advantage_mean));
    } else { /* out of memory: export_row reports it */
        json_decref(o);
        o = NULL;
    }
    return export_row(e, o, e->rows == 0);
}

static rlhf_status export_selection(void *ctx, const rlhf_store_selection *x) {
    export_ctx *e = ctx;
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "kind", json_string("selection"));
        json_object_set_new(o, "round", json_integer(x->round));
        json_object_set_new(o, "prompt_id", json_integer(x->prompt_id));
        json_object_set_new(o, "sample_id", json_integer(x->sample_id));
        json_object_set_new(o, "score", json_real(x->score));
    }
    return export_row(e, o, e->rows == 0);
}

static rlhf_status export_judgment(void *ctx, const rlhf_store_judgment *x) {
    export_ctx *e = ctx;
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "kind", json_string("judgment"));
        json_object_set_new(o, "id", json_integer(x->id));
        json_object_set_new(o, "sample_id", json_integer(x->sample_id));
        json_object_set_new(o, "judge", json_string(x->judge));
        json_object_set_new(o, "value", json_real(x->value));
        json_object_set_new(o, "round", json_integer(x->round));
        json_object_set_new(o, "idx", json_integer(x->idx));
        json_object_set_new(o, "prompt_id", json_integer(x->prompt_id));
        json_object_set_new(o, "checkpoint_id", x->checkpoint_id ? json_integer(x->checkpoint_id)
                                                                 : json_null());
        json_object_set_new(o, "stage_id", x->stage_id ? json_integer(x->stage_id) : json_null());
    }
    return export_row(e, o, e->rows == 0);
}

int cmd_export(int argc, char **argv) {
    const char *what = NULL, *format = "jsonl", *out = NULL;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"what", 'w', CLI_STR, &what, "TABLE", NULL,
         "samples, pairs, selections, dialogues, prompts, rollouts or judgments; required", false},
        {"format", 'f', CLI_STR, &format, "jsonl|csv", "jsonl", "output format", false},
        {"out", 'o', CLI_STR, &out, "FILE", "stdout", "where to write", false},
        {"quiet", 'q', CLI_FLAG, &com.quiet, NULL, NULL, "no summary line on stderr", false},
        {"help", 'h', CLI_FLAG, NULL, NULL, NULL, "print this help and exit", false},
        {0},
    };
    cli_spec spec = {
        "export",
        "RUN --what TABLE [--format jsonl|csv] [--out FILE]",
        "Writes the rows of one table in id order: JSONL (one object a line; JSON values for\n"
        "turns and arrays) or CSV (a header row; RFC 4180 quoting; JSON text for nested values;\n"
        "empty for NULL). Exported prompts, pairs and dialogues (JSONL) import back with\n"
        "`rlhf import --format rlhf`.",
        opts,
        1,
        1};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!what) return cli_usage_error(&spec, "--what is required");
    static const char *const whats[] = {"samples", "pairs",    "selections", "dialogues",
                                        "prompts", "rollouts", "judgments"};
    int w = -1;
    for (int i = 0; i < (int)(sizeof whats / sizeof *whats); i++)
        if (strcmp(what, whats[i]) == 0) w = i;
    if (w < 0) return cli_usage_error(&spec, "--what: unknown table '%s'", what);
    bool csv = false;
    if (strcmp(format, "csv") == 0)
        csv = true;
    else if (strcmp(format, "jsonl") != 0)
        return cli_usage_error(&spec, "--format: expected jsonl or csv, got '%s'", format);

    rlhf_store *s = NULL;
    rlhf_status r = rlhf_store_open(&s, pos[0], false);
    if (r != RLHF_OK) return cli_fail(spec.cmd, r);
    export_ctx e = {stdout, csv, out ? out : "stdout", 0};
    if (out && strcmp(out, "-") != 0) {
        e.f = fopen(out, "wb");
        if (!e.f) {
            r = RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", out, strerror(errno));
            rlhf_store_close(s);
            return cli_fail(spec.cmd, r);
        }
    }
    switch (w) {
    case 0:
        r = rlhf_store_samples_each(s, export_sample, &e);
        break;
    case 1:
        r = rlhf_store_pairs_each(s, export_pair, &e);
        break;
    case 2:
        r = rlhf_store_selections_each(s, export_selection, &e);
        break;
    case 3:
        r = rlhf_store_dialogues_each(s, export_dialogue, &e);
        break;
    case 4:
        r = rlhf_store_prompts_each(s, export_prompt, &e);
        break;
    case 5:
        r = rlhf_store_rollouts_each(s, 0, export_rollout, &e);
        break;
    default:
        r = rlhf_store_judgments_each(s, export_judgment, &e);
        break;
    }
    if (e.f != stdout) {
        if (fclose(e.f) != 0 && r == RLHF_OK)
            r = RLHF_ERR(RLHF_ERR_IO, "%s: write error: %s", out, strerror(errno));
    } else if (fflush(stdout) != 0 && r == RLHF_OK) {
        r = RLHF_ERR(RLHF_ERR_IO, "stdout: write error: %s", strerror(errno));
    }
    rlhf_store_close(s);
    if (r != RLHF_OK) return cli_fail(spec.cmd, r);
    if (!com.quiet)
        fprintf(stderr, "exported %" PRId64 " %s as %s to %s\n", e.rows, what, format, e.path);
    return CLI_EXIT_OK;
}

/* ---- import
 * --------------------------------------------------------------------------------------------- */

/* Import of one file is one `stages` row (kind "import", key = sha256 of the file's content and
 * the options that change the rows). Rows go in with one transaction per batch, and each batch's
 * transaction also sets the stage's progress to the index of the next record to read, so a process
 * killed at any moment leaves either all or none of a batch. Rerunning the same import finds the
 * running stage and skips the records below its progress; a finished one is not imported again.
 * Any failure (a bad record in stop mode, a read or database error) deletes every row this stage
 * wrote and marks it failed with the error, so the data tables end as they were. */

#define IMPORT_MAX_BAD_KEPT 100 /* reasons of skipped records kept for the stage's result */

typedef struct import_ctx {
    rlhf_store *s;
    int64_t stage_id;
    int64_t skip_below; /* records with index below this were committed by an earlier run */
    int64_t pending;    /* rows in the open transaction */
    int64_t progress;   /* index + 1 of the last record handled */
    int64_t batch;      /* rows per transaction */
    ds_track track;     /* for pairs whose file names none */
    double split_eval;
    const char *source;
    int64_t n_pairs, n_prompts, n_dialogues, n_eval, n_written; /* rows delivered (all runs) */
    char **bad; /* first IMPORT_MAX_BAD_KEPT reasons */
    int64_t n_bad;
    cli_progress *prog;
    /* set by the native ("rlhf") reader for the record it delivers; NULL/-1 otherwise */
    int native_split; /* -1: decide with ds_split_is_eval */
    const char *native_source;
    const uint8_t *native_mask;
    int32_t native_n_mask;
} import_ctx;

static const char *role_name(ds_role r) {
    return r == DS_ROLE_SYSTEM ? "system" : r == DS_ROLE_USER ? "user" : "assistant";
}

/* The turns as JSON text [{"role":..., "text":...}, ...] (caller frees); NULL when out of memory.
 */
static char *turns_json(const ds_turn *t, int32_t n) {
    json_t *a = json_array();
    if (!a) return NULL;
    for (int32_t i = 0; i < n; i++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
        json_object_set_new(o, "role", json_string(role_name(t[i].role)));
        json_object_set_new(o, "text", json_string(t[i].text ? t[i].text : ""));
    }
    char *s = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(a);
    return s;
}

static const char *rating_name(ds_rating r) {
    switch (r) {
    case DS_RATING_SIGNIFICANTLY:
        return "significantly";
    case DS_RATING_BETTER:
        return "better";
    case DS_RATING_SLIGHTLY:
        return "slightly";
    case DS_RATING_NEGLIGIBLY:
        return "negligibly";
    case DS_RATING_UNSURE:
        return "unsure";
    default:
        return NULL;
    }
}

static rlhf_status import_flush(import_ctx *c) {
    if (!rlhf_store_in_transaction(c->s)) return RLHF_OK;
    RLHF_TRY(rlhf_store_stage_progress(c->s, c->stage_id, c->progress));
    RLHF_TRY(rlhf_store_commit(c->s));
    c->pending = 0;
    return RLHF_OK;
}

static rlhf_status import_sink(void *ctx, const ds_record *r) {
    import_ctx *c = ctx;
    if (r->index < c->skip_below) return RLHF_OK; /* committed by the interrupted run */
    if (!rlhf_store_in_transaction(c->s)) RLHF_TRY(rlhf_store_begin(c->s));
    rlhf_split split = c->native_split >= 0                 ? (rlhf_split)c->native_split
                       : ds_split_is_eval(r, c->split_eval) ? RLHF_SPLIT_EVAL
                                                            : RLHF_SPLIT_TRAIN;
    const char *source = c->native_source ? c->native_source : c->source;
    rlhf_status st = RLHF_OK;
    char *tj = NULL;
    switch (r->kind) {
    case DS_PAIR: {
        const ds_pair *p = &r->pair;
        ds_track track = p->track != DS_TRACK_NONE ? p->track : c->track;
        if (track == DS_TRACK_NONE)
            return RLHF_ERR(RLHF_ERR_FORMAT,
                            "%s:%" PRId64
                            ": the pair has no track; pass --track helpfulness|safety",
                            r->file, r->line);
        tj = turns_json(p->context.turns, p->context.n_turns);
        if (!tj) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot encode turns");
        rlhf_store_pair row = {
            .track = track == DS_TRACK_SAFETY ? "safety" : "helpfulness",
            .system = p->context.system,
            .context_json = tj,
            .chosen = p->chosen,
            .rejected = p->rejected,
            .rating = rating_name(p->rating),
            .chosen_safe = p->chosen_safe,
            .rejected_safe = p->rejected_safe,
            .split = split,
            .source = source,
            .stage_id = c->stage_id,
            .src_index = r->index,
        };
        st = rlhf_store_pair_add(c->s, &row, NULL);
        c->n_pairs++;
        break;
    }
    case DS_PROMPT: {
        const ds_prompt *p = &r->prompt;
        if (p->n_turns > 0) {
            tj = turns_json(p->turns, p->n_turns);
            if (!tj) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot encode turns");
        }
        rlhf_store_prompt row = {
            .text = p->text,
            .system = p->system,
            .turns_json = tj,
            .unsafe = p->unsafe,
            .category = p->category,
            .split = split,
            .source = source,
            .stage_id = c->stage_id,
            .src_index = r->index,
        };
        st = rlhf_store_prompt_add(c->s, &row, NULL);
        c->n_prompts++;
        break;
    }
    case DS_DIALOGUE: {
        const ds_dialogue *d = &r->dialogue;
        tj = turns_json(d->turns, d->n_turns);
        uint8_t *mask = malloc(d->n_turns > 0 ? (size_t)d->n_turns : 1);
        if (!tj || !mask) {
            free(tj);
            free(mask);
            return RLHF_ERR(RLHF_ERR_NOMEM, "cannot encode turns");
        }
        for (int32_t i = 0; i < d->n_turns; i++)
            mask[i] = c->native_mask && i < c->native_n_mask
                          ? c->native_mask[i]
                          : d->turns[i].role == DS_ROLE_ASSISTANT;
        rlhf_store_dialogue row = {
            .system = d->system,
            .turns_json = tj,
            .loss_mask = mask,
            .n_mask = d->n_turns,
            .split = split,
            .source = source,
            .stage_id = c->stage_id,
            .src_index = r->index,
        };
        st = rlhf_store_dialogue_add(c->s, &row, NULL);
        free(mask);
        c->n_dialogues++;
        break;
    }
    default:
        st = RLHF_ERR(RLHF_ERR_ARG, "%s:%" PRId64 ": unknown record kind %d", r->file, r->line,
                      (int)r->kind);
    }
    free(tj);
    if (st != RLHF_OK) {
        /* name the record: a constraint failure alone would not say which line */
        char msg[900];
        snprintf(msg, sizeof msg, "%s", rlhf_last_error());
        return RLHF_ERR(st, "%s:%" PRId64 ": %s", r->file, r->line, msg);
    }
    if (split == RLHF_SPLIT_EVAL) c->n_eval++;
    c->n_written++;
    c->pending++;
    c->progress = r->index + 1;
    if (c->pending >= c->batch) RLHF_TRY(import_flush(c));
    if (c->prog) cli_progress_update(c->prog, r->index + 1);
    return RLHF_OK;
}

static void import_bad(void *ctx, const char *file, int64_t line, const char *reason) {
    import_ctx *c = ctx;
    if (c->n_bad < IMPORT_MAX_BAD_KEPT) {
        size_t n = strlen(file) + strlen(reason) + 32;
        char *m = malloc(n);
        if (m) {
            snprintf(m, n, "%s:%" PRId64 ": %s", file, line, reason);
            c->bad[c->n_bad] = m;
        }
    }
    c->n_bad++;
}

/* ---- the native format: `rlhf export` JSONL of prompts, pairs and dialogues
 * ---------------------- */

static int native_bool(json_t *v) { return json_is_true(v) ? 1 : json_is_false(v) ? 0 : -1; }

/* Turns of a JSON array [{"role","text"}] into *out (caller frees); NULL text on a bad shape. */
static const char *native_turns(json_t *a, ds_turn **out, int32_t *n) {
    *out = NULL;
    *n = 0;
    if (!json_is_array(a)) return "turns: expected an array";
    size_t k = json_array_size(a);
    ds_turn *t = calloc(k ? k : 1, sizeof *t);
    if (!t) return "out of memory";
    for (size_t i = 0; i < k; i++) {
        json_t *o = json_array_get(a, i);
        const char *role = json_string_value(json_object_get(o, "role"));
        const char *text = json_string_value(json_object_get(o, "text"));
        if (!role || !text) {
            free(t);
            return "turns: each turn needs string \"role\" and \"text\"";
        }
        if (strcmp(role, "user") == 0)
            t[i].role = DS_ROLE_USER;
        else if (strcmp(role, "assistant") == 0)
            t[i].role = DS_ROLE_ASSISTANT;
        else if (strcmp(role, "system") == 0)
            t[i].role = DS_ROLE_SYSTEM;
        else {
            free(t);
            return "turns: role must be user, assistant or system";
        }
        t[i].text = text;
    }
    *out = t;
    *n = (int32_t)k;
    return NULL;
}

/* Optional string member: NULL when absent or null; *bad set when it has another type. */
static const char *opt_str(json_t *o, const char *key, bool *bad) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) *bad = true;
    return json_string_value(v);
}

/* Builds the record of one line into r (pointers into j and *turns); NULL or the reason. */
static const char *native_record(json_t *j, import_ctx *c, ds_record *r, ds_turn **turns,
                                 uint8_t *mask_buf, int32_t mask_cap) {
    if (!json_is_object(j)) return "expected a JSON object";
    const char *kind = json_string_value(json_object_get(j, "kind"));
    bool bad = false;
    const char *split = opt_str(j, "split", &bad);
    c->native_source = opt_str(j, "source", &bad);
    if (bad) return "\"split\" and \"source\" must be strings";
    if (!split || (strcmp(split, "train") && strcmp(split, "eval")))
        return "\"split\" must be \"train\" or \"eval\"";
    c->native_split = strcmp(split, "eval") == 0 ? RLHF_SPLIT_EVAL : RLHF_SPLIT_TRAIN;
    if (!kind) return "missing \"kind\"";
    const char *why;
    if (strcmp(kind, "pair") == 0) {
        r->kind = DS_PAIR;
        ds_pair *p = &r->pair;
        const char *track = opt_str(j, "track", &bad);
        if (!track || (strcmp(track, "helpfulness") && strcmp(track, "safety")))
            return "pair: \"track\" must be \"helpfulness\" or \"safety\"";
        p->track = strcmp(track, "safety") == 0 ? DS_TRACK_SAFETY : DS_TRACK_HELPFULNESS;
        p->context.system = opt_str(j, "system", &bad);
        if ((why = native_turns(json_object_get(j, "context"), turns, &p->context.n_turns)))
            return why;
        p->context.turns = *turns;
        p->chosen = opt_str(j, "chosen", &bad);
        p->rejected = opt_str(j, "rejected", &bad);
        if (!p->chosen || !p->rejected) return "pair: \"chosen\" and \"rejected\" are required";
        const char *rating = opt_str(j, "rating", &bad);
        p->rating = DS_RATING_NONE;
        if (rating) {
            for (int k = DS_RATING_SIGNIFICANTLY; k <= DS_RATING_UNSURE; k++)
                if (strcmp(rating, rating_name((ds_rating)k)) == 0) p->rating = (ds_rating)k;
            if (p->rating == DS_RATING_NONE) return "pair: unknown \"rating\"";
        }
        p->chosen_safe = (int8_t)native_bool(json_object_get(j, "chosen_safe"));
        p->rejected_safe = (int8_t)native_bool(json_object_get(j, "rejected_safe"));
    } else if (strcmp(kind, "prompt") == 0) {
        r->kind = DS_PROMPT;
        ds_prompt *p = &r->prompt;
        p->text = opt_str(j, "text", &bad);
        if (!p->text) return "prompt: \"text\" is required";
        p->system = opt_str(j, "system", &bad);
        p->category = opt_str(j, "category", &bad);
        p->unsafe = (int8_t)native_bool(json_object_get(j, "unsafe"));
        json_t *t = json_object_get(j, "turns");
        if (t && !json_is_null(t)) {
            if ((why = native_turns(t, turns, &p->n_turns))) return why;
            p->turns = *turns;
        }
    } else if (strcmp(kind, "dialogue") == 0) {
        r->kind = DS_DIALOGUE;
        ds_dialogue *d = &r->dialogue;
        d->system = opt_str(j, "system", &bad);
        if ((why = native_turns(json_object_get(j, "turns"), turns, &d->n_turns))) return why;
        d->turns = *turns;
        json_t *m = json_object_get(j, "loss_mask");
        if (m && !json_is_null(m)) {
            if (!json_is_array(m) || (int64_t)json_array_size(m) != d->n_turns ||
                d->n_turns > mask_cap)
                return "dialogue: \"loss_mask\" must be an array with one 0/1 per turn";
            for (int32_t i = 0; i < d->n_turns; i++) {
                json_int_t v = json_integer_value(json_array_get(m, (size_t)i));
                if (!json_is_integer(json_array_get(m, (size_t)i)) || (v != 0 && v != 1))
                    return "dialogue: \"loss_mask\" values must be 0 or 1";
                mask_buf[i] = (uint8_t)v;
            }
            c->native_mask = mask_buf;
            c->native_n_mask = d->n_turns;
        }
    } else {
        return "\"kind\" must be pair, prompt or dialogue";
    }
    if (bad) return "a text member has a non-string value";
    return NULL;
}

/* Reads an exported JSONL file (one object a line, blank lines ignored) with ds_read's contract. */
static rlhf_status native_read(const char *path, bool skip_bad, import_ctx *c,
                               ds_read_stats *stats) {
    memset(stats, 0, sizeof *stats);
    FILE *f = fopen(path, "rb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t lineno = 0;
    rlhf_status r = RLHF_OK;
    enum { MASK_CAP = 4096 };
    uint8_t *mask = malloc(MASK_CAP);
    if (!mask) {
        fclose(f);
        return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)n) continue;
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)n, 0, &je);
        ds_record rec;
        memset(&rec, 0, sizeof rec);
        rec.file = path;
        rec.line = lineno;
        rec.index = stats->records++;
        ds_turn *turns = NULL;
        c->native_split = -1;
        c->native_source = NULL;
        c->native_mask = NULL;
        const char *why = j ? native_record(j, c, &rec, &turns, mask, MASK_CAP) : je.text;
        if (why) {
            stats->bad++;
            if (!skip_bad) {
                r = RLHF_ERR(RLHF_ERR_FORMAT, "%s:%" PRId64 ": %s", path, lineno, why);
            } else {
                import_bad(c, path, lineno, why);
            }
        } else {
            stats->good++;
            r = import_sink(c, &rec);
        }
        free(turns);
        json_decref(j);
        c->native_split = -1;
        c->native_source = NULL;
        c->native_mask = NULL;
        if (r != RLHF_OK) break;
    }
    if (r == RLHF_OK && ferror(f)) r = RLHF_ERR(RLHF_ERR_IO, "%s: read error", path);
    free(mask);
    free(line);
    fclose(f);
    return r;
}

/* True when the first non-blank line of path is an object with "kind" pair/prompt/dialogue and a
 * "split" member (what `rlhf export --format jsonl` writes). */
static bool native_detect(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool yes = false;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (strspn(line, " \t\r\n") == (size_t)n) continue;
        json_t *j = json_loadb(line, (size_t)n, 0, NULL);
        const char *k = json_string_value(json_object_get(j, "kind"));
        yes = k && json_object_get(j, "split") &&
              (!strcmp(k, "pair") || !strcmp(k, "prompt") || !strcmp(k, "dialogue"));
        json_decref(j);
        break;
    }
    free(line);
    fclose(f);
    return yes;
}

/* ---- one file
 * ---------------------------------------------------------------------------------------- */

typedef struct import_opts {
    const char *format; /* "auto", a ds format name, or "rlhf" */
    ds_track track;
    double split_eval;
    bool unsafe, skip_bad;
    const char *source; /* NULL: the file's base name */
    int64_t batch;
    const cli_common *com;
} import_opts;

static const char *base_name(const char *p) {
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

static char *result_json(const import_ctx *c, const ds_read_stats *st, int64_t resumed_at) {
    json_t *o = json_object(), *bad = json_array();
    if (!o || !bad) {
        json_decref(o);
        json_decref(bad);
        return NULL;
    }
    json_object_set_new(o, "records", json_integer(st->records));
    json_object_set_new(o, "good", json_integer(st->good));
    json_object_set_new(o, "bad", json_integer(st->bad));
    json_object_set_new(o, "rejected_same", json_integer(st->rejected_same));
    json_object_set_new(o, "rejected_context", json_integer(st->rejected_context));
    json_object_set_new(o, "pairs", json_integer(c->n_pairs));
    json_object_set_new(o, "prompts", json_integer(c->n_prompts));
    json_object_set_new(o, "dialogues", json_integer(c->n_dialogues));
    json_object_set_new(o, "resumed_at", json_integer(resumed_at));
    for (int64_t i = 0; i < c->n_bad && i < IMPORT_MAX_BAD_KEPT; i++)
        if (c->bad[i]) json_array_append_new(bad, json_string(c->bad[i]));
    json_object_set_new(o, "bad_records", bad);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* Imports one file as described above. Prints a summary line; returns the status. */
static rlhf_status import_file(rlhf_store *s, const char *path, const import_opts *o) {
    char sha[65];
    int64_t size = 0;
    RLHF_TRY(rlhf_store_sha256_file(path, sha, &size));
    bool native =
        strcmp(o->format, "rlhf") == 0 || (strcmp(o->format, "auto") == 0 && native_detect(path));
    ds_format fmt = DS_FMT_AUTO;
    if (!native && !ds_format_parse(o->format, &fmt))
        return RLHF_ERR(RLHF_ERR_ARG, "unknown format '%s'", o->format);
    if (!native && fmt == DS_FMT_AUTO) {
        RLHF_TRY(ds_format_detect(path, &fmt));
        if (fmt == DS_FMT_AUTO)
            return RLHF_ERR(RLHF_ERR_FORMAT,
                            "%s: cannot tell the format from the name or content; pass --format",
                            path);
    }
    const char *fmt_name = native ? "rlhf" : ds_format_name(fmt);
    const char *source = o->source ? o->source : base_name(path);
    const char *track = o->track == DS_TRACK_SAFETY        ? "safety"
                        : o->track == DS_TRACK_HELPFULNESS ? "helpfulness"
                                                           : NULL;
    /* The key: what decides the rows (content and row-shaping options), not the path. */
    char key[256];
    snprintf(key, sizeof key, "%s|%s|%s|%.17g|%d|%s", sha, fmt_name, track ? track : "-",
             o->split_eval, (int)o->unsafe, source);
    json_t *pj = json_object();
    if (!pj) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    json_object_set_new(pj, "file", json_string(path));
    json_object_set_new(pj, "size", json_integer(size));
    json_object_set_new(pj, "sha256", json_string(sha));
    json_object_set_new(pj, "format", json_string(fmt_name));
    json_object_set_new(pj, "track", jstr(track));
    json_object_set_new(pj, "split_eval", json_real(o->split_eval));
    json_object_set_new(pj, "unsafe", json_boolean(o->unsafe));
    json_object_set_new(pj, "on_error", json_string(o->skip_bad ? "skip" : "stop"));
    json_object_set_new(pj, "source", json_string(source));
    json_object_set_new(pj, "batch", json_integer(o->batch));
    char *params = json_dumps(pj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(pj);
    if (!params) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");

    import_ctx c = {.s = s,
                    .batch = o->batch,
                    .track = o->track,
                    .split_eval = o->split_eval,
                    .source = source,
                    .native_split = -1};
    c.bad = calloc(IMPORT_MAX_BAD_KEPT, sizeof *c.bad);
    rlhf_status r;
    rlhf_store_stage found = {0};
    bool have = false;
    char *result = NULL;
    if (!c.bad) {
        free(params);
        return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    }
    /* find-or-start in one write transaction, so two importers cannot both start the stage */
    RLHF_TRY_GOTO(r, rlhf_store_begin(s), out);
    RLHF_TRY_GOTO(r, rlhf_store_stage_find(s, "import", key, &found, &have), out);
    if (have && found.status == RLHF_STAGE_DONE) {
        RLHF_TRY_GOTO(r, rlhf_store_commit(s), out);
        if (!o->com->quiet)
            printf("%s: already imported by stage #%" PRId64 " (%" PRId64
                   " records); nothing to do\n",
                   path, found.id, found.progress);
        goto out;
    }
    if (have) {
        c.stage_id = found.id;
        c.skip_below = found.progress;
        if (!o->com->quiet)
            printf("%s: resuming stage #%" PRId64 " after %" PRId64 " committed records\n", path,
                   found.id, found.progress);
    } else {
        RLHF_TRY_GOTO(r, rlhf_store_stage_begin(s, "import", key, params, -1, &c.stage_id), out);
    }
    RLHF_TRY_GOTO(r, rlhf_store_commit(s), out);
    c.progress = c.skip_below;

    cli_progress prog;
    char label[300];
    snprintf(label, sizeof label, "import %s", base_name(path));
    cli_progress_start(&prog, label, "records", 0, o->com);
    c.prog = &prog;
    ds_read_stats st = {0};
    if (native) {
        r = native_read(path, o->skip_bad, &c, &st);
    } else {
        ds_read_opts ro = {.format = fmt,
                           .track = o->track,
                           .unsafe = o->unsafe ? 1 : -1,
                           .skip_bad = o->skip_bad};
        r = ds_read(path, &ro, import_sink, import_bad, &c, &st);
    }
    cli_progress_end(&prog);
    if (r == RLHF_OK) {
        result = result_json(&c, &st, c.skip_below);
        if (!result) r = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    }
    if (r == RLHF_OK) {
        /* the last rows, the metrics and done in one transaction */
        if (!rlhf_store_in_transaction(s)) RLHF_TRY_GOTO(r, rlhf_store_begin(s), failed);
        static const char *const names[] = {"import/records", "import/good", "import/bad",
                                            "import/rejected_same", "import/rejected_context"};
        int64_t vals[] = {st.records, st.good, st.bad, st.rejected_same, st.rejected_context};
        for (int i = 0; i < 5; i++)
            RLHF_TRY_GOTO(r, rlhf_store_metric_set(s, c.stage_id, 0, names[i], (double)vals[i]),
                          failed);
        RLHF_TRY_GOTO(r, rlhf_store_stage_finish(s, c.stage_id, st.records, result), failed);
        RLHF_TRY_GOTO(r, rlhf_store_commit(s), failed);
        if (!o->com->quiet) {
            printf("%s: %s, %" PRId64 " records: %" PRId64 " pairs, %" PRId64 " prompts, %" PRId64
                   " dialogues (%" PRId64 " eval); %" PRId64 " bad",
                   path, fmt_name, st.records, c.n_pairs, c.n_prompts, c.n_dialogues, c.n_eval,
                   st.bad);
            if (st.rejected_same || st.rejected_context)
                printf("; rejected %" PRId64 " (identical responses %" PRId64
                       ", differing contexts %" PRId64 ")",
                       st.rejected_same + st.rejected_context, st.rejected_same,
                       st.rejected_context);
            if (c.skip_below) printf("; resumed after %" PRId64, c.skip_below);
            printf("\n");
            for (int64_t i = 0; i < c.n_bad && i < 20; i++)
                if (c.bad[i]) printf("  skipped %s\n", c.bad[i]);
            if (c.n_bad > 20)
                printf("  ... and %" PRId64 " more (see the stage's result)\n", c.n_bad - 20);
        }
        goto out;
    }
failed : {
    /* roll back this import entirely: the open batch, then every committed batch */
    char err[1024];
    snprintf(err, sizeof err, "%s", rlhf_last_error()[0] ? rlhf_last_error() : rlhf_status_name(r));
    rlhf_store_rollback(s);
    rlhf_status r2 = rlhf_store_begin(s);
    if (r2 == RLHF_OK) r2 = rlhf_store_stage_delete_rows(s, c.stage_id);
    if (r2 == RLHF_OK) r2 = rlhf_store_stage_fail(s, c.stage_id, err, NULL);
    if (r2 == RLHF_OK) r2 = rlhf_store_commit(s);
    if (r2 != RLHF_OK) {
        /* the stage stays running; rerunning the import resumes it and tries again */
        rlhf_store_rollback(s);
        char err2[512];
        snprintf(err2, sizeof err2, "%s", rlhf_last_error());
        r = RLHF_ERR(r, "%s; then undoing the import failed: %s", err, err2);
    }
    /* else the last error is still the first failure's text */
}
out:
    if (rlhf_store_in_transaction(s)) rlhf_store_rollback(s);
    for (int64_t i = 0; i < IMPORT_MAX_BAD_KEPT; i++)
        free(c.bad[i]);
    free(c.bad);
    free(result);
    free(params);
    return r;
}

int cmd_import(int argc, char **argv) {
    const char *format = "auto", *track = NULL, *on_error = "stop", *source = NULL;
    float split_eval = 0.0f;
    bool unsafe = false;
    int32_t batch = 500;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"format", 'f', CLI_STR, &format, "NAME", "auto",
         "auto, hh, sharegpt, nemo, mtbench, csv-pairs, csv-prompts, prompt-list, or rlhf (the "
         "JSONL that `rlhf export` writes)",
         false},
        {"track", 't', CLI_STR, &track, "helpfulness|safety", NULL,
         "track of pairs whose file names none (required for HH-RLHF)", false},
        {"split-eval", 0, CLI_NONNEG_FLOAT, &split_eval, "FRACTION", "0",
         "share of records put in the eval split (deterministic, by content hash)", false},
        {"unsafe", 0, CLI_FLAG, &unsafe, NULL, NULL, "tag the prompts as unsafe (to be refused)",
         false},
        {"on-error", 0, CLI_STR, &on_error, "stop|skip", "stop",
         "stop: the first bad record undoes the whole import of the file; skip: import the good "
         "records, report the bad ones",
         false},
        {"source", 0, CLI_STR, &source, "NAME", "the file's name", "source recorded on each row",
         false},
        {"batch", 0, CLI_POS_INT, &batch, "N", "500", "rows per transaction", false},
        {"quiet", 'q', CLI_FLAG, &com.quiet, NULL, NULL, "print errors only", false},
        {"progress", 0, CLI_FLAG, &com.progress, NULL, NULL,
         "progress line on stderr even when it is not a terminal", false},
        {"help", 'h', CLI_FLAG, NULL, NULL, NULL, "print this help and exit", false},
        {0},
    };
    cli_spec spec = {
        "import",
        "RUN FILE... [options]",
        "Imports dataset files into the run (which must exist: `rlhf init RUN`). Each file is one\n"
        "stage, committed in batches with its progress: an import killed at any moment and run\n"
        "again continues where it stopped, and a finished one is not repeated.",
        opts,
        2,
        4096};
    char **pos = malloc(4096 * sizeof *pos);
    if (!pos) return cli_fail("import", RLHF_ERR(RLHF_ERR_NOMEM, "out of memory"));
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) {
        free(pos);
        return rc;
    }
    import_opts o = {.format = format,
                     .split_eval = split_eval,
                     .unsafe = unsafe,
                     .source = source,
                     .batch = batch,
                     .com = &com};
    ds_format f;
    if (strcmp(format, "rlhf") != 0 && !ds_format_parse(format, &f))
        rc = cli_usage_error(&spec, "--format: unknown format '%s'", format);
    else if (track && strcmp(track, "helpfulness") && strcmp(track, "safety"))
        rc = cli_usage_error(&spec, "--track: expected helpfulness or safety, got '%s'", track);
    else if (split_eval > 1.0f)
        rc = cli_usage_error(&spec, "--split-eval: expected a fraction in [0, 1]");
    else if (strcmp(on_error, "stop") && strcmp(on_error, "skip"))
        rc = cli_usage_error(&spec, "--on-error: expected stop or skip, got '%s'", on_error);
    if (rc >= 0) {
        free(pos);
        return rc;
    }
    o.track = !track                         ? DS_TRACK_NONE
              : strcmp(track, "safety") == 0 ? DS_TRACK_SAFETY
                                             : DS_TRACK_HELPFULNESS;
    o.skip_bad = strcmp(on_error, "skip") == 0;
    rlhf_store *s = NULL;
    rlhf_status r = rlhf_store_open(&s, pos[0], false);
    if (r == RLHF_OK)
        for (int i = 1; i < n_pos && r == RLHF_OK; i++)
            r = import_file(s, pos[i], &o);
    rlhf_store_close(s);
    free(pos);
    return r == RLHF_OK ? CLI_EXIT_OK : cli_fail(spec.cmd, r);
}
