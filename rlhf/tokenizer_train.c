/* tokenizer_train.c: a SentencePiece-style BPE trainer that writes a SentencePiece
 * `tokenizer.model` (the ModelProto protobuf), made the way Llama's tokenizer was made.
 *
 * Text. Each non-empty line of the corpus is a sentence (a trailing "\r" is dropped). It is
 * normalized as SentencePiece's "identity" normalizer does with add_dummy_prefix=true,
 * remove_extra_whitespaces=false: a U+2581 ("▁") is put in front and every space becomes "▁";
 * bytes that are not valid UTF-8 become U+FFFD, one per byte. The sentence is cut into words, a
 * new word starting at every "▁" (so "a  b" gives "▁a", "▁", "▁b"), and only the table of
 * distinct words with their counts is kept.
 *
 * Characters. Codepoints are counted over all words (weighted by count); the most frequent ones
 * are kept, in order of count (then codepoint), while the kept share of all characters is below
 * character_coverage. The others are "unknown": they never merge, and SentencePiece's encoder
 * writes them as <0xXX> byte pieces (byte_fallback).
 *
 * Merges. As SentencePiece's BPE trainer: repeatedly the most frequent adjacent pair of symbols
 * (over all words, weighted) is merged everywhere (left to right within a word) and its string
 * becomes a piece. A pair is never formed when its piece would be invalid for SentencePiece with
 * Llama's trainer settings: longer than max_piece_chars codepoints, "▁" anywhere but first (so no
 * merge crosses a word start), a decimal digit in a piece of two or more characters
 * (split_digits), or two Unicode scripts mixed (split_by_unicode_script; scripts come from
 * script_of() below, a block-level approximation of Unicode's Scripts.txt: Latin, Greek, Cyrillic,
 * Han with kana, Hangul, Common (punctuation, symbols, emoji), Inherited (combining marks take the
 * script before them), and one "script" per 128-codepoint block elsewhere).
 * Ties on count go to the smaller concatenated string (bytewise), then to the shorter left part,
 * so the result does not depend on hashing or reading order. When the merged string is already a
 * piece (it was made before from another split, "a"+"bc" after "ab"+"c"), the symbols are merged
 * into that piece and no piece is added (SentencePiece's trainer drops such pairs instead; merging
 * them keeps the trainer's segmentation closer to what the encoder does, since the encoder forms
 * any pair whose string is a piece).
 *
 * Unlike SentencePiece, lines of any length are used (it skips those over max_sentence_length
 * bytes) and all of the text is used (no sentence sampling; --max-bytes keeps the first bytes).
 *
 * Speed (one thread): the word table, pair counts kept up to date incrementally (only the words
 * that contain the merged pair are rescanned: each pair keeps the list of words it occurs in), a
 * binary max-heap of (count, pair) with lazy deletion (an entry is stale when its count is no
 * longer the pair's count). Nothing is recounted per merge.
 *
 * Vocabulary (Llama's layout): 0 <unk> (UNKNOWN), 1 <s>, 2 </s> (CONTROL), 3..258 <0x00>..<0xFF>
 * (BYTE), all scored 0; then the merged pieces in merge order scored -0, -1, -2, ...; then the
 * kept characters (most frequent first) continuing the scores. SentencePiece's BPE encoder merges
 * the adjacent pair whose string has the highest score, so it replays the merges in order.
 *
 * Output: the ModelProto is written by the small protobuf wire-format writer below (pieces,
 * trainer_spec, normalizer_spec with an empty precompiled_charsmap) to a temporary file, fsync'd
 * and renamed over the destination. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "rlhf.h"

#define N_META         259 /* <unk>, <s>, </s> and 256 byte pieces */
#define WS_CHAR        0x2581u
#define PIECE_NORMAL   1 /* SentencePiece ModelProto.SentencePiece.Type */
#define PIECE_UNKNOWN  2
#define PIECE_CONTROL  3
#define PIECE_BYTE     6
#define MAX_WORD_BYTES (1u << 30)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Grows *p (element size sz, capacity *cap) to hold at least need elements. */
static rlhf_status grow(void **p, size_t sz, size_t *cap, size_t need) {
    if (need <= *cap) return RLHF_OK;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * sz);
    if (!q) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate %zu bytes", nc * sz);
    *p = q;
    *cap = nc;
    return RLHF_OK;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then a finalizer */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

/* ---- UTF-8 and character classes ------------------------------------------------------------- */

/* Decodes one codepoint from s (n > 0 bytes): returns the bytes used. Invalid input (bad lead or
 * continuation byte, overlong form, surrogate, beyond U+10FFFF, truncated) gives U+FFFD for one
 * byte, as SentencePiece's normalizer does. Cannot fail. */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        goto bad;
    }
    if ((size_t)len > n) goto bad;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto bad;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto bad;
    *cp = v;
    return len;
bad:
    *cp = 0xFFFD;
    return 1;
}

/* Writes cp as UTF-8 into out (4 bytes room); returns the length. Cannot fail. */
static int utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decimal digits (Unicode Nd) of the common scripts. */
static int is_decimal(uint32_t c) {
    return (c >= '0' && c <= '9') || (c >= 0x660 && c <= 0x669) || (c >= 0x6F0 && c <= 0x6F9) ||
           (c >= 0x966 && c <= 0x96F) || (c >= 0x9E6 && c <= 0x9EF) || (c >= 0xFF10 && c <= 0xFF19);
}

enum {
    SC_ANY = -1,
    SC_INHERITED = -2,
    SC_COMMON = 0,
    SC_LATIN,
    SC_GREEK,
    SC_CYRILLIC,
    SC_HAN,
    SC_HANGUL,
    SC_BLOCK = 16
};

/* Script of a codepoint for split_by_unicode_script: a block-level approximation of Unicode's
 * Scripts.txt (see the file comment). Kana count as Han, as in SentencePiece. Cannot fail. */
static int script_of(uint32_t c) {
    if (c < 0x80) return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? SC_LATIN : SC_COMMON;
    if (c < 0xC0) return (c == 0xAA || c == 0xBA) ? SC_LATIN : SC_COMMON;
    if (c < 0x250) return (c == 0xD7 || c == 0xF7) ? SC_COMMON : SC_LATIN;
    if (c < 0x2B0) return SC_LATIN;  /* IPA */
    if (c < 0x300) return SC_COMMON; /* spacing modifier letters */
    if (c < 0x370) return SC_INHERITED;
    if (c < 0x400) return SC_GREEK;
    if (c < 0x530) return SC_CYRILLIC;
    if (c >= 0x1AB0 && c < 0x1B00) return SC_INHERITED;
    if (c >= 0x1DC0 && c < 0x1E00) return SC_INHERITED;
    if (c >= 0x1E00 && c < 0x1F00) return SC_LATIN;
    if (c >= 0x1F00 && c < 0x2000) return SC_GREEK;
    if (c == 0x200C || c == 0x200D) return SC_INHERITED; /* ZWNJ, ZWJ */
    if (c >= 0x20D0 && c < 0x2100) return SC_INHERITED;
    if (c >= 0x1100 && c < 0x1200) return SC_HANGUL;
    if (c >= 0x2000 && c < 0x2C00) return SC_COMMON; /* punctuation, symbols, arrows, math */
    if (c >= 0x2C60 && c < 0x2C80) return SC_LATIN;
    if (c >= 0x2E00 && c < 0x2E80) return SC_COMMON;
    if (c >= 0x2E80 && c < 0x3000) return SC_HAN;    /* radicals */
    if (c >= 0x3000 && c < 0x3040) return SC_COMMON; /* CJK punctuation */
    if (c >= 0x3040 && c < 0x3100) return SC_HAN;    /* hiragana, katakana */
    if (c >= 0x3130 && c < 0x3190) return SC_HANGUL;
    if (c >= 0x31F0 && c < 0x3200) return SC_HAN;
    if (c >= 0x3200 && c < 0x3400) return SC_COMMON;
    if (c >= 0x3400 && c < 0xA000) return SC_HAN;
    if (c >= 0xA720 && c < 0xA800) return SC_LATIN;
    if (c >= 0xAC00 && c < 0xD7B0) return SC_HANGUL;
    if (c >= 0xF900 && c < 0xFB00) return SC_HAN;
    if (c >= 0xFB00 && c < 0xFB07) return SC_LATIN;
    if (c >= 0xFE00 && c < 0xFE10) return SC_INHERITED; /* variation selectors */
    if (c >= 0xFE20 && c < 0xFE30) return SC_INHERITED;
    if (c >= 0xFE30 && c < 0xFE70) return SC_COMMON;
    if (c >= 0xFF00 && c < 0xFFF0) {
        if ((c >= 0xFF21 && c <= 0xFF3A) || (c >= 0xFF41 && c <= 0xFF5A)) return SC_LATIN;
        if (c >= 0xFF66 && c <= 0xFF9F) return SC_HAN;
        if (c >= 0xFFA0 && c <= 0xFFDC) return SC_HANGUL;
        return SC_COMMON;
    }
    if (c >= 0xFFF0 && c < 0x10000) return SC_COMMON;
    if (c >= 0x1F000 && c < 0x1FB00) return SC_COMMON; /* emoji, pictographs */
    if (c >= 0xE0000 && c < 0xE0080) return SC_COMMON; /* tags */
    if (c >= 0xE0100 && c < 0xE01F0) return SC_INHERITED;
    if (c >= 0x20000 && c < 0x32000) return SC_HAN;
    return SC_BLOCK + (int)(c >> 7);
}

/* ---- a set of byte strings with an int64 value each ------------------------------------------ */

typedef struct strset {
    char *arena;
    size_t used, cap_arena;
    int64_t *off;   /* (n) string offsets into arena */
    uint32_t *len;  /* (n) */
    int64_t *val;   /* (n) caller's value (word count) */
    size_t n, cap;  /* strings, capacity of the per-string arrays */
    int32_t *slots; /* (mask+1) open addressing: string id or -1 */
    size_t mask;
} strset;

static void strset_free(strset *s) {
    free(s->arena);
    free(s->off);
    free(s->len);
    free(s->val);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static const char *strset_str(const strset *s, int32_t id) { return s->arena + s->off[id]; }

/* Id of the string p[0..n) or -1. Cannot fail. */
static int32_t strset_find(const strset *s, const char *p, size_t n) {
    if (!s->slots) return -1;
    for (size_t i = hash_bytes(p, n) & s->mask;; i = (i + 1) & s->mask) {
        int32_t id = s->slots[i];
        if (id < 0) return -1;
        if (s->len[id] == n && memcmp(s->arena + s->off[id], p, n) == 0) return id;
    }
}

static rlhf_status strset_rehash(strset *s, size_t nslots) {
    int32_t *sl = malloc(nslots * sizeof *sl);
    if (!sl) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate a hash table of %zu slots", nslots);
    memset(sl, 0xFF, nslots * sizeof *sl);
    for (size_t id = 0; id < s->n; id++) {
        size_t i = hash_bytes(s->arena + s->off[id], s->len[id]) & (nslots - 1);
        while (sl[i] >= 0)
            i = (i + 1) & (nslots - 1);
        sl[i] = (int32_t)id;
    }
    free(s->slots);
    s->slots = sl;
    s->mask = nslots - 1;
    return RLHF_OK;
}

/* Finds p[0..n) or adds it with value 0; *id gets its id. */
static rlhf_status strset_intern(strset *s, const char *p, size_t n, int32_t *id) {
    int32_t f = strset_find(s, p, n);
    if (f >= 0) {
        *id = f;
        return RLHF_OK;
    }
    if (s->n >= (size_t)INT32_MAX - 1) return RLHF_ERR(RLHF_ERR_ARG, "too many distinct strings");
    if (!s->slots || 2 * (s->n + 1) > s->mask + 1)
        RLHF_TRY(strset_rehash(s, s->slots ? 2 * (s->mask + 1) : 1024));
    RLHF_TRY(grow((void **)&s->arena, 1, &s->cap_arena, s->used + n + 1));
    size_t cap = s->cap;
    RLHF_TRY(grow((void **)&s->off, sizeof *s->off, &cap, s->n + 1));
    cap = s->cap;
    RLHF_TRY(grow((void **)&s->len, sizeof *s->len, &cap, s->n + 1));
    cap = s->cap;
    RLHF_TRY(grow((void **)&s->val, sizeof *s->val, &cap, s->n + 1));
    s->cap = cap;
    memcpy(s->arena + s->used, p, n);
    s->arena[s->used + n] = '\0';
    s->off[s->n] = (int64_t)s->used;
    s->len[s->n] = (uint32_t)n;
    s->val[s->n] = 0;
    s->used += n + 1;
    size_t i = hash_bytes(p, n) & s->mask;
    while (s->slots[i] >= 0)
        i = (i + 1) & s->mask;
    s->slots[i] = (int32_t)s->n;
    *id = (int32_t)s->n++;
    return RLHF_OK;
}

/* ---- reading the corpus into a word table ---------------------------------------------------- */

typedef struct reader {
    strset words; /* "▁word" -> count */
    char *wbuf;   /* the word being built */
    size_t wcap;
    int64_t lines, bytes, n_words, max_bytes;
    bool full; /* max_bytes reached */
} reader;

static rlhf_status add_word(reader *r, size_t n) {
    int32_t id;
    RLHF_TRY(strset_intern(&r->words, r->wbuf, n, &id));
    r->words.val[id]++;
    r->n_words++;
    return RLHF_OK;
}

/* Splits one line (no "\n") into "▁"-initial words and counts them. */
static rlhf_status add_line(reader *r, const char *line, size_t n, const char *path) {
    if (n > 0 && line[n - 1] == '\r') n--;
    if (n == 0) return RLHF_OK;
    if (n > MAX_WORD_BYTES)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: line %lld is longer than %u bytes", path,
                        (long long)r->lines + 1, MAX_WORD_BYTES);
    r->lines++;
    r->bytes += (int64_t)n;
    size_t cap = r->wcap;
    RLHF_TRY(grow((void **)&r->wbuf, 1, &cap, n + 3));
    r->wcap = cap;
    memcpy(r->wbuf, "\xE2\x96\x81", 3); /* the dummy prefix */
    size_t w = 3;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        bool ws = c == ' ';
        if (!ws && c == 0xE2 && i + 2 < n && (unsigned char)line[i + 1] == 0x96 &&
            (unsigned char)line[i + 2] == 0x81) {
            ws = true;
            i += 2;
        }
        if (ws) {
            RLHF_TRY(add_word(r, w));
            w = 3; /* the "▁" stays in wbuf[0..3) */
        } else {
            r->wbuf[w++] = (char)c;
        }
    }
    RLHF_TRY(add_word(r, w));
    if (r->max_bytes > 0 && r->bytes >= r->max_bytes) r->full = true;
    return RLHF_OK;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Reads one corpus file (plain text, or gzip through zlib) line by line into r. */
static rlhf_status read_corpus(reader *r, const char *path) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 18);
    rlhf_status st = RLHF_OK;
    const size_t chunk = 1 << 20;
    char *buf = malloc(chunk), *line = NULL;
    size_t line_n = 0, line_cap = 0;
    bool checked = false;
    if (!buf) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate %zu bytes", chunk);
        goto done;
    }
    for (;;) {
        int got = gzread(f, buf, (unsigned)chunk);
        if (got < 0) {
            int err;
            const char *msg = gzerror(f, &err);
            st = RLHF_ERR(err == Z_ERRNO ? RLHF_ERR_IO : RLHF_ERR_FORMAT, "%s: %s: %s", path,
                          err == Z_ERRNO ? "read error" : "corrupt gzip data",
                          err == Z_ERRNO ? strerror(errno) : msg);
            goto done;
        }
        if (!checked) {
            checked = true;
            if (ends_with(path, ".gz") && gzdirect(f) && got > 0) {
                st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: not a gzip file (no gzip header)", path);
                goto done;
            }
        }
        if (got == 0) break;
        size_t pos = 0, n = (size_t)got;
        while (pos < n && !r->full) {
            const char *nl = memchr(buf + pos, '\n', n - pos);
            size_t seg = nl ? (size_t)(nl - (buf + pos)) : n - pos;
            if (line_n == 0 && nl) {
                RLHF_TRY_GOTO(st, add_line(r, buf + pos, seg, path), done);
            } else {
                RLHF_TRY_GOTO(st, grow((void **)&line, 1, &line_cap, line_n + seg + 1), done);
                memcpy(line + line_n, buf + pos, seg);
                line_n += seg;
                if (line_n > MAX_WORD_BYTES) {
                    st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: line %lld is longer than %u bytes", path,
                                  (long long)r->lines + 1, MAX_WORD_BYTES);
                    goto done;
                }
                if (nl) {
                    RLHF_TRY_GOTO(st, add_line(r, line, line_n, path), done);
                    line_n = 0;
                }
            }
            pos += seg + (nl ? 1 : 0);
        }
        if (r->full) break;
    }
    if (line_n > 0 && !r->full) RLHF_TRY_GOTO(st, add_line(r, line, line_n, path), done);
done:
    free(buf);
    free(line);
    int rc = gzclose(f);
    if (st == RLHF_OK && rc != Z_OK && !r->full)
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: corrupt gzip data (%s)", path,
                      rc == Z_BUF_ERROR ? "truncated" : "bad trailer or stream");
    return st;
}

/* ---- the trainer ----------------------------------------------------------------------------- */

enum { SYM_WS = 1, SYM_DIGIT = 2 };

typedef struct sym_info {
    int32_t nchars; /* codepoints */
    int32_t script; /* SC_ANY when it has none of its own ("▁", a lone combining mark) */
    int32_t flags;  /* SYM_WS: contains "▁"; SYM_DIGIT: contains a decimal digit */
} sym_info;

typedef struct pair {
    int32_t a, b;   /* symbol ids */
    int64_t count;  /* weighted occurrences now (valid pairs only) */
    int64_t queued; /* count of the newest heap entry, -1 none */
    int32_t *pos;   /* words it occurs in (may hold stale entries, never misses one) */
    int32_t npos, cappos;
    uint32_t mark;  /* tick of the last word scan that listed it */
    uint32_t dirty; /* merge step that last changed its count */
    bool valid;
} pair;

typedef struct heap_entry {
    int64_t count;
    int32_t pair;
} heap_entry;

typedef struct trainer {
    const rlhf_tokenizer_train_opts *o;
    strset *words; /* word bytes -> count */
    int32_t n_words;
    int32_t *wsym; /* symbols of all words, word w at [woff[w], woff[w] + wlen[w]) */
    int64_t *woff;
    int32_t *wlen;
    uint32_t *wmark; /* merge step that last scanned word w */
    strset syms;     /* piece strings: kept characters first, then merged pieces */
    sym_info *sym;
    size_t cap_sym;
    int32_t n_chars;   /* kept characters (ids 0..n_chars-1) */
    uint32_t *char_cp; /* (n_chars) their codepoints */
    pair *pairs;
    size_t n_pairs, cap_pairs;
    int32_t *pslots; /* open addressing over (a, b) -> pair id, -1 empty */
    size_t pmask;
    heap_entry *heap;
    size_t n_heap, cap_heap;
    int32_t *dirty;
    size_t n_dirty, cap_dirty;
    uint32_t tick, step;
    int32_t *merged; /* new pieces in merge order (symbol ids) */
    int32_t n_merged, n_dup;
} trainer;

/* Codepoint -> kept-character symbol id: a small open-addressing map. */
typedef struct cpmap {
    uint32_t *key; /* cp + 1, 0 empty */
    int64_t *val;
    size_t mask, n;
} cpmap;

static void cpmap_free(cpmap *m) {
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static size_t cp_hash(uint32_t cp) { return (size_t)((cp * 0x9E3779B1u) ^ (cp >> 7)); }

/* The value slot of cp, claimed for it if absent (*fresh = true then). Cannot fail: the caller
 * keeps the map at most half full. */
static int64_t *cpmap_slot(cpmap *m, uint32_t cp, bool *fresh) {
    size_t i = cp_hash(cp) & m->mask;
    while (m->key[i] && m->key[i] != cp + 1)
        i = (i + 1) & m->mask;
    *fresh = m->key[i] == 0;
    m->key[i] = cp + 1;
    return &m->val[i];
}

static rlhf_status cpmap_init(cpmap *m, size_t slots) {
    m->key = calloc(slots, sizeof *m->key);
    m->val = calloc(slots, sizeof *m->val);
    m->mask = slots - 1;
    m->n = 0;
    if (!m->key || !m->val) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate a codepoint map");
    return RLHF_OK;
}

/* Adds v to the value of cp (creating it at 0). */
static rlhf_status cpmap_add(cpmap *m, uint32_t cp, int64_t v) {
    if (2 * (m->n + 1) > m->mask + 1) {
        cpmap big;
        RLHF_TRY(cpmap_init(&big, 2 * (m->mask + 1)));
        for (size_t i = 0; i <= m->mask; i++) {
            if (!m->key[i]) continue;
            bool fr;
            *cpmap_slot(&big, m->key[i] - 1, &fr) = m->val[i];
            big.n++;
        }
        cpmap_free(m);
        *m = big;
    }
    bool fresh;
    int64_t *slot = cpmap_slot(m, cp, &fresh);
    if (fresh) {
        *slot = 0;
        m->n++;
    }
    *slot += v;
    return RLHF_OK;
}

/* Value of cp, or -1. Cannot fail. */
static int64_t cpmap_get(const cpmap *m, uint32_t cp) {
    for (size_t i = cp_hash(cp) & m->mask;; i = (i + 1) & m->mask) {
        if (m->key[i] == 0) return -1;
        if (m->key[i] == cp + 1) return m->val[i];
    }
}

static void trainer_free(trainer *t) {
    free(t->wsym);
    free(t->woff);
    free(t->wlen);
    free(t->wmark);
    strset_free(&t->syms);
    free(t->sym);
    free(t->char_cp);
    for (size_t i = 0; i < t->n_pairs; i++)
        free(t->pairs[i].pos);
    free(t->pairs);
    free(t->pslots);
    free(t->heap);
    free(t->dirty);
    free(t->merged);
}

/* Adds a symbol with the given string and properties; *id gets its id. */
static rlhf_status sym_add(trainer *t, const char *s, size_t n, sym_info info, int32_t *id) {
    RLHF_TRY(strset_intern(&t->syms, s, n, id));
    RLHF_TRY(grow((void **)&t->sym, sizeof *t->sym, &t->cap_sym, (size_t)*id + 1));
    t->sym[*id] = info;
    return RLHF_OK;
}

static size_t pair_hash(int32_t a, int32_t b) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    k ^= k >> 31;
    k *= 0x7fb5d329728ea185ull;
    k ^= k >> 27;
    return (size_t)k;
}

/* Pair id of (a, b) or -1. Cannot fail. */
static int32_t pair_find(const trainer *t, int32_t a, int32_t b) {
    for (size_t i = pair_hash(a, b) & t->pmask;; i = (i + 1) & t->pmask) {
        int32_t p = t->pslots[i];
        if (p < 0) return -1;
        if (t->pairs[p].a == a && t->pairs[p].b == b) return p;
    }
}

/* Whether the piece sym[a] + sym[b] is one SentencePiece's trainer could make (file comment). */
static bool pair_valid(const trainer *t, int32_t a, int32_t b) {
    const sym_info *A = &t->sym[a], *B = &t->sym[b];
    if (A->nchars + B->nchars > t->o->max_piece_chars) return false;
    if ((B->flags & SYM_WS) || ((A->flags | B->flags) & SYM_DIGIT)) return false;
    if (A->script != SC_ANY && B->script != SC_ANY && A->script != B->script) return false;
    /* never spell a meta piece: "<unk>", "<s>", "</s>", "<0xXX>" */
    const char *sa = strset_str(&t->syms, a), *sb = strset_str(&t->syms, b);
    size_t na = t->syms.len[a], nb = t->syms.len[b];
    if (sa[0] == '<' && sb[nb - 1] == '>' && na + nb <= 6) {
        char cat[8];
        memcpy(cat, sa, na);
        memcpy(cat + na, sb, nb);
        cat[na + nb] = '\0';
        if (!strcmp(cat, "<unk>") || !strcmp(cat, "<s>") || !strcmp(cat, "</s>")) return false;
        if (na + nb == 6 && cat[1] == '0' && cat[2] == 'x') return false;
    }
    return true;
}

/* Pair id of (a, b), created (with its validity) when new. */
static rlhf_status pair_get(trainer *t, int32_t a, int32_t b, int32_t *out) {
    int32_t p = pair_find(t, a, b);
    if (p >= 0) {
        *out = p;
        return RLHF_OK;
    }
    if (t->n_pairs >= (size_t)INT32_MAX - 1) return RLHF_ERR(RLHF_ERR_ARG, "too many pairs");
    if (2 * (t->n_pairs + 1) > t->pmask + 1) {
        size_t ns = 2 * (t->pmask + 1);
        int32_t *sl = malloc(ns * sizeof *sl);
        if (!sl) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate a pair table of %zu slots", ns);
        memset(sl, 0xFF, ns * sizeof *sl);
        for (size_t q = 0; q < t->n_pairs; q++) {
            size_t i = pair_hash(t->pairs[q].a, t->pairs[q].b) & (ns - 1);
            while (sl[i] >= 0)
                i = (i + 1) & (ns - 1);
            sl[i] = (int32_t)q;
        }
        free(t->pslots);
        t->pslots = sl;
        t->pmask = ns - 1;
    }
    RLHF_TRY(grow((void **)&t->pairs, sizeof *t->pairs, &t->cap_pairs, t->n_pairs + 1));
    p = (int32_t)t->n_pairs++;
    pair *P = &t->pairs[p];
    memset(P, 0, sizeof *P);
    P->a = a;
    P->b = b;
    P->queued = -1;
    P->valid = pair_valid(t, a, b);
    size_t i = pair_hash(a, b) & t->pmask;
    while (t->pslots[i] >= 0)
        i = (i + 1) & t->pmask;
    t->pslots[i] = p;
    *out = p;
    return RLHF_OK;
}

/* Bytewise comparison of the concatenations x1+x2 and y1+y2. Cannot fail. */
static int concat_cmp(const char *x1, size_t nx1, const char *x2, size_t nx2, const char *y1,
                      size_t ny1, const char *y2, size_t ny2) {
    size_t nx = nx1 + nx2, ny = ny1 + ny2, n = nx < ny ? nx : ny;
    for (size_t i = 0; i < n; i++) {
        unsigned char cx = (unsigned char)(i < nx1 ? x1[i] : x2[i - nx1]);
        unsigned char cy = (unsigned char)(i < ny1 ? y1[i] : y2[i - ny1]);
        if (cx != cy) return cx < cy ? -1 : 1;
    }
    return nx < ny ? -1 : nx > ny ? 1 : 0;
}

/* True when heap entry x ranks before y: higher count, then smaller string, then shorter left
 * part. A total order over distinct pairs, so the merge order is deterministic. */
static bool ranks_before(const trainer *t, const heap_entry *x, const heap_entry *y) {
    if (x->count != y->count) return x->count > y->count;
    const pair *P = &t->pairs[x->pair], *Q = &t->pairs[y->pair];
    const strset *s = &t->syms;
    int c = concat_cmp(strset_str(s, P->a), s->len[P->a], strset_str(s, P->b), s->len[P->b],
                       strset_str(s, Q->a), s->len[Q->a], strset_str(s, Q->b), s->len[Q->b]);
    if (c) return c < 0;
    return s->len[P->a] < s->len[Q->a];
}

static rlhf_status heap_push(trainer *t, int64_t count, int32_t p) {
    RLHF_TRY(grow((void **)&t->heap, sizeof *t->heap, &t->cap_heap, t->n_heap + 1));
    heap_entry e = {count, p};
    size_t i = t->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!ranks_before(t, &e, &t->heap[up])) break;
        t->heap[i] = t->heap[up];
        i = up;
    }
    t->heap[i] = e;
    t->pairs[p].queued = count;
    return RLHF_OK;
}

static heap_entry heap_pop(trainer *t) {
    heap_entry top = t->heap[0], last = t->heap[--t->n_heap];
    size_t i = 0, n = t->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ranks_before(t, &t->heap[c + 1], &t->heap[c])) c++;
        if (!ranks_before(t, &t->heap[c], &last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n > 0) t->heap[i] = last;
    return top;
}

static rlhf_status mark_dirty(trainer *t, int32_t p) {
    if (t->pairs[p].dirty == t->step) return RLHF_OK;
    t->pairs[p].dirty = t->step;
    RLHF_TRY(grow((void **)&t->dirty, sizeof *t->dirty, &t->cap_dirty, t->n_dirty + 1));
    t->dirty[t->n_dirty++] = p;
    return RLHF_OK;
}

/* Adds word w's pairs (weight its count) to the pair counts, listing w under pairs not yet
 * listed in this scan (tick). */
static rlhf_status word_add_pairs(trainer *t, int32_t w) {
    const int32_t *s = t->wsym + t->woff[w];
    const int32_t n = t->wlen[w];
    const int64_t wc = t->words->val[w];
    for (int32_t i = 0; i + 1 < n; i++) {
        if (s[i] < 0 || s[i + 1] < 0) continue;
        int32_t p = -1;
        RLHF_TRY(pair_get(t, s[i], s[i + 1], &p));
        pair *P = &t->pairs[p];
        if (!P->valid) continue;
        P->count += wc;
        RLHF_TRY(mark_dirty(t, p));
        if (P->mark != t->tick) {
            P->mark = t->tick;
            size_t cap = (size_t)P->cappos;
            RLHF_TRY(grow((void **)&P->pos, sizeof *P->pos, &cap, (size_t)P->npos + 1));
            P->cappos = (int32_t)cap;
            P->pos[P->npos++] = w;
        }
    }
    return RLHF_OK;
}

/* Merges every (a, b) of word w into target, updating pair counts. */
static rlhf_status word_merge(trainer *t, int32_t w, int32_t a, int32_t b, int32_t target) {
    int32_t *s = t->wsym + t->woff[w];
    const int32_t n = t->wlen[w];
    const int64_t wc = t->words->val[w];
    bool found = false;
    for (int32_t i = 0; i + 1 < n && !found; i++)
        found = s[i] == a && s[i + 1] == b;
    if (!found) return RLHF_OK; /* a stale listing */
    t->tick++;
    for (int32_t i = 0; i + 1 < n; i++) {
        if (s[i] < 0 || s[i + 1] < 0) continue;
        int32_t p = pair_find(t, s[i], s[i + 1]);
        RLHF_ASSERT(p >= 0);
        pair *P = &t->pairs[p];
        if (!P->valid) continue;
        P->count -= wc;
        P->mark = t->tick; /* w stays listed under the pairs it had */
        RLHF_TRY(mark_dirty(t, p));
    }
    int32_t j = 0;
    for (int32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            s[j++] = target;
            i += 2;
        } else {
            s[j++] = s[i++];
        }
    }
    t->wlen[w] = j;
    return word_add_pairs(t, w);
}

/* Pushes heap entries for the pairs whose counts changed in this step. */
static rlhf_status flush_dirty(trainer *t) {
    for (size_t k = 0; k < t->n_dirty; k++) {
        pair *P = &t->pairs[t->dirty[k]];
        RLHF_ASSERT(P->count >= 0);
        if (P->count > 0 && P->count != P->queued) RLHF_TRY(heap_push(t, P->count, t->dirty[k]));
    }
    t->n_dirty = 0;
    return RLHF_OK;
}

typedef struct char_count {
    uint32_t cp;
    int64_t count;
} char_count;

static int char_count_cmp(const void *x, const void *y) {
    const char_count *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return a->cp < b->cp ? -1 : a->cp > b->cp;
}

/* Counts the characters, picks the kept ones, and turns every word into symbol ids. */
static rlhf_status trainer_setup(trainer *t, rlhf_tokenizer_train_stats *stats) {
    strset *W = t->words;
    rlhf_status st = RLHF_OK;
    cpmap counts = {0}, ids = {0};
    char_count *cc = NULL;
    RLHF_TRY_GOTO(st, cpmap_init(&counts, 1024), out);
    int64_t total = 0, n_sym = 0;
    for (size_t w = 0; w < W->n; w++) {
        const unsigned char *p = (const unsigned char *)strset_str(W, (int32_t)w);
        size_t n = W->len[w];
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            i += (size_t)utf8_decode(p + i, n - i, &cp);
            RLHF_TRY_GOTO(st, cpmap_add(&counts, cp, W->val[w]), out);
            total += W->val[w];
            n_sym++;
        }
    }
    cc = malloc((counts.n ? counts.n : 1) * sizeof *cc);
    if (!cc) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate the character table");
        goto out;
    }
    size_t nc = 0;
    for (size_t i = 0; i <= counts.mask; i++)
        if (counts.key[i]) cc[nc++] = (char_count){counts.key[i] - 1, counts.val[i]};
    qsort(cc, nc, sizeof *cc, char_count_cmp);
    /* keep characters while the covered share is below the coverage (SentencePiece's rule) */
    size_t kept = 0;
    int64_t acc = 0;
    while (kept < nc && (double)acc / (double)total < (double)t->o->character_coverage)
        acc += cc[kept++].count;
    if (kept == 0) kept = 1;
    t->n_chars = (int32_t)kept;
    t->char_cp = malloc(kept * sizeof *t->char_cp);
    if (!t->char_cp) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate the character table");
        goto out;
    }
    RLHF_TRY_GOTO(st, cpmap_init(&ids, 1024), out);
    for (size_t k = 0; k < kept; k++) {
        uint32_t cp = cc[k].cp;
        char u[4];
        int ul = utf8_encode(cp, u);
        int sc = script_of(cp);
        sym_info info = {1, sc == SC_INHERITED ? SC_ANY : sc,
                         (cp == WS_CHAR ? SYM_WS : 0) | (is_decimal(cp) ? SYM_DIGIT : 0)};
        if (cp == WS_CHAR) info.script = SC_ANY;
        int32_t id;
        RLHF_TRY_GOTO(st, sym_add(t, u, (size_t)ul, info, &id), out);
        RLHF_ASSERT(id == (int32_t)k);
        t->char_cp[k] = cp;
        RLHF_TRY_GOTO(st, cpmap_add(&ids, cp, (int64_t)k), out);
    }
    if (stats) {
        stats->chars_seen = (int64_t)nc;
        stats->chars_kept = (int32_t)kept;
    }
    /* words as symbol sequences; unknown characters are -1 and never pair */
    t->n_words = (int32_t)W->n;
    t->woff = malloc(W->n * sizeof *t->woff);
    t->wlen = malloc(W->n * sizeof *t->wlen);
    t->wmark = calloc(W->n, sizeof *t->wmark);
    t->wsym = malloc((size_t)(n_sym ? n_sym : 1) * sizeof *t->wsym);
    if (!t->woff || !t->wlen || !t->wmark || !t->wsym) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate the word symbols (%lld)", (long long)n_sym);
        goto out;
    }
    int64_t at = 0;
    for (size_t w = 0; w < W->n; w++) {
        const unsigned char *p = (const unsigned char *)strset_str(W, (int32_t)w);
        size_t n = W->len[w];
        t->woff[w] = at;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            i += (size_t)utf8_decode(p + i, n - i, &cp);
            t->wsym[at++] = (int32_t)cpmap_get(&ids, cp);
        }
        t->wlen[w] = (int32_t)(at - t->woff[w]);
    }
    /* all pairs */
    t->pmask = 1023;
    t->pslots = malloc((t->pmask + 1) * sizeof *t->pslots);
    if (!t->pslots) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate the pair table");
        goto out;
    }
    memset(t->pslots, 0xFF, (t->pmask + 1) * sizeof *t->pslots);
    t->step = 1;
    for (int32_t w = 0; w < t->n_words; w++) {
        t->tick++;
        RLHF_TRY_GOTO(st, word_add_pairs(t, w), out);
    }
    RLHF_TRY_GOTO(st, flush_dirty(t), out);
out:
    cpmap_free(&counts);
    cpmap_free(&ids);
    free(cc);
    return st;
}

/* Runs merges until n_target new pieces exist. */
static rlhf_status trainer_merge(trainer *t, int32_t n_target) {
    t->merged = malloc((size_t)(n_target ? n_target : 1) * sizeof *t->merged);
    if (!t->merged) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate the merge list");
    char *cat = NULL;
    size_t cat_cap = 0;
    rlhf_status st = RLHF_OK;
    while (t->n_merged < n_target) {
        int32_t best = -1;
        while (t->n_heap > 0) {
            heap_entry e = heap_pop(t);
            if (e.count == t->pairs[e.pair].count) {
                best = e.pair;
                break;
            }
        }
        if (best < 0) {
            st = RLHF_ERR(RLHF_ERR_ARG,
                          "vocab %d is too large for this corpus: no pair is left to merge after "
                          "%d merges (at most %d pieces; use a smaller --vocab or more text)",
                          (int)t->o->vocab_size, (int)t->n_merged,
                          (int)(N_META + t->n_chars + t->n_merged));
            break;
        }
        t->step++;
        pair *P = &t->pairs[best];
        P->queued = -1;
        const int32_t a = P->a, b = P->b;
        size_t na = t->syms.len[a], nb = t->syms.len[b];
        RLHF_TRY_GOTO(st, grow((void **)&cat, 1, &cat_cap, na + nb + 1), done);
        memcpy(cat, strset_str(&t->syms, a), na);
        memcpy(cat + na, strset_str(&t->syms, b), nb);
        int32_t target = strset_find(&t->syms, cat, na + nb);
        if (target >= 0) {
            t->n_dup++;
        } else {
            const sym_info *A = &t->sym[a], *B = &t->sym[b];
            sym_info info = {A->nchars + B->nchars, B->script != SC_ANY ? B->script : A->script,
                             A->flags | B->flags};
            RLHF_TRY_GOTO(st, sym_add(t, cat, na + nb, info, &target), done);
            t->merged[t->n_merged++] = target;
        }
        /* the words of this pair; its own list never grows during the step */
        int32_t *pos = t->pairs[best].pos;
        int32_t npos = t->pairs[best].npos;
        for (int32_t k = 0; k < npos; k++) {
            int32_t w = pos[k];
            if (t->wmark[w] == t->step) continue;
            t->wmark[w] = t->step;
            RLHF_TRY_GOTO(st, word_merge(t, w, a, b, target), done);
        }
        RLHF_ASSERT(t->pairs[best].count == 0);
        free(t->pairs[best].pos);
        t->pairs[best].pos = NULL;
        t->pairs[best].npos = t->pairs[best].cappos = 0;
        RLHF_TRY_GOTO(st, flush_dirty(t), done);
        if (t->o->progress) t->o->progress(t->o->progress_ctx, t->n_merged, n_target);
    }
done:
    free(cat);
    return st;
}

/* ---- the debug dump of the trainer's segmentation -------------------------------------------- */

typedef struct word_rank {
    int64_t count;
    const char *s;
    uint32_t len;
    int32_t id;
} word_rank;

static int word_rank_cmp(const void *x, const void *y) {
    const word_rank *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Writes "count\tpiece piece ...\n" for the dump_words most frequent words (ties by bytes);
 * characters left to byte fallback appear as their <0xXX> pieces. */
static rlhf_status write_dump(const trainer *t, const char *path, int32_t n_dump) {
    const strset *W = t->words;
    word_rank *r = malloc(W->n * sizeof *r);
    if (!r) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate the dump order");
    for (size_t w = 0; w < W->n; w++)
        r[w] = (word_rank){W->val[w], strset_str(W, (int32_t)w), W->len[w], (int32_t)w};
    qsort(r, W->n, sizeof *r, word_rank_cmp);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(r);
        return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    size_t n = (size_t)n_dump < W->n ? (size_t)n_dump : W->n;
    for (size_t k = 0; k < n; k++) {
        int32_t w = r[k].id;
        const unsigned char *p = (const unsigned char *)r[k].s;
        size_t len = r[k].len, at = 0;
        fprintf(f, "%lld\t", (long long)r[k].count);
        const int32_t *s = t->wsym + t->woff[w];
        for (int32_t i = 0; i < t->wlen[w]; i++) {
            if (i) fputc(' ', f);
            int32_t chars = s[i] >= 0 ? t->sym[s[i]].nchars : 1;
            if (s[i] >= 0) fwrite(strset_str(&t->syms, s[i]), 1, t->syms.len[s[i]], f);
            for (int32_t c = 0; c < chars && at < len; c++) {
                uint32_t cp;
                at += (size_t)utf8_decode(p + at, len - at, &cp);
                if (s[i] < 0) {
                    char u[4];
                    int ul = utf8_encode(cp, u);
                    for (int b = 0; b < ul; b++)
                        fprintf(f, "<0x%02X>", (unsigned char)u[b]);
                }
            }
        }
        fputc('\n', f);
    }
    free(r);
    if (fclose(f) != 0) return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return RLHF_OK;
}

/* ---- protobuf wire format -------------------------------------------------------------------- */

typedef struct pbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} pbuf;

static void pb_raw(pbuf *b, const void *data, size_t n) {
    if (b->oom) return;
    if (grow((void **)&b->p, 1, &b->cap, b->n + n) != RLHF_OK) {
        b->oom = true;
        return;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void pb_varint(pbuf *b, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    pb_raw(b, tmp, (size_t)n);
}

static void pb_key(pbuf *b, int field, int wire) {
    pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

/* int32/int64/bool/enum fields: negative values are sign-extended to 64 bits (10 bytes). */
static void pb_int(pbuf *b, int field, int64_t v) {
    pb_key(b, field, 0);
    pb_varint(b, (uint64_t)v);
}

static void pb_float(pbuf *b, int field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pb_key(b, field, 5);
    pb_raw(b, le, 4);
}

static void pb_bytes(pbuf *b, int field, const void *data, size_t n) {
    pb_key(b, field, 2);
    pb_varint(b, n);
    pb_raw(b, data, n);
}

static void pb_str(pbuf *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

static void pb_piece(pbuf *b, pbuf *tmp, const char *s, size_t n, float score, int type) {
    tmp->n = 0;
    pb_bytes(tmp, 1, s, n);
    pb_float(tmp, 2, score);
    pb_int(tmp, 3, type);
    if (tmp->oom) b->oom = true;
    pb_bytes(b, 1, tmp->p, tmp->n);
}

/* Serializes the ModelProto. */
static rlhf_status build_model(const trainer *t, const char *const *corpus, int32_t n_corpus,
                               pbuf *b) {
    pbuf tmp = {0};
    static const char *const meta[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++)
        pb_piece(b, &tmp, meta[i], strlen(meta[i]), 0.0f, i == 0 ? PIECE_UNKNOWN : PIECE_CONTROL);
    for (int i = 0; i < 256; i++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", i);
        pb_piece(b, &tmp, s, 6, 0.0f, PIECE_BYTE);
    }
    int32_t k = 0;
    for (int32_t i = 0; i < t->n_merged; i++, k++) {
        int32_t id = t->merged[i];
        pb_piece(b, &tmp, strset_str(&t->syms, id), t->syms.len[id], -(float)k, PIECE_NORMAL);
    }
    for (int32_t id = 0; id < t->n_chars; id++, k++)
        pb_piece(b, &tmp, strset_str(&t->syms, id), t->syms.len[id], -(float)k, PIECE_NORMAL);

    /* trainer_spec (field 2): what SentencePiece records about training, ids and pieces */
    const rlhf_tokenizer_train_opts *o = t->o;
    tmp.n = 0;
    for (int32_t i = 0; i < n_corpus; i++)
        pb_str(&tmp, 1, corpus[i]);                     /* input */
    pb_str(&tmp, 7, "text");                            /* input_format */
    pb_int(&tmp, 3, 2);                                 /* model_type BPE */
    pb_int(&tmp, 4, N_META + t->n_chars + t->n_merged); /* vocab_size */
    pb_float(&tmp, 10, o->character_coverage);
    pb_int(&tmp, 20, o->max_piece_chars); /* max_sentencepiece_length */
    pb_int(&tmp, 21, 1);                  /* split_by_unicode_script */
    pb_int(&tmp, 22, 1);                  /* split_by_whitespace */
    pb_int(&tmp, 23, 1);                  /* split_by_number */
    pb_int(&tmp, 24, 0);                  /* treat_whitespace_as_suffix */
    pb_int(&tmp, 25, 1);                  /* split_digits */
    pb_int(&tmp, 26, 0);                  /* allow_whitespace_only_pieces */
    pb_int(&tmp, 32, 1);                  /* vocabulary_output_piece_score */
    pb_int(&tmp, 33, 1);                  /* hard_vocab_limit */
    pb_int(&tmp, 34, 0);                  /* use_all_vocab */
    pb_int(&tmp, 35, 1);                  /* byte_fallback */
    pb_int(&tmp, 40, 0);                  /* unk_id */
    pb_int(&tmp, 41, 1);                  /* bos_id */
    pb_int(&tmp, 42, 2);                  /* eos_id */
    pb_int(&tmp, 43, -1);                 /* pad_id: none */
    pb_str(&tmp, 44, " \xE2\x81\x87 ");   /* unk_surface " ⁇ " */
    pb_str(&tmp, 45, "<unk>");
    pb_str(&tmp, 46, "<s>");
    pb_str(&tmp, 47, "</s>");
    pb_str(&tmp, 48, "<pad>");
    if (tmp.oom) b->oom = true;
    pb_bytes(b, 2, tmp.p, tmp.n);

    /* normalizer_spec (field 3): identity, dummy prefix, spaces kept and escaped */
    tmp.n = 0;
    pb_str(&tmp, 1, "identity");
    pb_bytes(&tmp, 2, "", 0); /* precompiled_charsmap: empty = no normalization */
    pb_int(&tmp, 3, 1);       /* add_dummy_prefix */
    pb_int(&tmp, 4, 0);       /* remove_extra_whitespaces */
    pb_int(&tmp, 5, 1);       /* escape_whitespaces */
    pb_str(&tmp, 6, "");      /* normalization_rule_tsv */
    if (tmp.oom) b->oom = true;
    pb_bytes(b, 3, tmp.p, tmp.n);
    free(tmp.p);
    if (b->oom) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate the model (%zu bytes)", b->n);
    return RLHF_OK;
}

/* Writes data to path through a temporary file in the same directory, fsync and rename, so
 * path holds either its old content or the whole new one. */
static rlhf_status write_atomic(const char *path, const void *data, size_t n) {
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate a path");
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rlhf_status st =
            RLHF_ERR(RLHF_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        return st;
    }
    rlhf_status st = RLHF_OK;
    const char *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            st = RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (st == RLHF_OK && fchmod(fd, 0644) != 0)
        st = RLHF_ERR(RLHF_ERR_IO, "%s: chmod failed: %s", tmp, strerror(errno));
    if (st == RLHF_OK && fsync(fd) != 0)
        st = RLHF_ERR(RLHF_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == RLHF_OK)
        st = RLHF_ERR(RLHF_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (st == RLHF_OK && rename(tmp, path) != 0)
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (st != RLHF_OK) {
        unlink(tmp);
    } else {
        /* make the rename durable: fsync the directory (best effort) */
        const char *slash = strrchr(path, '/');
        char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
        if (dir) {
            int dfd = open(dir, O_RDONLY);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
    free(tmp);
    return st;
}

/* ---- public entry points --------------------------------------------------------------------- */

rlhf_tokenizer_train_opts rlhf_tokenizer_train_defaults(void) {
    rlhf_tokenizer_train_opts o;
    memset(&o, 0, sizeof o);
    o.vocab_size = 4096;
    o.character_coverage = 0.9995f;
    o.max_piece_chars = 16;
    o.dump_words = 1000;
    return o;
}

rlhf_status rlhf_tokenizer_train(const rlhf_tokenizer_train_opts *o, const char *const *corpus,
                                 int32_t n_corpus, const char *out_path,
                                 rlhf_tokenizer_train_stats *stats) {
    if (!o || !corpus || !out_path) return RLHF_ERR(RLHF_ERR_ARG, "NULL argument");
    if (n_corpus <= 0) return RLHF_ERR(RLHF_ERR_ARG, "no corpus file given");
    if (o->vocab_size <= N_META)
        return RLHF_ERR(RLHF_ERR_ARG,
                        "vocab %d is too small: the 3 special and 256 byte pieces alone take %d",
                        (int)o->vocab_size, N_META);
    if (!(o->character_coverage > 0.0f && o->character_coverage <= 1.0f))
        return RLHF_ERR(RLHF_ERR_ARG, "character coverage %g is not in (0, 1]",
                        (double)o->character_coverage);
    if (o->max_piece_chars < 2 || o->max_piece_chars > 256)
        return RLHF_ERR(RLHF_ERR_ARG, "max piece length %d is not in [2, 256]",
                        (int)o->max_piece_chars);
    {
        /* fail before the work when the output cannot be written */
        const char *slash = strrchr(out_path, '/');
        char *dir = slash ? strndup(out_path, slash == out_path ? 1 : (size_t)(slash - out_path))
                          : strdup(".");
        if (!dir) return RLHF_ERR(RLHF_ERR_NOMEM, "cannot allocate a path");
        int ok = access(dir, W_OK) == 0;
        int err = errno;
        free(dir);
        if (!ok)
            return RLHF_ERR(RLHF_ERR_IO, "%s: cannot write in its directory: %s", out_path,
                            strerror(err));
    }
    rlhf_tokenizer_train_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);

    rlhf_status st = RLHF_OK;
    reader r;
    memset(&r, 0, sizeof r);
    r.max_bytes = o->max_bytes;
    trainer t;
    memset(&t, 0, sizeof t);
    t.o = o;
    pbuf model = {0};

    double t0 = now_s();
    for (int32_t i = 0; i < n_corpus && !r.full; i++) {
        if (!corpus[i]) {
            st = RLHF_ERR(RLHF_ERR_ARG, "corpus file %d is NULL", (int)i);
            goto out;
        }
        RLHF_TRY_GOTO(st, read_corpus(&r, corpus[i]), out);
    }
    stats->lines = r.lines;
    stats->bytes = r.bytes;
    stats->words = r.n_words;
    stats->unique_words = (int64_t)r.words.n;
    stats->seconds_read = now_s() - t0;
    if (r.lines == 0) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s%s: no text to train on (every line is empty)", corpus[0],
                      n_corpus > 1 ? " ..." : "");
        goto out;
    }
    free(r.wbuf);
    r.wbuf = NULL;

    double t1 = now_s();
    t.words = &r.words;
    RLHF_TRY_GOTO(st, trainer_setup(&t, stats), out);
    int64_t n_target = (int64_t)o->vocab_size - N_META - t.n_chars;
    if (n_target < 0) {
        st = RLHF_ERR(RLHF_ERR_ARG,
                      "vocab %d is too small: the corpus needs %d kept characters (coverage %g) "
                      "besides the 259 special and byte pieces, at least %d in all; raise --vocab "
                      "or lower --character-coverage",
                      (int)o->vocab_size, (int)t.n_chars, (double)o->character_coverage,
                      (int)(N_META + t.n_chars));
        goto out;
    }
    RLHF_TRY_GOTO(st, trainer_merge(&t, (int32_t)n_target), out);
    stats->merges = t.n_merged;
    stats->dup_merges = t.n_dup;
    stats->vocab_size = N_META + t.n_chars + t.n_merged;
    stats->seconds_merge = now_s() - t1;

    if (o->dump_path && o->dump_words > 0)
        RLHF_TRY_GOTO(st, write_dump(&t, o->dump_path, o->dump_words), out);
    RLHF_TRY_GOTO(st, build_model(&t, corpus, n_corpus, &model), out);
    RLHF_TRY_GOTO(st, write_atomic(out_path, model.p, model.n), out);
out:
    free(model.p);
    trainer_free(&t);
    strset_free(&r.words);
    free(r.wbuf);
    return st;
}
