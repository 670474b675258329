/*
 * The runtime's log: one event per line (a script's message may hold
 * newlines), to the caller's log function or stderr, and lines a peer can
 * cause at will limited per window (core/logline.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static void rt_emit(void *ud, int level, const char *line) {
    pn_rt *rt = ud;
    if (rt->o.log) {
        rt->o.log(rt->o.log_ud, level, line);
    } else if (level >= PN_LOG_WARN) {
        fprintf(stderr, "peernet [%s] %s\n", level == PN_LOG_WARN ? "warn" : "error", line);
    }
}

void pn_rt_log(pn_rt *rt, int level, const char *fmt, ...) {
    char raw[PN_RT_LOG_MAX];
    char line[PN_RT_LOG_MAX * 4 + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    pn_logline_escape(line, sizeof line, raw);
    rt_emit(rt, level, line);
}

static void on_log_timer(uv_timer_t *tm) {
    pn_rt *rt = tm->data;
    uint64_t now = uv_now(rt->loop);
    uint64_t next = pn_logline_limit_flush(&rt->loglimit, now, rt_emit, rt);
    if (next && !rt->closed) uv_timer_start(&rt->log_timer, on_log_timer, next - now, 0);
}

void pn_rt_log_limited(pn_rt *rt, int level, const char *key, const char *fmt, ...) {
    char raw[PN_LOGLINE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    pn_logline_limit_write(&rt->loglimit, uv_now(rt->loop), key, level, raw, rt_emit, rt);
    if (!uv_is_active((uv_handle_t *)&rt->log_timer) && !rt->closed)
        uv_timer_start(&rt->log_timer, on_log_timer, rt->loglimit.window_ms, 0);
}

void pn_rt_log_flush(pn_rt *rt) {
    pn_logline_limit_flush(&rt->loglimit, UINT64_MAX / 2, rt_emit, rt);
}
