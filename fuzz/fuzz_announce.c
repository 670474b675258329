/*
 * Announce decoder fuzz target: never crashes, and whatever decodes
 * re-encodes to the same 39 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/announce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint16_t port;
    uint8_t key[32], again[PN_ANNOUNCE_LEN];
    if (pn_announce_decode(data, size, &port, key, NULL) == 0) {
        pn_announce_encode(again, port, key);
        if (size != PN_ANNOUNCE_LEN || memcmp(again, data, size) != 0) abort();
    }
    return 0;
}
