/* Lua binding of src/core/trust (placeholder until the module lands). */
#include "bind.h"

void pn_lua_open_trust(lua_State *L) {
    (void)L;
}
