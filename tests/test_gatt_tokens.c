/* test_gatt_tokens.c: Ghost Attention data at the token level, on real shared files.
 * - the training version rendered with the Llama 2-Chat template and turned into an SFT example
 *   with its per-turn loss mask learns exactly the tokens of the last assistant turn (acceptance
 * 1);
 * - ../shared/data/personas/awesome_chatgpt_prompts.csv gives its 304 personas.
 * Needs ../shared/models/aidreams260K_tok512.bin and the personas CSV (skips, exit 77, without). */
#include <string.h>

#include "gatt.h"
#include "policy.h"
#include "test.h"

int main(void) {
    char buf[1024], buf2[1024];
    const char *tok_path = test_shared("models/aidreams260K_tok512.bin", buf, sizeof buf);
    const char *csv = test_shared("data/personas/awesome_chatgpt_prompts.csv", buf2, sizeof buf2);
    rlhf_tokenizer *tok = NULL;
    CHECK_OK(rlhf_tokenizer_load(&tok, tok_path, 0));
    if (!tok) TEST_MAIN_END();

    gatt_lists L = {0};
    int32_t added = 0;
    CHECK_OK(gatt_lists_add_personas_csv(&L, csv, &added));
    CHECKF(added == 304, "personas: %d", (int)added);

    ds_turn turns[] = {{DS_ROLE_USER, "hello there"},     {DS_ROLE_ASSISTANT, "hi, how are you"},
                       {DS_ROLE_USER, "tell me a story"}, {DS_ROLE_ASSISTANT, "once upon a time"},
                       {DS_ROLE_USER, "and then"},        {DS_ROLE_ASSISTANT, "they were happy"}};
    ds_dialogue src = {NULL, turns, 6};
    gatt_instr in = {0};
    in.n = 1;
    in.c[0] = (gatt_constraint){
        GATT_PERSONA, GATT_STYLE_NONE,
        strdup(L.kind[GATT_PERSONA].n ? L.kind[GATT_PERSONA].v[0].name : "Linux Terminal"), NULL};
    CHECK_OK(gatt_instr_render(&in, false));

    for (int place = 0; place < 2; place++) {
        gatt_dialogue g;
        CHECK_OK(gatt_dialogue_build(&src, 0, &in, GATT_TRAINING, (gatt_place)place, &g));
        ds_chat_tokens ct = {0};
        CHECK_OK(ds_chat_render(tok, &g.d, 0, &ct));
        sft_dataset d = {0};
        bool ok = false;
        CHECK_OK(sft_dataset_add_chat(&d, &ct, g.loss_mask, g.n, 0, &ok));
        CHECK(ok && d.n == 1);
        if (d.n == 1) {
            int64_t learned = 0, last = 0;
            bool exact = true;
            for (int32_t i = 0; i < ct.n; i++) {
                bool in_last = ct.turns[i] == 5 && ct.roles[i] == DS_ROLE_ASSISTANT;
                last += in_last;
                learned += d.ex[0].learn[i];
                if ((d.ex[0].learn[i] != 0) != in_last) exact = false;
            }
            CHECKF(exact && learned == last && last > 0, "place %d: learned %lld, last turn %lld",
                   place, (long long)learned, (long long)last);
            printf("  place %d: %d tokens, %lld learned (the last answer and its EOS)\n", place,
                   (int)ct.n, (long long)learned);
        }
        sft_dataset_free(&d);
        ds_chat_free(&ct);
        gatt_dialogue_free(&g);
    }
    gatt_instr_free(&in);
    gatt_lists_free(&L);
    rlhf_tokenizer_free(tok);
    TEST_MAIN_END();
}
