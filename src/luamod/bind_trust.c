/*
 * peernet.trust: the trust list file (format in src/core/trust.h).
 *
 *   trust.open(path [, {lock = true, wait_ms = N}]) -> store | nil, err
 *                                  (a missing file is an empty store; lock: the store
 *                                  holds the file's writer lock until close/gc, waiting
 *                                  at most wait_ms, default 10000, for another writer)
 *   store:add(key, {label=, addr=, added=}) -> true | nil, err
 *   store:remove(key_or_label)     -> true | nil, err
 *   store:get(key_or_label)        -> {key=hex, label=, addr=, added=} | nil
 *   store:list()                   -> array of those, in file order
 *   store:count(), #store          -> number of peers
 *   store:save()                   -> true | nil, err  (under the lock; refused when the
 *                                  file changed on disk since it was read)
 *   store:close()                  -> releases the lock (the store stays readable)
 *   store:changed_on_disk()        -> boolean
 *   store:path()                   -> the file's path
 *
 * key is any key text form (hex, base64, base64url). In the entries, absent
 * fields are nil and `added` is the RFC 3339 UTC text as in the file.
 * add() on a key already present updates it: a label/addr given replaces
 * the old one, "-" clears it, nil keeps it; its `added` is never changed.
 * opts.added (used for a new key) is Unix seconds (integer),
 * "YYYY-MM-DDTHH:MM:SSZ", or "-" for none; nil means now.
 */
#include <string.h>
#include <time.h>

#include "bind.h"
#include "lua/glue.h"
#include "core/file.h"
#include "core/trust.h"

#define STORE_MT "peernet.trust"

typedef struct lstore {
    pn_trust *t; /* NULL after __gc */
} lstore;

static pn_trust *check_store(lua_State *L, int idx) {
    lstore *u = luaL_checkudata(L, idx, STORE_MT);
    if (!u->t) luaL_argerror(L, idx, "trust store was closed");
    return u->t;
}

static void push_entry(lua_State *L, const pn_trust_entry *en) {
    char hex[PN_KEY_HEX_LEN + 1], ts[PN_UTC_LEN + 1];
    lua_createtable(L, 0, 4);
    pn_key_hex(hex, en->key);
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "key");
    if (en->label[0]) {
        lua_pushstring(L, en->label);
        lua_setfield(L, -2, "label");
    }
    if (en->addr[0]) {
        lua_pushstring(L, en->addr);
        lua_setfield(L, -2, "addr");
    }
    if (en->added != PN_TRUST_NO_TIME && pn_utc_format(en->added, ts, NULL) == PN_OK) {
        lua_pushstring(L, ts);
        lua_setfield(L, -2, "added");
    }
}

/* A key-or-label argument as a C string; NULL if it holds a NUL byte (so it
 * can match nothing). */
static const char *check_name(lua_State *L, int idx) {
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    return strlen(s) == len ? s : NULL;
}

/* opts.lock / opts.wait_ms of open(). */
static int open_opts(lua_State *L, int idx, unsigned *wait_ms) {
    int lock = 0;
    *wait_ms = PN_FILE_LOCK_WAIT_MS;
    if (lua_isnoneornil(L, idx)) return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "lock");
    lock = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "wait_ms") != LUA_TNIL) {
        int ok;
        lua_Integer ms = lua_tointegerx(L, -1, &ok);
        luaL_argcheck(L, ok && ms >= 0 && ms <= 3600000, idx,
                      "wait_ms must be an integer from 0 to 3600000");
        *wait_ms = (unsigned)ms;
    }
    lua_pop(L, 1);
    return lock;
}

static int l_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    unsigned wait_ms;
    int lock = open_opts(L, 2, &wait_ms);
    pn_err e;
    lstore *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->t = NULL;
    luaL_setmetatable(L, STORE_MT);
    int rc = lock ? pn_trust_load_locked(&u->t, path, wait_ms, &e) : pn_trust_load(&u->t, path, &e);
    if (rc != PN_OK) return pn_glue_fail(L, &e);
    return 1;
}

/* Reads opts[name] as an optional string field; *out NULL when nil. */
static int opt_text(lua_State *L, int opts, const char *name, const char **out, pn_err *e) {
    size_t len;
    *out = NULL;
    if (lua_isnoneornil(L, opts)) return PN_OK;
    int ty = lua_getfield(L, opts, name);
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return PN_OK;
    }
    if (ty != LUA_TSTRING)
        luaL_error(L, "bad option '%s' (string expected, got %s)", name, lua_typename(L, ty));
    *out = lua_tolstring(L, -1, &len);
    lua_pop(L, 1); /* still referenced by opts, so the pointer stays valid */
    if (strlen(*out) != len) return pn_err_set(e, PN_EINVAL, "bad %s: contains a NUL byte", name);
    return PN_OK;
}

static int opt_time(lua_State *L, int opts, int64_t *out, pn_err *e) {
    *out = (int64_t)time(NULL);
    if (lua_isnoneornil(L, opts)) return PN_OK;
    int ty = lua_getfield(L, opts, "added");
    int rc = PN_OK;
    if (ty == LUA_TNUMBER) {
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_error(L, "bad option 'added' (whole seconds expected)");
        *out = (int64_t)v;
    } else if (ty == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (len == 1 && s[0] == '-')
            *out = PN_TRUST_NO_TIME;
        else
            rc = pn_utc_parse(s, len, out, e);
    } else if (ty != LUA_TNIL) {
        luaL_error(L, "bad option 'added' (integer or string expected, got %s)",
                   lua_typename(L, ty));
    }
    lua_pop(L, 1);
    return rc;
}

static int s_add(lua_State *L) {
    pn_trust *t = check_store(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    const char *label, *addr;
    uint8_t key[PN_KEY_LEN];
    int64_t added;
    pn_err e;
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    if (pn_key_parse(key, text, len, &e) != PN_OK || opt_text(L, 3, "label", &label, &e) != 0 ||
        opt_text(L, 3, "addr", &addr, &e) != 0 || opt_time(L, 3, &added, &e) != 0 ||
        pn_trust_add(t, key, label, addr, added, &e) < 0)
        return pn_glue_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int s_remove(lua_State *L) {
    pn_trust *t = check_store(L, 1);
    const char *name = check_name(L, 2);
    pn_err e;
    if (!name) {
        pn_err_set(&e, PN_ENOTFOUND, "not in the trust list");
        return pn_glue_fail(L, &e);
    }
    if (pn_trust_remove(t, name, &e) != PN_OK) return pn_glue_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int s_get(lua_State *L) {
    pn_trust *t = check_store(L, 1);
    const char *name = check_name(L, 2);
    const pn_trust_entry *en = name ? pn_trust_find(t, name) : NULL;
    if (!en) {
        lua_pushnil(L);
        return 1;
    }
    push_entry(L, en);
    return 1;
}

static int s_list(lua_State *L) {
    pn_trust *t = check_store(L, 1);
    size_t n = pn_trust_count(t);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_entry(L, pn_trust_at(t, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int s_count(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)pn_trust_count(check_store(L, 1)));
    return 1;
}

static int s_save(lua_State *L) {
    pn_trust *t = check_store(L, 1);
    pn_err e;
    if (pn_trust_save(t, &e) != PN_OK) return pn_glue_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int s_changed(lua_State *L) {
    lua_pushboolean(L, pn_trust_changed_on_disk(check_store(L, 1)));
    return 1;
}

static int s_path(lua_State *L) {
    const char *p = pn_trust_path(check_store(L, 1));
    if (p)
        lua_pushstring(L, p);
    else
        lua_pushnil(L);
    return 1;
}

static int s_close(lua_State *L) {
    lstore *u = luaL_checkudata(L, 1, STORE_MT);
    pn_trust_unlock(u->t);
    return 0;
}

static int s_gc(lua_State *L) {
    lstore *u = luaL_checkudata(L, 1, STORE_MT);
    pn_trust_free(u->t);
    u->t = NULL;
    return 0;
}

static int s_tostring(lua_State *L) {
    lstore *u = luaL_checkudata(L, 1, STORE_MT);
    if (!u->t) {
        lua_pushliteral(L, "peernet.trust (closed)");
        return 1;
    }
    lua_pushfstring(L, "peernet.trust %s (%d peers)",
                    pn_trust_path(u->t) ? pn_trust_path(u->t) : "(memory)",
                    (int)pn_trust_count(u->t));
    return 1;
}

static const luaL_Reg store_methods[] = {
    {"add", s_add},     {"remove", s_remove}, {"get", s_get},   {"list", s_list},
    {"count", s_count}, {"save", s_save},     {"path", s_path}, {"changed_on_disk", s_changed},
    {"close", s_close}, {NULL, NULL}};

static const luaL_Reg store_meta[] = {
    {"__gc", s_gc}, {"__len", s_count}, {"__tostring", s_tostring}, {NULL, NULL}};

static const luaL_Reg trust_fns[] = {{"open", l_open}, {NULL, NULL}};

void pn_bind_trust_open(lua_State *L) {
    if (luaL_newmetatable(L, STORE_MT)) {
        luaL_setfuncs(L, store_meta, 0);
        luaL_newlib(L, store_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "peernet.trust");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    pn_glue_submodule(L, "trust", trust_fns);
}
