/*
 * Answering a call from the Lua stack: the one adapter between what a Lua
 * handler gave and pn_request_reply*, for both Lua fronts (peernet.host's
 * h:expose handlers and the runtime's script handlers).
 *
 * A handler's results read:
 *   value            -> {ok, Value}          (no result at all: {ok, nil})
 *   nil, reason      -> {error, Reason}
 *   req              -> deferred: answered later by req:reply(v) / req:error(reason)
 *   error(...)       -> {error, handler_crash} (pn_reply_reason; the caller logs why)
 * A result that cannot be encoded fails the call with handler_crash.
 */
#ifndef PN_REPLY_H
#define PN_REPLY_H

#include <lua.h>

#include "core/reason.h"
#include "peernet/peernet.h"

/* A call waiting for its answer, as a handler holds it. As a Lua object
 * (pn_reply_push_req) it is the `req` a handler gets; req is NULL once
 * answered. raw: values are ETF bytes (reasons never are). */
typedef struct pn_reply_req {
    pn_request *req;
    int raw;
} pn_reply_req;

enum { PN_REPLY_SENT, PN_REPLY_DEFERRED, PN_REPLY_UNENCODABLE };

/* Bytes of a handle name kept to log a handler's failure after its
 * request is gone (a name may be 255 bytes; a log line needs less). */
#define PN_REPLY_LOG_NAME_MAX 80

/* Answers r's call with the nres values on top of L (as above). defer_idx
 * is the index of r's Lua object (0: none): a first result that is that
 * object defers the answer. The encoding runs under a fresh slice when L
 * is sandboxed: its work is the size of what the script built. Returns
 * PN_REPLY_UNENCODABLE with e filled (for the caller's log) when the
 * result could not be encoded: handler_crash was answered. r->req is NULL
 * afterwards unless deferred (already NULL: nothing to answer). */
int pn_reply_results(lua_State *L, pn_reply_req *r, int nres, int defer_idx, pn_err *e);

/* Answers req with the value at idx: {ok, V}, or {error, V} when !ok. req
 * is answered either way (handler_crash when V cannot be encoded: then -1
 * and e filled). */
int pn_reply_value(lua_State *L, pn_request *req, int ok, int idx, int raw, pn_err *e);

/* Answers {error, Reason} to a call. */
void pn_reply_reason(pn_request *req, enum pn_reason reason);

/* Pushes a new request object holding nothing yet (set ->req once the
 * object owns the call). Collected unanswered, it answers handler_crash:
 * the caller must not wait for its timeout. */
pn_reply_req *pn_reply_push_req(lua_State *L, int raw);

/* Registers the request object's metatable (req:reply, req:error). */
void pn_reply_open(lua_State *L);

#endif
