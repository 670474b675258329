/*
 * Lua binding of src/core/noise and src/core/handshake. Keys are raw
 * 32-byte strings. Failures a peer's bytes can cause return
 * `nil, message, code` (code: "einval", "eauth", "etrust", "estate",
 * "elimit", "etoobig", ...); wrong argument types raise.
 *
 * peernet.noise — Noise_XX_25519_ChaChaPoly_SHA256, spec rev 34
 *   PROTOCOL_NAME, MSG_MAX (65535, handshake messages only)
 *   new{role=, static=, profile=, prologue=, ephemeral=, verify=} -> state
 *       role      "initiator" | "responder"
 *       static    our X25519 private key
 *       profile   "standard" (default: prologue mixed per the spec) |
 *                 "peernet" (PROTOCOL.md deviations; no prologue; payloads
 *                 must be empty)
 *       prologue  string, standard profile only (default "")
 *       ephemeral TEST ONLY: fixed ephemeral private key
 *       verify    function(remote_static_pub) -> true to accept; anything
 *                 else (false, nil, a raised error) rejects (code "etrust")
 *   state:write_message([payload]) -> msg | nil, err, code
 *   state:read_message(msg)        -> payload | nil, err, code
 *   state:is_done()         -> boolean
 *   state:handshake_hash()  -> h (32 bytes; the current h before the end)
 *   state:chaining_key()    -> ck | nil, err, code     TEST ONLY
 *   state:remote_static()   -> peer's static public key | nil, err, code
 *   state:split()           -> tx, rx (ciphers for this side) | nil, err, code
 *   cipher(key [, nonce])   -> cipher (a CipherState; nonce default 0)
 *   hash(data)              -> SHA-256(data), the suite's HASH
 *   cipher:encrypt(pt [, ad]) -> ct .. tag | nil, err, code
 *   cipher:decrypt(ct [, ad]) -> pt | nil, err, code
 *   cipher:nonce()            -> next counter, u64 as a Lua integer
 *   cipher:set_nonce(n)       TEST ONLY (-1 is 2^64-1, the exhausted value)
 *
 * peernet.handshake — the PeerNet layer: ETF-wrapped frame bodies, exact
 * sizes, mandatory trust callback, transport after the third frame.
 *   M1_BODY, M2_BODY, M3_BODY, TRANSPORT_BODY_MAX (1 MiB), TAG
 *   new{role=, static=, verify=, ephemeral=} -> hs    (verify required)
 *   hs:next()           -> "write" | "read" | "done" | "failed"
 *   hs:write()          -> next handshake frame body | nil, err, code
 *   hs:read(body)       -> true | nil, err, code
 *   hs:is_done()        -> boolean
 *   hs:handshake_hash() -> h;  hs:chaining_key() -> ck (TEST ONLY)
 *   hs:remote_static()  -> peer's static public key | nil, err, code
 *   hs:seal(plaintext)  -> transport frame body | nil, err, code
 *   hs:open(body)       -> plaintext | nil, err, code
 *   hs:nonces()         -> send counter, receive counter
 * Any refusal leaves a state/hs dead ("estate" afterwards).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "wire.h"
#include "lua/glue.h"
#include "lua/pcall.h"
#include "core/handshake.h"
#include "core/noise.h"

#define NOISE_MT "peernet.noise_state"
#define CIPHER_MT "peernet.cipher"
#define HANDSHAKE_MT "peernet.handshake"

#define VERIFY_ERR_MAX 120
/* Bound of one message through a Lua cipher: the frame cap, as for the
 * transport that these CipherStates model. */
#define CIPHER_PLAINTEXT_MAX PN_FRAME_CAP_MAX

/* Shared by both state userdata: what the trust callback needs. The
 * userdata (index 1 of the running method) holds the Lua verify function
 * as its user value 1. */
typedef struct lverify {
    lua_State *L;             /* the thread running the current method */
    int busy;                 /* inside a core call: no re-entry */
    char err[VERIFY_ERR_MAX]; /* what a raising verify function said */
} lverify;

typedef struct lnoise {
    lverify v;
    pn_noise *n;
} lnoise;

typedef struct lhandshake {
    lverify v;
    pn_handshake *hs;
} lhandshake;

/* A trust refusal caused by an error in the verify function says so. */
static int fail_verify(lua_State *L, lverify *v, pn_err *e) {
    if (e->code == PN_ETRUST && v->err[0])
        pn_err_set(e, PN_ETRUST,
                   "the peer's static key was rejected: the verify function raised: %s", v->err);
    return pn_glue_fail(L, e);
}

/* ---- trust callback ----------------------------------------------------- */

/* Runs under lua_pcall: 1 = verify function, 2 = light userdata key. Only a
 * literal true accepts, so a function that forgets to return rejects. */
static int verify_trampoline(lua_State *L) {
    const char *key = lua_touserdata(L, 2);
    lua_pushvalue(L, 1);
    lua_pushlstring(L, key, PN_NOISE_KEYLEN);
    lua_call(L, 1, 1);
    lua_pushboolean(L, lua_isboolean(L, -1) && lua_toboolean(L, -1));
    return 1;
}

/* Called from inside the C core. Nothing here may raise: a longjmp would
 * skip the core's cleanup, so all Lua work happens under lua_pcall. */
static int verify_cb(void *ud, const uint8_t key[PN_NOISE_KEYLEN]) {
    lverify *v = ud;
    lua_State *L = v->L;
    int accept = 0;

    if (!lua_checkstack(L, 4)) return PN_ETRUST;
    lua_pushcfunction(L, verify_trampoline);
    lua_getiuservalue(L, 1, 1);
    lua_pushlightuserdata(L, (void *)key);
    if (pn_pcall(L, 2, 1) == LUA_OK) {
        accept = lua_toboolean(L, -1);
    } else {
        const char *msg = lua_tostring(L, -1);
        snprintf(v->err, sizeof v->err, "%s", msg ? msg : "(error object is not a string)");
    }
    lua_pop(L, 1);
    return accept ? 0 : PN_ETRUST;
}

static void enter(lua_State *L, lverify *v) {
    if (v->busy) luaL_error(L, "peernet: handshake state used from inside its own verify function");
    v->L = L;
    v->busy = 1;
    v->err[0] = '\0';
}

/* ---- option parsing ----------------------------------------------------- */

static const uint8_t *opt_key(lua_State *L, const char *field, int required) {
    size_t len;
    const char *s;
    lua_getfield(L, 1, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        if (required) luaL_error(L, "option '%s' (a 32-byte key) is required", field);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "option '%s' must be a 32-byte string", field);
    s = lua_tolstring(L, -1, &len);
    if (len != PN_NOISE_KEYLEN) luaL_error(L, "option '%s' must be a 32-byte string", field);
    lua_pop(L, 1); /* the string stays alive: it is still in the options table */
    return (const uint8_t *)s;
}

static pn_noise_role opt_role(lua_State *L) {
    const char *role;
    lua_getfield(L, 1, "role");
    role = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (role && strcmp(role, "initiator") == 0) return PN_NOISE_INITIATOR;
    if (role && strcmp(role, "responder") == 0) return PN_NOISE_RESPONDER;
    return (pn_noise_role)luaL_error(L, "option 'role' must be \"initiator\" or \"responder\"");
}

/* Leaves the verify function (or nil) on top of the stack. */
static int opt_verify(lua_State *L, int required) {
    lua_getfield(L, 1, "verify");
    if (lua_isnil(L, -1)) {
        if (required)
            luaL_error(L, "option 'verify' (function(remote_static) -> true) is required");
        return 0;
    }
    if (!lua_isfunction(L, -1)) luaL_error(L, "option 'verify' must be a function");
    return 1;
}

/* ---- CipherState -------------------------------------------------------- */

static pn_noise_cipher *push_cipher(lua_State *L) {
    pn_noise_cipher *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CIPHER_MT);
    return c;
}

static int l_cipher_new(lua_State *L) {
    size_t len;
    const char *k = luaL_checklstring(L, 1, &len);
    lua_Integer n = luaL_optinteger(L, 2, 0);
    pn_noise_cipher *c;
    if (len != PN_NOISE_KEYLEN) return luaL_argerror(L, 1, "key must be 32 bytes");
    c = push_cipher(L);
    pn_noise_cipher_init(c, (const uint8_t *)k);
    pn_noise_cipher_set_nonce(c, (uint64_t)n);
    return 1;
}

static int l_cipher_encrypt(lua_State *L) {
    pn_noise_cipher *c = luaL_checkudata(L, 1, CIPHER_MT);
    size_t ptlen, adlen = 0, outlen = 0;
    const char *pt = luaL_checklstring(L, 2, &ptlen);
    const char *ad = luaL_optlstring(L, 3, "", &adlen);
    pn_err e = {0};
    luaL_Buffer b;
    uint8_t *out;
    if (ptlen > CIPHER_PLAINTEXT_MAX) {
        pn_err_set(&e, PN_ETOOBIG, "cipher: plaintext of %zu bytes exceeds %d", ptlen,
                   CIPHER_PLAINTEXT_MAX);
        return pn_glue_fail(L, &e);
    }
    out = (uint8_t *)luaL_buffinitsize(L, &b, ptlen + PN_NOISE_TAGLEN);
    if (pn_noise_cipher_encrypt(c, (const uint8_t *)ad, adlen, (const uint8_t *)pt, ptlen, out,
                                ptlen + PN_NOISE_TAGLEN, &outlen, &e) != 0)
        return pn_glue_fail(L, &e);
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static int l_cipher_decrypt(lua_State *L) {
    pn_noise_cipher *c = luaL_checkudata(L, 1, CIPHER_MT);
    size_t ctlen, adlen = 0, outlen = 0;
    const char *ct = luaL_checklstring(L, 2, &ctlen);
    const char *ad = luaL_optlstring(L, 3, "", &adlen);
    pn_err e = {0};
    luaL_Buffer b;
    uint8_t *out;
    if (ctlen > CIPHER_PLAINTEXT_MAX + PN_NOISE_TAGLEN) {
        pn_err_set(&e, PN_ETOOBIG, "cipher: ciphertext of %zu bytes exceeds %d", ctlen,
                   CIPHER_PLAINTEXT_MAX + PN_NOISE_TAGLEN);
        return pn_glue_fail(L, &e);
    }
    out = (uint8_t *)luaL_buffinitsize(L, &b, ctlen);
    if (pn_noise_cipher_decrypt(c, (const uint8_t *)ad, adlen, (const uint8_t *)ct, ctlen, out,
                                ctlen, &outlen, &e) != 0)
        return pn_glue_fail(L, &e);
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static int l_cipher_nonce(lua_State *L) {
    pn_noise_cipher *c = luaL_checkudata(L, 1, CIPHER_MT);
    lua_pushinteger(L, (lua_Integer)pn_noise_cipher_nonce(c));
    return 1;
}

static int l_cipher_set_nonce(lua_State *L) {
    pn_noise_cipher *c = luaL_checkudata(L, 1, CIPHER_MT);
    pn_noise_cipher_set_nonce(c, (uint64_t)luaL_checkinteger(L, 2));
    return 0;
}

static int l_cipher_gc(lua_State *L) {
    pn_noise_cipher_clear(luaL_checkudata(L, 1, CIPHER_MT));
    return 0;
}

static int l_hash(lua_State *L) {
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    uint8_t h[PN_NOISE_HASHLEN];
    pn_noise_hash((const uint8_t *)data, len, h);
    lua_pushlstring(L, (const char *)h, sizeof h);
    return 1;
}

/* ---- peernet.noise HandshakeState ---------------------------------------- */

static lnoise *check_noise(lua_State *L) {
    lnoise *u = luaL_checkudata(L, 1, NOISE_MT);
    if (!u->n) luaL_error(L, "peernet.noise: state already closed");
    return u;
}

static int l_noise_new(lua_State *L) {
    pn_noise_role role;
    pn_noise_profile profile = PN_NOISE_STANDARD;
    const uint8_t *s, *eph;
    const char *prologue = NULL, *p;
    size_t prologue_len = 0;
    int has_verify;
    lnoise *u;
    pn_err e = {0};

    luaL_checktype(L, 1, LUA_TTABLE);
    role = opt_role(L);
    lua_getfield(L, 1, "profile");
    p = lua_tostring(L, -1);
    if (p && strcmp(p, "peernet") == 0)
        profile = PN_NOISE_PEERNET;
    else if (p && strcmp(p, "standard") != 0)
        return luaL_error(L, "option 'profile' must be \"standard\" or \"peernet\"");
    lua_pop(L, 1);
    s = opt_key(L, "static", 1);
    eph = opt_key(L, "ephemeral", 0);
    lua_getfield(L, 1, "prologue");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "option 'prologue' must be a string");
        prologue = lua_tolstring(L, -1, &prologue_len);
    }
    lua_pop(L, 1); /* still referenced by the options table */
    has_verify = opt_verify(L, 0);

    u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, NOISE_MT);
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, 1);
    u->n = pn_noise_create(role, profile, s, NULL, (const uint8_t *)prologue, prologue_len, &e);
    if (!u->n) return pn_glue_fail(L, &e);
    if (has_verify) pn_noise_set_verify(u->n, verify_cb, &u->v);
    if (eph && pn_noise_set_ephemeral(u->n, eph, &e) != 0) return pn_glue_fail(L, &e);
    return 1;
}

static int l_noise_write(lua_State *L) {
    lnoise *u = check_noise(L);
    size_t plen = 0, cap, outlen = 0;
    const char *payload = luaL_optlstring(L, 2, "", &plen);
    pn_err e = {0};
    luaL_Buffer b;
    uint8_t *out;
    int rc;
    /* 96 bytes is the largest XX overhead (M2); the core bounds the rest. */
    cap = plen <= PN_NOISE_MSG_MAX ? plen + 96 : 0;
    out = (uint8_t *)luaL_buffinitsize(L, &b, cap);
    enter(L, &u->v);
    rc = pn_noise_write_message(u->n, (const uint8_t *)payload, plen, out, cap, &outlen, &e);
    u->v.busy = 0;
    if (rc) return pn_glue_fail(L, &e);
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static int l_noise_read(lua_State *L) {
    lnoise *u = check_noise(L);
    size_t len, outlen = 0, cap;
    const char *msg = luaL_checklstring(L, 2, &len);
    pn_err e = {0};
    luaL_Buffer b;
    uint8_t *out;
    int rc;
    cap = len <= PN_NOISE_MSG_MAX ? len : 0; /* the core refuses larger messages */
    out = (uint8_t *)luaL_buffinitsize(L, &b, cap);
    enter(L, &u->v);
    rc = pn_noise_read_message(u->n, (const uint8_t *)msg, len, out, cap, &outlen, &e);
    u->v.busy = 0;
    if (rc) return fail_verify(L, &u->v, &e);
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static int l_noise_is_done(lua_State *L) {
    lua_pushboolean(L, pn_noise_is_done(check_noise(L)->n));
    return 1;
}

static int l_noise_hash(lua_State *L) {
    uint8_t h[PN_NOISE_HASHLEN];
    pn_noise_handshake_hash(check_noise(L)->n, h);
    lua_pushlstring(L, (const char *)h, sizeof h);
    return 1;
}

static int l_noise_ck(lua_State *L) {
    uint8_t ck[PN_NOISE_HASHLEN];
    pn_err e = {0};
    if (pn_noise_chaining_key(check_noise(L)->n, ck, &e) != 0) return pn_glue_fail(L, &e);
    lua_pushlstring(L, (const char *)ck, sizeof ck);
    sodium_memzero(ck, sizeof ck);
    return 1;
}

static int l_noise_remote(lua_State *L) {
    uint8_t rs[PN_NOISE_KEYLEN];
    pn_err e = {0};
    if (pn_noise_remote_static(check_noise(L)->n, rs, &e) != 0) return pn_glue_fail(L, &e);
    lua_pushlstring(L, (const char *)rs, sizeof rs);
    return 1;
}

static int l_noise_split(lua_State *L) {
    lnoise *u = check_noise(L);
    pn_noise_cipher *tx = push_cipher(L), *rx = push_cipher(L);
    pn_err e = {0};
    if (pn_noise_split(u->n, tx, rx, &e) != 0) return pn_glue_fail(L, &e);
    return 2;
}

static int l_noise_gc(lua_State *L) {
    lnoise *u = luaL_checkudata(L, 1, NOISE_MT);
    if (u->v.busy) return luaL_error(L, "peernet.noise: cannot close a state while it is in use");
    pn_noise_free(u->n);
    u->n = NULL;
    return 0;
}

/* ---- peernet.handshake --------------------------------------------------- */

static lhandshake *check_hs(lua_State *L) {
    lhandshake *u = luaL_checkudata(L, 1, HANDSHAKE_MT);
    if (!u->hs) luaL_error(L, "peernet.handshake: already closed");
    return u;
}

static int l_hs_new(lua_State *L) {
    pn_noise_role role;
    const uint8_t *s, *eph;
    lhandshake *u;
    pn_err e = {0};

    luaL_checktype(L, 1, LUA_TTABLE);
    role = opt_role(L);
    s = opt_key(L, "static", 1);
    eph = opt_key(L, "ephemeral", 0);
    opt_verify(L, 1);

    u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, HANDSHAKE_MT);
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, 1);
    u->hs = pn_handshake_create(role, s, NULL, verify_cb, &u->v, &e);
    if (!u->hs) return pn_glue_fail(L, &e);
    if (eph && pn_handshake_set_ephemeral(u->hs, eph, &e) != 0) return pn_glue_fail(L, &e);
    return 1;
}

static int l_hs_next(lua_State *L) {
    static const char *const names[] = {"write", "read", "done", "failed"};
    lua_pushstring(L, names[pn_handshake_next(check_hs(L)->hs)]);
    return 1;
}

static int l_hs_write(lua_State *L) {
    lhandshake *u = check_hs(L);
    uint8_t body[PN_HANDSHAKE_BODY_MAX];
    size_t len = 0;
    pn_err e = {0};
    int rc;
    enter(L, &u->v);
    rc = pn_handshake_write(u->hs, body, sizeof body, &len, &e);
    u->v.busy = 0;
    if (rc) return pn_glue_fail(L, &e);
    lua_pushlstring(L, (const char *)body, len);
    return 1;
}

static int l_hs_read(lua_State *L) {
    lhandshake *u = check_hs(L);
    size_t len;
    const char *body = luaL_checklstring(L, 2, &len);
    pn_err e = {0};
    int rc;
    enter(L, &u->v);
    rc = pn_handshake_read(u->hs, (const uint8_t *)body, len, &e);
    u->v.busy = 0;
    if (rc) return fail_verify(L, &u->v, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_hs_is_done(lua_State *L) {
    lua_pushboolean(L, pn_handshake_next(check_hs(L)->hs) == PN_HANDSHAKE_DONE);
    return 1;
}

static int l_hs_hash(lua_State *L) {
    uint8_t h[PN_NOISE_HASHLEN];
    pn_handshake_hash(check_hs(L)->hs, h);
    lua_pushlstring(L, (const char *)h, sizeof h);
    return 1;
}

static int l_hs_ck(lua_State *L) {
    uint8_t ck[PN_NOISE_HASHLEN];
    pn_err e = {0};
    if (pn_handshake_chaining_key(check_hs(L)->hs, ck, &e) != 0) return pn_glue_fail(L, &e);
    lua_pushlstring(L, (const char *)ck, sizeof ck);
    sodium_memzero(ck, sizeof ck);
    return 1;
}

static int l_hs_remote(lua_State *L) {
    uint8_t rs[PN_NOISE_KEYLEN];
    pn_err e = {0};
    if (pn_handshake_remote_static(check_hs(L)->hs, rs, &e) != 0) return pn_glue_fail(L, &e);
    lua_pushlstring(L, (const char *)rs, sizeof rs);
    return 1;
}

static int l_hs_seal(lua_State *L) {
    lhandshake *u = check_hs(L);
    size_t len, outlen = 0, cap;
    const char *pt = luaL_checklstring(L, 2, &len);
    pn_err e = {0};
    luaL_Buffer b;
    uint8_t *out;
    cap = len <= PN_TRANSPORT_PLAINTEXT_MAX ? len + PN_TRANSPORT_TAG : 0;
    out = (uint8_t *)luaL_buffinitsize(L, &b, cap);
    if (pn_handshake_seal(u->hs, (const uint8_t *)pt, len, out, cap, &outlen, &e) != 0)
        return pn_glue_fail(L, &e);
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static int l_hs_open(lua_State *L) {
    lhandshake *u = check_hs(L);
    size_t len, outlen = 0, cap;
    const char *body = luaL_checklstring(L, 2, &len);
    pn_err e = {0};
    luaL_Buffer b;
    uint8_t *out;
    cap = len <= PN_FRAME_CAP_MAX ? len : 0;
    out = (uint8_t *)luaL_buffinitsize(L, &b, cap);
    if (pn_handshake_open(u->hs, (const uint8_t *)body, len, out, cap, &outlen, &e) != 0)
        return pn_glue_fail(L, &e);
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static int l_hs_nonces(lua_State *L) {
    lhandshake *u = check_hs(L);
    lua_pushinteger(L, (lua_Integer)pn_handshake_send_nonce(u->hs));
    lua_pushinteger(L, (lua_Integer)pn_handshake_recv_nonce(u->hs));
    return 2;
}

static int l_hs_gc(lua_State *L) {
    lhandshake *u = luaL_checkudata(L, 1, HANDSHAKE_MT);
    if (u->v.busy) return luaL_error(L, "peernet.handshake: cannot close it while it is in use");
    pn_handshake_free(u->hs);
    u->hs = NULL;
    return 0;
}

/* ---- registration -------------------------------------------------------- */

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc) {
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}

static void set_int(lua_State *L, const char *sub, const char *name, lua_Integer v) {
    lua_getfield(L, -1, sub);
    lua_pushinteger(L, v);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

void pn_bind_noise_open(lua_State *L) {
    static const luaL_Reg cipher_methods[] = {{"encrypt", l_cipher_encrypt},
                                              {"decrypt", l_cipher_decrypt},
                                              {"nonce", l_cipher_nonce},
                                              {"set_nonce", l_cipher_set_nonce},
                                              {NULL, NULL}};
    static const luaL_Reg noise_methods[] = {
        {"write_message", l_noise_write}, {"read_message", l_noise_read},
        {"is_done", l_noise_is_done},     {"handshake_hash", l_noise_hash},
        {"chaining_key", l_noise_ck},     {"remote_static", l_noise_remote},
        {"split", l_noise_split},         {NULL, NULL}};
    static const luaL_Reg hs_methods[] = {{"next", l_hs_next},
                                          {"write", l_hs_write},
                                          {"read", l_hs_read},
                                          {"is_done", l_hs_is_done},
                                          {"handshake_hash", l_hs_hash},
                                          {"chaining_key", l_hs_ck},
                                          {"remote_static", l_hs_remote},
                                          {"seal", l_hs_seal},
                                          {"open", l_hs_open},
                                          {"nonces", l_hs_nonces},
                                          {NULL, NULL}};
    static const luaL_Reg noise_fns[] = {
        {"new", l_noise_new}, {"cipher", l_cipher_new}, {"hash", l_hash}, {NULL, NULL}};
    static const luaL_Reg hs_fns[] = {{"new", l_hs_new}, {NULL, NULL}};

    new_class(L, CIPHER_MT, cipher_methods, l_cipher_gc);
    new_class(L, NOISE_MT, noise_methods, l_noise_gc);
    new_class(L, HANDSHAKE_MT, hs_methods, l_hs_gc);

    pn_glue_submodule(L, "noise", noise_fns);
    lua_getfield(L, -1, "noise");
    lua_pushliteral(L, PN_NOISE_PROTOCOL_NAME);
    lua_setfield(L, -2, "PROTOCOL_NAME");
    lua_pop(L, 1);
    set_int(L, "noise", "MSG_MAX", PN_NOISE_MSG_MAX);

    pn_glue_submodule(L, "handshake", hs_fns);
    set_int(L, "handshake", "M1_BODY", PN_HANDSHAKE_M1_BODY);
    set_int(L, "handshake", "M2_BODY", PN_HANDSHAKE_M2_BODY);
    set_int(L, "handshake", "M3_BODY", PN_HANDSHAKE_M3_BODY);
    set_int(L, "handshake", "TRANSPORT_BODY_MAX", PN_FRAME_CAP_MAX);
    set_int(L, "handshake", "TAG", PN_TRANSPORT_TAG);
}
