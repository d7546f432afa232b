/* cmd_rm.c: the reward-model commands of the `rlhf` program:
 *   rlhf rm train RUN --track helpfulness|safety --init CKPT --tokenizer T ...
 *   rlhf rm eval  RUN --model RM --tokenizer T [--pairs FILE | --split eval] [--json]
 *   rlhf score    RUN --model RM [RM...] --tokenizer T
 * The library side (loss, margins, encoding, batches, gated reward) is reward/reward.h.
 *
 * rm train keeps its run in RUN/ckpt/NAME/ (NAME defaults to reward-TRACK):
 *   train.json  the options that define the run (a rerun must give the same ones, or --restart)
 *   state.bin   the training state (weights, Adam moments, step; data position = step), written
 *               atomically every --ckpt-every steps, on --stop-after, on SIGINT/SIGTERM, at the end
 *   hf/         the final reward model, a Hugging Face directory with score.weight, registered in
 *               the store's checkpoints table (path hf/model.safetensors, role reward-TRACK)
 * and one `stages` row (kind rm-train, key NAME) whose progress is the optimizer step of the last
 * saved state; metrics (loss, accuracy, lr, grad_norm per step) go to the store's metrics table.
 * The data order is a seeded shuffle of the pair ids (reshuffled each epoch), so a resumed run
 * sees exactly the pairs an uninterrupted one would.
 *
 * score walks the run's samples in id order, in batches, one transaction per batch holding the
 * batch's scores and the stage's progress (the last sample id scored): killed and rerun, it goes
 * on after that id, so every sample is scored once per reward model. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ds.h"
#include "reward.h"
#include "store.h"

#define RM_SHUFFLE_STREAM 0x726d73687566ULL /* "rmshuf" */

/* ---- small helpers ------------------------------------------------------------------------- */

static bool file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static rlhf_status make_dir(const char *p) {
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
    return RLHF_OK;
}

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ---- pairs in memory (tokenized) ------------------------------------------------------------- */

typedef struct rm_pair {
    int64_t id; /* store row id (or ordinal in a --pairs file) */
    int32_t *c, *r;
    int32_t nc, nr;
    ds_rating rating;
    int8_t cs, rs; /* chosen_safe, rejected_safe */
    bool other;    /* from the other track (mixing) */
} rm_pair;

typedef struct rm_pairs {
    rm_pair *v;
    int64_t n, cap;
    int64_t truncated; /* responses whose rendering was cut to fit */
} rm_pairs;

static void pairs_free(rm_pairs *p) {
    for (int64_t i = 0; i < p->n; i++) {
        free(p->v[i].c);
        free(p->v[i].r);
    }
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* Tokenizes one pair into the list. */
static rlhf_status pairs_add(rm_pairs *p, const rlhf_tokenizer *tok, int32_t max_tokens,
                             int64_t id, const ds_dialogue *ctx, const char *chosen,
                             const char *rejected, ds_rating rating, int8_t cs, int8_t rs,
                             bool other) {
    if (p->n == p->cap) {
        int64_t cap = p->cap ? 2 * p->cap : 1024;
        rm_pair *v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for %lld pairs", (long long)cap);
        p->v = v;
        p->cap = cap;
    }
    rm_pair *x = &p->v[p->n];
    memset(x, 0, sizeof *x);
    bool t1 = false, t2 = false;
    RLHF_TRY(reward_encode(tok, ctx, chosen, max_tokens, &x->c, &x->nc, &t1));
    rlhf_status st = reward_encode(tok, ctx, rejected, max_tokens, &x->r, &x->nr, &t2);
    if (st != RLHF_OK) {
        free(x->c);
        return st;
    }
    p->truncated += t1 + t2;
    x->id = id;
    x->rating = rating;
    x->cs = cs;
    x->rs = rs;
    x->other = other;
    p->n++;
    return RLHF_OK;
}

/* Parses the store's turns JSON into a ds_turn array pointing into j (owned by the caller). */
static rlhf_status parse_turns(json_t *j, ds_turn **out, int32_t *n, int64_t row) {
    *out = NULL;
    *n = 0;
    if (!json_is_array(j)) return RLHF_ERR(RLHF_ERR_FORMAT, "pair %lld: context is not a JSON "
                                           "array", (long long)row);
    size_t k = json_array_size(j);
    ds_turn *t = calloc(k ? k : 1, sizeof *t);
    if (!t) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < k; i++) {
        json_t *o = json_array_get(j, i);
        const char *role = json_string_value(json_object_get(o, "role"));
        const char *text = json_string_value(json_object_get(o, "text"));
        if (!role || !text) {
            free(t);
            return RLHF_ERR(RLHF_ERR_FORMAT, "pair %lld: context turn %zu lacks role/text",
                            (long long)row, i);
        }
        t[i].role = strcmp(role, "assistant") == 0 ? DS_ROLE_ASSISTANT : DS_ROLE_USER;
        t[i].text = text;
    }
    *out = t;
    *n = (int32_t)k;
    return RLHF_OK;
}

typedef struct load_ctx {
    rm_pairs *own, *other;      /* other may be NULL: not collected */
    const char *track;          /* own track */
    rlhf_split split;
    const rlhf_tokenizer *tok;
    int32_t max_tokens;
    cli_progress *prog;
    int64_t seen;
} load_ctx;

static rlhf_status load_pair(void *vctx, const rlhf_store_pair *p) {
    load_ctx *c = vctx;
    if (p->split != c->split) return RLHF_OK;
    bool own = strcmp(p->track, c->track) == 0;
    if (!own && !c->other) return RLHF_OK;
    json_error_t je;
    json_t *j = json_loads(p->context_json, 0, &je);
    if (!j) return RLHF_ERR(RLHF_ERR_FORMAT, "pair %lld: bad context JSON: %s", (long long)p->id,
                            je.text);
    ds_turn *turns = NULL;
    int32_t nt = 0;
    rlhf_status st = parse_turns(j, &turns, &nt, p->id);
    if (st == RLHF_OK) {
        ds_dialogue d = {.system = p->system, .turns = turns, .n_turns = nt};
        ds_rating rating = DS_RATING_NONE;
        if (p->rating) (void)ds_rating_parse(p->rating, &rating);
        st = pairs_add(own ? c->own : c->other, c->tok, c->max_tokens, p->id, &d, p->chosen,
                       p->rejected, rating, p->chosen_safe, p->rejected_safe, !own);
        if (st != RLHF_OK)
            st = RLHF_ERR(st, "pair %lld: %s", (long long)p->id, rlhf_last_error());
    }
    free(turns);
    json_decref(j);
    if (st == RLHF_OK && c->prog) cli_progress_update(c->prog, ++c->seen);
    return st;
}

typedef struct file_ctx {
    rm_pairs *out;
    const rlhf_tokenizer *tok;
    int32_t max_tokens;
} file_ctx;

static rlhf_status load_file_pair(void *vctx, const ds_record *r) {
    file_ctx *c = vctx;
    if (r->kind != DS_PAIR) return RLHF_OK;
    const ds_pair *p = &r->pair;
    rlhf_status st = pairs_add(c->out, c->tok, c->max_tokens, r->index, &p->context, p->chosen,
                               p->rejected, p->rating, p->chosen_safe, p->rejected_safe, false);
    if (st != RLHF_OK) return RLHF_ERR(st, "%s:%lld: %s", r->file, (long long)r->line,
                                       rlhf_last_error());
    return RLHF_OK;
}

/* ---- model loading ------------------------------------------------------------------------- */

/* Loads a reward model (scalar head required) for inference with batch rows B and T positions
 * (0: the model's seq_len). Declared in cli.h (cli_rm_load): `rlhf rs sweep` scores with it. */
rlhf_status cli_rm_load(const char *path, const rlhf_backend *be, int32_t B, int32_t T,
                        rlhf_model **out) {
    *out = NULL;
    rlhf_model_config c;
    float *params = NULL;
    RLHF_TRY(rlhf_checkpoint_read(path, &c, &params));
    rlhf_status st = RLHF_OK;
    if (c.head != RLHF_HEAD_SCALAR) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s is a language model (LM head), not a reward model "
                      "(scalar head, score.weight); train one with `rlhf rm train`", path);
        goto done;
    }
    c.trainable = false;
    if (T <= 0 || T > c.seq_len) T = c.seq_len;
    RLHF_TRY_GOTO(st, rlhf_model_init(out, &c, be, B, T), done);
    st = rlhf_model_set_params(*out, params);
    if (st != RLHF_OK) {
        rlhf_model_free(*out);
        *out = NULL;
    }
done:
    rlhf_free(params);
    return st;
}

/* The file a checkpoint is registered by: DIR/model.safetensors for a Hugging Face directory, the
 * file itself otherwise. */
static void ckpt_file(const char *path, char *buf, size_t cap) {
    if (rlhf_hf_is_dir(path))
        snprintf(buf, cap, "%s/model.safetensors", path);
    else
        snprintf(buf, cap, "%s", path);
}

/* ---- rm train -------------------------------------------------------------------------------- */

/* Fisher-Yates shuffle of idx[0..n) with the run's seed and an epoch stream. */
static void shuffle(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch) {
    rlhf_rng r;
    rlhf_rng_seed(&r, seed + (uint64_t)epoch * 0x9e3779b97f4a7c15ULL, RM_SHUFFLE_STREAM);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t u = ((uint64_t)rlhf_rng_u32(&r) << 32) | rlhf_rng_u32(&r);
        int64_t j = (int64_t)(u % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static rlhf_status write_text(const char *path, const char *text) {
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    bool ok = fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return RLHF_OK;
}

static rlhf_status save_state(const rlhf_model *m, rlhf_train_extra *x, const char *path,
                              rlhf_store *s, int64_t stage) {
    x->data_pos = rlhf_model_step(m);
    RLHF_TRY(rlhf_train_state_save(m, x, path));
    return rlhf_store_stage_progress(s, stage, rlhf_model_step(m));
}

/* 64-bit FNV-1a over the pair ids of the training mixture: a rerun must train on the same pairs. */
static uint64_t ids_fingerprint(rm_pair *const *data, int64_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (int64_t i = 0; i < n; i++) {
        uint64_t v = (uint64_t)data[i]->id;
        for (int b = 0; b < 8; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 1099511628211ULL;
        }
    }
    return h;
}

int cmd_rm_train(int argc, char **argv) {
    cli_common com = CLI_COMMON_DEFAULTS;
    const char *track = NULL, *init = NULL, *tok_path = NULL, *name = NULL, *margin_s = "small";
    float mix = -1.0f, aux_weight = -1.0f, lr = 1e-5f, final_frac = 0.1f, wd = 0.1f, clip = 1.0f;
    float score_std = 1e-3f;
    int32_t epochs = 1, batch = 16, micro = 4, warmup = -1, seq = 0, max_pairs = 0;
    int32_t ckpt_every = 50, stop_after = 0;
    uint64_t seed = 1337;
    bool restart = false;
    cli_opt opts[] = {
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "data and model", false},
        {"track", 0, CLI_STR, &track, "T", NULL, "helpfulness or safety (required)", false},
        {"init", 0, CLI_STR, &init, "CKPT", NULL,
         "base or SFT checkpoint, llama2.c .bin or HF dir (required)", false},
        {"tokenizer", 't', CLI_STR, &tok_path, "T", NULL,
         "the checkpoint's tokenizer, .model or .bin (required)", false},
        {"name", 0, CLI_STR, &name, "NAME", "reward-TRACK", "run name: files in RUN/ckpt/NAME/",
         false},
        {"seq", 0, CLI_NONNEG_INT, &seq, "T", "the model's seq_len",
         "tokens per rendered (context, response); longer ones lose the left of the context",
         false},
        {"mix", 0, CLI_NONNEG_FLOAT, &mix, "F", "0.5 helpfulness, 0.1 safety",
         "share of the training mixture drawn from the other track's train pairs (< 1)", false},
        {"max-pairs", 0, CLI_NONNEG_INT, &max_pairs, "N", "0 = all",
         "train on at most N pairs of the shuffled mixture per epoch (a budget)", false},
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "loss", false},
        {"margin", 0, CLI_STR, &margin_s, "K", "small", "margin table: none, small, large", false},
        {"aux-weight", 0, CLI_NONNEG_FLOAT, &aux_weight, "W", "1 safety, 0 helpfulness",
         "weight of the safety auxiliary term (only responses with safe/unsafe labels)", false},
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "optimization (Llama 2 defaults)", false},
        {"epochs", 0, CLI_POS_INT, &epochs, "N", "1", "passes over the data", false},
        {"batch", 'b', CLI_POS_INT, &batch, "P", "16", "pairs per optimizer step", false},
        {"micro-batch", 0, CLI_POS_INT, &micro, "P", "4",
         "pairs per forward (2P rows: chosen and rejected together); accumulation", false},
        {"lr", 0, CLI_NONNEG_FLOAT, &lr, "F", "1e-5", "peak learning rate", false},
        {"warmup", 0, CLI_INT, &warmup, "N", "3% of the steps, at least 5", "warm-up steps",
         false},
        {"final-lr-frac", 0, CLI_NONNEG_FLOAT, &final_frac, "F", "0.1",
         "the cosine ends at this fraction of the peak", false},
        {"weight-decay", 0, CLI_NONNEG_FLOAT, &wd, "F", "0.1", "AdamW weight decay", false},
        {"clip", 0, CLI_NONNEG_FLOAT, &clip, "F", "1.0", "gradient-norm clip (0: none)", false},
        {"score-std", 0, CLI_NONNEG_FLOAT, &score_std, "F", "1e-3",
         "std of the new score head's weights", false},
        {"seed", 's', CLI_U64, &seed, "S", "1337", "seed of the data order and the score head",
         false},
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "checkpoints and resume", false},
        {"ckpt-every", 0, CLI_NONNEG_INT, &ckpt_every, "N", "50",
         "save the training state every N steps (0: at the end only)", false},
        {"stop-after", 0, CLI_NONNEG_INT, &stop_after, "STEP", NULL,
         "save and stop after step STEP; run the same command to continue", false},
        {"restart", 0, CLI_FLAG, &restart, NULL, NULL, "discard an earlier state of NAME", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    const char *about =
        "Trains a reward model: the checkpoint's trunk with a scalar head reading the last token\n"
        "of \"context + response\" (Llama 2-Chat template), on the run's train pairs of the track\n"
        "(plus --mix of the other track), with the binary ranking loss\n"
        "  L = -log sigmoid(r(x, y_chosen) - r(x, y_rejected) - m(rating))\n"
        "(margins: small 1, 2/3, 1/3, 0; large 3, 2, 1, 0; no rating 0) and, where responses carry\n"
        "safe/unsafe labels, --aux-weight times a cross-entropy pushing safe scores above 0 and\n"
        "unsafe ones below. Writes RUN/ckpt/NAME/hf (score.weight), registered as reward-TRACK.\n"
        "Running the same command again resumes exactly (state in RUN/ckpt/NAME/state.bin).";
    cli_spec spec = {"rm train", "RUN --track helpfulness|safety --init CKPT --tokenizer T [options]",
                     about, opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!track || (strcmp(track, "helpfulness") && strcmp(track, "safety")))
        return cli_usage_error(&spec, "--track helpfulness|safety is required");
    if (!init) return cli_usage_error(&spec, "--init CKPT is required");
    if (!tok_path) return cli_usage_error(&spec, "--tokenizer T is required");
    reward_margin_kind mk;
    if (!reward_margin_parse(margin_s, &mk))
        return cli_usage_error(&spec, "--margin: expected none, small or large, got '%s'",
                               margin_s);
    if (micro > batch || batch % micro != 0)
        return cli_usage_error(&spec, "--batch %d must be a multiple of --micro-batch %d",
                               (int)batch, (int)micro);
    const bool safety = strcmp(track, "safety") == 0;
    if (mix < 0) mix = safety ? 0.1f : 0.5f;
    if (mix >= 1.0f) return cli_usage_error(&spec, "--mix must be below 1");
    if (aux_weight < 0) aux_weight = safety ? 1.0f : 0.0f;
    char name_buf[64];
    if (!name) {
        snprintf(name_buf, sizeof name_buf, "reward-%s", track);
        name = name_buf;
    }
    if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return cli_usage_error(&spec, "--name: a plain directory name, got '%s'", name);

    rlhf_store *s = NULL;
    rlhf_tokenizer *tok = NULL;
    rlhf_model *m = NULL;
    cli_progress lp = {0};
    float *ck_params = NULL, *rm_params = NULL;
    rm_pairs own = {0}, other = {0};
    rm_pair **data = NULL;
    int64_t *idx = NULL, *oidx = NULL;
    reward_pair_tokens *mb = NULL;
    char *opts_json = NULL, *old_json = NULL;
    const rlhf_backend *be = NULL;
    cli_stop stop = {0};
    rlhf_status st = RLHF_OK;
    char dir[4096], state_path[4200], json_path[4200], hf_path[4200], reg[4300];

    RLHF_TRY_GOTO(st, cli_setup(&com, &be), fail);
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    snprintf(dir, sizeof dir, "%s/ckpt/%s", pos[0], name);
    snprintf(state_path, sizeof state_path, "%s/state.bin", dir);
    snprintf(json_path, sizeof json_path, "%s/train.json", dir);
    snprintf(hf_path, sizeof hf_path, "%s/hf", dir);
    RLHF_TRY_GOTO(st, make_dir(dir), fail);
    RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, 0), fail);

    rlhf_model_config ck_cfg, rm_cfg;
    RLHF_TRY_GOTO(st, rlhf_checkpoint_read(init, &ck_cfg, &ck_params), fail);
    RLHF_TRY_GOTO(st, cli_check_vocab(init, ck_cfg.vocab_size, tok_path, tok), fail);
    const int32_t T = seq > 0 ? seq : ck_cfg.seq_len;
    if (T > ck_cfg.seq_len || T < 2) {
        st = RLHF_ERR(RLHF_ERR_ARG, "--seq %d: must be in 2..%d (the model's seq_len)", (int)T,
                      (int)ck_cfg.seq_len);
        goto fail;
    }

    /* ---- the data: own track + a share of the other ---- */
    cli_progress_start(&lp, "tokenizing pairs", "pairs", 0, &com);
    load_ctx lc = {.own = &own, .other = mix > 0 ? &other : NULL, .track = track,
                   .split = RLHF_SPLIT_TRAIN, .tok = tok, .max_tokens = T, .prog = &lp};
    double t_load = cli_now();
    RLHF_TRY_GOTO(st, rlhf_store_pairs_each(s, load_pair, &lc), fail);
    cli_progress_end(&lp);
    t_load = cli_now() - t_load;
    if (own.n == 0) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s has no train pairs of track %s: import some with "
                      "`rlhf import %s FILE --track %s`", pos[0], track, pos[0], track);
        goto fail;
    }
    int64_t n_other = mix > 0 ? (int64_t)llround((double)own.n * mix / (1.0 - mix)) : 0;
    const int64_t want_other = n_other;
    if (n_other > other.n) n_other = other.n;
    const int64_t N = own.n + n_other;
    data = malloc((size_t)N * sizeof *data);
    idx = malloc((size_t)N * sizeof *idx);
    oidx = malloc((size_t)(other.n > 0 ? other.n : 1) * sizeof *oidx);
    mb = malloc((size_t)micro * sizeof *mb);
    if (!data || !idx || !oidx || !mb) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for %lld pairs", (long long)N);
        goto fail;
    }
    for (int64_t i = 0; i < own.n; i++) data[i] = &own.v[i];
    shuffle(oidx, other.n, seed, -1); /* which of the other track's pairs join */
    for (int64_t i = 0; i < n_other; i++) data[own.n + i] = &other.v[oidx[i]];
    const int64_t E = max_pairs > 0 && max_pairs < N ? max_pairs : N; /* pairs per epoch */
    const int64_t spe = (E + batch - 1) / batch;
    const int64_t total = spe * epochs;

    /* ---- the run's definition; resume or start ---- */
    rlhf_train_extra x;
    memset(&x, 0, sizeof x);
    x.schedule.peak_lr = lr;
    x.schedule.total_steps = total;
    x.schedule.warmup_steps = warmup >= 0 ? warmup : (int64_t)ceil(0.03 * (double)total);
    if (warmup < 0 && x.schedule.warmup_steps < 5) x.schedule.warmup_steps = 5;
    if (x.schedule.warmup_steps >= total) x.schedule.warmup_steps = total > 1 ? total - 1 : 1;
    x.schedule.final_frac = final_frac;
    x.adamw = rlhf_adamw_default();
    x.adamw.weight_decay = wd;
    x.adamw.clip_norm = clip;
    rlhf_rng_seed(&x.rng, seed, RM_SHUFFLE_STREAM);
    {
        char *init_abs = realpath(init, NULL), *tok_abs = realpath(tok_path, NULL);
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:i, s:f, s:I, s:I, s:I, s:s, s:f, s:i, s:i, s:i, s:f, s:I, s:f, "
            "s:f, s:f, s:f, s:I, s:s}",
            "track", track, "init", init_abs ? init_abs : init, "tokenizer",
            tok_abs ? tok_abs : tok_path, "seq", (int)T, "mix", (double)mix, "pairs_own",
            (json_int_t)own.n, "pairs_other", (json_int_t)n_other, "pairs_per_epoch",
            (json_int_t)E, "margin", reward_margin_name(mk), "aux_weight", (double)aux_weight,
            "epochs", (int)epochs, "batch", (int)batch, "micro_batch", (int)micro, "lr",
            (double)lr, "warmup", (json_int_t)x.schedule.warmup_steps, "final_lr_frac",
            (double)final_frac, "weight_decay", (double)wd, "clip", (double)clip, "score_std",
            (double)score_std, "seed", (json_int_t)seed, "pairs_fingerprint", "");
        char fp[32];
        snprintf(fp, sizeof fp, "%016" PRIx64, ids_fingerprint(data, N));
        if (o) json_object_set_new(o, "pairs_fingerprint", json_string(fp));
        opts_json = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        free(init_abs);
        free(tok_abs);
        if (!opts_json) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    rlhf_store_stage stage = {0};
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "rm-train", name, &stage, &found), fail);
    bool have_state = file_exists(state_path) && !restart;
    if (have_state || (found && stage.status == RLHF_STAGE_DONE && !restart)) {
        size_t len = 0;
        if (file_exists(json_path)) RLHF_TRY_GOTO(st, rlhf_text_read(json_path, &old_json, &len),
                                                  fail);
        if (!old_json || strcmp(old_json, opts_json) != 0) {
            st = RLHF_ERR(RLHF_ERR_ARG, "the options or the pairs differ from the run being "
                          "resumed in %s (%s has %s; now %s): pass the same options, another "
                          "--name, or --restart", dir, json_path, old_json ? old_json : "nothing",
                          opts_json);
            goto fail;
        }
    }
    if (found && stage.status == RLHF_STAGE_DONE && !restart && file_exists(hf_path)) {
        if (!com.quiet)
            printf("rm train: the run %s is already complete (%lld steps); its model is %s\n",
                   name, (long long)stage.progress, hf_path);
        rc = CLI_EXIT_OK;
        goto done;
    }
    if (!found || stage.status == RLHF_STAGE_DONE || restart || !have_state) {
        if (found && stage.status == RLHF_STAGE_RUNNING)
            RLHF_TRY_GOTO(st, rlhf_store_stage_fail(s, stage.id, "restarted", NULL), fail);
        RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "rm-train", name, opts_json, total,
                                                 &stage.id), fail);
        have_state = false;
        RLHF_TRY_GOTO(st, write_text(json_path, opts_json), fail);
    }

    /* ---- the model ---- */
    RLHF_TRY_GOTO(st, reward_params_from_checkpoint(&ck_cfg, ck_params, score_std, seed, &rm_cfg,
                                                    &rm_params), fail);
    rm_cfg.trainable = true;
    RLHF_TRY_GOTO(st, rlhf_model_init(&m, &rm_cfg, be, 2 * micro, T), fail);
    RLHF_TRY_GOTO(st, rlhf_model_set_params(m, rm_params), fail);
    if (have_state) {
        rlhf_train_extra sx;
        RLHF_TRY_GOTO(st, rlhf_train_state_load(m, &sx, state_path), fail);
        x.rng = sx.rng;
    }
    const int64_t step0 = rlhf_model_step(m);
    int64_t parent = 0;
    ckpt_file(init, reg, sizeof reg);
    if (rlhf_store_checkpoint_add(s, ck_cfg.head == RLHF_HEAD_SCALAR ? (safety ? "reward-safety"
                                                                               : "reward-helpfulness")
                                                                     : "base",
                                  reg, 0, 0, 0, &parent) != RLHF_OK) {
        parent = 0; /* provenance only: a checkpoint we cannot hash is not an error */
        rlhf_error_clear();
    }

    if (!com.quiet) {
        printf("rm train: %s %s/%s, track %s, init %s\n", have_state ? "resuming" : "new run",
               pos[0], name, track, init);
        printf("model: ");
        cli_print_config(stdout, &rm_cfg);
        printf("scalar head; %" PRId64 " parameters\n", rlhf_model_num_params(m));
        printf("data: %lld train pairs of %s + %lld of the other track (mix %g%s) = %lld; %lld per "
               "epoch; %lld responses truncated to %d tokens; tokenized in %.1f s\n",
               (long long)own.n, track, (long long)n_other, (double)mix,
               n_other < want_other ? ", all there are" : "", (long long)N, (long long)E,
               (long long)(own.truncated + other.truncated), (int)T, t_load);
        printf("training: %lld steps x %d pairs (micro-batch %d pairs = %d rows), %d epoch%s; "
               "margin %s, aux weight %g\n",
               (long long)total, (int)batch, (int)micro, (int)(2 * micro), (int)epochs,
               epochs == 1 ? "" : "s", reward_margin_name(mk), (double)aux_weight);
        printf("optimizer: AdamW (%g, %g) eps %g wd %g clip %g; lr %g, warm-up %lld, cosine to "
               "%g; seed %" PRIu64 "%s\n",
               (double)x.adamw.beta1, (double)x.adamw.beta2, (double)x.adamw.eps,
               (double)x.adamw.weight_decay, (double)x.adamw.clip_norm, (double)lr,
               (long long)x.schedule.warmup_steps, (double)(final_frac * lr), seed,
               have_state ? "" : "");
        if (have_state) printf("resuming at step %lld/%lld\n", (long long)step0, (long long)total);
        fflush(stdout);
    }

    /* ---- the loop ---- */
    cli_stop_catch(&stop);
    cli_progress prog;
    cli_progress_start(&prog, "step", "steps", total, &com);
    prog.base = step0;
    int64_t step = step0, cur_epoch = -1, seen = 0, correct = 0, tokens = 0;
    double t_start = cli_now(), last_loss = NAN;
    const int64_t log_every = total / 20 > 0 ? total / 20 : 1;
    bool stopped = false;
    while (step < total) {
        if (cli_stop_signal()) break;
        if (stop_after > 0 && step >= stop_after) {
            stopped = true;
            break;
        }
        const int64_t e = step / spe, j = step % spe;
        if (e != cur_epoch) {
            shuffle(idx, N, seed, e);
            cur_epoch = e;
        }
        const int64_t b0 = j * batch, b1 = b0 + batch < E ? b0 + batch : E;
        const int32_t np = (int32_t)(b1 - b0);
        const float lr_now = rlhf_schedule_lr(&x.schedule, step);
        double loss = 0;
        int32_t ok = 0;
        RLHF_TRY_GOTO(st, rlhf_model_zero_grad(m), fail);
        for (int64_t k = b0; k < b1; k += micro) {
            const int32_t nm = (int32_t)(b1 - k < micro ? b1 - k : micro);
            for (int32_t q = 0; q < nm; q++) {
                const rm_pair *p = data[idx[k + q]];
                mb[q] = (reward_pair_tokens){p->c, p->r, p->nc, p->nr,
                                             reward_margin(mk, p->rating), p->cs, p->rs};
            }
            reward_batch_result br;
            RLHF_TRY_GOTO(st, reward_pairs_step(m, mb, nm, aux_weight, 1.0f / (float)np, NULL,
                                                NULL, &br), fail);
            loss += br.rank_loss + aux_weight * br.aux_loss;
            ok += br.correct;
            tokens += br.tokens;
        }
        loss /= np;
        if (!isfinite(loss)) {
            st = RLHF_ERR(RLHF_ERR_ARG, "training diverged at step %lld (loss %g): lower --lr "
                          "and --restart", (long long)step + 1, loss);
            goto fail;
        }
        float gnorm = 0;
        RLHF_TRY_GOTO(st, rlhf_model_adamw_step(m, &x.adamw, lr_now, &gnorm), fail);
        step = rlhf_model_step(m);
        seen += np;
        correct += ok;
        last_loss = loss;
        RLHF_TRY_GOTO(st, rlhf_store_metric_set(s, stage.id, step, "loss", loss), fail);
        RLHF_TRY_GOTO(st, rlhf_store_metric_set(s, stage.id, step, "accuracy", (double)ok / np),
                      fail);
        RLHF_TRY_GOTO(st, rlhf_store_metric_set(s, stage.id, step, "lr", lr_now), fail);
        RLHF_TRY_GOTO(st, rlhf_store_metric_set(s, stage.id, step, "grad_norm", gnorm), fail);
        const double el = cli_now() - t_start, tps = el > 0 ? (double)tokens / el : 0;
        if (ckpt_every > 0 && step % ckpt_every == 0 && step < total)
            RLHF_TRY_GOTO(st, save_state(m, &x, state_path, s, stage.id), fail);
        if (!com.quiet && (step % log_every == 0 || step == total)) {
            cli_progress_end(&prog);
            printf("step %6lld/%lld  loss %.4f  acc %.3f (running %.3f over %lld pairs)  lr %.2e  "
                   "grad-norm %.3f  %.0f tokens/s\n",
                   (long long)step, (long long)total, loss, (double)ok / np,
                   (double)correct / (double)seen, (long long)seen, (double)lr_now, (double)gnorm,
                   tps);
            fflush(stdout);
        }
        cli_progress_note(&prog, step, false, "loss %.4f acc %.3f %.0f tok/s", loss,
                          (double)correct / (double)seen, tps);
    }
    cli_progress_end(&prog);
    RLHF_TRY_GOTO(st, save_state(m, &x, state_path, s, stage.id), fail);
    const int sig = cli_stop_signal();
    if (step >= total) {
        float *out = NULL;
        RLHF_TRY_GOTO(st, rlhf_alloc((void **)&out, (size_t)rlhf_model_num_params(m) *
                                                        sizeof(float)), fail);
        st = rlhf_model_get_params(m, out);
        rlhf_model_config wc = rm_cfg;
        wc.trainable = false;
        if (st == RLHF_OK) st = rlhf_hf_write(hf_path, &wc, out, RLHF_DTYPE_F32, 0, true);
        rlhf_free(out);
        if (st != RLHF_OK) goto fail;
        int64_t ck_id = 0;
        snprintf(reg, sizeof reg, "%s/model.safetensors", hf_path);
        RLHF_TRY_GOTO(st, rlhf_store_checkpoint_add(s, safety ? "reward-safety"
                                                              : "reward-helpfulness",
                                                    reg, parent, step, stage.id, &ck_id), fail);
        char res[256];
        snprintf(res, sizeof res, "{\"steps\": %lld, \"checkpoint_id\": %lld, \"last_loss\": %.6g, "
                 "\"running_accuracy\": %.6g}", (long long)step, (long long)ck_id,
                 isfinite(last_loss) ? last_loss : -1.0,
                 seen ? (double)correct / (double)seen : -1.0);
        RLHF_TRY_GOTO(st, rlhf_store_stage_finish(s, stage.id, step, res), fail);
        if (!com.quiet)
            printf("done: %lld steps; reward model %s (checkpoint %lld, role reward-%s)\n",
                   (long long)step, hf_path, (long long)ck_id, track);
    } else if (!com.quiet) {
        if (sig)
            printf("interrupted (signal %d) at step %lld/%lld: state saved in %s; run the same "
                   "command to resume\n", sig, (long long)step, (long long)total, state_path);
        else if (stopped)
            printf("stopped at step %lld/%lld (--stop-after): state saved in %s\n",
                   (long long)step, (long long)total, state_path);
    }
    rc = sig ? 128 + sig : CLI_EXIT_OK;
    goto done;
fail:
    cli_progress_end(&lp);
    rc = cli_fail(spec.cmd, st);
done:
    cli_stop_release(&stop);
    free(opts_json);
    free(old_json);
    free(data);
    free(idx);
    free(oidx);
    free(mb);
    pairs_free(&own);
    pairs_free(&other);
    rlhf_free(ck_params);
    rlhf_free(rm_params);
    rlhf_model_free(m);
    rlhf_tokenizer_free(tok);
    rlhf_store_close(s);
    return rc;
}

/* ---- rm eval --------------------------------------------------------------------------------- */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Value at quantile q of sorted v[0..n) (nearest rank). */
static double quantile(const float *v, int64_t n, double q) {
    if (n <= 0) return NAN;
    int64_t i = (int64_t)floor(q * (double)(n - 1) + 0.5);
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Scores the chosen and rejected responses of every pair: rc[i], rr[i]. */
static rlhf_status score_pairs(rlhf_model *m, const rm_pairs *p, int32_t batch, float *rc,
                               float *rr, cli_progress *prog) {
    const int32_t chunk = 256;
    const int32_t *seqs[512];
    int32_t lens[512];
    float out[512];
    for (int64_t i0 = 0; i0 < p->n; i0 += chunk) {
        const int32_t k = (int32_t)(p->n - i0 < chunk ? p->n - i0 : chunk);
        for (int32_t j = 0; j < k; j++) {
            seqs[j] = p->v[i0 + j].c;
            lens[j] = p->v[i0 + j].nc;
            seqs[k + j] = p->v[i0 + j].r;
            lens[k + j] = p->v[i0 + j].nr;
        }
        RLHF_TRY(reward_model_score(m, seqs, lens, 2 * k, batch, out));
        for (int32_t j = 0; j < k; j++) {
            rc[i0 + j] = out[j];
            rr[i0 + j] = out[k + j];
        }
        if (prog) cli_progress_update(prog, i0 + k);
    }
    return RLHF_OK;
}

/* What rm eval stores (rm-eval stage metrics at step 0). */
typedef struct eval_rows {
    const char *const *names; /* (n) strength names */
    const int64_t *cnt, *ok;  /* (n) pairs and correct pairs per strength */
    int n;
    double margin_mean, margin_sd;
    int64_t truncated;
    double accuracy, lo, hi; /* overall */
} eval_rows;

/* Finds (or starts) the rm-eval stage keyed by model, data, track, max-pairs and seq, and writes in
 * one transaction, for each strength: rm-eval/n/<s>, and when it has pairs rm-eval/accuracy/<s>,
 * rm-eval/ci_lo/<s>, rm-eval/ci_hi/<s> (95% Wilson); plus rm-eval/margin_mean, margin_sd and
 * truncated. A rerun of the same evaluation overwrites the same rows. *stage gets the id. */
static rlhf_status eval_store(rlhf_store *s, const char *model, const char *pairs_file,
                              const char *split, const char *track, int32_t max_pairs, int32_t T,
                              const eval_rows *e, int64_t *stage) {
    char data[200], key[4700];
    if (pairs_file) {
        char hex[65];
        RLHF_TRY(rlhf_store_sha256_file(pairs_file, hex, NULL));
        snprintf(data, sizeof data, "pairs:%s", hex);
    } else {
        snprintf(data, sizeof data, "split:%s", split);
    }
    snprintf(key, sizeof key, "model=%.4000s data=%s track=%s max=%d seq=%d", model, data,
             track ? track : "all", (int)max_pairs, (int)T);
    json_t *pj = json_pack("{s:s, s:s, s:s?, s:s, s:i, s:i}", "model", model, "data", data,
                           "pairs_file", pairs_file, "track", track ? track : "all", "max_pairs",
                           (int)max_pairs, "seq", (int)T);
    json_t *rj = json_pack("{s:I, s:f, s:[f, f]}", "pairs", (json_int_t)e->cnt[e->n - 1],
                           "accuracy", e->accuracy, "ci95", e->lo, e->hi);
    char *params = pj ? json_dumps(pj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    char *result = rj ? json_dumps(rj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(pj);
    json_decref(rj);
    rlhf_status st = RLHF_OK;
    if (!params || !result) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto done;
    }
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "rm-eval", key, &sg, &found), done);
    if (found) *stage = sg.id;
    else RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "rm-eval", key, params, e->n, stage), done);
    RLHF_TRY_GOTO(st, rlhf_store_begin(s), done);
    char name[96];
    for (int g = 0; g < e->n && st == RLHF_OK; g++) {
        snprintf(name, sizeof name, "rm-eval/n/%s", e->names[g]);
        st = rlhf_store_metric_set(s, *stage, 0, name, (double)e->cnt[g]);
        if (st != RLHF_OK || e->cnt[g] == 0) continue;
        double lo, hi;
        reward_wilson(e->ok[g], e->cnt[g], 1.96, &lo, &hi);
        snprintf(name, sizeof name, "rm-eval/accuracy/%s", e->names[g]);
        st = rlhf_store_metric_set(s, *stage, 0, name, (double)e->ok[g] / (double)e->cnt[g]);
        snprintf(name, sizeof name, "rm-eval/ci_lo/%s", e->names[g]);
        if (st == RLHF_OK) st = rlhf_store_metric_set(s, *stage, 0, name, lo);
        snprintf(name, sizeof name, "rm-eval/ci_hi/%s", e->names[g]);
        if (st == RLHF_OK) st = rlhf_store_metric_set(s, *stage, 0, name, hi);
    }
    if (st == RLHF_OK) st = rlhf_store_metric_set(s, *stage, 0, "rm-eval/margin_mean", e->margin_mean);
    if (st == RLHF_OK) st = rlhf_store_metric_set(s, *stage, 0, "rm-eval/margin_sd", e->margin_sd);
    if (st == RLHF_OK)
        st = rlhf_store_metric_set(s, *stage, 0, "rm-eval/truncated", (double)e->truncated);
    if (st == RLHF_OK) st = rlhf_store_stage_finish(s, *stage, e->n, result);
    if (st == RLHF_OK) st = rlhf_store_commit(s);
    if (st != RLHF_OK) rlhf_store_rollback(s);
done:
    free(params);
    free(result);
    return st;
}

int cmd_rm_eval(int argc, char **argv) {
    cli_common com = CLI_COMMON_DEFAULTS;
    const char *model = NULL, *tok_path = NULL, *pairs_file = NULL, *split_s = "eval";
    const char *track = NULL;
    int32_t batch = 16, seq = 0, max_pairs = 0;
    bool as_json = false;
    cli_opt opts[] = {
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "model and data", false},
        {"model", 'm', CLI_STR, &model, "RM", NULL, "reward model (HF dir or .bin; required)",
         false},
        {"tokenizer", 't', CLI_STR, &tok_path, "T", NULL, "its tokenizer (required)", false},
        {"pairs", 0, CLI_STR, &pairs_file, "FILE", NULL,
         "evaluate on a pairs file (any importable format) instead of the run's pairs", false},
        {"split", 0, CLI_STR, &split_s, "S", "eval", "the run's split: eval or train", false},
        {"track", 0, CLI_STR, &track, "T", "all",
         "only pairs of this track (helpfulness or safety)", false},
        {"max-pairs", 0, CLI_NONNEG_INT, &max_pairs, "N", "0 = all", "evaluate the first N pairs",
         false},
        {"seq", 0, CLI_NONNEG_INT, &seq, "T", "the model's seq_len", "tokens per rendering",
         false},
        {"batch", 'b', CLI_POS_INT, &batch, "B", "16", "rows per forward", false},
        {"json", 0, CLI_FLAG, &as_json, NULL, NULL, "machine-readable output on stdout", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {"rm eval", "RUN --model RM --tokenizer T [--pairs FILE | --split eval] [options]",
                     "Accuracy (r_chosen > r_rejected; ties count as wrong) overall and per\n"
                     "preference strength (the layout of Llama 2's Table 8), with 95% Wilson\n"
                     "intervals, the mean margin r_chosen - r_rejected and the score distribution.\n"
                     "The results are stored in the run: an rm-eval stage (key: model, data,\n"
                     "track, max-pairs, seq; a rerun overwrites the same rows) with metrics\n"
                     "rm-eval/accuracy/<strength>, rm-eval/n/<strength>, rm-eval/ci_lo/<strength>,\n"
                     "rm-eval/ci_hi/<strength> (significantly, better, slightly, negligibly, unsure,\n"
                     "negligibly_unsure, none, all).",
                     opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!model || !tok_path) return cli_usage_error(&spec, "--model and --tokenizer are required");
    rlhf_split split = RLHF_SPLIT_EVAL;
    if (strcmp(split_s, "eval") == 0) split = RLHF_SPLIT_EVAL;
    else if (strcmp(split_s, "train") == 0) split = RLHF_SPLIT_TRAIN;
    else return cli_usage_error(&spec, "--split: eval or train, got '%s'", split_s);
    ds_track dtrack = DS_TRACK_NONE;
    if (track && (!ds_track_parse(track, &dtrack) || dtrack == DS_TRACK_NONE))
        return cli_usage_error(&spec, "--track: helpfulness or safety, got '%s'", track);

    rlhf_store *s = NULL;
    rlhf_tokenizer *tok = NULL;
    rlhf_model *m = NULL;
    rm_pairs pairs = {0}, other_unused = {0};
    float *rc_v = NULL, *rr_v = NULL, *all = NULL;
    const rlhf_backend *be = NULL;
    rlhf_status st = RLHF_OK;
    cli_progress prog = {0};
    int64_t stage_id = 0;
    RLHF_TRY_GOTO(st, cli_setup(&com, &be), fail);
    RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, 0), fail);
    RLHF_TRY_GOTO(st, cli_rm_load(model, be, batch, seq, &m), fail);
    const rlhf_model_config *mc = rlhf_model_get_config(m);
    RLHF_TRY_GOTO(st, cli_check_vocab(model, mc->vocab_size, tok_path, tok), fail);
    const int32_t T = seq > 0 && seq < mc->seq_len ? seq : mc->seq_len;
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    if (pairs_file) {
        ds_read_opts ro = {.format = DS_FMT_AUTO, .track = dtrack};
        file_ctx fc = {&pairs, tok, T};
        RLHF_TRY_GOTO(st, ds_read(pairs_file, &ro, load_file_pair, NULL, &fc, NULL), fail);
    } else {
        /* both tracks unless --track: collect "own" = the named track, "other" = the rest */
        load_ctx lc = {.own = &pairs, .other = track ? NULL : &other_unused,
                       .track = track ? track : "helpfulness", .split = split, .tok = tok,
                       .max_tokens = T};
        RLHF_TRY_GOTO(st, rlhf_store_pairs_each(s, load_pair, &lc), fail);
        for (int64_t i = 0; i < other_unused.n; i++) { /* merge the other track in */
            if (pairs.n == pairs.cap) {
                int64_t cap = pairs.cap ? 2 * pairs.cap : 1024;
                rm_pair *v = realloc(pairs.v, (size_t)cap * sizeof *v);
                if (!v) {
                    st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                pairs.v = v;
                pairs.cap = cap;
            }
            pairs.v[pairs.n++] = other_unused.v[i];
        }
        pairs.truncated += other_unused.truncated;
        free(other_unused.v);
        memset(&other_unused, 0, sizeof other_unused);
    }
    if (max_pairs > 0 && pairs.n > max_pairs) {
        for (int64_t i = max_pairs; i < pairs.n; i++) {
            free(pairs.v[i].c);
            free(pairs.v[i].r);
        }
        pairs.n = max_pairs;
    }
    const int64_t n = pairs.n;
    if (n == 0) {
        st = RLHF_ERR(RLHF_ERR_ARG, "no pairs to evaluate (%s%s%s)",
                      pairs_file ? pairs_file : "split ", pairs_file ? "" : split_s,
                      track ? ", that track" : "");
        goto fail;
    }
    rc_v = malloc((size_t)n * sizeof *rc_v);
    rr_v = malloc((size_t)n * sizeof *rr_v);
    all = malloc((size_t)2 * n * sizeof *all);
    if (!rc_v || !rr_v || !all) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    cli_progress_start(&prog, "scoring", "pairs", n, &com);
    double t0 = cli_now();
    RLHF_TRY_GOTO(st, score_pairs(m, &pairs, batch, rc_v, rr_v, &prog), fail);
    cli_progress_end(&prog);
    const double secs = cli_now() - t0;

    /* per rating: significantly, better, slightly, negligibly+unsure, none, all */
    static const char *const col[] = {"significantly better", "better", "slightly better",
                                      "negligibly better / unsure", "no rating", "all"};
    static const char *const key[] = {"significantly", "better", "slightly", "negligibly_unsure",
                                      "none", "all"};
    int64_t cnt[6] = {0}, ok[6] = {0};
    int64_t scnt[5] = {0}, sok[5] = {0}; /* negligibly and unsure apart (slots 3, 4) for the store */
    double msum = 0, mss = 0, csum = 0, rsum = 0, below = 0;
    for (int64_t i = 0; i < n; i++) {
        int g;
        switch (pairs.v[i].rating) {
        case DS_RATING_SIGNIFICANTLY: g = 0; break;
        case DS_RATING_BETTER: g = 1; break;
        case DS_RATING_SLIGHTLY: g = 2; break;
        case DS_RATING_NEGLIGIBLY:
        case DS_RATING_UNSURE: g = 3; break;
        default: g = 4;
        }
        bool good = rc_v[i] > rr_v[i];
        if (pairs.v[i].rating == DS_RATING_NEGLIGIBLY) scnt[3]++, sok[3] += good;
        if (pairs.v[i].rating == DS_RATING_UNSURE) scnt[4]++, sok[4] += good;
        cnt[g]++;
        ok[g] += good;
        cnt[5]++;
        ok[5] += good;
        double d = (double)rc_v[i] - (double)rr_v[i];
        msum += d;
        mss += d * d;
        csum += rc_v[i];
        rsum += rr_v[i];
        all[2 * i] = rc_v[i];
        all[2 * i + 1] = rr_v[i];
        below += (sigm(rc_v[i]) < 0.15) + (sigm(rr_v[i]) < 0.15);
    }
    qsort(all, (size_t)(2 * n), sizeof *all, cmp_float);
    const double mm = msum / (double)n, msd = sqrt(fmax(mss / (double)n - mm * mm, 0));
    double lo[6], hi[6];
    for (int g = 0; g < 6; g++) reward_wilson(ok[g], cnt[g], 1.96, &lo[g], &hi[g]);
    const double qs[5] = {0.0, 0.1, 0.5, 0.9, 1.0};
    double qv[5];
    for (int i = 0; i < 5; i++) qv[i] = quantile(all, 2 * n, qs[i]);
    {
        /* the store: one rm-eval stage per (model, data, track, max-pairs, seq) */
        static const char *const sname[] = {"significantly", "better",            "slightly",
                                            "negligibly",    "unsure",            "negligibly_unsure",
                                            "none",          "all"};
        int64_t sc[8], so[8];
        for (int g = 0; g < 3; g++) sc[g] = cnt[g], so[g] = ok[g];
        sc[3] = scnt[3], so[3] = sok[3], sc[4] = scnt[4], so[4] = sok[4];
        sc[5] = cnt[3], so[5] = ok[3], sc[6] = cnt[4], so[6] = ok[4], sc[7] = cnt[5], so[7] = ok[5];
        eval_rows es = {sname, sc, so, 8, mm, msd, pairs.truncated, (double)ok[5] / (double)n,
                        lo[5], hi[5]};
        RLHF_TRY_GOTO(st, eval_store(s, model, pairs_file, split_s, track, max_pairs, (int32_t)T,
                                     &es, &stage_id),
                      fail);
    }
    if (as_json) {
        json_t *o = json_object(), *by = json_object();
        json_object_set_new(o, "model", json_string(model));
        json_object_set_new(o, "source", json_string(pairs_file ? pairs_file : split_s));
        json_object_set_new(o, "pairs", json_integer(n));
        json_object_set_new(o, "accuracy", json_real((double)ok[5] / (double)n));
        json_object_set_new(o, "ci95", json_pack("[f, f]", lo[5], hi[5]));
        for (int g = 0; g < 5; g++)
            json_object_set_new(by, key[g],
                                cnt[g] ? json_pack("{s:I, s:f, s:[f, f]}", "pairs",
                                                   (json_int_t)cnt[g], "accuracy",
                                                   (double)ok[g] / (double)cnt[g], "ci95", lo[g],
                                                   hi[g])
                                       : json_pack("{s:i, s:n, s:n}", "pairs", 0, "accuracy",
                                                   "ci95"));
        json_object_set_new(o, "by_rating", by);
        json_object_set_new(o, "mean_margin", json_real(mm));
        json_object_set_new(o, "margin_sd", json_real(msd));
        json_object_set_new(
            o, "scores",
            json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "chosen_mean",
                      csum / (double)n, "rejected_mean", rsum / (double)n, "min", qv[0], "p10",
                      qv[1], "p50", qv[2], "p90", qv[3], "max", qv[4], "share_sigmoid_below_0.15",
                      below / (double)(2 * n)));
        json_object_set_new(o, "truncated_responses", json_integer(pairs.truncated));
        json_object_set_new(o, "stage", json_integer(stage_id));
        char *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (txt) printf("%s\n", txt);
        free(txt);
    } else {
        printf("rm eval: %s on %lld pairs of %s%s%s (%lld responses truncated to %d tokens), "
               "%.1f s\n",
               model, (long long)n, pairs_file ? pairs_file : "the run's ",
               pairs_file ? "" : split_s, pairs_file ? "" : " split", (long long)pairs.truncated,
               (int)T, secs);
        printf("accuracy %.4f (%lld/%lld), 95%% CI [%.4f, %.4f] (Wilson)\n\n",
               (double)ok[5] / (double)n, (long long)ok[5], (long long)n, lo[5], hi[5]);
        printf("| preference | pairs | accuracy | 95%% CI |\n| --- | --- | --- | --- |\n");
        for (int g = 0; g < 6; g++) {
            if (cnt[g] == 0 && g != 5) {
                printf("| %s | 0 | - | - |\n", col[g]);
                continue;
            }
            printf("| %s | %lld | %.4f | [%.4f, %.4f] |\n", col[g], (long long)cnt[g],
                   (double)ok[g] / (double)cnt[g], lo[g], hi[g]);
        }
        printf("\nmargin r_chosen - r_rejected: mean %.4f, sd %.4f\n", mm, msd);
        printf("stored: stage %" PRId64 " (rm-eval), metrics rm-eval/accuracy/<strength>\n",
               stage_id);
        printf("scores: chosen mean %.4f, rejected mean %.4f; all: min %.4f p10 %.4f median %.4f "
               "p90 %.4f max %.4f; sigmoid < 0.15: %.1f%%\n",
               csum / (double)n, rsum / (double)n, qv[0], qv[1], qv[2], qv[3], qv[4],
               100.0 * below / (double)(2 * n));
    }
    rc = CLI_EXIT_OK;
    goto done;
fail:
    cli_progress_end(&prog);
    rc = cli_fail(spec.cmd, st);
done:
    free(rc_v);
    free(rr_v);
    free(all);
    pairs_free(&pairs);
    pairs_free(&other_unused);
    rlhf_model_free(m);
    rlhf_tokenizer_free(tok);
    rlhf_store_close(s);
    return rc;
}

/* ---- score --------------------------------------------------------------------------------- */

typedef struct prompt_row {
    int64_t id;
    char *text, *system;
} prompt_row;

typedef struct prompt_list {
    prompt_row *v;
    int64_t n, cap;
} prompt_list;

static rlhf_status collect_prompt(void *ctx, const rlhf_store_prompt *p) {
    prompt_list *l = ctx;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 1024;
        prompt_row *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for prompts");
        l->v = v;
        l->cap = cap;
    }
    prompt_row *r = &l->v[l->n];
    r->id = p->id;
    r->text = cli_strdup(p->text);
    r->system = cli_strdup(p->system);
    if (!r->text || (p->system && !r->system)) {
        free(r->text);
        free(r->system);
        return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for prompts");
    }
    l->n++;
    return RLHF_OK;
}

static void prompts_free(prompt_list *l) {
    for (int64_t i = 0; i < l->n; i++) {
        free(l->v[i].text);
        free(l->v[i].system);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Prompt rows arrive in id order: binary search. */
static const prompt_row *find_prompt(const prompt_list *l, int64_t id) {
    int64_t a = 0, b = l->n;
    while (a < b) {
        int64_t mid = a + (b - a) / 2;
        if (l->v[mid].id < id) a = mid + 1;
        else b = mid;
    }
    return a < l->n && l->v[a].id == id ? &l->v[a] : NULL;
}

typedef struct sample_row {
    int64_t id, prompt_id;
    char *text;
} sample_row;

typedef struct sample_list {
    sample_row *v;
    int64_t n, cap;
    int64_t after; /* only samples with a larger id */
    int64_t total; /* all samples seen */
} sample_list;

static rlhf_status collect_sample(void *ctx, const rlhf_store_sample *x) {
    sample_list *l = ctx;
    l->total++;
    if (x->id <= l->after) return RLHF_OK;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 1024;
        sample_row *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for samples");
        l->v = v;
        l->cap = cap;
    }
    sample_row *r = &l->v[l->n];
    r->id = x->id;
    r->prompt_id = x->prompt_id;
    r->text = cli_strdup(x->text ? x->text : "");
    if (!r->text) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for samples");
    l->n++;
    return RLHF_OK;
}

static void samples_free(sample_list *l) {
    for (int64_t i = 0; i < l->n; i++) free(l->v[i].text);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Scores the run's samples not yet scored by one reward model; see the file comment. */
static rlhf_status score_with(rlhf_store *s, const char *path, const char *role,
                              const rlhf_tokenizer *tok, const prompt_list *prompts, int32_t batch,
                              int32_t seq, const rlhf_backend *be, const cli_common *com) {
    rlhf_model *m = NULL;
    sample_list sl = {0};
    int32_t **seqs = NULL, *lens = NULL;
    float *out = NULL;
    rlhf_status st = RLHF_OK;
    cli_progress prog = {0};
    char reg[4200], key[64];
    ckpt_file(path, reg, sizeof reg);
    RLHF_TRY(cli_rm_load(path, be, batch, seq, &m));
    const rlhf_model_config *mc = rlhf_model_get_config(m);
    const int32_t T = seq > 0 && seq < mc->seq_len ? seq : mc->seq_len;
    if (mc->vocab_size != rlhf_tokenizer_vocab_size(tok)) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s has vocab %d but the tokenizer has %d", path,
                      (int)mc->vocab_size, (int)rlhf_tokenizer_vocab_size(tok));
        goto done;
    }
    int64_t ck = 0;
    RLHF_TRY_GOTO(st, rlhf_store_checkpoint_add(s, role, reg, 0, 0, 0, &ck), done);
    snprintf(key, sizeof key, "rm:%lld", (long long)ck);
    rlhf_store_stage stage = {0};
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "score", key, &stage, &found), done);
    int64_t after = found ? stage.progress : 0;
    const bool resumed = found && stage.status == RLHF_STAGE_RUNNING;
    sl.after = after;
    RLHF_TRY_GOTO(st, rlhf_store_samples_each(s, collect_sample, &sl), done);
    if (!resumed) {
        char params[4400];
        snprintf(params, sizeof params, "{\"checkpoint_id\": %lld, \"batch\": %d, \"seq\": %d}",
                 (long long)ck, (int)batch, (int)T);
        RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "score", key, params, sl.total, &stage.id),
                      done);
        RLHF_TRY_GOTO(st, rlhf_store_stage_progress(s, stage.id, after), done);
    }
    seqs = calloc((size_t)batch, sizeof *seqs);
    lens = malloc((size_t)batch * sizeof *lens);
    out = malloc((size_t)batch * sizeof *out);
    if (!seqs || !lens || !out) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!com->quiet) {
        printf("score: %s (checkpoint %lld, %s): %lld samples in the run, %lld to score%s\n", path,
               (long long)ck, role, (long long)sl.total, (long long)sl.n,
               resumed ? " (resuming an interrupted run)" : "");
        fflush(stdout);
    }
    cli_progress_start(&prog, "scoring", "samples", sl.n, com);
    double sum = 0, ss = 0, sig = 0, below = 0, t0 = cli_now();
    int64_t truncated = 0;
    for (int64_t i0 = 0; i0 < sl.n; i0 += batch) {
        const int32_t k = (int32_t)(sl.n - i0 < batch ? sl.n - i0 : batch);
        for (int32_t j = 0; j < k; j++) {
            const sample_row *x = &sl.v[i0 + j];
            const prompt_row *p = find_prompt(prompts, x->prompt_id);
            if (!p) {
                st = RLHF_ERR(RLHF_ERR_FORMAT, "sample %lld refers to prompt %lld, which is not "
                              "in the run", (long long)x->id, (long long)x->prompt_id);
                goto done;
            }
            ds_turn u = {DS_ROLE_USER, p->text};
            ds_dialogue d = {.system = p->system, .turns = &u, .n_turns = 1};
            bool cut = false;
            RLHF_TRY_GOTO(st, reward_encode(tok, &d, x->text, T, &seqs[j], &lens[j], &cut), done);
            truncated += cut;
        }
        RLHF_TRY_GOTO(st, reward_model_score(m, (const int32_t *const *)seqs, lens, k, batch, out),
                      done);
        RLHF_TRY_GOTO(st, rlhf_store_begin(s), done);
        for (int32_t j = 0; j < k && st == RLHF_OK; j++)
            st = rlhf_store_score_add(s, sl.v[i0 + j].id, ck, out[j], stage.id, NULL);
        if (st == RLHF_OK) st = rlhf_store_stage_progress(s, stage.id, sl.v[i0 + k - 1].id);
        if (st == RLHF_OK) st = rlhf_store_commit(s);
        if (st != RLHF_OK) {
            rlhf_store_rollback(s);
            goto done;
        }
        for (int32_t j = 0; j < k; j++) {
            sum += out[j];
            ss += (double)out[j] * out[j];
            sig += sigm(out[j]);
            below += sigm(out[j]) < 0.15;
            free(seqs[j]);
            seqs[j] = NULL;
        }
        cli_progress_update(&prog, i0 + k);
    }
    cli_progress_end(&prog);
    const int64_t n = sl.n;
    const double mean = n ? sum / (double)n : 0, sd = n ? sqrt(fmax(ss / (double)n - mean * mean, 0)) : 0;
    char res[512];
    snprintf(res, sizeof res, "{\"scored\": %lld, \"raw_mean\": %.6g, \"raw_sd\": %.6g, "
             "\"sigmoid_mean\": %.6g, \"share_sigmoid_below_0.15\": %.6g}",
             (long long)n, mean, sd, n ? sig / (double)n : 0, n ? below / (double)n : 0);
    const int64_t last = n ? sl.v[n - 1].id : after;
    RLHF_TRY_GOTO(st, rlhf_store_stage_finish(s, stage.id, last, res), done);
    if (!com->quiet) {
        printf("score: scored %lld new samples in %.1f s (%lld responses truncated to %d tokens)",
               (long long)n, cli_now() - t0, (long long)truncated, (int)T);
        if (n)
            printf(": raw mean %.4f sd %.4f; sigmoid mean %.4f; sigmoid < 0.15: %.1f%%", mean, sd,
                   sig / (double)n, 100.0 * below / (double)n);
        printf("\n");
        fflush(stdout);
    }
done:
    cli_progress_end(&prog);
    if (seqs)
        for (int32_t j = 0; j < batch; j++) free(seqs[j]);
    free(seqs);
    free(lens);
    free(out);
    samples_free(&sl);
    rlhf_model_free(m);
    return st;
}

int cmd_score(int argc, char **argv) {
    cli_common com = CLI_COMMON_DEFAULTS;
    const char *model = NULL, *tok_path = NULL, *role_s = "helpfulness";
    int32_t batch = 64, seq = 0;
    cli_opt opts[] = {
        {"", 0, CLI_HEADER, NULL, NULL, NULL, "models", false},
        {"model", 'm', CLI_STR, &model, "RM...", NULL,
         "reward models (HF dirs or .bin); more may follow as arguments (required)", false},
        {"tokenizer", 't', CLI_STR, &tok_path, "T", NULL, "their tokenizer (required)", false},
        {"role", 0, CLI_STR, &role_s, "TRACK", "helpfulness",
         "track of a model not yet registered in the run (helpfulness or safety)", false},
        {"batch", 'b', CLI_POS_INT, &batch, "B", "64", "samples per forward and per transaction",
         false},
        {"seq", 0, CLI_NONNEG_INT, &seq, "T", "the model's seq_len", "tokens per rendering",
         false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {"score", "RUN --model RM [RM...] --tokenizer T [options]",
                     "Scores every sample of the run not yet scored by each reward model (prompt\n"
                     "+ sample rendered with the Llama 2-Chat template), storing the raw score with\n"
                     "the model's checkpoint id; the summary reports raw scores and sigmoids.\n"
                     "Killed and rerun, it goes on where it stopped: each sample is scored once.",
                     opts, 1, 64};
    char *pos[64];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!model || !tok_path) return cli_usage_error(&spec, "--model and --tokenizer are required");
    if (strcmp(role_s, "helpfulness") && strcmp(role_s, "safety"))
        return cli_usage_error(&spec, "--role: helpfulness or safety, got '%s'", role_s);
    char role[32];
    snprintf(role, sizeof role, "reward-%s", role_s);
    rlhf_store *s = NULL;
    rlhf_tokenizer *tok = NULL;
    prompt_list pl = {0};
    const rlhf_backend *be = NULL;
    rlhf_status st = RLHF_OK;
    RLHF_TRY_GOTO(st, cli_setup(&com, &be), fail);
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, 0), fail);
    RLHF_TRY_GOTO(st, rlhf_store_prompts_each(s, collect_prompt, &pl), fail);
    RLHF_TRY_GOTO(st, score_with(s, model, role, tok, &pl, batch, seq, be, &com), fail);
    for (int i = 1; i < n_pos; i++)
        RLHF_TRY_GOTO(st, score_with(s, pos[i], role, tok, &pl, batch, seq, be, &com), fail);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    prompts_free(&pl);
    rlhf_tokenizer_free(tok);
    rlhf_store_close(s);
    return rc;
}
