/* test_ppo_step.c: PPO on the trunk (policy/ppo_step.c) with tiny random models, seconds:
 *  - layout: the log-probs of the batch's response positions are the sampler's log-probs (so
 *    the rows are aligned), masks count the response tokens;
 *  - policy == reference: KL exactly 0 on every token; the first mini-batch's ratio exactly 1
 *    (acceptance 1), and not 1 in later mini-batches once the policy moved;
 *  - micro-batching: a mini-batch split in micro-batches of 1 row updates the weights as one of
 *    all rows does (to float rounding), so the token weighting is right;
 *  - learning (acceptance 2, synthetic task "reward = fraction of token 5 in the response"):
 *    reward on held-out prompts rises over iterations; with a large beta the KL to the reference
 *    stays far smaller and the reward moves less. */
#include "policy.h"
#include "test.h"

enum { V = 16, TSEQ = 24, NP = 16, PLEN = 3, MAXNEW = 8, TARGET = 5 };

static rlhf_model_config tiny_config(rlhf_head head, bool trainable) {
    rlhf_model_config c = rlhf_config_default();
    c.dim = 32;
    c.hidden_dim = 64;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.vocab_size = V;
    c.seq_len = TSEQ;
    c.head = head;
    c.trainable = trainable;
    return c;
}

static rlhf_model *new_model(rlhf_head head, bool trainable, int B, uint64_t seed) {
    rlhf_model_config c = tiny_config(head, trainable);
    rlhf_model *m = NULL;
    CHECK_OK(rlhf_model_init(&m, &c, NULL, B, TSEQ));
    if (!m) exit(1);
    CHECK_OK(rlhf_model_init_random(m, seed));
    return m;
}

static void copy_params(rlhf_model *dst, rlhf_model *src) {
    int64_t P = rlhf_model_num_params(src);
    float *p = malloc((size_t)P * sizeof(float));
    CHECK_OK(rlhf_model_get_params(src, p));
    CHECK_OK(rlhf_model_set_params(dst, p));
    free(p);
}

/* reward = fraction of TARGET among the response tokens */
static rlhf_status frac_target(void *ctx, const rlhf_sample_seq *seqs, int32_t n, float *score) {
    (void)ctx;
    for (int32_t i = 0; i < n; i++) {
        int c = 0;
        for (int32_t j = 0; j < seqs[i].n_out; j++) c += seqs[i].out[j] == TARGET;
        score[i] = (float)c / (float)seqs[i].n_out;
    }
    return RLHF_OK;
}

typedef struct rollouts {
    int32_t prompts[NP][PLEN];
    int32_t out[NP][MAXNEW];
    float logp[NP][MAXNEW];
    rlhf_sample_seq seqs[NP];
} rollouts;

/* prompts BOS + two ids drawn from `seed`; sample seeds from (seed, iteration) */
static void rollouts_setup(rollouts *r, uint64_t seed, int iter) {
    rlhf_rng g;
    rlhf_rng_seed(&g, seed, 3);
    for (int i = 0; i < NP; i++) {
        r->prompts[i][0] = 1;
        for (int t = 1; t < PLEN; t++) r->prompts[i][t] = 3 + (int32_t)(rlhf_rng_u32(&g) % (V - 3));
        r->seqs[i] = (rlhf_sample_seq){.prompt = r->prompts[i], .n_prompt = PLEN,
                                       .seed = seed * 1000003u + (uint64_t)iter * 101u + (uint64_t)i,
                                       .out = r->out[i], .logp = r->logp[i]};
    }
}

static rlhf_sample_config sample_cfg(void) {
    return (rlhf_sample_config){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .max_new = MAXNEW,
                                .eos_id = 2};
}

/* mean reward on held-out prompts (seed 999), 4 draws each */
static double heldout_reward(rlhf_sampler *smp) {
    double s = 0;
    int cnt = 0;
    for (int k = 0; k < 4; k++) {
        rollouts r;
        rollouts_setup(&r, 999, k);
        rlhf_sample_config sc = sample_cfg();
        CHECK_OK(rlhf_sampler_run(smp, &sc, r.seqs, NP, NULL, NULL));
        float sc_[NP];
        frac_target(NULL, r.seqs, NP, sc_);
        for (int i = 0; i < NP; i++, cnt++) s += sc_[i];
    }
    return s / cnt;
}

static void test_first_iteration(void) {
    rlhf_model *pol = new_model(RLHF_HEAD_LM, true, 4, 11);
    rlhf_model *ref = new_model(RLHF_HEAD_LM, false, 4, 99);
    rlhf_model *val = new_model(RLHF_HEAD_SCALAR, true, 4, 12);
    copy_params(ref, pol);
    rlhf_sampler *smp = NULL;
    CHECK_OK(rlhf_sampler_init(&smp, pol, NP));
    ppo_config c = ppo_config_default();
    c.minibatch = 8;
    c.lr = 1e-2f;
    rollouts r;
    rollouts_setup(&r, 1, 0);
    rlhf_sample_config sc = sample_cfg();
    rlhf_rng rng;
    rlhf_rng_seed(&rng, 5, 7);
    ppo_batch b;
    ppo_iter_stats st;
    CHECK_OK(ppo_iteration(pol, smp, ref, val, &c, &sc, r.seqs, NP, 4, frac_target, NULL, &rng,
                           &b, &st));
    CHECK(st.updates == 2);
    CHECKF(st.first_ratio_dev == 0.0, "first mini-batch max |ratio-1| = %g", st.first_ratio_dev);
    CHECK(st.adv.kl_mean == 0.0);
    int64_t ntok = 0, nmask = 0;
    double worst = 0;
    int kl_nonzero = 0;
    for (int i = 0; i < NP; i++) {
        ntok += r.seqs[i].n_out;
        CHECK(b.kl[i] == 0.0f);
        for (int j = 0; j < r.seqs[i].n_out; j++) {
            size_t o = (size_t)i * b.T + PLEN - 1 + j;
            CHECK(b.mask[o] == 1.0f && b.targets[o] == r.seqs[i].out[j]);
            kl_nonzero += b.logp_old[o] != b.logp_ref[o];
            double d = fabs((double)b.logp_old[o] - r.seqs[i].logp[j]);
            if (d > worst) worst = d;
        }
    }
    for (int64_t k = 0; k < (int64_t)b.B * b.T; k++) nmask += b.mask[k] != 0;
    CHECK(ntok == nmask && kl_nonzero == 0);
    CHECKF(worst < 1e-4, "training forward vs sampler log-probs differ by %g", worst);
    /* after two updates the policy moved: a second iteration's later mini-batches see ratio != 1,
     * its KL to the reference is no longer 0, yet its first mini-batch has ratio exactly 1 */
    ppo_batch_free(&b);
    rollouts_setup(&r, 1, 1);
    CHECK_OK(ppo_iteration(pol, smp, ref, val, &c, &sc, r.seqs, NP, 4, frac_target, NULL, &rng,
                           NULL, &st));
    CHECK(st.first_ratio_dev == 0.0);
    CHECKF(st.adv.kl_mean != 0.0, "kl %g", st.adv.kl_mean);
    CHECKF(st.approx_kl > 0.0, "approx-kl %g", st.approx_kl);
    CHECK(isfinite(st.value_loss) && isfinite(st.entropy) && st.entropy > 0 &&
          st.entropy <= log(V) + 1e-9);
    rlhf_sampler_free(smp);
    rlhf_model_free(pol);
    rlhf_model_free(ref);
    rlhf_model_free(val);
}

/* the same mini-batch update with micro-batches of 1 and of 8 rows gives the same weights */
static void test_micro(void) {
    rlhf_model *pol1 = new_model(RLHF_HEAD_LM, true, 8, 21);
    rlhf_model *pol8 = new_model(RLHF_HEAD_LM, true, 8, 21);
    rlhf_model *val1 = new_model(RLHF_HEAD_SCALAR, true, 8, 22);
    rlhf_model *val8 = new_model(RLHF_HEAD_SCALAR, true, 8, 22);
    rlhf_sampler *smp = NULL;
    CHECK_OK(rlhf_sampler_init(&smp, pol1, 8));
    rollouts r;
    rollouts_setup(&r, 2, 0);
    rlhf_sample_config sc = sample_cfg();
    CHECK_OK(rlhf_sampler_run(smp, &sc, r.seqs, 8, NULL, NULL));
    ppo_config c = ppo_config_default();
    c.lr = 1e-3f;
    c.adamw.clip_norm = 0; /* a per-step clip would hide a scaling error */
    c.minibatch = 8;
    ppo_batch b;
    CHECK_OK(ppo_batch_build(r.seqs, 8, &b));
    CHECK_OK(ppo_batch_logprobs(pol1, &b, 8, 8, b.logp_old));
    CHECK_OK(ppo_batch_values(val1, &b, 8, 8, b.values));
    memcpy(b.logp_ref, b.logp_old, (size_t)b.B * b.T * sizeof(float));
    float score[8];
    frac_target(NULL, r.seqs, 8, score);
    score[0] += 1.0f; /* make sure the advantages are not all equal */
    CHECK_OK(ppo_batch_advantages(&b, score, NULL, &c, NULL));
    /* perturb the old log-probs so that some ratios are clipped */
    for (int64_t k = 0; k < (int64_t)b.B * b.T; k += 3)
        if (b.mask[k] != 0) b.logp_old[k] -= 0.5f;
    ppo_update_stats s1, s8;
    CHECK_OK(ppo_minibatch_update(pol1, val1, &b, 0, 8, 1, &c, false, &s1));
    CHECK_OK(ppo_minibatch_update(pol8, val8, &b, 0, 8, 8, &c, false, &s8));
    CHECKF(fabs(s1.pol.loss - s8.pol.loss) < 1e-5 && s1.pol.clip_frac == s8.pol.clip_frac &&
               s1.pol.clip_frac > 0,
           "loss %g vs %g, clip %g vs %g", s1.pol.loss, s8.pol.loss, s1.pol.clip_frac,
           s8.pol.clip_frac);
    CHECKF(fabs(s1.policy_grad_norm - s8.policy_grad_norm) < 1e-4 * s8.policy_grad_norm,
           "grad norm %g vs %g", s1.policy_grad_norm, s8.policy_grad_norm);
    CHECKF(fabs(s1.value_grad_norm - s8.value_grad_norm) < 1e-4 * s8.value_grad_norm,
           "value grad norm %g vs %g", s1.value_grad_norm, s8.value_grad_norm);
    CHECK(isnan(s1.entropy));
    ppo_batch_free(&b);
    rlhf_sampler_free(smp);
    rlhf_model_free(pol1);
    rlhf_model_free(pol8);
    rlhf_model_free(val1);
    rlhf_model_free(val8);
}

/* returns the final held-out reward; *kl the last iteration's mean KL */
static double train(float beta, int iters, double *r0, double *kl_last) {
    rlhf_model *pol = new_model(RLHF_HEAD_LM, true, 8, 31);
    rlhf_model *ref = new_model(RLHF_HEAD_LM, false, 8, 1);
    rlhf_model *val = new_model(RLHF_HEAD_SCALAR, true, 8, 32);
    copy_params(ref, pol);
    rlhf_sampler *smp = NULL;
    CHECK_OK(rlhf_sampler_init(&smp, pol, NP));
    ppo_config c = ppo_config_default();
    c.minibatch = 8;
    c.lr = 3e-3f;
    c.beta = beta;
    rlhf_sample_config sc = sample_cfg();
    rlhf_rng rng;
    rlhf_rng_seed(&rng, 5, 7);
    *r0 = heldout_reward(smp);
    ppo_iter_stats st = {0};
    for (int it = 0; it < iters; it++) {
        rollouts r;
        rollouts_setup(&r, 1, it);
        CHECK_OK(ppo_iteration(pol, smp, ref, val, &c, &sc, r.seqs, NP, 8, frac_target, NULL,
                               &rng, NULL, &st));
        if (getenv("PPO_TEST_VERBOSE"))
            printf("beta %g it %d: score %.3f kl %.4f approx_kl %.5f clip %.3f vloss %.4f ev %.3f "
                   "entropy %.3f\n", beta, it, st.adv.score_mean, st.adv.kl_mean, st.approx_kl,
                   st.clip_frac, st.value_loss, st.explained_var, st.entropy);
    }
    *kl_last = st.adv.kl_mean;
    double r1 = heldout_reward(smp);
    rlhf_sampler_free(smp);
    rlhf_model_free(pol);
    rlhf_model_free(ref);
    rlhf_model_free(val);
    return r1;
}

static void test_learning(void) {
    const int iters = 30;
    double r0, kl, r0b, klb;
    double r1 = train(0.01f, iters, &r0, &kl);
    double r1b = train(1.0f, iters, &r0b, &klb);
    printf("held-out reward: beta 0.01 %.3f -> %.3f (KL %.4f); beta 1 %.3f -> %.3f (KL %.4f)\n",
           r0, r1, kl, r0b, r1b, klb);
    CHECKF(r1 > r0 + 0.2, "reward %g -> %g", r0, r1);
    CHECKF(r1b - r0b < 0.5 * (r1 - r0), "large beta: reward %g -> %g", r0b, r1b);
    CHECKF(fabs(klb) < 0.25 * fabs(kl), "KL %g (beta 1) vs %g (beta 0.01)", klb, kl);
}

/* bad input is an error naming the problem, never a crash */
static void test_bad_input(void) {
    rlhf_model *pol = new_model(RLHF_HEAD_LM, true, 2, 41);
    rlhf_model *val = new_model(RLHF_HEAD_SCALAR, true, 2, 42);
    int32_t prompt[2] = {1, 7}, out[3] = {4, 5, 6};
    rlhf_sample_seq q[2] = {{.prompt = prompt, .n_prompt = 2, .out = out, .n_out = 3},
                            {.prompt = prompt, .n_prompt = 2, .out = out, .n_out = 0}};
    ppo_batch b;
    CHECK(ppo_batch_build(q, 2, &b) == RLHF_ERR_ARG && strstr(rlhf_last_error(), "rollout 1"));
    CHECK(b.tokens == NULL); /* zeroed: ppo_batch_free is safe */
    ppo_batch_free(&b);
    ppo_batch_free(NULL);
    CHECK(ppo_batch_build(q, 0, &b) == RLHF_ERR_ARG);
    CHECK_OK(ppo_batch_build(q, 1, &b));
    CHECK(b.T == 4 && b.n_resp[0] == 3);
    CHECK(ppo_batch_values(pol, &b, 1, 1, b.values) == RLHF_ERR_ARG);   /* LM, not scalar */
    CHECK(ppo_batch_logprobs(val, &b, 1, 1, b.logp_old) == RLHF_ERR_ARG);
    CHECK(ppo_batch_logprobs(pol, &b, 0, 1, b.logp_old) == RLHF_ERR_ARG); /* mini-batch 0 */
    ppo_config c = ppo_config_default();
    CHECK(ppo_minibatch_update(pol, val, &b, 0, 2, 1, &c, false, NULL) == RLHF_ERR_ARG);
    ppo_batch_free(&b);
    int32_t longp[TSEQ + 4];
    for (int i = 0; i < TSEQ + 4; i++) longp[i] = 3;
    rlhf_sample_seq lq = {.prompt = longp, .n_prompt = TSEQ + 4, .out = out, .n_out = 1};
    CHECK_OK(ppo_batch_build(&lq, 1, &b));
    CHECK(ppo_batch_logprobs(pol, &b, 1, 1, b.logp_old) == RLHF_ERR_ARG &&
          strstr(rlhf_last_error(), "seq_len"));
    ppo_batch_free(&b);
    rlhf_model_free(pol);
    rlhf_model_free(val);
}

int main(void) {
    rlhf_set_threads(1);
    test_bad_input();
    test_first_iteration();
    test_micro();
    test_learning();
    TEST_MAIN_END();
}
