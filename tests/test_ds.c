/* test_ds.c: the dataset readers on the committed fixtures (no ../shared needed): every file of
 * tests/data/broken gives the expected error and line in stop mode with nothing delivered, and in
 * skip mode reports exactly that record and delivers exactly the good ones; the HH-RLHF splitting
 * rules and the CSV pair columns on tests/data/good; format detection; the eval split; the
 * Llama 2-Chat text rendering byte for byte. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "ds.h"
#include "test.h"

typedef struct collect {
    int n_good, n_bad;
    int64_t lines[64], bad_line;
    int64_t idx[64];
    char bad_reason[512];
    int fail_at; /* sink returns RLHF_ERR_IO at this record (0 = never) */
} collect;

static rlhf_status sink(void *u, const ds_record *r) {
    collect *c = u;
    if (c->n_good < 64) { c->lines[c->n_good] = r->line; c->idx[c->n_good] = r->index; }
    c->n_good++;
    if (c->fail_at && c->n_good == c->fail_at) return RLHF_ERR(RLHF_ERR_IO, "sink failure");
    return RLHF_OK;
}

static void on_bad(void *u, const char *file, int64_t line, const char *reason) {
    collect *c = u;
    (void)file;
    c->n_bad++;
    c->bad_line = line;
    snprintf(c->bad_reason, sizeof c->bad_reason, "%s", reason);
}

typedef struct broken_case {
    const char *file;
    ds_format fmt;
    int64_t max_rec;
    int64_t line;       /* line of the bad record */
    const char *reason; /* substring of the reason */
    int good_skip;      /* good records delivered in skip mode (-1: the file is an error in both modes) */
    int64_t first_good_line;
} broken_case;

static const broken_case BROKEN[] = {
    {"hh_malformed_json.jsonl", DS_FMT_AUTO, 0, 2, "malformed JSON", 2, 1},
    {"hh_bad_utf8.jsonl", DS_FMT_AUTO, 0, 3, "invalid UTF-8", 3, 1},
    {"hh_nul_byte.jsonl", DS_FMT_AUTO, 0, 2, "NUL byte", 3, 1},
    {"hh_escaped_nul.jsonl", DS_FMT_AUTO, 0, 2, "\\u0000", 2, 1},
    {"hh_missing_field.jsonl", DS_FMT_HH, 0, 4, "missing \"rejected\"", 3, 1},
    {"hh_wrong_type.jsonl", DS_FMT_HH, 0, 2, "must be strings", 2, 1},
    {"hh_no_assistant.jsonl", DS_FMT_HH, 0, 3, "Assistant turn", 2, 1},
    {"hh_not_transcript.jsonl", DS_FMT_HH, 0, 1, "does not start with", 1, 2},
    {"hh_long_line.jsonl", DS_FMT_HH, 1024, 2, "record limit", 2, 1},
    {"hh_truncated.jsonl.gz", DS_FMT_AUTO, 0, 16, "truncated", 15, 1},
    {"empty.jsonl", DS_FMT_AUTO, 0, 1, "empty file", -1, 0},
    {"blank_lines_only.jsonl", DS_FMT_HH, 0, 1, "empty file", -1, 0},
    {"csv_unbalanced_quote.csv", DS_FMT_AUTO, 0, 3, "unterminated quoted field", 1, 2},
    {"csv_stray_quote.csv", DS_FMT_AUTO, 0, 3, "malformed CSV", 2, 2},
    {"csv_missing_column.csv", DS_FMT_CSV_PAIRS, 0, 1, "missing column \"rejected\"", -1, 0},
    {"csv_field_count.csv", DS_FMT_AUTO, 0, 3, "expected 3 fields", 2, 2},
    {"csv_bad_utf8.csv", DS_FMT_AUTO, 0, 3, "invalid UTF-8", 2, 2},
    {"csv_bad_rating.csv", DS_FMT_AUTO, 0, 3, "unknown rating", 2, 2},
    {"csv_multiline_then_bad.csv", DS_FMT_CSV_PROMPTS, 0, 4, "unsafe must be", 2, 2},
    {"csv_empty.csv", DS_FMT_AUTO, 0, 1, "empty file", -1, 0},
    {"csv_header_only.csv", DS_FMT_AUTO, 0, 2, "no records", -1, 0},
    {"sharegpt_bad_role.json", DS_FMT_AUTO, 0, 15, "unknown speaker \"robot\"", 2, 2},
    {"sharegpt_not_alternating.json", DS_FMT_SHAREGPT, 0, 2, "expected assistant", 1, 15},
    {"sharegpt_unterminated.json", DS_FMT_AUTO, 0, 15, "unterminated", 1, 2},
    {"sharegpt_bad_element.json", DS_FMT_SHAREGPT, 0, 3, "malformed JSON", 2, 2},
    {"nemo_empty_conversation.jsonl", DS_FMT_AUTO, 0, 2, "empty conversation", 1, 1},
    {"mtbench_wrong_type.jsonl", DS_FMT_AUTO, 0, 2, "\"turns\" must be", 2, 1},
    {"prompts_nested_bad_leaf.json", DS_FMT_AUTO, 0, 5, "expected a prompt string", 2, 4},
    {"prompts_list_bad_item.json", DS_FMT_PROMPT_LIST, 0, 3, "expected a prompt string", 2, 2},
    {"prompts_trailing_garbage.json", DS_FMT_AUTO, 0, 5, "after the end", 2, 2},
};

static void test_broken(void) {
    char path[1024], rel[256], want[1200];
    for (size_t i = 0; i < sizeof BROKEN / sizeof BROKEN[0]; i++) {
        const broken_case *b = &BROKEN[i];
        snprintf(rel, sizeof rel, "tests/data/broken/%s", b->file);
        test_src(rel, path, sizeof path);
        ds_read_opts o = {.format = b->fmt, .unsafe = -1, .max_record_bytes = b->max_rec};
        /* stop mode: error naming file:line and the reason, nothing delivered */
        collect c = {0};
        ds_read_stats st;
        rlhf_status s = ds_read(path, &o, sink, on_bad, &c, &st);
        snprintf(want, sizeof want, "%s:%lld: ", path, (long long)b->line);
        CHECKF(s == RLHF_ERR_FORMAT, "%s: stop mode gave %s", b->file, rlhf_status_name(s));
        CHECKF(strstr(rlhf_last_error(), want) != NULL, "%s: error \"%s\" lacks \"%s\"", b->file, rlhf_last_error(), want);
        CHECKF(strstr(rlhf_last_error(), b->reason) != NULL, "%s: error \"%s\" lacks \"%s\"", b->file, rlhf_last_error(), b->reason);
        CHECKF(c.n_good == 0 && c.n_bad == 0, "%s: stop mode delivered %d records, %d bad reports", b->file, c.n_good, c.n_bad);
        /* skip mode: exactly the good records, one bad report with line and reason */
        memset(&c, 0, sizeof c);
        o.skip_bad = true;
        s = ds_read(path, &o, sink, on_bad, &c, &st);
        if (b->good_skip < 0) {
            CHECKF(s == RLHF_ERR_FORMAT && c.n_good == 0, "%s: skip mode should fail (%s, %d records)", b->file,
                   rlhf_status_name(s), c.n_good);
            continue;
        }
        CHECKF(s == RLHF_OK, "%s: skip mode gave %s (%s)", b->file, rlhf_status_name(s), rlhf_last_error());
        CHECKF(c.n_good == b->good_skip, "%s: skip mode delivered %d, want %d", b->file, c.n_good, b->good_skip);
        CHECKF(c.n_bad == 1 && c.bad_line == b->line, "%s: %d bad reports, line %lld, want 1 at %lld", b->file, c.n_bad,
               (long long)c.bad_line, (long long)b->line);
        CHECKF(strstr(c.bad_reason, b->reason) != NULL, "%s: reason \"%s\" lacks \"%s\"", b->file, c.bad_reason, b->reason);
        CHECKF(st.good == b->good_skip && st.bad == 1 && st.records == st.good + st.bad + st.rejected_same + st.rejected_context,
               "%s: stats records %lld good %lld bad %lld", b->file, (long long)st.records, (long long)st.good, (long long)st.bad);
        CHECKF(c.n_good == 0 || c.lines[0] == b->first_good_line, "%s: first good record at line %lld, want %lld", b->file,
               (long long)c.lines[0], (long long)b->first_good_line);
        for (int k = 1; k < c.n_good && k < 64; k++)
            CHECKF(c.lines[k] > c.lines[k - 1] && c.idx[k] > c.idx[k - 1], "%s: records out of order", b->file);
    }
}

/* no_prescan: stop mode in one pass delivers the records before the bad one */
static void test_no_prescan(void) {
    char path[1024];
    test_src("tests/data/broken/hh_missing_field.jsonl", path, sizeof path);
    ds_read_opts o = {.unsafe = -1, .no_prescan = true};
    collect c = {0};
    CHECK(ds_read(path, &o, sink, on_bad, &c, NULL) == RLHF_ERR_FORMAT);
    CHECK(c.n_good == 3);
    /* sink errors stop the read and come back unchanged */
    test_src("tests/data/good/hh_rules.jsonl", path, sizeof path);
    memset(&c, 0, sizeof c);
    c.fail_at = 2;
    ds_read_opts o2 = {.unsafe = -1};
    CHECK(ds_read(path, &o2, sink, on_bad, &c, NULL) == RLHF_ERR_IO);
    CHECK(c.n_good == 2);
    /* missing file */
    CHECK(ds_read("/nonexistent/x.jsonl", &o2, sink, on_bad, &c, NULL) == RLHF_ERR_IO);
    CHECK(strstr(rlhf_last_error(), "/nonexistent/x.jsonl") != NULL);
}

typedef struct hh_seen {
    int n;
    ds_record r[8];
    char *text[8][8]; /* copies: records are valid only during the callback */
    int32_t nctx[8];
} hh_seen;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static rlhf_status hh_sink(void *u, const ds_record *r) {
    hh_seen *h = u;
    if (h->n >= 8) return RLHF_OK;
    h->r[h->n] = *r;
    int32_t n = r->pair.context.n_turns;
    h->nctx[h->n] = n;
    for (int32_t i = 0; i < n && i < 5; i++) h->text[h->n][i] = dup_or_null(r->pair.context.turns[i].text);
    h->text[h->n][5] = dup_or_null(r->pair.chosen);
    h->text[h->n][6] = dup_or_null(r->pair.rejected);
    h->text[h->n][7] = dup_or_null(r->pair.context.system);
    h->n++;
    return RLHF_OK;
}

static void test_hh_rules(void) {
    char path[1024];
    test_src("tests/data/good/hh_rules.jsonl", path, sizeof path);
    ds_format f;
    CHECK_OK(ds_format_detect(path, &f));
    CHECK(f == DS_FMT_HH);
    hh_seen h = {0};
    ds_read_stats st;
    ds_read_opts o = {.track = DS_TRACK_SAFETY, .unsafe = -1};
    CHECK_OK(ds_read(path, &o, hh_sink, NULL, &h, &st));
    CHECK(st.records == 6 && st.good == 4 && st.bad == 0 && st.rejected_same == 1 && st.rejected_context == 1);
    CHECK(h.n == 4);
    if (h.n == 4) {
        CHECK(h.r[0].line == 1 && h.r[0].index == 0 && h.nctx[0] == 1);
        CHECK(!strcmp(h.text[0][0], "Question 0?") && !strcmp(h.text[0][5], "Answer 0.") && !strcmp(h.text[0][6], "Other 0."));
        CHECK(h.r[0].pair.track == DS_TRACK_SAFETY && h.r[0].pair.rating == DS_RATING_NONE && h.r[0].pair.chosen_safe == -1);
        CHECK(h.r[1].line == 2 && h.nctx[1] == 3);
        CHECK(!strcmp(h.text[1][0], "two") && !strcmp(h.text[1][1], "A1") && !strcmp(h.text[1][2], "three?"));
        CHECK(!strcmp(h.text[1][5], "yes") && !strcmp(h.text[1][6], "no"));
        /* consecutive Assistant turns are one response, joined by a blank line */
        CHECK(h.r[2].line == 5 && h.r[2].index == 4 && h.nctx[2] == 1);
        CHECK(!strcmp(h.text[2][5], "part one\n\npart two") && !strcmp(h.text[2][6], "other"));
        CHECK(h.r[3].line == 6 && !strcmp(h.text[3][0], "bare start") && !strcmp(h.text[3][5], "c"));
    }
    for (int i = 0; i < h.n; i++)
        for (int k = 0; k < 8; k++) free(h.text[i][k]);
}

static void test_csv_pairs(void) {
    char path[1024];
    test_src("tests/data/good/pairs.csv", path, sizeof path);
    ds_format f;
    CHECK_OK(ds_format_detect(path, &f));
    CHECK(f == DS_FMT_CSV_PAIRS);
    hh_seen h = {0};
    ds_read_stats st;
    ds_read_opts o = {.unsafe = -1, .track = DS_TRACK_HELPFULNESS};
    CHECK_OK(ds_read(path, &o, hh_sink, NULL, &h, &st));
    CHECK(h.n == 2 && st.good == 2);
    if (h.n == 2) {
        CHECK(h.r[0].line == 2 && !strcmp(h.text[0][0], "Say \"hi\"") && !strcmp(h.text[0][7], "Be nice."));
        CHECK(!strcmp(h.text[0][5], "Hi,\nthere") && !strcmp(h.text[0][6], "Go away"));
        CHECK(h.r[0].pair.rating == DS_RATING_SIGNIFICANTLY && h.r[0].pair.track == DS_TRACK_HELPFULNESS);
        CHECK(h.r[0].pair.chosen_safe == 1 && h.r[0].pair.rejected_safe == 0);
        CHECK(h.r[1].line == 4 && h.text[1][7] == NULL && h.r[1].pair.track == DS_TRACK_SAFETY);
        CHECK(h.r[1].pair.rating == DS_RATING_NONE && h.r[1].pair.chosen_safe == -1);
    }
    for (int i = 0; i < h.n; i++)
        for (int k = 0; k < 8; k++) free(h.text[i][k]);
}

static void test_names_and_split(void) {
    for (int f = 0; f <= DS_FMT_PROMPT_LIST; f++) {
        ds_format g;
        CHECK(ds_format_parse(ds_format_name((ds_format)f), &g) && g == (ds_format)f);
    }
    ds_rating r;
    CHECK(ds_rating_parse("slightly better", &r) && r == DS_RATING_SLIGHTLY);
    CHECK(!ds_rating_parse("much", &r));
    ds_track t;
    CHECK(ds_track_parse("Safety", &t) && t == DS_TRACK_SAFETY);
    /* split: deterministic, close to the fraction, content-keyed */
    char buf[64];
    int n_eval = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(buf, sizeof buf, "prompt number %d", i);
        ds_record rec = {.kind = DS_PROMPT, .index = i};
        rec.prompt.text = buf;
        bool e = ds_split_is_eval(&rec, 0.1);
        rec.index = 7; /* position does not matter, only content */
        CHECK(e == ds_split_is_eval(&rec, 0.1));
        n_eval += e;
        CHECK(!ds_split_is_eval(&rec, 0.0) && ds_split_is_eval(&rec, 1.0));
    }
    CHECKF(n_eval > 1800 && n_eval < 2200, "eval count %d of 20000 at 0.1", n_eval);
    CHECK(ds_utf8_valid("caf\xc3\xa9", 5, NULL));
    CHECK(!ds_utf8_valid("\xc0\xaf", 2, NULL));          /* overlong */
    CHECK(!ds_utf8_valid("\xed\xa0\x80", 3, NULL));      /* surrogate */
    CHECK(!ds_utf8_valid("\xf4\x90\x80\x80", 4, NULL));  /* > U+10FFFF */
    CHECK(!ds_utf8_valid("ab\xe2\x82", 4, NULL));        /* cut */
    struct { const char *in, *out; } san[] = {
        {"caf\xc3\xa9", "caf\xc3\xa9"},                            /* valid: unchanged */
        {"ab\xa2" "c", "ab\xef\xbf\xbd" "c"},                      /* lone continuation byte */
        {"\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* cut: one per byte */
        {"\xc0\xaf" "x\xe2\x82\xac", "\xef\xbf\xbd\xef\xbf\xbd" "x\xe2\x82\xac"}, /* overlong, then EUR */
        {"", ""}};
    for (size_t i = 0; i < sizeof san / sizeof *san; i++) {
        char *u = ds_utf8_sanitize(san[i].in, strlen(san[i].in));
        CHECKF(u && strcmp(u, san[i].out) == 0, "ds_utf8_sanitize case %zu", i);
        CHECK(u && ds_utf8_valid(u, strlen(u), NULL));
        free(u);
    }
}

static void test_chat_text(void) {
    ds_turn t[6] = {{DS_ROLE_USER, "What is the capital of France?"},
                    {DS_ROLE_ASSISTANT, "Paris."},
                    {DS_ROLE_USER, "  And of Germany?  "},
                    {DS_ROLE_ASSISTANT, " Berlin, of course. "},
                    {DS_ROLE_USER, "Which one is bigger?\n"},
                    {DS_ROLE_ASSISTANT, "Berlin."}};
    ds_dialogue d = {.system = "You are a terse assistant.", .turns = t, .n_turns = 6};
    char *s = NULL;
    CHECK_OK(ds_chat_render_text(&d, &s));
    const char *want =
        "<s>[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n\nWhat is the capital of France? [/INST] Paris. </s>"
        "<s>[INST] And of Germany? [/INST] Berlin, of course. </s>"
        "<s>[INST] Which one is bigger? [/INST] Berlin. </s>";
    CHECKF(s && !strcmp(s, want), "got \"%s\"", s ? s : "(null)");
    free(s);
    d.n_turns = 5; /* ends with a user turn: a prompt to sample from */
    CHECK_OK(ds_chat_render_text(&d, &s));
    want = "<s>[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n\nWhat is the capital of France? [/INST] Paris. </s>"
           "<s>[INST] And of Germany? [/INST] Berlin, of course. </s>"
           "<s>[INST] Which one is bigger? [/INST]";
    CHECKF(s && !strcmp(s, want), "got \"%s\"", s ? s : "(null)");
    free(s);
    d.system = NULL;
    d.n_turns = 1;
    CHECK_OK(ds_chat_render_text(&d, &s));
    CHECKF(s && !strcmp(s, "<s>[INST] What is the capital of France? [/INST]"), "got \"%s\"", s ? s : "(null)");
    free(s);
    d.turns = t + 1; /* starts with an assistant turn */
    CHECK(ds_chat_render_text(&d, &s) == RLHF_ERR_ARG && s == NULL);
}


/* Mutated fixtures (byte flips, quotes, NULs, newlines, cuts): never a crash; stats add up; stop
 * mode either succeeds with what skip mode would deliver and no bad record, or delivers nothing. */
static void test_mutations(void) {
    static const char *const files[] = {"tests/data/good/hh_rules.jsonl", "tests/data/good/pairs.csv",
                                        "tests/data/broken/sharegpt_bad_role.json", "tests/data/broken/prompts_nested_bad_leaf.json",
                                        "tests/data/broken/csv_multiline_then_bad.csv", "tests/data/broken/mtbench_wrong_type.jsonl",
                                        "tests/data/broken/hh_truncated.jsonl.gz"};
    static const char inserts[] = {'"', '\0', '\n', '{', '}', '[', ']', ',', '\\', (char)0xC3, (char)0xFF, ':'};
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    char path[1024], tmp[] = "/tmp/rlhf_test_ds_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        test_src(files[fi], path, sizeof path);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        if (!f) continue;
        char orig[8192];
        size_t n = fread(orig, 1, sizeof orig, f);
        fclose(f);
        for (int it = 0; it < 80; it++) {
            char m[8192];
            memcpy(m, orig, n);
            size_t len = n;
            int edits = 1 + (int)((rng >> 60) & 3);
            for (int e = 0; e < edits && len > 0; e++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = (size_t)(rng >> 33) % len;
                int op = (int)((rng >> 20) % 4);
                if (op == 0) m[at] = inserts[(rng >> 8) % sizeof inserts];
                else if (op == 1) len = at; /* cut */
                else if (op == 2) m[at] ^= (char)(1 << ((rng >> 12) % 8));
                else if (len < sizeof m - 1) { memmove(m + at + 1, m + at, len - at); m[at] = inserts[(rng >> 8) % sizeof inserts]; len++; }
            }
            f = fopen(tmp, "wb");
            if (!f) break;
            fwrite(m, 1, len, f);
            fclose(f);
            ds_format fmt = strstr(files[fi], ".csv") ? DS_FMT_CSV_PAIRS : DS_FMT_AUTO;
            if (strstr(files[fi], "multiline")) fmt = DS_FMT_CSV_PROMPTS;
            ds_read_opts o = {.format = fmt, .unsafe = -1, .skip_bad = true};
            collect c = {0};
            ds_read_stats st;
            rlhf_status s1 = ds_read(tmp, &o, sink, on_bad, &c, &st);
            CHECK(st.records == st.good + st.bad + st.rejected_same + st.rejected_context);
            CHECK(s1 != RLHF_OK || c.n_good == st.good);
            int good_skip = c.n_good;
            int64_t bad_skip = st.bad;
            memset(&c, 0, sizeof c);
            o.skip_bad = false;
            rlhf_status s2 = ds_read(tmp, &o, sink, on_bad, &c, &st);
            if (s2 == RLHF_OK) CHECKF(s1 == RLHF_OK && bad_skip == 0 && c.n_good == good_skip, "%s mutation %d", files[fi], it);
            else CHECKF(c.n_good == 0, "%s mutation %d: stop mode delivered %d then failed", files[fi], it, c.n_good);
        }
    }
    remove(tmp);
}

int main(void) {
    test_broken();
    test_no_prescan();
    test_hh_rules();
    test_csv_pairs();
    test_names_and_split();
    test_chat_text();
    test_mutations();
    TEST_MAIN_END();
}
