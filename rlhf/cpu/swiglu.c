/* swiglu.c: the SwiGLU gate of the feed-forward block (CPU).
 *
 * Forward:  out = silu(h1) * h3, silu(x) = x * (1/(1+exp(-x))), computed in llama2.c's order
 *           (val = h1; val *= 1.0f/(1.0f+expf(-val)); val *= h3).     out, h1, h3 (n)
 * Saved for backward: nothing beyond h1, h3 (kept by the caller).
 * Backward: s = 1/(1+exp(-h1)):  dh3 = dout * h1*s;  dh1 = dout * h3 * s*(1 + h1*(1-s)).
 *           dh1, dh3 (n) overwritten; elementwise, so outputs may alias inputs.
 */
#include "cpu_impl.h"

rlhf_status cpu_swiglu_fwd(const rlhf_backend *be, float *out, const float *h1, const float *h3,
                           int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float val = h1[i];
        val *= (1.0f / (1.0f + expf(-val)));
        val *= h3[i];
        out[i] = val;
    }
    return RLHF_OK;
}

rlhf_status cpu_swiglu_bwd(const rlhf_backend *be, float *dh1, float *dh3, const float *dout,
                           const float *h1, const float *h3, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float x = h1[i], y = h3[i], g = dout[i];
        float s = 1.0f / (1.0f + expf(-x));
        float silu = x * s;
        dh1[i] = g * y * (s * (1.0f + x * (1.0f - s)));
        dh3[i] = g * silu;
    }
    return RLHF_OK;
}
