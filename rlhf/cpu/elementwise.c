/* elementwise.c: small vector ops (CPU): add, scale, and the squared norm used for gradient
 * clipping.
 *
 * add:   y += x          y, x (n)
 * scale: x *= s          x (n)
 * sumsq: *out (host) = sum_i x[i]^2 accumulated in double. x is cut into fixed chunks of
 *        SUMSQ_CHUNK elements; each chunk is summed in 8 double lanes, and the chunk sums are added
 *        in chunk order, so the result depends only on n and the data (not on the thread count).
 * None has a backward.
 */
#include "cpu_impl.h"

rlhf_status cpu_add(const rlhf_backend *be, float *y, const float *x, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
    return RLHF_OK;
}

rlhf_status cpu_scale(const rlhf_backend *be, float *x, float s, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        x[i] *= s;
    return RLHF_OK;
}

#define SUMSQ_CHUNK 65536 /* elements per chunk */
#define SUMSQ_ROUND 256   /* chunks summed in parallel per round (a stack array of partials) */

static double sumsq_chunk(const float *restrict x, int64_t n) {
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += (double)x[i + l] * (double)x[i + l];
    for (int l = 0; i < n; i++, l++)
        acc[l] += (double)x[i] * (double)x[i];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

rlhf_status cpu_sumsq(const rlhf_backend *be, double *out, const float *x, int64_t n) {
    (void)be;
    int64_t nchunk = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double total = 0.0;
    for (int64_t c0 = 0; c0 < nchunk; c0 += SUMSQ_ROUND) {
        int64_t nc = nchunk - c0 < SUMSQ_ROUND ? nchunk - c0 : SUMSQ_ROUND;
        double part[SUMSQ_ROUND];
#pragma omp parallel for schedule(static) if (nc > 1)
        for (int64_t c = 0; c < nc; c++) {
            int64_t lo = (c0 + c) * SUMSQ_CHUNK;
            int64_t len = n - lo < SUMSQ_CHUNK ? n - lo : SUMSQ_CHUNK;
            part[c] = sumsq_chunk(x + lo, len);
        }
        for (int64_t c = 0; c < nc; c++)
            total += part[c];
    }
    *out = total;
    return RLHF_OK;
}
