/* cmd_generate.c: `rlhf generate`, text generation from a checkpoint (llama2.c .bin or HF dir).
 *
 * Follows llama2.c's run.c so that its published outputs can be reproduced: the prompt is encoded
 * with BOS, --steps counts the positions run through the model (BOS and prompt included), the
 * sequence stops when the model samples BOS (id 1), which is not printed, and a piece that follows
 * BOS drops its leading space. Generation itself is rlhf_sampler_run (batched when --n > 1). */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Writes a piece as run.c's safe_printf does: a lone byte that is neither printable nor white
 * space (a raw <0xXX> control byte) is dropped. */
static void put_piece(FILE *f, const char *piece, size_t len) {
    if (!piece || len == 0) return;
    if (len == 1) {
        unsigned char b = (unsigned char)piece[0];
        if (!(isprint(b) || isspace(b))) return;
    }
    fwrite(piece, 1, len, f);
}

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *tok_path = NULL, *prompt = NULL;
    float temperature = 1.0f, top_p = 1.0f;
    int32_t top_k = 0, steps = 256, n = 1, batch = 0, stop = 1;
    uint64_t seed = 0;
    bool ids = false;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"model", 'm', CLI_STR, &model_path, "M", NULL, "checkpoint: llama2.c .bin (v0 or v1) or Hugging Face directory; required",
         false},
        {"tokenizer", 'z', CLI_STR, &tok_path, "T", NULL,
         "tokenizer.model or llama2.c tokenizer.bin; needed unless --ids and no --prompt", false},
        {"prompt", 'i', CLI_STR, &prompt, "TEXT", "empty: start from BOS alone",
         "text to continue (encoded with BOS)", false},
        {"temperature", 't', CLI_NONNEG_FLOAT, &temperature, "F", "1.0",
         "softmax temperature; 0 = greedy (argmax)", false},
        {"top-p", 'p', CLI_FLOAT, &top_p, "P", "1.0 = off",
         "nucleus sampling: keep the smallest set of tokens with probability >= P (in (0,1]); "
         "llama2.c's run uses 0.9",
         false},
        {"top-k", 'k', CLI_NONNEG_INT, &top_k, "K", "0 = off", "sample among the K most likely tokens",
         false},
        {"steps", 'n', CLI_NONNEG_INT, &steps, "N", "256",
         "positions run through the model, BOS and prompt included, as llama2.c's -n counts "
         "(0 = seq_len; clamped to seq_len): at most N - (prompt tokens) new tokens",
         false},
        {"seed", 's', CLI_U64, &seed, "S", "from the clock; printed with -v",
         "random seed; sequence i uses seed + i", false},
        {"ids", 0, CLI_FLAG, &ids, NULL, NULL,
         "print the generated token ids (prompt excluded, stop token excluded) space-separated "
         "instead of text",
         false},
        {"n", 0, CLI_POS_INT, &n, "N", "1", "number of sequences, one line each", false},
        {"batch", 0, CLI_NONNEG_INT, &batch, "B", "0 = min(n, 32)",
         "sequences decoded together (KV-cache slots)", false},
        {"stop", 0, CLI_INT, &stop, "ID", "1 (BOS, as llama2.c's run)",
         "token id that ends a sequence (not printed); -1 = run to --steps", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "generate", "--model M --tokenizer T [options]",
        "Samples text from a checkpoint (llama2.c .bin or Hugging Face dir) and prints the\n"
        "prompt and its continuation (one line per sequence) on stdout. With -v the seed and\n"
        "achieved tokens/s go to stderr.\n"
        "Counting follows llama2.c's run.c (-n N from BOS gives N tokens), except that a sequence\n"
        "holds at most seq_len tokens with BOS, one fewer than run.c -n seq_len would print.",
        opts, 0, 0};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!model_path) return cli_usage_error(&spec, "--model is required");
    if (!tok_path && (!ids || prompt))
        return cli_usage_error(&spec, "--tokenizer is required (except with --ids and no --prompt)");
    if (!(top_p > 0.0f && top_p <= 1.0f))
        return cli_usage_error(&spec, "--top-p: expected a number in (0, 1], got %g", (double)top_p);
    if (!cli_find(&spec, "seed")->seen) seed = cli_time_seed();
    if (batch == 0) batch = n < 32 ? n : 32;
    if (batch > n) batch = n;

    const rlhf_backend *be = NULL;
    rlhf_model *model = NULL;
    rlhf_tokenizer *tok = NULL;
    rlhf_sampler *sampler = NULL;
    int32_t *prompt_ids = NULL, *out = NULL;
    rlhf_sample_seq *seqs = NULL;
    rlhf_status st;
    RLHF_TRY_GOTO(st, cli_setup(&com, &be), fail);
    /* max_B = max_T = 1: the sampler has its own buffers; the model's forward is not used */
    RLHF_TRY_GOTO(st, rlhf_model_load(&model, model_path, be, false, 1, 1), fail);
    const rlhf_model_config *c = rlhf_model_get_config(model);
    if (com.verbose) {
        fprintf(stderr, "model %s: ", model_path);
        cli_print_config(stderr, c);
    }
    if (tok_path) RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, c->vocab_size), fail);

    /* prompt: BOS + encoded text (run.c allocates strlen + 3) */
    size_t plen = prompt ? strlen(prompt) : 0;
    int32_t cap = (int32_t)(plen + 3), n_prompt = 1;
    if (plen > (size_t)INT32_MAX - 3) {
        st = RLHF_ERR(RLHF_ERR_ARG, "prompt too long");
        goto fail;
    }
    prompt_ids = malloc((size_t)cap * sizeof *prompt_ids);
    if (!prompt_ids) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate the prompt");
        goto fail;
    }
    if (tok) {
        RLHF_TRY_GOTO(st, rlhf_tokenizer_encode(tok, prompt ? prompt : "", true, false, prompt_ids,
                                                cap, &n_prompt),
                      fail);
    } else {
        prompt_ids[0] = 1; /* BOS */
    }
    if (n_prompt < 1) {
        st = RLHF_ERR(RLHF_ERR_ARG, "the prompt encodes to no tokens");
        goto fail;
    }
    if (n_prompt > c->seq_len) {
        st = RLHF_ERR(RLHF_ERR_ARG, "the prompt has %d tokens with BOS; the model's seq_len is %d",
                      (int)n_prompt, (int)c->seq_len);
        goto fail;
    }
    int32_t steps_eff = (steps <= 0 || steps > c->seq_len) ? c->seq_len : steps;
    /* run.c samples at positions n_prompt-1 .. steps-1 */
    int32_t max_new = steps_eff - n_prompt + 1;
    if (max_new > c->seq_len - n_prompt) max_new = c->seq_len - n_prompt; /* the KV cache ends */
    if (max_new < 0) max_new = 0;
    if (com.verbose)
        fprintf(stderr, "seed %" PRIu64 ", prompt %d tokens, at most %d new tokens per sequence\n",
                seed, (int)n_prompt, (int)max_new);

    int32_t out_cap = max_new > 0 ? max_new : 1;
    out = malloc((size_t)n * (size_t)out_cap * sizeof *out);
    seqs = calloc((size_t)n, sizeof *seqs);
    if (!out || !seqs) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate outputs for %d sequences", (int)n);
        goto fail;
    }
    for (int32_t i = 0; i < n; i++) {
        seqs[i].prompt = prompt_ids;
        seqs[i].n_prompt = n_prompt;
        seqs[i].seed = seed + (uint64_t)i;
        seqs[i].out = out + (size_t)i * (size_t)out_cap;
        seqs[i].logp = NULL;
        seqs[i].n_out = 0;
    }
    double t0 = cli_now(), t1 = t0;
    if (max_new > 0) {
        rlhf_sample_config sc = {temperature, top_k, top_p, max_new, stop};
        RLHF_TRY_GOTO(st, rlhf_sampler_init(&sampler, model, batch), fail);
        cli_progress prog;
        cli_progress_start(&prog, "generate", "tok", (int64_t)n * max_new, &com);
        if (n == 1) prog.on = false; /* one sequence: the result follows at once */
        t0 = cli_now();
        st = rlhf_sampler_run(sampler, &sc, seqs, n, prog.on ? cli_progress_cb : NULL, &prog);
        t1 = cli_now();
        cli_progress_end(&prog);
        if (st != RLHF_OK) goto fail;
    }

    int64_t total_new = 0;
    for (int32_t i = 0; i < n; i++) {
        rlhf_sample_seq *s = &seqs[i];
        int32_t m = s->n_out;
        total_new += m;
        if (m > 0 && s->finish == RLHF_FINISH_EOS && stop >= 0 && s->out[m - 1] == stop) m--;
        if (ids) {
            for (int32_t j = 0; j < m; j++) printf(j ? " %d" : "%d", (int)s->out[j]);
            putchar('\n');
            continue;
        }
        int32_t prev = prompt_ids[0];
        for (int32_t j = 1; j < n_prompt + m; j++) {
            int32_t id = j < n_prompt ? prompt_ids[j] : s->out[j - n_prompt];
            size_t len = 0;
            const char *piece = rlhf_tokenizer_piece(tok, prev, id, &len);
            put_piece(stdout, piece, len);
            prev = id;
        }
        putchar('\n');
    }
    fflush(stdout);
    if (com.verbose && total_new > 0) {
        double dt = t1 - t0;
        fprintf(stderr, "achieved tok/s: %.2f (%lld tokens in %.3f s, %d sequences)\n",
                dt > 0 ? (double)total_new / dt : 0.0, (long long)total_new, dt, (int)n);
    }
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    free(seqs);
    free(out);
    free(prompt_ids);
    rlhf_sampler_free(sampler);
    rlhf_tokenizer_free(tok);
    rlhf_model_free(model);
    return rc;
}
