/* sample.cu: token selection for batched decoding (CUDA), the CPU op's semantics (cpu/sample.c).
 *
 * Per row i of logits (n,V), one block of SB threads:
 *   max and first argmax (ties: lower index);  p_j = expf((x_j - max) / temperature) (1/1 when
 *   greedy) into a scratch row;  Z = sum p_j in float;  logp = (x_tok - max)/t - log Z (before
 *   truncation).
 *   greedy (temperature 0): token = first argmax; no random number is used.
 *   otherwise the kept set is a best-first prefix in the order (p desc, index asc), found without
 *   sorting by radix selection on the 64-bit key (bits(p) << 32 | ~index), which orders exactly
 *   that way (p >= 0, so its float bits are monotone): 8 passes of 8 bits, each a 256-bin
 *   histogram (counts, and masses in 2^-40 fixed point: integer atomics, so the result does not
 *   depend on thread timing) of the keys that share the digits chosen so far.
 *     top_k (0 < top_k < V): the k-th best key K_k; kept = {key >= K_k}.
 *     top_p (0 < top_p < 1): over what is kept, the smallest best-first prefix whose mass
 *       reaches top_p of the kept mass (the nucleus).
 *   The draw: u (drawn on the HOST from rng[i], one rlhf_rng_uniform per row exactly when the
 *   CPU draws one, then copied to the device) times the kept mass (double), walked over the kept
 *   tokens in index order with a double cumulative sum, as the CPU's nucleus and plain paths do;
 *   so given the same logits the CPU and CUDA pick the same token up to float rounding at a
 *   boundary. (The CPU's top-k path walks its heap order instead: the same distribution, not
 *   always the same token.) If rounding leaves u past the end, the mode is taken.
 * Rows are independent; each uses only its own uniform. The logits are not modified.
 */
#include <stdlib.h>

#include "cuda_impl.h"

#define SB 512
#define FIX_ONE 1099511627776.0 /* 2^40 */

static __device__ __forceinline__ uint64_t key_of(float p, int32_t j) {
    return ((uint64_t)__float_as_uint(p) << 32) | (uint64_t)(0xffffffffu - (uint32_t)j);
}

static __device__ __forceinline__ unsigned long long fix_of(float p) {
    return __double2ull_rn((double)p * FIX_ONE);
}

/* The largest key K (of an element of S = {key >= kmin}) such that the weight of
 * {key >= K} within S reaches target; weight = 1 per element (by_mass false) or fix_of(p). All
 * threads call it; all get K. */
static __device__ uint64_t radix_select(const float *pr, int32_t V, uint64_t kmin, bool by_mass,
                                        unsigned long long target, unsigned long long *hist,
                                        unsigned int *cnt, uint64_t *s_prefix,
                                        unsigned long long *s_acc) {
    if (threadIdx.x == 0) {
        *s_prefix = 0;
        *s_acc = 0;
    }
    for (int pass = 0; pass < 8; pass++) {
        const int shift = 56 - 8 * pass;
        __syncthreads(); /* s_prefix written; the previous pass's bins read */
        for (int d = threadIdx.x; d < 256; d += blockDim.x) {
            hist[d] = 0;
            cnt[d] = 0;
        }
        const uint64_t prefix = *s_prefix;
        const uint64_t hmask = pass == 0 ? 0 : ~0ull << (shift + 8);
        __syncthreads();
        for (int32_t j = threadIdx.x; j < V; j += blockDim.x) {
            const float p = pr[j];
            const uint64_t key = key_of(p, j);
            if (key < kmin || (key & hmask) != (prefix & hmask)) continue;
            const int d = (int)((key >> shift) & 255);
            atomicAdd(&cnt[d], 1u);
            atomicAdd(&hist[d], by_mass ? fix_of(p) : 1ull);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            unsigned long long acc = *s_acc;
            int chosen = -1;
            for (int d = 255; d >= 0; d--) {
                if (cnt[d] && acc + hist[d] >= target) {
                    chosen = d;
                    break;
                }
                acc += hist[d];
            }
            if (chosen < 0) { /* cannot happen when target <= total weight: keep the lowest bin */
                acc = *s_acc;
                for (int d = 0; d < 256; d++)
                    if (cnt[d]) {
                        chosen = d;
                        break;
                    }
                if (chosen < 0) chosen = 0;
                for (int d = 255; d > chosen; d--) acc += hist[d];
            }
            *s_acc = acc;
            *s_prefix = prefix | ((uint64_t)chosen << shift);
        }
    }
    __syncthreads();
    return *s_prefix;
}

__global__ void k_sample(int32_t *tokens, float *logp, const float *logits, float *probs,
                         const float *u, int32_t V, float temperature, int32_t top_k, float top_p) {
    __shared__ float shf[32];
    __shared__ float s_bv[SB / 32];
    __shared__ int32_t s_bi[SB / 32];
    __shared__ unsigned long long hist[256];
    __shared__ unsigned int cnt[256];
    __shared__ uint64_t s_prefix;
    __shared__ unsigned long long s_acc, s_mass;
    __shared__ double csum[SB];
    __shared__ int32_t s_tok;
    const int64_t i = blockIdx.x;
    const float *x = logits + i * V;
    float *pr = probs + i * V;
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;

    /* 1. max and its first index */
    float bv = -INFINITY;
    int32_t bi = V;
    for (int32_t j = threadIdx.x; j < V; j += blockDim.x)
        if (x[j] > bv) bv = x[j], bi = j;
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(CU_FULL, bv, o);
        const int32_t oi = __shfl_xor_sync(CU_FULL, bi, o);
        if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
    }
    if (lane == 0) s_bv[wid] = bv, s_bi[wid] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            if (s_bv[w] > s_bv[0] || (s_bv[w] == s_bv[0] && s_bi[w] < s_bi[0]))
                s_bv[0] = s_bv[w], s_bi[0] = s_bi[w];
        if (s_bi[0] >= V) s_bv[0] = x[0], s_bi[0] = 0; /* no element above -inf (as the CPU) */
    }
    __syncthreads();
    const float mx = s_bv[0];
    const int32_t arg = s_bi[0];

    /* 2. probabilities and their sum */
    const float invT = temperature > 0 ? 1.0f / temperature : 1.0f;
    float zs = 0.0f;
    for (int32_t j = threadIdx.x; j < V; j += blockDim.x) {
        const float p = expf((x[j] - mx) * invT);
        pr[j] = p;
        zs += p;
    }
    const float Z = block_sum(zs, shf); /* contains __syncthreads: pr is complete after it */
    int32_t tok = arg;
    if (temperature > 0) {
        const bool use_k = top_k > 0 && top_k < V, use_p = top_p > 0 && top_p < 1;
        uint64_t kmin = 0; /* every key is >= 1 */
        if (use_k)
            kmin = radix_select(pr, V, 0, false, (unsigned long long)top_k, hist, cnt, &s_prefix,
                                &s_acc);
        if (use_p) {
            if (threadIdx.x == 0) s_mass = 0;
            __syncthreads();
            unsigned long long mloc = 0;
            for (int32_t j = threadIdx.x; j < V; j += blockDim.x)
                if (key_of(pr[j], j) >= kmin) mloc += fix_of(pr[j]);
            atomicAdd(&s_mass, mloc);
            __syncthreads();
            const unsigned long long target =
                (unsigned long long)ceil((double)top_p * (double)s_mass);
            kmin = radix_select(pr, V, kmin, true, target, hist, cnt, &s_prefix, &s_acc);
        }
        /* 3. the draw over the kept tokens in index order */
        const int32_t cs = (V + (int32_t)blockDim.x - 1) / (int32_t)blockDim.x;
        const int32_t c0 = (int32_t)threadIdx.x * cs;
        const int32_t c1 = c0 + cs < V ? c0 + cs : V;
        double part = 0.0;
        for (int32_t j = c0; j < c1; j++)
            if (key_of(pr[j], j) >= kmin) part += (double)pr[j];
        csum[threadIdx.x] = part;
        __syncthreads();
        if (threadIdx.x == 0) {
            double total = 0.0;
            for (int t = 0; t < (int)blockDim.x; t++) total += csum[t];
            const double target = (double)u[i] * total;
            double cum = 0.0;
            int32_t found = -1;
            for (int t = 0; t < (int)blockDim.x && found < 0; t++) {
                if (target < cum + csum[t]) {
                    /* cum + csum[t] and the running sum below round differently: if the walk
                     * ends short of target, the chunk's last kept token is the one (the CPU's
                     * nucleus walk does the same with its last kept token) */
                    const int32_t a = t * cs, z = a + cs < V ? a + cs : V;
                    int32_t last = -1;
                    for (int32_t j = a; j < z; j++) {
                        if (key_of(pr[j], j) < kmin) continue;
                        last = j;
                        cum += (double)pr[j];
                        if (target < cum) {
                            found = j;
                            break;
                        }
                    }
                    if (found < 0) found = last;
                    break;
                }
                cum += csum[t];
            }
            s_tok = found >= 0 ? found : arg;
        }
        __syncthreads();
        tok = s_tok;
    }
    if (threadIdx.x == 0) {
        tokens[i] = tok;
        logp[i] = (x[tok] - mx) * invT - logf(Z);
    }
}

extern "C" rlhf_status cuda_sample(const rlhf_backend *be, int32_t *tokens, float *logp,
                                   float *logits, rlhf_rng *rng, int32_t n, int32_t V,
                                   float temperature, int32_t top_k, float top_p) {
    if (n <= 0) return RLHF_OK;
    if (V <= 0 || temperature < 0 || top_k < 0 || !(top_p >= 0 && top_p <= 1))
        return RLHF_ERR(RLHF_ERR_ARG, "sample: bad arguments (V %d temperature %g top_k %d top_p %g)",
                        V, (double)temperature, top_k, (double)top_p);
    RLHF_TRY(cu_enter(be));
    cudaStream_t st = cu_state(be)->stream;
    float *hu = (float *)malloc((size_t)n * sizeof(float));
    if (!hu) return RLHF_ERR(RLHF_ERR_NOMEM, "sample: %d uniforms", n);
    be_sample_uniforms(rng, n, temperature, hu); /* as the CPU: one per row when not greedy */
    float *scratch = NULL;
    const size_t probs_floats = ((size_t)n * (size_t)V + 63) & ~(size_t)63;
    rlhf_status s = cu_scratch(be, (void **)&scratch, (probs_floats + (size_t)n) * sizeof(float));
    if (s != RLHF_OK) {
        free(hu);
        return s;
    }
    float *du = scratch + probs_floats;
    cudaError_t e = cudaMemcpyAsync(du, hu, (size_t)n * sizeof(float), cudaMemcpyHostToDevice, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st); /* hu is freed below */
    free(hu);
    if (e != cudaSuccess)
        return RLHF_ERR(RLHF_ERR_CUDA, "sample: copying uniforms: %s", cudaGetErrorString(e));
    k_sample<<<(unsigned)n, SB, 0, st>>>(tokens, logp, logits, scratch, du, V, temperature, top_k,
                                         top_p);
    CUDA_LAUNCHED();
    return RLHF_OK;
}
