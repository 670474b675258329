/*
 * The load generator of loadgen.h. Calls: every slot holds one call; its
 * reply records the latency and, until the deadline, starts the next call
 * from the same slot. Sends: a check handle sends while the host's queue
 * for the peer is under a high-water mark, so the generator waits for the
 * socket instead of filling max_outbuf (which drops the link).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

#define SUB (1u << PN_LOADGEN_SUB_BITS)
#define BUCKETS ((64u - PN_LOADGEN_SUB_BITS + 1u) * SUB)
/* Sends queued in the host before the generator waits for a write: a few
 * socket writes' worth, far under any sane max_outbuf. */
#define SEND_HIGH_WATER (256u * 1024u)
#define SEND_BATCH 256 /* sends per loop turn, so the loop still reads */

typedef struct slot {
    pn_loadgen *g;
    uint64_t t0;
} slot;

struct pn_loadgen {
    pn_host *h;
    pn_loadgen_config c;
    uint8_t peer[PN_KEY_LEN];
    char *handle;
    uint8_t *args;
    pn_loadgen_done_fn done;
    void *ud;
    uv_timer_t start;
    uv_check_t check;
    uv_idle_t idle;
    int open_handles;
    int finished;
    int stopping; /* no new calls */
    uint32_t outstanding;
    uint64_t t_start, deadline;
    uint64_t hist[BUCKETS];
    uint64_t n_lat;
    double sum_lat;
    pn_loadgen_report r;
    slot *slots;
};

static unsigned bucket_of(uint64_t v) {
    if (v < SUB) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - PN_LOADGEN_SUB_BITS;
    return ((shift + 1u) << PN_LOADGEN_SUB_BITS) | (unsigned)((v >> shift) & (SUB - 1u));
}

/* The middle of a bucket's range. */
static uint64_t value_of(unsigned idx) {
    if (idx < SUB) return idx;
    unsigned shift = (idx >> PN_LOADGEN_SUB_BITS) - 1u;
    uint64_t lo = (uint64_t)(SUB | (idx & (SUB - 1u))) << shift;
    return lo + (((uint64_t)1 << shift) >> 1);
}

static uint64_t percentile(const pn_loadgen *g, double q) {
    if (g->n_lat == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)g->n_lat);
    if (rank >= g->n_lat) rank = g->n_lat - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BUCKETS; i++) {
        seen += g->hist[i];
        if (seen > rank) return value_of(i);
    }
    return g->r.max_ns;
}

static void record(pn_loadgen *g, uint64_t ns) {
    g->hist[bucket_of(ns)]++;
    if (g->n_lat == 0 || ns < g->r.min_ns) g->r.min_ns = ns;
    if (ns > g->r.max_ns) g->r.max_ns = ns;
    g->n_lat++;
    g->sum_lat += (double)ns;
}

static void finish(pn_loadgen *g) {
    if (g->finished) return;
    g->finished = 1;
    uv_check_stop(&g->check);
    uv_idle_stop(&g->idle);
    uv_timer_stop(&g->start);
    g->r.elapsed_ns = uv_hrtime() - g->t_start;
    g->r.p50_ns = percentile(g, 0.50);
    g->r.p99_ns = percentile(g, 0.99);
    g->r.p999_ns = percentile(g, 0.999);
    g->r.mean_ns = g->n_lat ? g->sum_lat / (double)g->n_lat : 0;
    g->done(g, &g->r, g->ud);
}

static void fail_run(pn_loadgen *g, const pn_err *e) {
    if (!g->r.first_error[0]) snprintf(g->r.first_error, sizeof g->r.first_error, "%s", e->msg);
    g->stopping = 1;
}

static void issue(slot *s);

static void on_reply(pn_host *h, pn_call_status st, const uint8_t *term, size_t len, void *ud) {
    (void)h, (void)term, (void)len;
    slot *s = ud;
    pn_loadgen *g = s->g;
    uint64_t now = uv_hrtime();
    g->outstanding--;
    switch (st) {
        case PN_CALL_OK:
            g->r.ok++;
            break;
        case PN_CALL_ERROR:
            g->r.errors++;
            break;
        case PN_CALL_TIMEOUT:
            g->r.timeouts++;
            break;
        case PN_CALL_CLOSED:
            g->r.closed++;
            if (!g->r.first_error[0])
                snprintf(g->r.first_error, sizeof g->r.first_error, "the connection closed");
            g->stopping = 1;
            break;
    }
    if (st == PN_CALL_OK || st == PN_CALL_ERROR) record(g, now - s->t0);
    if (now >= g->deadline) g->stopping = 1;
    if (!g->stopping) issue(s);
    if (g->outstanding == 0 && g->stopping) finish(g);
}

static void issue(slot *s) {
    pn_loadgen *g = s->g;
    pn_err e;
    s->t0 = uv_hrtime();
    if (pn_host_call(g->h, g->peer, g->handle, g->args, g->c.args_len, g->c.timeout_ms, on_reply, s,
                     &e) != 0) {
        fail_run(g, &e);
        return;
    }
    g->outstanding++;
}

static void on_idle(uv_idle_t *i) {
    (void)i; /* only there to keep the loop from blocking */
}

static void pump_sends(uv_check_t *ck) {
    pn_loadgen *g = ck->data;
    if (uv_hrtime() >= g->deadline) {
        finish(g);
        return;
    }
    int n = 0;
    while (n < SEND_BATCH && pn_host_queued(g->h, g->peer) < SEND_HIGH_WATER) {
        pn_err e;
        if (pn_host_send(g->h, g->peer, g->handle, g->args, g->c.args_len, &e) != 0) {
            fail_run(g, &e);
            finish(g);
            return;
        }
        g->r.ok++;
        n++;
    }
    /* A full batch: come back next turn without blocking. Over the mark:
     * block until the socket takes the queue (its write wakes the loop). */
    if (n == SEND_BATCH)
        uv_idle_start(&g->idle, on_idle);
    else
        uv_idle_stop(&g->idle);
}

static void on_start(uv_timer_t *t) {
    pn_loadgen *g = t->data;
    g->t_start = uv_hrtime();
    g->deadline = g->t_start + (uint64_t)g->c.duration_ms * 1000000u;
    if (g->c.send) {
        uv_check_start(&g->check, pump_sends);
        uv_idle_start(&g->idle, on_idle);
        return;
    }
    for (uint32_t i = 0; i < g->c.inflight && !g->stopping; i++)
        issue(&g->slots[i]);
    if (g->outstanding == 0) finish(g);
}

pn_loadgen *pn_loadgen_start(pn_host *h, uv_loop_t *loop, const pn_loadgen_config *c,
                             pn_loadgen_done_fn done, void *ud, pn_err *e) {
    if (c->inflight < 1 || c->inflight > PN_LOADGEN_INFLIGHT_MAX) {
        pn_err_set(e, PN_EINVAL, "inflight must be 1..%d, got %u", PN_LOADGEN_INFLIGHT_MAX,
                   c->inflight);
        return NULL;
    }
    if (!c->handle || !*c->handle) {
        pn_err_set(e, PN_EINVAL, "a handle is needed");
        return NULL;
    }
    pn_loadgen *g = calloc(1, sizeof *g);
    if (g) g->slots = calloc(c->inflight, sizeof *g->slots);
    if (g) g->handle = strdup(c->handle);
    if (g) g->args = malloc(c->args_len ? c->args_len : 1);
    if (!g || !g->slots || !g->handle || !g->args) {
        if (g) free(g->slots), free(g->handle), free(g->args);
        free(g);
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    g->h = h;
    g->c = *c;
    memcpy(g->peer, c->peer, PN_KEY_LEN);
    memcpy(g->args, c->args, c->args_len);
    g->c.peer = g->peer;
    g->c.handle = g->handle;
    g->c.args = g->args;
    g->done = done;
    g->ud = ud;
    for (uint32_t i = 0; i < c->inflight; i++)
        g->slots[i].g = g;
    uv_timer_init(loop, &g->start);
    uv_check_init(loop, &g->check);
    uv_idle_init(loop, &g->idle);
    g->start.data = g->check.data = g->idle.data = g;
    g->open_handles = 3;
    uv_timer_start(&g->start, on_start, 0, 0);
    return g;
}

static void on_closed(uv_handle_t *hd) {
    pn_loadgen *g = hd->data;
    if (--g->open_handles > 0) return;
    free(g->slots);
    free(g->handle);
    free(g->args);
    free(g);
}

void pn_loadgen_free(pn_loadgen *g) {
    uv_close((uv_handle_t *)&g->start, on_closed);
    uv_close((uv_handle_t *)&g->check, on_closed);
    uv_close((uv_handle_t *)&g->idle, on_closed);
}
