#include "result.h"

int pn_result_fail(lua_State *L, const char *reason, enum pn_kind kind) {
    lua_pushnil(L);
    lua_pushstring(L, reason);
    lua_pushstring(L, pn_reason_kind_name(kind));
    return 3;
}

enum pn_kind pn_result_kind(pn_call_status st) {
    return st == PN_CALL_ERROR     ? PN_KIND_REMOTE
           : st == PN_CALL_TIMEOUT ? PN_KIND_TIMEOUT
                                   : PN_KIND_CLOSED;
}

const char *pn_result_reason(pn_call_status st) {
    return pn_reason_name(st == PN_CALL_TIMEOUT ? PN_REASON_TIMEOUT : PN_REASON_CLOSED);
}
