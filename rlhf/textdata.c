/* textdata.c: plain-text corpora as one token stream, for pretraining (and any later stage that
 * trains on raw text): reading .txt / .txt.gz files, cutting them into documents, tokenizing once
 * (in parallel), caching the stream on disk, a deterministic validation split of whole contiguous
 * chunks, and random training windows drawn with the caller's RNG.
 *
 * Documents. A file's text ("\r\n" read as "\n") is cut at blank lines (lines of only spaces,
 * tabs or '\r'): each paragraph is one document, its lines kept joined by '\n' exactly as written.
 * The stream is BOS doc BOS doc ... (BOS before every document). A paragraph longer than
 * PIECE_MAX bytes (a file with no blank lines, such as one sentence a line) is encoded in pieces
 * cut after a '\n' (else after a space, else at a UTF-8 boundary); the pieces follow each other
 * without a BOS, the cut newline kept at the end of its piece. Every piece gets the tokenizer's
 * dummy-prefix space, as SentencePiece gives every encoded string.
 *
 * Cache file (little-endian), written to PATH.tmp, fsynced, renamed:
 *   "RLHFTOKS" | u32 version | u32 n_files | i32 vocab | u32 tokenizer-file CRC | i64 its size |
 *   u32 probe CRC (ids of a fixed probe text: the encoder's behaviour) | u32 0 |
 *   n_files x (i64 size, u32 CRC-32 of the raw file bytes, u32 0) |
 *   i64 n_tokens | i64 n_docs | i64 n_bytes (text bytes after decompression) |
 *   n_tokens x i32 | u32 CRC-32 of all preceding bytes.
 * Inputs are compared by size and content CRC (not by path or mtime): a file edited in place,
 * even within the same second, re-tokenizes; a renamed or touched one does not.
 *
 * Split. With W = window tokens (seq_len + 1) and T = W - 1, validation chunks hold
 * K = m*T + 1 tokens (m = ceil(1024 / T), so K >= 1025 and K tiles into m windows with stride T).
 * nv = ceil(max(val_fraction * N, min_val_tokens) / K) chunks are centred in nv equal regions of
 * the stream, so the held-out text samples every input file. Training windows are drawn uniformly
 * among all W-token windows lying wholly inside a training gap, so none touches held-out tokens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "rlhf.h"

#define TD_MAGIC     "RLHFTOKS"
#define TD_VERSION   1u
#define PIECE_MAX    8192 /* bytes of text per tokenizer call */
#define TD_MAX_FILES 4096

typedef struct td_segment {
    int64_t start, len; /* a training gap [start, start+len) */
    int64_t cum;        /* window starts in the segments before this one */
} td_segment;

struct rlhf_textdata {
    int32_t *tokens; /* (n_tokens) */
    int64_t n_tokens, n_docs, n_bytes;
    uint32_t crc; /* CRC-32 of the token bytes */
    /* split (rlhf_textdata_split) */
    int32_t window;  /* W; 0 = no split yet */
    int64_t *val_start; /* (n_val) chunk starts */
    int64_t n_val, val_len; /* chunks and their length K */
    td_segment *seg;        /* (n_seg) training gaps */
    int64_t n_seg, train_starts, train_tokens;
};

/* ---- small helpers --------------------------------------------------------------------------- */

static uint32_t crc_bytes(uint32_t crc, const void *p, size_t n) {
    uLong c = crc;
    const unsigned char *b = p;
    while (n) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Reads the raw bytes of path (malloc'ed, one spare byte). */
static rlhf_status read_raw(const char *path, unsigned char **data, size_t *size) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    rlhf_status st = RLHF_OK;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    *size = (size_t)sb.st_size;
    *data = malloc(*size + 1);
    if (!*data) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, *size);
        goto done;
    }
    if (*size && fread(*data, 1, *size, f) != *size) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: read failed", path);
        goto done;
    }
done:
    fclose(f);
    if (st != RLHF_OK) {
        free(*data);
        *data = NULL;
    }
    return st;
}

/* Inflates gzip data (one or more members) into a malloc'ed, NUL-terminated buffer. */
static rlhf_status gunzip(const char *path, const unsigned char *in, size_t n_in, char **out,
                          size_t *n_out) {
    *out = NULL;
    size_t cap = n_in * 4 + 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK) {
        free(buf);
        return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot start zlib", path);
    }
    rlhf_status st = RLHF_OK;
    size_t pos = 0;
    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, ncap);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t avail_in = n_in - pos;
        z.next_in = (unsigned char *)in + pos;
        z.avail_in = avail_in > (1u << 30) ? (1u << 30) : (uInt)avail_in;
        z.next_out = (unsigned char *)buf + len;
        z.avail_out = (uInt)((cap - len - 1) > (1u << 30) ? (1u << 30) : (cap - len - 1));
        uInt before_in = z.avail_in, before_out = z.avail_out;
        int zr = inflate(&z, Z_NO_FLUSH);
        pos += before_in - z.avail_in;
        len += before_out - z.avail_out;
        if (zr == Z_STREAM_END) {
            /* another gzip member may follow (concatenated .gz files); trailing zeros are padding */
            while (pos < n_in && in[pos] == 0) pos++;
            if (pos >= n_in) break;
            if (n_in - pos < 2 || in[pos] != 0x1f || in[pos + 1] != 0x8b) {
                st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: corrupt gzip: %zu unexpected bytes after the "
                              "compressed data (offset %zu)", path, n_in - pos, pos);
                break;
            }
            inflateReset(&z);
            continue;
        }
        if (zr == Z_OK) continue;
        if (zr == Z_BUF_ERROR && pos >= n_in) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: truncated gzip (ends after %zu compressed bytes, "
                          "%zu bytes inflated)", path, n_in, len);
            break;
        }
        if (zr == Z_BUF_ERROR) continue; /* output full: grow and go on */
        st = RLHF_ERR(zr == Z_MEM_ERROR ? RLHF_ERR_NOMEM : RLHF_ERR_FORMAT,
                      "%s: corrupt gzip at compressed offset %zu: %s", path, pos,
                      z.msg ? z.msg : "inflate failed");
        break;
    }
    inflateEnd(&z);
    if (st != RLHF_OK) {
        free(buf);
        return st;
    }
    buf[len] = '\0';
    *out = buf;
    *n_out = len;
    return RLHF_OK;
}

/* Contract: reads a whole text file into *text (malloc'ed, NUL-terminated; free()) and its
 * length into *len. Content starting with the gzip magic (1f 8b) is inflated, whatever the name;
 * a name ending in ".gz" whose content is not gzip is RLHF_ERR_FORMAT. A NUL byte in the text is
 * RLHF_ERR_FORMAT naming the line (a binary file). Missing/unreadable: RLHF_ERR_IO; corrupt or
 * truncated gzip: RLHF_ERR_FORMAT; all naming the file. An empty text is not an error here.
 * *text is NULL on failure. */
rlhf_status rlhf_text_read(const char *path, char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!path || !text || !len) return RLHF_ERR(RLHF_ERR_ARG, "text_read: NULL argument");
    unsigned char *raw;
    size_t n;
    RLHF_TRY(read_raw(path, &raw, &n));
    rlhf_status st = RLHF_OK;
    if (n >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        st = gunzip(path, raw, n, text, len);
        free(raw);
        if (st != RLHF_OK) return st;
    } else if (ends_with(path, ".gz")) {
        free(raw);
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: named .gz but not gzip data (%s)", path,
                        n == 0 ? "empty file" : "no 1f 8b magic");
    } else {
        raw[n] = '\0';
        *text = (char *)raw;
        *len = n;
    }
    const char *nul = memchr(*text, '\0', *len);
    if (nul) {
        size_t line = 1;
        for (const char *p = *text; p < nul; p++) line += *p == '\n';
        free(*text);
        *text = NULL;
        *len = 0;
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s:%zu: NUL byte in the text (a binary file?)", path,
                        line);
    }
    return RLHF_OK;
}

/* ---- documents and tokenization ------------------------------------------------------------- */

typedef struct td_piece {
    size_t off, len; /* bytes of text */
    bool bos;        /* first piece of a document */
} td_piece;

typedef struct td_pieces {
    td_piece *p;
    size_t n, cap;
} td_pieces;

static rlhf_status pieces_push(td_pieces *v, size_t off, size_t len, bool bos) {
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 1024;
        td_piece *np = realloc(v->p, ncap * sizeof *np);
        if (!np) return RLHF_ERR(RLHF_ERR_NOMEM, "textdata: cannot allocate %zu pieces", ncap);
        v->p = np;
        v->cap = ncap;
    }
    v->p[v->n++] = (td_piece){off, len, bos};
    return RLHF_OK;
}

static bool is_blank_line(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

/* Where to end the first piece of s[0..n) (n > PIECE_MAX): after the last '\n' in the first
 * PIECE_MAX bytes, else after the last space, else at a UTF-8 boundary. */
static size_t piece_cut(const char *s, size_t n) {
    size_t lim = n < PIECE_MAX ? n : PIECE_MAX;
    for (size_t i = lim; i > lim / 2; i--)
        if (s[i - 1] == '\n') return i;
    for (size_t i = lim; i > lim / 2; i--)
        if (s[i - 1] == ' ') return i;
    size_t i = lim;
    while (i > 1 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return i;
}

/* Removes the '\r' of every "\r\n" in place; returns the new length. Cannot fail. */
static size_t strip_crlf(char *s, size_t n) {
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')) s[j++] = s[i];
    s[j] = '\0';
    return j;
}

/* Cuts text into pieces (see the top of the file); *n_docs gets the number of documents. */
static rlhf_status cut_documents(const char *s, size_t n, td_pieces *out, int64_t *n_docs) {
    size_t i = 0;
    *n_docs = 0;
    while (i < n) {
        /* skip blank lines */
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        if (is_blank_line(s + i, e - i)) {
            i = e + 1;
            continue;
        }
        /* a paragraph: lines until a blank one or the end; par_end excludes the final '\n' */
        size_t start = i, par_end = e;
        i = e + 1;
        while (i < n) {
            size_t le = i;
            while (le < n && s[le] != '\n') le++;
            if (is_blank_line(s + i, le - i)) break;
            par_end = le;
            i = le + 1;
        }
        (*n_docs)++;
        bool first = true;
        while (par_end - start > PIECE_MAX) {
            size_t cut = piece_cut(s + start, par_end - start);
            RLHF_TRY(pieces_push(out, start, cut, first));
            first = false;
            start += cut;
        }
        RLHF_TRY(pieces_push(out, start, par_end - start, first));
    }
    return RLHF_OK;
}

/* Appends the tokens of text s[0..n) (already CRLF-stripped) to the stream. */
static rlhf_status tokenize_text(const rlhf_tokenizer *t, const char *path, const char *s, size_t n,
                                 int32_t **tok, int64_t *n_tok, int64_t *cap_tok, int64_t *n_docs) {
    td_pieces pv = {0};
    int64_t docs = 0;
    rlhf_status st = cut_documents(s, n, &pv, &docs);
    int64_t *slot = NULL; /* (n_pieces + 1) output offsets: each piece may use len + 2 ids */
    int32_t *ids = NULL, *counts = NULL;
    if (st != RLHF_OK) goto done;
    slot = malloc((pv.n + 1) * sizeof *slot);
    counts = malloc((pv.n + 1) * sizeof *counts);
    if (!slot || !counts) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate the piece table", path);
        goto done;
    }
    slot[0] = 0;
    for (size_t k = 0; k < pv.n; k++) slot[k + 1] = slot[k] + (int64_t)pv.p[k].len + 2;
    ids = malloc((size_t)(slot[pv.n] + 1) * sizeof *ids);
    if (!ids) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %lld token slots", path,
                      (long long)slot[pv.n]);
        goto done;
    }
    int failed = 0; /* a worker's failure; its error text is thread-local, so re-stated below */
    const int64_t np = (int64_t)pv.n;
#pragma omp parallel
    {
        char *buf = malloc(PIECE_MAX + 1);
        if (!buf) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 64)
        for (int64_t k = 0; k < np; k++) {
            if (!buf) continue;
            const td_piece *p = &pv.p[k];
            memcpy(buf, s + p->off, p->len);
            buf[p->len] = '\0';
            int32_t cnt = 0;
            rlhf_status es = rlhf_tokenizer_encode(t, buf, p->bos, false, ids + slot[k],
                                                   (int32_t)p->len + 2, &cnt);
            counts[k] = cnt;
            if (es != RLHF_OK) {
#pragma omp atomic write
                failed = 1;
            }
        }
        free(buf);
    }
    if (failed) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: tokenization failed (out of memory)", path);
        goto done;
    }
    int64_t total = 0;
    for (size_t k = 0; k < pv.n; k++) total += counts[k];
    if (*n_tok + total > *cap_tok) {
        int64_t ncap = (*n_tok + total) + (*n_tok + total) / 2 + 1024;
        int32_t *nt = realloc(*tok, (size_t)ncap * sizeof *nt);
        if (!nt) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot grow the token stream to %lld tokens", path,
                          (long long)ncap);
            goto done;
        }
        *tok = nt;
        *cap_tok = ncap;
    }
    for (size_t k = 0; k < pv.n; k++) {
        memcpy(*tok + *n_tok, ids + slot[k], (size_t)counts[k] * sizeof **tok);
        *n_tok += counts[k];
    }
    *n_docs += docs;
done:
    free(pv.p);
    free(slot);
    free(counts);
    free(ids);
    return st;
}

void rlhf_textdata_free(rlhf_textdata *d) {
    if (!d) return;
    free(d->tokens);
    free(d->val_start);
    free(d->seg);
    free(d);
}

/* Contract: reads and tokenizes paths[0..n_paths) in order into one stream (BOS before every
 * document; see the top of the file). Each file is decoded by rlhf_text_read; a file with no
 * text (empty or only blank lines) is RLHF_ERR_FORMAT naming it. *out is NULL on failure. */
rlhf_status rlhf_textdata_build(rlhf_textdata **out, const rlhf_tokenizer *t,
                                const char *const *paths, int32_t n_paths) {
    if (out) *out = NULL;
    if (!out || !t || !paths || n_paths <= 0)
        return RLHF_ERR(RLHF_ERR_ARG, "textdata_build: need a tokenizer and at least one file");
    rlhf_textdata *d = calloc(1, sizeof *d);
    if (!d) return RLHF_ERR(RLHF_ERR_NOMEM, "textdata_build: out of memory");
    int64_t cap = 0;
    rlhf_status st = RLHF_OK;
    for (int32_t i = 0; i < n_paths; i++) {
        char *text;
        size_t len;
        RLHF_TRY_GOTO(st, rlhf_text_read(paths[i], &text, &len), fail);
        len = strip_crlf(text, len);
        int64_t before = d->n_tokens;
        st = tokenize_text(t, paths[i], text, len, &d->tokens, &d->n_tokens, &cap, &d->n_docs);
        free(text);
        if (st != RLHF_OK) goto fail;
        if (d->n_tokens == before) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: no text (the file is empty or only blank lines)",
                          paths[i]);
            goto fail;
        }
        d->n_bytes += (int64_t)len;
    }
    d->crc = crc_bytes(0, d->tokens, (size_t)d->n_tokens * sizeof *d->tokens);
    *out = d;
    return RLHF_OK;
fail:
    rlhf_textdata_free(d);
    return st;
}

int64_t rlhf_textdata_num_tokens(const rlhf_textdata *d) { return d->n_tokens; }
int64_t rlhf_textdata_num_docs(const rlhf_textdata *d) { return d->n_docs; }
int64_t rlhf_textdata_num_bytes(const rlhf_textdata *d) { return d->n_bytes; }
const int32_t *rlhf_textdata_tokens(const rlhf_textdata *d) { return d->tokens; }
uint32_t rlhf_textdata_checksum(const rlhf_textdata *d) { return d->crc; }

/* ---- cache ------------------------------------------------------------------------------------- */

typedef struct td_key {
    int32_t vocab;
    uint32_t tok_crc, probe_crc;
    int64_t tok_size;
    int32_t n_files;
    int64_t *size;  /* (n_files) */
    uint32_t *crc;  /* (n_files) */
} td_key;

static void key_free(td_key *k) {
    free(k->size);
    free(k->crc);
}

/* Fingerprints the inputs and the tokenizer (see the top of the file). */
static rlhf_status make_key(td_key *k, const rlhf_tokenizer *t, const char *tok_path,
                            const char *const *paths, int32_t n) {
    memset(k, 0, sizeof *k);
    k->vocab = rlhf_tokenizer_vocab_size(t);
    k->n_files = n;
    k->size = calloc((size_t)n, sizeof *k->size);
    k->crc = calloc((size_t)n, sizeof *k->crc);
    if (!k->size || !k->crc) {
        key_free(k);
        return RLHF_ERR(RLHF_ERR_NOMEM, "textdata: out of memory");
    }
    unsigned char *raw;
    size_t len;
    rlhf_status st;
    if (tok_path) {
        RLHF_TRY_GOTO(st, read_raw(tok_path, &raw, &len), fail);
        k->tok_crc = crc_bytes(0, raw, len);
        k->tok_size = (int64_t)len;
        free(raw);
    }
    static const char probe[] = "Hello world! The 1,234 \"quick\" foxes\n\tjumped.\n"
                                "caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x99\x82 [INST] <<SYS>>";
    int32_t pid[256], pn = 0;
    RLHF_TRY_GOTO(st, rlhf_tokenizer_encode(t, probe, true, true, pid, 256, &pn), fail);
    k->probe_crc = crc_bytes(0, pid, (size_t)pn * sizeof *pid);
    for (int32_t i = 0; i < n; i++) {
        RLHF_TRY_GOTO(st, read_raw(paths[i], &raw, &len), fail);
        k->size[i] = (int64_t)len;
        k->crc[i] = crc_bytes(0, raw, len);
        free(raw);
    }
    return RLHF_OK;
fail:
    key_free(k);
    return st;
}

/* Header bytes of a key (without the token counts). *out malloc'ed. */
static rlhf_status key_bytes(const td_key *k, unsigned char **out, size_t *n) {
    *n = 8 + 4 + 4 + 4 + 4 + 8 + 4 + 4 + (size_t)k->n_files * 16;
    unsigned char *b = calloc(1, *n);
    if (!b) return RLHF_ERR(RLHF_ERR_NOMEM, "textdata: out of memory");
    size_t o = 0;
    uint32_t version = TD_VERSION, nf = (uint32_t)k->n_files;
    memcpy(b + o, TD_MAGIC, 8), o += 8;
    memcpy(b + o, &version, 4), o += 4;
    memcpy(b + o, &nf, 4), o += 4;
    memcpy(b + o, &k->vocab, 4), o += 4;
    memcpy(b + o, &k->tok_crc, 4), o += 4;
    memcpy(b + o, &k->tok_size, 8), o += 8;
    memcpy(b + o, &k->probe_crc, 4), o += 4;
    o += 4;
    for (int32_t i = 0; i < k->n_files; i++) {
        memcpy(b + o, &k->size[i], 8), o += 8;
        memcpy(b + o, &k->crc[i], 4), o += 4;
        o += 4;
    }
    *out = b;
    return RLHF_OK;
}

static rlhf_status write_all(FILE *f, const char *path, const void *p, size_t n, uint32_t *crc) {
    if (n && fwrite(p, 1, n, f) != n)
        return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    *crc = crc_bytes(*crc, p, n);
    return RLHF_OK;
}

/* Writes the cache atomically. */
static rlhf_status cache_write(const char *path, const unsigned char *hdr, size_t hn,
                               const rlhf_textdata *d) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return RLHF_ERR(RLHF_ERR_ARG, "cache path too long: %s", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    uint32_t crc = 0;
    int64_t counts[3] = {d->n_tokens, d->n_docs, d->n_bytes};
    rlhf_status st;
    RLHF_TRY_GOTO(st, write_all(f, tmp, hdr, hn, &crc), fail);
    RLHF_TRY_GOTO(st, write_all(f, tmp, counts, sizeof counts, &crc), fail);
    RLHF_TRY_GOTO(st, write_all(f, tmp, d->tokens, (size_t)d->n_tokens * 4, &crc), fail);
    if (fwrite(&crc, 4, 1, f) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        goto fail;
    }
    FILE *ff = f;
    f = NULL;
    if (fclose(ff) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    return RLHF_OK;
fail:
    if (f) fclose(f);
    remove(tmp);
    return st;
}

/* Tries the cache: HIT with *out set, or the reason it cannot be used. Never an error: an
 * unreadable cache is just rebuilt. */
static rlhf_textdata_cache cache_read(const char *path, const unsigned char *hdr, size_t hn,
                                      rlhf_textdata **out) {
    *out = NULL;
    unsigned char *raw;
    size_t n;
    if (access(path, F_OK) != 0) return RLHF_TEXTDATA_CACHE_MISSING;
    if (read_raw(path, &raw, &n) != RLHF_OK) return RLHF_TEXTDATA_CACHE_CORRUPT;
    rlhf_textdata_cache r = RLHF_TEXTDATA_CACHE_CORRUPT;
    rlhf_textdata *d = NULL;
    if (n < hn + 24 + 4 || memcmp(raw, TD_MAGIC, 8) != 0) goto done;
    uint32_t crc_file;
    memcpy(&crc_file, raw + n - 4, 4);
    if (crc_bytes(0, raw, n - 4) != crc_file) goto done;
    if (memcmp(raw, hdr, hn) != 0) {
        r = RLHF_TEXTDATA_CACHE_STALE;
        goto done;
    }
    int64_t counts[3];
    memcpy(counts, raw + hn, sizeof counts);
    if (counts[0] <= 0 || (size_t)counts[0] != (n - hn - 24 - 4) / 4 ||
        hn + 24 + (size_t)counts[0] * 4 + 4 != n)
        goto done;
    d = calloc(1, sizeof *d);
    if (!d) goto done;
    d->n_tokens = counts[0];
    d->n_docs = counts[1];
    d->n_bytes = counts[2];
    d->tokens = malloc((size_t)d->n_tokens * sizeof *d->tokens);
    if (!d->tokens) goto done;
    memcpy(d->tokens, raw + hn + 24, (size_t)d->n_tokens * 4);
    d->crc = crc_bytes(0, d->tokens, (size_t)d->n_tokens * 4);
    *out = d;
    d = NULL;
    r = RLHF_TEXTDATA_CACHE_HIT;
done:
    rlhf_textdata_free(d);
    free(raw);
    return r;
}

const char *rlhf_textdata_cache_name(rlhf_textdata_cache c) {
    switch (c) {
    case RLHF_TEXTDATA_CACHE_HIT: return "cache hit";
    case RLHF_TEXTDATA_CACHE_MISSING: return "no cache yet";
    case RLHF_TEXTDATA_CACHE_STALE: return "inputs or tokenizer changed";
    case RLHF_TEXTDATA_CACHE_CORRUPT: return "cache unreadable";
    case RLHF_TEXTDATA_CACHE_OFF: return "no cache";
    }
    return "?";
}

/* Contract: as rlhf_textdata_build, through the cache file cache_path (NULL: no cache). A cache
 * made from inputs of the same sizes and content CRCs, in the same order, and the same tokenizer
 * (file CRC of tok_path when given, vocab size, ids of a probe text) is loaded; otherwise the
 * inputs are tokenized and the cache rewritten atomically. *how (may be NULL) says which. A cache
 * that cannot be written is an error (RLHF_ERR_IO naming it). */
rlhf_status rlhf_textdata_open(rlhf_textdata **out, const rlhf_tokenizer *t, const char *tok_path,
                               const char *const *paths, int32_t n_paths, const char *cache_path,
                               rlhf_textdata_cache *how) {
    if (out) *out = NULL;
    if (how) *how = RLHF_TEXTDATA_CACHE_OFF;
    if (!out || !t || !paths || n_paths <= 0 || n_paths > TD_MAX_FILES)
        return RLHF_ERR(RLHF_ERR_ARG, "textdata_open: need a tokenizer and 1 to %d files",
                        TD_MAX_FILES);
    if (!cache_path) return rlhf_textdata_build(out, t, paths, n_paths);
    td_key k;
    RLHF_TRY(make_key(&k, t, tok_path, paths, n_paths));
    unsigned char *hdr = NULL;
    size_t hn = 0;
    rlhf_status st = key_bytes(&k, &hdr, &hn);
    key_free(&k);
    if (st != RLHF_OK) return st;
    rlhf_textdata_cache r = cache_read(cache_path, hdr, hn, out);
    if (how) *how = r;
    if (r == RLHF_TEXTDATA_CACHE_HIT) {
        free(hdr);
        return RLHF_OK;
    }
    st = rlhf_textdata_build(out, t, paths, n_paths);
    if (st == RLHF_OK) st = cache_write(cache_path, hdr, hn, *out);
    if (st != RLHF_OK) {
        rlhf_textdata_free(*out);
        *out = NULL;
    }
    free(hdr);
    return st;
}

/* ---- split and sampling ------------------------------------------------------------------------ */

/* Contract: holds out validation chunks for windows of `window` tokens (>= 2); see the top of the
 * file. val_fraction in [0, 0.5]; min_val_tokens >= 0. RLHF_ERR_ARG when the stream is too small
 * to hold the chunks and leave training windows (the message gives the numbers); a split made
 * before is replaced. Deterministic: depends only on the stream length and the arguments. */
rlhf_status rlhf_textdata_split(rlhf_textdata *d, double val_fraction, int64_t min_val_tokens,
                                int32_t window) {
    if (!d || window < 2 || !(val_fraction >= 0 && val_fraction <= 0.5) || min_val_tokens < 0)
        return RLHF_ERR(RLHF_ERR_ARG, "textdata_split: bad arguments (window %d, fraction %g)",
                        window, val_fraction);
    free(d->val_start);
    free(d->seg);
    d->val_start = NULL;
    d->seg = NULL;
    d->window = 0;
    const int64_t N = d->n_tokens, T = window - 1;
    const int64_t m = (1024 + T - 1) / T, K = m * T + 1;
    double want = val_fraction * (double)N;
    if (want < (double)min_val_tokens) want = (double)min_val_tokens;
    int64_t nv = want > 0 ? (int64_t)((want + (double)K - 1) / (double)K) : 0;
    if (nv > 0 && nv * K * 2 > N)
        return RLHF_ERR(RLHF_ERR_ARG,
                        "textdata: %lld tokens are too few to hold out %lld validation chunks of "
                        "%lld tokens (half the stream at most); use more text or a smaller "
                        "--val-fraction",
                        (long long)N, (long long)nv, (long long)K);
    d->val_start = malloc((size_t)(nv > 0 ? nv : 1) * sizeof *d->val_start);
    d->seg = malloc((size_t)(nv + 1) * sizeof *d->seg);
    if (!d->val_start || !d->seg) return RLHF_ERR(RLHF_ERR_NOMEM, "textdata_split: out of memory");
    for (int64_t j = 0; j < nv; j++) {
        /* centre of region j: floor((2j+1) * N / (2 nv)), exact and without overflow */
        const int64_t q = N / (2 * nv), rem = N % (2 * nv);
        int64_t centre = (2 * j + 1) * q + ((2 * j + 1) * rem) / (2 * nv);
        d->val_start[j] = centre - K / 2;
    }
    d->n_val = nv;
    d->val_len = K;
    int64_t prev = 0;
    d->n_seg = 0;
    d->train_starts = 0;
    d->train_tokens = 0;
    for (int64_t j = 0; j <= nv; j++) {
        int64_t end = j < nv ? d->val_start[j] : N;
        int64_t len = end - prev;
        int64_t starts = len >= window ? len - window + 1 : 0;
        if (starts > 0) {
            d->seg[d->n_seg++] = (td_segment){prev, len, d->train_starts};
            d->train_starts += starts;
        }
        d->train_tokens += len;
        if (j < nv) prev = d->val_start[j] + K;
    }
    if (d->train_starts == 0)
        return RLHF_ERR(RLHF_ERR_ARG, "textdata: no training window of %d tokens fits in %lld "
                        "tokens", window, (long long)N);
    d->window = window;
    return RLHF_OK;
}

int64_t rlhf_textdata_train_tokens(const rlhf_textdata *d) { return d->train_tokens; }
int64_t rlhf_textdata_val_tokens(const rlhf_textdata *d) { return d->n_val * d->val_len; }

int64_t rlhf_textdata_val_count(const rlhf_textdata *d) {
    if (!d->window) return 0;
    return d->n_val * ((d->val_len - 1) / (d->window - 1));
}

/* Contract: copies validation window i (0 <= i < rlhf_textdata_val_count) of `window` tokens to
 * out. Windows tile the held-out chunks with stride window-1 (each predicts new tokens only).
 * Programmer errors (no split, i out of range) assert. */
void rlhf_textdata_val_window(const rlhf_textdata *d, int64_t i, int32_t *out) {
    RLHF_ASSERT(d->window > 0 && i >= 0 && i < rlhf_textdata_val_count(d));
    const int64_t per = (d->val_len - 1) / (d->window - 1);
    const int64_t start = d->val_start[i / per] + (i % per) * (d->window - 1);
    memcpy(out, d->tokens + start, (size_t)d->window * sizeof *out);
}

/* A uniform integer in [0, n), n >= 1, by rejection (no modulo bias). */
static int64_t rng_below(rlhf_rng *r, uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        uint64_t x = ((uint64_t)rlhf_rng_u32(r) << 32) | rlhf_rng_u32(r);
        if (x < limit) return (int64_t)(x % n);
    }
}

/* Contract: draws one training window of `window` tokens uniformly among all windows inside the
 * training gaps, advancing r, into out; returns its start position in the stream. Same r state,
 * same window. Programmer error (no split) asserts. */
int64_t rlhf_textdata_sample(const rlhf_textdata *d, rlhf_rng *r, int32_t *out) {
    RLHF_ASSERT(d->window > 0 && d->train_starts > 0);
    int64_t u = rng_below(r, (uint64_t)d->train_starts);
    int64_t lo = 0, hi = d->n_seg - 1; /* last segment with cum <= u */
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (d->seg[mid].cum <= u)
            lo = mid;
        else
            hi = mid - 1;
    }
    const int64_t start = d->seg[lo].start + (u - d->seg[lo].cum);
    memcpy(out, d->tokens + start, (size_t)d->window * sizeof *out);
    return start;
}

/* Contract: true when position pos of the stream lies in a held-out chunk. Cannot fail. */
bool rlhf_textdata_is_val(const rlhf_textdata *d, int64_t pos) {
    for (int64_t j = 0; j < d->n_val; j++)
        if (pos >= d->val_start[j] && pos < d->val_start[j] + d->val_len) return true;
    return false;
}
