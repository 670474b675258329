/*
 * TEST ONLY: what lets a spec reproduce the recorded Elixir wire
 * transcript byte for byte. Not part of the public API (peernet/peernet.h): the
 * Lua module (its test_ephemeral and test_legacy_atoms options of
 * peernet.host.new and h:ping's nonce, honoured only once the spec-only
 * peernet_wire module is loaded) and the fuzz targets set them. Never in
 * production.
 */
#ifndef PN_TEST_HOOKS_H
#define PN_TEST_HOOKS_H

#include <stdint.h>

#include "peernet/peernet.h"

typedef struct pn_host_test_hooks {
    const uint8_t *ephemeral; /* a fixed ephemeral private key for every handshake (copied) */
    int legacy_atoms;         /* the OTP 25 atom encoding (ATOM_EXT) in envelopes */
} pn_host_test_hooks;

/* Right after pn_host_new, before the loop runs: no handshake or envelope
 * has been made yet. */
void pn_host_test_set(pn_host *h, const pn_host_test_hooks *t);

/* pn_host_ping with a chosen nonce (NULL = random), so a spec can match a
 * recorded pong. */
int pn_calls_test_ping(pn_host *h, const uint8_t peer[PN_KEY_LEN], const uint8_t *nonce, pn_err *e);

#endif
