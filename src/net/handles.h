/*
 * Closing a group of libuv handles that live in one allocation: the
 * allocation may be freed only once every close callback has run, so each
 * owner counted its closes by hand. pn_handles_close does the counting.
 *
 *   uv_handle_t *hs[] = {H(&d->timer), H(&d->udp4), d->has6 ? H(&d->udp6) : NULL};
 *   pn_handles_close(&d->closing, hs, 3, free_d, d);   // free_d(d) after the last
 *
 * After uv_close a handle gets no callback but its close callback, so its
 * `data` is the group's from then on.
 */
#ifndef PN_HANDLES_H
#define PN_HANDLES_H

#include <stddef.h>
#include <uv.h>

typedef struct pn_handles {
    size_t open; /* closes still to come */
    void (*done)(void *ud);
    void *ud;
} pn_handles;

#define PN_HANDLE(h) ((uv_handle_t *)(h))

/* Closes each non-NULL handle of hs not already closing, and calls
 * done(ud) from the loop once all of them have closed. Returns how many it
 * closed: when 0, done is never called and the caller finishes itself. */
size_t pn_handles_close(pn_handles *g, uv_handle_t *const *hs, size_t n, void (*done)(void *ud),
                        void *ud);

#endif
