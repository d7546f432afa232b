/* gatt_check.c: the automatic checker of Ghost Attention: does an answer respect an instruction?
 *
 * Pure text rules, no model: style rules are exact (case, word counts, first/last word, sentence
 * ends, commas, a final '?'); a language is recognised by counting whole-word hits of its list's
 * function words against the other languages' and a built-in English list; hobbies, figures and
 * personas by a whole-word, case-insensitive mention of one of their keyword phrases.
 * "Word" characters are ASCII letters, digits, the apostrophe and every non-ASCII byte (so that
 * "français" or "ça" are one word each); case folding is ASCII only. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "gatt.h"

/* Function words that mark an English answer (the default language of the models). */
static const char *const ENGLISH_MARKERS =
    "the|and|is|are|you|to|of|in|it|that|my|what|this|with|for|have|not|was|do|am|your|i|me|we";

static bool is_word(unsigned char c) { return isalnum(c) || c == '\'' || c >= 0x80; }
static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Occurrences of phrase (n bytes) in s as a whole-word match, case-insensitive. */
static int32_t count_phrase(const char *s, const char *phrase, size_t n) {
    if (n == 0) return 0;
    int32_t hits = 0;
    size_t len = strlen(s);
    for (size_t i = 0; i + n <= len; i++) {
        if (i > 0 && is_word((unsigned char)s[i - 1])) continue;
        size_t j = 0;
        while (j < n && lower((unsigned char)s[i + j]) == lower((unsigned char)phrase[j]))
            j++;
        if (j < n) continue;
        if (i + n < len && is_word((unsigned char)s[i + n])) continue;
        hits++;
    }
    return hits;
}

/* Calls count_phrase for every '|'-separated, space-trimmed phrase of list; returns the sum, or
 * (any_only) 1 as soon as one phrase is found. */
static int32_t count_keywords(const char *s, const char *list, bool any_only) {
    int32_t total = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, '|');
        if (!e) e = p + strlen(p);
        const char *a = p, *b = e;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        int32_t h = count_phrase(s, a, (size_t)(b - a));
        if (h && any_only) return 1;
        total += h;
        p = *e ? e + 1 : e;
    }
    return total;
}

/* Words of s: count, and the first and last word's [start, end). */
typedef struct words {
    int32_t n;
    const char *first, *first_end, *last, *last_end;
} words;

static words scan_words(const char *s) {
    words w = {0};
    const char *p = s;
    while (*p) {
        if (!is_word((unsigned char)*p)) {
            p++;
            continue;
        }
        const char *a = p;
        while (*p && is_word((unsigned char)*p))
            p++;
        if (w.n == 0) {
            w.first = a;
            w.first_end = p;
        }
        w.last = a;
        w.last_end = p;
        w.n++;
    }
    return w;
}

static bool word_equals(const char *a, const char *end, const char *word) {
    size_t n = (size_t)(end - a);
    if (strlen(word) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)word[i])) return false;
    return true;
}

/* At most one sentence: no sentence end ([.!?]+ followed by a space) with a word after it. */
static bool one_sentence(const char *s) {
    const char *p = s;
    bool ended = false;
    while (*p) {
        unsigned char c = (unsigned char)*p;
        if (ended && is_word(c)) return false;
        if (c == '.' || c == '!' || c == '?') {
            while (*p == '.' || *p == '!' || *p == '?')
                p++;
            while (*p == '"' || *p == '\'' || *p == ')')
                p++;
            if (*p == '\0' || isspace((unsigned char)*p)) ended = true;
            continue;
        }
        p++;
    }
    return true;
}

static bool style_check(const gatt_constraint *c, const char *s, const words *w) {
    switch (c->style) {
    case GATT_STYLE_ONE_SENTENCE:
        return one_sentence(s);
    case GATT_STYLE_UPPERCASE:
    case GATT_STYLE_LOWERCASE: {
        bool upper = false, low = false;
        for (const char *p = s; *p; p++) {
            upper |= *p >= 'A' && *p <= 'Z';
            low |= *p >= 'a' && *p <= 'z';
        }
        return c->style == GATT_STYLE_UPPERCASE ? upper && !low : low && !upper;
    }
    case GATT_STYLE_END_WORD:
        return word_equals(w->last, w->last_end, c->value);
    case GATT_STYLE_START_WORD:
        return word_equals(w->first, w->first_end, c->value);
    case GATT_STYLE_MAX_WORDS:
        return w->n <= atoi(c->value);
    case GATT_STYLE_NO_COMMA:
        return strchr(s, ',') == NULL;
    case GATT_STYLE_END_QUESTION: {
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1]))
            n--;
        return n > 0 && s[n - 1] == '?';
    }
    default:
        return false;
    }
}

static bool language_check(const gatt_constraint *c, const gatt_list *langs, const char *s) {
    bool is_english = word_equals(c->value, c->value + strlen(c->value), "English");
    const char *mine = c->keywords ? c->keywords : is_english ? ENGLISH_MARKERS : c->value;
    int32_t hits = count_keywords(s, mine, false);
    if (hits == 0) return false;
    if (!is_english && count_keywords(s, ENGLISH_MARKERS, false) >= hits) return false;
    for (int32_t i = 0; langs && i < langs->n; i++) {
        const gatt_item *it = &langs->v[i];
        if (word_equals(it->name, it->name + strlen(it->name), c->value)) continue;
        if (count_keywords(s, it->keywords ? it->keywords : it->name, false) >= hits) return false;
    }
    return true;
}

bool gatt_constraint_check(const gatt_constraint *c, const gatt_list *langs, const char *answer) {
    if (!c || !answer) return false;
    words w = scan_words(answer);
    if (w.n == 0) return false; /* nothing said respects nothing */
    switch (c->kind) {
    case GATT_STYLE:
        return style_check(c, answer, &w);
    case GATT_LANGUAGE:
        return language_check(c, langs, answer);
    case GATT_HOBBY:
    case GATT_FIGURE:
    case GATT_PERSONA:
        return count_keywords(answer, c->keywords ? c->keywords : c->value, true) > 0;
    default:
        return false;
    }
}

bool gatt_answer_check(const gatt_instr *in, const gatt_list *langs, const char *answer,
                       bool probe) {
    if (!in || !answer || scan_words(answer).n == 0) return false;
    for (int32_t i = 0; i < in->n; i++) {
        const gatt_constraint *c = &in->c[i];
        bool always = c->kind == GATT_STYLE || c->kind == GATT_LANGUAGE;
        if ((always || probe) && !gatt_constraint_check(c, langs, answer)) return false;
    }
    return true;
}
