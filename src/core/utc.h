/*
 * UTC times in the one text form files carry: YYYY-MM-DDTHH:MM:SSZ, years
 * 0001..9999 of the proleptic Gregorian calendar, no leap seconds.
 */
#ifndef PN_UTC_H
#define PN_UTC_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"

#define PN_UTC_LEN 20 /* YYYY-MM-DDTHH:MM:SSZ */

/* Parses exactly that form (len bytes) into Unix seconds; PN_EINVAL else. */
int pn_utc_parse(const char *s, size_t len, int64_t *out, pn_err *e);

/* Formats t (year 1..9999) as YYYY-MM-DDTHH:MM:SSZ; PN_EINVAL out of range. */
int pn_utc_format(int64_t t, char out[PN_UTC_LEN + 1], pn_err *e);

#endif
