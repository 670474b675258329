/*
 * Address syntax (forms and bounds in addr.h and peernet/limits.h).
 */
#include "addr.h"

#include <arpa/inet.h>
#include <string.h>

#define ZONE_MAX 15      /* IFNAMSIZ - 1 */
#define IPV6_TEXT_MAX 45 /* INET6_ADDRSTRLEN - 1 */
#define LABEL_MAX 63     /* one label of a DNS name */
#define QUOTE_MAX 24     /* bytes of an offending host repeated in a message */

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

static int is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_alnum(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int check_port(const char *s, size_t len, uint16_t *port, pn_err *e) {
    unsigned v = 0;
    if (len == 0 || len > 5 || s[0] == '0')
        return pn_err_set(e, PN_EINVAL, "bad address: the port must be 1..65535");
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return pn_err_set(e, PN_EINVAL, "bad address: the port must be 1..65535");
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) return pn_err_set(e, PN_EINVAL, "bad address: the port must be 1..65535");
    if (port) *port = (uint16_t)v;
    return PN_OK;
}

static int check_hostname(const char *s, size_t len, pn_err *e) {
    size_t start = 0;
    int numeric_last = 1;
    if (len == 0 || len > PN_ADDR_HOST_MAX)
        return pn_err_set(e, PN_EINVAL, "bad address: the host must be 1..%d characters",
                          PN_ADDR_HOST_MAX);
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') continue;
        size_t n = i - start;
        if (n == 0 || n > LABEL_MAX || s[start] == '-' || s[i - 1] == '-')
            return pn_err_set(e, PN_EINVAL, "bad address: '%.*s' is not a valid host name",
                              (int)(len < QUOTE_MAX ? len : QUOTE_MAX), s);
        numeric_last = 1;
        for (size_t j = start; j < i; j++) {
            if (!is_alnum(s[j]) && s[j] != '-')
                return pn_err_set(e, PN_EINVAL,
                                  "bad address: host names use only letters, digits, '-' and "
                                  "'.' (IPv6 goes in brackets: [::1]:4040)");
            if (!is_digit(s[j])) numeric_last = 0;
        }
        start = i + 1;
    }
    /* A name whose last label is all digits can only be an IPv4 address. */
    if (numeric_last) {
        char buf[PN_ADDR_HOST_MAX + 1];
        struct in_addr a4;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (inet_pton(AF_INET, buf, &a4) != 1)
            return pn_err_set(e, PN_EINVAL, "bad address: '%.*s' is not a valid IPv4 address",
                              (int)(len < QUOTE_MAX ? len : QUOTE_MAX), s);
    }
    return PN_OK;
}

/* Parses "[IPv6%zone]" or a host name up to the port: host_off and
 * host_len locate the host without brackets, colon the ':' before the port. */
static int split(const char *s, size_t len, size_t *host_off, size_t *host_len, size_t *colon,
                 pn_err *e) {
    if (len > PN_ADDR_MAX)
        return pn_err_set(e, PN_EINVAL,
                          "address longer than %d bytes (HOST:PORT, a host of at most %d)",
                          PN_ADDR_MAX, PN_ADDR_HOST_MAX);
    if (len == 0) return pn_err_set(e, PN_EINVAL, "bad address: expected HOST:PORT");
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return pn_err_set(e, PN_EINVAL, "bad address: missing ']' after an IPv6 address");
        size_t inner = (size_t)(close - s) - 1, ip_len = inner;
        const char *pct = memchr(s + 1, '%', inner);
        char buf[IPV6_TEXT_MAX + 1];
        struct in6_addr a6;
        if (pct) {
            ip_len = (size_t)(pct - (s + 1));
            size_t zlen = inner - ip_len - 1;
            if (zlen == 0 || zlen > ZONE_MAX)
                return pn_err_set(e, PN_EINVAL, "bad address: bad IPv6 zone");
            for (size_t i = 0; i < zlen; i++) {
                char c = pct[1 + i];
                if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
                    return pn_err_set(e, PN_EINVAL, "bad address: bad IPv6 zone");
            }
        }
        if (ip_len == 0 || ip_len > IPV6_TEXT_MAX)
            return pn_err_set(e, PN_EINVAL, "bad address: not a valid IPv6 address");
        /* inet_pton would stop at a NUL and accept what comes before it. */
        for (size_t i = 0; i < ip_len; i++)
            if (!is_hex(s[1 + i]) && s[1 + i] != ':' && s[1 + i] != '.')
                return pn_err_set(e, PN_EINVAL, "bad address: not a valid IPv6 address");
        memcpy(buf, s + 1, ip_len);
        buf[ip_len] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return pn_err_set(e, PN_EINVAL, "bad address: not a valid IPv6 address");
        *host_off = 1;
        *host_len = inner;
        *colon = (size_t)(close - s) + 1;
        if (*colon >= len || s[*colon] != ':')
            return pn_err_set(e, PN_EINVAL, "bad address: expected :PORT after ']'");
        return PN_OK;
    }
    const char *c = memchr(s, ':', len);
    if (!c) return pn_err_set(e, PN_EINVAL, "bad address: expected HOST:PORT (missing ':PORT')");
    if (memchr(c + 1, ':', len - (size_t)(c - s) - 1))
        return pn_err_set(e, PN_EINVAL, "bad address: IPv6 addresses go in brackets: [::1]:4040");
    *host_off = 0;
    *host_len = (size_t)(c - s);
    *colon = (size_t)(c - s);
    return check_hostname(s, *host_len, e);
}

int pn_addr_check(const char *s, size_t len, pn_err *e) {
    size_t off, hlen, colon;
    int rc = split(s, len, &off, &hlen, &colon, e);
    if (rc != PN_OK) return rc;
    return check_port(s + colon + 1, len - colon - 1, NULL, e);
}

int pn_addr_split(const char *addr, char *host, size_t cap, uint16_t *port, pn_err *e) {
    size_t len = strlen(addr), off, hlen, colon;
    int rc = split(addr, len, &off, &hlen, &colon, e);
    if (rc == PN_OK) rc = check_port(addr + colon + 1, len - colon - 1, port, e);
    if (rc != PN_OK) return rc;
    if (hlen >= cap) return pn_err_set(e, PN_ETOOBIG, "host name does not fit the buffer");
    memcpy(host, addr + off, hlen);
    host[hlen] = '\0';
    return PN_OK;
}
