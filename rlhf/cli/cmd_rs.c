/* cmd_rs.c: rejection sampling commands: `rlhf rs select` (best combined reward per prompt over
 * the pooled rounds), `rlhf rs report` (best-of-k curves, Llama 2's Figure 7), `rlhf rs sweep`
 * (the same curves at several temperatures, sampled and scored in memory: Figure 8) and
 * `rlhf rs round` (sample -> score -> select -> SFT).
 *
 * The combined reward: the CLI may include both reward/ and policy/, so it reads the scores, applies
 * Llama 2's gate with reward_gate (R_s when the prompt is unsafe or sigmoid(R_s) < 0.15, else R_h;
 * one score alone when only one reward model scored a sample) and hands the values to rs_select as
 * data. The logit/whitening of reward_combine is monotone over one call, so it cannot change
 * which sample of a prompt is best: selection uses the gated raw scores. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "policy.h"
#include "reward.h"
#include "store.h"
#include "svg.h"

/* ---- scored samples ---------------------------------------------------------------------------- */

typedef struct scored {
    int64_t sample_id, prompt_id;
    int32_t round;
    float help, safe; /* NaN when that reward model has not scored it */
    int64_t help_sid, safe_sid; /* the score rows used (latest wins) */
} scored;

typedef struct scored_list {
    scored *v;
    int64_t n, cap;
} scored_list;

static rlhf_status score_row(void *ctx, const rlhf_store_score *x) {
    scored_list *l = ctx;
    bool help = strcmp(x->role, "reward-helpfulness") == 0;
    bool safe = strcmp(x->role, "reward-safety") == 0;
    if (!help && !safe) return RLHF_OK;
    /* rows come grouped by sample (rlhf_store_scores_each orders by sample id) */
    scored *e = l->n > 0 && l->v[l->n - 1].sample_id == x->sample_id ? &l->v[l->n - 1] : NULL;
    if (!e) {
        if (l->n == l->cap) {
            int64_t cap = l->cap ? 2 * l->cap : 1024;
            scored *v = realloc(l->v, (size_t)cap * sizeof *v);
            if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            l->v = v;
            l->cap = cap;
        }
        e = &l->v[l->n++];
        *e = (scored){x->sample_id, x->prompt_id, x->round, NAN, NAN, 0, 0};
    }
    if (help && x->id > e->help_sid) e->help = (float)x->value, e->help_sid = x->id;
    if (safe && x->id > e->safe_sid) e->safe = (float)x->value, e->safe_sid = x->id;
    return RLHF_OK;
}

static int cmp_sample(const void *a, const void *b) {
    const scored *x = a, *y = b;
    return x->sample_id < y->sample_id ? -1 : x->sample_id > y->sample_id;
}

/* Sorts by sample and merges rows of one sample (scores_each already groups them; kept so that
 * the result does not depend on that order). */
static void scored_merge(scored_list *l) {
    qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_sample);
    int64_t k = 0;
    for (int64_t i = 0; i < l->n; i++) {
        if (k > 0 && l->v[k - 1].sample_id == l->v[i].sample_id) {
            scored *a = &l->v[k - 1], *b = &l->v[i];
            if (b->help_sid > a->help_sid) a->help = b->help, a->help_sid = b->help_sid;
            if (b->safe_sid > a->safe_sid) a->safe = b->safe, a->safe_sid = b->safe_sid;
        } else {
            l->v[k++] = l->v[i];
        }
    }
    l->n = k;
}

/* The combined reward of a scored sample (see the file comment). */
static double combined(const scored *x, bool unsafe_prompt, float threshold) {
    if (isnan(x->help)) return x->safe;
    if (isnan(x->safe)) return x->help;
    return reward_gate(x->help, x->safe, unsafe_prompt, threshold, NULL);
}

/* All scored samples of the run as candidates with their combined rewards. */
static rlhf_status load_candidates(rlhf_store *s, const cli_prompts *prompts, float threshold,
                                   rs_candidate **out, int64_t *n) {
    scored_list l = {0};
    *out = NULL;
    *n = 0;
    rlhf_status st = rlhf_store_scores_each(s, score_row, &l);
    if (st != RLHF_OK) {
        free(l.v);
        return st;
    }
    scored_merge(&l);
    rs_candidate *c = malloc((l.n ? (size_t)l.n : 1) * sizeof *c);
    if (!c) {
        free(l.v);
        return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < l.n; i++) {
        const cli_prompt *p = cli_prompts_find(prompts, l.v[i].prompt_id);
        c[i] = (rs_candidate){l.v[i].prompt_id, l.v[i].sample_id, l.v[i].round,
                              combined(&l.v[i], p && p->unsafe, threshold)};
    }
    free(l.v);
    *out = c;
    *n = l.n;
    return RLHF_OK;
}

/* ---- rs select ----------------------------------------------------------------------------------- */

int cmd_rs_select(int argc, char **argv) {
    int32_t round = -1;
    const char *pool = "all";
    float threshold = 0.15f;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"round", 'r', CLI_NONNEG_INT, &round, "R", NULL, "the round to select for; required",
         false},
        {"pool", 0, CLI_STR, &pool, "all|last", "all",
         "all: samples of every round <= R (Llama 2 from RLHF V3 on); last: round R only", false},
        {"safety-threshold", 0, CLI_NONNEG_FLOAT, &threshold, "F", "0.15",
         "the gate: R_s when sigmoid(R_s) < F or the prompt is unsafe, else R_h", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {"rs select", "RUN --round R [--pool all|last]",
                     "Picks, for every prompt, the scored sample with the highest combined reward\n"
                     "(Llama 2's gated R_c) and writes it as the round's selection with provenance.",
                     opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (round < 0) return cli_usage_error(&spec, "--round is required");
    bool last = strcmp(pool, "last") == 0;
    if (!last && strcmp(pool, "all") != 0) return cli_usage_error(&spec, "--pool must be all or last");
    rlhf_status st = cli_setup(&com, NULL);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);

    rlhf_store *s = NULL;
    cli_prompts prompts = {0};
    rs_candidate *cand = NULL, *best = NULL;
    int64_t n = 0, nb = 0, stage = 0;
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    RLHF_TRY_GOTO(st, cli_prompts_load(s, "all", &prompts), fail);
    RLHF_TRY_GOTO(st, load_candidates(s, &prompts, threshold, &cand, &n), fail);
    RLHF_TRY_GOTO(st, rs_select(cand, n, round, last, &best, &nb), fail);
    char key[128], params[256];
    snprintf(key, sizeof key, "round=%d pool=%s", (int)round, pool);
    snprintf(params, sizeof params, "{\"round\": %d, \"pool\": \"%s\", \"safety_threshold\": %.9g}",
             (int)round, pool, (double)threshold);
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "select", key, &sg, &found), fail);
    if (found) stage = sg.id;
    else RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "select", key, params, nb, &stage), fail);
    int64_t earlier = 0;
    double sum = 0;
    RLHF_TRY_GOTO(st, rlhf_store_begin(s), fail);
    for (int64_t i = 0; i < nb && st == RLHF_OK; i++) {
        st = rlhf_store_selection_set(s, round, best[i].prompt_id, best[i].sample_id, stage);
        earlier += best[i].round < round;
        sum += best[i].reward;
    }
    char result[256];
    snprintf(result, sizeof result,
             "{\"selected\": %" PRId64 ", \"from_earlier_rounds\": %" PRId64
             ", \"mean_reward\": %.9g}", nb, earlier, nb ? sum / (double)nb : 0.0);
    if (st == RLHF_OK) st = rlhf_store_stage_finish(s, stage, nb, result);
    if (st == RLHF_OK) st = rlhf_store_commit(s);
    if (st != RLHF_OK) {
        rlhf_store_rollback(s);
        goto fail;
    }
    if (!com.quiet)
        printf("rs select: round %d, pool %s: %" PRId64 " prompts selected from %" PRId64
               " scored samples (%" PRId64 " from earlier rounds), mean combined reward %.4f\n",
               (int)round, pool, nb, n, earlier, nb ? sum / (double)nb : 0.0);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    free(cand);
    free(best);
    cli_prompts_free(&prompts);
    rlhf_store_close(s);
    return rc;
}

/* ---- rs report ----------------------------------------------------------------------------------- */

static int cmp_cand(const void *a, const void *b) {
    const rs_candidate *x = a, *y = b;
    if (x->prompt_id != y->prompt_id) return x->prompt_id < y->prompt_id ? -1 : 1;
    return x->sample_id < y->sample_id ? -1 : x->sample_id > y->sample_id;
}

int cmd_rs_report(int argc, char **argv) {
    int32_t round = -1;
    float threshold = 0.15f;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"round", 'r', CLI_NONNEG_INT, &round, "R", NULL, "the round; required", false},
        {"safety-threshold", 0, CLI_NONNEG_FLOAT, &threshold, "F", "0.15", "the gate", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {"rs report", "RUN --round R",
                     "Best-of-k curves of a round (Llama 2's Figure 7): for k = 1..K, the mean over\n"
                     "prompts of the expected maximum and median combined reward of k of the\n"
                     "prompt's K scored samples. Written as metrics of an rs-report stage and as\n"
                     "RUN/report/best_of_k_round<R>.svg.",
                     opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (round < 0) return cli_usage_error(&spec, "--round is required");
    rlhf_status st = cli_setup(&com, NULL);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);
    rlhf_store *s = NULL;
    cli_prompts prompts = {0};
    rs_candidate *cand = NULL;
    double *r = NULL, *mx = NULL, *md = NULL, *xs = NULL;
    int64_t n = 0, stage = 0;
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    RLHF_TRY_GOTO(st, cli_prompts_load(s, "all", &prompts), fail);
    RLHF_TRY_GOTO(st, load_candidates(s, &prompts, threshold, &cand, &n), fail);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (cand[i].round == round && !isnan(cand[i].reward)) cand[m++] = cand[i];
    qsort(cand, (size_t)m, sizeof *cand, cmp_cand);
    /* K = the largest number of scored samples a prompt has; prompts with fewer are left out */
    int32_t K = 0;
    for (int64_t i = 0, j; i < m; i = j) {
        for (j = i; j < m && cand[j].prompt_id == cand[i].prompt_id; j++) {}
        if (j - i > K) K = (int32_t)(j - i);
    }
    if (K == 0) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: round %d has no scored samples", pos[0], (int)round);
        goto fail;
    }
    r = malloc((size_t)m * sizeof *r);
    mx = malloc((size_t)K * sizeof *mx);
    md = malloc((size_t)K * sizeof *md);
    xs = malloc((size_t)K * sizeof *xs);
    if (!r || !mx || !md || !xs) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int64_t P = 0;
    for (int64_t i = 0, j; i < m; i = j) {
        for (j = i; j < m && cand[j].prompt_id == cand[i].prompt_id; j++) {}
        if (j - i != K) continue;
        for (int32_t k = 0; k < K; k++) r[P * K + k] = cand[i + k].reward;
        P++;
    }
    RLHF_TRY_GOTO(st, rs_best_of_k(r, P, K, mx, md), fail);
    char key[64];
    snprintf(key, sizeof key, "round=%d", (int)round);
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "rs-report", key, &sg, &found), fail);
    if (found) stage = sg.id;
    else RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "rs-report", key, NULL, K, &stage), fail);
    RLHF_TRY_GOTO(st, rlhf_store_begin(s), fail);
    for (int32_t k = 0; k < K && st == RLHF_OK; k++) {
        st = rlhf_store_metric_set(s, stage, k + 1, "rs/best_of_k_max", mx[k]);
        if (st == RLHF_OK) st = rlhf_store_metric_set(s, stage, k + 1, "rs/best_of_k_median", md[k]);
    }
    if (st == RLHF_OK) st = rlhf_store_stage_finish(s, stage, K, NULL);
    if (st == RLHF_OK) st = rlhf_store_commit(s);
    if (st != RLHF_OK) {
        rlhf_store_rollback(s);
        goto fail;
    }
    char dir[4200], svg[4400], title[128];
    snprintf(dir, sizeof dir, "%s/report", pos[0]);
    RLHF_TRY_GOTO(st, rlhf_mkdirs(dir), fail);
    snprintf(svg, sizeof svg, "%s/best_of_k_round%d.svg", dir, (int)round);
    snprintf(title, sizeof title, "Round %d: reward of best-of-k (%" PRId64 " prompts)", (int)round, P);
    for (int32_t k = 0; k < K; k++) xs[k] = k + 1;
    const char *names[2] = {"max", "median"};
    const double *series[2] = {mx, md};
    RLHF_TRY_GOTO(st, svg_line_file(svg, title, "k (samples)", "combined reward", xs, K, names,
                                  series, 2), fail);
    if (!com.quiet) {
        printf("rs report: round %d, %" PRId64 " prompts with %d samples each\n  k    max      median\n",
               (int)round, P, (int)K);
        for (int32_t k = 0; k < K; k++) printf("%3d  %8.4f  %8.4f\n", (int)k + 1, mx[k], md[k]);
        printf("plot: %s\n", svg);
    }
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    free(r);
    free(mx);
    free(md);
    free(xs);
    free(cand);
    cli_prompts_free(&prompts);
    rlhf_store_close(s);
    return rc;
}

/* ---- rs round ------------------------------------------------------------------------------------- */

/* ---- rs round ------------------------------------------------------------------------------------ */

/* The newest checkpoint of a role (largest id); *path NULL when there is none. */
typedef struct newest_ckpt {
    const char *role;
    int64_t id;
    char *path;
} newest_ckpt;

static rlhf_status newest_row(void *ctx, const rlhf_store_checkpoint *x) {
    newest_ckpt *n = ctx;
    if (strcmp(x->role, n->role) != 0 || x->id < n->id) return RLHF_OK;
    char *p = strdup(x->path);
    if (!p) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    free(n->path);
    n->path = p;
    n->id = x->id;
    return RLHF_OK;
}

static rlhf_status newest_checkpoint(rlhf_store *s, const char *role, char **path) {
    newest_ckpt n = {role, 0, NULL};
    rlhf_status st = rlhf_store_checkpoints_each(s, newest_row, &n);
    if (st != RLHF_OK) {
        free(n.path);
        return st;
    }
    *path = n.path;
    return RLHF_OK;
}

/* The params of the newest rs-round stage of this round, when one exists. */
typedef struct round_find {
    char key[32];
    int64_t id;
    char *policy, *init;
    bool done;
} round_find;

static rlhf_status round_row(void *ctx, const rlhf_store_stage_info *x) {
    round_find *f = ctx;
    if (strcmp(x->kind, "rs-round") != 0 || !x->key || strcmp(x->key, f->key) != 0 ||
        strcmp(x->status, "failed") == 0 || x->id < f->id)
        return RLHF_OK;
    json_error_t err;
    json_t *j = json_loads(x->params_json ? x->params_json : "{}", 0, &err);
    const char *pol = json_string_value(json_object_get(j, "policy"));
    const char *ini = json_string_value(json_object_get(j, "init"));
    if (!pol || !ini) {
        json_decref(j);
        return RLHF_ERR(RLHF_ERR_FORMAT, "stage %" PRId64 " (rs-round %s): params lack policy/init",
                        x->id, f->key);
    }
    free(f->policy);
    free(f->init);
    f->policy = strdup(pol);
    f->init = strdup(ini);
    json_decref(j);
    if (!f->policy || !f->init) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    f->id = x->id;
    f->done = strcmp(x->status, "done") == 0;
    return RLHF_OK;
}

/* argv builder for the sub-commands */
typedef struct argv_b {
    char *v[64];
    char buf[64][48];
    int n, nb;
} argv_b;

static void arg(argv_b *a, const char *s) {
    if (a->n < 63) a->v[a->n++] = (char *)s, a->v[a->n] = NULL;
}
static void argf(argv_b *a, const char *fmt, double x) {
    if (a->nb >= 64) return;
    snprintf(a->buf[a->nb], sizeof a->buf[0], fmt, x);
    arg(a, a->buf[a->nb++]);
}
static void argu(argv_b *a, const char *name, uint64_t x) {
    if (a->nb >= 64) return;
    snprintf(a->buf[a->nb], sizeof a->buf[0], "--%s=%" PRIu64, name, x);
    arg(a, a->buf[a->nb++]);
}
static void arg_common(argv_b *a, const cli_common *c) {
    argf(a, "--threads=%.0f", c->threads);
    arg(a, "--device");
    arg(a, c->device);
    if (c->quiet) arg(a, "-q");
    if (c->verbose) arg(a, "-v");
    if (c->progress) arg(a, "--progress");
}

int cmd_rs_round(int argc, char **argv) {
    int32_t round = -1, k = 4, max_new = 128, epochs = 2, batch = 8;
    const char *tok = NULL, *rm_help = NULL, *rm_safe = NULL, *policy = NULL, *init = NULL,
               *prompts = "train", *pool = "all";
    float temperature = 1.0f, top_p = 1.0f, threshold = 0.15f, lr = 2e-5f;
    uint64_t seed = 1;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"round", 'r', CLI_NONNEG_INT, &round, "R", NULL, "the round; required", false},
        {"tokenizer", 'z', CLI_STR, &tok, "T", NULL, "tokenizer (.model or .bin); required", false},
        {"rm-helpfulness", 0, CLI_STR, &rm_help, "RM", NULL,
         "helpfulness reward model (HF dir from `rlhf rm train`); required", false},
        {"rm-safety", 0, CLI_STR, &rm_safe, "RM", NULL,
         "safety reward model (HF dir from `rlhf rm train`); required", false},
        {"policy", 'm', CLI_STR, &policy, "CKPT", "the run's newest policy, else its newest sft",
         "checkpoint that samples this round", false},
        {"init", 0, CLI_STR, &init, "CKPT", "the --policy checkpoint",
         "checkpoint the fine-tuning on the selections starts from", false},
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "sampling and selection", false},
        {"k", 'k', CLI_POS_INT, &k, "K", "4", "samples per prompt", false},
        {"temperature", 't', CLI_NONNEG_FLOAT, &temperature, "F", "1.0", "0 = greedy", false},
        {"top-p", 'p', CLI_NONNEG_FLOAT, &top_p, "P", "1.0", "nucleus sampling (1 = off)", false},
        {"max-new", 'n', CLI_POS_INT, &max_new, "N", "128", "new tokens per sample at most", false},
        {"prompts", 0, CLI_STR, &prompts, "SPLIT", "train", "train, eval or all", false},
        {"seed", 's', CLI_U64, &seed, "S", "1", "sampling seed (per sample: derived from S, prompt, k)",
         false},
        {"pool", 0, CLI_STR, &pool, "all|last", "all", "select among every round <= R, or R only",
         false},
        {"safety-threshold", 0, CLI_NONNEG_FLOAT, &threshold, "F", "0.15", "the gate", false},
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "fine-tuning on the selections", false},
        {"lr", 0, CLI_NONNEG_FLOAT, &lr, "F", "2e-5", "peak learning rate (cosine)", false},
        {"epochs", 'e', CLI_POS_INT, &epochs, "N", "2", "passes over the selections", false},
        {"batch", 'b', CLI_POS_INT, &batch, "N", "8", "packed rows per optimizer step", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "rs round", "RUN --round R --tokenizer T --rm-helpfulness RM --rm-safety RM [options]",
        "One rejection-sampling round, each step resumable, in order:\n"
        "  rlhf sample (K per prompt from --policy) -> rlhf score (both reward models) ->\n"
        "  rlhf rs select (--pool all: best gated reward over every round so far) ->\n"
        "  rlhf sft --data selections (from --init) -> rlhf rs report (best-of-k curves).\n"
        "The new checkpoint is registered with role policy: the next round samples from it.\n"
        "Fine-tuning starts from the model that sampled, as the paper has it (\"we then fine-tune\n"
        "our model on the new set of ranked samples\"); --init CKPT (e.g. the SFT checkpoint)\n"
        "restarts from elsewhere, since the pooled selections carry every round's best.\n"
        "The checkpoints a round uses are recorded in the run (stage rs-round): killed at any\n"
        "point, the same command finishes the round with the same checkpoints, and every\n"
        "sample, score and selection exists once.",
        opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (round < 0) return cli_usage_error(&spec, "--round is required");
    if (!tok) return cli_usage_error(&spec, "--tokenizer is required");
    if (!rm_help || !rm_safe)
        return cli_usage_error(&spec, "--rm-helpfulness and --rm-safety are required");
    if (strcmp(pool, "all") != 0 && strcmp(pool, "last") != 0)
        return cli_usage_error(&spec, "--pool: expected all or last, got '%s'", pool);
    const char *run = pos[0];
    rlhf_store *s = NULL;
    round_find f = {.id = 0};
    snprintf(f.key, sizeof f.key, "%d", (int)round);
    char *pol = NULL, *ini = NULL;
    int64_t stage = 0;
    rlhf_status st;
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, run, false), fail);
    RLHF_TRY_GOTO(st, rlhf_store_stages_each(s, round_row, &f), fail);
    if (f.id > 0) { /* a started round keeps its checkpoints */
        if ((policy && strcmp(policy, f.policy) != 0) || (init && strcmp(init, f.init) != 0)) {
            st = RLHF_ERR(RLHF_ERR_ARG,
                          "%s: round %d was started with --policy %s --init %s; pass the same "
                          "(or none)", run, (int)round, f.policy, f.init);
            goto fail;
        }
        pol = f.policy, ini = f.init;
        f.policy = f.init = NULL;
        stage = f.id;
        if (!com.quiet)
            printf("rs round %d: %s (stage %" PRId64 "); policy %s, init %s\n", (int)round,
                   f.done ? "already done, checking each step" : "resuming", stage, pol, ini);
    } else {
        if (policy) pol = strdup(policy);
        else {
            RLHF_TRY_GOTO(st, newest_checkpoint(s, "policy", &pol), fail);
            if (!pol) RLHF_TRY_GOTO(st, newest_checkpoint(s, "sft", &pol), fail);
        }
        if (init) ini = strdup(init);
        else if (pol) ini = strdup(pol);
        if (!pol) {
            st = RLHF_ERR(RLHF_ERR_ARG, "%s: no policy or sft checkpoint in the run; pass --policy",
                          run);
            goto fail;
        }
        if (!ini) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto fail;
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:f, s:f, s:s}", "policy", pol, "init", ini,
                              "rm_helpfulness", rm_help, "rm_safety", rm_safe, "k", (int)k,
                              "temperature", (double)temperature, "top_p", (double)top_p, "pool",
                              pool);
        char *params = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!params) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto fail;
        }
        st = rlhf_store_stage_begin(s, "rs-round", f.key, params, 5, &stage);
        free(params);
        if (st != RLHF_OK) goto fail;
        if (!com.quiet)
            printf("rs round %d: policy %s samples, fine-tuning starts from %s\n", (int)round, pol,
                   ini);
    }
    rlhf_store_close(s);
    s = NULL;

    static const char *const step_name[5] = {"sample", "score", "rs select", "sft", "rs report"};
    for (int step = 0; step < 5; step++) {
        argv_b a = {.n = 0};
        int r = 0;
        if (!com.quiet) printf("== rs round %d, step %d/5: rlhf %s\n", (int)round, step + 1,
                               step_name[step]);
        fflush(stdout);
        switch (step) {
        case 0:
            arg(&a, "sample"), arg(&a, run), arg(&a, "--policy"), arg(&a, pol);
            arg(&a, "--tokenizer"), arg(&a, tok);
            argf(&a, "--round=%.0f", round), argf(&a, "--k=%.0f", k);
            argf(&a, "--temperature=%.9g", temperature), argf(&a, "--top-p=%.9g", top_p);
            argf(&a, "--max-new=%.0f", max_new), arg(&a, "--prompts"), arg(&a, prompts);
            argu(&a, "seed", seed);
            arg_common(&a, &com);
            r = cmd_sample(a.n, a.v);
            break;
        case 1: /* one model per call: each gets its track as the role it is registered with */
            arg(&a, "score"), arg(&a, run), arg(&a, "--model"), arg(&a, rm_help);
            arg(&a, "--tokenizer"), arg(&a, tok), arg(&a, "--role"), arg(&a, "helpfulness");
            arg_common(&a, &com);
            r = cmd_score(a.n, a.v);
            if (r == 0) {
                a.n = a.nb = 0;
                arg(&a, "score"), arg(&a, run), arg(&a, "--model"), arg(&a, rm_safe);
                arg(&a, "--tokenizer"), arg(&a, tok), arg(&a, "--role"), arg(&a, "safety");
                arg_common(&a, &com);
                r = cmd_score(a.n, a.v);
            }
            break;
        case 2:
            arg(&a, "rs select"), arg(&a, run), argf(&a, "--round=%.0f", round);
            arg(&a, "--pool"), arg(&a, pool), argf(&a, "--safety-threshold=%.9g", threshold);
            arg_common(&a, &com);
            r = cmd_rs_select(a.n, a.v);
            break;
        case 3:
            arg(&a, "sft"), arg(&a, run), arg(&a, "--init"), arg(&a, ini);
            arg(&a, "--tokenizer"), arg(&a, tok), arg(&a, "--data"), arg(&a, "selections");
            argf(&a, "--round=%.0f", round), argf(&a, "--lr=%.9g", lr);
            argf(&a, "--epochs=%.0f", epochs), argf(&a, "--batch=%.0f", batch);
            argu(&a, "seed", seed);
            arg_common(&a, &com);
            r = cmd_sft(a.n, a.v);
            break;
        case 4:
            arg(&a, "rs report"), arg(&a, run), argf(&a, "--round=%.0f", round);
            argf(&a, "--safety-threshold=%.9g", threshold);
            arg_common(&a, &com);
            r = cmd_rs_report(a.n, a.v);
            break;
        }
        if (r != 0) {
            fprintf(stderr, "rlhf rs round: step %d (%s) failed; run the same command to go on\n",
                    step + 1, step_name[step]);
            free(pol);
            free(ini);
            return r;
        }
        RLHF_TRY_GOTO(st, rlhf_store_open(&s, run, false), fail);
        RLHF_TRY_GOTO(st, rlhf_store_stage_progress(s, stage, step + 1), fail);
        if (step == 4) RLHF_TRY_GOTO(st, rlhf_store_stage_finish(s, stage, 5, NULL), fail);
        rlhf_store_close(s);
        s = NULL;
    }
    if (!com.quiet) printf("rs round %d: done\n", (int)round);
    free(pol);
    free(ini);
    return CLI_EXIT_OK;
fail:
    rlhf_store_close(s);
    free(pol);
    free(ini);
    free(f.policy);
    free(f.init);
    return cli_fail("rs round", st);
}

/* ---- rs sweep ----------------------------------------------------------------------------------- */

/* `rlhf rs sweep`: Llama 2's Figure 8, the best-of-k curves of one policy at several temperatures,
 * to re-tune T as rounds progress. Everything stays in memory: the samples table is the
 * rejection-sampling pool (UNIQUE per prompt, round, checkpoint, idx, with no temperature), so the
 * sweep writes no samples and no scores, only metrics of an `rs-sweep` stage:
 *   rs/sweep/T<t>/best_of_k_max, rs/sweep/T<t>/best_of_k_median  at step k = 1..K
 * with <t> the temperature printed with %g (0.8 -> T0.8, 1.0 -> T1). Sample j of prompt p is
 * drawn with rs_sample_seed(seed, p, j) at every temperature, as `rlhf sample` draws it (the same
 * random numbers at each temperature); each is decoded, re-encoded and scored exactly as
 * `rlhf score` scores a stored sample, and gated as `rs select` / `rs report` gate: a sweep at the
 * temperature of a round reproduces that round's `rs report` curves. A rerun recomputes the whole
 * sweep (same stage, same values). */

#define SWEEP_MAX_T 8 /* the plot's colours */

/* Parses "0.6,0.8,1.0" into t (at most SWEEP_MAX_T finite values >= 0, distinct); false with a
 * message in err otherwise. */
static bool parse_temperatures(const char *s, float *t, int32_t *n, char *err, size_t cap) {
    *n = 0;
    const char *p = s;
    for (;;) {
        char *end = NULL;
        while (*p == ' ') p++;
        float v = strtof(p, &end);
        if (end == p || !isfinite(v) || v < 0) {
            snprintf(err, cap, "--temperatures: expected a comma-separated list of numbers >= 0, "
                     "got '%s'", s);
            return false;
        }
        while (*end == ' ') end++;
        if (*n == SWEEP_MAX_T) {
            snprintf(err, cap, "--temperatures: at most %d values", SWEEP_MAX_T);
            return false;
        }
        for (int32_t i = 0; i < *n; i++)
            if (t[i] == v) {
                snprintf(err, cap, "--temperatures: %g appears twice", (double)v);
                return false;
            }
        t[(*n)++] = v;
        if (*end == '\0') return true;
        if (*end != ',') {
            snprintf(err, cap, "--temperatures: expected a comma-separated list of numbers >= 0, "
                     "got '%s'", s);
            return false;
        }
        p = end + 1;
    }
}

/* The text of a sampled sequence as `rlhf sample` stores it: without the EOS, invalid UTF-8
 * replaced by U+FFFD. *text malloc'ed. */
static rlhf_status sample_text(const rlhf_tokenizer *tok, const rlhf_sample_seq *x, char **text) {
    int32_t nt = x->n_out;
    if (x->finish == RLHF_FINISH_EOS && nt > 0) nt--;
    char *t = NULL;
    RLHF_TRY(rlhf_tokenizer_decode(tok, x->out, nt, &t));
    if (!ds_utf8_valid(t, strlen(t), NULL)) {
        char *u = ds_utf8_sanitize(t, strlen(t));
        free(t);
        if (!u) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        t = u;
    }
    *text = t;
    return RLHF_OK;
}

/* Scores n texts (answers to prompts ps[i]) with a reward model of T positions into out. */
static rlhf_status score_texts(rlhf_model *rm, int32_t T, int32_t batch, const rlhf_tokenizer *tok,
                               const cli_prompt *const *ps, char *const *texts, int32_t n,
                               int32_t **ids, int32_t *lens, float *out) {
    rlhf_status st = RLHF_OK;
    for (int32_t i = 0; i < n && st == RLHF_OK; i++) {
        ds_turn u = {DS_ROLE_USER, ps[i]->text};
        ds_dialogue d = {.system = ps[i]->system, .turns = &u, .n_turns = 1};
        st = reward_encode(tok, &d, texts[i], T, &ids[i], &lens[i], NULL);
    }
    if (st == RLHF_OK)
        st = reward_model_score(rm, (const int32_t *const *)ids, lens, n, batch, out);
    for (int32_t i = 0; i < n; i++) {
        free(ids[i]);
        ids[i] = NULL;
    }
    return st;
}

int cmd_rs_sweep(int argc, char **argv) {
    const char *policy = NULL, *tok_path = NULL, *rm_help = NULL, *rm_safe = NULL,
               *temps_s = NULL, *which = "train";
    int32_t k = 8, max_new = 128, max_prompts = 0, batch = 8, slots = 64;
    float top_p = 1.0f, threshold = 0.15f;
    uint64_t seed = 1;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"policy", 'm', CLI_STR, &policy, "CKPT", NULL,
         "policy checkpoint (llama2.c .bin or HF dir); registered in the run if new; required",
         false},
        {"tokenizer", 'z', CLI_STR, &tok_path, "T", NULL, "tokenizer (.model or .bin); required",
         false},
        {"rm-helpfulness", 0, CLI_STR, &rm_help, "RM", NULL, "helpfulness reward model; required",
         false},
        {"rm-safety", 0, CLI_STR, &rm_safe, "RM", NULL, "safety reward model; required", false},
        {"temperatures", 't', CLI_STR, &temps_s, "T1,T2,...", NULL,
         "temperatures to sweep (>= 0, distinct, at most 8); required", false},
        {"k", 'k', CLI_POS_INT, &k, "K", "8", "samples per prompt at each temperature", false},
        {"top-p", 'p', CLI_FLOAT, &top_p, "P", "1.0 = off", "nucleus sampling in (0, 1]", false},
        {"prompts", 0, CLI_STR, &which, "SPLIT", "train", "train, eval or all", false},
        {"max-prompts", 0, CLI_NONNEG_INT, &max_prompts, "N", "0 = all",
         "the first N prompts of the split (id order)", false},
        {"max-new", 'n', CLI_POS_INT, &max_new, "N", "128", "new tokens per sample at most", false},
        {"seed", 's', CLI_U64, &seed, "S", "1",
         "sample k of prompt p uses rs_sample_seed(S, p, k), as `rlhf sample`", false},
        {"safety-threshold", 0, CLI_NONNEG_FLOAT, &threshold, "F", "0.15", "the gate", false},
        {"batch", 'b', CLI_POS_INT, &batch, "N", "8", "prompts sampled and scored together", false},
        {"slots", 0, CLI_POS_INT, &slots, "N", "64", "sequences decoded together at most", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "rs sweep",
        "RUN --policy CKPT --tokenizer T --rm-helpfulness RM --rm-safety RM --temperatures LIST "
        "[options]",
        "Best-of-k curves at several temperatures (Llama 2's Figure 8), to re-tune T as rounds\n"
        "progress: at each temperature, K samples per prompt are drawn (seeds as `rlhf sample`),\n"
        "scored by both reward models and gated (as `rs select`), all in memory: nothing is added\n"
        "to the samples or scores tables. For k = 1..K the mean over prompts of the expected max\n"
        "and median combined reward of k of the K samples are stored as metrics\n"
        "rs/sweep/T<t>/best_of_k_max and .../best_of_k_median (step k) of an rs-sweep stage,\n"
        "printed (k rows, temperature columns) and plotted to\n"
        "RUN/report/rs_sweep_ckpt<ID>_stage<S>.svg. A rerun recomputes the same values.",
        opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!policy) return cli_usage_error(&spec, "--policy is required");
    if (!tok_path) return cli_usage_error(&spec, "--tokenizer is required");
    if (!rm_help || !rm_safe)
        return cli_usage_error(&spec, "--rm-helpfulness and --rm-safety are required");
    if (!temps_s) return cli_usage_error(&spec, "--temperatures is required");
    float temps[SWEEP_MAX_T];
    int32_t nt = 0;
    char err[256];
    if (!parse_temperatures(temps_s, temps, &nt, err, sizeof err))
        return cli_usage_error(&spec, "%s", err);
    if (!(top_p > 0.0f && top_p <= 1.0f))
        return cli_usage_error(&spec, "--top-p must be in (0, 1]");
    if (strcmp(which, "train") && strcmp(which, "eval") && strcmp(which, "all"))
        return cli_usage_error(&spec, "--prompts: train, eval or all, got '%s'", which);
    const rlhf_backend *be = NULL;
    rlhf_status st = cli_setup(&com, &be);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);

    rlhf_store *s = NULL;
    rlhf_tokenizer *tok = NULL;
    rlhf_model *m = NULL, *rmh = NULL, *rms = NULL;
    rlhf_sampler *smp = NULL;
    cli_prompts prompts = {0};
    ds_chat_tokens *rend = NULL;
    const cli_prompt **ps = NULL;
    rlhf_sample_seq *seqs = NULL;
    int32_t *outbuf = NULL, **ids = NULL, *lens = NULL;
    char **texts = NULL, *key = NULL, *params = NULL, *tlist = NULL;
    float *sh = NULL, *ss = NULL;
    double *r = NULL, *mx = NULL, *md = NULL, *xs = NULL;
    int64_t stage = 0, ckpt_id = 0;
    const int32_t nseq = batch * k, RB = nseq < 32 ? nseq : 32;
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, policy, "policy", &ckpt_id), fail);
    RLHF_TRY_GOTO(st, cli_prompts_load(s, which, &prompts), fail);
    const int64_t n_use = max_prompts > 0 && max_prompts < prompts.n ? max_prompts : prompts.n;

    /* the stage: every option that shapes the numbers (the temperature list normalized) */
    tlist = malloc(16 * SWEEP_MAX_T);
    if (!tlist) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    tlist[0] = '\0';
    for (int32_t t = 0; t < nt; t++)
        snprintf(tlist + strlen(tlist), 16, "%s%g", t ? "," : "", (double)temps[t]);
    {
        json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:f, s:i, s:s, s:i, s:I, s:f}",
                              "policy", (json_int_t)ckpt_id, "policy_path", policy,
                              "rm_helpfulness", rm_help, "rm_safety", rm_safe, "temperatures",
                              tlist, "k", (int)k, "top_p", (double)top_p, "max_new", (int)max_new,
                              "prompts", which, "max_prompts", (int)max_prompts, "seed",
                              (json_int_t)seed, "safety_threshold", (double)threshold);
        params = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(j);
        size_t cap = strlen(rm_help) + strlen(rm_safe) + 512;
        key = malloc(cap);
        if (!params || !key) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto fail;
        }
        snprintf(key, cap,
                 "policy=%" PRId64 " rm_helpfulness=%s rm_safety=%s temperatures=%s k=%d "
                 "top_p=%.9g max_new=%d prompts=%s max_prompts=%d seed=%" PRIu64
                 " safety_threshold=%.9g",
                 ckpt_id, rm_help, rm_safe, tlist, (int)k, (double)top_p, (int)max_new, which,
                 (int)max_prompts, seed, (double)threshold);
    }
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "rs-sweep", key, &sg, &found), fail);
    if (found) stage = sg.id; /* done or not, computed again: the same values */
    else RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "rs-sweep", key, params, nt, &stage), fail);

    RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, 0), fail);
    RLHF_TRY_GOTO(st, rlhf_model_load(&m, policy, be, false, 1, 0), fail);
    const rlhf_model_config *c = rlhf_model_get_config(m);
    const int32_t V = rlhf_tokenizer_vocab_size(tok);
    RLHF_TRY_GOTO(st, cli_check_vocab(policy, c->vocab_size, tok_path, tok), fail);
    RLHF_TRY_GOTO(st, cli_rm_load(rm_help, be, RB, 0, &rmh), fail);
    RLHF_TRY_GOTO(st, cli_rm_load(rm_safe, be, RB, 0, &rms), fail);
    const rlhf_model_config *ch = rlhf_model_get_config(rmh), *cs = rlhf_model_get_config(rms);
    const int32_t Th = ch->seq_len, Ts = cs->seq_len; /* reward_encode's max_tokens, as `score` */
    if (ch->vocab_size != V || cs->vocab_size != V) {
        st = RLHF_ERR(RLHF_ERR_ARG, "the reward models' vocab differs from tokenizer %s (%d)",
                      tok_path, (int)V);
        goto fail;
    }
    RLHF_TRY_GOTO(st, rlhf_sampler_init(&smp, m, nseq < slots ? nseq : slots), fail);

    /* the prompts, rendered once; those longer than the context are skipped (as `rlhf sample`) */
    rend = calloc((size_t)(n_use ? n_use : 1), sizeof *rend);
    ps = calloc((size_t)(n_use ? n_use : 1), sizeof *ps);
    if (!rend || !ps) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for %" PRId64 " prompts", n_use);
        goto fail;
    }
    int64_t P = 0, skipped = 0;
    for (int64_t i = 0; i < n_use; i++) {
        ds_chat_free(&rend[P]); /* what a skipped prompt left */
        rlhf_status e = cli_prompt_render(tok, &prompts.v[i], c->seq_len - 1, &rend[P]);
        if (e == RLHF_ERR_ARG) {
            rlhf_error_clear();
            skipped++;
            continue;
        }
        if (e != RLHF_OK) {
            st = e;
            goto fail;
        }
        ps[P++] = &prompts.v[i];
    }
    if (P == 0) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: no %s prompts to sample from", pos[0], which);
        goto fail;
    }
    seqs = calloc((size_t)nseq, sizeof *seqs);
    outbuf = malloc((size_t)nseq * (size_t)max_new * sizeof *outbuf);
    ids = calloc((size_t)nseq, sizeof *ids);
    lens = malloc((size_t)nseq * sizeof *lens);
    texts = calloc((size_t)nseq, sizeof *texts);
    sh = malloc((size_t)nseq * sizeof *sh);
    ss = malloc((size_t)nseq * sizeof *ss);
    r = malloc((size_t)P * (size_t)k * sizeof *r);
    mx = malloc((size_t)nt * (size_t)k * sizeof *mx);
    md = malloc((size_t)nt * (size_t)k * sizeof *md);
    xs = malloc((size_t)k * sizeof *xs);
    const cli_prompt **seq_p = malloc((size_t)nseq * sizeof *seq_p);
    if (!seqs || !outbuf || !ids || !lens || !texts || !sh || !ss || !r || !mx || !md || !xs ||
        !seq_p) {
        free(seq_p);
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (!com.quiet) {
        printf("rs sweep: checkpoint %" PRId64 " (%s), %" PRId64 " %s prompts x %d samples at "
               "T = %s; top-p %.3g, max-new %d (stage %" PRId64 ")\n",
               ckpt_id, policy, P, which, (int)k, tlist, (double)top_p, (int)max_new, stage);
        fflush(stdout);
    }
    cli_progress prog;
    cli_progress_start(&prog, "rs sweep", "prompts", (int64_t)nt * P, &com);
    for (int32_t t = 0; t < nt && st == RLHF_OK; t++) {
        rlhf_sample_config sc = {temps[t], 0, top_p, max_new, rlhf_tokenizer_eos(tok)};
        for (int64_t g0 = 0; g0 < P && st == RLHF_OK; g0 += batch) {
            const int32_t np = (int32_t)(P - g0 < batch ? P - g0 : batch);
            int32_t n = 0;
            for (int32_t i = 0; i < np; i++)
                for (int32_t j = 0; j < k; j++, n++) {
                    seqs[n] = (rlhf_sample_seq){.prompt = rend[g0 + i].ids,
                                                .n_prompt = rend[g0 + i].n,
                                                .seed = rs_sample_seed(seed, ps[g0 + i]->id, j),
                                                .out = outbuf + (size_t)n * max_new};
                    seq_p[n] = ps[g0 + i];
                }
            st = rlhf_sampler_run(smp, &sc, seqs, n, NULL, NULL);
            for (int32_t i = 0; i < n && st == RLHF_OK; i++)
                st = sample_text(tok, &seqs[i], &texts[i]);
            if (st == RLHF_OK) st = score_texts(rmh, Th, RB, tok, seq_p, texts, n, ids, lens, sh);
            if (st == RLHF_OK) st = score_texts(rms, Ts, RB, tok, seq_p, texts, n, ids, lens, ss);
            for (int32_t i = 0; i < n; i++) {
                free(texts[i]);
                texts[i] = NULL;
                if (st == RLHF_OK)
                    r[g0 * k + i] = reward_gate(sh[i], ss[i], seq_p[i]->unsafe, threshold, NULL);
            }
            cli_progress_update(&prog, (int64_t)t * P + g0 + np);
        }
        if (st != RLHF_OK) break;
        double *mxt = mx + (size_t)t * k, *mdt = md + (size_t)t * k;
        st = rs_best_of_k(r, P, k, mxt, mdt);
        if (st != RLHF_OK) break;
        char nmax[64], nmed[64];
        snprintf(nmax, sizeof nmax, "rs/sweep/T%g/best_of_k_max", (double)temps[t]);
        snprintf(nmed, sizeof nmed, "rs/sweep/T%g/best_of_k_median", (double)temps[t]);
        st = rlhf_store_begin(s);
        for (int32_t j = 0; j < k && st == RLHF_OK; j++) {
            st = rlhf_store_metric_set(s, stage, j + 1, nmax, mxt[j]);
            if (st == RLHF_OK) st = rlhf_store_metric_set(s, stage, j + 1, nmed, mdt[j]);
        }
        if (st == RLHF_OK) st = rlhf_store_stage_progress(s, stage, t + 1);
        if (st == RLHF_OK) st = rlhf_store_commit(s);
        else rlhf_store_rollback(s);
    }
    cli_progress_end(&prog);
    free(seq_p);
    if (st != RLHF_OK) goto fail;

    char dir[4200], svg[4400], title[160];
    snprintf(dir, sizeof dir, "%s/report", pos[0]);
    RLHF_TRY_GOTO(st, rlhf_mkdirs(dir), fail);
    snprintf(svg, sizeof svg, "%s/rs_sweep_ckpt%" PRId64 "_stage%" PRId64 ".svg", dir, ckpt_id,
             stage);
    snprintf(title, sizeof title, "Checkpoint %" PRId64 ": max reward of best-of-k (%" PRId64
             " prompts)", ckpt_id, P);
    char names_buf[SWEEP_MAX_T][24];
    const char *names[SWEEP_MAX_T];
    const double *series[SWEEP_MAX_T];
    for (int32_t t = 0; t < nt; t++) {
        snprintf(names_buf[t], sizeof names_buf[t], "T=%g", (double)temps[t]);
        names[t] = names_buf[t];
        series[t] = mx + (size_t)t * k;
    }
    for (int32_t j = 0; j < k; j++) xs[j] = j + 1;
    RLHF_TRY_GOTO(st, svg_line_file(svg, title, "k (samples)", "combined reward (max of k)", xs, k,
                                  names, series, nt), fail);
    {
        json_t *j = json_pack("{s:I, s:I, s:s}", "prompts", (json_int_t)P, "skipped_prompts",
                              (json_int_t)skipped, "plot", svg);
        char *res = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        st = res ? rlhf_store_stage_finish(s, stage, nt, res)
                 : RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        free(res);
        if (st != RLHF_OK) goto fail;
    }
    if (!com.quiet) {
        printf("%" PRId64 " prompts (%" PRId64 " too long, skipped)\n", P, skipped);
        for (int32_t which_c = 0; which_c < 2; which_c++) {
            const double *v = which_c ? md : mx;
            printf("best-of-k %s combined reward\n    k", which_c ? "median" : "max");
            for (int32_t t = 0; t < nt; t++) printf("  %9s", names[t]);
            printf("\n");
            for (int32_t j = 0; j < k; j++) {
                printf("%5d", (int)j + 1);
                for (int32_t t = 0; t < nt; t++) printf("  %9.4f", v[(size_t)t * k + j]);
                printf("\n");
            }
        }
        printf("plot: %s\n", svg);
    }
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    if (rend)
        for (int64_t i = 0; i < n_use; i++) ds_chat_free(&rend[i]);
    free(rend);
    free(ps);
    free(seqs);
    free(outbuf);
    if (ids)
        for (int32_t i = 0; i < nseq; i++) free(ids[i]);
    free(ids);
    free(lens);
    if (texts)
        for (int32_t i = 0; i < nseq; i++) free(texts[i]);
    free(texts);
    free(sh);
    free(ss);
    free(r);
    free(mx);
    free(md);
    free(xs);
    free(key);
    free(params);
    free(tlist);
    rlhf_sampler_free(smp);
    rlhf_model_free(m);
    rlhf_model_free(rmh);
    rlhf_model_free(rms);
    rlhf_tokenizer_free(tok);
    cli_prompts_free(&prompts);
    rlhf_store_close(s);
    return rc;
}
