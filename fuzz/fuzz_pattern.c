/*
 * Fuzz target: a Lua pattern and a subject from the input, run through the
 * search loop as string.find and string.gmatch run it. Checks more than "no
 * crash": the step count never runs past the budget by more than one
 * item's worth, a match lies inside the subject with its captures, errors
 * carry a message, and a plain search agrees with a naive one.
 *
 * Input: byte 0 picks the mode (bit 0: anchored, bits 1-3: start offset),
 * byte 1 is the pattern's length (at most what remains), then the pattern,
 * then the subject.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small, so that runaway patterns hit the bound in microseconds. */
#define FUZZ_STEPS 20000u
#define FUZZ_MATCHES_MAX 64 /* gmatch iterations per input */

static void check(int ok) {
    if (!ok) abort(); /* a fuzz harness may abort: that is how findings surface */
}

static void check_steps(const pn_pattern *m) {
    /* Within one step of the search, a few set scans (at most the
     * pattern's length each) and a back-reference's compare are counted
     * before the budget is looked at; a set becomes a map only if the
     * budget has room for it. */
    check(m->steps <= m->steps_max + 4 * m->patlen + m->srclen / 16 + 8);
}

static void check_match(const pn_pattern *m, size_t start, size_t end) {
    check(start <= end && end <= m->srclen);
    check(m->level >= 0 && m->level <= PN_PATTERN_CAPTURES_MAX);
    int n = pn_pattern_ncaptures(m, 1);
    check(n >= 1 && n <= PN_PATTERN_CAPTURES_MAX);
    for (int i = 0; i < n; i++) {
        pn_pattern_cap c;
        pn_err e;
        if (pn_pattern_capture(m, i, start, end, &c, &e) < 0) {
            check(e.msg[0] != '\0');
            continue;
        }
        if (c.len == PN_PATTERN_CAP_POSITION)
            check(c.init >= 1 && c.init <= m->srclen + 1);
        else
            check(c.len >= 0 && c.init <= m->srclen && (size_t)c.len <= m->srclen - c.init);
    }
}

static void check_plain(const uint8_t *s, size_t sl, const uint8_t *p, size_t pl, size_t init) {
    size_t start, end, want = SIZE_MAX;
    for (size_t i = init; pl <= sl && i <= sl - pl; i++) {
        if (memcmp(s + i, p, pl) == 0) {
            want = i;
            break;
        }
    }
    int found = pn_pattern_find_plain(s, sl, init, p, pl, &start, &end);
    check(found == (want != SIZE_MAX));
    if (found) check(start == want && end == want + pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int anchor = data[0] & 1;
    size_t init = (data[0] >> 1) & 7;
    size_t pl = data[1] < size - 2 ? data[1] : size - 2;
    const uint8_t *pat = data + 2, *src = pat + pl;
    size_t sl = size - 2 - pl;
    pn_pattern m;
    pn_err e;
    size_t start, end;

    if (init <= sl) check_plain(src, sl, pat, pl, init);

    /* string.find / string.match */
    pn_pattern_init(&m, src, sl, pat, pl, FUZZ_STEPS);
    int rc = init <= sl ? pn_pattern_find(&m, init, anchor, &start, &end, &e) : 0;
    check_steps(&m);
    if (rc < 0) check(e.msg[0] != '\0' && (rc == PN_EINVAL || rc == PN_ELIMIT));
    if (rc == 1) check_match(&m, start, end);

    /* string.gmatch: every offset, skipping an empty match where the last ended */
    pn_pattern_init(&m, src, sl, pat, pl, FUZZ_STEPS);
    size_t last = SIZE_MAX;
    int found = 0;
    for (size_t at = 0; at <= sl && found < FUZZ_MATCHES_MAX;) {
        rc = pn_pattern_match(&m, at, &end, &e);
        check_steps(&m);
        if (rc < 0) {
            check(e.msg[0] != '\0');
            break;
        }
        if (rc == 1 && end != last) {
            check_match(&m, at, end);
            found++;
            at = last = end;
        } else {
            at++;
        }
    }
    return 0;
}
