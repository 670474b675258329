/*
 * Admin modules (dir/admin/NAME.lua, peernet.admin.register) and the
 * built-in beam_admin handle that calls them: {rpc|cast, Module, Function,
 * Args} from a peer runs Module.Function(Args...) in the script that
 * registered Module.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "lua/reply.h"
#include "lua/value.h"

/* Admin modules live in each script's registry under this key: name -> table. */
static const char admin_key = 0;

/* Erlang's own answer for a function that does not exist. */
#define PN_ADMIN_UNDEF "undef"

static const char *strip_elixir(const char *module) {
    return strncmp(module, "Elixir.", 7) == 0 ? module + 7 : module;
}

int pn_admin_register(pn_script *s, const char *name, int idx, pn_err *e) {
    lua_State *L = s->L;
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) return pn_err_set(e, PN_EINVAL, "an admin module is a table");
    name = strip_elixir(name);
    if (!*name || strlen(name) > PN_ETF_ATOM_MAX_CHARS)
        return pn_err_set(e, PN_EINVAL, "bad admin module name");
    pn_rt *rt = s->rt;
    for (pn_link *l = rt->scripts.head; l; l = l->next) {
        pn_script *o = PN_SCRIPT_OF(l);
        if (o == s || o->retired || o->closed) continue;
        lua_rawgetp(o->L, LUA_REGISTRYINDEX, &admin_key);
        int taken = lua_istable(o->L, -1) && lua_getfield(o->L, -1, name) == LUA_TTABLE;
        lua_settop(o->L, lua_gettop(o->L) - (lua_istable(o->L, -1) ? 2 : 1));
        if (taken)
            return pn_err_set(e, PN_EEXIST, "admin module %s is already registered by %s", name,
                              o->path);
    }
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &admin_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &admin_key);
    }
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    return 0;
}

/* Pushes module.fn on o's main thread if o has it. */
static int admin_lookup(pn_script *o, const char *module, const char *fn) {
    if (o->retired || o->closed) return 0;
    lua_State *L = o->L;
    int top = lua_gettop(L);
    int found = 0;
    PN_SANDBOX_LIFTED(L) {
        found = lua_rawgetp(L, LUA_REGISTRYINDEX, &admin_key) == LUA_TTABLE &&
                lua_getfield(L, -1, module) == LUA_TTABLE &&
                (lua_pushstring(L, fn), lua_rawget(L, -2)) == LUA_TFUNCTION;
        if (found) lua_replace(L, top + 1);
        lua_settop(L, top + found);
    }
    return found;
}

/* Finds module.fn among live scripts: pushes the function on the owner's
 * main thread and returns the owner, or NULL. */
static pn_script *admin_find(pn_rt *rt, const char *module, const char *fn) {
    for (pn_link *l = rt->scripts.head; l; l = l->next)
        if (admin_lookup(PN_SCRIPT_OF(l), module, fn)) return PN_SCRIPT_OF(l);
    if (rt->trusted && admin_lookup(rt->trusted, module, fn)) return rt->trusted;
    return NULL;
}

typedef struct {
    const uint8_t *args;
    size_t len;
} admin_args;

static int push_admin_args(lua_State *co, void *ud) {
    admin_args *a = ud;
    pn_err e;
    if (pn_value_push(co, a->args, a->len, 0, &e) != 0) return luaL_error(co, "%s", e.msg);
    int n = (int)luaL_len(co, -1);
    luaL_checkstack(co, n, "too many admin arguments");
    int t = lua_gettop(co);
    for (int i = 1; i <= n; i++)
        lua_rawgeti(co, t, i);
    lua_remove(co, t);
    return n;
}

/* {rpc|cast, Module, Function, Args}: Module and Function atoms (a binary
 * is refused, as PROTOCOL.md and the Elixir side do), Args a proper list. */
static int admin_parse(const pn_request *req, int *cast, char *module, char *fn, admin_args *a) {
    size_t len;
    const uint8_t *p = pn_request_args(req, &len);
    pn_etf_reader r;
    pn_etf_item it;
    pn_err e;
    pn_etf_reader_init(&r, p, len);
    if (pn_etf_next(&r, &it, &e) != 1 || it.type != PN_ETF_TUPLE || it.arity != 4) return -1;
    if (pn_etf_next(&r, &it, &e) != 1 || it.type != PN_ETF_ATOM) return -1;
    if (pn_etf_atom_is(&it, "rpc"))
        *cast = 0;
    else if (pn_etf_atom_is(&it, "cast"))
        *cast = 1;
    else
        return -1;
    char *names[2] = {module, fn};
    for (int i = 0; i < 2; i++) {
        if (pn_etf_next(&r, &it, &e) != 1) return -1;
        if (it.type != PN_ETF_ATOM) return -1;
        size_t n = pn_etf_atom_utf8(&it, names[i]);
        names[i][n] = '\0';
        if (strlen(names[i]) != n) return -1;
    }
    pn_etf_reader sub = r;
    if (pn_etf_next(&sub, &it, &e) != 1 ||
        (it.type != PN_ETF_LIST && it.type != PN_ETF_NIL && it.type != PN_ETF_STRING))
        return -1;
    if (pn_etf_skip(&r, &a->args, &a->len, &e) != 0 || pn_etf_finish(&r, &e) != 0) return -1;
    return 0;
}

/* A call or send of a name no admin function has: a call is told undef. */
static void refuse_undef(pn_request *req) {
    pn_err e;
    if (pn_request_is_call(req))
        pn_request_reply_error(req, PN_ADMIN_UNDEF, &e);
    else
        pn_request_done(req);
}

void pn_admin_dispatch(pn_rt *rt, pn_request *req) {
    char module[PN_ETF_ATOM_MAX_UTF8 + 1], fn[PN_ETF_ATOM_MAX_UTF8 + 1];
    int cast = 0;
    admin_args a;
    if (!rt || admin_parse(req, &cast, module, fn, &a) != 0) {
        pn_handler_refuse(req, PN_REASON_UNKNOWN_BEAM_DIST_OP);
        return;
    }
    const char *m = strip_elixir(module);
    pn_script *o = admin_find(rt, m, fn);
    if (!o) {
        pn_rt_log(rt, PN_LOG_WARN, "beam_admin: no admin function %s.%s", m, fn);
        refuse_undef(req);
        return;
    }
    if (pn_script_full(o, a.len)) {
        lua_pop(o->L, 1);
        pn_handler_refuse(req, PN_REASON_OVERLOADED);
        return;
    }
    /* The function is on o's main thread: anchor it for the task. */
    int ref = LUA_NOREF;
    PN_SANDBOX_LIFTED(o->L) ref = luaL_ref(o->L, LUA_REGISTRYINDEX);
    char what[PN_RT_WHAT_MAX];
    snprintf(what, sizeof what, "admin %.40s.%.40s", m, fn);
    pn_task *t = pn_task_start(o, PN_TASK_ADMIN, ref, what, push_admin_args, &a);
    luaL_unref(o->L, LUA_REGISTRYINDEX, ref);
    if (!t) {
        pn_handler_refuse(req, PN_REASON_HANDLER_CRASH);
        return;
    }
    if (!cast) {
        pn_handler_serve(t, req);
        return;
    }
    if (pn_request_is_call(req)) {
        static const uint8_t ok_atom[] = {PN_ETF_TAG_SMALL_ATOM_UTF8, 2, 'o', 'k'};
        pn_err e;
        pn_request_reply(req, ok_atom, sizeof ok_atom, &e);
    } else {
        pn_handler_hold(t, req);
    }
    pn_task_resume(t, lua_gettop(t->co) - 1);
}
