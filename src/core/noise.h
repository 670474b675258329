/*
 * Noise_XX_25519_ChaChaPoly_SHA256 (Noise spec rev 34) on libsodium: the
 * CipherState, and the XX HandshakeState with its SymmetricState inside.
 *
 * Two profiles share the code:
 *   PN_NOISE_STANDARD  the spec, prologue mixed at initialisation; checked
 *                      against the public test vectors.
 *   PN_NOISE_PEERNET   what the Elixir PeerNet peer puts on the wire
 *                      (PROTOCOL.md): no MixHash(prologue) at all, no MixHash
 *                      of the (empty) M1 payload; all payloads must be empty.
 *
 * Every function returns 0 or a negative PN_E* code and fills the optional
 * pn_err. A HandshakeState that refused a peer's message (or failed during
 * its own write) is dead: its secrets are wiped and every later call
 * returns PN_ESTATE.
 */
#ifndef PN_NOISE_H
#define PN_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"

#define PN_NOISE_PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_SHA256"
#define PN_NOISE_KEYLEN 32  /* X25519 keys, cipher keys */
#define PN_NOISE_HASHLEN 32 /* SHA-256: h, ck */
#define PN_NOISE_TAGLEN 16  /* Poly1305 */
/* The spec's bound on a handshake message. Transport CipherStates do not
 * apply it: PeerNet frames carry up to 1 MiB (see handshake.h). */
#define PN_NOISE_MSG_MAX 65535
/* A prologue is application context, not data: keep it small and bounded. */
#define PN_NOISE_PROLOGUE_MAX 65535

typedef enum { PN_NOISE_INITIATOR = 0, PN_NOISE_RESPONDER = 1 } pn_noise_role;
typedef enum { PN_NOISE_STANDARD = 0, PN_NOISE_PEERNET = 1 } pn_noise_profile;

/* ---- CipherState --------------------------------------------------------
 * Caller-allocated; a transport direction is one of these. The nonce is
 * 4 zero bytes || n as u64 little-endian. n = 2^64-1 is never used: an
 * encrypt or decrypt at that counter fails with PN_ELIMIT (the connection
 * must end; the counter never wraps). A failed decrypt leaves n unchanged. */
typedef struct pn_noise_cipher {
    uint8_t k[PN_NOISE_KEYLEN];
    uint64_t n;
    int has_key;
} pn_noise_cipher;

void pn_noise_cipher_init(pn_noise_cipher *c, const uint8_t k[PN_NOISE_KEYLEN]);
/* Wipes the key; the struct is then keyless (encrypt/decrypt: PN_ESTATE). */
void pn_noise_cipher_clear(pn_noise_cipher *c);

/* out receives ptlen + PN_NOISE_TAGLEN bytes (ciphertext || tag); out may
 * equal pt. ad may be NULL when adlen is 0. */
int pn_noise_cipher_encrypt(pn_noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                            size_t ptlen, uint8_t *out, size_t outcap, size_t *outlen, pn_err *e);
/* out receives ctlen - PN_NOISE_TAGLEN bytes. Bad tag: PN_EAUTH. */
int pn_noise_cipher_decrypt(pn_noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                            size_t ctlen, uint8_t *out, size_t outcap, size_t *outlen, pn_err *e);

uint64_t pn_noise_cipher_nonce(const pn_noise_cipher *c);
/* TEST ONLY: jump the counter (e.g. to 2^64-2 to exercise exhaustion). */
void pn_noise_cipher_set_nonce(pn_noise_cipher *c, uint64_t n);

/* ---- HandshakeState (pattern XX) ---------------------------------------- */

/* Trust decision on the peer's static public key, called the moment it has
 * been decrypted (initiator: in M2, responder: in M3), before it is used.
 * Return 0 to accept; anything else refuses the handshake with PN_ETRUST. */
typedef int (*pn_noise_verify_fn)(void *ud, const uint8_t remote_static[PN_NOISE_KEYLEN]);

typedef struct pn_noise pn_noise;

/* static_priv: our X25519 private key (copied; the caller may wipe its
 * copy); static_pub its public key, or NULL to compute it here (a base
 * point multiplication: a host that knows its key saves that much of
 * every handshake). prologue must be NULL/0 for PN_NOISE_PEERNET, which
 * cannot mix one. Returns NULL with e filled on failure. */
pn_noise *pn_noise_create(pn_noise_role role, pn_noise_profile profile,
                          const uint8_t static_priv[PN_NOISE_KEYLEN], const uint8_t *static_pub,
                          const uint8_t *prologue, size_t prologue_len, pn_err *e);
/* Wipes every secret and frees; NULL is a no-op. */
void pn_noise_free(pn_noise *n);

/* verify may be NULL (every key accepted). */
void pn_noise_set_verify(pn_noise *n, pn_noise_verify_fn verify, void *ud);

/* TEST ONLY: use this ephemeral private key instead of a fresh random one.
 * Must be called before this side's `e` token is written (PN_ESTATE). */
int pn_noise_set_ephemeral(pn_noise *n, const uint8_t priv[PN_NOISE_KEYLEN], pn_err *e);

/* Writes this side's next handshake message (tokens, then the encrypted
 * payload) into out. Argument errors (state, sizes, a payload under the
 * PeerNet profile) leave the state as it was; a failure after that kills it. */
int pn_noise_write_message(pn_noise *n, const uint8_t *payload, size_t payload_len, uint8_t *out,
                           size_t outcap, size_t *outlen, pn_err *e);
/* Consumes the peer's next handshake message; its decrypted payload goes to
 * payload (at most msg_len bytes). msg is untrusted: any refusal of it kills
 * the handshake (PN_EINVAL size, PN_EAUTH tag or low-order point,
 * PN_ETRUST verify callback). Only PN_ESTATE and a too-small payload buffer
 * leave the state as it was. */
int pn_noise_read_message(pn_noise *n, const uint8_t *msg, size_t msg_len, uint8_t *payload,
                          size_t payload_cap, size_t *payload_len, pn_err *e);

/* 1 once all three messages are processed (also after split), else 0. */
int pn_noise_is_done(const pn_noise *n);
/* 1 if the handshake refused a message or failed. */
int pn_noise_is_failed(const pn_noise *n);
/* 1 if this side writes the next message, 0 if it reads it or is finished. */
int pn_noise_wants_write(const pn_noise *n);

/* The current h (the handshake hash once done; channel binding). */
void pn_noise_handshake_hash(const pn_noise *n, uint8_t out[PN_NOISE_HASHLEN]);
/* TEST ONLY: the current chaining key. PN_ESTATE once the state is dead. */
int pn_noise_chaining_key(const pn_noise *n, uint8_t out[PN_NOISE_HASHLEN], pn_err *e);
/* The peer's static public key; PN_ESTATE until it has been received, and
 * once the handshake has failed (a refused handshake identifies nobody). */
int pn_noise_remote_static(const pn_noise *n, uint8_t out[PN_NOISE_KEYLEN], pn_err *e);
/* Our static public key. */
void pn_noise_local_static(const pn_noise *n, uint8_t out[PN_NOISE_KEYLEN]);

/* Split, for this side: tx sends, rx receives (initiator: tx = k1, rx = k2;
 * responder the reverse). Only once, only when done. ck stays in the
 * state until pn_noise_free: it reveals nothing the transport keys don't. */
int pn_noise_split(pn_noise *n, pn_noise_cipher *tx, pn_noise_cipher *rx, pn_err *e);

/* SHA-256, the suite's HASH (exposed for checking transcripts). */
void pn_noise_hash(const uint8_t *data, size_t len, uint8_t out[PN_NOISE_HASHLEN]);

#endif
