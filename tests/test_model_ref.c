/* test_model_ref.c: the whole model (forward, loss, log-probs, values and every parameter
 * gradient) against an independent PyTorch float64 reference, on a tiny GQA configuration.
 *
 * The fixture tests/fixtures/tiny_ref.bin is written by experiments/model_reference/torch_reference.py (run it
 * with /usr/bin/python3 to regenerate; it is deterministic). Its layout (little endian; i32 =
 * int32, f32 = IEEE float32):
 *   header, 16 x i32: [0] magic 0x31464552 ("REF1")  [1] version 1
 *       [2] dim C [3] hidden FF [4] n_layer L [5] n_head NH [6] n_head_kv NKV [7] vocab V
 *       [8] seq_len [9] B [10] T [11] n_cases [12..15] 0
 *   2 x f32: norm_eps, rope_theta
 *   n_cases records, each:
 *       4 x i32: case id (0 'a', 1 'b', 2 'c', 3 'd'), head (0 LM, 1 scalar), tied (0/1), P
 *       i32 tokens[B*T] | i32 targets[B*T] | f32 weights[B*T] | f32 params[P] (rlhf.h table order)
 *       f32 objective | f32 out[B*T] | f32 grads[P]
 * Cases:
 *   a  LM head untied: objective = masked mean cross-entropy sum(mask*(-logp))/sum(mask)
 *      (weights = mask, with zeros); out = logp (B,T). Run as forward + logprobs (out), then
 *      lm_step(dloss_scale 1) (loss and grads). Then, without zero_grad, lm_step(dloss_scale 0.5)
 *      must leave 1.5 x the reference gradients (accumulation and scaling).
 *   b  the same with the LM head tied to the token embedding.
 *   c  scalar head: objective = sum(values * R) (weights = R); out = values. Run as forward +
 *      values + backward_values(R).
 *   d  LM head untied: objective = sum(logp * G) (weights = G), some targets -1 (logp 0, no
 *      gradient). Run as forward + logprobs + backward_logprobs(targets, G).
 * Every comparison is a normalized error max|a-b| / max(max|b|, tiny) per tensor (per layer for
 * stacked tensors) and must be <= 1e-4; failures name the tensor, its error and worst index.
 */
#include "rlhf.h"
#include "test.h"

#include <stdint.h>

#define REF_MAGIC 0x31464552
#define REF_VERSION 1
#define TOL 1e-4

typedef struct ref_case {
    int32_t id, head, tied, P;
    const int32_t *tokens, *targets; /* (B,T) */
    const float *weights;            /* (B,T) mask / R / G */
    const float *params;             /* (P) */
    float objective;
    const float *out;   /* (B,T) logp or values */
    const float *grads; /* (P) */
} ref_case;

typedef struct ref_file {
    unsigned char *data;
    size_t size, pos;
    int32_t C, FF, L, NH, NKV, V, S, B, T, n_cases;
    float eps, theta;
    ref_case cases[8];
} ref_file;

/* Returns a pointer to the next n bytes of the file, NULL if it is truncated. */
static const void *take(ref_file *r, size_t n) {
    if (r->size - r->pos < n) return NULL;
    const void *p = r->data + r->pos;
    r->pos += n;
    return p;
}

/* Loads and parses the fixture; returns 0 on success, prints why and returns -1 otherwise. */
static int ref_load(ref_file *r, const char *path) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "FAIL cannot open fixture %s (set RLHF_SRC to the source tree)\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    r->data = malloc(sz > 0 ? (size_t)sz : 1);
    if (!r->data || sz <= 0 || fread(r->data, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "FAIL cannot read fixture %s\n", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    r->size = (size_t)sz;
    const int32_t *h = take(r, 16 * sizeof(int32_t));
    const float *hf = take(r, 2 * sizeof(float));
    if (!h || !hf || h[0] != REF_MAGIC || h[1] != REF_VERSION) {
        fprintf(stderr, "FAIL %s: bad header (magic/version)\n", path);
        return -1;
    }
    r->C = h[2], r->FF = h[3], r->L = h[4], r->NH = h[5], r->NKV = h[6], r->V = h[7];
    r->S = h[8], r->B = h[9], r->T = h[10], r->n_cases = h[11];
    r->eps = hf[0], r->theta = hf[1];
    if (r->n_cases < 1 || r->n_cases > 8 || r->B < 1 || r->T < 1) {
        fprintf(stderr, "FAIL %s: bad header values\n", path);
        return -1;
    }
    size_t BT = (size_t)r->B * r->T;
    for (int i = 0; i < r->n_cases; i++) {
        ref_case *c = &r->cases[i];
        const int32_t *ch = take(r, 4 * sizeof(int32_t));
        if (!ch) goto truncated;
        c->id = ch[0], c->head = ch[1], c->tied = ch[2], c->P = ch[3];
        if (c->P <= 0) goto truncated;
        const float *obj;
        if (!(c->tokens = take(r, BT * 4)) || !(c->targets = take(r, BT * 4)) ||
            !(c->weights = take(r, BT * 4)) || !(c->params = take(r, (size_t)c->P * 4)) ||
            !(obj = take(r, 4)) || !(c->out = take(r, BT * 4)) ||
            !(c->grads = take(r, (size_t)c->P * 4)))
            goto truncated;
        c->objective = *obj;
    }
    if (r->pos != r->size) {
        fprintf(stderr, "FAIL %s: %zu trailing bytes\n", path, r->size - r->pos);
        return -1;
    }
    return 0;
truncated:
    fprintf(stderr, "FAIL %s: truncated or inconsistent case record\n", path);
    return -1;
}

/* Normalized error max|a-b| / max(max|b|, tiny) over n floats; NaN/Inf in a gives INFINITY.
 * *worst gets the index of the largest |a-b|. */
static double norm_err(const float *a, const float *b, size_t n, size_t *worst) {
    double dmax = 0, bmax = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!isfinite(a[i])) d = INFINITY;
        if (d > dmax) dmax = d, w = i;
        if (fabs((double)b[i]) > bmax) bmax = fabs((double)b[i]);
    }
    if (worst) *worst = w;
    if (dmax == 0) return 0;
    return dmax / fmax(bmax, 1e-30);
}

/* Checks one named tensor; returns its error. */
static double check_tensor(const char *what, const char *name, const float *got, const float *want,
                           size_t n) {
    size_t w = 0;
    double e = norm_err(got, want, n, &w);
    CHECKF(e <= TOL, "%s: %s: normalized error %.3e at index %zu (got %.8g, want %.8g)", what, name,
           e, w, (double)got[w], (double)want[w]);
    return e;
}

/* Checks all P gradients tensor by tensor (per layer for stacked ones); returns the worst error
 * and its tensor name in worst_name. scale multiplies the reference. */
static double check_grads(const char *what, const rlhf_model_config *cfg, const float *got,
                          const float *want, double scale, char *worst_name, size_t cap) {
    rlhf_param_info tab[RLHF_P_COUNT];
    rlhf_param_table(cfg, tab);
    double worst = 0;
    float *ref = NULL;
    for (int p = 0; p < RLHF_P_COUNT; p++) {
        if (tab[p].numel == 0) continue;
        int nl = tab[p].per_layer ? cfg->n_layer : 1;
        size_t per = (size_t)(tab[p].numel / nl);
        for (int l = 0; l < nl; l++) {
            char name[160];
            if (tab[p].per_layer) snprintf(name, sizeof name, tab[p].name, l);
            else snprintf(name, sizeof name, "%s", tab[p].name);
            const float *g = got + tab[p].offset + (size_t)l * per;
            const float *w = want + tab[p].offset + (size_t)l * per;
            if (scale != 1.0) {
                free(ref);
                ref = malloc(per * sizeof(float));
                for (size_t i = 0; i < per; i++) ref[i] = (float)(scale * w[i]);
                w = ref;
            }
            double e = check_tensor(what, name, g, w, per);
            if (e >= worst) {
                worst = e;
                snprintf(worst_name, cap, "%s", name);
            }
        }
    }
    free(ref);
    return worst;
}

static double rel_scalar(double got, double want) {
    double d = fabs(got - want) / fmax(fabs(want), 1e-30);
    return isfinite(got) ? d : INFINITY;
}

static void run_case(const ref_file *r, const ref_case *c, const rlhf_backend *be) {
    const char label[2] = {(char)('a' + c->id), 0};
    char what[16];
    snprintf(what, sizeof what, "case %s", label);
    rlhf_model_config cfg = rlhf_config_default();
    cfg.dim = r->C, cfg.hidden_dim = r->FF, cfg.n_layer = r->L, cfg.n_head = r->NH;
    cfg.n_head_kv = r->NKV, cfg.vocab_size = r->V, cfg.seq_len = r->S;
    cfg.norm_eps = r->eps, cfg.rope_theta = r->theta;
    cfg.head = c->head ? RLHF_HEAD_SCALAR : RLHF_HEAD_LM;
    cfg.tied_head = c->tied != 0;
    cfg.trainable = true;
    CHECK_OK(rlhf_config_validate(&cfg));
    rlhf_param_info tab[RLHF_P_COUNT];
    int64_t P = rlhf_param_table(&cfg, tab);
    CHECKF(P == c->P, "%s: parameter count %lld, fixture has %d", what, (long long)P, c->P);
    if (P != c->P) return;

    const int32_t B = r->B, T = r->T;
    const size_t BT = (size_t)B * T;
    rlhf_model *m = NULL;
    float *grads = calloc((size_t)P, sizeof(float));
    float *out = calloc(BT, sizeof(float));
    rlhf_status st = rlhf_model_init(&m, &cfg, be, B, T);
    CHECKF(st == RLHF_OK, "%s: rlhf_model_init -> %s (%s)", what, rlhf_status_name(st),
           rlhf_last_error());
    if (st != RLHF_OK || !grads || !out) goto done;
    CHECK_OK(rlhf_model_set_params(m, c->params));
    CHECK_OK(rlhf_model_zero_grad(m));

    double e_obj = 0, e_out = 0, e_grad = 0, e_acc = -1;
    char worst_name[160] = "", acc_name[160] = "";
    if (c->id == 0 || c->id == 1) { /* masked mean cross-entropy through lm_step */
        CHECK_OK(rlhf_model_forward(m, c->tokens, B, T));
        CHECK_OK(rlhf_model_logprobs(m, c->targets, out));
        e_out = check_tensor(what, "logp", out, c->out, BT);
        float loss = NAN;
        CHECK_OK(rlhf_model_lm_step(m, c->tokens, c->targets, c->weights, B, T, 1.0f, &loss));
        e_obj = rel_scalar(loss, c->objective);
        CHECKF(e_obj <= TOL, "%s: loss %.8g, reference %.8g (rel err %.3e)", what, (double)loss,
               (double)c->objective, e_obj);
        CHECK_OK(rlhf_model_get_grads(m, grads));
        e_grad = check_grads(what, &cfg, grads, c->grads, 1.0, worst_name, sizeof worst_name);
        /* Accumulation and scaling: + 0.5 x the same gradient without zero_grad. */
        char what2[96];
        snprintf(what2, sizeof what2, "%s (accumulated, dloss_scale 0.5)", what);
        CHECK_OK(rlhf_model_lm_step(m, c->tokens, c->targets, c->weights, B, T, 0.5f, NULL));
        CHECK_OK(rlhf_model_get_grads(m, grads));
        e_acc = check_grads(what2, &cfg, grads, c->grads, 1.5, acc_name, sizeof acc_name);
    } else if (c->id == 2) { /* scalar head */
        CHECK_OK(rlhf_model_forward(m, c->tokens, B, T));
        CHECK_OK(rlhf_model_values(m, out));
        e_out = check_tensor(what, "values", out, c->out, BT);
        double obj = 0;
        for (size_t i = 0; i < BT; i++) obj += (double)out[i] * c->weights[i];
        /* sum(values*R) can cancel; measure it against the scale of its terms. */
        double scale = 0;
        for (size_t i = 0; i < BT; i++) scale += fabs((double)c->out[i] * c->weights[i]);
        e_obj = fabs(obj - c->objective) / fmax(scale, 1e-30);
        CHECKF(e_obj <= TOL, "%s: objective %.8g, reference %.8g (err %.3e)", what, obj,
               (double)c->objective, e_obj);
        CHECK_OK(rlhf_model_backward_values(m, c->weights));
        CHECK_OK(rlhf_model_get_grads(m, grads));
        e_grad = check_grads(what, &cfg, grads, c->grads, 1.0, worst_name, sizeof worst_name);
    } else if (c->id == 3) { /* log-prob gradient with ignored targets */
        CHECK_OK(rlhf_model_forward(m, c->tokens, B, T));
        CHECK_OK(rlhf_model_logprobs(m, c->targets, out));
        e_out = check_tensor(what, "logp", out, c->out, BT);
        for (size_t i = 0; i < BT; i++)
            if (c->targets[i] < 0)
                CHECKF(out[i] == 0.0f, "%s: logp at ignored target %zu is %g, not 0", what, i,
                       (double)out[i]);
        double obj = 0, scale = 0;
        for (size_t i = 0; i < BT; i++) obj += (double)out[i] * c->weights[i];
        for (size_t i = 0; i < BT; i++) scale += fabs((double)c->out[i] * c->weights[i]);
        e_obj = fabs(obj - c->objective) / fmax(scale, 1e-30);
        CHECKF(e_obj <= TOL, "%s: objective %.8g, reference %.8g (err %.3e)", what, obj,
               (double)c->objective, e_obj);
        CHECK_OK(rlhf_model_backward_logprobs(m, c->targets, c->weights));
        CHECK_OK(rlhf_model_get_grads(m, grads));
        e_grad = check_grads(what, &cfg, grads, c->grads, 1.0, worst_name, sizeof worst_name);
    } else {
        CHECKF(0, "unknown case id %d in the fixture", c->id);
    }
    printf("case %s (%s head%s, P %lld): objective err %.2e, %s err %.2e, worst grad err %.2e (%s)",
           label, c->head ? "scalar" : "LM", c->tied ? ", tied" : "", (long long)P, e_obj,
           c->head ? "values" : "logp", e_out, e_grad, worst_name);
    if (e_acc >= 0) printf("; accumulated x1.5 err %.2e (%s)", e_acc, acc_name);
    printf("\n");
    CHECK_OK(rlhf_model_zero_grad(m));
    CHECK_OK(rlhf_model_get_grads(m, grads));
    int nonzero = 0;
    for (int64_t i = 0; i < P; i++) nonzero += grads[i] != 0.0f;
    CHECKF(nonzero == 0, "%s: %d gradients not zero after rlhf_model_zero_grad", what, nonzero);
done:
    rlhf_model_free(m);
    free(grads);
    free(out);
}

int main(void) {
    char path[1024];
    test_src("tests/fixtures/tiny_ref.bin", path, sizeof path);
    ref_file r;
    if (ref_load(&r, path) != 0) {
        free(r.data);
        return 1;
    }
    printf("fixture %s: C %d FF %d L %d NH %d NKV %d V %d seq %d, B %d T %d, %d cases\n", path, r.C,
           r.FF, r.L, r.NH, r.NKV, r.V, r.S, r.B, r.T, r.n_cases);
    const rlhf_backend *be = NULL;
    rlhf_status st = rlhf_backend_get("cpu", &be);
    CHECKF(st == RLHF_OK, "rlhf_backend_get(cpu) -> %s (%s)", rlhf_status_name(st),
           rlhf_last_error());
    if (st == RLHF_OK)
        for (int i = 0; i < r.n_cases; i++) run_case(&r, &r.cases[i], be);
    free(r.data);
    TEST_MAIN_END();
}
