/* rs.c: rejection sampling's pure parts: per-sample seeds, the selection of the best sample per
 * prompt over pooled rounds, the best-of-k curves of Llama 2's Figure 7 (from order statistics),
 * and a small SVG line chart for the reports. The store and the reward models stay outside: the
 * CLI (rlhf/cli/cmd_rs.c) reads the scores, combines them with reward_combine, and calls these. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

/* ---- seeds ---- */

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t rs_sample_seed(uint64_t seed, int64_t prompt_id, int32_t k) {
    uint64_t h = splitmix64(seed);
    h = splitmix64(h ^ (uint64_t)prompt_id);
    h = splitmix64(h ^ (uint64_t)(uint32_t)k);
    return h;
}

/* ---- selection ---- */

/* a better than b: higher reward, then earlier round, then lower sample id */
static bool better(const rs_candidate *a, const rs_candidate *b) {
    if (a->reward != b->reward) return a->reward > b->reward;
    if (a->round != b->round) return a->round < b->round;
    return a->sample_id < b->sample_id;
}

static int cmp_prompt(const void *x, const void *y) {
    const rs_candidate *a = *(const rs_candidate *const *)x, *b = *(const rs_candidate *const *)y;
    if (a->prompt_id != b->prompt_id) return a->prompt_id < b->prompt_id ? -1 : 1;
    return 0;
}

rlhf_status rs_select(const rs_candidate *c, int64_t n, int32_t round, bool pool_last,
                      rs_candidate **out, int64_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (n < 0) return RLHF_ERR(RLHF_ERR_ARG, "rs_select: negative count");
    const rs_candidate **eligible = malloc((n > 0 ? (size_t)n : 1) * sizeof *eligible);
    rs_candidate *res = malloc((n > 0 ? (size_t)n : 1) * sizeof *res);
    if (!eligible || !res) {
        free(eligible);
        free(res);
        return RLHF_ERR(RLHF_ERR_NOMEM, "rs_select: out of memory for %lld candidates",
                        (long long)n);
    }
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(c[i].reward)) continue;
        if (pool_last ? c[i].round != round : c[i].round > round) continue;
        eligible[m++] = &c[i];
    }
    qsort(eligible, (size_t)m, sizeof *eligible, cmp_prompt);
    int64_t k = 0;
    for (int64_t i = 0; i < m;) {
        const rs_candidate *best = eligible[i];
        int64_t j = i + 1;
        for (; j < m && eligible[j]->prompt_id == best->prompt_id; j++)
            if (better(eligible[j], best)) best = eligible[j];
        res[k++] = *best;
        i = j;
    }
    free(eligible);
    *out = res;
    *n_out = k;
    return RLHF_OK;
}

/* ---- best-of-k ---- */

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* log C(n, r), -inf when r is out of [0, n] */
static double log_choose(int32_t n, int32_t r) {
    if (r < 0 || r > n) return -INFINITY;
    return lgamma((double)n + 1) - lgamma((double)r + 1) - lgamma((double)(n - r) + 1);
}

/* E[j-th smallest of a random k-subset of the sorted values s (K)]: value s[i] (0-based) is the
 * j-th smallest of the subset with probability C(i, j-1) C(K-1-i, k-j) / C(K, k). */
static double order_stat(const double *s, int32_t K, int32_t k, int32_t j) {
    const double lc = log_choose(K, k);
    double e = 0;
    for (int32_t i = 0; i < K; i++) {
        double lp = log_choose(i, j - 1) + log_choose(K - 1 - i, k - j) - lc;
        if (lp > -INFINITY) e += exp(lp) * s[i];
    }
    return e;
}

rlhf_status rs_best_of_k(const double *rewards, int64_t P, int32_t K, double *max_k,
                         double *median_k) {
    if (P <= 0 || K <= 0) return RLHF_ERR(RLHF_ERR_ARG, "best_of_k: %lld prompts x %d samples",
                                          (long long)P, K);
    double *s = malloc((size_t)K * sizeof *s);
    if (!s) return RLHF_ERR(RLHF_ERR_NOMEM, "best_of_k: out of memory");
    for (int32_t k = 0; k < K; k++) max_k[k] = median_k[k] = 0;
    for (int64_t p = 0; p < P; p++) {
        for (int32_t i = 0; i < K; i++) {
            s[i] = rewards[p * K + i];
            if (isnan(s[i])) {
                free(s);
                return RLHF_ERR(RLHF_ERR_ARG, "best_of_k: reward of prompt %lld sample %d is NaN",
                                (long long)p, i);
            }
        }
        qsort(s, (size_t)K, sizeof *s, cmp_double);
        for (int32_t k = 1; k <= K; k++) {
            max_k[k - 1] += order_stat(s, K, k, k);
            double med = k % 2 ? order_stat(s, K, k, (k + 1) / 2)
                               : 0.5 * (order_stat(s, K, k, k / 2) + order_stat(s, K, k, k / 2 + 1));
            median_k[k - 1] += med;
        }
    }
    for (int32_t k = 0; k < K; k++) {
        max_k[k] /= (double)P;
        median_k[k] /= (double)P;
    }
    free(s);
    return RLHF_OK;
}
