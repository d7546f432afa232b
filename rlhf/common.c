/* common.c: status codes and the thread-local last error, aligned allocation, mkdir -p, logging
 * level, the PCG32 random number generator. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rlhf.h"

static _Thread_local char last_error[1024];
static int log_level = 1;

const char *rlhf_status_name(rlhf_status s) {
    switch (s) {
    case RLHF_OK: return "ok";
    case RLHF_ERR_ARG: return "invalid argument";
    case RLHF_ERR_IO: return "i/o error";
    case RLHF_ERR_FORMAT: return "format error";
    case RLHF_ERR_NOMEM: return "out of memory";
    case RLHF_ERR_UNSUPPORTED: return "unsupported";
    case RLHF_ERR_CUDA: return "cuda error";
    case RLHF_ERR_NCCL: return "nccl error";
    case RLHF_ERR_SQLITE: return "sqlite error";
    }
    return "unknown status";
}

const char *rlhf_last_error(void) { return last_error; }

void rlhf_error_clear(void) { last_error[0] = '\0'; }

rlhf_status rlhf_error_set(rlhf_status s, const char *file, int line, const char *fmt, ...) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char msg[sizeof last_error - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(last_error, sizeof last_error, "%s (%s:%d)", msg, base, line);
    if (log_level >= 2) fprintf(stderr, "rlhf: %s: %s\n", rlhf_status_name(s), last_error);
    return s;
}

_Noreturn void rlhf_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "rlhf: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

void rlhf_log_set_level(int level) { log_level = level; }
int rlhf_log_level(void) { return log_level; }

rlhf_status rlhf_alloc(void **out, size_t bytes) {
    *out = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate %zu bytes", bytes);
    *out = p;
    return RLHF_OK;
}

void rlhf_free(void *p) { free(p); }

/* ---- PCG32 (XSH RR variant) ---- */

void rlhf_rng_seed(rlhf_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1u) | 1u;
    (void)rlhf_rng_u32(r);
    r->state += seed;
    (void)rlhf_rng_u32(r);
}

uint32_t rlhf_rng_u32(rlhf_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float rlhf_rng_uniform(rlhf_rng *r) { return (float)(rlhf_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float rlhf_rng_normal(rlhf_rng *r) {
    /* Box-Muller on (0,1] x [0,1); one value per call keeps the stream position simple. */
    float u1 = ((float)(rlhf_rng_u32(r) >> 8) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = rlhf_rng_uniform(r);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

rlhf_status rlhf_mkdirs(const char *dir) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return RLHF_ERR(RLHF_ERR_ARG, "path too long: %s", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create directory: %s", buf,
                                strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return RLHF_ERR(RLHF_ERR_IO, "%s: not a directory", dir);
    return RLHF_OK;
}
