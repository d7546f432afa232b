/* policy.h: supervised fine-tuning, rejection sampling and PPO on the trunk (module prefixes
 * `sft_`, `rs_`, `ppo_`).
 *
 * SFT (Llama 2-Chat section 3.1): dialogues rendered with the Llama 2-Chat template
 * (ds_chat_render) become examples of token ids with a per-token "learned" flag, set only on
 * assistant tokens (the answer and its EOS); system and user tokens are context, never targets.
 * Examples are packed several to a row of T positions; rlhf_model_set_segments keeps attention
 * inside each example and restarts RoPE positions, so a packed example is computed exactly as it
 * would be alone (tests/test_sft.c checks it).
 *
 * Rejection sampling (section 3.2.3): K samples per prompt from the policy, each with a seed
 * derived from (run seed, prompt id, sample index) so that a sample never depends on the batch
 * it was drawn in; the reward models score them; per prompt the sample with the highest combined
 * reward over the pooled rounds is selected and becomes an SFT target.
 *
 * Dependencies: the core (rlhf.h, store.h) and datasets (ds.h). policy/ never includes reward/:
 * the combined reward R_c reaches rs_select as DATA (the CLI computes it with reward_combine and
 * hands the values over), which keeps selection a pure function that tests can feed directly.
 *
 * Conventions as in rlhf.h: rlhf_status results, rlhf_last_error() text, caller-owned results,
 * x_free(NULL) safe. Dimension letters: B rows, T positions. */
#ifndef POLICY_H
#define POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "ds.h"
#include "rlhf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- SFT examples ----------------------------------------------------------------------------- */

/* One training example: ids[0..n-1]; the model reads ids[i] and predicts ids[i+1], and that
 * prediction is trained on only when learn[i+1] is 1. */
typedef struct sft_example {
    int32_t *ids;   /* (n) */
    uint8_t *learn; /* (n) 1: this token is a target of the loss (assistant tokens) */
    int32_t n;
} sft_example;

/* A growable list of examples (owned arrays). */
typedef struct sft_dataset {
    sft_example *ex;
    int64_t n, cap;
    int64_t n_truncated; /* examples cut to fit a row (rows of T positions hold T+1 ids) */
} sft_dataset;

/* Example from a rendered dialogue: learn = (role of the token is assistant) and, when turn_mask is
 * not NULL, turn_mask[turn of the token] != 0 (the store's per-turn loss mask; n_turn_mask entries,
 * a token of a turn beyond it is not learned). Copies; max_ids > 0 truncates to that many ids
 * (counted in the dataset). An example with nothing to learn is skipped (*added false). */
rlhf_status sft_dataset_add_chat(sft_dataset *d, const ds_chat_tokens *c, const uint8_t *turn_mask,
                                 int32_t n_turn_mask, int32_t max_ids, bool *added);
/* Example from a prompt rendering (ids of "[BOS] [INST] ... [/INST]", all context) followed by a
 * sampled answer's token ids (all learned, as sampled: EOS included when the sample ended with
 * it). Truncation and skipping as above. */
rlhf_status sft_dataset_add_prompt_answer(sft_dataset *d, const int32_t *prompt, int32_t n_prompt,
                                          const int32_t *answer, int32_t n_answer, int32_t max_ids,
                                          bool *added);
void sft_dataset_free(sft_dataset *d); /* frees the examples and zeroes *d; NULL-safe */
/* Number of learned target tokens of example i (learn[1..n-1]). Cannot fail. */
int64_t sft_example_targets(const sft_example *e);

/* ---- packing ---------------------------------------------------------------------------------- */

/* Rows of T positions holding whole examples back to back. Position t of row r reads
 * tokens[r,t], predicts targets[r,t] with weight mask[r,t] (0 or 1), and belongs to the example
 * starting at seg[r,t] (rlhf_model_set_segments). Padding: token 0, target -1, mask 0, each
 * padding position its own segment. targets are the true next ids everywhere inside an example,
 * masked or not: only mask decides what is learned. */
typedef struct sft_pack {
    int32_t rows, T;
    int32_t *tokens;  /* (rows,T) */
    int32_t *targets; /* (rows,T) */
    float *mask;      /* (rows,T) */
    int32_t *seg;     /* (rows,T) */
    int64_t *first;   /* (rows+1) rows r holds examples order[first[r] .. first[r+1]-1] */
} sft_pack;

/* Packs the examples d->ex[order[0..n-1]] in that order, greedily: an example goes into the
 * current row if its n-1 positions fit, else it starts a new row. Every example must have
 * 2 <= n <= T+1 ids (RLHF_ERR_ARG otherwise). order NULL: 0..n-1. */
rlhf_status sft_pack_build(const sft_dataset *d, const int64_t *order, int64_t n, int32_t T,
                           sft_pack *out);
void sft_pack_free(sft_pack *p); /* NULL-safe; zeroes *p */

/* The SFT micro-step on rows [r0, r0+B) of p: forward with the rows' segments, masked mean
 * cross-entropy over their learned targets, and (dloss_scale != 0) the gradient of dloss_scale *
 * loss accumulated into the model. *loss and *n_targets (may be NULL) get the loss and the number
 * of learned targets. Leaves packing off when it returns. */
rlhf_status sft_step(rlhf_model *m, const sft_pack *p, int32_t r0, int32_t B, float dloss_scale,
                     float *loss, int64_t *n_targets);

/* Llama 2-Chat's SFT settings (section 3.1): cosine schedule from lr 2e-5, weight decay 0.1,
 * 2 epochs (batch 64 sequences of 4096 tokens there; the batch is the caller's). The paper does
 * not state the cosine's floor or a warm-up: we decay to 10% as in pretraining, no warm-up. */
typedef struct sft_config {
    float lr;           /* 2e-5 */
    float weight_decay; /* 0.1 */
    int32_t epochs;     /* 2 */
    float final_frac;   /* cosine decays to final_frac * lr: 0.1 */
    int32_t warmup;     /* steps of linear warm-up: 0 (Llama 2 states none for SFT) */
} sft_config;
sft_config sft_config_default(void); /* cannot fail */

/* The training plan: for each epoch a permutation of the examples drawn from seed (a Fisher-Yates
 * shuffle with PCG32 stream "sft"), each packed into rows of T; the rows of all epochs in order.
 * Same inputs, same plan, so a resumed run recomputes it and continues at its step.
 * steps = ceil(rows / batch). */
rlhf_status sft_plan_build(const sft_dataset *d, int32_t epochs, int32_t T, uint64_t seed,
                           sft_pack *out);

/* ---- sampling ----------------------------------------------------------------------------------- */

/* The seed of sample k of prompt prompt_id in a run seeded with seed: a SplitMix64 mix of the
 * three, so that it depends on nothing else (batch size, order, resumption). Cannot fail. */
uint64_t rs_sample_seed(uint64_t seed, int64_t prompt_id, int32_t k);

/* ---- rejection sampling: selection ---------------------------------------------------------------- */

/* One scored sample: its combined reward R_c as computed by the caller. */
typedef struct rs_candidate {
    int64_t prompt_id, sample_id;
    int32_t round;
    double reward;
} rs_candidate;

/* For each prompt among the candidates, the one with the highest reward among rounds <= round
 * (pool_last false: all rounds pooled, Llama 2's choice from RLHF V3 on) or of round `round` only
 * (pool_last true). Ties go to the earlier round, then the lower sample id. NaN rewards are
 * ignored. *out (malloc'ed, free()) gets one entry per prompt with a candidate, in prompt id
 * order; *n_out their count. */
rlhf_status rs_select(const rs_candidate *c, int64_t n, int32_t round, bool pool_last,
                      rs_candidate **out, int64_t *n_out);

/* ---- rejection sampling: best-of-k report (Figure 7) ---------------------------------------------- */

/* rewards (P,K): K samples' rewards for each of P prompts. For k = 1..K: max_k[k-1] = the mean
 * over prompts of the expected maximum reward of k samples drawn without replacement from the K,
 * and median_k[k-1] the same for the median (mean of the two middle ones for even k), both from
 * the order statistics exactly (no resampling noise). NaN entries are not allowed
 * (RLHF_ERR_ARG). */
rlhf_status rs_best_of_k(const double *rewards, int64_t P, int32_t K, double *max_k,
                         double *median_k);


/* ---- PPO (Llama 2-Chat section 3.2.3, policy/ppo.c, prefix ppo_) --------------------------------- *
 * The policy maximizes R(g|p) = R~_c(g|p) - beta * KL(pi(g|p) || pi_0(g|p)). The reward R~_c
 * (gated, logit, whitened: reward_combine) reaches policy/ as DATA, one float per response.
 * Per response of n tokens, token j (0-based) has: logp (policy at rollout time, recomputed by the
 * training forward), logp_ref (frozen reference), value (value model: the state before token j).
 * All losses are means over the masked tokens of a mini-batch (mask 1 = a response token). */

typedef enum ppo_kl_kind {
    PPO_KL_K1 = 0, /* log pi - log pi_ref (Llama 2 / InstructGPT; unbiased, can be < 0) */
    PPO_KL_K3,     /* exp(d) - 1 - d with d = log pi_ref - log pi (>= 0, unbiased, low variance) */
} ppo_kl_kind;

typedef struct ppo_config {
    int32_t batch;         /* prompts (= rollouts) per iteration: 512 */
    int32_t minibatch;     /* rollouts per gradient step: 64 (one step each) */
    int32_t epochs;        /* passes over an iteration's rollouts: 1 */
    float clip;            /* PPO ratio clip: 0.2 */
    float value_clip;      /* value clip around the rollout's values: 0.2 (<= 0: off) */
    float beta;            /* KL penalty: 0.01 */
    ppo_kl_kind kl;        /* PPO_KL_K1 */
    float gamma, lambda;   /* GAE: 1.0, 0.95 */
    float lr;              /* constant: 1e-6, for policy and value */
    rlhf_adamw_config adamw; /* 0.9/0.95/1e-5, wd 0.1, clip-norm 1.0 */
    float no_eos_penalty;  /* added to the reward of a response that hit the length limit: 0 */
    float kl_target;       /* stop the run when the mean KL to the reference exceeds it: 0 off */
    bool entropy;          /* measure the policy's entropy (copies micro*T*V logits to the host
                              per micro-batch): true */
} ppo_config;
ppo_config ppo_config_default(void); /* Llama 2's settings; cannot fail */

/* Per-token KL estimate of one token. Cannot fail. */
float ppo_kl_token(float logp, float logp_ref, ppo_kl_kind kind);

/* Per-token rewards of one response of n >= 1 tokens: r[j] = -beta * kl(j), and the response's
 * scalar reward `score` added at the last token. *kl_sum (may be NULL) gets sum_j kl(j). */
rlhf_status ppo_rewards(const float *logp, const float *logp_ref, int32_t n, float score,
                        float beta, ppo_kl_kind kind, float *rewards, float *kl_sum);

/* Generalized advantage estimation over one response (n >= 1 tokens, the episode ends after the
 * last: V(after) = 0): delta_j = r_j + gamma V_{j+1} - V_j, A_j = delta_j + gamma lambda A_{j+1},
 * returns_j = A_j + V_j. adv and ret (n) may not alias the inputs. */
rlhf_status ppo_gae(const float *rewards, const float *values, int32_t n, float gamma,
                    float lambda, float *adv, float *ret);

/* Whitening over the entries with mask != 0 (mask NULL: all n): out = (x - mean)/(sd + 1e-8)
 * (shift_mean) or mean + (x - mean)/(sd + 1e-8), sd the population standard deviation (so the
 * result has mean 0 and sd 1 up to the epsilon). Masked-out entries are copied unchanged. In place
 * allowed. Fewer than 2 entries: RLHF_ERR_ARG. */
rlhf_status ppo_whiten(const float *x, const float *mask, int64_t n, bool shift_mean, float *out);

/* Statistics of a policy-loss evaluation (means over masked tokens). */
typedef struct ppo_policy_stats {
    double loss;       /* clipped surrogate loss (minimized) */
    double clip_frac;  /* fraction of tokens where the clipped term was the larger loss */
    double approx_kl;  /* old -> new policy, k3: mean (r - 1) - log r */
    double ratio_mean, ratio_max_dev; /* mean ratio and max |ratio - 1| */
    int64_t n;         /* masked tokens */
} ppo_policy_stats;

/* The clipped surrogate: with r = exp(logp - logp_old) and A the advantage,
 *   L = mean_masked max(-A r, -A clip(r, 1-eps, 1+eps)).
 * dlogp (n, may be NULL) gets dL/dlogp: -A r / N where the unclipped term is taken (ties
 * included), 0 where the clipped one is strictly larger (its gradient is 0), 0 outside the mask;
 * N the masked count. mask NULL: all. No masked token: RLHF_ERR_ARG. */
rlhf_status ppo_policy_loss(const float *logp, const float *logp_old, const float *adv,
                            const float *mask, int64_t n, float clip, float *dlogp,
                            ppo_policy_stats *st);

/* The clipped value loss: v_c = v_old + clip(v - v_old, -eps, eps),
 *   L = 0.5 mean_masked max((v - R)^2, (v_c - R)^2)  (eps <= 0: 0.5 mean (v - R)^2).
 * dv (n, may be NULL) gets dL/dv. *loss and *clip_frac (fraction where the clipped term was
 * strictly larger) may be NULL. No masked token: RLHF_ERR_ARG. */
rlhf_status ppo_value_loss(const float *v, const float *v_old, const float *ret, const float *mask,
                           int64_t n, float clip, float *dv, double *loss, double *clip_frac);

/* Entropy (nats) of softmax(logits) of one row of V logits. Cannot fail. */
double ppo_entropy(const float *logits, int32_t V);

/* 1 - Var(ret - v) / Var(ret) over masked entries (population variances); NaN when Var(ret) is 0
 * or fewer than 2 entries. Cannot fail. */
double ppo_explained_variance(const float *v, const float *ret, const float *mask, int64_t n);

/* ---- PPO on the trunk (policy/ppo_step.c) --------------------------------------------------------- *
 * An iteration's rollouts as rows of positions: row i reads prompt ++ response[0..n_resp-2] and
 * position t predicts id t+1, so response token j sits at position n_prompt-1+j (mask 1 there, 0
 * elsewhere, target -1 on padding). The value at that position is V of the state before token j.
 *
 * Rows are visited in `order` (a permutation drawn per iteration) in mini-batches of `minibatch`
 * rows, each split into micro-batches of at most `micro` rows; a micro-batch is computed with
 * T = the longest of its rows. Old log-probs, reference log-probs and old values are computed
 * with exactly the same micro-batches as the first epoch's updates, so the first mini-batch of an
 * iteration sees ratio exactly 1 and KL is exactly 0 when policy == reference (a matmul's sums
 * depend on its shape, so any other grouping would differ in the last bits). */
typedef struct ppo_batch {
    int32_t B, T;         /* rows, positions per row (longest prompt + response - 1) */
    int32_t *tokens;      /* (B,T) */
    int32_t *targets;     /* (B,T) -1: not a response token */
    float *mask;          /* (B,T) 1 on response tokens */
    float *logp_old;      /* (B,T) policy at rollout time (training forward) */
    float *logp_ref;      /* (B,T) frozen reference */
    float *values;        /* (B,T) value model at rollout time */
    float *rewards;       /* (B,T) -beta kl + score at the last token */
    float *adv;           /* (B,T) GAE advantages, whitened over the batch */
    float *ret;           /* (B,T) returns = raw advantage + value */
    int32_t *n_prompt, *n_resp; /* (B) */
    float *score;         /* (B) the response's scalar reward as given (+ no-EOS penalty) */
    float *kl;            /* (B) sum of the per-token KL of the response */
    int32_t *order;       /* (B) the visiting order */
} ppo_batch;

/* Builds the rows from n sampled sequences (prompt + out; every one needs n_out >= 1 and
 * n_prompt >= 1). order = identity. */
rlhf_status ppo_batch_build(const rlhf_sample_seq *seqs, int32_t n, ppo_batch *out);
void ppo_batch_free(ppo_batch *b); /* NULL-safe; zeroes *b */
/* Draws a new visiting order (Fisher-Yates with rng). Cannot fail. */
void ppo_batch_shuffle(ppo_batch *b, rlhf_rng *rng);

/* Log-probs of the response tokens under m (LM head) into out (B,T) (0 off the mask), computed
 * micro-batch by micro-batch as described above. m's max_B >= micro and max_T >= the batch's T. */
rlhf_status ppo_batch_logprobs(rlhf_model *m, const ppo_batch *b, int32_t minibatch, int32_t micro,
                               float *out);
/* Values of m (scalar head) at every position into out (B,T) (0 off the mask), same grouping. */
rlhf_status ppo_batch_values(rlhf_model *m, const ppo_batch *b, int32_t minibatch, int32_t micro,
                             float *out);

/* Statistics of the rewards and advantages of a batch. */
typedef struct ppo_adv_stats {
    double score_mean;  /* mean scalar reward (what was given, penalty included) */
    double kl_mean;     /* mean over responses of the summed per-token KL (the config's kind) */
    double resp_len;    /* mean response length */
    double value_mean, ret_mean;
} ppo_adv_stats;

/* With logp_old, logp_ref and values filled: rewards (ppo_rewards with c->beta, c->kl and score[i];
 * score (B) is copied into b->score after adding c->no_eos_penalty to the rows with no_eos[i]
 * (may be NULL)), GAE per row (c->gamma, c->lambda), whitened advantages over all response
 * tokens of the batch (at least 2). st may be NULL. */
rlhf_status ppo_batch_advantages(ppo_batch *b, const float *score, const uint8_t *no_eos,
                                 const ppo_config *c, ppo_adv_stats *st);

/* Statistics of one mini-batch update (token means over the mini-batch). */
typedef struct ppo_update_stats {
    ppo_policy_stats pol;  /* loss, clip fraction, approx-KL, ratios */
    double entropy;        /* mean policy entropy at response tokens (NaN unless asked for) */
    double value_loss, value_clip_frac;
    float policy_grad_norm, value_grad_norm; /* before clipping */
} ppo_update_stats;

/* One mini-batch: rows order[first .. first+count) in micro-batches of micro rows. Policy: the
 * clipped surrogate on b->logp_old and b->adv, gradients accumulated over micro-batches (each
 * weighted by its share of the mini-batch's tokens), one AdamW step (c->lr, c->adamw). Value
 * (may be NULL): the clipped value loss against b->ret around b->values, one AdamW step.
 * want_entropy copies the logits to the host (B*T*V floats per micro-batch). */
rlhf_status ppo_minibatch_update(rlhf_model *policy, rlhf_model *value, const ppo_batch *b,
                                 int32_t first, int32_t count, int32_t micro, const ppo_config *c,
                                 bool want_entropy, ppo_update_stats *st);

/* The scalar rewards of n rollouts (policy/ never calls the reward models: the CLI's function
 * does, e.g. reward_combine of both models' scores; a test's function computes a known reward).
 * score (n) gets one finite value per rollout. */
typedef rlhf_status (*ppo_score_fn)(void *ctx, const rlhf_sample_seq *seqs, int32_t n,
                                    float *score);

/* Everything one iteration measured. */
typedef struct ppo_iter_stats {
    ppo_adv_stats adv;
    double policy_loss, clip_frac, approx_kl, entropy; /* token means over all mini-batches */
    double value_loss, value_clip_frac;
    double explained_var;     /* of the rollout values for the returns */
    double first_ratio_dev;   /* max |ratio - 1| in the first mini-batch (0 by construction) */
    double no_eos_frac;       /* responses that hit the length limit */
    int32_t updates;          /* mini-batch steps taken */
    double t_generate, t_score, t_reference, t_train; /* seconds per phase */
} ppo_iter_stats;

/* One PPO iteration. seqs (n rollouts): the caller sets prompt, n_prompt, seed and out/logp
 * buffers of sc->max_new (logp may be NULL); the sampler (on policy) fills them. Then: the
 * visiting order from rng, old log-probs (policy), reference log-probs, values (value model,
 * may be NULL: values 0 and no value update), score(ctx) on the rollouts, rewards, GAE and
 * whitening (ppo_batch_advantages; a response without EOS gets c->no_eos_penalty), and c->epochs
 * passes of mini-batch updates of c->minibatch rows (micro-batches of `micro` rows; a new order
 * from rng for every epoch after the first; entropy measured when c->entropy, else NaN). *batch (may be NULL) receives the batch (caller
 * frees with ppo_batch_free) for storing; st may be NULL. */
rlhf_status ppo_iteration(rlhf_model *policy, rlhf_sampler *smp, rlhf_model *reference,
                          rlhf_model *value, const ppo_config *c, const rlhf_sample_config *sc,
                          rlhf_sample_seq *seqs, int32_t n, int32_t micro, ppo_score_fn score,
                          void *ctx, rlhf_rng *rng, ppo_batch *batch, ppo_iter_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* POLICY_H */
