/*
 * The run queue: handler scripts take turns.
 *
 * A handler script's resumes are not run where they become due (a timer
 * pass, a burst of events, a read callback with many calls): libuv would
 * run every due one back to back, one slice each, with no I/O polled in
 * between. They wait here, one queue per script, and the loop serves the
 * scripts round-robin (one resume each in turn) for PN_RT_TURN_MS per turn
 * at most, then polls I/O again. So another script's resume waits at most
 * one resume of each script with work ready, and a new connection or call
 * at most one turn (PN_RT_TURN_MS, or one slice if a resume takes that).
 */
#include "internal.h"

#define PN_RUNQ_TURN_NS ((uint64_t)PN_RT_TURN_MS * 1000000u)

#define SCRIPT_OF_RR(l) PN_CONTAINER(l, pn_script, rr_link)

void pn_runq_drop_script(pn_script *s) {
    pn_list_remove(&s->rt->rr, &s->rr_link);
}

static void rr_push(pn_script *s) {
    if (!s->rr_link.linked) pn_list_push(&s->rt->rr, &s->rr_link);
}

void pn_runq_remove(pn_task *t) {
    pn_script *s = t->s;
    if (!t->ready_link.linked) return;
    pn_list_remove(&s->ready, &t->ready_link);
    if (pn_list_empty(&s->ready)) pn_runq_drop_script(s);
}

/* The first script of the round that is not benched, or NULL (then
 * *wake is the uv_hrtime() at which the first benched one may run). */
static pn_script *rr_pick(pn_rt *rt, uint64_t now, uint64_t *wake) {
    *wake = UINT64_MAX;
    for (pn_link *l = rt->rr.head; l; l = l->next) {
        pn_script *s = SCRIPT_OF_RR(l);
        if (s->bench_until <= now) return s;
        if (s->bench_until < *wake) *wake = s->bench_until;
    }
    return NULL;
}

static void on_runq(uv_idle_t *idle);

static void on_bench(uv_timer_t *tm) {
    pn_rt *rt = tm->data;
    if (!pn_list_empty(&rt->rr) && !uv_is_active((uv_handle_t *)&rt->runq))
        uv_idle_start(&rt->runq, on_runq);
}

static void on_runq(uv_idle_t *idle) {
    pn_rt *rt = idle->data;
    uint64_t now = uv_hrtime();
    uint64_t end = now + PN_RUNQ_TURN_NS;
    uint64_t wake = UINT64_MAX;
    do {
        pn_script *s = rr_pick(rt, now, &wake);
        if (!s) break;
        /* The script goes to the back of the round before it runs. */
        pn_runq_drop_script(s);
        pn_task *t = PN_CONTAINER(s->ready.head, pn_task, ready_link);
        int nargs = t->nargs;
        pn_runq_remove(t);
        if (!pn_list_empty(&s->ready)) rr_push(s);
        s->pins++; /* the resume may close the script */
        pn_task_run(t, nargs);
        uint64_t after = uv_hrtime();
        /* A resume longer than a turn benches its script as long again:
         * the loop then polls I/O freely (a handshake takes several
         * messages) and serves the other scripts, so a script that keeps
         * running to its slice gets about half the loop, not all of it. */
        if (after - now > PN_RUNQ_TURN_NS) s->bench_until = after + (after - now);
        pn_script_unpin(s);
        now = after;
    } while (!pn_list_empty(&rt->rr) && now < end);
    /* The turn's replies leave now: the host's own flush runs after the
     * next poll, which the run queue's idle handle makes return at once
     * (one more epoll_wait per call, at one call in flight). */
    if (!rt->host_gone) pn_host_flush(rt->h);
    if (pn_list_empty(&rt->rr)) {
        uv_idle_stop(&rt->runq);
    } else if (!rr_pick(rt, now, &wake)) {
        uv_idle_stop(&rt->runq);
        uv_timer_start(&rt->bench, on_bench, (wake - now) / 1000000u + 1, 0);
    }
}

void pn_runq_push(pn_task *t, int nargs) {
    pn_script *s = t->s;
    pn_rt *rt = s->rt;
    t->nargs = nargs;
    pn_list_push(&s->ready, &t->ready_link);
    rr_push(s);
    if (!uv_is_active((uv_handle_t *)&rt->runq)) uv_idle_start(&rt->runq, on_runq);
}

void pn_runq_init(pn_rt *rt) {
    uv_idle_init(rt->loop, &rt->runq);
    rt->runq.data = rt;
    uv_timer_init(rt->loop, &rt->bench);
    rt->bench.data = rt;
}

/* Tests: the virtual clock has no loop turns to wait for, and no bench. */
uint32_t pn_runq_run_all(pn_rt *rt, uint32_t max) {
    uint32_t n = 0;
    while (!pn_list_empty(&rt->rr) && n < max && !rt->closed) {
        pn_script *s = SCRIPT_OF_RR(rt->rr.head);
        pn_runq_drop_script(s);
        pn_task *t = PN_CONTAINER(s->ready.head, pn_task, ready_link);
        int nargs = t->nargs;
        pn_runq_remove(t);
        if (!pn_list_empty(&s->ready)) rr_push(s);
        s->pins++;
        pn_task_run(t, nargs);
        pn_script_unpin(s);
        n++;
    }
    return n;
}
