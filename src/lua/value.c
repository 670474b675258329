/*
 * The Lua face of ETF values (docs/values.md):
 *
 *   peernet.atom(name)       --> interned atom value (== by identity, a fine table key)
 *   peernet.tuple(...)       --> table marked as a tuple, fields 1..n and n
 *   peernet.null             --> atom nil inside containers
 *   peernet.is_atom(v), peernet.is_tuple(v) --> boolean
 *   peernet.etf.encode(v [, {max = bytes}])              --> bytes | nil, err
 *   peernet.etf.decode(bytes [, {exact = bool, max = bytes, terms = n}]) --> value | nil, err
 *   peernet.bigint("18446744073709551615") (also peernet.etf.bigint) --> integer or bigint
 *   peernet.is_bigint(v)     --> boolean; bigints have tostring, ==, <, <= and nothing else
 *   peernet.etf.map([t]), peernet.etf.is_map(v)  --> t marked: always a map, even empty
 *
 * decode returns exactly one value on success (nil for the atom nil, false
 * for false), and nil plus a message on failure: callers that can receive
 * nil test the second result.
 *
 * Tables are read with raw access only; the one metatable consulted is the
 * tuple marker, and our own userdata are told apart by their metatables.
 */
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "glue.h"
#include "sandbox.h"
#include "value.h"
#include "weak.h"

#define ATOMS_KEY "peernet.atoms"     /* registry: name -> atom, weak values */
#define NULL_KEY "peernet.null_value" /* registry: the one peernet.null */
/* registry[&refs_key]: the values above and the metatables, by REF_* */
static const char refs_key = 0;
enum {
    REF_NULL = 1,
    REF_TUPLE_MT,
    REF_ATOMS,
    REF_MAP_MT,
    REF_ATOM_MT,
    REF_NULL_MT,
    REF_BIGINT_MT,
    REF_N = REF_BIGINT_MT
};
static const char *const ref_names[REF_N] = {NULL_KEY,          PN_VALUE_TUPLE_MT, ATOMS_KEY,
                                             PN_VALUE_MAP_MT,   PN_VALUE_ATOM_MT,  PN_VALUE_NULL_MT,
                                             PN_VALUE_BIGINT_MT};
#define BUF_MT "peernet.etf_buf" /* frees an encode buffer if a Lua error unwinds */
#define KEY_DESC_MAX 48

typedef struct {
    size_t len;
    char name[]; /* NUL-terminated for convenience; may hold no NUL otherwise */
} latom;

/* An integer outside int64 (push_bigint keeps the ones inside as Lua
 * integers): so len >= 8, and the magnitude has no high zero byte. */
typedef struct {
    int neg;
    size_t len;
    uint8_t mag[]; /* little-endian, len <= PN_BIGINT_MAX_BYTES */
} lbigint;

/* ---- registry objects ------------------------------------------------- */

static int atom_tostring(lua_State *L) {
    latom *a = luaL_checkudata(L, 1, PN_VALUE_ATOM_MT);
    lua_pushlstring(L, a->name, a->len);
    return 1;
}

static int null_tostring(lua_State *L) {
    lua_pushliteral(L, "peernet.null");
    return 1;
}

static int bigint_tostring(lua_State *L) {
    lbigint *b = luaL_checkudata(L, 1, PN_VALUE_BIGINT_MT);
    char buf[PN_BIGINT_DECIMAL_MAX];
    size_t n;
    pn_err e;
    if (pn_bigint_to_decimal(b->neg, b->mag, b->len, buf, sizeof buf, &n, &e) < 0)
        return luaL_error(L, "%s", e.msg); /* cannot happen: bigints are bounded */
    lua_pushlstring(L, buf, n);
    return 1;
}

/* A bigint or an integer as sign and magnitude (an integer's is written to
 * tmp); 0 if it is neither. */
static int to_signmag(lua_State *L, int idx, int *neg, const uint8_t **mag, size_t *len,
                      uint8_t tmp[8]) {
    lbigint *b = luaL_testudata(L, idx, PN_VALUE_BIGINT_MT);
    if (b) {
        *neg = b->neg;
        *mag = b->mag;
        *len = b->len;
        return 1;
    }
    if (lua_isinteger(L, idx)) {
        *len = pn_bigint_from_i64((int64_t)lua_tointeger(L, idx), tmp, neg);
        *mag = tmp;
        return 1;
    }
    return 0;
}

/* Sets *c to the order of the values at 1 and 2; 0 if either is neither a
 * bigint nor an integer. */
static int bigint_order(lua_State *L, int *c) {
    int an, bn;
    const uint8_t *am, *bm;
    size_t al, bl;
    uint8_t at[8], bt[8];
    if (!to_signmag(L, 1, &an, &am, &al, at) || !to_signmag(L, 2, &bn, &bm, &bl, bt)) return 0;
    *c = pn_bigint_compare(an, am, al, bn, bm, bl);
    return 1;
}

static int bigint_cmp(lua_State *L) {
    int c;
    if (!bigint_order(L, &c))
        return luaL_error(L, "a bigint compares only with integers and bigints (not %s)",
                          luaL_typename(L, luaL_testudata(L, 1, PN_VALUE_BIGINT_MT) ? 2 : 1));
    return c;
}

static int bigint_eq(lua_State *L) {
    int c;
    /* == never raises: a bigint is simply unequal to anything else. */
    lua_pushboolean(L, bigint_order(L, &c) && c == 0);
    return 1;
}

static int bigint_lt(lua_State *L) {
    lua_pushboolean(L, bigint_cmp(L) < 0);
    return 1;
}

static int bigint_le(lua_State *L) {
    lua_pushboolean(L, bigint_cmp(L) <= 0);
    return 1;
}

/* Makes a metatable whose __metatable hides it: scripts sharing a state
 * cannot rewrite the marker every other value of its kind relies on. */
static int new_mt(lua_State *L, const char *name, const luaL_Reg *fns) {
    if (!luaL_newmetatable(L, name)) return 0;
    if (fns) luaL_setfuncs(L, fns, 0);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__metatable");
    return 1;
}

void pn_value_init(lua_State *L) {
    static const luaL_Reg atom_fns[] = {{"__tostring", atom_tostring}, {NULL, NULL}};
    static const luaL_Reg null_fns[] = {{"__tostring", null_tostring}, {NULL, NULL}};
    static const luaL_Reg bigint_fns[] = {{"__tostring", bigint_tostring},
                                          {"__eq", bigint_eq},
                                          {"__lt", bigint_lt},
                                          {"__le", bigint_le},
                                          {NULL, NULL}};
    luaL_checkstack(L, 4, "peernet: value init");
    new_mt(L, PN_VALUE_ATOM_MT, atom_fns);
    lua_pop(L, 1);
    new_mt(L, PN_VALUE_TUPLE_MT, NULL);
    lua_pop(L, 1);
    new_mt(L, PN_VALUE_MAP_MT, NULL);
    lua_pop(L, 1);
    new_mt(L, PN_VALUE_NULL_MT, null_fns);
    lua_pop(L, 1);
    new_mt(L, PN_VALUE_BIGINT_MT, bigint_fns);
    lua_pop(L, 1);
    pn_weak_push(L, ATOMS_KEY, "v");
    lua_pop(L, 1);
    if (lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        lua_newuserdatauv(L, 0, 0);
        luaL_setmetatable(L, PN_VALUE_NULL_MT);
        lua_setfield(L, LUA_REGISTRYINDEX, NULL_KEY);
    } else {
        lua_pop(L, 1);
    }
    /* The same values in one array at a light key, for the codec's every
     * call: a lookup by name hashes and compares the name each time (it
     * showed in the profile of serve). */
    lua_createtable(L, REF_N, 0);
    for (int i = 1; i <= REF_N; i++) {
        lua_getfield(L, LUA_REGISTRYINDEX, ref_names[i - 1]);
        lua_rawseti(L, -2, i);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &refs_key);
}

static void ensure_init(lua_State *L) {
    luaL_checkstack(L, 1, "peernet: value init");
    int t = lua_rawgetp(L, LUA_REGISTRYINDEX, &refs_key);
    lua_pop(L, 1);
    if (t != LUA_TTABLE) pn_value_init(L);
}

/* Pushes the array of refs_key (made at the first use): returns its index. */
static int push_refs(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &refs_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        pn_value_init(L);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &refs_key);
    }
    return lua_gettop(L);
}

/* Interned: one userdata per name while any is alive, so atoms compare and
 * index tables by identity. atoms is an absolute index of the atom table. */
static void push_atom_in(lua_State *L, int atoms, const char *name, size_t len) {
    luaL_checkstack(L, 3, "peernet: atoms");
    lua_pushlstring(L, name, len);
    if (lua_rawget(L, atoms) == LUA_TUSERDATA) return;
    lua_pop(L, 1);
    latom *a = lua_newuserdatauv(L, offsetof(latom, name) + len + 1, 0);
    a->len = len;
    memcpy(a->name, name, len);
    a->name[len] = '\0';
    luaL_setmetatable(L, PN_VALUE_ATOM_MT);
    lua_pushlstring(L, name, len);
    lua_pushvalue(L, -2);
    lua_rawset(L, atoms);
}

int pn_value_push_atom(lua_State *L, const char *name, size_t len, pn_err *e) {
    if (!pn_etf_atom_name_ok(name, len))
        return pn_err_set(e, PN_EINVAL, "atom name must be valid UTF-8 of at most %d characters",
                          PN_ETF_ATOM_MAX_CHARS);
    ensure_init(L);
    luaL_checkstack(L, 2, "peernet: atoms");
    lua_getfield(L, LUA_REGISTRYINDEX, ATOMS_KEY);
    push_atom_in(L, lua_gettop(L), name, len);
    lua_remove(L, -2);
    return 0;
}

const char *pn_value_atom_name(lua_State *L, int idx, size_t *len) {
    latom *a = luaL_testudata(L, idx, PN_VALUE_ATOM_MT);
    if (!a) return NULL;
    if (len) *len = a->len;
    return a->name;
}

/* Values outside int64 only: inside it an integer is the one spelling.
 * len <= PN_BIGINT_MAX_BYTES (the reader and the parser bound it). */
static void push_bigint(lua_State *L, int neg, const uint8_t *mag, size_t len) {
    len = pn_bigint_trim(mag, len);
    uint64_t m = 0;
    for (size_t k = len; k > 0 && len <= 8; k--)
        m = m << 8 | mag[k - 1];
    if (len <= 8 && !neg && m <= (uint64_t)INT64_MAX) {
        lua_pushinteger(L, (lua_Integer)m);
    } else if (len <= 8 && neg && m <= (uint64_t)INT64_MAX + 1) {
        lua_pushinteger(L, m == (uint64_t)INT64_MAX + 1 ? LUA_MININTEGER : -(lua_Integer)m);
    } else {
        lbigint *b = lua_newuserdatauv(L, offsetof(lbigint, mag) + len, 0);
        b->neg = neg;
        b->len = len;
        memcpy(b->mag, mag, len);
        luaL_setmetatable(L, PN_VALUE_BIGINT_MT);
    }
}

/* ---- decode ----------------------------------------------------------- */

typedef struct {
    pn_etf_type kind; /* TUPLE, LIST or MAP */
    uint64_t n;       /* children */
    uint64_t i;       /* children attached so far */
} build_frame;

static void describe_key(lua_State *L, int idx, char *out, size_t cap) {
    switch (lua_type(L, idx)) {
        case LUA_TSTRING: {
            size_t n;
            const char *s = lua_tolstring(L, idx, &n);
            snprintf(out, cap, "the string \"%.*s\"%s", (int)(n > 32 ? 32 : n), s,
                     n > 32 ? "..." : "");
            break;
        }
        case LUA_TNUMBER:
            if (lua_isinteger(L, idx))
                snprintf(out, cap, "the number %lld", (long long)lua_tointeger(L, idx));
            else
                snprintf(out, cap, "the number %.17g", (double)lua_tonumber(L, idx));
            break;
        case LUA_TBOOLEAN:
            snprintf(out, cap, "%s", lua_toboolean(L, idx) ? "true" : "false");
            break;
        default: {
            size_t n;
            const char *a = pn_value_atom_name(L, idx, &n);
            if (a)
                snprintf(out, cap, "the atom %.*s", (int)(n > 32 ? 32 : n), a);
            else
                snprintf(out, cap, "a %s", luaL_typename(L, idx));
        }
    }
}

/* refs: absolute index of [null, tuple metatable, atom table, map metatable]. */
static void push_atom_item(lua_State *L, const pn_etf_item *it, int exact, int inside, int refs) {
    char name[PN_ETF_ATOM_MAX_UTF8];
    size_t n = pn_etf_atom_utf8(it, name);
    if (n == 4 && memcmp(name, "true", 4) == 0)
        lua_pushboolean(L, 1);
    else if (n == 5 && memcmp(name, "false", 5) == 0)
        lua_pushboolean(L, 0);
    else if (n == 3 && memcmp(name, "nil", 3) == 0) {
        if (inside)
            lua_pushvalue(L, refs);
        else
            lua_pushnil(L);
    } else if (exact)
        push_atom_in(L, refs + 2, name, n);
    else
        lua_pushlstring(L, name, n);
}

static int table_size_hint(uint64_t n) {
    return n > (uint64_t)INT_MAX ? 0 : (int)n;
}

/* Pushes the item's value; a container starts empty. refs: as for
 * push_atom_item, then the tuple metatable at refs + 1, the map one at
 * refs + 3. */
static void push_item(lua_State *L, const pn_etf_item *it, int exact, int inside, int refs) {
    switch (it->type) {
        case PN_ETF_INT:
            lua_pushinteger(L, (lua_Integer)it->i);
            break;
        case PN_ETF_BIG: /* exact in either mode: a float would lose digits */
            push_bigint(L, it->neg, it->ptr, it->len);
            break;
        case PN_ETF_FLOAT:
            lua_pushnumber(L, (lua_Number)it->f);
            break;
        case PN_ETF_ATOM:
            push_atom_item(L, it, exact, inside, refs);
            break;
        case PN_ETF_BINARY:
            lua_pushlstring(L, (const char *)it->ptr, it->len);
            break;
        case PN_ETF_STRING:
            lua_createtable(L, (int)it->len, 0);
            for (size_t k = 0; k < it->len; k++) {
                lua_pushinteger(L, it->ptr[k]);
                lua_rawseti(L, -2, (lua_Integer)k + 1);
            }
            break;
        case PN_ETF_NIL:
            lua_newtable(L);
            break;
        case PN_ETF_TUPLE:
            lua_createtable(L, table_size_hint(it->arity), 1);
            lua_pushvalue(L, refs + 1);
            lua_setmetatable(L, -2);
            lua_pushliteral(L, "n");
            lua_pushinteger(L, (lua_Integer)it->arity);
            lua_rawset(L, -3);
            break;
        case PN_ETF_LIST:
            lua_createtable(L, table_size_hint(it->arity), 0);
            break;
        case PN_ETF_MAP:
            lua_createtable(L, 0, table_size_hint(it->arity));
            lua_pushvalue(L, refs + 3);
            lua_setmetatable(L, -2);
            break;
    }
}

/* A complete value is on top: attaches it to the open containers in
 * fr[0..*top), closing the finished ones. -1 (e filled) when it is a map
 * key already there in Lua. */
static int attach(lua_State *L, build_frame *fr, int *top, pn_err *e) {
    while (*top > 0) {
        build_frame *f = &fr[*top - 1];
        if (f->kind == PN_ETF_MAP && (f->i & 1) == 0) {
            lua_pushvalue(L, -1);
            if (lua_rawget(L, -3) != LUA_TNIL) {
                char what[KEY_DESC_MAX + 16];
                describe_key(L, -2, what, sizeof what);
                return pn_err_set(e, PN_EINVAL,
                                  "etf: map has two keys that are the same in Lua: %s "
                                  "(an atom and a binary of one text, or 1 and 1.0)",
                                  what);
            }
            lua_pop(L, 1);
            f->i++;
            return 0; /* the key waits on the stack for its value */
        }
        if (f->kind == PN_ETF_MAP)
            lua_rawset(L, -3);
        else
            lua_rawseti(L, -2, (lua_Integer)(f->i + 1));
        f->i++;
        if (f->i < f->n) return 0;
        (*top)--;
    }
    return 0;
}

int pn_value_push(lua_State *L, const uint8_t *term, size_t len, int exact, pn_err *e) {
    build_frame fr[PN_ETF_MAX_DEPTH];
    int top = 0, rc;
    int base = lua_gettop(L);
    luaL_checkstack(L, 9, "peernet: decoding");
    /* A binary or a number alone (most args) needs none of the refs. */
    int scalar = len > 0 && (term[0] == PN_ETF_TAG_BINARY || term[0] == PN_ETF_TAG_SMALL_INTEGER ||
                             term[0] == PN_ETF_TAG_INTEGER || term[0] == PN_ETF_TAG_NEW_FLOAT);
    int refs = 0;
    if (!scalar) {
        int t = push_refs(L);
        for (int i = REF_NULL; i <= REF_MAP_MT; i++)
            lua_rawgeti(L, t, i);
        refs = t + 1;
    }

    pn_etf_reader r;
    pn_etf_item it;
    pn_etf_reader_init(&r, term, len);
    while ((rc = pn_etf_next(&r, &it, e)) > 0) {
        /* Each open container holds its table and maybe a key on the stack. */
        luaL_checkstack(L, 4, "peernet: decoding");
        push_item(L, &it, exact, top > 0, refs);
        if ((it.type == PN_ETF_TUPLE || it.type == PN_ETF_LIST || it.type == PN_ETF_MAP) &&
            it.arity > 0) {
            /* The reader bounds depth to PN_ETF_MAX_DEPTH, so fr cannot overflow. */
            fr[top].kind = it.type;
            fr[top].n = it.type == PN_ETF_MAP ? (uint64_t)it.arity * 2 : it.arity;
            fr[top].i = 0;
            top++;
            continue;
        }
        if ((rc = attach(L, fr, &top, e)) != 0) break;
    }
    if (rc == 0) rc = pn_etf_finish(&r, e);
    if (rc < 0) {
        lua_settop(L, base);
        return rc;
    }
    if (!scalar) {
        lua_replace(L, base + 1);
        lua_settop(L, base + 1);
    }
    return 0;
}

/* ---- encode ----------------------------------------------------------- */

typedef struct {
    pn_etf_buf *out;
    pn_err *e;
    int atom_mt, tuple_mt, null_mt, bigint_mt, map_mt; /* absolute stack indices */
    uint32_t steps; /* slots visited since the clock was last read */
} enc_ctx;

typedef struct {
    size_t koff, voff, end;
} pair_off;

typedef struct {
    const uint8_t *k;
    size_t klen;
    size_t off, len; /* the whole pair */
} pair_ref;

static int enc_value(lua_State *L, int idx, unsigned depth, enc_ctx *c);

/* The work is per slot visited, not per byte written: a table emptied of a
 * million entries still has a million slots for lua_next to walk, and
 * encodes as the one byte of []. So the encoder charges the script's
 * slice, reading the clock every PN_VALUE_CLOCK_STEPS slots and at every
 * table (one lua_next may walk all of an emptied table's slots). */
static int out_of_time(lua_State *L, enc_ctx *c) {
    if (!pn_sandbox_late(L)) return 0;
    return pn_err_set(c->e, PN_ELIMIT,
                      "etf: encoding ran past the script's CPU slice (too many table slots)");
}

static int enc_step(lua_State *L, enc_ctx *c) {
    if (++c->steps < PN_VALUE_CLOCK_STEPS) return 0;
    c->steps = 0;
    return out_of_time(L, c);
}

static int too_deep(enc_ctx *c) {
    return pn_err_set(c->e, PN_EINVAL,
                      "etf: value nested deeper than %d levels (a table that contains itself?)",
                      PN_ETF_MAX_DEPTH);
}

/* Fails early when n elements (>= 1 byte each) cannot fit. */
static int room_for(enc_ctx *c, uint64_t n) {
    pn_etf_buf *b = c->out;
    if (n > UINT32_MAX || b->len > b->max || n > b->max - b->len)
        return pn_err_set(c->e, PN_ETOOBIG, "etf: term would be larger than the limit of %zu bytes",
                          b->max);
    return 0;
}

static int mt_is(lua_State *L, int idx, int mt) {
    if (!lua_getmetatable(L, idx)) return 0;
    int same = lua_rawequal(L, -1, mt);
    lua_pop(L, 1);
    return same;
}

static int enc_tuple(lua_State *L, int idx, unsigned depth, enc_ctx *c) {
    lua_Integer n;
    lua_pushliteral(L, "n");
    int t = lua_rawget(L, idx);
    if (t == LUA_TNIL) {
        n = (lua_Integer)lua_rawlen(L, idx);
    } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0) {
        n = lua_tointeger(L, -1);
    } else {
        lua_pop(L, 1);
        return pn_err_set(c->e, PN_EINVAL, "etf: tuple field n must be a non-negative integer");
    }
    lua_pop(L, 1);
    if (n > 0 && depth >= PN_ETF_MAX_DEPTH) return too_deep(c);
    int rc = room_for(c, (uint64_t)n);
    if (rc < 0) return rc;
    rc = pn_etf_put_tuple(c->out, (uint32_t)n, c->e);
    for (lua_Integer i = 1; rc == 0 && i <= n; i++) {
        if ((rc = enc_step(L, c)) < 0) break;
        lua_rawgeti(L, idx, i); /* a hole is nil: atom nil */
        rc = enc_value(L, lua_gettop(L), depth + 1, c);
        lua_pop(L, 1);
    }
    return rc;
}

static int enc_list(lua_State *L, int idx, lua_Integer n, unsigned depth, enc_ctx *c) {
    int rc;
    int bytes = n <= (lua_Integer)PN_ETF_STRING_MAX;
    for (lua_Integer i = 1; bytes && i <= n; i++) {
        if ((rc = enc_step(L, c)) < 0) return rc;
        lua_rawgeti(L, idx, i);
        bytes = lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 && lua_tointeger(L, -1) <= 255;
        lua_pop(L, 1);
    }
    if (bytes) {
        /* What term_to_binary does with a list of bytes: STRING_EXT. */
        uint8_t h[3] = {PN_ETF_TAG_STRING, (uint8_t)(n >> 8), (uint8_t)n};
        if ((rc = room_for(c, (uint64_t)n + 3)) < 0) return rc;
        if ((rc = pn_etf_put_raw(c->out, h, sizeof h, c->e)) < 0) return rc;
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            uint8_t v = (uint8_t)lua_tointeger(L, -1);
            lua_pop(L, 1);
            if ((rc = pn_etf_put_raw(c->out, &v, 1, c->e)) < 0) return rc;
        }
        return 0;
    }
    if (depth >= PN_ETF_MAX_DEPTH) return too_deep(c);
    if ((rc = room_for(c, (uint64_t)n + 1)) < 0) return rc;
    rc = pn_etf_put_list_header(c->out, (uint32_t)n, c->e);
    for (lua_Integer i = 1; rc == 0 && i <= n; i++) {
        if ((rc = enc_step(L, c)) < 0) break;
        lua_rawgeti(L, idx, i);
        rc = enc_value(L, lua_gettop(L), depth + 1, c);
        lua_pop(L, 1);
    }
    if (rc == 0) rc = pn_etf_put_nil(c->out, c->e);
    return rc;
}

static int pair_cmp(const void *a, const void *b) {
    const pair_ref *x = a, *y = b;
    /* Binary keys are the common case: their order is plain byte order. */
    if (x->klen >= 5 && y->klen >= 5 && x->k[0] == PN_ETF_TAG_BINARY &&
        y->k[0] == PN_ETF_TAG_BINARY) {
        size_t n = x->klen < y->klen ? x->klen : y->klen;
        int d = memcmp(x->k + 5, y->k + 5, n - 5);
        if (d) return d;
        return x->klen < y->klen ? -1 : x->klen > y->klen;
    }
    return pn_etf_compare(x->k, x->klen, y->k, y->klen);
}

/* Keys go out in Erlang's map-key order, as term_to_binary writes small
 * maps: the pairs are encoded in lua_next order, then sorted in place. */
static int enc_map(lua_State *L, int idx, size_t count, unsigned depth, enc_ctx *c) {
    pn_etf_buf *b = c->out;
    int rc;
    if (count > 0 && depth >= PN_ETF_MAX_DEPTH) return too_deep(c);
    if ((rc = room_for(c, (uint64_t)count * 2 + 5)) < 0) return rc;
    if ((rc = pn_etf_put_map(b, (uint32_t)count, c->e)) < 0) return rc;
    /* Userdata scratch: collected by Lua even if an error unwinds us. */
    pair_off *po = lua_newuserdatauv(L, count * sizeof *po, 0);
    int po_idx = lua_gettop(L);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (i == count) {
            lua_pop(L, 2);
            rc = pn_err_set(c->e, PN_EINVAL, "etf: table changed while being encoded");
            break;
        }
        po[i].koff = b->len;
        rc = enc_step(L, c);
        if (rc == 0) rc = enc_value(L, lua_gettop(L) - 1, depth + 1, c);
        po[i].voff = b->len;
        if (rc == 0) rc = enc_value(L, lua_gettop(L), depth + 1, c);
        po[i].end = b->len;
        lua_pop(L, 1);
        i++;
        if (rc < 0) {
            lua_pop(L, 1);
            break;
        }
    }
    if (rc == 0 && i != count)
        rc = pn_err_set(c->e, PN_EINVAL, "etf: table changed while being encoded");
    if (rc < 0 || count < 2) {
        lua_settop(L, po_idx - 1);
        return rc;
    }
    /* The buffer no longer moves: sort by pointers into it. */
    size_t start = po[0].koff, total = b->len - start;
    pair_ref *pr = lua_newuserdatauv(L, count * sizeof *pr, 0);
    for (i = 0; i < count; i++) {
        pr[i].k = b->data + po[i].koff;
        pr[i].klen = po[i].voff - po[i].koff;
        pr[i].off = po[i].koff - start;
        pr[i].len = po[i].end - po[i].koff;
    }
    qsort(pr, count, sizeof *pr, pair_cmp);
    for (i = 1; i < count; i++) {
        if (pair_cmp(&pr[i - 1], &pr[i]) == 0) {
            lua_settop(L, po_idx - 1);
            return pn_err_set(c->e, PN_EINVAL,
                              "etf: two map keys encode to the same term (true and "
                              "peernet.atom(\"true\"), nil and peernet.null, equal tables...)");
        }
    }
    uint8_t *tmp = lua_newuserdatauv(L, total, 0);
    memcpy(tmp, b->data + start, total);
    size_t w = start;
    for (i = 0; i < count; i++) {
        memcpy(b->data + w, tmp + pr[i].off, pr[i].len);
        w += pr[i].len;
    }
    lua_settop(L, po_idx - 1);
    return 0;
}

static int enc_table(lua_State *L, int idx, unsigned depth, enc_ctx *c) {
    int is_map = 0;
    if (lua_getmetatable(L, idx)) {
        int tuple = lua_rawequal(L, -1, c->tuple_mt);
        is_map = lua_rawequal(L, -1, c->map_mt);
        lua_pop(L, 1);
        if (tuple) return enc_tuple(L, idx, depth, c);
    }
    size_t count = 0;
    lua_Integer maxk = 0;
    int seq = 1;
    int rc = out_of_time(L, c);
    if (rc < 0) return rc;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if ((rc = enc_step(L, c)) < 0) {
            lua_pop(L, 1);
            return rc;
        }
        count++;
        if (seq && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            lua_Integer k = lua_tointeger(L, -1);
            if (k > maxk) maxk = k;
        } else {
            seq = 0;
        }
    }
    if (is_map) return enc_map(L, idx, count, depth, c);
    if (count == 0) return pn_etf_put_nil(c->out, c->e);
    if (seq && (uint64_t)maxk == count) return enc_list(L, idx, maxk, depth, c);
    return enc_map(L, idx, count, depth, c);
}

/* nil, a boolean, a number or a string (type t): no Lua call that can
 * raise, so it needs no protected call of its own. */
static int enc_scalar(lua_State *L, int idx, int t, pn_etf_buf *out, pn_err *e) {
    switch (t) {
        case LUA_TNIL:
            return pn_etf_put_atom(out, "nil", 3, e);
        case LUA_TBOOLEAN:
            return lua_toboolean(L, idx) ? pn_etf_put_atom(out, "true", 4, e)
                                         : pn_etf_put_atom(out, "false", 5, e);
        case LUA_TNUMBER:
            if (lua_isinteger(L, idx)) return pn_etf_put_int(out, lua_tointeger(L, idx), e);
            return pn_etf_put_double(out, (double)lua_tonumber(L, idx), e);
        default: {
            size_t n;
            const char *s = lua_tolstring(L, idx, &n);
            return pn_etf_put_binary(out, s, n, e);
        }
    }
}

static int is_scalar(int t) {
    return t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER || t == LUA_TSTRING;
}

static int enc_value(lua_State *L, int idx, unsigned depth, enc_ctx *c) {
    luaL_checkstack(L, 6, "peernet: encoding");
    int t = lua_type(L, idx);
    if (is_scalar(t)) return enc_scalar(L, idx, t, c->out, c->e);
    switch (t) {
        case LUA_TTABLE:
            return enc_table(L, idx, depth, c);
        case LUA_TUSERDATA:
            if (mt_is(L, idx, c->atom_mt)) {
                latom *a = lua_touserdata(L, idx);
                return pn_etf_put_atom(c->out, a->name, a->len, c->e);
            }
            if (mt_is(L, idx, c->null_mt)) return pn_etf_put_atom(c->out, "nil", 3, c->e);
            if (mt_is(L, idx, c->bigint_mt)) {
                lbigint *bi = lua_touserdata(L, idx);
                return pn_etf_put_bigint(c->out, bi->neg, bi->mag, bi->len, c->e);
            }
            return pn_err_set(c->e, PN_EINVAL,
                              "etf: cannot encode a userdata value (only peernet.atom, "
                              "peernet.null and bigint values)");
        default:
            return pn_err_set(c->e, PN_EINVAL, "etf: cannot encode a %s value",
                              luaL_typename(L, idx));
    }
}

int pn_value_encode(lua_State *L, int idx, pn_etf_buf *out, pn_err *e) {
    idx = lua_absindex(L, idx);
    int base = lua_gettop(L);
    luaL_checkstack(L, 9, "peernet: encoding");
    int t = push_refs(L);
    enc_ctx c = {out, e, t + 1, t + 2, t + 3, t + 4, t + 5, 0};
    lua_rawgeti(L, t, REF_ATOM_MT);
    lua_rawgeti(L, t, REF_TUPLE_MT);
    lua_rawgeti(L, t, REF_NULL_MT);
    lua_rawgeti(L, t, REF_BIGINT_MT);
    lua_rawgeti(L, t, REF_MAP_MT);
    int rc = enc_value(L, idx, 0, &c);
    lua_settop(L, base);
    return rc;
}

typedef struct {
    int raw, rc;
    pn_etf_buf *b;
    pn_err *e;
} encoding;

static int encode_raw(lua_State *L, int idx, pn_etf_buf *b, pn_err *e) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (!s) return pn_err_set(e, PN_EINVAL, "raw value must be a string of ETF bytes");
    pn_etf_reader r;
    pn_etf_reader_init(&r, (const uint8_t *)s, len);
    const uint8_t *start;
    size_t n;
    if (pn_etf_skip(&r, &start, &n, e) != 0 || pn_etf_finish(&r, e) != 0) return e->code;
    return pn_etf_put_raw(b, s, len, e);
}

static int encode_protected(lua_State *L) {
    encoding *a = lua_touserdata(L, 2);
    a->rc = a->raw ? encode_raw(L, 1, a->b, a->e) : pn_value_encode(L, 1, a->b, a->e);
    return 0;
}

int pn_value_encode_protected(lua_State *L, int idx, int raw, pn_etf_buf *b, pn_err *e) {
    encoding a = {raw, 0, b, e};
    idx = lua_absindex(L, idx);
    /* An argument left out is nil: a pushvalue of a slot past the top
     * would take whatever gets pushed there next (the function below). */
    int none = idx > lua_gettop(L);
    pn_etf_buf_init(b, PN_VALUE_DEFAULT_MAX);
    int t = none ? LUA_TNIL : lua_type(L, idx);
    if (!raw && is_scalar(t)) return enc_scalar(L, idx, t, b, e); /* most replies */
    lua_pushcfunction(L, encode_protected);
    if (none)
        lua_pushnil(L);
    else
        lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        pn_err_set(e, PN_ENOMEM, "cannot encode: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return PN_ENOMEM;
    }
    return a.rc;
}

/* ---- Lua functions ---------------------------------------------------- */

static int l_atom(lua_State *L) {
    if (pn_value_atom_name(L, 1, NULL)) {
        lua_settop(L, 1);
        return 1;
    }
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    pn_err e;
    if (pn_value_push_atom(L, s, n, &e) < 0) return luaL_argerror(L, 1, e.msg);
    return 1;
}

static int l_tuple(lua_State *L) {
    int n = lua_gettop(L);
    lua_createtable(L, n, 1);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    luaL_setmetatable(L, PN_VALUE_TUPLE_MT);
    return 1;
}

static int l_is_atom(lua_State *L) {
    lua_pushboolean(L, pn_value_atom_name(L, 1, NULL) != NULL);
    return 1;
}

/* Pushes whether argument 1 is a table whose metatable is the named one. */
static int push_has_mt(lua_State *L, const char *mt) {
    int yes = 0;
    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, mt);
        yes = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, yes);
    return 1;
}

static int l_is_tuple(lua_State *L) {
    return push_has_mt(L, PN_VALUE_TUPLE_MT);
}

static int l_map(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
        if (lua_getmetatable(L, 1)) {
            luaL_getmetatable(L, PN_VALUE_MAP_MT);
            luaL_argcheck(L, lua_rawequal(L, -1, -2), 1, "table already has a metatable");
            lua_settop(L, 1);
            return 1;
        }
    }
    luaL_setmetatable(L, PN_VALUE_MAP_MT);
    return 1;
}

static int l_is_map(lua_State *L) {
    return push_has_mt(L, PN_VALUE_MAP_MT);
}

static size_t opt_max(lua_State *L, int opts) {
    size_t max = PN_VALUE_DEFAULT_MAX;
    if (lua_isnoneornil(L, opts)) return max;
    luaL_checktype(L, opts, LUA_TTABLE);
    if (lua_getfield(L, opts, "max") != LUA_TNIL) {
        int ok;
        lua_Integer m = lua_tointegerx(L, -1, &ok);
        luaL_argcheck(L, ok && m > 0, opts, "max must be a positive integer");
        max = (uint64_t)m > SIZE_MAX ? SIZE_MAX : (size_t)m;
    }
    lua_pop(L, 1);
    return max;
}

static int buf_gc(lua_State *L) {
    pn_etf_buf *b = luaL_checkudata(L, 1, BUF_MT);
    pn_etf_buf_free(b);
    return 0;
}

static int l_encode(lua_State *L) {
    luaL_checkany(L, 1);
    size_t max = opt_max(L, 2);
    /* The buffer is the host's memory, outside the cap, and its bytes then
     * become a string in the state: in a sandbox no more than the script
     * has left (64 references to one big string are 64 copies). */
    size_t left = pn_sandbox_mem_left(L);
    int capped = left < max;
    if (capped) max = left;
    pn_etf_buf *b = lua_newuserdatauv(L, sizeof *b, 0);
    pn_etf_buf_init(b, max);
    if (luaL_newmetatable(L, BUF_MT)) {
        lua_pushcfunction(L, buf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    pn_err e;
    pn_err_clear(&e);
    int rc = pn_etf_put_version(b, &e);
    if (rc == 0) rc = pn_value_encode(L, 1, b, &e);
    if (rc < 0) {
        pn_etf_buf_free(b);
        if (rc == PN_ELIMIT && pn_sandbox_late(L)) return pn_sandbox_kill(L, e.msg);
        if (capped && rc == PN_ETOOBIG)
            pn_err_set(&e, PN_ETOOBIG,
                       "etf: the encoding would not fit in the script's memory (%zu bytes left)",
                       max);
        return pn_glue_fail(L, &e);
    }
    lua_pushlstring(L, (const char *)b->data, b->len);
    pn_etf_buf_free(b);
    return 1;
}

/* Refuses a term that would become more than max Lua values, before any is
 * built: one byte of input can make a whole table ([] is one byte), so the
 * byte bound alone lets 2 MB become 160 MB. Each item counts one, and each
 * character of a STRING_EXT counts as the integer it becomes. A term has at
 * most one item per byte, so only inputs longer than max need the walk.
 * Malformed input is left for the decoder to describe. */
static int check_terms(const uint8_t *t, size_t len, size_t max, pn_err *e) {
    if (len <= max) return PN_OK;
    pn_etf_reader r;
    pn_etf_item it;
    pn_err ignored;
    size_t count = 0;
    pn_etf_reader_init(&r, t, len);
    while (pn_etf_next(&r, &it, &ignored) > 0) {
        count += 1 + (it.type == PN_ETF_STRING ? it.len : 0);
        if (count > max)
            return pn_err_set(e, PN_ETOOBIG,
                              "etf: the term has more than %zu terms (the decode limit)", max);
    }
    return PN_OK;
}

/* opts.terms: the most Lua values one decode may build (0: no bound). */
static size_t opt_terms(lua_State *L, int opts) {
    size_t max = 0;
    if (!lua_istable(L, opts)) return max;
    if (lua_getfield(L, opts, "terms") != LUA_TNIL) {
        int ok;
        lua_Integer m = lua_tointegerx(L, -1, &ok);
        luaL_argcheck(L, ok && m > 0, opts, "terms must be a positive integer");
        max = (uint64_t)m > SIZE_MAX ? SIZE_MAX : (size_t)m;
    }
    lua_pop(L, 1);
    return max;
}

static int l_decode(lua_State *L) {
    size_t n;
    const uint8_t *s = (const uint8_t *)luaL_checklstring(L, 1, &n);
    size_t max = opt_max(L, 2);
    size_t max_terms = opt_terms(L, 2);
    int exact = 0;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "exact");
        exact = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    pn_err e;
    pn_err_clear(&e);
    const uint8_t *t = NULL;
    size_t tl = 0;
    if (n > max) {
        pn_err_set(&e, PN_ETOOBIG, "etf: input of %zu bytes is larger than the limit of %zu", n,
                   max);
        return pn_glue_fail(L, &e);
    }
    if (pn_etf_strip_version(s, n, &t, &tl, &e) < 0) return pn_glue_fail(L, &e);
    if (max_terms && check_terms(t, tl, max_terms, &e) < 0) return pn_glue_fail(L, &e);
    lua_settop(L, 2);
    if (pn_value_push(L, t, tl, exact, &e) < 0) return pn_glue_fail(L, &e);
    return 1;
}

static int l_bigint(lua_State *L) {
    if (lua_isinteger(L, 1) || luaL_testudata(L, 1, PN_VALUE_BIGINT_MT)) {
        lua_settop(L, 1);
        return 1;
    }
    size_t n, len;
    const char *s = luaL_checklstring(L, 1, &n);
    uint8_t mag[PN_BIGINT_MAX_BYTES];
    int neg;
    pn_err e;
    if (pn_bigint_from_decimal(s, n, &neg, mag, &len, &e) < 0) {
        lua_pushfstring(L, "%s (a decimal integer such as \"18446744073709551616\")", e.msg);
        return luaL_argerror(L, 1, lua_tostring(L, -1));
    }
    push_bigint(L, neg, mag, len);
    return 1;
}

static int l_is_bigint(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, PN_VALUE_BIGINT_MT) != NULL);
    return 1;
}

void pn_value_open(lua_State *L) {
    static const luaL_Reg top[] = {{"atom", l_atom},
                                   {"tuple", l_tuple},
                                   {"is_atom", l_is_atom},
                                   {"is_tuple", l_is_tuple},
                                   {"bigint", l_bigint},
                                   {"is_bigint", l_is_bigint},
                                   {NULL, NULL}};
    static const luaL_Reg etf[] = {{"encode", l_encode}, {"decode", l_decode}, {"bigint", l_bigint},
                                   {"map", l_map},       {"is_map", l_is_map}, {NULL, NULL}};
    pn_value_init(L);
    luaL_setfuncs(L, top, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY);
    lua_setfield(L, -2, "null");
    pn_glue_submodule(L, "etf", etf);
}
