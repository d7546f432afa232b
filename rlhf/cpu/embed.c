/* embed.c: token embedding lookup (CPU).
 *
 * Forward:  out[i,:] = wte[tokens[i],:]            out (N,C), tokens (N), wte (V,C).
 * Backward: dwte[tokens[i],:] += dout[i,:]          dwte (V,C) accumulated, dout (N,C).
 * Nothing is saved for backward beyond the tokens. Tokens are range-checked by the caller.
 *
 * The backward is a scatter-add in which rows repeat, so it is parallel over fixed blocks of
 * columns: each block is owned by one thread and sums the rows in index order, which makes the
 * result independent of the thread count.
 */
#include "cpu_impl.h"

rlhf_status cpu_embed_fwd(const rlhf_backend *be, float *out, const int32_t *tokens,
                          const float *wte, int64_t N, int32_t C) {
    (void)be;
#pragma omp parallel for schedule(static) if (N * C >= CPU_PAR_MIN)
    for (int64_t i = 0; i < N; i++)
        memcpy(out + i * C, wte + (int64_t)tokens[i] * C, (size_t)C * sizeof(float));
    return RLHF_OK;
}

#define EMBED_COL_BLOCK 32

rlhf_status cpu_embed_bwd(const rlhf_backend *be, float *dwte, const float *dout,
                          const int32_t *tokens, int64_t N, int32_t C, int32_t V) {
    (void)be;
    (void)V;
    int64_t nblk = (C + EMBED_COL_BLOCK - 1) / EMBED_COL_BLOCK;
#pragma omp parallel for schedule(static) if (N * C >= CPU_PAR_MIN)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t c0 = blk * EMBED_COL_BLOCK;
        int64_t nc = C - c0 < EMBED_COL_BLOCK ? C - c0 : EMBED_COL_BLOCK;
        for (int64_t i = 0; i < N; i++) {
            float *restrict d = dwte + (int64_t)tokens[i] * C + c0;
            const float *restrict s = dout + i * C + c0;
            for (int64_t c = 0; c < nc; c++)
                d[c] += s[c];
        }
    }
    return RLHF_OK;
}
