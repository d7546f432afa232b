/* ds.h: dataset readers and the Llama 2-Chat template (module prefix `ds_`).
 *
 * Readers turn real data files (Anthropic HH-RLHF JSONL[.gz], ShareGPT JSON, NeMo JSONL, MT-Bench
 * question JSONL, CSV through libcsv, plain and nested prompt lists) into a stream of records
 * (preference pairs, prompts, dialogues) delivered one at a time to a callback in file order. Every
 * string is validated UTF-8. A bad record is reported as "file:line: reason"; in stop mode the read
 * fails on the first one before delivering anything further, in skip mode it is counted and skipped.
 *
 * The chat template renders a dialogue to Llama 2-Chat token ids with a per-token role and turn
 * index, as Meta's llama `chat_completion` does (see ds_chat_render).
 *
 * The record types below are the interface with the run store (rlhf/store.c); fields may be added,
 * never renamed. */
#ifndef DS_H
#define DS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlhf.h"

typedef enum ds_track { DS_TRACK_NONE = 0, DS_TRACK_HELPFULNESS, DS_TRACK_SAFETY } ds_track;
typedef enum ds_rating { DS_RATING_NONE = 0, DS_RATING_SIGNIFICANTLY, DS_RATING_BETTER,
                         DS_RATING_SLIGHTLY, DS_RATING_NEGLIGIBLY, DS_RATING_UNSURE } ds_rating;
typedef enum ds_role { DS_ROLE_SYSTEM = 0, DS_ROLE_USER, DS_ROLE_ASSISTANT } ds_role;
typedef struct ds_turn { ds_role role; const char *text; } ds_turn;   /* UTF-8, validated */
typedef struct ds_dialogue {
    const char *system;          /* NULL when none */
    const ds_turn *turns; int32_t n_turns;   /* user/assistant alternating, starting with user */
} ds_dialogue;
typedef struct ds_pair {
    ds_track track;
    ds_dialogue context;         /* shared context, ends with the user turn being answered */
    const char *chosen, *rejected;
    ds_rating rating;            /* DS_RATING_NONE when the source has none (HH-RLHF) */
    int8_t chosen_safe, rejected_safe;   /* 1 safe, 0 unsafe, -1 unknown */
} ds_pair;
typedef struct ds_prompt {
    const char *text, *system;   /* system NULL when none */
    int8_t unsafe;               /* 1, 0, -1 unknown */
    const char *category;        /* topic/subtopic/category when the source has one, else NULL */
    const ds_turn *turns; int32_t n_turns;  /* multi-turn questions (MT-Bench); else NULL/0 */
} ds_prompt;
typedef enum ds_kind { DS_PAIR = 1, DS_PROMPT, DS_DIALOGUE } ds_kind;
typedef struct ds_record {
    ds_kind kind;
    const char *file; int64_t line;  /* where it starts (1-based line) */
    int64_t index;                   /* 0-based ordinal among the file's records, good and bad */
    union { ds_pair pair; ds_prompt prompt; ds_dialogue dialogue; };
} ds_record;                          /* valid only during the callback */
typedef enum ds_format { DS_FMT_AUTO = 0, DS_FMT_HH, DS_FMT_SHAREGPT, DS_FMT_NEMO,
                         DS_FMT_MTBENCH, DS_FMT_CSV_PAIRS, DS_FMT_CSV_PROMPTS,
                         DS_FMT_PROMPT_LIST } ds_format;
typedef struct ds_read_opts {
    ds_format format;
    ds_track track;      /* applied to pairs (HH has none in the file) */
    int8_t unsafe;       /* --unsafe: tag prompts unsafe (1); -1 = from the file or unknown
                            (0 is read as -1, so a zeroed struct means "from the file") */
    bool skip_bad;       /* false: the first bad record is an error (file:line: reason) */
    /* added beyond the interface text (zero = default): */
    int64_t max_record_bytes; /* record size limit; 0 = DS_MAX_RECORD_BYTES (64 MiB) */
    bool no_prescan;     /* stop mode normally validates the whole file before delivering anything;
                            true: one pass, records before a bad one are delivered (caller rolls back) */
} ds_read_opts;
typedef struct ds_read_stats { int64_t records, good, bad, rejected_same, rejected_context; } ds_read_stats;
/* sink returns RLHF_OK to go on; any error stops the read and is returned. bad, if not NULL, is
 * called for each bad record when skip_bad (file, line, reason). */
typedef rlhf_status (*ds_sink)(void *ctx, const ds_record *r);
typedef void (*ds_bad_fn)(void *ctx, const char *file, int64_t line, const char *reason);

/* Reads the file at path and calls sink for each good record, in file order. o may be NULL
 * (auto format, no track, unsafe from the file, stop mode). stats, if not NULL, is filled (also
 * on failure, with the counts so far).
 * Stop mode: the whole file is validated first (sink not called); the first bad record returns
 * RLHF_ERR_FORMAT with rlhf_last_error() "file:line: reason" and nothing is delivered. Then a
 * second pass delivers. (o->no_prescan: one pass; records before the bad one are delivered.)
 * Skip mode: bad records go to bad (if not NULL) with their line and reason, and are counted;
 * damage that ends the file (truncated gzip, unterminated JSON document or CSV quote) is one bad
 * record at the line where it starts and reading stops there with RLHF_OK.
 * Errors in both modes: missing/unreadable file (RLHF_ERR_IO), empty file, a CSV header without
 * the needed columns (RLHF_ERR_FORMAT, file:line). Sink errors are returned unchanged.
 * HH pairs with differing contexts or identical responses are counted in stats, not delivered,
 * not bad. Every delivered string is valid UTF-8 without NUL; records larger than
 * max_record_bytes are bad records. */
rlhf_status ds_read(const char *path, const ds_read_opts *o, ds_sink sink, ds_bad_fn bad,
                    void *ctx, ds_read_stats *stats);
/* Deterministic split by hash of the record's content: true = eval, for a fraction in [0,1]. */
bool ds_split_is_eval(const ds_record *r, double fraction);

/* ---- additions beyond the interface text ---------------------------------------------------- */

/* Largest record (line, or whole JSON document for array formats) accepted: 64 MiB. */
#define DS_MAX_RECORD_BYTES ((size_t)64 << 20)

/* The format ds_read would pick for path with DS_FMT_AUTO (extension, then a peek at the content).
 * Returns DS_FMT_AUTO when it cannot tell; RLHF_ERR_IO if the file cannot be opened. */
rlhf_status ds_format_detect(const char *path, ds_format *out);
/* "hh", "sharegpt", "nemo", "mtbench", "csv-pairs", "csv-prompts", "prompt-list", "auto";
 * ds_format_parse returns false for an unknown name. */
const char *ds_format_name(ds_format f);
bool ds_format_parse(const char *name, ds_format *out);
/* "helpfulness"/"safety"/"none" and "significantly"/"better"/"slightly"/"negligibly"/"unsure". */
const char *ds_track_name(ds_track t);
bool ds_track_parse(const char *name, ds_track *out);
const char *ds_rating_name(ds_rating r);
bool ds_rating_parse(const char *name, ds_rating *out);
const char *ds_role_name(ds_role r); /* "system", "user", "assistant" */

/* True when the n bytes at s are valid UTF-8 (no overlongs, surrogates or > U+10FFFF) with no NUL.
 * *bad_at gets the offset of the first bad byte when it returns false (may be NULL). */
bool ds_utf8_valid(const char *s, size_t n, size_t *bad_at);
/* A malloc'ed NUL-terminated copy of the n bytes at s in which every byte that does not begin a
 * valid UTF-8 sequence (and every NUL) is replaced by U+FFFD, as SentencePiece's decoder does with
 * invalid byte pieces; valid input comes back unchanged. NULL when out of memory. */
char *ds_utf8_sanitize(const char *s, size_t n);

/* ---- Llama 2-Chat template ------------------------------------------------------------------- */

/* A rendered dialogue: token ids with, per token, the role it belongs to and the dialogue turn
 * (index into the dialogue's turns; the system prompt counts as part of turn 0). Owned by the
 * caller, freed with ds_chat_free. */
typedef struct ds_chat_tokens {
    int32_t *ids;    /* (n) token ids, BOS/EOS as the tokenizer's ids */
    uint8_t *roles;  /* (n) ds_role of each token */
    int32_t *turns;  /* (n) turn index of each token */
    int32_t n;
} ds_chat_tokens;

/* Renders d with Meta's Llama 2-Chat format (llama/generation.py chat_completion):
 *   [BOS] "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]" " {answer} " [EOS]   (first turn)
 *   [BOS] "[INST] {user} [/INST]" " {answer} " [EOS]                                  (later turns)
 * and a final user turn with no answer renders [BOS] "[INST] {user} [/INST]" (a prompt to sample
 * from). As Meta does, user, system and answer texts are stripped of leading/trailing whitespace,
 * and each segment is encoded separately ("[INST] ... [/INST]" and " answer " are each one
 * SentencePiece encode with its leading dummy space, BOS/EOS added as ids, not text).
 * Roles: template tokens and user text are DS_ROLE_USER, the system text inside <<SYS>> (the
 * whole "[INST] <<SYS>>...<</SYS>>\n\n" prefix is encoded together with the user text, so each
 * token is assigned the role of the byte it starts at), the answer and its EOS DS_ROLE_ASSISTANT.
 * d must alternate user/assistant starting with user (RLHF_ERR_ARG otherwise). max_tokens <= 0
 * means no limit; a longer rendering is RLHF_ERR_ARG. */
rlhf_status ds_chat_render(const rlhf_tokenizer *tok, const ds_dialogue *d, int32_t max_tokens,
                           ds_chat_tokens *out);
void ds_chat_free(ds_chat_tokens *c); /* frees the arrays and zeroes *c; NULL-safe */
/* Text rendering of the same template with "<s>" and "</s>" written as text. *out is a
 * NUL-terminated heap string owned by the caller (free()). */
rlhf_status ds_chat_render_text(const ds_dialogue *d, char **out);

#endif /* DS_H */
