/*
 * The script runtime: scripts and their states, tasks (the coroutines the
 * host resumes), dispatch of calls into scripts, the built-in beam_admin
 * handler, reload by replacement, and the graceful drain.
 */
#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/key.h"
#include "core/logline.h"
#include "core/trust.h"
#include "runtime.h"
#include "lua/value.h"

/* ---- logging --------------------------------------------------------------- */

static void rt_emit(void *ud, int level, const char *line) {
    pn_rt *rt = ud;
    if (rt->o.log) {
        rt->o.log(rt->o.log_ud, level, line);
    } else if (level >= PN_LOG_WARN) {
        fprintf(stderr, "peernet [%s] %s\n", level == PN_LOG_WARN ? "warn" : "error", line);
    }
}

void pn_rt_log(pn_rt *rt, int level, const char *fmt, ...) {
    char raw[PN_RT_LOG_MAX];
    char line[PN_RT_LOG_MAX * 4 + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    /* A script's message (an error, peernet.log) or a caller's handle name
     * may hold newlines: one event, one line. */
    pn_logline_escape(line, sizeof line, raw);
    rt_emit(rt, level, line);
}

static void on_log_timer(uv_timer_t *tm) {
    pn_rt *rt = tm->data;
    uint64_t now = uv_now(rt->loop);
    uint64_t next = pn_logline_limit_flush(&rt->loglimit, now, rt_emit, rt);
    if (next && !rt->closing) uv_timer_start(&rt->log_timer, on_log_timer, next - now, 0);
}

void pn_rt_log_limited(pn_rt *rt, int level, const char *key, const char *fmt, ...) {
    char raw[PN_LOGLINE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    pn_logline_limit_write(&rt->loglimit, uv_now(rt->loop), key, level, raw, rt_emit, rt);
    if (!uv_is_active((uv_handle_t *)&rt->log_timer) && !rt->closing)
        uv_timer_start(&rt->log_timer, on_log_timer, rt->loglimit.window_ms, 0);
}

/* ---- the script a state belongs to ------------------------------------------ */

/* Each state's registry holds its script under this key. */
static const char script_key = 0;

pn_script *pn_rt_script_of(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key);
    pn_script *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
}

pn_task *pn_rt_task_of(lua_State *L) {
    pn_task *t = *(pn_task **)lua_getextraspace(L);
    return t && t->co == L && !t->authorizing ? t : NULL;
}

/* ---- keepalive: a run script's loop lives while it has work ------------------- */

int pn_rt_busy(const pn_rt *rt) {
    const pn_script *s = rt->trusted;
    if (!s || rt->closing) return 0;
    if (s->ntasks || s->timers) return 1;
    for (const pn_binding *b = s->bindings; b; b = b->next)
        if (b->exposed) return 1;
    return 0;
}

void pn_rt_update_keepalive(pn_rt *rt) {
    if (rt->closing) return;
    if (pn_rt_busy(rt))
        uv_ref((uv_handle_t *)&rt->keepalive);
    else
        uv_unref((uv_handle_t *)&rt->keepalive);
}

/* ---- tasks ------------------------------------------------------------------- */

static void script_maybe_close(pn_script *s);
static void rt_after_resume(pn_rt *rt);

static void runq_remove(pn_task *t);

static void task_unlink(pn_task *t) {
    pn_script *s = t->s;
    if (t->queued) runq_remove(t);
    if (t->prev)
        t->prev->next = t->next;
    else
        s->tasks = t->next;
    if (t->next) t->next->prev = t->prev;
    s->ntasks--;
    if (t->req) s->rt->serving--;
    if (t->send) pn_request_done(t->send); /* its peer may send one more */
    t->send = NULL;
    if (t->timer && t->timer->running == t) t->timer->running = NULL;
    *(pn_task **)lua_getextraspace(t->co) = NULL;
    pn_sandbox_unlimited(s->L, 1);
    luaL_unref(s->L, LUA_REGISTRYINDEX, t->ref);
    pn_sandbox_unlimited(s->L, 0);
}

static void drain_check(pn_rt *rt);

/* The task is done (or cancelled): forget it and close what waited on it. */
static void task_free(pn_task *t) {
    pn_script *s = t->s;
    pn_rt *rt = s->rt;
    task_unlink(t);
    if (t->req) {
        pn_err e;
        pn_request_reply_error(t->req, "handler_crash", &e);
    }
    free(t);
    if (s == rt->trusted) pn_rt_update_keepalive(rt);
    script_maybe_close(s);
    drain_check(rt);
}

static void task_cancel(pn_task *t) {
    if (t->wait) {
        pn_wait *w = t->wait;
        t->wait = NULL;
        w->task = NULL;
        w->cancel(w);
    }
    task_free(t);
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

/* Is the script too full to start a task with args_len bytes of arguments?
 * Answered from the counters, without touching the state: a refusal costs
 * nothing, except one full collection per PN_RT_CAP_GC_MS in case the
 * script holds garbage. */
static int script_full(pn_script *s, size_t args_len) {
    if (!s->sandboxed) return 0;
    size_t need = PN_RT_TASK_HEADROOM + args_len;
    if (pn_sandbox_mem_left(s->L) >= need) return 0;
    uint64_t now = uv_now(s->rt->loop);
    if (s->cap_gc_ms && now - s->cap_gc_ms < PN_RT_CAP_GC_MS) return 1;
    s->cap_gc_ms = now;
    lua_gc(s->L, LUA_GCCOLLECT);
    if (pn_sandbox_mem_left(s->L) >= need) return 0;
    pn_rt_log(s->rt, PN_LOG_WARN,
              "%s: at its memory cap (%zu of %zu bytes): calls are refused (overloaded) until it "
              "frees memory",
              s->path, pn_sandbox_mem_used(s->L), pn_sandbox_mem_cap(s->L));
    return 1;
}

pn_task *pn_rt_task_start(pn_script *s, int kind, int fn_ref, const char *what,
                          int (*push)(lua_State *co, void *ud), void *ud) {
    if (s->closed || (s->retired && kind != PN_TASK_HANDLER && kind != PN_TASK_ADMIN)) return NULL;
    /* Handlers were checked with their arguments' size by the caller. */
    if (kind != PN_TASK_HANDLER && kind != PN_TASK_ADMIN && script_full(s, 0)) return NULL;
    pn_task *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    lua_State *L = s->L;
    /* Bookkeeping is the host's: the cap must not make it fail half-way. */
    pn_sandbox_unlimited(L, 1);
    t->co = lua_newthread(L);
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_rawgeti(t->co, LUA_REGISTRYINDEX, fn_ref);
    pn_sandbox_unlimited(L, 0);
    t->s = s;
    t->kind = kind;
    snprintf(t->what, sizeof t->what, "%s", what);
    *(pn_task **)lua_getextraspace(t->co) = t;
    t->next = s->tasks;
    if (s->tasks) s->tasks->prev = t;
    s->tasks = t;
    s->ntasks++;
    if (push) {
        /* Arguments count against the script's memory: decode them under
         * the cap, protected. */
        push_args a = {push, ud, 0};
        lua_pushcfunction(t->co, push_protected);
        lua_pushlightuserdata(t->co, &a);
        if (lua_pcall(t->co, 1, LUA_MULTRET, 0) != LUA_OK) {
            char key[PN_LOGLINE_KEY_MAX];
            snprintf(key, sizeof key, "args %.50s", what);
            pn_rt_log_limited(s->rt, PN_LOG_ERROR, key, "%s: %s: cannot pass the arguments: %s",
                              s->path, what, lua_tostring(t->co, -1));
            task_free(t);
            return NULL;
        }
    }
    return t;
}

int pn_rt_task_wait(lua_State *L, pn_task *t, pn_wait *w) {
    t->wait = w;
    w->task = t;
    return lua_yield(L, 0);
}

/* The error value at the top of co as text with a traceback, pushed on s->L.
 * The traceback is built with the cap lifted (a full state must still be
 * told it failed), so only the first PN_RT_ERRMSG_MAX bytes of the
 * script's message go into it: the rest would be host memory the script
 * chose the size of (and the log line is cut shorter anyway). */
static const char *error_text(pn_script *s, lua_State *co) {
    char msg[PN_RT_ERRMSG_MAX + 1];
    size_t len = 0;
    const char *text = lua_type(co, -1) == LUA_TSTRING ? lua_tolstring(co, -1, &len) : NULL;
    if (text) {
        if (len > PN_RT_ERRMSG_MAX) len = PN_RT_ERRMSG_MAX;
        memcpy(msg, text, len);
        msg[len] = '\0';
    } else {
        snprintf(msg, sizeof msg, "(error object is a %s value)", luaL_typename(co, -1));
    }
    pn_sandbox_unlimited(s->L, 1);
    luaL_traceback(s->L, co, msg, 0);
    pn_sandbox_unlimited(s->L, 0);
    return lua_tostring(s->L, -1);
}

/* Answers the call with the value at idx of co ({ok, V}, or {error, V}). */
static void answer(pn_task *t, int idx, int ok) {
    pn_request *req = t->req;
    t->req = NULL;
    t->s->rt->serving--;
    lua_State *co = t->co;
    pn_etf_buf b;
    pn_err e;
    /* The encoding is work the script chose the size of (table slots, not
     * output bytes): it gets one slice of its own, and a reply that takes
     * longer fails the call. */
    lua_State *prev = pn_sandbox_begin(co);
    int rc = pn_value_encode_protected(co, idx, 0, &b, &e);
    pn_sandbox_end(co, prev);
    if (rc != 0) {
        char key[PN_LOGLINE_KEY_MAX];
        snprintf(key, sizeof key, "result %.50s", t->what);
        pn_rt_log_limited(t->s->rt, PN_LOG_ERROR, key, "%s: %s: cannot encode its result: %s",
                          t->s->path, t->what, e.msg);
        pn_request_reply_error(req, "handler_crash", &e);
    } else if (ok) {
        pn_request_reply(req, b.data, b.len, &e);
    } else {
        pn_request_reply_error_term(req, b.data, b.len, &e);
    }
    pn_etf_buf_free(&b);
}

static void gate_done(pn_task *t, int rc, int nres);

static void task_done(pn_task *t, int rc, int nres) {
    pn_script *s = t->s;
    lua_State *co = t->co;
    if (t->authorizing) {
        gate_done(t, rc, nres);
        return;
    }
    if (rc == LUA_OK) {
        if (t->req) {
            int base = lua_gettop(co) - nres;
            if (nres >= 2 && lua_isnil(co, base + 1) && !lua_isnil(co, base + 2))
                answer(t, base + 2, 0);
            else if (nres == 0)
                lua_pushnil(co), answer(t, -1, 1);
            else
                answer(t, base + 1, 1);
        }
    } else {
        const char *tb = error_text(s, co);
        /* A run script's own errors go to its error callback (printed
         * once, then the process exits), the rest to the log. */
        if (!s->sandboxed && t->kind == PN_TASK_MAIN && s->rt->o.on_error)
            s->rt->o.on_error(s->rt->o.on_error_ud, tb);
        else {
            /* A peer can make a handler fail on every call it sends. */
            char key[PN_LOGLINE_KEY_MAX];
            snprintf(key, sizeof key, "failed %.50s", t->what);
            pn_rt_log_limited(s->rt, PN_LOG_ERROR, key, "%s: %s failed: %s", s->path, t->what, tb);
        }
        lua_pop(s->L, 1);
    }
    task_free(t);
}

static void task_run(pn_task *t, int nargs) {
    lua_State *co = t->co;
    pn_rt *rt = t->s->rt;
    t->wait = NULL;
    lua_State *prev = pn_sandbox_begin(co);
    int nres = 0;
    rt->resuming++;
    int rc = lua_resume(co, NULL, nargs, &nres);
    rt->resuming--;
    pn_sandbox_end(co, prev);
    if (t->timer && t->s->sandboxed && pn_sandbox_over_budget(co)) {
        /* A tick that needs more than a slice would need it again at the
         * next tick, for good: the timer goes. */
        pn_rt_log(rt, PN_LOG_WARN, "%s: every() timer cancelled: its tick was stopped for CPU",
                  t->s->path);
        pn_rt_timer_free(t->timer);
    }
    if ((rc == LUA_OK || rc == LUA_YIELD) && pn_sandbox_over_budget(co)) {
        /* Killed, the script still reached its end (a tail call returning
         * the kill's error) or a wait: a killed task stays dead. */
        if (t->wait) {
            pn_wait *w = t->wait;
            t->wait = NULL;
            w->task = NULL;
            w->cancel(w);
        }
        lua_pop(co, nres);
        nres = 0;
        pn_sandbox_unlimited(t->s->L, 1);
        lua_pushliteral(co, "stopped for CPU: the budget or slice ran out (the error was caught)");
        pn_sandbox_unlimited(t->s->L, 0);
        rc = LUA_ERRRUN;
    }
    if (rc == LUA_YIELD) {
        if (t->wait) {
            lua_pop(co, nres);
            rt_after_resume(rt);
            return;
        }
        /* coroutine.yield() outside any coroutine of the script's own. The
         * message is the host's, pushed outside any protected call: it must
         * not fail at the cap (Lua would abort). */
        lua_pop(co, nres);
        pn_sandbox_unlimited(t->s->L, 1);
        lua_pushliteral(co, "coroutine.yield() outside a coroutine: use peernet.sleep to wait");
        pn_sandbox_unlimited(t->s->L, 0);
        rc = LUA_ERRRUN;
    }
    task_done(t, rc, nres);
    rt_after_resume(rt);
}

/* ---- the run queue: handler scripts take turns -------------------------------- */

/* A handler script's resumes are not run where they become due (a timer
 * pass, a burst of events, a read callback with many calls): libuv would
 * run every due one back to back, one slice each, with no I/O polled in
 * between. They wait here, one queue per script, and the loop serves the
 * scripts round-robin (one resume each in turn) for PN_RT_TURN_MS per turn
 * at most, then polls I/O again. So another script's resume waits at most
 * one resume of each script with work ready, and a new connection or call
 * at most one turn (PN_RT_TURN_MS, or one slice if a resume takes that). */

static void rr_drop(pn_rt *rt, pn_script *s) {
    if (!s->in_rr) return;
    pn_script *prev = NULL;
    for (pn_script *o = rt->rr; o; prev = o, o = o->rr_next) {
        if (o != s) continue;
        if (prev)
            prev->rr_next = o->rr_next;
        else
            rt->rr = o->rr_next;
        if (rt->rr_tail == o) rt->rr_tail = prev;
        break;
    }
    s->rr_next = NULL;
    s->in_rr = 0;
}

static void rr_push(pn_rt *rt, pn_script *s) {
    if (s->in_rr) return;
    s->in_rr = 1;
    s->rr_next = NULL;
    if (rt->rr_tail)
        rt->rr_tail->rr_next = s;
    else
        rt->rr = s;
    rt->rr_tail = s;
}

static void runq_remove(pn_task *t) {
    pn_script *s = t->s;
    if (t->ready_prev)
        t->ready_prev->ready_next = t->ready_next;
    else
        s->ready = t->ready_next;
    if (t->ready_next)
        t->ready_next->ready_prev = t->ready_prev;
    else
        s->ready_tail = t->ready_prev;
    t->ready_prev = t->ready_next = NULL;
    t->queued = 0;
    if (!s->ready) rr_drop(s->rt, s);
}

static void script_unpin(pn_script *s);
static void on_runq(uv_idle_t *idle);

/* The first script of the round that is not benched, or NULL (then
 * *wake is the uv_hrtime() at which the first benched one may run). */
static pn_script *rr_pick(pn_rt *rt, uint64_t now, uint64_t *wake) {
    *wake = UINT64_MAX;
    for (pn_script *s = rt->rr; s; s = s->rr_next) {
        if (s->bench_until <= now) return s;
        if (s->bench_until < *wake) *wake = s->bench_until;
    }
    return NULL;
}

static void on_bench(uv_timer_t *tm) {
    pn_rt *rt = tm->data;
    if (rt->rr && !uv_is_active((uv_handle_t *)&rt->runq)) uv_idle_start(&rt->runq, on_runq);
}

static void on_runq(uv_idle_t *idle) {
    pn_rt *rt = idle->data;
    uint64_t now = uv_hrtime();
    uint64_t end = now + (uint64_t)PN_RT_TURN_MS * 1000000u;
    uint64_t wake = UINT64_MAX;
    do {
        pn_script *s = rr_pick(rt, now, &wake);
        if (!s) break;
        /* The script goes to the back of the round before it runs. */
        rr_drop(rt, s);
        pn_task *t = s->ready;
        int nargs = t->nargs;
        runq_remove(t);
        if (s->ready) rr_push(rt, s);
        s->pins++; /* the resume may close the script */
        task_run(t, nargs);
        uint64_t after = uv_hrtime();
        /* A resume longer than a turn benches its script as long again:
         * the loop then polls I/O freely (a handshake takes several
         * messages) and serves the other scripts, so a script that keeps
         * running to its slice gets about half the loop, not all of it. */
        if (after - now > (uint64_t)PN_RT_TURN_MS * 1000000u)
            s->bench_until = after + (after - now);
        script_unpin(s);
        now = after;
    } while (rt->rr && now < end);
    if (!rt->rr) {
        uv_idle_stop(&rt->runq);
    } else if (!rr_pick(rt, now, &wake)) {
        uv_idle_stop(&rt->runq);
        uv_timer_start(&rt->bench, on_bench, (wake - now) / 1000000u + 1, 0);
    }
}

void pn_rt_task_resume(pn_task *t, int nargs) {
    pn_script *s = t->s;
    pn_rt *rt = s->rt;
    if (!s->sandboxed || rt->closing) {
        task_run(t, nargs);
        return;
    }
    t->wait = NULL;
    t->queued = 1;
    t->nargs = nargs;
    t->ready_next = NULL;
    t->ready_prev = s->ready_tail;
    if (s->ready_tail)
        s->ready_tail->ready_next = t;
    else
        s->ready = t;
    s->ready_tail = t;
    rr_push(rt, s);
    if (!uv_is_active((uv_handle_t *)&rt->runq)) uv_idle_start(&rt->runq, on_runq);
}

/* ---- scripts ------------------------------------------------------------------- */

static void release_binding(pn_binding *b);

static void grace_closed(uv_handle_t *hd) {
    free(hd);
}

static void script_free(pn_script *s) {
    free(s->path);
    free(s);
}

static void script_close(pn_script *s) {
    if (s->closed) return;
    s->closed = 1;
    pn_rt *rt = s->rt;
    while (s->tasks)
        task_cancel(s->tasks);
    rr_drop(rt, s);
    while (s->timers)
        pn_rt_timer_free(s->timers);
    while (s->bindings) {
        pn_binding *b = s->bindings;
        s->bindings = b->next;
        release_binding(b);
    }
    if (s->handle) *s->handle = NULL;
    if (s->grace) uv_close((uv_handle_t *)s->grace, grace_closed);
    s->grace = NULL;
    for (pn_script **pp = &rt->scripts; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (s->sandboxed) {
        pn_sandbox_close(s->L);
    } else {
        luaL_unref(s->L, LUA_REGISTRYINDEX, s->events_ref);
        if (rt->trusted == s) rt->trusted = NULL;
    }
    pn_caps_free(s->caps);
    s->caps = NULL;
    if (s->pins == 0) script_free(s);
}

static void script_maybe_close(pn_script *s) {
    if (s->retired && s->ntasks == 0 && !s->closed) script_close(s);
}

/* Revokes the handles in the host (they stay listed for the error text). */
static void unexpose_all(pn_script *s) {
    pn_binding **pp = &s->bindings;
    while (*pp) {
        pn_binding *b = *pp;
        *pp = b->next;
        release_binding(b);
    }
}

static void on_grace(uv_timer_t *tm) {
    pn_script *s = tm->data;
    pn_rt_log(s->rt, PN_LOG_WARN,
              "%s: the replaced version still had %u task(s) after %d ms: stopped", s->path,
              s->ntasks, PN_RT_RETIRE_GRACE_MS);
    script_close(s);
}

/* Stops serving: handles, timers, events and admin modules go now; calls
 * being served finish (within the grace) before the state closes. */
static void script_retire(pn_script *s) {
    if (s->retired) return;
    s->retired = 1;
    unexpose_all(s);
    while (s->timers)
        pn_rt_timer_free(s->timers);
    for (pn_task *t = s->tasks, *n; t; t = n) {
        n = t->next;
        if (t->kind != PN_TASK_HANDLER && t->kind != PN_TASK_ADMIN) task_cancel(t);
    }
    if (s->ntasks == 0) {
        script_close(s);
        return;
    }
    s->grace = malloc(sizeof *s->grace);
    if (!s->grace) {
        script_close(s);
        return;
    }
    uv_timer_init(s->rt->loop, s->grace);
    s->grace->data = s;
    uv_unref((uv_handle_t *)s->grace);
    uv_timer_start(s->grace, on_grace, PN_RT_RETIRE_GRACE_MS, 0);
}

/* ---- handlers ------------------------------------------------------------------- */

static void on_release(void *ud) {
    pn_binding *b = ud;
    if (b->s) {
        /* Revoked from outside the script (the host is closing). */
        pn_script *s = b->s;
        for (pn_binding **pp = &s->bindings; *pp; pp = &(*pp)->next) {
            if (*pp == b) {
                *pp = b->next;
                break;
            }
        }
        luaL_unref(s->L, LUA_REGISTRYINDEX, b->fn_ref);
        luaL_unref(s->L, LUA_REGISTRYINDEX, b->auth_ref);
        if (s == s->rt->trusted) pn_rt_update_keepalive(s->rt);
    }
    free(b);
}

/* Unhooks b from its script (already unlinked by the caller) and from the host. */
static void release_binding(pn_binding *b) {
    pn_script *s = b->s;
    if (s) {
        luaL_unref(s->L, LUA_REGISTRYINDEX, b->fn_ref);
        luaL_unref(s->L, LUA_REGISTRYINDEX, b->auth_ref);
    }
    b->s = NULL;
    if (b->exposed && s && !s->rt->host_gone)
        pn_host_revoke(s->rt->h, b->name); /* the host calls on_release: it frees b */
    else if (!b->exposed || (s && s->rt->host_gone))
        free(b);
}

typedef struct {
    pn_request *req;
    int badarg; /* the args have no Lua value (map keys that collide in Lua) */
} request_args;

static int push_request(lua_State *co, void *ud) {
    request_args *ra = ud;
    char hex[PN_KEY_HEX_LEN + 1];
    pn_key_hex(hex, pn_request_from(ra->req));
    lua_pushstring(co, hex);
    size_t alen;
    const uint8_t *args = pn_request_args(ra->req, &alen);
    pn_err e;
    if (pn_value_push(co, args, alen, 0, &e) != 0) {
        ra->badarg = 1;
        return luaL_error(co, "%s", e.msg);
    }
    return 2;
}

/* Cancels the tasks serving calls whose connection closed: they may wait
 * forever (a handler that never answers), and their answers go nowhere.
 * From the loop, never inside a connection's close or a script's resume. */
static void on_reap(uv_timer_t *tm) {
    pn_rt *rt = tm->data;
    rt->reap_pending = 0;
    int n = 0;
    pn_script *trusted[1] = {rt->trusted};
    for (int k = 0; k < 2; k++) {
        for (pn_script *s = k ? trusted[0] : rt->scripts, *sn; s; s = sn) {
            sn = k ? NULL : s->next;
            for (pn_task *t = s->tasks, *tn; t; t = tn) {
                tn = t->next;
                if (!t->req_gone) continue;
                int last = s->ntasks == 1; /* a retired script closes with it */
                task_cancel(t);
                n++;
                if (last) break;
            }
        }
    }
    /* A peer can call and hang up again and again. */
    if (n)
        pn_rt_log_limited(rt, PN_LOG_INFO, "cancelled",
                          "%d call(s) cancelled: their connection closed", n);
}

static void on_req_gone(void *ud) {
    pn_task *t = ud;
    pn_rt *rt = t->s->rt;
    t->req_gone = 1;
    if (!rt->reap_pending && !rt->closing && !rt->close_pending) {
        rt->reap_pending = 1;
        uv_timer_start(&rt->reap_timer, on_reap, 0, 0);
    }
}

/* The task answers the call, or keeps the send until it ends (a peer's
 * sends being served are bounded like its calls). */
static void serve_hold(pn_task *t, pn_request *req) {
    if (pn_request_is_call(req)) {
        t->req = req;
        t->s->rt->serving++;
        pn_request_on_gone(req, on_req_gone, t);
    } else if (pn_request_keep(req) == 0) {
        t->send = req;
    }
}

static void serve(pn_task *t, pn_request *req) {
    serve_hold(t, req);
    pn_rt_task_resume(t, t->authorizing ? 2 : lua_gettop(t->co) - 1);
}

static void admin_dispatch(pn_rt *rt, pn_request *req);
static pn_binding *find_binding(pn_script *s, const char *name);

/* Puts the binding's authorize predicate and its arguments (from, name)
 * on top of the task's coroutine, above the handler and its arguments:
 * the task's first resume asks it, from the run queue like any resume,
 * so a slow predicate costs one slice of its script's turn (never the
 * connection's read path) and a burst of calls waits its turn there. */
static void gate_push(pn_task *t, pn_binding *b, pn_request *req) {
    lua_State *L = t->s->L;
    char hex[PN_KEY_HEX_LEN + 1];
    pn_key_hex(hex, pn_request_from(req));
    /* Host bookkeeping, a few bytes: the cap was checked with headroom. */
    pn_sandbox_unlimited(L, 1);
    lua_checkstack(t->co, 3);
    t->gate_base = lua_gettop(t->co);
    lua_rawgeti(t->co, LUA_REGISTRYINDEX, b->auth_ref);
    lua_pushstring(t->co, hex);
    lua_pushstring(t->co, pn_request_name(req));
    pn_sandbox_unlimited(L, 0);
    t->authorizing = 1;
}

/* The predicate has answered, failed or run out of its slice. A yes
 * sends the handler to the back of the run queue (or beam_admin's call to
 * its admin function); anything else refuses: forbidden for a call, a
 * send dropped. */
static void gate_done(pn_task *t, int rc, int nres) {
    pn_script *s = t->s;
    pn_rt *rt = s->rt;
    lua_State *co = t->co;
    pn_request *req = t->req ? t->req : t->send;
    const char *name = req ? pn_request_name(req) : t->what;
    pn_err e;
    int ok = 0;
    (void)nres; /* on LUA_OK it counts the handler's values below too */
    if (rc == LUA_OK) {
        ok = lua_gettop(co) > t->gate_base && lua_toboolean(co, t->gate_base + 1);
        lua_settop(co, t->gate_base);
    } else {
        const char *tb = error_text(s, co);
        /* A peer can make a predicate fail on every call it sends. */
        char key[PN_LOGLINE_KEY_MAX];
        snprintf(key, sizeof key, "authorize %.50s", name);
        pn_rt_log_limited(rt, PN_LOG_ERROR, key,
                          "%s: authorize predicate of %s failed (forbidden): %s", s->path, name,
                          tb);
        lua_pop(s->L, 1);
    }
    t->authorizing = 0;
    if (t->req_gone) {
        task_free(t); /* the caller has gone: its answer would go nowhere */
        return;
    }
    /* Revoked by its own script meanwhile (the host would not dispatch to
     * it now); a replaced script's calls already accepted are served. */
    int revoked = ok && !s->retired && !find_binding(s, name);
    if (!ok || revoked) {
        if (t->req) {
            pn_request *r = t->req;
            t->req = NULL;
            rt->serving--;
            pn_request_reply_error(r, revoked ? "no_such_handle" : "forbidden", &e);
        }
        task_free(t);
        return;
    }
    if (t->admin_gate) {
        /* The call is handed over whole: it goes on counting as served
         * (a drain waits for it) until the admin task has it. */
        int call = t->req != NULL;
        if (call) pn_request_on_gone(req, NULL, NULL);
        t->req = t->send = NULL;
        task_free(t); /* t->req is NULL: the call still counts in rt->serving */
        admin_dispatch(rt, req);
        rt->serving -= call;
        drain_check(rt);
        return;
    }
    pn_rt_task_resume(t, lua_gettop(co) - 1);
}

static void on_request(pn_host *h, pn_request *req, void *ud) {
    pn_binding *b = ud;
    pn_err e;
    int gated = b->s && b->auth_ref != LUA_NOREF;
    if (b->builtin_admin && !gated) {
        admin_dispatch(b->s ? b->s->rt : NULL, req);
        return;
    }
    if (!b->s) {
        if (pn_request_is_call(req)) pn_request_reply_error(req, "no_such_handle", &e);
        return;
    }
    size_t alen;
    pn_request_args(req, &alen);
    if (script_full(b->s, alen)) {
        if (pn_request_is_call(req)) pn_request_reply_error(req, "overloaded", &e);
        return;
    }
    char what[96];
    snprintf(what, sizeof what, "%s %.80s", b->builtin_admin ? "authorize" : "handler", b->name);
    request_args ra = {req, 0};
    /* beam_admin's task only asks the predicate: its admin function may
     * live in another script, found when the answer is yes. */
    pn_task *t = b->builtin_admin
                     ? pn_rt_task_start(b->s, PN_TASK_HANDLER, b->auth_ref, what, NULL, NULL)
                     : pn_rt_task_start(b->s, PN_TASK_HANDLER, b->fn_ref, what, push_request, &ra);
    if (!t) {
        /* Args without a Lua value are the caller's fault: badarg. */
        if (pn_request_is_call(req))
            pn_request_reply_error(req, ra.badarg ? "badarg" : "handler_crash", &e);
        return;
    }
    if (gated) {
        if (b->builtin_admin) {
            lua_pop(t->co, 1); /* gate_push pushes the predicate again */
            t->admin_gate = 1;
        }
        gate_push(t, b, req);
    }
    serve(t, req);
}

static pn_binding *find_binding(pn_script *s, const char *name) {
    for (pn_binding *b = s->bindings; b; b = b->next)
        if (strcmp(b->name, name) == 0) return b;
    return NULL;
}

/* The live script (other than except) that exposes name, if any. */
static pn_script *owner_of(pn_rt *rt, const char *name, const pn_script *except) {
    /* The version being replaced (same path) is not a rival. */
    for (pn_script *o = rt->scripts; o; o = o->next)
        if (o != except && !o->retired && !o->loading && strcmp(o->path, except->path) != 0 &&
            find_binding(o, name))
            return o;
    if (rt->trusted && rt->trusted != except && find_binding(rt->trusted, name)) return rt->trusted;
    return NULL;
}

static int host_expose(pn_script *s, pn_binding *b, pn_err *e) {
    /* No authorize callback: the host would run it on the read path, one
     * slice per frame back to back. on_request asks the predicate as the
     * first resume of the call's own task (gate_push). */
    pn_handler_def def = {on_request, NULL, on_release, b};
    if (pn_host_expose(s->rt->h, b->name, &def, e) != 0) return -1;
    b->exposed = 1;
    return 0;
}

int pn_rt_expose(pn_script *s, const char *name, int fn_ref, int auth_ref, int admin, pn_err *e) {
    pn_rt *rt = s->rt;
    size_t n = strlen(name);
    if (!pn_etf_atom_name_ok(name, n) || n == 0)
        return pn_err_set(e, PN_EINVAL, "'%s' is not a valid handle name (1 to 255 characters)",
                          name);
    if (strcmp(name, PN_RT_ADMIN) == 0 && auth_ref == LUA_NOREF)
        return pn_err_set(e, PN_EINVAL,
                          "beam_admin runs any admin function: expose it with an authorize "
                          "predicate (peernet.admin.expose{authorize = function(from) ... end})");
    if (find_binding(s, name))
        return pn_err_set(e, PN_EEXIST, "handle '%s' is already exposed by this script", name);
    pn_script *o = owner_of(rt, name, s);
    if (o) return pn_err_set(e, PN_EEXIST, "handle '%s' is already exposed by %s", name, o->path);
    pn_binding *b = calloc(1, sizeof *b);
    if (!b) return pn_err_set(e, PN_ENOMEM, "out of memory");
    b->s = s;
    b->fn_ref = fn_ref;
    b->auth_ref = auth_ref;
    b->builtin_admin = admin;
    memcpy(b->name, name, n + 1);
    if (!s->loading && host_expose(s, b, e) != 0) {
        free(b);
        return -1;
    }
    b->next = s->bindings;
    s->bindings = b;
    if (s == rt->trusted) pn_rt_update_keepalive(rt);
    return 0;
}

int pn_rt_revoke(pn_script *s, const char *name) {
    for (pn_binding **pp = &s->bindings; *pp; pp = &(*pp)->next) {
        pn_binding *b = *pp;
        if (strcmp(b->name, name) != 0) continue;
        *pp = b->next;
        release_binding(b);
        if (s == s->rt->trusted) pn_rt_update_keepalive(s->rt);
        return 0;
    }
    return PN_ENOTFOUND;
}

/* ---- admin modules and beam_admin -------------------------------------------- */

/* Admin modules live in each script's registry under this key: name -> table. */
static const char admin_key = 0;

int pn_rt_admin_register(pn_script *s, const char *name, int idx, pn_err *e) {
    lua_State *L = s->L;
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) return pn_err_set(e, PN_EINVAL, "an admin module is a table");
    if (strncmp(name, "Elixir.", 7) == 0) name += 7;
    if (!*name || strlen(name) > PN_ETF_ATOM_MAX_CHARS)
        return pn_err_set(e, PN_EINVAL, "bad admin module name");
    pn_rt *rt = s->rt;
    for (pn_script *o = rt->scripts; o; o = o->next) {
        if (o == s || o->retired || o->closed) continue;
        lua_rawgetp(o->L, LUA_REGISTRYINDEX, &admin_key);
        int taken = lua_istable(o->L, -1) && lua_getfield(o->L, -1, name) == LUA_TTABLE;
        lua_settop(o->L, lua_gettop(o->L) - (lua_istable(o->L, -1) ? 2 : 1));
        if (taken)
            return pn_err_set(e, PN_EEXIST, "admin module %s is already registered by %s", name,
                              o->path);
    }
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &admin_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &admin_key);
    }
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    return 0;
}

/* Finds module.fn among live scripts: pushes the function on the owner's
 * main thread and returns the owner, or NULL. */
static pn_script *admin_find(pn_rt *rt, const char *module, const char *fn) {
    pn_script *all[2] = {rt->scripts, rt->trusted};
    for (int k = 0; k < 2; k++) {
        for (pn_script *o = all[k]; o; o = k ? NULL : o->next) {
            if (o->retired || o->closed) continue;
            lua_State *L = o->L;
            int top = lua_gettop(L);
            pn_sandbox_unlimited(L, 1);
            int found = lua_rawgetp(L, LUA_REGISTRYINDEX, &admin_key) == LUA_TTABLE &&
                        lua_getfield(L, -1, module) == LUA_TTABLE &&
                        (lua_pushstring(L, fn), lua_rawget(L, -2)) == LUA_TFUNCTION;
            if (found) lua_replace(L, top + 1);
            lua_settop(L, top + found);
            pn_sandbox_unlimited(L, 0);
            if (found) return o;
        }
    }
    return NULL;
}

typedef struct {
    const uint8_t *args;
    size_t len;
} admin_args;

static int push_admin_args(lua_State *co, void *ud) {
    admin_args *a = ud;
    pn_err e;
    if (pn_value_push(co, a->args, a->len, 0, &e) != 0) return luaL_error(co, "%s", e.msg);
    int n = (int)luaL_len(co, -1);
    luaL_checkstack(co, n, "too many admin arguments");
    int t = lua_gettop(co);
    for (int i = 1; i <= n; i++)
        lua_rawgeti(co, t, i);
    lua_remove(co, t);
    return n;
}

/* {rpc|cast, Module, Function, Args}: Module and Function atoms (a binary
 * is refused, as PROTOCOL.md and the Elixir side do), Args a proper list. */
static int admin_parse(const pn_request *req, int *cast, char *module, char *fn, admin_args *a) {
    size_t len;
    const uint8_t *p = pn_request_args(req, &len);
    pn_etf_reader r;
    pn_etf_item it;
    pn_err e;
    pn_etf_reader_init(&r, p, len);
    if (pn_etf_next(&r, &it, &e) != 1 || it.type != PN_ETF_TUPLE || it.arity != 4) return -1;
    if (pn_etf_next(&r, &it, &e) != 1 || it.type != PN_ETF_ATOM) return -1;
    if (pn_etf_atom_is(&it, "rpc"))
        *cast = 0;
    else if (pn_etf_atom_is(&it, "cast"))
        *cast = 1;
    else
        return -1;
    char *names[2] = {module, fn};
    for (int i = 0; i < 2; i++) {
        if (pn_etf_next(&r, &it, &e) != 1) return -1;
        if (it.type != PN_ETF_ATOM) return -1;
        size_t n = pn_etf_atom_utf8(&it, names[i]);
        names[i][n] = '\0';
        if (strlen(names[i]) != n) return -1;
    }
    pn_etf_reader sub = r;
    if (pn_etf_next(&sub, &it, &e) != 1 ||
        (it.type != PN_ETF_LIST && it.type != PN_ETF_NIL && it.type != PN_ETF_STRING))
        return -1;
    if (pn_etf_skip(&r, &a->args, &a->len, &e) != 0 || pn_etf_finish(&r, &e) != 0) return -1;
    return 0;
}

/* Turns a request away: a call gets the error, a send kept by a gate is
 * let go. */
static void refuse(pn_request *req, const char *reason) {
    pn_err e;
    if (pn_request_is_call(req))
        pn_request_reply_error(req, reason, &e);
    else
        pn_request_done(req);
}

static void admin_dispatch(pn_rt *rt, pn_request *req) {
    pn_err e;
    int is_call = pn_request_is_call(req);
    char module[PN_ETF_ATOM_MAX_UTF8 + 1], fn[PN_ETF_ATOM_MAX_UTF8 + 1];
    int cast = 0;
    admin_args a;
    if (!rt || admin_parse(req, &cast, module, fn, &a) != 0) {
        refuse(req, "unknown_beam_dist_op");
        return;
    }
    const char *m = strncmp(module, "Elixir.", 7) == 0 ? module + 7 : module;
    pn_script *o = admin_find(rt, m, fn);
    if (!o) {
        pn_rt_log(rt, PN_LOG_WARN, "beam_admin: no admin function %s.%s", m, fn);
        refuse(req, "undef");
        return;
    }
    if (script_full(o, a.len)) {
        lua_pop(o->L, 1);
        refuse(req, "overloaded");
        return;
    }
    /* The function is on o's main thread: anchor it for the task. */
    pn_sandbox_unlimited(o->L, 1);
    int ref = luaL_ref(o->L, LUA_REGISTRYINDEX);
    pn_sandbox_unlimited(o->L, 0);
    char what[96];
    snprintf(what, sizeof what, "admin %.40s.%.40s", m, fn);
    pn_task *t = pn_rt_task_start(o, PN_TASK_ADMIN, ref, what, push_admin_args, &a);
    luaL_unref(o->L, LUA_REGISTRYINDEX, ref);
    if (!t) {
        refuse(req, "handler_crash");
        return;
    }
    if (cast) {
        static const uint8_t ok_atom[] = {PN_ETF_TAG_SMALL_ATOM_UTF8, 2, 'o', 'k'};
        if (is_call)
            pn_request_reply(req, ok_atom, sizeof ok_atom, &e);
        else
            serve_hold(t, req);
        pn_rt_task_resume(t, lua_gettop(t->co) - 1);
    } else {
        serve(t, req);
    }
}

/* ---- events --------------------------------------------------------------------- */

static const char *event_name(pn_event ev) {
    return ev == PN_EVENT_CONNECTED      ? "connected"
           : ev == PN_EVENT_DISCONNECTED ? "disconnected"
                                         : "discovered";
}

typedef struct event_args {
    const char *hex;
    const char *detail; /* disconnected: why; NULL otherwise */
} event_args;

static int push_event_args(lua_State *co, void *ud) {
    const event_args *a = ud;
    lua_pushstring(co, a->hex);
    if (!a->detail) return 1;
    lua_pushstring(co, a->detail);
    return 2;
}

static void events_to(pn_script *s, const char *name, const event_args *args) {
    if (s->retired || s->closed || s->events_ref == LUA_NOREF) return;
    lua_State *L = s->L;
    /* The functions are anchored first and the table popped: nothing of
     * the host's stays on the main thread while handlers run. */
    int refs[PN_RT_EVENT_FNS_MAX];
    int n = 0;
    pn_sandbox_unlimited(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->events_ref);
    if (lua_getfield(L, -1, name) == LUA_TTABLE) {
        n = (int)lua_rawlen(L, -1);
        if (n > PN_RT_EVENT_FNS_MAX) n = PN_RT_EVENT_FNS_MAX;
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, -1, i + 1);
            refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
        }
    }
    lua_pop(L, 2);
    pn_sandbox_unlimited(L, 0);
    char what[64];
    snprintf(what, sizeof what, "on %s", name);
    int i = 0;
    for (; i < n && !s->retired && !s->closed; i++) {
        pn_task *t =
            pn_rt_task_start(s, PN_TASK_EVENT, refs[i], what, push_event_args, (void *)args);
        luaL_unref(L, LUA_REGISTRYINDEX, refs[i]);
        if (t) pn_rt_task_resume(t, args->detail ? 2 : 1);
    }
    /* A closed handler script's state is gone with its refs (the caller
     * unpins the struct); the trusted state lives on. */
    for (; i < n && (!s->closed || !s->sandboxed); i++)
        luaL_unref(L, LUA_REGISTRYINDEX, refs[i]);
}

static void script_unpin(pn_script *s) {
    if (--s->pins == 0 && s->closed) script_free(s);
}

static void on_event(pn_host *h, pn_event ev, const uint8_t key[PN_KEY_LEN], const char *detail,
                     void *ud) {
    pn_rt *rt = ud;
    char hex[PN_KEY_HEX_LEN + 1];
    pn_key_hex(hex, key);
    event_args args = {hex, detail};
    const char *name = event_name(ev);
    /* A handler may reload or close scripts: walk a snapshot of the list. */
    pn_script *snap[PN_RT_SCRIPTS_MAX + 1];
    size_t n = 0;
    for (pn_script *s = rt->scripts; s && n < PN_RT_SCRIPTS_MAX; s = s->next)
        snap[n++] = s;
    if (rt->trusted) snap[n++] = rt->trusted;
    for (size_t i = 0; i < n && !rt->closing; i++) {
        int alive = 0;
        for (pn_script *s = rt->scripts; s; s = s->next)
            alive |= s == snap[i];
        alive |= snap[i] == rt->trusted;
        if (!alive) continue;
        /* A handler may close its own script (rt:close in a run script):
         * pinned, the struct outlives the call. */
        snap[i]->pins++;
        events_to(snap[i], name, &args);
        script_unpin(snap[i]);
    }
}

/* ---- loading -------------------------------------------------------------------- */

static pn_script *script_alloc(pn_rt *rt, const char *path) {
    pn_script *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->path = strdup(path);
    if (!s->path) {
        free(s);
        return NULL;
    }
    s->rt = rt;
    s->events_ref = LUA_NOREF;
    return s;
}

static pn_script *find_script(pn_rt *rt, const char *path) {
    for (pn_script *s = rt->scripts; s; s = s->next)
        if (!s->retired && strcmp(s->path, path) == 0) return s;
    return NULL;
}

/* A script runs with the host's authority: like the trust list, it must
 * be a regular file (not a symlink) that only its owner (the host's user,
 * or root) can change, in a directory that only they can write. */
static int read_script(const char *path, char **out, size_t *len, pn_err *e) {
    return pn_file_read_private(path, 022, PN_RT_SCRIPT_MAX, out, len, e);
}

/* Runs the chunk on top of s->L as the script's first task. */
static int run_chunk(pn_script *s, pn_err *e) {
    lua_State *L = s->L;
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    pn_task *t = pn_rt_task_start(s, PN_TASK_MAIN, ref, "main chunk", NULL, NULL);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (!t) return pn_err_set(e, PN_ENOMEM, "%s: out of memory", s->path);
    lua_State *co = t->co;
    lua_State *prev = pn_sandbox_begin(co);
    int nres = 0;
    /* No deferred close can be due here: loading runs from the directory
     * watcher or a trusted call, never inside a script's own resume. */
    s->rt->resuming++;
    int rc = lua_resume(co, NULL, 0, &nres);
    s->rt->resuming--;
    pn_sandbox_end(co, prev);
    if (rc == LUA_YIELD && t->wait) {
        if (s->admin) {
            pn_err_set(e, PN_EINVAL, "%s: an admin module must return its table without waiting",
                       s->path);
            task_cancel(t);
            return -1;
        }
        lua_pop(co, nres);
        return 0;
    }
    if (rc == LUA_YIELD) {
        pn_sandbox_unlimited(L, 1);
        lua_pushliteral(co, "coroutine.yield() outside a coroutine");
        pn_sandbox_unlimited(L, 0);
        rc = LUA_ERRRUN;
    }
    if (rc != LUA_OK) {
        const char *msg = lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : "(error object)";
        pn_err_set(e, PN_EINVAL, "%s", msg);
        task_cancel(t);
        return -1;
    }
    if (s->admin) {
        const char *slash = strrchr(s->path, '/');
        char name[256];
        snprintf(name, sizeof name, "%s", slash ? slash + 1 : s->path);
        char *dot = strrchr(name, '.');
        if (dot) *dot = '\0';
        if (nres < 1 || !lua_istable(co, -nres)) {
            pn_err_set(e, PN_EINVAL, "%s: an admin module must return a table of functions",
                       s->path);
            task_cancel(t);
            return -1;
        }
        lua_settop(co, lua_gettop(co) - nres + 1);
        lua_xmove(co, L, 1);
        rc = pn_rt_admin_register(s, name, -1, e);
        lua_pop(L, 1);
        if (rc != 0) {
            task_cancel(t);
            return -1;
        }
    }
    task_free(t);
    return 0;
}

int pn_rt_load_file(pn_rt *rt, const char *path, int admin, pn_err *e) {
    char *text = NULL;
    size_t len = 0;
    pn_script *old = find_script(rt, path);
    if (read_script(path, &text, &len, e) != 0) goto failed;
    unsigned char hash[32];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)text, len, NULL, 0);
    if (old && !old->error[0] && memcmp(old->hash, hash, sizeof hash) == 0) {
        free(text);
        return 0; /* touched, not changed */
    }
    pn_script *s = script_alloc(rt, path);
    lua_State *L = s ? pn_sandbox_new(&rt->o.limits, e) : NULL;
    if (!L) {
        if (s) free(s->path);
        free(s);
        free(text);
        if (!s) pn_err_set(e, PN_ENOMEM, "out of memory");
        goto failed;
    }
    s->L = L;
    s->sandboxed = 1;
    s->admin = admin;
    s->loading = 1;
    memcpy(s->hash, hash, sizeof hash);
    s->next = rt->scripts;
    rt->scripts = s;
    lua_pushlightuserdata(L, s);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &script_key);
    char chunkname[PN_PATH_MAX + 2];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    int rc = pn_caps_for(rt, s, e);
    if (rc == 0) {
        pn_sandbox_unlimited(L, 1);
        pn_api_open(L, s);
        pn_sandbox_unlimited(L, 0);
        if (pn_sandbox_load(L, text, len, chunkname) != LUA_OK) {
            pn_err_set(e, PN_EINVAL, "%s", lua_tostring(L, -1));
            rc = -1;
        }
    }
    free(text);
    if (rc == 0) rc = run_chunk(s, e);
    /* Staged handles go live only now, all at once, replacing the old ones. */
    for (pn_binding *b = rc == 0 ? s->bindings : NULL; b; b = b->next) {
        pn_script *o = owner_of(rt, b->name, s);
        if (o && o != old) {
            pn_err_set(e, PN_EEXIST, "%s: handle '%s' is already exposed by %s", path, b->name,
                       o->path);
            rc = -1;
        }
    }
    if (rc != 0) {
        s->loading = 0;
        script_close(s);
        goto failed;
    }
    s->loading = 0;
    if (old) script_retire(old);
    for (pn_binding *b = s->bindings; b; b = b->next) {
        if (host_expose(s, b, e) != 0) {
            pn_rt_log(rt, PN_LOG_ERROR, "%s: %s", path, e->msg);
        }
    }
    pn_rt_log(rt, PN_LOG_INFO, "%s: %s", path, old ? "reloaded" : "loaded");
    return 0;
failed:
    pn_rt_log(rt, PN_LOG_ERROR, "%s%s", e->msg, old ? " (the previous version keeps serving)" : "");
    if (old) snprintf(old->error, sizeof old->error, "%s", e->msg);
    return -1;
}

void pn_rt_unload_file(pn_rt *rt, const char *path) {
    pn_script *s = find_script(rt, path);
    if (!s) return;
    pn_rt_log(rt, PN_LOG_INFO, "%s: removed, its handles are revoked", path);
    script_retire(s);
}

/* ---- the trusted state (run scripts) ----------------------------------------------- */

int pn_rt_trusted(pn_rt *rt, lua_State *L, pn_err *e) {
    if (rt->trusted) return pn_err_set(e, PN_EEXIST, "this runtime already has a trusted state");
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *main = lua_tothread(L, -1);
    lua_pop(L, 1);
    pn_script *s = script_alloc(rt, "(run)");
    if (!s) return pn_err_set(e, PN_ENOMEM, "out of memory");
    s->L = main;
    /* Threads copy the main thread's extra space: it must say "no task". */
    *(pn_task **)lua_getextraspace(main) = NULL;
    rt->trusted = s;
    pn_api_open(L, s);
    return 0;
}

int pn_rt_spawn(pn_rt *rt, lua_State *L, int nargs, pn_err *e) {
    pn_script *s = rt->trusted;
    if (!s) return pn_err_set(e, PN_ESTATE, "no trusted state");
    lua_State *main = s->L;
    /* Move fn and args to the main thread, anchor fn, start the task. */
    int base = lua_gettop(L) - nargs;
    lua_pushvalue(L, base);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    pn_task *t = pn_rt_task_start(s, PN_TASK_MAIN, ref, "main chunk", NULL, NULL);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (!t) return pn_err_set(e, PN_ENOMEM, "out of memory");
    (void)main;
    lua_xmove(L, t->co, nargs);
    lua_pop(L, 1);
    pn_rt_update_keepalive(rt);
    pn_rt_task_resume(t, nargs);
    return 0;
}

/* ---- drain and close -------------------------------------------------------------- */

static void drain_done(pn_rt *rt) {
    if (!rt->draining) return;
    rt->draining = 0;
    uv_timer_stop(&rt->drain_timer);
    void (*cb)(void *) = rt->drain_cb;
    rt->drain_cb = NULL;
    if (cb) cb(rt->drain_ud);
}

static void drain_check(pn_rt *rt) {
    if (rt->draining && rt->serving == 0) drain_done(rt);
}

static void on_drain_timeout(uv_timer_t *t) {
    pn_rt *rt = t->data;
    pn_rt_log(rt, PN_LOG_WARN, "stopping with %d call(s) still being served", rt->serving);
    drain_done(rt);
}

void pn_rt_drain(pn_rt *rt, uint32_t ms, void (*cb)(void *ud), void *ud) {
    pn_host_stop_listening(rt->h);
    for (pn_script *s = rt->scripts; s; s = s->next)
        unexpose_all(s);
    if (rt->trusted) unexpose_all(rt->trusted);
    rt->drain_cb = cb;
    rt->drain_ud = ud;
    rt->draining = 1;
    uv_timer_start(&rt->drain_timer, on_drain_timeout, ms, 0);
    drain_check(rt);
}

static void on_host_closing(void *ud);

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
    if (pn_host_on_event(h, on_event, rt) != 0 || pn_host_on_closing(h, on_host_closing, rt) != 0) {
        pn_host_off_event(h, on_event, rt);
        free(rt->config_path);
        free(rt);
        pn_err_set(e, PN_ELIMIT, "too many event listeners on this host");
        return NULL;
    }
    uv_async_init(loop, &rt->keepalive, NULL);
    uv_unref((uv_handle_t *)&rt->keepalive);
    uv_timer_init(loop, &rt->drain_timer);
    rt->drain_timer.data = rt;
    uv_unref((uv_handle_t *)&rt->drain_timer);
    uv_timer_init(loop, &rt->reap_timer);
    rt->reap_timer.data = rt;
    uv_unref((uv_handle_t *)&rt->reap_timer);
    uv_idle_init(loop, &rt->runq);
    rt->runq.data = rt;
    uv_timer_init(loop, &rt->bench);
    rt->bench.data = rt;
    pn_logline_limit_init(&rt->loglimit, pn_host_log_window(h));
    uv_timer_init(loop, &rt->log_timer);
    rt->log_timer.data = rt;
    uv_unref((uv_handle_t *)&rt->log_timer); /* a summary due must not keep a loop alive */
    return rt;
}

/* The host goes first: stop every script now, while the host is whole. */
static void close_scripts(pn_rt *rt) {
    while (rt->scripts)
        script_close(rt->scripts);
    if (rt->trusted) {
        while (rt->trusted->tasks)
            task_cancel(rt->trusted->tasks);
        unexpose_all(rt->trusted);
    }
    pn_rt_update_keepalive(rt);
}

static void on_host_closing(void *ud) {
    pn_rt *rt = ud;
    pn_host_off_event(rt->h, on_event, rt);
    if (rt->resuming) {
        /* Closed from inside a script (a run script's host:close()): its
         * coroutine is still running. Handles go with the host now; the
         * scripts stop when the outermost resume returns. */
        rt->host_gone = 1;
        rt->scripts_close_pending = 1;
        return;
    }
    close_scripts(rt);
    rt->host_gone = 1;
}

static void rt_handle_closed(uv_handle_t *hd) {
    pn_rt *rt = hd->data;
    /* 1 + keepalive, drain_timer, reap_timer, runq, bench, log_timer */
    if (++rt->closing == 7) free(rt);
}

static void rt_do_close(pn_rt *rt);

/* Closes deferred while a script ran, once no resume is left on the stack. */
static void rt_after_resume(pn_rt *rt) {
    if (rt->resuming) return;
    if (rt->scripts_close_pending) {
        rt->scripts_close_pending = 0;
        close_scripts(rt);
    }
    if (rt->close_pending) {
        rt->close_pending = 0;
        rt_do_close(rt);
    }
}

void pn_rt_close(pn_rt *rt) {
    if (rt->closing || rt->close_pending) return;
    /* Counts still held back reach the log while it is there. */
    pn_logline_limit_flush(&rt->loglimit, UINT64_MAX / 2, rt_emit, rt);
    /* The callbacks' owner is going away now, even when the close waits. */
    rt->o.log = NULL;
    rt->o.on_error = NULL;
    rt->drain_cb = NULL;
    if (rt->resuming) {
        rt->close_pending = 1; /* a script asked: it is still running */
        return;
    }
    rt_do_close(rt);
}

static void rt_do_close(pn_rt *rt) {
    pn_rt_dir_close(rt);
    if (!rt->host_gone) {
        pn_host_off_event(rt->h, on_event, rt);
        pn_host_off_closing(rt->h, on_host_closing, rt);
    }
    /* Scripts first (their handles are revoked), then the handles. */
    while (rt->scripts)
        script_close(rt->scripts);
    if (rt->trusted) script_close(rt->trusted);
    rt->closing = 1;
    free(rt->config_path);
    free(rt->trust_path);
    pn_trust_free(rt->labels);
    rt->labels = NULL;
    rt->keepalive.data = rt;
    uv_close((uv_handle_t *)&rt->keepalive, rt_handle_closed);
    uv_close((uv_handle_t *)&rt->drain_timer, rt_handle_closed);
    uv_close((uv_handle_t *)&rt->reap_timer, rt_handle_closed);
    uv_close((uv_handle_t *)&rt->runq, rt_handle_closed);
    uv_close((uv_handle_t *)&rt->bench, rt_handle_closed);
    uv_close((uv_handle_t *)&rt->log_timer, rt_handle_closed);
}

/* ---- reports -------------------------------------------------------------------------- */

void pn_rt_scripts(const pn_rt *rt,
                   int (*fn)(const pn_rt_script_info *i, const char **names, uint32_t nnames,
                             void *ud),
                   void *ud) {
    for (const pn_script *s = rt->scripts; s; s = s->next) {
        if (s->retired) continue;
        const char *names[64];
        uint32_t n = 0;
        for (const pn_binding *b = s->bindings; b && n < 64; b = b->next)
            names[n++] = b->name;
        pn_rt_script_info i = {
            s->path, 1, s->admin, s->error, n, s->ntasks, pn_sandbox_mem_used(s->L)};
        if (fn(&i, names, n, ud)) return;
    }
}
