/* ppo_step.c: PPO on the trunk. An iteration's rollouts become rows of positions (ppo_batch); the
 * policy's old log-probs, the reference's log-probs and the value model's values are computed in
 * the very micro-batches the updates use (so ratio 1 and KL 0 are exact where they should be);
 * rewards, GAE and whitening come from ppo.c; a mini-batch update is one AdamW step of the policy
 * on the clipped surrogate and one of the value model on the clipped value loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

void ppo_batch_free(ppo_batch *b) {
    if (!b) return;
    free(b->tokens);
    free(b->targets);
    free(b->mask);
    free(b->logp_old);
    free(b->logp_ref);
    free(b->values);
    free(b->rewards);
    free(b->adv);
    free(b->ret);
    free(b->n_prompt);
    free(b->n_resp);
    free(b->score);
    free(b->kl);
    free(b->order);
    memset(b, 0, sizeof *b);
}

rlhf_status ppo_batch_build(const rlhf_sample_seq *seqs, int32_t n, ppo_batch *out) {
    memset(out, 0, sizeof *out);
    if (n < 1) return RLHF_ERR(RLHF_ERR_ARG, "ppo_batch_build: no rollouts");
    int32_t T = 1;
    for (int32_t i = 0; i < n; i++) {
        if (seqs[i].n_prompt < 1 || seqs[i].n_out < 1)
            return RLHF_ERR(RLHF_ERR_ARG, "ppo_batch_build: rollout %d has %d prompt and %d "
                            "response tokens (need at least 1 of each)", i, seqs[i].n_prompt,
                            seqs[i].n_out);
        int32_t len = seqs[i].n_prompt + seqs[i].n_out - 1;
        if (len > T) T = len;
    }
    ppo_batch b = {.B = n, .T = T};
    const size_t N = (size_t)n * T;
    b.tokens = calloc(N, sizeof(int32_t));
    b.targets = malloc(N * sizeof(int32_t));
    b.mask = calloc(N, sizeof(float));
    b.logp_old = calloc(N, sizeof(float));
    b.logp_ref = calloc(N, sizeof(float));
    b.values = calloc(N, sizeof(float));
    b.rewards = calloc(N, sizeof(float));
    b.adv = calloc(N, sizeof(float));
    b.ret = calloc(N, sizeof(float));
    b.n_prompt = malloc((size_t)n * sizeof(int32_t));
    b.n_resp = malloc((size_t)n * sizeof(int32_t));
    b.score = calloc((size_t)n, sizeof(float));
    b.kl = calloc((size_t)n, sizeof(float));
    b.order = malloc((size_t)n * sizeof(int32_t));
    if (!b.tokens || !b.targets || !b.mask || !b.logp_old || !b.logp_ref || !b.values ||
        !b.rewards || !b.adv || !b.ret || !b.n_prompt || !b.n_resp || !b.score || !b.kl ||
        !b.order) {
        ppo_batch_free(&b);
        return RLHF_ERR(RLHF_ERR_NOMEM, "ppo_batch_build: out of memory (%d rows of %d)", n, T);
    }
    for (size_t k = 0; k < N; k++) b.targets[k] = -1;
    for (int32_t i = 0; i < n; i++) {
        const rlhf_sample_seq *q = &seqs[i];
        const int32_t np = q->n_prompt, nr = q->n_out;
        int32_t *tok = b.tokens + (size_t)i * T, *tg = b.targets + (size_t)i * T;
        float *m = b.mask + (size_t)i * T;
        for (int32_t t = 0; t < np; t++) tok[t] = q->prompt[t];
        for (int32_t j = 0; j + 1 < nr; j++) tok[np + j] = q->out[j];
        for (int32_t j = 0; j < nr; j++) {
            tg[np - 1 + j] = q->out[j];
            m[np - 1 + j] = 1.0f;
        }
        b.n_prompt[i] = np;
        b.n_resp[i] = nr;
        b.order[i] = i;
    }
    *out = b;
    return RLHF_OK;
}

void ppo_batch_shuffle(ppo_batch *b, rlhf_rng *rng) {
    for (int32_t i = b->B - 1; i > 0; i--) {
        int32_t j = (int32_t)(rlhf_rng_u32(rng) % (uint32_t)(i + 1));
        int32_t t = b->order[i];
        b->order[i] = b->order[j];
        b->order[j] = t;
    }
}

/* ---- micro-batches ---- */

/* Gathered rows order[first .. first+count) with T = their longest; buffers sized (count, b->T). */
typedef struct micro {
    int32_t rows, T;
    int32_t *tokens, *targets; /* (rows,T) */
    float *buf, *buf2;         /* (rows,T) scratch */
} micro;

static rlhf_status micro_alloc(micro *u, const ppo_batch *b, int32_t rows) {
    memset(u, 0, sizeof *u);
    const size_t N = (size_t)rows * b->T;
    u->tokens = malloc(N * sizeof(int32_t));
    u->targets = malloc(N * sizeof(int32_t));
    u->buf = malloc(N * sizeof(float));
    u->buf2 = malloc(N * sizeof(float));
    if (!u->tokens || !u->targets || !u->buf || !u->buf2)
        return RLHF_ERR(RLHF_ERR_NOMEM, "ppo: out of memory for a micro-batch of %d rows", rows);
    return RLHF_OK;
}

static void micro_free(micro *u) {
    free(u->tokens);
    free(u->targets);
    free(u->buf);
    free(u->buf2);
    memset(u, 0, sizeof *u);
}

static void micro_gather(micro *u, const ppo_batch *b, int32_t first, int32_t count) {
    int32_t T = 1;
    for (int32_t k = 0; k < count; k++) {
        int32_t i = b->order[first + k];
        int32_t len = b->n_prompt[i] + b->n_resp[i] - 1;
        if (len > T) T = len;
    }
    u->rows = count;
    u->T = T;
    for (int32_t k = 0; k < count; k++) {
        int32_t i = b->order[first + k];
        memcpy(u->tokens + (size_t)k * T, b->tokens + (size_t)i * b->T, (size_t)T * sizeof(int32_t));
        memcpy(u->targets + (size_t)k * T, b->targets + (size_t)i * b->T,
               (size_t)T * sizeof(int32_t));
    }
}

/* Copies rows of (rows, u->T) src into the batch array dst (B, b->T) at the rows' places. */
static void micro_scatter(const micro *u, const ppo_batch *b, int32_t first, const float *src,
                          float *dst) {
    for (int32_t k = 0; k < u->rows; k++) {
        int32_t i = b->order[first + k];
        float *d = dst + (size_t)i * b->T;
        const float *s = src + (size_t)k * u->T;
        const float *m = b->mask + (size_t)i * b->T;
        for (int32_t t = 0; t < b->T; t++) d[t] = t < u->T && m[t] != 0 ? s[t] : 0.0f;
    }
}

/* Gathers the batch array src (B, b->T) for the micro-batch's rows into dst (rows, u->T). */
static void micro_take(const micro *u, const ppo_batch *b, int32_t first, const float *src,
                       float *dst) {
    for (int32_t k = 0; k < u->rows; k++) {
        int32_t i = b->order[first + k];
        memcpy(dst + (size_t)k * u->T, src + (size_t)i * b->T, (size_t)u->T * sizeof(float));
    }
}

static rlhf_status check_grouping(const rlhf_model *m, const ppo_batch *b, int32_t minibatch,
                                  int32_t micro_rows, const char *what) {
    if (minibatch < 1 || micro_rows < 1)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: mini-batch %d and micro-batch %d must be >= 1", what,
                        minibatch, micro_rows);
    const rlhf_model_config *c = rlhf_model_get_config(m);
    if (b->T > c->seq_len)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: rollouts of %d positions exceed the model's seq_len %d",
                        what, b->T, c->seq_len);
    return RLHF_OK;
}

/* Runs fn over the micro-batches of the first epoch's grouping. */
static rlhf_status forward_all(rlhf_model *m, const ppo_batch *b, int32_t minibatch,
                               int32_t micro_rows, bool values, float *out) {
    RLHF_TRY(check_grouping(m, b, minibatch, micro_rows, values ? "ppo_batch_values"
                                                                : "ppo_batch_logprobs"));
    micro u;
    rlhf_status st = micro_alloc(&u, b, micro_rows < b->B ? micro_rows : b->B);
    for (int32_t s = 0; st == RLHF_OK && s < b->B; s += minibatch) {
        int32_t end = s + minibatch < b->B ? s + minibatch : b->B;
        for (int32_t f = s; st == RLHF_OK && f < end; f += micro_rows) {
            int32_t cnt = f + micro_rows < end ? micro_rows : end - f;
            micro_gather(&u, b, f, cnt);
            RLHF_TRY_GOTO(st, rlhf_model_forward(m, u.tokens, cnt, u.T), done);
            if (values) RLHF_TRY_GOTO(st, rlhf_model_values(m, u.buf), done);
            else RLHF_TRY_GOTO(st, rlhf_model_logprobs(m, u.targets, u.buf), done);
            micro_scatter(&u, b, f, u.buf, out);
        }
    }
done:
    micro_free(&u);
    return st;
}

rlhf_status ppo_batch_logprobs(rlhf_model *m, const ppo_batch *b, int32_t minibatch, int32_t micro,
                               float *out) {
    if (rlhf_model_get_config(m)->head != RLHF_HEAD_LM)
        return RLHF_ERR(RLHF_ERR_ARG, "ppo_batch_logprobs: the model has no LM head");
    return forward_all(m, b, minibatch, micro, false, out);
}

rlhf_status ppo_batch_values(rlhf_model *m, const ppo_batch *b, int32_t minibatch, int32_t micro,
                             float *out) {
    if (rlhf_model_get_config(m)->head != RLHF_HEAD_SCALAR)
        return RLHF_ERR(RLHF_ERR_ARG, "ppo_batch_values: the model has no scalar head");
    return forward_all(m, b, minibatch, micro, true, out);
}

/* ---- rewards and advantages ---- */

rlhf_status ppo_batch_advantages(ppo_batch *b, const float *score, const uint8_t *no_eos,
                                 const ppo_config *c, ppo_adv_stats *st) {
    double ssum = 0, klsum = 0, len = 0, vsum = 0, rsum = 0, ntok = 0;
    for (int32_t i = 0; i < b->B; i++) {
        const size_t o = (size_t)i * b->T + (size_t)(b->n_prompt[i] - 1);
        const int32_t n = b->n_resp[i];
        float sc = score[i] + (no_eos && no_eos[i] ? c->no_eos_penalty : 0.0f);
        b->score[i] = sc;
        RLHF_TRY(ppo_rewards(b->logp_old + o, b->logp_ref + o, n, sc, c->beta, c->kl,
                             b->rewards + o, &b->kl[i]));
        RLHF_TRY(ppo_gae(b->rewards + o, b->values + o, n, c->gamma, c->lambda, b->adv + o,
                         b->ret + o));
        ssum += sc;
        klsum += b->kl[i];
        len += n;
        for (int32_t j = 0; j < n; j++) {
            vsum += b->values[o + j];
            rsum += b->ret[o + j];
        }
        ntok += n;
    }
    RLHF_TRY(ppo_whiten(b->adv, b->mask, (int64_t)b->B * b->T, true, b->adv));
    if (st) {
        st->score_mean = ssum / b->B;
        st->kl_mean = klsum / b->B;
        st->resp_len = len / b->B;
        st->value_mean = vsum / ntok;
        st->ret_mean = rsum / ntok;
    }
    return RLHF_OK;
}

/* ---- updates ---- */

rlhf_status ppo_minibatch_update(rlhf_model *policy, rlhf_model *value, const ppo_batch *b,
                                 int32_t first, int32_t count, int32_t micro_rows,
                                 const ppo_config *c, bool want_entropy, ppo_update_stats *st) {
    if (first < 0 || count < 1 || first + count > b->B)
        return RLHF_ERR(RLHF_ERR_ARG, "ppo_minibatch_update: rows [%d, %d) outside the batch of %d",
                        first, first + count, b->B);
    RLHF_TRY(check_grouping(policy, b, count, micro_rows, "ppo_minibatch_update"));
    const int32_t V = rlhf_model_get_config(policy)->vocab_size;
    /* tokens of the mini-batch: every micro-batch's losses are weighted by its share */
    int64_t ntok = 0;
    for (int32_t k = 0; k < count; k++) ntok += b->n_resp[b->order[first + k]];
    micro u;
    float *mask = NULL, *lold = NULL, *adv = NULL, *logits = NULL;
    ppo_update_stats acc = {0};
    double ent = 0;
    rlhf_status st_ = micro_alloc(&u, b, micro_rows < count ? micro_rows : count);
    const size_t cap = (size_t)(micro_rows < count ? micro_rows : count) * b->T;
    if (st_ == RLHF_OK) {
        mask = malloc(cap * sizeof(float));
        lold = malloc(cap * sizeof(float));
        adv = malloc(cap * sizeof(float));
        if (want_entropy) logits = malloc(cap * (size_t)V * sizeof(float));
        if (!mask || !lold || !adv || (want_entropy && !logits))
            st_ = RLHF_ERR(RLHF_ERR_NOMEM, "ppo_minibatch_update: out of memory");
    }
    if (st_ != RLHF_OK) goto done;

    /* policy */
    RLHF_TRY_GOTO(st_, rlhf_model_zero_grad(policy), done);
    for (int32_t f = first; f < first + count; f += micro_rows) {
        int32_t cnt = f + micro_rows < first + count ? micro_rows : first + count - f;
        micro_gather(&u, b, f, cnt);
        const int64_t n = (int64_t)cnt * u.T;
        micro_take(&u, b, f, b->mask, mask);
        micro_take(&u, b, f, b->logp_old, lold);
        micro_take(&u, b, f, b->adv, adv);
        RLHF_TRY_GOTO(st_, rlhf_model_forward(policy, u.tokens, cnt, u.T), done);
        RLHF_TRY_GOTO(st_, rlhf_model_logprobs(policy, u.targets, u.buf), done);
        if (want_entropy) {
            RLHF_TRY_GOTO(st_, rlhf_model_get_logits(policy, logits), done);
            for (int64_t k = 0; k < n; k++)
                if (mask[k] != 0) ent += ppo_entropy(logits + (size_t)k * V, V);
        }
        ppo_policy_stats ps;
        RLHF_TRY_GOTO(st_, ppo_policy_loss(u.buf, lold, adv, mask, n, c->clip, u.buf2, &ps), done);
        const double w = (double)ps.n / (double)ntok;
        for (int64_t k = 0; k < n; k++) u.buf2[k] = (float)(u.buf2[k] * w);
        acc.pol.loss += ps.loss * w;
        acc.pol.clip_frac += ps.clip_frac * w;
        acc.pol.approx_kl += ps.approx_kl * w;
        acc.pol.ratio_mean += ps.ratio_mean * w;
        if (ps.ratio_max_dev > acc.pol.ratio_max_dev) acc.pol.ratio_max_dev = ps.ratio_max_dev;
        acc.pol.n += ps.n;
        RLHF_TRY_GOTO(st_, rlhf_model_backward_logprobs(policy, u.targets, u.buf2), done);
    }
    RLHF_TRY_GOTO(st_, rlhf_model_adamw_step(policy, &c->adamw, c->lr, &acc.policy_grad_norm),
                  done);
    acc.entropy = want_entropy ? ent / (double)ntok : NAN;

    /* value */
    if (value) {
        RLHF_TRY_GOTO(st_, check_grouping(value, b, count, micro_rows, "ppo_minibatch_update"),
                      done);
        float *vold = lold, *ret = adv; /* reuse */
        RLHF_TRY_GOTO(st_, rlhf_model_zero_grad(value), done);
        for (int32_t f = first; f < first + count; f += micro_rows) {
            int32_t cnt = f + micro_rows < first + count ? micro_rows : first + count - f;
            micro_gather(&u, b, f, cnt);
            const int64_t n = (int64_t)cnt * u.T;
            micro_take(&u, b, f, b->mask, mask);
            micro_take(&u, b, f, b->values, vold);
            micro_take(&u, b, f, b->ret, ret);
            RLHF_TRY_GOTO(st_, rlhf_model_forward(value, u.tokens, cnt, u.T), done);
            RLHF_TRY_GOTO(st_, rlhf_model_values(value, u.buf), done);
            double vl = 0, vc = 0;
            RLHF_TRY_GOTO(st_, ppo_value_loss(u.buf, vold, ret, mask, n, c->value_clip, u.buf2,
                                              &vl, &vc), done);
            int64_t nm = 0;
            for (int64_t k = 0; k < n; k++) nm += mask[k] != 0;
            const double w = (double)nm / (double)ntok;
            for (int64_t k = 0; k < n; k++) u.buf2[k] = (float)(u.buf2[k] * w);
            acc.value_loss += vl * w;
            acc.value_clip_frac += vc * w;
            RLHF_TRY_GOTO(st_, rlhf_model_backward_values(value, u.buf2), done);
        }
        RLHF_TRY_GOTO(st_, rlhf_model_adamw_step(value, &c->adamw, c->lr, &acc.value_grad_norm),
                      done);
    } else {
        acc.value_loss = NAN;
        acc.value_clip_frac = NAN;
    }
    if (st) *st = acc;
done:
    micro_free(&u);
    free(mask);
    free(lold);
    free(adv);
    free(logits);
    return st_;
}

/* ---- one iteration ---- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

rlhf_status ppo_iteration(rlhf_model *policy, rlhf_sampler *smp, rlhf_model *reference,
                          rlhf_model *value, const ppo_config *c, const rlhf_sample_config *sc,
                          rlhf_sample_seq *seqs, int32_t n, int32_t micro, ppo_score_fn score,
                          void *ctx, rlhf_rng *rng, ppo_batch *batch, ppo_iter_stats *st) {
    if (n < 1 || !score) return RLHF_ERR(RLHF_ERR_ARG, "ppo_iteration: no rollouts or no reward");
    ppo_iter_stats s = {0};
    ppo_batch b = {0};
    float *sc_buf = NULL;
    uint8_t *no_eos = NULL;
    rlhf_status st_;
    double t0 = now_s();
    RLHF_TRY(rlhf_sampler_run(smp, sc, seqs, n, NULL, NULL));
    s.t_generate = now_s() - t0;
    RLHF_TRY(ppo_batch_build(seqs, n, &b));
    sc_buf = malloc((size_t)n * sizeof(float));
    no_eos = malloc((size_t)n);
    if (!sc_buf || !no_eos) {
        st_ = RLHF_ERR(RLHF_ERR_NOMEM, "ppo_iteration: out of memory");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        no_eos[i] = seqs[i].finish != RLHF_FINISH_EOS;
        s.no_eos_frac += no_eos[i];
    }
    s.no_eos_frac /= n;
    ppo_batch_shuffle(&b, rng);

    t0 = now_s();
    RLHF_TRY_GOTO(st_, score(ctx, seqs, n, sc_buf), done);
    for (int32_t i = 0; i < n; i++)
        if (!isfinite(sc_buf[i])) {
            st_ = RLHF_ERR(RLHF_ERR_ARG, "ppo_iteration: reward of rollout %d is not finite", i);
            goto done;
        }
    s.t_score = now_s() - t0;

    t0 = now_s();
    RLHF_TRY_GOTO(st_, ppo_batch_logprobs(policy, &b, c->minibatch, micro, b.logp_old), done);
    RLHF_TRY_GOTO(st_, ppo_batch_logprobs(reference, &b, c->minibatch, micro, b.logp_ref), done);
    if (value) RLHF_TRY_GOTO(st_, ppo_batch_values(value, &b, c->minibatch, micro, b.values), done);
    s.t_reference = now_s() - t0;

    RLHF_TRY_GOTO(st_, ppo_batch_advantages(&b, sc_buf, no_eos, c, &s.adv), done);
    s.explained_var = ppo_explained_variance(b.values, b.ret, b.mask, (int64_t)b.B * b.T);

    t0 = now_s();
    double ntok = 0;
    for (int32_t e = 0; e < c->epochs; e++) {
        if (e > 0) ppo_batch_shuffle(&b, rng);
        for (int32_t f = 0; f < n; f += c->minibatch) {
            int32_t cnt = f + c->minibatch < n ? c->minibatch : n - f;
            ppo_update_stats u;
            RLHF_TRY_GOTO(st_, ppo_minibatch_update(policy, value, &b, f, cnt, micro, c, c->entropy, &u),
                          done);
            if (s.updates == 0) s.first_ratio_dev = u.pol.ratio_max_dev;
            const double w = (double)u.pol.n;
            s.policy_loss += u.pol.loss * w;
            s.clip_frac += u.pol.clip_frac * w;
            s.approx_kl += u.pol.approx_kl * w;
            s.entropy += u.entropy * w;
            s.value_loss += value ? u.value_loss * w : 0;
            s.value_clip_frac += value ? u.value_clip_frac * w : 0;
            ntok += w;
            s.updates++;
        }
    }
    s.policy_loss /= ntok;
    s.clip_frac /= ntok;
    s.approx_kl /= ntok;
    s.entropy /= ntok;
    s.value_loss = value ? s.value_loss / ntok : NAN;
    s.value_clip_frac = value ? s.value_clip_frac / ntok : NAN;
    s.t_train = now_s() - t0;
    if (st) *st = s;
    st_ = RLHF_OK;
done:
    free(sc_buf);
    free(no_eos);
    if (st_ == RLHF_OK && batch) *batch = b;
    else ppo_batch_free(&b);
    return st_;
}
