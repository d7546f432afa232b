/* cuda_impl.h: internals of the CUDA backend shared by the files under rlhf/cuda/ (CUDA C++,
 * compiled by nvcc; nothing outside rlhf/cuda/ includes this header or any CUDA header).
 *
 * One backend instance per (device, precision): it owns one CUDA stream, one cuBLAS handle with
 * its workspace, a scratch buffer that ops grow on demand, and a small pinned, device-mapped
 * error record that kernels set when they meet bad indices (reported at the next sync point).
 * Every op is enqueued on the instance's stream; memory functions that touch host memory
 * synchronize that stream before returning. An instance must not be used by two host threads at
 * once (roles that run concurrently take different instances: "cuda:0/bf16" and "cuda:0/fp32"
 * are distinct).
 *
 * Error handling: CUDA_TRY / CUBLAS_TRY turn a failing call into RLHF_ERR_CUDA with the CUDA or
 * cuBLAS error text and the call's file:line (rlhf_last_error()); CUDA_LAUNCHED() checks a kernel
 * launch. Every op calls cu_enter() first (selects the instance's device on this thread).
 *
 * Determinism: no op uses floating-point atomics; every reduction runs in an order fixed by the
 * shapes, so reruns are bitwise equal (cuBLAS too, on one GPU model and toolkit version).
 */
#ifndef RLHF_CUDA_IMPL_H
#define RLHF_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

/* rlhf.h is C11; its one C-only keyword, spelled for C++ */
#if !defined(_Noreturn)
#define _Noreturn [[noreturn]]
#endif
extern "C" {
#include "backend_impl.h"
}

/* Matmul precision of an instance (storage is fp32 in all three). */
typedef enum cuda_precision {
    CUDA_PREC_FP32 = 0, /* CUBLAS_COMPUTE_32F_PEDANTIC: plain fp32, for checks */
    CUDA_PREC_TF32 = 1, /* CUBLAS_COMPUTE_32F_FAST_TF32: tf32 tensor cores */
    CUDA_PREC_BF16 = 2, /* CUBLAS_COMPUTE_32F_FAST_16BF: inputs rounded to bf16, fp32 accumulate */
} cuda_precision;

/* How attention_fwd/bwd compute (attention.cu): AUTO takes GEMM when its score buffers fit. */
enum { CU_ATTN_AUTO = 0, CU_ATTN_FUSED = 1, CU_ATTN_GEMM = 2 };

/* Error record written by kernels (pinned host memory mapped into the device). */
typedef struct cuda_err_rec {
    int32_t code; /* 0 none; 1 kv_store bad row; 2 attention_decode bad row */
    int32_t row, slot, pos;
} cuda_err_rec;

typedef struct cuda_state {
    int device;
    cuda_precision prec;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws; /* cuBLAS workspace */
    void *scratch; /* op scratch (device), scratch_bytes long */
    size_t scratch_bytes;
    cuda_err_rec *err_host; /* pinned, mapped */
    cuda_err_rec *err_dev;  /* its device address */
    int sm_count;
    size_t smem_optin; /* max dynamic shared memory per block */
    int attn_mode;     /* training attention: CU_ATTN_AUTO, _FUSED or _GEMM ($RLHF_CUDA_ATTN) */
    char name[48];
} cuda_state;

static inline cuda_state *cu_state(const rlhf_backend *be) { return (cuda_state *)be->state; }

#define CUDA_TRY(call)                                                                             \
    do {                                                                                           \
        cudaError_t _ce = (call);                                                                  \
        if (_ce != cudaSuccess)                                                                    \
            return rlhf_error_set(RLHF_ERR_CUDA, __FILE__, __LINE__, "%s: %s (%s)", #call,         \
                                  cudaGetErrorString(_ce), cudaGetErrorName(_ce));                 \
    } while (0)

#define CUBLAS_TRY(call)                                                                           \
    do {                                                                                           \
        cublasStatus_t _bs = (call);                                                               \
        if (_bs != CUBLAS_STATUS_SUCCESS)                                                          \
            return rlhf_error_set(RLHF_ERR_CUDA, __FILE__, __LINE__, "%s: cuBLAS %s (%d)", #call,  \
                                  cublasGetStatusString(_bs), (int)_bs);                           \
    } while (0)

/* After a <<<>>> launch: a bad configuration is reported here (execution errors surface at the
 * next synchronizing call). */
#define CUDA_LAUNCHED() CUDA_TRY(cudaGetLastError())

/* Selects the instance's device on the calling thread. */
rlhf_status cu_enter(const rlhf_backend *be);
/* Device scratch of at least bytes (256-byte aligned), valid until the next cu_scratch call on
 * this instance. Growing it synchronizes the stream. */
rlhf_status cu_scratch(const rlhf_backend *be, void **out, size_t bytes);
/* Blocks for a 1-D grid of n elements at `threads` per block, capped (grid-stride loops). */
static inline unsigned cu_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535LL * 8) b = 65535LL * 8;
    return (unsigned)b;
}
/* Strided-batched column-major C_i (m,n) = alpha op(A_i) op(B_i) + beta C_i, i < batch, X_i =
 * X + i * strideX, fp32 storage, the instance's matmul precision (matmul.cu). */
rlhf_status cu_gemm_strided(const rlhf_backend *be, cublasOperation_t ta, cublasOperation_t tb,
                            int m, int n, int k, float alpha, const float *A, int lda,
                            long long sA, const float *B, int ldb, long long sB, float beta,
                            float *C, int ldc, long long sC, int batch);
/* Allows a kernel more than 48 KiB of dynamic shared memory; UNSUPPORTED when bytes exceed the
 * device's opt-in limit. */
rlhf_status cu_smem(const rlhf_backend *be, const void *kernel, size_t bytes, const char *op);

/* ---- ops (one file per family, as rlhf/cpu/) ---- */
extern "C" {
rlhf_status cuda_embed_fwd(const rlhf_backend *be, float *out, const int32_t *tokens,
                           const float *wte, int64_t N, int32_t C);
rlhf_status cuda_embed_bwd(const rlhf_backend *be, float *dwte, const float *dout,
                           const int32_t *tokens, int64_t N, int32_t C, int32_t V);
rlhf_status cuda_matmul_fwd(const rlhf_backend *be, float *out, const float *inp, const float *w,
                            int64_t N, int32_t IC, int32_t OC, float beta);
rlhf_status cuda_matmul_bwd(const rlhf_backend *be, float *dinp, float *dw, const float *dout,
                            const float *inp, const float *w, int64_t N, int32_t IC, int32_t OC,
                            float beta);
rlhf_status cuda_rmsnorm_fwd(const rlhf_backend *be, float *out, float *rstd, const float *inp,
                             const float *w, int64_t N, int32_t C, float eps);
rlhf_status cuda_rmsnorm_bwd(const rlhf_backend *be, float *dinp, float *dw, const float *dout,
                             const float *inp, const float *w, const float *rstd, int64_t N,
                             int32_t C);
rlhf_status cuda_rope_fwd(const rlhf_backend *be, float *x, const int32_t *pos, int64_t N,
                          int32_t T, int32_t nh, int32_t HS, float theta);
rlhf_status cuda_rope_bwd(const rlhf_backend *be, float *dx, const int32_t *pos, int64_t N,
                          int32_t T, int32_t nh, int32_t HS, float theta);
rlhf_status cuda_attention_fwd(const rlhf_backend *be, float *out, float *lse, const float *q,
                               const float *k, const float *v, const int32_t *seg_start, int32_t B,
                               int32_t T, int32_t NH, int32_t NKV, int32_t HS);
rlhf_status cuda_attention_bwd(const rlhf_backend *be, float *dq, float *dk, float *dv,
                               const float *dout, const float *q, const float *k, const float *v,
                               const float *out, const float *lse, const int32_t *seg_start,
                               int32_t B, int32_t T, int32_t NH, int32_t NKV, int32_t HS);
rlhf_status cuda_kv_store(const rlhf_backend *be, float *kc, float *vc, const float *k,
                          const float *v, const int32_t *slots, const int32_t *pos, int32_t n,
                          int32_t Tmax, int32_t KVD);
rlhf_status cuda_attention_decode(const rlhf_backend *be, float *out, const float *q,
                                  const float *kc, const float *vc, const int32_t *slots,
                                  const int32_t *pos, int32_t n, int32_t Tmax, int32_t NH,
                                  int32_t NKV, int32_t HS);
rlhf_status cuda_swiglu_fwd(const rlhf_backend *be, float *out, const float *h1, const float *h3,
                            int64_t n);
rlhf_status cuda_swiglu_bwd(const rlhf_backend *be, float *dh1, float *dh3, const float *dout,
                            const float *h1, const float *h3, int64_t n);
rlhf_status cuda_add(const rlhf_backend *be, float *y, const float *x, int64_t n);
rlhf_status cuda_scale(const rlhf_backend *be, float *x, float s, int64_t n);
rlhf_status cuda_sumsq(const rlhf_backend *be, double *out, const float *x, int64_t n);
rlhf_status cuda_logprob_fwd(const rlhf_backend *be, float *logp, float *lse, const float *logits,
                             const int32_t *targets, int64_t N, int32_t V);
rlhf_status cuda_logprob_bwd(const rlhf_backend *be, float *dlogits, const float *logits,
                             const float *lse, const float *dlogp, const int32_t *targets,
                             int64_t N, int32_t V);
rlhf_status cuda_sample(const rlhf_backend *be, int32_t *tokens, float *logp, float *logits,
                        rlhf_rng *rng, int32_t n, int32_t V, float temperature, int32_t top_k,
                        float top_p);
rlhf_status cuda_adamw(const rlhf_backend *be, float *p, const float *g, float *m, float *v,
                       int64_t n, float lr, float b1, float b2, float eps, float wd,
                       float grad_scale, float bc1, float bc2);
}

/* ---- device helpers ---- */
#ifdef __CUDACC__
#define CU_FULL 0xffffffffu

/* Sum / max over the 32 lanes of a warp; every lane gets the result (butterfly, fixed order). */
static __device__ __forceinline__ float warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(CU_FULL, x, o);
    return x;
}
static __device__ __forceinline__ double warp_sum_d(double x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(CU_FULL, x, o);
    return x;
}
static __device__ __forceinline__ float warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(CU_FULL, x, o));
    return x;
}

/* Sum over a block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
 * sh: 32 floats of shared memory. Contains __syncthreads: call from all threads. */
static __device__ __forceinline__ float block_sum(float x, float *sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    x = warp_sum(x);
    __syncthreads(); /* sh may still be read from a previous call */
    if (lane == 0) sh[wid] = x;
    __syncthreads();
    x = lane < nw ? sh[lane] : 0.0f;
    return warp_sum(x);
}
static __device__ __forceinline__ float block_max(float x, float *sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    x = warp_max(x);
    __syncthreads();
    if (lane == 0) sh[wid] = x;
    __syncthreads();
    x = lane < nw ? sh[lane] : -INFINITY;
    return warp_max(x);
}
#endif /* __CUDACC__ */

#endif /* RLHF_CUDA_IMPL_H */
