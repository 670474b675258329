/*
 * UDP LAN discovery announce (PROTOCOL.md): 39 bytes,
 * "PNET" | version 0x01 | TCP port u16 BE | static public key (32).
 * Announces are unauthenticated hints; the handshake proves identity.
 */
#ifndef PN_ANNOUNCE_H
#define PN_ANNOUNCE_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"

#define PN_ANNOUNCE_LEN 39
#define PN_ANNOUNCE_VERSION 1
#define PN_ANNOUNCE_PORT 4040

void pn_announce_encode(uint8_t out[PN_ANNOUNCE_LEN], uint16_t port, const uint8_t key[32]);

/* Any other length, magic or version is PN_EINVAL. */
int pn_announce_decode(const uint8_t *buf, size_t len, uint16_t *port, uint8_t key[32], pn_err *e);

#endif
