/* cmd_tokenizer_train.c: `rlhf tokenizer train`: trains a SentencePiece-style BPE tokenizer on
 * text files and writes a `tokenizer.model` that SentencePiece loads (see tokenizer_train.c). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_CORPUS 1024

int cmd_tokenizer_train(int argc, char **argv) {
    rlhf_tokenizer_train_opts o = rlhf_tokenizer_train_defaults();
    const char *first = NULL, *out_path = NULL, *dump = NULL;
    uint64_t max_bytes = 0;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"corpus", 'c', CLI_STR, &first, "FILE...", NULL,
         ".txt or .txt.gz files, one sentence a line (more files may follow); required", false},
        {"out", 'o', CLI_STR, &out_path, "tok.model", NULL, "model to write; required", false},
        {"vocab", 0, CLI_POS_INT, &o.vocab_size, "N", "4096",
         "vocabulary size, the 3 special and 256 byte pieces included", false},
        {"character-coverage", 0, CLI_NONNEG_FLOAT, &o.character_coverage, "F", "0.9995",
         "share of characters kept as pieces; the rarest go to byte pieces", false},
        {"max-piece-chars", 0, CLI_POS_INT, &o.max_piece_chars, "N", "16",
         "longest piece, in characters", false},
        {"max-bytes", 0, CLI_U64, &max_bytes, "N", "0 = all",
         "read only the first N bytes of text (whole lines, files in order)", false},
        {"max-chars", 0, CLI_U64, &max_bytes, "N", NULL, "same as --max-bytes", false},
        {"dump-words", 0, CLI_STR, &dump, "FILE", NULL,
         "debug: the trainer's segmentation of frequent words (count TAB pieces)", false},
        {"dump-count", 0, CLI_POS_INT, &o.dump_words, "N", "1000", "words in --dump-words", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "tokenizer train",
        "--corpus FILE... --vocab N --out tok.model [options]",
        "Trains a BPE tokenizer the way Llama's SentencePiece model was made: dummy prefix,\n"
        "spaces as U+2581, words split at spaces, digits split, byte fallback for rare\n"
        "characters. Pieces: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then the merges in\n"
        "order. The same corpus and options give the same file.",
        opts,
        0,
        MAX_CORPUS};
    char *pos[MAX_CORPUS];
    int n_pos;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!first) return cli_usage_error(&spec, "--corpus is required");
    if (!out_path) return cli_usage_error(&spec, "--out is required");
    if (!(o.character_coverage > 0.0f && o.character_coverage <= 1.0f))
        return cli_usage_error(&spec, "--character-coverage: expected a number in (0, 1], got %g",
                               (double)o.character_coverage);
    if (n_pos + 1 > MAX_CORPUS) return cli_usage_error(&spec, "too many corpus files");
    const char *files[MAX_CORPUS + 1];
    files[0] = first;
    for (int i = 0; i < n_pos; i++)
        files[i + 1] = pos[i];
    int n_files = n_pos + 1;

    rlhf_status st = cli_setup(&com, NULL);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);
    o.max_bytes = (int64_t)(max_bytes > (uint64_t)INT64_MAX ? INT64_MAX : max_bytes);
    o.dump_path = dump;
    cli_progress prog;
    cli_progress_start(&prog, "merges", "merges", 0, &com);
    o.progress = cli_progress_cb;
    o.progress_ctx = &prog;
    rlhf_tokenizer_train_stats s;
    st = rlhf_tokenizer_train(&o, files, n_files, out_path, &s);
    cli_progress_end(&prog);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);
    if (!com.quiet) {
        printf("read %d file(s): %" PRId64 " lines, %" PRId64 " bytes, %" PRId64 " words (%" PRId64
               " distinct) in %.2f s\n",
               n_files, s.lines, s.bytes, s.words, s.unique_words, s.seconds_read);
        printf("characters: %" PRId64 " distinct, %d kept (coverage %g), the rest byte fallback\n",
               s.chars_seen, (int)s.chars_kept, (double)o.character_coverage);
        printf("merges: %d pieces (%d repeated merges) in %.2f s\n", (int)s.merges,
               (int)s.dup_merges, s.seconds_merge);
        printf("wrote %s: vocab %d (259 special and byte pieces, %d merged, %d characters)\n",
               out_path, (int)s.vocab_size, (int)s.merges, (int)s.chars_kept);
    }
    return CLI_EXIT_OK;
}
