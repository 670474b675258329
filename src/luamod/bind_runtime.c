/*
 * peernet.runtime: the script runtime (runtime.h) for a trusted Lua state
 * running on luv's loop — peernet-host's own state, or a Lua program.
 *
 *   local rt = peernet.runtime.new(host, {config = path, trust = trust_list_path,
 *                                          log = fn(level, msg),
 *                                          on_error = fn(msg), mem_cap = bytes, budget = n,
 *                                          on_script = fn(event, file, err),
 *                                          slice_ms = ms})
 *   rt:api()             --> the `peernet` table of a run script (same table every time);
 *                            what it lacks it takes from the module (peernet.host, peernet.keys,
 *                            ...), so a run script sets it as require("peernet") too: one table
 *   rt:spawn(fn, ...)    -- fn(...) as a task: peernet.call and friends may wait in it
 *   rt:busy()            --> true while a run script has work (handles, timers, tasks)
 *   rt:load_dir(dir)     --> { {file=, ok=, err=, admin=, handles={...}}, ... }; then followed
 *   rt:load_file(path [, admin])  --> true | nil, err
 *   rt:unload_file(path)
 *   rt:config_changed()  -- config.lua may have changed: read it now (reports a broken one)
 *   rt:scripts()         --> { {file=, ok=, err=, handles={...}, tasks=, mem=, admin=}, ... }
 *   rt:drain(ms, fn)     -- stop accepting, revoke handles, fn() when calls in progress end
 *   rt:close()
 *   peernet.runtime.check(path, ... [, {config = path}])  --> true | nil, "file:line: msg\n..."
 * and, for peernet.testing, new's virtual_clock and outbound with the
 * methods of bind_rtest.c (advance, now, settle, deliver, event).
 */
#include <lauxlib.h>
#include <lua.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <luv/luv.h>
#pragma GCC diagnostic pop
#include <sodium.h>
#include <string.h>

#include "bind.h"
#include "bind_rt.h"
#include "live.h"
#include "lua/glue.h"
#include "lua/pcall.h"
#include "lua/result.h"
#include "runtime/runtime.h"

/* The registry holds the module table under this key, for rt:api(). */
static const char module_key = 0;

lrt *pn_bind_runtime_check(lua_State *L) {
    lrt **u = luaL_checkudata(L, 1, RT_MT);
    if (!*u) luaL_argerror(L, 1, "runtime is closed");
    return *u;
}
#define check_rt pn_bind_runtime_check

static const char *level_name(int level) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    return level >= 0 && level <= 3 ? names[level] : "info";
}

static void on_log(void *ud, int level, const char *msg) {
    lrt *r = ud;
    lua_State *L = r->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->log_ref);
    lua_pushstring(L, level_name(level));
    lua_pushstring(L, msg);
    if (pn_pcall(L, 2, 0) != LUA_OK) {
        fprintf(stderr, "peernet: error in the log function: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

static void on_error(void *ud, const char *msg) {
    lrt *r = ud;
    lua_State *L = r->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->err_ref);
    lua_pushstring(L, msg);
    if (pn_pcall(L, 1, 0) != LUA_OK) {
        fprintf(stderr, "peernet: error in on_error: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

static void on_script(void *ud, const char *event, const char *path, const char *error) {
    lrt *r = ud;
    lua_State *L = r->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->script_ref);
    lua_pushstring(L, event);
    lua_pushstring(L, path);
    if (error)
        lua_pushstring(L, error);
    else
        lua_pushnil(L);
    if (pn_pcall(L, 3, 0) != LUA_OK) {
        fprintf(stderr, "peernet: error in on_script: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

static int opt_fn(lua_State *L, int t, const char *name) {
    if (lua_getfield(L, t, name) == LUA_TNIL) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    luaL_argcheck(L, lua_isfunction(L, -1), t, name);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void read_limits(lua_State *L, int t, pn_sandbox_limits *lim) {
    lua_getfield(L, t, "mem_cap");
    lua_Integer m = luaL_optinteger(L, -1, 0);
    luaL_argcheck(L, m >= 0 && m <= ((lua_Integer)1 << 34), t, "mem_cap out of range");
    lim->mem_cap = (size_t)m;
    lua_getfield(L, t, "budget");
    lua_Integer b = luaL_optinteger(L, -1, 0);
    luaL_argcheck(L, b >= 0, t, "budget must be positive");
    lim->budget = (uint64_t)b;
    lua_getfield(L, t, "slice_ms");
    lua_Integer ms = luaL_optinteger(L, -1, 0);
    luaL_argcheck(L, ms >= 0 && ms <= PN_SANDBOX_SLICE_MS_MAX, t, "slice_ms out of range");
    lim->slice_ms = (uint32_t)ms;
    lua_pop(L, 3);
}

static int l_rt_new(lua_State *L) {
    pn_host *h = pn_bind_host_check(L, 1);
    lua_settop(L, 2);
    if (lua_isnil(L, 2)) {
        lua_newtable(L);
        lua_replace(L, 2);
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    pn_rt_opts o;
    memset(&o, 0, sizeof o);
    read_limits(L, 2, &o.limits);
    lua_getfield(L, 2, "config");
    o.config_path = luaL_optstring(L, -1, NULL); /* kept on the stack */
    lua_getfield(L, 2, "trust");
    o.trust_path = luaL_optstring(L, -1, NULL);
    lrt **u = lua_newuserdatauv(L, sizeof *u, 1);
    *u = NULL;
    luaL_setmetatable(L, RT_MT);
    lrt *r = calloc(1, sizeof *r);
    if (!r) return luaL_error(L, "out of memory");
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    r->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    r->log_ref = opt_fn(L, 2, "log");
    r->err_ref = opt_fn(L, 2, "on_error");
    r->script_ref = opt_fn(L, 2, "on_script");
    r->drain_ref = r->api_ref = LUA_NOREF;
    lua_pushvalue(L, 1);
    r->host_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the host outlives the runtime */
    if (r->log_ref != LUA_NOREF) o.log = on_log, o.log_ud = r;
    if (r->err_ref != LUA_NOREF) o.on_error = on_error, o.on_error_ud = r;
    if (r->script_ref != LUA_NOREF) o.on_script = on_script, o.on_script_ud = r;
    pn_bind_rtest_opts(L, 2, r, &o);
    pn_err e;
    r->rt = pn_rt_new(h, luv_loop(L), &o, &e);
    if (!r->rt) {
        luaL_unref(L, LUA_REGISTRYINDEX, r->log_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, r->err_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, r->script_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, r->host_ref);
        pn_bind_rtest_free(r);
        free(r);
        return pn_glue_fail(L, &e);
    }
    *u = r;
    pn_live_add(L, -1, PN_LIVE_RUNTIME);
    return 1;
}

static void rt_close(lrt **u) {
    lrt *r = *u;
    if (!r) return;
    *u = NULL;
    pn_rt_close(r->rt);
    lua_State *L = r->L;
    luaL_unref(L, LUA_REGISTRYINDEX, r->log_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, r->err_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, r->script_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, r->drain_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, r->api_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, r->host_ref);
    pn_bind_rtest_free(r);
    free(r);
}

static int l_rt_close(lua_State *L) {
    rt_close(luaL_checkudata(L, 1, RT_MT));
    return 0;
}

static int l_rt_api(lua_State *L) {
    lrt *r = check_rt(L);
    if (r->api_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->api_ref);
        return 1;
    }
    pn_err e;
    if (pn_script_trusted(r->rt, L, &e) != 0) return pn_glue_fail(L, &e);
    lua_createtable(L, 0, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &module_key);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    r->api_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

static int l_rt_spawn(lua_State *L) {
    lrt *r = check_rt(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (r->api_ref == LUA_NOREF) {
        lua_pushcfunction(L, l_rt_api);
        lua_pushvalue(L, 1);
        lua_call(L, 1, 0);
    }
    pn_err e;
    if (pn_script_spawn(r->rt, L, lua_gettop(L) - 2, &e) != 0) return pn_glue_fail(L, &e);
    return 0;
}

static int l_rt_busy(lua_State *L) {
    lua_pushboolean(L, pn_rt_busy(check_rt(L)->rt));
    return 1;
}

static int add_file(const char *path, int admin, const char *error, void *ud) {
    lua_State *L = ud;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, path);
    lua_setfield(L, -2, "file");
    lua_pushboolean(L, error == NULL);
    lua_setfield(L, -2, "ok");
    lua_pushboolean(L, admin);
    lua_setfield(L, -2, "admin");
    if (error) {
        lua_pushstring(L, error);
        lua_setfield(L, -2, "err");
    }
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

/* Pushes {names...}. */
static void push_names(lua_State *L, const char **names, uint32_t n) {
    lua_createtable(L, (int)n, 0);
    for (uint32_t k = 0; k < n; k++) {
        lua_pushstring(L, names[k]);
        lua_rawseti(L, -2, k + 1);
    }
}

static int add_handles(const pn_rt_script_info *i, const char **names, uint32_t n, void *ud) {
    lua_State *L = ud; /* {path = {names...}} on top */
    push_names(L, names, n);
    lua_setfield(L, -2, i->path);
    return 0;
}

/* Pushes the handler directory's files as load_dir and rescan return them:
 * {file=, ok=, admin=, err=, handles={...}}. */
static int push_dir_report(lua_State *L, lrt *r) {
    lua_newtable(L);
    int by_path = lua_gettop(L);
    if (pn_script_each(r->rt, add_handles, L) != 0) return luaL_error(L, "out of memory");
    lua_newtable(L);
    pn_scriptdir_files(r->rt, add_file, L);
    /* each entry gets the handles its script exposes */
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
        lua_getfield(L, -1, "file");
        if (lua_rawget(L, by_path) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
        }
        lua_setfield(L, -2, "handles");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 1;
}

static int l_rt_load_dir(lua_State *L) {
    lrt *r = check_rt(L);
    const char *dir = luaL_checkstring(L, 2);
    pn_err e;
    if (pn_scriptdir_watch(r->rt, dir, &e) != 0) return pn_glue_fail(L, &e);
    return push_dir_report(L, r);
}

/* Looks at the handler directory now rather than at the watcher's next
 * event: a push answers with what its files loaded as. */
static int l_rt_rescan(lua_State *L) {
    lrt *r = check_rt(L);
    pn_scriptdir_rescan(r->rt);
    return push_dir_report(L, r);
}

static int l_rt_load_file(lua_State *L) {
    lrt *r = check_rt(L);
    const char *path = luaL_checkstring(L, 2);
    pn_err e;
    if (pn_script_load_file(r->rt, path, lua_toboolean(L, 3), &e) != 0) return pn_glue_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_rt_unload_file(lua_State *L) {
    lrt *r = check_rt(L);
    pn_script_unload_file(r->rt, luaL_checkstring(L, 2));
    return 0;
}

static int l_rt_config_changed(lua_State *L) {
    pn_caps_config_check(check_rt(L)->rt);
    return 0;
}

static int add_script(const pn_rt_script_info *i, const char **names, uint32_t n, void *ud) {
    lua_State *L = ud;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, i->path);
    lua_setfield(L, -2, "file");
    lua_pushboolean(L, i->admin);
    lua_setfield(L, -2, "admin");
    lua_pushinteger(L, i->tasks);
    lua_setfield(L, -2, "tasks");
    lua_pushinteger(L, (lua_Integer)i->mem);
    lua_setfield(L, -2, "mem");
    push_names(L, names, n);
    lua_setfield(L, -2, "handles");
    /* ok: it serves (a failed reload keeps the old version serving, and
     * err says why the new one did not load). */
    lua_pushboolean(L, !i->error || !i->error[0]);
    lua_setfield(L, -2, "ok");
    if (i->error && i->error[0]) {
        lua_pushstring(L, i->error);
        lua_setfield(L, -2, "err");
    }
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int l_rt_scripts(lua_State *L) {
    lrt *r = check_rt(L);
    lua_newtable(L);
    if (pn_script_each(r->rt, add_script, L) != 0) return luaL_error(L, "out of memory");
    return 1;
}

static void on_drained(void *ud) {
    lrt *r = ud;
    lua_State *L = r->L;
    int ref = r->drain_ref;
    r->drain_ref = LUA_NOREF;
    if (ref == LUA_NOREF) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (pn_pcall(L, 0, 0) != LUA_OK) {
        fprintf(stderr, "peernet: error in the drain callback: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

static int l_rt_drain(lua_State *L) {
    lrt *r = check_rt(L);
    lua_Integer ms = luaL_checkinteger(L, 2);
    luaL_argcheck(L, ms >= 0 && ms <= 3600000, 2, "0 to 3600000 ms");
    luaL_checktype(L, 3, LUA_TFUNCTION);
    luaL_argcheck(L, r->drain_ref == LUA_NOREF, 1, "already draining");
    lua_pushvalue(L, 3);
    r->drain_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    pn_rt_drain(r->rt, (uint32_t)ms, on_drained, r);
    return 0;
}

/* ---- check: load scripts in the sandbox on a host that does not listen ---- */

static void ignore_log(void *ud, int level, const char *msg) {
    (void)ud, (void)level, (void)msg;
}

static int l_check(lua_State *L) {
    int n = lua_gettop(L);
    const char *config = NULL;
    if (n > 0 && lua_istable(L, n)) {
        lua_getfield(L, n, "config");
        config = luaL_optstring(L, -1, NULL);
        lua_pop(L, 1); /* still referenced by the options table */
        n--;
    }
    luaL_argcheck(L, n >= 1, 1, "expected script paths");
    uint8_t secret[PN_KEY_LEN]; /* an X25519 private key */
    randombytes_buf(secret, sizeof secret);
    pn_host_config hc;
    pn_host_config_init(&hc);
    hc.secret = secret;
    hc.listen = "";
    hc.weak = 1;
    pn_err e;
    pn_host *h = pn_host_new(luv_loop(L), &hc, &e);
    sodium_memzero(secret, sizeof secret);
    if (!h) return pn_glue_fail(L, &e);
    pn_rt_opts o;
    memset(&o, 0, sizeof o);
    o.config_path = config;
    o.log = ignore_log;
    pn_rt *rt = pn_rt_new(h, luv_loop(L), &o, &e);
    if (!rt) {
        pn_host_close(h, NULL, NULL);
        return pn_glue_fail(L, &e);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int errors = 0;
    for (int i = 1; i <= n; i++) {
        const char *path = luaL_checkstring(L, i);
        /* .../admin/x.lua is an admin module, as in a handler directory */
        const char *slash = strrchr(path, '/');
        int admin = slash && slash - path >= 5 && strncmp(slash - 5, "admin", 5) == 0 &&
                    (slash - path == 5 || slash[-6] == '/');
        if (pn_script_load_file(rt, path, admin, &e) != 0) {
            if (errors++) luaL_addchar(&b, '\n');
            luaL_addstring(&b, e.msg);
        }
    }
    pn_rt_close(rt);
    pn_host_close(h, NULL, NULL);
    if (!errors) {
        lua_pushboolean(L, 1);
        return 1;
    }
    luaL_pushresult(&b);
    return pn_result_local_top(L, PN_OK);
}

void pn_bind_runtime_open(lua_State *L) {
    static const luaL_Reg methods[] = {{"api", l_rt_api},
                                       {"spawn", l_rt_spawn},
                                       {"busy", l_rt_busy},
                                       {"load_dir", l_rt_load_dir},
                                       {"rescan", l_rt_rescan},
                                       {"load_file", l_rt_load_file},
                                       {"unload_file", l_rt_unload_file},
                                       {"scripts", l_rt_scripts},
                                       {"config_changed", l_rt_config_changed},
                                       {"drain", l_rt_drain},
                                       {"close", l_rt_close},
                                       {NULL, NULL}};
    static const luaL_Reg fns[] = {{"new", l_rt_new}, {"check", l_check}, {NULL, NULL}};
    if (luaL_newmetatable(L, RT_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        pn_bind_rtest_methods(L);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_rt_close);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &module_key);
    pn_glue_submodule(L, "runtime", fns);
}
