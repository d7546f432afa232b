/* attention.c: causal grouped-query self-attention, the KV cache store and decode attention (CPU).
 *
 * Shapes: q (B,T,NH,HS), k, v (B,T,NKV,HS), out (B,T,NH,HS), lse (B,NH,T). Query head h reads kv
 * head h / (NH/NKV). Row (b,t) attends to keys j in [s0, t], s0 = seg_start[b,t] (0 when
 * seg_start is NULL; clamped into [0, t]).
 *
 * Forward, per (b, h, t), as llama2.c computes attention (two-pass softmax):
 *     s_j = dot(q_t, k_j) / sqrtf(HS);  m = max_j s_j;  e_j = expf(s_j - m);  sum = sum_j e_j
 *     P_j = e_j / sum;  out_t = sum_j P_j v_j;  lse_t = m + logf(sum)
 * Saved for backward: lse only (probabilities are recomputed, never stored); the caller keeps
 * q, k, v, out.
 * Backward (flash-attention style), scale = 1/sqrt(HS), dq, dk, dv overwritten:
 *     P_tj = exp(s_tj - lse_t);  D_t = dot(dout_t, out_t);  dS_tj = P_tj (dot(dout_t, v_j) - D_t)
 *     dq_t = scale sum_j dS_tj k_j;  dk_j = scale sum_{h,t} dS_tj q_t;  dv_j = sum_{h,t} P_tj
 * dout_t The backward is parallel over (b, kv head): one thread owns the dk/dv rows of a kv head
 * and loops over the query heads of its group and their rows in a fixed order, so the result does
 * not depend on the thread count.
 *
 * KV cache: kc, vc (S,Tmax,NKV,HS); kv_store writes row i's k/v at [slots[i], pos[i]]. Positions
 * outside [0, Tmax) and negative slots are RLHF_ERR_ARG (nothing written); slots < S is the
 * caller's to ensure.
 * Decode: row i (query (NH,HS)) attends to cache rows 0..pos[i] of slot slots[i], with the same
 * per-row code as the forward (so a decode row equals the forward row bitwise).
 */
#include <omp.h>

#include "cpu_impl.h"

/* One query row against keys j0..j1 (inclusive) at krow(j) = kb + j*stride (same for v).
 * Writes o (HS) and returns the log-sum-exp of the scaled scores. att: scratch (j1-j0+1). */
static float attend_row(float *restrict o, const float *restrict q, const float *kb,
                        const float *vb, int64_t stride, int64_t j0, int64_t j1, int32_t HS,
                        float *restrict att) {
    float sq = sqrtf((float)HS);
    int64_t n = j1 - j0 + 1;
    float maxv = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        float s = cpu_dot(q, kb + (j0 + j) * stride, HS) / sq;
        att[j] = s;
        if (s > maxv) maxv = s;
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        att[j] = expf(att[j] - maxv);
        sum += att[j];
    }
    for (int64_t j = 0; j < n; j++)
        att[j] /= sum;
    for (int32_t c = 0; c < HS; c++)
        o[c] = 0.0f;
    for (int64_t j = 0; j < n; j++)
        cpu_axpy(o, att[j], vb + (j0 + j) * stride, HS);
    return maxv + logf(sum);
}

static inline int64_t seg_lo(const int32_t *seg_start, int64_t bt, int64_t t) {
    if (!seg_start) return 0;
    int64_t s = seg_start[bt];
    return s < 0 ? 0 : (s > t ? t : s);
}

rlhf_status cpu_attention_fwd(const rlhf_backend *be, float *out, float *lse, const float *q,
                              const float *k, const float *v, const int32_t *seg_start, int32_t B,
                              int32_t T, int32_t NH, int32_t NKV, int32_t HS) {
    (void)be;
    if (B <= 0 || T <= 0 || NH <= 0) return RLHF_OK;
    if (NKV <= 0 || NH % NKV != 0)
        return RLHF_ERR(RLHF_ERR_ARG, "attention_fwd: NH=%d not a multiple of NKV=%d", NH, NKV);
    float *scratch;
    int nt;
    RLHF_TRY(cpu_scratch(&scratch, &nt, T));
    int32_t G = NH / NKV;
    int64_t KS = (int64_t)NKV * HS; /* stride between time steps of k, v */
    int64_t rows = (int64_t)B * NH * T;
    /* (b, h, t) flattened with t fastest; chunks of 4 rows dealt round-robin balance the
     * triangular work of the causal mask */
#pragma omp parallel for schedule(static, 4) if (rows * T * HS >= CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = r % T, h = (r / T) % NH, b = r / ((int64_t)T * NH);
        int64_t bt = b * T + t;
        float *att = scratch + (int64_t)omp_get_thread_num() * T;
        const float *kb = k + b * T * KS + (h / G) * HS;
        const float *vb = v + b * T * KS + (h / G) * HS;
        lse[(b * NH + h) * T + t] = attend_row(out + (bt * NH + h) * HS, q + (bt * NH + h) * HS, kb,
                                               vb, KS, seg_lo(seg_start, bt, t), t, HS, att);
    }
    rlhf_free(scratch);
    return RLHF_OK;
}

rlhf_status cpu_attention_bwd(const rlhf_backend *be, float *dq, float *dk, float *dv,
                              const float *dout, const float *q, const float *k, const float *v,
                              const float *out, const float *lse, const int32_t *seg_start,
                              int32_t B, int32_t T, int32_t NH, int32_t NKV, int32_t HS) {
    (void)be;
    if (B <= 0 || T <= 0 || NH <= 0) return RLHF_OK;
    if (NKV <= 0 || NH % NKV != 0)
        return RLHF_ERR(RLHF_ERR_ARG, "attention_bwd: NH=%d not a multiple of NKV=%d", NH, NKV);
    int32_t G = NH / NKV;
    int64_t KS = (int64_t)NKV * HS, QS = (int64_t)NH * HS;
    float sq = sqrtf((float)HS), scale = 1.0f / sq;
    int64_t tasks = (int64_t)B * NKV;
    int par = tasks > 1 && (int64_t)B * NH * T * T * HS >= CPU_PAR_MIN;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t task = 0; task < tasks; task++) {
        int64_t b = task / NKV, kvh = task % NKV;
        const float *kb = k + b * T * KS + kvh * HS;
        const float *vb = v + b * T * KS + kvh * HS;
        float *dkb = dk + b * T * KS + kvh * HS;
        float *dvb = dv + b * T * KS + kvh * HS;
        for (int64_t j = 0; j < T; j++)
            for (int32_t c = 0; c < HS; c++)
                dkb[j * KS + c] = dvb[j * KS + c] = 0.0f;
        for (int64_t h = kvh * G; h < (kvh + 1) * G; h++) {
            for (int64_t t = 0; t < T; t++) {
                int64_t bt = b * T + t;
                const float *qr = q + bt * QS + h * HS;
                const float *dor = dout + bt * QS + h * HS;
                float *dqr = dq + bt * QS + h * HS;
                float D = cpu_dot(dor, out + bt * QS + h * HS, HS);
                float l = lse[(b * NH + h) * T + t];
                for (int32_t c = 0; c < HS; c++)
                    dqr[c] = 0.0f;
                for (int64_t j = seg_lo(seg_start, bt, t); j <= t; j++) {
                    const float *kr = kb + j * KS, *vr = vb + j * KS;
                    float p = expf(cpu_dot(qr, kr, HS) / sq - l);
                    float ds = p * (cpu_dot(dor, vr, HS) - D);
                    cpu_axpy(dqr, ds, kr, HS);
                    cpu_axpy(dkb + j * KS, ds * scale, qr, HS);
                    cpu_axpy(dvb + j * KS, p, dor, HS);
                }
                for (int32_t c = 0; c < HS; c++)
                    dqr[c] *= scale;
            }
        }
    }
    return RLHF_OK;
}

rlhf_status cpu_kv_store(const rlhf_backend *be, float *kc, float *vc, const float *k,
                         const float *v, const int32_t *slots, const int32_t *pos, int32_t n,
                         int32_t Tmax, int32_t KVD) {
    (void)be;
    for (int32_t i = 0; i < n; i++)
        if (pos[i] < 0 || pos[i] >= Tmax || slots[i] < 0)
            return RLHF_ERR(RLHF_ERR_ARG, "kv_store: row %d has slot %d position %d (Tmax %d)", i,
                            slots[i], pos[i], Tmax);
#pragma omp parallel for schedule(static) if ((int64_t)n * KVD >= CPU_PAR_MIN)
    for (int32_t i = 0; i < n; i++) {
        int64_t off = ((int64_t)slots[i] * Tmax + pos[i]) * KVD;
        memcpy(kc + off, k + (int64_t)i * KVD, (size_t)KVD * sizeof(float));
        memcpy(vc + off, v + (int64_t)i * KVD, (size_t)KVD * sizeof(float));
    }
    return RLHF_OK;
}

rlhf_status cpu_attention_decode(const rlhf_backend *be, float *out, const float *q,
                                 const float *kc, const float *vc, const int32_t *slots,
                                 const int32_t *pos, int32_t n, int32_t Tmax, int32_t NH,
                                 int32_t NKV, int32_t HS) {
    (void)be;
    if (n <= 0 || NH <= 0) return RLHF_OK;
    if (NKV <= 0 || NH % NKV != 0)
        return RLHF_ERR(RLHF_ERR_ARG, "attention_decode: NH=%d not a multiple of NKV=%d", NH, NKV);
    float *scratch;
    int nt;
    int64_t work = 0;
    for (int32_t i = 0; i < n; i++) {
        if (pos[i] < 0 || pos[i] >= Tmax || slots[i] < 0)
            return RLHF_ERR(RLHF_ERR_ARG,
                            "attention_decode: row %d has slot %d position %d (Tmax %d)", i,
                            slots[i], pos[i], Tmax);
        work += (int64_t)(pos[i] + 1) * NH * HS;
    }
    RLHF_TRY(cpu_scratch(&scratch, &nt, Tmax));
    int32_t G = NH / NKV;
    int64_t KS = (int64_t)NKV * HS;
    int64_t rows = (int64_t)n * NH;
#pragma omp parallel for schedule(static) if (rows > 1 && work >= CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = r / NH, h = r % NH;
        float *att = scratch + (int64_t)omp_get_thread_num() * Tmax;
        int64_t base = (int64_t)slots[i] * Tmax * KS + (h / G) * HS;
        (void)attend_row(out + r * HS, q + r * HS, kc + base, vc + base, KS, 0, pos[i], HS, att);
    }
    rlhf_free(scratch);
    return RLHF_OK;
}
