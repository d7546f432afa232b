/* matmul.cu: the linear layer without bias (CUDA, cuBLAS).
 *
 * Forward:  out = beta*out + inp @ w^T      out (N,OC), inp (N,IC), w (OC,IC) row-major; beta is
 *           0 (old contents ignored, even NaN: cuBLAS does not read C when beta is 0) or 1.
 * Backward: dinp = beta*dinp + dout @ w      (skipped when dinp is NULL)    dinp (N,IC)
 *           dw  += dout^T @ inp              (skipped when dw is NULL)      dw (OC,IC)
 * Saved for backward: inp (the caller keeps it).
 *
 * Row-major products as column-major cuBLAS calls (a row-major (r,c) matrix is the column-major
 * (c,r) one with leading dimension c):
 *   out^T (OC,N)  = w (OC,IC) @ inp_cm (IC,N), w stored as the column-major (IC,OC) so op T:
 *                   gemm(T, N, m=OC, n=N, k=IC, A=w lda=IC, B=inp ldb=IC)
 *   dinp^T (IC,N) = w_cm (IC,OC) @ dout_cm (OC,N): gemm(N, N, m=IC, n=N, k=OC, w, IC, dout, OC)
 *   dw^T (IC,OC) += inp_cm (IC,N) @ dout_cm^T (N,OC): gemm(N, T, m=IC, n=OC, k=N, inp, IC, dout, OC)
 * All fp32 storage; the compute type is the instance's precision: fp32 -> COMPUTE_32F_PEDANTIC,
 * tf32 -> COMPUTE_32F_FAST_TF32, bf16 -> COMPUTE_32F_FAST_16BF (operands rounded to bf16 inside
 * cuBLAS, fp32 accumulation). cuBLAS results are deterministic for one GPU model and toolkit.
 */
#include "cuda_impl.h"

static cublasComputeType_t compute_type(const rlhf_backend *be) {
    switch (cu_state(be)->prec) {
    case CUDA_PREC_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case CUDA_PREC_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    default: return CUBLAS_COMPUTE_32F_PEDANTIC;
    }
}

/* Column-major C (m,n) = alpha op(A) op(B) + beta C, fp32 storage. */
static rlhf_status gemm(const rlhf_backend *be, cublasOperation_t ta, cublasOperation_t tb, int m,
                        int n, int k, const float *A, int lda, const float *B, int ldb, float beta,
                        float *C, int ldc) {
    const float alpha = 1.0f;
    CUBLAS_TRY(cublasGemmEx(cu_state(be)->blas, ta, tb, m, n, k, &alpha, A, CUDA_R_32F, lda, B,
                            CUDA_R_32F, ldb, &beta, C, CUDA_R_32F, ldc, compute_type(be),
                            CUBLAS_GEMM_DEFAULT));
    return RLHF_OK;
}

rlhf_status cu_gemm_strided(const rlhf_backend *be, cublasOperation_t ta, cublasOperation_t tb,
                            int m, int n, int k, float alpha, const float *A, int lda,
                            long long sA, const float *B, int ldb, long long sB, float beta,
                            float *C, int ldc, long long sC, int batch) {
    CUBLAS_TRY(cublasGemmStridedBatchedEx(cu_state(be)->blas, ta, tb, m, n, k, &alpha, A,
                                          CUDA_R_32F, lda, sA, B, CUDA_R_32F, ldb, sB, &beta, C,
                                          CUDA_R_32F, ldc, sC, batch, compute_type(be),
                                          CUBLAS_GEMM_DEFAULT));
    return RLHF_OK;
}

/* x = beta*x over n elements (beta 0 writes zeros, ignoring NaN). */
__global__ void k_beta(float *x, float beta, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        x[i] = beta == 0.0f ? 0.0f : beta * x[i];
}

static rlhf_status apply_beta(const rlhf_backend *be, float *x, float beta, int64_t n) {
    if (n <= 0 || beta == 1.0f) return RLHF_OK;
    k_beta<<<cu_blocks(n, 256), 256, 0, cu_state(be)->stream>>>(x, beta, n);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

#define MM_INT_MAX 0x7fffffffLL

extern "C" rlhf_status cuda_matmul_fwd(const rlhf_backend *be, float *out, const float *inp,
                                       const float *w, int64_t N, int32_t IC, int32_t OC,
                                       float beta) {
    if (N <= 0 || OC <= 0) return RLHF_OK;
    if (N > MM_INT_MAX) return RLHF_ERR(RLHF_ERR_ARG, "matmul_fwd: N=%lld too large", (long long)N);
    RLHF_TRY(cu_enter(be));
    if (IC <= 0) return apply_beta(be, out, beta, N * OC); /* empty sum */
    return gemm(be, CUBLAS_OP_T, CUBLAS_OP_N, OC, (int)N, IC, w, IC, inp, IC, beta, out, OC);
}

extern "C" rlhf_status cuda_matmul_bwd(const rlhf_backend *be, float *dinp, float *dw,
                                       const float *dout, const float *inp, const float *w,
                                       int64_t N, int32_t IC, int32_t OC, float beta) {
    if (N <= 0 || IC <= 0) return RLHF_OK;
    if (N > MM_INT_MAX) return RLHF_ERR(RLHF_ERR_ARG, "matmul_bwd: N=%lld too large", (long long)N);
    RLHF_TRY(cu_enter(be));
    if (OC <= 0) return dinp ? apply_beta(be, dinp, beta, N * IC) : RLHF_OK;
    if (dinp) RLHF_TRY(gemm(be, CUBLAS_OP_N, CUBLAS_OP_N, IC, (int)N, OC, w, IC, dout, OC, beta, dinp, IC));
    if (dw) RLHF_TRY(gemm(be, CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, (int)N, inp, IC, dout, OC, 1.0f, dw, IC));
    return RLHF_OK;
}
