/*
 * Frame reader fuzz target. The first byte seeds the chunk sizes; the rest
 * is the stream. Property: feeding in chunks yields exactly the frames (or
 * the error) that feeding everything at once yields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"

#define FUZZ_CAP 4096u
#define FUZZ_MAX_FRAMES 1024

typedef struct {
    size_t count;
    size_t off[FUZZ_MAX_FRAMES];
    size_t len[FUZZ_MAX_FRAMES];
    uint8_t *bytes;
    size_t used;
    int rc;
} outcome;

static void run(const uint8_t *data, size_t size, uint8_t seed, outcome *o) {
    pn_frame_reader *r = pn_frame_reader_new(FUZZ_CAP);
    if (!r) abort();
    o->count = 0;
    o->used = 0;
    o->rc = 0;
    size_t pos = 0;
    while (pos < size && o->rc >= 0) {
        size_t chunk = seed ? (size_t)(seed % 17) + 1 : size - pos;
        if (chunk > size - pos) chunk = size - pos;
        const uint8_t *p = data + pos;
        size_t n = chunk;
        pn_frame f;
        int rc;
        while ((rc = pn_frame_feed(r, &p, &n, &f, NULL)) == 1) {
            /* Both runs stop at the same frame, so outcomes stay comparable. */
            if (o->count == FUZZ_MAX_FRAMES) goto done;
            memcpy(o->bytes + o->used, f.data, f.len);
            o->off[o->count] = o->used;
            o->len[o->count++] = f.len;
            o->used += f.len;
        }
        if (rc < 0) o->rc = rc;
        pos += chunk;
        seed = (uint8_t)(seed * 31 + 7) | 1;
    }
done:
    pn_frame_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t seed = data[0];
    data++;
    size--;
    static outcome a, b;
    a.bytes = malloc(size + 1);
    b.bytes = malloc(size + 1);
    if (!a.bytes || !b.bytes) abort();
    run(data, size, 0, &a);
    run(data, size, seed | 1, &b);
    if (a.rc != b.rc || a.count != b.count || a.used != b.used ||
        memcmp(a.bytes, b.bytes, a.used) != 0)
        abort();
    for (size_t i = 0; i < a.count; i++)
        if (a.len[i] != b.len[i] || a.len[i] > FUZZ_CAP) abort();
    free(a.bytes);
    free(b.bytes);
    return 0;
}
