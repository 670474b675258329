/*
 * Lua <-> ETF values (DESIGN.md "Value mapping Lua <-> ETF", docs/values.md),
 * for the host: it hands the Args of a call to a handler with
 * pn_value_push() and encodes what the handler returned with
 * pn_value_encode(). Both work on terms WITHOUT the version byte.
 *
 * Both may raise a Lua error, but only when Lua runs out of memory or
 * stack: call them where that is caught. Neither leaks when it happens.
 */
#ifndef PN_VALUE_H
#define PN_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "peernet/err.h"
#include "peernet/limits.h"
#include "core/etf.h"

/* Bytes an encoding may take unless the caller says (opts.max): a value
 * travels in one frame, so the frame cap. */
#define PN_VALUE_DEFAULT_MAX ((size_t)PN_FRAME_CAP_MAX)
#define PN_VALUE_CLOCK_STEPS 4096 /* table slots the encoder visits between clock reads */

/* Metatable names; the userdata behind them are created here only. */
#define PN_VALUE_ATOM_MT "peernet.atom"
#define PN_VALUE_TUPLE_MT "peernet.tuple"
#define PN_VALUE_NULL_MT "peernet.null"
#define PN_VALUE_BIGINT_MT "peernet.bigint"
#define PN_VALUE_MAP_MT "peernet.map" /* a table that encodes as a map even if empty */

/* Creates the metatables, peernet.null and the atom table in L's registry
 * if missing. The module opener calls it; push/encode do so when needed. */
void pn_value_init(lua_State *L);

/* Adds atom, tuple, null, is_atom, is_tuple, bigint, is_bigint and etf.*
 * to the table on top of the stack. */
void pn_value_open(lua_State *L);

/*
 * Pushes the Lua value of the term (len bytes, no version byte) and returns
 * 0; on malformed input, trailing bytes or colliding map keys it pushes
 * nothing and returns PN_EINVAL with e filled. exact = 0 is the default
 * mapping; exact = 1 keeps atoms as peernet.atom values, so the term
 * re-encodes to itself. Integers outside int64 are peernet.bigint values
 * in both modes (never floats).
 * A top-level atom nil pushes nil (peernet.null inside containers). Maps
 * come back marked with PN_VALUE_MAP_MT so that %{} stays %{} when the
 * value is encoded again.
 */
int pn_value_push(lua_State *L, const uint8_t *term, size_t len, int exact, pn_err *e);

/* Appends the canonical encoding of the value at idx to out (bounded by
 * out->max). Returns 0, or PN_EINVAL (unencodable value, NaN, nesting
 * deeper than PN_ETF_MAX_DEPTH, keys that collide), PN_ETOOBIG or
 * PN_ENOMEM; on error out may hold a partial term. */
int pn_value_encode(lua_State *L, int idx, pn_etf_buf *out, pn_err *e);

/* pn_value_encode made safe to call outside a protected call: b is
 * initialised here (bounded by PN_VALUE_DEFAULT_MAX; the caller frees it)
 * and a Lua memory error becomes PN_ENOMEM. raw = 1 takes the value as a
 * string of ETF bytes (no version byte), checked to be exactly one term. */
int pn_value_encode_protected(lua_State *L, int idx, int raw, pn_etf_buf *b, pn_err *e);

/* Pushes the interned atom value for a UTF-8 name (PN_EINVAL if not a valid
 * atom name: nothing pushed). */
int pn_value_push_atom(lua_State *L, const char *name, size_t len, pn_err *e);

/* The name of the atom value at idx, or NULL if it is not one. */
const char *pn_value_atom_name(lua_State *L, int idx, size_t *len);

#endif
