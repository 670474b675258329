/*
 * Scripts and their states: a sandboxed handler script from a file (loaded,
 * replaced atomically on reload, retired, closed), or the trusted state of
 * a run script.
 */
#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "internal.h"

_Static_assert(PN_RT_HASH_LEN == crypto_generichash_BYTES, "a script's hash is generichash's");

/* Each state's registry holds its script under this key. */
static const char script_key = 0;

void pn_script_mark(lua_State *L, pn_script *s) {
    lua_pushlightuserdata(L, s);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &script_key);
}

pn_script *pn_script_of(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &script_key);
    pn_script *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
}

/* Answered from the counters, without touching the state: a refusal costs
 * nothing, except one full collection per PN_RT_CAP_GC_MS in case the
 * script holds garbage. */
int pn_script_full(pn_script *s, size_t args_len) {
    if (!s->sandboxed) return 0;
    size_t need = PN_RT_TASK_HEADROOM + args_len;
    if (pn_sandbox_mem_left(s->L) >= need) return 0;
    uint64_t now = uv_now(s->rt->loop);
    if (s->cap_gc_ms && now - s->cap_gc_ms < PN_RT_CAP_GC_MS) return 1;
    s->cap_gc_ms = now;
    pn_task_pool_drain(s); /* the coroutines kept for reuse are collected too */
    lua_gc(s->L, LUA_GCCOLLECT);
    if (pn_sandbox_mem_left(s->L) >= need) return 0;
    pn_rt_log(s->rt, PN_LOG_WARN,
              "%s: at its memory cap (%zu of %zu bytes, %zu more held by calls waiting their "
              "turn): calls are refused (overloaded) until it frees memory",
              s->path, pn_sandbox_mem_used(s->L), pn_sandbox_mem_cap(s->L), s->waiting);
    return 1;
}

pn_script *pn_script_alloc(pn_rt *rt, const char *path) {
    pn_script *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->path = strdup(path);
    if (!s->path) {
        free(s);
        return NULL;
    }
    s->rt = rt;
    s->events_ref = LUA_NOREF;
    return s;
}

static pn_script *find_script(pn_rt *rt, const char *path) {
    for (pn_link *l = rt->scripts.head; l; l = l->next) {
        pn_script *s = PN_SCRIPT_OF(l);
        if (!s->retired && strcmp(s->path, path) == 0) return s;
    }
    return NULL;
}

static void grace_closed(uv_handle_t *hd) {
    free(hd);
}

static void script_free(pn_script *s) {
    free(s->path);
    free(s);
}

void pn_script_unpin(pn_script *s) {
    if (--s->pins == 0 && s->closed) script_free(s);
}

void pn_script_close(pn_script *s) {
    if (s->closed) return;
    s->closed = 1;
    pn_rt *rt = s->rt;
    while (!pn_list_empty(&s->tasks))
        pn_task_cancel(PN_TASK_OF(s->tasks.head));
    pn_task_pool_drain(s);
    pn_runq_drop_script(s);
    while (!pn_list_empty(&s->timers))
        pn_timer_free(PN_CONTAINER(s->timers.head, pn_timer, link));
    pn_handler_unexpose_all(s);
    if (s->handle) *s->handle = NULL;
    if (s->grace) uv_close((uv_handle_t *)s->grace, grace_closed);
    s->grace = NULL;
    pn_list_remove(&rt->scripts, &s->link);
    if (s->sandboxed) {
        pn_sandbox_close(s->L);
    } else {
        luaL_unref(s->L, LUA_REGISTRYINDEX, s->events_ref);
        if (rt->trusted == s) rt->trusted = NULL;
    }
    pn_caps_free(s->caps);
    s->caps = NULL;
    if (s->pins == 0) script_free(s);
}

void pn_script_maybe_close(pn_script *s) {
    if (s->retired && pn_list_empty(&s->tasks) && !s->closed) pn_script_close(s);
}

static void on_grace(uv_timer_t *tm) {
    pn_script *s = tm->data;
    pn_rt_log(s->rt, PN_LOG_WARN,
              "%s: the replaced version still had %zu task(s) after %d ms: stopped", s->path,
              s->tasks.len, PN_RT_RETIRE_GRACE_MS);
    pn_script_close(s);
}

/* Stops serving: handles, timers, events and admin modules go now; calls
 * being served finish (within the grace) before the state closes. */
static void script_retire(pn_script *s) {
    if (s->retired) return;
    s->retired = 1;
    pn_task_pool_drain(s);
    pn_handler_unexpose_all(s);
    while (!pn_list_empty(&s->timers))
        pn_timer_free(PN_CONTAINER(s->timers.head, pn_timer, link));
    for (pn_link *l = s->tasks.head, *n; l; l = n) {
        n = l->next;
        pn_task *t = PN_TASK_OF(l);
        if (t->kind != PN_TASK_HANDLER && t->kind != PN_TASK_ADMIN) pn_task_cancel(t);
    }
    if (pn_list_empty(&s->tasks)) {
        pn_script_close(s);
        return;
    }
    s->grace = malloc(sizeof *s->grace);
    if (!s->grace) {
        pn_script_close(s);
        return;
    }
    uv_timer_init(s->rt->loop, s->grace);
    s->grace->data = s;
    uv_unref((uv_handle_t *)s->grace);
    uv_timer_start(s->grace, on_grace, PN_RT_RETIRE_GRACE_MS, 0);
}

/* A script runs with the host's authority: like the trust list, it must
 * be a regular file (not a symlink) that only its owner (the host's user,
 * or root) can change, in a directory that only they can write. */
static int read_script(const char *path, char **out, size_t *len, pn_err *e) {
    return pn_file_read_private(path, 022, PN_RT_SCRIPT_MAX, out, len, e);
}

/* An admin module's chunk returned its table (on top of co, nres values):
 * registered under the file's base name. */
static int register_admin(pn_script *s, lua_State *co, int nres, pn_err *e) {
    const char *slash = strrchr(s->path, '/');
    char name[256];
    snprintf(name, sizeof name, "%s", slash ? slash + 1 : s->path);
    char *dot = strrchr(name, '.');
    if (dot) *dot = '\0';
    if (nres < 1 || !lua_istable(co, -nres))
        return pn_err_set(e, PN_EINVAL, "%s: an admin module must return a table of functions",
                          s->path);
    lua_settop(co, lua_gettop(co) - nres + 1);
    lua_xmove(co, s->L, 1);
    int rc = pn_admin_register(s, name, -1, e);
    lua_pop(s->L, 1);
    return rc;
}

int pn_script_run_chunk(pn_script *s, pn_err *e) {
    lua_State *L = s->L;
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    pn_task *t = pn_task_start(s, PN_TASK_MAIN, ref, "main chunk", NULL, NULL);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (!t) return pn_err_set(e, PN_ENOMEM, "%s: out of memory", s->path);
    lua_State *co = t->co;
    lua_State *prev = pn_sandbox_begin(co);
    int nres = 0;
    /* No deferred close can be due here: loading runs from the directory
     * watcher or a trusted call, never inside a script's own resume. */
    s->rt->resuming++;
    int rc = lua_resume(co, NULL, 0, &nres);
    s->rt->resuming--;
    pn_sandbox_end(co, prev);
    if (rc == LUA_YIELD && t->wait) {
        if (s->admin) {
            pn_err_set(e, PN_EINVAL, "%s: an admin module must return its table without waiting",
                       s->path);
            pn_task_cancel(t);
            return -1;
        }
        lua_pop(co, nres);
        return 0;
    }
    if (rc == LUA_YIELD) {
        PN_SANDBOX_LIFTED(L) lua_pushliteral(co, "coroutine.yield() outside a coroutine");
        rc = LUA_ERRRUN;
    }
    if (rc != LUA_OK) {
        const char *msg = lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : "(error object)";
        pn_err_set(e, PN_EINVAL, "%s", msg);
        pn_task_cancel(t);
        return -1;
    }
    if (s->admin && register_admin(s, co, nres, e) != 0) {
        pn_task_cancel(t);
        return -1;
    }
    pn_task_free(t);
    return 0;
}

/* A new sandboxed state for path running text, its handles staged: NULL
 * (e filled) when it does not load. */
static pn_script *script_load(pn_rt *rt, const char *path, int admin, const char *text, size_t len,
                              pn_err *e) {
    pn_script *s = pn_script_alloc(rt, path);
    lua_State *L = s ? pn_sandbox_new(&rt->o.limits, e) : NULL;
    if (!L) {
        if (s) free(s->path);
        free(s);
        if (!s) pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    s->L = L;
    s->sandboxed = 1;
    s->admin = admin;
    s->loading = 1;
    pn_list_push_front(&rt->scripts, &s->link);
    pn_script_mark(L, s);
    char chunkname[PN_PATH_MAX + 2];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    int rc = pn_caps_for(rt, s, e);
    if (rc == 0) {
        PN_SANDBOX_LIFTED(L) pn_api_open(L, s);
        if (pn_sandbox_load(L, text, len, chunkname) != LUA_OK) {
            pn_err_set(e, PN_EINVAL, "%s", lua_tostring(L, -1));
            rc = -1;
        }
    }
    if (rc == 0) rc = pn_script_run_chunk(s, e);
    if (rc == 0) return s;
    s->loading = 0;
    pn_script_close(s);
    return NULL;
}

/* To the caller when it follows scripts, else an info line. */
static void script_event(pn_rt *rt, const char *event, const char *path, const char *error) {
    if (rt->o.on_script)
        rt->o.on_script(rt->o.on_script_ud, event, path, error);
    else if (strcmp(event, "removed") == 0)
        pn_rt_log(rt, PN_LOG_INFO, "%s: removed, its handles are revoked", path);
    else
        pn_rt_log(rt, PN_LOG_INFO, "%s: %s", path, event);
}

int pn_script_load_file(pn_rt *rt, const char *path, int admin, pn_err *e) {
    char *text = NULL;
    size_t len = 0;
    pn_script *old = find_script(rt, path);
    if (read_script(path, &text, &len, e) != 0) goto failed;
    unsigned char hash[PN_RT_HASH_LEN];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)text, len, NULL, 0);
    if (old && !old->error[0] && memcmp(old->hash, hash, sizeof hash) == 0) {
        free(text);
        return 0; /* touched, not changed */
    }
    pn_script *s = script_load(rt, path, admin, text, len, e);
    free(text);
    if (!s) goto failed;
    memcpy(s->hash, hash, sizeof hash);
    /* Staged handles go live only now, all at once, replacing the old ones. */
    int rc = 0;
    for (pn_link *l = s->bindings.head; l; l = l->next) {
        pn_binding *b = PN_BINDING_OF(l);
        pn_script *o = pn_handler_owner(rt, b->name, s);
        if (o && o != old) {
            pn_err_set(e, PN_EEXIST, "%s: handle '%s' is already exposed by %s", path, b->name,
                       o->path);
            rc = -1;
        }
    }
    s->loading = 0;
    if (rc != 0) {
        pn_script_close(s);
        goto failed;
    }
    if (old) script_retire(old);
    for (pn_link *l = s->bindings.head; l; l = l->next)
        if (pn_handler_host_expose(s, PN_BINDING_OF(l), e) != 0)
            pn_rt_log(rt, PN_LOG_ERROR, "%s: %s", path, e->msg);
    script_event(rt, old ? "reloaded" : "loaded", path, NULL);
    return 0;
failed:
    pn_rt_log(rt, PN_LOG_ERROR, "%s%s", e->msg, old ? " (the previous version keeps serving)" : "");
    if (old) snprintf(old->error, sizeof old->error, "%s", e->msg);
    if (rt->o.on_script) rt->o.on_script(rt->o.on_script_ud, "failed", path, e->msg);
    return -1;
}

void pn_script_unload_file(pn_rt *rt, const char *path) {
    pn_script *s = find_script(rt, path);
    if (!s) return;
    script_retire(s);
    script_event(rt, "removed", path, NULL);
}

/* ---- the trusted state (run scripts) ----------------------------------------------- */

int pn_script_trusted(pn_rt *rt, lua_State *L, pn_err *e) {
    if (rt->trusted) return pn_err_set(e, PN_EEXIST, "this runtime already has a trusted state");
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *main = lua_tothread(L, -1);
    lua_pop(L, 1);
    pn_script *s = pn_script_alloc(rt, "(run)");
    if (!s) return pn_err_set(e, PN_ENOMEM, "out of memory");
    s->L = main;
    /* Threads copy the main thread's extra space: it must say "no task". */
    *(pn_task **)lua_getextraspace(main) = NULL;
    rt->trusted = s;
    pn_api_open(L, s);
    return 0;
}

int pn_script_spawn(pn_rt *rt, lua_State *L, int nargs, pn_err *e) {
    pn_script *s = rt->trusted;
    if (!s) return pn_err_set(e, PN_ESTATE, "no trusted state");
    /* Move fn and args to the task's coroutine, anchor fn, start the task. */
    int base = lua_gettop(L) - nargs;
    lua_pushvalue(L, base);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    pn_task *t = pn_task_start(s, PN_TASK_MAIN, ref, "main chunk", NULL, NULL);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (!t) return pn_err_set(e, PN_ENOMEM, "out of memory");
    lua_xmove(L, t->co, nargs);
    lua_pop(L, 1);
    pn_rt_update_keepalive(rt);
    pn_task_resume(t, nargs);
    return 0;
}

/* ---- reports -------------------------------------------------------------------------- */

int pn_script_each(const pn_rt *rt,
                   int (*fn)(const pn_rt_script_info *i, const char **names, uint32_t nnames,
                             void *ud),
                   void *ud) {
    for (const pn_link *l = rt->scripts.head; l; l = l->next) {
        const pn_script *s = PN_SCRIPT_OF(l);
        if (s->retired) continue;
        /* Every name: a script may expose as many handles as its memory
         * holds, and a report that dropped some would lie. */
        const char **names = malloc((s->bindings.len ? s->bindings.len : 1) * sizeof *names);
        if (!names) return PN_ENOMEM;
        uint32_t n = 0;
        for (const pn_link *bl = s->bindings.head; bl; bl = bl->next)
            names[n++] = PN_BINDING_OF(bl)->name;
        pn_rt_script_info i = {
            s->path, 1, s->admin, s->error, n, (uint32_t)s->tasks.len, pn_sandbox_mem_used(s->L)};
        int stop = fn(&i, names, n, ud);
        free(names);
        if (stop) break;
    }
    return 0;
}
