/* base64.c: standard base64 (RFC 4648 section 4: A-Z a-z 0-9 + /, '=' padding), used to carry
 * binary data in safetensors __metadata__ strings. The decoder is strict: it accepts exactly the
 * strings the encoder produces (no whitespace, no missing padding, no stray bits), so a corrupted
 * value is an error rather than a silently different byte string. */
#include <stdlib.h>
#include <string.h>

#include "rlhf.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of character ch, or -1 when ch is not in the alphabet. Cannot fail. */
static int b64_value(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Contract: see rlhf.h. */
char *rlhf_base64_encode(const void *data, size_t n) {
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    const unsigned char *p = data;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        const size_t left = n - i;
        const uint32_t v = (uint32_t)p[i] << 16 | (left > 1 ? (uint32_t)p[i + 1] << 8 : 0) |
                           (left > 2 ? (uint32_t)p[i + 2] : 0);
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = left > 1 ? b64_alphabet[v >> 6 & 63] : '=';
        out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* Contract: see rlhf.h. */
rlhf_status rlhf_base64_decode(const char *s, size_t len, unsigned char **out, size_t *n,
                               const char *what) {
    if (out) *out = NULL;
    if (n) *n = 0;
    if (!s || !out || !n || !what)
        return RLHF_ERR(RLHF_ERR_ARG, "base64_decode: NULL argument");
    if (len % 4 != 0)
        return RLHF_ERR(RLHF_ERR_FORMAT, "%s: base64 length %zu is not a multiple of 4", what,
                        len);
    size_t pad = 0;
    if (len > 0 && s[len - 1] == '=') pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
    const size_t bytes = len / 4 * 3 - pad;
    unsigned char *buf = NULL;
    if (bytes > 0 && !(buf = malloc(bytes)))
        return RLHF_ERR(RLHF_ERR_NOMEM, "%s: cannot allocate %zu bytes", what, bytes);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        const bool last = i + 4 == len;
        const size_t used = last ? 4 - pad : 4; /* data characters in this quantum */
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            const int d = k < used ? b64_value((unsigned char)s[i + k]) : 0;
            if (d < 0) {
                const unsigned char ch = (unsigned char)s[i + k];
                free(buf);
                if (ch == '=')
                    return RLHF_ERR(RLHF_ERR_FORMAT,
                                    "%s: base64 padding '=' at offset %zu before the end", what,
                                    i + k);
                return RLHF_ERR(RLHF_ERR_FORMAT,
                                "%s: invalid base64 character 0x%02x at offset %zu", what,
                                (unsigned)ch, i + k);
            }
            v = v << 6 | (uint32_t)d;
        }
        /* padding leaves 4 (one '=') or 2 (two) low bits of the last data character unused */
        if ((pad == 1 && last && (v & 0xff) != 0) || (pad == 2 && last && (v & 0xffff) != 0)) {
            free(buf);
            return RLHF_ERR(RLHF_ERR_FORMAT,
                            "%s: non-canonical base64 (unused bits set) at offset %zu", what, i);
        }
        buf[o++] = (unsigned char)(v >> 16);
        if (used > 2) buf[o++] = (unsigned char)(v >> 8);
        if (used > 3) buf[o++] = (unsigned char)v;
    }
    RLHF_ASSERT(o == bytes);
    *out = buf;
    *n = bytes;
    return RLHF_OK;
}
