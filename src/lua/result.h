/*
 * The one shape of a failure a Lua caller sees from a call, a send or a
 * wait: `nil, reason, kind` (core/reason.h). kind is "remote" when the
 * peer answered {error, Reason} (reason is Reason's value), "timeout" or
 * "closed" when no reply came, "local" when this host refused at once.
 * A reply that came holding a term outside the ETF subset (a pid) reads
 * kind "undecodable" (PN_KIND_UNDECODABLE), in h:call's callback as in
 * scripts: the peer did answer, so it is neither a local refusal nor the
 * peer's {error, R}. Every other failure a Lua caller sees (a bad
 * argument, a file that cannot be read) is kind "local"; one that comes
 * from a pn_err carries its code's name (pn_err_name) as a 4th value
 * (pn_glue_fail).
 */
#ifndef PN_RESULT_H
#define PN_RESULT_H

#include <lua.h>

#include "core/reason.h"
#include "peernet/peernet.h"

/* Pushes nil, reason, kind; returns 3 so a C function can `return` it. */
int pn_result_fail(lua_State *L, const char *reason, enum pn_kind kind);

/* nil, msg, "local": a failure on this host with no pn_err behind it. */
int pn_result_local(lua_State *L, const char *msg);

/* The same with the message already on top of the stack (lua_pushfstring):
 * it becomes nil, msg, "local" and, unless code is PN_OK, code's name
 * (pn_err_name) as a 4th value; returns the count. */
int pn_result_local_top(lua_State *L, int code);

/* Sets t.reasons and t.kinds on the table on top: PN_REASONS and PN_KINDS
 * as name -> name tables, so Lua code writes peernet.kinds.remote (a typo
 * reads nil) instead of a string of its own. */
void pn_result_open(lua_State *L);

/* Where a call that did not answer {ok, V} ended: PN_KIND_REMOTE for
 * {error, R}, else PN_KIND_TIMEOUT or PN_KIND_CLOSED. */
enum pn_kind pn_result_kind(pn_call_status st);

/* The reason of a call that got no reply: "timeout" or "closed". */
const char *pn_result_reason(pn_call_status st);

#endif
