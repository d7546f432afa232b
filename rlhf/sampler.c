/* sampler.c: batched KV-cache decoding.
 *
 * Many sequences decode at once: every forward takes one row per decoding sequence plus chunks of
 * prompt tokens of sequences still in prefill, so the weights are read once per step for all of
 * them (matrix-matrix products, not one matrix-vector loop per sequence). Each sequence owns a
 * cache slot and its own PCG32 stream seeded from its seed, so the tokens it draws do not depend
 * on which other sequences share the batch. Token selection (temperature, top-k, top-p) is the
 * backend's `sample` op over the logits of the rows that need them. */
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
    int32_t *d_next; /* (S) tokens picked */
    float *d_logp;   /* (S) their log-probs */
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
    carve(base, &off, (void **)&s->d_next, S * 4);
    carve(base, &off, (void **)&s->d_logp, S * 4);
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

/* The forward of rlhf_sampler_forward, leaving the wanted rows' logits in s->out (backend
 * memory); *n_sel gets their count. */
static rlhf_status sampler_forward_dev(rlhf_sampler *s, int32_t n, const int32_t *tokens,
                                       const int32_t *slots, const int32_t *pos,
                                       const uint8_t *want_logits, int32_t *n_sel_out) {
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
    *n_sel_out = 0;
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
    *n_sel_out = n_sel;
    return RLHF_OK;
}

rlhf_status rlhf_sampler_forward(rlhf_sampler *s, int32_t n, const int32_t *tokens,
                                 const int32_t *slots, const int32_t *pos,
                                 const uint8_t *want_logits, float *out) {
    int32_t n_sel;
    RLHF_TRY(sampler_forward_dev(s, n, tokens, slots, pos, want_logits, &n_sel));
    return s->be->to_host(s->be, out, s->out, (size_t)n_sel * (size_t)s->OUT * sizeof(float));
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
    int32_t *row_slot = malloc((size_t)s->S * sizeof(int32_t)); /* slot of each wanted row */
    rlhf_rng *row_rng = malloc((size_t)s->S * sizeof(rlhf_rng));
    int32_t *next_tok = malloc((size_t)s->S * sizeof(int32_t));
    float *next_logp = malloc((size_t)s->S * sizeof(float));
    rlhf_status st = RLHF_OK;
    if (!slot || !row_slot || !row_rng || !next_tok || !next_logp) {
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
        int32_t n_sel;
        RLHF_TRY_GOTO(st, sampler_forward_dev(s, rows, s->h_tok, s->h_slot, s->h_pos, s->h_want,
                                              &n_sel), done);
        RLHF_ASSERT(n_sel == nwant);
        for (int32_t r = 0; r < nwant; r++) row_rng[r] = slot[row_slot[r]].rng;
        RLHF_TRY_GOTO(st, BE_CALL(s->be, sample, s->d_next, s->d_logp, s->out, row_rng, nwant, V,
                                  sc->temperature, sc->top_k, sc->top_p), done);
        RLHF_TRY_GOTO(st, s->be->to_host(s->be, next_tok, s->d_next, (size_t)nwant * 4), done);
        RLHF_TRY_GOTO(st, s->be->to_host(s->be, next_logp, s->d_logp, (size_t)nwant * 4), done);
        for (int32_t r = 0; r < nwant; r++) {
            slot_state *ss = &slot[row_slot[r]];
            rlhf_sample_seq *q = &seqs[ss->seq];
            ss->rng = row_rng[r];
            q->out[q->n_out] = next_tok[r];
            if (q->logp) q->logp[q->n_out] = next_logp[r];
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
    free(row_slot);
    free(row_rng);
    free(next_tok);
    free(next_logp);
    return st;
}
