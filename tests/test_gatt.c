/* test_gatt.c: Ghost Attention synthesis and checker (gatt/), without shared files.
 * - the shipped lists load; bad list files are errors naming file:line;
 * - instructions: seeded and reproducible, 1..3 constraints of distinct kinds, never a figure and
 *   a persona together, the concise form about half of the time over many draws;
 * - dialogue versions: the instruction on every user turn (sampling) or at the start only
 *   (training, system prompt or first turn), the loss mask exactly on the last assistant turn;
 * - the checker on a hand-written set of compliant and non-compliant answers (acceptance 2). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "gatt.h"
#include "test.h"

static int count_sub(const char *s, const char *sub) {
    int n = 0;
    size_t k = strlen(sub);
    for (const char *p = strstr(s, sub); p; p = strstr(p + k, sub))
        n++;
    return n;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void test_lists(gatt_lists *L) {
    char buf[1024];
    CHECK_OK(gatt_lists_load_dir(L, test_src("gatt/data", buf, sizeof buf)));
    CHECK(L->kind[GATT_HOBBY].n >= 40);
    CHECK(L->kind[GATT_LANGUAGE].n >= 5);
    CHECK(L->kind[GATT_FIGURE].n >= 30);
    CHECK(L->kind[GATT_STYLE].n >= 8);
    /* every style rule is represented */
    bool seen[GATT_N_STYLES] = {0};
    for (int32_t i = 0; i < L->kind[GATT_STYLE].n; i++)
        seen[L->kind[GATT_STYLE].v[i].style] = true;
    for (int s = 1; s < GATT_N_STYLES; s++)
        CHECKF(seen[s], "style %s", gatt_style_name(s));
    /* keywords after a TAB */
    bool napoleon = false;
    for (int32_t i = 0; i < L->kind[GATT_FIGURE].n; i++)
        if (strcmp(L->kind[GATT_FIGURE].v[i].name, "Napoleon") == 0)
            napoleon = L->kind[GATT_FIGURE].v[i].keywords &&
                       strcmp(L->kind[GATT_FIGURE].v[i].keywords, "Napoleon|Bonaparte") == 0;
    CHECK(napoleon);

    /* user lists and bad ones */
    const char *tmp = "test_gatt_list.txt";
    gatt_lists U = {0};
    write_file(tmp, "# my hobbies\n\nunderwater basket weaving\tbaskets|weaving\r\n  kayaking  \n");
    CHECK_OK(gatt_lists_add_file(&U, GATT_HOBBY, tmp));
    CHECK(U.kind[GATT_HOBBY].n == 2);
    CHECK(U.kind[GATT_HOBBY].n == 2 && strcmp(U.kind[GATT_HOBBY].v[1].name, "kayaking") == 0);
    CHECK(U.kind[GATT_HOBBY].n == 2 && U.kind[GATT_HOBBY].v[1].keywords == NULL);
    struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"uppercase\nshout_loudly\n", ":2: unknown style rule 'shout_loudly'"},
        {"one_sentence\n\nend_word\n", ":3: style rule end_word needs an argument"},
        {"max_words\tmany\n", ":1: max_words needs a positive integer"},
        {"max_words\t0\n", ":1: max_words needs a positive integer"},
        {"uppercase\tloud\n", ":1: style rule uppercase takes no argument"},
        {"end_word\ttwo words\n", ":1: end_word takes one word"},
        {"# only a comment\n\n", "no style in the list"},
        {"lowercase\n\xff\xfe\n", ":2: invalid UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(tmp, bad[i].text);
        rlhf_status st = gatt_lists_add_file(&U, GATT_STYLE, tmp);
        CHECKF(st == RLHF_ERR_FORMAT, "case %zu: %s", i, rlhf_status_name(st));
        CHECKF(strstr(rlhf_last_error(), tmp) && strstr(rlhf_last_error(), bad[i].want),
               "case %zu: %s", i, rlhf_last_error());
        CHECKF(U.kind[GATT_STYLE].n == 0, "case %zu: list changed on error", i);
    }
    CHECK(gatt_lists_add_file(&U, GATT_HOBBY, "no/such/list.txt") == RLHF_ERR_IO);
    CHECK(strstr(rlhf_last_error(), "no/such/list.txt") != NULL);
    /* a personas CSV (the `act` column), as in ../shared/data/personas */
    write_file(tmp, "act,prompt\nLinux Terminal,\"I want you to act as a linux terminal.\"\n"
                    "English Translator,\"I want you to act as a translator, please.\"\n");
    int32_t added = 0;
    CHECK_OK(gatt_lists_add_personas_csv(&U, tmp, &added));
    CHECK(added == 2 && U.kind[GATT_PERSONA].n == 2);
    CHECK(U.kind[GATT_PERSONA].n == 2 &&
          strcmp(U.kind[GATT_PERSONA].v[1].name, "English Translator") == 0);
    write_file(tmp, "prompt\nno act column here\n");
    CHECK(gatt_lists_add_personas_csv(&U, tmp, NULL) == RLHF_ERR_FORMAT);
    CHECK(U.kind[GATT_PERSONA].n == 2);
    gatt_lists_free(&U);
    gatt_lists_free(NULL);
    remove(tmp);
}

static const char *const FULL_MARKS[] = {"You enjoy ", "Always answer in ", "Act as ",
                                         "Answer in ", "End every",         "Start every",
                                         "Never use"};
static const char *const CONCISE_MARKS[] = {"Hobby: ", "Language: ",  "Figure: ",     "Role: ",
                                            "Style: ", "Last word: ", "First word: ", "Length: "};

static void test_draw(gatt_lists *L) {
    /* personas so that the identity slot can draw both kinds */
    CHECK_OK(gatt_lists_add(L, GATT_PERSONA, "Linux Terminal", NULL, GATT_STYLE_NONE));
    CHECK_OK(gatt_lists_add(L, GATT_PERSONA, "Ethereum Developer", NULL, GATT_STYLE_NONE));
    const int N = 4000;
    int concise = 0, by_n[GATT_MAX_CONSTRAINTS + 1] = {0}, kinds[GATT_N_KINDS] = {0};
    rlhf_rng rng, rng2;
    rlhf_rng_seed(&rng, 42, 7);
    rlhf_rng_seed(&rng2, 42, 7);
    bool all_ok = true, same = true;
    for (int i = 0; i < N; i++) {
        gatt_instr in, in2;
        rlhf_status st = gatt_instr_draw(L, NULL, &rng, &in);
        CHECK_OK(st);
        if (st != RLHF_OK) break;
        CHECK_OK(gatt_instr_draw(L, NULL, &rng2, &in2));
        same &= in2.text && strcmp(in.text, in2.text) == 0;
        gatt_instr_free(&in2);
        concise += in.concise;
        if (in.n >= 1 && in.n <= 3)
            by_n[in.n]++;
        else
            all_ok = false;
        bool seen[GATT_N_KINDS] = {0};
        for (int32_t j = 0; j < in.n; j++) {
            if (seen[in.c[j].kind]) all_ok = false; /* distinct kinds */
            seen[in.c[j].kind] = true;
            kinds[in.c[j].kind]++;
            if (!strstr(in.text,
                        in.c[j].kind == GATT_STYLE && !*in.c[j].value ? "" : in.c[j].value))
                all_ok = false; /* the value is in the text */
        }
        if (seen[GATT_FIGURE] && seen[GATT_PERSONA]) all_ok = false;
        int full = 0, conc = 0;
        for (size_t m = 0; m < sizeof FULL_MARKS / sizeof *FULL_MARKS; m++)
            full += count_sub(in.text, FULL_MARKS[m]);
        for (size_t m = 0; m < sizeof CONCISE_MARKS / sizeof *CONCISE_MARKS; m++)
            conc += count_sub(in.text, CONCISE_MARKS[m]);
        if (in.concise ? (conc != in.n || full != 0) : (full != in.n || conc != 0)) {
            all_ok = false;
            fprintf(stderr, "bad text (%s, %d constraints): %s\n", in.concise ? "concise" : "full",
                    in.n, in.text);
        }
        if (i < 6) printf("  instruction: %s\n", in.text);
        gatt_instr_free(&in);
    }
    CHECK(all_ok);
    CHECK(same);
    double share = (double)concise / N;
    printf("  concise share %.3f over %d draws; 1/2/3 constraints %d/%d/%d\n", share, N, by_n[1],
           by_n[2], by_n[3]);
    CHECKF(share > 0.46 && share < 0.54, "concise share %.3f", share); /* 4000 draws: sd 0.008 */
    for (int n = 1; n <= 3; n++)
        CHECKF(by_n[n] > N / 5, "%d constraints: %d", n, by_n[n]);
    for (int k = 0; k < GATT_N_KINDS; k++)
        CHECKF(kinds[k] > N / 20, "kind %s: %d", gatt_kind_name(k), kinds[k]);
    /* another seed gives other instructions */
    rlhf_rng_seed(&rng, 43, 7);
    rlhf_rng_seed(&rng2, 42, 7);
    int differ = 0;
    for (int i = 0; i < 20; i++) {
        gatt_instr a, b;
        CHECK_OK(gatt_instr_draw(L, NULL, &rng, &a));
        CHECK_OK(gatt_instr_draw(L, NULL, &rng2, &b));
        differ += a.text && b.text && strcmp(a.text, b.text) != 0;
        gatt_instr_free(&a);
        gatt_instr_free(&b);
    }
    CHECK(differ >= 15);
    /* p_concise 0 / 1, fixed number of constraints */
    gatt_synth_opts o = gatt_synth_defaults();
    o.p_concise = 0.0f;
    o.min_constraints = o.max_constraints = 2;
    int c0 = 0, n2 = 0;
    for (int i = 0; i < 200; i++) {
        gatt_instr in;
        CHECK_OK(gatt_instr_draw(L, &o, &rng, &in));
        c0 += in.concise;
        n2 += in.n == 2;
        gatt_instr_free(&in);
    }
    CHECK(c0 == 0 && n2 == 200);
    o.p_concise = 1.0f;
    gatt_instr in;
    CHECK_OK(gatt_instr_draw(L, &o, &rng, &in));
    CHECK(in.concise);
    char *js = NULL;
    CHECK_OK(gatt_instr_to_json(&in, &js));
    json_error_t err;
    json_t *root = js ? json_loads(js, 0, &err) : NULL;
    CHECK(root && strcmp(json_string_value(json_object_get(root, "text")), in.text) == 0);
    CHECK(root && json_array_size(json_object_get(root, "constraints")) == 2);
    json_decref(root);
    free(js);
    gatt_instr_free(&in);
    gatt_instr_free(NULL);
    o.max_constraints = 9;
    CHECK(gatt_instr_draw(L, &o, &rng, &in) == RLHF_ERR_ARG);
    gatt_lists E = {0};
    CHECK(gatt_instr_draw(&E, NULL, &rng, &in) == RLHF_ERR_ARG);
}

static void test_versions(void) {
    ds_turn turns[] = {{DS_ROLE_USER, "Hello there."},     {DS_ROLE_ASSISTANT, "Hi."},
                       {DS_ROLE_USER, "How are you?"},     {DS_ROLE_ASSISTANT, "Fine."},
                       {DS_ROLE_USER, "Tell me a story."}, {DS_ROLE_ASSISTANT, "Once upon a time."},
                       {DS_ROLE_USER, "Thanks."}};
    ds_dialogue src = {NULL, turns, 6};
    gatt_instr in = {0};
    in.n = 1;
    in.c[0].kind = GATT_FIGURE;
    in.c[0].value = strdup("Napoleon");
    CHECK_OK(gatt_instr_render(&in, false));
    CHECK(in.text && strcmp(in.text, "Act as Napoleon.") == 0);

    gatt_dialogue g;
    /* sampling version: the instruction on every user turn, in the rendered text as well */
    CHECK_OK(gatt_dialogue_build(&src, 0, &in, GATT_SAMPLING, GATT_PLACE_SYSTEM, &g));
    CHECK(g.n == 6 && g.system == NULL);
    for (int32_t i = 0; i < g.n; i++) {
        bool has = strstr(g.turns[i].text, in.text) != NULL;
        CHECKF(has == (i % 2 == 0), "sampling turn %d: %s", (int)i, g.turns[i].text);
        CHECK(strstr(g.turns[i].text, turns[i].text) != NULL);
    }
    char *text = NULL;
    CHECK_OK(ds_chat_render_text(&g.d, &text));
    CHECK(text && count_sub(text, in.text) == 3);
    free(text);
    gatt_dialogue_free(&g);
    /* sampling prefix ending with the user turn to answer */
    CHECK_OK(gatt_dialogue_build(&src, 3, &in, GATT_SAMPLING, GATT_PLACE_SYSTEM, &g));
    CHECK(g.n == 3 && g.turns[2].role == DS_ROLE_USER && strstr(g.turns[2].text, in.text));
    gatt_dialogue_free(&g);

    /* training version, system prompt: instruction only there, mask on the last answer only */
    for (int place = 0; place < 2; place++) {
        for (int nt = 2; nt <= 7; nt++) {
            ds_dialogue s2 = {place ? "Be kind." : NULL, turns, nt};
            CHECK_OK(gatt_dialogue_build(&s2, 0, &in, GATT_TRAINING, (gatt_place)place, &g));
            int32_t want_n = nt % 2 == 0 ? nt : nt - 1;
            CHECKF(g.n == want_n, "n %d want %d", (int)g.n, (int)want_n);
            int learned = 0;
            for (int32_t i = 0; i < g.n; i++) {
                bool has = strstr(g.turns[i].text, in.text) != NULL;
                CHECKF(has == (place == GATT_PLACE_FIRST_TURN && i == 0), "place %d turn %d", place,
                       (int)i);
                CHECKF(g.loss_mask[i] == (i == g.n - 1), "mask[%d] = %d", (int)i, g.loss_mask[i]);
                learned += g.loss_mask[i];
            }
            CHECK(learned == 1 && g.turns[g.n - 1].role == DS_ROLE_ASSISTANT);
            if (place == GATT_PLACE_SYSTEM)
                CHECK(g.system && strcmp(g.system, in.text) == 0);
            else
                CHECK(g.system && strcmp(g.system, "Be kind.") == 0);
            CHECK_OK(ds_chat_render_text(&g.d, &text));
            CHECK(text && count_sub(text, in.text) == 1);
            free(text);
            char *js = NULL;
            CHECK_OK(gatt_dialogue_turns_json(&g, &js));
            json_error_t err;
            json_t *root = js ? json_loads(js, 0, &err) : NULL;
            CHECK(root && (int32_t)json_array_size(root) == g.n);
            CHECK(root &&
                  strcmp(json_string_value(json_object_get(json_array_get(root, 1), "role")),
                         "assistant") == 0);
            json_decref(root);
            free(js);
            gatt_dialogue_free(&g);
        }
    }
    /* a system prompt in the source is kept before the instruction */
    ds_dialogue s3 = {"Be kind.", turns, 4};
    CHECK_OK(gatt_dialogue_build(&s3, 0, &in, GATT_TRAINING, GATT_PLACE_SYSTEM, &g));
    CHECK(g.system && strcmp(g.system, "Be kind.\n\nAct as Napoleon.") == 0);
    gatt_dialogue_free(&g);
    /* errors */
    ds_dialogue one = {NULL, turns, 1};
    CHECK(gatt_dialogue_build(&one, 0, &in, GATT_TRAINING, GATT_PLACE_SYSTEM, &g) == RLHF_ERR_ARG);
    CHECK_OK(gatt_dialogue_build(&one, 0, &in, GATT_SAMPLING, GATT_PLACE_SYSTEM, &g));
    gatt_dialogue_free(&g);
    ds_dialogue bad = {NULL, turns + 1, 3};
    CHECK(gatt_dialogue_build(&bad, 0, &in, GATT_SAMPLING, GATT_PLACE_SYSTEM, &g) == RLHF_ERR_ARG);
    gatt_dialogue_free(&g);
    gatt_dialogue_free(NULL);
    gatt_instr_free(&in);
}

/* ---- the checker on hand-written answers ---- */

typedef struct check_case {
    gatt_kind kind;
    gatt_style style;
    const char *value, *keywords, *answer;
    bool ok;
} check_case;

static const check_case CASES[] = {
    /* one sentence */
    {GATT_STYLE, GATT_STYLE_ONE_SENTENCE, "", NULL, "Paris is the capital of France.", true},
    {GATT_STYLE, GATT_STYLE_ONE_SENTENCE, "", NULL, "It is sunny today", true},
    {GATT_STYLE, GATT_STYLE_ONE_SENTENCE, "", NULL, "Is it 3.5 metres long?  ", true},
    {GATT_STYLE, GATT_STYLE_ONE_SENTENCE, "", NULL, "Yes. It is.", false},
    {GATT_STYLE, GATT_STYLE_ONE_SENTENCE, "", NULL, "Wow! That is great.", false},
    {GATT_STYLE, GATT_STYLE_ONE_SENTENCE, "", NULL, "First line.\nSecond line.", false},
    /* uppercase / lowercase */
    {GATT_STYLE, GATT_STYLE_UPPERCASE, "", NULL, "I LOVE THE SEA, 100%!", true},
    {GATT_STYLE, GATT_STYLE_UPPERCASE, "", NULL, "I LOVE THE SEa", false},
    {GATT_STYLE, GATT_STYLE_UPPERCASE, "", NULL, "123 456", false},
    {GATT_STYLE, GATT_STYLE_LOWERCASE, "", NULL, "i think so, yes.", true},
    {GATT_STYLE, GATT_STYLE_LOWERCASE, "", NULL, "I think so.", false},
    /* end / start word */
    {GATT_STYLE, GATT_STYLE_END_WORD, "banana", NULL, "The sky is blue, banana.", true},
    {GATT_STYLE, GATT_STYLE_END_WORD, "banana", NULL, "The sky is blue. BANANA!\n", true},
    {GATT_STYLE, GATT_STYLE_END_WORD, "banana", NULL, "Banana is a fruit.", false},
    {GATT_STYLE, GATT_STYLE_END_WORD, "banana", NULL, "I like bananas.", false},
    {GATT_STYLE, GATT_STYLE_START_WORD, "Well", NULL, "Well, that depends.", true},
    {GATT_STYLE, GATT_STYLE_START_WORD, "Well", NULL, "\"well\" is a word.", true},
    {GATT_STYLE, GATT_STYLE_START_WORD, "Well", NULL, "Wellington is a city.", false},
    {GATT_STYLE, GATT_STYLE_START_WORD, "Well", NULL, "Oh well.", false},
    /* word limit */
    {GATT_STYLE, GATT_STYLE_MAX_WORDS, "5", NULL, "One two three four five.", true},
    {GATT_STYLE, GATT_STYLE_MAX_WORDS, "5", NULL, "One two three four five six.", false},
    {GATT_STYLE, GATT_STYLE_MAX_WORDS, "5", NULL, "  ...  ", false},
    /* no comma, question */
    {GATT_STYLE, GATT_STYLE_NO_COMMA, "", NULL, "Yes I can do that.", true},
    {GATT_STYLE, GATT_STYLE_NO_COMMA, "", NULL, "Yes, I can.", false},
    {GATT_STYLE, GATT_STYLE_END_QUESTION, "", NULL, "Nice. And you?  ", true},
    {GATT_STYLE, GATT_STYLE_END_QUESTION, "", NULL, "Why? Because.", false},
    /* languages (keywords of the shipped French/German lists; others compared) */
    {GATT_LANGUAGE, GATT_STYLE_NONE, "French", NULL,
     "Je pense que c'est une très bonne idée pour nous.", true},
    {GATT_LANGUAGE, GATT_STYLE_NONE, "French", NULL, "I think that this is a very good idea.",
     false},
    {GATT_LANGUAGE, GATT_STYLE_NONE, "French", NULL, "Ich bin sehr müde und ich will schlafen.",
     false},
    {GATT_LANGUAGE, GATT_STYLE_NONE, "German", NULL, "Ich bin sehr müde und ich will schlafen.",
     true},
    {GATT_LANGUAGE, GATT_STYLE_NONE, "Spanish", NULL, "Hola, yo estoy muy bien, gracias.", true},
    {GATT_LANGUAGE, GATT_STYLE_NONE, "Spanish", NULL, "Bonjour, je suis très content.", false},
    {GATT_LANGUAGE, GATT_STYLE_NONE, "English", NULL, "I am fine and you are kind.", true},
    {GATT_LANGUAGE, GATT_STYLE_NONE, "English", NULL, "Je suis content et vous?", false},
    /* hobbies, figures, personas (probe answers) */
    {GATT_HOBBY, GATT_STYLE_NONE, "tennis", NULL, "My favourite hobby is Tennis!", true},
    {GATT_HOBBY, GATT_STYLE_NONE, "tennis", NULL, "I like table games.", false},
    {GATT_HOBBY, GATT_STYLE_NONE, "playing the piano", "piano", "I play the piano every day.",
     true},
    {GATT_HOBBY, GATT_STYLE_NONE, "playing the piano", "piano", "I love pianos.", false},
    {GATT_FIGURE, GATT_STYLE_NONE, "Napoleon", "Napoleon|Bonaparte", "I am Bonaparte, emperor.",
     true},
    {GATT_FIGURE, GATT_STYLE_NONE, "Napoleon", "Napoleon|Bonaparte", "I am a helpful assistant.",
     false},
    {GATT_FIGURE, GATT_STYLE_NONE, "Oscar Wilde", NULL, "They call me oscar wilde.", true},
    {GATT_FIGURE, GATT_STYLE_NONE, "Oscar Wilde", NULL, "I am Oscar.", false},
    {GATT_PERSONA, GATT_STYLE_NONE, "Linux Terminal", NULL, "I am a linux terminal.", true},
    {GATT_PERSONA, GATT_STYLE_NONE, "Linux Terminal", NULL, "I run Linux.", false},
    /* an empty answer respects nothing */
    {GATT_HOBBY, GATT_STYLE_NONE, "tennis", NULL, "", false},
    {GATT_STYLE, GATT_STYLE_LOWERCASE, "", NULL, "   ", false},
};

static void test_checker(const gatt_lists *L) {
    const gatt_list *langs = &L->kind[GATT_LANGUAGE];
    int right = 0, n = (int)(sizeof CASES / sizeof *CASES);
    for (int i = 0; i < n; i++) {
        const check_case *k = &CASES[i];
        gatt_constraint c = {k->kind, k->style, (char *)k->value, (char *)k->keywords};
        if (k->kind == GATT_LANGUAGE) /* keywords from the shipped list */
            for (int32_t j = 0; j < langs->n; j++)
                if (strcmp(langs->v[j].name, k->value) == 0) c.keywords = langs->v[j].keywords;
        bool got = gatt_constraint_check(&c, langs, k->answer);
        CHECKF(got == k->ok, "case %d (%s %s): \"%s\" -> %d, want %d", i, gatt_kind_name(k->kind),
               k->kind == GATT_STYLE ? gatt_style_name(k->style) : k->value, k->answer, got, k->ok);
        right += got == k->ok;
    }
    printf("  checker: %d/%d hand-written answers right\n", right, n);
    CHECK(gatt_constraint_check(NULL, langs, "x") == false);
    CHECK(gatt_constraint_check(&(gatt_constraint){GATT_HOBBY, 0, "chess", NULL}, NULL, NULL) ==
          false);

    /* a whole instruction: always-constraints on every answer, attributes only when probed */
    gatt_instr in = {0};
    in.n = 2;
    in.c[0] = (gatt_constraint){GATT_HOBBY, GATT_STYLE_NONE, strdup("chess"), NULL};
    in.c[1] = (gatt_constraint){GATT_STYLE, GATT_STYLE_UPPERCASE, strdup(""), NULL};
    CHECK_OK(gatt_instr_render(&in, true));
    CHECK(in.text && strcmp(in.text, "Hobby: chess. Style: uppercase.") == 0);
    CHECK_OK(gatt_instr_render(&in, false));
    CHECK(in.text && strcmp(in.text, "You enjoy chess. Always answer in uppercase letters.") == 0);
    CHECK(gatt_answer_check(&in, langs, "THE WEATHER IS NICE.", false));
    CHECK(!gatt_answer_check(&in, langs, "THE WEATHER IS NICE.", true));
    CHECK(gatt_answer_check(&in, langs, "I PLAY CHESS.", true));
    CHECK(!gatt_answer_check(&in, langs, "I play chess.", true));
    CHECK(!gatt_answer_check(&in, langs, "I play chess.", false));
    CHECK(!gatt_answer_check(&in, langs, "", false));
    gatt_instr_free(&in);
}

static void test_eval_turns(void) {
    char buf[1024];
    gatt_list fillers = {0}, questions = {0};
    CHECK_OK(gatt_list_read(&fillers, test_src("gatt/data/fillers.txt", buf, sizeof buf)));
    CHECK_OK(gatt_list_read(&questions, test_src("gatt/data/questions.txt", buf, sizeof buf)));
    CHECK(fillers.n >= 20 && questions.n >= 20);
    gatt_instr in = {0};
    in.n = 3;
    in.c[0] = (gatt_constraint){GATT_FIGURE, GATT_STYLE_NONE, strdup("Zeus"), NULL};
    in.c[1] = (gatt_constraint){GATT_HOBBY, GATT_STYLE_NONE, strdup("chess"), NULL};
    in.c[2] = (gatt_constraint){GATT_STYLE, GATT_STYLE_UPPERCASE, strdup(""), NULL};
    rlhf_rng rng;
    rlhf_rng_seed(&rng, 5, 1);
    static const int want[] = {-1, 0, -1, 1, -1, 2, -1, 0, -1, 1}; /* turns 1..10 */
    for (int32_t t = 1; t <= 10; t++) {
        char *text = NULL;
        int32_t probed = 7;
        CHECK_OK(gatt_eval_turn(&in, t, &fillers, &questions, &rng, &text, &probed));
        CHECKF(probed == want[t - 1], "turn %d probes %d", (int)t, (int)probed);
        if (!text) continue;
        if (probed == 0) CHECK(strcmp(text, "Who are you?") == 0);
        if (probed == 1) CHECK(strcmp(text, "What is your favourite hobby?") == 0);
        if (probed == 2) CHECK(strncmp(text, "Answer this: ", 13) == 0 && strlen(text) > 14);
        if (probed < 0) CHECK(strncmp(text, "Answer this", 11) != 0 && strchr(text, '?') != text);
        free(text);
    }
    char *text = NULL;
    int32_t probed;
    CHECK(gatt_eval_turn(&in, 0, &fillers, &questions, &rng, &text, &probed) == RLHF_ERR_ARG);
    CHECK(gatt_eval_turn(&in, 1, NULL, &questions, &rng, &text, &probed) == RLHF_ERR_ARG);
    CHECK(text == NULL);
    gatt_instr_free(&in);
    gatt_list_free(&fillers);
    gatt_list_free(&questions);
    gatt_list_free(NULL);
}

int main(void) {
    test_eval_turns();
    gatt_lists L = {0};
    test_lists(&L);
    test_versions();
    test_checker(&L);
    test_draw(&L);
    gatt_lists_free(&L);
    TEST_MAIN_END();
}
