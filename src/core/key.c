/*
 * Public key text forms and fingerprints (forms in key.h).
 */
#include "key.h"

#include <string.h>

#include <sodium.h>

int pn_key_parse(uint8_t out[PN_KEY_LEN], const char *text, size_t len, pn_err *e) {
    size_t bin_len = 0;
    const char *end = NULL;

    if (len == PN_KEY_HEX_LEN) {
        if (sodium_hex2bin(out, PN_KEY_LEN, text, len, NULL, &bin_len, &end) == 0 &&
            bin_len == PN_KEY_LEN && end == text + len)
            return PN_OK;
        return pn_err_set(e, PN_EINVAL, "not a key: 64 characters but not all hex digits");
    }
    if (len == PN_KEY_B64_LEN || len == PN_KEY_B64URL_LEN) {
        /* Padding is told by length; the alphabet by trying both. Both
         * decoders refuse non-zero trailing bits, so each key has one form. */
        static const int padded[] = {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_URLSAFE};
        static const int unpadded[] = {sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING};
        const int *variants = len == PN_KEY_B64_LEN ? padded : unpadded;
        for (int i = 0; i < 2; i++) {
            if (sodium_base642bin(out, PN_KEY_LEN, text, len, NULL, &bin_len, &end, variants[i]) ==
                    0 &&
                bin_len == PN_KEY_LEN && end == text + len)
                return PN_OK;
        }
        sodium_memzero(out, PN_KEY_LEN);
        return pn_err_set(e, PN_EINVAL,
                          "not a key: %zu characters but not valid base64 or base64url", len);
    }
    return pn_err_set(e, PN_EINVAL,
                      "not a key: %zu characters; a key is 64 hex digits or 43-44 "
                      "base64/base64url characters",
                      len);
}

void pn_key_hex(char out[PN_KEY_HEX_LEN + 1], const uint8_t key[PN_KEY_LEN]) {
    sodium_bin2hex(out, PN_KEY_HEX_LEN + 1, key, PN_KEY_LEN);
}

void pn_key_base64(char out[PN_KEY_B64_LEN + 1], const uint8_t key[PN_KEY_LEN]) {
    sodium_bin2base64(out, PN_KEY_B64_LEN + 1, key, PN_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

void pn_key_base64url(char out[PN_KEY_B64URL_LEN + 1], const uint8_t key[PN_KEY_LEN]) {
    sodium_bin2base64(out, PN_KEY_B64URL_LEN + 1, key, PN_KEY_LEN,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void pn_key_fingerprint(char out[PN_KEY_FINGERPRINT_LEN + 1], const uint8_t key[PN_KEY_LEN]) {
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, key, PN_KEY_LEN);
    sodium_bin2hex(out, PN_KEY_FINGERPRINT_LEN + 1, h, PN_KEY_FINGERPRINT_LEN / 2);
}
