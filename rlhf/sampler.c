/* sampler.c: batched KV-cache decoding.
 *
 * Many sequences decode at once: every forward takes one row per decoding sequence plus chunks of
 * prompt tokens of sequences still in prefill, so the weights are read once per step for all of
 * them (matrix-matrix products, not one matrix-vector loop per sequence). Each sequence owns a
 * cache slot and its own PCG32 stream seeded from its seed, so the tokens it draws do not depend
 * on which other sequences share the batch. Sampling (temperature, top-k, top-p) runs on the host
 * over the logits of the rows that need them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

struct rlhf_sampler {
    rlhf_model *m;
    const rlhf_backend *be;
    int32_t S;    /* cache slots */
    int32_t Tmax; /* positions per slot (seq_len) */
    int32_t R;    /* rows per forward at most */
    int32_t OUT;  /* V (LM head) or 1 (scalar head) */
    float *kc, *vc; /* (L,S,Tmax,KVD) key/value cache */
    void *mem;      /* one allocation for the row buffers below */
    int32_t *d_tok, *d_slot, *d_pos, *d_sel; /* (R) */
    float *x;       /* (R,C) residual stream */
    float *xn;      /* (R,C) */
    float *q, *att; /* (R,C) */
    float *k, *v;   /* (R,KVD) */
    float *h1, *h3, *g; /* (R,FF) */
    float *xs;      /* (S,C) rows that want logits, gathered */
    float *xsn;     /* (S,C) */
    float *out;     /* (S,OUT) */
    /* host scratch for rlhf_sampler_run */
    int32_t *h_tok, *h_slot, *h_pos, *h_sel; /* (R) */
    uint8_t *h_want; /* (R) */
    float *h_out;    /* (S,OUT) */
};

static size_t carve(char *base, size_t *off, void **ptr, size_t bytes) {
    if (base) *ptr = base + *off;
    *off += (bytes + 63) & ~(size_t)63;
    return *off;
}

static size_t sampler_layout(rlhf_sampler *s, char *base) {
    const rlhf_model_config *c = &s->m->cfg;
    const size_t R = (size_t)s->R, S = (size_t)s->S, C = (size_t)c->dim, FF = (size_t)c->hidden_dim;
    const size_t KVD = (size_t)c->n_head_kv * (size_t)(c->dim / c->n_head);
    size_t off = 0;
    carve(base, &off, (void **)&s->d_tok, R * 4);
    carve(base, &off, (void **)&s->d_slot, R * 4);
    carve(base, &off, (void **)&s->d_pos, R * 4);
    carve(base, &off, (void **)&s->d_sel, R * 4);
    carve(base, &off, (void **)&s->x, R * C * 4);
    carve(base, &off, (void **)&s->xn, R * C * 4);
    carve(base, &off, (void **)&s->q, R * C * 4);
    carve(base, &off, (void **)&s->att, R * C * 4);
    carve(base, &off, (void **)&s->k, R * KVD * 4);
    carve(base, &off, (void **)&s->v, R * KVD * 4);
    carve(base, &off, (void **)&s->h1, R * FF * 4);
    carve(base, &off, (void **)&s->h3, R * FF * 4);
    carve(base, &off, (void **)&s->g, R * FF * 4);
    carve(base, &off, (void **)&s->xs, S * C * 4);
    carve(base, &off, (void **)&s->xsn, S * C * 4);
    return carve(base, &off, (void **)&s->out, S * (size_t)s->OUT * 4);
}

rlhf_status rlhf_sampler_init(rlhf_sampler **out, rlhf_model *m, int32_t max_seqs) {
    *out = NULL;
    if (max_seqs <= 0) return RLHF_ERR(RLHF_ERR_ARG, "sampler: max_seqs must be positive");
    rlhf_sampler *s = calloc(1, sizeof *s);
    if (!s) return RLHF_ERR(RLHF_ERR_NOMEM, "sampler: cannot allocate handle");
    const rlhf_model_config *c = &m->cfg;
    s->m = m;
    s->be = m->be;
    s->S = max_seqs;
    s->Tmax = c->seq_len;
    s->R = max_seqs + 256; /* every decoding slot plus a prefill chunk */
    s->OUT = c->head == RLHF_HEAD_LM ? c->vocab_size : 1;
    const size_t KVD = (size_t)c->n_head_kv * (size_t)(c->dim / c->n_head);
    const size_t cache = (size_t)c->n_layer * (size_t)s->S * (size_t)s->Tmax * KVD * sizeof(float);
    rlhf_status st;
    RLHF_TRY_GOTO(st, s->be->alloc(s->be, (void **)&s->kc, cache), fail);
    RLHF_TRY_GOTO(st, s->be->alloc(s->be, (void **)&s->vc, cache), fail);
    size_t bytes = sampler_layout(s, NULL);
    RLHF_TRY_GOTO(st, s->be->alloc(s->be, &s->mem, bytes), fail);
    sampler_layout(s, s->mem);
    const size_t R = (size_t)s->R;
    s->h_tok = malloc(R * 4);
    s->h_slot = malloc(R * 4);
    s->h_pos = malloc(R * 4);
    s->h_sel = malloc(R * 4);
    s->h_want = malloc(R);
    s->h_out = malloc((size_t)s->S * (size_t)s->OUT * sizeof(float));
    if (!s->h_tok || !s->h_slot || !s->h_pos || !s->h_sel || !s->h_want || !s->h_out) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "sampler: cannot allocate host buffers");
        goto fail;
    }
    *out = s;
    return RLHF_OK;
fail:
    rlhf_sampler_free(s);
    return st;
}

void rlhf_sampler_free(rlhf_sampler *s) {
    if (!s) return;
    s->be->free(s->be, s->kc);
    s->be->free(s->be, s->vc);
    s->be->free(s->be, s->mem);
    free(s->h_tok);
    free(s->h_slot);
    free(s->h_pos);
    free(s->h_sel);
    free(s->h_want);
    free(s->h_out);
    free(s);
}

rlhf_status rlhf_sampler_forward(rlhf_sampler *s, int32_t n, const int32_t *tokens,
                                 const int32_t *slots, const int32_t *pos,
                                 const uint8_t *want_logits, float *out) {
    const rlhf_model *m = s->m;
    const rlhf_backend *be = s->be;
    const rlhf_model_config *c = &m->cfg;
    const int32_t C = c->dim, FF = c->hidden_dim, NH = c->n_head, NKV = c->n_head_kv;
    const int32_t HS = C / NH, KVD = NKV * HS;
    const int64_t cache_layer = (int64_t)s->S * s->Tmax * KVD;
    float *p = m->params;
    if (n <= 0 || n > s->R)
        return RLHF_ERR(RLHF_ERR_ARG, "sampler: %d rows (1..%d allowed)", n, s->R);
    int32_t n_sel = 0;
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size || slots[i] < 0 || slots[i] >= s->S ||
            pos[i] < 0 || pos[i] >= s->Tmax)
            return RLHF_ERR(RLHF_ERR_ARG, "sampler: row %d (token %d slot %d pos %d) out of range",
                            i, tokens[i], slots[i], pos[i]);
        if (want_logits[i]) {
            if (n_sel == s->S)
                return RLHF_ERR(RLHF_ERR_ARG, "sampler: more than %d rows want logits", s->S);
            s->h_sel[n_sel++] = i;
        }
    }
    RLHF_TRY(be->to_device(be, s->d_tok, tokens, (size_t)n * 4));
    RLHF_TRY(be->to_device(be, s->d_slot, slots, (size_t)n * 4));
    RLHF_TRY(be->to_device(be, s->d_pos, pos, (size_t)n * 4));
    RLHF_TRY(be->to_device(be, s->d_sel, s->h_sel, (size_t)n_sel * 4));
    RLHF_TRY(BE_CALL(be, embed_fwd, s->x, s->d_tok, p, n, C));
    for (int32_t l = 0; l < c->n_layer; l++) {
        float *kc = s->kc + l * cache_layer, *vc = s->vc + l * cache_layer;
        RLHF_TRY(BE_CALL(be, rmsnorm_fwd, s->xn, NULL, s->x,
                         model_tensor(m, p, RLHF_P_ATTN_NORM, l), n, C, c->norm_eps));
        RLHF_TRY(BE_CALL(be, matmul_fwd, s->q, s->xn, model_tensor(m, p, RLHF_P_WQ, l), n, C, C, 0.0f));
        RLHF_TRY(BE_CALL(be, matmul_fwd, s->k, s->xn, model_tensor(m, p, RLHF_P_WK, l), n, C, KVD, 0.0f));
        RLHF_TRY(BE_CALL(be, matmul_fwd, s->v, s->xn, model_tensor(m, p, RLHF_P_WV, l), n, C, KVD, 0.0f));
        RLHF_TRY(BE_CALL(be, rope_fwd, s->q, s->d_pos, n, 0, NH, HS, c->rope_theta));
        RLHF_TRY(BE_CALL(be, rope_fwd, s->k, s->d_pos, n, 0, NKV, HS, c->rope_theta));
        RLHF_TRY(BE_CALL(be, kv_store, kc, vc, s->k, s->v, s->d_slot, s->d_pos, n, s->Tmax, KVD));
        RLHF_TRY(BE_CALL(be, attention_decode, s->att, s->q, kc, vc, s->d_slot, s->d_pos, n,
                         s->Tmax, NH, NKV, HS));
        RLHF_TRY(BE_CALL(be, matmul_fwd, s->x, s->att, model_tensor(m, p, RLHF_P_WO, l), n, C, C, 1.0f));
        RLHF_TRY(BE_CALL(be, rmsnorm_fwd, s->xn, NULL, s->x,
                         model_tensor(m, p, RLHF_P_FFN_NORM, l), n, C, c->norm_eps));
        RLHF_TRY(BE_CALL(be, matmul_fwd, s->h1, s->xn, model_tensor(m, p, RLHF_P_W1, l), n, C, FF, 0.0f));
        RLHF_TRY(BE_CALL(be, matmul_fwd, s->h3, s->xn, model_tensor(m, p, RLHF_P_W3, l), n, C, FF, 0.0f));
        RLHF_TRY(BE_CALL(be, swiglu_fwd, s->g, s->h1, s->h3, (int64_t)n * FF));
        RLHF_TRY(BE_CALL(be, matmul_fwd, s->x, s->g, model_tensor(m, p, RLHF_P_W2, l), n, FF, C, 1.0f));
    }
    if (n_sel == 0) return RLHF_OK;
    /* gather the rows that want logits (an embedding lookup is a row gather) */
    RLHF_TRY(BE_CALL(be, embed_fwd, s->xs, s->d_sel, s->x, n_sel, C));
    RLHF_TRY(BE_CALL(be, rmsnorm_fwd, s->xsn, NULL, s->xs, model_tensor(m, p, RLHF_P_NORM, 0),
                     n_sel, C, c->norm_eps));
    RLHF_TRY(BE_CALL(be, matmul_fwd, s->out, s->xsn, model_head_weight(m, p), n_sel, C, s->OUT, 0.0f));
    return be->to_host(be, out, s->out, (size_t)n_sel * (size_t)s->OUT * sizeof(float));
}

/* ---- token selection ---- */

typedef struct {
    float p;
    int32_t i;
} cand;

/* Descending probability, ascending index on ties: a total order, so results are reproducible. */
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Min-heap (by cand_cmp order: the "worst" candidate at the root) of the k best. */
static void heap_sift(cand *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cand_cmp(&h[l], &h[w]) > 0) w = l;
        if (r < n && cand_cmp(&h[r], &h[w]) > 0) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Picks a token from one logits row (V) with this sequence's RNG; *logp gets its log-prob under
 * softmax(logits / T) (T = 1 when greedy). probs and cands are scratch of V entries. */
static int32_t pick_token(const float *logits, int32_t V, const rlhf_sample_config *sc,
                          rlhf_rng *rng, float *probs, cand *cands, float *logp) {
    const float T = sc->temperature > 0 ? sc->temperature : 1.0f;
    float mx = -INFINITY;
    int32_t arg = 0;
    for (int32_t i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i], arg = i; /* first maximum, as llama2.c */
    const float invT = 1.0f / T, mxs = mx * invT;
    double Z = 0;
    for (int32_t i = 0; i < V; i++) {
        probs[i] = expf(logits[i] * invT - mxs);
        Z += probs[i];
    }
    const float logZ = (float)log(Z);
    int32_t tok = arg;
    if (sc->temperature > 0) {
        int32_t n = 0;
        bool truncate = (sc->top_k > 0 && sc->top_k < V) || (sc->top_p > 0 && sc->top_p < 1);
        if (!truncate) {
            double u = rlhf_rng_uniform(rng) * Z, acc = 0;
            tok = V - 1;
            for (int32_t i = 0; i < V; i++) {
                acc += probs[i];
                if (u < acc) { tok = i; break; }
            }
        } else {
            if (sc->top_k > 0 && sc->top_k < V) {
                int32_t k = sc->top_k;
                for (int32_t i = 0; i < V; i++) {
                    cand c = {probs[i], i};
                    if (n < k) {
                        cands[n++] = c;
                        if (n == k)
                            for (int32_t j = k / 2 - 1; j >= 0; j--) heap_sift(cands, k, j);
                    } else if (cand_cmp(&c, &cands[0]) < 0) {
                        cands[0] = c;
                        heap_sift(cands, k, 0);
                    }
                }
            } else {
                /* top-p alone: tokens below (1-p)/(V-1) of the mass can never be in the nucleus */
                const float cut = (float)((1.0 - sc->top_p) / (double)(V - 1) * Z);
                for (int32_t i = 0; i < V; i++)
                    if (probs[i] >= cut) cands[n++] = (cand){probs[i], i};
            }
            qsort(cands, (size_t)n, sizeof *cands, cand_cmp);
            double mass = 0;
            for (int32_t i = 0; i < n; i++) mass += cands[i].p;
            if (sc->top_p > 0 && sc->top_p < 1) {
                double acc = 0, lim = sc->top_p * mass;
                int32_t keep = n;
                for (int32_t i = 0; i < n; i++) {
                    acc += cands[i].p;
                    if (acc >= lim) { keep = i + 1; break; }
                }
                n = keep;
                mass = acc < mass ? acc : mass;
            }
            double u = rlhf_rng_uniform(rng) * mass, acc = 0;
            tok = cands[n - 1].i;
            for (int32_t i = 0; i < n; i++) {
                acc += cands[i].p;
                if (u < acc) { tok = cands[i].i; break; }
            }
        }
    }
    *logp = logits[tok] * invT - mxs - logZ;
    return tok;
}

/* ---- the decoding loop ---- */

typedef struct {
    int32_t seq;   /* index into seqs, -1 when free */
    int32_t fed;   /* prompt tokens fed so far */
    int32_t limit; /* tokens this sequence may generate */
    rlhf_rng rng;
} slot_state;

rlhf_status rlhf_sampler_run(rlhf_sampler *s, const rlhf_sample_config *sc, rlhf_sample_seq *seqs,
                             int32_t n, rlhf_progress_fn progress, void *ctx) {
    if (s->m->cfg.head != RLHF_HEAD_LM)
        return RLHF_ERR(RLHF_ERR_ARG, "sampler: the model has no LM head");
    if (sc->max_new < 0 || sc->temperature < 0 || sc->top_k < 0 || sc->top_p < 0 || sc->top_p > 1)
        return RLHF_ERR(RLHF_ERR_ARG, "sampler: bad config (max_new %d temperature %g top_k %d "
                        "top_p %g)", sc->max_new, (double)sc->temperature, sc->top_k,
                        (double)sc->top_p);
    for (int32_t i = 0; i < n; i++) {
        if (seqs[i].n_prompt < 1 || seqs[i].n_prompt > s->Tmax)
            return RLHF_ERR(RLHF_ERR_ARG, "sampler: sequence %d has a prompt of %d tokens "
                            "(1..%d allowed)", i, seqs[i].n_prompt, s->Tmax);
        seqs[i].n_out = 0;
        seqs[i].finish = RLHF_FINISH_LENGTH;
    }
    const int32_t V = s->OUT;
    slot_state *slot = calloc((size_t)s->S, sizeof *slot);
    float *probs = malloc((size_t)s->S * (size_t)V * sizeof(float));
    cand *cands = malloc((size_t)s->S * (size_t)V * sizeof(cand));
    int32_t *row_slot = malloc((size_t)s->S * sizeof(int32_t)); /* slot of each wanted row */
    rlhf_status st = RLHF_OK;
    if (!slot || !probs || !cands || !row_slot) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "sampler: cannot allocate scratch");
        goto done;
    }
    int64_t total = 0, done_tokens = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t cap = s->Tmax - seqs[i].n_prompt + 1; /* last fed position is Tmax-1 */
        total += sc->max_new < cap ? sc->max_new : cap;
    }
    for (int32_t i = 0; i < s->S; i++) slot[i].seq = -1;
    int32_t next = 0, active = 0;
    for (;;) {
        /* refill free slots */
        for (int32_t i = 0; i < s->S && next < n; i++) {
            if (slot[i].seq >= 0) continue;
            rlhf_sample_seq *q = &seqs[next];
            int32_t cap = s->Tmax - q->n_prompt + 1;
            slot[i] = (slot_state){.seq = next, .fed = 0, .limit = sc->max_new < cap ? sc->max_new : cap};
            rlhf_rng_seed(&slot[i].rng, q->seed, 0x5eed);
            next++;
            if (slot[i].limit == 0) { slot[i].seq = -1; i--; continue; } /* nothing to generate */
            active++;
        }
        if (active == 0) break;
        /* rows: one per decoding slot first, then prompt chunks within the row budget */
        int32_t rows = 0, nwant = 0;
        for (int32_t i = 0; i < s->S; i++) {
            if (slot[i].seq < 0) continue;
            rlhf_sample_seq *q = &seqs[slot[i].seq];
            if (slot[i].fed < q->n_prompt) continue;
            s->h_tok[rows] = q->out[q->n_out - 1];
            s->h_slot[rows] = i;
            s->h_pos[rows] = q->n_prompt + q->n_out - 1;
            s->h_want[rows++] = 1;
            row_slot[nwant++] = i;
        }
        for (int32_t i = 0; i < s->S && rows < s->R; i++) {
            if (slot[i].seq < 0) continue;
            rlhf_sample_seq *q = &seqs[slot[i].seq];
            while (slot[i].fed < q->n_prompt && rows < s->R) {
                int32_t t = slot[i].fed++;
                s->h_tok[rows] = q->prompt[t];
                s->h_slot[rows] = i;
                s->h_pos[rows] = t;
                s->h_want[rows] = t == q->n_prompt - 1;
                if (s->h_want[rows]) row_slot[nwant++] = i;
                rows++;
            }
        }
        RLHF_TRY_GOTO(st, rlhf_sampler_forward(s, rows, s->h_tok, s->h_slot, s->h_pos, s->h_want,
                                               s->h_out), done);
        /* pick tokens: rows are independent (own RNG, own scratch) */
#pragma omp parallel for schedule(static)
        for (int32_t r = 0; r < nwant; r++) {
            slot_state *ss = &slot[row_slot[r]];
            rlhf_sample_seq *q = &seqs[ss->seq];
            float lp;
            int32_t tok = pick_token(s->h_out + (size_t)r * V, V, sc, &ss->rng,
                                     probs + (size_t)r * V, cands + (size_t)r * V, &lp);
            q->out[q->n_out] = tok;
            if (q->logp) q->logp[q->n_out] = lp;
            q->n_out++;
        }
        for (int32_t r = 0; r < nwant; r++) {
            slot_state *ss = &slot[row_slot[r]];
            rlhf_sample_seq *q = &seqs[ss->seq];
            bool eos = sc->eos_id >= 0 && q->out[q->n_out - 1] == sc->eos_id;
            if (eos || q->n_out >= ss->limit) {
                q->finish = eos ? RLHF_FINISH_EOS : RLHF_FINISH_LENGTH;
                ss->seq = -1;
                active--;
            }
        }
        done_tokens += nwant;
        if (progress) progress(ctx, done_tokens, total);
    }
done:
    free(slot);
    free(probs);
    free(cands);
    free(row_slot);
    return st;
}
