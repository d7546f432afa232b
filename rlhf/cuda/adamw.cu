/* adamw.cu: one AdamW update (CUDA).
 *
 * For each i (all arrays (n)), with bias corrections bc1 = 1-b1^t, bc2 = 1-b2^t given by the
 * caller: g' = g*grad_scale; m = b1*m + (1-b1)*g'; v = b2*v + (1-b2)*g'^2;
 * p -= lr * (wd*p + (m/bc1) / (sqrt(v/bc2) + eps)). Decoupled weight decay. p, m, v in place
 * (fp32 master weights and fp32 moments in every precision mode); g read only. Elementwise.
 */
#include "cuda_impl.h"

#define ADAM_THREADS 256

__global__ void k_adamw(float *p, const float *g, float *m, float *v, int64_t n, float lr,
                        float b1, float b2, float eps, float wd, float grad_scale, float bc1,
                        float bc2) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float gi = g[i] * grad_scale;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        p[i] -= lr * (wd * p[i] + mhat / (sqrtf(vhat) + eps));
    }
}

extern "C" rlhf_status cuda_adamw(const rlhf_backend *be, float *p, const float *g, float *m,
                                  float *v, int64_t n, float lr, float b1, float b2, float eps,
                                  float wd, float grad_scale, float bc1, float bc2) {
    if (n <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    k_adamw<<<cu_blocks(n, ADAM_THREADS), ADAM_THREADS, 0, cu_state(be)->stream>>>(
        p, g, m, v, n, lr, b1, b2, eps, wd, grad_scale, bc1, bc2);
    CUDA_LAUNCHED();
    return RLHF_OK;
}
