/* cmd_pretrain.c: `rlhf pretrain`, training a base model from scratch on plain text with the
 * Llama 2 pretraining recipe (AdamW 0.9/0.95/1e-5, weight decay 0.1, clip 1.0, linear warm-up
 * then cosine to 10% of the peak learning rate), at toy scale.
 *
 * The run directory DIR holds everything a run needs to go on:
 *   DIR/run.txt      the run's data options (corpus, tokenizer, batch, split, ...), key value lines
 *   DIR/tokens.bin   the token stream cache (rlhf_textdata_open), reused while the inputs and the
 *                    tokenizer are unchanged
 *   DIR/state.bin    the full training state (weights, Adam moments, step, schedule, RNG, data
 *                    position), written atomically every --ckpt-every steps, at the end, on
 *                    --stop-after and on SIGINT/SIGTERM
 *   DIR/model.bin    the weights in llama2.c format (v0), written with every state (--format hf:
 *                    DIR/hf/, a Hugging Face directory, instead)
 *   DIR/metrics.tsv  one row per step: step, train loss, val loss, lr, grad norm, tokens/s, elapsed
 * Running the same command again resumes from DIR/state.bin: options left out are taken from
 * DIR/run.txt and the state; options given must agree with them. A resumed run is bit-identical to
 * an uninterrupted one with the same thread count (tests/cli_pretrain.sh checks it, with kill -9).
 *
 * Each step draws batch * grad_accum windows of seq+1 tokens with the run's RNG (which lives in
 * the state), accumulates the gradient of the mean cross-entropy over grad_accum micro-batches,
 * then takes one AdamW step. Validation loss is the mean over the whole held-out split (or
 * --val-windows evenly spaced windows of it), at step 0, every --eval-every steps and at the end. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath */
#endif
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define PT_MAX_CORPUS 256
#define PT_RUN_MAGIC  "rlhf-pretrain-run 1"
#define PT_RNG_STREAM 0x7072657472616eULL /* "pretran": the data RNG's stream */
#define PT_MIN_VAL    4096                  /* validation tokens at least */

/* ---- presets ----------------------------------------------------------------------------------- */

typedef struct pt_preset {
    const char *name;
    int32_t dim, hidden, layers, heads, kv_heads, seq;
    float lr; /* peak learning rate */
    const char *like;
} pt_preset;

/* Shapes of llama2.c's tinyllamas (stories*), which train well at these sizes. */
static const pt_preset presets[] = {
    {"tiny", 64, 172, 5, 8, 4, 256, 1e-3f, "stories260K"},
    {"small", 288, 768, 6, 6, 6, 256, 5e-4f, "stories15M"},
    {"medium", 512, 1376, 8, 8, 8, 1024, 3e-4f, "stories42M"},
    {"base", 768, 2048, 12, 12, 12, 1024, 3e-4f, "stories110M"},
};
#define N_PRESETS (int)(sizeof presets / sizeof *presets)

static const pt_preset *find_preset(const char *name) {
    for (int i = 0; i < N_PRESETS; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

static int64_t preset_params(const pt_preset *p, int32_t vocab) {
    rlhf_model_config c = rlhf_config_default();
    c.dim = p->dim, c.hidden_dim = p->hidden, c.n_layer = p->layers, c.n_head = p->heads;
    c.n_head_kv = p->kv_heads, c.seq_len = p->seq, c.vocab_size = vocab;
    rlhf_param_info t[RLHF_P_COUNT];
    return rlhf_param_table(&c, t);
}

/* ---- the tokenizer ------------------------------------------------------------------------------- */

/* The one place this command loads a tokenizer: a SentencePiece tokenizer.model or a llama2.c
 * tokenizer.bin, detected by content. */
static rlhf_status pt_tokenizer_load(rlhf_tokenizer **out, const char *path) {
    return rlhf_tokenizer_load(out, path, 0);
}

/* ---- output formats ------------------------------------------------------------------------------ */

typedef enum pt_format {
    PT_FORMAT_LLAMA2C = 0, /* DIR/model.bin, llama2.c v0 (what run.c reads) */
    PT_FORMAT_HF,          /* DIR/hf/: config.json + model.safetensors (F32) */
} pt_format;

static bool parse_format(const char *s, pt_format *f) {
    if (strcmp(s, "llama2c") == 0) {
        *f = PT_FORMAT_LLAMA2C;
        return true;
    }
    if (strcmp(s, "hf") == 0) {
        *f = PT_FORMAT_HF;
        return true;
    }
    return false;
}

/* Writes the model's weights in the user-facing format: the one spot to add Hugging Face output.
 * Every write is atomic (temp file, fsync, rename). */
static rlhf_status pt_write_weights(const char *dir, pt_format fmt, const rlhf_model *m) {
    const rlhf_model_config *c = rlhf_model_get_config(m);
    float *params = NULL;
    char path[4096];
    rlhf_status st;
    RLHF_TRY(rlhf_alloc((void **)&params, (size_t)rlhf_model_num_params(m) * sizeof(float)));
    RLHF_TRY_GOTO(st, rlhf_model_get_params(m, params), done);
    switch (fmt) {
    case PT_FORMAT_LLAMA2C:
        snprintf(path, sizeof path, "%s/model.bin", dir);
        st = rlhf_llama2c_write(path, c, params, 0);
        break;
    case PT_FORMAT_HF:
        snprintf(path, sizeof path, "%s/hf", dir);
        st = rlhf_hf_write(path, c, params, RLHF_DTYPE_F32, 0, true);
        break;
    default: st = RLHF_ERR(RLHF_ERR_UNSUPPORTED, "output format %d not implemented", (int)fmt);
    }
done:
    rlhf_free(params);
    return st;
}

/* ---- run file ----------------------------------------------------------------------------------- */

/* What DIR/run.txt records: the options that the state file does not hold. */
typedef struct pt_run {
    char *config, *tokenizer, *format;
    char *corpus[PT_MAX_CORPUS];
    int32_t n_corpus;
    int32_t batch, grad_accum, eval_every, ckpt_every, val_windows;
    float val_fraction;
    uint64_t seed;
    uint32_t data_crc;
    int64_t data_tokens;
} pt_run;

static void run_free(pt_run *r) {
    free(r->config);
    free(r->tokenizer);
    free(r->format);
    for (int32_t i = 0; i < r->n_corpus; i++) free(r->corpus[i]);
    memset(r, 0, sizeof *r);
}

static rlhf_status run_write(const char *dir, const pt_run *r) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/run.txt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    fprintf(f, "%s\n", PT_RUN_MAGIC);
    fprintf(f, "config %s\ntokenizer %s\nformat %s\n", r->config, r->tokenizer, r->format);
    for (int32_t i = 0; i < r->n_corpus; i++) fprintf(f, "corpus %s\n", r->corpus[i]);
    fprintf(f, "batch %d\ngrad-accum %d\neval-every %d\nckpt-every %d\nval-windows %d\n",
            (int)r->batch, (int)r->grad_accum, (int)r->eval_every, (int)r->ckpt_every,
            (int)r->val_windows);
    fprintf(f, "val-fraction %.9g\nseed %" PRIu64 "\ndata-crc %08" PRIx32 "\ndata-tokens %" PRId64
               "\n",
            (double)r->val_fraction, r->seed, r->data_crc, r->data_tokens);
    bool ok = !ferror(f) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return RLHF_OK;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* An absolute copy of an existing path (so a run resumes from any working directory); the path
 * as given when it cannot be resolved. NULL only when out of memory. */
static char *abs_path(const char *s) {
    char *r = realpath(s, NULL);
    return r ? r : dup_str(s);
}

/* Reads DIR/run.txt; a malformed line is RLHF_ERR_FORMAT naming file and line. */
static rlhf_status run_read(const char *dir, pt_run *r) {
    memset(r, 0, sizeof *r);
    char path[4096], line[4400];
    snprintf(path, sizeof path, "%s/run.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    rlhf_status st = RLHF_OK;
    int ln = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:%d: line too long or unterminated", path, ln);
            break;
        }
        line[n - 1] = '\0';
        if (ln == 1) {
            if (strcmp(line, PT_RUN_MAGIC) != 0) {
                st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: not a pretrain run file", path);
                break;
            }
            continue;
        }
        char *val = strchr(line, ' ');
        if (!val) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:%d: expected 'key value'", path, ln);
            break;
        }
        *val++ = '\0';
        char *end = NULL;
        errno = 0;
        bool bad = false;
        if (strcmp(line, "config") == 0 || strcmp(line, "tokenizer") == 0 ||
            strcmp(line, "format") == 0 || strcmp(line, "corpus") == 0) {
            char *s = dup_str(val);
            if (!s) {
                st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
                break;
            }
            char **dst = strcmp(line, "tokenizer") == 0 ? &r->tokenizer
                         : strcmp(line, "format") == 0  ? &r->format
                         : strcmp(line, "config") == 0  ? &r->config
                                                        : NULL; /* corpus: a list */
            if (dst) {
                free(*dst);
                *dst = s;
            } else if (r->n_corpus < PT_MAX_CORPUS) {
                r->corpus[r->n_corpus++] = s;
            } else {
                free(s);
                bad = true;
            }
        } else if (strcmp(line, "val-fraction") == 0) {
            r->val_fraction = strtof(val, &end);
        } else if (strcmp(line, "seed") == 0) {
            r->seed = strtoull(val, &end, 10);
        } else if (strcmp(line, "data-crc") == 0) {
            r->data_crc = (uint32_t)strtoul(val, &end, 16);
        } else if (strcmp(line, "data-tokens") == 0) {
            r->data_tokens = strtoll(val, &end, 10);
        } else {
            long v = strtol(val, &end, 10);
            if (strcmp(line, "batch") == 0) r->batch = (int32_t)v;
            else if (strcmp(line, "grad-accum") == 0) r->grad_accum = (int32_t)v;
            else if (strcmp(line, "eval-every") == 0) r->eval_every = (int32_t)v;
            else if (strcmp(line, "ckpt-every") == 0) r->ckpt_every = (int32_t)v;
            else if (strcmp(line, "val-windows") == 0) r->val_windows = (int32_t)v;
            else bad = true;
        }
        if (bad || errno != 0 || (end && (*end || end == val))) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:%d: bad entry '%s %s'", path, ln, line, val);
            break;
        }
    }
    fclose(f);
    if (st == RLHF_OK && (ln == 0 || !r->config || !r->tokenizer || !r->format ||
                          r->n_corpus == 0 || r->batch <= 0 || r->grad_accum <= 0))
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: incomplete run file", path);
    if (st != RLHF_OK) run_free(r);
    return st;
}

/* ---- metrics ---------------------------------------------------------------------------------- */

#define PT_METRICS_HEADER "step\ttrain_loss\tval_loss\tlr\tgrad_norm\ttokens_per_s\telapsed_s\n"

/* Keeps the rows of DIR/metrics.tsv up to step `upto` (those a killed run wrote after its last
 * checkpoint are dropped, as is a torn last line), and reopens it for appending. *elapsed gets
 * the last kept row's elapsed time, *val0 and *train0 the first val and train losses seen. */
static rlhf_status metrics_resume(const char *path, int64_t upto, FILE **out, double *elapsed,
                                  double *val0, double *train0) {
    *out = NULL;
    *elapsed = 0;
    *val0 = *train0 = NAN;
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        RLHF_TRY(rlhf_text_read(path, &text, &len));
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *w = fopen(tmp, "w");
    if (!w) {
        free(text);
        return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    fputs(PT_METRICS_HEADER, w);
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (!nl) break; /* torn last line */
        *nl = '\0';
        /* fields: step, train_loss, val_loss, lr, grad_norm, tokens_per_s, elapsed_s */
        const char *field[7] = {0};
        int nf = 0;
        for (char *q = p; nf < 7; q++) {
            field[nf++] = q;
            q = strchr(q, '\t');
            if (!q) break;
        }
        char *end;
        long long step = strtoll(p, &end, 10);
        if (nf == 7 && end != p && *end == '\t' && step <= upto) {
            double tl = strtod(field[1], NULL), vl = strtod(field[2], NULL);
            if (isnan(*train0) && !isnan(tl)) *train0 = tl;
            if (isnan(*val0) && !isnan(vl)) *val0 = vl;
            *elapsed = strtod(field[6], NULL);
            fprintf(w, "%s\n", p);
        }
        p = nl + 1;
    }
    free(text);
    bool ok = !ferror(w) && fflush(w) == 0;
    ok = fclose(w) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    *out = fopen(path, "a");
    if (!*out) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    return RLHF_OK;
}

static void fmt_opt_float(char *buf, size_t cap, double v) {
    if (isnan(v))
        snprintf(buf, cap, "nan");
    else
        snprintf(buf, cap, "%.9g", v);
}

/* ---- evaluation ---------------------------------------------------------------------------------- */

/* Mean validation cross-entropy over n_eval windows evenly spaced among all held-out windows (all
 * of them when n_eval is 0 or more than there are), in batches of up to B. */
static rlhf_status evaluate(rlhf_model *m, const rlhf_textdata *d, int32_t B, int32_t T,
                            int64_t n_eval, int32_t *win, int32_t *tokens, int32_t *targets,
                            double *loss) {
    const int64_t n_all = rlhf_textdata_val_count(d);
    const int64_t n = n_eval > 0 && n_eval < n_all ? n_eval : n_all;
    double sum = 0;
    for (int64_t i = 0; i < n; i += B) {
        int32_t nb = (int32_t)(n - i < B ? n - i : B);
        for (int32_t b = 0; b < nb; b++) {
            int64_t idx = (int64_t)(((double)(i + b) * (double)n_all) / (double)n);
            if (idx >= n_all) idx = n_all - 1;
            rlhf_textdata_val_window(d, idx, win);
            memcpy(tokens + (size_t)b * T, win, (size_t)T * sizeof *win);
            memcpy(targets + (size_t)b * T, win + 1, (size_t)T * sizeof *win);
        }
        float l = 0;
        RLHF_TRY(rlhf_model_lm_step(m, tokens, targets, NULL, nb, T, 0.0f, &l));
        sum += (double)l * nb;
    }
    *loss = n > 0 ? sum / (double)n : NAN;
    return RLHF_OK;
}

/* ---- helpers ---------------------------------------------------------------------------------- */

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

static const char *human(char *buf, size_t cap, double v) {
    if (v >= 1e9) snprintf(buf, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4) snprintf(buf, cap, "%.1fk", v / 1e3);
    else snprintf(buf, cap, "%.0f", v);
    return buf;
}

/* Saves the state and the weights (a checkpoint). */
static rlhf_status checkpoint(const char *dir, pt_format fmt, const rlhf_model *m,
                              const rlhf_train_extra *x) {
    char path[4096];
    snprintf(path, sizeof path, "%s/state.bin", dir);
    RLHF_TRY(rlhf_train_state_save(m, x, path));
    return pt_write_weights(dir, fmt, m);
}

/* ---- the command -------------------------------------------------------------------------------- */

int cmd_pretrain(int argc, char **argv) {
    const char *corpus_opt = NULL, *tok_path = NULL, *config = "tiny", *out_dir = NULL,
               *format = "llama2c";
    int32_t dim = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, seq = 0;
    bool tied = false, resume = false, restart = false;
    int32_t steps = 1000, batch = 16, grad_accum = 1, warmup = 0, eval_every = 100,
            ckpt_every = 250, val_windows = 0, stop_after = 0;
    float lr = 0, final_frac = 0.1f, weight_decay = 0.1f, clip = 1.0f, val_fraction = 0.01f;
    uint64_t seed = 1337;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "data and output", false},
        {"corpus", 0, CLI_STR, &corpus_opt, "FILE...", NULL,
         "text files (.txt or .txt.gz), in order; more may follow as arguments", false},
        {"tokenizer", 't', CLI_STR, &tok_path, "T", NULL, "tokenizer.model (SentencePiece) or llama2.c tokenizer.bin",
         false},
        {"out", 'o', CLI_STR, &out_dir, "DIR", NULL,
         "run directory (state, checkpoints, metrics, token cache); required", false},
        {"format", 0, CLI_STR, &format, "F", "llama2c", "weights format: llama2c (DIR/model.bin) or hf (DIR/hf/)",
         false},
        {"val-fraction", 0, CLI_NONNEG_FLOAT, &val_fraction, "F", "0.01",
         "held-out share of the tokens (at least 4096 tokens), whole chunks spread over the text",
         false},
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "model (a preset, then overrides)", false},
        {"config", 'c', CLI_STR, &config, "NAME", "tiny", "preset: tiny, small, medium, base",
         false},
        {"dim", 0, CLI_POS_INT, &dim, "C", "preset", "model width (hidden follows unless given)",
         false},
        {"hidden", 0, CLI_POS_INT, &hidden, "FF", "preset", "SwiGLU hidden width", false},
        {"layers", 0, CLI_POS_INT, &layers, "L", "preset", "transformer blocks", false},
        {"heads", 0, CLI_POS_INT, &heads, "NH", "preset", "query heads", false},
        {"kv-heads", 0, CLI_POS_INT, &kv_heads, "NKV", "preset", "key/value heads (GQA)", false},
        {"seq", 0, CLI_POS_INT, &seq, "T", "preset", "sequence length (context) trained on",
         false},
        {"tied", 0, CLI_BOOL, &tied, "[yes|no]", "no", "LM head shares the token embedding",
         false},
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "training", false},
        {"steps", 'n', CLI_POS_INT, &steps, "N", "1000", "optimizer steps in all", false},
        {"batch", 'b', CLI_POS_INT, &batch, "B", "16", "windows of --seq tokens per micro-batch",
         false},
        {"grad-accum", 0, CLI_POS_INT, &grad_accum, "N", "1",
         "micro-batches per step (tokens/step = B * N * T)", false},
        {"lr", 0, CLI_NONNEG_FLOAT, &lr, "F", "preset's", "peak learning rate", false},
        {"warmup", 0, CLI_NONNEG_INT, &warmup, "N", "steps/10, at most 2000",
         "linear warm-up steps, then cosine decay", false},
        {"final-lr-frac", 0, CLI_NONNEG_FLOAT, &final_frac, "F", "0.1",
         "the cosine ends at this fraction of the peak", false},
        {"weight-decay", 0, CLI_NONNEG_FLOAT, &weight_decay, "F", "0.1",
         "AdamW decoupled weight decay (not on norm gains)", false},
        {"clip", 0, CLI_NONNEG_FLOAT, &clip, "F", "1.0", "gradient-norm clip (0: none)", false},
        {"seed", 's', CLI_U64, &seed, "S", "1337", "seed of the weights and the data order",
         false},
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "evaluation, checkpoints, resume", false},
        {"eval-every", 0, CLI_NONNEG_INT, &eval_every, "N", "100",
         "validation loss every N steps (0: at the start and the end only)", false},
        {"val-windows", 0, CLI_NONNEG_INT, &val_windows, "N", "0",
         "evaluate N evenly spaced held-out windows (0: the whole split)", false},
        {"ckpt-every", 0, CLI_NONNEG_INT, &ckpt_every, "N", "250",
         "save state and weights every N steps (0: at the end only)", false},
        {"stop-after", 0, CLI_NONNEG_INT, &stop_after, "STEP", NULL,
         "save and stop once step STEP is done; run again to continue", false},
        {"resume", 0, CLI_FLAG, &resume, NULL, NULL,
         "require DIR/state.bin and continue it (the default whenever it exists)", false},
        {"restart", 0, CLI_FLAG, &restart, NULL, NULL,
         "ignore and overwrite a state in DIR (the token cache is kept)", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    char about[3072];
    int ab = snprintf(about, sizeof about,
                      "Trains a Llama-2 base model from scratch on plain text with the Llama 2\n"
                      "recipe: AdamW (0.9, 0.95, eps 1e-5), weight decay 0.1, gradient clip 1.0,\n"
                      "linear warm-up then cosine decay to 10%% of the peak learning rate. The text\n"
                      "is cut into documents at blank lines (BOS before each), tokenized once and\n"
                      "cached in DIR; a validation split of whole chunks is held out; each step\n"
                      "trains on random windows of seq+1 tokens drawn with the seeded RNG.\n"
                      "\n"
                      "Presets (the vocabulary V comes from the tokenizer):\n");
    for (int i = 0; i < N_PRESETS && ab > 0 && ab < (int)sizeof about; i++) {
        const pt_preset *p = &presets[i];
        char a[16], b[16];
        ab += snprintf(about + ab, sizeof about - (size_t)ab,
                       "  %-7s dim %d, hidden %d, layers %d, heads %d, kv-heads %d, seq %d, "
                       "lr %g\n          %s parameters at V = 512, %s at V = 32000 (the shape "
                       "of %s)\n",
                       p->name, (int)p->dim, (int)p->hidden, (int)p->layers, (int)p->heads,
                       (int)p->kv_heads, (int)p->seq, (double)p->lr,
                       human(a, sizeof a, (double)preset_params(p, 512)),
                       human(b, sizeof b, (double)preset_params(p, 32000)), p->like);
    }
    if (ab > 0 && ab < (int)sizeof about)
        snprintf(about + ab, sizeof about - (size_t)ab,
                 "\n"
                 "DIR gets state.bin (weights, Adam moments, step, RNG: resume is bit-exact),\n"
                 "model.bin (llama2.c; hf/ with --format hf), metrics.tsv, run.txt and tokens.bin.\n"
                 "Running the same command again continues a stopped or killed run; Ctrl-C saves\n"
                 "the state first (exit status 130; 143 for SIGTERM).");
    cli_spec spec = {"pretrain", "--corpus FILE... --tokenizer T --out DIR [options]", about,
                     opts, 0, PT_MAX_CORPUS - 1};
    char *pos[PT_MAX_CORPUS];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!out_dir) return cli_usage_error(&spec, "--out DIR is required");
    if (resume && restart) return cli_usage_error(&spec, "--resume and --restart exclude each other");
    pt_format fmt;
    if (!parse_format(format, &fmt))
        return cli_usage_error(&spec, "--format: expected llama2c or hf, got '%s'", format);
    if (val_fraction > 0.5f)
        return cli_usage_error(&spec, "--val-fraction: at most 0.5, got %g", (double)val_fraction);
    if (cli_find(&spec, "config")->seen && !find_preset(config))
        return cli_usage_error(&spec, "--config: unknown preset '%s' (tiny, small, medium, base)",
                               config);
    if (n_pos > 0 && !corpus_opt)
        return cli_usage_error(&spec, "corpus files given without --corpus");

    /* everything below owns resources: one exit path */
    pt_run run = {0};
    rlhf_tokenizer *tok = NULL;
    rlhf_textdata *data = NULL;
    rlhf_model *m = NULL;
    FILE *metrics = NULL;
    int32_t *win = NULL, *tokens = NULL, *targets = NULL;
    const rlhf_backend *be = NULL;
    cli_stop stop = {0};
    rlhf_status st = RLHF_OK;
    char state_path[4096], metrics_path[4096], cache_path[4096];
    snprintf(state_path, sizeof state_path, "%s/state.bin", out_dir);
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.tsv", out_dir);
    snprintf(cache_path, sizeof cache_path, "%s/tokens.bin", out_dir);
    const char *corpus[PT_MAX_CORPUS];
    int32_t n_corpus = 0;
    if (corpus_opt) corpus[n_corpus++] = corpus_opt;
    for (int i = 0; i < n_pos; i++) corpus[n_corpus++] = pos[i];

    RLHF_TRY_GOTO(st, cli_setup(&com, &be), fail);
    RLHF_TRY_GOTO(st, rlhf_mkdirs(out_dir), fail);
    bool have_state = file_exists(state_path);
    if (resume && !have_state) {
        st = RLHF_ERR(RLHF_ERR_IO, "--resume: %s does not exist", state_path);
        goto fail;
    }
    if (restart && have_state) {
        if (remove(state_path) != 0) {
            st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot remove: %s", state_path, strerror(errno));
            goto fail;
        }
        have_state = false;
    }

    /* ---- resume: the run file fills what the command line leaves out ---- */
    if (have_state) {
        RLHF_TRY_GOTO(st, run_read(out_dir, &run), fail);
#define ADOPT(name, var, stored, fmtspec, cast)                                                    \
    do {                                                                                           \
        if (!cli_find(&spec, name)->seen)                                                          \
            var = stored;                                                                          \
        else if (var != stored) {                                                                  \
            st = RLHF_ERR(RLHF_ERR_ARG,                                                            \
                          "--" name " " fmtspec " differs from the run being resumed in %s ("     \
                          fmtspec "); pass the same value, or --restart",                          \
                          cast var, out_dir, cast stored);                                         \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
        ADOPT("batch", batch, run.batch, "%d", (int));
        ADOPT("grad-accum", grad_accum, run.grad_accum, "%d", (int));
        ADOPT("val-fraction", val_fraction, run.val_fraction, "%g", (double));
        ADOPT("seed", seed, run.seed, "%llu", (unsigned long long));
#undef ADOPT
        if (cli_find(&spec, "config")->seen && strcmp(config, run.config) != 0) {
            st = RLHF_ERR(RLHF_ERR_ARG, "--config %s differs from the run being resumed in %s (%s);"
                          " pass the same, or --restart", config, out_dir, run.config);
            goto fail;
        }
        config = run.config;
        /* options that do not change the trajectory: the command line wins */
        if (!cli_find(&spec, "eval-every")->seen) eval_every = run.eval_every;
        if (!cli_find(&spec, "ckpt-every")->seen) ckpt_every = run.ckpt_every;
        if (!cli_find(&spec, "val-windows")->seen) val_windows = run.val_windows;
        if (!cli_find(&spec, "format")->seen && !parse_format(run.format, &fmt)) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s/run.txt: unknown format '%s'", out_dir, run.format);
            goto fail;
        }
        if (!tok_path) tok_path = run.tokenizer;
        if (n_corpus == 0) {
            for (int32_t i = 0; i < run.n_corpus; i++) corpus[n_corpus++] = run.corpus[i];
        }
    }
    if (!tok_path || n_corpus == 0) {
        run_free(&run);
        return cli_usage_error(&spec, "--corpus and --tokenizer are required for a new run");
    }
    const pt_preset *pre = find_preset(config);
    if (!pre) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s/run.txt: unknown preset '%s'", out_dir, config);
        goto fail;
    }

    /* ---- tokenizer and data ---- */
    double t_data = cli_now();
    RLHF_TRY_GOTO(st, pt_tokenizer_load(&tok, tok_path), fail);
    rlhf_textdata_cache how;
    RLHF_TRY_GOTO(st, rlhf_textdata_open(&data, tok, tok_path, corpus, n_corpus, cache_path, &how),
                  fail);
    t_data = cli_now() - t_data;

    /* ---- model config: the state's when resuming, else preset + overrides ---- */
    rlhf_model_config c;
    if (have_state) {
        RLHF_TRY_GOTO(st, rlhf_train_state_peek(state_path, &c), fail);
        const struct {
            const char *name;
            int32_t given, have;
        } dims[] = {{"dim", dim, c.dim},         {"hidden", hidden, c.hidden_dim},
                    {"layers", layers, c.n_layer}, {"heads", heads, c.n_head},
                    {"kv-heads", kv_heads, c.n_head_kv}, {"seq", seq, c.seq_len}};
        for (size_t i = 0; i < sizeof dims / sizeof *dims; i++)
            if (cli_find(&spec, dims[i].name)->seen && dims[i].given != dims[i].have) {
                st = RLHF_ERR(RLHF_ERR_ARG, "--%s %d differs from the model being resumed in %s "
                              "(%d); pass the same, or --restart", dims[i].name,
                              (int)dims[i].given, out_dir, (int)dims[i].have);
                goto fail;
            }
        if (cli_find(&spec, "tied")->seen && tied != c.tied_head) {
            st = RLHF_ERR(RLHF_ERR_ARG, "--tied differs from the model being resumed in %s",
                          out_dir);
            goto fail;
        }
        RLHF_TRY_GOTO(st, cli_check_vocab(state_path, c.vocab_size, tok_path, tok), fail);
        if (rlhf_textdata_checksum(data) != run.data_crc) {
            st = RLHF_ERR(RLHF_ERR_ARG, "the corpus or tokenizer changed since the run in %s "
                          "started (token stream CRC %08" PRIx32 ", was %08" PRIx32 "): resuming "
                          "would not continue the same run; use --restart", out_dir,
                          rlhf_textdata_checksum(data), run.data_crc);
            goto fail;
        }
    } else {
        c = rlhf_config_default();
        c.dim = cli_find(&spec, "dim")->seen ? dim : pre->dim;
        c.hidden_dim = cli_find(&spec, "hidden")->seen ? hidden
                       : cli_find(&spec, "dim")->seen ? ((8 * c.dim / 3 + 31) / 32) * 32
                                                      : pre->hidden;
        c.n_layer = cli_find(&spec, "layers")->seen ? layers : pre->layers;
        c.n_head = cli_find(&spec, "heads")->seen ? heads : pre->heads;
        c.n_head_kv = cli_find(&spec, "kv-heads")->seen ? kv_heads
                      : cli_find(&spec, "heads")->seen ? c.n_head
                                                       : pre->kv_heads;
        c.seq_len = cli_find(&spec, "seq")->seen ? seq : pre->seq;
        c.vocab_size = rlhf_tokenizer_vocab_size(tok);
        c.tied_head = tied;
        RLHF_TRY_GOTO(st, rlhf_config_validate(&c), fail);
    }
    c.trainable = true;
    const int32_t B = batch, T = c.seq_len;
    RLHF_TRY_GOTO(st, rlhf_textdata_split(data, val_fraction, PT_MIN_VAL, T + 1), fail);

    /* ---- model, optimizer, schedule ---- */
    RLHF_TRY_GOTO(st, rlhf_model_init(&m, &c, be, B, T), fail);
    rlhf_train_extra x;
    memset(&x, 0, sizeof x);
    double elapsed0 = 0, val0 = NAN, train0 = NAN;
    if (have_state) {
        RLHF_TRY_GOTO(st, rlhf_train_state_load(m, &x, state_path), fail);
        const struct {
            const char *name;
            double given, have;
        } hp[] = {{"lr", lr, x.schedule.peak_lr},
                  {"steps", steps, (double)x.schedule.total_steps},
                  {"warmup", warmup, (double)x.schedule.warmup_steps},
                  {"final-lr-frac", final_frac, x.schedule.final_frac},
                  {"weight-decay", weight_decay, x.adamw.weight_decay},
                  {"clip", clip, x.adamw.clip_norm}};
        for (size_t i = 0; i < sizeof hp / sizeof *hp; i++)
            if (cli_find(&spec, hp[i].name)->seen && (float)hp[i].given != (float)hp[i].have) {
                st = RLHF_ERR(RLHF_ERR_ARG, "--%s %g differs from the run being resumed in %s "
                              "(%g); pass the same, or --restart", hp[i].name, hp[i].given,
                              out_dir, hp[i].have);
                goto fail;
            }
        steps = (int32_t)x.schedule.total_steps;
        RLHF_TRY_GOTO(st, metrics_resume(metrics_path, rlhf_model_step(m), &metrics, &elapsed0,
                                         &val0, &train0), fail);
    } else {
        RLHF_TRY_GOTO(st, rlhf_model_init_random(m, seed), fail);
        x.schedule.peak_lr = cli_find(&spec, "lr")->seen ? lr : pre->lr;
        x.schedule.total_steps = steps;
        x.schedule.warmup_steps = cli_find(&spec, "warmup")->seen ? warmup
                                  : steps / 10 > 2000   ? 2000
                                  : steps / 10 > 0      ? steps / 10
                                                        : 1;
        x.schedule.final_frac = final_frac;
        x.adamw = rlhf_adamw_default();
        x.adamw.weight_decay = weight_decay;
        x.adamw.clip_norm = clip;
        rlhf_rng_seed(&x.rng, seed, PT_RNG_STREAM);
        x.data_pos = 0;
        run_free(&run);
        run.config = dup_str(pre->name);
        run.tokenizer = abs_path(tok_path);
        run.format = dup_str(format);
        for (int32_t i = 0; i < n_corpus; i++) run.corpus[run.n_corpus++] = abs_path(corpus[i]);
        bool oom = !run.config || !run.tokenizer || !run.format;
        for (int32_t i = 0; i < run.n_corpus; i++) oom |= !run.corpus[i];
        if (oom) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto fail;
        }
        run.batch = batch, run.grad_accum = grad_accum, run.eval_every = eval_every;
        run.ckpt_every = ckpt_every, run.val_windows = val_windows;
        run.val_fraction = val_fraction, run.seed = seed;
        run.data_crc = rlhf_textdata_checksum(data);
        run.data_tokens = rlhf_textdata_num_tokens(data);
        RLHF_TRY_GOTO(st, run_write(out_dir, &run), fail);
        metrics = fopen(metrics_path, "w");
        if (!metrics) {
            st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", metrics_path, strerror(errno));
            goto fail;
        }
        fputs(PT_METRICS_HEADER, metrics);
    }
    const rlhf_schedule sched = x.schedule;
    const int64_t tok_step = (int64_t)B * grad_accum * T;
    const int64_t step0 = rlhf_model_step(m);

    win = malloc((size_t)(T + 1) * sizeof *win);
    tokens = malloc((size_t)B * T * sizeof *tokens);   /* (B, T) */
    targets = malloc((size_t)B * T * sizeof *targets); /* (B, T) */
    if (!win || !tokens || !targets) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate a batch of %d x %d", (int)B, (int)T);
        goto fail;
    }

    if (!com.quiet) {
        char a[16], b[16], e[16];
        printf("pretrain: %s %s, ", have_state ? "resuming" : "new run", out_dir);
        if (have_state) printf("at step %" PRId64 ", ", step0);
        printf("config %s: ", pre->name);
        cli_print_config(stdout, &c);
        printf("parameters %s (%" PRId64 "); device %s, threads %d\n",
               human(a, sizeof a, (double)rlhf_model_num_params(m)), rlhf_model_num_params(m),
               rlhf_backend_name(be), rlhf_get_threads());
        printf("data: %d file%s, %s bytes of text, %" PRId64 " tokens in %" PRId64
               " documents (%s, %.1f s); train %s tokens, validation %s tokens (%" PRId64
               " windows%s)\n",
               (int)n_corpus, n_corpus == 1 ? "" : "s",
               human(a, sizeof a, (double)rlhf_textdata_num_bytes(data)),
               rlhf_textdata_num_tokens(data), rlhf_textdata_num_docs(data),
               rlhf_textdata_cache_name(how), t_data,
               human(b, sizeof b, (double)rlhf_textdata_train_tokens(data)),
               human(e, sizeof e, (double)rlhf_textdata_val_tokens(data)),
               rlhf_textdata_val_count(data), val_windows > 0 ? ", subset evaluated" : "");
        printf("training: %d steps x %" PRId64 " tokens (batch %d x grad-accum %d x seq %d) = %s "
               "tokens, %.2f epochs of the train split\n",
               (int)steps, tok_step, (int)B, (int)grad_accum, (int)T,
               human(a, sizeof a, (double)steps * (double)tok_step),
               (double)steps * (double)tok_step / (double)rlhf_textdata_train_tokens(data));
        printf("optimizer: AdamW beta (%g, %g) eps %g, weight decay %g, clip %g; lr %g, warm-up "
               "%" PRId64 " steps, cosine to %g at step %" PRId64 "; seed %" PRIu64 "\n",
               (double)x.adamw.beta1, (double)x.adamw.beta2, (double)x.adamw.eps,
               (double)x.adamw.weight_decay, (double)x.adamw.clip_norm, (double)sched.peak_lr,
               sched.warmup_steps, (double)(sched.final_frac * sched.peak_lr), sched.total_steps,
               seed);
        fflush(stdout);
    }

    /* ---- the loop ---- */
    cli_stop_catch(&stop);

    cli_progress prog;
    cli_progress_start(&prog, "step", "steps", steps, &com);
    prog.base = step0;
    double t_start = cli_now(), t_train = 0, val_loss = NAN, last_train = NAN;
    int64_t trained_tokens = 0;
    char vbuf[32], tbuf[32];
    if (step0 == 0) { /* the initial validation loss, once per run */
        RLHF_TRY_GOTO(st, evaluate(m, data, B, T, val_windows, win, tokens, targets, &val_loss),
                      fail);
        val0 = val_loss;
        fmt_opt_float(vbuf, sizeof vbuf, val_loss);
        fprintf(metrics, "0\tnan\t%s\t%.9g\tnan\tnan\t0\n", vbuf,
                (double)rlhf_schedule_lr(&sched, 0));
        fflush(metrics);
        if (!com.quiet) {
            printf("step %6d/%d  val %.4f  (initial; uniform guess ln V = %.4f)\n", 0, (int)steps,
                   val_loss, log((double)c.vocab_size));
            fflush(stdout);
        }
    }
    int64_t step = step0;
    bool stopped = false;
    while (step < steps) {
        if (cli_stop_signal()) break;
        if (stop_after > 0 && step >= stop_after) {
            stopped = true;
            break;
        }
        const float lr_now = rlhf_schedule_lr(&sched, step);
        double t0 = cli_now(), loss_sum = 0;
        RLHF_TRY_GOTO(st, rlhf_model_zero_grad(m), fail);
        for (int32_t a = 0; a < grad_accum; a++) {
            for (int32_t b = 0; b < B; b++) {
                (void)rlhf_textdata_sample(data, &x.rng, win);
                memcpy(tokens + (size_t)b * T, win, (size_t)T * sizeof *win);
                memcpy(targets + (size_t)b * T, win + 1, (size_t)T * sizeof *win);
            }
            x.data_pos += B;
            float l = 0;
            RLHF_TRY_GOTO(st, rlhf_model_lm_step(m, tokens, targets, NULL, B, T,
                                                 1.0f / (float)grad_accum, &l), fail);
            loss_sum += l;
        }
        const double train_loss = loss_sum / grad_accum;
        if (!isfinite(train_loss)) {
            st = RLHF_ERR(RLHF_ERR_ARG, "training diverged at step %" PRId64 " (loss %g); the "
                          "last checkpoint in %s is intact: lower --lr and --restart", step + 1,
                          train_loss, out_dir);
            goto fail;
        }
        float gnorm = 0;
        RLHF_TRY_GOTO(st, rlhf_model_adamw_step(m, &x.adamw, lr_now, &gnorm), fail);
        step = rlhf_model_step(m);
        const double dt = cli_now() - t0;
        t_train += dt;
        trained_tokens += tok_step;
        last_train = train_loss;
        if (isnan(train0)) train0 = train_loss;
        const double tps = (double)tok_step / dt;

        bool eval_now = step == steps || (eval_every > 0 && step % eval_every == 0);
        double vl = NAN;
        if (eval_now) {
            RLHF_TRY_GOTO(st, evaluate(m, data, B, T, val_windows, win, tokens, targets, &vl),
                          fail);
            val_loss = vl;
        }
        fmt_opt_float(vbuf, sizeof vbuf, vl);
        fprintf(metrics, "%" PRId64 "\t%.9g\t%s\t%.9g\t%.9g\t%.1f\t%.3f\n", step, train_loss,
                vbuf, (double)lr_now, (double)gnorm, tps, elapsed0 + (cli_now() - t_start));
        fflush(metrics);
        if (eval_now && !com.quiet) {
            cli_progress_end(&prog);
            printf("step %6" PRId64 "/%d  train %.4f  val %.4f  lr %.3e  grad-norm %.3f  %s "
                   "tokens/s\n",
                   step, (int)steps, train_loss, vl, (double)lr_now, (double)gnorm,
                   human(tbuf, sizeof tbuf, (double)trained_tokens / t_train));
            fflush(stdout);
        }
        if (ckpt_every > 0 && step % ckpt_every == 0 && step < steps)
            RLHF_TRY_GOTO(st, checkpoint(out_dir, fmt, m, &x), fail);
        cli_progress_note(&prog, step, eval_now, "loss %.4f val %.4f lr %.2e %s tok/s",
                          train_loss, val_loss, (double)lr_now,
                          human(tbuf, sizeof tbuf, (double)trained_tokens / t_train));
    }
    cli_progress_end(&prog);
    RLHF_TRY_GOTO(st, checkpoint(out_dir, fmt, m, &x), fail);
    const int sig = cli_stop_signal();
    if (!com.quiet) {
        double tps = t_train > 0 ? (double)trained_tokens / t_train : 0;
        if (sig)
            printf("interrupted (signal %d) at step %" PRId64 "/%d: state saved in %s; run the "
                   "same command to resume\n", sig, step, (int)steps, state_path);
        else if (stopped)
            printf("stopped at step %" PRId64 "/%d (--stop-after): state saved in %s; run the "
                   "same command to continue\n", step, (int)steps, state_path);
        else if (step == step0)
            printf("the run in %s was already complete at step %d; nothing to train\n", out_dir,
                   (int)steps);
        else
            printf("done: %d steps\n", (int)steps);
        if (step > step0)
            printf("train loss %.4f (first step %.4f), val loss %.4f (initial %.4f); %.0f "
                   "tokens/s over %.1f s of training in this process; weights %s/%s\n",
                   last_train, train0, val_loss, val0, tps, t_train, out_dir,
                   fmt == PT_FORMAT_HF ? "hf/" : "model.bin");
    }
    rc = sig ? 128 + sig : CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    cli_stop_release(&stop);
    if (metrics) fclose(metrics);
    free(win);
    free(tokens);
    free(targets);
    rlhf_model_free(m);
    rlhf_textdata_free(data);
    rlhf_tokenizer_free(tok);
    run_free(&run);
    return rc;
}
