/* test_sample.c: the backend's token-selection op (`sample`): greedy ties and log-probs, the
 * sampled distribution against softmax (plain, temperature, top-k, top-p) by frequency over many
 * draws, the nucleus against a brute-force sorted prefix, and row independence.
 * RLHF_TEST_BACKEND selects the backend (default cpu). */
#include "backend_impl.h"
#include "test.h"

static const rlhf_backend *be;

/* be->sample through backend memory (tokens, logp, logits are host arrays here; rng stays host):
 * the same call on the CPU, and what a GPU backend needs. */
static rlhf_status sample_via(int32_t *tok, float *logp, float *logits, rlhf_rng *rng, int32_t n,
                              int32_t V, float T, int32_t top_k, float top_p) {
    void *dt = NULL, *dl = NULL, *dx = NULL;
    rlhf_status st = be->alloc(be, &dt, (size_t)n * 4);
    if (st == RLHF_OK) st = be->alloc(be, &dl, (size_t)n * 4);
    if (st == RLHF_OK) st = be->alloc(be, &dx, (size_t)n * V * 4);
    if (st == RLHF_OK) st = be->to_device(be, dx, logits, (size_t)n * V * 4);
    if (st == RLHF_OK) st = be->sample(be, dt, dl, dx, rng, n, V, T, top_k, top_p);
    if (st == RLHF_OK) st = be->to_host(be, tok, dt, (size_t)n * 4);
    if (st == RLHF_OK) st = be->to_host(be, logp, dl, (size_t)n * 4);
    be->free(be, dt);
    be->free(be, dl);
    be->free(be, dx);
    return st;
}

enum { VMAX = 4096 };
static const double *sort_prob;
static int by_prob(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    if (sort_prob[a] != sort_prob[b]) return sort_prob[a] < sort_prob[b] ? 1 : -1;
    return a - b;
}

/* The set a top-k/top-p draw may return, by brute force: sort by (p desc, index asc). */
static int keep_set(const float *logits, int V, float T, int top_k, float top_p, int *keep,
                    double *prob) {
    double mx = -INFINITY, Z = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, logits[i]);
    static int order[VMAX];
    for (int i = 0; i < V; i++) prob[i] = exp((logits[i] - mx) / T), Z += prob[i], order[i] = i;
    sort_prob = prob;
    qsort(order, V, sizeof(int), by_prob);
    int n = (top_k > 0 && top_k < V) ? top_k : V;
    double mass = 0;
    for (int i = 0; i < n; i++) mass += prob[order[i]];
    if (top_p > 0 && top_p < 1) {
        double acc = 0;
        int k = n;
        for (int i = 0; i < n; i++) {
            acc += prob[order[i]];
            if (acc >= top_p * mass) { k = i + 1; break; }
        }
        n = k;
    }
    memset(keep, 0, sizeof(int) * V);
    double kept = 0;
    for (int i = 0; i < n; i++) keep[order[i]] = 1, kept += prob[order[i]];
    for (int i = 0; i < V; i++) prob[i] = keep[i] ? prob[i] / kept : 0; /* expected frequencies */
    return n;
}

static void check_distribution(const char *what, int V, float T, int top_k, float top_p,
                               float spread) {
    enum { DRAWS = 200000, BATCH = 1000 };
    static float logits[VMAX * BATCH], base[VMAX];
    float logp[BATCH];
    int32_t tok[BATCH];
    rlhf_rng rng[BATCH];
    rlhf_rng gen;
    rlhf_rng_seed(&gen, (uint64_t)V * 31 + top_k, 3);
    for (int i = 0; i < V; i++) base[i] = spread * rlhf_rng_normal(&gen);
    base[V / 2] = base[1]; /* a tie */
    if (spread == 0) /* three levels, V/3 exact ties each: the index order decides the boundary */
        for (int i = 0; i < V; i++) base[i] = 0.1f * (float)(i % 3);
    static int keep[VMAX];
    static double expect[VMAX];
    keep_set(base, V, T, top_k, top_p, keep, expect);
    static long count[VMAX];
    memset(count, 0, sizeof count);
    double mx = -INFINITY, Z = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, base[i]);
    for (int i = 0; i < V; i++) Z += exp((base[i] - mx) / T);
    double worst_lp = 0;
    for (int d = 0; d < DRAWS / BATCH; d++) {
        for (int r = 0; r < BATCH; r++) {
            memcpy(logits + r * V, base, V * sizeof(float));
            rlhf_rng_seed(&rng[r], (uint64_t)d * BATCH + r, 11);
        }
        CHECK_OK(sample_via(tok, logp, logits, rng, BATCH, V, T, top_k, top_p));
        for (int r = 0; r < BATCH; r++) {
            if (tok[r] < 0 || tok[r] >= V) { CHECK(0); continue; }
            count[tok[r]]++;
            double lp = (base[tok[r]] - mx) / T - log(Z);
            worst_lp = fmax(worst_lp, fabs(lp - logp[r]));
        }
    }
    int outside = 0;
    double worst_z = 0;
    for (int i = 0; i < V; i++) {
        if (!keep[i]) { outside += count[i] != 0; continue; }
        double e = expect[i] * DRAWS, sd = sqrt(e * (1 - expect[i])) + 1;
        worst_z = fmax(worst_z, fabs(count[i] - e) / sd);
    }
    printf("  %-32s kept %2d of %2d, worst |z| %.2f, logp err %.1e\n", what,
           (int)(keep_set(base, V, T, top_k, top_p, keep, expect)), V, worst_z, worst_lp);
    CHECKF(outside == 0, "%s: %d tokens outside the kept set were drawn", what, outside);
    CHECKF(worst_z < 5.0, "%s: frequencies off by %.2f sigma", what, worst_z);
    CHECKF(worst_lp < 1e-5, "%s: logp error %g", what, worst_lp);
}

static void test_greedy(void) {
    float logits[2 * 5] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, /* tie: first max wins */
                           -3.0f, -2.0f, -1.0f, -4.0f, -1.5f};
    int32_t tok[2];
    float logp[2];
    rlhf_rng rng[2];
    rlhf_rng_seed(&rng[0], 1, 1);
    rlhf_rng_seed(&rng[1], 2, 1);
    rlhf_rng before = rng[0];
    CHECK_OK(sample_via(tok, logp, logits, rng, 2, 5, 0.0f, 0, 1.0f));
    CHECK(tok[0] == 1 && tok[1] == 2);
    double Z = exp(0.5) + 2 * exp(2.0) + exp(-1.0) + exp(1.0);
    CHECKF(fabs(logp[0] - (2.0 - log(Z))) < 1e-6, "greedy logp %f", logp[0]);
    CHECK(memcmp(&before, &rng[0], sizeof before) == 0); /* greedy draws no random numbers */
    /* top_k 1 is greedy at any temperature */
    CHECK_OK(sample_via(tok, logp, logits, rng, 2, 5, 3.0f, 1, 1.0f));
    CHECK(tok[0] == 1 && tok[1] == 2);
    /* bad arguments are errors, not crashes */
    CHECK(sample_via(tok, logp, logits, rng, 2, 5, -1.0f, 0, 1.0f) == RLHF_ERR_ARG);
    CHECK(sample_via(tok, logp, logits, rng, 2, 5, 1.0f, 0, 1.5f) == RLHF_ERR_ARG);
}

/* A row's token depends only on its logits and its RNG, not on the other rows. */
static void test_rows_independent(void) {
    enum { N = 6, V = 1001 };
    float *all = malloc(sizeof(float) * N * V), *one = malloc(sizeof(float) * V);
    rlhf_rng gen, rng[N], r1;
    rlhf_rng_seed(&gen, 9, 9);
    for (int i = 0; i < N * V; i++) all[i] = 3.0f * rlhf_rng_normal(&gen);
    const float cfg[3][3] = {{1.0f, 0, 1.0f}, {0.8f, 40, 0.95f}, {1.3f, 0, 0.5f}};
    for (int c = 0; c < 3; c++) {
        int32_t tok[N], t1;
        float lp[N], l1;
        for (int r = 0; r < N; r++) rlhf_rng_seed(&rng[r], 500 + r, 1);
        float *copy = malloc(sizeof(float) * N * V);
        memcpy(copy, all, sizeof(float) * N * V);
        CHECK_OK(sample_via(tok, lp, copy, rng, N, V, cfg[c][0], (int)cfg[c][1], cfg[c][2]));
        for (int r = 0; r < N; r++) {
            memcpy(one, all + r * V, sizeof(float) * V);
            rlhf_rng_seed(&r1, 500 + r, 1);
            CHECK_OK(sample_via(&t1, &l1, one, &r1, 1, V, cfg[c][0], (int)cfg[c][1], cfg[c][2]));
            CHECKF(t1 == tok[r] && l1 == lp[r], "config %d row %d: %d vs %d", c, r, t1, tok[r]);
            CHECK(memcmp(&r1, &rng[r], sizeof r1) == 0);
        }
        free(copy);
    }
    free(all);
    free(one);
}

int main(void) {
    const char *name = getenv("RLHF_TEST_BACKEND");
    if (rlhf_backend_get(name ? name : "cpu", &be) != RLHF_OK) test_skip("backend not available");
    test_greedy();
    test_rows_independent();
    printf("sampled frequencies vs softmax (200000 draws):\n");
    check_distribution("plain, T=1", 9, 1.0f, 0, 1.0f, 2.0f);
    check_distribution("T=0.5", 9, 0.5f, 0, 1.0f, 2.0f);
    check_distribution("T=2, top-k 4", 13, 2.0f, 4, 1.0f, 2.0f);
    check_distribution("top-p 0.7", 17, 1.0f, 0, 0.7f, 2.0f);
    check_distribution("top-p 0.95, T=1.5", 40, 1.5f, 0, 0.95f, 2.0f);
    check_distribution("top-k 10 then top-p 0.6", 40, 1.0f, 10, 0.6f, 2.0f);
    check_distribution("top-p 0.01 (greedy)", 21, 1.0f, 0, 0.01f, 2.0f);
    /* near-uniform rows: the nucleus boundary falls inside one crowded histogram bin */
    check_distribution("near-uniform, top-p 0.9", 500, 1.0f, 0, 0.9f, 0.05f);
    check_distribution("near-uniform, top-p 0.3", 700, 1.0f, 0, 0.3f, 0.01f);
    check_distribution("peaked, top-p 0.9", 600, 1.0f, 0, 0.9f, 4.0f);
    check_distribution("exact ties, top-p 0.5", 300, 1.0f, 0, 0.5f, 0.0f);
    TEST_MAIN_END();
}
