/* cmd_world.c: the demo world's commands (world/world.h):
 *   rlhf world build DIR [--seed S] [--size quick|full]   write the world's files
 *   rlhf world judge RUN --world DIR [--round R] [--policy CKPT]
 *       gold-judge stored samples into the `judgments` table; mean gold helpfulness and safety
 *       violation rate per (round, policy), printed and stored as metrics (stage world-judge)
 *   rlhf world compare RUN --world DIR --a A --b B [--prompts eval|train|all]
 *       per prompt and sample index, gold helpfulness of round B's sample vs round A's: wins,
 *       losses, ties, the win rate over non-tied pairs with a Wilson 95% interval, safety
 *       violations of each (stage world-compare, metrics at step 0)
 * The judges need only DIR/world.json (seed and size): the world is rebuilt from it. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"
#include "world.h"

/* ---- build ---------------------------------------------------------------------------------- */

int cmd_world_build(int argc, char **argv) {
    uint64_t seed = 1;
    const char *size_s = "full";
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"seed", 's', CLI_U64, &seed, "S", "1", "the world's seed (facts, splits, every draw)",
         false},
        {"size", 0, CLI_STR, &size_s, "quick|full", "full",
         "full: the 15-minute demo's data; quick: a much smaller set (2-minute demo, tests)", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "world build", "DIR [--seed S] [--size quick|full]",
        "Writes the demo world into DIR: corpus.txt (pretraining text), sft.json (ShareGPT\n"
        "demonstrations of mixed quality), prompts_{train,eval}_{safe,unsafe}.json,\n"
        "pairs_{helpfulness,safety}[_eval].csv (labelled by the gold judges with noise and the\n"
        "four preference strengths), gatt/ (Ghost Attention lists), gatt_dialogues.json,\n"
        "world.json (seed and fact base, to rebuild the judges) and README.txt (the exact import\n"
        "commands). Same seed and size, same files.",
        opts, 1, 1};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    world_size size;
    if (!world_size_parse(size_s, &size))
        return cli_usage_error(&spec, "--size: expected quick or full, got '%s'", size_s);
    rlhf_status st = cli_setup(&com, NULL);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);
    double t0 = cli_now();
    world *w = NULL;
    world_counts c;
    st = world_init(&w, seed, size);
    if (st == RLHF_OK) st = world_write(w, pos[0], &c);
    if (st != RLHF_OK) {
        world_free(w);
        return cli_fail(spec.cmd, st);
    }
    int32_t nf[WORLD_N_FAMILIES] = {0}, ne[WORLD_N_FAMILIES] = {0};
    for (int32_t i = 0; i < w->n_tasks; i++) {
        nf[w->tasks[i].family]++;
        ne[w->tasks[i].family] += w->tasks[i].eval;
    }
    if (!com.quiet) {
        printf("world %s: seed %" PRIu64 ", size %s, %d prompts (", pos[0], seed,
               world_size_name(size), (int)w->n_tasks);
        for (int k = 0; k < WORLD_N_FAMILIES; k++)
            printf("%s%s %d/%d eval", k ? ", " : "", world_family_name((world_family)k), (int)nf[k],
                   (int)ne[k]);
        printf(")\n");
    }
    printf("corpus.txt: %" PRId64 " bytes, %" PRId64 " paragraphs\n", c.corpus_bytes,
           c.corpus_lines);
    printf("sft.json: %" PRId64 " demonstrations (%" PRId64 " follow-ups, %" PRId64
           " with a GAtt instruction)\n",
           c.sft, c.sft_followup, c.sft_gatt);
    printf("prompts: train %" PRId64 " safe + %" PRId64 " unsafe, eval %" PRId64 " safe + %" PRId64
           " unsafe\n",
           c.prompts_train_safe, c.prompts_train_unsafe, c.prompts_eval_safe,
           c.prompts_eval_unsafe);
    printf("pairs: helpfulness %" PRId64 " train + %" PRId64 " eval, safety %" PRId64
           " train + %" PRId64 " eval (%" PRId64 " labels flipped by noise)\n",
           c.pairs_help, c.pairs_help_eval, c.pairs_safe, c.pairs_safe_eval, c.pairs_flipped);
    printf("gatt: lists in %s/gatt, %" PRId64 " source dialogues\n", pos[0], c.gatt_dialogues);
    if (com.verbose) printf("%.2f s\n", cli_now() - t0);
    world_free(w);
    return CLI_EXIT_OK;
}

/* ---- judged samples ------------------------------------------------------------------------------ */

typedef struct judged {
    int64_t sample_id, prompt_id, checkpoint_id;
    int32_t round, idx;
    double help;
    int32_t safe;
    bool unsafe_prompt, eval, refused;
    world_family family;
} judged;

typedef struct judge_ctx {
    const world *w;
    const cli_prompts *prompts;
    bool any_round, any_policy;
    int32_t round;
    int64_t policy;
    judged *v;
    int64_t n, cap, skipped;
} judge_ctx;

static rlhf_status judge_sample(void *ctx, const rlhf_store_sample *x) {
    judge_ctx *j = ctx;
    if (!j->any_round && x->round != j->round) return RLHF_OK;
    if (!j->any_policy && x->checkpoint_id != j->policy) return RLHF_OK;
    const cli_prompt *p = cli_prompts_find(j->prompts, x->prompt_id);
    const char *u = p ? p->text : NULL;
    const world_task *t = u ? world_task_find(j->w, &u, 1) : NULL;
    if (!t) {
        j->skipped++;
        return RLHF_OK;
    }
    if (j->n == j->cap) {
        int64_t cap = j->cap ? 2 * j->cap : 1024;
        judged *v = realloc(j->v, (size_t)cap * sizeof *v);
        if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "world: out of memory");
        j->v = v;
        j->cap = cap;
    }
    const char *a = x->text ? x->text : "";
    j->v[j->n++] = (judged){x->id,
                            x->prompt_id,
                            x->checkpoint_id,
                            x->round,
                            x->idx,
                            world_task_helpful(j->w, t, a),
                            world_task_safe(j->w, t, a),
                            t->unsafe,
                            p->split == RLHF_SPLIT_EVAL,
                            world_is_refusal(a),
                            t->family};
    return RLHF_OK;
}

/* Checkpoint id of --policy: a number is an id; otherwise the registered path. */
typedef struct ckpt_find {
    const char *path;
    int64_t id;
} ckpt_find;
static rlhf_status ckpt_match(void *ctx, const rlhf_store_checkpoint *x) {
    ckpt_find *f = ctx;
    if (!strcmp(x->path, f->path)) f->id = x->id;
    return RLHF_OK;
}
static rlhf_status policy_id(rlhf_store *s, const char *policy, int64_t *id) {
    char *end = NULL;
    long long v = strtoll(policy, &end, 10);
    if (end && *end == 0 && v > 0) {
        *id = v;
        return RLHF_OK;
    }
    ckpt_find f = {policy, 0};
    RLHF_TRY(rlhf_store_checkpoints_each(s, ckpt_match, &f));
    if (f.id == 0)
        return RLHF_ERR(RLHF_ERR_ARG, "--policy %s: no such checkpoint in the run (give its id "
                        "or its path as registered; `rlhf status` lists them)", policy);
    *id = f.id;
    return RLHF_OK;
}

static int cmp_judged(const void *a, const void *b) {
    const judged *x = a, *y = b;
    if (x->round != y->round) return x->round < y->round ? -1 : 1;
    if (x->checkpoint_id != y->checkpoint_id) return x->checkpoint_id < y->checkpoint_id ? -1 : 1;
    if (x->prompt_id != y->prompt_id) return x->prompt_id < y->prompt_id ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

typedef struct judge_common {
    const char *world_dir;
    world *w;
    rlhf_store *s;
    cli_prompts prompts;
} judge_common;

/* Loads the world and opens the run; j judges against them. */
static rlhf_status judge_open(judge_common *jc, const char *run, judge_ctx *j) {
    RLHF_TRY(world_load(&jc->w, jc->world_dir));
    RLHF_TRY(rlhf_store_open(&jc->s, run, false));
    j->w = jc->w;
    j->prompts = &jc->prompts;
    return cli_prompts_load(jc->s, "all", &jc->prompts);
}
static void judge_close(judge_common *jc) {
    if (jc->s && rlhf_store_in_transaction(jc->s)) rlhf_store_rollback(jc->s);
    cli_prompts_free(&jc->prompts);
    rlhf_store_close(jc->s);
    world_free(jc->w);
}

/* The stage of kind and key: the existing one (recomputed into) or a new one. */
static rlhf_status stage_get(rlhf_store *s, const char *kind, const char *key, int64_t total,
                             int64_t *id) {
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY(rlhf_store_stage_find(s, kind, key, &sg, &found));
    if (found) {
        *id = sg.id;
        return RLHF_OK;
    }
    return rlhf_store_stage_begin(s, kind, key, NULL, total, id);
}

/* ---- judge ---------------------------------------------------------------------------------------- */

int cmd_world_judge(int argc, char **argv) {
    judge_common jc = {0};
    const char *policy = NULL;
    int32_t round = 0;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"world", 'w', CLI_STR, &jc.world_dir, "DIR", NULL,
         "the world's directory (written by `rlhf world build`; its world.json); required", false},
        {"round", 'r', CLI_NONNEG_INT, &round, "R", "all", "only the samples of round R", false},
        {"policy", 'm', CLI_STR, &policy, "CKPT", "all",
         "only the samples of this policy (checkpoint id or registered path)", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "world judge", "RUN --world DIR [--round R] [--policy CKPT]",
        "Gold-judges the run's stored samples with the demo world's judges: each sample gets a\n"
        "gold-helpfulness (0..1) and a gold-safety (1 safe, 0 violation) row in the table\n"
        "`judgments` (rewritten on a rerun). Prints, per (round, policy): samples, mean gold\n"
        "helpfulness (all prompts and safe prompts), safety-violation rate (all and unsafe\n"
        "prompts) and the refusal rate on safe prompts; stores them as metrics of a world-judge\n"
        "stage at step = round. Samples of prompts that are not the world's are skipped.",
        opts, 1, 1};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!jc.world_dir) return cli_usage_error(&spec, "--world DIR is required");
    rlhf_status st = cli_setup(&com, NULL);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);
    judge_ctx j = {0};
    RLHF_TRY_GOTO(st, judge_open(&jc, pos[0], &j), fail);
    j.any_round = !cli_find(&spec, "round")->seen;
    j.round = round;
    j.any_policy = policy == NULL;
    if (policy) RLHF_TRY_GOTO(st, policy_id(jc.s, policy, &j.policy), fail);
    RLHF_TRY_GOTO(st, rlhf_store_samples_each(jc.s, judge_sample, &j), fail);
    if (j.n == 0) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: no samples of the world's prompts to judge%s (%" PRId64
                      " of other prompts skipped)", pos[0],
                      j.any_round && j.any_policy ? "" : " with this --round/--policy", j.skipped);
        goto fail;
    }
    qsort(j.v, (size_t)j.n, sizeof *j.v, cmp_judged);
    char key[256];
    snprintf(key, sizeof key, "round=%d policy=%" PRId64 " seed=%" PRIu64 " size=%s",
             j.any_round ? -1 : (int)round, j.any_policy ? (int64_t)-1 : j.policy, jc.w->seed,
             world_size_name(jc.w->size));
    int64_t stage = 0;
    RLHF_TRY_GOTO(st, rlhf_store_begin(jc.s), fail);
    RLHF_TRY_GOTO(st, stage_get(jc.s, "world-judge", key, j.n, &stage), fail);
    for (int64_t i = 0; i < j.n; i++) {
        RLHF_TRY_GOTO(st, rlhf_store_judgment_set(jc.s, j.v[i].sample_id, "gold-helpfulness",
                                                  j.v[i].help, stage), fail);
        RLHF_TRY_GOTO(st, rlhf_store_judgment_set(jc.s, j.v[i].sample_id, "gold-safety",
                                                  j.v[i].safe, stage), fail);
    }
    printf("%-6s %-7s %7s %9s %9s %10s %10s %10s\n", "round", "policy", "samples", "help_all",
           "help_safe", "viol_all", "viol_unsafe", "refuse_safe");
    for (int64_t a = 0; a < j.n;) {
        int64_t b = a;
        while (b < j.n && j.v[b].round == j.v[a].round &&
               j.v[b].checkpoint_id == j.v[a].checkpoint_id)
            b++;
        double h = 0, hs = 0;
        int64_t ns = 0, nu = 0, viol = 0, violu = 0, refs = 0;
        for (int64_t i = a; i < b; i++) {
            h += j.v[i].help;
            viol += !j.v[i].safe;
            if (j.v[i].unsafe_prompt) nu++, violu += !j.v[i].safe;
            else ns++, hs += j.v[i].help, refs += j.v[i].refused;
        }
        int64_t n = b - a;
        double hm = h / n, hsm = ns ? hs / ns : NAN, vr = (double)viol / n,
               vur = nu ? (double)violu / nu : NAN, rr = ns ? (double)refs / ns : NAN;
        printf("%-6d %-7" PRId64 " %7" PRId64 " %9.4f %9.4f %10.4f %10.4f %10.4f\n", j.v[a].round,
               j.v[a].checkpoint_id, n, hm, hsm, vr, vur, rr);
        const int32_t r = j.v[a].round;
        char name[96];
        const struct {
            const char *n;
            double v;
        } M[] = {{"helpful_mean", hm},          {"helpful_safe_mean", hsm},
                 {"safety_violation_rate", vr}, {"unsafe_violation_rate", vur},
                 {"safe_refusal_rate", rr},     {"n", (double)n}};
        for (size_t k = 0; k < sizeof M / sizeof *M; k++) {
            if (isnan(M[k].v)) continue;
            snprintf(name, sizeof name, "world/%s/ckpt%" PRId64, M[k].n, j.v[a].checkpoint_id);
            RLHF_TRY_GOTO(st, rlhf_store_metric_set(jc.s, stage, r, name, M[k].v), fail);
        }
        a = b;
    }
    RLHF_TRY_GOTO(st, rlhf_store_stage_finish(jc.s, stage, j.n, NULL), fail);
    RLHF_TRY_GOTO(st, rlhf_store_commit(jc.s), fail);
    if (!com.quiet)
        printf("%" PRId64 " samples judged (%" PRId64 " judgments rows written), %" PRId64
               " samples of other prompts skipped\n",
               j.n, 2 * j.n, j.skipped);
    free(j.v);
    judge_close(&jc);
    return CLI_EXIT_OK;
fail:
    free(j.v);
    judge_close(&jc);
    return cli_fail(spec.cmd, st);
}

/* ---- compare ------------------------------------------------------------------------------------- */

/* Wilson score interval for k successes in n trials at 95%. */
static void wilson(int64_t k, int64_t n, double *lo, double *hi) {
    if (n == 0) {
        *lo = 0, *hi = 1;
        return;
    }
    const double z = 1.959963984540054;
    double p = (double)k / n, z2 = z * z / n;
    double c = (p + z2 / 2) / (1 + z2), h = z * sqrt(p * (1 - p) / n + z2 / (4.0 * n)) / (1 + z2);
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

int cmd_world_compare(int argc, char **argv) {
    judge_common jc = {0};
    int32_t ra = 0, rb = 0;
    const char *which = "eval";
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"world", 'w', CLI_STR, &jc.world_dir, "DIR", NULL,
         "the world's directory (its world.json); required", false},
        {"a", 0, CLI_NONNEG_INT, &ra, "ROUND_A", NULL, "round of policy A (the baseline); required",
         false},
        {"b", 0, CLI_NONNEG_INT, &rb, "ROUND_B", NULL, "round of policy B; required", false},
        {"prompts", 0, CLI_STR, &which, "SPLIT", "eval", "eval, train or all", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "world compare", "RUN --world DIR --a ROUND_A --b ROUND_B [--prompts eval]",
        "Head to head on the world's prompts: for every prompt and sample index present in both\n"
        "rounds, policy B's gold helpfulness against policy A's (a win when B's is higher). Prints\n"
        "wins, losses, ties, B's win rate over the non-tied comparisons with a Wilson 95% interval,\n"
        "per family, and the safety-violation rate of each; stores them as metrics (step 0) of a\n"
        "world-compare stage.",
        opts, 1, 1};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!jc.world_dir) return cli_usage_error(&spec, "--world DIR is required");
    if (!cli_find(&spec, "a")->seen || !cli_find(&spec, "b")->seen)
        return cli_usage_error(&spec, "--a and --b are required");
    if (strcmp(which, "eval") && strcmp(which, "train") && strcmp(which, "all"))
        return cli_usage_error(&spec, "--prompts: expected eval, train or all");
    rlhf_status st = cli_setup(&com, NULL);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);
    judge_ctx j = {0};
    RLHF_TRY_GOTO(st, judge_open(&jc, pos[0], &j), fail);
    j.any_round = j.any_policy = true;
    RLHF_TRY_GOTO(st, rlhf_store_samples_each(jc.s, judge_sample, &j), fail);
    /* keep rounds A and B on the chosen split */
    int64_t m = 0;
    for (int64_t i = 0; i < j.n; i++) {
        const judged *x = &j.v[i];
        bool split_ok = !strcmp(which, "all") || (x->eval == !strcmp(which, "eval"));
        if ((x->round == ra || x->round == rb) && split_ok) j.v[m++] = *x;
    }
    int64_t wins = 0, losses = 0, ties = 0, na = 0, nb = 0, va = 0, vb = 0;
    double ha = 0, hb = 0;
    int64_t fw[WORLD_N_FAMILIES] = {0}, fl[WORLD_N_FAMILIES] = {0}, ft[WORLD_N_FAMILIES] = {0};
    for (int64_t i = 0; i < m; i++) {
        if (j.v[i].round == ra) na++, va += !j.v[i].safe, ha += j.v[i].help;
        if (j.v[i].round == rb) nb++, vb += !j.v[i].safe, hb += j.v[i].help;
    }
    /* pair up: for each A sample, the B sample of the same prompt and idx */
    for (int64_t i = 0; i < m; i++) {
        if (j.v[i].round != ra) continue;
        const judged *b = NULL;
        for (int64_t k = 0; k < m && !b; k++) /* small sets: a linear search is fine */
            if (j.v[k].round == rb && j.v[k].prompt_id == j.v[i].prompt_id &&
                j.v[k].idx == j.v[i].idx && (ra != rb || k != i))
                b = &j.v[k];
        if (!b) continue;
        double d = b->help - j.v[i].help;
        world_family f = j.v[i].family;
        if (d > 1e-9) wins++, fw[f]++;
        else if (d < -1e-9) losses++, fl[f]++;
        else ties++, ft[f]++;
    }
    int64_t pairs = wins + losses + ties;
    if (pairs == 0) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: no (prompt, idx) with samples in both rounds %d and %d "
                      "on %s prompts of the world", pos[0], (int)ra, (int)rb, which);
        goto fail;
    }
    double lo, hi, wr = wins + losses ? (double)wins / (wins + losses) : NAN;
    wilson(wins, wins + losses, &lo, &hi);
    printf("round %d (B) vs round %d (A), %s prompts: %" PRId64 " comparisons\n", (int)rb, (int)ra,
           which, pairs);
    printf("  B wins %" PRId64 ", loses %" PRId64 ", ties %" PRId64 "; win rate %.4f over %" PRId64
           " non-tied (Wilson 95%% [%.4f, %.4f])\n",
           wins, losses, ties, wr, wins + losses, lo, hi);
    printf("  gold helpfulness: A %.4f, B %.4f; safety violations: A %.4f (%" PRId64 "/%" PRId64
           "), B %.4f (%" PRId64 "/%" PRId64 ")\n",
           na ? ha / na : NAN, nb ? hb / nb : NAN, na ? (double)va / na : NAN, va, na,
           nb ? (double)vb / nb : NAN, vb, nb);
    for (int f = 0; f < WORLD_N_FAMILIES; f++)
        if (fw[f] + fl[f] + ft[f])
            printf("  %-10s wins %" PRId64 ", losses %" PRId64 ", ties %" PRId64 "\n",
                   world_family_name((world_family)f), fw[f], fl[f], ft[f]);
    char key[256];
    snprintf(key, sizeof key, "a=%d b=%d prompts=%s seed=%" PRIu64 " size=%s", (int)ra, (int)rb,
             which, jc.w->seed, world_size_name(jc.w->size));
    int64_t stage = 0;
    RLHF_TRY_GOTO(st, rlhf_store_begin(jc.s), fail);
    RLHF_TRY_GOTO(st, stage_get(jc.s, "world-compare", key, 1, &stage), fail);
    const struct {
        const char *n;
        double v;
    } M[] = {{"wins", (double)wins},
             {"losses", (double)losses},
             {"ties", (double)ties},
             {"win_rate", wr},
             {"win_rate_lo", lo},
             {"win_rate_hi", hi},
             {"helpful_a", na ? ha / na : NAN},
             {"helpful_b", nb ? hb / nb : NAN},
             {"violations_a", na ? (double)va / na : NAN},
             {"violations_b", nb ? (double)vb / nb : NAN},
             {"n", (double)pairs}};
    char name[96];
    for (size_t k = 0; k < sizeof M / sizeof *M; k++) {
        if (isnan(M[k].v)) continue;
        snprintf(name, sizeof name, "world/compare/%s", M[k].n);
        RLHF_TRY_GOTO(st, rlhf_store_metric_set(jc.s, stage, 0, name, M[k].v), fail);
    }
    RLHF_TRY_GOTO(st, rlhf_store_stage_finish(jc.s, stage, 1, NULL), fail);
    RLHF_TRY_GOTO(st, rlhf_store_commit(jc.s), fail);
    free(j.v);
    judge_close(&jc);
    return CLI_EXIT_OK;
fail:
    free(j.v);
    judge_close(&jc);
    return cli_fail(spec.cmd, st);
}
