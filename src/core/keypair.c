/*
 * Identity keypairs: generation and the identity.keys file.
 * See keypair.h for the file format and the rules a key file must satisfy.
 */
#include "keypair.h"
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

int pn_keypair_from_secret(pn_keypair *kp, const uint8_t secret[PN_KEY_LEN], pn_err *e) {
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

int pn_keypair_generate(pn_keypair *kp, pn_err *e) {
    randombytes_buf(kp->priv, PN_KEY_LEN);
    return pn_keypair_from_secret(kp, kp->priv, e);
}

/* ---- the key file image ------------------------------------------------ */

void pn_keypair_encode(const pn_keypair *kp, uint8_t out[PN_KEYFILE_LEN]) {
    memcpy(out, PN_KEYFILE_MAGIC, 4);
    out[4] = PN_KEYFILE_VERSION;
    out[5] = PN_KEY_LEN;
    memcpy(out + 6, kp->pub, PN_KEY_LEN);
    out[38] = PN_KEY_LEN;
    memcpy(out + 39, kp->priv, PN_KEY_LEN);
}

int pn_keypair_decode(pn_keypair *kp, const uint8_t *buf, size_t len, const char *name, pn_err *e) {
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

int pn_keypair_load(pn_keypair *kp, const char *path, pn_err *e) {
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
        return pn_keypair_decode(kp, NULL, size, path, e);
    }
    rc = pn_file_read_all(fd, buf, sizeof buf, &got, path, e);
    close(fd);
    if (rc == PN_OK) rc = pn_keypair_decode(kp, buf, got, path, e);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int pn_keypair_save(const pn_keypair *kp, const char *path, pn_err *e) {
    uint8_t buf[PN_KEYFILE_LEN];
    pn_keypair_encode(kp, buf);
    int rc = pn_file_write_atomic(path, buf, sizeof buf, e);
    sodium_memzero(buf, sizeof buf);
    return rc;
}
