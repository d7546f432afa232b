/* test_spm.c: the SentencePiece tokenizer.model reader and encoder (rlhf/spm.c via tokenizer.c).
 *
 *   spm-01  every case of tests/fixtures/spm_llama2_cases.txt (made by SentencePiece 0.1.97 from
 *           ../shared/models/llama2_tokenizer.model): exact ids, decode equal to SentencePiece's,
 *           round trip decode(encode(s)) == s for valid UTF-8 without U+2581; BOS/EOS framing
 *   spm-02  BOS 1, EOS 2, UNK 0, 32000 pieces; DATA.md: "Hello world" -> 15043 3186;
 *           rlhf_tokenizer_load tells .model from .bin by content; piece texts
 *   spm-03  corrupt files: empty, truncated at many points, bad varint, length past the end,
 *           wrong wire type, group wire type, no pieces, not BPE, ids out of range, duplicate
 *           piece, missing byte pieces, non-identity normalizer: errors naming the file
 *   spm-04  a synthetic model: merges by score with leftmost ties, UNUSED resegmentation,
 *           USER_DEFINED symbols, unknown characters without byte fallback, remove_extra_whitespaces
 *   spm-06  two small models trained by SentencePiece (tests/fixtures/spm_small_*.model): no
 *           byte fallback + remove_extra_whitespaces, and USER_DEFINED/CONTROL symbols: exact ids
 *           and decodings against their fixtures (these need no shared file)
 *   spm-05  long inputs (1 MB mixed text, 200 KB of one letter): valid, round trip
 * Skips (77) after spm-03/04 when the shared model is missing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rlhf.h"
#include "test.h"

static char tmpdir[512];

/* ---- helpers ------------------------------------------------------------------------------------ */

/* Undoes the fixture escapes (\\ \t \n \r \xHH); returns the length or -1. */
static long unescape(const char *s, char *out) {
    long k = 0;
    for (; *s; s++) {
        if (*s != '\\') {
            out[k++] = *s;
            continue;
        }
        s++;
        if (*s == 'n') out[k++] = '\n';
        else if (*s == 't') out[k++] = '\t';
        else if (*s == 'r') out[k++] = '\r';
        else if (*s == '\\') out[k++] = '\\';
        else if (*s == 'x' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            out[k++] = (char)strtol(hex, NULL, 16);
            s += 2;
        } else
            return -1;
    }
    out[k] = 0;
    return k;
}

static int parse_ids(char *s, int32_t *ids, int cap) {
    if (strcmp(s, "-") == 0) return 0;
    int n = 0;
    for (char *save = NULL, *w = strtok_r(s, " ", &save); w; w = strtok_r(NULL, " ", &save))
        if (n < cap) ids[n++] = (int32_t)atol(w);
    return n;
}

static int valid_utf8_no_2581(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3
                   : c >= 0xF0 && c < 0xF5              ? 4
                                                        : 0;
        if (l == 0 || i + l > n) return 0;
        for (size_t j = 1; j < l; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80) return 0;
        if (l == 3 && c == 0xE0 && (unsigned char)s[i + 1] < 0xA0) return 0;
        if (l == 3 && c == 0xED && (unsigned char)s[i + 1] >= 0xA0) return 0;
        if (l == 4 && c == 0xF0 && (unsigned char)s[i + 1] < 0x90) return 0;
        if (l == 4 && c == 0xF4 && (unsigned char)s[i + 1] >= 0x90) return 0;
        if (l == 3 && memcmp(s + i, "\xE2\x96\x81", 3) == 0) return 0;
        i += l;
    }
    return 1;
}

/* ---- spm-01: the SentencePiece fixture ---------------------------------------------------------- */

/* Checks every case of the fixture rel against t; round trips only when check_rt. */
static void test_fixture(rlhf_tokenizer *t, const char *rel, int min_enc, int min_dec,
                         int check_rt) {
    char path[1024];
    test_src(rel, path, sizeof path);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "cannot open fixture %s (set RLHF_SRC)", path);
    if (!f) return;
    char *line = NULL;
    size_t lcap = 0;
    const size_t big = 1 << 18;
    char *text = malloc(big), *want_dec = malloc(big);
    int32_t *want = malloc(big * sizeof(int32_t)), *got = malloc((big + 2) * sizeof(int32_t));
    int lineno = 0, n_enc = 0, n_dec = 0, n_rt = 0, mismatches = 0;
    ssize_t r;
    while ((r = getline(&line, &lcap, f)) > 0) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || line[0] == 0) continue;
        char *field[4] = {0};
        int nf = 0;
        for (char *q = line; nf < 4;) {
            field[nf++] = q;
            char *tab = strchr(q, '\t');
            if (!tab) break;
            *tab = 0;
            q = tab + 1;
        }
        if (field[0][0] == 'E' && nf == 4) {
            const long tl = unescape(field[1], text);
            const long dl = unescape(field[3], want_dec);
            CHECKF(tl >= 0 && dl >= 0, "fixture line %d: bad escape", lineno);
            if (tl < 0 || dl < 0) continue;
            const int nw = parse_ids(field[2], want, (int)big);
            int32_t ng = -1;
            CHECK_OK(rlhf_tokenizer_encode(t, text, false, false, got, (int32_t)big, &ng));
            const int same = ng == nw && memcmp(got, want, (size_t)nw * sizeof(int32_t)) == 0;
            if (!same && mismatches++ < 10) {
                int d = 0;
                while (d < ng && d < nw && got[d] == want[d])
                    d++;
                fprintf(stderr,
                        "FAIL fixture line %d: %d ids, SentencePiece %d; first difference at %d "
                        "(got %d, want %d)\n",
                        lineno, ng, nw, d, d < ng ? got[d] : -1, d < nw ? want[d] : -1);
            }
            test_checks++;
            if (!same) test_failures++;
            char *dec = NULL;
            CHECK_OK(rlhf_tokenizer_decode(t, want, nw, &dec));
            CHECKF(dec && strcmp(dec, want_dec) == 0, "fixture line %d: decode differs", lineno);
            if (dec && check_rt && valid_utf8_no_2581(text, (size_t)tl)) {
                CHECKF(strcmp(dec, text) == 0, "fixture line %d: round trip failed", lineno);
                n_rt++;
            }
            free(dec);
            /* BOS/EOS framing */
            int32_t nb = -1;
            CHECK_OK(rlhf_tokenizer_encode(t, text, true, true, got, (int32_t)big + 2, &nb));
            CHECK(nb == nw + 2 && got[0] == 1 && got[nb - 1] == 2);
            n_enc++;
        } else if (field[0][0] == 'D' && nf == 3) {
            const int nw = parse_ids(field[1], want, (int)big);
            CHECKF(unescape(field[2], want_dec) >= 0, "fixture line %d: bad escape", lineno);
            char *dec = NULL;
            CHECK_OK(rlhf_tokenizer_decode(t, want, nw, &dec));
            CHECKF(dec && strcmp(dec, want_dec) == 0, "fixture line %d: decode '%s', want '%s'",
                   lineno, dec ? dec : "(null)", want_dec);
            free(dec);
            n_dec++;
        } else {
            CHECKF(0, "fixture line %d: malformed (%d fields)", lineno, nf);
        }
    }
    fclose(f);
    free(line);
    free(text);
    free(want_dec);
    free(want);
    free(got);
    CHECKF(n_enc >= min_enc && n_dec >= min_dec, "%s: only %d encode / %d decode cases", rel,
           n_enc, n_dec);
    printf("%s: %d encodings (%d mismatches), %d round trips, %d decodings compared with "
           "SentencePiece\n",
           rel, n_enc, mismatches, n_rt, n_dec);
}

/* ---- spm-02: facts ------------------------------------------------------------------------------- */

static void test_facts(rlhf_tokenizer *t, const char *bin_path, const char *model_path) {
    CHECK(rlhf_tokenizer_vocab_size(t) == 32000);
    CHECK(rlhf_tokenizer_bos(t) == 1 && rlhf_tokenizer_eos(t) == 2 && rlhf_tokenizer_unk(t) == 0);
    int32_t ids[16], n = -1;
    CHECK_OK(rlhf_tokenizer_encode(t, "Hello world", false, false, ids, 16, &n));
    CHECKF(n == 2 && ids[0] == 15043 && ids[1] == 3186, "Hello world -> %d ids [%d %d]", n, ids[0],
           ids[1]);
    /* cap too small: *n still tells the size */
    CHECK(rlhf_tokenizer_encode(t, "Hello world", true, false, ids, 2, &n) == RLHF_ERR_ARG &&
          n == 3);
    size_t len;
    const char *p = rlhf_tokenizer_piece(t, 1, 15043, &len);
    CHECK(len == 5 && memcmp(p, "Hello", 5) == 0);
    p = rlhf_tokenizer_piece(t, 15043, 3186, &len);
    CHECK(len == 6 && memcmp(p, " world", 6) == 0);
    p = rlhf_tokenizer_piece(t, 15043, 13, &len); /* <0x0A> */
    CHECK(len == 1 && p[0] == '\n');
    p = rlhf_tokenizer_piece(t, 15043, 1, &len);
    CHECK(len == 0);
    char *dec = NULL;
    int32_t bad[2] = {15043, 32000};
    CHECK(rlhf_tokenizer_decode(t, bad, 2, &dec) == RLHF_ERR_ARG && !dec);
    CHECK(strstr(rlhf_last_error(), "ids[1]") != NULL);

    /* detection by content */
    rlhf_tokenizer *a = NULL, *b = NULL;
    CHECK_OK(rlhf_tokenizer_load(&a, model_path, 32000));
    if (bin_path) CHECK_OK(rlhf_tokenizer_load(&b, bin_path, 32000));
    if (a && b) {
        const char *s = "Once upon a time,  caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80 42";
        int32_t ia[64], ib[64], na = -1, nb = -1;
        CHECK_OK(rlhf_tokenizer_encode(a, s, true, false, ia, 64, &na));
        CHECK_OK(rlhf_tokenizer_encode(b, s, true, false, ib, 64, &nb));
        CHECK(na == nb && na > 0 && memcmp(ia, ib, (size_t)na * sizeof(int32_t)) == 0);
        /* the .bin keeps llama2.c's decode: the dummy prefix stays without BOS */
        char *tb = NULL, *ta = NULL;
        CHECK_OK(rlhf_tokenizer_decode(b, ia + 1, na - 1, &tb));
        CHECK_OK(rlhf_tokenizer_decode(a, ia + 1, na - 1, &ta));
        CHECK(tb && tb[0] == ' ' && strcmp(tb + 1, s) == 0);
        CHECK(ta && strcmp(ta, s) == 0);
        free(ta);
        free(tb);
    }
    rlhf_tokenizer *c = NULL;
    CHECK(rlhf_tokenizer_load(&c, model_path, 512) == RLHF_ERR_FORMAT && !c);
    CHECK(strstr(rlhf_last_error(), "512") != NULL);
    rlhf_tokenizer_free(a);
    rlhf_tokenizer_free(b);
}

/* ---- protobuf writer for synthetic models -------------------------------------------------------- */

typedef struct pbw {
    unsigned char d[1 << 16];
    size_t n;
} pbw;

static void w_varint(pbw *w, uint64_t v) {
    while (v >= 0x80) {
        w->d[w->n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    w->d[w->n++] = (unsigned char)v;
}
static void w_key(pbw *w, uint32_t field, uint32_t wt) { w_varint(w, (uint64_t)field << 3 | wt); }
static void w_bytes(pbw *w, uint32_t field, const void *p, size_t n) {
    w_key(w, field, 2);
    w_varint(w, n);
    memcpy(w->d + w->n, p, n);
    w->n += n;
}
static void w_int(pbw *w, uint32_t field, int64_t v) {
    w_key(w, field, 0);
    w_varint(w, (uint64_t)v);
}
static void w_piece(pbw *w, const char *s, float score, int type) {
    pbw m = {.n = 0};
    w_bytes(&m, 1, s, strlen(s));
    w_key(&m, 2, 5);
    memcpy(m.d + m.n, &score, 4);
    m.n += 4;
    if (type != 1) w_int(&m, 3, type);
    w_bytes(w, 1, m.d, m.n);
}

typedef struct synth_opts {
    int model_type;       /* 2 = BPE */
    int unk_id, bos_id;   /* trainer_spec ids */
    int byte_fallback;    /* writes the 256 byte pieces too when 1 */
    int remove_extra_ws;  /* normalizer_spec.remove_extra_whitespaces */
    int charsmap;         /* 1: a non-empty precompiled_charsmap */
    int dup;              /* 1: a duplicate piece */
    int drop_byte;        /* 1: leave out <0x41> */
} synth_opts;

static size_t synth_norm_at; /* offset of normalizer_spec in the last synth_model output */

/* A small BPE model: 0 <unk>, 1 <s>, 2 </s>, then pieces, then (byte_fallback) 256 bytes. */
static size_t synth_model(pbw *w, const synth_opts *o) {
    w->n = 0;
    w_piece(w, "<unk>", 0, 2);
    w_piece(w, "<s>", 0, 3);
    w_piece(w, "</s>", 0, 3);
    static const struct {
        const char *s;
        float score;
        int type;
    } p[] = {
        {"\xE2\x96\x81", -1, 1},      /* 3 "▁" */
        {"a", -2, 1},                 /* 4 */
        {"b", -3, 1},                 /* 5 */
        {"c", -4, 1},                 /* 6 */
        {"ab", -5, 1},                /* 7 */
        {"bc", -5, 1},                /* 8: ties with "ab": the leftmost pair wins */
        {"\xE2\x96\x81" "a", -6, 1},  /* 9 "▁a" */
        {"abc", -0.5f, 5},            /* 10 UNUSED, best score: merged, then split back */
        {"<X>", 0, 4},                /* 11 USER_DEFINED */
        {"<", -7, 1},                 /* 12 */
        {"X", -7, 1},                 /* 13 */
        {">", -7, 1},                 /* 14 */
        {"<X", -1, 1},                /* 15: would merge if <X> were not frozen */
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        w_piece(w, p[i].s, p[i].score, p[i].type);
    if (o->dup) w_piece(w, "ab", -9, 1);
    if (o->byte_fallback)
        for (int b = 0; b < 256; b++) {
            char s[8];
            snprintf(s, sizeof s, "<0x%02X>", b);
            if (!(o->drop_byte && b == 0x41)) w_piece(w, s, 0, 6);
        }
    pbw t = {.n = 0};
    if (o->model_type) w_int(&t, 3, o->model_type);
    w_int(&t, 35, o->byte_fallback);
    w_int(&t, 40, o->unk_id);
    w_int(&t, 41, o->bos_id);
    w_int(&t, 43, -1); /* pad_id -1: a 10-byte varint */
    w_bytes(w, 2, t.d, t.n);
    pbw nz = {.n = 0};
    w_bytes(&nz, 1, "identity", 8);
    if (o->charsmap) w_bytes(&nz, 2, "\x01\x02\x03\x04", 4);
    w_int(&nz, 3, 1);
    w_int(&nz, 4, o->remove_extra_ws);
    synth_norm_at = w->n;
    w_bytes(w, 3, nz.d, nz.n);
    return w->n;
}

static rlhf_status load_bytes(const void *d, size_t n, const char *name, rlhf_tokenizer **t) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    write_bytes(path, d, n);
    rlhf_status st = rlhf_tokenizer_load_model(t, path);
    remove(path);
    return st;
}

/* Loading fails with status want and an error naming the file and containing pat. */
static void expect_fail(const void *d, size_t n, rlhf_status want, const char *pat,
                        const char *what) {
    rlhf_tokenizer *t = NULL;
    rlhf_status st = load_bytes(d, n, "corrupt.model", &t);
    CHECKF(st == want && t == NULL, "%s: got %s, want %s (%s)", what, rlhf_status_name(st),
           rlhf_status_name(want), rlhf_last_error());
    CHECKF(strstr(rlhf_last_error(), "corrupt.model") != NULL, "%s: error lacks the file: %s",
           what, rlhf_last_error());
    CHECKF(!pat || strstr(rlhf_last_error(), pat) != NULL, "%s: error lacks '%s': %s", what, pat,
           rlhf_last_error());
    rlhf_tokenizer_free(t);
}

/* ---- spm-03: corrupt files ------------------------------------------------------------------------- */

static void test_corrupt(const unsigned char *real, size_t rn) {
    static pbw w, x;
    const synth_opts ok = {2, 0, 1, 1, 0, 0, 0, 0};
    size_t n = synth_model(&w, &ok);
    rlhf_tokenizer *t = NULL;
    CHECK_OK(load_bytes(w.d, n, "synth.model", &t));
    rlhf_tokenizer_free(t);
    t = NULL;

    expect_fail("", 0, RLHF_ERR_FORMAT, "empty", "empty file");
    /* truncated synthetic model at every length: never valid (the normalizer comes last, but
     * a model cut just before it would parse; skip that one length) */
    const size_t norm_start = synth_norm_at;
    int trunc_ok = 1;
    for (size_t k = 1; k < n; k++) {
        if (k == norm_start) continue;
        rlhf_status st = load_bytes(w.d, k, "corrupt.model", &t);
        if (st != RLHF_ERR_FORMAT || t) {
            trunc_ok = 0;
            fprintf(stderr, "truncated at %zu of %zu: %s\n", k, n, rlhf_status_name(st));
        }
        rlhf_tokenizer_free(t);
        t = NULL;
    }
    CHECKF(trunc_ok, "every truncation of the synthetic model is a format error");
    expect_fail(w.d, n - 5, RLHF_ERR_FORMAT, "past the end", "truncated normalizer");
    if (real) {
        int bad = 0;
        for (int k = 1; k < 64; k++) { /* truncations of the real file */
            size_t cut = rn * (size_t)k / 64;
            if (load_bytes(real, cut, "corrupt.model", &t) != RLHF_ERR_FORMAT) bad++;
            rlhf_tokenizer_free(t);
            t = NULL;
        }
        CHECKF(bad == 0, "%d truncations of the real model loaded", bad);
        expect_fail(real, 100, RLHF_ERR_FORMAT, "byte", "real model cut at 100 bytes");
    }
    /* bad varint: eleven continuation bytes as a key */
    memset(x.d, 0xFF, 11);
    expect_fail(x.d, 11, RLHF_ERR_FORMAT, "varint", "over-long varint");
    x.d[0] = 0x0A;
    x.d[1] = 0x80; /* truncated length varint */
    expect_fail(x.d, 2, RLHF_ERR_FORMAT, "truncated varint", "truncated varint");
    /* length past the end */
    x.n = 0;
    w_key(&x, 1, 2);
    w_varint(&x, 0x7FFFFFFF);
    memcpy(x.d + x.n, "\x0A\x01" "a", 3);
    expect_fail(x.d, x.n + 3, RLHF_ERR_FORMAT, "past the end", "length past the end");
    /* wrong wire type on pieces, on a score; group wire type; field 0 */
    x.n = 0;
    w_int(&x, 1, 5);
    expect_fail(x.d, x.n, RLHF_ERR_FORMAT, "wire type", "pieces as a varint");
    x.n = 0;
    {
        pbw m = {.n = 0};
        w_bytes(&m, 1, "a", 1);
        w_int(&m, 2, 3); /* score must be fixed32 */
        w_bytes(&x, 1, m.d, m.n);
    }
    expect_fail(x.d, x.n, RLHF_ERR_FORMAT, "score", "score as a varint");
    x.n = 0;
    w_key(&x, 7, 3);
    expect_fail(x.d, x.n, RLHF_ERR_FORMAT, "wire type", "group");
    x.d[0] = 0x02;
    x.d[1] = 0x00;
    expect_fail(x.d, 2, RLHF_ERR_FORMAT, "field number", "field 0");
    /* unknown fields are skipped: append some to a valid model */
    memcpy(x.d, w.d, n);
    x.n = n;
    w_int(&x, 99, 12345);
    w_bytes(&x, 100, "xyz", 3);
    w_key(&x, 101, 5);
    memcpy(x.d + x.n, "abcd", 4);
    x.n += 4;
    w_key(&x, 102, 1);
    memcpy(x.d + x.n, "abcdefgh", 8);
    x.n += 8;
    CHECK_OK(load_bytes(x.d, x.n, "unknown_fields.model", &t));
    rlhf_tokenizer_free(t);
    t = NULL;
    /* no pieces */
    x.n = 0;
    {
        pbw tr = {.n = 0};
        w_int(&tr, 3, 2);
        w_bytes(&x, 2, tr.d, tr.n);
    }
    expect_fail(x.d, x.n, RLHF_ERR_FORMAT, "no pieces", "no pieces");
    /* semantic errors */
    synth_opts o = ok;
    o.model_type = 1;
    n = synth_model(&w, &o);
    expect_fail(w.d, n, RLHF_ERR_FORMAT, "BPE", "unigram model");
    o = ok;
    o.model_type = 0; /* absent: UNIGRAM by default */
    n = synth_model(&w, &o);
    expect_fail(w.d, n, RLHF_ERR_FORMAT, "BPE", "model_type absent");
    o = ok;
    o.unk_id = 99999;
    n = synth_model(&w, &o);
    expect_fail(w.d, n, RLHF_ERR_FORMAT, "unk_id", "unk_id out of range");
    o = ok;
    o.bos_id = 4000;
    n = synth_model(&w, &o);
    expect_fail(w.d, n, RLHF_ERR_FORMAT, "bos_id", "bos_id out of range");
    o = ok;
    o.dup = 1;
    n = synth_model(&w, &o);
    expect_fail(w.d, n, RLHF_ERR_FORMAT, "duplicates", "duplicate piece");
    o = ok;
    o.drop_byte = 1;
    n = synth_model(&w, &o);
    expect_fail(w.d, n, RLHF_ERR_FORMAT, "<0x41>", "missing byte piece");
    o = ok;
    o.charsmap = 1;
    n = synth_model(&w, &o);
    expect_fail(w.d, n, RLHF_ERR_UNSUPPORTED, "charsmap", "nmt_nfkc-style normalizer");

    /* the .bin loader is not confused by a .model and vice versa */
    n = synth_model(&w, &ok);
    CHECK_OK(load_bytes(w.d, n, "synth2.model", &t));
    rlhf_tokenizer_free(t);
    t = NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/missing.model", tmpdir);
    CHECK(rlhf_tokenizer_load_model(&t, path) == RLHF_ERR_IO && !t);
    CHECK(rlhf_tokenizer_load(&t, path, 0) == RLHF_ERR_IO && !t);
}

/* ---- spm-04: synthetic model semantics ------------------------------------------------------------ */

static void expect_ids(rlhf_tokenizer *t, const char *text, const int32_t *want, int nw,
                       const char *what) {
    int32_t got[64], n = -1;
    CHECK_OK(rlhf_tokenizer_encode(t, text, false, false, got, 64, &n));
    int same = n == nw && memcmp(got, want, (size_t)nw * sizeof(int32_t)) == 0;
    CHECKF(same, "%s: got %d ids [%d %d %d %d ...]", what, n, n > 0 ? got[0] : -1,
           n > 1 ? got[1] : -1, n > 2 ? got[2] : -1, n > 3 ? got[3] : -1);
}

static void test_synthetic(void) {
    static pbw w;
    synth_opts o = {2, 0, 1, 1, 0, 0, 0, 0};
    size_t n = synth_model(&w, &o);
    rlhf_tokenizer *t = NULL;
    CHECK_OK(load_bytes(w.d, n, "synth.model", &t));
    if (!t) return;
    CHECK(rlhf_tokenizer_vocab_size(t) == 16 + 256);
    CHECK(rlhf_tokenizer_unk(t) == 0 && rlhf_tokenizer_bos(t) == 1 && rlhf_tokenizer_eos(t) == 2);
    /* "▁a" (9) forms after "▁" and "a"... but "abc" (UNUSED, best score) merges first and is
     * split back into its halves "ab"+"c" at output: "▁" "ab" "c" */
    const int32_t w1[] = {3, 7, 6};
    expect_ids(t, "abc", w1, 3, "UNUSED resegmented");
    /* "ab" and "bc" tie (-5) in "bbc"? no: "b"+"b" is no piece; in "abca" ... leftmost: "▁" a b c
     * -> "abc" unused again; use "xbca" style instead: "b" "c" "a" -> "bc" then nothing */
    const int32_t w2[] = {3, 8, 4};
    expect_ids(t, "bca", w2, 3, "bc merge");
    /* tie: "a b c" pieces "ab" and "bc" both -5 in " abab"? "▁" a b a b: ab, ab -> both left */
    const int32_t w3[] = {3, 7, 7};
    expect_ids(t, "abab", w3, 3, "leftmost tie");
    /* USER_DEFINED <X> is one frozen symbol: not "<X" + ">" */
    const int32_t w4[] = {3, 11, 4};
    expect_ids(t, "<X>a", w4, 3, "user-defined symbol");
    /* unknown character with byte fallback: "é" -> <0xC3> <0xA9> */
    int32_t bytes_id = 16; /* <0x00> */
    const int32_t w5[] = {9, bytes_id + 0xC3, bytes_id + 0xA9};
    expect_ids(t, "a\xC3\xA9", w5, 3, "byte fallback");
    char *dec = NULL;
    CHECK_OK(rlhf_tokenizer_decode(t, w5, 3, &dec));
    CHECK(dec && strcmp(dec, "a\xC3\xA9") == 0);
    free(dec);
    rlhf_tokenizer_free(t);
    t = NULL;

    /* no byte fallback: unknown characters are UNK */
    o.byte_fallback = 0;
    n = synth_model(&w, &o);
    CHECK_OK(load_bytes(w.d, n, "synth_nobytes.model", &t));
    if (t) {
        const int32_t w6[] = {9, 0};
        expect_ids(t, "a\xC3\xA9", w6, 2, "unknown without byte fallback");
        CHECK_OK(rlhf_tokenizer_decode(t, w6, 2, &dec));
        CHECK(dec && strcmp(dec, "a \xE2\x81\x87 ") == 0);
        free(dec);
    }
    rlhf_tokenizer_free(t);
    t = NULL;

    /* remove_extra_whitespaces: "  a   b  " -> "▁a▁b" */
    o.byte_fallback = 1;
    o.remove_extra_ws = 1;
    n = synth_model(&w, &o);
    CHECK_OK(load_bytes(w.d, n, "synth_ws.model", &t));
    if (t) {
        const int32_t w7[] = {9, 3, 5};
        expect_ids(t, "  a   b  ", w7, 3, "remove_extra_whitespaces");
        int32_t got[8], m = -1;
        CHECK_OK(rlhf_tokenizer_encode(t, "   ", false, false, got, 8, &m));
        CHECK(m == 0);
    }
    rlhf_tokenizer_free(t);
}

/* ---- spm-05: long inputs --------------------------------------------------------------------------- */

static void test_long(rlhf_tokenizer *t) {
    const char *chunks[] = {"The quick brown fox jumps over the lazy dog. ", "\n\n",
                            "caf\xC3\xA9 ", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E ",
                            "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 ", "   ",
                            "[INST] 12345 [/INST] ", "\t", "\xF4\x8F\xBF\xBF"};
    const size_t cap = 1 << 20;
    char *big = malloc(cap + 64);
    size_t k = 0;
    for (int i = 0; k < cap; i++) {
        const char *c = chunks[(i * 7 + i / 3) % (sizeof chunks / sizeof chunks[0])];
        memcpy(big + k, c, strlen(c));
        k += strlen(c);
    }
    big[k] = 0;
    int32_t *ids = malloc((k + 3) * sizeof(int32_t)), n = -1;
    clock_t c0 = clock();
    CHECK_OK(rlhf_tokenizer_encode(t, big, false, false, ids, (int32_t)(k + 3), &n));
    double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
    int ok = n > 0 && n < (int32_t)k;
    for (int32_t i = 0; ok && i < n; i++)
        ok = ids[i] >= 3 && ids[i] < 32000;
    CHECK(ok);
    char *back = NULL;
    CHECK_OK(rlhf_tokenizer_decode(t, ids, n, &back));
    CHECKF(back && strcmp(back, big) == 0, "1 MB round trip failed");
    free(back);
    printf("spm-05: %zu bytes -> %d ids in %.3f s\n", k, n, sec);
    /* one letter repeated: many equal-score candidates */
    memset(big, 'a', 200000);
    big[200000] = 0;
    c0 = clock();
    CHECK_OK(rlhf_tokenizer_encode(t, big, false, false, ids, (int32_t)(k + 3), &n));
    sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
    CHECK_OK(rlhf_tokenizer_decode(t, ids, n, &back));
    CHECK(back && strcmp(back, big) == 0);
    free(back);
    printf("spm-05: 200000 x 'a' -> %d ids in %.3f s\n", n, sec);
    free(ids);
    free(big);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/rlhf_spm_XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *root = getenv("RLHF_SHARED");
    char model[1024], bin[1024];
    snprintf(model, sizeof model, "%s/models/llama2_tokenizer.model", root ? root : "../shared");
    snprintf(bin, sizeof bin, "%s/models/llama2_tokenizer.bin", root ? root : "../shared");
    size_t rn = 0;
    unsigned char *real = slurp(model, &rn);

    test_corrupt(real, rn);
    test_synthetic();
    /* two small SentencePiece-trained models checked into tests/fixtures (no shared file) */
    static const struct {
        const char *model, *cases;
        int rt;
    } small[] = {{"tests/fixtures/spm_small_nobf.model", "tests/fixtures/spm_small_nobf.txt", 0},
                 {"tests/fixtures/spm_small_ud.model", "tests/fixtures/spm_small_ud.txt", 1}};
    for (int i = 0; i < 2; i++) {
        char mp[1024];
        rlhf_tokenizer *t = NULL;
        CHECK_OK(rlhf_tokenizer_load(&t, test_src(small[i].model, mp, sizeof mp), 600));
        if (t) test_fixture(t, small[i].cases, 150, 30, small[i].rt);
        rlhf_tokenizer_free(t);
    }
    if (real) {
        rlhf_tokenizer *t = NULL;
        CHECK_OK(rlhf_tokenizer_load_model(&t, model));
        if (t) {
            FILE *f = fopen(bin, "rb");
            if (f) fclose(f);
            test_facts(t, f ? bin : NULL, model);
            test_fixture(t, "tests/fixtures/spm_llama2_cases.txt", 300, 50, 1);
            test_long(t);
        }
        rlhf_tokenizer_free(t);
        free(real);
    }
    rmdir(tmpdir);
    if (!real && test_failures == 0) {
        printf("%s: %d checks passed; shared file %s not found (set RLHF_SHARED): skipped\n",
               __FILE__, test_checks, model);
        return 77;
    }
    TEST_MAIN_END();
}
