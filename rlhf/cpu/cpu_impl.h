/* cpu_impl.h: internals of the CPU backend shared by the files under rlhf/cpu/.
 *
 * Declares the CPU op functions that backend.c puts into the rlhf_backend table (one file per op
 * family, parallel to the future CUDA files; each opens with the op's math, shapes and what is
 * saved for backward; the contract itself is in backend_impl.h), and a few inline kernels that
 * several ops share: a lane-split dot product, axpy and a vectorizable exp.
 *
 * Threading and determinism: loops use OpenMP with static schedules; every reduction runs in an
 * order fixed by the shapes alone (lanes of 16, fixed column blocks, fixed chunks), never by the
 * thread count, so every op other than the BLAS matmuls gives bitwise identical results for any
 * thread count. BLAS is never called from inside an OpenMP parallel region.
 */
#ifndef RLHF_CPU_IMPL_H
#define RLHF_CPU_IMPL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend_impl.h"

/* Element counts below which a loop runs on the calling thread (a parallel region costs a few
 * microseconds; decode steps call most ops with one row). Results do not depend on it. */
#define CPU_PAR_MIN 16384

/* ---- embed.c ---- */
rlhf_status cpu_embed_fwd(const rlhf_backend *be, float *out, const int32_t *tokens,
                          const float *wte, int64_t N, int32_t C);
rlhf_status cpu_embed_bwd(const rlhf_backend *be, float *dwte, const float *dout,
                          const int32_t *tokens, int64_t N, int32_t C, int32_t V);
/* ---- matmul.c ---- */
rlhf_status cpu_matmul_fwd(const rlhf_backend *be, float *out, const float *inp, const float *w,
                           int64_t N, int32_t IC, int32_t OC, float beta);
rlhf_status cpu_matmul_bwd(const rlhf_backend *be, float *dinp, float *dw, const float *dout,
                           const float *inp, const float *w, int64_t N, int32_t IC, int32_t OC,
                           float beta);
/* ---- rmsnorm.c ---- */
rlhf_status cpu_rmsnorm_fwd(const rlhf_backend *be, float *out, float *rstd, const float *inp,
                            const float *w, int64_t N, int32_t C, float eps);
rlhf_status cpu_rmsnorm_bwd(const rlhf_backend *be, float *dinp, float *dw, const float *dout,
                            const float *inp, const float *w, const float *rstd, int64_t N,
                            int32_t C);
/* ---- rope.c ---- */
rlhf_status cpu_rope_fwd(const rlhf_backend *be, float *x, const int32_t *pos, int64_t N, int32_t T,
                         int32_t nh, int32_t HS, float theta);
rlhf_status cpu_rope_bwd(const rlhf_backend *be, float *dx, const int32_t *pos, int64_t N,
                         int32_t T, int32_t nh, int32_t HS, float theta);
/* ---- attention.c ---- */
rlhf_status cpu_attention_fwd(const rlhf_backend *be, float *out, float *lse, const float *q,
                              const float *k, const float *v, const int32_t *seg_start, int32_t B,
                              int32_t T, int32_t NH, int32_t NKV, int32_t HS);
rlhf_status cpu_attention_bwd(const rlhf_backend *be, float *dq, float *dk, float *dv,
                              const float *dout, const float *q, const float *k, const float *v,
                              const float *out, const float *lse, const int32_t *seg_start,
                              int32_t B, int32_t T, int32_t NH, int32_t NKV, int32_t HS);
rlhf_status cpu_kv_store(const rlhf_backend *be, float *kc, float *vc, const float *k,
                         const float *v, const int32_t *slots, const int32_t *pos, int32_t n,
                         int32_t Tmax, int32_t KVD);
rlhf_status cpu_attention_decode(const rlhf_backend *be, float *out, const float *q,
                                 const float *kc, const float *vc, const int32_t *slots,
                                 const int32_t *pos, int32_t n, int32_t Tmax, int32_t NH,
                                 int32_t NKV, int32_t HS);
/* ---- swiglu.c ---- */
rlhf_status cpu_swiglu_fwd(const rlhf_backend *be, float *out, const float *h1, const float *h3,
                           int64_t n);
rlhf_status cpu_swiglu_bwd(const rlhf_backend *be, float *dh1, float *dh3, const float *dout,
                           const float *h1, const float *h3, int64_t n);
/* ---- elementwise.c ---- */
rlhf_status cpu_add(const rlhf_backend *be, float *y, const float *x, int64_t n);
rlhf_status cpu_scale(const rlhf_backend *be, float *x, float s, int64_t n);
rlhf_status cpu_sumsq(const rlhf_backend *be, double *out, const float *x, int64_t n);
/* ---- logprob.c ---- */
rlhf_status cpu_logprob_fwd(const rlhf_backend *be, float *logp, float *lse, const float *logits,
                            const int32_t *targets, int64_t N, int32_t V);
rlhf_status cpu_logprob_bwd(const rlhf_backend *be, float *dlogits, const float *logits,
                            const float *lse, const float *dlogp, const int32_t *targets, int64_t N,
                            int32_t V);
/* ---- sample.c ---- */
rlhf_status cpu_sample(const rlhf_backend *be, int32_t *tokens, float *logp, float *logits,
                       rlhf_rng *rng, int32_t n, int32_t V, float temperature, int32_t top_k,
                       float top_p);
/* ---- adamw.c ---- */
rlhf_status cpu_adamw(const rlhf_backend *be, float *p, const float *g, float *m, float *v,
                      int64_t n, float lr, float b1, float b2, float eps, float wd,
                      float grad_scale, float bc1, float bc2);

/* ---- shared kernels ---- */

/* Lanes of the split reductions below: 16 partial sums (two AVX2 / one AVX-512 register), combined
 * pairwise in a fixed order, so the result depends only on n. */
#define CPU_LANES 16

static inline float cpu_lanes_sum(const float acc[CPU_LANES]) {
    float s8[8], s4[4];
    for (int l = 0; l < 8; l++)
        s8[l] = acc[l] + acc[l + 8];
    for (int l = 0; l < 4; l++)
        s4[l] = s8[l] + s8[l + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

/* sum_i a[i]*b[i] in float, CPU_LANES partial sums (vectorizes without -ffast-math). Cannot fail.
 */
static inline float cpu_dot(const float *restrict a, const float *restrict b, int64_t n) {
    float acc[CPU_LANES] = {0};
    int64_t i = 0;
    for (; i + CPU_LANES <= n; i += CPU_LANES)
        for (int l = 0; l < CPU_LANES; l++)
            acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++)
        acc[l] += a[i] * b[i];
    return cpu_lanes_sum(acc);
}

/* y += a*x. Cannot fail. */
static inline void cpu_axpy(float *restrict y, float a, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* exp(x) in float without libm, branch-free so that loops over it vectorize (glibc's expf does
 * not without -ffast-math). Cephes' expf: x = n*ln2 + r, |r| <= ln2/2, degree-6 polynomial for
 * e^r, scaled by 2^n built in the exponent bits. Max error about 2 ulp for x in [-87.3, 88];
 * below -87.3 gives 0 (the true value is subnormal), above 88 gives +inf, NaN stays NaN.
 * Cannot fail. */
static inline float cpu_expf(float x) {
    const float hi = 88.0f, lo = -87.33654475f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    /* round(xc/ln2) by the 1.5*2^23 trick; the low mantissa bits of t hold the integer */
    float t = xc * 1.44269504088896341f + 12582912.0f;
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    float nf = t - 12582912.0f;
    float r = xc - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t eb = (tb - 0x4B400000u + 127u) << 23; /* 2^n, n in [-126, 127] */
    float s;
    memcpy(&s, &eb, sizeof s);
    float y = p * s;
    y = x < lo ? 0.0f : y;
    return x > hi ? (float)INFINITY : y;
}

/* Per-thread scratch: nthreads * per floats (64-byte aligned, not zeroed), for use inside one
 * parallel region (index with omp_get_thread_num()). NOMEM recorded on failure. */
rlhf_status cpu_scratch(float **out, int *nthreads, int64_t per);

#endif /* RLHF_CPU_IMPL_H */
