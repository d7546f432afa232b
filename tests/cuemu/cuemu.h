/* cuemu.h: a CPU emulation of the parts of CUDA and cuBLAS that the .cu files of rlhf/cuda/ use,
 * so that the CUDA backend's own kernels run (slowly) on a machine without a GPU and test_cuda_ops can check
 * them against the CPU backend. Test infrastructure only: it says nothing about speed, and host
 * libm differs from the device's in the last ulps.
 *
 * How: tests/cuemu/translate.cmake rewrites each .cu file (`k<<<g, b, smem, stream>>>(args)` ->
 * `cuemu::launch(k, g, b, smem, stream)(args)`, `extern __shared__ T x[];` -> a pointer to the
 * block's dynamic shared memory), and g++ compiles it as C++ with this directory first on the
 * include path (cuda_runtime.h, cublas_v2.h and cuda_bf16.h here all include this header).
 * A launch runs its blocks one after another; the threads of a block are coroutines (ucontext)
 * that run until a barrier (__syncthreads, __syncwarp, a shuffle) or their end, so `__shared__`
 * (expanded to `static`) is shared by the threads of the running block. Checked, fatal with the
 * kernel's name: a barrier that can never be released (deadlock, or __syncthreads reached at
 * different source lines), a shuffle naming an exited lane, a bad launch configuration (reported by
 * cudaGetLastError as on a GPU). Between barriers the threads of a block run first to last in
 * even blocks and last to first in odd ones (CUEMU_ORDER=forward|reverse|alternate, default
 * alternate): a missing __syncthreads shows in one order or the other. Dynamic shared memory is
 * filled with NaN bytes before each block. Device allocations end at a guard page, so
 * most writes or reads past the end of a buffer fault at once.
 */
#ifndef CUEMU_H
#define CUEMU_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <utility>

#define __CUDACC__ 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __constant__ static
#define __grid_constant__
#define __launch_bounds__(...)

/* ---- launch geometry ---- */
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
    unsigned x, y, z;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
static const int warpSize = 32;

/* ---- runtime types ---- */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorNoDevice = 100,
} cudaError_t;
typedef struct cuemu_stream *cudaStream_t;
typedef struct cuemu_event *cudaEvent_t;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
#define cudaStreamNonBlocking 0x01
#define cudaHostAllocMapped 0x02
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    size_t sharedMemPerBlockOptin;
    int multiProcessorCount;
    int major, minor;
    int maxThreadsPerBlock;
};

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaMalloc(void **p, size_t bytes);
template <class T> static inline cudaError_t cudaMalloc(T **p, size_t bytes) {
    return cudaMalloc((void **)p, bytes);
}
cudaError_t cudaFree(void *p);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
cudaError_t cudaHostGetDevicePointer(void **d, void *h, unsigned flags);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s = 0);
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s = 0);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);
cudaError_t cudaFuncSetAttribute(const void *fn, cudaFuncAttribute attr, int value);
template <class F> static inline cudaError_t cudaFuncSetAttribute(F *fn, cudaFuncAttribute a, int v) {
    return cudaFuncSetAttribute((const void *)fn, a, v);
}

/* ---- bf16 ---- */
struct __nv_bfloat16 {
    uint16_t x;
};
static inline __nv_bfloat16 __float2bfloat16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) r.x = (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    else r.x = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);        /* nearest even */
    return r;
}
static inline float __bfloat162float(__nv_bfloat16 b) {
    uint32_t u = (uint32_t)b.x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- cuBLAS ---- */
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7,
               CUBLAS_STATUS_NOT_SUPPORTED = 15 } cublasStatus_t;
typedef struct cuemu_blas *cublasHandle_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 } cublasPointerMode_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_PEDANTIC_MATH = 2 } cublasMath_t;
typedef enum {
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
} cublasComputeType_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;

cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes);
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t m);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m);
const char *cublasGetStatusString(cublasStatus_t s);
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo);
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta,
                                          cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType at,
                                          int lda, long long sA, const void *B, cudaDataType bt,
                                          int ldb, long long sB, const void *beta, void *C,
                                          cudaDataType ct, int ldc, long long sC, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t algo);

/* ---- device functions ---- */
void cuemu_syncthreads(const char *file, int line);
/* a macro so that each barrier is known by its source line: the C++ optimizer may duplicate a
 * call (unlike nvcc, which treats barriers as convergent), so return addresses would not do */
#define __syncthreads() cuemu_syncthreads(__FILE__, __LINE__)
void __syncwarp(unsigned mask = 0xffffffffu);
static inline void __threadfence(void) {}
static inline void __threadfence_system(void) {}

namespace cuemu {
/* A warp barrier over mask that exchanges 8-byte values: returns the value lane src_lane gave. */
uint64_t shfl(unsigned mask, uint64_t mine, int src_lane);
int lane_id(void);
void *dyn_smem(void);
void fatal(const char *what);
} // namespace cuemu

template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask,
                                                   int width = 32) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    uint64_t in = 0;
    memcpy(&in, &v, sizeof v);
    const int lane = cuemu::lane_id();
    int src = lane ^ lane_mask;
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane; /* outside the segment */
    const uint64_t out = cuemu::shfl(mask, in, src);
    T r;
    memcpy(&r, &out, sizeof r);
    return r;
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    uint64_t in = 0;
    memcpy(&in, &v, sizeof v);
    const int lane = cuemu::lane_id();
    const uint64_t out = cuemu::shfl(mask, in, (lane & ~(width - 1)) + (src & (width - 1)));
    T r;
    memcpy(&r, &out, sizeof r);
    return r;
}

/* atomics: the threads of the emulator never run at the same time */
template <class T> static inline T atomicAdd(T *p, T v) {
    T o = *p;
    *p = o + v;
    return o;
}
template <class T> static inline T atomicMin(T *p, T v) {
    T o = *p;
    if (v < o) *p = v;
    return o;
}
template <class T> static inline T atomicMax(T *p, T v) {
    T o = *p;
    if (v > o) *p = v;
    return o;
}
template <class T> static inline T atomicExch(T *p, T v) {
    T o = *p;
    *p = v;
    return o;
}
template <class T> static inline T atomicCAS(T *p, T cmp, T v) {
    T o = *p;
    if (o == cmp) *p = v;
    return o;
}

/* arithmetic intrinsics (the translation unit is compiled with -ffp-contract=off) */
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
template <class To, class From> static inline To cuemu_bits(From f) {
    static_assert(sizeof(To) == sizeof(From), "bit cast between sizes");
    To t;
    memcpy(&t, &f, sizeof t);
    return t;
}
static inline unsigned __float_as_uint(float f) { return cuemu_bits<unsigned>(f); }
static inline float __uint_as_float(unsigned u) { return cuemu_bits<float>(u); }
static inline int __float_as_int(float f) { return cuemu_bits<int>(f); }
static inline float __int_as_float(int u) { return cuemu_bits<float>(u); }
static inline unsigned long long __double2ull_rn(double x) {
    return (unsigned long long)nearbyint(x);
}
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
template <class T> static inline T __ldg(const T *p) { return *p; }
/* CUDA's integer and float min/max overloads */
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline long min(long a, long b) { return a < b ? a : b; }
static inline long max(long a, long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }

/* ---- launches ---- */
namespace cuemu {
struct launch_cfg {
    const void *fn;
    dim3 grid, block;
    size_t smem;
};
/* Runs every block of the grid, each thread calling body(ctx); a bad configuration is recorded
 * for cudaGetLastError instead. */
void run(const launch_cfg &cfg, void (*body)(void *), void *ctx);

template <class... P> struct launcher {
    void (*fn)(P...);
    launch_cfg cfg;
    template <class... A> void operator()(A &&...a) {
        std::tuple<P...> args(std::forward<A>(a)...);
        struct call {
            void (*fn)(P...);
            std::tuple<P...> *args;
            static void go(void *c) {
                call *k = (call *)c;
                std::apply(k->fn, *k->args); /* each thread gets its own copies of the arguments */
            }
        } c{fn, &args};
        run(cfg, &call::go, &c);
    }
};
template <class... P>
static inline launcher<P...> launch(void (*fn)(P...), dim3 grid, dim3 block, size_t smem = 0,
                                    cudaStream_t stream = 0) {
    (void)stream; /* everything runs in order on the host */
    return launcher<P...>{fn, launch_cfg{(const void *)fn, grid, block, smem}};
}
} // namespace cuemu

#endif /* CUEMU_H */
