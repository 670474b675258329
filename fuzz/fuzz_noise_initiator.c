/*
 * PeerNet handshake fuzz target, initiator side. Our M1 is written first;
 * the input is what the responder sends, as wire bytes: frames of u32 BE
 * length || body (a length beyond the remaining bytes takes what remains).
 * Frame 1 is M2 (after which we write M3), every later frame a transport
 * body to open; each opened plaintext is sealed back. The keys are the
 * fixed ones of vectors/peernet_wire_v1.json, so the recorded transcript
 * (seeds from fuzz/gen_noise_seeds.lua) completes the handshake and
 * reaches open().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/handshake.h"
#include "handshake_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_all(pn_handshake *hs) {
    uint8_t buf[PN_HANDSHAKE_BODY_MAX];
    size_t len;
    while (pn_handshake_next(hs) == PN_HANDSHAKE_WRITE)
        if (pn_handshake_write(hs, buf, sizeof buf, &len, NULL) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t s_priv[PN_NOISE_KEYLEN], e_priv[PN_NOISE_KEYLEN];
    const uint8_t *p = data, *body;
    size_t left = size, len;
    pn_handshake *hs;

    memset(s_priv, 0x01, sizeof s_priv); /* initiator_static_priv */
    memset(e_priv, 0x02, sizeof e_priv); /* initiator_ephemeral_priv */
    hs = pn_handshake_create(PN_NOISE_INITIATOR, s_priv, NULL, verify, NULL, NULL);
    if (!hs || pn_handshake_set_ephemeral(hs, e_priv, NULL) != 0) abort();
    write_all(hs); /* M1 */

    while (next_frame(&p, &left, &body, &len)) {
        pn_handshake_status st = pn_handshake_next(hs);
        if (st == PN_HANDSHAKE_FAILED) break;
        if (st == PN_HANDSHAKE_READ) {
            if (pn_handshake_read(hs, body, len, NULL) != 0) {
                if (pn_handshake_next(hs) != PN_HANDSHAKE_FAILED) abort();
                break;
            }
            write_all(hs); /* M3 */
            if (pn_handshake_next(hs) != PN_HANDSHAKE_DONE) abort();
            continue;
        }
        if (st != PN_HANDSHAKE_DONE) abort();
        fuzz_transport_echo(hs, body, len);
    }
    pn_handshake_free(hs);
    return 0;
}
