/*
 * The live objects of a Lua state that hold handles on the loop: hosts and
 * script runtimes. Their constructors register them here; the executable
 * (src/main.c) closes whatever a command or a run script left open before
 * it closes the loop and the state, in the order PN_LIVE_KINDS lists
 * (a runtime before the host it runs on).
 *
 * The registry holds its objects weakly: it never keeps one alive, and a
 * plain lua5.4 program that never asks pays one table entry per object.
 */
#ifndef PN_LIVE_H
#define PN_LIVE_H

#include <lua.h>

/* X(NAME, registry key): one weak table per kind, closed in this order. */
#define PN_LIVE_KINDS(X) X(RUNTIME, "peernet.live.runtimes") X(HOST, "peernet.live.hosts")

#define PN_LIVE_ENUM_(name, key) PN_LIVE_##name,
typedef enum { PN_LIVE_KINDS(PN_LIVE_ENUM_) PN_LIVE_COUNT } pn_live_kind;
#undef PN_LIVE_ENUM_

/* Registers the object at idx (it has a `close` method). */
void pn_live_add(lua_State *L, int idx, pn_live_kind kind);

/* Calls close() on every registered object that is still referenced,
 * runtimes first, then hosts; an error in one close is reported on stderr
 * and the others are still closed. Returns how many were closed. */
int pn_live_close_all(lua_State *L);

#endif
