/* cuemu.cpp: the CPU emulation of CUDA and cuBLAS declared in cuemu.h (see there). */
#include "cuemu.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <string>
#include <mutex>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace {

/* ---- context switching: x86-64 assembly (no system call per switch), ucontext elsewhere ---- */
#if defined(__x86_64__)
extern "C" void cuemu_switch(void **save_sp, void *new_sp);
asm(R"(
    .text
    .globl cuemu_switch
    .hidden cuemu_switch
    .type cuemu_switch, @function
cuemu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cuemu_switch, .-cuemu_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
struct context {
    void *sp;
};
#else
struct context {
    ucontext_t uc;
};
#endif

enum thr_state { READY, AT_BAR, AT_WARP, DONE };

struct thr {
    context ctx;
    thr_state state;
    unsigned wmask;   /* mask of the warp barrier it waits at */
    const char *file; /* source of the __syncthreads it waits at */
    int line;
    bool shuffling;   /* at a shuffle (else at __syncwarp) */
    int src;          /* the shuffle's source lane */
    uint64_t in, out; /* the shuffle's value, and the source lane's */
    uint3 tid;
};

const size_t STACK = 128 * 1024;

struct block_run {
    std::vector<thr> t;
    char *stacks = nullptr; /* 1024 stacks, each with a guard page below */
    int n = 0, cur = -1;
    context sched;
    void (*body)(void *) = nullptr;
    void *ctx = nullptr;
    const void *fn = nullptr;
    std::vector<unsigned char> dyn;
    bool reverse = false; /* this block runs its threads last to first */
    int order = 2;        /* CUEMU_ORDER: 0 forward, 1 reverse, 2 alternate (by block) */
} B;

std::mutex g_run_lock; /* one launch at a time */
cudaError_t g_last = cudaSuccess;
std::map<const void *, int> g_smem_attr;
std::map<uintptr_t, std::pair<void *, size_t>> g_allocs; /* user pointer -> mapping */
std::mutex g_alloc_lock;

const char *kernel_name(const void *fn) {
    Dl_info info;
    if (fn && dladdr(fn, &info) && info.dli_sname) return info.dli_sname;
    return "(kernel)";
}

[[noreturn]] void die(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "cuemu: %s: ", kernel_name(B.fn));
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (block %u,%u,%u of %u,%u,%u; %d threads)\n", blockIdx.x, blockIdx.y,
            blockIdx.z, gridDim.x, gridDim.y, gridDim.z, B.n);
    fflush(stderr);
    abort();
}

void thread_main() {
    B.body(B.ctx);
    B.t[B.cur].state = DONE;
#if defined(__x86_64__)
    void *dummy;
    cuemu_switch(&dummy, B.sched.sp);
#endif
    /* ucontext: returning follows uc_link to the scheduler */
}

#if defined(__x86_64__)
extern "C" void cuemu_trampoline(void) {
    thread_main();
    abort(); /* not reached */
}
#endif

void prepare(int i) {
    char *top = B.stacks + (size_t)(i + 1) * STACK;
#if defined(__SANITIZE_ADDRESS__)
    /* frames of the previous block's threads were left without returning: clear their poison */
    ASAN_UNPOISON_MEMORY_REGION(top - STACK + 4096, STACK - 4096);
#endif
#if defined(__x86_64__)
    uintptr_t sp = ((uintptr_t)top - 64) & ~(uintptr_t)15;
    uint64_t *s = (uint64_t *)sp;
    *--s = 0;                          /* padding: the trampoline starts as if called */
    *--s = (uint64_t)&cuemu_trampoline; /* popped by ret; rsp then == 8 mod 16 */
    for (int r = 0; r < 6; r++) *--s = 0; /* rbp rbx r12-r15 */
    --s;
    uint32_t csr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(csr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    memcpy((char *)s, &csr, 4);
    memcpy((char *)s + 4, &cw, 2);
    B.t[i].ctx.sp = s;
#else
    ucontext_t *uc = &B.t[i].ctx.uc;
    getcontext(uc);
    uc->uc_stack.ss_sp = top - STACK + 4096;
    uc->uc_stack.ss_size = STACK - 4096;
    uc->uc_link = &B.sched.uc;
    makecontext(uc, (void (*)())thread_main, 0);
#endif
}

void resume(int i) {
    B.cur = i;
    threadIdx = B.t[i].tid;
#if defined(__x86_64__)
    cuemu_switch(&B.sched.sp, B.t[i].ctx.sp);
#else
    swapcontext(&B.sched.uc, &B.t[i].ctx.uc);
#endif
}

/* The running thread waits in state s; returns when the scheduler resumes it. */
void wait_as(thr_state s) {
    thr &me = B.t[B.cur];
    me.state = s;
#if defined(__x86_64__)
    cuemu_switch(&me.ctx.sp, B.sched.sp);
#else
    swapcontext(&me.ctx.uc, &B.sched.uc);
#endif
}

/* Releases the satisfiable warp barriers (a group of lanes that all wait with the same mask,
 * exchanging the values of a shuffle), else the block barrier; false when none can be released. */
bool release() {
    bool any = false;
    for (int w0 = 0; w0 < B.n; w0 += 32) {
        const int w1 = w0 + 32 < B.n ? w0 + 32 : B.n;
        for (int f = w0; f < w1; f++) {
            if (B.t[f].state != AT_WARP) continue;
            const unsigned mask = B.t[f].wmask;
            bool ok = true;
            for (int i = w0; i < w1 && ok; i++) {
                if (!((mask >> (i - w0)) & 1u)) continue;
                if (B.t[i].state == DONE)
                    die("a warp barrier or shuffle names a lane that has exited%s%s", "", "");
                ok = B.t[i].state == AT_WARP && B.t[i].wmask == mask;
                if (ok && B.t[i].shuffling != B.t[f].shuffling)
                    die("lanes meet at a warp barrier, some in a shuffle, some in __syncwarp%s%s",
                        "", "");
            }
            if (!ok) continue;
            for (int i = w0; i < w1; i++) {
                if (!((mask >> (i - w0)) & 1u)) continue;
                thr &me = B.t[i];
                if (me.shuffling) {
                    const int s = w0 + me.src;
                    if (s >= B.n || !((mask >> me.src) & 1u))
                        die("a shuffle reads lane %s, which is not in its mask%s",
                            std::to_string(me.src).c_str(), "");
                    me.out = B.t[s].in;
                }
                me.state = READY;
            }
            any = true;
        }
    }
    if (any) return true;
    int at_bar = 0, done = 0;
    int first = -1;
    for (int i = 0; i < B.n; i++) {
        if (B.t[i].state == AT_BAR) {
            if (at_bar++ == 0) first = i;
            else if (B.t[i].line != B.t[first].line || strcmp(B.t[i].file, B.t[first].file))
                die("threads wait at different __syncthreads calls (%s and %s)",
                    (std::string(B.t[first].file) + ":" + std::to_string(B.t[first].line)).c_str(),
                    (std::string(B.t[i].file) + ":" + std::to_string(B.t[i].line)).c_str());
        } else if (B.t[i].state == DONE) {
            done++;
        }
    }
    if (at_bar == 0 || at_bar + done != B.n) return false;
    for (int i = 0; i < B.n; i++)
        if (B.t[i].state == AT_BAR) B.t[i].state = READY;
    return true;
}

void run_block() {
    for (int i = 0; i < B.n; i++) {
        B.t[i].state = READY;
        prepare(i);
    }
    if (!B.dyn.empty()) memset(B.dyn.data(), 0xff, B.dyn.size());
    for (;;) {
        if (B.reverse) {
            for (int i = B.n - 1; i >= 0; i--)
                if (B.t[i].state == READY) resume(i);
        } else {
            for (int i = 0; i < B.n; i++)
                if (B.t[i].state == READY) resume(i);
        }
        bool all_done = true;
        for (int i = 0; i < B.n && all_done; i++) all_done = B.t[i].state == DONE;
        if (all_done) return;
        if (!release()) {
            int bar = 0, warp = 0, done = 0;
            for (int i = 0; i < B.n; i++)
                bar += B.t[i].state == AT_BAR, warp += B.t[i].state == AT_WARP,
                    done += B.t[i].state == DONE;
            char a[64], b[64];
            snprintf(a, sizeof a, "%d at __syncthreads, %d at a warp barrier", bar, warp);
            snprintf(b, sizeof b, "%d exited", done);
            die("deadlock: %s, %s", a, b);
        }
    }
}

double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

cudaError_t fail(cudaError_t e) {
    g_last = e;
    return e;
}

} // namespace

/* ---- device side ---- */

void cuemu_syncthreads(const char *file, int line) {
    B.t[B.cur].file = file;
    B.t[B.cur].line = line;
    wait_as(AT_BAR);
}

void __syncwarp(unsigned mask) {
    if (!((mask >> (B.cur & 31)) & 1u)) die("__syncwarp mask leaves out the calling lane%s%s", "", "");
    B.t[B.cur].wmask = mask;
    B.t[B.cur].shuffling = false;
    wait_as(AT_WARP);
}

namespace cuemu {
int lane_id(void) { return B.cur & 31; }
void *dyn_smem(void) { return B.dyn.empty() ? nullptr : B.dyn.data(); }
void fatal(const char *what) { die("%s%s", what, ""); }

uint64_t shfl(unsigned mask, uint64_t mine, int src_lane) {
    thr &me = B.t[B.cur];
    if (!((mask >> (B.cur & 31)) & 1u)) die("a shuffle mask leaves out the calling lane%s%s", "", "");
    me.wmask = mask;
    me.shuffling = true;
    me.src = src_lane;
    me.in = mine;
    wait_as(AT_WARP);
    return me.out;
}

void run(const launch_cfg &cfg, void (*body)(void *), void *ctx) {
    const uint64_t nthr = (uint64_t)cfg.block.x * cfg.block.y * cfg.block.z;
    if (nthr == 0 || nthr > 1024 || cfg.block.z > 64 || cfg.grid.x == 0 || cfg.grid.y == 0 ||
        cfg.grid.z == 0 || cfg.grid.x > 0x7fffffffu || cfg.grid.y > 65535 || cfg.grid.z > 65535) {
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    if (cfg.smem > 48 * 1024) {
        auto it = g_smem_attr.find(cfg.fn);
        if (it == g_smem_attr.end() || (size_t)it->second < cfg.smem) {
            fail(cudaErrorInvalidValue);
            return;
        }
    }
    std::lock_guard<std::mutex> guard(g_run_lock);
    if (!B.stacks) {
        B.stacks = (char *)mmap(nullptr, 1024 * STACK, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (B.stacks == MAP_FAILED) {
            perror("cuemu: mmap of thread stacks");
            abort();
        }
        for (int i = 0; i < 1024; i++) mprotect(B.stacks + (size_t)i * STACK, 4096, PROT_NONE);
        B.t.resize(1024);
        const char *o = getenv("CUEMU_ORDER");
        if (o && strcmp(o, "forward") == 0) B.order = 0;
        else if (o && strcmp(o, "reverse") == 0) B.order = 1;
    }
    B.n = (int)nthr;
    B.body = body;
    B.ctx = ctx;
    B.fn = cfg.fn;
    B.dyn.assign(cfg.smem, 0);
    blockDim = cfg.block;
    gridDim = cfg.grid;
    int i = 0;
    for (unsigned z = 0; z < cfg.block.z; z++)
        for (unsigned y = 0; y < cfg.block.y; y++)
            for (unsigned x = 0; x < cfg.block.x; x++) B.t[i++].tid = uint3{x, y, z};
    for (unsigned bz = 0; bz < cfg.grid.z; bz++)
        for (unsigned by = 0; by < cfg.grid.y; by++)
            for (unsigned bx = 0; bx < cfg.grid.x; bx++) {
                blockIdx = uint3{bx, by, bz};
                B.reverse = B.order == 1 || (B.order == 2 && ((bx ^ by ^ bz) & 1u));
                run_block();
            }
    B.fn = nullptr;
}
} // namespace cuemu

/* ---- runtime ---- */

cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev) {
    if (dev != 0) return fail(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "cuemu (CUDA emulated on the CPU)");
    p->totalGlobalMem = (size_t)80 << 30;
    p->sharedMemPerBlock = 48 * 1024;
    p->sharedMemPerBlockOptin = 227 * 1024;
    p->multiProcessorCount = 132;
    p->major = 9;
    p->minor = 0;
    p->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last;
    g_last = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    }
    return "unknown error";
}
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    }
    return "cudaErrorUnknown";
}

/* Each allocation ends at a PROT_NONE page (its size rounded up to 256 bytes, as cudaMalloc's
 * alignment), and starts filled with 0xff bytes (NaN floats) like uninitialized device memory. */
cudaError_t cudaMalloc(void **p, size_t bytes) {
    const size_t pg = 4096, r = (bytes + 255) & ~(size_t)255;
    const size_t len = ((r + pg - 1) & ~(pg - 1)) + pg;
    char *base = (char *)mmap(nullptr, len, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        *p = nullptr;
        return fail(cudaErrorMemoryAllocation);
    }
    mprotect(base + len - pg, pg, PROT_NONE);
    char *user = base + len - pg - r;
    memset(user, 0xff, r);
    std::lock_guard<std::mutex> guard(g_alloc_lock);
    g_allocs[(uintptr_t)user] = {base, len};
    *p = user;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> guard(g_alloc_lock);
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end()) return fail(cudaErrorInvalidValue);
    munmap(it->second.first, it->second.second);
    g_allocs.erase(it);
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags) {
    *p = calloc(1, bytes ? bytes : 1);
    return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaHostGetDevicePointer(void **d, void *h, unsigned flags) {
    *d = h;
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s) {
    if (bytes && (!dst || !src)) return fail(cudaErrorInvalidValue);
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s) {
    if (bytes && !p) return fail(cudaErrorInvalidValue);
    if (bytes) memset(p, v, bytes);
    return cudaSuccess;
}
struct cuemu_stream {
    int unused;
};
struct cuemu_event {
    double ms;
};
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    *s = new cuemu_stream();
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = new cuemu_event();
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    e->ms = now_ms();
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)(b->ms - a->ms);
    return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *fn, cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > 227 * 1024)
        return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> guard(g_run_lock);
    g_smem_attr[fn] = value;
    return cudaSuccess;
}

/* ---- cuBLAS ---- */

struct cuemu_blas {
    cublasMath_t math;
};
cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new cuemu_blas{CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetPointerMode(cublasHandle_t, cublasPointerMode_t m) {
    return m == CUBLAS_POINTER_MODE_HOST ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
    h->math = m;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

namespace {
/* an input element as the compute type sees it: tf32 keeps 10 mantissa bits, bf16 7 */
float round_to(float f, int drop_bits) {
    if (drop_bits == 0 || !isfinite(f)) return f;
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t half = (1u << (drop_bits - 1)) - 1u, lsb = (u >> drop_bits) & 1u;
    u = (u + half + lsb) & ~((1u << drop_bits) - 1u);
    memcpy(&f, &u, 4);
    return f;
}
float load(const void *p, cudaDataType t, size_t i) {
    if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return ((const float *)p)[i];
}
} // namespace

/* Column-major C (m,n) = alpha op(A) op(B) + beta C, accumulated in double; beta 0 ignores C. */
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B_, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo) {
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B_, bt, ldb, 0,
                                      beta, C, ct, ldc, 0, 1, compute, algo);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta,
                                          cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType at,
                                          int lda, long long sA, const void *B_, cudaDataType bt,
                                          int ldb, long long sB, const void *beta, void *C,
                                          cudaDataType ct, int ldc, long long sC, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    const int ar = ta == CUBLAS_OP_N ? m : k, br = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || ct != CUDA_R_32F || ldc < (m > 1 ? m : 1) ||
        lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    int drop = 0;
    if (compute == CUBLAS_COMPUTE_32F_FAST_TF32) drop = 13;
    else if (compute == CUBLAS_COMPUTE_32F_FAST_16BF) drop = 16;
    else if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const size_t esa = at == CUDA_R_16BF ? 2 : 4, esb = bt == CUDA_R_16BF ? 2 : 4;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    std::vector<float> a((size_t)m * k), b((size_t)n * k); /* op(A) rows, op(B) columns */
    for (int q = 0; q < batch; q++) {
        const char *Aq = (const char *)A + (size_t)q * sA * esa;
        const char *Bq = (const char *)B_ + (size_t)q * sB * esb;
        float *c = (float *)C + (size_t)q * sC;
        for (int i = 0; i < m; i++)
            for (int l = 0; l < k; l++)
                a[(size_t)i * k + l] = round_to(
                    load(Aq, at, ta == CUBLAS_OP_N ? i + (size_t)l * lda : l + (size_t)i * lda),
                    drop);
        for (int j = 0; j < n; j++)
            for (int l = 0; l < k; l++)
                b[(size_t)j * k + l] = round_to(
                    load(Bq, bt, tb == CUBLAS_OP_N ? l + (size_t)j * ldb : j + (size_t)l * ldb),
                    drop);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                const float *x = &a[(size_t)i * k], *y = &b[(size_t)j * k];
                double s = 0;
                for (int l = 0; l < k; l++) s += (double)x[l] * y[l];
                float *o = &c[i + (size_t)j * ldc];
                *o = be == 0.0f ? (float)(al * s) : (float)(al * s + (double)be * *o);
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}
