/* store.c: the run store, a SQLite database per run directory (see store.h for the contracts and
 * docs/store.md for the schema). The only file of the project that includes sqlite3.h.
 *
 * Every statement is prepared once per handle (a small cache keyed by the SQL text's address) and
 * takes its values through bound parameters. Inserts that can be repeated by a resumed stage use
 * `ON CONFLICT (...) DO NOTHING` on the table's UNIQUE key, which leaves CHECK and NOT NULL
 * violations as errors (INSERT OR IGNORE would silently drop those rows). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "store.h"
#include "store_schema.h"

#define STMT_CACHE 64

struct rlhf_store {
    sqlite3 *db;
    char *dir, *db_path;
    bool in_tx;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[STMT_CACHE];
    int n_cache;
    int32_t *tok_buf; /* scratch for samples_each */
    float *lp_buf;
    int64_t buf_cap;
};

/* ---- errors and statements
 * ------------------------------------------------------------------------ */

#define SQL_ERR(s, what)                                                                           \
    RLHF_ERR(RLHF_ERR_SQLITE, "%s: %s: %s", (s)->db_path, (what), sqlite3_errmsg((s)->db))

static char *str_dup(const char *a) {
    size_t n = strlen(a) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, a, n);
    return p;
}

/* The cached prepared statement for sql (a string literal: its address is the key), reset and with
 * its bindings cleared. */
static rlhf_status stmt(rlhf_store *s, const char *sql, sqlite3_stmt **out) {
    for (int i = 0; i < s->n_cache; i++)
        if (s->cache[i].sql == sql) {
            sqlite3_reset(s->cache[i].st);
            sqlite3_clear_bindings(s->cache[i].st);
            *out = s->cache[i].st;
            return RLHF_OK;
        }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return SQL_ERR(s, "prepare");
    RLHF_ASSERT(s->n_cache < STMT_CACHE);
    s->cache[s->n_cache].sql = sql;
    s->cache[s->n_cache].st = st;
    s->n_cache++;
    *out = st;
    return RLHF_OK;
}

/* Steps a statement that returns no rows. */
static rlhf_status step_done(rlhf_store *s, sqlite3_stmt *st, const char *what) {
    int rc = sqlite3_step(st);
    rlhf_status r = RLHF_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) r = SQL_ERR(s, what);
    sqlite3_reset(st);
    return r;
}

/* Runs constant SQL (no parameters) with sqlite3_exec. */
static rlhf_status exec(rlhf_store *s, const char *sql, const char *what) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        rlhf_status r = RLHF_ERR(RLHF_ERR_SQLITE, "%s: %s: %s", s->db_path, what,
                                 msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return r;
    }
    return RLHF_OK;
}

static int bind_text(sqlite3_stmt *st, int i, const char *v) {
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}
static int bind_tri(sqlite3_stmt *st, int i, int8_t v) { /* 1, 0, -1 = NULL */
    return v < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_int(st, i, v ? 1 : 0);
}
static int bind_id(sqlite3_stmt *st, int i, int64_t v) { /* 0 = NULL */
    return v > 0 ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}
static const char *col_text(sqlite3_stmt *st, int i) {
    return (const char *)sqlite3_column_text(st, i);
}
static int8_t col_tri(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : (int8_t)sqlite3_column_int(st, i);
}
static const char *split_name(rlhf_split sp) { return sp == RLHF_SPLIT_EVAL ? "eval" : "train"; }
static rlhf_split col_split(sqlite3_stmt *st, int i) {
    const char *t = col_text(st, i);
    return t && strcmp(t, "eval") == 0 ? RLHF_SPLIT_EVAL : RLHF_SPLIT_TRAIN;
}

/* ---- open / migrate
 * ---------------------------------------------------------------------------------- */

static rlhf_status pragma_int(rlhf_store *s, const char *sql, int64_t *v) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, sql, &st));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rlhf_status r = SQL_ERR(s, sql);
        sqlite3_reset(st);
        return r;
    }
    *v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return RLHF_OK;
}

rlhf_status rlhf_store_user_version(rlhf_store *s, int32_t *out) {
    int64_t v = 0;
    RLHF_TRY(pragma_int(s, "PRAGMA user_version", &v));
    *out = (int32_t)v;
    return RLHF_OK;
}

static rlhf_status migrate(rlhf_store *s) {
    int32_t v = 0;
    RLHF_TRY(rlhf_store_user_version(s, &v));
    if (v > RLHF_STORE_N_MIGRATIONS)
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED,
                        "%s: schema version %d is newer than this program knows (%d); use a newer "
                        "rlhf",
                        s->db_path, (int)v, RLHF_STORE_N_MIGRATIONS);
    if (v < 0) return RLHF_ERR(RLHF_ERR_FORMAT, "%s: bad schema version %d", s->db_path, (int)v);
    if (v == RLHF_STORE_N_MIGRATIONS) return RLHF_OK;
    rlhf_status r;
    RLHF_TRY(rlhf_store_begin(s));
    RLHF_TRY_GOTO(r, rlhf_store_user_version(s, &v), fail); /* another process may have won */
    if (v == 0) {
        int64_t n;
        RLHF_TRY_GOTO(
            r,
            pragma_int(s, "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'", &n),
            fail);
        if (n > 0) {
            r = RLHF_ERR(RLHF_ERR_FORMAT,
                         "%s: a database with tables but no rlhf schema version (not a run "
                         "database)",
                         s->db_path);
            goto fail;
        }
    }
    for (int i = v; i < RLHF_STORE_N_MIGRATIONS; i++) {
        char what[64];
        snprintf(what, sizeof what, "migration %d -> %d", i, i + 1);
        RLHF_TRY_GOTO(r, exec(s, rlhf_store_migrations[i], what), fail);
    }
    /* PRAGMA takes no parameters; the value is our own integer constant. */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", RLHF_STORE_N_MIGRATIONS);
    RLHF_TRY_GOTO(r, exec(s, sql, "set user_version"), fail);
    return rlhf_store_commit(s);
fail:
    rlhf_store_rollback(s);
    return r;
}

/* 1 when dir has entries other than "." and "..", 0 when empty, -1 when it cannot be read. */
static int dir_has_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int any = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            any = 1;
            break;
        }
    closedir(d);
    return any;
}

static rlhf_status make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return RLHF_OK;
        return RLHF_ERR(RLHF_ERR_IO, "%s: exists and is not a directory", path);
    }
    return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

rlhf_status rlhf_store_open(rlhf_store **out, const char *dir, bool create) {
    *out = NULL;
    if (!dir || !dir[0]) return RLHF_ERR(RLHF_ERR_ARG, "run directory: empty path");
    rlhf_store *s = calloc(1, sizeof *s);
    if (!s) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate the store handle");
    rlhf_status r = RLHF_OK;
    s->dir = str_dup(dir);
    s->db_path = path_join(dir, RLHF_STORE_DB_NAME);
    char *sub = NULL;
    if (!s->dir || !s->db_path) {
        r = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate paths");
        goto fail;
    }
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            r = RLHF_ERR(RLHF_ERR_ARG, "%s: exists and is not a directory", dir);
            goto fail;
        }
    } else if (errno == ENOENT && create) {
        RLHF_TRY_GOTO(r, make_dir(dir), fail);
    } else if (errno == ENOENT) {
        r = RLHF_ERR(RLHF_ERR_IO, "%s: no such run directory (create it with `rlhf init`)", dir);
        goto fail;
    } else {
        r = RLHF_ERR(RLHF_ERR_IO, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    if (stat(s->db_path, &st) != 0) {
        if (!create) {
            r = RLHF_ERR(RLHF_ERR_IO, "%s: not a run directory (no %s)", dir, RLHF_STORE_DB_NAME);
            goto fail;
        }
        int has = dir_has_entries(dir);
        if (has != 0) {
            r = has < 0
                    ? RLHF_ERR(RLHF_ERR_IO, "%s: cannot read directory: %s", dir, strerror(errno))
                    : RLHF_ERR(RLHF_ERR_ARG,
                               "%s: not a run directory (no %s) and not empty; refusing to "
                               "create a run in it",
                               dir, RLHF_STORE_DB_NAME);
            goto fail;
        }
    } else if (!S_ISREG(st.st_mode)) {
        r = RLHF_ERR(RLHF_ERR_FORMAT, "%s: not a regular file", s->db_path);
        goto fail;
    }
    if (create) {
        static const char *subs[] = {"ckpt", "logs"};
        for (int i = 0; i < 2; i++) {
            sub = path_join(dir, subs[i]);
            if (!sub) {
                r = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate paths");
                goto fail;
            }
            RLHF_TRY_GOTO(r, make_dir(sub), fail);
            free(sub);
            sub = NULL;
        }
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(s->db_path, &s->db, flags, NULL) != SQLITE_OK) {
        r = RLHF_ERR(RLHF_ERR_SQLITE, "%s: cannot open: %s", s->db_path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 10000);
    /* The first statement reads the header and the schema: a file that is not a database or a
     * corrupt schema fails here. */
    char mode[16];
    RLHF_TRY_GOTO(r, exec(s, "PRAGMA journal_mode = WAL", "set WAL mode"), fail);
    RLHF_TRY_GOTO(r, rlhf_store_journal_mode(s, mode, sizeof mode), fail);
    if (strcmp(mode, "wal") != 0) {
        r = RLHF_ERR(RLHF_ERR_SQLITE, "%s: cannot switch to WAL mode (journal mode is %s)",
                     s->db_path, mode);
        goto fail;
    }
    RLHF_TRY_GOTO(r, exec(s, "PRAGMA foreign_keys = ON", "enable foreign keys"), fail);
    /* WAL + NORMAL: a killed process loses nothing committed; a power cut may lose the last
     * transactions but never corrupts the database. */
    RLHF_TRY_GOTO(r, exec(s, "PRAGMA synchronous = NORMAL", "set synchronous"), fail);
    RLHF_TRY_GOTO(r, migrate(s), fail);
    *out = s;
    return RLHF_OK;
fail:
    free(sub);
    rlhf_store_close(s);
    return r;
}

void rlhf_store_close(rlhf_store *s) {
    if (!s) return;
    if (s->db) {
        rlhf_store_rollback(s);
        for (int i = 0; i < s->n_cache; i++)
            sqlite3_finalize(s->cache[i].st);
        sqlite3_close(s->db);
    }
    free(s->tok_buf);
    free(s->lp_buf);
    free(s->dir);
    free(s->db_path);
    free(s);
}

const char *rlhf_store_dir(const rlhf_store *s) { return s->dir; }

rlhf_status rlhf_store_journal_mode(rlhf_store *s, char *buf, int32_t cap) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, "PRAGMA journal_mode", &st));
    if (sqlite3_step(st) != SQLITE_ROW) {
        rlhf_status r = SQL_ERR(s, "journal_mode");
        sqlite3_reset(st);
        return r;
    }
    const char *m = col_text(st, 0);
    snprintf(buf, (size_t)cap, "%s", m ? m : "");
    sqlite3_reset(st);
    return RLHF_OK;
}

rlhf_status rlhf_store_integrity_check(rlhf_store *s, bool *ok, char *msg, int32_t cap) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, "PRAGMA integrity_check", &st));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rlhf_status r = SQL_ERR(s, "integrity_check");
        sqlite3_reset(st);
        return r;
    }
    const char *t = col_text(st, 0);
    *ok = t && strcmp(t, "ok") == 0;
    if (msg && cap > 0) snprintf(msg, (size_t)cap, "%s", t ? t : "");
    sqlite3_reset(st);
    return RLHF_OK;
}

/* ---- transactions
 * ---------------------------------------------------------------------------------- */

rlhf_status rlhf_store_begin(rlhf_store *s) {
    if (s->in_tx) return RLHF_ERR(RLHF_ERR_ARG, "%s: a transaction is already open", s->db_path);
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, "BEGIN IMMEDIATE", &st));
    RLHF_TRY(step_done(s, st, "begin"));
    s->in_tx = true;
    return RLHF_OK;
}

rlhf_status rlhf_store_commit(rlhf_store *s) {
    if (!s->in_tx) return RLHF_ERR(RLHF_ERR_ARG, "%s: commit without a transaction", s->db_path);
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, "COMMIT", &st));
    rlhf_status r = step_done(s, st, "commit");
    if (r != RLHF_OK) {
        rlhf_store_rollback(s);
        return r;
    }
    s->in_tx = false;
    return RLHF_OK;
}

void rlhf_store_rollback(rlhf_store *s) {
    if (!s->in_tx) return;
    /* Reset every statement first so that none holds the transaction open. */
    for (int i = 0; i < s->n_cache; i++)
        sqlite3_reset(s->cache[i].st);
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_tx = false;
}

bool rlhf_store_in_transaction(const rlhf_store *s) { return s->in_tx; }

/* ---- stages
 * ---------------------------------------------------------------------------------------- */

const char *rlhf_store_stage_status_name(rlhf_stage_status st) {
    switch (st) {
    case RLHF_STAGE_RUNNING:
        return "running";
    case RLHF_STAGE_DONE:
        return "done";
    case RLHF_STAGE_FAILED:
        return "failed";
    }
    return "?";
}

static rlhf_stage_status parse_stage_status(const char *t) {
    if (t && strcmp(t, "done") == 0) return RLHF_STAGE_DONE;
    if (t && strcmp(t, "failed") == 0) return RLHF_STAGE_FAILED;
    return RLHF_STAGE_RUNNING;
}

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

rlhf_status rlhf_store_stage_begin(rlhf_store *s, const char *kind, const char *key,
                                   const char *params_json, int64_t total, int64_t *id) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "INSERT INTO stages (kind, key, params, status, started_at, total) "
                  "VALUES (?1, ?2, ?3, 'running', " NOW_SQL ", ?4)",
                  &st));
    bind_text(st, 1, kind);
    bind_text(st, 2, key);
    bind_text(st, 3, params_json ? params_json : "{}");
    if (total >= 0)
        sqlite3_bind_int64(st, 4, total);
    else
        sqlite3_bind_null(st, 4);
    RLHF_TRY(step_done(s, st, "insert stage"));
    if (id) *id = sqlite3_last_insert_rowid(s->db);
    return RLHF_OK;
}

rlhf_status rlhf_store_stage_find(rlhf_store *s, const char *kind, const char *key,
                                  rlhf_store_stage *out, bool *found) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "SELECT id, status, progress, total FROM stages WHERE kind = ?1 AND key = ?2 "
                  "AND status IN ('running', 'done') ORDER BY id DESC LIMIT 1",
                  &st));
    bind_text(st, 1, kind);
    bind_text(st, 2, key);
    int rc = sqlite3_step(st);
    *found = false;
    if (rc == SQLITE_ROW) {
        *found = true;
        out->id = sqlite3_column_int64(st, 0);
        out->status = parse_stage_status(col_text(st, 1));
        out->progress = sqlite3_column_int64(st, 2);
        out->total = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 3);
    } else if (rc != SQLITE_DONE) {
        rlhf_status r = SQL_ERR(s, "find stage");
        sqlite3_reset(st);
        return r;
    }
    sqlite3_reset(st);
    return RLHF_OK;
}

rlhf_status rlhf_store_stage_progress(rlhf_store *s, int64_t id, int64_t progress) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, "UPDATE stages SET progress = ?2 WHERE id = ?1", &st));
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, progress);
    RLHF_TRY(step_done(s, st, "update stage progress"));
    if (sqlite3_changes(s->db) != 1)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: no stage %lld", s->db_path, (long long)id);
    return RLHF_OK;
}

rlhf_status rlhf_store_stage_finish(rlhf_store *s, int64_t id, int64_t progress,
                                    const char *result_json) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "UPDATE stages SET status = 'done', ended_at = " NOW_SQL
                  ", progress = ?2, result = ?3, error = NULL WHERE id = ?1",
                  &st));
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, progress);
    bind_text(st, 3, result_json);
    RLHF_TRY(step_done(s, st, "finish stage"));
    if (sqlite3_changes(s->db) != 1)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: no stage %lld", s->db_path, (long long)id);
    return RLHF_OK;
}

rlhf_status rlhf_store_stage_fail(rlhf_store *s, int64_t id, const char *error,
                                  const char *result_json) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "UPDATE stages SET status = 'failed', ended_at = " NOW_SQL
                  ", error = ?2, result = ?3 WHERE id = ?1",
                  &st));
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, error ? error : "failed");
    bind_text(st, 3, result_json);
    RLHF_TRY(step_done(s, st, "mark stage failed"));
    if (sqlite3_changes(s->db) != 1)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: no stage %lld", s->db_path, (long long)id);
    return RLHF_OK;
}

rlhf_status rlhf_store_stage_delete_rows(rlhf_store *s, int64_t id) {
    static const char *const del[] = {
        "DELETE FROM pairs WHERE stage_id = ?1",
        "DELETE FROM prompts WHERE stage_id = ?1",
        "DELETE FROM dialogues WHERE stage_id = ?1",
        "UPDATE stages SET progress = 0 WHERE id = ?1",
    };
    for (int i = 0; i < 4; i++) {
        sqlite3_stmt *st = NULL;
        RLHF_TRY(stmt(s, del[i], &st));
        sqlite3_bind_int64(st, 1, id);
        RLHF_TRY(step_done(s, st, "delete the rows of a stage"));
    }
    return RLHF_OK;
}

/* ---- inserts
 * --------------------------------------------------------------------------------------- */

/* Steps an INSERT ... ON CONFLICT DO NOTHING; when nothing was inserted, runs lookup (bound by the
 * caller-provided binder through the same values) to find the existing row's id. */
static rlhf_status insert_or_find(rlhf_store *s, sqlite3_stmt *ins, const char *what,
                                  const char *find_sql, int64_t k1, int64_t k2, int64_t k3,
                                  int64_t k4, int nk, int64_t *id) {
    RLHF_TRY(step_done(s, ins, what));
    if (sqlite3_changes(s->db) == 1) {
        if (id) *id = sqlite3_last_insert_rowid(s->db);
        return RLHF_OK;
    }
    if (!id) return RLHF_OK;
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, find_sql, &st));
    int64_t k[4] = {k1, k2, k3, k4};
    for (int i = 0; i < nk; i++)
        sqlite3_bind_int64(st, i + 1, k[i]);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rlhf_status r = rc == SQLITE_DONE
                            ? RLHF_ERR(RLHF_ERR_SQLITE, "%s: %s: row neither inserted nor found",
                                       s->db_path, what)
                            : SQL_ERR(s, what);
        sqlite3_reset(st);
        return r;
    }
    *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return RLHF_OK;
}

rlhf_status rlhf_store_prompt_add(rlhf_store *s, const rlhf_store_prompt *p, int64_t *id) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "INSERT INTO prompts (text, system, turns, unsafe, category, split, source, "
                  "stage_id, src_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                  "ON CONFLICT (stage_id, src_index) DO NOTHING",
                  &st));
    bind_text(st, 1, p->text);
    bind_text(st, 2, p->system);
    bind_text(st, 3, p->turns_json);
    bind_tri(st, 4, p->unsafe);
    bind_text(st, 5, p->category);
    bind_text(st, 6, split_name(p->split));
    bind_text(st, 7, p->source);
    bind_id(st, 8, p->stage_id);
    sqlite3_bind_int64(st, 9, p->src_index);
    return insert_or_find(s, st, "insert prompt",
                          "SELECT id FROM prompts WHERE stage_id = ?1 AND src_index = ?2",
                          p->stage_id, p->src_index, 0, 0, 2, id);
}

rlhf_status rlhf_store_pair_add(rlhf_store *s, const rlhf_store_pair *p, int64_t *id) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "INSERT INTO pairs (track, system, context, chosen, rejected, rating, "
                  "chosen_safe, rejected_safe, split, source, stage_id, src_index) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
                  "ON CONFLICT (stage_id, src_index) DO NOTHING",
                  &st));
    bind_text(st, 1, p->track);
    bind_text(st, 2, p->system);
    bind_text(st, 3, p->context_json);
    bind_text(st, 4, p->chosen);
    bind_text(st, 5, p->rejected);
    bind_text(st, 6, p->rating);
    bind_tri(st, 7, p->chosen_safe);
    bind_tri(st, 8, p->rejected_safe);
    bind_text(st, 9, split_name(p->split));
    bind_text(st, 10, p->source);
    bind_id(st, 11, p->stage_id);
    sqlite3_bind_int64(st, 12, p->src_index);
    return insert_or_find(s, st, "insert pair",
                          "SELECT id FROM pairs WHERE stage_id = ?1 AND src_index = ?2",
                          p->stage_id, p->src_index, 0, 0, 2, id);
}

rlhf_status rlhf_store_dialogue_add(rlhf_store *s, const rlhf_store_dialogue *d, int64_t *id) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "INSERT INTO dialogues (system, turns, loss_mask, split, source, stage_id, "
                  "src_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                  "ON CONFLICT (stage_id, src_index) DO NOTHING",
                  &st));
    bind_text(st, 1, d->system);
    bind_text(st, 2, d->turns_json);
    if (d->n_mask > 0)
        sqlite3_bind_blob(st, 3, d->loss_mask, d->n_mask, SQLITE_STATIC);
    else
        sqlite3_bind_zeroblob(st, 3, 0);
    bind_text(st, 4, split_name(d->split));
    bind_text(st, 5, d->source);
    bind_id(st, 6, d->stage_id);
    sqlite3_bind_int64(st, 7, d->src_index);
    return insert_or_find(s, st, "insert dialogue",
                          "SELECT id FROM dialogues WHERE stage_id = ?1 AND src_index = ?2",
                          d->stage_id, d->src_index, 0, 0, 2, id);
}

/* Packs a generation's token ids (and log-probs, when given) into little-endian BLOBs of
 * *nb = 4 n bytes each (*lp NULL without log-probs); the caller frees *tok and *lp. */
static rlhf_status pack_generation(const char *what, const int32_t *tokens, const float *logprobs,
                                   int32_t n, uint8_t **tok, uint8_t **lp, size_t *nb) {
    *tok = *lp = NULL;
    if (n < 0) return RLHF_ERR(RLHF_ERR_ARG, "%s: negative token count", what);
    *nb = (size_t)n * 4;
    *tok = malloc(*nb ? *nb : 1);
    if (!*tok) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %zu bytes", what, *nb);
    rlhf_store_pack_i32(tokens, n, *tok);
    if (logprobs) {
        *lp = malloc(*nb ? *nb : 1);
        if (!*lp) {
            free(*tok);
            *tok = NULL;
            return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %zu bytes", what, *nb);
        }
        rlhf_store_pack_f32(logprobs, n, *lp);
    }
    return RLHF_OK;
}

rlhf_status rlhf_store_sample_add(rlhf_store *s, const rlhf_store_sample *x, int64_t *id) {
    size_t nb;
    uint8_t *tok, *lp;
    RLHF_TRY(pack_generation("sample", x->tokens, x->logprobs, x->n_tokens, &tok, &lp, &nb));
    sqlite3_stmt *st = NULL;
    rlhf_status r = stmt(s,
                         "INSERT INTO samples (prompt_id, round, checkpoint_id, idx, seed, "
                         "temperature, tokens, logprobs, text, finish, stage_id) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                         "ON CONFLICT (prompt_id, round, checkpoint_id, idx) DO NOTHING",
                         &st);
    if (r == RLHF_OK) {
        sqlite3_bind_int64(st, 1, x->prompt_id);
        sqlite3_bind_int(st, 2, x->round);
        sqlite3_bind_int64(st, 3, x->checkpoint_id);
        sqlite3_bind_int(st, 4, x->idx);
        sqlite3_bind_int64(st, 5, (int64_t)x->seed); /* stored as its two's-complement bits */
        sqlite3_bind_double(st, 6, (double)x->temperature);
        sqlite3_bind_blob(st, 7, tok, (int)nb, SQLITE_STATIC);
        if (lp)
            sqlite3_bind_blob(st, 8, lp, (int)nb, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 8);
        bind_text(st, 9, x->text ? x->text : "");
        bind_text(st, 10, x->finish);
        bind_id(st, 11, x->stage_id);
        r = insert_or_find(s, st, "insert sample",
                           "SELECT id FROM samples WHERE prompt_id = ?1 AND round = ?2 AND "
                           "checkpoint_id = ?3 AND idx = ?4",
                           x->prompt_id, x->round, x->checkpoint_id, x->idx, 4, id);
        sqlite3_clear_bindings(st); /* tok/lp are freed below */
    }
    free(tok);
    free(lp);
    return r;
}

rlhf_status rlhf_store_rollout_add(rlhf_store *s, const rlhf_store_rollout *x, int64_t *id) {
    size_t nb;
    uint8_t *tok, *lp;
    RLHF_TRY(pack_generation("rollout", x->tokens, x->logprobs, x->n_tokens, &tok, &lp, &nb));
    sqlite3_stmt *st = NULL;
    rlhf_status r = stmt(s,
                         "INSERT INTO rollouts (stage_id, iteration, idx, prompt_id, "
                         "checkpoint_id, seed, temperature, tokens, logprobs, text, finish, reward_help, "
                         "reward_safe, gate, reward_gated, reward_final, kl, advantage_mean) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                         "?15, ?16, ?17, ?18) "
                         "ON CONFLICT (stage_id, iteration, idx) DO NOTHING",
                         &st);
    if (r == RLHF_OK) {
        sqlite3_bind_int64(st, 1, x->stage_id);
        sqlite3_bind_int(st, 2, x->iteration);
        sqlite3_bind_int(st, 3, x->idx);
        sqlite3_bind_int64(st, 4, x->prompt_id);
        sqlite3_bind_int64(st, 5, x->checkpoint_id);
        sqlite3_bind_int64(st, 6, (int64_t)x->seed); /* its two's-complement bits */
        sqlite3_bind_double(st, 7, (double)x->temperature);
        sqlite3_bind_blob(st, 8, tok, (int)nb, SQLITE_STATIC);
        if (lp)
            sqlite3_bind_blob(st, 9, lp, (int)nb, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 9);
        bind_text(st, 10, x->text ? x->text : "");
        bind_text(st, 11, x->finish);
        sqlite3_bind_double(st, 12, x->reward_help);
        sqlite3_bind_double(st, 13, x->reward_safe);
        bind_text(st, 14, x->gate);
        sqlite3_bind_double(st, 15, x->reward_gated);
        sqlite3_bind_double(st, 16, x->reward_final);
        sqlite3_bind_double(st, 17, x->kl);
        sqlite3_bind_double(st, 18, x->advantage_mean);
        r = insert_or_find(s, st, "insert rollout",
                           "SELECT id FROM rollouts WHERE stage_id = ?1 AND iteration = ?2 AND "
                           "idx = ?3",
                           x->stage_id, x->iteration, x->idx, 0, 3, id);
        sqlite3_clear_bindings(st); /* tok/lp are freed below */
    }
    free(tok);
    free(lp);
    return r;
}

rlhf_status rlhf_store_score_add(rlhf_store *s, int64_t sample_id, int64_t rm_checkpoint_id,
                                 double value, int64_t stage_id, int64_t *id) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "INSERT INTO scores (sample_id, checkpoint_id, value, stage_id) "
                  "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (sample_id, checkpoint_id) DO NOTHING",
                  &st));
    sqlite3_bind_int64(st, 1, sample_id);
    sqlite3_bind_int64(st, 2, rm_checkpoint_id);
    sqlite3_bind_double(st, 3, value);
    bind_id(st, 4, stage_id);
    return insert_or_find(s, st, "insert score",
                          "SELECT id FROM scores WHERE sample_id = ?1 AND checkpoint_id = ?2",
                          sample_id, rm_checkpoint_id, 0, 0, 2, id);
}

rlhf_status rlhf_store_selection_set(rlhf_store *s, int32_t round, int64_t prompt_id,
                                     int64_t sample_id, int64_t stage_id) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "INSERT INTO selections (round, prompt_id, sample_id, stage_id) "
                  "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (round, prompt_id) DO UPDATE SET "
                  "sample_id = excluded.sample_id, stage_id = excluded.stage_id",
                  &st));
    sqlite3_bind_int(st, 1, round);
    sqlite3_bind_int64(st, 2, prompt_id);
    sqlite3_bind_int64(st, 3, sample_id);
    bind_id(st, 4, stage_id);
    return step_done(s, st, "set selection");
}

rlhf_status rlhf_store_judgment_set(rlhf_store *s, int64_t sample_id, const char *judge,
                                    double value, int64_t stage_id) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "INSERT INTO judgments (sample_id, judge, value, stage_id) VALUES (?1, ?2, ?3, "
                  "?4) ON CONFLICT (sample_id, judge) DO UPDATE SET value = excluded.value, "
                  "stage_id = excluded.stage_id",
                  &st));
    sqlite3_bind_int64(st, 1, sample_id);
    bind_text(st, 2, judge);
    sqlite3_bind_double(st, 3, value);
    bind_id(st, 4, stage_id);
    return step_done(s, st, "set judgment");
}

rlhf_status rlhf_store_metric_set(rlhf_store *s, int64_t stage_id, int64_t step, const char *name,
                                  double value) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s,
                  "INSERT INTO metrics (stage_id, step, name, value) VALUES (?1, ?2, ?3, ?4) "
                  "ON CONFLICT (stage_id, name, step) DO UPDATE SET value = excluded.value",
                  &st));
    sqlite3_bind_int64(st, 1, stage_id);
    sqlite3_bind_int64(st, 2, step);
    bind_text(st, 3, name);
    sqlite3_bind_double(st, 4, value);
    return step_done(s, st, "set metric");
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sha256 of a checkpoint directory (a Hugging Face dir): the sha256 of the text made of one line
 * "name sha256\n" per regular file directly inside it, in byte order of the names. */
static rlhf_status sha256_dir(const char *dir, char hex[65]) {
    DIR *d = opendir(dir);
    if (!d) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    rlhf_status r = RLHF_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                r = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            r = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (r == RLHF_OK && n == 0) r = RLHF_ERR(RLHF_ERR_IO, "%s: directory holds no files", dir);
    EVP_MD_CTX *ctx = r == RLHF_OK ? EVP_MD_CTX_new() : NULL;
    if (r == RLHF_OK && (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1))
        r = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot set up sha256", dir);
    if (r == RLHF_OK) {
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n && r == RLHF_OK; i++) {
            char path[4096], h[65], line[4200];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            r = rlhf_store_sha256_file(path, h, NULL);
            int len = snprintf(line, sizeof line, "%s %s\n", names[i], h);
            if (r == RLHF_OK) EVP_DigestUpdate(ctx, line, (size_t)len);
        }
    }
    if (r == RLHF_OK) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        EVP_DigestFinal_ex(ctx, md, &md_len);
        for (unsigned i = 0; i < 32 && i < md_len; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
        hex[64] = '\0';
    }
    EVP_MD_CTX_free(ctx);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return r;
}

rlhf_status rlhf_store_checkpoint_add(rlhf_store *s, const char *role, const char *path,
                                      int64_t parent_id, int64_t step, int64_t stage_id,
                                      int64_t *id) {
    char hex[65];
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        RLHF_TRY(sha256_dir(path, hex));
    else
        RLHF_TRY(rlhf_store_sha256_file(path, hex, NULL));
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, "SELECT id, sha256 FROM checkpoints WHERE path = ?1", &st));
    bind_text(st, 1, path);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t old = sqlite3_column_int64(st, 0);
        bool same = strcmp(col_text(st, 1), hex) == 0;
        sqlite3_reset(st);
        if (!same)
            return RLHF_ERR(RLHF_ERR_FORMAT,
                            "%s: registered earlier with another sha256 (the file changed)", path);
        if (id) *id = old;
        return RLHF_OK;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return SQL_ERR(s, "find checkpoint");
    RLHF_TRY(stmt(s,
                  "INSERT INTO checkpoints (role, path, sha256, parent_id, step, stage_id, "
                  "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, " NOW_SQL ")",
                  &st));
    bind_text(st, 1, role);
    bind_text(st, 2, path);
    bind_text(st, 3, hex);
    bind_id(st, 4, parent_id);
    sqlite3_bind_int64(st, 5, step);
    bind_id(st, 6, stage_id);
    RLHF_TRY(step_done(s, st, "insert checkpoint"));
    if (id) *id = sqlite3_last_insert_rowid(s->db);
    return RLHF_OK;
}

/* ---- reading
 * ------------------------------------------------------------------------------------------ */

static const char *const table_names[] = {"stages", "checkpoints", "prompts",
                                          "pairs",  "dialogues",   "samples",
                                          "scores", "selections",  "metrics",
                                          "rollouts", "judgments"};

rlhf_status rlhf_store_count(rlhf_store *s, const char *table, int64_t *n) {
    /* Table names cannot be bound; the name must be one of ours and each gets its own literal. */
    static const char *const sql[] = {
        "SELECT count(*) FROM stages",    "SELECT count(*) FROM checkpoints",
        "SELECT count(*) FROM prompts",   "SELECT count(*) FROM pairs",
        "SELECT count(*) FROM dialogues", "SELECT count(*) FROM samples",
        "SELECT count(*) FROM scores",    "SELECT count(*) FROM selections",
        "SELECT count(*) FROM metrics",   "SELECT count(*) FROM rollouts",
        "SELECT count(*) FROM judgments"};
    for (size_t i = 0; i < sizeof table_names / sizeof *table_names; i++)
        if (strcmp(table, table_names[i]) == 0) return pragma_int(s, sql[i], n);
    return RLHF_ERR(RLHF_ERR_ARG, "no table '%s' in the run store", table);
}

/* Steps the prepared (and bound) st to its end, calling row(s, st, fn, ctx) for each row; stops
 * at the first error. The caller resets or finalizes st. */
typedef rlhf_status (*row_fn)(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx);
static rlhf_status step_rows(rlhf_store *s, sqlite3_stmt *st, row_fn row, void *fn, void *ctx) {
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) return RLHF_OK;
        if (rc != SQLITE_ROW) return SQL_ERR(s, "read rows");
        RLHF_TRY(row(s, st, fn, ctx));
    }
}

/* The rows of the cached statement sql (no parameters), through row. */
static rlhf_status walk(rlhf_store *s, const char *sql, row_fn row, void *fn, void *ctx) {
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, sql, &st));
    rlhf_status r = step_rows(s, st, row, fn, ctx);
    sqlite3_reset(st);
    return r;
}

static rlhf_status prompt_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    rlhf_store_prompt p = {
        .id = sqlite3_column_int64(st, 0),
        .text = col_text(st, 1),
        .system = col_text(st, 2),
        .turns_json = col_text(st, 3),
        .unsafe = col_tri(st, 4),
        .category = col_text(st, 5),
        .split = col_split(st, 6),
        .source = col_text(st, 7),
        .stage_id = sqlite3_column_int64(st, 8),
        .src_index = sqlite3_column_int64(st, 9),
    };
    (void)s;
    return ((rlhf_store_prompt_fn)fn)(ctx, &p);
}

rlhf_status rlhf_store_prompts_each(rlhf_store *s, rlhf_store_prompt_fn fn, void *ctx) {
    return walk(s,
                "SELECT id, text, system, turns, unsafe, category, split, source, stage_id, "
                "src_index FROM prompts ORDER BY id",
                prompt_row, (void *)fn, ctx);
}

static rlhf_status pair_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    rlhf_store_pair p = {
        .id = sqlite3_column_int64(st, 0),
        .track = col_text(st, 1),
        .system = col_text(st, 2),
        .context_json = col_text(st, 3),
        .chosen = col_text(st, 4),
        .rejected = col_text(st, 5),
        .rating = col_text(st, 6),
        .chosen_safe = col_tri(st, 7),
        .rejected_safe = col_tri(st, 8),
        .split = col_split(st, 9),
        .source = col_text(st, 10),
        .stage_id = sqlite3_column_int64(st, 11),
        .src_index = sqlite3_column_int64(st, 12),
    };
    (void)s;
    return ((rlhf_store_pair_fn)fn)(ctx, &p);
}

rlhf_status rlhf_store_pairs_each(rlhf_store *s, rlhf_store_pair_fn fn, void *ctx) {
    return walk(s,
                "SELECT id, track, system, context, chosen, rejected, rating, chosen_safe, "
                "rejected_safe, split, source, stage_id, src_index FROM pairs ORDER BY id",
                pair_row, (void *)fn, ctx);
}

static rlhf_status dialogue_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    rlhf_store_dialogue d = {
        .id = sqlite3_column_int64(st, 0),
        .system = col_text(st, 1),
        .turns_json = col_text(st, 2),
        .loss_mask = sqlite3_column_blob(st, 3),
        .n_mask = sqlite3_column_bytes(st, 3),
        .split = col_split(st, 4),
        .source = col_text(st, 5),
        .stage_id = sqlite3_column_int64(st, 6),
        .src_index = sqlite3_column_int64(st, 7),
    };
    (void)s;
    return ((rlhf_store_dialogue_fn)fn)(ctx, &d);
}

rlhf_status rlhf_store_dialogues_each(rlhf_store *s, rlhf_store_dialogue_fn fn, void *ctx) {
    return walk(s,
                "SELECT id, system, turns, loss_mask, split, source, stage_id, src_index "
                "FROM dialogues ORDER BY id",
                dialogue_row, (void *)fn, ctx);
}

/* Unpacks the token BLOB in column ct and the log-prob BLOB (or NULL) in column cl of the current
 * row into s->tok_buf / s->lp_buf; *n tokens, *has_lp. what names the table in errors. */
static rlhf_status unpack_arrays(rlhf_store *s, sqlite3_stmt *st, int ct, int cl,
                                 const char *what, int64_t *n_out, bool *has_lp_out) {
    int nb = sqlite3_column_bytes(st, ct);
    const void *tb = sqlite3_column_blob(st, ct);
    int64_t n = nb / 4;
    bool has_lp = sqlite3_column_type(st, cl) != SQLITE_NULL;
    if (has_lp && sqlite3_column_bytes(st, cl) != nb)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: %s %lld: logprobs and tokens differ in length",
                        s->db_path, what, (long long)sqlite3_column_int64(st, 0));
    if (n > s->buf_cap) {
        int32_t *t = realloc(s->tok_buf, (size_t)n * sizeof *t);
        if (t) s->tok_buf = t;
        float *l = realloc(s->lp_buf, (size_t)n * sizeof *l);
        if (l) s->lp_buf = l;
        if (!t || !l) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate %lld tokens", (long long)n);
        s->buf_cap = n;
    }
    if (n) rlhf_store_unpack_i32(tb, n, s->tok_buf);
    if (has_lp && n) rlhf_store_unpack_f32(sqlite3_column_blob(st, cl), n, s->lp_buf);
    *n_out = n;
    *has_lp_out = has_lp;
    return RLHF_OK;
}

static rlhf_status sample_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    int64_t n = 0;
    bool has_lp = false;
    RLHF_TRY(unpack_arrays(s, st, 7, 8, "sample", &n, &has_lp));
    const char *fin = col_text(st, 10);
    rlhf_store_sample x = {
        .id = sqlite3_column_int64(st, 0),
        .prompt_id = sqlite3_column_int64(st, 1),
        .round = sqlite3_column_int(st, 2),
        .checkpoint_id = sqlite3_column_int64(st, 3),
        .idx = sqlite3_column_int(st, 4),
        .seed = (uint64_t)sqlite3_column_int64(st, 5),
        .temperature = (float)sqlite3_column_double(st, 6),
        .tokens = s->tok_buf,
        .logprobs = has_lp ? s->lp_buf : NULL,
        .n_tokens = (int32_t)n,
        .text = col_text(st, 9),
        .finish = fin,
        .stage_id = sqlite3_column_int64(st, 11),
    };
    return ((rlhf_store_sample_fn)fn)(ctx, &x);
}

rlhf_status rlhf_store_samples_each(rlhf_store *s, rlhf_store_sample_fn fn, void *ctx) {
    return walk(s,
                "SELECT id, prompt_id, round, checkpoint_id, idx, seed, temperature, tokens, "
                "logprobs, text, finish, stage_id FROM samples ORDER BY id",
                sample_row, (void *)fn, ctx);
}

static rlhf_status rollout_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    int64_t n = 0;
    bool has_lp = false;
    RLHF_TRY(unpack_arrays(s, st, 8, 9, "rollout", &n, &has_lp));
    rlhf_store_rollout x = {
        .id = sqlite3_column_int64(st, 0),
        .stage_id = sqlite3_column_int64(st, 1),
        .iteration = sqlite3_column_int(st, 2),
        .idx = sqlite3_column_int(st, 3),
        .prompt_id = sqlite3_column_int64(st, 4),
        .checkpoint_id = sqlite3_column_int64(st, 5),
        .seed = (uint64_t)sqlite3_column_int64(st, 6),
        .temperature = (float)sqlite3_column_double(st, 7),
        .tokens = s->tok_buf,
        .logprobs = has_lp ? s->lp_buf : NULL,
        .n_tokens = (int32_t)n,
        .text = col_text(st, 10),
        .finish = col_text(st, 11),
        .reward_help = sqlite3_column_double(st, 12),
        .reward_safe = sqlite3_column_double(st, 13),
        .gate = col_text(st, 14),
        .reward_gated = sqlite3_column_double(st, 15),
        .reward_final = sqlite3_column_double(st, 16),
        .kl = sqlite3_column_double(st, 17),
        .advantage_mean = sqlite3_column_double(st, 18),
    };
    return ((rlhf_store_rollout_fn)fn)(ctx, &x);
}

rlhf_status rlhf_store_rollouts_each(rlhf_store *s, int64_t stage_id, rlhf_store_rollout_fn fn,
                                     void *ctx) {
    static const char sql[] =
        "SELECT id, stage_id, iteration, idx, prompt_id, checkpoint_id, seed, temperature, "
        "tokens, logprobs, text, finish, reward_help, reward_safe, gate, reward_gated, "
        "reward_final, kl, advantage_mean FROM rollouts WHERE ?1 = 0 OR stage_id = ?1 "
        "ORDER BY stage_id, iteration, idx";
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, sql, &st));
    sqlite3_bind_int64(st, 1, stage_id);
    rlhf_status r = step_rows(s, st, rollout_row, (void *)fn, ctx);
    sqlite3_reset(st);
    return r;
}

static rlhf_status selection_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    rlhf_store_selection x = {
        .id = sqlite3_column_int64(st, 0),
        .round = sqlite3_column_int(st, 1),
        .prompt_id = sqlite3_column_int64(st, 2),
        .sample_id = sqlite3_column_int64(st, 3),
        .stage_id = sqlite3_column_int64(st, 4),
        .score = sqlite3_column_type(st, 5) == SQLITE_NULL ? 0.0 : sqlite3_column_double(st, 5),
    };
    (void)s;
    return ((rlhf_store_selection_fn)fn)(ctx, &x);
}

rlhf_status rlhf_store_selections_each(rlhf_store *s, rlhf_store_selection_fn fn, void *ctx) {
    return walk(s,
                "SELECT id, round, prompt_id, sample_id, stage_id, "
                "(SELECT max(value) FROM scores WHERE scores.sample_id = selections.sample_id) "
                "FROM selections ORDER BY round, prompt_id",
                selection_row, (void *)fn, ctx);
}

static rlhf_status score_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    rlhf_store_score x = {
        .id = sqlite3_column_int64(st, 0),
        .sample_id = sqlite3_column_int64(st, 1),
        .checkpoint_id = sqlite3_column_int64(st, 2),
        .value = sqlite3_column_double(st, 3),
        .stage_id = sqlite3_column_int64(st, 4),
        .role = col_text(st, 5),
        .round = sqlite3_column_int(st, 6),
        .prompt_id = sqlite3_column_int64(st, 7),
    };
    (void)s;
    return ((rlhf_store_score_fn)fn)(ctx, &x);
}

rlhf_status rlhf_store_scores_each(rlhf_store *s, rlhf_store_score_fn fn, void *ctx) {
    return walk(s,
                "SELECT sc.id, sc.sample_id, sc.checkpoint_id, sc.value, sc.stage_id, c.role, "
                "sa.round, sa.prompt_id FROM scores sc JOIN checkpoints c ON c.id = "
                "sc.checkpoint_id JOIN samples sa ON sa.id = sc.sample_id ORDER BY sc.sample_id, sc.id",
                score_row, (void *)fn, ctx);
}

static rlhf_status judgment_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    rlhf_store_judgment x = {
        .id = sqlite3_column_int64(st, 0),
        .sample_id = sqlite3_column_int64(st, 1),
        .judge = col_text(st, 2),
        .value = sqlite3_column_double(st, 3),
        .stage_id = sqlite3_column_int64(st, 4),
        .round = sqlite3_column_int(st, 5),
        .idx = sqlite3_column_int(st, 6),
        .prompt_id = sqlite3_column_int64(st, 7),
        .checkpoint_id = sqlite3_column_int64(st, 8),
    };
    (void)s;
    return ((rlhf_store_judgment_fn)fn)(ctx, &x);
}

rlhf_status rlhf_store_judgments_each(rlhf_store *s, rlhf_store_judgment_fn fn, void *ctx) {
    return walk(s,
                "SELECT j.id, j.sample_id, j.judge, j.value, j.stage_id, sa.round, sa.idx, "
                "sa.prompt_id, sa.checkpoint_id FROM judgments j JOIN samples sa ON sa.id = "
                "j.sample_id ORDER BY j.sample_id, j.judge",
                judgment_row, (void *)fn, ctx);
}

static rlhf_status checkpoint_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    rlhf_store_checkpoint x = {
        .id = sqlite3_column_int64(st, 0),
        .role = col_text(st, 1),
        .path = col_text(st, 2),
        .sha256 = col_text(st, 3),
        .parent_id = sqlite3_column_int64(st, 4),
        .step = sqlite3_column_int64(st, 5),
        .stage_id = sqlite3_column_int64(st, 6),
    };
    (void)s;
    return ((rlhf_store_checkpoint_fn)fn)(ctx, &x);
}

rlhf_status rlhf_store_checkpoints_each(rlhf_store *s, rlhf_store_checkpoint_fn fn, void *ctx) {
    return walk(s,
                "SELECT id, role, path, sha256, parent_id, step, stage_id FROM checkpoints "
                "ORDER BY id",
                checkpoint_row, (void *)fn, ctx);
}

static rlhf_status stage_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    rlhf_store_stage_info x = {
        .id = sqlite3_column_int64(st, 0),
        .kind = col_text(st, 1),
        .key = col_text(st, 2),
        .params_json = col_text(st, 3),
        .status = col_text(st, 4),
        .started_at = col_text(st, 5),
        .ended_at = col_text(st, 6),
        .error = col_text(st, 7),
        .progress = sqlite3_column_int64(st, 8),
        .total = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 9),
        .result_json = col_text(st, 10),
    };
    (void)s;
    return ((rlhf_store_stage_fn)fn)(ctx, &x);
}

rlhf_status rlhf_store_stages_each(rlhf_store *s, rlhf_store_stage_fn fn, void *ctx) {
    return walk(s,
                "SELECT id, kind, key, params, status, started_at, ended_at, error, progress, "
                "total, result FROM stages ORDER BY id",
                stage_row, (void *)fn, ctx);
}

static rlhf_status metric_row(rlhf_store *s, sqlite3_stmt *st, void *fn, void *ctx) {
    (void)s;
    return ((rlhf_store_metric_fn)fn)(ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                      col_text(st, 2), sqlite3_column_double(st, 3));
}

rlhf_status rlhf_store_metrics_last(rlhf_store *s, rlhf_store_metric_fn fn, void *ctx) {
    return walk(s,
                "SELECT m.stage_id, m.step, m.name, m.value FROM metrics m "
                "WHERE m.step = (SELECT max(step) FROM metrics x WHERE x.stage_id = m.stage_id "
                "AND x.name = m.name) ORDER BY m.stage_id, m.name",
                metric_row, (void *)fn, ctx);
}

rlhf_status rlhf_store_metrics_each(rlhf_store *s, int64_t stage_id, rlhf_store_metric_fn fn,
                                    void *ctx) {
    static const char *const sql = "SELECT stage_id, step, name, value FROM metrics "
                                   "WHERE ?1 IS NULL OR stage_id = ?1 ORDER BY stage_id, name, step";
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, sql, &st));
    if (bind_id(st, 1, stage_id) != SQLITE_OK) return SQL_ERR(s, "bind");
    rlhf_status r = step_rows(s, st, metric_row, (void *)fn, ctx);
    sqlite3_reset(st);
    return r;
}

/* query_each's row: every column as text and as a number (NaN when it is none). */
typedef struct query_cols {
    int n;
    const char **text;
    double *num;
    rlhf_store_row_fn fn;
    void *ctx;
} query_cols;
static rlhf_status query_row(rlhf_store *s, sqlite3_stmt *st, void *unused, void *ctx) {
    query_cols *q = ctx;
    (void)s;
    (void)unused;
    for (int c = 0; c < q->n; c++) {
        const int type = sqlite3_column_type(st, c);
        q->num[c] = NAN;
        if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) q->num[c] = sqlite3_column_double(st, c);
        q->text[c] = type == SQLITE_NULL ? NULL : col_text(st, c);
        if (type == SQLITE_TEXT && q->text[c] && q->text[c][0]) {
            char *end = NULL;
            double v = strtod(q->text[c], &end);
            if (end && *end == '\0') q->num[c] = v;
        }
    }
    rlhf_store_row row = {q->n, q->text, q->num};
    return q->fn(q->ctx, &row);
}

rlhf_status rlhf_store_query_each(rlhf_store *s, const char *sql, const char *const *params,
                                  int32_t n_params, rlhf_store_row_fn fn, void *ctx) {
    sqlite3_stmt *st = NULL; /* not cached: a reader may run many different statements once */
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return SQL_ERR(s, "query");
    rlhf_status r = RLHF_OK;
    const char **text = NULL;
    double *num = NULL;
    const int n = sqlite3_column_count(st);
    if (!sqlite3_stmt_readonly(st)) {
        r = RLHF_ERR(RLHF_ERR_ARG, "%s: query_each runs read-only statements only", s->db_path);
        goto done;
    }
    for (int32_t i = 0; i < n_params; i++)
        if (bind_text(st, i + 1, params[i]) != SQLITE_OK) {
            r = SQL_ERR(s, "bind");
            goto done;
        }
    text = calloc((size_t)(n > 0 ? n : 1), sizeof *text);
    num = calloc((size_t)(n > 0 ? n : 1), sizeof *num);
    if (!text || !num) {
        r = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto done;
    }
    query_cols qc = {n, text, num, fn, ctx};
    r = step_rows(s, st, query_row, NULL, &qc);
done:
    free(text);
    free(num);
    sqlite3_finalize(st);
    return r;
}

rlhf_status rlhf_store_table_exists(rlhf_store *s, const char *table, bool *exists) {
    static const char *const sql =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1";
    sqlite3_stmt *st = NULL;
    RLHF_TRY(stmt(s, sql, &st));
    if (bind_text(st, 1, table) != SQLITE_OK) return SQL_ERR(s, "bind");
    int rc = sqlite3_step(st);
    rlhf_status r = RLHF_OK;
    if (rc == SQLITE_ROW) *exists = sqlite3_column_int64(st, 0) > 0;
    else r = SQL_ERR(s, "look up a table");
    sqlite3_reset(st);
    return r;
}

/* ---- helpers
 * ---------------------------------------------------------------------------------------- */

rlhf_status rlhf_store_sha256_file(const char *path, char hex[65], int64_t *size_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    rlhf_status r = RLHF_OK;
    int64_t size = 0;
    if (!ctx || !buf) {
        r = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate the hash state", path);
        goto done;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        r = RLHF_ERR(RLHF_ERR_UNSUPPORTED, "sha256 is not available in libcrypto");
        goto done;
    }
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
        size += (int64_t)n;
    }
    if (ferror(f)) {
        r = RLHF_ERR(RLHF_ERR_IO, "%s: read error: %s", path, strerror(errno));
        goto done;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(ctx, md, &md_len);
    for (unsigned i = 0; i < 32 && i < md_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = '\0';
    if (size_out) *size_out = size;
done:
    free(buf);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return r;
}

void rlhf_store_pack_i32(const int32_t *v, int64_t n, uint8_t *out) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)v[i];
        out[4 * i + 0] = (uint8_t)(u);
        out[4 * i + 1] = (uint8_t)(u >> 8);
        out[4 * i + 2] = (uint8_t)(u >> 16);
        out[4 * i + 3] = (uint8_t)(u >> 24);
    }
}

void rlhf_store_unpack_i32(const uint8_t *in, int64_t n, int32_t *v) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)in[4 * i] | (uint32_t)in[4 * i + 1] << 8 |
                     (uint32_t)in[4 * i + 2] << 16 | (uint32_t)in[4 * i + 3] << 24;
        v[i] = (int32_t)u;
    }
}

void rlhf_store_pack_f32(const float *v, int64_t n, uint8_t *out) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        int32_t w = (int32_t)u;
        rlhf_store_pack_i32(&w, 1, out + 4 * i);
    }
}

void rlhf_store_unpack_f32(const uint8_t *in, int64_t n, float *v) {
    for (int64_t i = 0; i < n; i++) {
        int32_t w;
        rlhf_store_unpack_i32(in + 4 * i, 1, &w);
        uint32_t u = (uint32_t)w;
        memcpy(&v[i], &u, 4);
    }
}
