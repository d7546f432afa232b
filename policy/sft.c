/* sft.c: supervised fine-tuning data: examples with a per-token loss mask, packing into rows with
 * segment starts, the training plan (shuffled epochs), and the masked SFT micro-step.
 *
 * An example of n ids gives n-1 positions: position i reads ids[i] and predicts ids[i+1], learned
 * when learn[i+1]. Rows of T positions therefore hold examples of up to T+1 ids. */
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define SFT_RNG_STREAM 0x736674ULL /* "sft": the shuffle's PCG32 stream */

sft_config sft_config_default(void) {
    sft_config c = {.lr = 2e-5f, .weight_decay = 0.1f, .epochs = 2, .final_frac = 0.1f,
                    .warmup = 0};
    return c;
}

/* ---- examples ---- */

static rlhf_status dataset_push(sft_dataset *d, const int32_t *ids, const uint8_t *learn,
                                int32_t n, int32_t max_ids, bool *added) {
    if (added) *added = false;
    if (max_ids > 0 && n > max_ids) {
        n = max_ids;
        d->n_truncated++;
    }
    bool any = false;
    for (int32_t i = 1; i < n; i++) any |= learn[i] != 0;
    if (n < 2 || !any) return RLHF_OK; /* nothing to learn */
    if (d->n == d->cap) {
        int64_t cap = d->cap ? 2 * d->cap : 64;
        sft_example *e = realloc(d->ex, (size_t)cap * sizeof *e);
        if (!e) return RLHF_ERR(RLHF_ERR_NOMEM, "sft: cannot grow the dataset to %lld examples",
                                (long long)cap);
        d->ex = e;
        d->cap = cap;
    }
    sft_example *e = &d->ex[d->n];
    e->ids = malloc((size_t)n * sizeof *e->ids);
    e->learn = malloc((size_t)n);
    if (!e->ids || !e->learn) {
        free(e->ids);
        free(e->learn);
        return RLHF_ERR(RLHF_ERR_NOMEM, "sft: cannot allocate an example of %d ids", n);
    }
    memcpy(e->ids, ids, (size_t)n * sizeof *ids);
    memcpy(e->learn, learn, (size_t)n);
    e->n = n;
    d->n++;
    if (added) *added = true;
    return RLHF_OK;
}

rlhf_status sft_dataset_add_chat(sft_dataset *d, const ds_chat_tokens *c, const uint8_t *turn_mask,
                                 int32_t n_turn_mask, int32_t max_ids, bool *added) {
    uint8_t *learn = malloc(c->n > 0 ? (size_t)c->n : 1);
    if (!learn) return RLHF_ERR(RLHF_ERR_NOMEM, "sft: out of memory");
    for (int32_t i = 0; i < c->n; i++) {
        bool on = c->roles[i] == DS_ROLE_ASSISTANT;
        if (turn_mask) on = on && c->turns[i] >= 0 && c->turns[i] < n_turn_mask &&
                            turn_mask[c->turns[i]] != 0;
        learn[i] = on;
    }
    rlhf_status st = dataset_push(d, c->ids, learn, c->n, max_ids, added);
    free(learn);
    return st;
}

rlhf_status sft_dataset_add_prompt_answer(sft_dataset *d, const int32_t *prompt, int32_t n_prompt,
                                          const int32_t *answer, int32_t n_answer, int32_t max_ids,
                                          bool *added) {
    if (n_prompt < 0 || n_answer < 0) return RLHF_ERR(RLHF_ERR_ARG, "sft: negative length");
    const int32_t n = n_prompt + n_answer;
    int32_t *ids = malloc(n > 0 ? (size_t)n * sizeof *ids : 1);
    uint8_t *learn = malloc(n > 0 ? (size_t)n : 1);
    rlhf_status st = RLHF_OK;
    if (!ids || !learn) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "sft: out of memory");
    } else {
        if (n_prompt) memcpy(ids, prompt, (size_t)n_prompt * sizeof *ids);
        if (n_answer) memcpy(ids + n_prompt, answer, (size_t)n_answer * sizeof *ids);
        for (int32_t i = 0; i < n; i++) learn[i] = i >= n_prompt;
        st = dataset_push(d, ids, learn, n, max_ids, added);
    }
    free(ids);
    free(learn);
    return st;
}

void sft_dataset_free(sft_dataset *d) {
    if (!d) return;
    for (int64_t i = 0; i < d->n; i++) {
        free(d->ex[i].ids);
        free(d->ex[i].learn);
    }
    free(d->ex);
    memset(d, 0, sizeof *d);
}

int64_t sft_example_targets(const sft_example *e) {
    int64_t n = 0;
    for (int32_t i = 1; i < e->n; i++) n += e->learn[i] != 0;
    return n;
}

/* ---- packing ---- */

void sft_pack_free(sft_pack *p) {
    if (!p) return;
    free(p->tokens);
    free(p->targets);
    free(p->mask);
    free(p->seg);
    free(p->first);
    memset(p, 0, sizeof *p);
}

/* Rows needed to pack the examples in this order (same greedy rule as the fill below). */
static int64_t count_rows(const sft_dataset *d, const int64_t *order, int64_t n, int32_t T) {
    int64_t rows = 0;
    int32_t used = T; /* forces a new row for the first example */
    for (int64_t i = 0; i < n; i++) {
        int32_t len = d->ex[order ? order[i] : i].n - 1;
        if (used + len > T) {
            rows++;
            used = 0;
        }
        used += len;
    }
    return rows;
}

/* Appends the packing of the examples (in order) to p, whose arrays have room; *row is the
 * next row to fill, *ex_count the running example count for p->first. */
static void fill_rows(const sft_dataset *d, const int64_t *order, int64_t n, sft_pack *p,
                      int32_t *row, int64_t *ex_count) {
    const int32_t T = p->T;
    int32_t used = T, r = *row - 1;
    for (int64_t i = 0; i < n; i++) {
        const sft_example *e = &d->ex[order ? order[i] : i];
        const int32_t len = e->n - 1;
        if (used + len > T) {
            r++;
            used = 0;
            p->first[r] = *ex_count;
        }
        int64_t base = (int64_t)r * T;
        for (int32_t j = 0; j < len; j++) {
            p->tokens[base + used + j] = e->ids[j];
            p->targets[base + used + j] = e->ids[j + 1];
            p->mask[base + used + j] = e->learn[j + 1] ? 1.0f : 0.0f;
            p->seg[base + used + j] = used;
        }
        used += len;
        (*ex_count)++;
    }
    *row = r + 1;
    p->first[*row] = *ex_count;
}

static rlhf_status pack_alloc(sft_pack *p, int64_t rows, int32_t T) {
    memset(p, 0, sizeof *p);
    if (rows > INT32_MAX) return RLHF_ERR(RLHF_ERR_ARG, "sft: %lld rows is too many", (long long)rows);
    const size_t N = (size_t)rows * (size_t)T;
    p->rows = (int32_t)rows;
    p->T = T;
    p->tokens = malloc(N ? N * sizeof *p->tokens : 1);
    p->targets = malloc(N ? N * sizeof *p->targets : 1);
    p->mask = malloc(N ? N * sizeof *p->mask : 1);
    p->seg = malloc(N ? N * sizeof *p->seg : 1);
    p->first = malloc(((size_t)rows + 1) * sizeof *p->first);
    if (!p->tokens || !p->targets || !p->mask || !p->seg || !p->first) {
        sft_pack_free(p);
        return RLHF_ERR(RLHF_ERR_NOMEM, "sft: cannot allocate %lld packed rows of %d", (long long)rows,
                        T);
    }
    for (size_t i = 0; i < N; i++) {
        p->tokens[i] = 0;
        p->targets[i] = -1;
        p->mask[i] = 0.0f;
        p->seg[i] = (int32_t)(i % (size_t)T); /* padding: each position its own segment */
    }
    p->first[0] = 0;
    return RLHF_OK;
}

static rlhf_status check_lengths(const sft_dataset *d, const int64_t *order, int64_t n, int32_t T) {
    if (T <= 0) return RLHF_ERR(RLHF_ERR_ARG, "sft: row length %d must be positive", T);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = order ? order[i] : i;
        if (k < 0 || k >= d->n) return RLHF_ERR(RLHF_ERR_ARG, "sft: order[%lld] = %lld out of range",
                                                (long long)i, (long long)k);
        if (d->ex[k].n < 2 || d->ex[k].n > T + 1)
            return RLHF_ERR(RLHF_ERR_ARG, "sft: example %lld has %d ids; rows of %d positions take "
                            "2..%d", (long long)k, d->ex[k].n, T, T + 1);
    }
    return RLHF_OK;
}

rlhf_status sft_pack_build(const sft_dataset *d, const int64_t *order, int64_t n, int32_t T,
                           sft_pack *out) {
    memset(out, 0, sizeof *out);
    RLHF_TRY(check_lengths(d, order, n, T));
    RLHF_TRY(pack_alloc(out, count_rows(d, order, n, T), T));
    int32_t row = 0;
    int64_t cnt = 0;
    fill_rows(d, order, n, out, &row, &cnt);
    return RLHF_OK;
}

rlhf_status sft_plan_build(const sft_dataset *d, int32_t epochs, int32_t T, uint64_t seed,
                           sft_pack *out) {
    memset(out, 0, sizeof *out);
    if (epochs <= 0) return RLHF_ERR(RLHF_ERR_ARG, "sft: epochs %d must be positive", epochs);
    if (d->n == 0) return RLHF_ERR(RLHF_ERR_ARG, "sft: no examples to train on");
    RLHF_TRY(check_lengths(d, NULL, d->n, T));
    int64_t *order = malloc((size_t)d->n * (size_t)epochs * sizeof *order); /* (epochs, n) */
    if (!order) return RLHF_ERR(RLHF_ERR_NOMEM, "sft: out of memory");
    rlhf_rng rng;
    rlhf_rng_seed(&rng, seed, SFT_RNG_STREAM);
    int64_t rows = 0;
    for (int32_t e = 0; e < epochs; e++) {
        int64_t *o = order + (int64_t)e * d->n;
        for (int64_t i = 0; i < d->n; i++) o[i] = i;
        for (int64_t i = d->n - 1; i > 0; i--) { /* Fisher-Yates */
            uint64_t r = ((uint64_t)rlhf_rng_u32(&rng) << 32) | rlhf_rng_u32(&rng);
            int64_t j = (int64_t)(r % (uint64_t)(i + 1));
            int64_t t = o[i];
            o[i] = o[j];
            o[j] = t;
        }
        rows += count_rows(d, o, d->n, T); /* epochs never share a row */
    }
    rlhf_status st = pack_alloc(out, rows, T);
    if (st == RLHF_OK) {
        int32_t row = 0;
        int64_t cnt = 0;
        for (int32_t e = 0; e < epochs; e++)
            fill_rows(d, order + (int64_t)e * d->n, d->n, out, &row, &cnt);
    }
    free(order);
    return st;
}

rlhf_status sft_step(rlhf_model *m, const sft_pack *p, int32_t r0, int32_t B, float dloss_scale,
                     float *loss, int64_t *n_targets) {
    if (r0 < 0 || B <= 0 || r0 + B > p->rows)
        return RLHF_ERR(RLHF_ERR_ARG, "sft_step: rows [%d, %d) outside the pack's %d", r0, r0 + B,
                        p->rows);
    const int64_t off = (int64_t)r0 * p->T, N = (int64_t)B * p->T;
    if (n_targets) {
        int64_t k = 0;
        for (int64_t i = 0; i < N; i++) k += p->mask[off + i] != 0.0f;
        *n_targets = k;
    }
    RLHF_TRY(rlhf_model_set_segments(m, p->seg + off, B, p->T));
    rlhf_status st = rlhf_model_lm_step(m, p->tokens + off, p->targets + off, p->mask + off, B,
                                        p->T, dloss_scale, loss);
    rlhf_model_set_segments(m, NULL, 0, 0);
    return st;
}
