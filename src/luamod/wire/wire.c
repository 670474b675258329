/*
 * luaopen_peernet_wire: the test-only wire bindings (wire.h) as one table.
 */
#include <sodium.h>

#include "wire.h"
#include "lua/value.h"

int luaopen_peernet_wire(lua_State *L) {
    if (sodium_init() < 0) return luaL_error(L, "peernet_wire: libsodium failed to initialise");
    pn_value_init(L); /* the envelope decoder makes atoms and maps */
    static const char mark = 0;
    lua_pushlightuserdata(L, (void *)&mark);
    lua_setfield(L, LUA_REGISTRYINDEX, PN_WIRE_REGISTRY_KEY);
    lua_newtable(L);
    pn_bind_noise_open(L);
    pn_bind_announce_open(L);
    pn_bind_envelope_open(L);
    pn_bind_mdns_open(L);
    return 1;
}
