/* args.c: the option parser of the `rlhf` program, the options shared by its commands, and the
 * error reporting that every command uses (see cli.h for the contracts). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- usage --------------------------------------------------------------------------------------- */

static bool is_option(const cli_opt *o) { return o->kind != CLI_HEADER; }

void cli_usage(const cli_spec *spec, FILE *f) {
    fprintf(f, "usage: rlhf %s %s\n", spec->cmd, spec->synopsis);
    if (spec->about) fprintf(f, "\n%s\n", spec->about);
    bool any = false;
    for (const cli_opt *o = spec->opts; o->kind; o++) any |= is_option(o);
    if (!any) return;
    fprintf(f, "\noptions:\n");
    for (const cli_opt *o = spec->opts; o->kind; o++) {
        if (!is_option(o)) {
            fprintf(f, "\n%s:\n", o->help);
            continue;
        }
        char left[64];
        int n = 0;
        if (o->short_name)
            n = snprintf(left, sizeof left, "  -%c, --%s", o->short_name, o->name);
        else
            n = snprintf(left, sizeof left, "      --%s", o->name);
        if (o->meta && n > 0 && (size_t)n < sizeof left)
            snprintf(left + n, sizeof left - (size_t)n, " %s", o->meta);
        fprintf(f, "%-30s", left);
        if (strlen(left) >= 30) fprintf(f, "\n%-30s", "");
        fprintf(f, "%s", o->help);
        if (o->def) fprintf(f, " (default: %s)", o->def);
        fputc('\n', f);
    }
}

int cli_usage_error(const cli_spec *spec, const char *fmt, ...) {
    fprintf(stderr, "rlhf %s: ", spec->cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    cli_usage(spec, stderr);
    return CLI_EXIT_USAGE;
}

cli_opt *cli_find(cli_spec *spec, const char *name) {
    for (cli_opt *o = spec->opts; o->kind; o++)
        if (is_option(o) && strcmp(o->name, name) == 0) return o;
    rlhf_assert_fail("cli_find: unknown option name", __FILE__, __LINE__);
}

/* ---- values ------------------------------------------------------------------------------------------ */

static bool parse_i64(const char *s, long long *v) {
    if (!*s) return false;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *v = x;
    return true;
}

static int parse_bool_word(const char *s) { /* 1 true, 0 false, -1 not a boolean word */
    static const char *yes[] = {"yes", "true", "on", "1", "y"};
    static const char *no[] = {"no", "false", "off", "0", "n"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (strcmp(s, yes[i]) == 0) return 1;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (strcmp(s, no[i]) == 0) return 0;
    return -1;
}

/* Stores the value of o; returns 2 (after the message) if it is invalid, -1 when fine. */
static int set_value(cli_spec *spec, cli_opt *o, const char *v) {
    long long x;
    switch (o->kind) {
    case CLI_STR: *(const char **)o->dest = v; return -1;
    case CLI_BOOL: {
        int b = parse_bool_word(v);
        if (b < 0) return cli_usage_error(spec, "--%s: expected yes or no, got '%s'", o->name, v);
        *(bool *)o->dest = b;
        return -1;
    }
    case CLI_INT:
    case CLI_POS_INT:
    case CLI_NONNEG_INT: {
        const char *what = o->kind == CLI_POS_INT      ? "a positive integer"
                           : o->kind == CLI_NONNEG_INT ? "a non-negative integer"
                                                       : "an integer";
        bool ok = parse_i64(v, &x) && x >= INT32_MIN && x <= INT32_MAX;
        if (ok && o->kind == CLI_POS_INT && x <= 0) ok = false;
        if (ok && o->kind == CLI_NONNEG_INT && x < 0) ok = false;
        if (!ok) return cli_usage_error(spec, "--%s: expected %s, got '%s'", o->name, what, v);
        *(int32_t *)o->dest = (int32_t)x;
        return -1;
    }
    case CLI_U64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(v, &end, 10);
        if (!*v || *end || errno || v[strspn(v, " \t")] == '-')
            return cli_usage_error(spec, "--%s: expected a non-negative integer, got '%s'",
                                   o->name, v);
        *(uint64_t *)o->dest = (uint64_t)u;
        return -1;
    }
    case CLI_FLOAT:
    case CLI_NONNEG_FLOAT: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        bool ok = *v && !*end && errno == 0 && isfinite(d) && fabs(d) <= 3.0e38;
        if (ok && o->kind == CLI_NONNEG_FLOAT && d < 0) ok = false;
        if (!ok)
            return cli_usage_error(spec, "--%s: expected %s, got '%s'", o->name,
                                   o->kind == CLI_NONNEG_FLOAT ? "a non-negative number"
                                                               : "a number",
                                   v);
        *(float *)o->dest = (float)d;
        return -1;
    }
    default: rlhf_assert_fail("set_value: this option kind takes no value", __FILE__, __LINE__);
    }
}

static bool takes_value(const cli_opt *o) { return o->kind != CLI_FLAG && o->kind != CLI_BOOL; }

int cli_parse(cli_spec *spec, int argc, char **argv, char **pos, int *n_pos) {
    *n_pos = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') { /* positional ("-" alone is one too) */
            if (*n_pos >= spec->max_pos) {
                if (spec->max_pos == 0)
                    return cli_usage_error(spec, "unexpected argument '%s'", a);
                return cli_usage_error(spec, "too many arguments (at '%s')", a);
            }
            pos[(*n_pos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_usage(spec, stdout);
            return CLI_EXIT_OK;
        }
        cli_opt *o = NULL;
        const char *inline_val = NULL;
        if (a[1] == '-') { /* --name or --name=value */
            const char *name = a + 2;
            size_t len = strcspn(name, "=");
            if (name[len] == '=') inline_val = name + len + 1;
            for (cli_opt *p = spec->opts; p->kind; p++)
                if (is_option(p) && p->dest && strlen(p->name) == len &&
                    strncmp(p->name, name, len) == 0)
                    o = p;
            if (!o) return cli_usage_error(spec, "unknown option '--%.*s'", (int)len, name);
        } else { /* -x, -x value, -xvalue */
            for (cli_opt *p = spec->opts; p->kind; p++)
                if (is_option(p) && p->dest && p->short_name == a[1]) o = p;
            if (!o) return cli_usage_error(spec, "unknown option '-%c'", a[1]);
            if (a[2]) {
                if (!takes_value(o)) return cli_usage_error(spec, "unknown option '%s'", a);
                inline_val = a + 2;
            }
        }
        o->seen = true;
        if (o->kind == CLI_FLAG) {
            if (inline_val) return cli_usage_error(spec, "--%s takes no value", o->name);
            *(bool *)o->dest = true;
            continue;
        }
        if (o->kind == CLI_BOOL) {
            if (inline_val) {
                int rc = set_value(spec, o, inline_val);
                if (rc >= 0) return rc;
            } else if (i + 1 < argc && parse_bool_word(argv[i + 1]) >= 0) {
                *(bool *)o->dest = parse_bool_word(argv[++i]);
            } else {
                *(bool *)o->dest = true;
            }
            continue;
        }
        const char *v = inline_val;
        if (!v) {
            if (i + 1 >= argc) return cli_usage_error(spec, "--%s needs a value", o->name);
            v = argv[++i];
        }
        int rc = set_value(spec, o, v);
        if (rc >= 0) return rc;
    }
    if (*n_pos < spec->min_pos) return cli_usage_error(spec, "missing argument");
    return -1;
}

/* ---- common options and errors --------------------------------------------------------------- */

static volatile sig_atomic_t cli_signal_seen = 0; /* the signal that asked to stop, 0 none */

static void cli_on_signal(int sig) { cli_signal_seen = sig; }

void cli_stop_catch(cli_stop *s) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cli_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once (state files are written atomically) */
    cli_signal_seen = 0;
    sigaction(SIGINT, &sa, &s->old_int);
    sigaction(SIGTERM, &sa, &s->old_term);
    s->on = true;
}

void cli_stop_release(cli_stop *s) {
    if (!s->on) return;
    sigaction(SIGINT, &s->old_int, NULL);
    sigaction(SIGTERM, &s->old_term, NULL);
    s->on = false;
}

int cli_stop_signal(void) { return (int)cli_signal_seen; }

rlhf_status cli_check_vocab(const char *model_path, int32_t vocab_size, const char *tok_path,
                            const rlhf_tokenizer *tok) {
    int32_t tv = rlhf_tokenizer_vocab_size(tok);
    if (vocab_size == tv) return RLHF_OK;
    return RLHF_ERR(RLHF_ERR_ARG, "%s has vocab %d but tokenizer %s has %d", model_path,
                    (int)vocab_size, tok_path, (int)tv);
}

rlhf_status cli_setup(const cli_common *c, const rlhf_backend **be) {
    rlhf_log_set_level(c->quiet ? 0 : 1);
    if (c->threads > 0) rlhf_set_threads(c->threads);
    if (!be) return RLHF_OK;
    *be = NULL;
    rlhf_error_clear();
    char name[128];
    snprintf(name, sizeof name, "%s", c->device ? c->device : "cpu");
    if (c->precision) {
        const char *p = c->precision;
        if (strcmp(p, "fp32") != 0 && strcmp(p, "tf32") != 0 && strcmp(p, "bf16") != 0)
            return RLHF_ERR(RLHF_ERR_ARG, "--precision %s (expected fp32, tf32 or bf16)", p);
        if (strncmp(name, "cuda", 4) == 0) {
            if (strchr(name, '/'))
                return RLHF_ERR(RLHF_ERR_ARG, "--precision given twice (--device %s)", name);
            snprintf(name, sizeof name, "%s/%s", c->device, p);
        } else if (strcmp(p, "fp32") != 0) {
            return RLHF_ERR(RLHF_ERR_ARG, "--precision %s needs --device cuda (the CPU computes "
                            "in fp32)", p);
        }
    }
    rlhf_status st = rlhf_backend_get(name, be);
    if (st != RLHF_OK && !rlhf_last_error()[0])
        return RLHF_ERR(st, "device '%s' is not available", c->device);
    return st;
}

int cli_fail(const char *cmd, rlhf_status st) {
    const char *e = rlhf_last_error();
    if (e && e[0])
        fprintf(stderr, "rlhf %s: error: %s\n", cmd, e);
    else
        fprintf(stderr, "rlhf %s: error: %s\n", cmd, rlhf_status_name(st));
    return CLI_EXIT_FAIL;
}

rlhf_status cli_model_config(const cli_model_flags *f, bool trainable, rlhf_model_config *c) {
    *c = rlhf_config_default();
    c->dim = f->dim;
    c->hidden_dim = f->hidden;
    c->n_layer = f->layers;
    c->n_head = f->heads;
    c->n_head_kv = f->kv_heads;
    c->vocab_size = f->vocab;
    c->seq_len = f->seq;
    c->tied_head = f->tied;
    c->head = RLHF_HEAD_LM;
    c->trainable = trainable;
    return rlhf_config_validate(c);
}

void cli_print_config(FILE *f, const rlhf_model_config *c) {
    fprintf(f,
            "dim %d, hidden %d, layers %d, heads %d, kv-heads %d, vocab %d, seq %d, head %s%s, "
            "norm_eps %g, rope_theta %g\n",
            (int)c->dim, (int)c->hidden_dim, (int)c->n_layer, (int)c->n_head, (int)c->n_head_kv,
            (int)c->vocab_size, (int)c->seq_len, c->head == RLHF_HEAD_LM ? "lm" : "scalar",
            c->head == RLHF_HEAD_LM ? (c->tied_head ? " (tied)" : " (untied)") : "",
            (double)c->norm_eps, (double)c->rope_theta);
}

char *cli_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
