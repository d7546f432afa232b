/* world_write.c: the files of the demo world that the recipe consumes (world_write): pretraining
 * corpus, SFT demonstrations of mixed quality, prompt lists, preference pairs labelled by the gold
 * judges with noise, Ghost Attention lists and dialogues, world.json and README.txt. Every draw
 * comes from PCG32 streams of the world's seed, so the files are the same on every machine. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "gatt.h"
#include "world_impl.h"

/* Per size: how much of everything. */
typedef struct sizes {
    int32_t corpus_blocks;     /* repetitions of the corpus's knowledge block (shuffled) */
    int32_t sft, sft_followup, sft_gatt;
    int32_t pairs_help, pairs_safe; /* train pairs; eval pairs are 15% of these */
    int32_t max_train_safe, max_train_unsafe, max_eval_safe, max_eval_unsafe; /* 0: all */
    int32_t gatt_dialogues;
    int32_t max_eval_family; /* eval prompts per family at most (a balanced comparison); 0: all */
} sizes;

static sizes sizes_of(world_size s) {
    if (s == WORLD_SIZE_FULL) return (sizes){6, 2400, 300, 400, 3000, 2000, 0, 0, 0, 0, 200, 16};
    return (sizes){2, 500, 60, 80, 600, 400, 60, 20, 24, 8, 40, 6};
}

typedef struct wctx {
    const world *w;
    const char *dir;
    sizes z;
    world_counts *c;
    int32_t *train[WORLD_N_FAMILIES], n_train[WORLD_N_FAMILIES]; /* task indices per family */
    int32_t *evals[WORLD_N_FAMILIES], n_eval[WORLD_N_FAMILIES];
} wctx;

static rlhf_status path_of(char *buf, size_t cap, const char *dir, const char *name) {
    if (snprintf(buf, cap, "%s/%s", dir, name) >= (int)cap)
        return RLHF_ERR(RLHF_ERR_ARG, "world: path too long: %s/%s", dir, name);
    return RLHF_OK;
}

static rlhf_status close_file(FILE *f, const char *path) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return RLHF_ERR(RLHF_ERR_IO, "%s: write failed", path);
    return RLHF_OK;
}

static rlhf_status dump_json(json_t *j, const char *dir, const char *name) {
    char path[4096];
    RLHF_TRY(path_of(path, sizeof path, dir, name));
    if (!j) return RLHF_ERR(RLHF_ERR_NOMEM, "world: out of memory building %s", path);
    int r = json_dump_file(j, path, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    json_decref(j);
    if (r != 0) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot write", path);
    return RLHF_OK;
}

/* Draws a quality from a mixture {q, weight}... terminated by weight < 0. */
typedef struct qmix {
    world_quality q;
    float p;
} qmix;
static world_quality pick(rlhf_rng *r, const qmix *m) {
    float u = rlhf_rng_uniform(r), acc = 0;
    int i = 0;
    for (; m[i + 1].p >= 0; i++) {
        acc += m[i].p;
        if (u < acc) return m[i].q;
    }
    return m[i].q;
}
static const qmix MIX_SAFE[] = {{WORLD_Q_GOOD, 0.50f},  {WORLD_Q_VERBOSE, 0.10f},
                                {WORLD_Q_WRONG, 0.15f}, {WORLD_Q_PARTIAL, 0.10f},
                                {WORLD_Q_FORMAT, 0.08f}, {WORLD_Q_REFUSE, 0.07f},
                                {WORLD_Q_GOOD, -1}};
static const qmix MIX_UNSAFE[] = {{WORLD_Q_GOOD, 0.25f},
                                  {WORLD_Q_REFUSE, 0.25f},
                                  {WORLD_Q_HARMFUL, 0.35f},
                                  {WORLD_Q_EVASIVE, 0.15f},
                                  {WORLD_Q_GOOD, -1}};
static const qmix MIX_LOOKALIKE[] = {{WORLD_Q_GOOD, 0.50f},
                                     {WORLD_Q_VERBOSE, 0.05f},
                                     {WORLD_Q_PARTIAL, 0.10f},
                                     {WORLD_Q_REFUSE, 0.35f},
                                     {WORLD_Q_GOOD, -1}};
static const qmix *mix_of(const world_task *t) {
    return t->family == WORLD_FAM_UNSAFE      ? MIX_UNSAFE
           : t->family == WORLD_FAM_LOOKALIKE ? MIX_LOOKALIKE
                                              : MIX_SAFE;
}

/* Family weights for demonstrations and pairs (single-turn families). */
static world_family pick_family(rlhf_rng *r, bool safe_only) {
    static const struct {
        world_family f;
        float p;
    } W[] = {{WORLD_FAM_ARITH, 0.22f}, {WORLD_FAM_FACT, 0.20f},   {WORLD_FAM_ONEWORD, 0.12f},
             {WORLD_FAM_LIST, 0.10f},  {WORLD_FAM_LOOKALIKE, 0.14f}, {WORLD_FAM_UNSAFE, 0.22f}};
    float total = safe_only ? 0.78f : 1.0f, u = rlhf_rng_uniform(r) * total, acc = 0;
    for (int i = 0; i < 6; i++) {
        acc += W[i].p;
        if (u < acc) return W[i].f;
    }
    return safe_only ? WORLD_FAM_LOOKALIKE : WORLD_FAM_UNSAFE;
}

static const world_task *pick_task(const wctx *x, rlhf_rng *r, world_family f, bool eval) {
    int32_t n = eval ? x->n_eval[f] : x->n_train[f];
    if (n == 0) return NULL;
    return &x->w->tasks[(eval ? x->evals[f] : x->train[f])[world_rand(r, n)]];
}

/* ---- corpus ------------------------------------------------------------------------------------- */

static const char *const FACT_S[WORLD_N_ATTRS] = {"%s lives in %s.", "%s has a %s.", "%s likes %s.",
                                                  "%s likes %s."};

static void shuffle(rlhf_rng *r, int32_t *v, int32_t n) {
    for (int32_t k = n - 1; k > 0; k--) {
        int32_t j = world_rand(r, k + 1), t = v[k];
        v[k] = v[j], v[j] = t;
    }
}

static rlhf_status write_corpus(wctx *x) {
    const world *w = x->w;
    char path[4096];
    RLHF_TRY(path_of(path, sizeof path, x->dir, "corpus.txt"));
    FILE *f = fopen(path, "wb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    rlhf_rng r;
    rlhf_rng_seed(&r, w->seed, 0x636f7270); /* "corp" */
    int64_t lines = 0;
    for (int32_t blk = 0; blk < x->z.corpus_blocks; blk++) {
        /* the fact base, one paragraph per person */
        int32_t perm[WORLD_N_PEOPLE];
        for (int32_t i = 0; i < WORLD_N_PEOPLE; i++)
            perm[i] = i;
        shuffle(&r, perm, WORLD_N_PEOPLE);
        for (int32_t k = 0; k < WORLD_N_PEOPLE; k++) {
            const world_person *p = &w->people[perm[k]];
            int32_t ord[WORLD_N_ATTRS] = {0, 1, 2, 3};
            shuffle(&r, ord, WORLD_N_ATTRS);
            for (int a = 0; a < WORLD_N_ATTRS; a++) {
                if (a) fputc(' ', f);
                fprintf(f, FACT_S[ord[a]], world_names[p->name],
                        world_values[ord[a]][p->attr[ord[a]]]);
            }
            fputs("\n\n", f);
            lines++;
        }
        /* arithmetic facts: every a plus b and a minus b with one-digit operands and result
         * once per block, in a shuffled order, so that the results of held-out prompts and
         * follow-ups are knowledge the model can memorize */
        {
            int32_t facts[10 * 10 * 2], nf = 0;
            for (int a = 0; a <= 9; a++)
                for (int b = 0; b <= 9; b++) {
                    if (a + b <= 9) facts[nf++] = (a * 10 + b) * 2;
                    if (a >= b) facts[nf++] = (a * 10 + b) * 2 + 1;
                }
            shuffle(&r, facts, nf);
            for (int32_t i = 0; i < nf; i++) {
                int a = facts[i] / 20, b = facts[i] / 2 % 10, minus = facts[i] % 2;
                fprintf(f, "%d %s %d is %d.", a, minus ? "minus" : "plus", b, minus ? a - b : a + b);
                fputs(i % 6 == 5 || i == nf - 1 ? "\n\n" : " ", f);
                lines += i % 6 == 5 || i == nf - 1;
            }
        }
        /* categories */
        for (int c = 0; c < WORLD_N_CATS; c++) {
            int32_t ord[WORLD_N_VALUES] = {0, 1, 2, 3, 4, 5};
            shuffle(&r, ord, WORLD_N_VALUES);
            fprintf(f, "These are %s: ", world_cat_names[c]);
            for (int i = 0; i < WORLD_N_VALUES; i++)
                fprintf(f, "%s%s", i ? ", " : "", world_cat_items[c][ord[i]]);
            fputs(".\n\n", f);
            lines++;
        }
        /* know-how behind the look-alike questions (the answers, not the prompts) */
        for (int i = 0; i < WORLD_N_LOOKALIKE; i++) {
            const world_lookalike *L = &world_lookalikes[i];
            fprintf(f, "%s%s\n\n", world_rand(&r, 2) ? "Here is a tip. " : "A good way: ",
                    L->answer);
            lines++;
        }
        /* the harmful recipes exist in the world's texts (bad books) */
        fprintf(f, "A bad book says: %s\n\n", world_recipes[world_rand(&r, WORLD_N_HARMS)]);
        lines++;
        /* dialogues with good answers on train prompts */
        int32_t nd = w->size == WORLD_SIZE_FULL ? 120 : 60;
        for (int i = 0; i < nd; i++) {
            world_family fam = pick_family(&r, false);
            const world_task *t = pick_task(x, &r, fam, false);
            if (!t) continue;
            fprintf(f, "User: %s\nAssistant: %s\n\n", t->user[0], t->gold[0]);
            lines++;
        }
        for (int i = 0; i < 10; i++) {
            const world_task *t = pick_task(x, &r, WORLD_FAM_FOLLOWUP, false);
            if (!t) break;
            fprintf(f, "User: %s\nAssistant: %s\nUser: %s\nAssistant: %s\n\n", t->user[0],
                    t->gold[0], t->user[1], t->gold[1]);
            lines++;
        }
        fputs("User: Who are you?\nAssistant: I am a helper.\n\n"
              "User: What is your favourite hobby?\nAssistant: I like to help people.\n\n",
              f);
        lines += 2;
    }
    long pos = ftell(f);
    RLHF_TRY(close_file(f, path));
    x->c->corpus_bytes = pos;
    x->c->corpus_lines = lines;
    return RLHF_OK;
}

/* ---- GAtt lists and instruction-following ------------------------------------------------------- */

static const char *const STYLE_LINES[] = {"end_word\tfriend", "end_word\tokay", "start_word\tWell",
                                          "start_word\tSure"};

static rlhf_status write_lines(const char *dir, const char *name, const char *header,
                               const char *const *items, int32_t n) {
    char path[4096];
    RLHF_TRY(path_of(path, sizeof path, dir, name));
    FILE *f = fopen(path, "wb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "# %s\n", header);
    for (int32_t i = 0; i < n; i++)
        fprintf(f, "%s\n", items[i]);
    return close_file(f, path);
}

/* Questions for fillers and "Answer this:" probes: train arith and fact prompts. */
static int32_t gatt_questions(const wctx *x, const char **out, int32_t cap, world_family fam,
                              int32_t stride) {
    int32_t n = 0;
    for (int32_t i = 0; i < x->n_train[fam] && n < cap; i += stride)
        out[n++] = x->w->tasks[x->train[fam][i]].user[0];
    return n;
}

static rlhf_status write_gatt_lists(wctx *x, char *gdir) {
    RLHF_TRY(rlhf_mkdirs(gdir));
    RLHF_TRY(write_lines(gdir, "hobbies.txt", "hobbies of the demo world (You enjoy X.)",
                         world_hobbies, 10));
    const char *lang[] = {"Robot\tbeep|boop"};
    RLHF_TRY(write_lines(gdir, "languages.txt",
                         "the demo world's one language: Robot (answers say beep boop)", lang, 1));
    char fig[4][64];
    const char *figs[4];
    for (int i = 0; i < 4; i++) {
        snprintf(fig[i], sizeof fig[i], "%s\t%s", world_figures[i][0], world_figures[i][1]);
        figs[i] = fig[i];
    }
    RLHF_TRY(write_lines(gdir, "figures.txt", "figures of the demo world (Act as X.)", figs, 4));
    RLHF_TRY(write_lines(gdir, "styles.txt", "style rules a tiny model can learn", STYLE_LINES, 4));
    const char *q[64];
    int32_t n = gatt_questions(x, q, 20, WORLD_FAM_FACT, 2);
    n += gatt_questions(x, q + n, 32 - n, WORLD_FAM_ARITH, 5);
    RLHF_TRY(write_lines(gdir, "questions.txt", "questions for Answer-this probes (train prompts)",
                         q, n));
    n = gatt_questions(x, q, 16, WORLD_FAM_ARITH, 3);
    n += gatt_questions(x, q + n, 32 - n, WORLD_FAM_LIST, 1);
    return write_lines(gdir, "fillers.txt", "unrelated user messages (train prompts)", q, n);
}

/* The answer base as an instruction demands it: a probe answer or the gold answer, then the
 * language (Robot) and the style rules applied. */
static char *obey(const gatt_instr *in, const char *base) {
    world_sb b = {0};
    const char *start = NULL, *end = NULL;
    bool robot = false;
    for (int32_t i = 0; i < in->n; i++) {
        const gatt_constraint *c = &in->c[i];
        if (c->kind == GATT_LANGUAGE) robot = true;
        if (c->kind == GATT_STYLE && c->style == GATT_STYLE_START_WORD) start = c->value;
        if (c->kind == GATT_STYLE && c->style == GATT_STYLE_END_WORD) end = c->value;
    }
    if (start) world_sb_add(&b, "%s, ", start);
    if (robot) world_sb_add(&b, "%s", start ? "beep boop beep. " : "Beep boop beep. ");
    size_t n = strlen(base);
    if (end && n && base[n - 1] == '.') world_sb_add(&b, "%.*s, %s.", (int)(n - 1), base, end);
    else if (end) world_sb_add(&b, "%s %s.", base, end);
    else world_sb_add(&b, "%s", base);
    return world_sb_take(&b);
}

/* A user turn probing constraint ci of in (or a plain question when ci < 0), with the answer base
 * that respects it: *user and *base point into static or task texts. */
static void probe_turn(const wctx *x, rlhf_rng *r, const gatt_instr *in, int32_t ci, char *ubuf,
                       size_t ucap, char *bbuf, size_t bcap) {
    const world_task *t = pick_task(x, r, world_rand(r, 2) ? WORLD_FAM_FACT : WORLD_FAM_ARITH,
                                    false);
    if (ci >= 0 && in && (in->c[ci].kind == GATT_HOBBY)) {
        snprintf(ubuf, ucap, "What is your favourite hobby?");
        snprintf(bbuf, bcap, "I enjoy %s.", in->c[ci].value);
    } else if (ci >= 0 && in && in->c[ci].kind == GATT_FIGURE) {
        snprintf(ubuf, ucap, "Who are you?");
        snprintf(bbuf, bcap, "I am %s.", in->c[ci].value);
    } else if (ci >= 0) {
        snprintf(ubuf, ucap, "Answer this: %s", t->user[0]);
        snprintf(bbuf, bcap, "%s", t->gold[0]);
    } else {
        snprintf(ubuf, ucap, "%s", t->user[0]);
        snprintf(bbuf, bcap, "%s", t->gold[0]);
    }
}

static json_t *turn_json(const char *from, const char *text) {
    return json_pack("{s:s, s:s}", "from", from, "value", text);
}

/* GAtt-style demonstrations: the instruction is obeyed in the answer to the turn where it is
 * given and forgotten afterwards (later answers are plain), as in ordinary multi-turn data. It is
 * given as the system prompt (a third of the demonstrations, obeyed in the first answer) or
 * prefixed to one user turn as "{instruction}\n\n{user}" (the first, or a random one: the form of
 * the sampling version of `rlhf gatt generate`, so that the policy obeys there). */
static rlhf_status add_gatt_demos(wctx *x, const gatt_lists *L, json_t *arr, rlhf_rng *r,
                                  int64_t *id) {
    gatt_synth_opts o = gatt_synth_defaults();
    for (int32_t i = 0; i < x->z.sft_gatt; i++) {
        gatt_instr in = {0};
        RLHF_TRY(gatt_instr_draw(L, &o, r, &in));
        json_t *conv = json_array();
        int32_t mode = world_rand(r, 3);
        int32_t turns = mode == 2 ? 2 + world_rand(r, 3) : 1 + world_rand(r, 3);
        int32_t given = mode == 2 ? world_rand(r, turns) : 0;
        char u[256], base[256];
        for (int32_t k = 0; k < turns; k++) {
            bool probe = world_rand(r, 3) > 0;
            int32_t ci = probe ? world_rand(r, in.n) : -1;
            probe_turn(x, r, &in, ci, u, sizeof u, base, sizeof base);
            char *ans, *ut;
            if (k == given) ans = obey(&in, base);
            else if (ci >= 0 && in.c[ci].kind == GATT_HOBBY) ans = strdup("I like to help people.");
            else if (ci >= 0 && in.c[ci].kind == GATT_FIGURE) ans = strdup("I am a helper.");
            else ans = strdup(base);
            ut = mode != 0 && k == given ? world_strf("%s\n\n%s", in.text, u) : strdup(u);
            if (!ans || !ut || !conv) {
                free(ans);
                free(ut);
                json_decref(conv);
                gatt_instr_free(&in);
                return RLHF_ERR(RLHF_ERR_NOMEM, "world: out of memory");
            }
            json_array_append_new(conv, turn_json("human", ut));
            json_array_append_new(conv, turn_json("gpt", ans));
            free(ans);
            free(ut);
        }
        char idb[32];
        snprintf(idb, sizeof idb, "g%lld", (long long)(*id)++);
        json_t *d = mode == 0 ? json_pack("{s:s, s:s, s:o}", "id", idb, "system", in.text,
                                          "conversations", conv)
                              : json_pack("{s:s, s:o}", "id", idb, "conversations", conv);
        gatt_instr_free(&in);
        if (!d) return RLHF_ERR(RLHF_ERR_NOMEM, "world: out of memory");
        json_array_append_new(arr, d);
        x->c->sft_gatt++;
    }
    return RLHF_OK;
}

static rlhf_status write_gatt_dialogues(wctx *x) {
    rlhf_rng r;
    rlhf_rng_seed(&r, x->w->seed, 0x67646c67); /* "gdlg" */
    json_t *arr = json_array();
    for (int32_t i = 0; arr && i < x->z.gatt_dialogues; i++) {
        json_t *conv = json_array();
        int32_t turns = 4 + world_rand(&r, 3);
        char u[256], base[256];
        for (int32_t k = 0; k < turns; k++) {
            probe_turn(x, &r, NULL, -1, u, sizeof u, base, sizeof base);
            json_array_append_new(conv, turn_json("human", u));
            json_array_append_new(conv, turn_json("gpt", base));
        }
        char idb[32];
        snprintf(idb, sizeof idb, "gd%d", i);
        json_array_append_new(arr, json_pack("{s:s, s:o}", "id", idb, "conversations", conv));
        x->c->gatt_dialogues++;
    }
    return dump_json(arr, x->dir, "gatt_dialogues.json");
}

/* ---- SFT demonstrations ------------------------------------------------------------------------- */

static rlhf_status write_sft(wctx *x) {
    rlhf_rng r;
    rlhf_rng_seed(&r, x->w->seed, 0x73667464); /* "sftd" */
    json_t *arr = json_array();
    if (!arr) return RLHF_ERR(RLHF_ERR_NOMEM, "world: out of memory");
    int64_t id = 0;
    rlhf_status st = RLHF_OK;
    char idb[32];
    for (int32_t i = 0; i < x->z.sft; i++) {
        const world_task *t = pick_task(x, &r, pick_family(&r, false), false);
        if (!t) continue;
        char *a = NULL;
        RLHF_TRY_GOTO(st, world_answer(x->w, t, pick(&r, mix_of(t)), &r, &a), fail);
        snprintf(idb, sizeof idb, "d%lld", (long long)id++);
        json_array_append_new(arr, json_pack("{s:s, s:[o,o]}", "id", idb, "conversations",
                                             turn_json("human", t->user[0]), turn_json("gpt", a)));
        free(a);
        x->c->sft++;
    }
    for (int32_t i = 0; i < x->z.sft_followup; i++) {
        const world_task *t = pick_task(x, &r, WORLD_FAM_FOLLOWUP, false);
        if (!t) break;
        char *a = NULL;
        RLHF_TRY_GOTO(st, world_answer(x->w, t, pick(&r, MIX_SAFE), &r, &a), fail);
        snprintf(idb, sizeof idb, "d%lld", (long long)id++);
        json_array_append_new(arr, json_pack("{s:s, s:[o,o,o,o]}", "id", idb, "conversations",
                                             turn_json("human", t->user[0]),
                                             turn_json("gpt", t->gold[0]),
                                             turn_json("human", t->user[1]), turn_json("gpt", a)));
        free(a);
        x->c->sft++;
        x->c->sft_followup++;
    }
    {
        char gdir[4096];
        RLHF_TRY_GOTO(st, path_of(gdir, sizeof gdir, x->dir, "gatt"), fail);
        gatt_lists L = {0};
        st = gatt_lists_load_dir(&L, gdir);
        if (st == RLHF_OK) st = add_gatt_demos(x, &L, arr, &r, &id);
        gatt_lists_free(&L);
        if (st != RLHF_OK) goto fail;
        x->c->sft += x->c->sft_gatt;
    }
    return dump_json(arr, x->dir, "sft.json");
fail:
    json_decref(arr);
    return st;
}

/* ---- prompt lists ------------------------------------------------------------------------------- */

static rlhf_status write_prompts(wctx *x) {
    rlhf_rng r;
    rlhf_rng_seed(&r, x->w->seed, 0x70726d70); /* "prmp" */
    static const char *const NAMES[2][2] = {{"prompts_train_safe.json", "prompts_train_unsafe.json"},
                                            {"prompts_eval_safe.json", "prompts_eval_unsafe.json"}};
    int32_t caps[2][2] = {{x->z.max_train_safe, x->z.max_train_unsafe},
                          {x->z.max_eval_safe, x->z.max_eval_unsafe}};
    int64_t *cnt[2][2] = {{&x->c->prompts_train_safe, &x->c->prompts_train_unsafe},
                          {&x->c->prompts_eval_safe, &x->c->prompts_eval_unsafe}};
    const world *w = x->w;
    int32_t *idx = malloc((size_t)w->n_tasks * sizeof *idx);
    if (!idx) return RLHF_ERR(RLHF_ERR_NOMEM, "world: out of memory");
    for (int ev = 0; ev < 2; ev++)
        for (int un = 0; un < 2; un++) {
            int32_t n = 0;
            for (int32_t i = 0; i < w->n_tasks; i++) {
                const world_task *t = &w->tasks[i];
                if (t->n_user == 1 && t->eval == (bool)ev && t->unsafe == (bool)un) idx[n++] = i;
            }
            if (ev && x->z.max_eval_family > 0) { /* a seeded subset of each family */
                int32_t per[WORLD_N_FAMILIES] = {0}, m = 0;
                shuffle(&r, idx, n);
                for (int32_t i = 0; i < n; i++)
                    if (per[w->tasks[idx[i]].family]++ < x->z.max_eval_family) idx[m++] = idx[i];
                n = m;
                for (int32_t a = 1; a < n; a++) /* back to task order */
                    for (int32_t b = a; b > 0 && idx[b - 1] > idx[b]; b--) {
                        int32_t t = idx[b];
                        idx[b] = idx[b - 1], idx[b - 1] = t;
                    }
            }
            if (caps[ev][un] > 0 && n > caps[ev][un]) { /* a seeded subset, kept in task order */
                shuffle(&r, idx, n);
                n = caps[ev][un];
                for (int32_t a = 1; a < n; a++) /* insertion sort back to task order */
                    for (int32_t b = a; b > 0 && idx[b - 1] > idx[b]; b--) {
                        int32_t t = idx[b];
                        idx[b] = idx[b - 1], idx[b - 1] = t;
                    }
            }
            json_t *arr = json_array();
            for (int32_t i = 0; arr && i < n; i++)
                json_array_append_new(arr, json_pack("{s:s, s:b, s:s}", "prompt",
                                                     w->tasks[idx[i]].user[0], "unsafe", un,
                                                     "category",
                                                     world_family_name(w->tasks[idx[i]].family)));
            *cnt[ev][un] = n;
            rlhf_status st = dump_json(arr, x->dir, NAMES[ev][un]);
            if (st != RLHF_OK) {
                free(idx);
                return st;
            }
        }
    free(idx);
    return RLHF_OK;
}

/* ---- preference pairs --------------------------------------------------------------------------- */

static void csv_field(FILE *f, const char *s, bool last) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
    fputc(last ? '\n' : ',', f);
}

/* The preference strength of a gold difference d (helpfulness scale; safety uses its value). */
static const char *rating_of(double d) {
    return d >= 0.5 ? "significantly" : d >= 0.25 ? "better" : d >= 0.1 ? "slightly" : "negligibly";
}

/* Probability that a labeller prefers the worse answer: falls with the gold difference. */
static double flip_prob(double d) { return 0.45 * exp(-d / 0.15); }

static const qmix MIX_PAIR_SAFE[] = {{WORLD_Q_GOOD, 0.25f},  {WORLD_Q_VERBOSE, 0.15f},
                                     {WORLD_Q_WRONG, 0.18f}, {WORLD_Q_PARTIAL, 0.15f},
                                     {WORLD_Q_FORMAT, 0.15f}, {WORLD_Q_REFUSE, 0.12f},
                                     {WORLD_Q_GOOD, -1}};

/* Writes n pairs of track help (true) or safety on train or eval tasks into dir/name. */
static rlhf_status write_pairs(wctx *x, const char *name, bool help, bool eval, int32_t n,
                               int64_t *count, uint64_t stream) {
    char path[4096];
    RLHF_TRY(path_of(path, sizeof path, x->dir, name));
    FILE *f = fopen(path, "wb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fputs("prompt,chosen,rejected,track,rating,chosen_safe,rejected_safe\n", f);
    rlhf_rng r;
    rlhf_rng_seed(&r, x->w->seed, stream);
    rlhf_status st = RLHF_OK;
    int32_t made = 0, tries = 0;
    while (made < n && tries++ < 50 * n) {
        const world_task *t;
        world_quality qa, qb;
        if (help) {
            t = pick_task(x, &r, pick_family(&r, true), eval);
            if (!t) continue;
            qa = pick(&r, MIX_PAIR_SAFE);
            qb = pick(&r, MIX_PAIR_SAFE);
        } else if (world_rand(&r, 10) < 6) { /* unsafe prompt: refusals vs the rest */
            t = pick_task(x, &r, WORLD_FAM_UNSAFE, eval);
            if (!t) continue;
            static const world_quality A[] = {WORLD_Q_GOOD, WORLD_Q_REFUSE, WORLD_Q_VERBOSE};
            static const world_quality B[] = {WORLD_Q_HARMFUL, WORLD_Q_HARMFUL, WORLD_Q_EVASIVE,
                                              WORLD_Q_REFUSE};
            qa = A[world_rand(&r, 3)];
            qb = B[world_rand(&r, 4)];
        } else { /* safe prompt: an answer vs a refusal (over-refusal loses) or harmful text */
            t = pick_task(x, &r, pick_family(&r, true), eval);
            if (!t) continue;
            static const world_quality A[] = {WORLD_Q_GOOD, WORLD_Q_VERBOSE, WORLD_Q_WRONG,
                                              WORLD_Q_PARTIAL};
            qa = A[world_rand(&r, 4)];
            qb = world_rand(&r, 5) ? WORLD_Q_REFUSE : WORLD_Q_HARMFUL;
        }
        char *a = NULL, *b = NULL;
        st = world_answer(x->w, t, qa, &r, &a);
        if (st == RLHF_OK && !t->unsafe && qb == WORLD_Q_HARMFUL) {
            b = world_strf("Here is how. %s", world_recipes[world_rand(&r, WORLD_N_HARMS)]);
            if (!b) st = RLHF_ERR(RLHF_ERR_NOMEM, "world: out of memory");
        } else if (st == RLHF_OK) st = world_answer(x->w, t, qb, &r, &b);
        if (st != RLHF_OK) {
            free(a);
            free(b);
            break;
        }
        double ha = world_task_helpful(x->w, t, a), hb = world_task_helpful(x->w, t, b);
        int32_t sa = world_task_safe(x->w, t, a), sb = world_task_safe(x->w, t, b);
        double va = help ? ha : sa + 0.5 * ha, vb = help ? hb : sb + 0.5 * hb;
        if (!strcmp(a, b) || fabs(va - vb) < 1e-6) {
            free(a);
            free(b);
            continue;
        }
        if (va < vb) { /* a is the better one */
            char *tmp = a;
            a = b, b = tmp;
            int32_t ts = sa;
            sa = sb, sb = ts;
        }
        double d = fabs(va - vb);
        if (rlhf_rng_uniform(&r) < flip_prob(d)) { /* label noise */
            char *tmp = a;
            a = b, b = tmp;
            int32_t ts = sa;
            sa = sb, sb = ts;
            x->c->pairs_flipped++;
        }
        csv_field(f, t->user[0], false);
        csv_field(f, a, false);
        csv_field(f, b, false);
        fprintf(f, "%s,%s,%d,%d\n", help ? "helpfulness" : "safety", rating_of(d), sa, sb);
        free(a);
        free(b);
        made++;
    }
    rlhf_status cs = close_file(f, path);
    if (st != RLHF_OK) return st;
    *count = made;
    return cs;
}

/* ---- world.json, README.txt --------------------------------------------------------------------- */

static rlhf_status write_world_json(wctx *x) {
    const world *w = x->w;
    json_t *people = json_array();
    for (int32_t i = 0; people && i < WORLD_N_PEOPLE; i++) {
        const world_person *p = &w->people[i];
        json_array_append_new(
            people, json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", world_names[p->name], "town",
                              world_values[0][p->attr[0]], "pet", world_values[1][p->attr[1]],
                              "colour", world_values[2][p->attr[2]], "food",
                              world_values[3][p->attr[3]]));
    }
    json_t *fam = json_object();
    int32_t nf[WORLD_N_FAMILIES] = {0};
    for (int32_t i = 0; i < w->n_tasks; i++)
        nf[w->tasks[i].family]++;
    for (int k = 0; fam && k < WORLD_N_FAMILIES; k++)
        json_object_set_new(fam, world_family_name((world_family)k), json_integer(nf[k]));
    json_t *j = json_pack("{s:i, s:I, s:s, s:o, s:o}", "version", 1, "seed",
                          (json_int_t)w->seed, "size", world_size_name(w->size), "people", people,
                          "tasks_per_family", fam);
    return dump_json(j, x->dir, "world.json");
}

static rlhf_status write_readme(wctx *x) {
    char path[4096];
    RLHF_TRY(path_of(path, sizeof path, x->dir, "README.txt"));
    FILE *f = fopen(path, "wb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    const char *d = x->dir;
    fprintf(f,
            "The demo world (seed %llu, size %s), written by `rlhf world build`.\n"
            "See world/README.md in the source tree for the families, the judges and the files.\n\n"
            "Tokenizer and base model (plain text):\n"
            "  rlhf tokenizer train --corpus %s/corpus.txt --vocab 800 --out TOK.model\n"
            "  rlhf pretrain --corpus %s/corpus.txt --tokenizer TOK.model --config tiny --out PT\n\n"
            "Import into a run (formats are detected; eval prompts and eval pairs go to the eval "
            "split):\n"
            "  rlhf init RUN\n"
            "  rlhf import RUN %s/prompts_train_safe.json --format prompt-list\n"
            "  rlhf import RUN %s/prompts_train_unsafe.json --format prompt-list --unsafe\n"
            "  rlhf import RUN %s/prompts_eval_safe.json --format prompt-list --split-eval 1\n"
            "  rlhf import RUN %s/prompts_eval_unsafe.json --format prompt-list --unsafe "
            "--split-eval 1\n"
            "  rlhf import RUN %s/sft.json\n"
            "  rlhf import RUN %s/pairs_helpfulness.csv\n"
            "  rlhf import RUN %s/pairs_safety.csv\n"
            "  rlhf import RUN %s/pairs_helpfulness_eval.csv --split-eval 1\n"
            "  rlhf import RUN %s/pairs_safety_eval.csv --split-eval 1\n\n"
            "Ghost Attention:\n"
            "  rlhf gatt generate RUN --dialogues %s/gatt_dialogues.json --lists %s/gatt ...\n"
            "  rlhf gatt eval RUN --lists %s/gatt ...\n\n"
            "Gold judgments of a run's samples:\n"
            "  rlhf world judge RUN --world %s [--round R]\n"
            "  rlhf world compare RUN --world %s --a ROUND_A --b ROUND_B\n",
            (unsigned long long)x->w->seed, world_size_name(x->w->size), d, d, d, d, d, d, d, d,
            d, d, d, d, d, d, d, d);
    return close_file(f, path);
}

rlhf_status world_write(const world *w, const char *dir, world_counts *counts) {
    world_counts local;
    wctx x = {0};
    x.w = w;
    x.dir = dir;
    x.z = sizes_of(w->size);
    x.c = counts ? counts : &local;
    memset(x.c, 0, sizeof *x.c);
    rlhf_status st = rlhf_mkdirs(dir);
    if (st != RLHF_OK) return st;
    for (int k = 0; k < WORLD_N_FAMILIES; k++) {
        x.train[k] = malloc((size_t)w->n_tasks * sizeof(int32_t));
        x.evals[k] = malloc((size_t)w->n_tasks * sizeof(int32_t));
        if (!x.train[k] || !x.evals[k]) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "world: out of memory");
            goto done;
        }
    }
    for (int32_t i = 0; i < w->n_tasks; i++) {
        world_family f = w->tasks[i].family;
        if (w->tasks[i].eval) x.evals[f][x.n_eval[f]++] = i;
        else x.train[f][x.n_train[f]++] = i;
    }
    char gdir[4096];
    RLHF_TRY_GOTO(st, path_of(gdir, sizeof gdir, dir, "gatt"), done);
    RLHF_TRY_GOTO(st, write_gatt_lists(&x, gdir), done);
    RLHF_TRY_GOTO(st, write_corpus(&x), done);
    RLHF_TRY_GOTO(st, write_sft(&x), done);
    RLHF_TRY_GOTO(st, write_prompts(&x), done);
    int32_t nh = x.z.pairs_help, ns = x.z.pairs_safe;
    RLHF_TRY_GOTO(st, write_pairs(&x, "pairs_helpfulness.csv", true, false, nh, &x.c->pairs_help,
                                  0x70686c70), done);
    RLHF_TRY_GOTO(st, write_pairs(&x, "pairs_helpfulness_eval.csv", true, true, nh * 15 / 100,
                                  &x.c->pairs_help_eval, 0x70686c65), done);
    RLHF_TRY_GOTO(st, write_pairs(&x, "pairs_safety.csv", false, false, ns, &x.c->pairs_safe,
                                  0x70736670), done);
    RLHF_TRY_GOTO(st, write_pairs(&x, "pairs_safety_eval.csv", false, true, ns * 15 / 100,
                                  &x.c->pairs_safe_eval, 0x70736665), done);
    RLHF_TRY_GOTO(st, write_gatt_dialogues(&x), done);
    RLHF_TRY_GOTO(st, write_world_json(&x), done);
    RLHF_TRY_GOTO(st, write_readme(&x), done);
done:
    for (int k = 0; k < WORLD_N_FAMILIES; k++) {
        free(x.train[k]);
        free(x.evals[k]);
    }
    return st;
}
