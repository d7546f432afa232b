/* ppo.c: the arithmetic of PPO under a KL penalty (Llama 2-Chat section 3.2.3) as pure functions:
 * per-token KL estimates, per-token rewards (KL penalty + the response's reward at its last
 * token), GAE, whitening, the clipped policy and value losses with their gradients, entropy and
 * explained variance. No model, store or reward model here: callers pass arrays (ppo_step.c runs
 * them on the trunk; the CLI brings the rewards). Sums run in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

ppo_config ppo_config_default(void) {
    ppo_config c = {
        .batch = 512,
        .minibatch = 64,
        .epochs = 1,
        .clip = 0.2f,
        .value_clip = 0.2f,
        .beta = 0.01f,
        .kl = PPO_KL_K1,
        .gamma = 1.0f,
        .lambda = 0.95f,
        .lr = 1e-6f,
        .adamw = rlhf_adamw_default(),
        .no_eos_penalty = 0.0f,
        .kl_target = 0.0f,
        .entropy = true,
    };
    return c;
}

float ppo_kl_token(float logp, float logp_ref, ppo_kl_kind kind) {
    if (kind == PPO_KL_K3) {
        double d = (double)logp_ref - (double)logp; /* log(pi_ref / pi) */
        return (float)(expm1(d) - d);
    }
    return logp - logp_ref;
}

rlhf_status ppo_rewards(const float *logp, const float *logp_ref, int32_t n, float score,
                        float beta, ppo_kl_kind kind, float *rewards, float *kl_sum) {
    if (n < 1) return RLHF_ERR(RLHF_ERR_ARG, "ppo_rewards: empty response (n = %d)", n);
    if (!isfinite(score)) return RLHF_ERR(RLHF_ERR_ARG, "ppo_rewards: reward is not finite");
    double s = 0;
    for (int32_t j = 0; j < n; j++) {
        float kl = ppo_kl_token(logp[j], logp_ref[j], kind);
        s += kl;
        rewards[j] = -beta * kl;
    }
    rewards[n - 1] += score;
    if (kl_sum) *kl_sum = (float)s;
    return RLHF_OK;
}

rlhf_status ppo_gae(const float *rewards, const float *values, int32_t n, float gamma,
                    float lambda, float *adv, float *ret) {
    if (n < 1) return RLHF_ERR(RLHF_ERR_ARG, "ppo_gae: empty response (n = %d)", n);
    double next_v = 0, next_a = 0; /* the episode ends after the last token */
    for (int32_t j = n - 1; j >= 0; j--) {
        double delta = (double)rewards[j] + gamma * next_v - values[j];
        double a = delta + (double)gamma * lambda * next_a;
        adv[j] = (float)a;
        ret[j] = (float)(a + values[j]);
        next_v = values[j];
        next_a = a;
    }
    return RLHF_OK;
}

rlhf_status ppo_whiten(const float *x, const float *mask, int64_t n, bool shift_mean, float *out) {
    double s = 0, cnt = 0;
    for (int64_t i = 0; i < n; i++)
        if (!mask || mask[i] != 0) {
            s += x[i];
            cnt++;
        }
    if (cnt < 2) return RLHF_ERR(RLHF_ERR_ARG, "ppo_whiten: %.0f values (need at least 2)", cnt);
    double mean = s / cnt, ss = 0;
    for (int64_t i = 0; i < n; i++)
        if (!mask || mask[i] != 0) ss += ((double)x[i] - mean) * ((double)x[i] - mean);
    double inv = 1.0 / (sqrt(ss / cnt) + 1e-8);
    for (int64_t i = 0; i < n; i++) {
        if (mask && mask[i] == 0) {
            out[i] = x[i];
            continue;
        }
        double z = ((double)x[i] - mean) * inv;
        out[i] = (float)(shift_mean ? z : mean + z);
    }
    return RLHF_OK;
}

rlhf_status ppo_policy_loss(const float *logp, const float *logp_old, const float *adv,
                            const float *mask, int64_t n, float clip, float *dlogp,
                            ppo_policy_stats *st) {
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) cnt += !mask || mask[i] != 0;
    if (cnt == 0) return RLHF_ERR(RLHF_ERR_ARG, "ppo_policy_loss: no masked token among %lld",
                                  (long long)n);
    double loss = 0, nclip = 0, akl = 0, rsum = 0, rdev = 0;
    const double lo = 1.0 - clip, hi = 1.0 + clip;
    for (int64_t i = 0; i < n; i++) {
        if (mask && mask[i] == 0) {
            if (dlogp) dlogp[i] = 0.0f;
            continue;
        }
        double lr = (double)logp[i] - (double)logp_old[i];
        double r = exp(lr), a = adv[i];
        double rc = r < lo ? lo : (r > hi ? hi : r);
        double l1 = -a * r, l2 = -a * rc;
        bool clipped = l2 > l1;
        loss += clipped ? l2 : l1;
        nclip += clipped;
        akl += (r - 1.0) - lr;
        rsum += r;
        if (fabs(r - 1.0) > rdev) rdev = fabs(r - 1.0);
        if (dlogp) dlogp[i] = clipped ? 0.0f : (float)(-a * r / (double)cnt);
    }
    if (st) {
        st->loss = loss / cnt;
        st->clip_frac = nclip / cnt;
        st->approx_kl = akl / cnt;
        st->ratio_mean = rsum / cnt;
        st->ratio_max_dev = rdev;
        st->n = cnt;
    }
    return RLHF_OK;
}

rlhf_status ppo_value_loss(const float *v, const float *v_old, const float *ret, const float *mask,
                           int64_t n, float clip, float *dv, double *loss, double *clip_frac) {
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) cnt += !mask || mask[i] != 0;
    if (cnt == 0) return RLHF_ERR(RLHF_ERR_ARG, "ppo_value_loss: no masked token among %lld",
                                  (long long)n);
    double sum = 0, nclip = 0;
    for (int64_t i = 0; i < n; i++) {
        if (mask && mask[i] == 0) {
            if (dv) dv[i] = 0.0f;
            continue;
        }
        double e1 = (double)v[i] - ret[i];
        double g = e1; /* d(0.5 e^2)/dv of the term taken */
        double l = e1 * e1;
        if (clip > 0) {
            double d = (double)v[i] - v_old[i];
            double dc = d < -clip ? -clip : (d > clip ? clip : d);
            double e2 = (double)v_old[i] + dc - ret[i];
            if (e2 * e2 > l) { /* the clipped term is taken; it is constant in v when clipped */
                l = e2 * e2;
                g = dc == d ? e2 : 0.0;
                nclip++;
            }
        }
        sum += 0.5 * l;
        if (dv) dv[i] = (float)(g / (double)cnt);
    }
    if (loss) *loss = sum / cnt;
    if (clip_frac) *clip_frac = nclip / cnt;
    return RLHF_OK;
}

double ppo_entropy(const float *logits, int32_t V) {
    double mx = -INFINITY;
    for (int32_t i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    double z = 0, zl = 0;
    for (int32_t i = 0; i < V; i++) {
        double d = (double)logits[i] - mx, e = exp(d);
        z += e;
        zl += e * d;
    }
    /* H = log z - E[d] */
    return log(z) - zl / z;
}

double ppo_explained_variance(const float *v, const float *ret, const float *mask, int64_t n) {
    double cnt = 0, sr = 0, se = 0;
    for (int64_t i = 0; i < n; i++)
        if (!mask || mask[i] != 0) {
            cnt++;
            sr += ret[i];
            se += (double)ret[i] - v[i];
        }
    if (cnt < 2) return NAN;
    double mr = sr / cnt, me = se / cnt, vr = 0, ve = 0;
    for (int64_t i = 0; i < n; i++)
        if (!mask || mask[i] != 0) {
            double r = (double)ret[i] - mr, e = (double)ret[i] - v[i] - me;
            vr += r * r;
            ve += e * e;
        }
    if (vr == 0) return NAN;
    return 1.0 - ve / vr;
}
