/*
 * Trust store: the peers this host accepts, kept in a text file a person
 * can edit. One peer per line:
 *
 *     KEY [LABEL [HOST:PORT [ADDED]]]
 *
 * Fields are separated by spaces or tabs; `-` stands for an absent field.
 *   KEY        the peer's public key in any text form of key.h (64 hex
 *              digits, base64 or base64url); lines this module writes use
 *              lowercase hex.
 *   LABEL      1..64 of [A-Za-z0-9._-], a name for the peer, unique in the
 *              file (case-sensitive) and never itself a valid key, so that
 *              "key or label" lookups are unambiguous.
 *   HOST:PORT  where to dial it: a hostname, an IPv4 address or [IPv6]
 *              (an optional %zone inside the brackets), PORT 1..65535, at
 *              most PN_ADDR_MAX bytes (addr.h).
 *   ADDED      when it was trusted, UTC, exactly YYYY-MM-DDTHH:MM:SSZ (utc.h).
 * `#` at the start of a line or after a space or tab starts a comment that
 * runs to the end of the line. Blank lines are fine; CRLF line ends too.
 *
 * The store keeps the file's raw text. Saving rewrites only the lines of
 * entries that were added or changed (a changed line keeps its trailing
 * comment), removes the lines of removed entries and appends new ones at
 * the end, so comments, blank lines and untouched lines survive byte for
 * byte. Saving is crash-safe (pn_file_write_atomic: temp file, fsync,
 * rename, mode 0600).
 *
 * A malformed line is an error naming the file, the line number and what is
 * wrong; the whole load fails, never a silently shorter list. A key or
 * label listed on two lines is an error naming both lines. On load the file
 * must be a regular file (not a symlink) of the caller's that group and
 * others cannot write (mode 0600 or 0644 are fine).
 */
#ifndef PN_TRUST_H
#define PN_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"
#include "addr.h"
#include "key.h"
#include "utc.h"

#define PN_TRUST_FILE_MAX (1u << 20) /* bytes in a trust file */
#define PN_TRUST_LINE_MAX 1024       /* bytes in one line, without its line end */
#define PN_TRUST_ENTRIES_MAX 4096    /* peers in one store */
#define PN_TRUST_LABEL_MAX 64
#define PN_TRUST_NO_TIME INT64_MIN      /* `added` when the field is absent */
#define PN_TRUST_FILE_NAME "trust.list" /* suggested name in the data directory */

typedef struct pn_trust_entry {
    uint8_t key[PN_KEY_LEN];
    char label[PN_TRUST_LABEL_MAX + 1]; /* "" when absent */
    char addr[PN_ADDR_MAX + 1];         /* "" when absent; as written, e.g. "[::1]:4040" */
    int64_t added;                      /* Unix seconds, or PN_TRUST_NO_TIME */
} pn_trust_entry;

typedef struct pn_trust pn_trust;

/* An empty store that will save to path (NULL: an in-memory store whose
 * pn_trust_save fails with PN_ESTATE). *out is NULL on failure. */
int pn_trust_new(pn_trust **out, const char *path, pn_err *e);

/* Loads path. A file that does not exist gives an empty store (its first
 * save creates the file with a header comment explaining the format).
 * Errors: PN_EINVAL a malformed line, PN_EEXIST a duplicate key or label,
 * PN_ETOOBIG the file or a line exceeds its bound, PN_ELIMIT too many
 * entries, PN_EPERM unsafe permissions, PN_EIO. *out is NULL on failure. */
int pn_trust_load(pn_trust **out, const char *path, pn_err *e);

/* Parses len bytes of trust-file text into t, which must be empty (else
 * PN_ESTATE). name is used in error messages (e.g. the path). On failure t
 * is left empty. */
int pn_trust_parse(pn_trust *t, const uint8_t *buf, size_t len, const char *name, pn_err *e);

/* pn_trust_load under pn_file_lock(path) (waiting at most wait_ms for
 * another writer, else PN_ELIMIT): the store keeps the lock until
 * pn_trust_unlock or pn_trust_free, so a read-modify-write by one process
 * cannot lose another's change. Every writer of a trust file takes it. */
int pn_trust_load_locked(pn_trust **out, const char *path, unsigned wait_ms, pn_err *e);

/* Releases the store's lock, if it holds one. */
void pn_trust_unlock(pn_trust *t);

/* Releases the lock (if held) and frees the store. */
void pn_trust_free(pn_trust *t);

/* The text that pn_trust_save would write, malloc'd (caller frees). */
int pn_trust_serialize(const pn_trust *t, char **out, size_t *len, pn_err *e);

/* Writes the store to its path crash-safely and remembers the new file's
 * identity for pn_trust_changed_on_disk. The write happens under the file's
 * lock (the store's own, or one taken for the write, waiting at most
 * PN_FILE_LOCK_WAIT_MS) and is refused with PN_ESTATE when the file changed
 * on disk since the store read it (another writer or a hand edit: load
 * again and redo the change). Under the lock, temp files left by a writer
 * killed mid-write are removed first. */
int pn_trust_save(pn_trust *t, pn_err *e);

/* 1 when the file at the store's path differs (inode, size or mtime, or
 * existence) from what was last loaded or saved, else 0: the host re-reads
 * hand edits by loading a fresh store. */
int pn_trust_changed_on_disk(const pn_trust *t);

/* The path given to new/load, or NULL. */
const char *pn_trust_path(const pn_trust *t);

/* Adds key, or updates it if already present. For a new key, NULL or "-"
 * label/addr mean absent and added (Unix seconds or PN_TRUST_NO_TIME) is
 * its ADDED field. For a present key, a NULL label/addr keeps the old
 * value, "-" clears it, anything else replaces it, and its ADDED field is
 * kept as it is: it records when the peer was first trusted. Returns 0 when
 * added, 1 when updated, or: PN_EINVAL a bad label/addr/time, PN_EEXIST the
 * label belongs to another key, PN_ELIMIT the store is full, PN_ETOOBIG the
 * entry's line or the file would exceed its bound. */
int pn_trust_add(pn_trust *t, const uint8_t key[PN_KEY_LEN], const char *label, const char *addr,
                 int64_t added, pn_err *e);

/* Removes the entry whose key or label is text (NUL-terminated). A text
 * that parses as a key is only ever a key. PN_ENOTFOUND when absent. */
int pn_trust_remove(pn_trust *t, const char *text, pn_err *e);
int pn_trust_remove_key(pn_trust *t, const uint8_t key[PN_KEY_LEN], pn_err *e);

/* Lookups; NULL when absent. Pointers stay valid until the next add,
 * remove or free. */
const pn_trust_entry *pn_trust_find_key(const pn_trust *t, const uint8_t key[PN_KEY_LEN]);
const pn_trust_entry *pn_trust_find_label(const pn_trust *t, const char *label);
const pn_trust_entry *pn_trust_find(const pn_trust *t, const char *key_or_label);

/* Entries in file order: i in 0..count-1. */
size_t pn_trust_count(const pn_trust *t);
const pn_trust_entry *pn_trust_at(const pn_trust *t, size_t i);

/* The LABEL check, also for callers validating user input (HOST:PORT is
 * pn_addr_check, ADDED pn_utc_parse). */
int pn_trust_check_label(const char *s, size_t len, pn_err *e);

#endif
