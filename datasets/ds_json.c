/* ds_json.c: the JSON readers. JSON lines (one record per line: Anthropic HH-RLHF pairs, NeMo or
 * ShareGPT dialogues, MT-Bench questions, prompt objects) and JSON documents (a top-level array of
 * records as in ShareGPT files and prompt lists, or a nested topic object whose leaves are lists
 * of prompt strings as in red-instruct). A light structural scan of a document finds where each
 * top-level element starts (its line) so that each element is parsed, reported and skipped on its
 * own; jansson does the real parsing and rejects invalid UTF-8 and "\u0000". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ds_impl.h"

#define DS_MAX_DOC_BYTES ((size_t)1 << 30) /* a whole JSON document */

/* ---- field helpers ------------------------------------------------------------------------------ */

/* The string value of key in o, or NULL (absent or JSON null). *bad set when present, not null
 * and not a string. */
static const char *get_str(json_t *o, const char *key, bool *bad) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) { *bad = true; return NULL; }
    return json_string_value(v);
}

/* First of the keys present in o (NULL-terminated list); NULL when none. */
static const char *first_key(json_t *o, const char *const *keys) {
    for (; *keys; keys++)
        if (json_object_get(o, *keys)) return *keys;
    return NULL;
}

static const char *const PROMPT_KEYS[] = {"prompt", "text", "goal", "instruction", "question", NULL};
static const char *const CONV_KEYS[] = {"conversations", "messages", "conversation", NULL};

/* Guesses the record format from the keys of a JSON object; DS_FMT_AUTO when it cannot. */
static ds_format classify_object(json_t *o) {
    if (json_object_get(o, "chosen") && json_object_get(o, "rejected")) return DS_FMT_HH;
    if (first_key(o, CONV_KEYS)) return DS_FMT_NEMO;
    if (json_object_get(o, "turns")) return DS_FMT_MTBENCH;
    if (first_key(o, PROMPT_KEYS)) return DS_FMT_PROMPT_LIST;
    return DS_FMT_AUTO;
}

/* Maps a speaker name to a role: "human"/"user", "gpt"/"assistant"/"bot"/"model", "system", in any
 * case, with any Llama-3 style "<|...|>" header tokens and surrounding whitespace removed
 * ("<|start_header_id|>user<|end_header_id|>" is "user"). -1 when unknown. */
static int role_from_name(const char *s) {
    char b[32];
    size_t n = 0;
    for (const char *p = s; *p;) {
        if (p[0] == '<' && p[1] == '|') {
            const char *e = strstr(p + 2, "|>");
            if (!e) return -1;
            p = e + 2;
            continue;
        }
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':') { p++; continue; }
        if (n + 1 >= sizeof b) return -1;
        char ch = *p++;
        b[n++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    b[n] = '\0';
    static const char *const users[] = {"user", "human", "prompter", "usr", NULL};
    static const char *const asst[] = {"assistant", "gpt", "bot", "model", "chatgpt", "ai", NULL};
    for (int i = 0; users[i]; i++)
        if (!strcmp(b, users[i])) return DS_ROLE_USER;
    for (int i = 0; asst[i]; i++)
        if (!strcmp(b, asst[i])) return DS_ROLE_ASSISTANT;
    if (!strcmp(b, "system")) return DS_ROLE_SYSTEM;
    return -1;
}

static int8_t unsafe_from(ds_ctx *c, json_t *o, bool *bad) {
    if (c->o.unsafe == 1) return 1;
    json_t *v = json_object_get(o, "unsafe");
    if (!v || json_is_null(v)) return -1;
    if (json_is_boolean(v)) return json_is_true(v) ? 1 : 0;
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
        return (int8_t)json_integer_value(v);
    *bad = true;
    return -1;
}

/* ---- record converters: each returns the emit/bad status ------------------------------------------ */

/* HH-RLHF transcript "\n\nHuman: ...\n\nAssistant: ..." -> turns (arena), stripped, consecutive
 * turns of one speaker merged with "\n\n". Returns the turn count, -1 on out of memory, -2 when
 * there is text before the first marker. */
static int32_t hh_split(ds_arena *a, const char *t, ds_turn **out) {
    static const char H[] = "\n\nHuman:", A[] = "\n\nAssistant:";
    size_t n = strlen(t);
    /* marker positions: scan once */
    size_t cap = 8, cnt = 0;
    size_t *pos = ds_arena_alloc(a, cap * 2 * sizeof *pos); /* (start of marker, role) pairs */
    if (!pos) return -1;
    const char *p = t;
    /* tolerate a transcript that starts with "Human:" without the blank line */
    size_t lead = 0;
    while (lead < n && (t[lead] == ' ' || t[lead] == '\n' || t[lead] == '\r' || t[lead] == '\t')) lead++;
    for (;;) {
        const char *h = strstr(p, H), *as = strstr(p, A);
        const char *m = (h && (!as || h < as)) ? h : as;
        if (!m) break;
        if (cnt == cap) {
            size_t *np = ds_arena_alloc(a, cap * 4 * sizeof *np);
            if (!np) return -1;
            memcpy(np, pos, cap * 2 * sizeof *np);
            pos = np;
            cap *= 2;
        }
        pos[2 * cnt] = (size_t)(m - t);
        pos[2 * cnt + 1] = (m == h) ? DS_ROLE_USER : DS_ROLE_ASSISTANT;
        cnt++;
        p = m + (m == h ? sizeof H - 1 : sizeof A - 1);
    }
    size_t first = cnt ? pos[0] : n;
    bool bare_start = false;
    if (first > lead) {
        /* text before the first marker: allowed only as a bare "Human:" start */
        if (!strncmp(t + lead, "Human:", 6)) bare_start = true;
        else return -2;
    }
    size_t nraw = cnt + (bare_start ? 1 : 0);
    ds_turn *turns = ds_arena_alloc(a, (nraw ? nraw : 1) * sizeof *turns);
    if (!turns) return -1;
    int32_t m = 0;
    for (size_t i = 0; i < nraw; i++) {
        ds_role role;
        size_t b, e;
        if (bare_start && i == 0) {
            role = DS_ROLE_USER;
            b = lead + 6;
            e = cnt ? pos[0] : n;
        } else {
            size_t k = i - (bare_start ? 1 : 0);
            role = (ds_role)pos[2 * k + 1];
            b = pos[2 * k] + (role == DS_ROLE_USER ? sizeof H - 1 : sizeof A - 1);
            e = k + 1 < cnt ? pos[2 * (k + 1)] : n;
        }
        const char *s = t + b;
        size_t l = e - b;
        ds_trim(&s, &l);
        if (m > 0 && turns[m - 1].role == role) {
            size_t pl = strlen(turns[m - 1].text);
            char *j = ds_arena_alloc(a, pl + 2 + l + 1);
            if (!j) return -1;
            memcpy(j, turns[m - 1].text, pl);
            size_t o = pl;
            if (pl && l) { memcpy(j + o, "\n\n", 2); o += 2; }
            memcpy(j + o, s, l);
            j[o + l] = '\0';
            turns[m - 1].text = j;
        } else {
            char *d = ds_arena_strndup(a, s, l);
            if (!d) return -1;
            turns[m].role = role;
            turns[m].text = d;
            m++;
        }
    }
    *out = turns;
    return m;
}

static rlhf_status rec_hh(ds_ctx *c, json_t *o, int64_t line) {
    if (!json_is_object(o)) return ds_ctx_bad(c, line, "expected a JSON object with \"chosen\" and \"rejected\"");
    bool wrong = false;
    const char *ch = get_str(o, "chosen", &wrong), *rj = get_str(o, "rejected", &wrong);
    if (wrong) return ds_ctx_bad(c, line, "\"chosen\" and \"rejected\" must be strings");
    if (!ch || !rj) return ds_ctx_bad(c, line, "missing \"%s\"", ch ? "rejected" : "chosen");
    ds_turn *tc, *tr;
    int32_t nc = hh_split(&c->arena, ch, &tc), nr = nc < 0 ? 0 : hh_split(&c->arena, rj, &tr);
    if (nc == -1 || nr == -1) return ds_ctx_nomem(c);
    if (nc == -2 || nr == -2)
        return ds_ctx_bad(c, line, "%s transcript does not start with \"\\n\\nHuman:\"", nc == -2 ? "chosen" : "rejected");
    if (nc < 2 || nr < 2 || tc[0].role != DS_ROLE_USER || tr[0].role != DS_ROLE_USER)
        return ds_ctx_bad(c, line, "%s transcript needs a Human turn followed by an Assistant turn",
                          (nc < 2 || tc[0].role != DS_ROLE_USER) ? "chosen" : "rejected");
    /* contexts: every turn before the final Assistant turn must agree */
    bool same_ctx = tc[nc - 1].role == DS_ROLE_ASSISTANT && tr[nr - 1].role == DS_ROLE_ASSISTANT && nc == nr;
    for (int32_t i = 0; same_ctx && i < nc - 1; i++)
        same_ctx = tc[i].role == tr[i].role && !strcmp(tc[i].text, tr[i].text);
    if (!same_ctx) {
        ds_ctx_reject(c, false);
        return RLHF_OK;
    }
    if (!strcmp(tc[nc - 1].text, tr[nr - 1].text)) {
        ds_ctx_reject(c, true);
        return RLHF_OK;
    }
    ds_record r = {.kind = DS_PAIR, .line = line};
    r.pair.track = c->o.track;
    r.pair.context.turns = tc;
    r.pair.context.n_turns = nc - 1;
    r.pair.chosen = tc[nc - 1].text;
    r.pair.rejected = tr[nr - 1].text;
    r.pair.rating = DS_RATING_NONE;
    r.pair.chosen_safe = r.pair.rejected_safe = -1;
    return ds_ctx_emit(c, &r);
}

/* A dialogue object: {system?, conversations|messages: [{from|role, value|content}]} (ShareGPT,
 * NeMo, OpenAI-style). A first turn with role system becomes the system prompt. */
static rlhf_status rec_dialogue(ds_ctx *c, json_t *o, int64_t line) {
    if (!json_is_object(o)) return ds_ctx_bad(c, line, "expected a JSON object with \"conversations\"");
    const char *ck = first_key(o, CONV_KEYS);
    json_t *conv = ck ? json_object_get(o, ck) : NULL;
    if (!conv) return ds_ctx_bad(c, line, "missing \"conversations\"");
    if (!json_is_array(conv)) return ds_ctx_bad(c, line, "\"%s\" must be an array", ck);
    bool wrong = false;
    const char *sys = get_str(o, "system", &wrong);
    if (wrong) return ds_ctx_bad(c, line, "\"system\" must be a string");
    size_t n = json_array_size(conv);
    ds_turn *turns = ds_arena_alloc(&c->arena, (n ? n : 1) * sizeof *turns);
    if (!turns) return ds_ctx_nomem(c);
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(conv, i);
        if (!json_is_object(t)) return ds_ctx_bad(c, line, "turn %zu is not an object", i);
        const char *who = get_str(t, "from", &wrong);
        if (!who) who = get_str(t, "role", &wrong);
        const char *val = get_str(t, "value", &wrong);
        if (!val) val = get_str(t, "content", &wrong);
        if (wrong) return ds_ctx_bad(c, line, "turn %zu: \"from\" and \"value\" must be strings", i);
        if (!who || !val) return ds_ctx_bad(c, line, "turn %zu: missing \"%s\"", i, who ? "value" : "from");
        int role = role_from_name(who);
        if (role < 0) return ds_ctx_bad(c, line, "turn %zu: unknown speaker \"%.60s\"", i, who);
        if (role == DS_ROLE_SYSTEM) {
            if (m != 0 || (sys && *sys)) return ds_ctx_bad(c, line, "turn %zu: a system turn must come first, once", i);
            sys = val;
            continue;
        }
        ds_role want = (m % 2 == 0) ? DS_ROLE_USER : DS_ROLE_ASSISTANT;
        if (role != (int)want)
            return ds_ctx_bad(c, line, "turn %zu is %s, expected %s (turns alternate user/assistant, starting with user)",
                              i, ds_role_name((ds_role)role), ds_role_name(want));
        turns[m].role = (ds_role)role;
        turns[m].text = val;
        m++;
    }
    if (m == 0) return ds_ctx_bad(c, line, "empty conversation");
    ds_record r = {.kind = DS_DIALOGUE, .line = line};
    r.dialogue.system = (sys && *sys) ? sys : NULL;
    r.dialogue.turns = turns;
    r.dialogue.n_turns = m;
    return ds_ctx_emit(c, &r);
}

/* MT-Bench question: {question_id, category, turns: [strings]} -> a multi-turn prompt. */
static rlhf_status rec_mtbench(ds_ctx *c, json_t *o, int64_t line) {
    if (!json_is_object(o)) return ds_ctx_bad(c, line, "expected a JSON object with \"turns\"");
    json_t *tv = json_object_get(o, "turns");
    if (!tv) return ds_ctx_bad(c, line, "missing \"turns\"");
    if (!json_is_array(tv) || json_array_size(tv) == 0) return ds_ctx_bad(c, line, "\"turns\" must be a non-empty array of strings");
    bool wrong = false;
    const char *cat = get_str(o, "category", &wrong);
    const char *sys = get_str(o, "system", &wrong);
    if (wrong) return ds_ctx_bad(c, line, "\"category\" and \"system\" must be strings");
    size_t n = json_array_size(tv);
    ds_turn *turns = ds_arena_alloc(&c->arena, n * sizeof *turns);
    if (!turns) return ds_ctx_nomem(c);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(tv, i);
        if (!json_is_string(s)) return ds_ctx_bad(c, line, "turn %zu is not a string", i);
        turns[i].role = DS_ROLE_USER;
        turns[i].text = json_string_value(s);
    }
    ds_record r = {.kind = DS_PROMPT, .line = line};
    r.prompt.text = turns[0].text;
    r.prompt.system = sys;
    r.prompt.unsafe = unsafe_from(c, o, &wrong);
    if (wrong) return ds_ctx_bad(c, line, "\"unsafe\" must be true/false or 0/1");
    r.prompt.category = cat;
    r.prompt.turns = turns;
    r.prompt.n_turns = (int32_t)n;
    return ds_ctx_emit(c, &r);
}

/* A prompt: a bare string, or {prompt|text|goal|instruction|question, system?, category?, unsafe?}. */
static rlhf_status rec_prompt(ds_ctx *c, json_t *o, int64_t line, const char *category) {
    ds_record r = {.kind = DS_PROMPT, .line = line};
    r.prompt.unsafe = c->o.unsafe == 1 ? 1 : -1;
    r.prompt.category = category;
    if (json_is_string(o)) {
        r.prompt.text = json_string_value(o);
        return ds_ctx_emit(c, &r);
    }
    if (!json_is_object(o)) return ds_ctx_bad(c, line, "expected a prompt string or object");
    const char *k = first_key(o, PROMPT_KEYS);
    if (!k) return ds_ctx_bad(c, line, "missing \"prompt\"");
    bool wrong = false;
    r.prompt.text = get_str(o, k, &wrong);
    r.prompt.system = get_str(o, "system", &wrong);
    const char *cat = get_str(o, "category", &wrong);
    if (wrong || !r.prompt.text) return ds_ctx_bad(c, line, "\"%s\", \"system\" and \"category\" must be strings", k);
    if (cat) r.prompt.category = cat;
    r.prompt.unsafe = unsafe_from(c, o, &wrong);
    if (wrong) return ds_ctx_bad(c, line, "\"unsafe\" must be true/false or 0/1");
    return ds_ctx_emit(c, &r);
}

static rlhf_status rec_any(ds_ctx *c, ds_format f, json_t *o, int64_t line) {
    switch (f) {
    case DS_FMT_HH: return rec_hh(c, o, line);
    case DS_FMT_SHAREGPT:
    case DS_FMT_NEMO: return rec_dialogue(c, o, line);
    case DS_FMT_MTBENCH: return rec_mtbench(c, o, line);
    case DS_FMT_PROMPT_LIST: return rec_prompt(c, o, line, NULL);
    default: return ds_ctx_bad(c, line, "cannot tell the record format (use an explicit format)");
    }
}

static const char *json_reason(const json_error_t *e, char *buf, size_t cap) {
    snprintf(buf, cap, "malformed JSON: %s (column %d)", e->text, e->column);
    return buf;
}

/* ---- JSON lines ---------------------------------------------------------------------------------- */

rlhf_status ds_read_jsonl(ds_ctx *c, ds_format f) {
    ds_in in;
    RLHF_TRY(ds_in_open(&in, c->path));
    ds_buf line = {0};
    rlhf_status st = RLHF_OK;
    bool any = false;
    for (;;) {
        int64_t ln;
        ds_in_result r = ds_in_line(&in, &line, c->max_rec, &ln);
        if (r == DS_IN_EOF) break;
        if (r == DS_IN_TOO_LONG) {
            st = ds_ctx_bad(c, ln, "line longer than the %zu-byte record limit", c->max_rec);
            any = true;
            if (st) break;
            continue;
        }
        if (r == DS_IN_TRUNC) {
            st = ds_ctx_bad(c, ln, "truncated or corrupt gzip stream (the file ends inside the data)");
            any = true;
            break;
        }
        const char *s = line.p ? line.p : "";
        size_t l = line.len;
        ds_trim(&s, &l);
        if (l == 0 && !memchr(line.p ? line.p : "", '\0', line.len)) continue; /* blank line */
        any = true;
        const char *nul = memchr(line.p, '\0', line.len);
        if (nul) {
            st = ds_ctx_bad(c, ln, "NUL byte at column %zu", (size_t)(nul - line.p) + 1);
            if (st) break;
            continue;
        }
        size_t bad_at;
        if (!ds_utf8_valid(line.p, line.len, &bad_at)) {
            st = ds_ctx_bad(c, ln, "invalid UTF-8 at column %zu", bad_at + 1);
            if (st) break;
            continue;
        }
        json_error_t err;
        json_t *o = json_loadb(line.p, line.len, JSON_REJECT_DUPLICATES, &err);
        if (!o) {
            char why[300];
            st = ds_ctx_bad(c, ln, "%s", json_reason(&err, why, sizeof why));
            if (st) break;
            continue;
        }
        ds_format rf = f;
        if (rf == DS_FMT_AUTO && json_is_object(o)) rf = f = classify_object(o);
        st = rec_any(c, rf, o, ln);
        json_decref(o);
        if (st) break;
    }
    if (!st && !any) st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: empty file (no records)", c->path);
    ds_buf_free(&line);
    ds_in_close(&in);
    return st;
}

/* ---- JSON documents ------------------------------------------------------------------------------- */

typedef struct scan_elem {
    size_t b, e;  /* byte span of a top-level array element */
    int64_t line; /* its first line */
} scan_elem;

typedef struct scan_out {
    char top;               /* '[' or '{' */
    scan_elem *el;          /* top-level array elements */
    size_t nel, capel;
    int64_t *vline;         /* line of every scalar value (not keys), in document order */
    size_t nv, capv;
    int64_t err_line;       /* structural error: its line, else 0 */
    const char *err;
} scan_out;

static bool push(void **p, size_t *n, size_t *cap, size_t sz) {
    if (*n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 64;
    void *q = realloc(*p, nc * sz);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

/* Structural scan: strings, brackets, scalars; records element spans and value lines. Leaves
 * validation of escapes, numbers and UTF-8 to jansson. Returns false on out of memory. */
static bool scan_doc(const char *t, size_t n, scan_out *o) {
    char stack[512];
    bool expect_key[512];
    int depth = 0;
    int64_t line = 1;
    size_t i = 0;
    bool elem_open = false;
    o->top = 0;
    while (i < n) {
        char ch = t[i];
        if (ch == '\n') { line++; i++; continue; }
        if (ch == ' ' || ch == '\t' || ch == '\r') { i++; continue; }
        if (depth == 0 && o->top) { o->err = "text after the end of the JSON document"; o->err_line = line; return true; }
        if (depth == 1 && o->top == '[' && !elem_open && ch != ']' && ch != ',') {
            if (!push((void **)&o->el, &o->nel, &o->capel, sizeof *o->el)) return false;
            o->el[o->nel].b = i;
            o->el[o->nel].line = line;
            o->el[o->nel].e = n;
            o->nel++;
            elem_open = true;
        }
        if (ch == '"') {
            int64_t sl = line;
            size_t j = i + 1;
            while (j < n && t[j] != '"') {
                if (t[j] == '\\' && j + 1 < n) j++;
                if (t[j] == '\n') line++;
                j++;
            }
            if (j >= n) { o->err = "unterminated string"; o->err_line = sl; return true; }
            bool is_key = depth > 0 && stack[depth - 1] == '{' && expect_key[depth - 1];
            if (!is_key) {
                if (!push((void **)&o->vline, &o->nv, &o->capv, sizeof *o->vline)) return false;
                o->vline[o->nv++] = sl;
            }
            if (depth > 0 && stack[depth - 1] == '{') expect_key[depth - 1] = false;
            i = j + 1;
            continue;
        }
        if (ch == '{' || ch == '[') {
            if (depth == 0) o->top = ch;
            if (depth == (int)sizeof stack) { o->err = "nested too deeply"; o->err_line = line; return true; }
            stack[depth] = ch;
            expect_key[depth] = (ch == '{');
            depth++;
            i++;
            continue;
        }
        if (ch == '}' || ch == ']') {
            if (depth == 0 || stack[depth - 1] != (ch == '}' ? '{' : '[')) {
                o->err = "unbalanced brackets";
                o->err_line = line;
                return true;
            }
            depth--;
            if (depth == 0 && o->top == '[' && elem_open) { o->el[o->nel - 1].e = i; elem_open = false; }
            i++;
            continue;
        }
        if (ch == ',') {
            if (depth == 1 && o->top == '[' && elem_open) { o->el[o->nel - 1].e = i; elem_open = false; }
            if (depth > 0 && stack[depth - 1] == '{') expect_key[depth - 1] = true;
            i++;
            continue;
        }
        if (ch == ':') { i++; continue; }
        /* scalar: number, true, false, null (or garbage jansson will name) */
        if (depth == 0) o->top = ch;
        if (!push((void **)&o->vline, &o->nv, &o->capv, sizeof *o->vline)) return false;
        o->vline[o->nv++] = line;
        do i++; /* at least one byte, so that a NUL or stray byte cannot stall the scan */
        while (i < n && t[i] && !strchr(" \t\r\n,:]}[{\"", t[i]));
    }
    if (depth > 0) {
        o->err = depth > 0 && stack[depth - 1] == '{' ? "unterminated object (missing '}')" : "unterminated array (missing ']')";
        o->err_line = line;
    }
    return true;
}

typedef struct walk_ctx {
    ds_ctx *c;
    const scan_out *s;
    size_t vi; /* next scalar value index */
    char path[1024];
} walk_ctx;

/* Number of scalar values under v (to keep the value-line index aligned when skipping). */
static size_t count_scalars(json_t *v) {
    size_t n = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) n += count_scalars(x);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) n += count_scalars(json_array_get(v, i));
    } else {
        n = 1;
    }
    return n;
}

/* Nested topic lists: objects of (objects of ...) arrays of strings; a prompt's category is the
 * path of keys joined with "/". */
static rlhf_status walk_topics(walk_ctx *w, json_t *v, size_t plen) {
    rlhf_status st = RLHF_OK;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            int l = snprintf(w->path + plen, sizeof w->path - plen, "%s%s", plen ? "/" : "", k);
            size_t nl = plen + (l > 0 ? (size_t)l : 0);
            if (nl >= sizeof w->path) nl = sizeof w->path - 1;
            st = walk_topics(w, x, nl);
            w->path[plen] = '\0';
            if (st) return st;
        }
        return RLHF_OK;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && !st; i++) st = walk_topics(w, json_array_get(v, i), plen);
        return st;
    }
    int64_t line = w->vi < w->s->nv ? w->s->vline[w->vi] : 0;
    w->vi++;
    if (!json_is_string(v)) return ds_ctx_bad(w->c, line, "expected a prompt string");
    return rec_prompt(w->c, v, line, plen ? w->path : NULL);
}

rlhf_status ds_read_jsondoc(ds_ctx *c, ds_format f) {
    ds_in in;
    RLHF_TRY(ds_in_open(&in, c->path));
    ds_buf doc = {0};
    scan_out s = {0};
    rlhf_status st = RLHF_OK;
    ds_in_result r = ds_in_all(&in, &doc, DS_MAX_DOC_BYTES);
    ds_in_close(&in);
    if (r == DS_IN_TOO_LONG) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: JSON document larger than %zu bytes", c->path, DS_MAX_DOC_BYTES);
        goto done;
    }
    if (!scan_doc(doc.p, doc.len, &s)) { st = ds_ctx_nomem(c); goto done; }
    if (!s.top) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: empty file (no records)", c->path);
        goto done;
    }
    if (r == DS_IN_TRUNC) {
        int64_t last = 1;
        for (size_t q = 0; q < doc.len; q++) last += doc.p[q] == '\n';
        s.err = "truncated or corrupt gzip stream";
        s.err_line = last;
    }
    if (s.top == '[') {
        /* element by element; a structural error ends the document after the elements before it */
        for (size_t i = 0; i < s.nel && !st; i++) {
            scan_elem *e = &s.el[i];
            if (s.err && (e->e == doc.len || s.err_line <= e->line)) {
                if (e->line < s.err_line) s.err_line = e->line; /* report where the broken record starts */
                break;
            }
            if (e->e - e->b > c->max_rec) {
                st = ds_ctx_bad(c, e->line, "record longer than the %zu-byte limit", c->max_rec);
                continue;
            }
            size_t bad_at;
            if (!ds_utf8_valid(doc.p + e->b, e->e - e->b, &bad_at)) {
                int64_t bl = e->line;
                for (size_t q = e->b; q < e->b + bad_at; q++) bl += doc.p[q] == '\n';
                st = ds_ctx_bad(c, bl, "%s at byte %zu", memchr(doc.p + e->b, '\0', e->e - e->b) ? "NUL byte or invalid UTF-8" : "invalid UTF-8", e->b + bad_at);
                continue;
            }
            json_error_t err;
            json_t *o = json_loadb(doc.p + e->b, e->e - e->b, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
            if (!o) {
                char why[300];
                st = ds_ctx_bad(c, e->line + (err.line > 0 ? err.line - 1 : 0), "%s", json_reason(&err, why, sizeof why));
                continue;
            }
            ds_format rf = f;
            if (rf == DS_FMT_AUTO) {
                rf = json_is_string(o) ? DS_FMT_PROMPT_LIST : json_is_object(o) ? classify_object(o) : DS_FMT_AUTO;
                if (rf == DS_FMT_NEMO) rf = DS_FMT_SHAREGPT;
                f = rf;
            }
            st = rec_any(c, rf, o, e->line);
            json_decref(o);
        }
        if (!st && s.err) st = ds_ctx_bad(c, s.err_line, "%s%s; the rest of the file cannot be read", r == DS_IN_TRUNC ? "" : "malformed JSON: ", s.err);
        if (!st && c->st.records == 0) st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: empty array (no records)", c->path);
        goto done;
    }
    if (s.err) { st = ds_ctx_bad(c, s.err_line, "%s%s", r == DS_IN_TRUNC ? "" : "malformed JSON: ", s.err); goto done; }
    if (s.top != '{') {
        st = ds_ctx_bad(c, 1, "expected a JSON array or object");
        goto done;
    }
    if (f != DS_FMT_AUTO && f != DS_FMT_PROMPT_LIST) {
        st = ds_ctx_bad(c, 1, "a top-level JSON object is read only as a nested prompt list");
        goto done;
    }
    {
        json_error_t err;
        json_t *o = json_loadb(doc.p, doc.len, JSON_REJECT_DUPLICATES, &err);
        if (!o) {
            char why[300];
            st = ds_ctx_bad(c, err.line > 0 ? err.line : 1, "%s", json_reason(&err, why, sizeof why));
            goto done;
        }
        walk_ctx w = {.c = c, .s = &s};
        if (count_scalars(o) != s.nv) {
            json_decref(o);
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: internal: JSON value count mismatch", c->path);
            goto done;
        }
        st = walk_topics(&w, o, 0);
        json_decref(o);
        if (!st && c->st.records == 0) st = RLHF_ERR(RLHF_ERR_FORMAT, "%s:1: no prompts in the document", c->path);
    }
done:
    free(s.el);
    free(s.vline);
    ds_buf_free(&doc);
    return st;
}

/* Used by ds_format_detect: the format of a JSON file from its first record. */
ds_format ds_json_detect(const char *text, size_t n);
ds_format ds_json_detect(const char *text, size_t n) {
    size_t i = 0;
    while (i < n && strchr(" \t\r\n", text[i]) && text[i]) i++;
    if (i == n) return DS_FMT_AUTO;
    if (text[i] == '{') {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t l = nl ? (size_t)(nl - (text + i)) : n - i;
        json_t *o = json_loadb(text + i, l, 0, NULL);
        if (!o) return DS_FMT_PROMPT_LIST; /* a multi-line object: nested topic lists */
        ds_format f = classify_object(o);
        json_decref(o);
        return f;
    }
    if (text[i] == '[') {
        scan_out s = {0};
        ds_format f = DS_FMT_AUTO;
        if (scan_doc(text, n, &s) && s.nel > 0) {
            json_t *o = json_loadb(text + s.el[0].b, s.el[0].e - s.el[0].b, JSON_DECODE_ANY, NULL);
            if (o) {
                f = json_is_string(o) ? DS_FMT_PROMPT_LIST : json_is_object(o) ? classify_object(o) : DS_FMT_AUTO;
                if (f == DS_FMT_NEMO) f = DS_FMT_SHAREGPT;
                json_decref(o);
            }
        }
        free(s.el);
        free(s.vline);
        return f;
    }
    return DS_FMT_AUTO;
}
