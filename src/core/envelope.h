/*
 * PeerNet envelopes (PROTOCOL.md "Envelopes"): the ETF terms carried in
 * transport frames, decoded from untrusted plaintext and encoded for the
 * wire.
 *
 *   {call, Id, Name, Args}      {reply, Id, {ok, Value}}   {reply, Id, {error, Reason}}
 *   {send, Name, Args}          {ping, Nonce}              {pong, Nonce}
 *
 * Id is an integer 1..2^64-1, Name an atom, Nonce a 16-byte binary. Anything
 * else is not an envelope: the caller closes the connection. Args, Value
 * and Reason may be any well-formed term; one outside the ETF subset (a
 * pid, a ref, a fun...) is flagged as foreign, and the caller fails just
 * that call.
 */
#ifndef PN_ENVELOPE_H
#define PN_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"
#include "etf.h"

#define PN_ENVELOPE_NONCE 16

/* The envelopes: X(KIND, atom, arity, shape): the enum, the decoder's
 * table and pn_envelope_kind_name are made from it. */
#define PN_ENVELOPE_KINDS(X)                                                                       \
    X(CALL, call, 4, "{call, Id, Name, Args}")                                                     \
    X(REPLY, reply, 3, "{reply, Id, {ok | error, Term}}")                                          \
    X(SEND, send, 3, "{send, Name, Args}")                                                         \
    X(PING, ping, 2, "{ping, Nonce}")                                                              \
    X(PONG, pong, 2, "{pong, Nonce}")

#define PN_ENV_ENUM_(kind, atom, arity, shape) PN_ENV_##kind,
typedef enum { PN_ENVELOPE_KINDS(PN_ENV_ENUM_) } pn_envelope_kind;
#undef PN_ENV_ENUM_

/* The kind's atom ("call", ...); "" for a value that is no kind. */
const char *pn_envelope_kind_name(pn_envelope_kind k);

typedef struct pn_envelope {
    pn_envelope_kind kind;
    uint64_t id; /* CALL, REPLY: never 0 */
    /* CALL, SEND: the handle name as UTF-8 (ATOM_EXT Latin-1 names are
     * converted), NUL-terminated. */
    char name[PN_ETF_ATOM_MAX_UTF8 + 1];
    size_t name_len;
    int ok; /* REPLY: 1 for {ok, Value}, 0 for {error, Reason} */
    /* CALL, SEND: Args; REPLY: Value or Reason. A complete term without the
     * version byte, pointing into the decoded buffer. */
    const uint8_t *term;
    size_t term_len;
    /* CALL, SEND, REPLY: 1 when term is well-formed ETF outside the subset
     * (pn_etf_check_term on it says why). Encoders never write such terms. */
    int foreign;
    uint8_t nonce[PN_ENVELOPE_NONCE]; /* PING, PONG */
} pn_envelope;

/* Decodes one plaintext (version byte included). PN_EINVAL, with a message
 * naming what was wrong, for anything that is not exactly one envelope. */
int pn_envelope_decode(const uint8_t *pt, size_t len, pn_envelope *env, pn_err *e);

/* Encoders append one whole envelope, version byte included, to b (use a
 * fresh or reset buffer per envelope). name is UTF-8 of at most
 * PN_ETF_ATOM_MAX_CHARS characters; term (Args, Value, Reason) must be a
 * valid term without the version byte and is copied as is. On error b is
 * left as it was.
 *
 * flags: PN_ENVELOPE_LEGACY_ATOMS (TEST ONLY) writes the envelope's own
 * atoms (call, reply, ok, error, send, ping, pong and Name) as ATOM_EXT (100),
 * the OTP 25 form found in the recorded wire transcript. Names must then
 * be ASCII. */
#define PN_ENVELOPE_LEGACY_ATOMS 1

int pn_envelope_put_call(pn_etf_buf *b, uint64_t id, const char *name, size_t name_len,
                         const uint8_t *args, size_t args_len, int flags, pn_err *e);
int pn_envelope_put_reply(pn_etf_buf *b, uint64_t id, int ok, const uint8_t *term, size_t term_len,
                          int flags, pn_err *e);
/* {reply, Id, {error, Reason}} with Reason the atom named reason. */
int pn_envelope_put_reply_error(pn_etf_buf *b, uint64_t id, const char *reason, int flags,
                                pn_err *e);
int pn_envelope_put_send(pn_etf_buf *b, const char *name, size_t name_len, const uint8_t *args,
                         size_t args_len, int flags, pn_err *e);
int pn_envelope_put_ping(pn_etf_buf *b, const uint8_t nonce[PN_ENVELOPE_NONCE], int flags,
                         pn_err *e);
int pn_envelope_put_pong(pn_etf_buf *b, const uint8_t nonce[PN_ENVELOPE_NONCE], int flags,
                         pn_err *e);

#endif
