/*
 * Weak tables kept in the registry: caches and registries of live objects
 * that must not keep what they hold alive.
 */
#ifndef PN_WEAK_H
#define PN_WEAK_H

#include <lua.h>

/* Pushes registry[key], first making it an empty table with the weak mode
 * mode ("k", "v" or "kv") when it is not a table yet. */
void pn_weak_push(lua_State *L, const char *key, const char *mode);

#endif
