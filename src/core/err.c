#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int pn_err_set(pn_err *e, int code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void pn_err_clear(pn_err *e) {
    if (e) {
        e->code = PN_OK;
        e->msg[0] = '\0';
    }
}

const char *pn_err_name(int code) {
    switch (code) {
        case PN_OK:
            return "ok";
        case PN_EINVAL:
            return "einval";
        case PN_ENOMEM:
            return "enomem";
        case PN_EIO:
            return "eio";
        case PN_ETOOBIG:
            return "etoobig";
        case PN_EAUTH:
            return "eauth";
        case PN_ETRUST:
            return "etrust";
        case PN_ESTATE:
            return "estate";
        case PN_EPERM:
            return "eperm";
        case PN_ENOTFOUND:
            return "enotfound";
        case PN_EEXIST:
            return "eexist";
        case PN_ELIMIT:
            return "elimit";
        default:
            return "unknown";
    }
}
