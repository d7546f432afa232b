/* backend.cu: the CUDA backend table, its instances, memory functions and device helpers.
 *
 * rlhf_backend_get("cuda[:N][/fp32|/tf32|/bf16]") (parsed in cpu/backend.c) lands in
 * rlhf_backend_cuda(N, precision): one instance per (device, precision), created on first use
 * and kept for the life of the process (the table has no free function; an instance holds a
 * stream, a cuBLAS handle, a 32 MiB cuBLAS workspace and the op scratch). Asking again returns
 * the same instance. Without a precision suffix the default is $RLHF_CUDA_PRECISION when set,
 * else bf16. The instance's name is its canonical spelling ("cuda:0/bf16").
 *
 * Memory: cudaMalloc (never managed memory), zero-filled on the stream; to_device / to_host are
 * cudaMemcpyAsync on the stream followed by a stream synchronize (the host buffer may be reused at
 * once); zero and copy are asynchronous on the stream (ordered with the ops); sync synchronizes.
 * to_host and sync also report errors that kernels recorded (bad KV-cache rows).
 */
#include <mutex>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_bf16.h>

#include "cuda_impl.h"

#define CU_MAX_DEV 16
#define CU_BLAS_WS (32u << 20)

/* ---- entering, scratch, shared memory ---- */

rlhf_status cu_enter(const rlhf_backend *be) {
    CUDA_TRY(cudaSetDevice(cu_state(be)->device));
    return RLHF_OK;
}

rlhf_status cu_scratch(const rlhf_backend *be, void **out, size_t bytes) {
    cuda_state *s = cu_state(be);
    if (bytes == 0) bytes = 256;
    if (bytes > s->scratch_bytes) {
        size_t want = bytes + bytes / 2;
        want = (want + 255) & ~(size_t)255;
        CUDA_TRY(cudaStreamSynchronize(s->stream));
        if (s->scratch) CUDA_TRY(cudaFree(s->scratch));
        s->scratch = NULL;
        s->scratch_bytes = 0;
        cudaError_t e = cudaMalloc(&s->scratch, want);
        if (e != cudaSuccess) {
            s->scratch = NULL;
            (void)cudaGetLastError(); /* else the next CUDA_LAUNCHED() reports this OOM */
            return RLHF_ERR(RLHF_ERR_NOMEM, "CUDA scratch of %zu bytes: %s", want,
                            cudaGetErrorString(e));
        }
        s->scratch_bytes = want;
    }
    *out = s->scratch;
    return RLHF_OK;
}

rlhf_status cu_smem(const rlhf_backend *be, const void *kernel, size_t bytes, const char *op) {
    cuda_state *s = cu_state(be);
    if (bytes > s->smem_optin)
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED,
                        "%s: needs %zu bytes of shared memory per block, the device allows %zu "
                        "(head size too large)", op, bytes, s->smem_optin);
    if (bytes > 48 * 1024)
        CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)bytes));
    return RLHF_OK;
}

/* Reports (and clears) an error a kernel recorded since the last check. Needs the stream synced. */
static rlhf_status check_kernel_errors(cuda_state *s) {
    if (s->err_host->code == 0) return RLHF_OK;
    cuda_err_rec r = *s->err_host;
    s->err_host->code = 0;
    const char *op = r.code == 1 ? "kv_store" : "attention_decode";
    return RLHF_ERR(RLHF_ERR_ARG, "%s (reported at the next sync): a row has slot %d position %d "
                    "outside the KV cache", op, r.slot, r.pos);
}

/* ---- memory ---- */

static rlhf_status cu_alloc(const rlhf_backend *be, void **p, size_t bytes) {
    *p = NULL;
    RLHF_TRY(cu_enter(be));
    size_t b = bytes ? bytes : 256;
    cudaError_t e = cudaMalloc(p, b);
    if (e != cudaSuccess) {
        *p = NULL;
        (void)cudaGetLastError();
        return RLHF_ERR(RLHF_ERR_NOMEM, "cudaMalloc of %zu bytes on %s: %s", bytes, be->name,
                        cudaGetErrorString(e));
    }
    CUDA_TRY(cudaMemsetAsync(*p, 0, b, cu_state(be)->stream));
    return RLHF_OK;
}

static void cu_free(const rlhf_backend *be, void *p) {
    if (!p) return;
    if (cu_enter(be) != RLHF_OK) return;
    /* cudaFree waits for the device; a kernel still using p finishes first */
    (void)cudaFree(p);
}

static rlhf_status cu_to_device(const rlhf_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    cuda_state *s = cu_state(be);
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s->stream));
    CUDA_TRY(cudaStreamSynchronize(s->stream));
    return RLHF_OK;
}

static rlhf_status cu_to_host(const rlhf_backend *be, void *dst, const void *src, size_t bytes) {
    RLHF_TRY(cu_enter(be));
    cuda_state *s = cu_state(be);
    if (bytes) CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s->stream));
    CUDA_TRY(cudaStreamSynchronize(s->stream));
    return check_kernel_errors(s);
}

static rlhf_status cu_zero(const rlhf_backend *be, void *p, size_t bytes) {
    if (!bytes) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    CUDA_TRY(cudaMemsetAsync(p, 0, bytes, cu_state(be)->stream));
    return RLHF_OK;
}

static rlhf_status cu_copy(const rlhf_backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu_state(be)->stream));
    return RLHF_OK;
}

static rlhf_status cu_sync(const rlhf_backend *be) {
    RLHF_TRY(cu_enter(be));
    cuda_state *s = cu_state(be);
    CUDA_TRY(cudaStreamSynchronize(s->stream));
    return check_kernel_errors(s);
}

/* ---- instances ---- */

static rlhf_backend g_be[CU_MAX_DEV][3];
static cuda_state g_st[CU_MAX_DEV][3];
static bool g_ready[CU_MAX_DEV][3];
static std::mutex g_lock;

static const char *prec_name(int p) { return p == 0 ? "fp32" : p == 1 ? "tf32" : "bf16"; }

static rlhf_status instance_init(int dev, int prec) {
    cuda_state *s = &g_st[dev][prec];
    memset(s, 0, sizeof *s);
    s->device = dev;
    s->prec = (cuda_precision)prec;
    const char *am = getenv("RLHF_CUDA_ATTN");
    if (am && *am && strcmp(am, "auto") != 0) {
        if (strcmp(am, "fused") == 0) s->attn_mode = CU_ATTN_FUSED;
        else if (strcmp(am, "gemm") == 0) s->attn_mode = CU_ATTN_GEMM;
        else
            return RLHF_ERR(RLHF_ERR_ARG, "RLHF_CUDA_ATTN='%s' (expected auto, fused or gemm)", am);
    }
    CUDA_TRY(cudaSetDevice(dev));
    cudaDeviceProp prop;
    CUDA_TRY(cudaGetDeviceProperties(&prop, dev));
    s->sm_count = prop.multiProcessorCount;
    s->smem_optin = prop.sharedMemPerBlockOptin;
    if (prop.major < 7)
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "cuda:%d (%s) has compute capability %d.%d; 7.0 or "
                        "newer is needed", dev, prop.name, prop.major, prop.minor);
    CUDA_TRY(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    CUBLAS_TRY(cublasCreate(&s->blas));
    CUBLAS_TRY(cublasSetStream(s->blas, s->stream));
    CUDA_TRY(cudaMalloc(&s->blas_ws, CU_BLAS_WS));
    CUBLAS_TRY(cublasSetWorkspace(s->blas, s->blas_ws, CU_BLAS_WS));
    CUBLAS_TRY(cublasSetPointerMode(s->blas, CUBLAS_POINTER_MODE_HOST));
    /* fp32 mode must not silently use TF32 (cublasGemmEx's compute type decides; this also keeps
     * any other routine pedantic) */
    CUBLAS_TRY(cublasSetMathMode(s->blas, prec == CUDA_PREC_FP32 ? CUBLAS_PEDANTIC_MATH
                                                                  : CUBLAS_DEFAULT_MATH));
    CUDA_TRY(cudaHostAlloc((void **)&s->err_host, sizeof(cuda_err_rec), cudaHostAllocMapped));
    memset(s->err_host, 0, sizeof(cuda_err_rec));
    CUDA_TRY(cudaHostGetDevicePointer((void **)&s->err_dev, s->err_host, 0));
    snprintf(s->name, sizeof s->name, "cuda:%d/%s", dev, prec_name(prec));

    rlhf_backend *b = &g_be[dev][prec];
    memset(b, 0, sizeof *b);
    b->name = s->name;
    b->device = dev;
    b->state = s;
    b->alloc = cu_alloc;
    b->free = cu_free;
    b->to_device = cu_to_device;
    b->to_host = cu_to_host;
    b->zero = cu_zero;
    b->copy = cu_copy;
    b->sync = cu_sync;
    b->embed_fwd = cuda_embed_fwd;
    b->embed_bwd = cuda_embed_bwd;
    b->matmul_fwd = cuda_matmul_fwd;
    b->matmul_bwd = cuda_matmul_bwd;
    b->rmsnorm_fwd = cuda_rmsnorm_fwd;
    b->rmsnorm_bwd = cuda_rmsnorm_bwd;
    b->rope_fwd = cuda_rope_fwd;
    b->rope_bwd = cuda_rope_bwd;
    b->attention_fwd = cuda_attention_fwd;
    b->attention_bwd = cuda_attention_bwd;
    b->kv_store = cuda_kv_store;
    b->attention_decode = cuda_attention_decode;
    b->swiglu_fwd = cuda_swiglu_fwd;
    b->swiglu_bwd = cuda_swiglu_bwd;
    b->add = cuda_add;
    b->scale = cuda_scale;
    b->logprob_fwd = cuda_logprob_fwd;
    b->logprob_bwd = cuda_logprob_bwd;
    b->sumsq = cuda_sumsq;
    b->adamw = cuda_adamw;
    b->sample = cuda_sample;
    return RLHF_OK;
}

/* Partial initialization is undone so that a later call can retry. */
static void instance_undo(int dev, int prec) {
    cuda_state *s = &g_st[dev][prec];
    if (s->blas) cublasDestroy(s->blas);
    if (s->blas_ws) cudaFree(s->blas_ws);
    if (s->stream) cudaStreamDestroy(s->stream);
    if (s->err_host) cudaFreeHost(s->err_host);
    memset(s, 0, sizeof *s);
}

extern "C" rlhf_status rlhf_backend_cuda(int device, int precision, const rlhf_backend **out) {
    *out = NULL;
    if (precision < 0) {
        const char *e = getenv("RLHF_CUDA_PRECISION");
        precision = CUDA_PREC_BF16;
        if (e && *e) {
            if (strcmp(e, "fp32") == 0) precision = CUDA_PREC_FP32;
            else if (strcmp(e, "tf32") == 0) precision = CUDA_PREC_TF32;
            else if (strcmp(e, "bf16") == 0) precision = CUDA_PREC_BF16;
            else
                return RLHF_ERR(RLHF_ERR_ARG, "RLHF_CUDA_PRECISION='%s' (expected fp32, tf32 or "
                                "bf16)", e);
        }
    }
    if (precision > 2) return RLHF_ERR(RLHF_ERR_ARG, "cuda: precision %d unknown", precision);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        (void)cudaGetLastError();
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "no CUDA device: %s",
                        e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0");
    }
    if (device >= count || device >= CU_MAX_DEV)
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "cuda:%d: only %d CUDA device(s)", device, count);
    std::lock_guard<std::mutex> guard(g_lock);
    if (!g_ready[device][precision]) {
        rlhf_status st = instance_init(device, precision);
        if (st != RLHF_OK) {
            instance_undo(device, precision);
            return st;
        }
        g_ready[device][precision] = true;
    }
    *out = &g_be[device][precision];
    return RLHF_OK;
}

/* ---- extras for benchmarks ---- */

extern "C" rlhf_status rlhf_cuda_device_name(const rlhf_backend *be, char *buf, size_t cap) {
    cudaDeviceProp prop;
    CUDA_TRY(cudaGetDeviceProperties(&prop, be->device));
    snprintf(buf, cap, "%s (%d SMs, %.1f GiB, compute %d.%d)", prop.name,
             prop.multiProcessorCount, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
             prop.major, prop.minor);
    return RLHF_OK;
}

__global__ void fill_bf16(__nv_bfloat16 *p, int64_t n, uint32_t seed) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        p[i] = __float2bfloat16((float)(h & 0xffff) / 65536.0f - 0.5f);
    }
}

/* TFLOP/s of a bf16 GEMM C (M,N) fp32 = A (M,K) bf16 @ B^T, fp32 accumulation (the tensor-core
 * rate the model's matmuls can reach), timed with CUDA events over at least min_time seconds. */
extern "C" rlhf_status rlhf_cuda_gemm_rate(const rlhf_backend *be, int64_t M, int64_t N, int64_t K,
                                           double min_time, double *tflops) {
    *tflops = -1;
    RLHF_TRY(cu_enter(be));
    cuda_state *s = cu_state(be);
    __nv_bfloat16 *A = NULL, *B = NULL;
    float *C = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    rlhf_status st = RLHF_OK;
    const float one = 1.0f, zero = 0.0f;
    int reps = 0;
    float ms = 0;
#define GR_TRY(call)                                                                               \
    do {                                                                                           \
        cudaError_t _e = (call);                                                                   \
        if (_e != cudaSuccess) {                                                                   \
            st = RLHF_ERR(RLHF_ERR_CUDA, "%s: %s", #call, cudaGetErrorString(_e));                 \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)
    GR_TRY(cudaMalloc(&A, (size_t)(M * K) * 2));
    GR_TRY(cudaMalloc(&B, (size_t)(N * K) * 2));
    GR_TRY(cudaMalloc(&C, (size_t)(M * N) * 4));
    fill_bf16<<<1024, 256, 0, s->stream>>>(A, M * K, 1);
    fill_bf16<<<1024, 256, 0, s->stream>>>(B, N * K, 2);
    GR_TRY(cudaGetLastError());
    GR_TRY(cudaEventCreate(&e0));
    GR_TRY(cudaEventCreate(&e1));
    /* an fp32 instance runs in pedantic math mode, which may keep cuBLAS off the tensor cores;
     * the rate asked for is the tensor-core one: default math for the measurement, then back */
    if (cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) {
        st = RLHF_ERR(RLHF_ERR_CUDA, "cublasSetMathMode failed");
        goto done;
    }
    for (int warm = 0; warm < 2; warm++) {
        cublasStatus_t bs = cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K,
                                         &one, B, CUDA_R_16BF, (int)K, A, CUDA_R_16BF, (int)K,
                                         &zero, C, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F,
                                         CUBLAS_GEMM_DEFAULT);
        if (bs != CUBLAS_STATUS_SUCCESS) {
            st = RLHF_ERR(RLHF_ERR_CUDA, "bf16 GemmEx: %s", cublasGetStatusString(bs));
            goto done;
        }
    }
    GR_TRY(cudaStreamSynchronize(s->stream));
    for (int batch = 3;; batch *= 2) { /* double the batch until it lasts min_time */
        GR_TRY(cudaEventRecord(e0, s->stream));
        for (int r = 0; r < batch; r++)
            cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, &one, B,
                         CUDA_R_16BF, (int)K, A, CUDA_R_16BF, (int)K, &zero, C, CUDA_R_32F, (int)N,
                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        GR_TRY(cudaEventRecord(e1, s->stream));
        GR_TRY(cudaEventSynchronize(e1));
        GR_TRY(cudaEventElapsedTime(&ms, e0, e1));
        reps = batch;
        if (ms >= min_time * 1e3 || batch >= 4096) break;
    }
    *tflops = 2.0 * (double)M * (double)N * (double)K * reps / (ms * 1e-3) / 1e12;
done:
#undef GR_TRY
    if (st != RLHF_OK) (void)cudaGetLastError(); /* a failed cudaMalloc must not surface later */
    (void)cublasSetMathMode(s->blas, s->prec == CUDA_PREC_FP32 ? CUBLAS_PEDANTIC_MATH
                                                               : CUBLAS_DEFAULT_MATH);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    return st;
}
