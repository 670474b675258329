/*
 * PeerNet handshake fuzz target, responder side. The input is what an
 * initiator sends, as wire bytes: frames of u32 BE length || body (a length
 * beyond the remaining bytes takes what remains). Frame 1 is M1, frame 2 is
 * M3, every later frame a transport body to open; each opened plaintext is
 * sealed back to exercise the send side. The keys are the fixed ones of
 * vectors/peernet_wire_v1.json, so the recorded transcript (seeds from
 * fuzz/gen_noise_seeds.lua) completes the handshake and reaches open().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/handshake.h"
#include "handshake_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t s_priv[PN_NOISE_KEYLEN], e_priv[PN_NOISE_KEYLEN], hsbuf[PN_HANDSHAKE_BODY_MAX];
    const uint8_t *p = data, *body;
    size_t left = size, len, out_len;
    pn_handshake *hs;

    memset(s_priv, 0x03, sizeof s_priv); /* responder_static_priv */
    memset(e_priv, 0x04, sizeof e_priv); /* responder_ephemeral_priv */
    hs = pn_handshake_create(PN_NOISE_RESPONDER, s_priv, NULL, verify, NULL, NULL);
    if (!hs || pn_handshake_set_ephemeral(hs, e_priv, NULL) != 0) abort();

    while (next_frame(&p, &left, &body, &len)) {
        pn_handshake_status st = pn_handshake_next(hs);
        if (st == PN_HANDSHAKE_FAILED) break;
        if (st == PN_HANDSHAKE_READ) {
            if (pn_handshake_read(hs, body, len, NULL) != 0) {
                if (pn_handshake_next(hs) != PN_HANDSHAKE_FAILED) abort();
                break;
            }
            while (pn_handshake_next(hs) == PN_HANDSHAKE_WRITE)
                if (pn_handshake_write(hs, hsbuf, sizeof hsbuf, &out_len, NULL) != 0 ||
                    out_len != PN_HANDSHAKE_M2_BODY)
                    abort(); /* our own M2 cannot fail once M1 was accepted */
            continue;
        }
        if (st != PN_HANDSHAKE_DONE) abort();
        fuzz_transport_echo(hs, body, len);
    }
    pn_handshake_free(hs);
    return 0;
}
