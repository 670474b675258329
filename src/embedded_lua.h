/*
 * The Lua sources of lua/peernet/ compiled into peernet-host (the build
 * generates the table from the files: scripts/embed_lua.cmake).
 */
#ifndef PN_EMBEDDED_LUA_H
#define PN_EMBEDDED_LUA_H

#include <stddef.h>

typedef struct {
    const char *module;    /* "peernet.cli" */
    const char *chunkname; /* "@lua/peernet/cli.lua": errors name the source file */
    const char *data;
    size_t len;
} pn_embedded_file;

extern const pn_embedded_file pn_embedded_lua[]; /* ends with a NULL module */

#endif
