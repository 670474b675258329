/*
 * The peer policy: one live connection per peer (the tie-break between two
 * at once), dialling and redialling with backoff, trust given and taken,
 * and what a network change does to the links. Which address a dial goes
 * to is found.c's; the connections themselves are conn.c's.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

void pn_policy_resolve_waiters(pn_host *h, pn_peer *p, int status, const char *msg) {
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

static void start_dial(pn_host *h, pn_peer *p) {
    pn_err e;
    const char *addr = pn_found_next(h, p);
    p->status = PN_PEER_CONNECTING;
    if (!addr) {
        p->status = PN_PEER_DISCONNECTED;
        pn_policy_resolve_waiters(h, p, PN_EINVAL, "no address to dial");
        return;
    }
    snprintf(p->dialled, sizeof p->dialled, "%s", addr);
    if (pn_conn_dial(h, p, p->dialled, &e) != 0) { /* bad address or no memory: nothing started */
        p->status = PN_PEER_DISCONNECTED;
        pn_policy_resolve_waiters(h, p, e.code, e.msg);
    }
}

static void on_redial(uv_timer_t *t) {
    pn_peer *p = t->data;
    pn_host *h = p->host;
    if (h->closing || !p->trusted || p->live || p->dialing || !pn_found_has_address(h, p)) return;
    start_dial(h, p);
}

/* The redial timer fires on the next loop turn: a reason to dial now came
 * up (an address, a network change), but not from inside the caller. */
void pn_policy_redial_soon(pn_peer *p) {
    uv_timer_start(&p->redial, on_redial, 0, 0);
}

void pn_policy_dial_now(pn_host *h, pn_peer *p) {
    uv_timer_stop(&p->redial);
    p->backoff_ms = h->cfg.backoff_min_ms;
    start_dial(h, p);
}

void pn_policy_schedule_redial(pn_host *h, pn_peer *p) {
    if (h->closing || !p->trusted || p->live || p->dialing || !pn_found_has_address(h, p)) return;
    if (uv_is_active((uv_handle_t *)&p->redial)) return;
    uint32_t delay = p->backoff_ms + randombytes_uniform(p->backoff_ms / 4 + 1); /* jitter */
    p->backoff_ms =
        p->backoff_ms >= h->cfg.backoff_max_ms / 2 ? h->cfg.backoff_max_ms : p->backoff_ms * 2;
    if (delay > h->cfg.backoff_max_ms) delay = h->cfg.backoff_max_ms;
    uv_timer_start(&p->redial, on_redial, delay, 0);
}

int pn_policy_verify(pn_host *h, pn_conn *c, const uint8_t key[PN_KEY_LEN]) {
    char a[PN_LOG_KEY_BUF], b[PN_LOG_KEY_BUF];
    if (c->has_expect && sodium_memcmp(key, c->expect, PN_KEY_LEN) != 0) {
        snprintf(c->fail, sizeof c->fail, "dialled %s… but %s… answered: wrong key",
                 pn_log_key(c->expect, a), pn_log_key(key, b));
        return -1;
    }
    const pn_peer *p = pn_registry_find(h, key);
    if (!p || !p->trusted) {
        snprintf(c->fail, sizeof c->fail, "key %s… is not trusted", pn_log_key(key, a));
        if (!c->initiator) pn_found_refused(h, key, c->remote);
        return -1;
    }
    return 0;
}

/* Two connections to one peer. The Elixir reference keeps the newest
 * whoever dialled it (Registry drop_existing_conn), so we do too whenever
 * the new one began after the old one was up here: the peer dialled again
 * while we had a link (it restarted, or lost the link on its side), or we
 * did; both sides then saw the old one complete first, and agree. Only when
 * the two handshakes overlapped here (each side dialled the other at once)
 * may the two sides see them complete in opposite orders; then both keep
 * the one dialled by the lower key, which two hosts agree on without a
 * word, so nothing flaps (docs/host.md, "One connection per peer").
 * 1: c is kept and the old link retired (*drained when a sender waits to
 * hear that it may go on: the new link's queue is empty); 0: c was closed. */
static int tie_break(pn_host *h, pn_peer *p, pn_conn *c, int *drained) {
    char k[PN_LOG_KEY_BUF];
    pn_conn *old = p->live;
    int keep_new;
    if (old->initiator == c->initiator || c->born_seq > old->live_seq)
        keep_new = 1;
    else
        keep_new = c->initiator == (memcmp(h->pub, p->key, PN_KEY_LEN) < 0);
    if (!keep_new) {
        pn_log(h, PN_LOG_DEBUG, "peer %s…: duplicate connection closed (tie-break)",
               pn_log_key(p->key, k));
        /* The kept link's last handshake message first (ours may still be
         * queued from this turn): the peer must not see c end before the
         * link it will keep is complete on its side. */
        pn_conn_flush(old);
        pn_conn_close(c, "duplicate connection (tie-break: the lower key's dial wins)");
        /* The peer dialled again while we hold a link: ours may be stale
         * (its address changed); if so it is found out within the probe
         * deadline. */
        pn_ping_probe(old, h->cfg.probe_timeout_ms);
        return 0;
    }
    p->live = c;
    /* c's last handshake message first, so the peer does not see the old
     * link end before the new one is complete. */
    pn_conn_flush(c);
    *drained = old->drain_wanted;
    old->drain_wanted = 0;
    pn_conn_retire(old);
    return 1;
}

void pn_policy_established(pn_host *h, pn_conn *c) {
    uint8_t key[PN_KEY_LEN];
    char k[PN_LOG_KEY_BUF];
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
    int drained = 0;
    if (p->live && !tie_break(h, p, c, &drained)) return;
    p->live = c;
    if (p->dialing == c) p->dialing = NULL;
    /* The peer's dial came up while ours is still under way: end ours
     * before its last message. Completed, it would be the newest link, and
     * the Elixir reference closes the link it has for the newest, failing
     * the calls in flight on it with :superseded. Ours has sent no
     * message 3, so the peer has not counted it as a link. */
    if (p->dialing)
        pn_conn_close(p->dialing, "the peer's connection came up first: this dial ends unfinished");
    p->cand = 0; /* the next dial, after this link, starts from the configured address */
    if (c->initiator) pn_found_dial_worked(p);
    int was = p->status == PN_PEER_CONNECTED;
    p->status = PN_PEER_CONNECTED;
    p->backoff_ms = h->cfg.backoff_min_ms;
    p->last_seen_ms = uv_now(h->loop) | 1;
    uv_timer_stop(&p->redial);
    pn_log(h, PN_LOG_INFO, "peer %s… connected (%s, %s)", pn_log_key(p->key, k), c->remote,
           c->initiator ? "dialled" : "accepted");
    pn_policy_resolve_waiters(h, p, 0, NULL);
    if (!was)
        pn_host_emit(h, PN_EVENT_CONNECTED, p, NULL);
    else if (drained)
        pn_host_emit(h, PN_EVENT_DRAINED, p, NULL);
}

void pn_policy_conn_closed(pn_host *h, pn_conn *c, const char *why) {
    char k[PN_LOG_KEY_BUF];
    pn_peer *p = c->peer;
    if (p && p->live == c) {
        pn_log(h, PN_LOG_INFO, "connection %s to %s closed: %s", c->remote, pn_log_key(p->key, k),
               why);
    } else { /* strangers' connections and failed dials: one each, as many as they make */
        char lkey[PN_LOGLINE_KEY_MAX];
        if (p) {
            pn_log_key(p->key, k);
            pn_log_limit_key("closed", p->key, lkey);
        } else {
            snprintf(lkey, sizeof lkey, "closed stranger");
        }
        pn_log_limited(h, PN_LOG_DEBUG, lkey, "connection %s%s%s closed: %s",
                       c->remote[0] ? c->remote : "(unconnected)", p ? " to " : "", p ? k : "",
                       why);
    }
    if (!p) return;
    if (p->dialing == c) {
        p->dialing = NULL;
        if (!p->live) {
            p->status = PN_PEER_DISCONNECTED;
            pn_found_dial_failed(h, p, why, c->fail[0] != 0);
            pn_policy_resolve_waiters(h, p, c->fail[0] ? PN_ETRUST : PN_EIO, why);
            pn_policy_schedule_redial(h, p);
        }
    }
    if (p->live == c) {
        p->live = NULL;
        p->status = PN_PEER_DISCONNECTED;
        if (c->redial_now) p->backoff_ms = h->cfg.backoff_min_ms;
        pn_host_emit(h, PN_EVENT_DISCONNECTED, p, why);
        if (c->redial_now && p->trusted && !p->live && !p->dialing && pn_found_has_address(h, p) &&
            !h->closing)
            pn_policy_redial_soon(p);
        else
            pn_policy_schedule_redial(h, p);
    }
}

/* ---- trust ------------------------------------------------------------- */

int pn_host_trust(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    int rc = pn_policy_trust(h, key, addr, e);
    if (rc == 0) pn_registry_find(h, key)->api_trusted = 1;
    return rc;
}

int pn_policy_trust(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, pn_err *e) {
    char host[PN_ADDR_MAX + 1];
    uint16_t port;
    if (h->closing) return pn_err_set(e, PN_ESTATE, "host is closed");
    if (sodium_memcmp(key, h->pub, PN_KEY_LEN) == 0)
        return pn_err_set(e, PN_EINVAL, "that is this host's own key");
    if (addr && pn_addr_split(addr, host, sizeof host, &port, e) != 0) return e->code;
    pn_peer *p = pn_registry_get(h, key, e);
    if (!p) return e->code;
    pn_found_stranger_unlink(h, p);
    int discovered = !p->trusted && p->status == PN_PEER_DISCOVERED && p->nfound > 0;
    p->trusted = 1;
    if (addr) {
        snprintf(p->addr, sizeof p->addr, "%s", addr);
        p->cand = 0;
    }
    /* A trusted peer with an address is one we keep connected; one we had
     * only heard announce itself is dialled at the address it announced. */
    if ((addr || discovered) && !p->live && !p->dialing) pn_policy_redial_soon(p);
    return 0;
}

int pn_host_untrust(pn_host *h, const uint8_t key[PN_KEY_LEN]) {
    pn_peer *p = pn_registry_find(h, key);
    if (!p || !p->trusted) return PN_ENOTFOUND;
    p->trusted = p->api_trusted = p->in_file = 0;
    if (p->announced) pn_found_stranger_push(h, p);
    uv_timer_stop(&p->redial);
    /* From the head each time: a disconnected event may close others. */
    for (;;) {
        pn_conn *c = pn_conn_first(h);
        while (c && c->peer != p)
            c = pn_conn_next(c);
        if (!c) break;
        pn_conn_close(c, "key removed from the trust list");
    }
    pn_policy_resolve_waiters(h, p, PN_ETRUST, "key removed from the trust list");
    return 0;
}

int pn_host_is_trusted(const pn_host *h, const uint8_t key[PN_KEY_LEN]) {
    const pn_peer *p = pn_registry_find(h, key);
    return p && p->trusted;
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
    for (pn_conn *c = pn_conn_first(h); c && !h->closing;) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        if (c->state != PN_CONN_LIVE ||
            uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
            address_is_local(&ss, ifs, n)) {
            c = pn_conn_next(c);
            continue;
        }
        c->redial_now = 1;
        pn_conn_close(c, "its local address left this machine");
        c = pn_conn_first(h); /* closing unlinked it; the ones seen before are still fine */
    }
    uv_free_interface_addresses(ifs, n);
}

void pn_host_network_changed(pn_host *h) {
    if (h->closing) return;
    h->stats.network_changes++;
    int n = 0;
    for (pn_conn *c = pn_conn_first(h); c; c = pn_conn_next(c))
        n += c->state == PN_CONN_LIVE;
    pn_log(h, PN_LOG_INFO, "network changed: announcing again, probing %d link%s (%u ms)", n,
           n == 1 ? "" : "s", h->cfg.probe_timeout_ms);
    pn_discovery_announce(h);
    pn_mdnsd_network_changed(h->mdns); /* re-join the groups, re-announce, re-query */
    if (h->closing) return;
    /* A link whose local address has left every interface is dead for sure:
     * it goes now instead of after the probe deadline. */
    close_orphaned_links(h);
    if (h->closing) return;
    /* Healthy links answer and stay; a link that lost its path is closed by
     * its dead timer and redialled. A probe that cannot even be queued
     * closes its link, which unlinks it: the walk starts over then (probed
     * links are skipped, they have a probe out). */
    for (pn_conn *c = pn_conn_first(h); c && !h->closing;) {
        if (c->state != PN_CONN_LIVE || c->probe_due) {
            c = pn_conn_next(c);
            continue;
        }
        pn_ping_probe(c, h->cfg.probe_timeout_ms);
        c = c->state == PN_CONN_LIVE ? pn_conn_next(c) : pn_conn_first(h);
    }
    if (h->closing) return;
    /* Peers we were waiting to redial may be reachable now. */
    for (pn_peer *p = pn_registry_next(h, NULL); p; p = pn_registry_next(h, p))
        if (p->trusted && !p->live && !p->dialing && pn_found_has_address(h, p)) {
            p->backoff_ms = h->cfg.backoff_min_ms;
            pn_policy_redial_soon(p);
        }
}

int pn_host_connect(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, pn_connect_cb cb,
                    void *ud, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    char host[PN_ADDR_MAX + 1], k[PN_LOG_KEY_BUF];
    uint16_t port;
    if (h->closing) return pn_err_set(e, PN_ESTATE, "host is closed");
    pn_peer *p = pn_registry_find(h, key);
    if (!p || !p->trusted)
        return pn_err_set(e, PN_ETRUST, "key %s… is not trusted: trust it before connecting",
                          pn_log_key(key, k));
    if (addr && pn_addr_split(addr, host, sizeof host, &port, e) != 0) return e->code;
    /* Already connected (the peer dialled us) or dialling: no address needed. */
    if (!addr && !pn_found_has_address(h, p) && !p->live && !p->dialing)
        return pn_err_set(e, PN_EINVAL, "no address known for %s…", pn_log_key(key, k));
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
        pn_policy_resolve_waiters(h, p, 0, NULL);
    } else if (!p->dialing) {
        pn_policy_dial_now(h, p);
    }
    return 0;
}
