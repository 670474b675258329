/*
 * The handler directory: every .lua file in it is a handler script, every
 * .lua file in its admin/ an admin module. Followed with libuv fs events (settled for
 * PN_DIR_SETTLE_MS, since an editor's save is several events) and, because
 * fs events miss changes on some filesystems, a rescan every
 * PN_DIR_POLL_MS. A file is reloaded only when its content changed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define PN_DIR_SETTLE_MS 50
#define PN_DIR_POLL_MS 2000

typedef struct dir_file {
    char path[PN_PATH_MAX];
    int admin;
    struct stat st;
    int seen; /* found in the current scan */
    int failed;
    char error[PN_ERR_MSG_MAX]; /* the last load error (a pn_err's message) */
} dir_file;

struct pn_dir {
    pn_rt *rt;
    char path[PN_PATH_MAX];
    uv_fs_event_t ev[2]; /* the directory and its admin/ */
    int ev_on[2];
    uv_timer_t settle, poll;
    pn_handles closing;    /* the four handles: d is freed after the last */
    struct stat dir_st[2]; /* the directory [0] and admin/ [1] at the last scan */
    int dir_seen[2];
    dir_file files[PN_RT_SCRIPTS_MAX];
    int nfiles;
};

static int wanted(const char *name) {
    size_t n = strlen(name);
    return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".lua") == 0;
}

static dir_file *find(struct pn_dir *d, const char *path) {
    for (int i = 0; i < d->nfiles; i++)
        if (strcmp(d->files[i].path, path) == 0) return &d->files[i];
    return NULL;
}

/* The same file as when last looked at: a chmod or chown changes only
 * ctime/mode/owner, and must be seen too (a refused script that was made
 * safe loads, a loaded one made unsafe is checked again). */
static int same_file(const struct stat *a, const struct stat *b) {
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
           a->st_size == b->st_size && a->st_ino == b->st_ino && a->st_mode == b->st_mode &&
           a->st_uid == b->st_uid;
}

static void scan_one(struct pn_dir *d, const char *dir, int admin) {
    /* The directory's own mode and owner are part of every script's check:
     * when they change, every file in it is looked at again. */
    struct stat dst;
    int dir_changed = 1;
    if (stat(dir, &dst) == 0) {
        dir_changed = !d->dir_seen[admin] || d->dir_st[admin].st_mode != dst.st_mode ||
                      d->dir_st[admin].st_uid != dst.st_uid;
        d->dir_st[admin] = dst;
        d->dir_seen[admin] = 1;
    }
    DIR *dh = opendir(dir);
    if (!dh) return;
    struct dirent *de;
    /* Sorted loading would be nicer for "the later one fails", but
     * directory order is what every later rescan sees too. */
    while ((de = readdir(dh)) != NULL) {
        if (!wanted(de->d_name)) continue;
        char path[PN_PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path) continue;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        dir_file *f = find(d, path);
        if (!f) {
            if (d->nfiles >= PN_RT_SCRIPTS_MAX) {
                pn_rt_log(d->rt, PN_LOG_WARN, "%s: ignored, more than %d scripts in %s", path,
                          PN_RT_SCRIPTS_MAX, d->path);
                continue;
            }
            f = &d->files[d->nfiles++];
            memset(f, 0, sizeof *f);
            snprintf(f->path, sizeof f->path, "%s", path);
            f->admin = admin;
        } else if (!dir_changed && same_file(&f->st, &st)) {
            f->seen = 1;
            continue;
        }
        f->st = st;
        f->seen = 1;
        pn_err e;
        f->failed = pn_script_load_file(d->rt, path, admin, &e) != 0;
        snprintf(f->error, sizeof f->error, "%s", f->failed ? e.msg : "");
    }
    closedir(dh);
}

static void rescan(struct pn_dir *d) {
    for (int i = 0; i < d->nfiles; i++)
        d->files[i].seen = 0;
    char admin[PN_PATH_MAX + 8];
    snprintf(admin, sizeof admin, "%s/admin", d->path);
    /* Admin modules first: handler scripts may use them as they load. */
    scan_one(d, admin, 1);
    scan_one(d, d->path, 0);
    for (int i = 0; i < d->nfiles;) {
        if (d->files[i].seen) {
            i++;
            continue;
        }
        pn_script_unload_file(d->rt, d->files[i].path);
        d->files[i] = d->files[--d->nfiles];
    }
}

static void on_settle(uv_timer_t *t) {
    rescan(t->data);
}

static void on_poll(uv_timer_t *t) {
    rescan(t->data);
}

static void on_fs_event(uv_fs_event_t *ev, const char *filename, int events, int status) {
    struct pn_dir *d = ev->data;
    (void)filename, (void)events, (void)status;
    uv_timer_start(&d->settle, on_settle, PN_DIR_SETTLE_MS, 0);
}

int pn_scriptdir_watch(pn_rt *rt, const char *dir, pn_err *e) {
    if (rt->dir) return pn_err_set(e, PN_EEXIST, "a handler directory is already watched");
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pn_err_set(e, PN_EINVAL, "%s: not a directory", dir);
    struct pn_dir *d = calloc(1, sizeof *d);
    if (!d) return pn_err_set(e, PN_ENOMEM, "out of memory");
    if (snprintf(d->path, sizeof d->path, "%s", dir) >= (int)sizeof d->path - 16) {
        free(d);
        return pn_err_set(e, PN_ETOOBIG, "%s: path too long", dir);
    }
    size_t n = strlen(d->path);
    while (n > 1 && d->path[n - 1] == '/')
        d->path[--n] = '\0';
    d->rt = rt;
    rt->dir = d;
    uv_timer_init(rt->loop, &d->settle);
    uv_timer_init(rt->loop, &d->poll);
    d->settle.data = d->poll.data = d;
    char admin[PN_PATH_MAX + 8];
    snprintf(admin, sizeof admin, "%s/admin", d->path);
    const char *dirs[2] = {d->path, admin};
    for (int i = 0; i < 2; i++) {
        uv_fs_event_init(rt->loop, &d->ev[i]);
        d->ev[i].data = d;
        d->ev_on[i] = uv_fs_event_start(&d->ev[i], on_fs_event, dirs[i], 0) == 0;
    }
    /* The watchers alone must not keep a run script's loop alive. */
    uv_unref((uv_handle_t *)&d->poll);
    uv_unref((uv_handle_t *)&d->ev[0]);
    uv_unref((uv_handle_t *)&d->ev[1]);
    uv_timer_start(&d->poll, on_poll, PN_DIR_POLL_MS, PN_DIR_POLL_MS);
    rescan(d);
    return 0;
}

void pn_scriptdir_rescan(pn_rt *rt) {
    if (rt->dir) rescan(rt->dir);
}

void pn_scriptdir_files(const pn_rt *rt,
                        int (*fn)(const char *path, int admin, const char *error, void *ud),
                        void *ud) {
    const struct pn_dir *d = rt->dir;
    for (int i = 0; d && i < d->nfiles; i++)
        if (fn(d->files[i].path, d->files[i].admin, d->files[i].failed ? d->files[i].error : NULL,
               ud))
            return;
}

void pn_scriptdir_close(pn_rt *rt) {
    struct pn_dir *d = rt->dir;
    if (!d) return;
    rt->dir = NULL;
    uv_handle_t *hs[] = {PN_HANDLE(&d->settle), PN_HANDLE(&d->poll), PN_HANDLE(&d->ev[0]),
                         PN_HANDLE(&d->ev[1])};
    pn_handles_close(&d->closing, hs, sizeof hs / sizeof *hs, free, d);
}
