/* cli.h: internals of the `rlhf` program, shared by its command files (not part of the library).
 *
 * The program is a table of commands (main.c). Each command declares its options as a
 * NULL-terminated array of cli_opt and calls cli_parse(), which handles `--opt value`,
 * `--opt=value`, `-x value`, `--help`, numeric validation and the usage text. Exit statuses:
 * 0 success (and --help), 1 run-time failure (the library's last error is printed), 2 usage error.
 * Only main() returns to the system; command functions return the exit status.
 */
#ifndef RLHF_CLI_H
#define RLHF_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rlhf.h"

#define RLHF_VERSION "0.1.0"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* ---- command table --------------------------------------------------------------------------- */

/* A command; name may have two words ("model init"). fn gets argv[0] = name. */
typedef struct cli_command {
    const char *name;
    const char *summary; /* one line */
    int (*fn)(int argc, char **argv);
} cli_command;

int cmd_generate(int argc, char **argv);
int cmd_model_init(int argc, char **argv);
int cmd_model_info(int argc, char **argv);
int cmd_bench_train(int argc, char **argv);
int cmd_bench_sample(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenizer_train(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_rs_select(int argc, char **argv);
int cmd_rs_round(int argc, char **argv);
int cmd_rs_report(int argc, char **argv);
int cmd_rs_sweep(int argc, char **argv);
int cmd_rm_train(int argc, char **argv); /* cmd_rm.c */
int cmd_rm_eval(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_ppo(int argc, char **argv); /* cmd_ppo.c */
int cmd_gatt_generate(int argc, char **argv); /* cmd_gatt.c */
int cmd_gatt_eval(int argc, char **argv);
int cmd_report(int argc, char **argv); /* cmd_report.c */
int cmd_world_build(int argc, char **argv); /* cmd_world.c */
int cmd_world_judge(int argc, char **argv);
int cmd_world_compare(int argc, char **argv);
int cmd_demo(int argc, char **argv); /* cmd_demo.c */

/* ---- option parsing ---------------------------------------------------------------------------- */

typedef enum cli_kind {
    CLI_HEADER = 1, /* not an option: a section title in the help (help = title) */
    CLI_FLAG,       /* bool*: present = true */
    CLI_BOOL,       /* bool*: --x (true), --x=yes|no, --x yes|no (also true/false, on/off, 1/0) */
    CLI_STR,        /* const char ** */
    CLI_INT,        /* int32_t*, any value */
    CLI_POS_INT,    /* int32_t*, > 0 */
    CLI_NONNEG_INT, /* int32_t*, >= 0 */
    CLI_U64,        /* uint64_t*, >= 0 */
    CLI_FLOAT,      /* float*, finite */
    CLI_NONNEG_FLOAT, /* float*, finite, >= 0 */
} cli_kind;

typedef struct cli_opt {
    const char *name; /* long name without the dashes ("steps") */
    char short_name;  /* 'q', or 0 */
    cli_kind kind;
    void *dest;
    const char *meta; /* value placeholder in the help ("N"), NULL for flags */
    const char *def;  /* default as shown in the help; NULL: no default shown */
    const char *help; /* meaning */
    bool seen;        /* set by cli_parse when given on the command line */
} cli_opt;

/* Usage of one command. opts ends with an entry whose kind is 0. */
typedef struct cli_spec {
    const char *cmd;      /* "generate", "model init" */
    const char *synopsis; /* after "usage: rlhf <cmd> " */
    const char *about;    /* paragraph printed under the synopsis (may be NULL) */
    cli_opt *opts;
    int min_pos, max_pos; /* number of positional arguments accepted */
} cli_spec;

/* Parses argv[1..argc-1] (argv[0] is the command name). Positional arguments go to pos[]
 * (capacity spec->max_pos), their count to *n_pos. Returns -1 when the command should go on,
 * otherwise the exit status to return: 0 after --help (usage printed on stdout), 2 after a usage
 * error (message and usage on stderr). */
int cli_parse(cli_spec *spec, int argc, char **argv, char **pos, int *n_pos);
void cli_usage(const cli_spec *spec, FILE *f);
/* Prints "rlhf <cmd>: <message>" then the usage on stderr; returns 2. */
int cli_usage_error(const cli_spec *spec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The option named name in spec (programmer error if absent). */
cli_opt *cli_find(cli_spec *spec, const char *name);

/* Options accepted by every command that computes. */
typedef struct cli_common {
    int32_t threads;    /* 0 = OpenMP default */
    const char *device; /* "cpu", "cuda", "cuda:N" */
    bool quiet, verbose, progress;
    const char *precision; /* NULL, "fp32", "tf32", "bf16": CUDA matmul precision */
} cli_common;

#define CLI_COMMON_DEFAULTS {0, "cpu", false, false, false, NULL}
#define CLI_COMMON_OPTS(c)                                                                         \
    {"", 0, CLI_HEADER, NULL, NULL, NULL, "global options", false},                                \
    {"threads", 0, CLI_NONNEG_INT, &(c)->threads, "N", "0 = OpenMP default",                       \
     "threads for the CPU backend and BLAS", false},                                              \
    {"device", 0, CLI_STR, &(c)->device, "NAME", "cpu", "backend: cpu, cuda or cuda:N", false},    \
    {"precision", 0, CLI_STR, &(c)->precision, "P", "bf16 on cuda, fp32 on cpu",                  \
     "matmul precision: fp32, tf32 or bf16 (CUDA; storage stays fp32)", false},                   \
    {"quiet", 'q', CLI_FLAG, &(c)->quiet, NULL, NULL, "print results only", false},                \
    {"verbose", 'v', CLI_FLAG, &(c)->verbose, NULL, NULL, "print more (seed, timings)", false},    \
    {"progress", 0, CLI_FLAG, &(c)->progress, NULL, NULL,                                          \
     "progress line on stderr even when it is not a terminal", false},                            \
    {"help", 'h', CLI_FLAG, NULL, NULL, NULL, "print this help and exit", false}

/* Applies the common options: log level, thread count, backend (*be may be NULL if unused). */
rlhf_status cli_setup(const cli_common *c, const rlhf_backend **be);
/* Ctrl-C / SIGTERM for long commands: cli_stop_catch installs a handler that records the first
 * SIGINT or SIGTERM (SA_RESETHAND: a second one kills at once) so the command can save its state
 * and exit 128 + signal; cli_stop_release restores the previous handlers (no-op when not caught).
 * cli_stop_signal is the signal recorded since the last catch, 0 when none. */
typedef struct cli_stop {
    struct sigaction old_int, old_term;
    bool on;
} cli_stop;
void cli_stop_catch(cli_stop *s);
void cli_stop_release(cli_stop *s);
int cli_stop_signal(void);

/* RLHF_ERR_ARG naming both files when a model's vocabulary (vocab_size, from model_path) is not
 * the tokenizer's (tok, from tok_path); RLHF_OK otherwise. */
rlhf_status cli_check_vocab(const char *model_path, int32_t vocab_size, const char *tok_path,
                            const rlhf_tokenizer *tok);
/* Prints "rlhf <cmd>: error: <last error>" on stderr; returns 1. */
int cli_fail(const char *cmd, rlhf_status st);

/* Model shape flags shared by `model init` and the benches. */
typedef struct cli_model_flags {
    int32_t dim, hidden, layers, heads, kv_heads, vocab, seq;
    bool tied;
} cli_model_flags;
#define CLI_MODEL_FLAGS_DEFAULTS {288, 768, 6, 6, 6, 32000, 256, false}
#define CLI_MODEL_OPTS(f)                                                                          \
    {"", 0, CLI_HEADER, NULL, NULL, NULL, "model shape", false},                                   \
    {"dim", 0, CLI_POS_INT, &(f)->dim, "C", "288", "model width", false},                          \
    {"hidden", 0, CLI_POS_INT, &(f)->hidden, "FF", "768", "SwiGLU hidden width", false},           \
    {"layers", 0, CLI_POS_INT, &(f)->layers, "L", "6", "transformer blocks", false},               \
    {"heads", 0, CLI_POS_INT, &(f)->heads, "NH", "6", "query heads", false},                       \
    {"kv-heads", 0, CLI_POS_INT, &(f)->kv_heads, "NKV", "6", "key/value heads (GQA)", false},      \
    {"vocab", 0, CLI_POS_INT, &(f)->vocab, "V", "32000", "vocabulary size", false},                \
    {"seq", 0, CLI_POS_INT, &(f)->seq, "T", "256", "maximum sequence length", false},              \
    {"tied", 0, CLI_BOOL, &(f)->tied, "[yes|no]", "no", "LM head shares the token embedding",     \
     false}
/* Builds and validates a config (LM head) from the flags. */
rlhf_status cli_model_config(const cli_model_flags *f, bool trainable, rlhf_model_config *c);
/* Prints the config on one line to f. */
void cli_print_config(FILE *f, const rlhf_model_config *c);

/* ---- time and progress ------------------------------------------------------------------------- */

double cli_now(void);       /* seconds, CLOCK_MONOTONIC */
uint64_t cli_time_seed(void); /* a seed from the wall clock, never 0 */

/* A progress line on stderr ("\r" updates, rate and ETA), shown only when stderr is a terminal or
 * forced, never when quiet. Updates are throttled to 10 per second. */
typedef struct cli_progress {
    bool on;
    const char *label, *unit;
    int64_t total;
    double t0, last;
    int width; /* characters printed last time */
    int64_t base;   /* done at start (a resumed run): rate and ETA count from here */
    char note[128]; /* appended to the line when not empty (loss, lr, ...) */
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, const char *unit, int64_t total,
                        const cli_common *c);
void cli_progress_update(cli_progress *p, int64_t done);
void cli_progress_end(cli_progress *p); /* clears the line */
/* Sets p->note (printf format) and redraws at once (forced past the throttle when force). */
void cli_progress_note(cli_progress *p, int64_t done, bool force, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adapter for rlhf_sampler_run's progress callback (ctx is a cli_progress). */
void cli_progress_cb(void *ctx, int64_t done, int64_t total);

/* ---- helpers of the policy commands (cmd_sample.c) -------------------------------------------- */

struct rlhf_store;
struct ds_chat_tokens;
/* A malloc'ed copy of s; NULL when s is NULL or memory runs out. */
char *cli_strdup(const char *s);
/* Registers path (file or HF dir) in the run with role (kept when already registered). */
rlhf_status cli_checkpoint_register(struct rlhf_store *s, const char *path, const char *role,
                                    int64_t *id);
/* The path (and role, may be NULL) of checkpoint id, malloc'ed. */
rlhf_status cli_checkpoint_path(struct rlhf_store *s, int64_t id, char **path, char **role);

typedef struct cli_prompt {
    int64_t id;
    char *text, *system; /* system NULL when none */
    bool unsafe;
    int split; /* rlhf_split */
} cli_prompt;
typedef struct cli_prompts {
    cli_prompt *v; /* in id order */
    int64_t n, cap;
} cli_prompts;
/* The run's prompts of split which ("train", "eval", "all"), in id order. */
rlhf_status cli_prompts_load(struct rlhf_store *s, const char *which, cli_prompts *out);
void cli_prompts_free(cli_prompts *p);
const cli_prompt *cli_prompts_find(const cli_prompts *p, int64_t id); /* NULL when absent */
/* "[BOS] [INST] (<<SYS>>...) text [/INST]": the prompt to sample from. */
rlhf_status cli_prompt_render(const rlhf_tokenizer *tok, const cli_prompt *p, int32_t max_tokens,
                              struct ds_chat_tokens *out);

/* A reward model (scalar head required; RLHF_ERR_ARG for an LM checkpoint) loaded for inference
 * with B batch rows and T positions (T <= 0: the model's seq_len) (cmd_rm.c). */
rlhf_status cli_rm_load(const char *path, const rlhf_backend *be, int32_t B, int32_t T,
                        rlhf_model **out);

#endif /* RLHF_CLI_H */
