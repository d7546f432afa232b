/* spm.c: SentencePiece tokenizer.model files and SentencePiece's BPE encoder, id for id.
 *
 * The file is a serialized protobuf ModelProto (sentencepiece_model.proto, proto2):
 *   1 pieces (repeated SentencePiece: 1 piece string, 2 score float, 3 type enum, default NORMAL)
 *   2 trainer_spec (3 model_type, 24 treat_whitespace_as_suffix, 25 split_digits,
 *     35 byte_fallback, 40-43 unk/bos/eos/pad ids, 44 unk_surface, ...)
 *   3 normalizer_spec (1 name, 2 precompiled_charsmap, 3 add_dummy_prefix,
 *     4 remove_extra_whitespaces, 5 escape_whitespaces)
 *   4 self_test_data, 5 denormalizer_spec.
 * We read it with a small strict wire-format reader instead of protobuf-c: about fifteen fields
 * are needed, and protobuf-c would bring a code generator, generated sources and a library
 * dependency for them. The reader checks every length against the bytes that remain, rejects
 * truncated or over-long varints, wrong wire types on known fields and group wire types, and
 * skips unknown fields (as protobuf does). Errors name the file, the byte offset and the field.
 *
 * Encoding (SentencePiece 0.1.97 bpe_model.cc + normalizer.cc + sentencepiece_processor.cc):
 *   1. normalize: each input character is kept as is (identity normalizer; an invalid UTF-8 byte
 *      becomes U+FFFD and consumes one byte); with remove_extra_whitespaces, leading and
 *      trailing spaces go and runs of spaces collapse to one; a dummy-prefix space is prepended
 *      to non-empty text when add_dummy_prefix; every ' ' becomes U+2581 when
 *      escape_whitespaces. Only ' ' is whitespace here: tabs and newlines stay as they are.
 *   2. split into symbols: a USER_DEFINED piece matching at this point (longest) is one frozen
 *      symbol; otherwise one UTF-8 character.
 *   3. merge: every adjacent pair whose concatenation is a NORMAL, USER_DEFINED or UNUSED piece
 *      is a candidate; repeatedly apply the candidate with the highest piece score, the leftmost
 *      on ties (a binary heap; a candidate is stale once either symbol changed size), then add the
 *      new pairs with the neighbours. O(n log n).
 *   4. output: each symbol's id (CONTROL/UNKNOWN/BYTE pieces are looked up first, as
 *      SentencePiece's PieceToId does; absent = UNKNOWN). An UNUSED piece is split back into the
 *      two symbols it was merged from, recursively. An UNKNOWN symbol with byte_fallback becomes
 *      the byte pieces <0xXX> of its UTF-8 bytes; without byte_fallback, consecutive unknown
 *      symbols give a single UNK id.
 * Chat markers such as "[INST]", "<<SYS>>" or "<s>" are ordinary text: CONTROL pieces are never
 * produced from text.
 *
 * Decoding follows DecodeIds: see spm_decode. decode(encode(s)) == s for valid UTF-8 s unless s
 * contains U+2581 (encoded like a space and decoded as one, in SentencePiece too) or, with
 * remove_extra_whitespaces, spaces it removes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spm_impl.h"

#define SPM_SPACE     "\xE2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's space */
#define SPM_SPACE_LEN 3
#define SPM_REPL      "\xEF\xBF\xBD" /* U+FFFD REPLACEMENT CHARACTER */
#define SPM_MAX_TEXT  ((size_t)1 << 28) /* bytes; 3 * this + 3 still fits in int32 */
#define SPM_MAX_FILE  ((size_t)1 << 30)

typedef struct spm_map {
    int32_t *slots; /* (cap) piece ids, -1 empty */
    uint32_t mask;  /* cap - 1 */
} spm_map;

struct spm_model {
    int32_t n;      /* number of pieces V */
    char *blob;     /* raw pieces, each NUL-terminated */
    int64_t *off;   /* (V) offsets into blob */
    int32_t *len;   /* (V) piece lengths in bytes */
    float *score;   /* (V) */
    uint8_t *type;  /* (V) SPM_* */
    char *text;     /* decoded piece texts (U+2581 -> ' '; byte pieces: the byte), NUL-terminated */
    int64_t *toff;  /* (V) offsets into text */
    int32_t *tlen;  /* (V) */
    uint8_t *strip; /* (V) 1: raw piece starts with U+2581 and may lose it at the start */
    spm_map normal;   /* NORMAL, USER_DEFINED, UNUSED: what merges may produce */
    spm_map reserved; /* CONTROL, UNKNOWN, BYTE */
    int32_t byte_id[256]; /* id of <0xXX>, -1 when absent */
    int32_t unk, bos, eos, pad;
    int32_t max_len;      /* longest piece */
    int32_t max_user_len; /* longest USER_DEFINED piece, 0 when none */
    int32_t n_unused;
    int model_type;
    bool byte_fallback, split_digits;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    char *unk_surface;
    size_t unk_surface_len;
};

/* ---- UTF-8 ------------------------------------------------------------------------------------ */

/* Length (1-4) of the valid UTF-8 character at s with n >= 1 bytes available, 0 if the bytes
 * there are not one: overlong forms, surrogates, values above U+10FFFF, truncation and stray
 * continuation bytes are invalid (SentencePiece's DecodeUTF8 rules). Cannot fail. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    const unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* UTF-16 surrogates */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* ---- protobuf wire format --------------------------------------------------------------------- */

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

typedef struct pb_reader {
    const unsigned char *base; /* start of the file, for byte offsets in messages */
    const unsigned char *p, *end;
    const char *path;
    char what[64]; /* the message being read, e.g. "pieces[12]" */
} pb_reader;

static rlhf_status pb_error(const pb_reader *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rlhf_status pb_error(const pb_reader *r, int line, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rlhf_error_set(RLHF_ERR_FORMAT, __FILE__, line,
                          "%s: not a valid SentencePiece model: byte %lld, in %s: %s", r->path,
                          (long long)(r->p - r->base), r->what, msg);
}
#define PB_ERR(r, ...) pb_error((r), __LINE__, __VA_ARGS__)

static rlhf_status pb_varint(pb_reader *r, uint64_t *v) {
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end) return PB_ERR(r, "truncated varint");
        const unsigned char b = *r->p++;
        if (i == 9 && b > 1) return PB_ERR(r, "varint does not fit in 64 bits");
        x |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return RLHF_OK;
        }
    }
    return PB_ERR(r, "varint does not fit in 64 bits"); /* not reached */
}

/* Reads a field key; rejects field number 0, groups (wire types 3, 4) and wire types 6, 7. */
static rlhf_status pb_key(pb_reader *r, uint32_t *field, uint32_t *wt) {
    uint64_t k = 0;
    RLHF_TRY(pb_varint(r, &k));
    if ((k >> 3) == 0 || (k >> 3) > 0x1FFFFFFF)
        return PB_ERR(r, "invalid field number %llu", (unsigned long long)(k >> 3));
    *field = (uint32_t)(k >> 3);
    *wt = (uint32_t)(k & 7);
    if (*wt != PB_VARINT && *wt != PB_FIXED64 && *wt != PB_LEN && *wt != PB_FIXED32)
        return PB_ERR(r, "field %u has unsupported wire type %u", *field, *wt);
    return RLHF_OK;
}

static rlhf_status pb_bytes(pb_reader *r, const unsigned char **p, size_t *n) {
    uint64_t l = 0;
    RLHF_TRY(pb_varint(r, &l));
    if (l > (uint64_t)(r->end - r->p))
        return PB_ERR(r, "length %llu runs past the end (%lld bytes left)", (unsigned long long)l,
                      (long long)(r->end - r->p));
    *p = r->p;
    *n = (size_t)l;
    r->p += l;
    return RLHF_OK;
}

static rlhf_status pb_fixed(pb_reader *r, size_t n, unsigned char *out) {
    if ((size_t)(r->end - r->p) < n)
        return PB_ERR(r, "truncated %zu-byte fixed-width value", n);
    memcpy(out, r->p, n);
    r->p += n;
    return RLHF_OK;
}

static rlhf_status pb_skip(pb_reader *r, uint32_t wt) {
    uint64_t v = 0;
    const unsigned char *p = NULL;
    size_t n = 0;
    unsigned char buf[8];
    switch (wt) {
    case PB_VARINT: return pb_varint(r, &v);
    case PB_FIXED64: return pb_fixed(r, 8, buf);
    case PB_LEN: return pb_bytes(r, &p, &n);
    default: return pb_fixed(r, 4, buf);
    }
}

static rlhf_status pb_want(pb_reader *r, uint32_t field, uint32_t wt, uint32_t want,
                           const char *name) {
    if (wt == want) return RLHF_OK;
    return PB_ERR(r, "field %u (%s) has wire type %u, expected %u", field, name, wt, want);
}

/* An int32/enum field: a varint that sign-extends to a value in int32 range. */
static rlhf_status pb_int32(pb_reader *r, uint32_t field, uint32_t wt, const char *name,
                            int32_t *out) {
    RLHF_TRY(pb_want(r, field, wt, PB_VARINT, name));
    uint64_t v = 0;
    RLHF_TRY(pb_varint(r, &v));
    const int64_t s = (int64_t)v;
    if (s < INT32_MIN || s > INT32_MAX)
        return PB_ERR(r, "field %u (%s): value %lld is out of int32 range", field, name,
                      (long long)s);
    *out = (int32_t)s;
    return RLHF_OK;
}

static rlhf_status pb_bool(pb_reader *r, uint32_t field, uint32_t wt, const char *name,
                           bool *out) {
    RLHF_TRY(pb_want(r, field, wt, PB_VARINT, name));
    uint64_t v = 0;
    RLHF_TRY(pb_varint(r, &v));
    *out = v != 0;
    return RLHF_OK;
}

static pb_reader pb_sub(const pb_reader *r, const unsigned char *p, size_t n, const char *what) {
    pb_reader s = {r->base, p, p + n, r->path, {0}};
    snprintf(s.what, sizeof s.what, "%s", what);
    return s;
}

/* ---- parsing ---------------------------------------------------------------------------------- */

typedef struct raw_piece {
    const unsigned char *s; /* into the file buffer */
    size_t n;
    float score;
    int32_t type;
    int64_t at; /* byte offset of the message, for errors */
} raw_piece;

static rlhf_status parse_piece(pb_reader *r, raw_piece *rp) {
    rp->s = NULL;
    rp->n = 0;
    rp->score = 0;
    rp->type = SPM_NORMAL;
    bool have_piece = false;
    while (r->p < r->end) {
        uint32_t f = 0, wt = 0;
        RLHF_TRY(pb_key(r, &f, &wt));
        if (f == 1) {
            RLHF_TRY(pb_want(r, f, wt, PB_LEN, "piece"));
            RLHF_TRY(pb_bytes(r, &rp->s, &rp->n));
            have_piece = true;
        } else if (f == 2) {
            RLHF_TRY(pb_want(r, f, wt, PB_FIXED32, "score"));
            unsigned char b[4] = {0};
            RLHF_TRY(pb_fixed(r, 4, b));
            uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 24;
            memcpy(&rp->score, &u, 4);
        } else if (f == 3) {
            RLHF_TRY(pb_int32(r, f, wt, "type", &rp->type));
            if (rp->type < SPM_NORMAL || rp->type > SPM_BYTE)
                return PB_ERR(r, "unknown piece type %d", rp->type);
        } else {
            RLHF_TRY(pb_skip(r, wt));
        }
    }
    if (!have_piece || rp->n == 0) return PB_ERR(r, "empty piece");
    return RLHF_OK;
}

static rlhf_status parse_trainer(pb_reader *r, spm_model *m, int32_t *unk_id,
                                 bool *ws_suffix) {
    while (r->p < r->end) {
        uint32_t f = 0, wt = 0;
        RLHF_TRY(pb_key(r, &f, &wt));
        switch (f) {
        case 3: RLHF_TRY(pb_int32(r, f, wt, "model_type", &m->model_type)); break;
        case 24: RLHF_TRY(pb_bool(r, f, wt, "treat_whitespace_as_suffix", ws_suffix)); break;
        case 25: RLHF_TRY(pb_bool(r, f, wt, "split_digits", &m->split_digits)); break;
        case 35: RLHF_TRY(pb_bool(r, f, wt, "byte_fallback", &m->byte_fallback)); break;
        case 40: RLHF_TRY(pb_int32(r, f, wt, "unk_id", unk_id)); break;
        case 41: RLHF_TRY(pb_int32(r, f, wt, "bos_id", &m->bos)); break;
        case 42: RLHF_TRY(pb_int32(r, f, wt, "eos_id", &m->eos)); break;
        case 43: RLHF_TRY(pb_int32(r, f, wt, "pad_id", &m->pad)); break;
        case 44: {
            RLHF_TRY(pb_want(r, f, wt, PB_LEN, "unk_surface"));
            const unsigned char *p = NULL;
            size_t n = 0;
            RLHF_TRY(pb_bytes(r, &p, &n));
            char *s = malloc(n + 1);
            if (!s) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory", r->path);
            memcpy(s, p, n);
            s[n] = '\0';
            free(m->unk_surface);
            m->unk_surface = s;
            m->unk_surface_len = n;
            break;
        }
        default: RLHF_TRY(pb_skip(r, wt));
        }
    }
    return RLHF_OK;
}

/* Reads a NormalizerSpec; *charsmap_len gets the precompiled charsmap's size. */
static rlhf_status parse_normalizer(pb_reader *r, bool *dummy, bool *remove_ws, bool *escape,
                                    size_t *charsmap_len, char *name, size_t name_cap) {
    while (r->p < r->end) {
        uint32_t f = 0, wt = 0;
        RLHF_TRY(pb_key(r, &f, &wt));
        const unsigned char *p = NULL;
        size_t n = 0;
        switch (f) {
        case 1:
            RLHF_TRY(pb_want(r, f, wt, PB_LEN, "name"));
            RLHF_TRY(pb_bytes(r, &p, &n));
            snprintf(name, name_cap, "%.*s", (int)(n < 40 ? n : 40), (const char *)p);
            break;
        case 2:
            RLHF_TRY(pb_want(r, f, wt, PB_LEN, "precompiled_charsmap"));
            RLHF_TRY(pb_bytes(r, &p, charsmap_len));
            break;
        case 3: RLHF_TRY(pb_bool(r, f, wt, "add_dummy_prefix", dummy)); break;
        case 4: RLHF_TRY(pb_bool(r, f, wt, "remove_extra_whitespaces", remove_ws)); break;
        case 5: RLHF_TRY(pb_bool(r, f, wt, "escape_whitespaces", escape)); break;
        default: RLHF_TRY(pb_skip(r, wt));
        }
    }
    return RLHF_OK;
}

int spm_looks_like_model(const unsigned char *data, size_t size) {
    /* key 0x0A (field 1, length-delimited), a length that fits, then key 0x0A (piece string) */
    if (size < 4 || data[0] != 0x0A) return 0;
    pb_reader r = {data, data + 1, data + size, "", {0}};
    const unsigned char *p = NULL;
    size_t n = 0;
    rlhf_status st = pb_bytes(&r, &p, &n);
    rlhf_error_clear();
    return st == RLHF_OK && n >= 2 && p[0] == 0x0A;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

/* Id of the piece in map mp equal to s[0..n), -1 if none. Cannot fail. */
static int32_t map_find(const spm_model *m, const spm_map *mp, const char *s, size_t n) {
    for (uint32_t i = (uint32_t)hash_bytes(s, n) & mp->mask;; i = (i + 1) & mp->mask) {
        const int32_t id = mp->slots[i];
        if (id < 0) return -1;
        if ((size_t)m->len[id] == n && memcmp(m->blob + m->off[id], s, n) == 0) return id;
    }
}

static void map_insert(const spm_model *m, spm_map *mp, int32_t id) {
    uint32_t i = (uint32_t)hash_bytes(m->blob + m->off[id], (size_t)m->len[id]) & mp->mask;
    while (mp->slots[i] >= 0)
        i = (i + 1) & mp->mask;
    mp->slots[i] = id;
}

/* PieceToId: reserved pieces first, then the others; -1 when absent. Cannot fail. */
static int32_t piece_to_id(const spm_model *m, const char *s, size_t n) {
    const int32_t id = map_find(m, &m->reserved, s, n);
    return id >= 0 ? id : map_find(m, &m->normal, s, n);
}

void spm_model_free(spm_model *m) {
    if (!m) return;
    free(m->blob);
    free(m->off);
    free(m->len);
    free(m->score);
    free(m->type);
    free(m->text);
    free(m->toff);
    free(m->tlen);
    free(m->strip);
    free(m->normal.slots);
    free(m->reserved.slots);
    free(m->unk_surface);
    free(m);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static const char *type_name(int t) {
    static const char *names[] = {"?",      "NORMAL", "UNKNOWN", "CONTROL",
                                  "USER_DEFINED", "UNUSED", "BYTE"};
    return t >= 1 && t <= 6 ? names[t] : "?";
}

/* Builds the lookup tables and checks the model's consistency (see spm_model_parse). */
static rlhf_status build_model(spm_model *m, const raw_piece *rp, int32_t n, int32_t unk_id,
                               const char *path) {
    int64_t bytes = 0;
    for (int32_t i = 0; i < n; i++)
        bytes += (int64_t)rp[i].n + 1;
    m->n = n;
    m->blob = malloc((size_t)bytes);
    m->text = malloc((size_t)bytes + m->unk_surface_len + 1);
    m->off = malloc((size_t)n * sizeof *m->off);
    m->len = malloc((size_t)n * sizeof *m->len);
    m->score = malloc((size_t)n * sizeof *m->score);
    m->type = malloc((size_t)n);
    m->toff = malloc((size_t)n * sizeof *m->toff);
    m->tlen = malloc((size_t)n * sizeof *m->tlen);
    m->strip = calloc((size_t)n, 1);
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)n)
        cap <<= 1;
    m->normal.slots = malloc((size_t)cap * sizeof(int32_t));
    m->reserved.slots = malloc((size_t)cap * sizeof(int32_t));
    if (!m->blob || !m->text || !m->off || !m->len || !m->score || !m->type || !m->toff ||
        !m->tlen || !m->strip || !m->normal.slots || !m->reserved.slots)
        return RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory for %d pieces", path, n);
    m->normal.mask = m->reserved.mask = cap - 1;
    memset(m->normal.slots, 0xFF, (size_t)cap * sizeof(int32_t));
    memset(m->reserved.slots, 0xFF, (size_t)cap * sizeof(int32_t));
    for (int b = 0; b < 256; b++)
        m->byte_id[b] = -1;

    int64_t boff = 0, toff = 0;
    int32_t n_unk = 0, first_unk = -1;
    for (int32_t i = 0; i < n; i++) {
        const int t = rp[i].type;
        if (rp[i].n > (size_t)INT32_MAX / 4)
            return RLHF_ERR(RLHF_ERR_FORMAT, "%s: piece %d is %zu bytes long", path, i, rp[i].n);
        m->off[i] = boff;
        m->len[i] = (int32_t)rp[i].n;
        m->score[i] = rp[i].score;
        m->type[i] = (uint8_t)t;
        memcpy(m->blob + boff, rp[i].s, rp[i].n);
        m->blob[boff + (int64_t)rp[i].n] = '\0';
        boff += (int64_t)rp[i].n + 1;
        if (m->len[i] > m->max_len) m->max_len = m->len[i];
        const char *s = m->blob + m->off[i];
        const size_t l = (size_t)m->len[i];

        const bool normal = t == SPM_NORMAL || t == SPM_USER_DEFINED || t == SPM_UNUSED;
        spm_map *mp = normal ? &m->normal : &m->reserved;
        const int32_t dup = map_find(m, mp, s, l);
        if (dup >= 0)
            return RLHF_ERR(RLHF_ERR_FORMAT, "%s: piece %d \"%.40s\" duplicates piece %d", path, i,
                            s, dup);
        map_insert(m, mp, i);
        if (t == SPM_UNKNOWN) {
            if (n_unk++ == 0) first_unk = i;
        } else if (t == SPM_USER_DEFINED) {
            if (m->len[i] > m->max_user_len) m->max_user_len = m->len[i];
        } else if (t == SPM_UNUSED) {
            m->n_unused++;
        } else if (t == SPM_BYTE) {
            if (!m->byte_fallback)
                return RLHF_ERR(RLHF_ERR_FORMAT,
                                "%s: piece %d \"%.40s\" is a BYTE piece but byte_fallback is off",
                                path, i, s);
            const int hi = l == 6 ? hex_digit(s[3]) : -1, lo = l == 6 ? hex_digit(s[4]) : -1;
            if (l != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>' || hi < 0 || lo < 0)
                return RLHF_ERR(RLHF_ERR_FORMAT,
                                "%s: piece %d \"%.40s\" is a BYTE piece but not spelled <0xXX>",
                                path, i, s);
            m->byte_id[hi * 16 + lo] = i;
        }

        /* decoded text */
        m->toff[i] = toff;
        char *d = m->text + toff;
        size_t k = 0;
        if (t == SPM_BYTE) {
            d[k++] = (char)(hex_digit(s[3]) * 16 + hex_digit(s[4]));
        } else if (t == SPM_NORMAL || t == SPM_USER_DEFINED || t == SPM_UNUSED) {
            m->strip[i] = l >= SPM_SPACE_LEN && memcmp(s, SPM_SPACE, SPM_SPACE_LEN) == 0;
            for (size_t j = 0; j < l;) {
                if (j + SPM_SPACE_LEN <= l && memcmp(s + j, SPM_SPACE, SPM_SPACE_LEN) == 0) {
                    d[k++] = ' ';
                    j += SPM_SPACE_LEN;
                } else {
                    d[k++] = s[j++];
                }
            }
        }
        /* CONTROL and UNKNOWN: "" here (UNKNOWN is given the unk surface below) */
        d[k] = '\0';
        m->tlen[i] = (int32_t)k;
        toff += (int64_t)k + 1;
    }
    if (n_unk != 1)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: %d pieces of type UNKNOWN; exactly one is needed",
                        path, n_unk);
    m->unk = first_unk;
    if (unk_id != m->unk)
        return RLHF_ERR(RLHF_ERR_FORMAT,
                        "%s: trainer_spec.unk_id is %d but the UNKNOWN piece is id %d", path,
                        unk_id, m->unk);
    /* the UNKNOWN piece decodes to the unk surface */
    m->toff[m->unk] = toff;
    memcpy(m->text + toff, m->unk_surface, m->unk_surface_len + 1);
    m->tlen[m->unk] = (int32_t)m->unk_surface_len;

    const struct {
        const char *name;
        int32_t id;
    } special[] = {{"bos_id", m->bos}, {"eos_id", m->eos}, {"pad_id", m->pad}};
    for (int s = 0; s < 3; s++)
        if (special[s].id < -1 || special[s].id >= n)
            return RLHF_ERR(RLHF_ERR_FORMAT, "%s: trainer_spec.%s %d is outside the %d pieces",
                            path, special[s].name, special[s].id, n);
    if (m->bos >= 0 && m->type[m->bos] != SPM_CONTROL && m->type[m->bos] != SPM_USER_DEFINED)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: bos_id %d is a %s piece, not CONTROL", path, m->bos,
                        type_name(m->type[m->bos]));
    if (m->eos >= 0 && m->type[m->eos] != SPM_CONTROL && m->type[m->eos] != SPM_USER_DEFINED)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: eos_id %d is a %s piece, not CONTROL", path, m->eos,
                        type_name(m->type[m->eos]));
    if (m->byte_fallback)
        for (int b = 0; b < 256; b++)
            if (m->byte_id[b] < 0)
                return RLHF_ERR(RLHF_ERR_FORMAT,
                                "%s: byte_fallback is on but the byte piece <0x%02X> is missing",
                                path, b);
    return RLHF_OK;
}

rlhf_status spm_model_parse(spm_model **out, const unsigned char *data, size_t size,
                            const char *path) {
    if (out) *out = NULL;
    if (!out || (!data && size > 0) || !path)
        return RLHF_ERR(RLHF_ERR_ARG, "spm_model_parse: NULL argument");
    if (size == 0)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: empty file, not a SentencePiece model", path);
    if (size > SPM_MAX_FILE)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: %zu bytes is too large for a tokenizer model", path,
                        size);
    spm_model *m = calloc(1, sizeof *m);
    raw_piece *rp = NULL;
    int32_t np = 0, cap = 0;
    rlhf_status st = RLHF_OK;
    if (!m) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory", path);
    /* proto2 defaults */
    m->model_type = 1; /* UNIGRAM */
    m->bos = 1;
    m->eos = 2;
    m->pad = -1;
    m->add_dummy_prefix = m->remove_extra_whitespaces = m->escape_whitespaces = true;
    int32_t unk_id = 0;
    bool ws_suffix = false;
    size_t charsmap = 0, dcharsmap = 0;
    char nname[48] = "", dname[48] = "";
    bool d1, d2, d3;
    m->unk_surface = malloc(sizeof " \xE2\x81\x87 ");
    if (!m->unk_surface) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    memcpy(m->unk_surface, " \xE2\x81\x87 ", sizeof " \xE2\x81\x87 ");
    m->unk_surface_len = sizeof " \xE2\x81\x87 " - 1;

    pb_reader r = {data, data, data + size, path, "ModelProto"};
    while (r.p < r.end) {
        uint32_t f = 0, wt = 0;
        RLHF_TRY_GOTO(st, pb_key(&r, &f, &wt), fail);
        const unsigned char *p = NULL;
        size_t n = 0;
        if (f >= 1 && f <= 5) {
            static const char *names[] = {"", "pieces", "trainer_spec", "normalizer_spec",
                                          "self_test_data", "denormalizer_spec"};
            RLHF_TRY_GOTO(st, pb_want(&r, f, wt, PB_LEN, names[f]), fail);
            RLHF_TRY_GOTO(st, pb_bytes(&r, &p, &n), fail);
        } else {
            RLHF_TRY_GOTO(st, pb_skip(&r, wt), fail);
            continue;
        }
        if (f == 1) {
            if (np == cap) {
                if (cap >= (1 << 26)) {
                    st = PB_ERR(&r, "more than %d pieces", cap);
                    goto fail;
                }
                cap = cap ? 2 * cap : 1024;
                raw_piece *g = realloc(rp, (size_t)cap * sizeof *rp);
                if (!g) {
                    st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: out of memory", path);
                    goto fail;
                }
                rp = g;
            }
            char what[32];
            snprintf(what, sizeof what, "pieces[%d]", np);
            pb_reader s = pb_sub(&r, p, n, what);
            rp[np].at = (int64_t)(p - data);
            RLHF_TRY_GOTO(st, parse_piece(&s, &rp[np]), fail);
            np++;
        } else if (f == 2) {
            pb_reader s = pb_sub(&r, p, n, "trainer_spec");
            RLHF_TRY_GOTO(st, parse_trainer(&s, m, &unk_id, &ws_suffix), fail);
        } else if (f == 3) {
            pb_reader s = pb_sub(&r, p, n, "normalizer_spec");
            RLHF_TRY_GOTO(st,
                          parse_normalizer(&s, &m->add_dummy_prefix, &m->remove_extra_whitespaces,
                                           &m->escape_whitespaces, &charsmap, nname, sizeof nname),
                          fail);
        } else if (f == 5) {
            pb_reader s = pb_sub(&r, p, n, "denormalizer_spec");
            RLHF_TRY_GOTO(st, parse_normalizer(&s, &d1, &d2, &d3, &dcharsmap, dname, sizeof dname),
                          fail);
        }
    }
    if (np == 0) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: not a valid SentencePiece model: no pieces", path);
        goto fail;
    }
    if (m->model_type != 2) {
        static const char *mt[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
        st = RLHF_ERR(RLHF_ERR_FORMAT,
                      "%s: trainer_spec.model_type is %d (%s%s); only BPE models are supported",
                      path, m->model_type,
                      m->model_type >= 1 && m->model_type <= 4 ? mt[m->model_type] : "unknown",
                      m->model_type == 1 ? ", the default when the field is absent" : "");
        goto fail;
    }
    if (charsmap > 0 || dcharsmap > 0) {
        st = RLHF_ERR(RLHF_ERR_UNSUPPORTED,
                      "%s: the %snormalizer \"%s\" has a precompiled charsmap (%zu bytes); only the "
                      "identity normalizer is supported",
                      path, charsmap > 0 ? "" : "de", charsmap > 0 ? nname : dname,
                      charsmap > 0 ? charsmap : dcharsmap);
        goto fail;
    }
    if (ws_suffix) {
        st = RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: treat_whitespace_as_suffix is not supported",
                      path);
        goto fail;
    }
    RLHF_TRY_GOTO(st, build_model(m, rp, np, unk_id, path), fail);
    free(rp);
    *out = m;
    return RLHF_OK;
fail:
    free(rp);
    spm_model_free(m);
    return st;
}

int32_t spm_model_size(const spm_model *m) { return m->n; }
int32_t spm_model_unk(const spm_model *m) { return m->unk; }
int32_t spm_model_bos(const spm_model *m) { return m->bos; }
int32_t spm_model_eos(const spm_model *m) { return m->eos; }
int spm_model_type(const spm_model *m, int32_t id) { return m->type[id]; }
float spm_model_score(const spm_model *m, int32_t id) { return m->score[id]; }
size_t spm_model_max_piece_len(const spm_model *m) { return (size_t)m->max_len; }
const char *spm_model_piece(const spm_model *m, int32_t id, size_t *len) {
    if (len) *len = (size_t)m->len[id];
    return m->blob + m->off[id];
}

/* ---- encoding --------------------------------------------------------------------------------- */

/* Normalizes text[0..len) into out (capacity 3 * len + 3); returns the normalized length. */
static size_t normalize(const spm_model *m, const unsigned char *text, size_t len, char *out) {
    size_t i = 0, k = 0;
    if (m->remove_extra_whitespaces)
        while (i < len && text[i] == ' ')
            i++;
    if (i == len) return 0;
    const char *space = m->escape_whitespaces ? SPM_SPACE : " ";
    const size_t space_len = m->escape_whitespaces ? SPM_SPACE_LEN : 1;
    if (m->add_dummy_prefix) {
        memcpy(out + k, space, space_len);
        k += space_len;
    }
    bool prev_space = m->remove_extra_whitespaces;
    while (i < len) {
        const size_t cl = utf8_len(text + i, len - i);
        if (cl == 0) { /* invalid byte: U+FFFD, one byte consumed */
            memcpy(out + k, SPM_REPL, 3);
            k += 3;
            i++;
            prev_space = false;
            continue;
        }
        if (text[i] == ' ') {
            if (!prev_space) {
                memcpy(out + k, space, space_len);
                k += space_len;
            }
            prev_space = m->remove_extra_whitespaces;
        } else {
            memcpy(out + k, text + i, cl);
            k += cl;
            prev_space = false;
        }
        i += cl;
    }
    if (m->remove_extra_whitespaces)
        while (k >= space_len && memcmp(out + k - space_len, space, space_len) == 0)
            k -= space_len;
    return k;
}

typedef struct spm_cand {
    float score;
    int32_t left, right;
    int32_t size; /* bytes of the merged piece: stale unless the two symbols still add up */
} spm_cand;

/* a is applied before b: higher score, then the leftmost. */
static int cand_before(const spm_cand *a, const spm_cand *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static void cand_push(spm_cand *h, int32_t *n, spm_cand c) {
    int32_t i = (*n)++;
    while (i > 0) {
        const int32_t p = (i - 1) / 2;
        if (!cand_before(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static spm_cand cand_pop(spm_cand *h, int32_t *n) {
    const spm_cand top = h[0], last = h[--(*n)];
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

typedef struct spm_enc {
    const spm_model *m;
    const char *norm;
    int32_t *start, *len, *prev, *next; /* (S) symbols: byte ranges of norm, a linked list */
    uint8_t *freeze;                    /* (S) USER_DEFINED symbols never merge */
    spm_cand *heap;
    int32_t nheap;
    int32_t *rev; /* (V, 4) UNUSED piece -> (left start, left len, right start, right len) */
} spm_enc;

static void add_pair(spm_enc *e, int32_t a, int32_t b) {
    if (a < 0 || b < 0 || e->freeze[a] || e->freeze[b]) return;
    const int32_t size = e->len[a] + e->len[b];
    if (size > e->m->max_len) return;
    /* symbols are adjacent ranges of norm, so the concatenation is norm[start[a], +size) */
    const int32_t id = map_find(e->m, &e->m->normal, e->norm + e->start[a], (size_t)size);
    if (id < 0) return;
    const spm_cand c = {e->m->score[id], a, b, size};
    cand_push(e->heap, &e->nheap, c);
    if (e->m->type[id] == SPM_UNUSED) { /* remember how to split it again (last one wins) */
        e->rev[4 * id + 0] = e->start[a];
        e->rev[4 * id + 1] = e->len[a];
        e->rev[4 * id + 2] = e->start[b];
        e->rev[4 * id + 3] = e->len[b];
    }
}

/* Appends the ids of the symbol norm[s, s+l) to ids (resegmenting UNUSED pieces, byte fallback
 * for unknown ones; without byte fallback a run of unknown symbols gives one UNK, as
 * SentencePiece merges them). stack: scratch of 2 * (l + 1) entries. */
static void emit_symbol(const spm_enc *e, int32_t s, int32_t l, int32_t *ids, int32_t *n,
                        int32_t *stack) {
    const spm_model *m = e->m;
    int32_t top = 0;
    stack[top++] = s;
    stack[top++] = l;
    while (top > 0) {
        const int32_t wl = stack[--top], ws = stack[--top];
        int32_t id = piece_to_id(m, e->norm + ws, (size_t)wl);
        if (id >= 0 && m->type[id] == SPM_UNUSED && e->rev && e->rev[4 * id + 1] > 0) {
            /* right half pushed first so the left one comes out first */
            stack[top++] = e->rev[4 * id + 2];
            stack[top++] = e->rev[4 * id + 3];
            stack[top++] = e->rev[4 * id + 0];
            stack[top++] = e->rev[4 * id + 1];
            continue;
        }
        if (id < 0) id = m->unk;
        if (id == m->unk && m->byte_fallback) {
            for (int32_t j = 0; j < wl; j++)
                ids[(*n)++] = m->byte_id[(unsigned char)e->norm[ws + j]];
        } else if (id != m->unk || *n == 0 || ids[*n - 1] != m->unk) {
            ids[(*n)++] = id; /* consecutive unknowns make one UNK, as in SentencePiece */
        }
    }
}

rlhf_status spm_encode(const spm_model *m, const char *text, size_t len, int32_t **ids,
                       int32_t *n) {
    *ids = NULL;
    *n = 0;
    if (len > SPM_MAX_TEXT)
        return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_encode: text of %zu bytes is too long (max %zu)",
                        len, SPM_MAX_TEXT);
    const size_t cap = 3 * len + 3;
    char *norm = malloc(cap);
    spm_enc e = {.m = m, .norm = norm};
    int32_t *out = NULL, *stack = NULL;
    rlhf_status st = RLHF_OK;
    if (!norm) goto nomem;
    const size_t nl = normalize(m, (const unsigned char *)text, len, norm);

    /* symbols: at most one per byte */
    const size_t S = nl > 0 ? nl : 1;
    e.start = malloc(S * sizeof(int32_t));
    e.len = malloc(S * sizeof(int32_t));
    e.prev = malloc(S * sizeof(int32_t));
    e.next = malloc(S * sizeof(int32_t));
    e.freeze = calloc(S, 1);
    e.heap = malloc(3 * S * sizeof *e.heap); /* S-1 initial pairs + 2 per merge */
    out = malloc(S * sizeof(int32_t));       /* at most one id per normalized byte */
    stack = malloc(2 * (S + 1) * sizeof(int32_t));
    if (!e.start || !e.len || !e.prev || !e.next || !e.freeze || !e.heap || !out || !stack)
        goto nomem;
    if (m->n_unused > 0) {
        e.rev = calloc(4 * (size_t)m->n, sizeof(int32_t));
        if (!e.rev) goto nomem;
    }
    int32_t ns = 0;
    for (size_t i = 0; i < nl;) {
        size_t l = 0;
        if (m->max_user_len > 0) { /* longest USER_DEFINED piece starting here */
            size_t lim = nl - i < (size_t)m->max_user_len ? nl - i : (size_t)m->max_user_len;
            for (size_t k = lim; k > 0; k--) {
                const int32_t id = map_find(m, &m->normal, norm + i, k);
                if (id >= 0 && m->type[id] == SPM_USER_DEFINED) {
                    l = k;
                    e.freeze[ns] = 1;
                    break;
                }
            }
        }
        if (l == 0) l = utf8_len((const unsigned char *)norm + i, nl - i); /* valid: normalized */
        if (l == 0) l = 1; /* not reached: normalize() emits valid UTF-8 only */
        e.start[ns] = (int32_t)i;
        e.len[ns] = (int32_t)l;
        e.prev[ns] = ns - 1;
        e.next[ns] = i + l < nl ? ns + 1 : -1;
        ns++;
        i += l;
    }

    for (int32_t i = 1; i < ns; i++)
        add_pair(&e, i - 1, i);
    while (e.nheap > 0) {
        const spm_cand c = cand_pop(e.heap, &e.nheap);
        const int32_t a = c.left, b = c.right;
        if (e.len[a] == 0 || e.len[b] == 0 || e.len[a] + e.len[b] != c.size) continue; /* stale */
        e.len[a] += e.len[b];
        e.len[b] = 0;
        e.next[a] = e.next[b];
        if (e.next[b] >= 0) e.prev[e.next[b]] = a;
        add_pair(&e, e.prev[a], a);
        add_pair(&e, a, e.next[a]);
    }

    int32_t k = 0;
    for (int32_t i = ns > 0 ? 0 : -1; i >= 0; i = e.next[i])
        emit_symbol(&e, e.start[i], e.len[i], out, &k, stack);
    *ids = out;
    *n = k;
    out = NULL;
    goto done;
nomem:
    st = RLHF_ERR(RLHF_ERR_NOMEM, "tokenizer_encode: out of memory for %zu bytes of text", len);
done:
    free(norm);
    free(e.start);
    free(e.len);
    free(e.prev);
    free(e.next);
    free(e.freeze);
    free(e.heap);
    free(e.rev);
    free(stack);
    free(out);
    return st;
}

/* ---- decoding --------------------------------------------------------------------------------- */

/* Appends bytes[0..n) to d as UTF-8, each invalid byte replaced by U+FFFD; returns new length. */
static size_t flush_bytes(char *d, size_t k, const unsigned char *bytes, size_t n) {
    for (size_t i = 0; i < n;) {
        const size_t cl = utf8_len(bytes + i, n - i);
        if (cl == 0) {
            memcpy(d + k, SPM_REPL, 3);
            k += 3;
            i++;
        } else {
            memcpy(d + k, bytes + i, cl);
            k += cl;
            i += cl;
        }
    }
    return k;
}

/* Contract: see spm_impl.h. The leading-U+2581 rule: the first non-control piece (a byte piece
 * or the UNKNOWN piece included) is the one that may lose it, and only when add_dummy_prefix or
 * remove_extra_whitespaces is set. */
rlhf_status spm_decode(const spm_model *m, const int32_t *ids, int32_t n, char **text,
                       size_t *len) {
    *text = NULL;
    size_t total = 1;
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->n)
            return RLHF_ERR(RLHF_ERR_ARG, "tokenizer_decode: ids[%d] = %d outside vocab of %d", i,
                            ids[i], m->n);
        total += (size_t)m->tlen[ids[i]] + 3;
    }
    char *d = malloc(total);
    unsigned char *bytes = malloc((size_t)n + 1);
    if (!d || !bytes) {
        free(d);
        free(bytes);
        return RLHF_ERR(RLHF_ERR_NOMEM, "tokenizer_decode: cannot allocate %zu bytes", total);
    }
    const bool can_strip = m->add_dummy_prefix || m->remove_extra_whitespaces;
    bool at_start = true;
    size_t k = 0, nb = 0;
    for (int32_t i = 0; i < n; i++) {
        const int32_t id = ids[i];
        const int t = m->type[id];
        if (t == SPM_BYTE) {
            bytes[nb++] = (unsigned char)m->text[m->toff[id]];
            at_start = false;
            continue;
        }
        k = flush_bytes(d, k, bytes, nb);
        nb = 0;
        if (t == SPM_CONTROL) continue;
        const char *p = m->text + m->toff[id];
        size_t l = (size_t)m->tlen[id];
        if (at_start && can_strip && m->strip[id]) {
            p++;
            l--;
        }
        memcpy(d + k, p, l);
        k += l;
        at_start = false;
    }
    k = flush_bytes(d, k, bytes, nb);
    d[k] = '\0';
    free(bytes);
    *text = d;
    if (len) *len = k;
    return RLHF_OK;
}

const char *spm_piece_text(const spm_model *m, int32_t prev, int32_t id, size_t *len) {
    size_t dummy;
    if (!len) len = &dummy;
    *len = 0;
    if (id < 0 || id >= m->n) return "";
    const char *p = m->text + m->toff[id];
    size_t l = (size_t)m->tlen[id];
    const bool start = prev < 0 || (prev < m->n && m->type[prev] == SPM_CONTROL);
    if (start && m->strip[id] && (m->add_dummy_prefix || m->remove_extra_whitespaces)) {
        p++;
        l--;
    }
    *len = l;
    return p;
}
