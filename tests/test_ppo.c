/* test_ppo.c: PPO's arithmetic (policy/ppo.c) against hand-computed values (issue 7, acceptance 1):
 *  - KL estimates k1/k3 and the per-token rewards (penalty per token, reward at the last token);
 *  - GAE on short trajectories (and lambda = 1 being the Monte-Carlo return minus V);
 *  - whitening: hand value, then mean 0 / sd 1 on random data, masked entries untouched;
 *  - the clipped surrogate at ratios inside and outside the clip range, for both signs of the
 *    advantage, its gradient (hand values and finite differences) and its statistics;
 *  - ratio exactly 1 -> clip fraction 0, approx-KL 0;
 *  - the clipped value loss, entropy, explained variance;
 *  - bad input (empty response, no masked token) is an error, not a crash. */
#include "policy.h"
#include "test.h"

#define NEAR(a, b, tol) (fabs((double)(a) - (double)(b)) <= (tol))

static void test_kl_rewards(void) {
    CHECK(ppo_kl_token(-1.0f, -1.5f, PPO_KL_K1) == 0.5f);
    CHECK(ppo_kl_token(-2.0f, -2.0f, PPO_KL_K1) == 0.0f);
    CHECK(ppo_kl_token(-2.0f, -2.0f, PPO_KL_K3) == 0.0f);
    /* k3 with d = ref - logp = -0.5: e^-0.5 - 1 + 0.5 */
    CHECK(NEAR(ppo_kl_token(-1.0f, -1.5f, PPO_KL_K3), 0.10653066, 1e-7));
    CHECK(ppo_kl_token(-1.5f, -1.0f, PPO_KL_K3) > 0.0f); /* k3 >= 0 both ways */
    CHECK(ppo_kl_token(-1.5f, -1.0f, PPO_KL_K1) == -0.5f);

    const float lp[2] = {-1.0f, -2.0f}, ref[2] = {-1.5f, -2.0f};
    float r[2], kl = 0;
    CHECK_OK(ppo_rewards(lp, ref, 2, 3.0f, 0.1f, PPO_KL_K1, r, &kl));
    CHECK(NEAR(r[0], -0.05, 1e-7) && NEAR(r[1], 3.0, 1e-7) && NEAR(kl, 0.5, 1e-7));
    CHECK_OK(ppo_rewards(lp, ref, 2, 3.0f, 0.1f, PPO_KL_K3, r, NULL));
    CHECK(NEAR(r[0], -0.010653066, 1e-8) && NEAR(r[1], 3.0, 1e-7));
    /* one token: penalty and reward on the same token */
    CHECK_OK(ppo_rewards(lp, ref, 1, 2.0f, 1.0f, PPO_KL_K1, r, NULL));
    CHECK(NEAR(r[0], 1.5, 1e-7));
    CHECK(ppo_rewards(lp, ref, 0, 1.0f, 0.1f, PPO_KL_K1, r, NULL) == RLHF_ERR_ARG);
    CHECK(ppo_rewards(lp, ref, 2, NAN, 0.1f, PPO_KL_K1, r, NULL) == RLHF_ERR_ARG);
}

static void test_gae(void) {
    float adv[3], ret[3];
    /* gamma 1, lambda 0.5: deltas (0.1, 0.1, 0.3); A2 = .3, A1 = .1+.5*.3, A0 = .1+.5*.25 */
    const float r1[3] = {0, 0, 1}, v1[3] = {0.5f, 0.6f, 0.7f};
    CHECK_OK(ppo_gae(r1, v1, 3, 1.0f, 0.5f, adv, ret));
    CHECK(NEAR(adv[0], 0.225, 1e-6) && NEAR(adv[1], 0.25, 1e-6) && NEAR(adv[2], 0.3, 1e-6));
    CHECK(NEAR(ret[0], 0.725, 1e-6) && NEAR(ret[1], 0.85, 1e-6) && NEAR(ret[2], 1.0, 1e-6));
    /* gamma 0.9, lambda 0.95: delta1 = 2 - 1 = 1, delta0 = 1 + 0.9*1 - 0.5 = 1.4, A0 = 1.4+.855 */
    const float r2[2] = {1, 2}, v2[2] = {0.5f, 1.0f};
    CHECK_OK(ppo_gae(r2, v2, 2, 0.9f, 0.95f, adv, ret));
    CHECK(NEAR(adv[1], 1.0, 1e-6) && NEAR(adv[0], 2.255, 1e-6));
    CHECK(NEAR(ret[1], 2.0, 1e-6) && NEAR(ret[0], 2.755, 1e-6));
    /* lambda 1, gamma 1: A_j = sum_{k>=j} r_k - V_j */
    const float r3[3] = {-0.1f, 0.2f, 1.0f}, v3[3] = {0.3f, -0.4f, 0.9f};
    CHECK_OK(ppo_gae(r3, v3, 3, 1.0f, 1.0f, adv, ret));
    CHECK(NEAR(adv[0], 1.1 - 0.3, 1e-6) && NEAR(adv[1], 1.2 + 0.4, 1e-6) &&
          NEAR(adv[2], 1.0 - 0.9, 1e-6));
    CHECK(NEAR(ret[0], 1.1, 1e-6) && NEAR(ret[1], 1.2, 1e-6) && NEAR(ret[2], 1.0, 1e-6));
    CHECK(ppo_gae(r3, v3, 0, 1.0f, 1.0f, adv, ret) == RLHF_ERR_ARG);
}

static void test_whiten(void) {
    const float x[5] = {1, 2, 3, 4, 100}, m[5] = {1, 1, 1, 1, 0};
    float o[5];
    CHECK_OK(ppo_whiten(x, m, 5, true, o));
    /* mean 2.5, population sd sqrt(1.25) */
    CHECK(NEAR(o[0], -1.5 / sqrt(1.25), 1e-6) && NEAR(o[3], 1.5 / sqrt(1.25), 1e-6));
    CHECK(o[4] == 100.0f);
    CHECK_OK(ppo_whiten(x, m, 5, false, o));
    CHECK(NEAR(o[0], 2.5 - 1.5 / sqrt(1.25), 1e-6));
    enum { N = 1000 };
    static float a[N], b[N];
    rlhf_rng rng;
    rlhf_rng_seed(&rng, 7, 1);
    for (int i = 0; i < N; i++) a[i] = 3.0f + 5.0f * rlhf_rng_normal(&rng);
    CHECK_OK(ppo_whiten(a, NULL, N, true, b));
    double s = 0, ss = 0;
    for (int i = 0; i < N; i++) s += b[i];
    for (int i = 0; i < N; i++) ss += (b[i] - s / N) * (b[i] - s / N);
    CHECKF(fabs(s / N) < 1e-6 && fabs(sqrt(ss / N) - 1.0) < 1e-5, "mean %g sd %g", s / N,
           sqrt(ss / N));
    CHECK_OK(ppo_whiten(a, NULL, N, true, a)); /* in place */
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(ppo_whiten(x, m, 1, true, o) == RLHF_ERR_ARG);
}

static void test_policy_loss(void) {
    /* tokens: (ratio, A) = (1.5, 1) clipped; (0.5, 1) unclipped; (0.5, -1) clipped;
     * (1.1, -2) inside the range; (1.5, -1) outside but unclipped (pessimistic); a masked one */
    const float old[6] = {-1, -1, -1, -1, -1, -1};
    float lp[6] = {-1 + logf(1.5f), -1 + logf(0.5f), -1 + logf(0.5f), -1 + logf(1.1f),
                   -1 + logf(1.5f), 5.0f};
    const float adv[6] = {1, 1, -1, -2, -1, 7}, mask[6] = {1, 1, 1, 1, 1, 0};
    float d[6];
    ppo_policy_stats st;
    CHECK_OK(ppo_policy_loss(lp, old, adv, mask, 6, 0.2f, d, &st));
    CHECKF(NEAR(st.loss, 2.8 / 5, 1e-6), "loss %g", st.loss);
    CHECK(st.n == 5 && NEAR(st.clip_frac, 0.4, 1e-12));
    CHECK(d[0] == 0.0f && d[2] == 0.0f && d[5] == 0.0f);
    CHECK(NEAR(d[1], -0.5 / 5, 1e-6) && NEAR(d[3], 2.2 / 5, 1e-6) && NEAR(d[4], 1.5 / 5, 1e-6));
    CHECK(NEAR(st.ratio_max_dev, 0.5, 1e-6));
    /* finite differences of the loss agree with the gradient on every token */
    for (int i = 0; i < 5; i++) {
        const float h = 1e-3f;
        ppo_policy_stats a, b;
        float save = lp[i];
        lp[i] = save + h;
        CHECK_OK(ppo_policy_loss(lp, old, adv, mask, 6, 0.2f, NULL, &a));
        lp[i] = save - h;
        CHECK_OK(ppo_policy_loss(lp, old, adv, mask, 6, 0.2f, NULL, &b));
        lp[i] = save;
        double fd = (a.loss - b.loss) / (2.0 * h);
        CHECKF(NEAR(fd, d[i], 2e-4), "token %d: fd %g grad %g", i, fd, d[i]);
    }
    /* ratio exactly 1: no clipping, approx-KL 0, loss = -mean(A), grad -A/N */
    CHECK_OK(ppo_policy_loss(old, old, adv, mask, 6, 0.2f, d, &st));
    CHECK(st.clip_frac == 0.0 && st.approx_kl == 0.0 && st.ratio_max_dev == 0.0);
    CHECK(NEAR(st.loss, -(1 + 1 - 1 - 2 - 1) / 5.0, 1e-7) && NEAR(d[3], 2.0 / 5, 1e-7));
    /* approx-KL (k3) of a known ratio: r = 1.5 -> 0.5 - log 1.5 */
    CHECK_OK(ppo_policy_loss(lp, old, adv, NULL, 1, 0.2f, NULL, &st));
    CHECK(NEAR(st.approx_kl, 0.5 - log(1.5), 1e-6));
    CHECK(ppo_policy_loss(lp, old, adv, (const float[1]){0}, 1, 0.2f, d, &st) == RLHF_ERR_ARG);
}

static void test_value_loss(void) {
    const float v[4] = {0.5f, 0.1f, -0.5f, 9.0f}, vo[4] = {0, 0, 0, 0}, r[4] = {1, 1, 1, 1};
    const float m[4] = {1, 1, 1, 0};
    float d[4];
    double loss, cf;
    CHECK_OK(ppo_value_loss(v, vo, r, m, 4, 0.2f, d, &loss, &cf));
    CHECKF(NEAR(loss, 0.5 * 3.7 / 3, 1e-6), "loss %g", loss);
    CHECK(NEAR(cf, 1.0 / 3, 1e-12));
    CHECK(d[0] == 0.0f && NEAR(d[1], -0.3, 1e-6) && NEAR(d[2], -0.5, 1e-6) && d[3] == 0.0f);
    CHECK_OK(ppo_value_loss(v, vo, r, m, 4, 0.0f, d, &loss, &cf)); /* no clipping */
    CHECK(NEAR(loss, 0.5 * (0.25 + 0.81 + 2.25) / 3, 1e-6) && cf == 0.0);
    CHECK(NEAR(d[0], -0.5 / 3, 1e-6));
    CHECK(ppo_value_loss(v, vo, r, m, 0, 0.2f, d, &loss, &cf) == RLHF_ERR_ARG);
}

static void test_entropy_ev(void) {
    const float u[4] = {0.3f, 0.3f, 0.3f, 0.3f};
    CHECK(NEAR(ppo_entropy(u, 4), log(4.0), 1e-12));
    const float l2[2] = {0.0f, logf(3.0f)}; /* p = (0.25, 0.75) */
    CHECK(NEAR(ppo_entropy(l2, 2), -(0.25 * log(0.25) + 0.75 * log(0.75)), 1e-7));
    const float big[2] = {1000.0f, 1000.0f}; /* no overflow */
    CHECK(NEAR(ppo_entropy(big, 2), log(2.0), 1e-12));

    const float ret[3] = {1, 2, 3}, v0[3] = {0, 0, 0}, v1[3] = {1.5f, 2, 2.5f};
    CHECK(ppo_explained_variance(ret, ret, NULL, 3) == 1.0);
    CHECK(NEAR(ppo_explained_variance(v0, ret, NULL, 3), 0.0, 1e-12));
    CHECK(NEAR(ppo_explained_variance(v1, ret, NULL, 3), 0.75, 1e-7));
    CHECK(isnan(ppo_explained_variance(v0, v0, NULL, 3)));
}

int main(void) {
    test_kl_rewards();
    test_gae();
    test_whiten();
    test_policy_loss();
    test_value_loss();
    test_entropy_ev();
    TEST_MAIN_END();
}
