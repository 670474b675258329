#include "etf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ETF_GROW_MIN 256u

/* ---- small helpers ---------------------------------------------------- */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const uint8_t *p) {
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF), the
 * rule Erlang applies to atom names. Decodes one code point at s[*i]. */
static int utf8_next(const uint8_t *s, size_t len, size_t *i, uint32_t *cp) {
    size_t k = *i;
    uint8_t c = s[k];
    uint32_t v, min;
    int more;
    if (c < 0x80) {
        *cp = c;
        *i = k + 1;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        v = c & 0x1F, more = 1, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        v = c & 0x0F, more = 2, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        v = c & 0x07, more = 3, min = 0x10000;
    } else {
        return 0;
    }
    if (len - k - 1 < (size_t)more) return 0;
    for (int j = 1; j <= more; j++) {
        uint8_t cc = s[k + (size_t)j];
        if ((cc & 0xC0) != 0x80) return 0;
        v = v << 6 | (cc & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    *i = k + 1 + (size_t)more;
    return 1;
}

int pn_etf_atom_name_ok(const char *s, size_t len) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0, chars = 0;
    uint32_t cp;
    if (len > PN_ETF_ATOM_MAX_UTF8) return 0;
    /* ASCII first, a byte a character: every name the envelopes carry
     * ("call", "reply", "ok", most handles) is, once per message. */
    while (i < len && u[i] < 0x80)
        i++;
    chars = i;
    if (chars > PN_ETF_ATOM_MAX_CHARS) return 0;
    while (i < len) {
        if (!utf8_next(u, len, &i, &cp)) return 0;
        if (++chars > PN_ETF_ATOM_MAX_CHARS) return 0;
    }
    return 1;
}

size_t pn_etf_atom_utf8(const pn_etf_item *it, char *out) {
    if (!it->latin1) {
        memcpy(out, it->ptr, it->len);
        return it->len;
    }
    size_t n = 0;
    for (size_t i = 0; i < it->len; i++) {
        uint8_t c = it->ptr[i];
        if (c < 0x80) {
            out[n++] = (char)c;
        } else {
            out[n++] = (char)(0xC0 | c >> 6);
            out[n++] = (char)(0x80 | (c & 0x3F));
        }
    }
    return n;
}

int pn_etf_atom_is(const pn_etf_item *it, const char *name) {
    if (it->type != PN_ETF_ATOM) return 0;
    size_t n = 0;
    int ascii = 1;
    for (; name[n]; n++)
        ascii &= (unsigned char)name[n] < 0x80;
    /* An ASCII name is the same bytes in both encodings, and no byte of
     * 0x80 or more equals one of it: compared in place (the envelope's
     * tag atom, per message). */
    if (ascii) return it->len == n && memcmp(it->ptr, name, n) == 0;
    char buf[PN_ETF_ATOM_MAX_UTF8];
    size_t m = pn_etf_atom_utf8(it, buf);
    return m == n && memcmp(buf, name, n) == 0;
}

/* ---- reader ----------------------------------------------------------- */

void pn_etf_reader_init(pn_etf_reader *r, const uint8_t *p, size_t len) {
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->pending = 1; /* the term itself */
    r->listmask = 0;
    r->depth = 0;
    r->done = 0;
    r->failed = 0;
}

#define READER_FAIL(r, e, ...) ((r)->failed = 1, pn_err_set((e), PN_EINVAL, __VA_ARGS__))

static size_t remaining(const pn_etf_reader *r) {
    return r->len - r->pos;
}

static int truncated(pn_etf_reader *r, pn_err *e) {
    return READER_FAIL(r, e, "etf: truncated term (input ends at byte %zu)", r->len);
}

/* Pops the innermost container, whose children are all read; a list must
 * then end in [] (an improper tail is refused, as PROTOCOL.md allows). */
static int close_one(pn_etf_reader *r, pn_err *e) {
    unsigned d = r->depth - 1;
    if (r->listmask >> d & 1) {
        if (r->pos >= r->len) return truncated(r, e);
        if (r->p[r->pos] != PN_ETF_TAG_NIL)
            return READER_FAIL(r, e,
                               "etf: improper list at byte %zu (tail is not []); only proper "
                               "lists are accepted",
                               r->pos);
        r->pos++;
        r->pending--;
        r->listmask &= ~((uint64_t)1 << d);
    }
    r->depth = d;
    return 0;
}

static int settle(pn_etf_reader *r, pn_err *e) {
    while (r->depth > 0 && r->left[r->depth - 1] == 0) {
        int rc = close_one(r, e);
        if (rc < 0) return rc;
    }
    return 0;
}

static int open_container(pn_etf_reader *r, uint64_t children, int is_list, size_t at, pn_err *e) {
    if (children == 0) {
        if (!is_list) return 0;
        /* LIST_EXT of length 0: still has a tail to check. */
        if (r->pos >= r->len) return truncated(r, e);
        if (r->p[r->pos] != PN_ETF_TAG_NIL)
            return READER_FAIL(r, e, "etf: improper list at byte %zu (tail is not [])", r->pos);
        r->pos++;
        return 0;
    }
    if (r->depth == PN_ETF_MAX_DEPTH)
        return READER_FAIL(r, e, "etf: term nested deeper than %d levels at byte %zu",
                           PN_ETF_MAX_DEPTH, at);
    /* Every child takes at least one byte: a count the rest of the input
     * cannot hold is refused here, before anyone allocates for it. */
    uint64_t owed = r->pending + children + (is_list ? 1 : 0);
    if (owed > remaining(r))
        return READER_FAIL(r, e,
                           "etf: count %llu at byte %zu is more than the remaining %zu bytes "
                           "can hold",
                           (unsigned long long)children, at, remaining(r));
    r->pending = owed;
    r->left[r->depth] = children;
    if (is_list) r->listmask |= (uint64_t)1 << r->depth;
    r->depth++;
    return 0;
}

static const char *unsupported_tag_name(uint8_t tag) {
    switch (tag) {
        case 68:
            return "distribution header";
        case 77:
            return "bit binary";
        case 80:
            return "compressed term";
        case 82:
            return "atom cache reference";
        case 88:
        case 103:
            return "pid";
        case 89:
        case 102:
        case 120:
            return "port";
        case 90:
        case 101:
        case 114:
            return "reference";
        case 99:
            return "old float (FLOAT_EXT)";
        case 112:
        case 117:
            return "fun";
        case 113:
            return "external fun";
        case 115:
            return "SMALL_ATOM (Latin-1)";
        case 121:
            return "local (LOCAL_EXT)";
        case PN_ETF_VERSION:
            return "nested version byte";
        default:
            return NULL;
    }
}

#define NEED(n)                                                                                    \
    do {                                                                                           \
        if (remaining(r) < (size_t)(n)) return truncated(r, e);                                    \
    } while (0)

int pn_etf_next(pn_etf_reader *r, pn_etf_item *it, pn_err *e) {
    if (r->failed) return pn_err_set(e, PN_EINVAL, "etf: reader used after an error");
    int rc = settle(r, e);
    if (rc < 0) return rc;
    if (r->depth == 0 && r->done) return 0;
    if (r->pos >= r->len) {
        if (r->len == 0) return READER_FAIL(r, e, "etf: empty term");
        return truncated(r, e);
    }
    size_t at = r->pos;
    uint8_t tag = r->p[r->pos++];
    r->pending--;
    if (r->depth > 0)
        r->left[r->depth - 1]--;
    else
        r->done = 1;
    memset(it, 0, sizeof *it);
    const uint8_t *q = r->p + r->pos;
    switch (tag) {
        case PN_ETF_TAG_SMALL_INTEGER:
            NEED(1);
            it->type = PN_ETF_INT;
            it->i = q[0];
            r->pos += 1;
            break;
        case PN_ETF_TAG_INTEGER:
            NEED(4);
            it->type = PN_ETF_INT;
            it->i = (int32_t)be32(q);
            r->pos += 4;
            break;
        case PN_ETF_TAG_SMALL_BIG:
        case PN_ETF_TAG_LARGE_BIG: {
            size_t hl = tag == PN_ETF_TAG_SMALL_BIG ? 1 : 4;
            NEED(hl + 1);
            size_t n = hl == 1 ? q[0] : be32(q);
            unsigned sign = q[hl];
            if (sign > 1)
                return READER_FAIL(r, e, "etf: bad integer sign byte %u at byte %zu", sign, at);
            NEED(hl + 1 + n);
            const uint8_t *m = q + hl + 1;
            size_t mn = pn_bigint_trim(m, n);
            if (mn > PN_ETF_BIG_MAX_BYTES)
                return READER_FAIL(r, e,
                                   "etf: integer of %zu bytes at byte %zu is beyond the limit of "
                                   "%d bytes (%d bits)",
                                   mn, at, PN_ETF_BIG_MAX_BYTES, PN_ETF_BIG_MAX_BYTES * 8);
            r->pos += hl + 1 + n;
            uint64_t mag = 0;
            for (size_t k = mn; k > 0 && mn <= 8; k--)
                mag = mag << 8 | m[k - 1];
            if (mn <= 8 && !sign && mag <= (uint64_t)INT64_MAX) {
                it->type = PN_ETF_INT;
                it->i = (int64_t)mag;
            } else if (mn <= 8 && sign && mag <= (uint64_t)INT64_MAX + 1) {
                it->type = PN_ETF_INT;
                it->i = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
            } else {
                it->type = PN_ETF_BIG;
                it->neg = (int)sign;
                it->mag = mn <= 8 ? mag : 0;
                it->ptr = m;
                it->len = mn;
            }
            break;
        }
        case PN_ETF_TAG_NEW_FLOAT: {
            NEED(8);
            uint64_t bits = (uint64_t)be32(q) << 32 | be32(q + 4);
            if ((bits >> 52 & 0x7FF) == 0x7FF)
                return READER_FAIL(r, e, "etf: float at byte %zu is NaN or infinite", at);
            it->type = PN_ETF_FLOAT;
            memcpy(&it->f, &bits, sizeof it->f);
            r->pos += 8;
            break;
        }
        case PN_ETF_TAG_ATOM:
        case PN_ETF_TAG_ATOM_UTF8:
        case PN_ETF_TAG_SMALL_ATOM_UTF8: {
            size_t hl = tag == PN_ETF_TAG_SMALL_ATOM_UTF8 ? 1 : 2;
            NEED(hl);
            size_t n = hl == 1 ? q[0] : be16(q);
            NEED(hl + n);
            it->type = PN_ETF_ATOM;
            it->ptr = q + hl;
            it->len = n;
            if (tag == PN_ETF_TAG_ATOM) {
                it->latin1 = 1;
                if (n > PN_ETF_ATOM_MAX_CHARS)
                    return READER_FAIL(r, e, "etf: atom at byte %zu is longer than %d characters",
                                       at, PN_ETF_ATOM_MAX_CHARS);
            } else if (!pn_etf_atom_name_ok((const char *)it->ptr, n)) {
                return READER_FAIL(r, e,
                                   "etf: atom at byte %zu is not valid UTF-8 of at most %d "
                                   "characters",
                                   at, PN_ETF_ATOM_MAX_CHARS);
            }
            r->pos += hl + n;
            break;
        }
        case PN_ETF_TAG_SMALL_TUPLE:
        case PN_ETF_TAG_LARGE_TUPLE: {
            size_t hl = tag == PN_ETF_TAG_SMALL_TUPLE ? 1 : 4;
            NEED(hl);
            it->type = PN_ETF_TUPLE;
            it->arity = hl == 1 ? q[0] : be32(q);
            r->pos += hl;
            rc = open_container(r, it->arity, 0, at, e);
            if (rc < 0) return rc;
            break;
        }
        case PN_ETF_TAG_NIL:
            it->type = PN_ETF_NIL;
            break;
        case PN_ETF_TAG_STRING: {
            NEED(2);
            size_t n = be16(q);
            NEED(2 + n);
            it->type = PN_ETF_STRING;
            it->ptr = q + 2;
            it->len = n;
            r->pos += 2 + n;
            break;
        }
        case PN_ETF_TAG_LIST:
            NEED(4);
            it->type = PN_ETF_LIST;
            it->arity = be32(q);
            r->pos += 4;
            rc = open_container(r, it->arity, 1, at, e);
            if (rc < 0) return rc;
            break;
        case PN_ETF_TAG_BINARY: {
            NEED(4);
            size_t n = be32(q);
            NEED(4 + n);
            it->type = PN_ETF_BINARY;
            it->ptr = q + 4;
            it->len = n;
            r->pos += 4 + n;
            break;
        }
        case PN_ETF_TAG_MAP:
            NEED(4);
            it->type = PN_ETF_MAP;
            it->arity = be32(q);
            r->pos += 4;
            rc = open_container(r, (uint64_t)it->arity * 2, 0, at, e);
            if (rc < 0) return rc;
            break;
        default: {
            const char *what = unsupported_tag_name(tag);
            if (what)
                return READER_FAIL(r, e, "etf: %s (tag %u) at byte %zu is not accepted", what, tag,
                                   at);
            return READER_FAIL(r, e, "etf: unknown tag %u at byte %zu", tag, at);
        }
    }
    if (r->pending > remaining(r)) return truncated(r, e);
    return 1;
}

/* Reads until the container opened at depth d (if any) is closed. */
static int skip_below(pn_etf_reader *r, unsigned d, pn_err *e) {
    pn_etf_item it;
    while (r->depth > d) {
        int rc = r->left[r->depth - 1] == 0 ? close_one(r, e) : pn_etf_next(r, &it, e);
        if (rc < 0) return rc;
    }
    return 0;
}

int pn_etf_skip(pn_etf_reader *r, const uint8_t **start, size_t *len, pn_err *e) {
    if (r->failed) return pn_err_set(e, PN_EINVAL, "etf: reader used after an error");
    int rc = settle(r, e);
    if (rc < 0) return rc;
    if (r->depth == 0 && r->done) return pn_err_set(e, PN_EINVAL, "etf: no sub-term left to skip");
    size_t s = r->pos;
    unsigned d = r->depth;
    pn_etf_item it;
    rc = pn_etf_next(r, &it, e);
    if (rc < 0) return rc;
    rc = skip_below(r, d, e);
    if (rc < 0) return rc;
    *start = r->p + s;
    *len = r->pos - s;
    return 0;
}

/* Steps over the atom a pid, port or reference names its node with (the
 * only place where a term sits inside fixed fields, so it is read here
 * rather than counted as a child). */
static int foreign_atom(const uint8_t *p, size_t len, size_t *pos, pn_err *e) {
    size_t at = *pos;
    if (at >= len)
        return pn_err_set(e, PN_EINVAL, "etf: truncated term (input ends at byte %zu)", len);
    uint8_t tag = p[at];
    size_t hl = tag == PN_ETF_TAG_SMALL_ATOM_UTF8 || tag == 115 ? 1 : 2;
    if (tag != PN_ETF_TAG_ATOM && tag != PN_ETF_TAG_ATOM_UTF8 && hl != 1)
        return pn_err_set(e, PN_EINVAL, "etf: node name at byte %zu is not an atom", at);
    if (len - at - 1 < hl)
        return pn_err_set(e, PN_EINVAL, "etf: truncated term (input ends at byte %zu)", len);
    size_t n = hl == 1 ? p[at + 1] : be16(p + at + 1);
    if (len - at - 1 - hl < n)
        return pn_err_set(e, PN_EINVAL, "etf: truncated term (input ends at byte %zu)", len);
    *pos = at + 1 + hl + n;
    return 0;
}

/*
 * The length of the one well-formed term at p, in the full external format
 * minus what only the distribution protocol uses (atom cache references,
 * distribution headers) and what cannot be measured without inflating it
 * (compressed terms). One counter of terms still owed replaces a stack:
 * a container adds its children to it, so nesting costs nothing and every
 * count is checked against the bytes left (each term takes one at least).
 */
static int foreign_len(const uint8_t *p, size_t len, size_t *out, pn_err *e) {
    size_t pos = 0;
    uint64_t owed = 1;
    while (owed > 0) {
        if (pos >= len)
            return pn_err_set(e, PN_EINVAL, "etf: truncated term (input ends at byte %zu)", len);
        size_t at = pos, left = len - pos - 1, fixed = 0, hl = 0, n = 0;
        uint64_t children = 0;
        uint8_t tag = p[pos++];
        owed--;
        switch (tag) {
            case PN_ETF_TAG_NIL:
                break;
            case PN_ETF_TAG_SMALL_INTEGER:
                fixed = 1;
                break;
            case PN_ETF_TAG_INTEGER:
                fixed = 4;
                break;
            case PN_ETF_TAG_NEW_FLOAT:
                fixed = 8;
                break;
            case 99: /* FLOAT_EXT: 31 bytes of text */
                fixed = 31;
                break;
            case PN_ETF_TAG_SMALL_ATOM_UTF8:
            case 115: /* SMALL_ATOM_EXT */
                hl = 1;
                break;
            case PN_ETF_TAG_ATOM:
            case PN_ETF_TAG_ATOM_UTF8:
            case PN_ETF_TAG_STRING:
                hl = 2;
                break;
            case PN_ETF_TAG_BINARY:
                hl = 4;
                break;
            case 77: /* BIT_BINARY_EXT: length, bits in the last byte, bytes */
                hl = 4;
                fixed = 1;
                break;
            case PN_ETF_TAG_SMALL_BIG:
                hl = 1;
                fixed = 1;
                break;
            case PN_ETF_TAG_LARGE_BIG:
                hl = 4;
                fixed = 1;
                break;
            case PN_ETF_TAG_SMALL_TUPLE:
                fixed = 1;
                if (left >= 1) children = p[pos];
                break;
            case PN_ETF_TAG_LARGE_TUPLE:
            case PN_ETF_TAG_LIST:
            case PN_ETF_TAG_MAP:
                fixed = 4;
                if (left < 4) break;
                children = be32(p + pos);
                if (tag == PN_ETF_TAG_LIST) children += 1; /* the tail, any term */
                if (tag == PN_ETF_TAG_MAP) children *= 2;
                break;
            case 113: /* EXPORT_EXT: module, function, arity */
                children = 3;
                break;
            case 117: /* FUN_EXT: free count, then pid, module, index, uniq, free vars */
                fixed = 4;
                if (left >= 4) children = 4 + (uint64_t)be32(p + pos);
                break;
            case 112: { /* NEW_FUN_EXT: its size field counts every byte but the tag */
                fixed = 4;
                if (left < 4) break;
                size_t size = be32(p + pos);
                if (size < 29) /* size, arity, uniq, index, free count */
                    return pn_err_set(e, PN_EINVAL, "etf: fun at byte %zu has a size of %zu", at,
                                      size);
                fixed = size;
                break;
            }
            case 103: /* PID_EXT, NEW_PID_EXT, PORT_EXT, NEW_PORT_EXT, V4_PORT_EXT, */
            case 88:  /* REFERENCE_EXT: a node atom, then fixed fields */
            case 102:
            case 89:
            case 120:
            case 101: {
                size_t after = tag == 103   ? 9
                               : tag == 88  ? 12
                               : tag == 102 ? 5
                               : tag == 89  ? 8
                               : tag == 120 ? 12
                                            : 5;
                int rc = foreign_atom(p, len, &pos, e);
                if (rc < 0) return rc;
                left = len - pos;
                fixed = after;
                break;
            }
            case 114:  /* NEW_REFERENCE_EXT, NEWER_REFERENCE_EXT: */
            case 90: { /* id count, node atom, creation, ids */
                fixed = 2;
                if (left < 2) break;
                size_t ids = be16(p + pos);
                pos += 2;
                int rc = foreign_atom(p, len, &pos, e);
                if (rc < 0) return rc;
                left = len - pos;
                fixed = (tag == 114 ? 1 : 4) + 4 * ids;
                break;
            }
            default: {
                const char *what = unsupported_tag_name(tag);
                if (what)
                    return pn_err_set(e, PN_EINVAL, "etf: %s (tag %u) at byte %zu is not accepted",
                                      what, tag, at);
                return pn_err_set(e, PN_EINVAL, "etf: unknown tag %u at byte %zu", tag, at);
            }
        }
        /* A length field (hl bytes) counts bytes that follow the fixed part. */
        if (left < hl + fixed)
            return pn_err_set(e, PN_EINVAL, "etf: truncated term (input ends at byte %zu)", len);
        if (hl == 1)
            n = p[pos];
        else if (hl == 2)
            n = be16(p + pos);
        else if (hl == 4)
            n = be32(p + pos);
        if (left - hl - fixed < n)
            return pn_err_set(e, PN_EINVAL, "etf: truncated term (input ends at byte %zu)", len);
        pos += hl + fixed + n;
        owed += children;
        if (owed > len - pos && children > 0)
            return pn_err_set(e, PN_EINVAL,
                              "etf: count %llu at byte %zu is more than the remaining %zu bytes "
                              "can hold",
                              (unsigned long long)children, at, len - pos);
        if (owed > len - pos)
            return pn_err_set(e, PN_EINVAL, "etf: truncated term (input ends at byte %zu)", len);
    }
    *out = pos;
    return 0;
}

int pn_etf_skip_any(pn_etf_reader *r, const uint8_t **start, size_t *len, pn_err *e) {
    if (r->failed) return pn_err_set(e, PN_EINVAL, "etf: reader used after an error");
    int rc = settle(r, e);
    if (rc < 0) return rc;
    if (r->depth == 0 && r->done) return pn_err_set(e, PN_EINVAL, "etf: no sub-term left to skip");
    pn_etf_reader sub = *r;
    if (pn_etf_skip(&sub, start, len, NULL) == 0) {
        *r = sub;
        return 1;
    }
    size_t n = 0;
    rc = foreign_len(r->p + r->pos, r->len - r->pos, &n, e);
    if (rc < 0) {
        r->failed = 1;
        return rc;
    }
    *start = r->p + r->pos;
    *len = n;
    r->pos += n;
    r->pending--;
    if (r->depth > 0)
        r->left[r->depth - 1]--;
    else
        r->done = 1;
    if (r->pending > remaining(r)) return truncated(r, e);
    return 0;
}

int pn_etf_check_term(const uint8_t *p, size_t len, pn_err *e) {
    pn_etf_reader r;
    const uint8_t *s;
    size_t n;
    pn_etf_reader_init(&r, p, len);
    int rc = pn_etf_skip(&r, &s, &n, e);
    if (rc == 0) rc = pn_etf_finish(&r, e);
    return rc;
}

int pn_etf_finish(pn_etf_reader *r, pn_err *e) {
    if (r->failed) return pn_err_set(e, PN_EINVAL, "etf: reader used after an error");
    int rc = settle(r, e);
    if (rc < 0) return rc;
    if (r->depth != 0 || !r->done) return pn_err_set(e, PN_EINVAL, "etf: term not read to its end");
    if (r->pos != r->len)
        return READER_FAIL(r, e, "etf: %zu trailing bytes after the term", r->len - r->pos);
    return 0;
}

int pn_etf_strip_version(const uint8_t *buf, size_t len, const uint8_t **term, size_t *term_len,
                         pn_err *e) {
    if (len == 0) return pn_err_set(e, PN_EINVAL, "etf: empty input");
    if (buf[0] != PN_ETF_VERSION)
        return pn_err_set(e, PN_EINVAL, "etf: version byte is %u, expected %u", buf[0],
                          PN_ETF_VERSION);
    *term = buf + 1;
    *term_len = len - 1;
    return 0;
}

int pn_etf_validate(const uint8_t *buf, size_t len, size_t max, pn_err *e) {
    if (len > max)
        return pn_err_set(e, PN_ETOOBIG, "etf: term of %zu bytes is larger than the limit of %zu",
                          len, max);
    const uint8_t *t = NULL;
    size_t tl = 0;
    int rc = pn_etf_strip_version(buf, len, &t, &tl, e);
    if (rc < 0) return rc;
    pn_etf_reader r;
    pn_etf_item it;
    pn_etf_reader_init(&r, t, tl);
    while ((rc = pn_etf_next(&r, &it, e)) > 0) {
    }
    if (rc < 0) return rc;
    return pn_etf_finish(&r, e);
}

/* ---- term order ------------------------------------------------------- */

/* A reader that presents STRING_EXT as the list of integers it stands for
 * and [] however it is spelt, so both sides of a comparison look alike. */
typedef struct {
    pn_etf_reader r;
    const uint8_t *s;
    size_t sleft;
    int in_str;
    size_t start; /* where the item just read began */
} cmp_cursor;

enum { RANK_NUMBER, RANK_ATOM, RANK_TUPLE, RANK_MAP, RANK_NIL, RANK_LIST, RANK_BINARY };

static int rank(const pn_etf_item *it) {
    switch (it->type) {
        case PN_ETF_INT:
        case PN_ETF_BIG:
        case PN_ETF_FLOAT:
            return RANK_NUMBER;
        case PN_ETF_ATOM:
            return RANK_ATOM;
        case PN_ETF_TUPLE:
            return RANK_TUPLE;
        case PN_ETF_MAP:
            return RANK_MAP;
        case PN_ETF_NIL:
            return RANK_NIL;
        case PN_ETF_LIST:
        case PN_ETF_STRING:
            return RANK_LIST;
        default:
            return RANK_BINARY;
    }
}

static void cur_init(cmp_cursor *c, const uint8_t *p, size_t len) {
    pn_etf_reader_init(&c->r, p, len);
    c->s = NULL;
    c->sleft = 0;
    c->in_str = 0;
    c->start = 0;
}

static int cur_at_end(const cmp_cursor *c) {
    if (c->in_str) return c->sleft == 0;
    if (c->r.depth > 0) return c->r.left[c->r.depth - 1] == 0;
    return c->r.done;
}

static int cur_next(cmp_cursor *c, pn_etf_item *it) {
    if (c->in_str) {
        memset(it, 0, sizeof *it);
        it->type = PN_ETF_INT;
        it->i = *c->s++;
        c->sleft--;
        return 0;
    }
    c->start = c->r.pos;
    if (pn_etf_next(&c->r, it, NULL) != 1) return -1;
    if ((it->type == PN_ETF_STRING && it->len == 0) ||
        (it->type == PN_ETF_LIST && it->arity == 0)) {
        it->type = PN_ETF_NIL;
    } else if (it->type == PN_ETF_STRING) {
        c->in_str = 1;
        c->s = it->ptr;
        c->sleft = it->len;
    }
    return 0;
}

static int cmp_u64(uint64_t a, uint64_t b) {
    return a < b ? -1 : a > b;
}

static int cmp_numbers(const pn_etf_item *x, const pn_etf_item *y) {
    int xf = x->type == PN_ETF_FLOAT, yf = y->type == PN_ETF_FLOAT;
    if (xf != yf) return xf ? 1 : -1; /* map-key order: integers first */
    if (xf) {
        if (x->f < y->f) return -1;
        if (x->f > y->f) return 1;
        return (int)!signbit(x->f) - (int)!signbit(y->f); /* -0.0 before 0.0 */
    }
    uint8_t xb[8], yb[8];
    int xn = x->neg, yn = y->neg;
    const uint8_t *xm = x->ptr, *ym = y->ptr;
    size_t xl = x->len, yl = y->len;
    if (x->type == PN_ETF_INT) xl = pn_bigint_from_i64(x->i, xb, &xn), xm = xb;
    if (y->type == PN_ETF_INT) yl = pn_bigint_from_i64(y->i, yb, &yn), ym = yb;
    return pn_bigint_compare(xn, xm, xl, yn, ym, yl);
}

static int cmp_atoms(const pn_etf_item *x, const pn_etf_item *y) {
    size_t i = 0, j = 0;
    while (i < x->len && j < y->len) {
        uint32_t a, b;
        if (x->latin1)
            a = x->ptr[i++];
        else if (!utf8_next(x->ptr, x->len, &i, &a))
            return 0;
        if (y->latin1)
            b = y->ptr[j++];
        else if (!utf8_next(y->ptr, y->len, &j, &b))
            return 0;
        if (a != b) return a < b ? -1 : 1;
    }
    return (i < x->len) - (j < y->len);
}

static int cmp_binaries(const pn_etf_item *x, const pn_etf_item *y) {
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return cmp_u64(x->len, y->len);
}

static int term_len(const uint8_t *p, size_t len, size_t *out) {
    pn_etf_reader r;
    const uint8_t *s;
    pn_etf_reader_init(&r, p, len);
    if (pn_etf_skip(&r, &s, out, NULL) < 0) return -1;
    return 0;
}

static int cmp_terms(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int level,
                     int *res);

/* Two maps of the same size: keys first, then values, each in the order the
 * maps hold them (sorted, for maps this encoder wrote). Recursion depth is
 * bounded by how deeply maps nest, itself bounded by PN_ETF_MAX_DEPTH. */
static int cmp_maps(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int level,
                    int *res) {
    if (level > PN_ETF_MAX_DEPTH || alen < 5 || blen < 5) return -1;
    uint32_t n = be32(a + 1);
    for (int pass = 0; pass < 2; pass++) {
        size_t pa = 5, pb = 5;
        for (uint32_t k = 0; k < n; k++) {
            size_t ka, kb, va, vb;
            if (term_len(a + pa, alen - pa, &ka) < 0 || term_len(b + pb, blen - pb, &kb) < 0)
                return -1;
            if (term_len(a + pa + ka, alen - pa - ka, &va) < 0 ||
                term_len(b + pb + kb, blen - pb - kb, &vb) < 0)
                return -1;
            int rc = pass == 0 ? cmp_terms(a + pa, ka, b + pb, kb, level, res)
                               : cmp_terms(a + pa + ka, va, b + pb + kb, vb, level, res);
            if (rc < 0) return rc;
            if (*res) return 0;
            pa += ka + va;
            pb += kb + vb;
        }
    }
    *res = 0;
    return 0;
}

static int skip_map(cmp_cursor *c, size_t *len) {
    if (skip_below(&c->r, c->r.depth - 1, NULL) < 0) return -1;
    *len = c->r.pos - c->start;
    return 0;
}

static int cmp_terms(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int level,
                     int *res) {
    cmp_cursor ca, cb;
    cur_init(&ca, a, alen);
    cur_init(&cb, b, blen);
    for (;;) {
        int ea = cur_at_end(&ca), eb = cur_at_end(&cb);
        if (ea != eb) {
            /* Up to here both sides had the same shape, so this is a list
             * that ran out first: the shorter list is the smaller. */
            *res = ea ? -1 : 1;
            return 0;
        }
        if (ea) {
            int topa = !ca.in_str && ca.r.depth == 0, topb = !cb.in_str && cb.r.depth == 0;
            if (topa || topb) {
                *res = 0;
                return topa && topb ? 0 : -1;
            }
            if (ca.in_str)
                ca.in_str = 0;
            else if (close_one(&ca.r, NULL) < 0)
                return -1;
            if (cb.in_str)
                cb.in_str = 0;
            else if (close_one(&cb.r, NULL) < 0)
                return -1;
            continue;
        }
        pn_etf_item x, y;
        if (cur_next(&ca, &x) < 0 || cur_next(&cb, &y) < 0) return -1;
        int ra = rank(&x), rb = rank(&y), c = 0;
        if (ra != rb) {
            *res = ra < rb ? -1 : 1;
            return 0;
        }
        switch (ra) {
            case RANK_NUMBER:
                c = cmp_numbers(&x, &y);
                break;
            case RANK_ATOM:
                c = cmp_atoms(&x, &y);
                break;
            case RANK_BINARY:
                c = cmp_binaries(&x, &y);
                break;
            case RANK_TUPLE:
                c = cmp_u64(x.arity, y.arity);
                break;
            case RANK_MAP:
                c = cmp_u64(x.arity, y.arity);
                if (c == 0 && x.arity > 0) {
                    size_t la, lb;
                    if (skip_map(&ca, &la) < 0 || skip_map(&cb, &lb) < 0) return -1;
                    if (cmp_maps(a + ca.start, la, b + cb.start, lb, level + 1, &c) < 0) return -1;
                }
                break;
            default:
                break; /* [] vs [], or two lists: their elements decide */
        }
        if (c) {
            *res = c;
            return 0;
        }
    }
}

int pn_etf_compare(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    int res;
    if (cmp_terms(a, alen, b, blen, 0, &res) == 0) return res;
    /* Not a term of the subset: bytes still give a consistent order. */
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return cmp_u64(alen, blen);
}

/* ---- encoder ---------------------------------------------------------- */

void pn_etf_buf_init(pn_etf_buf *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void pn_etf_buf_free(pn_etf_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

static int reserve(pn_etf_buf *b, size_t n, pn_err *e) {
    if (b->len > b->max || n > b->max - b->len)
        return pn_err_set(e, PN_ETOOBIG, "etf: term would be larger than the limit of %zu bytes",
                          b->max);
    size_t need = b->len + n;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : ETF_GROW_MIN;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max) cap = b->max;
    uint8_t *d = realloc(b->data, cap);
    if (!d) return pn_err_set(e, PN_ENOMEM, "etf: out of memory growing a term to %zu bytes", cap);
    b->data = d;
    b->cap = cap;
    return 0;
}

int pn_etf_put_raw(pn_etf_buf *b, const void *p, size_t n, pn_err *e) {
    int rc = reserve(b, n, e);
    if (rc < 0) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int put_header(pn_etf_buf *b, uint8_t tag, uint32_t v, size_t vbytes, pn_err *e) {
    uint8_t h[5];
    h[0] = tag;
    if (vbytes == 1)
        h[1] = (uint8_t)v;
    else if (vbytes == 2)
        h[1] = (uint8_t)(v >> 8), h[2] = (uint8_t)v;
    else if (vbytes == 4)
        put_be32(h + 1, v);
    return pn_etf_put_raw(b, h, 1 + vbytes, e);
}

int pn_etf_put_version(pn_etf_buf *b, pn_err *e) {
    uint8_t v = PN_ETF_VERSION;
    return pn_etf_put_raw(b, &v, 1, e);
}

/* SMALL_BIG or LARGE_BIG of a trimmed magnitude. */
static int put_big(pn_etf_buf *b, int neg, const uint8_t *mag, size_t n, pn_err *e) {
    uint8_t h[6];
    size_t hl;
    if (n <= 255) {
        h[0] = PN_ETF_TAG_SMALL_BIG;
        h[1] = (uint8_t)n;
        hl = 2;
    } else {
        h[0] = PN_ETF_TAG_LARGE_BIG;
        put_be32(h + 1, (uint32_t)n);
        hl = 5;
    }
    h[hl++] = neg ? 1 : 0;
    int rc = reserve(b, hl + n, e);
    if (rc < 0) return rc;
    pn_etf_put_raw(b, h, hl, e);
    return pn_etf_put_raw(b, mag, n, e);
}

int pn_etf_put_int(pn_etf_buf *b, int64_t v, pn_err *e) {
    if (v >= 0 && v <= 255) return put_header(b, PN_ETF_TAG_SMALL_INTEGER, (uint32_t)v, 1, e);
    if (v >= INT32_MIN && v <= INT32_MAX)
        return put_header(b, PN_ETF_TAG_INTEGER, (uint32_t)(int32_t)v, 4, e);
    uint8_t m[8];
    int neg;
    size_t n = pn_bigint_from_i64(v, m, &neg);
    return put_big(b, neg, m, n, e);
}

int pn_etf_put_bigint(pn_etf_buf *b, int neg, const uint8_t *mag, size_t len, pn_err *e) {
    len = pn_bigint_trim(mag, len);
    if (len > PN_ETF_BIG_MAX_BYTES)
        return pn_err_set(e, PN_EINVAL, "etf: integer of %zu bytes is beyond the limit of %d bytes",
                          len, PN_ETF_BIG_MAX_BYTES);
    if (len <= 8) {
        uint64_t m = 0;
        for (size_t k = len; k > 0; k--)
            m = m << 8 | mag[k - 1];
        if (!neg && m <= (uint64_t)INT64_MAX) return pn_etf_put_int(b, (int64_t)m, e);
        if (neg && m <= (uint64_t)INT64_MAX) return pn_etf_put_int(b, -(int64_t)m, e);
        if (neg && m == (uint64_t)INT64_MAX + 1) return pn_etf_put_int(b, INT64_MIN, e);
    }
    return put_big(b, neg, mag, len, e);
}

/* What pn_etf_put_bigint writes for v, at once (every envelope's id). */
int pn_etf_put_u64(pn_etf_buf *b, uint64_t v, pn_err *e) {
    if (v <= INT32_MAX) return pn_etf_put_int(b, (int64_t)v, e);
    uint8_t h[3 + 8] = {PN_ETF_TAG_SMALL_BIG, 0, 0};
    size_t n = 0;
    for (; v; v >>= 8)
        h[3 + n++] = (uint8_t)v;
    h[1] = (uint8_t)n;
    return pn_etf_put_raw(b, h, 3 + n, e);
}

int pn_etf_put_double(pn_etf_buf *b, double v, pn_err *e) {
    if (!isfinite(v))
        return pn_err_set(e, PN_EINVAL, "etf: cannot encode %s: ETF floats are finite",
                          isnan(v) ? "NaN" : "an infinite float");
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint8_t h[9];
    h[0] = PN_ETF_TAG_NEW_FLOAT;
    put_be32(h + 1, (uint32_t)(bits >> 32));
    put_be32(h + 5, (uint32_t)bits);
    return pn_etf_put_raw(b, h, sizeof h, e);
}

int pn_etf_put_atom(pn_etf_buf *b, const char *utf8, size_t len, pn_err *e) {
    if (!pn_etf_atom_name_ok(utf8, len))
        return pn_err_set(e, PN_EINVAL,
                          "etf: atom name is not valid UTF-8 of at most %d characters",
                          PN_ETF_ATOM_MAX_CHARS);
    return pn_etf_put_valid_atom(b, utf8, len, e);
}

int pn_etf_put_valid_atom(pn_etf_buf *b, const char *utf8, size_t len, pn_err *e) {
    int rc = reserve(b, 3 + len, e);
    if (rc < 0) return rc;
    if (len <= 255)
        rc = put_header(b, PN_ETF_TAG_SMALL_ATOM_UTF8, (uint32_t)len, 1, e);
    else
        rc = put_header(b, PN_ETF_TAG_ATOM_UTF8, (uint32_t)len, 2, e);
    if (rc < 0) return rc;
    return pn_etf_put_raw(b, utf8, len, e);
}

int pn_etf_put_binary(pn_etf_buf *b, const void *p, size_t len, pn_err *e) {
    if (len > UINT32_MAX)
        return pn_err_set(e, PN_ETOOBIG, "etf: binary of %zu bytes exceeds the 4 GiB format limit",
                          len);
    int rc = reserve(b, 5 + len, e);
    if (rc < 0) return rc;
    rc = put_header(b, PN_ETF_TAG_BINARY, (uint32_t)len, 4, e);
    if (rc < 0) return rc;
    return pn_etf_put_raw(b, p, len, e);
}

int pn_etf_put_tuple(pn_etf_buf *b, uint32_t arity, pn_err *e) {
    if (arity <= 255) return put_header(b, PN_ETF_TAG_SMALL_TUPLE, arity, 1, e);
    return put_header(b, PN_ETF_TAG_LARGE_TUPLE, arity, 4, e);
}

int pn_etf_put_list_header(pn_etf_buf *b, uint32_t n, pn_err *e) {
    if (n == 0) return pn_err_set(e, PN_EINVAL, "etf: an empty list is [] (pn_etf_put_nil)");
    return put_header(b, PN_ETF_TAG_LIST, n, 4, e);
}

int pn_etf_put_nil(pn_etf_buf *b, pn_err *e) {
    return put_header(b, PN_ETF_TAG_NIL, 0, 0, e);
}

int pn_etf_put_map(pn_etf_buf *b, uint32_t pairs, pn_err *e) {
    return put_header(b, PN_ETF_TAG_MAP, pairs, 4, e);
}

int pn_etf_put_string(pn_etf_buf *b, const uint8_t *p, size_t len, pn_err *e) {
    if (len == 0) return pn_etf_put_nil(b, e);
    if (len > PN_ETF_STRING_MAX)
        return pn_err_set(e, PN_EINVAL, "etf: STRING_EXT holds at most %u elements",
                          PN_ETF_STRING_MAX);
    int rc = reserve(b, 3 + len, e);
    if (rc < 0) return rc;
    rc = put_header(b, PN_ETF_TAG_STRING, (uint32_t)len, 2, e);
    if (rc < 0) return rc;
    return pn_etf_put_raw(b, p, len, e);
}
