/*
 * The host's log lines: every one escaped, and the ones a stranger can
 * cause at will rate-limited per kind and source (core/logline.h), with a
 * timer that writes the summaries when a window ends.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

/* Every line is escaped: names, reasons and addresses in it may come from
 * the wire, and one event must stay one line. */
static void log_escaped(pn_host *h, int level, const char *raw) {
    char msg[PN_LOGLINE_MSG_MAX + 128];
    pn_logline_escape(msg, sizeof msg, raw);
    h->cfg.log(h->cfg.log_ud, level, msg);
}

void pn_log(pn_host *h, int level, const char *fmt, ...) {
    if (!h->cfg.log) return;
    char msg[PN_LOGLINE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_escaped(h, level, msg);
}

/* Lines and summaries from the limiter, already escaped. */
static void emit_line(void *ud, int level, const char *msg) {
    pn_host *h = ud;
    if (h->cfg.log) h->cfg.log(h->cfg.log_ud, level, msg);
}

static void on_log_timer(uv_timer_t *t) {
    pn_host *h = t->data;
    uint64_t now = uv_now(h->loop);
    uint64_t next = pn_logline_limit_flush(&h->loglimit, now, emit_line, h);
    if (next && !h->closing) uv_timer_start(&h->log_timer, on_log_timer, next - now, 0);
}

void pn_log_limited(pn_host *h, int level, const char *key, const char *fmt, ...) {
    if (!h->cfg.log) return;
    char raw[PN_LOGLINE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    pn_log_limited_text(h, level, key, raw);
}

void pn_log_limited_text(pn_host *h, int level, const char *key, const char *raw) {
    if (!h->cfg.log) return;
    if (!pn_logline_limit_write(&h->loglimit, uv_now(h->loop), key, level, raw, emit_line, h))
        h->stats.log_suppressed++;
    if (!uv_is_active((uv_handle_t *)&h->log_timer) && !h->closing)
        uv_timer_start(&h->log_timer, on_log_timer, h->cfg.log_window_ms, 0);
}

void pn_log_text_init(pn_log_text *t) {
    t->len = 0;
    t->buf[0] = '\0';
}

void pn_log_text_add(pn_log_text *t, const char *s) {
    size_t n = strnlen(s, sizeof t->buf - 1 - t->len);
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void pn_log_text_u32(pn_log_text *t, uint32_t v) {
    char d[11];
    size_t i = sizeof d;
    d[--i] = '\0';
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    pn_log_text_add(t, d + i);
}

/* Short form of a key for log lines: the first 8 bytes in hex. */
const char *pn_log_key(const uint8_t key[PN_KEY_LEN], char out[17]) {
    sodium_bin2hex(out, 17, key, 8);
    return out;
}

const char *pn_log_limit_key(const char *kind, const uint8_t key[PN_KEY_LEN],
                             char out[PN_LOGLINE_KEY_MAX]) {
    char hex[2 * PN_KEY_LEN + 1];
    sodium_bin2hex(hex, sizeof hex, key, PN_KEY_LEN);
    snprintf(out, PN_LOGLINE_KEY_MAX, "%s %s", kind, hex);
    return out;
}

/* The host is closing: what was held back is summed up now, nobody will
 * be there later. */
void pn_log_flush_all(pn_host *h) {
    pn_logline_limit_flush(&h->loglimit, UINT64_MAX / 2, emit_line, h);
}
