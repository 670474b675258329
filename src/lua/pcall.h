/*
 * Calling Lua code from the host with a traceback: the one message handler
 * both Lua fronts and the executable use, so an error in a callback a
 * program gave (a log function, an event handler, a call's callback)
 * names the line that raised it.
 */
#ifndef PN_PCALL_H
#define PN_PCALL_H

#include <stddef.h>

#include <lua.h>

/* A lua_pcall message handler: the error (any value) as text with the
 * traceback of the thread that raised it. */
int pn_pcall_msgh(lua_State *L);

/* lua_pcall of the function below its nargs arguments, with pn_pcall_msgh:
 * on failure the message with its traceback is on top. */
int pn_pcall(lua_State *L, int nargs, int nres);

/* Bytes of an error message kept in a traceback built by the host: a
 * script chooses the size of its message, and the log line is cut
 * shorter anyway. */
#define PN_PCALL_MSG_MAX 1024

/* Pushes on L the error value at the top of co (a coroutine whose resume
 * failed: its stack is still there to walk) as text with co's traceback,
 * the message cut at PN_PCALL_MSG_MAX bytes. Returns the text. */
const char *pn_pcall_traceback_of(lua_State *L, lua_State *co);

#endif
