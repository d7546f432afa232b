/* logprob.c: gathered log-softmax over the vocabulary and its backward (CPU).
 *
 * Forward:  lse[i] = log sum_j exp(logits[i,j]);  logp[i] = logits[i,t_i] - lse[i] for
 *           t_i = targets[i] >= 0, else 0.        logits (N,V), targets (N), logp, lse (N).
 *           Per row: the max (16 lanes), then sum_j exp(x_j - max) in 16 float lanes combined in
 *           a fixed order, lse = max + logf(sum).
 * Saved for backward: lse (the caller keeps logits).
 * Backward: dlogits[i,j] = dlogp[i] * ([j == t_i] - exp(logits[i,j] - lse[i])); rows with t_i < 0
 *           or dlogp[i] == 0 become exactly zero. dlogits (N,V) overwritten and may alias logits
 *           (the row is processed in tiles through a stack buffer).
 * exp is cpu_expf (cpu_impl.h), a branch-free polynomial that vectorizes, accurate to ~2 ulp:
 * V is up to 32000 and N up to ~1024, so this is the hottest exp loop of a training step.
 * Rows are independent and parallel over N; results do not depend on the thread count.
 */
#include "cpu_impl.h"

static float row_lse(const float *x, int32_t V) {
    float mx[CPU_LANES];
    for (int l = 0; l < CPU_LANES; l++)
        mx[l] = -INFINITY;
    int64_t j = 0;
    for (; j + CPU_LANES <= V; j += CPU_LANES)
        for (int l = 0; l < CPU_LANES; l++)
            mx[l] = x[j + l] > mx[l] ? x[j + l] : mx[l];
    for (int l = 0; j < V; j++, l++)
        mx[l] = x[j] > mx[l] ? x[j] : mx[l];
    float m = mx[0];
    for (int l = 1; l < CPU_LANES; l++)
        m = mx[l] > m ? mx[l] : m;
    float acc[CPU_LANES] = {0};
    j = 0;
    for (; j + CPU_LANES <= V; j += CPU_LANES)
        for (int l = 0; l < CPU_LANES; l++)
            acc[l] += cpu_expf(x[j + l] - m);
    for (int l = 0; j < V; j++, l++)
        acc[l] += cpu_expf(x[j] - m);
    return m + logf(cpu_lanes_sum(acc));
}

rlhf_status cpu_logprob_fwd(const rlhf_backend *be, float *logp, float *lse, const float *logits,
                            const int32_t *targets, int64_t N, int32_t V) {
    (void)be;
#pragma omp parallel for schedule(static) if (N > 1 && N * V >= CPU_PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        const float *x = logits + i * V;
        float l = row_lse(x, V);
        lse[i] = l;
        int32_t t = targets[i];
        logp[i] = t >= 0 ? x[t] - l : 0.0f;
    }
    return RLHF_OK;
}

#define LOGPROB_TILE 256

rlhf_status cpu_logprob_bwd(const rlhf_backend *be, float *dlogits, const float *logits,
                            const float *lse, const float *dlogp, const int32_t *targets, int64_t N,
                            int32_t V) {
    (void)be;
#pragma omp parallel for schedule(static) if (N > 1 && N * V >= CPU_PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        const float *x = logits + i * V;
        float *dx = dlogits + i * V;
        int32_t t = targets[i];
        float d = dlogp[i];
        if (t < 0 || d == 0.0f) {
            memset(dx, 0, (size_t)V * sizeof(float));
            continue;
        }
        float l = lse[i], nd = -d;
        float p[LOGPROB_TILE];
        for (int64_t j0 = 0; j0 < V; j0 += LOGPROB_TILE) {
            int64_t nj = V - j0 < LOGPROB_TILE ? V - j0 : LOGPROB_TILE;
            for (int64_t j = 0; j < nj; j++)
                p[j] = cpu_expf(x[j0 + j] - l);
            for (int64_t j = 0; j < nj; j++)
                dx[j0 + j] = nd * p[j];
        }
        dx[t] += d;
    }
    return RLHF_OK;
}
