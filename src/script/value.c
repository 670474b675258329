/* Lua <-> ETF value mapping (placeholder until the ETF module lands). */
#include "bind.h"

void pn_lua_open_value(lua_State *L) {
    (void)L;
}
