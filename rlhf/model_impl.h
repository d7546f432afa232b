/* model_impl.h: the model's internal layout, shared by model.c, optim.c, train_state.c and
 * sampler.c. Not part of the public API. */
#ifndef RLHF_MODEL_IMPL_H
#define RLHF_MODEL_IMPL_H

#include "backend_impl.h"
#include "rlhf.h"

/* Training activations. Per-layer arrays hold L layers when the model is trainable (saved for
 * backward) and one layer otherwise (reused by every layer). */
typedef struct rlhf_acts {
    int32_t *tokens;  /* (B,T) */
    int32_t *targets; /* (B,T) */
    int32_t *seg;     /* (B,T) packing: first position of each token's example (seg_start) */
    int32_t *pos;     /* (B,T) packing: RoPE position of each token, t - seg[b,t] */
    float *res;       /* (L+1,B,T,C) residual stream entering each layer; [L] enters final norm */
    float *res_mid;   /* (L,B,T,C) residual after the attention block */
    float *xn;        /* (L,B,T,C) attention-norm output */
    float *rstd;      /* (L,B,T) */
    float *q;         /* (L,B,T,C) queries after RoPE */
    float *k, *v;     /* (L,B,T,NKV*HS) keys after RoPE, values */
    float *att;       /* (L,B,T,C) attention output before wo */
    float *lse;       /* (L,B,NH,T) attention log-sum-exp */
    float *xn2;       /* (L,B,T,C) ffn-norm output */
    float *rstd2;     /* (L,B,T) */
    float *h1, *h3;   /* (L,B,T,FF) w1 and w3 projections */
    float *g;         /* (L,B,T,FF) silu(h1)*h3 */
    float *xf;        /* (B,T,C) final-norm output */
    float *rstdf;     /* (B,T) */
    float *out;       /* (B,T,V) logits (LM) or (B,T) values (scalar); becomes d(out) in backward */
    float *logp;      /* (B,T) gathered log-probs */
    float *lse_out;   /* (B,T) log-sum-exp of each logits row */
    float *dlogp;     /* (B,T) */
    /* backward scratch (trainable only), reused by every layer */
    float *dres;      /* (B,T,C) gradient of the residual stream */
    float *dxn;       /* (B,T,C) */
    float *datt;      /* (B,T,C) */
    float *dq;        /* (B,T,C) */
    float *dk, *dv;   /* (B,T,NKV*HS) */
    float *dg, *dh1, *dh3; /* (B,T,FF) */
} rlhf_acts;

struct rlhf_model {
    rlhf_model_config cfg;
    const rlhf_backend *be;
    int32_t max_B, max_T;
    rlhf_param_info table[RLHF_P_COUNT];
    int64_t P;
    float *params; /* (P) */
    float *grads;  /* (P), trainable only */
    float *adam_m, *adam_v; /* (P), allocated at the first optimizer step or state load */
    int64_t step;
    void *acts_mem; /* one allocation holding every rlhf_acts array */
    size_t acts_bytes;
    rlhf_acts a;
    int32_t B, T;      /* shape of the last forward */
    bool have_forward; /* a forward ran since the last backward */
    bool packed;       /* rlhf_model_set_segments is in force for shape (seg_B, seg_T) */
    int32_t seg_B, seg_T;
};

/* Pointer to parameter kind id (layer l for per-layer kinds) inside buf (params or grads). */
static inline float *model_tensor(const struct rlhf_model *m, float *buf, rlhf_param_id id,
                                  int32_t l) {
    const rlhf_param_info *p = &m->table[id];
    return buf + p->offset + (p->per_layer ? (int64_t)l * p->rows * p->cols : 0);
}

/* The LM head's weight (V,C): lm_head, or the token embedding when tied. */
static inline float *model_head_weight(const struct rlhf_model *m, float *buf) {
    if (m->cfg.head == RLHF_HEAD_LM && m->cfg.tied_head) return buf + m->table[RLHF_P_TOK_EMB].offset;
    return buf + m->table[RLHF_P_HEAD].offset;
}

rlhf_status model_alloc_moments(struct rlhf_model *m);

#endif
