/* ds_chat.c: the Llama 2-Chat template, as Meta's reference code renders it (llama/generation.py,
 * Llama.chat_completion), to token ids with a per-token role and turn index, and to text.
 *
 * Meta's rendering, which this follows byte for byte:
 *   - a system prompt is folded into the first user message:
 *       "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + user          (system itself is not stripped)
 *   - each (user, answer) pair is ONE SentencePiece encode, with BOS and EOS as ids:
 *       encode("[INST] " + strip(user) + " [/INST] " + strip(answer) + " ", bos, eos)
 *   - a final user message without an answer: encode("[INST] " + strip(user) + " [/INST]", bos)
 *   strip() is Python's str.strip() (leading and trailing whitespace); for the first message it is
 *   applied to the folded "<<SYS>>...user" string, so only the user text's end is stripped there.
 * The text rendering writes BOS/EOS as "<s>" and "</s>" around each segment. */
#include <stdlib.h>
#include <string.h>

#include "ds_impl.h"

typedef struct seg {
    ds_buf text;
    ds_buf role; /* one ds_role byte per text byte */
    ds_buf turn_is_answer; /* 1 for bytes of the answer part */
} seg;

static rlhf_status seg_add(seg *s, const char *t, size_t n, ds_role r, char answer) {
    size_t at = s->text.len;
    RLHF_TRY(ds_buf_append(&s->text, t, n));
    RLHF_TRY(ds_buf_reserve(&s->role, at + n));
    RLHF_TRY(ds_buf_reserve(&s->turn_is_answer, at + n));
    memset(s->role.p + at, (int)r, n);
    memset(s->turn_is_answer.p + at, answer, n);
    s->role.len = s->turn_is_answer.len = at + n;
    return RLHF_OK;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Python str.strip() on the bytes [b, e) of s (ASCII whitespace; Meta's texts are str, whose
 * strip also removes Unicode spaces, which we do not: see the README). */
static void strip_span(const char *s, size_t *b, size_t *e) {
    while (*b < *e && is_space(s[*b])) (*b)++;
    while (*e > *b && is_space(s[*e - 1])) (*e)--;
}

static void seg_clear(seg *s) { s->text.len = s->role.len = s->turn_is_answer.len = 0; }

static void seg_free(seg *s) {
    ds_buf_free(&s->text);
    ds_buf_free(&s->role);
    ds_buf_free(&s->turn_is_answer);
}

/* Builds segment k (user turn k, answer turn k+1 when present) into s. */
static rlhf_status seg_build(const ds_dialogue *d, int32_t k, seg *s) {
    seg_clear(s);
    /* the user message, folded with the system prompt for the first turn, then stripped */
    seg u = {0};
    rlhf_status st = RLHF_OK;
    const char *ut = d->turns[k].text ? d->turns[k].text : "";
    if (k == 0 && d->system) {
        static const char B_SYS[] = "<<SYS>>\n", E_SYS[] = "\n<</SYS>>\n\n";
        if (!st) st = seg_add(&u, B_SYS, sizeof B_SYS - 1, DS_ROLE_USER, 0);
        if (!st) st = seg_add(&u, d->system, strlen(d->system), DS_ROLE_SYSTEM, 0);
        if (!st) st = seg_add(&u, E_SYS, sizeof E_SYS - 1, DS_ROLE_USER, 0);
    }
    if (!st) st = seg_add(&u, ut, strlen(ut), DS_ROLE_USER, 0);
    size_t b = 0, e = u.text.len;
    if (!st) strip_span(u.text.p ? u.text.p : "", &b, &e);
    if (!st) st = seg_add(s, "[INST] ", 7, DS_ROLE_USER, 0);
    for (size_t i = b; !st && i < e; i++) st = seg_add(s, u.text.p + i, 1, (ds_role)u.role.p[i], 0);
    seg_free(&u);
    if (st) return st;
    if (k + 1 < d->n_turns) {
        const char *a = d->turns[k + 1].text ? d->turns[k + 1].text : "";
        size_t ab = 0, ae = strlen(a);
        strip_span(a, &ab, &ae);
        RLHF_TRY(seg_add(s, " [/INST]", 8, DS_ROLE_USER, 0));
        RLHF_TRY(seg_add(s, " ", 1, DS_ROLE_ASSISTANT, 1));
        RLHF_TRY(seg_add(s, a + ab, ae - ab, DS_ROLE_ASSISTANT, 1));
        RLHF_TRY(seg_add(s, " ", 1, DS_ROLE_ASSISTANT, 1));
    } else {
        RLHF_TRY(seg_add(s, " [/INST]", 8, DS_ROLE_USER, 0));
    }
    return RLHF_OK;
}

static rlhf_status check_dialogue(const ds_dialogue *d) {
    if (!d || d->n_turns < 1 || !d->turns) return RLHF_ERR(RLHF_ERR_ARG, "chat template: empty dialogue");
    for (int32_t i = 0; i < d->n_turns; i++) {
        ds_role want = (i % 2 == 0) ? DS_ROLE_USER : DS_ROLE_ASSISTANT;
        if (d->turns[i].role != want)
            return RLHF_ERR(RLHF_ERR_ARG, "chat template: turn %d is %s, expected %s (user/assistant alternating)",
                            (int)i, ds_role_name(d->turns[i].role), ds_role_name(want));
    }
    return RLHF_OK;
}

void ds_chat_free(ds_chat_tokens *c) {
    if (!c) return;
    free(c->ids);
    free(c->roles);
    free(c->turns);
    memset(c, 0, sizeof *c);
}

static rlhf_status out_push(ds_chat_tokens *o, int32_t *cap, int32_t id, ds_role r, int32_t turn, int32_t max) {
    if (max > 0 && o->n >= max) return RLHF_ERR(RLHF_ERR_ARG, "chat template: rendering longer than %d tokens", (int)max);
    if (o->n == *cap) {
        int32_t nc = *cap ? *cap * 2 : 256;
        int32_t *ids = realloc(o->ids, (size_t)nc * sizeof *ids);
        if (ids) o->ids = ids;
        uint8_t *roles = realloc(o->roles, (size_t)nc);
        if (roles) o->roles = roles;
        int32_t *turns = realloc(o->turns, (size_t)nc * sizeof *turns);
        if (turns) o->turns = turns;
        if (!ids || !roles || !turns) return RLHF_ERR(RLHF_ERR_NOMEM, "chat template: out of memory");
        *cap = nc;
    }
    o->ids[o->n] = id;
    o->roles[o->n] = (uint8_t)r;
    o->turns[o->n] = turn;
    o->n++;
    return RLHF_OK;
}

rlhf_status ds_chat_render(const rlhf_tokenizer *tok, const ds_dialogue *d, int32_t max_tokens,
                           ds_chat_tokens *out) {
    memset(out, 0, sizeof *out);
    if (!tok) return RLHF_ERR(RLHF_ERR_ARG, "chat template: no tokenizer");
    RLHF_TRY(check_dialogue(d));
    seg s = {0};
    int32_t cap = 0, *ids = NULL, idcap = 0;
    rlhf_status st = RLHF_OK;
    const int32_t bos = rlhf_tokenizer_bos(tok), eos = rlhf_tokenizer_eos(tok);
    for (int32_t k = 0; k < d->n_turns && !st; k += 2) {
        st = seg_build(d, k, &s);
        if (st) break;
        bool answered = k + 1 < d->n_turns;
        int32_t need = (int32_t)s.text.len + 3;
        if (need > idcap) {
            int32_t *p = realloc(ids, (size_t)need * sizeof *p);
            if (!p) { st = RLHF_ERR(RLHF_ERR_NOMEM, "chat template: out of memory"); break; }
            ids = p;
            idcap = need;
        }
        int32_t n = 0;
        st = rlhf_tokenizer_encode(tok, s.text.p, false, false, ids, idcap, &n);
        if (st) break;
        st = out_push(out, &cap, bos, DS_ROLE_USER, k, max_tokens);
        /* each token takes the role of the first non-space byte it covers (all-space tokens: of
         * their first byte); positions are in text bytes, the first piece carries the dummy " ".
         * Piece lengths are taken with a non-control previous piece (the token itself for the
         * first): a SentencePiece .model drops a piece's leading space at the start (prev < 0),
         * which would shift every later position by one byte per word. */
        int64_t pos = -1;
        for (int32_t i = 0; i < n && !st; i++) {
            size_t len = 0;
            rlhf_tokenizer_piece(tok, i > 0 ? ids[i - 1] : ids[0], ids[i], &len);
            int64_t b = pos < 0 ? 0 : pos, e = pos + (int64_t)len;
            if (e > (int64_t)s.text.len) e = (int64_t)s.text.len;
            if (b >= (int64_t)s.text.len) b = (int64_t)s.text.len - 1;
            int64_t at = b;
            while (at < e && is_space(s.text.p[at])) at++;
            if (at >= e) at = b;
            ds_role r = (ds_role)s.role.p[at];
            int32_t turn = k + (s.turn_is_answer.p[at] ? 1 : 0);
            st = out_push(out, &cap, ids[i], r, turn, max_tokens);
            pos += (int64_t)len;
        }
        if (!st && answered) st = out_push(out, &cap, eos, DS_ROLE_ASSISTANT, k + 1, max_tokens);
    }
    free(ids);
    seg_free(&s);
    if (st) ds_chat_free(out);
    return st;
}

rlhf_status ds_chat_render_text(const ds_dialogue *d, char **out) {
    *out = NULL;
    RLHF_TRY(check_dialogue(d));
    seg s = {0};
    ds_buf b = {0};
    rlhf_status st = ds_buf_reserve(&b, 0);
    for (int32_t k = 0; k < d->n_turns && !st; k += 2) {
        st = seg_build(d, k, &s);
        if (!st) st = ds_buf_append(&b, "<s>", 3);
        if (!st) st = ds_buf_append(&b, s.text.p, s.text.len);
        if (!st && k + 1 < d->n_turns) st = ds_buf_append(&b, "</s>", 4);
    }
    seg_free(&s);
    if (st) {
        ds_buf_free(&b);
        return st;
    }
    *out = b.p;
    return RLHF_OK;
}
