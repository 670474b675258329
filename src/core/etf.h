/*
 * Erlang External Term Format, the subset PeerNet speaks (PROTOCOL.md
 * "ETF subset"): a validating, zero-copy pull reader for untrusted bytes and
 * an encoder that emits the canonical forms of OTP 26+ term_to_binary/1.
 *
 * Terms here are handled WITHOUT the leading version byte 131, except by
 * pn_etf_validate() and pn_etf_put_version(): a sub-term slice (the Args of
 * a call) is a term in its own right.
 *
 * The reader yields a term in pre-order: a container item (tuple, list, map)
 * is followed by its children (a map's children alternate key, value).
 * Nesting is bounded by PN_ETF_MAX_DEPTH open containers, every count is
 * checked against the bytes that remain before anything else is read, and
 * nothing is allocated, so hostile input costs at most one pass over itself.
 */
#ifndef PN_ETF_H
#define PN_ETF_H

#include <stddef.h>
#include <stdint.h>

#include "bigint.h"
#include "peernet/err.h"

#define PN_ETF_VERSION 131
/* Most containers (with at least one element) open at once. The encoder
 * enforces the same bound, so whatever it emits the reader accepts. */
#define PN_ETF_MAX_DEPTH 64
#define PN_ETF_ATOM_MAX_CHARS 255 /* Erlang's limit, in characters */
#define PN_ETF_ATOM_MAX_UTF8 (PN_ETF_ATOM_MAX_CHARS * 4)
#define PN_ETF_STRING_MAX 65535u /* STRING_EXT has a 16-bit length */
/* Integer magnitudes (SMALL_BIG, LARGE_BIG) the subset maps: see bigint.h.
 * A well-formed larger one is outside the subset (pn_etf_skip_any). */
#define PN_ETF_BIG_MAX_BYTES PN_BIGINT_MAX_BYTES

enum {
    PN_ETF_TAG_NEW_FLOAT = 70,
    PN_ETF_TAG_SMALL_INTEGER = 97,
    PN_ETF_TAG_INTEGER = 98,
    PN_ETF_TAG_ATOM = 100, /* Latin-1; decode only */
    PN_ETF_TAG_SMALL_TUPLE = 104,
    PN_ETF_TAG_LARGE_TUPLE = 105,
    PN_ETF_TAG_NIL = 106,
    PN_ETF_TAG_STRING = 107,
    PN_ETF_TAG_LIST = 108,
    PN_ETF_TAG_BINARY = 109,
    PN_ETF_TAG_SMALL_BIG = 110,
    PN_ETF_TAG_LARGE_BIG = 111,
    PN_ETF_TAG_MAP = 116,
    PN_ETF_TAG_ATOM_UTF8 = 118,
    PN_ETF_TAG_SMALL_ATOM_UTF8 = 119
};

typedef enum {
    PN_ETF_INT,    /* i: any integer in int64 range, whatever its encoding */
    PN_ETF_BIG,    /* neg, ptr, len: an integer outside int64; mag too if len <= 8 */
    PN_ETF_FLOAT,  /* f: finite */
    PN_ETF_ATOM,   /* ptr, len: name bytes; latin1 says how to read them */
    PN_ETF_BINARY, /* ptr, len */
    PN_ETF_TUPLE,  /* arity; that many children follow */
    PN_ETF_LIST,   /* arity >= 0 elements follow; the [] tail is checked for you */
    PN_ETF_STRING, /* ptr, len: STRING_EXT, a list of len small integers */
    PN_ETF_NIL,    /* [] */
    PN_ETF_MAP     /* arity = pairs; 2 * arity children follow, key then value */
} pn_etf_type;

typedef struct pn_etf_item {
    pn_etf_type type;
    int64_t i;
    int neg;      /* BIG only */
    uint64_t mag; /* BIG only, when len <= 8: the magnitude as a number */
    double f;
    /* Points into the input. BIG: the magnitude, little-endian, without
     * high zero bytes (len 8..PN_ETF_BIG_MAX_BYTES). */
    const uint8_t *ptr;
    size_t len;
    int latin1; /* ATOM only: 1 for ATOM_EXT (Latin-1), 0 for UTF-8 */
    uint32_t arity;
} pn_etf_item;

typedef struct pn_etf_reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
    uint64_t pending;  /* bytes still owed: >= 1 per unread element or list tail */
    uint64_t listmask; /* bit d: the container at depth d is a list (owes a [] tail) */
    uint64_t left[PN_ETF_MAX_DEPTH]; /* children still to read, per open container */
    unsigned depth;
    int done;   /* the top-level item has been read */
    int failed; /* sticky: a failed reader refuses to go on */
} pn_etf_reader;

/* Checks that buf (len bytes, version byte included) is exactly one term of
 * the subset. PN_ETOOBIG when len > max, PN_EINVAL otherwise. */
int pn_etf_validate(const uint8_t *buf, size_t len, size_t max, pn_err *e);

/* Checks the version byte; on success *term and *term_len give the term. */
int pn_etf_strip_version(const uint8_t *buf, size_t len, const uint8_t **term, size_t *term_len,
                         pn_err *e);

/* A reader over one term (no version byte). p must outlive the reader. */
void pn_etf_reader_init(pn_etf_reader *r, const uint8_t *p, size_t len);

/* Reads the next item in pre-order. Returns 1 with *it filled, 0 when the
 * term is complete, or PN_EINVAL (and every later call fails the same). */
int pn_etf_next(pn_etf_reader *r, pn_etf_item *it, pn_err *e);

/* Reads the whole next sub-term (item and descendants) and gives its bytes,
 * e.g. to hand the Args of a call on as a term of its own. */
int pn_etf_skip(pn_etf_reader *r, const uint8_t **start, size_t *len, pn_err *e);

/* Like pn_etf_skip, but also steps over a sub-term that is well-formed ETF
 * outside the subset: pids, ports, references, funs, exports, bit
 * binaries, FLOAT_EXT, SMALL_ATOM, improper lists, integers past
 * PN_ETF_BIG_MAX_BYTES, atoms that are not valid UTF-8, NaN, nesting past
 * PN_ETF_MAX_DEPTH. Returns 1 for a sub-term of the subset, 0 for such a
 * foreign one (pn_etf_check_term on its bytes says why), PN_EINVAL for
 * bytes that are no term at all (truncated, unknown or compressed tags,
 * counts the input cannot hold). Iterative, allocation-free, one pass. */
int pn_etf_skip_any(pn_etf_reader *r, const uint8_t **start, size_t *len, pn_err *e);

/* 0 if p (len bytes, no version byte) is exactly one term of the subset,
 * else PN_EINVAL saying what is wrong. */
int pn_etf_check_term(const uint8_t *p, size_t len, pn_err *e);

/* After the last item: checks the term is complete and no byte follows. */
int pn_etf_finish(pn_etf_reader *r, pn_err *e);

/* The atom's name as UTF-8 into out (PN_ETF_ATOM_MAX_UTF8 bytes, not
 * terminated); returns its length. Latin-1 atoms (ATOM_EXT) are converted. */
size_t pn_etf_atom_utf8(const pn_etf_item *it, char *out);

/* 1 if the atom item is named name (UTF-8, NUL-terminated), else 0. */
int pn_etf_atom_is(const pn_etf_item *it, const char *name);

/* 1 if s is valid UTF-8 of at most PN_ETF_ATOM_MAX_CHARS characters. */
int pn_etf_atom_name_ok(const char *s, size_t len);

/*
 * Erlang's total order over two encoded terms (no version byte), in the
 * exact form used to order map keys: number < atom < tuple < map < [] <
 * list < binary, every integer before every float, atoms and binaries by
 * content then length, tuples by arity then elements, lists element by
 * element (STRING_EXT is the list it stands for), maps by size, then keys,
 * then values. Returns <0, 0 or >0. Intended for terms this encoder wrote;
 * anything else still gets a consistent answer, never a crash.
 */
int pn_etf_compare(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* ---- encoder ---------------------------------------------------------- */

typedef struct pn_etf_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* the term never grows past this: PN_ETOOBIG */
} pn_etf_buf;

void pn_etf_buf_init(pn_etf_buf *b, size_t max);
void pn_etf_buf_free(pn_etf_buf *b);

/* Each put appends one canonical item; 0, PN_ETOOBIG or PN_ENOMEM (and
 * PN_EINVAL for a value ETF cannot carry). On error nothing is appended. */
int pn_etf_put_raw(pn_etf_buf *b, const void *p, size_t n, pn_err *e);
int pn_etf_put_version(pn_etf_buf *b, pn_err *e);
int pn_etf_put_int(pn_etf_buf *b, int64_t v, pn_err *e);
int pn_etf_put_u64(pn_etf_buf *b, uint64_t v, pn_err *e);
/* Any sign and little-endian magnitude of at most PN_ETF_BIG_MAX_BYTES
 * (high zero bytes allowed): the canonical form of that integer, which is
 * SMALL_INTEGER or INTEGER when it fits, SMALL_BIG up to 255 bytes and
 * LARGE_BIG beyond. */
int pn_etf_put_bigint(pn_etf_buf *b, int neg, const uint8_t *mag, size_t len, pn_err *e);
int pn_etf_put_double(pn_etf_buf *b, double v, pn_err *e); /* PN_EINVAL for NaN, inf */
int pn_etf_put_atom(pn_etf_buf *b, const char *utf8, size_t len, pn_err *e);
/* The same for a name the caller has checked (pn_etf_atom_name_ok). */
int pn_etf_put_valid_atom(pn_etf_buf *b, const char *utf8, size_t len, pn_err *e);
int pn_etf_put_binary(pn_etf_buf *b, const void *p, size_t len, pn_err *e);
int pn_etf_put_tuple(pn_etf_buf *b, uint32_t arity, pn_err *e);
/* n > 0 elements follow, then the caller puts the [] tail with pn_etf_put_nil.
 * (A list of n small integers is canonically a STRING_EXT: pn_etf_put_string.) */
int pn_etf_put_list_header(pn_etf_buf *b, uint32_t n, pn_err *e);
int pn_etf_put_nil(pn_etf_buf *b, pn_err *e);
int pn_etf_put_map(pn_etf_buf *b, uint32_t pairs, pn_err *e); /* keys in pn_etf_compare order */
/* A list of len byte-sized integers: STRING_EXT, or [] when len is 0;
 * PN_EINVAL past PN_ETF_STRING_MAX (use a LIST of integers then). */
int pn_etf_put_string(pn_etf_buf *b, const uint8_t *p, size_t len, pn_err *e);

#endif
