/*
 * Internals shared by the files of src/net, each with one job: the host's
 * lifecycle and listening socket (host.c), its settings (config.c), log
 * lines (log.c), the peer policy (policy.c), where peers are dialled and
 * the strangers (found.c), the peer registry (registry.c), connections
 * (conn.c), whether a link still works (ping.c), the admission of inbound
 * handshakes (admit.c), the serving side (dispatch.c: handlers; request.c:
 * requests), the calling side (calls.c), the watched trust file
 * (trustfile.c), LAN discovery (discovery.c), mDNS (mdnsd.c; browsing:
 * mdnsd_browse.c) and the network monitor (netmon.c).
 * Addresses are parsed by pn_addr_split (core/addr.h). The public
 * face is include/peernet/peernet.h.
 *
 * Lifetime: every libuv handle below is owned by an object that is freed
 * only from the handle's close callback; an object's handles close as one
 * group (handles.h: the object is freed after the last) that holds one
 * reference on the host (pn_host.refs), so a closing host is freed after
 * the last group.
 */
#ifndef PN_NET_H
#define PN_NET_H

#include <stdint.h>
#include <uv.h>

#include "core/envelope.h"
#include "core/etf.h"
#include "core/frame.h"
#include "core/handshake.h"
#include "core/logline.h"
#include "core/trust.h"
#include "core/list.h"
#include "handles.h"
#include "peernet/peernet.h"
#include "test_hooks.h"

#define PN_READ_CHUNK 65536      /* one host-wide read buffer: libuv reads one socket at a time */
#define PN_REGISTRY_MAX 16384    /* peers the host remembers: 10,000 held links fit */
#define PN_REGISTRY_BUCKETS 1024 /* hash chains of the registry */
#define PN_HANDLER_BUCKETS 64
#define PN_CALL_BUCKETS 256   /* per connection: outgoing calls by id */
#define PN_PINGS_MAX 4        /* pings awaiting a pong, per connection */
#define PN_DISCOVERED_MAX 256 /* untrusted peers remembered from announces: strangers pick keys */
#define PN_FOUND_MAX 4        /* discovered addresses kept per peer, beside its configured one */
/* A dialled link is pinged until the peer shows it has read past M3
 * (ping.c, "settling"): the first retry after PN_SETTLE_FIRST_MS, each
 * next one twice as late, at most PN_SETTLE_TRIES pings (about 5 s). */
#define PN_SETTLE_FIRST_MS 5
#define PN_SETTLE_TRIES 10
/* A replaced link stays open this long at least, unless the peer closes it
 * (conn.c, pn_conn_retire). */
#define PN_RETIRE_GRACE_MS 250
/* Queue bounds (conn.c): a call or send of our own is refused past
 * max_outbuf; the frames the host owes the peer (replies, pongs) may take
 * the queue to this many times max_outbuf before the link closes, so a
 * peer that reads, however slowly, is dropped only by stall_timeout. */
#define PN_OUTBUF_OWED_FACTOR 2
/* Queued bytes that leave at once instead of at the end of the loop turn
 * (conn.c, flush_early). Small, so that a batch of replies streams out
 * while the rest of the batch is served: with the batch written only at
 * the end of the turn, each side of a pipelined link waited for the
 * other's whole batch (256 calls in flight, C API: 180 k/s, both sides
 * half idle; with 64 KiB the same; 4 KiB: 420-430 k/s). */
#define PN_FLUSH_EARLY 4096
/* Checks of a stalled write per stall_timeout. */
#define PN_STALL_TICKS 4
/* Sends a peer's handlers keep (a script's queue) at half of
 * max_calls_in_flight (at least one) pause reading the link they came on,
 * so the sender meets TCP's backpressure (and its own busy) instead of the
 * receiver dropping sends; reading resumes at half the mark. Not while a
 * call of ours waits for its reply on that link (a handler calling the
 * sender back), and for at most PN_PAUSE_MAX_MS: then reading goes on and
 * the excess past max_calls_in_flight is dropped, so a stuck handler
 * cannot hide the peer's pongs, calls or close for longer. */
#define PN_SENDS_PAUSE_MARK(max_calls) ((max_calls) / 2 ? (max_calls) / 2 : 1)
#define PN_PAUSE_MAX_MS 2000
/* A connection that has just been sent message 2 is not evicted for this
 * long: a real peer needs a round trip to send message 3 (admit.c). */
#define PN_HEARD_GRACE_MS 250

typedef struct pn_conn pn_conn;
typedef struct pn_pending pn_pending;

typedef struct pn_bytes {
    uint8_t *data;
    size_t len, cap;
} pn_bytes;

typedef struct pn_waiter { /* a pn_host_connect callback waiting for its peer */
    pn_connect_cb cb;
    void *ud;
    int status;
    char msg[PN_ERR_MSG_MAX];
    struct pn_waiter *next;
} pn_waiter;

typedef struct pn_peer {
    pn_host *host;
    uint8_t key[PN_KEY_LEN];
    pn_peer_status status;
    int trusted;
    int in_file;     /* listed in the watched trust file */
    int api_trusted; /* trusted through pn_host_trust: the file does not untrust it */
    /* Where to dial: the configured address (trust list, pn_host_trust,
     * pn_host_connect) is tried first and nothing heard on the LAN
     * replaces it; addresses from announces and mDNS are candidates after
     * it: the one where a handshake last proved the key (pinned: no
     * announce pushes it out), then the others newest first. Anyone on
     * the LAN can announce any key at any port, so once found[] is full a
     * new address replaces only an unproven one, at most once per
     * backoff_min. One that fails or answers with another key is skipped (and its
     * announces ignored) until bad_until, for longer each time it fails
     * again. */
    char addr[PN_ADDR_MAX + 1]; /* configured, "" when none */
    struct {
        char addr[PN_ADDR_MAX + 1];
        uint64_t bad_until; /* uv_now() ms; 0 = good */
        uint32_t fails;     /* in a row: each doubles the skip, from backoff_min to backoff_max */
        int proven;         /* our dial there completed a handshake: pinned, tried first */
    } found[PN_FOUND_MAX];
    int nfound;
    int cand; /* the next candidate to dial: 0 = configured, i + 1 = found[i] */
    char dialled[PN_ADDR_MAX + 1]; /* the address of the dial in flight */
    uint64_t announce_dial_ms;     /* last dial an announce started: at most one per backoff_min */
    uint64_t found_new_ms;         /* last address that replaced one: at most one per backoff_min */
    uint64_t last_seen_ms;         /* uv_now() of the last frame received, 0 = never */
    pn_conn *live;                 /* the one authenticated connection */
    pn_conn *retired; /* the one replaced link still draining (conn.c, pn_conn_retire) */
    uint32_t nreqs;   /* its calls being served, on any connection (closed ones too) */
    uint32_t nsends;  /* its sends kept by their handler (pn_request_keep), likewise */
    pn_conn *dialing; /* our dial in progress, at most one */
    pn_waiter *waiters;
    uv_timer_t redial;
    uint32_t backoff_ms; /* the next redial delay before jitter */
    int announced;       /* an announce has been heard from it */
    pn_link stranger;    /* on h->strangers: announced and not trusted */
    struct pn_peer *next;
} pn_peer;

typedef struct pn_handler {
    char *name;
    pn_handler_def def;
    int revoked; /* revoked while a dispatch was running: released after it */
    struct pn_handler *next;
} pn_handler;

/* Where an inbound connection stands before it is authenticated; the
 * pools of admit.c are counted by it. Dials and live links are NONE. */
typedef enum {
    PN_STAGE_NONE,
    PN_STAGE_UNHEARD, /* accepted, no complete message 1 yet */
    PN_STAGE_WAITING, /* message 1 held until the handshake budget allows message 2 */
    PN_STAGE_HEARD,   /* message 2 sent, message 3 awaited */
} pn_conn_stage;

typedef enum {
    PN_CONN_RESOLVING,
    PN_CONN_CONNECTING,
    PN_CONN_HANDSHAKE,
    PN_CONN_LIVE,
    PN_CONN_CLOSING
} pn_conn_state;

struct pn_conn {
    pn_host *host;
    pn_link link; /* host->conns, newest first */
    pn_conn_state state;
    int initiator;
    int has_expect;
    uint8_t expect[PN_KEY_LEN];   /* initiator: the key we dialled */
    pn_peer *peer;                /* initiator: from the start; responder: once authenticated */
    char remote[PN_ADDR_MAX + 1]; /* for log lines */
    char fail[160];               /* why verify refused the peer, for the close reason */

    /* Inbound, until authenticated (admit.c). */
    pn_conn_stage stage;
    uint64_t accepted_ms; /* uv_now() at accept: the handshake deadline counts from it */
    uint8_t src[16];      /* the source for per-source limits: IPv4 address or IPv6 /64 */
    uint8_t src_len;
    int spoke; /* a whole message 1 was already there at accept: evicted after the silent */
    uint8_t m1[PN_HANDSHAKE_M1_BODY]; /* message 1 while it waits (checked, not yet read) */
    pn_link wlink;                    /* host->waiting: oldest first */
    uint64_t heard_ms;                /* uv_now() when it got its token for message 2 */
    uint32_t wsame;                   /* scratch (admit.c): waiters from its source */

    uv_tcp_t tcp;
    uv_timer_t timer;  /* handshake deadline, then the ping interval */
    uv_timer_t dead;   /* a pong is overdue */
    uv_timer_t settle; /* the next settle ping of a dialled link */
    uv_timer_t stall;  /* while a write waits on the peer: is it still reading? */
    uv_timer_t pause;  /* a pause's bound, and going on after it (conn.c) */
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai;
    int gai_active;
    pn_handles closing; /* its handles, closed together by pn_conn_close */

    pn_handshake *hs;
    pn_frame_reader *fr;

    pn_bytes out;  /* frames queued in this loop turn */
    size_t hold;   /* bytes at the head of out that leave in a write of their own (M3) */
    pn_bytes wout; /* the write in flight */
    int writing;
    uint64_t written;     /* bytes of completed writes, for the stall check */
    uint64_t stall_mark;  /* written, plus the part of wout the kernel took, at the last check */
    uint64_t progress_ms; /* uv_now() when that last grew */
    uv_write_t wreq;
    pn_link dirty; /* on host->dirty: writes to flush this turn */

    /* PN_CALL_BUCKETS chains, made at its first call: a link that only
     * serves (most of a server's) does without the 2 KiB. */
    pn_pending **calls;
    pn_list due;           /* pn_pending by deadline */
    uv_timer_t call_timer; /* the earliest deadline */
    uint32_t ncalls;
    pn_list reqs; /* pn_request: incoming calls being served */

    struct {
        uint8_t nonce[PN_NONCE_LEN];
        uint64_t sent;
    } pings[PN_PINGS_MAX];
    int npings;
    uint64_t probe_due; /* uv_now() by which the probe's pong is due, 0 = no probe out */
    int redial_now;     /* closed because its path is gone, not the peer: redial at once */
    uint8_t probe_nonce[PN_NONCE_LEN];
    int retiring;          /* replaced by a newer link: 1 in its grace, 2 closes once idle */
    uint64_t retire_due;   /* uv_now() by which it closes, idle or not */
    int settling;          /* dialled: no pong yet to a settle ping (conn.c) */
    uint32_t settle_tries; /* settle pings sent */
    int drain_wanted;      /* a send was told busy: PN_EVENT_DRAINED at the low-water mark */
    int read_paused;       /* the peer's kept sends are over their mark (dispatch.c) */
    int read_stopped;      /* libuv is not reading it (a pause, until the held bytes are served) */
    int pause_spent;       /* a pause ran its bound: none again until the sends catch up */
    uint8_t *held;         /* the rest of the read a pause cut (at most PN_READ_CHUNK) */
    size_t held_len;
    uint32_t settle_ms; /* the wait before the next one */
    uint8_t settle_nonce[PN_NONCE_LEN];
    uint64_t live_seq; /* h->seq when it became live */
    uint64_t born_seq; /* h->seq when it was made */
};

struct pn_pending { /* one outgoing call */
    uint64_t id;
    uint64_t deadline; /* uv_now() time of its timeout */
    pn_call_cb cb;
    void *ud;
    pn_call_status status; /* for a deferred completion */
    pn_pending *next;      /* bucket chain, then host->completed */
    pn_link due;           /* the connection's deadline order */
};

struct pn_request {
    pn_conn *conn;          /* NULL once the connection has gone: the answer is dropped */
    pn_host *host;          /* set while on host->orphans (conn gone, still being served) */
    pn_peer *peer;          /* counted in peer->nreqs (nsends); NULL once the entry is gone */
    void (*gone)(void *ud); /* told once when the connection goes (pn_request_on_gone) */
    void *gone_ud;
    pn_link link; /* conn->reqs, or host->orphans */
    int is_call;
    int kept; /* a send its handler keeps past its return (pn_request_keep) */
    uint64_t id;
    uint8_t from[PN_KEY_LEN];
    char *name;
    uint8_t *args;
    size_t args_len;
    int local;           /* pn_host_deliver's: no link ever closes under it */
    pn_call_cb local_cb; /* its answer goes here, not to a link */
    void *local_ud;
    int small;             /* a PN_REQUEST_BLOCK block: freed into its host's pool */
    pn_request *pool_next; /* in host->req_pool */
};
/* Requests whose name and args fit in a block of this size come from a
 * host's pool of at most PN_REQUEST_POOL freed ones (one malloc and free
 * less per call: they showed in the profile of a pipelined serve). As many
 * as a link holds sends before it pauses at the default
 * max_calls_in_flight: with 256, 63 % of a one-way flood's requests still
 * missed the pool (1 MiB kept after such a burst). */
#define PN_REQUEST_BLOCK 512
#define PN_REQUEST_POOL PN_SENDS_PAUSE_MARK(PN_CALLS_IN_FLIGHT_DEFAULT)

struct pn_host {
    uv_loop_t *loop;
    pn_host_config cfg;
    uint8_t priv[PN_KEY_LEN]; /* secret: wiped on free */
    uint8_t pub[PN_KEY_LEN];
    uint8_t test_eph[PN_KEY_LEN];
    int has_test_eph;
    int env_flags; /* PN_ENVELOPE_* */

    uv_tcp_t listener;
    int listening;
    int port;
    char listen_ip[PN_ADDR_MAX + 1]; /* the address listened on; "" for every interface */

    uv_check_t flush_check; /* writes queued in a loop turn leave together, after I/O */
    uv_idle_t flush_idle;   /* keeps poll from blocking while writes wait */
    pn_list dirty;          /* pn_conn with writes queued */
    pn_pending *completed;  /* calls failed outside the read path, reported from the loop */
    pn_waiter *resolved;    /* connect callbacks to run from the loop */

    pn_list conns; /* pn_conn, newest first */
    /* Calls still being served whose connection has gone, and sends kept
     * by their handler (a send needs no connection once read). */
    pn_list orphans;
    /* The send whose handler is running inside dispatch_to: a handler that
     * keeps it and is done before it returns (a trusted script's task runs
     * at once) leaves the freeing to dispatch_to. */
    pn_request *dispatch_send;
    pn_peer *peers[PN_REGISTRY_BUCKETS];
    uint32_t npeers;
    uint32_t hash_seed;
    pn_handler *handlers[PN_HANDLER_BUCKETS];
    int dispatching;       /* a handler or predicate is running */
    pn_handler *graveyard; /* revoked meanwhile: released when it returns */

    struct pn_trustfile *trustfile;  /* the watched trust list, if any */
    struct pn_discovery *discovery;  /* UDP announces, when cfg.discovery */
    struct pn_netmon *netmon;        /* network change monitor, when cfg.netmon */
    char broadcast[PN_ADDR_MAX + 1]; /* cfg.broadcast, copied */
    /* Untrusted peers known from announces, the one heard from last first:
     * at most PN_DISCOVERED_MAX, the tail is forgotten to make room. */
    pn_list strangers;
    struct pn_mdnsd *mdns; /* mDNS responder and browser, when enabled */

    struct {
        pn_event_fn fn;
        void *ud;
    } listeners[PN_EVENT_LISTENERS];
    struct {
        void (*fn)(void *ud);
        void *ud;
    } closing_fns[PN_EVENT_LISTENERS];

    uint8_t rbuf[PN_READ_CHUNK];
    uint8_t *ptbuf; /* opened transport plaintext, sized to the frame cap */
    pn_etf_buf scratch;
    pn_request *req_pool; /* freed small requests (request.c), req_pool_len of them */
    uint32_t req_pool_len;

    /* Call ids come from this pool: one getrandom() per 64 ids, not per call. */
    uint8_t random_pool[512];
    size_t random_left;

    /* Inbound handshakes (admit.c): the first messages waiting for the
     * budget (oldest first) and the budget itself. */
    pn_list waiting; /* pn_conn by wlink */
    double hs_tokens;
    uint64_t hs_refill_ms;
    uv_timer_t hs_timer;

    /* Rate-limited log lines (core/logline.h) and the timer that writes
     * their summaries when a window ends. */
    pn_logline_limit loglimit;
    uv_timer_t log_timer;

    pn_host_stats stats;
    uint64_t seq; /* orders connections made and made live (the tie-break, policy.c) */
    int closing;
    pn_handles own; /* its own timers and loop-turn handles, closed by pn_host_close */
    int refs;       /* the host's own reference, its handles and every object holding one */
    void (*on_closed)(void *ud);
    void *on_closed_ud;
};

/* The connections, newest first (a conn may be closed, which unlinks it,
 * only once its next is taken). */
static inline pn_conn *pn_conn_of(pn_link *l) {
    return l ? PN_CONTAINER(l, pn_conn, link) : NULL;
}
static inline pn_conn *pn_conn_first(const pn_host *h) {
    return pn_conn_of(h->conns.head);
}
static inline pn_conn *pn_conn_next(const pn_conn *c) {
    return pn_conn_of(c->link.next);
}

/* host.c */
void pn_host_unref(pn_host *h);
/* The last close of owner (an allocation that held one of h's references,
 * e.g. through its handles): frees it, then drops the reference (which
 * may free h, so h is read before). */
void pn_host_unref_free(pn_host *h, void *owner);
/* Every uv handle the host opens goes through here after its init: it is
 * unref'd when the host is weak (cfg.weak). */
void pn_host_adopt(pn_host *h, uv_handle_t *handle);
void pn_host_mark_dirty(pn_host *h, pn_conn *c);
/* Tells every event listener; p may be freed by one (its key is copied). */
void pn_host_emit(pn_host *h, pn_event ev, const pn_peer *p, const char *detail);
double pn_host_wall_now(void);
uint64_t pn_host_random_u64(pn_host *h);

/* log.c */
void pn_log(pn_host *h, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* For lines a stranger (or any peer) can cause at will: limited per key
 * (the kind of event and its source, e.g. "evicted 10.0.0.7") to one line
 * a window plus a summary with the count. Every line is escaped. */
void pn_log_limited(pn_host *h, int level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with the line already made (raw, unescaped): for lines a peer
 * causes per message, built with pn_log_text_* rather than printf (a
 * flood of dropped sends formatted each one). */
void pn_log_limited_text(pn_host *h, int level, const char *key, const char *raw);
typedef struct {
    char buf[PN_LOGLINE_MSG_MAX]; /* cut when full, as snprintf cuts */
    size_t len;
} pn_log_text;
void pn_log_text_init(pn_log_text *t);
void pn_log_text_add(pn_log_text *t, const char *s);
void pn_log_text_u32(pn_log_text *t, uint32_t v);
void pn_log_flush_all(pn_host *h); /* closing: every summary now */
/* Short form of a key for log lines: the first 8 bytes in hex, in a
 * buffer of PN_LOG_KEY_BUF. */
#define PN_LOG_KEY_BUF 17 /* 16 hex digits and the NUL */
const char *pn_log_key(const uint8_t key[PN_KEY_LEN], char out[PN_LOG_KEY_BUF]);
/* The limiter key for lines about one peer: kind (a few words) and its
 * whole key, so a stranger whose key shares the logged prefix with
 * another's cannot use up the other's line. */
const char *pn_log_limit_key(const char *kind, const uint8_t key[PN_KEY_LEN],
                             char out[PN_LOGLINE_KEY_MAX]);

/* policy.c */
void pn_policy_established(pn_host *h, pn_conn *c);
void pn_policy_conn_closed(pn_host *h, pn_conn *c, const char *why);
/* 0 when c's peer (key) may complete the handshake; else why in c->fail. */
int pn_policy_verify(pn_host *h, pn_conn *c, const uint8_t key[PN_KEY_LEN]);
void pn_policy_resolve_waiters(pn_host *h, pn_peer *p, int status, const char *msg);
void pn_policy_schedule_redial(pn_host *h, pn_peer *p);
void pn_policy_redial_soon(pn_peer *p);
void pn_policy_dial_now(pn_host *h, pn_peer *p); /* backoff from its start */
/* Trusts key (the file's entries and pn_host_trust both come here). */
int pn_policy_trust(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, pn_err *e);

/* found.c: what a discovery source (announce, mDNS) learnt. Checked, then
 * the same for a UDP announce and an mDNS finding: a trusted peer gets
 * addr as a dial address and is dialled when not connected; an untrusted
 * one is remembered among the strangers (PN_DISCOVERED_MAX, the stalest
 * forgotten first). A new or changed address emits PN_EVENT_DISCOVERED.
 * addr is "HOST:PORT"; source names it for the log. -1: dropped (own key,
 * bad address, no room). */
int pn_found_note(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, const char *source);
/* The source says the peer left (an mDNS goodbye): the address it gave is
 * forgotten and redialling it stops; a live connection stays up. */
void pn_found_gone(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, const char *source);
int pn_found_has_address(const pn_host *h, const pn_peer *p);
/* The next address to dial, in turn: the configured one, then the usable
 * discovered ones; NULL when there is none. */
const char *pn_found_next(const pn_host *h, pn_peer *p);
void pn_found_dial_failed(pn_host *h, pn_peer *p, const char *why, int wrong_key);
void pn_found_dial_worked(pn_peer *p);
void pn_found_stranger_push(pn_host *h, pn_peer *p); /* heard from just now */
/* An untrusted key authenticated on an inbound connection (which verify
 * then closes): remembered among the strangers and logged once per key
 * per log_window, with the command that trusts it. */
void pn_found_refused(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *from);
void pn_found_stranger_unlink(pn_host *h, pn_peer *p);

/* dispatch.c */
void pn_dispatch(pn_host *h, pn_conn *c, const pn_envelope *env);
void pn_dispatch_release_all(pn_host *h); /* the host closes: every handler is revoked */

/* conn.c */
pn_conn *pn_conn_accept(pn_host *h, pn_err *e);
/* Starts a dial and sets p->dialing; PN_E* only when nothing was started. */
int pn_conn_dial(pn_host *h, pn_peer *p, const char *addr, pn_err *e);
void pn_conn_close(pn_conn *c, const char *why);
/* c was replaced by a newer link to its peer: it takes no new calls, and
 * closes once its calls in flight and the requests it serves are done and
 * written, after a grace (at most call_timeout later), or when the peer
 * closes it. */
void pn_conn_retire(pn_conn *c);
/* Seals and queues a frame the host owes the peer (a reply, a pong, a
 * ping): past PN_OUTBUF_OWED_FACTOR * max_outbuf queued, the peer is not
 * reading its own answers and the link closes. */
int pn_conn_queue_envelope(pn_conn *c, const pn_etf_buf *pt, pn_err *e);
/* The same for a call or send of our own: past max_outbuf it is refused
 * with PN_EBUSY and the link stays; nothing is queued. */
int pn_conn_queue_own(pn_conn *c, const pn_etf_buf *pt, pn_err *e);
void pn_conn_flush(pn_conn *c);
/* Stops and restarts reading a live link (PN_SENDS_PAUSE_MARK): the rest
 * of the read is held and served on resume; the dead timer waits while we
 * do not read the pongs. Resuming is deferred to the loop. */
void pn_conn_pause(pn_conn *c);
void pn_conn_resume(pn_conn *c);
/* Whether a whole message 1 already waits in c's socket (a look, not a
 * read): under a connection storm a peer that spoke at once must not be
 * evicted by idle newcomers before its first read comes round. */
int pn_conn_m1_waiting(pn_conn *c);
/* Reads the held message 1 of a waiting responder and answers message 2. */
void pn_conn_serve_m1(pn_conn *c);

/* ping.c */
void pn_ping_send(pn_conn *c, const uint8_t *nonce); /* nonce NULL: random */
/* Pings now and closes the link unless a pong arrives within deadline_ms. */
void pn_ping_probe(pn_conn *c, uint32_t deadline_ms);
void pn_ping_start(pn_conn *c);                      /* c is live: its pings begin */
void pn_ping_written(pn_conn *c);                    /* a write of c's has left */
void pn_ping_pong(pn_conn *c, const uint8_t *nonce); /* a pong arrived on c */

/* admit.c: the pending-handshake pools and the handshake budget. */
int pn_admit_open(pn_host *h);
/* c was just accepted: it is counted as unheard. */
void pn_admit_accepted(pn_host *h, pn_conn *c);
/* c is still unheard once what it had sent is read: room is made by
 * closing the oldest unheard connection of its source, or of all. */
void pn_admit_make_room(pn_host *h, pn_conn *c);
/* c's message 1 passed the cheap checks (in c->m1): 1 = serve it now (a
 * budget token was taken, c is HEARD), 0 = it waits (stage WAITING) and
 * pn_conn_serve_m1 runs when its turn comes, -1 = c was closed to keep
 * the waiting pool in bounds. */
int pn_admit_heard(pn_host *h, pn_conn *c);
void pn_admit_stage(pn_host *h, pn_conn *c, pn_conn_stage stage); /* keeps the counts */

/* registry.c */
pn_peer *pn_registry_find(const pn_host *h, const uint8_t key[PN_KEY_LEN]);
pn_peer *pn_registry_get(pn_host *h, const uint8_t key[PN_KEY_LEN], pn_err *e);
/* Iterates the peers: pn_registry_next(h, NULL) is the first, NULL after
 * the last. p may be untrusted or its links closed on the way, but not
 * forgotten (pn_registry_forget) before its next is taken. */
pn_peer *pn_registry_next(const pn_host *h, const pn_peer *p);
void pn_registry_info(const pn_host *h, const pn_peer *p, pn_peer_info *out);
void pn_registry_close_all(pn_host *h);
void pn_registry_forget(pn_host *h, pn_peer *p);

/* calls.c */
pn_pending *pn_calls_start(pn_conn *c, pn_call_cb cb, void *ud, uint32_t timeout_ms, pn_err *e);
void pn_calls_cancel(pn_conn *c, pn_pending *p); /* undo a start whose envelope was not queued */
void pn_calls_complete(pn_conn *c, const pn_envelope *env);
void pn_calls_fail_all(pn_conn *c); /* the connection closes: every call fails, from the loop */
void pn_calls_run_completed(pn_host *h);

/* request.c */
pn_request *pn_request_new(pn_conn *c, const pn_envelope *env, pn_err *e);
/* A request of pn_host_deliver: no link, on h->orphans, answered to cb. */
pn_request *pn_request_new_local(pn_host *h, const uint8_t from[PN_KEY_LEN], const char *name,
                                 const uint8_t *args, size_t len, pn_call_cb cb, void *ud,
                                 pn_err *e);
void pn_request_free(pn_request *r);
void pn_request_pool_free(pn_host *h); /* the host goes: its pool of blocks too */
void pn_request_detach_all(pn_conn *c);
/* The peer entry p is about to be freed: its orphaned calls forget it. */
void pn_request_forget_peer(pn_host *h, pn_peer *p);
/* The host is closing: orphaned calls forget it and their peers. */
void pn_request_orphan_all(pn_host *h);

/* trustfile.c */
void pn_trustfile_close(pn_host *h);

/* discovery.c */
int pn_discovery_open(pn_host *h, pn_err *e);
void pn_discovery_announce(pn_host *h); /* now, and the interval restarts */
void pn_discovery_close(pn_host *h);

/* netmon.c */
int pn_netmon_open(pn_host *h, pn_err *e);
void pn_netmon_close(pn_host *h);

/* mdns.c: the responder and browser. port 0 = PN_MDNS_PORT; instance NULL = a name
 * made from the key. Close sends a goodbye (TTL 0) when asked. */
typedef struct pn_mdnsd pn_mdnsd;
pn_mdnsd *pn_mdnsd_start(pn_host *h, const char *instance, uint16_t port, pn_err *e);
void pn_mdnsd_close(pn_mdnsd *m, int goodbye);
/* Re-joins the groups on the current interfaces, re-announces and
 * re-queries at once (the network monitor calls it; m may be NULL). */
void pn_mdnsd_network_changed(pn_mdnsd *m);
/* One received datagram, as if from `from` (the socket's path; fuzz/fuzz_mdns_host.c). */
void pn_mdnsd_feed(pn_mdnsd *m, const uint8_t *buf, size_t len, const struct sockaddr *from);

#endif
