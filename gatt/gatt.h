/* gatt.h: Ghost Attention data (Llama 2-Chat section 3.3), module prefix `gatt_`.
 *
 * GAtt teaches a chat model to keep obeying an instruction given at the start of a conversation.
 * The recipe is all data:
 *   1. draw an instruction ("Act as Napoleon. You enjoy tennis. Always answer in French."): a few
 *      constraints combined at random from lists (hobbies, languages, public figures, "act as"
 *      personas, verifiable style rules); half of the time in the concise form
 *      ("Figure: Napoleon. Hobby: tennis.");
 *   2. the SAMPLING version of a dialogue has the instruction on every user turn; the current
 *      policy answers each user turn of it;
 *   3. the TRAINING version keeps the instruction only at the start (as the system prompt, or
 *      prepended to the first user turn), keeps every earlier turn with loss mask 0, and learns
 *      only the last assistant turn.
 * An automatic checker (gatt_constraint_check, gatt_answer_check) decides whether an answer
 * respects an instruction; the evaluation and the best-of-K choice in `rlhf gatt generate` use it.
 *
 * Lists are plain UTF-8 text files, one item a line: `name` or `name<TAB>keywords`, where keywords
 * are '|'-separated phrases the checker looks for (default: the name itself); '#' starts a comment
 * line; blank lines are skipped. The style list holds `rule` or `rule<TAB>argument` lines with the
 * rule names of gatt_style_parse. gatt/data/ ships one file per kind (see gatt/README.md).
 *
 * Dependencies: the core (rlhf.h) and datasets (ds.h). Conventions as in rlhf.h: rlhf_status
 * results, rlhf_last_error() naming file and line, caller-owned results, x_free(NULL) safe. */
#ifndef GATT_H
#define GATT_H

#include <stdbool.h>
#include <stdint.h>

#include "ds.h"
#include "rlhf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- lists ----------------------------------------------------------------------------------- */

typedef enum gatt_kind {
    GATT_HOBBY = 0, /* "You enjoy tennis."           concise "Hobby: tennis." */
    GATT_LANGUAGE,  /* "Always answer in French."    concise "Language: French." */
    GATT_FIGURE,    /* "Act as Napoleon."            concise "Figure: Napoleon." */
    GATT_PERSONA,   /* "Act as a Linux Terminal."    concise "Role: Linux Terminal." */
    GATT_STYLE,     /* a verifiable style rule, see gatt_style */
    GATT_N_KINDS
} gatt_kind;
const char *gatt_kind_name(gatt_kind k); /* "hobby", "language", "figure", "persona", "style" */
bool gatt_kind_parse(const char *name, gatt_kind *out);

typedef enum gatt_style {
    GATT_STYLE_NONE = 0,
    GATT_STYLE_ONE_SENTENCE, /* one_sentence: at most one sentence end ([.!?] then space/end) */
    GATT_STYLE_UPPERCASE,    /* uppercase: letters present, no lowercase ASCII letter */
    GATT_STYLE_LOWERCASE,    /* lowercase: letters present, no uppercase ASCII letter */
    GATT_STYLE_END_WORD,     /* end_word WORD: the last word is WORD (case-insensitive) */
    GATT_STYLE_START_WORD,   /* start_word WORD: the first word is WORD (case-insensitive) */
    GATT_STYLE_MAX_WORDS,    /* max_words N: 1..N words */
    GATT_STYLE_NO_COMMA,     /* no_comma: non-empty, no ',' */
    GATT_STYLE_END_QUESTION, /* end_question: the last non-space character is '?' */
    GATT_N_STYLES
} gatt_style;
const char *gatt_style_name(gatt_style s); /* the rule names above; "none" */
bool gatt_style_parse(const char *name, gatt_style *out);
/* True when the rule takes an argument (end_word, start_word, max_words). */
bool gatt_style_has_arg(gatt_style s);

typedef struct gatt_item {
    char *name;       /* "tennis", "French", "Napoleon Bonaparte", "Linux Terminal", "end_word" */
    char *keywords;   /* '|'-separated phrases the checker matches (NULL: the name) */
    gatt_style style; /* GATT_STYLE lists: the rule (name is its argument, or "" when none) */
} gatt_item;

typedef struct gatt_list {
    gatt_item *v;
    int32_t n, cap;
} gatt_list;

/* One list per kind (GATT_STYLE's items carry their rule in .style). */
typedef struct gatt_lists {
    gatt_list kind[GATT_N_KINDS];
} gatt_lists;

/* Appends the items of the list file at path to kind's list. Errors name the file and line:
 * missing file (RLHF_ERR_IO), invalid UTF-8, an unknown style rule, a rule missing its argument
 * or a max_words argument that is not a positive integer (RLHF_ERR_FORMAT). A file with no item is
 * RLHF_ERR_FORMAT. On error the list is unchanged. */
rlhf_status gatt_lists_add_file(gatt_lists *L, gatt_kind kind, const char *path);
/* Reads dir/hobbies.txt, dir/languages.txt, dir/figures.txt, dir/styles.txt (each must exist) and,
 * when present, dir/personas.txt. */
rlhf_status gatt_lists_load_dir(gatt_lists *L, const char *dir);
/* Appends the `act` column of a CSV such as ../shared/data/personas/awesome_chatgpt_prompts.csv
 * (read with ds_read, CSV prompts; the act is the record's category) as personas. *added (may be
 * NULL) gets the number of personas added. */
rlhf_status gatt_lists_add_personas_csv(gatt_lists *L, const char *path, int32_t *added);
/* Appends one item (copied) to kind's list; keywords may be NULL; style only for GATT_STYLE. */
rlhf_status gatt_lists_add(gatt_lists *L, gatt_kind kind, const char *name, const char *keywords,
                           gatt_style style);
void gatt_lists_free(gatt_lists *L); /* frees every item, zeroes *L; NULL-safe */
/* The directory of the lists shipped in the source tree (compiled in; gatt/data). */
const char *gatt_data_dir(void);

/* ---- instructions ---------------------------------------------------------------------------- */

#define GATT_MAX_CONSTRAINTS 4

typedef struct gatt_constraint {
    gatt_kind kind;
    gatt_style style; /* GATT_STYLE only */
    char *value;      /* hobby, language, figure or persona name; the style's argument ("" none) */
    char *keywords;   /* what the checker looks for ('|'-separated), NULL: value */
} gatt_constraint;

/* An instruction: 1..GATT_MAX_CONSTRAINTS constraints of distinct kinds (never both a figure and
 * a persona) and its text. Owns its strings; free with gatt_instr_free. */
typedef struct gatt_instr {
    gatt_constraint c[GATT_MAX_CONSTRAINTS];
    int32_t n;
    bool concise;
    char *text; /* full: "Act as Napoleon. You enjoy tennis."; concise: "Figure: Napoleon. ..." */
} gatt_instr;

typedef struct gatt_synth_opts {
    int32_t min_constraints, max_constraints; /* 1 and 3 */
    float p_concise;                          /* 0.5 */
    float p_persona; /* share of identity constraints drawn from personas when both lists have
                        items (the rest are public figures): 0.5 */
} gatt_synth_opts;
gatt_synth_opts gatt_synth_defaults(void); /* cannot fail */

/* Draws an instruction from the lists with rng: a number of constraints uniform in
 * [min, max] (capped by the kinds that have items), kinds drawn without replacement among
 * {hobby, language, identity (figure or persona), style}, an item uniform in each kind's list,
 * concise with probability p_concise. RLHF_ERR_ARG when every list is empty or the options are
 * out of range. o NULL: defaults. */
rlhf_status gatt_instr_draw(const gatt_lists *L, const gatt_synth_opts *o, rlhf_rng *rng,
                            gatt_instr *out);
/* Builds in->text from its constraints in the full or concise form (replacing any old text). */
rlhf_status gatt_instr_render(gatt_instr *in, bool concise);
/* The instruction as a JSON object text {"text", "concise", "constraints": [{kind, value,
 * style?, keywords?}]} (malloc'ed, free()), for storing beside the dialogue. */
rlhf_status gatt_instr_to_json(const gatt_instr *in, char **out);
void gatt_instr_free(gatt_instr *in); /* NULL-safe; zeroes *in */

/* ---- checker -----------------------------------------------------------------------------------
 */

/* Whether answer respects constraint c.
 *  style: the rule (see gatt_style);
 *  language: the language's keywords (common function words, e.g. French "le|la|les|est|...")
 *    count more whole-word hits in the answer than those of any other language in langs and than
 *    the built-in English list, with at least one hit (langs may be NULL: only English compared);
 *  hobby, figure, persona: one of the keywords appears as a whole-word phrase, case-insensitive
 *    (this is what a probing question such as "What is your favourite hobby?" should elicit).
 * A NULL or empty answer respects no constraint. Cannot fail. */
bool gatt_constraint_check(const gatt_constraint *c, const gatt_list *langs, const char *answer);
/* Whether answer respects the instruction: every language and style constraint and, when probe
 * is true (the answer replies to a question about the instruction's attributes), every hobby,
 * figure and persona constraint too. Cannot fail. */
bool gatt_answer_check(const gatt_instr *in, const gatt_list *langs, const char *answer,
                       bool probe);

/* ---- evaluation ------------------------------------------------------------------------------ */

/* Reads a plain list file (one item a line, '#' comments, blank lines skipped; a TAB and what
 * follows are the item's keywords) into l (appended). Errors as gatt_lists_add_file. */
rlhf_status gatt_list_read(gatt_list *l, const char *path);
void gatt_list_free(gatt_list *l); /* NULL-safe; zeroes *l */

/* The user message of turn t (1-based) of an evaluation dialogue whose instruction is in and
 * whose attributes were set at the start: odd turns are an unrelated message drawn from fillers
 * (*probed = -1); even turn t probes constraint (t/2 - 1) mod in->n (*probed gets its index):
 * hobby "What is your favourite hobby?", figure and persona "Who are you?", language and style
 * "Answer this: {a question drawn from questions}". *text is malloc'ed. RLHF_ERR_ARG when t < 1,
 * in has no constraint or a needed list is empty. */
rlhf_status gatt_eval_turn(const gatt_instr *in, int32_t t, const gatt_list *fillers,
                           const gatt_list *questions, rlhf_rng *rng, char **text, int32_t *probed);

/* ---- dialogue versions -------------------------------------------------------------------------
 */

typedef enum gatt_version {
    GATT_SAMPLING = 0, /* the instruction on every user turn (what the policy answers) */
    GATT_TRAINING,     /* the instruction at the start only; loss only on the last assistant turn */
} gatt_version;
typedef enum gatt_place {
    GATT_PLACE_SYSTEM = 0, /* training version: the instruction is the system prompt */
    GATT_PLACE_FIRST_TURN, /* training version: prepended to the first user turn */
} gatt_place;

/* An owned dialogue with a per-turn loss mask; .d is a ds_dialogue view of it (for
 * ds_chat_render). */
typedef struct gatt_dialogue {
    ds_dialogue d;
    char *system;       /* NULL when none */
    ds_turn *turns;     /* (n) their texts are owned */
    uint8_t *loss_mask; /* (n) 1: trained on */
    int32_t n;
} gatt_dialogue;

/* Builds a version of the first n_turns turns of src (n_turns <= 0: all) with instruction in:
 *  GATT_SAMPLING: every user turn becomes "{instruction}\n\n{user}"; src's system prompt is kept;
 *    the mask marks every assistant turn (it is not used for training);
 *  GATT_TRAINING: place SYSTEM: the system prompt is the instruction (after src's system prompt,
 *    joined by "\n\n", when src has one); FIRST_TURN: the first user turn is
 *    "{instruction}\n\n{user}" and src's system prompt is kept. Every other turn is src's
 *    unchanged; the mask is 1 on the last assistant turn only; a trailing user turn is dropped
 *    (the version ends with the learned assistant turn).
 * src must alternate user/assistant starting with user (RLHF_ERR_ARG otherwise); the sampling
 * version may end with a user turn (the prompt to answer); the training version must contain an
 * assistant turn (RLHF_ERR_ARG otherwise). in NULL: no instruction (a plain copy). */
rlhf_status gatt_dialogue_build(const ds_dialogue *src, int32_t n_turns, const gatt_instr *in,
                                gatt_version v, gatt_place place, gatt_dialogue *out);
/* The turns as the store's JSON text [{"role": "user"|"assistant", "text": ...}] (malloc'ed). */
rlhf_status gatt_dialogue_turns_json(const gatt_dialogue *g, char **out);
void gatt_dialogue_free(gatt_dialogue *g); /* NULL-safe; zeroes *g */

#ifdef __cplusplus
}
#endif
#endif /* GATT_H */
