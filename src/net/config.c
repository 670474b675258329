/*
 * The host's configuration, from the one list of settings
 * (PN_HOST_OPTIONS, peernet/options.h): defaults, the descriptors that the
 * Lua reader and peernet.host.options() walk, and the checks of
 * pn_host_new with one message per setting.
 */
#include <limits.h>
#include <string.h>

#include "core/frame.h"
#include "core/handshake.h"
#include "core/mdns.h"
#include "net.h"

/* The public bounds name the core's: one quantity each. */
_Static_assert(PN_MDNS_INSTANCE_MAX == PN_MDNS_LABEL_MAX, "an instance name is one label");
_Static_assert(PN_BROADCAST_MAX < PN_ADDR_MAX, "the broadcast address fits pn_host.broadcast");
_Static_assert(PN_FRAME_HEADER == 4, "max_outbuf's minimum (options.h) counts a 4-byte header");

#define NUM_MS(d) (long long)(d)
#define NUM_U32(d) (long long)(d)
#define NUM_SIZE(d) (long long)(d)
#define NUM_PORT(d) (long long)(d)
#define NUM_FLAG(d) (long long)(d)
#define NUM_NETMON(d) (long long)(d)
#define NUM_TEXT(d) 0
#define TEXT_MS(d) NULL
#define TEXT_U32(d) NULL
#define TEXT_SIZE(d) NULL
#define TEXT_PORT(d) NULL
#define TEXT_FLAG(d) NULL
#define TEXT_NETMON(d) NULL
#define TEXT_TEXT(d) (d)

#define DESCRIBE(field, kind, name, dflt, ldflt, min, max, meaning)                                \
    {name,                                                                                         \
     PN_OPT_##kind,                                                                                \
     offsetof(pn_host_config, field),                                                              \
     NUM_##kind(dflt),                                                                             \
     NUM_##kind(ldflt),                                                                            \
     TEXT_##kind(dflt),                                                                            \
     TEXT_##kind(ldflt),                                                                           \
     (min),                                                                                        \
     (max),                                                                                        \
     meaning},
static const pn_host_option options[] = {PN_HOST_OPTIONS(DESCRIBE)};
#undef DESCRIBE

const pn_host_option *pn_host_options(size_t *n) {
    *n = sizeof options / sizeof options[0];
    return options;
}

#define KIND_NAME(k, unit) #k,
static const char *const kind_names[] = {PN_OPT_KINDS(KIND_NAME)};
#undef KIND_NAME
#define KIND_UNIT(k, unit) unit,
static const char *const kind_units[] = {PN_OPT_KINDS(KIND_UNIT)};
#undef KIND_UNIT

const char *pn_host_option_kind_name(enum pn_opt_kind k) {
    return k < PN_OPT_KIND_COUNT ? kind_names[k] : "?";
}

const char *pn_host_option_unit(enum pn_opt_kind k) {
    return k < PN_OPT_KIND_COUNT ? kind_units[k] : "";
}

long long pn_host_option_type_max(enum pn_opt_kind k) {
    switch (k) {
        case PN_OPT_MS:
        case PN_OPT_U32:
        case PN_OPT_SIZE: /* every front reads sizes as 32 bits */
            return UINT32_MAX;
        case PN_OPT_PORT:
            return UINT16_MAX;
        case PN_OPT_FLAG:
            return 1;
        case PN_OPT_NETMON:
            return 2;
        default:
            return 0;
    }
}

void pn_host_option_set(pn_host_config *c, const pn_host_option *o, long long v, const char *text) {
    char *m = (char *)c + o->offset;
    switch (o->kind) {
        case PN_OPT_MS:
        case PN_OPT_U32:
            *(uint32_t *)(void *)m = (uint32_t)v;
            break;
        case PN_OPT_SIZE:
            *(size_t *)(void *)m = (size_t)v;
            break;
        case PN_OPT_PORT:
            *(uint16_t *)(void *)m = (uint16_t)v;
            break;
        case PN_OPT_FLAG:
        case PN_OPT_NETMON:
            *(int *)(void *)m = (int)v;
            break;
        case PN_OPT_TEXT:
            *(const char **)(void *)m = text;
            break;
        default:
            break;
    }
}

/* The member of o in c, as a number (a text member: its length, -1 for NULL). */
static long long option_get(const pn_host_config *c, const pn_host_option *o) {
    const char *m = (const char *)c + o->offset;
    switch (o->kind) {
        case PN_OPT_MS:
        case PN_OPT_U32:
            return *(const uint32_t *)(const void *)m;
        case PN_OPT_SIZE:
            return (long long)*(const size_t *)(const void *)m;
        case PN_OPT_PORT:
            return *(const uint16_t *)(const void *)m;
        case PN_OPT_FLAG:
        case PN_OPT_NETMON:
            return *(const int *)(const void *)m;
        case PN_OPT_TEXT: {
            const char *t = *(const char *const *)(const void *)m;
            return t ? (long long)strlen(t) : -1;
        }
        default:
            return 0;
    }
}

void pn_host_config_init(pn_host_config *c) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        pn_host_option_set(c, &options[i], options[i].dflt, options[i].text_dflt);
}

int pn_host_config_check(const pn_host_config *c, pn_err *e) {
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const pn_host_option *o = &options[i];
        long long v = option_get(c, o);
        if (o->kind == PN_OPT_TEXT && v < 0) continue; /* NULL: the default */
        if (v >= o->min && v <= o->max) continue;
        const char *unit = pn_host_option_unit(o->kind);
        return pn_err_set(e, PN_EINVAL, "%s: must be %lld..%lld%s%s, got %lld%s", o->name, o->min,
                          o->max, unit[0] ? " " : "", unit, v,
                          o->kind == PN_OPT_TEXT ? " bytes" : "");
    }
    if (c->max_outbuf < (size_t)c->frame_cap + PN_FRAME_HEADER)
        return pn_err_set(
            e, PN_EINVAL, "max_outbuf: must be at least frame_cap + %d (%llu), got %zu",
            PN_FRAME_HEADER, (unsigned long long)c->frame_cap + PN_FRAME_HEADER, c->max_outbuf);
    if (c->backoff_max_ms < c->backoff_min_ms)
        return pn_err_set(e, PN_EINVAL, "backoff_max: must be at least backoff_min (%u ms), got %u",
                          c->backoff_min_ms, c->backoff_max_ms);
    return 0;
}
