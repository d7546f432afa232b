/* rope.cu: rotary position embedding, in place (CUDA).
 *
 * x (N,nh,HS); row i has position p = pos[i] (pos NULL: p = i % T). For each head and each pair
 * (j, j+1), j = 0,2,..,HS-2, rotate by the angle p*theta^(-j/HS), computed in float as llama2.c:
 *     freq = 1.0f / powf(theta, j / (float)HS); val = p * freq; fcr = cosf(val), fci = sinf(val)
 *     x[j] = v0*fcr - v1*fci;  x[j+1] = v0*fci + v1*fcr.
 * Backward: the inverse rotation on the gradient (fci negated). One thread per (row, pair) computes
 * the angle once and rotates that pair in every head. Nothing is saved. An odd last element of a
 * head is left untouched.
 *
 * Matching the CPU: the frequencies are computed on the HOST with the C library's powf (the CPU
 * backend's own function) and travel with the launch (a __grid_constant__ table of ROPE_TAB pairs,
 * HS <= 512; larger heads fall back to the device powf). Computing them on the device is not
 * enough: CUDA's powf may differ from glibc's by an ulp or more, and val = p*freq multiplies that
 * by the position (at p ~ 4000 one ulp of freq moves the angle by ~2e-4 rad, far above 1e-5).
 * The rotation is written with __fmul_rn/__fadd_rn so that nvcc does not contract it into fused
 * multiply-adds (llama2.c's plain build has none). What is left is CUDA's cosf/sinf (<= 2 ulp).
 */
#include <math.h>

#include "cuda_impl.h"

#define ROPE_TAB 256 /* pairs whose frequency comes from the host */

typedef struct rope_tab {
    float freq[ROPE_TAB];
} rope_tab;

__global__ void k_rope(float *x, const int32_t *pos, int64_t N, int32_t T, int32_t nh, int32_t HS,
                       float theta, float dir, const __grid_constant__ rope_tab tab) {
    const int32_t np = HS / 2;
    const int64_t total = N * np;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = e / np;
        const int32_t k = (int32_t)(e - i * np), j = 2 * k;
        const int p = pos ? pos[i] : (int)(i % T);
        const float freq = k < ROPE_TAB ? tab.freq[k] : 1.0f / powf(theta, j / (float)HS);
        const float val = (float)p * freq;
        const float cr = cosf(val), ci = dir * sinf(val);
        float *row = x + i * (int64_t)nh * HS + j;
        for (int32_t h = 0; h < nh; h++) {
            float *v = row + (int64_t)h * HS;
            const float v0 = v[0], v1 = v[1];
            v[0] = __fsub_rn(__fmul_rn(v0, cr), __fmul_rn(v1, ci));
            v[1] = __fadd_rn(__fmul_rn(v0, ci), __fmul_rn(v1, cr));
        }
    }
}

static rlhf_status rope(const rlhf_backend *be, float *x, const int32_t *pos, int64_t N, int32_t T,
                        int32_t nh, int32_t HS, float theta, float dir, const char *op) {
    if (!pos && T <= 0) return RLHF_ERR(RLHF_ERR_ARG, "%s: T=%d with pos NULL", op, T);
    if (N <= 0 || nh <= 0 || HS < 2) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    rope_tab tab;
    for (int32_t k = 0; k < ROPE_TAB; k++)
        tab.freq[k] = k < HS / 2 ? 1.0f / powf(theta, (2 * k) / (float)HS) : 0.0f;
    k_rope<<<cu_blocks(N * (HS / 2), 256), 256, 0, cu_state(be)->stream>>>(x, pos, N, T, nh, HS,
                                                                          theta, dir, tab);
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
