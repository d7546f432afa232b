/* attention.cu: causal grouped-query self-attention (fused, memory-efficient), the KV cache store
 * and decode attention (CUDA).
 *
 * Shapes: q (B,T,NH,HS), k, v (B,T,NKV,HS), out (B,T,NH,HS), lse (B,NH,T). Query head h reads kv
 * head h / (NH/NKV). Row (b,t) attends to keys j in [s0, t], s0 = seg_start[b,t] clamped into
 * [0, t] (0 when seg_start is NULL). Scores s_tj = dot(q_t, k_j) / sqrtf(HS).
 *
 * Forward (flash-attention style, never materializing T x T): a block of AW warps owns AW
 * consecutive query rows of one (b, h), one warp per row. K/V tiles of BC = 32 keys are staged in
 * shared memory (row stride HS+1: lane j reading key j's column c hits bank (j*(HS+1)+c) % 32,
 * all distinct). Per tile each lane scores one key, the warp keeps the online softmax state
 * (running max m, running sum l, rescaling the accumulator by exp(m_old - m_new)), and each lane
 * accumulates the output columns c = lane + 32e (e < 8, so HS <= 256). out = acc / l and
 * lse = m + log(l) (saved for backward). A warp skips tiles holding none of its keys, so the
 * running max is always finite when used.
 * Backward (probabilities recomputed from lse, never stored), dq, dk, dv overwritten:
 *     P_tj = exp(s_tj - lse_t);  D_t = dot(dout_t, out_t);  dS_tj = P_tj (dot(dout_t, v_j) - D_t)
 *     dq_t = scale sum_j dS_tj k_j;  dk_j = scale sum_{h,t} dS_tj q_t;  dv_j = sum_{h,t} P_tj dout_t
 * as three kernels: D (warp per row), dq (the forward's layout: warp per query row over key
 * tiles), dk/dv (warp per key row over tiles of 32 query rows of each head of its group, in head
 * then row order). Every sum has a fixed order and no atomics: reruns are bitwise equal.
 *
 * GEMM path (the default when its score buffers fit, see att_gemm_batch; $RLHF_CUDA_ATTN = auto,
 * fused or gemm chooses): the same maths with the T x T products on cuBLAS (tensor cores in tf32
 * and bf16), a head at a time over a chunk of the batch (strided-batched GEMMs over b):
 *     S = scale Q K^T;  P = softmax of each row's valid keys (0 elsewhere), lse saved;  out = P V
 *   backward: S again, P = exp(S - lse);  dv_kvh (+)= P^T dout;  dP = dout V^T;
 *     dS = P (dP - D);  dq = scale dS K;  dk_kvh (+)= scale dS^T Q
 * where (+)= overwrites for the first head of a kv group and accumulates the others (heads in
 * order, so the sums keep a fixed order). The causal half of each product is computed and masked:
 * twice the attention FLOPs of the fused kernels, but on tensor cores.
 *
 * KV cache: kc, vc (S,Tmax,NKV,HS); kv_store writes row i's k/v at [slots[i], pos[i]].
 * Decode: row i (query (NH,HS)) attends to cache rows 0..pos[i] of slot slots[i]; one warp per
 * (row, head), 32 keys at a time (same online softmax): each lane scores one key reading its row
 * straight from global memory (float4 when aligned; no shared-memory staging, so many warps fit
 * an SM: decoding is bound by reading the cache), then the lanes accumulate the 32 value rows
 * together, coalesced, each key's weight broadcast by shuffle. Positions outside [0, Tmax) and
 * negative slots are not accessed: the kernels record them and the next sync point (to_host,
 * sync) returns RLHF_ERR_ARG (the CPU checks before computing; slots < S is the caller's duty).
 */
#include "cuda_impl.h"

#define AW 8      /* warps (query rows / key rows) per block */
#define BC 32     /* keys (or queries) per shared tile */
#define HS_MAX 256
#define HS_E (HS_MAX / 32)

static __device__ __forceinline__ int32_t seg_lo(const int32_t *seg, int64_t bt, int32_t t) {
    if (!seg) return 0;
    int32_t s = seg[bt];
    return s < 0 ? 0 : (s > t ? t : s);
}

/* ---- forward ---- */

__global__ void k_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                           const int32_t *seg, int32_t T, int32_t NH, int32_t NKV, int32_t HS) {
    extern __shared__ float sm[];
    const int HSP = HS + 1;
    float *Ks = sm, *Vs = Ks + BC * HSP, *Qs = Vs + BC * HSP, *Ps = Qs + AW * HS;
    __shared__ int s_lo;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int32_t ntile = (T + AW - 1) / AW;
    const int64_t blk = blockIdx.x;
    const int32_t tb = (int32_t)(blk % ntile);
    const int32_t h = (int32_t)((blk / ntile) % NH);
    const int64_t b = blk / ((int64_t)ntile * NH);
    const int32_t G = NH / NKV, kvh = h / G;
    const int32_t t = tb * AW + w;
    const bool active = t < T;
    const int64_t bt = b * T + t;
    const int32_t lo = active ? seg_lo(seg, bt, t) : T;
    const float sq = sqrtf((float)HS);
    if (threadIdx.x == 0) s_lo = T;
    if (active)
        for (int c = lane; c < HS; c += 32) Qs[w * HS + c] = q[(bt * NH + h) * HS + c];
    __syncthreads();
    if (active && lane == 0) atomicMin(&s_lo, lo);
    __syncthreads();
    const int32_t jhi = min(T - 1, tb * AW + AW - 1);
    const int32_t jstart = (s_lo / BC) * BC;
    float m = -INFINITY, l = 0.0f, acc[HS_E];
#pragma unroll
    for (int e = 0; e < HS_E; e++) acc[e] = 0.0f;
    for (int32_t j0 = jstart; j0 <= jhi; j0 += BC) {
        __syncthreads(); /* everyone is done with the previous tile */
        for (int idx = threadIdx.x; idx < BC * HS; idx += blockDim.x) {
            const int r = idx / HS, c = idx - r * HS;
            const int32_t j = j0 + r;
            const int64_t off = ((b * T + j) * NKV + kvh) * HS + c;
            Ks[r * HSP + c] = j < T ? k[off] : 0.0f;
            Vs[r * HSP + c] = j < T ? v[off] : 0.0f;
        }
        __syncthreads();
        if (!active || j0 > t || j0 + BC - 1 < lo) continue; /* warp-uniform */
        const int32_t j = j0 + lane;
        const bool valid = j >= lo && j <= t;
        float s = -INFINITY;
        if (valid) {
            float d = 0.0f;
            for (int c = 0; c < HS; c++) d += Qs[w * HS + c] * Ks[lane * HSP + c];
            s = d / sq;
        }
        const float m_new = fmaxf(m, warp_max(s)); /* finite: the tile holds a valid key */
        const float corr = expf(m - m_new);
        const float p = valid ? expf(s - m_new) : 0.0f;
        l = l * corr + warp_sum(p);
        m = m_new;
        Ps[w * BC + lane] = p;
        __syncwarp();
#pragma unroll
        for (int e = 0; e < HS_E; e++) acc[e] *= corr;
        for (int jj = 0; jj < BC; jj++) {
            const float pj = Ps[w * BC + jj];
#pragma unroll
            for (int e = 0; e < HS_E; e++) {
                const int c = lane + 32 * e;
                if (c < HS) acc[e] += pj * Vs[jj * HSP + c];
            }
        }
        __syncwarp();
    }
    if (!active) return;
#pragma unroll
    for (int e = 0; e < HS_E; e++) {
        const int c = lane + 32 * e;
        if (c < HS) out[(bt * NH + h) * HS + c] = acc[e] / l;
    }
    if (lane == 0) lse[(b * NH + h) * T + t] = m + logf(l);
}

/* ---- backward ---- */

/* D[(b*NH+h)*T + t] = dot(dout, out) of row (b,t,h); one warp per row. */
__global__ void k_attn_D(float *D, const float *dout, const float *out, int64_t rows, int32_t T,
                         int32_t NH, int32_t HS) {
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * AW + (threadIdx.x >> 5); /* r = (b*T + t)*NH + h */
    if (r >= rows) return;
    float d = 0.0f;
    for (int c = lane; c < HS; c += 32) d += dout[r * HS + c] * out[r * HS + c];
    d = warp_sum(d);
    const int64_t h = r % NH, bt = r / NH, t = bt % T, b = bt / T;
    if (lane == 0) D[(b * NH + h) * T + t] = d;
}

__global__ void k_attn_bwd_dq(float *dq, const float *dout, const float *q, const float *k,
                              const float *v, const float *lse, const float *D, const int32_t *seg,
                              int32_t T, int32_t NH, int32_t NKV, int32_t HS) {
    extern __shared__ float sm[];
    const int HSP = HS + 1;
    float *Ks = sm, *Vs = Ks + BC * HSP, *Qs = Vs + BC * HSP, *Gs = Qs + AW * HS,
          *Ss = Gs + AW * HS;
    __shared__ int s_lo;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int32_t ntile = (T + AW - 1) / AW;
    const int64_t blk = blockIdx.x;
    const int32_t tb = (int32_t)(blk % ntile);
    const int32_t h = (int32_t)((blk / ntile) % NH);
    const int64_t b = blk / ((int64_t)ntile * NH);
    const int32_t G = NH / NKV, kvh = h / G;
    const int32_t t = tb * AW + w;
    const bool active = t < T;
    const int64_t bt = b * T + t;
    const int32_t lo = active ? seg_lo(seg, bt, t) : T;
    const float sq = sqrtf((float)HS), scale = 1.0f / sq;
    const float L = active ? lse[(b * NH + h) * T + t] : 0.0f;
    const float Dt = active ? D[(b * NH + h) * T + t] : 0.0f;
    if (threadIdx.x == 0) s_lo = T;
    if (active)
        for (int c = lane; c < HS; c += 32) {
            Qs[w * HS + c] = q[(bt * NH + h) * HS + c];
            Gs[w * HS + c] = dout[(bt * NH + h) * HS + c];
        }
    __syncthreads();
    if (active && lane == 0) atomicMin(&s_lo, lo);
    __syncthreads();
    const int32_t jhi = min(T - 1, tb * AW + AW - 1);
    const int32_t jstart = (s_lo / BC) * BC;
    float acc[HS_E];
#pragma unroll
    for (int e = 0; e < HS_E; e++) acc[e] = 0.0f;
    for (int32_t j0 = jstart; j0 <= jhi; j0 += BC) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < BC * HS; idx += blockDim.x) {
            const int r = idx / HS, c = idx - r * HS;
            const int32_t j = j0 + r;
            const int64_t off = ((b * T + j) * NKV + kvh) * HS + c;
            Ks[r * HSP + c] = j < T ? k[off] : 0.0f;
            Vs[r * HSP + c] = j < T ? v[off] : 0.0f;
        }
        __syncthreads();
        if (!active || j0 > t || j0 + BC - 1 < lo) continue;
        const int32_t j = j0 + lane;
        float ds = 0.0f;
        if (j >= lo && j <= t) {
            float s = 0.0f, dp = 0.0f;
            for (int c = 0; c < HS; c++) {
                s += Qs[w * HS + c] * Ks[lane * HSP + c];
                dp += Gs[w * HS + c] * Vs[lane * HSP + c];
            }
            const float p = expf(s / sq - L);
            ds = p * (dp - Dt);
        }
        Ss[w * BC + lane] = ds;
        __syncwarp();
        for (int jj = 0; jj < BC; jj++) {
            const float dj = Ss[w * BC + jj];
#pragma unroll
            for (int e = 0; e < HS_E; e++) {
                const int c = lane + 32 * e;
                if (c < HS) acc[e] += dj * Ks[jj * HSP + c];
            }
        }
        __syncwarp();
    }
    if (!active) return;
#pragma unroll
    for (int e = 0; e < HS_E; e++) {
        const int c = lane + 32 * e;
        if (c < HS) dq[(bt * NH + h) * HS + c] = acc[e] * scale;
    }
}

/* Block: AW consecutive keys j of one (b, kvh); loops over the heads of the group and tiles of BC
 * query rows t >= the block's first key. */
__global__ void k_attn_bwd_dkv(float *dk, float *dv, const float *dout, const float *q,
                               const float *k, const float *v, const float *lse, const float *D,
                               const int32_t *seg, int32_t T, int32_t NH, int32_t NKV,
                               int32_t HS) {
    extern __shared__ float sm[];
    const int HSP = HS + 1;
    float *Qs = sm, *Gs = Qs + BC * HSP, *Kw = Gs + BC * HSP, *Vw = Kw + AW * HS,
          *Pw = Vw + AW * HS, *Sw = Pw + AW * BC, *Ls = Sw + AW * BC, *Ds = Ls + BC;
    __shared__ int32_t Lo[BC];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int32_t ntile = (T + AW - 1) / AW;
    const int64_t blk = blockIdx.x;
    const int32_t jb = (int32_t)(blk % ntile);
    const int32_t kvh = (int32_t)((blk / ntile) % NKV);
    const int64_t b = blk / ((int64_t)ntile * NKV);
    const int32_t G = NH / NKV;
    const int32_t j = jb * AW + w;
    const bool active = j < T;
    const float sq = sqrtf((float)HS), scale = 1.0f / sq;
    if (active)
        for (int c = lane; c < HS; c += 32) {
            Kw[w * HS + c] = k[((b * T + j) * NKV + kvh) * HS + c];
            Vw[w * HS + c] = v[((b * T + j) * NKV + kvh) * HS + c];
        }
    float ak[HS_E], av[HS_E];
#pragma unroll
    for (int e = 0; e < HS_E; e++) ak[e] = av[e] = 0.0f;
    const int32_t tstart = ((jb * AW) / BC) * BC;
    for (int32_t h = kvh * G; h < (kvh + 1) * G; h++) {
        for (int32_t t0 = tstart; t0 < T; t0 += BC) {
            __syncthreads();
            for (int idx = threadIdx.x; idx < BC * HS; idx += blockDim.x) {
                const int r = idx / HS, c = idx - r * HS;
                const int32_t t = t0 + r;
                const int64_t off = ((b * T + t) * NH + h) * HS + c;
                Qs[r * HSP + c] = t < T ? q[off] : 0.0f;
                Gs[r * HSP + c] = t < T ? dout[off] : 0.0f;
            }
            if (threadIdx.x < BC) {
                const int32_t t = t0 + threadIdx.x;
                Ls[threadIdx.x] = t < T ? lse[(b * NH + h) * T + t] : 0.0f;
                Ds[threadIdx.x] = t < T ? D[(b * NH + h) * T + t] : 0.0f;
                Lo[threadIdx.x] = t < T ? seg_lo(seg, b * T + t, t) : T;
            }
            __syncthreads();
            if (!active || t0 + BC - 1 < j) continue; /* warp-uniform */
            const int32_t t = t0 + lane;
            float p = 0.0f, ds = 0.0f;
            if (t < T && t >= j && Lo[lane] <= j) {
                float s = 0.0f, dp = 0.0f;
                for (int c = 0; c < HS; c++) {
                    s += Qs[lane * HSP + c] * Kw[w * HS + c];
                    dp += Gs[lane * HSP + c] * Vw[w * HS + c];
                }
                p = expf(s / sq - Ls[lane]);
                ds = p * (dp - Ds[lane]);
            }
            Pw[w * BC + lane] = p;
            Sw[w * BC + lane] = ds;
            __syncwarp();
            for (int r = 0; r < BC; r++) {
                const float pr = Pw[w * BC + r], dr = Sw[w * BC + r];
#pragma unroll
                for (int e = 0; e < HS_E; e++) {
                    const int c = lane + 32 * e;
                    if (c < HS) {
                        ak[e] += dr * Qs[r * HSP + c];
                        av[e] += pr * Gs[r * HSP + c];
                    }
                }
            }
            __syncwarp();
        }
    }
    if (!active) return;
#pragma unroll
    for (int e = 0; e < HS_E; e++) {
        const int c = lane + 32 * e;
        if (c < HS) {
            dk[((b * T + j) * NKV + kvh) * HS + c] = ak[e] * scale;
            dv[((b * T + j) * NKV + kvh) * HS + c] = av[e];
        }
    }
}

/* ---- KV cache ---- */

static __device__ void record_error(cuda_err_rec *err, int32_t code, int32_t row, int32_t slot,
                                    int32_t pos) {
    volatile cuda_err_rec *e = err;
    e->row = row;
    e->slot = slot;
    e->pos = pos;
    __threadfence_system();
    e->code = code;
}

__global__ void k_kv_store(float *kc, float *vc, const float *k, const float *v,
                           const int32_t *slots, const int32_t *pos, int32_t n, int32_t Tmax,
                           int32_t KVD, cuda_err_rec *err) {
    const int64_t total = (int64_t)n * KVD;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = e / KVD, c = e - i * KVD;
        const int32_t s = slots[i], p = pos[i];
        if (p < 0 || p >= Tmax || s < 0) {
            if (c == 0) record_error(err, 1, (int32_t)i, s, p);
            continue;
        }
        const int64_t off = ((int64_t)s * Tmax + p) * KVD + c;
        kc[off] = k[e];
        vc[off] = v[e];
    }
}

/* Warp per (row, head); DWp warps per block, each with its own tiles. */
__global__ void k_attn_decode(float *out, const float *q, const float *kc, const float *vc,
                              const int32_t *slots, const int32_t *pos, int32_t n, int32_t Tmax,
                              int32_t NH, int32_t NKV, int32_t HS, cuda_err_rec *err) {
    extern __shared__ float sm[];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    float *Qw = sm + (size_t)w * HS; /* the warp's query, read by every lane (broadcast) */
    const int64_t r = (int64_t)blockIdx.x * (blockDim.x >> 5) + w; /* r = i*NH + h */
    if (r >= (int64_t)n * NH) return; /* warps are independent: no block barrier below */
    const int64_t i = r / NH;
    const int32_t h = (int32_t)(r % NH), kvh = h / (NH / NKV);
    const int32_t slot = slots[i], P = pos[i];
    if (P < 0 || P >= Tmax || slot < 0) {
        if (lane == 0 && h == 0) record_error(err, 2, (int32_t)i, slot, P);
        return;
    }
    const float sq = sqrtf((float)HS);
    for (int c = lane; c < HS; c += 32) Qw[c] = q[r * HS + c];
    __syncwarp();
    const int64_t base = (int64_t)slot * Tmax, ld = (int64_t)NKV * HS;
    const float *K0 = kc + (base * NKV + kvh) * HS, *V0 = vc + (base * NKV + kvh) * HS;
    const bool vec = (HS & 3) == 0 && ((uintptr_t)K0 & 15) == 0 && ((ld * 4) & 15) == 0;
    float m = -INFINITY, l = 0.0f, acc[HS_E];
#pragma unroll
    for (int e = 0; e < HS_E; e++) acc[e] = 0.0f;
    for (int32_t j0 = 0; j0 <= P; j0 += 32) {
        /* scores: lane j reads key j0+j's row straight from global memory */
        const int32_t j = j0 + lane;
        const bool valid = j <= P;
        float s = -INFINITY;
        if (valid) {
            const float *kr = K0 + (int64_t)j * ld;
            float d = 0.0f;
            if (vec) {
                for (int c = 0; c < HS; c += 4) {
                    const float4 k4 = *(const float4 *)(kr + c);
                    d += Qw[c] * k4.x;
                    d += Qw[c + 1] * k4.y;
                    d += Qw[c + 2] * k4.z;
                    d += Qw[c + 3] * k4.w;
                }
            } else {
                for (int c = 0; c < HS; c++) d += Qw[c] * kr[c];
            }
            s = d / sq;
        }
        const float m_new = fmaxf(m, warp_max(s)); /* finite: key j0 is valid */
        const float corr = expf(m - m_new);
        const float p = valid ? expf(s - m_new) : 0.0f;
        l = l * corr + warp_sum(p);
        m = m_new;
#pragma unroll
        for (int e = 0; e < HS_E; e++) acc[e] *= corr;
        /* values: the lanes read value row jj together (coalesced), its weight by shuffle */
        const int32_t nj = P - j0 + 1 < 32 ? P - j0 + 1 : 32;
        for (int jj = 0; jj < nj; jj++) {
            const float pj = __shfl_sync(CU_FULL, p, jj);
            const float *vr = V0 + (int64_t)(j0 + jj) * ld;
#pragma unroll
            for (int e = 0; e < HS_E; e++) {
                const int c = lane + 32 * e;
                if (c < HS) acc[e] += pj * vr[c];
            }
        }
    }
#pragma unroll
    for (int e = 0; e < HS_E; e++) {
        const int c = lane + 32 * e;
        if (c < HS) out[r * HS + c] = acc[e] / l;
    }
}

/* ---- GEMM path kernels: one block per score row (b, t) of head h, b from b0 ---- */

#define ATT_ROW 128 /* threads per score row */
#define ATT_BUDGET ((size_t)512 << 20) /* bytes for the two score buffers of a chunk */

/* S row -> P row (valid keys: softmax; others 0); lse of the row. S is already scaled. */
__global__ void k_att_softmax(float *S, float *lse, const int32_t *seg, int32_t b0, int32_t T,
                              int32_t NH, int32_t h) {
    __shared__ float sh[32];
    const int64_t r = blockIdx.x;
    const int32_t bl = (int32_t)(r / T), t = (int32_t)(r % T);
    const int64_t b = (int64_t)b0 + bl;
    const int32_t lo = seg_lo(seg, b * T + t, t);
    float *row = S + r * T;
    float m = -INFINITY;
    for (int32_t j = lo + (int32_t)threadIdx.x; j <= t; j += blockDim.x) m = fmaxf(m, row[j]);
    m = block_max(m, sh);
    float l = 0.0f;
    for (int32_t j = lo + (int32_t)threadIdx.x; j <= t; j += blockDim.x) l += expf(row[j] - m);
    l = block_sum(l, sh);
    const float inv = 1.0f / l;
    for (int32_t j = threadIdx.x; j < T; j += blockDim.x)
        row[j] = j >= lo && j <= t ? expf(row[j] - m) * inv : 0.0f;
    if (threadIdx.x == 0) lse[(b * NH + h) * T + t] = m + logf(l);
}

/* S row -> P row from the saved lse (backward). */
__global__ void k_att_probs(float *S, const float *lse, const int32_t *seg, int32_t b0, int32_t T,
                            int32_t NH, int32_t h) {
    const int64_t r = blockIdx.x;
    const int32_t bl = (int32_t)(r / T), t = (int32_t)(r % T);
    const int64_t b = (int64_t)b0 + bl;
    const int32_t lo = seg_lo(seg, b * T + t, t);
    const float L = lse[(b * NH + h) * T + t];
    float *row = S + r * T;
    for (int32_t j = threadIdx.x; j < T; j += blockDim.x)
        row[j] = j >= lo && j <= t ? expf(row[j] - L) : 0.0f;
}

/* dP row -> dS row = P (dP - D_t) (0 where P is). */
__global__ void k_att_dscores(float *dP, const float *P, const float *D, int32_t b0, int32_t T,
                              int32_t NH, int32_t h) {
    const int64_t r = blockIdx.x;
    const int32_t bl = (int32_t)(r / T), t = (int32_t)(r % T);
    const int64_t b = (int64_t)b0 + bl;
    const float d = D[(b * NH + h) * T + t];
    float *row = dP + r * T;
    const float *p = P + r * T;
    for (int32_t j = threadIdx.x; j < T; j += blockDim.x) row[j] = p[j] * (row[j] - d);
}

/* Batch items per chunk of the GEMM path (0: use the fused kernels). */
static int32_t att_gemm_batch(const rlhf_backend *be, int32_t B, int32_t T) {
    const int mode = cu_state(be)->attn_mode;
    if (mode == CU_ATTN_FUSED) return 0;
    const size_t per = 2 * (size_t)T * (size_t)T * sizeof(float);
    int64_t nb = (int64_t)(ATT_BUDGET / per);
    if (nb < 1) nb = mode == CU_ATTN_GEMM ? 1 : 0; /* forced: one item at a time */
    if (nb > B) nb = B;
    if ((int64_t)nb * T > 0x7fffffffLL) nb = 0x7fffffffLL / T;
    return (int32_t)nb;
}

/* Pointers of head h (kv head h/G) at batch item b0; lda/stride of q-like and k-like tensors. */
#define ATT_PTRS                                                                                   \
    const int32_t G = NH / NKV, kvh = h / G, g = h % G;                                            \
    const int ldq = NH * HS, ldk = NKV * HS;                                                       \
    const long long sq = (long long)T * NH * HS, sk = (long long)T * NKV * HS, ss = (long long)T * T; \
    const int64_t qo = ((int64_t)b0 * T * NH + h) * HS, ko = ((int64_t)b0 * T * NKV + kvh) * HS; \
    (void)g

static rlhf_status att_gemm_fwd(const rlhf_backend *be, float *out, float *lse, const float *q,
                                const float *k, const float *v, const int32_t *seg, int32_t B,
                                int32_t T, int32_t NH, int32_t NKV, int32_t HS, int32_t nbmax) {
    float *S;
    RLHF_TRY(cu_scratch(be, (void **)&S, (size_t)nbmax * T * T * sizeof(float)));
    cudaStream_t st = cu_state(be)->stream;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int32_t b0 = 0; b0 < B; b0 += nbmax) {
        const int32_t nb = B - b0 < nbmax ? B - b0 : nbmax;
        for (int32_t h = 0; h < NH; h++) {
            ATT_PTRS;
            RLHF_TRY(cu_gemm_strided(be, CUBLAS_OP_T, CUBLAS_OP_N, T, T, HS, scale, k + ko, ldk, sk,
                                     q + qo, ldq, sq, 0.0f, S, T, ss, nb));
            k_att_softmax<<<(unsigned)(nb * T), ATT_ROW, 0, st>>>(S, lse, seg, b0, T, NH, h);
            CUDA_LAUNCHED();
            RLHF_TRY(cu_gemm_strided(be, CUBLAS_OP_N, CUBLAS_OP_N, HS, T, T, 1.0f, v + ko, ldk, sk,
                                     S, T, ss, 0.0f, out + qo, ldq, sq, nb));
        }
    }
    return RLHF_OK;
}

static rlhf_status att_gemm_bwd(const rlhf_backend *be, float *dq, float *dk, float *dv,
                                const float *dout, const float *q, const float *k, const float *v,
                                const float *lse, const float *D, float *P, float *dP,
                                const int32_t *seg, int32_t B, int32_t T, int32_t NH, int32_t NKV,
                                int32_t HS, int32_t nbmax) {
    cudaStream_t st = cu_state(be)->stream;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int32_t b0 = 0; b0 < B; b0 += nbmax) {
        const int32_t nb = B - b0 < nbmax ? B - b0 : nbmax;
        for (int32_t h = 0; h < NH; h++) { /* the heads of a kv group in order: g = 0 first */
            ATT_PTRS;
            const float acc = g == 0 ? 0.0f : 1.0f;
            RLHF_TRY(cu_gemm_strided(be, CUBLAS_OP_T, CUBLAS_OP_N, T, T, HS, scale, k + ko, ldk, sk,
                                     q + qo, ldq, sq, 0.0f, P, T, ss, nb));
            k_att_probs<<<(unsigned)(nb * T), ATT_ROW, 0, st>>>(P, lse, seg, b0, T, NH, h);
            CUDA_LAUNCHED();
            RLHF_TRY(cu_gemm_strided(be, CUBLAS_OP_N, CUBLAS_OP_T, HS, T, T, 1.0f, dout + qo, ldq,
                                     sq, P, T, ss, acc, dv + ko, ldk, sk, nb));
            RLHF_TRY(cu_gemm_strided(be, CUBLAS_OP_T, CUBLAS_OP_N, T, T, HS, 1.0f, v + ko, ldk, sk,
                                     dout + qo, ldq, sq, 0.0f, dP, T, ss, nb));
            k_att_dscores<<<(unsigned)(nb * T), ATT_ROW, 0, st>>>(dP, P, D, b0, T, NH, h);
            CUDA_LAUNCHED();
            RLHF_TRY(cu_gemm_strided(be, CUBLAS_OP_N, CUBLAS_OP_N, HS, T, T, scale, k + ko, ldk, sk,
                                     dP, T, ss, 0.0f, dq + qo, ldq, sq, nb));
            RLHF_TRY(cu_gemm_strided(be, CUBLAS_OP_N, CUBLAS_OP_T, HS, T, T, scale, q + qo, ldq, sq,
                                     dP, T, ss, acc, dk + ko, ldk, sk, nb));
        }
    }
    return RLHF_OK;
}

/* ---- host side ---- */

static rlhf_status check_heads(int32_t NH, int32_t NKV, int32_t HS, const char *op) {
    if (NKV <= 0 || NH % NKV != 0)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: NH=%d not a multiple of NKV=%d", op, NH, NKV);
    if (HS <= 0 || HS > HS_MAX)
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: head size %d (the CUDA kernels take 1..%d)", op,
                        HS, HS_MAX);
    return RLHF_OK;
}

extern "C" rlhf_status cuda_attention_fwd(const rlhf_backend *be, float *out, float *lse,
                                          const float *q, const float *k, const float *v,
                                          const int32_t *seg_start, int32_t B, int32_t T,
                                          int32_t NH, int32_t NKV, int32_t HS) {
    if (B <= 0 || T <= 0 || NH <= 0) return RLHF_OK;
    RLHF_TRY(check_heads(NH, NKV, HS, "attention_fwd"));
    RLHF_TRY(cu_enter(be));
    const int32_t nb = att_gemm_batch(be, B, T);
    if (nb > 0) return att_gemm_fwd(be, out, lse, q, k, v, seg_start, B, T, NH, NKV, HS, nb);
    const size_t smem = (size_t)(2 * BC * (HS + 1) + AW * HS + AW * BC) * sizeof(float);
    RLHF_TRY(cu_smem(be, (const void *)k_attn_fwd, smem, "attention_fwd"));
    const int64_t blocks = (int64_t)B * NH * ((T + AW - 1) / AW);
    if (blocks > 0x7fffffffLL) return RLHF_ERR(RLHF_ERR_ARG, "attention_fwd: too many rows");
    k_attn_fwd<<<(unsigned)blocks, AW * 32, smem, cu_state(be)->stream>>>(out, lse, q, k, v,
                                                                          seg_start, T, NH, NKV, HS);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_attention_bwd(const rlhf_backend *be, float *dq, float *dk, float *dv,
                                          const float *dout, const float *q, const float *k,
                                          const float *v, const float *out, const float *lse,
                                          const int32_t *seg_start, int32_t B, int32_t T,
                                          int32_t NH, int32_t NKV, int32_t HS) {
    if (B <= 0 || T <= 0 || NH <= 0) return RLHF_OK;
    RLHF_TRY(check_heads(NH, NKV, HS, "attention_bwd"));
    RLHF_TRY(cu_enter(be));
    cudaStream_t st = cu_state(be)->stream;
    const int64_t rows = (int64_t)B * T * NH;
    const int32_t nb = att_gemm_batch(be, B, T);
    const size_t d_floats = ((size_t)rows + 63) & ~(size_t)63, s_floats = (size_t)nb * T * T;
    float *D;
    RLHF_TRY(cu_scratch(be, (void **)&D, (d_floats + 2 * s_floats) * sizeof(float)));
    k_attn_D<<<(unsigned)((rows + AW - 1) / AW), AW * 32, 0, st>>>(D, dout, out, rows, T, NH, HS);
    CUDA_LAUNCHED();
    if (nb > 0)
        return att_gemm_bwd(be, dq, dk, dv, dout, q, k, v, lse, D, D + d_floats,
                            D + d_floats + s_floats, seg_start, B, T, NH, NKV, HS, nb);
    const size_t smem_q = (size_t)(2 * BC * (HS + 1) + 2 * AW * HS + AW * BC) * sizeof(float);
    RLHF_TRY(cu_smem(be, (const void *)k_attn_bwd_dq, smem_q, "attention_bwd"));
    const int64_t ntile = (T + AW - 1) / AW;
    k_attn_bwd_dq<<<(unsigned)(B * NH * ntile), AW * 32, smem_q, st>>>(dq, dout, q, k, v, lse, D,
                                                                      seg_start, T, NH, NKV, HS);
    CUDA_LAUNCHED();
    const size_t smem_kv =
        (size_t)(2 * BC * (HS + 1) + 2 * AW * HS + 2 * AW * BC + 2 * BC) * sizeof(float);
    RLHF_TRY(cu_smem(be, (const void *)k_attn_bwd_dkv, smem_kv, "attention_bwd"));
    k_attn_bwd_dkv<<<(unsigned)(B * NKV * ntile), AW * 32, smem_kv, st>>>(
        dk, dv, dout, q, k, v, lse, D, seg_start, T, NH, NKV, HS);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_kv_store(const rlhf_backend *be, float *kc, float *vc, const float *k,
                                     const float *v, const int32_t *slots, const int32_t *pos,
                                     int32_t n, int32_t Tmax, int32_t KVD) {
    if (n <= 0 || KVD <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    cuda_state *s = cu_state(be);
    k_kv_store<<<cu_blocks((int64_t)n * KVD, 256), 256, 0, s->stream>>>(kc, vc, k, v, slots, pos, n,
                                                                       Tmax, KVD, s->err_dev);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_attention_decode(const rlhf_backend *be, float *out, const float *q,
                                             const float *kc, const float *vc,
                                             const int32_t *slots, const int32_t *pos, int32_t n,
                                             int32_t Tmax, int32_t NH, int32_t NKV, int32_t HS) {
    if (n <= 0 || NH <= 0) return RLHF_OK;
    RLHF_TRY(check_heads(NH, NKV, HS, "attention_decode"));
    RLHF_TRY(cu_enter(be));
    cuda_state *s = cu_state(be);
    const int warps = 4;
    const size_t smem = (size_t)warps * HS * sizeof(float);
    RLHF_TRY(cu_smem(be, (const void *)k_attn_decode, smem, "attention_decode"));
    const int64_t rows = (int64_t)n * NH;
    k_attn_decode<<<(unsigned)((rows + warps - 1) / warps), warps * 32, smem, s->stream>>>(
        out, q, kc, vc, slots, pos, n, Tmax, NH, NKV, HS, s->err_dev);
    CUDA_LAUNCHED();
    return RLHF_OK;
}
