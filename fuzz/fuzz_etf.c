/*
 * ETF decoder fuzz target. Properties, for any input:
 *  - validation never crashes, and agrees with a plain reader walk;
 *  - an accepted term transcodes (reader -> canonical encoder) into a term
 *    that is accepted too, equal to the original in term order, and whose
 *    own transcoding is byte for byte the same (the encoder is canonical);
 *  - pn_etf_skip finds the same end as the reader, and so does
 *    pn_etf_skip_any, which on any input never reads out of bounds;
 *  - a big integer's decimal spelling parses back to itself;
 *  - pn_etf_compare is a total order on sibling sub-terms (reflexive,
 *    antisymmetric, transitive), and never crashes on arbitrary bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/etf.h"

#define FUZZ_MAX (1u << 20)
#define FUZZ_SLICES 16

typedef struct {
    uint64_t left;
    int list;
} open_container;

/* A big integer's decimal spelling reads back to the same sign and
 * magnitude. */
static void check_decimal(const pn_etf_item *it) {
    static char dec[PN_BIGINT_DECIMAL_MAX];
    static uint8_t mag[PN_BIGINT_MAX_BYTES];
    size_t n, len;
    int neg;
    if (pn_bigint_to_decimal(it->neg, it->ptr, it->len, dec, sizeof dec, &n, NULL) < 0) abort();
    if (pn_bigint_from_decimal(dec, n, &neg, mag, &len, NULL) < 0) abort();
    if (neg != it->neg || len != it->len || memcmp(mag, it->ptr, len) != 0) abort();
}

/* term: no version byte. Appends version + canonical re-encoding to out. */
static int transcode(const uint8_t *term, size_t len, pn_etf_buf *out) {
    open_container st[PN_ETF_MAX_DEPTH];
    int top = 0, rc;
    pn_etf_reader r;
    pn_etf_item it;
    char name[PN_ETF_ATOM_MAX_UTF8];
    if (pn_etf_put_version(out, NULL) < 0) return -1;
    pn_etf_reader_init(&r, term, len);
    while ((rc = pn_etf_next(&r, &it, NULL)) > 0) {
        uint64_t children = 0;
        int list = 0;
        switch (it.type) {
            case PN_ETF_INT:
                rc = pn_etf_put_int(out, it.i, NULL);
                break;
            case PN_ETF_BIG:
                check_decimal(&it);
                rc = pn_etf_put_bigint(out, it.neg, it.ptr, it.len, NULL);
                break;
            case PN_ETF_FLOAT:
                rc = pn_etf_put_double(out, it.f, NULL);
                break;
            case PN_ETF_ATOM: {
                size_t n = pn_etf_atom_utf8(&it, name);
                rc = pn_etf_put_atom(out, name, n, NULL);
                break;
            }
            case PN_ETF_BINARY:
                rc = pn_etf_put_binary(out, it.ptr, it.len, NULL);
                break;
            case PN_ETF_STRING:
                rc = pn_etf_put_string(out, it.ptr, it.len, NULL);
                break;
            case PN_ETF_NIL:
                rc = pn_etf_put_nil(out, NULL);
                break;
            case PN_ETF_TUPLE:
                rc = pn_etf_put_tuple(out, it.arity, NULL);
                children = it.arity;
                break;
            case PN_ETF_LIST:
                rc = it.arity ? pn_etf_put_list_header(out, it.arity, NULL)
                              : pn_etf_put_nil(out, NULL);
                children = it.arity;
                list = 1;
                break;
            case PN_ETF_MAP:
                rc = pn_etf_put_map(out, it.arity, NULL);
                children = (uint64_t)it.arity * 2;
                break;
        }
        if (rc < 0) return -1;
        if (children) {
            if (top == PN_ETF_MAX_DEPTH) abort(); /* the reader bounds depth */
            st[top].left = children;
            st[top].list = list;
            top++;
            continue;
        }
        while (top > 0 && --st[top - 1].left == 0) {
            if (st[top - 1].list && pn_etf_put_nil(out, NULL) < 0) return -1;
            top--;
        }
    }
    if (rc < 0 || top != 0) abort(); /* validated input must walk cleanly */
    return 0;
}

static int sign(int c) {
    return (c > 0) - (c < 0);
}

static void check_compare(const uint8_t *term, size_t len) {
    const uint8_t *s[FUZZ_SLICES];
    size_t l[FUZZ_SLICES];
    size_t n = 0;
    pn_etf_reader r;
    pn_etf_item it;
    pn_etf_reader_init(&r, term, len);
    if (pn_etf_next(&r, &it, NULL) != 1) abort();
    if (it.type == PN_ETF_TUPLE || it.type == PN_ETF_LIST || it.type == PN_ETF_MAP) {
        uint64_t k = it.type == PN_ETF_MAP ? (uint64_t)it.arity * 2 : it.arity;
        for (; n < k && n < FUZZ_SLICES; n++)
            if (pn_etf_skip(&r, &s[n], &l[n], NULL) < 0) abort();
    }
    int c[FUZZ_SLICES][FUZZ_SLICES];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            c[i][j] = sign(pn_etf_compare(s[i], l[i], s[j], l[j]));
    for (size_t i = 0; i < n; i++) {
        if (c[i][i] != 0) abort();
        for (size_t j = 0; j < n; j++) {
            if (c[i][j] != -c[j][i]) abort();
            /* qsort needs a total order: <= must be transitive. */
            for (size_t k = 0; k < n; k++)
                if (c[i][j] <= 0 && c[j][k] <= 0 && c[i][k] > 0) abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Arbitrary bytes through compare: any answer, no crash. */
    (void)pn_etf_compare(data, size / 2, data + size / 2, size - size / 2);

    /* Arbitrary bytes through the foreign-term skipper: a term in the
     * subset is reported as one, and agrees with the checker. */
    if (size > 0) {
        pn_etf_reader ra;
        const uint8_t *as;
        size_t al;
        pn_etf_reader_init(&ra, data + 1, size - 1);
        int k = pn_etf_skip_any(&ra, &as, &al, NULL);
        if (k >= 0 && (as != data + 1 || al > size - 1)) abort();
        if (k >= 0 && (pn_etf_check_term(as, al, NULL) == 0) != (k == 1)) abort();
    }

    int rc = pn_etf_validate(data, size, FUZZ_MAX, NULL);
    if (rc < 0) return 0;
    const uint8_t *term = data + 1;
    size_t len = size - 1;

    const uint8_t *s;
    size_t sl;
    pn_etf_reader r;
    pn_etf_reader_init(&r, term, len);
    if (pn_etf_skip(&r, &s, &sl, NULL) < 0 || s != term || sl != len) abort();
    if (pn_etf_finish(&r, NULL) < 0) abort();
    pn_etf_reader_init(&r, term, len);
    if (pn_etf_skip_any(&r, &s, &sl, NULL) != 1 || s != term || sl != len) abort();

    pn_etf_buf a, b;
    pn_etf_buf_init(&a, FUZZ_MAX * 4);
    pn_etf_buf_init(&b, FUZZ_MAX * 4);
    if (transcode(term, len, &a) < 0) abort();
    if (pn_etf_validate(a.data, a.len, a.max, NULL) < 0) abort();
    if (transcode(a.data + 1, a.len - 1, &b) < 0) abort();
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
    if (pn_etf_compare(term, len, a.data + 1, a.len - 1) != 0) abort();
    check_compare(term, len);
    pn_etf_buf_free(&a);
    pn_etf_buf_free(&b);
    return 0;
}
