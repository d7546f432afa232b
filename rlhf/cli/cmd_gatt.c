/* cmd_gatt.c: `rlhf gatt generate`, Ghost Attention training data sampled from a policy.
 *
 * For each of the first N usable dialogues of a dataset file (ShareGPT, NeMo, MT-Bench, prompt
 * lists: anything ds_read delivers as dialogues or prompts; only the user turns are used), an
 * instruction is drawn from the lists (gatt/data, plus user lists and personas), seeded by
 * (seed, record index) so it depends on nothing else. Every assistant turn is then sampled from the
 * policy on the SAMPLING version (the instruction on every user turn); with --samples-per-turn K
 * the first of the K samples that passes the automatic checker is kept (sample 0 when none does),
 * or, with --rm, the one the reward model scores highest among those that pass (among all K when
 * none does), the reward model reading the sampling version (it sees the instruction).
 * The TRAINING version (instruction as the system prompt or in the first user turn only, loss mask
 * on the last assistant turn only) goes into the run's dialogues table (source "gatt"), where
 * `rlhf sft` finds it with its mask. With --require-pass, a dialogue is cut after its last kept
 * answer that passes the checker (that answer is the one learned) and dropped when none passes,
 * so the fine-tuning never learns an answer that ignores the instruction.
 *
 * Resumable as `rlhf sample` is: one `gatt-generate` stage per (source file sha256, N, policy,
 * lists, sampling options, seed); dialogues go in groups of --batch, each group's rows in one
 * transaction with the stage's progress (dialogues consumed), so a run killed at any moment
 * restarts after the last committed group; the dialogues table's UNIQUE (stage, src_index) is the
 * second guard. Sample j of turn u of record r uses a seed derived from (seed, r, u, j), so the
 * data do not depend on --batch or on resumption. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "ds.h"
#include "gatt.h"
#include "policy.h"
#include "reward.h"
#include "store.h"
#include "svg.h"

#define GATT_MAX_TURNS 64 /* user turns used per dialogue at most */

/* ---- source dialogues: the user turns of each usable record ---- */

typedef struct src_dlg {
    int64_t index; /* the record's ordinal in the file (src_index) */
    char *system;  /* NULL when none */
    char **users;  /* (n) user turns */
    int32_t n;
} src_dlg;

typedef struct src_set {
    src_dlg *v;
    int64_t n, cap, want;
    bool full;
} src_set;

static void src_set_free(src_set *s) {
    for (int64_t i = 0; i < s->n; i++) {
        for (int32_t j = 0; j < s->v[i].n; j++)
            free(s->v[i].users[j]);
        free(s->v[i].users);
        free(s->v[i].system);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

static rlhf_status src_record(void *ctx, const ds_record *r) {
    src_set *s = ctx;
    const char *system = NULL;
    const ds_turn *turns = NULL;
    int32_t nt = 0;
    ds_turn one;
    if (r->kind == DS_DIALOGUE) {
        system = r->dialogue.system;
        turns = r->dialogue.turns;
        nt = r->dialogue.n_turns;
    } else if (r->kind == DS_PROMPT) {
        system = r->prompt.system;
        if (r->prompt.n_turns > 0) {
            turns = r->prompt.turns;
            nt = r->prompt.n_turns;
        } else {
            one = (ds_turn){DS_ROLE_USER, r->prompt.text};
            turns = &one;
            nt = 1;
        }
    } else {
        return RLHF_OK; /* preference pairs are not dialogues to answer */
    }
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        src_dlg *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        s->v = v;
        s->cap = cap;
    }
    src_dlg *d = &s->v[s->n];
    memset(d, 0, sizeof *d);
    d->index = r->index;
    d->users = calloc((size_t)nt, sizeof *d->users);
    if (!d->users) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    s->n++; /* counted now so that src_set_free frees what follows */
    if (system && !(d->system = strdup(system))) return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < nt && d->n < GATT_MAX_TURNS; i++) {
        if (turns[i].role != DS_ROLE_USER) continue;
        if (!(d->users[d->n] = strdup(turns[i].text)))
            return RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        d->n++;
    }
    if (d->n == 0) { /* nothing to answer: not usable */
        free(d->users);
        free(d->system);
        s->n--;
    }
    if (s->n >= s->want) {
        s->full = true;
        return RLHF_ERR_UNSUPPORTED; /* stops the read; not an error (see load_source) */
    }
    return RLHF_OK;
}

static rlhf_status load_source(const char *path, int64_t want, src_set *out) {
    memset(out, 0, sizeof *out);
    out->want = want;
    rlhf_status st = ds_read(path, NULL, src_record, NULL, out, NULL);
    if (out->full && st == RLHF_ERR_UNSUPPORTED) {
        rlhf_error_clear();
        st = RLHF_OK;
    }
    if (st == RLHF_OK && out->n == 0)
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: no dialogue or prompt with a user turn", path);
    if (st != RLHF_OK) src_set_free(out);
    return st;
}

/* FNV-1a of every list item: the lists are part of the stage's identity. */
static uint64_t lists_hash(const gatt_lists *L) {
    uint64_t h = 1469598103934665603ULL;
    for (int k = 0; k < GATT_N_KINDS; k++)
        for (int32_t i = 0; i < L->kind[k].n; i++) {
            const gatt_item *it = &L->kind[k].v[i];
            const char *parts[3] = {it->name, it->keywords ? it->keywords : "",
                                    gatt_style_name(it->style)};
            for (int p = 0; p < 3; p++) {
                for (const char *c = parts[p]; *c; c++)
                    h = (h ^ (unsigned char)*c) * 1099511628211ULL;
                h = (h ^ 0xff) * 1099511628211ULL;
            }
            h = (h ^ (uint64_t)k) * 1099511628211ULL;
        }
    return h;
}

/* A reward model (scalar head) for inference on B rows of up to its seq_len positions. */
static rlhf_status load_scorer(const char *path, const rlhf_backend *be, int32_t B,
                               rlhf_model **out) {
    *out = NULL;
    rlhf_model_config c;
    float *params = NULL;
    RLHF_TRY(rlhf_checkpoint_read(path, &c, &params));
    rlhf_status st = RLHF_OK;
    if (c.head != RLHF_HEAD_SCALAR) {
        st = RLHF_ERR(RLHF_ERR_ARG,
                      "%s has an LM head: --rm needs a reward model (scalar head, "
                      "`rlhf rm train`)",
                      path);
    } else {
        c.trainable = false;
        st = rlhf_model_init(out, &c, be, B, c.seq_len);
        if (st == RLHF_OK) st = rlhf_model_set_params(*out, params);
        if (st != RLHF_OK) {
            rlhf_model_free(*out);
            *out = NULL;
        }
    }
    rlhf_free(params);
    return st;
}

/* One dialogue being answered. */
typedef struct live {
    const src_dlg *src;
    gatt_instr instr;
    char **answers; /* (src->n) */
    int32_t n_ans;
    int32_t n_pass_prefix; /* answers up to and including the last one that passes (0: none) */
    bool alive;
    ds_chat_tokens prompt;
} live;

/* The source's first n_users user turns with the answers so far, as a ds_dialogue in buf. */
static ds_dialogue live_view(const live *l, int32_t n_users, int32_t n_answers, ds_turn *buf) {
    int32_t k = 0;
    for (int32_t u = 0; u < n_users; u++) {
        buf[k++] = (ds_turn){DS_ROLE_USER, l->src->users[u]};
        if (u < n_answers) buf[k++] = (ds_turn){DS_ROLE_ASSISTANT, l->answers[u]};
    }
    return (ds_dialogue){l->src->system, buf, k};
}

int cmd_gatt_generate(int argc, char **argv) {
    const char *source = NULL, *policy = NULL, *tok_path = NULL, *lists_dir = NULL,
               *personas = NULL, *place_s = "system", *rm_path = NULL;
    const char *user_list[4] = {NULL, NULL, NULL, NULL}; /* hobby, language, figure, style */
    int32_t n_want = 0, k = 1, max_new = 128, batch = 8, stop_after = 0, slots = 64;
    float temperature = 0.7f, top_p = 0.9f, p_concise = 0.5f;
    uint64_t seed = 1;
    bool require_pass = false;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"dialogues", 'd', CLI_STR, &source, "SOURCE", NULL,
         "dataset file whose user turns are used (ShareGPT, NeMo, MT-Bench, prompt lists); "
         "required",
         false},
        {"policy", 'm', CLI_STR, &policy, "CKPT", NULL,
         "policy checkpoint that answers (llama2.c .bin or HF dir); required", false},
        {"tokenizer", 'z', CLI_STR, &tok_path, "T", NULL, "tokenizer (.model or .bin); required",
         false},
        {"n", 'n', CLI_POS_INT, &n_want, "N", NULL,
         "dialogues to generate (the first N usable "
         "records of SOURCE); required",
         false},
        {"samples-per-turn", 'k', CLI_POS_INT, &k, "K", "1",
         "samples per assistant turn; the first that passes the checker is kept", false},
        {"rm", 0, CLI_STR, &rm_path, "RM", NULL,
         "reward model (scalar head): keep the best-scored of the K samples that pass the "
         "checker",
         false},
        {"require-pass", 0, CLI_FLAG, &require_pass, NULL, NULL,
         "cut each dialogue after its last answer that passes the checker (the learned one); "
         "drop it when none passes",
         false},
        {"temperature", 't', CLI_NONNEG_FLOAT, &temperature, "F", "0.7", "0 = greedy", false},
        {"top-p", 'p', CLI_FLOAT, &top_p, "P", "0.9", "nucleus sampling in (0, 1]", false},
        {"max-new", 0, CLI_POS_INT, &max_new, "N", "128", "new tokens per answer at most", false},
        {"seed", 's', CLI_U64, &seed, "S", "1", "run seed (instructions and samples)", false},
        {"place", 0, CLI_STR, &place_s, "WHERE", "system",
         "training version: the instruction as the system prompt (system) or in the first user "
         "turn (first-turn)",
         false},
        {"p-concise", 0, CLI_NONNEG_FLOAT, &p_concise, "F", "0.5",
         "share of instructions in the concise form", false},
        {"lists", 0, CLI_STR, &lists_dir, "DIR", "the source tree's gatt/data",
         "directory of hobbies.txt, languages.txt, figures.txt, styles.txt (personas.txt)", false},
        {"personas", 0, CLI_STR, &personas, "CSV", NULL,
         "extra \"act as\" personas: a CSV with an `act` column "
         "(../shared/data/personas/awesome_chatgpt_prompts.csv)",
         false},
        {"hobbies", 0, CLI_STR, &user_list[0], "FILE", NULL, "more hobbies (a list file)", false},
        {"languages", 0, CLI_STR, &user_list[1], "FILE", NULL, "more languages", false},
        {"figures", 0, CLI_STR, &user_list[2], "FILE", NULL, "more public figures", false},
        {"styles", 0, CLI_STR, &user_list[3], "FILE", NULL, "more style rules", false},
        {"batch", 'b', CLI_POS_INT, &batch, "N", "8", "dialogues per stored group (transaction)",
         false},
        {"slots", 0, CLI_POS_INT, &slots, "N", "64", "sequences decoded together at most", false},
        {"stop-after", 0, CLI_NONNEG_INT, &stop_after, "N", "0 = off",
         "stop (as if killed) after N groups in this process (tests)", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {
        "gatt generate",
        "RUN --dialogues SOURCE --policy CKPT --tokenizer T --n N [options]",
        "Ghost Attention data: draws an instruction per dialogue, has the policy answer every\n"
        "user turn with the instruction attached to each, and stores the training version\n"
        "(instruction at the start only, loss on the last answer only) in the run's dialogues\n"
        "for `rlhf sft`. Rerunning the same command resumes.",
        opts,
        1,
        1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!source) return cli_usage_error(&spec, "--dialogues is required");
    if (!policy) return cli_usage_error(&spec, "--policy is required");
    if (!tok_path) return cli_usage_error(&spec, "--tokenizer is required");
    if (n_want <= 0) return cli_usage_error(&spec, "--n is required");
    if (k > 64) return cli_usage_error(&spec, "--samples-per-turn must be at most 64");
    if (!(top_p > 0.0f && top_p <= 1.0f))
        return cli_usage_error(&spec, "--top-p must be in (0, 1]");
    if (p_concise > 1.0f) return cli_usage_error(&spec, "--p-concise must be in [0, 1]");
    gatt_place place;
    if (strcmp(place_s, "system") == 0)
        place = GATT_PLACE_SYSTEM;
    else if (strcmp(place_s, "first-turn") == 0)
        place = GATT_PLACE_FIRST_TURN;
    else
        return cli_usage_error(&spec, "--place must be system or first-turn");
    const rlhf_backend *be = NULL;
    rlhf_status st = cli_setup(&com, &be);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);

    rlhf_store *s = NULL;
    rlhf_tokenizer *tok = NULL;
    rlhf_model *m = NULL, *rm = NULL;
    rlhf_sampler *smp = NULL;
    gatt_lists L = {0};
    src_set src = {0};
    char **cand = NULL;      /* (k) decoded samples of one turn */
    int32_t **rm_ids = NULL; /* (k) reward-model encodings */
    int32_t *rm_lens = NULL;
    float *rm_out = NULL;
    int64_t rm_id = 0;
    live *lv = NULL;
    rlhf_sample_seq *seqs = NULL;
    int32_t *outbuf = NULL;
    ds_turn *tbuf = NULL;
    char *key = NULL, *params = NULL;
    int64_t stage = 0, ckpt_id = 0;
    gatt_synth_opts so = gatt_synth_defaults();
    so.p_concise = p_concise;

    RLHF_TRY_GOTO(st, gatt_lists_load_dir(&L, lists_dir ? lists_dir : gatt_data_dir()), fail);
    static const gatt_kind user_kinds[4] = {GATT_HOBBY, GATT_LANGUAGE, GATT_FIGURE, GATT_STYLE};
    for (int i = 0; i < 4; i++)
        if (user_list[i])
            RLHF_TRY_GOTO(st, gatt_lists_add_file(&L, user_kinds[i], user_list[i]), fail);
    if (personas) RLHF_TRY_GOTO(st, gatt_lists_add_personas_csv(&L, personas, NULL), fail);
    if (rm_path) RLHF_TRY_GOTO(st, load_scorer(rm_path, be, k, &rm), fail); /* before registering */
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, policy, "policy", &ckpt_id), fail);
    if (rm_path) { /* registered as `rlhf rm train` does: DIR/model.safetensors for an HF dir */
        char rf[4096];
        snprintf(rf, sizeof rf, rlhf_hf_is_dir(rm_path) ? "%s/model.safetensors" : "%s", rm_path);
        RLHF_TRY_GOTO(st, cli_checkpoint_register(s, rf, "reward-helpfulness", &rm_id), fail);
    }
    char sha[65];
    RLHF_TRY_GOTO(st, rlhf_store_sha256_file(source, sha, NULL), fail);
    {
        json_t *pj =
            json_pack("{s:s, s:s, s:i, s:I, s:i, s:f, s:f, s:i, s:I, s:s, s:f, s:s}", "source",
                      source, "sha256", sha, "n", (int)n_want, "policy", (json_int_t)ckpt_id, "k",
                      (int)k, "temperature", (double)temperature, "top_p", (double)top_p, "max_new",
                      (int)max_new, "seed", (json_int_t)seed, "place", place_s, "p_concise",
                      (double)p_concise, "lists", "");
        char lh[17];
        snprintf(lh, sizeof lh, "%016" PRIx64, lists_hash(&L));
        if (pj) json_object_set_new(pj, "lists", json_string(lh));
        if (pj) json_object_set_new(pj, "rm", json_integer((json_int_t)rm_id));
        if (pj && require_pass) json_object_set_new(pj, "require_pass", json_true());
        params = pj ? json_dumps(pj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(pj);
        size_t kl = 512;
        key = malloc(kl);
        if (!params || !key) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto fail;
        }
        snprintf(key, kl,
                 "source=%s n=%d policy=%" PRId64 " k=%d temperature=%.9g top_p=%.9g max_new=%d "
                 "seed=%" PRIu64 " place=%s p_concise=%.9g lists=%s rm=%" PRId64 "%s",
                 sha, (int)n_want, ckpt_id, (int)k, (double)temperature, (double)top_p,
                 (int)max_new, seed, place_s, (double)p_concise, lh, rm_id,
                 require_pass ? " require_pass" : "");
    }
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "gatt-generate", key, &sg, &found), fail);
    if (found && sg.status == RLHF_STAGE_DONE) {
        if (!com.quiet)
            printf("gatt generate: already done (stage %" PRId64 ", %" PRId64
                   " dialogues); nothing to do\n",
                   sg.id, sg.progress);
        rc = CLI_EXIT_OK;
        goto done;
    }
    RLHF_TRY_GOTO(st, load_source(source, n_want, &src), fail);
    int64_t done_d = 0;
    if (found) {
        stage = sg.id;
        done_d = sg.progress;
    } else {
        RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "gatt-generate", key, params, src.n, &stage),
                      fail);
    }
    RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, 0), fail);
    RLHF_TRY_GOTO(st, rlhf_model_load(&m, policy, be, false, 1, 0), fail);
    const rlhf_model_config *c = rlhf_model_get_config(m);
    RLHF_TRY_GOTO(st, cli_check_vocab(policy, c->vocab_size, tok_path, tok), fail);
    const int32_t nseq = batch * k;
    RLHF_TRY_GOTO(st, rlhf_sampler_init(&smp, m, nseq < slots ? nseq : slots), fail);
    cand = calloc((size_t)k, sizeof *cand);
    rm_ids = calloc((size_t)k, sizeof *rm_ids);
    rm_lens = calloc((size_t)k, sizeof *rm_lens);
    rm_out = calloc((size_t)k, sizeof *rm_out);
    if (!cand || !rm_ids || !rm_lens || !rm_out) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    lv = calloc((size_t)batch, sizeof *lv);
    seqs = calloc((size_t)nseq, sizeof *seqs);
    outbuf = malloc((size_t)nseq * (size_t)max_new * sizeof *outbuf);
    tbuf = malloc(2 * GATT_MAX_TURNS * sizeof *tbuf);
    if (!lv || !seqs || !outbuf || !tbuf) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for %d sequences", (int)nseq);
        goto fail;
    }
    const rlhf_sample_config sc = {temperature, 0, top_p, max_new, rlhf_tokenizer_eos(tok)};
    if (!com.quiet) {
        printf("gatt generate: %s %" PRId64 " dialogues of %s, %d sample(s) per turn, checkpoint "
               "%" PRId64 " (%s), T %.3g top-p %.3g, instruction in the %s\n",
               done_d ? "resuming," : "new stage,", src.n - done_d, source, (int)k, ckpt_id, policy,
               (double)temperature, (double)top_p,
               place == GATT_PLACE_SYSTEM ? "system prompt" : "first user turn");
        fflush(stdout);
    }
    cli_progress prog;
    cli_progress_start(&prog, "gatt", "dialogues", src.n, &com);
    prog.base = done_d;
    int64_t n_stored = 0, n_answers = 0, n_pass = 0, n_dropped = 0, n_cut = 0, groups = 0;
    while (done_d < src.n) {
        if (stop_after > 0 && groups >= stop_after) {
            cli_progress_end(&prog);
            if (!com.quiet) printf("stopped after %d groups (--stop-after)\n", (int)groups);
            rc = CLI_EXIT_OK;
            goto done;
        }
        const int64_t g0 = done_d;
        const int32_t nd = (int32_t)(src.n - g0 < batch ? src.n - g0 : batch);
        int32_t max_users = 0;
        for (int32_t i = 0; i < nd; i++) {
            live *l = &lv[i];
            l->src = &src.v[g0 + i];
            l->n_ans = 0;
            l->n_pass_prefix = 0;
            l->alive = true;
            l->answers = calloc((size_t)l->src->n, sizeof *l->answers);
            if (!l->answers) {
                st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
                goto group_fail;
            }
            rlhf_rng rng;
            rlhf_rng_seed(&rng, seed, (uint64_t)l->src->index);
            RLHF_TRY_GOTO(st, gatt_instr_draw(&L, &so, &rng, &l->instr), group_fail);
            if (l->src->n > max_users) max_users = l->src->n;
        }
        for (int32_t u = 0; u < max_users; u++) {
            int32_t n = 0;
            for (int32_t i = 0; i < nd; i++) {
                live *l = &lv[i];
                if (!l->alive || u >= l->src->n) continue;
                ds_dialogue view = live_view(l, u + 1, u, tbuf);
                gatt_dialogue g;
                RLHF_TRY_GOTO(st,
                              gatt_dialogue_build(&view, 0, &l->instr, GATT_SAMPLING, place, &g),
                              group_fail);
                ds_chat_free(&l->prompt);
                st = ds_chat_render(tok, &g.d, c->seq_len - 1, &l->prompt);
                gatt_dialogue_free(&g);
                if (st == RLHF_ERR_ARG) { /* longer than the context: the dialogue ends here */
                    rlhf_error_clear();
                    st = RLHF_OK;
                    l->alive = false;
                    continue;
                }
                if (st != RLHF_OK) goto group_fail;
                for (int32_t j = 0; j < k; j++, n++) {
                    seqs[n].prompt = l->prompt.ids;
                    seqs[n].n_prompt = l->prompt.n;
                    seqs[n].seed = rs_sample_seed(rs_sample_seed(seed, l->src->index, u), 0, j);
                    seqs[n].out = outbuf + (size_t)n * max_new;
                    seqs[n].logp = NULL;
                }
            }
            if (n == 0) break;
            RLHF_TRY_GOTO(st, rlhf_sampler_run(smp, &sc, seqs, n, NULL, NULL), group_fail);
            int32_t q = 0;
            for (int32_t i = 0; i < nd; i++) {
                live *l = &lv[i];
                if (!l->alive || u >= l->src->n) continue;
                int32_t best = -1, n_ok = 0;
                bool ok[64] = {0}; /* k <= 64 (checked with the options) */
                for (int32_t j = 0; j < k; j++, q++) {
                    const rlhf_sample_seq *x = &seqs[q];
                    int32_t nt = x->n_out;
                    if (x->finish == RLHF_FINISH_EOS && nt > 0) nt--;
                    RLHF_TRY_GOTO(st, rlhf_tokenizer_decode(tok, x->out, nt, &cand[j]), group_fail);
                    ok[j] = gatt_answer_check(&l->instr, &L.kind[GATT_LANGUAGE], cand[j], false);
                    n_ok += ok[j];
                    if (best < 0 && ok[j]) best = j;
                }
                if (best < 0) best = 0;
                if (rm) { /* the best reward among the passing samples (all when none passes) */
                    ds_dialogue view = live_view(l, u + 1, u, tbuf);
                    gatt_dialogue g;
                    RLHF_TRY_GOTO(
                        st, gatt_dialogue_build(&view, 0, &l->instr, GATT_SAMPLING, place, &g),
                        group_fail);
                    const int32_t T = rlhf_model_get_config(rm)->seq_len;
                    for (int32_t j = 0; j < k && st == RLHF_OK; j++)
                        st = reward_encode(tok, &g.d, cand[j], T, &rm_ids[j], &rm_lens[j], NULL);
                    gatt_dialogue_free(&g);
                    if (st == RLHF_OK)
                        st = reward_model_score(rm, (const int32_t *const *)rm_ids, rm_lens, k, k,
                                                rm_out);
                    for (int32_t j = 0; j < k; j++) {
                        free(rm_ids[j]);
                        rm_ids[j] = NULL;
                    }
                    if (st != RLHF_OK) goto group_fail;
                    best = -1;
                    for (int32_t j = 0; j < k; j++)
                        if ((n_ok == 0 || ok[j]) && (best < 0 || rm_out[j] > rm_out[best]))
                            best = j;
                }
                char *pick = cand[best];
                cand[best] = NULL;
                for (int32_t j = 0; j < k; j++) {
                    free(cand[j]);
                    cand[j] = NULL;
                }
                const bool pass = gatt_answer_check(&l->instr, &L.kind[GATT_LANGUAGE], pick, false);
                n_pass += pass;
                n_answers++;
                if (pass) l->n_pass_prefix = u + 1;
                l->answers[u] = pick;
                l->n_ans = u + 1;
            }
        }
        RLHF_TRY_GOTO(st, rlhf_store_begin(s), group_fail);
        for (int32_t i = 0; i < nd; i++) {
            live *l = &lv[i];
            if (l->n_ans == 0) continue; /* even the first turn did not fit */
            int32_t n_keep = l->n_ans;
            if (require_pass) {
                if (l->n_pass_prefix == 0) {
                    n_dropped++;
                    continue;
                }
                n_cut += l->n_pass_prefix < n_keep;
                n_keep = l->n_pass_prefix;
            }
            ds_dialogue view = live_view(l, n_keep, n_keep, tbuf);
            gatt_dialogue g;
            char *turns = NULL;
            st = gatt_dialogue_build(&view, 0, &l->instr, GATT_TRAINING, place, &g);
            if (st == RLHF_OK) st = gatt_dialogue_turns_json(&g, &turns);
            if (st == RLHF_OK) {
                rlhf_store_dialogue row = {.system = g.system,
                                           .turns_json = turns,
                                           .loss_mask = g.loss_mask,
                                           .n_mask = g.n,
                                           .split = RLHF_SPLIT_TRAIN,
                                           .source = "gatt",
                                           .stage_id = stage,
                                           .src_index = l->src->index};
                st = rlhf_store_dialogue_add(s, &row, NULL);
            }
            free(turns);
            gatt_dialogue_free(&g);
            if (st != RLHF_OK) {
                rlhf_store_rollback(s);
                goto group_fail;
            }
            n_stored++;
        }
        done_d = g0 + nd;
        st = rlhf_store_stage_progress(s, stage, done_d);
        if (st == RLHF_OK) st = rlhf_store_commit(s);
        if (st != RLHF_OK) {
            rlhf_store_rollback(s);
            goto group_fail;
        }
    group_fail:
        for (int32_t i = 0; i < nd; i++) {
            live *l = &lv[i];
            if (l->answers)
                for (int32_t j = 0; j < l->src->n; j++)
                    free(l->answers[j]);
            free(l->answers);
            l->answers = NULL;
            gatt_instr_free(&l->instr);
            ds_chat_free(&l->prompt);
        }
        if (cand)
            for (int32_t j = 0; j < k; j++) {
                free(cand[j]);
                cand[j] = NULL;
            }
        if (st != RLHF_OK) goto fail;
        groups++;
        cli_progress_update(&prog, done_d);
    }
    cli_progress_end(&prog);
    const double pass_rate = n_answers ? (double)n_pass / (double)n_answers : 0.0;
    char result[256];
    snprintf(result, sizeof result,
             "{\"dialogues_this_process\": %" PRId64 ", \"answers_this_process\": %" PRId64
             ", \"checker_pass\": %.6f, \"dropped_this_process\": %" PRId64
             ", \"cut_this_process\": %" PRId64 "}",
             n_stored, n_answers, pass_rate, n_dropped, n_cut);
    if (n_answers)
        RLHF_TRY_GOTO(st, rlhf_store_metric_set(s, stage, 0, "gatt/checker_pass", pass_rate), fail);
    RLHF_TRY_GOTO(st, rlhf_store_stage_finish(s, stage, src.n, result), fail);
    if (!com.quiet)
        printf("gatt generate: stored %" PRId64 " dialogues (%" PRId64 " answers, %.1f%% pass the "
               "checker)",
               n_stored, n_answers, 100.0 * pass_rate);
    if (!com.quiet && require_pass)
        printf("; --require-pass: %" PRId64 " dropped (no answer passes), %" PRId64
               " cut after their last passing answer", n_dropped, n_cut);
    if (!com.quiet) printf("\n");
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    if (cand)
        for (int32_t j = 0; j < k; j++)
            free(cand[j]);
    free(cand);
    free(rm_ids);
    free(rm_lens);
    free(rm_out);
    rlhf_model_free(rm);
    free(tbuf);
    free(outbuf);
    free(seqs);
    free(lv);
    free(key);
    free(params);
    rlhf_sampler_free(smp);
    rlhf_model_free(m);
    rlhf_tokenizer_free(tok);
    src_set_free(&src);
    gatt_lists_free(&L);
    rlhf_store_close(s);
    return rc;
}

/* ---- rlhf gatt eval
 * ------------------------------------------------------------------------------
 *
 * How long does an instruction survive? n dialogues, each with an instruction drawn from the lists
 * (PCG32(seed, stream EVAL_STREAM + i)) set at the start only (system prompt or first user turn,
 * --place), then --turns user turns: odd turns unrelated messages, even turns probes of one
 * constraint after the other (gatt_eval_turn). The policy answers every turn (its own answers stay
 * in the context). Recall at turn t = share of the dialogues still inside the context at t whose
 * probe answer passes the checker for the probed constraint, per kind and over all; stored as
 * metrics gatt/recall/<kind|all> and gatt/n/<kind|all> (step = turn) of a `gatt-eval` stage,
 * printed as a table (turns in columns, Table 30's layout) and plotted to
 * RUN/report/gatt_recall_ckpt<ID>.svg. Rerunning a finished evaluation prints its stored table. */

#define EVAL_STREAM 0x6761747465ULL /* "gatte" */

typedef struct eval_dlg {
    gatt_instr instr;
    char **users, **answers; /* (turns) */
    int32_t n;               /* turns answered */
    bool alive;
    ds_chat_tokens prompt;
} eval_dlg;

int cmd_gatt_eval(int argc, char **argv) {
    const char *policy = NULL, *tok_path = NULL, *lists_dir = NULL, *personas = NULL,
               *place_s = "system";
    int32_t n_dlg = 50, turns = 20, max_new = 64, slots = 64;
    float temperature = 0.0f, p_concise = 0.5f;
    uint64_t seed = 1;
    cli_common com = CLI_COMMON_DEFAULTS;
    cli_opt opts[] = {
        {"policy", 'm', CLI_STR, &policy, "CKPT", NULL, "policy checkpoint; required", false},
        {"tokenizer", 'z', CLI_STR, &tok_path, "T", NULL, "tokenizer (.model or .bin); required",
         false},
        {"turns", 0, CLI_POS_INT, &turns, "N", "20", "user turns per dialogue", false},
        {"n", 'n', CLI_POS_INT, &n_dlg, "N", "50", "evaluation dialogues", false},
        {"temperature", 't', CLI_NONNEG_FLOAT, &temperature, "F", "0 = greedy", "sampling", false},
        {"max-new", 0, CLI_POS_INT, &max_new, "N", "64", "new tokens per answer at most", false},
        {"seed", 's', CLI_U64, &seed, "S", "1", "instructions, messages and samples", false},
        {"place", 0, CLI_STR, &place_s, "WHERE", "system",
         "the instruction as the system prompt (system) or in the first user turn (first-turn)",
         false},
        {"p-concise", 0, CLI_NONNEG_FLOAT, &p_concise, "F", "0.5", "share of concise instructions",
         false},
        {"lists", 0, CLI_STR, &lists_dir, "DIR", "the source tree's gatt/data",
         "lists (fillers.txt and questions.txt from there when present)", false},
        {"personas", 0, CLI_STR, &personas, "CSV", NULL, "extra personas (an `act` column)", false},
        {"slots", 0, CLI_POS_INT, &slots, "N", "64", "sequences decoded together at most", false},
        CLI_COMMON_OPTS(&com),
        {0},
    };
    cli_spec spec = {"gatt eval",
                     "RUN --policy CKPT --tokenizer T [--turns 20] [--n 50] [options]",
                     "Instruction survival: recall of the instruction's attributes by turn (2, 4,\n"
                     "..., --turns) when probed, per kind of constraint; stored, printed, plotted.",
                     opts,
                     1,
                     1};
    char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc >= 0) return rc;
    if (!policy) return cli_usage_error(&spec, "--policy is required");
    if (!tok_path) return cli_usage_error(&spec, "--tokenizer is required");
    if (p_concise > 1.0f) return cli_usage_error(&spec, "--p-concise must be in [0, 1]");
    if (turns > 1000) return cli_usage_error(&spec, "--turns must be at most 1000");
    bool sys_place;
    if (strcmp(place_s, "system") == 0)
        sys_place = true;
    else if (strcmp(place_s, "first-turn") == 0)
        sys_place = false;
    else
        return cli_usage_error(&spec, "--place must be system or first-turn");
    const rlhf_backend *be = NULL;
    rlhf_status st = cli_setup(&com, &be);
    if (st != RLHF_OK) return cli_fail(spec.cmd, st);

    const int32_t NK = GATT_N_KINDS + 1; /* per kind, then all */
    rlhf_store *s = NULL;
    rlhf_tokenizer *tok = NULL;
    rlhf_model *m = NULL;
    rlhf_sampler *smp = NULL;
    gatt_lists L = {0};
    gatt_list fillers = {0}, questions = {0};
    eval_dlg *dl = NULL;
    rlhf_sample_seq *seqs = NULL;
    int32_t *outbuf = NULL;
    ds_turn *tbuf = NULL;
    int64_t *hits = NULL, *cnt = NULL; /* (NK, turns) */
    char *first_turn = NULL;
    int64_t stage = 0, ckpt_id = 0;
    char path[4096], key[512], params[512];
    gatt_synth_opts so = gatt_synth_defaults();
    so.p_concise = p_concise;
    const char *dir = lists_dir ? lists_dir : gatt_data_dir();

    RLHF_TRY_GOTO(st, gatt_lists_load_dir(&L, dir), fail);
    if (personas) RLHF_TRY_GOTO(st, gatt_lists_add_personas_csv(&L, personas, NULL), fail);
    for (int f = 0; f < 2; f++) { /* from the lists directory, else the shipped ones */
        const char *name = f == 0 ? "fillers.txt" : "questions.txt";
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (access(path, R_OK) != 0) snprintf(path, sizeof path, "%s/%s", gatt_data_dir(), name);
        RLHF_TRY_GOTO(st, gatt_list_read(f == 0 ? &fillers : &questions, path), fail);
    }
    RLHF_TRY_GOTO(st, rlhf_store_open(&s, pos[0], false), fail);
    RLHF_TRY_GOTO(st, cli_checkpoint_register(s, policy, "policy", &ckpt_id), fail);
    snprintf(key, sizeof key,
             "policy=%" PRId64 " turns=%d n=%d temperature=%.9g max_new=%d seed=%" PRIu64
             " place=%s p_concise=%.9g lists=%016" PRIx64,
             ckpt_id, (int)turns, (int)n_dlg, (double)temperature, (int)max_new, seed, place_s,
             (double)p_concise, lists_hash(&L));
    snprintf(params, sizeof params,
             "{\"policy\": %" PRId64 ", \"turns\": %d, \"n\": %d, \"temperature\": %.9g, "
             "\"max_new\": %d, \"seed\": %" PRIu64 ", \"place\": \"%s\", \"p_concise\": %.9g}",
             ckpt_id, (int)turns, (int)n_dlg, (double)temperature, (int)max_new, seed, place_s,
             (double)p_concise);
    rlhf_store_stage sg;
    bool found = false;
    RLHF_TRY_GOTO(st, rlhf_store_stage_find(s, "gatt-eval", key, &sg, &found), fail);
    if (found)
        stage = sg.id; /* done or not, it is computed again (cheap next to a training) */
    else
        RLHF_TRY_GOTO(st, rlhf_store_stage_begin(s, "gatt-eval", key, params, turns, &stage), fail);

    RLHF_TRY_GOTO(st, rlhf_tokenizer_load(&tok, tok_path, 0), fail);
    RLHF_TRY_GOTO(st, rlhf_model_load(&m, policy, be, false, 1, 0), fail);
    const rlhf_model_config *c = rlhf_model_get_config(m);
    RLHF_TRY_GOTO(st, cli_check_vocab(policy, c->vocab_size, tok_path, tok), fail);
    RLHF_TRY_GOTO(st, rlhf_sampler_init(&smp, m, n_dlg < slots ? n_dlg : slots), fail);
    dl = calloc((size_t)n_dlg, sizeof *dl);
    seqs = calloc((size_t)n_dlg, sizeof *seqs);
    outbuf = malloc((size_t)n_dlg * (size_t)max_new * sizeof *outbuf);
    tbuf = malloc(2 * (size_t)turns * sizeof *tbuf);
    hits = calloc((size_t)NK * (size_t)turns, sizeof *hits);
    cnt = calloc((size_t)NK * (size_t)turns, sizeof *cnt);
    if (!dl || !seqs || !outbuf || !tbuf || !hits || !cnt) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory for %d dialogues", (int)n_dlg);
        goto fail;
    }
    for (int32_t i = 0; i < n_dlg; i++) {
        eval_dlg *d = &dl[i];
        d->alive = true;
        d->users = calloc((size_t)turns, sizeof *d->users);
        d->answers = calloc((size_t)turns, sizeof *d->answers);
        if (!d->users || !d->answers) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto fail;
        }
        rlhf_rng rng;
        rlhf_rng_seed(&rng, seed, EVAL_STREAM + (uint64_t)i);
        RLHF_TRY_GOTO(st, gatt_instr_draw(&L, &so, &rng, &d->instr), fail);
        for (int32_t t = 1; t <= turns; t++) {
            int32_t probed;
            RLHF_TRY_GOTO(
                st,
                gatt_eval_turn(&d->instr, t, &fillers, &questions, &rng, &d->users[t - 1], &probed),
                fail);
        }
    }
    const rlhf_sample_config sc = {temperature, 0, 1.0f, max_new, rlhf_tokenizer_eos(tok)};
    if (!com.quiet) {
        printf("gatt eval: %d dialogues x %d turns, checkpoint %" PRId64 " (%s), instruction in "
               "the %s\n",
               (int)n_dlg, (int)turns, ckpt_id, policy,
               sys_place ? "system prompt" : "first user turn");
        fflush(stdout);
    }
    cli_progress prog;
    cli_progress_start(&prog, "gatt eval", "turns", turns, &com);
    for (int32_t t = 1; t <= turns; t++) {
        int32_t n = 0;
        for (int32_t i = 0; i < n_dlg; i++) {
            eval_dlg *d = &dl[i];
            if (!d->alive) continue;
            int32_t k = 0;
            for (int32_t u = 0; u < t; u++) {
                tbuf[k++] = (ds_turn){DS_ROLE_USER, d->users[u]};
                if (u < t - 1) tbuf[k++] = (ds_turn){DS_ROLE_ASSISTANT, d->answers[u]};
            }
            free(first_turn);
            first_turn = NULL;
            if (!sys_place) {
                size_t a = strlen(d->instr.text), b = strlen(d->users[0]);
                first_turn = malloc(a + b + 3);
                if (!first_turn) {
                    st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                memcpy(first_turn, d->instr.text, a);
                memcpy(first_turn + a, "\n\n", 2);
                memcpy(first_turn + a + 2, d->users[0], b + 1);
                tbuf[0].text = first_turn;
            }
            ds_dialogue view = {sys_place ? d->instr.text : NULL, tbuf, k};
            ds_chat_free(&d->prompt);
            st = ds_chat_render(tok, &view, c->seq_len - 1, &d->prompt);
            if (st == RLHF_ERR_ARG) { /* out of context from here on */
                rlhf_error_clear();
                st = RLHF_OK;
                d->alive = false;
                continue;
            }
            if (st != RLHF_OK) goto fail;
            seqs[n].prompt = d->prompt.ids;
            seqs[n].n_prompt = d->prompt.n;
            seqs[n].seed = rs_sample_seed(rs_sample_seed(seed ^ EVAL_STREAM, i, t), 0, 0);
            seqs[n].out = outbuf + (size_t)n * max_new;
            seqs[n].logp = NULL;
            n++;
        }
        if (n == 0) break;
        RLHF_TRY_GOTO(st, rlhf_sampler_run(smp, &sc, seqs, n, NULL, NULL), fail);
        int32_t q = 0;
        for (int32_t i = 0; i < n_dlg; i++) {
            eval_dlg *d = &dl[i];
            if (!d->alive) continue;
            const rlhf_sample_seq *x = &seqs[q++];
            int32_t nt = x->n_out;
            if (x->finish == RLHF_FINISH_EOS && nt > 0) nt--;
            RLHF_TRY_GOTO(st, rlhf_tokenizer_decode(tok, x->out, nt, &d->answers[t - 1]), fail);
            d->n = t;
            if (t % 2) continue;
            const int32_t ci = (t / 2 - 1) % d->instr.n;
            const gatt_constraint *pc = &d->instr.c[ci];
            const bool ok = gatt_constraint_check(pc, &L.kind[GATT_LANGUAGE], d->answers[t - 1]);
            for (int32_t r = 0; r < 2; r++) {
                const int32_t row = r == 0 ? (int32_t)pc->kind : GATT_N_KINDS;
                cnt[(size_t)row * turns + (t - 1)]++;
                hits[(size_t)row * turns + (t - 1)] += ok;
            }
        }
        cli_progress_update(&prog, t);
    }
    cli_progress_end(&prog);

    /* store, print, plot */
    const int32_t nx = turns / 2;
    RLHF_TRY_GOTO(st, rlhf_store_begin(s), fail);
    for (int32_t row = 0; row < NK && st == RLHF_OK; row++)
        for (int32_t t = 2; t <= turns && st == RLHF_OK; t += 2) {
            const int64_t nn = cnt[(size_t)row * turns + (t - 1)];
            const char *kn = row < GATT_N_KINDS ? gatt_kind_name((gatt_kind)row) : "all";
            char name[64];
            snprintf(name, sizeof name, "gatt/n/%s", kn);
            st = rlhf_store_metric_set(s, stage, t, name, (double)nn);
            if (st == RLHF_OK && nn > 0) {
                snprintf(name, sizeof name, "gatt/recall/%s", kn);
                st = rlhf_store_metric_set(s, stage, t, name,
                                           (double)hits[(size_t)row * turns + (t - 1)] / nn);
            }
        }
    if (st == RLHF_OK) st = rlhf_store_stage_progress(s, stage, turns);
    if (st == RLHF_OK) st = rlhf_store_commit(s);
    if (st != RLHF_OK) {
        rlhf_store_rollback(s);
        goto fail;
    }
    printf("recall by turn (probe answers that respect the probed constraint; n = dialogues "
           "probed)\n%-10s",
           "turn");
    for (int32_t t = 2; t <= turns; t += 2)
        printf(" %6d", (int)t);
    printf("\n");
    for (int32_t row = 0; row < NK; row++) {
        int64_t any = 0;
        for (int32_t t = 2; t <= turns; t += 2)
            any += cnt[(size_t)row * turns + (t - 1)];
        if (!any) continue;
        printf("%-10s", row < GATT_N_KINDS ? gatt_kind_name((gatt_kind)row) : "all");
        for (int32_t t = 2; t <= turns; t += 2) {
            const int64_t nn = cnt[(size_t)row * turns + (t - 1)];
            if (nn)
                printf(" %5.1f%%", 100.0 * (double)hits[(size_t)row * turns + (t - 1)] / nn);
            else
                printf(" %6s", "-");
        }
        printf("\n");
    }
    printf("%-10s", "n (all)");
    for (int32_t t = 2; t <= turns; t += 2)
        printf(" %6lld", (long long)cnt[(size_t)GATT_N_KINDS * turns + (t - 1)]);
    printf("\n");
    if (nx > 0) {
        double *xs = malloc((size_t)nx * sizeof *xs), *ys = malloc((size_t)nx * sizeof *ys);
        if (!xs || !ys) {
            free(xs);
            free(ys);
            st = RLHF_ERR(RLHF_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int32_t j = 0; j < nx; j++) {
            const int32_t t = 2 * (j + 1);
            const int64_t nn = cnt[(size_t)GATT_N_KINDS * turns + (t - 1)];
            xs[j] = t;
            ys[j] = nn ? 100.0 * (double)hits[(size_t)GATT_N_KINDS * turns + (t - 1)] / nn : NAN;
        }
        snprintf(path, sizeof path, "%s/report", rlhf_store_dir(s));
        st = rlhf_mkdirs(path);
        if (st == RLHF_OK) {
            snprintf(path, sizeof path, "%s/report/gatt_recall_ckpt%" PRId64 ".svg",
                     rlhf_store_dir(s), ckpt_id);
            const char *names[1] = {"all constraints"};
            const double *series[1] = {ys};
            st = svg_line_file(path, "Ghost Attention: instruction recall by turn", "turn",
                             "recall (%)", xs, nx, names, series, 1);
        }
        free(xs);
        free(ys);
        if (st != RLHF_OK) goto fail;
        if (!com.quiet) printf("plot: %s\n", path);
    }
    RLHF_TRY_GOTO(st, rlhf_store_stage_finish(s, stage, turns, NULL), fail);
    rc = CLI_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(spec.cmd, st);
done:
    if (dl)
        for (int32_t i = 0; i < n_dlg; i++) {
            eval_dlg *d = &dl[i];
            for (int32_t t = 0; t < turns; t++) {
                if (d->users) free(d->users[t]);
                if (d->answers) free(d->answers[t]);
            }
            free(d->users);
            free(d->answers);
            gatt_instr_free(&d->instr);
            ds_chat_free(&d->prompt);
        }
    free(dl);
    free(first_turn);
    free(hits);
    free(cnt);
    free(tbuf);
    free(outbuf);
    free(seqs);
    rlhf_sampler_free(smp);
    rlhf_model_free(m);
    rlhf_tokenizer_free(tok);
    gatt_list_free(&fillers);
    gatt_list_free(&questions);
    gatt_lists_free(&L);
    rlhf_store_close(s);
    return rc;
}
