/*
 * peernet.mdns: the DNS message parser and builder of core/mdns.h, for specs.
 *
 *   peernet.mdns.parse(bytes) --> msg  |  nil, err, code
 *   peernet.mdns.build(msg)   --> bytes  |  nil, err, code
 *
 * msg = { id = 0, flags = 0x8400,
 *         questions = { {name = "_peernet._tcp.local", type = "PTR", unicast = false} },
 *         records = { {section = "answer", name = ..., type = "SRV", class = 1,
 *                      flush = true, ttl = 120, port = 4040, target = "h.local",
 *                      priority = 0, weight = 0} } }
 * Types are "A", "AAAA", "PTR", "SRV", "TXT", "NSEC", "ANY" or a number. A
 * and AAAA carry addr (text), TXT carries txt (a list of strings); every
 * parsed record also carries its raw rdata. Names are dotted text with
 * '.' and '\' inside a label escaped by '\'.
 */
#include <arpa/inet.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "wire.h"
#include "lua/glue.h"
#include "core/mdns.h"

static const struct {
    const char *name;
    uint16_t type;
} types[] = {{"A", PN_DNS_A},     {"AAAA", PN_DNS_AAAA}, {"PTR", PN_DNS_PTR}, {"SRV", PN_DNS_SRV},
             {"TXT", PN_DNS_TXT}, {"NSEC", PN_DNS_NSEC}, {"ANY", PN_DNS_ANY}};
static const char *const sections[] = {"answer", "authority", "additional", NULL};

static void push_type(lua_State *L, uint16_t t) {
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == t) {
            lua_pushstring(L, types[i].name);
            return;
        }
    lua_pushinteger(L, t);
}

static uint16_t check_type(lua_State *L, int idx) {
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer v = luaL_checkinteger(L, idx);
        luaL_argcheck(L, v >= 0 && v <= 65535, 1, "type out of range");
        return (uint16_t)v;
    }
    const char *s = luaL_checkstring(L, idx);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, s) == 0) return types[i].type;
    luaL_error(L, "mdns: unknown type '%s'", s);
    return 0;
}

static void push_name(lua_State *L, const uint8_t *name) {
    char text[PN_MDNS_TEXT_MAX];
    pn_mdns_name_to_text(name, text);
    lua_pushstring(L, text);
}

static void push_record(lua_State *L, const pn_mdns_record *r) {
    char ip[INET6_ADDRSTRLEN];
    lua_createtable(L, 0, 10);
    lua_pushstring(L, sections[r->section]);
    lua_setfield(L, -2, "section");
    push_name(L, r->name);
    lua_setfield(L, -2, "name");
    push_type(L, r->type);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, r->klass);
    lua_setfield(L, -2, "class");
    lua_pushboolean(L, r->flush);
    lua_setfield(L, -2, "flush");
    lua_pushinteger(L, r->ttl);
    lua_setfield(L, -2, "ttl");
    lua_pushlstring(L, (const char *)r->rdata, r->rdlen);
    lua_setfield(L, -2, "rdata");
    switch (r->type) {
        case PN_DNS_A:
        case PN_DNS_AAAA:
            inet_ntop(r->type == PN_DNS_A ? AF_INET : AF_INET6, r->addr, ip, sizeof ip);
            lua_pushstring(L, ip);
            lua_setfield(L, -2, "addr");
            break;
        case PN_DNS_SRV:
            lua_pushinteger(L, r->priority);
            lua_setfield(L, -2, "priority");
            lua_pushinteger(L, r->weight);
            lua_setfield(L, -2, "weight");
            lua_pushinteger(L, r->port);
            lua_setfield(L, -2, "port");
            /* fallthrough */
        case PN_DNS_PTR:
            push_name(L, r->target);
            lua_setfield(L, -2, "target");
            break;
        case PN_DNS_TXT: {
            lua_newtable(L);
            int n = 0;
            for (size_t i = 0; i < r->rdlen; i += 1 + (size_t)r->rdata[i]) {
                lua_pushlstring(L, (const char *)r->rdata + i + 1, r->rdata[i]);
                lua_rawseti(L, -2, ++n);
            }
            lua_setfield(L, -2, "txt");
            break;
        }
        default:
            break;
    }
}

static int l_parse(lua_State *L) {
    size_t len;
    const uint8_t *buf = (const uint8_t *)luaL_checklstring(L, 1, &len);
    pn_mdns_msg *m = lua_newuserdatauv(L, sizeof *m, 0); /* freed by the GC */
    pn_err e;
    if (pn_mdns_parse(m, buf, len, &e) != 0) return pn_glue_fail(L, &e);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, m->id);
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, m->flags);
    lua_setfield(L, -2, "flags");
    lua_createtable(L, (int)m->nquestions, 0);
    for (size_t i = 0; i < m->nquestions; i++) {
        lua_createtable(L, 0, 4);
        push_name(L, m->questions[i].name);
        lua_setfield(L, -2, "name");
        push_type(L, m->questions[i].type);
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, m->questions[i].klass);
        lua_setfield(L, -2, "class");
        lua_pushboolean(L, m->questions[i].unicast);
        lua_setfield(L, -2, "unicast");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "questions");
    lua_createtable(L, (int)m->nrecords, 0);
    for (size_t i = 0; i < m->nrecords; i++) {
        push_record(L, &m->records[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "records");
    return 1;
}

/* Reads field name of the table on top as a name into out; raises on error. */
static void field_name(lua_State *L, const char *field, uint8_t out[PN_MDNS_NAME_MAX]) {
    pn_err e;
    lua_getfield(L, -1, field);
    const char *s = luaL_checkstring(L, -1);
    if (pn_mdns_name_from_text(out, s, &e) != 0)
        luaL_error(L, "mdns: %s '%s': %s", field, s, e.msg);
    lua_pop(L, 1);
}

static lua_Integer field_int(lua_State *L, const char *field, lua_Integer dflt, lua_Integer max) {
    lua_getfield(L, -1, field);
    lua_Integer v = lua_isnil(L, -1) ? dflt : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (v < 0 || v > max) luaL_error(L, "mdns: %s out of range", field);
    return v;
}

static int l_build(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    uint8_t *buf = lua_newuserdatauv(L, PN_MDNS_MSG_MAX, 0); /* freed by the GC, even on error */
    uint8_t txt[PN_MDNS_MSG_MAX];
    pn_mdns_out o;
    pn_err e;
    lua_pushvalue(L, 1);
    pn_mdns_out_init(&o, buf, PN_MDNS_MSG_MAX, (uint16_t)field_int(L, "id", 0, 65535),
                     (uint16_t)field_int(L, "flags", 0, 65535));
    if (lua_getfield(L, -1, "questions") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
        pn_mdns_question q;
        memset(&q, 0, sizeof q);
        field_name(L, "name", q.name);
        lua_getfield(L, -1, "type");
        q.type = check_type(L, -1);
        lua_pop(L, 1);
        q.klass = (uint16_t)field_int(L, "class", PN_DNS_CLASS_IN, 0x7FFF);
        lua_getfield(L, -1, "unicast");
        q.unicast = lua_toboolean(L, -1);
        lua_pop(L, 2);
        if (pn_mdns_out_question(&o, &q, &e) != 0) return pn_glue_fail(L, &e);
    }
    lua_pop(L, 2);
    if (lua_getfield(L, -1, "records") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
        pn_mdns_record r;
        memset(&r, 0, sizeof r);
        field_name(L, "name", r.name);
        lua_getfield(L, -1, "type");
        r.type = check_type(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, -1, "section");
        r.section = luaL_checkoption(L, -1, "answer", sections);
        lua_pop(L, 1);
        r.klass = (uint16_t)field_int(L, "class", PN_DNS_CLASS_IN, 0x7FFF);
        r.ttl = (uint32_t)field_int(L, "ttl", 120, UINT32_MAX);
        lua_getfield(L, -1, "flush");
        r.flush = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (r.type == PN_DNS_A || r.type == PN_DNS_AAAA) {
            lua_getfield(L, -1, "addr");
            const char *a = luaL_checkstring(L, -1);
            if (inet_pton(r.type == PN_DNS_A ? AF_INET : AF_INET6, a, r.addr) != 1)
                return luaL_error(L, "mdns: bad address '%s'", a);
            lua_pop(L, 1);
        } else if (r.type == PN_DNS_PTR || r.type == PN_DNS_SRV) {
            field_name(L, "target", r.target);
            r.priority = (uint16_t)field_int(L, "priority", 0, 65535);
            r.weight = (uint16_t)field_int(L, "weight", 0, 65535);
            r.port = (uint16_t)field_int(L, "port", 0, 65535);
        } else if (r.type == PN_DNS_TXT && (lua_getfield(L, -1, "txt"), lua_istable(L, -1))) {
            size_t n = 0;
            for (lua_Integer j = 1; lua_rawgeti(L, -1, j) != LUA_TNIL; j++) {
                size_t sl;
                const char *s = luaL_checklstring(L, -1, &sl);
                if (sl > 255 || n + 1 + sl > sizeof txt)
                    return luaL_error(L, "mdns: TXT string too long");
                txt[n] = (uint8_t)sl;
                memcpy(txt + n + 1, s, sl);
                n += 1 + sl;
                lua_pop(L, 1);
            }
            lua_pop(L, 2);
            r.rdata = txt;
            r.rdlen = (uint16_t)n;
        } else {
            if (r.type == PN_DNS_TXT) lua_pop(L, 1);
            size_t n = 0;
            lua_getfield(L, -1, "rdata");
            const char *s = lua_isnil(L, -1) ? "" : luaL_checklstring(L, -1, &n);
            if (n > sizeof txt) return luaL_error(L, "mdns: rdata too long");
            memcpy(txt, s, n);
            lua_pop(L, 1);
            r.rdata = txt;
            r.rdlen = (uint16_t)n;
        }
        lua_pop(L, 1);
        if (pn_mdns_out_record(&o, &r, &e) != 0) return pn_glue_fail(L, &e);
    }
    size_t n = pn_mdns_out_finish(&o);
    if (n == 0) return luaL_error(L, "mdns: message could not be built");
    lua_pushlstring(L, (const char *)buf, n);
    return 1;
}

void pn_bind_mdns_open(lua_State *L) {
    static const luaL_Reg fns[] = {{"parse", l_parse}, {"build", l_build}, {NULL, NULL}};
    pn_glue_submodule(L, "mdns", fns);
}
