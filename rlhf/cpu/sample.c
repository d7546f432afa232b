/* sample.c: token selection for batched decoding (CPU).
 *
 * Per row i of logits (n,V), with its own RNG stream rng[i]:
 *   greedy (temperature 0): token = first argmax, logp = log softmax(logits)[token];
 *   else: p_j ∝ exp((logits_j - max) / temperature); keep the top_k best (by p, then by lower
 *   index); keep the smallest best-first prefix of those whose mass reaches top_p of theirs
 *   (the nucleus, found in O(V) by a mass histogram or by selection, never a full sort); draw
 *   from what is kept.
 * logp is under softmax(logits/temperature) before truncation. Rows run in parallel; each uses
 * only its own RNG, so a row's token does not depend on the other rows. Nothing is saved. */
#include <omp.h>

#include "cpu_impl.h"

typedef struct {
    float p;
    int32_t i;
} cand;

/* true when a comes before b in the order "higher probability first, lower index on ties" */
static inline int better(cand a, cand b) { return a.p > b.p || (a.p == b.p && a.i < b.i); }

static inline void swap_cand(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Min-heap on `better` (the worst kept candidate at the root). */
static void heap_down(cand *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(h[w], h[l])) w = l;
        if (r < n && better(h[w], h[r])) w = r;
        if (w == i) return;
        swap_cand(&h[i], &h[w]);
        i = w;
    }
}

/* Reorders c[0..n) so that c[0..k) is the smallest best-first prefix whose mass reaches target;
 * returns k (>= 1). Quickselect on mass with a deterministic middle pivot. */
static int32_t nucleus(cand *c, int32_t n, double target) {
    int32_t lo = 0, hi = n;
    double acc = 0; /* mass of c[0..lo), all of which are kept */
    while (hi - lo > 1) {
        swap_cand(&c[lo + (hi - lo) / 2], &c[hi - 1]);
        const cand pv = c[hi - 1];
        int32_t s = lo;
        double m = 0;
        for (int32_t j = lo; j < hi - 1; j++)
            if (better(c[j], pv)) {
                m += c[j].p;
                swap_cand(&c[s++], &c[j]);
            }
        swap_cand(&c[s], &c[hi - 1]); /* pivot right after the better ones */
        if (acc + m >= target) {
            hi = s; /* the answer lies among the better ones */
        } else if (acc + m + pv.p >= target) {
            return s + 1;
        } else {
            acc += m + pv.p;
            lo = s + 1;
        }
    }
    return lo < n ? lo + 1 : n;
}

/* Top-p alone over all V probabilities, without sorting: a radix select on mass. The float
 * encoding of a probability is monotone in its value, so a histogram of mass by its top 12 bits
 * finds the bin where the best-first cumulative mass crosses target; that bin's members are
 * gathered and narrowed the same way by the next 10 bits, then the last 10 (near-uniform rows put
 * most of V in one top-level bin), and only what is left is ordered by selection. The kept set is
 * the best-first prefix ending at its worst member `last`; u in [0, kept mass) is then drawn
 * walking the kept tokens in index order. hist has HBINS doubles, cands V entries. */
enum { HBINS = 1 << 12 };

static int32_t nucleus_draw(const float *restrict probs, int32_t V, double target, rlhf_rng *rng,
                            double *hist, cand *cands) {
    static const int shift[3] = {20, 10, 0}, width[3] = {12, 10, 10};
    int32_t n = V;
    double acc = 0; /* mass of everything strictly better than the current bin */
    int lev = 0;
    for (; lev < 3 && n > 64; lev++) {
        const uint32_t mask = (1u << width[lev]) - 1;
        const int32_t nb = 1 << width[lev];
        memset(hist, 0, sizeof(double) * (size_t)nb);
        if (lev == 0) {
            for (int32_t i = 0; i < V; i++) {
                uint32_t b;
                memcpy(&b, &probs[i], 4);
                hist[b >> shift[0]] += probs[i];
            }
        } else {
            for (int32_t i = 0; i < n; i++) {
                uint32_t b;
                memcpy(&b, &cands[i].p, 4);
                hist[(b >> shift[lev]) & mask] += cands[i].p;
            }
        }
        int32_t bin = nb - 1;
        for (; bin > 0; bin--) {
            if (acc + hist[bin] >= target) break;
            acc += hist[bin];
        }
        int32_t m = 0;
        if (lev == 0) {
            for (int32_t i = 0; i < V; i++) {
                uint32_t b;
                memcpy(&b, &probs[i], 4);
                if ((int32_t)(b >> shift[0]) == bin) cands[m++] = (cand){probs[i], i};
            }
        } else {
            for (int32_t i = 0; i < n; i++) {
                uint32_t b;
                memcpy(&b, &cands[i].p, 4);
                if ((int32_t)((b >> shift[lev]) & mask) == bin) cands[m++] = cands[i];
            }
        }
        n = m;
    }
    if (lev == 0) /* small V: no histogram pass ran */
        for (int32_t i = 0; i < V; i++) cands[i] = (cand){probs[i], i};
    const int32_t k = n > 0 ? nucleus(cands, n, target - acc) : 0;
    if (k == 0) { /* rounding left the boundary bin empty: keep the single best token */
        (void)rlhf_rng_uniform(rng); /* still one uniform per row (be_sample_uniforms) */
        int32_t best = 0;
        for (int32_t i = 1; i < V; i++)
            if (probs[i] > probs[best]) best = i;
        return best;
    }
    cand last = cands[0]; /* the worst kept token */
    double kept = acc + cands[0].p;
    for (int32_t i = 1; i < k; i++) {
        if (better(last, cands[i])) last = cands[i];
        kept += cands[i].p;
    }
    double u = (double)rlhf_rng_uniform(rng) * kept, c = 0;
    int32_t any = last.i;
    for (int32_t i = 0; i < V; i++)
        if (!better(last, (cand){probs[i], i})) {
            any = i;
            c += probs[i];
            if (u < c) return i;
        }
    return any;
}

static int32_t pick_row(const float *restrict x, int32_t V, float temperature, int32_t top_k,
                        float top_p, rlhf_rng *rng, float *restrict probs, cand *cands,
                        double *hist, float *logp) {
    float mx = x[0];
    int32_t arg = 0;
    for (int32_t j = 1; j < V; j++)
        if (x[j] > mx) mx = x[j], arg = j;
    const float invT = temperature > 0 ? 1.0f / temperature : 1.0f;
    float acc[CPU_LANES] = {0};
    int32_t j = 0;
    for (; j + CPU_LANES <= V; j += CPU_LANES)
        for (int l = 0; l < CPU_LANES; l++) {
            probs[j + l] = cpu_expf((x[j + l] - mx) * invT);
            acc[l] += probs[j + l];
        }
    for (int l = 0; j < V; j++, l++) {
        probs[j] = cpu_expf((x[j] - mx) * invT);
        acc[l] += probs[j];
    }
    const float Z = cpu_lanes_sum(acc), logZ = logf(Z);
    int32_t tok = arg;
    if (temperature > 0) {
        const bool use_k = top_k > 0 && top_k < V, use_p = top_p > 0 && top_p < 1;
        if (!use_k && !use_p) {
            double u = (double)rlhf_rng_uniform(rng) * Z, c = 0;
            tok = -1;
            for (int32_t i = 0; i < V && tok < 0; i++) {
                c += probs[i];
                if (u < c) tok = i;
            }
            if (tok < 0) tok = arg; /* u beyond the rounded total: take the mode */
        } else {
            if (!use_k) {
                tok = nucleus_draw(probs, V, (double)top_p * Z, rng, hist, cands);
            } else {
                int32_t n = 0;
                for (int32_t i = 0; i < V; i++) {
                    cand c = {probs[i], i};
                    if (n < top_k) {
                        cands[n++] = c;
                        if (n == top_k)
                            for (int32_t h = top_k / 2 - 1; h >= 0; h--) heap_down(cands, n, h);
                    } else if (better(c, cands[0])) {
                        cands[0] = c;
                        heap_down(cands, n, 0);
                    }
                }
                double mass = 0;
                for (int32_t i = 0; i < n; i++) mass += cands[i].p;
                if (use_p) { /* the nucleus of the renormalized top-k */
                    n = nucleus(cands, n, top_p * mass);
                    mass = 0;
                    for (int32_t i = 0; i < n; i++) mass += cands[i].p;
                }
                double u = (double)rlhf_rng_uniform(rng) * mass, c = 0;
                tok = -1;
                for (int32_t i = 0; i < n && tok < 0; i++) {
                    c += cands[i].p;
                    if (u < c) tok = cands[i].i;
                }
                if (tok < 0) tok = cands[0].i;
            }
        }
    }
    *logp = (x[tok] - mx) * invT - logZ;
    return tok;
}

void be_sample_uniforms(rlhf_rng *rng, int32_t n, float temperature, float *u) {
    for (int32_t r = 0; r < n; r++) /* pick_row draws once per row on every non-greedy path */
        u[r] = temperature > 0 ? rlhf_rng_uniform(&rng[r]) : 0.0f;
}

rlhf_status cpu_sample(const rlhf_backend *be, int32_t *tokens, float *logp, float *logits,
                       rlhf_rng *rng, int32_t n, int32_t V, float temperature, int32_t top_k,
                       float top_p) {
    (void)be;
    if (n <= 0) return RLHF_OK;
    if (V <= 0 || temperature < 0 || top_k < 0 || !(top_p >= 0 && top_p <= 1))
        return RLHF_ERR(RLHF_ERR_ARG, "sample: bad arguments (V %d temperature %g top_k %d top_p %g)",
                        V, (double)temperature, top_k, (double)top_p);
    float *scratch;
    int nt;
    /* per thread, 64-byte aligned: histogram (HBINS doubles), candidates (V x 8 bytes), probs
     * (V floats) */
    const int64_t per = (2 * HBINS + 3 * (int64_t)V + 15) & ~(int64_t)15;
    RLHF_TRY(cpu_scratch(&scratch, &nt, per));
#pragma omp parallel for schedule(static) if (n > 1 && (int64_t)n * V >= CPU_PAR_MIN)
    for (int32_t r = 0; r < n; r++) {
        float *base = scratch + (int64_t)omp_get_thread_num() * per;
        double *hist = (double *)base;
        cand *cands = (cand *)(base + 2 * HBINS);
        float *probs = base + 2 * HBINS + 2 * (int64_t)V;
        tokens[r] = pick_row(logits + (int64_t)r * V, V, temperature, top_k, top_p, &rng[r], probs,
                             cands, hist, &logp[r]);
    }
    rlhf_free(scratch);
    return RLHF_OK;
}
