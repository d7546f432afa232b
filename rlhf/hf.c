/* hf.c: Hugging Face Llama model directories (config.json + safetensors), and the checkpoint
 * dispatcher that reads either format.
 *
 * A directory as transformers' save_pretrained writes it:
 *   config.json                        LlamaConfig ("model_type": "llama", sizes, eps, theta, ...)
 *   model.safetensors                  all tensors, or
 *   model-00001-of-0000M.safetensors   shards, with
 *   model.safetensors.index.json       {"metadata": {"total_size": bytes},
 *                                       "weight_map": {tensor name: shard file name}}
 * Tensor names come from rlhf_param_table() ("model.layers.%d.self_attn.q_proj.weight", ...);
 * each per-layer table entry (L, rows, cols) becomes L tensors (rows, cols), vectors (rows,).
 *
 * RoPE layout. Our (Meta's, llama2.c's) q/k rows rotate interleaved pairs (2i, 2i+1) of each head;
 * transformers' rotate_half rotates halves (i, i + HS/2). transformers' conversion script permutes
 * the rows of q_proj (NH heads) and k_proj (NKV heads) so that both compute the same function:
 * within each head, HF row j*HS/2 + i = our row 2i + j (i < HS/2, j in {0, 1}). We apply exactly
 * that on write and its inverse on read, so a round trip is the identity bit for bit.
 *
 * Validation on read: config.json fields have the right JSON types and sane values (required:
 * hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size; the others
 * default as LlamaConfig does), every tensor the config implies is present with exactly the
 * implied shape and a float dtype, no unexpected tensors (older checkpoints'
 * rotary_emb.inv_freq buffers are ignored, and lm_head.weight when the embeddings are tied, as
 * transformers does), the index names plain file names that exist. Errors name the file and the
 * tensor or field.
 *
 * llama2.c's v0 RoPE tables (dead bytes, but PyTorch's values differ from ours in the last bit)
 * ride along in the __metadata__ of the first (or only) safetensors file, base64 of the
 * little-endian float32 values under RLHF_HF_META_FREQ with the shape "[2, T, HS/2]" under
 * RLHF_HF_META_FREQ_SHAPE, only when they differ from what rlhf_llama2c_freqs() computes: so a
 * llama2.c -> HF -> llama2.c conversion is byte-identical, and transformers, which ignores
 * metadata, sees an ordinary checkpoint.
 *
 * Writes go to DIR.tmp-XXXXXX (every file fsync'ed, then the directory), renamed to DIR at the end,
 * so a crash never leaves a half-written checkpoint under DIR. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rlhf.h"

#define HF_CONFIG  "config.json"
#define HF_SINGLE  "model.safetensors"
#define HF_INDEX   "model.safetensors.index.json"
#define HF_MAX_DIM (1 << 16)

/* Bounds on config sizes: far beyond any Llama, small enough for int64 arithmetic everywhere. */
#define HF_MAX_HIDDEN (1 << 20)
#define HF_MAX_LAYERS (1 << 12)
#define HF_MAX_VOCAB  (1 << 24)
#define HF_MAX_SEQ    (1 << 24)

/* One HF tensor: a layer slice of a parameter table entry. */
typedef struct hf_tensor {
    char name[96];
    int32_t ndim; /* 1 (rows,) or 2 (rows, cols) */
    int64_t rows, cols;
    int64_t offset; /* floats from the start of the parameter buffer */
    int64_t numel;
    int32_t perm_heads; /* > 0: RoPE row permutation over this many heads (q_proj, k_proj) */
} hf_tensor;

/* Fills t (capacity RLHF_P_COUNT * L + 3 at most) in the order transformers' state_dict uses;
 * returns the count. Cannot fail. */
static int32_t hf_tensor_list(const rlhf_model_config *c, hf_tensor *t) {
    rlhf_param_info p[RLHF_P_COUNT];
    rlhf_param_table(c, p);
    static const int layer_order[] = {RLHF_P_WQ, RLHF_P_WK,        RLHF_P_WV,
                                      RLHF_P_WO, RLHF_P_W1,        RLHF_P_W3,
                                      RLHF_P_W2, RLHF_P_ATTN_NORM, RLHF_P_FFN_NORM};
    int32_t n = 0;
#define HF_ADD(id, layer)                                                                          \
    do {                                                                                           \
        const rlhf_param_info *q = &p[(id)];                                                       \
        hf_tensor *h = &t[n++];                                                                    \
        snprintf(h->name, sizeof h->name, q->name, (layer));                                       \
        h->rows = q->rows;                                                                         \
        h->cols = q->cols;                                                                         \
        h->ndim = q->cols > 1 || (id) == RLHF_P_HEAD ? 2 : 1;                                      \
        h->numel = q->rows * q->cols;                                                              \
        h->offset = q->offset + (int64_t)(layer)*h->numel;                                         \
        h->perm_heads = (id) == RLHF_P_WQ ? c->n_head : (id) == RLHF_P_WK ? c->n_head_kv : 0;      \
    } while (0)
    HF_ADD(RLHF_P_TOK_EMB, 0);
    for (int32_t l = 0; l < c->n_layer; l++)
        for (size_t k = 0; k < sizeof layer_order / sizeof layer_order[0]; k++)
            HF_ADD(layer_order[k], l);
    HF_ADD(RLHF_P_NORM, 0);
    if (p[RLHF_P_HEAD].numel > 0) HF_ADD(RLHF_P_HEAD, 0);
#undef HF_ADD
    return n;
}

static int32_t hf_tensor_cap(const rlhf_model_config *c) { return 9 * c->n_layer + 3; }

/* RoPE row permutation of one (heads*hs, cols) matrix. to_hf: dst = HF layout from our src;
 * otherwise the inverse. src and dst must not overlap. Cannot fail. */
static void rope_permute(float *dst, const float *src, int64_t heads, int64_t hs, int64_t cols,
                         bool to_hf) {
    const int64_t half = hs / 2;
    const size_t row = (size_t)cols * sizeof(float);
    for (int64_t h = 0; h < heads; h++)
        for (int64_t i = 0; i < half; i++)
            for (int64_t j = 0; j < 2; j++) {
                const int64_t ours = h * hs + 2 * i + j, hf = h * hs + j * half + i;
                if (to_hf)
                    memcpy(dst + hf * cols, src + ours * cols, row);
                else
                    memcpy(dst + ours * cols, src + hf * cols, row);
            }
}

/* "dir/name" into a new string (free()); NULL when out of memory. */
static char *join(const char *dir, const char *name) {
    const size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

bool rlhf_hf_is_dir(const char *path) {
    struct stat sb;
    if (!path || stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return false;
    char *cfg = join(path, HF_CONFIG);
    const bool ok = cfg && is_file(cfg);
    free(cfg);
    return ok;
}

/* ---- config.json -------------------------------------------------------------------------------
 */

/* An integer field: required (absent = error) or defaulted; must lie in [1, max]. */
static rlhf_status cfg_int(const json_t *root, const char *path, const char *key, bool required,
                           int64_t def, int64_t max, int32_t *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required)
            return RLHF_ERR(RLHF_ERR_FORMAT, "%s: required field \"%s\" is missing", path, key);
        *out = (int32_t)def;
        return RLHF_OK;
    }
    if (!json_is_integer(v))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: field \"%s\" must be an integer", path, key);
    const json_int_t x = json_integer_value(v);
    if (x < 1 || x > max)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: field \"%s\" = %lld is out of range [1, %lld]", path,
                        key, (long long)x, (long long)max);
    *out = (int32_t)x;
    return RLHF_OK;
}

/* A positive finite number field with a default. */
static rlhf_status cfg_num(const json_t *root, const char *path, const char *key, double def,
                           float *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = (float)def;
        return RLHF_OK;
    }
    if (!json_is_number(v))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: field \"%s\" must be a number", path, key);
    const double x = json_number_value(v);
    if (!(x > 0) || !(x < 1e30))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: field \"%s\" = %g must be positive and finite", path,
                        key, x);
    *out = (float)x;
    return RLHF_OK;
}

/* A boolean field with a default. */
static rlhf_status cfg_bool(const json_t *root, const char *path, const char *key, bool def,
                            bool *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return RLHF_OK;
    }
    if (!json_is_boolean(v))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: field \"%s\" must be true or false", path, key);
    *out = json_is_true(v);
    return RLHF_OK;
}

/* Parses config.json at path into *c (trainable false). */
static rlhf_status hf_config_read(const char *path, rlhf_model_config *c) {
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (!is_file(path))
            return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open (not a Hugging Face model directory?)",
                            path);
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: bad JSON (line %d, column %d): %s", path, jerr.line,
                        jerr.column, jerr.text);
    }
    rlhf_status st = RLHF_OK;
    memset(c, 0, sizeof *c);
    c->head = RLHF_HEAD_LM;
    if (!json_is_object(root)) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (mt && !json_is_string(mt)) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: field \"model_type\" must be a string", path);
        goto done;
    }
    if (mt && strcmp(json_string_value(mt), "llama") != 0) {
        st =
            RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: model_type \"%.40s\" is not supported (llama only)",
                     path, json_string_value(mt));
        goto done;
    }
    json_t *arch = json_object_get(root, "architectures");
    if (arch && !json_is_null(arch)) {
        json_t *a0 = json_is_array(arch) ? json_array_get(arch, 0) : NULL;
        if (!json_is_array(arch) || (json_array_size(arch) > 0 && !json_is_string(a0))) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: \"architectures\" must be an array of strings",
                          path);
            goto done;
        }
        const char *an = a0 ? json_string_value(a0) : "LlamaForCausalLM";
        if (strcmp(an, "LlamaForSequenceClassification") == 0) {
            c->head = RLHF_HEAD_SCALAR;
        } else if (strcmp(an, "LlamaForCausalLM") != 0 && strcmp(an, "LlamaModel") != 0) {
            st = RLHF_ERR(RLHF_ERR_UNSUPPORTED,
                          "%s: architecture \"%.60s\" is not supported (LlamaForCausalLM or "
                          "LlamaForSequenceClassification)",
                          path, an);
            goto done;
        }
    }
    RLHF_TRY_GOTO(st, cfg_int(root, path, "hidden_size", true, 0, HF_MAX_DIM, &c->dim), done);
    RLHF_TRY_GOTO(
        st, cfg_int(root, path, "intermediate_size", true, 0, HF_MAX_HIDDEN, &c->hidden_dim), done);
    RLHF_TRY_GOTO(st, cfg_int(root, path, "num_hidden_layers", true, 0, HF_MAX_LAYERS, &c->n_layer),
                  done);
    RLHF_TRY_GOTO(st, cfg_int(root, path, "num_attention_heads", true, 0, HF_MAX_DIM, &c->n_head),
                  done);
    RLHF_TRY_GOTO(st, cfg_int(root, path, "vocab_size", true, 0, HF_MAX_VOCAB, &c->vocab_size),
                  done);
    RLHF_TRY_GOTO(
        st, cfg_int(root, path, "num_key_value_heads", false, c->n_head, HF_MAX_DIM, &c->n_head_kv),
        done);
    RLHF_TRY_GOTO(
        st, cfg_int(root, path, "max_position_embeddings", false, 2048, HF_MAX_SEQ, &c->seq_len),
        done);
    RLHF_TRY_GOTO(st, cfg_num(root, path, "rms_norm_eps", 1e-6, &c->norm_eps), done);
    RLHF_TRY_GOTO(st, cfg_num(root, path, "rope_theta", 10000.0, &c->rope_theta), done);
    RLHF_TRY_GOTO(st, cfg_bool(root, path, "tie_word_embeddings", false, &c->tied_head), done);
    if (c->dim % c->n_head != 0) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: num_attention_heads %d does not divide hidden_size %d",
                      path, c->n_head, c->dim);
        goto done;
    }
    if (c->n_head % c->n_head_kv != 0) {
        st = RLHF_ERR(RLHF_ERR_FORMAT,
                      "%s: num_key_value_heads %d does not divide num_attention_heads %d", path,
                      c->n_head_kv, c->n_head);
        goto done;
    }
    if ((c->dim / c->n_head) % 2 != 0) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: head size %d must be even for RoPE", path,
                      c->dim / c->n_head);
        goto done;
    }
    /* features of LlamaConfig we do not implement */
    json_t *v = json_object_get(root, "head_dim");
    if (v && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) != c->dim / c->n_head)) {
        st = RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: head_dim other than hidden_size / heads (%d)",
                      path, c->dim / c->n_head);
        goto done;
    }
    v = json_object_get(root, "rope_scaling");
    if (v && !json_is_null(v)) {
        st = RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: rope_scaling is not supported", path);
        goto done;
    }
    v = json_object_get(root, "hidden_act");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "silu") != 0)) {
        st = RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: hidden_act must be \"silu\"", path);
        goto done;
    }
    static const char *const no_bias[] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2; i++) {
        bool b;
        RLHF_TRY_GOTO(st, cfg_bool(root, path, no_bias[i], false, &b), done);
        if (b) {
            st = RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: %s true is not supported", path, no_bias[i]);
            goto done;
        }
    }
    v = json_object_get(root, "torch_dtype");
    if (v && !json_is_null(v) && !json_is_string(v)) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: field \"torch_dtype\" must be a string", path);
        goto done;
    }
    if (c->head == RLHF_HEAD_SCALAR) {
        /* transformers: num_labels, else len(id2label), else 2 */
        int64_t labels = 2;
        json_t *nl = json_object_get(root, "num_labels"), *il = json_object_get(root, "id2label");
        if (nl && !json_is_null(nl)) {
            if (!json_is_integer(nl)) {
                st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: field \"num_labels\" must be an integer", path);
                goto done;
            }
            labels = json_integer_value(nl);
        } else if (json_is_object(il)) {
            labels = (int64_t)json_object_size(il);
        }
        if (labels != 1) {
            st = RLHF_ERR(RLHF_ERR_UNSUPPORTED,
                          "%s: LlamaForSequenceClassification with %lld labels; only num_labels 1 "
                          "(a scalar reward/value head) is supported",
                          path, (long long)labels);
            goto done;
        }
        c->tied_head = false;
    }
done:
    json_decref(root);
    return st;
}

/* The shortest decimal that reads back as the float x, as a double (so config.json shows 1e-05,
 * not 9.99999974737875e-06). */
static double short_real(float x) {
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    return strtod(buf, NULL);
}

/* The config.json text for c (malloc'ed). */
static char *hf_config_text(const rlhf_model_config *c, rlhf_dtype dtype) {
    const bool scalar = c->head == RLHF_HEAD_SCALAR;
    json_t *root = json_pack(
        "{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:n, s:b, s:s, s:b, s:f, "
        "s:b, s:f, s:i, s:b, s:i, s:i, s:s}",
        "architectures", scalar ? "LlamaForSequenceClassification" : "LlamaForCausalLM",
        "model_type", "llama", "hidden_size", (int)c->dim, "intermediate_size", (int)c->hidden_dim,
        "num_hidden_layers", (int)c->n_layer, "num_attention_heads", (int)c->n_head,
        "num_key_value_heads", (int)c->n_head_kv, "head_dim", (int)(c->dim / c->n_head),
        "vocab_size", (int)c->vocab_size, "max_position_embeddings", (int)c->seq_len,
        "rms_norm_eps", short_real(c->norm_eps), "rope_theta", short_real(c->rope_theta),
        "rope_scaling", "tie_word_embeddings", !scalar && c->tied_head, "hidden_act", "silu",
        "attention_bias", 0, "attention_dropout", 0.0, "mlp_bias", 0, "initializer_range", 0.02,
        "pretraining_tp", 1, "use_cache", 1, "bos_token_id", 1, "eos_token_id", 2, "torch_dtype",
        dtype == RLHF_DTYPE_BF16 ? "bfloat16" : "float32");
    if (!root) return NULL;
    if (scalar) {
        json_t *ex = json_pack("{s:i, s:{s:s}, s:{s:i}}", "num_labels", 1, "id2label", "0",
                               "LABEL_0", "label2id", "LABEL_0", 0);
        if (!ex || json_object_update(root, ex) != 0) {
            json_decref(ex);
            json_decref(root);
            return NULL;
        }
        json_decref(ex);
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    return text;
}

/* ---- reading ------------------------------------------------------------------------------------
 */

/* Tensors any loader may meet and that carry nothing we need. */
static bool ignorable(const char *name, const rlhf_model_config *c) {
    const size_t n = strlen(name), k = strlen("rotary_emb.inv_freq");
    if (n >= k && strcmp(name + n - k, "rotary_emb.inv_freq") == 0) return true;
    /* tied: transformers ties lm_head to the embedding and ignores a stored copy */
    return c->head == RLHF_HEAD_LM && c->tied_head && strcmp(name, "lm_head.weight") == 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* True when s is a plain file name (no directories, not . or ..). */
static bool plain_name(const char *s) {
    return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* The open shards of a directory and which shard holds each expected tensor. */
typedef struct hf_files {
    int32_t n;
    rlhf_safetensors **f; /* (n) */
    char **names;         /* (n) file names */
    json_t *index;        /* parsed index, or NULL */
} hf_files;

static void hf_files_free(hf_files *h) {
    for (int32_t i = 0; i < h->n; i++) {
        rlhf_safetensors_close(h->f[i]);
        free(h->names[i]);
    }
    free(h->f);
    free(h->names);
    json_decref(h->index);
    memset(h, 0, sizeof *h);
}

/* Opens (validates) the shard file name of dir unless already open; *idx gets its slot. */
static rlhf_status hf_files_add(hf_files *h, const char *dir, const char *name, const char *index,
                                const char *tensor, int32_t *idx) {
    for (int32_t i = 0; i < h->n; i++)
        if (strcmp(h->names[i], name) == 0) {
            *idx = i;
            return RLHF_OK;
        }
    char *path = join(dir, name);
    if (!path) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
    if (index && !is_file(path)) {
        rlhf_status st =
            RLHF_ERR(RLHF_ERR_IO, "%s: shard '%s' (holding tensor '%s') does not exist in %s",
                     index, name, tensor, dir);
        free(path);
        return st;
    }
    rlhf_safetensors **nf = realloc(h->f, (size_t)(h->n + 1) * sizeof *nf);
    if (nf) h->f = nf;
    char **nn = realloc(h->names, (size_t)(h->n + 1) * sizeof *nn);
    if (nn) h->names = nn;
    if (!nf || !nn) {
        free(path);
        return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
    }
    h->names[h->n] = strdup(name);
    h->f[h->n] = NULL;
    rlhf_status st = h->names[h->n] ? rlhf_safetensors_open(&h->f[h->n], path)
                                    : RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
    free(path);
    if (st != RLHF_OK) {
        free(h->names[h->n]);
        return st;
    }
    *idx = h->n++;
    return RLHF_OK;
}

/* Finds the file holding tensor name: the single file, or the shard the index maps it to.
 * *ti is NULL when the tensor is absent (the caller reports it). */
static rlhf_status hf_locate(hf_files *h, const char *dir, const char *index_path, const char *name,
                             int32_t *fi, const rlhf_st_tensor **ti) {
    *ti = NULL;
    *fi = 0;
    if (!h->index) {
        *ti = rlhf_safetensors_find(h->f[0], name);
        return RLHF_OK;
    }
    json_t *wm = json_object_get(h->index, "weight_map");
    json_t *v = json_object_get(wm, name);
    if (!v) return RLHF_OK;
    RLHF_TRY(hf_files_add(h, dir, json_string_value(v), index_path, name, fi));
    *ti = rlhf_safetensors_find(h->f[*fi], name);
    if (!*ti)
        return RLHF_ERR(RLHF_ERR_FORMAT,
                        "%s: the index maps tensor '%s' to this shard, which lacks it",
                        rlhf_safetensors_path(h->f[*fi]), name);
    return RLHF_OK;
}

/* Parses and checks the index file; leaves it in h->index. */
static rlhf_status hf_index_read(hf_files *h, const char *path) {
    json_error_t jerr;
    h->index = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!h->index)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: bad JSON (line %d, column %d): %s", path, jerr.line,
                        jerr.column, jerr.text);
    json_t *wm = json_object_get(h->index, "weight_map");
    if (!json_is_object(h->index) || !json_is_object(wm))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: no \"weight_map\" object", path);
    const char *k;
    json_t *v;
    json_object_foreach(wm, k, v) {
        if (!json_is_string(v) || !plain_name(json_string_value(v)))
            return RLHF_ERR(RLHF_ERR_FORMAT,
                            "%s: weight_map entry of tensor '%s' is not a plain file name", path,
                            k);
    }
    return RLHF_OK;
}

/* ---- llama2.c RoPE tables in __metadata__ -------------------------------------------------------
 */

/* Reads a decimal in [1, max] without sign or leading zeros at *s, advancing *s. */
static bool hf_parse_count(const char **s, int64_t max, int64_t *out) {
    const char *p = *s;
    int64_t v = 0;
    if (*p < '1' || *p > '9') return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > max) return false;
    }
    *s = p;
    *out = v;
    return true;
}

/* Parses "[2, T, H]" exactly as hf_freq_shape_text writes it (1 <= T <= HF_MAX_SEQ,
 * 1 <= H <= HF_MAX_DIM / 2). Returns false on anything else. Cannot fail otherwise. */
static bool hf_freq_shape_parse(const char *s, int64_t *t, int64_t *h) {
    int64_t two;
    if (strncmp(s, "[", 1) != 0) return false;
    s += 1;
    if (!hf_parse_count(&s, 2, &two) || two != 2 || strncmp(s, ", ", 2) != 0) return false;
    s += 2;
    if (!hf_parse_count(&s, HF_MAX_SEQ, t) || strncmp(s, ", ", 2) != 0) return false;
    s += 2;
    if (!hf_parse_count(&s, HF_MAX_DIM / 2, h)) return false;
    return strcmp(s, "]") == 0;
}

static void hf_freq_shape_text(char *buf, size_t cap, int64_t t, int64_t h) {
    snprintf(buf, cap, "[2, %lld, %lld]", (long long)t, (long long)h);
}

/* Reads the tables from f's metadata into *x (zeroed by the caller) when both keys are present
 * and the shape is [2, T, HS/2] of c; validates them whatever the shape. Errors name f and the
 * key. */
static rlhf_status hf_freq_read(const rlhf_safetensors *f, const rlhf_model_config *c,
                                rlhf_llama2c_extra *x) {
    const char *path = rlhf_safetensors_path(f);
    const char *v = rlhf_safetensors_metadata(f, RLHF_HF_META_FREQ);
    const char *sh = rlhf_safetensors_metadata(f, RLHF_HF_META_FREQ_SHAPE);
    if (!v && !sh) return RLHF_OK;
    if (!v || !sh)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: __metadata__ has \"%s\" but not \"%s\"", path,
                        v ? RLHF_HF_META_FREQ : RLHF_HF_META_FREQ_SHAPE,
                        v ? RLHF_HF_META_FREQ_SHAPE : RLHF_HF_META_FREQ);
    int64_t T, H;
    if (!hf_freq_shape_parse(sh, &T, &H))
        return RLHF_ERR(RLHF_ERR_FORMAT,
                        "%s: __metadata__ \"%s\" = \"%.40s\" is not a shape [2, T, H] "
                        "(1 <= T <= %d, 1 <= H <= %d)",
                        path, RLHF_HF_META_FREQ_SHAPE, sh, HF_MAX_SEQ, HF_MAX_DIM / 2);
    char what[600];
    snprintf(what, sizeof what, "%s: __metadata__ \"%s\"", path, RLHF_HF_META_FREQ);
    unsigned char *bytes = NULL;
    size_t nb = 0;
    RLHF_TRY(rlhf_base64_decode(v, strlen(v), &bytes, &nb, what));
    const size_t want = 4 * 2 * (size_t)T * (size_t)H;
    if (nb != want) {
        free(bytes);
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: holds %zu bytes but \"%s\" %s needs %zu", what, nb,
                        RLHF_HF_META_FREQ_SHAPE, sh, want);
    }
    rlhf_status st = RLHF_OK;
    if (T == c->seq_len && H == c->dim / c->n_head / 2) { /* else: another config's; recompute */
        float *freq = NULL;
        st = rlhf_alloc((void **)&freq, want);
        for (size_t i = 0; st == RLHF_OK && i < want / 4; i++) {
            const unsigned char *b = bytes + 4 * i; /* little-endian on any host */
            const uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                               (uint32_t)b[3] << 24;
            memcpy(&freq[i], &u, 4);
        }
        if (st == RLHF_OK) {
            x->seq_len = (int32_t)T;
            x->half = (int32_t)H;
            x->freq = freq;
        }
    }
    free(bytes);
    return st;
}

/* Contract: see rlhf.h. */
rlhf_status rlhf_hf_read(const char *dir, rlhf_model_config *c, float **params,
                         rlhf_hf_info *info) {
    return rlhf_hf_read_ex(dir, c, params, info, NULL);
}

/* Contract: see rlhf.h. */
rlhf_status rlhf_hf_read_ex(const char *dir, rlhf_model_config *c, float **params,
                            rlhf_hf_info *info, rlhf_llama2c_extra *x) {
    if (params) *params = NULL;
    if (x) memset(x, 0, sizeof *x);
    if (!dir || !c) return RLHF_ERR(RLHF_ERR_ARG, "hf_read: dir and config must not be NULL");
    rlhf_status st = RLHF_OK;
    hf_files h = {0};
    hf_tensor *list = NULL;
    float *buf = NULL, *tmp = NULL;
    const char **expect = NULL;
    char *cfg_path = join(dir, HF_CONFIG), *single = join(dir, HF_SINGLE),
         *index = join(dir, HF_INDEX);
    if (!cfg_path || !single || !index) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
        goto done;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: not a directory", dir);
        goto done;
    }
    RLHF_TRY_GOTO(st, hf_config_read(cfg_path, c), done);

    /* the files */
    const bool sharded = !is_file(single);
    if (sharded) {
        if (!is_file(index)) {
            st = RLHF_ERR(RLHF_ERR_IO, "%s: neither %s nor %s found", dir, HF_SINGLE, HF_INDEX);
            goto done;
        }
        RLHF_TRY_GOTO(st, hf_index_read(&h, index), done);
    } else {
        int32_t i0;
        RLHF_TRY_GOTO(st, hf_files_add(&h, dir, HF_SINGLE, NULL, NULL, &i0), done);
    }

    /* expected tensors */
    list = malloc((size_t)hf_tensor_cap(c) * sizeof *list);
    if (!list) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
        goto done;
    }
    const int32_t n = hf_tensor_list(c, list);
    rlhf_param_info ptab[RLHF_P_COUNT];
    const int64_t P = rlhf_param_table(c, ptab);
    if (params) RLHF_TRY_GOTO(st, rlhf_alloc((void **)&buf, (size_t)P * sizeof(float)), done);
    int64_t maxperm = 0, bytes = 0;
    for (int32_t i = 0; i < n; i++)
        if (list[i].perm_heads && list[i].numel > maxperm) maxperm = list[i].numel;
    if (params && maxperm)
        RLHF_TRY_GOTO(st, rlhf_alloc((void **)&tmp, (size_t)maxperm * sizeof(float)), done);
    int dtype = -1;
    for (int32_t i = 0; i < n; i++) {
        const hf_tensor *e = &list[i];
        int32_t fi;
        const rlhf_st_tensor *t;
        RLHF_TRY_GOTO(st, hf_locate(&h, dir, index, e->name, &fi, &t), done);
        if (!t) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: tensor '%s' is missing (%s implies it)",
                          sharded ? index : single, e->name, cfg_path);
            goto done;
        }
        const char *fpath = rlhf_safetensors_path(h.f[fi]);
        const bool shape_ok = t->ndim == e->ndim && t->shape[0] == e->rows &&
                              (e->ndim == 1 || t->shape[1] == e->cols);
        if (!shape_ok) {
            char got[160] = "[";
            for (int32_t d = 0; d < t->ndim; d++) {
                const size_t len = strlen(got);
                snprintf(got + len, sizeof got - len, "%s%lld", d ? ", " : "",
                         (long long)t->shape[d]);
            }
            strncat(got, "]", sizeof got - strlen(got) - 1);
            char want[64];
            if (e->ndim == 1)
                snprintf(want, sizeof want, "[%lld]", (long long)e->rows);
            else
                snprintf(want, sizeof want, "[%lld, %lld]", (long long)e->rows, (long long)e->cols);
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: tensor '%s' has shape %s but %s implies %s", fpath,
                          e->name, got, cfg_path, want);
            goto done;
        }
        if (t->dtype == RLHF_DTYPE_OTHER) {
            st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: tensor '%s' has dtype %s, not a float type", fpath,
                          e->name, t->dtype_name);
            goto done;
        }
        dtype = dtype < 0 ? (int)t->dtype : dtype == (int)t->dtype ? dtype : (int)RLHF_DTYPE_OTHER;
        bytes += t->end - t->begin;
        if (!params) continue;
        if (e->perm_heads) {
            RLHF_TRY_GOTO(st, rlhf_safetensors_read_f32(h.f[fi], t, tmp), done);
            rope_permute(buf + e->offset, tmp, e->perm_heads, c->dim / c->n_head, e->cols, false);
        } else {
            RLHF_TRY_GOTO(st, rlhf_safetensors_read_f32(h.f[fi], t, buf + e->offset), done);
        }
    }

    /* nothing unexpected: every tensor of every file and of the index is one we read */
    expect = malloc((size_t)n * sizeof *expect);
    if (!expect) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
        goto done;
    }
    for (int32_t i = 0; i < n; i++)
        expect[i] = list[i].name;
    qsort(expect, (size_t)n, sizeof *expect, cmp_str);
    for (int32_t f = 0; f < h.n; f++)
        for (int32_t i = 0; i < rlhf_safetensors_count(h.f[f]); i++) {
            const char *nm = rlhf_safetensors_tensor(h.f[f], i)->name;
            if (!bsearch(&nm, expect, (size_t)n, sizeof *expect, cmp_str) && !ignorable(nm, c)) {
                st = RLHF_ERR(RLHF_ERR_FORMAT,
                              "%s: unexpected tensor '%s' (not part of a %s Llama with this %s)",
                              rlhf_safetensors_path(h.f[f]), nm,
                              c->head == RLHF_HEAD_SCALAR ? "scalar-head" : "causal-LM", HF_CONFIG);
                goto done;
            }
        }
    if (h.index) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(h.index, "weight_map"), k, v) {
            if (!bsearch(&k, expect, (size_t)n, sizeof *expect, cmp_str) && !ignorable(k, c)) {
                st =
                    RLHF_ERR(RLHF_ERR_FORMAT, "%s: unexpected tensor '%s' in weight_map", index, k);
                goto done;
            }
        }
    }
    if (x) { /* the tables sit in the first shard by name (the only file when unsharded) */
        int32_t first = 0;
        for (int32_t f = 1; f < h.n; f++)
            if (strcmp(h.names[f], h.names[first]) < 0) first = f;
        RLHF_TRY_GOTO(st, hf_freq_read(h.f[first], c, x), done);
    }
    if (info) {
        info->n_shards = h.index ? h.n : 0;
        info->dtype = dtype < 0 ? RLHF_DTYPE_F32 : (rlhf_dtype)dtype;
        info->bytes = bytes;
    }
    if (params) {
        *params = buf;
        buf = NULL;
    }
done:
    hf_files_free(&h);
    free(list);
    free(expect);
    rlhf_free(buf);
    rlhf_free(tmp);
    free(cfg_path);
    free(single);
    free(index);
    return st;
}

/* ---- writing ------------------------------------------------------------------------------------
 */

/* Writes text to path (a file in a fresh temporary directory), fsync'ed. */
static rlhf_status write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return RLHF_ERR(RLHF_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    const size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF && fflush(f) == 0 &&
              fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok) return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return RLHF_OK;
}

static void fsync_dir(const char *dir) {
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Removes the regular files of dir, then dir. With check_only, removes nothing and says whether
 * dir holds only regular files. Returns 0 on success. */
static int remove_flat_dir(const char *dir, bool check_only) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char *p = join(dir, de->d_name);
        struct stat sb;
        if (!p || lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode))
            rc = -1;
        else if (!check_only && unlink(p) != 0)
            rc = -1;
        free(p);
    }
    closedir(d);
    if (!check_only && rc == 0) rc = rmdir(dir);
    return rc;
}

/* 0: absent; 1: empty directory; 2: non-empty directory; 3: something else. */
static int dir_state(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) return 3;
    DIR *d = opendir(dir);
    if (!d) return 2;
    int state = 1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            state = 2;
            break;
        }
    closedir(d);
    return state;
}

/* Writes the tensors list[a..b) as one safetensors file, permuting q/k rows into HF order. */
static rlhf_status write_shard(const char *path, const rlhf_model_config *c, const float *params,
                               const hf_tensor *list, int32_t a, int32_t b, rlhf_dtype dtype,
                               const char *const *meta) {
    rlhf_st_write_tensor *w = calloc((size_t)(b - a), sizeof *w);
    if (!w) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", path);
    int64_t permn = 0;
    for (int32_t i = a; i < b; i++)
        if (list[i].perm_heads) permn += list[i].numel;
    float *perm = NULL;
    rlhf_status st = RLHF_OK;
    if (permn) RLHF_TRY_GOTO(st, rlhf_alloc((void **)&perm, (size_t)permn * sizeof(float)), done);
    int64_t off = 0;
    for (int32_t i = a; i < b; i++) {
        const hf_tensor *e = &list[i];
        rlhf_st_write_tensor *t = &w[i - a];
        t->name = e->name;
        t->ndim = e->ndim;
        t->shape[0] = e->rows;
        t->shape[1] = e->cols;
        if (e->perm_heads) {
            rope_permute(perm + off, params + e->offset, e->perm_heads, c->dim / c->n_head, e->cols,
                         true);
            t->data = perm + off;
            off += e->numel;
        } else {
            t->data = params + e->offset;
        }
    }
    st = rlhf_safetensors_write(path, w, b - a, dtype, meta);
done:
    rlhf_free(perm);
    free(w);
    return st;
}

/* The base64 text of x's tables when they differ from rlhf_llama2c_freqs(c) bit for bit; *b64
 * NULL when they are equal (or x has none). */
static rlhf_status hf_freq_text(const char *dir, const rlhf_model_config *c,
                                const rlhf_llama2c_extra *x, char **b64) {
    *b64 = NULL;
    if (!x || !x->freq) return RLHF_OK;
    const int32_t half = c->dim / c->n_head / 2;
    if (x->seq_len != c->seq_len || x->half != half)
        return RLHF_ERR(RLHF_ERR_ARG,
                        "%s: given RoPE tables are (2, %d, %d) but the config implies (2, %d, %d)",
                        dir, x->seq_len, x->half, c->seq_len, half);
    const size_t n = 2 * (size_t)c->seq_len * (size_t)half;
    float *ours = NULL;
    unsigned char *le = NULL;
    RLHF_TRY(rlhf_alloc((void **)&ours, n * sizeof(float)));
    rlhf_llama2c_freqs(c, ours);
    const bool same = memcmp(ours, x->freq, n * sizeof(float)) == 0;
    rlhf_free(ours);
    if (same) return RLHF_OK;
    rlhf_status st = RLHF_OK;
    RLHF_TRY(rlhf_alloc((void **)&le, n * 4));
    for (size_t i = 0; i < n; i++) { /* little-endian on any host */
        uint32_t u;
        memcpy(&u, &x->freq[i], 4);
        for (int k = 0; k < 4; k++)
            le[4 * i + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    *b64 = rlhf_base64_encode(le, n * 4);
    if (!*b64) st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot encode the RoPE tables", dir);
    rlhf_free(le);
    return st;
}

/* Contract: see rlhf.h. */
rlhf_status rlhf_hf_write(const char *dir_in, const rlhf_model_config *c, const float *params,
                          rlhf_dtype dtype, int64_t shard_bytes, bool overwrite) {
    return rlhf_hf_write_ex(dir_in, c, params, dtype, shard_bytes, overwrite, NULL);
}

/* Contract: see rlhf.h. On failure dir is as it was and no temporary directory is left. */
rlhf_status rlhf_hf_write_ex(const char *dir_in, const rlhf_model_config *c, const float *params,
                             rlhf_dtype dtype, int64_t shard_bytes, bool overwrite,
                             const rlhf_llama2c_extra *x) {
    if (!dir_in || !c || !params || !*dir_in)
        return RLHF_ERR(RLHF_ERR_ARG, "hf_write: dir, config and params must not be NULL");
    if (dtype != RLHF_DTYPE_F32 && dtype != RLHF_DTYPE_BF16)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: weights can be written as F32 or BF16, not %s", dir_in,
                        rlhf_dtype_name(dtype));
    RLHF_TRY(rlhf_config_validate(c));
    if (c->dim > HF_MAX_DIM || c->hidden_dim > HF_MAX_HIDDEN || c->n_layer > HF_MAX_LAYERS ||
        c->vocab_size > HF_MAX_VOCAB || c->seq_len > HF_MAX_SEQ)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: config sizes exceed what this writer supports", dir_in);

    /* DIR without trailing slashes */
    char *dir = strdup(dir_in);
    if (!dir) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir_in);
    for (size_t l = strlen(dir); l > 1 && dir[l - 1] == '/'; l--)
        dir[l - 1] = '\0';
    rlhf_status st = RLHF_OK;
    hf_tensor *list = NULL;
    int32_t *shard_of = NULL;
    char *tmpdir = NULL, *old = NULL, *path = NULL, *text = NULL, *freq_b64 = NULL;
    bool tmp_made = false;
    RLHF_TRY_GOTO(st, hf_freq_text(dir, c, x, &freq_b64), done);
    char freq_shape[80];
    hf_freq_shape_text(freq_shape, sizeof freq_shape, c->seq_len, c->dim / c->n_head / 2);
    const char *const meta_plain[] = {"format", "pt", NULL};
    const char *const meta_freq[] = {"format", "pt", RLHF_HF_META_FREQ, freq_b64,
                                     RLHF_HF_META_FREQ_SHAPE, freq_shape, NULL};
    const int state = dir_state(dir);
    if (state == 3) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: exists and is not a directory", dir);
        goto done;
    }
    if (state == 2 && !overwrite) {
        st = RLHF_ERR(RLHF_ERR_ARG, "%s: directory exists and is not empty (overwrite not asked)",
                      dir);
        goto done;
    }
    if (state == 2 && remove_flat_dir(dir, true) != 0) {
        st = RLHF_ERR(RLHF_ERR_ARG,
                      "%s: will not replace a directory holding subdirectories or special files",
                      dir);
        goto done;
    }

    list = malloc((size_t)hf_tensor_cap(c) * sizeof *list);
    shard_of = malloc((size_t)hf_tensor_cap(c) * sizeof *shard_of);
    const size_t dl = strlen(dir);
    tmpdir = malloc(dl + 16);
    old = malloc(dl + 16);
    if (!list || !shard_of || !tmpdir || !old) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
        goto done;
    }
    const int32_t n = hf_tensor_list(c, list);
    const int64_t es = rlhf_dtype_size(dtype);
    int64_t total = 0;
    for (int32_t i = 0; i < n; i++)
        total += list[i].numel * es;
    /* greedy packing in order: a new shard when the next tensor would overflow this one */
    int32_t n_shards = 1;
    int64_t cur = 0;
    for (int32_t i = 0; i < n; i++) {
        const int64_t b = list[i].numel * es;
        if (shard_bytes > 0 && total > shard_bytes && cur > 0 && cur + b > shard_bytes) {
            n_shards++;
            cur = 0;
        }
        shard_of[i] = n_shards - 1;
        cur += b;
    }
    const bool sharded = n_shards > 1;

    snprintf(tmpdir, dl + 16, "%s.tmp-XXXXXX", dir);
    if (!mkdtemp(tmpdir)) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot create a temporary directory beside it: %s", dir,
                      strerror(errno));
        goto done;
    }
    tmp_made = true;
    (void)chmod(tmpdir, 0755);
    text = hf_config_text(c, dtype);
    path = join(tmpdir, HF_CONFIG);
    if (!text || !path) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot build config.json", dir);
        goto done;
    }
    RLHF_TRY_GOTO(st, write_text(path, text), done);
    free(text);
    text = NULL;
    free(path);
    path = NULL;

    json_t *wm = sharded ? json_object() : NULL;
    if (sharded && !wm) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
        goto done;
    }
    for (int32_t s = 0, a = 0; s < n_shards; s++) {
        int32_t b = a;
        while (b < n && shard_of[b] == s)
            b++;
        char fname[64];
        if (sharded)
            snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        else
            snprintf(fname, sizeof fname, "%s", HF_SINGLE);
        path = join(tmpdir, fname);
        if (!path) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
            json_decref(wm);
            goto done;
        }
        st = write_shard(path, c, params, list, a, b, dtype,
                         s == 0 && freq_b64 ? meta_freq : meta_plain);
        free(path);
        path = NULL;
        for (int32_t i = a; i < b && st == RLHF_OK && wm; i++)
            if (json_object_set_new(wm, list[i].name, json_string(fname)) != 0)
                st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", dir);
        if (st != RLHF_OK) {
            json_decref(wm);
            goto done;
        }
        a = b;
    }
    if (sharded) {
        json_t *idx = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total,
                                "weight_map", wm);
        text = idx ? json_dumps(idx, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(idx);
        path = join(tmpdir, HF_INDEX);
        if (!text || !path) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot build the index", dir);
            goto done;
        }
        RLHF_TRY_GOTO(st, write_text(path, text), done);
    }
    fsync_dir(tmpdir);

    /* into place */
    if (state == 2) { /* overwrite: move the old one aside, the new one in, then drop the old */
        snprintf(old, dl + 16, "%s.old-XXXXXX", dir);
        if (!mkdtemp(old) || rename(dir, old) != 0) {
            st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot move the existing directory aside: %s", dir,
                          strerror(errno));
            goto done;
        }
        if (rename(tmpdir, dir) != 0) {
            st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot rename %s into place: %s", dir, tmpdir,
                          strerror(errno));
            (void)rename(old, dir);
            goto done;
        }
        tmp_made = false;
        if (remove_flat_dir(old, false) != 0) {
            st = RLHF_ERR(RLHF_ERR_IO, "%s: written, but the previous contents remain in %s", dir,
                          old);
            goto done;
        }
    } else if (rename(tmpdir, dir) != 0) { /* absent, or empty (rename replaces it) */
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot rename %s into place: %s", dir, tmpdir,
                      strerror(errno));
        goto done;
    }
    tmp_made = false;
    {
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            fsync_dir(dir);
        } else {
            fsync_dir(slash ? "/" : ".");
        }
    }
done:
    if (tmp_made) remove_flat_dir(tmpdir, false);
    free(list);
    free(shard_of);
    free(tmpdir);
    free(old);
    free(path);
    free(text);
    free(freq_b64);
    free(dir);
    return st;
}

/* ---- any checkpoint ---------------------------------------------------------------------------
 */

rlhf_status rlhf_checkpoint_read(const char *path, rlhf_model_config *c, float **params) {
    return rlhf_checkpoint_read_ex(path, c, params, NULL);
}

rlhf_status rlhf_checkpoint_read_ex(const char *path, rlhf_model_config *c, float **params,
                                    rlhf_llama2c_extra *x) {
    if (params) *params = NULL;
    if (x) memset(x, 0, sizeof *x);
    if (!path || !c || !params) return RLHF_ERR(RLHF_ERR_ARG, "checkpoint_read: NULL argument");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return rlhf_hf_read_ex(path, c, params, NULL, x);
    return rlhf_llama2c_read_ex(path, c, params, x);
}

rlhf_status rlhf_model_load(rlhf_model **out, const char *path, const rlhf_backend *be,
                            bool trainable, int32_t max_B, int32_t max_T) {
    if (!out) return RLHF_ERR(RLHF_ERR_ARG, "model_load: out must not be NULL");
    *out = NULL;
    rlhf_model_config c;
    float *params = NULL;
    rlhf_model *m = NULL;
    rlhf_status st;
    RLHF_TRY(rlhf_checkpoint_read(path, &c, &params));
    c.trainable = trainable;
    RLHF_TRY_GOTO(st, rlhf_model_init(&m, &c, be, max_B, max_T ? max_T : c.seq_len), fail);
    RLHF_TRY_GOTO(st, rlhf_model_set_params(m, params), fail);
    rlhf_free(params);
    *out = m;
    return RLHF_OK;
fail:
    rlhf_model_free(m);
    rlhf_free(params);
    return st;
}
