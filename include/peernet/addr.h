/*
 * The size of a peer address, "HOST:PORT", the one bound every layer and
 * API user sizes address buffers by (char addr[PN_ADDR_MAX + 1]).
 *
 * The longest form is a 253-byte DNS name, ':' and a 5-digit port: 259
 * bytes. "[IPv6%zone]:PORT" is at most 1 + 45 + 1 + 15 + 1 + 1 + 5 = 69
 * bytes (INET6_ADDRSTRLEN - 1, IFNAMSIZ - 1), well inside it. An address
 * longer than PN_ADDR_MAX is refused, never shortened.
 */
#ifndef PEERNET_ADDR_H
#define PEERNET_ADDR_H

#define PN_ADDR_HOST_MAX 253 /* a DNS name's text form */
#define PN_ADDR_MAX 259      /* PN_ADDR_HOST_MAX ":" 65535 */

#endif
