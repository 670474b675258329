/*
 * The peernet.runtime object, shared by bind_runtime.c (the runtime) and
 * bind_rtest.c (what peernet.testing drives it with).
 */
#ifndef PN_BIND_RT_H
#define PN_BIND_RT_H

#include <lua.h>

#include "runtime/runtime.h"

#define RT_MT "peernet.runtime"

typedef struct rt_pending rt_pending;

typedef struct lrt {
    pn_rt *rt;
    lua_State *L; /* the main thread */
    int log_ref, err_ref, script_ref, drain_ref, api_ref, host_ref;
    int out_ref;                 /* outbound: where the scripts' calls go (tests) */
    rt_pending *pending, **tail; /* answers of outbound calls, delivered by rt:settle() */
} lrt;

/* The runtime at argument 1; raises when it is closed. */
lrt *pn_bind_runtime_check(lua_State *L);

/* new's options virtual_clock and outbound (the table at t) into o. */
void pn_bind_rtest_opts(lua_State *L, int t, lrt *r, pn_rt_opts *o);
/* Frees what the test side holds (answers never delivered). */
void pn_bind_rtest_free(lrt *r);
/* Adds advance, now, settle, deliver, event to the methods table on top. */
void pn_bind_rtest_methods(lua_State *L);

#endif
