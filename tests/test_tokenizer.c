/* test_tokenizer.c: the llama2.c tokenizer.bin reader, encoder and decoder (rlhf/tokenizer.c).
 *
 *   T1 synthetic vocabulary (no shared files): leftmost-on-ties merging, the -1e10 score floor,
 *      byte fallback, invalid UTF-8, decode rules, and the fast encoder against a naive O(n^2)
 *      greedy oracle written here from llama2.c's rule;
 *   T2 malformed files: truncated at every kind of place, bad lengths, wrong vocab_size,
 *      trailing bytes -> RLHF_ERR_FORMAT naming the file (and the token index);
 *   T3 real tokenizers (../shared/models): llama2_tokenizer.bin (32000) and
 *      aidreams260K_tok512.bin (512): known ids ("Hello world" -> 15043 3186), byte fallback,
 *      round trips on varied text (ASCII, whitespace, accents, CJK, emoji, invalid UTF-8, "",
 *      100K characters), random strings against the oracle;
 *   T4 tests/fixtures/tokenizer_llama2c.txt: ids produced by llama2.c's own encode().
 * T3/T4 need the shared files: when they are missing the test says so and exits 77 (skipped)
 * after running T1/T2, unless something failed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rlhf.h"
#include "test.h"

/* ---- helpers -----------------------------------------------------------------------------------
 */

static char tmpdir[256];
static int missing_shared = 0;

/* Like test_shared() but reports and returns NULL instead of exiting, so that the tests that
 * need no shared file still run. */
static const char *shared_or_null(const char *rel, char *buf, size_t cap) {
    const char *root = getenv("RLHF_SHARED");
    snprintf(buf, cap, "%s/%s", root ? root : "../shared", rel);
    FILE *f = fopen(buf, "rb");
    if (!f) {
        printf("SKIP part: shared file %s not found (set RLHF_SHARED)\n", buf);
        missing_shared = 1;
        return NULL;
    }
    fclose(f);
    return buf;
}

/* Escapes for messages: printable ASCII kept, the rest \xHH (truncated to 60 bytes). */
static const char *show(const char *s) {
    static char buf[400];
    size_t k = 0;
    for (size_t i = 0; s[i] && k < 300; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            buf[k++] = (char)c;
        else
            k += (size_t)snprintf(buf + k, sizeof buf - k, "\\x%02X", c);
        if (i == 60) {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "...");
            break;
        }
    }
    buf[k] = 0;
    return buf;
}

/* ---- the oracle: its own reader and llama2.c's greedy rule, O(n^2), no cleverness ---------- */

typedef struct oracle {
    int n;
    char **piece; /* NUL-terminated */
    int *len;
    float *score;
    int *tab; /* open-addressing index of the pieces (first id wins), -1 empty */
    uint32_t mask;
} oracle;

static uint32_t oracle_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < n; k++)
        h = (h ^ (unsigned char)s[k]) * 16777619u;
    return h;
}

static int oracle_find(const oracle *o, const char *s, size_t n) {
    for (uint32_t h = oracle_hash(s, n) & o->mask; o->tab[h] >= 0; h = (h + 1) & o->mask) {
        const int id = o->tab[h];
        if ((size_t)o->len[id] == n && memcmp(o->piece[id], s, n) == 0) return id;
    }
    return -1;
}

static int oracle_load(oracle *o, const char *path) {
    size_t sz;
    unsigned char *d = slurp(path, &sz);
    if (!d) return 0;
    size_t off = 4;
    int cap = 1024;
    o->n = 0;
    o->piece = malloc(cap * sizeof(char *));
    o->len = malloc(cap * sizeof(int));
    o->score = malloc(cap * sizeof(float));
    while (off + 8 <= sz) {
        if (o->n == cap) {
            cap *= 2;
            o->piece = realloc(o->piece, cap * sizeof(char *));
            o->len = realloc(o->len, cap * sizeof(int));
            o->score = realloc(o->score, cap * sizeof(float));
        }
        int32_t l;
        memcpy(&o->score[o->n], d + off, 4);
        memcpy(&l, d + off + 4, 4);
        o->piece[o->n] = malloc((size_t)l + 1);
        memcpy(o->piece[o->n], d + off + 8, (size_t)l);
        o->piece[o->n][l] = 0;
        o->len[o->n] = l;
        o->n++;
        off += 8 + (size_t)l;
    }
    free(d);
    uint32_t tcap = 1;
    while (tcap < 4u * (uint32_t)o->n)
        tcap <<= 1;
    o->mask = tcap - 1;
    o->tab = malloc(tcap * sizeof(int));
    memset(o->tab, 0xff, tcap * sizeof(int));
    for (int i = 0; i < o->n; i++) {
        if (oracle_find(o, o->piece[i], (size_t)o->len[i]) >= 0) continue;
        uint32_t h = oracle_hash(o->piece[i], (size_t)o->len[i]) & o->mask;
        while (o->tab[h] >= 0)
            h = (h + 1) & o->mask;
        o->tab[h] = i;
    }
    return 1;
}

static void oracle_free(oracle *o) {
    for (int i = 0; i < o->n; i++)
        free(o->piece[i]);
    free(o->piece);
    free(o->len);
    free(o->score);
    free(o->tab);
}

/* Returns the id count; ids must hold strlen(text) + 3. */
static int oracle_encode(const oracle *o, const char *text, int bos, int eos, int32_t *ids) {
    int n = 0;
    if (bos) ids[n++] = 1;
    const int first = n;
    size_t tl = strlen(text);
    if (tl) ids[n++] = oracle_find(o, " ", 1);
    for (size_t i = 0; i < tl;) {
        size_t j = i + 1; /* a unit: one byte plus up to three continuation bytes */
        while (j < tl && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80)
            j++;
        int id = oracle_find(o, text + i, j - i);
        if (id >= 0)
            ids[n++] = id;
        else
            for (size_t k = i; k < j; k++)
                ids[n++] = (unsigned char)text[k] + 3;
        i = j;
    }
    char buf[4096];
    for (;;) {
        float best = -1e10f;
        int bi = -1, bid = -1;
        for (int i = first; i + 1 < n; i++) {
            size_t la = (size_t)o->len[ids[i]], lb = (size_t)o->len[ids[i + 1]];
            memcpy(buf, o->piece[ids[i]], la);
            memcpy(buf + la, o->piece[ids[i + 1]], lb);
            int id = oracle_find(o, buf, la + lb);
            if (id >= 0 && o->score[id] > best) {
                best = o->score[id];
                bi = i;
                bid = id;
            }
        }
        if (bi < 0) break;
        ids[bi] = bid;
        memmove(ids + bi + 1, ids + bi + 2, (size_t)(n - bi - 2) * sizeof(int32_t));
        n--;
    }
    if (eos) ids[n++] = 2;
    return n;
}

/* Encodes with the library and the oracle and compares. */
static void check_vs_oracle(const rlhf_tokenizer *t, const oracle *o, const char *text, int bos,
                            int eos, const char *what) {
    size_t tl = strlen(text);
    int32_t *a = malloc((tl + 3) * sizeof(int32_t)), *b = malloc((tl + 3) * sizeof(int32_t));
    int32_t na = -1;
    CHECK_OK(rlhf_tokenizer_encode(t, text, bos, eos, a, (int32_t)(tl + 3), &na));
    int nb = oracle_encode(o, text, bos, eos, b);
    int same = na == nb && memcmp(a, b, (size_t)nb * sizeof(int32_t)) == 0;
    CHECKF(same, "%s: encode(\"%s\") differs from the oracle (%d vs %d ids)", what, show(text), na,
           nb);
    free(a);
    free(b);
}

/* Encode (bos) then decode must give text back; without BOS the dummy prefix stays. */
static void check_round_trip(const rlhf_tokenizer *t, const char *text, const char *what) {
    size_t tl = strlen(text);
    int32_t *ids = malloc((tl + 3) * sizeof(int32_t));
    int32_t n = -1;
    char *back = NULL;
    CHECK_OK(rlhf_tokenizer_encode(t, text, true, false, ids, (int32_t)(tl + 3), &n));
    CHECK(n >= 1 && ids[0] == 1);
    for (int32_t i = 0; i < n; i++)
        CHECKF(ids[i] >= 0 && ids[i] < rlhf_tokenizer_vocab_size(t), "%s: id %d out of range", what,
               ids[i]);
    CHECK_OK(rlhf_tokenizer_decode(t, ids, n, &back));
    CHECKF(back && strcmp(back, text) == 0, "%s: decode(encode(\"%s\")) = \"%s\"", what, show(text),
           back ? show(back) : "(null)");
    free(back);
    back = NULL;
    /* Without BOS: " " + text for non-empty text (documented in tokenizer.c). */
    CHECK_OK(rlhf_tokenizer_encode(t, text, false, false, ids, (int32_t)(tl + 3), &n));
    CHECK_OK(rlhf_tokenizer_decode(t, ids, n, &back));
    if (back) {
        if (tl == 0)
            CHECK(n == 0 && back[0] == 0);
        else
            CHECKF(back[0] == ' ' && strcmp(back + 1, text) == 0,
                   "%s: no-BOS decode of \"%s\" = \"%s\"", what, show(text), show(back));
    }
    free(back);
    free(ids);
}

/* After encoding, no adjacent pair may still be a mergeable piece (greedy fixed point). */
static void check_fixed_point(const oracle *o, const int32_t *ids, int32_t n, const char *what) {
    int bad = 0;
    char buf[4096];
    for (int32_t i = 0; i + 1 < n; i++) {
        size_t la = (size_t)o->len[ids[i]], lb = (size_t)o->len[ids[i + 1]];
        memcpy(buf, o->piece[ids[i]], la);
        memcpy(buf + la, o->piece[ids[i + 1]], lb);
        int id = oracle_find(o, buf, la + lb);
        if (id >= 0 && o->score[id] > -1e10f) bad++;
    }
    CHECKF(bad == 0, "%s: %d adjacent pairs could still merge", what, bad);
}

/* ---- T1: a synthetic vocabulary ------------------------------------------------------------ */

typedef struct {
    const char *s;
    float score;
} vpiece;

static size_t build_vocab_file(unsigned char *out, const vpiece *extra, int n_extra) {
    size_t k = 0;
    int32_t mtl = 8;
    memcpy(out + k, &mtl, 4);
    k += 4;
    char bytepiece[8];
    for (int i = 0; i < 3 + 256 + n_extra; i++) {
        const char *s;
        float sc = 0;
        if (i == 0)
            s = "<unk>";
        else if (i == 1)
            s = "\n<s>\n";
        else if (i == 2)
            s = "\n</s>\n";
        else if (i < 259) {
            snprintf(bytepiece, sizeof bytepiece, "<0x%02X>", i - 3);
            s = bytepiece;
        } else {
            s = extra[i - 259].s;
            sc = extra[i - 259].score;
        }
        int32_t l = (int32_t)strlen(s);
        memcpy(out + k, &sc, 4);
        memcpy(out + k + 4, &l, 4);
        memcpy(out + k + 8, s, (size_t)l);
        k += 8 + (size_t)l;
    }
    return k;
}

static const vpiece synth[] = {
    {" ", -100},        {"a", -100},
    {"b", -100},        {"c", -100},
    {"\xC3\xA9", -100}, /* é */
    {"aa", -1},         /* ties everywhere in "aaaa" */
    {"ab", -2},         {"ba", -2},
    {" a", -3},         {"bb", -1e10f}, /* at the floor: never merged */
    {"cc", -2e10f},                     /* below it: never merged */
    {"  ", -1e9f},                      /* above it: merged */
    {"aab", -0.5f},     {"abab", -0.25f},
    {" c", -5},         {"\xC3\xA9\xC3\xA9", -4},
};
#define N_SYNTH ((int)(sizeof synth / sizeof synth[0]))
static const int SYN_SP = 259, SYN_A = 260, SYN_B = 261, SYN_AA = 264;

static void test_synthetic(void) {
    unsigned char buf[8192];
    size_t n = build_vocab_file(buf, synth, N_SYNTH);
    char path[512];
    snprintf(path, sizeof path, "%s/synth.bin", tmpdir);
    write_bytes(path, buf, n);

    rlhf_tokenizer *t = NULL;
    CHECK_OK(rlhf_tokenizer_load_bin(&t, path, 0));
    if (!t) return;
    CHECK(rlhf_tokenizer_vocab_size(t) == 259 + N_SYNTH);
    CHECK(rlhf_tokenizer_bos(t) == 1 && rlhf_tokenizer_eos(t) == 2);
    rlhf_tokenizer *t2 = NULL;
    CHECK_OK(rlhf_tokenizer_load_bin(&t2, path, 259 + N_SYNTH));
    rlhf_tokenizer_free(t2);
    rlhf_tokenizer_free(NULL);

    int32_t ids[64], n_ids = -1;
    /* "aaa": [" ", a, a, a]; (a,a) ties at positions 1 and 2 -> leftmost: [" ", aa, a] */
    CHECK_OK(rlhf_tokenizer_encode(t, "aaa", false, false, ids, 64, &n_ids));
    CHECKF(n_ids == 3 && ids[0] == SYN_SP && ids[1] == SYN_AA && ids[2] == SYN_A,
           "aaa -> %d ids [%d %d %d]", n_ids, ids[0], ids[1], ids[2]);
    /* "bb" has score -1e10: never merged (llama2.c requires > -1e10) */
    CHECK_OK(rlhf_tokenizer_encode(t, "bb", false, false, ids, 64, &n_ids));
    CHECK(n_ids == 3 && ids[1] == SYN_B && ids[2] == SYN_B);
    /* BOS/EOS framing; empty text has no dummy prefix */
    CHECK_OK(rlhf_tokenizer_encode(t, "", true, true, ids, 64, &n_ids));
    CHECK(n_ids == 2 && ids[0] == 1 && ids[1] == 2);
    CHECK_OK(rlhf_tokenizer_encode(t, "", false, false, ids, 64, &n_ids));
    CHECK(n_ids == 0);
    /* byte fallback: 'z' unknown -> 3 + 'z'; U+00E8 è unknown -> its two bytes */
    CHECK_OK(rlhf_tokenizer_encode(t, "z\xC3\xA8", false, false, ids, 64, &n_ids));
    CHECK(n_ids == 4 && ids[0] == SYN_SP && ids[1] == 3 + 'z' && ids[2] == 3 + 0xC3 &&
          ids[3] == 3 + 0xA8);
    /* cap too small: RLHF_ERR_ARG, *n tells the size needed; cap 0 with NULL ids measures */
    CHECK(rlhf_tokenizer_encode(t, "zzzz", true, true, ids, 3, &n_ids) == RLHF_ERR_ARG);
    CHECK(n_ids == 7);
    CHECK(rlhf_tokenizer_encode(t, "zzzz", false, false, NULL, 0, &n_ids) == RLHF_ERR_ARG);
    CHECK(n_ids == 5);
    CHECK(rlhf_tokenizer_encode(t, NULL, false, false, ids, 64, &n_ids) == RLHF_ERR_ARG);

    /* pieces: after BOS the leading space goes; byte pieces become bytes; BOS/EOS are empty */
    size_t len = 99;
    const char *p = rlhf_tokenizer_piece(t, 1, SYN_SP + 8 /* " a" */, &len);
    CHECK(len == 1 && memcmp(p, "a", 1) == 0);
    p = rlhf_tokenizer_piece(t, 5, SYN_SP + 8, &len);
    CHECK(len == 2 && memcmp(p, " a", 2) == 0);
    p = rlhf_tokenizer_piece(t, -1, 3 + 0x41, &len);
    CHECK(len == 1 && p[0] == 'A');
    p = rlhf_tokenizer_piece(t, -1, 3 + 0x00, &len);
    CHECK(len == 1 && p[0] == '\0');
    p = rlhf_tokenizer_piece(t, -1, 1, &len);
    CHECK(len == 0 && p && p[0] == 0);
    p = rlhf_tokenizer_piece(t, -1, 2, &len);
    CHECK(len == 0);
    p = rlhf_tokenizer_piece(t, -1, 0, &len);
    CHECK(len == 5 && memcmp(p, "<unk>", 5) == 0);
    p = rlhf_tokenizer_piece(t, -1, 100000, &len);
    CHECK(len == 0 && p && p[0] == 0);
    p = rlhf_tokenizer_piece(t, -1, -7, NULL);
    CHECK(p && p[0] == 0);
    char *text = NULL;
    int32_t bad[2] = {5, 100000};
    CHECK(rlhf_tokenizer_decode(t, bad, 2, &text) == RLHF_ERR_ARG && text == NULL);
    CHECK(strstr(rlhf_last_error(), "ids[1]") != NULL);
    CHECK_OK(rlhf_tokenizer_decode(t, NULL, 0, &text));
    CHECK(text && text[0] == 0);
    free(text);

    /* the fast encoder against the oracle on strings with many ties */
    oracle o;
    CHECK(oracle_load(&o, path));
    const char *alphabet[] = {"a", "b",    "c",    " ",  "  ",  "\xC3\xA9",
                              "z", "\x80", "\xFF", "ab", "aab", "\n"};
    uint64_t s = 12345;
    char str[400];
    for (int iter = 0; iter < 400; iter++) {
        size_t k = 0;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int parts = (int)((s >> 33) % 60);
        for (int i = 0; i < parts; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            const char *a = alphabet[(s >> 33) % (sizeof alphabet / sizeof alphabet[0])];
            memcpy(str + k, a, strlen(a));
            k += strlen(a);
        }
        str[k] = 0;
        check_vs_oracle(t, &o, str, iter & 1, iter & 2, "synthetic");
        check_round_trip(t, str, "synthetic");
    }
    oracle_free(&o);
    rlhf_tokenizer_free(t);
    remove(path);
}

/* ---- T2: malformed files ----------------------------------------------------------------------
 */

static void expect_format(const char *path, int32_t vocab, const char *what, const char *needle) {
    rlhf_tokenizer *t = (rlhf_tokenizer *)&t; /* poison: must come back NULL */
    rlhf_status st = rlhf_tokenizer_load_bin(&t, path, vocab);
    CHECKF(st == RLHF_ERR_FORMAT, "%s: status %s (%s)", what, rlhf_status_name(st),
           rlhf_last_error());
    CHECKF(t == NULL, "%s: *out not NULL on failure", what);
    const char *base = strrchr(path, '/') + 1;
    CHECKF(strstr(rlhf_last_error(), base) != NULL, "%s: error does not name the file: %s", what,
           rlhf_last_error());
    if (needle)
        CHECKF(strstr(rlhf_last_error(), needle) != NULL, "%s: error lacks \"%s\": %s", what,
               needle, rlhf_last_error());
    if (st == RLHF_OK) rlhf_tokenizer_free(t);
}

static void test_malformed(const unsigned char *good, size_t n, int32_t vocab, const char *tag) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s_bad.bin", tmpdir, tag);
    /* walk the entries to find cut points inside token 5 */
    size_t off = 4, tok5 = 0, tok5_bytes = 0;
    for (int i = 0; off + 8 <= n; i++) {
        int32_t l;
        memcpy(&l, good + off + 4, 4);
        if (i == 5) {
            tok5 = off;
            tok5_bytes = off + 8;
        }
        off += 8 + (size_t)l;
    }
    const struct {
        size_t cut;
        const char *needle;
    } cuts[] = {
        {0, "truncated"},
        {2, "truncated"},
        {tok5 + 2, "token 5"},
        {tok5 + 6, "token 5"},
        {tok5_bytes + 1, "token 5"},
        {n - 1, "truncated"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(path, good, cuts[i].cut);
        char what[64];
        snprintf(what, sizeof what, "%s cut at %zu", tag, cuts[i].cut);
        expect_format(path, 0, what, cuts[i].needle);
        expect_format(path, vocab, what, NULL);
    }
    unsigned char *b = malloc(n + 16);
    /* negative and huge lengths of token 5 */
    int32_t neg = -3, huge = 0x7fffffff;
    memcpy(b, good, n);
    memcpy(b + tok5 + 4, &neg, 4);
    write_bytes(path, b, n);
    expect_format(path, 0, "negative length", "token 5");
    memcpy(b + tok5 + 4, &huge, 4);
    write_bytes(path, b, n);
    expect_format(path, 0, "huge length", "token 5");
    /* negative max_token_length */
    memcpy(b, good, n);
    memcpy(b, &neg, 4);
    write_bytes(path, b, n);
    expect_format(path, 0, "negative max_token_length", "max_token_length");
    /* vocab_size mismatches: fewer entries than asked, more entries than asked, extra bytes */
    write_bytes(path, good, n);
    expect_format(path, vocab + 1, "vocab too large", NULL);
    expect_format(path, vocab - 1, "vocab too small", "trailing");
    memcpy(b, good, n);
    memset(b + n, 0, 5);
    write_bytes(path, b, n + 5);
    expect_format(path, vocab, "5 extra bytes", "trailing");
    expect_format(path, 0, "5 extra bytes (vocab 0)", "token");
    /* fewer than 3 tokens */
    write_bytes(path, good, 4);
    expect_format(path, 0, "header only", "at least");
    free(b);
    /* not a file / missing / bad argument */
    rlhf_tokenizer *t = NULL;
    CHECK(rlhf_tokenizer_load_bin(&t, "/nonexistent/dir/tok.bin", 0) == RLHF_ERR_IO && !t);
    CHECK(strstr(rlhf_last_error(), "/nonexistent/dir/tok.bin") != NULL);
    CHECK(rlhf_tokenizer_load_bin(&t, tmpdir, 0) == RLHF_ERR_IO && !t);
    CHECK(rlhf_tokenizer_load_bin(&t, path, -1) == RLHF_ERR_ARG && !t);
    remove(path);
}

/* ---- T3: real tokenizers ----------------------------------------------------------------------
 */

static const char *varied[] = {
    "Hello world",
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    " leading space",
    "   three leading spaces and trailing   ",
    "tabs\tand\nnewlines\n\n\r\n",
    "\n\nHuman: Can you help me?\n\nAssistant: Sure!",
    "caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9 \xC3\x91"
    "and\xC3\xBA stra\xC3\x9F"
    "e",
    "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C (CJK)",
    "\xF0\x9F\x98\x80 \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD emoji",
    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xCE\x93\xCE\xB5\xCE\xB9\xCE\xAC",
    "\xFF\xFE invalid \x80\x80\x80\x80\x80\x80 utf8 \xE2\x82",
    "\xC3",
    "\x01\x02\x7F control",
    "<0x41> <s> </s> <unk>",
    "1234567890 3.14159 -42",
    "x",
    " ",
    "\n",
};

static void test_real(const char *path, int32_t vocab, const char *tag) {
    rlhf_tokenizer *t = NULL, *t0 = NULL;
    CHECK_OK(rlhf_tokenizer_load_bin(&t, path, vocab));
    CHECK_OK(rlhf_tokenizer_load_bin(&t0, path, 0));
    if (!t || !t0) return;
    CHECK(rlhf_tokenizer_vocab_size(t) == vocab && rlhf_tokenizer_vocab_size(t0) == vocab);
    rlhf_tokenizer_free(t0);

    for (size_t i = 0; i < sizeof varied / sizeof varied[0]; i++)
        check_round_trip(t, varied[i], tag);
    check_round_trip(t, "", tag);

    /* empty text: nothing, or just BOS/EOS; decode of [BOS] is "" */
    int32_t ids[256], n = -1;
    CHECK_OK(rlhf_tokenizer_encode(t, "", true, false, ids, 256, &n));
    CHECK(n == 1 && ids[0] == 1);

    /* byte fallback: an unknown codepoint becomes 3 + each byte. U+10FFFF (F4 8F BF BF) is a
     * noncharacter that no vocabulary holds. */
    CHECK_OK(rlhf_tokenizer_encode(t, "\xF4\x8F\xBF\xBF", false, false, ids, 256, &n));
    CHECKF(n == 5 && ids[1] == 3 + 0xF4 && ids[2] == 3 + 0x8F && ids[3] == 3 + 0xBF &&
               ids[4] == 3 + 0xBF,
           "%s: byte fallback of U+10FFFF: %d ids", tag, n);
    size_t len;
    const char *p = rlhf_tokenizer_piece(t, ids[0], ids[1], &len);
    CHECK(len == 1 && (unsigned char)p[0] == 0xF4);

    oracle o;
    CHECK(oracle_load(&o, path));
    CHECK(o.n == vocab);
    for (size_t i = 0; i < sizeof varied / sizeof varied[0]; i++)
        for (int f = 0; f < 4; f++)
            check_vs_oracle(t, &o, varied[i], f & 1, f & 2, tag);

    /* random strings over a mixed alphabet against the oracle */
    const char *alphabet[] = {"the",
                              " ",
                              "  ",
                              "a",
                              "e",
                              "in",
                              "\n",
                              ",",
                              ".",
                              "\xC3\xA9",
                              "\xE4\xBD\xA0",
                              "\xF0\x9F\x98\x80",
                              "\x80",
                              "\xFF",
                              "ing",
                              "0",
                              "Th",
                              "<0x",
                              ">",
                              "\t"};
    uint64_t s = 99;
    char str[600];
    for (int iter = 0; iter < 60; iter++) {
        size_t k = 0;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int parts = (int)((s >> 33) % 120);
        for (int i = 0; i < parts; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            const char *a = alphabet[(s >> 33) % (sizeof alphabet / sizeof alphabet[0])];
            memcpy(str + k, a, strlen(a));
            k += strlen(a);
        }
        str[k] = 0;
        check_vs_oracle(t, &o, str, 1, 0, tag);
    }

    /* 100K characters of mixed text: round trip, valid ids, greedy fixed point */
    const char *chunks[] = {"The quick brown fox jumps over the lazy dog. ",
                            "\n\n",
                            "caf\xC3\xA9 ",
                            "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E ",
                            "\xF0\x9F\x8E\x89 ",
                            "   ",
                            "Lily's 3 cats, 12 dogs! ",
                            "\t",
                            "\xFF"};
    size_t cap = 100000;
    char *big = malloc(cap + 64);
    size_t k = 0;
    for (int i = 0; k < cap; i++) {
        const char *c = chunks[(i * 7 + i / 3) % (sizeof chunks / sizeof chunks[0])];
        size_t l = strlen(c);
        memcpy(big + k, c, l);
        k += l;
    }
    big[k] = 0;
    int32_t *bids = malloc((k + 3) * sizeof(int32_t));
    int32_t bn = -1;
    CHECK_OK(rlhf_tokenizer_encode(t, big, true, true, bids, (int32_t)(k + 3), &bn));
    CHECK(bn > 2 && bn < (int32_t)k && bids[0] == 1 && bids[bn - 1] == 2);
    char *back = NULL;
    CHECK_OK(rlhf_tokenizer_decode(t, bids, bn, &back));
    CHECKF(back && strcmp(back, big) == 0, "%s: 100K round trip failed", tag);
    free(back);
    check_fixed_point(&o, bids + 1, bn - 2, tag);
    printf("%s: 100K-byte text -> %d ids\n", tag, bn);
    free(bids);
    free(big);
    oracle_free(&o);
    rlhf_tokenizer_free(t);
}

/* ---- T4: the llama2.c fixture -----------------------------------------------------------------
 */

static size_t unescape(const char *s, char *out) {
    size_t k = 0;
    for (; *s; s++) {
        if (*s != '\\') {
            out[k++] = *s;
            continue;
        }
        s++;
        if (*s == 'n')
            out[k++] = '\n';
        else if (*s == 't')
            out[k++] = '\t';
        else if (*s == 'r')
            out[k++] = '\r';
        else if (*s == '\\')
            out[k++] = '\\';
        else if (*s == 'x' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            out[k++] = (char)strtol(hex, NULL, 16);
            s += 2;
        } else
            return (size_t)-1;
    }
    out[k] = 0;
    return k;
}

static void test_fixture(rlhf_tokenizer *tl, rlhf_tokenizer *ta) {
    char path[1024];
    test_src("tests/fixtures/tokenizer_llama2c.txt", path, sizeof path);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "cannot open fixture %s (set RLHF_SRC)", path);
    if (!f) return;
    static char line[1 << 16], text[1 << 16];
    static int32_t want[1 << 14], got[1 << 14];
    int cases = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || line[0] == 0) continue;
        char *field[5];
        char *q = line;
        int nf = 0;
        for (; nf < 5; nf++) {
            field[nf] = q;
            char *tab = strchr(q, '\t');
            if (!tab) {
                nf++;
                break;
            }
            *tab = 0;
            q = tab + 1;
        }
        CHECKF(nf == 5, "fixture line %d: %d fields", lineno, nf);
        if (nf != 5) continue;
        rlhf_tokenizer *t = strcmp(field[0], "llama2") == 0 ? tl : ta;
        CHECKF(unescape(field[3], text) != (size_t)-1, "fixture line %d: bad escape", lineno);
        int nw = 0;
        for (char *tok = strtok(field[4], " "); tok; tok = strtok(NULL, " "))
            want[nw++] = atoi(tok);
        int32_t ng = -1;
        CHECK_OK(rlhf_tokenizer_encode(t, text, atoi(field[1]), atoi(field[2]), got, 1 << 14, &ng));
        int same = ng == nw && memcmp(got, want, (size_t)nw * sizeof(int32_t)) == 0;
        CHECKF(same, "fixture line %d (%s): %d ids, llama2.c gave %d", lineno, field[0], ng, nw);
        cases++;
    }
    fclose(f);
    CHECKF(cases >= 100, "fixture: only %d cases", cases);
    printf("fixture: %d llama2.c encodings compared\n", cases);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/rlhf_tok_XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_synthetic();
    {
        unsigned char buf[8192];
        size_t n = build_vocab_file(buf, synth, N_SYNTH);
        test_malformed(buf, n, 259 + N_SYNTH, "synth");
    }

    char pl[1024], pa[1024];
    const char *llama = shared_or_null("models/llama2_tokenizer.bin", pl, sizeof pl);
    const char *aid = shared_or_null("models/aidreams260K_tok512.bin", pa, sizeof pa);
    if (aid) {
        size_t n;
        unsigned char *d = slurp(aid, &n);
        CHECK(d != NULL);
        if (d) test_malformed(d, n, 512, "aidreams");
        free(d);
        test_real(aid, 512, "aidreams");
    }
    if (llama) {
        test_real(llama, 32000, "llama2");
        rlhf_tokenizer *t = NULL;
        CHECK_OK(rlhf_tokenizer_load_bin(&t, llama, 32000));
        if (t) {
            int32_t ids[8], n = -1;
            CHECK_OK(rlhf_tokenizer_encode(t, "Hello world", false, false, ids, 8, &n));
            CHECKF(n == 2 && ids[0] == 15043 && ids[1] == 3186, "Hello world -> %d ids [%d %d]", n,
                   ids[0], ids[1]);
            CHECK_OK(rlhf_tokenizer_encode(t, "Hello world", true, true, ids, 8, &n));
            CHECK(n == 4 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186 && ids[3] == 2);
            size_t len;
            const char *p = rlhf_tokenizer_piece(t, 1, 15043, &len); /* " Hello" after BOS */
            CHECK(len == 5 && memcmp(p, "Hello", 5) == 0);
            p = rlhf_tokenizer_piece(t, 15043, 3186, &len);
            CHECK(len == 6 && memcmp(p, " world", 6) == 0);
            /* 3 + '\n' = 13 is "<0x0A>" */
            p = rlhf_tokenizer_piece(t, 15043, 13, &len);
            CHECK(len == 1 && p[0] == '\n');
        }
        if (aid) {
            rlhf_tokenizer *ta = NULL;
            CHECK_OK(rlhf_tokenizer_load_bin(&ta, aid, 512));
            if (t && ta) test_fixture(t, ta);
            rlhf_tokenizer_free(ta);
        }
        rlhf_tokenizer_free(t);
    }
    rmdir(tmpdir);
    if (missing_shared && test_failures == 0) {
        printf("%s: %d checks passed, but shared files are missing: skipped\n", __FILE__,
               test_checks);
        return 77;
    }
    TEST_MAIN_END();
}
