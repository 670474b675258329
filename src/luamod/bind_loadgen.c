/*
 * peernet.loadgen(host, opts, cb): the load generator (net/loadgen.h) on
 * a host of this module, for `peernet-host bench`. opts: peer (hex key,
 * connected), handle, args (ETF bytes, version byte first), inflight,
 * duration_ms, timeout_ms, send. cb(report) runs once, from the loop;
 * report: ok, errors, timeouts, closed, seconds, per_s, and for calls
 * min_us, p50_us, p99_us, p999_us, max_us, mean_us; error when the run
 * stopped early. The host must stay open until cb has run.
 */
#include <lauxlib.h>
#include <lua.h>
/* luv.h has an old-style declaration that -Werror refuses. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <luv/luv.h>
#pragma GCC diagnostic pop
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "lua/pcall.h"
#include "net/loadgen.h"

#define ETF_VERSION 131

typedef struct run {
    lua_State *L; /* the main thread */
    int cb_ref, host_ref;
} run;

static lua_Integer opt_int(lua_State *L, const char *name, lua_Integer def, lua_Integer lo,
                           lua_Integer hi) {
    lua_getfield(L, 2, name);
    lua_Integer v = lua_isnil(L, -1) ? def : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (v < lo || v > hi) luaL_error(L, "loadgen: %s must be %I..%I", name, lo, hi);
    return v;
}

static void set_num(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void on_done(pn_loadgen *g, const pn_loadgen_report *r, void *ud) {
    run *u = ud;
    lua_State *L = u->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->cb_ref);
    lua_createtable(L, 0, 16);
    double secs = (double)r->elapsed_ns / 1e9;
    set_num(L, "ok", (double)r->ok);
    set_num(L, "errors", (double)r->errors);
    set_num(L, "timeouts", (double)r->timeouts);
    set_num(L, "closed", (double)r->closed);
    set_num(L, "seconds", secs);
    set_num(L, "per_s", secs > 0 ? (double)(r->ok + r->errors) / secs : 0);
    if (r->min_ns || r->max_ns) {
        set_num(L, "min_us", (double)r->min_ns / 1e3);
        set_num(L, "p50_us", (double)r->p50_ns / 1e3);
        set_num(L, "p99_us", (double)r->p99_ns / 1e3);
        set_num(L, "p999_us", (double)r->p999_ns / 1e3);
        set_num(L, "max_us", (double)r->max_ns / 1e3);
        set_num(L, "mean_us", r->mean_ns / 1e3);
    }
    if (r->first_error[0]) {
        lua_pushstring(L, r->first_error);
        lua_setfield(L, -2, "error");
    }
    luaL_unref(L, LUA_REGISTRYINDEX, u->cb_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, u->host_ref);
    free(u);
    pn_loadgen_free(g);
    if (pn_pcall(L, 1, 0) != LUA_OK) {
        fprintf(stderr, "peernet: error in loadgen callback: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

static int l_loadgen(lua_State *L) {
    pn_host *h = pn_bind_host_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    pn_loadgen_config c = {0};
    uint8_t peer[PN_KEY_LEN];
    lua_getfield(L, 2, "peer");
    pn_glue_check_key(L, -1, peer, NULL, NULL);
    lua_pop(L, 1);
    lua_getfield(L, 2, "handle");
    c.handle = luaL_checkstring(L, -1); /* opts keeps it alive while we start */
    lua_pop(L, 1);
    lua_getfield(L, 2, "args");
    size_t alen;
    const char *args = luaL_checklstring(L, -1, &alen);
    if (alen < 2 || (uint8_t)args[0] != ETF_VERSION)
        return luaL_error(L, "loadgen: args must be ETF bytes (131 first)");
    lua_pop(L, 1);
    c.peer = peer;
    c.args = (const uint8_t *)args + 1;
    c.args_len = alen - 1;
    c.inflight = (uint32_t)opt_int(L, "inflight", 1, 1, PN_LOADGEN_INFLIGHT_MAX);
    c.duration_ms = (uint32_t)opt_int(L, "duration_ms", 1000, 1, 86400000);
    c.timeout_ms = (uint32_t)opt_int(L, "timeout_ms", 0, 0, 86400000);
    lua_getfield(L, 2, "send");
    c.send = lua_toboolean(L, -1);
    lua_pop(L, 1);

    run *u = malloc(sizeof *u);
    if (!u) return luaL_error(L, "out of memory");
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    u->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    pn_err e = {0};
    pn_loadgen *g = pn_loadgen_start(h, luv_loop(L), &c, on_done, u, &e);
    if (!g) {
        free(u);
        lua_pushnil(L);
        lua_pushstring(L, e.msg);
        return 2;
    }
    lua_pushvalue(L, 3);
    u->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 1);
    u->host_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 1);
    return 1;
}

void pn_bind_loadgen_open(lua_State *L) {
    lua_pushcfunction(L, l_loadgen);
    lua_setfield(L, -2, "loadgen");
}
