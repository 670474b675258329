/*
 * Live hosts and runtimes: one weak-keyed registry table per kind.
 */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

#include "live.h"
#include "lua/pcall.h"
#include "lua/weak.h"

#define PN_LIVE_KEY_(name, key) key,
static const char *const live_keys[] = {PN_LIVE_KINDS(PN_LIVE_KEY_)};
#undef PN_LIVE_KEY_

/* Pushes the weak table of kind, made on first use. */
static void push_table(lua_State *L, pn_live_kind kind) {
    pn_weak_push(L, live_keys[kind], "k");
}

void pn_live_add(lua_State *L, int idx, pn_live_kind kind) {
    idx = lua_absindex(L, idx);
    push_table(L, kind);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int close_one(lua_State *L) {
    lua_getfield(L, 1, "close");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
    return 0;
}

/* The objects are copied out first: a close may run Lua code, and the
 * collector may clear entries of the weak table while it is walked. */
static int close_kind(lua_State *L, pn_live_kind kind) {
    push_table(L, kind);
    int t = lua_gettop(L);
    lua_newtable(L);
    int list = t + 1;
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, list, ++n);
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushcfunction(L, close_one);
        lua_rawgeti(L, list, i);
        if (pn_pcall(L, 1, 0) != LUA_OK) {
            const char *msg = lua_tostring(L, -1);
            fprintf(stderr, "peernet: closing at exit: %s\n", msg ? msg : "(not a string)");
            lua_pop(L, 1);
        }
    }
    lua_settop(L, t - 1);
    return (int)n;
}

int pn_live_close_all(lua_State *L) {
    int n = 0;
    for (int k = 0; k < PN_LIVE_COUNT; k++)
        n += close_kind(L, (pn_live_kind)k);
    return n;
}
