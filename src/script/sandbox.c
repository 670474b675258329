/*
 * Sandboxed states: the allocator that caps memory, the hook that caps CPU,
 * and the short list of library functions a handler script may reach.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "lpattern.h"
#include "sandbox.h"

typedef struct sandbox {
    size_t mem, cap;
    int unlimited;         /* > 0: the host is doing its own bookkeeping */
    uint64_t budget, used; /* instructions in this resume */
    int killed;            /* the budget ran out: stop at every instruction */
} sandbox;

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sandbox *sb = ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
    if (nsize == 0) {
        free(ptr);
        sb->mem -= old;
        return NULL;
    }
    if (nsize > old && !sb->unlimited && sb->mem + (nsize - old) > sb->cap) return NULL;
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    sb->mem = sb->mem - old + nsize;
    return p;
}

static sandbox *get(lua_State *L) {
    void *ud;
    return lua_getallocf(L, &ud) == sb_alloc ? ud : NULL;
}

int pn_sandbox_is(lua_State *L) {
    return get(L) != NULL;
}

/* Runs every PN_SANDBOX_HOOK_STEP instructions; once the budget is gone,
 * at every instruction, so a script that catches the error with pcall is
 * stopped again at its next instruction outside the pcall. */
static void sb_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sandbox *sb = get(L);
    if (!sb->killed) {
        int step = lua_gethookcount(L);
        /* A coroutine killed in an earlier resume still steps by 1. */
        if (step != PN_SANDBOX_HOOK_STEP)
            lua_sethook(L, sb_hook, LUA_MASKCOUNT, PN_SANDBOX_HOOK_STEP);
        sb->used += (uint64_t)step;
        if (sb->used < sb->budget) return;
        sb->killed = 1;
    }
    lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "CPU budget exceeded: more than %I instructions without waiting",
               (lua_Integer)sb->budget);
}

void pn_sandbox_begin(lua_State *L) {
    sandbox *sb = get(L);
    if (!sb) return;
    sb->used = 0;
    sb->killed = 0;
    lua_sethook(L, sb_hook, LUA_MASKCOUNT, PN_SANDBOX_HOOK_STEP);
}

int pn_sandbox_over_budget(lua_State *L) {
    sandbox *sb = get(L);
    return sb && sb->killed;
}

void pn_sandbox_unlimited(lua_State *L, int on) {
    sandbox *sb = get(L);
    if (sb) sb->unlimited += on ? 1 : -1;
}

size_t pn_sandbox_mem_used(lua_State *L) {
    sandbox *sb = get(L);
    return sb ? sb->mem : 0;
}

size_t pn_sandbox_mem_cap(lua_State *L) {
    sandbox *sb = get(L);
    return sb ? sb->cap : 0;
}

/* load(chunk [, name [, mode [, env]]]) with the mode forced to text. */
static int sb_load(lua_State *L) {
    int n = lua_gettop(L);
    if (n < 3) lua_settop(L, 3);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n < 4 ? 3 : 4, LUA_MULTRET);
    return lua_gettop(L);
}

static int sb_collectgarbage(lua_State *L) {
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed here; only \"count\"", opt);
    lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
                          (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
    return 1;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction open) {
    luaL_requiref(L, name, open, 1);
    lua_pop(L, 1);
}

static void drop(lua_State *L, const char *table, const char *field) {
    lua_getglobal(L, table);
    lua_pushnil(L);
    lua_setfield(L, -2, field);
    lua_pop(L, 1);
}

static int open_safe(lua_State *L) {
    open_lib(L, LUA_GNAME, luaopen_base);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
    open_lib(L, LUA_COLIBNAME, luaopen_coroutine);

    static const char *const gone[] = {"dofile", "loadfile", "require", "print", NULL};
    for (int i = 0; gone[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, gone[i]);
    }
    lua_getglobal(L, "load");
    lua_pushcclosure(L, sb_load, 1);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setglobal(L, "collectgarbage");
    drop(L, LUA_STRLIBNAME, "dump");
    pn_lpattern_install(L); /* patterns with a step budget: Lua's cannot be stopped */

    /* os: only the clock and the calendar. */
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    lua_createtable(L, 0, 3);
    static const char *const os_keep[] = {"time", "clock", "date", NULL};
    for (int i = 0; os_keep[i]; i++) {
        lua_getfield(L, -2, os_keep[i]);
        lua_setfield(L, -2, os_keep[i]);
    }
    lua_setglobal(L, LUA_OSLIBNAME);
    lua_pop(L, 1);
    /* The loaded-modules table would hand back the full os library. */
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);

    /* Every string shares one metatable: make it unreachable. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    return 0;
}

lua_State *pn_sandbox_new(const pn_sandbox_limits *lim, pn_err *e) {
    sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    sb->cap = lim && lim->mem_cap ? lim->mem_cap : PN_SANDBOX_MEM_DEFAULT;
    sb->budget = lim && lim->budget ? lim->budget : PN_SANDBOX_BUDGET_DEFAULT;
    sb->unlimited = 1; /* while the libraries open */
    lua_State *L = lua_newstate(sb_alloc, sb);
    if (!L) {
        free(sb);
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    lua_pushcfunction(L, open_safe);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        pn_err_set(e, PN_ENOMEM, "cannot open the sandbox: %s", lua_tostring(L, -1));
        pn_sandbox_close(L);
        return NULL;
    }
    sb->unlimited = 0;
    pn_sandbox_begin(L);
    return L;
}

void pn_sandbox_close(lua_State *L) {
    sandbox *sb = get(L);
    sb->unlimited++; /* finalizers may allocate while the state closes */
    lua_close(L);
    free(sb);
}

int pn_sandbox_load(lua_State *L, const char *text, size_t len, const char *chunkname) {
    return luaL_loadbufferx(L, text, len, chunkname, "t");
}
