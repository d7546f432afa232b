/* spm_impl.h: internal interface of spm.c, the SentencePiece tokenizer.model reader and its BPE
 * encoder/decoder. Used by tokenizer.c, which wraps a spm_model in the public rlhf_tokenizer.
 * Not installed; not part of the public API. */
#ifndef RLHF_SPM_IMPL_H
#define RLHF_SPM_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "rlhf.h"

/* ModelProto.SentencePiece.Type values, as in sentencepiece_model.proto. */
enum {
    SPM_NORMAL = 1,
    SPM_UNKNOWN = 2,
    SPM_CONTROL = 3,
    SPM_USER_DEFINED = 4,
    SPM_UNUSED = 5,
    SPM_BYTE = 6,
};

typedef struct spm_model spm_model;

/* True when data looks like a serialized ModelProto (first field: pieces, a length-delimited
 * message whose first field is the piece string) rather than a llama2.c tokenizer.bin (which
 * starts with an int32 max_token_length). Cannot fail. */
int spm_looks_like_model(const unsigned char *data, size_t size);

/* Parses a serialized ModelProto held in data[0..size). path names the file in error messages.
 * Contract: on success *out owns a model (spm_model_free). Failures: RLHF_ERR_FORMAT for any
 * wire-format violation (truncated varint, length past the end, wrong wire type, group fields),
 * for no pieces, an empty or duplicated piece, a bad type, ids out of range, missing UNKNOWN or
 * byte pieces, a model type other than BPE; RLHF_ERR_UNSUPPORTED for a non-identity normalizer
 * (a precompiled charsmap) or treat_whitespace_as_suffix; RLHF_ERR_NOMEM. *out NULL on failure. */
rlhf_status spm_model_parse(spm_model **out, const unsigned char *data, size_t size,
                            const char *path);
void spm_model_free(spm_model *m);

int32_t spm_model_size(const spm_model *m);
int32_t spm_model_unk(const spm_model *m);
int32_t spm_model_bos(const spm_model *m); /* -1 when the model has none */
int32_t spm_model_eos(const spm_model *m); /* -1 when the model has none */
int spm_model_type(const spm_model *m, int32_t id); /* SPM_*; id must be in range */
/* Raw piece bytes (with U+2581 for spaces), NUL-terminated; *len its length. */
const char *spm_model_piece(const spm_model *m, int32_t id, size_t *len);
float spm_model_score(const spm_model *m, int32_t id);
size_t spm_model_max_piece_len(const spm_model *m); /* longest raw piece in bytes */

/* Encodes text[0..len) (UTF-8; invalid bytes become U+FFFD, as SentencePiece does) exactly as
 * SentencePiece's BPE encoder: identity normalization, dummy prefix, ' ' -> U+2581, merges by
 * piece score (leftmost on ties), byte fallback. *ids gets a malloc'ed array (free()) of *n ids,
 * no BOS/EOS. Failures: RLHF_ERR_ARG (text over 256 MiB), RLHF_ERR_NOMEM. */
rlhf_status spm_encode(const spm_model *m, const char *text, size_t len, int32_t **ids,
                       int32_t *n);

/* Decodes ids exactly as SentencePiece's DecodeIds: control pieces vanish, UNKNOWN gives the
 * unk surface (" \u2047 "), runs of byte pieces are reassembled into UTF-8 (each invalid byte
 * becomes U+FFFD), U+2581 becomes ' ', and the first piece loses one leading U+2581 (the dummy
 * prefix). *text gets a malloc'ed NUL-terminated string (free()), *len its length (may be NULL).
 * Failures: RLHF_ERR_ARG (an id out of range, naming its index), RLHF_ERR_NOMEM. */
rlhf_status spm_decode(const spm_model *m, const int32_t *ids, int32_t n, char **text,
                       size_t *len);

/* Text of one piece for streaming: control "", UNKNOWN the unk surface, a byte piece its raw byte,
 * others with U+2581 as ' '; the leading space is dropped when prev < 0 or prev is a control
 * piece (the dummy prefix after BOS). Pointer valid while m lives. Cannot fail (ids out of range
 * give ""). */
const char *spm_piece_text(const spm_model *m, int32_t prev, int32_t id, size_t *len);

#endif /* RLHF_SPM_IMPL_H */
