/* backend_impl.h: the backend table. model.c and sampler.c call ops only through it.
 *
 * A backend (cpu/, later cuda/) fills one rlhf_backend with its memory functions and ops. The CPU
 * op and the CUDA op of the same name share the signature and the contract written here. Every
 * pointer argument of an op is backend memory unless marked (host). Ops return RLHF_OK or a status
 * with the error recorded; a backend that lacks an op leaves it NULL and be_missing() reports it
 * (never a silent fallback).
 *
 * Accumulation rules (so gradient accumulation and residual streams need no extra copies):
 *   - parameter gradients (dw, dwte, ...) are always ACCUMULATED (+=);
 *   - input gradients follow each op's comment: "overwrite", "accumulate", or a beta argument;
 *   - beta 0 ignores the old contents (as BLAS does: stale NaN/Inf never leak through).
 * In place: rmsnorm_fwd (out == inp), logprob_bwd (dlogits == logits) and the elementwise ops
 * with out == an input are allowed; nothing else may alias.
 */
#ifndef RLHF_BACKEND_IMPL_H
#define RLHF_BACKEND_IMPL_H

#include "rlhf.h"

struct rlhf_backend {
    const char *name;
    int device; /* CUDA ordinal; -1 for CPU */
    void *state; /* backend-private (streams, handles) */

    /* ---- memory ---- */
    rlhf_status (*alloc)(const rlhf_backend *be, void **p, size_t bytes); /* zero-filled */
    void (*free)(const rlhf_backend *be, void *p);                        /* NULL-safe */
    rlhf_status (*to_device)(const rlhf_backend *be, void *dst, const void *host_src, size_t bytes);
    rlhf_status (*to_host)(const rlhf_backend *be, void *host_dst, const void *src, size_t bytes);
    rlhf_status (*zero)(const rlhf_backend *be, void *p, size_t bytes);
    rlhf_status (*copy)(const rlhf_backend *be, void *dst, const void *src, size_t bytes);
    rlhf_status (*sync)(const rlhf_backend *be);

    /* ---- ops ---- */

    /* out[i,:] = wte[tokens[i],:]. out (N,C), tokens (N), wte (V,C). Tokens are checked by caller. */
    rlhf_status (*embed_fwd)(const rlhf_backend *be, float *out, const int32_t *tokens,
                             const float *wte, int64_t N, int32_t C);
    /* dwte[tokens[i],:] += dout[i,:] (accumulate; deterministic order). dwte (V,C), dout (N,C). */
    rlhf_status (*embed_bwd)(const rlhf_backend *be, float *dwte, const float *dout,
                             const int32_t *tokens, int64_t N, int32_t C, int32_t V);

    /* out = beta*out + inp @ w^T.  out (N,OC), inp (N,IC), w (OC,IC). beta 0 or 1. */
    rlhf_status (*matmul_fwd)(const rlhf_backend *be, float *out, const float *inp, const float *w,
                              int64_t N, int32_t IC, int32_t OC, float beta);
    /* dinp = beta*dinp + dout @ w (skipped when dinp NULL); dw += dout^T @ inp (skipped when dw
     * NULL). dinp (N,IC), dw (OC,IC), dout (N,OC), inp (N,IC), w (OC,IC). */
    rlhf_status (*matmul_bwd)(const rlhf_backend *be, float *dinp, float *dw, const float *dout,
                              const float *inp, const float *w, int64_t N, int32_t IC, int32_t OC,
                              float beta);

    /* RMSNorm: rstd[i] = 1/sqrt(mean(inp[i,:]^2) + eps); out[i,c] = inp[i,c]*rstd[i]*w[c].
     * out (N,C), rstd (N) saved for backward (may be NULL), inp (N,C), w (C). Sums in float. */
    rlhf_status (*rmsnorm_fwd)(const rlhf_backend *be, float *out, float *rstd, const float *inp,
                               const float *w, int64_t N, int32_t C, float eps);
    /* dinp += d/dinp (accumulate), dw += d/dw (accumulate). dout, inp (N,C), rstd (N). */
    rlhf_status (*rmsnorm_bwd)(const rlhf_backend *be, float *dinp, float *dw, const float *dout,
                               const float *inp, const float *w, const float *rstd, int64_t N,
                               int32_t C);

    /* RoPE in place on x (N,nh,HS), interleaved pairs (2i, 2i+1) of each head rotated by
     * angle pos*theta^(-2i/HS), computed in float exactly as llama2.c does. pos (N) gives each
     * row's position; pos NULL means row % T. */
    rlhf_status (*rope_fwd)(const rlhf_backend *be, float *x, const int32_t *pos, int64_t N,
                            int32_t T, int32_t nh, int32_t HS, float theta);
    /* The inverse rotation applied to the gradient dx (N,nh,HS) in place. */
    rlhf_status (*rope_bwd)(const rlhf_backend *be, float *dx, const int32_t *pos, int64_t N,
                            int32_t T, int32_t nh, int32_t HS, float theta);

    /* Causal self-attention with GQA (query head h reads kv head h / (NH/NKV)), scale 1/sqrt(HS).
     * q (B,T,NH,HS), k, v (B,T,NKV,HS), out (B,T,NH,HS), lse (B,NH,T) the log-sum-exp of each
     * row's scaled scores, saved for backward (probabilities are recomputed, never stored).
     * seg_start (B,T) may be NULL; else position t attends only to [seg_start[b,t], t] (packing). */
    rlhf_status (*attention_fwd)(const rlhf_backend *be, float *out, float *lse, const float *q,
                                 const float *k, const float *v, const int32_t *seg_start,
                                 int32_t B, int32_t T, int32_t NH, int32_t NKV, int32_t HS);
    /* dq, dk, dv overwritten. dout, out (B,T,NH,HS), lse (B,NH,T) from the forward. */
    rlhf_status (*attention_bwd)(const rlhf_backend *be, float *dq, float *dk, float *dv,
                                 const float *dout, const float *q, const float *k, const float *v,
                                 const float *out, const float *lse, const int32_t *seg_start,
                                 int32_t B, int32_t T, int32_t NH, int32_t NKV, int32_t HS);

    /* KV cache store: kc[slots[i], pos[i], :] = k[i,:]; same for v. kc, vc (S,Tmax,KVD), k, v (n,KVD). */
    rlhf_status (*kv_store)(const rlhf_backend *be, float *kc, float *vc, const float *k,
                            const float *v, const int32_t *slots, const int32_t *pos, int32_t n,
                            int32_t Tmax, int32_t KVD);
    /* Decode attention: row i (query q[i] (NH,HS)) attends to kc/vc[slots[i], 0..pos[i]].
     * out (n,NH,HS), q (n,NH,HS), kc, vc (S,Tmax,NKV,HS). */
    rlhf_status (*attention_decode)(const rlhf_backend *be, float *out, const float *q,
                                    const float *kc, const float *vc, const int32_t *slots,
                                    const int32_t *pos, int32_t n, int32_t Tmax, int32_t NH,
                                    int32_t NKV, int32_t HS);

    /* SwiGLU: out = silu(h1) * h3, silu(x) = x/(1+exp(-x)). All (n). */
    rlhf_status (*swiglu_fwd)(const rlhf_backend *be, float *out, const float *h1,
                              const float *h3, int64_t n);
    /* dh1, dh3 overwritten. dout, h1, h3 (n). */
    rlhf_status (*swiglu_bwd)(const rlhf_backend *be, float *dh1, float *dh3, const float *dout,
                              const float *h1, const float *h3, int64_t n);

    /* y += x. (n) */
    rlhf_status (*add)(const rlhf_backend *be, float *y, const float *x, int64_t n);
    /* x *= s. (n) */
    rlhf_status (*scale)(const rlhf_backend *be, float *x, float s, int64_t n);

    /* Gathered log-softmax: lse[i] = logsumexp(logits[i,:]); logp[i] = logits[i,t_i] - lse[i]
     * for t_i = targets[i] >= 0, else 0. logits (N,V), targets (N), logp, lse (N). */
    rlhf_status (*logprob_fwd)(const rlhf_backend *be, float *logp, float *lse, const float *logits,
                               const int32_t *targets, int64_t N, int32_t V);
    /* dlogits[i,j] = dlogp[i] * ([j == t_i] - exp(logits[i,j] - lse[i])); rows with t_i < 0 or
     * dlogp[i] == 0 become zero. Overwrites; dlogits may alias logits. dlogp (N). */
    rlhf_status (*logprob_bwd)(const rlhf_backend *be, float *dlogits, const float *logits,
                               const float *lse, const float *dlogp, const int32_t *targets,
                               int64_t N, int32_t V);

    /* Token selection for batched decoding, one row per sequence. For row i: with temperature
     * 0, the first maximum of logits[i,:]; otherwise a draw from softmax(logits/temperature)
     * restricted to the top_k best (top_k 0 = all) and then to the smallest set of best tokens
     * whose mass reaches top_p of what is left (top_p 1 = all), using rng[i] (advanced).
     * logp[i] = log softmax(logits[i,:]/t)[token] with t = temperature (1 when greedy), before
     * truncation. tokens, logp (n), logits (n,V) (may be used as scratch), rng (n) HOST array. */
    rlhf_status (*sample)(const rlhf_backend *be, int32_t *tokens, float *logp, float *logits,
                          rlhf_rng *rng, int32_t n, int32_t V, float temperature, int32_t top_k,
                          float top_p);

    /* *out (host) = sum of x[i]^2 in double, in an order fixed by n and the thread count. */
    rlhf_status (*sumsq)(const rlhf_backend *be, double *out, const float *x, int64_t n);
    /* AdamW, decoupled decay, bias-corrected: g' = g*grad_scale; m = b1 m + (1-b1) g';
     * v = b2 v + (1-b2) g'^2; p -= lr*(wd*p + (m/bc1) / (sqrt(v/bc2) + eps)).
     * bc1 = 1-b1^t, bc2 = 1-b2^t. All (n). */
    rlhf_status (*adamw)(const rlhf_backend *be, float *p, const float *g, float *m, float *v,
                         int64_t n, float lr, float b1, float b2, float eps, float wd,
                         float grad_scale, float bc1, float bc2);
};

/* The CPU backend (cpu/backend.c). Cannot fail. */
const rlhf_backend *rlhf_backend_cpu(void);

/* The uniforms one `sample` call consumes, in the CPU's order (cpu/sample.c): u[i] =
 * rlhf_rng_uniform(&rng[i]) when temperature > 0 (one draw per row), else 0 and rng[i] untouched.
 * A backend that draws on the host (cuda/sample.cu) takes its uniforms from here, so its RNG
 * streams advance exactly as the CPU's. u (n) host. */
void be_sample_uniforms(rlhf_rng *rng, int32_t n, float temperature, float *u);

/* Returns RLHF_ERR_UNSUPPORTED naming the op and backend when fn is NULL. */
#define BE_CALL(be, op, ...)                                                                       \
    ((be)->op ? (be)->op((be), __VA_ARGS__) : be_missing((be), #op, __FILE__, __LINE__))
rlhf_status be_missing(const rlhf_backend *be, const char *op, const char *file, int line);

#endif /* RLHF_BACKEND_IMPL_H */
