/*
 * Lua 5.4 patterns (reference manual §6.4.1) over byte strings, with every
 * step of the search counted against a budget.
 *
 * Why our own: Lua's matcher runs in C, where the sandbox's instruction
 * hook cannot stop it, and a few `.-` over a long subject backtrack for
 * hours. This one gives the same results and the same errors for every
 * pattern, but stops with "pattern too complex: more than N steps" once
 * the budget is spent. It is iterative: backtracking points live in a
 * fixed array in pn_pattern (no recursion, no allocation), and their
 * number is bounded like Lua's own recursion ("pattern too complex" past
 * PN_PATTERN_DEPTH_MAX nested matches), so deep patterns fail where Lua's
 * fail.
 *
 * A step is about one byte of subject or pattern looked at: each match
 * attempt, each single-character test (a set costs its length), each byte
 * a %b scans or a back-reference compares. Errors for a malformed pattern
 * come when the search reaches the bad part, as in Lua: ("b"):find("a%")
 * is nil, ("a"):find("a%") raises.
 *
 * Character classes are those of the C locale (the host never calls
 * setlocale), so results do not depend on the environment.
 */
#ifndef PN_PATTERN_H
#define PN_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"

#define PN_PATTERN_CAPTURES_MAX 32 /* captures in one pattern, as Lua's LUA_MAXCAPTURES */
#define PN_PATTERN_DEPTH_MAX 200   /* nested matches, as Lua's MAXCCALLS */
/* Steps of one call of string.find/match/gsub or of one gmatch iteration in
 * a sandbox: about 25 ms on the machine this was sized on (docs/scripts.md). */
#define PN_PATTERN_STEPS_DEFAULT 10000000u

/* Sets [...] tested often in one search become 256-bit maps, so a long
 * run of [%w_] costs a step a byte, not the set's length. */
#define PN_PATTERN_SETS_MAX 16         /* sets of one pattern that may become maps */
#define PN_PATTERN_SET_COMPILE_AFTER 8 /* tests of a set before it becomes one */

#define PN_PATTERN_CAP_UNFINISHED (-1) /* capture open: '(' seen, ')' not yet */
#define PN_PATTERN_CAP_POSITION (-2)   /* a position capture `()` */

typedef struct pn_pattern_cap {
    size_t init;   /* offset in the subject */
    ptrdiff_t len; /* bytes, or PN_PATTERN_CAP_UNFINISHED / _POSITION */
} pn_pattern_cap;

/* A backtracking point: what to try when what follows it fails. */
typedef struct pn_pattern_frame {
    unsigned char kind;
    size_t s;     /* subject offset the point resumes from */
    size_t n;     /* repetitions left to give back (`*`, `+`); capture index (`)`) */
    size_t p, ep; /* the pattern item and its end (where its quantifier is) */
} pn_pattern_frame;

typedef struct pn_pattern_set {
    size_t key;             /* offset of its '[' plus 1; 0: the slot is free */
    size_t ep;              /* where it ends (after its ']') */
    uint32_t uses;          /* tests so far, until it is a map */
    unsigned char compiled; /* bits is the set */
    unsigned char bits[32];
} pn_pattern_set;

/* Caller-owned; no field points into itself, so it may be copied. Read
 * `level` and `cap` after a match; `steps` is what the search cost so far
 * (a caller may set it back to 0 to give a new call a new budget). */
typedef struct pn_pattern {
    const unsigned char *src, *pat;
    size_t srclen, patlen;
    uint64_t steps, steps_max;
    int level;   /* captures started */
    int nframes; /* backtracking points in use */
    pn_pattern_cap cap[PN_PATTERN_CAPTURES_MAX];
    pn_pattern_frame frame[PN_PATTERN_DEPTH_MAX - 1]; /* the first match is not a frame */
    pn_pattern_set set[PN_PATTERN_SETS_MAX];          /* by offset modulo the size; never evicted */
} pn_pattern;

/* Prepares m for subject src and pattern pat (after any leading '^' the
 * caller treats as an anchor). steps starts at 0; steps_max 0 means
 * PN_PATTERN_STEPS_DEFAULT. Both buffers must outlive m's use. */
void pn_pattern_init(pn_pattern *m, const void *src, size_t srclen, const void *pat, size_t patlen,
                     uint64_t steps_max);

/* Does the pattern match at subject offset at (0..srclen)? 1: yes, *end is
 * where the match ends and m->level/m->cap hold the captures; 0: no;
 * negative: the pattern is malformed or too complex (PN_EINVAL, with Lua's
 * message) or the step budget ran out (PN_ELIMIT). Steps add up across
 * calls until m->steps is reset. */
int pn_pattern_match(pn_pattern *m, size_t at, size_t *end, pn_err *e);

/* Lua's search loop: tries offsets init, init+1, ... srclen (only init when
 * anchored); 1 with *start and *end of the first match, 0, or an error as
 * pn_pattern_match. */
int pn_pattern_find(pn_pattern *m, size_t init, int anchor, size_t *start, size_t *end, pn_err *e);

/* Values a match produces, as Lua counts them: its captures, or the whole
 * match when the pattern has none (whole = 1) or nothing (whole = 0, as
 * string.find, which returns the positions instead). */
int pn_pattern_ncaptures(const pn_pattern *m, int whole);

/* Capture i (0-based) of the match [start, end): its bytes in *out
 * (out->len >= 0) or a position (out->len == PN_PATTERN_CAP_POSITION,
 * out->init the 1-based position). Index 0 with no captures is the whole
 * match. PN_EINVAL: "invalid capture index %N", "unfinished capture". */
int pn_pattern_capture(const pn_pattern *m, int i, size_t start, size_t end, pn_pattern_cap *out,
                       pn_err *e);

/* Does pat hold none of Lua's special characters (^$*+?.([%-)? Then
 * string.find may search it as plain bytes. */
int pn_pattern_is_plain(const void *pat, size_t patlen);

/* First occurrence of needle in hay at or after offset init, in linear
 * time; 1 with *start and *end, or 0. */
int pn_pattern_find_plain(const void *hay, size_t haylen, size_t init, const void *needle,
                          size_t needlelen, size_t *start, size_t *end);

#endif
