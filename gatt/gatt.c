/* gatt.c: Ghost Attention synthesis: constraint lists (text files, the personas CSV), random
 * instructions in the full and concise forms, and the sampling / training versions of a dialogue
 * with their per-turn loss masks. The checker lives in gatt_check.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gatt.h"

#ifndef GATT_DATA_DIR
#define GATT_DATA_DIR "gatt/data"
#endif

const char *gatt_data_dir(void) { return GATT_DATA_DIR; }

static const char *const kind_names[GATT_N_KINDS] = {"hobby", "language", "figure", "persona",
                                                     "style"};
static const char *const style_names[GATT_N_STYLES] = {"none",      "one_sentence", "uppercase",
                                                       "lowercase", "end_word",     "start_word",
                                                       "max_words", "no_comma",     "end_question"};

const char *gatt_kind_name(gatt_kind k) { return k >= 0 && k < GATT_N_KINDS ? kind_names[k] : "?"; }
bool gatt_kind_parse(const char *name, gatt_kind *out) {
    for (int i = 0; i < GATT_N_KINDS; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (gatt_kind)i;
            return true;
        }
    return false;
}
const char *gatt_style_name(gatt_style s) {
    return s >= 0 && s < GATT_N_STYLES ? style_names[s] : "?";
}
bool gatt_style_parse(const char *name, gatt_style *out) {
    for (int i = 1; i < GATT_N_STYLES; i++)
        if (strcmp(name, style_names[i]) == 0) {
            *out = (gatt_style)i;
            return true;
        }
    return false;
}
bool gatt_style_has_arg(gatt_style s) {
    return s == GATT_STYLE_END_WORD || s == GATT_STYLE_START_WORD || s == GATT_STYLE_MAX_WORDS;
}

/* ---- lists ---- */

rlhf_status gatt_lists_add(gatt_lists *L, gatt_kind kind, const char *name, const char *keywords,
                           gatt_style style) {
    if (kind < 0 || kind >= GATT_N_KINDS) return RLHF_ERR(RLHF_ERR_ARG, "gatt: bad kind %d", kind);
    gatt_list *l = &L->kind[kind];
    if (l->n == l->cap) {
        int32_t cap = l->cap ? 2 * l->cap : 32;
        gatt_item *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "gatt: out of memory");
        l->v = v;
        l->cap = cap;
    }
    gatt_item *it = &l->v[l->n];
    it->name = strdup(name);
    it->keywords = keywords && *keywords ? strdup(keywords) : NULL;
    it->style = kind == GATT_STYLE ? style : GATT_STYLE_NONE;
    if (!it->name || (keywords && *keywords && !it->keywords)) {
        free(it->name);
        free(it->keywords);
        return RLHF_ERR(RLHF_ERR_NOMEM, "gatt: out of memory");
    }
    l->n++;
    return RLHF_OK;
}

static void list_truncate(gatt_list *l, int32_t n) {
    for (int32_t i = n; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].keywords);
    }
    l->n = n;
}

void gatt_lists_free(gatt_lists *L) {
    if (!L) return;
    for (int k = 0; k < GATT_N_KINDS; k++) {
        list_truncate(&L->kind[k], 0);
        free(L->kind[k].v);
    }
    memset(L, 0, sizeof *L);
}

static char *strip(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Parses one non-comment line (already stripped) of a list file into L. */
static rlhf_status add_line(gatt_lists *L, gatt_kind kind, char *line, const char *path,
                            int64_t lineno) {
    char *tab = strchr(line, '\t');
    char *extra = NULL;
    if (tab) {
        *tab = '\0';
        extra = strip(tab + 1);
        line = strip(line);
    }
    if (kind != GATT_STYLE) return gatt_lists_add(L, kind, line, extra, GATT_STYLE_NONE);
    gatt_style st;
    if (!gatt_style_parse(line, &st))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s:%lld: unknown style rule '%s'", path,
                        (long long)lineno, line);
    if (gatt_style_has_arg(st) && (!extra || !*extra))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s:%lld: style rule %s needs an argument (TAB then it)",
                        path, (long long)lineno, line);
    if (!gatt_style_has_arg(st) && extra && *extra)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s:%lld: style rule %s takes no argument", path,
                        (long long)lineno, line);
    if (st == GATT_STYLE_MAX_WORDS) {
        char *end = NULL;
        errno = 0;
        long v = strtol(extra, &end, 10);
        if (errno || *end || v <= 0 || v > 100000)
            return RLHF_ERR(RLHF_ERR_FORMAT,
                            "%s:%lld: max_words needs a positive integer, got '%s'", path,
                            (long long)lineno, extra);
    }
    if (st == GATT_STYLE_END_WORD || st == GATT_STYLE_START_WORD)
        for (const char *p = extra; *p; p++)
            if (*p == ' ' || *p == '|')
                return RLHF_ERR(RLHF_ERR_FORMAT, "%s:%lld: %s takes one word, got '%s'", path,
                                (long long)lineno, line, extra);
    return gatt_lists_add(L, kind, extra ? extra : "", NULL, st);
}

rlhf_status gatt_lists_add_file(gatt_lists *L, gatt_kind kind, const char *path) {
    if (kind < 0 || kind >= GATT_N_KINDS) return RLHF_ERR(RLHF_ERR_ARG, "gatt: bad kind %d", kind);
    FILE *f = fopen(path, "rb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open list: %s", path, strerror(errno));
    const int32_t n0 = L->kind[kind].n;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0, items = 0;
    rlhf_status st = RLHF_OK;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        lineno++;
        size_t bad = 0;
        if (!ds_utf8_valid(buf, (size_t)len, &bad)) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:%lld: invalid UTF-8 (or NUL) at byte %zu", path,
                          (long long)lineno, bad);
            break;
        }
        char *s = strip(buf);
        if (!*s || *s == '#') continue;
        st = add_line(L, kind, s, path, lineno);
        if (st != RLHF_OK) break;
        items++;
    }
    if (st == RLHF_OK && ferror(f)) st = RLHF_ERR(RLHF_ERR_IO, "%s: read error", path);
    if (st == RLHF_OK && items == 0)
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: no %s in the list", path, gatt_kind_name(kind));
    free(buf);
    fclose(f);
    if (st != RLHF_OK) list_truncate(&L->kind[kind], n0);
    return st;
}

rlhf_status gatt_lists_load_dir(gatt_lists *L, const char *dir) {
    static const struct {
        const char *file;
        gatt_kind kind;
        bool optional;
    } files[] = {
        {"hobbies.txt", GATT_HOBBY, false},   {"languages.txt", GATT_LANGUAGE, false},
        {"figures.txt", GATT_FIGURE, false},  {"styles.txt", GATT_STYLE, false},
        {"personas.txt", GATT_PERSONA, true},
    };
    char path[4096];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, files[i].file) >= (int)sizeof path)
            return RLHF_ERR(RLHF_ERR_ARG, "gatt: path too long: %s", dir);
        if (files[i].optional) {
            FILE *f = fopen(path, "rb");
            if (!f) continue;
            fclose(f);
        }
        RLHF_TRY(gatt_lists_add_file(L, files[i].kind, path));
    }
    return RLHF_OK;
}

typedef struct persona_ctx {
    gatt_lists *L;
    int32_t added;
} persona_ctx;

static rlhf_status persona_record(void *ctx, const ds_record *r) {
    persona_ctx *c = ctx;
    if (r->kind != DS_PROMPT || !r->prompt.category || !*r->prompt.category) return RLHF_OK;
    RLHF_TRY(gatt_lists_add(c->L, GATT_PERSONA, r->prompt.category, NULL, GATT_STYLE_NONE));
    c->added++;
    return RLHF_OK;
}

rlhf_status gatt_lists_add_personas_csv(gatt_lists *L, const char *path, int32_t *added) {
    ds_read_opts o = {0};
    o.format = DS_FMT_CSV_PROMPTS;
    persona_ctx c = {L, 0};
    const int32_t n0 = L->kind[GATT_PERSONA].n;
    rlhf_status st = ds_read(path, &o, persona_record, NULL, &c, NULL);
    if (st == RLHF_OK && c.added == 0)
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: no personas (an `act` column) in the file", path);
    if (st != RLHF_OK) {
        list_truncate(&L->kind[GATT_PERSONA], n0);
        return st;
    }
    if (added) *added = c.added;
    return RLHF_OK;
}

/* ---- instructions ---- */

gatt_synth_opts gatt_synth_defaults(void) {
    gatt_synth_opts o = {
        .min_constraints = 1, .max_constraints = 3, .p_concise = 0.5f, .p_persona = 0.5f};
    return o;
}

void gatt_instr_free(gatt_instr *in) {
    if (!in) return;
    for (int32_t i = 0; i < in->n; i++) {
        free(in->c[i].value);
        free(in->c[i].keywords);
    }
    free(in->text);
    memset(in, 0, sizeof *in);
}

static uint32_t rng_below(rlhf_rng *r, uint32_t n) { /* uniform in [0, n), n > 0 */
    uint64_t m = (uint64_t)rlhf_rng_u32(r) * n;
    return (uint32_t)(m >> 32);
}

/* A growable string for the instruction text. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *t) {
    size_t k = strlen(t);
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->n + k + 1 > cap)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, t, k + 1);
    b->n += k;
}

static bool starts_with_vowel(const char *s) {
    return strchr("AEIOUaeiou", s[0]) != NULL && s[0] != '\0';
}

/* Appends one constraint's sentence (full or concise), without the separating space. */
static void render_constraint(sbuf *b, const gatt_constraint *c, bool concise) {
    const char *v = c->value;
    switch (c->kind) {
    case GATT_HOBBY:
        sb_add(b, concise ? "Hobby: " : "You enjoy ");
        sb_add(b, v);
        break;
    case GATT_LANGUAGE:
        sb_add(b, concise ? "Language: " : "Always answer in ");
        sb_add(b, v);
        break;
    case GATT_FIGURE:
        sb_add(b, concise ? "Figure: " : "Act as ");
        sb_add(b, v);
        break;
    case GATT_PERSONA:
        sb_add(b, concise ? "Role: " : starts_with_vowel(v) ? "Act as an " : "Act as a ");
        sb_add(b, v);
        break;
    case GATT_STYLE:
        switch (c->style) {
        case GATT_STYLE_ONE_SENTENCE:
            sb_add(b, concise ? "Style: one sentence" : "Answer in one sentence");
            break;
        case GATT_STYLE_UPPERCASE:
            sb_add(b, concise ? "Style: uppercase" : "Always answer in uppercase letters");
            break;
        case GATT_STYLE_LOWERCASE:
            sb_add(b, concise ? "Style: lowercase" : "Always answer in lowercase letters");
            break;
        case GATT_STYLE_END_WORD:
            sb_add(b, concise ? "Last word: \"" : "End every answer with the word \"");
            sb_add(b, v);
            sb_add(b, "\"");
            break;
        case GATT_STYLE_START_WORD:
            sb_add(b, concise ? "First word: \"" : "Start every answer with the word \"");
            sb_add(b, v);
            sb_add(b, "\"");
            break;
        case GATT_STYLE_MAX_WORDS:
            sb_add(b, concise ? "Length: at most " : "Answer in at most ");
            sb_add(b, v);
            sb_add(b, " words");
            break;
        case GATT_STYLE_NO_COMMA:
            sb_add(b, concise ? "Style: no commas" : "Never use a comma");
            break;
        case GATT_STYLE_END_QUESTION:
            sb_add(b, concise ? "Style: end with a question" : "End every answer with a question");
            break;
        default:
            break;
        }
        break;
    default:
        break;
    }
    sb_add(b, ".");
}

rlhf_status gatt_instr_render(gatt_instr *in, bool concise) {
    sbuf b = {0};
    for (int32_t i = 0; i < in->n; i++) {
        if (i) sb_add(&b, " ");
        render_constraint(&b, &in->c[i], concise);
    }
    sb_add(&b, "");
    if (b.oom) {
        free(b.s);
        return RLHF_ERR(RLHF_ERR_NOMEM, "gatt: out of memory");
    }
    free(in->text);
    in->text = b.s;
    in->concise = concise;
    return RLHF_OK;
}

/* The four slots an instruction draws from (figure and persona share the identity slot). */
enum { SLOT_HOBBY, SLOT_LANGUAGE, SLOT_IDENTITY, SLOT_STYLE, N_SLOTS };

rlhf_status gatt_instr_draw(const gatt_lists *L, const gatt_synth_opts *o, rlhf_rng *rng,
                            gatt_instr *out) {
    memset(out, 0, sizeof *out);
    gatt_synth_opts d = gatt_synth_defaults();
    if (!o) o = &d;
    if (o->min_constraints < 1 || o->max_constraints < o->min_constraints ||
        o->max_constraints > GATT_MAX_CONSTRAINTS || !(o->p_concise >= 0 && o->p_concise <= 1) ||
        !(o->p_persona >= 0 && o->p_persona <= 1))
        return RLHF_ERR(RLHF_ERR_ARG,
                        "gatt: constraints %d..%d (1..%d), p_concise %g and "
                        "p_persona %g in [0, 1] expected",
                        o->min_constraints, o->max_constraints, GATT_MAX_CONSTRAINTS,
                        (double)o->p_concise, (double)o->p_persona);
    const int32_t nf = L->kind[GATT_FIGURE].n, np = L->kind[GATT_PERSONA].n;
    int slots[N_SLOTS], n_slots = 0;
    if (L->kind[GATT_HOBBY].n) slots[n_slots++] = SLOT_HOBBY;
    if (L->kind[GATT_LANGUAGE].n) slots[n_slots++] = SLOT_LANGUAGE;
    if (nf + np) slots[n_slots++] = SLOT_IDENTITY;
    if (L->kind[GATT_STYLE].n) slots[n_slots++] = SLOT_STYLE;
    if (n_slots == 0) return RLHF_ERR(RLHF_ERR_ARG, "gatt: every constraint list is empty");
    int32_t k = o->min_constraints +
                (int32_t)rng_below(rng, (uint32_t)(o->max_constraints - o->min_constraints + 1));
    if (k > n_slots) k = n_slots;
    for (int i = n_slots - 1; i > 0; i--) { /* Fisher-Yates, then take the first k */
        int j = (int)rng_below(rng, (uint32_t)(i + 1));
        int t = slots[i];
        slots[i] = slots[j];
        slots[j] = t;
    }
    /* keep a stable reading order: identity, hobby, language, style */
    static const int order[N_SLOTS] = {SLOT_IDENTITY, SLOT_HOBBY, SLOT_LANGUAGE, SLOT_STYLE};
    for (int oi = 0; oi < N_SLOTS; oi++) {
        bool take = false;
        for (int i = 0; i < k; i++)
            take |= slots[i] == order[oi];
        if (!take) continue;
        gatt_kind kind;
        switch (order[oi]) {
        case SLOT_HOBBY:
            kind = GATT_HOBBY;
            break;
        case SLOT_LANGUAGE:
            kind = GATT_LANGUAGE;
            break;
        case SLOT_STYLE:
            kind = GATT_STYLE;
            break;
        default:
            kind = np == 0                                ? GATT_FIGURE
                   : nf == 0                              ? GATT_PERSONA
                   : rlhf_rng_uniform(rng) < o->p_persona ? GATT_PERSONA
                                                          : GATT_FIGURE;
        }
        const gatt_list *l = &L->kind[kind];
        const gatt_item *it = &l->v[rng_below(rng, (uint32_t)l->n)];
        gatt_constraint *c = &out->c[out->n];
        c->kind = kind;
        c->style = it->style;
        c->value = strdup(it->name);
        c->keywords = it->keywords ? strdup(it->keywords) : NULL;
        out->n++;
        if (!c->value || (it->keywords && !c->keywords)) {
            gatt_instr_free(out);
            return RLHF_ERR(RLHF_ERR_NOMEM, "gatt: out of memory");
        }
    }
    bool concise = rlhf_rng_uniform(rng) < o->p_concise;
    rlhf_status st = gatt_instr_render(out, concise);
    if (st != RLHF_OK) gatt_instr_free(out);
    return st;
}

rlhf_status gatt_instr_to_json(const gatt_instr *in, char **out) {
    *out = NULL;
    json_t *root = json_object(), *arr = json_array();
    bool ok = root && arr;
    for (int32_t i = 0; ok && i < in->n; i++) {
        const gatt_constraint *c = &in->c[i];
        json_t *o = json_object();
        ok = o && json_object_set_new(o, "kind", json_string(gatt_kind_name(c->kind))) == 0 &&
             json_object_set_new(o, "value", json_string(c->value)) == 0;
        if (ok && c->kind == GATT_STYLE)
            ok = json_object_set_new(o, "style", json_string(gatt_style_name(c->style))) == 0;
        if (ok && c->keywords)
            ok = json_object_set_new(o, "keywords", json_string(c->keywords)) == 0;
        ok = ok && json_array_append_new(arr, o) == 0;
        if (!ok && o) json_decref(o);
    }
    if (ok)
        ok = json_object_set_new(root, "text", json_string(in->text ? in->text : "")) == 0 &&
             json_object_set_new(root, "concise", json_boolean(in->concise)) == 0 &&
             json_object_set(root, "constraints", arr) == 0;
    if (ok) *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(arr);
    json_decref(root);
    if (!*out) return RLHF_ERR(RLHF_ERR_NOMEM, "gatt: cannot build the instruction's JSON");
    return RLHF_OK;
}

/* ---- dialogue versions ---- */

void gatt_dialogue_free(gatt_dialogue *g) {
    if (!g) return;
    for (int32_t i = 0; i < g->n; i++)
        free((char *)g->turns[i].text);
    free(g->turns);
    free(g->system);
    free(g->loss_mask);
    memset(g, 0, sizeof *g);
}

/* "a\n\nb" (either may be NULL: the other copied). */
static char *join2(const char *a, const char *b) {
    if (!a) return b ? strdup(b) : NULL;
    if (!b) return strdup(a);
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 3);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, "\n\n", 2);
    memcpy(s + na + 2, b, nb + 1);
    return s;
}

rlhf_status gatt_dialogue_build(const ds_dialogue *src, int32_t n_turns, const gatt_instr *in,
                                gatt_version v, gatt_place place, gatt_dialogue *out) {
    memset(out, 0, sizeof *out);
    int32_t n = n_turns <= 0 || n_turns > src->n_turns ? src->n_turns : n_turns;
    if (n <= 0) return RLHF_ERR(RLHF_ERR_ARG, "gatt: dialogue without turns");
    for (int32_t i = 0; i < n; i++)
        if (src->turns[i].role != (i % 2 == 0 ? DS_ROLE_USER : DS_ROLE_ASSISTANT) ||
            !src->turns[i].text)
            return RLHF_ERR(RLHF_ERR_ARG, "gatt: turn %d should be %s", (int)i,
                            i % 2 == 0 ? "user" : "assistant");
    int32_t last_asst = (n % 2 == 0) ? n - 1 : n - 2; /* index of the last assistant turn */
    if (v == GATT_TRAINING && last_asst < 1)
        return RLHF_ERR(RLHF_ERR_ARG, "gatt: a training dialogue needs an assistant turn");
    if (v == GATT_TRAINING) n = last_asst + 1; /* a trailing user turn teaches nothing */
    const char *instr = in && in->text && *in->text ? in->text : NULL;
    out->turns = calloc((size_t)n, sizeof *out->turns);
    out->loss_mask = calloc((size_t)n, 1);
    if (!out->turns || !out->loss_mask) goto oom;
    out->n = n; /* texts NULL until set: gatt_dialogue_free copes */
    for (int32_t i = 0; i < n; i++) {
        const ds_turn *t = &src->turns[i];
        bool with = instr && t->role == DS_ROLE_USER &&
                    (v == GATT_SAMPLING || (place == GATT_PLACE_FIRST_TURN && i == 0));
        char *text = with ? join2(instr, t->text) : strdup(t->text);
        if (!text) goto oom;
        out->turns[i].role = t->role;
        out->turns[i].text = text;
        out->loss_mask[i] = v == GATT_SAMPLING ? t->role == DS_ROLE_ASSISTANT : i == last_asst;
    }
    if (v == GATT_TRAINING && place == GATT_PLACE_SYSTEM && instr) {
        out->system = join2(src->system, instr);
        if (!out->system) goto oom;
    } else if (src->system) {
        out->system = strdup(src->system);
        if (!out->system) goto oom;
    }
    out->d.system = out->system;
    out->d.turns = out->turns;
    out->d.n_turns = n;
    return RLHF_OK;
oom:
    gatt_dialogue_free(out);
    return RLHF_ERR(RLHF_ERR_NOMEM, "gatt: out of memory for a dialogue of %d turns", (int)n);
}

rlhf_status gatt_dialogue_turns_json(const gatt_dialogue *g, char **out) {
    *out = NULL;
    json_t *arr = json_array();
    bool ok = arr != NULL;
    for (int32_t i = 0; ok && i < g->n; i++) {
        json_t *o =
            json_pack("{s:s, s:s}", "role", g->turns[i].role == DS_ROLE_USER ? "user" : "assistant",
                      "text", g->turns[i].text);
        ok = o && json_array_append_new(arr, o) == 0;
    }
    if (ok) *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!*out) return RLHF_ERR(RLHF_ERR_NOMEM, "gatt: cannot build the turns' JSON");
    return RLHF_OK;
}

/* ---- evaluation ---- */

rlhf_status gatt_list_read(gatt_list *l, const char *path) {
    gatt_lists tmp = {0};
    tmp.kind[GATT_HOBBY] = *l; /* read as a plain (non-style) list, then handed back */
    rlhf_status st = gatt_lists_add_file(&tmp, GATT_HOBBY, path);
    *l = tmp.kind[GATT_HOBBY];
    return st;
}

void gatt_list_free(gatt_list *l) {
    if (!l) return;
    list_truncate(l, 0);
    free(l->v);
    memset(l, 0, sizeof *l);
}

rlhf_status gatt_eval_turn(const gatt_instr *in, int32_t t, const gatt_list *fillers,
                           const gatt_list *questions, rlhf_rng *rng, char **text,
                           int32_t *probed) {
    *text = NULL;
    *probed = -1;
    if (t < 1 || !in || in->n < 1)
        return RLHF_ERR(RLHF_ERR_ARG,
                        "gatt: evaluation turn %d of an instruction with %d "
                        "constraints",
                        (int)t, in ? (int)in->n : 0);
    const char *msg = NULL;
    const char *prefix = "";
    if (t % 2 == 1) {
        if (!fillers || fillers->n == 0) return RLHF_ERR(RLHF_ERR_ARG, "gatt: no filler messages");
        msg = fillers->v[rng_below(rng, (uint32_t)fillers->n)].name;
    } else {
        int32_t i = (t / 2 - 1) % in->n;
        *probed = i;
        switch (in->c[i].kind) {
        case GATT_HOBBY:
            msg = "What is your favourite hobby?";
            break;
        case GATT_FIGURE:
        case GATT_PERSONA:
            msg = "Who are you?";
            break;
        default:
            if (!questions || questions->n == 0)
                return RLHF_ERR(RLHF_ERR_ARG, "gatt: no probe questions");
            prefix = "Answer this: ";
            msg = questions->v[rng_below(rng, (uint32_t)questions->n)].name;
        }
    }
    size_t a = strlen(prefix), b = strlen(msg);
    *text = malloc(a + b + 1);
    if (!*text) return RLHF_ERR(RLHF_ERR_NOMEM, "gatt: out of memory");
    memcpy(*text, prefix, a);
    memcpy(*text + a, msg, b + 1);
    return RLHF_OK;
}
