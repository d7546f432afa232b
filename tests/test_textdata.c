/* test_textdata.c: the pretraining token stream (rlhf/textdata.c).
 *
 *   td-01  rlhf_text_read: .txt and .txt.gz (also two concatenated gzip members) give the same text
 *   td-02  bad inputs are clear errors naming the file: missing, empty .gz, non-gzip .gz, corrupt
 *          gzip, truncated gzip, NUL byte (naming the line), empty / blank-only text
 *   td-03  documents: BOS before each paragraph, each document's ids = encode(paragraph); CRLF
 *          reads as LF; a long paragraph without blank lines stays one document
 *   td-04  cache: miss, hit (same tokens), a touched file still hits, an input edited in place
 *          (same size) or another tokenizer re-tokenizes, a corrupt cache is rebuilt
 *   td-05  split: deterministic, sizes, chunks spread over the stream, validation windows tile the
 *          chunks; too small a stream is an error
 *   td-06  sampling: windows are stream slices that never touch held-out tokens, the same seed
 *          gives the same windows, another seed others, starts cover the stream
 *
 * Needs ../shared/models/aidreams260K_tok512.bin (skips, exit 77, when missing);
 * ../shared/models/llama2_tokenizer.bin is used for the other-tokenizer case when present. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "rlhf.h"
#include "test.h"

static char tmpdir[256];

static const char *tpath(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
    return buf;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* gzip-compresses data into a malloc'ed buffer (one member). */
static unsigned char *gz_bytes(const char *data, size_t n, size_t *out_n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static bool err_has(const char *needle) { return strstr(rlhf_last_error(), needle) != NULL; }

static int64_t count_id(const rlhf_textdata *d, int32_t id) {
    int64_t n = 0;
    for (int64_t i = 0; i < rlhf_textdata_num_tokens(d); i++) n += rlhf_textdata_tokens(d)[i] == id;
    return n;
}

static const char *sample_text =
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n  \n\t\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n\n"
    "All:\nResolved. resolved.\n";

/* td-01 */
static void test_read(void) {
    char p1[512], p2[512], p3[512];
    const size_t n = strlen(sample_text);
    write_file(tpath(p1, sizeof p1, "a.txt"), sample_text, n);
    size_t gn;
    unsigned char *gz = gz_bytes(sample_text, n, &gn);
    write_file(tpath(p2, sizeof p2, "a.txt.gz"), gz, gn);
    /* two members: the text split in two, compressed separately, concatenated */
    size_t g1n, g2n;
    unsigned char *g1 = gz_bytes(sample_text, 20, &g1n), *g2 = gz_bytes(sample_text + 20, n - 20, &g2n);
    unsigned char *both = malloc(g1n + g2n);
    memcpy(both, g1, g1n);
    memcpy(both + g1n, g2, g2n);
    write_file(tpath(p3, sizeof p3, "two.gz"), both, g1n + g2n);
    const char *paths[] = {p1, p2, p3};
    for (int i = 0; i < 3; i++) {
        char *text = NULL;
        size_t len = 0;
        CHECK_OK(rlhf_text_read(paths[i], &text, &len));
        CHECKF(text && len == n && memcmp(text, sample_text, n) == 0 && text[n] == '\0',
               "%s: text differs (%zu bytes, want %zu)", paths[i], len, n);
        free(text);
    }
    free(gz);
    free(g1);
    free(g2);
    free(both);
}

/* Expects rlhf_text_read or rlhf_textdata_build on path to fail with st and a message naming the
 * file and containing what. */
static void expect_bad(const rlhf_tokenizer *t, const char *path, rlhf_status st, const char *what) {
    rlhf_textdata *d = (rlhf_textdata *)1;
    const char *paths[] = {path};
    rlhf_status got = rlhf_textdata_build(&d, t, paths, 1);
    CHECKF(got == st && d == NULL, "%s: got %s, want %s (%s)", path, rlhf_status_name(got),
           rlhf_status_name(st), rlhf_last_error());
    CHECKF(err_has(path) && err_has(what), "%s: message '%s' lacks the file or '%s'", path,
           rlhf_last_error(), what);
    if (got == RLHF_OK) rlhf_textdata_free(d);
}

/* td-02 */
static void test_bad_inputs(const rlhf_tokenizer *t) {
    char p[512];
    expect_bad(t, tpath(p, sizeof p, "missing.txt"), RLHF_ERR_IO, "cannot open");
    write_file(tpath(p, sizeof p, "empty.txt.gz"), "", 0);
    expect_bad(t, p, RLHF_ERR_FORMAT, "not gzip");
    write_file(tpath(p, sizeof p, "plain.txt.gz"), "hello\n", 6);
    expect_bad(t, p, RLHF_ERR_FORMAT, "not gzip");

    /* a longer text so that the deflate stream has a body to damage */
    size_t n = 0, cap = 200000;
    char *big = malloc(cap);
    for (int i = 0; n + 64 < cap; i++) n += (size_t)sprintf(big + n, "line %d of the test text, %x\n", i, i * 2654435761u);
    size_t gn;
    unsigned char *gz = gz_bytes(big, n, &gn);
    write_file(tpath(p, sizeof p, "trunc.txt.gz"), gz, gn / 2);
    expect_bad(t, p, RLHF_ERR_FORMAT, "truncated");
    unsigned char *bad = malloc(gn);
    memcpy(bad, gz, gn);
    for (size_t i = gn / 3; i < gn / 3 + 16; i++) bad[i] ^= 0x5a;
    write_file(tpath(p, sizeof p, "corrupt.txt.gz"), bad, gn);
    expect_bad(t, p, RLHF_ERR_FORMAT, "corrupt gzip");
    memcpy(bad, gz, gn);
    bad[gn - 6] ^= 0xff; /* the CRC-32 trailer */
    write_file(tpath(p, sizeof p, "crc.txt.gz"), bad, gn);
    expect_bad(t, p, RLHF_ERR_FORMAT, "corrupt gzip");
    free(gz);
    free(bad);
    free(big);

    write_file(tpath(p, sizeof p, "nul.txt"), "line one\nline two\nbad \0 byte\n", 29);
    expect_bad(t, p, RLHF_ERR_FORMAT, ":3: NUL byte");
    write_file(tpath(p, sizeof p, "empty.txt"), "", 0);
    expect_bad(t, p, RLHF_ERR_FORMAT, "no text");
    write_file(tpath(p, sizeof p, "blank.txt"), "\n  \n\t\r\n\n", 7);
    expect_bad(t, p, RLHF_ERR_FORMAT, "no text");
    size_t gz_empty_n;
    unsigned char *gz_empty = gz_bytes("", 0, &gz_empty_n);
    write_file(tpath(p, sizeof p, "nothing.txt.gz"), gz_empty, gz_empty_n);
    expect_bad(t, p, RLHF_ERR_FORMAT, "no text");
    free(gz_empty);

    /* no files at all */
    rlhf_textdata *d = NULL;
    CHECK(rlhf_textdata_build(&d, t, NULL, 0) == RLHF_ERR_ARG && d == NULL);
}

/* td-03 */
static void test_documents(const rlhf_tokenizer *t) {
    char p1[512], p2[512];
    write_file(tpath(p1, sizeof p1, "docs.txt"), sample_text, strlen(sample_text));
    const char *paras[] = {"First Citizen:\nBefore we proceed any further, hear me speak.",
                           "All:\nSpeak, speak.",
                           "First Citizen:\nYou are all resolved rather to die than to famish?",
                           "All:\nResolved. resolved."};
    int32_t want[512], nw = 0;
    for (int i = 0; i < 4; i++) {
        int32_t k = 0;
        CHECK_OK(rlhf_tokenizer_encode(t, paras[i], true, false, want + nw, 512 - nw, &k));
        nw += k;
    }
    const char *paths[] = {p1};
    rlhf_textdata *d = NULL;
    CHECK_OK(rlhf_textdata_build(&d, t, paths, 1));
    if (!d) return;
    CHECKF(rlhf_textdata_num_docs(d) == 4, "docs %lld", (long long)rlhf_textdata_num_docs(d));
    CHECKF(rlhf_textdata_num_tokens(d) == nw &&
               memcmp(rlhf_textdata_tokens(d), want, (size_t)nw * 4) == 0,
           "stream of %lld tokens differs from the %d of the paragraphs encoded one by one",
           (long long)rlhf_textdata_num_tokens(d), nw);
    CHECK(rlhf_textdata_tokens(d)[0] == rlhf_tokenizer_bos(t));
    CHECK(count_id(d, rlhf_tokenizer_bos(t)) == 4);

    /* the same text with CRLF line ends gives the same stream */
    size_t n = strlen(sample_text), k = 0;
    char *crlf = malloc(2 * n);
    for (size_t i = 0; i < n; i++) {
        if (sample_text[i] == '\n') crlf[k++] = '\r';
        crlf[k++] = sample_text[i];
    }
    write_file(tpath(p2, sizeof p2, "crlf.txt"), crlf, k);
    free(crlf);
    rlhf_textdata *d2 = NULL;
    paths[0] = p2;
    CHECK_OK(rlhf_textdata_build(&d2, t, paths, 1));
    CHECK(d2 && rlhf_textdata_checksum(d2) == rlhf_textdata_checksum(d));
    rlhf_textdata_free(d2);

    /* two files: the streams concatenate */
    const char *two[] = {p1, p1};
    CHECK_OK(rlhf_textdata_build(&d2, t, two, 2));
    CHECK(d2 && rlhf_textdata_num_tokens(d2) == 2 * nw && rlhf_textdata_num_docs(d2) == 8);
    if (d2)
        CHECK(memcmp(rlhf_textdata_tokens(d2) + nw, want, (size_t)nw * 4) == 0);
    rlhf_textdata_free(d2);

    /* a 60 kB paragraph of one-sentence lines: one document, one BOS, pieces in order */
    size_t cap = 70000, m = 0;
    char *lines = malloc(cap);
    for (int i = 0; m < 60000; i++) m += (size_t)sprintf(lines + m, "Sentence number %d is here.\n", i);
    write_file(tpath(p2, sizeof p2, "lines.txt"), lines, m);
    CHECK_OK(rlhf_textdata_build(&d2, t, paths, 1));
    if (d2) {
        CHECK(rlhf_textdata_num_docs(d2) == 1 && count_id(d2, rlhf_tokenizer_bos(t)) == 1);
        char *back = NULL;
        CHECK_OK(rlhf_tokenizer_decode(t, rlhf_textdata_tokens(d2),
                                       (int32_t)rlhf_textdata_num_tokens(d2), &back));
        /* every piece after the first starts with the dummy-prefix space after its newline */
        CHECKF(back && strncmp(back, "Sentence number 0 is here.\nSentence number 1 is", 47) == 0,
               "decoded text starts '%.40s'", back ? back : "(null)");
        CHECK(back && strstr(back, "Sentence number 1500 is here."));
        free(back);
    }
    rlhf_textdata_free(d2);
    free(lines);
    rlhf_textdata_free(d);
}

/* td-04 */
static void test_cache(const rlhf_tokenizer *t, const char *tok_path, const char *tok2_path) {
    char p1[512], p2[512], cache[512];
    write_file(tpath(p1, sizeof p1, "c1.txt"), sample_text, strlen(sample_text));
    const char *other = "Another file.\n\nWith two paragraphs.\n";
    write_file(tpath(p2, sizeof p2, "c2.txt"), other, strlen(other));
    tpath(cache, sizeof cache, "tokens.bin");
    const char *paths[] = {p1, p2};
    rlhf_textdata *ref = NULL, *d = NULL;
    CHECK_OK(rlhf_textdata_build(&ref, t, paths, 2));
    if (!ref) return;
    rlhf_textdata_cache how = RLHF_TEXTDATA_CACHE_HIT;

    CHECK_OK(rlhf_textdata_open(&d, t, tok_path, paths, 2, cache, &how));
    CHECKF(how == RLHF_TEXTDATA_CACHE_MISSING, "first open: %s", rlhf_textdata_cache_name(how));
    CHECK(d && rlhf_textdata_checksum(d) == rlhf_textdata_checksum(ref));
    rlhf_textdata_free(d);
    d = NULL;
    CHECK(access(cache, F_OK) == 0);

    CHECK_OK(rlhf_textdata_open(&d, t, tok_path, paths, 2, cache, &how));
    CHECKF(how == RLHF_TEXTDATA_CACHE_HIT, "second open: %s", rlhf_textdata_cache_name(how));
    CHECK(d && rlhf_textdata_num_tokens(d) == rlhf_textdata_num_tokens(ref) &&
          rlhf_textdata_num_docs(d) == rlhf_textdata_num_docs(ref) &&
          memcmp(rlhf_textdata_tokens(d), rlhf_textdata_tokens(ref),
                 (size_t)rlhf_textdata_num_tokens(ref) * 4) == 0);
    rlhf_textdata_free(d);
    d = NULL;

    /* a new mtime alone: still a hit */
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    utimensat(AT_FDCWD, p1, ts, 0);
    CHECK_OK(rlhf_textdata_open(&d, t, tok_path, paths, 2, cache, &how));
    CHECKF(how == RLHF_TEXTDATA_CACHE_HIT, "after touch: %s", rlhf_textdata_cache_name(how));
    rlhf_textdata_free(d);
    d = NULL;

    /* the input edited in place, same size: re-tokenized, and the new stream is the new text's */
    char *edited = malloc(strlen(sample_text) + 1);
    strcpy(edited, sample_text);
    memcpy(edited, "Second", 6); /* "First Citizen" -> "SecondCitizen": same length */
    write_file(p1, edited, strlen(edited));
    CHECK_OK(rlhf_textdata_open(&d, t, tok_path, paths, 2, cache, &how));
    CHECKF(how == RLHF_TEXTDATA_CACHE_STALE, "after edit: %s", rlhf_textdata_cache_name(how));
    CHECK(d && rlhf_textdata_checksum(d) != rlhf_textdata_checksum(ref));
    rlhf_textdata *fresh = NULL;
    CHECK_OK(rlhf_textdata_build(&fresh, t, paths, 2));
    CHECK(d && fresh && rlhf_textdata_checksum(d) == rlhf_textdata_checksum(fresh));
    rlhf_textdata_free(fresh);
    rlhf_textdata_free(d);
    d = NULL;

    /* the inputs in another order: re-tokenized */
    const char *swapped[] = {p2, p1};
    CHECK_OK(rlhf_textdata_open(&d, t, tok_path, swapped, 2, cache, &how));
    CHECKF(how == RLHF_TEXTDATA_CACHE_STALE, "swapped: %s", rlhf_textdata_cache_name(how));
    rlhf_textdata_free(d);
    d = NULL;

    /* a corrupt cache (one byte flipped in the tokens): rebuilt, equal to a fresh build */
    CHECK_OK(rlhf_textdata_open(&d, t, tok_path, paths, 2, cache, &how));
    rlhf_textdata_free(d);
    d = NULL;
    FILE *f = fopen(cache, "r+b");
    if (f) {
        fseek(f, -12, SEEK_END);
        int c = fgetc(f);
        fseek(f, -12, SEEK_END);
        fputc(c ^ 0x40, f);
        fclose(f);
    }
    CHECK_OK(rlhf_textdata_open(&d, t, tok_path, paths, 2, cache, &how));
    CHECKF(how == RLHF_TEXTDATA_CACHE_CORRUPT, "flipped byte: %s", rlhf_textdata_cache_name(how));
    CHECK_OK(rlhf_textdata_build(&fresh, t, paths, 2));
    CHECK(d && fresh && rlhf_textdata_checksum(d) == rlhf_textdata_checksum(fresh));
    rlhf_textdata_free(fresh);
    rlhf_textdata_free(d);
    d = NULL;
    /* a truncated cache: rebuilt too */
    CHECK(truncate(cache, 30) == 0);
    CHECK_OK(rlhf_textdata_open(&d, t, tok_path, paths, 2, cache, &how));
    CHECKF(how == RLHF_TEXTDATA_CACHE_CORRUPT, "truncated: %s", rlhf_textdata_cache_name(how));
    rlhf_textdata_free(d);
    d = NULL;

    /* another tokenizer: re-tokenized */
    if (tok2_path) {
        rlhf_tokenizer *t2 = NULL;
        CHECK_OK(rlhf_tokenizer_load_bin(&t2, tok2_path, 0));
        if (t2) {
            CHECK_OK(rlhf_textdata_open(&d, t2, tok2_path, paths, 2, cache, &how));
            CHECKF(how == RLHF_TEXTDATA_CACHE_STALE, "other tokenizer: %s",
                   rlhf_textdata_cache_name(how));
            rlhf_textdata_free(d);
            d = NULL;
        }
        rlhf_tokenizer_free(t2);
    } else {
        printf("note: llama2_tokenizer.bin absent, other-tokenizer case not run\n");
    }
    /* a missing input is an error naming it, cache or not */
    char missing[512];
    const char *bad[] = {p1, tpath(missing, sizeof missing, "nope.txt")};
    CHECK(rlhf_textdata_open(&d, t, tok_path, bad, 2, cache, &how) == RLHF_ERR_IO && !d);
    CHECK(err_has("nope.txt"));
    free(edited);
    rlhf_textdata_free(ref);
}

/* A stream of n tokens from repeated text. */
static rlhf_textdata *make_stream(const rlhf_tokenizer *t, int64_t min_tokens) {
    char p[512];
    size_t cap = (size_t)min_tokens * 4 + 1000, n = 0;
    char *text = malloc(cap);
    for (int i = 0; n + 200 < cap; i++)
        n += (size_t)sprintf(text + n, "Paragraph %d: the quick brown fox %d jumps.\nOver %d dogs.\n\n",
                             i, i * 7, i % 13);
    write_file(tpath(p, sizeof p, "stream.txt"), text, n);
    free(text);
    const char *paths[] = {p};
    rlhf_textdata *d = NULL;
    CHECK_OK(rlhf_textdata_build(&d, t, paths, 1));
    return d;
}

/* td-05 */
static void test_split(const rlhf_tokenizer *t) {
    rlhf_textdata *d = make_stream(t, 200000);
    if (!d) return;
    const int64_t N = rlhf_textdata_num_tokens(d);
    CHECKF(N > 150000, "stream of %lld tokens", (long long)N);
    const int32_t W = 65, T = W - 1;
    CHECK_OK(rlhf_textdata_split(d, 0.05, 4096, W));
    const int64_t nval = rlhf_textdata_val_tokens(d), ntrain = rlhf_textdata_train_tokens(d);
    const int64_t K = ((1024 + T - 1) / T) * T + 1; /* chunk length */
    CHECKF(nval >= (int64_t)(0.05 * (double)N) && nval < (int64_t)(0.05 * (double)N) + K,
           "val %lld tokens for 5%% of %lld", (long long)nval, (long long)N);
    CHECK(nval % K == 0);
    CHECK(nval + ntrain == N);
    const int64_t nw = rlhf_textdata_val_count(d);
    CHECK(nw == nval / K * ((K - 1) / T));
    int32_t *a = malloc((size_t)W * 4), *b = malloc((size_t)W * 4);
    /* validation windows: held out, tiling each chunk with stride T (consecutive windows of a
     * chunk share exactly one token) */
    int64_t first_pos = -1, held = 0;
    for (int64_t p = 0; p < N; p++) held += rlhf_textdata_is_val(d, p);
    CHECK(held == nval);
    for (int64_t p = 0; p < N && first_pos < 0; p++)
        if (rlhf_textdata_is_val(d, p)) first_pos = p;
    rlhf_textdata_val_window(d, 0, a);
    CHECK(first_pos >= 0 && memcmp(a, rlhf_textdata_tokens(d) + first_pos, (size_t)W * 4) == 0);
    rlhf_textdata_val_window(d, 1, b);
    CHECK(a[T] == b[0] && memcmp(b, rlhf_textdata_tokens(d) + first_pos + T, (size_t)W * 4) == 0);
    /* chunks are spread: held-out tokens in each fifth of the stream */
    for (int q = 0; q < 5; q++) {
        int64_t in = 0;
        for (int64_t p = N * q / 5; p < N * (q + 1) / 5; p++) in += rlhf_textdata_is_val(d, p);
        CHECKF(in > 0, "no held-out tokens in fifth %d", q);
    }
    /* deterministic: the same split again gives the same windows */
    int32_t *all = malloc((size_t)(nw * W) * 4);
    for (int64_t i = 0; i < nw; i++) rlhf_textdata_val_window(d, i, all + i * W);
    CHECK_OK(rlhf_textdata_split(d, 0.05, 4096, W));
    bool same = rlhf_textdata_val_count(d) == nw;
    for (int64_t i = 0; same && i < nw; i++) {
        rlhf_textdata_val_window(d, i, a);
        same = memcmp(a, all + i * W, (size_t)W * 4) == 0;
    }
    CHECK(same);
    free(all);
    /* the minimum applies when the fraction is small */
    CHECK_OK(rlhf_textdata_split(d, 0.0, 4096, W));
    CHECK(rlhf_textdata_val_tokens(d) >= 4096 && rlhf_textdata_val_tokens(d) < 4096 + K);
    /* no held-out data at all when both are 0 */
    CHECK_OK(rlhf_textdata_split(d, 0.0, 0, W));
    CHECK(rlhf_textdata_val_tokens(d) == 0 && rlhf_textdata_val_count(d) == 0);
    /* too much held out, bad arguments */
    CHECK(rlhf_textdata_split(d, 0.0, N, W) == RLHF_ERR_ARG && err_has("too few"));
    CHECK(rlhf_textdata_split(d, 0.7, 0, W) == RLHF_ERR_ARG);
    CHECK(rlhf_textdata_split(d, 0.01, 0, 1) == RLHF_ERR_ARG);
    free(a);
    free(b);
    rlhf_textdata_free(d);

    /* a tiny stream cannot hold 4096 validation tokens */
    char p[512];
    write_file(tpath(p, sizeof p, "small.txt"), sample_text, strlen(sample_text));
    const char *paths[] = {p};
    CHECK_OK(rlhf_textdata_build(&d, t, paths, 1));
    CHECK(d && rlhf_textdata_split(d, 0.01, 4096, W) == RLHF_ERR_ARG);
    rlhf_textdata_free(d);
}

/* td-06 */
static void test_sampling(const rlhf_tokenizer *t) {
    rlhf_textdata *d = make_stream(t, 200000);
    if (!d) return;
    const int64_t N = rlhf_textdata_num_tokens(d);
    const int32_t W = 129;
    CHECK_OK(rlhf_textdata_split(d, 0.02, 4096, W));
    int32_t *a = malloc((size_t)W * 4), *b = malloc((size_t)W * 4);
    rlhf_rng r1, r2, r3;
    rlhf_rng_seed(&r1, 7, 3);
    rlhf_rng_seed(&r2, 7, 3);
    rlhf_rng_seed(&r3, 8, 3);
    int64_t touched = 0, mismatch = 0, differs = 0, bad_slice = 0;
    int hist[10] = {0};
    const int n = 3000;
    for (int i = 0; i < n; i++) {
        int64_t s1 = rlhf_textdata_sample(d, &r1, a);
        int64_t s2 = rlhf_textdata_sample(d, &r2, b);
        int32_t c[129];
        int64_t s3 = rlhf_textdata_sample(d, &r3, c);
        mismatch += s1 != s2 || memcmp(a, b, (size_t)W * 4) != 0;
        differs += s1 != s3;
        bad_slice += s1 < 0 || s1 + W > N || memcmp(a, rlhf_textdata_tokens(d) + s1, (size_t)W * 4) != 0;
        for (int64_t p = s1; p < s1 + W; p++) touched += rlhf_textdata_is_val(d, p);
        hist[s1 * 10 / N]++;
    }
    CHECKF(bad_slice == 0, "%lld windows are not slices of the stream", (long long)bad_slice);
    CHECKF(touched == 0, "%lld sampled tokens are held out", (long long)touched);
    CHECKF(mismatch == 0, "same seed, %lld different windows", (long long)mismatch);
    CHECKF(differs > n * 9 / 10, "another seed gave only %lld different starts", (long long)differs);
    /* roughly uniform: each tenth of the stream gets 300 +- 100 of 3000 starts */
    for (int q = 0; q < 10; q++) CHECKF(hist[q] > 200 && hist[q] < 400, "tenth %d: %d starts", q, hist[q]);
    free(a);
    free(b);
    rlhf_textdata_free(d);
}

int main(void) {
    char tok_buf[1024], tok2_buf[1024];
    const char *tok_path = test_shared("models/aidreams260K_tok512.bin", tok_buf, sizeof tok_buf);
    const char *root = getenv("RLHF_SHARED");
    snprintf(tok2_buf, sizeof tok2_buf, "%s/models/llama2_tokenizer.bin", root ? root : "../shared");
    const char *tok2_path = access(tok2_buf, R_OK) == 0 ? tok2_buf : NULL;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf_test_textdata_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    rlhf_tokenizer *t = NULL;
    CHECK_OK(rlhf_tokenizer_load_bin(&t, tok_path, 0));
    if (!t) TEST_MAIN_END();
    test_read();
    test_bad_inputs(t);
    test_documents(t);
    test_cache(t, tok_path, tok2_path);
    test_split(t);
    test_sampling(t);
    rlhf_tokenizer_free(t);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
