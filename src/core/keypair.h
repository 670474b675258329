/*
 * Identity keys: a static X25519 keypair whose 32-byte public key (key.h)
 * is the peer's address. Generation and the `identity.keys` file of
 * PROTOCOL.md.
 *
 * Key file (71 bytes, PROTOCOL.md "Identity keyfile"):
 *     "PNID" | 0x02 | u8 32 | public key | u8 32 | private key
 * Loading verifies every byte of that layout, the exact size, and that the
 * public key is X25519(private key). The file must be a regular file (not a
 * symlink) owned by the caller, with no group/other permission bits, in a
 * directory no one else can write to; each refusal says how to fix it.
 *
 * Secrets: pn_keypair holds the private key. Wipe one on the stack with
 * pn_keypair_wipe(); long-lived ones come from pn_keypair_new(), which uses
 * sodium_malloc (guard pages, mlock where allowed, wiped by pn_keypair_free).
 */
#ifndef PN_KEYPAIR_H
#define PN_KEYPAIR_H

#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "peernet/err.h"
#include "peernet/limits.h" /* PN_KEY_LEN */

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
int pn_keypair_generate(pn_keypair *kp, pn_err *e);

/* kp = (X25519(secret), secret). The secret is used as given: X25519 clamps
 * it during every multiplication, as the Elixir side does. */
int pn_keypair_from_secret(pn_keypair *kp, const uint8_t secret[PN_KEY_LEN], pn_err *e);

/* The 71-byte key file image of kp. out holds a secret: wipe it after use. */
void pn_keypair_encode(const pn_keypair *kp, uint8_t out[PN_KEYFILE_LEN]);

/* Parses a key file image of len bytes (exactly PN_KEYFILE_LEN, else an
 * error saying truncated / too large). name is used in messages (a path, or
 * NULL for "identity.keys"). On failure kp is wiped. */
int pn_keypair_decode(pn_keypair *kp, const uint8_t *buf, size_t len, const char *name, pn_err *e);

/* Reads path (see the checks above). Errors: PN_EPERM unsafe permissions or
 * owner, PN_EINVAL bad contents, PN_ENOTFOUND missing, PN_EIO other. */
int pn_keypair_load(pn_keypair *kp, const char *path, pn_err *e);

/* Writes kp to path crash-safely with pn_file_write_atomic(). Replaces an
 * existing file: callers that must not lose an identity check first. */
int pn_keypair_save(const pn_keypair *kp, const char *path, pn_err *e);

#endif
