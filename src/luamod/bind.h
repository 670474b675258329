/*
 * Bindings of the core modules into the Lua module `peernet`. Each opener,
 * pn_bind_X_open in bind_X.c (wire/bind_X.c for the spec-only ones), is
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

void pn_bind_frame_open(lua_State *L);   /* frame.reader, frame.encode */
void pn_bind_keys_open(lua_State *L);    /* keys.* */
void pn_bind_trust_open(lua_State *L);   /* trust.* */
void pn_bind_host_open(lua_State *L);    /* host.new: a host on luv's loop */
void pn_bind_runtime_open(lua_State *L); /* runtime.new, runtime.check: the script runtime */
void pn_bind_qr_open(lua_State *L);      /* qr: a QR code as rows of booleans */
void pn_bind_pattern_open(lua_State *L); /* pattern.find/match/gmatch/gsub: bounded Lua patterns */
void pn_bind_args_open(lua_State *L);    /* args.parse, args.encode: ARGS in the C sandbox */
void pn_bind_datafile_open(
    lua_State *L);                      /* datafile.load: a data file (host.lua) in the C sandbox */
void pn_bind_notify_open(lua_State *L); /* notify: sd_notify(3) when built with libsystemd */
void pn_bind_console_open(lua_State *L); /* console.new: a remote console session's sandbox */
void pn_bind_loadgen_open(lua_State *L); /* loadgen: the load generator of `peernet-host bench` */

/* Evaluates text as a chunk in a sandbox of its own, with the limits of
 * ARGS (bind_args.c), errors named by label: pushes the value it returns
 * and returns 1, or pushes the message and returns 0. */
int pn_bind_args_eval(lua_State *L, const char *text, size_t len, const char *label);

/* require "peernet": the module table (peernet.so, or linked into peernet-host).
 * The wire codecs' test bindings are a module of their own (wire/wire.h). */
PN_LUA_EXPORT int luaopen_peernet(lua_State *L);

/* The pn_host of the peernet.host object at idx; raises when it is not one
 * or is closed. (The object owns the host: keep it referenced.) */
struct pn_host *pn_bind_host_check(lua_State *L, int idx);

#endif
