/* cmd_convert.c: `rlhf convert IN OUT`: checkpoints between llama2.c .bin files and Hugging Face
 * directories (either direction, and HF -> HF to re-shard or re-type, .bin -> .bin to change the
 * llama2.c header version). llama2.c v0's RoPE tables travel along (rlhf_llama2c_extra; in the
 * safetensors metadata of an HF output when they differ from ours), so llama2.c -> HF -> llama2.c
 * reproduces a v0 file byte for byte. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* "5GB", "500MB", "2GiB", "1048576" -> bytes (decimal units as transformers' max_shard_size,
 * binary for KiB/MiB/GiB). Returns false on anything else. */
static bool parse_bytes(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s)) return false;
    const double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) return false;
    static const struct {
        const char *suffix;
        double mul;
    } units[] = {
        {"", 1},         {"B", 1},           {"K", 1e3},           {"KB", 1e3}, {"M", 1e6},
        {"MB", 1e6},     {"G", 1e9},         {"GB", 1e9},          {"T", 1e12}, {"TB", 1e12},
        {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}};
    char suf[8];
    size_t k = 0;
    for (; k + 1 < sizeof suf && end[k]; k++)
        suf[k] = (char)toupper((unsigned char)end[k]);
    suf[k] = '\0';
    if (end[k]) return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(suf, units[i].suffix) == 0) {
            const double b = v * units[i].mul;
            if (b > 9e18) return false;
            *out = (int64_t)b;
            return true;
        }
    return false;
}

static bool ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A short description of a checkpoint for the summary line. */
static void describe(const char *path, char *buf, size_t cap) {
    rlhf_model_config c;
    rlhf_hf_info info;
    if (rlhf_hf_is_dir(path) && rlhf_hf_read(path, &c, NULL, &info) == RLHF_OK) {
        if (info.n_shards)
            snprintf(buf, cap, "Hugging Face, %s, %d shards", rlhf_dtype_name(info.dtype),
                     (int)info.n_shards);
        else
            snprintf(buf, cap, "Hugging Face, %s, model.safetensors", rlhf_dtype_name(info.dtype));
    } else {
        snprintf(buf, cap, "llama2.c");
    }
}

int cmd_convert(int argc, char **argv) {
    const char *dtype_s = "f32", *shard_s = "5GB", *to = NULL;
    int32_t version = 0;
    bool force = false;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"to", 0, CLI_STR, &to, "hf|llama2c", "llama2c if OUT ends in .bin, else hf",
         "output format", false},
        {"dtype", 0, CLI_STR, &dtype_s, "f32|bf16", "f32",
         "weight type of a Hugging Face output (bf16 rounds to nearest even)", false},
        {"shard-size", 0, CLI_STR, &shard_s, "BYTES", "5GB",
         "largest safetensors shard of a Hugging Face output (e.g. 2GB, 500MB, 1GiB; 0 = never "
         "shard)",
         false},
        {"llama2c-version", 0, CLI_NONNEG_INT, &version, "0|1", "0",
         "header of a llama2.c output: 0 legacy (what run.c reads), 1 \"ak42\"", false},
        {"force", 'f', CLI_FLAG, &force, NULL, NULL,
         "replace OUT if it exists (a directory holding only files)", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "convert",
        "IN OUT [options]",
        "Converts a checkpoint. IN is a llama2.c .bin file or a Hugging Face directory\n"
        "(config.json + model.safetensors or shards + index); OUT likewise. Hugging Face output "
        "is\n"
        "what transformers' LlamaForCausalLM (LlamaForSequenceClassification for a scalar head)\n"
        "loads; q/k rows are permuted to its RoPE layout and back, and llama2.c's RoPE tables\n"
        "are kept in the safetensors metadata when they differ from ours, so a round trip is\n"
        "byte-identical.\n"
        "OUT is written under a temporary name and renamed into place.",
        opts,
        2,
        2};
    char *pos[2];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    const char *in = pos[0], *out = pos[1];

    bool to_hf;
    if (!to)
        to_hf = !ends_with(out, ".bin");
    else if (strcmp(to, "hf") == 0)
        to_hf = true;
    else if (strcmp(to, "llama2c") == 0)
        to_hf = false;
    else
        return cli_usage_error(&spec, "--to: expected hf or llama2c, got '%s'", to);
    rlhf_dtype dtype;
    if (strcmp(dtype_s, "f32") == 0 || strcmp(dtype_s, "float32") == 0)
        dtype = RLHF_DTYPE_F32;
    else if (strcmp(dtype_s, "bf16") == 0 || strcmp(dtype_s, "bfloat16") == 0)
        dtype = RLHF_DTYPE_BF16;
    else
        return cli_usage_error(&spec, "--dtype: expected f32 or bf16, got '%s'", dtype_s);
    int64_t shard_bytes;
    if (!parse_bytes(shard_s, &shard_bytes))
        return cli_usage_error(&spec, "--shard-size: expected a byte count like 5GB, got '%s'",
                               shard_s);
    if (!to_hf && dtype != RLHF_DTYPE_F32)
        return cli_usage_error(&spec, "--dtype %s: llama2.c checkpoints are fp32 only", dtype_s);
    if (!to_hf && cli_find(&spec, "shard-size")->seen)
        return cli_usage_error(&spec, "--shard-size applies to Hugging Face output only");
    if (to_hf && cli_find(&spec, "llama2c-version")->seen)
        return cli_usage_error(&spec, "--llama2c-version applies to llama2.c output only");
    if (version > 1) return cli_usage_error(&spec, "--llama2c-version: expected 0 or 1");

    float *params = NULL;
    rlhf_model_config c;
    rlhf_llama2c_extra extra = {0};
    rlhf_status st;
    double t0 = cli_now();
    RLHF_TRY_GOTO(st, cli_setup(&com, NULL), fail);
    RLHF_TRY_GOTO(st, rlhf_checkpoint_read_ex(in, &c, &params, &extra), fail);
    if (to_hf) {
        RLHF_TRY_GOTO(st, rlhf_hf_write_ex(out, &c, params, dtype, shard_bytes, force, &extra), fail);
    } else {
        struct stat sb;
        if (!force && stat(out, &sb) == 0) {
            st = RLHF_ERR(RLHF_ERR_ARG, "%s: exists (use --force to replace it)", out);
            goto fail;
        }
        RLHF_TRY_GOTO(st, rlhf_llama2c_write_ex(out, &c, params, (int)version, &extra), fail);
    }
    if (!com.quiet) {
        char a[96], b[96];
        describe(in, a, sizeof a);
        if (to_hf)
            describe(out, b, sizeof b);
        else
            snprintf(b, sizeof b, "llama2.c v%d", (int)version);
        rlhf_param_info t[RLHF_P_COUNT];
        const int64_t P = rlhf_param_table(&c, t);
        printf("converted %s (%s) -> %s (%s): %" PRId64 " parameters, %s head, %.2f s\n", in, a,
               out, b, P,
               c.head == RLHF_HEAD_SCALAR ? "scalar"
               : c.tied_head              ? "tied LM"
                                          : "LM",
               cli_now() - t0);
    }
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    rlhf_free(params);
    rlhf_llama2c_extra_free(&extra);
    return rc;
}
