/*
 * mDNS message parser fuzz target: never crashes or reads out of bounds,
 * and whatever parses rebuilds (uncompressed) into a message that parses
 * to the same questions and records.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mdns.h"

static pn_mdns_msg a, b;
static uint8_t out[65536]; /* decompressed: up to ~51 KB from 9000 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (pn_mdns_parse(&a, data, size, NULL) != 0) return 0;
    pn_mdns_out o;
    pn_mdns_out_init(&o, out, sizeof out, a.id, a.flags);
    for (size_t i = 0; i < a.nquestions; i++)
        if (pn_mdns_out_question(&o, &a.questions[i], NULL) != 0) abort();
    for (size_t i = 0; i < a.nrecords; i++)
        if (pn_mdns_out_record(&o, &a.records[i], NULL) != 0) abort();
    size_t n = pn_mdns_out_finish(&o);
    if (n == 0) abort();
    /* Decompressed names can make the copy longer than the 9000-byte cap. */
    if (n > PN_MDNS_MSG_MAX) return 0;
    if (pn_mdns_parse(&b, out, n, NULL) != 0) abort();
    if (a.nquestions != b.nquestions || a.nrecords != b.nrecords) abort();
    for (size_t i = 0; i < a.nquestions; i++)
        if (!pn_mdns_name_eq(a.questions[i].name, b.questions[i].name) ||
            a.questions[i].type != b.questions[i].type)
            abort();
    for (size_t i = 0; i < a.nrecords; i++) {
        const pn_mdns_record *x = &a.records[i], *y = &b.records[i];
        if (!pn_mdns_name_eq(x->name, y->name) || x->type != y->type || x->ttl != y->ttl ||
            x->section != y->section || x->port != y->port)
            abort();
        if ((x->type == 12 || x->type == 33) && !pn_mdns_name_eq(x->target, y->target)) abort();
        if (x->type == 16) {
            const uint8_t *v;
            size_t vl;
            pn_mdns_txt_get(x->rdata, x->rdlen, "key", &v, &vl);
            if (x->rdlen != y->rdlen || memcmp(x->rdata, y->rdata, x->rdlen) != 0) abort();
        }
    }
    return 0;
}
