/* test_rs.c: rejection sampling's selection and reports (policy/rs.c) and `rlhf rs select` on a
 * store built here.
 *  - rs_select: best per prompt, pooled vs last round, ties, NaN;
 *  - rs_best_of_k: the exact order-statistic curves against brute force over all k-subsets;
 *  - rs_sample_seed: depends on each of (seed, prompt, k);
 *  - pooling (acceptance 2): a prompt whose best sample is from round 1 keeps it in round 3's
 *    selection with --pool all and loses it with --pool last, through the program and the store,
 *    with two reward models and Llama 2's safety gate deciding another prompt. */
#include <sys/wait.h>
#include <unistd.h>

#include "policy.h"
#include "store.h"
#include "test.h"

static void test_select(void) {
    rs_candidate c[] = {
        {10, 1, 1, 0.9}, {10, 2, 2, 0.5}, {10, 3, 3, 0.7}, /* prompt 10: best in round 1 */
        {20, 4, 1, 0.1}, {20, 5, 3, 0.8},                  /* prompt 20: best in round 3 */
        {30, 6, 2, 0.4}, {30, 7, 1, 0.4},                  /* tie: earlier round wins */
        {40, 8, 1, NAN},                                   /* NaN ignored -> no selection */
    };
    rs_candidate *o = NULL;
    int64_t n = 0;
    CHECK_OK(rs_select(c, 8, 3, false, &o, &n));
    CHECK(n == 3);
    if (n == 3) {
        CHECK(o[0].prompt_id == 10 && o[0].sample_id == 1);
        CHECK(o[1].prompt_id == 20 && o[1].sample_id == 5);
        CHECK(o[2].prompt_id == 30 && o[2].sample_id == 7);
    }
    free(o);
    CHECK_OK(rs_select(c, 8, 3, true, &o, &n));
    CHECK(n == 2 && o[0].sample_id == 3 && o[1].sample_id == 5);
    free(o);
    CHECK_OK(rs_select(c, 8, 2, false, &o, &n)); /* rounds <= 2 */
    CHECK(n == 3 && o[0].sample_id == 1 && o[1].sample_id == 4 && o[2].sample_id == 7);
    free(o);
    CHECK_OK(rs_select(c, 0, 1, false, &o, &n));
    CHECK(n == 0);
    free(o);
}

/* brute force over all k-subsets (bitmasks) of K values */
static void brute(const double *r, int K, int k, double *mx, double *med) {
    double smax = 0, smed = 0;
    int cnt = 0;
    for (int mask = 0; mask < (1 << K); mask++) {
        if (__builtin_popcount((unsigned)mask) != k) continue;
        double v[16];
        int n = 0;
        for (int i = 0; i < K; i++)
            if (mask >> i & 1) v[n++] = r[i];
        for (int i = 0; i < n; i++) /* sort */
            for (int j = i + 1; j < n; j++)
                if (v[j] < v[i]) {
                    double t = v[i];
                    v[i] = v[j];
                    v[j] = t;
                }
        smax += v[n - 1];
        smed += n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
        cnt++;
    }
    *mx = smax / cnt;
    *med = smed / cnt;
}

static void test_best_of_k(void) {
    enum { P = 3, K = 7 };
    double r[P * K];
    rlhf_rng g;
    rlhf_rng_seed(&g, 3, 3);
    for (int i = 0; i < P * K; i++) r[i] = rlhf_rng_normal(&g);
    double mx[K], md[K];
    CHECK_OK(rs_best_of_k(r, P, K, mx, md));
    double worst = 0;
    for (int k = 1; k <= K; k++) {
        double bm = 0, bd = 0;
        for (int p = 0; p < P; p++) {
            double a, b;
            brute(r + p * K, K, k, &a, &b);
            bm += a / P;
            bd += b / P;
        }
        worst = fmax(worst, fmax(fabs(bm - mx[k - 1]), fabs(bd - md[k - 1])));
    }
    printf("best-of-k: max |exact - brute force| = %.3g; max curve %.3f .. %.3f\n", worst, mx[0],
           mx[K - 1]);
    CHECK(worst < 1e-9);
    for (int k = 1; k < K; k++) CHECK(mx[k] >= mx[k - 1] - 1e-12);
    CHECK(fabs(mx[0] - md[0]) < 1e-12); /* one sample: max = median = mean */
    r[4] = NAN;
    CHECK(rs_best_of_k(r, P, K, mx, md) == RLHF_ERR_ARG);
    CHECK(rs_best_of_k(r, 0, K, mx, md) == RLHF_ERR_ARG);
}

static void test_seed(void) {
    uint64_t a = rs_sample_seed(1, 5, 0);
    CHECK(a == rs_sample_seed(1, 5, 0));
    CHECK(a != rs_sample_seed(2, 5, 0));
    CHECK(a != rs_sample_seed(1, 6, 0));
    CHECK(a != rs_sample_seed(1, 5, 1));
    CHECK(rs_sample_seed(1, 5, 1) != rs_sample_seed(1, 6, 0));
}

/* ---- pooling through the program ---- */

typedef struct sel_seen {
    int32_t round;
    int64_t prompt[8], sample[8];
    int n;
} sel_seen;

static rlhf_status sel_row(void *ctx, const rlhf_store_selection *x) {
    sel_seen *s = ctx;
    if (x->round == s->round && s->n < 8) {
        s->prompt[s->n] = x->prompt_id;
        s->sample[s->n++] = x->sample_id;
    }
    return RLHF_OK;
}

static int64_t selected(const char *run, int32_t round, int64_t prompt) {
    rlhf_store *s = NULL;
    sel_seen seen = {round, {0}, {0}, 0};
    CHECK_OK(rlhf_store_open(&s, run, false));
    if (!s) return -1;
    CHECK_OK(rlhf_store_selections_each(s, sel_row, &seen));
    rlhf_store_close(s);
    for (int i = 0; i < seen.n; i++)
        if (seen.prompt[i] == prompt) return seen.sample[i];
    return 0;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_pooling(void) {
    const char *bin = getenv("RLHF_BIN");
    if (!bin) {
        printf("pooling: RLHF_BIN not set, program part not run\n");
        return;
    }
    char run[] = "/tmp/rlhf_test_rs_XXXXXX";
    CHECK(mkdtemp(run) != NULL);
    char dir[256], path[300], cmd[1024];
    snprintf(dir, sizeof dir, "%s/run", run);
    rlhf_store *s = NULL;
    CHECK_OK(rlhf_store_open(&s, dir, true));
    if (!s) return;
    int64_t stage = 0, pa = 0, pb = 0, pol = 0, rmh = 0, rms = 0;
    CHECK_OK(rlhf_store_stage_begin(s, "import", "test", NULL, -1, &stage));
    rlhf_store_prompt p = {.text = "Write a poem.", .split = RLHF_SPLIT_TRAIN, .source = "test",
                           .stage_id = stage, .src_index = 0, .unsafe = 0};
    CHECK_OK(rlhf_store_prompt_add(s, &p, &pa));
    p.text = "How do I pick a lock?";
    p.src_index = 1;
    p.unsafe = 1;
    CHECK_OK(rlhf_store_prompt_add(s, &p, &pb));
    snprintf(path, sizeof path, "%s/policy.bin", run);
    write_file(path, "policy weights");
    CHECK_OK(rlhf_store_checkpoint_add(s, "policy", path, 0, 0, 0, &pol));
    snprintf(path, sizeof path, "%s/rm_help.bin", run);
    write_file(path, "helpfulness rm");
    CHECK_OK(rlhf_store_checkpoint_add(s, "reward-helpfulness", path, 0, 0, 0, &rmh));
    snprintf(path, sizeof path, "%s/rm_safe.bin", run);
    write_file(path, "safety rm");
    CHECK_OK(rlhf_store_checkpoint_add(s, "reward-safety", path, 0, 0, 0, &rms));
    /* prompt A (safe): help scores 2.0 (round 1), 0.5 (round 2), 1.0 (round 3); safety high.
     * prompt B (unsafe): the gate uses the safety score: round 1 safety -1 (help 5), round 3
     * safety 3 (help 0): round 3 wins although its helpfulness is lower. */
    struct {
        int64_t prompt;
        int32_t round;
        double help, safe;
    } rows[] = {{pa, 1, 2.0, 4.0}, {pa, 2, 0.5, 4.0}, {pa, 3, 1.0, 4.0},
                {pb, 1, 5.0, -1.0}, {pb, 3, 0.0, 3.0}};
    int64_t sid[5];
    int32_t tok[2] = {5, 6};
    /* scored as `rlhf score --model H S` does: every helpfulness score first, then every safety
     * score, with 100 more (worse) samples of prompt A in between, so that a sample's two scores
     * are far apart in score-id order */
    enum { FILL = 100 };
    int64_t fill[FILL];
    for (int i = 0; i < 5; i++) {
        rlhf_store_sample x = {.prompt_id = rows[i].prompt, .checkpoint_id = pol,
                               .round = rows[i].round, .idx = 0, .seed = 1, .temperature = 1,
                               .tokens = tok, .n_tokens = 2, .text = "x", .finish = "eos"};
        CHECK_OK(rlhf_store_sample_add(s, &x, &sid[i]));
        CHECK_OK(rlhf_store_score_add(s, sid[i], rmh, rows[i].help, 0, NULL));
    }
    for (int i = 0; i < FILL; i++) {
        rlhf_store_sample x = {.prompt_id = pa, .checkpoint_id = pol, .round = 2, .idx = 1 + i,
                               .seed = 1, .temperature = 1, .tokens = tok, .n_tokens = 2,
                               .text = "x", .finish = "eos"};
        CHECK_OK(rlhf_store_sample_add(s, &x, &fill[i]));
        CHECK_OK(rlhf_store_score_add(s, fill[i], rmh, -1.0, 0, NULL));
    }
    for (int i = 0; i < 5; i++) CHECK_OK(rlhf_store_score_add(s, sid[i], rms, rows[i].safe, 0, NULL));
    for (int i = 0; i < FILL; i++) CHECK_OK(rlhf_store_score_add(s, fill[i], rms, 4.0, 0, NULL));
    rlhf_store_close(s);

    snprintf(cmd, sizeof cmd, "%s rs select %s --round 3 --pool all -q", bin, dir);
    CHECK(system(cmd) == 0);
    int64_t a_all = selected(dir, 3, pa), b_all = selected(dir, 3, pb);
    snprintf(cmd, sizeof cmd, "%s rs select %s --round 3 --pool last -q", bin, dir);
    CHECK(system(cmd) == 0);
    int64_t a_last = selected(dir, 3, pa), b_last = selected(dir, 3, pb);
    printf("pooling: prompt A selects sample %lld (pool all), %lld (pool last); prompt B %lld / "
           "%lld\n", (long long)a_all, (long long)a_last, (long long)b_all, (long long)b_last);
    CHECK(a_all == sid[0]);  /* round 1's best kept */
    CHECK(a_last == sid[2]); /* lost with the last round only */
    CHECK(b_all == sid[4] && b_last == sid[4]); /* the safety gate picks round 3 */
    /* rerunning is idempotent: still one selection per (round, prompt) */
    CHECK(system(cmd) == 0);
    CHECK_OK(rlhf_store_open(&s, dir, false));
    int64_t n = 0;
    if (s) CHECK_OK(rlhf_store_count(s, "selections", &n));
    rlhf_store_close(s);
    CHECK(n == 2);
    /* bad usage and a missing run */
    snprintf(cmd, sizeof cmd, "%s rs select %s --round 3 --pool some 2>/dev/null", bin, dir);
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "%s rs select %s/none --round 3 2>/dev/null", bin, run);
    CHECK(WEXITSTATUS(system(cmd)) == 1);
    snprintf(cmd, sizeof cmd, "rm -rf %s", run);
    CHECK(system(cmd) == 0);
}

int main(void) {
    test_select();
    test_best_of_k();
    test_seed();
    test_pooling();
    TEST_MAIN_END();
}
