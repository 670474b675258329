/* Lua binding of src/core/keys (placeholder until the module lands). */
#include "bind.h"

void pn_lua_open_keys(lua_State *L) {
    (void)L;
}
