/*
 * peernet_wire: the bindings of the wire codecs that only specs, fuzz seed
 * generators and the stress client use (Noise with its test hooks such as
 * fixed ephemerals and set_nonce, envelopes, announce datagrams, mDNS
 * messages). Built as its own module (build/peernet_wire.so, not installed,
 * not in peernet-host), so a user program's require "peernet" cannot reach
 * them; spec/helper.lua merges it into `peernet` for the specs.
 *
 * Each opener adds its sub-tables to the table on top of the stack, as the
 * openers of luamod/bind.h do.
 */
#ifndef PN_WIRE_H
#define PN_WIRE_H

#include <lauxlib.h>
#include <lua.h>

#include "peernet/err.h"
#include "lua/glue.h"

void pn_bind_noise_open(lua_State *L);    /* noise.*, handshake.* */
void pn_bind_announce_open(lua_State *L); /* announce.* */
void pn_bind_envelope_open(lua_State *L); /* envelope.decode, envelope.call, ... */
void pn_bind_mdns_open(lua_State *L);     /* mdns.parse, mdns.build */

/* luaopen_peernet_wire leaves a light userdata under this registry key;
 * peernet.so honours its test hooks (host.new's test_ephemeral and
 * test_legacy_atoms, h:ping's nonce) only when it is there, so a user
 * program that never loads this module cannot reach them. */
#define PN_WIRE_REGISTRY_KEY "peernet.wire.test_hooks"

/* require "peernet_wire": a table of the sub-modules above. */
PN_LUA_EXPORT int luaopen_peernet_wire(lua_State *L);

#endif
