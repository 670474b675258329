/*
 * Numbers every layer shares, the core included (CMakeLists.txt puts this
 * header in the core's view beside peernet/err.h): each has this one home.
 */
#ifndef PEERNET_LIMITS_H
#define PEERNET_LIMITS_H

#define PN_KEY_LEN 32 /* an X25519 key, public or private */
#define PN_DEFAULT_PORT 4040
#define PN_MS_MAX 86400000u /* longest timeout, interval or sleep any setting takes: one day */
#define PN_FRAME_CAP_MIN 64
#define PN_FRAME_CAP_MAX 1048576 /* a transport message's body, tag included (PROTOCOL.md) */

#endif
