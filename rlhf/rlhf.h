/* rlhf.h: the public interface of the core library.
 *
 * One Llama-2 transformer (the "trunk") serves the four roles of the Llama 2-Chat recipe: policy,
 * frozen reference, reward model and value model. This header declares the trunk, its optimizer,
 * the batched sampler, the llama2.c checkpoint and tokenizer formats, the training-state file, and
 * the status codes every fallible function returns.
 *
 * Dimension letters used in every shape comment:
 *   B batch, T time (sequence positions), C model dim, V vocab, L layers, NH query heads,
 *   NKV key/value heads, HS head size (C / NH), FF feed-forward hidden dim, N rows (B*T or any
 *   flattened count), P number of parameters.
 *
 * Conventions: functions return rlhf_status; on failure the thread-local rlhf_last_error() names
 * the file and line that failed and why. Handles come from x_init/x_open and go back through
 * x_free/x_close, which accept NULL. The caller owns what it gets back.
 */
#ifndef RLHF_H
#define RLHF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status ---------------------------------------------------------------------------------- */

typedef enum rlhf_status {
    RLHF_OK = 0,
    RLHF_ERR_ARG,         /* invalid argument (caller error that is not a programmer bug) */
    RLHF_ERR_IO,          /* open/read/write/seek failed */
    RLHF_ERR_FORMAT,      /* malformed, truncated or inconsistent input file */
    RLHF_ERR_NOMEM,       /* allocation failed */
    RLHF_ERR_UNSUPPORTED, /* feature or op not available on this backend/build */
    RLHF_ERR_CUDA,
    RLHF_ERR_NCCL,
    RLHF_ERR_SQLITE,
} rlhf_status;

const char *rlhf_status_name(rlhf_status s); /* "ok", "io error", ...; cannot fail */
/* Last error text of this thread ("file.c:123: message"), "" when none. */
const char *rlhf_last_error(void);
/* Records an error for this thread and returns s. Used through RLHF_ERR. */
rlhf_status rlhf_error_set(rlhf_status s, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void rlhf_error_clear(void);

#define RLHF_ERR(s, ...) rlhf_error_set((s), __FILE__, __LINE__, __VA_ARGS__)
#define RLHF_TRY(expr)                                                                             \
    do {                                                                                           \
        rlhf_status _rlhf_s = (expr);                                                              \
        if (_rlhf_s != RLHF_OK) return _rlhf_s;                                                    \
    } while (0)
#define RLHF_TRY_GOTO(st, expr, label)                                                             \
    do {                                                                                           \
        (st) = (expr);                                                                             \
        if ((st) != RLHF_OK) goto label;                                                           \
    } while (0)
/* Always-on assertion for programmer errors (never for bad input): prints and aborts. */
#define RLHF_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) rlhf_assert_fail(#cond, __FILE__, __LINE__);                                  \
    } while (0)
_Noreturn void rlhf_assert_fail(const char *expr, const char *file, int line);

/* Log level (the only mutable global): 0 quiet, 1 info (default), 2 debug. */
void rlhf_log_set_level(int level);
int rlhf_log_level(void);

/* ---- memory helpers ---------------------------------------------------------------------------- */

/* 64-byte aligned allocation; *out is NULL on failure (RLHF_ERR_NOMEM recorded). */
rlhf_status rlhf_alloc(void **out, size_t bytes);
void rlhf_free(void *p);

/* ---- files ---------------------------------------------------------------------------------------- */

/* mkdir -p: dir and its missing parents; RLHF_ERR_IO naming the part that failed, or dir when it
 * exists but is not a directory. */
rlhf_status rlhf_mkdirs(const char *dir);

/* ---- random numbers ---------------------------------------------------------------------------- */

/* PCG32 (O'Neill): 64-bit state, 64-bit odd increment selecting the stream. */
typedef struct rlhf_rng {
    uint64_t state, inc;
} rlhf_rng;
void rlhf_rng_seed(rlhf_rng *r, uint64_t seed, uint64_t stream);
uint32_t rlhf_rng_u32(rlhf_rng *r);
float rlhf_rng_uniform(rlhf_rng *r); /* [0, 1), 24 random bits */
float rlhf_rng_normal(rlhf_rng *r);  /* N(0, 1), Box-Muller */

/* ---- backends ------------------------------------------------------------------------------------ */

typedef struct rlhf_backend rlhf_backend; /* table of ops; see backend_impl.h */
/* "cpu", "cuda", "cuda:N", and for CUDA a matmul precision suffix "/fp32", "/tf32" or "/bf16"
 * ("cuda:0/fp32"; without one, $RLHF_CUDA_PRECISION or bf16). Storage is fp32 in every mode.
 * The CPU backend is one shared instance; CUDA has one instance per (device, precision), each
 * with its own stream, kept for the life of the process (use one instance from one thread at a
 * time). Unknown or unavailable names return RLHF_ERR_UNSUPPORTED. */
rlhf_status rlhf_backend_get(const char *name, const rlhf_backend **out);
const char *rlhf_backend_name(const rlhf_backend *be); /* canonical: "cpu", "cuda:0/bf16" */
/* Human-readable device ("NVIDIA H100 80GB HBM3 (132 SMs, ...)" or "CPU (N threads)"). */
rlhf_status rlhf_backend_device_name(const rlhf_backend *be, char *buf, size_t cap);
/* Measured TFLOP/s of a bf16 tensor-core GEMM (M,N,K), fp32 accumulation, on a GPU backend;
 * RLHF_ERR_UNSUPPORTED on the CPU. Runs at least min_time seconds. */
rlhf_status rlhf_backend_gemm_rate(const rlhf_backend *be, int64_t M, int64_t N, int64_t K,
                                   double min_time, double *tflops);
/* Threads used by CPU loops and BLAS (0 = OpenMP default). */
void rlhf_set_threads(int n);
int rlhf_get_threads(void);

/* ---- model -------------------------------------------------------------------------------------- */

typedef enum rlhf_head {
    RLHF_HEAD_LM = 0, /* LM head: (B,T,V) logits */
    RLHF_HEAD_SCALAR, /* scalar head: (B,T) values (reward / value models) */
} rlhf_head;

typedef struct rlhf_model_config {
    int32_t dim, hidden_dim, n_layer, n_head, n_head_kv, vocab_size, seq_len;
    float norm_eps;   /* 1e-5 */
    float rope_theta; /* 10000 */
    bool tied_head;   /* LM head shares the token embedding (ignored for the scalar head) */
    rlhf_head head;
    bool trainable;   /* false: no gradients, optimizer state or training activations */
} rlhf_model_config;

/* Llama-2 defaults for a given size; head LM, untied, trainable. */
rlhf_model_config rlhf_config_default(void);
/* Checks divisibility (C % NH, NH % NKV, HS even) and positivity. */
rlhf_status rlhf_config_validate(const rlhf_model_config *c);

/* Parameter table. The parameters live in ONE contiguous fp32 buffer in exactly this order
 * (llama2.c's order, each kind stacked over layers):
 *   tok_embeddings (V,C) | attn_norm (L,C) | wq (L,NH*HS,C) | wk (L,NKV*HS,C) | wv (L,NKV*HS,C) |
 *   wo (L,C,NH*HS) | ffn_norm (L,C) | w1 (L,FF,C) | w2 (L,C,FF) | w3 (L,FF,C) | norm (C) |
 *   head: lm_head (V,C) when LM and untied; score (1,C) when scalar; nothing when tied.
 * Matrices are row-major (out_features, in_features), as torch.nn.Linear stores them. Q/K use the
 * interleaved RoPE pairing of Meta's and llama2.c's checkpoints (pairs (2i, 2i+1) of a head). */
typedef enum rlhf_param_id {
    RLHF_P_TOK_EMB = 0,
    RLHF_P_ATTN_NORM,
    RLHF_P_WQ,
    RLHF_P_WK,
    RLHF_P_WV,
    RLHF_P_WO,
    RLHF_P_FFN_NORM,
    RLHF_P_W1,
    RLHF_P_W2,
    RLHF_P_W3,
    RLHF_P_NORM,
    RLHF_P_HEAD,
    RLHF_P_COUNT
} rlhf_param_id;

typedef struct rlhf_param_info {
    const char *name;    /* Hugging Face name; per-layer ones contain "%d" for the layer */
    int32_t per_layer;   /* 1: stacked over L layers */
    int64_t rows, cols;  /* shape of one layer's tensor (cols 1 for vectors) */
    int64_t offset;      /* in floats, from the start of the parameter buffer */
    int64_t numel;       /* total floats over all layers; 0 when absent (tied head) */
    bool decay;          /* AdamW weight decay applies (not to norm gains) */
} rlhf_param_info;

/* Fills the table for a config; returns the total parameter count P. Cannot fail. */
int64_t rlhf_param_table(const rlhf_model_config *c, rlhf_param_info table[RLHF_P_COUNT]);

typedef struct rlhf_model rlhf_model;

/* Creates a model with max batch B and max positions T (T <= seq_len) for training/forward.
 * Parameters are zero; call rlhf_model_init_random or rlhf_model_set_params. */
rlhf_status rlhf_model_init(rlhf_model **out, const rlhf_model_config *c, const rlhf_backend *be,
                            int32_t max_B, int32_t max_T);
void rlhf_model_free(rlhf_model *m);
const rlhf_model_config *rlhf_model_get_config(const rlhf_model *m);
int64_t rlhf_model_num_params(const rlhf_model *m);
/* Bytes held on the backend: params, grads, optimizer state, activations. */
void rlhf_model_memory(const rlhf_model *m, size_t *params, size_t *grads, size_t *optim,
                       size_t *acts);

/* N(0, 0.02) for matrices, output projections (wo, w2) scaled by 1/sqrt(2L), norms = 1. */
rlhf_status rlhf_model_init_random(rlhf_model *m, uint64_t seed);
/* Copy all P parameters in/out (host fp32 buffer in table order). */
rlhf_status rlhf_model_set_params(rlhf_model *m, const float *host_params);
rlhf_status rlhf_model_get_params(const rlhf_model *m, float *host_params);
rlhf_status rlhf_model_get_grads(const rlhf_model *m, float *host_grads);

/* Packing several examples into one row: seg_start (B,T) host gives, for each position, the
 * first position of the example it belongs to (a segment is a run of consecutive positions with
 * the same start; a new example starts where seg_start[b,t] == t). Until the next call, every
 * forward (which must then have exactly shape (B,T)) and its backward let position t attend only
 * to [seg_start[b,t], t] and rotate it with RoPE position t - seg_start[b,t], so each example
 * is computed exactly as if it ran alone from position 0. NULL turns packing off (B, T ignored).
 * RLHF_ERR_ARG for a shape beyond the model's or inconsistent starts (packing is then off). */
rlhf_status rlhf_model_set_segments(rlhf_model *m, const int32_t *seg_start, int32_t B,
                                    int32_t T);

/* Forward pass over tokens (B,T) (host ids), B <= max_B, T <= max_T. Saves what backward needs
 * when the model is trainable. LM head: logits (B,T,V); scalar head: values (B,T). */
rlhf_status rlhf_model_forward(rlhf_model *m, const int32_t *tokens, int32_t B, int32_t T);
/* After an LM forward: log p(targets[b,t] | tokens[b,<=t]) into logp (B,T) host. Targets < 0 give 0. */
rlhf_status rlhf_model_logprobs(rlhf_model *m, const int32_t *targets, float *logp);
/* After an LM forward: copy logits (B,T,V) to host. */
rlhf_status rlhf_model_get_logits(const rlhf_model *m, float *logits);
/* After a scalar forward: values (B,T) to host. */
rlhf_status rlhf_model_values(const rlhf_model *m, float *values);

/* Backward from d(objective)/d(logp) (B,T) host (LM head), given the same targets. Accumulates
 * into the parameter gradients (call rlhf_model_zero_grad between optimizer steps). Overwrites the
 * logits buffer. */
rlhf_status rlhf_model_backward_logprobs(rlhf_model *m, const int32_t *targets, const float *dlogp);
/* Backward from d(objective)/d(values) (B,T) host (scalar head). Accumulates into gradients. */
rlhf_status rlhf_model_backward_values(rlhf_model *m, const float *dvalues);

/* Masked cross-entropy, the SFT loss: mean over positions with mask != 0 of -mask*logp(target),
 * normalized by sum(mask). mask NULL = all ones; mask entries are weights (0 or 1 usually).
 * forward + loss (+ backward when dloss_scale != 0: gradient of dloss_scale * loss, so
 * micro-batches can be scaled by 1/n_micro for accumulation). *loss may be NULL. */
rlhf_status rlhf_model_lm_step(rlhf_model *m, const int32_t *tokens, const int32_t *targets,
                               const float *mask, int32_t B, int32_t T, float dloss_scale,
                               float *loss);
rlhf_status rlhf_model_zero_grad(rlhf_model *m);

/* ---- optimizer ------------------------------------------------------------------------------------ */

typedef struct rlhf_adamw_config {
    float beta1, beta2, eps, weight_decay, clip_norm; /* 0.9, 0.95, 1e-5, 0.1, 1.0 (<=0: no clip) */
} rlhf_adamw_config;
rlhf_adamw_config rlhf_adamw_default(void);

typedef struct rlhf_schedule {
    float peak_lr;
    int64_t warmup_steps, total_steps;
    float final_frac; /* cosine decays to final_frac * peak_lr (0.1 in Llama 2) */
} rlhf_schedule;
/* Linear warm-up from peak/warmup to peak over warmup_steps, then cosine to final_frac*peak at
 * total_steps, constant after. step counts from 0. Cannot fail. */
float rlhf_schedule_lr(const rlhf_schedule *s, int64_t step);

/* One AdamW update of all parameters with learning rate lr: clips the global gradient norm to
 * clip_norm first; increments the model's step counter. *grad_norm (pre-clip) may be NULL.
 * Allocates the moments on first use. */
rlhf_status rlhf_model_adamw_step(rlhf_model *m, const rlhf_adamw_config *oc, float lr,
                                  float *grad_norm);
int64_t rlhf_model_step(const rlhf_model *m); /* optimizer steps taken */

/* ---- training state ------------------------------------------------------------------------------- */

/* Everything needed to resume bit-exactly: config, parameters, Adam moments, step, schedule,
 * optimizer config, a caller RNG state, and an opaque user blob (e.g. data position). Written to
 * PATH.tmp then renamed; guarded by size and CRC32 checks on load. */
typedef struct rlhf_train_extra {
    rlhf_schedule schedule;
    rlhf_adamw_config adamw;
    rlhf_rng rng;
    int64_t data_pos;
} rlhf_train_extra;
rlhf_status rlhf_train_state_save(const rlhf_model *m, const rlhf_train_extra *x, const char *path);
/* Loads into an existing model of the same config (checked). */
rlhf_status rlhf_train_state_load(rlhf_model *m, rlhf_train_extra *x, const char *path);
/* Reads only the config from a state file. */
rlhf_status rlhf_train_state_peek(const char *path, rlhf_model_config *c);

/* ---- llama2.c checkpoints ------------------------------------------------------------------------- */

/* Reads a llama2.c checkpoint: the legacy v0 header (7 int32: dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size (negative = untied classifier), seq_len) or the v1 header (magic "ak42",
 * version 1, the same 7 ints, uint8 shared_classifier, padded to 256 bytes), fp32 weights. Fills
 * *c (head LM) and a newly allocated host buffer of P floats in table order (free with rlhf_free).
 * Truncated, oversized or inconsistent files are RLHF_ERR_FORMAT naming the file. */
rlhf_status rlhf_llama2c_read(const char *path, rlhf_model_config *c, float **params);
/* Writes version 0 (legacy) or 1 ("ak42"). Written to PATH.tmp then renamed. */
rlhf_status rlhf_llama2c_write(const char *path, const rlhf_model_config *c, const float *params,
                               int version);
/* What a llama2.c file holds beyond the model: v0's RoPE tables freq_cis_real and freq_cis_imag
 * (each (T, HS/2), T = seq_len), which run.c ignores and which PyTorch computed, so they differ
 * from rlhf_llama2c_freqs() in the last bit of many values. Kept so that conversions can
 * reproduce a file byte for byte. v1 files have no tables. */
typedef struct rlhf_llama2c_extra {
    int32_t seq_len, half; /* T and HS/2 of freq; 0 when there are no tables */
    float *freq;           /* (2, T, HS/2): real then imag as stored, or NULL; owned (rlhf_free) */
} rlhf_llama2c_extra;
/* Frees x->freq and zeroes *x. NULL-safe; cannot fail. */
void rlhf_llama2c_extra_free(rlhf_llama2c_extra *x);
/* rlhf_llama2c_read that also fills *x (when x is not NULL): the tables of a v0 file, none for
 * v1. On failure *x is zeroed. */
rlhf_status rlhf_llama2c_read_ex(const char *path, rlhf_model_config *c, float **params,
                                 rlhf_llama2c_extra *x);
/* rlhf_llama2c_write that writes the v0 tables from x when x and x->freq are not NULL (x->seq_len
 * and x->half must equal c's T and HS/2, else RLHF_ERR_ARG); otherwise recomputes them as
 * rlhf_llama2c_freqs(). v1 has no tables: x is ignored. */
rlhf_status rlhf_llama2c_write_ex(const char *path, const rlhf_model_config *c,
                                  const float *params, int version, const rlhf_llama2c_extra *x);
/* The tables rlhf_llama2c_write computes, into freq (2 * T * HS/2 floats, real then imag): float32
 * cos/sin of p / 10000^(2i/HS) as llama2.c's model.py. Cannot fail. */
void rlhf_llama2c_freqs(const rlhf_model_config *c, float *freq);
/* Convenience: read a .bin and create a model on backend be (max batch/positions as given;
 * max_T 0 = seq_len). */
rlhf_status rlhf_model_load_llama2c(rlhf_model **out, const char *path, const rlhf_backend *be,
                                    bool trainable, int32_t max_B, int32_t max_T);

/* ---- safetensors files ------------------------------------------------------------------------------ */

/* Element types of a safetensors file. F32, F16, BF16 and F64 convert to fp32 on read;
 * RLHF_DTYPE_OTHER is any other type the format defines (integers, bool, fp8): such a tensor is
 * accepted in a file but cannot be read as floats. Writes are F32 or BF16 (round to nearest even). */
typedef enum rlhf_dtype {
    RLHF_DTYPE_F32 = 0,
    RLHF_DTYPE_BF16,
    RLHF_DTYPE_F16,
    RLHF_DTYPE_F64,
    RLHF_DTYPE_OTHER,
} rlhf_dtype;
const char *rlhf_dtype_name(rlhf_dtype d); /* "F32", "BF16", ...; cannot fail */

#define RLHF_ST_MAX_DIMS 8

/* One tensor of a safetensors header. */
typedef struct rlhf_st_tensor {
    const char *name;
    rlhf_dtype dtype;
    const char *dtype_name;          /* as in the file ("F32", "I64", ...) */
    int32_t ndim;                    /* 0 for a scalar */
    int64_t shape[RLHF_ST_MAX_DIMS];
    int64_t numel;
    int64_t begin, end;              /* byte range in the data area (after the header) */
} rlhf_st_tensor;

/* An open safetensors file: 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}},
 * then the data area. Open validates everything before returning: header length against the file
 * size, JSON syntax, unique names, known dtypes, shapes, every offset pair inside the data area
 * and equal to numel x element size, no two tensors overlapping. Any violation is
 * RLHF_ERR_FORMAT naming the file (and the tensor). */
typedef struct rlhf_safetensors rlhf_safetensors;
rlhf_status rlhf_safetensors_open(rlhf_safetensors **out, const char *path);
void rlhf_safetensors_close(rlhf_safetensors *f);
const char *rlhf_safetensors_path(const rlhf_safetensors *f);
int32_t rlhf_safetensors_count(const rlhf_safetensors *f);
/* Tensor i (0 <= i < count), in the order of the header. */
const rlhf_st_tensor *rlhf_safetensors_tensor(const rlhf_safetensors *f, int32_t i);
/* The tensor named name, or NULL. */
const rlhf_st_tensor *rlhf_safetensors_find(const rlhf_safetensors *f, const char *name);
/* A __metadata__ value, or NULL when absent. */
const char *rlhf_safetensors_metadata(const rlhf_safetensors *f, const char *key);
/* Reads tensor t (from this file) converted to fp32 into dst (t->numel floats).
 * RLHF_ERR_UNSUPPORTED for RLHF_DTYPE_OTHER, RLHF_ERR_IO on read errors or a file that shrank. */
rlhf_status rlhf_safetensors_read_f32(const rlhf_safetensors *f, const rlhf_st_tensor *t,
                                      float *dst);

/* A tensor to write: numel = product of shape; data holds numel fp32 values. */
typedef struct rlhf_st_write_tensor {
    const char *name;
    int32_t ndim;
    int64_t shape[RLHF_ST_MAX_DIMS];
    const float *data;
} rlhf_st_write_tensor;
/* Writes n tensors as dtype (F32 or BF16) in the given order, with __metadata__ from the
 * NULL-terminated key, value list meta (may be NULL). Written to a temporary file beside path,
 * fsync'ed, renamed over path. Duplicate or empty names are RLHF_ERR_ARG. */
rlhf_status rlhf_safetensors_write(const char *path, const rlhf_st_write_tensor *t, int32_t n,
                                   rlhf_dtype dtype, const char *const *meta);
/* Bytes of the data area such a write produces for numel values of dtype. Cannot fail. */
int64_t rlhf_dtype_size(rlhf_dtype d);

/* fp32 <-> bf16 / f16 conversions (round to nearest even; NaN stays NaN). Cannot fail. */
uint16_t rlhf_f32_to_bf16(float x);
float rlhf_bf16_to_f32(uint16_t h);
float rlhf_f16_to_f32(uint16_t h);

/* ---- Hugging Face Llama checkpoints ------------------------------------------------------------- */

/* A Hugging Face model directory as transformers' save_pretrained writes it: config.json
 * (LlamaConfig, "model_type": "llama") plus model.safetensors or the shards
 * model-0000N-of-0000M.safetensors with model.safetensors.index.json. Tensor names are those of
 * rlhf_param_table() with %d the layer. An LM model is LlamaForCausalLM (lm_head.weight absent
 * when tie_word_embeddings); a scalar-head model is LlamaForSequenceClassification with
 * num_labels 1, its head score.weight (1, C).
 * HF's q_proj/k_proj rows are permuted relative to our interleaved RoPE layout: within each head
 * of HS rows, HF row j*HS/2 + i holds our row 2i + j (transformers' convert_llama_weights_to_hf
 * `permute`); write applies it, read undoes it. */
typedef struct rlhf_hf_info {
    int32_t n_shards; /* 0: a single model.safetensors */
    rlhf_dtype dtype; /* of the weights; RLHF_DTYPE_OTHER when they mix types */
    int64_t bytes;    /* of all weight data */
} rlhf_hf_info;

/* Reads config.json and the weights of dir. Fills *c (trainable false) and, when params is not
 * NULL, a newly allocated buffer of P floats in table order (rlhf_free); with params NULL only the
 * config and every tensor's name, type and shape are checked. info may be NULL.
 * RLHF_ERR_FORMAT naming the file (and tensor or field) for a bad config, a missing or
 * unexpected tensor, a shape that disagrees with the config, a bad index or safetensors file;
 * RLHF_ERR_IO for missing files; RLHF_ERR_UNSUPPORTED for features we do not implement
 * (rope_scaling, biases, other model types, num_labels != 1). */
rlhf_status rlhf_hf_read(const char *dir, rlhf_model_config *c, float **params,
                         rlhf_hf_info *info);
/* Writes the model (c, params in table order) as dtype (F32 or BF16) into dir: one
 * model.safetensors, or shards of at most shard_bytes of tensor data each (a tensor larger than
 * that gets a shard of its own) plus the index when the weights exceed shard_bytes
 * (shard_bytes <= 0: never shard). Everything is written into DIR.tmp-XXXXXX, fsync'ed, and that
 * directory renamed to dir. An existing non-empty dir is RLHF_ERR_ARG unless overwrite, which
 * replaces it (only when it holds plain files). */
rlhf_status rlhf_hf_write(const char *dir, const rlhf_model_config *c, const float *params,
                          rlhf_dtype dtype, int64_t shard_bytes, bool overwrite);
/* The __metadata__ keys (first or only safetensors file) that carry llama2.c's v0 RoPE tables
 * through a Hugging Face directory: base64 of the little-endian float32 values (real then imag),
 * and their shape "[2, T, HS/2]". Written only when the tables differ from rlhf_llama2c_freqs().
 * Metadata, unlike extra tensors, is invisible to transformers. */
#define RLHF_HF_META_FREQ       "rlhf.llama2c_freq_cis"
#define RLHF_HF_META_FREQ_SHAPE "rlhf.llama2c_freq_cis_shape"
/* rlhf_hf_read that also fills *x (when x is not NULL) from the metadata above: x->freq stays NULL
 * when the keys are absent or their shape is not [2, T, HS/2] of this config. A malformed value
 * (one key without the other, a shape that does not parse, bad base64, a byte count that is not
 * the shape's) is RLHF_ERR_FORMAT naming the file and the key. On failure *x is zeroed. */
rlhf_status rlhf_hf_read_ex(const char *dir, rlhf_model_config *c, float **params,
                            rlhf_hf_info *info, rlhf_llama2c_extra *x);
/* rlhf_hf_write that stores x's tables in the metadata when x and x->freq are not NULL and they
 * differ from rlhf_llama2c_freqs() (x->seq_len, x->half must be c's T and HS/2: RLHF_ERR_ARG). */
rlhf_status rlhf_hf_write_ex(const char *dir, const rlhf_model_config *c, const float *params,
                             rlhf_dtype dtype, int64_t shard_bytes, bool overwrite,
                             const rlhf_llama2c_extra *x);
/* True when path is a directory holding config.json. Cannot fail. */
bool rlhf_hf_is_dir(const char *path);

/* Any checkpoint: a Hugging Face directory (rlhf_hf_read) or a llama2.c .bin file
 * (rlhf_llama2c_read), chosen by what path is. Same contract as those. */
rlhf_status rlhf_checkpoint_read(const char *path, rlhf_model_config *c, float **params);
/* The same, also filling *x (may be NULL) as rlhf_hf_read_ex / rlhf_llama2c_read_ex do. */
rlhf_status rlhf_checkpoint_read_ex(const char *path, rlhf_model_config *c, float **params,
                                    rlhf_llama2c_extra *x);

/* Standard base64 (RFC 4648 alphabet, '=' padding) of n bytes: a new NUL-terminated string
 * (free()), or NULL when out of memory. */
char *rlhf_base64_encode(const void *data, size_t n);
/* Decodes the len characters of s strictly: length a multiple of 4, alphabet characters only,
 * '=' only as the last one or two, unused trailing bits zero (so each byte string has exactly one
 * encoding). On success *out is a new buffer of *n bytes (free(); NULL when *n is 0). Invalid input
 * is RLHF_ERR_FORMAT with a message "<what>: <why>"; RLHF_ERR_NOMEM. *out is NULL on failure. */
rlhf_status rlhf_base64_decode(const char *s, size_t len, unsigned char **out, size_t *n,
                               const char *what);
/* Convenience: read any checkpoint and create a model on be (max_T 0 = seq_len). */
rlhf_status rlhf_model_load(rlhf_model **out, const char *path, const rlhf_backend *be,
                            bool trainable, int32_t max_B, int32_t max_T);

/* ---- tokenizer --------------------------------------------------------------------------------------- */

typedef struct rlhf_tokenizer rlhf_tokenizer;
/* llama2.c tokenizer.bin: int32 max_token_length, then per token: float score, int32 len, bytes.
 * vocab_size 0 = read to end of file. BOS 1, EOS 2, UNK 0 (the file carries no ids). */
rlhf_status rlhf_tokenizer_load_bin(rlhf_tokenizer **out, const char *path, int32_t vocab_size);
/* SentencePiece tokenizer.model (protobuf ModelProto, BPE, identity normalizer), e.g. Meta's
 * Llama 2 tokenizer: encodes exactly as SentencePiece does. BOS/EOS/UNK ids come from the file.
 * Malformed files are RLHF_ERR_FORMAT naming the file, byte offset and field. */
rlhf_status rlhf_tokenizer_load_model(rlhf_tokenizer **out, const char *path);
/* Either format, recognised by content (a protobuf ModelProto or a llama2.c tokenizer.bin).
 * vocab_size: 0 = whatever the file holds; otherwise the file must hold exactly that many. */
rlhf_status rlhf_tokenizer_load(rlhf_tokenizer **out, const char *path, int32_t vocab_size);
void rlhf_tokenizer_free(rlhf_tokenizer *t);
int32_t rlhf_tokenizer_vocab_size(const rlhf_tokenizer *t);
int32_t rlhf_tokenizer_bos(const rlhf_tokenizer *t); /* -1: a .model without BOS */
int32_t rlhf_tokenizer_eos(const rlhf_tokenizer *t); /* -1: a .model without EOS */
int32_t rlhf_tokenizer_unk(const rlhf_tokenizer *t);
/* Encodes UTF-8 text: dummy-prefix space (for non-empty text), codepoints looked up as pieces,
 * unknown ones as <0xXX> byte pieces, then merges of the best-scoring pair until none applies.
 * For a .model this is SentencePiece's encoder (see spm.c; invalid UTF-8 bytes become U+FFFD as
 * there). Writes up to cap ids; *n gets the count (RLHF_ERR_ARG if cap is too small). */
rlhf_status rlhf_tokenizer_encode(const rlhf_tokenizer *t, const char *text, bool bos, bool eos,
                                  int32_t *ids, int32_t cap, int32_t *n);
/* The bytes of one piece as it appears in text, given the previous id (a piece following BOS
 * drops its leading space; <0xXX> becomes the raw byte). *len gets the byte count. For a .model,
 * a piece at the start (prev < 0) or after any control piece drops it too (SentencePiece). */
const char *rlhf_tokenizer_piece(const rlhf_tokenizer *t, int32_t prev, int32_t id, size_t *len);
/* Decodes ids into a newly allocated NUL-terminated string (free with free()). For a .model,
 * exactly SentencePiece's DecodeIds (the first piece's dummy-prefix space is dropped, byte pieces
 * are reassembled and invalid byte runs become U+FFFD, UNK gives " \u2047 "). */
rlhf_status rlhf_tokenizer_decode(const rlhf_tokenizer *t, const int32_t *ids, int32_t n,
                                  char **text);

/* ---- tokenizer training ------------------------------------------------------------------------- */

/* A SentencePiece-style BPE trainer (tokenizer_train.c) writing a SentencePiece `tokenizer.model`
 * laid out like Llama's: 0 <unk> (UNKNOWN), 1 <s>, 2 </s> (CONTROL), 3..258 <0x00>..<0xFF> (BYTE),
 * then the merged pieces in merge order and the kept characters (NORMAL), scored -0, -1, -2, ...
 * so that SentencePiece's BPE encoder (highest-scoring adjacent merge first) replays the merges.
 * Text: identity normalizer, dummy prefix, spaces escaped to U+2581, extra spaces kept; words start
 * at each U+2581; digits never merge; characters outside --character-coverage go to byte fallback. */
typedef struct rlhf_tokenizer_train_opts {
    int32_t vocab_size;         /* total pieces, the 259 specials included */
    float character_coverage;   /* fraction of characters (by count) kept as pieces: 0.9995 */
    int32_t max_piece_chars;    /* longest piece in codepoints: 16 */
    int64_t max_bytes;          /* read at most this many bytes of text over all files; 0 = all */
    const char *dump_path;      /* debug: "count\tpiece piece ..." of the most frequent words as
                                   the trainer segmented them (NULL = none) */
    int32_t dump_words;         /* how many words to dump */
    /* called now and then with (merges done, merges wanted); may be NULL (same shape as
     * rlhf_progress_fn) */
    void (*progress)(void *ctx, int64_t done, int64_t total);
    void *progress_ctx;
} rlhf_tokenizer_train_opts;

typedef struct rlhf_tokenizer_train_stats {
    int64_t lines, bytes;       /* non-empty lines and their bytes, as read */
    int64_t words, unique_words;
    int64_t chars_seen;         /* distinct codepoints */
    int32_t chars_kept;         /* of which kept as pieces (the rest: byte fallback) */
    int32_t merges;             /* merged pieces added */
    int32_t dup_merges;         /* merges whose string was already a piece (no new piece) */
    int32_t vocab_size;
    double seconds_read, seconds_merge;
} rlhf_tokenizer_train_stats;

/* Defaults: vocab 4096, coverage 0.9995, pieces up to 16 codepoints, everything read. Cannot fail. */
rlhf_tokenizer_train_opts rlhf_tokenizer_train_defaults(void);
/* Trains on the corpus files (.txt, or .gz read through zlib; one sentence per line) and writes
 * the model to out_path atomically (temporary file, fsync, rename). Same inputs and options give
 * the same bytes. Errors name the file: missing or corrupt input (RLHF_ERR_IO/FORMAT), no text
 * (RLHF_ERR_FORMAT), a vocabulary too small for the kept characters or larger than the corpus
 * can fill (RLHF_ERR_ARG). stats may be NULL. */
rlhf_status rlhf_tokenizer_train(const rlhf_tokenizer_train_opts *o, const char *const *corpus,
                                 int32_t n_corpus, const char *out_path,
                                 rlhf_tokenizer_train_stats *stats);

/* ---- batched sampling ---------------------------------------------------------------------------- */

typedef struct rlhf_sample_config {
    float temperature; /* 0 = greedy */
    int32_t top_k;     /* 0 = off */
    float top_p;       /* 1 = off */
    int32_t max_new;   /* tokens to generate per sequence at most */
    int32_t eos_id;    /* stop token (included in the output); < 0: never stop early */
} rlhf_sample_config;

typedef enum rlhf_finish { RLHF_FINISH_EOS = 0, RLHF_FINISH_LENGTH } rlhf_finish;

/* One sequence of a batched sampling call. Output arrays are allocated by the caller. */
typedef struct rlhf_sample_seq {
    const int32_t *prompt; /* (n_prompt) ids, at least 1 (BOS) */
    int32_t n_prompt;
    uint64_t seed;      /* this sequence's RNG stream: its tokens do not depend on the batch */
    int32_t *out;       /* (max_new) generated ids */
    float *logp;        /* (max_new) log-prob of each generated token, may be NULL */
    int32_t n_out;      /* set: number generated */
    rlhf_finish finish; /* set */
} rlhf_sample_seq;

typedef struct rlhf_sampler rlhf_sampler;
/* An inference engine for model m holding a KV cache for max_seqs sequences of up to
 * seq_len positions. The model may be trainable or not; its training buffers are not used. */
rlhf_status rlhf_sampler_init(rlhf_sampler **out, rlhf_model *m, int32_t max_seqs);
void rlhf_sampler_free(rlhf_sampler *s);
/* Samples n sequences (n may exceed max_seqs: they run in waves; a finished sequence's slot is
 * refilled at once). Prompt + max_new is truncated at seq_len (finish LENGTH). The log-prob
 * returned is under softmax(logits / temperature) (temperature 1 when greedy), before top-k/top-p.
 * progress, if not NULL, is called after each decode step with tokens generated so far. */
typedef void (*rlhf_progress_fn)(void *ctx, int64_t done, int64_t total);
rlhf_status rlhf_sampler_run(rlhf_sampler *s, const rlhf_sample_config *sc, rlhf_sample_seq *seqs,
                             int32_t n, rlhf_progress_fn progress, void *ctx);

/* Low level: forward of n token rows through the KV cache. Row i is token tokens[i] of sequence
 * slot slots[i] at position pos[i]; all rows' keys/values are written before any attends, so a
 * chunk of consecutive prompt tokens of one slot may be fed at once. Rows with want_logits[i]
 * get their logits (or value) into out (n_want, V) in row order (host). */
rlhf_status rlhf_sampler_forward(rlhf_sampler *s, int32_t n, const int32_t *tokens,
                                 const int32_t *slots, const int32_t *pos,
                                 const uint8_t *want_logits, float *out);

/* ---- text data: token streams for pretraining (textdata.c) -------------------------------------- */

/* Reads a whole text file into *text (malloc'ed, NUL-terminated; free()) and *len. gzip content
 * (magic 1f 8b, one or more members) is inflated whatever the name; a ".gz" name without gzip
 * content, a corrupt or truncated gzip stream, or a NUL byte in the text (naming its line) is
 * RLHF_ERR_FORMAT; a missing file RLHF_ERR_IO; all naming the file. */
rlhf_status rlhf_text_read(const char *path, char **text, size_t *len);

/* A tokenized corpus: one stream of ids, BOS before every document (a paragraph: lines up to a
 * blank line, joined by '\n'), plus an optional validation split. */
typedef struct rlhf_textdata rlhf_textdata;

/* Tokenizes the files in order. A file with no text is RLHF_ERR_FORMAT naming it. */
rlhf_status rlhf_textdata_build(rlhf_textdata **out, const rlhf_tokenizer *t,
                                const char *const *paths, int32_t n_paths);

typedef enum rlhf_textdata_cache {
    RLHF_TEXTDATA_CACHE_HIT = 0, /* loaded from the cache */
    RLHF_TEXTDATA_CACHE_MISSING, /* no cache file: tokenized and written */
    RLHF_TEXTDATA_CACHE_STALE,   /* inputs or tokenizer changed: re-tokenized and rewritten */
    RLHF_TEXTDATA_CACHE_CORRUPT, /* unreadable cache: re-tokenized and rewritten */
    RLHF_TEXTDATA_CACHE_OFF,     /* no cache path given */
} rlhf_textdata_cache;
const char *rlhf_textdata_cache_name(rlhf_textdata_cache c); /* cannot fail */

/* As rlhf_textdata_build, through a cache file (NULL: none) keyed by each input's size and
 * content CRC-32, the tokenizer file (tok_path, may be NULL), the vocab size and the ids of a
 * probe text. *how (may be NULL) says whether the cache was used. Written atomically. */
rlhf_status rlhf_textdata_open(rlhf_textdata **out, const rlhf_tokenizer *t, const char *tok_path,
                               const char *const *paths, int32_t n_paths, const char *cache_path,
                               rlhf_textdata_cache *how);
void rlhf_textdata_free(rlhf_textdata *d);
int64_t rlhf_textdata_num_tokens(const rlhf_textdata *d);
int64_t rlhf_textdata_num_docs(const rlhf_textdata *d);
int64_t rlhf_textdata_num_bytes(const rlhf_textdata *d); /* text bytes after decompression */
const int32_t *rlhf_textdata_tokens(const rlhf_textdata *d); /* (num_tokens) */
uint32_t rlhf_textdata_checksum(const rlhf_textdata *d);     /* CRC-32 of the stream */

/* Holds out validation data for windows of `window` tokens (seq_len + 1): whole contiguous chunks
 * of m*(window-1)+1 >= 1025 tokens, max(val_fraction*N, min_val_tokens) tokens in all (rounded up
 * to whole chunks), centred in equal regions of the stream so every input is sampled.
 * Deterministic. RLHF_ERR_ARG when the stream is too small (more than half would be held out). */
rlhf_status rlhf_textdata_split(rlhf_textdata *d, double val_fraction, int64_t min_val_tokens,
                                int32_t window);
int64_t rlhf_textdata_train_tokens(const rlhf_textdata *d);
int64_t rlhf_textdata_val_tokens(const rlhf_textdata *d);
/* Validation windows tile the held-out chunks with stride window-1 (every target predicted once). */
int64_t rlhf_textdata_val_count(const rlhf_textdata *d);
void rlhf_textdata_val_window(const rlhf_textdata *d, int64_t i, int32_t *out); /* (window) */
/* Draws a training window uniformly among those lying wholly outside the held-out chunks,
 * advancing r (the run's RNG: same state, same window); returns its start in the stream. */
int64_t rlhf_textdata_sample(const rlhf_textdata *d, rlhf_rng *r, int32_t *out); /* (window) */
bool rlhf_textdata_is_val(const rlhf_textdata *d, int64_t pos); /* pos is held out */

#ifdef __cplusplus
}
#endif
#endif /* RLHF_H */
