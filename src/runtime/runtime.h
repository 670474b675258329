/*
 * The script runtime: Lua scripts serving and calling through one pn_host.
 *
 * A script is one lua_State: a sandboxed handler script from a directory
 * (one state per file, replaced on reload), or the trusted state of a run
 * script (the interpreter's own state, with luv). Every piece of script code
 * the host starts (a handler serving a call, a timer, an event, the main
 * chunk) runs as a task: a coroutine the runtime owns, so peernet.call,
 * peernet.connect, peernet.sleep and host.exec yield it and the loop
 * resumes it when the answer arrives. A handler script's resumes go
 * through its run queue, served round-robin across scripts from a uv_idle
 * (PN_RT_TURN_MS per loop turn), so one script's backlog of slices never
 * holds the loop's I/O or another script for more than one resume.
 *
 * Files: runtime.c (scripts, tasks, dispatch, admin), api.c (the `peernet`
 * table a script sees), scriptdir.c (the watched directory), caps.c (the
 * operator's grants: host.exec, host.read, host.write), bind_runtime.c (the
 * Lua face: peernet.runtime).
 */
#ifndef PN_RUNTIME_H
#define PN_RUNTIME_H

#include <lua.h>
#include <uv.h>

#include "peernet/peernet.h"
#include "core/etf.h"
#include "core/file.h"
#include "core/logline.h"
#include "lua/sandbox.h"

#define PN_RT_SCRIPT_MAX (1u << 20) /* bytes of one script file */
#define PN_RT_SCRIPTS_MAX 256       /* files in a handler directory */
#define PN_RT_RETIRE_GRACE_MS 30000 /* a replaced script's calls may run this long */
/* A task is not started in a script with less than this (plus the size of
 * its arguments) left under its cap: it would fail anyway, after an
 * emergency collection of the whole state. */
#define PN_RT_TASK_HEADROOM (16u << 10)
#define PN_RT_CAP_GC_MS 1000  /* at the cap, one full collection per script at most this often */
#define PN_RT_LOG_MAX 2048    /* bytes of one log line before escaping */
#define PN_RT_ERRMSG_MAX 1024 /* bytes of a script's error message kept for the log */
#define PN_RT_ADMIN "beam_admin"
#define PN_RT_EVENT_FNS_MAX 64 /* peernet.on functions per event and script */
/* Resumes of handler scripts wait in a run queue served round-robin across
 * scripts; one loop turn serves resumes for at most this long (and at
 * least one) before the loop polls I/O again. */
#define PN_RT_TURN_MS 5

typedef struct pn_rt pn_rt;
typedef struct pn_script pn_script;
typedef struct pn_task pn_task;
typedef struct pn_wait pn_wait;
typedef struct pn_caps pn_caps;

typedef struct pn_rt_opts {
    pn_sandbox_limits limits;
    const char *config_path; /* the operator's grants (config.lua); NULL: none */
    const char *trust_path;  /* trust.list: peers may be named by label; NULL: keys only */
    pn_log_fn log;           /* NULL: warnings and errors to stderr */
    void *log_ud;
    /* An uncaught error in a trusted task (a run script): message with traceback. */
    void (*on_error)(void *ud, const char *msg);
    void *on_error_ud;
} pn_rt_opts;

/* ---- runtime.c ---------------------------------------------------------- */

pn_rt *pn_rt_new(pn_host *h, uv_loop_t *loop, const pn_rt_opts *o, pn_err *e);
/* Cancels every task, closes every sandboxed state, revokes every handle
 * the runtime exposed. The trusted state stays (it is the caller's).
 * Called from inside a script (rt:close() in a run script's task), it takes
 * effect when that script's resume returns; the log and error callbacks
 * are dropped at once. */
void pn_rt_close(pn_rt *rt);

/* Makes L (a trusted state) a script of rt and pushes its `peernet` table. */
int pn_rt_trusted(pn_rt *rt, lua_State *L, pn_err *e);
/* Runs the function below nargs arguments on L (the trusted state) as a task. */
int pn_rt_spawn(pn_rt *rt, lua_State *L, int nargs, pn_err *e);
/* Trusted work remains: exposed handles, timers, tasks. */
int pn_rt_busy(const pn_rt *rt);

/* Loads one sandboxed script (admin = 1: a module whose chunk returns its
 * table, registered under the file's base name). A file already loaded is
 * replaced atomically, or kept when the new text fails. */
int pn_rt_load_file(pn_rt *rt, const char *path, int admin, pn_err *e);
/* Unloads the script from path: its handles are revoked. */
void pn_rt_unload_file(pn_rt *rt, const char *path);

/* Graceful stop: revokes every handle, stops listening, and calls cb once
 * the calls being served have finished or after ms. */
void pn_rt_drain(pn_rt *rt, uint32_t ms, void (*cb)(void *ud), void *ud);

/* One entry per loaded (or failed) script, for reports. */
typedef struct pn_rt_script_info {
    const char *path;
    int ok, admin;
    const char *error; /* the last load error, "" when none */
    uint32_t handles, tasks;
    size_t mem;
} pn_rt_script_info;
void pn_rt_scripts(const pn_rt *rt,
                   int (*fn)(const pn_rt_script_info *i, const char **names, uint32_t nnames,
                             void *ud),
                   void *ud);

/* ---- scriptdir.c --------------------------------------------------------- */

/* Loads every .lua file in dir and dir/admin/, and follows the directory:
 * changed files reload, new ones load, deleted ones unload. */
int pn_rt_watch_dir(pn_rt *rt, const char *dir, pn_err *e);

/* ---- internals shared by runtime.c, api.c, caps.c, scriptdir.c ------------ */

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
    int pins; /* a caller still holds it: freed when the last unpins */
    uint32_t ntasks;
    pn_task *tasks;
    pn_binding *bindings;
    pn_timer *timers;
    int events_ref; /* registry: {connected = {fn...}, ...} */
    pn_caps *caps;
    uv_timer_t *grace; /* retired with tasks still running */
    unsigned char hash[32];
    uint64_t cap_gc_ms; /* uv_now() of the last collection made because the script was full */
    char error[512];    /* the last load error */
    pn_script **handle; /* the API closures' pointer to us: NULLed on close */
    pn_task *ready, *ready_tail; /* tasks waiting in the run queue, oldest first */
    pn_script *rr_next;          /* the next script in rt's round-robin of ready scripts */
    int in_rr;
    uint64_t bench_until; /* uv_hrtime() before which the run queue skips it (on_runq) */
    pn_script *next;
};

struct pn_binding {
    pn_script *s; /* NULL once the script is gone */
    int fn_ref, auth_ref;
    int builtin_admin; /* beam_admin */
    int exposed;       /* registered with the host (the host then owns it) */
    pn_binding *next;
    char name[PN_ETF_ATOM_MAX_UTF8 + 1];
};

struct pn_timer {
    uv_timer_t t;
    pn_script *s;
    int fn_ref;
    int repeat;
    pn_task *running; /* every(): a tick is skipped while the last one runs */
    void **handle;    /* the Lua timer object's pointer to us, or NULL */
    pn_timer *next;
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
    int admin_gate;  /* the predicate guards beam_admin: the call goes to admin_dispatch */
    pn_timer *timer; /* the every() that started it */
    pn_wait *wait;   /* what it is waiting for; NULL while running */
    int req_gone;    /* the call's connection closed: cancelled by the next reap */
    int queued;      /* in its script's run queue, with nargs values on co */
    int nargs;
    pn_task *ready_prev, *ready_next;
    pn_task *prev, *next;
    char what[96]; /* for logs: "handler lights.on" */
};

/* Something a task waits for. The waiter's callback finds task == NULL when
 * the task was cancelled meanwhile and only frees itself. */
enum { PN_WAIT_CALL, PN_WAIT_CONNECT, PN_WAIT_SLEEP, PN_WAIT_EXEC };
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
    char *trust_path;
    struct pn_trust *labels; /* trust_path as last read, for peernet.resolve */
    pn_script *scripts;      /* sandboxed, live and retired */
    pn_script *trusted;      /* the run script's state, if any */
    uv_async_t keepalive;    /* referenced while the trusted state is busy */
    struct pn_dir *dir;
    int serving; /* tasks answering a call */
    void (*drain_cb)(void *ud);
    void *drain_ud;
    uv_timer_t drain_timer;
    uv_timer_t reap_timer;   /* cancels tasks whose call's connection closed, from the loop */
    uv_idle_t runq;          /* active while a handler script has a resume waiting */
    pn_script *rr, *rr_tail; /* scripts with ready tasks, served in turn */
    uv_timer_t bench;        /* restarts runq when every ready script is benched */
    /* Lines a peer can cause at will (a handler failing on its arguments,
     * a reply that cannot be encoded): one per kind and handler a window,
     * then a count (core/logline.c, the host's log_window). */
    pn_logline_limit loglimit;
    uv_timer_t log_timer;
    int reap_pending;
    int draining, closing;
    int host_gone; /* the host was closed first: nothing more to revoke */
    int resuming;  /* script coroutines running on the C stack now */
    int close_pending, scripts_close_pending; /* asked for while resuming */
};

pn_script *pn_rt_script_of(lua_State *L); /* the script whose API L is calling */
void pn_rt_log(pn_rt *rt, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* pn_rt_log for a line a remote peer can cause at will: the first of its
 * key in a window is written, the rest counted in one summary line. */
void pn_rt_log_limited(pn_rt *rt, int level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The running task of L, or NULL when L is not a task's coroutine or runs
 * an authorize predicate (which must answer at once: nothing may wait). */
pn_task *pn_rt_task_of(lua_State *L);
/* Suspends the task until w completes: returns lua_yield's value. */
int pn_rt_task_wait(lua_State *L, pn_task *t, pn_wait *w);
/* Resumes a waiting task with the nres values pushed on its coroutine: at
 * once for the trusted state, from the run queue for a handler script. */
void pn_rt_task_resume(pn_task *t, int nres);
/* Starts fn_ref (a registry ref in s->L) as a task with nargs values that
 * push(ud) pushes; NULL when the script is retired or out of memory. */
pn_task *pn_rt_task_start(pn_script *s, int kind, int fn_ref, const char *what,
                          int (*push)(lua_State *co, void *ud), void *ud);
int pn_rt_expose(pn_script *s, const char *name, int fn_ref, int auth_ref, int admin, pn_err *e);
int pn_rt_revoke(pn_script *s, const char *name);
int pn_rt_admin_register(pn_script *s, const char *name, int table_idx, pn_err *e);
void pn_rt_update_keepalive(pn_rt *rt);
void pn_rt_timer_free(pn_timer *t);
void pn_rt_dir_close(pn_rt *rt); /* scriptdir.c */
/* Each file of the watched directory with its last load error (NULL: loaded). */
void pn_rt_dir_files(const pn_rt *rt,
                     int (*fn)(const char *path, int admin, const char *error, void *ud), void *ud);

/* api.c: pushes the `peernet` table for s (and `host` when sandboxed). */
void pn_api_open(lua_State *L, pn_script *s);

/* caps.c */
int pn_caps_for(pn_rt *rt, pn_script *s, pn_err *e); /* reads config, fills s->caps */
void pn_caps_free(pn_caps *c);
void pn_caps_open(lua_State *L, pn_script *s); /* the `host` table */

#endif
