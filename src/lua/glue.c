#include "glue.h"

#include <lauxlib.h>
#include <string.h>

#include "lua/result.h"
#include "lua/sandbox.h"
#include "peernet/peernet.h"

int pn_glue_fail(lua_State *L, const pn_err *e) {
    lua_pushstring(L, e->msg[0] ? e->msg : pn_err_name(e->code));
    return pn_result_local_top(L, e->code);
}

/* The last key pushed, with its hex string as the user value: a handler's
 * calls mostly come from the peer of the call before, and the profile of
 * a pipelined script showed the hex encoding and the string per call. */
typedef struct hex_cache {
    uint8_t key[PN_KEY_LEN];
    int valid;
} hex_cache;

void pn_glue_push_key(lua_State *L, const uint8_t key[PN_KEY_LEN]) {
    static const char cache_key = 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
    hex_cache *c = lua_touserdata(L, -1);
    if (c && c->valid && memcmp(c->key, key, PN_KEY_LEN) == 0) {
        lua_getiuservalue(L, -1, 1);
        lua_remove(L, -2);
        return;
    }
    char hex[PN_KEY_HEX_LEN + 1];
    pn_key_hex(hex, key);
    lua_pushstring(L, hex);
    if (!c) {
        lua_remove(L, -2); /* the nil */
        /* The host's bookkeeping: a script at its cap still gets its caller. */
        int prev = pn_sandbox_lift(L);
        c = lua_newuserdatauv(L, sizeof *c, 1);
        c->valid = 0;
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
        pn_sandbox_restore(L, prev);
        lua_insert(L, -2); /* cache, hex */
    }
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, -3, 1);
    memcpy(c->key, key, PN_KEY_LEN);
    c->valid = 1;
    lua_remove(L, -2);
}

typedef struct {
    char text[PN_KEY_HEX_LEN];
    uint8_t key[PN_KEY_LEN];
} key_cache;

void pn_glue_check_key(lua_State *L, int idx, uint8_t out[PN_KEY_LEN], pn_glue_resolve_fn resolve,
                       void *ud) {
    static const char cache_key = 0;
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
    key_cache *c = lua_touserdata(L, -1);
    lua_pop(L, 1); /* the registry keeps it alive */
    if (c && len == PN_KEY_HEX_LEN && memcmp(c->text, s, len) == 0) {
        memcpy(out, c->key, PN_KEY_LEN);
        return;
    }
    pn_err e;
    if (pn_key_parse(out, s, len, &e) != 0) {
        if (!resolve || resolve(ud, s, len, out, &e) != 0) luaL_argerror(L, idx, e.msg);
        return;
    }
    if (len != PN_KEY_HEX_LEN) return;
    if (!c) {
        /* The host's bookkeeping: a script at its cap still calls. */
        int prev = pn_sandbox_lift(L);
        c = lua_newuserdatauv(L, sizeof *c, 0);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
        pn_sandbox_restore(L, prev);
    }
    memcpy(c->text, s, len);
    memcpy(c->key, out, PN_KEY_LEN);
}

void pn_glue_push_peer(lua_State *L, const pn_peer_info *p) {
    lua_createtable(L, 0, 7);
    pn_glue_push_key(L, p->key);
    lua_setfield(L, -2, "key");
    lua_pushstring(L, pn_peer_status_name(p->status));
    lua_setfield(L, -2, "status");
    lua_pushboolean(L, p->trusted);
    lua_setfield(L, -2, "trusted");
    lua_pushstring(L, p->addr);
    lua_setfield(L, -2, "addr");
    lua_pushnumber(L, p->last_seen);
    lua_setfield(L, -2, "last_seen");
    lua_pushinteger(L, p->connections);
    lua_setfield(L, -2, "connections");
    lua_pushboolean(L, p->settling);
    lua_setfield(L, -2, "settling");
}

void pn_glue_submodule(lua_State *L, const char *name, const luaL_Reg *fns) {
    lua_getfield(L, -1, name);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, name);
    }
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
}
