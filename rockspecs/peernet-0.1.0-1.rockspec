-- The Lua module `peernet` as a rock, built by the project's CMake
-- (PN_ROCK: only peernet.so, installed into the rock tree's LIBDIR).
-- From the source tree:  luarocks make --lua-version 5.4 rockspecs/peernet-0.1.0-1.rockspec
-- (Debian's luarocks runs on Lua 5.1-5.3 and builds for 5.1 unless told.)
-- Its version is src/core/version.h's (spec/cli/install_spec.lua checks it).
rockspec_format = "3.0"
package = "peernet"
version = "0.1.0-1"
source = {
  -- no public home yet: `luarocks make` builds the tree it is run in
  url = "git+file://.",
  tag = "v0.1.0",
}
description = {
  summary = "PeerNet peers in Lua: Noise XX, ETF, LAN discovery, on luv's loop",
  detailed = [[
The peernet module of peernet-host: a PeerNet host (byte-for-byte compatible
with the Elixir PeerNet library) running on luv's loop, the ETF codec, keys,
the trust list and the sandboxed script runtime.]],
  license = "Apache-2.0",
  labels = { "network", "p2p", "noise" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
  -- luv: Debian's lua-luv (lua5.4-luv.pc), found by CMake, not a rock here:
  -- the module links the very liblua5.4-luv that require "luv" loads.
}
-- luv's header is per Lua version (/usr/include/lua5.4/luv): CMake asks
-- pkg-config (lua5.4-luv) for it.
external_dependencies = {
  SODIUM = { header = "sodium.h" },
  UV = { header = "uv.h" },
  QRENCODE = { header = "qrencode.h" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    PN_ROCK = "ON",
    PN_INSTALL_LUA_CMODDIR = "$(LIBDIR)",
  },
}
