#include "pcall.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

int pn_pcall_msgh(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int pn_pcall(lua_State *L, int nargs, int nres) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, pn_pcall_msgh);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    return rc;
}

const char *pn_pcall_traceback_of(lua_State *L, lua_State *co) {
    char msg[PN_PCALL_MSG_MAX + 1];
    size_t len = 0;
    const char *text = lua_type(co, -1) == LUA_TSTRING ? lua_tolstring(co, -1, &len) : NULL;
    if (text) {
        if (len > PN_PCALL_MSG_MAX) len = PN_PCALL_MSG_MAX;
        memcpy(msg, text, len);
        msg[len] = '\0';
    } else {
        snprintf(msg, sizeof msg, "(error object is a %s value)", luaL_typename(co, -1));
    }
    luaL_traceback(L, co, msg, 0);
    return lua_tostring(L, -1);
}
