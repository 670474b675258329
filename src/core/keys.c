/*
 * Identity keys: generation, the identity.keys file, text forms.
 * See keys.h for the file format and the rules a key file must satisfy.
 */
#include "keys.h"
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

/* ---- keypairs ---------------------------------------------------------- */

pn_keypair *pn_keypair_new(void) {
    pn_keypair *kp = sodium_malloc(sizeof *kp);
    if (kp) sodium_memzero(kp, sizeof *kp);
    return kp;
}

void pn_keypair_free(pn_keypair *kp) {
    if (kp) sodium_free(kp); /* sodium_free wipes before unmapping */
}

void pn_keypair_wipe(pn_keypair *kp) {
    if (kp) sodium_memzero(kp, sizeof *kp);
}

int pn_keys_from_secret(pn_keypair *kp, const uint8_t secret[PN_KEY_LEN], pn_err *e) {
    uint8_t pub[PN_KEY_LEN];
    /* Cannot fail for a clamped scalar times the base point; checked anyway
     * so a broken libsodium never yields an all-zero address. */
    if (crypto_scalarmult_base(pub, secret) != 0) {
        pn_keypair_wipe(kp);
        return pn_err_set(e, PN_EINVAL, "this private key gives an invalid public key");
    }
    if (kp->priv != secret) memmove(kp->priv, secret, PN_KEY_LEN);
    memcpy(kp->pub, pub, PN_KEY_LEN);
    return PN_OK;
}

int pn_keys_generate(pn_keypair *kp, pn_err *e) {
    randombytes_buf(kp->priv, PN_KEY_LEN);
    return pn_keys_from_secret(kp, kp->priv, e);
}

/* ---- the key file image ------------------------------------------------ */

void pn_keys_encode(const pn_keypair *kp, uint8_t out[PN_KEYFILE_LEN]) {
    memcpy(out, PN_KEYFILE_MAGIC, 4);
    out[4] = PN_KEYFILE_VERSION;
    out[5] = PN_KEY_LEN;
    memcpy(out + 6, kp->pub, PN_KEY_LEN);
    out[38] = PN_KEY_LEN;
    memcpy(out + 39, kp->priv, PN_KEY_LEN);
}

int pn_keys_decode(pn_keypair *kp, const uint8_t *buf, size_t len, const char *name, pn_err *e) {
    int rc;
    uint8_t calc[PN_KEY_LEN];
    if (!name) name = PN_KEYFILE_NAME;
    pn_keypair_wipe(kp);
    if (len < PN_KEYFILE_LEN)
        return pn_err_set(e, PN_EINVAL, "%s is truncated: %zu bytes, a key file has exactly %d",
                          name, len, PN_KEYFILE_LEN);
    if (len > PN_KEYFILE_LEN)
        return pn_err_set(e, PN_EINVAL,
                          "%s is too large (%zu bytes, a key file has exactly %d): "
                          "not an identity file",
                          name, len, PN_KEYFILE_LEN);
    if (memcmp(buf, PN_KEYFILE_MAGIC, 4) != 0)
        return pn_err_set(e, PN_EINVAL,
                          "%s is not a PeerNet identity file (it does not start with \"PNID\")",
                          name);
    if (buf[4] != PN_KEYFILE_VERSION)
        return pn_err_set(e, PN_EINVAL,
                          "%s has key file version %u; this build reads version %d only", name,
                          buf[4], PN_KEYFILE_VERSION);
    if (buf[5] != PN_KEY_LEN || buf[38] != PN_KEY_LEN)
        return pn_err_set(e, PN_EINVAL,
                          "%s is a corrupt key file: key length bytes are %u and %u, not %d", name,
                          buf[5], buf[38], PN_KEY_LEN);
    memcpy(kp->priv, buf + 39, PN_KEY_LEN);
    memcpy(kp->pub, buf + 6, PN_KEY_LEN);
    if (crypto_scalarmult_base(calc, kp->priv) != 0 ||
        sodium_memcmp(calc, kp->pub, PN_KEY_LEN) != 0) {
        rc = pn_err_set(e, PN_EINVAL,
                        "%s is a corrupt key file: its public key does not match its "
                        "private key",
                        name);
        pn_keypair_wipe(kp);
        return rc;
    }
    return PN_OK;
}

int pn_keys_load(pn_keypair *kp, const char *path, pn_err *e) {
    uint8_t buf[PN_KEYFILE_LEN + 1]; /* one spare byte shows a file that grew */
    size_t size = 0, got = 0;
    int rc, fd;

    pn_keypair_wipe(kp);
    fd = pn_file_open_private(path, 077, &size, e);
    if (fd < 0) return fd;
    if (size != PN_KEYFILE_LEN) {
        close(fd);
        /* Refused on its size alone, before reading: decode reads no bytes
         * when len is wrong and words the error. */
        return pn_keys_decode(kp, NULL, size, path, e);
    }
    rc = pn_file_read_all(fd, buf, sizeof buf, &got, path, e);
    close(fd);
    if (rc == PN_OK) rc = pn_keys_decode(kp, buf, got, path, e);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int pn_keys_save(const pn_keypair *kp, const char *path, pn_err *e) {
    uint8_t buf[PN_KEYFILE_LEN];
    pn_keys_encode(kp, buf);
    int rc = pn_file_write_atomic(path, buf, sizeof buf, e);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

/* ---- text forms -------------------------------------------------------- */

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
