/*
 * peernet.host: a PeerNet host (include/peernet/peernet.h) on luv's loop, so that
 * Lua programs and busted specs run one or many hosts in one process with
 * `uv.run()`.
 *
 *   local h = peernet.host.new{ secret = kp:secret(), listen = "127.0.0.1:0",
 *                               trust = { keyhex, ... }, call_timeout = ms, ... }
 *   h:port() h:key() h:trust(key [, "host:port"]) h:untrust(key) h:close()
 *   h:trust_file(path)   -- follow a trust.list file, re-read when edited
 *   h:expose(name, function(from, args, req) ... end [, {authorize = fn, raw = bool}])
 *       -- return value            -> {ok, Value}
 *       -- return nil, reason      -> {error, Reason}
 *       -- error(...)              -> {error, handler_crash} (message logged)
 *       -- return req              -> answer later: req:reply(v) / req:error(reason)
 *   h:revoke(name)
 *   h:call(key, name, args, function(ok, value_or_err, kind) end [, {timeout = ms, raw = bool}])
 *       -- kind on failure (core/reason.h PN_KINDS): "remote" ({error, R}: value_or_err
 *       -- is R), "timeout", "closed"; or "undecodable" ({ok, X} with an X outside the
 *       -- ETF subset: a pid, a ref; the link stays), kept apart from "local" because
 *       -- the peer did answer
 *   h:send(key, name, args [, {raw = bool}])   --> true | nil, msg, "local", code
 *       -- nil, "busy", "local" while more than half of max_outbuf waits (pn_host_busy);
 *       -- h:call too, past max_outbuf of our own (PN_EBUSY); the link stays
 *       -- every method's failure: nil, message, "local", code (pn_glue_fail)
 *   h:connect(key, "host:port" | nil, function(ok, err, kind, code) end)
 *   h:on("connected" | "disconnected" | "discovered" | "drained", function(key, reason) end)
 *       -- reason: why the link closed (disconnected only)
 *   h:peers() h:peer(key) h:stats() h:ping(key)   -- a diagnostic ping now
 *       -- (a fixed nonce, h:ping(key, nonce), only with peernet_wire: specs)
 *   h:network_changed()   -- announce again and probe every link, as netmon does
 *
 * The settings of host.new are PN_HOST_OPTIONS (peernet/options.h), read
 * by one loop; peernet.host.options() lists them with their defaults and
 * ranges. LAN discovery and the network monitor are OFF unless host.new is
 * given discovery = true / netmon = true | "poll" (a process running many
 * hosts must not have them find each other by accident).
 *
 * raw = true hands Args and results over as ETF bytes (no version byte)
 * instead of Lua values. Callbacks run from the loop, never from inside the
 * method that registered them; an error in one is printed to stderr.
 */
#include <lauxlib.h>
#include <lua.h>
/* luv.h has an old-style declaration (luv_set_thread_cb) that -Werror refuses. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <luv/luv.h>
#pragma GCC diagnostic pop
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "live.h"
#include "lua/glue.h"
#include "core/addr.h"
#include "core/key.h"
#include "lua/pcall.h"
#include "lua/reply.h"
#include "lua/result.h"
#include "core/keypair.h"
#include "core/logline.h"
#include "luamod/wire/wire.h"
#include "net/test_hooks.h"
#include "peernet/peernet.h"
#include "lua/value.h"

#define HOST_MT "peernet.host"

typedef struct lhost {
    pn_host *h;
    lua_State *L; /* the main thread: callbacks run on it */
    int log_ref, event_ref[PN_EVENT_COUNT];
    int debug_log;
} lhost;

typedef struct {
    lhost *lh; /* NULL once closed */
} lhost_ud;

typedef struct {
    lhost *lh;
    int fn_ref, auth_ref, raw;
} lhandler;

typedef struct {
    lhost *lh;
    int cb_ref, raw;
} lcallback;

static void report(lua_State *L, const char *what) {
    fprintf(stderr, "peernet: error in %s: %s\n", what, lua_tostring(L, -1));
    lua_pop(L, 1);
}

static void check_key(lua_State *L, int idx, uint8_t out[PN_KEY_LEN]) {
    pn_glue_check_key(L, idx, out, NULL, NULL);
}

static lhost *check_host(lua_State *L) {
    lhost_ud *u = luaL_checkudata(L, 1, HOST_MT);
    if (!u->lh) luaL_argerror(L, 1, "host is closed");
    return u->lh;
}

pn_host *pn_bind_host_check(lua_State *L, int idx) {
    lhost_ud *u = luaL_checkudata(L, idx, HOST_MT);
    if (!u->lh) luaL_argerror(L, idx, "host is closed");
    return u->lh->h;
}

static int push_term(lua_State *L, const uint8_t *t, size_t len, int raw, pn_err *e) {
    if (raw) {
        lua_pushlstring(L, (const char *)t, len);
        return 0;
    }
    return pn_value_push(L, t, len, 0, e);
}

/* ---- logging and events ------------------------------------------------- */

static void on_log(void *ud, int level, const char *msg) {
    lhost *lh = ud;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (lh->log_ref == LUA_NOREF) { /* no log function: warnings and errors to stderr */
        if (lh->debug_log || level >= PN_LOG_WARN)
            fprintf(stderr, "peernet [%s] %s\n", names[level], msg);
        return;
    }
    lua_State *L = lh->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lh->log_ref);
    lua_pushstring(L, names[level]);
    lua_pushstring(L, msg);
    if (pn_pcall(L, 2, 0) != LUA_OK) report(L, "log function");
}

static void on_event(pn_host *h, pn_event ev, const uint8_t key[PN_KEY_LEN], const char *detail,
                     void *ud) {
    lhost *lh = ud;
    if (lh->event_ref[ev] == LUA_NOREF) return;
    lua_State *L = lh->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lh->event_ref[ev]);
    pn_glue_push_key(L, key);
    if (detail)
        lua_pushstring(L, detail); /* disconnected: why */
    else
        lua_pushnil(L);
    if (pn_pcall(L, 2, 0) != LUA_OK) report(L, "event handler");
}

/* ---- new / close ------------------------------------------------------- */

static void l_host_close_ud(lua_State *L, lhost_ud *u);

static uint32_t opt_ms(lua_State *L, int t, const char *name, uint32_t dflt) {
    lua_getfield(L, t, name);
    lua_Integer v = lua_isnil(L, -1) ? (lua_Integer)dflt : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (v < 0 || v > (lua_Integer)UINT32_MAX) luaL_error(L, "host.new: %s out of range", name);
    return (uint32_t)v;
}

/* One setting of PN_HOST_OPTIONS from the table at t; nil keeps the
 * default, which for Lua is lua_dflt. Ranges are pn_host_new's to check
 * (one message per setting); here only what cannot be stored is refused,
 * naming the setting's range all the same.
 * A text value is left on the stack: the member points into it until
 * pn_host_new returns. Keys not in the list are ignored, as always. */
static void read_option(lua_State *L, int t, pn_host_config *cfg, const pn_host_option *o) {
    int type = lua_getfield(L, t, o->name);
    if (o->kind == PN_OPT_TEXT) {
        pn_host_option_set(cfg, o, 0,
                           type == LUA_TNIL ? o->lua_text_dflt : luaL_checkstring(L, -1));
        return; /* kept on the stack */
    }
    long long v = o->lua_dflt;
    if (o->kind == PN_OPT_FLAG) {
        if (type != LUA_TNIL) v = lua_toboolean(L, -1);
    } else if (o->kind == PN_OPT_NETMON) {
        if (type == LUA_TSTRING && strcmp(lua_tostring(L, -1), "poll") == 0)
            v = 2;
        else if (type == LUA_TBOOLEAN)
            v = lua_toboolean(L, -1);
        else if (type != LUA_TNIL)
            luaL_error(L, "host.new: %s must be true, false or \"poll\"", o->name);
    } else if (type != LUA_TNIL) {
        int isint;
        lua_Integer n = lua_tointegerx(L, -1, &isint);
        if (!isint) luaL_error(L, "host.new: %s must be an integer", o->name);
        if (n < 0 || n > pn_host_option_type_max(o->kind)) {
            const char *unit = pn_host_option_unit(o->kind);
            luaL_error(L, "host.new: %s out of range: must be %I..%I%s%s, got %I", o->name,
                       (lua_Integer)o->min, (lua_Integer)o->max, unit[0] ? " " : "", unit, n);
        }
        v = n;
    }
    lua_pop(L, 1);
    pn_host_option_set(cfg, o, v, NULL);
}

/* peernet.host.options(): the list, in order, one table per setting:
 * {name, kind, unit, default, lua_default, min, max, meaning}. */
static int l_host_options(lua_State *L) {
    size_t n;
    const pn_host_option *os = pn_host_options(&n);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const pn_host_option *o = &os[i];
        lua_createtable(L, 0, 8);
        lua_pushstring(L, o->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, pn_host_option_kind_name(o->kind));
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, pn_host_option_unit(o->kind));
        lua_setfield(L, -2, "unit");
        if (o->kind == PN_OPT_TEXT) {
            lua_pushstring(L, o->text_dflt); /* NULL: nil */
            lua_setfield(L, -2, "default");
            lua_pushstring(L, o->lua_text_dflt);
            lua_setfield(L, -2, "lua_default");
        } else if (o->kind == PN_OPT_FLAG) {
            lua_pushboolean(L, (int)o->dflt);
            lua_setfield(L, -2, "default");
            lua_pushboolean(L, (int)o->lua_dflt);
            lua_setfield(L, -2, "lua_default");
        } else {
            lua_pushinteger(L, (lua_Integer)o->dflt);
            lua_setfield(L, -2, "default");
            lua_pushinteger(L, (lua_Integer)o->lua_dflt);
            lua_setfield(L, -2, "lua_default");
        }
        lua_pushinteger(L, (lua_Integer)o->min);
        lua_setfield(L, -2, "min");
        lua_pushinteger(L, (lua_Integer)o->max);
        lua_setfield(L, -2, "max");
        lua_pushstring(L, o->meaning);
        lua_setfield(L, -2, "meaning");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static void get_loop_from_luv(lua_State *L, uv_loop_t **loop) {
    lua_getglobal(L, "require");
    lua_pushstring(L, "luv");
    lua_call(L, 1, 0); /* makes sure luv has set up its loop */
    *loop = luv_loop(L);
}

/* listen: false = no listener, a string = the address, nil = the default.
 * A string is left on the stack: cfg.listen points into it. */
static void read_listen(lua_State *L, pn_host_config *cfg) {
    lua_getfield(L, 1, "listen");
    if (lua_isboolean(L, -1) && !lua_toboolean(L, -1))
        cfg->listen = "";
    else if (!lua_isnil(L, -1))
        cfg->listen = luaL_checkstring(L, -1);
}

static void read_settings(lua_State *L, pn_host_config *cfg) {
    size_t nopts;
    const pn_host_option *opts = pn_host_options(&nopts);
    luaL_checkstack(L, (int)nopts, "host.new: options");
    for (size_t i = 0; i < nopts; i++)
        read_option(L, 1, cfg, &opts[i]);
}

/* The trust list, parsed whole (once per key) before the host exists, into
 * a userdata left on the stack; returns the number of keys. */
static lua_Integer read_trust(lua_State *L, uint8_t (**keys)[PN_KEY_LEN]) {
    lua_getfield(L, 1, "trust");
    int trust = lua_gettop(L);
    lua_Integer n = 0;
    if (!lua_isnil(L, trust)) {
        luaL_checktype(L, trust, LUA_TTABLE);
        while (lua_rawgeti(L, trust, n + 1) != LUA_TNIL) {
            lua_pop(L, 1);
            n++;
        }
        lua_pop(L, 1);
    }
    *keys = lua_newuserdatauv(L, (size_t)n * PN_KEY_LEN + 1, 0);
    for (lua_Integer i = 0; i < n; i++) {
        size_t klen;
        lua_rawgeti(L, trust, i + 1);
        const char *ks = lua_tolstring(L, -1, &klen);
        pn_err e;
        if (!ks || pn_key_parse((*keys)[i], ks, klen, &e) != 0)
            luaL_error(L, "host.new: trust[%d]: %s", (int)i + 1,
                       ks ? e.msg : "a key must be a string");
        lua_pop(L, 1);
    }
    lua_remove(L, trust);
    return n;
}

/* The 32 raw bytes of opts[name], or NULL (nil) when absent. */
static const char *read_raw_key(lua_State *L, const char *name) {
    size_t len = 0;
    int type = lua_getfield(L, 1, name);
    const char *s = type == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    lua_pop(L, 1); /* opts keeps the string alive */
    if (type == LUA_TNIL) return NULL;
    if (!s || len != PN_KEY_LEN) luaL_error(L, "host.new: %s must be 32 raw bytes", name);
    return s;
}

/* Raises unless peernet_wire is loaded (its registry mark, wire.h): what
 * names the test hook asked for. */
static void wire_check(lua_State *L, const char *what) {
    int marked = lua_getfield(L, LUA_REGISTRYINDEX, PN_WIRE_REGISTRY_KEY) == LUA_TLIGHTUSERDATA;
    lua_pop(L, 1);
    if (!marked)
        luaL_error(L, "%s: test hooks, only for specs (require \"peernet_wire\" first)", what);
}

/* TEST ONLY (net/test_hooks.h, docs/CONVENTIONS.md): not settings, so not
 * in the list, and refused unless the spec-only module peernet_wire is
 * loaded: a user program cannot pin its handshakes' ephemeral key. */
static void read_test_hooks(lua_State *L, pn_host_test_hooks *hooks) {
    lua_getfield(L, 1, "test_ephemeral");
    lua_getfield(L, 1, "test_legacy_atoms");
    int asked = !lua_isnil(L, -2) || !lua_isnil(L, -1);
    hooks->legacy_atoms = lua_toboolean(L, -1);
    lua_pop(L, 2);
    hooks->ephemeral = NULL;
    if (!asked) return;
    wire_check(L, "host.new: test_ephemeral and test_legacy_atoms");
    hooks->ephemeral = (const uint8_t *)read_raw_key(L, "test_ephemeral");
}

static lhost *lhost_new(lua_State *L) {
    lhost *lh = calloc(1, sizeof *lh);
    if (!lh) return NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lh->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lh->log_ref = LUA_NOREF;
    for (int i = 0; i < PN_EVENT_COUNT; i++)
        lh->event_ref[i] = LUA_NOREF;
    lh->debug_log = getenv("PEERNET_DEBUG") != NULL;
    return lh;
}

/* opts.log, a function, referenced by lh (freed with it). */
static void read_log(lua_State *L, lhost *lh) {
    lua_getfield(L, 1, "log");
    if (lua_isfunction(L, -1))
        lh->log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else
        lua_pop(L, 1);
}

static int l_host_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    pn_host_config cfg;
    pn_host_config_init(&cfg);
    /* Everything that may raise comes before the host is made. */
    read_listen(L, &cfg); /* kept on the stack until pn_host_new returns */
    read_settings(L, &cfg);
    uint8_t(*trust)[PN_KEY_LEN];
    lua_Integer ntrust = read_trust(L, &trust);
    pn_host_test_hooks hooks;
    read_test_hooks(L, &hooks);
    const char *secret = read_raw_key(L, "secret");
    if (!secret) luaL_error(L, "host.new: secret must be 32 raw bytes");
    uv_loop_t *loop;
    get_loop_from_luv(L, &loop);
    lhost_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->lh = NULL;
    luaL_setmetatable(L, HOST_MT);
    lhost *lh = lhost_new(L);
    if (!lh) return luaL_error(L, "out of memory");
    read_log(L, lh);

    cfg.secret = (const uint8_t *)secret; /* copied by pn_host_new */
    cfg.log = on_log;
    cfg.log_ud = lh;
    pn_err e;
    lh->h = pn_host_new(loop, &cfg, &e);
    if (!lh->h) {
        luaL_unref(L, LUA_REGISTRYINDEX, lh->log_ref);
        free(lh);
        return pn_glue_fail(L, &e);
    }
    pn_host_test_set(lh->h, &hooks);
    u->lh = lh;
    pn_host_on_event(lh->h, on_event, lh);
    for (lua_Integer i = 0; i < ntrust; i++) {
        if (pn_host_trust(lh->h, trust[i], NULL, &e) != 0) {
            l_host_close_ud(L, u);
            return luaL_error(L, "host.new: trust[%d]: %s", (int)i + 1, e.msg);
        }
    }
    pn_live_add(L, -1, PN_LIVE_HOST);
    return 1;
}

static void on_host_closed(void *ud) {
    lhost *lh = ud;
    lua_State *L = lh->L;
    luaL_unref(L, LUA_REGISTRYINDEX, lh->log_ref);
    for (int i = 0; i < PN_EVENT_COUNT; i++)
        luaL_unref(L, LUA_REGISTRYINDEX, lh->event_ref[i]);
    free(lh);
}

static void l_host_close_ud(lua_State *L, lhost_ud *u) {
    if (u->lh) {
        lhost *lh = u->lh;
        u->lh = NULL;
        pn_host_close(lh->h, on_host_closed, lh);
    }
}

static int l_host_close(lua_State *L) {
    l_host_close_ud(L, luaL_checkudata(L, 1, HOST_MT));
    return 0;
}

static int l_host_port(lua_State *L) {
    lua_pushinteger(L, pn_host_port(check_host(L)->h));
    return 1;
}

static int l_host_key(lua_State *L) {
    uint8_t key[PN_KEY_LEN];
    pn_host_public_key(check_host(L)->h, key);
    pn_glue_push_key(L, key);
    return 1;
}

static int l_host_trust(lua_State *L) {
    lhost *lh = check_host(L);
    uint8_t key[PN_KEY_LEN];
    check_key(L, 2, key);
    pn_err e;
    size_t len;
    const char *addr = luaL_optlstring(L, 3, NULL, &len);
    /* The whole Lua string: C would stop at a NUL inside it. */
    if (addr && pn_addr_check(addr, len, &e) != 0) return pn_glue_fail(L, &e);
    if (pn_host_trust(lh->h, key, addr, &e) != 0) return pn_glue_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_host_trust_file(lua_State *L) {
    lhost *lh = check_host(L);
    pn_err e;
    if (pn_trustfile_watch(lh->h, luaL_checkstring(L, 2), &e) != 0) return pn_glue_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_host_untrust(lua_State *L) {
    lhost *lh = check_host(L);
    uint8_t key[PN_KEY_LEN];
    check_key(L, 2, key);
    lua_pushboolean(L, pn_host_untrust(lh->h, key) == 0);
    return 1;
}

/* ---- serving ----------------------------------------------------------- */

typedef struct {
    lhandler *hd;
    pn_request *req;
    pn_reply_req *ud; /* the request object handed to Lua (calls only) */
    int ud_ref;       /* keeps it from being collected until on_request is done */
    int badarg;       /* the args have no Lua value (map keys that collide in Lua) */
    const char *name; /* the call's name, kept: req may be gone when the handler ends */
} dispatch;

static void on_log(void *ud, int level, const char *msg);

/* The binding's own lines carry call names and error messages from
 * handlers: escaped like the host's (core/logline.h). */
static void log_own(lhost *lh, int level, const char *raw) {
    char msg[PN_LOGLINE_MSG_MAX * 2];
    pn_logline_escape(msg, sizeof msg, raw);
    on_log(lh, level, msg);
}

/* Runs inside lua_pcall: anything here may raise. */
static int dispatch_protected(lua_State *L) {
    dispatch *d = lua_touserdata(L, 1);
    lhandler *hd = d->hd;
    int is_call = pn_request_is_call(d->req); /* req may be freed by req:reply() below */
    size_t alen;
    const uint8_t *args = pn_request_args(d->req, &alen);
    pn_err e;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, hd->fn_ref);
    pn_glue_push_key(L, pn_request_from(d->req));
    if (push_term(L, args, alen, hd->raw, &e) != 0) {
        /* The caller's fault, not the handler's: {error, badarg}. */
        d->badarg = 1;
        return luaL_error(L, "cannot decode the arguments: %s", e.msg);
    }
    if (is_call) {
        pn_reply_req *r = pn_reply_push_req(L, hd->raw);
        lua_pushvalue(L, -1);
        d->ud_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        r->req = d->req; /* only now: the request is the object's from here on */
        d->ud = r;
    } else {
        lua_pushnil(L);
    }
    lua_pushvalue(L, -1);
    lua_insert(L, 1); /* keep the request object below the call */
    lua_call(L, 3, 2);
    if (!is_call) return 0;
    if (pn_reply_results(L, d->ud, 2, 1, &e) == PN_REPLY_UNENCODABLE) {
        char msg[PN_ERR_MSG_MAX + 96];
        snprintf(msg, sizeof msg, "handler %s: cannot encode its result: %s", d->name, e.msg);
        log_own(hd->lh, PN_LOG_ERROR, msg);
    }
    return 0;
}

static void on_request(pn_host *h, pn_request *req, void *ud) {
    lhandler *hd = ud; /* the host keeps it alive until this returns */
    lua_State *L = hd->lh->L;
    int is_call = pn_request_is_call(req);
    char name[PN_REPLY_LOG_NAME_MAX]; /* req may be gone when the handler fails after answering */
    snprintf(name, sizeof name, "%s", pn_request_name(req));
    dispatch d = {hd, req, NULL, LUA_NOREF, 0, name};
    int top = lua_gettop(L);
    lua_pushcfunction(L, dispatch_protected);
    lua_pushlightuserdata(L, &d);
    if (pn_pcall(L, 1, 0) != LUA_OK) {
        /* Details stay here: the caller gets a bare handler_crash. */
        lua_pushfstring(L, "handler %s failed: %s", name, lua_tostring(L, -1));
        log_own(hd->lh, PN_LOG_ERROR, lua_tostring(L, -1));
        pn_request *r = d.ud ? d.ud->req : (is_call ? req : NULL);
        if (d.ud) d.ud->req = NULL;
        if (r) pn_reply_reason(r, d.badarg ? PN_REASON_BADARG : PN_REASON_HANDLER_CRASH);
    }
    luaL_unref(L, LUA_REGISTRYINDEX, d.ud_ref);
    lua_settop(L, top);
}

static int on_authorize(pn_host *h, const uint8_t from[PN_KEY_LEN], const char *name, void *ud) {
    lhandler *hd = ud;
    if (hd->auth_ref == LUA_NOREF) return 1;
    lua_State *L = hd->lh->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, hd->auth_ref);
    pn_glue_push_key(L, from);
    lua_pushstring(L, name);
    if (pn_pcall(L, 2, 1) != LUA_OK) {
        report(L, "authorize predicate (the call is refused)");
        return 0;
    }
    int ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return ok;
}

static void on_release(void *ud) {
    lhandler *hd = ud;
    luaL_unref(hd->lh->L, LUA_REGISTRYINDEX, hd->fn_ref);
    luaL_unref(hd->lh->L, LUA_REGISTRYINDEX, hd->auth_ref);
    free(hd);
}

static int l_host_expose(lua_State *L) {
    lhost *lh = check_host(L);
    const char *name = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    int raw = 0, has_auth = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "raw");
        raw = lua_toboolean(L, -1);
        lua_getfield(L, 4, "authorize");
        has_auth = !lua_isnil(L, -1);
        if (has_auth) luaL_checktype(L, -1, LUA_TFUNCTION);
    }
    lhandler *hd = calloc(1, sizeof *hd);
    if (!hd) return luaL_error(L, "out of memory");
    hd->lh = lh;
    hd->raw = raw;
    hd->auth_ref = has_auth ? luaL_ref(L, LUA_REGISTRYINDEX) : LUA_NOREF;
    lua_pushvalue(L, 3);
    hd->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    pn_handler_def def = {on_request, on_authorize, on_release, hd};
    pn_err e;
    if (pn_host_expose(lh->h, name, &def, &e) != 0) {
        on_release(hd);
        return pn_glue_fail(L, &e);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_host_revoke(lua_State *L) {
    lhost *lh = check_host(L);
    lua_pushboolean(L, pn_host_revoke(lh->h, luaL_checkstring(L, 2)) == 0);
    return 1;
}

/* ---- calling ----------------------------------------------------------- */

static void on_call_done(pn_host *h, pn_call_status st, const uint8_t *term, size_t len, void *ud) {
    lcallback *cb = ud;
    lua_State *L = cb->lh->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, cb->cb_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, cb->cb_ref);
    int raw = cb->raw;
    free(cb);
    pn_err e;
    int nargs = 2;
    if (st == PN_CALL_OK) {
        lua_pushboolean(L, 1);
        if (push_term(L, term, len, raw, &e) != 0) {
            /* The peer answered {ok, X} with an X this side cannot map (a
             * pid, a ref...): this call fails, the link stays. */
            lua_pop(L, 1);
            lua_pushboolean(L, 0);
            lua_pushfstring(L, "%s reply: %s", pn_reason_name(PN_REASON_UNDECODABLE), e.msg);
            lua_pushstring(L, pn_reason_kind_name(PN_KIND_UNDECODABLE));
            nargs = 3;
        }
    } else {
        lua_pushboolean(L, 0);
        if (st == PN_CALL_ERROR) {
            if (push_term(L, term, len, raw, &e) != 0)
                lua_pushfstring(L, "%s reason: %s", pn_reason_name(PN_REASON_UNDECODABLE), e.msg);
        } else {
            lua_pushstring(L, pn_result_reason(st));
        }
        lua_pushstring(L, pn_reason_kind_name(pn_result_kind(st)));
        nargs = 3;
    }
    if (pn_pcall(L, nargs, 0) != LUA_OK) report(L, "call callback");
    lua_settop(L, top);
}

static int l_host_call(lua_State *L) {
    lhost *lh = check_host(L);
    uint8_t key[PN_KEY_LEN];
    check_key(L, 2, key);
    const char *name = luaL_checkstring(L, 3);
    luaL_checkany(L, 4);
    luaL_checktype(L, 5, LUA_TFUNCTION);
    uint32_t timeout = 0;
    int raw = 0;
    if (!lua_isnoneornil(L, 6)) {
        luaL_checktype(L, 6, LUA_TTABLE);
        timeout = opt_ms(L, 6, "timeout", 0);
        lua_getfield(L, 6, "raw");
        raw = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    pn_etf_buf b;
    pn_err e;
    int rc = pn_value_encode_protected(L, 4, raw, &b, &e);
    lcallback *cb = NULL;
    if (rc == 0) {
        lua_pushvalue(L, 5);
        int ref = luaL_ref(L, LUA_REGISTRYINDEX);
        cb = malloc(sizeof *cb);
        if (!cb) {
            luaL_unref(L, LUA_REGISTRYINDEX, ref);
            pn_etf_buf_free(&b);
            return luaL_error(L, "out of memory");
        }
        cb->lh = lh;
        cb->raw = raw;
        cb->cb_ref = ref;
        rc = pn_host_call(lh->h, key, name, b.data, b.len, timeout, on_call_done, cb, &e);
        if (rc != 0) {
            luaL_unref(L, LUA_REGISTRYINDEX, ref);
            free(cb);
        }
    }
    pn_etf_buf_free(&b);
    if (rc == PN_EBUSY) return pn_result_fail(L, pn_reason_name(PN_REASON_BUSY), PN_KIND_LOCAL);
    if (rc != 0) return pn_glue_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_host_send(lua_State *L) {
    lhost *lh = check_host(L);
    uint8_t key[PN_KEY_LEN];
    check_key(L, 2, key);
    const char *name = luaL_checkstring(L, 3);
    luaL_checkany(L, 4);
    int raw = 0;
    if (lua_istable(L, 5)) {
        lua_getfield(L, 5, "raw");
        raw = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (pn_host_busy(lh->h, key))
        return pn_result_fail(L, pn_reason_name(PN_REASON_BUSY), PN_KIND_LOCAL);
    pn_etf_buf b;
    pn_err e;
    int rc = pn_value_encode_protected(L, 4, raw, &b, &e);
    if (rc == 0) rc = pn_host_send(lh->h, key, name, b.data, b.len, &e);
    pn_etf_buf_free(&b);
    if (rc == PN_EBUSY) return pn_result_fail(L, pn_reason_name(PN_REASON_BUSY), PN_KIND_LOCAL);
    if (rc != 0) {
        if (rc == PN_ESTATE)
            snprintf(e.msg, sizeof e.msg, "%s", pn_reason_name(PN_REASON_NOT_CONNECTED));
        return pn_glue_fail(L, &e);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static void on_connect_done(pn_host *h, int status, const char *msg, void *ud) {
    lcallback *cb = ud;
    lua_State *L = cb->lh->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, cb->cb_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, cb->cb_ref);
    free(cb);
    int nargs = 2;
    if (status == 0) {
        lua_pushboolean(L, 1);
        lua_pushnil(L);
    } else { /* false, message, "local", code: the one failure shape */
        lua_pushboolean(L, 0);
        lua_pushstring(L, msg ? msg : pn_err_name(status));
        nargs = pn_result_local_top(L, status); /* nil, msg, "local", code */
        lua_remove(L, -nargs);                  /* false stands for the nil */
    }
    if (pn_pcall(L, nargs, 0) != LUA_OK) report(L, "connect callback");
}

static int l_host_connect(lua_State *L) {
    lhost *lh = check_host(L);
    uint8_t key[PN_KEY_LEN];
    check_key(L, 2, key);
    const char *addr = luaL_optstring(L, 3, NULL);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    lua_pushvalue(L, 4);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lcallback *cb = malloc(sizeof *cb);
    if (!cb) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "out of memory");
    }
    cb->lh = lh;
    cb->cb_ref = ref;
    pn_err e;
    if (pn_host_connect(lh->h, key, addr, on_connect_done, cb, &e) != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, cb->cb_ref);
        free(cb);
        return pn_glue_fail(L, &e);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_host_ping(lua_State *L) {
    lhost *lh = check_host(L);
    uint8_t key[PN_KEY_LEN];
    check_key(L, 2, key);
    size_t len = 0;
    const char *nonce = luaL_optlstring(L, 3, NULL, &len);
    if (nonce) wire_check(L, "h:ping: a fixed nonce");
    if (nonce && len != PN_NONCE_LEN) return luaL_argerror(L, 3, "nonce must be 16 bytes");
    pn_err e;
    if (pn_calls_test_ping(lh->h, key, (const uint8_t *)nonce, &e) != 0) return pn_glue_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_host_on(lua_State *L) {
    lhost *lh = check_host(L);
    int ev = luaL_checkoption(L, 2, NULL, pn_host_event_names());
    if (!lua_isnil(L, 3)) luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_settop(L, 3);
    luaL_unref(L, LUA_REGISTRYINDEX, lh->event_ref[ev]);
    lh->event_ref[ev] = lua_isnil(L, 3) ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* ---- registry ---------------------------------------------------------- */

static int add_peer(const pn_peer_info *p, void *ud) {
    lua_State *L = ud;
    pn_glue_push_peer(L, p);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int l_host_peers(lua_State *L) {
    lhost *lh = check_host(L);
    lua_newtable(L);
    pn_host_peers(lh->h, add_peer, L);
    return 1;
}

static int l_host_peer(lua_State *L) {
    lhost *lh = check_host(L);
    uint8_t key[PN_KEY_LEN];
    check_key(L, 2, key);
    pn_peer_info p;
    if (pn_host_peer(lh->h, key, &p) != 0) return 0;
    pn_glue_push_peer(L, &p);
    return 1;
}

static int l_host_network_changed(lua_State *L) {
    pn_host_network_changed(check_host(L)->h);
    return 0;
}

static int l_host_stats(lua_State *L) {
    pn_host_stats s;
    pn_host_get_stats(check_host(L)->h, &s);
#define COUNT(type, name, meaning) +1
    lua_createtable(L, 0, 0 PN_HOST_STATS(COUNT));
#undef COUNT
#define FIELD(type, name, meaning)                                                                 \
    lua_pushinteger(L, (lua_Integer)s.name);                                                       \
    lua_setfield(L, -2, #name);
    PN_HOST_STATS(FIELD)
#undef FIELD
    return 1;
}

void pn_bind_host_open(lua_State *L) {
    static const luaL_Reg methods[] = {{"close", l_host_close},
                                       {"port", l_host_port},
                                       {"key", l_host_key},
                                       {"trust", l_host_trust},
                                       {"untrust", l_host_untrust},
                                       {"trust_file", l_host_trust_file},
                                       {"expose", l_host_expose},
                                       {"revoke", l_host_revoke},
                                       {"call", l_host_call},
                                       {"send", l_host_send},
                                       {"connect", l_host_connect},
                                       {"ping", l_host_ping},
                                       {"on", l_host_on},
                                       {"peers", l_host_peers},
                                       {"peer", l_host_peer},
                                       {"stats", l_host_stats},
                                       {"network_changed", l_host_network_changed},
                                       {NULL, NULL}};
    luaL_newmetatable(L, HOST_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_host_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_host_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    pn_reply_open(L);
    static const luaL_Reg fns[] = {{"new", l_host_new}, {"options", l_host_options}, {NULL, NULL}};
    pn_glue_submodule(L, "host", fns);
}
