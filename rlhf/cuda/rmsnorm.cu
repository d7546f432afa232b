/* rmsnorm.cu: RMSNorm (CUDA).
 *
 * Forward:  rstd[i] = 1/sqrt(mean_c(inp[i,c]^2) + eps); out[i,c] = w[c] * (rstd[i] * inp[i,c])
 *           out (N,C), rstd (N) (may be NULL), inp (N,C), w (C). One warp per row: squares summed
 *           in float (per-lane strided sums, then a butterfly), ss/C + eps, 1.0f/sqrtf. out may
 *           equal inp: each element is read and written by the same lane, and the reduction's
 *           shuffles order every read of the row before any write.
 * Saved for backward: rstd (the caller keeps inp, w).
 * Backward: with g = dout, r = rstd[i]:
 *           dinp[i,c] += r*w[c]*g[i,c] - inp[i,c] * r^3/C * sum_c' g[i,c']*w[c']*inp[i,c']
 *           dw[c]     += sum_i g[i,c]*inp[i,c]*r_i
 *           Both accumulate. dinp: one warp per row. dw without atomics: partial sums over fixed
 *           chunks of RMS_ROWS rows (thread per (chunk, column), rows in order), then one thread
 *           per column adds the chunk sums in order: fixed by N and C alone.
 */
#include "cuda_impl.h"

#define RMS_WARPS 8
#define RMS_ROWS 64

__global__ void k_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                              int32_t C, float eps) {
    const int lane = threadIdx.x & 31;
    const int64_t i = (int64_t)blockIdx.x * RMS_WARPS + (threadIdx.x >> 5);
    if (i >= N) return; /* whole warps leave together */
    const float *x = inp + i * C;
    float *o = out + i * C;
    float ss = 0.0f;
    for (int32_t j = lane; j < C; j += 32) ss += x[j] * x[j];
    ss = warp_sum(ss);
    ss /= (float)C;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int32_t j = lane; j < C; j += 32) o[j] = w[j] * (ss * x[j]);
    if (rstd && lane == 0) rstd[i] = ss;
}

__global__ void k_rmsnorm_bwd_dinp(float *dinp, const float *dout, const float *inp,
                                   const float *w, const float *rstd, int64_t N, int32_t C) {
    const int lane = threadIdx.x & 31;
    const int64_t i = (int64_t)blockIdx.x * RMS_WARPS + (threadIdx.x >> 5);
    if (i >= N) return;
    const float *x = inp + i * C, *g = dout + i * C;
    float *dx = dinp + i * C;
    const float r = rstd[i];
    float dot = 0.0f;
    for (int32_t c = lane; c < C; c += 32) dot += g[c] * w[c] * x[c];
    dot = warp_sum(dot);
    const float k = dot * (r * r * r) / (float)C;
    for (int32_t c = lane; c < C; c += 32) dx[c] += r * w[c] * g[c] - k * x[c];
}

/* part[chunk, c] = sum over rows of the chunk of g*x*r. grid (nchunk, ceil(C/256)). */
__global__ void k_rmsnorm_bwd_dw_part(float *part, const float *dout, const float *inp,
                                      const float *rstd, int64_t N, int32_t C) {
    const int64_t c = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int64_t i0 = (int64_t)blockIdx.x * RMS_ROWS;
    const int64_t i1 = i0 + RMS_ROWS < N ? i0 + RMS_ROWS : N;
    float acc = 0.0f;
    for (int64_t i = i0; i < i1; i++) acc += dout[i * C + c] * inp[i * C + c] * rstd[i];
    part[(int64_t)blockIdx.x * C + c] = acc;
}

__global__ void k_rmsnorm_bwd_dw_sum(float *dw, const float *part, int64_t nchunk, int32_t C) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int64_t k = 0; k < nchunk; k++) acc += part[k * C + c];
    dw[c] += acc;
}

extern "C" rlhf_status cuda_rmsnorm_fwd(const rlhf_backend *be, float *out, float *rstd,
                                        const float *inp, const float *w, int64_t N, int32_t C,
                                        float eps) {
    if (N <= 0 || C <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    unsigned blocks = (unsigned)((N + RMS_WARPS - 1) / RMS_WARPS);
    k_rmsnorm_fwd<<<blocks, RMS_WARPS * 32, 0, cu_state(be)->stream>>>(out, rstd, inp, w, N, C, eps);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_rmsnorm_bwd(const rlhf_backend *be, float *dinp, float *dw,
                                        const float *dout, const float *inp, const float *w,
                                        const float *rstd, int64_t N, int32_t C) {
    if (N <= 0 || C <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    cudaStream_t st = cu_state(be)->stream;
    if (dinp) {
        unsigned blocks = (unsigned)((N + RMS_WARPS - 1) / RMS_WARPS);
        k_rmsnorm_bwd_dinp<<<blocks, RMS_WARPS * 32, 0, st>>>(dinp, dout, inp, w, rstd, N, C);
        CUDA_LAUNCHED();
    }
    if (dw) {
        const int64_t nchunk = (N + RMS_ROWS - 1) / RMS_ROWS;
        float *part;
        RLHF_TRY(cu_scratch(be, (void **)&part, (size_t)(nchunk * C) * sizeof(float)));
        dim3 grid((unsigned)nchunk, (unsigned)((C + 255) / 256));
        k_rmsnorm_bwd_dw_part<<<grid, 256, 0, st>>>(part, dout, inp, rstd, N, C);
        CUDA_LAUNCHED();
        k_rmsnorm_bwd_dw_sum<<<(unsigned)((C + 255) / 256), 256, 0, st>>>(dw, part, nchunk, C);
        CUDA_LAUNCHED();
    }
    return RLHF_OK;
}
