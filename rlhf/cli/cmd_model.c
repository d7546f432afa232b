/* cmd_model.c: `rlhf model init` (random llama2.c checkpoint) and `rlhf model info` (config,
 * tensor table and memory per role of a llama2.c or Hugging Face checkpoint). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cmd_model_init(int argc, char **argv) {
    cli_model_flags mf = CLI_MODEL_FLAGS_DEFAULTS;
    uint64_t seed = 1337;
    const char *out_path = NULL, *format = "v0";
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"out", 'o', CLI_STR, &out_path, "M.bin", NULL, "checkpoint to write; required", false},
        {"format", 0, CLI_STR, &format, "v0|v1", "v0",
         "v0: llama2.c legacy header (what run.c reads); v1: \"ak42\" header, version 1", false},
        {"seed", 's', CLI_U64, &seed, "S", "1337", "seed of the random initialization", false},
        CLI_MODEL_OPTS(&mf),
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "model init", "--out M.bin [options]",
        "Writes a llama2.c checkpoint with random weights: N(0, 0.02) matrices, output projections\n"
        "(wo, w2) scaled by 1/sqrt(2L), norm gains 1.",
        opts, 0, 0};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!out_path) return cli_usage_error(&spec, "--out is required");
    int version;
    if (strcmp(format, "v0") == 0 || strcmp(format, "0") == 0)
        version = 0;
    else if (strcmp(format, "v1") == 0 || strcmp(format, "1") == 0)
        version = 1;
    else
        return cli_usage_error(&spec, "--format: expected v0 or v1, got '%s'", format);

    const rlhf_backend *be = NULL;
    rlhf_model *m = NULL;
    float *params = NULL;
    rlhf_model_config c;
    rlhf_status st;
    RLHF_TRY_GOTO(st, cli_setup(&com, &be), fail);
    RLHF_TRY_GOTO(st, cli_model_config(&mf, false, &c), fail);
    RLHF_TRY_GOTO(st, rlhf_model_init(&m, &c, be, 1, 1), fail);
    RLHF_TRY_GOTO(st, rlhf_model_init_random(m, seed), fail);
    int64_t P = rlhf_model_num_params(m);
    RLHF_TRY_GOTO(st, rlhf_alloc((void **)&params, (size_t)P * sizeof(float)), fail);
    RLHF_TRY_GOTO(st, rlhf_model_get_params(m, params), fail);
    RLHF_TRY_GOTO(st, rlhf_llama2c_write(out_path, &c, params, version), fail);
    if (!com.quiet)
        printf("wrote %s (llama2.c v%d): %" PRId64 " parameters, %.2f MB, seed %" PRIu64 "\n",
               out_path, version, P, (double)P * 4.0 / 1e6, seed);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    rlhf_free(params);
    rlhf_model_free(m);
    return rc;
}

/* "model.layers.%d.mlp.up_proj.weight" -> "model.layers.*.mlp.up_proj.weight" */
static void display_name(char *buf, size_t cap, const char *name) {
    size_t j = 0;
    for (size_t i = 0; name[i] && j + 1 < cap; i++) {
        if (name[i] == '%' && name[i + 1] == 'd') {
            buf[j++] = '*';
            i++;
        } else {
            buf[j++] = name[i];
        }
    }
    buf[j] = '\0';
}

/* The header kind of a llama2.c file, for display only ("v0", "v1"; "?" if unreadable). */
static const char *peek_format(const char *path, char *buf, size_t cap) {
    snprintf(buf, cap, "?");
    FILE *f = fopen(path, "rb");
    if (!f) return buf;
    uint32_t h[2];
    if (fread(h, sizeof h, 1, f) == 1) {
        if (h[0] == 0x616b3432u)
            snprintf(buf, cap, "v%u (\"ak42\" header)", (unsigned)h[1]);
        else
            snprintf(buf, cap, "v0 (legacy header)");
    }
    fclose(f);
    return buf;
}

/* "1.23 MiB" etc. into buf. */
static const char *fmt_bytes(double b, char *buf, size_t cap) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024.0 && u < 4) {
        b /= 1024.0;
        u++;
    }
    snprintf(buf, cap, u ? "%.2f %s" : "%.0f %s", b, units[u]);
    return buf;
}

/* One memory line: params (+ grads + Adam m, v when trainable), fp32. */
static void print_role(const char *role, const rlhf_model_config *base, rlhf_head head,
                       bool trainable) {
    rlhf_model_config c = *base;
    c.head = head;
    if (head == RLHF_HEAD_LM && base->head != RLHF_HEAD_LM) c.tied_head = false;
    rlhf_param_info t[RLHF_P_COUNT];
    const double pb = 4.0 * (double)rlhf_param_table(&c, t);
    char a[32], b[32], d[32], e[32];
    if (trainable)
        printf("  %-34s params %s + grads %s + Adam m,v %s = %s\n", role, fmt_bytes(pb, a, sizeof a),
               fmt_bytes(pb, b, sizeof b), fmt_bytes(2 * pb, d, sizeof d),
               fmt_bytes(4 * pb, e, sizeof e));
    else
        printf("  %-34s params %s\n", role, fmt_bytes(pb, a, sizeof a));
}

int cmd_model_info(int argc, char **argv) {
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {CLI_COMMON_OPTS(&com), {0}};
    cli_spec spec = {"model info", "M",
                     "Prints a checkpoint's format, config, parameter count, one line per tensor\n"
                     "(Hugging Face name, shape, element count) and the memory each role of the\n"
                     "recipe needs for it. M is a llama2.c .bin file or a Hugging Face directory\n"
                     "(whose tensors are validated, not loaded).",
                     opts, 1, 1};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    const char *path = pos[0];

    float *params = NULL;
    rlhf_model_config c;
    rlhf_status st;
    char fmt[128];
    RLHF_TRY_GOTO(st, cli_setup(&com, NULL), fail);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rlhf_hf_info info;
        RLHF_TRY_GOTO(st, rlhf_hf_read(path, &c, NULL, &info), fail);
        char sz[32];
        if (info.n_shards)
            snprintf(fmt, sizeof fmt, "Hugging Face %s, %d shards + index, %s %s",
                     c.head == RLHF_HEAD_SCALAR ? "LlamaForSequenceClassification"
                                                : "LlamaForCausalLM",
                     (int)info.n_shards, rlhf_dtype_name(info.dtype),
                     fmt_bytes((double)info.bytes, sz, sizeof sz));
        else
            snprintf(fmt, sizeof fmt, "Hugging Face %s, model.safetensors, %s %s",
                     c.head == RLHF_HEAD_SCALAR ? "LlamaForSequenceClassification"
                                                : "LlamaForCausalLM",
                     rlhf_dtype_name(info.dtype), fmt_bytes((double)info.bytes, sz, sizeof sz));
    } else {
        RLHF_TRY_GOTO(st, rlhf_llama2c_read(path, &c, &params), fail);
        char v[64];
        snprintf(fmt, sizeof fmt, "llama2.c %s", peek_format(path, v, sizeof v));
    }
    rlhf_param_info t[RLHF_P_COUNT];
    int64_t P = rlhf_param_table(&c, t);
    printf("file:       %s\n", path);
    printf("format:     %s\n", fmt);
    printf("config:     ");
    cli_print_config(stdout, &c);
    printf("parameters: %" PRId64 " (%.2f MB fp32)\n", P, (double)P * 4.0 / 1e6);
    printf("\n%-48s %-20s %12s\n", "tensor", "shape", "numel");
    for (int i = 0; i < RLHF_P_COUNT; i++) {
        char name[128], shape[64];
        display_name(name, sizeof name, t[i].name ? t[i].name : "?");
        if (t[i].numel == 0) {
            printf("%-48s %-20s %12s\n", name, "(tied to embedding)", "0");
            continue;
        }
        if (t[i].per_layer && t[i].cols > 1)
            snprintf(shape, sizeof shape, "(%d, %" PRId64 ", %" PRId64 ")", (int)c.n_layer,
                     t[i].rows, t[i].cols);
        else if (t[i].per_layer)
            snprintf(shape, sizeof shape, "(%d, %" PRId64 ")", (int)c.n_layer, t[i].rows);
        else if (t[i].cols > 1 || i == RLHF_P_HEAD)
            snprintf(shape, sizeof shape, "(%" PRId64 ", %" PRId64 ")", t[i].rows, t[i].cols);
        else
            snprintf(shape, sizeof shape, "(%" PRId64 ")", t[i].rows);
        printf("%-48s %-20s %12" PRId64 "\n", name, shape, t[i].numel);
    }
    printf("%-48s %-20s %12" PRId64 "\n", "total", "", P);
    printf("\nmemory per role (fp32; activations and KV cache excluded: they grow with batch x "
           "length):\n");
    print_role("policy (trainable, LM head)", &c, RLHF_HEAD_LM, true);
    print_role("reference (frozen, LM head)", &c, RLHF_HEAD_LM, false);
    print_role("reward / value (trainable, scalar)", &c, RLHF_HEAD_SCALAR, true);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    rlhf_free(params);
    return rc;
}
