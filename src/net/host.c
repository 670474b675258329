/*
 * The host's lifecycle: made from a checked configuration (config.c),
 * listening, the loop turn that flushes writes and reports deferred
 * results, event listeners, and closing. The peer policy is policy.c's,
 * the serving side dispatch.c's, the calling side calls.c's.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

double pn_host_wall_now(void) {
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

static void host_free(pn_host *h) {
    void (*cb)(void *) = h->on_closed;
    void *ud = h->on_closed_ud;
    free(h->ptbuf);
    pn_etf_buf_free(&h->scratch);
    pn_request_pool_free(h);
    sodium_memzero(h->priv, sizeof h->priv);
    sodium_memzero(h->test_eph, sizeof h->test_eph);
    free(h);
    if (cb) cb(ud);
}

void pn_host_unref(pn_host *h) {
    if (--h->refs == 0 && h->closing) host_free(h);
}

void pn_host_unref_free(pn_host *h, void *owner) {
    free(owner);
    pn_host_unref(h);
}

void pn_host_adopt(pn_host *h, uv_handle_t *handle) {
    if (h->cfg.weak) uv_unref(handle);
}

static void on_handle_closed(uv_handle_t *hd) {
    pn_host_unref(hd->data);
}

static void own_closed(void *ud) {
    pn_host_unref(ud);
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

void pn_host_flush(pn_host *h) {
    for (pn_link *l; (l = pn_list_shift(&h->dirty));)
        pn_conn_flush(PN_CONTAINER(l, pn_conn, dirty));
}

static void on_turn(pn_host *h) {
    pn_host_flush(h);
    pn_calls_run_completed(h);
    run_resolved(h);
    if (pn_list_empty(&h->dirty) && !h->completed && !h->resolved) uv_idle_stop(&h->flush_idle);
}

static void on_check(uv_check_t *t) {
    on_turn(t->data);
}
static void on_idle(uv_idle_t *t) {
    on_turn(t->data);
}

void pn_host_mark_dirty(pn_host *h, pn_conn *c) {
    if (c && !c->dirty.linked) pn_list_push_front(&h->dirty, &c->dirty);
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
        pn_log_limited(h, PN_LOG_WARN, "accept", "accept: %s", uv_strerror(status));
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
        pn_log_limited(h, PN_LOG_WARN, "refused",
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
    if (rc != 0 && listen)
        return pn_err_set(e, PN_EIO, "listen on %s: %s", listen, uv_strerror(rc));
    if (rc != 0)
        return pn_err_set(e, PN_EIO, "listen on [::]:%u: %s", (unsigned)PN_DEFAULT_PORT,
                          uv_strerror(rc));
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* ---- lifecycle --------------------------------------------------------- */

/* The log timer, admit.c's budget timer and the loop-turn handles: one
 * group, closed by pn_host_close. */
static void open_own_handles(pn_host *h) {
    pn_logline_limit_init(&h->loglimit, h->cfg.log_window_ms);
    uv_timer_init(h->loop, &h->log_timer);
    h->log_timer.data = h;
    uv_unref((uv_handle_t *)&h->log_timer); /* a summary due must not keep a loop alive */
    pn_admit_open(h);
    uv_check_init(h->loop, &h->flush_check);
    uv_idle_init(h->loop, &h->flush_idle);
    h->flush_check.data = h->flush_idle.data = h;
    h->refs++;
    uv_check_start(&h->flush_check, on_check);
    uv_unref((uv_handle_t *)&h->flush_check); /* it alone must not keep the loop alive */
    /* The idle handle runs only while writes or results wait. A weak host
     * keeps it referenced so that a program whose work is done still gets
     * its last envelopes written before uv_run returns. */
    if (!h->cfg.weak) uv_unref((uv_handle_t *)&h->flush_idle);
}

/* LAN discovery, the network monitor and mDNS. One that cannot start is
 * logged and the host runs without it (it still serves the peers it
 * knows); only a bad setting, the caller's to fix, fails the host. */
static int open_watchers(pn_host *h, const pn_host_config *cfg, pn_err *e) {
    pn_err de;
    if (cfg->discovery && pn_discovery_open(h, &de) != 0) {
        if (de.code == PN_EINVAL) return *e = de, de.code;
        pn_log(h, PN_LOG_WARN, "%s; running without LAN discovery", de.msg);
    }
    if (cfg->netmon && pn_netmon_open(h, &de) != 0)
        pn_log(h, PN_LOG_WARN, "%s; network changes will go unnoticed", de.msg);
    if (cfg->mdns && !(h->mdns = pn_mdnsd_start(h, cfg->mdns_instance, cfg->mdns_port, &de))) {
        if (de.code == PN_EINVAL) return *e = de, de.code;
        pn_log(h, PN_LOG_WARN, "%s; running without mDNS", de.msg);
    }
    return 0;
}

pn_host *pn_host_new(uv_loop_t *loop, const pn_host_config *cfg, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    if (!cfg->secret) {
        pn_err_set(e, PN_EINVAL, "host: a secret key is required");
        return NULL;
    }
    if (pn_host_config_check(cfg, e) != 0) return NULL;
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
    h->cfg.broadcast = NULL;
    snprintf(h->broadcast, sizeof h->broadcast, "%s",
             cfg->broadcast ? cfg->broadcast : "255.255.255.255");
    h->cfg.mdns_instance = NULL;
    memcpy(h->priv, cfg->secret, PN_KEY_LEN);
    crypto_scalarmult_base(h->pub, h->priv);
    h->hash_seed = randombytes_random();
    /* Envelopes are encoded here: one that fits fits a frame once sealed,
     * so the encoders' PN_ETOOBIG is the frame cap's check. */
    pn_etf_buf_init(&h->scratch, cfg->frame_cap - PN_TRANSPORT_TAG);
    h->refs = 1; /* the host's own, dropped by pn_host_close */
    open_own_handles(h);
    if (!(cfg->listen && cfg->listen[0] == '\0') && bind_listen(h, cfg->listen, e) != 0) {
        pn_host_close(h, NULL, NULL);
        return NULL;
    }
    if (open_watchers(h, cfg, e) != 0) {
        pn_host_close(h, NULL, NULL);
        return NULL;
    }
    return h;
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
    if (h->mdns) pn_mdnsd_close(h->mdns, 1); /* its goodbye still names our port */
    h->mdns = NULL;
    pn_host_stop_listening(h);
    pn_trustfile_close(h);
    pn_discovery_close(h);
    pn_netmon_close(h);
    while (pn_conn_first(h))
        pn_conn_close(pn_conn_first(h), "host closing");
    for (pn_peer *p = pn_registry_next(h, NULL); p; p = pn_registry_next(h, p))
        pn_policy_resolve_waiters(h, p, PN_ESTATE, "host closed");
    /* Nothing runs on this host after this call: report what is pending now. */
    pn_calls_run_completed(h);
    run_resolved(h);
    while (pn_list_shift(&h->dirty))
        ;
    pn_dispatch_release_all(h);
    pn_request_orphan_all(h);
    pn_registry_close_all(h);
    h->strangers = (pn_list){0}; /* the entries are gone with the registry */
    pn_log_flush_all(h);
    /* hs_timer is admit.c's budget timer */
    uv_handle_t *hs[] = {PN_HANDLE(&h->log_timer), PN_HANDLE(&h->hs_timer),
                         PN_HANDLE(&h->flush_check), PN_HANDLE(&h->flush_idle)};
    pn_handles_close(&h->own, hs, sizeof hs / sizeof hs[0], own_closed, h);
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

uint32_t pn_host_log_window(const pn_host *h) {
    return h->cfg.log_window_ms;
}

void pn_host_emit(pn_host *h, pn_event ev, const pn_peer *p, const char *detail) {
    uint8_t key[PN_KEY_LEN]; /* a listener may free the peer (untrust) */
    memcpy(key, p->key, PN_KEY_LEN);
    for (int i = 0; i < PN_EVENT_LISTENERS; i++)
        if (h->listeners[i].fn) h->listeners[i].fn(h, ev, key, detail, h->listeners[i].ud);
}

#define EVENT_NAME(e, name) name,
static const char *const event_names[] = {PN_EVENTS(EVENT_NAME) NULL};
#undef EVENT_NAME

const char *pn_host_event_name(pn_event ev) {
    return (unsigned)ev < PN_EVENT_COUNT ? event_names[ev] : "unknown";
}

const char *const *pn_host_event_names(void) {
    return event_names;
}

void pn_host_test_set(pn_host *h, const pn_host_test_hooks *t) {
    h->has_test_eph = t->ephemeral != NULL;
    if (t->ephemeral) memcpy(h->test_eph, t->ephemeral, PN_KEY_LEN);
    h->env_flags = t->legacy_atoms ? PN_ENVELOPE_LEGACY_ATOMS : 0;
}

void pn_host_get_stats(const pn_host *h, pn_host_stats *out) {
    *out = h->stats;
}
