/*
 * Shared by the two handshake fuzz targets: the trust callback and the way
 * the input is cut into the peer's frames.
 */
#ifndef PN_FUZZ_HANDSHAKE_H
#define PN_FUZZ_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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

/* After the handshake: a transport body either opens (and its plaintext
 * seals back to a body of the same size) or ends the session. */
static void fuzz_transport_echo(pn_handshake *hs, const uint8_t *body, size_t len) {
    uint8_t key[PN_NOISE_KEYLEN];
    size_t out_len;
    if (pn_handshake_remote_static(hs, key, NULL) != 0) abort();
    uint8_t *pt = malloc(len ? len : 1), *ct;
    if (!pt) abort();
    if (pn_handshake_open(hs, body, len, pt, len, &out_len, NULL) == 0) {
        if (out_len + PN_TRANSPORT_TAG != len) abort();
        ct = malloc(len ? len : 1);
        if (!ct) abort();
        if (pn_handshake_seal(hs, pt, out_len, ct, len, &out_len, NULL) != 0 || out_len != len)
            abort();
        free(ct);
    } else if (pn_handshake_next(hs) != PN_HANDSHAKE_FAILED) {
        abort(); /* a refused transport body ends the session */
    }
    free(pt);
}

#endif
