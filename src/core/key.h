/*
 * A peer's public key (32 bytes of X25519) and the text forms users type.
 *
 * Text forms: output is lowercase hex (64 chars) unless asked otherwise.
 * Input accepts hex in either case (64 chars) and standard or URL-safe
 * base64, padded (44 chars) or not (43 chars). The three are told apart by
 * length, so parsing is never ambiguous.
 */
#ifndef PN_KEY_H
#define PN_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"
#include "peernet/limits.h" /* PN_KEY_LEN */

#define PN_KEY_HEX_LEN 64         /* text length, without the NUL */
#define PN_KEY_B64_LEN 44         /* standard base64, padded */
#define PN_KEY_B64URL_LEN 43      /* base64url, unpadded */
#define PN_KEY_TEXT_MAX 64        /* longest accepted text form */
#define PN_KEY_FINGERPRINT_LEN 16 /* hex digits of the first 8 bytes of SHA-256(pub) */

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
