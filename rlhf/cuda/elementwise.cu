/* elementwise.cu: small vector ops (CUDA): add, scale, and the squared norm for gradient clipping.
 *
 * add:   y += x          y, x (n)
 * scale: x *= s          x (n)
 * sumsq: *out (host) = sum_i x[i]^2 in double. x is cut into fixed chunks of SUMSQ_CHUNK
 *        elements; one block sums a chunk (grid-stride by thread, then a fixed warp/shuffle tree),
 *        a second one-block kernel adds the chunk sums in a fixed tree; so the result depends only
 *        on n and the data (bitwise equal on reruns). The value is copied to the host (syncs).
 * None has a backward.
 */
#include "cuda_impl.h"

#define EW_THREADS 256
#define SUMSQ_CHUNK 65536
#define SUMSQ_THREADS 512

__global__ void k_add(float *y, const float *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

__global__ void k_scale(float *x, float s, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        x[i] *= s;
}

/* Block reduction of doubles in a fixed order; result valid in thread 0. sh: 32 doubles. */
static __device__ double block_sum_d(double v, double *sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum_d(v);
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0;
    if (wid == 0) v = warp_sum_d(v);
    return v;
}

/* part[c] = sum of squares of chunk c (one block per chunk). */
__global__ void k_sumsq_chunks(double *part, const float *x, int64_t n) {
    __shared__ double sh[32];
    const int64_t lo = (int64_t)blockIdx.x * SUMSQ_CHUNK;
    const int64_t hi = lo + SUMSQ_CHUNK < n ? lo + SUMSQ_CHUNK : n;
    double acc = 0.0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        double v = (double)x[i];
        acc += v * v;
    }
    acc = block_sum_d(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

/* part[0] = sum of part[0..m) (one block). */
__global__ void k_sumsq_total(double *part, int64_t m) {
    __shared__ double sh[32];
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) acc += part[i];
    acc = block_sum_d(acc, sh);
    if (threadIdx.x == 0) part[0] = acc;
}

extern "C" rlhf_status cuda_add(const rlhf_backend *be, float *y, const float *x, int64_t n) {
    if (n <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    k_add<<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_state(be)->stream>>>(y, x, n);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_scale(const rlhf_backend *be, float *x, float s, int64_t n) {
    if (n <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    k_scale<<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_state(be)->stream>>>(x, s, n);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_sumsq(const rlhf_backend *be, double *out, const float *x, int64_t n) {
    *out = 0.0;
    if (n <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    cudaStream_t st = cu_state(be)->stream;
    const int64_t nchunk = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    if (nchunk > 0x7fffffffLL) return RLHF_ERR(RLHF_ERR_ARG, "sumsq: n=%lld too large", (long long)n);
    double *part;
    RLHF_TRY(cu_scratch(be, (void **)&part, (size_t)nchunk * sizeof(double)));
    k_sumsq_chunks<<<(unsigned)nchunk, SUMSQ_THREADS, 0, st>>>(part, x, n);
    CUDA_LAUNCHED();
    k_sumsq_total<<<1, SUMSQ_THREADS, 0, st>>>(part, nchunk);
    CUDA_LAUNCHED();
    CUDA_TRY(cudaMemcpyAsync(out, part, sizeof(double), cudaMemcpyDeviceToHost, st));
    CUDA_TRY(cudaStreamSynchronize(st));
    return RLHF_OK;
}
