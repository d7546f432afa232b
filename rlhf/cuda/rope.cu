/* rope.cu: rotary position embedding, in place (CUDA).
 *
 * x (N,nh,HS); row i has position p = pos[i] (pos NULL: p = i % T). For each head and each pair
 * (j, j+1), j = 0,2,..,HS-2, rotate by the angle p*theta^(-j/HS), computed in float as llama2.c:
 *     freq = 1.0f / powf(theta, j / (float)HS); val = p * freq; fcr = cosf(val), fci = sinf(val)
 *     x[j] = v0*fcr - v1*fci;  x[j+1] = v0*fci + v1*fcr.
 * Backward: the inverse rotation on the gradient (fci negated). One thread per (row, pair) computes
 * the angle once and rotates that pair in every head. Nothing is saved. An odd last element of a
 * head is left untouched. (Results match the CPU to float rounding, not bitwise: CUDA's powf,
 * cosf, sinf and contracted multiply-adds differ in the last bits.)
 */
#include "cuda_impl.h"

__global__ void k_rope(float *x, const int32_t *pos, int64_t N, int32_t T, int32_t nh, int32_t HS,
                       float theta, float dir) {
    const int32_t np = HS / 2;
    const int64_t total = N * np;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = e / np;
        const int32_t k = (int32_t)(e - i * np), j = 2 * k;
        const int p = pos ? pos[i] : (int)(i % T);
        const float freq = 1.0f / powf(theta, j / (float)HS);
        const float val = p * freq;
        const float cr = cosf(val), ci = dir * sinf(val);
        float *row = x + i * (int64_t)nh * HS + j;
        for (int32_t h = 0; h < nh; h++) {
            float *v = row + (int64_t)h * HS;
            const float v0 = v[0], v1 = v[1];
            v[0] = v0 * cr - v1 * ci;
            v[1] = v0 * ci + v1 * cr;
        }
    }
}

static rlhf_status rope(const rlhf_backend *be, float *x, const int32_t *pos, int64_t N, int32_t T,
                        int32_t nh, int32_t HS, float theta, float dir, const char *op) {
    if (!pos && T <= 0) return RLHF_ERR(RLHF_ERR_ARG, "%s: T=%d with pos NULL", op, T);
    if (N <= 0 || nh <= 0 || HS < 2) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    k_rope<<<cu_blocks(N * (HS / 2), 256), 256, 0, cu_state(be)->stream>>>(x, pos, N, T, nh, HS,
                                                                          theta, dir);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_rope_fwd(const rlhf_backend *be, float *x, const int32_t *pos,
                                     int64_t N, int32_t T, int32_t nh, int32_t HS, float theta) {
    return rope(be, x, pos, N, T, nh, HS, theta, 1.0f, "rope_fwd");
}

extern "C" rlhf_status cuda_rope_bwd(const rlhf_backend *be, float *dx, const int32_t *pos,
                                     int64_t N, int32_t T, int32_t nh, int32_t HS, float theta) {
    return rope(be, dx, pos, N, T, nh, HS, theta, -1.0f, "rope_bwd");
}
