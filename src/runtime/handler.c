/*
 * Handles scripts expose, and calls into them: a call or send for a
 * script's handle becomes a task (its authorize predicate first, as the
 * task's first resume), answered from the task's results (task.c).
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lua/glue.h"
#include "lua/reply.h"
#include "lua/value.h"

static void start_deferred(pn_script *s, const pn_binding *b);

static void binding_unref(pn_script *s, pn_binding *b) {
    start_deferred(s, b);
    luaL_unref(s->L, LUA_REGISTRYINDEX, b->fn_ref);
    luaL_unref(s->L, LUA_REGISTRYINDEX, b->auth_ref);
}

static void on_release(void *ud) {
    pn_binding *b = ud;
    if (b->s) {
        /* Revoked from outside the script (the host is closing). */
        pn_script *s = b->s;
        pn_list_remove(&s->bindings, &b->link);
        binding_unref(s, b);
        if (s == s->rt->trusted) pn_rt_update_keepalive(s->rt);
    }
    free(b);
}

/* Unhooks b from its script (already unlinked by the caller) and from the host. */
static void release_binding(pn_binding *b) {
    pn_script *s = b->s;
    if (s) binding_unref(s, b);
    b->s = NULL;
    if (b->exposed && s && !s->rt->host_gone)
        pn_host_revoke(s->rt->h, b->name); /* the host calls on_release: it frees b */
    else if (!b->exposed || (s && s->rt->host_gone))
        free(b);
}

/* Revokes the handles in the host (they stay listed for the error text). */
void pn_handler_unexpose_all(pn_script *s) {
    pn_link *l;
    while ((l = pn_list_shift(&s->bindings)))
        release_binding(PN_BINDING_OF(l));
}

void pn_handler_refuse(pn_request *req, enum pn_reason reason) {
    if (pn_request_is_call(req))
        pn_reply_reason(req, reason);
    else
        pn_request_done(req);
}

typedef struct {
    pn_request *req;
    int badarg; /* the args have no Lua value (map keys that collide in Lua) */
} request_args;

static int push_request(lua_State *co, void *ud) {
    request_args *ra = ud;
    pn_glue_push_key(co, pn_request_from(ra->req));
    size_t alen;
    const uint8_t *args = pn_request_args(ra->req, &alen);
    pn_err e;
    if (pn_value_push(co, args, alen, 0, &e) != 0) {
        ra->badarg = 1;
        return luaL_error(co, "%s", e.msg);
    }
    return 2;
}

/* Cancels s's tasks serving calls whose connection closed; returns how
 * many. s may be closed (and freed) by its last one. */
static int reap_script(pn_script *s) {
    int n = 0;
    for (pn_link *l = s->tasks.head, *next; l; l = next) {
        next = l->next;
        pn_task *t = PN_TASK_OF(l);
        if (!t->req_gone) continue;
        int last = s->tasks.len == 1; /* a retired script closes with it */
        pn_task_cancel(t);
        n++;
        if (last) break;
    }
    return n;
}

/* Cancels the tasks serving calls whose connection closed: they may wait
 * forever (a handler that never answers), and their answers go nowhere.
 * From the loop, never inside a connection's close or a script's resume. */
static void on_reap(uv_timer_t *tm) {
    pn_rt *rt = tm->data;
    rt->reap_pending = 0;
    int n = 0;
    for (pn_link *l = rt->scripts.head, *next; l; l = next) {
        next = l->next;
        n += reap_script(PN_SCRIPT_OF(l));
    }
    if (rt->trusted) n += reap_script(rt->trusted);
    /* A peer can call and hang up again and again. */
    if (n)
        pn_rt_log_limited(rt, PN_LOG_INFO, "cancelled",
                          "%d call(s) cancelled: their connection closed", n);
}

static void on_req_gone(void *ud) {
    pn_task *t = ud;
    pn_rt *rt = t->s->rt;
    t->req_gone = 1;
    if (!rt->reap_pending && !rt->closed && !rt->close_pending) {
        rt->reap_pending = 1;
        uv_timer_start(&rt->reap_timer, on_reap, 0, 0);
    }
}

void pn_handler_hold(pn_task *t, pn_request *req) {
    if (pn_request_is_call(req)) {
        t->req = req;
        t->s->rt->serving++;
        pn_request_on_gone(req, on_req_gone, t);
    } else if (pn_request_keep(req) == 0) {
        /* a peer's sends being served are bounded like its calls */
        t->send = req;
    }
}

void pn_handler_serve(pn_task *t, pn_request *req) {
    pn_handler_hold(t, req);
    pn_task_resume(t, !t->co ? 0 : t->authorizing ? 2 : lua_gettop(t->co) - 1);
}

/* Puts the binding's authorize predicate and its arguments (from, name)
 * on top of the task's coroutine, above the handler and its arguments:
 * the task's first resume asks it, from the run queue like any resume,
 * so a slow predicate costs one slice of its script's turn (never the
 * connection's read path) and a burst of calls waits its turn there. */
static void gate_push(pn_task *t, int auth_ref, pn_request *req) {
    /* Host bookkeeping, a few bytes: the cap was checked with headroom. */
    PN_SANDBOX_LIFTED(t->s->L) {
        lua_checkstack(t->co, 3);
        t->gate_base = lua_gettop(t->co);
        lua_rawgeti(t->co, LUA_REGISTRYINDEX, auth_ref);
        pn_glue_push_key(t->co, pn_request_from(req));
        lua_pushstring(t->co, pn_request_name(req));
    }
    t->authorizing = 1;
}

/* A yes sends the handler to the back of the run queue (or beam_admin's
 * call to its admin function); anything else refuses: forbidden for a
 * call, a send dropped. */
void pn_handler_gate_done(pn_task *t, int rc) {
    pn_script *s = t->s;
    pn_rt *rt = s->rt;
    lua_State *co = t->co;
    pn_request *req = t->req ? t->req : t->send;
    const char *name = req ? pn_request_name(req) : t->what;
    int ok = 0;
    if (rc == LUA_OK) {
        ok = lua_gettop(co) > t->gate_base && lua_toboolean(co, t->gate_base + 1);
        lua_settop(co, t->gate_base);
    } else {
        const char *tb = pn_task_error_text(t);
        /* A peer can make a predicate fail on every call it sends. */
        char key[PN_LOGLINE_KEY_MAX];
        snprintf(key, sizeof key, "authorize %.50s", name);
        pn_rt_log_limited(rt, PN_LOG_ERROR, key,
                          "%s: authorize predicate of %s failed (forbidden): %s", s->path, name,
                          tb);
        lua_pop(s->L, 1);
    }
    t->authorizing = 0;
    if (t->req_gone) {
        pn_task_free(t); /* the caller has gone: its answer would go nowhere */
        return;
    }
    /* Revoked by its own script meanwhile (the host would not dispatch to
     * it now); a replaced script's calls already accepted are served. */
    int revoked = ok && !s->retired && !pn_handler_find(s, name);
    if (!ok || revoked) {
        if (t->req) {
            pn_request *r = t->req;
            t->req = NULL;
            rt->serving--;
            pn_reply_reason(r, revoked ? PN_REASON_NO_SUCH_HANDLE : PN_REASON_FORBIDDEN);
        }
        pn_task_free(t);
        return;
    }
    if (t->admin_gate) {
        /* The call is handed over whole: it goes on counting as served
         * (a drain waits for it) until the admin task has it. */
        int call = t->req != NULL;
        if (call) pn_request_on_gone(req, NULL, NULL);
        t->req = t->send = NULL;
        pn_task_free(t); /* t->req is NULL: the call still counts in rt->serving */
        pn_admin_dispatch(rt, req);
        rt->serving -= call;
        pn_rt_drain_check(rt);
        return;
    }
    pn_task_resume(t, lua_gettop(co) - 1);
}

/* what = prefix + name, cut to fit: once per call, so no snprintf (it
 * showed in the profile of a pipelined script). */
static void describe(char what[PN_RT_WHAT_MAX], const char *prefix, const char *name) {
    size_t p = strlen(prefix), n = strnlen(name, PN_RT_WHAT_MAX - 1 - p);
    memcpy(what, prefix, p);
    memcpy(what + p, name, n);
    what[p + n] = '\0';
}

/* Ends a task that has not run: its call is answered with reason, a send dropped. */
static void task_refuse(pn_task *t, int reason) {
    if (t->req) {
        pn_request *r = t->req;
        t->req = NULL;
        t->s->rt->serving--;
        pn_reply_reason(r, (enum pn_reason)reason);
    }
    pn_task_free(t);
}

/* Pushes the handler, (from, args) and the predicate on a deferred task:
 * the values to resume with, or -1 with t->fail set. */
static int handler_push(pn_task *t) {
    pn_request *req = t->req ? t->req : t->send;
    request_args ra = {req, 0};
    t->start = NULL;
    if (pn_task_begin(t, t->fn_ref, push_request, &ra) != 0) {
        /* Args without a Lua value are the caller's fault: badarg. */
        t->fail = ra.badarg ? PN_REASON_BADARG : PN_REASON_HANDLER_CRASH;
        return -1;
    }
    if (t->auth_ref != LUA_NOREF) gate_push(t, t->auth_ref, req);
    return t->authorizing ? 2 : lua_gettop(t->co) - 1;
}

/* No room for the call's arguments: refused (overloaded), as when it came. */
static int start_full(pn_task *t) {
    pn_request *req = t->req ? t->req : t->send;
    size_t alen;
    pn_request_args(req, &alen);
    return pn_script_full(t->s, alen);
}

/* Readies a deferred task (its arguments out of s->waiting, the room for
 * them checked, then pushed): the values to resume with, or -1 with
 * t->fail set. */
static int handler_prepare(pn_task *t) {
    pn_task_unhold(t);
    if (!t->fail && start_full(t)) t->fail = PN_REASON_OVERLOADED;
    return t->fail ? -1 : handler_push(t);
}

/* A call's first turn in the run queue: the coroutine and the Lua values
 * are made now, one call at a time, not for a whole read's worth of calls
 * when they came in (each a coroutine and its arguments kept until its
 * turn: most of serve's mallocs under a burst of sends). */
static int handler_start(pn_task *t) {
    int n = handler_prepare(t);
    if (n < 0) task_refuse(t, t->fail);
    return n;
}

/* The handle's function and predicate go (revoked, replaced): its calls
 * already accepted still run what they came for, so they get it now. A
 * failure waits for their turn (handler_start): nothing ends here. */
static void start_deferred(pn_script *s, const pn_binding *b) {
    if (s->closed) return;
    for (pn_link *l = s->tasks.head; l; l = l->next) {
        pn_task *t = PN_TASK_OF(l);
        if (t->start != handler_start || t->fail || t->fn_ref != b->fn_ref) continue;
        int n = handler_prepare(t);
        if (n < 0)
            t->start = handler_start;
        else
            t->nargs = n; /* what the run queue resumes it with */
    }
}

static void on_request(pn_host *h, pn_request *req, void *ud) {
    pn_binding *b = ud;
    int gated = b->s && b->auth_ref != LUA_NOREF;
    if (b->builtin_admin && !gated) {
        pn_admin_dispatch(b->s ? b->s->rt : NULL, req);
        return;
    }
    if (!b->s) {
        if (pn_request_is_call(req)) pn_reply_reason(req, PN_REASON_NO_SUCH_HANDLE);
        return;
    }
    size_t alen;
    pn_request_args(req, &alen);
    /* The calls waiting their turn count as if their arguments were in
     * the state (s->waiting); on its turn a call needs room for its own. */
    if (pn_script_full(b->s, alen + b->s->waiting)) {
        if (pn_request_is_call(req)) pn_reply_reason(req, PN_REASON_OVERLOADED);
        return;
    }
    char what[PN_RT_WHAT_MAX];
    describe(what, b->builtin_admin ? "authorize " : "handler ", b->name);
    pn_task *t;
    if (b->builtin_admin) {
        /* beam_admin's task only asks the predicate: its admin function
         * may live in another script, found when the answer is yes. */
        t = pn_task_start(b->s, PN_TASK_HANDLER, b->auth_ref, what, NULL, NULL);
        if (t) {
            lua_pop(t->co, 1); /* gate_push pushes the predicate again */
            t->admin_gate = 1;
            gate_push(t, b->auth_ref, req);
        }
    } else {
        t = pn_task_defer(b->s, PN_TASK_HANDLER, what, handler_start);
        if (t) {
            t->fn_ref = b->fn_ref;
            t->auth_ref = gated ? b->auth_ref : LUA_NOREF;
            t->held = alen;
            b->s->waiting += alen;
        }
    }
    if (!t) {
        if (pn_request_is_call(req)) pn_reply_reason(req, PN_REASON_HANDLER_CRASH);
        return;
    }
    pn_handler_serve(t, req);
}

pn_binding *pn_handler_find(pn_script *s, const char *name) {
    for (pn_link *l = s->bindings.head; l; l = l->next) {
        pn_binding *b = PN_BINDING_OF(l);
        if (strcmp(b->name, name) == 0) return b;
    }
    return NULL;
}

pn_script *pn_handler_owner(pn_rt *rt, const char *name, const pn_script *except) {
    /* The version being replaced (same path) is not a rival. */
    for (pn_link *l = rt->scripts.head; l; l = l->next) {
        pn_script *o = PN_SCRIPT_OF(l);
        if (o != except && !o->retired && !o->loading && strcmp(o->path, except->path) != 0 &&
            pn_handler_find(o, name))
            return o;
    }
    if (rt->trusted && rt->trusted != except && pn_handler_find(rt->trusted, name))
        return rt->trusted;
    return NULL;
}

int pn_handler_host_expose(pn_script *s, pn_binding *b, pn_err *e) {
    /* No authorize callback: the host would run it on the read path, one
     * slice per frame back to back. on_request asks the predicate as the
     * first resume of the call's own task (gate_push). */
    pn_handler_def def = {on_request, NULL, on_release, b};
    if (pn_host_expose(s->rt->h, b->name, &def, e) != 0) return -1;
    b->exposed = 1;
    return 0;
}

int pn_handler_expose(pn_script *s, const char *name, int fn_ref, int auth_ref, int admin,
                      pn_err *e) {
    pn_rt *rt = s->rt;
    size_t n = strlen(name);
    if (!pn_etf_atom_name_ok(name, n) || n == 0)
        return pn_err_set(e, PN_EINVAL, "'%s' is not a valid handle name (1 to 255 characters)",
                          name);
    if (strncmp(name, PN_RT_RESERVED_PREFIX, sizeof PN_RT_RESERVED_PREFIX - 1) == 0)
        return pn_err_set(e, PN_EINVAL,
                          "handle '%s': names starting with " PN_RT_RESERVED_PREFIX
                          " are the host's own (push, logs)",
                          name);
    if (strcmp(name, PN_RT_ADMIN) == 0 && auth_ref == LUA_NOREF)
        return pn_err_set(e, PN_EINVAL,
                          "beam_admin runs any admin function: expose it with an authorize "
                          "predicate (peernet.admin.expose{authorize = function(from) ... end})");
    if (pn_handler_find(s, name))
        return pn_err_set(e, PN_EEXIST, "handle '%s' is already exposed by this script", name);
    pn_script *o = pn_handler_owner(rt, name, s);
    if (o) return pn_err_set(e, PN_EEXIST, "handle '%s' is already exposed by %s", name, o->path);
    pn_binding *b = calloc(1, sizeof *b);
    if (!b) return pn_err_set(e, PN_ENOMEM, "out of memory");
    b->s = s;
    b->fn_ref = fn_ref;
    b->auth_ref = auth_ref;
    b->builtin_admin = admin;
    memcpy(b->name, name, n + 1);
    if (!s->loading && pn_handler_host_expose(s, b, e) != 0) {
        free(b);
        return -1;
    }
    pn_list_push_front(&s->bindings, &b->link);
    if (s == rt->trusted) pn_rt_update_keepalive(rt);
    return 0;
}

int pn_handler_revoke(pn_script *s, const char *name) {
    pn_binding *b = pn_handler_find(s, name);
    if (!b) return PN_ENOTFOUND;
    pn_list_remove(&s->bindings, &b->link);
    release_binding(b);
    if (s == s->rt->trusted) pn_rt_update_keepalive(s->rt);
    return 0;
}
