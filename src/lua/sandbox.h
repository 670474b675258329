/*
 * A sandboxed lua_State for one handler script (DESIGN.md "The sandbox").
 *
 * What it bounds: memory (a counting lua_Alloc that refuses past the cap),
 * CPU (a count hook that ends a resume after a budget of VM instructions or
 * a slice of wall-clock time, whichever comes first, and keeps ending it at
 * every instruction if the script catches the error), and reach (only the
 * base functions that touch nothing outside the state,
 * string/table/math/utf8/coroutine, os.time/clock/date; `load` takes text
 * chunks of at most PN_SANDBOX_CHUNK_MAX bytes; the string metatable is
 * read-only; metatables with __gc are refused).
 *
 * Comparing two long strings is one instruction too: while the state
 * holds a block of PN_SANDBOX_BIG_BYTES (PN_SANDBOX_HUGE_BYTES) or more,
 * the hook runs every PN_SANDBOX_HOOK_STEP_BIG (_HUGE) instructions.
 *
 * Time, not only instructions: one VM instruction may be a C library call
 * that works on megabytes, so the clock is also read after every call of a
 * string/table/utf8 function and every PN_SANDBOX_CLOCK_BYTES of
 * allocation (which then makes the hook run at the next instruction);
 * table.move/insert/remove (and table.concat of a table with a
 * metatable), which can loop without allocating, read it every
 * PN_SANDBOX_LOOP_STEP elements, table.sort every
 * PN_SANDBOX_SORT_STEP comparisons (long strings count more), the pattern
 * functions after heavy work and between a gsub's replacements, load
 * between its reader's pieces, and host code working for the script (the
 * encoder) asks pn_sandbox_late().
 *
 * The host's threads (task coroutines, the main thread) cannot be resumed
 * or closed by the script.
 *
 * A killed thread stays dead: Lua runs hooks with hooks off, so code that
 * runs because of the kill (an xpcall message handler, a __close of the
 * killed coroutine, a finalizer) would run unbounded. The message handler
 * is skipped once the budget is spent, killed coroutines are never closed
 * (their __close handlers do not run), and __gc is refused outright
 * (finalizers run with hooks off even without a kill).
 *
 * The cap holds while script code runs. The host's own bookkeeping in the
 * state (creating a coroutine, building a traceback) runs with the cap
 * lifted (pn_sandbox_lift) so that a full state can still be told
 * that it failed; such work is bounded by the host, not by the script.
 */
#ifndef PN_SANDBOX_H
#define PN_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "peernet/err.h"

#define PN_SANDBOX_MEM_DEFAULT (64u << 20)   /* bytes per script */
#define PN_SANDBOX_BUDGET_DEFAULT 200000000u /* VM instructions per resume, ~1 s */
#define PN_SANDBOX_SLICE_MS_DEFAULT 1000u    /* wall-clock ms per resume */
#define PN_SANDBOX_SLICE_MS_MAX 60000u       /* the largest slice an operator may set */
#define PN_SANDBOX_HOOK_STEP 1000            /* instructions between budget checks */
/* A state holding blocks this large is hooked more often: comparing two
 * long strings is one instruction that walks them both. */
#define PN_SANDBOX_BIG_BYTES (256u << 10)
#define PN_SANDBOX_HOOK_STEP_BIG 100 /* instructions between checks with a big block */
#define PN_SANDBOX_HUGE_BYTES (4u << 20)
#define PN_SANDBOX_HOOK_STEP_HUGE 10        /* instructions between checks with a huge block */
#define PN_SANDBOX_CLOCK_BYTES (256u << 10) /* bytes allocated between clock checks */
#define PN_SANDBOX_CHUNK_MAX (1u << 20)     /* bytes of one chunk given to load */
#define PN_SANDBOX_SORT_META_MAX                                                                   \
    (1 << 16)                     /* elements table.sort takes from a table with a metatable */
#define PN_SANDBOX_LOOP_STEP 1024 /* elements table.move/insert/remove move between clock reads */
#define PN_SANDBOX_SORT_STEP 64   /* table.sort comparisons between clock reads */
#define PN_SANDBOX_SORT_BYTES                                                                      \
    (64u << 10) /* bytes of compared strings that count as one more comparison */

typedef struct pn_sandbox_limits {
    size_t mem_cap;    /* 0: PN_SANDBOX_MEM_DEFAULT */
    uint64_t budget;   /* 0: PN_SANDBOX_BUDGET_DEFAULT */
    uint32_t slice_ms; /* 0: PN_SANDBOX_SLICE_MS_DEFAULT */
} pn_sandbox_limits;

/* A new sandboxed state with its safe libraries open and `_G` ready for
 * the runtime to add `peernet`/`host`. NULL (and e filled) when out of
 * memory. lim may be NULL for the defaults. */
lua_State *pn_sandbox_new(const pn_sandbox_limits *lim, pn_err *e);
void pn_sandbox_close(lua_State *L);

/* Is L (any thread) a sandboxed state? */
int pn_sandbox_is(lua_State *L);

/* Starts a new budget (instructions and time) for running co, a thread of
 * the state (its main thread for a predicate): call before each resume of
 * script code, and pn_sandbox_end(co, returned value) after it. */
lua_State *pn_sandbox_begin(lua_State *co);
void pn_sandbox_end(lua_State *co, lua_State *prev);
/* Has the current slice's time run out? Host code working for the script
 * in C (an encoding) asks every so many steps and fails what it is doing;
 * then pn_sandbox_kill. 0 outside a sandbox and while the host does its
 * own bookkeeping. */
int pn_sandbox_late(lua_State *L);
/* Reads the clock and, once the slice has run out (or the budget is
 * spent), raises the kill in L as the hook would. For C functions that
 * call other functions from C (gsub's replacements, load's reader, a
 * sort's comparator): no VM instruction runs between those calls, so the
 * count hook never gets to look. Nothing outside a sandbox or while the
 * host does its own bookkeeping. */
void pn_sandbox_check(lua_State *L);
/* Raises msg in L as a budget kill: L is stopped again at every
 * instruction, as when the hook ends a slice (the message says why). */
int pn_sandbox_kill(lua_State *L, const char *msg);
/* Did the current budget run out (the script was stopped for CPU)? */
int pn_sandbox_over_budget(lua_State *L);

/* Lifts the memory cap for the host's own bookkeeping in L's state and
 * returns what was in force before; pn_sandbox_restore(L, prev) puts that
 * back. A restore sets the state, it does not count down: a lift whose
 * restore was skipped (an early return) is undone by the enclosing
 * restore, so no path leaves the cap lifted.
 *
 * Host code uses the pair through PN_SANDBOX_LIFTED, never by hand.
 */
int pn_sandbox_lift(lua_State *L);
void pn_sandbox_restore(lua_State *L, int prev);

/* Runs the block that follows with the cap of L's state lifted and puts
 * back what was in force when the block ends:
 *
 *   PN_SANDBOX_LIFTED(L) {
 *       ...host bookkeeping that must not fail at the cap...
 *   }
 *
 * The block must end by falling off its end: a return, break or goto out
 * of it skips the restore (the enclosing restore would undo it, but the
 * cap would stay lifted until then). A Lua error raised in it is the same
 * as a return; only code whose state is closed right after may do that. */
#define PN_SANDBOX_LIFTED(L)                                                                       \
    for (int pn_lifted_prev_ = pn_sandbox_lift(L), pn_lifted_once_ = 1; pn_lifted_once_;           \
         pn_lifted_once_ = 0, pn_sandbox_restore((L), pn_lifted_prev_))

/* Bytes the state holds now, and its cap. */
size_t pn_sandbox_mem_used(lua_State *L);
size_t pn_sandbox_mem_cap(lua_State *L);
/* Bytes script code may still allocate (SIZE_MAX for a state that is not
 * sandboxed): what a host function building something for the script (an
 * encoding, a reply) may spend. */
size_t pn_sandbox_mem_left(lua_State *L);

/* Loads text (never a binary chunk) as a function in L's globals; on
 * failure pushes the message ("name:line: ...") and returns the load status. */
int pn_sandbox_load(lua_State *L, const char *text, size_t len, const char *chunkname);

#endif
