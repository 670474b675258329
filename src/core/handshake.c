#include "handshake.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct pn_handshake {
    pn_noise *noise;
    pn_noise_role role;
    int msg; /* handshake frames processed, 0..3 */
    int failed;
    pn_noise_cipher tx, rx; /* keyed once msg == 3 */
};

/* Raw Noise message size of handshake frame i (M1, M2, M3). */
static const size_t raw_size[3] = {32, 96, 64};

pn_handshake *pn_handshake_create(pn_noise_role role, const uint8_t static_priv[PN_NOISE_KEYLEN],
                                  const uint8_t *static_pub, pn_noise_verify_fn verify,
                                  void *verify_ud, pn_err *e) {
    pn_handshake *hs;

    if (!verify) {
        pn_err_set(e, PN_EINVAL, "handshake: a trust callback is required");
        return NULL;
    }
    hs = calloc(1, sizeof *hs);
    if (!hs) {
        pn_err_set(e, PN_ENOMEM, "handshake: out of memory");
        return NULL;
    }
    hs->noise = pn_noise_create(role, PN_NOISE_PEERNET, static_priv, static_pub, NULL, 0, e);
    if (!hs->noise) {
        free(hs);
        return NULL;
    }
    pn_noise_set_verify(hs->noise, verify, verify_ud);
    hs->role = role;
    return hs;
}

void pn_handshake_free(pn_handshake *hs) {
    if (!hs) return;
    pn_noise_free(hs->noise);
    pn_noise_cipher_clear(&hs->tx);
    pn_noise_cipher_clear(&hs->rx);
    sodium_memzero(hs, sizeof *hs);
    free(hs);
}

int pn_handshake_set_ephemeral(pn_handshake *hs, const uint8_t priv[PN_NOISE_KEYLEN], pn_err *e) {
    if (hs->failed) return pn_err_set(e, PN_ESTATE, "handshake: dead after an error");
    return pn_noise_set_ephemeral(hs->noise, priv, e);
}

pn_handshake_status pn_handshake_next(const pn_handshake *hs) {
    if (hs->failed) return PN_HANDSHAKE_FAILED;
    if (hs->msg == 3) return PN_HANDSHAKE_DONE;
    return pn_noise_wants_write(hs->noise) ? PN_HANDSHAKE_WRITE : PN_HANDSHAKE_READ;
}

static int fail_hs(pn_handshake *hs, int rc) {
    hs->failed = 1;
    pn_noise_cipher_clear(&hs->tx);
    pn_noise_cipher_clear(&hs->rx);
    return rc;
}

static int check_live(const pn_handshake *hs, pn_err *e) {
    if (hs->failed)
        return pn_err_set(e, PN_ESTATE, "handshake: dead after an error; close the connection");
    return 0;
}

/* After the third message the handshake state is spent: derive the
 * transport keys at once so the caller never sees a half-ready session. */
static int advance(pn_handshake *hs, pn_err *e) {
    hs->msg++;
    if (hs->msg == 3) {
        int rc = pn_noise_split(hs->noise, &hs->tx, &hs->rx, e);
        if (rc) return fail_hs(hs, rc);
    }
    return 0;
}

int pn_handshake_write(pn_handshake *hs, uint8_t *body, size_t cap, size_t *len, pn_err *e) {
    size_t raw_len = 0, need;
    int rc = check_live(hs, e);

    if (rc) return rc;
    if (pn_handshake_next(hs) != PN_HANDSHAKE_WRITE)
        return pn_err_set(e, PN_ESTATE, "handshake: nothing to write now (%s)",
                          hs->msg == 3 ? "handshake finished" : "waiting for the peer's frame");
    need = PN_HANDSHAKE_ETF_HEADER + raw_size[hs->msg];
    if (cap < need)
        return pn_err_set(e, PN_ETOOBIG, "handshake: body buffer of %zu bytes, %zu needed", cap,
                          need);
    rc = pn_noise_write_message(hs->noise, NULL, 0, body + PN_HANDSHAKE_ETF_HEADER,
                                cap - PN_HANDSHAKE_ETF_HEADER, &raw_len, e);
    if (rc) return fail_hs(hs, rc);
    if (raw_len != raw_size[hs->msg])
        return fail_hs(hs, pn_err_set(e, PN_EINVAL, "handshake: internal: message %d is %zu bytes",
                                      hs->msg + 1, raw_len));
    body[0] = 0x83; /* ETF version */
    body[1] = 0x6d; /* BINARY_EXT */
    body[2] = (uint8_t)(raw_len >> 24);
    body[3] = (uint8_t)(raw_len >> 16);
    body[4] = (uint8_t)(raw_len >> 8);
    body[5] = (uint8_t)raw_len;
    *len = need;
    return advance(hs, e);
}

int pn_handshake_check_body(int msg, const uint8_t *body, size_t len, pn_err *e) {
    if (msg < 0 || msg > 2) return pn_err_set(e, PN_EINVAL, "handshake: no message %d", msg + 1);
    size_t raw = raw_size[msg], want = PN_HANDSHAKE_ETF_HEADER + raw;
    if (len != want)
        return pn_err_set(e, PN_EINVAL,
                          "handshake: frame %d body is %zu bytes, PeerNet sends exactly %zu",
                          msg + 1, len, want);
    if (body[0] != 0x83 || body[1] != 0x6d || body[2] != (uint8_t)(raw >> 24) ||
        body[3] != (uint8_t)(raw >> 16) || body[4] != (uint8_t)(raw >> 8) ||
        body[5] != (uint8_t)raw)
        return pn_err_set(e, PN_EINVAL,
                          "handshake: frame %d is not an ETF binary of %zu bytes "
                          "(header %02x %02x %02x%02x%02x%02x)",
                          msg + 1, raw, body[0], body[1], body[2], body[3], body[4], body[5]);
    return 0;
}

int pn_handshake_read(pn_handshake *hs, const uint8_t *body, size_t len, pn_err *e) {
    uint8_t payload[1]; /* PeerNet payloads are empty; never written */
    size_t plen = 0, raw;
    int rc = check_live(hs, e);

    if (rc) return rc;
    if (pn_handshake_next(hs) != PN_HANDSHAKE_READ)
        return pn_err_set(e, PN_ESTATE, "handshake: no frame expected from the peer now (%s)",
                          hs->msg == 3 ? "handshake finished" : "our turn to write");
    raw = raw_size[hs->msg];
    rc = pn_handshake_check_body(hs->msg, body, len, e);
    if (rc) return fail_hs(hs, rc);
    rc = pn_noise_read_message(hs->noise, body + PN_HANDSHAKE_ETF_HEADER, raw, payload,
                               sizeof payload, &plen, e);
    if (rc) return fail_hs(hs, rc);
    return advance(hs, e);
}

void pn_handshake_hash(const pn_handshake *hs, uint8_t out[PN_NOISE_HASHLEN]) {
    pn_noise_handshake_hash(hs->noise, out);
}

int pn_handshake_chaining_key(const pn_handshake *hs, uint8_t out[PN_NOISE_HASHLEN], pn_err *e) {
    int rc = check_live(hs, e);
    return rc ? rc : pn_noise_chaining_key(hs->noise, out, e);
}

int pn_handshake_remote_static(const pn_handshake *hs, uint8_t out[PN_NOISE_KEYLEN], pn_err *e) {
    return pn_noise_remote_static(hs->noise, out, e);
}

static int check_transport(const pn_handshake *hs, pn_err *e) {
    int rc = check_live(hs, e);
    if (rc) return rc;
    if (hs->msg != 3)
        return pn_err_set(e, PN_ESTATE, "handshake: not finished, no transport keys yet");
    return 0;
}

int pn_handshake_seal(pn_handshake *hs, const uint8_t *pt, size_t ptlen, uint8_t *out, size_t cap,
                      size_t *outlen, pn_err *e) {
    int rc = check_transport(hs, e);

    if (rc) return rc;
    if (ptlen > PN_TRANSPORT_PLAINTEXT_MAX)
        return pn_err_set(e, PN_ETOOBIG,
                          "handshake: plaintext of %zu bytes exceeds %d (the frame cap is %d)",
                          ptlen, PN_TRANSPORT_PLAINTEXT_MAX, PN_FRAME_CAP_MAX);
    if (cap < ptlen + PN_TRANSPORT_TAG)
        return pn_err_set(e, PN_ETOOBIG, "handshake: output buffer of %zu bytes, %zu needed", cap,
                          ptlen + PN_TRANSPORT_TAG);
    rc = pn_noise_cipher_encrypt(&hs->tx, NULL, 0, pt, ptlen, out, cap, outlen, e);
    return rc ? fail_hs(hs, rc) : 0;
}

int pn_handshake_open(pn_handshake *hs, const uint8_t *body, size_t len, uint8_t *out, size_t cap,
                      size_t *outlen, pn_err *e) {
    int rc = check_transport(hs, e);

    if (rc) return rc;
    if (len > PN_FRAME_CAP_MAX)
        return fail_hs(hs,
                       pn_err_set(e, PN_ETOOBIG, "handshake: frame body of %zu bytes exceeds %d",
                                  len, PN_FRAME_CAP_MAX));
    if (len < PN_TRANSPORT_TAG)
        return fail_hs(hs,
                       pn_err_set(e, PN_EINVAL,
                                  "handshake: frame body of %zu bytes is shorter than a tag", len));
    if (cap < len - PN_TRANSPORT_TAG)
        return pn_err_set(e, PN_ETOOBIG, "handshake: output buffer of %zu bytes, %zu needed", cap,
                          len - PN_TRANSPORT_TAG);
    rc = pn_noise_cipher_decrypt(&hs->rx, NULL, 0, body, len, out, cap, outlen, e);
    return rc ? fail_hs(hs, rc) : 0;
}

uint64_t pn_handshake_send_nonce(const pn_handshake *hs) {
    return pn_noise_cipher_nonce(&hs->tx);
}

uint64_t pn_handshake_recv_nonce(const pn_handshake *hs) {
    return pn_noise_cipher_nonce(&hs->rx);
}
