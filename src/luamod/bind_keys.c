/*
 * peernet.keys: identity keypairs and key text forms.
 *
 *   keys.generate()        -> keypair
 *   keys.from_secret(raw)  -> keypair | nil, err      (raw: 32-byte private key)
 *   keys.load(path)        -> keypair | nil, err
 *   keys.parse(text)       -> raw 32 bytes | nil, err (hex, base64, base64url)
 *   keys.hex(raw) / keys.base64(raw) / keys.base64url(raw) / keys.fingerprint(raw)
 *
 * A keypair ("peernet.keypair") has public(), public_hex(), fingerprint(),
 * save(path) -> true | nil, err, and secret() -> raw private key. secret()
 * exists for tests and trusted run scripts (moving an identity); handler
 * sandboxes must never be given a keypair. The private key lives in
 * sodium_malloc memory and is wiped on __gc and __close (so
 * `local kp <close> = keys.load(p)` wipes it at scope exit).
 */
#include <string.h>

#include <sodium.h>

#include "bind.h"
#include "lua/glue.h"
#include "core/keypair.h"

#define KEYPAIR_MT "peernet.keypair"

typedef struct lkeypair {
    pn_keypair *kp; /* NULL once wiped */
} lkeypair;

static pn_keypair *check_keypair(lua_State *L, int idx) {
    lkeypair *u = luaL_checkudata(L, idx, KEYPAIR_MT);
    if (!u->kp) luaL_argerror(L, idx, "keypair was closed");
    return u->kp;
}

/* Pushes a new, empty keypair userdata and returns its secret storage. */
static pn_keypair *push_keypair(lua_State *L) {
    lkeypair *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->kp = NULL;
    luaL_setmetatable(L, KEYPAIR_MT);
    u->kp = pn_keypair_new();
    if (!u->kp) luaL_error(L, "peernet.keys: out of locked memory for a keypair");
    return u->kp;
}

static const uint8_t *check_raw_key(lua_State *L, int idx) {
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    if (len != PN_KEY_LEN) luaL_argerror(L, idx, "expected a raw 32-byte key");
    return (const uint8_t *)s;
}

static int l_generate(lua_State *L) {
    pn_err e;
    pn_keypair *kp = push_keypair(L);
    if (pn_keypair_generate(kp, &e) != PN_OK) return pn_glue_fail(L, &e);
    return 1;
}

static int l_from_secret(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    pn_err e;
    if (len != PN_KEY_LEN) {
        pn_err_set(&e, PN_EINVAL, "a private key is 32 bytes, got %zu", len);
        return pn_glue_fail(L, &e);
    }
    pn_keypair *kp = push_keypair(L);
    if (pn_keypair_from_secret(kp, (const uint8_t *)s, &e) != PN_OK) return pn_glue_fail(L, &e);
    return 1;
}

static int l_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    pn_err e;
    pn_keypair *kp = push_keypair(L);
    if (pn_keypair_load(kp, path, &e) != PN_OK) return pn_glue_fail(L, &e);
    return 1;
}

static int l_parse(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    uint8_t key[PN_KEY_LEN];
    pn_err e;
    if (pn_key_parse(key, s, len, &e) != PN_OK) return pn_glue_fail(L, &e);
    lua_pushlstring(L, (const char *)key, sizeof key);
    return 1;
}

static int l_hex(lua_State *L) {
    char out[PN_KEY_HEX_LEN + 1];
    pn_key_hex(out, check_raw_key(L, 1));
    lua_pushstring(L, out);
    return 1;
}

static int l_base64(lua_State *L) {
    char out[PN_KEY_B64_LEN + 1];
    pn_key_base64(out, check_raw_key(L, 1));
    lua_pushstring(L, out);
    return 1;
}

static int l_base64url(lua_State *L) {
    char out[PN_KEY_B64URL_LEN + 1];
    pn_key_base64url(out, check_raw_key(L, 1));
    lua_pushstring(L, out);
    return 1;
}

static int l_fingerprint(lua_State *L) {
    char out[PN_KEY_FINGERPRINT_LEN + 1];
    pn_key_fingerprint(out, check_raw_key(L, 1));
    lua_pushstring(L, out);
    return 1;
}

/* ---- keypair methods ---------------------------------------------------- */

static int kp_public(lua_State *L) {
    pn_keypair *kp = check_keypair(L, 1);
    lua_pushlstring(L, (const char *)kp->pub, PN_KEY_LEN);
    return 1;
}

static int kp_public_hex(lua_State *L) {
    char out[PN_KEY_HEX_LEN + 1];
    pn_key_hex(out, check_keypair(L, 1)->pub);
    lua_pushstring(L, out);
    return 1;
}

static int kp_fingerprint(lua_State *L) {
    char out[PN_KEY_FINGERPRINT_LEN + 1];
    pn_key_fingerprint(out, check_keypair(L, 1)->pub);
    lua_pushstring(L, out);
    return 1;
}

static int kp_secret(lua_State *L) {
    pn_keypair *kp = check_keypair(L, 1);
    lua_pushlstring(L, (const char *)kp->priv, PN_KEY_LEN);
    return 1;
}

static int kp_save(lua_State *L) {
    pn_keypair *kp = check_keypair(L, 1);
    const char *path = luaL_checkstring(L, 2);
    pn_err e;
    if (pn_keypair_save(kp, path, &e) != PN_OK) return pn_glue_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int kp_gc(lua_State *L) {
    lkeypair *u = luaL_checkudata(L, 1, KEYPAIR_MT);
    pn_keypair_free(u->kp);
    u->kp = NULL;
    return 0;
}

static int kp_tostring(lua_State *L) {
    lkeypair *u = luaL_checkudata(L, 1, KEYPAIR_MT);
    char out[PN_KEY_HEX_LEN + 1];
    if (!u->kp) {
        lua_pushliteral(L, "peernet.keypair (closed)");
        return 1;
    }
    pn_key_hex(out, u->kp->pub);
    lua_pushfstring(L, "peernet.keypair %s", out);
    return 1;
}

static const luaL_Reg keypair_methods[] = {{"public", kp_public},
                                           {"public_hex", kp_public_hex},
                                           {"fingerprint", kp_fingerprint},
                                           {"secret", kp_secret},
                                           {"save", kp_save},
                                           {NULL, NULL}};

static const luaL_Reg keypair_meta[] = {
    {"__gc", kp_gc}, {"__close", kp_gc}, {"__tostring", kp_tostring}, {NULL, NULL}};

static const luaL_Reg keys_fns[] = {{"generate", l_generate},
                                    {"from_secret", l_from_secret},
                                    {"load", l_load},
                                    {"parse", l_parse},
                                    {"hex", l_hex},
                                    {"base64", l_base64},
                                    {"base64url", l_base64url},
                                    {"fingerprint", l_fingerprint},
                                    {NULL, NULL}};

void pn_bind_keys_open(lua_State *L) {
    if (luaL_newmetatable(L, KEYPAIR_MT)) {
        luaL_setfuncs(L, keypair_meta, 0);
        luaL_newlib(L, keypair_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "peernet.keypair"); /* hides the metatable from getmetatable */
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    pn_glue_submodule(L, "keys", keys_fns);
}
