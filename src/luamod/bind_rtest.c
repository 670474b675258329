/*
 * What peernet.testing drives a runtime with, no link involved:
 *
 *   peernet.runtime.new(host, {virtual_clock = true,
 *                              outbound = fn(what, peer_hex, name, args, timeout_ms)})
 *       outbound gets the scripts' calls, sends and connects (what = "call",
 *       "send", "connect" with name the address or "") and answers "ok",
 *       value | "error", reason | "timeout" | "closed" | "not_connected" (a
 *       send only reads the last, a connect "ok" or why not); a call's
 *       answer reaches the script at the next settle, as a reply comes in
 *       a later loop turn.
 *   rt:now()            --> ms on the runtime's clock
 *   rt:advance(ms)      --> timers fired: the virtual clock moves by ms, firing
 *                           after/every/sleep in order, each tick settled first
 *   rt:settle()         --> resumes run: runs queued resumes and delivers
 *                           outbound answers until nothing is left to run
 *   rt:deliver(from, name, args [, fn])  -- a call (fn(value | nil, reason,
 *                           kind) once answered) or a send from key `from`
 *   rt:event(name, key [, detail])       -- connected, disconnected, discovered
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "bind_rt.h"
#include "lua/glue.h"
#include "lua/pcall.h"
#include "lua/result.h"
#include "lua/value.h"

/* Resumes and answers one settle or advance runs at most: a script that
 * calls a stub in a loop forever ends the test with an error, not a hang. */
#define RTEST_STEPS_MAX 100000u

struct rt_pending {
    rt_pending *next;
    pn_call_cb cb;
    void *cb_ud;
    pn_call_status st;
    size_t len;
    uint8_t term[];
};

typedef struct deliver_cb {
    lrt *r;
    int fn_ref;
} deliver_cb;

static const char *const outcomes[] = {"ok", "error", "timeout", "closed", "not_connected", NULL};
static const pn_call_status outcome_status[] = {PN_CALL_OK, PN_CALL_ERROR, PN_CALL_TIMEOUT,
                                                PN_CALL_CLOSED};

/* Calls outbound(what, peer, name, args, timeout) on the trusted state
 * (args NULL: nil);
 * leaves its two results on top, or returns -1 with e set. */
static int ask_outbound(lrt *r, const char *what, const uint8_t peer[PN_KEY_LEN], const char *name,
                        const uint8_t *args, size_t len, uint32_t timeout, pn_err *e) {
    lua_State *L = r->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->out_ref);
    lua_pushstring(L, what);
    pn_glue_push_key(L, peer);
    lua_pushstring(L, name);
    if (!args) {
        lua_pushnil(L); /* a connect has none */
    } else if (pn_value_push(L, args, len, 0, e) != 0) {
        lua_pop(L, 4);
        return -1;
    }
    lua_pushinteger(L, timeout);
    if (pn_pcall(L, 5, 2) != LUA_OK) {
        pn_err_set(e, PN_EINVAL, "outbound: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

static int out_call(void *ud, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                    size_t len, uint32_t timeout, pn_call_cb cb, void *cb_ud, pn_err *e) {
    lrt *r = ud;
    lua_State *L = r->L;
    int top = lua_gettop(L);
    if (ask_outbound(r, "call", peer, name, args, len, timeout, e) != 0) return PN_EINVAL;
    const char *o = lua_tostring(L, -2);
    int k = 0;
    while (outcomes[k] && (!o || strcmp(outcomes[k], o) != 0))
        k++;
    int rc = 0;
    pn_etf_buf b;
    pn_etf_buf_init(&b, PN_VALUE_DEFAULT_MAX);
    if (!outcomes[k]) {
        rc = pn_err_set(e, PN_EINVAL, "outbound answered %s", o ? o : "no outcome");
    } else if (k == 4) {
        rc = pn_err_set(e, PN_ESTATE, "not connected");
    } else if (k <= 1 && pn_value_encode_protected(L, -1, 0, &b, e) != 0) {
        rc = PN_EINVAL;
    } else {
        rt_pending *p = malloc(sizeof *p + b.len);
        if (!p) {
            rc = pn_err_set(e, PN_ENOMEM, "out of memory");
        } else {
            p->next = NULL;
            p->cb = cb;
            p->cb_ud = cb_ud;
            p->st = outcome_status[k];
            p->len = k <= 1 ? b.len : 0;
            if (p->len) memcpy(p->term, b.data, b.len);
            *r->tail = p;
            r->tail = &p->next;
        }
    }
    pn_etf_buf_free(&b);
    lua_settop(L, top);
    return rc;
}

static int out_send(void *ud, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                    size_t len, pn_err *e) {
    lrt *r = ud;
    lua_State *L = r->L;
    int top = lua_gettop(L);
    if (ask_outbound(r, "send", peer, name, args, len, 0, e) != 0) return PN_EINVAL;
    const char *o = lua_tostring(L, -2);
    int rc = o && strcmp(o, "not_connected") == 0 ? pn_err_set(e, PN_ESTATE, "not connected") : 0;
    lua_settop(L, top);
    return rc;
}

static int out_connect(void *ud, const uint8_t peer[PN_KEY_LEN], const char *addr, pn_err *e) {
    lrt *r = ud;
    lua_State *L = r->L;
    int top = lua_gettop(L);
    if (ask_outbound(r, "connect", peer, addr ? addr : "", NULL, 0, 0, e) != 0) return PN_EINVAL;
    const char *o = lua_tostring(L, -2);
    int rc =
        o && strcmp(o, "ok") == 0 ? 0 : pn_err_set(e, PN_ESTATE, "%s", o ? o : "not_connected");
    lua_settop(L, top);
    return rc;
}

static const pn_rt_out outbound = {out_call, out_send, out_connect};

void pn_bind_rtest_opts(lua_State *L, int t, lrt *r, pn_rt_opts *o) {
    r->tail = &r->pending;
    r->out_ref = LUA_NOREF;
    lua_getfield(L, t, "virtual_clock");
    o->virtual_clock = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, t, "outbound") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    luaL_argcheck(L, lua_isfunction(L, -1), t, "outbound must be a function");
    r->out_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    o->out = &outbound;
    o->out_ud = r;
}

void pn_bind_rtest_free(lrt *r) {
    /* The calls waiting on them were cancelled with their tasks: each
     * callback frees only its own waiter. */
    while (r->pending) {
        rt_pending *p = r->pending;
        r->pending = p->next;
        p->cb(NULL, PN_CALL_CLOSED, NULL, 0, p->cb_ud);
        free(p);
    }
    r->tail = &r->pending;
    if (r->out_ref != LUA_NOREF) luaL_unref(r->L, LUA_REGISTRYINDEX, r->out_ref);
    r->out_ref = LUA_NOREF;
}

/* Runs resumes and delivers answers until neither is left; returns steps. */
static uint32_t settle(lua_State *L, lrt *r) {
    uint32_t steps = 0;
    for (;;) {
        steps += pn_runq_run_all(r->rt, RTEST_STEPS_MAX - steps);
        if (!r->pending) break;
        rt_pending *p = r->pending;
        r->pending = p->next;
        if (!r->pending) r->tail = &r->pending;
        p->cb(NULL, p->st, p->term, p->len, p->cb_ud);
        free(p);
        if (++steps >= RTEST_STEPS_MAX) break;
    }
    if (steps >= RTEST_STEPS_MAX)
        luaL_error(L,
                   "the scripts are still running after %d resumes: a loop that never waits "
                   "for the clock?",
                   (int)RTEST_STEPS_MAX);
    return steps;
}

static int l_settle(lua_State *L) {
    lrt *r = pn_bind_runtime_check(L);
    lua_pushinteger(L, settle(L, r));
    return 1;
}

static int l_now(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)pn_clock_now(pn_bind_runtime_check(L)->rt));
    return 1;
}

static int l_advance(lua_State *L) {
    lrt *r = pn_bind_runtime_check(L);
    lua_Integer ms = luaL_checkinteger(L, 2);
    luaL_argcheck(L, ms >= 0 && ms <= PN_MS_MAX, 2, "0 to PN_MS_MAX ms");
    uint64_t until = pn_clock_now(r->rt) + (uint64_t)ms;
    settle(L, r);
    lua_Integer fired = 0;
    while (pn_clock_fire_next(r->rt, until)) {
        if (++fired > RTEST_STEPS_MAX)
            return luaL_error(L, "advance: over %d timers fired: a loop of sleep(0)?",
                              (int)RTEST_STEPS_MAX);
        settle(L, r);
    }
    lua_pushinteger(L, fired);
    return 1;
}

static void on_delivered(pn_host *h, pn_call_status st, const uint8_t *term, size_t len, void *ud) {
    (void)h;
    deliver_cb *d = ud;
    lua_State *L = d->r->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, d->fn_ref);
    free(d);
    pn_err e;
    int n = 1;
    if (st == PN_CALL_OK || st == PN_CALL_ERROR) {
        if (st == PN_CALL_ERROR) lua_pushnil(L);
        if (pn_value_push(L, term, len, 0, &e) != 0) lua_pushstring(L, e.msg);
        if (st == PN_CALL_ERROR) {
            lua_pushstring(L, pn_reason_kind_name(PN_KIND_REMOTE));
            n = 3;
        }
    } else {
        n = pn_result_fail(L, pn_result_reason(st), pn_result_kind(st));
    }
    if (pn_pcall(L, n, 0) != LUA_OK) fprintf(stderr, "peernet: deliver: %s\n", lua_tostring(L, -1));
    lua_settop(L, top);
}

static int l_deliver(lua_State *L) {
    lrt *r = pn_bind_runtime_check(L);
    uint8_t from[PN_KEY_LEN];
    pn_glue_check_key(L, 2, from, NULL, NULL);
    const char *name = luaL_checkstring(L, 3);
    pn_etf_buf b;
    pn_err e;
    if (pn_value_encode_protected(L, 4, 0, &b, &e) != 0) {
        pn_etf_buf_free(&b);
        return luaL_error(L, "deliver: cannot send these args: %s", e.msg);
    }
    deliver_cb *d = NULL;
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TFUNCTION);
        d = malloc(sizeof *d);
        if (!d) {
            pn_etf_buf_free(&b);
            return luaL_error(L, "out of memory");
        }
        d->r = r;
        lua_pushvalue(L, 5);
        d->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->host_ref);
    struct pn_host *h = pn_bind_host_check(L, -1);
    lua_pop(L, 1); /* r holds it */
    int rc = pn_host_deliver(h, from, name, b.data, b.len, d ? on_delivered : NULL, d, &e);
    pn_etf_buf_free(&b);
    if (rc != 0) {
        if (d) luaL_unref(L, LUA_REGISTRYINDEX, d->fn_ref);
        free(d);
        return pn_glue_fail(L, &e);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_event(lua_State *L) {
    lrt *r = pn_bind_runtime_check(L);
    int ev = luaL_checkoption(L, 2, NULL, pn_host_event_names());
    uint8_t key[PN_KEY_LEN];
    pn_glue_check_key(L, 3, key, NULL, NULL);
    pn_event_deliver(r->rt, (pn_event)ev, key, luaL_optstring(L, 4, NULL));
    return 0;
}

void pn_bind_rtest_methods(lua_State *L) {
    static const luaL_Reg methods[] = {{"now", l_now},       {"advance", l_advance},
                                       {"settle", l_settle}, {"deliver", l_deliver},
                                       {"event", l_event},   {NULL, NULL}};
    luaL_setfuncs(L, methods, 0);
}
