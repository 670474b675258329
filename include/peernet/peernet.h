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
 * (src/core/err.h) when one is given.
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

#include "peernet/addr.h"
#include "peernet/err.h"

#ifndef PN_KEY_LEN
#define PN_KEY_LEN 32 /* as in core/key.h */
#endif
#define PN_NONCE_LEN 16
#define PN_DEFAULT_PORT 4040
#define PN_MS_MAX 86400000u  /* longest timeout, interval or sleep any setting takes: one day */
#define PN_HANDSHAKE_BURST 8 /* responder handshakes served back to back: about 2 ms of X25519 */

typedef struct pn_host pn_host;
typedef struct pn_request pn_request;

enum { PN_LOG_DEBUG, PN_LOG_INFO, PN_LOG_WARN, PN_LOG_ERROR };
typedef void (*pn_log_fn)(void *ud, int level, const char *msg);

/* Every bound on what a stranger controls has a default and a setting. */
typedef struct pn_host_config {
    const uint8_t *secret; /* 32-byte X25519 private key; copied (and wiped on free) */
    /* "ADDR:PORT" or "[V6ADDR]:PORT"; NULL listens on every interface, IPv4
     * and IPv6, on PN_DEFAULT_PORT; "" does not listen. Port 0 picks a free
     * one: pn_host_port() reports it. */
    const char *listen;

    uint32_t frame_cap;            /* largest frame body accepted: 1 MiB */
    uint32_t handshake_timeout_ms; /* TCP accept/connect to handshake done: 10 s */
    uint32_t call_timeout_ms;      /* default per call: 5 s */
    uint32_t ping_interval_ms;     /* liveness ping every 30 s ... */
    uint32_t ping_timeout_ms;      /* ... peer dead when a pong is 60 s late */
    uint32_t backoff_min_ms;       /* reconnect backoff: 0.5 s ... */
    uint32_t backoff_max_ms;       /* ... doubling to 30 s, with jitter */
    /* Inbound connections not yet authenticated, in three pools of this
     * size each: "unheard" (no complete first message yet), "waiting"
     * (message 1 waiting for the handshake budget) and "heard" (message 2
     * sent, message 3 owed): 64. A newcomer never finds the door shut: one
     * of its pool is closed to make room (docs/host.md, "Strangers"). */
    uint32_t max_pending_handshakes;
    /* unheard, and waiting, connections from one IPv4 address or IPv6 /64: 16 */
    uint32_t max_pending_per_source;
    uint32_t first_message_timeout_ms; /* accept to a whole message 1: 2 s (0: handshake_timeout) */
    /* Responder handshakes (message 2 costs three X25519 operations) per
     * second, in bursts of up to PN_HANDSHAKE_BURST; a first message over
     * the budget waits its turn (oldest first) instead of costing CPU now.
     * 0 = no budget. Our own dials are never held back: 1000. */
    uint32_t handshake_rate;
    /* Log lines a stranger can cause (refused and evicted connections,
     * refused calls) are rate-limited per kind and source: the first of
     * each in this window is logged, the rest are counted and summed up in
     * one line at its end: 10 s. */
    uint32_t log_window_ms;
    uint32_t max_connections; /* all TCP connections: 1024 */
    /* Per peer, each direction: 4096 (incoming: across its connections,
     * closed ones included until answered). Incoming sends kept by their
     * handler (pn_request_keep) have a bound of this size of their own:
     * past it a send is dropped, counted (sends_dropped) and logged. */
    uint32_t max_calls_in_flight;
    size_t max_outbuf; /* bytes queued to one peer not yet written: 8 MiB */

    /* LAN discovery (PROTOCOL.md "LAN discovery announce"): a listening host
     * broadcasts its key and TCP port every announce_interval_ms, at start and
     * on every network change, and listens for the announces of others (the
     * port is shared: several hosts on one machine all hear them). A trusted
     * peer's announce gives it an address and a dial; an untrusted one is
     * recorded as discovered and reported (PN_EVENT_DISCOVERED). */
    int discovery;                 /* on: 1 */
    uint16_t announce_port;        /* UDP port announces go to and come from: 4040 */
    uint32_t announce_interval_ms; /* 5 s */
    const char *broadcast;         /* IPv4 destination: "255.255.255.255" (copied) */
    /* 1: announces also go to the IPv6 all-nodes group ff02::1 on every
     * interface with a link-local address, so hosts on a link without any
     * configured IPv4 address still find each other (an extension). */
    int announce_v6;
    /* Network monitor: address and link changes (netlink, or polling the
     * interface list where netlink cannot be opened) re-announce and probe
     * every live link. 0 off, 1 on, 2 polling only (for tests). */
    int netmon;
    /* After a network change every live link is pinged; one whose pong is
     * later than this is closed and redialled: 2 s. */
    uint32_t probe_timeout_ms;

    /* 1: the host does not keep the loop alive (every handle it opens is
     * unref'd), so a program whose own work is done can let uv_run return
     * while the host still listens. peernet-host run uses it. */
    int weak;

    /* mDNS / DNS-SD (docs/host.md): 1 advertises <instance>._peernet._tcp.local
     * with the key in TXT and browses for peers on every interface. Off by
     * default. mdns_port 0 = 5353 (another port only keeps specs apart from
     * a system responder); mdns_instance NULL = "peernet-" and the first 8
     * bytes of the key in hex, else 1..63 bytes without control characters. */
    int mdns;
    uint16_t mdns_port;
    const char *mdns_instance;

    pn_log_fn log; /* NULL: silent */
    void *log_ud;

    /* TEST ONLY: a fixed ephemeral private key for every handshake, and the
     * OTP 25 atom encoding (ATOM_EXT) in envelopes; both reproduce the
     * recorded wire transcript. Never set in production. */
    const uint8_t *test_ephemeral;
    int test_legacy_atoms;
} pn_host_config;

/* Fills c with the defaults above (and no secret: set one). */
void pn_host_config_init(pn_host_config *c);

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

/* ---- trust ------------------------------------------------------------ */

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
int pn_host_trust_file(pn_host *h, const char *path, pn_err *e);

/* ---- handlers (the serving side) -------------------------------------- */

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

/* ---- calling (the client side) ---------------------------------------- */

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
 * connection; PN_ELIMIT past max_calls_in_flight. On 0, cb runs exactly once
 * later. */
int pn_host_call(pn_host *h, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                 size_t args_len, uint32_t timeout_ms, pn_call_cb cb, void *ud, pn_err *e);
/* Fire and forget; PN_ESTATE when not connected (nothing is queued). */
int pn_host_send(pn_host *h, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                 size_t args_len, pn_err *e);

/* Dials addr ("HOST:PORT") expecting key; cb gets 0 once authenticated (at
 * once, later, when already connected) or an error code and message. The
 * key must be trusted. The address becomes the peer's redial address. */
typedef void (*pn_connect_cb)(pn_host *h, int status, const char *msg, void *ud);
int pn_host_connect(pn_host *h, const uint8_t peer[PN_KEY_LEN], const char *addr, pn_connect_cb cb,
                    void *ud, pn_err *e);

/* TEST ONLY (and diagnostics): sends {ping, Nonce} now; nonce NULL = random. */
int pn_host_ping(pn_host *h, const uint8_t peer[PN_KEY_LEN], const uint8_t *nonce, pn_err *e);

/* ---- registry and events ---------------------------------------------- */

typedef enum {
    PN_PEER_UNKNOWN,
    PN_PEER_DISCOVERED,
    PN_PEER_CONNECTING,
    PN_PEER_CONNECTED,
    PN_PEER_DISCONNECTED,
} pn_peer_status;

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

/* DISCOVERED: a key was first heard announcing itself on the LAN, or
 * announced a new address (pn_host_peer gives it; trusted or not).
 * detail: for DISCONNECTED why the link closed ("peer closed the
 * connection", "frame of 1048625 bytes exceeds the cap", ...), valid during
 * the call; NULL for the other events. */
typedef enum { PN_EVENT_CONNECTED, PN_EVENT_DISCONNECTED, PN_EVENT_DISCOVERED } pn_event;
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

/* The network changed (netmon calls it; a program that learns it another way
 * may too): announces again, and pings every live link with the probe
 * deadline; links that do not answer in time are closed and redialled,
 * healthy ones are kept. Disconnected peers with an address are redialled
 * at once. */
void pn_host_network_changed(pn_host *h);

/* Counters for diagnostics and specs. */
typedef struct pn_host_stats {
    uint32_t connections; /* open TCP connections */
    uint32_t handshaking; /* of which not yet authenticated */
    uint64_t accepted, refused, handshakes_failed, closed_protocol;
    uint64_t frames_in, frames_out, writes; /* writes: socket writes (coalescing) */
    uint64_t announces_sent, announces_in, announces_ignored; /* ignored: own or malformed */
    uint64_t network_changes, probes_failed;
    uint64_t mdns_in, mdns_rejected, mdns_out; /* mDNS datagrams; rejected: malformed */
    /* evicted: pending handshakes closed to make room for a newcomer;
     * handshake_waits: first messages that waited for the handshake budget;
     * log_suppressed: rate-limited log lines counted instead of written;
     * sends_dropped: sends past max_calls_in_flight kept by their handlers. */
    uint64_t evicted, handshake_waits, log_suppressed, sends_dropped;
    /* the inbound pending pools, now: no message 1 yet, message 1 waiting
     * for the handshake budget, message 2 sent */
    uint32_t unheard, waiting, heard;
} pn_host_stats;
void pn_host_get_stats(const pn_host *h, pn_host_stats *out);

#endif
