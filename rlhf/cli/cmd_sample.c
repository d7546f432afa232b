/* cmd_sample.c: `rlhf sample`, K completions per prompt of a run from a policy checkpoint, stored
 * in the run's samples table; plus the helpers the policy commands share (cmd_sft.c, cmd_rs.c):
 * the run's prompts, their Llama 2-Chat rendering, checkpoint registration, mkdir -p.
 *
 * Sampling is resumable: one `sample` stage per (policy, round, K, temperature, top-p, max-new,
 * prompt split, seed); prompts are taken in id order in groups of --batch, and each group's
 * K samples go into the store in one transaction with the stage's progress (prompts done). A run
 * killed at any moment restarts after the last committed group; the samples table's UNIQUE key
 * (prompt, round, checkpoint, idx) guards the rest. Sample k of prompt p is drawn with the seed
 * rs_sample_seed(seed, p, k), so the samples do not depend on --batch or on resumption. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ds.h"
#include "policy.h"
#include "store.h"

/* ---- shared helpers ------------------------------------------------------------------------------ */

rlhf_status cli_checkpoint_register(rlhf_store *s, const char *path, const char *role,
                                    int64_t *id) {
    if (access(path, R_OK) != 0)
        return RLHF_ERR(RLHF_ERR_IO, "%s: cannot read checkpoint: %s", path, strerror(errno));
    return rlhf_store_checkpoint_add(s, role, path, 0, 0, 0, id);
}

typedef struct find_ckpt {
    int64_t id;
    char *path, *role;
} find_ckpt;

static rlhf_status find_ckpt_row(void *ctx, const rlhf_store_checkpoint *x) {
    find_ckpt *f = ctx;
    if (x->id != f->id) return RLHF_OK;
    f->path = strdup(x->path);
    f->role = strdup(x->role);
    if (!f->path || !f->role) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    return RLHF_OK;
}

rlhf_status cli_checkpoint_path(rlhf_store *s, int64_t id, char **path, char **role) {
    find_ckpt f = {id, NULL, NULL};
    rlhf_status st = rlhf_store_checkpoints_each(s, find_ckpt_row, &f);
    if (st == RLHF_OK && !f.path)
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: no checkpoint %" PRId64 " in the run", rlhf_store_dir(s), id);
    if (st != RLHF_OK) {
        free(f.path);
        free(f.role);
        return st;
    }
    *path = f.path;
    if (role) *role = f.role;
    else free(f.role);
    return RLHF_OK;
}

void cli_prompts_free(cli_prompts *p) {
    if (!p) return;
    for (int64_t i = 0; i < p->n; i++) {
        free(p->v[i].text);
        free(p->v[i].system);
    }
    free(p->v);
    memset(p, 0, sizeof *p);
}

typedef struct prompts_ctx {
    cli_prompts *out;
    int split; /* -1 all, else rlhf_split */
} prompts_ctx;

static rlhf_status prompt_row(void *ctx, const rlhf_store_prompt *p) {
    prompts_ctx *c = ctx;
    if (c->split >= 0 && (int)p->split != c->split) return RLHF_OK;
    cli_prompts *o = c->out;
    if (o->n == o->cap) {
        int64_t cap = o->cap ? 2 * o->cap : 256;
        cli_prompt *v = realloc(o->v, (size_t)cap * sizeof *v);
        if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for %lld prompts", (long long)cap);
        o->v = v;
        o->cap = cap;
    }
    cli_prompt *q = &o->v[o->n];
    q->id = p->id;
    q->unsafe = p->unsafe == 1;
    q->split = (int)p->split;
    q->text = strdup(p->text);
    q->system = p->system ? strdup(p->system) : NULL;
    if (!q->text || (p->system && !q->system)) {
        free(q->text);
        free(q->system);
        return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    }
    o->n++;
    return RLHF_OK;
}

rlhf_status cli_prompts_load(rlhf_store *s, const char *which, cli_prompts *out) {
    memset(out, 0, sizeof *out);
    prompts_ctx c = {out, -1};
    if (strcmp(which, "train") == 0) c.split = RLHF_SPLIT_TRAIN;
    else if (strcmp(which, "eval") == 0) c.split = RLHF_SPLIT_EVAL;
    else if (strcmp(which, "all") != 0)
        return RLHF_ERR(RLHF_ERR_ARG, "prompts '%s': expected train, eval or all", which);
    rlhf_status st = rlhf_store_prompts_each(s, prompt_row, &c);
    if (st != RLHF_OK) cli_prompts_free(out);
    return st;
}

const cli_prompt *cli_prompts_find(const cli_prompts *p, int64_t id) {
    int64_t lo = 0, hi = p->n - 1; /* ids ascend (the store walks in id order) */
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (p->v[mid].id == id) return &p->v[mid];
        if (p->v[mid].id < id) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

rlhf_status cli_prompt_render(const rlhf_tokenizer *tok, const cli_prompt *p, int32_t max_tokens,
                              ds_chat_tokens *out) {
    ds_turn turn = {DS_ROLE_USER, p->text};
    ds_dialogue d = {p->system, &turn, 1};
    return ds_chat_render(tok, &d, max_tokens, out);
}

/* ---- the command ---------------------------------------------------------------------------------- */

int cmd_sample(int argc, char **argv) {
    const char *policy = NULL, *tok_path = NULL, *which = "train";
    int32_t k = 4, max_new = 128, round = -1, batch = 8, stop_after = 0, slots = 64;
    float temperature = 1.0f, top_p = 1.0f;
    uint64_t seed = 1;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"policy", 'm', CLI_STR, &policy, "CKPT", NULL,
         "policy checkpoint (llama2.c .bin or HF dir); registered in the run if new; required",
         false},
        {"tokenizer", 'z', CLI_STR, &tok_path, "T", NULL, "tokenizer (.model or .bin); required",
         false},
        {"round", 'r', CLI_NONNEG_INT, &round, "R", NULL, "rejection-sampling round; required",
         false},
        {"k", 'k', CLI_POS_INT, &k, "K", "4", "samples per prompt", false},
        {"temperature", 't', CLI_NONNEG_FLOAT, &temperature, "F", "1.0", "0 = greedy", false},
        {"top-p", 'p', CLI_FLOAT, &top_p, "P", "1.0 = off", "nucleus sampling in (0, 1]", false},
        {"prompts", 0, CLI_STR, &which, "SPLIT", "train", "train, eval or all", false},
        {"max-new", 'n', CLI_POS_INT, &max_new, "N", "128", "new tokens per sample at most", false},
        {"seed", 's', CLI_U64, &seed, "S", "1", "run seed; sample k of prompt p uses a seed "
         "derived from (S, p, k)", false},
        {"batch", 'b', CLI_POS_INT, &batch, "N", "8", "prompts per stored group (transaction)",
         false},
        {"slots", 0, CLI_POS_INT, &slots, "N", "64", "sequences decoded together at most", false},
        {"stop-after", 0, CLI_NONNEG_INT, &stop_after, "N", "0 = off",
         "stop (as if killed) after N groups in this process (tests)", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "sample", "RUN --policy CKPT --tokenizer T --round R [options]",
        "Draws K completions for every prompt of the run (rendered with the Llama 2-Chat template,\n"
        "no answer) and stores each with its checkpoint, seed, temperature, tokens, log-probs,\n"
        "text and finish reason. Rerunning the same command resumes; the same seed gives the same\n"
        "samples whatever --batch.",
        opts, 1, 1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!policy) return cli_usage_error(&spec, "--policy is required");
    if (!tok_path) return cli_usage_error(&spec, "--tokenizer is required");
    if (round < 0) return cli_usage_error(&spec, "--round is required");
    if (!(top_p > 0.0f && top_p <= 1.0f)) return cli_usage_error(&spec, "--top-p must be in (0, 1]");
    const rlhf_backend *be = NULL;
    rlhf_status st = cli_setup(&com, &be);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);

    rlhf_store *s = NULL;
    rlhf_tokenizer *tok = NULL;
    rlhf_model *m = NULL;
    rlhf_sampler *smp = NULL;
    cli_prompts prompts = {0};
    rlhf_sample_seq *seqs = NULL;
    ds_chat_tokens *rend = NULL;
    int32_t *outbuf = NULL;
    float *lpbuf = NULL;
    int64_t stage = 0, ckpt_id = 0;
    char key[512], params[1024];
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, policy, "policy", &ckpt_id), fail);
    RLHF_TRY_GOTO(st, cli_prompts_load(s, which, &prompts), fail);
    snprintf(key, sizeof key,
             "policy=%" PRId64 " round=%d k=%d temperature=%.9g top_p=%.9g max_new=%d prompts=%s "
             "seed=%" PRIu64,
             ckpt_id, (int)round, (int)k, (double)temperature, (double)top_p, (int)max_new, which,
             seed);
    snprintf(params, sizeof params,
             "{\"policy\": %" PRId64 ", \"round\": %d, \"k\": %d, \"temperature\": %.9g, "
             "\"top_p\": %.9g, \"max_new\": %d, \"prompts\": \"%s\", \"seed\": %" PRIu64 "}",
             ckpt_id, (int)round, (int)k, (double)temperature, (double)top_p, (int)max_new, which,
             seed);
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "sample", key, &sg, &found), fail);
    if (found && sg.status == RLHF_STAGE_DONE) {
        if (!com.quiet)
            printf("sample: round %d with checkpoint %" PRId64 " already done (stage %" PRId64
                   ", %" PRId64 " prompts); nothing to do\n", (int)round, ckpt_id, sg.id,
                   sg.progress);
        rc = CLI_EXIT_OK;
        goto done;
    }
    int64_t done_prompts = 0;
    if (found) {
        stage = sg.id;
        done_prompts = sg.progress;
    } else {
        RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "sample", key, params, prompts.n, &stage), fail);
    }

    RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, 0), fail);
    RLHF_TRY_GOTO(st, rlhf_model_load(&m, policy, be, false, 1, 0), fail);
    const rlhf_model_config *c = rlhf_model_get_config(m);
    RLHF_TRY_GOTO(st, cli_check_vocab(policy, c->vocab_size, tok_path, tok), fail);
    const int32_t nseq = batch * k;
    RLHF_TRY_GOTO(st, rlhf_sampler_init(&smp, m, nseq < slots ? nseq : slots), fail);
    seqs = calloc((size_t)nseq, sizeof *seqs);
    rend = calloc((size_t)batch, sizeof *rend);
    outbuf = malloc((size_t)nseq * (size_t)max_new * sizeof *outbuf);
    lpbuf = malloc((size_t)nseq * (size_t)max_new * sizeof *lpbuf);
    if (!seqs || !rend || !outbuf || !lpbuf) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for %d sequences", (int)nseq);
        goto fail;
    }
    rlhf_sample_config sc = {temperature, 0, top_p, max_new, rlhf_tokenizer_eos(tok)};
    if (!com.quiet) {
        printf("sample: %s %" PRId64 " %s prompts x %d, round %d, checkpoint %" PRId64
               " (%s), T %.3g top-p %.3g, max-new %d\n",
               done_prompts ? "resuming" : "new stage,", prompts.n - done_prompts, which, (int)k,
               (int)round, ckpt_id, policy, (double)temperature, (double)top_p, (int)max_new);
        fflush(stdout);
    }
    cli_progress prog;
    cli_progress_start(&prog, "sample", "prompts", prompts.n, &com);
    prog.base = done_prompts;
    int64_t n_samples = 0, n_skipped = 0, groups = 0;
    double t0 = cli_now();
    int64_t gen_tokens = 0;
    while (done_prompts < prompts.n) {
        if (stop_after > 0 && groups >= stop_after) {
            cli_progress_end(&prog);
            if (!com.quiet) printf("stopped after %d groups (--stop-after)\n", (int)groups);
            rc = CLI_EXIT_OK;
            goto done;
        }
        const int64_t g0 = done_prompts;
        const int32_t np = (int32_t)(prompts.n - g0 < batch ? prompts.n - g0 : batch);
        int32_t n = 0;
        for (int32_t i = 0; i < np; i++) {
            const cli_prompt *p = &prompts.v[g0 + i];
            ds_chat_free(&rend[i]);
            rlhf_status r = cli_prompt_render(tok, p, c->seq_len - 1, &rend[i]);
            if (r == RLHF_ERR_ARG) { /* longer than the context: skipped, counted */
                rlhf_error_clear();
                n_skipped++;
                continue;
            }
            if (r != RLHF_OK) {
                st = r;
                goto fail;
            }
            for (int32_t j = 0; j < k; j++, n++) {
                seqs[n].prompt = rend[i].ids;
                seqs[n].n_prompt = rend[i].n;
                seqs[n].seed = rs_sample_seed(seed, p->id, j);
                seqs[n].out = outbuf + (size_t)n * max_new;
                seqs[n].logp = lpbuf + (size_t)n * max_new;
            }
        }
        if (n > 0) RLHF_TRY_GOTO(st, rlhf_sampler_run(smp, &sc, seqs, n, NULL, NULL), fail);
        RLHF_TRY_GOTO(st, rlhf_store_begin(s), fail);
        int32_t q = 0;
        for (int32_t i = 0; i < np; i++) {
            if (rend[i].n == 0) continue;
            const cli_prompt *p = &prompts.v[g0 + i];
            for (int32_t j = 0; j < k; j++, q++) {
                const rlhf_sample_seq *x = &seqs[q];
                int32_t nt = x->n_out;
                if (x->finish == RLHF_FINISH_EOS && nt > 0) nt--; /* text without the EOS */
                char *text = NULL;
                st = rlhf_tokenizer_decode(tok, x->out, nt, &text);
                if (st == RLHF_OK && !ds_utf8_valid(text, strlen(text), NULL)) {
                    /* a llama2.c tokenizer decodes a lone <0xXX> piece to its raw byte; the
                     * store holds UTF-8, so invalid bytes become U+FFFD (as SentencePiece) */
                    char *u = ds_utf8_sanitize(text, strlen(text));
                    free(text);
                    text = u;
                    if (!u) st = RLHF_ERR(RLHF_ERR_NOMEM, "sample: out of memory");
                }
                if (st == RLHF_OK) {
                    rlhf_store_sample row = {
                        .prompt_id = p->id, .checkpoint_id = ckpt_id, .stage_id = stage,
                        .round = round, .idx = j, .seed = x->seed, .temperature = temperature,
                        .tokens = x->out, .logprobs = x->logp, .n_tokens = x->n_out,
                        .text = text, .finish = x->finish == RLHF_FINISH_EOS ? "eos" : "length"};
                    st = rlhf_store_sample_add(s, &row, NULL);
                }
                free(text);
                if (st != RLHF_OK) {
                    rlhf_store_rollback(s);
                    goto fail;
                }
                gen_tokens += x->n_out;
                n_samples++;
            }
        }
        done_prompts = g0 + np;
        st = rlhf_store_stage_progress(s, stage, done_prompts);
        if (st == RLHF_OK) st = rlhf_store_commit(s);
        if (st != RLHF_OK) {
            rlhf_store_rollback(s);
            goto fail;
        }
        for (int32_t i = 0; i < np; i++) ds_chat_free(&rend[i]);
        groups++;
        cli_progress_update(&prog, done_prompts);
    }
    cli_progress_end(&prog);
    char result[256];
    snprintf(result, sizeof result, "{\"samples_this_process\": %" PRId64 ", \"skipped_prompts\": %"
             PRId64 "}", n_samples, n_skipped);
    RLHF_TRY_GOTO(st, rlhf_store_stage_finish(s, stage, prompts.n, result), fail);
    if (!com.quiet) {
        double dt = cli_now() - t0;
        printf("sample: stored %" PRId64 " samples (%" PRId64 " prompts too long, skipped); %.0f "
               "tokens/s\n", n_samples, n_skipped, dt > 0 ? (double)gen_tokens / dt : 0.0);
    }
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    if (rend)
        for (int32_t i = 0; i < batch; i++) ds_chat_free(&rend[i]);
    free(rend);
    free(seqs);
    free(outbuf);
    free(lpbuf);
    rlhf_sampler_free(smp);
    rlhf_model_free(m);
    rlhf_tokenizer_free(tok);
    cli_prompts_free(&prompts);
    rlhf_store_close(s);
    return rc;
}
