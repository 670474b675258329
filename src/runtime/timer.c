/*
 * peernet.after(ms, fn) / peernet.every(ms, fn): timers whose ticks run as
 * tasks; timer:cancel(). A dropped timer object keeps its timer running,
 * like a JavaScript timeout.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>

#include "internal.h"

#define TIMER_MT "peernet.timer"
/* A handler script's pending after()/every() timers, and the shortest
 * every() interval: each tick is a resume, so without these one script
 * could keep a core busy with thousands of 1 ms timers. */
#define PN_TIMER_MAX 64
#define PN_TIMER_EVERY_MIN_MS 10

static void timer_closed(uv_handle_t *hd) {
    free(hd->data);
}

void pn_timer_free(pn_timer *t) {
    pn_script *s = t->s;
    pn_list_remove(&s->timers, &t->link);
    if (t->handle) *t->handle = NULL;
    if (t->running) t->running->timer = NULL;
    luaL_unref(s->L, LUA_REGISTRYINDEX, t->fn_ref);
    pn_clock_close(&t->clock, timer_closed);
    if (s == s->rt->trusted) pn_rt_update_keepalive(s->rt);
}

static void on_timer(void *owner) {
    pn_timer *t = owner;
    if (t->repeat && t->running) return; /* the last tick is still running */
    pn_task *task = pn_task_start(t->s, PN_TASK_TIMER, t->fn_ref,
                                  t->repeat ? "every() timer" : "after() timer", NULL, NULL);
    if (!t->repeat) pn_timer_free(t);
    if (!task) return;
    if (t->repeat) {
        t->running = task;
        task->timer = t;
    }
    pn_task_resume(task, 0);
}

static int add_timer(lua_State *L, int repeat) {
    pn_script *s = pn_api_script(L);
    lua_Integer ms = luaL_checkinteger(L, 1);
    lua_Integer min = repeat ? (s->sandboxed ? PN_TIMER_EVERY_MIN_MS : 1) : 0;
    luaL_argcheck(L, ms >= min && ms <= PN_MS_MAX, 1,
                  lua_pushfstring(L, "must be between %I and %I ms", min, (lua_Integer)PN_MS_MAX));
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (s->sandboxed && s->timers.len >= PN_TIMER_MAX)
        return luaL_error(L,
                          "peernet.%s: a handler script may have at most %d timers pending; "
                          "cancel one first",
                          repeat ? "every" : "after", PN_TIMER_MAX);
    void **handle = lua_newuserdatauv(L, sizeof(void *), 0);
    *handle = NULL;
    luaL_setmetatable(L, TIMER_MT);
    pn_timer *t = calloc(1, sizeof *t);
    if (!t) return luaL_error(L, "out of memory");
    lua_pushvalue(L, 2);
    t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->s = s;
    t->repeat = repeat;
    t->handle = handle;
    *handle = t;
    pn_clock_init(s->rt, &t->clock, on_timer, t);
    pn_clock_start(&t->clock, (uint64_t)ms, repeat ? (uint64_t)ms : 0);
    pn_list_push_front(&s->timers, &t->link);
    if (s == s->rt->trusted) pn_rt_update_keepalive(s->rt);
    return 1;
}

int pn_timer_after(lua_State *L) {
    return add_timer(L, 0);
}

int pn_timer_every(lua_State *L) {
    return add_timer(L, 1);
}

static int l_timer_cancel(lua_State *L) {
    void **handle = luaL_checkudata(L, 1, TIMER_MT);
    pn_timer *t = *handle;
    if (t) pn_timer_free(t);
    lua_pushboolean(L, t != NULL);
    return 1;
}

static int l_timer_gc(lua_State *L) {
    void **handle = luaL_checkudata(L, 1, TIMER_MT);
    pn_timer *t = *handle;
    if (t) t->handle = NULL; /* the timer runs on */
    return 0;
}

void pn_timer_open(lua_State *L) {
    if (luaL_newmetatable(L, TIMER_MT)) {
        lua_pushcfunction(L, l_timer_gc);
        lua_setfield(L, -2, "__gc");
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, l_timer_cancel);
        lua_setfield(L, -2, "cancel");
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, TIMER_MT);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}
