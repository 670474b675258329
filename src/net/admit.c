/*
 * Admission of inbound connections before they are authenticated.
 *
 * A responder cannot tell a stranger from a trusted peer before message 3,
 * so nothing here refuses a newcomer: what is bounded is what a stranger
 * can hold and what it can make the host spend.
 *
 * - Unheard connections (no complete message 1 yet: idle, slow or about to
 *   send garbage) cost a socket and a few hundred bytes, no crypto. At most
 *   max_pending_per_source of them per source and max_pending_handshakes in
 *   all; a newcomer over either makes room by closing the oldest (of its
 *   source first), one that has said nothing before one whose message 1
 *   was already waiting at accept. They also have first_message_timeout.
 * - Waiting connections (message 1 passed its size and header checks, no
 *   token yet): message 2, where the X25519 work is, is written only with a
 *   token of the handshake budget (handshake_rate per second, bursts of
 *   PN_HANDSHAKE_BURST); without one, message 1 waits in arrival order.
 *   At most max_pending_per_source per source and max_pending_handshakes in
 *   all wait; a newcomer over its source's share closes one chosen at
 *   random among that source's waiters and itself, over the pool's bound
 *   one among those of the sources that hold most of the queue. Closing
 *   the oldest would let every arrival over the budget kill the next in
 *   line; closing the newest would let a flood that sends right after
 *   each token keep every other peer out. At random, every arrival from
 *   one source has the same chance, and a source with few waiters keeps
 *   them while a flood from other sources pushes out its own.
 * - Heard connections (message 2 sent, message 3 owed): only a token makes
 *   one, and a waiting newcomer never closes one. Over
 *   max_pending_handshakes, the next token closes the one that has owed
 *   message 3 longest, but never one that got message 2 less than
 *   PN_HEARD_GRACE_MS ago: a real peer answers within a round trip, and a
 *   flood that hangs up or goes silent at message 2 must not close the
 *   trusted peer that is about to send message 3. So the pool may exceed
 *   the bound by the tokens of one grace (handshake_rate *
 *   PN_HEARD_GRACE_MS / 1000 + PN_HANDSHAKE_BURST).
 * So an idle flood only ever displaces idle connections, and a first-message
 * flood costs at most the budget's CPU, while a peer that speaks at once is
 * served in turn. Our own dials are not counted here.
 */
#include <sodium.h>
#include <string.h>

#include "net.h"

static uint32_t *stage_counter(pn_host *h, pn_conn_stage s) {
    if (s == PN_STAGE_UNHEARD) return &h->stats.unheard;
    if (s == PN_STAGE_WAITING) return &h->stats.waiting;
    if (s == PN_STAGE_HEARD) return &h->stats.heard;
    return NULL;
}

/* The waiting connections, oldest first. */
static pn_conn *waiter_of(pn_link *l) {
    return l ? PN_CONTAINER(l, pn_conn, wlink) : NULL;
}
static pn_conn *first_waiter(const pn_host *h) {
    return waiter_of(h->waiting.head);
}
static pn_conn *next_waiter(const pn_conn *c) {
    return waiter_of(c->wlink.next);
}

void pn_admit_stage(pn_host *h, pn_conn *c, pn_conn_stage stage) {
    uint32_t *from = stage_counter(h, c->stage), *to = stage_counter(h, stage);
    if (c->stage == PN_STAGE_WAITING) pn_list_remove(&h->waiting, &c->wlink);
    if (from) (*from)--;
    if (to) (*to)++;
    if (stage == PN_STAGE_HEARD) c->heard_ms = uv_now(h->loop);
    c->stage = stage;
}

static int same_source(const pn_conn *a, const pn_conn *b) {
    return a->src_len == b->src_len && memcmp(a->src, b->src, a->src_len) == 0;
}

static void evict(pn_host *h, pn_conn *victim, const char *pool, uint32_t limit,
                  const char *which) {
    char why[160], key[PN_ADDR_MAX + 16];
    h->stats.evicted++;
    snprintf(why, sizeof why, "evicted: %s pending handshakes over %u, this one %s", pool, limit,
             which);
    /* One line per source and window: a flood must not flood the log. */
    snprintf(key, sizeof key, "evicted %s", victim->remote);
    char *colon = strrchr(key, ':'); /* the port changes with every connection */
    if (colon && colon > key + 8) *colon = '\0';
    pn_log_limited(h, PN_LOG_WARN, key, "connection %s %s", victim->remote, why);
    pn_conn_close(victim, why);
}

/* Of two unheard connections, which goes first: one that has said nothing
 * before one whose message 1 was already waiting, then the older. b is
 * older than a (the walk goes newest first). */
static pn_conn *pick(pn_conn *a, pn_conn *b) {
    if (!a) return b;
    return a->spoke && !b->spoke ? b : !a->spoke && b->spoke ? a : b;
}

/* The unheard connection to close for newcomer c: the one pick() prefers,
 * of c's source when it is over its share, else of all; NULL when there is
 * no need. h->conns is newest first, so a later match is older (at most
 * max_connections to walk). */
static pn_conn *unheard_victim(pn_host *h, pn_conn *c) {
    pn_conn *oldest = NULL, *oldest_same = NULL;
    uint32_t same = 0;
    for (pn_conn *x = pn_conn_first(h); x; x = pn_conn_next(x)) {
        if (x == c || x->stage != PN_STAGE_UNHEARD) continue;
        oldest = pick(oldest, x);
        if (same_source(x, c)) {
            same++;
            oldest_same = pick(oldest_same, x);
        }
    }
    if (same >= h->cfg.max_pending_per_source) return oldest_same;
    if (h->stats.unheard > h->cfg.max_pending_handshakes) return oldest;
    return NULL;
}

void pn_admit_accepted(pn_host *h, pn_conn *c) {
    pn_admit_stage(h, c, PN_STAGE_UNHEARD);
}

void pn_admit_make_room(pn_host *h, pn_conn *c) {
    /* A silent candidate is looked at once more: its message 1 may have
     * arrived since its accept (then another goes). Each look marks one
     * more as spoken, so this ends within the pool's size. */
    for (uint32_t tries = 0; tries <= h->cfg.max_pending_handshakes; tries++) {
        pn_conn *v = unheard_victim(h, c);
        if (!v) return;
        if (!v->spoke && pn_conn_m1_waiting(v)) {
            v->spoke = 1;
            continue;
        }
        int per_source = same_source(v, c) && h->stats.unheard <= h->cfg.max_pending_handshakes;
        evict(h, v, per_source ? "unheard (one source)" : "unheard",
              per_source ? h->cfg.max_pending_per_source : h->cfg.max_pending_handshakes,
              "the oldest");
        return;
    }
}

static void refill(pn_host *h) {
    uint64_t now = uv_now(h->loop);
    if (now > h->hs_refill_ms) {
        h->hs_tokens += (double)(now - h->hs_refill_ms) * h->cfg.handshake_rate / 1000.0;
        if (h->hs_tokens > PN_HANDSHAKE_BURST) h->hs_tokens = PN_HANDSHAKE_BURST;
    }
    h->hs_refill_ms = now;
}

static void on_hs_timer(uv_timer_t *t);

/* Room in the heard pool for c, which is about to get message 2: the one
 * that has owed message 3 longest goes, if past its grace. */
static void heard_make_room(pn_host *h, pn_conn *c) {
    if (h->stats.heard <= h->cfg.max_pending_handshakes) return;
    uint64_t now = uv_now(h->loop);
    pn_conn *victim = NULL;
    for (pn_conn *x = pn_conn_first(h); x; x = pn_conn_next(x))
        if (x != c && x->stage == PN_STAGE_HEARD && now - x->heard_ms >= PN_HEARD_GRACE_MS &&
            (!victim || x->heard_ms < victim->heard_ms))
            victim = x;
    if (victim)
        evict(h, victim, "heard", h->cfg.max_pending_handshakes, "the longest owing message 3");
}

/* A waiter to close for newcomer c when a bound is reached: over its
 * source's share, one drawn at random among that source's waiters and c;
 * over the pool's bound, one drawn at random among the waiters (and c) of
 * the sources holding most of the queue. So a flood from other sources
 * pushes out its own, and a source with few waiters keeps them; all from
 * one source, every arrival has the same chance. NULL when nobody need
 * go. At most max_pending_handshakes squared comparisons of addresses. */
static pn_conn *waiting_victim(pn_host *h, pn_conn *c, int *per_source) {
    uint32_t same = 1, top, n = 0; /* c's source, c included */
    for (pn_conn *x = first_waiter(h); x; x = next_waiter(x))
        if (same_source(x, c)) same++;
    *per_source = same > h->cfg.max_pending_per_source;
    if (!*per_source && h->stats.waiting < h->cfg.max_pending_handshakes) return NULL;
    top = same;
    for (pn_conn *x = first_waiter(h); x; x = next_waiter(x)) {
        x->wsame = 0;
        if (same_source(x, c)) {
            x->wsame = same;
            continue;
        }
        if (*per_source) continue; /* only c's source is drawn from */
        for (pn_conn *y = first_waiter(h); y; y = next_waiter(y))
            if (same_source(x, y)) x->wsame++;
        if (x->wsame > top) top = x->wsame;
    }
    for (pn_conn *x = first_waiter(h); x; x = next_waiter(x))
        if (x->wsame == top) n++;
    uint32_t r = randombytes_uniform(n + (same == top));
    for (pn_conn *x = first_waiter(h); x; x = next_waiter(x))
        if (x->wsame == top && r-- == 0) return x;
    return c;
}

static void arm(pn_host *h) {
    if (!first_waiter(h) || h->closing) return;
    double need = 1.0 - h->hs_tokens;
    uint64_t ms = need > 0 ? (uint64_t)(need * 1000.0 / h->cfg.handshake_rate) + 1 : 0;
    uv_timer_start(&h->hs_timer, on_hs_timer, ms, 0);
}

/* The oldest waiting first message gets each token as it comes. */
static void on_hs_timer(uv_timer_t *t) {
    pn_host *h = t->data;
    refill(h);
    while (first_waiter(h) && h->hs_tokens >= 1.0 && !h->closing) {
        pn_conn *c = first_waiter(h);
        h->hs_tokens -= 1.0;
        pn_admit_stage(h, c, PN_STAGE_HEARD); /* off the queue before anything can close it */
        heard_make_room(h, c);
        pn_conn_serve_m1(c);
    }
    arm(h);
}

int pn_admit_heard(pn_host *h, pn_conn *c) {
    if (h->cfg.handshake_rate == 0) {
        pn_admit_stage(h, c, PN_STAGE_HEARD);
        heard_make_room(h, c);
        return 1;
    }
    refill(h);
    /* In turn: nobody jumps the queue while others wait. */
    if (!first_waiter(h) && h->hs_tokens >= 1.0) {
        h->hs_tokens -= 1.0;
        pn_admit_stage(h, c, PN_STAGE_HEARD);
        heard_make_room(h, c);
        return 1;
    }
    int per_source;
    pn_conn *victim = waiting_victim(h, c, &per_source);
    if (victim) {
        evict(h, victim, per_source ? "waiting (one source)" : "waiting",
              per_source ? h->cfg.max_pending_per_source : h->cfg.max_pending_handshakes,
              "drawn at random");
        if (victim == c) return -1;
    }
    pn_admit_stage(h, c, PN_STAGE_WAITING);
    pn_list_push(&h->waiting, &c->wlink);
    h->stats.handshake_waits++;
    if (!uv_is_active((uv_handle_t *)&h->hs_timer)) arm(h);
    return 0;
}

int pn_admit_open(pn_host *h) {
    uv_timer_init(h->loop, &h->hs_timer);
    h->hs_timer.data = h;
    uv_unref((uv_handle_t *)&h->hs_timer); /* the waiting connections keep the loop alive */
    h->hs_tokens = PN_HANDSHAKE_BURST;
    h->hs_refill_ms = uv_now(h->loop);
    return 0;
}
