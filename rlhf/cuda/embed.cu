/* embed.cu: token embedding lookup (CUDA).
 *
 * Forward:  out[i,:] = wte[tokens[i],:]            out (N,C), tokens (N), wte (V,C).
 * Backward: dwte[tokens[i],:] += dout[i,:]          dwte (V,C) accumulated, dout (N,C).
 * Nothing is saved for backward beyond the tokens. Tokens are range-checked by the caller (the
 * backward checks them again on the host).
 *
 * The backward is deterministic without atomics: the tokens are copied to the host and stably
 * counting-sorted there (N int32, once per training step), which gives the rows of each distinct
 * token in index order; one thread per (distinct token, column) then adds those rows to
 * dwte[token, column] one after another in index order, exactly the CPU's order of additions.
 */
#include <stdlib.h>

#include "cuda_impl.h"

#define EMB_THREADS 256

__global__ void k_embed_fwd(float *out, const int32_t *tokens, const float *wte, int64_t N,
                            int32_t C) {
    const int64_t total = N * C;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e / C, c = e - i * C;
        out[e] = wte[(int64_t)tokens[i] * C + c];
    }
}

/* grid (nseg, ceil(C/EMB_THREADS)); seg s covers order[start[s] .. start[s+1]) of token tok[s]. */
__global__ void k_embed_bwd(float *dwte, const float *dout, const int32_t *order,
                            const int32_t *start, const int32_t *tok, int32_t C) {
    const int64_t s = blockIdx.x;
    const int64_t c = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float *d = dwte + (int64_t)tok[s] * C + c;
    float acc = *d;
    for (int32_t r = start[s]; r < start[s + 1]; r++) acc += dout[(int64_t)order[r] * C + c];
    *d = acc;
}

extern "C" rlhf_status cuda_embed_fwd(const rlhf_backend *be, float *out, const int32_t *tokens,
                                      const float *wte, int64_t N, int32_t C) {
    if (N <= 0 || C <= 0) return RLHF_OK;
    RLHF_TRY(cu_enter(be));
    k_embed_fwd<<<cu_blocks(N * C, EMB_THREADS), EMB_THREADS, 0, cu_state(be)->stream>>>(
        out, tokens, wte, N, C);
    CUDA_LAUNCHED();
    return RLHF_OK;
}

extern "C" rlhf_status cuda_embed_bwd(const rlhf_backend *be, float *dwte, const float *dout,
                                      const int32_t *tokens, int64_t N, int32_t C, int32_t V) {
    if (N <= 0 || C <= 0) return RLHF_OK;
    if (N > 0x7fffffffLL) return RLHF_ERR(RLHF_ERR_ARG, "embed_bwd: N=%lld too large", (long long)N);
    if (V <= 0) return RLHF_ERR(RLHF_ERR_ARG, "embed_bwd: V=%d", V);
    RLHF_TRY(cu_enter(be));
    cudaStream_t st = cu_state(be)->stream;
    /* host: tok (N) | order (N) | start (N+1) | seg_tok (N) | count (V+1) */
    int32_t *h = (int32_t *)malloc(((size_t)N * 4 + 1 + (size_t)V + 1) * sizeof(int32_t));
    if (!h) return RLHF_ERR(RLHF_ERR_NOMEM, "embed_bwd: host buffers for %lld tokens", (long long)N);
    int32_t *tok = h, *order = h + N, *start = order + N, *seg_tok = start + N + 1,
            *count = seg_tok + N;
    rlhf_status status = RLHF_OK;
    cudaError_t e = cudaMemcpyAsync(tok, tokens, (size_t)N * 4, cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) {
        free(h);
        return RLHF_ERR(RLHF_ERR_CUDA, "embed_bwd: copying tokens: %s", cudaGetErrorString(e));
    }
    for (int32_t v = 0; v <= V; v++) count[v] = 0;
    for (int64_t i = 0; i < N; i++) {
        if (tok[i] < 0 || tok[i] >= V) {
            status = RLHF_ERR(RLHF_ERR_ARG, "embed_bwd: token %d at row %lld outside [0, %d)",
                              tok[i], (long long)i, V);
            free(h);
            return status;
        }
        count[tok[i] + 1]++;
    }
    int32_t nseg = 0;
    for (int32_t v = 0; v < V; v++) {
        if (count[v + 1]) {
            seg_tok[nseg] = v;
            start[nseg++] = count[v]; /* count[v] is the prefix sum so far */
        }
        count[v + 1] += count[v];
    }
    start[nseg] = (int32_t)N;
    for (int64_t i = 0; i < N; i++) order[count[tok[i]]++] = (int32_t)i; /* stable */
    /* device: order (N) | start (nseg+1) | seg_tok (nseg) */
    int32_t *d;
    size_t nbytes = ((size_t)N + 2 * (size_t)nseg + 1) * sizeof(int32_t);
    status = cu_scratch(be, (void **)&d, nbytes);
    if (status == RLHF_OK) {
        e = cudaMemcpyAsync(d, order, (size_t)N * 4, cudaMemcpyHostToDevice, st);
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(d + N, start, ((size_t)nseg + 1) * 4, cudaMemcpyHostToDevice, st);
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(d + N + nseg + 1, seg_tok, (size_t)nseg * 4, cudaMemcpyHostToDevice,
                                st);
        if (e == cudaSuccess) {
            dim3 grid((unsigned)nseg, (unsigned)((C + EMB_THREADS - 1) / EMB_THREADS));
            k_embed_bwd<<<grid, EMB_THREADS, 0, st>>>(dwte, dout, d, d + N, d + N + nseg + 1, C);
            e = cudaGetLastError();
        }
        /* the host buffers must outlive the asynchronous copies */
        if (e == cudaSuccess) e = cudaStreamSynchronize(st);
        if (e != cudaSuccess)
            status = RLHF_ERR(RLHF_ERR_CUDA, "embed_bwd: %s", cudaGetErrorString(e));
    }
    free(h);
    return status;
}
