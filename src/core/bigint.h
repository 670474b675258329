/*
 * Integers beyond 64 bits as ETF carries them (SMALL_BIG, LARGE_BIG): a
 * sign and a little-endian magnitude of bytes. No arithmetic: the host only
 * needs to order them, print them in decimal and read them back from
 * decimal (docs/values.md says why nothing more is offered).
 *
 * Magnitudes here are trimmed (no high zero byte) and at most
 * PN_BIGINT_MAX_BYTES long. The bound keeps decimal conversion, which is
 * quadratic in the length, cheap enough to run inside a handler's budget.
 */
#ifndef PN_BIGINT_H
#define PN_BIGINT_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"

#define PN_BIGINT_MAX_BYTES 4096 /* 32768 bits: far beyond any id, hash or key */
/* Decimal digits of the largest magnitude: ceil(8 * 4096 * log10(2)). */
#define PN_BIGINT_MAX_DIGITS 9865
/* A decimal spelling: sign, digits, NUL. */
#define PN_BIGINT_DECIMAL_MAX (PN_BIGINT_MAX_DIGITS + 2)

/* Length of mag without its high zero bytes. */
size_t pn_bigint_trim(const uint8_t *mag, size_t len);

/* Orders two sign+magnitude values (trimmed or not; zero has no sign).
 * Returns <0, 0 or >0. */
int pn_bigint_compare(int aneg, const uint8_t *a, size_t alen, int bneg, const uint8_t *b,
                      size_t blen);

/* The magnitude of v as 8 little-endian bytes in out; returns the trimmed
 * length and sets *neg. */
size_t pn_bigint_from_i64(int64_t v, uint8_t out[8], int *neg);

/* Writes the decimal spelling ("-" first when neg and not zero) into out,
 * which holds cap bytes, NUL-terminated, and its length into *outlen.
 * PN_ETOOBIG past PN_BIGINT_MAX_BYTES or when cap is too small
 * (PN_BIGINT_DECIMAL_MAX always suffices). */
int pn_bigint_to_decimal(int neg, const uint8_t *mag, size_t len, char *out, size_t cap,
                         size_t *outlen, pn_err *e);

/* Reads an optional "-" and decimal digits (nothing else) into a trimmed
 * magnitude of at most PN_BIGINT_MAX_BYTES in out (that many bytes).
 * PN_EINVAL for anything else, PN_ETOOBIG past the bound. */
int pn_bigint_from_decimal(const char *s, size_t n, int *neg, uint8_t *out, size_t *len, pn_err *e);

#endif
