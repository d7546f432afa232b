/* swiglu.cu: the SwiGLU gate of the feed-forward block (CUDA).
 *
 * Forward:  out = silu(h1) * h3, silu(x) = x * (1/(1+exp(-x))), in llama2.c's order.  (n)
 * Saved for backward: nothing beyond h1, h3 (kept by the caller).
 * Backward: s = 1/(1+exp(-h1)):  dh3 = dout * h1*s;  dh1 = dout * h3 * s*(1 + h1*(1-s)).
 *           dh1, dh3 (n) overwritten; elementwise (one thread reads then writes an index), so
 *           outputs may alias inputs.
 */
#include "cuda_impl.h"

#define SW_THREADS 256

__global__ void k_swiglu_fwd(float *out, const float *h1, const float *h3, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float val = h1[i];
        val *= (1.0f / (1.0f + expf(-val)));
        val *= h3[i];
        out[i] = val;
    }
}

__global__ void k_swiglu_bwd(float *dh1, float *dh3, const float *dout, const float *h1,
                             const float *h3, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float x = h1[i], y = h3[i], g = dout[i];
        float s = 1.0f / (1.0f + expf(-x));
        float silu = x * s;
        dh1[i] = g * y * (s * (1.0f + x * (1.0f - s)));
        dh3[i] = g * silu;
    }
}

extern "C" rlhf_status cuda_swiglu_fwd(const rlhf_backend *be, float *out, const float *h1,
                                       const float *h3, int64_t n) {
    if (n <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    k_swiglu_fwd<<<cu_blocks(n, SW_THREADS), SW_THREADS, 0, cu_state(be)->stream>>>(out, h1, h3, n);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_swiglu_bwd(const rlhf_backend *be, float *dh1, float *dh3,
                                       const float *dout, const float *h1, const float *h3,
                                       int64_t n) {
    if (n <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    k_swiglu_bwd<<<cu_blocks(n, SW_THREADS), SW_THREADS, 0, cu_state(be)->stream>>>(dh1, dh3, dout,
                                                                                     h1, h3, n);
    CUDA_LAUNCHED();
    return RLHF_OK;
}
