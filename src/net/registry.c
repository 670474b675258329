/*
 * The peer registry: what the host knows of each key it trusts or has met.
 * Entries live as long as the host (a peer that goes away keeps its last
 * address and last-seen time), bounded by PN_REGISTRY_MAX.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

static unsigned bucket_of(const pn_host *h, const uint8_t key[PN_KEY_LEN]) {
    uint32_t v;
    memcpy(&v, key, sizeof v);
    /* Keys are public and a stranger can pick them: the seed keeps chains even. */
    v ^= h->hash_seed;
    v *= 2654435761u;
    return (v >> 16) % PN_REGISTRY_BUCKETS;
}

pn_peer *pn_registry_find(const pn_host *h, const uint8_t key[PN_KEY_LEN]) {
    for (pn_peer *p = h->peers[bucket_of(h, key)]; p; p = p->next)
        if (memcmp(p->key, key, PN_KEY_LEN) == 0) return p;
    return NULL;
}

pn_peer *pn_registry_get(pn_host *h, const uint8_t key[PN_KEY_LEN], pn_err *e) {
    pn_peer *p = pn_registry_find(h, key);
    if (p) return p;
    if (h->npeers >= PN_REGISTRY_MAX) {
        pn_err_set(e, PN_ELIMIT, "peer registry full (%d peers)", PN_REGISTRY_MAX);
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    p->host = h;
    memcpy(p->key, key, PN_KEY_LEN);
    p->status = PN_PEER_UNKNOWN;
    p->backoff_ms = h->cfg.backoff_min_ms;
    uv_timer_init(h->loop, &p->redial);
    p->redial.data = p;
    pn_host_adopt(h, (uv_handle_t *)&p->redial);
    h->refs++;
    PN_CHAIN_PUSH(h->peers[bucket_of(h, key)], p);
    h->npeers++;
    return p;
}

pn_peer *pn_registry_next(const pn_host *h, const pn_peer *p) {
    unsigned b = 0;
    if (p) {
        if (p->next) return p->next;
        b = bucket_of(h, p->key) + 1;
    }
    for (; b < PN_REGISTRY_BUCKETS; b++)
        if (h->peers[b]) return h->peers[b];
    return NULL;
}

void pn_registry_info(const pn_host *h, const pn_peer *p, pn_peer_info *out) {
    memset(out, 0, sizeof *out);
    memcpy(out->key, p->key, PN_KEY_LEN);
    out->status = p->status;
    out->trusted = p->trusted;
    /* The configured address, else the discovered one our live link was
     * dialled at (while it is still known), else the newest discovered one
     * not being skipped, else the newest. */
    const char *a = p->addr;
    for (int i = p->nfound - 1; !a[0] && i >= 0; i--)
        if (p->live && p->live->initiator && strcmp(p->found[i].addr, p->dialled) == 0)
            a = p->found[i].addr;
    if (!a[0] && p->nfound) {
        a = p->found[0].addr;
        for (int i = p->nfound - 1; i >= 0; i--)
            if (!p->found[i].bad_until || uv_now(h->loop) >= p->found[i].bad_until)
                a = p->found[i].addr;
    }
    snprintf(out->addr, sizeof out->addr, "%s", a);
    if (p->last_seen_ms) { /* loop time to wall time */
        uint64_t now = uv_now(h->loop);
        /* last_seen_ms may be now | 1, a millisecond ahead */
        uint64_t ago = now > p->last_seen_ms ? now - p->last_seen_ms : 0;
        out->last_seen = pn_host_wall_now() - (double)ago / 1000.0;
    }
    for (const pn_conn *c = pn_conn_first(h); c; c = pn_conn_next(c))
        if (c->peer == p && c->state != PN_CONN_CLOSING) out->connections++;
    out->settling = p->live && p->live->settling;
}

static void on_peer_closed(uv_handle_t *t) {
    pn_peer *p = t->data;
    pn_host_unref_free(p->host, p);
}

/* Drops an entry nothing refers to (no connection, dial or waiter): an
 * untrusted peer known only from its announces. */
void pn_registry_forget(pn_host *h, pn_peer *p) {
    pn_request_forget_peer(h, p);
    pn_peer **pp;
    PN_CHAIN_SEEK(pp, h->peers[bucket_of(h, p->key)], *pp == p);
    if (!*pp) return;
    PN_CHAIN_UNLINK(pp);
    h->npeers--;
    uv_close((uv_handle_t *)&p->redial, on_peer_closed);
}

/* Host shutdown: the peers' timers close and the entries are freed; the
 * connections are closed by the host first. */
void pn_registry_close_all(pn_host *h) {
    for (unsigned b = 0; b < PN_REGISTRY_BUCKETS; b++) {
        pn_peer *p = h->peers[b];
        h->peers[b] = NULL;
        while (p) {
            pn_peer *next = p->next;
            pn_waiter *w = p->waiters;
            p->waiters = NULL;
            while (w) { /* nobody is left to tell */
                pn_waiter *wn = w->next;
                free(w);
                w = wn;
            }
            uv_close((uv_handle_t *)&p->redial, on_peer_closed);
            p = next;
        }
    }
    h->npeers = 0;
}
#define STATUS_NAME(e, name) name,
static const char *const status_names[] = {PN_PEER_STATUSES(STATUS_NAME)};
#undef STATUS_NAME

const char *pn_peer_status_name(pn_peer_status s) {
    return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "unknown";
}

void pn_host_peers(const pn_host *h, int (*fn)(const pn_peer_info *p, void *ud), void *ud) {
    pn_peer_info info;
    for (const pn_peer *p = pn_registry_next(h, NULL); p; p = pn_registry_next(h, p)) {
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
