/*
 * Frame reader: the TCP stream is a sequence of frames, each a u32
 * big-endian length N followed by N body bytes (PROTOCOL.md "Layers").
 *
 * The reader is incremental: feed it whatever a read returned, in any
 * split, and it yields the same frames. The cap is enforced from the
 * 4-byte header alone, before any body byte is buffered, and buffered
 * memory grows only with bytes actually received.
 */
#ifndef PN_FRAME_H
#define PN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"

#define PN_FRAME_HEADER 4

typedef struct pn_frame_reader pn_frame_reader;

typedef struct pn_frame {
    const uint8_t *data; /* valid until the next call on the reader */
    size_t len;
} pn_frame;

/* cap: largest body accepted, at most UINT32_MAX. Returns NULL when out of
 * memory. */
pn_frame_reader *pn_frame_reader_new(size_t cap);
void pn_frame_reader_free(pn_frame_reader *r);

/*
 * Consumes bytes from the input (p and n, advancing both) until one frame is complete.
 * Returns 1 with *out set when a frame is ready (call again with the rest
 * of the input), 0 when all input was consumed without completing one,
 * or a negative code (PN_ETOOBIG for an over-cap header, PN_ENOMEM); after
 * an error the reader refuses all further input.
 *
 * A frame that lies wholly in the input is returned in place, without a
 * copy; only a frame split across feeds is buffered.
 */
int pn_frame_feed(pn_frame_reader *r, const uint8_t **p, size_t *n, pn_frame *out, pn_err *e);

/* Changes the cap for frames whose header has not been read yet: a
 * connection allows only handshake-sized frames until it is authenticated. */
void pn_frame_reader_set_cap(pn_frame_reader *r, size_t cap);

/* Bytes held for an incomplete frame (header included). */
size_t pn_frame_buffered(const pn_frame_reader *r);

/* Writes the 4-byte header for a body of len bytes; PN_ETOOBIG past cap. */
int pn_frame_header(uint8_t out[PN_FRAME_HEADER], size_t len, size_t cap, pn_err *e);

#endif
