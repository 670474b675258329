/*
 * Small pieces both Lua fronts (the peernet module and the script runtime)
 * share: the failure result and the shape of a peer.
 */
#ifndef PN_GLUE_H
#define PN_GLUE_H

#include <lauxlib.h>
#include <lua.h>

#include <stddef.h>
#include <stdint.h>

#include "core/keypair.h"
#include "peernet/err.h"

struct pn_peer_info;

/* The Lua modules are built with hidden visibility (CMakeLists.txt): only
 * their luaopen_* functions, marked with this, are exported. */
#define PN_LUA_EXPORT __attribute__((visibility("default")))

/* Pushes nil, e's message, "local" and its code name (pn_result_err);
 * returns 4 so a C function can `return` it. */
int pn_glue_fail(lua_State *L, const pn_err *e);

/* Pushes a key as lowercase hex. */
void pn_glue_push_key(lua_State *L, const uint8_t key[PN_KEY_LEN]);

/* A second chance for text that is not a key (a label of the trust list):
 * 0 and out filled, or -1 (e filled when it has more to say than the key
 * parser did). */
typedef int (*pn_glue_resolve_fn)(void *ud, const char *text, size_t len, uint8_t out[PN_KEY_LEN],
                                  pn_err *e);

/* The key at idx (hex or base64 text; else what resolve makes of it, when
 * given): raises an argument error otherwise. Keys arrive as text on every
 * call: the last hex key parsed is remembered per state (compared by
 * content), because parsing showed up in the call benchmark. */
void pn_glue_check_key(lua_State *L, int idx, uint8_t out[PN_KEY_LEN], pn_glue_resolve_fn resolve,
                       void *ud);

/* Pushes a registry entry as a table: key, status, trusted, addr ("" when
 * none), last_seen (0: never), connections, settling. One shape for
 * h:peers() and peernet.peers(). */
void pn_glue_push_peer(lua_State *L, const struct pn_peer_info *p);

/* Sets t[name] = a new table of functions, for a sub-module like
 * `peernet.etf`. Leaves the module table on top as it was. */
void pn_glue_submodule(lua_State *L, const char *name, const luaL_Reg *fns);

#endif
