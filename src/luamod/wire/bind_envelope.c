/*
 * peernet.envelope: the envelope codec, for specs and Lua programs. Terms
 * (Args, Value, Reason) are raw ETF bytes without the version byte; ids are
 * integers, or decimal strings for ids of 2^63 and above.
 *
 *   peernet.envelope.decode(bytes) --> { kind = "call" | "reply" | "send" | "ping" | "pong",
 *       id = integer (when < 2^63), id_str = "decimal", name = string, ok = boolean,
 *       term = bytes, foreign = true (term is well-formed ETF outside the subset),
 *       nonce = bytes }  |  nil, err, code
 *   peernet.envelope.call(id, name, args [, legacy])      --> bytes  |  nil, err, code
 *   peernet.envelope.reply(id, ok, term [, legacy])
 *   peernet.envelope.reply_error(id, reason [, legacy])
 *   peernet.envelope.send(name, args [, legacy])
 *   peernet.envelope.ping(nonce [, legacy])  /  pong(nonce [, legacy])
 *
 * legacy = true writes the envelope's atoms as OTP 25 did (ATOM_EXT); tests only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "wire.h"
#include "lua/glue.h"
#include "core/envelope.h"
#include "lua/value.h"

#define ENVBUF_MT "peernet.envelope_buf"

static int envbuf_gc(lua_State *L) {
    pn_etf_buf_free(luaL_checkudata(L, 1, ENVBUF_MT));
    return 0;
}

/* A buffer owned by the Lua stack, so a Lua error cannot leak it. */
static pn_etf_buf *new_buf(lua_State *L) {
    pn_etf_buf *b = lua_newuserdatauv(L, sizeof *b, 0);
    pn_etf_buf_init(b, PN_VALUE_DEFAULT_MAX);
    luaL_setmetatable(L, ENVBUF_MT);
    return b;
}

/* Pushes the encoding (or nil, err, code) and frees the buffer. */
static int push_result(lua_State *L, pn_etf_buf *b, int rc, const pn_err *e) {
    if (rc < 0) {
        pn_etf_buf_free(b);
        return pn_glue_fail(L, e);
    }
    lua_pushlstring(L, (const char *)b->data, b->len);
    pn_etf_buf_free(b);
    return 1;
}

static uint64_t check_id(lua_State *L, int idx) {
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        uint64_t v = 0;
        luaL_argcheck(L, n > 0, idx,
                      "id must be a decimal string such as \"18446744073709551615\"");
        for (size_t i = 0; i < n; i++) {
            unsigned d = (unsigned char)s[i] - '0';
            luaL_argcheck(L, d <= 9, idx,
                          "id must be a decimal string such as \"18446744073709551615\"");
            luaL_argcheck(L, v <= (UINT64_MAX - d) / 10, idx, "id must be at most 2^64-1");
            v = v * 10 + d;
        }
        return v;
    }
    lua_Integer i = luaL_checkinteger(L, idx);
    luaL_argcheck(L, i >= 0, idx, "id must be positive (a decimal string for ids >= 2^63)");
    return (uint64_t)i;
}

static int flags_at(lua_State *L, int idx) {
    return lua_toboolean(L, idx) ? PN_ENVELOPE_LEGACY_ATOMS : 0;
}

static int l_decode(lua_State *L) {
    size_t n;
    const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &n);
    pn_envelope env;
    pn_err e;
    if (pn_envelope_decode(p, n, &env, &e) < 0) return pn_glue_fail(L, &e);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, pn_envelope_kind_name(env.kind));
    lua_setfield(L, -2, "kind");
    if (env.kind == PN_ENV_CALL || env.kind == PN_ENV_REPLY) {
        char dec[24];
        snprintf(dec, sizeof dec, "%" PRIu64, env.id);
        lua_pushstring(L, dec);
        lua_setfield(L, -2, "id_str");
        if (env.id <= (uint64_t)LUA_MAXINTEGER) {
            lua_pushinteger(L, (lua_Integer)env.id);
            lua_setfield(L, -2, "id");
        }
    }
    if (env.kind == PN_ENV_CALL || env.kind == PN_ENV_SEND) {
        lua_pushlstring(L, env.name, env.name_len);
        lua_setfield(L, -2, "name");
    }
    if (env.kind == PN_ENV_REPLY) {
        lua_pushboolean(L, env.ok);
        lua_setfield(L, -2, "ok");
    }
    if (env.term) {
        lua_pushlstring(L, (const char *)env.term, env.term_len);
        lua_setfield(L, -2, "term");
    }
    if (env.foreign) { /* the term is well-formed ETF outside the subset */
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "foreign");
    }
    if (env.kind == PN_ENV_PING || env.kind == PN_ENV_PONG) {
        lua_pushlstring(L, (const char *)env.nonce, sizeof env.nonce);
        lua_setfield(L, -2, "nonce");
    }
    return 1;
}

static int l_call(lua_State *L) {
    uint64_t id = check_id(L, 1);
    size_t nl, al;
    const char *name = luaL_checklstring(L, 2, &nl);
    const uint8_t *args = (const uint8_t *)luaL_checklstring(L, 3, &al);
    int flags = flags_at(L, 4);
    pn_etf_buf *b = new_buf(L);
    pn_err e;
    int rc = pn_envelope_put_call(b, id, name, nl, args, al, flags, &e);
    return push_result(L, b, rc, &e);
}

static int l_reply(lua_State *L) {
    uint64_t id = check_id(L, 1);
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    size_t tl;
    const uint8_t *term = (const uint8_t *)luaL_checklstring(L, 3, &tl);
    int flags = flags_at(L, 4);
    pn_etf_buf *b = new_buf(L);
    pn_err e;
    int rc = pn_envelope_put_reply(b, id, lua_toboolean(L, 2), term, tl, flags, &e);
    return push_result(L, b, rc, &e);
}

static int l_reply_error(lua_State *L) {
    uint64_t id = check_id(L, 1);
    size_t rl;
    const char *reason = luaL_checklstring(L, 2, &rl);
    int flags = flags_at(L, 3);
    pn_etf_buf *b = new_buf(L);
    pn_err e;
    int rc = rl == strlen(reason)
                 ? pn_envelope_put_reply_error(b, id, reason, flags, &e)
                 : pn_err_set(&e, PN_EINVAL, "envelope: reason must not contain a NUL byte");
    return push_result(L, b, rc, &e);
}

static int l_send(lua_State *L) {
    size_t nl, al;
    const char *name = luaL_checklstring(L, 1, &nl);
    const uint8_t *args = (const uint8_t *)luaL_checklstring(L, 2, &al);
    int flags = flags_at(L, 3);
    pn_etf_buf *b = new_buf(L);
    pn_err e;
    int rc = pn_envelope_put_send(b, name, nl, args, al, flags, &e);
    return push_result(L, b, rc, &e);
}

static int nonce_env(lua_State *L, int pong) {
    size_t n;
    const uint8_t *nonce = (const uint8_t *)luaL_checklstring(L, 1, &n);
    luaL_argcheck(L, n == PN_ENVELOPE_NONCE, 1, "nonce must be 16 bytes");
    int flags = flags_at(L, 2); /* before new_buf pushes onto the stack */
    pn_etf_buf *b = new_buf(L);
    pn_err e;
    int rc = pong ? pn_envelope_put_pong(b, nonce, flags, &e)
                  : pn_envelope_put_ping(b, nonce, flags, &e);
    return push_result(L, b, rc, &e);
}

static int l_ping(lua_State *L) {
    return nonce_env(L, 0);
}

static int l_pong(lua_State *L) {
    return nonce_env(L, 1);
}

void pn_bind_envelope_open(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"decode", l_decode}, {"call", l_call}, {"reply", l_reply}, {"reply_error", l_reply_error},
        {"send", l_send},     {"ping", l_ping}, {"pong", l_pong},   {NULL, NULL}};
    if (luaL_newmetatable(L, ENVBUF_MT)) {
        lua_pushcfunction(L, envbuf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    pn_glue_submodule(L, "envelope", fns);
}
