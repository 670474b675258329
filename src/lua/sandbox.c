/*
 * Sandboxed states: the allocator that caps memory, the hook that caps CPU,
 * and the short list of library functions a handler script may reach.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lpattern.h"
#include "sandbox.h"

typedef struct sandbox {
    size_t mem, cap;
    int unlimited;         /* > 0: the host is doing its own bookkeeping */
    uint64_t budget, used; /* instructions in this resume */
    uint64_t slice_ns;     /* wall-clock time per resume */
    uint64_t deadline;     /* uv_hrtime() at which this resume's slice ends */
    size_t since_clock;    /* bytes allocated since the clock was last read */
    lua_State *running;    /* the thread running script code: the main thread between resumes */
    lua_State *main;       /* the state's main thread: the host's stack (see host_owned) */
    int killed;            /* the budget ran out: stop at every instruction */
    int late;              /* it was the clock that ran out */
    size_t sort_cost;      /* table.sort comparisons since the clock was last read */
    size_t big, huge;      /* live blocks of PN_SANDBOX_BIG_BYTES / _HUGE_BYTES or more */
} sandbox;

static void force_hook(sandbox *sb);
static void rearm_hook(sandbox *sb);

/* Counts the live blocks of each size class that shortens the hook step. */
static void count_block(sandbox *sb, size_t size, int delta) {
    if (size >= PN_SANDBOX_BIG_BYTES) sb->big += (size_t)delta;
    if (size >= PN_SANDBOX_HUGE_BYTES) sb->huge += (size_t)delta;
}

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sandbox *sb = ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
    if (nsize == 0) {
        free(ptr);
        sb->mem -= old;
        count_block(sb, old, -1);
        return NULL;
    }
    if (nsize > old && !sb->unlimited) {
        if (sb->mem + (nsize - old) > sb->cap) return NULL;
        /* One instruction can allocate megabytes (a concatenation, a
         * table constructor): read the clock as bytes go by, and have the
         * hook stop the script at its next instruction once time is up. */
        sb->since_clock += nsize - old;
        if (sb->since_clock >= PN_SANDBOX_CLOCK_BYTES) {
            sb->since_clock = 0;
            if (uv_hrtime() > sb->deadline) force_hook(sb);
        }
    }
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    sb->mem = sb->mem - old + nsize;
    count_block(sb, old, -1);
    count_block(sb, nsize, 1);
    /* The first big block: the running code gets the shorter step now,
     * not after up to 1,000 more instructions. */
    if (nsize >= PN_SANDBOX_BIG_BYTES && old < nsize && !sb->unlimited) rearm_hook(sb);
    return p;
}

static sandbox *get(lua_State *L) {
    void *ud;
    return lua_getallocf(L, &ud) == sb_alloc ? ud : NULL;
}

int pn_sandbox_is(lua_State *L) {
    return get(L) != NULL;
}

static void sb_hook(lua_State *L, lua_Debug *ar);
static void sb_hook_dead(lua_State *L, lua_Debug *ar);

/* Instructions between budget checks: fewer while the script holds big
 * blocks, since an EQ or LT of two strings walks both of them (two 12 MiB
 * strings: about 1 ms an instruction, so 1,000 of them overshot a 1 s
 * slice by 1.3 s). The step bounds the overshoot to about 100 compares of
 * strings under PN_SANDBOX_HUGE_BYTES, or 10 of the longest the cap
 * allows, while small scripts keep the cheap step. */
static int hook_step(const sandbox *sb) {
    if (sb->huge) return PN_SANDBOX_HOOK_STEP_HUGE;
    if (sb->big) return PN_SANDBOX_HOOK_STEP_BIG;
    return PN_SANDBOX_HOOK_STEP;
}

/* Shortens co's count to the step the state's blocks call for (a killed
 * or forced thread already stops sooner). */
static void arm_thread(sandbox *sb, lua_State *co) {
    int step = hook_step(sb);
    if (lua_gethook(co) == sb_hook && lua_gethookcount(co) > step)
        lua_sethook(co, sb_hook, LUA_MASKCOUNT, step);
}

static void rearm_hook(sandbox *sb) {
    /* lua_sethook only sets fields and traps: safe inside the allocator. */
    if (sb->running) arm_thread(sb, sb->running);
}

static void force_hook(sandbox *sb) {
    /* lua_sethook only sets fields and traps: safe inside the allocator. */
    lua_State *L = sb->running;
    lua_sethook(L, lua_gethook(L) == sb_hook_dead ? sb_hook_dead : sb_hook, LUA_MASKCOUNT, 1);
}

/* Raises the kill in L and marks L: from now on its hook runs at every
 * instruction, and a killed coroutine is never closed (see co_close). */
static int kill_thread(lua_State *L, sandbox *sb) {
    sb->killed = 1;
    lua_sethook(L, sb_hook_dead, LUA_MASKCOUNT, 1);
    if (sb->late)
        return luaL_error(L, "CPU slice exceeded: ran more than %I ms without waiting",
                          (lua_Integer)(sb->slice_ns / 1000000u));
    return luaL_error(L, "CPU budget exceeded: more than %I instructions without waiting",
                      (lua_Integer)sb->budget);
}

/* Runs every PN_SANDBOX_HOOK_STEP instructions (or at the next one, when
 * forced); once the budget is gone, at every instruction, so a script that
 * catches the error with pcall is stopped again at its next instruction. */
static void hook(lua_State *L) {
    sandbox *sb = get(L);
    if (!sb->killed) {
        int step = lua_gethookcount(L), want = hook_step(sb);
        /* A thread forced or killed earlier still steps by 1. */
        if (step != want || lua_gethook(L) != sb_hook) lua_sethook(L, sb_hook, LUA_MASKCOUNT, want);
        sb->used += (uint64_t)step;
        if (sb->used < sb->budget && uv_hrtime() <= sb->deadline) return;
        sb->late = sb->used < sb->budget;
    }
    kill_thread(L, sb);
}

static void sb_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    hook(L);
}

/* The same hook; only its address differs, and marks a killed thread. */
static void sb_hook_dead(lua_State *L, lua_Debug *ar) {
    (void)ar;
    hook(L);
}

/* After a C library call: the time it took counts too. */
static void check_clock(lua_State *L) {
    sandbox *sb = get(L);
    if (!sb || sb->unlimited) return;
    if (sb->killed) {
        kill_thread(L, sb);
    } else if (uv_hrtime() > sb->deadline) {
        sb->late = 1;
        kill_thread(L, sb);
    }
}

void pn_sandbox_check(lua_State *L) {
    check_clock(L);
}

lua_State *pn_sandbox_begin(lua_State *co) {
    sandbox *sb = get(co);
    if (!sb) return NULL;
    lua_State *prev = sb->running;
    sb->used = 0;
    sb->killed = 0;
    sb->late = 0;
    sb->since_clock = 0;
    sb->deadline = uv_hrtime() + sb->slice_ns;
    sb->running = co;
    lua_sethook(co, sb_hook, LUA_MASKCOUNT, hook_step(sb));
    return prev;
}

void pn_sandbox_end(lua_State *co, lua_State *prev) {
    sandbox *sb = get(co);
    if (sb && prev) sb->running = prev;
}

int pn_sandbox_late(lua_State *L) {
    sandbox *sb = get(L);
    return sb && !sb->unlimited && uv_hrtime() > sb->deadline;
}

int pn_sandbox_kill(lua_State *L, const char *msg) {
    sandbox *sb = get(L);
    if (sb) {
        sb->killed = 1;
        sb->late = 1; /* what the hook says if the script catches msg */
        lua_sethook(L, sb_hook_dead, LUA_MASKCOUNT, 1);
    }
    return luaL_error(L, "%s", msg);
}

int pn_sandbox_over_budget(lua_State *L) {
    sandbox *sb = get(L);
    return sb && sb->killed;
}

int pn_sandbox_lift(lua_State *L) {
    sandbox *sb = get(L);
    if (!sb) return 0;
    int prev = sb->unlimited;
    sb->unlimited = prev + 1;
    return prev;
}

void pn_sandbox_restore(lua_State *L, int prev) {
    sandbox *sb = get(L);
    if (sb) sb->unlimited = prev;
}

size_t pn_sandbox_mem_used(lua_State *L) {
    sandbox *sb = get(L);
    return sb ? sb->mem : 0;
}

size_t pn_sandbox_mem_cap(lua_State *L) {
    sandbox *sb = get(L);
    return sb ? sb->cap : 0;
}

size_t pn_sandbox_mem_left(lua_State *L) {
    sandbox *sb = get(L);
    if (!sb) return SIZE_MAX;
    return sb->mem < sb->cap ? sb->cap - sb->mem : 0;
}

/* ---- load: text only, bounded ------------------------------------------------- */

/* load(chunk [, chunkname [, mode [, env]]]): the chunk (a string, or the
 * pieces a reader function returns, gathered here) is at most
 * PN_SANDBOX_CHUNK_MAX bytes, so the parser, which runs in C, stays short;
 * and it is compiled as text whatever mode says. The clock is read after
 * each piece: a reader that is a C function (a gmatch iterator doing heavy
 * pattern work) runs back to back with no instruction for the hook. */
static int sb_load(lua_State *L) {
    int has_env = !lua_isnone(L, 4);
    const char *mode = luaL_optstring(L, 3, "bt");
    lua_settop(L, 4);
    size_t len;
    const char *text;
    const char *name;
    if (lua_type(L, 1) == LUA_TSTRING) {
        text = lua_tolstring(L, 1, &len);
        name = luaL_optstring(L, 2, text);
    } else {
        luaL_checktype(L, 1, LUA_TFUNCTION);
        name = luaL_optstring(L, 2, "=(load)");
        luaL_Buffer b;
        luaL_buffinit(L, &b); /* at index 5 while it grows */
        size_t total = 0;
        for (;;) {
            lua_pushvalue(L, 1);
            lua_call(L, 0, 1);
            check_clock(L);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                break;
            }
            if (!lua_isstring(L, -1)) {
                lua_pushnil(L);
                lua_pushliteral(L, "reader function must return a string");
                return 2;
            }
            size_t n;
            lua_tolstring(L, -1, &n);
            if (n == 0) {
                lua_pop(L, 1);
                break;
            }
            if (n > PN_SANDBOX_CHUNK_MAX - total) {
                lua_pushnil(L);
                lua_pushfstring(L, "chunk larger than %d bytes", (int)PN_SANDBOX_CHUNK_MAX);
                return 2;
            }
            total += n;
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        text = lua_tolstring(L, -1, &len);
    }
    if (len > PN_SANDBOX_CHUNK_MAX) {
        lua_pushnil(L);
        lua_pushfstring(L, "chunk larger than %d bytes", (int)PN_SANDBOX_CHUNK_MAX);
        return 2;
    }
    if (!strchr(mode, 't')) {
        lua_pushnil(L);
        lua_pushfstring(L, "attempt to load a text chunk (mode is '%s')", mode);
        return 2;
    }
    int st = luaL_loadbufferx(L, text, len, name, "t");
    check_clock(L); /* a megabyte of source takes a while to parse */
    if (st != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    }
    return 1;
}

/* ---- metatables: no finalizers -------------------------------------------------- */

/* Lua runs __gc with hooks off, so a finalizer could loop forever. Lua only
 * marks an object for finalization when its metatable has __gc (a raw
 * field) at the moment it is set, so refusing such metatables here is
 * enough: debug.setmetatable is gone, and the host's own metatables are
 * protected by __metatable. */
static int sb_setmetatable(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int gc = lua_rawget(L, 2) != LUA_TNIL;
        lua_pop(L, 1);
        if (gc)
            return luaL_error(L, "setmetatable: __gc finalizers are not allowed in handler "
                                 "scripts; use <close> variables or explicit cleanup");
    }
    lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
    return f(L);
}

/* ---- xpcall: no message handler after a kill ------------------------------------ */

static int sb_msgh(lua_State *L) {
    sandbox *sb = get(L);
    /* Raised from the hook, the error runs its handler with hooks off. */
    if (sb && sb->killed) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sb_xpcall(lua_State *L) {
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sb_msgh, 1);
    lua_replace(L, 2);
    /* The library's xpcall, in this frame: it keeps its continuation, so
     * the protected function may still yield. */
    lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
    return f(L);
}

/* ---- coroutines: the running thread is known, a killed one stays dead ----------- */

static int is_dead_by_kill(lua_State *co) {
    return lua_gethook(co) == sb_hook_dead && lua_status(co) != LUA_OK &&
           lua_status(co) != LUA_YIELD;
}

/* The runtime keeps its task in the extra space of the threads it owns
 * (runtime.h), and the script's own coroutines copy the main thread's,
 * which is NULL. A task's thread is the host's to resume: resumed or
 * closed by the script while it waits, the host would later resume it for
 * a wait it no longer has, or after it was freed. The main thread is the
 * host's too (an authorize predicate runs there, so coroutine.running()
 * hands it out): the host keeps its own values on its stack, and a reset
 * or a resume of it would pull them from under the host. */
static int host_owned(lua_State *co) {
    sandbox *sb = get(co);
    return co == sb->main || *(void **)lua_getextraspace(co) != NULL;
}

/* Resumes co with the n values on top of L; leaves on L either the results
 * (returns their count + 1, success) or the error (returns -1). */
static int resume_co(lua_State *L, lua_State *co, int n) {
    if (!lua_checkstack(co, n)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    int st = lua_status(co);
    lua_Debug ar;
    if (co == L || (st == LUA_OK && lua_getstack(co, 0, &ar))) {
        lua_pushliteral(L, "cannot resume non-suspended coroutine");
        return -1;
    }
    if ((st == LUA_OK && lua_gettop(co) == 0) || (st != LUA_OK && st != LUA_YIELD)) {
        lua_pushliteral(L, "cannot resume dead coroutine");
        return -1;
    }
    lua_xmove(L, co, n);
    sandbox *sb = get(L);
    lua_State *prev = sb->running;
    sb->running = co;
    arm_thread(sb, co); /* it may have kept a longer count since it last ran */
    int nres = 0;
    st = lua_resume(co, L, n, &nres);
    sb->running = prev;
    /* A kill inside co also ends the resumer: at its next instruction. */
    if (sb->killed) lua_sethook(L, sb_hook_dead, LUA_MASKCOUNT, 1);
    if (st == LUA_OK || st == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres + 1;
    }
    lua_xmove(co, L, 1);
    return -1;
}

static int co_resume(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    if (host_owned(co) && co != L) {
        lua_pushboolean(L, 0);
        lua_pushliteral(
            L, "cannot resume the host's or a handler's own coroutine: it belongs to the host");
        return 2;
    }
    int r = resume_co(L, co, lua_gettop(L) - 1);
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -r);
    return r;
}

/* Runs co's pending __close handlers, except for a coroutine the budget
 * killed: its hooks are off for good, so they would run unbounded. */
static int close_co(lua_State *L, lua_State *co) {
    if (is_dead_by_kill(co)) return LUA_ERRRUN;
    sandbox *sb = get(L);
    lua_State *prev = sb->running;
    sb->running = co;
    int st = lua_resetthread(co);
    sb->running = prev;
    return st;
}

static int co_wrapped(lua_State *L) {
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int r = resume_co(L, co, lua_gettop(L));
    if (r >= 0) return r - 1;
    if (lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD && !is_dead_by_kill(co)) {
        /* An error ends the coroutine: its pending __close handlers run
         * now, and one of their errors replaces the first. */
        lua_pushvalue(L, -1);
        lua_xmove(L, co, 1);
        if (close_co(L, co) != LUA_OK) {
            lua_pop(L, 1);
            lua_xmove(co, L, 1);
        }
    }
    if (lua_type(L, -1) == LUA_TSTRING) { /* where it happened, as coroutine.wrap says */
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int co_wrap(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, co_wrapped, 1);
    return 1;
}

static int co_close(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    int st = lua_status(co);
    lua_Debug ar;
    if (co == L || (st == LUA_OK && lua_getstack(co, 0, &ar)))
        return luaL_error(L, "cannot close a %s coroutine", co == L ? "running" : "normal");
    if (is_dead_by_kill(co)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "the coroutine was stopped for CPU: its __close handlers do not run");
        return 2;
    }
    if (host_owned(co))
        return luaL_error(
            L, "cannot close the host's or a handler's own coroutine: it belongs to the host");
    st = close_co(L, co);
    if (st == LUA_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_xmove(co, L, 1);
    return 2;
}

/* ---- library calls: their time counts -------------------------------------------- */

/* A library function called in this frame, then the clock: a call on
 * megabytes (utf8.len, table.sort, string.rep) is one VM instruction. */
static int sb_timed(lua_State *L) {
    lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
    int n = f(L);
    check_clock(L);
    return n;
}

/* string.rep: refused before it allocates past the cap (a refused
 * allocation costs the state an emergency collection). */
static int sb_rep(lua_State *L) {
    size_t l;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    size_t sl = 0;
    if (lua_type(L, 3) == LUA_TSTRING) lua_tolstring(L, 3, &sl);
    /* Lua would copy nothing n times: ("").rep(1e18) never returns. */
    if (n > 0 && l + sl == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (n > 0) {
        sandbox *sb = get(L);
        size_t left = sb->mem < sb->cap ? sb->cap - sb->mem : 0;
        size_t unit = l + sl;
        if (unit > 0 && (uint64_t)n > (uint64_t)(left / unit))
            return luaL_error(L,
                              "not enough memory: string.rep wants more than the %I bytes "
                              "the script has left",
                              (lua_Integer)left);
    }
    return sb_timed(L);
}

/* ---- table functions that loop without allocating ------------------------------ */

/* table.move, table.insert and table.remove loop over a range the script
 * names (or that its __len answers): moving nils allocates nothing and
 * calls nothing back, so neither the allocator nor the hook would ever see
 * table.move({}, 1, 1e18, 1, {}). These do the same moves themselves and
 * read the clock every PN_SANDBOX_LOOP_STEP elements. */
static void loop_tick(lua_State *L, lua_Unsigned *steps) {
    if (++*steps % PN_SANDBOX_LOOP_STEP == 0) check_clock(L);
}

/* Not a table (a value with metamethods, or an error): the library's own. */
static int not_table(lua_State *L) {
    return lua_type(L, 1) != LUA_TTABLE;
}

static int sb_move(lua_State *L) {
    if (not_table(L) || (!lua_isnoneornil(L, 5) && lua_type(L, 5) != LUA_TTABLE))
        return sb_timed(L);
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int dst = lua_isnoneornil(L, 5) ? 1 : 5;
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f;
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n, 4, "destination wrap around");
        lua_Unsigned steps = 0;
        /* Overlapping ranges in one table move from the end. */
        int backward = t > f && t <= e && (dst == 1 || lua_rawequal(L, 1, dst));
        for (lua_Integer i = 0; i <= n; i++) {
            lua_Integer k = backward ? n - i : i;
            lua_geti(L, 1, f + k);
            lua_seti(L, dst, t + k);
            loop_tick(L, &steps);
        }
    }
    lua_pushvalue(L, dst);
    check_clock(L);
    return 1;
}

static int sb_insert(lua_State *L) {
    if (not_table(L)) return sb_timed(L);
    lua_Integer end = luaL_len(L, 1) + 1; /* the first free slot */
    lua_Integer pos = end;
    int n = lua_gettop(L);
    if (n == 3) {
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)end, 2, "position out of bounds");
    } else if (n != 2) {
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_Unsigned steps = 0;
    for (lua_Integer i = end; i > pos; i--) {
        lua_geti(L, 1, i - 1);
        lua_seti(L, 1, i);
        loop_tick(L, &steps);
    }
    lua_pushvalue(L, n);
    lua_seti(L, 1, pos);
    check_clock(L);
    return 0;
}

static int sb_remove(lua_State *L) {
    if (not_table(L)) return sb_timed(L);
    lua_Integer size = luaL_len(L, 1);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
    lua_geti(L, 1, pos); /* the value removed */
    lua_Unsigned steps = 0;
    for (; pos < size; pos++) {
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
        loop_tick(L, &steps);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    check_clock(L);
    return 1;
}

/* table.concat of a table with a metatable: a C function as __index
 * (rawlen answers 0 for any index) hands the library a value per index
 * with no instruction in between, so it filled the buffer up to the
 * memory cap (5 s). This does the same concatenation and reads the clock
 * every PN_SANDBOX_LOOP_STEP elements. A plain table stops at its first
 * hole. */
static int sb_concat(lua_State *L) {
    if (not_table(L) || !lua_getmetatable(L, 1)) return sb_timed(L);
    lua_pop(L, 1);
    lua_Integer last = luaL_len(L, 1);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Unsigned steps = 0;
    /* Stops at i == last before i++: last may be math.maxinteger. */
    for (; i <= last; i++) {
        lua_geti(L, 1, i);
        if (!lua_isstring(L, -1))
            return luaL_error(L, "invalid value (%s) at index %I in table for 'concat'",
                              luaL_typename(L, -1), i);
        luaL_addvalue(&b);
        if (i == last) break;
        luaL_addlstring(&b, sep, lsep);
        loop_tick(L, &steps);
    }
    luaL_pushresult(&b);
    check_clock(L);
    return 1;
}

/* Counts a comparison of table.sort and reads the clock every
 * PN_SANDBOX_SORT_STEP of them; comparing long strings counts for more. */
static void sort_tick(lua_State *L, size_t bytes) {
    sandbox *sb = get(L);
    sb->sort_cost += 1 + bytes / PN_SANDBOX_SORT_BYTES;
    if (sb->sort_cost >= PN_SANDBOX_SORT_STEP) {
        sb->sort_cost = 0;
        check_clock(L);
    }
}

/* The comparison of a sort without a comparator: a < b, as the library
 * would (metamethods, errors), but one string is never compared with
 * itself (Lua's strcoll would walk all of it: 2,000 references to one
 * 8 MiB string took 20 s), and the clock is read as comparisons go by:
 * the sort calls this from C, n log n times, with no VM instruction. */
static int sort_less(lua_State *L) {
    size_t la, lb;
    if (lua_type(L, 1) == LUA_TSTRING && lua_type(L, 2) == LUA_TSTRING) {
        const char *a = lua_tolstring(L, 1, &la), *b = lua_tolstring(L, 2, &lb);
        if (a == b) { /* the same string object */
            sort_tick(L, 0);
            lua_pushboolean(L, 0);
            return 1;
        }
    } else {
        la = lb = 0;
    }
    int lt = lua_compare(L, 1, 2, LUA_OPLT);
    sort_tick(L, la + lb);
    lua_pushboolean(L, lt);
    return 1;
}

/* The script's comparator, called for the sort; a C function as
 * comparator (rawequal, string.find) runs no instruction either. */
static int sort_by(lua_State *L) {
    size_t bytes = 0; /* what a < b in the comparator may walk */
    for (int i = 1; i <= 2; i++)
        if (lua_type(L, i) == LUA_TSTRING) bytes += lua_rawlen(L, i);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    sort_tick(L, bytes);
    return 1;
}

/* table.sort of a table with a metatable: __len can claim 2^31 elements
 * and C functions as __index/__newindex (rawlen, rawequal) answer without
 * running an instruction, so the sort would never return. A plain table's
 * length is what it really holds, bounded by the memory cap. (#t is read
 * here and again by the library: a __len function runs twice.) The
 * library's sort then runs with a comparator of ours around the script's
 * (or around <), so its order and errors are the library's own. */
static int sb_sort(lua_State *L) {
    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
        lua_pop(L, 1);
        lua_Integer n = luaL_len(L, 1);
        if (n > PN_SANDBOX_SORT_META_MAX)
            return luaL_error(L,
                              "table.sort: a table with a metatable may have at most %d "
                              "elements (this one says %I)",
                              (int)PN_SANDBOX_SORT_META_MAX, n);
    }
    /* Anything else as the comparator is the library's to refuse (it
     * looks only when there are two elements or more). */
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushcfunction(L, sort_less);
    } else if (lua_type(L, 2) == LUA_TFUNCTION) {
        lua_settop(L, 2);
        lua_pushcclosure(L, sort_by, 1);
    }
    return sb_timed(L);
}

static lua_CFunction wrapper_for(const char *lib, const char *name) {
    if (strcmp(lib, LUA_STRLIBNAME) == 0 && strcmp(name, "rep") == 0) return sb_rep;
    if (strcmp(lib, LUA_TABLIBNAME) == 0) {
        if (strcmp(name, "move") == 0) return sb_move;
        if (strcmp(name, "insert") == 0) return sb_insert;
        if (strcmp(name, "remove") == 0) return sb_remove;
        if (strcmp(name, "sort") == 0) return sb_sort;
        if (strcmp(name, "concat") == 0) return sb_concat;
    }
    return sb_timed;
}

/* Pattern functions are bounded by their own step counter, elsewhere. */
static int untimed(const char *lib, const char *name) {
    if (strcmp(lib, LUA_STRLIBNAME) != 0) return 0;
    static const char *const skip[] = {"find", "match", "gmatch", "gsub", NULL};
    for (int i = 0; skip[i]; i++)
        if (strcmp(name, skip[i]) == 0) return 1;
    return 0;
}

static void time_library(lua_State *L, const char *lib) {
    lua_getglobal(L, lib);
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (name && lua_iscfunction(L, -1) && !untimed(lib, name)) {
            lua_pushcclosure(L, wrapper_for(lib, name), 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t); /* an existing key: next() stays valid */
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

static void wrap_global(lua_State *L, const char *name, lua_CFunction f) {
    lua_getglobal(L, name);
    lua_pushcclosure(L, f, 1);
    lua_setglobal(L, name);
}

static int sb_collectgarbage(lua_State *L) {
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed here; only \"count\"", opt);
    lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
                          (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
    return 1;
}

static void open_lib(lua_State *L, const char *name, lua_CFunction open) {
    luaL_requiref(L, name, open, 1);
    lua_pop(L, 1);
}

static void drop(lua_State *L, const char *table, const char *field) {
    lua_getglobal(L, table);
    lua_pushnil(L);
    lua_setfield(L, -2, field);
    lua_pop(L, 1);
}

static int open_safe(lua_State *L) {
    open_lib(L, LUA_GNAME, luaopen_base);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
    open_lib(L, LUA_COLIBNAME, luaopen_coroutine);

    static const char *const gone[] = {"dofile", "loadfile", "require", "print", NULL};
    for (int i = 0; gone[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, gone[i]);
    }
    lua_pushcfunction(L, sb_load);
    lua_setglobal(L, "load");
    wrap_global(L, "setmetatable", sb_setmetatable);
    wrap_global(L, "xpcall", sb_xpcall);
    static const luaL_Reg co_fns[] = {
        {"resume", co_resume}, {"wrap", co_wrap}, {"close", co_close}, {NULL, NULL}};
    lua_getglobal(L, LUA_COLIBNAME);
    luaL_setfuncs(L, co_fns, 0);
    lua_pop(L, 1);
    time_library(L, LUA_STRLIBNAME);
    time_library(L, LUA_TABLIBNAME);
    time_library(L, LUA_UTF8LIBNAME);
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setglobal(L, "collectgarbage");
    drop(L, LUA_STRLIBNAME, "dump");
    pn_lpattern_install(L); /* patterns with a step budget: Lua's cannot be stopped */

    /* os: only the clock and the calendar. */
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    lua_createtable(L, 0, 3);
    static const char *const os_keep[] = {"time", "clock", "date", NULL};
    for (int i = 0; os_keep[i]; i++) {
        lua_getfield(L, -2, os_keep[i]);
        lua_setfield(L, -2, os_keep[i]);
    }
    lua_setglobal(L, LUA_OSLIBNAME);
    lua_pop(L, 1);
    /* The loaded-modules table would hand back the full os library. */
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);

    /* Every string shares one metatable: make it unreachable. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    return 0;
}

lua_State *pn_sandbox_new(const pn_sandbox_limits *lim, pn_err *e) {
    sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    sb->cap = lim && lim->mem_cap ? lim->mem_cap : PN_SANDBOX_MEM_DEFAULT;
    sb->budget = lim && lim->budget ? lim->budget : PN_SANDBOX_BUDGET_DEFAULT;
    uint32_t ms = lim && lim->slice_ms ? lim->slice_ms : PN_SANDBOX_SLICE_MS_DEFAULT;
    if (ms > PN_SANDBOX_SLICE_MS_MAX) ms = PN_SANDBOX_SLICE_MS_MAX;
    sb->slice_ns = (uint64_t)ms * 1000000u;
    sb->unlimited = 1;         /* while the libraries open */
    sb->deadline = UINT64_MAX; /* no slice while the libraries open */
    lua_State *L = lua_newstate(sb_alloc, sb);
    if (!L) {
        free(sb);
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    /* Threads copy the main thread's extra space: it must say "not the
     * host's" (host_owned). Lua leaves it uninitialised. */
    *(void **)lua_getextraspace(L) = NULL;
    lua_pushcfunction(L, open_safe);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        pn_err_set(e, PN_ENOMEM, "cannot open the sandbox: %s", lua_tostring(L, -1));
        pn_sandbox_close(L);
        return NULL;
    }
    sb->unlimited = 0;
    sb->main = L;
    sb->running = L; /* between resumes: the main thread, which lives as long as the state */
    pn_sandbox_begin(L);
    return L;
}

void pn_sandbox_close(lua_State *L) {
    sandbox *sb = get(L);
    sb->unlimited++; /* finalizers may allocate while the state closes */
    lua_close(L);
    free(sb);
}

int pn_sandbox_load(lua_State *L, const char *text, size_t len, const char *chunkname) {
    return luaL_loadbufferx(L, text, len, chunkname, "t");
}
