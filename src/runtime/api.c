/*
 * The `peernet` table a script sees (DESIGN.md "Lua API"):
 *
 *   peernet.expose(name, fn [, {authorize = fn}])   peernet.revoke(name)
 *   peernet.call(peer, name, args [, {timeout = ms}])  --> value | nil, reason, kind  (waits)
 *   peernet.send(peer, name, args)                     --> true | nil, "not_connected", "local"
 *   peernet.connect(peer, "host:port")                 --> true | nil, err, "local"   (waits)
 *   peernet.peers()  peernet.self()  peernet.on(event, fn)
 *   peernet.resolve(key_or_label)  --> hex key | nil, err  (peers may be named by label anywhere)
 *   peernet.sleep(ms) (waits)   peernet.after(ms, fn) / peernet.every(ms, fn) --> timer
 * (timer:cancel()) peernet.log.debug/info/warn/error(fmt, ...) peernet.atom(s) peernet.tuple(...)
 * peernet.null peernet.admin.register(name, table)  peernet.admin.expose{authorize = fn}
 *   peernet.admin.call(peer, module, fn, args [, opts]) / .cast(...)   (wait)
 *
 * A failure reads nil, reason, kind (core/reason.h PN_KINDS): kind "remote"
 * when the peer answered {error, Reason} (reason is Reason's value),
 * "timeout" and "closed" when no reply came, "local" when this host refused
 * at once (not_connected, overloaded), "undecodable" when the reply came
 * holding a term outside the ETF subset (as h:call's callback says).
 *
 * Functions that wait yield the task's coroutine; they must be called from
 * a handler, a timer, an event handler or a script's main chunk, not from a
 * coroutine the script made itself (that one would be suspended instead).
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "lua/glue.h"
#include "core/key.h"
#include "core/keypair.h"
#include "core/trust.h"
#include "internal.h"
#include "lua/glue.h"
#include "lua/result.h"
#include "lua/value.h"

/* Every API function has the script's handle as its first upvalue: one
 * trusted state may serve several runtimes (a spec runs two hosts). */
pn_script *pn_api_script(lua_State *L) {
    pn_script **h = lua_touserdata(L, lua_upvalueindex(1));
    pn_script *s = h ? *h : NULL;
    if (!s || s->closed) luaL_error(L, "peernet: this script has been unloaded");
    if (s->rt->host_gone) luaL_error(L, "peernet: the host is closed");
    return s;
}

static pn_task *need_task(lua_State *L, const char *fn) {
    pn_task *t = pn_task_of(L);
    if (!t)
        luaL_error(
            L,
            "peernet.%s waits, so it must run in a handler, a timer, an event handler or the "
            "main chunk (not in an authorize predicate or a coroutine of your own)",
            fn);
    return t;
}

/* A label of the trust list (text that is not a key). */
static int resolve_label(void *ud, const char *text, size_t len, uint8_t out[PN_KEY_LEN],
                         pn_err *e) {
    pn_script *s = ud;
    pn_rt *rt = s->rt;
    const char *path = rt->trust_path;
    if (!path || strlen(text) != len) return -1;
    /* A script naming peers by label does so on every call: the parsed
     * list is kept and re-read only when the file changed. */
    if (!rt->labels || pn_trust_changed_on_disk(rt->labels)) {
        pn_trust *t;
        if (pn_trust_load(&t, path, e) != 0) return -1;
        pn_trust_free(rt->labels);
        rt->labels = t;
    }
    const pn_trust_entry *en = pn_trust_find_label(rt->labels, text);
    if (!en)
        return pn_err_set(e, PN_ENOTFOUND, "'%s' is neither a key nor a label in %s", text, path);
    memcpy(out, en->key, PN_KEY_LEN);
    return 0;
}

static void check_key(lua_State *L, int idx, uint8_t out[PN_KEY_LEN]) {
    pn_glue_check_key(L, idx, out, resolve_label, pn_api_script(L));
}

static uint32_t opt_uint(lua_State *L, int idx, const char *field, uint32_t dflt) {
    if (lua_isnoneornil(L, idx)) return dflt;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, field);
    lua_Integer v = luaL_optinteger(L, -1, dflt);
    lua_pop(L, 1);
    luaL_argcheck(L, v >= 0 && v <= PN_MS_MAX, idx,
                  lua_pushfstring(L, "must be between 0 and %I ms", (lua_Integer)PN_MS_MAX));
    return (uint32_t)v;
}

/* ---- expose / revoke ---------------------------------------------------------- */

static int l_expose(lua_State *L) {
    pn_script *s = pn_api_script(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int auth = LUA_NOREF;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        if (lua_getfield(L, 3, "authorize") != LUA_TNIL) {
            luaL_argcheck(L, lua_isfunction(L, -1), 3, "authorize must be a function");
            auth = luaL_ref(L, LUA_REGISTRYINDEX);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pushvalue(L, 2);
    int fn = luaL_ref(L, LUA_REGISTRYINDEX);
    pn_err e;
    if (pn_handler_expose(s, name, fn, auth, 0, &e) != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, fn);
        luaL_unref(L, LUA_REGISTRYINDEX, auth);
        return luaL_error(L, "peernet.expose: %s", e.msg);
    }
    return 0;
}

static int l_revoke(lua_State *L) {
    pn_script *s = pn_api_script(L);
    lua_pushboolean(L, pn_handler_revoke(s, luaL_checkstring(L, 1)) == 0);
    return 1;
}

/* ---- calls ------------------------------------------------------------------------ */

typedef struct {
    pn_wait w;
    pn_script *s;
    int cast; /* admin.cast: the answer is true, not the value */
} call_wait;

static void call_cancel(pn_wait *w) {
    (void)w; /* the host still calls back (at the latest on close): it frees then */
}

typedef struct {
    const uint8_t *term;
    size_t len;
} term_arg;

static int push_term_protected(lua_State *L) {
    term_arg *a = lua_touserdata(L, 1);
    pn_err e;
    if (pn_value_push(L, a->term, a->len, 0, &e) != 0) return luaL_error(L, "%s", e.msg);
    return 1;
}

/* Pushes the term's value on the task's coroutine (decoded on the main
 * thread, protected: a suspended coroutine cannot run a protected call);
 * when it does not decode, nil, "cannot decode the reply: ...", kind. */
static int push_term(pn_script *s, lua_State *co, const uint8_t *term, size_t len,
                     const char *kind) {
    lua_State *L = s->L;
    term_arg a = {term, len};
    lua_pushcfunction(L, push_term_protected);
    lua_pushlightuserdata(L, &a);
    int rc = lua_pcall(L, 1, 1, 0);
    int n = 1;
    PN_SANDBOX_LIFTED(L) {
        lua_checkstack(co, 4);
        if (rc != LUA_OK) {
            lua_pushnil(co);
            lua_pushfstring(co, "cannot decode the reply: %s", lua_tostring(L, -1));
            lua_pushstring(co, kind);
            lua_pop(L, 1);
            n = 3;
        } else {
            lua_xmove(L, co, 1);
        }
    }
    return n;
}

static void on_call_done(pn_host *h, pn_call_status st, const uint8_t *term, size_t len, void *ud) {
    call_wait *cw = ud;
    pn_task *t = cw->w.task;
    if (!t) {
        free(cw);
        return;
    }
    lua_State *co = t->co;
    pn_script *s = cw->s;
    int n;
    /* co is suspended: nothing pushed on it here is protected, so the
     * host's own values go in with the cap lifted (a failed allocation
     * would abort the process). The reply itself is decoded under the cap,
     * protected, by push_term. */
    PN_SANDBOX_LIFTED(s->L) lua_checkstack(co, 4);
    if (st == PN_CALL_OK) {
        if (cw->cast) {
            lua_pushboolean(co, 1);
            n = 1;
        } else {
            n = push_term(s, co, term, len, pn_reason_kind_name(PN_KIND_UNDECODABLE));
        }
    } else if (st == PN_CALL_ERROR) {
        const char *remote = pn_reason_kind_name(PN_KIND_REMOTE);
        lua_pushnil(co);
        n = push_term(s, co, term, len, remote);
        if (n == 3) { /* the reason itself did not decode: its message stands */
            lua_remove(co, -4);
        } else {
            PN_SANDBOX_LIFTED(s->L) lua_pushstring(co, remote);
            n = 3;
        }
    } else {
        PN_SANDBOX_LIFTED(s->L) n = pn_result_fail(co, pn_result_reason(st), pn_result_kind(st));
    }
    free(cw);
    pn_task_resume(t, n);
}

/* A call or send this host refused at once. */
static int fail_code(lua_State *L, int code, const char *msg) {
    const char *reason = code == PN_ESTATE   ? pn_reason_name(PN_REASON_NOT_CONNECTED)
                         : code == PN_ELIMIT ? pn_reason_name(PN_REASON_OVERLOADED)
                         : code == PN_EBUSY  ? pn_reason_name(PN_REASON_BUSY)
                                             : msg;
    return pn_result_fail(L, reason, PN_KIND_LOCAL);
}

/* Starts the call whose args are in b and waits for its answer. */
static int start_call(lua_State *L, pn_script *s, pn_task *t, const uint8_t key[PN_KEY_LEN],
                      const char *name, pn_etf_buf *b, uint32_t timeout, int cast) {
    call_wait *cw = calloc(1, sizeof *cw);
    if (!cw) {
        pn_etf_buf_free(b);
        return luaL_error(L, "out of memory");
    }
    cw->w.type = PN_WAIT_CALL;
    cw->w.cancel = call_cancel;
    cw->s = s;
    cw->cast = cast;
    pn_err e;
    const pn_rt_out *out = s->rt->o.out;
    int rc =
        out ? out->call(s->rt->o.out_ud, key, name, b->data, b->len, timeout, on_call_done, cw, &e)
            : pn_host_call(s->rt->h, key, name, b->data, b->len, timeout, on_call_done, cw, &e);
    pn_etf_buf_free(b);
    if (rc != 0) {
        free(cw);
        return fail_code(L, rc, e.msg);
    }
    return pn_task_wait(L, t, &cw->w);
}

/* Encodes the value at idx into b; raises on a value ETF cannot carry.
 * Protected, so a memory error cannot leak b on its way out. */
static void encode(lua_State *L, int idx, pn_etf_buf *b) {
    pn_err e;
    int rc = pn_value_encode_protected(L, idx, 0, b, &e);
    if (rc != 0) {
        pn_etf_buf_free(b);
        if (rc == PN_ELIMIT && pn_sandbox_late(L)) {
            char msg[PN_ERR_MSG_MAX + 32];
            snprintf(msg, sizeof msg, "cannot send these args: %s", e.msg);
            pn_sandbox_kill(L, msg);
        }
        luaL_error(L, "cannot send these args: %s", e.msg);
    }
}

static int l_call(lua_State *L) {
    pn_script *s = pn_api_script(L);
    pn_task *t = need_task(L, "call");
    uint8_t key[PN_KEY_LEN];
    check_key(L, 1, key);
    const char *name = luaL_checkstring(L, 2);
    uint32_t timeout = opt_uint(L, 4, "timeout", 0);
    pn_etf_buf b;
    encode(L, 3, &b);
    return start_call(L, s, t, key, name, &b, timeout, 0);
}

static int l_send(lua_State *L) {
    pn_script *s = pn_api_script(L);
    uint8_t key[PN_KEY_LEN];
    check_key(L, 1, key);
    const char *name = luaL_checkstring(L, 2);
    const pn_rt_out *out = s->rt->o.out;
    if (!out && pn_host_busy(s->rt->h, key))
        return pn_result_fail(L, pn_reason_name(PN_REASON_BUSY), PN_KIND_LOCAL);
    pn_etf_buf b;
    encode(L, 3, &b);
    pn_err e;
    int rc = out ? out->send(s->rt->o.out_ud, key, name, b.data, b.len, &e)
                 : pn_host_send(s->rt->h, key, name, b.data, b.len, &e);
    pn_etf_buf_free(&b);
    if (rc != 0) return fail_code(L, rc, e.msg);
    lua_pushboolean(L, 1);
    return 1;
}

/* admin.call(peer, module, fn, args [, opts]) / admin.cast(...) */
static int admin_call(lua_State *L, int cast) {
    pn_script *s = pn_api_script(L);
    pn_task *t = need_task(L, cast ? "admin.cast" : "admin.call");
    uint8_t key[PN_KEY_LEN];
    check_key(L, 1, key);
    size_t mlen, flen;
    const char *m = luaL_checklstring(L, 2, &mlen);
    const char *f = luaL_checklstring(L, 3, &flen);
    if (lua_isnoneornil(L, 4)) {
        lua_newtable(L);
        lua_replace(L, 4);
    }
    luaL_checktype(L, 4, LUA_TTABLE);
    uint32_t timeout = opt_uint(L, 5, "timeout", 0);
    pn_etf_buf args, b;
    pn_err e;
    encode(L, 4, &args);
    pn_etf_buf_init(&b, PN_VALUE_DEFAULT_MAX);
    const char *op = cast ? "cast" : "rpc";
    int rc = pn_etf_put_tuple(&b, 4, &e) != 0 || pn_etf_put_atom(&b, op, strlen(op), &e) != 0 ||
             pn_etf_put_atom(&b, m, mlen, &e) != 0 || pn_etf_put_atom(&b, f, flen, &e) != 0 ||
             pn_etf_put_raw(&b, args.data, args.len, &e) != 0;
    pn_etf_buf_free(&args);
    if (rc) {
        pn_etf_buf_free(&b);
        return luaL_error(L, "peernet.admin: %s", e.msg);
    }
    return start_call(L, s, t, key, PN_RT_ADMIN, &b, timeout, cast);
}

static int l_admin_call(lua_State *L) {
    return admin_call(L, 0);
}

static int l_admin_cast(lua_State *L) {
    return admin_call(L, 1);
}

static int l_admin_register(lua_State *L) {
    pn_script *s = pn_api_script(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    pn_err e;
    if (pn_admin_register(s, name, 2, &e) != 0) return luaL_error(L, "peernet.admin: %s", e.msg);
    return 0;
}

static int l_admin_expose(lua_State *L) {
    pn_script *s = pn_api_script(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "authorize");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "peernet.admin.expose: beam_admin runs any admin function, so it "
                             "needs {authorize = function(from) ... end}");
    int auth = luaL_ref(L, LUA_REGISTRYINDEX);
    pn_err e;
    if (pn_handler_expose(s, PN_RT_ADMIN, LUA_NOREF, auth, 1, &e) != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, auth);
        return luaL_error(L, "peernet.admin.expose: %s", e.msg);
    }
    return 0;
}

/* ---- connect ---------------------------------------------------------------------- */

static void on_connect_done(pn_host *h, int status, const char *msg, void *ud) {
    call_wait *cw = ud;
    pn_task *t = cw->w.task;
    free(cw);
    if (!t) return;
    /* Unprotected pushes on a suspended coroutine: with the cap lifted,
     * as in on_call_done. */
    int n = 1;
    PN_SANDBOX_LIFTED(t->s->L) {
        int ok = lua_checkstack(t->co, 3);
        if (status == 0 && ok)
            lua_pushboolean(t->co, 1);
        else
            n = pn_result_fail(t->co,
                               !ok   ? "out of memory"
                               : msg ? msg
                                     : "connect failed",
                               PN_KIND_LOCAL);
    }
    pn_task_resume(t, n);
}

static int l_connect(lua_State *L) {
    pn_script *s = pn_api_script(L);
    pn_task *t = need_task(L, "connect");
    uint8_t key[PN_KEY_LEN];
    check_key(L, 1, key);
    const char *addr = luaL_optstring(L, 2, NULL);
    const pn_rt_out *out = s->rt->o.out;
    if (out) {
        pn_err e;
        if (out->connect(s->rt->o.out_ud, key, addr, &e) != 0)
            return pn_result_fail(L, e.msg, PN_KIND_LOCAL);
        lua_pushboolean(L, 1);
        return 1;
    }
    call_wait *cw = calloc(1, sizeof *cw);
    if (!cw) return luaL_error(L, "out of memory");
    cw->w.type = PN_WAIT_CONNECT;
    cw->w.cancel = call_cancel;
    cw->s = s;
    pn_err e;
    if (pn_host_connect(s->rt->h, key, addr, on_connect_done, cw, &e) != 0) {
        free(cw);
        return pn_result_fail(L, e.msg, PN_KIND_LOCAL);
    }
    return pn_task_wait(L, t, &cw->w);
}

/* ---- sleep ------------------------------------------------------------- */

typedef struct {
    pn_wait w;
    pn_clock_timer timer;
} sleep_wait;

static void sleep_closed(uv_handle_t *hd) {
    free(hd->data);
}

static void sleep_cancel(pn_wait *w) {
    sleep_wait *sw = (sleep_wait *)w;
    pn_clock_close(&sw->timer, sleep_closed);
}

static void on_sleep_done(void *owner) {
    sleep_wait *sw = owner;
    pn_task *t = sw->w.task;
    pn_clock_close(&sw->timer, sleep_closed);
    if (t) pn_task_resume(t, 0);
}

static int l_sleep(lua_State *L) {
    pn_script *s = pn_api_script(L);
    pn_task *t = need_task(L, "sleep");
    lua_Integer ms = luaL_checkinteger(L, 1);
    luaL_argcheck(L, ms >= 0 && ms <= PN_MS_MAX, 1,
                  lua_pushfstring(L, "must be between 0 and %I ms", (lua_Integer)PN_MS_MAX));
    sleep_wait *sw = calloc(1, sizeof *sw);
    if (!sw) return luaL_error(L, "out of memory");
    sw->w.type = PN_WAIT_SLEEP;
    sw->w.cancel = sleep_cancel;
    pn_clock_init(s->rt, &sw->timer, on_sleep_done, sw);
    pn_clock_start(&sw->timer, (uint64_t)ms, 0);
    return pn_task_wait(L, t, &sw->w);
}

/* ---- drain ------------------------------------------------------------- */

/* peernet.drain(peer [, {timeout = ms}]): true at once unless a send to
 * peer would answer busy; else the task waits for the host's "drained"
 * event (the queue at the low-water mark), the link's close or the
 * timeout. */

/* Same bound as a call's default (the host's call_timeout default). */
#define DRAIN_TIMEOUT_MS 5000

typedef struct {
    pn_wait w;
    pn_rt *rt;
    pn_link link; /* rt->drains */
    uint8_t key[PN_KEY_LEN];
    pn_clock_timer timer;
} drain_wait;

static void drain_cancel(pn_wait *w) {
    drain_wait *dw = (drain_wait *)w;
    pn_list_remove(&dw->rt->drains, &dw->link);
    pn_clock_close(&dw->timer, sleep_closed);
}

/* reason NULL: drained, true; else nil, reason, reason (timeout, closed). */
static void drain_done(drain_wait *dw, const char *reason) {
    pn_task *t = dw->w.task;
    drain_cancel(&dw->w);
    if (!t) return;
    int n = 1;
    PN_SANDBOX_LIFTED(t->s->L) {
        lua_checkstack(t->co, 3);
        if (reason) {
            lua_pushnil(t->co);
            lua_pushstring(t->co, reason);
            lua_pushstring(t->co, reason);
            n = 3;
        } else {
            lua_pushboolean(t->co, 1);
        }
    }
    pn_task_resume(t, n);
}

static void on_drain_timeout(void *owner) {
    drain_done(owner, pn_reason_name(PN_REASON_TIMEOUT));
}

void pn_api_drained(pn_rt *rt, const uint8_t key[PN_KEY_LEN], int closed) {
    for (pn_link *l = rt->drains.head, *next; l; l = next) {
        next = l->next;
        drain_wait *dw = PN_CONTAINER(l, drain_wait, link);
        if (memcmp(dw->key, key, PN_KEY_LEN) == 0)
            drain_done(dw, closed ? pn_reason_name(PN_REASON_CLOSED) : NULL);
    }
}

static int l_drain(lua_State *L) {
    pn_script *s = pn_api_script(L);
    pn_task *t = need_task(L, "drain");
    uint8_t key[PN_KEY_LEN];
    check_key(L, 1, key);
    uint32_t timeout = opt_uint(L, 2, "timeout", DRAIN_TIMEOUT_MS);
    if (s->rt->o.out || !pn_host_busy(s->rt->h, key)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    drain_wait *dw = calloc(1, sizeof *dw);
    if (!dw) return luaL_error(L, "out of memory");
    dw->w.type = PN_WAIT_DRAIN;
    dw->w.cancel = drain_cancel;
    dw->rt = s->rt;
    memcpy(dw->key, key, PN_KEY_LEN);
    pn_list_push(&s->rt->drains, &dw->link);
    pn_clock_init(s->rt, &dw->timer, on_drain_timeout, dw);
    pn_clock_start(&dw->timer, timeout, 0);
    return pn_task_wait(L, t, &dw->w);
}

/* ---- registry, identity, events ----------------------------------------------------- */

static int add_peer(const pn_peer_info *p, void *ud) {
    lua_State *L = ud;
    pn_glue_push_peer(L, p);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int l_peers(lua_State *L) {
    pn_script *s = pn_api_script(L);
    lua_newtable(L);
    pn_host_peers(s->rt->h, add_peer, L);
    return 1;
}

static int l_resolve(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    uint8_t key[PN_KEY_LEN];
    pn_err e;
    if (pn_key_parse(key, text, len, &e) != 0 &&
        resolve_label(pn_api_script(L), text, len, key, &e) != 0)
        return pn_glue_fail(L, &e);
    pn_glue_push_key(L, key);
    return 1;
}

static int l_self(lua_State *L) {
    pn_script *s = pn_api_script(L);
    uint8_t key[PN_KEY_LEN];
    pn_host_public_key(s->rt->h, key);
    pn_glue_push_key(L, key);
    return 1;
}

static int l_on(lua_State *L) {
    pn_script *s = pn_api_script(L);
    const char *const *events = pn_host_event_names();
    int ev = luaL_checkoption(L, 1, NULL, events);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (s->events_ref == LUA_NOREF) {
        lua_newtable(L);
        s->events_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->events_ref);
    if (lua_getfield(L, -1, events[ev]) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, events[ev]);
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n >= PN_RT_EVENT_FNS_MAX)
        return luaL_error(L, "peernet.on: at most %d functions per event", PN_RT_EVENT_FNS_MAX);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, n + 1);
    return 0;
}

/* ---- log ------------------------------------------------------------------------------ */

static int do_log(lua_State *L, int level) {
    pn_script *s = pn_api_script(L);
    int n = lua_gettop(L);
    if (n > 1) {
        lua_pushvalue(L, lua_upvalueindex(2)); /* string.format as it was at load */
        lua_insert(L, 1);
        lua_call(L, n, 1);
    } else {
        luaL_tolstring(L, 1, NULL);
    }
    pn_rt_log(s->rt, level, "%s: %s", s->path, lua_tostring(L, -1));
    return 0;
}

static int l_log_debug(lua_State *L) {
    return do_log(L, PN_LOG_DEBUG);
}
static int l_log_info(lua_State *L) {
    return do_log(L, PN_LOG_INFO);
}
static int l_log_warn(lua_State *L) {
    return do_log(L, PN_LOG_WARN);
}
static int l_log_error(lua_State *L) {
    return do_log(L, PN_LOG_ERROR);
}

/* print() in a sandbox: the values, tab-separated, to the log. */
static int l_print(lua_State *L) {
    pn_script *s = pn_api_script(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    pn_rt_log(s->rt, PN_LOG_INFO, "%s: %s", s->path, lua_tostring(L, -1));
    return 0;
}

/* Sets t.log (t on top) to the log functions, with the script's handle
 * (at hi) and string.format as it was at load as upvalues. */
static void open_log(lua_State *L, int hi) {
    static const luaL_Reg log[] = {{"debug", l_log_debug},
                                   {"info", l_log_info},
                                   {"warn", l_log_warn},
                                   {"error", l_log_error},
                                   {NULL, NULL}};
    lua_createtable(L, 0, 4);
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "format");
    lua_remove(L, -2);
    for (const luaL_Reg *r = log; r->name; r++) {
        lua_pushvalue(L, hi);
        lua_pushvalue(L, -2);
        lua_pushcclosure(L, r->func, 2);
        lua_setfield(L, -3, r->name);
    }
    lua_pop(L, 1);
    lua_setfield(L, -2, "log");
}

void pn_api_open(lua_State *L, pn_script *s) {
    static const luaL_Reg fns[] = {{"expose", l_expose},      {"revoke", l_revoke},
                                   {"call", l_call},          {"send", l_send},
                                   {"connect", l_connect},    {"peers", l_peers},
                                   {"self", l_self},          {"on", l_on},
                                   {"sleep", l_sleep},        {"drain", l_drain},
                                   {"after", pn_timer_after}, {"every", pn_timer_every},
                                   {"resolve", l_resolve},    {NULL, NULL}};
    static const luaL_Reg admin[] = {{"call", l_admin_call},
                                     {"cast", l_admin_cast},
                                     {"register", l_admin_register},
                                     {"expose", l_admin_expose},
                                     {NULL, NULL}};
    pn_timer_open(L);
    pn_script **h = lua_newuserdatauv(L, sizeof *h, 0);
    *h = s;
    s->handle = h;
    int hi = lua_gettop(L);
    lua_newtable(L);
    lua_pushvalue(L, hi);
    luaL_setfuncs(L, fns, 1);
    pn_value_open(L); /* atom, tuple, null, is_atom, is_tuple, etf.* */
    lua_newtable(L);
    lua_pushvalue(L, hi);
    luaL_setfuncs(L, admin, 1);
    lua_setfield(L, -2, "admin");
    open_log(L, hi);
    if (s->sandboxed) {
        lua_pushvalue(L, hi);
        lua_pushcclosure(L, l_print, 1);
        lua_setglobal(L, "print");
    }
    lua_remove(L, hi);
    if (s->sandboxed) {
        lua_pushvalue(L, -1);
        lua_setglobal(L, "peernet");
        pn_caps_open(L, s);
        lua_pop(L, 1);
    }
    /* Trusted: the table stays on the stack for the caller. */
}
