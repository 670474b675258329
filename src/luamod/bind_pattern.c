/*
 * peernet.pattern: the bounded Lua patterns (lua/lpattern.c) as a table,
 * so specs and programs can drive the matcher scripts get.
 */
#include "bind.h"
#include "core/pattern.h"
#include "lua/lpattern.h"

void pn_bind_pattern_open(lua_State *L) {
    pn_glue_submodule(L, "pattern", pn_lpattern_functions());
    lua_getfield(L, -1, "pattern");
    lua_pushinteger(L, (lua_Integer)PN_PATTERN_STEPS_DEFAULT);
    lua_setfield(L, -2, "steps_max");
    lua_pop(L, 1);
}
