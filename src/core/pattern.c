/*
 * The Lua 5.4 pattern matcher of pattern.h, written from the reference
 * manual. Lua's own matcher recurses once per quantifier, capture and
 * optional item; here each of those becomes a frame on a fixed stack, and
 * a failure pops frames until one still has something to try. The order in
 * which alternatives are tried, and so every result, is the manual's:
 * `*`/`+` longest first, `-` shortest first, `?` with the item first.
 */
#define _GNU_SOURCE /* memmem: a linear-time search in glibc */
#include <string.h>

#include "pattern.h"

#define L_ESC '%'
#define SPECIALS "^$*+?.([%-"

enum {
    F_CAPSTART, /* '(' : on failure, forget the capture */
    F_CAPEND,   /* ')' : on failure, reopen capture n */
    F_OPT,      /* '?' matched once: on failure, go on at s without it */
    F_MAX,      /* '*' '+': on failure, give back one more repetition */
    F_MIN       /* '-': on failure, take one more repetition */
};

/* Classes of the C locale, by hand so that no setlocale can change them. */
static int is_upper(int c) {
    return c >= 'A' && c <= 'Z';
}
static int is_lower(int c) {
    return c >= 'a' && c <= 'z';
}
static int is_alpha(int c) {
    return is_upper(c) || is_lower(c);
}
static int is_digit(int c) {
    return c >= '0' && c <= '9';
}
static int is_alnum(int c) {
    return is_alpha(c) || is_digit(c);
}
static int is_graph(int c) {
    return c > ' ' && c < 127;
}
static int to_lower(int c) {
    return is_upper(c) ? c - 'A' + 'a' : c;
}

static int match_class(int c, int cl) {
    int res;
    switch (to_lower(cl)) {
        case 'a':
            res = is_alpha(c);
            break;
        case 'c':
            res = c < ' ' || c == 127;
            break;
        case 'd':
            res = is_digit(c);
            break;
        case 'g':
            res = is_graph(c);
            break;
        case 'l':
            res = is_lower(c);
            break;
        case 'p':
            res = is_graph(c) && !is_alnum(c);
            break;
        case 's':
            res = c == ' ' || (c >= '\t' && c <= '\r');
            break;
        case 'u':
            res = is_upper(c);
            break;
        case 'w':
            res = is_alnum(c);
            break;
        case 'x':
            res = is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
            break;
        case 'z':
            res = c == 0;
            break; /* deprecated in the manual, still in 5.4's library */
        default:
            return cl == c;
    }
    return is_upper(cl) ? !res : res;
}

static int too_complex(pn_pattern *m, pn_err *e) {
    return pn_err_set(e, PN_ELIMIT, "pattern too complex: more than %llu steps",
                      (unsigned long long)m->steps_max);
}

static int over(const pn_pattern *m) {
    return m->steps > m->steps_max;
}

/* Where the single-character class at p ends (its quantifier, if any, is
 * there). Negative on a malformed class. */
static ptrdiff_t class_end(pn_pattern *m, size_t p, pn_err *e) {
    const unsigned char *pat = m->pat;
    size_t n = m->patlen, start = p;
    unsigned char c = pat[p++];
    if (c == L_ESC) {
        if (p == n) return pn_err_set(e, PN_EINVAL, "malformed pattern (ends with '%%')");
        return (ptrdiff_t)(p + 1);
    }
    if (c != '[') return (ptrdiff_t)p;
    pn_pattern_set *k = &m->set[start % PN_PATTERN_SETS_MAX];
    if (k->key == start + 1) {
        m->steps++;
        return (ptrdiff_t)k->ep;
    }
    if (p < n && pat[p] == '^') p++;
    /* The first byte of a set is always a member, so "[]]" holds ']'. */
    do {
        if (p == n) return pn_err_set(e, PN_EINVAL, "malformed pattern (missing ']')");
        if (pat[p++] == L_ESC && p < n) p++;
    } while (p == n || pat[p] != ']');
    m->steps += p - start;
    if (k->key == 0) { /* a free slot: remember where this set ends */
        k->key = start + 1;
        k->ep = p + 1;
        k->uses = 0;
        k->compiled = 0;
    }
    return (ptrdiff_t)(p + 1);
}

/* Is c in the set that opens at p ('[') and closes at ec (']')? */
static int match_set(pn_pattern *m, int c, size_t p, size_t ec) {
    const unsigned char *pat = m->pat;
    int yes = 1;
    m->steps += ec - p;
    if (pat[p + 1] == '^') {
        yes = 0;
        p++;
    }
    while (++p < ec) {
        if (pat[p] == L_ESC) {
            p++;
            if (match_class(c, pat[p])) return yes;
        } else if (pat[p + 1] == '-' && p + 2 < ec) {
            p += 2;
            if (pat[p - 2] <= c && c <= pat[p]) return yes;
        } else if (pat[p] == c) {
            return yes;
        }
    }
    return !yes;
}

static void set_add(pn_pattern_set *k, int c) {
    k->bits[c >> 3] |= (unsigned char)(1u << (c & 7));
}

/* The map of the set [p, ec]: the bytes some item of it matches (the
 * items of match_set), or the others after a '^'. */
static void set_compile(pn_pattern *m, pn_pattern_set *k, size_t p, size_t ec) {
    const unsigned char *pat = m->pat;
    int neg = pat[p + 1] == '^';
    size_t ops = ec - p;
    if (neg) p++;
    memset(k->bits, 0, sizeof k->bits);
    while (++p < ec) {
        if (pat[p] == L_ESC) {
            p++;
            for (int c = 0; c < 256; c++)
                if (match_class(c, pat[p])) set_add(k, c);
            ops += 256 / 2; /* a cheap test a byte: about half a step */
        } else if (pat[p + 1] == '-' && p + 2 < ec) {
            p += 2;
            for (int c = pat[p - 2]; c <= pat[p]; c++)
                set_add(k, c);
            ops += 256 / 8;
        } else {
            set_add(k, pat[p]);
        }
    }
    if (neg)
        for (size_t i = 0; i < sizeof k->bits; i++)
            k->bits[i] = (unsigned char)~k->bits[i];
    k->compiled = 1;
    m->steps += ops;
}

/* Is c in the set [p, ep)? A map once it has been asked often enough. */
static int set_has(pn_pattern *m, int c, size_t p, size_t ep) {
    pn_pattern_set *k = &m->set[p % PN_PATTERN_SETS_MAX];
    if (k->key != p + 1) return match_set(m, c, p, ep - 1);
    /* Making the map costs at most 65 steps a byte of the set (256 tests
     * for a two-byte class): only when the budget has room for it. */
    if (!k->compiled && ++k->uses >= PN_PATTERN_SET_COMPILE_AFTER && m->steps <= m->steps_max &&
        (ep - p) * 65 <= m->steps_max - m->steps)
        set_compile(m, k, p, ep - 1);
    if (!k->compiled) return match_set(m, c, p, ep - 1);
    m->steps++;
    return (k->bits[c >> 3] >> (c & 7)) & 1;
}

/* Does the class [p, ep) match the subject byte at s? */
static int single(pn_pattern *m, size_t s, size_t p, size_t ep) {
    m->steps++;
    if (s >= m->srclen) return 0;
    int c = m->src[s];
    switch (m->pat[p]) {
        case '.':
            return 1;
        case L_ESC:
            return match_class(c, m->pat[p + 1]);
        case '[':
            return set_has(m, c, p, ep);
        default:
            return m->pat[p] == c;
    }
}

/* A new backtracking point, refused where Lua's recursion would stop. */
static int push(pn_pattern *m, int kind, size_t s, size_t n, size_t p, size_t ep, pn_err *e) {
    if (m->nframes >= PN_PATTERN_DEPTH_MAX - 1)
        return pn_err_set(e, PN_EINVAL, "pattern too complex");
    m->steps++; /* a frame costs about a step to make and a step to undo */
    pn_pattern_frame *f = &m->frame[m->nframes++];
    f->kind = (unsigned char)kind;
    f->s = s;
    f->n = n;
    f->p = p;
    f->ep = ep;
    return 0;
}

/* %bxy at s with x at bp: where the balanced run ends, or SIZE_MAX (also
 * when the budget runs out on the way: the caller checks). */
static size_t balance(pn_pattern *m, size_t s, size_t bp) {
    if (s >= m->srclen || m->src[s] != m->pat[bp]) return SIZE_MAX;
    int open = m->pat[bp], close = m->pat[bp + 1];
    size_t depth = 1;
    while (++s < m->srclen && ++m->steps <= m->steps_max) {
        int c = m->src[s];
        if (c == close) {
            if (--depth == 0) return s + 1;
        } else if (c == open) {
            depth++;
        }
    }
    return SIZE_MAX;
}

/* %1-%9 at s: where the repeated text ends, SIZE_MAX, or an error. */
static int back_ref(pn_pattern *m, size_t s, int digit, size_t *to, pn_err *e) {
    int l = digit - '1';
    if (l < 0 || l >= m->level || m->cap[l].len == PN_PATTERN_CAP_UNFINISHED)
        return pn_err_set(e, PN_EINVAL, "invalid capture index %%%d", l + 1);
    ptrdiff_t len = m->cap[l].len;
    *to = SIZE_MAX;
    /* A position capture has no text: it never matches, as in Lua. */
    if (len < 0 || m->srclen - s < (size_t)len) return 0;
    m->steps += 1 + (size_t)len / 16; /* memcmp: many bytes a step */
    if (memcmp(m->src + m->cap[l].init, m->src + s, (size_t)len) == 0) *to = s + (size_t)len;
    return 0;
}

/* Pops frames after a failure until one has an alternative; 1 with the
 * new (s, p) to go on from, 0 when none is left. */
static int backtrack(pn_pattern *m, size_t *s, size_t *p) {
    while (m->nframes > 0) {
        pn_pattern_frame *f = &m->frame[m->nframes - 1];
        m->steps++;
        switch (f->kind) {
            case F_CAPSTART:
                m->level--;
                break;
            case F_CAPEND:
                m->cap[f->n].len = PN_PATTERN_CAP_UNFINISHED;
                break;
            case F_OPT:
                m->nframes--;
                *s = f->s;
                *p = f->p;
                return 1;
            case F_MAX:
                if (f->n == 0) break;
                f->n--;
                *s = f->s + f->n;
                *p = f->ep + 1;
                return 1;
            case F_MIN:
                if (!single(m, f->s, f->p, f->ep)) break;
                f->s++;
                *s = f->s;
                *p = f->ep + 1;
                return 1;
        }
        m->nframes--;
    }
    return 0;
}

void pn_pattern_init(pn_pattern *m, const void *src, size_t srclen, const void *pat, size_t patlen,
                     uint64_t steps_max) {
    m->src = src;
    m->srclen = srclen;
    m->pat = pat;
    m->patlen = patlen;
    m->steps = 0;
    m->steps_max = steps_max ? steps_max : PN_PATTERN_STEPS_DEFAULT;
    m->level = 0;
    m->nframes = 0;
    for (int i = 0; i < PN_PATTERN_SETS_MAX; i++)
        m->set[i].key = 0;
}

int pn_pattern_match(pn_pattern *m, size_t s, size_t *end, pn_err *e) {
    const unsigned char *pat = m->pat;
    size_t plen = m->patlen, p = 0;
    int rc;
    m->level = 0;
    m->nframes = 0;
    for (;;) {
        if (++m->steps > m->steps_max) return too_complex(m, e);
        if (p == plen) {
            *end = s;
            return 1;
        }
        switch (pat[p]) {
            case '(': {
                if (m->level >= PN_PATTERN_CAPTURES_MAX)
                    return pn_err_set(e, PN_EINVAL, "too many captures");
                int pos = p + 1 < plen && pat[p + 1] == ')';
                m->cap[m->level].init = s;
                m->cap[m->level].len = pos ? PN_PATTERN_CAP_POSITION : PN_PATTERN_CAP_UNFINISHED;
                m->level++;
                if ((rc = push(m, F_CAPSTART, s, 0, p, p, e)) < 0) return rc;
                p += pos ? 2 : 1;
                continue;
            }
            case ')': {
                int l = m->level - 1;
                while (l >= 0 && m->cap[l].len != PN_PATTERN_CAP_UNFINISHED)
                    l--;
                if (l < 0) return pn_err_set(e, PN_EINVAL, "invalid pattern capture");
                m->cap[l].len = (ptrdiff_t)(s - m->cap[l].init);
                if ((rc = push(m, F_CAPEND, s, (size_t)l, p, p, e)) < 0) return rc;
                p++;
                continue;
            }
            case '$':
                if (p + 1 != plen) goto single_item;
                if (s != m->srclen) goto fail;
                *end = s;
                return 1;
            case L_ESC:
                if (p + 1 == plen) goto single_item; /* class_end names the error */
                switch (pat[p + 1]) {
                    case 'b': {
                        if (p + 3 >= plen)
                            return pn_err_set(e, PN_EINVAL,
                                              "malformed pattern (missing arguments to '%%b')");
                        size_t to = balance(m, s, p + 2);
                        if (over(m)) return too_complex(m, e);
                        if (to == SIZE_MAX) goto fail;
                        s = to;
                        p += 4;
                        continue;
                    }
                    case 'f': {
                        p += 2;
                        if (p >= plen || pat[p] != '[')
                            return pn_err_set(e, PN_EINVAL, "missing '[' after '%%f' in pattern");
                        ptrdiff_t ep = class_end(m, p, e);
                        if (ep < 0) return (int)ep;
                        int prev = s == 0 ? 0 : m->src[s - 1];
                        int cur = s < m->srclen ? m->src[s] : 0; /* the end reads as '\0' */
                        if (set_has(m, prev, p, (size_t)ep) || !set_has(m, cur, p, (size_t)ep))
                            goto fail;
                        p = (size_t)ep;
                        continue;
                    }
                    case '0':
                    case '1':
                    case '2':
                    case '3':
                    case '4':
                    case '5':
                    case '6':
                    case '7':
                    case '8':
                    case '9': {
                        size_t to = SIZE_MAX;
                        if ((rc = back_ref(m, s, pat[p + 1], &to, e)) < 0) return rc;
                        if (to == SIZE_MAX) goto fail;
                        s = to;
                        p += 2;
                        continue;
                    }
                    default:
                        goto single_item;
                }
            default:
            single_item : {
                ptrdiff_t end_class = class_end(m, p, e);
                if (end_class < 0) return (int)end_class;
                size_t ep = (size_t)end_class;
                int q = ep < plen ? pat[ep] : 0;
                if (!single(m, s, p, ep)) {
                    if (q == '*' || q == '?' || q == '-') {
                        p = ep + 1; /* zero repetitions are fine */
                        continue;
                    }
                    goto fail;
                }
                switch (q) {
                    case '?':
                        if ((rc = push(m, F_OPT, s, 0, ep + 1, ep, e)) < 0) return rc;
                        s++;
                        p = ep + 1;
                        continue;
                    case '+':
                    case '*': {
                        size_t base = q == '+' ? s + 1 : s, i = 0;
                        while (single(m, base + i, p, ep)) {
                            i++;
                            if (over(m)) return too_complex(m, e);
                        }
                        if ((rc = push(m, F_MAX, base, i, p, ep, e)) < 0) return rc;
                        s = base + i;
                        p = ep + 1;
                        continue;
                    }
                    case '-':
                        if ((rc = push(m, F_MIN, s, 0, p, ep, e)) < 0) return rc;
                        p = ep + 1;
                        continue;
                    default:
                        s++;
                        p = ep;
                        continue;
                }
            }
        }
    fail:
        if (!backtrack(m, &s, &p)) return 0;
    }
}

int pn_pattern_find(pn_pattern *m, size_t init, int anchor, size_t *start, size_t *end, pn_err *e) {
    size_t s = init;
    do {
        int rc = pn_pattern_match(m, s, end, e);
        if (rc != 0) {
            *start = s;
            return rc;
        }
    } while (s++ < m->srclen && !anchor);
    return 0;
}

int pn_pattern_ncaptures(const pn_pattern *m, int whole) {
    return m->level == 0 && whole ? 1 : m->level;
}

int pn_pattern_capture(const pn_pattern *m, int i, size_t start, size_t end, pn_pattern_cap *out,
                       pn_err *e) {
    if (i >= m->level) {
        if (i != 0) return pn_err_set(e, PN_EINVAL, "invalid capture index %%%d", i + 1);
        out->init = start;
        out->len = (ptrdiff_t)(end - start);
        return 0;
    }
    const pn_pattern_cap *c = &m->cap[i];
    if (c->len == PN_PATTERN_CAP_UNFINISHED) return pn_err_set(e, PN_EINVAL, "unfinished capture");
    if (c->len == PN_PATTERN_CAP_POSITION) {
        out->init = c->init + 1;
        out->len = PN_PATTERN_CAP_POSITION;
        return 0;
    }
    *out = *c;
    return 0;
}

int pn_pattern_is_plain(const void *pat, size_t patlen) {
    const unsigned char *p = pat;
    for (size_t i = 0; i < patlen; i++)
        if (p[i] != 0 && strchr(SPECIALS, p[i])) return 0;
    return 1;
}

int pn_pattern_find_plain(const void *hay, size_t haylen, size_t init, const void *needle,
                          size_t needlelen, size_t *start, size_t *end) {
    if (init > haylen) return 0;
    const unsigned char *h = hay;
    const unsigned char *at =
        needlelen == 0 ? h + init : memmem(h + init, haylen - init, needle, needlelen);
    if (!at) return 0;
    *start = (size_t)(at - h);
    *end = *start + needlelen;
    return 1;
}
