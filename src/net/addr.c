/*
 * "HOST:PORT" and "[V6ADDR]:PORT", the address text of the API, the trust
 * list and the CLI. HOST may be a name; it is resolved when dialled.
 */
#include <stdlib.h>
#include <string.h>

#include "net.h"

int pn_addr_split(const char *addr, char *host, size_t host_cap, int *port, pn_err *e) {
    size_t n = addr ? strlen(addr) : 0;
    if (n == 0 || n >= PN_ADDR_MAX)
        return pn_err_set(e, PN_EINVAL, "address must be HOST:PORT of 1..%d bytes",
                          PN_ADDR_MAX - 1);
    const char *hs, *colon;
    size_t hl;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return pn_err_set(e, PN_EINVAL, "address '%s': expected [IPV6]:PORT", addr);
        hs = addr + 1;
        hl = (size_t)(close - hs);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
            return pn_err_set(e, PN_EINVAL,
                              "address '%s': expected HOST:PORT (IPv6 as [ADDR]:PORT)", addr);
        hs = addr;
        hl = (size_t)(colon - addr);
    }
    if (hl == 0 || hl >= host_cap) return pn_err_set(e, PN_EINVAL, "address '%s': bad host", addr);
    const char *ps = colon + 1;
    if (*ps == '\0' || strlen(ps) > 5)
        return pn_err_set(e, PN_EINVAL, "address '%s': bad port", addr);
    long v = 0;
    for (const char *q = ps; *q; q++) {
        if (*q < '0' || *q > '9') return pn_err_set(e, PN_EINVAL, "address '%s': bad port", addr);
        v = v * 10 + (*q - '0');
    }
    if (v > 65535) return pn_err_set(e, PN_EINVAL, "address '%s': port over 65535", addr);
    memcpy(host, hs, hl);
    host[hl] = '\0';
    *port = (int)v;
    return 0;
}
