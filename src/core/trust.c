/*
 * Trust store (format and guarantees in trust.h).
 *
 * The file is held as segments of raw text: each entry's line is its own
 * segment, and runs of other lines (comments, blanks) are verbatim
 * segments. Saving concatenates the segments, so whatever was not edited
 * is written back exactly as read.
 */
#include "trust.h"
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define SEGS_MAX (2 * PN_TRUST_ENTRIES_MAX + 2) /* entries with a verbatim run around each */
#define RENDER_MAX (PN_KEY_HEX_LEN + PN_TRUST_LABEL_MAX + PN_ADDR_MAX + PN_UTC_LEN + 4)
#define QUOTE_MAX 24 /* bytes of an offending token repeated in a message */

static const char header[] =
    "# PeerNet trust list: the peers this host accepts, one per line:\n"
    "#\n"
    "#   KEY [LABEL [HOST:PORT [ADDED]]]\n"
    "#\n"
    "# KEY       the peer's public key: 64 hex digits (base64/base64url also read)\n"
    "# LABEL     a name for the peer: 1-64 of A-Z a-z 0-9 . _ - (not itself a key)\n"
    "# HOST:PORT where to reach it: hostname, IPv4 or [IPv6], port 1-65535\n"
    "# ADDED     when it was trusted, UTC: YYYY-MM-DDTHH:MM:SSZ\n"
    "#\n"
    "# Separate fields with spaces; write - for a field you leave out. Text after\n"
    "# # is a comment. peernet-host keeps your comments and lines when it saves.\n"
    "\n";

typedef struct seg {
    char *text; /* raw bytes, line end included; malloc'd */
    size_t len;
    int is_entry;
} seg;

typedef struct ent {
    pn_trust_entry e;
    size_t seg;  /* index of its line in segs */
    size_t line; /* line number at parse time, for duplicate messages */
} ent;

struct pn_trust {
    char *path;
    seg *segs;
    size_t nsegs, segcap;
    ent *ents;
    size_t nents, entcap;
    size_t bytes; /* sum of segment lengths: the size of the saved file */
    /* What the file was when last loaded or saved. */
    int on_disk;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int lock_fd; /* pn_file_lock of path held by this store, or -1 */
};

/* ---- field syntax ------------------------------------------------------ */

static int is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

static int is_alnum(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Writes a printable, bounded copy of s for error messages. */
static const char *quote(char out[QUOTE_MAX + 4], const char *s, size_t len) {
    size_t n = len < QUOTE_MAX ? len : QUOTE_MAX, i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > n) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

int pn_trust_check_label(const char *s, size_t len, pn_err *e) {
    uint8_t k[PN_KEY_LEN];
    if (len == 0 || len > PN_TRUST_LABEL_MAX)
        return pn_err_set(e, PN_EINVAL, "bad label: must be 1 to %d characters",
                          PN_TRUST_LABEL_MAX);
    if (len == 1 && s[0] == '-') return pn_err_set(e, PN_EINVAL, "bad label: '-' means no label");
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return pn_err_set(e, PN_EINVAL,
                              "bad label: only letters, digits, '.', '_' and '-' are allowed");
    if (pn_key_parse(k, s, len, NULL) == PN_OK)
        return pn_err_set(e, PN_EINVAL, "bad label: it reads as a key; pick another name");
    return PN_OK;
}

/* ---- the store --------------------------------------------------------- */

int pn_trust_new(pn_trust **out, const char *path, pn_err *e) {
    pn_trust *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t) return pn_err_set(e, PN_ENOMEM, "out of memory");
    t->lock_fd = -1;
    if (path) {
        size_t n = strlen(path);
        if (n == 0 || n >= PN_PATH_MAX) {
            free(t);
            return pn_err_set(e, PN_EINVAL, "bad trust file path");
        }
        t->path = malloc(n + 1);
        if (!t->path) {
            free(t);
            return pn_err_set(e, PN_ENOMEM, "out of memory");
        }
        memcpy(t->path, path, n + 1);
    }
    *out = t;
    return PN_OK;
}

static void clear(pn_trust *t) {
    for (size_t i = 0; i < t->nsegs; i++)
        free(t->segs[i].text);
    free(t->segs);
    free(t->ents);
    t->segs = NULL;
    t->ents = NULL;
    t->nsegs = t->segcap = t->nents = t->entcap = t->bytes = 0;
}

void pn_trust_unlock(pn_trust *t) {
    if (!t || t->lock_fd < 0) return;
    pn_file_unlock(t->lock_fd);
    t->lock_fd = -1;
}

void pn_trust_free(pn_trust *t) {
    if (!t) return;
    pn_trust_unlock(t);
    clear(t);
    free(t->path);
    free(t);
}

const char *pn_trust_path(const pn_trust *t) {
    return t->path;
}

size_t pn_trust_count(const pn_trust *t) {
    return t->nents;
}

const pn_trust_entry *pn_trust_at(const pn_trust *t, size_t i) {
    return i < t->nents ? &t->ents[i].e : NULL;
}

const pn_trust_entry *pn_trust_find_key(const pn_trust *t, const uint8_t key[PN_KEY_LEN]) {
    for (size_t i = 0; i < t->nents; i++)
        if (memcmp(t->ents[i].e.key, key, PN_KEY_LEN) == 0) return &t->ents[i].e;
    return NULL;
}

const pn_trust_entry *pn_trust_find_label(const pn_trust *t, const char *label) {
    if (!label[0]) return NULL;
    for (size_t i = 0; i < t->nents; i++)
        if (strcmp(t->ents[i].e.label, label) == 0) return &t->ents[i].e;
    return NULL;
}

const pn_trust_entry *pn_trust_find(const pn_trust *t, const char *text) {
    uint8_t k[PN_KEY_LEN];
    if (pn_key_parse(k, text, strlen(text), NULL) == PN_OK) return pn_trust_find_key(t, k);
    return pn_trust_find_label(t, text);
}

static int grow_segs(pn_trust *t, pn_err *e) {
    if (t->nsegs < t->segcap) return PN_OK;
    if (t->nsegs >= SEGS_MAX) return pn_err_set(e, PN_ELIMIT, "trust store is full");
    size_t cap = t->segcap ? t->segcap * 2 : 16;
    if (cap > SEGS_MAX) cap = SEGS_MAX;
    seg *s = realloc(t->segs, cap * sizeof *s);
    if (!s) return pn_err_set(e, PN_ENOMEM, "out of memory");
    t->segs = s;
    t->segcap = cap;
    return PN_OK;
}

static int grow_ents(pn_trust *t, pn_err *e) {
    if (t->nents < t->entcap) return PN_OK;
    if (t->nents >= PN_TRUST_ENTRIES_MAX)
        return pn_err_set(e, PN_ELIMIT, "trust store is full (at most %d peers)",
                          PN_TRUST_ENTRIES_MAX);
    size_t cap = t->entcap ? t->entcap * 2 : 16;
    if (cap > PN_TRUST_ENTRIES_MAX) cap = PN_TRUST_ENTRIES_MAX;
    ent *n = realloc(t->ents, cap * sizeof *n);
    if (!n) return pn_err_set(e, PN_ENOMEM, "out of memory");
    t->ents = n;
    t->entcap = cap;
    return PN_OK;
}

/* Appends a copy of text as a segment. */
static int push_seg(pn_trust *t, const char *text, size_t len, int is_entry, pn_err *e) {
    int rc;
    if ((rc = grow_segs(t, e)) != PN_OK) return rc;
    char *copy = malloc(len ? len : 1);
    if (!copy) return pn_err_set(e, PN_ENOMEM, "out of memory");
    memcpy(copy, text, len);
    t->segs[t->nsegs++] = (seg){copy, len, is_entry};
    t->bytes += len;
    return PN_OK;
}

/* ---- parsing ----------------------------------------------------------- */

typedef struct field {
    const char *p;
    size_t len;
} field;

/* Splits one line's content (no line end) into at most 4 fields; stops at a
 * comment. *comment_at is where the text after the last field begins. */
static int tokenize(const char *s, size_t len, field f[4], size_t *nf, size_t *comment_at,
                    const char *name, size_t line, pn_err *e) {
    size_t i = 0, n = 0, after_last = 0;
    while (i < len) {
        while (i < len && is_ws(s[i]))
            i++;
        if (i >= len || s[i] == '#') break;
        size_t start = i;
        while (i < len && !is_ws(s[i])) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c == 0x7f)
                return pn_err_set(e, PN_EINVAL, "%s:%zu: control character 0x%02x in a field", name,
                                  line, c);
            i++;
        }
        if (n == 4)
            return pn_err_set(e, PN_EINVAL,
                              "%s:%zu: too many fields (at most 4: KEY LABEL HOST:PORT ADDED)",
                              name, line);
        f[n++] = (field){s + start, i - start};
        after_last = i;
    }
    *nf = n;
    *comment_at = after_last;
    return PN_OK;
}

static int is_dash(field f) {
    return f.len == 1 && f.p[0] == '-';
}

/* Fills en from the fields of one line. */
static int parse_fields(pn_trust_entry *en, const field *f, size_t nf, const char *name,
                        size_t line, pn_err *e) {
    char q[QUOTE_MAX + 4];
    pn_err fe;
    memset(en, 0, sizeof *en);
    en->added = PN_TRUST_NO_TIME;
    if (pn_key_parse(en->key, f[0].p, f[0].len, &fe) != PN_OK)
        return pn_err_set(e, PN_EINVAL, "%s:%zu: bad key '%s': %s", name, line,
                          quote(q, f[0].p, f[0].len), fe.msg);
    if (nf > 1 && !is_dash(f[1])) {
        if (pn_trust_check_label(f[1].p, f[1].len, &fe) != PN_OK)
            return pn_err_set(e, PN_EINVAL, "%s:%zu: %s ('%s')", name, line, fe.msg,
                              quote(q, f[1].p, f[1].len));
        memcpy(en->label, f[1].p, f[1].len);
        en->label[f[1].len] = '\0';
    }
    if (nf > 2 && !is_dash(f[2])) {
        if (pn_addr_check(f[2].p, f[2].len, &fe) != PN_OK)
            return pn_err_set(e, PN_EINVAL, "%s:%zu: %s ('%s')", name, line, fe.msg,
                              quote(q, f[2].p, f[2].len));
        memcpy(en->addr, f[2].p, f[2].len);
        en->addr[f[2].len] = '\0';
    }
    if (nf > 3 && !is_dash(f[3])) {
        if (pn_utc_parse(f[3].p, f[3].len, &en->added, &fe) != PN_OK)
            return pn_err_set(e, PN_EINVAL, "%s:%zu: %s ('%s')", name, line, fe.msg,
                              quote(q, f[3].p, f[3].len));
    }
    return PN_OK;
}

static int parse_into(pn_trust *t, const uint8_t *buf, size_t len, const char *name, pn_err *e) {
    const char *s = (const char *)buf;
    size_t pos = 0, run = 0, line = 0; /* run: start of the pending verbatim lines */
    int rc;

    if (len > PN_TRUST_FILE_MAX)
        return pn_err_set(e, PN_ETOOBIG, "%s is %zu bytes; a trust file may have at most %u", name,
                          len, PN_TRUST_FILE_MAX);
    if (len == 0) return PN_OK;
    if (memchr(s, '\0', len)) {
        const char *z = memchr(s, '\0', len);
        for (size_t i = 0; i < (size_t)(z - s); i++)
            line += s[i] == '\n';
        return pn_err_set(e, PN_EINVAL, "%s:%zu: NUL byte in a text file", name, line + 1);
    }
    while (pos < len) {
        const char *nl = memchr(s + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - s) : len; /* content end */
        size_t next = nl ? end + 1 : len;
        size_t clen = end - pos;
        line++;
        if (clen > 0 && s[end - 1] == '\r') clen--;
        if (clen > PN_TRUST_LINE_MAX)
            return pn_err_set(e, PN_ETOOBIG, "%s:%zu: line is longer than %d bytes", name, line,
                              PN_TRUST_LINE_MAX);
        field f[4];
        size_t nf, cat;
        if ((rc = tokenize(s + pos, clen, f, &nf, &cat, name, line, e)) != PN_OK) return rc;
        if (nf == 0) {
            pos = next; /* part of the verbatim run that began at run */
            continue;
        }
        pn_trust_entry en;
        if ((rc = parse_fields(&en, f, nf, name, line, e)) != PN_OK) return rc;
        for (size_t i = 0; i < t->nents; i++) {
            char hex[PN_KEY_HEX_LEN + 1];
            if (memcmp(t->ents[i].e.key, en.key, PN_KEY_LEN) == 0) {
                pn_key_hex(hex, en.key);
                return pn_err_set(e, PN_EEXIST, "%s:%zu: key %.16s... is already on line %zu", name,
                                  line, hex, t->ents[i].line);
            }
            if (en.label[0] && strcmp(t->ents[i].e.label, en.label) == 0)
                return pn_err_set(e, PN_EEXIST, "%s:%zu: label '%s' is already on line %zu", name,
                                  line, en.label, t->ents[i].line);
        }
        if ((rc = grow_ents(t, e)) != PN_OK) {
            return pn_err_set(e, rc, "%s:%zu: too many peers (at most %d)", name, line,
                              PN_TRUST_ENTRIES_MAX);
        }
        if (run < pos && (rc = push_seg(t, s + run, pos - run, 0, e)) != PN_OK) return rc;
        if ((rc = push_seg(t, s + pos, next - pos, 1, e)) != PN_OK) return rc;
        t->ents[t->nents++] = (ent){en, t->nsegs - 1, line};
        pos = run = next;
    }
    if (run < pos && (rc = push_seg(t, s + run, pos - run, 0, e)) != PN_OK) return rc;
    return PN_OK;
}

int pn_trust_parse(pn_trust *t, const uint8_t *buf, size_t len, const char *name, pn_err *e) {
    if (t->nsegs || t->nents) return pn_err_set(e, PN_ESTATE, "trust store is not empty");
    if (!name) name = "trust list";
    int rc = parse_into(t, buf, len, name, e);
    if (rc != PN_OK) clear(t);
    return rc;
}

static void snapshot(pn_trust *t, const struct stat *st) {
    t->on_disk = st != NULL;
    if (!st) return;
    t->dev = st->st_dev;
    t->ino = st->st_ino;
    t->size = st->st_size;
    t->mtime = st->st_mtim;
}

int pn_trust_load(pn_trust **out, const char *path, pn_err *e) {
    pn_trust *t;
    struct stat st;
    size_t size = 0, got = 0;
    uint8_t *buf;
    int rc, fd;

    *out = NULL;
    if ((rc = pn_trust_new(&t, path, e)) != PN_OK) return rc;
    fd = pn_file_open_private(path, 022, &size, e);
    if (fd == PN_ENOTFOUND) {
        /* No file yet: an empty store whose first save explains the format. */
        if ((rc = push_seg(t, header, sizeof header - 1, 0, e)) != PN_OK) {
            pn_trust_free(t);
            return rc;
        }
        snapshot(t, NULL);
        pn_err_clear(e);
        *out = t;
        return PN_OK;
    }
    if (fd < 0) {
        pn_trust_free(t);
        return fd;
    }
    if (size > PN_TRUST_FILE_MAX || fstat(fd, &st) != 0) {
        close(fd);
        pn_trust_free(t);
        if (size > PN_TRUST_FILE_MAX)
            return pn_err_set(e, PN_ETOOBIG, "%s is %zu bytes; a trust file may have at most %u",
                              path, size, PN_TRUST_FILE_MAX);
        return pn_err_set(e, PN_EIO, "cannot read %s: %s", path, strerror(errno));
    }
    buf = malloc(size + 1); /* +1 shows a file that grew since fstat */
    if (!buf) {
        close(fd);
        pn_trust_free(t);
        return pn_err_set(e, PN_ENOMEM, "out of memory");
    }
    rc = pn_file_read_all(fd, buf, size + 1, &got, path, e);
    close(fd);
    if (rc == PN_OK && got != size)
        rc = pn_err_set(e, PN_EIO, "%s changed while being read; try again", path);
    if (rc == PN_OK) rc = pn_trust_parse(t, buf, got, path, e);
    free(buf);
    if (rc != PN_OK) {
        pn_trust_free(t);
        return rc;
    }
    snapshot(t, &st);
    *out = t;
    return PN_OK;
}

int pn_trust_load_locked(pn_trust **out, const char *path, unsigned wait_ms, pn_err *e) {
    *out = NULL;
    int fd = pn_file_lock(path, wait_ms, e);
    if (fd < 0) return fd;
    int rc = pn_trust_load(out, path, e);
    if (rc != PN_OK) {
        pn_file_unlock(fd);
        return rc;
    }
    (*out)->lock_fd = fd;
    return PN_OK;
}

int pn_trust_serialize(const pn_trust *t, char **out, size_t *len, pn_err *e) {
    char *buf = malloc(t->bytes ? t->bytes : 1), *p = buf;
    *out = NULL;
    *len = 0;
    if (!buf) return pn_err_set(e, PN_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->nsegs; i++) {
        memcpy(p, t->segs[i].text, t->segs[i].len);
        p += t->segs[i].len;
    }
    *out = buf;
    *len = t->bytes;
    return PN_OK;
}

int pn_trust_save(pn_trust *t, pn_err *e) {
    char *buf;
    size_t len;
    struct stat st;
    int rc;
    if (!t->path) return pn_err_set(e, PN_ESTATE, "this trust store has no file");
    int lock = t->lock_fd;
    if (lock < 0 && (lock = pn_file_lock(t->path, PN_FILE_LOCK_WAIT_MS, e)) < 0) return lock;
    /* Without this check a writer that read before another's save would
     * write its stale copy over that save. */
    if (pn_trust_changed_on_disk(t)) {
        rc = pn_err_set(e, PN_ESTATE,
                        "%s changed on disk since it was read (another writer or a hand edit); "
                        "read it again and redo the change",
                        t->path);
    } else if ((rc = pn_trust_serialize(t, &buf, &len, e)) == PN_OK) {
        pn_file_clean_temps(t->path, NULL);
        rc = pn_file_write_atomic(t->path, buf, len, e);
        free(buf);
        if (rc == PN_OK) snapshot(t, lstat(t->path, &st) == 0 ? &st : NULL);
    }
    if (lock != t->lock_fd) pn_file_unlock(lock);
    return rc;
}

int pn_trust_changed_on_disk(const pn_trust *t) {
    struct stat st;
    if (!t->path) return 0;
    if (lstat(t->path, &st) != 0) return errno == ENOENT ? t->on_disk : 1;
    return !t->on_disk || st.st_dev != t->dev || st.st_ino != t->ino || st.st_size != t->size ||
           st.st_mtim.tv_sec != t->mtime.tv_sec || st.st_mtim.tv_nsec != t->mtime.tv_nsec;
}

/* ---- edits ------------------------------------------------------------- */

/* The fields of en as a line's content, with trailing absent fields left out. */
static size_t render(char out[RENDER_MAX + 1], const pn_trust_entry *en) {
    char hex[PN_KEY_HEX_LEN + 1], ts[PN_UTC_LEN + 1] = "-";
    const char *f[3] = {en->label[0] ? en->label : "-", en->addr[0] ? en->addr : "-", ts};
    int last = 0, n;
    pn_key_hex(hex, en->key);
    if (en->added != PN_TRUST_NO_TIME) pn_utc_format(en->added, ts, NULL);
    if (en->label[0]) last = 1;
    if (en->addr[0]) last = 2;
    if (en->added != PN_TRUST_NO_TIME) last = 3;
    n = snprintf(out, RENDER_MAX + 1, "%s", hex);
    for (int i = 0; i < last; i++)
        n += snprintf(out + n, (size_t)(RENDER_MAX + 1 - n), " %s", f[i]);
    return (size_t)n;
}

/* Replaces segment si's text by content + the old line's trailing comment
 * (if any) + its line end, or content + "\n" for a new line (si == nsegs). */
static int put_line(pn_trust *t, size_t si, const pn_trust_entry *en, pn_err *e) {
    char content[RENDER_MAX + 1];
    size_t clen = render(content, en), tail_off = 0, tail_len = 0, eol_off = 0, eol_len = 1;
    const char *old = "\n";
    if (si < t->nsegs) {
        const seg *s = &t->segs[si];
        field f[4];
        size_t nf, cat, end = s->len;
        old = s->text;
        if (end > 0 && old[end - 1] == '\n') end--;
        if (end > 0 && old[end - 1] == '\r') end--;
        eol_off = end;
        eol_len = s->len - end;
        if (tokenize(old, end, f, &nf, &cat, "", 0, NULL) == PN_OK && cat < end) {
            /* Only a comment can follow the last field of a parsed line. */
            size_t j = cat;
            while (j < end && is_ws(old[j]))
                j++;
            if (j < end && old[j] == '#') {
                tail_off = cat;
                tail_len = end - cat;
            }
        }
    }
    if (clen + tail_len > PN_TRUST_LINE_MAX)
        return pn_err_set(e, PN_ETOOBIG,
                          "the entry's line would be longer than %d bytes; shorten its comment",
                          PN_TRUST_LINE_MAX);
    size_t len = clen + tail_len + eol_len;
    size_t old_len = si < t->nsegs ? t->segs[si].len : 0;
    if (t->bytes - old_len + len > PN_TRUST_FILE_MAX)
        return pn_err_set(e, PN_ETOOBIG, "the trust file would exceed %u bytes", PN_TRUST_FILE_MAX);
    char *text = malloc(len);
    if (!text) return pn_err_set(e, PN_ENOMEM, "out of memory");
    memcpy(text, content, clen);
    memcpy(text + clen, old + tail_off, tail_len);
    memcpy(text + clen + tail_len, old + eol_off, eol_len);
    if (si < t->nsegs) {
        free(t->segs[si].text);
        t->bytes -= t->segs[si].len;
        t->segs[si].text = text;
        t->segs[si].len = len;
    } else {
        int rc = grow_segs(t, e);
        if (rc != PN_OK) {
            free(text);
            return rc;
        }
        t->segs[t->nsegs++] = (seg){text, len, 1};
    }
    t->bytes += len;
    return PN_OK;
}

static int check_opt(const char *s, int (*check)(const char *, size_t, pn_err *), pn_err *e) {
    if (!s || strcmp(s, "-") == 0) return PN_OK;
    return check(s, strlen(s), e);
}

int pn_trust_add(pn_trust *t, const uint8_t key[PN_KEY_LEN], const char *label, const char *addr,
                 int64_t added, pn_err *e) {
    char ts[PN_UTC_LEN + 1];
    int rc;
    if ((rc = check_opt(label, pn_trust_check_label, e)) != PN_OK) return rc;
    if ((rc = check_opt(addr, pn_addr_check, e)) != PN_OK) return rc;
    if (added != PN_TRUST_NO_TIME && (rc = pn_utc_format(added, ts, e)) != PN_OK) return rc;

    size_t idx = t->nents;
    for (size_t i = 0; i < t->nents; i++)
        if (memcmp(t->ents[i].e.key, key, PN_KEY_LEN) == 0) idx = i;
    if (label && strcmp(label, "-") != 0) {
        const pn_trust_entry *other = pn_trust_find_label(t, label);
        if (other && (idx == t->nents || other != &t->ents[idx].e)) {
            char hex[PN_KEY_HEX_LEN + 1];
            pn_key_hex(hex, other->key);
            return pn_err_set(e, PN_EEXIST, "label '%s' already names key %.16s...", label, hex);
        }
    }

    pn_trust_entry en;
    if (idx < t->nents) {
        en = t->ents[idx].e;
    } else {
        memset(&en, 0, sizeof en);
        memcpy(en.key, key, PN_KEY_LEN);
        en.added = PN_TRUST_NO_TIME;
    }
    if (label) {
        memset(en.label, 0, sizeof en.label);
        if (strcmp(label, "-") != 0) memcpy(en.label, label, strlen(label));
    }
    if (addr) {
        memset(en.addr, 0, sizeof en.addr);
        if (strcmp(addr, "-") != 0) memcpy(en.addr, addr, strlen(addr));
    }
    if (idx == t->nents) en.added = added;

    if (idx < t->nents) {
        if ((rc = put_line(t, t->ents[idx].seg, &en, e)) != PN_OK) return rc;
        t->ents[idx].e = en;
        return 1;
    }

    if ((rc = grow_ents(t, e)) != PN_OK) return rc;
    /* A last line without a line end gets one, or the new entry would join it. */
    if (t->nsegs > 0) {
        seg *last = &t->segs[t->nsegs - 1];
        if (last->len > 0 && last->text[last->len - 1] != '\n') {
            if (t->bytes + 1 > PN_TRUST_FILE_MAX)
                return pn_err_set(e, PN_ETOOBIG, "the trust file would exceed %u bytes",
                                  PN_TRUST_FILE_MAX);
            char *n = realloc(last->text, last->len + 1);
            if (!n) return pn_err_set(e, PN_ENOMEM, "out of memory");
            n[last->len++] = '\n';
            last->text = n;
            t->bytes++;
        }
    }
    if ((rc = put_line(t, t->nsegs, &en, e)) != PN_OK) return rc;
    t->ents[t->nents++] = (ent){en, t->nsegs - 1, 0};
    return PN_OK;
}

static int remove_at(pn_trust *t, size_t i) {
    size_t si = t->ents[i].seg;
    free(t->segs[si].text);
    t->bytes -= t->segs[si].len;
    memmove(&t->segs[si], &t->segs[si + 1], (t->nsegs - si - 1) * sizeof *t->segs);
    t->nsegs--;
    memmove(&t->ents[i], &t->ents[i + 1], (t->nents - i - 1) * sizeof *t->ents);
    t->nents--;
    for (size_t j = 0; j < t->nents; j++)
        if (t->ents[j].seg > si) t->ents[j].seg--;
    return PN_OK;
}

int pn_trust_remove_key(pn_trust *t, const uint8_t key[PN_KEY_LEN], pn_err *e) {
    for (size_t i = 0; i < t->nents; i++)
        if (memcmp(t->ents[i].e.key, key, PN_KEY_LEN) == 0) return remove_at(t, i);
    char hex[PN_KEY_HEX_LEN + 1];
    pn_key_hex(hex, key);
    return pn_err_set(e, PN_ENOTFOUND, "key %.16s... is not in the trust list", hex);
}

int pn_trust_remove(pn_trust *t, const char *text, pn_err *e) {
    uint8_t k[PN_KEY_LEN];
    char q[QUOTE_MAX + 4];
    if (pn_key_parse(k, text, strlen(text), NULL) == PN_OK) return pn_trust_remove_key(t, k, e);
    for (size_t i = 0; i < t->nents; i++)
        if (text[0] && strcmp(t->ents[i].e.label, text) == 0) return remove_at(t, i);
    return pn_err_set(e, PN_ENOTFOUND, "'%s' is neither a key nor a label in the trust list",
                      quote(q, text, strlen(text)));
}
