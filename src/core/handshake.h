/*
 * The PeerNet handshake and transport crypto of one connection, on frame
 * bodies (the caller adds and strips the 4-byte length prefix).
 *
 * Handshake: three frames, Noise XX in the PeerNet profile (noise.h), each
 * body the ETF encoding of one binary, `83 6D <u32 BE len> <noise message>`,
 * of exactly PN_HANDSHAKE_M1/M2/M3_BODY bytes; other sizes and headers are
 * refused before any crypto. The trust callback decides on the peer's static
 * key the moment it is decrypted (initiator: M2, responder: M3).
 *
 * Transport (once done): seal(plaintext) -> ciphertext || tag and
 * open(body) -> plaintext, each direction with its own counter from 0
 * and empty AAD. Any refusal of the peer's bytes, and any failure to seal
 * (counter exhausted), leaves the object dead: every later call returns
 * PN_ESTATE, as the connection must close.
 */
#ifndef PN_HANDSHAKE_H
#define PN_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"
#include "peernet/limits.h"
#include "noise.h"

#define PN_HANDSHAKE_ETF_HEADER 6 /* 0x83 0x6D u32-BE-length */
#define PN_HANDSHAKE_M1_BODY (PN_HANDSHAKE_ETF_HEADER + 32)
#define PN_HANDSHAKE_M2_BODY (PN_HANDSHAKE_ETF_HEADER + 96)
#define PN_HANDSHAKE_M3_BODY (PN_HANDSHAKE_ETF_HEADER + 64)
/* Size a buffer for pn_handshake_write with this. */
#define PN_HANDSHAKE_BODY_MAX PN_HANDSHAKE_M2_BODY

/* A transport body (ciphertext || tag) is one frame's body, at most
 * PN_FRAME_CAP_MAX (peernet/limits.h); its plaintext is a tag shorter. */
#define PN_TRANSPORT_TAG PN_NOISE_TAGLEN
#define PN_TRANSPORT_PLAINTEXT_MAX (PN_FRAME_CAP_MAX - PN_TRANSPORT_TAG)

typedef enum {
    PN_HANDSHAKE_WRITE,  /* call pn_handshake_write and send the body */
    PN_HANDSHAKE_READ,   /* wait for the peer's frame, pass it to pn_handshake_read */
    PN_HANDSHAKE_DONE,   /* transport: seal/open */
    PN_HANDSHAKE_FAILED, /* close the connection */
} pn_handshake_status;

typedef struct pn_handshake pn_handshake;

/* verify is mandatory: accepting every key must be a visible decision.
 * static_pub: the public key of static_priv, or NULL (pn_noise_create).
 * Returns NULL with e filled on failure. */
pn_handshake *pn_handshake_create(pn_noise_role role, const uint8_t static_priv[PN_NOISE_KEYLEN],
                                  const uint8_t *static_pub, pn_noise_verify_fn verify,
                                  void *verify_ud, pn_err *e);
/* Wipes every key (handshake and transport) and frees; NULL is a no-op. */
void pn_handshake_free(pn_handshake *hs);

/* TEST ONLY: fixed ephemeral private key; before this side's first write. */
int pn_handshake_set_ephemeral(pn_handshake *hs, const uint8_t priv[PN_NOISE_KEYLEN], pn_err *e);

pn_handshake_status pn_handshake_next(const pn_handshake *hs);

/* Writes this side's next handshake frame body (M1 or M3 for the
 * initiator, M2 for the responder) into body (cap >= PN_HANDSHAKE_BODY_MAX
 * always suffices). */
int pn_handshake_write(pn_handshake *hs, uint8_t *body, size_t cap, size_t *len, pn_err *e);
/* The size and ETF header check pn_handshake_read makes on frame msg (0 =
 * M1), with no state and no crypto: a host refuses a malformed first
 * message before it spends anything on the connection. */
int pn_handshake_check_body(int msg, const uint8_t *body, size_t len, pn_err *e);
/* Consumes the peer's next handshake frame body (untrusted). */
int pn_handshake_read(pn_handshake *hs, const uint8_t *body, size_t len, pn_err *e);

/* h: the handshake hash once done (equal on both sides). */
void pn_handshake_hash(const pn_handshake *hs, uint8_t out[PN_NOISE_HASHLEN]);
/* TEST ONLY: the chaining key (PN_ESTATE once dead). */
int pn_handshake_chaining_key(const pn_handshake *hs, uint8_t out[PN_NOISE_HASHLEN], pn_err *e);
/* The peer's static public key (its address); PN_ESTATE until received and
 * after a failed handshake. */
int pn_handshake_remote_static(const pn_handshake *hs, uint8_t out[PN_NOISE_KEYLEN], pn_err *e);

/* Transport: out receives ptlen + PN_TRANSPORT_TAG bytes; ptlen is at most
 * PN_TRANSPORT_PLAINTEXT_MAX (PN_ETOOBIG, not fatal). */
int pn_handshake_seal(pn_handshake *hs, const uint8_t *pt, size_t ptlen, uint8_t *out, size_t cap,
                      size_t *outlen, pn_err *e);
/* body is untrusted; out receives len - PN_TRANSPORT_TAG bytes. */
int pn_handshake_open(pn_handshake *hs, const uint8_t *body, size_t len, uint8_t *out, size_t cap,
                      size_t *outlen, pn_err *e);
/* Counters of the next seal / open. */
uint64_t pn_handshake_send_nonce(const pn_handshake *hs);
uint64_t pn_handshake_recv_nonce(const pn_handshake *hs);

#endif
