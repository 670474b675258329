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
 * This is the layer's public header (what the peernet.runtime binding and
 * the executable use); internal.h holds what the engine's files share.
 * Files: runtime.c (lifecycle: new, drain, close), script.c (loading,
 * replacing and closing scripts), task.c (tasks and their resumes), runq.c
 * (the round-robin run queue), handler.c (exposed handles and calls into
 * scripts), admin.c (admin modules and beam_admin), event.c (peernet.on),
 * timer.c (peernet.after/every), rt_log.c (the runtime's log), api.c (the
 * `peernet` table a script sees), caps.c (the operator's grants:
 * host.exec, host.read, host.write), scriptdir.c (the watched directory);
 * src/luamod/bind_runtime.c is the Lua face (peernet.runtime).
 */
#ifndef PN_RUNTIME_H
#define PN_RUNTIME_H

#include <lua.h>
#include <uv.h>

#include "peernet/peernet.h"
#include "core/logline.h"
#include "lua/sandbox.h"

#define PN_RT_SCRIPT_MAX (1u << 20) /* bytes of one script file */
#define PN_RT_SCRIPTS_MAX 256       /* files in a handler directory */
#define PN_RT_RETIRE_GRACE_MS 30000 /* a replaced script's calls may run this long */

typedef struct pn_rt pn_rt;

typedef struct pn_rt_opts {
    pn_sandbox_limits limits;
    const char *config_path; /* the operator's grants (config.lua); NULL: none */
    const char *trust_path;  /* trust.list: peers may be named by label; NULL: keys only */
    pn_log_fn log;           /* NULL: warnings and errors to stderr */
    void *log_ud;
    /* An uncaught error in a trusted task (a run script): message with traceback. */
    void (*on_error)(void *ud, const char *msg);
    void *on_error_ud;
    /* A handler script came, changed, went or failed to load: event is
     * "loaded", "reloaded", "removed" or "failed" (error set only then).
     * When it is given, the info lines that say the same are not logged.
     * It runs inside the load or rescan, so it must not close the runtime. */
    void (*on_script)(void *ud, const char *event, const char *path, const char *error);
    void *on_script_ud;
    /* Tests (peernet.testing): after/every/sleep run on a virtual clock
     * that moves only through pn_clock_advance, and the calls and sends
     * scripts make go to `out` instead of the host: no link is involved.
     * Set only by the trusted side; no script can reach either. */
    int virtual_clock;
    const struct pn_rt_out *out;
    void *out_ud;
} pn_rt_opts;

/* Where the scripts' peernet.call/send/admin.call/connect go instead of the host
 * (pn_rt_opts.out). call: the answer must come later, through cb (once),
 * never from inside call; PN_ESTATE reads not_connected, as pn_host_call's. */
typedef struct pn_rt_out {
    int (*call)(void *ud, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                size_t len, uint32_t timeout_ms, pn_call_cb cb, void *cb_ud, pn_err *e);
    int (*send)(void *ud, const uint8_t peer[PN_KEY_LEN], const char *name, const uint8_t *args,
                size_t len, pn_err *e);
    /* peernet.connect: 0 reads true, at once; else e says why (kind local). */
    int (*connect)(void *ud, const uint8_t peer[PN_KEY_LEN], const char *addr, pn_err *e);
} pn_rt_out;

pn_rt *pn_rt_new(pn_host *h, uv_loop_t *loop, const pn_rt_opts *o, pn_err *e);
/* Cancels every task, closes every sandboxed state, revokes every handle
 * the runtime exposed. The trusted state stays (it is the caller's).
 * Called from inside a script (rt:close() in a run script's task), it takes
 * effect when that script's resume returns; the log and error callbacks
 * are dropped at once. */
void pn_rt_close(pn_rt *rt);

/* Makes L (a trusted state) a script of rt and pushes its `peernet` table. */
int pn_script_trusted(pn_rt *rt, lua_State *L, pn_err *e);
/* Runs the function below nargs arguments on L (the trusted state) as a task. */
int pn_script_spawn(pn_rt *rt, lua_State *L, int nargs, pn_err *e);
/* Trusted work remains: exposed handles, timers, tasks. */
int pn_rt_busy(const pn_rt *rt);

/* Loads one sandboxed script (admin = 1: a module whose chunk returns its
 * table, registered under the file's base name). A file already loaded is
 * replaced atomically, or kept when the new text fails. */
int pn_script_load_file(pn_rt *rt, const char *path, int admin, pn_err *e);
/* Unloads the script from path: its handles are revoked. */
void pn_script_unload_file(pn_rt *rt, const char *path);
/* config.lua may have changed (a watcher saw it): reads it again now, as
 * the next host.* call would, so a broken version is reported at once. */
void pn_caps_config_check(pn_rt *rt);

/* Grants outside a script, as config.lua's (a console session,
 * src/luamod/bind_console.c), checked and carried out by caps.c. who and
 * where name the grantee and the file in a refusal ("not permitted"). */
typedef struct pn_caps pn_caps;
typedef struct pn_caps_exec pn_caps_exec;
pn_caps *pn_caps_new(void);
void pn_caps_free(pn_caps *c);
/* kind: "exec", "read" or "write"; glob: an absolute path (fnmatch). */
int pn_caps_grant(pn_caps *c, const char *kind, const char *glob, pn_err *e);
/* host.read(path) / host.write(path, data) with L's arguments. */
int pn_caps_read(lua_State *L, const pn_caps *c, const char *who, const char *where);
int pn_caps_write(lua_State *L, const pn_caps *c, const char *who, const char *where);
/* host.exec(argv [, opts]) with L's arguments: 0 with *out running (done
 * comes once, from the loop, unless cancelled; pn_caps_exec_push gives its
 * results), else *out is NULL and the values of a failed start are pushed. */
typedef void (*pn_caps_exec_done)(void *ud, pn_caps_exec *x);
int pn_caps_exec_start(lua_State *L, pn_caps *c, const char *who, const char *where,
                       uv_loop_t *loop, pn_caps_exec_done done, void *ud, pn_caps_exec **out);
int pn_caps_exec_push(lua_State *co, const pn_caps_exec *x);
/* Kills it; done is not called. */
void pn_caps_exec_cancel(pn_caps_exec *x);

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
/* Calls fn with each script and the names of all the handles it exposes,
 * until fn returns non-zero. 0, or PN_ENOMEM when the list of names could
 * not be made. */
int pn_script_each(const pn_rt *rt,
                   int (*fn)(const pn_rt_script_info *i, const char **names, uint32_t nnames,
                             void *ud),
                   void *ud);

/* Loads every .lua file in dir and dir/admin/, and follows the directory:
 * changed files reload, new ones load, deleted ones unload. */
int pn_scriptdir_watch(pn_rt *rt, const char *dir, pn_err *e);
/* Scans the watched directory now, as its next change would. */
void pn_scriptdir_rescan(pn_rt *rt);
/* Each file of the watched directory with its last load error (NULL: loaded). */
void pn_scriptdir_files(const pn_rt *rt,
                        int (*fn)(const char *path, int admin, const char *error, void *ud),
                        void *ud);

/* ---- tests: the virtual clock (clock.c), the run queue (runq.c), events ---- */

/* ms on the runtime's clock (the loop's, or the virtual one). */
uint64_t pn_clock_now(const pn_rt *rt);
/* The virtual clock: fires the first timer due at or before until (the
 * clock moves to its due time) and returns 1; else moves the clock to
 * until and returns 0. */
int pn_clock_fire_next(pn_rt *rt, uint64_t until);
/* Runs every resume waiting in the run queue, now, until none is left or
 * max have run; returns how many ran. */
uint32_t pn_runq_run_all(pn_rt *rt, uint32_t max);
/* Gives the scripts a host event (connected, ...) as the host would. */
void pn_event_deliver(pn_rt *rt, pn_event ev, const uint8_t key[PN_KEY_LEN], const char *detail);

#endif
