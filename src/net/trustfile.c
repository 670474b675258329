/*
 * The host's trust list as a file a person may edit by hand (trust.list,
 * src/core/trust.h). The directory is watched (an editor or `trust add`
 * replaces the file by rename, so watching the file's inode would miss the
 * new one) with a slow poll of the file as a fallback where inotify is
 * missing. Changes are applied after a short quiet period: keys added are
 * trusted (and dialled when they carry an address), keys removed lose
 * their connections at once. A file that no longer parses is reported and
 * the list in force stays as it was.
 */
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "net.h"

#define PN_TRUSTFILE_SETTLE_MS 50 /* editors write in steps */
#define PN_TRUSTFILE_POLL_MS 2000 /* fallback when the watch is not available */

typedef struct pn_trustfile {
    pn_host *host;
    char path[PN_PATH_MAX];
    const char *base; /* the file name within path */
    uv_fs_event_t watch;
    uv_fs_poll_t poll;
    uv_timer_t settle;
    pn_handles closing;
} pn_trustfile;

static int apply(pn_host *h, const char *path, pn_err *e) {
    pn_trust *t = NULL;
    int rc = pn_trust_load(&t, path, e);
    if (rc != 0) return rc;
    /* Untrust first what the file no longer names, then trust what it does. */
    for (pn_peer *p = pn_registry_next(h, NULL); p; p = pn_registry_next(h, p))
        if (p->in_file && !pn_trust_find_key(t, p->key)) {
            p->in_file = 0;
            if (!p->api_trusted) pn_host_untrust(h, p->key);
        }
    for (size_t i = 0; i < pn_trust_count(t); i++) {
        const pn_trust_entry *en = pn_trust_at(t, i);
        pn_err e2;
        pn_peer *p = pn_registry_find(h, en->key);
        int fresh = !p || !p->trusted || strcmp(p->addr, en->addr) != 0;
        if (fresh && pn_policy_trust(h, en->key, en->addr[0] ? en->addr : NULL, &e2) != 0) {
            pn_log(h, PN_LOG_WARN, "%s: entry %zu skipped: %s", path, i + 1, e2.msg);
            continue;
        }
        p = pn_registry_find(h, en->key);
        if (p) p->in_file = 1;
    }
    pn_trust_free(t);
    return 0;
}

static void on_settled(uv_timer_t *t) {
    pn_trustfile *tf = t->data;
    pn_err e;
    if (apply(tf->host, tf->path, &e) != 0)
        pn_log(tf->host, PN_LOG_ERROR, "trust list not reloaded, the previous one stays: %s",
               e.msg);
    else
        pn_log(tf->host, PN_LOG_INFO, "trust list reloaded from %s", tf->path);
}

static void changed(pn_trustfile *tf) {
    uv_timer_start(&tf->settle, on_settled, PN_TRUSTFILE_SETTLE_MS, 0);
}

static void on_dir_event(uv_fs_event_t *w, const char *name, int events, int status) {
    pn_trustfile *tf = w->data;
    if (status == 0 && (!name || strcmp(name, tf->base) == 0)) changed(tf);
}

static void on_poll(uv_fs_poll_t *p, int status, const uv_stat_t *prev, const uv_stat_t *cur) {
    changed(p->data);
}

int pn_trustfile_watch(pn_host *h, const char *path, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    if (h->closing) return pn_err_set(e, PN_ESTATE, "host is closed");
    if (h->trustfile) return pn_err_set(e, PN_EEXIST, "a trust file is already watched");
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || n >= PN_PATH_MAX)
        return pn_err_set(e, PN_EINVAL, "trust file path must be 1..%d bytes", PN_PATH_MAX - 1);
    int rc = apply(h, path, e);
    if (rc != 0) return rc;
    pn_trustfile *tf = calloc(1, sizeof *tf);
    if (!tf) return pn_err_set(e, PN_ENOMEM, "out of memory");
    tf->host = h;
    memcpy(tf->path, path, n + 1);
    char dir[PN_PATH_MAX];
    const char *slash = strrchr(tf->path, '/');
    tf->base = slash ? slash + 1 : tf->path;
    if (slash == tf->path)
        strcpy(dir, "/");
    else if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - tf->path), tf->path);
    else
        strcpy(dir, ".");
    uv_fs_event_init(h->loop, &tf->watch);
    uv_fs_poll_init(h->loop, &tf->poll);
    uv_timer_init(h->loop, &tf->settle);
    tf->watch.data = tf->poll.data = tf->settle.data = tf;
    pn_host_adopt(h, (uv_handle_t *)&tf->watch);
    pn_host_adopt(h, (uv_handle_t *)&tf->poll);
    pn_host_adopt(h, (uv_handle_t *)&tf->settle);
    h->refs++;
    if (uv_fs_event_start(&tf->watch, on_dir_event, dir, 0) != 0)
        pn_log(h, PN_LOG_WARN, "cannot watch %s: polling %s every %d ms", dir, tf->path,
               PN_TRUSTFILE_POLL_MS);
    /* Even with the watch: a poll catches what a watch can miss (network file systems). */
    uv_fs_poll_start(&tf->poll, on_poll, tf->path, PN_TRUSTFILE_POLL_MS);
    /* Watching must not keep a loop alive that has nothing else to do. */
    uv_unref((uv_handle_t *)&tf->watch);
    uv_unref((uv_handle_t *)&tf->poll);
    uv_unref((uv_handle_t *)&tf->settle);
    h->trustfile = tf;
    return 0;
}

static void on_closed(void *ud) {
    pn_trustfile *tf = ud;
    pn_host_unref_free(tf->host, tf);
}

void pn_trustfile_close(pn_host *h) {
    pn_trustfile *tf = h->trustfile;
    if (!tf) return;
    h->trustfile = NULL;
    uv_handle_t *hs[] = {PN_HANDLE(&tf->watch), PN_HANDLE(&tf->poll), PN_HANDLE(&tf->settle)};
    pn_handles_close(&tf->closing, hs, sizeof hs / sizeof hs[0], on_closed, tf);
}
