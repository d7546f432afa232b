/* test_cuda_ops.c: the CUDA backend against the CPU backend (label cuda; exit 77 without a GPU).
 *
 * Every op of backend_impl.h runs through the two backend tables ("cpu" and "cuda:0/fp32") on the
 * same seeded inputs, on awkward shapes (T=1, odd dims, NKV < NH, V not a multiple of 64, T=1000,
 * packed segments, decode over several slots, HS = 256), forward and backward, with the
 * contract's rules (accumulating outputs pre-filled with the same random values, overwritten
 * ones with NaN on the GPU side, logprob_bwd in place). fp32 mode must agree within TOL (1e-5,
 * normalized: max|cuda-cpu| / max|cpu|); the failing line prints the worst index and the first
 * mismatches. Matmuls and attention in tf32 and bf16 mode are checked against the stated bounds
 * TOL_TF32 and TOL_BF16 (attention's GEMM path uses the instance's precision; $RLHF_CUDA_ATTN
 * picks the path, see cuda/attention.cu). Then the whole model (tiny GQA config): logits, loss,
 * every gradient, one AdamW step; the sampler op (V 32000, 83 and 1): identical greedy (and top_k=1) tokens, seeded top-p tokens
 * equal in >= 99% of rows (rounding at a boundary may move a draw), every CUDA draw inside the
 * top-k/top-p set (judged in double on the host), the rows' RNG states equal to the CPU's after
 * the call (one uniform per row when not greedy), logp within 1e-5; and greedy generation from
 * ../shared/models/stories260K.bin equal to tests/fixtures/greedy_stories260K.txt in fp32 mode.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "rlhf.h"
#include "test.h"

#define TOL 1e-5
#define TOL_TF32 5e-3 /* 10-bit mantissa inputs, fp32 accumulation */
#define TOL_BF16 3e-2 /* 8-bit mantissa inputs, fp32 accumulation */

static const rlhf_backend *cpu, *gpu;
static rlhf_rng rng;

/* ---- buffers ---- */

static void *dev_of(const rlhf_backend *b, const void *h, size_t bytes) {
    void *d = NULL;
    if (b->alloc(b, &d, bytes ? bytes : 4) != RLHF_OK) {
        fprintf(stderr, "FATAL: alloc %zu on %s: %s\n", bytes, b->name, rlhf_last_error());
        exit(1);
    }
    if (h && bytes) CHECK_OK(b->to_device(b, d, h, bytes));
    return d;
}
static void host_of(const rlhf_backend *b, void *h, const void *d, size_t bytes) {
    CHECK_OK(b->to_host(b, h, d, bytes));
}
static float *rnd(size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = scale * rlhf_rng_normal(&rng);
    return p;
}
static float *nans(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

/* Normalized error of got against want; prints one line, and on failure the worst index and the
 * first mismatches. */
static void compare(const char *what, const float *got, const float *want, size_t n, double tol) {
    double mw = 0, me = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) mw = fmax(mw, fabs((double)want[i]));
    if (mw == 0) mw = 1;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (isnan(got[i]) != isnan(want[i]) || isnan(e)) e = INFINITY;
        if (e > me) me = e, worst = i;
    }
    double ne = me / mw;
    printf("  %-44s n=%-8zu err %.2e%s\n", what, n, ne, ne <= tol ? "" : "  <-- FAIL");
    CHECKF(ne <= tol, "%s: normalized error %.3e > %.1e at %zu (cuda %.9g, cpu %.9g)", what, ne,
           tol, worst, n ? (double)got[worst] : 0.0, n ? (double)want[worst] : 0.0);
    if (ne > tol) {
        int shown = 0;
        for (size_t i = 0; i < n && shown < 5; i++)
            if (!(fabs((double)got[i] - (double)want[i]) <= tol * mw)) {
                fprintf(stderr, "    [%zu] cuda %.9g cpu %.9g\n", i, (double)got[i],
                        (double)want[i]);
                shown++;
            }
    }
}

/* Runs fn on both backends: fn uploads its inputs, computes, downloads into out (one per
 * backend). */
#define BOTH(fn, ...)                                                                              \
    do {                                                                                           \
        fn(cpu, __VA_ARGS__, 0);                                                                   \
        fn(gpu, __VA_ARGS__, 1);                                                                   \
    } while (0)

/* ================================================================================= embed */

static void embed_run(const rlhf_backend *b, int64_t N, int32_t C, int32_t V, const int32_t *tok,
                      const float *wte, const float *dout, const float *dwte0, float **out,
                      float **dwte, int k) {
    int32_t *dt = dev_of(b, tok, N * 4);
    float *dw = dev_of(b, wte, (size_t)V * C * 4), *dO = dev_of(b, NULL, N * C * 4);
    float *dd = dev_of(b, dout, N * C * 4), *dg = dev_of(b, dwte0, (size_t)V * C * 4);
    if (k) { /* overwritten output: stale NaN must not leak */
        float *nn = nans(N * C);
        CHECK_OK(b->to_device(b, dO, nn, N * C * 4));
        free(nn);
    }
    CHECK_OK(b->embed_fwd(b, dO, dt, dw, N, C));
    CHECK_OK(b->embed_bwd(b, dg, dd, dt, N, C, V));
    host_of(b, out[k], dO, N * C * 4);
    host_of(b, dwte[k], dg, (size_t)V * C * 4);
    b->free(b, dt), b->free(b, dw), b->free(b, dO), b->free(b, dd), b->free(b, dg);
}

static void test_embed(void) {
    printf("embed\n");
    const int32_t shapes[][3] = {{1, 7, 5}, {300, 33, 77}, {4096, 64, 1000}};
    for (int s = 0; s < 3; s++) {
        int64_t N = shapes[s][0];
        int32_t C = shapes[s][1], V = shapes[s][2];
        int32_t *tok = malloc(N * 4);
        for (int64_t i = 0; i < N; i++) tok[i] = (int32_t)(rlhf_rng_u32(&rng) % (uint32_t)(V / 3 + 1));
        float *wte = rnd((size_t)V * C, 1), *dout = rnd(N * C, 1), *dw0 = rnd((size_t)V * C, 1);
        float *out[2] = {malloc(N * C * 4), malloc(N * C * 4)};
        float *dw[2] = {malloc((size_t)V * C * 4), malloc((size_t)V * C * 4)};
        BOTH(embed_run, N, C, V, tok, wte, dout, dw0, out, dw);
        char w[64];
        snprintf(w, sizeof w, "embed_fwd N=%lld C=%d", (long long)N, C);
        compare(w, out[1], out[0], N * C, 0); /* a copy: exact */
        snprintf(w, sizeof w, "embed_bwd (accumulate) V=%d", V);
        compare(w, dw[1], dw[0], (size_t)V * C, TOL);
        free(tok), free(wte), free(dout), free(dw0);
        for (int k = 0; k < 2; k++) free(out[k]), free(dw[k]);
    }
}

/* ================================================================================= matmul */

static void matmul_run(const rlhf_backend *b, int64_t N, int32_t IC, int32_t OC, float beta,
                       const float *inp, const float *w, const float *out0, const float *dout,
                       const float *dinp0, const float *dw0, float **out, float **dinp,
                       float **dw, int k) {
    float *di = dev_of(b, inp, N * IC * 4), *dwt = dev_of(b, w, (size_t)OC * IC * 4);
    float *dO = dev_of(b, beta != 0 ? out0 : NULL, N * OC * 4);
    float *dd = dev_of(b, dout, N * OC * 4);
    float *ddi = dev_of(b, beta != 0 ? dinp0 : NULL, N * IC * 4);
    float *ddw = dev_of(b, dw0, (size_t)OC * IC * 4);
    if (beta == 0 && k) {
        float *nn = nans(N * (OC > IC ? OC : IC));
        CHECK_OK(b->to_device(b, dO, nn, N * OC * 4));
        CHECK_OK(b->to_device(b, ddi, nn, N * IC * 4));
        free(nn);
    }
    CHECK_OK(b->matmul_fwd(b, dO, di, dwt, N, IC, OC, beta));
    CHECK_OK(b->matmul_bwd(b, ddi, ddw, dd, di, dwt, N, IC, OC, beta));
    host_of(b, out[k], dO, N * OC * 4);
    host_of(b, dinp[k], ddi, N * IC * 4);
    host_of(b, dw[k], ddw, (size_t)OC * IC * 4);
    b->free(b, di), b->free(b, dwt), b->free(b, dO), b->free(b, dd), b->free(b, ddi),
        b->free(b, ddw);
}

static void matmul_case(int64_t N, int32_t IC, int32_t OC, float beta, double tol,
                        const char *mode) {
    float *inp = rnd(N * IC, 1), *w = rnd((size_t)OC * IC, 0.1f), *out0 = rnd(N * OC, 1);
    float *dout = rnd(N * OC, 1), *dinp0 = rnd(N * IC, 1), *dw0 = rnd((size_t)OC * IC, 1);
    float *out[2], *dinp[2], *dw[2];
    for (int k = 0; k < 2; k++)
        out[k] = malloc(N * OC * 4), dinp[k] = malloc(N * IC * 4),
        dw[k] = malloc((size_t)OC * IC * 4);
    BOTH(matmul_run, N, IC, OC, beta, inp, w, out0, dout, dinp0, dw0, out, dinp, dw);
    char s[96];
    snprintf(s, sizeof s, "matmul %s N=%lld IC=%d OC=%d beta=%g fwd", mode, (long long)N, IC, OC,
             (double)beta);
    compare(s, out[1], out[0], N * OC, tol);
    snprintf(s, sizeof s, "matmul %s N=%lld IC=%d OC=%d dinp", mode, (long long)N, IC, OC);
    compare(s, dinp[1], dinp[0], N * IC, tol);
    snprintf(s, sizeof s, "matmul %s N=%lld IC=%d OC=%d dw (accumulate)", mode, (long long)N, IC, OC);
    compare(s, dw[1], dw[0], (size_t)OC * IC, tol);
    free(inp), free(w), free(out0), free(dout), free(dinp0), free(dw0);
    for (int k = 0; k < 2; k++) free(out[k]), free(dinp[k]), free(dw[k]);
}

static void test_matmul(void) {
    printf("matmul\n");
    matmul_case(1, 5, 3, 0.0f, TOL, "fp32");
    matmul_case(37, 33, 65, 1.0f, TOL, "fp32");
    matmul_case(256, 192, 320, 0.0f, TOL, "fp32");
    matmul_case(64, 48, 1001, 1.0f, TOL, "fp32");
    matmul_case(3, 256, 32000, 0.0f, TOL, "fp32"); /* an LM head at decode: N tiny, OC = V */
    matmul_case(1000, 7, 2, 1.0f, TOL, "fp32");    /* N >> IC, OC: dw sums over k = N */
    const rlhf_backend *keep = gpu, *b;
    if (rlhf_backend_get("cuda:0/tf32", &b) == RLHF_OK) {
        gpu = b;
        matmul_case(256, 192, 320, 1.0f, TOL_TF32, "tf32");
    }
    if (rlhf_backend_get("cuda:0/bf16", &b) == RLHF_OK) {
        gpu = b;
        matmul_case(256, 192, 320, 1.0f, TOL_BF16, "bf16");
    }
    gpu = keep;
}

/* ================================================================================= rmsnorm */

static void rms_run(const rlhf_backend *b, int64_t N, int32_t C, const float *x, const float *w,
                    const float *dout, const float *dx0, const float *dw0, float **out,
                    float **rstd, float **dx, float **dw, int k) {
    float *dX = dev_of(b, x, N * C * 4), *dW = dev_of(b, w, C * 4), *dO = dev_of(b, NULL, N * C * 4);
    float *dR = dev_of(b, NULL, N * 4), *dD = dev_of(b, dout, N * C * 4);
    float *ddx = dev_of(b, dx0, N * C * 4), *ddw = dev_of(b, dw0, C * 4);
    CHECK_OK(b->rmsnorm_fwd(b, dO, dR, dX, dW, N, C, 1e-5f));
    CHECK_OK(b->rmsnorm_bwd(b, ddx, ddw, dD, dX, dW, dR, N, C));
    host_of(b, out[k], dO, N * C * 4);
    host_of(b, rstd[k], dR, N * 4);
    host_of(b, dx[k], ddx, N * C * 4);
    host_of(b, dw[k], ddw, C * 4);
    /* in place: out == inp */
    CHECK_OK(b->rmsnorm_fwd(b, dX, NULL, dX, dW, N, C, 1e-5f));
    float *ip = malloc(N * C * 4);
    host_of(b, ip, dX, N * C * 4);
    CHECK(memcmp(ip, out[k], N * C * 4) == 0);
    free(ip);
    b->free(b, dX), b->free(b, dW), b->free(b, dO), b->free(b, dR), b->free(b, dD),
        b->free(b, ddx), b->free(b, ddw);
}

static void test_rmsnorm(void) {
    printf("rmsnorm\n");
    const int32_t shapes[][2] = {{1, 1}, {3, 37}, {1000, 768}, {130, 4096}};
    for (int s = 0; s < 4; s++) {
        int64_t N = shapes[s][0];
        int32_t C = shapes[s][1];
        float *x = rnd(N * C, 1), *w = rnd(C, 1), *dout = rnd(N * C, 1), *dx0 = rnd(N * C, 1),
              *dw0 = rnd(C, 1);
        float *out[2], *rs[2], *dx[2], *dw[2];
        for (int k = 0; k < 2; k++)
            out[k] = malloc(N * C * 4), rs[k] = malloc(N * 4), dx[k] = malloc(N * C * 4),
            dw[k] = malloc(C * 4);
        BOTH(rms_run, N, C, x, w, dout, dx0, dw0, out, rs, dx, dw);
        char m[64];
        snprintf(m, sizeof m, "rmsnorm_fwd N=%lld C=%d", (long long)N, C);
        compare(m, out[1], out[0], N * C, TOL);
        compare("  rstd", rs[1], rs[0], N, TOL);
        compare("  rmsnorm_bwd dinp (accumulate)", dx[1], dx[0], N * C, TOL);
        compare("  rmsnorm_bwd dw (accumulate)", dw[1], dw[0], C, TOL);
        free(x), free(w), free(dout), free(dx0), free(dw0);
        for (int k = 0; k < 2; k++) free(out[k]), free(rs[k]), free(dx[k]), free(dw[k]);
    }
}

/* ================================================================================= rope */

static void rope_run(const rlhf_backend *b, int64_t N, int32_t T, int32_t nh, int32_t HS,
                     const int32_t *pos, const float *x, float **fwd, float **bwd, int k) {
    float *d = dev_of(b, x, N * nh * HS * 4);
    int32_t *dp = pos ? dev_of(b, pos, N * 4) : NULL;
    CHECK_OK(b->rope_fwd(b, d, dp, N, T, nh, HS, 10000.0f));
    host_of(b, fwd[k], d, N * nh * HS * 4);
    CHECK_OK(b->rope_bwd(b, d, dp, N, T, nh, HS, 10000.0f));
    host_of(b, bwd[k], d, N * nh * HS * 4);
    b->free(b, d);
    b->free(b, dp);
}

static void test_rope(void) {
    printf("rope\n");
    /* positions up to 4095 (random): an ulp of a frequency there moves the angle by ~2e-4, so
     * the frequencies must be the CPU's own (computed on the host); HS 128 with 32 heads is the
     * 7B shape */
    const int32_t shapes[][4] = {{1, 1, 1, 2}, {14, 7, 3, 6}, {2000, 1000, 4, 64}, {5, 5, 2, 7},
                                 {300, 300, 32, 128}};
    for (int s = 0; s < 5; s++) {
        int64_t N = shapes[s][0];
        int32_t T = shapes[s][1], nh = shapes[s][2], HS = shapes[s][3];
        float *x = rnd(N * nh * HS, 1), *f[2], *bw[2];
        int32_t *pos = malloc(N * 4);
        for (int64_t i = 0; i < N; i++) pos[i] = (int32_t)(rlhf_rng_u32(&rng) % 4096);
        for (int k = 0; k < 2; k++) f[k] = malloc(N * nh * HS * 4), bw[k] = malloc(N * nh * HS * 4);
        for (int withpos = 0; withpos < 2; withpos++) {
            BOTH(rope_run, N, T, nh, HS, withpos ? pos : NULL, x, f, bw);
            char m[80];
            snprintf(m, sizeof m, "rope N=%lld nh=%d HS=%d %s", (long long)N, nh, HS,
                     withpos ? "pos" : "row%T");
            compare(m, f[1], f[0], N * nh * HS, TOL);
            compare("  rope_bwd(rope_fwd(x))", bw[1], bw[0], N * nh * HS, TOL);
        }
        free(x), free(pos);
        for (int k = 0; k < 2; k++) free(f[k]), free(bw[k]);
    }
}

/* ================================================================================= attention */

static void attn_run(const rlhf_backend *b, int32_t B, int32_t T, int32_t NH, int32_t NKV,
                     int32_t HS, const int32_t *seg, const float *q, const float *kk,
                     const float *v, const float *dout, float **out, float **lse, float **dq,
                     float **dk, float **dv, int k) {
    size_t nq = (size_t)B * T * NH * HS, nk = (size_t)B * T * NKV * HS;
    float *Q = dev_of(b, q, nq * 4), *K = dev_of(b, kk, nk * 4), *Vv = dev_of(b, v, nk * 4);
    float *G = dev_of(b, dout, nq * 4);
    float *O = dev_of(b, NULL, nq * 4), *L = dev_of(b, NULL, (size_t)B * NH * T * 4);
    float *DQ = dev_of(b, NULL, nq * 4), *DK = dev_of(b, NULL, nk * 4), *DV = dev_of(b, NULL, nk * 4);
    int32_t *S = seg ? dev_of(b, seg, (size_t)B * T * 4) : NULL;
    if (k) {
        float *nn = nans(nq);
        CHECK_OK(b->to_device(b, O, nn, nq * 4));
        CHECK_OK(b->to_device(b, DQ, nn, nq * 4));
        CHECK_OK(b->to_device(b, DK, nn, nk * 4));
        CHECK_OK(b->to_device(b, DV, nn, nk * 4));
        free(nn);
    }
    CHECK_OK(b->attention_fwd(b, O, L, Q, K, Vv, S, B, T, NH, NKV, HS));
    CHECK_OK(b->attention_bwd(b, DQ, DK, DV, G, Q, K, Vv, O, L, S, B, T, NH, NKV, HS));
    host_of(b, out[k], O, nq * 4);
    host_of(b, lse[k], L, (size_t)B * NH * T * 4);
    host_of(b, dq[k], DQ, nq * 4);
    host_of(b, dk[k], DK, nk * 4);
    host_of(b, dv[k], DV, nk * 4);
    b->free(b, Q), b->free(b, K), b->free(b, Vv), b->free(b, G), b->free(b, O), b->free(b, L);
    b->free(b, DQ), b->free(b, DK), b->free(b, DV), b->free(b, S);
}

static void attn_case_p(int32_t B, int32_t T, int32_t NH, int32_t NKV, int32_t HS, bool packed,
                        double tol, const char *prec) {
    size_t nq = (size_t)B * T * NH * HS, nk = (size_t)B * T * NKV * HS;
    float *q = rnd(nq, 1), *kk = rnd(nk, 1), *v = rnd(nk, 1), *dout = rnd(nq, 1);
    int32_t *seg = NULL;
    if (packed) { /* segments of random lengths 1..9 */
        seg = malloc((size_t)B * T * 4);
        for (int32_t b = 0; b < B; b++)
            for (int32_t t = 0, s0 = 0, left = 0; t < T; t++) {
                if (left == 0) s0 = t, left = 1 + (int32_t)(rlhf_rng_u32(&rng) % 9);
                seg[(size_t)b * T + t] = s0;
                left--;
            }
    }
    float *o[2], *l[2], *dq[2], *dk[2], *dv[2];
    for (int k = 0; k < 2; k++)
        o[k] = malloc(nq * 4), l[k] = malloc((size_t)B * NH * T * 4), dq[k] = malloc(nq * 4),
        dk[k] = malloc(nk * 4), dv[k] = malloc(nk * 4);
    BOTH(attn_run, B, T, NH, NKV, HS, seg, q, kk, v, dout, o, l, dq, dk, dv);
    char m[96];
    snprintf(m, sizeof m, "attention %s B=%d T=%d NH=%d NKV=%d HS=%d%s out", prec, B, T, NH, NKV,
             HS, packed ? " packed" : "");
    compare(m, o[1], o[0], nq, tol);
    compare("  lse", l[1], l[0], (size_t)B * NH * T, tol);
    compare("  dq", dq[1], dq[0], nq, tol);
    compare("  dk", dk[1], dk[0], nk, tol);
    compare("  dv", dv[1], dv[0], nk, tol);
    free(q), free(kk), free(v), free(dout), free(seg);
    for (int k = 0; k < 2; k++) free(o[k]), free(l[k]), free(dq[k]), free(dk[k]), free(dv[k]);
}

static void attn_case(int32_t B, int32_t T, int32_t NH, int32_t NKV, int32_t HS, bool packed) {
    attn_case_p(B, T, NH, NKV, HS, packed, TOL, "fp32");
}

static void test_attention(void) {
    printf("attention\n");
    attn_case(1, 1, 1, 1, 2, false);
    attn_case(2, 7, 4, 2, 6, false);
    attn_case(3, 45, 6, 2, 10, true);
    attn_case(2, 70, 3, 1, 33, false);
    attn_case(1, 1000, 2, 1, 64, false);
    attn_case(1, 41, 2, 2, 256, true);
    attn_case(4, 1, 8, 2, 64, false);   /* T=1, several sequences, GQA */
    attn_case(2, 300, 8, 2, 128, true); /* 7B head size, packed, GQA, several key tiles */
    /* the GEMM path's products in tf32 and bf16 (the fused kernels compute in fp32 always) */
    const rlhf_backend *keep = gpu, *b;
    if (rlhf_backend_get("cuda:0/tf32", &b) == RLHF_OK) {
        gpu = b;
        attn_case_p(2, 150, 4, 2, 64, true, TOL_TF32, "tf32");
    }
    if (rlhf_backend_get("cuda:0/bf16", &b) == RLHF_OK) {
        gpu = b;
        attn_case_p(2, 150, 4, 2, 64, true, TOL_BF16, "bf16");
    }
    gpu = keep;
}

/* KV cache through kv_store, then decode rows over several slots. */
static void decode_run(const rlhf_backend *b, int32_t S, int32_t Tmax, int32_t NH, int32_t NKV,
                       int32_t HS, int32_t nfill, const int32_t *fslot, const int32_t *fpos,
                       const float *fk, const float *fv, int32_t n, const int32_t *slot,
                       const int32_t *pos, const float *q, float **out, int k) {
    const int32_t KVD = NKV * HS;
    size_t cache = (size_t)S * Tmax * KVD;
    float *kc = dev_of(b, NULL, cache * 4), *vc = dev_of(b, NULL, cache * 4);
    float *K = dev_of(b, fk, (size_t)nfill * KVD * 4), *V = dev_of(b, fv, (size_t)nfill * KVD * 4);
    int32_t *FS = dev_of(b, fslot, nfill * 4), *FP = dev_of(b, fpos, nfill * 4);
    int32_t *DS = dev_of(b, slot, n * 4), *DP = dev_of(b, pos, n * 4);
    float *Q = dev_of(b, q, (size_t)n * NH * HS * 4), *O = dev_of(b, NULL, (size_t)n * NH * HS * 4);
    CHECK_OK(b->kv_store(b, kc, vc, K, V, FS, FP, nfill, Tmax, KVD));
    CHECK_OK(b->attention_decode(b, O, Q, kc, vc, DS, DP, n, Tmax, NH, NKV, HS));
    host_of(b, out[k], O, (size_t)n * NH * HS * 4);
    b->free(b, kc), b->free(b, vc), b->free(b, K), b->free(b, V), b->free(b, FS), b->free(b, FP);
    b->free(b, DS), b->free(b, DP), b->free(b, Q), b->free(b, O);
}

static void test_decode(void) {
    printf("decode\n");
    const int32_t cfg[][5] = {{3, 40, 4, 2, 6}, {5, 300, 8, 2, 64}, {2, 37, 2, 1, 256}};
    for (int c = 0; c < 3; c++) {
        int32_t S = cfg[c][0], Tmax = cfg[c][1], NH = cfg[c][2], NKV = cfg[c][3], HS = cfg[c][4];
        int32_t KVD = NKV * HS, nfill = S * Tmax;
        int32_t *fs = malloc(nfill * 4), *fp = malloc(nfill * 4);
        for (int32_t i = 0; i < nfill; i++) fs[i] = i % S, fp[i] = i / S;
        float *fk = rnd((size_t)nfill * KVD, 1), *fv = rnd((size_t)nfill * KVD, 1);
        int32_t n = 2 * S + 1, *sl = malloc(n * 4), *ps = malloc(n * 4);
        for (int32_t i = 0; i < n; i++) {
            sl[i] = (int32_t)(rlhf_rng_u32(&rng) % (uint32_t)S);
            ps[i] = i == 0 ? 0 : i == 1 ? Tmax - 1 : (int32_t)(rlhf_rng_u32(&rng) % (uint32_t)Tmax);
        }
        float *q = rnd((size_t)n * NH * HS, 1), *o[2];
        for (int k = 0; k < 2; k++) o[k] = malloc((size_t)n * NH * HS * 4);
        BOTH(decode_run, S, Tmax, NH, NKV, HS, nfill, fs, fp, fk, fv, n, sl, ps, q, o);
        char m[96];
        snprintf(m, sizeof m, "kv_store + attention_decode S=%d Tmax=%d NH=%d NKV=%d HS=%d", S,
                 Tmax, NH, NKV, HS);
        compare(m, o[1], o[0], (size_t)n * NH * HS, TOL);
        free(fs), free(fp), free(fk), free(fv), free(sl), free(ps), free(q);
        for (int k = 0; k < 2; k++) free(o[k]);
    }
    /* a bad position is reported (at the next sync on CUDA), never written out of bounds */
    float *kc = dev_of(gpu, NULL, 2 * 4 * 4 * 4), *vc = dev_of(gpu, NULL, 2 * 4 * 4 * 4);
    float *kv = dev_of(gpu, NULL, 4 * 4);
    int32_t bad_pos = 4, zero = 0;
    int32_t *ds = dev_of(gpu, &zero, 4), *dp = dev_of(gpu, &bad_pos, 4);
    rlhf_status st = gpu->kv_store(gpu, kc, vc, kv, kv, ds, dp, 1, 4, 4); /* Tmax 4, KVD 4 */
    if (st == RLHF_OK) st = gpu->sync(gpu); /* CUDA: deferred; CPU (self-test): at once */
    CHECK(st == RLHF_ERR_ARG && strstr(rlhf_last_error(), "kv_store") != NULL);
    printf("  bad KV row reported: %s\n", rlhf_last_error());
    CHECK_OK(gpu->sync(gpu)); /* cleared */
    float *q = dev_of(gpu, NULL, 2 * 4 * 4), *o = dev_of(gpu, NULL, 2 * 4 * 4);
    st = gpu->attention_decode(gpu, o, q, kc, vc, ds, dp, 1, 4, 2, 1, 4); /* NH 2, NKV 1, HS 4 */
    if (st == RLHF_OK) st = gpu->sync(gpu);
    CHECK(st == RLHF_ERR_ARG && strstr(rlhf_last_error(), "attention_decode") != NULL);
    printf("  bad decode row reported: %s\n", rlhf_last_error());
    CHECK_OK(gpu->sync(gpu));
    float cache[2 * 4 * 4];
    host_of(gpu, cache, kc, sizeof cache);
    int untouched = 1;
    for (int i = 0; i < 2 * 4 * 4; i++) untouched &= cache[i] == 0.0f;
    CHECK(untouched); /* nothing was written for the bad row */
    gpu->free(gpu, kc), gpu->free(gpu, vc), gpu->free(gpu, kv), gpu->free(gpu, ds),
        gpu->free(gpu, dp), gpu->free(gpu, q), gpu->free(gpu, o);
}

/* ================================================================================= elementwise */

static void ew_run(const rlhf_backend *b, int64_t n, const float *a, const float *x,
                   const float *g, float **sw, float **d1, float **d3, float **ad, double *ss,
                   int k) {
    float *A = dev_of(b, a, n * 4), *X = dev_of(b, x, n * 4), *G = dev_of(b, g, n * 4);
    float *O = dev_of(b, NULL, n * 4), *D1 = dev_of(b, NULL, n * 4), *D3 = dev_of(b, NULL, n * 4);
    CHECK_OK(b->swiglu_fwd(b, O, A, X, n));
    CHECK_OK(b->swiglu_bwd(b, D1, D3, G, A, X, n));
    host_of(b, sw[k], O, n * 4);
    host_of(b, d1[k], D1, n * 4);
    host_of(b, d3[k], D3, n * 4);
    CHECK_OK(b->add(b, A, X, n));
    CHECK_OK(b->scale(b, A, -0.37f, n));
    host_of(b, ad[k], A, n * 4);
    CHECK_OK(b->sumsq(b, &ss[k], X, n));
    b->free(b, A), b->free(b, X), b->free(b, G), b->free(b, O), b->free(b, D1), b->free(b, D3);
}

static void test_elementwise(void) {
    printf("swiglu, add, scale, sumsq\n");
    const int64_t sizes[] = {1, 1001, 65536 * 3 + 17};
    for (int s = 0; s < 3; s++) {
        int64_t n = sizes[s];
        float *a = rnd(n, 3), *x = rnd(n, 1), *g = rnd(n, 1), *sw[2], *d1[2], *d3[2], *ad[2];
        double ss[2];
        for (int k = 0; k < 2; k++)
            sw[k] = malloc(n * 4), d1[k] = malloc(n * 4), d3[k] = malloc(n * 4),
            ad[k] = malloc(n * 4);
        BOTH(ew_run, n, a, x, g, sw, d1, d3, ad, ss);
        char m[64];
        snprintf(m, sizeof m, "swiglu_fwd n=%lld", (long long)n);
        compare(m, sw[1], sw[0], n, TOL);
        compare("  swiglu_bwd dh1", d1[1], d1[0], n, TOL);
        compare("  swiglu_bwd dh3", d3[1], d3[0], n, TOL);
        compare("  add then scale", ad[1], ad[0], n, 0);
        double rel = fabs(ss[1] - ss[0]) / fmax(ss[0], 1e-300);
        printf("  sumsq rel err %.2e\n", rel);
        CHECKF(rel < 1e-12, "sumsq %.17g vs %.17g", ss[1], ss[0]);
        double again;
        float *X = dev_of(gpu, x, n * 4);
        CHECK_OK(gpu->sumsq(gpu, &again, X, n));
        CHECK(memcmp(&again, &ss[1], sizeof again) == 0); /* deterministic */
        gpu->free(gpu, X);
        free(a), free(x), free(g);
        for (int k = 0; k < 2; k++) free(sw[k]), free(d1[k]), free(d3[k]), free(ad[k]);
    }
}

/* ================================================================================= logprob */

static void lp_run(const rlhf_backend *b, int64_t N, int32_t V, const float *x, const int32_t *t,
                   const float *dl, float **lp, float **lse, float **dx, int k) {
    float *X = dev_of(b, x, N * V * 4), *LP = dev_of(b, NULL, N * 4), *L = dev_of(b, NULL, N * 4);
    float *DL = dev_of(b, dl, N * 4);
    int32_t *Tg = dev_of(b, t, N * 4);
    CHECK_OK(b->logprob_fwd(b, LP, L, X, Tg, N, V));
    CHECK_OK(b->logprob_bwd(b, X, X, L, DL, Tg, N, V)); /* in place */
    host_of(b, lp[k], LP, N * 4);
    host_of(b, lse[k], L, N * 4);
    host_of(b, dx[k], X, N * V * 4);
    b->free(b, X), b->free(b, LP), b->free(b, L), b->free(b, DL), b->free(b, Tg);
}

static void test_logprob(void) {
    printf("logprob\n");
    const int32_t shapes[][2] = {{1, 1}, {5, 83}, {300, 32000}, {70000, 7}};
    for (int s = 0; s < 4; s++) {
        int64_t N = shapes[s][0];
        int32_t V = shapes[s][1];
        float *x = rnd(N * V, 3), *dl = rnd(N, 1);
        int32_t *t = malloc(N * 4);
        for (int64_t i = 0; i < N; i++) {
            t[i] = i % 7 == 3 ? -1 : (int32_t)(rlhf_rng_u32(&rng) % (uint32_t)V);
            if (i % 5 == 2) dl[i] = 0.0f;
        }
        float *lp[2], *lse[2], *dx[2];
        for (int k = 0; k < 2; k++) lp[k] = malloc(N * 4), lse[k] = malloc(N * 4), dx[k] = malloc(N * V * 4);
        BOTH(lp_run, N, V, x, t, dl, lp, lse, dx);
        char m[64];
        snprintf(m, sizeof m, "logprob_fwd N=%lld V=%d logp", (long long)N, V);
        compare(m, lp[1], lp[0], N, TOL);
        compare("  lse", lse[1], lse[0], N, TOL);
        compare("  logprob_bwd (in place)", dx[1], dx[0], N * V, TOL);
        free(x), free(dl), free(t);
        for (int k = 0; k < 2; k++) free(lp[k]), free(lse[k]), free(dx[k]);
    }
}

/* ================================================================================= adamw */

static void adam_run(const rlhf_backend *b, int64_t n, const float *p0, const float *g,
                     float **p, float **m, float **v, int k) {
    float *P = dev_of(b, p0, n * 4), *G = dev_of(b, g, n * 4), *M = dev_of(b, NULL, n * 4),
          *Vv = dev_of(b, NULL, n * 4);
    for (int t = 1; t <= 3; t++) {
        float bc1 = 1.0f - powf(0.9f, (float)t), bc2 = 1.0f - powf(0.95f, (float)t);
        CHECK_OK(b->adamw(b, P, G, M, Vv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, bc1, bc2));
    }
    host_of(b, p[k], P, n * 4);
    host_of(b, m[k], M, n * 4);
    host_of(b, v[k], Vv, n * 4);
    b->free(b, P), b->free(b, G), b->free(b, M), b->free(b, Vv);
}

static void test_adamw(void) {
    printf("adamw\n");
    int64_t n = 10007;
    float *p0 = rnd(n, 1), *g = rnd(n, 1), *p[2], *m[2], *v[2];
    for (int k = 0; k < 2; k++) p[k] = malloc(n * 4), m[k] = malloc(n * 4), v[k] = malloc(n * 4);
    BOTH(adam_run, n, p0, g, p, m, v);
    compare("adamw 3 steps: params", p[1], p[0], n, TOL);
    compare("  m", m[1], m[0], n, TOL);
    compare("  v", v[1], v[0], n, TOL);
    free(p0), free(g);
    for (int k = 0; k < 2; k++) free(p[k]), free(m[k]), free(v[k]);
}

/* ================================================================================= sample */

static void sample_run(const rlhf_backend *b, int32_t n, int32_t V, const float *x, uint64_t seed,
                       float temp, int32_t top_k, float top_p, int32_t **tok, float **lp,
                       rlhf_rng **rs, int k) {
    float *X = dev_of(b, x, (size_t)n * V * 4), *LP = dev_of(b, NULL, n * 4);
    int32_t *TK = dev_of(b, NULL, n * 4);
    rlhf_rng *r = rs[k];
    for (int32_t i = 0; i < n; i++) rlhf_rng_seed(&r[i], seed + (uint64_t)i, 3);
    CHECK_OK(b->sample(b, TK, LP, X, r, n, V, temp, top_k, top_p));
    host_of(b, tok[k], TK, n * 4);
    host_of(b, lp[k], LP, n * 4);
    b->free(b, X), b->free(b, LP), b->free(b, TK);
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Whether tok may be drawn from row x (V) under (temp, top_k, top_p), judged in double with a
 * little slack for float rounding: among the top_k best (by logit) and inside the nucleus (the
 * mass of the tokens strictly better than tok is below top_p of the kept mass). */
static bool sample_allowed(const float *x, int32_t V, float temp, int32_t top_k, float top_p,
                           int32_t tok) {
    if (tok < 0 || tok >= V) return false;
    const int32_t kk = top_k > 0 && top_k < V ? top_k : V;
    float *srt = malloc((size_t)V * 4);
    memcpy(srt, x, (size_t)V * 4);
    if (kk < V) qsort(srt, (size_t)V, 4, cmp_desc); /* only top-k needs the order */
    double mx = srt[0];
    for (int32_t j = 1; j < V; j++) mx = fmax(mx, (double)srt[j]);
    const double kth = kk < V ? srt[kk - 1] : -INFINITY; /* the worst logit that can be kept */
    double kept = 0, better = 0;
    for (int32_t j = 0; j < kk; j++) kept += exp(((double)srt[j] - mx) / temp);
    int32_t nbetter = 0;
    for (int32_t j = 0; j < V; j++)
        if (x[j] > x[tok] + 1e-5f * (1 + fabsf(x[tok]))) {
            nbetter++;
            better += exp(((double)x[j] - mx) / temp);
        }
    free(srt);
    bool ok = nbetter < kk && (double)x[tok] >= kth - 1e-5 * (1 + fabs(kth));
    if (top_p > 0 && top_p < 1) ok = ok && better < (double)top_p * kept * (1 + 1e-4);
    return ok;
}

static void test_sample(void) {
    printf("sample\n");
    const int32_t shapes[][2] = {{256, 32000}, {3, 83}, {2, 1}};
    const float cfg[][3] = {{0, 0, 1},      {1, 0, 1},       {0.8f, 0, 0.9f}, {1.2f, 0, 0.5f},
                            {1, 50, 0.95f}, {0.7f, 40, 1.0f}, {1, 1, 1}};
    const int ncfg = (int)(sizeof cfg / sizeof cfg[0]);
    for (int sh = 0; sh < 3; sh++) {
        const int32_t n = shapes[sh][0], V = shapes[sh][1];
        float *x = rnd((size_t)n * V, 2);
        if (V > 9) /* ties: the first maximum wins */
            for (int32_t i = 0; i < n; i += 17) x[(size_t)i * V + 5] = x[(size_t)i * V + 9] = 50.0f;
        for (int c = 0; c < ncfg; c++) {
            const float temp = cfg[c][0], top_p = cfg[c][2];
            const int32_t top_k = (int32_t)cfg[c][1];
            int32_t *tok[2] = {malloc(n * 4), malloc(n * 4)};
            float *lp[2] = {malloc(n * 4), malloc(n * 4)};
            rlhf_rng *rs[2] = {malloc(n * sizeof(rlhf_rng)), malloc(n * sizeof(rlhf_rng))};
            BOTH(sample_run, n, V, x, 1000 + (uint64_t)c, temp, top_k, top_p, tok, lp, rs);
            int same = 0, bad = 0;
            for (int32_t i = 0; i < n; i++) {
                if (tok[0][i] == tok[1][i]) same++;
                else lp[1][i] = lp[0][i]; /* logp is compared where the tokens agree */
                if (temp > 0 && !sample_allowed(x + (size_t)i * V, V, temp, top_k, top_p, tok[1][i])) {
                    if (bad++ < 3)
                        fprintf(stderr, "    row %d: cuda token %d (logit %g) outside the kept set\n",
                                i, tok[1][i], (double)x[(size_t)i * V + tok[1][i]]);
                }
            }
            char m[128];
            snprintf(m, sizeof m, "sample n=%d V=%d T=%g top_k=%d top_p=%g: %d/%d same; logp", n, V,
                     (double)temp, (int)top_k, (double)top_p, same, n);
            compare(m, lp[1], lp[0], n, TOL);
            CHECKF(bad == 0, "%s: %d of %d cuda tokens outside the top-k/top-p set", m, bad, n);
            /* the host draws each row's uniform exactly as the CPU does: same RNG states after */
            CHECKF(memcmp(rs[0], rs[1], n * sizeof(rlhf_rng)) == 0,
                   "%s: RNG streams advanced differently on CPU and CUDA", m);
            if (temp == 0 || top_k == 1) CHECKF(same == n, "greedy: %d of %d tokens differ", n - same, n);
            else if (top_k == 0) CHECKF(same >= n * 99 / 100, "seeded draws: %d of %d differ", n - same, n);
            for (int k = 0; k < 2; k++) free(tok[k]), free(lp[k]), free(rs[k]);
        }
        free(x);
    }
}

/* ================================================================================= model */

static void test_model(void) {
    printf("whole model (dim 48, 2 layers, 6 heads, 2 kv heads, vocab 83, B=3 T=19)\n");
    rlhf_model_config c = rlhf_config_default();
    c.dim = 48, c.hidden_dim = 100, c.n_layer = 2, c.n_head = 6, c.n_head_kv = 2;
    c.vocab_size = 83, c.seq_len = 32;
    const int32_t B = 3, T = 19, N = B * T;
    rlhf_model *m[2] = {NULL, NULL};
    const rlhf_backend *bes[2] = {cpu, gpu};
    int64_t P = 0;
    float *logits[2], *grads[2], *params[2], loss[2], gn[2];
    int32_t *tok = malloc(N * 4), *tgt = malloc(N * 4);
    for (int32_t i = 0; i < N; i++) {
        tok[i] = (int32_t)(rlhf_rng_u32(&rng) % 83);
        tgt[i] = i % 11 == 4 ? -1 : (int32_t)(rlhf_rng_u32(&rng) % 83);
    }
    rlhf_adamw_config oc = rlhf_adamw_default();
    for (int k = 0; k < 2; k++) {
        CHECK_OK(rlhf_model_init(&m[k], &c, bes[k], B, T));
        if (!m[k]) return;
        CHECK_OK(rlhf_model_init_random(m[k], 77));
        P = rlhf_model_num_params(m[k]);
        logits[k] = malloc((size_t)N * 83 * 4), grads[k] = malloc(P * 4), params[k] = malloc(P * 4);
        CHECK_OK(rlhf_model_forward(m[k], tok, B, T));
        CHECK_OK(rlhf_model_get_logits(m[k], logits[k]));
        CHECK_OK(rlhf_model_zero_grad(m[k]));
        CHECK_OK(rlhf_model_lm_step(m[k], tok, tgt, NULL, B, T, 1.0f, &loss[k]));
        CHECK_OK(rlhf_model_get_grads(m[k], grads[k]));
        CHECK_OK(rlhf_model_adamw_step(m[k], &oc, 1e-3f, &gn[k]));
        CHECK_OK(rlhf_model_get_params(m[k], params[k]));
    }
    compare("logits", logits[1], logits[0], (size_t)N * 83, TOL);
    compare("loss", &loss[1], &loss[0], 1, TOL);
    compare("gradients (all parameters)", grads[1], grads[0], P, TOL);
    compare("grad norm", &gn[1], &gn[0], 1, TOL);
    compare("parameters after one AdamW step", params[1], params[0], P, TOL);
    for (int k = 0; k < 2; k++) {
        rlhf_model_free(m[k]);
        free(logits[k]), free(grads[k]), free(params[k]);
    }
    free(tok), free(tgt);
}

/* Greedy generation from stories260K equals llama2.c's ids (fixture) on the GPU in fp32. */
static void test_greedy_generation(void) {
    char path[1024], fx[1024];
    const char *shared = getenv("RLHF_SHARED");
    snprintf(path, sizeof path, "%s/models/stories260K.bin", shared ? shared : "../shared");
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("greedy generation: %s not found, check skipped\n", path);
        return;
    }
    fclose(f);
    test_src("tests/fixtures/greedy_stories260K.txt", fx, sizeof fx);
    size_t len;
    char *txt = (char *)slurp(fx, &len);
    if (!txt) {
        CHECKF(0, "cannot read %s", fx);
        return;
    }
    int32_t want[1024];
    int nw = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        for (char *s = line; *s && nw < 1024;) {
            char *e;
            long v = strtol(s, &e, 10);
            if (e == s) break;
            want[nw++] = (int32_t)v;
            s = e;
        }
    }
    free(txt);
    rlhf_model *m = NULL;
    rlhf_sampler *s = NULL;
    CHECK_OK(rlhf_model_load_llama2c(&m, path, gpu, false, 1, 0));
    if (!m) return;
    CHECK_OK(rlhf_sampler_init(&s, m, 2));
    int32_t prompt = 1, *out = calloc(1024, 4);
    rlhf_sample_seq seq = {.prompt = &prompt, .n_prompt = 1, .seed = 1, .out = out};
    rlhf_sample_config sc = {0.0f, 0, 1.0f, nw, -1};
    if (s) CHECK_OK(rlhf_sampler_run(s, &sc, &seq, 1, NULL, NULL));
    int same = 0;
    while (same < nw && same < seq.n_out && out[same] == want[same]) same++;
    printf("greedy generation stories260K on %s: %d of %d ids equal llama2.c's\n", gpu->name, same,
           nw);
    CHECKF(same == nw && seq.n_out == nw, "first difference at id %d", same);
    free(out);
    rlhf_sampler_free(s);
    rlhf_model_free(m);
}

int main(void) {
    /* RLHF_CUDA_OPS_SELF=1: CPU against CPU, which proves this harness (its comparisons, the
     * sampler's membership and RNG checks) on a machine without a GPU (ctest test_cuda_ops_self) */
    const char *self = getenv("RLHF_CUDA_OPS_SELF");
    if (self && *self && strcmp(self, "0") != 0) {
        gpu = rlhf_backend_cpu();
        printf("self-test: the CPU backend stands in for CUDA\n");
    } else if (rlhf_backend_get("cuda:0/fp32", &gpu) != RLHF_OK) {
        char why[600];
        snprintf(why, sizeof why, "no CUDA backend: %s", rlhf_last_error());
        test_skip(why);
    }
    CHECK_OK(rlhf_backend_get("cpu", &cpu));
    char dev[256];
    CHECK_OK(rlhf_backend_device_name(gpu, dev, sizeof dev));
    printf("CPU vs %s on %s\n", gpu->name, dev);
    rlhf_rng_seed(&rng, 20240917, 1);
    test_embed();
    test_matmul();
    test_rmsnorm();
    test_rope();
    test_attention();
    test_decode();
    test_elementwise();
    test_logprob();
    test_adamw();
    test_sample();
    test_model();
    test_greedy_generation();
    TEST_MAIN_END();
}
