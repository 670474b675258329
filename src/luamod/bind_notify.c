/*
 * peernet.notify(state): tells the service manager about this process
 * (sd_notify(3), e.g. "READY=1" once `serve` listens, for Type=notify units).
 * Returns true when a manager was told, false when none asked (no
 * $NOTIFY_SOCKET) or this build has no libsystemd (it is optional: Debian's
 * libsystemd-dev at build time). Failing to notify never fails the caller.
 */
#include "bind.h"

#ifdef PN_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#define PN_NOTIFY_SYSTEMD 1
#else
#define PN_NOTIFY_SYSTEMD 0
#endif

static int l_notify(lua_State *L) {
    const char *state = luaL_checkstring(L, 1);
#ifdef PN_HAVE_SYSTEMD
    lua_pushboolean(L, sd_notify(0, state) > 0);
#else
    (void)state;
    lua_pushboolean(L, 0);
#endif
    return 1;
}

void pn_bind_notify_open(lua_State *L) {
    lua_pushcfunction(L, l_notify);
    lua_setfield(L, -2, "notify");
    lua_pushboolean(L, PN_NOTIFY_SYSTEMD);
    lua_setfield(L, -2, "has_systemd");
}
