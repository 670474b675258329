/*
 * Lua's pattern functions on the bounded matcher (core/pattern.h).
 */
#ifndef PN_LPATTERN_H
#define PN_LPATTERN_H

#include <lauxlib.h>
#include <lua.h>

/* Replaces string.find, match, gmatch and gsub in L's string library (the
 * global `string` and the strings' __index) with the bounded ones. */
void pn_lpattern_install(lua_State *L);

/* find, match, gmatch and gsub, for a table of their own (peernet.pattern). */
const luaL_Reg *pn_lpattern_functions(void);

#endif
