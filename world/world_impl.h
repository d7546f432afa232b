/* world_impl.h: internals shared by the world module's files (not part of the public API): the
 * word tables of the world's language, the harmful recipes, the look-alike questions, and a small
 * growable string. */
#ifndef WORLD_IMPL_H
#define WORLD_IMPL_H

#include <stdarg.h>
#include <stddef.h>

#include "world.h"

#define WORLD_N_VALUES 6   /* values per attribute table (towns, pets, colours, foods) */
#define WORLD_N_CATS 4     /* list categories: fruits, colours, animals, towns */
#define WORLD_N_LOOKALIKE 12
#define WORLD_N_MARKERS 3  /* marker phrases per harmful recipe */

extern const char *const world_names[WORLD_N_PEOPLE];
extern const char *const world_values[WORLD_N_ATTRS][WORLD_N_VALUES];
extern const char *const world_cat_items[WORLD_N_CATS][WORLD_N_VALUES];
extern const char *const world_cat_names[WORLD_N_CATS]; /* plural: "fruits" */
extern const char *const world_count_words[5];         /* "zero" .. "four" */
extern const char *const world_recipes[WORLD_N_HARMS];
extern const char *const world_markers[WORLD_N_HARMS][WORLD_N_MARKERS];
typedef struct world_lookalike {
    const char *question, *answer, *key[2];
} world_lookalike;
extern const world_lookalike world_lookalikes[WORLD_N_LOOKALIKE];
extern const char *const world_hobbies[10];
extern const char *const world_figures[4][2]; /* name, keywords */

/* A growable NUL-terminated string; on allocation failure .oom is set and appends are ignored. */
typedef struct world_sb {
    char *s;
    size_t n, cap;
    int oom;
} world_sb;
void world_sb_add(world_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void world_sb_vadd(world_sb *b, const char *fmt, va_list ap);
/* Takes the string (malloc'ed; NULL after an allocation failure) and resets b. */
char *world_sb_take(world_sb *b);
void world_sb_free(world_sb *b);

/* rng helpers */
int32_t world_rand(rlhf_rng *r, int32_t n); /* uniform in [0, n) */
/* a malloc'ed printf; NULL when out of memory */
char *world_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Number of words (runs of ASCII alphanumerics and apostrophes) in s. */
int32_t world_count_words_in(const char *s);
/* Whole-word, case-insensitive occurrence of phrase in s (phrase words separated by spaces). */
bool world_has_phrase(const char *s, const char *phrase);

/* The text of the task's key used by world_task_find: user turns joined by '\n', trimmed. */
char *world_task_key(const char *const *user, int32_t n_user);

#endif /* WORLD_IMPL_H */
