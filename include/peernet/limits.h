/*
 * Numbers every layer shares, the core included (CMakeLists.txt puts this
 * header in the core's view beside peernet/err.h): each has this one home.
 */
#ifndef PEERNET_LIMITS_H
#define PEERNET_LIMITS_H

#define PN_KEY_LEN 32 /* an X25519 key, public or private */
#define PN_DEFAULT_PORT 4040
#define PN_CALLS_IN_FLIGHT_DEFAULT 4096 /* max_calls_in_flight's default (options.h) */
#define PN_MS_MAX 86400000u /* longest timeout, interval or sleep any setting takes: one day */
/* A peer address, "HOST:PORT": buffers are char addr[PN_ADDR_MAX + 1]. The
 * longest form is a 253-byte DNS name, ':' and a 5-digit port: 259 bytes.
 * "[IPv6%zone]:PORT" is at most 1 + 45 + 1 + 15 + 1 + 1 + 5 = 69 bytes
 * (INET6_ADDRSTRLEN - 1, IFNAMSIZ - 1), well inside it. A longer address is
 * refused, never shortened. */
#define PN_ADDR_HOST_MAX 253 /* a DNS name's text form */
#define PN_ADDR_MAX 259      /* PN_ADDR_HOST_MAX ":" 65535 */
#define PN_FRAME_CAP_MIN 64
/* The largest frame body, the one 1 MiB bound: a transport message's body,
 * tag included (PROTOCOL.md). The frame reader's default cap, the
 * transport's plaintext (a tag less, core/handshake.h) and the default
 * bound of an encoding (lua/value.h) are made from it. */
#define PN_FRAME_CAP_MAX 1048576

#endif
