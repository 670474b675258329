#include "result.h"

int pn_result_fail(lua_State *L, const char *reason, enum pn_kind kind) {
    lua_pushnil(L);
    lua_pushstring(L, reason);
    lua_pushstring(L, pn_reason_kind_name(kind));
    return 3;
}

int pn_result_local(lua_State *L, const char *msg) {
    return pn_result_fail(L, msg, PN_KIND_LOCAL);
}

int pn_result_local_top(lua_State *L, int code) {
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushstring(L, pn_reason_kind_name(PN_KIND_LOCAL));
    if (code == PN_OK) return 3;
    lua_pushstring(L, pn_err_name(code));
    return 4;
}

static void set_names(lua_State *L, const char *field, const char *(*name)(int), int n) {
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, name(i));
        lua_setfield(L, -2, name(i));
    }
    lua_setfield(L, -2, field);
}

static const char *reason_name(int i) {
    return pn_reason_name((enum pn_reason)i);
}

static const char *kind_name(int i) {
    return pn_reason_kind_name((enum pn_kind)i);
}

void pn_result_open(lua_State *L) {
    set_names(L, "reasons", reason_name, PN_REASON_COUNT);
    set_names(L, "kinds", kind_name, PN_KIND_COUNT);
}

enum pn_kind pn_result_kind(pn_call_status st) {
    return st == PN_CALL_ERROR     ? PN_KIND_REMOTE
           : st == PN_CALL_TIMEOUT ? PN_KIND_TIMEOUT
                                   : PN_KIND_CLOSED;
}

const char *pn_result_reason(pn_call_status st) {
    return pn_reason_name(st == PN_CALL_TIMEOUT ? PN_REASON_TIMEOUT : PN_REASON_CLOSED);
}
