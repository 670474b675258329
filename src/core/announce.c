#include "announce.h"

#include <string.h>

static const uint8_t announce_magic[4] = {'P', 'N', 'E', 'T'};

void pn_announce_encode(uint8_t out[PN_ANNOUNCE_LEN], uint16_t port, const uint8_t key[32]) {
    memcpy(out, announce_magic, 4);
    out[4] = PN_ANNOUNCE_VERSION;
    out[5] = (uint8_t)(port >> 8);
    out[6] = (uint8_t)port;
    memcpy(out + 7, key, 32);
}

int pn_announce_decode(const uint8_t *buf, size_t len, uint16_t *port, uint8_t key[32], pn_err *e) {
    if (len != PN_ANNOUNCE_LEN)
        return pn_err_set(e, PN_EINVAL, "announce is %zu bytes, expected %d", len, PN_ANNOUNCE_LEN);
    if (memcmp(buf, announce_magic, 4) != 0)
        return pn_err_set(e, PN_EINVAL, "announce has a bad magic");
    if (buf[4] != PN_ANNOUNCE_VERSION)
        return pn_err_set(e, PN_EINVAL, "announce version %u is not supported", buf[4]);
    *port = (uint16_t)(buf[5] << 8 | buf[6]);
    memcpy(key, buf + 7, 32);
    return 0;
}
