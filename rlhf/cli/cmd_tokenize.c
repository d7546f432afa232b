/* cmd_tokenize.c: `rlhf tokenize`, text to token ids and back with a tokenizer file.
 *
 *   rlhf tokenize --tokenizer T [--bos] [--eos] TEXT     ids on one line, space-separated
 *   rlhf tokenize --tokenizer T --decode [ID...]         the text (ids from stdin when none)
 * T is a SentencePiece tokenizer.model or a llama2.c tokenizer.bin (told apart by content).
 * Without TEXT the text to encode is all of stdin, byte for byte (a trailing newline included). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Reads all of stdin into a malloc'ed NUL-terminated buffer; NULL when out of memory. */
static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *g = realloc(buf, cap * 2);
            if (!g) {
                free(buf);
                return NULL;
            }
            buf = g;
            cap *= 2;
        }
        const size_t r = fread(buf + n, 1, cap - 1 - n, stdin);
        n += r;
        if (r == 0) break;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Parses one id; false if s is not an integer in int32 range. */
static bool parse_id(const char *s, int32_t *id) {
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < INT32_MIN || v > INT32_MAX) return false;
    *id = (int32_t)v;
    return true;
}

static int run_decode(const cli_spec *spec, rlhf_tokenizer *tok, char **pos, int n_pos) {
    int32_t cap = 1024, n = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    char *in = NULL, *text = NULL;
    int rc = CLI_EXIT_FAIL;
    if (!ids) goto nomem;
    char *save = NULL, *word;
    size_t in_len = 0;
    if (n_pos == 0) {
        in = read_stdin(&in_len);
        if (!in) goto nomem;
    }
    for (int i = 0;; i++) {
        if (n_pos > 0) {
            if (i >= n_pos) break;
            word = pos[i];
        } else {
            word = strtok_r(i == 0 ? in : NULL, " \t\r\n,", &save);
            if (!word) break;
        }
        if (n == cap) {
            int32_t *g = realloc(ids, (size_t)cap * 2 * sizeof *ids);
            if (!g) goto nomem;
            ids = g;
            cap *= 2;
        }
        if (!parse_id(word, &ids[n])) {
            if (n_pos > 0) {
                rc = cli_usage_error(spec, "--decode: '%s' is not a token id", word);
            } else {
                fprintf(stderr, "rlhf tokenize: error: stdin: '%.40s' is not a token id\n", word);
                rc = CLI_EXIT_FAIL;
            }
            goto done;
        }
        n++;
    }
    rlhf_status st = rlhf_tokenizer_decode(tok, ids, n, &text);
    if (st != RLHF_OK) {
        rc = cli_fail("tokenize", st);
        goto done;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    rc = CLI_EXIT_OK;
    goto done;
nomem:
    fprintf(stderr, "rlhf tokenize: error: out of memory\n");
done:
    free(ids);
    free(in);
    free(text);
    return rc;
}

static int run_encode(const cli_spec *spec, rlhf_tokenizer *tok, char **pos, int n_pos, bool bos,
                      bool eos) {
    if (n_pos > 1)
        return cli_usage_error(spec, "expected one TEXT argument, got %d (quote the text)", n_pos);
    char *in = NULL;
    size_t len = 0;
    const char *text = n_pos == 1 ? pos[0] : NULL;
    if (!text) {
        in = read_stdin(&len);
        if (!in) {
            fprintf(stderr, "rlhf tokenize: error: out of memory reading stdin\n");
            return CLI_EXIT_FAIL;
        }
        text = in;
    } else {
        len = strlen(text);
    }
    /* at most one id per byte, plus the dummy prefix, BOS and EOS */
    const size_t cap = len + 3;
    int32_t *ids = cap <= INT32_MAX ? malloc(cap * sizeof *ids) : NULL;
    int rc = CLI_EXIT_FAIL;
    int32_t n = 0;
    if (!ids) {
        fprintf(stderr, "rlhf tokenize: error: out of memory for %zu bytes of text\n", len);
        goto done;
    }
    rlhf_status st = rlhf_tokenizer_encode(tok, text, bos, eos, ids, (int32_t)cap, &n);
    if (st != RLHF_OK) {
        rc = cli_fail("tokenize", st);
        goto done;
    }
    for (int32_t i = 0; i < n; i++)
        printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    rc = CLI_EXIT_OK;
done:
    free(ids);
    free(in);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *tok_path = NULL;
    bool bos = false, eos = false, decode = false;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"tokenizer", 'z', CLI_STR, &tok_path, "T", NULL,
         "SentencePiece tokenizer.model or llama2.c tokenizer.bin; required", false},
        {"bos", 0, CLI_FLAG, &bos, NULL, NULL, "prepend the BOS id", false},
        {"eos", 0, CLI_FLAG, &eos, NULL, NULL, "append the EOS id", false},
        {"decode", 'd', CLI_FLAG, &decode, NULL, NULL,
         "ids to text: the ids are the arguments, or stdin (separated by spaces, commas or "
         "newlines) when there are none",
         false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "tokenize", "--tokenizer T [--bos] [--eos] TEXT | --tokenizer T --decode [ID...]",
        "Encodes TEXT (all of stdin when absent) and prints the ids on one line, without BOS\n"
        "unless --bos; with --decode prints the text of the given ids. A .model file encodes\n"
        "exactly as SentencePiece does; chat markers such as [INST] are ordinary text.",
        opts, 0, argc};
    char **pos = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *pos);
    if (!pos) {
        fprintf(stderr, "rlhf tokenize: error: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) goto done;
    if (!tok_path) {
        rc = cli_usage_error(&spec, "--tokenizer is required");
        goto done;
    }
    if (decode && (bos || eos)) {
        rc = cli_usage_error(&spec, "--bos and --eos apply to encoding, not --decode");
        goto done;
    }
    rlhf_status st = cli_setup(&com, NULL);
    if (st != RLHF_OK) {
        rc = cli_fail("tokenize", st);
        goto done;
    }
    rlhf_tokenizer *tok = NULL;
    st = rlhf_tokenizer_load(&tok, tok_path, 0);
    if (st != RLHF_OK) {
        rc = cli_fail("tokenize", st);
        goto done;
    }
    rc = decode ? run_decode(&spec, tok, pos, n_pos) : run_encode(&spec, tok, pos, n_pos, bos, eos);
    rlhf_tokenizer_free(tok);
done:
    free(pos);
    return rc;
}
