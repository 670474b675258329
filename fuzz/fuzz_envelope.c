/*
 * Envelope decoder fuzz target. Property: whatever decodes with a term of
 * the subset re-encodes (canonically, and in the OTP 25 legacy form) to
 * bytes that decode to the same envelope, and canonical encoding is a fixed
 * point; an envelope whose term is foreign (well-formed ETF outside the
 * subset) only comes from call, reply and send, and no encoder accepts its
 * term.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"

#define FUZZ_SLACK 4096u /* atoms may grow (Latin-1 -> UTF-8), tags may change */

static void encode(const pn_envelope *env, int flags, pn_etf_buf *b) {
    int rc;
    b->len = 0;
    switch (env->kind) {
        case PN_ENV_CALL:
            rc = pn_envelope_put_call(b, env->id, env->name, env->name_len, env->term,
                                      env->term_len, flags, NULL);
            break;
        case PN_ENV_REPLY:
            rc = pn_envelope_put_reply(b, env->id, env->ok, env->term, env->term_len, flags, NULL);
            break;
        case PN_ENV_SEND:
            rc = pn_envelope_put_send(b, env->name, env->name_len, env->term, env->term_len, flags,
                                      NULL);
            break;
        case PN_ENV_PING:
            rc = pn_envelope_put_ping(b, env->nonce, flags, NULL);
            break;
        case PN_ENV_PONG:
            rc = pn_envelope_put_pong(b, env->nonce, flags, NULL);
            break;
        default:
            abort();
    }
    if (rc != 0) abort();
}

static void same(const pn_envelope *a, const pn_envelope *b) {
    if (a->kind != b->kind || a->id != b->id || a->ok != b->ok || a->name_len != b->name_len ||
        memcmp(a->name, b->name, a->name_len) != 0 || a->term_len != b->term_len ||
        (a->term_len && memcmp(a->term, b->term, a->term_len) != 0) ||
        memcmp(a->nonce, b->nonce, sizeof a->nonce) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pn_envelope a, b, c;
    pn_err e;
    int rc = pn_envelope_decode(data, size, &a, &e);
    if (rc < 0) {
        if (rc != PN_EINVAL || strncmp(e.msg, "envelope: ", 10) != 0) abort();
        return 0;
    }
    if (a.name[a.name_len] != '\0') abort();
    if (a.foreign) {
        /* Outside the subset: the host answers badarg or fails the call,
         * and no encoder ever puts such a term on the wire. */
        pn_etf_buf out;
        pn_etf_buf_init(&out, size + FUZZ_SLACK);
        if (a.kind != PN_ENV_CALL && a.kind != PN_ENV_REPLY && a.kind != PN_ENV_SEND) abort();
        if (pn_envelope_put_send(&out, "x", 1, a.term, a.term_len, 0, NULL) == 0) abort();
        if (out.len != 0) abort();
        pn_etf_buf_free(&out);
        return 0;
    }
    pn_etf_buf canon, legacy, again;
    pn_etf_buf_init(&canon, size + FUZZ_SLACK);
    pn_etf_buf_init(&legacy, size + FUZZ_SLACK);
    pn_etf_buf_init(&again, size + FUZZ_SLACK);

    encode(&a, 0, &canon);
    if (pn_envelope_decode(canon.data, canon.len, &b, NULL) != 0) abort();
    same(&a, &b);
    encode(&b, 0, &again);
    if (again.len != canon.len || memcmp(again.data, canon.data, canon.len) != 0) abort();

    encode(&a, PN_ENVELOPE_LEGACY_ATOMS, &legacy);
    if (pn_envelope_decode(legacy.data, legacy.len, &c, NULL) != 0) abort();
    same(&a, &c);

    /* A failed encode leaves the buffer as it was. */
    size_t before = canon.len;
    if (pn_envelope_put_call(&canon, 0, "x", 1, (const uint8_t *)"a\1", 2, 0, NULL) >= 0 ||
        canon.len != before)
        abort();

    pn_etf_buf_free(&canon);
    pn_etf_buf_free(&legacy);
    pn_etf_buf_free(&again);
    return 0;
}
