/*
 * Bindings of the core modules into the Lua module `peernet`. Each opener is
 * called with the module table on top of the stack and adds its fields to
 * it (a sub-table such as `peernet.etf`, or top-level functions).
 *
 * Convention for every binding: a function that a stranger's input can make
 * fail returns `nil, message, code` (code is pn_err_name(), e.g. "eauth", for
 * callers that branch on the kind of failure); a programming error (wrong argument type)
 * raises through luaL_argerror.
 */
#ifndef PN_BIND_H
#define PN_BIND_H

#include <lua.h>
#include <lauxlib.h>

#include "peernet/err.h"
#include "lua/glue.h"

void pn_lua_open_frame(lua_State *L);   /* frame.reader, frame.encode */
void pn_lua_open_keys(lua_State *L);    /* keys.* */
void pn_lua_open_trust(lua_State *L);   /* trust.* */
void pn_lua_open_host(lua_State *L);    /* host.new: a host on luv's loop */
void pn_lua_open_runtime(lua_State *L); /* runtime.new, runtime.check: the script runtime */
void pn_lua_open_qr(lua_State *L);      /* qr: a QR code as rows of booleans */
void pn_lua_open_pattern(lua_State *L); /* pattern.find/match/gmatch/gsub: bounded Lua patterns */
void pn_lua_open_args(lua_State *L);    /* args.parse, args.encode: ARGS in the C sandbox */
void pn_lua_open_loadgen(lua_State *L); /* loadgen: the load generator of `peernet-host bench` */

/* require "peernet": the module table (peernet.so, or linked into peernet-host).
 * The wire codecs' test bindings are a module of their own (wire/wire.h). */
LUAMOD_API int luaopen_peernet(lua_State *L);

/* The pn_host of the peernet.host object at idx; raises when it is not one
 * or is closed. (The object owns the host: keep it referenced.) */
struct pn_host *pn_lua_checkhost(lua_State *L, int idx);

#endif
