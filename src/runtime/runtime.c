/*
 * The runtime's lifecycle: creation, the keepalive of a run script's loop,
 * the graceful drain, and teardown (from the caller, or when the host goes
 * first).
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "core/trust.h"
#include "internal.h"

/* ---- keepalive: a run script's loop lives while it has work ------------------- */

int pn_rt_busy(const pn_rt *rt) {
    const pn_script *s = rt->trusted;
    if (!s || rt->closed) return 0;
    if (!pn_list_empty(&s->tasks) || !pn_list_empty(&s->timers)) return 1;
    for (const pn_link *l = s->bindings.head; l; l = l->next)
        if (PN_BINDING_OF(l)->exposed) return 1;
    return 0;
}

void pn_rt_update_keepalive(pn_rt *rt) {
    if (rt->closed) return;
    if (pn_rt_busy(rt))
        uv_ref((uv_handle_t *)&rt->keepalive);
    else
        uv_unref((uv_handle_t *)&rt->keepalive);
}

/* ---- drain ------------------------------------------------------------------------ */

static void drain_done(pn_rt *rt) {
    if (!rt->draining) return;
    rt->draining = 0;
    uv_timer_stop(&rt->drain_timer);
    void (*cb)(void *) = rt->drain_cb;
    rt->drain_cb = NULL;
    if (cb) cb(rt->drain_ud);
}

void pn_rt_drain_check(pn_rt *rt) {
    if (rt->draining && rt->serving == 0) drain_done(rt);
}

static void on_drain_timeout(uv_timer_t *t) {
    pn_rt *rt = t->data;
    pn_rt_log(rt, PN_LOG_WARN, "stopping with %d call(s) still being served", rt->serving);
    drain_done(rt);
}

void pn_rt_drain(pn_rt *rt, uint32_t ms, void (*cb)(void *ud), void *ud) {
    pn_host_stop_listening(rt->h);
    for (pn_link *l = rt->scripts.head; l; l = l->next)
        pn_handler_unexpose_all(PN_SCRIPT_OF(l));
    if (rt->trusted) pn_handler_unexpose_all(rt->trusted);
    rt->drain_cb = cb;
    rt->drain_ud = ud;
    rt->draining = 1;
    uv_timer_start(&rt->drain_timer, on_drain_timeout, ms, 0);
    pn_rt_drain_check(rt);
}

/* ---- new ---------------------------------------------------------------------------- */

static void on_host_closing(void *ud);

static void timer_init(pn_rt *rt, uv_timer_t *t, int ref) {
    uv_timer_init(rt->loop, t);
    t->data = rt;
    if (!ref) uv_unref((uv_handle_t *)t);
}

pn_rt *pn_rt_new(pn_host *h, uv_loop_t *loop, const pn_rt_opts *o, pn_err *e) {
    pn_rt *rt = calloc(1, sizeof *rt);
    if (!rt) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    rt->h = h;
    rt->loop = loop;
    if (o) rt->o = *o;
    if (o && o->config_path) {
        rt->config_path = strdup(o->config_path);
        if (!rt->config_path) {
            free(rt);
            pn_err_set(e, PN_ENOMEM, "out of memory");
            return NULL;
        }
    }
    rt->o.config_path = rt->config_path;
    if (o && o->trust_path) rt->trust_path = strdup(o->trust_path);
    rt->o.trust_path = rt->trust_path;
    if (pn_host_on_event(h, pn_event_on, rt) != 0 ||
        pn_host_on_closing(h, on_host_closing, rt) != 0) {
        pn_host_off_event(h, pn_event_on, rt);
        free(rt->config_path);
        free(rt);
        pn_err_set(e, PN_ELIMIT, "too many event listeners on this host");
        return NULL;
    }
    uv_async_init(loop, &rt->keepalive, NULL);
    uv_unref((uv_handle_t *)&rt->keepalive);
    timer_init(rt, &rt->drain_timer, 0);
    timer_init(rt, &rt->reap_timer, 0);
    pn_runq_init(rt);
    pn_logline_limit_init(&rt->loglimit, pn_host_log_window(h));
    timer_init(rt, &rt->log_timer, 0); /* a summary due must not keep a loop alive */
    return rt;
}

/* ---- close ---------------------------------------------------------------------------- */

/* The host goes first: stop every script now, while the host is whole. */
void pn_rt_close_scripts(pn_rt *rt) {
    while (!pn_list_empty(&rt->scripts))
        pn_script_close(PN_SCRIPT_OF(rt->scripts.head));
    if (rt->trusted) {
        while (!pn_list_empty(&rt->trusted->tasks))
            pn_task_cancel(PN_TASK_OF(rt->trusted->tasks.head));
        pn_handler_unexpose_all(rt->trusted);
    }
    pn_rt_update_keepalive(rt);
}

static void on_host_closing(void *ud) {
    pn_rt *rt = ud;
    pn_host_off_event(rt->h, pn_event_on, rt);
    if (rt->resuming) {
        /* Closed from inside a script (a run script's host:close()): its
         * coroutine is still running. Handles go with the host now; the
         * scripts stop when the outermost resume returns. */
        rt->host_gone = 1;
        rt->scripts_close_pending = 1;
        return;
    }
    pn_rt_close_scripts(rt);
    rt->host_gone = 1;
}

static void rt_do_close(pn_rt *rt);

void pn_rt_after_resume(pn_rt *rt) {
    if (rt->resuming) return;
    if (rt->scripts_close_pending) {
        rt->scripts_close_pending = 0;
        pn_rt_close_scripts(rt);
    }
    if (rt->close_pending) {
        rt->close_pending = 0;
        rt_do_close(rt);
    }
}

void pn_rt_close(pn_rt *rt) {
    if (rt->closed || rt->close_pending) return;
    /* Counts still held back reach the log while it is there. */
    pn_rt_log_flush(rt);
    /* The callbacks' owner is going away now, even when the close waits. */
    rt->o.log = NULL;
    rt->o.on_error = NULL;
    rt->o.on_script = NULL;
    rt->drain_cb = NULL;
    if (rt->resuming) {
        rt->close_pending = 1; /* a script asked: it is still running */
        return;
    }
    rt_do_close(rt);
}

static void rt_do_close(pn_rt *rt) {
    pn_scriptdir_close(rt);
    if (!rt->host_gone) {
        pn_host_off_event(rt->h, pn_event_on, rt);
        pn_host_off_closing(rt->h, on_host_closing, rt);
    }
    /* Scripts first (their handles are revoked), then the handles. */
    while (!pn_list_empty(&rt->scripts))
        pn_script_close(PN_SCRIPT_OF(rt->scripts.head));
    if (rt->trusted) pn_script_close(rt->trusted);
    rt->closed = 1;
    pn_caps_conf_free(rt);
    free(rt->config_path);
    free(rt->trust_path);
    pn_trust_free(rt->labels);
    rt->labels = NULL;
    uv_handle_t *hs[] = {PN_HANDLE(&rt->keepalive),  PN_HANDLE(&rt->drain_timer),
                         PN_HANDLE(&rt->reap_timer), PN_HANDLE(&rt->runq),
                         PN_HANDLE(&rt->bench),      PN_HANDLE(&rt->log_timer)};
    pn_handles_close(&rt->handles, hs, sizeof hs / sizeof *hs, free, rt);
}
