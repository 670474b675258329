/*
 * Where a peer is dialled, and the strangers: the addresses discovery
 * sources (UDP announces, mDNS) report for a key, checked and ranked
 * behind its configured address, the ones that failed skipped for a
 * while, and the untrusted keys heard announcing themselves.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

static int found_index(const pn_peer *p, const char *addr) {
    for (int i = 0; i < p->nfound; i++)
        if (strcmp(p->found[i].addr, addr) == 0) return i;
    return -1;
}

static int found_good(const pn_host *h, const pn_peer *p, int i) {
    return p->found[i].bad_until == 0 || uv_now(h->loop) >= p->found[i].bad_until;
}

int pn_found_has_address(const pn_host *h, const pn_peer *p) {
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
const char *pn_found_next(const pn_host *h, pn_peer *p) {
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
void pn_found_dial_failed(pn_host *h, pn_peer *p, const char *why, int wrong_key) {
    char k[PN_LOG_KEY_BUF], key[PN_LOGLINE_KEY_MAX];
    if (p->addr[0] && strcmp(p->dialled, p->addr) == 0) return;
    int i = found_index(p, p->dialled);
    if (i < 0) return;
    if (wrong_key) p->found[i].proven = 0; /* someone else listens there now */
    uint32_t fails = p->found[i].fails++, skip = h->cfg.backoff_min_ms;
    while (fails-- > 0 && skip < h->cfg.backoff_max_ms)
        skip = skip > h->cfg.backoff_max_ms / 2 ? h->cfg.backoff_max_ms : skip * 2;
    p->found[i].bad_until = uv_now(h->loop) + skip;
    pn_log_key(p->key, k);
    pn_log_limited(h, PN_LOG_WARN, pn_log_limit_key("bad address", p->key, key),
                   "peer %s…: discovered address %s skipped for %u ms (%s)%s", k, p->dialled, skip,
                   why, p->addr[0] ? "; its configured address stays first" : "");
}

/* A dial reached the peer: an address that works is a good one again, and
 * the one the key was proven at (a peer is at one address at a time). */
void pn_found_dial_worked(pn_peer *p) {
    int i = found_index(p, p->dialled);
    if (i < 0) return;
    p->found[i].fails = 0;
    for (int j = 0; j < p->nfound; j++)
        p->found[j].proven = j == i;
}

/* ---- strangers: untrusted peers heard announcing themselves ------------ */

void pn_found_stranger_unlink(pn_host *h, pn_peer *p) {
    pn_list_remove(&h->strangers, &p->stranger);
}

/* To the front: heard from just now. */
void pn_found_stranger_push(pn_host *h, pn_peer *p) {
    pn_list_remove(&h->strangers, &p->stranger);
    pn_list_push_front(&h->strangers, &p->stranger);
}

static int forget_stalest_stranger(pn_host *h);

void pn_found_refused(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *from) {
    char k[PN_LOG_KEY_BUF], lkey[PN_LOGLINE_KEY_MAX];
    pn_err e;
    pn_log_key(key, k);
    if (!h->closing) {
        pn_peer *p = pn_registry_find(h, key);
        if (!p && h->strangers.len >= PN_DISCOVERED_MAX) forget_stalest_stranger(h);
        if (!p) p = pn_registry_get(h, key, &e);
        if (p && !p->trusted) {
            pn_found_stranger_push(h, p);
            p->last_seen_ms = uv_now(h->loop) | 1;
        }
    }
    pn_log_limited(h, PN_LOG_INFO, pn_log_limit_key("refused", key, lkey),
                   "refused %s… from %s (not in trust.list: peernet-host trust add %s)", k, from,
                   k);
}

/* ---- what the sources report ------------------------------------------- */

static int on_discovered(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr);

int pn_found_note(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr, const char *source) {
    char host[PN_ADDR_MAX + 1], k[PN_LOG_KEY_BUF];
    uint16_t port;
    pn_err e;
    if (h->closing || sodium_memcmp(key, h->pub, PN_KEY_LEN) == 0) return -1;
    if (strlen(addr) > PN_ADDR_MAX || pn_addr_split(addr, host, sizeof host, &port, &e) != 0 ||
        port == 0) {
        pn_log_limited(h, PN_LOG_DEBUG, "unusable address",
                       "%s: unusable address '%s' for %s… ignored", source, addr,
                       pn_log_key(key, k));
        return -1;
    }
    return on_discovered(h, key, addr);
}

void pn_found_gone(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr,
                   const char *source) {
    char k[PN_LOG_KEY_BUF];
    pn_peer *p = h->closing ? NULL : pn_registry_find(h, key);
    int i = p ? found_index(p, addr) : -1;
    if (i < 0) return; /* another source knows better */
    /* That address is gone; the others were heard of separately (and
     * anyone can send a goodbye naming one), and a configured address is
     * never forgotten here. */
    memmove(&p->found[i], &p->found[i + 1], (size_t)(p->nfound - i - 1) * sizeof p->found[0]);
    p->nfound--;
    p->cand = 0;
    if (!p->live && !p->dialing && !pn_found_has_address(h, p)) {
        uv_timer_stop(&p->redial);
        if (p->status == PN_PEER_DISCOVERED) p->status = PN_PEER_UNKNOWN;
    }
    char lkey[PN_LOGLINE_KEY_MAX]; /* anyone on the LAN can send goodbyes */
    pn_log_key(key, k);
    pn_log_limited(h, PN_LOG_INFO, pn_log_limit_key("gone", key, lkey),
                   "peer %s… left %s (%s goodbye)", k, addr, source);
}

/* Makes room for one more stranger: the one heard from least recently
 * goes. An untrusted peer has no connection, dial or waiter (untrust ended
 * them), so nothing refers to it. Returns 0 when the list is empty. */
static int forget_stalest_stranger(pn_host *h) {
    if (!h->strangers.tail) return 0;
    pn_peer *p = PN_CONTAINER(h->strangers.tail, pn_peer, stranger);
    pn_found_stranger_unlink(h, p);
    pn_registry_forget(h, p);
    return 1;
}

/* A discovered address for key, checked by pn_found_note. -1
 * when it was dropped (no room for another stranger). */
/* Puts addr first among p's discovered addresses. 0 when it is ignored:
 * it failed or lied lately, or there is no room for it now; else 1, with
 * *fresh telling a new (or newly good again) address. */
static int keep_address(pn_host *h, pn_peer *p, const char *addr, int *fresh) {
    int i = found_index(p, addr);
    if (i >= 0 && !found_good(h, p, i)) return 0;
    *fresh = i < 0 || p->found[i].bad_until != 0;
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
    return 1;
}

/* A trusted peer heard of at a new place: no reason to wait for the
 * backoff, but a stream of announces (true or forged) starts at most one
 * dial per backoff_min. It goes on with the cycle of candidates rather
 * than starting it again (each announce would otherwise dial the newest
 * address, the forger's, and never reach the others). */
static void dial_fresh(pn_host *h, pn_peer *p) {
    uint64_t now = uv_now(h->loop);
    if (!p->announce_dial_ms || now - p->announce_dial_ms >= h->cfg.backoff_min_ms) {
        p->announce_dial_ms = now;
        pn_policy_dial_now(h, p);
    } else {
        pn_policy_schedule_redial(h, p);
    }
}

static int on_discovered(pn_host *h, const uint8_t key[PN_KEY_LEN], const char *addr) {
    char k[PN_LOG_KEY_BUF];
    pn_err e;
    pn_peer *p = pn_registry_find(h, key);
    if (!p && h->strangers.len >= PN_DISCOVERED_MAX && !forget_stalest_stranger(h)) return -1;
    if (!p && !(p = pn_registry_get(h, key, &e))) {
        pn_log_limited(h, PN_LOG_DEBUG, "announce dropped", "announce from %s… at %s dropped: %s",
                       pn_log_key(key, k), addr, e.msg);
        return -1;
    }
    pn_log_key(key, k);
    p->announced = 1;
    if (!p->trusted) pn_found_stranger_push(h, p);
    p->last_seen_ms = uv_now(h->loop) | 1;
    int fresh = 0;
    if (!keep_address(h, p, addr, &fresh)) return 0;
    if (fresh) {
        char lkey[PN_LOGLINE_KEY_MAX];
        pn_log_limit_key("found", key, lkey);
        if (p->trusted)
            pn_log_limited(h, PN_LOG_INFO, lkey, "trusted peer %s… discovered at %s%s", k, addr,
                           p->addr[0] ? " (its configured address is tried first)" : "");
        else
            pn_log_limited(h, PN_LOG_INFO, lkey,
                           "untrusted peer %s… discovered at %s (not in trust.list: peernet-host "
                           "trust add %s)",
                           k, addr, k);
        /* The announce came from somewhere else while a link is up: that
         * link may be left over from an old address. */
        if (p->live) pn_ping_probe(p->live, h->cfg.probe_timeout_ms);
    }
    if (!p->trusted) {
        if (!p->live && !p->dialing) p->status = PN_PEER_DISCOVERED;
    } else if (fresh && !p->live && !p->dialing) {
        dial_fresh(h, p);
    }
    if (fresh) pn_host_emit(h, PN_EVENT_DISCOVERED, p, NULL);
    return 0;
}
