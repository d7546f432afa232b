/* tokenizer.c: the public tokenizer: the llama2.c tokenizer.bin format and its
 * SentencePiece-style BPE encoder; SentencePiece tokenizer.model files are handled by spm.c
 * (rlhf_tokenizer_load_model, or rlhf_tokenizer_load which tells the formats apart by content)
 * and every function below dispatches to it when t->spm is set.
 *
 * File (little-endian): int32 max_token_length, then per token: float32 score, int32 len, len
 * bytes (the piece, with SentencePiece's U+2581 already replaced by ' '). Ids are positions; the
 * file carries no special ids: UNK 0, BOS 1, EOS 2, and byte-fallback pieces "<0xXX>" at 3 + byte.
 *
 * Encoding gives the same ids as llama2.c's run.c encode():
 *   1. optional BOS; if the text is non-empty, the dummy-prefix piece " ";
 *   2. the text is cut into units: a byte followed by up to three continuation bytes
 *      (10xxxxxx), i.e. one UTF-8 codepoint for valid input (at most 4 bytes a unit, and a run
 *      of stray continuation bytes is cut the same way). A unit that is a vocab piece becomes
 *      that id; otherwise each of its bytes becomes the byte-fallback id 3 + byte;
 *   3. greedy merging: while some adjacent pair's concatenation is a vocab piece with a score
 *      above -1e10, merge the pair with the highest score, the leftmost one on ties;
 *   4. optional EOS.
 * llama2.c rescans every pair after each merge (O(n^2)). Here the tokens are a linked list and
 * the candidate merges sit in a binary heap ordered by (score desc, position of the left token
 * asc); a candidate is stale once either token changed or they are no longer adjacent, which
 * version counters detect. Node indices increase along the list, so "smallest left index among
 * the best scores" is exactly llama2.c's leftmost-on-ties rule: the results are identical, in
 * O(n log n).
 *
 * Deliberate differences from llama2.c, none of which arise with the Llama 2 or aidreams
 * vocabularies: pieces are compared as byte strings (llama2.c compares C strings); duplicate
 * pieces resolve to the lowest id (llama2.c: whichever bsearch finds); a missing " " piece or a
 * byte-fallback id beyond the vocabulary becomes UNK instead of an invalid id.
 *
 * Decoding (rlhf_tokenizer_piece): as llama2.c's decode(): a piece following BOS drops one
 * leading space (SentencePiece removes the dummy prefix this way), then "<0xXX>" becomes the raw
 * byte. BOS and EOS are control tokens and decode to "" (SentencePiece does the same; llama2.c
 * would print "\n<s>\n"). So decode(encode(s, bos=true)) == s, while
 * decode(encode(s, bos=false)) == " " + s for non-empty s: the dummy prefix stays. (The one
 * exception would be literal text such as "<0x41>" that merges into a byte piece; neither the
 * Llama 2 nor the aidreams vocabulary does that for any of the 512 spellings.) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rlhf.h"
#include "spm_impl.h"

#define TOK_UNK       0
#define TOK_BOS       1
#define TOK_EOS       2
#define TOK_BYTE0     3         /* id of "<0x00>" */
#define TOK_MIN_SCORE (-1e10f)  /* llama2.c's initial best score: merges must beat it */
#define TOK_MAX_TEXT  (1 << 29) /* bytes; keeps every count below in int32 */

struct rlhf_tokenizer {
    int32_t vocab_size;
    int32_t max_token_length; /* as stored in the file (informative) */
    int32_t max_len;          /* longest piece in bytes */
    char *blob;               /* all pieces, each NUL-terminated */
    int64_t *off;             /* (V) piece offsets into blob */
    int32_t *len;             /* (V) piece lengths */
    float *score;             /* (V) merge scores */
    int32_t *slots;           /* (cap) open-addressing hash of pieces -> id, -1 empty */
    uint32_t cap_mask;        /* cap - 1, cap a power of two >= 2V */
    char byte_pieces[256][2]; /* NUL-terminated single bytes for "<0xXX>" pieces */
    spm_model *spm;           /* a SentencePiece .model: everything goes through spm.c; the
                                 fields above other than vocab_size/max_len are unused */
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

/* Id of the piece equal to the n bytes at s, or -1. Cannot fail. */
static int32_t tok_lookup(const rlhf_tokenizer *t, const char *s, size_t n) {
    for (uint32_t i = (uint32_t)hash_bytes(s, n) & t->cap_mask;; i = (i + 1) & t->cap_mask) {
        const int32_t id = t->slots[i];
        if (id < 0) return -1;
        if ((size_t)t->len[id] == n && memcmp(t->blob + t->off[id], s, n) == 0) return id;
    }
}

void rlhf_tokenizer_free(rlhf_tokenizer *t) {
    if (!t) return;
    free(t->blob);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->slots);
    spm_model_free(t->spm);
    free(t);
}

int32_t rlhf_tokenizer_vocab_size(const rlhf_tokenizer *t) { return t->vocab_size; }
int32_t rlhf_tokenizer_bos(const rlhf_tokenizer *t) { return t->spm ? spm_model_bos(t->spm) : TOK_BOS; }
int32_t rlhf_tokenizer_eos(const rlhf_tokenizer *t) { return t->spm ? spm_model_eos(t->spm) : TOK_EOS; }
int32_t rlhf_tokenizer_unk(const rlhf_tokenizer *t) { return t->spm ? spm_model_unk(t->spm) : TOK_UNK; }

/* The .model path of rlhf_tokenizer_encode (same contract). */
static rlhf_status encode_spm(const rlhf_tokenizer *t, const char *text, bool bos, bool eos,
                              int32_t *ids, int32_t cap, int32_t *n) {
    const int32_t bos_id = spm_model_bos(t->spm), eos_id = spm_model_eos(t->spm);
    if ((bos && bos_id < 0) || (eos && eos_id < 0))
        return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_encode: the model defines no %s id",
                        bos && bos_id < 0 ? "BOS" : "EOS");
    int32_t *body = NULL, nb = 0;
    RLHF_TRY(spm_encode(t->spm, text, strlen(text), &body, &nb));
    *n = nb + (bos ? 1 : 0) + (eos ? 1 : 0);
    rlhf_status st = RLHF_OK;
    if (*n > cap) {
        st = RLHF_ERR(RLHF_ERR_ARG, "tokenizer_encode: %d ids do not fit in cap %d", *n, cap);
    } else {
        int32_t k = 0;
        if (bos) ids[k++] = bos_id;
        if (nb > 0) memcpy(ids + k, body, (size_t)nb * sizeof *ids);
        k += nb;
        if (eos) ids[k++] = eos_id;
    }
    free(body);
    return st;
}

/* Reads the whole file at path into a malloc'ed buffer. */
static rlhf_status read_file(const char *path, unsigned char **data, int64_t *size) {
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    rlhf_status st = RLHF_OK;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: not a readable regular file", path);
        goto done;
    }
    *size = (int64_t)sb.st_size;
    if (*size > ((int64_t)1 << 31)) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: %lld bytes is too large for a tokenizer", path,
                      (long long)*size);
        goto done;
    }
    *data = malloc((size_t)*size + 1);
    if (!*data) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %lld bytes", path, (long long)*size);
        goto done;
    }
    if (fread(*data, 1, (size_t)*size, f) != (size_t)*size) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: read error: %s", path, strerror(errno));
        free(*data);
        *data = NULL;
    }
done:
    fclose(f);
    return st;
}

static rlhf_status parse_bin(rlhf_tokenizer **out, const unsigned char *data, int64_t size,
                             const char *path, int32_t vocab_size);

/* Contract: on success *out owns a tokenizer (rlhf_tokenizer_free). vocab_size 0 reads entries
 * to the end of the file; otherwise the file must hold exactly vocab_size entries. Failures:
 * RLHF_ERR_ARG (NULL, negative vocab_size), RLHF_ERR_IO, RLHF_ERR_NOMEM, RLHF_ERR_FORMAT (short
 * header, a truncated entry or a negative length: the message names the file and token index;
 * fewer or more entries than vocab_size; fewer than 3 tokens). *out is NULL on failure. */
rlhf_status rlhf_tokenizer_load_bin(rlhf_tokenizer **out, const char *path, int32_t vocab_size) {
    if (out) *out = NULL;
    if (!out || !path) return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_load_bin: NULL argument");
    if (vocab_size < 0)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: vocab_size %d must be >= 0", path, vocab_size);
    unsigned char *data = NULL;
    int64_t size = 0;
    RLHF_TRY(read_file(path, &data, &size));
    rlhf_status st = parse_bin(out, data, size, path, vocab_size);
    free(data);
    return st;
}

/* The tokenizer.bin parser behind rlhf_tokenizer_load_bin, on the file's bytes (not freed). */
static rlhf_status parse_bin(rlhf_tokenizer **out, const unsigned char *data, int64_t size,
                             const char *path, int32_t vocab_size) {
    rlhf_status st = RLHF_OK;
    rlhf_tokenizer *t = NULL;
    if (size < 4) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: truncated: %lld bytes, no max_token_length header",
                      path, (long long)size);
        goto fail;
    }
    int32_t mtl;
    memcpy(&mtl, data, 4);
    if (mtl < 0) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: bad max_token_length %d", path, mtl);
        goto fail;
    }

    /* Pass 1: validate the entries and count them and their bytes. */
    int64_t off = 4, bytes = 0;
    int32_t n = 0, max_len = 0;
    while (vocab_size == 0 ? off < size : n < vocab_size) {
        if (size - off < 8) {
            st = RLHF_ERR(RLHF_ERR_FORMAT,
                          "%s: token %d: truncated entry at byte %lld (file has %lld bytes%s)",
                          path, n, (long long)off, (long long)size,
                          vocab_size ? ", fewer entries than vocab_size" : "");
            goto fail;
        }
        int32_t len;
        memcpy(&len, data + off + 4, 4);
        if (len < 0) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: token %d: bad length %d at byte %lld", path, n, len,
                          (long long)(off + 4));
            goto fail;
        }
        if (len > size - off - 8) {
            st = RLHF_ERR(RLHF_ERR_FORMAT,
                          "%s: token %d: truncated entry: length %d but %lld bytes remain", path, n,
                          len, (long long)(size - off - 8));
            goto fail;
        }
        off += 8 + len;
        bytes += len + 1;
        if (len > max_len) max_len = len;
        if (n == INT32_MAX - 1) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: too many tokens", path);
            goto fail;
        }
        n++;
    }
    if (off != size) {
        st = RLHF_ERR(RLHF_ERR_FORMAT,
                      "%s: %lld trailing bytes after %d tokens (the file holds more entries than "
                      "vocab_size %d)",
                      path, (long long)(size - off), n, vocab_size);
        goto fail;
    }
    if (n < 3) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: %d tokens; need at least UNK, BOS and EOS", path, n);
        goto fail;
    }

    /* Pass 2: copy the pieces and build the hash. */
    t = calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->vocab_size = n;
    t->max_token_length = mtl;
    t->max_len = max_len;
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)n)
        cap <<= 1;
    t->cap_mask = cap - 1;
    t->blob = malloc((size_t)bytes);
    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->slots = malloc((size_t)cap * sizeof *t->slots);
    if (!t->blob || !t->off || !t->len || !t->score || !t->slots) goto nomem;
    memset(t->slots, 0xff, (size_t)cap * sizeof *t->slots);
    for (int i = 0; i < 256; i++) {
        t->byte_pieces[i][0] = (char)i;
        t->byte_pieces[i][1] = '\0';
    }
    off = 4;
    int64_t boff = 0;
    for (int32_t i = 0; i < n; i++) {
        memcpy(&t->score[i], data + off, 4);
        memcpy(&t->len[i], data + off + 4, 4);
        t->off[i] = boff;
        memcpy(t->blob + boff, data + off + 8, (size_t)t->len[i]);
        t->blob[boff + t->len[i]] = '\0';
        off += 8 + t->len[i];
        boff += t->len[i] + 1;
        const char *s = t->blob + t->off[i];
        if (tok_lookup(t, s, (size_t)t->len[i]) >= 0) continue; /* duplicate: keep lowest id */
        uint32_t h = (uint32_t)hash_bytes(s, (size_t)t->len[i]) & t->cap_mask;
        while (t->slots[h] >= 0)
            h = (h + 1) & t->cap_mask;
        t->slots[h] = i;
    }
    *out = t;
    return RLHF_OK;
nomem:
    st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory loading the tokenizer", path);
fail:
    rlhf_tokenizer_free(t);
    return st;
}

/* Wraps a parsed SentencePiece model; takes ownership of m (freed on failure too). */
static rlhf_status wrap_model(rlhf_tokenizer **out, spm_model *m, const char *path,
                              int32_t vocab_size) {
    if (vocab_size > 0 && spm_model_size(m) != vocab_size) {
        const int32_t have = spm_model_size(m);
        spm_model_free(m);
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: the model has %d pieces, expected vocab_size %d",
                        path, have, vocab_size);
    }
    rlhf_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        spm_model_free(m);
        return RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory loading the tokenizer", path);
    }
    t->spm = m;
    t->vocab_size = spm_model_size(m);
    t->max_len = (int32_t)spm_model_max_piece_len(m);
    *out = t;
    return RLHF_OK;
}

/* Contract: on success *out owns a tokenizer. Failures: RLHF_ERR_ARG (NULL), RLHF_ERR_IO,
 * RLHF_ERR_NOMEM, RLHF_ERR_FORMAT / RLHF_ERR_UNSUPPORTED as spm_model_parse (spm_impl.h), the
 * message naming the file. *out is NULL on failure. */
rlhf_status rlhf_tokenizer_load_model(rlhf_tokenizer **out, const char *path) {
    if (out) *out = NULL;
    if (!out || !path) return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_load_model: NULL argument");
    unsigned char *data = NULL;
    int64_t size = 0;
    RLHF_TRY(read_file(path, &data, &size));
    spm_model *m = NULL;
    rlhf_status st = spm_model_parse(&m, data, (size_t)size, path);
    free(data);
    if (st != RLHF_OK) return st;
    return wrap_model(out, m, path, 0);
}

/* Contract: as rlhf_tokenizer_load_model or rlhf_tokenizer_load_bin, whichever the content
 * says (spm_looks_like_model); vocab_size 0 accepts any size, otherwise a .model must have
 * exactly that many pieces. *out is NULL on failure. */
rlhf_status rlhf_tokenizer_load(rlhf_tokenizer **out, const char *path, int32_t vocab_size) {
    if (out) *out = NULL;
    if (!out || !path) return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_load: NULL argument");
    if (vocab_size < 0)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: vocab_size %d must be >= 0", path, vocab_size);
    unsigned char *data = NULL;
    int64_t size = 0;
    RLHF_TRY(read_file(path, &data, &size));
    rlhf_status st;
    if (spm_looks_like_model(data, (size_t)size)) {
        spm_model *m = NULL;
        st = spm_model_parse(&m, data, (size_t)size, path);
        if (st == RLHF_OK) st = wrap_model(out, m, path, vocab_size);
    } else {
        st = parse_bin(out, data, size, path, vocab_size);
    }
    free(data);
    return st;
}

/* ---- encoding ------------------------------------------------------------------------------ */

typedef struct merge_cand {
    float score;  /* score of the merged piece */
    int32_t left; /* node of the left token; the right one is its successor */
    int32_t right;
    uint32_t lver, rver; /* node versions when pushed: stale if either changed */
    int32_t id;          /* merged piece */
} merge_cand;

/* a goes before b: higher score, then leftmost. */
static int cand_before(const merge_cand *a, const merge_cand *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static void heap_push(merge_cand *h, int32_t *n, merge_cand c) {
    int32_t i = (*n)++;
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (!cand_before(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static merge_cand heap_pop(merge_cand *h, int32_t *n) {
    merge_cand top = h[0], last = h[--(*n)];
    int32_t i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_before(&h[c + 1], &h[c])) c++;
        if (!cand_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

typedef struct enc_state {
    const rlhf_tokenizer *t;
    int32_t *id, *next, *prev; /* (n) linked list of tokens; next/prev -1 at the ends */
    uint32_t *ver;             /* (n) bumped whenever the node's id changes */
    merge_cand *heap;
    int32_t nheap;
    char *buf; /* (2*max_len+1) concatenation scratch */
} enc_state;

/* Pushes the merge of node a with its successor, if that pair is a mergeable piece. */
static void push_pair(enc_state *e, int32_t a) {
    if (a < 0) return;
    const int32_t b = e->next[a];
    if (b < 0) return;
    const rlhf_tokenizer *t = e->t;
    const int32_t ia = e->id[a], ib = e->id[b];
    const size_t la = (size_t)t->len[ia], lb = (size_t)t->len[ib];
    memcpy(e->buf, t->blob + t->off[ia], la);
    memcpy(e->buf + la, t->blob + t->off[ib], lb);
    const int32_t m = tok_lookup(t, e->buf, la + lb);
    if (m < 0 || !(t->score[m] > TOK_MIN_SCORE)) return;
    merge_cand c = {t->score[m], a, b, e->ver[a], e->ver[b], m};
    heap_push(e->heap, &e->nheap, c);
}

/* Byte-fallback id of byte b (UNK when the vocabulary has no byte pieces that far). */
static int32_t byte_id(const rlhf_tokenizer *t, unsigned char b) {
    return TOK_BYTE0 + (int32_t)b < t->vocab_size ? TOK_BYTE0 + (int32_t)b : TOK_UNK;
}

/* Contract: encodes text (NUL-terminated UTF-8; invalid bytes fall back to byte pieces) into at
 * most cap ids; *n gets the number of ids, also when cap is too small (RLHF_ERR_ARG, ids
 * unspecified), so a call with cap 0 (ids may then be NULL) measures. RLHF_ERR_ARG also for NULL
 * arguments or text over 512 MiB; RLHF_ERR_NOMEM. */
rlhf_status rlhf_tokenizer_encode(const rlhf_tokenizer *t, const char *text, bool bos, bool eos,
                                  int32_t *ids, int32_t cap, int32_t *n) {
    if (n) *n = 0;
    if (!t || !text || !n || cap < 0 || (!ids && cap > 0))
        return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_encode: bad arguments");
    if (t->spm) return encode_spm(t, text, bos, eos, ids, cap, n);
    const size_t tlen = strlen(text);
    if (tlen > TOK_MAX_TEXT)
        return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_encode: text of %zu bytes is too long", tlen);
    const int32_t nmax = (int32_t)tlen + 1; /* dummy prefix + at most one id per byte */
    enc_state e = {.t = t};
    e.id = malloc((size_t)nmax * sizeof *e.id);
    e.next = malloc((size_t)nmax * sizeof *e.next);
    e.prev = malloc((size_t)nmax * sizeof *e.prev);
    e.ver = calloc((size_t)nmax, sizeof *e.ver);
    e.heap = malloc((size_t)nmax * 3 * sizeof *e.heap); /* n-1 initial pairs + 2 per merge */
    e.buf = malloc(2 * (size_t)t->max_len + 1);
    rlhf_status st = RLHF_OK;
    if (!e.id || !e.next || !e.prev || !e.ver || !e.heap || !e.buf) {
        st =
            RLHF_ERR(RLHF_ERR_NOMEM, "tokenizer_encode: out of memory for %zu bytes of text", tlen);
        goto done;
    }

    /* 1-2: the dummy prefix and one id per unit (or per byte of an unknown unit). */
    int32_t m = 0;
    if (tlen > 0) {
        const int32_t sp = tok_lookup(t, " ", 1);
        e.id[m++] = sp >= 0 ? sp : byte_id(t, ' ');
    }
    for (size_t i = 0; i < tlen;) {
        size_t j = i + 1;
        while (j < tlen && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80)
            j++;
        const int32_t id = tok_lookup(t, text + i, j - i);
        if (id >= 0) {
            e.id[m++] = id;
        } else {
            for (size_t k = i; k < j; k++)
                e.id[m++] = byte_id(t, (unsigned char)text[k]);
        }
        i = j;
    }
    for (int32_t i = 0; i < m; i++) {
        e.prev[i] = i - 1;
        e.next[i] = i + 1 < m ? i + 1 : -1;
    }

    /* 3: greedy merges, best score first, leftmost on ties. */
    for (int32_t i = 0; i + 1 < m; i++)
        push_pair(&e, i);
    int32_t count = m;
    while (e.nheap > 0) {
        const merge_cand c = heap_pop(e.heap, &e.nheap);
        const int32_t a = c.left, b = c.right;
        if (e.next[a] != b || e.ver[a] != c.lver || e.ver[b] != c.rver) continue; /* stale */
        e.id[a] = c.id;
        e.ver[a]++;
        e.ver[b]++; /* b leaves the list: every candidate naming it is now stale */
        e.next[a] = e.next[b];
        if (e.next[b] >= 0) e.prev[e.next[b]] = a;
        count--;
        push_pair(&e, e.prev[a]);
        push_pair(&e, a);
    }

    /* 4: output. */
    *n = count + (bos ? 1 : 0) + (eos ? 1 : 0);
    if (*n > cap) {
        st = RLHF_ERR(RLHF_ERR_ARG, "tokenizer_encode: %d ids do not fit in cap %d", *n, cap);
        goto done;
    }
    int32_t k = 0;
    if (bos) ids[k++] = TOK_BOS;
    for (int32_t i = m > 0 ? 0 : -1; i >= 0; i = e.next[i])
        ids[k++] = e.id[i];
    if (eos) ids[k++] = TOK_EOS;
done:
    free(e.id);
    free(e.next);
    free(e.prev);
    free(e.ver);
    free(e.heap);
    free(e.buf);
    return st;
}

/* ---- decoding -------------------------------------------------------------------------------- */

static int hex_val(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

/* Contract: the text of id after prev (see the top of this file); the pointer stays valid while
 * t lives and is NUL-terminated, but use *len (a "<0x00>" piece is one NUL byte). An id outside
 * the vocabulary gives "" and 0. len may be NULL. Cannot fail. */
const char *rlhf_tokenizer_piece(const rlhf_tokenizer *t, int32_t prev, int32_t id, size_t *len) {
    size_t dummy;
    if (!len) len = &dummy;
    *len = 0;
    if (t->spm) return spm_piece_text(t->spm, prev, id, len);
    if (id < 0 || id >= t->vocab_size || id == TOK_BOS || id == TOK_EOS) return "";
    const char *p = t->blob + t->off[id];
    size_t l = (size_t)t->len[id];
    if (prev == TOK_BOS && l > 0 && p[0] == ' ') {
        p++;
        l--;
    }
    if (l == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>') {
        const int hi = hex_val(p[3]), lo = hex_val(p[4]);
        if (hi >= 0 && lo >= 0) {
            *len = 1;
            return t->byte_pieces[hi * 16 + lo];
        }
    }
    *len = l;
    return p;
}

/* Contract: *text gets a malloc'ed NUL-terminated string (free()) joining the pieces of ids[0..n)
 * (each given its predecessor; the first has none). RLHF_ERR_ARG for NULL arguments, n < 0 or an
 * id outside the vocabulary (naming its index); RLHF_ERR_NOMEM. *text is NULL on failure. */
rlhf_status rlhf_tokenizer_decode(const rlhf_tokenizer *t, const int32_t *ids, int32_t n,
                                  char **text) {
    if (text) *text = NULL;
    if (!t || !text || n < 0 || (!ids && n > 0))
        return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_decode: bad arguments");
    if (t->spm) return spm_decode(t->spm, ids, n, text, NULL);
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_decode: ids[%d] = %d outside vocab of %d", i,
                            ids[i], t->vocab_size);
        total += (size_t)t->len[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) return RLHF_ERR(RLHF_ERR_NOMEM, "tokenizer_decode: cannot allocate %zu bytes", total);
    size_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t l;
        const char *p = rlhf_tokenizer_piece(t, i > 0 ? ids[i - 1] : -1, ids[i], &l);
        memcpy(s + k, p, l);
        k += l;
    }
    s[k] = '\0';
    *text = s;
    return RLHF_OK;
}
