/*
 * The calling side: pn_host_call, pn_host_send and pn_host_ping, and the
 * calls waiting for their reply (per connection, by id). A call completes
 * exactly once: by its reply, its timeout, or its connection closing.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "test_hooks.h"

static unsigned bucket_of(uint64_t id) {
    return (unsigned)((id ^ (id >> 29)) % PN_CALL_BUCKETS);
}

/*
 * Timeouts: one timer per connection over a list of calls ordered by
 * deadline. Most calls share the default timeout, so a new one goes at the
 * tail in O(1); the timer is re-armed lazily, when it fires. A per-call uv
 * timer cost a handle open and close per call, which showed in profiles.
 */
static pn_pending *due_of(pn_link *l) {
    return l ? PN_CONTAINER(l, pn_pending, due) : NULL;
}

static pn_pending *unlink_id(pn_conn *c, uint64_t id) {
    if (!c->calls) return NULL;
    pn_pending **pp;
    PN_CHAIN_SEEK(pp, c->calls[bucket_of(id)], (*pp)->id == id);
    pn_pending *p = *pp;
    if (!p) return NULL;
    PN_CHAIN_UNLINK(pp);
    p->next = NULL;
    pn_list_remove(&c->due, &p->due);
    c->ncalls--;
    if (c->retiring) pn_host_mark_dirty(c->host, c); /* may be idle now */
    return p;
}

static void on_calls_due(uv_timer_t *t) {
    pn_conn *c = t->data;
    pn_host *h = c->host;
    uint64_t now = uv_now(h->loop);
    pn_pending *first;
    while (c->state != PN_CONN_CLOSING && (first = due_of(c->due.head)) && first->deadline <= now) {
        pn_pending *p = unlink_id(c, first->id);
        p->cb(h, PN_CALL_TIMEOUT, NULL, 0, p->ud); /* a late reply finds no id: dropped */
        free(p);
    }
    if (c->state != PN_CONN_CLOSING && (first = due_of(c->due.head)))
        uv_timer_start(&c->call_timer, on_calls_due, first->deadline - now, 0);
}

pn_pending *pn_calls_start(pn_conn *c, pn_call_cb cb, void *ud, uint32_t timeout_ms, pn_err *e) {
    pn_host *h = c->host;
    if (!c->calls) c->calls = calloc(PN_CALL_BUCKETS, sizeof *c->calls);
    pn_pending *p = c->calls ? calloc(1, sizeof *p) : NULL;
    if (!p) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    p->cb = cb;
    p->ud = ud;
    /* Random and non-zero, as the Elixir side draws them; unique among the
     * calls in flight on this connection. */
    for (;;) {
        p->id = pn_host_random_u64(h);
        if (p->id == 0) continue;
        pn_pending *q = c->calls[bucket_of(p->id)];
        while (q && q->id != p->id)
            q = q->next;
        if (!q) break;
    }
    PN_CHAIN_PUSH(c->calls[bucket_of(p->id)], p);
    c->ncalls++;
    uint64_t now = uv_now(h->loop);
    p->deadline = now + timeout_ms;
    pn_pending *after = due_of(c->due.tail);
    while (after && after->deadline > p->deadline)
        after = due_of(after->due.prev);
    pn_list_insert_after(&c->due, after ? &after->due : NULL, &p->due);
    /* A new earliest deadline, or no timer yet: arm it. */
    if (c->due.head == &p->due || !uv_is_active((uv_handle_t *)&c->call_timer))
        uv_timer_start(&c->call_timer, on_calls_due, due_of(c->due.head)->deadline - now, 0);
    return p;
}

void pn_calls_cancel(pn_conn *c, pn_pending *p) {
    unlink_id(c, p->id);
    free(p);
}

void pn_calls_complete(pn_conn *c, const pn_envelope *env) {
    pn_pending *p = unlink_id(c, env->id);
    if (!p) {
        pn_log_limited(c->host, PN_LOG_DEBUG, "stale reply",
                       "reply to unknown or expired call id %llu dropped",
                       (unsigned long long)env->id);
        return;
    }
    p->cb(c->host, env->ok ? PN_CALL_OK : PN_CALL_ERROR, env->term, env->term_len, p->ud);
    free(p);
}

void pn_calls_fail_all(pn_conn *c) {
    pn_host *h = c->host;
    uv_timer_stop(&c->call_timer);
    for (unsigned b = 0; c->calls && b < PN_CALL_BUCKETS; b++) {
        while (c->calls[b]) {
            pn_pending *p = unlink_id(c, c->calls[b]->id);
            p->status = PN_CALL_CLOSED;
            PN_CHAIN_PUSH(h->completed, p);
        }
    }
    if (h->completed) pn_host_mark_dirty(h, NULL);
}

void pn_calls_run_completed(pn_host *h) {
    while (h->completed) {
        pn_pending *p = h->completed;
        PN_CHAIN_UNLINK(&h->completed);
        p->cb(h, p->status, NULL, 0, p->ud);
        free(p);
    }
}

/* ---- the public face: call, send, ping ------------------------------- */

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
    rc = pn_conn_queue_own(c, &h->scratch, e);
    if (rc == PN_EBUSY) {
        pn_calls_cancel(c, p);
        c->drain_wanted = 1; /* the busy answer arms "drained" */
        return rc;
    }
    pn_conn_resume(c); /* the reply comes on this link: it must be read */
    return 0;          /* another failure closed c, which failed the call */
}

int pn_host_send(pn_host *h, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                 size_t args_len, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    pn_conn *c = live_conn(h, peer, e);
    if (!c) return PN_ESTATE;
    h->scratch.len = 0;
    int rc = pn_envelope_put_send(&h->scratch, name, strlen(name), args, args_len, h->env_flags, e);
    if (rc == 0) rc = pn_conn_queue_own(c, &h->scratch, e);
    if (rc == PN_EBUSY) c->drain_wanted = 1; /* the busy answer arms "drained" */
    return rc;
}

size_t pn_host_queued(pn_host *h, const uint8_t peer[PN_KEY_LEN]) {
    pn_conn *c = live_conn(h, peer, NULL);
    return c ? c->out.len + c->wout.len : 0;
}

int pn_host_busy(pn_host *h, const uint8_t peer[PN_KEY_LEN]) {
    pn_conn *c = live_conn(h, peer, NULL);
    if (!c) return 0;
    /* Once told busy (here or by a refused frame), a sender stays busy
     * until "drained": so its wait for drained always ends, whatever the
     * frame sizes next to max_outbuf. */
    if (c->drain_wanted) return 1;
    if (c->out.len + c->wout.len <= h->cfg.max_outbuf / PN_SEND_HIGH_WATER_SHARE) return 0;
    c->drain_wanted = 1;
    return 1;
}

int pn_host_ping(pn_host *h, const uint8_t peer[PN_KEY_LEN], pn_err *e) {
    return pn_calls_test_ping(h, peer, NULL, e);
}

int pn_calls_test_ping(pn_host *h, const uint8_t peer[PN_KEY_LEN], const uint8_t *nonce,
                       pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    pn_conn *c = live_conn(h, peer, e);
    if (!c) return PN_ESTATE;
    pn_ping_send(c, nonce);
    return 0;
}
