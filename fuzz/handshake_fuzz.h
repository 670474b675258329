/*
 * Shared by the two handshake fuzz targets: the trust callback and the way
 * the input is cut into the peer's frames.
 */
#ifndef PN_FUZZ_HANDSHAKE_H
#define PN_FUZZ_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "core/handshake.h"

/* Rejecting some keys keeps the refusal path reachable with crafted seeds. */
static int verify(void *ud, const uint8_t key[PN_NOISE_KEYLEN]) {
    (void)ud;
    return key[0] == 0xff ? PN_ETRUST : 0;
}

static int next_frame(const uint8_t **p, size_t *left, const uint8_t **body, size_t *len) {
    size_t n;
    if (*left < 4) return 0;
    n = (size_t)(*p)[0] << 24 | (size_t)(*p)[1] << 16 | (size_t)(*p)[2] << 8 | (*p)[3];
    *p += 4;
    *left -= 4;
    if (n > *left) n = *left;
    *body = *p;
    *len = n;
    *p += n;
    *left -= n;
    return 1;
}

#endif
