/* model.c: the Llama-2 trunk: configuration, parameter table, forward and backward passes written
 * out by hand (llm.c style), the LM and scalar heads, and the masked cross-entropy step.
 *
 * Forward per layer (x is the residual stream (B,T,C)):
 *   xn = rmsnorm(x) * attn_norm; q,k,v = xn @ wq^T, wk^T, wv^T; rope(q, k);
 *   att = causal_gqa_attention(q, k, v); x_mid = x + att @ wo^T;
 *   xn2 = rmsnorm(x_mid) * ffn_norm; g = silu(xn2 @ w1^T) * (xn2 @ w3^T); x_out = x_mid + g @ w2^T.
 * Then xf = rmsnorm(x) * norm and the head: logits = xf @ W^T (LM) or values = xf @ score^T.
 * All ops go through the backend table (backend_impl.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

rlhf_model_config rlhf_config_default(void) {
    rlhf_model_config c = {
        .dim = 288, .hidden_dim = 768, .n_layer = 6, .n_head = 6, .n_head_kv = 6,
        .vocab_size = 32000, .seq_len = 256, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
        .tied_head = false, .head = RLHF_HEAD_LM, .trainable = true,
    };
    return c;
}

rlhf_status rlhf_config_validate(const rlhf_model_config *c) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layer <= 0 || c->n_head <= 0 ||
        c->n_head_kv <= 0 || c->vocab_size <= 0 || c->seq_len <= 0)
        return RLHF_ERR(RLHF_ERR_ARG,
                        "config: sizes must be positive (dim %d hidden %d layers %d heads %d "
                        "kv_heads %d vocab %d seq %d)",
                        c->dim, c->hidden_dim, c->n_layer, c->n_head, c->n_head_kv, c->vocab_size,
                        c->seq_len);
    if (c->dim % c->n_head != 0)
        return RLHF_ERR(RLHF_ERR_ARG, "config: dim %d is not a multiple of n_head %d", c->dim,
                        c->n_head);
    if (c->n_head % c->n_head_kv != 0)
        return RLHF_ERR(RLHF_ERR_ARG, "config: n_head %d is not a multiple of n_head_kv %d",
                        c->n_head, c->n_head_kv);
    if ((c->dim / c->n_head) % 2 != 0)
        return RLHF_ERR(RLHF_ERR_ARG, "config: head size %d must be even for RoPE",
                        c->dim / c->n_head);
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0))
        return RLHF_ERR(RLHF_ERR_ARG, "config: norm_eps and rope_theta must be positive");
    return RLHF_OK;
}

int64_t rlhf_param_table(const rlhf_model_config *c, rlhf_param_info t[RLHF_P_COUNT]) {
    const int64_t C = c->dim, FF = c->hidden_dim, V = c->vocab_size;
    const int64_t HS = C / c->n_head, KVD = (int64_t)c->n_head_kv * HS;
    struct { const char *name; int per_layer; int64_t rows, cols; bool decay; } spec[RLHF_P_COUNT] = {
        [RLHF_P_TOK_EMB] = {"model.embed_tokens.weight", 0, V, C, true},
        [RLHF_P_ATTN_NORM] = {"model.layers.%d.input_layernorm.weight", 1, C, 1, false},
        [RLHF_P_WQ] = {"model.layers.%d.self_attn.q_proj.weight", 1, C, C, true},
        [RLHF_P_WK] = {"model.layers.%d.self_attn.k_proj.weight", 1, KVD, C, true},
        [RLHF_P_WV] = {"model.layers.%d.self_attn.v_proj.weight", 1, KVD, C, true},
        [RLHF_P_WO] = {"model.layers.%d.self_attn.o_proj.weight", 1, C, C, true},
        [RLHF_P_FFN_NORM] = {"model.layers.%d.post_attention_layernorm.weight", 1, C, 1, false},
        [RLHF_P_W1] = {"model.layers.%d.mlp.gate_proj.weight", 1, FF, C, true},
        [RLHF_P_W2] = {"model.layers.%d.mlp.down_proj.weight", 1, C, FF, true},
        [RLHF_P_W3] = {"model.layers.%d.mlp.up_proj.weight", 1, FF, C, true},
        [RLHF_P_NORM] = {"model.norm.weight", 0, C, 1, false},
        [RLHF_P_HEAD] = {"lm_head.weight", 0, V, C, true},
    };
    if (c->head == RLHF_HEAD_SCALAR) {
        spec[RLHF_P_HEAD].name = "score.weight";
        spec[RLHF_P_HEAD].rows = 1;
    }
    int64_t off = 0;
    for (int i = 0; i < RLHF_P_COUNT; i++) {
        t[i].name = spec[i].name;
        t[i].per_layer = spec[i].per_layer;
        t[i].rows = spec[i].rows;
        t[i].cols = spec[i].cols;
        t[i].decay = spec[i].decay;
        t[i].offset = off;
        t[i].numel = spec[i].rows * spec[i].cols * (spec[i].per_layer ? c->n_layer : 1);
        if (i == RLHF_P_HEAD && c->head == RLHF_HEAD_LM && c->tied_head) t[i].numel = 0;
        off += t[i].numel;
    }
    return off;
}

/* ---- allocation ---- */

/* Lays out the activation arrays in one block; with base NULL only counts bytes. */
static size_t acts_layout(rlhf_model *m, char *base) {
    const rlhf_model_config *c = &m->cfg;
    const int64_t BT = (int64_t)m->max_B * m->max_T, C = c->dim, FF = c->hidden_dim;
    const int64_t KVD = (int64_t)c->n_head_kv * (c->dim / c->n_head);
    const int64_t Ls = c->trainable ? c->n_layer : 1; /* saved layers */
    const int64_t OUT = c->head == RLHF_HEAD_LM ? c->vocab_size : 1;
    size_t off = 0;
    rlhf_acts *a = &m->a;
#define CARVE(ptr, type, count)                                                                    \
    do {                                                                                           \
        if (base) (ptr) = (type *)(base + off);                                                    \
        off += (((size_t)(count) * sizeof(type)) + 63) & ~(size_t)63;                              \
    } while (0)
    CARVE(a->tokens, int32_t, BT);
    CARVE(a->targets, int32_t, BT);
    CARVE(a->seg, int32_t, BT);
    CARVE(a->pos, int32_t, BT);
    CARVE(a->res, float, (Ls + 1) * BT * C);
    CARVE(a->res_mid, float, Ls * BT * C);
    CARVE(a->xn, float, Ls * BT * C);
    CARVE(a->rstd, float, Ls * BT);
    CARVE(a->q, float, Ls * BT * C);
    CARVE(a->k, float, Ls * BT * KVD);
    CARVE(a->v, float, Ls * BT * KVD);
    CARVE(a->att, float, Ls * BT * C);
    CARVE(a->lse, float, Ls * BT * c->n_head);
    CARVE(a->xn2, float, Ls * BT * C);
    CARVE(a->rstd2, float, Ls * BT);
    CARVE(a->h1, float, Ls * BT * FF);
    CARVE(a->h3, float, Ls * BT * FF);
    CARVE(a->g, float, Ls * BT * FF);
    CARVE(a->xf, float, BT * C);
    CARVE(a->rstdf, float, BT);
    CARVE(a->out, float, BT * OUT);
    CARVE(a->logp, float, BT);
    CARVE(a->lse_out, float, BT);
    CARVE(a->dlogp, float, BT);
    if (c->trainable) {
        CARVE(a->dres, float, BT * C);
        CARVE(a->dxn, float, BT * C);
        CARVE(a->datt, float, BT * C);
        CARVE(a->dq, float, BT * C);
        CARVE(a->dk, float, BT * KVD);
        CARVE(a->dv, float, BT * KVD);
        CARVE(a->dg, float, BT * FF);
        CARVE(a->dh1, float, BT * FF);
        CARVE(a->dh3, float, BT * FF);
    }
#undef CARVE
    return off;
}

rlhf_status rlhf_model_init(rlhf_model **out, const rlhf_model_config *c, const rlhf_backend *be,
                            int32_t max_B, int32_t max_T) {
    *out = NULL;
    RLHF_TRY(rlhf_config_validate(c));
    if (!be) RLHF_TRY(rlhf_backend_get("cpu", &be));
    if (max_B < 0 || max_T < 0 || max_T > c->seq_len)
        return RLHF_ERR(RLHF_ERR_ARG, "model: max batch %d / positions %d invalid (seq_len %d)",
                        max_B, max_T, c->seq_len);
    rlhf_model *m = calloc(1, sizeof *m);
    if (!m) return RLHF_ERR(RLHF_ERR_NOMEM, "model: cannot allocate handle");
    m->cfg = *c;
    m->be = be;
    m->max_B = max_B;
    m->max_T = max_T;
    m->P = rlhf_param_table(c, m->table);
    rlhf_status st;
    RLHF_TRY_GOTO(st, be->alloc(be, (void **)&m->params, (size_t)m->P * sizeof(float)), fail);
    if (c->trainable)
        RLHF_TRY_GOTO(st, be->alloc(be, (void **)&m->grads, (size_t)m->P * sizeof(float)), fail);
    if (max_B > 0 && max_T > 0) {
        m->acts_bytes = acts_layout(m, NULL);
        RLHF_TRY_GOTO(st, be->alloc(be, &m->acts_mem, m->acts_bytes), fail);
        acts_layout(m, m->acts_mem);
    }
    *out = m;
    return RLHF_OK;
fail:
    rlhf_model_free(m);
    return st;
}

void rlhf_model_free(rlhf_model *m) {
    if (!m) return;
    m->be->free(m->be, m->params);
    m->be->free(m->be, m->grads);
    m->be->free(m->be, m->adam_m);
    m->be->free(m->be, m->adam_v);
    m->be->free(m->be, m->acts_mem);
    free(m);
}

const rlhf_model_config *rlhf_model_get_config(const rlhf_model *m) { return &m->cfg; }
int64_t rlhf_model_num_params(const rlhf_model *m) { return m->P; }
int64_t rlhf_model_step(const rlhf_model *m) { return m->step; }

void rlhf_model_memory(const rlhf_model *m, size_t *params, size_t *grads, size_t *optim,
                       size_t *acts) {
    size_t pb = (size_t)m->P * sizeof(float);
    if (params) *params = pb;
    if (grads) *grads = m->grads ? pb : 0;
    if (optim) *optim = m->cfg.trainable ? 2 * pb : 0;
    if (acts) *acts = m->acts_bytes;
}

rlhf_status model_alloc_moments(rlhf_model *m) {
    if (!m->cfg.trainable) return RLHF_ERR(RLHF_ERR_ARG, "model is not trainable");
    if (!m->adam_m) RLHF_TRY(m->be->alloc(m->be, (void **)&m->adam_m, (size_t)m->P * sizeof(float)));
    if (!m->adam_v) RLHF_TRY(m->be->alloc(m->be, (void **)&m->adam_v, (size_t)m->P * sizeof(float)));
    return RLHF_OK;
}

rlhf_status rlhf_model_init_random(rlhf_model *m, uint64_t seed) {
    float *host = NULL;
    RLHF_TRY(rlhf_alloc((void **)&host, (size_t)m->P * sizeof(float)));
    rlhf_rng rng;
    const float std_out = 0.02f / sqrtf(2.0f * (float)m->cfg.n_layer);
    for (int i = 0; i < RLHF_P_COUNT; i++) {
        const rlhf_param_info *p = &m->table[i];
        /* One stream per tensor kind: adding a kind never shifts the others' values. */
        rlhf_rng_seed(&rng, seed, (uint64_t)i + 1);
        float *w = host + p->offset;
        bool norm = (i == RLHF_P_ATTN_NORM || i == RLHF_P_FFN_NORM || i == RLHF_P_NORM);
        float std = (i == RLHF_P_WO || i == RLHF_P_W2) ? std_out : 0.02f;
        for (int64_t j = 0; j < p->numel; j++) w[j] = norm ? 1.0f : std * rlhf_rng_normal(&rng);
    }
    rlhf_status st = rlhf_model_set_params(m, host);
    rlhf_free(host);
    return st;
}

rlhf_status rlhf_model_set_params(rlhf_model *m, const float *host) {
    return m->be->to_device(m->be, m->params, host, (size_t)m->P * sizeof(float));
}

rlhf_status rlhf_model_get_params(const rlhf_model *m, float *host) {
    return m->be->to_host(m->be, host, m->params, (size_t)m->P * sizeof(float));
}

rlhf_status rlhf_model_get_grads(const rlhf_model *m, float *host) {
    if (!m->grads) return RLHF_ERR(RLHF_ERR_ARG, "model is not trainable: no gradients");
    return m->be->to_host(m->be, host, m->grads, (size_t)m->P * sizeof(float));
}

rlhf_status rlhf_model_zero_grad(rlhf_model *m) {
    if (!m->grads) return RLHF_ERR(RLHF_ERR_ARG, "model is not trainable: no gradients");
    return m->be->zero(m->be, m->grads, (size_t)m->P * sizeof(float));
}

/* ---- packing ---- */

rlhf_status rlhf_model_set_segments(rlhf_model *m, const int32_t *seg_start, int32_t B,
                                    int32_t T) {
    if (!seg_start) {
        m->packed = false;
        return RLHF_OK;
    }
    if (!m->acts_mem || B <= 0 || T <= 0 || B > m->max_B || T > m->max_T)
        return RLHF_ERR(RLHF_ERR_ARG, "set_segments: shape (%d,%d) exceeds the model's (%d,%d)", B,
                        T, m->max_B, m->max_T);
    const int64_t N = (int64_t)B * T;
    int32_t *pos = malloc((size_t)N * sizeof *pos); /* (B,T) host */
    if (!pos) return RLHF_ERR(RLHF_ERR_NOMEM, "set_segments: out of memory");
    for (int32_t b = 0; b < B; b++)
        for (int32_t t = 0; t < T; t++) {
            const int32_t s = seg_start[(int64_t)b * T + t];
            /* a segment is a run of consecutive positions sharing one start */
            bool ok = s >= 0 && s <= t && (s == t || (t > 0 && seg_start[(int64_t)b * T + t - 1] == s));
            if (!ok) {
                free(pos);
                m->packed = false;
                return RLHF_ERR(RLHF_ERR_ARG, "set_segments: seg_start[%d,%d] = %d is not the "
                                "start of a segment containing position %d", b, t, s, t);
            }
            pos[(int64_t)b * T + t] = t - s;
        }
    rlhf_status st = m->be->to_device(m->be, m->a.seg, seg_start, (size_t)N * sizeof(int32_t));
    if (st == RLHF_OK) st = m->be->to_device(m->be, m->a.pos, pos, (size_t)N * sizeof(int32_t));
    free(pos);
    m->packed = st == RLHF_OK;
    m->seg_B = B;
    m->seg_T = T;
    m->have_forward = false;
    return st;
}

/* ---- forward ---- */

static rlhf_status check_tokens(const rlhf_model *m, const int32_t *tokens, int64_t n,
                                bool allow_negative, const char *what) {
    for (int64_t i = 0; i < n; i++) {
        if (tokens[i] >= m->cfg.vocab_size || (tokens[i] < 0 && !allow_negative))
            return RLHF_ERR(RLHF_ERR_ARG, "%s[%lld] = %d is outside the vocabulary [0, %d)", what,
                            (long long)i, tokens[i], m->cfg.vocab_size);
    }
    return RLHF_OK;
}

rlhf_status rlhf_model_forward(rlhf_model *m, const int32_t *tokens, int32_t B, int32_t T) {
    const rlhf_backend *be = m->be;
    const rlhf_model_config *c = &m->cfg;
    if (B <= 0 || T <= 0 || B > m->max_B || T > m->max_T)
        return RLHF_ERR(RLHF_ERR_ARG, "forward: shape (%d,%d) exceeds the model's (%d,%d)", B, T,
                        m->max_B, m->max_T);
    if (m->packed && (B != m->seg_B || T != m->seg_T))
        return RLHF_ERR(RLHF_ERR_ARG, "forward: shape (%d,%d) differs from the segments set for "
                        "(%d,%d); call rlhf_model_set_segments again (or with NULL)", B, T,
                        m->seg_B, m->seg_T);
    RLHF_TRY(check_tokens(m, tokens, (int64_t)B * T, false, "tokens"));
    const int32_t *seg = m->packed ? m->a.seg : NULL; /* (B,T) or NULL */
    const int32_t *rpos = m->packed ? m->a.pos : NULL; /* (B,T) or NULL: row % T */
    const int64_t N = (int64_t)B * T;
    const int32_t C = c->dim, FF = c->hidden_dim, NH = c->n_head, NKV = c->n_head_kv;
    const int32_t HS = C / NH, KVD = NKV * HS, L = c->n_layer;
    const bool save = c->trainable;
    rlhf_acts *a = &m->a;
    float *p = m->params;
    m->B = B;
    m->T = T;
    m->have_forward = false;

    RLHF_TRY(be->to_device(be, a->tokens, tokens, (size_t)N * sizeof(int32_t)));
    RLHF_TRY(BE_CALL(be, embed_fwd, a->res, a->tokens, p, N, C));
    for (int32_t l = 0; l < L; l++) {
        const int64_t ls = save ? l : 0; /* saved-layer index */
        float *x = a->res + ls * N * C;         /* (B,T,C) */
        float *xmid = a->res_mid + ls * N * C;  /* (B,T,C) */
        float *xout = a->res + (save ? l + 1 : 0) * N * C; /* (B,T,C) */
        float *xn = a->xn + ls * N * C, *rstd = a->rstd + ls * N;
        float *q = a->q + ls * N * C, *k = a->k + ls * N * KVD, *v = a->v + ls * N * KVD;
        float *att = a->att + ls * N * C, *lse = a->lse + ls * N * NH;
        float *xn2 = a->xn2 + ls * N * C, *rstd2 = a->rstd2 + ls * N;
        float *h1 = a->h1 + ls * N * FF, *h3 = a->h3 + ls * N * FF, *g = a->g + ls * N * FF;

        RLHF_TRY(BE_CALL(be, rmsnorm_fwd, xn, rstd, x, model_tensor(m, p, RLHF_P_ATTN_NORM, l), N,
                         C, c->norm_eps));
        RLHF_TRY(BE_CALL(be, matmul_fwd, q, xn, model_tensor(m, p, RLHF_P_WQ, l), N, C, C, 0.0f));
        RLHF_TRY(BE_CALL(be, matmul_fwd, k, xn, model_tensor(m, p, RLHF_P_WK, l), N, C, KVD, 0.0f));
        RLHF_TRY(BE_CALL(be, matmul_fwd, v, xn, model_tensor(m, p, RLHF_P_WV, l), N, C, KVD, 0.0f));
        RLHF_TRY(BE_CALL(be, rope_fwd, q, rpos, N, T, NH, HS, c->rope_theta));
        RLHF_TRY(BE_CALL(be, rope_fwd, k, rpos, N, T, NKV, HS, c->rope_theta));
        RLHF_TRY(BE_CALL(be, attention_fwd, att, lse, q, k, v, seg, B, T, NH, NKV, HS));
        if (xmid != x) RLHF_TRY(be->copy(be, xmid, x, (size_t)N * C * sizeof(float)));
        RLHF_TRY(BE_CALL(be, matmul_fwd, xmid, att, model_tensor(m, p, RLHF_P_WO, l), N, C, C, 1.0f));

        RLHF_TRY(BE_CALL(be, rmsnorm_fwd, xn2, rstd2, xmid, model_tensor(m, p, RLHF_P_FFN_NORM, l),
                         N, C, c->norm_eps));
        RLHF_TRY(BE_CALL(be, matmul_fwd, h1, xn2, model_tensor(m, p, RLHF_P_W1, l), N, C, FF, 0.0f));
        RLHF_TRY(BE_CALL(be, matmul_fwd, h3, xn2, model_tensor(m, p, RLHF_P_W3, l), N, C, FF, 0.0f));
        RLHF_TRY(BE_CALL(be, swiglu_fwd, g, h1, h3, N * FF));
        if (xout != xmid) RLHF_TRY(be->copy(be, xout, xmid, (size_t)N * C * sizeof(float)));
        RLHF_TRY(BE_CALL(be, matmul_fwd, xout, g, model_tensor(m, p, RLHF_P_W2, l), N, FF, C, 1.0f));
    }
    float *xlast = a->res + (save ? L : 0) * N * C;
    RLHF_TRY(BE_CALL(be, rmsnorm_fwd, a->xf, a->rstdf, xlast, model_tensor(m, p, RLHF_P_NORM, 0), N,
                     C, c->norm_eps));
    const int32_t OUT = c->head == RLHF_HEAD_LM ? c->vocab_size : 1;
    RLHF_TRY(BE_CALL(be, matmul_fwd, a->out, a->xf, model_head_weight(m, p), N, C, OUT, 0.0f));
    m->have_forward = true;
    return RLHF_OK;
}

rlhf_status rlhf_model_get_logits(const rlhf_model *m, float *logits) {
    if (!m->have_forward || m->cfg.head != RLHF_HEAD_LM)
        return RLHF_ERR(RLHF_ERR_ARG, "get_logits: needs a preceding LM-head forward");
    return m->be->to_host(m->be, logits, m->a.out,
                          (size_t)m->B * m->T * m->cfg.vocab_size * sizeof(float));
}

rlhf_status rlhf_model_values(const rlhf_model *m, float *values) {
    if (!m->have_forward || m->cfg.head != RLHF_HEAD_SCALAR)
        return RLHF_ERR(RLHF_ERR_ARG, "values: needs a preceding scalar-head forward");
    return m->be->to_host(m->be, values, m->a.out, (size_t)m->B * m->T * sizeof(float));
}

/* Uploads targets and computes logp/lse on the backend (LM head). */
static rlhf_status logprobs_dev(rlhf_model *m, const int32_t *targets) {
    if (!m->have_forward || m->cfg.head != RLHF_HEAD_LM)
        return RLHF_ERR(RLHF_ERR_ARG, "logprobs: needs a preceding LM-head forward");
    const int64_t N = (int64_t)m->B * m->T;
    RLHF_TRY(check_tokens(m, targets, N, true, "targets"));
    RLHF_TRY(m->be->to_device(m->be, m->a.targets, targets, (size_t)N * sizeof(int32_t)));
    return BE_CALL(m->be, logprob_fwd, m->a.logp, m->a.lse_out, m->a.out, m->a.targets, N,
                   m->cfg.vocab_size);
}

rlhf_status rlhf_model_logprobs(rlhf_model *m, const int32_t *targets, float *logp) {
    RLHF_TRY(logprobs_dev(m, targets));
    return m->be->to_host(m->be, logp, m->a.logp, (size_t)m->B * m->T * sizeof(float));
}

/* ---- backward ---- */

/* Backward from d(out) already in a->out: head, final norm, layers, embedding. */
static rlhf_status backward_from_out(rlhf_model *m) {
    const rlhf_backend *be = m->be;
    const rlhf_model_config *c = &m->cfg;
    const int32_t B = m->B, T = m->T;
    const int64_t N = (int64_t)B * T;
    const int32_t C = c->dim, FF = c->hidden_dim, NH = c->n_head, NKV = c->n_head_kv;
    const int32_t HS = C / NH, KVD = NKV * HS, L = c->n_layer;
    rlhf_acts *a = &m->a;
    float *p = m->params, *gr = m->grads;
    const int32_t OUT = c->head == RLHF_HEAD_LM ? c->vocab_size : 1;
    const int32_t *seg = m->packed ? a->seg : NULL; /* (B,T) or NULL */
    const int32_t *rpos = m->packed ? a->pos : NULL;

    /* head: dxf = dout @ W, dW += dout^T xf (tied: into the embedding gradient) */
    RLHF_TRY(BE_CALL(be, matmul_bwd, a->dxn, model_head_weight(m, gr), a->out, a->xf,
                     model_head_weight(m, p), N, C, OUT, 0.0f));
    RLHF_TRY(be->zero(be, a->dres, (size_t)N * C * sizeof(float)));
    RLHF_TRY(BE_CALL(be, rmsnorm_bwd, a->dres, model_tensor(m, gr, RLHF_P_NORM, 0), a->dxn,
                     a->res + (int64_t)L * N * C, model_tensor(m, p, RLHF_P_NORM, 0), a->rstdf, N, C));
    for (int32_t l = L - 1; l >= 0; l--) {
        float *x = a->res + l * N * C, *xmid = a->res_mid + l * N * C;
        float *xn = a->xn + l * N * C, *rstd = a->rstd + l * N;
        float *q = a->q + l * N * C, *k = a->k + l * N * KVD, *v = a->v + l * N * KVD;
        float *att = a->att + l * N * C, *lse = a->lse + l * N * NH;
        float *xn2 = a->xn2 + l * N * C, *rstd2 = a->rstd2 + l * N;
        float *h1 = a->h1 + l * N * FF, *h3 = a->h3 + l * N * FF, *g = a->g + l * N * FF;

        /* feed-forward block: x_out = x_mid + g @ w2^T; dres is d(x_out) and flows on to x_mid */
        RLHF_TRY(BE_CALL(be, matmul_bwd, a->dg, model_tensor(m, gr, RLHF_P_W2, l), a->dres, g,
                         model_tensor(m, p, RLHF_P_W2, l), N, FF, C, 0.0f));
        RLHF_TRY(BE_CALL(be, swiglu_bwd, a->dh1, a->dh3, a->dg, h1, h3, N * FF));
        RLHF_TRY(BE_CALL(be, matmul_bwd, a->dxn, model_tensor(m, gr, RLHF_P_W1, l), a->dh1, xn2,
                         model_tensor(m, p, RLHF_P_W1, l), N, C, FF, 0.0f));
        RLHF_TRY(BE_CALL(be, matmul_bwd, a->dxn, model_tensor(m, gr, RLHF_P_W3, l), a->dh3, xn2,
                         model_tensor(m, p, RLHF_P_W3, l), N, C, FF, 1.0f));
        RLHF_TRY(BE_CALL(be, rmsnorm_bwd, a->dres, model_tensor(m, gr, RLHF_P_FFN_NORM, l), a->dxn,
                         xmid, model_tensor(m, p, RLHF_P_FFN_NORM, l), rstd2, N, C));

        /* attention block: x_mid = x + att @ wo^T; dres is now d(x_mid) */
        RLHF_TRY(BE_CALL(be, matmul_bwd, a->datt, model_tensor(m, gr, RLHF_P_WO, l), a->dres, att,
                         model_tensor(m, p, RLHF_P_WO, l), N, C, C, 0.0f));
        RLHF_TRY(BE_CALL(be, attention_bwd, a->dq, a->dk, a->dv, a->datt, q, k, v, att, lse, seg,
                         B, T, NH, NKV, HS));
        RLHF_TRY(BE_CALL(be, rope_bwd, a->dq, rpos, N, T, NH, HS, c->rope_theta));
        RLHF_TRY(BE_CALL(be, rope_bwd, a->dk, rpos, N, T, NKV, HS, c->rope_theta));
        RLHF_TRY(BE_CALL(be, matmul_bwd, a->dxn, model_tensor(m, gr, RLHF_P_WQ, l), a->dq, xn,
                         model_tensor(m, p, RLHF_P_WQ, l), N, C, C, 0.0f));
        RLHF_TRY(BE_CALL(be, matmul_bwd, a->dxn, model_tensor(m, gr, RLHF_P_WK, l), a->dk, xn,
                         model_tensor(m, p, RLHF_P_WK, l), N, C, KVD, 1.0f));
        RLHF_TRY(BE_CALL(be, matmul_bwd, a->dxn, model_tensor(m, gr, RLHF_P_WV, l), a->dv, xn,
                         model_tensor(m, p, RLHF_P_WV, l), N, C, KVD, 1.0f));
        RLHF_TRY(BE_CALL(be, rmsnorm_bwd, a->dres, model_tensor(m, gr, RLHF_P_ATTN_NORM, l), a->dxn,
                         x, model_tensor(m, p, RLHF_P_ATTN_NORM, l), rstd, N, C));
    }
    RLHF_TRY(BE_CALL(be, embed_bwd, model_tensor(m, gr, RLHF_P_TOK_EMB, 0), a->dres, a->tokens, N,
                     C, c->vocab_size));
    m->have_forward = false;
    return RLHF_OK;
}

static rlhf_status check_backward(const rlhf_model *m, rlhf_head head) {
    if (!m->cfg.trainable) return RLHF_ERR(RLHF_ERR_ARG, "backward: model is not trainable");
    if (!m->have_forward || m->cfg.head != head)
        return RLHF_ERR(RLHF_ERR_ARG, "backward: needs a preceding forward with the %s head",
                        head == RLHF_HEAD_LM ? "LM" : "scalar");
    return RLHF_OK;
}

rlhf_status rlhf_model_backward_logprobs(rlhf_model *m, const int32_t *targets, const float *dlogp) {
    RLHF_TRY(check_backward(m, RLHF_HEAD_LM));
    const int64_t N = (int64_t)m->B * m->T;
    RLHF_TRY(logprobs_dev(m, targets));
    RLHF_TRY(m->be->to_device(m->be, m->a.dlogp, dlogp, (size_t)N * sizeof(float)));
    RLHF_TRY(BE_CALL(m->be, logprob_bwd, m->a.out, m->a.out, m->a.lse_out, m->a.dlogp,
                     m->a.targets, N, m->cfg.vocab_size));
    return backward_from_out(m);
}

rlhf_status rlhf_model_backward_values(rlhf_model *m, const float *dvalues) {
    RLHF_TRY(check_backward(m, RLHF_HEAD_SCALAR));
    RLHF_TRY(m->be->to_device(m->be, m->a.out, dvalues, (size_t)m->B * m->T * sizeof(float)));
    return backward_from_out(m);
}

rlhf_status rlhf_model_lm_step(rlhf_model *m, const int32_t *tokens, const int32_t *targets,
                               const float *mask, int32_t B, int32_t T, float dloss_scale,
                               float *loss) {
    if (m->cfg.head != RLHF_HEAD_LM) return RLHF_ERR(RLHF_ERR_ARG, "lm_step: model has no LM head");
    const int64_t N = (int64_t)B * T;
    float *logp = NULL;
    rlhf_status st;
    RLHF_TRY(rlhf_model_forward(m, tokens, B, T));
    RLHF_TRY(rlhf_alloc((void **)&logp, (size_t)N * sizeof(float)));
    RLHF_TRY_GOTO(st, rlhf_model_logprobs(m, targets, logp), done);
    double sum = 0, wsum = 0;
    for (int64_t i = 0; i < N; i++) {
        double w = (mask ? mask[i] : 1.0) * (targets[i] >= 0);
        sum += -w * logp[i];
        wsum += w;
    }
    if (loss) *loss = wsum > 0 ? (float)(sum / wsum) : 0.0f;
    if (dloss_scale != 0.0f) {
        /* reuse the logp buffer for d(loss)/d(logp) = -mask * scale / sum(mask) */
        for (int64_t i = 0; i < N; i++) {
            double w = (mask ? mask[i] : 1.0) * (targets[i] >= 0);
            logp[i] = wsum > 0 ? (float)(-w * dloss_scale / wsum) : 0.0f;
        }
        RLHF_TRY_GOTO(st, check_backward(m, RLHF_HEAD_LM), done);
        RLHF_TRY_GOTO(st, m->be->to_device(m->be, m->a.dlogp, logp, (size_t)N * sizeof(float)),
                      done);
        RLHF_TRY_GOTO(st, BE_CALL(m->be, logprob_bwd, m->a.out, m->a.out, m->a.lse_out, m->a.dlogp,
                                  m->a.targets, N, m->cfg.vocab_size), done);
        RLHF_TRY_GOTO(st, backward_from_out(m), done);
    }
    st = RLHF_OK;
done:
    rlhf_free(logp);
    return st;
}
