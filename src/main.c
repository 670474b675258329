/*
 * peernet-host: the executable. It owns one libuv loop and one lua_State
 * with the full standard library, luv bound to that loop, and the peernet
 * module linked in; the commands themselves are Lua (lua/peernet/cli.lua and cmd/,
 * compiled into the binary by scripts/embed_lua.cmake).
 *
 * This file only sets up, runs cli.main(argv) and tears down in the one
 * order luv 1.44 survives: every handle closed and its close callback run
 * before lua_close (luv frees handle data in close callbacks that need the
 * state). Exit codes come from the CLI; an error that escapes it is 1.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sodium.h>
#include <uv.h>
/* luv.h has an old-style declaration (luv_set_thread_cb) that -Werror refuses. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <luv/luv.h>
#pragma GCC diagnostic pop

#include "core/version.h"
#include "embedded_lua.h"
#include "lua/pcall.h"
#include "luamod/bind.h"
#include "luamod/live.h"

/* A package.searchers entry: require "peernet.cli" finds the embedded copy. */
static int search_embedded(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    for (const pn_embedded_file *f = pn_embedded_lua; f->module; f++) {
        if (strcmp(f->module, name) != 0) continue;
        if (luaL_loadbufferx(L, f->data, f->len, f->chunkname, "t") != LUA_OK) return lua_error(L);
        lua_pushstring(L, f->chunkname + 1);
        return 2;
    }
    lua_pushfstring(L, "no embedded module '%s'", name);
    return 1;
}

/* Runs protected: everything here may raise. Returns the exit code. */
static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    luaL_openlibs(L);

    /* searchers[2] (before package.path): the embedded sources win, so the
     * binary behaves the same from any directory. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    for (lua_Integer i = (lua_Integer)lua_rawlen(L, -1); i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcfunction(L, search_embedded);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 2);

    luaL_requiref(L, "luv", luaopen_luv, 0); /* on the loop set in main() */
    luaL_requiref(L, "peernet", luaopen_peernet, 0);
    lua_pop(L, 2);

    lua_newtable(L);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    int args = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "peernet.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_pushvalue(L, args);
    lua_call(L, 1, 1);
    lua_pushinteger(L, luaL_optinteger(L, -1, 0));
    return 1;
}

/* Runs the loop until no handle is closing (bounded: a close callback that
 * keeps closing more is a bug, not a reason to hang at exit). */
static void count_handle(uv_handle_t *h, void *ud) {
    int *n = ud;
    if (uv_is_closing(h))
        n[0]++;
    else
        n[1]++;
}

/* How long exit waits for requests still in libuv's thread pool (a trust
 * file poll's stat, a name lookup) once every handle is closed: their
 * memory is freed only when they complete, and uv_loop_close refuses
 * (and frees nothing) while one is pending. */
#define PN_EXIT_REQUEST_WAIT_MS 2000

static void on_exit_wait(uv_timer_t *t) {
    uv_stop(t->loop);
}

static void settle(uv_loop_t *loop, int *open) {
    int n[2];
    for (int i = 0; i < 1000; i++) {
        n[0] = n[1] = 0;
        uv_walk(loop, count_handle, n);
        if (n[0] == 0) break;
        uv_run(loop, UV_RUN_NOWAIT);
    }
    *open = n[1];
    /* Nothing open and the loop still alive: only requests are left. The
     * timer is unreferenced, so the run ends as soon as they complete. */
    if (n[1] > 0 || !uv_loop_alive(loop)) return;
    uv_timer_t bound;
    uv_timer_init(loop, &bound);
    uv_unref((uv_handle_t *)&bound);
    uv_timer_start(&bound, on_exit_wait, PN_EXIT_REQUEST_WAIT_MS, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&bound, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static int close_live(lua_State *L) {
    pn_live_close_all(L);
    return 0;
}

/* luv's handles are closed from Lua, so that luv's close callbacks free
 * their data (cli.close_handles walks the loop). */
static int close_luv_handles(lua_State *L) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "peernet.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "close_handles");
    lua_call(L, 0, 0);
    return 0;
}

/* Runs one shutdown step protected: a failure is reported, exit goes on. */
static void shutdown_step(lua_State *L, lua_CFunction step) {
    lua_pushcfunction(L, step);
    if (pn_pcall(L, 0, 0) != LUA_OK)
        fprintf(stderr, "peernet-host: while shutting down: %s\n", lua_tostring(L, -1));
    lua_settop(L, 0);
}

int main(int argc, char **argv) {
    /* A peer, a control client or a reader of stdout that hangs up must cost
     * one write an EPIPE error, not the whole process. */
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fputs("peernet-host: cannot create the event loop\n", stderr);
        return 1;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fputs("peernet-host: cannot create the Lua state (out of memory)\n", stderr);
        uv_loop_close(&loop);
        return 1;
    }
    luv_set_loop(L, &loop);

    int code = 1;
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    if (pn_pcall(L, 2, 1) != LUA_OK)
        fprintf(stderr, "peernet-host: %s\n", lua_tostring(L, -1));
    else
        code = (int)lua_tointeger(L, -1);
    lua_settop(L, 0);

    /* Hosts and runtimes first, through the registry their constructors
     * fill (luamod/live.h): their handles are not luv's, and uv.walk must
     * not see them open. Then whatever luv handles a script left behind. */
    int open;
    lua_gc(L, LUA_GCCOLLECT);
    shutdown_step(L, close_live);
    settle(&loop, &open);
    if (open > 0) {
        shutdown_step(L, close_luv_handles);
        settle(&loop, &open);
    }
    lua_close(L);
    if (uv_loop_close(&loop) != 0 && code == 0)
        fputs("peernet-host: warning: handles left open at exit\n", stderr);
    return code;
}
