/*
 * Fuzz target: arbitrary bytes as a HOST:PORT (core/addr.h). Checks more
 * than "no crash": an accepted address is at most PN_ADDR_MAX bytes of
 * printable ASCII without spaces (it goes to logs and getaddrinfo as is),
 * pn_addr_split agrees with pn_addr_check, and the host and port it gives
 * write the very same text back; a longer input is refused for its length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
    if (!ok) abort(); /* a fuzz harness may abort: that is how findings surface */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    pn_err e;
    int rc = pn_addr_check(s, size, &e);
    if (size > PN_ADDR_MAX) check(rc == PN_EINVAL && strstr(e.msg, "longer than") != NULL);
    if (rc != PN_OK) {
        check(rc == PN_EINVAL && e.msg[0] != '\0');
        return 0;
    }
    check(size > 0 && size <= PN_ADDR_MAX);
    for (size_t i = 0; i < size; i++)
        check(data[i] > 0x20 && data[i] < 0x7f);

    char text[PN_ADDR_MAX + 1], host[PN_ADDR_MAX + 1], back[PN_ADDR_MAX + 3];
    uint16_t port = 0;
    memcpy(text, s, size);
    text[size] = '\0';
    check(pn_addr_split(text, host, sizeof host, &port, &e) == PN_OK);
    check(port > 0 && strlen(host) > 0);
    /* Only a bracketed IPv6 host holds a ':'. */
    int n = snprintf(back, sizeof back, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    check(n > 0 && (size_t)n == size && memcmp(back, s, size) == 0);

    /* A buffer one byte short of the host is refused, never overrun. */
    size_t hlen = strlen(host);
    char *tight = malloc(hlen);
    check(tight != NULL);
    check(pn_addr_split(text, tight, hlen, &port, &e) == PN_ETOOBIG);
    free(tight);
    return 0;
}
