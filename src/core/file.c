/*
 * Files only their owner may change: crash-safe replacement (temp file,
 * fsync, rename, directory fsync) and checked opening. Shared by the
 * identity key file and the trust list.
 */
#include "file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define TMP_SUFFIX_HEX 16 /* random hex digits in a temp file name */
#define LOCK_RETRY_MS 5   /* between tries for a lock another process holds */
#define STOP_HOOK_ENV "PEERNET_TEST_STOP_AFTER_TEMP"

/* Copies the directory part of path into dir ("." when there is none). */
static int dir_of(char *dir, size_t cap, const char *path, pn_err *e) {
    size_t n = strlen(path);
    if (n == 0) return pn_err_set(e, PN_EINVAL, "empty path");
    if (n >= cap) return pn_err_set(e, PN_EINVAL, "path is too long (%zu bytes)", n);
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    return PN_OK;
}

static int owner_ok(const struct stat *st) {
    return st->st_uid == geteuid() || st->st_uid == 0;
}

static int check_dir_stat(const char *dir, const struct stat *st, pn_err *e) {
    if (!S_ISDIR(st->st_mode)) return pn_err_set(e, PN_EINVAL, "%s is not a directory", dir);
    if (!owner_ok(st))
        return pn_err_set(e, PN_EPERM,
                          "directory %s belongs to uid %u, not you (uid %u); run: chown %u %s", dir,
                          (unsigned)st->st_uid, (unsigned)geteuid(), (unsigned)geteuid(), dir);
    /* A sticky shared directory (/tmp) is meant to be writable by all:
     * advising chmod there would break the system, so say move instead. */
    if ((st->st_mode & 022) && (st->st_mode & S_ISVTX))
        return pn_err_set(e, PN_EPERM,
                          "directory %s is shared (mode %04o); move the files to a directory only "
                          "you can write",
                          dir, (unsigned)(st->st_mode & 07777));
    if (st->st_mode & 022)
        return pn_err_set(e, PN_EPERM,
                          "directory %s is writable by others (mode %04o); run: chmod 700 %s", dir,
                          (unsigned)(st->st_mode & 07777), dir);
    return PN_OK;
}

/* Makes sure dir exists and is safe. Missing components are created 0700;
 * an existing directory is only checked, never changed. */
static int ensure_dir(const char *dir, pn_err *e) {
    struct stat st;
    char buf[PN_PATH_MAX];
    size_t n = strlen(dir);
    if (stat(dir, &st) == 0) return check_dir_stat(dir, &st, e);
    if (errno != ENOENT)
        return pn_err_set(e, PN_EIO, "cannot use directory %s: %s", dir, strerror(errno));
    if (n >= sizeof buf) return pn_err_set(e, PN_EINVAL, "path is too long (%zu bytes)", n);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            int err = errno;
            buf[i] = c;
            return pn_err_set(e, PN_EIO, "cannot create directory %s: %s", buf, strerror(err));
        }
        buf[i] = c;
    }
    /* umask may have removed owner bits; the last directory gets exactly 0700. */
    if (stat(dir, &st) != 0)
        return pn_err_set(e, PN_EIO, "cannot use directory %s: %s", dir, strerror(errno));
    if ((st.st_mode & 07777) != 0700 && owner_ok(&st) && chmod(dir, 0700) != 0)
        return pn_err_set(e, PN_EIO, "cannot chmod 700 %s: %s", dir, strerror(errno));
    if (stat(dir, &st) != 0)
        return pn_err_set(e, PN_EIO, "cannot use directory %s: %s", dir, strerror(errno));
    return check_dir_stat(dir, &st, e);
}

static int write_all(int fd, const uint8_t *p, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* A test hook, so that a spec can kill a writer between its temp file and
 * the rename: with PEERNET_TEST_STOP_AFTER_TEMP set to the file's base name,
 * the process stops itself (SIGSTOP) there. Nothing else reads it. */
static void stop_hook(const char *path) {
    const char *want = getenv(STOP_HOOK_ENV);
    const char *slash = strrchr(path, '/');
    if (want && want[0] && strcmp(want, slash ? slash + 1 : path) == 0) raise(SIGSTOP);
}

int pn_file_write_atomic(const char *path, const void *data, size_t len, pn_err *e) {
    char dir[PN_PATH_MAX], tmp[PN_PATH_MAX];
    uint8_t rnd[TMP_SUFFIX_HEX / 2];
    char rhex[TMP_SUFFIX_HEX + 1];
    int rc, fd = -1, err;

    if ((rc = dir_of(dir, sizeof dir, path, e)) != 0) return rc;
    if ((rc = ensure_dir(dir, e)) != 0) return rc;
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(rhex, sizeof rhex, rnd, sizeof rnd);
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, rhex) >= sizeof tmp)
        return pn_err_set(e, PN_EINVAL, "path is too long: %s", path);

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return pn_err_set(e, PN_EIO, "cannot create %s: %s", tmp, strerror(errno));
    /* umask can only clear bits, but the mode must be exactly 0600. */
    if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        err = errno;
        close(fd);
        unlink(tmp);
        return pn_err_set(e, PN_EIO, "cannot write %s: %s", tmp, strerror(err));
    }
    if (close(fd) != 0) {
        err = errno;
        unlink(tmp);
        return pn_err_set(e, PN_EIO, "cannot write %s: %s", tmp, strerror(err));
    }
    stop_hook(path);
    if (rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        return pn_err_set(e, PN_EIO, "cannot replace %s: %s", path, strerror(err));
    }
    /* The rename is durable only once the directory entry is on disk. */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return pn_err_set(e, PN_EIO, "cannot open %s: %s", dir, strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) {
        err = errno;
        close(fd);
        return pn_err_set(e, PN_EIO, "cannot fsync %s: %s", dir, strerror(err));
    }
    close(fd);
    return PN_OK;
}

int pn_file_open_private(const char *path, unsigned forbid, size_t *size, pn_err *e) {
    char dir[PN_PATH_MAX];
    struct stat st, fst;
    int rc, fd;

    if ((rc = dir_of(dir, sizeof dir, path, e)) != 0) return rc;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return pn_err_set(e, PN_ENOTFOUND, "%s does not exist", path);
        return pn_err_set(e, PN_EIO, "cannot read %s: %s", path, strerror(errno));
    }
    if (S_ISLNK(st.st_mode))
        return pn_err_set(e, PN_EINVAL,
                          "%s is a symbolic link; refusing it (put the file itself there)", path);
    if (!S_ISREG(st.st_mode)) return pn_err_set(e, PN_EINVAL, "%s is not a regular file", path);
    if (!owner_ok(&st))
        return pn_err_set(e, PN_EPERM, "%s belongs to uid %u, not you (uid %u); run: chown %u %s",
                          path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(),
                          path);
    if (st.st_mode & forbid) {
        unsigned bad = (unsigned)st.st_mode & forbid;
        const char *what = (bad & 044) && (bad & 022) ? "readable and writable"
                           : (bad & 044)              ? "readable"
                           : (bad & 022)              ? "writable"
                                                      : "accessible";
        return pn_err_set(e, PN_EPERM, "%s is %s by others (mode %04o); run: chmod 600 %s", path,
                          what, (unsigned)(st.st_mode & 07777), path);
    }
    if (stat(dir, &fst) != 0)
        return pn_err_set(e, PN_EIO, "cannot use directory %s: %s", dir, strerror(errno));
    if ((rc = check_dir_stat(dir, &fst, e)) != 0) return rc;

    /* O_NONBLOCK: if the file was swapped for a FIFO since lstat, do not hang. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            return pn_err_set(e, PN_EINVAL, "%s is a symbolic link; refusing it", path);
        return pn_err_set(e, PN_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &fst) != 0 || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino ||
        !S_ISREG(fst.st_mode) || (fst.st_mode & forbid) || !owner_ok(&fst)) {
        close(fd);
        return pn_err_set(e, PN_EIO, "%s changed while being opened; try again", path);
    }
    *size = (size_t)fst.st_size;
    return fd;
}

int pn_file_read_all(int fd, uint8_t *buf, size_t max, size_t *got, const char *name, pn_err *e) {
    size_t n = 0;
    while (n < max) {
        ssize_t r = read(fd, buf + n, max - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return pn_err_set(e, PN_EIO, "cannot read %s: %s", name, strerror(errno));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    *got = n;
    return PN_OK;
}

int pn_file_lock(const char *path, unsigned wait_ms, pn_err *e) {
    char dir[PN_PATH_MAX];
    int rc, fd;

    if ((rc = dir_of(dir, sizeof dir, path, e)) != 0) return rc;
    if ((rc = ensure_dir(dir, e)) != 0) return rc;
    /* The directory itself is the lock: no lock file to leave behind or to
     * check, and ensure_dir has just made sure only we can write in it. */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return pn_err_set(e, PN_EIO, "cannot open %s: %s", dir, strerror(errno));
    /* flock has no timeout: retry a non-blocking try until the deadline. */
    for (unsigned waited = 0;; waited += LOCK_RETRY_MS) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int err = errno;
            close(fd);
            return pn_err_set(e, PN_EIO, "cannot lock %s: %s", dir, strerror(err));
        }
        if (waited >= wait_ms) break;
        struct timespec ts = {0, LOCK_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    close(fd);
    return pn_err_set(e, PN_ELIMIT,
                      "another process is changing %s (it has held the lock on %s for %u ms); "
                      "try again",
                      path, dir, wait_ms);
}

void pn_file_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing the only descriptor releases the flock */
}

/* 1 if name is base + ".tmp-" + exactly TMP_SUFFIX_HEX hex digits. */
static int is_temp_of(const char *name, const char *base) {
    size_t bn = strlen(base);
    if (strncmp(name, base, bn) != 0 || strncmp(name + bn, ".tmp-", 5) != 0) return 0;
    const char *h = name + bn + 5;
    size_t i = 0;
    for (; h[i]; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return 0;
    return i == TMP_SUFFIX_HEX;
}

int pn_file_clean_temps(const char *path, pn_err *e) {
    char dir[PN_PATH_MAX], victim[PN_PATH_MAX];
    int rc, removed = 0;
    if ((rc = dir_of(dir, sizeof dir, path, e)) != 0) return rc;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    DIR *dh = opendir(dir);
    if (!dh) return pn_err_set(e, PN_EIO, "cannot list %s: %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (!is_temp_of(de->d_name, base)) continue;
        if ((size_t)snprintf(victim, sizeof victim, "%s/%s", dir, de->d_name) >= sizeof victim)
            continue;
        if (unlink(victim) == 0) removed++;
    }
    closedir(dh);
    return removed;
}

int pn_file_read_private(const char *path, unsigned forbid, size_t max, char **out, size_t *len,
                         pn_err *e) {
    size_t size = 0, got = 0;
    *out = NULL;
    *len = 0;
    int fd = pn_file_open_private(path, forbid, &size, e);
    if (fd < 0) return fd;
    if (size > max) {
        close(fd);
        return pn_err_set(e, PN_ETOOBIG, "%s is larger than %zu bytes", path, max);
    }
    /* +1 shows a file that grew since it was opened. */
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return pn_err_set(e, PN_ENOMEM, "out of memory");
    }
    int rc = pn_file_read_all(fd, (uint8_t *)buf, size + 1, &got, path, e);
    close(fd);
    if (rc == PN_OK && got != size)
        rc = pn_err_set(e, PN_EIO, "%s changed while being read; try again", path);
    if (rc != PN_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = got;
    return PN_OK;
}
