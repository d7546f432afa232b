/* cmd_model.c: `rlhf model init` (random llama2.c checkpoint) and `rlhf model info` (config and
 * tensor table of a checkpoint). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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

int cmd_model_info(int argc, char **argv) {
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {CLI_COMMON_OPTS(&com), {0}};
    cli_spec spec = {"model info", "M.bin",
                     "Prints a llama2.c checkpoint's format, config, parameter count and one line\n"
                     "per tensor (Hugging Face name, shape, element count).",
                     opts, 1, 1};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    const char *path = pos[0];

    float *params = NULL;
    rlhf_model_config c;
    rlhf_status st;
    RLHF_TRY_GOTO(st, cli_setup(&com, NULL), fail);
    RLHF_TRY_GOTO(st, rlhf_llama2c_read(path, &c, &params), fail);
    rlhf_param_info t[RLHF_P_COUNT];
    int64_t P = rlhf_param_table(&c, t);
    char fmt[64];
    printf("file:       %s\n", path);
    printf("format:     llama2.c %s\n", peek_format(path, fmt, sizeof fmt));
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
        else if (t[i].cols > 1)
            snprintf(shape, sizeof shape, "(%" PRId64 ", %" PRId64 ")", t[i].rows, t[i].cols);
        else
            snprintf(shape, sizeof shape, "(%" PRId64 ")", t[i].rows);
        printf("%-48s %-20s %12" PRId64 "\n", name, shape, t[i].numel);
    }
    printf("%-48s %-20s %12" PRId64 "\n", "total", "", P);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    rlhf_free(params);
    return rc;
}
