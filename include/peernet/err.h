/*
 * Errors of every pn_ function: 0 or a negative PN_E* code, with a message
 * a person can act on in a caller-owned pn_err. Nothing here allocates.
 *
 * PN_ERRORS is the one list of codes: the enum, pn_err_name() and the
 * `code` a Lua caller sees (`nil, message, code`) are made from it.
 */
#ifndef PEERNET_ERR_H
#define PEERNET_ERR_H

#include <stddef.h>

/* X(ENUM, value, name, meaning) */
#define PN_ERRORS(X)                                                                               \
    X(PN_OK, 0, "ok", "success")                                                                   \
    X(PN_EINVAL, -1, "einval", "malformed input: bytes, text, arguments")                          \
    X(PN_ENOMEM, -2, "enomem", "allocation failed")                                                \
    X(PN_EIO, -3, "eio", "a file or system call failed; errno is in the message")                  \
    X(PN_ETOOBIG, -4, "etoobig", "input exceeds a named bound")                                    \
    X(PN_EAUTH, -5, "eauth", "authentication failed: bad tag, low-order point")                    \
    X(PN_ETRUST, -6, "etrust", "the peer's key is not accepted")                                   \
    X(PN_ESTATE, -7, "estate", "call made in the wrong state")                                     \
    X(PN_EPERM, -8, "eperm", "file permissions are unsafe")                                        \
    X(PN_ENOTFOUND, -9, "enotfound", "no such entry")                                              \
    X(PN_EEXIST, -10, "eexist", "the entry exists already")                                        \
    X(PN_ELIMIT, -11, "elimit", "a counter or table reached its bound")                            \
    X(PN_EBUSY, -12, "ebusy", "the link's queue is full: try again once it drains")

#define PN_ERR_ENUM_(e, v, name, meaning) e = v,
enum { PN_ERRORS(PN_ERR_ENUM_) };
#undef PN_ERR_ENUM_

#define PN_ERR_MSG_MAX 200

typedef struct pn_err {
    int code;
    char msg[PN_ERR_MSG_MAX];
} pn_err;

/* Sets code and a printf-style message (truncated to fit); returns code so
 * callers can write `return pn_err_set(e, PN_EINVAL, "...")`. e may be NULL. */
int pn_err_set(pn_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void pn_err_clear(pn_err *e);

/* Short name of a code, e.g. "einval"; "unknown" for none of PN_ERRORS. */
const char *pn_err_name(int code);

#endif
