/* store.h: the run store (module prefix `rlhf_store_`), the SQLite database at the spine of a run.
 *
 * A run is a directory:
 *   RUN/rlhf.db      every stage's inputs and outputs except weights (SQLite, WAL mode)
 *   RUN/ckpt/        checkpoints (a row in `checkpoints` holds the path, sha256 and parent)
 *   RUN/logs/        human-readable logs
 * The schema (docs/store.md documents every table and column) is versioned with
 * `PRAGMA user_version` and brought up to date by a list of migrations when a run is opened; a
 * database newer than this program is refused. Foreign keys are on, statements use bound
 * parameters only, and writers group rows into one transaction per batch (rlhf_store_begin /
 * rlhf_store_commit) together with their stage's progress, which is how a stage killed at any
 * moment resumes with no duplicate or missing rows.
 *
 * The handle is opaque: only store.c includes sqlite3.h. Strings given to the store are UTF-8;
 * strings handed back through the row callbacks are valid only during the callback.
 * Token and float arrays are stored as little-endian BLOBs (see the pack helpers at the end). */
#ifndef RLHF_STORE_H
#define RLHF_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "rlhf.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RLHF_STORE_SCHEMA_VERSION 3 /* user_version of a database this program writes */
#define RLHF_STORE_DB_NAME        "rlhf.db"

typedef struct rlhf_store rlhf_store;

/* ---- open / close ------------------------------------------------------------------------------
 */

/* Opens the run at dir. create: make dir (and its parents' last level), RUN/ckpt and RUN/logs when
 * missing, and the database; an existing directory that holds files but no rlhf.db is refused
 * (RLHF_ERR_ARG: "not a run directory"), so that `init` never writes into an unrelated folder.
 * Without create, RUN/rlhf.db must exist (RLHF_ERR_IO otherwise).
 * Then: WAL mode, foreign keys on, busy timeout 10 s, and the migrations up to
 * RLHF_STORE_SCHEMA_VERSION in one transaction. Failures: a file that is not a database or is
 * corrupt -> RLHF_ERR_SQLITE naming the file; a newer schema -> RLHF_ERR_UNSUPPORTED; a version-0
 * database that already has tables (not ours) -> RLHF_ERR_FORMAT. *out is NULL on failure. */
rlhf_status rlhf_store_open(rlhf_store **out, const char *dir, bool create);
void rlhf_store_close(rlhf_store *s);            /* NULL-safe; rolls back an open transaction */
const char *rlhf_store_dir(const rlhf_store *s); /* the run directory as given; cannot fail */
/* The database's PRAGMA user_version. */
rlhf_status rlhf_store_user_version(rlhf_store *s, int32_t *out);
/* Journal mode ("wal") into buf (cap bytes). */
rlhf_status rlhf_store_journal_mode(rlhf_store *s, char *buf, int32_t cap);
/* PRAGMA integrity_check: *ok true when it says "ok"; otherwise msg (if not NULL, cap bytes) gets
 * its first line. */
rlhf_status rlhf_store_integrity_check(rlhf_store *s, bool *ok, char *msg, int32_t cap);

/* ---- transactions ------------------------------------------------------------------------------
 */

/* BEGIN IMMEDIATE (takes the write lock now, waiting up to the busy timeout). Not nestable:
 * RLHF_ERR_ARG when a transaction is already open. */
rlhf_status rlhf_store_begin(rlhf_store *s);
rlhf_status rlhf_store_commit(rlhf_store *s);
void rlhf_store_rollback(rlhf_store *s); /* no-op when no transaction is open; cannot fail */
bool rlhf_store_in_transaction(const rlhf_store *s);

/* ---- stages: one row per run of a stage (import, sft, sample, score, ...) ----------------------
 */

typedef enum rlhf_stage_status {
    RLHF_STAGE_RUNNING = 0,
    RLHF_STAGE_DONE,
    RLHF_STAGE_FAILED
} rlhf_stage_status;
const char *rlhf_store_stage_status_name(rlhf_stage_status st); /* "running", "done", "failed" */

typedef struct rlhf_store_stage {
    int64_t id;
    rlhf_stage_status status;
    int64_t progress; /* units of work committed (import: records consumed) */
    int64_t total;    /* units expected; -1 when unknown */
} rlhf_store_stage;

/* Starts a stage: a new row (status running, started now). key identifies the work for resuming
 * (NULL: none); params is a JSON object text (NULL: "{}"); total -1 when unknown. */
rlhf_status rlhf_store_stage_begin(rlhf_store *s, const char *kind, const char *key,
                                   const char *params_json, int64_t total, int64_t *id);
/* The most recent stage of this kind and key that is running or done (failed ones are ignored).
 * *found false when there is none. */
rlhf_status rlhf_store_stage_find(rlhf_store *s, const char *kind, const char *key,
                                  rlhf_store_stage *out, bool *found);
/* Sets the committed progress; call inside the transaction that writes the batch's rows. */
rlhf_status rlhf_store_stage_progress(rlhf_store *s, int64_t id, int64_t progress);
/* Marks the stage done (ended now) with an optional JSON result (NULL: none) and final progress. */
rlhf_status rlhf_store_stage_finish(rlhf_store *s, int64_t id, int64_t progress,
                                    const char *result_json);
/* Marks the stage failed (ended now) with the error text and an optional JSON result. */
rlhf_status rlhf_store_stage_fail(rlhf_store *s, int64_t id, const char *error,
                                  const char *result_json);
/* Deletes the prompts, pairs and dialogues written by the stage (an import that is rolled back). */
rlhf_status rlhf_store_stage_delete_rows(rlhf_store *s, int64_t id);

/* ---- rows
 * ---------------------------------------------------------------------------------------- */

/* Dialogue turns travel as JSON text: [{"role":"user"|"assistant","text":"..."}, ...]. */

typedef enum rlhf_split { RLHF_SPLIT_TRAIN = 0, RLHF_SPLIT_EVAL } rlhf_split;

typedef struct rlhf_store_prompt {
    int64_t id; /* set by the store on insert / in callbacks */
    const char *text;
    const char *system;     /* NULL when none */
    const char *turns_json; /* multi-turn questions, NULL otherwise */
    int8_t unsafe;          /* 1, 0, -1 unknown (NULL) */
    const char *category;   /* NULL when none */
    rlhf_split split;
    const char *source;
    int64_t stage_id, src_index; /* provenance: the import stage and the record's ordinal */
} rlhf_store_prompt;

typedef struct rlhf_store_pair {
    int64_t id;
    const char *track;        /* "helpfulness" | "safety" */
    const char *system;       /* NULL when none */
    const char *context_json; /* turns, ending with the user turn both responses answer */
    const char *chosen, *rejected;
    const char
        *rating; /* "significantly" | "better" | "slightly" | "negligibly" | "unsure" | NULL */
    int8_t chosen_safe, rejected_safe; /* 1, 0, -1 unknown */
    rlhf_split split;
    const char *source;
    int64_t stage_id, src_index;
} rlhf_store_pair;

typedef struct rlhf_store_dialogue {
    int64_t id;
    const char *system; /* NULL when none */
    const char *turns_json;
    const uint8_t *loss_mask; /* (n_mask) one byte per turn: 1 = train on it */
    int32_t n_mask;
    rlhf_split split;
    const char *source;
    int64_t stage_id, src_index;
} rlhf_store_dialogue;

typedef struct rlhf_store_sample {
    int64_t id;
    int64_t prompt_id, checkpoint_id, stage_id; /* stage_id 0: none */
    int32_t round, idx; /* idx: which of the samples drawn for this prompt, round and checkpoint */
    uint64_t seed;
    float temperature;
    const int32_t *tokens; /* (n_tokens) generated token ids */
    const float *logprobs; /* (n_tokens) log-probability of each under the sampler; NULL: none */
    int32_t n_tokens;
    const char *text;
    const char *finish; /* "eos" | "length" */
} rlhf_store_sample;

typedef struct rlhf_store_selection {
    int64_t id;
    int32_t round;
    int64_t prompt_id, sample_id, stage_id; /* stage_id 0: none */
    double score; /* filled by rlhf_store_selections_each: the selected sample's best score */
} rlhf_store_selection;

/* Inserts one row; *id (may be NULL) gets its rowid. A row that repeats a UNIQUE key of the table
 * (pairs/prompts/dialogues: stage and src_index; samples: prompt, round, checkpoint, idx; scores:
 * sample and reward model; selections: round and prompt) is not inserted again: *id gets the
 * existing row's id, so that a resumed stage may re-insert safely. Constraint violations (bad enum
 * text, a missing foreign row) are RLHF_ERR_SQLITE with SQLite's reason. */
rlhf_status rlhf_store_prompt_add(rlhf_store *s, const rlhf_store_prompt *p, int64_t *id);
rlhf_status rlhf_store_pair_add(rlhf_store *s, const rlhf_store_pair *p, int64_t *id);
rlhf_status rlhf_store_dialogue_add(rlhf_store *s, const rlhf_store_dialogue *d, int64_t *id);
rlhf_status rlhf_store_sample_add(rlhf_store *s, const rlhf_store_sample *x, int64_t *id);
rlhf_status rlhf_store_score_add(rlhf_store *s, int64_t sample_id, int64_t rm_checkpoint_id,
                                 double value, int64_t stage_id, int64_t *id);
/* A PPO rollout (table `rollouts`): one response of an iteration with its rewards, KL and
 * advantage. PPO rollouts are not rows of `samples` (the rejection-sampling pool). */
typedef struct rlhf_store_rollout {
    int64_t id;
    int64_t stage_id, prompt_id, checkpoint_id; /* the ppo stage; the policy that sampled */
    int32_t iteration, idx; /* the iteration it fed (1-based); its position in the batch */
    uint64_t seed;
    float temperature;
    const int32_t *tokens; /* (n_tokens) response ids */
    const float *logprobs; /* (n_tokens) sampler log-probs; NULL: none */
    int32_t n_tokens;
    const char *text;
    const char *finish; /* "eos" | "length" */
    const char *gate;   /* "helpfulness" | "safety": the score R_c took */
    double reward_help, reward_safe, reward_gated; /* raw scores and R_c */
    double reward_final;   /* whiten(logit(R_c)) + no-EOS penalty: the score PPO used */
    double kl;             /* sum over the response of the per-token KL to the reference */
    double advantage_mean; /* mean whitened advantage over the response's tokens */
} rlhf_store_rollout;
/* Inserts a rollout; a repeated (stage, iteration, idx) is not inserted again (*id, may be NULL,
 * gets the existing row's id), so that a redone iteration of a resumed stage writes nothing new. */
rlhf_status rlhf_store_rollout_add(rlhf_store *s, const rlhf_store_rollout *x, int64_t *id);

/* Records (or overwrites) the gold judgment of a sample by judge ("gold-helpfulness",
 * "gold-safety"; table `judgments`, written by `rlhf world judge`). stage_id 0: none. */
rlhf_status rlhf_store_judgment_set(rlhf_store *s, int64_t sample_id, const char *judge,
                                    double value, int64_t stage_id);

/* Replaces the selection of (round, prompt) if there is one. */
rlhf_status rlhf_store_selection_set(rlhf_store *s, int32_t round, int64_t prompt_id,
                                     int64_t sample_id, int64_t stage_id);
/* Records (or overwrites) the metric name at step of a stage. */
rlhf_status rlhf_store_metric_set(rlhf_store *s, int64_t stage_id, int64_t step, const char *name,
                                  double value);
/* Registers a checkpoint file: computes its sha256 (for a directory such as a Hugging Face
 * checkpoint: the sha256 of "name sha256\n" lines of the regular files in it, sorted by name); path is stored as given. role is one of
 * base, sft, policy, reference, reward-helpfulness, reward-safety, value. parent_id/stage_id 0:
 * none. Registering the same path again returns the existing id if the sha256 matches and
 * RLHF_ERR_FORMAT (the file changed) otherwise. */
rlhf_status rlhf_store_checkpoint_add(rlhf_store *s, const char *role, const char *path,
                                      int64_t parent_id, int64_t step, int64_t stage_id,
                                      int64_t *id);

/* ---- reading
 * --------------------------------------------------------------------------------------- */

/* Number of rows of table (one of the schema's table names; RLHF_ERR_ARG otherwise). */
rlhf_status rlhf_store_count(rlhf_store *s, const char *table, int64_t *n);

/* Row visitors in id order. The callback returns RLHF_OK to go on; any other status stops the walk
 * and is returned. Pointers in the row are valid only during the callback. */
typedef rlhf_status (*rlhf_store_prompt_fn)(void *ctx, const rlhf_store_prompt *p);
typedef rlhf_status (*rlhf_store_pair_fn)(void *ctx, const rlhf_store_pair *p);
typedef rlhf_status (*rlhf_store_dialogue_fn)(void *ctx, const rlhf_store_dialogue *d);
typedef rlhf_status (*rlhf_store_sample_fn)(void *ctx, const rlhf_store_sample *x);
typedef rlhf_status (*rlhf_store_selection_fn)(void *ctx, const rlhf_store_selection *x);
rlhf_status rlhf_store_prompts_each(rlhf_store *s, rlhf_store_prompt_fn fn, void *ctx);
rlhf_status rlhf_store_pairs_each(rlhf_store *s, rlhf_store_pair_fn fn, void *ctx);
rlhf_status rlhf_store_dialogues_each(rlhf_store *s, rlhf_store_dialogue_fn fn, void *ctx);
rlhf_status rlhf_store_samples_each(rlhf_store *s, rlhf_store_sample_fn fn, void *ctx);
rlhf_status rlhf_store_selections_each(rlhf_store *s, rlhf_store_selection_fn fn, void *ctx);

/* Rollouts ordered by (stage, iteration, idx); stage_id 0: every stage. */
typedef rlhf_status (*rlhf_store_rollout_fn)(void *ctx, const rlhf_store_rollout *x);
rlhf_status rlhf_store_rollouts_each(rlhf_store *s, int64_t stage_id, rlhf_store_rollout_fn fn,
                                     void *ctx);

/* A score with its reward model's role and its sample's round and prompt (scores_each). */
typedef struct rlhf_store_score {
    int64_t id, sample_id, checkpoint_id, stage_id; /* stage_id 0: none */
    double value;
    const char *role; /* the reward model checkpoint's role ("reward-helpfulness", ...) */
    int32_t round;    /* of the sample */
    int64_t prompt_id;
} rlhf_store_score;
typedef rlhf_status (*rlhf_store_score_fn)(void *ctx, const rlhf_store_score *x);
/* Every score, grouped by sample: ordered by (sample id, score id). */
rlhf_status rlhf_store_scores_each(rlhf_store *s, rlhf_store_score_fn fn, void *ctx);

/* A gold judgment with its sample's round, prompt and checkpoint (judgments_each). */
typedef struct rlhf_store_judgment {
    int64_t id, sample_id, stage_id; /* stage_id 0: none */
    const char *judge;
    double value;
    int32_t round, idx; /* of the sample */
    int64_t prompt_id, checkpoint_id;
} rlhf_store_judgment;
typedef rlhf_status (*rlhf_store_judgment_fn)(void *ctx, const rlhf_store_judgment *x);
/* Every judgment ordered by (sample id, judge). */
rlhf_status rlhf_store_judgments_each(rlhf_store *s, rlhf_store_judgment_fn fn, void *ctx);

/* A registered checkpoint (checkpoints_each, id order); parent_id/stage_id 0: none. */
typedef struct rlhf_store_checkpoint {
    int64_t id, parent_id, step, stage_id;
    const char *role, *path, *sha256;
} rlhf_store_checkpoint;
typedef rlhf_status (*rlhf_store_checkpoint_fn)(void *ctx, const rlhf_store_checkpoint *x);
rlhf_status rlhf_store_checkpoints_each(rlhf_store *s, rlhf_store_checkpoint_fn fn, void *ctx);

/* A stage row as `status` shows it. */
typedef struct rlhf_store_stage_info {
    int64_t id;
    const char *kind, *key, *params_json, *status, *started_at, *ended_at, *error, *result_json;
    int64_t progress, total; /* total -1 when unknown */
} rlhf_store_stage_info;
typedef rlhf_status (*rlhf_store_stage_fn)(void *ctx, const rlhf_store_stage_info *st);
rlhf_status rlhf_store_stages_each(rlhf_store *s, rlhf_store_stage_fn fn, void *ctx);
/* The last `per_stage` metrics (highest step) of each metric name, in stage order. */
typedef rlhf_status (*rlhf_store_metric_fn)(void *ctx, int64_t stage_id, int64_t step,
                                            const char *name, double value);
rlhf_status rlhf_store_metrics_last(rlhf_store *s, rlhf_store_metric_fn fn, void *ctx);
/* Every metric of a stage (stage_id 0: of every stage), ordered by (stage, name, step). */
rlhf_status rlhf_store_metrics_each(rlhf_store *s, int64_t stage_id, rlhf_store_metric_fn fn,
                                    void *ctx);

/* A row of rlhf_store_query_each: n columns, each as text (NULL for SQL NULL; numbers as SQLite
 * prints them) and as a number (NaN for NULL or text that is not a number). */
typedef struct rlhf_store_row {
    int32_t n;
    const char *const *text; /* (n) */
    const double *num;       /* (n) */
} rlhf_store_row;
typedef rlhf_status (*rlhf_store_row_fn)(void *ctx, const rlhf_store_row *row);
/* Runs one read-only statement written in the program (a SELECT; never SQL built from input)
 * with params[0..n_params) bound as text to ?1, ?2, ... (NULL entries bind NULL), calling fn for
 * each row. A statement that would write is refused (RLHF_ERR_ARG); an SQL error (such as a table
 * that an older run lacks) is RLHF_ERR_SQLITE with SQLite's reason. For readers of many tables at
 * once, such as `rlhf report`. */
rlhf_status rlhf_store_query_each(rlhf_store *s, const char *sql, const char *const *params,
                                  int32_t n_params, rlhf_store_row_fn fn, void *ctx);
/* *exists: whether the database has a table of that name (tables added by later schemas). */
rlhf_status rlhf_store_table_exists(rlhf_store *s, const char *table, bool *exists);

/* ---- helpers
 * ----------------------------------------------------------------------------------------- */

/* sha256 of a file as 64 lowercase hex digits + NUL (OpenSSL libcrypto); *size_out (may be NULL)
 * gets the file size. RLHF_ERR_IO naming the file when it cannot be read. */
rlhf_status rlhf_store_sha256_file(const char *path, char hex[65], int64_t *size_out);
/* Little-endian packing of n values into 4*n bytes (and back), whatever the host's byte order.
 * Cannot fail. */
void rlhf_store_pack_i32(const int32_t *v, int64_t n, uint8_t *out);
void rlhf_store_unpack_i32(const uint8_t *in, int64_t n, int32_t *v);
void rlhf_store_pack_f32(const float *v, int64_t n, uint8_t *out);
void rlhf_store_unpack_f32(const uint8_t *in, int64_t n, float *v);

#ifdef __cplusplus
}
#endif

#endif /* RLHF_STORE_H */
