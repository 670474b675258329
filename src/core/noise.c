#include "noise.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* ---- CipherState -------------------------------------------------------- */

#define NONCE_MAX UINT64_MAX /* reserved by the spec: never used as a nonce */

void pn_noise_cipher_init(pn_noise_cipher *c, const uint8_t k[PN_NOISE_KEYLEN]) {
    memcpy(c->k, k, PN_NOISE_KEYLEN);
    c->n = 0;
    c->has_key = 1;
}

void pn_noise_cipher_clear(pn_noise_cipher *c) {
    sodium_memzero(c, sizeof *c);
}

static void make_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES], uint64_t n) {
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

int pn_noise_cipher_encrypt(pn_noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                            size_t ptlen, uint8_t *out, size_t outcap, size_t *outlen, pn_err *e) {
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    unsigned long long clen = 0;

    if (!c->has_key) return pn_err_set(e, PN_ESTATE, "noise: cipher state has no key");
    if (c->n == NONCE_MAX)
        return pn_err_set(e, PN_ELIMIT,
                          "noise: send counter exhausted (2^64-1); the connection must end");
    if (ptlen > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX - PN_NOISE_TAGLEN)
        return pn_err_set(e, PN_ETOOBIG, "noise: plaintext of %zu bytes is too large", ptlen);
    if (outcap < ptlen + PN_NOISE_TAGLEN)
        return pn_err_set(e, PN_ETOOBIG, "noise: output buffer of %zu bytes, %zu needed", outcap,
                          ptlen + PN_NOISE_TAGLEN);
    make_nonce(nonce, c->n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, ptlen, ad, adlen, NULL, nonce, c->k);
    c->n++;
    *outlen = (size_t)clen;
    return 0;
}

int pn_noise_cipher_decrypt(pn_noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                            size_t ctlen, uint8_t *out, size_t outcap, size_t *outlen, pn_err *e) {
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    unsigned long long mlen = 0;

    if (!c->has_key) return pn_err_set(e, PN_ESTATE, "noise: cipher state has no key");
    if (c->n == NONCE_MAX)
        return pn_err_set(e, PN_ELIMIT,
                          "noise: receive counter exhausted (2^64-1); the connection must end");
    if (ctlen < PN_NOISE_TAGLEN)
        return pn_err_set(e, PN_EINVAL, "noise: ciphertext of %zu bytes is shorter than its tag",
                          ctlen);
    if (outcap < ctlen - PN_NOISE_TAGLEN)
        return pn_err_set(e, PN_ETOOBIG, "noise: output buffer of %zu bytes, %zu needed", outcap,
                          ctlen - PN_NOISE_TAGLEN);
    make_nonce(nonce, c->n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, ctlen, ad, adlen, nonce,
                                                  c->k) != 0)
        return pn_err_set(e, PN_EAUTH,
                          "noise: message failed authentication (bad tag, wrong key or replay)");
    c->n++;
    *outlen = (size_t)mlen;
    return 0;
}

uint64_t pn_noise_cipher_nonce(const pn_noise_cipher *c) {
    return c->n;
}

void pn_noise_cipher_set_nonce(pn_noise_cipher *c, uint64_t n) {
    c->n = n;
}

/* ---- SymmetricState ------------------------------------------------------ */

typedef struct symmetric {
    uint8_t ck[PN_NOISE_HASHLEN];
    uint8_t h[PN_NOISE_HASHLEN];
    pn_noise_cipher cs;
} symmetric;

void pn_noise_hash(const uint8_t *data, size_t len, uint8_t out[PN_NOISE_HASHLEN]) {
    crypto_hash_sha256(out, data, len);
}

static void mix_hash(symmetric *ss, const uint8_t *data, size_t len) {
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, ss->h, sizeof ss->h);
    if (len) crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, ss->h);
    sodium_memzero(&st, sizeof st);
}

static void hmac(const uint8_t key[PN_NOISE_HASHLEN], const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen, uint8_t out[PN_NOISE_HASHLEN]) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, PN_NOISE_HASHLEN);
    if (alen) crypto_auth_hmacsha256_update(&st, a, alen);
    if (blen) crypto_auth_hmacsha256_update(&st, b, blen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

/* HKDF(ck, ikm) with two outputs, as the spec defines it over HMAC-HASH. */
static void hkdf2(const uint8_t ck[PN_NOISE_HASHLEN], const uint8_t *ikm, size_t ikm_len,
                  uint8_t out1[PN_NOISE_HASHLEN], uint8_t out2[PN_NOISE_HASHLEN]) {
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t temp[PN_NOISE_HASHLEN];
    hmac(ck, ikm, ikm_len, NULL, 0, temp);
    hmac(temp, &one, 1, NULL, 0, out1);
    hmac(temp, out1, PN_NOISE_HASHLEN, &two, 1, out2);
    sodium_memzero(temp, sizeof temp);
}

static void mix_key(symmetric *ss, const uint8_t *ikm, size_t ikm_len) {
    uint8_t ck[PN_NOISE_HASHLEN], k[PN_NOISE_HASHLEN];
    hkdf2(ss->ck, ikm, ikm_len, ck, k);
    memcpy(ss->ck, ck, sizeof ck);
    pn_noise_cipher_init(&ss->cs, k); /* HASHLEN == 32: no truncation */
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(k, sizeof k);
}

/* Before the first MixKey there is no key and the "ciphertext" is the
 * plaintext (the spec's EncryptWithAd on an empty CipherState). */
static int encrypt_and_hash(symmetric *ss, const uint8_t *pt, size_t len, uint8_t *out,
                            size_t *outlen, pn_err *e) {
    if (ss->cs.has_key) {
        int rc = pn_noise_cipher_encrypt(&ss->cs, ss->h, sizeof ss->h, pt, len, out,
                                         len + PN_NOISE_TAGLEN, outlen, e);
        if (rc) return rc;
    } else {
        if (len) memmove(out, pt, len);
        *outlen = len;
    }
    mix_hash(ss, out, *outlen);
    return 0;
}

static int decrypt_and_hash(symmetric *ss, const uint8_t *ct, size_t len, uint8_t *out,
                            size_t outcap, size_t *outlen, pn_err *e) {
    if (ss->cs.has_key) {
        int rc =
            pn_noise_cipher_decrypt(&ss->cs, ss->h, sizeof ss->h, ct, len, out, outcap, outlen, e);
        if (rc) return rc;
    } else {
        if (outcap < len) return pn_err_set(e, PN_ETOOBIG, "noise: internal: payload buffer");
        if (len) memmove(out, ct, len);
        *outlen = len;
    }
    mix_hash(ss, ct, len);
    return 0;
}

/* ---- HandshakeState ----------------------------------------------------- */

enum { TOK_END, TOK_E, TOK_S, TOK_EE, TOK_ES, TOK_SE };

/* XX:  -> e   <- e, ee, s, es   -> s, se */
static const uint8_t xx_tokens[3][5] = {
    {TOK_E, TOK_END},
    {TOK_E, TOK_EE, TOK_S, TOK_ES, TOK_END},
    {TOK_S, TOK_SE, TOK_END},
};
/* Bytes of each message besides the payload: token bytes, plus the
 * payload's tag where a key exists by then (M2, M3). */
static const size_t xx_overhead[3] = {32, 32 + 48 + 16, 48 + 16};
static const int xx_payload_keyed[3] = {0, 1, 1};

enum { ST_ACTIVE, ST_DONE, ST_SPLIT, ST_FAILED };

struct pn_noise {
    pn_noise_role role;
    pn_noise_profile profile;
    int state;
    int msg; /* index of the next message, 0..3 */
    symmetric ss;
    uint8_t s_priv[PN_NOISE_KEYLEN], s_pub[PN_NOISE_KEYLEN];
    uint8_t e_priv[PN_NOISE_KEYLEN], e_pub[PN_NOISE_KEYLEN];
    uint8_t re[PN_NOISE_KEYLEN], rs[PN_NOISE_KEYLEN];
    int has_e, has_rs;
    pn_noise_verify_fn verify;
    void *verify_ud;
};

static void wipe_secrets(pn_noise *n) {
    sodium_memzero(n->s_priv, sizeof n->s_priv);
    sodium_memzero(n->e_priv, sizeof n->e_priv);
    sodium_memzero(n->ss.ck, sizeof n->ss.ck);
    pn_noise_cipher_clear(&n->ss.cs);
}

/* Every refusal goes through here: a half-run handshake must not be
 * resumable, and its keys are of no further use. */
static int fail(pn_noise *n, int rc) {
    n->state = ST_FAILED;
    n->has_rs = 0; /* a failed handshake authenticated nobody */
    wipe_secrets(n);
    return rc;
}

pn_noise *pn_noise_create(pn_noise_role role, pn_noise_profile profile,
                          const uint8_t static_priv[PN_NOISE_KEYLEN], const uint8_t *static_pub,
                          const uint8_t *prologue, size_t prologue_len, pn_err *e) {
    pn_noise *n;

    if (role != PN_NOISE_INITIATOR && role != PN_NOISE_RESPONDER) {
        pn_err_set(e, PN_EINVAL, "noise: role must be initiator or responder");
        return NULL;
    }
    if (profile != PN_NOISE_STANDARD && profile != PN_NOISE_PEERNET) {
        pn_err_set(e, PN_EINVAL, "noise: unknown profile %d", (int)profile);
        return NULL;
    }
    if (profile == PN_NOISE_PEERNET && prologue_len > 0) {
        pn_err_set(e, PN_EINVAL, "noise: the PeerNet profile has no prologue (its peers mix none)");
        return NULL;
    }
    if (prologue_len > PN_NOISE_PROLOGUE_MAX) {
        pn_err_set(e, PN_ETOOBIG, "noise: prologue of %zu bytes exceeds %d", prologue_len,
                   PN_NOISE_PROLOGUE_MAX);
        return NULL;
    }
    if (sodium_init() < 0) {
        pn_err_set(e, PN_EIO, "noise: libsodium failed to initialise");
        return NULL;
    }
    n = calloc(1, sizeof *n);
    if (!n) {
        pn_err_set(e, PN_ENOMEM, "noise: out of memory");
        return NULL;
    }
    n->role = role;
    n->profile = profile;
    n->state = ST_ACTIVE;
    memcpy(n->s_priv, static_priv, PN_NOISE_KEYLEN);
    if (static_pub) {
        memcpy(n->s_pub, static_pub, PN_NOISE_KEYLEN);
    } else if (crypto_scalarmult_base(n->s_pub, n->s_priv) != 0) {
        pn_noise_free(n);
        pn_err_set(e, PN_EINVAL, "noise: static private key is unusable (zero public key)");
        return NULL;
    }
    /* The name is exactly HASHLEN bytes, so h = name, unhashed. */
    memcpy(n->ss.h, PN_NOISE_PROTOCOL_NAME, PN_NOISE_HASHLEN);
    memcpy(n->ss.ck, n->ss.h, PN_NOISE_HASHLEN);
    if (profile == PN_NOISE_STANDARD) mix_hash(&n->ss, prologue, prologue_len);
    return n;
}

void pn_noise_free(pn_noise *n) {
    if (!n) return;
    sodium_memzero(n, sizeof *n);
    free(n);
}

void pn_noise_set_verify(pn_noise *n, pn_noise_verify_fn verify, void *ud) {
    n->verify = verify;
    n->verify_ud = ud;
}

/* Initiator writes e in M1, responder in M2: before that it can be fixed. */
int pn_noise_set_ephemeral(pn_noise *n, const uint8_t priv[PN_NOISE_KEYLEN], pn_err *e) {
    if (n->state != ST_ACTIVE || n->has_e)
        return pn_err_set(e, PN_ESTATE, "noise: ephemeral key already in use");
    memcpy(n->e_priv, priv, PN_NOISE_KEYLEN);
    if (crypto_scalarmult_base(n->e_pub, n->e_priv) != 0) {
        sodium_memzero(n->e_priv, sizeof n->e_priv);
        return pn_err_set(e, PN_EINVAL, "noise: ephemeral private key is unusable");
    }
    n->has_e = 1;
    return 0;
}

static int writes(const pn_noise *n, int msg) {
    return (msg % 2 == 0) == (n->role == PN_NOISE_INITIATOR);
}

static int dh(uint8_t out[PN_NOISE_KEYLEN], const uint8_t priv[PN_NOISE_KEYLEN],
              const uint8_t pub[PN_NOISE_KEYLEN], pn_err *e) {
    /* libsodium refuses (returns -1 on) an all-zero result, i.e. a
     * low-order point; the explicit check keeps that true whatever the
     * libsodium version. */
    if (crypto_scalarmult(out, priv, pub) != 0 || sodium_is_zero(out, PN_NOISE_KEYLEN)) {
        sodium_memzero(out, PN_NOISE_KEYLEN);
        return pn_err_set(e, PN_EAUTH, "noise: peer key is a low-order or invalid X25519 point");
    }
    return 0;
}

/* A point of order dividing 8 (on the curve or its twist, any encoding)
 * maps to zero under any clamped scalar, because clamped scalars are
 * multiples of 8. Checked as soon as the peer sends a key, so a responder
 * refuses a bad M1 at once instead of when it writes M2. */
static int check_point(const uint8_t pub[PN_NOISE_KEYLEN], pn_err *e) {
    static const uint8_t probe[PN_NOISE_KEYLEN] = {0x48, 0x35, 0x7e, 0x19, 0x02, 0xa1, 0x6c, 0x33,
                                                   0x9d, 0x50, 0x04, 0xbe, 0x71, 0xe2, 0x0f, 0x86,
                                                   0x2b, 0xc9, 0x5a, 0x17, 0xd4, 0x63, 0x88, 0x3f,
                                                   0xa0, 0x5e, 0x11, 0xc7, 0x92, 0x3d, 0x6b, 0x41};
    uint8_t out[PN_NOISE_KEYLEN];
    int rc = dh(out, probe, pub, e);
    sodium_memzero(out, sizeof out);
    return rc;
}

static int mix_dh(pn_noise *n, const uint8_t priv[PN_NOISE_KEYLEN],
                  const uint8_t pub[PN_NOISE_KEYLEN], pn_err *e) {
    uint8_t shared[PN_NOISE_KEYLEN];
    int rc = dh(shared, priv, pub, e);
    if (rc == 0) mix_key(&n->ss, shared, sizeof shared);
    sodium_memzero(shared, sizeof shared);
    return rc;
}

/* ee, es, se: which of our keys meets which of theirs depends on the role. */
static int token_dh(pn_noise *n, int tok, pn_err *e) {
    int init = n->role == PN_NOISE_INITIATOR;
    switch (tok) {
        case TOK_EE:
            return mix_dh(n, n->e_priv, n->re, e);
        case TOK_ES:
            return init ? mix_dh(n, n->e_priv, n->rs, e) : mix_dh(n, n->s_priv, n->re, e);
        case TOK_SE:
            return init ? mix_dh(n, n->s_priv, n->re, e) : mix_dh(n, n->e_priv, n->rs, e);
        default:
            return pn_err_set(e, PN_EINVAL, "noise: internal: not a DH token");
    }
}

static void finish_message(pn_noise *n) {
    n->msg++;
    if (n->msg == 3) {
        n->state = ST_DONE;
        /* Ephemeral and handshake cipher are spent; ck stays for Split. */
        sodium_memzero(n->e_priv, sizeof n->e_priv);
        pn_noise_cipher_clear(&n->ss.cs);
    }
}

int pn_noise_write_message(pn_noise *n, const uint8_t *payload, size_t payload_len, uint8_t *out,
                           size_t outcap, size_t *outlen, pn_err *e) {
    size_t need, pos = 0, len = 0;
    int rc;

    if (n->state != ST_ACTIVE)
        return pn_err_set(e, PN_ESTATE, "noise: handshake is %s, no message to write",
                          n->state == ST_FAILED ? "dead after an error" : "finished");
    if (!writes(n, n->msg))
        return pn_err_set(e, PN_ESTATE, "noise: it is the peer's turn (read message %d first)",
                          n->msg + 1);
    if (n->profile == PN_NOISE_PEERNET && payload_len > 0)
        return pn_err_set(e, PN_EINVAL, "noise: PeerNet handshake payloads must be empty");
    need = xx_overhead[n->msg] + payload_len;
    if (payload_len > PN_NOISE_MSG_MAX || need > PN_NOISE_MSG_MAX)
        return pn_err_set(e, PN_ETOOBIG, "noise: handshake message would exceed %d bytes",
                          PN_NOISE_MSG_MAX);
    if (outcap < need)
        return pn_err_set(e, PN_ETOOBIG, "noise: output buffer of %zu bytes, %zu needed", outcap,
                          need);

    for (const uint8_t *t = xx_tokens[n->msg]; *t != TOK_END; t++) {
        switch (*t) {
            case TOK_E:
                if (!n->has_e) {
                    randombytes_buf(n->e_priv, sizeof n->e_priv);
                    if (crypto_scalarmult_base(n->e_pub, n->e_priv) != 0)
                        return fail(n, pn_err_set(e, PN_EINVAL, "noise: bad ephemeral key"));
                    n->has_e = 1;
                }
                memcpy(out + pos, n->e_pub, PN_NOISE_KEYLEN);
                mix_hash(&n->ss, n->e_pub, PN_NOISE_KEYLEN);
                pos += PN_NOISE_KEYLEN;
                break;
            case TOK_S:
                rc = encrypt_and_hash(&n->ss, n->s_pub, PN_NOISE_KEYLEN, out + pos, &len, e);
                if (rc) return fail(n, rc);
                pos += len;
                break;
            default:
                rc = token_dh(n, *t, e);
                if (rc) return fail(n, rc);
                break;
        }
    }
    /* PeerNet deviation (2): the empty M1 payload is not hashed. */
    if (!(n->profile == PN_NOISE_PEERNET && n->msg == 0)) {
        rc = encrypt_and_hash(&n->ss, payload, payload_len, out + pos, &len, e);
        if (rc) return fail(n, rc);
        pos += len;
    }
    *outlen = pos;
    finish_message(n);
    return 0;
}

/* The peer's static key, decrypted: refuse low-order points, then ask the
 * application whether it trusts this identity. */
static int accept_remote_static(pn_noise *n, pn_err *e) {
    int rc = check_point(n->rs, e);
    if (rc) return rc;
    if (n->verify && n->verify(n->verify_ud, n->rs) != 0)
        return pn_err_set(e, PN_ETRUST,
                          "noise: the peer's static key was rejected by the trust "
                          "callback");
    return 0;
}

int pn_noise_read_message(pn_noise *n, const uint8_t *msg, size_t msg_len, uint8_t *payload,
                          size_t payload_cap, size_t *payload_len, pn_err *e) {
    size_t pos = 0, len = 0, plen;
    uint8_t s_ct[PN_NOISE_KEYLEN + PN_NOISE_TAGLEN];
    int rc, m;

    if (n->state != ST_ACTIVE)
        return pn_err_set(e, PN_ESTATE, "noise: handshake is %s, no message to read",
                          n->state == ST_FAILED ? "dead after an error" : "finished");
    m = n->msg;
    if (writes(n, m))
        return pn_err_set(e, PN_ESTATE, "noise: it is our turn (write message %d first)", m + 1);
    if (msg_len > PN_NOISE_MSG_MAX)
        return fail(n, pn_err_set(e, PN_ETOOBIG,
                                  "noise: handshake message %d of %zu bytes "
                                  "exceeds %d",
                                  m + 1, msg_len, PN_NOISE_MSG_MAX));
    if (msg_len < xx_overhead[m])
        return fail(n, pn_err_set(e, PN_EINVAL,
                                  "noise: handshake message %d is %zu bytes, at least %zu needed",
                                  m + 1, msg_len, xx_overhead[m]));
    plen = msg_len - xx_overhead[m];
    if (n->profile == PN_NOISE_PEERNET && plen != 0)
        return fail(n, pn_err_set(e, PN_EINVAL,
                                  "noise: PeerNet handshake message %d must be exactly %zu bytes, "
                                  "got %zu",
                                  m + 1, xx_overhead[m], msg_len));
    if (payload_cap < plen)
        return pn_err_set(e, PN_ETOOBIG, "noise: payload buffer of %zu bytes, %zu needed",
                          payload_cap, plen);

    for (const uint8_t *t = xx_tokens[m]; *t != TOK_END; t++) {
        switch (*t) {
            case TOK_E:
                memcpy(n->re, msg + pos, PN_NOISE_KEYLEN);
                pos += PN_NOISE_KEYLEN;
                rc = check_point(n->re, e);
                if (rc) return fail(n, rc);
                mix_hash(&n->ss, n->re, PN_NOISE_KEYLEN);
                break;
            case TOK_S:
                /* XX always has a key by the s token: 32 bytes + tag. */
                memcpy(s_ct, msg + pos, sizeof s_ct);
                pos += sizeof s_ct;
                rc = decrypt_and_hash(&n->ss, s_ct, sizeof s_ct, n->rs, sizeof n->rs, &len, e);
                if (rc) return fail(n, rc);
                n->has_rs = 1;
                rc = accept_remote_static(n, e);
                if (rc) return fail(n, rc);
                break;
            default:
                rc = token_dh(n, *t, e);
                if (rc) return fail(n, rc);
                break;
        }
    }
    if (n->profile == PN_NOISE_PEERNET && m == 0) {
        *payload_len = 0; /* deviation (2): nothing to hash */
    } else {
        size_t clen = plen + (xx_payload_keyed[m] ? PN_NOISE_TAGLEN : 0);
        rc = decrypt_and_hash(&n->ss, msg + pos, clen, payload, payload_cap, payload_len, e);
        if (rc) return fail(n, rc);
    }
    finish_message(n);
    return 0;
}

int pn_noise_is_done(const pn_noise *n) {
    return n->state == ST_DONE || n->state == ST_SPLIT;
}

int pn_noise_is_failed(const pn_noise *n) {
    return n->state == ST_FAILED;
}

int pn_noise_wants_write(const pn_noise *n) {
    return n->state == ST_ACTIVE && writes(n, n->msg);
}

void pn_noise_handshake_hash(const pn_noise *n, uint8_t out[PN_NOISE_HASHLEN]) {
    memcpy(out, n->ss.h, PN_NOISE_HASHLEN);
}

int pn_noise_chaining_key(const pn_noise *n, uint8_t out[PN_NOISE_HASHLEN], pn_err *e) {
    if (n->state == ST_FAILED)
        return pn_err_set(e, PN_ESTATE, "noise: handshake is dead, its chaining key is wiped");
    memcpy(out, n->ss.ck, PN_NOISE_HASHLEN);
    return 0;
}

int pn_noise_remote_static(const pn_noise *n, uint8_t out[PN_NOISE_KEYLEN], pn_err *e) {
    if (n->state == ST_FAILED)
        return pn_err_set(e, PN_ESTATE, "noise: the handshake failed; it authenticated no peer");
    if (!n->has_rs)
        return pn_err_set(e, PN_ESTATE, "noise: the peer's static key has not been received yet");
    memcpy(out, n->rs, PN_NOISE_KEYLEN);
    return 0;
}

void pn_noise_local_static(const pn_noise *n, uint8_t out[PN_NOISE_KEYLEN]) {
    memcpy(out, n->s_pub, PN_NOISE_KEYLEN);
}

int pn_noise_split(pn_noise *n, pn_noise_cipher *tx, pn_noise_cipher *rx, pn_err *e) {
    uint8_t k1[PN_NOISE_HASHLEN], k2[PN_NOISE_HASHLEN];

    if (n->state != ST_DONE)
        return pn_err_set(e, PN_ESTATE, "noise: split needs a finished handshake, once (state: %s)",
                          n->state == ST_SPLIT    ? "already split"
                          : n->state == ST_FAILED ? "dead"
                                                  : "in progress");
    hkdf2(n->ss.ck, NULL, 0, k1, k2);
    if (n->role == PN_NOISE_INITIATOR) {
        pn_noise_cipher_init(tx, k1);
        pn_noise_cipher_init(rx, k2);
    } else {
        pn_noise_cipher_init(tx, k2);
        pn_noise_cipher_init(rx, k1);
    }
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    n->state = ST_SPLIT;
    return 0;
}
