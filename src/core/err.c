#include "peernet/err.h"

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
#define PN_ERR_CASE_(e, v, name, meaning)                                                          \
    case e:                                                                                        \
        return name;
        PN_ERRORS(PN_ERR_CASE_)
#undef PN_ERR_CASE_
    }
    return "unknown";
}
