/*
 * Netlink scan fuzz target: whatever the bytes, the scan stays inside them
 * and reports only the kinds it knows.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/netlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned ev = 0;
    pn_netlink_scan(data, size, &ev, NULL);
    if (ev & ~(unsigned)(PN_NL_ADDR | PN_NL_LINK | PN_NL_OVERRUN)) abort();
    return 0;
}
