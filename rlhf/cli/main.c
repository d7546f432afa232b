/* main.c: the `rlhf` program's entry point: the command table, top-level help and version.
 *
 * `rlhf <command> [options]`; commands may have two words (`rlhf model init`). Each command
 * function parses its own options (cli_parse) and returns the exit status: 0 ok, 1 run-time
 * failure, 2 usage error. Only main() hands a status back to the system. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_command commands[] = {
    /* the whole recipe */
    {"demo", "the whole recipe end to end on a synthetic world with gold judges (start here)",
     cmd_demo},
    /* a run and its data */
    {"init", "create a run directory (RUN/rlhf.db, ckpt/, logs/)", cmd_init},
    {"import", "import dataset files into a run (HH-RLHF, ShareGPT, NeMo, MT-Bench, CSV, lists)",
     cmd_import},
    {"status", "summarize a run: rows per table, stages, last metrics", cmd_status},
    {"report", "write the run report: one HTML page with SVG charts of every stage's results",
     cmd_report},
    {"export", "write a run's samples, pairs, selections, dialogues or prompts (JSONL/CSV)",
     cmd_export},
    /* the recipe's stages, in order */
    {"pretrain", "train a base model from scratch on plain text (.txt / .txt.gz)", cmd_pretrain},
    {"sft", "supervised fine-tuning on a run's dialogues or rejection-sampling selections", cmd_sft},
    {"rm train", "train a helpfulness or safety reward model on the run's preference pairs",
     cmd_rm_train},
    {"rm eval", "reward-model accuracy per preference strength, with 95% confidence intervals",
     cmd_rm_eval},
    {"sample", "K completions per prompt of a run from a policy, stored with provenance",
     cmd_sample},
    {"score", "score the run's samples with reward models (resumable)", cmd_score},
    {"rs select", "per prompt, the best combined reward over the rounds' samples", cmd_rs_select},
    {"rs report", "best-of-k reward curves of a round (store + SVG)", cmd_rs_report},
    {"rs sweep", "best-of-k curves at several temperatures, sampled and scored in memory",
     cmd_rs_sweep},
    {"rs round", "one rejection-sampling round: sample, score, select, fine-tune", cmd_rs_round},
    {"ppo", "PPO under a KL penalty with the gated reward (resumable)", cmd_ppo},
    {"gatt generate", "Ghost Attention data: a policy answers dialogues under a drawn instruction",
     cmd_gatt_generate},
    {"gatt eval", "instruction recall by turn (Table 30 layout): stored, printed, plotted",
     cmd_gatt_eval},
    {"world build", "write the demo world: corpus, SFT data, prompts, pairs, GAtt lists (seeded)",
     cmd_world_build},
    {"world judge", "gold-judge a run's samples with the demo world's judges (table judgments)",
     cmd_world_judge},
    {"world compare", "gold helpfulness of round B vs round A per prompt: win rate with a CI",
     cmd_world_compare},
    /* models and tokenizers */
    {"generate", "sample text from a checkpoint (greedy or temperature, top-k, top-p)", cmd_generate},
    {"model init", "write a randomly initialized llama2.c checkpoint", cmd_model_init},
    {"model info", "print a checkpoint's config, parameter count and tensor table", cmd_model_info},
    {"convert", "convert a checkpoint between llama2.c .bin and Hugging Face directories",
     cmd_convert},
    {"tokenizer train", "train a SentencePiece-style BPE tokenizer.model on text files",
     cmd_tokenizer_train},
    {"tokenize", "text to token ids and back (.model or .bin tokenizer)", cmd_tokenize},
    /* benchmarks */
    {"bench train", "time training steps (forward, backward, AdamW) of a random model",
     cmd_bench_train},
    {"bench sample", "time batched sampling of K sequences through the KV cache",
     cmd_bench_sample},
};
#define N_COMMANDS (int)(sizeof commands / sizeof *commands)

static void print_usage(FILE *f) {
    fprintf(f,
            "usage: rlhf <command> [options]\n"
            "\n"
            "An RLHF toolkit around a Llama-2 transformer (the Llama 2-Chat recipe in C).\n"
            "\n"
            "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "  rlhf <command> --help    options of a command, with their defaults\n"
            "  rlhf --version           version and backends\n"
            "\n"
            "exit status: 0 success, 1 run-time error, 2 usage error.\n");
}

static void print_version(void) {
    printf("rlhf %s (backends: cpu", RLHF_VERSION);
#ifdef RLHF_HAVE_CUDA
    printf(", cuda");
#endif
    printf(")\n");
}

/* Finds the command named by argv[1] (and argv[2] for two-word commands); *words gets the number
 * of words used. Returns NULL when none matches. */
static const cli_command *find_command(int argc, char **argv, int *words) {
    for (int i = 0; i < N_COMMANDS; i++) {
        const char *name = commands[i].name;
        const char *sp = strchr(name, ' ');
        if (!sp) {
            if (strcmp(name, argv[1]) == 0) {
                *words = 1;
                return &commands[i];
            }
        } else if (argc > 2 && strlen(argv[1]) == (size_t)(sp - name) &&
                   strncmp(name, argv[1], (size_t)(sp - name)) == 0 &&
                   strcmp(sp + 1, argv[2]) == 0) {
            *words = 2;
            return &commands[i];
        }
    }
    return NULL;
}

/* True when word is the first word of some two-word command (a command group like "model"). */
static bool is_group(const char *word) {
    for (int i = 0; i < N_COMMANDS; i++) {
        const char *sp = strchr(commands[i].name, ' ');
        if (sp && strlen(word) == (size_t)(sp - commands[i].name) &&
            strncmp(commands[i].name, word, (size_t)(sp - commands[i].name)) == 0)
            return true;
    }
    return false;
}

static void print_group(FILE *f, const char *group) {
    fprintf(f, "usage: rlhf %s <subcommand> [options]\n\nsubcommands:\n", group);
    size_t gl = strlen(group);
    for (int i = 0; i < N_COMMANDS; i++)
        if (strncmp(commands[i].name, group, gl) == 0 && commands[i].name[gl] == ' ')
            fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  rlhf %s <subcommand> --help    options of a subcommand\n", group);
}

static int run_command(int argc, char **argv) {
    int words = 0;
    const cli_command *cmd = find_command(argc, argv, &words);
    if (!cmd) {
        if (is_group(argv[1])) {
            bool help = argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0 ||
                                     strcmp(argv[2], "help") == 0);
            if (help) {
                print_group(stdout, argv[1]);
                return CLI_EXIT_OK;
            }
            if (argc > 2)
                fprintf(stderr, "rlhf %s: unknown subcommand '%s'\n\n", argv[1], argv[2]);
            else
                fprintf(stderr, "rlhf %s: missing subcommand\n\n", argv[1]);
            print_group(stderr, argv[1]);
            return CLI_EXIT_USAGE;
        }
        fprintf(stderr, "rlhf: unknown command '%s'\n\n", argv[1]);
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char **sub = argv + words; /* sub[0] becomes the command name */
    sub[0] = (char *)cmd->name;
    return cmd->fn(argc - words, sub);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(a, "help") == 0) {
        if (argc == 2) {
            print_usage(stdout);
            return CLI_EXIT_OK;
        }
        /* `rlhf help <command>` = `rlhf <command> --help` */
        char *hargv[4] = {argv[0], argv[2], argc > 3 ? argv[3] : "--help", "--help"};
        int hargc = argc > 3 ? 4 : 3;
        return run_command(hargc, hargv);
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "version") == 0) {
        print_version();
        return CLI_EXIT_OK;
    }
    if (a[0] == '-') {
        fprintf(stderr, "rlhf: unknown option '%s' (options go after the command)\n\n", a);
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return run_command(argc, argv);
}
