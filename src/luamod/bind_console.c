/*
 * peernet.console: the state of one remote console session (`peernet-host
 * console`, docs/remote.md), a sandboxed lua_State of its own
 * (lua/sandbox.h) with the memory cap, instruction budget and time slice
 * of a handler script. Its globals last from line to line, so `.load
 * FILE` may define functions the next lines call.
 *
 *   peernet.console.new([{mem_cap=, budget=, slice_ms=}])  --> session
 *   session:grant({read=, write=, exec=} | nil, who, where)  -- its host.* grants
 *   session:eval(text [, later])  --> true, {n = N, v = {...}, out = printed, cut = true}
 *                                   | false, message | nothing (it waits: later(ok, v) comes)
 *   session:close()
 *   peernet.console.MAX_TEXT  -- bytes of one line (or file) accepted
 *
 * A line is first read as an expression (`return TEXT`), else as a chunk.
 * print's text (at most PN_CONSOLE_PRINT_MAX bytes a line, cut = true past
 * it) comes back as out. Each line runs in a new coroutine with a budget of its own.
 *
 * host.read / host.write / host.exec are caps.c's (the checks and
 * guarantees of a handler script's, with the session's own grants). A line
 * that calls host.exec waits for the program: its coroutine is resumed from
 * the loop when the program ends, and later(ok, v) gets what eval would
 * have returned; without later such a line is refused, as is any other
 * wait (a yield), since nothing else resumes it. The results
 * cross to the caller as their ETF encoding, so the caller only ever sees
 * data: a result that has no encoding (a function, a coroutine) crosses as
 * its type and address, written by the host (no __tostring runs).
 *
 * Why a state of its own rather than a script of the runtime: the
 * runtime's scripts are files of the handler directory with their grants
 * from config.lua's globs, and whatever they expose is reachable by every
 * trusted peer; a console's state must answer only the session's key,
 * through the serve's reserved handle, which runs on the trusted side.
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
/* luv.h has an old-style declaration (luv_set_thread_cb) that -Werror refuses. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <luv/luv.h>
#pragma GCC diagnostic pop

#include "bind.h"
#include "lua/glue.h"
#include "lua/sandbox.h"
#include "lua/value.h"
#include "runtime/runtime.h"

#define PN_CONSOLE_TEXT_MAX (256u << 10) /* bytes of one line or loaded file */
#define PN_CONSOLE_PRINT_MAX (64u << 10) /* bytes of print's output one line keeps */

#define CONSOLE_MT "peernet.console"

/* One evaluation's text, its coroutine and, once it ran, its results' encoding. */
typedef struct console_eval {
    const char *text;
    size_t len;
    lua_State *co; /* the line's coroutine (a thread of S) */
    int nargs;     /* values on co for its next resume */
    pn_etf_buf term;
    int has_term;
} console_eval;

typedef struct console {
    lua_State *S;       /* NULL once closed */
    lua_State *L;       /* the main thread of the state later runs in */
    uv_loop_t *loop;    /* luv's: where host.exec's program is watched */
    pn_caps *caps;      /* the session's grants (none until grant) */
    pn_caps_exec *exec; /* the program the current line waits for */
    int can_wait;       /* the current line has a later */
    int co_ref;         /* in S's registry: the current line's coroutine */
    int later_ref;      /* in L's registry: the waiting line's later */
    char who[128];      /* the grantee, in a refusal */
    char where[512];    /* the file that grants, in a refusal */
    console_eval line;
} console;

/* What print wrote during the current line: {pieces..., bytes = N, cut = bool}. */
static const char print_key = 0;

/* print in the session: its text goes back with the line's results. Runs
 * as script code (in the line's coroutine, under its budget): __tostring
 * may run, bounded like everything else. */
static int console_print(lua_State *L) {
    int n = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &print_key);
    int t = lua_gettop(L);
    if (!lua_istable(L, t)) return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    lua_getfield(L, t, "bytes");
    lua_Integer bytes = lua_tointeger(L, -1);
    lua_pop(L, 1);
    size_t len = lua_rawlen(L, -1);
    if ((size_t)bytes + len > PN_CONSOLE_PRINT_MAX) {
        lua_pushboolean(L, 1);
        lua_setfield(L, t, "cut");
        return 0;
    }
    lua_rawseti(L, t, (lua_Integer)lua_rawlen(L, t) + 1);
    lua_pushinteger(L, bytes + (lua_Integer)len);
    lua_setfield(L, t, "bytes");
    return 0;
}

/* Puts what print wrote in the results table on top of S as its field out. */
static void take_output(lua_State *S) {
    int r = lua_gettop(S);
    if (lua_rawgetp(S, LUA_REGISTRYINDEX, &print_key) == LUA_TTABLE) {
        int t = lua_gettop(S);
        lua_Integer n = (lua_Integer)lua_rawlen(S, t);
        if (n > 0) {
            luaL_Buffer b;
            luaL_buffinit(S, &b);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(S, t, i);
                luaL_addvalue(&b);
            }
            luaL_pushresult(&b);
            lua_setfield(S, r, "out");
        }
        if (lua_getfield(S, t, "cut") == LUA_TBOOLEAN) lua_setfield(S, r, "cut");
    }
    lua_settop(S, r);
    lua_pushnil(S);
    lua_rawsetp(S, LUA_REGISTRYINDEX, &print_key);
}

static console *check_console(lua_State *L) {
    console *c = luaL_checkudata(L, 1, CONSOLE_MT);
    luaL_argcheck(L, c->S != NULL, 1, "console session closed");
    return c;
}

/* Loads the text as an expression, else as a chunk, leaving the function
 * (LUA_OK) or the chunk's own syntax error on S's stack. */
static int load_line(lua_State *S, const console_eval *a) {
    luaL_Buffer b;
    luaL_buffinit(S, &b);
    luaL_addstring(&b, "return ");
    luaL_addlstring(&b, a->text, a->len);
    luaL_pushresult(&b);
    size_t n;
    const char *src = lua_tolstring(S, -1, &n);
    if (pn_sandbox_load(S, src, n, "=console") == LUA_OK) {
        lua_remove(S, -2);
        return LUA_OK;
    }
    lua_pop(S, 2);
    return pn_sandbox_load(S, a->text, a->len, "=console");
}

/* Replaces the value at i (in co) by "type: address" when it has no
 * encoding: the caller sees data only. */
static void make_data(lua_State *S, lua_State *co, int i) {
    pn_etf_buf probe;
    pn_err e;
    lua_pushvalue(co, i);
    lua_xmove(co, S, 1);
    int rc = pn_value_encode_protected(S, -1, 0, &probe, &e);
    pn_etf_buf_free(&probe);
    lua_pop(S, 1);
    if (rc == 0) return;
    lua_pushfstring(co, "%s: %p", luaL_typename(co, i), lua_topointer(co, i));
    lua_replace(co, i);
}

/* Runs in S, protected, with the console at 1: resumes the line's
 * coroutine and leaves {n=, v={...}}'s encoding in the line, or leaves it
 * waiting (c->exec set). */
static int run_line(lua_State *S) {
    console *c = lua_touserdata(S, 1);
    console_eval *a = &c->line;
    lua_State *co = a->co;
    lua_State *prev = pn_sandbox_begin(co);
    int nres = 0;
    int st = lua_resume(co, S, a->nargs, &nres);
    pn_sandbox_end(co, prev);
    a->nargs = 0;
    if (st == LUA_YIELD && c->exec) return 0;
    /* The host's work from here (the message, the encoding), with the cap
     * lifted and put back before anything is raised: the state lives on. */
    int lifted = pn_sandbox_lift(S);
    int failed = 1;
    if (st == LUA_YIELD) {
        lua_pushliteral(S, "a console line cannot wait (yield)");
    } else if (st != LUA_OK) {
        if (pn_sandbox_over_budget(co))
            lua_pushliteral(S, "too much computation");
        else if (st == LUA_ERRMEM)
            lua_pushliteral(S, "too much memory");
        else if (lua_type(co, -1) == LUA_TSTRING)
            lua_pushstring(S, lua_tostring(co, -1));
        else
            lua_pushfstring(S, "(error object is a %s value)", luaL_typename(co, -1));
    } else {
        for (int i = 1; i <= nres; i++)
            make_data(S, co, lua_gettop(co) - nres + i);
        lua_createtable(S, 0, 2);
        lua_pushinteger(S, nres);
        lua_setfield(S, -2, "n");
        lua_createtable(S, nres, 0);
        for (int i = 1; i <= nres; i++) {
            lua_pushvalue(co, lua_gettop(co) - nres + i);
            lua_xmove(co, S, 1);
            lua_rawseti(S, -2, i);
        }
        lua_setfield(S, -2, "v");
        take_output(S);
        pn_err e;
        a->has_term = 1;
        if (pn_value_encode_protected(S, -1, 0, &a->term, &e) != 0)
            lua_pushstring(S, e.msg);
        else
            failed = 0;
    }
    pn_sandbox_restore(S, lifted);
    if (failed) return lua_error(S);
    return 0;
}

/* Runs in S, protected, with the console at 1: loads the line's text and
 * runs it. */
static int eval_in_sandbox(lua_State *S) {
    console *c = lua_touserdata(S, 1);
    console_eval *a = &c->line;
    int loaded = LUA_OK;
    /* Setting up is the host's work, bounded by the text's size. */
    PN_SANDBOX_LIFTED(S) {
        lua_newtable(S);
        lua_rawsetp(S, LUA_REGISTRYINDEX, &print_key);
        loaded = load_line(S, a);
        if (loaded == LUA_OK) {
            a->co = lua_newthread(S);
            lua_pushvalue(S, -1);
            c->co_ref = luaL_ref(S, LUA_REGISTRYINDEX); /* kept while the line waits */
            lua_insert(S, -2);
            lua_xmove(S, a->co, 1);
        }
    }
    if (loaded != LUA_OK) return lua_error(S);
    a->nargs = 0;
    return run_line(S);
}

/* After the line's run in S ended with st: pushes true, results or false,
 * message on L and returns 2, or returns 0 when the line waits. */
static int line_end(lua_State *L, console *c, int st) {
    console_eval *a = &c->line;
    if (st == LUA_OK && c->exec) return 0;
    luaL_unref(c->S, LUA_REGISTRYINDEX, c->co_ref);
    c->co_ref = LUA_NOREF;
    a->co = NULL;
    if (st != LUA_OK && a->has_term) pn_etf_buf_free(&a->term);
    if (st != LUA_OK) {
        a->has_term = 0;
        const char *msg = lua_tostring(c->S, -1);
        lua_pushboolean(L, 0);
        lua_pushstring(L, msg ? msg : "out of memory");
        lua_pop(c->S, 1);
        lua_gc(c->S, LUA_GCCOLLECT);
        return 2;
    }
    lua_settop(c->S, 0);
    pn_err e;
    lua_pushboolean(L, 1);
    int rc = pn_value_push(L, a->term.data, a->term.len, 1, &e);
    pn_etf_buf_free(&a->term);
    a->has_term = 0;
    if (rc != 0) {
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
        lua_pushstring(L, e.msg);
    }
    return 2;
}

/* host.exec's program ended: the line goes on, and later gets its end. */
static void on_exec_done(void *ud, pn_caps_exec *x) {
    console *c = ud;
    c->exec = NULL;
    PN_SANDBOX_LIFTED(c->S) {
        c->line.nargs = pn_caps_exec_push(c->line.co, x);
    }
    lua_State *L = c->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->later_ref);
    lua_pushcfunction(c->S, run_line);
    lua_pushlightuserdata(c->S, c);
    int n = line_end(L, c, lua_pcall(c->S, 1, 0, 0));
    if (n == 0) {
        lua_settop(L, top); /* it waits again */
        return;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, c->later_ref);
    c->later_ref = LUA_NOREF;
    c->can_wait = 0;
    /* later may close the session: nothing of c is used after it. */
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
        fprintf(stderr, "peernet.console: later: %s\n", lua_tostring(L, -1));
    lua_settop(L, top);
}

static int console_read(lua_State *L) {
    console *c = lua_touserdata(L, lua_upvalueindex(1));
    return pn_caps_read(L, c->caps, c->who, c->where);
}

static int console_write(lua_State *L) {
    console *c = lua_touserdata(L, lua_upvalueindex(1));
    return pn_caps_write(L, c->caps, c->who, c->where);
}

static int console_exec(lua_State *L) {
    console *c = lua_touserdata(L, lua_upvalueindex(1));
    /* Only the line's own coroutine is resumed when the program ends. */
    if (!c->can_wait || L != c->line.co)
        return luaL_error(L, "host.exec waits, so it must run in the line itself "
                             "(not in a coroutine of its own)");
    pn_caps_exec *x;
    int n = pn_caps_exec_start(L, c->caps, c->who, c->where, c->loop, on_exec_done, c, &x);
    if (!x) return n;
    c->exec = x;
    return lua_yield(L, 0);
}

static int l_console_eval(lua_State *L) {
    console *c = check_console(L);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    int has_later = !lua_isnoneornil(L, 3);
    if (has_later) luaL_checktype(L, 3, LUA_TFUNCTION);
    if (c->co_ref != LUA_NOREF) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "a line of this session is still running");
        return 2;
    }
    if (len > PN_CONSOLE_TEXT_MAX) {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "%I bytes is more than the limit of %I", (lua_Integer)len,
                        (lua_Integer)PN_CONSOLE_TEXT_MAX);
        return 2;
    }
    c->line = (console_eval){.text = text, .len = len};
    c->can_wait = has_later;
    lua_pushcfunction(c->S, eval_in_sandbox);
    lua_pushlightuserdata(c->S, c);
    int n = line_end(L, c, lua_pcall(c->S, 1, 0, 0));
    c->line.text = NULL;
    if (n == 0) {
        lua_pushvalue(L, 3);
        c->later_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        c->can_wait = 0;
    }
    return n;
}

static int l_console_grant(lua_State *L) {
    console *c = check_console(L);
    if (c->exec) return luaL_error(L, "a line of this session is still running");
    snprintf(c->who, sizeof c->who, "%s", luaL_optstring(L, 3, "this console"));
    snprintf(c->where, sizeof c->where, "%s", luaL_optstring(L, 4, "config.lua"));
    pn_caps *caps = pn_caps_new();
    if (!caps) return luaL_error(L, "out of memory");
    static const char *const kinds[] = {"exec", "read", "write"};
    pn_err e = {0};
    int rc = 0;
    if (lua_istable(L, 2)) {
        for (int k = 0; k < 3 && rc == 0; k++) {
            int base = lua_gettop(L);
            if (lua_getfield(L, 2, kinds[k]) == LUA_TTABLE) {
                for (lua_Integer i = 1; rc == 0 && lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
                    if (lua_type(L, -1) != LUA_TSTRING)
                        rc = pn_err_set(&e, PN_EINVAL, "%s[%lld] must be an absolute path",
                                        kinds[k], (long long)i);
                    else
                        rc = pn_caps_grant(caps, kinds[k], lua_tostring(L, -1), &e);
                    lua_pop(L, 1);
                }
            }
            lua_settop(L, base);
        }
    }
    if (rc != 0) {
        pn_caps_free(caps);
        return luaL_error(L, "console grants: %s", e.msg);
    }
    pn_caps_free(c->caps);
    c->caps = caps;
    return 0;
}

static int l_console_close(lua_State *L) {
    console *c = luaL_checkudata(L, 1, CONSOLE_MT);
    if (c->exec) pn_caps_exec_cancel(c->exec);
    c->exec = NULL;
    if (c->later_ref != LUA_NOREF && c->L) luaL_unref(c->L, LUA_REGISTRYINDEX, c->later_ref);
    c->later_ref = LUA_NOREF;
    if (c->S) pn_sandbox_close(c->S);
    c->S = NULL;
    c->co_ref = LUA_NOREF;
    pn_caps_free(c->caps);
    c->caps = NULL;
    return 0;
}

static int l_console_new(lua_State *L) {
    pn_sandbox_limits lim = {0, 0, 0};
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "mem_cap");
        lua_Integer m = luaL_optinteger(L, -1, 0);
        luaL_argcheck(L, m >= 0 && m <= ((lua_Integer)1 << 34), 1, "mem_cap out of range");
        lim.mem_cap = (size_t)m;
        lua_getfield(L, 1, "budget");
        lua_Integer b = luaL_optinteger(L, -1, 0);
        luaL_argcheck(L, b >= 0, 1, "budget must be positive");
        lim.budget = (uint64_t)b;
        lua_getfield(L, 1, "slice_ms");
        lua_Integer ms = luaL_optinteger(L, -1, 0);
        luaL_argcheck(L, ms >= 0 && ms <= PN_SANDBOX_SLICE_MS_MAX, 1, "slice_ms out of range");
        lim.slice_ms = (uint32_t)ms;
        lua_pop(L, 3);
    }
    console *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    c->co_ref = c->later_ref = LUA_NOREF;
    luaL_setmetatable(L, CONSOLE_MT);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    c->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    c->loop = luv_loop(L);
    snprintf(c->who, sizeof c->who, "this console");
    snprintf(c->where, sizeof c->where, "config.lua");
    if (!(c->caps = pn_caps_new())) return luaL_error(L, "out of memory");
    pn_err e;
    c->S = pn_sandbox_new(&lim, &e);
    if (!c->S) return luaL_error(L, "console: %s", e.msg);
    PN_SANDBOX_LIFTED(c->S) {
        lua_pushcfunction(c->S, console_print);
        lua_setglobal(c->S, "print");
        static const lua_CFunction fns[] = {console_exec, console_read, console_write};
        static const char *const names[] = {"exec", "read", "write"};
        lua_createtable(c->S, 0, 3);
        for (int i = 0; i < 3; i++) {
            lua_pushlightuserdata(c->S, c);
            lua_pushcclosure(c->S, fns[i], 1);
            lua_setfield(c->S, -2, names[i]);
        }
        lua_setglobal(c->S, "host");
    }
    return 1;
}

void pn_bind_console_open(lua_State *L) {
    static const luaL_Reg methods[] = {{"eval", l_console_eval},
                                       {"grant", l_console_grant},
                                       {"close", l_console_close},
                                       {NULL, NULL}};
    static const luaL_Reg fns[] = {{"new", l_console_new}, {NULL, NULL}};
    if (luaL_newmetatable(L, CONSOLE_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_console_close);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    pn_glue_submodule(L, "console", fns);
    lua_getfield(L, -1, "console");
    lua_pushinteger(L, PN_CONSOLE_TEXT_MAX);
    lua_setfield(L, -2, "MAX_TEXT");
    lua_pop(L, 1);
}
