/* test_store.c: the run store (rlhf/store.h): create/open, migrations and user_version, WAL,
 * foreign keys and CHECK constraints enforced, BLOB round trips, the stage API, idempotent
 * re-inserts, checkpoints with sha256, and the error paths (unwritable place, not-a-database file,
 * corrupt database, newer schema, foreign tables).
 *
 * The test crafts raw databases (version 0, a newer version, foreign tables) with SQLite itself;
 * the library keeps sqlite3.h inside store.c. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "store_schema.h" /* the v1 schema text, to build a version-1 database by hand */
#include "test.h"

static char root[256];

static void path_of(char *buf, size_t cap, const char *rel) {
    snprintf(buf, cap, "%s/%s", root, rel);
}

/* Runs SQL on a raw database file (creating it). */
static int raw_exec(const char *file, const char *sql) {
    sqlite3 *db = NULL;
    int rc = sqlite3_open(file, &db);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static int64_t raw_int(const char *file, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open(file, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_create_open(void) {
    char run[512], db[600], sub[600];
    path_of(run, sizeof run, "run1");
    rlhf_store *s = NULL;
    CHECK(rlhf_store_open(&s, run, false) == RLHF_ERR_IO); /* no run yet */
    CHECK(s == NULL);
    CHECK(strstr(rlhf_last_error(), "run1") != NULL);
    CHECK_OK(rlhf_store_open(&s, run, true));
    CHECK(s != NULL);
    int32_t v = -1;
    CHECK_OK(rlhf_store_user_version(s, &v));
    CHECK(v == RLHF_STORE_SCHEMA_VERSION);
    char mode[16] = "";
    CHECK_OK(rlhf_store_journal_mode(s, mode, sizeof mode));
    CHECK(strcmp(mode, "wal") == 0);
    CHECK(strcmp(rlhf_store_dir(s), run) == 0);
    int64_t n = -1;
    CHECK_OK(rlhf_store_count(s, "pairs", &n));
    CHECK(n == 0);
    CHECK(rlhf_store_count(s, "pairs; DROP TABLE pairs", &n) == RLHF_ERR_ARG);
    bool ok = false;
    CHECK_OK(rlhf_store_integrity_check(s, &ok, NULL, 0));
    CHECK(ok);
    rlhf_store_close(s);
    struct stat st;
    snprintf(sub, sizeof sub, "%s/ckpt", run);
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    snprintf(sub, sizeof sub, "%s/logs", run);
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    /* reopen with and without create: idempotent */
    CHECK_OK(rlhf_store_open(&s, run, true));
    rlhf_store_close(s);
    CHECK_OK(rlhf_store_open(&s, run, false));
    rlhf_store_close(s);
    rlhf_store_close(NULL);
    snprintf(db, sizeof db, "%s/rlhf.db", run);
    CHECK(raw_int(db, "PRAGMA user_version") == RLHF_STORE_SCHEMA_VERSION);
}

static void test_migrations(void) {
    char run[512], db[600];
    rlhf_store *s = NULL;
    /* an empty version-0 database migrates to the current version */
    path_of(run, sizeof run, "v0");
    mkdir(run, 0777);
    snprintf(db, sizeof db, "%s/rlhf.db", run);
    CHECK(raw_exec(db, "PRAGMA user_version = 0") == SQLITE_OK);
    CHECK_OK(rlhf_store_open(&s, run, false));
    int32_t v = -1;
    if (s) CHECK_OK(rlhf_store_user_version(s, &v));
    CHECK(v == RLHF_STORE_SCHEMA_VERSION);
    rlhf_store_close(s);
    CHECK(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'") == 11);
    /* a newer version is refused, and the file is left alone */
    path_of(run, sizeof run, "v99");
    mkdir(run, 0777);
    snprintf(db, sizeof db, "%s/rlhf.db", run);
    CHECK(raw_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 99") == SQLITE_OK);
    CHECK(rlhf_store_open(&s, run, false) == RLHF_ERR_UNSUPPORTED);
    CHECK(s == NULL);
    CHECK(strstr(rlhf_last_error(), "newer") != NULL);
    CHECK(raw_int(db, "PRAGMA user_version") == 99);
    /* version 0 with foreign tables: not ours */
    path_of(run, sizeof run, "foreign");
    mkdir(run, 0777);
    snprintf(db, sizeof db, "%s/rlhf.db", run);
    CHECK(raw_exec(db, "CREATE TABLE t (x)") == SQLITE_OK);
    CHECK(rlhf_store_open(&s, run, false) == RLHF_ERR_FORMAT);
    CHECK(raw_int(db, "SELECT count(*) FROM sqlite_schema") == 1);
}

/* Rollouts seen by a walk: the count, the sum of idx, the first row's fields. */
typedef struct seen_rollouts {
    int n;
    int64_t idx_sum, stage_id;
    int32_t iteration, n_tokens, tokens[4];
    float lp0;
    double reward_final, kl, advantage_mean;
    char gate[16], finish[8];
} seen_rollouts;

static rlhf_status see_rollout(void *ctx, const rlhf_store_rollout *x) {
    seen_rollouts *r = ctx;
    if (r->n == 0) {
        r->stage_id = x->stage_id;
        r->iteration = x->iteration;
        r->n_tokens = x->n_tokens;
        for (int32_t i = 0; i < x->n_tokens && i < 4; i++) r->tokens[i] = x->tokens[i];
        r->lp0 = x->logprobs ? x->logprobs[0] : 0.0f;
        r->reward_final = x->reward_final;
        r->kl = x->kl;
        r->advantage_mean = x->advantage_mean;
        snprintf(r->gate, sizeof r->gate, "%s", x->gate);
        snprintf(r->finish, sizeof r->finish, "%s", x->finish);
    }
    r->idx_sum += x->idx;
    r->n++;
    return RLHF_OK;
}

typedef struct judg_sum {
    int n, stage_ok;
    double sum;
} judg_sum;
static rlhf_status judg_add(void *ctx, const rlhf_store_judgment *x) {
    judg_sum *j = ctx;
    j->n++;
    j->sum += x->value;
    if (!strcmp(x->judge, "gold-helpfulness")) j->stage_ok = x->stage_id > 0 && x->round == 0;
    return RLHF_OK;
}

static rlhf_status first_prompt_text(void *ctx, const rlhf_store_prompt *p) {
    char *buf = ctx;
    if (!buf[0]) snprintf(buf, 64, "%s", p->text);
    return RLHF_OK;
}

/* store-mig-v1: a version-1 database (built with the v1 migration text alone, rows written by
 * hand) opens as version 2: its rows are intact, `rollouts` exists and takes rows; the v2 step
 * ran once (a reopen changes nothing). */
static void test_migrate_v1(void) {
    char run[512], db[600];
    path_of(run, sizeof run, "v1");
    mkdir(run, 0777);
    snprintf(db, sizeof db, "%s/rlhf.db", run);
    CHECK(raw_exec(db, rlhf_store_migrations[0]) == SQLITE_OK);
    CHECK(raw_exec(db,
                   "PRAGMA user_version = 1;"
                   "INSERT INTO stages (kind, key, started_at) VALUES ('import', 'k', 'now');"
                   "INSERT INTO prompts (text, split, source, stage_id, src_index) "
                   "VALUES ('old prompt', 'train', 'test', 1, 0);"
                   "INSERT INTO checkpoints (role, path, sha256, created_at) "
                   "VALUES ('policy', 'p', printf('%064d', 0), 'now');"
                   "INSERT INTO samples (prompt_id, round, checkpoint_id, seed, temperature, "
                   "tokens, text, finish) VALUES (1, 0, 1, 7, 1.0, x'01000000', 'a', 'eos');"
                   "INSERT INTO metrics (stage_id, step, name, value) VALUES (1, 0, 'm', 2.5);") ==
          SQLITE_OK);
    CHECK(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'rollouts'") == 0);
    rlhf_store *s = NULL;
    CHECK_OK(rlhf_store_open(&s, run, false));
    if (!s) return;
    int32_t v = -1;
    CHECK_OK(rlhf_store_user_version(s, &v));
    CHECK(v == 3 && v == RLHF_STORE_SCHEMA_VERSION);
    static const struct { const char *table; int64_t n; } want[] = {
        {"stages", 1}, {"prompts", 1}, {"checkpoints", 1}, {"samples", 1},
        {"metrics", 1}, {"rollouts", 0}, {"judgments", 0}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        int64_t n = -1;
        CHECK_OK(rlhf_store_count(s, want[i].table, &n));
        CHECKF(n == want[i].n, "%s: %lld rows after the migration", want[i].table, (long long)n);
    }
    char text[64] = "";
    CHECK_OK(rlhf_store_prompts_each(s, first_prompt_text, text));
    CHECK(strcmp(text, "old prompt") == 0);
    int64_t ppo = 0, rid = 0;
    CHECK_OK(rlhf_store_stage_begin(s, "ppo", "k", NULL, 1, &ppo));
    const int32_t tok[2] = {5, 2};
    const float lp[2] = {-0.5f, -1.25f};
    rlhf_store_rollout r = {.stage_id = ppo, .prompt_id = 1, .checkpoint_id = 1, .iteration = 1,
                            .idx = 0, .seed = 3, .temperature = 1.0f, .tokens = tok,
                            .logprobs = lp, .n_tokens = 2, .text = "x", .finish = "eos",
                            .gate = "helpfulness", .reward_final = 0.5};
    CHECK_OK(rlhf_store_rollout_add(s, &r, &rid));
    CHECK(rid > 0);
    /* version 3: judgments of the migrated sample; a second set overwrites */
    CHECK_OK(rlhf_store_judgment_set(s, 1, "gold-helpfulness", 0.25, 0));
    CHECK_OK(rlhf_store_judgment_set(s, 1, "gold-helpfulness", 0.75, ppo));
    CHECK_OK(rlhf_store_judgment_set(s, 1, "gold-safety", 1.0, 0));
    CHECK(rlhf_store_judgment_set(s, 99, "gold-safety", 1.0, 0) == RLHF_ERR_SQLITE); /* no sample */
    rlhf_error_clear();
    judg_sum js = {0};
    CHECK_OK(rlhf_store_judgments_each(s, judg_add, &js));
    CHECK(js.n == 2 && fabs(js.sum - 1.75) < 1e-12 && js.stage_ok == 1);
    rlhf_store_close(s);
    CHECK(raw_int(db, "PRAGMA user_version") == 3);
    CHECK(raw_int(db, "SELECT count(*) FROM samples WHERE seed = 7 AND text = 'a'") == 1);
    CHECK(raw_int(db, "SELECT count(*) FROM rollouts") == 1);
    CHECK_OK(rlhf_store_open(&s, run, false)); /* already at 3: nothing to do */
    rlhf_store_close(s);
    CHECK(raw_int(db, "SELECT count(*) FROM rollouts") == 1);
}

/* store-rollouts: add / re-add (a no-op returning the same id) / read back by stage, CHECKs. */
static void test_rollouts(void) {
    char run[512], ck[600];
    path_of(run, sizeof run, "rollouts");
    rlhf_store *s = NULL;
    CHECK_OK(rlhf_store_open(&s, run, true));
    if (!s) return;
    int64_t imp = 0, st1 = 0, st2 = 0, pid = 0, cid = 0;
    CHECK_OK(rlhf_store_stage_begin(s, "import", "k", NULL, -1, &imp));
    rlhf_store_prompt p = {.text = "p", .unsafe = -1, .source = "t", .stage_id = imp};
    CHECK_OK(rlhf_store_prompt_add(s, &p, &pid));
    snprintf(ck, sizeof ck, "%s/ckpt/w.bin", run);
    FILE *f = fopen(ck, "wb");
    if (f) {
        fputs("weights", f);
        fclose(f);
    }
    CHECK_OK(rlhf_store_checkpoint_add(s, "policy", ck, 0, 0, 0, &cid));
    CHECK_OK(rlhf_store_stage_begin(s, "ppo", "a", NULL, 2, &st1));
    CHECK_OK(rlhf_store_stage_begin(s, "ppo", "b", NULL, 2, &st2));
    const int32_t tok[3] = {7, 8, 2};
    const float lp[3] = {-0.25f, -1.0f, -2.0f};
    rlhf_store_rollout r = {.prompt_id = pid, .checkpoint_id = cid, .seed = 9, .temperature = 1.0f,
                            .tokens = tok, .logprobs = lp, .n_tokens = 3, .text = "seven eight",
                            .finish = "eos", .gate = "safety", .reward_help = 0.25,
                            .reward_safe = 0.75, .reward_gated = 0.75, .reward_final = -1.5,
                            .kl = 0.125, .advantage_mean = 0.0625};
    int64_t first = 0, again = 0;
    CHECK_OK(rlhf_store_begin(s));
    for (int32_t stg = 0; stg < 2; stg++)
        for (int32_t it = 1; it <= 2; it++)
            for (int32_t j = 0; j < 3; j++) {
                r.stage_id = stg ? st2 : st1;
                r.iteration = it;
                r.idx = j;
                int64_t id = 0;
                CHECK_OK(rlhf_store_rollout_add(s, &r, &id));
                if (!first) first = id;
            }
    CHECK_OK(rlhf_store_commit(s));
    /* a redone iteration: the same key is not inserted again */
    r.stage_id = st1;
    r.iteration = 1;
    r.idx = 0;
    CHECK_OK(rlhf_store_rollout_add(s, &r, &again));
    CHECK(again == first);
    int64_t n = 0;
    CHECK_OK(rlhf_store_count(s, "rollouts", &n));
    CHECK(n == 12);
    seen_rollouts all = {0}, one = {0};
    CHECK_OK(rlhf_store_rollouts_each(s, 0, see_rollout, &all));
    CHECK(all.n == 12 && all.idx_sum == 12);
    CHECK_OK(rlhf_store_rollouts_each(s, st2, see_rollout, &one));
    CHECK(one.n == 6 && one.stage_id == st2 && one.iteration == 1);
    CHECK(one.n_tokens == 3 && one.tokens[0] == 7 && one.tokens[2] == 2 && one.lp0 == -0.25f);
    CHECK(one.reward_final == -1.5 && one.kl == 0.125 && one.advantage_mean == 0.0625);
    CHECK(strcmp(one.gate, "safety") == 0 && strcmp(one.finish, "eos") == 0);
    /* constraints: bad gate, iteration 0, a missing stage */
    r.iteration = 3;
    r.gate = "both";
    CHECK(rlhf_store_rollout_add(s, &r, NULL) == RLHF_ERR_SQLITE);
    r.gate = "helpfulness";
    r.iteration = 0;
    CHECK(rlhf_store_rollout_add(s, &r, NULL) == RLHF_ERR_SQLITE);
    r.iteration = 3;
    r.stage_id = 999;
    CHECK(rlhf_store_rollout_add(s, &r, NULL) == RLHF_ERR_SQLITE);
    rlhf_error_clear();
    /* rollouts are not samples: the rejection-sampling pool stays empty */
    CHECK_OK(rlhf_store_count(s, "samples", &n));
    CHECK(n == 0);
    rlhf_store_close(s);
}

static void test_errors(void) {
    char run[1024], file[1024];
    rlhf_store *s = NULL;
    /* a path under a regular file cannot be created (root ignores permission bits) */
    path_of(file, sizeof file, "plainfile");
    FILE *f = fopen(file, "w");
    fputs("x", f);
    fclose(f);
    snprintf(run, sizeof run, "%.900s/run", file);
    CHECK(rlhf_store_open(&s, run, true) != RLHF_OK);
    CHECK(s == NULL);
    CHECK(strstr(rlhf_last_error(), "plainfile") != NULL);
    /* a file where the run directory should be */
    CHECK(rlhf_store_open(&s, file, true) == RLHF_ERR_ARG);
    /* a non-empty directory that is not a run */
    path_of(run, sizeof run, "notrun");
    mkdir(run, 0777);
    snprintf(file, sizeof file, "%.900s/data.txt", run);
    f = fopen(file, "w");
    fputs("x", f);
    fclose(f);
    CHECK(rlhf_store_open(&s, run, true) == RLHF_ERR_ARG);
    CHECK(strstr(rlhf_last_error(), "not a run directory") != NULL);
    CHECK(rlhf_store_open(&s, "", true) == RLHF_ERR_ARG);
    /* rlhf.db that is not a database */
    path_of(run, sizeof run, "notdb");
    mkdir(run, 0777);
    snprintf(file, sizeof file, "%.900s/rlhf.db", run);
    f = fopen(file, "w");
    for (int i = 0; i < 200; i++)
        fputs("this is not a database\n", f);
    fclose(f);
    CHECK(rlhf_store_open(&s, run, false) == RLHF_ERR_SQLITE);
    CHECK(strstr(rlhf_last_error(), "not a database") != NULL);
    CHECK(strstr(rlhf_last_error(), "rlhf.db") != NULL);
    /* a corrupt database: a valid header, the schema page overwritten */
    path_of(run, sizeof run, "corrupt");
    CHECK_OK(rlhf_store_open(&s, run, true));
    rlhf_store_close(s);
    s = NULL;
    snprintf(file, sizeof file, "%.900s/rlhf.db", run);
    f = fopen(file, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 100, SEEK_SET);
        for (int i = 100; i < 4096; i++)
            fputc(0xA5, f);
        fclose(f);
    }
    rlhf_status st = rlhf_store_open(&s, run, false);
    CHECK(st == RLHF_ERR_SQLITE);
    CHECK(s == NULL);
    CHECKF(strstr(rlhf_last_error(), "malformed") || strstr(rlhf_last_error(), "corrupt") ||
               strstr(rlhf_last_error(), "not a database"),
           "%s", rlhf_last_error());
}

static void test_blobs(void) {
    int32_t t[5] = {0, 1, -1, INT32_MAX, INT32_MIN}, t2[5];
    float x[4] = {0.0f, -1.5f, 3.25e-7f, 1e30f}, x2[4];
    uint8_t b[20];
    rlhf_store_pack_i32(t, 5, b);
    CHECK(b[0] == 0 && b[4] == 1 && b[5] == 0 && b[8] == 0xff && b[12] == 0xff && b[15] == 0x7f &&
          b[16] == 0 && b[19] == 0x80);
    rlhf_store_unpack_i32(b, 5, t2);
    CHECK(memcmp(t, t2, sizeof t) == 0);
    rlhf_store_pack_f32(x, 4, b);
    CHECK(b[4] == 0 && b[7] == 0xbf && b[6] == 0xc0); /* -1.5f = 0xbfc00000 */
    rlhf_store_unpack_f32(b, 4, x2);
    CHECK(memcmp(x, x2, sizeof x) == 0);
}

typedef struct seen {
    int n;
    int32_t tokens[8];
    float lp[8];
    int32_t n_tokens;
    bool lp_null;
    uint64_t seed;
    char text[64];
} seen;

static rlhf_status see_sample(void *ctx, const rlhf_store_sample *x) {
    seen *s = ctx;
    if (s->n == 0) {
        s->n_tokens = x->n_tokens;
        for (int32_t i = 0; i < x->n_tokens && i < 8; i++) {
            s->tokens[i] = x->tokens[i];
            if (x->logprobs) s->lp[i] = x->logprobs[i];
        }
        s->lp_null = x->logprobs == NULL;
        s->seed = x->seed;
        snprintf(s->text, sizeof s->text, "%s", x->text);
    }
    s->n++;
    return RLHF_OK;
}

static rlhf_status count_pairs(void *ctx, const rlhf_store_pair *p) {
    int *n = ctx;
    if (p->rating == NULL && p->chosen_safe == 1 && p->rejected_safe == -1) (*n)++;
    return RLHF_OK;
}
static rlhf_status stop_walk(void *ctx, const rlhf_store_prompt *p) {
    (void)p;
    (*(int *)ctx)++;
    return RLHF_ERR_ARG;
}

static void test_rows(void) {
    char run[512], ck[600];
    path_of(run, sizeof run, "rows");
    rlhf_store *s = NULL;
    CHECK_OK(rlhf_store_open(&s, run, true));
    if (!s) return;
    /* stages */
    int64_t sid = 0, sid2 = 0;
    CHECK_OK(rlhf_store_stage_begin(s, "import", "k1", "{\"file\":\"x\"}", -1, &sid));
    CHECK(sid > 0);
    CHECK(rlhf_store_stage_begin(s, "import", "k2", "not json", -1, &sid2) == RLHF_ERR_SQLITE);
    CHECK(rlhf_store_stage_begin(s, "", "k2", NULL, -1, &sid2) == RLHF_ERR_SQLITE);
    rlhf_store_stage stg;
    bool found = false;
    CHECK_OK(rlhf_store_stage_find(s, "import", "k1", &stg, &found));
    CHECK(found && stg.id == sid && stg.status == RLHF_STAGE_RUNNING && stg.progress == 0 &&
          stg.total == -1);
    CHECK_OK(rlhf_store_stage_find(s, "import", "nope", &stg, &found));
    CHECK(!found);
    /* a batch: rows and progress in one transaction; rollback undoes both */
    CHECK_OK(rlhf_store_begin(s));
    CHECK(rlhf_store_begin(s) == RLHF_ERR_ARG); /* not nestable */
    rlhf_store_prompt p = {
        .text = "Hello?", .unsafe = -1, .source = "t", .stage_id = sid, .src_index = 0};
    int64_t pid = 0, pid2 = 0;
    CHECK_OK(rlhf_store_prompt_add(s, &p, &pid));
    CHECK_OK(rlhf_store_stage_progress(s, sid, 1));
    rlhf_store_rollback(s);
    CHECK(!rlhf_store_in_transaction(s));
    int64_t n = -1;
    CHECK_OK(rlhf_store_count(s, "prompts", &n));
    CHECK(n == 0);
    CHECK_OK(rlhf_store_stage_find(s, "import", "k1", &stg, &found));
    CHECK(stg.progress == 0);
    CHECK_OK(rlhf_store_begin(s));
    CHECK_OK(rlhf_store_prompt_add(s, &p, &pid));
    CHECK_OK(rlhf_store_stage_progress(s, sid, 1));
    CHECK_OK(rlhf_store_commit(s));
    CHECK(rlhf_store_commit(s) == RLHF_ERR_ARG);
    /* idempotent re-insert (same stage and index): same id, no new row */
    p.text = "Hello again?";
    CHECK_OK(rlhf_store_prompt_add(s, &p, &pid2));
    CHECK(pid2 == pid);
    CHECK_OK(rlhf_store_count(s, "prompts", &n));
    CHECK(n == 1);
    /* CHECK constraints are errors, not silently ignored rows */
    rlhf_store_pair pr = {.track = "helpfulness",
                          .context_json = "[{\"role\":\"user\",\"text\":\"q\"}]",
                          .chosen = "a",
                          .rejected = "b",
                          .chosen_safe = 1,
                          .rejected_safe = -1,
                          .source = "t",
                          .stage_id = sid,
                          .src_index = 1};
    int64_t pair_id = 0;
    CHECK_OK(rlhf_store_pair_add(s, &pr, &pair_id));
    pr.src_index = 2;
    pr.track = "bogus";
    CHECK(rlhf_store_pair_add(s, &pr, NULL) == RLHF_ERR_SQLITE);
    CHECK(strstr(rlhf_last_error(), "CHECK") != NULL);
    pr.track = "safety";
    pr.rating = "very";
    CHECK(rlhf_store_pair_add(s, &pr, NULL) == RLHF_ERR_SQLITE);
    pr.rating = "slightly";
    pr.context_json = "[unclosed";
    CHECK(rlhf_store_pair_add(s, &pr, NULL) == RLHF_ERR_SQLITE);
    pr.context_json = "[]";
    CHECK_OK(rlhf_store_pair_add(s, &pr, NULL));
    int nm = 0;
    CHECK_OK(rlhf_store_pairs_each(s, count_pairs, &nm));
    CHECK(nm == 1);
    /* foreign keys are enforced */
    p.stage_id = 999;
    p.src_index = 5;
    CHECK(rlhf_store_prompt_add(s, &p, NULL) == RLHF_ERR_SQLITE);
    CHECK(strstr(rlhf_last_error(), "FOREIGN KEY") != NULL);
    /* dialogues: the loss mask has one byte per turn */
    uint8_t mask[2] = {0, 1};
    rlhf_store_dialogue d = {.turns_json = "[{\"role\":\"user\",\"text\":\"q\"},"
                                           "{\"role\":\"assistant\",\"text\":\"a\"}]",
                             .loss_mask = mask,
                             .n_mask = 2,
                             .source = "t",
                             .stage_id = sid,
                             .src_index = 7};
    CHECK_OK(rlhf_store_dialogue_add(s, &d, NULL));
    d.n_mask = 1;
    d.src_index = 8;
    CHECK(rlhf_store_dialogue_add(s, &d, NULL) == RLHF_ERR_SQLITE);
    /* checkpoints: sha256 of the file (sha256 of "abc" is known) */
    snprintf(ck, sizeof ck, "%s/ckpt/policy-0.bin", run);
    FILE *f = fopen(ck, "wb");
    fputs("abc", f);
    fclose(f);
    char hex[65];
    int64_t size = 0;
    CHECK_OK(rlhf_store_sha256_file(ck, hex, &size));
    CHECK(size == 3);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    CHECK(rlhf_store_sha256_file("/nonexistent/file", hex, NULL) == RLHF_ERR_IO);
    int64_t cid = 0, cid2 = 0;
    CHECK_OK(rlhf_store_checkpoint_add(s, "policy", ck, 0, 0, sid, &cid));
    CHECK_OK(rlhf_store_checkpoint_add(s, "policy", ck, 0, 0, sid, &cid2));
    CHECK(cid == cid2 && cid > 0);
    CHECK(rlhf_store_checkpoint_add(s, "wizard", "/nonexistent", 0, 0, 0, NULL) == RLHF_ERR_IO);
    f = fopen(ck, "wb");
    fputs("abd", f);
    fclose(f);
    CHECK(rlhf_store_checkpoint_add(s, "policy", ck, 0, 0, sid, &cid2) == RLHF_ERR_FORMAT);
    /* samples: token ids and log-probs survive the BLOB round trip */
    int32_t toks[4] = {1, 15043, 3186, 2};
    float lps[4] = {-0.5f, -1.25f, -3.0e-3f, -12.0f};
    rlhf_store_sample x = {.prompt_id = pid,
                           .checkpoint_id = cid,
                           .round = 1,
                           .idx = 0,
                           .seed = UINT64_MAX - 1,
                           .temperature = 0.7f,
                           .tokens = toks,
                           .logprobs = lps,
                           .n_tokens = 4,
                           .text = "Hello world",
                           .finish = "eos",
                           .stage_id = sid};
    int64_t xid = 0, xid2 = 0;
    CHECK_OK(rlhf_store_sample_add(s, &x, &xid));
    CHECK_OK(rlhf_store_sample_add(s, &x, &xid2)); /* same key: the same row */
    CHECK(xid == xid2);
    x.idx = 1;
    x.logprobs = NULL;
    CHECK_OK(rlhf_store_sample_add(s, &x, &xid2));
    CHECK(xid2 != xid);
    x.idx = 2;
    x.finish = "stop";
    CHECK(rlhf_store_sample_add(s, &x, NULL) == RLHF_ERR_SQLITE);
    x.finish = "length";
    x.prompt_id = 12345;
    CHECK(rlhf_store_sample_add(s, &x, NULL) == RLHF_ERR_SQLITE);
    seen sn = {0};
    CHECK_OK(rlhf_store_samples_each(s, see_sample, &sn));
    CHECK(sn.n == 2);
    CHECK(sn.n_tokens == 4 && memcmp(sn.tokens, toks, sizeof toks) == 0);
    CHECK(!sn.lp_null && memcmp(sn.lp, lps, sizeof lps) == 0);
    CHECK(sn.seed == UINT64_MAX - 1);
    CHECK(strcmp(sn.text, "Hello world") == 0);
    /* scores, selections, metrics */
    int64_t scid = 0, scid2 = 0;
    CHECK_OK(rlhf_store_score_add(s, xid, cid, 0.25, sid, &scid));
    CHECK_OK(rlhf_store_score_add(s, xid, cid, 0.99, sid, &scid2));
    CHECK(scid == scid2);
    CHECK_OK(rlhf_store_selection_set(s, 1, pid, xid2, sid));
    CHECK_OK(rlhf_store_selection_set(s, 1, pid, xid, sid));
    CHECK_OK(rlhf_store_count(s, "selections", &n));
    CHECK(n == 1);
    CHECK_OK(rlhf_store_metric_set(s, sid, 0, "loss", 2.0));
    CHECK_OK(rlhf_store_metric_set(s, sid, 0, "loss", 1.5));
    CHECK_OK(rlhf_store_metric_set(s, sid, 1, "loss", 1.0));
    CHECK_OK(rlhf_store_count(s, "metrics", &n));
    CHECK(n == 2);
    /* a visitor's error stops the walk and comes back */
    int calls = 0;
    CHECK(rlhf_store_prompts_each(s, stop_walk, &calls) == RLHF_ERR_ARG);
    CHECK(calls == 1);
    /* stage end states; finished stages are found, failed ones are not */
    CHECK_OK(rlhf_store_stage_finish(s, sid, 9, "{\"records\":9}"));
    CHECK_OK(rlhf_store_stage_find(s, "import", "k1", &stg, &found));
    CHECK(found && stg.status == RLHF_STAGE_DONE && stg.progress == 9);
    CHECK_OK(rlhf_store_stage_begin(s, "import", "k3", NULL, 10, &sid2));
    CHECK_OK(rlhf_store_stage_fail(s, sid2, "x.jsonl:3: bad", NULL));
    CHECK_OK(rlhf_store_stage_find(s, "import", "k3", &stg, &found));
    CHECK(!found);
    CHECK(rlhf_store_stage_progress(s, 4242, 1) == RLHF_ERR_ARG);
    CHECK(strcmp(rlhf_store_stage_status_name(RLHF_STAGE_FAILED), "failed") == 0);
    /* deleting a stage's rows (import rollback) */
    int64_t sid3 = 0;
    CHECK_OK(rlhf_store_stage_begin(s, "import", "k4", NULL, -1, &sid3));
    rlhf_store_prompt p3 = {
        .text = "gone", .unsafe = 1, .source = "t", .stage_id = sid3, .src_index = 0};
    CHECK_OK(rlhf_store_prompt_add(s, &p3, NULL));
    CHECK_OK(rlhf_store_count(s, "prompts", &n));
    CHECK(n == 2);
    CHECK_OK(rlhf_store_stage_delete_rows(s, sid3));
    CHECK_OK(rlhf_store_count(s, "prompts", &n));
    CHECK(n == 1);
    bool ok = false;
    CHECK_OK(rlhf_store_integrity_check(s, &ok, NULL, 0));
    CHECK(ok);
    rlhf_store_close(s);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/test_store_XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_create_open();
    test_migrations();
    test_migrate_v1();
    test_rollouts();
    test_errors();
    test_blobs();
    test_rows();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (test_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    TEST_MAIN_END();
}
