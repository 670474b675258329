/*
 * Error reporting shared by every pn_ module: functions return 0 or a
 * negative PN_E* code, and fill a caller-owned pn_err with a message a
 * person can act on. Nothing here allocates.
 */
#ifndef PN_ERR_H
#define PN_ERR_H

#include <stddef.h>

enum {
    PN_OK = 0,
    PN_EINVAL = -1,  /* malformed input: bytes, text, arguments */
    PN_ENOMEM = -2,  /* allocation failed */
    PN_EIO = -3,     /* a file or system call failed; errno is in the message */
    PN_ETOOBIG = -4, /* input exceeds a named bound */
    PN_EAUTH = -5,   /* authentication failed: bad tag, low-order point */
    PN_ETRUST = -6,  /* the peer's key is not accepted */
    PN_ESTATE = -7,  /* call made in the wrong state */
    PN_EPERM = -8,   /* file permissions are unsafe */
    PN_ENOTFOUND = -9,
    PN_EEXIST = -10,
    PN_ELIMIT = -11 /* a counter or table reached its bound */
};

#define PN_ERR_MSG_MAX 200

typedef struct pn_err {
    int code;
    char msg[PN_ERR_MSG_MAX];
} pn_err;

/* Sets code and a printf-style message (truncated to fit); returns code so
 * callers can write `return pn_err_set(e, PN_EINVAL, "...")`. e may be NULL. */
int pn_err_set(pn_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void pn_err_clear(pn_err *e);

/* Short name of a code, e.g. "einval". */
const char *pn_err_name(int code);

#endif
