/*
 * One TCP connection: the handshake with its deadline, then transport
 * frames. Reads decode every complete frame a read delivered; writes are
 * queued into one buffer per connection and leave in one uv_write per loop
 * turn (host.c flushes), bounded by max_outbuf so a peer that stops reading
 * is dropped rather than buffered without end.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"

#define PN_CONN_WHY_MAX 96 /* bytes of a close reason this file formats */

static void conn_free(pn_conn *c) {
    pn_host *h = c->host;
    pn_handshake_free(c->hs);
    pn_frame_reader_free(c->fr);
    free(c->out.data);
    free(c->wout.data);
    free(c->calls);
    free(c->held);
    free(c);
    pn_host_unref(h);
}

/* Its handles have all closed; a lookup still running frees it instead. */
static void on_handles_closed(void *ud) {
    pn_conn *c = ud;
    if (!c->gai_active) conn_free(c);
}

static int on_verify(void *ud, const uint8_t key[PN_NOISE_KEYLEN]) {
    pn_conn *c = ud;
    return pn_policy_verify(c->host, c, key);
}

static void timed_out(pn_conn *c, const char *what, uint32_t ms) {
    char why[PN_CONN_WHY_MAX];
    snprintf(why, sizeof why, "%s within %u ms", what, ms);
    c->host->stats.handshakes_failed++;
    pn_conn_close(c, why);
}

static void on_first_deadline(uv_timer_t *t) {
    pn_conn *c = t->data;
    timed_out(c, "no complete handshake message 1", c->host->cfg.first_message_timeout_ms);
}

static void on_deadline(uv_timer_t *t) {
    pn_conn *c = t->data;
    timed_out(c, "handshake not finished", c->host->cfg.handshake_timeout_ms);
}

static int conn_make_hs(pn_conn *c, pn_err *e) {
    pn_host *h = c->host;
    c->hs = pn_handshake_create(c->initiator ? PN_NOISE_INITIATOR : PN_NOISE_RESPONDER, h->priv,
                                h->pub, on_verify, c, e);
    if (c->hs && h->has_test_eph && pn_handshake_set_ephemeral(c->hs, h->test_eph, e) != 0) {
        pn_handshake_free(c->hs);
        c->hs = NULL;
    }
    return c->hs ? 0 : e->code;
}

static pn_conn *conn_new(pn_host *h, int initiator, pn_err *e) {
    pn_conn *c = calloc(1, sizeof *c);
    if (!c) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    c->host = h;
    c->initiator = initiator;
    /* Until the peer is authenticated only handshake-sized frames are read:
     * a stranger cannot make the host buffer a megabyte per connection. */
    c->fr = pn_frame_reader_new(PN_HANDSHAKE_BODY_MAX);
    if (!c->fr) pn_err_set(e, PN_ENOMEM, "out of memory");
    /* A responder's handshake state (one X25519 operation to set up) is
     * made only once a well-formed message 1 is served: an idle or garbage
     * connection costs no crypto. */
    if (!c->fr || (initiator && conn_make_hs(c, e) != 0)) {
        pn_frame_reader_free(c->fr);
        free(c);
        return NULL;
    }
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    uv_timer_init(h->loop, &c->dead);
    uv_timer_init(h->loop, &c->call_timer);
    uv_timer_init(h->loop, &c->settle);
    uv_timer_init(h->loop, &c->stall);
    uv_timer_init(h->loop, &c->pause);
    c->tcp.data = c->timer.data = c->dead.data = c->call_timer.data = c->settle.data = c;
    c->stall.data = c->pause.data = c;
    pn_host_adopt(h, (uv_handle_t *)&c->tcp);
    pn_host_adopt(h, (uv_handle_t *)&c->timer);
    pn_host_adopt(h, (uv_handle_t *)&c->dead);
    pn_host_adopt(h, (uv_handle_t *)&c->call_timer);
    pn_host_adopt(h, (uv_handle_t *)&c->stall);
    pn_host_adopt(h, (uv_handle_t *)&c->pause);
    /* Not adopted: even a weak host (a run script) waits for its settle
     * pong before its loop ends, so a send made last has been read. */
    c->born_seq = ++h->seq;
    h->refs++;
    pn_list_push_front(&h->conns, &c->link);
    h->stats.connections++;
    h->stats.handshaking++;
    uv_timer_start(&c->timer, on_deadline, h->cfg.handshake_timeout_ms, 0);
    return c;
}

static void name_remote(pn_conn *c) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        snprintf(c->remote, sizeof c->remote, "[%s]:%d", ip,
                 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        snprintf(c->remote, sizeof c->remote, "%s:%d", ip,
                 ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
}

/* ---- writing ---------------------------------------------------------- */

/* Queued bytes past the limit: a frame of our own is refused (the sender
 * waits for "drained"), one the host owes the peer means it does not read
 * its answers. Either way nothing is queued. */
static int out_reserve(pn_conn *c, size_t need, size_t limit, pn_err *e) {
    size_t queued = c->out.len + c->wout.len;
    if (queued + need > limit) {
        if (limit < c->host->cfg.max_outbuf * PN_OUTBUF_OWED_FACTOR)
            return pn_err_set(e, PN_EBUSY, "busy: %zu bytes queued to the peer (max_outbuf %zu)",
                              queued, limit);
        return pn_err_set(e, PN_ELIMIT,
                          "peer is not reading: %zu bytes queued (twice max_outbuf, %zu)",
                          queued + need, limit);
    }
    if (c->out.cap - c->out.len >= need) return 0;
    size_t cap = c->out.cap ? c->out.cap * 2 : 4096;
    while (cap < c->out.len + need)
        cap *= 2;
    uint8_t *p = realloc(c->out.data, cap);
    if (!p) return pn_err_set(e, PN_ENOMEM, "out of memory");
    c->out.data = p;
    c->out.cap = cap;
    return 0;
}

static size_t owed_limit(const pn_conn *c) {
    return c->host->cfg.max_outbuf * PN_OUTBUF_OWED_FACTOR;
}

static int queue_frame(pn_conn *c, const uint8_t *body, size_t len, pn_err *e) {
    int rc = out_reserve(c, PN_FRAME_HEADER + len, owed_limit(c), e);
    if (rc == 0) rc = pn_frame_header(c->out.data + c->out.len, len, c->host->cfg.frame_cap, e);
    if (rc != 0) {
        pn_conn_close(c, e->msg);
        return rc;
    }
    memcpy(c->out.data + c->out.len + PN_FRAME_HEADER, body, len);
    c->out.len += PN_FRAME_HEADER + len;
    c->host->stats.frames_out++;
    pn_host_mark_dirty(c->host, c);
    return 0;
}

static int write_now(pn_conn *c);
static void write_queued(pn_conn *c);

/* A batch past PN_FLUSH_EARLY leaves now rather than at the end of the
 * turn: the peer opens it while we seal the next, instead of each side
 * waiting for the other's whole batch (pipelined calls and bulk echo:
 * both sides were half idle). A lone small frame still waits for the end
 * of the turn, with whatever else comes. While our write is in flight but
 * all in the kernel already, what follows it can go straight to the
 * socket, in order. */
static void flush_early(pn_conn *c) {
    if (c->hold) return; /* M3 leaves alone (ping.c, "settling") */
    /* Behind a write request, only once libuv holds none of it: in order. */
    if (c->writing && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) != 0) return;
    /* What the kernel takes goes now; what follows a write (drained, a
     * retiring link's close) waits for the loop's flush (c is dirty), as
     * after a write request: we are inside a send or a reply, and a run
     * script's "drained" could close the runtime under the handler whose
     * reply this is. */
    if (!write_now(c) && !c->writing) write_queued(c);
}

static int queue_sealed(pn_conn *c, const pn_etf_buf *pt, size_t limit, pn_err *e) {
    if (c->state != PN_CONN_LIVE) return pn_err_set(e, PN_ESTATE, "connection is closing");
    size_t body = pt->len + PN_TRANSPORT_TAG;
    if (body > c->host->cfg.frame_cap)
        return pn_err_set(e, PN_ETOOBIG, "message of %zu bytes is over the frame cap (%u)", body,
                          c->host->cfg.frame_cap);
    int rc = out_reserve(c, PN_FRAME_HEADER + body, limit, e);
    if (rc == PN_EBUSY) return rc; /* our own frame waits for room; the link stays */
    size_t n = 0;
    if (rc == 0) rc = pn_frame_header(c->out.data + c->out.len, body, c->host->cfg.frame_cap, e);
    if (rc == 0)
        rc = pn_handshake_seal(c->hs, pt->data, pt->len, c->out.data + c->out.len + PN_FRAME_HEADER,
                               c->out.cap - c->out.len - PN_FRAME_HEADER, &n, e);
    if (rc != 0) { /* unread answers, or the send counter is spent: either way the link is over */
        pn_conn_close(c, e->msg);
        return rc;
    }
    c->out.len += PN_FRAME_HEADER + n;
    c->host->stats.frames_out++;
    pn_host_mark_dirty(c->host, c);
    if (c->out.len >= PN_FLUSH_EARLY) flush_early(c);
    return 0;
}

int pn_conn_queue_envelope(pn_conn *c, const pn_etf_buf *pt, pn_err *e) {
    return queue_sealed(c, pt, owed_limit(c), e);
}

int pn_conn_queue_own(pn_conn *c, const pn_etf_buf *pt, pn_err *e) {
    return queue_sealed(c, pt, c->host->cfg.max_outbuf, e);
}

/* ---- a peer that stops reading ------------------------------------------ */

/* Bytes the kernel has taken: completed writes, and the part of the one in
 * flight that libuv no longer holds. */
static uint64_t written_so_far(pn_conn *c) {
    if (!c->writing) return c->written;
    return c->written + c->wout.len - uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
}

/* A peer that reads, however slowly, keeps its link: it is closed only when
 * a write has waited stall_timeout with not one byte taken. Checked four
 * times per stall_timeout, so it closes within 1.25 of it. */
static void on_stall_tick(uv_timer_t *t) {
    pn_conn *c = t->data;
    pn_host *h = c->host;
    uint64_t now = uv_now(h->loop), w = written_so_far(c);
    if (!c->writing) {
        uv_timer_stop(&c->stall);
        return;
    }
    if (w != c->stall_mark) {
        c->stall_mark = w;
        c->progress_ms = now;
        return;
    }
    if (now - c->progress_ms < h->cfg.stall_timeout_ms) return;
    char why[PN_CONN_WHY_MAX];
    snprintf(why, sizeof why, "peer read nothing for %u ms (stall_timeout): %zu bytes queued",
             h->cfg.stall_timeout_ms, c->out.len + c->wout.len);
    h->stats.stalled++;
    pn_conn_close(c, why);
}

/* A write the kernel could not take whole: the peer's window is full. */
static void stall_watch(pn_conn *c) {
    if (uv_is_active((uv_handle_t *)&c->stall)) return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) return;
    uint32_t tick = c->host->cfg.stall_timeout_ms / PN_STALL_TICKS;
    c->stall_mark = written_so_far(c);
    c->progress_ms = uv_now(c->host->loop);
    uv_timer_start(&c->stall, on_stall_tick, tick ? tick : 1, tick ? tick : 1);
}

/* Told busy, a sender waits for this: once, at the low-water mark, so it
 * resumes with room for a burst rather than one frame at a time. */
static int drain_due(pn_conn *c) {
    int due = c->drain_wanted && c->peer &&
              c->out.len <= c->host->cfg.max_outbuf / PN_SEND_LOW_WATER_SHARE;
    if (due) c->drain_wanted = 0;
    return due;
}

/* What follows bytes the kernel has taken, whichever way they went. */
static void wrote(pn_conn *c) {
    pn_ping_written(c);
    int drained = drain_due(c);
    pn_conn_flush(c); /* what queued up meanwhile leaves in one write */
    if (drained && c->state == PN_CONN_LIVE) pn_host_emit(c->host, PN_EVENT_DRAINED, c->peer, NULL);
}

static void on_written(uv_write_t *req, int status) {
    pn_conn *c = req->data;
    c->writing = 0;
    c->written += c->wout.len;
    c->wout.len = 0;
    /* An idle link holds no write buffer: what queues up next gets a fresh
     * one (a malloc per write, not per frame). Keeping both buffers cost
     * 8 KiB per idle connection, two thirds of its memory. */
    free(c->wout.data);
    c->wout.data = NULL;
    c->wout.cap = 0;
    if (c->state == PN_CONN_CLOSING) return;
    if (status < 0) {
        char why[PN_CONN_WHY_MAX];
        snprintf(why, sizeof why, "write failed: %s", uv_strerror(status));
        pn_conn_close(c, why);
        return;
    }
    wrote(c);
}

/* Hands the queue to the socket at once when the kernel takes it whole:
 * no write request, so no callback a loop turn later and no epoll_ctl
 * (libuv re-arms the watcher after every uv_write). 1 when all of it went. */
static int write_now(pn_conn *c) {
    uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n <= 0) return 0; /* EAGAIN: uv_write waits for room */
    c->written += (size_t)n;
    c->host->stats.writes++;
    if ((size_t)n < c->out.len) {
        memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
        c->out.len -= (size_t)n;
        return 0;
    }
    free(c->out.data); /* as on_written: an idle link holds no buffer */
    c->out.data = NULL;
    c->out.len = c->out.cap = 0;
    return 1;
}

#define RETIRED_WHY "replaced by a newer connection to the same peer"

void pn_conn_flush(pn_conn *c) {
    if (c->retiring == 2 && c->state == PN_CONN_LIVE && c->ncalls == 0 && c->reqs.len == 0 &&
        c->out.len == 0 && !c->writing) {
        pn_conn_close(c, RETIRED_WHY);
        return;
    }
    if (c->writing || c->state == PN_CONN_CLOSING) return;
    if (c->out.len == 0) {
        /* flush_early's write took it all: a sender told busy hears it
         * here, from the loop. */
        if (drain_due(c) && c->state == PN_CONN_LIVE)
            pn_host_emit(c->host, PN_EVENT_DRAINED, c->peer, NULL);
        return;
    }
    if (c->state == PN_CONN_RESOLVING || c->state == PN_CONN_CONNECTING) return;
    if (!c->hold && write_now(c)) {
        wrote(c);
        return;
    }
    write_queued(c);
}

/* Hands the queue (M3 alone when it leads: c->hold) to a write request. */
static void write_queued(pn_conn *c) {
    if (c->hold && c->hold < c->out.len) {
        /* M3 leaves alone; what was queued behind it follows in the next
         * write, a segment of its own (ping.c, "settling"). */
        if (c->wout.cap < c->hold) {
            uint8_t *p = realloc(c->wout.data, c->hold); /* a handshake frame: bounded */
            if (!p) {
                pn_conn_close(c, "out of memory");
                return;
            }
            c->wout.data = p;
            c->wout.cap = c->hold;
        }
        memcpy(c->wout.data, c->out.data, c->hold);
        memmove(c->out.data, c->out.data + c->hold, c->out.len - c->hold);
        c->out.len -= c->hold;
        c->wout.len = c->hold;
    } else {
        pn_bytes t = c->wout;
        c->wout = c->out;
        c->out = t;
    }
    c->hold = 0;
    uv_buf_t b = uv_buf_init((char *)c->wout.data, (unsigned)c->wout.len);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc != 0) {
        c->wout.len = 0;
        char why[PN_CONN_WHY_MAX];
        snprintf(why, sizeof why, "write failed: %s", uv_strerror(rc));
        pn_conn_close(c, why);
        return;
    }
    c->writing = 1;
    c->host->stats.writes++;
    stall_watch(c);
}

/* First the grace, then the deadline (c->retire_due). */
static void on_retire_tick(uv_timer_t *t) {
    pn_conn *c = t->data;
    uint64_t now = uv_now(c->host->loop);
    if (now >= c->retire_due) {
        pn_conn_close(c, RETIRED_WHY " (what was under way did not finish in time)");
        return;
    }
    c->retiring = 2;
    uv_timer_start(&c->timer, on_retire_tick, c->retire_due - now, 0);
    pn_host_mark_dirty(c->host, c); /* idle already: it closes this turn */
}

/* Closing the replaced link at once would fail the calls still in flight
 * on it and drop the answers it carries to the peer's calls, which a
 * steady stream of calls would see at every swap. So it drains: nothing
 * new is sent on it (the peer has the new link), what is under way
 * finishes, and it closes when the peer closes it, or once idle after
 * PN_RETIRE_GRACE_MS, or at the latest after call_timeout. The grace is
 * for the Elixir reference: it closes its old link itself once it has
 * registered the new one, and a close from us before that would fail
 * its call in flight on it with connection_closed.
 *
 * A peer has at most one link draining: replacing a second time closes
 * the older replaced link at once. Otherwise a trusted peer reconnecting
 * in a loop, with a slow call on each link, would hold a link, and up to
 * frame_cap of a frame on it, per reconnect until call_timeout: all of
 * max_connections within a second. A peer that restarts once has one old
 * link, and the reference closes it itself. */
void pn_conn_retire(pn_conn *c) {
    if (c->state != PN_CONN_LIVE || c->retiring) return;
    pn_peer *p = c->peer;
    if (p && p->retired && p->retired != c)
        pn_conn_close(p->retired, RETIRED_WHY " twice: the older replaced link closes at once");
    if (p) p->retired = c;
    uint32_t grace = PN_RETIRE_GRACE_MS < c->host->cfg.call_timeout_ms
                         ? PN_RETIRE_GRACE_MS
                         : c->host->cfg.call_timeout_ms;
    c->retiring = 1;
    c->retire_due = uv_now(c->host->loop) + c->host->cfg.call_timeout_ms;
    c->settling = 0;
    uv_timer_stop(&c->settle);
    uv_timer_start(&c->timer, on_retire_tick, grace, 0);
}

/* ---- reading ---------------------------------------------------------- */

static void established(pn_conn *c) {
    pn_host *h = c->host;
    c->state = PN_CONN_LIVE;
    h->stats.handshaking--;
    pn_admit_stage(h, c, PN_STAGE_NONE);
    pn_frame_reader_set_cap(c->fr, h->cfg.frame_cap);
    uv_timer_stop(&c->timer);
    c->live_seq = ++h->seq;
    pn_policy_established(h, c);
    if (c->state != PN_CONN_LIVE) return; /* lost the tie-break */
    pn_ping_start(c);
}

static int handshake_write(pn_conn *c) {
    uint8_t body[PN_HANDSHAKE_BODY_MAX];
    size_t n = 0;
    pn_err e;
    if (pn_handshake_write(c->hs, body, sizeof body, &n, &e) != 0) {
        c->host->stats.handshakes_failed++;
        pn_conn_close(c, e.msg);
        return -1;
    }
    if (queue_frame(c, body, n, &e) != 0) return -1;
    if (pn_handshake_next(c->hs) == PN_HANDSHAKE_DONE) {
        c->hold = c->out.len; /* M3: see ping.c, "settling" */
        established(c);
    }
    return 0;
}

static void on_transport(pn_conn *c, const pn_frame *f) {
    pn_host *h = c->host;
    pn_err e;
    size_t n = 0;
    pn_envelope env;
    if (pn_handshake_open(c->hs, f->data, f->len, h->ptbuf, h->cfg.frame_cap, &n, &e) != 0 ||
        pn_envelope_decode(h->ptbuf, n, &env, &e) != 0) {
        h->stats.closed_protocol++;
        pn_conn_close(c, e.msg);
        return;
    }
    c->peer->last_seen_ms = uv_now(h->loop) | 1; /* never 0 once seen */
    switch (env.kind) {
        case PN_ENV_PING:
            h->scratch.len = 0;
            if (pn_envelope_put_pong(&h->scratch, env.nonce, h->env_flags, &e) == 0)
                pn_conn_queue_envelope(c, &h->scratch, &e);
            break;
        case PN_ENV_PONG:
            pn_ping_pong(c, env.nonce);
            break;
        case PN_ENV_REPLY:
            pn_calls_complete(c, &env);
            break;
        case PN_ENV_CALL:
        case PN_ENV_SEND:
            pn_dispatch(h, c, &env);
            break;
    }
}

/* A responder's message 1: checked for size and header (no crypto), then
 * served now or queued for the handshake budget (admit.c). */
static void on_first_message(pn_conn *c, const pn_frame *f) {
    pn_host *h = c->host;
    pn_err e;
    if (pn_handshake_check_body(0, f->data, f->len, &e) != 0) {
        h->stats.handshakes_failed++;
        pn_conn_close(c, e.msg);
        return;
    }
    memcpy(c->m1, f->data, PN_HANDSHAKE_M1_BODY);
    /* From here the whole-handshake deadline, counted from the accept. */
    uint64_t spent = uv_now(h->loop) - c->accepted_ms;
    uint64_t left = spent < h->cfg.handshake_timeout_ms ? h->cfg.handshake_timeout_ms - spent : 0;
    uv_timer_start(&c->timer, on_deadline, left ? left : 1, 0);
    int rc = pn_admit_heard(h, c);
    if (rc > 0) {
        pn_conn_serve_m1(c);
    } else if (rc == 0) {
        uv_read_stop((uv_stream_t *)&c->tcp); /* nothing more is due from it before message 2 */
    }
}

static void on_frame(pn_conn *c, const pn_frame *f) {
    if (c->state == PN_CONN_LIVE) {
        on_transport(c, f);
        return;
    }
    if (c->stage == PN_STAGE_UNHEARD) {
        on_first_message(c, f);
        return;
    }
    pn_err e;
    int rc = pn_handshake_next(c->hs) == PN_HANDSHAKE_READ
                 ? pn_handshake_read(c->hs, f->data, f->len, &e)
                 : pn_err_set(&e, PN_ESTATE, "handshake: frame out of turn");
    if (rc != 0) {
        c->host->stats.handshakes_failed++;
        pn_conn_close(c, c->fail[0] ? c->fail : e.msg);
        return;
    }
    switch (pn_handshake_next(c->hs)) {
        case PN_HANDSHAKE_WRITE:
            handshake_write(c);
            break;
        case PN_HANDSHAKE_DONE:
            established(c);
            break;
        default:
            break;
    }
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    pn_conn *c = hd->data;
    *buf = uv_buf_init((char *)c->host->rbuf, sizeof c->host->rbuf);
}

static void feed(pn_conn *c, const uint8_t *p, size_t n);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    pn_conn *c = s->data;
    if (nread == 0 || c->state == PN_CONN_CLOSING) return;
    if (nread < 0) {
        char why[PN_CONN_WHY_MAX];
        snprintf(why, sizeof why, "%s",
                 nread == UV_EOF ? "peer closed the connection" : uv_strerror((int)nread));
        pn_conn_close(c, why);
        return;
    }
    feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* Serves the frames in p; when reading pauses meanwhile, what is left of
 * p waits in c->held (at most one read's worth), so a pause is exact. */
static void feed(pn_conn *c, const uint8_t *p, size_t n) {
    for (;;) {
        pn_frame f;
        pn_err e;
        int rc = pn_frame_feed(c->fr, &p, &n, &f, &e);
        if (rc == 0) return;
        if (rc < 0) {
            c->host->stats.closed_protocol++;
            pn_conn_close(c, e.msg);
            return;
        }
        c->host->stats.frames_in++;
        on_frame(c, &f);
        if (c->state == PN_CONN_CLOSING) return;
        if (c->stage == PN_STAGE_WAITING) {
            /* An initiator says nothing more until it has message 2. */
            if (n > 0 || pn_frame_buffered(c->fr))
                pn_conn_close(c, "handshake: bytes after message 1 before message 2");
            return;
        }
        if (c->read_paused && n > 0) {
            c->held = malloc(n);
            if (!c->held) {
                pn_conn_close(c, "out of memory");
                return;
            }
            memcpy(c->held, p, n);
            c->held_len = n;
            return;
        }
    }
}

/* ---- reading paused (dispatch.c pauses, request.c resumes) ---------------- */

/* Once to end a pause that ran PN_PAUSE_MAX_MS (the handlers are stuck:
 * reading goes on, and no new pause until they catch up, so the peer's
 * pongs, its calls and its close are seen), once, at 0 ms, to go on after
 * a resume outside the read path: the held bytes, then reading. */
static void on_pause_timer(uv_timer_t *t) {
    pn_conn *c = t->data;
    if (c->state != PN_CONN_LIVE) return;
    if (c->read_paused) {
        c->read_paused = 0;
        c->pause_spent = 1;
    }
    if (c->held) {
        uint8_t *held = c->held;
        size_t len = c->held_len;
        c->held = NULL;
        c->held_len = 0;
        feed(c, held, len); /* may pause again, holding what is left */
        free(held);
        if (c->state != PN_CONN_LIVE || c->read_paused) return;
    }
    if (c->read_stopped) {
        c->read_stopped = 0;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            pn_conn_close(c, "read failed after a pause");
    }
}

void pn_conn_pause(pn_conn *c) {
    if (c->state != PN_CONN_LIVE || c->read_paused || c->pause_spent || c->ncalls > 0) return;
    c->read_paused = 1;
    if (!c->read_stopped) {
        c->read_stopped = 1;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    uv_timer_start(&c->pause, on_pause_timer, PN_PAUSE_MAX_MS, 0);
}

void pn_conn_resume(pn_conn *c) {
    if (!c->read_paused || c->state != PN_CONN_LIVE) return;
    c->read_paused = 0;
    uv_timer_start(&c->pause, on_pause_timer, 0, 0); /* not from inside a read */
}

void pn_conn_serve_m1(pn_conn *c) {
    pn_err e;
    int reading = uv_is_active((uv_handle_t *)&c->tcp);
    if (c->state != PN_CONN_HANDSHAKE) return;
    if (conn_make_hs(c, &e) != 0 || pn_handshake_read(c->hs, c->m1, sizeof c->m1, &e) != 0) {
        c->host->stats.handshakes_failed++;
        pn_conn_close(c, c->fail[0] ? c->fail : e.msg);
        return;
    }
    if (handshake_write(c) != 0) return; /* M2 */
    if (!reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        pn_conn_close(c, "read failed after message 2");
}

static void src_of(pn_conn *c) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET) {
        memcpy(c->src, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        c->src_len = 4;
    } else if (ss.ss_family == AF_INET6) {
        const uint8_t *a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
        int mapped = IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr);
        /* An IPv6 host picks any address in its /64: the prefix is the source. */
        memcpy(c->src, mapped ? a + 12 : a, mapped ? 4 : 8);
        c->src_len = mapped ? 4 : 8;
    }
}

int pn_conn_m1_waiting(pn_conn *c) {
    uv_os_fd_t fd;
    uint8_t peek[PN_FRAME_HEADER + PN_HANDSHAKE_M1_BODY];
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return 0;
    return recv(fd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT) == (ssize_t)sizeof peek;
}

/* A message 1 that is already there is read at once, not on a later loop
 * turn: a connection storm accepts dozens in one go, and a peer that spoke
 * at once must be heard before idle newcomers can push it out. Reads at
 * most one message 1; libuv reads the rest as usual. */
static void read_now(pn_conn *c) {
    uv_os_fd_t fd;
    uint8_t *buf = c->host->rbuf;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return;
    ssize_t n = recv(fd, buf, PN_FRAME_HEADER + PN_HANDSHAKE_M1_BODY, MSG_DONTWAIT);
    if (n <= 0) return; /* nothing yet, or an end libuv's own read reports */
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
    on_read((uv_stream_t *)&c->tcp, n, &b);
}

static void start_reading(pn_conn *c) {
    uv_tcp_nodelay(&c->tcp, 1); /* small request/reply traffic must not wait for Nagle */
    name_remote(c);
    c->state = PN_CONN_HANDSHAKE;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc != 0) {
        char why[PN_CONN_WHY_MAX];
        snprintf(why, sizeof why, "read failed: %s", uv_strerror(rc));
        pn_conn_close(c, why);
    }
}

pn_conn *pn_conn_accept(pn_host *h, pn_err *e) {
    pn_conn *c = conn_new(h, 0, e);
    if (!c) return NULL;
    int rc = uv_accept((uv_stream_t *)&h->listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        pn_err_set(e, PN_EIO, "accept: %s", uv_strerror(rc));
        pn_conn_close(c, e->msg);
        return NULL;
    }
    start_reading(c);
    if (c->state != PN_CONN_HANDSHAKE) return NULL;
    c->accepted_ms = uv_now(h->loop);
    uint32_t first = h->cfg.first_message_timeout_ms;
    if (first && first < h->cfg.handshake_timeout_ms)
        uv_timer_start(&c->timer, on_first_deadline, first, 0);
    src_of(c);
    pn_admit_accepted(h, c);
    read_now(c);
    if (c->stage == PN_STAGE_UNHEARD) pn_admit_make_room(h, c);
    return c; /* accepted, even if what it sent closed it already */
}

/* ---- dialling ---------------------------------------------------------- */

static void on_connected(uv_connect_t *req, int status) {
    pn_conn *c = req->data;
    if (c->state == PN_CONN_CLOSING) return;
    if (status < 0) {
        char why[PN_ADDR_MAX + 64];
        snprintf(why, sizeof why, "connect to %s: %s", c->remote, uv_strerror(status));
        pn_conn_close(c, why);
        return;
    }
    start_reading(c);
    if (c->state == PN_CONN_HANDSHAKE) handshake_write(c); /* M1 */
}

static void connect_to(pn_conn *c, const struct sockaddr *sa) {
    c->state = PN_CONN_CONNECTING;
    c->connect_req.data = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connected);
    if (rc != 0) {
        char why[PN_ADDR_MAX + 64];
        snprintf(why, sizeof why, "connect to %s: %s", c->remote, uv_strerror(rc));
        pn_conn_close(c, why);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    pn_conn *c = req->data;
    c->gai_active = 0;
    if (c->state == PN_CONN_CLOSING) {
        if (res) uv_freeaddrinfo(res);
        if (c->closing.open == 0) conn_free(c);
        return;
    }
    if (status < 0 || !res) {
        char why[PN_ADDR_MAX + 64];
        snprintf(why, sizeof why, "resolve %s: %s", c->remote, uv_strerror(status));
        if (res) uv_freeaddrinfo(res);
        pn_conn_close(c, why);
        return;
    }
    connect_to(c, res->ai_addr);
    uv_freeaddrinfo(res);
}

int pn_conn_dial(pn_host *h, pn_peer *p, const char *addr, pn_err *e) {
    char host[PN_ADDR_MAX + 1];
    uint16_t port;
    if (pn_addr_split(addr, host, sizeof host, &port, e) != 0) return e->code;
    pn_conn *c = conn_new(h, 1, e);
    if (!c) return e->code;
    /* Set before anything can fail: a failure closes c through the host,
     * which then reports the dial and schedules the next one. */
    p->dialing = c;
    c->peer = p;
    c->has_expect = 1;
    memcpy(c->expect, p->key, PN_KEY_LEN);
    snprintf(c->remote, sizeof c->remote, "%s", addr);
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } sa;
    if (uv_ip4_addr(host, port, &sa.in4) == 0 || uv_ip6_addr(host, port, &sa.in6) == 0) {
        connect_to(c, &sa.sa);
        return 0;
    }
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->state = PN_CONN_RESOLVING;
    c->gai.data = c;
    int rc = uv_getaddrinfo(h->loop, &c->gai, on_resolved, host, portstr, &hints);
    if (rc != 0) {
        char why[PN_ADDR_MAX + 64];
        snprintf(why, sizeof why, "resolve %s: %s", addr, uv_strerror(rc));
        pn_conn_close(c, why);
        return 0;
    }
    c->gai_active = 1;
    return 0;
}

/* ---- closing ----------------------------------------------------------- */

void pn_conn_close(pn_conn *c, const char *why) {
    if (c->state == PN_CONN_CLOSING) return;
    pn_host *h = c->host;
    if (c->state != PN_CONN_LIVE) h->stats.handshaking--;
    c->state = PN_CONN_CLOSING;
    pn_admit_stage(h, c, PN_STAGE_NONE);
    if (c->peer && c->peer->retired == c) c->peer->retired = NULL;
    pn_list_remove(&h->conns, &c->link);
    h->stats.connections--;
    pn_list_remove(&h->dirty, &c->dirty); /* it must not be flushed after it is freed */
    pn_calls_fail_all(c);
    pn_request_detach_all(c);
    pn_policy_conn_closed(h, c, why);
    if (c->gai_active) uv_cancel((uv_req_t *)&c->gai);
    uv_handle_t *hs[] = {PN_HANDLE(&c->tcp),        PN_HANDLE(&c->timer),  PN_HANDLE(&c->dead),
                         PN_HANDLE(&c->call_timer), PN_HANDLE(&c->settle), PN_HANDLE(&c->stall),
                         PN_HANDLE(&c->pause)};
    pn_handles_close(&c->closing, hs, sizeof hs / sizeof hs[0], on_handles_closed, c);
}
