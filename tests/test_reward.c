/* test_reward.c: the reward-model library (reward/reward.h).
 *   rw-01 reward_gate: the 0.15 threshold from both sides, the unsafe tag, NaN
 *   rw-02 reward_combine: logit clamp, whitening statistics (population mean/sd of the call's
 *         values), shift_mean off, n = 1, a non-finite selected score is an error
 *   rw-03 margin tables and parsing
 *   rw-04 ranking loss and safety auxiliary term: values and gradients against central finite
 *         differences (float64), stability at large arguments
 *   rw-05 reward_pairs_step: the gradient of the whole model (ranking loss + auxiliary term)
 *         against finite differences of the loss on a tiny model
 *   rw-06 reward_encode: template, last token EOS, left truncation keeps the response
 *   rw-07 a synthetic preference set with a learnable rule (chosen responses contain a marker
 *         token, rejected ones do not): a tiny RM reaches > 95% held-out accuracy
 *   rw-08 margins shift the score gap: the same training with margin 3 ends with a larger mean
 *         r_c - r_r than with margin 0, and the gap exceeds what margin 0 reaches
 *   rw-09 Wilson intervals against known values */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reward.h"
#include "test.h"

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static void test_gate(void) {
    const double thr = 0.15;
    const float edge = (float)log(thr / (1 - thr)); /* sigmoid(edge) = 0.15 */
    bool used = false;
    float below = nextafterf(edge, -INFINITY), above = nextafterf(edge, INFINITY);
    /* make sure the float neighbours really sit on both sides in double */
    while (!(sigmoid(below) < thr)) below = nextafterf(below, -INFINITY);
    while (!(sigmoid(above) >= thr)) above = nextafterf(above, INFINITY);
    CHECK(reward_gate(1.5f, below, false, 0.15f, &used) == below && used);
    CHECK(reward_gate(1.5f, above, false, 0.15f, &used) == 1.5f && !used);
    CHECK(reward_gate(1.5f, 5.0f, true, 0.15f, &used) == 5.0f && used); /* unsafe prompt */
    CHECK(reward_gate(-3.0f, 0.0f, false, 0.15f, &used) == -3.0f && !used);
    CHECK(reward_gate(-3.0f, -10.0f, false, 0.15f, NULL) == -10.0f);
    CHECK(reward_gate(2.0f, NAN, false, 0.15f, &used) == 2.0f && !used);
    CHECK(reward_gate(2.0f, 0.0f, false, 0.5f, &used) == 2.0f && !used); /* 0.5 is not < 0.5 */
    CHECK(reward_gate(2.0f, -0.01f, false, 0.5f, &used) == -0.01f && used);
}

static void test_combine(void) {
    reward_combine_opts o = reward_combine_defaults();
    CHECK(fabsf(o.safety_threshold - 0.15f) < 1e-7f && o.whiten && o.shift_mean);
    /* without whitening: the gated score, clamped at logit(1 - 1e-6) */
    o.whiten = false;
    float h[6] = {1.0f, 2.0f, 100.0f, -100.0f, 0.5f, 3.0f};
    float sf[6] = {0.0f, -5.0f, 0.0f, 0.0f, 4.0f, 2.0f};
    uint8_t un[6] = {0, 0, 0, 0, 1, 0};
    float out[6];
    CHECK_OK(reward_combine(h, sf, un, 6, &o, out));
    const double lim = log((1 - 1e-6) / 1e-6);
    CHECK(out[0] == 1.0f);                      /* safe enough: helpfulness */
    CHECK(out[1] == -5.0f);                     /* sigmoid(-5) < 0.15: safety */
    CHECKF(fabs(out[2] - lim) < 1e-3, "%g vs %g", (double)out[2], lim); /* clamped */
    CHECKF(fabs(out[3] + lim) < 1e-3, "%g", (double)out[3]);
    CHECK(out[4] == 4.0f); /* unsafe prompt: safety score */
    CHECK(out[5] == 3.0f);
    /* whitening: population statistics over the values of the call */
    o = reward_combine_defaults();
    float w[6];
    CHECK_OK(reward_combine(h, sf, un, 6, &o, w));
    double mean = 0, ss = 0;
    for (int i = 0; i < 6; i++) mean += (double)out[i] / 6;
    for (int i = 0; i < 6; i++) ss += ((double)out[i] - mean) * ((double)out[i] - mean);
    const double sd = sqrt(ss / 6);
    double wm = 0, wss = 0;
    for (int i = 0; i < 6; i++) {
        CHECKF(fabs(w[i] - (out[i] - mean) / (sd + 1e-8)) < 1e-5, "whitened[%d] = %g", i,
               (double)w[i]);
        wm += w[i] / 6.0;
    }
    for (int i = 0; i < 6; i++) wss += (w[i] - wm) * (w[i] - wm);
    CHECKF(fabs(wm) < 1e-6 && fabs(sqrt(wss / 6) - 1) < 1e-5, "mean %g sd %g", wm,
           sqrt(wss / 6));
    o.shift_mean = false; /* mean kept, spread divided by sd */
    CHECK_OK(reward_combine(h, sf, un, 6, &o, w));
    for (int i = 0; i < 6; i++)
        CHECK(fabs(w[i] - (mean + (out[i] - mean) / (sd + 1e-8))) < 1e-4);
    /* unsafe NULL = no prompt tagged; aliasing out with an input */
    float hh[3] = {1, 2, 3}, ss3[3] = {0, 0, 0};
    o = reward_combine_defaults();
    CHECK_OK(reward_combine(hh, ss3, NULL, 3, &o, hh));
    CHECK(fabsf(hh[0] + hh[2]) < 1e-6f && fabsf(hh[1]) < 1e-6f &&
          fabsf(hh[2] - (float)(1 / sqrt(2.0 / 3))) < 1e-5f);
    float one = 7.0f, z = 1.0f, r1;
    CHECK_OK(reward_combine(&one, &z, NULL, 1, NULL, &r1));
    CHECK(r1 == 0.0f);
    float bad_h[2] = {NAN, 1.0f}, bad_s[2] = {1.0f, 1.0f}, r2[2];
    CHECK(reward_combine(bad_h, bad_s, NULL, 2, NULL, r2) == RLHF_ERR_ARG);
    CHECK(strstr(rlhf_last_error(), "score 0") != NULL);
    CHECK(reward_combine(NULL, bad_s, NULL, 2, NULL, r2) == RLHF_ERR_ARG);
    CHECK(reward_combine(bad_h, bad_s, NULL, -1, NULL, r2) == RLHF_ERR_ARG);
    CHECK_OK(reward_combine(NULL, NULL, NULL, 0, NULL, NULL));
}

static void test_margins(void) {
    reward_margin_kind k;
    CHECK(reward_margin_parse("large", &k) && k == REWARD_MARGIN_LARGE);
    CHECK(reward_margin_parse("small", &k) && k == REWARD_MARGIN_SMALL);
    CHECK(reward_margin_parse("none", &k) && k == REWARD_MARGIN_NONE);
    CHECK(!reward_margin_parse("huge", &k) && !reward_margin_parse(NULL, &k));
    const ds_rating r[6] = {DS_RATING_SIGNIFICANTLY, DS_RATING_BETTER, DS_RATING_SLIGHTLY,
                            DS_RATING_NEGLIGIBLY, DS_RATING_UNSURE, DS_RATING_NONE};
    const float small[6] = {1.0f, 2.0f / 3, 1.0f / 3, 0, 0, 0}, large[6] = {3, 2, 1, 0, 0, 0};
    for (int i = 0; i < 6; i++) {
        CHECK(fabsf(reward_margin(REWARD_MARGIN_SMALL, r[i]) - small[i]) < 1e-7f);
        CHECK(reward_margin(REWARD_MARGIN_LARGE, r[i]) == large[i]);
        CHECK(reward_margin(REWARD_MARGIN_NONE, r[i]) == 0.0f);
    }
}

static void test_losses(void) {
    const float pts[][3] = {{0.3f, -0.2f, 0.0f}, {1.0f, 2.0f, 1.0f}, {-1.5f, 0.5f, 2.0f / 3},
                            {4.0f, -4.0f, 3.0f}};
    for (size_t i = 0; i < sizeof pts / sizeof *pts; i++) {
        const float rc = pts[i][0], rr = pts[i][1], m = pts[i][2];
        float dc, dr;
        double L = reward_rank_loss(rc, rr, m, &dc, &dr);
        CHECK(fabs(L - -log(sigmoid((double)rc - rr - m))) < 1e-9);
        const double h = 1e-3;
        double fc = (reward_rank_loss(rc + (float)h, rr, m, NULL, NULL) -
                     reward_rank_loss(rc - (float)h, rr, m, NULL, NULL)) / (2 * h);
        double fr = (reward_rank_loss(rc, rr + (float)h, m, NULL, NULL) -
                     reward_rank_loss(rc, rr - (float)h, m, NULL, NULL)) / (2 * h);
        CHECKF(fabs(fc - dc) < 1e-4 && fabs(fr - dr) < 1e-4, "pair %zu: %g/%g vs fd %g/%g", i,
               (double)dc, (double)dr, fc, fr);
        /* a margin raises the loss for the same scores */
        CHECK(m == 0 || L > reward_rank_loss(rc, rr, 0, NULL, NULL));
        for (int safe = 0; safe <= 1; safe++) {
            float da;
            double A = reward_safety_aux_loss(rc, (int8_t)safe, &da);
            CHECK(fabs(A - -log(safe ? sigmoid(rc) : 1 - sigmoid(rc))) < 1e-9);
            double fa = (reward_safety_aux_loss(rc + (float)h, (int8_t)safe, NULL) -
                         reward_safety_aux_loss(rc - (float)h, (int8_t)safe, NULL)) / (2 * h);
            CHECK(fabs(fa - da) < 1e-4);
        }
    }
    float d;
    CHECK(reward_safety_aux_loss(3.0f, -1, &d) == 0.0 && d == 0.0f);
    /* stable far out: L(-100) = 100, L(+100) ~ 0, gradients -1 / 0 */
    float dc, dr;
    CHECK(fabs(reward_rank_loss(-50, 50, 0, &dc, &dr) - 100) < 1e-9 && dc == -1.0f && dr == 1.0f);
    CHECK(reward_rank_loss(50, -50, 0, &dc, NULL) < 1e-40 && fabsf(dc) < 1e-40f);
}

/* ---- tiny models ------------------------------------------------------------------------------ */

static rlhf_model_config tiny_config(int32_t vocab, int32_t seq) {
    rlhf_model_config c = rlhf_config_default();
    c.dim = 16, c.hidden_dim = 32, c.n_layer = 2, c.n_head = 2, c.n_head_kv = 1;
    c.vocab_size = vocab, c.seq_len = seq;
    return c;
}

/* A reward model from a random LM of config c (the LM head dropped, a small score head). */
static rlhf_model *tiny_rm(rlhf_model_config c, int32_t max_B, uint64_t seed, float score_std) {
    rlhf_model *lm = NULL, *m = NULL;
    CHECK_OK(rlhf_model_init(&lm, &c, NULL, 1, 1));
    if (!lm) return NULL;
    CHECK_OK(rlhf_model_init_random(lm, seed));
    float *p = malloc((size_t)rlhf_model_num_params(lm) * sizeof *p), *rp = NULL;
    CHECK_OK(rlhf_model_get_params(lm, p));
    rlhf_model_config rc;
    CHECK_OK(reward_params_from_checkpoint(&c, p, score_std, seed, &rc, &rp));
    CHECK(rc.head == RLHF_HEAD_SCALAR && !rc.tied_head);
    /* the trunk is copied: the first tensor equals the LM's */
    CHECK(rp && memcmp(rp, p, (size_t)c.vocab_size * c.dim * sizeof(float)) == 0);
    rc.trainable = true;
    CHECK_OK(rlhf_model_init(&m, &rc, NULL, max_B, c.seq_len));
    if (m && rp) CHECK_OK(rlhf_model_set_params(m, rp));
    free(p);
    rlhf_free(rp);
    rlhf_model_free(lm);
    return m;
}

static double pairs_loss(rlhf_model *m, const reward_pair_tokens *pp, int32_t n, float aux) {
    reward_batch_result r;
    CHECK_OK(reward_pairs_step(m, pp, n, aux, 0.0f, NULL, NULL, &r));
    return r.rank_loss + aux * r.aux_loss;
}

static void test_pairs_gradient(void) {
    rlhf_model_config c = tiny_config(11, 8);
    rlhf_model *m = tiny_rm(c, 4, 7, 0.5f);
    if (!m) return;
    const int32_t c0[] = {1, 4, 5, 6, 2}, r0[] = {1, 4, 5, 9, 9, 3, 2};
    const int32_t c1[] = {1, 7, 2}, r1[] = {1, 8, 10, 2};
    reward_pair_tokens pp[2] = {{c0, r0, 5, 7, 1.0f, 1, 0}, {c1, r1, 3, 4, 0.0f, -1, 1}};
    const float aux = 0.7f;
    CHECK_OK(rlhf_model_zero_grad(m));
    float rc[2], rr[2];
    reward_batch_result res;
    CHECK_OK(reward_pairs_step(m, pp, 2, aux, 1.0f, rc, rr, &res));
    CHECK(res.tokens == 5 + 7 + 3 + 4);
    const int64_t P = rlhf_model_num_params(m);
    float *g = malloc((size_t)P * sizeof *g), *p = malloc((size_t)P * sizeof *p);
    CHECK_OK(rlhf_model_get_grads(m, g));
    CHECK_OK(rlhf_model_get_params(m, p));
    /* the scores equal a plain forward's values at the last tokens (padding does not leak) */
    float sc[4];
    const int32_t *seqs[4] = {c0, r0, c1, r1};
    const int32_t lens[4] = {5, 7, 3, 4};
    CHECK_OK(reward_model_score(m, seqs, lens, 4, 1, sc)); /* one row at a time: no padding */
    CHECK(fabsf(sc[0] - rc[0]) < 1e-5f && fabsf(sc[1] - rr[0]) < 1e-5f &&
          fabsf(sc[2] - rc[1]) < 1e-5f && fabsf(sc[3] - rr[1]) < 1e-5f);
    double L0 = reward_rank_loss(rc[0], rr[0], 1, NULL, NULL) +
                reward_rank_loss(rc[1], rr[1], 0, NULL, NULL) +
                aux * (reward_safety_aux_loss(rc[0], 1, NULL) + reward_safety_aux_loss(rr[0], 0, NULL) +
                       reward_safety_aux_loss(rr[1], 1, NULL));
    CHECK(fabs(L0 - (res.rank_loss + aux * res.aux_loss)) < 1e-5);
    /* central differences on a spread of parameters: score head, final norm, embeddings of used
     * tokens, and matrices */
    rlhf_param_info t[RLHF_P_COUNT];
    rlhf_param_table(rlhf_model_get_config(m), t);
    int64_t probe[40];
    int np = 0;
    for (int j = 0; j < 8; j++) probe[np++] = t[RLHF_P_HEAD].offset + j * 2;
    for (int j = 0; j < 4; j++) probe[np++] = t[RLHF_P_NORM].offset + j * 3;
    for (int j = 0; j < 4; j++) probe[np++] = t[RLHF_P_TOK_EMB].offset + 4 * c.dim + j;
    rlhf_rng r;
    rlhf_rng_seed(&r, 99, 1);
    while (np < 40) probe[np++] = (int64_t)(rlhf_rng_u32(&r) % (uint32_t)P);
    int bad = 0;
    double worst = 0;
    for (int j = 0; j < np; j++) {
        const int64_t i = probe[j];
        const float h = 3e-3f, keep = p[i];
        p[i] = keep + h;
        CHECK_OK(rlhf_model_set_params(m, p));
        double lp = pairs_loss(m, pp, 2, aux);
        p[i] = keep - h;
        CHECK_OK(rlhf_model_set_params(m, p));
        double lm = pairs_loss(m, pp, 2, aux);
        p[i] = keep;
        double fd = (lp - lm) / (2 * (double)h);
        double err = fabs(fd - g[i]) / fmax(fabs(g[i]), 1e-2);
        if (err > worst) worst = err;
        if (err > 2e-2) {
            bad++;
            fprintf(stderr, "param %lld: grad %g, fd %g\n", (long long)i, (double)g[i], fd);
        }
    }
    CHECKF(bad == 0, "%d of %d gradients differ from finite differences (worst rel %g)", bad, np,
           worst);
    printf("rw-05: %d parameter gradients match central differences (worst rel err %.2e)\n", np,
           worst);
    free(g);
    free(p);
    rlhf_model_free(m);
}

static void test_encode(void) {
    char path[1024];
    rlhf_tokenizer *tok = NULL;
    CHECK_OK(rlhf_tokenizer_load(&tok, test_src("tests/fixtures/spm_small_nobf.model", path,
                                                sizeof path), 0));
    if (!tok) return;
    const int32_t bos = rlhf_tokenizer_bos(tok), eos = rlhf_tokenizer_eos(tok);
    ds_turn turns[3] = {{DS_ROLE_USER, "the first question is about the weather in the city"},
                        {DS_ROLE_ASSISTANT, "it rained all day and the streets were wet"},
                        {DS_ROLE_USER, "and tomorrow?"}};
    ds_dialogue ctx = {.system = "be brief", .turns = turns, .n_turns = 3};
    int32_t *ids = NULL, n = 0;
    bool cut = true;
    CHECK_OK(reward_encode(tok, &ctx, "sunny", 0x7fffffff, &ids, &n, &cut));
    CHECK(!cut && n > 10 && ids[0] == bos && ids[n - 1] == eos);
    /* the same as rendering the dialogue with the response appended */
    ds_turn all[4] = {turns[0], turns[1], turns[2], {DS_ROLE_ASSISTANT, "sunny"}};
    ds_dialogue full = {.system = "be brief", .turns = all, .n_turns = 4};
    ds_chat_tokens ct = {0};
    CHECK_OK(ds_chat_render(tok, &full, 0, &ct));
    CHECK(ct.n == n && memcmp(ct.ids, ids, (size_t)n * sizeof *ids) == 0);
    /* last exchange alone (with the system prompt) */
    ds_turn last[2] = {turns[2], {DS_ROLE_ASSISTANT, "sunny"}};
    ds_dialogue shortd = {.system = "be brief", .turns = last, .n_turns = 2};
    ds_chat_tokens cs = {0};
    CHECK_OK(ds_chat_render(tok, &shortd, 0, &cs));
    int32_t *ids2 = NULL, n2 = 0;
    CHECK_OK(reward_encode(tok, &ctx, "sunny", cs.n, &ids2, &n2, &cut));
    CHECK(cut && n2 == cs.n && memcmp(cs.ids, ids2, (size_t)n2 * sizeof *ids2) == 0);
    free(ids2);
    /* shorter still: BOS + the tail, ending with the response's EOS */
    CHECK_OK(reward_encode(tok, &ctx, "sunny", 6, &ids2, &n2, &cut));
    CHECK(cut && n2 == 6 && ids2[0] == bos && ids2[5] == eos &&
          memcmp(ids2 + 1, ct.ids + ct.n - 5, 5 * sizeof *ids2) == 0);
    free(ids2);
    /* errors */
    ds_dialogue bad = {.system = NULL, .turns = turns, .n_turns = 2};
    CHECK(reward_encode(tok, &bad, "x", 100, &ids2, &n2, NULL) == RLHF_ERR_ARG && ids2 == NULL);
    CHECK(reward_encode(tok, &ctx, "x", 1, &ids2, &n2, NULL) == RLHF_ERR_ARG);
    ds_chat_free(&ct);
    ds_chat_free(&cs);
    free(ids);
    rlhf_tokenizer_free(tok);
}

/* ---- learning a rule ------------------------------------------------------------------------ */

enum { SYN_V = 16, SYN_T = 16, SYN_MARK = 7 };

typedef struct syn_pair {
    int32_t c[SYN_T], r[SYN_T];
    int32_t nc, nr;
} syn_pair;

/* context: BOS(1) + 2..5 tokens from 3..15 (never the marker); then a response of 3..6 tokens
 * from the same set, ending with EOS(2). The chosen response holds the marker at a random spot,
 * the rejected one does not. */
static void syn_make(syn_pair *p, int n, uint64_t seed) {
    rlhf_rng r;
    rlhf_rng_seed(&r, seed, 5);
    for (int i = 0; i < n; i++) {
        int32_t ctx[8], nctx = 1 + 2 + (int32_t)(rlhf_rng_u32(&r) % 4);
        ctx[0] = 1;
        for (int32_t t = 1; t < nctx; t++) {
            int32_t v;
            do v = 3 + (int32_t)(rlhf_rng_u32(&r) % (SYN_V - 3));
            while (v == SYN_MARK);
            ctx[t] = v;
        }
        for (int side = 0; side < 2; side++) {
            int32_t *o = side == 0 ? p[i].c : p[i].r;
            int32_t len = 3 + (int32_t)(rlhf_rng_u32(&r) % 4), k = 0;
            memcpy(o, ctx, (size_t)nctx * sizeof *o);
            k = nctx;
            for (int32_t t = 0; t < len; t++) {
                int32_t v;
                do v = 3 + (int32_t)(rlhf_rng_u32(&r) % (SYN_V - 3));
                while (v == SYN_MARK);
                o[k++] = v;
            }
            if (side == 0) o[nctx + (int32_t)(rlhf_rng_u32(&r) % (uint32_t)len)] = SYN_MARK;
            o[k++] = 2;
            if (side == 0) p[i].nc = k;
            else p[i].nr = k;
        }
    }
}

/* Trains m on the pairs with margin `margin` for `steps` AdamW steps of `B` pairs. */
static void syn_train(rlhf_model *m, const syn_pair *p, int n, int steps, int B, float margin,
                      float lr) {
    rlhf_adamw_config oc = rlhf_adamw_default();
    oc.weight_decay = 0.0f;
    reward_pair_tokens mb[32];
    for (int s = 0; s < steps; s++) {
        CHECK_OK(rlhf_model_zero_grad(m));
        for (int b = 0; b < B; b++) {
            const syn_pair *x = &p[(s * B + b) % n];
            mb[b] = (reward_pair_tokens){x->c, x->r, x->nc, x->nr, margin, -1, -1};
        }
        CHECK_OK(reward_pairs_step(m, mb, B, 0.0f, 1.0f / (float)B, NULL, NULL, NULL));
        CHECK_OK(rlhf_model_adamw_step(m, &oc, lr, NULL));
    }
}

/* Accuracy and mean gap r_c - r_r on the pairs. */
static void syn_eval(rlhf_model *m, const syn_pair *p, int n, double *acc, double *gap) {
    int ok = 0;
    double g = 0;
    for (int i = 0; i < n; i += 8) {
        reward_pair_tokens mb[8];
        float rc[8], rr[8];
        int k = n - i < 8 ? n - i : 8;
        for (int b = 0; b < k; b++)
            mb[b] = (reward_pair_tokens){p[i + b].c, p[i + b].r, p[i + b].nc, p[i + b].nr, 0, -1,
                                         -1};
        CHECK_OK(reward_pairs_step(m, mb, k, 0.0f, 0.0f, rc, rr, NULL));
        for (int b = 0; b < k; b++) {
            ok += rc[b] > rr[b];
            g += rc[b] - rr[b];
        }
    }
    *acc = (double)ok / n;
    *gap = g / n;
}

static void test_learn_rule(void) {
    enum { NTR = 512, NTE = 256 };
    syn_pair *tr = malloc(NTR * sizeof *tr), *te = malloc(NTE * sizeof *te);
    syn_make(tr, NTR, 1);
    syn_make(te, NTE, 2); /* held out: another seed */
    rlhf_model_config c = tiny_config(SYN_V, SYN_T);
    rlhf_model *m = tiny_rm(c, 32, 3, 1e-3f);
    if (!m) return;
    double acc0, gap0, acc, gap;
    syn_eval(m, te, NTE, &acc0, &gap0);
    syn_train(m, tr, NTR, 150, 16, 0.0f, 3e-3f);
    syn_eval(m, te, NTE, &acc, &gap);
    printf("rw-07: held-out accuracy %.3f before training, %.3f after 150 steps (mean gap %.3f)\n",
           acc0, acc, gap);
    CHECKF(acc > 0.95, "held-out accuracy %.3f", acc);
    CHECK(acc0 < 0.8); /* the rule is not there at the start */
    rlhf_model_free(m);

    /* margins: same init, same data, same steps; margin 3 versus 0 */
    rlhf_model *m0 = tiny_rm(c, 32, 3, 1e-3f), *m3 = tiny_rm(c, 32, 3, 1e-3f);
    if (m0 && m3) {
        syn_train(m0, tr, NTR, 100, 16, 0.0f, 3e-3f);
        syn_train(m3, tr, NTR, 100, 16, 3.0f, 3e-3f);
        double a0, g0, a3, g3;
        syn_eval(m0, te, NTE, &a0, &g0);
        syn_eval(m3, te, NTE, &a3, &g3);
        printf("rw-08: mean held-out gap r_c - r_r: margin 0 -> %.3f (acc %.3f), margin 3 -> %.3f "
               "(acc %.3f)\n", g0, a0, g3, a3);
        /* with margin m the loss keeps pushing until r_c - r_r exceeds m */
        CHECKF(g3 > g0 + 1.0, "gap with margin 3 (%.3f) not above margin 0's (%.3f) + 1", g3, g0);
        CHECKF(g3 > 2.0, "gap with margin 3 is %.3f", g3);
    }
    rlhf_model_free(m0);
    rlhf_model_free(m3);
    free(tr);
    free(te);
}

static void test_wilson(void) {
    double lo, hi;
    reward_wilson(50, 100, 1.96, &lo, &hi); /* textbook: [0.4038, 0.5962] */
    CHECKF(fabs(lo - 0.4038) < 1e-4 && fabs(hi - 0.5962) < 1e-4, "[%g, %g]", lo, hi);
    reward_wilson(0, 10, 1.96, &lo, &hi); /* [0, 0.2775] */
    CHECKF(lo == 0 && fabs(hi - 0.2775) < 1e-4, "[%g, %g]", lo, hi);
    reward_wilson(10, 10, 1.96, &lo, &hi);
    CHECK(fabs(lo - 0.7225) < 1e-4 && hi == 1);
    reward_wilson(0, 0, 1.96, &lo, &hi);
    CHECK(lo == 0 && hi == 1);
}

int main(void) {
    rlhf_set_threads(1);
    test_gate();
    test_combine();
    test_margins();
    test_losses();
    test_pairs_gradient();
    test_encode();
    test_learn_rule();
    test_wilson();
    TEST_MAIN_END();
}
