/* adamw.c: one AdamW update (CPU).
 *
 * For each i (all arrays (n)), with bias corrections bc1 = 1-b1^t, bc2 = 1-b2^t given by the
 * caller: g' = g*grad_scale;  m = b1*m + (1-b1)*g';  v = b2*v + (1-b2)*g'^2 p -= lr * (wd*p +
 * (m/bc1) / (sqrt(v/bc2) + eps)) Decoupled weight decay (wd = 0 for parameters without decay). p,
 * m, v are updated in place; g is read only. Elementwise, so results do not depend on the thread
 * count. (The loop stays scalar: GCC does not vectorize sqrtf without -fno-math-errno, which the
 * build does not use; the update is a few percent of a training step.)
 */
#include "cpu_impl.h"

rlhf_status cpu_adamw(const rlhf_backend *be, float *p, const float *g, float *m, float *v,
                      int64_t n, float lr, float b1, float b2, float eps, float wd,
                      float grad_scale, float bc1, float bc2) {
    (void)be;
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        p[i] -= lr * (wd * p[i] + mhat / (sqrtf(vhat) + eps));
    }
    return RLHF_OK;
}
