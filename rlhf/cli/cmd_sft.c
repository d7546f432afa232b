/* cmd_sft.c: `rlhf sft`, supervised fine-tuning of a policy on a run's dialogues or on
 * rejection-sampling selections (prompt + the selected sample), Llama 2-Chat style:
 * the Llama 2-Chat template, loss only on assistant tokens, examples packed several to a row with
 * attention kept inside each example (rlhf_model_set_segments), cosine schedule from 2e-5, weight
 * decay 0.1, 2 epochs.
 *
 * One `sft` stage per (init checkpoint, data, options, data hash). Files:
 *   RUN/ckpt/<role>-<stage>.state   the training state (weights, Adam moments, step, schedule),
 *                                   saved every --ckpt-every steps, on SIGINT/SIGTERM and at the end
 *   RUN/ckpt/<role>-<stage>/        the fine-tuned weights, a Hugging Face directory, registered in
 *                                   `checkpoints` (role sft or policy, parent = the init checkpoint)
 * Metrics sft/loss, sft/lr, sft/grad_norm, sft/targets per step in the store. Rerunning the same
 * command resumes from the state file bit-exactly: the plan (shuffled epochs, packed rows) is a
 * pure function of the data and the seed, and the state holds the step. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ds.h"
#include "policy.h"
#include "store.h"

/* ---- data ---------------------------------------------------------------------------------------- */

typedef struct load_ctx {
    sft_dataset *d;
    const rlhf_tokenizer *tok;
    int32_t max_ids;
    int split; /* -1 all */
    int64_t seen, bad;
    const char *db;
    const char *source; /* only dialogues of this source (NULL: all) */
} load_ctx;

/* Turns JSON text [{"role", "text"}] into ds_turns (texts point into *root; json_decref it). */
static rlhf_status parse_turns(const char *db, int64_t id, const char *json, json_t **root,
                               ds_turn **turns, int32_t *n) {
    json_error_t err;
    *root = json_loads(json, 0, &err);
    *turns = NULL;
    if (!*root || !json_is_array(*root)) {
        json_decref(*root);
        *root = NULL;
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: dialogue %" PRId64 ": turns are not a JSON array",
                        db, id);
    }
    size_t k = json_array_size(*root);
    *turns = calloc(k ? k : 1, sizeof **turns);
    if (!*turns) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < k; i++) {
        json_t *t = json_array_get(*root, i);
        const char *role = json_string_value(json_object_get(t, "role"));
        const char *text = json_string_value(json_object_get(t, "text"));
        if (!role || !text || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
            return RLHF_ERR(RLHF_ERR_FORMAT, "%s: dialogue %" PRId64 ": turn %zu has no user/"
                            "assistant role or text", db, id, i);
        (*turns)[i].role = strcmp(role, "user") == 0 ? DS_ROLE_USER : DS_ROLE_ASSISTANT;
        (*turns)[i].text = text;
    }
    *n = (int32_t)k;
    return RLHF_OK;
}

static rlhf_status dialogue_row(void *ctx, const rlhf_store_dialogue *r) {
    load_ctx *c = ctx;
    if (c->split >= 0 && (int)r->split != c->split) return RLHF_OK;
    if (c->source && (!r->source || strcmp(r->source, c->source) != 0)) return RLHF_OK;
    c->seen++;
    json_t *root = NULL;
    ds_turn *turns = NULL;
    int32_t n = 0;
    rlhf_status st = parse_turns(c->db, r->id, r->turns_json, &root, &turns, &n);
    if (st == RLHF_OK) {
        ds_dialogue d = {r->system, turns, n};
        ds_chat_tokens ct = {0};
        st = ds_chat_render(c->tok, &d, 0, &ct);
        if (st == RLHF_OK)
            st = sft_dataset_add_chat(c->d, &ct, r->loss_mask, r->n_mask, c->max_ids, NULL);
        ds_chat_free(&ct);
    }
    free(turns);
    json_decref(root);
    return st;
}

typedef struct sel_ctx {
    int32_t round;
    int64_t *sample_ids, *prompt_ids; /* selections of the round */
    int64_t n, cap;
} sel_ctx;

static rlhf_status selection_row(void *ctx, const rlhf_store_selection *x) {
    sel_ctx *c = ctx;
    if (x->round != c->round) return RLHF_OK;
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 256;
        int64_t *a = realloc(c->sample_ids, (size_t)cap * sizeof *a);
        if (a) c->sample_ids = a;
        int64_t *b = realloc(c->prompt_ids, (size_t)cap * sizeof *b);
        if (b) c->prompt_ids = b;
        if (!a || !b) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        c->cap = cap;
    }
    c->sample_ids[c->n] = x->sample_id;
    c->prompt_ids[c->n++] = x->prompt_id;
    return RLHF_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct smp_ctx {
    sel_ctx *sel;
    int64_t *sorted; /* selected sample ids, sorted */
    const cli_prompts *prompts;
    sft_dataset *d;
    const rlhf_tokenizer *tok;
    int32_t max_ids;
    int64_t found;
} smp_ctx;

static rlhf_status sample_row(void *ctx, const rlhf_store_sample *x) {
    smp_ctx *c = ctx;
    if (!bsearch(&x->id, c->sorted, (size_t)c->sel->n, sizeof *c->sorted, cmp_i64)) return RLHF_OK;
    const cli_prompt *p = cli_prompts_find(c->prompts, x->prompt_id);
    if (!p) return RLHF_ERR(RLHF_ERR_FORMAT, "sample %" PRId64 ": prompt %" PRId64 " not found",
                            x->id, x->prompt_id);
    ds_chat_tokens ct = {0};
    rlhf_status st = cli_prompt_render(c->tok, p, 0, &ct);
    if (st == RLHF_OK)
        st = sft_dataset_add_prompt_answer(c->d, ct.ids, ct.n, x->tokens, x->n_tokens, c->max_ids,
                                           NULL);
    ds_chat_free(&ct);
    c->found++;
    return st;
}

typedef struct round_ctx {
    int32_t max_round;
} round_ctx;
static rlhf_status max_round_row(void *ctx, const rlhf_store_selection *x) {
    round_ctx *c = ctx;
    if (x->round > c->max_round) c->max_round = x->round;
    return RLHF_OK;
}

/* Loads the SFT examples: dialogues (split) or the selections of round (-1: the latest). */
static rlhf_status load_data(rlhf_store *s, const rlhf_tokenizer *tok, const char *data,
                             const char *split, const char *source, int32_t *round,
                             int32_t max_ids, sft_dataset *d, int64_t *n_records) {
    char db[4200];
    snprintf(db, sizeof db, "%s/%s", rlhf_store_dir(s), RLHF_STORE_DB_NAME);
    if (strcmp(data, "dialogues") == 0) {
        load_ctx c = {d, tok, max_ids, -1, 0, 0, db, source};
        if (strcmp(split, "train") == 0) c.split = RLHF_SPLIT_TRAIN;
        else if (strcmp(split, "eval") == 0) c.split = RLHF_SPLIT_EVAL;
        RLHF_TRY(rlhf_store_dialogues_each(s, dialogue_row, &c));
        *n_records = c.seen;
        return RLHF_OK;
    }
    if (*round < 0) {
        round_ctx rc = {-1};
        RLHF_TRY(rlhf_store_selections_each(s, max_round_row, &rc));
        if (rc.max_round < 0) return RLHF_ERR(RLHF_ERR_ARG, "%s: no selections to train on", db);
        *round = rc.max_round;
    }
    sel_ctx sel = {*round, NULL, NULL, 0, 0};
    cli_prompts prompts = {0};
    int64_t *sorted = NULL;
    rlhf_status st = rlhf_store_selections_each(s, selection_row, &sel);
    if (st == RLHF_OK) st = cli_prompts_load(s, "all", &prompts);
    if (st == RLHF_OK) {
        sorted = malloc((sel.n ? (size_t)sel.n : 1) * sizeof *sorted);
        if (!sorted) st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    }
    if (st == RLHF_OK) {
        if (sel.n) memcpy(sorted, sel.sample_ids, (size_t)sel.n * sizeof *sorted);
        qsort(sorted, (size_t)sel.n, sizeof *sorted, cmp_i64);
        smp_ctx c = {&sel, sorted, &prompts, d, tok, max_ids, 0};
        st = rlhf_store_samples_each(s, sample_row, &c);
        *n_records = sel.n;
    }
    free(sorted);
    free(sel.sample_ids);
    free(sel.prompt_ids);
    cli_prompts_free(&prompts);
    return st;
}

/* FNV-1a over the examples (ids and learn flags): the data's identity in the stage key. */
static uint64_t data_hash(const sft_dataset *d) {
    uint64_t h = 1469598103934665603ULL;
    for (int64_t i = 0; i < d->n; i++) {
        const sft_example *e = &d->ex[i];
        for (int32_t j = 0; j < e->n; j++) {
            uint32_t v = (uint32_t)e->ids[j] * 2u + e->learn[j];
            for (int b = 0; b < 4; b++) {
                h ^= (v >> (8 * b)) & 0xff;
                h *= 1099511628211ULL;
            }
        }
        h ^= 0xff;
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- the command ---- */

int cmd_sft(int argc, char **argv) {
    const char *init = NULL, *tok_path = NULL, *data = "dialogues", *split = "train",
               *role = NULL, *source = NULL;
    int32_t round = -1, batch = 8, micro = 0, seq = 0, ckpt_every = 50, stop_after = 0;
    sft_config cfg = sft_config_default();
    float clip = 1.0f;
    uint64_t seed = 1;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"init", 'm', CLI_STR, &init, "CKPT", NULL,
         "checkpoint to start from (llama2.c .bin or HF dir); required", false},
        {"tokenizer", 'z', CLI_STR, &tok_path, "T", NULL, "tokenizer (.model or .bin); required",
         false},
        {"data", 'd', CLI_STR, &data, "KIND", "dialogues",
         "dialogues (the run's dialogues) or selections (prompt + selected sample)", false},
        {"split", 0, CLI_STR, &split, "SPLIT", "train", "dialogues of split train, eval or all",
         false},
        {"source", 0, CLI_STR, &source, "NAME", "all",
         "only the dialogues of this source (an imported file's name, or gatt)", false},
        {"round", 'r', CLI_INT, &round, "R", "latest", "selections of round R (--data selections)",
         false},
        {"role", 0, CLI_STR, &role, "ROLE", "sft (dialogues) / policy (selections)",
         "role of the registered checkpoint", false},
        {"lr", 0, CLI_NONNEG_FLOAT, &cfg.lr, "F", "2e-5", "peak learning rate (cosine)", false},
        {"epochs", 'e', CLI_POS_INT, &cfg.epochs, "N", "2", "passes over the data", false},
        {"weight-decay", 0, CLI_NONNEG_FLOAT, &cfg.weight_decay, "F", "0.1", "AdamW weight decay",
         false},
        {"final-lr-frac", 0, CLI_NONNEG_FLOAT, &cfg.final_frac, "F", "0.1",
         "the cosine ends at this fraction of the peak", false},
        {"warmup", 0, CLI_NONNEG_INT, &cfg.warmup, "N", "0", "linear warm-up steps", false},
        {"clip", 0, CLI_NONNEG_FLOAT, &clip, "F", "1.0", "gradient-norm clip (0: none)", false},
        {"batch", 'b', CLI_POS_INT, &batch, "N", "8", "packed rows per optimizer step", false},
        {"micro", 0, CLI_NONNEG_INT, &micro, "N", "0 = batch", "rows per forward (accumulation)",
         false},
        {"seq", 0, CLI_NONNEG_INT, &seq, "T", "0 = the model's", "positions per packed row", false},
        {"seed", 's', CLI_U64, &seed, "S", "1", "seed of the data order", false},
        {"ckpt-every", 0, CLI_NONNEG_INT, &ckpt_every, "N", "50", "save the state every N steps",
         false},
        {"stop-after", 0, CLI_NONNEG_INT, &stop_after, "N", "0 = off",
         "save and stop after step N (resume by running the same command)", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "sft", "RUN --init CKPT --tokenizer T [options]",
        "Fine-tunes the checkpoint on the run's dialogues (Llama 2-Chat template, loss on the\n"
        "assistant tokens only) or on rejection-sampling selections, packing examples into rows\n"
        "with attention kept inside each example. Registers RUN/ckpt/<role>-<stage> (HF dir).\n"
        "Rerunning the same command resumes exactly.",
        opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!init) return cli_usage_error(&spec, "--init is required");
    if (!tok_path) return cli_usage_error(&spec, "--tokenizer is required");
    const bool sel = strcmp(data, "selections") == 0;
    if (!sel && strcmp(data, "dialogues") != 0)
        return cli_usage_error(&spec, "--data must be dialogues or selections");
    if (strcmp(split, "train") && strcmp(split, "eval") && strcmp(split, "all"))
        return cli_usage_error(&spec, "--split must be train, eval or all");
    if (!role) role = sel ? "policy" : "sft";
    if (micro == 0 || micro > batch) micro = batch;
    const rlhf_backend *be = NULL;
    rlhf_status st = cli_setup(&com, &be);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);

    rlhf_store *s = NULL;
    rlhf_tokenizer *tok = NULL;
    rlhf_model *m = NULL;
    float *params = NULL;
    sft_dataset d = {0};
    sft_pack plan = {0};
    cli_stop stop = {0};
    int64_t stage = 0, init_id = 0, n_records = 0;
    char key[1024], prm[1024], state_path[4400], out_dir[4400];
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, init, "base", &init_id), fail);
    rlhf_model_config c;
    RLHF_TRY_GOTO(st, rlhf_checkpoint_read(init, &c, &params), fail);
    RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, 0), fail);
    RLHF_TRY_GOTO(st, cli_check_vocab(init, c.vocab_size, tok_path, tok), fail);
    const int32_t T = seq > 0 && seq < c.seq_len ? seq : c.seq_len;
    RLHF_TRY_GOTO(st, load_data(s, tok, data, split, source, &round, T + 1, &d, &n_records), fail);
    if (d.n == 0) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: no %s%s%s with assistant tokens to train on", pos[0], data,
                      source ? " of source " : "", source ? source : "");
        goto fail;
    }
    const uint64_t h = data_hash(&d);
    snprintf(key, sizeof key,
             "init=%" PRId64 " data=%s split=%s round=%d role=%s lr=%.9g epochs=%d wd=%.9g "
             "final=%.9g warmup=%d clip=%.9g batch=%d seq=%d seed=%" PRIu64 " hash=%016" PRIx64,
             init_id, data, sel ? "-" : split, sel ? (int)round : -1, role, (double)cfg.lr,
             (int)cfg.epochs, (double)cfg.weight_decay, (double)cfg.final_frac, (int)cfg.warmup,
             (double)clip, (int)batch, (int)T, seed, h);
    RLHF_TRY_GOTO(st, sft_plan_build(&d, cfg.epochs, T, seed, &plan), fail);
    const int64_t steps = (plan.rows + batch - 1) / batch;
    snprintf(prm, sizeof prm,
             "{\"init\": %" PRId64 ", \"data\": \"%s\", \"round\": %d, \"role\": \"%s\", \"lr\": "
             "%.9g, \"epochs\": %d, \"weight_decay\": %.9g, \"batch\": %d, \"seq\": %d, \"seed\": "
             "%" PRIu64 ", \"examples\": %" PRId64 ", \"rows\": %d, \"steps\": %" PRId64 "}",
             init_id, data, sel ? (int)round : -1, role, (double)cfg.lr, (int)cfg.epochs,
             (double)cfg.weight_decay, (int)batch, (int)T, seed, d.n, (int)plan.rows, steps);
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "sft", key, &sg, &found), fail);
    if (found && sg.status == RLHF_STAGE_DONE) {
        if (!com.quiet)
            printf("sft: stage %" PRId64 " with these data and options is already done; nothing "
                   "to train\n", sg.id);
        rc = CLI_EXIT_OK;
        goto done;
    }
    if (found) stage = sg.id;
    else RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "sft", key, prm, steps, &stage), fail);
    snprintf(state_path, sizeof state_path, "%s/ckpt/%s-%" PRId64 ".state", pos[0], role, stage);
    snprintf(out_dir, sizeof out_dir, "%s/ckpt/%s-%" PRId64, pos[0], role, stage);
    RLHF_TRY_GOTO(st, rlhf_mkdirs(pos[0]), fail);

    c.trainable = true;
    RLHF_TRY_GOTO(st, rlhf_model_init(&m, &c, be, micro, T), fail);
    rlhf_train_extra x;
    memset(&x, 0, sizeof x);
    const bool resume = access(state_path, F_OK) == 0;
    if (resume) {
        RLHF_TRY_GOTO(st, rlhf_train_state_load(m, &x, state_path), fail);
    } else {
        RLHF_TRY_GOTO(st, rlhf_model_set_params(m, params), fail);
        x.schedule.peak_lr = cfg.lr;
        x.schedule.warmup_steps = cfg.warmup;
        x.schedule.total_steps = steps;
        x.schedule.final_frac = cfg.final_frac;
        x.adamw = rlhf_adamw_default();
        x.adamw.weight_decay = cfg.weight_decay;
        x.adamw.clip_norm = clip;
        rlhf_rng_seed(&x.rng, seed, 0);
    }
    rlhf_free(params);
    params = NULL;
    const int64_t step0 = rlhf_model_step(m);
    int64_t n_targets = 0;
    for (int64_t i = 0; i < d.n; i++) n_targets += sft_example_targets(&d.ex[i]);
    if (!com.quiet) {
        printf("sft: %s stage %" PRId64 "%s; %s: %" PRId64 " records -> %" PRId64
               " examples (%" PRId64 " truncated to %d ids), %" PRId64 " learned tokens\n",
               resume ? "resuming" : "new", stage, resume ? "" : "", data, n_records, d.n,
               d.n_truncated, (int)(T + 1), n_targets);
        printf("sft: %d epochs packed into %d rows of %d; %" PRId64 " steps of %d rows (micro %d); "
               "lr %g cosine to %g, wd %g; from %s (checkpoint %" PRId64 ")%s\n",
               (int)cfg.epochs, (int)plan.rows, (int)T, steps, (int)batch, (int)micro,
               (double)cfg.lr, (double)(cfg.lr * cfg.final_frac), (double)cfg.weight_decay, init,
               init_id, step0 ? "" : "");
        if (step0) printf("sft: at step %" PRId64 "/%" PRId64 "\n", step0, steps);
        fflush(stdout);
    }

    cli_stop_catch(&stop);

    cli_progress prog;
    cli_progress_start(&prog, "sft", "steps", steps, &com);
    prog.base = step0;
    int64_t step = step0;
    double first_loss = NAN, last_loss = NAN;
    bool stopped = false;
    while (step < steps) {
        if (cli_stop_signal()) break;
        if (stop_after > 0 && step >= stop_after) {
            stopped = true;
            break;
        }
        const int32_t r0 = (int32_t)(step * batch);
        const int32_t nb = plan.rows - r0 < batch ? plan.rows - r0 : batch;
        int64_t tgt_step = 0;
        for (int64_t i = (int64_t)r0 * T; i < (int64_t)(r0 + nb) * T; i++)
            tgt_step += plan.mask[i] != 0.0f;
        RLHF_TRY_GOTO(st, rlhf_model_zero_grad(m), fail);
        double loss_sum = 0;
        for (int32_t r = r0; r < r0 + nb; r += micro) {
            const int32_t mb = r0 + nb - r < micro ? r0 + nb - r : micro;
            int64_t tgt = 0;
            for (int64_t i = (int64_t)r * T; i < (int64_t)(r + mb) * T; i++)
                tgt += plan.mask[i] != 0.0f;
            if (tgt == 0) continue;
            float l = 0;
            RLHF_TRY_GOTO(st, sft_step(m, &plan, r, mb, (float)tgt / (float)tgt_step, &l, NULL),
                          fail);
            loss_sum += (double)l * (double)tgt;
        }
        const double loss = tgt_step ? loss_sum / (double)tgt_step : 0.0;
        if (!isfinite(loss)) {
            st = RLHF_ERR(RLHF_ERR_ARG, "sft diverged at step %" PRId64 " (loss %g)", step + 1, loss);
            goto fail;
        }
        const float lr = rlhf_schedule_lr(&x.schedule, step);
        float gnorm = 0;
        RLHF_TRY_GOTO(st, rlhf_model_adamw_step(m, &x.adamw, lr, &gnorm), fail);
        step = rlhf_model_step(m);
        x.data_pos = step;
        if (isnan(first_loss)) first_loss = loss;
        last_loss = loss;
        RLHF_TRY_GOTO(st, rlhf_store_begin(s), fail);
        st = rlhf_store_metric_set(s, stage, step, "sft/loss", loss);
        if (st == RLHF_OK) st = rlhf_store_metric_set(s, stage, step, "sft/lr", lr);
        if (st == RLHF_OK) st = rlhf_store_metric_set(s, stage, step, "sft/grad_norm", gnorm);
        if (st == RLHF_OK) st = rlhf_store_metric_set(s, stage, step, "sft/targets", (double)tgt_step);
        if (st == RLHF_OK) st = rlhf_store_commit(s);
        if (st != RLHF_OK) {
            rlhf_store_rollback(s);
            goto fail;
        }
        if (ckpt_every > 0 && step % ckpt_every == 0 && step < steps) {
            RLHF_TRY_GOTO(st, rlhf_train_state_save(m, &x, state_path), fail);
            RLHF_TRY_GOTO(st, rlhf_store_stage_progress(s, stage, step), fail);
        }
        cli_progress_note(&prog, step, false, "loss %.4f lr %.2e", loss, (double)lr);
    }
    cli_progress_end(&prog);
    RLHF_TRY_GOTO(st, rlhf_train_state_save(m, &x, state_path), fail);
    RLHF_TRY_GOTO(st, rlhf_store_stage_progress(s, stage, step), fail);
    if (cli_stop_signal() || stopped) {
        if (!com.quiet)
            printf("sft: %s at step %" PRId64 "/%" PRId64 "; state saved in %s; run the same "
                   "command to resume\n", cli_stop_signal() ? "interrupted" : "stopped (--stop-after)",
                   step, steps, state_path);
        rc = cli_stop_signal() ? 128 + cli_stop_signal() : CLI_EXIT_OK;
        goto done;
    }
    /* the fine-tuned weights, registered */
    RLHF_TRY_GOTO(st, rlhf_alloc((void **)&params, (size_t)rlhf_model_num_params(m) * sizeof(float)),
                  fail);
    RLHF_TRY_GOTO(st, rlhf_model_get_params(m, params), fail);
    rlhf_model_config oc = c;
    oc.trainable = false;
    RLHF_TRY_GOTO(st, rlhf_hf_write(out_dir, &oc, params, RLHF_DTYPE_F32, 0, true), fail);
    int64_t ck = 0;
    RLHF_TRY_GOTO(st, rlhf_store_checkpoint_add(s, role, out_dir, init_id, step, stage, &ck), fail);
    json_t *res = json_pack("{s:I, s:s, s:I}", "checkpoint", (json_int_t)ck, "path", out_dir,
                            "steps", (json_int_t)step);
    char *result = res ? json_dumps(res, JSON_COMPACT) : NULL;
    json_decref(res);
    if (!result) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    st = rlhf_store_stage_finish(s, stage, step, result);
    free(result);
    if (st != RLHF_OK) goto fail;
    unlink(state_path); /* the run is complete: the Adam moments are no longer needed */
    if (!com.quiet)
        printf("sft: done, %" PRId64 " steps; loss %.4f (first step in this process %.4f); "
               "checkpoint %" PRId64 " (%s) at %s\n", step, last_loss, first_loss, ck, role,
               out_dir);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    cli_stop_release(&stop);
    rlhf_free(params);
    sft_pack_free(&plan);
    sft_dataset_free(&d);
    rlhf_model_free(m);
    rlhf_tokenizer_free(tok);
    rlhf_store_close(s);
    return rc;
}
