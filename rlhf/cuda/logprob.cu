/* logprob.cu: gathered log-softmax over the vocabulary and its backward (CUDA).
 *
 * Forward:  lse[i] = log sum_j exp(logits[i,j]);  logp[i] = logits[i,t_i] - lse[i] for
 *           t_i = targets[i] >= 0, else 0.        logits (N,V), targets (N), logp, lse (N).
 *           One block per row: the max, then sum_j expf(x_j - max) in float (per-thread strided
 *           sums, fixed shuffle tree), lse = max + logf(sum).
 * Saved for backward: lse (the caller keeps logits).
 * Backward: dlogits[i,j] = dlogp[i] * ([j == t_i] - exp(logits[i,j] - lse[i])); rows with t_i < 0
 *           or dlogp[i] == 0 become exactly zero. Overwrites; dlogits may alias logits (each
 *           element is read and then written by the same thread). grid (column tiles, rows).
 */
#include "cuda_impl.h"

#define LP_THREADS 512
#define LPB_THREADS 256
#define LPB_PER_THREAD 8

__global__ void k_logprob_fwd(float *logp, float *lse, const float *logits, const int32_t *targets,
                              int32_t V) {
    __shared__ float sh[32];
    const int64_t i = blockIdx.x;
    const float *x = logits + i * V;
    float m = -INFINITY;
    for (int32_t j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, x[j]);
    m = block_max(m, sh);
    float s = 0.0f;
    for (int32_t j = threadIdx.x; j < V; j += blockDim.x) s += expf(x[j] - m);
    s = block_sum(s, sh);
    if (threadIdx.x == 0) {
        const float l = m + logf(s);
        lse[i] = l;
        const int32_t t = targets[i];
        logp[i] = t >= 0 ? x[t] - l : 0.0f;
    }
}

__global__ void k_logprob_bwd(float *dlogits, const float *logits, const float *lse,
                              const float *dlogp, const int32_t *targets, int32_t V) {
    const int64_t i = blockIdx.y;
    const int32_t t = targets[i];
    const float d = dlogp[i], l = lse[i], nd = -d;
    const bool zero = t < 0 || d == 0.0f;
    const int64_t j0 = (int64_t)blockIdx.x * (LPB_THREADS * LPB_PER_THREAD);
    for (int r = 0; r < LPB_PER_THREAD; r++) {
        const int64_t j = j0 + r * LPB_THREADS + threadIdx.x;
        if (j >= V) break;
        float g = 0.0f;
        if (!zero) {
            g = nd * expf(logits[i * V + j] - l);
            if (j == t) g += d;
        }
        dlogits[i * V + j] = g;
    }
}

extern "C" rlhf_status cuda_logprob_fwd(const rlhf_backend *be, float *logp, float *lse,
                                        const float *logits, const int32_t *targets, int64_t N,
                                        int32_t V) {
    if (N <= 0) return RLHF_OK;
    if (V <= 0) return RLHF_ERR(RLHF_ERR_ARG, "logprob_fwd: V=%d", V);
    if (N > 0x7fffffffLL) return RLHF_ERR(RLHF_ERR_ARG, "logprob_fwd: N=%lld too large", (long long)N);
    RLHF_TRY(cu_enter(be));
    k_logprob_fwd<<<(unsigned)N, LP_THREADS, 0, cu_state(be)->stream>>>(logp, lse, logits, targets,
                                                                       V);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_logprob_bwd(const rlhf_backend *be, float *dlogits,
                                        const float *logits, const float *lse, const float *dlogp,
                                        const int32_t *targets, int64_t N, int32_t V) {
    if (N <= 0 || V <= 0) return RLHF_OK;
    if (N > 65535) { /* grid.y limit: rows in slices */
        for (int64_t r0 = 0; r0 < N; r0 += 65535) {
            int64_t n = N - r0 < 65535 ? N - r0 : 65535;
            RLHF_TRY(cuda_logprob_bwd(be, dlogits + r0 * V, logits + r0 * V, lse + r0, dlogp + r0,
                                      targets + r0, n, V));
        }
        return RLHF_OK;
    }
    RLHF_TRY(cu_enter(be));
    const int32_t tile = LPB_THREADS * LPB_PER_THREAD;
    dim3 grid((unsigned)((V + tile - 1) / tile), (unsigned)N);
    k_logprob_bwd<<<grid, LPB_THREADS, 0, cu_state(be)->stream>>>(dlogits, logits, lse, dlogp,
                                                                 targets, V);
    CUDA_LAUNCHED();
    return RLHF_OK;
}
