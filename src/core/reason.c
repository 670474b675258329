#include "reason.h"

#include <stddef.h>

#define PN_NAME_(e, name, meaning) name,
static const char *const reasons[] = {PN_REASONS(PN_NAME_)};
static const char *const kinds[] = {PN_KINDS(PN_NAME_)};
#undef PN_NAME_

const char *pn_reason_name(enum pn_reason r) {
    return (unsigned)r < PN_REASON_COUNT ? reasons[r] : "unknown";
}

const char *pn_reason_kind_name(enum pn_kind k) {
    return (unsigned)k < PN_KIND_COUNT ? kinds[k] : "unknown";
}
