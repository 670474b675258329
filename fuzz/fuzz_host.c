/*
 * Host fuzz target: a pn_host fed arbitrary bytes on an accepted loopback
 * connection, before and after the handshake, never crashes or leaks, keeps
 * its counters consistent, still answers a fresh handshake afterwards, and
 * closes down to nothing.
 *
 * One uv loop for the process, a fresh host per input. The harness is the
 * peer, on a plain POSIX socket, and turns the loop (UV_RUN_NOWAIT) between
 * its own steps, so everything runs on one thread; no host timer fires
 * (except a call's 1 ms timeout the harness asks for and waits out). The
 * keys are those of vectors/peernet_wire_v1.json (host = the
 * responder, the harness = the initiator), so a recorded transcript
 * completes the handshake in mode A and the harness's own handshake in
 * modes B and C is that transcript's.
 *
 * Input: byte 0 picks the mode (bits 0-1: 0 or 3 = A, 1 = B, 2 = C) and
 * flags: 0x04 the host writes OTP 25 atoms, 0x08 (A) an idle connection
 * made just before the fuzz one is evicted by it (the unheard pool holds
 * one), (B, C) the harness uses an
 * untrusted static key, 0x10 the host is closed while the connection is up,
 * 0x20 requests still held at the end are answered with an error, 0x40
 * max_outbuf is as small as allowed (frame_cap + 4): replies can overflow it,
 * 0x80 the event listener calls and pings a peer that connects and closes
 * the host when it disconnects.
 *
 *   A  byte 1 = write size (0: all at once, else that many bytes per write,
 *      the loop turning between writes); the rest goes to the socket as is.
 *   B  handshake by the harness, then chunks [ctl][u16 BE len][len bytes]:
 *      each chunk is sealed as one transport frame (the plaintext an
 *      envelope or not), or written raw when ctl bit 0 is set.
 *   C  like B, but the chunk is built into a valid envelope (ctl >> 5 picks
 *      call, send, ping, pong, reply, sealed bytes, a host API action or raw
 *      wire bytes), so dispatch and the handlers are reached deeply. The
 *      actions (see action()) include calls from the host, untrust, revoke,
 *      and a second connection of the same peer that replaces the first.
 *   ctl bits 1-4 (B, C): 0x02 let the host read all sent so far, and reply,
 *   0x04 / 0x08 answer the held requests now (ok newest first / error
 *   oldest first), 0x10 flip a tag byte of this sealed frame. In C, bit 0
 *   makes the harness's envelopes use OTP 25 atoms instead of meaning raw.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/envelope.h"
#include "core/etf.h"
#include "core/frame.h"
#include "core/handshake.h"
#include "net/test_hooks.h"
#include "peernet/peernet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FRAME_CAP 4096
#define MAX_OUTBUF 65536
#define MAX_CALLS 8
#define MAX_PENDING 1 /* per pool: a second unheard connection evicts the older */
#define MAX_CONNS 8
#define LONG_MS 600000 /* no timer of the host fires during an input */
#define HOLD_MAX 64
#define IDS_MAX 8
#define TURNS_MAX 200000  /* loop turns any one wait may take before it is a hang */
#define SETTLE_TURNS 2000 /* loop turns for the host to act on what it was just sent */
#define SPLIT_WRITES_MAX 512
#define SHORT_CALLS_MAX 4 /* per input: each costs a millisecond of waiting */
#define BIG_REPLY (FRAME_CAP + 100)
/* The check that the host still serves costs the host most of a handshake
 * (five X25519 operations, about what a whole input costs): every 8th input
 * and the first, so a replayed crash input is always checked. */
#define CHECK_EVERY 8
#define EOF_EVERY 64 /* inputs whose check connection ends with the peer's EOF: one in 64 */

enum { MODE_A, MODE_B, MODE_C };
enum {
    F_LEGACY = 0x04,
    F_STRANGER = 0x08,
    F_SECOND = 0x08,
    F_CLOSE_LIVE = 0x10,
    F_HELD_ERROR = 0x20,
    F_TIGHT = 0x40,
    F_EVENTS = 0x80
};
enum { C_RAW = 0x01, C_PUMP = 0x02, C_ANSWER_OK = 0x04, C_ANSWER_ERR = 0x08, C_CORRUPT = 0x10 };
enum { T_CALL, T_SEND, T_PING, T_PONG, T_REPLY, T_SEALED, T_ACTION, T_WIRE };

/* Handle names the chunks of mode C pick by index; "nope" is never exposed
 * and "late" only once "expose" ran. Each name's handler or predicate does
 * what the name says: see handle() and the predicates below it. */
static const char *const names[] = {
    "echo",    "hold",       "fail",         "secret",      "big",        "call_back", "send_back",
    "ping_me", "untrust",    "revoke",       "info",        "error_term", "expose",    "late",
    "nope",    "close_host", "gate_untrust", "gate_revoke", "gate_close"};
#define NNAMES (sizeof names / sizeof names[0])

static const uint8_t ping_nonce[PN_NONCE_LEN] = "host-ping-nonce";

/* Process-wide: the loop and the keys. */
static uv_loop_t loop;
static int inited;
/* FUZZ_HOST_DEBUG=1 in the environment: the host's log and a summary per
 * input on stderr, to see what an input reaches. */
static int debug;
static uint8_t host_secret[PN_KEY_LEN], host_eph[PN_KEY_LEN], host_pub[PN_KEY_LEN];
static uint8_t cli_static[PN_KEY_LEN], cli_eph[PN_KEY_LEN], cli_pub[PN_KEY_LEN];
static uint8_t stranger_static[PN_KEY_LEN], stranger_pub[PN_KEY_LEN];
/* The harness's handshake, run once at init with the core API (every key
 * is fixed, so every connection's handshake is this one): the frames M1,
 * M2 (what the host must answer), M3 (trusted and stranger), and the
 * transport keys of the initiator. Per input only the host does X25519. */
static uint8_t m1_buf[4 + PN_HANDSHAKE_M1_BODY], m2_buf[4 + PN_HANDSHAKE_M2_BODY];
static uint8_t m3_buf[4 + PN_HANDSHAKE_M3_BODY], m3_stranger[4 + PN_HANDSHAKE_M3_BODY];
static uint8_t k_tx[PN_NOISE_KEYLEN], k_rx[PN_NOISE_KEYLEN];
static unsigned ninputs;

/* Per input. */
static struct {
    pn_host *h;
    int closing, closed;
    const uint8_t *key; /* the harness's static public key, as the host sees it */
    pn_request *held[HOLD_MAX];
    int nheld;
    unsigned calls_started, calls_done, connects_started, connects_done;
    unsigned exposed, released, ev_up, ev_down;
    int fd, eof;
    int decrypt; /* parse the host's frames (modes B, C) */
    int got_m2;
    pn_noise_cipher tx, rx; /* the harness's transport, once M3 is sent */
    pn_frame_reader *fr;
    uint64_t ids[IDS_MAX]; /* ids of the host's calls to the harness */
    int nids;
    uint8_t last_ping[PN_NONCE_LEN];
    size_t got; /* bytes read on the check connection */
    uint8_t m2_seen[sizeof m2_buf];
    int transport;
    /* The host's framing as the harness sees it: every byte written goes
     * through the host's frame reader's rules with the transport cap (while
     * handshaking the host's cap is smaller: it only refuses sooner). */
    int m_hdr;                        /* header bytes seen of the current frame */
    uint32_t m_len;                   /* its body length, once the header is complete */
    uint32_t m_left;                  /* body bytes still to come */
    int m_failed;                     /* a header over the cap: the host refuses the rest */
    unsigned seq;                     /* this input's number in the process */
    unsigned short_calls, short_done; /* calls with a 1 ms timeout */
    int events;                       /* F_EVENTS */
} S;

static uint8_t wire[4 + 65536 + PN_TRANSPORT_TAG + 64];
static uint8_t rbuf[65536];
static uint8_t ptbuf[FRAME_CAP];
static uint8_t big[BIG_REPLY];

__attribute__((noreturn)) static void fail(const char *msg) {
    fprintf(stderr, "fuzz_host: %s\n", msg);
    abort();
}

/* ---- the loop ---------------------------------------------------------- */

static void check_stats(void) {
    pn_host_stats st;
    if (!S.h || S.closing) return;
    pn_host_get_stats(S.h, &st);
    if (st.handshaking > st.connections || st.unheard > MAX_PENDING || st.heard > MAX_PENDING ||
        st.unheard + st.heard > st.handshaking || st.connections > MAX_CONNS)
        fail("host stats inconsistent (over a limit, or a counter wrapped)");
}

static void pump(void) {
    uv_run(&loop, UV_RUN_NOWAIT);
    check_stats();
}

static void count_handle(uv_handle_t *hd, void *ud) {
    (*(int *)ud)++;
}

/* ---- handlers ---------------------------------------------------------- */

static void on_closed(void *ud) {
    S.closed = 1;
}

static void on_release(void *ud) {
    S.released++;
}

/* Call callbacks that pull the ground from under the host (ud of a call). */
static char cb_closes_host, cb_untrusts;

static void on_call_done(pn_host *h, pn_call_status st, const uint8_t *term, size_t len, void *ud) {
    if ((st == PN_CALL_OK || st == PN_CALL_ERROR) && (!term || !len))
        fail("a replied call completed without its term");
    if (ud == &S.short_done) S.short_done++;
    S.calls_done++;
    if (S.closing) return;
    if (ud == &cb_closes_host) {
        S.closing = 1;
        pn_host_close(h, on_closed, NULL);
    } else if (ud == &cb_untrusts) {
        pn_host_untrust(h, S.key);
        pn_host_trust(h, S.key, NULL, NULL);
    }
}

static void on_connect_done(pn_host *h, int status, const char *msg, void *ud) {
    S.connects_done++;
}

/* With F_EVENTS the listener does what programs do there: greet a peer
 * that connects, close the host when it leaves. */
static void on_event(pn_host *h, pn_event ev, const uint8_t key[PN_KEY_LEN], const char *detail,
                     void *ud) {
    (void)detail;
    static const uint8_t hello[] = {PN_ETF_TAG_NIL};
    if (sodium_memcmp(key, S.key, PN_KEY_LEN) != 0) fail("event for an unknown key");
    if (ev == PN_EVENT_CONNECTED) S.ev_up++;
    if (ev == PN_EVENT_DISCONNECTED) S.ev_down++;
    if (!S.events || S.closing) return;
    if (ev == PN_EVENT_CONNECTED) {
        if (pn_host_call(h, key, "hello", hello, sizeof hello, LONG_MS, on_call_done, NULL, NULL) ==
            0)
            S.calls_started++;
        pn_calls_test_ping(h, key, ping_nonce, NULL);
    } else if (ev == PN_EVENT_DISCONNECTED) {
        if (pn_host_send(h, key, "bye", hello, sizeof hello, NULL) != PN_ESTATE)
            fail("a send to a peer just disconnected was not refused");
        S.closing = 1;
        pn_host_close(h, on_closed, NULL);
    }
}

/* Answers a call; for a send the answer must be refused without freeing. */
static void answer(pn_request *req, int kind, const uint8_t *v, size_t len) {
    int call = pn_request_is_call(req), rc;
    pn_err e;
    if (kind == 0)
        rc = pn_request_reply(req, v, len, &e);
    else if (kind == 1)
        rc = pn_request_reply_error(req, "boom", &e);
    else
        rc = pn_request_reply_error_term(req, v, len, &e);
    if (!call && rc != PN_ESTATE) fail("answering a send was not refused");
}

/* Errors go oldest first, values newest first: requests leave the host's
 * list from its middle as well as from its head. */
static void answer_held(int error) {
    int n = S.nheld;
    S.nheld = 0;
    for (int i = 0; i < n; i++) {
        pn_request *r = S.held[error ? i : n - 1 - i];
        size_t len;
        const uint8_t *a = pn_request_args(r, &len);
        int call = pn_request_is_call(r);
        answer(r, error ? 1 : 0, a, len);
        if (!call) pn_request_done(r); /* a kept send: its peer may send again */
    }
}

static int count_peer(const pn_peer_info *p, void *ud) {
    (*(int *)ud)++;
    return 0;
}

static int expose(pn_host *h, const char *name, pn_handler_fn fn, pn_authorize_fn auth);

static void handle(pn_host *h, pn_request *req, void *ud) {
    const char *what = ud;
    size_t len;
    const uint8_t *args = pn_request_args(req, &len);
    const uint8_t *from = pn_request_from(req);
    pn_err e;
    if (debug)
        fprintf(stderr, "  handler %s (%s)\n", what, pn_request_is_call(req) ? "call" : "send");
    if (strcmp(pn_request_name(req), what) != 0) fail("request carries another handler's name");
    if (strncmp(what, "gate_", 5) == 0) fail("a handler ran after its predicate stopped it");
    if (sodium_memcmp(from, S.key, PN_KEY_LEN) != 0) fail("request from an unexpected key");
    if (strcmp(what, "hold") == 0) {
        /* Sends are kept too, as the script runtime keeps them while they
         * wait in a run queue: the host must free them whatever the link
         * or the host does meanwhile. */
        int call = pn_request_is_call(req);
        if (pn_request_keep(req) != (call ? PN_ESTATE : 0)) fail("pn_request_keep misbehaved");
        if (!call && S.nheld >= HOLD_MAX) {
            pn_request_done(req);
            return;
        }
        if (S.nheld < HOLD_MAX) {
            S.held[S.nheld++] = req;
            return;
        }
        answer(req, 1, NULL, 0);
        return;
    }
    if (strcmp(what, "fail") == 0) {
        answer(req, 1, NULL, 0);
        return;
    }
    if (strcmp(what, "error_term") == 0) {
        answer(req, 2, args, len);
        return;
    }
    if (strcmp(what, "big") == 0) { /* over the frame cap: the caller gets handler_crash */
        answer(req, 0, big, sizeof big);
        return;
    }
    if (strcmp(what, "call_back") == 0) {
        if (pn_host_call(h, from, "q", args, len, LONG_MS, on_call_done, NULL, &e) == 0)
            S.calls_started++;
    } else if (strcmp(what, "send_back") == 0) {
        pn_host_send(h, from, "note", args, len, &e);
    } else if (strcmp(what, "ping_me") == 0) {
        pn_calls_test_ping(h, from, ping_nonce, &e);
    } else if (strcmp(what, "untrust") == 0) { /* closes this very connection */
        if (pn_host_untrust(h, from) != 0) fail("untrust of a connected peer failed");
        if (pn_host_trust(h, from, NULL, &e) != 0 && !S.closing) fail("trust failed");
    } else if (strcmp(what, "revoke") == 0) {
        if (pn_host_revoke(h, "revoke") != 0) fail("revoke of an exposed handler failed");
    } else if (strcmp(what, "expose") == 0) {
        expose(h, "late", handle, NULL);
    } else if (strcmp(what, "close_host") == 0) { /* from inside a dispatch */
        S.closing = 1;
        pn_host_close(h, on_closed, NULL);
    } else if (strcmp(what, "info") == 0) {
        pn_peer_info pi;
        int n = 0;
        pn_host_peers(h, count_peer, &n);
        /* The call came on one of its links, so it has one; the status may
         * read disconnected: a replaced link still serves what comes on it
         * after the link that replaced it has closed (docs/host.md). */
        if (n < 1 || pn_host_peer(h, from, &pi) != 0 || !pi.trusted || pi.connections < 1 ||
            !pn_peer_status_name(pi.status))
            fail("registry does not show the calling peer with a connection");
    }
    answer(req, 0, args, len);
}

static int refuse(pn_host *h, const uint8_t from[PN_KEY_LEN], const char *name, void *ud) {
    return 0;
}

static int allow(pn_host *h, const uint8_t from[PN_KEY_LEN], const char *name, void *ud) {
    if (sodium_memcmp(from, S.key, PN_KEY_LEN) != 0) fail("authorize asked for an unknown key");
    return 1;
}

/* Predicates that pull the ground from under the dispatch, then say yes:
 * the handler must not run. */
static int gate(pn_host *h, const uint8_t from[PN_KEY_LEN], const char *name, void *ud) {
    pn_err e;
    if (strcmp(name, "gate_untrust") == 0) {
        pn_host_untrust(h, from);
        pn_host_trust(h, from, NULL, &e);
    } else if (strcmp(name, "gate_revoke") == 0) {
        pn_host_revoke(h, name);
    } else {
        S.closing = 1;
        pn_host_close(h, on_closed, NULL);
    }
    return 1;
}

static int expose(pn_host *h, const char *name, pn_handler_fn fn, pn_authorize_fn auth) {
    pn_handler_def def = {fn, auth, on_release, (void *)name};
    pn_err e;
    int rc = pn_host_expose(h, name, &def, &e);
    if (rc == 0) S.exposed++;
    return rc;
}

/* ---- the harness's socket ---------------------------------------------- */

static void on_host_frame(const uint8_t *body, size_t len) {
    pn_err e;
    size_t n;
    pn_envelope env;
    if (!S.got_m2) {
        if (len != sizeof m2_buf - 4 || memcmp(body, m2_buf + 4, len) != 0)
            fail("the host answered M1 with something else than the transcript's M2");
        S.got_m2 = 1;
        return;
    }
    if (!S.transport) fail("the host sent a frame out of turn");
    if (pn_noise_cipher_decrypt(&S.rx, NULL, 0, body, len, ptbuf, sizeof ptbuf, &n, &e) != 0)
        fail("the host sent a transport frame that does not open");
    if (pn_envelope_decode(ptbuf, n, &env, &e) != 0) fail("the host sent a non-envelope");
    if (env.kind == PN_ENV_CALL) S.ids[S.nids++ % IDS_MAX] = env.id;
    if (env.kind == PN_ENV_PING) memcpy(S.last_ping, env.nonce, PN_NONCE_LEN);
}

/* Reads what is there; sets S.eof once the host has closed. */
static void drain(void) {
    for (;;) {
        ssize_t n = recv(S.fd, rbuf, sizeof rbuf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            S.eof = 1;
            return;
        }
        if (n < 0) return;
        if (!S.decrypt) continue;
        const uint8_t *p = rbuf;
        size_t left = (size_t)n;
        pn_frame f;
        pn_err e;
        int rc;
        while ((rc = pn_frame_feed(S.fr, &p, &left, &f, &e)) == 1)
            on_host_frame(f.data, f.len);
        if (rc < 0) fail("the host sent a frame over its own cap");
    }
}

static void mirror(const uint8_t *p, size_t n) {
    while (n > 0 && !S.m_failed) {
        if (S.m_hdr < 4) {
            S.m_len = S.m_len << 8 | *p++;
            n--;
            if (++S.m_hdr < 4) continue;
            if (S.m_len > FRAME_CAP) S.m_failed = 1;
            S.m_left = S.m_len;
        } else {
            uint32_t k = n < S.m_left ? (uint32_t)n : S.m_left;
            p += k;
            n -= k;
            S.m_left -= k;
        }
        if (S.m_hdr == 4 && S.m_left == 0) S.m_hdr = 0, S.m_len = 0;
    }
}

static void send_bytes(const uint8_t *p, size_t len) {
    int turns = 0;
    while (len > 0 && !S.eof) {
        ssize_t n = send(S.fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            mirror(p, (size_t)n);
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            S.eof = 1; /* the host has closed: the rest is not delivered */
            return;
        }
        pump();
        drain();
        if (++turns > TURNS_MAX) fail("the host stopped reading");
    }
}

/* Turns the loop until the kernel has handed the host every byte written
 * (the congestion window holds back a burst of small writes until they are
 * acknowledged) and the host has had turns to read them, so what an input
 * does does not depend on timing. */
static void settle(void) {
    int unsent = 0;
    for (int turns = 0; turns < TURNS_MAX; turns++) {
        pump();
        drain();
        if (S.eof || ioctl(S.fd, SIOCOUTQNSD, &unsent) != 0 || unsent == 0) {
            pump();
            drain();
            return;
        }
    }
    fail("the host stopped reading");
}

/* A non-blocking connect, waited for with poll(): libFuzzer's timer signal
 * may interrupt a blocking one. No free local port (someone else on the
 * machine holds them all) is the machine's trouble, not the host's: wait. */
static int connect_loopback(int port) {
    struct sockaddr_in sa;
    int one = 1, err = 0;
    socklen_t len = sizeof err;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int tries = 0;; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) fail("socket");
        /* Nagle against delayed ACKs would stall small writes for 40 ms. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
        if (errno == EINPROGRESS || errno == EINTR) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            int rc;
            while ((rc = poll(&pfd, 1, 10000)) < 0 && errno == EINTR) {
            }
            if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
                return fd;
            errno = rc == 1 ? err : ETIMEDOUT;
        }
        close(fd);
        if ((errno != EADDRNOTAVAIL && errno != EAGAIN) || tries > 1000) {
            fprintf(stderr, "fuzz_host: connect to port %d: %s\n", port, strerror(errno));
            fail("connect to the host");
        }
        usleep(10000);
    }
}

static void rst_close(int fd) {
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* Connects and waits for the host to accept: 0, or -1 when a handler
 * closed the host meanwhile (the turns also serve the other connection). */
static int client_connect(void) {
    pn_host_stats st;
    int turns = 0;
    int fd = connect_loopback(pn_host_port(S.h));
    pn_host_get_stats(S.h, &st);
    uint64_t before = st.accepted;
    do {
        if (++turns > TURNS_MAX) fail("the host never accepted");
        pump();
        if (S.closing) {
            rst_close(fd);
            return -1;
        }
        pn_host_get_stats(S.h, &st);
    } while (st.accepted == before);
    S.fd = fd;
    S.eof = 0;
    return 0;
}

/* Closes the socket with a reset, so that neither side keeps a TIME_WAIT
 * entry: thousands of those make the kernel's search for a free port (each
 * host listens on port 0) the slowest part of an input. */
static void close_socket(void) {
    rst_close(S.fd);
    S.fd = -1;
}

static void release_sends(void);

/* Waits for the host to close; sends held meanwhile are let go (they may
 * have paused the link: see release_sends). */
static void wait_eof(const char *why) {
    for (int turns = 0; !S.eof;) {
        if (++turns > TURNS_MAX) fail(why);
        release_sends();
        pump();
        drain();
    }
}

/* A link paused for its kept sends (net.h, PN_SENDS_PAUSE_MARK) reads
 * nothing more until they are done, or for PN_PAUSE_MAX_MS of real time:
 * they go first, so that the host reads what ends the connection. Held
 * calls stay (they do not pause a link) for the close to detach. */
static void release_sends(void) {
    int k = 0;
    for (int i = 0; i < S.nheld; i++) {
        if (pn_request_is_call(S.held[i]))
            S.held[k++] = S.held[i];
        else
            pn_request_done(S.held[i]);
    }
    S.nheld = k;
}

/* Ends a connection with the host closing first, once it has read every
 * byte: a frame the harness left open is completed (0xff header bytes,
 * zero body bytes: either way a frame the host refuses, or at worst an M1
 * it answers), and at a frame boundary a header over the cap closes it. */
static void end_connection(void) {
    static const uint8_t ff[4] = {0xff, 0xff, 0xff, 0xff};
    static const uint8_t zeros[FRAME_CAP] = {0};
    if (debug) fprintf(stderr, "  ending the connection\n");
    for (int round = 0; !S.eof && !S.m_failed; round++) {
        if (round > 4) fail("the host does not close on frames it must refuse");
        if (S.m_hdr == 0)
            send_bytes(ff, 4);
        else if (S.m_hdr < 4)
            send_bytes(ff, (size_t)(4 - S.m_hdr));
        else
            send_bytes(zeros, S.m_left);
        /* Loopback delivery may lag a little behind send(): let it settle. */
        for (int turns = 0; !S.eof && turns < SETTLE_TURNS; turns++) {
            release_sends();
            pump();
            drain();
        }
    }
    wait_eof("the host did not close the connection");
    close_socket();
}

/* The peer's EOF: the host closes on it (then the harness's side keeps a
 * TIME_WAIT entry, so this is the rare ending). */
static void end_with_eof(void) {
    shutdown(S.fd, SHUT_WR);
    wait_eof("the host did not close after the peer's EOF");
    close(S.fd);
    S.fd = -1;
}

static void put_frame_header(uint8_t *p, size_t n) {
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

/* The harness's side of the handshake (modes B and C): the frames are the
 * ones computed at init, the host's M2 is checked against the expected one. */
static void client_handshake(int stranger) {
    int turns = 0;
    send_bytes(m1_buf, sizeof m1_buf);
    while (!S.got_m2) {
        if (S.closing) return; /* a handler, on the connection this one replaces */
        if (S.eof) fail("the host closed instead of answering M1");
        if (++turns > TURNS_MAX) fail("the host never answered M1");
        pump();
        drain();
    }
    pn_noise_cipher_init(&S.tx, k_tx);
    pn_noise_cipher_init(&S.rx, k_rx);
    S.transport = 1; /* before M3 leaves: the host may send at once */
    send_bytes(stranger ? m3_stranger : m3_buf, sizeof m3_buf);
    settle();
}

static int accept_host_key(void *ud, const uint8_t key[PN_NOISE_KEYLEN]) {
    return sodium_memcmp(key, host_pub, PN_KEY_LEN) == 0 ? 0 : PN_ETRUST;
}

static int accept_any_key(void *ud, const uint8_t key[PN_NOISE_KEYLEN]) {
    return 0;
}

/* ---- chunks ------------------------------------------------------------ */

/* Seals pt as one frame and writes it (a flipped tag byte when corrupt). */
static void send_sealed(const uint8_t *pt, size_t len, int corrupt) {
    size_t n = 0;
    pn_err e;
    if (!S.transport) return; /* a reconnect cut short by the host closing */
    if (pn_noise_cipher_encrypt(&S.tx, NULL, 0, pt, len, wire + 4, sizeof wire - 4, &n, &e) != 0)
        fail("seal failed");
    put_frame_header(wire, n);
    if (corrupt) wire[4 + n - 1] ^= 0x01;
    send_bytes(wire, n + 4);
}

/* A valid term: the bytes themselves when they are one, else a binary of them. */
static int make_term(const uint8_t *p, size_t n, pn_etf_buf *out) {
    pn_etf_reader r;
    const uint8_t *s;
    size_t l;
    out->len = 0;
    pn_etf_reader_init(&r, p, n);
    if (n > 0 && pn_etf_skip(&r, &s, &l, NULL) == 0 && pn_etf_finish(&r, NULL) == 0)
        return pn_etf_put_raw(out, p, n, NULL);
    return pn_etf_put_binary(out, p, n, NULL);
}

/* A handle name: an index into names[], or literal bytes. */
static void pick_name(const uint8_t **p, size_t *n, const char **name, size_t *name_len) {
    uint8_t sel = *n ? (*p)[0] : 0;
    if (*n) {
        (*p)++;
        (*n)--;
    }
    if (sel < 0xc0) {
        *name = names[sel % NNAMES];
        *name_len = strlen(*name);
        return;
    }
    size_t l = sel & 0x3f;
    if (l > *n) l = *n;
    *name = (const char *)*p;
    *name_len = l;
    *p += l;
    *n -= l;
}

static uint8_t take(const uint8_t **p, size_t *n) {
    if (!*n) return 0;
    (*n)--;
    return *(*p)++;
}

/* A second connection of the same peer: once it is authenticated the host
 * replaces the first one, which drains (it closes once what is under way on
 * it is done, and the host's calls on it wait for their long timeouts
 * here); the peer drops the first, as a restarted peer's system does, and
 * the chunks go on on the new one. */
static void reconnect(void) {
    int old = S.fd;
    if (S.key != cli_pub) return; /* a stranger never had a connection */
    settle();                     /* what is under way on the old link happens first */
    if (S.closing || S.eof || client_connect() != 0) return;
    S.got_m2 = S.transport = 0;
    S.m_hdr = S.m_failed = 0;
    S.m_len = S.m_left = 0;
    pn_frame_reader_free(S.fr);
    if (!(S.fr = pn_frame_reader_new(FRAME_CAP))) fail("out of memory");
    client_handshake(0);
    rst_close(old);
}

/* Host API calls the harness makes between chunks (mode C). */
static void action(const uint8_t *p, size_t n) {
    pn_host *h = S.h;
    pn_etf_buf t;
    pn_err e;
    uint8_t sel = take(&p, &n), nonce[PN_NONCE_LEN] = {0};
    const char *name = names[take(&p, &n) % NNAMES];
    if (S.closing) return; /* a handler closed the host */
    pn_etf_buf_init(&t, 1u << 20);
    switch (sel % 10) {
        case 0:
            memcpy(nonce, p, n < PN_NONCE_LEN ? n : PN_NONCE_LEN);
            pn_calls_test_ping(h, S.key, n ? nonce : NULL, &e);
            break;
        case 1:
            /* Calling the peer's "close_host" or "untrust": its answer does that here. */
            if (make_term(p, n, &t) == 0 &&
                pn_host_call(h, S.key, name, t.data, t.len, LONG_MS, on_call_done,
                             strcmp(name, "close_host") == 0 ? &cb_closes_host
                             : strcmp(name, "untrust") == 0  ? &cb_untrusts
                                                             : NULL,
                             &e) == 0)
                S.calls_started++;
            break;
        case 2:
            if (make_term(p, n, &t) == 0) pn_host_send(h, S.key, name, t.data, t.len, &e);
            break;
        case 3:
            pn_host_revoke(h, name);
            break;
        case 4:
            pn_host_untrust(h, S.key);
            break;
        case 5:
            pn_host_trust(h, S.key, NULL, &e);
            break;
        case 6:
            answer_held(n && (p[0] & 1));
            break;
        case 7: { /* only while connected: resolves at once and never dials */
            pn_peer_info pi;
            if (pn_host_peer(h, S.key, &pi) == 0 && pi.status == PN_PEER_CONNECTED &&
                pn_host_connect(h, S.key, "127.0.0.1:1", on_connect_done, NULL, &e) == 0)
                S.connects_started++;
            break;
        }
        case 8:
            reconnect();
            break;
        case 9: /* a call that times out: the loop turns until it has */
            if (S.short_calls < SHORT_CALLS_MAX && make_term(p, n, &t) == 0 &&
                pn_host_call(h, S.key, name, t.data, t.len, 1, on_call_done, &S.short_done, &e) ==
                    0) {
                S.calls_started++;
                S.short_calls++;
                for (int turns = 0; S.short_done < S.short_calls && !S.closing; turns++) {
                    if (turns > TURNS_MAX) fail("a call's 1 ms timeout never fired");
                    pump();
                    drain();
                }
            }
            break;
    }
    pn_etf_buf_free(&t);
}

static void typed_chunk(uint8_t ctl, const uint8_t *p, size_t n) {
    int flags = (ctl & C_RAW) ? PN_ENVELOPE_LEGACY_ATOMS : 0, rc = -1;
    int corrupt = (ctl & C_CORRUPT) != 0;
    pn_etf_buf env, term;
    uint8_t nonce[PN_NONCE_LEN] = {0};
    const uint8_t *body = p;
    size_t body_len = n;
    pn_etf_buf_init(&env, 1u << 20);
    pn_etf_buf_init(&term, 1u << 20);
    switch (ctl >> 5) {
        case T_CALL:
        case T_SEND: {
            const char *name;
            size_t name_len;
            uint64_t id = (uint64_t)take(&p, &n) + 1;
            pick_name(&p, &n, &name, &name_len);
            if (make_term(p, n, &term) != 0) break;
            rc = (ctl >> 5) == T_CALL
                     ? pn_envelope_put_call(&env, id, name, name_len, term.data, term.len, flags,
                                            NULL)
                     : pn_envelope_put_send(&env, name, name_len, term.data, term.len, flags, NULL);
            break;
        }
        case T_PING:
            memcpy(nonce, p, n < PN_NONCE_LEN ? n : PN_NONCE_LEN);
            rc = pn_envelope_put_ping(&env, nonce, flags, NULL);
            break;
        case T_PONG:
            if (n == 0 || (p[0] & 1))
                memcpy(nonce, S.last_ping, PN_NONCE_LEN);
            else
                memcpy(nonce, p + 1, n - 1 < PN_NONCE_LEN ? n - 1 : PN_NONCE_LEN);
            rc = pn_envelope_put_pong(&env, nonce, flags, NULL);
            break;
        case T_REPLY: {
            uint8_t how = take(&p, &n), idx = take(&p, &n);
            uint64_t id = (uint64_t)idx + 1;
            if ((how & 2) && S.nids) { /* idx 0: the host's latest call, 1 the one before... */
                int have = S.nids < IDS_MAX ? S.nids : IDS_MAX;
                id = S.ids[(S.nids - 1 - idx % have) % IDS_MAX];
            }
            if (make_term(p, n, &term) != 0) break;
            rc = pn_envelope_put_reply(&env, id, how & 1, term.data, term.len, flags, NULL);
            break;
        }
        case T_SEALED:
            break;
        case T_ACTION:
            action(p, n);
            pn_etf_buf_free(&env);
            pn_etf_buf_free(&term);
            return;
        case T_WIRE:
            send_bytes(p, n);
            pn_etf_buf_free(&env);
            pn_etf_buf_free(&term);
            return;
    }
    /* What the encoders refuse (a bad literal name) goes as it is. */
    if (rc == 0)
        send_sealed(env.data, env.len, corrupt);
    else
        send_sealed(body, body_len, corrupt);
    pn_etf_buf_free(&env);
    pn_etf_buf_free(&term);
}

static void run_chunks(int mode, const uint8_t *p, size_t n) {
    while (n >= 3 && !S.eof) {
        uint8_t ctl = p[0];
        size_t len = (size_t)p[1] << 8 | p[2];
        p += 3;
        n -= 3;
        if (len > n) len = n;
        if (mode == MODE_B) {
            if (ctl & C_RAW)
                send_bytes(p, len);
            else
                send_sealed(p, len, (ctl & C_CORRUPT) != 0);
        } else {
            typed_chunk(ctl, p, len);
        }
        p += len;
        n -= len;
        if (ctl & (C_ANSWER_OK | C_ANSWER_ERR)) answer_held((ctl & C_ANSWER_ERR) != 0);
        if (ctl & C_PUMP) settle();
    }
    settle();
}

/* ---- per input --------------------------------------------------------- */

static void frame_to(uint8_t *out, const uint8_t *body, size_t n) {
    put_frame_header(out, n);
    memcpy(out + 4, body, n);
}

/* One handshake between two core objects; m3 receives the initiator's M3.
 * With keys set, the initiator's transport keys are derived from the
 * chaining key (Noise's Split: HKDF(ck, "")) and checked against both
 * sides' own transport. */
static void handshake_once(const uint8_t *static_priv, uint8_t *m3, int keys) {
    uint8_t body[PN_HANDSHAKE_BODY_MAX], ck[PN_NOISE_HASHLEN], temp[PN_NOISE_HASHLEN];
    uint8_t probe[32] = "probe", ct[sizeof probe + PN_TRANSPORT_TAG], pt[sizeof probe];
    static const uint8_t one = 1, two = 2;
    size_t n = 0;
    pn_handshake *i = pn_handshake_create(PN_NOISE_INITIATOR, static_priv, NULL, accept_host_key,
                                          NULL, NULL),
                 *r = pn_handshake_create(PN_NOISE_RESPONDER, host_secret, NULL, accept_any_key,
                                          NULL, NULL);
    if (!i || !r || pn_handshake_set_ephemeral(i, cli_eph, NULL) != 0 ||
        pn_handshake_set_ephemeral(r, host_eph, NULL) != 0)
        fail("handshake setup");
    if (pn_handshake_write(i, body, sizeof body, &n, NULL) != 0) fail("M1");
    frame_to(m1_buf, body, n);
    if (pn_handshake_read(r, body, n, NULL) != 0 ||
        pn_handshake_write(r, body, sizeof body, &n, NULL) != 0)
        fail("M2");
    frame_to(m2_buf, body, n);
    if (pn_handshake_read(i, body, n, NULL) != 0 ||
        pn_handshake_write(i, body, sizeof body, &n, NULL) != 0)
        fail("M3");
    frame_to(m3, body, n);
    if (pn_handshake_read(r, body, n, NULL) != 0 || pn_handshake_next(i) != PN_HANDSHAKE_DONE ||
        pn_handshake_next(r) != PN_HANDSHAKE_DONE)
        fail("handshake did not finish");
    if (keys) {
        pn_noise_cipher tx, rx;
        if (pn_handshake_chaining_key(i, ck, NULL) != 0) fail("chaining key");
        crypto_auth_hmacsha256(temp, NULL, 0, ck);
        crypto_auth_hmacsha256(k_tx, &one, 1, temp);
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, temp, sizeof temp);
        crypto_auth_hmacsha256_update(&st, k_tx, sizeof k_tx);
        crypto_auth_hmacsha256_update(&st, &two, 1);
        crypto_auth_hmacsha256_final(&st, k_rx);
        pn_noise_cipher_init(&tx, k_tx);
        pn_noise_cipher_init(&rx, k_rx);
        if (pn_noise_cipher_encrypt(&tx, NULL, 0, probe, sizeof probe, ct, sizeof ct, &n, NULL) ||
            pn_handshake_open(r, ct, n, pt, sizeof pt, &n, NULL) || memcmp(pt, probe, n) ||
            pn_handshake_seal(r, probe, sizeof probe, ct, sizeof ct, &n, NULL) ||
            pn_noise_cipher_decrypt(&rx, NULL, 0, ct, n, pt, sizeof pt, &n, NULL) ||
            memcmp(pt, probe, n))
            fail("the derived transport keys do not match the handshake's");
    }
    pn_handshake_free(i);
    pn_handshake_free(r);
}

static void init(void) {
    /* As peernet.h asks of an embedder: a client that resets mid-write
     * must cost the host an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0 || uv_loop_init(&loop) != 0) fail("init");
    memset(cli_static, 0x01, sizeof cli_static);
    memset(cli_eph, 0x02, sizeof cli_eph);
    memset(host_secret, 0x03, sizeof host_secret);
    memset(host_eph, 0x04, sizeof host_eph);
    memset(stranger_static, 0x05, sizeof stranger_static);
    crypto_scalarmult_base(cli_pub, cli_static);
    crypto_scalarmult_base(host_pub, host_secret);
    crypto_scalarmult_base(stranger_pub, stranger_static);
    memset(big, 0, sizeof big);
    big[0] = PN_ETF_TAG_BINARY;
    put_frame_header(big + 1, sizeof big - 5);
    handshake_once(stranger_static, m3_stranger, 0);
    handshake_once(cli_static, m3_buf, 1);
    debug = getenv("FUZZ_HOST_DEBUG") != NULL;
    inited = 1;
}

static void on_log(void *ud, int level, const char *msg) {
    fprintf(stderr, "  host: %s\n", msg);
}

/* Always a logger: its lines format what peers sent (names, ids). */
static void quiet_log(void *ud, int level, const char *msg) {
    if (!msg || strlen(msg) >= 512) fail("a log line longer than the host's buffer");
}

static void debug_stats(void) {
    pn_host_stats st;
    if (!debug || S.closing) return;
    pn_host_get_stats(S.h, &st);
    fprintf(stderr,
            "  stats: accepted %llu failed %llu protocol %llu frames in %llu out %llu, "
            "%u connections\n",
            (unsigned long long)st.accepted, (unsigned long long)st.handshakes_failed,
            (unsigned long long)st.closed_protocol, (unsigned long long)st.frames_in,
            (unsigned long long)st.frames_out, st.connections);
}

static pn_host *host_new(int legacy, int tight) {
    pn_host_config c;
    pn_err e;
    pn_host_config_init(&c);
    c.secret = host_secret;
    c.listen = "127.0.0.1:0";
    c.frame_cap = FRAME_CAP;
    c.max_outbuf = tight ? FRAME_CAP + PN_FRAME_HEADER : MAX_OUTBUF;
    c.max_calls_in_flight = MAX_CALLS;
    c.max_pending_handshakes = MAX_PENDING;
    c.max_connections = MAX_CONNS;
    c.handshake_timeout_ms = LONG_MS;
    c.first_message_timeout_ms = LONG_MS;
    c.handshake_rate = 0; /* a message 1 is never held for a timer */
    c.call_timeout_ms = LONG_MS;
    c.ping_interval_ms = 0;
    c.ping_timeout_ms = LONG_MS;
    c.backoff_min_ms = c.backoff_max_ms = LONG_MS; /* a peer given an address is not redialled */
    c.discovery = 0; /* no broadcasts, no netlink: only the bytes fed in */
    c.netmon = 0;
    c.log = debug ? on_log : quiet_log;
    pn_host *h = pn_host_new(&loop, &c, &e);
    if (!h) {
        fprintf(stderr, "fuzz_host: pn_host_new: %s\n", e.msg);
        abort();
    }
    pn_host_test_set(h, &(pn_host_test_hooks){host_eph, legacy});
    S.h = h;
    if (pn_host_trust(h, cli_pub, NULL, &e) != 0) fail("trust");
    pn_host_on_event(h, on_event, NULL);
    for (size_t i = 0; i < NNAMES; i++) {
        const char *nm = names[i];
        if (strcmp(nm, "nope") == 0 || strcmp(nm, "late") == 0) continue;
        pn_authorize_fn auth = NULL;
        if (strcmp(nm, "secret") == 0) auth = refuse;
        if (strcmp(nm, "fail") == 0 || strcmp(nm, "echo") == 0) auth = allow;
        if (strncmp(nm, "gate_", 5) == 0) auth = gate;
        if (expose(h, nm, handle, auth) != 0) fail("expose");
    }
    return h;
}

/* An idle connection accepted before the fuzz one: the fuzz connection
 * is over max_pending_handshakes of the unheard pool, so the host admits
 * it and closes the idle one (the oldest), without a byte and counted. */
static void evicted_connection(int fd) {
    pn_host_stats st;
    int turns = 0;
    char c;
    for (;;) {
        ssize_t n = recv(fd, &c, 1, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
        if (n > 0) fail("the host sent bytes on an evicted connection");
        if (++turns > TURNS_MAX) fail("the host kept two unheard connections over the pool");
        pump();
        if (S.closing) break;
    }
    if (!S.closing) {
        pn_host_get_stats(S.h, &st);
        if (st.evicted != 1) fail("a connection evicted but not counted");
    }
    rst_close(fd);
}

/* A fresh connection still gets the transcript's M2 for its M1; an over-cap
 * frame header then makes the host close it. */
static void check_still_serves(void) {
    int turns = 0;
    static const uint8_t over_cap[4] = {0xff, 0xff, 0xff, 0xff};
    S.decrypt = 0;
    if (client_connect() != 0) return;
    send_bytes(m1_buf, sizeof m1_buf);
    S.got = 0;
    while (S.got < sizeof m2_buf) {
        ssize_t n = recv(S.fd, S.m2_seen + S.got, sizeof m2_buf - S.got, 0);
        if (n > 0) {
            S.got += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            fail("the host closed a fresh connection instead of answering M1");
        if (++turns > TURNS_MAX) fail("the host no longer answers a handshake");
        pump();
    }
    if (memcmp(S.m2_seen, m2_buf, sizeof m2_buf) != 0) fail("the host answered M1 wrongly");
    if (S.seq % EOF_EVERY == 0) {
        end_with_eof();
    } else {
        send_bytes(over_cap, sizeof over_cap);
        wait_eof("the host did not close on an over-cap header");
        close_socket();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pn_host_stats st;
    int turns = 0, handles = 0;
    if (!inited) init();
    if (size < 1) return 0;
    if (debug) fprintf(stderr, "input of %zu bytes, mode byte 0x%02x\n", size, data[0]);
    uint8_t m = data[0];
    int mode = (m & 3) == 1 ? MODE_B : (m & 3) == 2 ? MODE_C : MODE_A;
    memset(&S, 0, sizeof S);
    S.fd = -1;
    S.seq = ninputs++;
    S.events = (m & F_EVENTS) != 0;
    S.key = (mode != MODE_A && (m & F_STRANGER)) ? stranger_pub : cli_pub;
    host_new((m & F_LEGACY) != 0, (m & F_TIGHT) != 0);
    int idle = mode == MODE_A && (m & F_SECOND) ? connect_loopback(pn_host_port(S.h)) : -1;
    client_connect();
    if (mode == MODE_A) {
        const uint8_t *p = data + 1;
        if (idle >= 0) evicted_connection(idle);
        size_t n = size - 1, split = n ? p[0] : 0;
        if (n) p++, n--;
        for (int writes = 0; n > 0 && !S.eof; writes++) {
            size_t k = split && writes < SPLIT_WRITES_MAX && split < n ? split : n;
            send_bytes(p, k);
            p += k;
            n -= k;
            settle();
        }
    } else {
        S.decrypt = 1;
        S.fr = pn_frame_reader_new(FRAME_CAP);
        if (!S.fr) fail("out of memory");
        client_handshake((m & F_STRANGER) != 0);
        run_chunks(mode, data + 1, size - 1);
    }

    /* A handler or predicate may close the host whenever the loop turns:
     * S.h is not touched once S.closing is set. */
    if (!S.closing && !(m & F_CLOSE_LIVE)) end_connection();
    if (!S.closing && !(m & F_CLOSE_LIVE)) {
        /* An older link of the peer paused for its held sends sees its
         * socket's end only once they are let go and it reads again. */
        for (int t = 0; !S.closing; t++) {
            pn_host_get_stats(S.h, &st);
            if (st.connections == 0 && st.handshaking == 0) break;
            if (t > TURNS_MAX) fail("connections remain after the peer's connection closed");
            release_sends();
            pump();
        }
    }
    if (!S.closing && !(m & F_CLOSE_LIVE)) {
        if (S.ev_up != S.ev_down) fail("connected and disconnected events do not pair up");
        if (S.seq % CHECK_EVERY == 0) check_still_serves();
        pn_host_get_stats(S.h, &st);
        if (st.connections != 0 || st.handshaking != 0)
            fail("connections remain after the check connection closed");
        answer_held((m & F_HELD_ERROR) != 0); /* the connection is gone: dropped */
    }
    if (!S.closing) { /* with F_CLOSE_LIVE, while the connection is still up */
        debug_stats();
        S.closing = 1;
        pn_host_close(S.h, on_closed, NULL);
    }
    answer_held(0); /* detached by the close: dropped */
    while (!S.closed) {
        if (++turns > TURNS_MAX) fail("host close never completed");
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    if (S.fd >= 0) {
        turns = 0;
        while (!S.eof) { /* the host's close reaches the socket */
            if (++turns > TURNS_MAX) fail("the socket never saw the host close");
            drain();
        }
        close_socket();
    }
    S.h = NULL;
    if (debug)
        fprintf(stderr,
                "  calls %u/%u connects %u/%u exposed %u released %u up %u down %u held left "
                "%d\n",
                S.calls_started, S.calls_done, S.connects_started, S.connects_done, S.exposed,
                S.released, S.ev_up, S.ev_down, S.nheld);
    uv_walk(&loop, count_handle, &handles);
    if (handles != 0 || uv_loop_alive(&loop)) fail("the closed host left handles on the loop");
    if (S.calls_started != S.calls_done) fail("a call's callback did not run exactly once");
    if (S.connects_started != S.connects_done) fail("a connect callback did not run");
    if (S.released != S.exposed) fail("a handler was not released exactly once");
    if (S.ev_up != S.ev_down) fail("connected and disconnected events do not pair up");
    pn_noise_cipher_clear(&S.tx);
    pn_noise_cipher_clear(&S.rx);
    pn_frame_reader_free(S.fr);
    return 0;
}
