/* Lua binding of src/core/noise (placeholder until the module lands). */
#include "bind.h"

void pn_lua_open_noise(lua_State *L) {
    (void)L;
}
