/* test_store_read.c: the store's generic readers used by `rlhf report` (rlhf/store.h):
 *
 *   store-read-01  rlhf_store_metrics_each: one stage's metrics or every stage's, ordered by
 *                  (stage, name, step), values exact
 *   store-read-02  rlhf_store_query_each: bound text parameters, NULL columns (text NULL, num NaN),
 *                  numbers given as text and as doubles, a callback error stops the walk
 *   store-read-03  a statement that writes is refused (nothing written); an SQL error (a table the
 *                  run lacks) is RLHF_ERR_SQLITE naming the database
 *   store-read-04  rlhf_store_table_exists for a schema table and a missing one */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "test.h"

typedef struct mlist {
    int64_t stage[16], step[16];
    char name[16][32];
    double value[16];
    int n;
} mlist;

static rlhf_status on_metric(void *ctx, int64_t stage, int64_t step, const char *name, double v) {
    mlist *m = ctx;
    if (m->n == 16) return RLHF_ERR(RLHF_ERR_ARG, "too many");
    m->stage[m->n] = stage, m->step[m->n] = step, m->value[m->n] = v;
    snprintf(m->name[m->n], sizeof m->name[m->n], "%s", name);
    m->n++;
    return RLHF_OK;
}

typedef struct rows {
    int n;
    char text[8][3][32];
    double num[8][3];
    bool null[8][3];
    int stop_after; /* > 0: return an error at that row */
} rows;

static rlhf_status on_row(void *ctx, const rlhf_store_row *r) {
    rows *x = ctx;
    if (x->stop_after > 0 && x->n == x->stop_after) return RLHF_ERR(RLHF_ERR_FORMAT, "stop here");
    if (x->n == 8 || r->n > 3) return RLHF_ERR(RLHF_ERR_ARG, "unexpected shape");
    for (int32_t c = 0; c < r->n; c++) {
        x->null[x->n][c] = r->text[c] == NULL;
        snprintf(x->text[x->n][c], 32, "%s", r->text[c] ? r->text[c] : "");
        x->num[x->n][c] = r->num[c];
    }
    x->n++;
    return RLHF_OK;
}

int main(void) {
    char dir[] = "/tmp/test_store_read_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char run[64];
    snprintf(run, sizeof run, "%s/run", dir);
    rlhf_store *s = NULL;
    CHECK_OK(rlhf_store_open(&s, run, true));
    if (!s) return 1;
    int64_t a = 0, b = 0;
    CHECK_OK(rlhf_store_stage_begin(s, "sft", "a", NULL, -1, &a));
    CHECK_OK(rlhf_store_stage_begin(s, "ppo", "b", "{\"x\": 1}", -1, &b));
    CHECK_OK(rlhf_store_metric_set(s, a, 2, "sft/loss", 1.5));
    CHECK_OK(rlhf_store_metric_set(s, a, 1, "sft/loss", 2.25));
    CHECK_OK(rlhf_store_metric_set(s, a, 1, "sft/lr", 0.001));
    CHECK_OK(rlhf_store_metric_set(s, b, 1, "ppo/kl_ref", 0.125));

    /* store-read-01 */
    mlist m = {0};
    CHECK_OK(rlhf_store_metrics_each(s, a, on_metric, &m));
    CHECK(m.n == 3 && strcmp(m.name[0], "sft/loss") == 0 && m.step[0] == 1 && m.value[0] == 2.25 &&
          m.step[1] == 2 && m.value[1] == 1.5 && strcmp(m.name[2], "sft/lr") == 0);
    memset(&m, 0, sizeof m);
    CHECK_OK(rlhf_store_metrics_each(s, 0, on_metric, &m));
    CHECK(m.n == 4 && m.stage[3] == b && m.value[3] == 0.125);

    /* store-read-02 */
    rows r = {0};
    const char *p[1] = {"sft"};
    CHECK_OK(rlhf_store_query_each(s,
                                   "SELECT kind, key, total FROM stages WHERE kind = ?1 "
                                   "UNION ALL SELECT 'x', '3.5', 7",
                                   p, 1, on_row, &r));
    CHECK(r.n == 2);
    CHECK(strcmp(r.text[0][0], "sft") == 0 && isnan(r.num[0][0]) && r.null[0][2] &&
          isnan(r.num[0][2]));
    CHECK(r.num[1][1] == 3.5 && r.num[1][2] == 7 && strcmp(r.text[1][2], "7") == 0);
    memset(&r, 0, sizeof r);
    CHECK_OK(rlhf_store_query_each(s, "SELECT value FROM metrics WHERE name = ?1", (const char *[]){NULL}, 1,
                                   on_row, &r));
    CHECK(r.n == 0); /* name = NULL matches nothing */
    memset(&r, 0, sizeof r);
    r.stop_after = 1;
    CHECK(rlhf_store_query_each(s, "SELECT id FROM stages", NULL, 0, on_row, &r) ==
          RLHF_ERR_FORMAT);
    CHECK(r.n == 1);

    /* store-read-03 */
    memset(&r, 0, sizeof r);
    CHECK(rlhf_store_query_each(s, "DELETE FROM metrics", NULL, 0, on_row, &r) == RLHF_ERR_ARG);
    int64_t n = 0;
    CHECK_OK(rlhf_store_count(s, "metrics", &n));
    CHECK(n == 4);
    CHECK(rlhf_store_query_each(s, "SELECT * FROM no_such_table", NULL, 0, on_row, &r) ==
          RLHF_ERR_SQLITE);
    CHECK(strstr(rlhf_last_error(), "rlhf.db") && strstr(rlhf_last_error(), "no_such_table"));

    /* store-read-04 */
    bool ex = false;
    CHECK_OK(rlhf_store_table_exists(s, "rollouts", &ex));
    CHECK(ex);
    CHECK_OK(rlhf_store_table_exists(s, "no_such_table", &ex));
    CHECK(!ex);

    rlhf_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}
