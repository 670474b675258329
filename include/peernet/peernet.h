/*
 * peernet.h — the C API of a PeerNet host: one peer on a libuv loop.
 *
 * A host listens (IPv4 and IPv6), dials peers by key and address, runs the
 * Noise XX handshake (PeerNet profile) with a deadline, keeps at most one
 * live connection per peer, and carries the envelopes of PROTOCOL.md:
 * calls, replies, sends, pings. Handlers are C functions registered by
 * name; every value crosses this API as an ETF term WITHOUT the version byte
 * (src/core/etf.h builds and reads them).
 *
 * Threading: everything runs on the loop's thread; no function here may be
 * called from another thread. Callbacks are never invoked from inside the
 * API call that registered them (a call's result always arrives from the
 * loop), so a callback may call back into the host freely.
 *
 * Errors: functions return 0 or a negative PN_E* code and fill a pn_err
 * (peernet/err.h) when one is given.
 *
 * Names: the API is named by its one object, pn_host_* (and pn_peer_* for
 * what the registry reports), though its groups live in several files of
 * src/net; each group's heading below names the file that holds it
 * (scripts/check-names holds the headings to the code). pn_request_* and
 * pn_trustfile_watch are named by objects of their own, a request being
 * served (request.c) and a followed trust file (trustfile.c).
 *
 * Signals: libuv writes with write(2), so a peer that hangs up raises
 * SIGPIPE. A program embedding the host must ignore SIGPIPE (signal(SIGPIPE,
 * SIG_IGN) in main) so that such a write fails with EPIPE instead of killing
 * it; peernet-host does, and the Lua module does when it is loaded and the
 * disposition is still the default.
 */
#ifndef PEERNET_H
#define PEERNET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "peernet/limits.h"
#include "peernet/err.h"
#include "peernet/options.h"

#define PN_NONCE_LEN 16
#define PN_HANDSHAKE_BURST 8 /* responder handshakes served back to back: about 2 ms of X25519 */

typedef struct pn_host pn_host;
typedef struct pn_request pn_request;

enum { PN_LOG_DEBUG, PN_LOG_INFO, PN_LOG_WARN, PN_LOG_ERROR };
typedef void (*pn_log_fn)(void *ud, int level, const char *msg);

/* Every bound on what a stranger controls has a default and a setting:
 * the members between listen and log are made from PN_HOST_OPTIONS
 * (peernet/options.h), where each is described. */
typedef struct pn_host_config {
    const uint8_t *secret; /* 32-byte X25519 private key; copied (and wiped on free) */
    /* "ADDR:PORT" or "[V6ADDR]:PORT"; NULL listens on every interface, IPv4
     * and IPv6, on PN_DEFAULT_PORT; "" does not listen. Port 0 picks a free
     * one: pn_host_port() reports it. */
    const char *listen;
    PN_HOST_OPTION_MEMBERS
    pn_log_fn log; /* NULL: silent */
    void *log_ud;
} pn_host_config;

/* ---- settings (src/net/config.c; the list: peernet/options.h) -------- */

/* Fills c with the defaults above (and no secret: set one). */
void pn_host_config_init(pn_host_config *c);

/* ---- lifecycle (src/net/host.c) -------------------------------------- */

/* Creates the host and starts listening. The host keeps loop running while
 * it listens or has connections. */
pn_host *pn_host_new(uv_loop_t *loop, const pn_host_config *c, pn_err *e);

/* Stops listening, closes every connection (pending calls fail with
 * PN_CALL_CLOSED), releases handlers, and frees the host once libuv has
 * closed its handles; on_closed (may be NULL) is then called. The host must
 * not be used after this call. */
void pn_host_close(pn_host *h, void (*on_closed)(void *ud), void *ud);

/* Closes the listening socket (a graceful stop: connections stay). */
void pn_host_stop_listening(pn_host *h);

/* The TCP port listened on (0 when not listening). */
int pn_host_port(const pn_host *h);
/* The log_window of its configuration (ms): scripts rate-limit their own lines by it. */
uint32_t pn_host_log_window(const pn_host *h);
void pn_host_public_key(const pn_host *h, uint8_t out[PN_KEY_LEN]);

/* ---- trust (src/net/policy.c; the followed file: trustfile.c) -------- */

/* Only trusted keys complete a handshake (either direction). addr (may be
 * NULL) is a "HOST:PORT" to dial and redial. */
int pn_host_trust(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, pn_err *e);
/* Forgets the key and closes its connections at once; stops redialling. */
int pn_host_untrust(pn_host *h, const uint8_t key[PN_KEY_LEN]);
int pn_host_is_trusted(const pn_host *h, const uint8_t key[PN_KEY_LEN]);
/* Takes the trust list from a trust.list file (src/core/trust.h) and keeps
 * following it: the file is re-read when it changes, whoever edits it.
 * Keys it adds are trusted (and dialled when they carry an address); keys
 * removed from it are untrusted, closing their connections at once. A file
 * that no longer parses is logged and the list in force is kept. Keys
 * trusted through pn_host_trust are not touched by the file. */
int pn_trustfile_watch(pn_host *h, const char *path, pn_err *e);

/* ---- handlers, the serving side (src/net/dispatch.c; requests: request.c) */

/* A call or send being served. For a call the handler must answer exactly
 * once, now or later, with pn_request_reply / pn_request_reply_error (which
 * free the request); when the connection is gone by then, the answer is
 * dropped. A send's request is freed when the handler returns, unless the
 * handler keeps it (pn_request_keep). */
typedef void (*pn_handler_fn)(pn_host *h, pn_request *req, void *ud);
/* Returns 1 to let this peer in, 0 for `forbidden`. It runs on the
 * connection's read path, before the handler, for every call and send of
 * the read back to back: it must answer at once. A check that may take
 * long belongs in the handler, scheduled like the rest of its work (the
 * script runtime runs Lua predicates so, as tasks of its run queue). */
typedef int (*pn_authorize_fn)(pn_host *h, const uint8_t from[PN_KEY_LEN], const char *name,
                               void *ud);

typedef struct pn_handler_def {
    pn_handler_fn handler;
    pn_authorize_fn authorize; /* NULL: every trusted peer may call */
    void (*release)(void *ud); /* called once when revoked or the host closes; may be NULL */
    void *ud;
} pn_handler_def;

/* name: an atom name (UTF-8, at most 255 characters). PN_EEXIST when taken. */
int pn_host_expose(pn_host *h, const char *name, const pn_handler_def *def, pn_err *e);
/* PN_ENOTFOUND when nothing is exposed under name. Calls already being
 * served keep their request and may still answer. */
int pn_host_revoke(pn_host *h, const char *name);

int pn_request_is_call(const pn_request *req);
const uint8_t *pn_request_from(const pn_request *req); /* PN_KEY_LEN bytes */
const char *pn_request_name(const pn_request *req);
/* Args, valid until the request is freed. */
const uint8_t *pn_request_args(const pn_request *req, size_t *len);
/* cb(ud) runs once if the call's connection closes while it is being
 * served (its answer would go nowhere): stop the work. cb must not free
 * the request or call into the host; answering it later is allowed (the
 * answer is dropped) and still frees it. */
void pn_request_on_gone(pn_request *req, void (*cb)(void *ud), void *ud);
/* A send whose work goes on after the handler returns (queued, say): the
 * handler keeps the request, which counts against the peer's bound on
 * kept sends until pn_request_done frees it (the connection may close
 * meanwhile; nothing is lost, a send has no answer). PN_ESTATE for a
 * call (answering frees a call's request). */
int pn_request_keep(pn_request *req);
/* Frees a kept send's request; a request not kept is left alone. */
void pn_request_done(pn_request *req);
/* {ok, Value}: value is a term without the version byte. */
int pn_request_reply(pn_request *req, const uint8_t *value, size_t len, pn_err *e);
/* {error, Reason} with Reason the atom named reason. */
int pn_request_reply_error(pn_request *req, const char *reason, pn_err *e);
/* {error, Reason} with Reason any term. */
int pn_request_reply_error_term(pn_request *req, const uint8_t *reason, size_t len, pn_err *e);

/* ---- calling, the client side (src/net/calls.c) ----------------------- */

typedef enum {
    /* term is Value or Reason as received: well-formed ETF, but it may lie
     * outside the subset (a pid, a ref: pn_etf_check_term tells), which
     * fails that one call for the caller; the link stays. */
    PN_CALL_OK = 0,  /* {ok, Value}: term is Value */
    PN_CALL_ERROR,   /* {error, Reason}: term is Reason */
    PN_CALL_TIMEOUT, /* no reply in time; a late reply is dropped */
    PN_CALL_CLOSED,  /* the connection closed before the reply */
} pn_call_status;

typedef void (*pn_call_cb)(pn_host *h, pn_call_status st, const uint8_t *term, size_t len,
                           void *ud);

/* Calls name on a connected peer. timeout_ms 0 = the configured default.
 * Walkie-talkie: PN_ESTATE ("not connected") when there is no live
 * connection; PN_ELIMIT past max_calls_in_flight; PN_EBUSY when the frame
 * would take the link's queue past max_outbuf (nothing is queued, the link
 * stays, PN_EVENT_DRAINED is armed). On 0, cb runs exactly once later. */
int pn_host_call(pn_host *h, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                 size_t args_len, uint32_t timeout_ms, pn_call_cb cb, void *ud, pn_err *e);
/* Fire and forget; PN_ESTATE when not connected, PN_EBUSY as for a call
 * (nothing is queued either way). */
int pn_host_send(pn_host *h, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                 size_t args_len, pn_err *e);

/* Bytes this host holds for peer's live link, not yet taken by the socket
 * (0 when not connected). A sender that keeps it under a mark of its own
 * waits for a slow reader instead of meeting PN_EBUSY at max_outbuf. */
size_t pn_host_queued(pn_host *h, const uint8_t peer[PN_KEY_LEN]);

/* Hands what this loop turn has queued to the sockets now, rather than
 * after the turn's I/O: for code that answers a batch of calls from the
 * loop (an idle or timer callback) and would otherwise wait for one more
 * poll before its replies leave. A write that leaves the queue at the
 * low-water mark emits PN_EVENT_DRAINED from inside it. */
void pn_host_flush(pn_host *h);

/* 1 when pn_host_queued is above the send high-water mark (max_outbuf /
 * PN_SEND_HIGH_WATER_SHARE), and from then on, like after a PN_EBUSY,
 * until PN_EVENT_DRAINED: the Lua fronts' send answers nil, "busy" then.
 * A busy answer arms PN_EVENT_DRAINED: it fires once, when a write leaves
 * at most max_outbuf / PN_SEND_LOW_WATER_SHARE queued (or the peer's new
 * link replaces this one). */
#define PN_SEND_HIGH_WATER_SHARE 2
#define PN_SEND_LOW_WATER_SHARE 4
int pn_host_busy(pn_host *h, const uint8_t peer[PN_KEY_LEN]);

/* ---- delivering without a link (src/net/dispatch.c) ------------------ */

/* Serves a call (cb set: its answer goes to cb, once, now or later) or a
 * send (cb NULL) from `from` to this host's own handler, as if it had come
 * over a live link from a trusted peer: no such handle, the predicate's
 * forbidden and the handler's answer read as they would for that peer.
 * No socket is involved (peernet.testing builds on it). 0, or PN_ESTATE
 * once the host is closing. */
int pn_host_deliver(pn_host *h, const uint8_t from[PN_KEY_LEN], const char *name,
                    const uint8_t *args, size_t len, pn_call_cb cb, void *ud, pn_err *e);

/* ---- dialling (src/net/policy.c) ------------------------------------- */

/* Dials addr ("HOST:PORT") expecting key; cb gets 0 once authenticated (at
 * once, later, when already connected) or an error code and message. The
 * key must be trusted. The address becomes the peer's redial address. */
typedef void (*pn_connect_cb)(pn_host *h, int status, const char *msg, void *ud);
int pn_host_connect(pn_host *h, const uint8_t peer[PN_KEY_LEN], const char *addr, pn_connect_cb cb,
                    void *ud, pn_err *e);

/* ---- pinging (src/net/calls.c) --------------------------------------- */

/* Diagnostics: sends {ping, Nonce} now, with a random nonce; PN_ESTATE when
 * not connected. */
int pn_host_ping(pn_host *h, const uint8_t peer[PN_KEY_LEN], pn_err *e);

/* ---- registry (src/net/registry.c) ----------------------------------- */

/* X(ENUM, name) */
#define PN_PEER_STATUSES(X)                                                                        \
    X(UNKNOWN, "unknown")                                                                          \
    X(DISCOVERED, "discovered")                                                                    \
    X(CONNECTING, "connecting")                                                                    \
    X(CONNECTED, "connected")                                                                      \
    X(DISCONNECTED, "disconnected")
#define PN_PEER_ENUM_(e, name) PN_PEER_##e,
typedef enum { PN_PEER_STATUSES(PN_PEER_ENUM_) } pn_peer_status;
#undef PN_PEER_ENUM_

const char *pn_peer_status_name(pn_peer_status s);

typedef struct pn_peer_info {
    uint8_t key[PN_KEY_LEN];
    pn_peer_status status;
    int trusted;
    char addr[PN_ADDR_MAX + 1]; /* last dialable address, "" when none */
    double last_seen;           /* Unix time (s) of the last frame received, 0 = never */
    uint32_t connections;       /* live + handshaking TCP connections to this peer */
    /* The live link is one this host dialled and the peer has not yet
     * answered its settle ping: what was sent may still sit unread in the
     * peer's buffer (docs/host.md, "First messages on a dialled link"). */
    int settling;
} pn_peer_info;

/* Calls fn for every known peer; stops early when fn returns non-zero. */
void pn_host_peers(const pn_host *h, int (*fn)(const pn_peer_info *p, void *ud), void *ud);
int pn_host_peer(const pn_host *h, const uint8_t key[PN_KEY_LEN], pn_peer_info *out);

/* ---- events (src/net/host.c) ----------------------------------------- */

/* DISCOVERED: a key was first heard announcing itself on the LAN, or
 * announced a new address (pn_host_peer gives it; trusted or not).
 * detail: for DISCONNECTED why the link closed ("peer closed the
 * connection", "frame of 1048625 bytes exceeds the cap", ...), valid during
 * the call; NULL for the other events. */
/* X(ENUM, name): the events, and their names in h:on(name, fn). */
#define PN_EVENTS(X)                                                                               \
    X(CONNECTED, "connected")                                                                      \
    X(DISCONNECTED, "disconnected")                                                                \
    X(DISCOVERED, "discovered")                                                                    \
    X(DRAINED, "drained")
#define PN_EVENT_ENUM_(e, name) PN_EVENT_##e,
typedef enum { PN_EVENTS(PN_EVENT_ENUM_) PN_EVENT_COUNT } pn_event;
#undef PN_EVENT_ENUM_
const char *pn_host_event_name(pn_event ev);
/* Every event's name in pn_event order, then NULL (for luaL_checkoption). */
const char *const *pn_host_event_names(void);
typedef void (*pn_event_fn)(pn_host *h, pn_event ev, const uint8_t key[PN_KEY_LEN],
                            const char *detail, void *ud);
/* Adds a listener (at most PN_EVENT_LISTENERS; PN_ELIMIT past that); the
 * Lua binding and a script runtime each hold one. Listeners run in the
 * order added; one may remove itself or another while running. */
#define PN_EVENT_LISTENERS 8
int pn_host_on_event(pn_host *h, pn_event_fn fn, void *ud);
void pn_host_off_event(pn_host *h, pn_event_fn fn, void *ud);
/* fn runs first thing in pn_host_close, while the host is still whole: a
 * runtime built on the host stops using it there. Same bound as events. */
int pn_host_on_closing(pn_host *h, void (*fn)(void *ud), void *ud);
void pn_host_off_closing(pn_host *h, void (*fn)(void *ud), void *ud);

/* ---- network changes (src/net/policy.c) ------------------------------ */

/* The network changed (netmon calls it; a program that learns it another way
 * may too): announces again, and pings every live link with the probe
 * deadline; links that do not answer in time are closed and redialled,
 * healthy ones are kept. Disconnected peers with an address are redialled
 * at once. */
void pn_host_network_changed(pn_host *h);

/* ---- counters (src/net/host.c) --------------------------------------- */

/* Counters for diagnostics and specs, one list: the struct and the Lua
 * table of h:stats() are made from it. X(type, name, meaning) */
#define PN_HOST_STATS(X)                                                                           \
    X(uint32_t, connections, "open TCP connections")                                               \
    X(uint32_t, handshaking, "of which not yet authenticated")                                     \
    X(uint64_t, accepted, "inbound connections accepted")                                          \
    X(uint64_t, refused, "inbound connections closed at once: max_connections")                    \
    X(uint64_t, handshakes_failed, "handshakes that did not complete")                             \
    X(uint64_t, closed_protocol, "links closed for a protocol violation")                          \
    X(uint64_t, frames_in, "frames received")                                                      \
    X(uint64_t, frames_out, "frames sent")                                                         \
    X(uint64_t, writes, "socket writes (frames of a turn are coalesced)")                          \
    X(uint64_t, announces_sent, "LAN announces sent")                                              \
    X(uint64_t, announces_in, "LAN announces heard")                                               \
    X(uint64_t, announces_ignored, "of which our own or malformed")                                \
    X(uint64_t, network_changes, "network changes handled")                                        \
    X(uint64_t, probes_failed, "links closed because a probe went unanswered")                     \
    X(uint64_t, mdns_in, "mDNS datagrams received")                                                \
    X(uint64_t, mdns_rejected, "of which malformed")                                               \
    X(uint64_t, mdns_out, "mDNS datagrams sent")                                                   \
    X(uint64_t, evicted, "pending handshakes closed to make room for a newcomer")                  \
    X(uint64_t, handshake_waits, "first messages that waited for the handshake budget")            \
    X(uint64_t, log_suppressed, "rate-limited log lines counted instead of written")               \
    X(uint64_t, sends_dropped, "sends past max_calls_in_flight kept by their handlers")            \
    X(uint64_t, stalled, "links closed because the peer read nothing for stall_timeout")           \
    X(uint32_t, unheard, "inbound connections now without a message 1")                            \
    X(uint32_t, waiting, "now with message 1 waiting for the handshake budget")                    \
    X(uint32_t, heard, "now with message 2 sent, message 3 owed")

#define PN_STAT_MEMBER_(type, name, meaning) type name;
typedef struct pn_host_stats {
    PN_HOST_STATS(PN_STAT_MEMBER_)
} pn_host_stats;
#undef PN_STAT_MEMBER_
void pn_host_get_stats(const pn_host *h, pn_host_stats *out);

#endif
