/* cmd_ppo.c: `rlhf ppo`, PPO under a KL penalty with Llama 2's gated reward (issue 7).
 *
 * Each iteration k: `batch` prompts of the run (a fixed shuffle of the split, taken cyclically
 * from position k*batch), one response each from the policy (seed rs_sample_seed(seed, prompt,
 * k*batch + j)), both reward models score (prompt, response) with the Llama 2-Chat template,
 * R~_c = whiten(logit(gate(R_h, R_s))) (reward_combine), then ppo_iteration: reference log-probs,
 * values, per-token KL penalty, GAE, whitened advantages, clipped mini-batch updates of policy and
 * value with AdamW. Every random choice is a function of (seed, k), so the state to resume is only
 * the two models with their Adam moments and k.
 *
 * Files under RUN/ckpt/ppo-<stage>/: policy-<k>.state and value-<k>.state (train-state files after
 * k iterations), `latest` (k, replaced atomically after both states are written; the previous
 * states are removed after it), iter-<k>/ (the policy as an HF dir, registered as role policy at
 * step k), curve.tsv and reward_kl.svg (gated reward and KL over the iterations, rewritten each
 * iteration). Metrics go to the store at step k of the `ppo` stage and the iteration's rollouts
 * (tokens, raw and gated rewards, the whitened reward used, KL, mean advantage) to `rollouts`, both
 * in one transaction written before the states, so a redone iteration overwrites the metrics with
 * the same values and re-inserts no rollout (UNIQUE (stage, iteration, idx)). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ds.h"
#include "policy.h"
#include "reward.h"
#include "store.h"
#include "svg.h"

/* ---- the reward: both reward models, gated, logit, whitened ---- */

typedef struct ppo_scorer {
    const rlhf_tokenizer *tok;
    rlhf_model *rm_h, *rm_s;
    int32_t batch, T;
    const cli_prompt *const *prompts; /* (n) the prompt of each rollout */
    /* filled by each call (n entries) */
    float *r_h, *r_s, *r_c; /* raw helpfulness and safety scores, the gated R_c */
    uint8_t *gate_safe;     /* 1 where R_c is the safety score */
    double gated_mean, help_mean, safe_mean, safety_used;
} ppo_scorer;

static rlhf_status score_model(ppo_scorer *sc, rlhf_model *m, int32_t *const *ids,
                               const int32_t *lens, int32_t n, float *out) {
    for (int32_t i0 = 0; i0 < n; i0 += sc->batch) {
        int32_t k = n - i0 < sc->batch ? n - i0 : sc->batch;
        RLHF_TRY(reward_model_score(m, (const int32_t *const *)ids + i0, lens + i0, k, sc->batch,
                                    out + i0));
    }
    return RLHF_OK;
}

static rlhf_status ppo_score(void *ctx, const rlhf_sample_seq *seqs, int32_t n, float *score) {
    ppo_scorer *sc = ctx;
    int32_t **ids = calloc((size_t)n, sizeof *ids);
    int32_t *lens = malloc((size_t)n * sizeof *lens);
    uint8_t *unsafe = malloc((size_t)n);
    rlhf_status st = RLHF_OK;
    if (!ids || !lens || !unsafe) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "ppo: out of memory scoring %d rollouts", n);
        goto done;
    }
    const int32_t eos = rlhf_tokenizer_eos(sc->tok);
    for (int32_t i = 0; i < n; i++) {
        int32_t nr = seqs[i].n_out;
        if (nr > 0 && seqs[i].out[nr - 1] == eos) nr--; /* reward_encode adds the EOS */
        char *text = NULL;
        RLHF_TRY_GOTO(st, rlhf_tokenizer_decode(sc->tok, seqs[i].out, nr, &text), done);
        const cli_prompt *p = sc->prompts[i];
        ds_turn u = {DS_ROLE_USER, p->text};
        ds_dialogue d = {.system = p->system, .turns = &u, .n_turns = 1};
        st = reward_encode(sc->tok, &d, text, sc->T, &ids[i], &lens[i], NULL);
        free(text);
        if (st != RLHF_OK) goto done;
        unsafe[i] = p->unsafe;
    }
    RLHF_TRY_GOTO(st, score_model(sc, sc->rm_h, ids, lens, n, sc->r_h), done);
    RLHF_TRY_GOTO(st, score_model(sc, sc->rm_s, ids, lens, n, sc->r_s), done);
    reward_combine_opts o = reward_combine_defaults();
    double g = 0, h = 0, s = 0, used = 0;
    for (int32_t i = 0; i < n; i++) {
        bool us = false;
        sc->r_c[i] = reward_gate(sc->r_h[i], sc->r_s[i], unsafe[i], o.safety_threshold, &us);
        sc->gate_safe[i] = us;
        g += sc->r_c[i];
        h += sc->r_h[i];
        s += sc->r_s[i];
        used += us;
    }
    sc->gated_mean = g / n;
    sc->help_mean = h / n;
    sc->safe_mean = s / n;
    sc->safety_used = used / n;
    o.whiten = n > 1;
    RLHF_TRY_GOTO(st, reward_combine(sc->r_h, sc->r_s, unsafe, n, &o, score), done);
done:
    if (ids)
        for (int32_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    free(unsafe);
    return st;
}

/* ---- models ---- */

/* Loads path as an LM (policy, reference) or, for scalar, as a scalar-head model: a reward model
 * as is, an LM converted (reward_params_from_checkpoint). T <= 0: the checkpoint's seq_len. */
static rlhf_status load_model(const char *path, const rlhf_backend *be, bool scalar,
                              bool trainable, int32_t B, int32_t T, rlhf_model_config *cfg,
                              rlhf_model **out) {
    *out = NULL;
    rlhf_model_config c;
    float *params = NULL, *rp = NULL;
    RLHF_TRY(rlhf_checkpoint_read(path, &c, &params));
    rlhf_status st = RLHF_OK;
    if (!scalar && c.head != RLHF_HEAD_LM) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s is a reward model (scalar head), not a policy", path);
        goto done;
    }
    if (scalar && c.head != RLHF_HEAD_SCALAR) {
        rlhf_model_config rc;
        RLHF_TRY_GOTO(st, reward_params_from_checkpoint(&c, params, 0.0f, 1, &rc, &rp), done);
        rlhf_free(params);
        params = rp;
        rp = NULL;
        c = rc;
    }
    c.trainable = trainable;
    if (T <= 0) T = c.seq_len;
    if (T > c.seq_len) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: seq_len %d is shorter than the policy's %d", path,
                      c.seq_len, T);
        goto done;
    }
    RLHF_TRY_GOTO(st, rlhf_model_init(out, &c, be, B, T), done);
    st = rlhf_model_set_params(*out, params);
    if (st != RLHF_OK) {
        rlhf_model_free(*out);
        *out = NULL;
    }
    if (cfg) *cfg = c;
done:
    rlhf_free(params);
    rlhf_free(rp);
    return st;
}

static bool same_shape(const rlhf_model_config *a, const rlhf_model_config *b) {
    return a->dim == b->dim && a->n_layer == b->n_layer && a->vocab_size == b->vocab_size &&
           a->n_head == b->n_head && a->n_head_kv == b->n_head_kv && a->hidden_dim == b->hidden_dim;
}

/* ---- state files ---- */

static rlhf_status read_latest(const char *dir, int64_t *k) {
    char p[4400];
    snprintf(p, sizeof p, "%.4000s/latest", dir);
    *k = 0;
    FILE *f = fopen(p, "r");
    if (!f) return RLHF_OK; /* none yet */
    long long v = -1;
    int ok = fscanf(f, "%lld", &v);
    fclose(f);
    if (ok != 1 || v < 0) return RLHF_ERR(RLHF_ERR_FORMAT, "%s: expected an iteration count", p);
    *k = v;
    return RLHF_OK;
}

static rlhf_status write_latest(const char *dir, int64_t k) {
    char p[4400], tmp[4410];
    snprintf(p, sizeof p, "%.4000s/latest", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "%" PRId64 "\n", k);
    bool bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, p) != 0) {
        remove(tmp);
        return RLHF_ERR(RLHF_ERR_IO, "%s: cannot write: %s", p, strerror(errno));
    }
    return RLHF_OK;
}

static void state_path(char *buf, size_t cap, const char *dir, const char *what, int64_t k) {
    snprintf(buf, cap, "%.4000s/%.16s-%" PRId64 ".state", dir, what, k);
}

/* The policy of iteration k as an HF dir, registered (idempotent: same weights, same sha); *id its
 * checkpoint id. */
static rlhf_status save_checkpoint(rlhf_store *s, rlhf_model *m, const char *dir, int64_t k,
                                   int64_t parent, int64_t stage, int64_t *id) {
    char out[4400];
    snprintf(out, sizeof out, "%.4000s/iter-%" PRId64, dir, k);
    rlhf_model_config oc = *rlhf_model_get_config(m);
    oc.trainable = false;
    float *p = NULL;
    RLHF_TRY(rlhf_alloc((void **)&p, (size_t)rlhf_model_num_params(m) * sizeof(float)));
    rlhf_status st = rlhf_model_get_params(m, p);
    if (st == RLHF_OK) st = rlhf_hf_write(out, &oc, p, RLHF_DTYPE_F32, 0, true);
    rlhf_free(p);
    if (st == RLHF_OK) st = rlhf_store_checkpoint_add(s, "policy", out, parent, k, stage, id);
    return st;
}

/* Writes the n rollouts of iteration it (rows of b, sampled by checkpoint ck) inside the caller's
 * transaction. */
static rlhf_status write_rollouts(rlhf_store *s, const rlhf_tokenizer *tok, int64_t stage,
                                  int64_t it, int64_t ck, float temperature,
                                  const rlhf_sample_seq *seqs, const cli_prompt *const *prompts,
                                  const ppo_scorer *sc, const ppo_batch *b) {
    rlhf_status st = RLHF_OK;
    for (int32_t i = 0; i < b->B && st == RLHF_OK; i++) {
        const rlhf_sample_seq *x = &seqs[i];
        int32_t nt = x->n_out;
        if (x->finish == RLHF_FINISH_EOS && nt > 0) nt--; /* text without the EOS */
        char *text = NULL;
        RLHF_TRY(rlhf_tokenizer_decode(tok, x->out, nt, &text));
        if (!ds_utf8_valid(text, strlen(text), NULL)) { /* a lone byte piece: U+FFFD */
            char *u = ds_utf8_sanitize(text, strlen(text));
            free(text);
            if (!u) return RLHF_ERR(RLHF_ERR_NOMEM, "ppo: out of memory");
            text = u;
        }
        double adv = 0, cnt = 0;
        for (int32_t t = 0; t < b->T; t++) {
            const size_t o = (size_t)i * b->T + t;
            adv += b->mask[o] * b->adv[o];
            cnt += b->mask[o];
        }
        rlhf_store_rollout r = {
            .stage_id = stage, .prompt_id = prompts[i]->id, .checkpoint_id = ck,
            .iteration = (int32_t)it, .idx = i, .seed = x->seed, .temperature = temperature,
            .tokens = x->out, .logprobs = x->logp, .n_tokens = x->n_out, .text = text,
            .finish = x->finish == RLHF_FINISH_EOS ? "eos" : "length",
            .gate = sc->gate_safe[i] ? "safety" : "helpfulness",
            .reward_help = sc->r_h[i], .reward_safe = sc->r_s[i], .reward_gated = sc->r_c[i],
            .reward_final = b->score[i], .kl = b->kl[i], .advantage_mean = cnt > 0 ? adv / cnt : 0};
        st = rlhf_store_rollout_add(s, &r, NULL);
        free(text);
    }
    return st;
}

/* dir/curve.tsv ("iteration reward_gated kl_ref" per line) keeps iterations < it and gets it's
 * line (rewritten whole, so a redone iteration replaces its line); then dir/reward_kl.svg is drawn
 * from it: the gated reward and the KL to the reference over iterations. */
static rlhf_status write_curve(const char *dir, int64_t it, double reward, double kl) {
    char p[4400], tmp[4410], svg[4400];
    snprintf(p, sizeof p, "%.4000s/curve.tsv", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    snprintf(svg, sizeof svg, "%.4000s/reward_kl.svg", dir);
    int64_t cap = it + 1, n = 0;
    double *x = malloc((size_t)cap * sizeof *x), *r = malloc((size_t)cap * sizeof *r);
    double *k = malloc((size_t)cap * sizeof *k);
    rlhf_status st = RLHF_OK;
    if (!x || !r || !k) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto done;
    }
    FILE *f = fopen(p, "r");
    if (f) {
        long long i;
        double a, b;
        while (n < it - 1 && fscanf(f, "%lld %lf %lf", &i, &a, &b) == 3)
            if (i < it) x[n] = (double)i, r[n] = a, k[n++] = b;
        fclose(f);
    }
    x[n] = (double)it, r[n] = reward, k[n++] = kl;
    f = fopen(tmp, "w");
    if (!f) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
        goto done;
    }
    for (int64_t i = 0; i < n; i++) fprintf(f, "%.0f %.9g %.9g\n", x[i], r[i], k[i]);
    if (fclose(f) != 0 || rename(tmp, p) != 0) {
        remove(tmp);
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot write: %s", p, strerror(errno));
        goto done;
    }
    const char *names[2] = {"reward (gated)", "KL to reference"};
    const double *ser[2] = {r, k};
    st = svg_line_file(svg, "PPO: reward and KL", "iteration", "value", x, (int32_t)n, names, ser, 2);
done:
    free(x);
    free(r);
    free(k);
    return st;
}

/* ---- the command ---- */

int cmd_ppo(int argc, char **argv) {
    const char *policy_path = NULL, *ref_path = NULL, *rmh_path = NULL, *rms_path = NULL;
    const char *value_path = NULL, *tok_path = NULL, *split = "train", *kl_name = "k1";
    int32_t iterations = 0, micro = 0, max_new = 128, slots = 64, score_batch = 8;
    int32_t stop_after = 0;
    float temperature = 1.0f;
    uint64_t seed = 1;
    ppo_config pc = ppo_config_default();
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"policy", 'm', CLI_STR, &policy_path, "CKPT", NULL, "policy to start from; required",
         false},
        {"reference", 0, CLI_STR, &ref_path, "CKPT", "--policy", "frozen reference of the KL term",
         false},
        {"rm-helpfulness", 0, CLI_STR, &rmh_path, "CKPT", NULL, "helpfulness reward model; required",
         false},
        {"rm-safety", 0, CLI_STR, &rms_path, "CKPT", NULL, "safety reward model; required", false},
        {"value-init", 0, CLI_STR, &value_path, "CKPT", "--rm-helpfulness",
         "value model initialization (an LM gets a new scalar head)", false},
        {"tokenizer", 'z', CLI_STR, &tok_path, "T", NULL, "tokenizer (.model or .bin); required",
         false},
        {"iterations", 'n', CLI_POS_INT, &iterations, "N", NULL, "PPO iterations; required", false},
        {"split", 0, CLI_STR, &split, "SPLIT", "train", "prompts of split train, eval or all", false},
        {"batch", 'b', CLI_POS_INT, &pc.batch, "N", "512", "prompts (rollouts) per iteration", false},
        {"minibatch", 0, CLI_POS_INT, &pc.minibatch, "N", "64", "rollouts per gradient step", false},
        {"micro", 0, CLI_NONNEG_INT, &micro, "N", "0 = minibatch", "rows per forward", false},
        {"epochs", 0, CLI_POS_INT, &pc.epochs, "N", "1", "passes over an iteration's rollouts",
         false},
        {"clip", 0, CLI_NONNEG_FLOAT, &pc.clip, "F", "0.2", "PPO ratio clip", false},
        {"value-clip", 0, CLI_NONNEG_FLOAT, &pc.value_clip, "F", "0.2", "value clip (0: none)",
         false},
        {"beta", 0, CLI_NONNEG_FLOAT, &pc.beta, "F", "0.01", "KL penalty (Llama 2: 0.005 for 34B/70B)",
         false},
        {"kl", 0, CLI_STR, &kl_name, "K", "k1", "per-token KL estimate: k1 or k3", false},
        {"gamma", 0, CLI_NONNEG_FLOAT, &pc.gamma, "F", "1.0", "GAE discount", false},
        {"lambda", 0, CLI_NONNEG_FLOAT, &pc.lambda, "F", "0.95", "GAE lambda", false},
        {"lr", 0, CLI_NONNEG_FLOAT, &pc.lr, "F", "1e-6", "constant learning rate", false},
        {"weight-decay", 0, CLI_NONNEG_FLOAT, &pc.adamw.weight_decay, "F", "0.1", "AdamW weight decay",
         false},
        {"clip-norm", 0, CLI_NONNEG_FLOAT, &pc.adamw.clip_norm, "F", "1.0",
         "gradient-norm clip (0: none)", false},
        {"no-eos-penalty", 0, CLI_FLOAT, &pc.no_eos_penalty, "F", "0",
         "added to the reward of a response cut at the length limit", false},
        {"kl-target", 0, CLI_NONNEG_FLOAT, &pc.kl_target, "F", "0 = off",
         "stop when the mean KL to the reference exceeds F", false},
        {"entropy", 0, CLI_BOOL, &pc.entropy, "[yes|no]", "yes",
         "measure the policy's entropy (copies the logits to the host)", false},
        {"max-new", 0, CLI_POS_INT, &max_new, "N", "128", "response tokens at most", false},
        {"temperature", 0, CLI_NONNEG_FLOAT, &temperature, "F", "1.0", "sampling temperature", false},
        {"slots", 0, CLI_POS_INT, &slots, "N", "64", "sequences decoded at once", false},
        {"score-batch", 0, CLI_POS_INT, &score_batch, "N", "8", "rows per reward-model forward",
         false},
        {"seed", 's', CLI_U64, &seed, "S", "1", "run seed (prompt order, samples, mini-batches)",
         false},
        {"stop-after", 0, CLI_NONNEG_INT, &stop_after, "N", "0 = off",
         "save and stop after iteration N (resume by running the same command)", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "ppo", "RUN --policy CKPT --rm-helpfulness CKPT --rm-safety CKPT --tokenizer T "
               "--iterations N [options]",
        "PPO under a KL penalty to a frozen reference with Llama 2's gated reward\n"
        "R~_c = whiten(logit(gate(R_h, R_s))): rollouts, per-token KL penalty, GAE, clipped\n"
        "mini-batch updates of policy and value. Metrics and rollouts (table `rollouts`) per\n"
        "iteration in the store; the policy of every iteration in RUN/ckpt/ppo-<stage>/iter-<k>.\n"
        "Rerunning the same command resumes exactly.",
        opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!policy_path) return cli_usage_error(&spec, "--policy is required");
    if (!rmh_path || !rms_path)
        return cli_usage_error(&spec, "--rm-helpfulness and --rm-safety are required");
    if (!tok_path) return cli_usage_error(&spec, "--tokenizer is required");
    if (iterations <= 0) return cli_usage_error(&spec, "--iterations is required");
    if (strcmp(kl_name, "k1") == 0) pc.kl = PPO_KL_K1;
    else if (strcmp(kl_name, "k3") == 0) pc.kl = PPO_KL_K3;
    else return cli_usage_error(&spec, "--kl must be k1 or k3");
    if (pc.lambda > 1 || pc.gamma > 1)
        return cli_usage_error(&spec, "--gamma and --lambda must be in [0, 1]");
    if (!ref_path) ref_path = policy_path;
    if (!value_path) value_path = rmh_path;
    if (pc.minibatch > pc.batch) pc.minibatch = pc.batch;
    if (micro == 0 || micro > pc.minibatch) micro = pc.minibatch;
    const rlhf_backend *be = NULL;
    rlhf_status st = cli_setup(&com, &be);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);

    rlhf_store *s = NULL;
    rlhf_tokenizer *tok = NULL;
    rlhf_model *pol = NULL, *ref = NULL, *val = NULL, *rmh = NULL, *rms = NULL;
    rlhf_sampler *smp = NULL;
    cli_prompts prompts = {0};
    ds_chat_tokens *rend = NULL;
    int64_t *perm = NULL, n_ok = 0;
    rlhf_sample_seq *seqs = NULL;
    int32_t *outbuf = NULL;
    float *lpbuf = NULL;
    const cli_prompt **rp = NULL;
    ppo_scorer scorer = {0};
    cli_stop stop = {0};
    char key[2048], prm[2048], dir[4400], path[4400], path2[4400];
    int64_t stage = 0, pol_id = 0, ref_id = 0, rmh_id = 0, rms_id = 0, val_id = 0;
    int64_t cur_id = 0; /* the checkpoint of the policy that samples the next iteration */
    ppo_batch batch = {0};

    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, policy_path, "policy", &pol_id), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, ref_path, "reference", &ref_id), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, rmh_path, "reward-helpfulness", &rmh_id), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, rms_path, "reward-safety", &rms_id), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, value_path, "value", &val_id), fail);
    RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, 0), fail);

    rlhf_model_config pcfg, cfg2;
    RLHF_TRY_GOTO(st, load_model(policy_path, be, false, true, micro, 0, &pcfg, &pol), fail);
    const int32_t T = pcfg.seq_len;
    RLHF_TRY_GOTO(st, cli_check_vocab(policy_path, pcfg.vocab_size, tok_path, tok), fail);
    RLHF_TRY_GOTO(st, load_model(ref_path, be, false, false, micro, T, &cfg2, &ref), fail);
    if (!same_shape(&pcfg, &cfg2)) {
        st = RLHF_ERR(RLHF_ERR_ARG, "reference %s does not have the policy's shape", ref_path);
        goto fail;
    }
    RLHF_TRY_GOTO(st, load_model(value_path, be, true, true, micro, T, &cfg2, &val), fail);
    RLHF_TRY_GOTO(st, load_model(rmh_path, be, true, false, score_batch, T, &cfg2, &rmh), fail);
    if (cfg2.vocab_size != pcfg.vocab_size) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s has vocab %d, the policy %d", rmh_path,
                      (int)cfg2.vocab_size, (int)pcfg.vocab_size);
        goto fail;
    }
    RLHF_TRY_GOTO(st, load_model(rms_path, be, true, false, score_batch, T, &cfg2, &rms), fail);
    if (cfg2.vocab_size != pcfg.vocab_size) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s has vocab %d, the policy %d", rms_path,
                      (int)cfg2.vocab_size, (int)pcfg.vocab_size);
        goto fail;
    }

    /* prompts: rendered once; those longer than the context are skipped; a fixed shuffle */
    RLHF_TRY_GOTO(st, cli_prompts_load(s, split, &prompts), fail);
    rend = calloc((size_t)(prompts.n ? prompts.n : 1), sizeof *rend);
    perm = malloc((size_t)(prompts.n ? prompts.n : 1) * sizeof *perm);
    if (!rend || !perm) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < prompts.n; i++) {
        rlhf_status r = cli_prompt_render(tok, &prompts.v[i], T - 1, &rend[i]);
        if (r == RLHF_ERR_ARG) {
            rlhf_error_clear();
            continue;
        }
        if (r != RLHF_OK) {
            st = r;
            goto fail;
        }
        perm[n_ok++] = i;
    }
    if (n_ok == 0) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: no %s prompts that fit the context of %d", pos[0], split, T);
        goto fail;
    }
    {
        rlhf_rng g;
        rlhf_rng_seed(&g, seed, 0x70706f);
        for (int64_t i = n_ok - 1; i > 0; i--) {
            int64_t j = (int64_t)(rlhf_rng_u32(&g) % (uint32_t)(i + 1));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    }

    snprintf(key, sizeof key,
             "policy=%" PRId64 " ref=%" PRId64 " rmh=%" PRId64 " rms=%" PRId64 " value=%" PRId64
             " split=%s batch=%d mb=%d epochs=%d clip=%.9g vclip=%.9g beta=%.9g kl=%s gamma=%.9g "
             "lambda=%.9g lr=%.9g wd=%.9g cn=%.9g noeos=%.9g max_new=%d temp=%.9g seed=%" PRIu64,
             pol_id, ref_id, rmh_id, rms_id, val_id, split, (int)pc.batch, (int)pc.minibatch,
             (int)pc.epochs, (double)pc.clip, (double)pc.value_clip, (double)pc.beta, kl_name,
             (double)pc.gamma, (double)pc.lambda, (double)pc.lr, (double)pc.adamw.weight_decay,
             (double)pc.adamw.clip_norm, (double)pc.no_eos_penalty, (int)max_new,
             (double)temperature, seed);
    snprintf(prm, sizeof prm,
             "{\"policy\": %" PRId64 ", \"reference\": %" PRId64 ", \"rm_helpfulness\": %" PRId64
             ", \"rm_safety\": %" PRId64 ", \"value_init\": %" PRId64 ", \"batch\": %d, "
             "\"minibatch\": %d, \"beta\": %.9g, \"kl\": \"%s\", \"lr\": %.9g, \"seed\": %" PRIu64
             ", \"iterations\": %d}",
             pol_id, ref_id, rmh_id, rms_id, val_id, (int)pc.batch, (int)pc.minibatch,
             (double)pc.beta, kl_name, (double)pc.lr, seed, (int)iterations);
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "ppo", key, &sg, &found), fail);
    if (found) stage = sg.id;
    else RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "ppo", key, prm, iterations, &stage), fail);
    snprintf(dir, sizeof dir, "%.4000s/ckpt/ppo-%" PRId64, pos[0], stage);
    RLHF_TRY_GOTO(st, rlhf_mkdirs(dir), fail);

    /* resume */
    int64_t k0 = 0;
    RLHF_TRY_GOTO(st, read_latest(dir, &k0), fail);
    rlhf_train_extra xp, xv;
    memset(&xp, 0, sizeof xp);
    memset(&xv, 0, sizeof xv);
    xp.adamw = xv.adamw = pc.adamw;
    if (k0 > 0) {
        state_path(path, sizeof path, dir, "policy", k0);
        RLHF_TRY_GOTO(st, rlhf_train_state_load(pol, &xp, path), fail);
        state_path(path, sizeof path, dir, "value", k0);
        RLHF_TRY_GOTO(st, rlhf_train_state_load(val, &xv, path), fail);
        if (xp.data_pos != k0 || xv.data_pos != k0) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: state files disagree with `latest` (%" PRId64 ")",
                          dir, k0);
            goto fail;
        }
        /* the checkpoint of iteration k0 may not have been registered before the kill */
        RLHF_TRY_GOTO(st, save_checkpoint(s, pol, dir, k0, pol_id, stage, &cur_id), fail);
    } else {
        cur_id = pol_id;
    }
    if (k0 >= iterations) {
        if (!com.quiet) printf("ppo: stage %" PRId64 " already has %" PRId64 " iterations\n", stage, k0);
        RLHF_TRY_GOTO(st, rlhf_store_stage_finish(s, stage, k0, NULL), fail);
        rc = CLI_EXIT_OK;
        goto done;
    }

    /* rollout buffers */
    const int32_t B = pc.batch;
    seqs = calloc((size_t)B, sizeof *seqs);
    outbuf = malloc((size_t)B * max_new * sizeof *outbuf);
    lpbuf = malloc((size_t)B * max_new * sizeof *lpbuf);
    rp = malloc((size_t)B * sizeof *rp);
    scorer.r_h = malloc((size_t)B * sizeof(float));
    scorer.r_s = malloc((size_t)B * sizeof(float));
    scorer.r_c = malloc((size_t)B * sizeof(float));
    scorer.gate_safe = malloc((size_t)B);
    if (!seqs || !outbuf || !lpbuf || !rp || !scorer.r_h || !scorer.r_s || !scorer.r_c ||
        !scorer.gate_safe) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for %d rollouts", B);
        goto fail;
    }
    scorer.tok = tok;
    scorer.rm_h = rmh;
    scorer.rm_s = rms;
    scorer.batch = score_batch;
    scorer.T = T;
    scorer.prompts = rp;
    RLHF_TRY_GOTO(st, rlhf_sampler_init(&smp, pol, slots < B ? slots : B), fail);
    rlhf_sample_config sc = {.temperature = temperature, .top_k = 0, .top_p = 1.0f,
                             .max_new = max_new, .eos_id = rlhf_tokenizer_eos(tok)};

    if (!com.quiet) {
        printf("ppo: %s stage %" PRId64 " at iteration %" PRId64 "/%d; %" PRId64 " prompts; "
               "batch %d, minibatch %d (micro %d), beta %g (%s), clip %g, lr %g; policy %s\n",
               k0 ? "resuming" : "new", stage, k0, (int)iterations, n_ok, (int)B,
               (int)pc.minibatch, (int)micro, (double)pc.beta, kl_name, (double)pc.clip,
               (double)pc.lr, policy_path);
        fflush(stdout);
    }
    cli_stop_catch(&stop);

    cli_progress prog;
    cli_progress_start(&prog, "ppo", "iterations", iterations, &com);
    prog.base = k0;
    bool stopped = false, kl_stop = false;
    ppo_iter_stats is = {0};
    int64_t k = k0;
    while (k < iterations) {
        if (cli_stop_signal()) break;
        if (stop_after > 0 && k >= stop_after) {
            stopped = true;
            break;
        }
        for (int32_t j = 0; j < B; j++) {
            const int64_t slot = (k * B + j) % n_ok;
            const int64_t pi = perm[slot];
            rp[j] = &prompts.v[pi];
            seqs[j] = (rlhf_sample_seq){
                .prompt = rend[pi].ids, .n_prompt = rend[pi].n,
                .seed = rs_sample_seed(seed, prompts.v[pi].id, (int32_t)(k * B + j)),
                .out = outbuf + (size_t)j * max_new, .logp = lpbuf + (size_t)j * max_new};
        }
        rlhf_rng rng;
        rlhf_rng_seed(&rng, seed, 1000 + (uint64_t)k);
        RLHF_TRY_GOTO(st, ppo_iteration(pol, smp, ref, val, &pc, &sc, seqs, B, micro, ppo_score,
                                        &scorer, &rng, &batch, &is), fail);
        const int64_t it = k + 1;
        /* metrics and curve first (a redone iteration rewrites the same values), then the state */
        const struct { const char *name; double v; } mets[] = {
            {"ppo/reward_gated", scorer.gated_mean},   {"ppo/reward_helpfulness", scorer.help_mean},
            {"ppo/reward_safety", scorer.safe_mean},    {"ppo/safety_gate_frac", scorer.safety_used},
            {"ppo/score_mean", is.adv.score_mean},      {"ppo/kl_ref", is.adv.kl_mean},
            {"ppo/entropy", is.entropy},                {"ppo/clip_frac", is.clip_frac},
            {"ppo/approx_kl", is.approx_kl},            {"ppo/policy_loss", is.policy_loss},
            {"ppo/value_loss", is.value_loss},          {"ppo/value_clip_frac", is.value_clip_frac},
            {"ppo/explained_var", is.explained_var},    {"ppo/response_len", is.adv.resp_len},
            {"ppo/no_eos_frac", is.no_eos_frac},        {"ppo/t_generate", is.t_generate},
            {"ppo/t_score", is.t_score},                {"ppo/t_reference", is.t_reference},
            {"ppo/t_train", is.t_train},
        };
        RLHF_TRY_GOTO(st, rlhf_store_begin(s), fail);
        for (size_t i = 0; i < sizeof mets / sizeof mets[0] && st == RLHF_OK; i++)
            if (isfinite(mets[i].v)) st = rlhf_store_metric_set(s, stage, it, mets[i].name, mets[i].v);
        if (st == RLHF_OK)
            st = write_rollouts(s, tok, stage, it, cur_id, temperature, seqs, rp, &scorer, &batch);
        if (st == RLHF_OK) st = rlhf_store_commit(s);
        ppo_batch_free(&batch);
        if (st != RLHF_OK) {
            rlhf_store_rollback(s);
            goto fail;
        }
        RLHF_TRY_GOTO(st, write_curve(dir, it, scorer.gated_mean, is.adv.kl_mean), fail);
        xp.data_pos = xv.data_pos = it;
        state_path(path, sizeof path, dir, "policy", it);
        RLHF_TRY_GOTO(st, rlhf_train_state_save(pol, &xp, path), fail);
        state_path(path, sizeof path, dir, "value", it);
        RLHF_TRY_GOTO(st, rlhf_train_state_save(val, &xv, path), fail);
        RLHF_TRY_GOTO(st, write_latest(dir, it), fail);
        state_path(path, sizeof path, dir, "policy", k);
        state_path(path2, sizeof path2, dir, "value", k);
        remove(path); /* the previous iteration's states (none before the first) */
        remove(path2);
        RLHF_TRY_GOTO(st, save_checkpoint(s, pol, dir, it, pol_id, stage, &cur_id), fail);
        RLHF_TRY_GOTO(st, rlhf_store_stage_progress(s, stage, it), fail);
        k = it;
        cli_progress_note(&prog, k, true, "reward %.3f kl %.4f clip %.3f vloss %.4f",
                          scorer.gated_mean, is.adv.kl_mean, is.clip_frac, is.value_loss);
        if (com.verbose)
            fprintf(stderr, "ppo: iteration %" PRId64 ": reward %.4f kl %.4f entropy %.4f "
                    "approx_kl %.5f clip %.3f value_loss %.4f ev %.3f len %.1f\n", k,
                    scorer.gated_mean, is.adv.kl_mean, is.entropy, is.approx_kl, is.clip_frac,
                    is.value_loss, is.explained_var, is.adv.resp_len);
        if (pc.kl_target > 0 && is.adv.kl_mean > pc.kl_target) {
            kl_stop = true;
            break;
        }
    }
    cli_progress_end(&prog);
    if (cli_stop_signal() || stopped) {
        if (!com.quiet)
            printf("ppo: %s at iteration %" PRId64 "/%d; run the same command to resume\n",
                   cli_stop_signal() ? "interrupted" : "stopped (--stop-after)", k, (int)iterations);
        rc = cli_stop_signal() ? 128 + cli_stop_signal() : CLI_EXIT_OK;
        goto done;
    }
    {
        char res[256];
        snprintf(res, sizeof res, "{\"iterations\": %" PRId64 ", \"kl_stop\": %s}", k,
                 kl_stop ? "true" : "false");
        RLHF_TRY_GOTO(st, rlhf_store_stage_finish(s, stage, k, res), fail);
    }
    if (!com.quiet)
        printf("ppo: done, %" PRId64 " iterations%s; last: reward %.4f, KL %.4f; policy at "
               "%s/iter-%" PRId64 "\n", k, kl_stop ? " (stopped: KL above --kl-target)" : "",
               scorer.gated_mean, is.adv.kl_mean, dir, k);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    cli_stop_release(&stop);
    if (rend)
        for (int64_t i = 0; i < prompts.n; i++) ds_chat_free(&rend[i]);
    free(rend);
    free(perm);
    free(seqs);
    free(outbuf);
    free(lpbuf);
    free(rp);
    free(scorer.r_h);
    free(scorer.r_s);
    free(scorer.r_c);
    free(scorer.gate_safe);
    ppo_batch_free(&batch);
    rlhf_sampler_free(smp);
    rlhf_model_free(pol);
    rlhf_model_free(ref);
    rlhf_model_free(val);
    rlhf_model_free(rmh);
    rlhf_model_free(rms);
    cli_prompts_free(&prompts);
    rlhf_tokenizer_free(tok);
    rlhf_store_close(s);
    return rc;
}
