/*
 * peernet.datafile: a settings file written as Lua data (serve's
 * host.lua, docs/cli.md "The serve config file"), read like config.lua
 * and evaluated like ARGS. The file is the operator's: a regular file of
 * this user, not writable by others, no symlink and no FIFO
 * (pn_file_read_private); its text runs in a sandbox of its own with a
 * memory cap and an instruction budget (pn_bind_args_eval), so a loop or
 * a doubling string in it is cut short instead of stopping the host.
 *
 *   peernet.datafile.load(path [, max_bytes]) --> true, value, text
 *                              | false, nil (no file) | false, "path: message"
 *   peernet.datafile.MAX_BYTES  -- the largest file read by default
 *
 * max_bytes (up to PN_DATAFILE_MAX_LIMIT) is for a file another part
 * bounds otherwise: config.lua's peers are read with the runtime's bound.
 */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#include "bind.h"
#include "core/file.h"

#define PN_DATAFILE_MAX (64u << 10)      /* a handful of settings */
#define PN_DATAFILE_MAX_LIMIT (1u << 20) /* the most any caller may ask for */

static int l_datafile_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, PN_DATAFILE_MAX);
    luaL_argcheck(L, max >= 1 && max <= PN_DATAFILE_MAX_LIMIT, 2, "must be 1..1048576 bytes");
    lua_settop(L, 1);
    char *text;
    size_t len;
    pn_err e;
    int rc = pn_file_read_private(path, 022, (size_t)max, &text, &len, &e);
    lua_pushboolean(L, 0);
    if (rc == PN_ENOTFOUND) return 1;
    if (rc != PN_OK) {
        lua_pushstring(L, e.msg);
        return 2;
    }
    if (!pn_bind_args_eval(L, text, len, path)) {
        free(text);
        return 2;
    }
    /* The text too: the caller names the line of a bad setting. */
    lua_pushlstring(L, text, len);
    free(text);
    lua_pushboolean(L, 1);
    lua_replace(L, -4);
    return 3;
}

void pn_bind_datafile_open(lua_State *L) {
    static const luaL_Reg fns[] = {{"load", l_datafile_load}, {NULL, NULL}};
    pn_glue_submodule(L, "datafile", fns);
    lua_getfield(L, -1, "datafile");
    lua_pushinteger(L, PN_DATAFILE_MAX);
    lua_setfield(L, -2, "MAX_BYTES");
    lua_pop(L, 1);
}
