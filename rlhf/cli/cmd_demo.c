/* cmd_demo.c: `rlhf demo`, the whole Llama 2-Chat recipe end to end in one command (issue 10).
 *
 * The demo calls the program's own commands in-process, in order, each with an argv built here:
 *   world      rlhf world build OUT/world            (the synthetic world with its gold judges)
 *   tokenizer  rlhf tokenizer train                   (BPE on OUT/world/corpus.txt)
 *   pretrain   rlhf pretrain                          (a tiny base model, OUT/base/model.bin)
 *   import     rlhf import                            (prompts, SFT demonstrations, pairs)
 *   sft        rlhf sft                               (policy 0)
 *   rm         rlhf rm train + rm eval                (helpfulness and safety reward models)
 *   rs         rlhf rs round 1..R                     (rejection sampling)
 *   ppo        rlhf ppo                               (from the last RS policy)
 *   gatt       rlhf gatt generate + sft + gatt eval   (Ghost Attention, eval with and without)
 *   eval       rlhf sample --prompts eval             (SFT, RS and PPO policies, rounds 100-102)
 *   judge      rlhf world judge + world compare       (gold judgments, win rates)
 *   report     rlhf report                            (OUT/run/report/index.html)
 * then prints a summary of the goal numbers read back from the run.
 *
 * Layout: OUT/world/ (the world's files), OUT/tok.model, OUT/base/ (pretraining), OUT/run/ (the
 * run store: every later stage), OUT/run/logs/NN-<stage>.log (the stdout of the stage's commands;
 * progress lines and errors stay on the terminal). OUT is made absolute first, so the paths the
 * run records do not depend on the directory the demo is started from.
 *
 * Resuming: every command is resumable, and each demo stage is recorded in the run as a stage of
 * kind `demo` (key = the stage's name), finished when all its commands succeeded. A rerun skips
 * finished stages and continues the first unfinished one, whose commands continue where they
 * stopped (after Ctrl-C, kill -9 or a failure). `--from STAGE` re-enters the finished stages from
 * STAGE on (their commands find their work done and check it); `--until STAGE` stops after STAGE.
 * The preset and seed are recorded once (stage `demo`, key `config`): a rerun with other ones into
 * the same OUT is refused. A failing command stops the demo with its stage, its exit status and
 * the command line that reruns it by hand. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "store.h"

/* ---- the stages and the two presets -------------------------------------------------------------- */

enum {
    ST_WORLD, ST_TOKENIZER, ST_PRETRAIN, ST_IMPORT, ST_SFT, ST_RM, ST_RS, ST_PPO, ST_GATT,
    ST_EVAL, ST_JUDGE, ST_REPORT, N_STAGES
};
static const char *const stage_name[N_STAGES] = {
    "world", "tokenizer", "pretrain", "import", "sft", "rm",
    "rs",    "ppo",       "gatt",     "eval",   "judge", "report"};

/* Rounds of the samples drawn on the eval prompts (distinct from the RS rounds 1..R). */
enum { ROUND_EVAL_SFT = 100, ROUND_EVAL_RS = 101, ROUND_EVAL_PPO = 102 };

/* Every size and rate of a demo. */
typedef struct demo_cfg {
    const char *name, *world_size;
    int32_t vocab;
    int32_t dim, hidden, layers, heads, kv_heads, seq, pt_steps, pt_batch;
    float pt_lr;
    int32_t sft_epochs, sft_batch;
    float sft_lr;
    int32_t rm_epochs, rm_batch, rm_max_pairs;
    float rm_lr;
    int32_t rs_rounds, rs_k, rs_epochs, max_new;
    float rs_lr, rs_temperature;
    int32_t ppo_iters, ppo_batch, ppo_minibatch;
    float ppo_lr, ppo_beta;
    int32_t gatt_n, gatt_k, gatt_epochs, gatt_turns, gatt_eval_n, gatt_max_new;
    float gatt_lr;
    bool gatt_require_pass; /* quick: off, so that a barely trained policy still yields data */
    int32_t eval_k;
    float eval_temperature;
    double est[N_STAGES]; /* expected seconds of each stage on 2 cores */
} demo_cfg;

static const demo_cfg preset_full = {
    .name = "full", .world_size = "full", .vocab = 800,
    .dim = 128, .hidden = 344, .layers = 4, .heads = 4, .kv_heads = 4, .seq = 512,
    .pt_steps = 250, .pt_batch = 4, .pt_lr = 2e-3f,
    .sft_epochs = 2, .sft_batch = 8, .sft_lr = 1e-3f,
    .rm_epochs = 2, .rm_batch = 16, .rm_max_pairs = 5000, .rm_lr = 1e-3f,
    .rs_rounds = 2, .rs_k = 4, .rs_epochs = 1, .max_new = 40, .rs_lr = 1e-4f, .rs_temperature = 1.0f,
    .ppo_iters = 40, .ppo_batch = 64, .ppo_minibatch = 16, .ppo_lr = 1e-4f, .ppo_beta = 0.1f,
    .gatt_n = 200, .gatt_k = 4, .gatt_epochs = 2, .gatt_turns = 12, .gatt_eval_n = 40,
    .gatt_max_new = 32, .gatt_lr = 5e-4f, .gatt_require_pass = true,
    .eval_k = 4, .eval_temperature = 0.7f,
    .est = {1, 1, 83, 1, 44, 193, 24, 67, 73, 2, 1, 1}, /* run H (experiments/demo_world) */
};

static const demo_cfg preset_quick = {
    .name = "quick", .world_size = "quick", .vocab = 400,
    .dim = 48, .hidden = 128, .layers = 2, .heads = 4, .kv_heads = 2, .seq = 256,
    .pt_steps = 50, .pt_batch = 4, .pt_lr = 3e-3f,
    .sft_epochs = 1, .sft_batch = 8, .sft_lr = 1e-3f,
    .rm_epochs = 1, .rm_batch = 16, .rm_max_pairs = 128, .rm_lr = 1e-3f,
    .rs_rounds = 2, .rs_k = 2, .rs_epochs = 1, .max_new = 16, .rs_lr = 5e-4f, .rs_temperature = 1.0f,
    .ppo_iters = 2, .ppo_batch = 16, .ppo_minibatch = 8, .ppo_lr = 1e-4f, .ppo_beta = 0.1f,
    .gatt_n = 8, .gatt_k = 2, .gatt_epochs = 1, .gatt_turns = 8, .gatt_eval_n = 8,
    .gatt_max_new = 16, .gatt_lr = 5e-4f, .gatt_require_pass = false,
    .eval_k = 2, .eval_temperature = 0.7f,
    .est = {1, 1, 12, 1, 8, 10, 15, 6, 5, 5, 1, 1},
};

/* ---- argv building ------------------------------------------------------------------------------- */

#define DARGV_MAX 96

/* An argv of malloc'ed strings; oom set when a string could not be made (the command is not run). */
typedef struct dargv {
    char *v[DARGV_MAX + 1];
    int n;
    bool oom;
} dargv;

static void da(dargv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void da(dargv *a, const char *fmt, ...) {
    if (a->n >= DARGV_MAX) {
        a->oom = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        a->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void da_free(dargv *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    a->n = 0;
    a->oom = false;
}

/* Prints the argv as a shell command line ("rlhf sft /x --lr 0.001"), quoting where needed. */
static void da_print(FILE *f, const dargv *a) {
    fputs("rlhf", f);
    for (int i = 0; i < a->n; i++) {
        const char *s = a->v[i];
        bool plain = *s != '\0';
        for (const char *p = s; *p; p++)
            if (!(strchr("-_./=,:+@%", *p) || (*p >= '0' && *p <= '9') ||
                  ((*p | 32) >= 'a' && (*p | 32) <= 'z')))
                plain = false;
        if (i == 0 || plain) { /* argv[0] is the command name ("rs round"): print it as words */
            fprintf(f, " %s", s);
            continue;
        }
        fputs(" '", f);
        for (const char *p = s; *p; p++) {
            if (*p == '\'') fputs("'\\''", f);
            else fputc(*p, f);
        }
        fputc('\'', f);
    }
}

/* ---- the demo's state ---------------------------------------------------------------------------- */

typedef struct demo {
    const demo_cfg *c;
    cli_common com;
    uint64_t seed;
    const char *world_arg; /* --world: an existing world directory (no build) */
    bool verbose;
    char out[PATH_MAX], world[PATH_MAX + 16], tok[PATH_MAX + 16], base[PATH_MAX + 16],
        base_model[PATH_MAX + 32], run[PATH_MAX + 16], rm_help[PATH_MAX + 48],
        rm_safe[PATH_MAX + 48], logs[PATH_MAX + 32];
    int stage;            /* the stage running */
    double t0;            /* start of the demo in this process */
    double done_est, done_real; /* estimates and seconds of the stages run in this process */
    char rerun[PATH_MAX + 128]; /* "rlhf demo --out OUT [--quick]" */
    char ckpt[PATH_MAX + 64];   /* the checkpoint a stage made, recorded with it ("" none) */
} demo;

static void demo_paths(demo *d) {
    snprintf(d->world, sizeof d->world, "%s/world", d->out);
    if (d->world_arg) snprintf(d->world, sizeof d->world, "%s", d->world_arg);
    snprintf(d->tok, sizeof d->tok, "%s/tok.model", d->out);
    snprintf(d->base, sizeof d->base, "%s/base", d->out);
    snprintf(d->base_model, sizeof d->base_model, "%s/model.bin", d->base);
    snprintf(d->run, sizeof d->run, "%s/run", d->out);
    snprintf(d->rm_help, sizeof d->rm_help, "%s/ckpt/rm-helpfulness/hf", d->run);
    snprintf(d->rm_safe, sizeof d->rm_safe, "%s/ckpt/rm-safety/hf", d->run);
    snprintf(d->logs, sizeof d->logs, "%s/logs", d->run);
}

static void fmt_time(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 359999) {
        snprintf(buf, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

/* Seconds left for stages from..N-1: their estimates, scaled by how the stages run in this process
 * compared with their estimates (within [0.5, 4]). */
static double demo_eta(const demo *d, int from, int until) {
    double left = 0;
    for (int i = from; i <= until; i++) left += d->c->est[i];
    double scale = 1;
    if (d->done_est >= 5 && d->done_real > 0) scale = d->done_real / d->done_est;
    if (scale < 0.5) scale = 0.5;
    if (scale > 4) scale = 4;
    return left * scale;
}

/* The path of the stage's log, OUT/run/logs/NN-<stage>.log. */
static void log_path(const demo *d, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%02d-%s.log", d->logs, d->stage + 1, stage_name[d->stage]);
}

/* Runs fn(a) in-process with stdout appended to the stage's log unless --verbose. Returns the command's exit status; on failure prints the stage, the status, the
 * command line and how to continue. */
static int demo_exec(demo *d, int (*fn)(int, char **), dargv *a) {
    if (a->oom) {
        fprintf(stderr, "rlhf demo: out of memory building a command line\n");
        da_free(a);
        return CLI_EXIT_FAIL;
    }
    if (!fn) {
        fprintf(stderr,
                "rlhf demo: stage %s: this build of rlhf has no `rlhf %s` command\n",
                stage_name[d->stage], a->v[0]);
        da_free(a);
        return CLI_EXIT_FAIL;
    }
    char log[PATH_MAX + 128];
    log_path(d, log, sizeof log);
    if (d->verbose) {
        printf("    $ ");
        da_print(stdout, a);
        printf("\n");
    }
    fflush(stdout);
    int saved = -1;
    if (!d->verbose) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            FILE *lf = fdopen(dup(fd), "w");
            if (lf) { /* the command line heads its output in the log */
                fprintf(lf, "$ ");
                da_print(lf, a);
                fprintf(lf, "\n");
                fclose(lf);
            }
            saved = dup(STDOUT_FILENO);
            if (saved >= 0) dup2(fd, STDOUT_FILENO);
            close(fd);
        }
    }
    char *args[DARGV_MAX + 1]; /* a copy: a command may permute its argv */
    memcpy(args, a->v, sizeof args);
    int rc = fn(a->n, args);
    fflush(stdout);
    if (saved >= 0) {
        dup2(saved, STDOUT_FILENO);
        close(saved);
    }
    if (rc == 128 + SIGINT || rc == 128 + SIGTERM) { /* the command saved its state */
        fprintf(stderr, "\nrlhf demo: interrupted in stage %s; continue with\n  %s\n",
                stage_name[d->stage], d->rerun);
    } else if (rc != 0) {
        fprintf(stderr, "\nrlhf demo: stage %s failed: this command exited with status %d",
                stage_name[d->stage], rc);
        if (!d->verbose) fprintf(stderr, " (its output: %s)", log);
        fprintf(stderr, ":\n  ");
        da_print(stderr, a);
        fprintf(stderr,
                "\nEvery stage resumes: run that command by hand to look into it, or continue "
                "the demo with\n  %s\n",
                d->rerun);
    }
    da_free(a);
    return rc;
}

/* The global options passed on to every command (each takes the common options). */
static void da_common(dargv *a, const demo *d) {
    da(a, "--threads=%d", (int)d->com.threads);
    if (d->com.device) da(a, "--device=%s", d->com.device);
    if (d->com.precision) da(a, "--precision=%s", d->com.precision);
    if (d->com.progress) da(a, "--progress");
}

/* ---- reading the run ----------------------------------------------------------------------------- */

typedef struct ckpt_find {
    const char *role, *contains;
    int64_t id;
    char path[PATH_MAX + 64];
} ckpt_find;

static rlhf_status ckpt_row(void *ctx, const rlhf_store_checkpoint *x) {
    ckpt_find *f = ctx;
    if (strcmp(x->role, f->role) != 0 || (f->contains && !strstr(x->path, f->contains)) ||
        x->id < f->id)
        return RLHF_OK;
    f->id = x->id;
    snprintf(f->path, sizeof f->path, "%s", x->path);
    return RLHF_OK;
}

/* The newest checkpoint of role whose path contains `contains` (NULL: any) into path; an
 * RLHF_ERR_ARG naming what is missing when there is none. */
static rlhf_status newest_ckpt(const demo *d, const char *role, const char *contains, char *path,
                               size_t cap) {
    rlhf_store *s = NULL;
    ckpt_find f = {role, contains, 0, ""};
    RLHF_TRY(rlhf_store_open(&s, d->run, false));
    rlhf_status st = rlhf_store_checkpoints_each(s, ckpt_row, &f);
    rlhf_store_close(s);
    RLHF_TRY(st);
    if (f.id == 0)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: no checkpoint with role %s%s%s in the run", d->run,
                        role, contains ? " and a path containing " : "", contains ? contains : "");
    snprintf(path, cap, "%s", f.path);
    return RLHF_OK;
}

/* The demo stage rows: kind "demo", key = stage name. */
typedef struct stage_look {
    const char *kind, *key;
    bool found, done;
    int64_t id;
    char *params, *result;
} stage_look;

static rlhf_status stage_look_row(void *ctx, const rlhf_store_stage_info *x) {
    stage_look *l = ctx;
    if (strcmp(x->kind, l->kind) != 0 || !x->key || strcmp(x->key, l->key) != 0 ||
        strcmp(x->status, "failed") == 0 || x->id < l->id)
        return RLHF_OK;
    l->found = true;
    l->id = x->id;
    l->done = strcmp(x->status, "done") == 0;
    free(l->params);
    free(l->result);
    l->params = strdup(x->params_json ? x->params_json : "{}");
    l->result = strdup(x->result_json ? x->result_json : "{}");
    if (!l->params || !l->result) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    return RLHF_OK;
}

static rlhf_status stage_lookup(rlhf_store *s, const char *kind, const char *key, stage_look *l) {
    *l = (stage_look){kind, key, false, false, 0, NULL, NULL};
    return rlhf_store_stages_each(s, stage_look_row, l);
}

/* The demo's configuration as recorded JSON. */
static char *config_json(const demo *d) {
    json_t *j = json_pack("{s:s, s:I, s:s}", "preset", d->c->name, "seed", (json_int_t)d->seed,
                          "world", d->world);
    char *t = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return t;
}

/* Records the configuration on the first run; refuses another one later. */
static rlhf_status config_check(const demo *d) {
    rlhf_store *s = NULL;
    stage_look l;
    char *cfg = config_json(d);
    if (!cfg) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    rlhf_status st = rlhf_store_open(&s, d->run, false);
    if (st == RLHF_OK) st = stage_lookup(s, "demo", "config", &l);
    if (st == RLHF_OK && l.found && strcmp(l.params, cfg) != 0)
        st = RLHF_ERR(RLHF_ERR_ARG,
                      "%s: this demo was started with %s; now %s. Use another --out, or the same "
                      "options", d->out, l.params, cfg);
    if (st == RLHF_OK && !l.found) {
        int64_t id = 0;
        st = rlhf_store_stage_begin(s, "demo", "config", cfg, 0, &id);
        if (st == RLHF_OK) st = rlhf_store_stage_finish(s, id, 0, NULL);
    }
    free(l.params);
    free(l.result);
    free(cfg);
    rlhf_store_close(s);
    return st;
}

/* Whether the demo stage is recorded as done; begins (or finds) its row otherwise. */
static rlhf_status stage_enter(const demo *d, int k, bool *done, int64_t *id) {
    rlhf_store *s = NULL;
    stage_look l;
    RLHF_TRY(rlhf_store_open(&s, d->run, false));
    rlhf_status st = stage_lookup(s, "demo", stage_name[k], &l);
    if (st == RLHF_OK) {
        *done = l.done;
        *id = l.id;
        if (!l.found) st = rlhf_store_stage_begin(s, "demo", stage_name[k], NULL, 1, id);
    }
    free(l.params);
    free(l.result);
    rlhf_store_close(s);
    return st;
}

/* Finishes the demo stage's row with its duration and the checkpoint it made (d->ckpt). */
static rlhf_status stage_leave(const demo *d, int64_t id, double seconds) {
    rlhf_store *s = NULL;
    json_t *j = json_pack("{s:f}", "seconds", seconds);
    if (j && d->ckpt[0]) json_object_set_new(j, "checkpoint", json_string(d->ckpt));
    char *res = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!res) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    rlhf_status st = rlhf_store_open(&s, d->run, false);
    if (st == RLHF_OK) st = rlhf_store_stage_finish(s, id, 1, res);
    rlhf_store_close(s);
    free(res);
    return st;
}

/* The checkpoint demo stage k made (recorded when it finished) into path. */
static rlhf_status stage_ckpt(const demo *d, int k, char *path, size_t cap) {
    rlhf_store *s = NULL;
    stage_look l;
    RLHF_TRY(rlhf_store_open(&s, d->run, false));
    rlhf_status st = stage_lookup(s, "demo", stage_name[k], &l);
    rlhf_store_close(s);
    const char *p = NULL;
    json_t *j = NULL;
    if (st == RLHF_OK && l.done) {
        json_error_t err;
        j = json_loads(l.result, 0, &err);
        p = json_string_value(json_object_get(j, "checkpoint"));
    }
    if (st == RLHF_OK && !p)
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: demo stage %s has not finished (run it first: --from %s)",
                      d->run, stage_name[k], stage_name[k]);
    if (st == RLHF_OK && p) snprintf(path, cap, "%s", p);
    json_decref(j);
    free(l.params);
    free(l.result);
    return st;
}

static bool file_exists(const char *p) { return access(p, F_OK) == 0; }

/* ---- the stages ---------------------------------------------------------------------------------- */

static int st_world(demo *d) {
    dargv a = {.n = 0};
    if (d->world_arg) { /* an existing world: check it has what the demo reads */
        static const char *const need[] = {"corpus.txt", "sft.json", "prompts_train_safe.json",
                                           "prompts_eval_safe.json"};
        for (size_t i = 0; i < sizeof need / sizeof *need; i++) {
            char p[PATH_MAX + 64];
            snprintf(p, sizeof p, "%s/%s", d->world, need[i]);
            if (!file_exists(p)) {
                fprintf(stderr, "rlhf demo: --world %s: %s is missing\n", d->world, need[i]);
                return CLI_EXIT_FAIL;
            }
        }
        return 0;
    }
    da(&a, "world build"), da(&a, "%s", d->world), da(&a, "--seed=%" PRIu64, d->seed);
    da(&a, "--size"), da(&a, "%s", d->c->world_size);
    return demo_exec(d, cmd_world_build, &a);
}

static int st_tokenizer(demo *d) {
    dargv a = {.n = 0};
    da(&a, "tokenizer train"), da(&a, "--corpus"), da(&a, "%s/corpus.txt", d->world);
    da(&a, "--vocab=%d", (int)d->c->vocab), da(&a, "--out"), da(&a, "%s", d->tok);
    da_common(&a, d);
    return demo_exec(d, cmd_tokenizer_train, &a);
}

static int st_pretrain(demo *d) {
    const demo_cfg *c = d->c;
    dargv a = {.n = 0};
    da(&a, "pretrain"), da(&a, "--corpus"), da(&a, "%s/corpus.txt", d->world);
    da(&a, "--tokenizer"), da(&a, "%s", d->tok), da(&a, "--out"), da(&a, "%s", d->base);
    da(&a, "--config=tiny"), da(&a, "--dim=%d", (int)c->dim), da(&a, "--hidden=%d", (int)c->hidden);
    da(&a, "--layers=%d", (int)c->layers), da(&a, "--heads=%d", (int)c->heads);
    da(&a, "--kv-heads=%d", (int)c->kv_heads), da(&a, "--seq=%d", (int)c->seq);
    da(&a, "--steps=%d", (int)c->pt_steps), da(&a, "--batch=%d", (int)c->pt_batch);
    da(&a, "--lr=%g", (double)c->pt_lr), da(&a, "--eval-every=%d", (int)(c->pt_steps / 4));
    da(&a, "--val-windows=32"), da(&a, "--ckpt-every=%d", (int)(c->pt_steps / 4));
    da(&a, "--seed=%" PRIu64, d->seed);
    da_common(&a, d);
    return demo_exec(d, cmd_pretrain, &a);
}

/* The first existing file among WORLD/<stem>.{csv,jsonl,json} into path; false when none. */
static bool world_file(const demo *d, const char *stem, char *path, size_t cap) {
    static const char *const ext[] = {"jsonl", "csv", "json"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        snprintf(path, cap, "%.4000s/%.60s.%s", d->world, stem, ext[i]);
        if (file_exists(path)) return true;
    }
    return false;
}

static int st_import(demo *d) {
    static const struct {
        const char *file;
        bool unsafe, eval;
    } lists[] = {{"prompts_train_safe.json", false, false},
                 {"prompts_train_unsafe.json", true, false},
                 {"prompts_eval_safe.json", false, true},
                 {"prompts_eval_unsafe.json", true, true}};
    int rc = 0;
    for (size_t i = 0; i < sizeof lists / sizeof *lists && rc == 0; i++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", d->world, lists[i].file);
        if (!file_exists(p)) continue;
        dargv a = {.n = 0};
        da(&a, "import"), da(&a, "%s", d->run), da(&a, "%s", p), da(&a, "--format=prompt-list");
        if (lists[i].unsafe) da(&a, "--unsafe");
        if (lists[i].eval) da(&a, "--split-eval=1");
        rc = demo_exec(d, cmd_import, &a);
    }
    if (rc == 0) {
        dargv a = {.n = 0};
        da(&a, "import"), da(&a, "%s", d->run), da(&a, "%s/sft.json", d->world);
        rc = demo_exec(d, cmd_import, &a);
    }
    static const char *const tracks[2] = {"helpfulness", "safety"};
    for (int t = 0; t < 2 && rc == 0; t++) {
        char stem[64], p[PATH_MAX + 64];
        snprintf(stem, sizeof stem, "pairs_%s", tracks[t]);
        if (!world_file(d, stem, p, sizeof p)) {
            fprintf(stderr, "rlhf demo: %s: no %s.{jsonl,csv,json}\n", d->world, stem);
            return CLI_EXIT_FAIL;
        }
        /* held-out pairs: the world's own eval file, else 15% of the pairs */
        char pe[PATH_MAX + 64];
        snprintf(stem, sizeof stem, "pairs_%s_eval", tracks[t]);
        const bool has_eval = world_file(d, stem, pe, sizeof pe);
        dargv a = {.n = 0};
        da(&a, "import"), da(&a, "%s", d->run), da(&a, "%s", p), da(&a, "--track=%s", tracks[t]);
        if (!has_eval) da(&a, "--split-eval=0.15");
        rc = demo_exec(d, cmd_import, &a);
        if (rc == 0 && has_eval) {
            da(&a, "import"), da(&a, "%s", d->run), da(&a, "%s", pe), da(&a, "--track=%s", tracks[t]);
            da(&a, "--split-eval=1");
            rc = demo_exec(d, cmd_import, &a);
        }
    }
    return rc;
}

static int st_sft(demo *d) {
    const demo_cfg *c = d->c;
    dargv a = {.n = 0};
    da(&a, "sft"), da(&a, "%s", d->run), da(&a, "--init"), da(&a, "%s", d->base_model);
    da(&a, "--tokenizer"), da(&a, "%s", d->tok), da(&a, "--source=sft.json");
    da(&a, "--epochs=%d", (int)c->sft_epochs), da(&a, "--batch=%d", (int)c->sft_batch);
    da(&a, "--lr=%g", (double)c->sft_lr), da(&a, "--seed=%" PRIu64, d->seed);
    da_common(&a, d);
    int rc = demo_exec(d, cmd_sft, &a);
    if (rc) return rc;
    rlhf_status st = newest_ckpt(d, "sft", NULL, d->ckpt, sizeof d->ckpt);
    return st == RLHF_OK ? 0 : cli_fail("demo", st);
}

static int st_rm(demo *d) {
    const demo_cfg *c = d->c;
    static const char *const tracks[2] = {"helpfulness", "safety"};
    int rc = 0;
    for (int t = 0; t < 2 && rc == 0; t++) {
        dargv a = {.n = 0};
        da(&a, "rm train"), da(&a, "%s", d->run), da(&a, "--track=%s", tracks[t]);
        da(&a, "--init"), da(&a, "%s", d->base_model), da(&a, "--tokenizer"), da(&a, "%s", d->tok);
        da(&a, "--name=rm-%s", tracks[t]), da(&a, "--epochs=%d", (int)c->rm_epochs);
        da(&a, "--batch=%d", (int)c->rm_batch), da(&a, "--micro-batch=8");
        da(&a, "--lr=%g", (double)c->rm_lr), da(&a, "--seq=%d", (int)(c->seq < 256 ? c->seq : 256));
        if (c->rm_max_pairs > 0) da(&a, "--max-pairs=%d", (int)c->rm_max_pairs);
        da(&a, "--seed=%" PRIu64, d->seed);
        da_common(&a, d);
        rc = demo_exec(d, cmd_rm_train, &a);
    }
    for (int t = 0; t < 2 && rc == 0; t++) {
        dargv a = {.n = 0};
        da(&a, "rm eval"), da(&a, "%s", d->run), da(&a, "--model");
        da(&a, "%s", t == 0 ? d->rm_help : d->rm_safe), da(&a, "--tokenizer"), da(&a, "%s", d->tok);
        da(&a, "--split=eval"), da(&a, "--track=%s", tracks[t]);
        da(&a, "--seq=%d", (int)(c->seq < 256 ? c->seq : 256));
        da_common(&a, d);
        rc = demo_exec(d, cmd_rm_eval, &a);
    }
    return rc;
}

static int st_rs(demo *d) {
    const demo_cfg *c = d->c;
    int rc = 0;
    for (int r = 1; r <= c->rs_rounds && rc == 0; r++) {
        dargv a = {.n = 0};
        /* no --policy: round 1 samples from the SFT policy, round r from round r-1's (the run's
         * newest policy); a started round keeps the checkpoints it recorded */
        da(&a, "rs round"), da(&a, "%s", d->run), da(&a, "--round=%d", r);
        da(&a, "--tokenizer"), da(&a, "%s", d->tok);
        da(&a, "--rm-helpfulness"), da(&a, "%s", d->rm_help);
        da(&a, "--rm-safety"), da(&a, "%s", d->rm_safe);
        da(&a, "--k=%d", (int)c->rs_k), da(&a, "--temperature=%g", (double)c->rs_temperature);
        da(&a, "--max-new=%d", (int)c->max_new), da(&a, "--lr=%g", (double)c->rs_lr);
        da(&a, "--epochs=%d", (int)c->rs_epochs), da(&a, "--seed=%" PRIu64, d->seed + (uint64_t)r);
        da_common(&a, d);
        printf("      round %d/%d\n", r, (int)c->rs_rounds);
        fflush(stdout);
        rc = demo_exec(d, cmd_rs_round, &a);
    }
    if (rc) return rc;
    rlhf_status st = newest_ckpt(d, "policy", "/policy-", d->ckpt, sizeof d->ckpt);
    return st == RLHF_OK ? 0 : cli_fail("demo", st);
}

static int st_ppo(demo *d) {
    const demo_cfg *c = d->c;
    char pol[PATH_MAX + 64];
    rlhf_status st = stage_ckpt(d, ST_RS, pol, sizeof pol);
    if (st != RLHF_OK) return cli_fail("demo", st);
    dargv a = {.n = 0};
    da(&a, "ppo"), da(&a, "%s", d->run), da(&a, "--policy"), da(&a, "%s", pol);
    da(&a, "--rm-helpfulness"), da(&a, "%s", d->rm_help);
    da(&a, "--rm-safety"), da(&a, "%s", d->rm_safe), da(&a, "--tokenizer"), da(&a, "%s", d->tok);
    da(&a, "--iterations=%d", (int)c->ppo_iters), da(&a, "--batch=%d", (int)c->ppo_batch);
    da(&a, "--minibatch=%d", (int)c->ppo_minibatch), da(&a, "--lr=%g", (double)c->ppo_lr);
    da(&a, "--beta=%g", (double)c->ppo_beta), da(&a, "--max-new=%d", (int)c->max_new);
    da(&a, "--seed=%" PRIu64, d->seed);
    da_common(&a, d);
    int rc = demo_exec(d, cmd_ppo, &a);
    if (rc) return rc;
    st = newest_ckpt(d, "policy", "/iter-", d->ckpt, sizeof d->ckpt);
    return st == RLHF_OK ? 0 : cli_fail("demo", st);
}

/* The final policy: PPO's last iteration. */
static rlhf_status final_policy(const demo *d, char *path, size_t cap) {
    return stage_ckpt(d, ST_PPO, path, cap);
}

static void da_gatt_lists(dargv *a, const demo *d) {
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/gatt", d->world);
    if (file_exists(p)) da(a, "--lists"), da(a, "%s", p);
}

static int st_gatt(demo *d) {
    const demo_cfg *c = d->c;
    char fin[PATH_MAX + 64], src[PATH_MAX + 64], gck[PATH_MAX + 64];
    rlhf_status st = final_policy(d, fin, sizeof fin);
    if (st != RLHF_OK) return cli_fail("demo", st);
    snprintf(src, sizeof src, "%s/gatt_dialogues.json", d->world);
    dargv a = {.n = 0};
    da(&a, "gatt generate"), da(&a, "%s", d->run), da(&a, "--dialogues"), da(&a, "%s", src);
    da(&a, "--policy"), da(&a, "%s", fin), da(&a, "--tokenizer"), da(&a, "%s", d->tok);
    da(&a, "--n=%d", (int)c->gatt_n), da(&a, "--samples-per-turn=%d", (int)c->gatt_k);
    da(&a, "--max-new=%d", (int)c->gatt_max_new), da(&a, "--seed=%" PRIu64, d->seed);
    if (c->gatt_require_pass) da(&a, "--require-pass"); /* learn only answers that obey */
    da_gatt_lists(&a, d);
    da_common(&a, d);
    int rc = demo_exec(d, cmd_gatt_generate, &a);
    if (rc) return rc;
    da(&a, "sft"), da(&a, "%s", d->run), da(&a, "--init"), da(&a, "%s", fin);
    da(&a, "--tokenizer"), da(&a, "%s", d->tok), da(&a, "--source=gatt");
    da(&a, "--epochs=%d", (int)c->gatt_epochs), da(&a, "--batch=%d", (int)c->sft_batch);
    da(&a, "--lr=%g", (double)c->gatt_lr), da(&a, "--seed=%" PRIu64, d->seed);
    da_common(&a, d);
    if ((rc = demo_exec(d, cmd_sft, &a))) return rc;
    /* the newest sft checkpoint is this one (policy 0 is older) */
    if ((st = newest_ckpt(d, "sft", NULL, gck, sizeof gck)) != RLHF_OK) return cli_fail("demo", st);
    snprintf(d->ckpt, sizeof d->ckpt, "%s", gck);
    for (int w = 0; w < 2 && rc == 0; w++) {
        da(&a, "gatt eval"), da(&a, "%s", d->run), da(&a, "--policy"), da(&a, "%s", w ? gck : fin);
        da(&a, "--tokenizer"), da(&a, "%s", d->tok), da(&a, "--turns=%d", (int)c->gatt_turns);
        da(&a, "--n=%d", (int)c->gatt_eval_n), da(&a, "--max-new=%d", (int)c->gatt_max_new);
        da(&a, "--seed=%" PRIu64, d->seed);
        da_gatt_lists(&a, d);
        da_common(&a, d);
        rc = demo_exec(d, cmd_gatt_eval, &a);
    }
    return rc;
}

static int st_eval(demo *d) {
    const demo_cfg *c = d->c;
    char pol[3][PATH_MAX + 64];
    rlhf_status st = stage_ckpt(d, ST_SFT, pol[0], sizeof pol[0]);
    if (st == RLHF_OK) st = stage_ckpt(d, ST_RS, pol[1], sizeof pol[1]);
    if (st == RLHF_OK) st = final_policy(d, pol[2], sizeof pol[2]);
    if (st != RLHF_OK) return cli_fail("demo", st);
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        dargv a = {.n = 0};
        da(&a, "sample"), da(&a, "%s", d->run), da(&a, "--policy"), da(&a, "%s", pol[i]);
        da(&a, "--tokenizer"), da(&a, "%s", d->tok), da(&a, "--round=%d", ROUND_EVAL_SFT + i);
        da(&a, "--prompts=eval"), da(&a, "--k=%d", (int)c->eval_k);
        da(&a, "--temperature=%g", (double)c->eval_temperature);
        da(&a, "--max-new=%d", (int)c->max_new);
        da(&a, "--seed=%" PRIu64, d->seed + 1000); /* the same seeds for the three policies */
        da_common(&a, d);
        rc = demo_exec(d, cmd_sample, &a);
    }
    return rc;
}

static int st_judge(demo *d) {
    dargv a = {.n = 0};
    da(&a, "world judge"), da(&a, "%s", d->run), da(&a, "--world"), da(&a, "%s", d->world);
    int rc = demo_exec(d, cmd_world_judge, &a);
    for (int b = ROUND_EVAL_RS; b <= ROUND_EVAL_PPO && rc == 0; b++) {
        da(&a, "world compare"), da(&a, "%s", d->run), da(&a, "--world"), da(&a, "%s", d->world);
        da(&a, "--a=%d", ROUND_EVAL_SFT), da(&a, "--b=%d", b);
        rc = demo_exec(d, cmd_world_compare, &a);
    }
    return rc;
}

static int st_report(demo *d) {
    dargv a = {.n = 0};
    da(&a, "report"), da(&a, "%s", d->run);
    return demo_exec(d, cmd_report, &a);
}

static int (*const stage_fn[N_STAGES])(demo *) = {
    st_world, st_tokenizer, st_pretrain, st_import, st_sft,   st_rm,
    st_rs,    st_ppo,       st_gatt,     st_eval,   st_judge, st_report};

/* One line saying what the stage does, with the sizes. */
static void stage_about(const demo *d, int k, char *buf, size_t cap) {
    const demo_cfg *c = d->c;
    switch (k) {
    case ST_WORLD:
        if (d->world_arg) snprintf(buf, cap, "using the world in %s", d->world);
        else snprintf(buf, cap, "building the synthetic world (size %s, seed %" PRIu64 ")",
                      c->world_size, d->seed);
        break;
    case ST_TOKENIZER:
        snprintf(buf, cap, "BPE tokenizer, %d pieces, on the world's corpus", (int)c->vocab);
        break;
    case ST_PRETRAIN:
        snprintf(buf, cap, "base model: dim %d, %d layers, %d heads, seq %d; %d steps of %dx%d tokens",
                 (int)c->dim, (int)c->layers, (int)c->heads, (int)c->seq, (int)c->pt_steps,
                 (int)c->pt_batch, (int)c->seq);
        break;
    case ST_IMPORT: snprintf(buf, cap, "prompts, SFT demonstrations and preference pairs"); break;
    case ST_SFT:
        snprintf(buf, cap, "supervised fine-tuning: policy 0 (%d epochs, lr %g)", (int)c->sft_epochs,
                 (double)c->sft_lr);
        break;
    case ST_RM:
        snprintf(buf, cap, "helpfulness and safety reward models (%d epochs, lr %g) + held-out eval",
                 (int)c->rm_epochs, (double)c->rm_lr);
        break;
    case ST_RS:
        snprintf(buf, cap, "rejection sampling: %d rounds, K = %d", (int)c->rs_rounds, (int)c->rs_k);
        break;
    case ST_PPO:
        snprintf(buf, cap, "PPO from the last RS policy: %d iterations of %d, beta %g, lr %g",
                 (int)c->ppo_iters, (int)c->ppo_batch, (double)c->ppo_beta, (double)c->ppo_lr);
        break;
    case ST_GATT:
        snprintf(buf, cap, "Ghost Attention: %d dialogues, SFT, recall over %d turns with/without",
                 (int)c->gatt_n, (int)c->gatt_turns);
        break;
    case ST_EVAL:
        snprintf(buf, cap, "eval prompts sampled from SFT, RS, PPO (rounds %d-%d, K = %d)",
                 ROUND_EVAL_SFT, ROUND_EVAL_PPO, (int)c->eval_k);
        break;
    case ST_JUDGE: snprintf(buf, cap, "gold judges; win rates of RS and PPO over SFT"); break;
    case ST_REPORT: snprintf(buf, cap, "HTML report"); break;
    default: buf[0] = '\0';
    }
}

/* ---- the summary --------------------------------------------------------------------------------- */

/* Rows of a read-only query collected as text (at most 64 rows of 8 columns). */
typedef struct qrows {
    int32_t n, cols;
    char text[64][8][160];
    double num[64][8];
} qrows;

static rlhf_status qrows_row(void *ctx, const rlhf_store_row *r) {
    qrows *q = ctx;
    if (q->n >= 64) return RLHF_OK;
    q->cols = r->n < 8 ? r->n : 8;
    for (int32_t i = 0; i < q->cols; i++) {
        snprintf(q->text[q->n][i], sizeof q->text[0][0], "%s", r->text[i] ? r->text[i] : "");
        q->num[q->n][i] = r->num[i];
    }
    q->n++;
    return RLHF_OK;
}

/* Runs sql with up to two text parameters into q (q->n = 0 on an SQL error: a table or stage an
 * older or partial run lacks). */
static void query(rlhf_store *s, const char *sql, const char *p1, const char *p2, qrows *q) {
    const char *params[2] = {p1, p2};
    q->n = 0;
    if (rlhf_store_query_each(s, sql, params, (p1 != NULL) + (p2 != NULL), qrows_row, q) != RLHF_OK) {
        rlhf_error_clear();
        q->n = 0;
    }
}

/* RM accuracy per preference strength (the rm-eval stages `rm eval` stored), Table 8's layout. */
static void summary_rm(rlhf_store *s, qrows *q) {
    static const char *const tracks[2] = {"helpfulness", "safety"};
    static const char *const strengths[] = {"significantly", "better", "slightly",
                                            "negligibly_unsure", "all"};
    printf("  reward-model accuracy on held-out pairs by preference strength (n pairs):\n");
    printf("    %-12s", "");
    for (size_t i = 0; i < sizeof strengths / sizeof *strengths; i++)
        printf(" %16s", i == 3 ? "negligibly/unsure" : strengths[i]);
    printf("\n");
    for (int t = 0; t < 2; t++) {
        char like[64];
        snprintf(like, sizeof like, "%% track=%s %%", tracks[t]);
        query(s,
              "SELECT substr(m.name, 18), m.value, (SELECT n.value FROM metrics n WHERE "
              "n.stage_id = m.stage_id AND n.name = 'rm-eval/n/' || substr(m.name, 18)) FROM "
              "metrics m WHERE m.name LIKE 'rm-eval/accuracy/%' AND m.stage_id = (SELECT max(id) "
              "FROM stages WHERE kind = 'rm-eval' AND status = 'done' AND key LIKE ?1)",
              like, NULL, q);
        printf("    %-12s", tracks[t]);
        if (q->n == 0) {
            printf(" not run\n");
            continue;
        }
        for (size_t i = 0; i < sizeof strengths / sizeof *strengths; i++) {
            int32_t r = 0;
            while (r < q->n && strcmp(q->text[r][0], strengths[i]) != 0) r++;
            char cell[64] = "-";
            if (r < q->n) snprintf(cell, sizeof cell, "%.3f (%.0f)", q->num[r][1], q->num[r][2]);
            printf(" %16s", cell);
        }
        printf("\n");
    }
}

/* Recall at turns >= 6 of the gatt-eval stage of checkpoint path: hits / probes over those turns.
 * false when there is no such stage. */
static bool gatt_recall_late(rlhf_store *s, const char *path, qrows *q, double *recall, int64_t *n) {
    query(s,
          "SELECT r.value, c.value FROM metrics r JOIN metrics c ON c.stage_id = r.stage_id AND "
          "c.step = r.step AND c.name = 'gatt/n/all' WHERE r.name = 'gatt/recall/all' AND r.step "
          ">= 6 AND r.stage_id = (SELECT max(st.id) FROM stages st JOIN checkpoints k ON k.id = "
          "json_extract(st.params, '$.policy') WHERE st.kind = 'gatt-eval' AND k.path = ?1)",
          path, NULL, q);
    double hits = 0, total = 0;
    for (int32_t i = 0; i < q->n; i++) {
        hits += q->num[i][0] * q->num[i][1];
        total += q->num[i][1];
    }
    if (total <= 0) return false;
    *recall = hits / total;
    *n = (int64_t)total;
    return true;
}

static void summary(const demo *d) {
    printf("\nsummary (%s demo, %s)\n", d->c->name, d->run);
    rlhf_store *s = NULL;
    qrows *q = malloc(sizeof *q);
    if (!q || rlhf_store_open(&s, d->run, false) != RLHF_OK) {
        printf("  (cannot read the run: %s)\n", q ? rlhf_last_error() : "out of memory");
        free(q);
        return;
    }
    summary_rm(s, q);
    /* gold win rates and safety (world compare of each eval round against SFT's) */
    printf("  gold judges on the eval prompts, against the SFT policy (world compare):\n");
    static const char *const pname[2] = {"RS ", "PPO"};
    for (int b = ROUND_EVAL_RS; b <= ROUND_EVAL_PPO; b++) {
        char key[64];
        snprintf(key, sizeof key, "a=%d b=%d %%", ROUND_EVAL_SFT, b);
        query(s,
              "SELECT substr(m.name, 15), m.value FROM metrics m WHERE m.name LIKE "
              "'world/compare/%' AND m.stage_id = (SELECT max(id) FROM stages WHERE kind = "
              "'world-compare' AND status = 'done' AND key LIKE ?1)",
              key, NULL, q);
        double v[11];
        static const char *const want[11] = {"win_rate", "win_rate_lo", "win_rate_hi", "wins",
                                             "losses", "ties", "helpful_a", "helpful_b",
                                             "violations_a", "violations_b", "n"};
        int found = 0;
        for (int w = 0; w < 11; w++) {
            v[w] = NAN;
            for (int32_t r = 0; r < q->n; r++)
                if (strcmp(q->text[r][0], want[w]) == 0) v[w] = q->num[r][1], found++;
        }
        if (found == 0) {
            printf("    %s vs SFT: not run\n", pname[b - ROUND_EVAL_RS]);
            continue;
        }
        printf("    %s vs SFT: win rate %.3f [%.3f, %.3f] (%.0f wins, %.0f losses, %.0f ties of "
               "%.0f); gold helpfulness %.3f -> %.3f; safety violations %.3f -> %.3f\n",
               pname[b - ROUND_EVAL_RS], v[0], v[1], v[2], v[3], v[4], v[5], v[10], v[6], v[7],
               v[8], v[9]);
    }
    /* KL of the final policy: the last iteration of the newest ppo stage */
    query(s,
          "SELECT m.step, m.value FROM metrics m WHERE m.name = 'ppo/kl_ref' AND m.stage_id = "
          "(SELECT max(id) FROM stages WHERE kind = 'ppo' AND status = 'done') ORDER BY m.step "
          "DESC LIMIT 1",
          NULL, NULL, q);
    if (q->n == 1)
        printf("  KL of the final (PPO) policy to its reference: %.3f nats per response "
               "(iteration %.0f)\n", q->num[0][1], q->num[0][0]);
    else
        printf("  PPO: not run\n");
    char fin[PATH_MAX + 64], gck[PATH_MAX + 64];
    double r0 = 0, r1 = 0;
    int64_t n0 = 0, n1 = 0;
    if (stage_ckpt(d, ST_PPO, fin, sizeof fin) == RLHF_OK &&
        stage_ckpt(d, ST_GATT, gck, sizeof gck) == RLHF_OK && gatt_recall_late(s, fin, q, &r0, &n0) &&
        gatt_recall_late(s, gck, q, &r1, &n1))
        printf("  GAtt recall at turns >= 6: without %.1f%% (%" PRId64 " probes), with %.1f%% (%" PRId64
               " probes)\n", 100 * r0, n0, 100 * r1, n1);
    else
        printf("  GAtt recall at turns >= 6: not measured (gatt not run, or no dialogue reached "
               "turn 6 within the context)\n");
    rlhf_error_clear();
    rlhf_store_close(s);
    free(q);
    char rep[PATH_MAX + 64];
    snprintf(rep, sizeof rep, "%s/report/index.html", d->run);
    printf("  report: %s\n", file_exists(rep) ? rep : "not written");
}

/* ---- the command --------------------------------------------------------------------------------- */

static int stage_index(const char *name) {
    for (int i = 0; i < N_STAGES; i++)
        if (strcmp(name, stage_name[i]) == 0) return i;
    return -1;
}

int cmd_demo(int argc, char **argv) {
    const char *out = "rlhf-demo", *from = NULL, *until = NULL, *world = NULL;
    bool quick = false;
    uint64_t seed = 1;
    demo *d = calloc(1, sizeof *d);
    if (!d) return cli_fail("demo", RLHF_ERR(RLHF_ERR_NOMEM, "out of memory"));
    d->com = (cli_common)CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"out", 'o', CLI_STR, &out, "DIR", "rlhf-demo", "where everything goes (made if absent)",
         false},
        {"quick", 0, CLI_FLAG, &quick, NULL, NULL,
         "tiny sizes: about 2 minutes on 2 cores (the numbers mean little)", false},
        {"seed", 's', CLI_U64, &seed, "S", "1", "seed of the world and of every stage", false},
        {"from", 0, CLI_STR, &from, "STAGE", NULL,
         "start at STAGE: finished stages from there on are run again (they find their work "
         "done and check it)", false},
        {"until", 0, CLI_STR, &until, "STAGE", NULL, "stop after STAGE", false},
        {"world", 0, CLI_STR, &world, "DIR", NULL,
         "use this world directory (the files `rlhf world build` writes) instead of building one",
         false},
        CLI_COMMON_OPTS(&d->com),
        {0},
    };
    cli_spec spec = {
        "demo", "[--out DIR] [--quick] [--threads N] [--seed S] [--from STAGE] [--until STAGE]",
        "The whole Llama 2-Chat recipe on a synthetic world with gold judges, in one command:\n"
        "  world -> tokenizer -> pretrain -> import -> sft -> rm -> rs -> ppo -> gatt -> eval\n"
        "  -> judge -> report\n"
        "(the stage names, for --from and --until). Each stage calls the program's own commands;\n"
        "their output goes to DIR/run/logs/NN-STAGE.log (all of it on the terminal with -v).\n"
        "Interrupted or failed, the same command continues where it stopped. At the end: the\n"
        "goal numbers (reward-model accuracy by preference strength, gold win rate of the final\n"
        "policy over SFT, gold safety violations, KL, Ghost Attention recall) and the path of the\n"
        "HTML report. Default sizes take about 15 minutes on 2 cores, --quick about 2.",
        opts, 0, 0};
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, NULL, &n_pos);
    if (rc >= 0) {
        free(d);
        return rc;
    }
    int k_from = 0, k_until = N_STAGES - 1;
    if (from && (k_from = stage_index(from)) < 0) {
        free(d);
        return cli_usage_error(&spec, "--from: unknown stage '%s'", from);
    }
    if (until && (k_until = stage_index(until)) < 0) {
        free(d);
        return cli_usage_error(&spec, "--until: unknown stage '%s'", until);
    }
    if (k_until < k_from) {
        free(d);
        return cli_usage_error(&spec, "--until %s comes before --from %s", until, from);
    }
    d->c = quick ? &preset_quick : &preset_full;
    d->seed = seed;
    d->verbose = d->com.verbose;
    rlhf_status st = cli_setup(&d->com, NULL);
    char wabs[PATH_MAX];
    if (st == RLHF_OK) st = rlhf_mkdirs(out);
    if (st == RLHF_OK && !realpath(out, d->out))
        st = RLHF_ERR(RLHF_ERR_IO, "%s: %s", out, strerror(errno));
    if (st == RLHF_OK && world) {
        if (!realpath(world, wabs)) st = RLHF_ERR(RLHF_ERR_IO, "--world %s: %s", world, strerror(errno));
        else d->world_arg = wabs;
    }
    if (st != RLHF_OK) {
        free(d);
        return cli_fail("demo", st);
    }
    demo_paths(d);
    snprintf(d->rerun, sizeof d->rerun, "rlhf demo --out %s%s%s%s", d->out, quick ? " --quick" : "",
             d->world_arg ? " --world " : "", d->world_arg ? d->world_arg : "");
    if (seed != 1) {
        size_t l = strlen(d->rerun);
        snprintf(d->rerun + l, sizeof d->rerun - l, " --seed %" PRIu64, seed);
    }
    if (d->com.device) {
        size_t l = strlen(d->rerun);
        snprintf(d->rerun + l, sizeof d->rerun - l, " --device %s%s%s", d->com.device,
                 d->com.precision ? " --precision " : "", d->com.precision ? d->com.precision : "");
    }
    d->t0 = cli_now();
    /* the run store first: it records the demo's stages */
    {
        char *init_argv[4] = {"init", d->run, "-q", NULL};
        if ((rc = cmd_init(3, init_argv))) goto end;
    }
    if ((st = config_check(d)) != RLHF_OK) {
        rc = cli_fail("demo", st);
        goto end;
    }
    printf("rlhf demo (%s): %s\n", d->c->name, d->out);
    for (int k = k_from; k <= k_until; k++) {
        bool done = false;
        int64_t id = 0;
        if ((st = stage_enter(d, k, &done, &id)) != RLHF_OK) {
            rc = cli_fail("demo", st);
            goto end;
        }
        char about[PATH_MAX + 256], el[32], eta[32];
        stage_about(d, k, about, sizeof about);
        fmt_time(el, sizeof el, cli_now() - d->t0);
        if (done && !(from && k >= k_from)) {
            printf("[%d/%d] %-9s done earlier (%s)\n", k + 1, N_STAGES, stage_name[k], about);
            continue;
        }
        fmt_time(eta, sizeof eta, demo_eta(d, k, k_until));
        printf("[%d/%d] %-9s %s ... (elapsed %s, ETA %s)\n", k + 1, N_STAGES, stage_name[k], about,
               el, eta);
        fflush(stdout);
        d->stage = k;
        d->ckpt[0] = '\0';
        double t = cli_now();
        rc = stage_fn[k](d);
        if (rc) goto end;
        double sec = cli_now() - t;
        d->done_est += d->c->est[k];
        d->done_real += sec;
        if ((st = stage_leave(d, id, sec)) != RLHF_OK) {
            rc = cli_fail("demo", st);
            goto end;
        }
        fmt_time(el, sizeof el, sec);
        printf("        done in %s\n", el);
        fflush(stdout);
    }
    {
        char el[32];
        fmt_time(el, sizeof el, cli_now() - d->t0);
        printf("rlhf demo: %s in %s\n", k_until == N_STAGES - 1 ? "all stages done" : "stopped after --until",
               el);
    }
    summary(d);
    rc = CLI_EXIT_OK;
end:
    fflush(stdout);
    free(d);
    return rc;
}
