#include "logline.h"

#include <stdio.h>
#include <string.h>

size_t pn_logline_escape(char *out, size_t cap, const char *in) {
    static const char hexd[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
        char esc[4];
        size_t k = 0;
        switch (*s) {
            case '\n':
                esc[k++] = '\\', esc[k++] = 'n';
                break;
            case '\r':
                esc[k++] = '\\', esc[k++] = 'r';
                break;
            case '\t':
                esc[k++] = '\\', esc[k++] = 't';
                break;
            case '\\':
                esc[k++] = '\\', esc[k++] = '\\';
                break;
            default:
                if (*s < 0x20 || *s == 0x7f) {
                    esc[k++] = '\\', esc[k++] = 'x';
                    esc[k++] = hexd[*s >> 4], esc[k++] = hexd[*s & 15];
                } else {
                    esc[k++] = (char)*s;
                }
        }
        if (n + k >= cap) break; /* an escape is never cut in half */
        memcpy(out + n, esc, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}

void pn_logline_limit_init(pn_logline_limit *l, uint32_t window_ms) {
    memset(l, 0, sizeof *l);
    l->window_ms = window_ms ? window_ms : 1;
}

/* Kept raw: it is escaped only if it is the last of its window, when the
 * summary is written (a flood of held-back lines costs a copy each). */
static void slot_keep(pn_logline_slot *s, int level, const char *msg) {
    s->count++;
    s->level = level;
    size_t n = strnlen(msg, sizeof s->last - 1);
    memcpy(s->last, msg, n);
    s->last[n] = '\0';
}

/* A slot's window began at now: the earliest end may be sooner. */
static void window_started(pn_logline_limit *l, uint64_t now) {
    uint64_t end = now + l->window_ms;
    if (!l->next_end || end < l->next_end) l->next_end = end;
}

int pn_logline_limit_hit(pn_logline_limit *l, const char *key, int level, const char *msg,
                         uint64_t now) {
    pn_logline_slot *free_slot = NULL;
    for (int i = 0; i < PN_LOGLINE_SLOTS; i++) {
        pn_logline_slot *s = &l->slots[i];
        if (!s->used) {
            if (!free_slot) free_slot = s;
            continue;
        }
        if (strncmp(s->key, key, sizeof s->key - 1) != 0) continue;
        if (now - s->start < l->window_ms) {
            slot_keep(s, level, msg);
            return 0;
        }
        /* Its window is over: callers flush first, so nothing was held back. */
        s->start = now;
        s->count = 0;
        window_started(l, now);
        return 1;
    }
    if (!free_slot) {
        if (!l->other.used) {
            l->other.used = 1;
            l->other.start = now;
            snprintf(l->other.key, sizeof l->other.key, "%s", "");
            window_started(l, now);
        }
        slot_keep(&l->other, level, msg);
        return 0;
    }
    free_slot->used = 1;
    free_slot->start = now;
    free_slot->count = 0;
    snprintf(free_slot->key, sizeof free_slot->key, "%s", key);
    window_started(l, now);
    return 1;
}

static void window_text(uint32_t ms, char *out, size_t cap) {
    if (ms % 1000 == 0)
        snprintf(out, cap, "%u s", ms / 1000);
    else
        snprintf(out, cap, "%u ms", ms);
}

static uint64_t flush_slot(pn_logline_limit *l, pn_logline_slot *s, int other, uint64_t now,
                           void (*emit)(void *, int, const char *), void *ud) {
    if (!s->used) return 0;
    uint64_t end = s->start + l->window_ms;
    if (now < end) return end;
    if (s->count) {
        char line[PN_LOGLINE_MSG_MAX + 96], w[24], last[PN_LOGLINE_MSG_MAX];
        window_text(l->window_ms, w, sizeof w);
        pn_logline_escape(last, sizeof last, s->last);
        if (other)
            snprintf(line, sizeof line, "%llu log lines held back in the last %s, the last: %s",
                     (unsigned long long)s->count, w, last);
        else
            snprintf(line, sizeof line, "%s (%llu more in the last %s)", last,
                     (unsigned long long)s->count, w);
        emit(ud, s->level, line);
    }
    s->used = 0;
    s->count = 0;
    return 0;
}

uint64_t pn_logline_limit_flush(pn_logline_limit *l, uint64_t now,
                                void (*emit)(void *ud, int level, const char *msg), void *ud) {
    /* Once per line a peer can cause: no window ends before next_end. */
    if (!l->next_end || now < l->next_end) return l->next_end;
    uint64_t next = 0;
    for (int i = 0; i <= PN_LOGLINE_SLOTS; i++) {
        int other = i == PN_LOGLINE_SLOTS;
        uint64_t due = flush_slot(l, other ? &l->other : &l->slots[i], other, now, emit, ud);
        if (due && (!next || due < next)) next = due;
    }
    l->next_end = next;
    return next;
}

int pn_logline_limit_write(pn_logline_limit *l, uint64_t now, const char *key, int level,
                           const char *raw, void (*emit)(void *ud, int level, const char *msg),
                           void *ud) {
    pn_logline_limit_flush(l, now, emit, ud);
    if (!pn_logline_limit_hit(l, key, level, raw, now)) return 0;
    char msg[PN_LOGLINE_MSG_MAX];
    pn_logline_escape(msg, sizeof msg, raw);
    emit(ud, level, msg);
    return 1;
}
