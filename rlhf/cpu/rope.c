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
 * Nothing is saved; the angles are recomputed. An odd last element of a head is left untouched.
 */
#include "cpu_impl.h"

static void rope(float *x, const int32_t *pos, int64_t N, int32_t T, int32_t nh, int32_t HS,
                 float theta, float dir) {
    int64_t rowlen = (int64_t)nh * HS;
#pragma omp parallel for schedule(static) if (N * rowlen >= CPU_PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        int p = pos ? pos[i] : (int)(i % T);
        float *row = x + i * rowlen;
        for (int32_t j = 0; j + 1 < HS; j += 2) {
            float freq = 1.0f / powf(theta, j / (float)HS);
            float val = p * freq;
            float fcr = cosf(val), fci = dir * sinf(val);
            for (int32_t h = 0; h < nh; h++) {
                float *v = row + (int64_t)h * HS + j;
                float v0 = v[0], v1 = v[1];
                v[0] = v0 * fcr - v1 * fci;
                v[1] = v0 * fci + v1 * fcr;
            }
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
