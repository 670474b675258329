/*
 * luaopen_peernet: the Lua face of libpeernet, loadable by plain lua5.4
 * through package.cpath. Busted specs drive the C code through it.
 */
#include <signal.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>

#include "bind.h"
#include "core/version.h"
#include "lua/glue.h"
#include "lua/result.h"
#include "lua/value.h"
#include "peernet/peernet.h"

/* libuv writes to sockets and pipes with write(2): under the default
 * disposition a peer that hangs up kills plain lua5.4 by SIGPIPE instead of
 * failing that one write with EPIPE. Only the default is changed; a program
 * that installed its own handler (or already ignores it) keeps its choice. */
static void ignore_default_sigpipe(void) {
    struct sigaction old, ign;
    if (sigaction(SIGPIPE, NULL, &old) != 0 || old.sa_handler != SIG_DFL) return;
    if (old.sa_flags & SA_SIGINFO) return;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
}

int luaopen_peernet(lua_State *L) {
    if (sodium_init() < 0) return luaL_error(L, "peernet: libsodium failed to initialise");
    ignore_default_sigpipe();
    lua_newtable(L);
    lua_pushstring(L, PN_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, PN_PROTOCOL_VERSION);
    lua_setfield(L, -2, "protocol_version");
    lua_pushstring(L, sodium_version_string());
    lua_setfield(L, -2, "sodium_version");
    lua_pushinteger(L, PN_MS_MAX);
    lua_setfield(L, -2, "ms_max");
    lua_pushinteger(L, PN_ADDR_MAX);
    lua_setfield(L, -2, "addr_max");
    pn_result_open(L);
    pn_value_open(L);
    pn_bind_frame_open(L);
    pn_bind_keys_open(L);
    pn_bind_trust_open(L);
    pn_bind_host_open(L);
    pn_bind_runtime_open(L);
    pn_bind_qr_open(L);
    pn_bind_pattern_open(L);
    pn_bind_args_open(L);
    pn_bind_datafile_open(L);
    pn_bind_console_open(L);
    pn_bind_notify_open(L);
    pn_bind_loadgen_open(L);
    return 1;
}
