/* test_ops.c: every backend op proven (label unit).
 *
 * For each op of backend_impl.h, on awkward shapes (T=1, N=1, odd C, NKV < NH, HS=2, V not a
 * multiple of 64, packed segments through seg_start):
 *   (a) the forward against a naive float64 oracle written here:
 *       normalized error max_i |got_i - want_i| / max_i |want_i| <= TOL_FWD (1e-5);
 *   (b) the backward against central finite differences (step 1e-6, in double) of the float64
 *       oracle's loss L = sum(out * R) for a fixed random R: normalized error <= TOL_BWD (1e-4);
 * and the contract's rules: parameter gradients accumulate (buffers pre-filled with random values,
 * the difference is checked), beta 0 ignores old contents and overwriting outputs ignore them
 * (pre-filled with NaN), rows that must be exactly zero are, logprob_bwd may alias its input.
 * Also: rmsnorm and rope bitwise equal to llama2.c's code (CPU), rope_bwd(rope_fwd(x)) = x,
 * attention_decode through a KV cache filled by kv_store with random slots equal to the
 * attention_fwd rows, AdamW against a double formula over several steps, sumsq against a double
 * sum, the CPU's polynomial exp (cpu_expf) against exp, the backend table (lookup, be_missing,
 * memory), and determinism (bitwise equal reruns; on the CPU also equal across thread counts).
 *
 * The backend is "cpu" unless RLHF_TEST_BACKEND names another one (the same proofs then run
 * there and CPU-only bitwise checks are skipped; exit 77 when it is not built). Every comparison
 * prints one line; a failing one prints the normalized error, the worst index and both values.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "cpu/cpu_impl.h" /* cpu_expf, the CPU backend's vectorizable exp */
#include "rlhf.h"
#include "test.h"

#define TOL_FWD    1e-5  /* forward vs float64 oracle, normalized */
#define TOL_BWD    1e-4  /* analytic float32 gradient vs finite differences, normalized */
#define TOL_ADAM   1e-6  /* AdamW state after several steps vs double formula, normalized */
#define TOL_SUMSQ  1e-12 /* sumsq vs double sum, relative */
#define FD_STEP    1e-6
#define FD_MAX_PTS 6000 /* larger inputs are finite-differenced on a spread subset */

static const rlhf_backend *be;
static bool on_cpu;
static rlhf_rng rng;

/* ---- buffers: device (backend) and host, freed together after each test ---- */

#define MAX_ALLOCS 1024
static void *dev_allocs[MAX_ALLOCS], *host_allocs[MAX_ALLOCS];
static int n_dev, n_host;

static void fatal(const char *what, size_t bytes) {
    fprintf(stderr, "FATAL: %s of %zu bytes failed: %s\n", what, bytes, rlhf_last_error());
    exit(1);
}

static void *dalloc(size_t bytes) {
    void *p = NULL;
    if (n_dev == MAX_ALLOCS || be->alloc(be, &p, bytes) != RLHF_OK) fatal("device alloc", bytes);
    dev_allocs[n_dev++] = p;
    return p;
}

static void *halloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p || n_host == MAX_ALLOCS) fatal("host alloc", bytes);
    host_allocs[n_host++] = p;
    return p;
}

static void free_all(void) {
    for (int i = 0; i < n_dev; i++)
        be->free(be, dev_allocs[i]);
    for (int i = 0; i < n_host; i++)
        free(host_allocs[i]);
    n_dev = n_host = 0;
}

static float *hf(size_t n) { return halloc(n * sizeof(float)); }
static double *hd(size_t n) { return halloc(n * sizeof(double)); }
static int32_t *hi(size_t n) { return halloc(n * sizeof(int32_t)); }

static float *up_f(const float *h, size_t n) {
    float *d = dalloc(n * sizeof(float));
    if (h && n) CHECK_OK(be->to_device(be, d, h, n * sizeof(float)));
    return d;
}
static int32_t *up_i(const int32_t *h, size_t n) {
    int32_t *d = dalloc(n * sizeof(int32_t));
    if (h && n) CHECK_OK(be->to_device(be, d, h, n * sizeof(int32_t)));
    return d;
}
static void set_f(float *d, const float *h, size_t n) {
    if (n) CHECK_OK(be->to_device(be, d, h, n * sizeof(float)));
}
static float *down_f(const float *d, size_t n) {
    float *h = hf(n);
    if (n) CHECK_OK(be->to_host(be, h, d, n * sizeof(float)));
    return h;
}

static float *rand_normal(size_t n, float scale) {
    float *h = hf(n);
    for (size_t i = 0; i < n; i++)
        h[i] = scale * rlhf_rng_normal(&rng);
    return h;
}
static float *filled(size_t n, float v) {
    float *h = hf(n);
    for (size_t i = 0; i < n; i++)
        h[i] = v;
    return h;
}
static int32_t rand_int(int32_t lo, int32_t hi_incl) {
    return lo + (int32_t)(rlhf_rng_u32(&rng) % (uint32_t)(hi_incl - lo + 1));
}
static double *to_d(const float *f, size_t n) {
    double *d = hd(n);
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    return d;
}
/* got - base, in double: what an accumulating op added */
static double *delta_d(const float *got, const float *base, size_t n) {
    double *d = hd(n);
    for (size_t i = 0; i < n; i++)
        d[i] = (double)got[i] - (double)base[i];
    return d;
}

/* ---- comparisons ---- */

static char label_buf[256];
#define LABEL(...) (snprintf(label_buf, sizeof label_buf, __VA_ARGS__), label_buf)

/* Normalized error max_i |got_i - want_i| / max_i |want_i| (1 when want is all zero). */
static void expect_near(const char *file, int line, const char *what, const double *got,
                        const double *want, size_t n, double tol) {
    double ref = 0;
    for (size_t i = 0; i < n; i++)
        ref = fmax(ref, fabs(want[i]));
    if (ref == 0) ref = 1;
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]) / ref;
        if (isnan(d)) d = INFINITY;
        if (d > worst) {
            worst = d;
            wi = i;
        }
    }
    bool ok = worst <= tol;
    test_checks++;
    printf("  %-70s err %.2e (tol %.0e)%s\n", what, worst, tol, ok ? "" : "  FAIL");
    if (!ok) {
        test_failures++;
        fprintf(stderr,
                "FAIL %s:%d: %s: normalized error %.3e > %.0e at index %zu: got %.9g want %.9g "
                "(max |want| %.3g)\n",
                file, line, what, worst, tol, wi, n ? got[wi] : 0.0, n ? want[wi] : 0.0, ref);
    }
}
#define EXPECT_NEAR(what, got, want, n, tol)                                                       \
    expect_near(__FILE__, __LINE__, what, got, want, n, tol)
/* float results against a double reference */
#define EXPECT_NEAR_F(what, gotf, want, n, tol)                                                    \
    expect_near(__FILE__, __LINE__, what, to_d(gotf, n), want, n, tol)

static void expect_same(const char *file, int line, const char *what, const float *a,
                        const float *b, size_t n) {
    size_t i = 0;
    while (i < n && memcmp(&a[i], &b[i], sizeof(float)) == 0)
        i++;
    bool ok = i == n;
    test_checks++;
    printf("  %-70s %s\n", what, ok ? "bitwise equal" : "DIFFER  FAIL");
    if (!ok) {
        uint32_t ba, bb;
        memcpy(&ba, &a[i], 4);
        memcpy(&bb, &b[i], 4);
        test_failures++;
        fprintf(stderr,
                "FAIL %s:%d: %s: first difference at index %zu: %.9g (0x%08x) vs %.9g (0x%08x)\n",
                file, line, what, i, a[i], ba, b[i], bb);
    }
}
#define EXPECT_SAME(what, a, b, n) expect_same(__FILE__, __LINE__, what, a, b, n)

static void expect_zero(const char *file, int line, const char *what, const float *a, size_t n) {
    size_t i = 0;
    while (i < n && a[i] == 0.0f)
        i++;
    test_checks++;
    printf("  %-70s %s\n", what, i == n ? "all zero" : "NONZERO  FAIL");
    if (i < n) {
        test_failures++;
        fprintf(stderr, "FAIL %s:%d: %s: index %zu is %.9g, want 0\n", file, line, what, i, a[i]);
    }
}
#define EXPECT_ZERO(what, a, n) expect_zero(__FILE__, __LINE__, what, a, n)

/* ---- finite differences ---- */

typedef double (*loss_fn)(void *ctx);

/* Checks got (the analytic gradient of L w.r.t. x, in double) against central differences of L,
 * perturbing x (double, restored) in place. Inputs larger than max_pts are checked on a spread
 * pseudo-random subset of max_pts entries. */
static void check_grad(const char *file, int line, const char *what, loss_fn L, void *ctx,
                       double *x, size_t n, const double *got, double tol, size_t max_pts) {
    size_t m = n <= max_pts ? n : max_pts;
    double *fd = hd(m), *g = hd(m);
    for (size_t s = 0; s < m; s++) {
        size_t k = s;
        if (m < n) {
            size_t span = n / m;
            k = s * span + rlhf_rng_u32(&rng) % span;
        }
        double xk = x[k];
        x[k] = xk + FD_STEP;
        double lp = L(ctx);
        x[k] = xk - FD_STEP;
        double lm = L(ctx);
        x[k] = xk;
        fd[s] = (lp - lm) / (2 * FD_STEP);
        g[s] = got[k];
    }
    char w[300];
    snprintf(w, sizeof w, "%s%s", what, m < n ? " (subset)" : "");
    expect_near(file, line, w, g, fd, m, tol);
}
#define CHECK_GRAD(what, L, ctx, x, n, got)                                                        \
    check_grad(__FILE__, __LINE__, what, L, ctx, x, n, got, TOL_BWD, FD_MAX_PTS)

static double dot_d(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* =================================================================================== backend */

static void test_backend_table(void) {
    printf("backend table\n");
    const rlhf_backend *b = NULL;
    CHECK_OK(rlhf_backend_get("cpu", &b));
    CHECK(b == rlhf_backend_cpu());
    CHECK(strcmp(rlhf_backend_name(b), "cpu") == 0);
    CHECK(b->device == -1);
    b = (const rlhf_backend *)1;
    CHECK(rlhf_backend_get("tpu", &b) == RLHF_ERR_UNSUPPORTED && b == NULL);
    CHECK(strstr(rlhf_last_error(), "tpu") != NULL);
    CHECK(rlhf_backend_get("cudax", &b) == RLHF_ERR_UNSUPPORTED);
    CHECK(rlhf_backend_get("cuda:", &b) == RLHF_ERR_UNSUPPORTED);
    CHECK(rlhf_backend_get(NULL, &b) == RLHF_ERR_ARG);
    CHECK(rlhf_backend_get("cpu", NULL) == RLHF_ERR_ARG);
#ifndef RLHF_HAVE_CUDA
    if (!getenv("RLHF_CUDA_LIB")) { /* the emulator's module is named there */
        CHECK(rlhf_backend_get("cuda", &b) == RLHF_ERR_UNSUPPORTED);
        CHECK(strstr(rlhf_last_error(), "CUDA backend not built") != NULL);
        CHECK(rlhf_backend_get("cuda:1", &b) == RLHF_ERR_UNSUPPORTED);
    }
#endif

    /* a missing op is an explicit error naming the op and the backend */
    rlhf_backend partial = *rlhf_backend_cpu();
    partial.name = "partial";
    partial.add = NULL;
    float y = 1, x = 2;
    rlhf_error_clear();
    CHECK(BE_CALL(&partial, add, &y, &x, 1) == RLHF_ERR_UNSUPPORTED);
    CHECKF(strstr(rlhf_last_error(), "op add is not implemented on backend partial") != NULL,
           "last error: %s", rlhf_last_error());
    CHECK(y == 1);
    CHECK_OK(BE_CALL(rlhf_backend_cpu(), add, &y, &x, 1));
    CHECK(y == 3);

    /* memory: aligned, zero-filled (also when reusing freed memory), copies */
    for (int rep = 0; rep < 3; rep++) {
        size_t bytes = 1000 + 24 * (size_t)rep;
        unsigned char *p = NULL;
        CHECK_OK(be->alloc(be, (void **)&p, bytes));
        if (!p) break;
        if (on_cpu) CHECK(((uintptr_t)p & 63) == 0);
        unsigned char *h = halloc(bytes);
        memset(h, 0xAB, bytes);
        CHECK_OK(be->to_host(be, h, p, bytes));
        size_t nz = 0;
        for (size_t i = 0; i < bytes; i++)
            nz += h[i] != 0;
        CHECKF(nz == 0, "fresh allocation has %zu nonzero bytes", nz);
        memset(h, 0x5A, bytes);
        CHECK_OK(be->to_device(be, p, h, bytes));
        unsigned char *q = NULL;
        CHECK_OK(be->alloc(be, (void **)&q, bytes));
        CHECK_OK(be->copy(be, q, p, bytes));
        unsigned char *h2 = halloc(bytes);
        CHECK_OK(be->to_host(be, h2, q, bytes));
        CHECK(memcmp(h, h2, bytes) == 0);
        CHECK_OK(be->zero(be, q, bytes / 2));
        CHECK_OK(be->to_host(be, h2, q, bytes));
        CHECK(h2[0] == 0 && h2[bytes / 2 - 1] == 0 && h2[bytes / 2] == 0x5A);
        CHECK_OK(be->sync(be));
        be->free(be, q);
        be->free(be, p);
    }
    be->free(be, NULL);

    int t0 = rlhf_get_threads();
    rlhf_set_threads(3);
    CHECK(rlhf_get_threads() == 3);
    rlhf_set_threads(0); /* leaves it */
    CHECK(rlhf_get_threads() == 3);
    rlhf_set_threads(t0);
    CHECK(rlhf_get_threads() == t0);
    free_all();
}

/* =================================================================================== embed */

typedef struct {
    int64_t N;
    int32_t C;
    const int32_t *tok;
    double *wte, *R;
} embed_ctx;

static double embed_loss(void *p) {
    embed_ctx *c = p;
    double s = 0;
    for (int64_t i = 0; i < c->N; i++)
        s += dot_d(c->wte + (int64_t)c->tok[i] * c->C, c->R + i * c->C, (size_t)c->C);
    return s;
}

static void test_embed(void) {
    printf("embed_fwd / embed_bwd\n");
    const int32_t V = 11, C = 7;
    const int32_t toks[] = {3, 3, 0, 10, 3, 7, 0};
    const int64_t Ns[] = {1, 7};
    for (int ci = 0; ci < 2; ci++) {
        int64_t N = Ns[ci];
        int32_t *tok = hi((size_t)N);
        memcpy(tok, toks + (ci == 0 ? 3 : 0), (size_t)N * sizeof(int32_t));
        float *wte = rand_normal((size_t)V * C, 1);
        float *dout = rand_normal((size_t)N * C, 1);
        float *dw0 = rand_normal((size_t)V * C, 1);
        int32_t *d_tok = up_i(tok, (size_t)N);
        float *d_wte = up_f(wte, (size_t)V * C),
              *d_out = up_f(filled((size_t)N * C, NAN), (size_t)N * C);
        CHECK_OK(BE_CALL(be, embed_fwd, d_out, d_tok, d_wte, N, C));
        float *out = down_f(d_out, (size_t)N * C);
        float *want = hf((size_t)N * C);
        for (int64_t i = 0; i < N; i++)
            memcpy(want + i * C, wte + tok[i] * C, (size_t)C * sizeof(float));
        EXPECT_SAME(LABEL("embed_fwd N=%lld C=%d V=%d: rows copied", (long long)N, C, V), out, want,
                    (size_t)N * C);

        float *d_dw = up_f(dw0, (size_t)V * C), *d_dout = up_f(dout, (size_t)N * C);
        CHECK_OK(BE_CALL(be, embed_bwd, d_dw, d_dout, d_tok, N, C, V));
        float *dw = down_f(d_dw, (size_t)V * C);
        double *want_dw = to_d(dw0, (size_t)V * C);
        for (int64_t i = 0; i < N; i++)
            for (int32_t c = 0; c < C; c++)
                want_dw[tok[i] * C + c] += dout[i * C + c];
        EXPECT_NEAR_F(LABEL("embed_bwd N=%lld repeated tokens: dwte accumulated", (long long)N), dw,
                      want_dw, (size_t)V * C, 1e-6);
        embed_ctx ctx = {N, C, tok, to_d(wte, (size_t)V * C), to_d(dout, (size_t)N * C)};
        CHECK_GRAD(LABEL("embed_bwd N=%lld vs finite differences", (long long)N), embed_loss, &ctx,
                   ctx.wte, (size_t)V * C, delta_d(dw, dw0, (size_t)V * C));
        bool untouched = true; /* rows of tokens not present keep their exact old value */
        for (int32_t v = 0; v < V; v++) {
            bool used = false;
            for (int64_t i = 0; i < N; i++)
                used |= tok[i] == v;
            if (!used) untouched &= memcmp(dw + v * C, dw0 + v * C, (size_t)C * sizeof(float)) == 0;
        }
        CHECK(untouched);
    }
    free_all();
}

/* =================================================================================== matmul */

typedef struct {
    int64_t N;
    int32_t IC, OC;
    double *inp, *w, *R;
} mm_ctx;

static void mm_oracle(const mm_ctx *c, double *out) {
    for (int64_t i = 0; i < c->N; i++)
        for (int32_t o = 0; o < c->OC; o++)
            out[i * c->OC + o] =
                dot_d(c->inp + i * c->IC, c->w + (int64_t)o * c->IC, (size_t)c->IC);
}

static double mm_loss(void *p) {
    mm_ctx *c = p;
    double s = 0;
    for (int64_t i = 0; i < c->N; i++)
        for (int32_t o = 0; o < c->OC; o++)
            s += dot_d(c->inp + i * c->IC, c->w + (int64_t)o * c->IC, (size_t)c->IC) *
                 c->R[i * c->OC + o];
    return s;
}

static void test_matmul(void) {
    printf("matmul_fwd / matmul_bwd\n");
    const int shapes[][3] = {{1, 7, 13}, {5, 13, 7}, {3, 1, 5}, {37, 64, 33}, {2, 130, 3}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int64_t N = shapes[si][0];
        int32_t IC = shapes[si][1], OC = shapes[si][2];
        size_t ni = (size_t)N * IC, nw = (size_t)OC * IC, no = (size_t)N * OC;
        float *inp = rand_normal(ni, 1), *w = rand_normal(nw, 1), *R = rand_normal(no, 1);
        float *o0 = rand_normal(no, 1), *di0 = rand_normal(ni, 1), *dw0 = rand_normal(nw, 1);
        mm_ctx ctx = {N, IC, OC, to_d(inp, ni), to_d(w, nw), to_d(R, no)};
        double *want = hd(no);
        mm_oracle(&ctx, want);
        float *d_inp = up_f(inp, ni), *d_w = up_f(w, nw), *d_R = up_f(R, no);

        float *d_out = up_f(filled(no, NAN), no);
        CHECK_OK(BE_CALL(be, matmul_fwd, d_out, d_inp, d_w, N, IC, OC, 0.0f));
        EXPECT_NEAR_F(
            LABEL("matmul_fwd N=%lld IC=%d OC=%d beta=0 (out was NaN)", (long long)N, IC, OC),
            down_f(d_out, no), want, no, TOL_FWD);
        set_f(d_out, o0, no);
        CHECK_OK(BE_CALL(be, matmul_fwd, d_out, d_inp, d_w, N, IC, OC, 1.0f));
        EXPECT_NEAR(LABEL("matmul_fwd N=%lld IC=%d OC=%d beta=1: out - out0", (long long)N, IC, OC),
                    delta_d(down_f(d_out, no), o0, no), want, no, TOL_FWD);

        /* dinp beta 0 over NaN, no dw */
        float *d_di = up_f(filled(ni, NAN), ni), *d_dw = up_f(dw0, nw);
        CHECK_OK(BE_CALL(be, matmul_bwd, d_di, NULL, d_R, d_inp, d_w, N, IC, OC, 0.0f));
        double *gi = to_d(down_f(d_di, ni), ni);
        CHECK_GRAD(
            LABEL("matmul_bwd N=%lld IC=%d OC=%d dinp beta=0 (was NaN)", (long long)N, IC, OC),
            mm_loss, &ctx, ctx.inp, ni, gi);
        /* dinp beta 1 and dw accumulate */
        set_f(d_di, di0, ni);
        CHECK_OK(BE_CALL(be, matmul_bwd, d_di, d_dw, d_R, d_inp, d_w, N, IC, OC, 1.0f));
        CHECK_GRAD(
            LABEL("matmul_bwd N=%lld IC=%d OC=%d dinp beta=1: dinp - dinp0", (long long)N, IC, OC),
            mm_loss, &ctx, ctx.inp, ni, delta_d(down_f(d_di, ni), di0, ni));
        float *dw1 = down_f(d_dw, nw);
        CHECK_GRAD(LABEL("matmul_bwd N=%lld IC=%d OC=%d dw += : dw - dw0", (long long)N, IC, OC),
                   mm_loss, &ctx, ctx.w, nw, delta_d(dw1, dw0, nw));
        /* dinp NULL: only dw, accumulating a second time */
        CHECK_OK(BE_CALL(be, matmul_bwd, NULL, d_dw, d_R, d_inp, d_w, N, IC, OC, 0.0f));
        EXPECT_NEAR(LABEL("matmul_bwd N=%lld IC=%d OC=%d dinp NULL: second dw accumulation",
                          (long long)N, IC, OC),
                    delta_d(down_f(d_dw, nw), dw1, nw), delta_d(dw1, dw0, nw), nw, TOL_FWD);
    }
    free_all();
}

/* =================================================================================== rmsnorm */

typedef struct {
    int64_t N;
    int32_t C;
    double eps;
    double *inp, *w, *R;
} rms_ctx;

static double rms_row(const rms_ctx *c, int64_t i, double *out_row) {
    const double *x = c->inp + i * c->C;
    double ss = 0;
    for (int32_t j = 0; j < c->C; j++)
        ss += x[j] * x[j];
    double r = 1.0 / sqrt(ss / c->C + c->eps);
    if (out_row)
        for (int32_t j = 0; j < c->C; j++)
            out_row[j] = x[j] * r * c->w[j];
    return r;
}

static double rms_loss(void *p) {
    rms_ctx *c = p;
    double s = 0;
    for (int64_t i = 0; i < c->N; i++) {
        double r = rms_row(c, i, NULL);
        for (int32_t j = 0; j < c->C; j++)
            s += c->inp[i * c->C + j] * r * c->w[j] * c->R[i * c->C + j];
    }
    return s;
}

/* llama2.c run.c rmsnorm, verbatim but for eps. llama2.c's `make run` (-O3, no -march) has no FMA
 * instructions, so neither may this reference (GCC does not contract in -std=c11 mode; clang
 * would by default). */
static void l2c_rmsnorm(float *o, float *x, float *weight, int size, float eps) {
#ifdef __clang__
#pragma clang fp contract(off)
#endif
    float ss = 0.0f;
    for (int j = 0; j < size; j++)
        ss += x[j] * x[j];
    ss /= size;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < size; j++)
        o[j] = weight[j] * (ss * x[j]);
}

static void test_rmsnorm(void) {
    printf("rmsnorm_fwd / rmsnorm_bwd\n");
    const int shapes[][2] = {{1, 7}, {5, 13}, {3, 64}, {2, 100}};
    const float eps = 1e-5f;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int64_t N = shapes[si][0];
        int32_t C = shapes[si][1];
        size_t n = (size_t)N * C;
        float *inp = rand_normal(n, 1), *w = rand_normal((size_t)C, 0.5f), *R = rand_normal(n, 1);
        for (int32_t j = 0; j < C; j++)
            w[j] += 1;
        float *di0 = rand_normal(n, 1), *dw0 = rand_normal((size_t)C, 1);
        rms_ctx ctx = {N, C, eps, to_d(inp, n), to_d(w, (size_t)C), to_d(R, n)};
        double *want = hd(n), *want_r = hd((size_t)N);
        for (int64_t i = 0; i < N; i++)
            want_r[i] = rms_row(&ctx, i, want + i * C);

        float *d_inp = up_f(inp, n), *d_w = up_f(w, (size_t)C), *d_out = up_f(filled(n, NAN), n);
        float *d_rstd = up_f(filled((size_t)N, NAN), (size_t)N);
        CHECK_OK(BE_CALL(be, rmsnorm_fwd, d_out, d_rstd, d_inp, d_w, N, C, eps));
        float *out = down_f(d_out, n), *rstd = down_f(d_rstd, (size_t)N);
        EXPECT_NEAR_F(LABEL("rmsnorm_fwd N=%lld C=%d out", (long long)N, C), out, want, n, TOL_FWD);
        EXPECT_NEAR_F(LABEL("rmsnorm_fwd N=%lld C=%d rstd", (long long)N, C), rstd, want_r,
                      (size_t)N, TOL_FWD);
        float *d_out2 = up_f(NULL, n);
        CHECK_OK(BE_CALL(be, rmsnorm_fwd, d_out2, NULL, d_inp, d_w, N, C, eps));
        EXPECT_SAME(LABEL("rmsnorm_fwd N=%lld C=%d rstd NULL: same out", (long long)N, C),
                    down_f(d_out2, n), out, n);
        if (on_cpu) {
            float *l2c = hf(n);
            for (int64_t i = 0; i < N; i++)
                l2c_rmsnorm(l2c + i * C, inp + i * C, w, C, eps);
            EXPECT_SAME(LABEL("rmsnorm_fwd N=%lld C=%d vs llama2.c rmsnorm", (long long)N, C), out,
                        l2c, n);
            float *d_x = up_f(inp, n); /* in place, as llama2.c's final norm */
            CHECK_OK(BE_CALL(be, rmsnorm_fwd, d_x, NULL, d_x, d_w, N, C, eps));
            EXPECT_SAME(LABEL("rmsnorm_fwd N=%lld C=%d in place", (long long)N, C), down_f(d_x, n),
                        out, n);
        }

        float *d_di = up_f(di0, n), *d_dw = up_f(dw0, (size_t)C), *d_R = up_f(R, n);
        CHECK_OK(BE_CALL(be, rmsnorm_bwd, d_di, d_dw, d_R, d_inp, d_w, d_rstd, N, C));
        CHECK_GRAD(LABEL("rmsnorm_bwd N=%lld C=%d dinp += : dinp - dinp0", (long long)N, C),
                   rms_loss, &ctx, ctx.inp, n, delta_d(down_f(d_di, n), di0, n));
        CHECK_GRAD(LABEL("rmsnorm_bwd N=%lld C=%d dw += : dw - dw0", (long long)N, C), rms_loss,
                   &ctx, ctx.w, (size_t)C, delta_d(down_f(d_dw, (size_t)C), dw0, (size_t)C));
    }
    free_all();
}

/* =================================================================================== rope */

typedef struct {
    int64_t N;
    int32_t T, nh, HS;
    double theta;
    const int32_t *pos;
    double *x, *R;
} rope_ctx;

static void rope_oracle(const rope_ctx *c, const double *x, double *out) {
    for (int64_t i = 0; i < c->N; i++) {
        double p = c->pos ? c->pos[i] : (double)(i % c->T);
        for (int32_t h = 0; h < c->nh; h++) {
            const double *xr = x + (i * c->nh + h) * c->HS;
            double *o = out + (i * c->nh + h) * c->HS;
            for (int32_t j = 0; j + 1 < c->HS; j += 2) {
                double a = p * pow(c->theta, -(double)j / c->HS);
                o[j] = xr[j] * cos(a) - xr[j + 1] * sin(a);
                o[j + 1] = xr[j] * sin(a) + xr[j + 1] * cos(a);
            }
        }
    }
}

static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t n = (size_t)c->N * c->nh * c->HS;
    double *out = malloc(n * sizeof(double));
    rope_oracle(c, c->x, out);
    double s = dot_d(out, c->R, n);
    free(out);
    return s;
}

/* llama2.c run.c RoPE for one row (q or k of nh heads) at position pos, theta as a parameter */
static void l2c_rope(float *vec, int dim, int head_size, int pos, float theta) {
#ifdef __clang__
#pragma clang fp contract(off)
#endif
    for (int i = 0; i < dim; i += 2) {
        int head_dim = i % head_size;
        float freq = 1.0f / powf(theta, head_dim / (float)head_size);
        float val = pos * freq;
        float fcr = cosf(val);
        float fci = sinf(val);
        float v0 = vec[i];
        float v1 = vec[i + 1];
        vec[i] = v0 * fcr - v1 * fci;
        vec[i + 1] = v0 * fci + v1 * fcr;
    }
}

static void test_rope(void) {
    printf("rope_fwd / rope_bwd\n");
    /* B, T, nh, HS, explicit positions, theta */
    const struct {
        int B, T, nh, HS, explicit_pos;
        float theta;
    } cases[] = {
        {1, 1, 1, 2, 0, 10000.0f},  {2, 5, 3, 2, 0, 10000.0f},  {2, 7, 2, 8, 0, 10000.0f},
        {1, 9, 4, 16, 1, 10000.0f}, {3, 4, 1, 6, 1, 500000.0f}, {1, 3, 2, 48, 0, 10000.0f},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int64_t N = (int64_t)cases[ci].B * cases[ci].T;
        int32_t T = cases[ci].T, nh = cases[ci].nh, HS = cases[ci].HS;
        float theta = cases[ci].theta;
        size_t n = (size_t)N * nh * HS;
        int32_t *pos = NULL, *d_pos = NULL;
        if (cases[ci].explicit_pos) {
            pos = hi((size_t)N);
            for (int64_t i = 0; i < N; i++)
                pos[i] = rand_int(0, 40);
            d_pos = up_i(pos, (size_t)N);
        }
        float *x = rand_normal(n, 1), *R = rand_normal(n, 1);
        rope_ctx ctx = {N, T, nh, HS, theta, pos, to_d(x, n), to_d(R, n)};
        double *want = hd(n);
        rope_oracle(&ctx, ctx.x, want);
        char what[128];
        snprintf(what, sizeof what, "N=%lld T=%d nh=%d HS=%d pos %s theta %g", (long long)N, T, nh,
                 HS, pos ? "given" : "NULL", theta);

        float *d_x = up_f(x, n);
        CHECK_OK(BE_CALL(be, rope_fwd, d_x, d_pos, N, T, nh, HS, theta));
        float *y = down_f(d_x, n);
        EXPECT_NEAR_F(LABEL("rope_fwd %s", what), y, want, n, TOL_FWD);
        if (on_cpu) {
            float *l2c = hf(n);
            memcpy(l2c, x, n * sizeof(float));
            for (int64_t i = 0; i < N; i++)
                l2c_rope(l2c + i * nh * HS, nh * HS, HS, pos ? pos[i] : (int)(i % T), theta);
            EXPECT_SAME(LABEL("rope_fwd %s vs llama2.c", what), y, l2c, n);
        }
        /* the backward undoes the forward */
        CHECK_OK(BE_CALL(be, rope_bwd, d_x, d_pos, N, T, nh, HS, theta));
        EXPECT_NEAR_F(LABEL("rope_bwd(rope_fwd(x)) = x %s", what), down_f(d_x, n), ctx.x, n, 1e-6);
        /* and is the gradient */
        set_f(d_x, R, n);
        CHECK_OK(BE_CALL(be, rope_bwd, d_x, d_pos, N, T, nh, HS, theta));
        CHECK_GRAD(LABEL("rope_bwd %s", what), rope_loss, &ctx, ctx.x, n, to_d(down_f(d_x, n), n));
    }
    free_all();
}

/* =================================================================================== attention */

typedef struct {
    int32_t B, T, NH, NKV, HS;
    const int32_t *seg;
    double *q, *k, *v, *R;
    double *out, *lse, *att; /* oracle outputs and scratch (T) */
} att_ctx;

static void att_oracle(att_ctx *c) {
    int32_t B = c->B, T = c->T, NH = c->NH, NKV = c->NKV, HS = c->HS, G = NH / NKV;
    for (int32_t b = 0; b < B; b++)
        for (int32_t h = 0; h < NH; h++)
            for (int32_t t = 0; t < T; t++) {
                int64_t bt = (int64_t)b * T + t;
                int32_t s0 = c->seg ? c->seg[bt] : 0;
                const double *qr = c->q + (bt * NH + h) * HS;
                double m = -INFINITY;
                for (int32_t j = s0; j <= t; j++) {
                    const double *kr = c->k + (((int64_t)b * T + j) * NKV + h / G) * HS;
                    c->att[j] = dot_d(qr, kr, (size_t)HS) / sqrt((double)HS);
                    m = fmax(m, c->att[j]);
                }
                double sum = 0;
                for (int32_t j = s0; j <= t; j++)
                    sum += exp(c->att[j] - m);
                double *o = c->out + (bt * NH + h) * HS;
                for (int32_t d = 0; d < HS; d++)
                    o[d] = 0;
                for (int32_t j = s0; j <= t; j++) {
                    const double *vr = c->v + (((int64_t)b * T + j) * NKV + h / G) * HS;
                    double p = exp(c->att[j] - m) / sum;
                    for (int32_t d = 0; d < HS; d++)
                        o[d] += p * vr[d];
                }
                c->lse[((int64_t)b * NH + h) * T + t] = m + log(sum);
            }
}

static double att_loss(void *p) {
    att_ctx *c = p;
    att_oracle(c);
    return dot_d(c->out, c->R, (size_t)c->B * c->T * c->NH * c->HS);
}

/* Packed segments: each row b is cut at random points; seg[b,t] = start of t's segment. */
static int32_t *make_segments(int32_t B, int32_t T) {
    int32_t *seg = hi((size_t)B * T);
    for (int32_t b = 0; b < B; b++) {
        int32_t start = 0;
        for (int32_t t = 0; t < T; t++) {
            if (t > 0 && rlhf_rng_uniform(&rng) < 0.3f) start = t;
            seg[b * T + t] = start;
        }
    }
    return seg;
}

static void test_attention(void) {
    printf("attention_fwd / attention_bwd\n");
    if (on_cpu) { /* NH must be a multiple of NKV */
        float x[12] = {0};
        CHECK(BE_CALL(be, attention_fwd, x, x, x, x, x, NULL, 1, 1, 3, 2, 2) == RLHF_ERR_ARG);
        CHECK(BE_CALL(be, attention_bwd, x, x, x, x, x, x, x, x, x, NULL, 1, 1, 3, 2, 2) ==
              RLHF_ERR_ARG);
    }
    const struct {
        int B, T, NH, NKV, HS, seg;
    } cases[] = {
        {1, 1, 2, 1, 2, 0}, {2, 5, 4, 1, 2, 0},   {2, 7, 6, 2, 4, 0},  {1, 9, 3, 3, 8, 1},
        {2, 6, 4, 2, 6, 1}, {1, 13, 4, 2, 20, 0}, {1, 4, 2, 2, 40, 1}, {2, 1, 4, 4, 3, 1},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int32_t B = cases[ci].B, T = cases[ci].T, NH = cases[ci].NH, NKV = cases[ci].NKV,
                HS = cases[ci].HS;
        size_t nq = (size_t)B * T * NH * HS, nk = (size_t)B * T * NKV * HS, nl = (size_t)B * NH * T;
        int32_t *seg = cases[ci].seg ? make_segments(B, T) : NULL;
        float *q = rand_normal(nq, 1), *k = rand_normal(nk, 1), *v = rand_normal(nk, 1);
        float *R = rand_normal(nq, 1);
        att_ctx ctx = {B,      T,           NH,           NKV,         HS,
                       seg,    to_d(q, nq), to_d(k, nk),  to_d(v, nk), to_d(R, nq),
                       hd(nq), hd(nl),      hd((size_t)T)};
        att_oracle(&ctx);
        double *want = hd(nq), *want_lse = hd(nl);
        memcpy(want, ctx.out, nq * sizeof(double));
        memcpy(want_lse, ctx.lse, nl * sizeof(double));
        char what[128];
        snprintf(what, sizeof what, "B=%d T=%d NH=%d NKV=%d HS=%d%s", B, T, NH, NKV, HS,
                 seg ? " seg_start" : "");

        float *d_q = up_f(q, nq), *d_k = up_f(k, nk), *d_v = up_f(v, nk);
        int32_t *d_seg = seg ? up_i(seg, (size_t)B * T) : NULL;
        float *d_out = up_f(filled(nq, NAN), nq), *d_lse = up_f(filled(nl, NAN), nl);
        CHECK_OK(BE_CALL(be, attention_fwd, d_out, d_lse, d_q, d_k, d_v, d_seg, B, T, NH, NKV, HS));
        EXPECT_NEAR_F(LABEL("attention_fwd %s out", what), down_f(d_out, nq), want, nq, TOL_FWD);
        EXPECT_NEAR_F(LABEL("attention_fwd %s lse", what), down_f(d_lse, nl), want_lse, nl,
                      TOL_FWD);

        float *d_R = up_f(R, nq);
        float *d_dq = up_f(filled(nq, NAN), nq), *d_dk = up_f(filled(nk, NAN), nk),
              *d_dv = up_f(filled(nk, NAN), nk);
        CHECK_OK(BE_CALL(be, attention_bwd, d_dq, d_dk, d_dv, d_R, d_q, d_k, d_v, d_out, d_lse,
                         d_seg, B, T, NH, NKV, HS));
        CHECK_GRAD(LABEL("attention_bwd %s dq", what), att_loss, &ctx, ctx.q, nq,
                   to_d(down_f(d_dq, nq), nq));
        CHECK_GRAD(LABEL("attention_bwd %s dk", what), att_loss, &ctx, ctx.k, nk,
                   to_d(down_f(d_dk, nk), nk));
        CHECK_GRAD(LABEL("attention_bwd %s dv", what), att_loss, &ctx, ctx.v, nk,
                   to_d(down_f(d_dv, nk), nk));
    }
    free_all();
}

/* ============================================================================ kv cache decode */

static void test_decode(void) {
    printf("kv_store / attention_decode\n");
    const struct {
        int B, T, NH, NKV, HS, S, Tmax;
    } cases[] = {
        {3, 6, 4, 2, 6, 5, 8},
        {2, 5, 4, 1, 16, 2, 5},
        {1, 1, 2, 2, 2, 3, 4},
        {2, 9, 6, 6, 20, 4, 12},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int32_t B = cases[ci].B, T = cases[ci].T, NH = cases[ci].NH, NKV = cases[ci].NKV,
                HS = cases[ci].HS, S = cases[ci].S, Tmax = cases[ci].Tmax, KVD = NKV * HS;
        int32_t n = B * T;
        size_t nq = (size_t)n * NH * HS, nk = (size_t)n * KVD, ncache = (size_t)S * Tmax * KVD;
        char what[128];
        snprintf(what, sizeof what, "B=%d T=%d NH=%d NKV=%d HS=%d S=%d Tmax=%d", B, T, NH, NKV, HS,
                 S, Tmax);
        float *q = rand_normal(nq, 1), *k = rand_normal(nk, 1), *v = rand_normal(nk, 1);
        /* sequence b lives in slot slot_of[b] (a random injection into 0..S-1) */
        int32_t *perm = hi((size_t)S);
        for (int32_t s = 0; s < S; s++)
            perm[s] = s;
        for (int32_t s = S - 1; s > 0; s--) {
            int32_t r = rand_int(0, s), tmp = perm[s];
            perm[s] = perm[r];
            perm[r] = tmp;
        }
        /* reference: the training forward on the same q, k, v */
        float *d_q = up_f(q, nq), *d_k = up_f(k, nk), *d_v = up_f(v, nk);
        float *d_ref = up_f(NULL, nq), *d_lse = up_f(NULL, (size_t)B * NH * T);
        CHECK_OK(BE_CALL(be, attention_fwd, d_ref, d_lse, d_q, d_k, d_v, NULL, B, T, NH, NKV, HS));
        float *ref = down_f(d_ref, nq);
        att_ctx ctx = {B,
                       T,
                       NH,
                       NKV,
                       HS,
                       NULL,
                       to_d(q, nq),
                       to_d(k, nk),
                       to_d(v, nk),
                       NULL,
                       hd(nq),
                       hd((size_t)B * NH * T),
                       hd((size_t)T)};
        att_oracle(&ctx);

        /* store all rows in a shuffled order into a NaN-filled cache */
        int32_t *order = hi((size_t)n), *slots = hi((size_t)n), *pos = hi((size_t)n);
        for (int32_t i = 0; i < n; i++)
            order[i] = i;
        for (int32_t i = n - 1; i > 0; i--) {
            int32_t r = rand_int(0, i), tmp = order[i];
            order[i] = order[r];
            order[r] = tmp;
        }
        float *ks = hf(nk), *vs = hf(nk);
        for (int32_t i = 0; i < n; i++) {
            int32_t row = order[i];
            slots[i] = perm[row / T];
            pos[i] = row % T;
            memcpy(ks + (size_t)i * KVD, k + (size_t)row * KVD, (size_t)KVD * sizeof(float));
            memcpy(vs + (size_t)i * KVD, v + (size_t)row * KVD, (size_t)KVD * sizeof(float));
        }
        float *d_kc = up_f(filled(ncache, NAN), ncache), *d_vc = up_f(filled(ncache, NAN), ncache);
        float *d_ks = up_f(ks, nk), *d_vs = up_f(vs, nk);
        int32_t *d_slots = up_i(slots, (size_t)n), *d_pos = up_i(pos, (size_t)n);
        CHECK_OK(BE_CALL(be, kv_store, d_kc, d_vc, d_ks, d_vs, d_slots, d_pos, n, Tmax, KVD));
        float *kc = down_f(d_kc, ncache), *vc = down_f(d_vc, ncache);
        size_t bad = 0, stale = 0;
        for (int32_t s = 0; s < S; s++)
            for (int32_t t = 0; t < Tmax; t++) {
                int32_t b = -1;
                for (int32_t bb = 0; bb < B; bb++)
                    if (perm[bb] == s) b = bb;
                const float *kr = kc + ((size_t)s * Tmax + t) * KVD,
                            *vr = vc + ((size_t)s * Tmax + t) * KVD;
                if (b >= 0 && t < T) {
                    bad +=
                        memcmp(kr, k + ((size_t)b * T + t) * KVD, (size_t)KVD * sizeof(float)) != 0;
                    bad +=
                        memcmp(vr, v + ((size_t)b * T + t) * KVD, (size_t)KVD * sizeof(float)) != 0;
                } else {
                    for (int32_t d = 0; d < KVD; d++)
                        stale += !isnan(kr[d]) || !isnan(vr[d]);
                }
            }
        CHECKF(bad == 0 && stale == 0,
               "kv_store %s: %zu rows misplaced, %zu untouched entries written", what, bad, stale);

        /* decode every row (b, t) in row order: query q[b,t], slot perm[b], position t */
        int32_t *dslots = hi((size_t)n), *dpos = hi((size_t)n);
        for (int32_t i = 0; i < n; i++) {
            dslots[i] = perm[i / T];
            dpos[i] = i % T;
        }
        int32_t *d_dslots = up_i(dslots, (size_t)n), *d_dpos = up_i(dpos, (size_t)n);
        float *d_dec = up_f(filled(nq, NAN), nq);
        CHECK_OK(BE_CALL(be, attention_decode, d_dec, d_q, d_kc, d_vc, d_dslots, d_dpos, n, Tmax,
                         NH, NKV, HS));
        float *dec = down_f(d_dec, nq);
        EXPECT_NEAR_F(LABEL("attention_decode %s vs oracle", what), dec, ctx.out, nq, TOL_FWD);
        EXPECT_NEAR_F(LABEL("attention_decode %s vs attention_fwd rows", what), dec, to_d(ref, nq),
                      nq, 1e-6);
        if (on_cpu)
            EXPECT_SAME(LABEL("attention_decode %s == attention_fwd rows (CPU)", what), dec, ref,
                        nq);

        /* incremental: a fresh NaN cache holding only positions 0..p of the last sequence */
        int32_t b = B - 1, p = T / 2;
        set_f(d_kc, filled(ncache, NAN), ncache);
        set_f(d_vc, filled(ncache, NAN), ncache);
        for (int32_t t = 0; t <= p; t++) {
            slots[t] = perm[b];
            pos[t] = t;
        }
        set_f(d_ks, k + (size_t)b * T * KVD, (size_t)(p + 1) * KVD);
        set_f(d_vs, v + (size_t)b * T * KVD, (size_t)(p + 1) * KVD);
        CHECK_OK(be->to_device(be, d_slots, slots, (size_t)(p + 1) * sizeof(int32_t)));
        CHECK_OK(be->to_device(be, d_pos, pos, (size_t)(p + 1) * sizeof(int32_t)));
        CHECK_OK(BE_CALL(be, kv_store, d_kc, d_vc, d_ks, d_vs, d_slots, d_pos, p + 1, Tmax, KVD));
        int32_t one_slot = perm[b], one_pos = p;
        int32_t *d_one_slot = up_i(&one_slot, 1), *d_one_pos = up_i(&one_pos, 1);
        float *d_q1 = up_f(q + ((size_t)b * T + p) * NH * HS, (size_t)NH * HS);
        float *d_o1 = up_f(filled((size_t)NH * HS, NAN), (size_t)NH * HS);
        CHECK_OK(BE_CALL(be, attention_decode, d_o1, d_q1, d_kc, d_vc, d_one_slot, d_one_pos, 1,
                         Tmax, NH, NKV, HS));
        EXPECT_NEAR_F(LABEL("attention_decode n=1 %s, cache NaN beyond pos", what),
                      down_f(d_o1, (size_t)NH * HS), ctx.out + ((size_t)b * T + p) * NH * HS,
                      (size_t)NH * HS, TOL_FWD);

        if (on_cpu) { /* bad positions are errors, not out-of-bounds accesses (CPU checks them) */
            int32_t bad_pos = Tmax, neg_pos = -1;
            int32_t *d_bad = up_i(&bad_pos, 1), *d_neg = up_i(&neg_pos, 1);
            CHECK(BE_CALL(be, kv_store, d_kc, d_vc, d_ks, d_vs, d_one_slot, d_bad, 1, Tmax, KVD) ==
                  RLHF_ERR_ARG);
            CHECK(BE_CALL(be, attention_decode, d_o1, d_q1, d_kc, d_vc, d_one_slot, d_neg, 1, Tmax,
                          NH, NKV, HS) == RLHF_ERR_ARG);
            CHECK(BE_CALL(be, attention_decode, d_o1, d_q1, d_kc, d_vc, d_one_slot, d_bad, 1, Tmax,
                          NH, NKV, HS) == RLHF_ERR_ARG);
            CHECK(strstr(rlhf_last_error(), "position") != NULL);
        }
    }
    free_all();
}

/* =================================================================================== swiglu */

typedef struct {
    size_t n;
    double *h1, *h3, *R;
} swiglu_ctx;

static double swiglu_loss(void *p) {
    swiglu_ctx *c = p;
    double s = 0;
    for (size_t i = 0; i < c->n; i++)
        s += c->h1[i] / (1 + exp(-c->h1[i])) * c->h3[i] * c->R[i];
    return s;
}

static void test_swiglu(void) {
    printf("swiglu_fwd / swiglu_bwd\n");
    const size_t ns[] = {1, 13, 1000, 20000};
    for (size_t ci = 0; ci < sizeof ns / sizeof ns[0]; ci++) {
        size_t n = ns[ci];
        float *h1 = rand_normal(n, 4), *h3 = rand_normal(n, 1), *R = rand_normal(n, 1);
        swiglu_ctx ctx = {n, to_d(h1, n), to_d(h3, n), to_d(R, n)};
        double *want = hd(n);
        for (size_t i = 0; i < n; i++)
            want[i] = ctx.h1[i] / (1 + exp(-ctx.h1[i])) * ctx.h3[i];
        float *d_h1 = up_f(h1, n), *d_h3 = up_f(h3, n), *d_out = up_f(filled(n, NAN), n);
        CHECK_OK(BE_CALL(be, swiglu_fwd, d_out, d_h1, d_h3, (int64_t)n));
        float *out = down_f(d_out, n);
        EXPECT_NEAR_F(LABEL("swiglu_fwd n=%zu", n), out, want, n, TOL_FWD);
        if (on_cpu) { /* llama2.c run.c */
            float *l2c = hf(n);
            for (size_t i = 0; i < n; i++) {
                float val = h1[i];
                val *= (1.0f / (1.0f + expf(-val)));
                val *= h3[i];
                l2c[i] = val;
            }
            EXPECT_SAME(LABEL("swiglu_fwd n=%zu vs llama2.c", n), out, l2c, n);
        }
        float *d_R = up_f(R, n), *d_dh1 = up_f(filled(n, NAN), n), *d_dh3 = up_f(filled(n, NAN), n);
        CHECK_OK(BE_CALL(be, swiglu_bwd, d_dh1, d_dh3, d_R, d_h1, d_h3, (int64_t)n));
        size_t pts = n > 5000 ? 500 : FD_MAX_PTS; /* each loss evaluation costs n exps */
        check_grad(__FILE__, __LINE__, LABEL("swiglu_bwd n=%zu dh1", n), swiglu_loss, &ctx, ctx.h1,
                   n, to_d(down_f(d_dh1, n), n), TOL_BWD, pts);
        check_grad(__FILE__, __LINE__, LABEL("swiglu_bwd n=%zu dh3", n), swiglu_loss, &ctx, ctx.h3,
                   n, to_d(down_f(d_dh3, n), n), TOL_BWD, pts);
    }
    free_all();
}

/* =================================================================================== add, scale */

static void test_add_scale(void) {
    printf("add / scale\n");
    const size_t ns[] = {1, 13, 40000};
    for (size_t ci = 0; ci < sizeof ns / sizeof ns[0]; ci++) {
        size_t n = ns[ci];
        float *y = rand_normal(n, 1), *x = rand_normal(n, 3);
        float *d_y = up_f(y, n), *d_x = up_f(x, n);
        CHECK_OK(BE_CALL(be, add, d_y, d_x, (int64_t)n));
        float *want = hf(n); /* one correctly rounded float operation each */
        for (size_t i = 0; i < n; i++)
            want[i] = (float)((double)y[i] + (double)x[i]);
        EXPECT_SAME(LABEL("add n=%zu: y + x correctly rounded", n), down_f(d_y, n), want, n);
        CHECK_OK(BE_CALL(be, scale, d_x, -0.37f, (int64_t)n));
        for (size_t i = 0; i < n; i++)
            want[i] = (float)((double)x[i] * (double)-0.37f);
        EXPECT_SAME(LABEL("scale n=%zu: x * s correctly rounded", n), down_f(d_x, n), want, n);
    }
    free_all();
}

/* =================================================================================== logprob */

typedef struct {
    int64_t N;
    int32_t V;
    const int32_t *tg;
    double *logits, *dlogp;
} lp_ctx;

static double lp_row_lse(const double *x, int32_t V) {
    double m = -INFINITY, s = 0;
    for (int32_t j = 0; j < V; j++)
        m = fmax(m, x[j]);
    for (int32_t j = 0; j < V; j++)
        s += exp(x[j] - m);
    return m + log(s);
}

static double lp_loss(void *p) {
    lp_ctx *c = p;
    double s = 0;
    for (int64_t i = 0; i < c->N; i++) {
        if (c->tg[i] < 0 || c->dlogp[i] == 0) continue;
        const double *x = c->logits + i * c->V;
        s += c->dlogp[i] * (x[c->tg[i]] - lp_row_lse(x, c->V));
    }
    return s;
}

static void test_logprob(void) {
    printf("logprob_fwd / logprob_bwd\n");
    /* N, V, logit scale */
    const struct {
        int N, V;
        float scale;
    } cases[] = {
        {1, 37, 1}, {4, 1001, 3}, {3, 64, 1}, {5, 257, 20}, {2, 32000, 4}, {1, 1, 1},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int64_t N = cases[ci].N;
        int32_t V = cases[ci].V;
        size_t n = (size_t)N * V;
        float *logits = rand_normal(n, cases[ci].scale);
        if (V > 1) logits[V - 1] = -1e4f; /* far below the max: exp underflows to 0 */
        int32_t *tg = hi((size_t)N);
        float *dlogp = rand_normal((size_t)N, 1);
        for (int64_t i = 0; i < N; i++)
            tg[i] = rand_int(0, V - 1);
        if (N >= 3) tg[1] = -1;   /* ignored position */
        if (N >= 4) dlogp[3] = 0; /* zero upstream gradient */
        if (N >= 5) tg[4] = -100;
        char what[128];
        snprintf(what, sizeof what, "N=%lld V=%d scale %g", (long long)N, V, cases[ci].scale);
        lp_ctx ctx = {N, V, tg, to_d(logits, n), to_d(dlogp, (size_t)N)};
        double *want_lse = hd((size_t)N), *want_lp = hd((size_t)N), *want_g = hd(n);
        for (int64_t i = 0; i < N; i++) {
            const double *x = ctx.logits + i * V;
            want_lse[i] = lp_row_lse(x, V);
            want_lp[i] = tg[i] >= 0 ? x[tg[i]] - want_lse[i] : 0;
            for (int32_t j = 0; j < V; j++)
                want_g[i * V + j] =
                    tg[i] < 0 ? 0 : dlogp[i] * ((j == tg[i]) - exp(x[j] - want_lse[i]));
        }

        float *d_logits = up_f(logits, n);
        int32_t *d_tg = up_i(tg, (size_t)N);
        float *d_logp = up_f(filled((size_t)N, NAN), (size_t)N),
              *d_lse = up_f(filled((size_t)N, NAN), (size_t)N);
        CHECK_OK(BE_CALL(be, logprob_fwd, d_logp, d_lse, d_logits, d_tg, N, V));
        float *logp = down_f(d_logp, (size_t)N);
        EXPECT_NEAR_F(LABEL("logprob_fwd %s lse", what), down_f(d_lse, (size_t)N), want_lse,
                      (size_t)N, TOL_FWD);
        EXPECT_NEAR_F(LABEL("logprob_fwd %s logp", what), logp, want_lp, (size_t)N, TOL_FWD);
        bool zero_ok = true;
        for (int64_t i = 0; i < N; i++)
            if (tg[i] < 0) zero_ok &= logp[i] == 0.0f;
        CHECK(zero_ok);

        float *d_dlogp = up_f(dlogp, (size_t)N), *d_g = up_f(filled(n, NAN), n);
        CHECK_OK(BE_CALL(be, logprob_bwd, d_g, d_logits, d_lse, d_dlogp, d_tg, N, V));
        float *g = down_f(d_g, n);
        EXPECT_NEAR_F(LABEL("logprob_bwd %s vs float64 formula", what), g, want_g, n, TOL_FWD);
        /* each loss evaluation costs N*V exps: big vocabularies are sampled more sparsely */
        check_grad(__FILE__, __LINE__, LABEL("logprob_bwd %s vs finite differences", what), lp_loss,
                   &ctx, ctx.logits, n, to_d(g, n), TOL_BWD, n > 20000 ? 500 : FD_MAX_PTS);
        for (int64_t i = 0; i < N; i++)
            if (tg[i] < 0 || dlogp[i] == 0)
                EXPECT_ZERO(LABEL("logprob_bwd %s row %lld (target %d, dlogp %g)", what,
                                  (long long)i, tg[i], dlogp[i]),
                            g + i * V, (size_t)V);
        /* in place: dlogits aliasing logits, as the model calls it */
        CHECK_OK(BE_CALL(be, logprob_bwd, d_logits, d_logits, d_lse, d_dlogp, d_tg, N, V));
        EXPECT_SAME(LABEL("logprob_bwd %s in place (dlogits == logits)", what), down_f(d_logits, n),
                    g, n);
    }
    free_all();
}

/* cpu_expf (used by the CPU logprob ops) against exp in double over its whole range */
static void test_cpu_expf(void) {
    printf("cpu_expf\n");
    double worst = 0, wx = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -87.3f + (88.0f + 87.3f) * (float)i / 2000000.0f;
        double e = exp((double)x), rel = fabs((double)cpu_expf(x) - e) / e;
        if (rel > worst) {
            worst = rel;
            wx = x;
        }
    }
    for (int i = 0; i < 100000; i++) { /* the softmax range, densely */
        float x = -20.0f * rlhf_rng_uniform(&rng);
        double e = exp((double)x), rel = fabs((double)cpu_expf(x) - e) / e;
        if (rel > worst) {
            worst = rel;
            wx = x;
        }
    }
    test_checks++;
    printf("  %-70s err %.2e (tol 3e-07)\n", "cpu_expf on [-87.3, 88] vs exp, relative", worst);
    if (!(worst <= 3e-7)) {
        test_failures++;
        fprintf(stderr, "FAIL %s:%d: cpu_expf relative error %.3e at x = %.9g\n", __FILE__,
                __LINE__, worst, wx);
    }
    CHECK(cpu_expf(0.0f) == 1.0f);
    CHECK(cpu_expf(-1e4f) == 0.0f && cpu_expf(-INFINITY) == 0.0f && cpu_expf(-87.5f) == 0.0f);
    CHECK(isinf(cpu_expf(89.0f)) && isinf(cpu_expf(INFINITY)));
    CHECK(isnan(cpu_expf(NAN)));
}

/* =================================================================================== sumsq */

static void test_sumsq(void) {
    printf("sumsq\n");
    const size_t ns[] = {0, 1, 13, 1000, 65536, 65537, 300001};
    for (size_t ci = 0; ci < sizeof ns / sizeof ns[0]; ci++) {
        size_t n = ns[ci];
        float *x = rand_normal(n, 2);
        double want = 0;
        for (size_t i = 0; i < n; i++)
            want += (double)x[i] * x[i];
        float *d_x = up_f(x, n);
        double got = -1;
        CHECK_OK(BE_CALL(be, sumsq, &got, d_x, (int64_t)n));
        EXPECT_NEAR(LABEL("sumsq n=%zu vs double sum", n), &got, &want, 1, TOL_SUMSQ);
        if (on_cpu) {
            int t0 = rlhf_get_threads();
            double other[3];
            for (int t = 1; t <= 3; t++) {
                rlhf_set_threads(t);
                CHECK_OK(BE_CALL(be, sumsq, &other[t - 1], d_x, (int64_t)n));
            }
            rlhf_set_threads(t0);
            CHECKF(memcmp(&other[0], &got, sizeof got) == 0 &&
                       memcmp(&other[1], &got, sizeof got) == 0 &&
                       memcmp(&other[2], &got, sizeof got) == 0,
                   "sumsq n=%zu differs across thread counts: %.17g %.17g %.17g vs %.17g", n,
                   other[0], other[1], other[2], got);
        }
    }
    free_all();
}

/* =================================================================================== adamw */

static void test_adamw(void) {
    printf("adamw\n");
    const size_t ns[] = {1, 37, 50000};
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f;
    const float wds[] = {0.1f, 0.0f, 0.1f}, gscales[] = {0.5f, 1.0f, 0.25f};
    for (size_t ci = 0; ci < sizeof ns / sizeof ns[0]; ci++) {
        size_t n = ns[ci];
        float wd = wds[ci], gs = gscales[ci];
        float *p = rand_normal(n, 1);
        double *P = to_d(p, n), *M = hd(n), *Vv = hd(n);
        float *d_p = up_f(p, n), *d_m = up_f(NULL, n), *d_v = up_f(NULL, n), *d_g = up_f(NULL, n);
        for (int step = 1; step <= 5; step++) {
            float *g = rand_normal(n, step == 3 ? 1e-3f : 1.0f);
            set_f(d_g, g, n);
            float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
            CHECK_OK(BE_CALL(be, adamw, d_p, d_g, d_m, d_v, (int64_t)n, lr, b1, b2, eps, wd, gs,
                             bc1, bc2));
            for (size_t i = 0; i < n; i++) {
                double gi = (double)g[i] * gs;
                M[i] = (double)b1 * M[i] + (1 - (double)b1) * gi;
                Vv[i] = (double)b2 * Vv[i] + (1 - (double)b2) * gi * gi;
                P[i] -= (double)lr *
                        ((double)wd * P[i] + (M[i] / bc1) / (sqrt(Vv[i] / bc2) + (double)eps));
            }
        }
        EXPECT_NEAR_F(LABEL("adamw n=%zu wd=%g grad_scale=%g, 5 steps: p", n, wd, gs),
                      down_f(d_p, n), P, n, TOL_ADAM);
        EXPECT_NEAR_F(LABEL("adamw n=%zu wd=%g grad_scale=%g, 5 steps: m", n, wd, gs),
                      down_f(d_m, n), M, n, TOL_ADAM);
        EXPECT_NEAR_F(LABEL("adamw n=%zu wd=%g grad_scale=%g, 5 steps: v", n, wd, gs),
                      down_f(d_v, n), Vv, n, TOL_ADAM);
    }
    free_all();
}

/* =============================================================================== determinism */

/* Runs attention_bwd, rmsnorm_bwd and embed_bwd (shapes big enough that every thread works) into
 * outs[0..4] = dq, dk, dv, rmsnorm dinp+dw (concatenated), dwte. */
typedef struct {
    int32_t B, T, NH, NKV, HS, N, C, V;
    float *q, *k, *v, *dout, *out, *lse, *x, *w, *rstd, *dx, *tok_dout;
    int32_t *tok;
} det_inputs;

static void det_run(const det_inputs *in, float *res[5]) {
    size_t nq = (size_t)in->B * in->T * in->NH * in->HS,
           nk = (size_t)in->B * in->T * in->NKV * in->HS;
    size_t nx = (size_t)in->N * in->C;
    float *dq = up_f(NULL, nq), *dk = up_f(NULL, nk), *dv = up_f(NULL, nk);
    CHECK_OK(BE_CALL(be, attention_bwd, dq, dk, dv, in->dout, in->q, in->k, in->v, in->out, in->lse,
                     NULL, in->B, in->T, in->NH, in->NKV, in->HS));
    float *dinp = up_f(NULL, nx + (size_t)in->C);
    CHECK_OK(
        BE_CALL(be, rmsnorm_bwd, dinp, dinp + nx, in->dx, in->x, in->w, in->rstd, in->N, in->C));
    float *dwte = up_f(NULL, (size_t)in->V * in->C);
    CHECK_OK(BE_CALL(be, embed_bwd, dwte, in->tok_dout, in->tok, in->N, in->C, in->V));
    res[0] = down_f(dq, nq);
    res[1] = down_f(dk, nk);
    res[2] = down_f(dv, nk);
    res[3] = down_f(dinp, nx + (size_t)in->C);
    res[4] = down_f(dwte, (size_t)in->V * in->C);
}

static void test_determinism(void) {
    printf("determinism\n");
    det_inputs in = {.B = 2, .T = 48, .NH = 4, .NKV = 2, .HS = 16, .N = 600, .C = 96, .V = 10};
    size_t nq = (size_t)in.B * in.T * in.NH * in.HS, nk = (size_t)in.B * in.T * in.NKV * in.HS;
    size_t nx = (size_t)in.N * in.C;
    in.q = up_f(rand_normal(nq, 1), nq);
    in.k = up_f(rand_normal(nk, 1), nk);
    in.v = up_f(rand_normal(nk, 1), nk);
    in.dout = up_f(rand_normal(nq, 1), nq);
    in.out = up_f(NULL, nq);
    in.lse = up_f(NULL, (size_t)in.B * in.NH * in.T);
    CHECK_OK(BE_CALL(be, attention_fwd, in.out, in.lse, in.q, in.k, in.v, NULL, in.B, in.T, in.NH,
                     in.NKV, in.HS));
    in.x = up_f(rand_normal(nx, 1), nx);
    in.w = up_f(rand_normal((size_t)in.C, 1), (size_t)in.C);
    in.rstd = up_f(NULL, (size_t)in.N);
    float *tmp = up_f(NULL, nx);
    CHECK_OK(BE_CALL(be, rmsnorm_fwd, tmp, in.rstd, in.x, in.w, in.N, in.C, 1e-5f));
    in.dx = up_f(rand_normal(nx, 1), nx);
    in.tok_dout = up_f(rand_normal(nx, 1), nx);
    int32_t *tok = hi((size_t)in.N);
    for (int32_t i = 0; i < in.N; i++)
        tok[i] = rand_int(0, in.V - 1);
    in.tok = up_i(tok, (size_t)in.N);

    const char *names[5] = {"attention_bwd dq", "attention_bwd dk", "attention_bwd dv",
                            "rmsnorm_bwd dinp,dw", "embed_bwd dwte"};
    size_t sizes[5] = {nq, nk, nk, nx + (size_t)in.C, (size_t)in.V * in.C};
    float *a[5], *b[5];
    det_run(&in, a);
    det_run(&in, b);
    for (int i = 0; i < 5; i++)
        EXPECT_SAME(LABEL("%s: rerun with %d threads", names[i], rlhf_get_threads()), a[i], b[i],
                    sizes[i]);
    if (on_cpu) { /* the CPU backend's reductions do not depend on the thread count */
        int t0 = rlhf_get_threads();
        for (int t = 1; t <= 4; t += 3) {
            rlhf_set_threads(t);
            det_run(&in, b);
            for (int i = 0; i < 5; i++)
                EXPECT_SAME(LABEL("%s: %d threads vs %d", names[i], t, t0), a[i], b[i], sizes[i]);
        }
        rlhf_set_threads(t0);
    }
    free_all();
}

int main(void) {
    const char *name = getenv("RLHF_TEST_BACKEND");
    if (!name || !*name) name = "cpu";
    rlhf_status st = rlhf_backend_get(name, &be);
    if (st == RLHF_ERR_UNSUPPORTED) test_skip(rlhf_last_error());
    if (st != RLHF_OK) {
        fprintf(stderr, "FAIL: backend %s: %s\n", name, rlhf_last_error());
        return 1;
    }
    on_cpu = be == rlhf_backend_cpu();
    printf("backend %s, %d threads\n", rlhf_backend_name(be), rlhf_get_threads());
    rlhf_rng_seed(&rng, 20240601, 7);

    test_backend_table();
    test_embed();
    test_matmul();
    test_rmsnorm();
    test_rope();
    test_attention();
    test_decode();
    test_swiglu();
    test_add_scale();
    test_cpu_expf();
    test_logprob();
    test_sumsq();
    test_adamw();
    test_determinism();
    TEST_MAIN_END();
}
