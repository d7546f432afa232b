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

/* ---- SVG chart ---- */

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

rlhf_status rs_plot_svg(const char *path, const char *title, const char *xlabel,
                        const char *ylabel, const double *x, int32_t n,
                        const char *const *series_names, const double *const *series,
                        int32_t n_series) {
    if (n <= 0 || n_series <= 0) return RLHF_ERR(RLHF_ERR_ARG, "%s: nothing to plot", path);
    double x0 = x[0], x1 = x[0], y0 = INFINITY, y1 = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        x0 = fmin(x0, x[i]);
        x1 = fmax(x1, x[i]);
        for (int32_t s = 0; s < n_series; s++)
            if (isfinite(series[s][i])) {
                y0 = fmin(y0, series[s][i]);
                y1 = fmax(y1, series[s][i]);
            }
    }
    if (!isfinite(y0)) y0 = 0, y1 = 1;
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1;
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    const double W = 640, H = 400, L = 70, R = 170, Tp = 40, Bt = 50;
    const double pw = W - L - R, ph = H - Tp - Bt;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f"};
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"22\" font-size=\"15\">", L);
    xml_text(f, title);
    fprintf(f, "</text>\n<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
               "stroke=\"black\"/>\n", L, Tp, pw, ph);
    for (int32_t t = 0; t <= 4; t++) { /* ticks */
        double yv = y0 + (y1 - y0) * t / 4, yp = Tp + ph - ph * t / 4;
        double xv = x0 + (x1 - x0) * t / 4, xp = L + pw * t / 4;
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", L - 5, yp + 4,
                yv);
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.3g</text>\n", xp,
                Tp + ph + 16, xv);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", L + pw / 2, H - 10);
    xml_text(f, xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(16,%.0f) rotate(-90)\" "
               "text-anchor=\"middle\">", Tp + ph / 2);
    xml_text(f, ylabel);
    fprintf(f, "</text>\n");
    for (int32_t s = 0; s < n_series; s++) {
        const char *col = colors[s % 8];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (int32_t i = 0; i < n; i++) {
            if (!isfinite(series[s][i])) continue;
            fprintf(f, "%.1f,%.1f ", L + pw * (x[i] - x0) / (x1 - x0),
                    Tp + ph - ph * (series[s][i] - y0) / (y1 - y0));
        }
        fprintf(f, "\"/>\n<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">", L + pw + 10,
                Tp + 16 + 18 * s, col);
        xml_text(f, series_names[s]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return RLHF_OK;
}
