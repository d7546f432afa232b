/* test_sft.c: SFT data and packing (policy/sft.c) and the model's segment API.
 *  - packing: a row holding two examples gives each position the log-prob it gets when its
 *    example runs alone, and the gradient of the packed loss equals the sum of the examples'
 *    gradients; without the segments it does not (so the check can fail);
 *  - masking (acceptance 1): changing the TARGET of any system or user position of a rendered
 *    Llama 2-Chat dialogue leaves the SFT loss and gradient bit-identical; changing an assistant
 *    target changes them;
 *  - plan: same seed -> same plan; every example appears once per epoch; bad shapes rejected. */
#include "policy.h"
#include "test.h"

static rlhf_model_config tiny_config(int32_t V, int32_t T) {
    rlhf_model_config c = rlhf_config_default();
    c.dim = 32;
    c.hidden_dim = 72;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.vocab_size = V;
    c.seq_len = T;
    return c;
}

static rlhf_model *new_model(rlhf_model_config c, int B, int T, uint64_t seed) {
    rlhf_model *m = NULL;
    CHECK_OK(rlhf_model_init(&m, &c, NULL, B, T));
    if (!m) exit(1);
    CHECK_OK(rlhf_model_init_random(m, seed));
    return m;
}

static double max_abs_diff(const float *a, const float *b, int64_t n, int64_t *at) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d)) {
            m = isnan(d) ? INFINITY : d;
            if (at) *at = i;
        }
    }
    return m;
}

static void test_packing(void) {
    enum { V = 61, T = 24, N1 = 8, N2 = 11 };
    rlhf_model_config c = tiny_config(V, T);
    rlhf_model *m = new_model(c, 1, T, 5);
    const int64_t P = rlhf_model_num_params(m);
    int32_t e1[N1], e2[N2];
    rlhf_rng r;
    rlhf_rng_seed(&r, 11, 1);
    for (int i = 0; i < N1; i++) e1[i] = (int32_t)(rlhf_rng_u32(&r) % V);
    for (int i = 0; i < N2; i++) e2[i] = (int32_t)(rlhf_rng_u32(&r) % V);

    sft_dataset d = {0};
    bool added = false;
    CHECK_OK(sft_dataset_add_prompt_answer(&d, NULL, 0, e1, N1, 0, &added));
    CHECK(added);
    CHECK_OK(sft_dataset_add_prompt_answer(&d, e2, 4, e2 + 4, N2 - 4, 0, &added)); /* 4 context ids */
    CHECK(added);
    CHECK(d.n == 2 && sft_example_targets(&d.ex[0]) == N1 - 1 &&
          sft_example_targets(&d.ex[1]) == N2 - 4);
    sft_pack p;
    CHECK_OK(sft_pack_build(&d, NULL, d.n, T, &p));
    CHECK(p.rows == 1 && p.first[0] == 0 && p.first[1] == 2);
    CHECK(p.seg[0] == 0 && p.seg[N1 - 2] == 0 && p.seg[N1 - 1] == N1 - 1 &&
          p.seg[N1 - 1 + N2 - 2] == N1 - 1);
    CHECK(p.targets[T - 1] == -1 && p.mask[T - 1] == 0.0f);

    /* per-position log-probs: packed vs alone */
    float lp_packed[T], lp1[N1 - 1], lp2[N2 - 1], lp_plain[T];
    CHECK_OK(rlhf_model_set_segments(m, p.seg, 1, T));
    CHECK_OK(rlhf_model_forward(m, p.tokens, 1, T));
    CHECK_OK(rlhf_model_logprobs(m, p.targets, lp_packed));
    CHECK_OK(rlhf_model_set_segments(m, NULL, 0, 0));
    CHECK_OK(rlhf_model_forward(m, p.tokens, 1, T));
    CHECK_OK(rlhf_model_logprobs(m, p.targets, lp_plain));
    CHECK_OK(rlhf_model_forward(m, e1, 1, N1 - 1));
    CHECK_OK(rlhf_model_logprobs(m, e1 + 1, lp1));
    CHECK_OK(rlhf_model_forward(m, e2, 1, N2 - 1));
    CHECK_OK(rlhf_model_logprobs(m, e2 + 1, lp2));
    double d1 = max_abs_diff(lp_packed, lp1, N1 - 1, NULL);
    double d2 = max_abs_diff(lp_packed + N1 - 1, lp2, N2 - 1, NULL);
    double dplain = max_abs_diff(lp_plain + N1 - 1, lp2, N2 - 1, NULL);
    printf("packing: max |logp packed - alone| = %.3g, %.3g; without segments %.3g\n", d1, d2,
           dplain);
    CHECKF(d1 < 1e-5 && d2 < 1e-5, "packed log-probs differ from the examples alone");
    CHECKF(dplain > 1e-4, "the second example's log-probs do not depend on the segments");

    /* gradient: packed sum-loss vs the sum of the examples' sum-losses */
    float *g_packed = malloc((size_t)P * sizeof(float)), *g_alone = malloc((size_t)P * sizeof(float));
    float loss = 0;
    int64_t nt = 0;
    CHECK_OK(rlhf_model_zero_grad(m));
    CHECK_OK(sft_step(m, &p, 0, 1, (float)(N1 - 1 + N2 - 4), &loss, &nt));
    CHECK(nt == N1 - 1 + N2 - 4);
    CHECK_OK(rlhf_model_get_grads(m, g_packed));
    CHECK_OK(rlhf_model_zero_grad(m));
    float mask2[N2 - 1];
    for (int i = 0; i < N2 - 1; i++) mask2[i] = (i + 1) >= 4;
    float l1s = 0, l2s = 0;
    CHECK_OK(rlhf_model_lm_step(m, e1, e1 + 1, NULL, 1, N1 - 1, (float)(N1 - 1), &l1s));
    CHECK_OK(rlhf_model_lm_step(m, e2, e2 + 1, mask2, 1, N2 - 1, (float)(N2 - 4), &l2s));
    CHECK_OK(rlhf_model_get_grads(m, g_alone));
    double sum_alone = (double)l1s * (N1 - 1) + (double)l2s * (N2 - 4);
    double sum_packed = (double)loss * (double)nt;
    printf("packing: summed loss packed %.6f alone %.6f\n", sum_packed, sum_alone);
    CHECK(fabs(sum_packed - sum_alone) < 1e-4);
    int64_t at = 0;
    double gmax = 0;
    for (int64_t i = 0; i < P; i++) gmax = fmax(gmax, fabs(g_alone[i]));
    double gd = max_abs_diff(g_packed, g_alone, P, &at);
    printf("packing: max |grad packed - sum alone| = %.3g (max |grad| %.3g) at %lld\n", gd, gmax,
           (long long)at);
    CHECK(gmax > 0 && gd < 1e-5 * fmax(1.0, gmax));

    /* bad segments are refused */
    int32_t bad[T];
    memcpy(bad, p.seg, sizeof bad);
    bad[3] = 2; /* position 3 claims a start that position 2 does not share */
    CHECK(rlhf_model_set_segments(m, bad, 1, T) == RLHF_ERR_ARG);
    CHECK_OK(rlhf_model_set_segments(m, p.seg, 1, T));
    CHECK(rlhf_model_forward(m, p.tokens, 1, T - 1) == RLHF_ERR_ARG); /* shape must match */
    CHECK_OK(rlhf_model_set_segments(m, NULL, 0, 0));

    free(g_packed);
    free(g_alone);
    sft_pack_free(&p);
    sft_pack_free(&p); /* idempotent */
    sft_dataset_free(&d);
    sft_dataset_free(NULL);
    rlhf_model_free(m);
}

/* Loss and gradient of the pack's row 0. */
static void loss_grad(rlhf_model *m, const sft_pack *p, float *loss, float *g) {
    CHECK_OK(rlhf_model_zero_grad(m));
    CHECK_OK(sft_step(m, p, 0, 1, 1.0f, loss, NULL));
    CHECK_OK(rlhf_model_get_grads(m, g));
}

static void test_masking(void) {
    char buf[1024];
    const char *tok_path = test_shared("models/aidreams260K_tok512.bin", buf, sizeof buf);
    rlhf_tokenizer *tok = NULL;
    CHECK_OK(rlhf_tokenizer_load(&tok, tok_path, 0));
    if (!tok) return;
    ds_turn turns[4] = {{DS_ROLE_USER, "Tell me about the sea."},
                        {DS_ROLE_ASSISTANT, "The sea is big and blue."},
                        {DS_ROLE_USER, "And the sky?"},
                        {DS_ROLE_ASSISTANT, "The sky is blue too."}};
    ds_dialogue dlg = {"You are a poet.", turns, 4};
    ds_chat_tokens ct = {0};
    CHECK_OK(ds_chat_render(tok, &dlg, 0, &ct));
    const int32_t T = ct.n + 5, V = rlhf_tokenizer_vocab_size(tok);
    rlhf_model *m = new_model(tiny_config(V, T), 1, T, 9);
    const int64_t P = rlhf_model_num_params(m);

    sft_dataset d = {0};
    bool added = false;
    CHECK_OK(sft_dataset_add_chat(&d, &ct, NULL, 0, 0, &added));
    CHECK(added);
    sft_pack p;
    CHECK_OK(sft_pack_build(&d, NULL, d.n, T, &p));
    int64_t n_sys = 0, n_user = 0, n_asst = 0;
    for (int32_t t = 0; t + 1 < ct.n; t++) {
        uint8_t role = ct.roles[t + 1]; /* the target's role */
        n_sys += role == DS_ROLE_SYSTEM;
        n_user += role == DS_ROLE_USER;
        n_asst += role == DS_ROLE_ASSISTANT;
        CHECKF((p.mask[t] != 0) == (role == DS_ROLE_ASSISTANT), "position %d role %d mask %g", t,
               role, (double)p.mask[t]);
    }
    printf("masking: %d tokens: %lld system, %lld user, %lld assistant targets\n", ct.n,
           (long long)n_sys, (long long)n_user, (long long)n_asst);
    CHECK(n_sys > 0 && n_user > 0 && n_asst > 0);

    float *g0 = malloc((size_t)P * sizeof(float)), *g1 = malloc((size_t)P * sizeof(float));
    float l0 = 0, l1 = 0;
    loss_grad(m, &p, &l0, g0);
    /* every system and user target replaced by another id */
    int32_t changed = 0;
    for (int32_t t = 0; t + 1 < ct.n; t++)
        if (ct.roles[t + 1] != DS_ROLE_ASSISTANT) {
            p.targets[t] = (p.targets[t] + 7) % V;
            changed++;
        }
    loss_grad(m, &p, &l1, g1);
    printf("masking: loss %.6f, after changing %d system/user targets %.6f\n", (double)l0, changed,
           (double)l1);
    CHECK(l0 == l1);
    CHECK(memcmp(g0, g1, (size_t)P * sizeof(float)) == 0);
    /* one assistant target changed: the loss and gradient move */
    for (int32_t t = 0; t + 1 < ct.n; t++)
        if (ct.roles[t + 1] == DS_ROLE_ASSISTANT) {
            p.targets[t] = (p.targets[t] + 7) % V;
            break;
        }
    loss_grad(m, &p, &l1, g1);
    CHECK(l0 != l1);
    CHECK(memcmp(g0, g1, (size_t)P * sizeof(float)) != 0);

    /* the store's per-turn mask: only the last answer learned */
    uint8_t tm[4] = {0, 0, 0, 1};
    sft_dataset d2 = {0};
    CHECK_OK(sft_dataset_add_chat(&d2, &ct, tm, 4, 0, &added));
    int64_t last = 0;
    for (int32_t t = 1; t < ct.n; t++) last += ct.roles[t] == DS_ROLE_ASSISTANT && ct.turns[t] == 3;
    CHECK(added && sft_example_targets(&d2.ex[0]) == last && last > 0 && last < n_asst);
    /* nothing learned -> skipped; truncation counted */
    uint8_t none[4] = {0, 0, 0, 0};
    CHECK_OK(sft_dataset_add_chat(&d2, &ct, none, 4, 0, &added));
    CHECK(!added && d2.n == 1);
    CHECK_OK(sft_dataset_add_chat(&d2, &ct, NULL, 0, ct.n - 3, &added));
    CHECK(added && d2.n_truncated == 1 && d2.ex[1].n == ct.n - 3);

    free(g0);
    free(g1);
    sft_pack_free(&p);
    sft_dataset_free(&d);
    sft_dataset_free(&d2);
    ds_chat_free(&ct);
    rlhf_model_free(m);
    rlhf_tokenizer_free(tok);
}

static void test_plan(void) {
    sft_dataset d = {0};
    int32_t ids[12];
    for (int i = 0; i < 12; i++) ids[i] = i + 1;
    for (int n = 2; n <= 12; n++) CHECK_OK(sft_dataset_add_prompt_answer(&d, ids, 1, ids + 1, n - 1, 0, NULL));
    sft_pack a, b, c;
    CHECK_OK(sft_plan_build(&d, 2, 16, 42, &a));
    CHECK_OK(sft_plan_build(&d, 2, 16, 42, &b));
    CHECK_OK(sft_plan_build(&d, 2, 16, 43, &c));
    CHECK(a.rows == b.rows && memcmp(a.tokens, b.tokens, (size_t)a.rows * 16 * 4) == 0);
    CHECK(a.rows != c.rows || memcmp(a.tokens, c.tokens, (size_t)a.rows * 16 * 4) != 0);
    /* every example once per epoch: the learned targets add up */
    int64_t want = 0, got = 0;
    for (int64_t i = 0; i < d.n; i++) want += 2 * sft_example_targets(&d.ex[i]);
    for (int64_t i = 0; i < (int64_t)a.rows * 16; i++) got += a.mask[i] != 0;
    CHECK(want == got && a.first[a.rows] == 2 * d.n);
    /* an example longer than a row is refused */
    sft_pack e;
    CHECK(sft_plan_build(&d, 1, 8, 1, &e) == RLHF_ERR_ARG);
    CHECK(sft_plan_build(&d, 0, 16, 1, &e) == RLHF_ERR_ARG);
    sft_pack_free(&a);
    sft_pack_free(&b);
    sft_pack_free(&c);
    sft_dataset_free(&d);
}

int main(void) {
    test_plan();
    test_packing();
    test_masking();
    TEST_MAIN_END();
}
