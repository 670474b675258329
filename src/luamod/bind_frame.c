/*
 * peernet.frame: the incremental frame reader, for specs and Lua programs.
 *
 *   local r = peernet.frame.reader([cap])   -- cap defaults to 1 MiB
 *   r:feed(chunk) --> { body, ... }  |  nil, err   (a failed reader stays failed)
 *   r:buffered()  --> bytes held for an incomplete frame
 *   peernet.frame.encode(body [, cap]) --> header .. body  |  nil, err
 */
#include <lauxlib.h>
#include <lua.h>

#include "bind.h"
#include "lua/glue.h"
#include "core/frame.h"
#include "peernet/limits.h"

#define FRAME_MT "peernet.frame_reader"

typedef struct {
    pn_frame_reader *r;
} lframe;

static lframe *check_reader(lua_State *L) {
    lframe *f = luaL_checkudata(L, 1, FRAME_MT);
    if (!f->r) luaL_argerror(L, 1, "frame reader is closed");
    return f;
}

static lua_Integer check_cap(lua_State *L, int idx) {
    lua_Integer cap = luaL_optinteger(L, idx, PN_FRAME_CAP_MAX);
    luaL_argcheck(L, cap >= 0 && cap <= (lua_Integer)UINT32_MAX, idx, "cap out of range");
    return cap;
}

static int frame_reader_new(lua_State *L) {
    lua_Integer cap = check_cap(L, 1);
    lframe *f = lua_newuserdatauv(L, sizeof *f, 0);
    f->r = NULL;
    luaL_setmetatable(L, FRAME_MT);
    f->r = pn_frame_reader_new((size_t)cap);
    if (!f->r) return luaL_error(L, "out of memory");
    return 1;
}

static int frame_reader_feed(lua_State *L) {
    lframe *f = check_reader(L);
    size_t n;
    const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 2, &n);
    pn_err e;
    pn_frame fr;
    lua_newtable(L);
    lua_Integer i = 0;
    for (;;) {
        int rc = pn_frame_feed(f->r, &p, &n, &fr, &e);
        if (rc < 0) return pn_glue_fail(L, &e);
        if (rc == 0) break;
        lua_pushlstring(L, (const char *)fr.data, fr.len);
        lua_rawseti(L, -2, ++i);
    }
    return 1;
}

static int frame_reader_buffered(lua_State *L) {
    lframe *f = check_reader(L);
    lua_pushinteger(L, (lua_Integer)pn_frame_buffered(f->r));
    return 1;
}

static int frame_reader_gc(lua_State *L) {
    lframe *f = luaL_checkudata(L, 1, FRAME_MT);
    pn_frame_reader_free(f->r);
    f->r = NULL;
    return 0;
}

static int frame_encode(lua_State *L) {
    size_t len;
    const char *body = luaL_checklstring(L, 1, &len);
    lua_Integer cap = check_cap(L, 2);
    uint8_t hdr[PN_FRAME_HEADER];
    pn_err e;
    if (pn_frame_header(hdr, len, (size_t)cap, &e) < 0) return pn_glue_fail(L, &e);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, (const char *)hdr, sizeof hdr);
    luaL_addlstring(&b, body, len);
    luaL_pushresult(&b);
    return 1;
}

void pn_bind_frame_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"feed", frame_reader_feed}, {"buffered", frame_reader_buffered}, {NULL, NULL}};
    static const luaL_Reg fns[] = {
        {"reader", frame_reader_new}, {"encode", frame_encode}, {NULL, NULL}};
    if (luaL_newmetatable(L, FRAME_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, frame_reader_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    pn_glue_submodule(L, "frame", fns);
}
