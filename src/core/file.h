/*
 * Files only their owner may change (identity.keys, the trust list).
 */
#ifndef PN_FILE_H
#define PN_FILE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"

/* Bytes of every path buffer, NUL included: the longest path we build temp
 * names and parents from, and room for what realpath(3) writes. */
#define PN_PATH_MAX 4096
_Static_assert(PN_PATH_MAX >= PATH_MAX, "a PN_PATH_MAX buffer must hold a realpath result");

/* Crash-safe replacement of path by len bytes of data, shared by the key
 * file and the trust file: the parent directory is created (mode 0700, with
 * any missing parents) if absent and refused if group/other-writable; data
 * goes to a new temp file beside path (O_CREAT|O_EXCL, mode 0600), which is
 * fsynced, renamed over path, and the directory fsynced. On failure the
 * temp file is removed and path is untouched. */
int pn_file_write_atomic(const char *path, const void *data, size_t len, pn_err *e);

/* Opens path for reading as a file only its owner may change: it must be a
 * regular file, not a symlink, owned by the caller (or root), with none of
 * the mode bits in `forbid` set (077 for secrets, 022 for files others must
 * not edit), in a directory owned by the caller (or root) that group and
 * others cannot write. Returns an open fd (>= 0) and sets *size, or a
 * negative code: PN_ENOTFOUND if path does not exist, PN_EPERM with a
 * chmod/chown hint, PN_EINVAL not a regular file, PN_EIO. */
int pn_file_open_private(const char *path, unsigned forbid, size_t *size, pn_err *e);

/* How long a writer waits for another process's lock by default. */
#define PN_FILE_LOCK_WAIT_MS 10000

/* Takes an exclusive flock on path's directory (made or checked as for
 * pn_file_write_atomic), so that writers of path in other processes take
 * turns over their read-modify-write. Waits at most wait_ms for a holder,
 * then fails with PN_ELIMIT ("another process is changing ..."). Returns
 * the lock's fd (>= 0): the lock lasts until pn_file_unlock(fd) or the
 * process ends, however it ends. Not reentrant: a second pn_file_lock of
 * the same directory in one process waits for the first. */
int pn_file_lock(const char *path, unsigned wait_ms, pn_err *e);
void pn_file_unlock(int fd);

/* Removes the temp files pn_file_write_atomic leaves when killed mid-write
 * ("<path>.tmp-" and its 16 hex digits, nothing else). Only safe while
 * holding pn_file_lock(path): then no live writer owns one. Returns how
 * many were removed, or a negative code if the directory cannot be read. */
int pn_file_clean_temps(const char *path, pn_err *e);

/* pn_file_open_private, then the whole file into a malloc'd buffer (the
 * caller frees *out): PN_ETOOBIG when it is larger than max bytes. For the
 * files that are code or grants (handler scripts, config.lua), read with
 * forbid 022 so that no other user can have changed them. */
int pn_file_read_private(const char *path, unsigned forbid, size_t max, char **out, size_t *len,
                         pn_err *e);

/* Reads up to max bytes from fd into buf (retrying short reads and EINTR)
 * and sets *got; stops at end of file. */
int pn_file_read_all(int fd, uint8_t *buf, size_t max, size_t *got, const char *name, pn_err *e);

#endif
