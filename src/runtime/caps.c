/*
 * Capabilities: what the operator grants handler scripts, Deno-style, in
 * <data_dir>/config.lua. None by default.
 *
 *   return {
 *     ["lights*.lua"] = {            -- a glob over the script's path in the handler dir
 *       exec  = { "/usr/bin/gpioset" },     -- host.exec: these executables, argv only
 *       read  = { "/sys/class/gpio/…" },    -- host.read: these paths (globs)
 *       write = { "/run/lights/state" },    -- host.write
 *     },
 *   }
 *
 * The config is data: it runs in an empty sandbox with a small budget.
 * Paths are compared after resolving symbolic links, and writes never
 * follow a link in the last component, so a granted name cannot be pointed
 * elsewhere. host.exec runs the program directly (no shell), collects at
 * most PN_CAPS_OUTPUT_MAX bytes of each output and kills it at its timeout.
 * A console session (src/luamod/bind_console.c) gets the same checks with
 * grants of its own, through pn_caps_read/write/exec_start (runtime.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "internal.h"
#include "lua/result.h"

#define PN_CAPS_MAX 64                  /* entries per list */
#define PN_CAPS_CONFIG_MAX (256u << 10) /* bytes of config.lua */
#define PN_CAPS_OUTPUT_MAX (1u << 20)   /* bytes kept of a child's stdout, and of its stderr */
#define PN_CAPS_FILE_MAX (16u << 20)    /* bytes host.read returns */
#define PN_CAPS_READ_STEP (64u << 10)   /* bytes host.read asks of one read() */
#define PN_CAPS_ARGV_MAX 256
#define PN_CAPS_EXEC_TIMEOUT_MS 10000
#define PN_CAPS_EXEC_MAX 64 /* children running at once per script */

enum { CAP_EXEC, CAP_READ, CAP_WRITE, CAP_KINDS };
static const char *const cap_names[CAP_KINDS] = {"exec", "read", "write"};

struct pn_caps {
    char *list[CAP_KINDS][PN_CAPS_MAX];
    int n[CAP_KINDS];
    int running; /* host.exec children */
};

void pn_caps_free(pn_caps *c) {
    if (!c) return;
    for (int k = 0; k < CAP_KINDS; k++)
        for (int i = 0; i < c->n[k]; i++)
            free(c->list[k][i]);
    free(c);
}

/* The script's name as globs see it: relative to its handler directory. */
static const char *script_name(const pn_script *s) {
    const char *p = s->path;
    const char *slash = strrchr(p, '/');
    if (!slash) return p;
    if (s->admin) {
        /* ".../admin/x.lua" -> "admin/x.lua" */
        const char *q = slash;
        while (q > p && q[-1] != '/')
            q--;
        return q;
    }
    return slash + 1;
}

static int add_entries(lua_State *L, pn_caps *c, int kind, pn_err *e, const char *path) {
    if (lua_getfield(L, -1, cap_names[kind]) == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1))
        return pn_err_set(e, PN_EINVAL, "%s: %s must be a list of paths", path, cap_names[kind]);
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
        size_t len;
        const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!v || len == 0 || len >= PN_PATH_MAX || v[0] != '/' || strlen(v) != len)
            return pn_err_set(e, PN_EINVAL, "%s: %s[%lld] must be an absolute path", path,
                              cap_names[kind], (long long)i);
        if (c->n[kind] >= PN_CAPS_MAX)
            return pn_err_set(e, PN_ELIMIT, "%s: more than %d %s entries", path, PN_CAPS_MAX,
                              cap_names[kind]);
        char *dup = strdup(v);
        if (!dup) return pn_err_set(e, PN_ENOMEM, "out of memory");
        c->list[kind][c->n[kind]++] = dup;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    return 0;
}

/* The config grants powers, so it gets the checks a script gets: owned by
 * the host's user (or root), not group/world writable, in a directory the
 * same holds for. Returns 1 when there is no config (no grants). */
static int read_config(const char *path, char **text, size_t *len, pn_err *e) {
    int rc = pn_file_read_private(path, 022, PN_CAPS_CONFIG_MAX, text, len, e);
    if (rc == PN_ENOTFOUND) {
        pn_err_clear(e);
        return 1;
    }
    return rc;
}

/* The grants for the script called name from config text into c. */
static int caps_build(const char *path, const char *text, size_t len, const char *name, pn_caps *c,
                      pn_err *e) {
    pn_sandbox_limits lim = {8u << 20, 10000000, 0};
    lua_State *L = pn_sandbox_new(&lim, e);
    if (!L) return -1;
    char chunk[PN_PATH_MAX + 2];
    snprintf(chunk, sizeof chunk, "@%s", path);
    int rc = 0;
    if (pn_sandbox_load(L, text, len, chunk) != LUA_OK) {
        rc = pn_err_set(e, PN_EINVAL, "%s", lua_tostring(L, -1));
    } else {
        /* Data only: the chunk sees an empty environment. */
        lua_newtable(L);
        lua_setupvalue(L, -2, 1);
        if (lua_pcall(L, 0, 1, 0) != LUA_OK)
            rc = pn_err_set(e, PN_EINVAL, "%s", lua_tostring(L, -1));
        else if (!lua_istable(L, -1))
            rc =
                pn_err_set(e, PN_EINVAL,
                           "%s must return a table: { [\"glob\"] = {exec=, read=, write=} }", path);
    }
    if (rc == 0) {
        lua_pushnil(L);
        while (rc == 0 && lua_next(L, -2) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1)) {
                rc = pn_err_set(e, PN_EINVAL, "%s: each entry is [\"glob\"] = { ... }", path);
                break;
            }
            if (fnmatch(lua_tostring(L, -2), name, 0) == 0) {
                for (int k = 0; k < CAP_KINDS && rc == 0; k++)
                    rc = add_entries(L, c, k, e, path);
            }
            lua_pop(L, 1);
        }
    }
    pn_sandbox_close(L);
    return rc;
}

/* ---- following config.lua ------------------------------------------------------------
 * Grants follow the file at once: every host.* call first looks whether
 * config.lua changed (one stat), and a changed file is read again before
 * the call is checked, so a revoked grant is refused from the next call
 * on. A file that does not load is reported once (file:line) and the last
 * good grants stay; with no good version yet, a script does not load. */

struct pn_caps_conf {
    int seen;       /* st is the file as last looked at (good or bad) */
    int exists;     /* it was there */
    struct stat st; /* of that version */
    char *text;     /* the last good version; NULL: none or no file */
    size_t len;
    int good;      /* text is what grants come from (else there is no good one) */
    char bad[512]; /* why the version at st did not load, "" when it did */
};

static int same_version(const struct stat *a, const struct stat *b) {
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
           a->st_size == b->st_size && a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

void pn_caps_conf_free(pn_rt *rt) {
    if (!rt->caps_conf) return;
    free(rt->caps_conf->text);
    free(rt->caps_conf);
    rt->caps_conf = NULL;
}

/* New grants for every script from text (NULL: none); all or nothing. */
static int caps_rebuild_all(pn_rt *rt, const char *text, size_t len, pn_err *e) {
    int n = 0, rc = 0;
    for (pn_link *l = rt->scripts.head; l; l = l->next)
        n++;
    pn_caps **fresh = calloc((size_t)n + 1, sizeof *fresh);
    if (!fresh) return pn_err_set(e, PN_ENOMEM, "out of memory");
    int i = 0;
    for (pn_link *l = rt->scripts.head; l && rc == 0; l = l->next, i++) {
        pn_script *s = PN_SCRIPT_OF(l);
        if (!s->caps) continue;
        if (!(fresh[i] = calloc(1, sizeof *fresh[i]))) {
            rc = pn_err_set(e, PN_ENOMEM, "out of memory");
            break;
        }
        if (text) rc = caps_build(rt->config_path, text, len, script_name(s), fresh[i], e);
    }
    i = 0;
    for (pn_link *l = rt->scripts.head; l; l = l->next, i++) {
        pn_script *s = PN_SCRIPT_OF(l);
        if (rc != 0 || !fresh[i]) {
            pn_caps_free(fresh[i]);
            continue;
        }
        fresh[i]->running = s->caps->running;
        pn_caps_free(s->caps);
        s->caps = fresh[i];
    }
    free(fresh);
    return rc;
}

/* Looks at config.lua; when it changed, reads it again and, if it loads,
 * gives every script its grants from it. 0, or -1 with e set when there
 * is no good version to grant from. */
static int caps_refresh(pn_rt *rt, pn_err *e) {
    pn_caps_conf *cf = rt->caps_conf;
    if (!cf && !(cf = rt->caps_conf = calloc(1, sizeof *cf)))
        return pn_err_set(e, PN_ENOMEM, "out of memory");
    struct stat st;
    int exists = stat(rt->config_path, &st) == 0;
    if (cf->seen && exists == cf->exists && (!exists || same_version(&st, &cf->st))) {
        if (cf->good || !exists) return 0;
        return pn_err_set(e, PN_EINVAL, "%s", cf->bad);
    }
    int first = !cf->seen;
    cf->seen = 1, cf->exists = exists, cf->st = st;
    char *text = NULL;
    size_t len = 0;
    pn_err pe;
    int rc = exists ? read_config(rt->config_path, &text, &len, &pe) : 1;
    if (rc == 0) {
        /* Checked against every script before any grant changes. */
        rc = caps_rebuild_all(rt, text, len, &pe);
    } else if (rc > 0) {
        rc = caps_rebuild_all(rt, NULL, 0, &pe); /* gone: no grants */
    }
    if (rc < 0) {
        free(text);
        snprintf(cf->bad, sizeof cf->bad, "%s", pe.msg);
        /* With no good version the caller says why (a script that does not load). */
        if (cf->good)
            pn_rt_log(rt, PN_LOG_ERROR, "%s (the last good grants of %s stay)", pe.msg,
                      rt->config_path);
        if (cf->good) return 0;
        return pn_err_set(e, PN_EINVAL, "%s", pe.msg);
    }
    free(cf->text);
    cf->text = text, cf->len = len, cf->good = 1, cf->bad[0] = '\0';
    if (!first) pn_rt_log(rt, PN_LOG_INFO, "%s: read again, grants follow it", rt->config_path);
    return 0;
}

int pn_caps_for(pn_rt *rt, pn_script *s, pn_err *e) {
    /* Before s has grants: a refresh rebuilds the others' only. */
    int rc = rt->config_path ? caps_refresh(rt, e) : 0;
    pn_caps *c = calloc(1, sizeof *c);
    if (!c) return pn_err_set(e, PN_ENOMEM, "out of memory");
    s->caps = c;
    if (!rt->config_path || rc != 0) return rc;
    const pn_caps_conf *cf = rt->caps_conf;
    if (!cf->text) return 0;
    return caps_build(rt->config_path, cf->text, cf->len, script_name(s), c, e);
}

void pn_caps_config_check(pn_rt *rt) {
    pn_err e;
    if (rt->config_path && caps_refresh(rt, &e) != 0)
        pn_rt_log(rt, PN_LOG_ERROR, "%s (no grants until it loads)", e.msg);
}

/* Before a grant is checked: the file as it is now. */
static void caps_follow(pn_script *s) {
    pn_err e;
    if (s->rt->config_path) (void)caps_refresh(s->rt, &e);
}

/* ---- checks ------------------------------------------------------------------ */

static const char *config_name(const pn_script *s) {
    return s->rt->config_path ? s->rt->config_path : "config.lua (none given)";
}

static int granted(const pn_caps *c, int kind, const char *path) {
    for (int i = 0; i < c->n[kind]; i++)
        if (fnmatch(c->list[kind][i], path, FNM_PATHNAME) == 0) return 1;
    return 0;
}

static int denied_to(lua_State *L, const char *fn, const char *what, const char *who,
                     const char *where) {
    return luaL_error(L, "%s: not permitted: %s is not granted to %s in %s", fn, what, who, where);
}

/* The canonical path of p for a write: its directory resolved, the last
 * component kept as it is. */
static int canon_for_write(const char *p, char out[PN_PATH_MAX]) {
    const char *slash = strrchr(p, '/');
    if (!slash || slash[1] == '\0' || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0)
        return -1;
    char dir[PN_PATH_MAX];
    size_t dl = (size_t)(slash - p);
    if (dl == 0) dl = 1;
    if (dl >= sizeof dir) return -1;
    memcpy(dir, p, dl);
    dir[dl] = '\0';
    char real[PN_PATH_MAX];
    if (!realpath(dir, real)) return -1;
    int n = snprintf(out, PN_PATH_MAX, "%s/%s", strcmp(real, "/") == 0 ? "" : real, slash + 1);
    return n > 0 && n < PN_PATH_MAX ? 0 : -1;
}

int pn_caps_read(lua_State *L, const pn_caps *c, const char *who, const char *where) {
    const char *p = luaL_checkstring(L, 1);
    char real[PN_PATH_MAX];
    if (!realpath(p, real)) {
        if (!granted(c, CAP_READ, p)) return denied_to(L, "host.read", p, who, where);
        lua_pushfstring(L, "%s: %s", p, strerror(errno));
        return pn_result_local_top(L, PN_EIO);
    }
    if (!granted(c, CAP_READ, real)) return denied_to(L, "host.read", real, who, where);
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        lua_pushfstring(L, "%s: %s", real, strerror(errno));
        return pn_result_local_top(L, PN_EIO);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0;
    for (;;) {
        char *dst = luaL_prepbuffsize(&b, PN_CAPS_READ_STEP);
        ssize_t n = read(fd, dst, PN_CAPS_READ_STEP);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        total += (size_t)n;
        if (total > PN_CAPS_FILE_MAX) {
            close(fd);
            return luaL_error(L, "host.read: %s is larger than %d bytes", real, PN_CAPS_FILE_MAX);
        }
        luaL_addsize(&b, (size_t)n);
    }
    close(fd);
    luaL_pushresult(&b);
    return 1;
}

int pn_caps_write(lua_State *L, const pn_caps *c, const char *who, const char *where) {
    const char *p = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    char real[PN_PATH_MAX];
    if (canon_for_write(p, real) != 0) {
        if (!granted(c, CAP_WRITE, p)) return denied_to(L, "host.write", p, who, where);
        lua_pushfstring(L, "%s: the directory does not exist", p);
        return pn_result_local_top(L, PN_ENOTFOUND);
    }
    if (!granted(c, CAP_WRITE, real)) return denied_to(L, "host.write", real, who, where);
    int fd = open(real, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        lua_pushfstring(L, "%s: %s", real, strerror(errno));
        return pn_result_local_top(L, PN_EIO);
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            close(fd);
            lua_pushfstring(L, "%s: %s", real, strerror(err));
            return pn_result_local_top(L, PN_EIO);
        }
        off += (size_t)n;
    }
    close(fd);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_read(lua_State *L) {
    pn_script *s = pn_script_of(L);
    caps_follow(s);
    return pn_caps_read(L, s->caps, script_name(s), config_name(s));
}

static int l_write(lua_State *L) {
    pn_script *s = pn_script_of(L);
    caps_follow(s);
    return pn_caps_write(L, s->caps, script_name(s), config_name(s));
}

/* ---- host.exec ----------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
    int truncated;
} outbuf;

struct pn_caps_exec {
    pn_wait w;
    pn_script *s;
    pn_caps *owner; /* outside a script: whose running count it is (NULL once cancelled) */
    pn_caps_exec_done done;
    void *ud;
    uv_process_t proc;
    uv_pipe_t out[2];
    uv_timer_t timer;
    outbuf buf[2];
    pn_handles closing; /* proc, the pipes and the timer: x is freed after the last */
    int pending;        /* exit and the two EOFs still to come */
    int64_t status;
    int signal, timed_out;
};
typedef struct pn_caps_exec exec_wait;

static void exec_free(void *ud) {
    exec_wait *x = ud;
    free(x->buf[0].data);
    free(x->buf[1].data);
    free(x);
}

/* Once per exec: when it finished, or its spawn failed. */
static void exec_close_all(exec_wait *x) {
    uv_handle_t *hs[] = {PN_HANDLE(&x->proc), PN_HANDLE(&x->out[0]), PN_HANDLE(&x->out[1]),
                         PN_HANDLE(&x->timer)};
    pn_handles_close(&x->closing, hs, sizeof hs / sizeof *hs, exec_free, x);
}

int pn_caps_exec_push(lua_State *co, const pn_caps_exec *x) {
    if (x->timed_out) return pn_result_fail(co, pn_reason_name(PN_REASON_TIMEOUT), PN_KIND_TIMEOUT);
    lua_createtable(co, 0, 5);
    lua_pushinteger(co, x->status);
    lua_setfield(co, -2, "status");
    lua_pushinteger(co, x->signal);
    lua_setfield(co, -2, "signal");
    lua_pushlstring(co, x->buf[0].data ? x->buf[0].data : "", x->buf[0].len);
    lua_setfield(co, -2, "stdout");
    lua_pushlstring(co, x->buf[1].data ? x->buf[1].data : "", x->buf[1].len);
    lua_setfield(co, -2, "stderr");
    lua_pushboolean(co, x->buf[0].truncated || x->buf[1].truncated);
    lua_setfield(co, -2, "truncated");
    return 1;
}

static void exec_finish(exec_wait *x) {
    pn_task *t = x->w.task;
    pn_script *s = x->s;
    if (s && s->caps) s->caps->running--;
    if (x->owner) x->owner->running--;
    if (x->done) {
        /* The results are read from x before its handles close. */
        x->done(x->ud, x);
        exec_close_all(x);
        return;
    }
    if (t && s) {
        lua_State *co = t->co;
        int n = 1;
        PN_SANDBOX_LIFTED(s->L) {
            n = pn_caps_exec_push(co, x);
        }
        exec_close_all(x);
        pn_task_resume(t, n);
        return;
    }
    exec_close_all(x);
}

static void exec_step(exec_wait *x) {
    if (--x->pending == 0) exec_finish(x);
}

static void exec_cancel(pn_wait *w) {
    exec_wait *x = (exec_wait *)w;
    x->s = NULL; /* the script is going away */
    uv_process_kill(&x->proc, SIGKILL);
    /* exit and EOFs still arrive; exec_finish then closes everything */
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
    exec_wait *x = p->data;
    x->status = status;
    x->signal = sig;
    uv_timer_stop(&x->timer);
    exec_step(x);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    static char sink[4096]; /* past the cap, output is read and dropped */
    exec_wait *x = hd->data;
    outbuf *o = &x->buf[(uv_pipe_t *)hd == &x->out[0] ? 0 : 1];
    (void)suggested;
    if (!o->data) o->data = malloc(PN_CAPS_OUTPUT_MAX);
    if (!o->data || o->len >= PN_CAPS_OUTPUT_MAX) {
        *buf = uv_buf_init(sink, sizeof sink);
        return;
    }
    *buf = uv_buf_init(o->data + o->len, (unsigned)(PN_CAPS_OUTPUT_MAX - o->len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    exec_wait *x = st->data;
    outbuf *o = &x->buf[(uv_pipe_t *)st == &x->out[0] ? 0 : 1];
    if (n > 0) {
        if (o->data && buf->base >= o->data && buf->base < o->data + PN_CAPS_OUTPUT_MAX)
            o->len += (size_t)n;
        else
            o->truncated = 1;
        return;
    }
    if (n < 0) {
        uv_read_stop(st);
        exec_step(x);
    }
}

static void on_exec_timeout(uv_timer_t *tm) {
    exec_wait *x = tm->data;
    x->timed_out = 1;
    uv_process_kill(&x->proc, SIGKILL);
}

/* Fills argv from the list at idx 1 (NULL-terminated); raises on a bad one. */
static void check_argv(lua_State *L, const char *argv[PN_CAPS_ARGV_MAX + 1]) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer argc = (lua_Integer)lua_rawlen(L, 1);
    luaL_argcheck(L, argc >= 1 && argc <= PN_CAPS_ARGV_MAX, 1,
                  "argv: a list of 1 to 256 strings, the program first");
    for (lua_Integer i = 1; i <= argc; i++) {
        lua_rawgeti(L, 1, i);
        size_t len;
        const char *a = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        luaL_argcheck(L, a && strlen(a) == len, 1,
                      "argv entries must be strings without NUL bytes");
        argv[i - 1] = a; /* the argv table keeps it alive */
        lua_pop(L, 1);
    }
    argv[argc] = NULL;
}

/* Starts argv with its output into x's pipes: uv_spawn's result. */
static int exec_spawn(exec_wait *x, uv_loop_t *loop, const char **argv) {
    uv_pipe_init(loop, &x->out[0], 0);
    uv_pipe_init(loop, &x->out[1], 0);
    uv_timer_init(loop, &x->timer);
    x->out[0].data = x->out[1].data = x->timer.data = x->proc.data = x;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&x->out[0];
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&x->out[1];
    uv_process_options_t po;
    memset(&po, 0, sizeof po);
    po.file = argv[0];
    po.args = (char **)argv;
    po.exit_cb = on_exit_cb;
    po.stdio = stdio;
    po.stdio_count = 3;
    return uv_spawn(loop, &x->proc, &po);
}

/* Checks the grant and opts (at 2) and starts argv: 0 with *out set, or
 * the failure's values pushed (spawn failed) with *out NULL. Raises on a
 * refusal or a bad argument. */
static int exec_begin(lua_State *L, pn_caps *c, const char *who, const char *where, uv_loop_t *loop,
                      int (*can_wait)(lua_State *L, void *ud), void *ud, exec_wait **out) {
    const char *argv[PN_CAPS_ARGV_MAX + 1];
    *out = NULL;
    check_argv(L, argv);
    if (!granted(c, CAP_EXEC, argv[0])) return denied_to(L, "host.exec", argv[0], who, where);
    if (can_wait && !can_wait(L, ud)) return 0;
    uint32_t timeout = PN_CAPS_EXEC_TIMEOUT_MS;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "timeout");
        lua_Integer v = luaL_optinteger(L, -1, timeout);
        luaL_argcheck(L, v > 0 && v <= 600000, 2, "timeout: 1 to 600000 ms");
        timeout = (uint32_t)v;
        lua_pop(L, 1);
    }
    if (c->running >= PN_CAPS_EXEC_MAX)
        return luaL_error(L, "host.exec: %d programs already running", PN_CAPS_EXEC_MAX);
    exec_wait *x = calloc(1, sizeof *x);
    if (!x) return luaL_error(L, "out of memory");
    x->w.type = PN_WAIT_EXEC;
    x->w.cancel = exec_cancel;
    int rc = exec_spawn(x, loop, argv);
    if (rc != 0) {
        /* The process handle must be closed even when spawn fails. */
        exec_close_all(x);
        lua_pushfstring(L, "host.exec %s: %s", argv[0], uv_strerror(rc));
        return pn_result_fail(L, lua_tostring(L, -1), PN_KIND_LOCAL);
    }
    x->pending = 3;
    c->running++;
    uv_read_start((uv_stream_t *)&x->out[0], on_alloc, on_read);
    uv_read_start((uv_stream_t *)&x->out[1], on_alloc, on_read);
    uv_timer_start(&x->timer, on_exec_timeout, timeout, 0);
    *out = x;
    return 0;
}

static int script_can_wait(lua_State *L, void *ud) {
    (void)ud;
    if (!pn_task_of(L))
        return luaL_error(L, "host.exec waits, so it must run in a handler, a timer, an event "
                             "handler or the main chunk");
    return 1;
}

static int l_exec(lua_State *L) {
    pn_script *s = pn_script_of(L);
    pn_task *t = pn_task_of(L);
    caps_follow(s);
    exec_wait *x;
    int n = exec_begin(L, s->caps, script_name(s), config_name(s), s->rt->loop, script_can_wait,
                       NULL, &x);
    if (!x) return n;
    x->s = s;
    return pn_task_wait(L, t, &x->w);
}

int pn_caps_exec_start(lua_State *L, pn_caps *c, const char *who, const char *where,
                       uv_loop_t *loop, pn_caps_exec_done done, void *ud, pn_caps_exec **out) {
    int n = exec_begin(L, c, who, where, loop, NULL, NULL, out);
    if (!*out) return n;
    (*out)->owner = c, (*out)->done = done, (*out)->ud = ud;
    return 0;
}

void pn_caps_exec_cancel(pn_caps_exec *x) {
    x->owner = NULL, x->done = NULL, x->ud = NULL;
    exec_cancel(&x->w);
}

pn_caps *pn_caps_new(void) {
    return calloc(1, sizeof(pn_caps));
}

int pn_caps_grant(pn_caps *c, const char *kind, const char *glob, pn_err *e) {
    for (int k = 0; k < CAP_KINDS; k++) {
        if (strcmp(kind, cap_names[k]) != 0) continue;
        size_t len = strlen(glob);
        if (len == 0 || len >= PN_PATH_MAX || glob[0] != '/')
            return pn_err_set(e, PN_EINVAL, "%s: %s must be an absolute path", kind, glob);
        if (c->n[k] >= PN_CAPS_MAX)
            return pn_err_set(e, PN_ELIMIT, "more than %d %s entries", PN_CAPS_MAX, kind);
        char *dup = strdup(glob);
        if (!dup) return pn_err_set(e, PN_ENOMEM, "out of memory");
        c->list[k][c->n[k]++] = dup;
        return 0;
    }
    return pn_err_set(e, PN_EINVAL, "%s: not a grant (exec, read, write)", kind);
}

void pn_caps_open(lua_State *L, pn_script *s) {
    static const luaL_Reg fns[] = {
        {"exec", l_exec}, {"read", l_read}, {"write", l_write}, {NULL, NULL}};
    (void)s;
    luaL_newlib(L, fns);
    lua_setglobal(L, "host");
}
