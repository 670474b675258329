/*
 * peernet.announce: the UDP discovery datagram.
 *
 *   peernet.announce.encode(port, key32) --> 39 bytes
 *   peernet.announce.decode(bytes)       --> port, key32  |  nil, err
 */
#include <lauxlib.h>
#include <lua.h>

#include "wire.h"
#include "lua/glue.h"
#include "core/announce.h"

static int announce_encode(lua_State *L) {
    lua_Integer port = luaL_checkinteger(L, 1);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port out of range");
    luaL_argcheck(L, klen == 32, 2, "key must be 32 bytes");
    uint8_t out[PN_ANNOUNCE_LEN];
    pn_announce_encode(out, (uint16_t)port, (const uint8_t *)key);
    lua_pushlstring(L, (const char *)out, sizeof out);
    return 1;
}

static int announce_decode(lua_State *L) {
    size_t len;
    const uint8_t *buf = (const uint8_t *)luaL_checklstring(L, 1, &len);
    uint16_t port;
    uint8_t key[32];
    pn_err e;
    if (pn_announce_decode(buf, len, &port, key, &e) < 0) return pn_glue_fail(L, &e);
    lua_pushinteger(L, port);
    lua_pushlstring(L, (const char *)key, sizeof key);
    return 2;
}

void pn_bind_announce_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"encode", announce_encode}, {"decode", announce_decode}, {NULL, NULL}};
    pn_glue_submodule(L, "announce", fns);
}
