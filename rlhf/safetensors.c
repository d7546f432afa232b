/* safetensors.c: reading and writing safetensors files (the format of Hugging Face checkpoints).
 *
 * Layout (https://github.com/huggingface/safetensors, little-endian):
 *   uint64 N | N bytes of UTF-8 JSON header | data area
 *   header: {"__metadata__": {"key": "value", ...},          (optional, strings only)
 *            "tensor name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]},
 *            ...}
 *   [begin, end) is a byte range of the data area; end - begin = prod(shape) x element size.
 *
 * Reading trusts nothing: the header length is checked against the file size (and a 100 MB cap)
 * before it is read, the JSON is parsed by jansson with duplicate keys rejected (tensor names are
 * unique), every entry's dtype must be one the format defines, every shape a list of
 * non-negative integers whose product does not overflow, every offset pair inside the data area
 * and consistent with shape x dtype size, and no two tensors may overlap. Each violation is
 * RLHF_ERR_FORMAT with the file and tensor named. Tensor data is read with pread() when asked
 * for (no mmap: a file truncated behind our back gives an I/O error, not SIGBUS).
 *
 * Writing lays the tensors out in the caller's order, pads the header with spaces to a multiple
 * of 8 bytes (as the reference writer does, so every tensor is 8-byte aligned when sizes allow),
 * converts fp32 to BF16 with round-to-nearest-even when asked, and goes through a temporary file
 * that is fsync'ed and renamed over the target (then the directory is fsync'ed).
 *
 * Assumes a little-endian host (checked: RLHF_ERR_UNSUPPORTED otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rlhf.h"

#define ST_MAX_HEADER (100 * 1024 * 1024) /* the reference implementation's limit */
#define ST_CHUNK      (1 << 20)           /* elements converted per read/write chunk */

struct rlhf_safetensors {
    char *path;
    int fd;
    int64_t data_start; /* 8 + N */
    int64_t data_size;  /* file size - data_start */
    json_t *root;       /* the parsed header; names and metadata point into it */
    int32_t n;
    rlhf_st_tensor *t; /* (n) in header order */
    struct st_name {
        const char *name;
        int32_t idx;
    } * by_name; /* (n) sorted by name */
};

/* The dtypes the format defines, with their element sizes. */
static const struct {
    const char *name;
    int64_t size;
    rlhf_dtype dtype;
} dtypes[] = {
    {"F32", 4, RLHF_DTYPE_F32},       {"BF16", 2, RLHF_DTYPE_BF16},
    {"F16", 2, RLHF_DTYPE_F16},       {"F64", 8, RLHF_DTYPE_F64},
    {"I64", 8, RLHF_DTYPE_OTHER},     {"I32", 4, RLHF_DTYPE_OTHER},
    {"I16", 2, RLHF_DTYPE_OTHER},     {"I8", 1, RLHF_DTYPE_OTHER},
    {"U64", 8, RLHF_DTYPE_OTHER},     {"U32", 4, RLHF_DTYPE_OTHER},
    {"U16", 2, RLHF_DTYPE_OTHER},     {"U8", 1, RLHF_DTYPE_OTHER},
    {"BOOL", 1, RLHF_DTYPE_OTHER},    {"F8_E4M3", 1, RLHF_DTYPE_OTHER},
    {"F8_E5M2", 1, RLHF_DTYPE_OTHER},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *rlhf_dtype_name(rlhf_dtype d) {
    switch (d) {
    case RLHF_DTYPE_F32:
        return "F32";
    case RLHF_DTYPE_BF16:
        return "BF16";
    case RLHF_DTYPE_F16:
        return "F16";
    case RLHF_DTYPE_F64:
        return "F64";
    case RLHF_DTYPE_OTHER:
        return "other";
    }
    return "?";
}

int64_t rlhf_dtype_size(rlhf_dtype d) {
    switch (d) {
    case RLHF_DTYPE_F32:
        return 4;
    case RLHF_DTYPE_BF16:
        return 2;
    case RLHF_DTYPE_F16:
        return 2;
    case RLHF_DTYPE_F64:
        return 8;
    case RLHF_DTYPE_OTHER:
        return 0;
    }
    return 0;
}

static bool host_little_endian(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ---- number conversions ---------------------------------------------------------------------- */

uint16_t rlhf_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even; overflow gives inf */
    return (uint16_t)(u >> 16);
}

float rlhf_bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

float rlhf_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else { /* subnormal: mant x 2^-24, exact in fp32 */
            float v = ldexpf((float)mant, -24);
            memcpy(&u, &v, 4);
            u |= sign;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (mant << 13); /* inf or NaN (payload kept) */
    } else {
        u = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* ---- reading --------------------------------------------------------------------------------- */

/* Reads exactly n bytes at offset off. RLHF_ERR_IO naming path (a short read means the file
 * shrank after it was validated). */
static rlhf_status pread_all(int fd, void *buf, size_t n, int64_t off, const char *path,
                             const char *what) {
    char *p = buf;
    while (n > 0) {
        const size_t step = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        const ssize_t r = pread(fd, p, step, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return RLHF_ERR(RLHF_ERR_IO, "%s: read error in %s: %s", path, what, strerror(errno));
        }
        if (r == 0)
            return RLHF_ERR(RLHF_ERR_IO, "%s: file ended while reading %s (did it shrink?)", path,
                            what);
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return RLHF_OK;
}

/* A tensor's byte range, for the overlap check. */
typedef struct st_range {
    int64_t begin, end;
    int32_t idx;
} st_range;

static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const struct st_name *)a)->name, ((const struct st_name *)b)->name);
}

/* Reads a JSON integer that must lie in [0, max]; false otherwise. */
static bool get_nonneg(const json_t *v, int64_t max, int64_t *out) {
    if (!json_is_integer(v)) return false;
    const json_int_t x = json_integer_value(v);
    if (x < 0 || x > max) return false;
    *out = (int64_t)x;
    return true;
}

/* Validates one header entry and fills *t. Errors name the file and the tensor. */
static rlhf_status parse_entry(const rlhf_safetensors *f, const char *name, json_t *e,
                               rlhf_st_tensor *t) {
    const char *path = f->path;
    if (!*name) return RLHF_ERR(RLHF_ERR_FORMAT, "%s: a tensor has an empty name", path);
    if (!json_is_object(e))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    memset(t, 0, sizeof *t);
    t->name = name;
    json_t *dt = json_object_get(e, "dtype");
    if (!json_is_string(dt))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", path,
                        name);
    const char *dn = json_string_value(dt);
    int64_t esize = 0;
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(dn, dtypes[i].name) == 0) {
            t->dtype = dtypes[i].dtype;
            t->dtype_name = dtypes[i].name;
            esize = dtypes[i].size;
        }
    if (!esize)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.32s'", path, name, dn);

    json_t *sh = json_object_get(e, "shape");
    if (!json_is_array(sh))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", path,
                        name);
    const size_t nd = json_array_size(sh);
    if (nd > RLHF_ST_MAX_DIMS)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: tensor '%s': %zu dimensions (at most %d supported)",
                        path, name, nd, RLHF_ST_MAX_DIMS);
    t->ndim = (int32_t)nd;
    int64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        int64_t d;
        if (!get_nonneg(json_array_get(sh, i), INT64_MAX, &d))
            return RLHF_ERR(RLHF_ERR_FORMAT,
                            "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name,
                            i);
        t->shape[i] = d;
        if (d != 0 && numel > INT64_MAX / 8 / d)
            return RLHF_ERR(RLHF_ERR_FORMAT, "%s: tensor '%s': shape is absurdly large", path,
                            name);
        numel *= d;
    }
    t->numel = numel;

    json_t *of = json_object_get(e, "data_offsets");
    if (!json_is_array(of) || json_array_size(of) != 2)
        return RLHF_ERR(RLHF_ERR_FORMAT,
                        "%s: tensor '%s': \"data_offsets\" must be an array [begin, end]", path,
                        name);
    if (!get_nonneg(json_array_get(of, 0), INT64_MAX, &t->begin) ||
        !get_nonneg(json_array_get(of, 1), INT64_MAX, &t->end))
        return RLHF_ERR(RLHF_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets are not non-negative integers", path, name);
    if (t->end < t->begin)
        return RLHF_ERR(RLHF_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%lld, %lld] end before begin", path, name,
                        (long long)t->begin, (long long)t->end);
    if (t->end > f->data_size)
        return RLHF_ERR(RLHF_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%lld, %lld] run past the end of the data "
                        "area (%lld bytes)",
                        path, name, (long long)t->begin, (long long)t->end,
                        (long long)f->data_size);
    if (t->end - t->begin != numel * esize)
        return RLHF_ERR(RLHF_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes but shape "
                        "x %s needs %lld x %lld = %lld",
                        path, name, (long long)t->begin, (long long)t->end,
                        (long long)(t->end - t->begin), dn, (long long)numel, (long long)esize,
                        (long long)(numel * esize));
    return RLHF_OK;
}

/* Parses and validates the header text (n bytes) into f. */
static rlhf_status parse_header(rlhf_safetensors *f, const char *text, size_t n) {
    json_error_t jerr;
    f->root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!f->root)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: bad JSON header (line %d, column %d): %s", f->path,
                        jerr.line, jerr.column, jerr.text);
    if (!json_is_object(f->root))
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: the JSON header is not an object", f->path);
    const size_t cap = json_object_size(f->root);
    f->t = calloc(cap ? cap : 1, sizeof *f->t);
    f->by_name = calloc(cap ? cap : 1, sizeof *f->by_name);
    if (!f->t || !f->by_name)
        return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %zu tensor entries", f->path, cap);
    const char *key;
    json_t *val;
    json_object_foreach(f->root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val))
                return RLHF_ERR(RLHF_ERR_FORMAT, "%s: __metadata__ is not a JSON object", f->path);
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv))
                    return RLHF_ERR(RLHF_ERR_FORMAT,
                                    "%s: __metadata__ value of '%s' is not a string", f->path, mk);
            }
            continue;
        }
        if (f->n >= INT32_MAX - 1)
            return RLHF_ERR(RLHF_ERR_FORMAT, "%s: too many tensors", f->path);
        RLHF_TRY(parse_entry(f, key, val, &f->t[f->n]));
        f->by_name[f->n].name = f->t[f->n].name;
        f->by_name[f->n].idx = f->n;
        f->n++;
    }
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
    /* overlaps: sorted by begin, each non-empty tensor must start at or after the previous end */
    st_range *r = malloc((size_t)(f->n ? f->n : 1) * sizeof *r);
    if (!r) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", f->path);
    int32_t nr = 0;
    for (int32_t i = 0; i < f->n; i++)
        if (f->t[i].end > f->t[i].begin) r[nr++] = (st_range){f->t[i].begin, f->t[i].end, i};
    qsort(r, (size_t)nr, sizeof *r, cmp_range);
    rlhf_status st = RLHF_OK;
    for (int32_t i = 1; i < nr && st == RLHF_OK; i++) {
        if (r[i].begin < r[i - 1].end) {
            const rlhf_st_tensor *a = &f->t[r[i - 1].idx], *b = &f->t[r[i].idx];
            st = RLHF_ERR(RLHF_ERR_FORMAT,
                          "%s: tensors '%s' [%lld, %lld] and '%s' [%lld, %lld] overlap", f->path,
                          a->name, (long long)a->begin, (long long)a->end, b->name,
                          (long long)b->begin, (long long)b->end);
        }
    }
    free(r);
    return st;
}

/* Contract: on success *out is an open file whose header has been fully validated (close with
 * rlhf_safetensors_close). On failure *out is NULL: RLHF_ERR_IO (cannot open/stat/read),
 * RLHF_ERR_FORMAT (any header problem, naming the file and tensor), RLHF_ERR_NOMEM,
 * RLHF_ERR_UNSUPPORTED (big-endian host). */
rlhf_status rlhf_safetensors_open(rlhf_safetensors **out, const char *path) {
    if (!out || !path) return RLHF_ERR(RLHF_ERR_ARG, "safetensors_open: NULL argument");
    *out = NULL;
    if (!host_little_endian())
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: safetensors is little-endian; this host is not",
                        path);
    rlhf_safetensors *f = calloc(1, sizeof *f);
    if (!f) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", path);
    f->fd = -1;
    rlhf_status st = RLHF_OK;
    char *text = NULL;
    f->path = strdup(path);
    if (!f->path) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", path);
        goto fail;
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(f->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: not a readable regular file", path);
        goto fail;
    }
    const int64_t size = (int64_t)sb.st_size;
    if (size < 8) {
        st = RLHF_ERR(RLHF_ERR_FORMAT,
                      "%s: truncated: %lld bytes, shorter than the 8-byte header length", path,
                      (long long)size);
        goto fail;
    }
    uint64_t hlen = 0;
    RLHF_TRY_GOTO(st, pread_all(f->fd, &hlen, 8, 0, path, "the header length"), fail);
    if (hlen > (uint64_t)(size - 8)) {
        st = RLHF_ERR(RLHF_ERR_FORMAT,
                      "%s: header length %llu is larger than the file allows (%lld bytes after "
                      "the length field): truncated or not a safetensors file",
                      path, (unsigned long long)hlen, (long long)(size - 8));
        goto fail;
    }
    if (hlen > ST_MAX_HEADER) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: header length %llu exceeds the %d-byte limit", path,
                      (unsigned long long)hlen, ST_MAX_HEADER);
        goto fail;
    }
    if (hlen < 2) {
        st = RLHF_ERR(RLHF_ERR_FORMAT, "%s: header length %llu is too small for a JSON object",
                      path, (unsigned long long)hlen);
        goto fail;
    }
    text = malloc((size_t)hlen);
    if (!text) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate a %llu-byte header", path,
                      (unsigned long long)hlen);
        goto fail;
    }
    RLHF_TRY_GOTO(st, pread_all(f->fd, text, (size_t)hlen, 8, path, "the JSON header"), fail);
    f->data_start = 8 + (int64_t)hlen;
    f->data_size = size - f->data_start;
    RLHF_TRY_GOTO(st, parse_header(f, text, (size_t)hlen), fail);
    free(text);
    *out = f;
    return RLHF_OK;
fail:
    free(text);
    rlhf_safetensors_close(f);
    return st;
}

void rlhf_safetensors_close(rlhf_safetensors *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    json_decref(f->root);
    free(f->t);
    free(f->by_name);
    free(f->path);
    free(f);
}

const char *rlhf_safetensors_path(const rlhf_safetensors *f) { return f->path; }
int32_t rlhf_safetensors_count(const rlhf_safetensors *f) { return f->n; }

const rlhf_st_tensor *rlhf_safetensors_tensor(const rlhf_safetensors *f, int32_t i) {
    RLHF_ASSERT(i >= 0 && i < f->n);
    return &f->t[i];
}

const rlhf_st_tensor *rlhf_safetensors_find(const rlhf_safetensors *f, const char *name) {
    const struct st_name key = {name, 0};
    const struct st_name *hit = bsearch(&key, f->by_name, (size_t)f->n, sizeof key, cmp_name);
    return hit ? &f->t[hit->idx] : NULL;
}

const char *rlhf_safetensors_metadata(const rlhf_safetensors *f, const char *key) {
    json_t *m = json_object_get(f->root, "__metadata__");
    json_t *v = m ? json_object_get(m, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Contract: t must come from f. Fills dst (t->numel floats). Failures as declared in rlhf.h. */
rlhf_status rlhf_safetensors_read_f32(const rlhf_safetensors *f, const rlhf_st_tensor *t,
                                      float *dst) {
    RLHF_ASSERT(t >= f->t && t < f->t + f->n);
    const int64_t off = f->data_start + t->begin;
    if (t->dtype == RLHF_DTYPE_F32)
        return pread_all(f->fd, dst, (size_t)t->numel * 4, off, f->path, t->name);
    if (t->dtype == RLHF_DTYPE_OTHER)
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, not a float type",
                        f->path, t->name, t->dtype_name);
    const int64_t es = rlhf_dtype_size(t->dtype);
    void *buf = malloc((size_t)ST_CHUNK * (size_t)es);
    if (!buf) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate a read buffer", f->path);
    rlhf_status st = RLHF_OK;
    for (int64_t i = 0; i < t->numel && st == RLHF_OK; i += ST_CHUNK) {
        const int64_t n = t->numel - i < ST_CHUNK ? t->numel - i : ST_CHUNK;
        st = pread_all(f->fd, buf, (size_t)(n * es), off + i * es, f->path, t->name);
        if (st != RLHF_OK) break;
        if (t->dtype == RLHF_DTYPE_BF16) {
            const uint16_t *h = buf;
            for (int64_t j = 0; j < n; j++)
                dst[i + j] = rlhf_bf16_to_f32(h[j]);
        } else if (t->dtype == RLHF_DTYPE_F16) {
            const uint16_t *h = buf;
            for (int64_t j = 0; j < n; j++)
                dst[i + j] = rlhf_f16_to_f32(h[j]);
        } else { /* F64 */
            const double *d = buf;
            for (int64_t j = 0; j < n; j++)
                dst[i + j] = (float)d[j];
        }
    }
    free(buf);
    return st;
}

/* ---- writing --------------------------------------------------------------------------------- */

static rlhf_status write_all(int fd, const void *p, size_t n, const char *path) {
    const char *c = p;
    while (n > 0) {
        const size_t step = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        const ssize_t w = write(fd, c, step);
        if (w < 0) {
            if (errno == EINTR) continue;
            return RLHF_ERR(RLHF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        c += w;
        n -= (size_t)w;
    }
    return RLHF_OK;
}

/* fsyncs the directory holding path (so a rename into it is durable). Best effort on systems
 * that refuse to fsync directories. */
static void sync_parent(const char *path) {
    char *d = strdup(path);
    if (!d) return;
    char *slash = strrchr(d, '/');
    const char *dir = ".";
    if (slash) {
        if (slash == d)
            slash[1] = '\0';
        else
            *slash = '\0';
        dir = d;
    }
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(d);
}

/* Builds the header JSON for the write (NUL-terminated, padded with spaces so that 8 + length is a
 * multiple of 8). *out is malloc'ed (free()). */
static rlhf_status build_header(const char *path, const rlhf_st_write_tensor *t, int32_t n,
                                const int64_t *numel, rlhf_dtype dtype, const char *const *meta,
                                char **out, size_t *len) {
    *out = NULL;
    json_t *root = json_object();
    rlhf_status st = RLHF_OK;
    if (!root) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot build the header", path);
    if (meta && meta[0]) {
        json_t *m = json_object();
        if (!m || json_object_set_new(root, "__metadata__", m) != 0) goto nomem;
        for (int i = 0; meta[i]; i += 2) {
            if (!meta[i + 1]) {
                st = RLHF_ERR(RLHF_ERR_ARG, "%s: metadata key '%s' has no value", path, meta[i]);
                goto done;
            }
            if (json_object_set_new(m, meta[i], json_string(meta[i + 1])) != 0) goto nomem;
        }
    }
    const int64_t es = rlhf_dtype_size(dtype);
    int64_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        json_t *shape = json_array(), *offs = json_array();
        int bad = !shape || !offs;
        for (int32_t d = 0; d < t[i].ndim && !bad; d++)
            bad |= json_array_append_new(shape, json_integer((json_int_t)t[i].shape[d]));
        if (!bad) bad |= json_array_append_new(offs, json_integer((json_int_t)off));
        off += numel[i] * es;
        if (!bad) bad |= json_array_append_new(offs, json_integer((json_int_t)off));
        /* "o" steals the references, also on failure */
        json_t *e = bad ? NULL
                        : json_pack("{s:s, s:o, s:o}", "dtype", rlhf_dtype_name(dtype), "shape",
                                    shape, "data_offsets", offs);
        if (!e) {
            if (bad) {
                json_decref(shape);
                json_decref(offs);
            }
            goto nomem;
        }
        if (json_object_set_new(root, t[i].name, e) != 0) {
            st = RLHF_ERR(RLHF_ERR_ARG, "%s: tensor name '%s' is not valid UTF-8", path, t[i].name);
            goto done;
        }
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) goto nomem;
    const size_t tl = strlen(text);
    const size_t padded = (tl + 7) & ~(size_t)7; /* 8 + padded is a multiple of 8 */
    char *buf = malloc(padded + 1);
    if (!buf) {
        free(text);
        goto nomem;
    }
    memcpy(buf, text, tl);
    memset(buf + tl, ' ', padded - tl);
    buf[padded] = '\0';
    free(text);
    *out = buf;
    *len = padded;
    goto done;
nomem:
    st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot build the header", path);
done:
    json_decref(root);
    return st;
}

/* Contract: see rlhf.h. On failure path is untouched and no temporary file is left behind. */
rlhf_status rlhf_safetensors_write(const char *path, const rlhf_st_write_tensor *t, int32_t n,
                                   rlhf_dtype dtype, const char *const *meta) {
    if (!path || (n > 0 && !t) || n < 0)
        return RLHF_ERR(RLHF_ERR_ARG, "safetensors_write: bad arguments");
    if (dtype != RLHF_DTYPE_F32 && dtype != RLHF_DTYPE_BF16)
        return RLHF_ERR(RLHF_ERR_ARG, "%s: can write F32 or BF16, not %s", path,
                        rlhf_dtype_name(dtype));
    if (!host_little_endian())
        return RLHF_ERR(RLHF_ERR_UNSUPPORTED, "%s: safetensors is little-endian; this host is not",
                        path);
    int64_t *numel = malloc((size_t)(n ? n : 1) * sizeof *numel);
    if (!numel) return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", path);
    rlhf_status st = RLHF_OK;
    for (int32_t i = 0; i < n && st == RLHF_OK; i++) {
        if (!t[i].name || !*t[i].name || strcmp(t[i].name, "__metadata__") == 0) {
            st = RLHF_ERR(RLHF_ERR_ARG, "%s: tensor %d has an empty or reserved name", path, i);
            break;
        }
        if (t[i].ndim < 0 || t[i].ndim > RLHF_ST_MAX_DIMS) {
            st = RLHF_ERR(RLHF_ERR_ARG, "%s: tensor '%s': %d dimensions", path, t[i].name,
                          t[i].ndim);
            break;
        }
        numel[i] = 1;
        for (int32_t d = 0; d < t[i].ndim; d++) {
            if (t[i].shape[d] < 0) {
                st = RLHF_ERR(RLHF_ERR_ARG, "%s: tensor '%s': negative shape", path, t[i].name);
                break;
            }
            numel[i] *= t[i].shape[d];
        }
        if (st == RLHF_OK && numel[i] > 0 && !t[i].data)
            st = RLHF_ERR(RLHF_ERR_ARG, "%s: tensor '%s' has no data", path, t[i].name);
        for (int32_t j = 0; j < i && st == RLHF_OK; j++)
            if (strcmp(t[i].name, t[j].name) == 0)
                st = RLHF_ERR(RLHF_ERR_ARG, "%s: tensor name '%s' appears twice", path, t[i].name);
    }
    char *header = NULL, *tmp = NULL;
    uint16_t *conv = NULL;
    int fd = -1;
    size_t hl = 0;
    if (st != RLHF_OK) goto fail;
    RLHF_TRY_GOTO(st, build_header(path, t, n, numel, dtype, meta, &header, &hl), fail);

    const size_t plen = strlen(path);
    tmp = malloc(plen + 16);
    if (!tmp) {
        st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", path);
        goto fail;
    }
    snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto fail;
    }
    (void)fchmod(fd, 0644);
    const uint64_t hl64 = hl;
    RLHF_TRY_GOTO(st, write_all(fd, &hl64, 8, tmp), fail);
    RLHF_TRY_GOTO(st, write_all(fd, header, hl, tmp), fail);
    if (dtype == RLHF_DTYPE_BF16) {
        conv = malloc((size_t)ST_CHUNK * sizeof *conv);
        if (!conv) {
            st = RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate", path);
            goto fail;
        }
    }
    for (int32_t i = 0; i < n; i++) {
        if (dtype == RLHF_DTYPE_F32) {
            RLHF_TRY_GOTO(st, write_all(fd, t[i].data, (size_t)numel[i] * 4, tmp), fail);
            continue;
        }
        for (int64_t k = 0; k < numel[i]; k += ST_CHUNK) {
            const int64_t m = numel[i] - k < ST_CHUNK ? numel[i] - k : ST_CHUNK;
            for (int64_t j = 0; j < m; j++)
                conv[j] = rlhf_f32_to_bf16(t[i].data[k + j]);
            RLHF_TRY_GOTO(st, write_all(fd, conv, (size_t)m * 2, tmp), fail);
        }
    }
    if (fsync(fd) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
        goto fail;
    }
    const int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        st = RLHF_ERR(RLHF_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    sync_parent(path);
    free(tmp);
    free(conv);
    free(header);
    free(numel);
    return RLHF_OK;
fail:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(conv);
    free(header);
    free(numel);
    return st;
}
