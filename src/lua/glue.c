#include "glue.h"

#include <lauxlib.h>

#include "peernet/peernet.h"

int pn_glue_fail(lua_State *L, const pn_err *e) {
    lua_pushnil(L);
    lua_pushstring(L, e->msg[0] ? e->msg : pn_err_name(e->code));
    lua_pushstring(L, pn_err_name(e->code));
    return 3;
}

void pn_glue_push_key(lua_State *L, const uint8_t key[PN_KEY_LEN]) {
    char hex[PN_KEY_HEX_LEN + 1];
    pn_key_hex(hex, key);
    lua_pushstring(L, hex);
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
