/* matmul.c: the linear layer without bias (CPU, OpenBLAS sgemm).
 *
 * Forward:  out = beta*out + inp @ w^T      out (N,OC), inp (N,IC), w (OC,IC) row-major as
 *           torch.nn.Linear stores it; beta is 0 (out is write-only: its old contents, even NaN,
 *           are ignored) or 1 (residual add).
 * Backward: dinp = beta*dinp + dout @ w      (skipped when dinp is NULL)    dinp (N,IC)
 *           dw  += dout^T @ inp              (skipped when dw is NULL)      dw (OC,IC)
 * Saved for backward: inp (the caller keeps it).
 *
 * sgemm is deterministic for a fixed BLAS thread count. It is called from the calling thread only
 * (never inside an OpenMP region: the library links the OpenMP build of OpenBLAS, which runs its
 * own parallel region).
 */
#include <cblas.h>
#include <limits.h>

#include "cpu_impl.h"

rlhf_status cpu_matmul_fwd(const rlhf_backend *be, float *out, const float *inp, const float *w,
                           int64_t N, int32_t IC, int32_t OC, float beta) {
    (void)be;
    if (N <= 0 || OC <= 0) return RLHF_OK;
    if (N > INT_MAX) return RLHF_ERR(RLHF_ERR_ARG, "matmul_fwd: N=%lld too large", (long long)N);
    if (IC <= 0) { /* empty sum */
        for (int64_t i = 0; i < N * OC; i++)
            out[i] = beta == 0.0f ? 0.0f : beta * out[i];
        return RLHF_OK;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)N, OC, IC, 1.0f, inp, IC, w, IC,
                beta, out, OC);
    return RLHF_OK;
}

rlhf_status cpu_matmul_bwd(const rlhf_backend *be, float *dinp, float *dw, const float *dout,
                           const float *inp, const float *w, int64_t N, int32_t IC, int32_t OC,
                           float beta) {
    (void)be;
    if (N <= 0 || IC <= 0) return RLHF_OK;
    if (N > INT_MAX) return RLHF_ERR(RLHF_ERR_ARG, "matmul_bwd: N=%lld too large", (long long)N);
    if (OC <= 0) {
        if (dinp)
            for (int64_t i = 0; i < N * IC; i++)
                dinp[i] = beta == 0.0f ? 0.0f : beta * dinp[i];
        return RLHF_OK;
    }
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)N, IC, OC, 1.0f, dout, OC,
                    w, IC, beta, dinp, IC);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, (blasint)N, 1.0f, dout, OC,
                    inp, IC, 1.0f, dw, IC);
    return RLHF_OK;
}
