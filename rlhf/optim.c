/* optim.c: AdamW with decoupled weight decay (Llama 2: beta 0.9/0.95, eps 1e-5, wd 0.1, not on
 * norm gains), global gradient-norm clipping, and the warm-up + cosine learning-rate schedule. */
#include <math.h>

#include "model_impl.h"

rlhf_adamw_config rlhf_adamw_default(void) {
    rlhf_adamw_config c = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-5f, .weight_decay = 0.1f,
                           .clip_norm = 1.0f};
    return c;
}

float rlhf_schedule_lr(const rlhf_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    if (step < s->warmup_steps) return s->peak_lr * (float)(step + 1) / (float)s->warmup_steps;
    float lo = s->final_frac * s->peak_lr;
    if (s->total_steps <= s->warmup_steps || step >= s->total_steps) {
        return s->total_steps > 0 ? lo : s->peak_lr; /* total 0: constant peak */
    }
    double progress = (double)(step - s->warmup_steps) / (double)(s->total_steps - s->warmup_steps);
    return lo + (s->peak_lr - lo) * (float)(0.5 * (1.0 + cos(3.14159265358979323846 * progress)));
}

rlhf_status rlhf_model_adamw_step(rlhf_model *m, const rlhf_adamw_config *oc, float lr,
                                  float *grad_norm) {
    RLHF_TRY(model_alloc_moments(m));
    const rlhf_backend *be = m->be;
    double ss = 0;
    RLHF_TRY(BE_CALL(be, sumsq, &ss, m->grads, m->P));
    float norm = (float)sqrt(ss);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return RLHF_ERR(RLHF_ERR_ARG, "adamw: gradient norm is %f; step skipped", (double)norm);
    /* as torch.nn.utils.clip_grad_norm_: scale by clip/(norm+1e-6) when that is below 1 */
    float scale = 1.0f;
    if (oc->clip_norm > 0) {
        float coef = oc->clip_norm / (norm + 1e-6f);
        if (coef < 1.0f) scale = coef;
    }
    m->step++;
    float bc1 = (float)(1.0 - pow((double)oc->beta1, (double)m->step));
    float bc2 = (float)(1.0 - pow((double)oc->beta2, (double)m->step));
    for (int i = 0; i < RLHF_P_COUNT; i++) {
        const rlhf_param_info *p = &m->table[i];
        if (p->numel == 0) continue;
        RLHF_TRY(BE_CALL(be, adamw, m->params + p->offset, m->grads + p->offset,
                         m->adam_m + p->offset, m->adam_v + p->offset, p->numel, lr, oc->beta1,
                         oc->beta2, oc->eps, p->decay ? oc->weight_decay : 0.0f, scale, bc1, bc2));
    }
    return RLHF_OK;
}
