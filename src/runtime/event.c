/*
 * Host events (connected, disconnected, discovered, drained) to the functions
 * scripts registered with peernet.on: each function runs as a task.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>

#include "internal.h"
#include "lua/glue.h"

typedef struct event_args {
    const uint8_t *key;
    const char *detail; /* disconnected: why; NULL otherwise */
} event_args;

static int push_event_args(lua_State *co, void *ud) {
    const event_args *a = ud;
    pn_glue_push_key(co, a->key);
    if (!a->detail) return 1;
    lua_pushstring(co, a->detail);
    return 2;
}

/* Anchors s's functions for the event name: the table is popped before
 * they run, so nothing of the host's stays on the main thread. */
static int event_fns(pn_script *s, const char *name, int refs[PN_RT_EVENT_FNS_MAX]) {
    lua_State *L = s->L;
    int n = 0;
    PN_SANDBOX_LIFTED(L) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->events_ref);
        if (lua_getfield(L, -1, name) == LUA_TTABLE) {
            n = (int)lua_rawlen(L, -1);
            if (n > PN_RT_EVENT_FNS_MAX) n = PN_RT_EVENT_FNS_MAX;
            for (int i = 0; i < n; i++) {
                lua_rawgeti(L, -1, i + 1);
                refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
            }
        }
        lua_pop(L, 2);
    }
    return n;
}

static void events_to(pn_script *s, const char *name, const event_args *args) {
    if (s->retired || s->closed || s->events_ref == LUA_NOREF) return;
    int refs[PN_RT_EVENT_FNS_MAX];
    int n = event_fns(s, name, refs);
    char what[64];
    snprintf(what, sizeof what, "on %s", name);
    int i = 0;
    for (; i < n && !s->retired && !s->closed; i++) {
        pn_task *t = pn_task_start(s, PN_TASK_EVENT, refs[i], what, push_event_args, (void *)args);
        luaL_unref(s->L, LUA_REGISTRYINDEX, refs[i]);
        if (t) pn_task_resume(t, args->detail ? 2 : 1);
    }
    /* A closed handler script's state is gone with its refs (the caller
     * unpins the struct); the trusted state lives on. */
    for (; i < n && (!s->closed || !s->sandboxed); i++)
        luaL_unref(s->L, LUA_REGISTRYINDEX, refs[i]);
}

static int script_alive(pn_rt *rt, const pn_script *s) {
    if (s == rt->trusted) return 1;
    for (pn_link *l = rt->scripts.head; l; l = l->next)
        if (PN_SCRIPT_OF(l) == s) return 1;
    return 0;
}

void pn_event_on(pn_host *h, pn_event ev, const uint8_t key[PN_KEY_LEN], const char *detail,
                 void *ud) {
    pn_rt *rt = ud;
    event_args args = {key, detail};
    if (ev == PN_EVENT_DRAINED || ev == PN_EVENT_DISCONNECTED)
        pn_api_drained(rt, key, ev == PN_EVENT_DISCONNECTED);
    const char *name = pn_host_event_name(ev);
    /* A handler may reload or close scripts: walk a snapshot of the list. */
    pn_script *snap[PN_RT_SCRIPTS_MAX + 1];
    size_t n = 0;
    for (pn_link *l = rt->scripts.head; l && n < PN_RT_SCRIPTS_MAX; l = l->next)
        snap[n++] = PN_SCRIPT_OF(l);
    if (rt->trusted) snap[n++] = rt->trusted;
    for (size_t i = 0; i < n && !rt->closed; i++) {
        if (!script_alive(rt, snap[i])) continue;
        /* A handler may close its own script (rt:close in a run script):
         * pinned, the struct outlives the call. */
        snap[i]->pins++;
        events_to(snap[i], name, &args);
        pn_script_unpin(snap[i]);
    }
}

void pn_event_deliver(pn_rt *rt, pn_event ev, const uint8_t key[PN_KEY_LEN], const char *detail) {
    if (!rt->closed && !rt->host_gone) pn_event_on(rt->h, ev, key, detail, rt);
}
