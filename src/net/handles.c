#include "handles.h"

static void on_closed(uv_handle_t *h) {
    pn_handles *g = h->data;
    if (--g->open == 0 && g->done) g->done(g->ud);
}

size_t pn_handles_close(pn_handles *g, uv_handle_t *const *hs, size_t n, void (*done)(void *ud),
                        void *ud) {
    g->done = done;
    g->ud = ud;
    g->open = 0;
    for (size_t i = 0; i < n; i++)
        if (hs[i] && !uv_is_closing(hs[i])) g->open++;
    size_t closed = g->open;
    /* Counted first: a close callback never runs before the loop turns,
     * but the count must be whole before any can. */
    for (size_t i = 0; i < n; i++) {
        if (!hs[i] || uv_is_closing(hs[i])) continue;
        hs[i]->data = g;
        uv_close(hs[i], on_closed);
    }
    return closed;
}
