/*
 * peernet.args: the ARGS of `peernet-host call/send` (docs/cli.md), a Lua
 * expression evaluated in a sandboxed state of its own (lua/sandbox.h)
 * whose only names are the value constructors of docs/values.md, so every
 * ETF term can be written: atom"ok", tuple(1, 2), null, map{},
 * bigint"18446744073709551615". Strings have no methods there
 * (("x"):rep(1e9) would allocate in one instruction).
 *
 *   peernet.args.parse(text)  --> true, value | false, "ARGS: message"
 *   peernet.args.encode(text) --> ETF bytes (with the version byte) | nil, "ARGS: message"
 *   peernet.args.MAX_TEXT     -- bytes of text accepted
 *
 * The text comes from a command line: at most PN_ARGS_TEXT_MAX bytes, a
 * text chunk, PN_ARGS_STEPS VM instructions and PN_ARGS_MEM_MAX bytes. The
 * value crosses from the sandbox to the caller as its ETF encoding, so what
 * parse returns is what the peer would decode (atoms stay atoms).
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "bind.h"
#include "lua/result.h"
#include "lua/sandbox.h"
#include "lua/value.h"

#define PN_ARGS_TEXT_MAX (64u << 10)
#define PN_ARGS_STEPS 1000000u
#define PN_ARGS_MEM_MAX (64u << 20)

#define ARGS_EVAL_MT "peernet.args_eval"

/* One evaluation, owned by a userdata of the caller's state so that a
 * memory error there (pushing the result) still closes the sandbox. */
typedef struct args_eval {
    lua_State *S; /* the sandbox, until the result is in the caller's state */
    pn_etf_buf term;
    int has_term;
    const char *text;
    size_t len;
    const char *label; /* "ARGS", or the data file's path (pn_bind_args_eval) */
    int chunk;         /* 1: the text is a chunk (return ...), not an expression */
} args_eval;

static void eval_release(args_eval *a) {
    if (a->S) pn_sandbox_close(a->S);
    a->S = NULL;
    if (a->has_term) pn_etf_buf_free(&a->term);
    a->has_term = 0;
}

static int eval_gc(lua_State *L) {
    eval_release(luaL_checkudata(L, 1, ARGS_EVAL_MT));
    return 0;
}

/* A bare word (`call pi lights.set on`) would read as an undefined
 * global, nil, and send nothing the user meant: it is an error that shows
 * the quoted form. */
static int undefined_name(lua_State *S) {
    const char *name = lua_tostring(S, 2);
    if (!name)
        lua_pushliteral(S, "only the value constructors are names here");
    else
        lua_pushfstring(S, "undefined name '%s' (text is written quoted: '\"%s\"')", name, name);
    return lua_error(S);
}

/* The environment of the chunk: the constructors and nothing else. */
static void push_env(lua_State *S) {
    static const char *const top[] = {"atom", "tuple", "null"};
    static const char *const etf[] = {"map", "bigint"};
    lua_newtable(S);
    lua_newtable(S);
    pn_value_open(S);
    for (size_t i = 0; i < sizeof top / sizeof *top; i++) {
        lua_getfield(S, -1, top[i]);
        lua_setfield(S, -3, top[i]);
    }
    lua_getfield(S, -1, "etf");
    for (size_t i = 0; i < sizeof etf / sizeof *etf; i++) {
        lua_getfield(S, -1, etf[i]);
        lua_setfield(S, -4, etf[i]);
    }
    lua_pop(S, 2);
    lua_createtable(S, 0, 1);
    lua_pushcfunction(S, undefined_name);
    lua_setfield(S, -2, "__index");
    lua_setmetatable(S, -2);
}

/* The sandbox is this evaluation's alone: its strings may lose their
 * methods without touching anyone else's. */
static void strip_string_methods(lua_State *S) {
    lua_pushliteral(S, "");
    if (lua_getmetatable(S, -1)) {
        lua_pushliteral(S, "__index");
        lua_pushnil(S);
        lua_rawset(S, -3);
        lua_pop(S, 1);
    }
    lua_pop(S, 1);
}

/* Nesting deeper than a term may go reads the same whether the encoder
 * met it or, past LUAI_MAXCCALLS levels, the Lua parser did ("C stack
 * overflow", with no hint of what was wrong). */
static int too_deep(const char *msg) {
    return strstr(msg, "nested deeper") || strstr(msg, "C stack overflow") ||
           strstr(msg, "C levels");
}

/* Raises label .. ": " .. msg in S (the message of a chunk already names it). */
static int args_error(lua_State *S, const args_eval *a, const char *msg) {
    if (!msg) msg = "(error object is not a string)";
    if (too_deep(msg))
        return luaL_error(S, "%s: value nested deeper than %d levels", a->label, PN_ETF_MAX_DEPTH);
    if (strncmp(msg, a->label, strlen(a->label)) == 0) return luaL_error(S, "%s", msg);
    return luaL_error(S, "%s: %s", a->label, msg);
}

/* Runs in S, protected: evaluates the text and leaves its encoding in a. */
static int eval_in_sandbox(lua_State *S) {
    args_eval *a = lua_touserdata(S, 1);
    /* Setting up is the host's work, bounded by the text's size (a load
     * error leaves the block by lua_error: S is closed after it). */
    lua_State *co = NULL;
    PN_SANDBOX_LIFTED(S) {
        strip_string_methods(S);
        luaL_Buffer b;
        luaL_buffinit(S, &b);
        if (!a->chunk) luaL_addstring(&b, "return ");
        luaL_addlstring(&b, a->text, a->len);
        luaL_pushresult(&b);
        lua_pushstring(S, a->chunk ? "@" : "=");
        lua_pushstring(S, a->label);
        lua_concat(S, 2);
        size_t n;
        const char *src = lua_tolstring(S, -2, &n);
        if (pn_sandbox_load(S, src, n, lua_tostring(S, -1)) != LUA_OK) {
            const char *msg = lua_tostring(S, -1);
            if (msg && too_deep(msg)) args_error(S, a, msg);
            lua_error(S);
        }
        push_env(S);
        lua_setupvalue(S, -2, 1);
        co = lua_newthread(S);
        lua_insert(S, -2);
        lua_xmove(S, co, 1);
    }

    lua_State *prev = pn_sandbox_begin(co);
    int nres = 0;
    int st = lua_resume(co, S, 0, &nres);
    pn_sandbox_end(co, prev);
    /* Lifted for good, not PN_SANDBOX_LIFTED: every path from here raises
     * its message (room for it even after a memory error), and S is
     * closed after. */
    (void)pn_sandbox_lift(S);
    if (st == LUA_YIELD) return args_error(S, a, "cannot wait");
    if (st != LUA_OK) {
        if (pn_sandbox_over_budget(co)) return args_error(S, a, "too much computation");
        if (st == LUA_ERRMEM) return args_error(S, a, "too much memory");
        return args_error(S, a, lua_tostring(co, -1));
    }
    if (nres > 1) return luaL_error(S, "%s: one value expected, got %d", a->label, nres);
    if (nres == 0) lua_pushnil(co);
    lua_xmove(co, S, 1);
    pn_err e;
    int rc = pn_value_encode_protected(S, -1, 0, &a->term, &e);
    a->has_term = 1;
    if (rc != 0) return args_error(S, a, e.msg);
    return 0;
}

/* Evaluates text in a sandbox of its own: pushes the args_eval holding
 * the term and returns 1, or pushes the message and returns 0. */
static int evaluate_text(lua_State *L, const char *text, size_t len, const char *label, int chunk) {
    if (len > PN_ARGS_TEXT_MAX) {
        lua_pushfstring(L, "%s: %I bytes is more than the limit of %I", label, (lua_Integer)len,
                        (lua_Integer)PN_ARGS_TEXT_MAX);
        return 0;
    }
    if (!chunk && strspn(text, " \t\r\n\v\f") == len) {
        lua_pushliteral(L, "ARGS: empty");
        return 0;
    }
    args_eval *a = lua_newuserdatauv(L, sizeof *a, 0);
    memset(a, 0, sizeof *a);
    luaL_setmetatable(L, ARGS_EVAL_MT);
    a->text = text;
    a->len = len;
    a->label = label;
    a->chunk = chunk;
    pn_sandbox_limits lim = {.mem_cap = PN_ARGS_MEM_MAX, .budget = PN_ARGS_STEPS};
    pn_err e;
    a->S = pn_sandbox_new(&lim, &e);
    if (!a->S) {
        lua_pushfstring(L, "%s: %s", label, e.msg);
        return 0;
    }
    lua_pushcfunction(a->S, eval_in_sandbox);
    lua_pushlightuserdata(a->S, a);
    if (lua_pcall(a->S, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(a->S, -1);
        lua_pushstring(L, msg ? msg : "out of memory");
        eval_release(a);
        return 0;
    }
    pn_sandbox_close(a->S);
    a->S = NULL;
    return 1;
}

static int evaluate(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    return evaluate_text(L, text, len, "ARGS", 0);
}

int pn_bind_args_eval(lua_State *L, const char *text, size_t len, const char *label) {
    int top = lua_gettop(L);
    if (!evaluate_text(L, text, len, label, 1)) {
        lua_replace(L, top + 1); /* the message, over the evaluation if one was made */
        lua_settop(L, top + 1);
        return 0;
    }
    args_eval *a = lua_touserdata(L, -1);
    pn_err e;
    int rc = pn_value_push(L, a->term.data, a->term.len, 1, &e);
    eval_release(a);
    if (rc != 0) lua_pushfstring(L, "%s: %s", label, e.msg);
    lua_remove(L, -2);
    return rc == 0;
}

/* parse's failure: false (nil is a value ARGS may hold), message, "local". */
static int parse_fail(lua_State *L) {
    int n = pn_result_local_top(L, PN_OK);
    lua_pushboolean(L, 0);
    lua_replace(L, -n - 1);
    return n;
}

static int l_args_parse(lua_State *L) {
    if (!evaluate(L)) return parse_fail(L);
    args_eval *a = lua_touserdata(L, -1);
    lua_pushboolean(L, 1);
    pn_err e;
    if (pn_value_push(L, a->term.data, a->term.len, 1, &e) != 0) {
        lua_pushfstring(L, "ARGS: %s", e.msg);
        return parse_fail(L);
    }
    eval_release(a);
    return 2;
}

static int l_args_encode(lua_State *L) {
    if (!evaluate(L)) return pn_result_local_top(L, PN_OK);
    args_eval *a = lua_touserdata(L, -1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, (char)PN_ETF_VERSION);
    luaL_addlstring(&b, (const char *)a->term.data, a->term.len);
    luaL_pushresult(&b);
    eval_release(a);
    return 1;
}

void pn_bind_args_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"parse", l_args_parse}, {"encode", l_args_encode}, {NULL, NULL}};
    if (luaL_newmetatable(L, ARGS_EVAL_MT)) {
        lua_pushcfunction(L, eval_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    pn_glue_submodule(L, "args", fns);
    lua_getfield(L, -1, "args");
    lua_pushinteger(L, PN_ARGS_TEXT_MAX);
    lua_setfield(L, -2, "MAX_TEXT");
    lua_pop(L, 1);
}
