/* rmsnorm.c: RMSNorm (CPU).
 *
 * Forward:  rstd[i] = 1/sqrt(mean_c(inp[i,c]^2) + eps); out[i,c] = w[c] * (rstd[i] * inp[i,c])
 *           out (N,C), rstd (N) (may be NULL), inp (N,C), w (C). Computed exactly as llama2.c's
 *           rmsnorm(): the squares summed in float in index order, ss /= C, ss += eps,
 *           1.0f/sqrtf(ss), and that multiplication order, so outputs are bitwise llama2.c's.
 *           out may equal inp (in place).
 * Saved for backward: rstd (and the caller keeps inp, w).
 * Backward: with g = dout, r = rstd[i]:
 *           dinp[i,c] += r*w[c]*g[i,c] - inp[i,c] * r^3/C * sum_c' g[i,c']*w[c']*inp[i,c']
 *           dw[c]     += sum_i g[i,c]*inp[i,c]*r_i
 *           Both accumulate. dinp rows are parallel over rows; dw is parallel over fixed column
 *           blocks that each sum the rows in index order (independent of the thread count).
 */
#include "cpu_impl.h"

/* No fused multiply-adds in the forward (bitwise llama2.c, whose plain build has none): GCC does
 * not contract in -std=c11 mode, clang would by default. */
#ifdef __clang__
#pragma clang fp contract(off)
#endif

rlhf_status cpu_rmsnorm_fwd(const rlhf_backend *be, float *out, float *rstd, const float *inp,
                            const float *w, int64_t N, int32_t C, float eps) {
    (void)be;
#pragma omp parallel for schedule(static) if (N * C >= CPU_PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float *o = out + i * C;
        float ss = 0.0f;
        for (int32_t j = 0; j < C; j++)
            ss += x[j] * x[j];
        ss /= (float)C;
        ss += eps;
        ss = 1.0f / sqrtf(ss);
        for (int32_t j = 0; j < C; j++)
            o[j] = w[j] * (ss * x[j]);
        if (rstd) rstd[i] = ss;
    }
    return RLHF_OK;
}

#define RMS_COL_BLOCK 64

rlhf_status cpu_rmsnorm_bwd(const rlhf_backend *be, float *dinp, float *dw, const float *dout,
                            const float *inp, const float *w, const float *rstd, int64_t N,
                            int32_t C) {
    (void)be;
    int64_t nblk = (C + RMS_COL_BLOCK - 1) / RMS_COL_BLOCK;
#pragma omp parallel if (N * C >= CPU_PAR_MIN)
    {
        if (dinp) {
#pragma omp for schedule(static)
            for (int64_t i = 0; i < N; i++) {
                const float *restrict x = inp + i * C;
                const float *restrict g = dout + i * C;
                float *restrict dx = dinp + i * C;
                float r = rstd[i];
                float acc[CPU_LANES] = {0};
                int64_t c = 0;
                for (; c + CPU_LANES <= C; c += CPU_LANES)
                    for (int l = 0; l < CPU_LANES; l++)
                        acc[l] += g[c + l] * w[c + l] * x[c + l];
                for (int l = 0; c < C; c++, l++)
                    acc[l] += g[c] * w[c] * x[c];
                float dot = cpu_lanes_sum(acc);
                float k = dot * (r * r * r) / (float)C;
                for (c = 0; c < C; c++)
                    dx[c] += r * w[c] * g[c] - k * x[c];
            }
        }
        if (dw) {
#pragma omp for schedule(static)
            for (int64_t blk = 0; blk < nblk; blk++) {
                int64_t c0 = blk * RMS_COL_BLOCK;
                int64_t nc = C - c0 < RMS_COL_BLOCK ? C - c0 : RMS_COL_BLOCK;
                float acc[RMS_COL_BLOCK] = {0};
                for (int64_t i = 0; i < N; i++) {
                    const float *restrict x = inp + i * C + c0;
                    const float *restrict g = dout + i * C + c0;
                    float r = rstd[i];
                    for (int64_t c = 0; c < nc; c++)
                        acc[c] += g[c] * x[c] * r;
                }
                for (int64_t c = 0; c < nc; c++)
                    dw[c0 + c] += acc[c];
            }
        }
    }
    return RLHF_OK;
}
