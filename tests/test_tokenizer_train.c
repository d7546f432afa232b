/* test_tokenizer_train.c: the BPE tokenizer trainer (rlhf/tokenizer_train.c).
 *
 *   TT1 a corpus whose answer is known by hand: "ab ab ab cd" gives exactly the pieces
 *       <unk> <s> </s> <0x00>..<0xFF> ab ▁ab cd ▁cd ▁ a b c d with scores 0, -1, ... and the
 *       Llama piece types; the trainer_spec and normalizer_spec fields SentencePiece needs;
 *       the --dump-words segmentation; vocab one too large / too small -> RLHF_ERR_ARG;
 *   TT2 the merge list against a naive oracle written here (recount every pair after every
 *       merge, same tie rule) on a random ASCII corpus with spaces, punctuation and digits:
 *       digits never merge, letters never merge with punctuation, no piece crosses a word start;
 *   TT3 character coverage: a rare character is left to byte fallback; invalid UTF-8 becomes
 *       U+FFFD; runs of spaces make "▁" words;
 *   TT4 determinism (same input, same bytes) and .txt.gz read like .txt; --max-bytes;
 *       an existing output is replaced and no temporary file is left behind;
 *   TT5 bad input: missing file, corrupt / truncated / not-gzip .gz, empty corpus, vocab <= 259,
 *       unwritable output -> clear errors naming the file.
 * Needs no shared file. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "rlhf.h"
#include "test.h"

#define WS "\xE2\x96\x81" /* U+2581 */

static char tmpdir[256];

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static void write_gz(const char *path, const char *text) {
    gzFile f = gzopen(path, "wb");
    if (!f || gzwrite(f, text, (unsigned)strlen(text)) != (int)strlen(text)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    gzclose(f);
}

static const char *tpath(const char *name, char *buf) {
    snprintf(buf, 512, "%s/%s", tmpdir, name);
    return buf;
}

/* ---- a minimal protobuf reader for checking the model (tests only) --------------------------- */

typedef struct piece {
    char s[64];
    float score;
    int type;
} piece;

typedef struct model {
    piece *p;
    int n;
    int64_t ts[64]; /* trainer_spec varint fields by number (-999 absent) */
    float coverage;
    char norm_name[32];
    int64_t ns[8]; /* normalizer_spec varint fields */
    int has_charsmap;
    int ok;
} model;

static int rd_varint(const unsigned char *b, size_t n, size_t *i, uint64_t *v) {
    *v = 0;
    for (int s = 0; s < 64 && *i < n; s += 7) {
        unsigned char c = b[(*i)++];
        *v |= (uint64_t)(c & 0x7F) << s;
        if (!(c & 0x80)) return 1;
    }
    return 0;
}

/* Calls back for each field of a message: field number, wire type, varint value or bytes. */
typedef void (*field_fn)(void *ctx, int field, int wire, uint64_t v, const unsigned char *p,
                         size_t len);
static int pb_walk(const unsigned char *b, size_t n, field_fn fn, void *ctx) {
    size_t i = 0;
    while (i < n) {
        uint64_t key, v = 0;
        if (!rd_varint(b, n, &i, &key)) return 0;
        int wire = (int)(key & 7), field = (int)(key >> 3);
        const unsigned char *p = NULL;
        size_t len = 0;
        if (wire == 0) {
            if (!rd_varint(b, n, &i, &v)) return 0;
        } else if (wire == 2) {
            if (!rd_varint(b, n, &i, &v) || v > n - i) return 0;
            p = b + i;
            len = (size_t)v;
            i += len;
        } else if (wire == 5) {
            if (n - i < 4) return 0;
            p = b + i;
            len = 4;
            i += 4;
        } else {
            return 0;
        }
        fn(ctx, field, wire, v, p, len);
    }
    return 1;
}

static void piece_field(void *ctx, int field, int wire, uint64_t v, const unsigned char *p,
                        size_t len) {
    piece *pc = ctx;
    if (field == 1 && wire == 2) {
        size_t m = len < sizeof pc->s - 1 ? len : sizeof pc->s - 1;
        memcpy(pc->s, p, m);
        pc->s[m] = '\0';
    } else if (field == 2 && wire == 5) {
        uint32_t u =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&pc->score, &u, 4);
    } else if (field == 3 && wire == 0) {
        pc->type = (int)v;
    }
}

static void trainer_field(void *ctx, int field, int wire, uint64_t v, const unsigned char *p,
                          size_t len) {
    model *m = ctx;
    (void)len;
    if (wire == 0 && field < 64) m->ts[field] = (int64_t)v;
    if (field == 10 && wire == 5) {
        uint32_t u =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&m->coverage, &u, 4);
    }
}

static void norm_field(void *ctx, int field, int wire, uint64_t v, const unsigned char *p,
                       size_t len) {
    model *m = ctx;
    if (wire == 0 && field < 8) m->ns[field] = (int64_t)v;
    if (field == 1 && wire == 2 && len < sizeof m->norm_name) {
        memcpy(m->norm_name, p, len);
        m->norm_name[len] = '\0';
    }
    if (field == 2 && wire == 2) m->has_charsmap = 1;
}

static void model_field(void *ctx, int field, int wire, uint64_t v, const unsigned char *p,
                        size_t len) {
    model *m = ctx;
    (void)v;
    if (wire != 2) return;
    if (field == 1) {
        m->p = realloc(m->p, (size_t)(m->n + 1) * sizeof *m->p);
        piece *pc = &m->p[m->n++];
        memset(pc, 0, sizeof *pc);
        pc->type = 1;
        if (!pb_walk(p, len, piece_field, pc)) m->ok = 0;
    } else if (field == 2) {
        if (!pb_walk(p, len, trainer_field, m)) m->ok = 0;
    } else if (field == 3) {
        if (!pb_walk(p, len, norm_field, m)) m->ok = 0;
    }
}

static model read_model(const char *path) {
    model m;
    memset(&m, 0, sizeof m);
    for (int i = 0; i < 64; i++)
        m.ts[i] = -999;
    for (int i = 0; i < 8; i++)
        m.ns[i] = -999;
    size_t n;
    unsigned char *b = slurp(path, &n);
    if (!b) return m;
    m.ok = 1;
    if (!pb_walk(b, n, model_field, &m)) m.ok = 0;
    free(b);
    return m;
}

/* Index of the first piece after the 259 specials whose string is s, or -1. */
static int find_piece(const model *m, const char *s) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->p[i].s, s) == 0) return i;
    return -1;
}

static rlhf_status train1(const char *corpus, int32_t vocab, float cov, const char *out) {
    rlhf_tokenizer_train_opts o = rlhf_tokenizer_train_defaults();
    o.vocab_size = vocab;
    o.character_coverage = cov;
    const char *files[1] = {corpus};
    return rlhf_tokenizer_train(&o, files, 1, out, NULL);
}

/* ---- TT1 ------------------------------------------------------------------------------------- */

static void test_known(void) {
    char cp[512], mp[512], dp[512];
    tpath("known.txt", cp);
    tpath("known.model", mp);
    tpath("known.dump", dp);
    write_text(cp, "ab ab ab cd\n");
    rlhf_tokenizer_train_opts o = rlhf_tokenizer_train_defaults();
    o.vocab_size = 268; /* 259 + 5 characters + 4 merges: everything the corpus allows */
    o.character_coverage = 1.0f;
    o.dump_path = dp;
    o.dump_words = 10;
    const char *files[1] = {cp};
    rlhf_tokenizer_train_stats s;
    CHECK_OK(rlhf_tokenizer_train(&o, files, 1, mp, &s));
    CHECK(s.lines == 1 && s.words == 4 && s.unique_words == 2);
    CHECKF(s.chars_kept == 5 && s.merges == 4 && s.vocab_size == 268, "kept %d merges %d vocab %d",
           (int)s.chars_kept, (int)s.merges, (int)s.vocab_size);
    model m = read_model(mp);
    CHECK(m.ok);
    CHECKF(m.n == 268, "%d pieces", m.n);
    if (m.n == 268) {
        CHECK(strcmp(m.p[0].s, "<unk>") == 0 && m.p[0].type == 2);
        CHECK(strcmp(m.p[1].s, "<s>") == 0 && m.p[1].type == 3);
        CHECK(strcmp(m.p[2].s, "</s>") == 0 && m.p[2].type == 3);
        int bytes_ok = 1;
        for (int i = 0; i < 256; i++) {
            char want[8];
            snprintf(want, sizeof want, "<0x%02X>", i);
            if (strcmp(m.p[3 + i].s, want) != 0 || m.p[3 + i].type != 6 || m.p[3 + i].score != 0)
                bytes_ok = 0;
        }
        CHECK(bytes_ok);
        /* ties at count 3: "ab" < "▁a" bytewise ('a' < 0xE2); then "▁ab"; then "cd", "▁cd" */
        const char *want[9] = {"ab", WS "ab", "cd", WS "cd", WS, "a", "b", "c", "d"};
        for (int k = 0; k < 9; k++) {
            const piece *p = &m.p[259 + k];
            CHECKF(strcmp(p->s, want[k]) == 0 && p->score == -(float)k && p->type == 1,
                   "piece %d: '%s' %g type %d, want '%s' %d", 259 + k, p->s, (double)p->score,
                   p->type, want[k], -k);
        }
    }
    /* what SentencePiece needs to load and encode the same way */
    CHECK(m.ts[3] == 2);   /* model_type BPE */
    CHECK(m.ts[4] == 268); /* vocab_size */
    CHECK(m.ts[35] == 1);  /* byte_fallback */
    CHECK(m.ts[25] == 1);  /* split_digits */
    CHECK(m.ts[40] == 0 && m.ts[41] == 1 && m.ts[42] == 2);
    CHECK(m.ts[43] == -1); /* pad_id, sign-extended varint */
    CHECK(m.coverage == 1.0f);
    CHECK(strcmp(m.norm_name, "identity") == 0 && m.has_charsmap);
    CHECK(m.ns[3] == 1 && m.ns[4] == 0 && m.ns[5] == 1);
    free(m.p);
    size_t dn;
    char *dump = (char *)slurp(dp, &dn);
    CHECK(dump != NULL);
    if (dump) {
        dump[dn] = '\0';
        CHECKF(strcmp(dump, "3\t" WS "ab\n1\t" WS "cd\n") == 0, "dump: '%s'", dump);
        free(dump);
    }

    /* one more piece than the corpus can make; too few for the kept characters; <= 259 */
    char bad[512];
    tpath("bad.model", bad);
    rlhf_status st = train1(cp, 269, 1.0f, bad);
    CHECKF(st == RLHF_ERR_ARG && strstr(rlhf_last_error(), "too large"), "%s", rlhf_last_error());
    st = train1(cp, 263, 1.0f, bad);
    CHECKF(st == RLHF_ERR_ARG && strstr(rlhf_last_error(), "too small") &&
               strstr(rlhf_last_error(), "264"),
           "%s", rlhf_last_error());
    CHECK_OK(train1(cp, 264, 1.0f, bad)); /* characters only, no merge */
    st = train1(cp, 259, 1.0f, bad);
    CHECK(st == RLHF_ERR_ARG && strstr(rlhf_last_error(), "too small"));
    unlink(bad);
}

/* ---- TT2: naive oracle ----------------------------------------------------------------------- */

#define OR_MAXSYM 64

typedef struct or_word {
    char *sym[OR_MAXSYM]; /* piece strings (owned) */
    int n;
    int count;
} or_word;

static int nchars(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* 1 letter, 0 other ASCII, -1 "▁" (any) */
static int or_script(const char *s) {
    for (; *s; s++) {
        if ((unsigned char)*s >= 0x80) continue; /* the ▁ bytes */
        return ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') ? 1 : 0;
    }
    return -1;
}

static int or_valid(const char *a, const char *b) {
    if (nchars(a) + nchars(b) > 16) return 0;
    if (strstr(b, WS)) return 0;
    if (strpbrk(a, "0123456789") || strpbrk(b, "0123456789")) return 0;
    int sa = or_script(a), sb = or_script(b);
    return sa < 0 || sb < 0 || sa == sb;
}

/* Runs BPE by recounting everything after every merge; returns the new pieces (owned). */
static int oracle(or_word *w, int nw, char **out, int max_out) {
    int n_out = 0;
    for (;;) {
        const char *ba = NULL, *bb = NULL;
        long best = 0;
        for (int i = 0; i < nw; i++) {
            for (int k = 0; k + 1 < w[i].n; k++) {
                const char *a = w[i].sym[k], *b = w[i].sym[k + 1];
                if (!or_valid(a, b)) continue;
                long c = 0; /* count of (a, b) over all words: recount from scratch */
                for (int j = 0; j < nw; j++)
                    for (int q = 0; q + 1 < w[j].n; q++)
                        if (!strcmp(w[j].sym[q], a) && !strcmp(w[j].sym[q + 1], b)) c += w[j].count;
                if (c < best) continue;
                if (c == best && ba) {
                    char x[256], y[256];
                    snprintf(x, sizeof x, "%s%s", a, b);
                    snprintf(y, sizeof y, "%s%s", ba, bb);
                    int cmp = strcmp(x, y);
                    if (cmp > 0 || (cmp == 0 && strlen(a) >= strlen(ba))) continue;
                }
                best = c, ba = a, bb = b;
            }
        }
        if (!ba) return n_out;
        char cat[256];
        snprintf(cat, sizeof cat, "%s%s", ba, bb);
        char a[128], b[128];
        snprintf(a, sizeof a, "%s", ba);
        snprintf(b, sizeof b, "%s", bb);
        int dup = 0;
        for (int i = 0; i < n_out; i++)
            dup |= !strcmp(out[i], cat);
        if (!dup) {
            if (n_out == max_out) return n_out;
            out[n_out++] = strdup(cat);
        }
        for (int i = 0; i < nw; i++) {
            int j = 0;
            for (int k = 0; k < w[i].n;) {
                if (k + 1 < w[i].n && !strcmp(w[i].sym[k], a) && !strcmp(w[i].sym[k + 1], b)) {
                    free(w[i].sym[k]);
                    free(w[i].sym[k + 1]);
                    w[i].sym[j++] = strdup(cat);
                    k += 2;
                } else {
                    w[i].sym[j++] = w[i].sym[k++];
                }
            }
            w[i].n = j;
        }
    }
}

static void test_oracle(void) {
    /* random ASCII corpus: letters (skewed), punctuation, digits, runs of spaces */
    rlhf_rng rng;
    rlhf_rng_seed(&rng, 42, 7);
    const char *alpha = "aaaabbbcddeeeeeffghnnorrsstt";
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    for (int line = 0; line < 80; line++) {
        int nw = 1 + (int)(rlhf_rng_u32(&rng) % 7);
        for (int k = 0; k < nw; k++) {
            if (k) text[n++] = ' ';
            int len = 1 + (int)(rlhf_rng_u32(&rng) % 6);
            for (int c = 0; c < len; c++) {
                uint32_t r = rlhf_rng_u32(&rng) % 100;
                text[n++] = r < 88   ? alpha[rlhf_rng_u32(&rng) % strlen(alpha)]
                            : r < 94 ? ",.!"[rlhf_rng_u32(&rng) % 3]
                                     : (char)('0' + rlhf_rng_u32(&rng) % 10);
            }
        }
        if (rlhf_rng_u32(&rng) % 10 == 0) text[n++] = ' '; /* trailing space: a "▁" word */
        text[n++] = '\n';
    }
    text[n] = '\0';
    char cp[512], mp[512];
    tpath("oracle.txt", cp);
    tpath("oracle.model", mp);
    write_text(cp, text);

    /* oracle words: "▁" + each space-separated run (empty runs give the word "▁") */
    or_word *w = calloc(4096, sizeof *w);
    int nw = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *p = line;
        for (;;) {
            const char *e = strchr(p, ' ');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            or_word x;
            memset(&x, 0, sizeof x);
            x.count = 1;
            x.sym[x.n++] = strdup(WS);
            for (size_t i = 0; i < len && x.n < OR_MAXSYM; i++) {
                char s[2] = {p[i], 0};
                x.sym[x.n++] = strdup(s);
            }
            w[nw++] = x;
            if (!e) break;
            p = e + 1;
        }
    }
    /* distinct characters */
    int chars = 0;
    {
        int seen[256] = {0}, ws = 0;
        for (int i = 0; i < nw; i++)
            for (int k = 0; k < w[i].n; k++) {
                if (!strcmp(w[i].sym[k], WS))
                    ws = 1;
                else
                    seen[(unsigned char)w[i].sym[k][0]] = 1;
            }
        for (int c = 0; c < 256; c++)
            chars += seen[c];
        chars += ws;
    }
    char *merges[2048];
    int nm = oracle(w, nw, merges, 2048);
    CHECKF(nm > 50, "oracle made only %d merges", nm);
    printf("oracle: %d words, %d characters, %d merges\n", nw, chars, nm);
    CHECK_OK(train1(cp, 259 + chars + nm, 1.0f, mp));
    model m = read_model(mp);
    CHECK(m.ok && m.n == 259 + chars + nm);
    int mism = 0;
    for (int k = 0; k < nm && 259 + k < m.n; k++) {
        if (strcmp(m.p[259 + k].s, merges[k]) != 0 && mism++ < 5)
            fprintf(stderr, "  merge %d: trainer '%s', oracle '%s'\n", k, m.p[259 + k].s,
                    merges[k]);
    }
    CHECKF(mism == 0, "%d merges differ from the oracle", mism);
    /* properties: no multi-character piece has a digit, a "▁" past its start, or mixes letters
     * with punctuation */
    int bad = 0;
    for (int k = 259; k < m.n; k++) {
        const char *s = m.p[k].s;
        if (nchars(s) < 2) continue;
        if (strpbrk(s, "0123456789") || strstr(s + 1, WS)) bad++;
        int letters = 0, other = 0;
        for (const char *q = s; *q; q++)
            if ((unsigned char)*q < 0x80)
                ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z') ? letters++ : other++;
        if (letters && other) bad++;
    }
    CHECKF(bad == 0, "%d invalid pieces", bad);
    /* one more is too many */
    char bp[512];
    tpath("oracle_bad.model", bp);
    CHECK(train1(cp, 259 + chars + nm + 1, 1.0f, bp) == RLHF_ERR_ARG);
    free(m.p);
    for (int k = 0; k < nm; k++)
        free(merges[k]);
    for (int i = 0; i < nw; i++)
        for (int k = 0; k < w[i].n; k++)
            free(w[i].sym[k]);
    free(w);
    free(text);
}

/* ---- TT3 ------------------------------------------------------------------------------------- */

static void test_coverage(void) {
    char cp[512], mp[512];
    tpath("cov.txt", cp);
    tpath("cov.model", mp);
    /* 'a' x 999 in one word, 'z' once: coverage 0.998 keeps a and ▁ only */
    char *text = malloc(2048);
    memset(text, 'a', 999);
    strcpy(text + 999, "\nz\n");
    write_text(cp, text);
    CHECK_OK(train1(cp, 259 + 2 + 4, 0.998f, mp));
    model m = read_model(mp);
    CHECK(find_piece(&m, "z") < 0 && find_piece(&m, "a") >= 0 && find_piece(&m, WS) >= 0);
    free(m.p);
    CHECK_OK(train1(cp, 259 + 3 + 4, 1.0f, mp));
    m = read_model(mp);
    CHECK(find_piece(&m, "z") >= 0);
    /* pieces are at most 16 characters */
    int longest = 0;
    for (int i = 259; i < m.n; i++)
        longest = nchars(m.p[i].s) > longest ? nchars(m.p[i].s) : longest;
    CHECKF(longest <= 16, "longest piece %d characters", longest);
    free(m.p);
    free(text);

    /* invalid UTF-8 bytes become U+FFFD; "x  y" (two spaces) gives the words ▁x, ▁, ▁y */
    write_text(cp, "\xff\xfe x  y\n");
    rlhf_tokenizer_train_opts o = rlhf_tokenizer_train_defaults();
    o.vocab_size = 259 + 4;
    o.character_coverage = 1.0f;
    const char *files[1] = {cp};
    rlhf_tokenizer_train_stats s;
    CHECK_OK(rlhf_tokenizer_train(&o, files, 1, mp, &s));
    CHECKF(s.words == 4 && s.chars_kept == 4, "words %lld kept %d", (long long)s.words,
           (int)s.chars_kept);
    m = read_model(mp);
    CHECK(find_piece(&m, "\xEF\xBF\xBD") >= 0); /* U+FFFD */
    free(m.p);
}

/* ---- TT4 ------------------------------------------------------------------------------------- */

static void test_determinism(void) {
    char tp[512], gp[512], m1[512], m2[512], m3[512];
    tpath("det.txt", tp);
    tpath("det.txt.gz", gp);
    tpath("det1.model", m1);
    tpath("det2.model", m2);
    tpath("det3.model", m3);
    rlhf_rng rng;
    rlhf_rng_seed(&rng, 5, 1);
    const char *words[] = {"the",  "cat",   "sat", "on",         "mat", "and",
                           "then", "there", "was", "a",          "hat", "1984",
                           "café", "naïve", "—",   "\"quoted\"", "it's"};
    size_t nwords = sizeof words / sizeof *words;
    char *text = malloc(1 << 18);
    size_t n = 0;
    for (int line = 0; line < 2000; line++) {
        int k = 3 + (int)(rlhf_rng_u32(&rng) % 9);
        for (int i = 0; i < k; i++)
            n +=
                (size_t)sprintf(text + n, "%s%s", i ? " " : "", words[rlhf_rng_u32(&rng) % nwords]);
        text[n++] = '\n';
    }
    text[n] = '\0';
    write_text(tp, text);
    write_gz(gp, text);
    write_text(m1, "old content"); /* replaced atomically */
    CHECK_OK(train1(tp, 320, 1.0f, m1));
    CHECK_OK(train1(tp, 320, 1.0f, m2));
    CHECK_OK(train1(gp, 320, 1.0f, m3));
    size_t n1, n2;
    unsigned char *b1 = slurp(m1, &n1), *b2 = slurp(m2, &n2);
    CHECK(b1 && b2 && n1 == n2 && n1 > 1000 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    model a = read_model(m1), b = read_model(m3);
    int same = a.n == b.n && a.n == 320;
    for (int i = 0; same && i < a.n; i++)
        same = strcmp(a.p[i].s, b.p[i].s) == 0 && a.p[i].score == b.p[i].score;
    CHECKF(same, ".txt.gz gave other pieces than .txt (%d vs %d)", a.n, b.n);
    free(a.p);
    free(b.p);
    /* --max-bytes: only the first lines are read */
    rlhf_tokenizer_train_opts o = rlhf_tokenizer_train_defaults();
    o.vocab_size = 300;
    o.character_coverage = 1.0f;
    o.max_bytes = 1000;
    const char *files[2] = {tp, gp};
    rlhf_tokenizer_train_stats s;
    CHECK_OK(rlhf_tokenizer_train(&o, files, 2, m2, &s));
    CHECKF(s.bytes >= 1000 && s.bytes < 1200 && s.lines < 40, "bytes %lld lines %lld",
           (long long)s.bytes, (long long)s.lines);
    /* no temporary file left in the directory */
    DIR *d = opendir(tmpdir);
    int tmps = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        tmps += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    CHECK(tmps == 0);
    free(text);
}

/* ---- TT5 ------------------------------------------------------------------------------------- */

static void test_errors(void) {
    char mp[512], p[512];
    tpath("err.model", mp);
    rlhf_status st = train1(tpath("does-not-exist.txt", p), 300, 1.0f, mp);
    CHECKF(st == RLHF_ERR_IO && strstr(rlhf_last_error(), "does-not-exist.txt"), "%s",
           rlhf_last_error());

    /* a gzip file with its middle overwritten, one cut short, and text named .gz */
    char *text = malloc(200000);
    size_t n = 0;
    for (int i = 0; i < 5000; i++)
        n += (size_t)sprintf(text + n, "line %d of words\n", i * 7919);
    write_gz(tpath("corrupt.txt.gz", p), text);
    size_t gn;
    unsigned char *g = slurp(p, &gn);
    unsigned char *c = malloc(gn);
    memcpy(c, g, gn);
    for (size_t i = gn / 3; i < gn / 3 + 64; i++)
        c[i] ^= 0x5A;
    FILE *f = fopen(p, "wb");
    fwrite(c, 1, gn, f);
    fclose(f);
    st = train1(p, 300, 1.0f, mp);
    CHECKF(st == RLHF_ERR_FORMAT && strstr(rlhf_last_error(), "corrupt.txt.gz"), "%s: %s",
           rlhf_status_name(st), rlhf_last_error());
    f = fopen(tpath("truncated.txt.gz", p), "wb");
    fwrite(g, 1, gn / 2, f);
    fclose(f);
    st = train1(p, 300, 1.0f, mp);
    CHECKF(st == RLHF_ERR_FORMAT && strstr(rlhf_last_error(), "truncated.txt.gz"), "%s: %s",
           rlhf_status_name(st), rlhf_last_error());
    write_text(tpath("plain.txt.gz", p), "not gzip at all\n");
    st = train1(p, 300, 1.0f, mp);
    CHECKF(st == RLHF_ERR_FORMAT && strstr(rlhf_last_error(), "not a gzip file"), "%s",
           rlhf_last_error());
    free(g);
    free(c);
    free(text);

    /* empty corpora: a 0-byte file, only newlines, an empty .gz */
    write_text(tpath("empty.txt", p), "");
    st = train1(p, 300, 1.0f, mp);
    CHECKF(st == RLHF_ERR_FORMAT && strstr(rlhf_last_error(), "no text"), "%s", rlhf_last_error());
    write_text(tpath("newlines.txt", p), "\n\n\r\n\n");
    CHECK(train1(p, 300, 1.0f, mp) == RLHF_ERR_FORMAT);
    write_gz(tpath("empty.txt.gz", p), "");
    CHECK(train1(p, 300, 1.0f, mp) == RLHF_ERR_FORMAT);

    /* bad options and an unwritable output */
    write_text(tpath("ok.txt", p), "some text here\n");
    CHECK(train1(p, 0, 1.0f, mp) == RLHF_ERR_ARG);
    CHECK(train1(p, 300, 0.0f, mp) == RLHF_ERR_ARG);
    CHECK(train1(p, 300, 1.5f, mp) == RLHF_ERR_ARG);
    char out[600];
    snprintf(out, sizeof out, "%s/no/such/dir/x.model", tmpdir);
    st = train1(p, 259 + 9, 1.0f, out);
    CHECKF(st == RLHF_ERR_IO && strstr(rlhf_last_error(), "no/such/dir"), "%s: %s",
           rlhf_status_name(st), rlhf_last_error());
    rlhf_tokenizer_train_opts o = rlhf_tokenizer_train_defaults();
    CHECK(rlhf_tokenizer_train(&o, NULL, 0, mp, NULL) == RLHF_ERR_ARG);
    /* the failed runs wrote nothing */
    CHECK(access(mp, F_OK) != 0);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf_tt_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_known();
    test_oracle();
    test_coverage();
    test_determinism();
    test_errors();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
