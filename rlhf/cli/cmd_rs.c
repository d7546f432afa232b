/* cmd_rs.c: rejection sampling commands: `rlhf rs select` (best combined reward per prompt over
 * the pooled rounds), `rlhf rs report` (best-of-k curves, Llama 2's Figure 7) and `rlhf rs round`
 * (sample -> score -> select -> SFT).
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
    RLHF_TRY_GOTO(st, cli_mkdirs(dir), fail);
    snprintf(svg, sizeof svg, "%s/best_of_k_round%d.svg", dir, (int)round);
    snprintf(title, sizeof title, "Round %d: reward of best-of-k (%" PRId64 " prompts)", (int)round, P);
    for (int32_t k = 0; k < K; k++) xs[k] = k + 1;
    const char *names[2] = {"max", "median"};
    const double *series[2] = {mx, md};
    RLHF_TRY_GOTO(st, rs_plot_svg(svg, title, "k (samples)", "combined reward", xs, K, names,
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
