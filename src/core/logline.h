/*
 * Log lines that carry what others sent: escaping and rate limiting.
 *
 * Escaping: a call name, a reason or an address from the wire may hold a
 * newline or a terminal escape; written raw it would forge log lines.
 * pn_logline_escape writes bytes below 0x20, 0x7f and the backslash as
 * \n \r \t \\ or \xHH, so one event is always one line.
 *
 * Rate limiting: a stranger can cause a line per connection (tens of
 * thousands a second). Lines are grouped by a key the caller picks (the
 * kind of event and its source): the first line of a key in a window is
 * written, the others are counted, and when the window ends one line
 * repeats the last of them with the count. The table is fixed-size
 * (PN_LOGLINE_SLOTS); keys beyond it share one overflow slot. Time comes
 * from the caller (milliseconds), so this file has no clock.
 */
#ifndef PN_LOGLINE_H
#define PN_LOGLINE_H

#include <stddef.h>
#include <stdint.h>

#define PN_LOGLINE_SLOTS 64   /* distinct keys counted at once */
#define PN_LOGLINE_KEY_MAX 96 /* a key is cut to this many bytes: a kind and a 64-hex key fit */
#define PN_LOGLINE_MSG_MAX 512

/* Escapes in into out (cap > 0, always NUL-terminated; cut when full).
 * Returns the length written. */
size_t pn_logline_escape(char *out, size_t cap, const char *in);

typedef struct pn_logline_slot {
    char key[PN_LOGLINE_KEY_MAX];
    uint64_t start; /* when its window began */
    uint64_t count; /* lines held back in this window */
    int level, used;
    char last[PN_LOGLINE_MSG_MAX]; /* the last line held back */
} pn_logline_slot;

typedef struct pn_logline_limit {
    uint32_t window_ms;
    pn_logline_slot slots[PN_LOGLINE_SLOTS];
    pn_logline_slot other; /* keys that found the table full */
    uint64_t next_end;     /* the earliest end of a used slot's window; 0: none used */
} pn_logline_limit;

void pn_logline_limit_init(pn_logline_limit *l, uint32_t window_ms);
/* 1: write msg now (the first of its key in this window); 0: it was
 * counted and kept, unescaped, for the summary (which escapes it). */
int pn_logline_limit_hit(pn_logline_limit *l, const char *key, int level, const char *msg,
                         uint64_t now);
/* Writes a summary line through emit for every window that has ended with
 * lines held back, and frees the slots of ended windows. Returns the time
 * of the next window end (0: nothing is counted any more). */
uint64_t pn_logline_limit_flush(pn_logline_limit *l, uint64_t now,
                                void (*emit)(void *ud, int level, const char *msg), void *ud);

/* One line a remote party can cause: escapes raw, sums up ended windows
 * first (so a summary precedes the line it follows), then writes the line
 * through emit when it is the first of its key in this window. Returns 1
 * when written, 0 when counted for the summary. */
int pn_logline_limit_write(pn_logline_limit *l, uint64_t now, const char *key, int level,
                           const char *raw, void (*emit)(void *ud, int level, const char *msg),
                           void *ud);

#endif
