/* backend.c: the CPU backend table, backend lookup by name, and the thread count.
 *
 * "Device" memory on the CPU is host memory: alloc is a 64-byte aligned, zero-filled rlhf_alloc,
 * to_device/to_host/copy are memcpy, zero is memset and sync does nothing. The ops live in the
 * other files of this directory (see cpu_impl.h). rlhf_backend_get also resolves "cuda"/"cuda:N"
 * to the CUDA backend module (built by nvcc: RLHF_HAVE_CUDA; the loader, RLHF_CUDA_LOADER, is also
 * built for the CPU emulation of that module, tests/cuemu, which tests name in $RLHF_CUDA_LIB).
 */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"

#ifdef RLHF_CUDA_LOADER
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

/* The CUDA backend is the module librlhf_cuda.so (the .cu files of cuda/), loaded on first use: from
 * $RLHF_CUDA_LIB when set, else beside the running program, else by the loader's search path.
 * Its entry points (cuda/backend.cu): precision -1 = default ($RLHF_CUDA_PRECISION, else bf16),
 * 0 fp32, 1 tf32, 2 bf16. */
typedef rlhf_status (*cuda_get_fn)(int device, int precision, const rlhf_backend **out);
typedef rlhf_status (*cuda_name_fn)(const rlhf_backend *be, char *buf, size_t cap);
typedef rlhf_status (*cuda_rate_fn)(const rlhf_backend *be, int64_t M, int64_t N, int64_t K,
                                    double min_time, double *tflops);
static struct {
    pthread_once_t once;
    cuda_get_fn get;
    cuda_name_fn name;
    cuda_rate_fn rate;
    char why[512]; /* why loading failed */
} cuda_mod = {PTHREAD_ONCE_INIT, NULL, NULL, NULL, ""};

static void *cuda_sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p && !cuda_mod.why[0]) snprintf(cuda_mod.why, sizeof cuda_mod.why, "%s", dlerror());
    return p;
}

static void cuda_load(void) {
    char path[4096];
    const char *env = getenv("RLHF_CUDA_LIB");
    void *h = NULL;
    if (env && env[0]) {
        h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    } else {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
        if (n > 0) {
            path[n] = 0;
            char *slash = strrchr(path, '/');
            if (slash) {
                strcpy(slash + 1, "librlhf_cuda.so");
                h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            }
        }
        if (!h) h = dlopen("librlhf_cuda.so", RTLD_NOW | RTLD_LOCAL);
    }
    if (!h) {
        const char *e = dlerror();
        snprintf(cuda_mod.why, sizeof cuda_mod.why, "%s", e ? e : "dlopen failed");
        return;
    }
    void *g = cuda_sym(h, "rlhf_backend_cuda"), *nm = cuda_sym(h, "rlhf_cuda_device_name"),
         *rt = cuda_sym(h, "rlhf_cuda_gemm_rate");
    if (!g || !nm || !rt) return;
    memcpy(&cuda_mod.get, &g, sizeof g); /* object to function pointer, as POSIX allows */
    memcpy(&cuda_mod.name, &nm, sizeof nm);
    memcpy(&cuda_mod.rate, &rt, sizeof rt);
}

/* RLHF_OK when the module is loaded (once per process); else RLHF_ERR_UNSUPPORTED with why. */
static rlhf_status cuda_module(void) {
    pthread_once(&cuda_mod.once, cuda_load);
    if (cuda_mod.get) return RLHF_OK;
    return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "CUDA backend module not loaded: %s", cuda_mod.why);
}
#endif

/* ---- memory ---- */

static rlhf_status cpu_alloc(const rlhf_backend *be, void **p, size_t bytes) {
    (void)be;
    RLHF_TRY(rlhf_alloc(p, bytes));
    memset(*p, 0, bytes);
    return RLHF_OK;
}

static void cpu_free(const rlhf_backend *be, void *p) {
    (void)be;
    rlhf_free(p);
}

static rlhf_status cpu_memcpy(const rlhf_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst, src, bytes);
    return RLHF_OK;
}

static rlhf_status cpu_zero(const rlhf_backend *be, void *p, size_t bytes) {
    (void)be;
    if (bytes) memset(p, 0, bytes);
    return RLHF_OK;
}

static rlhf_status cpu_sync(const rlhf_backend *be) {
    (void)be;
    return RLHF_OK;
}

rlhf_status cpu_scratch(float **out, int *nthreads, int64_t per) {
    int nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
    *nthreads = nt;
    return rlhf_alloc((void **)out, (size_t)nt * (size_t)(per > 0 ? per : 1) * sizeof(float));
}

/* ---- the table ---- */

static const rlhf_backend cpu_backend = {
    .name = "cpu",
    .device = -1,
    .state = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_memcpy,
    .to_host = cpu_memcpy,
    .zero = cpu_zero,
    .copy = cpu_memcpy,
    .sync = cpu_sync,
    .embed_fwd = cpu_embed_fwd,
    .embed_bwd = cpu_embed_bwd,
    .matmul_fwd = cpu_matmul_fwd,
    .matmul_bwd = cpu_matmul_bwd,
    .rmsnorm_fwd = cpu_rmsnorm_fwd,
    .rmsnorm_bwd = cpu_rmsnorm_bwd,
    .rope_fwd = cpu_rope_fwd,
    .rope_bwd = cpu_rope_bwd,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .kv_store = cpu_kv_store,
    .attention_decode = cpu_attention_decode,
    .swiglu_fwd = cpu_swiglu_fwd,
    .swiglu_bwd = cpu_swiglu_bwd,
    .add = cpu_add,
    .scale = cpu_scale,
    .logprob_fwd = cpu_logprob_fwd,
    .logprob_bwd = cpu_logprob_bwd,
    .sumsq = cpu_sumsq,
    .adamw = cpu_adamw,
    .sample = cpu_sample,
};

const rlhf_backend *rlhf_backend_cpu(void) { return &cpu_backend; }

/* ---- lookup ---- */

/* "cuda[:N][/fp32|/tf32|/bf16]": *dev = N (0 when absent), *prec = 0/1/2 (-1 when absent).
 * Returns false when name is not of that form. */
static bool parse_cuda_name(const char *name, int *dev, int *prec) {
    *dev = 0;
    *prec = -1;
    if (strncmp(name, "cuda", 4) != 0) return false;
    const char *s = name + 4;
    if (*s == ':') {
        s++;
        if (*s < '0' || *s > '9') return false;
        long d = 0;
        for (; *s >= '0' && *s <= '9'; s++) {
            d = d * 10 + (*s - '0');
            if (d > 1000000) return false;
        }
        *dev = (int)d;
    }
    if (*s == '\0') return true;
    if (*s != '/') return false;
    s++;
    static const char *const precs[] = {"fp32", "tf32", "bf16"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, precs[i]) == 0) {
            *prec = i;
            return true;
        }
    return false;
}

rlhf_status rlhf_backend_get(const char *name, const rlhf_backend **out) {
    if (!out) return RLHF_ERR(RLHF_ERR_ARG, "rlhf_backend_get: out is NULL");
    *out = NULL;
    if (!name) return RLHF_ERR(RLHF_ERR_ARG, "rlhf_backend_get: name is NULL");
    if (strcmp(name, "cpu") == 0 || strcmp(name, "cpu/fp32") == 0) {
        *out = &cpu_backend;
        return RLHF_OK;
    }
    int dev, prec;
    if (parse_cuda_name(name, &dev, &prec)) {
#ifdef RLHF_CUDA_LOADER
#ifndef RLHF_HAVE_CUDA
        const char *lib = getenv("RLHF_CUDA_LIB"); /* only an explicit module (the emulator) */
        if (!lib || !lib[0])
            return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "CUDA backend not built (asked for '%s')", name);
#endif
        RLHF_TRY(cuda_module());
        return cuda_mod.get(dev, prec, out);
#else
        (void)dev;
        (void)prec;
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "CUDA backend not built (asked for '%s')", name);
#endif
    }
    return RLHF_ERR(RLHF_ERR_UNSUPPORTED,
                    "unknown backend '%s' (expected cpu, cuda or cuda:N, optionally followed by "
                    "/fp32, /tf32 or /bf16 for CUDA)", name);
}

rlhf_status rlhf_backend_device_name(const rlhf_backend *be, char *buf, size_t cap) {
    if (!be || !buf || cap == 0) return RLHF_ERR(RLHF_ERR_ARG, "rlhf_backend_device_name: NULL");
#ifdef RLHF_CUDA_LOADER
    if (be->device >= 0) {
        RLHF_TRY(cuda_module());
        return cuda_mod.name(be, buf, cap);
    }
#endif
    snprintf(buf, cap, "CPU (%d threads)", rlhf_get_threads());
    return RLHF_OK;
}

rlhf_status rlhf_backend_gemm_rate(const rlhf_backend *be, int64_t M, int64_t N, int64_t K,
                                   double min_time, double *tflops) {
    if (!be || !tflops || M <= 0 || N <= 0 || K <= 0 || M > INT32_MAX || N > INT32_MAX ||
        K > INT32_MAX)
        return RLHF_ERR(RLHF_ERR_ARG, "rlhf_backend_gemm_rate: bad arguments");
    *tflops = -1;
#ifdef RLHF_CUDA_LOADER
    if (be->device >= 0) {
        RLHF_TRY(cuda_module());
        return cuda_mod.rate(be, M, N, K, min_time, tflops);
    }
#endif
    (void)min_time;
    return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "bf16 GEMM rate: backend %s is not a GPU",
                    rlhf_backend_name(be));
}

const char *rlhf_backend_name(const rlhf_backend *be) {
    return be && be->name ? be->name : "(none)";
}

rlhf_status be_missing(const rlhf_backend *be, const char *op, const char *file, int line) {
    return rlhf_error_set(RLHF_ERR_UNSUPPORTED, file, line,
                          "op %s is not implemented on backend %s", op, rlhf_backend_name(be));
}

/* ---- threads ---- */

void rlhf_set_threads(int n) {
    if (n <= 0) return; /* leave the OpenMP default (OMP_NUM_THREADS or the core count) */
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int rlhf_get_threads(void) { return omp_get_max_threads(); }
