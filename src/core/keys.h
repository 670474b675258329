/*
 * Identity keys: a static X25519 keypair whose 32-byte public key is the
 * peer's address. Generation, the `identity.keys` file of PROTOCOL.md, the
 * text forms users type (hex, base64, base64url) and short fingerprints.
 *
 * Key file (71 bytes, PROTOCOL.md "Identity keyfile"):
 *     "PNID" | 0x02 | u8 32 | public key | u8 32 | private key
 * Loading verifies every byte of that layout, the exact size, and that the
 * public key is X25519(private key). The file must be a regular file (not a
 * symlink) owned by the caller, with no group/other permission bits, in a
 * directory no one else can write to; each refusal says how to fix it.
 *
 * Text forms: output is lowercase hex (64 chars) unless asked otherwise.
 * Input accepts hex in either case (64 chars) and standard or URL-safe
 * base64, padded (44 chars) or not (43 chars). The three are told apart by
 * length, so parsing is never ambiguous.
 *
 * Secrets: pn_keypair holds the private key. Wipe one on the stack with
 * pn_keypair_wipe(); long-lived ones come from pn_keypair_new(), which uses
 * sodium_malloc (guard pages, mlock where allowed, wiped by pn_keypair_free).
 */
#ifndef PN_KEYS_H
#define PN_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"
#include "peernet/limits.h" /* PN_KEY_LEN */

#define PN_KEY_HEX_LEN 64         /* text length, without the NUL */
#define PN_KEY_B64_LEN 44         /* standard base64, padded */
#define PN_KEY_B64URL_LEN 43      /* base64url, unpadded */
#define PN_KEY_TEXT_MAX 64        /* longest accepted text form */
#define PN_KEY_FINGERPRINT_LEN 16 /* hex digits of the first 8 bytes of SHA-256(pub) */

#define PN_KEYFILE_LEN 71
#define PN_KEYFILE_MAGIC "PNID"
#define PN_KEYFILE_VERSION 0x02
#define PN_KEYFILE_NAME "identity.keys"

typedef struct pn_keypair {
    uint8_t pub[PN_KEY_LEN];
    uint8_t priv[PN_KEY_LEN]; /* secret: wipe when done */
} pn_keypair;

/* Heap keypair in sodium_malloc memory, zeroed; NULL when out of memory.
 * pn_keypair_free wipes and frees it (NULL is fine). */
pn_keypair *pn_keypair_new(void);
void pn_keypair_free(pn_keypair *kp);

/* Wipes both halves of a keypair (any storage). */
void pn_keypair_wipe(pn_keypair *kp);

/* A fresh random identity. sodium_init() must have succeeded. */
int pn_keys_generate(pn_keypair *kp, pn_err *e);

/* kp = (X25519(secret), secret). The secret is used as given: X25519 clamps
 * it during every multiplication, as the Elixir side does. */
int pn_keys_from_secret(pn_keypair *kp, const uint8_t secret[PN_KEY_LEN], pn_err *e);

/* The 71-byte key file image of kp. out holds a secret: wipe it after use. */
void pn_keys_encode(const pn_keypair *kp, uint8_t out[PN_KEYFILE_LEN]);

/* Parses a key file image of len bytes (exactly PN_KEYFILE_LEN, else an
 * error saying truncated / too large). name is used in messages (a path, or
 * NULL for "identity.keys"). On failure kp is wiped. */
int pn_keys_decode(pn_keypair *kp, const uint8_t *buf, size_t len, const char *name, pn_err *e);

/* Reads path (see the checks above). Errors: PN_EPERM unsafe permissions or
 * owner, PN_EINVAL bad contents, PN_ENOTFOUND missing, PN_EIO other. */
int pn_keys_load(pn_keypair *kp, const char *path, pn_err *e);

/* Writes kp to path crash-safely with pn_file_write_atomic(). Replaces an
 * existing file: callers that must not lose an identity check first. */
int pn_keys_save(const pn_keypair *kp, const char *path, pn_err *e);

/* Parses a key in any accepted text form (len bytes, no NUL needed) into
 * out. Nothing but the key may be present: no spaces, no trailing bytes. */
int pn_key_parse(uint8_t out[PN_KEY_LEN], const char *text, size_t len, pn_err *e);

/* Text forms, NUL-terminated; out must hold the length + 1. */
void pn_key_hex(char out[PN_KEY_HEX_LEN + 1], const uint8_t key[PN_KEY_LEN]);
void pn_key_base64(char out[PN_KEY_B64_LEN + 1], const uint8_t key[PN_KEY_LEN]);
void pn_key_base64url(char out[PN_KEY_B64URL_LEN + 1], const uint8_t key[PN_KEY_LEN]);

/* First 8 bytes of SHA-256(key) as 16 lowercase hex digits: short enough to
 * read aloud when comparing two devices, not a substitute for the key. */
void pn_key_fingerprint(char out[PN_KEY_FINGERPRINT_LEN + 1], const uint8_t key[PN_KEY_LEN]);

#endif
