/* test_ds_data.c: the dataset readers on the real files in ../shared/data (record counts as
 * ../shared/DATA.md states them, HH pairs kept vs rejected, turn counts), and the Llama 2-Chat
 * template on Meta's Llama 2 tokenizer: ids equal to Meta's chat_completion rendering (reference
 * ids from tests/chat_ref.py, which runs the sentencepiece library), equal to the tokenizer's
 * encoding of each segment, and roles/turns that line up with the segments. Skips (77) naming the
 * file when ../shared is missing. */
#include <string.h>

#include "ds.h"
#include "test.h"

typedef struct tally {
    int64_t n, kind_bad, turns_hist[8], with_system, with_category, unsafe_set, empty_text;
} tally;

static rlhf_status count_sink(void *u, const ds_record *r) {
    tally *t = u;
    t->n++;
    int32_t nt = 0;
    if (r->kind == DS_DIALOGUE) {
        nt = r->dialogue.n_turns;
        t->with_system += r->dialogue.system != NULL;
    } else if (r->kind == DS_PROMPT) {
        nt = r->prompt.n_turns;
        t->with_category += r->prompt.category != NULL;
        t->unsafe_set += r->prompt.unsafe == 1;
        t->empty_text += !r->prompt.text || !*r->prompt.text;
    } else {
        nt = r->pair.context.n_turns;
        /* the context ends with the user turn being answered */
        if (nt < 1 || r->pair.context.turns[nt - 1].role != DS_ROLE_USER) t->kind_bad++;
        if (!strcmp(r->pair.chosen, r->pair.rejected)) t->kind_bad++;
    }
    t->turns_hist[nt < 7 ? nt : 7]++;
    return RLHF_OK;
}

typedef struct data_case {
    const char *rel;
    ds_format fmt; /* what auto-detection must find */
    ds_kind kind;
    int64_t records, good, same, context;
} data_case;

/* records: DATA.md; good/same/context for HH: the splitting rules of ds_json.c (consecutive turns
 * of one speaker merged), checked independently by a Python script over the same files. */
static const data_case DATA[] = {
    {"data/hh-rlhf/harmless-base_test.jsonl.gz", DS_FMT_HH, DS_PAIR, 2312, 2312, 0, 0},
    {"data/hh-rlhf/helpful-base_test.jsonl.gz", DS_FMT_HH, DS_PAIR, 2354, 2352, 2, 0},
    {"data/hh-rlhf/helpful-online_test.jsonl.gz", DS_FMT_HH, DS_PAIR, 1137, 1133, 2, 2},
    {"data/hh-rlhf/helpful-rejection-sampled_test.jsonl.gz", DS_FMT_HH, DS_PAIR, 2749, 2717, 32, 0},
    {"data/safety-prompts/advbench_harmful_behaviors.csv", DS_FMT_CSV_PROMPTS, DS_PROMPT, 520, 520, 0, 0},
    {"data/safety-prompts/redinstruct_harmfulqa.json", DS_FMT_PROMPT_LIST, DS_PROMPT, 1960, 1960, 0, 0},
    {"data/safety-prompts/redinstruct_catqa_english.json", DS_FMT_PROMPT_LIST, DS_PROMPT, 550, 550, 0, 0},
    {"data/safety-prompts/redinstruct_dangerousqa.json", DS_FMT_PROMPT_LIST, DS_PROMPT, 200, 200, 0, 0},
    {"data/safety-prompts/redinstruct_adversarialqa.json", DS_FMT_PROMPT_LIST, DS_PROMPT, 500, 500, 0, 0},
    {"data/dialogues/nemo_sft_512_llama3_format.jsonl", DS_FMT_NEMO, DS_DIALOGUE, 512, 512, 0, 0},
    {"data/dialogues/fastchat_dummy_conversation.json", DS_FMT_SHAREGPT, DS_DIALOGUE, 500, 500, 0, 0},
    {"data/dialogues/mt_bench_question.jsonl", DS_FMT_MTBENCH, DS_PROMPT, 80, 80, 0, 0},
    {"data/personas/awesome_chatgpt_prompts.csv", DS_FMT_CSV_PROMPTS, DS_PROMPT, 304, 304, 0, 0},
};

static void test_counts(void) {
    char path[1024];
    for (size_t i = 0; i < sizeof DATA / sizeof DATA[0]; i++) {
        const data_case *d = &DATA[i];
        test_shared(d->rel, path, sizeof path);
        ds_format f;
        CHECK_OK(ds_format_detect(path, &f));
        CHECKF(f == d->fmt, "%s: detected %s, want %s", d->rel, ds_format_name(f), ds_format_name(d->fmt));
        for (int skip = 0; skip < 2; skip++) {
            tally t = {0};
            ds_read_stats st;
            ds_read_opts o = {.unsafe = strstr(d->rel, "safety") ? 1 : -1, .skip_bad = skip != 0};
            CHECK_OK(ds_read(path, &o, count_sink, NULL, &t, &st));
            CHECKF(st.records == d->records && st.good == d->good && st.bad == 0 && st.rejected_same == d->same &&
                       st.rejected_context == d->context && t.n == d->good,
                   "%s: records %lld good %lld bad %lld same %lld context %lld delivered %lld", d->rel,
                   (long long)st.records, (long long)st.good, (long long)st.bad, (long long)st.rejected_same,
                   (long long)st.rejected_context, (long long)t.n);
            CHECKF(t.kind_bad == 0, "%s: %lld pairs with a bad context or equal responses", d->rel, (long long)t.kind_bad);
            CHECKF(t.empty_text == 0, "%s: %lld empty prompts", d->rel, (long long)t.empty_text);
            if (skip) continue;
            printf("%-56s records %5lld kept %5lld same %3lld context %3lld\n", d->rel, (long long)st.records,
                   (long long)st.good, (long long)st.rejected_same, (long long)st.rejected_context);
            if (strstr(d->rel, "nemo")) CHECKF(t.turns_hist[6] == 316, "nemo: %lld with 6 turns", (long long)t.turns_hist[6]);
            if (strstr(d->rel, "fastchat"))
                CHECK(t.turns_hist[2] + t.turns_hist[4] + t.turns_hist[6] == 500 && t.turns_hist[2] > 0 && t.turns_hist[6] > 0);
            if (strstr(d->rel, "mt_bench")) CHECK(t.turns_hist[2] == 80 && t.with_category == 80);
            if (strstr(d->rel, "personas")) CHECK(t.with_category == 304);
            if (strstr(d->rel, "harmfulqa") || strstr(d->rel, "catqa")) CHECK(t.with_category == d->records);
            if (strstr(d->rel, "safety")) CHECK(t.unsafe_set == d->records);
        }
    }
}

/* ---- the template on the real tokenizer ---------------------------------------------------------- */

static const int32_t META_FULL[] = {
    1, 518, 25580, 29962, 3532, 14816, 29903, 6778, 13, 3492, 526, 263, 1935, 344, 20255, 29889, 673, 297, 697, 1196,
    29889, 13, 29966, 829, 14816, 29903, 6778, 13, 13, 5618, 338, 278, 7483, 310, 3444, 29973, 518, 29914, 25580, 29962,
    3681, 29889, 29871, 2, 1, 518, 25580, 29962, 1126, 310, 9556, 29973, 518, 29914, 25580, 29962, 5115, 29892, 310, 3236,
    29889, 29871, 2, 1, 518, 25580, 29962, 8449, 274, 28059, 338, 1900, 297, 29871, 29906, 29900, 29906, 29946, 813, 278,
    29871, 29896, 303, 29973, 518, 29914, 25580, 29962, 306, 508, 29915, 29873, 1827, 29936, 1018, 315, 28059, 316, 2379,
    487, 313, 30181, 29946, 467, 29871, 2};
#define META_PROMPT_N 88 /* the prompt rendering is the full one up to the final "[/INST]" */

/* The text of tokens [b, e) with role r (and turn t when t >= 0), as the pieces spell it. */
static void role_text(const rlhf_tokenizer *tok, const ds_chat_tokens *c, int role, int32_t turn, char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    for (int32_t i = 0; i < c->n; i++) {
        if (c->roles[i] != role || (turn >= 0 && c->turns[i] != turn)) continue;
        size_t len;
        const char *p = rlhf_tokenizer_piece(tok, -1, c->ids[i], &len);
        if (n + len + 1 > cap) break;
        memcpy(out + n, p, len);
        n += len;
        out[n] = '\0';
    }
}

static void test_chat_tokens(void) {
    char path[1024];
    test_shared("models/llama2_tokenizer.bin", path, sizeof path);
    rlhf_tokenizer *tok = NULL;
    CHECK_OK(rlhf_tokenizer_load_bin(&tok, path, 32000));
    if (!tok) return;
    const char *sys = "You are a terse assistant. Answer in one line.";
    ds_turn t[6] = {{DS_ROLE_USER, "What is the capital of France?"},
                    {DS_ROLE_ASSISTANT, "Paris."},
                    {DS_ROLE_USER, "  And of Germany?  "},
                    {DS_ROLE_ASSISTANT, " Berlin, of course. "},
                    {DS_ROLE_USER, "Which caf\xc3\xa9 is best in 2024 \xe2\x80\x94 the 1st?"},
                    {DS_ROLE_ASSISTANT, "I can't say; try Caf\xc3\xa9 de Flore (\xe2\x82\xac" "4)."}};
    ds_dialogue d = {.system = sys, .turns = t, .n_turns = 6};
    ds_chat_tokens c;
    CHECK_OK(ds_chat_render(tok, &d, 0, &c));
    const int32_t nfull = (int32_t)(sizeof META_FULL / sizeof META_FULL[0]);
    CHECKF(c.n == nfull, "%d tokens, Meta's rendering has %d", c.n, nfull);
    int first_diff = -1;
    for (int32_t i = 0; i < c.n && i < nfull; i++)
        if (c.ids[i] != META_FULL[i]) { first_diff = i; break; }
    CHECKF(first_diff < 0, "first id mismatch at %d: %d vs %d", first_diff, first_diff >= 0 ? c.ids[first_diff] : 0,
           first_diff >= 0 ? META_FULL[first_diff] : 0);

    /* the same ids from the tokenizer's encoding of each segment, written out by hand here */
    const char *segs[3] = {
        "[INST] <<SYS>>\nYou are a terse assistant. Answer in one line.\n<</SYS>>\n\nWhat is the capital of France? [/INST] Paris. ",
        "[INST] And of Germany? [/INST] Berlin, of course. ",
        "[INST] Which caf\xc3\xa9 is best in 2024 \xe2\x80\x94 the 1st? [/INST] I can't say; try Caf\xc3\xa9 de Flore (\xe2\x82\xac" "4). "};
    int32_t want[256], nw = 0;
    for (int k = 0; k < 3; k++) {
        int32_t n = 0;
        CHECK_OK(rlhf_tokenizer_encode(tok, segs[k], true, true, want + nw, 256 - nw, &n));
        nw += n;
    }
    CHECK(nw == c.n && !memcmp(want, c.ids, sizeof(int32_t) * (size_t)(nw < c.n ? nw : c.n)));

    /* roles line up with the segments */
    char buf[512];
    role_text(tok, &c, DS_ROLE_SYSTEM, -1, buf, sizeof buf);
    CHECKF(!strcmp(buf, sys), "system tokens spell \"%s\"", buf);
    const char *answers[3] = {" Paris. ", " Berlin, of course. ", " I can't say; try Caf\xc3\xa9 de Flore (\xe2\x82\xac" "4). "};
    for (int k = 0; k < 3; k++) {
        role_text(tok, &c, DS_ROLE_ASSISTANT, 2 * k + 1, buf, sizeof buf);
        CHECKF(!strcmp(buf, answers[k]), "assistant turn %d spells \"%s\"", 2 * k + 1, buf);
    }
    role_text(tok, &c, DS_ROLE_USER, 2, buf, sizeof buf);
    CHECKF(!strcmp(buf, " [INST] And of Germany? [/INST]"), "user turn 2 spells \"%s\"", buf);
    int n_eos = 0, n_bos = 0;
    for (int32_t i = 0; i < c.n; i++) {
        if (c.ids[i] == 2) { n_eos++; CHECK(c.roles[i] == DS_ROLE_ASSISTANT && c.turns[i] % 2 == 1); }
        if (c.ids[i] == 1) { n_bos++; CHECK(c.roles[i] == DS_ROLE_USER && c.turns[i] % 2 == 0); }
        if (i) CHECK(c.turns[i] >= c.turns[i - 1]);
        CHECK(c.roles[i] != DS_ROLE_SYSTEM || c.turns[i] == 0);
    }
    CHECK(n_eos == 3 && n_bos == 3);
    ds_chat_free(&c);

    /* a final user turn: Meta's prompt rendering, no EOS */
    d.n_turns = 5;
    CHECK_OK(ds_chat_render(tok, &d, 0, &c));
    CHECK(c.n == META_PROMPT_N && !memcmp(c.ids, META_FULL, sizeof(int32_t) * META_PROMPT_N));
    CHECK(c.n > 0 && c.roles[c.n - 1] == DS_ROLE_USER);
    ds_chat_free(&c);
    /* a token limit */
    CHECK(ds_chat_render(tok, &d, 50, &c) == RLHF_ERR_ARG && c.ids == NULL);
    ds_chat_free(NULL);
    rlhf_tokenizer_free(tok);
}

int main(void) {
    test_counts();
    test_chat_tokens();
    TEST_MAIN_END();
}
