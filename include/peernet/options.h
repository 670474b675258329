/*
 * The host's settings, one list. PN_HOST_OPTIONS makes the members of
 * pn_host_config, their defaults (pn_host_config_init), the checks of
 * pn_host_new (one message per setting), the Lua option reader of
 * peernet.host.new and peernet.host.options(), which a spec compares
 * with the table in docs/host.md.
 *
 * X(field, kind, name, default, lua_default, min, max, meaning)
 *   kind: the C type and unit (PN_OPT_KINDS); name: the Lua and docs name;
 *   lua_default: where peernet.host.new differs from C (discovery and the
 *   network monitor are off there: a Lua program, every spec, runs many
 *   hosts in one process that must not find each other); min and max: the
 *   range pn_host_new accepts, for text its length in bytes.
 */
#ifndef PEERNET_OPTIONS_H
#define PEERNET_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"
#include "peernet/limits.h"

/* X(KIND, unit); the C type of each kind is PN_OPT_CTYPE_<KIND> below. */
#define PN_OPT_KINDS(X)                                                                            \
    X(MS, "ms")                                                                                    \
    X(U32, "")                                                                                     \
    X(SIZE, "bytes")                                                                               \
    X(PORT, "")                                                                                    \
    X(FLAG, "")                                                                                    \
    X(NETMON, "") /* Lua: true, false or "poll" (2) */                                             \
    X(TEXT, "bytes")

#define PN_OPT_KIND_ENUM_(k, unit) PN_OPT_##k,
enum pn_opt_kind { PN_OPT_KINDS(PN_OPT_KIND_ENUM_) PN_OPT_KIND_COUNT };
#undef PN_OPT_KIND_ENUM_

#define PN_BROADCAST_MAX 63              /* bytes of the broadcast address text */
#define PN_MDNS_INSTANCE_MAX 63          /* bytes of an mDNS instance name: one DNS label */
#define PN_ANNOUNCE_INTERVAL_MIN_MS 1000 /* what every host of a LAN hearing them can bear */

#define PN_OPT_CTYPE_MS uint32_t
#define PN_OPT_CTYPE_U32 uint32_t
#define PN_OPT_CTYPE_SIZE size_t
#define PN_OPT_CTYPE_PORT uint16_t
#define PN_OPT_CTYPE_FLAG int
#define PN_OPT_CTYPE_NETMON int
#define PN_OPT_CTYPE_TEXT const char *

#define PN_HOST_OPTIONS(X)                                                                         \
    X(frame_cap, U32, "frame_cap", PN_FRAME_CAP_MAX, PN_FRAME_CAP_MAX, PN_FRAME_CAP_MIN,           \
      PN_FRAME_CAP_MAX, "largest frame body accepted (bytes)")                                     \
    X(handshake_timeout_ms, MS, "handshake_timeout", 10000, 10000, 1, PN_MS_MAX,                   \
      "TCP accept or connect to handshake done")                                                   \
    X(call_timeout_ms, MS, "call_timeout", 5000, 5000, 1, PN_MS_MAX,                               \
      "a call's timeout when it names none")                                                       \
    X(ping_interval_ms, MS, "ping_interval", 30000, 30000, 0, PN_MS_MAX,                           \
      "liveness ping on every link this often; 0 = never")                                         \
    X(ping_timeout_ms, MS, "ping_timeout", 60000, 60000, 1, PN_MS_MAX,                             \
      "the peer is dead when a pong is this late")                                                 \
    X(backoff_min_ms, MS, "backoff_min", 500, 500, 1, PN_MS_MAX,                                   \
      "first redial delay, doubling with jitter ...")                                              \
    X(backoff_max_ms, MS, "backoff_max", 30000, 30000, 1, PN_MS_MAX,                               \
      "... up to this (at least backoff_min)")                                                     \
    /* Inbound connections not yet authenticated, in three pools of this                           \
     * size each: "unheard" (no complete first message yet), "waiting"                             \
     * (message 1 waiting for the handshake budget) and "heard" (message 2                         \
     * sent, message 3 owed). A newcomer never finds the door shut: one of                         \
     * its pool is closed to make room (docs/host.md, "Strangers"). */                             \
    X(max_pending_handshakes, U32, "max_pending_handshakes", 64, 64, 1, UINT32_MAX,                \
      "size of each pool of inbound connections not yet authenticated")                            \
    X(max_pending_per_source, U32, "max_pending_per_source", 16, 16, 1, UINT32_MAX,                \
      "unheard, and waiting, connections from one IPv4 address or IPv6 /64")                       \
    X(first_message_timeout_ms, MS, "first_message_timeout", 2000, 2000, 0, PN_MS_MAX,             \
      "accept to a whole message 1; 0 = handshake_timeout")                                        \
    /* Message 2 costs three X25519 operations: a first message over the                           \
     * budget waits its turn (oldest first) instead of costing CPU now, in                         \
     * bursts of up to PN_HANDSHAKE_BURST. Our own dials are never held. */                        \
    X(handshake_rate, U32, "handshake_rate", 1000, 1000, 0, UINT32_MAX,                            \
      "responder handshakes per second; 0 = no budget")                                            \
    /* Log lines a stranger can cause (refused and evicted connections,                            \
     * refused calls): the first of each kind and source in a window is                            \
     * logged, the rest counted and summed up in one line at its end. */                           \
    X(log_window_ms, MS, "log_window", 10000, 10000, 1, PN_MS_MAX,                                 \
      "window of the rate-limited log lines")                                                      \
    X(max_connections, U32, "max_connections", 1024, 1024, 1, UINT32_MAX, "all TCP connections")   \
    /* Incoming: across the peer's connections, closed ones included until                         \
     * answered. Sends kept by their handler (pn_request_keep) have a bound                        \
     * of this size of their own: past it a send is dropped, counted                               \
     * (sends_dropped) and logged. */                                                              \
    X(max_calls_in_flight, U32, "max_calls_in_flight", PN_CALLS_IN_FLIGHT_DEFAULT,                 \
      PN_CALLS_IN_FLIGHT_DEFAULT, 1, UINT32_MAX, "calls in flight per peer, each direction")       \
    /* Past max_outbuf a call or send of our own is refused (busy); the                            \
     * host's answers to the peer may queue twice as much before the link                          \
     * closes. A peer is dropped for not reading only when a write waits                           \
     * stall_timeout with not one byte taken (docs/host.md, "Backpressure"). */                    \
    X(max_outbuf, SIZE, "max_outbuf", 8388608, 8388608, PN_FRAME_CAP_MIN + 4, UINT32_MAX / 2,      \
      "bytes of our own calls and sends queued to one peer (at least frame_cap + 4)")              \
    X(stall_timeout_ms, MS, "stall_timeout", 30000, 30000, 1, PN_MS_MAX,                           \
      "a link whose write waits this long with not a byte read is closed")                         \
    /* LAN discovery (PROTOCOL.md "LAN discovery announce"): a listening                           \
     * host broadcasts its key and TCP port every announce_interval, at                            \
     * start and on every network change, and hears the announces of                               \
     * others (the port is shared by the hosts of one machine). A trusted                          \
     * peer's announce gives it an address and a dial; an untrusted one is                         \
     * recorded as discovered and reported (PN_EVENT_DISCOVERED). Every                            \
     * host of a LAN hears every announce, so announce_interval is at least                        \
     * PN_ANNOUNCE_INTERVAL_MIN_MS: a broadcast a second per host. */                              \
    X(discovery, FLAG, "discovery", 1, 0, 0, 1, "UDP announces sent and heard")                    \
    X(announce_port, PORT, "announce_port", PN_DEFAULT_PORT, PN_DEFAULT_PORT, 1, 65535,            \
      "UDP port announces go to and are heard on")                                                 \
    X(announce_interval_ms, MS, "announce_interval", 5000, 5000, PN_ANNOUNCE_INTERVAL_MIN_MS,      \
      PN_MS_MAX, "time between announces")                                                         \
    X(broadcast, TEXT, "broadcast", "255.255.255.255", "255.255.255.255", 1, PN_BROADCAST_MAX,     \
      "IPv4 destination of announces (copied)")                                                    \
    /* So that hosts on a link without any IPv4 address still find each                            \
     * other (an extension). */                                                                    \
    X(announce_v6, FLAG, "announce_v6", 1, 1, 0, 1,                                                \
      "announces also go to ff02::1 on every link-local interface")                                \
    /* Address and link changes (netlink, or polling the interface list                            \
     * where netlink cannot be opened) re-announce and probe every link. */                        \
    X(netmon, NETMON, "netmon", 1, 0, 0, 2, "network monitor: 0 off, 1 on, 2 polling only")        \
    X(probe_timeout_ms, MS, "probe_timeout", 2000, 2000, 1, PN_MS_MAX,                             \
      "after a network change, a link whose pong is later is closed and redialled")                \
    /* peernet-host run uses it: a program whose own work is done lets                             \
     * uv_run return while the host still listens. */                                              \
    X(weak, FLAG, "weak", 0, 0, 0, 1, "the host does not keep the loop alive")                     \
    /* mDNS / DNS-SD (docs/host.md): advertises <instance>._peernet._tcp.local                     \
     * with the key in TXT and browses for peers on every interface. */                            \
    X(mdns, FLAG, "mdns", 0, 0, 0, 1, "mDNS advertising and browsing")                             \
    X(mdns_port, PORT, "mdns_port", 0, 0, 0, 65535,                                                \
      "mDNS port; 0 = 5353 (another only keeps specs apart from a system responder)")              \
    X(mdns_instance, TEXT, "mdns_instance", NULL, NULL, 1, PN_MDNS_INSTANCE_MAX,                   \
      "instance name without control characters; NULL = peernet- and 8 key bytes in hex")

/* The members of pn_host_config the list makes. */
#define PN_OPT_MEMBER_(field, kind, name, dflt, ldflt, min, max, meaning) PN_OPT_CTYPE_##kind field;
#define PN_HOST_OPTION_MEMBERS PN_HOST_OPTIONS(PN_OPT_MEMBER_)

typedef struct pn_host_option {
    const char *name; /* as in Lua and docs/host.md */
    enum pn_opt_kind kind;
    size_t offset; /* of its member in pn_host_config */
    long long dflt, lua_dflt;
    const char *text_dflt, *lua_text_dflt; /* PN_OPT_TEXT */
    long long min, max;
    const char *meaning;
} pn_host_option;

struct pn_host_config;

/* ---- the list's functions (src/net/config.c) ------------------------- */

/* The list, n entries. */
const pn_host_option *pn_host_options(size_t *n);
const char *pn_host_option_kind_name(enum pn_opt_kind k); /* "ms", "u32", ... */
const char *pn_host_option_unit(enum pn_opt_kind k);      /* "ms", "bytes" or "" */
/* The largest value the member's C type holds (for text: its length bound). */
long long pn_host_option_type_max(enum pn_opt_kind k);
/* Stores v (a number kind) or text (PN_OPT_TEXT) in o's member of c; v must
 * fit the member's type (pn_host_option_type_max). */
void pn_host_option_set(struct pn_host_config *c, const pn_host_option *o, long long v,
                        const char *text);
/* Each setting against its range and the ranges that depend on another
 * (max_outbuf on frame_cap, backoff_max on backoff_min): PN_EINVAL with a
 * message naming the setting, e.g. "ping_timeout: must be 1..86400000 ms,
 * got 0". */
int pn_host_config_check(const struct pn_host_config *c, pn_err *e);

#endif
