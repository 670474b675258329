/*
 * Whether a live link still works: liveness pings every ping_interval and
 * the dead timer when their pongs are late, the probe after a network
 * change, and the settle pings of a link this host dialled. The timers
 * are the connection's (conn.c opens and closes them).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

static void on_dead(uv_timer_t *t) {
    pn_conn *c = t->data;
    pn_host *h = c->host;
    char why[128];
    if (c->read_paused) { /* its pong may wait unread: we are the slow one */
        uv_timer_start(&c->dead, on_dead, h->cfg.ping_timeout_ms, 0);
        return;
    }
    if (c->probe_due && uv_now(h->loop) >= c->probe_due) {
        h->stats.probes_failed++;
        c->redial_now = 1; /* the network moved under it; the peer may be fine elsewhere */
        snprintf(why, sizeof why, "peer silent: no pong within %u ms of a probe",
                 h->cfg.probe_timeout_ms);
    } else {
        snprintf(why, sizeof why, "peer silent: no pong within %u ms", h->cfg.ping_timeout_ms);
    }
    pn_conn_close(c, why);
}

/* The dead timer runs to the earlier of the oldest ping's due time and the probe's. */
static void arm_dead(pn_conn *c) {
    uint64_t now = uv_now(c->host->loop), due = c->pings[0].sent + c->host->cfg.ping_timeout_ms;
    if (c->probe_due && c->probe_due < due) due = c->probe_due;
    uv_timer_start(&c->dead, on_dead, due > now ? due - now : 0, 0);
}

void pn_ping_send(pn_conn *c, const uint8_t *nonce) {
    pn_host *h = c->host;
    if (c->state != PN_CONN_LIVE || c->npings == PN_PINGS_MAX) return; /* the dead timer runs */
    uint8_t *n = c->pings[c->npings].nonce;
    if (nonce)
        memcpy(n, nonce, PN_NONCE_LEN);
    else
        randombytes_buf(n, PN_NONCE_LEN);
    c->pings[c->npings++].sent = uv_now(h->loop);
    pn_err e;
    h->scratch.len = 0;
    if (pn_envelope_put_ping(&h->scratch, n, h->env_flags, &e) != 0 ||
        pn_conn_queue_envelope(c, &h->scratch, &e) != 0)
        return;
    if (!uv_is_active((uv_handle_t *)&c->dead))
        uv_timer_start(&c->dead, on_dead, h->cfg.ping_timeout_ms, 0);
}

static void on_ping_tick(uv_timer_t *t) {
    pn_ping_send(t->data, NULL);
}

static void ping_answered(pn_conn *c, const uint8_t *nonce) {
    int i;
    for (i = 0; i < c->npings; i++)
        if (sodium_memcmp(c->pings[i].nonce, nonce, PN_NONCE_LEN) == 0) break;
    if (i == c->npings) return; /* not ours: ignored */
    /* An answer to one ping answers every earlier one too. */
    for (int j = 0; j <= i && c->probe_due; j++)
        if (sodium_memcmp(c->pings[j].nonce, c->probe_nonce, PN_NONCE_LEN) == 0) c->probe_due = 0;
    memmove(c->pings, c->pings + i + 1, (size_t)(c->npings - i - 1) * sizeof c->pings[0]);
    c->npings -= i + 1;
    if (c->npings == 0) {
        c->probe_due = 0;
        uv_timer_stop(&c->dead);
        return;
    }
    arm_dead(c);
}

void pn_ping_probe(pn_conn *c, uint32_t deadline_ms) {
    if (c->state != PN_CONN_LIVE || c->probe_due) return;   /* one probe out at a time */
    if (c->npings < PN_PINGS_MAX) pn_ping_send(c, NULL);    /* else the last one out will do */
    if (c->state != PN_CONN_LIVE || c->npings == 0) return; /* queueing it failed */
    memcpy(c->probe_nonce, c->pings[c->npings - 1].nonce, PN_NONCE_LEN);
    c->probe_due = uv_now(c->host->loop) + deadline_ms;
    arm_dead(c);
}

/* ---- settling a dialled link ------------------------------------------ *
 *
 * The Elixir reference leaves whatever arrives in the same read as M3 in
 * its buffer, unread, until another segment comes (shared/reference/
 * README.md). On a link this host dialled, the first call or send would sit
 * there, and a short-lived host would close the link with it unread. So M3
 * leaves in a write of its own (c->hold), and once it has left the link is
 * pinged until a pong comes back: each ping is a later segment, which makes
 * the peer read what it had buffered, and the pong shows it has read past
 * M3, after which every segment is read as it comes. The retries back off
 * from PN_SETTLE_FIRST_MS; a peer that never answers is given up on after
 * PN_SETTLE_TRIES. Links the peer dialled need none of this: we receive
 * M3, the peer sends nothing behind it. */

static void settle_ping(pn_conn *c);

static void on_settle(uv_timer_t *t) {
    pn_conn *c = t->data;
    if (!c->settling || c->state != PN_CONN_LIVE) return;
    if (c->settle_tries >= PN_SETTLE_TRIES) {
        c->settling = 0;
        pn_log(c->host, PN_LOG_DEBUG, "%s: no pong to %u settle pings; giving up on them",
               c->remote, c->settle_tries);
        return;
    }
    settle_ping(c);
}

static void settle_ping(pn_conn *c) {
    pn_host *h = c->host;
    pn_err e;
    if (c->settle_tries == 0) randombytes_buf(c->settle_nonce, PN_NONCE_LEN);
    h->scratch.len = 0;
    if (pn_envelope_put_ping(&h->scratch, c->settle_nonce, h->env_flags, &e) != 0 ||
        pn_conn_queue_envelope(c, &h->scratch, &e) != 0)
        return; /* a queueing failure has closed the link */
    c->settle_tries++;
    uv_timer_start(&c->settle, on_settle, c->settle_ms, 0);
    c->settle_ms *= 2;
}

/* A pong to the settle ping: true when it was one (nonce repeated on each try). */
static int settle_pong(pn_conn *c, const uint8_t *nonce) {
    if (!c->settling || sodium_memcmp(nonce, c->settle_nonce, PN_NONCE_LEN) != 0) return 0;
    c->settling = 0;
    uv_timer_stop(&c->settle);
    return 1;
}

/* ---- what the connection tells ---------------------------------------- */

void pn_ping_start(pn_conn *c) {
    pn_host *h = c->host;
    if (c->initiator) {
        c->settling = 1;
        c->settle_ms = PN_SETTLE_FIRST_MS;
    }
    if (h->cfg.ping_interval_ms)
        uv_timer_start(&c->timer, on_ping_tick, h->cfg.ping_interval_ms, h->cfg.ping_interval_ms);
}

void pn_ping_written(pn_conn *c) {
    if (c->settling && c->settle_tries == 0) settle_ping(c); /* M3 has left */
}

void pn_ping_pong(pn_conn *c, const uint8_t *nonce) {
    if (!settle_pong(c, nonce)) ping_answered(c, nonce);
}
