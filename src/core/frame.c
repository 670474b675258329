#include "frame.h"

#include <stdlib.h>
#include <string.h>

/* A buffer larger than this is released once its frame is delivered, so a
 * single big message does not pin a megabyte per idle connection. */
#define FRAME_RETAIN_MAX 65536u
#define FRAME_GROW_MIN 4096u

struct pn_frame_reader {
    size_t cap;
    uint8_t hdr[PN_FRAME_HEADER];
    size_t hdr_have;
    size_t need; /* body length from the header; valid once hdr_have == 4 */
    uint8_t *buf;
    size_t buf_size;
    size_t have;   /* body bytes buffered */
    int delivered; /* the previous call handed out buf: reset before reuse */
    int failed;
};

pn_frame_reader *pn_frame_reader_new(size_t cap) {
    pn_frame_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cap = cap > UINT32_MAX ? UINT32_MAX : cap;
    return r;
}

void pn_frame_reader_free(pn_frame_reader *r) {
    if (!r) return;
    free(r->buf);
    free(r);
}

size_t pn_frame_buffered(const pn_frame_reader *r) {
    return r->hdr_have + r->have;
}

void pn_frame_reader_set_cap(pn_frame_reader *r, size_t cap) {
    r->cap = cap > UINT32_MAX ? UINT32_MAX : cap;
}

int pn_frame_header(uint8_t out[PN_FRAME_HEADER], size_t len, size_t cap, pn_err *e) {
    if (len > cap || len > UINT32_MAX)
        return pn_err_set(e, PN_ETOOBIG, "frame body of %zu bytes exceeds the cap of %zu", len,
                          cap);
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 0;
}

static void frame_reset(pn_frame_reader *r) {
    r->hdr_have = 0;
    r->need = 0;
    r->have = 0;
    if (r->buf_size > FRAME_RETAIN_MAX) {
        free(r->buf);
        r->buf = NULL;
        r->buf_size = 0;
    }
}

/* Grows buf to hold at least want bytes, never beyond need. */
static int frame_reserve(pn_frame_reader *r, size_t want, pn_err *e) {
    if (want <= r->buf_size) return 0;
    size_t size = r->buf_size ? r->buf_size : FRAME_GROW_MIN;
    while (size < want)
        size *= 2;
    if (size > r->need) size = r->need;
    uint8_t *nb = realloc(r->buf, size);
    if (!nb) return pn_err_set(e, PN_ENOMEM, "out of memory buffering a %zu-byte frame", r->need);
    r->buf = nb;
    r->buf_size = size;
    return 0;
}

int pn_frame_feed(pn_frame_reader *r, const uint8_t **p, size_t *n, pn_frame *out, pn_err *e) {
    if (r->failed) return pn_err_set(e, PN_ESTATE, "frame reader already failed");
    if (r->delivered) {
        r->delivered = 0;
        frame_reset(r);
    }
    while (r->hdr_have < PN_FRAME_HEADER) {
        if (*n == 0) return 0;
        r->hdr[r->hdr_have++] = **p;
        (*p)++;
        (*n)--;
        if (r->hdr_have == PN_FRAME_HEADER) {
            r->need = (size_t)r->hdr[0] << 24 | (size_t)r->hdr[1] << 16 | (size_t)r->hdr[2] << 8 |
                      r->hdr[3];
            if (r->need > r->cap) {
                r->failed = 1;
                return pn_err_set(e, PN_ETOOBIG, "frame of %zu bytes exceeds the cap of %zu",
                                  r->need, r->cap);
            }
        }
    }
    if (r->have == 0 && *n >= r->need) {
        /* Common case: the whole body is in the caller's buffer. */
        out->data = *p;
        out->len = r->need;
        *p += r->need;
        *n -= r->need;
        r->hdr_have = 0;
        r->need = 0;
        return 1;
    }
    size_t take = r->need - r->have;
    if (take > *n) take = *n;
    if (take == 0) return 0; /* header just completed, body not yet here */
    int rc = frame_reserve(r, r->have + take, e);
    if (rc < 0) {
        r->failed = 1;
        return rc;
    }
    memcpy(r->buf + r->have, *p, take);
    r->have += take;
    *p += take;
    *n -= take;
    if (r->have < r->need) return 0;
    out->data = r->buf;
    out->len = r->need;
    r->delivered = 1;
    return 1;
}
