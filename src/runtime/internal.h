/*
 * What the engine's files share (runtime.h is the public face): the
 * runtime, its scripts, tasks, handles and timers, and the functions that
 * move them between files. Each function's prefix names its file:
 * pn_task_ task.c, pn_runq_ runq.c, pn_script_ script.c, pn_scriptdir_
 * scriptdir.c, pn_handler_ handler.c, pn_admin_ admin.c, pn_event_
 * event.c, pn_timer_ timer.c, pn_api_ api.c, pn_caps_ caps.c, pn_rt_log
 * rt_log.c; pn_rt_ alone is the runtime object's lifecycle (new, drain,
 * close, keepalive) in runtime.c (scripts/check-names checks this).
 */
#ifndef PN_RT_INTERNAL_H
#define PN_RT_INTERNAL_H

#include <lua.h>
#include <uv.h>

#include "core/etf.h"
#include "core/file.h"
#include "core/logline.h"
#include "core/list.h"
#include "core/reason.h"
#include "net/handles.h"
#include "runtime.h"

/* A task is not started in a script with less than this (plus the size of
 * its arguments) left under its cap: it would fail anyway, after an
 * emergency collection of the whole state. */
#define PN_RT_TASK_HEADROOM (16u << 10)
#define PN_RT_CAP_GC_MS 1000 /* at the cap, one full collection per script at most this often */
#define PN_RT_LOG_MAX 2048   /* bytes of one log line before escaping */
#define PN_RT_ADMIN "beam_admin"
/* Handles the host itself serves (serve's push and logs, docs/remote.md):
 * no script may expose a name that starts with it. */
#define PN_RT_RESERVED_PREFIX "peernet."
#define PN_RT_EVENT_FNS_MAX 64 /* peernet.on functions per event and script */
#define PN_RT_WHAT_MAX 96      /* bytes of a task's description for logs */
#define PN_RT_HASH_LEN 32      /* crypto_generichash_BYTES: a script text's hash */
/* Resumes of handler scripts wait in a run queue served round-robin across
 * scripts; one loop turn serves resumes for at most this long (and at
 * least one) before the loop polls I/O again. */
#define PN_RT_TURN_MS 5
/* Finished tasks a handler script keeps, with their coroutines, for its
 * next calls (task.c): a coroutine and a registry slot made per call were
 * a tenth of serve's time per call. Kept only while the script has a
 * quarter of its cap left; they count against the cap (they live in its
 * state) and are let go before the collection of a full script. */
#define PN_RT_TASK_POOL 256
/* Task structs (a few hundred bytes, no Lua state) a script keeps for
 * the calls waiting their turn: a burst waits as long as the sends that
 * pause a link (PN_SENDS_PAUSE_MARK of the default max_calls_in_flight). */
#define PN_RT_TASK_SPARE 2048

typedef struct pn_script pn_script;
typedef struct pn_task pn_task;
typedef struct pn_wait pn_wait;
typedef struct pn_caps pn_caps;
typedef struct pn_caps_conf pn_caps_conf;
typedef struct pn_binding pn_binding;
typedef struct pn_timer pn_timer;

struct pn_script {
    pn_rt *rt;
    lua_State *L;  /* the main thread */
    char *path;    /* the file, or "(run)" */
    int sandboxed; /* 0: the trusted state of a run script */
    int admin;     /* an admin module (dir/admin/NAME.lua) */
    int loading;   /* the chunk's first run: exposes are staged */
    int retired;   /* replaced or deleted: closes when its tasks end */
    int closed;
    int pins;         /* a caller still holds it: freed when the last unpins */
    pn_list tasks;    /* pn_task.link, newest first */
    pn_list pool;     /* pn_task.link: finished tasks kept for reuse (sandboxed only) */
    pn_list spare;    /* pn_task.link: pooled structs whose coroutine a deferred task took */
    pn_list bindings; /* pn_binding.link, newest first */
    pn_list timers;   /* pn_timer.link */
    int events_ref;   /* registry: {connected = {fn...}, ...} */
    pn_caps *caps;
    uv_timer_t *grace;                  /* retired with tasks still running */
    unsigned char hash[PN_RT_HASH_LEN]; /* of the text, to tell a touch from a change */
    uint64_t cap_gc_ms; /* uv_now() of the last collection made because the script was full */
    /* Argument bytes of the calls waiting their turn with no coroutine
     * yet (pn_task.held): a new call is let in as if they were in the
     * state already, so a backlog is bounded by the script's cap, not by
     * calls in flight times the frame cap. */
    size_t waiting;
    char error[PN_ERR_MSG_MAX]; /* the last load error (a pn_err's message) */
    pn_script **handle;         /* the API closures' pointer to us: NULLed on close */
    pn_list ready;        /* pn_task.ready_link: tasks waiting in the run queue, oldest first */
    pn_link rr_link;      /* in rt->rr while it has ready tasks */
    uint64_t bench_until; /* uv_hrtime() before which the run queue skips it */
    pn_link link;         /* in rt->scripts (sandboxed scripts only) */
};

struct pn_binding {
    pn_script *s; /* NULL once the script is gone */
    int fn_ref, auth_ref;
    int builtin_admin; /* beam_admin */
    int exposed;       /* registered with the host (the host then owns it) */
    pn_link link;      /* in s->bindings */
    char name[PN_ETF_ATOM_MAX_UTF8 + 1];
};

/* A timer of the runtime's clock (clock.c): the loop's, or the virtual one. */
typedef struct pn_clock_timer {
    uv_timer_t uv; /* data: the owner, which its close callback frees */
    pn_rt *rt;
    void (*cb)(void *owner);
    void *owner;
    uint64_t due, repeat, seq; /* on the virtual clock */
    pn_link link;              /* in rt->vtimers while armed there */
} pn_clock_timer;

struct pn_timer {
    pn_clock_timer clock;
    pn_script *s;
    int fn_ref;
    int repeat;
    pn_task *running; /* every(): a tick is skipped while the last one runs */
    void **handle;    /* the Lua timer object's pointer to us, or NULL */
    pn_link link;     /* in s->timers */
};

enum { PN_TASK_HANDLER, PN_TASK_ADMIN, PN_TASK_TIMER, PN_TASK_EVENT, PN_TASK_MAIN };

struct pn_task {
    pn_script *s;
    lua_State *co;
    int ref;
    int kind;
    pn_request *req;  /* the call being served */
    pn_request *send; /* the send being served, kept (pn_request_keep): freed with the task */
    /* Its first resume runs the handle's authorize predicate (the
     * handler's function and arguments wait below it on co); the
     * handler runs next only if it says yes. */
    int authorizing;
    int gate_base;   /* values on co below the predicate (lua_resume counts them as results) */
    int admin_gate;  /* the predicate guards beam_admin: the call goes to pn_admin_dispatch */
    pn_timer *timer; /* the every() that started it */
    pn_wait *wait;   /* what it is waiting for; NULL while running */
    int req_gone;    /* the call's connection closed: cancelled by the next reap */
    int nargs;       /* in its script's run queue (ready_link), with nargs values on co */
    int pooled;      /* finished and in s->pool: co is kept, nothing runs on it */
    /* Set until its first run (pn_task_defer): co is NULL and start makes
     * it (coroutine, function, arguments), so a burst of calls waiting
     * its turn holds their requests, not a coroutine and Lua values each. */
    int (*start)(pn_task *t);
    int fn_ref, auth_ref; /* what start pushes: the handle's function and predicate */
    int fail;             /* a pn_reason: start ends the task with it, pushing nothing */
    size_t held;          /* its share of s->waiting until its arguments are pushed */
    pn_link ready_link;
    pn_link link;              /* in s->tasks */
    char what[PN_RT_WHAT_MAX]; /* for logs: "handler lights.on" */
};

/* Something a task waits for. The waiter's callback finds task == NULL when
 * the task was cancelled meanwhile and only frees itself. */
enum { PN_WAIT_CALL, PN_WAIT_CONNECT, PN_WAIT_SLEEP, PN_WAIT_EXEC, PN_WAIT_DRAIN };
struct pn_wait {
    pn_task *task;
    int type;
    void (*cancel)(pn_wait *w); /* detaches from its source; frees when it can */
};

struct pn_rt {
    pn_host *h;
    uv_loop_t *loop;
    pn_rt_opts o;
    char *config_path;
    struct pn_caps_conf *caps_conf; /* config.lua as last read (caps.c) */
    char *trust_path;
    struct pn_trust *labels; /* trust_path as last read, for peernet.resolve */
    pn_list scripts;         /* pn_script.link: sandboxed, live and retired, newest first */
    pn_script *trusted;      /* the run script's state, if any */
    uv_async_t keepalive;    /* referenced while the trusted state is busy */
    struct pn_dir *dir;
    int serving; /* tasks answering a call */
    void (*drain_cb)(void *ud);
    void *drain_ud;
    uv_timer_t drain_timer;
    uv_timer_t reap_timer; /* cancels tasks whose call's connection closed, from the loop */
    uv_idle_t runq;        /* active while a handler script has a resume waiting */
    pn_list rr;            /* pn_script.rr_link: scripts with ready tasks, served in turn */
    uv_timer_t bench;      /* restarts runq when every ready script is benched */
    /* Lines a peer can cause at will (a handler failing on its arguments,
     * a reply that cannot be encoded): one per kind and handler a window,
     * then a count (core/logline.c, the host's log_window). */
    pn_logline_limit loglimit;
    uv_timer_t log_timer;
    int reap_pending;
    int draining;
    int closed;          /* pn_rt_close has run: its handles are closing */
    pn_handles handles;  /* their close group: rt is freed after the last */
    int host_gone;       /* the host was closed first: nothing more to revoke */
    int resuming;        /* script coroutines running on the C stack now */
    uint64_t vnow, vseq; /* the virtual clock (o.virtual_clock): ms, arming order */
    pn_list vtimers;     /* pn_clock_timer.link: armed on it */
    pn_list drains;      /* drain_wait.link (api.c): tasks waiting in peernet.drain */
    int close_pending, scripts_close_pending; /* asked for while resuming */
};

#define PN_SCRIPT_OF(l) PN_CONTAINER(l, pn_script, link)
#define PN_TASK_OF(l) PN_CONTAINER(l, pn_task, link)
#define PN_BINDING_OF(l) PN_CONTAINER(l, pn_binding, link)

/* ---- rt_log.c --------------------------------------------------------------- */

void pn_rt_log(pn_rt *rt, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* pn_rt_log for a line a remote peer can cause at will: the first of its
 * key in a window is written, the rest counted in one summary line. */
void pn_rt_log_limited(pn_rt *rt, int level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes the counts still held back (before the log goes away). */
void pn_rt_log_flush(pn_rt *rt);

/* ---- runtime.c ---------------------------------------------------------------- */

void pn_rt_update_keepalive(pn_rt *rt);
/* The drain is done once no call is being served. */
void pn_rt_drain_check(pn_rt *rt);
/* Closes deferred while a script ran, once no resume is left on the stack. */
void pn_rt_after_resume(pn_rt *rt);
/* Stops every script now (the host is going first). */
void pn_rt_close_scripts(pn_rt *rt);

/* The tasks in peernet.drain for key go on: drained (true), or the link
 * closed (nil, "closed", "closed"). From pn_event_on. */
void pn_api_drained(pn_rt *rt, const uint8_t key[PN_KEY_LEN], int closed);

/* ---- task.c -------------------------------------------------------------------- */

/* The running task of L, or NULL when L is not a task's coroutine or runs
 * an authorize predicate (which must answer at once: nothing may wait). */
pn_task *pn_task_of(lua_State *L);
/* Starts fn_ref (a registry ref in s->L) as a task with nargs values that
 * push(ud) pushes; NULL when the script is retired or out of memory. */
pn_task *pn_task_start(pn_script *s, int kind, int fn_ref, const char *what,
                       int (*push)(lua_State *co, void *ud), void *ud);
/* A task with no coroutine yet: start(t), run where its first resume
 * would, gives it one (pn_task_begin) and returns the values to resume
 * with, or ends it and returns -1. Queue it with pn_task_resume(t, 0). */
pn_task *pn_task_defer(pn_script *s, int kind, const char *what, int (*start)(pn_task *t));
/* Gives a deferred task its coroutine with fn_ref and what push(ud)
 * pushes on it: 0, or -1 when the push failed (logged; co is left empty). */
int pn_task_begin(pn_task *t, int fn_ref, int (*push)(lua_State *co, void *ud), void *ud);
/* The task's arguments stop counting in s->waiting (they are pushed now,
 * or never). */
void pn_task_unhold(pn_task *t);
/* Suspends the task until w completes: returns lua_yield's value. */
int pn_task_wait(lua_State *L, pn_task *t, pn_wait *w);
/* Resumes a waiting task with the nres values pushed on its coroutine: at
 * once for the trusted state, from the run queue for a handler script. */
void pn_task_resume(pn_task *t, int nres);
/* Runs (resumes) the task now with nargs values on its coroutine. */
void pn_task_run(pn_task *t, int nargs);
/* The task is done: forget it and close what waited on it. */
void pn_task_free(pn_task *t);
/* The error at the top of the task's coroutine as text with its
 * traceback, pushed on the script's main thread (the caller pops it). */
const char *pn_task_error_text(pn_task *t);
/* Detaches what it waits for, then frees it. */
void pn_task_cancel(pn_task *t);
/* Lets go of the finished tasks s keeps for reuse (their coroutines
 * become garbage of its state). */
void pn_task_pool_drain(pn_script *s);

/* ---- runq.c -------------------------------------------------------------------- */

void pn_runq_push(pn_task *t, int nargs); /* a handler script's resume waits its turn */
void pn_runq_remove(pn_task *t);
void pn_runq_drop_script(pn_script *s); /* out of the round (it is closing) */
void pn_runq_init(pn_rt *rt);

/* ---- script.c ------------------------------------------------------------------ */

pn_script *pn_script_alloc(pn_rt *rt, const char *path);
void pn_script_close(pn_script *s);
void pn_script_maybe_close(pn_script *s); /* a retired script whose last task ended */
void pn_script_unpin(pn_script *s);
/* Runs the chunk on top of s->L as the script's first task. */
int pn_script_run_chunk(pn_script *s, pn_err *e);
/* Marks s as the script of L's state; pn_script_of finds it from any
 * thread of the state (the script whose API L is calling). */
void pn_script_mark(lua_State *L, pn_script *s);
pn_script *pn_script_of(lua_State *L);
/* Is the script too full to start a task with args_len bytes of arguments? */
int pn_script_full(pn_script *s, size_t args_len);

/* ---- handler.c ----------------------------------------------------------------- */

int pn_handler_expose(pn_script *s, const char *name, int fn_ref, int auth_ref, int admin,
                      pn_err *e);
int pn_handler_revoke(pn_script *s, const char *name);
pn_binding *pn_handler_find(pn_script *s, const char *name);
/* The live script (other than except) that exposes name, if any. */
pn_script *pn_handler_owner(pn_rt *rt, const char *name, const pn_script *except);
/* Registers a staged binding with the host. */
int pn_handler_host_expose(pn_script *s, pn_binding *b, pn_err *e);
/* Revokes every handle of s in the host. */
void pn_handler_unexpose_all(pn_script *s);
/* The authorize predicate of a task has answered, failed or run out. */
void pn_handler_gate_done(pn_task *t, int rc);
/* The task answers the call, or keeps the send until it ends; then runs. */
void pn_handler_hold(pn_task *t, pn_request *req);
void pn_handler_serve(pn_task *t, pn_request *req);
/* Turns a request away: a call gets the reason, a kept send is let go. */
void pn_handler_refuse(pn_request *req, enum pn_reason reason);

/* ---- admin.c -------------------------------------------------------------------- */

int pn_admin_register(pn_script *s, const char *name, int table_idx, pn_err *e);
void pn_admin_dispatch(pn_rt *rt, pn_request *req);

/* ---- event.c -------------------------------------------------------------------- */

void pn_event_on(pn_host *h, pn_event ev, const uint8_t key[PN_KEY_LEN], const char *detail,
                 void *ud);
/* The event name of ev ("connected"...), and NULL past the last; the
 * names in pn_event order, NULL-terminated (for luaL_checkoption). */

/* ---- clock.c -------------------------------------------------------------------- */

void pn_clock_init(pn_rt *rt, pn_clock_timer *ct, void (*cb)(void *owner), void *owner);
void pn_clock_start(pn_clock_timer *ct, uint64_t ms, uint64_t repeat);
/* Disarms it and closes its uv handle with closed. */
void pn_clock_close(pn_clock_timer *ct, uv_close_cb closed);

/* ---- timer.c -------------------------------------------------------------------- */

void pn_timer_free(pn_timer *t);
/* peernet.after / peernet.every, with the script's handle as upvalue 1. */
int pn_timer_after(lua_State *L);
int pn_timer_every(lua_State *L);
void pn_timer_open(lua_State *L); /* the timer object's metatable */

/* ---- api.c: the `peernet` table a script sees ------------------------------------- */

/* Pushes the `peernet` table for s (and sets `host` when sandboxed). */
void pn_api_open(lua_State *L, pn_script *s);
/* The script of an API function (upvalue 1); raises when it is gone. */
pn_script *pn_api_script(lua_State *L);

/* ---- caps.c ---------------------------------------------------------------------- */

int pn_caps_for(pn_rt *rt, pn_script *s, pn_err *e); /* reads config, fills s->caps */
void pn_caps_conf_free(pn_rt *rt);                   /* config.lua as last read */
void pn_caps_open(lua_State *L, pn_script *s);       /* the `host` table */

/* ---- scriptdir.c ------------------------------------------------------------------ */

void pn_scriptdir_close(pn_rt *rt);

#endif
