/* reward.h: the reward models of the Llama 2-Chat recipe (module prefix `reward_`).
 *
 * A reward model is the trunk (rlhf.h) with the scalar head (RLHF_HEAD_SCALAR): its score of a
 * response is the head's value at the LAST token of "context + response" rendered with the
 * Llama 2-Chat template (ds_chat_render; the response is the final assistant turn, so the last
 * token is its EOS). Two of them are trained from preference pairs: helpfulness and safety.
 *
 * This header holds what other stages need:
 *   - the gated combined reward of Llama 2 (reward_gate, reward_combine), used by rejection
 *     sampling and PPO;
 *   - the margin tables and the binary ranking loss with its gradient;
 *   - turning an LM checkpoint into a reward model, encoding (context, response), scoring a batch;
 *   - one forward/backward over a batch of pairs (chosen and rejected in the same batch);
 *   - Wilson confidence intervals for accuracies.
 * The commands (`rlhf rm train`, `rlhf rm eval`, `rlhf score`) live in rlhf/cli/cmd_rm.c.
 *
 * Conventions as in rlhf.h: functions return rlhf_status, rlhf_last_error() says why; the caller
 * owns what it gets back. Shapes use rlhf.h's letters (B batch rows, T positions). */
#ifndef REWARD_H
#define REWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "ds.h"
#include "rlhf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the combined reward (Llama 2, section 3.2.2 / 3.2.3) ------------------------------------- */

/* Llama 2's gated reward for one sample: R_c = R_s if unsafe_prompt or sigmoid(R_s) < threshold
 * (strictly; the paper's 0.15), else R_h. Raw scalar scores in (the heads' outputs, logits), the
 * chosen raw score out; *used_safety (may be NULL) tells which one was chosen. A NaN r_safe
 * compares false, so it selects R_h unless the prompt is unsafe. Cannot fail. */
float reward_gate(float r_help, float r_safe, bool unsafe_prompt, float safety_threshold,
                  bool *used_safety);

typedef struct reward_combine_opts {
    float safety_threshold; /* 0.15 */
    float prob_eps;         /* 1e-6: R_c's probability sigmoid(R_c) is clamped to
                               [eps, 1 - eps] before the logit, i.e. |logit| <= ~13.8 */
    bool whiten;            /* true: whiten over the n values of the call */
    bool shift_mean;        /* true: (x - mean) / sd; false: keep the mean, x / sd (+ mean
                               restored: mean + (x - mean) / sd) */
    float whiten_eps;       /* 1e-8, added to sd */
} reward_combine_opts;

/* {0.15, 1e-6, true, true, 1e-8}. Cannot fail. */
reward_combine_opts reward_combine_defaults(void);

/* The combined reward of n samples, Llama 2's  R~_c = WHITEN(LOGIT(R_c)):
 *   R_c = reward_gate(r_help[i], r_safe[i], unsafe[i], o->safety_threshold)   (raw scores)
 *   p = clamp(sigmoid(R_c), eps, 1 - eps);  x = logit(p)   (the paper's reward models output
 *       probabilities, ours output logits: this is the identity up to the clamp)
 *   whitening, over exactly the n values of this call (one batch of rollouts, not running stats):
 *       mean = sum x / n,  sd = sqrt(sum (x - mean)^2 / n)   (population variance, in double)
 *       out = (x - mean) / (sd + whiten_eps)          (shift_mean)
 *       out = mean + (x - mean) / (sd + whiten_eps)   (!shift_mean)
 *   n == 1 gives 0 with shift_mean (x - mean is 0).
 * unsafe (n bytes, nonzero = the prompt is tagged unsafe) may be NULL (none). o NULL = defaults.
 * out may alias r_help or r_safe. RLHF_ERR_ARG for n < 0, a NULL array with n > 0, or a
 * non-finite selected score (naming its index). */
rlhf_status reward_combine(const float *r_help, const float *r_safe, const uint8_t *unsafe,
                           int64_t n, const reward_combine_opts *o, float *out);

/* ---- margins and the ranking loss ------------------------------------------------------------- */

typedef enum reward_margin_kind {
    REWARD_MARGIN_NONE = 0, /* m = 0 for every pair */
    REWARD_MARGIN_SMALL,    /* Llama 2 Table 27 "margin small": 1, 2/3, 1/3, 0 */
    REWARD_MARGIN_LARGE,    /* "margin large": 3, 2, 1, 0 */
} reward_margin_kind;

/* "none", "small", "large"; parse returns false for other names. */
const char *reward_margin_name(reward_margin_kind k);
bool reward_margin_parse(const char *name, reward_margin_kind *out);
/* The margin m(r) of a rating: significantly better, better, slightly better, negligibly
 * better / unsure -> the table's four values; no rating (DS_RATING_NONE) -> 0. Cannot fail. */
float reward_margin(reward_margin_kind k, ds_rating r);

/* Binary ranking loss of one pair, L = -log sigmoid(r_c - r_r - m), computed stably as
 * softplus(-(r_c - r_r - m)) in double. d_chosen = dL/dr_c = -sigmoid(-(r_c - r_r - m)),
 * d_rejected = -d_chosen (either pointer may be NULL). Cannot fail. */
double reward_rank_loss(float r_chosen, float r_rejected, float margin, float *d_chosen,
                        float *d_rejected);

/* The safety auxiliary term (our choice; the paper names it but gives no formula): the score is
 * read as the logit of "this response is safe", with a binary cross-entropy
 *   safe = 1: -log sigmoid(r),   safe = 0: -log sigmoid(-r),   safe < 0 (unknown): 0,
 * which pushes safe responses above 0 and unsafe ones below it, so that sigmoid(R_s) is the
 * probability that reward_gate's 0.15 threshold reads. *d_r (may be NULL) gets dL/dr. */
double reward_safety_aux_loss(float r, int8_t safe, float *d_r);

/* ---- from an LM checkpoint to a reward model ------------------------------------------------- */

/* A reward-model config and parameters from a checkpoint's (config, params in table order):
 * - an LM-head model: the trunk is copied, the LM head dropped (tied or not), and the score head
 *   (1, C) drawn from N(0, score_std) with seed (small: the initial scores are near 0);
 * - a scalar-head model (already a reward model): copied as is.
 * *rm_params is newly allocated (rlhf_free); rm_cfg gets head SCALAR, trainable as given. */
rlhf_status reward_params_from_checkpoint(const rlhf_model_config *cfg, const float *params,
                                          float score_std, uint64_t seed,
                                          rlhf_model_config *rm_cfg, float **rm_params);

/* ---- encoding (context, response) ----------------------------------------------------------- */

/* Renders the dialogue `context` (system, user/assistant turns ending with a user turn) followed
 * by `response` as the final assistant turn with the Llama 2-Chat template, into at most
 * max_tokens ids (newly allocated *ids, free()), whose last id is the response's EOS.
 * When the rendering is longer than max_tokens it is truncated from the LEFT of the context:
 * first whole earlier (user, assistant) exchanges are dropped (the system prompt stays with the
 * first kept user turn); if it is still too long, the ids are cut to BOS + the last
 * max_tokens - 1 ids (cutting into the last user turn, or the response itself when that alone is
 * too long). *truncated (may be NULL) says whether anything was dropped.
 * RLHF_ERR_ARG when context is empty or does not end with a user turn, or max_tokens < 2. */
rlhf_status reward_encode(const rlhf_tokenizer *tok, const ds_dialogue *context,
                          const char *response, int32_t max_tokens, int32_t **ids, int32_t *n,
                          bool *truncated);

/* ---- scoring and training on batches ------------------------------------------------------------ */

/* Scores n token sequences (seqs[i] has lens[i] >= 1 ids, at most the model's max_T) with a
 * scalar-head model: rows are processed in batches of `batch` rows (at most the model's max_B),
 * each right-padded to its longest row (causal attention: padding after the last token does not
 * change it), and out[i] is the value at position lens[i] - 1. RLHF_ERR_ARG for a non-scalar
 * model or bad lengths; the model's own errors for shapes beyond what it was created for. */
rlhf_status reward_model_score(rlhf_model *m, const int32_t *const *seqs, const int32_t *lens,
                               int32_t n, int32_t batch, float *out);

/* One pair, tokenized. */
typedef struct reward_pair_tokens {
    const int32_t *chosen, *rejected; /* (n_chosen), (n_rejected) ids */
    int32_t n_chosen, n_rejected;
    float margin;                     /* m(r) of the pair */
    int8_t chosen_safe, rejected_safe; /* 1 safe, 0 unsafe, -1 unknown (no auxiliary term) */
} reward_pair_tokens;

typedef struct reward_batch_result {
    double rank_loss; /* sum over the pairs of the ranking loss */
    double aux_loss;  /* sum over labelled responses of the safety auxiliary term */
    int32_t correct;  /* pairs with r_c > r_r */
    int64_t tokens;   /* real (unpadded) tokens processed */
} reward_batch_result;

/* Forward of n pairs as ONE batch of 2n rows (chosen in rows 0..n-1, rejected in n..2n-1),
 * right-padded to the longest; model max_B >= 2n. With grad_scale != 0 the gradient of
 *   grad_scale * sum_pairs (rank_loss + aux_weight * (aux(r_c) + aux(r_r)))
 * is accumulated into the model's gradients (zero them between optimizer steps). r_chosen and
 * r_rejected (n each, may be NULL) get the scores; *res (may be NULL) the sums. */
rlhf_status reward_pairs_step(rlhf_model *m, const reward_pair_tokens *pairs, int32_t n,
                              float aux_weight, float grad_scale, float *r_chosen,
                              float *r_rejected, reward_batch_result *res);

/* ---- statistics --------------------------------------------------------------------------------- */

/* Wilson score interval of k successes in n trials at normal quantile z (1.96 for 95%):
 * centre (k + z^2/2) / (n + z^2), half-width z sqrt(k(n-k)/n + z^2/4) / (n + z^2).
 * n == 0 gives [0, 1]. Cannot fail. */
void reward_wilson(int64_t k, int64_t n, double z, double *lo, double *hi);

#ifdef __cplusplus
}
#endif
#endif /* REWARD_H */
