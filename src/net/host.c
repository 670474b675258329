/*
 * The host: configuration, the listening socket, the registry's policy
 * (one live connection per peer, tie-break, redial with backoff, trust),
 * handlers and dispatch. Connections live in conn.c, calls in calls.c.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

void pn_host_config_init(pn_host_config *c) {
    memset(c, 0, sizeof *c);
    c->frame_cap = PN_FRAME_DEFAULT_CAP;
    c->handshake_timeout_ms = 10000;
    c->call_timeout_ms = 5000;
    c->ping_interval_ms = 30000;
    c->ping_timeout_ms = 60000;
    c->backoff_min_ms = 500;
    c->backoff_max_ms = 30000;
    c->max_pending_handshakes = 64;
    c->max_pending_per_source = 16;
    c->first_message_timeout_ms = 2000;
    c->handshake_rate = 1000;
    c->log_window_ms = 10000;
    c->max_connections = 1024;
    c->max_calls_in_flight = 4096;
    c->max_outbuf = 8u << 20;
    c->discovery = 1;
    c->announce_port = PN_DEFAULT_PORT;
    c->announce_interval_ms = 5000;
    c->broadcast = "255.255.255.255";
    c->announce_v6 = 1;
    c->netmon = 1;
    c->probe_timeout_ms = 2000;
}

double pn_wall_now(void) {
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0) return 0;
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

uint64_t pn_host_random_u64(pn_host *h) {
    uint64_t v;
    if (h->random_left < sizeof v) {
        randombytes_buf(h->random_pool, sizeof h->random_pool);
        h->random_left = sizeof h->random_pool;
    }
    h->random_left -= sizeof v;
    memcpy(&v, h->random_pool + h->random_left, sizeof v);
    sodium_memzero(h->random_pool + h->random_left, sizeof v); /* an id is drawn once */
    return v;
}

/* Every line is escaped: names, reasons and addresses in it may come from
 * the wire, and one event must stay one line. */
static void log_escaped(pn_host *h, int level, const char *raw) {
    char msg[PN_LOGLINE_MSG_MAX + 128];
    pn_logline_escape(msg, sizeof msg, raw);
    h->cfg.log(h->cfg.log_ud, level, msg);
}

void pn_host_log(pn_host *h, int level, const char *fmt, ...) {
    if (!h->cfg.log) return;
    char msg[PN_LOGLINE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_escaped(h, level, msg);
}

/* Lines and summaries from the limiter, already escaped. */
static void emit_line(void *ud, int level, const char *msg) {
    pn_host *h = ud;
    if (h->cfg.log) h->cfg.log(h->cfg.log_ud, level, msg);
}

static void on_log_timer(uv_timer_t *t) {
    pn_host *h = t->data;
    uint64_t now = uv_now(h->loop);
    uint64_t next = pn_logline_limit_flush(&h->loglimit, now, emit_line, h);
    if (next && !h->closing) uv_timer_start(&h->log_timer, on_log_timer, next - now, 0);
}

void pn_host_log_limited(pn_host *h, int level, const char *key, const char *fmt, ...) {
    if (!h->cfg.log) return;
    char raw[PN_LOGLINE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (!pn_logline_limit_write(&h->loglimit, uv_now(h->loop), key, level, raw, emit_line, h))
        h->stats.log_suppressed++;
    if (!uv_is_active((uv_handle_t *)&h->log_timer) && !h->closing)
        uv_timer_start(&h->log_timer, on_log_timer, h->cfg.log_window_ms, 0);
}

uint32_t pn_host_log_window(const pn_host *h) {
    return h->cfg.log_window_ms;
}

/* Short form of a key for log lines: the first 8 bytes in hex. */
static const char *short_key(const uint8_t key[PN_KEY_LEN], char out[17]) {
    sodium_bin2hex(out, 17, key, 8);
    return out;
}

static void host_free(pn_host *h) {
    void (*cb)(void *) = h->on_closed;
    void *ud = h->on_closed_ud;
    free(h->ptbuf);
    pn_etf_buf_free(&h->scratch);
    sodium_memzero(h->priv, sizeof h->priv);
    sodium_memzero(h->test_eph, sizeof h->test_eph);
    free(h);
    if (cb) cb(ud);
}

void pn_host_unref(pn_host *h) {
    if (--h->refs == 0 && h->closing) host_free(h);
}

void pn_host_adopt(pn_host *h, uv_handle_t *handle) {
    if (h->cfg.weak) uv_unref(handle);
}

static void on_handle_closed(uv_handle_t *hd) {
    pn_host_unref(hd->data);
}

/* ---- the loop turn: flush writes, report deferred results -------------- */

static void run_resolved(pn_host *h) {
    while (h->resolved) {
        pn_waiter *w = h->resolved;
        h->resolved = w->next;
        w->cb(h, w->status, w->status ? w->msg : NULL, w->ud);
        free(w);
    }
}

static void on_turn(pn_host *h) {
    while (h->dirty) {
        pn_conn *c = h->dirty;
        h->dirty = c->next_dirty;
        c->next_dirty = NULL;
        c->dirty = 0;
        pn_conn_flush(c);
    }
    pn_calls_run_completed(h);
    run_resolved(h);
    if (!h->dirty && !h->completed && !h->resolved) uv_idle_stop(&h->flush_idle);
}

static void on_check(uv_check_t *t) {
    on_turn(t->data);
}
static void on_idle(uv_idle_t *t) {
    on_turn(t->data);
}

void pn_host_mark_dirty(pn_host *h, pn_conn *c) {
    if (c && !c->dirty) {
        c->dirty = 1;
        c->next_dirty = h->dirty;
        h->dirty = c;
    }
    /* An active idle handle makes poll return at once, so writes queued by
     * a timer leave in this turn; the check handle flushes after I/O. */
    if (!h->closing) uv_idle_start(&h->flush_idle, on_idle);
}

/* ---- listening --------------------------------------------------------- */

static void on_refused_closed(uv_handle_t *hd) {
    pn_host *h = hd->data;
    free(hd);
    pn_host_unref(h);
}

static void on_connection(uv_stream_t *server, int status) {
    pn_host *h = server->data;
    pn_err e;
    if (status < 0) {
        pn_host_log_limited(h, PN_LOG_WARN, "accept", "accept: %s", uv_strerror(status));
        return;
    }
    /* The pending pools never refuse (admit.c closes their oldest); only
     * the bound on all connections does. */
    if (h->stats.connections >= h->cfg.max_connections) {
        /* Accept and close at once: leaving it in the backlog would make the
         * listener report it again on every turn. */
        uv_tcp_t *t = malloc(sizeof *t);
        if (!t) return;
        uv_tcp_init(h->loop, t);
        pn_host_adopt(h, (uv_handle_t *)t);
        t->data = h;
        h->refs++;
        uv_accept(server, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, on_refused_closed);
        h->stats.refused++;
        pn_host_log_limited(h, PN_LOG_WARN, "refused",
                            "connection refused: %u connections open (max_connections %u)",
                            h->stats.connections, h->cfg.max_connections);
        return;
    }
    if (pn_conn_accept(h, &e)) h->stats.accepted++;
}

static int bind_listen(pn_host *h, const char *listen, pn_err *e) {
    char host[PN_ADDR_MAX + 1];
    uint16_t port = PN_DEFAULT_PORT;
    int rc;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } sa;
    int any = listen == NULL;
    if (any) {
        uv_ip6_addr("::", port, &sa.in6); /* dual stack: IPv4 arrives mapped */
    } else {
        /* Port 0 (pick a free one) is fine here but never in a dial address. */
        char tmp[PN_ADDR_MAX + 1];
        size_t n = strlen(listen);
        int zero = n >= 2 && n < sizeof tmp && strcmp(listen + n - 2, ":0") == 0;
        snprintf(tmp, sizeof tmp, "%s", listen);
        if (zero) tmp[n - 1] = '1';
        if (pn_addr_split(tmp, host, sizeof host, &port, e) != 0) return e->code;
        if (zero) port = 0;
        if (uv_ip4_addr(host, port, &sa.in4) != 0 && uv_ip6_addr(host, port, &sa.in6) != 0)
            return pn_err_set(e, PN_EINVAL, "listen address '%s' must be a numeric IP", listen);
        if (strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0)
            snprintf(h->listen_ip, sizeof h->listen_ip, "%s", host);
    }
    uv_tcp_init(h->loop, &h->listener);
    pn_host_adopt(h, (uv_handle_t *)&h->listener);
    h->listener.data = h;
    h->refs++;
    h->listening = 1;
    rc = uv_tcp_bind(&h->listener, &sa.sa, 0);
    if (rc == UV_EAFNOSUPPORT && any) { /* no IPv6 on this machine */
        uv_ip4_addr("0.0.0.0", port, &sa.in4);
        rc = uv_tcp_bind(&h->listener, &sa.sa, 0);
    }
    if (rc == 0) rc = uv_listen((uv_stream_t *)&h->listener, 128, on_connection);
    if (rc != 0)
        return pn_err_set(e, PN_EIO, "listen on %s: %s", listen ? listen : "[::]:4040",
                          uv_strerror(rc));
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* ---- lifecycle --------------------------------------------------------- */

pn_host *pn_host_new(uv_loop_t *loop, const pn_host_config *cfg, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    if (!cfg->secret) {
        pn_err_set(e, PN_EINVAL, "host: a secret key is required");
        return NULL;
    }
    if (cfg->frame_cap < 64 || cfg->frame_cap > PN_TRANSPORT_BODY_MAX ||
        cfg->max_outbuf < cfg->frame_cap + PN_FRAME_HEADER || cfg->handshake_timeout_ms == 0 ||
        cfg->call_timeout_ms == 0 || (cfg->ping_interval_ms && cfg->ping_timeout_ms == 0) ||
        cfg->backoff_min_ms == 0 || cfg->backoff_max_ms < cfg->backoff_min_ms ||
        cfg->max_connections == 0 || cfg->max_pending_handshakes == 0 ||
        cfg->max_pending_per_source == 0 || cfg->log_window_ms == 0 ||
        cfg->max_calls_in_flight == 0 || cfg->probe_timeout_ms == 0 ||
        (cfg->discovery && (cfg->announce_port == 0 || cfg->announce_interval_ms == 0)) ||
        (cfg->broadcast && strlen(cfg->broadcast) > PN_ADDR_MAX)) {
        pn_err_set(e, PN_EINVAL,
                   "host: bad setting (frame_cap 64..%d, max_outbuf >= frame_cap + 4, timeouts, "
                   "limits, backoff_min, probe_timeout, announce_port and announce_interval > 0, "
                   "backoff_max >= backoff_min)",
                   PN_TRANSPORT_BODY_MAX);
        return NULL;
    }
    if (sodium_init() < 0) {
        pn_err_set(e, PN_EIO, "libsodium failed to initialise");
        return NULL;
    }
    pn_host *h = calloc(1, sizeof *h);
    if (!h || !(h->ptbuf = malloc(cfg->frame_cap))) {
        free(h);
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->cfg = *cfg;
    h->cfg.secret = NULL;
    h->cfg.listen = NULL;
    h->cfg.test_ephemeral = NULL;
    h->cfg.broadcast = NULL;
    snprintf(h->broadcast, sizeof h->broadcast, "%s",
             cfg->broadcast ? cfg->broadcast : "255.255.255.255");
    h->cfg.mdns_instance = NULL;
    memcpy(h->priv, cfg->secret, PN_KEY_LEN);
    crypto_scalarmult_base(h->pub, h->priv);
    if (cfg->test_ephemeral) {
        memcpy(h->test_eph, cfg->test_ephemeral, PN_KEY_LEN);
        h->has_test_eph = 1;
    }
    h->env_flags = cfg->test_legacy_atoms ? PN_ENVELOPE_LEGACY_ATOMS : 0;
    h->hash_seed = randombytes_random();
    /* Envelopes are encoded here: one that fits fits a frame once sealed,
     * so the encoders' PN_ETOOBIG is the frame cap's check. */
    pn_etf_buf_init(&h->scratch, cfg->frame_cap - PN_TRANSPORT_TAG);
    h->refs = 1; /* the host's own, dropped by pn_host_close */
    pn_logline_limit_init(&h->loglimit, cfg->log_window_ms);
    uv_timer_init(loop, &h->log_timer);
    h->log_timer.data = h;
    uv_unref((uv_handle_t *)&h->log_timer); /* a summary due must not keep a loop alive */
    h->refs++;
    pn_admit_open(h);
    uv_check_init(loop, &h->flush_check);
    uv_idle_init(loop, &h->flush_idle);
    h->flush_check.data = h->flush_idle.data = h;
    h->refs += 2;
    uv_check_start(&h->flush_check, on_check);
    uv_unref((uv_handle_t *)&h->flush_check); /* it alone must not keep the loop alive */
    /* The idle handle runs only while writes or results wait. A weak host
     * keeps it referenced so that a program whose work is done still gets
     * its last envelopes written before uv_run returns. */
    if (!cfg->weak) uv_unref((uv_handle_t *)&h->flush_idle);
    if (!(cfg->listen && cfg->listen[0] == '\0') && bind_listen(h, cfg->listen, e) != 0) {
        pn_host_close(h, NULL, NULL);
        return NULL;
    }
    pn_err de;
    if (cfg->discovery && pn_discovery_open(h, &de) != 0) {
        if (de.code == PN_EINVAL) { /* a bad setting is the caller's to fix */
            *e = de;
            pn_host_close(h, NULL, NULL);
            return NULL;
        }
        /* A host that cannot discover still serves the peers it knows. */
        pn_host_log(h, PN_LOG_WARN, "%s; running without LAN discovery", de.msg);
    }
    if (cfg->netmon && pn_netmon_open(h, &de) != 0)
        pn_host_log(h, PN_LOG_WARN, "%s; network changes will go unnoticed", de.msg);
    if (cfg->mdns && !(h->mdns = pn_mdns_start(h, cfg->mdns_instance, cfg->mdns_port, &de))) {
        if (de.code == PN_EINVAL) {
            *e = de;
            pn_host_close(h, NULL, NULL);
            return NULL;
        }
        pn_host_log(h, PN_LOG_WARN, "%s; running without mDNS", de.msg);
    }
    return h;
}

/* A handler revoked while one is running (it may be that one, or the host
 * is closing from inside it) is released only once it has returned. */
static void handler_drop(pn_host *h, pn_handler *hd) {
    if (h->dispatching) {
        hd->revoked = 1;
        hd->next = h->graveyard;
        h->graveyard = hd;
        return;
    }
    if (hd->def.release) hd->def.release(hd->def.ud);
    free(hd->name);
    free(hd);
}

static void release_handlers(pn_host *h) {
    for (unsigned b = 0; b < PN_HANDLER_BUCKETS; b++) {
        while (h->handlers[b]) {
            pn_handler *hd = h->handlers[b];
            h->handlers[b] = hd->next;
            handler_drop(h, hd);
        }
    }
}

void pn_host_close(pn_host *h, void (*on_closed)(void *ud), void *ud) {
    if (h->closing) return;
    for (int i = 0; i < PN_EVENT_LISTENERS; i++) {
        void (*fn)(void *) = h->closing_fns[i].fn;
        h->closing_fns[i].fn = NULL;
        if (fn) fn(h->closing_fns[i].ud);
    }
    h->closing = 1;
    h->on_closed = on_closed;
    h->on_closed_ud = ud;
    if (h->mdns) pn_mdns_close(h->mdns, 1); /* its goodbye still names our port */
    h->mdns = NULL;
    pn_host_stop_listening(h);
    pn_trustfile_close(h);
    pn_discovery_close(h);
    pn_netmon_close(h);
    while (h->conns)
        pn_conn_close(h->conns, "host closing");
    for (unsigned b = 0; b < PN_REGISTRY_BUCKETS; b++)
        for (pn_peer *p = h->peers[b]; p; p = p->next)
            pn_host_resolve_waiters(h, p, PN_ESTATE, "host closed");
    /* Nothing runs on this host after this call: report what is pending now. */
    pn_calls_run_completed(h);
    run_resolved(h);
    h->dirty = NULL;
    release_handlers(h);
    pn_requests_orphan_all(h);
    pn_registry_close_all(h);
    h->strangers = h->strangers_tail = NULL;
    h->ndiscovered = 0;
    /* What was held back is summed up now: nobody will be there later. */
    pn_logline_limit_flush(&h->loglimit, UINT64_MAX / 2, emit_line, h);
    uv_close((uv_handle_t *)&h->log_timer, on_handle_closed);
    pn_admit_close(h);
    uv_close((uv_handle_t *)&h->flush_check, on_handle_closed);
    uv_close((uv_handle_t *)&h->flush_idle, on_handle_closed);
    pn_host_unref(h);
}

void pn_host_stop_listening(pn_host *h) {
    if (!h->listening) return;
    h->listening = 0;
    uv_close((uv_handle_t *)&h->listener, on_handle_closed);
}

int pn_host_port(const pn_host *h) {
    return h->port;
}

void pn_host_public_key(const pn_host *h, uint8_t out[PN_KEY_LEN]) {
    memcpy(out, h->pub, PN_KEY_LEN);
}

int pn_host_on_event(pn_host *h, pn_event_fn fn, void *ud) {
    for (int i = 0; i < PN_EVENT_LISTENERS; i++) {
        if (h->listeners[i].fn) continue;
        h->listeners[i].fn = fn;
        h->listeners[i].ud = ud;
        return 0;
    }
    return PN_ELIMIT;
}

int pn_host_on_closing(pn_host *h, void (*fn)(void *ud), void *ud) {
    for (int i = 0; i < PN_EVENT_LISTENERS; i++) {
        if (h->closing_fns[i].fn) continue;
        h->closing_fns[i].fn = fn;
        h->closing_fns[i].ud = ud;
        return 0;
    }
    return PN_ELIMIT;
}

void pn_host_off_closing(pn_host *h, void (*fn)(void *ud), void *ud) {
    for (int i = 0; i < PN_EVENT_LISTENERS; i++)
        if (h->closing_fns[i].fn == fn && h->closing_fns[i].ud == ud) h->closing_fns[i].fn = NULL;
}

void pn_host_off_event(pn_host *h, pn_event_fn fn, void *ud) {
    for (int i = 0; i < PN_EVENT_LISTENERS; i++)
        if (h->listeners[i].fn == fn && h->listeners[i].ud == ud) h->listeners[i].fn = NULL;
}

void pn_host_get_stats(const pn_host *h, pn_host_stats *out) {
    *out = h->stats;
}

/* ---- registry policy --------------------------------------------------- */

void pn_host_resolve_waiters(pn_host *h, pn_peer *p, int status, const char *msg) {
    while (p->waiters) {
        pn_waiter *w = p->waiters;
        p->waiters = w->next;
        w->status = status;
        snprintf(w->msg, sizeof w->msg, "%s", msg ? msg : "");
        w->next = h->resolved;
        h->resolved = w;
    }
    if (h->resolved) pn_host_mark_dirty(h, NULL);
}

/* ---- where a peer is dialled: its configured address first ----------- */

static int found_index(const pn_peer *p, const char *addr) {
    for (int i = 0; i < p->nfound; i++)
        if (strcmp(p->found[i].addr, addr) == 0) return i;
    return -1;
}

static int found_good(const pn_host *h, const pn_peer *p, int i) {
    return p->found[i].bad_until == 0 || uv_now(h->loop) >= p->found[i].bad_until;
}

static int has_address(const pn_host *h, const pn_peer *p) {
    if (p->addr[0]) return 1;
    for (int i = 0; i < p->nfound; i++)
        if (found_good(h, p, i)) return 1;
    return 0;
}

/* The found[] index of the r-th discovered candidate in dialling order:
 * the proven address first, then the rest as they are kept (newest
 * first). */
static int found_ranked(const pn_peer *p, int r) {
    for (int pass = 1; pass >= 0; pass--)
        for (int i = 0; i < p->nfound; i++)
            if (!p->found[i].proven == !pass && r-- == 0) return i;
    return -1;
}

/* The next address to dial, in turn: the configured one, then the usable
 * discovered ones; a cycle of dials tries each once. NULL when there is
 * none. */
static const char *next_candidate(const pn_host *h, pn_peer *p) {
    int n = 1 + p->nfound;
    for (int k = 0; k < n; k++) {
        int r = (p->cand + k) % n;
        int i = r == 0 ? -1 : found_ranked(p, r - 1);
        if (r == 0 ? !p->addr[0] : !found_good(h, p, i)) continue;
        p->cand = (r + 1) % n;
        return r == 0 ? p->addr : p->found[i].addr;
    }
    return NULL;
}

/* A dial to a discovered address failed or met another key: anyone on the
 * LAN can announce any key at any address, so that address is skipped (and
 * its announces ignored) for backoff_min, doubling with each failure in a
 * row up to backoff_max; the configured one is untouched. */
static void dial_failed(pn_host *h, pn_peer *p, const char *why, int wrong_key) {
    char k[17], key[48];
    if (p->addr[0] && strcmp(p->dialled, p->addr) == 0) return;
    int i = found_index(p, p->dialled);
    if (i < 0) return;
    if (wrong_key) p->found[i].proven = 0; /* someone else listens there now */
    uint32_t fails = p->found[i].fails++, skip = h->cfg.backoff_min_ms;
    while (fails-- > 0 && skip < h->cfg.backoff_max_ms)
        skip = skip > h->cfg.backoff_max_ms / 2 ? h->cfg.backoff_max_ms : skip * 2;
    p->found[i].bad_until = uv_now(h->loop) + skip;
    snprintf(key, sizeof key, "bad address %s", short_key(p->key, k));
    pn_host_log_limited(h, PN_LOG_WARN, key,
                        "peer %s…: discovered address %s skipped for %u ms (%s)%s", k, p->dialled,
                        skip, why, p->addr[0] ? "; its configured address stays first" : "");
}

/* A dial reached the peer: an address that works is a good one again, and
 * the one the key was proven at (a peer is at one address at a time). */
static void dial_worked(pn_peer *p) {
    int i = found_index(p, p->dialled);
    if (i < 0) return;
    p->found[i].fails = 0;
    for (int j = 0; j < p->nfound; j++)
        p->found[j].proven = j == i;
}

static void start_dial(pn_host *h, pn_peer *p) {
    pn_err e;
    const char *addr = next_candidate(h, p);
    p->status = PN_PEER_CONNECTING;
    if (!addr) {
        p->status = PN_PEER_DISCONNECTED;
        pn_host_resolve_waiters(h, p, PN_EINVAL, "no address to dial");
        return;
    }
    snprintf(p->dialled, sizeof p->dialled, "%s", addr);
    if (pn_conn_dial(h, p, p->dialled, &e) != 0) { /* bad address or no memory: nothing started */
        p->status = PN_PEER_DISCONNECTED;
        pn_host_resolve_waiters(h, p, e.code, e.msg);
    }
}

static void on_redial(uv_timer_t *t) {
    pn_peer *p = t->data;
    pn_host *h = p->host;
    if (h->closing || !p->trusted || p->live || p->dialing || !has_address(h, p)) return;
    start_dial(h, p);
}

void pn_host_schedule_redial(pn_host *h, pn_peer *p) {
    if (h->closing || !p->trusted || p->live || p->dialing || !has_address(h, p)) return;
    if (uv_is_active((uv_handle_t *)&p->redial)) return;
    uint32_t delay = p->backoff_ms + randombytes_uniform(p->backoff_ms / 4 + 1); /* jitter */
    p->backoff_ms =
        p->backoff_ms >= h->cfg.backoff_max_ms / 2 ? h->cfg.backoff_max_ms : p->backoff_ms * 2;
    if (delay > h->cfg.backoff_max_ms) delay = h->cfg.backoff_max_ms;
    uv_timer_start(&p->redial, on_redial, delay, 0);
}

int pn_host_verify(pn_host *h, pn_conn *c, const uint8_t key[PN_KEY_LEN]) {
    char a[17], b[17];
    if (c->has_expect && sodium_memcmp(key, c->expect, PN_KEY_LEN) != 0) {
        snprintf(c->fail, sizeof c->fail, "dialled %s… but %s… answered: wrong key",
                 short_key(c->expect, a), short_key(key, b));
        return -1;
    }
    const pn_peer *p = pn_registry_find(h, key);
    if (!p || !p->trusted) {
        snprintf(c->fail, sizeof c->fail, "key %s… is not trusted", short_key(key, a));
        return -1;
    }
    return 0;
}

static void emit(pn_host *h, pn_event ev, const pn_peer *p, const char *detail) {
    uint8_t key[PN_KEY_LEN]; /* a listener may free the peer (untrust) */
    memcpy(key, p->key, PN_KEY_LEN);
    for (int i = 0; i < PN_EVENT_LISTENERS; i++)
        if (h->listeners[i].fn) h->listeners[i].fn(h, ev, key, detail, h->listeners[i].ud);
}

void pn_host_on_established(pn_host *h, pn_conn *c) {
    uint8_t key[PN_KEY_LEN];
    char k[17];
    pn_err e;
    if (pn_handshake_remote_static(c->hs, key, &e) != 0) {
        pn_conn_close(c, e.msg);
        return;
    }
    pn_peer *p = c->peer ? c->peer : pn_registry_get(h, key, &e);
    if (!p) {
        pn_conn_close(c, e.msg);
        return;
    }
    c->peer = p;
    if (p->live) {
        /* Two connections to one peer. The Elixir reference keeps the newest
         * whoever dialled it (Registry drop_existing_conn), so we do too
         * whenever the new one began after the old one was up here: the
         * peer dialled again while we had a link (it restarted, or lost the
         * link on its side), or we did; both sides then saw the old one
         * complete first, and agree. Only when the two handshakes overlapped
         * here (each side dialled the other at once) may the two sides see
         * them complete in opposite orders; then both keep the one dialled
         * by the lower key, which two hosts agree on without a word, so
         * nothing flaps (docs/host.md, "One connection per peer"). */
        pn_conn *old = p->live;
        int keep_new;
        if (old->initiator == c->initiator || c->born_seq > old->live_seq)
            keep_new = 1;
        else
            keep_new = c->initiator == (memcmp(h->pub, p->key, PN_KEY_LEN) < 0);
        if (!keep_new) {
            pn_host_log(h, PN_LOG_DEBUG, "peer %s…: duplicate connection closed (tie-break)",
                        short_key(p->key, k));
            pn_conn_close(c, "duplicate connection (tie-break: the lower key's dial wins)");
            /* The peer dialled again while we hold a link: ours may be stale
             * (its address changed); if so it is found out within the probe
             * deadline. */
            pn_conn_probe(old, h->cfg.probe_timeout_ms);
            return;
        }
        p->live = c;
        /* c's last handshake message first, so the peer does not see the old
         * link end before the new one is complete. */
        pn_conn_flush(c);
        pn_conn_retire(old);
    }
    p->live = c;
    if (p->dialing == c) p->dialing = NULL;
    p->cand = 0; /* the next dial, after this link, starts from the configured address */
    if (c->initiator) dial_worked(p);
    int was = p->status == PN_PEER_CONNECTED;
    p->status = PN_PEER_CONNECTED;
    p->backoff_ms = h->cfg.backoff_min_ms;
    p->last_seen_ms = uv_now(h->loop) | 1;
    uv_timer_stop(&p->redial);
    pn_host_log(h, PN_LOG_INFO, "peer %s… connected (%s, %s)", short_key(p->key, k), c->remote,
                c->initiator ? "dialled" : "accepted");
    pn_host_resolve_waiters(h, p, 0, NULL);
    if (!was) emit(h, PN_EVENT_CONNECTED, p, NULL);
}

void pn_host_on_conn_closed(pn_host *h, pn_conn *c, const char *why) {
    char k[17];
    pn_peer *p = c->peer;
    if (p && p->live == c) {
        pn_host_log(h, PN_LOG_INFO, "connection %s to %s closed: %s", c->remote,
                    short_key(p->key, k), why);
    } else { /* strangers' connections and failed dials: one each, as many as they make */
        char lkey[48];
        snprintf(lkey, sizeof lkey, "closed %s", p ? short_key(p->key, k) : "stranger");
        pn_host_log_limited(h, PN_LOG_DEBUG, lkey, "connection %s%s%s closed: %s",
                            c->remote[0] ? c->remote : "(unconnected)", p ? " to " : "", p ? k : "",
                            why);
    }
    if (!p) return;
    if (p->dialing == c) {
        p->dialing = NULL;
        if (!p->live) {
            p->status = PN_PEER_DISCONNECTED;
            dial_failed(h, p, why, c->fail[0] != 0);
            pn_host_resolve_waiters(h, p, c->fail[0] ? PN_ETRUST : PN_EIO, why);
            pn_host_schedule_redial(h, p);
        }
    }
    if (p->live == c) {
        p->live = NULL;
        p->status = PN_PEER_DISCONNECTED;
        if (c->redial_now) p->backoff_ms = h->cfg.backoff_min_ms;
        emit(h, PN_EVENT_DISCONNECTED, p, why);
        if (c->redial_now && p->trusted && !p->live && !p->dialing && has_address(h, p) &&
            !h->closing)
            uv_timer_start(&p->redial, on_redial, 0, 0);
        else
            pn_host_schedule_redial(h, p);
    }
}

/* ---- strangers: untrusted peers heard announcing themselves ------------ */

static void stranger_unlink(pn_host *h, pn_peer *p) {
    if (!p->stranger) return;
    if (p->sprev)
        p->sprev->snext = p->snext;
    else
        h->strangers = p->snext;
    if (p->snext)
        p->snext->sprev = p->sprev;
    else
        h->strangers_tail = p->sprev;
    p->sprev = p->snext = NULL;
    p->stranger = 0;
    h->ndiscovered--;
}

/* To the front: heard from just now. */
static void stranger_push(pn_host *h, pn_peer *p) {
    stranger_unlink(h, p);
    p->snext = h->strangers;
    if (h->strangers)
        h->strangers->sprev = p;
    else
        h->strangers_tail = p;
    h->strangers = p;
    p->stranger = 1;
    h->ndiscovered++;
}

/* ---- trust ------------------------------------------------------------- */

int pn_host_trust(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    int rc = pn_host_trust_peer(h, key, addr, e);
    if (rc == 0) pn_registry_find(h, key)->api_trusted = 1;
    return rc;
}

int pn_host_trust_peer(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, pn_err *e) {
    char host[PN_ADDR_MAX + 1];
    uint16_t port;
    if (h->closing) return pn_err_set(e, PN_ESTATE, "host is closed");
    if (sodium_memcmp(key, h->pub, PN_KEY_LEN) == 0)
        return pn_err_set(e, PN_EINVAL, "that is this host's own key");
    if (addr && pn_addr_split(addr, host, sizeof host, &port, e) != 0) return e->code;
    pn_peer *p = pn_registry_get(h, key, e);
    if (!p) return e->code;
    stranger_unlink(h, p);
    int discovered = !p->trusted && p->status == PN_PEER_DISCOVERED && p->nfound > 0;
    p->trusted = 1;
    if (addr) {
        snprintf(p->addr, sizeof p->addr, "%s", addr);
        p->cand = 0;
    }
    /* A trusted peer with an address is one we keep connected; one we had
     * only heard announce itself is dialled at the address it announced. */
    if ((addr || discovered) && !p->live && !p->dialing)
        uv_timer_start(&p->redial, on_redial, 0, 0);
    return 0;
}

int pn_host_untrust(pn_host *h, const uint8_t key[PN_KEY_LEN]) {
    pn_peer *p = pn_registry_find(h, key);
    if (!p || !p->trusted) return PN_ENOTFOUND;
    p->trusted = p->api_trusted = p->in_file = 0;
    if (p->announced) stranger_push(h, p);
    uv_timer_stop(&p->redial);
    /* From the head each time: a disconnected event may close others. */
    for (;;) {
        pn_conn *c = h->conns;
        while (c && c->peer != p)
            c = c->next;
        if (!c) break;
        pn_conn_close(c, "key removed from the trust list");
    }
    pn_host_resolve_waiters(h, p, PN_ETRUST, "key removed from the trust list");
    return 0;
}

/* ---- discovery ---------------------------------------------------------- */

static int on_discovered(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr);

int pn_host_note_discovered(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr,
                            const char *source) {
    char host[PN_ADDR_MAX + 1], k[17];
    uint16_t port;
    pn_err e;
    if (h->closing || sodium_memcmp(key, h->pub, PN_KEY_LEN) == 0) return -1;
    if (strlen(addr) > PN_ADDR_MAX || pn_addr_split(addr, host, sizeof host, &port, &e) != 0 ||
        port == 0) {
        pn_host_log_limited(h, PN_LOG_DEBUG, "unusable address",
                            "%s: unusable address '%s' for %s… ignored", source, addr,
                            short_key(key, k));
        return -1;
    }
    return on_discovered(h, key, addr);
}

void pn_host_note_gone(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr,
                       const char *source) {
    char k[17];
    pn_peer *p = h->closing ? NULL : pn_registry_find(h, key);
    int i = p ? found_index(p, addr) : -1;
    if (i < 0) return; /* another source knows better */
    /* That address is gone; the others were heard of separately (and
     * anyone can send a goodbye naming one), and a configured address is
     * never forgotten here. */
    memmove(&p->found[i], &p->found[i + 1], (size_t)(p->nfound - i - 1) * sizeof p->found[0]);
    p->nfound--;
    p->cand = 0;
    if (!p->live && !p->dialing && !has_address(h, p)) {
        uv_timer_stop(&p->redial);
        if (p->status == PN_PEER_DISCOVERED) p->status = PN_PEER_UNKNOWN;
    }
    char lkey[48]; /* anyone on the LAN can send goodbyes */
    snprintf(lkey, sizeof lkey, "gone %s", short_key(key, k));
    pn_host_log_limited(h, PN_LOG_INFO, lkey, "peer %s… left %s (%s goodbye)", k, addr, source);
}

int pn_host_is_trusted(const pn_host *h, const uint8_t key[PN_KEY_LEN]) {
    const pn_peer *p = pn_registry_find(h, key);
    return p && p->trusted;
}

/* ---- discovery and network changes ----------------------------------------- */

/* Makes room for one more stranger: the one heard from least recently
 * goes. An untrusted peer has no connection, dial or waiter (untrust ended
 * them), so nothing refers to it. Returns 0 when the list is empty. */
static int forget_stalest_stranger(pn_host *h) {
    pn_peer *p = h->strangers_tail;
    if (!p) return 0;
    stranger_unlink(h, p);
    pn_registry_forget(h, p);
    return 1;
}

/* A discovered address for key, checked by pn_host_note_discovered. -1
 * when it was dropped (no room for another stranger). */
static int on_discovered(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr) {
    char k[17];
    pn_err e;
    pn_peer *p = pn_registry_find(h, key);
    if (!p && h->ndiscovered >= PN_DISCOVERED_MAX && !forget_stalest_stranger(h)) return -1;
    if (!p && !(p = pn_registry_get(h, key, &e))) {
        pn_host_log(h, PN_LOG_DEBUG, "announce from %s… at %s dropped: %s", short_key(key, k), addr,
                    e.msg);
        return -1;
    }
    short_key(key, k);
    p->announced = 1;
    if (!p->trusted) stranger_push(h, p);
    p->last_seen_ms = uv_now(h->loop) | 1;
    int i = found_index(p, addr);
    if (i >= 0 && !found_good(h, p, i)) return 0; /* it failed or lied lately: ignored */
    int fresh = i < 0 || p->found[i].bad_until != 0;
    uint32_t fails = 0;
    int proven = 0;
    if (i >= 0) {
        fails = p->found[i].fails; /* a skip that ran out ends; its count stays */
        proven = p->found[i].proven;
    } else {
        /* A new address. While there is room it comes in; then it replaces
         * the stalest unproven one, at most once per backoff_min: forged
         * announces with a fresh port each must not push out the address
         * the key was proven at, nor churn the others faster than dials
         * can try them. */
        if (p->nfound == PN_FOUND_MAX) {
            uint64_t now = uv_now(h->loop);
            if (p->found_new_ms && now - p->found_new_ms < h->cfg.backoff_min_ms) return 0;
            int j = p->nfound - 1;
            while (j >= 0 && p->found[j].proven)
                j--;
            if (j < 0) return 0;
            memmove(&p->found[j], &p->found[j + 1],
                    (size_t)(p->nfound - j - 1) * sizeof p->found[0]);
            p->nfound--;
            p->found_new_ms = now;
        }
        i = p->nfound++;
    }
    /* Newest first. */
    memmove(&p->found[1], &p->found[0], (size_t)i * sizeof p->found[0]);
    snprintf(p->found[0].addr, sizeof p->found[0].addr, "%s", addr);
    p->found[0].bad_until = 0;
    p->found[0].fails = fails;
    p->found[0].proven = proven;
    if (fresh) {
        char lkey[48];
        snprintf(lkey, sizeof lkey, "found %s", k);
        pn_host_log_limited(h, PN_LOG_INFO, lkey, "%s peer %s… discovered at %s%s",
                            p->trusted ? "trusted" : "untrusted", short_key(key, k), addr,
                            p->addr[0] && p->trusted ? " (its configured address is tried first)"
                                                     : "");
        /* The announce came from somewhere else while a link is up: that
         * link may be left over from an old address. */
        if (p->live) pn_conn_probe(p->live, h->cfg.probe_timeout_ms);
    }
    if (!p->trusted) {
        if (!p->live && !p->dialing) p->status = PN_PEER_DISCOVERED;
    } else if (fresh && !p->live && !p->dialing) {
        /* A new place to look: no reason to wait for the backoff, but a
         * stream of announces (true or forged) starts at most one dial per
         * backoff_min. It goes on with the cycle of candidates rather than
         * starting it again (each announce would otherwise dial the newest
         * address, the forger's, and never reach the others). */
        uint64_t now = uv_now(h->loop);
        if (!p->announce_dial_ms || now - p->announce_dial_ms >= h->cfg.backoff_min_ms) {
            p->announce_dial_ms = now;
            uv_timer_stop(&p->redial);
            p->backoff_ms = h->cfg.backoff_min_ms;
            start_dial(h, p);
        } else {
            pn_host_schedule_redial(h, p);
        }
    }
    if (fresh) emit(h, PN_EVENT_DISCOVERED, p, NULL);
    return 0;
}

static int same_ip(const struct sockaddr *a, const struct sockaddr *b) {
    if (a->sa_family == AF_INET && b->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6 && b->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return 0;
}

static int address_is_local(const struct sockaddr_storage *ss, uv_interface_address_t *ifs, int n) {
    struct sockaddr_in v4;
    const struct sockaddr *sa = (const struct sockaddr *)ss;
    if (ss->ss_family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ss)->sin6_addr)) {
        memset(&v4, 0, sizeof v4);
        v4.sin_family = AF_INET;
        memcpy(&v4.sin_addr, ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr + 12, 4);
        sa = (const struct sockaddr *)&v4;
    }
    for (int i = 0; i < n; i++)
        if (same_ip(sa, (const struct sockaddr *)&ifs[i].address)) return 1;
    return 0;
}

static void close_orphaned_links(pn_host *h) {
    uv_interface_address_t *ifs;
    int n;
    if (uv_interface_addresses(&ifs, &n) != 0) return; /* cannot tell: the probes will */
    for (pn_conn *c = h->conns; c && !h->closing;) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        if (c->state != PN_CONN_LIVE ||
            uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
            address_is_local(&ss, ifs, n)) {
            c = c->next;
            continue;
        }
        c->redial_now = 1;
        pn_conn_close(c, "its local address left this machine");
        c = h->conns; /* closing unlinked it; the ones seen before are still fine */
    }
    uv_free_interface_addresses(ifs, n);
}

void pn_host_network_changed(pn_host *h) {
    if (h->closing) return;
    h->stats.network_changes++;
    int n = 0;
    for (pn_conn *c = h->conns; c; c = c->next)
        n += c->state == PN_CONN_LIVE;
    pn_host_log(h, PN_LOG_INFO, "network changed: announcing again, probing %d link%s (%u ms)", n,
                n == 1 ? "" : "s", h->cfg.probe_timeout_ms);
    pn_discovery_announce(h);
    pn_mdns_network_changed(h->mdns); /* re-join the groups, re-announce, re-query */
    if (h->closing) return;
    /* A link whose local address has left every interface is dead for sure:
     * it goes now instead of after the probe deadline. */
    close_orphaned_links(h);
    if (h->closing) return;
    /* Healthy links answer and stay; a link that lost its path is closed by
     * its dead timer and redialled. A probe that cannot even be queued
     * closes its link, which unlinks it: the walk starts over then (probed
     * links are skipped, they have a probe out). */
    for (pn_conn *c = h->conns; c && !h->closing;) {
        if (c->state != PN_CONN_LIVE || c->probe_due) {
            c = c->next;
            continue;
        }
        pn_conn_probe(c, h->cfg.probe_timeout_ms);
        c = c->state == PN_CONN_LIVE ? c->next : h->conns;
    }
    if (h->closing) return;
    /* Peers we were waiting to redial may be reachable now. */
    for (unsigned b = 0; b < PN_REGISTRY_BUCKETS; b++)
        for (pn_peer *p = h->peers[b]; p; p = p->next)
            if (p->trusted && !p->live && !p->dialing && has_address(h, p)) {
                p->backoff_ms = h->cfg.backoff_min_ms;
                uv_timer_start(&p->redial, on_redial, 0, 0);
            }
}

/* ---- handlers ---------------------------------------------------------- */

static unsigned name_bucket(const char *name) {
    uint32_t v = 2166136261u; /* FNV-1a */
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        v = (v ^ *s) * 16777619u;
    return v % PN_HANDLER_BUCKETS;
}

static pn_handler *find_handler(const pn_host *h, const char *name) {
    for (pn_handler *hd = h->handlers[name_bucket(name)]; hd; hd = hd->next)
        if (strcmp(hd->name, name) == 0) return hd;
    return NULL;
}

int pn_host_expose(pn_host *h, const char *name, const pn_handler_def *def, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    if (h->closing) return pn_err_set(e, PN_ESTATE, "host is closed");
    if (!name || !pn_etf_atom_name_ok(name, strlen(name)) || !name[0])
        return pn_err_set(e, PN_EINVAL, "handle name must be 1..255 characters of UTF-8");
    if (!def || !def->handler) return pn_err_set(e, PN_EINVAL, "a handler function is required");
    if (find_handler(h, name)) return pn_err_set(e, PN_EEXIST, "'%s' is already exposed", name);
    pn_handler *hd = calloc(1, sizeof *hd);
    if (!hd || !(hd->name = strdup(name))) {
        free(hd);
        return pn_err_set(e, PN_ENOMEM, "out of memory");
    }
    hd->def = *def;
    unsigned b = name_bucket(name);
    hd->next = h->handlers[b];
    h->handlers[b] = hd;
    return 0;
}

int pn_host_revoke(pn_host *h, const char *name) {
    for (pn_handler **pp = &h->handlers[name_bucket(name)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            pn_handler *hd = *pp;
            *pp = hd->next;
            handler_drop(h, hd);
            return 0;
        }
    }
    return PN_ENOTFOUND;
}

static void reply_error(pn_conn *c, uint64_t id, const char *reason) {
    pn_host *h = c->host;
    pn_err e;
    h->scratch.len = 0;
    if (pn_envelope_put_reply_error(&h->scratch, id, reason, h->env_flags, &e) == 0)
        pn_conn_queue_envelope(c, &h->scratch, &e);
}

/* Runs with h->dispatching raised: hd stays allocated whatever the
 * predicate or the handler do to the host. */
static void dispatch_to(pn_host *h, pn_conn *c, const pn_envelope *env, pn_handler *hd) {
    int is_call = env->kind == PN_ENV_CALL;
    if (hd->def.authorize && !hd->def.authorize(h, c->peer->key, env->name, hd->def.ud)) {
        if (is_call && c->state == PN_CONN_LIVE) reply_error(c, env->id, "forbidden");
        return;
    }
    /* The predicate may have closed the link, untrusted the peer or revoked
     * the name: then the handler does not run. */
    if (c->state != PN_CONN_LIVE || !c->peer->trusted) return;
    if (hd->revoked) {
        if (is_call) reply_error(c, env->id, "no_such_handle");
        return;
    }
    pn_err e;
    if (env->foreign) {
        /* A pid, a ref, a fun...: no handler can be given these args, but
         * the envelope is sound, so only this call fails. */
        char k[17], key[48];
        pn_etf_check_term(env->term, env->term_len, &e);
        snprintf(key, sizeof key, "foreign args %s", short_key(c->peer->key, k));
        pn_host_log_limited(h, PN_LOG_WARN, key,
                            "peer %s…: %s '%s' has args outside the ETF subset (%s)%s", k,
                            is_call ? "call" : "send", env->name, e.msg,
                            is_call ? ": answered badarg" : ": dropped");
        if (is_call) reply_error(c, env->id, "badarg");
        return;
    }
    pn_request *req = pn_request_new(c, env, &e);
    if (!req) {
        if (is_call) reply_error(c, env->id, "handler_crash");
        return;
    }
    if (is_call) {
        hd->def.handler(h, req, hd->def.ud); /* req may be answered and gone now */
        return;
    }
    pn_request *outer = h->dispatch_send;
    h->dispatch_send = req;
    hd->def.handler(h, req, hd->def.ud);
    h->dispatch_send = outer;
    if (!req->kept) pn_request_free(req);
}

void pn_host_dispatch(pn_host *h, pn_conn *c, const pn_envelope *env) {
    int is_call = env->kind == PN_ENV_CALL;
    char k[17];
    /* Per peer, not per connection: calls of its closed connections still
     * being served count too. */
    if (is_call && c->peer->nreqs >= h->cfg.max_calls_in_flight) {
        char key[40];
        snprintf(key, sizeof key, "overloaded %s", short_key(c->peer->key, k));
        pn_host_log_limited(h, PN_LOG_WARN, key, "peer %s…: over %u calls in flight, '%s' refused",
                            k, h->cfg.max_calls_in_flight, env->name);
        reply_error(c, env->id, "overloaded");
        return;
    }
    /* Sends kept by their handler (waiting in a script's run queue) have a
     * bound of their own: a send has no answer to refuse with, so the
     * excess is dropped and counted. */
    if (!is_call && c->peer->nsends >= h->cfg.max_calls_in_flight) {
        char key[40];
        h->stats.sends_dropped++;
        snprintf(key, sizeof key, "sends %s", short_key(c->peer->key, k));
        pn_host_log_limited(h, PN_LOG_WARN, key,
                            "peer %s…: over %u sends awaiting their handler, '%s' dropped", k,
                            h->cfg.max_calls_in_flight, env->name);
        return;
    }
    /* An atom may hold NUL; no exposed name does, so such a name matches nothing. */
    pn_handler *hd = strlen(env->name) == env->name_len ? find_handler(h, env->name) : NULL;
    if (!hd) {
        if (is_call) reply_error(c, env->id, "no_such_handle");
        return;
    }
    h->dispatching++;
    dispatch_to(h, c, env, hd);
    if (--h->dispatching == 0) {
        while (h->graveyard) {
            pn_handler *dead = h->graveyard;
            h->graveyard = dead->next;
            handler_drop(h, dead);
        }
    }
}

/* ---- calling ----------------------------------------------------------- */

static pn_conn *live_conn(pn_host *h, const uint8_t key[PN_KEY_LEN], pn_err *e) {
    pn_peer *p = h->closing ? NULL : pn_registry_find(h, key);
    if (!p || !p->live || p->live->state != PN_CONN_LIVE) {
        pn_err_set(e, PN_ESTATE, "not connected");
        return NULL;
    }
    return p->live;
}

int pn_host_call(pn_host *h, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                 size_t args_len, uint32_t timeout_ms, pn_call_cb cb, void *ud, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    pn_conn *c = live_conn(h, peer, e);
    if (!c) return PN_ESTATE;
    if (c->ncalls >= h->cfg.max_calls_in_flight)
        return pn_err_set(e, PN_ELIMIT, "%u calls already in flight to this peer",
                          h->cfg.max_calls_in_flight);
    h->scratch.len = 0;
    pn_pending *p = pn_calls_start(c, cb, ud, timeout_ms ? timeout_ms : h->cfg.call_timeout_ms, e);
    if (!p) return e->code;
    int rc = pn_envelope_put_call(&h->scratch, p->id, name, strlen(name), args, args_len,
                                  h->env_flags, e);
    if (rc != 0) {
        pn_calls_cancel(c, p);
        return rc;
    }
    pn_conn_queue_envelope(c, &h->scratch, e); /* a failure closes c, which fails the call */
    return 0;
}

int pn_host_send(pn_host *h, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                 size_t args_len, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    pn_conn *c = live_conn(h, peer, e);
    if (!c) return PN_ESTATE;
    h->scratch.len = 0;
    int rc = pn_envelope_put_send(&h->scratch, name, strlen(name), args, args_len, h->env_flags, e);
    if (rc == 0) rc = pn_conn_queue_envelope(c, &h->scratch, e);
    return rc;
}

int pn_host_ping(pn_host *h, const uint8_t peer[PN_KEY_LEN], const uint8_t *nonce, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    pn_conn *c = live_conn(h, peer, e);
    if (!c) return PN_ESTATE;
    pn_conn_ping(c, nonce);
    return 0;
}

int pn_host_connect(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, pn_connect_cb cb,
                    void *ud, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    char host[PN_ADDR_MAX + 1], k[17];
    uint16_t port;
    if (h->closing) return pn_err_set(e, PN_ESTATE, "host is closed");
    pn_peer *p = pn_registry_find(h, key);
    if (!p || !p->trusted)
        return pn_err_set(e, PN_ETRUST, "key %s… is not trusted: trust it before connecting",
                          short_key(key, k));
    if (addr && pn_addr_split(addr, host, sizeof host, &port, e) != 0) return e->code;
    /* Already connected (the peer dialled us) or dialling: no address needed. */
    if (!addr && !has_address(h, p) && !p->live && !p->dialing)
        return pn_err_set(e, PN_EINVAL, "no address known for %s…", short_key(key, k));
    pn_waiter *w = calloc(1, sizeof *w);
    if (!w) return pn_err_set(e, PN_ENOMEM, "out of memory");
    w->cb = cb;
    w->ud = ud;
    w->next = p->waiters;
    p->waiters = w;
    if (addr) {
        snprintf(p->addr, sizeof p->addr, "%s", addr);
        p->cand = 0;
    }
    if (p->live) {
        pn_host_resolve_waiters(h, p, 0, NULL);
    } else if (!p->dialing) {
        uv_timer_stop(&p->redial);
        p->backoff_ms = h->cfg.backoff_min_ms;
        start_dial(h, p);
    }
    return 0;
}

/* ---- registry queries -------------------------------------------------- */

const char *pn_peer_status_name(pn_peer_status s) {
    switch (s) {
        case PN_PEER_UNKNOWN:
            return "unknown";
        case PN_PEER_DISCOVERED:
            return "discovered";
        case PN_PEER_CONNECTING:
            return "connecting";
        case PN_PEER_CONNECTED:
            return "connected";
        case PN_PEER_DISCONNECTED:
            return "disconnected";
    }
    return "unknown";
}

void pn_host_peers(const pn_host *h, int (*fn)(const pn_peer_info *p, void *ud), void *ud) {
    pn_peer_info info;
    for (unsigned b = 0; b < PN_REGISTRY_BUCKETS; b++)
        for (const pn_peer *p = h->peers[b]; p; p = p->next) {
            pn_registry_info(h, p, &info);
            if (fn(&info, ud)) return;
        }
}

int pn_host_peer(const pn_host *h, const uint8_t key[PN_KEY_LEN], pn_peer_info *out) {
    const pn_peer *p = pn_registry_find(h, key);
    if (!p) return PN_ENOTFOUND;
    pn_registry_info(h, p, out);
    return 0;
}
