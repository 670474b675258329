#include "bigint.h"

#include <string.h>

#define LIMBS_MAX (PN_BIGINT_MAX_BYTES / 4 + 1)
#define CHUNK 1000000000u /* 10^9: nine decimal digits per step */
#define CHUNK_DIGITS 9

size_t pn_bigint_trim(const uint8_t *mag, size_t len) {
    while (len > 0 && mag[len - 1] == 0)
        len--;
    return len;
}

int pn_bigint_compare(int aneg, const uint8_t *a, size_t alen, int bneg, const uint8_t *b,
                      size_t blen) {
    alen = pn_bigint_trim(a, alen);
    blen = pn_bigint_trim(b, blen);
    if (alen == 0) aneg = 0;
    if (blen == 0) bneg = 0;
    if (aneg != bneg) return aneg ? -1 : 1;
    int c = 0;
    if (alen != blen) {
        c = alen < blen ? -1 : 1;
    } else {
        for (size_t i = alen; i > 0 && c == 0; i--)
            if (a[i - 1] != b[i - 1]) c = a[i - 1] < b[i - 1] ? -1 : 1;
    }
    return aneg ? -c : c;
}

size_t pn_bigint_from_i64(int64_t v, uint8_t out[8], int *neg) {
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    *neg = v < 0;
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(m >> (8 * i));
    return pn_bigint_trim(out, 8);
}

/* Little-endian bytes into little-endian 32-bit limbs; returns the count. */
static size_t to_limbs(const uint8_t *mag, size_t len, uint32_t *limbs) {
    size_t n = (len + 3) / 4;
    memset(limbs, 0, n * sizeof *limbs);
    for (size_t i = 0; i < len; i++)
        limbs[i / 4] |= (uint32_t)mag[i] << (8 * (i % 4));
    return n;
}

int pn_bigint_to_decimal(int neg, const uint8_t *mag, size_t len, char *out, size_t cap,
                         size_t *outlen, pn_err *e) {
    uint32_t limbs[LIMBS_MAX];
    /* Nine-digit chunks, least significant first. */
    uint32_t chunks[PN_BIGINT_MAX_DIGITS / CHUNK_DIGITS + 1];
    len = pn_bigint_trim(mag, len);
    if (len > PN_BIGINT_MAX_BYTES)
        return pn_err_set(e, PN_ETOOBIG,
                          "bigint: magnitude of %zu bytes is beyond the %d-byte limit", len,
                          PN_BIGINT_MAX_BYTES);
    size_t n = to_limbs(mag, len, limbs), nc = 0;
    while (n > 0) {
        uint64_t rem = 0;
        for (size_t i = n; i > 0; i--) {
            uint64_t cur = rem << 32 | limbs[i - 1];
            limbs[i - 1] = (uint32_t)(cur / CHUNK);
            rem = cur % CHUNK;
        }
        chunks[nc++] = (uint32_t)rem;
        while (n > 0 && limbs[n - 1] == 0)
            n--;
    }
    char digits[PN_BIGINT_DECIMAL_MAX];
    size_t w = 0;
    if (neg && nc > 0) digits[w++] = '-';
    if (nc == 0) {
        digits[w++] = '0';
    } else {
        /* The top chunk without leading zeros, the others padded to nine. */
        char top[CHUNK_DIGITS + 1];
        int k = 0;
        for (uint32_t v = chunks[nc - 1]; v; v /= 10)
            top[k++] = (char)('0' + v % 10);
        while (k > 0)
            digits[w++] = top[--k];
        for (size_t c = nc - 1; c > 0; c--) {
            uint32_t v = chunks[c - 1];
            for (int d = CHUNK_DIGITS - 1; d >= 0; d--) {
                digits[w + (size_t)d] = (char)('0' + v % 10);
                v /= 10;
            }
            w += CHUNK_DIGITS;
        }
    }
    if (w + 1 > cap)
        return pn_err_set(e, PN_ETOOBIG, "bigint: %zu decimal digits do not fit in %zu bytes", w,
                          cap);
    memcpy(out, digits, w);
    out[w] = '\0';
    *outlen = w;
    return 0;
}

int pn_bigint_from_decimal(const char *s, size_t n, int *neg, uint8_t *out, size_t *len,
                           pn_err *e) {
    uint32_t limbs[LIMBS_MAX];
    size_t i = 0, nl = 0;
    *neg = 0;
    if (i < n && s[i] == '-') *neg = 1, i++;
    if (i == n) return pn_err_set(e, PN_EINVAL, "bigint: expected decimal digits");
    for (size_t k = i; k < n; k++)
        if (s[k] < '0' || s[k] > '9')
            return pn_err_set(e, PN_EINVAL, "bigint: '%c' at position %zu is not a decimal digit",
                              s[k] >= 0x20 && s[k] < 0x7f ? s[k] : '?', k + 1);
    while (i < n - 1 && s[i] == '0')
        i++;
    if (n - i > PN_BIGINT_MAX_DIGITS)
        return pn_err_set(e, PN_ETOOBIG,
                          "bigint: %zu digits is beyond the limit of %d bytes (%d digits)", n - i,
                          PN_BIGINT_MAX_BYTES, PN_BIGINT_MAX_DIGITS);
    /* The first chunk takes the odd digits, so every later one has nine. */
    size_t first = (n - i) % CHUNK_DIGITS ? (n - i) % CHUNK_DIGITS : CHUNK_DIGITS;
    while (i < n) {
        uint32_t chunk = 0, scale = 1;
        for (size_t k = 0; k < first; k++, i++) {
            chunk = chunk * 10 + (uint32_t)(s[i] - '0');
            scale *= 10;
        }
        first = CHUNK_DIGITS;
        uint64_t carry = chunk;
        for (size_t k = 0; k < nl; k++) {
            uint64_t cur = (uint64_t)limbs[k] * scale + carry;
            limbs[k] = (uint32_t)cur;
            carry = cur >> 32;
        }
        if (carry) {
            /* Digits are bounded above, so the limbs cannot run out first. */
            if (nl == LIMBS_MAX)
                return pn_err_set(e, PN_ETOOBIG, "bigint: beyond the limit of %d bytes",
                                  PN_BIGINT_MAX_BYTES);
            limbs[nl++] = (uint32_t)carry;
        }
    }
    size_t bytes = 0;
    uint8_t tmp[LIMBS_MAX * 4];
    for (size_t k = 0; k < nl; k++)
        for (int b = 0; b < 4; b++)
            tmp[bytes++] = (uint8_t)(limbs[k] >> (8 * b));
    bytes = pn_bigint_trim(tmp, bytes);
    if (bytes > PN_BIGINT_MAX_BYTES)
        return pn_err_set(e, PN_ETOOBIG,
                          "bigint: the value needs %zu bytes, beyond the limit of %d bytes", bytes,
                          PN_BIGINT_MAX_BYTES);
    memcpy(out, tmp, bytes);
    if (bytes == 0) *neg = 0;
    *len = bytes;
    return 0;
}
