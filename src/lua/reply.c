#include "reply.h"

#include <stdio.h>

#include <lauxlib.h>

#include "lua/sandbox.h"
#include "lua/value.h"

#define REQ_MT "peernet.request"

int pn_reply_value(lua_State *L, pn_request *req, int ok, int idx, int raw, pn_err *e) {
    pn_etf_buf b;
    pn_err re;
    lua_State *prev = pn_sandbox_begin(L);
    int rc = pn_value_encode_protected(L, idx, raw, &b, e);
    pn_sandbox_end(L, prev);
    if (rc != 0)
        pn_reply_reason(req, PN_REASON_HANDLER_CRASH);
    else if (ok)
        pn_request_reply(req, b.data, b.len, &re);
    else
        pn_request_reply_error_term(req, b.data, b.len, &re);
    pn_etf_buf_free(&b);
    return rc != 0 ? -1 : 0;
}

int pn_reply_results(lua_State *L, pn_reply_req *r, int nres, int defer_idx, pn_err *e) {
    int base = lua_gettop(L) - nres;
    if (defer_idx && nres >= 1 && lua_rawequal(L, base + 1, defer_idx)) return PN_REPLY_DEFERRED;
    pn_request *req = r->req;
    r->req = NULL;
    if (!req) return PN_REPLY_SENT; /* answered already, through req:reply() */
    int rc;
    if (nres >= 2 && lua_isnil(L, base + 1) && !lua_isnil(L, base + 2)) {
        rc = pn_reply_value(L, req, 0, base + 2, 0, e);
    } else if (nres == 0) {
        lua_pushnil(L);
        rc = pn_reply_value(L, req, 1, -1, r->raw, e);
        lua_pop(L, 1);
    } else {
        rc = pn_reply_value(L, req, 1, base + 1, r->raw, e);
    }
    return rc != 0 ? PN_REPLY_UNENCODABLE : PN_REPLY_SENT;
}

void pn_reply_reason(pn_request *req, enum pn_reason reason) {
    pn_err e;
    pn_request_reply_error(req, pn_reason_name(reason), &e);
}

pn_reply_req *pn_reply_push_req(lua_State *L, int raw) {
    pn_reply_req *r = lua_newuserdatauv(L, sizeof *r, 0);
    r->req = NULL;
    r->raw = raw;
    luaL_setmetatable(L, REQ_MT);
    return r;
}

static pn_request *take_req(lua_State *L) {
    pn_reply_req *r = luaL_checkudata(L, 1, REQ_MT);
    if (!r->req) luaL_argerror(L, 1, "this call has already been answered");
    pn_request *req = r->req;
    r->req = NULL;
    lua_settop(L, 2);
    return req;
}

/* A deferred answer may come after its host closed: its log is gone, the
 * line goes to stderr. */
static void answer_late(lua_State *L, int ok, int raw) {
    pn_request *req = take_req(L);
    char name[PN_REPLY_LOG_NAME_MAX];
    snprintf(name, sizeof name, "%s", pn_request_name(req));
    pn_err e;
    if (pn_reply_value(L, req, ok, 2, raw, &e) != 0)
        fprintf(stderr, "peernet [error] handler %s: cannot encode its result: %s\n", name, e.msg);
}

static int l_req_reply(lua_State *L) {
    pn_reply_req *r = luaL_checkudata(L, 1, REQ_MT);
    answer_late(L, 1, r->raw);
    return 0;
}

static int l_req_error(lua_State *L) {
    answer_late(L, 0, 0);
    return 0;
}

static int l_req_gc(lua_State *L) {
    pn_reply_req *r = luaL_checkudata(L, 1, REQ_MT);
    if (r->req) pn_reply_reason(r->req, PN_REASON_HANDLER_CRASH);
    r->req = NULL;
    return 0;
}

void pn_reply_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"reply", l_req_reply}, {"error", l_req_error}, {NULL, NULL}};
    if (luaL_newmetatable(L, REQ_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_req_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}
