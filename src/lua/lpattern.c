/*
 * string.find, string.match, string.gmatch and string.gsub on the bounded
 * matcher of core/pattern.h, with the results, argument rules and error
 * messages of Lua 5.4's own (reference manual §6.4.1). Sandboxed states get
 * these in place of Lua's (pn_lpattern_install); every Lua gets them as
 * peernet.pattern.*, which is how the conformance spec compares the two.
 *
 * A call that spends more than PN_PATTERN_STEPS_DEFAULT steps raises
 * "pattern too complex: more than N steps". Many such calls in a row are
 * the sandbox's CPU slice to stop, and the count hook cannot see them when
 * C calls them back to back (gsub(s, p, string.gsub), a gmatch iterator as
 * load's reader): so a call that spent a lot reads the sandbox's clock
 * itself before it returns, and gsub reads it after every function or
 * table replacement.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "glue.h"
#include "core/pattern.h"
#include "lpattern.h"
#include "sandbox.h"

/* A call that spent this many steps (about 25 us, a thousand times what
 * reading the clock costs) reads the clock before it returns. */
#define LPATTERN_CLOCK_AFTER_STEPS 10000u

typedef struct gmatch_state {
    size_t src;       /* where the next search starts */
    size_t lastmatch; /* end of the previous match: an empty match may not end there again */
    pn_pattern m;
} gmatch_state;

#define NO_MATCH SIZE_MAX

static int raise(lua_State *L, const pn_err *e) {
    return luaL_error(L, "%s", e->msg);
}

/* Raises the sandbox's kill if a heavy call ran past the slice. */
static void check_heavy(lua_State *L, const pn_pattern *m) {
    if (m->steps >= LPATTERN_CLOCK_AFTER_STEPS) pn_sandbox_check(L);
}

/* Lua 5.4's reading of a start position: negative counts from the end,
 * 0 and anything before the start mean 1. Returns a 0-based offset, which
 * may lie past the end. */
static size_t start_offset(lua_Integer pos, size_t len) {
    if (pos > 0) return (size_t)pos - 1;
    if (pos == 0 || pos < -(lua_Integer)len) return 0;
    return len - (size_t)(-pos);
}

static void push_capture(lua_State *L, const pn_pattern *m, int i, size_t s, size_t e) {
    pn_pattern_cap c;
    pn_err err;
    if (pn_pattern_capture(m, i, s, e, &c, &err) < 0) raise(L, &err);
    if (c.len == PN_PATTERN_CAP_POSITION)
        lua_pushinteger(L, (lua_Integer)c.init);
    else
        lua_pushlstring(L, (const char *)m->src + c.init, (size_t)c.len);
}

static int push_captures(lua_State *L, const pn_pattern *m, size_t s, size_t e, int whole) {
    int n = pn_pattern_ncaptures(m, whole);
    luaL_checkstack(L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(L, m, i, s, e);
    return n;
}

static int find_aux(lua_State *L, int find) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    size_t start, end;
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || pn_pattern_is_plain(p, lp))) {
        if (!pn_pattern_find_plain(s, ls, init, p, lp, &start, &end)) {
            luaL_pushfail(L);
            return 1;
        }
        lua_pushinteger(L, (lua_Integer)start + 1);
        lua_pushinteger(L, (lua_Integer)end);
        return 2;
    }
    int anchor = lp > 0 && p[0] == '^';
    /* On the C stack: nothing here calls back into Lua while it is in use,
     * and nesting through finalizers is bounded by Lua's C-call limit. */
    pn_pattern m;
    pn_err e;
    pn_pattern_init(&m, s, ls, p + anchor, lp - (size_t)anchor, PN_PATTERN_STEPS_DEFAULT);
    int rc = pn_pattern_find(&m, init, anchor, &start, &end, &e);
    check_heavy(L, &m);
    if (rc < 0) return raise(L, &e);
    if (rc == 0) {
        luaL_pushfail(L);
        return 1;
    }
    if (!find) return push_captures(L, &m, start, end, 1);
    lua_pushinteger(L, (lua_Integer)start + 1);
    lua_pushinteger(L, (lua_Integer)end);
    return 2 + push_captures(L, &m, start, end, 0);
}

static int l_find(lua_State *L) {
    return find_aux(L, 1);
}

static int l_match(lua_State *L) {
    return find_aux(L, 0);
}

static int gmatch_next(lua_State *L) {
    gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    size_t ls = g->m.srclen;
    pn_err e;
    /* Each call of the iterator is one call with its own budget; the sets
     * already made maps stay. */
    g->m.steps = 0;
    for (size_t at = g->src; at <= ls; at++) {
        size_t end;
        int rc = pn_pattern_match(&g->m, at, &end, &e);
        if (rc < 0) {
            check_heavy(L, &g->m);
            return raise(L, &e);
        }
        if (rc == 1 && end != g->lastmatch) {
            g->src = g->lastmatch = end;
            check_heavy(L, &g->m);
            return push_captures(L, &g->m, at, end, 1);
        }
    }
    g->src = ls + 1; /* nothing more: later calls find nothing at once */
    check_heavy(L, &g->m);
    return 0;
}

static int l_gmatch(lua_State *L) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    lua_settop(L, 2); /* the strings stay alive (and in place) as upvalues */
    gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    pn_pattern_init(&g->m, s, ls, p, lp, PN_PATTERN_STEPS_DEFAULT);
    g->src = init > ls ? ls + 1 : init;
    g->lastmatch = NO_MATCH;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* A replacement string: %0-%9 are captures, %% is '%'. */
static void add_string(lua_State *L, const pn_pattern *m, luaL_Buffer *b, size_t s, size_t e) {
    size_t len;
    const char *r = lua_tolstring(L, 3, &len), *end = r + len, *esc;
    while ((esc = memchr(r, '%', (size_t)(end - r))) != NULL) {
        luaL_addlstring(b, r, (size_t)(esc - r));
        char c = esc + 1 < end ? esc[1] : '\0';
        if (c == '%') {
            luaL_addchar(b, '%');
        } else if (c >= '0' && c <= '9') {
            /* %0 is the whole match; %1 too when the pattern has no captures */
            if (c == '0')
                lua_pushlstring(L, (const char *)m->src + s, e - s);
            else
                push_capture(L, m, c - '1', s, e);
            luaL_addvalue(b);
        } else {
            luaL_error(L, "invalid use of '%%' in replacement string");
        }
        r = esc + 2;
    }
    luaL_addlstring(b, r, (size_t)(end - r));
}

/* Appends the replacement of the match [s, e); 0 when the table or function
 * said to keep the original text. */
static int add_value(lua_State *L, const pn_pattern *m, luaL_Buffer *b, size_t s, size_t e,
                     int tr) {
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(L, m, s, e, 1);
        lua_call(L, n, 1);
    } else if (tr == LUA_TTABLE) {
        push_capture(L, m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_string(L, m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, (const char *)m->src + s, e - s);
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int l_gsub(lua_State *L) {
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(
        L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
        "string/function/table");
    lua_settop(L, 4);
    int anchor = lp > 0 && p[0] == '^';
    /* A function or table replacement runs Lua code, which may call gsub
     * again, as deep as it likes: then the state is a userdata. A string
     * replacement runs none, and nests only as find does. */
    pn_pattern on_stack, *m = &on_stack;
    if (tr == LUA_TFUNCTION || tr == LUA_TTABLE) m = lua_newuserdatauv(L, sizeof *m, 0);
    pn_pattern_init(m, src, ls, p + anchor, lp - (size_t)anchor, PN_PATTERN_STEPS_DEFAULT);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t s = 0, last = NO_MATCH;
    lua_Integer n = 0;
    int changed = 0;
    pn_err e;
    while (n < max) {
        size_t end;
        int rc = pn_pattern_match(m, s, &end, &e);
        if (rc < 0) {
            check_heavy(L, m);
            return raise(L, &e);
        }
        if (rc == 1 && end != last) {
            n++;
            changed |= add_value(L, m, &b, s, end, tr);
            /* A C function (string.gsub itself) or a C __index runs no
             * instruction between the matches. */
            if (tr == LUA_TFUNCTION || tr == LUA_TTABLE) pn_sandbox_check(L);
            s = last = end;
        } else if (s < ls) {
            luaL_addchar(&b, src[s++]);
        } else {
            break;
        }
        if (anchor) break;
    }
    check_heavy(L, m);
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, src + s, ls - s);
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

static const luaL_Reg fns[] = {
    {"find", l_find}, {"match", l_match}, {"gmatch", l_gmatch}, {"gsub", l_gsub}, {NULL, NULL}};

const luaL_Reg *pn_lpattern_functions(void) {
    return fns;
}

void pn_lpattern_install(lua_State *L) {
    /* Both the global table and the strings' __index (one table today), so
     * s:find() is bounded as string.find() is. */
    lua_getglobal(L, "string");
    if (lua_istable(L, -1)) luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        if (lua_getfield(L, -1, "__index") == LUA_TTABLE) luaL_setfuncs(L, fns, 0);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}
