/* test.h: a minimal test harness shared by the test binaries.
 * CHECK records a failure with file:line and continues; TEST_MAIN_END returns non-zero if any
 * check failed. A test that cannot run (missing GPU or shared file) calls test_skip(), exit 77. */
#ifndef RLHF_TEST_H
#define RLHF_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures = 0;
static int test_checks = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Checks a library call returned RLHF_OK, printing rlhf_last_error() otherwise. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        rlhf_status _st = (expr);                                                                  \
        CHECKF(_st == RLHF_OK, "%s -> %s (%s)", #expr, rlhf_status_name(_st), rlhf_last_error());  \
    } while (0)

static inline void test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    exit(77);
}

/* Path of a file under ../shared (env RLHF_SHARED overrides); skips the test when missing. */
static inline const char *test_shared(const char *rel, char *buf, size_t cap) {
    const char *root = getenv("RLHF_SHARED");
    snprintf(buf, cap, "%s/%s", root ? root : "../shared", rel);
    FILE *f = fopen(buf, "rb");
    if (!f) {
        char why[1200];
        snprintf(why, sizeof why, "shared file %s not found (set RLHF_SHARED)", buf);
        test_skip(why);
    }
    fclose(f);
    return buf;
}

/* Path of a file in the source tree (env RLHF_SRC). */
static inline const char *test_src(const char *rel, char *buf, size_t cap) {
    const char *root = getenv("RLHF_SRC");
    snprintf(buf, cap, "%s/%s", root ? root : ".", rel);
    return buf;
}

/* max |a-b| / max(|b|, floor) over n values; *worst gets the index. */
/* Writes n bytes to path; exits 1 (a test harness failure) when it cannot. */
static inline void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* The whole file, malloc'ed and NUL-terminated (free it); *n its size. NULL when unreadable. */
static inline unsigned char *slurp(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
    if (!p || fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(p);
        return NULL;
    }
    fclose(f);
    p[sz] = 0;
    *n = (size_t)sz;
    return p;
}

static inline double test_max_rel_err(const double *a, const double *b, size_t n, double floor_,
                                      size_t *worst) {
    double m = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / fmax(fabs(b[i]), floor_);
        if (d > m || isnan(d)) { m = isnan(d) ? INFINITY : d; w = i; }
    }
    if (worst) *worst = w;
    return m;
}

#define TEST_MAIN_END()                                                                            \
    do {                                                                                           \
        printf("%s: %d checks, %d failed\n", __FILE__, test_checks, test_failures);                \
        return test_failures ? 1 : 0;                                                              \
    } while (0)

#endif
