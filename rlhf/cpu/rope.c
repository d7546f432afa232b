/* rope.c: rotary position embedding, in place (CPU).
 *
 * x (N,nh,HS); row i has position p = pos[i] (pos NULL: p = i % T). For each head and each pair
 * (j, j+1), j = 0,2,..,HS-2, rotate by the angle p*theta^(-j/HS), computed in float exactly as
 * llama2.c's run.c does, so results are bitwise llama2.c's:
 *     float freq = 1.0f / powf(theta, j / (float)HS); float val = p * freq;
 *     float fcr = cosf(val), fci = sinf(val);
 *     x[j] = v0*fcr - v1*fci;  x[j+1] = v0*fci + v1*fcr;
 * Backward: the transpose (= inverse) rotation on the gradient:
 *     dx[j] = d0*fcr + d1*fci;  dx[j+1] = -d0*fci + d1*fcr.
 * Nothing is saved; the angles are recomputed (once per row and pair, shared by the heads).
 * An odd last element of a head is left untouched.
 */
#include "cpu_impl.h"

/* The rotation must be plain multiplies and adds, as in llama2.c: GCC 12's SLP vectorizer turns
 * this complex-multiply shape into fused vfmaddsub even under -ffp-contract=off, which changes the
 * last bit. So this one loop is kept scalar (the trig functions dominate the cost anyway). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
static void
rotate_pairs(float *x, const float *cr, const float *ci, int32_t np, int32_t nh, int32_t HS) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    for (int32_t h = 0; h < nh; h++) {
        float *v = x + (int64_t)h * HS;
        for (int32_t k = 0; k < np; k++) {
            float v0 = v[2 * k], v1 = v[2 * k + 1];
            v[2 * k] = v0 * cr[k] - v1 * ci[k];
            v[2 * k + 1] = v0 * ci[k] + v1 * cr[k];
        }
    }
}

#define ROPE_PAIRS 128 /* pairs of a head whose angles are tabulated at a time */

static void rope(float *x, const int32_t *pos, int64_t N, int32_t T, int32_t nh, int32_t HS,
                 float theta, float dir) {
    int64_t rowlen = (int64_t)nh * HS;
#pragma omp parallel for schedule(static) if (N * rowlen >= CPU_PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        int p = pos ? pos[i] : (int)(i % T);
        float cr[ROPE_PAIRS], ci[ROPE_PAIRS];
        for (int32_t j0 = 0; j0 + 1 < HS; j0 += 2 * ROPE_PAIRS) {
            int32_t np = 0;
            for (int32_t j = j0; j + 1 < HS && np < ROPE_PAIRS; j += 2, np++) {
                float freq = 1.0f / powf(theta, j / (float)HS);
                float val = p * freq;
                cr[np] = cosf(val);
                ci[np] = dir * sinf(val);
            }
            rotate_pairs(x + i * rowlen + j0, cr, ci, np, nh, HS);
        }
    }
}

rlhf_status cpu_rope_fwd(const rlhf_backend *be, float *x, const int32_t *pos, int64_t N, int32_t T,
                         int32_t nh, int32_t HS, float theta) {
    (void)be;
    if (!pos && T <= 0) return RLHF_ERR(RLHF_ERR_ARG, "rope_fwd: T=%d with pos NULL", T);
    rope(x, pos, N, T, nh, HS, theta, 1.0f);
    return RLHF_OK;
}

rlhf_status cpu_rope_bwd(const rlhf_backend *be, float *dx, const int32_t *pos, int64_t N,
                         int32_t T, int32_t nh, int32_t HS, float theta) {
    (void)be;
    if (!pos && T <= 0) return RLHF_ERR(RLHF_ERR_ARG, "rope_bwd: T=%d with pos NULL", T);
    rope(dx, pos, N, T, nh, HS, theta, -1.0f);
    return RLHF_OK;
}
