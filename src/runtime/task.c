/*
 * Tasks: every piece of script code the host starts (a handler serving a
 * call, a timer, an event, the main chunk) runs as a coroutine the runtime
 * owns, so the API's waiting functions can yield it and the loop resumes it
 * when the answer arrives. A task that ends answers its call from its
 * results (lua/reply.h).
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lua/pcall.h"
#include "lua/reply.h"

pn_task *pn_task_of(lua_State *L) {
    pn_task *t = *(pn_task **)lua_getextraspace(L);
    return t && t->co == L && !t->authorizing && !t->pooled ? t : NULL;
}

void pn_task_unhold(pn_task *t) {
    t->s->waiting -= t->held;
    t->held = 0;
}

static void task_unlink(pn_task *t) {
    pn_script *s = t->s;
    pn_task_unhold(t);
    pn_runq_remove(t);
    pn_list_remove(&s->tasks, &t->link);
    if (t->req) s->rt->serving--;
    if (t->send) pn_request_done(t->send); /* its peer may send one more */
    t->send = NULL;
    if (t->timer && t->timer->running == t) t->timer->running = NULL;
    if (!t->co) return; /* deferred: it never started */
    *(pn_task **)lua_getextraspace(t->co) = NULL;
    PN_SANDBOX_LIFTED(s->L) luaL_unref(s->L, LUA_REGISTRYINDEX, t->ref);
}

/* What every end of a task does after it: the script and the runtime
 * take note. */
static void task_ended(pn_script *s) {
    pn_rt *rt = s->rt;
    if (s == rt->trusted) pn_rt_update_keepalive(rt);
    pn_script_maybe_close(s);
    pn_rt_drain_check(rt);
}

void pn_task_free(pn_task *t) {
    pn_script *s = t->s;
    task_unlink(t);
    if (t->req) pn_reply_reason(t->req, PN_REASON_HANDLER_CRASH);
    free(t);
    task_ended(s);
}

/* A task whose function returned (never one that failed, was killed or
 * was cancelled while it waited) may keep its coroutine for the script's
 * next task: its stack is back at its base with nothing to close. Only a
 * handler script's, a bounded number, while the script has room. */
static int task_reusable(const pn_task *t) {
    const pn_script *s = t->s;
    return s->sandboxed && !s->retired && !s->closed && s->pool.len < PN_RT_TASK_POOL && !t->req &&
           !t->wait && lua_status(t->co) == LUA_OK && !pn_sandbox_over_budget(t->co) &&
           pn_sandbox_mem_left(s->L) >= pn_sandbox_mem_cap(s->L) / 4;
}

/* Ends a task that finished well: kept for reuse when it may be, else freed. */
static void task_finish(pn_task *t) {
    if (!task_reusable(t)) {
        pn_task_free(t);
        return;
    }
    pn_script *s = t->s;
    pn_runq_remove(t);
    pn_list_remove(&s->tasks, &t->link);
    if (t->send) pn_request_done(t->send);
    if (t->timer && t->timer->running == t) t->timer->running = NULL;
    lua_settop(t->co, 0);
    /* Its extra space still names it: the script cannot resume or close
     * the coroutine (sandbox.c host_owned), and pn_task_of sees pooled. */
    lua_State *co = t->co;
    int ref = t->ref;
    memset(t, 0, sizeof *t);
    t->s = s;
    t->co = co;
    t->ref = ref;
    t->pooled = 1;
    pn_list_push_front(&s->pool, &t->link);
    task_ended(s);
}

void pn_task_pool_drain(pn_script *s) {
    for (pn_link *l; (l = pn_list_shift(&s->spare));)
        free(PN_TASK_OF(l));
    for (pn_link *l; (l = pn_list_shift(&s->pool));) {
        pn_task *t = PN_TASK_OF(l);
        *(pn_task **)lua_getextraspace(t->co) = NULL;
        if (!s->closed) PN_SANDBOX_LIFTED(s->L) luaL_unref(s->L, LUA_REGISTRYINDEX, t->ref);
        free(t);
    }
}

/* Detaches the task from what it waits for: the waiter finds task == NULL. */
static void task_unwait(pn_task *t) {
    pn_wait *w = t->wait;
    if (!w) return;
    t->wait = NULL;
    w->task = NULL;
    w->cancel(w);
}

void pn_task_cancel(pn_task *t) {
    task_unwait(t);
    pn_task_free(t);
}

typedef struct {
    int (*push)(lua_State *co, void *ud);
    void *ud;
    int n;
} push_args;

static int push_protected(lua_State *L) {
    push_args *a = lua_touserdata(L, 1);
    lua_pop(L, 1);
    a->n = a->push(L, a->ud);
    return a->n;
}

/* Pushes the arguments under the cap, protected: 0, or -1 (logged). */
static int task_push_args(pn_task *t, int (*push)(lua_State *co, void *ud), void *ud) {
    push_args a = {push, ud, 0};
    lua_pushcfunction(t->co, push_protected);
    lua_pushlightuserdata(t->co, &a);
    if (lua_pcall(t->co, 1, LUA_MULTRET, 0) == LUA_OK) return 0;
    char key[PN_LOGLINE_KEY_MAX];
    snprintf(key, sizeof key, "args %.50s", t->what);
    pn_rt_log_limited(t->s->rt, PN_LOG_ERROR, key, "%s: %s: cannot pass the arguments: %s",
                      t->s->path, t->what, lua_tostring(t->co, -1));
    return -1;
}

static void task_describe(pn_task *t, pn_script *s, int kind, const char *what) {
    t->s = s;
    t->kind = kind;
    size_t wl = strnlen(what, sizeof t->what - 1); /* per call: no snprintf */
    memcpy(t->what, what, wl);
    t->what[wl] = '\0';
}

/* A zeroed task struct: one a deferred task left behind, or a new one. */
static pn_task *task_alloc(pn_script *s) {
    pn_link *l = pn_list_shift(&s->spare);
    return l ? memset(PN_TASK_OF(l), 0, sizeof(pn_task)) : calloc(1, sizeof(pn_task));
}

/* Gives t a coroutine with fn_ref on it: a kept one (its old struct then
 * serves the next task_alloc: no malloc per call either way), or a new one. */
static void task_attach(pn_task *t, int fn_ref) {
    pn_script *s = t->s;
    lua_State *L = s->L;
    pn_link *kept = pn_list_shift(&s->pool);
    /* Bookkeeping is the host's: the cap must not make it fail half-way. */
    PN_SANDBOX_LIFTED(L) {
        if (kept) {
            pn_task *p = PN_TASK_OF(kept);
            t->co = p->co;
            t->ref = p->ref;
            if (s->spare.len < PN_RT_TASK_SPARE)
                pn_list_push_front(&s->spare, &p->link);
            else
                free(p);
        } else {
            t->co = lua_newthread(L);
            t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        lua_rawgeti(t->co, LUA_REGISTRYINDEX, fn_ref);
    }
    *(pn_task **)lua_getextraspace(t->co) = t;
}

pn_task *pn_task_start(pn_script *s, int kind, int fn_ref, const char *what,
                       int (*push)(lua_State *co, void *ud), void *ud) {
    int serving = kind == PN_TASK_HANDLER || kind == PN_TASK_ADMIN;
    if (s->closed || (s->retired && !serving)) return NULL;
    /* Handlers were checked with their arguments' size by the caller. */
    if (!serving && pn_script_full(s, 0)) return NULL;
    pn_task *t = task_alloc(s);
    if (!t) return NULL;
    task_describe(t, s, kind, what);
    task_attach(t, fn_ref);
    pn_list_push_front(&s->tasks, &t->link);
    /* Arguments count against the script's memory: decode them under the cap. */
    if (push && task_push_args(t, push, ud) != 0) {
        pn_task_free(t);
        return NULL;
    }
    return t;
}

pn_task *pn_task_defer(pn_script *s, int kind, const char *what, int (*start)(pn_task *t)) {
    if (s->closed) return NULL;
    pn_task *t = task_alloc(s);
    if (!t) return NULL;
    task_describe(t, s, kind, what);
    t->ref = LUA_NOREF;
    t->start = start;
    pn_list_push_front(&s->tasks, &t->link);
    return t;
}

int pn_task_begin(pn_task *t, int fn_ref, int (*push)(lua_State *co, void *ud), void *ud) {
    task_attach(t, fn_ref);
    if (push && task_push_args(t, push, ud) != 0) {
        lua_settop(t->co, 0);
        return -1;
    }
    return 0;
}

int pn_task_wait(lua_State *L, pn_task *t, pn_wait *w) {
    t->wait = w;
    w->task = t;
    return lua_yield(L, 0);
}

/* Built with the cap lifted: a full state must still be told it failed
 * (the message is cut, so its size is the host's). */
const char *pn_task_error_text(pn_task *t) {
    lua_State *L = t->s->L;
    const char *tb = NULL;
    PN_SANDBOX_LIFTED(L) tb = pn_pcall_traceback_of(L, t->co);
    return tb;
}

/* Answers the call from the task's nres results on co. */
static void answer(pn_task *t, int nres) {
    pn_reply_req r = {t->req, 0};
    t->req = NULL;
    t->s->rt->serving--;
    pn_err e;
    /* The encoding is work the script chose the size of (table slots, not
     * output bytes): it gets one slice of its own, and a reply that takes
     * longer fails the call. */
    if (pn_reply_results(t->co, &r, nres, 0, &e) == PN_REPLY_UNENCODABLE) {
        char key[PN_LOGLINE_KEY_MAX];
        snprintf(key, sizeof key, "result %.50s", t->what);
        pn_rt_log_limited(t->s->rt, PN_LOG_ERROR, key, "%s: %s: cannot encode its result: %s",
                          t->s->path, t->what, e.msg);
    }
}

static void task_done(pn_task *t, int rc, int nres) {
    pn_script *s = t->s;
    if (t->authorizing) {
        pn_handler_gate_done(t, rc);
        return;
    }
    if (rc == LUA_OK) {
        if (t->req) answer(t, nres);
        task_finish(t);
        return;
    }
    const char *tb = pn_task_error_text(t);
    /* A run script's own errors go to its error callback (printed
     * once, then the process exits), the rest to the log. */
    if (!s->sandboxed && t->kind == PN_TASK_MAIN && s->rt->o.on_error) {
        s->rt->o.on_error(s->rt->o.on_error_ud, tb);
    } else {
        /* A peer can make a handler fail on every call it sends. */
        char key[PN_LOGLINE_KEY_MAX];
        snprintf(key, sizeof key, "failed %.50s", t->what);
        pn_rt_log_limited(s->rt, PN_LOG_ERROR, key, "%s: %s failed: %s", s->path, t->what, tb);
    }
    lua_pop(s->L, 1);
    pn_task_free(t);
}

/* Replaces the task's results with the host's message msg as an error.
 * Pushed outside any protected call: it must not fail at the cap (Lua
 * would abort). */
static int task_fail(pn_task *t, int nres, const char *msg) {
    lua_pop(t->co, nres);
    PN_SANDBOX_LIFTED(t->s->L) lua_pushstring(t->co, msg);
    return LUA_ERRRUN;
}

static void task_run(pn_task *t, int nargs) {
    if (t->start) {
        int (*start)(pn_task * t) = t->start;
        t->start = NULL;
        nargs = start(t);
        if (nargs < 0) return; /* it ended the task */
    }
    lua_State *co = t->co;
    pn_rt *rt = t->s->rt;
    t->wait = NULL;
    lua_State *prev = pn_sandbox_begin(co);
    int nres = 0;
    int rc = lua_resume(co, NULL, nargs, &nres);
    pn_sandbox_end(co, prev);
    if (t->timer && t->s->sandboxed && pn_sandbox_over_budget(co)) {
        /* A tick that needs more than a slice would need it again at the
         * next tick, for good: the timer goes. */
        pn_rt_log(rt, PN_LOG_WARN, "%s: every() timer cancelled: its tick was stopped for CPU",
                  t->s->path);
        pn_timer_free(t->timer);
    }
    if ((rc == LUA_OK || rc == LUA_YIELD) && pn_sandbox_over_budget(co)) {
        /* Killed, the script still reached its end (a tail call returning
         * the kill's error) or a wait: a killed task stays dead. */
        task_unwait(t);
        rc = task_fail(t, nres,
                       "stopped for CPU: the budget or slice ran out (the error was caught)");
        nres = 0;
    }
    if (rc == LUA_YIELD) {
        if (t->wait) {
            lua_pop(co, nres);
            return;
        }
        /* coroutine.yield() outside any coroutine of the script's own. */
        rc = task_fail(t, nres, "coroutine.yield() outside a coroutine: use peernet.sleep to wait");
        nres = 0;
    }
    task_done(t, rc, nres);
}

void pn_task_run(pn_task *t, int nargs) {
    pn_rt *rt = t->s->rt;
    /* Counted until t is done with, its answer included: an answer can
     * close its link, whose "disconnected" runs a run script at once, and
     * a close that script asks for must wait for pn_rt_after_resume. */
    rt->resuming++;
    task_run(t, nargs);
    rt->resuming--;
    pn_rt_after_resume(rt);
}

void pn_task_resume(pn_task *t, int nargs) {
    if (!t->s->sandboxed || t->s->rt->closed) {
        pn_task_run(t, nargs);
        return;
    }
    t->wait = NULL;
    pn_runq_push(t, nargs);
}
