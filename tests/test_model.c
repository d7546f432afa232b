/* test_model.c: whole-model behaviour on a tiny GQA config: overfitting a fixed batch, loss masks,
 * determinism, bit-exact resume through a fresh process, state-file corruption, the schedule,
 * AdamW's decay rules, and the batched sampler (greedy = teacher-forced argmax, batch-independence,
 * top-k/top-p limits). */
#include <unistd.h>

#include "rlhf.h"
#include "test.h"

static rlhf_model_config tiny_config(void) {
    rlhf_model_config c = rlhf_config_default();
    c.dim = 32;
    c.hidden_dim = 72;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.vocab_size = 61;
    c.seq_len = 24;
    return c;
}

static rlhf_model *new_model(rlhf_model_config c, int B, int T, uint64_t seed) {
    rlhf_model *m = NULL;
    CHECK_OK(rlhf_model_init(&m, &c, NULL, B, T));
    if (!m) exit(1);
    CHECK_OK(rlhf_model_init_random(m, seed));
    return m;
}

static void random_tokens(int32_t *t, int n, int V, uint64_t seed) {
    rlhf_rng r;
    rlhf_rng_seed(&r, seed, 7);
    for (int i = 0; i < n; i++) t[i] = (int32_t)(rlhf_rng_u32(&r) % (uint32_t)V);
}

/* ---- training ---- */

enum { B = 2, T = 16 };

/* One optimizer step of `micro` accumulated micro-batches drawn from the data stream at
 * *pos; returns the mean loss. */
static float train_step(rlhf_model *m, const rlhf_schedule *sch, int micro, int64_t *pos) {
    const int V = rlhf_model_get_config(m)->vocab_size;
    int32_t tok[B * (T + 1)], in[B * T], tgt[B * T];
    float loss_sum = 0;
    CHECK_OK(rlhf_model_zero_grad(m));
    for (int k = 0; k < micro; k++) {
        random_tokens(tok, B * (T + 1), V, 1000 + (uint64_t)(*pos)++);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                in[b * T + t] = tok[b * (T + 1) + t];
                tgt[b * T + t] = tok[b * (T + 1) + t + 1];
            }
        float loss;
        CHECK_OK(rlhf_model_lm_step(m, in, tgt, NULL, B, T, 1.0f / (float)micro, &loss));
        loss_sum += loss;
    }
    rlhf_adamw_config oc = rlhf_adamw_default();
    CHECK_OK(rlhf_model_adamw_step(m, &oc, rlhf_schedule_lr(sch, rlhf_model_step(m)), NULL));
    return loss_sum / (float)micro;
}

static void test_overfit(void) {
    rlhf_model *m = new_model(tiny_config(), B, T, 1);
    int32_t tok[B * (T + 1)], in[B * T], tgt[B * T];
    random_tokens(tok, B * (T + 1), 61, 42);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) in[b * T + t] = tok[b * (T + 1) + t], tgt[b * T + t] = tok[b * (T + 1) + t + 1];
    rlhf_schedule sch = {.peak_lr = 1e-2f, .warmup_steps = 10, .total_steps = 300, .final_frac = 0.1f};
    rlhf_adamw_config oc = rlhf_adamw_default();
    float loss = 0, first = 0;
    for (int s = 0; s < 300; s++) {
        CHECK_OK(rlhf_model_zero_grad(m));
        CHECK_OK(rlhf_model_lm_step(m, in, tgt, NULL, B, T, 1.0f, &loss));
        if (s == 0) first = loss;
        CHECK_OK(rlhf_model_adamw_step(m, &oc, rlhf_schedule_lr(&sch, s), NULL));
    }
    CHECK_OK(rlhf_model_lm_step(m, in, tgt, NULL, B, T, 0.0f, &loss));
    printf("overfit: loss %.4f -> %.4f after 300 steps\n", first, loss);
    CHECKF(first > 3.5f && loss < 0.05f, "first %f final %f", first, loss);
    rlhf_model_free(m);
}

static void test_mask(void) {
    rlhf_model_config c = tiny_config();
    rlhf_model *m = new_model(c, B, T, 3);
    const int64_t P = rlhf_model_num_params(m);
    float *g1 = malloc(P * sizeof(float)), *g2 = malloc(P * sizeof(float));
    int32_t in[B * T], tgt[B * T], tgt2[B * T];
    float mask[B * T], logp[B * T];
    random_tokens(in, B * T, c.vocab_size, 5);
    random_tokens(tgt, B * T, c.vocab_size, 6);
    for (int i = 0; i < B * T; i++) {
        mask[i] = (i % 3 == 0) ? 0.0f : 1.0f;
        tgt2[i] = mask[i] == 0 ? (tgt[i] + 7) % c.vocab_size : tgt[i];
    }
    float l1, l2;
    CHECK_OK(rlhf_model_zero_grad(m));
    CHECK_OK(rlhf_model_lm_step(m, in, tgt, mask, B, T, 1.0f, &l1));
    CHECK_OK(rlhf_model_get_grads(m, g1));
    CHECK_OK(rlhf_model_zero_grad(m));
    CHECK_OK(rlhf_model_lm_step(m, in, tgt2, mask, B, T, 1.0f, &l2));
    CHECK_OK(rlhf_model_get_grads(m, g2));
    CHECKF(l1 == l2, "loss changed with masked targets: %f vs %f", l1, l2);
    CHECK(memcmp(g1, g2, P * sizeof(float)) == 0);
    /* the loss is the mean of -logp over unmasked positions */
    CHECK_OK(rlhf_model_forward(m, in, B, T));
    CHECK_OK(rlhf_model_logprobs(m, tgt, logp));
    double s = 0, w = 0;
    for (int i = 0; i < B * T; i++) s += -mask[i] * logp[i], w += mask[i];
    CHECKF(fabs(s / w - l1) < 1e-5 * fabs(l1), "loss %f vs mean %f", l1, s / w);
    /* all-zero mask: zero loss and zero gradient */
    float zero[B * T] = {0};
    CHECK_OK(rlhf_model_zero_grad(m));
    CHECK_OK(rlhf_model_lm_step(m, in, tgt, zero, B, T, 1.0f, &l1));
    CHECK_OK(rlhf_model_get_grads(m, g1));
    double gmax = 0;
    for (int64_t i = 0; i < P; i++) gmax = fmax(gmax, fabs(g1[i]));
    CHECKF(l1 == 0.0f && gmax == 0.0, "loss %f max grad %g", l1, gmax);
    free(g1);
    free(g2);
    rlhf_model_free(m);
}

static const rlhf_schedule resume_schedule = {
    .peak_lr = 3e-3f, .warmup_steps = 3, .total_steps = 12, .final_frac = 0.1f};
enum { RESUME_N = 6, MICRO = 2 };

static void test_determinism(void) {
    rlhf_model *a = new_model(tiny_config(), B, T, 11), *b = new_model(tiny_config(), B, T, 11);
    int64_t pa = 0, pb = 0;
    for (int s = 0; s < 4; s++) {
        float la = train_step(a, &resume_schedule, MICRO, &pa);
        float lb = train_step(b, &resume_schedule, MICRO, &pb);
        CHECKF(memcmp(&la, &lb, sizeof la) == 0, "step %d: %.9g vs %.9g", s, la, lb);
    }
    const int64_t P = rlhf_model_num_params(a);
    float *wa = malloc(P * 4), *wb = malloc(P * 4);
    CHECK_OK(rlhf_model_get_params(a, wa));
    CHECK_OK(rlhf_model_get_params(b, wb));
    CHECK(memcmp(wa, wb, P * 4) == 0);
    free(wa);
    free(wb);
    rlhf_model_free(a);
    rlhf_model_free(b);
}

/* Child process of the resume test: load the state, train RESUME_N more steps, write the
 * parameters and losses to out. */
static int resume_child(const char *state, const char *out) {
    rlhf_model_config c;
    if (rlhf_train_state_peek(state, &c) != RLHF_OK) return 3;
    rlhf_model *m = NULL;
    rlhf_train_extra x;
    if (rlhf_model_init(&m, &c, NULL, B, T) != RLHF_OK) return 3;
    if (rlhf_train_state_load(m, &x, state) != RLHF_OK) {
        fprintf(stderr, "%s\n", rlhf_last_error());
        return 3;
    }
    float losses[RESUME_N];
    for (int s = 0; s < RESUME_N; s++) losses[s] = train_step(m, &x.schedule, MICRO, &x.data_pos);
    const int64_t P = rlhf_model_num_params(m);
    float *w = malloc(P * 4);
    rlhf_model_get_params(m, w);
    FILE *f = fopen(out, "wb");
    if (!f) return 3;
    fwrite(losses, 4, RESUME_N, f);
    fwrite(w, 4, P, f);
    fclose(f);
    free(w);
    rlhf_model_free(m);
    return test_failures ? 1 : 0;
}

static void test_resume(const char *self) {
    char dir[] = "/tmp/rlhf_test_resumeXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char state[256], out[256], cmd[8400];
    snprintf(state, sizeof state, "%s/state.bin", dir);
    snprintf(out, sizeof out, "%s/out.bin", dir);
    /* straight run of 2N steps */
    rlhf_model *a = new_model(tiny_config(), B, T, 21);
    int64_t pa = 0;
    float la[2 * RESUME_N];
    for (int s = 0; s < 2 * RESUME_N; s++) la[s] = train_step(a, &resume_schedule, MICRO, &pa);
    /* N steps, save, fresh process loads and runs N more */
    rlhf_model *b = new_model(tiny_config(), B, T, 21);
    rlhf_train_extra x = {.schedule = resume_schedule, .adamw = rlhf_adamw_default(), .data_pos = 0};
    rlhf_rng_seed(&x.rng, 99, 1);
    for (int s = 0; s < RESUME_N; s++) train_step(b, &resume_schedule, MICRO, &x.data_pos);
    CHECK_OK(rlhf_train_state_save(b, &x, state));
    snprintf(cmd, sizeof cmd, "'%s' --resume-child '%s' '%s'", self, state, out);
    int rc = system(cmd);
    CHECKF(rc == 0, "child exited with %d", rc);
    const int64_t P = rlhf_model_num_params(a);
    float *wa = malloc(P * 4), *wb = malloc(P * 4), lb[RESUME_N];
    CHECK_OK(rlhf_model_get_params(a, wa));
    FILE *f = fopen(out, "rb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fread(lb, 4, RESUME_N, f) == RESUME_N);
        CHECK(fread(wb, 4, P, f) == (size_t)P);
        fclose(f);
        CHECKF(memcmp(la + RESUME_N, lb, sizeof lb) == 0, "losses after resume differ: %.9g vs %.9g",
               la[RESUME_N], lb[0]);
        CHECKF(memcmp(wa, wb, P * 4) == 0, "weights after resume differ");
    }
    printf("resume: 2x%d steps straight vs %d + save + fresh process + %d: %s\n", RESUME_N,
           RESUME_N, RESUME_N, test_failures ? "DIFFER" : "bitwise equal");

    /* corrupt and truncated files are rejected with the path in the message */
    FILE *sf = fopen(state, "rb");
    fseek(sf, 0, SEEK_END);
    long len = ftell(sf);
    fseek(sf, 0, SEEK_SET);
    unsigned char *buf = malloc(len);
    CHECK(fread(buf, 1, len, sf) == (size_t)len);
    fclose(sf);
    const long cuts[] = {0, 5, 40, 100, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char bad[300];
        snprintf(bad, sizeof bad, "%s/cut%zu.bin", dir, i);
        FILE *bf = fopen(bad, "wb");
        fwrite(buf, 1, cuts[i], bf);
        fclose(bf);
        rlhf_status st = rlhf_train_state_load(b, NULL, bad);
        CHECKF(st == RLHF_ERR_FORMAT && strstr(rlhf_last_error(), bad),
               "cut at %ld: %s: %s", cuts[i], rlhf_status_name(st), rlhf_last_error());
        remove(bad);
    }
    buf[len / 2] ^= 0x40;
    char bad[300];
    snprintf(bad, sizeof bad, "%s/flip.bin", dir);
    FILE *bf = fopen(bad, "wb");
    fwrite(buf, 1, len, bf);
    fclose(bf);
    rlhf_status st = rlhf_train_state_load(b, NULL, bad);
    CHECKF(st == RLHF_ERR_FORMAT && strstr(rlhf_last_error(), "checksum"), "%s",
           rlhf_last_error());
    CHECK(rlhf_train_state_load(b, NULL, "/nonexistent/state.bin") == RLHF_ERR_IO);
    /* a state of another config does not load */
    rlhf_model_config c2 = tiny_config();
    c2.n_layer = 3;
    rlhf_model *other = new_model(c2, 1, 4, 1);
    CHECK(rlhf_train_state_load(other, NULL, state) == RLHF_ERR_FORMAT);
    rlhf_model_free(other);
    remove(bad);
    remove(state);
    remove(out);
    rmdir(dir);
    free(buf);
    free(wa);
    free(wb);
    rlhf_model_free(a);
    rlhf_model_free(b);
}

static void test_schedule(void) {
    rlhf_schedule s = {.peak_lr = 1.0f, .warmup_steps = 10, .total_steps = 110, .final_frac = 0.1f};
    CHECK(fabsf(rlhf_schedule_lr(&s, 0) - 0.1f) < 1e-7f);
    CHECK(fabsf(rlhf_schedule_lr(&s, 9) - 1.0f) < 1e-7f);
    CHECK(fabsf(rlhf_schedule_lr(&s, 10) - 1.0f) < 1e-6f);
    CHECK(fabsf(rlhf_schedule_lr(&s, 60) - 0.55f) < 1e-6f); /* cosine midpoint */
    CHECK(fabsf(rlhf_schedule_lr(&s, 110) - 0.1f) < 1e-7f);
    CHECK(fabsf(rlhf_schedule_lr(&s, 500) - 0.1f) < 1e-7f);
    for (int i = 11; i < 110; i++) CHECK(rlhf_schedule_lr(&s, i) <= rlhf_schedule_lr(&s, i - 1));
}

static void test_adamw_decay(void) {
    rlhf_model_config c = tiny_config();
    rlhf_model *m = new_model(c, 1, 4, 8);
    const int64_t P = rlhf_model_num_params(m);
    rlhf_param_info t[RLHF_P_COUNT];
    rlhf_param_table(&c, t);
    float *w0 = malloc(P * 4), *w1 = malloc(P * 4);
    CHECK_OK(rlhf_model_get_params(m, w0));
    CHECK_OK(rlhf_model_zero_grad(m));
    rlhf_adamw_config oc = rlhf_adamw_default();
    float gn = -1;
    CHECK_OK(rlhf_model_adamw_step(m, &oc, 0.5f, &gn));
    CHECK(gn == 0.0f);
    CHECK_OK(rlhf_model_get_params(m, w1));
    for (int i = 0; i < RLHF_P_COUNT; i++) {
        float f = t[i].decay ? 1.0f - 0.5f * 0.1f : 1.0f;
        double worst = 0;
        for (int64_t j = 0; j < t[i].numel; j++)
            worst = fmax(worst, fabs(w1[t[i].offset + j] - w0[t[i].offset + j] * f));
        CHECKF(worst < 1e-7, "%s: decay factor wrong (%g)", t[i].name, worst);
    }
    CHECK(!t[RLHF_P_ATTN_NORM].decay && !t[RLHF_P_FFN_NORM].decay && !t[RLHF_P_NORM].decay);
    CHECK(rlhf_model_step(m) == 1);
    free(w0);
    free(w1);
    rlhf_model_free(m);
}

/* ---- sampler ---- */

static void test_sampler_greedy(void) {
    rlhf_model_config c = tiny_config();
    rlhf_model *m = new_model(c, 1, c.seq_len, 31);
    rlhf_sampler *s = NULL;
    CHECK_OK(rlhf_sampler_init(&s, m, 3));
    int32_t prompt[5] = {1, 17, 4, 33, 8};
    int32_t out[3][24];
    float lp[3][24];
    rlhf_sample_seq q[3];
    for (int i = 0; i < 3; i++)
        q[i] = (rlhf_sample_seq){.prompt = prompt, .n_prompt = 2 + i, .seed = 5, .out = out[i], .logp = lp[i]};
    rlhf_sample_config sc = {.temperature = 0, .top_p = 1, .max_new = 100, .eos_id = -1};
    CHECK_OK(rlhf_sampler_run(s, &sc, q, 3, NULL, NULL));
    for (int i = 0; i < 3; i++) {
        /* capped by seq_len: the last fed position is seq_len-1 */
        CHECK(q[i].n_out == c.seq_len - q[i].n_prompt + 1 && q[i].finish == RLHF_FINISH_LENGTH);
        /* teacher-forced forward over prompt + generation: argmax and log-prob agree */
        int n = q[i].n_prompt + q[i].n_out - 1;
        int32_t seq[24], tgt[24];
        for (int t = 0; t < n; t++) seq[t] = t < q[i].n_prompt ? prompt[t] : out[i][t - q[i].n_prompt];
        for (int t = 0; t < n; t++) tgt[t] = t + 1 < q[i].n_prompt ? prompt[t + 1] : out[i][t + 1 - q[i].n_prompt];
        float logits[24 * 61], logp[24];
        CHECK_OK(rlhf_model_forward(m, seq, 1, n));
        CHECK_OK(rlhf_model_get_logits(m, logits));
        CHECK_OK(rlhf_model_logprobs(m, tgt, logp));
        for (int t = q[i].n_prompt - 1; t < n; t++) {
            int arg = 0;
            for (int v = 1; v < 61; v++)
                if (logits[t * 61 + v] > logits[t * 61 + arg]) arg = v;
            int k = t - (q[i].n_prompt - 1);
            CHECKF(arg == out[i][k], "seq %d pos %d: argmax %d sampled %d", i, t, arg, out[i][k]);
            CHECKF(fabsf(logp[t] - lp[i][k]) < 1e-4f, "seq %d pos %d: logp %f vs %f", i, t, logp[t], lp[i][k]);
        }
    }
    rlhf_sampler_free(s);
    rlhf_model_free(m);
}

/* The same sequences sampled with 6, 4 and 1 slots (waves and refills) give the same tokens. */
static void test_sampler_batch_independence(void) {
    rlhf_model_config c = tiny_config();
    rlhf_model *m = new_model(c, 1, 1, 41);
    enum { NS = 6 };
    int32_t prompts[NS][6];
    random_tokens(&prompts[0][0], NS * 6, c.vocab_size, 77);
    int32_t out[3][NS][24];
    float lp[3][NS][24];
    const int slots[3] = {6, 4, 1};
    rlhf_sample_config sc = {.temperature = 1.0f, .top_p = 1, .max_new = 12, .eos_id = 3};
    rlhf_sample_seq q[3][NS];
    for (int r = 0; r < 3; r++) {
        rlhf_sampler *s = NULL;
        CHECK_OK(rlhf_sampler_init(&s, m, slots[r]));
        for (int i = 0; i < NS; i++)
            q[r][i] = (rlhf_sample_seq){.prompt = prompts[i], .n_prompt = 1 + i, .seed = 100 + i,
                                        .out = out[r][i], .logp = lp[r][i]};
        CHECK_OK(rlhf_sampler_run(s, &sc, q[r], NS, NULL, NULL));
        rlhf_sampler_free(s);
    }
    int eos = 0;
    for (int i = 0; i < NS; i++) {
        eos += q[0][i].finish == RLHF_FINISH_EOS;
        for (int r = 1; r < 3; r++) {
            CHECK(q[r][i].n_out == q[0][i].n_out && q[r][i].finish == q[0][i].finish);
            CHECK(memcmp(out[r][i], out[0][i], q[0][i].n_out * 4) == 0);
            for (int k = 0; k < q[0][i].n_out; k++) CHECK(fabsf(lp[r][i][k] - lp[0][i][k]) < 1e-5f);
        }
        if (q[0][i].finish == RLHF_FINISH_EOS) CHECK(out[0][i][q[0][i].n_out - 1] == 3);
        else CHECK(q[0][i].n_out == 12);
    }
    printf("sampler: %d of %d sequences stopped at EOS\n", eos, NS);

    /* different seeds give different samples; top_k 1 and a tiny top_p are greedy */
    rlhf_sampler *s = NULL;
    CHECK_OK(rlhf_sampler_init(&s, m, 4));
    int32_t o[4][24];
    rlhf_sample_seq g[4];
    rlhf_sample_config scs[4] = {
        {.temperature = 0, .top_p = 1, .max_new = 16, .eos_id = -1},
        {.temperature = 1.5f, .top_k = 1, .top_p = 1, .max_new = 16, .eos_id = -1},
        {.temperature = 1.5f, .top_p = 1e-6f, .max_new = 16, .eos_id = -1},
        {.temperature = 0.7f, .top_k = 5, .top_p = 0.9f, .max_new = 16, .eos_id = -1},
    };
    for (int r = 0; r < 4; r++) {
        g[r] = (rlhf_sample_seq){.prompt = prompts[0], .n_prompt = 3, .seed = r, .out = o[r]};
        CHECK_OK(rlhf_sampler_run(s, &scs[r], &g[r], 1, NULL, NULL));
    }
    CHECK(memcmp(o[0], o[1], 16 * 4) == 0);
    CHECK(memcmp(o[0], o[2], 16 * 4) == 0);
    int32_t a[16], b2[16];
    rlhf_sample_seq sa = {.prompt = prompts[0], .n_prompt = 3, .seed = 1, .out = a};
    rlhf_sample_seq sb = {.prompt = prompts[0], .n_prompt = 3, .seed = 2, .out = b2};
    rlhf_sample_config hot = {.temperature = 2.0f, .top_p = 1, .max_new = 16, .eos_id = -1};
    CHECK_OK(rlhf_sampler_run(s, &hot, &sa, 1, NULL, NULL));
    CHECK_OK(rlhf_sampler_run(s, &hot, &sb, 1, NULL, NULL));
    CHECK(memcmp(a, b2, sizeof a) != 0);
    rlhf_sampler_free(s);
    rlhf_model_free(m);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--resume-child") == 0) return resume_child(argv[2], argv[3]);
    test_schedule();
    test_adamw_decay();
    test_mask();
    test_determinism();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) self[n] = '\0';
    test_resume(n > 0 ? self : argv[0]);
    test_overfit();
    test_sampler_greedy();
    test_sampler_batch_independence();
    TEST_MAIN_END();
}
