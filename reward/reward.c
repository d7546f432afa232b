/* reward.c: the reward-model library: Llama 2's gated and whitened combined reward, the margin
 * tables, the binary ranking loss and the safety auxiliary term with their gradients, turning an
 * LM checkpoint into a scalar-head model, encoding (context, response) with the Llama 2-Chat
 * template and left truncation, batched scoring, the pairs forward/backward, Wilson intervals.
 * Contracts are in reward.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reward.h"

/* ---- numerics -------------------------------------------------------------------------------- */

/* log(1 + exp(x)) without overflow. */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* ---- combined reward ------------------------------------------------------------------------- */

float reward_gate(float r_help, float r_safe, bool unsafe_prompt, float safety_threshold,
                  bool *used_safety) {
    bool use = unsafe_prompt || sigmoid((double)r_safe) < (double)safety_threshold;
    if (used_safety) *used_safety = use;
    return use ? r_safe : r_help;
}

reward_combine_opts reward_combine_defaults(void) {
    reward_combine_opts o = {.safety_threshold = 0.15f, .prob_eps = 1e-6f, .whiten = true,
                             .shift_mean = true, .whiten_eps = 1e-8f};
    return o;
}

rlhf_status reward_combine(const float *r_help, const float *r_safe, const uint8_t *unsafe,
                           int64_t n, const reward_combine_opts *o, float *out) {
    reward_combine_opts d = reward_combine_defaults();
    if (!o) o = &d;
    if (n < 0) return RLHF_ERR(RLHF_ERR_ARG, "reward_combine: n = %lld", (long long)n);
    if (n == 0) return RLHF_OK;
    if (!r_help || !r_safe || !out)
        return RLHF_ERR(RLHF_ERR_ARG, "reward_combine: NULL score or output array");
    const double eps = o->prob_eps > 0 && o->prob_eps < 0.5f ? (double)o->prob_eps : 0.0;
    const double lim = eps > 0 ? log((1.0 - eps) / eps) : INFINITY; /* logit(1 - eps) */
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        float rc = reward_gate(r_help[i], r_safe[i], unsafe && unsafe[i], o->safety_threshold,
                               NULL);
        if (!isfinite(rc))
            return RLHF_ERR(RLHF_ERR_ARG, "reward_combine: selected score %lld is %g",
                            (long long)i, (double)rc);
        /* logit(clamp(sigmoid(rc), eps, 1 - eps)) == clamp(rc, -lim, lim) */
        double x = rc > lim ? lim : rc < -lim ? -lim : (double)rc;
        out[i] = (float)x;
        sum += x;
    }
    if (!o->whiten) return RLHF_OK;
    const double mean = sum / (double)n;
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += ((double)out[i] - mean) * ((double)out[i] - mean);
    const double sd = sqrt(ss / (double)n);
    const double div = sd + (double)o->whiten_eps;
    for (int64_t i = 0; i < n; i++) {
        double z = div > 0 ? ((double)out[i] - mean) / div : 0.0;
        out[i] = (float)(o->shift_mean ? z : mean + z);
    }
    return RLHF_OK;
}

/* ---- margins and losses ---------------------------------------------------------------------- */

const char *reward_margin_name(reward_margin_kind k) {
    switch (k) {
    case REWARD_MARGIN_SMALL: return "small";
    case REWARD_MARGIN_LARGE: return "large";
    default: return "none";
    }
}

bool reward_margin_parse(const char *name, reward_margin_kind *out) {
    static const reward_margin_kind all[] = {REWARD_MARGIN_NONE, REWARD_MARGIN_SMALL,
                                             REWARD_MARGIN_LARGE};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (name && strcmp(name, reward_margin_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

float reward_margin(reward_margin_kind k, ds_rating r) {
    /* Llama 2 Table 27: significantly better / better / slightly better / negligibly or unsure */
    static const float small[] = {1.0f, 2.0f / 3.0f, 1.0f / 3.0f, 0.0f};
    static const float large[] = {3.0f, 2.0f, 1.0f, 0.0f};
    int idx;
    switch (r) {
    case DS_RATING_SIGNIFICANTLY: idx = 0; break;
    case DS_RATING_BETTER: idx = 1; break;
    case DS_RATING_SLIGHTLY: idx = 2; break;
    case DS_RATING_NEGLIGIBLY:
    case DS_RATING_UNSURE: idx = 3; break;
    default: return 0.0f; /* no rating: margin 0 */
    }
    if (k == REWARD_MARGIN_SMALL) return small[idx];
    if (k == REWARD_MARGIN_LARGE) return large[idx];
    return 0.0f;
}

double reward_rank_loss(float r_chosen, float r_rejected, float margin, float *d_chosen,
                        float *d_rejected) {
    double d = (double)r_chosen - (double)r_rejected - (double)margin;
    double g = -sigmoid(-d); /* dL/dd */
    if (d_chosen) *d_chosen = (float)g;
    if (d_rejected) *d_rejected = (float)-g;
    return softplus(-d);
}

double reward_safety_aux_loss(float r, int8_t safe, float *d_r) {
    if (safe < 0) {
        if (d_r) *d_r = 0.0f;
        return 0.0;
    }
    if (safe) {
        if (d_r) *d_r = (float)-sigmoid(-(double)r);
        return softplus(-(double)r);
    }
    if (d_r) *d_r = (float)sigmoid((double)r);
    return softplus((double)r);
}

/* ---- from a checkpoint ----------------------------------------------------------------------- */

rlhf_status reward_params_from_checkpoint(const rlhf_model_config *cfg, const float *params,
                                          float score_std, uint64_t seed,
                                          rlhf_model_config *rm_cfg, float **rm_params) {
    *rm_params = NULL;
    rlhf_model_config rc = *cfg;
    rc.head = RLHF_HEAD_SCALAR;
    rc.tied_head = false;
    RLHF_TRY(rlhf_config_validate(&rc));
    rlhf_param_info src[RLHF_P_COUNT], dst[RLHF_P_COUNT];
    const int64_t P_src = rlhf_param_table(cfg, src);
    const int64_t P = rlhf_param_table(&rc, dst);
    float *p = NULL;
    RLHF_TRY(rlhf_alloc((void **)&p, (size_t)P * sizeof(float)));
    if (cfg->head == RLHF_HEAD_SCALAR) {
        memcpy(p, params, (size_t)P_src * sizeof(float));
    } else {
        /* the head is the last tensor of the table: the trunk is the same prefix in both */
        const int64_t trunk = dst[RLHF_P_HEAD].offset;
        RLHF_ASSERT(src[RLHF_P_HEAD].offset == trunk);
        memcpy(p, params, (size_t)trunk * sizeof(float));
        rlhf_rng rng;
        rlhf_rng_seed(&rng, seed, 0x73636f7265ULL /* "score" */);
        for (int64_t j = 0; j < dst[RLHF_P_HEAD].numel; j++)
            p[trunk + j] = score_std * rlhf_rng_normal(&rng);
    }
    *rm_cfg = rc;
    *rm_params = p;
    return RLHF_OK;
}

/* ---- encoding -------------------------------------------------------------------------------- */

rlhf_status reward_encode(const rlhf_tokenizer *tok, const ds_dialogue *context,
                          const char *response, int32_t max_tokens, int32_t **ids, int32_t *n,
                          bool *truncated) {
    *ids = NULL;
    *n = 0;
    if (truncated) *truncated = false;
    const int32_t nc = context->n_turns;
    if (nc < 1 || context->turns[nc - 1].role != DS_ROLE_USER)
        return RLHF_ERR(RLHF_ERR_ARG, "reward_encode: the context must end with a user turn "
                                      "(%d turns)", (int)nc);
    if (max_tokens < 2)
        return RLHF_ERR(RLHF_ERR_ARG, "reward_encode: max_tokens %d < 2", (int)max_tokens);
    ds_turn *turns = malloc((size_t)(nc + 1) * sizeof *turns);
    if (!turns) return RLHF_ERR(RLHF_ERR_NOMEM, "reward_encode: out of memory");
    memcpy(turns, context->turns, (size_t)nc * sizeof *turns);
    turns[nc].role = DS_ROLE_ASSISTANT;
    turns[nc].text = response ? response : "";
    ds_chat_tokens ct = {0};
    rlhf_status st = RLHF_OK;
    bool cut = false;
    /* drop whole leading exchanges (2 turns each) until the rendering fits or only the last user
     * turn is left; the first rendering's per-token turn indices tell how many to drop at once */
    int32_t k = 0;
    for (;;) {
        ds_dialogue d = {.system = context->system, .turns = turns + k, .n_turns = nc + 1 - k};
        ds_chat_free(&ct);
        RLHF_TRY_GOTO(st, ds_chat_render(tok, &d, 0, &ct), done);
        if (ct.n <= max_tokens || k + 1 >= nc) break;
        cut = true;
        int32_t next = k + 2; /* turn indices in ct are relative to turns + k */
        while (next + 1 < nc) {
            int32_t kept = 0;
            for (int32_t i = 0; i < ct.n; i++) kept += ct.turns[i] >= next - k;
            if (kept <= max_tokens) break;
            next += 2;
        }
        k = next < nc ? next : nc - 1;
    }
    int32_t *out = NULL;
    int32_t start = 0, len = ct.n;
    const int32_t bos = rlhf_tokenizer_bos(tok);
    bool keep_bos = false;
    if (ct.n > max_tokens) {
        cut = true;
        keep_bos = bos >= 0 && ct.n > 0 && ct.ids[0] == bos;
        len = keep_bos ? max_tokens - 1 : max_tokens;
        start = ct.n - len;
    }
    out = malloc((size_t)(len + keep_bos) * sizeof *out);
    if (!out) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "reward_encode: out of memory");
        goto done;
    }
    if (keep_bos) out[0] = bos;
    memcpy(out + keep_bos, ct.ids + start, (size_t)len * sizeof *out);
    *ids = out;
    *n = len + keep_bos;
    if (truncated) *truncated = cut;
done:
    ds_chat_free(&ct);
    free(turns);
    return st;
}

/* ---- batches ----------------------------------------------------------------------------------- */

rlhf_status reward_model_score(rlhf_model *m, const int32_t *const *seqs, const int32_t *lens,
                               int32_t n, int32_t batch, float *out) {
    const rlhf_model_config *c = rlhf_model_get_config(m);
    if (c->head != RLHF_HEAD_SCALAR)
        return RLHF_ERR(RLHF_ERR_ARG, "reward_model_score: the model has no scalar head");
    if (batch <= 0) return RLHF_ERR(RLHF_ERR_ARG, "reward_model_score: batch %d", (int)batch);
    int32_t T = 0;
    for (int32_t i = 0; i < n; i++) {
        if (lens[i] < 1 || lens[i] > c->seq_len)
            return RLHF_ERR(RLHF_ERR_ARG, "reward_model_score: sequence %d has %d tokens "
                            "(1..%d allowed)", (int)i, (int)lens[i], (int)c->seq_len);
        if (lens[i] > T) T = lens[i];
    }
    if (n <= 0) return RLHF_OK;
    int32_t *tok = NULL;
    float *val = NULL;
    rlhf_status st = RLHF_OK;
    const int32_t Bm = batch < n ? batch : n;
    tok = calloc((size_t)Bm * T, sizeof *tok); /* (B, T) */
    val = malloc((size_t)Bm * T * sizeof *val); /* (B, T) */
    if (!tok || !val) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "reward_model_score: cannot allocate %d x %d", (int)Bm,
                      (int)T);
        goto done;
    }
    for (int32_t i0 = 0; i0 < n; i0 += Bm) {
        const int32_t B = n - i0 < Bm ? n - i0 : Bm;
        int32_t Tb = 0;
        for (int32_t b = 0; b < B; b++)
            if (lens[i0 + b] > Tb) Tb = lens[i0 + b];
        memset(tok, 0, (size_t)B * Tb * sizeof *tok); /* padding id 0 */
        for (int32_t b = 0; b < B; b++)
            memcpy(tok + (size_t)b * Tb, seqs[i0 + b], (size_t)lens[i0 + b] * sizeof *tok);
        RLHF_TRY_GOTO(st, rlhf_model_forward(m, tok, B, Tb), done);
        RLHF_TRY_GOTO(st, rlhf_model_values(m, val), done);
        for (int32_t b = 0; b < B; b++) out[i0 + b] = val[(size_t)b * Tb + lens[i0 + b] - 1];
    }
done:
    free(tok);
    free(val);
    return st;
}

rlhf_status reward_pairs_step(rlhf_model *m, const reward_pair_tokens *pairs, int32_t n,
                              float aux_weight, float grad_scale, float *r_chosen,
                              float *r_rejected, reward_batch_result *res) {
    const rlhf_model_config *c = rlhf_model_get_config(m);
    if (res) memset(res, 0, sizeof *res);
    if (c->head != RLHF_HEAD_SCALAR)
        return RLHF_ERR(RLHF_ERR_ARG, "reward_pairs_step: the model has no scalar head");
    if (n <= 0) return RLHF_ERR(RLHF_ERR_ARG, "reward_pairs_step: %d pairs", (int)n);
    const int32_t B = 2 * n;
    int32_t T = 0;
    int64_t real = 0;
    for (int32_t i = 0; i < n; i++) {
        const int32_t a = pairs[i].n_chosen, b = pairs[i].n_rejected;
        if (a < 1 || b < 1 || a > c->seq_len || b > c->seq_len)
            return RLHF_ERR(RLHF_ERR_ARG, "reward_pairs_step: pair %d has %d/%d tokens (1..%d "
                            "allowed)", (int)i, (int)a, (int)b, (int)c->seq_len);
        if (a > T) T = a;
        if (b > T) T = b;
        real += a + b;
    }
    int32_t *tok = calloc((size_t)B * T, sizeof *tok); /* (2n, T): chosen rows, rejected rows */
    float *val = malloc((size_t)B * T * sizeof *val);  /* (2n, T) */
    rlhf_status st = RLHF_OK;
    if (!tok || !val) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "reward_pairs_step: cannot allocate %d x %d", (int)B, (int)T);
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        memcpy(tok + (size_t)i * T, pairs[i].chosen, (size_t)pairs[i].n_chosen * sizeof *tok);
        memcpy(tok + (size_t)(n + i) * T, pairs[i].rejected,
               (size_t)pairs[i].n_rejected * sizeof *tok);
    }
    RLHF_TRY_GOTO(st, rlhf_model_forward(m, tok, B, T), done);
    RLHF_TRY_GOTO(st, rlhf_model_values(m, val), done);
    reward_batch_result r = {0};
    r.tokens = real;
    const bool backward = grad_scale != 0.0f;
    for (int32_t i = 0; i < n; i++) {
        const size_t ic = (size_t)i * T + pairs[i].n_chosen - 1;
        const size_t ir = (size_t)(n + i) * T + pairs[i].n_rejected - 1;
        const float rc = val[ic], rr = val[ir];
        if (r_chosen) r_chosen[i] = rc;
        if (r_rejected) r_rejected[i] = rr;
        float dc, dr, ac, ar;
        r.rank_loss += reward_rank_loss(rc, rr, pairs[i].margin, &dc, &dr);
        if (aux_weight != 0.0f) {
            r.aux_loss += reward_safety_aux_loss(rc, pairs[i].chosen_safe, &ac);
            r.aux_loss += reward_safety_aux_loss(rr, pairs[i].rejected_safe, &ar);
        } else {
            ac = ar = 0.0f;
        }
        r.correct += rc > rr;
        if (backward) {
            /* val becomes d(objective)/d(values): nonzero only at each row's last token */
            val[ic] = grad_scale * (dc + aux_weight * ac);
            val[ir] = grad_scale * (dr + aux_weight * ar);
        }
    }
    if (backward) {
        for (int32_t i = 0; i < n; i++) { /* zero every other position */
            for (int32_t t = 0; t < T; t++) {
                if (t != pairs[i].n_chosen - 1) val[(size_t)i * T + t] = 0.0f;
                if (t != pairs[i].n_rejected - 1) val[(size_t)(n + i) * T + t] = 0.0f;
            }
        }
        RLHF_TRY_GOTO(st, rlhf_model_backward_values(m, val), done);
    }
    if (res) *res = r;
done:
    free(tok);
    free(val);
    return st;
}

/* ---- statistics -------------------------------------------------------------------------------- */

void reward_wilson(int64_t k, int64_t n, double z, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    const double nn = (double)n, kk = (double)k, z2 = z * z;
    const double centre = (kk + z2 / 2.0) / (nn + z2);
    const double half = z * sqrt(kk * (nn - kk) / nn + z2 / 4.0) / (nn + z2);
    *lo = centre - half < 0 ? 0 : centre - half;
    *hi = centre + half > 1 ? 1 : centre + half;
}
