/*
 * The clock of peernet.after/every/sleep: the loop's timers, or a virtual
 * clock that only moves when told (pn_clock_advance), for peernet.testing.
 * On the virtual clock the armed timers wait in rt->vtimers and fire in
 * order of due time, then of arming, one at a time: what a tick starts
 * (a sleep, a new after) is armed before the next one fires.
 */
#include "internal.h"

static void on_uv(uv_timer_t *t) {
    pn_clock_timer *ct = PN_CONTAINER(t, pn_clock_timer, uv);
    ct->cb(ct->owner);
}

void pn_clock_init(pn_rt *rt, pn_clock_timer *ct, void (*cb)(void *owner), void *owner) {
    ct->rt = rt;
    ct->cb = cb;
    ct->owner = owner;
    uv_timer_init(rt->loop, &ct->uv);
    ct->uv.data = owner; /* the close callback frees it */
}

void pn_clock_start(pn_clock_timer *ct, uint64_t ms, uint64_t repeat) {
    pn_rt *rt = ct->rt;
    if (!rt->o.virtual_clock) {
        uv_timer_start(&ct->uv, on_uv, ms, repeat);
        return;
    }
    ct->due = rt->vnow + ms;
    ct->repeat = repeat;
    ct->seq = ++rt->vseq;
    if (!ct->link.linked) pn_list_push(&rt->vtimers, &ct->link);
}

void pn_clock_close(pn_clock_timer *ct, uv_close_cb closed) {
    if (ct->link.linked) pn_list_remove(&ct->rt->vtimers, &ct->link);
    uv_close((uv_handle_t *)&ct->uv, closed);
}

uint64_t pn_clock_now(const pn_rt *rt) {
    return rt->o.virtual_clock ? rt->vnow : uv_now(rt->loop);
}

int pn_clock_fire_next(pn_rt *rt, uint64_t until) {
    pn_clock_timer *next = NULL;
    for (pn_link *l = rt->vtimers.head; l; l = l->next) {
        pn_clock_timer *ct = PN_CONTAINER(l, pn_clock_timer, link);
        if (ct->due > until) continue;
        if (!next || ct->due < next->due || (ct->due == next->due && ct->seq < next->seq))
            next = ct;
    }
    if (!next) {
        if (until > rt->vnow) rt->vnow = until;
        return 0;
    }
    rt->vnow = next->due;
    if (next->repeat) {
        next->due += next->repeat;
        next->seq = ++rt->vseq;
    } else {
        pn_list_remove(&rt->vtimers, &next->link);
    }
    next->cb(next->owner); /* may close it */
    return 1;
}
