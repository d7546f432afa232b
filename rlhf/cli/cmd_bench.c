/* cmd_bench.c: `rlhf bench train` and `rlhf bench sample`, figures for the training step and the
 * batched sampler on random models (or a checkpoint for sampling). Benchmarks print figures only;
 * nothing here asserts a time.
 *
 * bench train also times OpenBLAS sgemm on the same thread count, on the model's largest GEMM
 * (the LM head: M = B*T tokens, K = C, N = V) and on a square 1024^3, to say how close the whole
 * training step comes to the machine's matmul rate. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "cli.h"

/* The OpenBLAS include directory is private to rlhfcore; the system one usually has cblas.h too.
 * Without it, declare the one function used (standard CBLAS ABI, 32-bit integers). */
#if defined(__has_include)
#if __has_include(<cblas.h>)
#include <cblas.h>
#define HAVE_CBLAS_H 1
#endif
#endif
#ifndef HAVE_CBLAS_H
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(int order, int transa, int transb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
#endif

/* ---- sgemm reference rate ------------------------------------------------------------------------- */

/* GFLOP/s of C (M,N) = A (M,K) @ B^T (B is (N,K), as a Linear weight), the shape of the model's
 * matmul forward. Runs until min_time seconds have passed (at least 2 timed runs after one
 * untimed). *out is -1 when memory is short. */
static rlhf_status sgemm_rate(int64_t M, int64_t N, int64_t K, double min_time, double *out) {
    *out = -1;
    float *A = NULL, *B = NULL, *C = NULL;
    rlhf_status st;
    RLHF_TRY_GOTO(st, rlhf_alloc((void **)&A, (size_t)(M * K) * sizeof(float)), done);
    RLHF_TRY_GOTO(st, rlhf_alloc((void **)&B, (size_t)(N * K) * sizeof(float)), done);
    RLHF_TRY_GOTO(st, rlhf_alloc((void **)&C, (size_t)(M * N) * sizeof(float)), done);
    rlhf_rng r;
    rlhf_rng_seed(&r, 42, 7);
    for (int64_t i = 0; i < M * K; i++) A[i] = rlhf_rng_uniform(&r) - 0.5f;
    for (int64_t i = 0; i < N * K; i++) B[i] = rlhf_rng_uniform(&r) - 0.5f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K,
                B, (int)K, 0.0f, C, (int)N);
    int reps = 0;
    double t0 = cli_now(), el = 0;
    while (reps < 2 || (el < min_time && reps < 1000)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, A,
                    (int)K, B, (int)K, 0.0f, C, (int)N);
        reps++;
        el = cli_now() - t0;
    }
    *out = 2.0 * (double)M * (double)N * (double)K * reps / el / 1e9;
done:
    rlhf_free(A);
    rlhf_free(B);
    rlhf_free(C);
    return st;
}

/* ---- GPU figures ---------------------------------------------------------------------------------- */

/* On a GPU backend: prints the device, then the model's rate as MFU against the datasheet bf16
 * dense peak (peak_tflops) and against a measured cuBLAS bf16 GEMM (8192^3 unless gemm_n says
 * otherwise; 0 skips it). Nothing on the CPU. */
static rlhf_status gpu_report(const rlhf_backend *be, double model_tflops, double peak_tflops,
                              int32_t gemm_n) {
    if (be->device < 0) return RLHF_OK;
    char dev[256];
    RLHF_TRY(rlhf_backend_device_name(be, dev, sizeof dev));
    printf("gpu: %s, backend %s\n", dev, rlhf_backend_name(be));
    if (peak_tflops > 0)
        printf("MFU vs datasheet bf16 dense peak %.0f TFLOP/s: %.1f%% (model %.2f TFLOP/s)\n",
               peak_tflops, 100.0 * model_tflops / peak_tflops, model_tflops);
    if (gemm_n > 0) {
        double g = -1;
        RLHF_TRY(rlhf_backend_gemm_rate(be, gemm_n, gemm_n, gemm_n, 1.0, &g));
        printf("cuBLAS bf16 GEMM %d^3 (fp32 accumulate): %.1f TFLOP/s measured; MFU vs measured: "
               "%.1f%%\n", (int)gemm_n, g, 100.0 * model_tflops / g);
    }
    fflush(stdout);
    return RLHF_OK;
}

/* ---- bench train ----------------------------------------------------------------------------------- */

int cmd_bench_train(int argc, char **argv) {
    cli_model_flags mf = CLI_MODEL_FLAGS_DEFAULTS;
    int32_t batch = 4, steps = 10, warmup = 2;
    float lr = 3e-4f;
    uint64_t seed = 1337;
    bool no_sgemm = false;
    float peak = 989.0f;
    int32_t gemm_n = 8192;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"batch", 'b', CLI_POS_INT, &batch, "B", "4", "sequences per step (each of --seq tokens)",
         false},
        {"steps", 'n', CLI_POS_INT, &steps, "N", "10", "timed steps", false},
        {"warmup", 0, CLI_NONNEG_INT, &warmup, "N", "2", "untimed steps before them", false},
        {"lr", 0, CLI_NONNEG_FLOAT, &lr, "F", "3e-4",
         "peak learning rate (linear warm-up over --warmup, cosine to 0.1x)", false},
        {"seed", 's', CLI_U64, &seed, "S", "1337", "seed of the weights and the random tokens",
         false},
        {"no-sgemm", 0, CLI_FLAG, &no_sgemm, NULL, NULL,
         "skip the sgemm reference timings (always skipped on a GPU)", false},
        {"peak-tflops", 0, CLI_NONNEG_FLOAT, &peak, "F", "989 (H100 SXM)",
         "GPU: datasheet bf16 dense peak for MFU", false},
        {"gemm-n", 0, CLI_NONNEG_INT, &gemm_n, "N", "8192",
         "GPU: size of the measured bf16 GEMM (0 = skip)", false},
        CLI_MODEL_OPTS(&mf),
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "bench train", "[options]",
        "Times training steps of a random model on random tokens (targets = tokens shifted by\n"
        "one): zero_grad, forward + cross-entropy + backward (rlhf_model_lm_step), AdamW with\n"
        "gradient clipping at 1.0. Prints each step's loss and time, then tokens/s and the model's\n"
        "GFLOP/s, counted as\n"
        "  FLOPs/step = 6 * P_matmul * B*T + 6 * L * B * T^2 * C\n"
        "where P_matmul counts the weights used in matmuls (wq, wk, wv, wo, w1, w2, w3 and the\n"
        "V x C classifier, tied or not; not the embedding lookup or the norms) and the second term\n"
        "is causal attention (QK^T and AV: 4*B*T^2*C forward, twice that backward, halved by the\n"
        "causal mask). Norms, SwiGLU, softmax and AdamW are not counted. The model's rate is then\n"
        "compared with OpenBLAS sgemm on the same thread count on the LM-head shape\n"
        "(M = B*T, K = C, N = V) and on 1024^3.",
        opts, 0, 0};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;

    const rlhf_backend *be = NULL;
    rlhf_model *m = NULL;
    int32_t *data = NULL, *tokens = NULL, *targets = NULL;
    double *times = NULL;
    rlhf_model_config c;
    rlhf_status st;
    RLHF_TRY_GOTO(st, cli_setup(&com, &be), fail);
    RLHF_TRY_GOTO(st, cli_model_config(&mf, true, &c), fail);
    const int32_t B = batch, T = c.seq_len, V = c.vocab_size, C = c.dim, L = c.n_layer;
    RLHF_TRY_GOTO(st, rlhf_model_init(&m, &c, be, B, T), fail);
    RLHF_TRY_GOTO(st, rlhf_model_init_random(m, seed), fail);

    size_t BT = (size_t)B * (size_t)T;
    data = malloc((size_t)B * (size_t)(T + 1) * sizeof *data); /* (B, T+1) */
    tokens = malloc(BT * sizeof *tokens);                          /* (B, T) */
    targets = malloc(BT * sizeof *targets);                        /* (B, T) */
    times = calloc((size_t)steps, sizeof *times);
    if (!data || !tokens || !targets || !times) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate a batch of %d x %d tokens", (int)B, (int)T);
        goto fail;
    }
    rlhf_rng r;
    rlhf_rng_seed(&r, seed, 99);
    for (size_t i = 0; i < (size_t)B * (size_t)(T + 1); i++) data[i] = (int32_t)(rlhf_rng_u32(&r) % (uint32_t)V);
    for (int32_t b = 0; b < B; b++)
        for (int32_t t = 0; t < T; t++) {
            tokens[(size_t)b * T + t] = data[(size_t)b * (T + 1) + t];
            targets[(size_t)b * T + t] = data[(size_t)b * (T + 1) + t + 1];
        }

    rlhf_param_info tab[RLHF_P_COUNT];
    int64_t P = rlhf_param_table(&c, tab);
    int64_t P_matmul = (int64_t)V * C; /* the classifier, tied or not */
    const rlhf_param_id mm[] = {RLHF_P_WQ, RLHF_P_WK, RLHF_P_WV, RLHF_P_WO,
                                RLHF_P_W1, RLHF_P_W2, RLHF_P_W3};
    for (size_t i = 0; i < sizeof mm / sizeof *mm; i++) P_matmul += tab[mm[i]].numel;
    double flops_step = 6.0 * (double)P_matmul * (double)BT +
                        6.0 * (double)L * (double)B * (double)T * (double)T * (double)C;

    size_t mp, mg, mo, ma;
    rlhf_model_memory(m, &mp, &mg, &mo, &ma);
    if (!com.quiet) {
        printf("bench train: ");
        cli_print_config(stdout, &c);
        printf("parameters %" PRId64 " (matmul %" PRId64 "), batch %d x %d = %zu tokens/step, "
               "threads %d, device %s\n",
               P, P_matmul, (int)B, (int)T, BT, rlhf_get_threads(), rlhf_backend_name(be));
        printf("memory: params %.1f MB, grads %.1f MB, optimizer %.1f MB, "
               "activations %.1f MB\n",
               (double)mp / 1e6, (double)mg / 1e6, (double)mo / 1e6, (double)ma / 1e6);
        fflush(stdout);
    }

    rlhf_adamw_config oc = rlhf_adamw_default();
    oc.clip_norm = 1.0f;
    rlhf_schedule sched = {lr, warmup, (int64_t)warmup + steps, 0.1f};
    double timed = 0;
    for (int32_t i = 0; i < warmup + steps; i++) {
        float loss = 0, gnorm = 0, lr_i = rlhf_schedule_lr(&sched, i);
        double t0 = cli_now();
        RLHF_TRY_GOTO(st, rlhf_model_zero_grad(m), fail);
        RLHF_TRY_GOTO(st, rlhf_model_lm_step(m, tokens, targets, NULL, B, T, 1.0f, &loss), fail);
        RLHF_TRY_GOTO(st, rlhf_model_adamw_step(m, &oc, lr_i, &gnorm), fail);
        RLHF_TRY_GOTO(st, be->sync(be), fail); /* a GPU step ends when its last kernel does */
        double dt = cli_now() - t0;
        bool is_warm = i < warmup;
        if (!is_warm) {
            times[i - warmup] = dt;
            timed += dt;
        }
        if (!com.quiet) {
            printf("step %3d/%d%s loss %.4f grad_norm %.4f lr %.3e %9.2f ms  %.0f tok/s\n",
                   is_warm ? i + 1 : i - warmup + 1, is_warm ? warmup : steps,
                   is_warm ? " (warmup)" : "         ", (double)loss, (double)gnorm, (double)lr_i,
                   dt * 1e3, (double)BT / dt);
            fflush(stdout);
        }
        if (!isfinite(loss)) {
            st = RLHF_ERR(RLHF_ERR_ARG, "step %d: loss is %f", (int)i, (double)loss);
            goto fail;
        }
    }
    /* median step time: robust to one slow step */
    for (int32_t i = 1; i < steps; i++)
        for (int32_t j = i; j > 0 && times[j - 1] > times[j]; j--) {
            double tmp = times[j];
            times[j] = times[j - 1];
            times[j - 1] = tmp;
        }
    double med = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
    double mean = timed / steps;
    double tok_s = (double)BT / mean, gflops = flops_step / mean / 1e9;
    printf("train: %.2f ms/step mean, %.2f ms median, %.0f tokens/s, %.2f model GFLOP/s\n",
           mean * 1e3, med * 1e3, tok_s, gflops);
    printf("  FLOPs/step = 6*P_matmul*B*T + 6*L*B*T^2*C = 6*%" PRId64 "*%zu + 6*%d*%d*%d^2*%d "
           "= %.4g\n",
           P_matmul, BT, (int)L, (int)B, (int)T, (int)C, flops_step);
    if (be->device >= 0) {
        RLHF_TRY_GOTO(st, gpu_report(be, gflops / 1e3, peak, gemm_n), fail);
    } else if (!no_sgemm) {
        double g_head = -1, g_sq = -1;
        RLHF_TRY_GOTO(st, sgemm_rate((int64_t)BT, V, C, 0.5, &g_head), fail);
        RLHF_TRY_GOTO(st, sgemm_rate(1024, 1024, 1024, 0.5, &g_sq), fail);
        printf("sgemm (OpenBLAS, %d threads): %.2f GFLOP/s at M=%zu K=%d N=%d (the LM head), "
               "%.2f GFLOP/s at 1024^3\n",
               rlhf_get_threads(), g_head, BT, (int)C, (int)V, g_sq);
        printf("ratio model GFLOP/s / sgemm GFLOP/s: %.3f (LM-head shape), %.3f (1024^3)\n",
               gflops / g_head, gflops / g_sq);
    }
    fflush(stdout);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    fflush(stdout);
    rc = cli_fail(spec.cmd, st);
done:
    free(times);
    free(data);
    free(tokens);
    free(targets);
    rlhf_model_free(m);
    return rc;
}

/* ---- bench sample ---------------------------------------------------------------------------------- */

/* Runs K sequences once; prints one result line. */
static rlhf_status sample_once(rlhf_model *m, int32_t K, int32_t steps, int32_t prompt_len,
                               const rlhf_sample_config *base, uint64_t seed,
                               const cli_common *com, const char *label, double *tok_s) {
    rlhf_sampler *s = NULL;
    int32_t *prompt = NULL, *out = NULL;
    rlhf_sample_seq *seqs = NULL;
    rlhf_status st = RLHF_OK;
    const rlhf_model_config *c = rlhf_model_get_config(m);
    prompt = malloc((size_t)K * (size_t)prompt_len * sizeof *prompt);
    out = malloc((size_t)K * (size_t)steps * sizeof *out);
    seqs = calloc((size_t)K, sizeof *seqs);
    if (!prompt || !out || !seqs) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate %d sequences", (int)K);
        goto done;
    }
    rlhf_rng r;
    rlhf_rng_seed(&r, seed, 5);
    for (int32_t k = 0; k < K; k++) {
        int32_t *p = prompt + (size_t)k * prompt_len;
        p[0] = 1; /* BOS */
        for (int32_t j = 1; j < prompt_len; j++)
            p[j] = c->vocab_size > 3 ? 3 + (int32_t)(rlhf_rng_u32(&r) % (uint32_t)(c->vocab_size - 3))
                                     : 0;
        seqs[k].prompt = p;
        seqs[k].n_prompt = prompt_len;
        seqs[k].seed = seed + (uint64_t)k;
        seqs[k].out = out + (size_t)k * steps;
    }
    RLHF_TRY_GOTO(st, rlhf_sampler_init(&s, m, K), done);
    /* untimed warm-up (thread pool start, first touch of the KV cache) */
    rlhf_sample_config sc = *base;
    sc.max_new = steps < 4 ? steps : 4;
    sc.eos_id = -1;
    RLHF_TRY_GOTO(st, rlhf_sampler_run(s, &sc, seqs, K, NULL, NULL), done);
    sc.max_new = steps;
    cli_progress prog;
    cli_progress_start(&prog, label, "tok", (int64_t)K * steps, com);
    double t0 = cli_now();
    st = rlhf_sampler_run(s, &sc, seqs, K, prog.on ? cli_progress_cb : NULL, &prog);
    double dt = cli_now() - t0;
    cli_progress_end(&prog);
    if (st != RLHF_OK) goto done;
    int64_t total = 0;
    int32_t longest = 0;
    for (int32_t k = 0; k < K; k++) {
        total += seqs[k].n_out;
        if (seqs[k].n_out > longest) longest = seqs[k].n_out;
    }
    *tok_s = dt > 0 ? (double)total / dt : 0;
    printf("%s k=%d: %" PRId64 " tokens in %.3f s: %.1f tok/s, %.3f ms per decode step "
           "(%d steps of %d sequences; prefill of %d prompt tokens included)\n",
           label, (int)K, total, dt, *tok_s, longest ? dt * 1e3 / longest : 0.0, (int)longest,
           (int)K, (int)prompt_len);
    fflush(stdout);
done:
    rlhf_sampler_free(s);
    free(seqs);
    free(out);
    free(prompt);
    return st;
}

int cmd_bench_sample(int argc, char **argv) {
    cli_model_flags mf = CLI_MODEL_FLAGS_DEFAULTS;
    const char *model_path = NULL;
    int32_t K = 32, steps = 256, prompt_len = 1;
    float temperature = 1.0f, top_p = 1.0f;
    int32_t top_k = 0;
    uint64_t seed = 1337;
    bool baseline = false;
    float peak = 989.0f;
    int32_t gemm_n = 0;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"model", 'm', CLI_STR, &model_path, "M.bin", "a random model of the shape below",
         "llama2.c checkpoint to sample from", false},
        {"k", 'k', CLI_POS_INT, &K, "K", "32", "sequences sampled together", false},
        {"steps", 'n', CLI_POS_INT, &steps, "N", "256",
         "tokens generated per sequence (no early stop; truncated at seq_len)", false},
        {"prompt-len", 0, CLI_POS_INT, &prompt_len, "N", "1",
         "prompt tokens per sequence, BOS included (random ids after BOS)", false},
        {"temperature", 't', CLI_NONNEG_FLOAT, &temperature, "F", "1.0", "0 = greedy", false},
        {"top-p", 'p', CLI_NONNEG_FLOAT, &top_p, "P", "1.0", "nucleus sampling (1 = off)", false},
        {"top-k", 0, CLI_NONNEG_INT, &top_k, "K", "0", "keep the K most likely tokens (0 = off)",
         false},
        {"seed", 's', CLI_U64, &seed, "S", "1337", "seed of the weights, prompts and sampling",
         false},
        {"baseline", 0, CLI_FLAG, &baseline, NULL, NULL,
         "also time K = 1 and print the speed-up of batching", false},
        {"peak-tflops", 0, CLI_NONNEG_FLOAT, &peak, "F", "989 (H100 SXM)",
         "GPU: datasheet bf16 dense peak for MFU", false},
        {"gemm-n", 0, CLI_NONNEG_INT, &gemm_n, "N", "0 = skip",
         "GPU: also measure a bf16 GEMM of this size", false},
        CLI_MODEL_OPTS(&mf),
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "bench sample", "[--model M.bin | model shape options] [options]",
        "Times rlhf_sampler_run: K sequences of --steps tokens each from BOS (plus random prompt\n"
        "tokens) through the KV cache, no stop token. Prints generated tokens/s and the time per\n"
        "decode step (wall time / longest sequence).",
        opts, 0, 0};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;

    const rlhf_backend *be = NULL;
    rlhf_model *m = NULL;
    rlhf_status st;
    RLHF_TRY_GOTO(st, cli_setup(&com, &be), fail);
    if (model_path) {
        RLHF_TRY_GOTO(st, rlhf_model_load_llama2c(&m, model_path, be, false, 1, 1), fail);
    } else {
        rlhf_model_config c;
        RLHF_TRY_GOTO(st, cli_model_config(&mf, false, &c), fail);
        RLHF_TRY_GOTO(st, rlhf_model_init(&m, &c, be, 1, 1), fail);
        RLHF_TRY_GOTO(st, rlhf_model_init_random(m, seed), fail);
    }
    const rlhf_model_config *c = rlhf_model_get_config(m);
    if (prompt_len >= c->seq_len) {
        st = RLHF_ERR(RLHF_ERR_ARG, "--prompt-len %d leaves no room in seq_len %d", (int)prompt_len,
                      (int)c->seq_len);
        goto fail;
    }
    if (!com.quiet) {
        printf("bench sample: %s: ", model_path ? model_path : "random model");
        cli_print_config(stdout, c);
        printf("parameters %" PRId64 ", threads %d, device %s, temperature %g, top-k %d, "
               "top-p %g\n", rlhf_model_num_params(m), rlhf_get_threads(), rlhf_backend_name(be),
               (double)temperature, (int)top_k, (double)top_p);
        fflush(stdout);
    }
    if (top_p > 1.0f) {
        st = RLHF_ERR(RLHF_ERR_ARG, "--top-p must be in [0, 1], got %g", (double)top_p);
        goto fail;
    }
    const rlhf_sample_config sc = {temperature, top_k, top_p, steps, -1};
    double tk = 0, t1 = 0;
    RLHF_TRY_GOTO(st, sample_once(m, K, steps, prompt_len, &sc, seed, &com, "sample", &tk),
                  fail);
    if (be->device >= 0) {
        /* decode FLOPs per token: 2 per matmul weight (classifier included) plus attention
         * over the cache, 4*C per cached position per layer, at the mean position */
        rlhf_param_info tab[RLHF_P_COUNT];
        (void)rlhf_param_table(c, tab);
        double pm = (double)c->vocab_size * c->dim;
        const rlhf_param_id mm[] = {RLHF_P_WQ, RLHF_P_WK, RLHF_P_WV, RLHF_P_WO,
                                    RLHF_P_W1, RLHF_P_W2, RLHF_P_W3};
        for (size_t i = 0; i < sizeof mm / sizeof *mm; i++) pm += (double)tab[mm[i]].numel;
        double ctx = prompt_len + steps / 2.0;
        double fpt = 2.0 * pm + 4.0 * c->n_layer * (double)c->dim * ctx;
        printf("decode FLOPs/token = 2*P_matmul + 4*L*C*mean_context = %.4g\n", fpt);
        RLHF_TRY_GOTO(st, gpu_report(be, tk * fpt / 1e12, peak, gemm_n), fail);
    }
    if (baseline) {
        RLHF_TRY_GOTO(st, sample_once(m, 1, steps, prompt_len, &sc, seed, &com,
                                      "baseline", &t1),
                      fail);
        if (t1 > 0) printf("speed-up of k=%d over k=1: %.2fx\n", (int)K, tk / t1);
    }
    rc = CLI_EXIT_OK;
    goto done;
fail:
    fflush(stdout);
    rc = cli_fail(spec.cmd, st);
done:
    rlhf_model_free(m);
    return rc;
}
