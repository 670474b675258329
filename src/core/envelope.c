#include "envelope.h"

#include <string.h>

/* ---- decoding --------------------------------------------------------- */

#define PN_ENV_ROW_(kind, atom, arity, shape) {#atom, PN_ENV_##kind, arity, shape},
static const struct {
    const char *atom;
    pn_envelope_kind kind;
    uint32_t arity;
    const char *shape;
} kinds[] = {PN_ENVELOPE_KINDS(PN_ENV_ROW_)};
#undef PN_ENV_ROW_

const char *pn_envelope_kind_name(pn_envelope_kind k) {
    return (size_t)k < sizeof kinds / sizeof kinds[0] ? kinds[k].atom : "";
}

/* What the peer sent instead, for messages; never echoes its bytes. */
static const char *item_desc(const pn_etf_item *it) {
    switch (it->type) {
        case PN_ETF_INT:
            return it->i == 0 ? "0" : it->i < 0 ? "a negative integer" : "an integer";
        case PN_ETF_BIG:
            return it->neg ? "a negative integer" : "an integer";
        case PN_ETF_FLOAT:
            return "a float";
        case PN_ETF_ATOM:
            return "an atom";
        case PN_ETF_BINARY:
            return "a binary";
        case PN_ETF_TUPLE:
            return "a tuple";
        case PN_ETF_LIST:
        case PN_ETF_STRING:
            return "a list";
        case PN_ETF_NIL:
            return "[]";
        default:
            return "a map";
    }
}

/* Puts "envelope: " in front of an ETF-level message, so a log line says
 * which layer refused the bytes. */
static int etf_fail(int rc, pn_err *e) {
    if (!e) return rc;
    char inner[PN_ERR_MSG_MAX];
    memcpy(inner, e->msg, sizeof inner);
    inner[sizeof inner - 1] = '\0';
    return pn_err_set(e, rc, "envelope: %s", inner);
}

/* Reads one item that must exist (the enclosing tuple's arity says so). */
static int next_item(pn_etf_reader *r, pn_etf_item *it, pn_err *e) {
    int rc = pn_etf_next(r, it, e);
    if (rc < 0) return etf_fail(rc, e);
    if (rc == 0) return pn_err_set(e, PN_EINVAL, "envelope: term ends early");
    return 0;
}

static int read_id(pn_etf_reader *r, pn_envelope *env, pn_err *e) {
    pn_etf_item it;
    int rc = next_item(r, &it, e);
    if (rc < 0) return rc;
    if (it.type == PN_ETF_INT && it.i > 0) {
        env->id = (uint64_t)it.i;
        return 0;
    }
    if (it.type == PN_ETF_BIG && !it.neg && it.len <= 8) {
        env->id = it.mag;
        return 0;
    }
    return pn_err_set(e, PN_EINVAL, "envelope: %s id must be an integer 1..2^64-1, got %s",
                      pn_envelope_kind_name(env->kind), item_desc(&it));
}

static int read_name(pn_etf_reader *r, pn_envelope *env, pn_err *e) {
    pn_etf_item it;
    int rc = next_item(r, &it, e);
    if (rc < 0) return rc;
    if (it.type != PN_ETF_ATOM)
        return pn_err_set(e, PN_EINVAL, "envelope: %s name must be an atom, got %s",
                          pn_envelope_kind_name(env->kind), item_desc(&it));
    env->name_len = pn_etf_atom_utf8(&it, env->name);
    env->name[env->name_len] = '\0';
    return 0;
}

/* Args, Value or Reason: any well-formed term. One outside the subset
 * still makes an envelope, so that the host can fail that one call and
 * keep the link (PROTOCOL.md "Transport frames"). */
static int read_term(pn_etf_reader *r, pn_envelope *env, pn_err *e) {
    int rc = pn_etf_skip_any(r, &env->term, &env->term_len, e);
    if (rc < 0) return etf_fail(rc, e);
    env->foreign = rc == 0;
    return 0;
}

static int read_nonce(pn_etf_reader *r, pn_envelope *env, pn_err *e) {
    pn_etf_item it;
    int rc = next_item(r, &it, e);
    if (rc < 0) return rc;
    if (it.type != PN_ETF_BINARY)
        return pn_err_set(e, PN_EINVAL, "envelope: %s nonce must be a %d-byte binary, got %s",
                          pn_envelope_kind_name(env->kind), PN_ENVELOPE_NONCE, item_desc(&it));
    if (it.len != PN_ENVELOPE_NONCE)
        return pn_err_set(e, PN_EINVAL,
                          "envelope: %s nonce must be a %d-byte binary, got one of %zu bytes",
                          pn_envelope_kind_name(env->kind), PN_ENVELOPE_NONCE, it.len);
    memcpy(env->nonce, it.ptr, PN_ENVELOPE_NONCE);
    return 0;
}

/* {ok, Value} | {error, Reason}, exactly. */
static int read_result(pn_etf_reader *r, pn_envelope *env, pn_err *e) {
    pn_etf_item it;
    int rc = next_item(r, &it, e);
    if (rc < 0) return rc;
    if (it.type != PN_ETF_TUPLE)
        return pn_err_set(e, PN_EINVAL,
                          "envelope: reply result must be {ok, Value} or {error, Reason}, got %s",
                          item_desc(&it));
    if (it.arity != 2)
        return pn_err_set(e, PN_EINVAL,
                          "envelope: reply result must be {ok, Value} or {error, Reason}, got a "
                          "%u-tuple",
                          (unsigned)it.arity);
    rc = next_item(r, &it, e);
    if (rc < 0) return rc;
    if (pn_etf_atom_is(&it, "ok"))
        env->ok = 1;
    else if (pn_etf_atom_is(&it, "error"))
        env->ok = 0;
    else
        return pn_err_set(e, PN_EINVAL,
                          "envelope: reply result must be {ok, Value} or {error, Reason}, but "
                          "its first element is not the atom ok or error");
    return read_term(r, env, e);
}

int pn_envelope_decode(const uint8_t *pt, size_t len, pn_envelope *env, pn_err *e) {
    const uint8_t *t = NULL;
    size_t tl = 0;
    memset(env, 0, sizeof *env);
    int rc = pn_etf_strip_version(pt, len, &t, &tl, e);
    if (rc < 0) return etf_fail(rc, e);

    pn_etf_reader r;
    pn_etf_item it;
    pn_etf_reader_init(&r, t, tl);
    rc = next_item(&r, &it, e);
    if (rc < 0) return rc;
    if (it.type != PN_ETF_TUPLE)
        return pn_err_set(e, PN_EINVAL, "envelope: expected a tuple, got %s", item_desc(&it));
    if (it.arity == 0)
        return pn_err_set(e, PN_EINVAL, "envelope: expected a tuple, got the empty tuple {}");
    uint32_t arity = it.arity;

    rc = next_item(&r, &it, e);
    if (rc < 0) return rc;
    size_t k = 0, nkinds = sizeof kinds / sizeof kinds[0];
    while (k < nkinds && !pn_etf_atom_is(&it, kinds[k].atom))
        k++;
    if (k == nkinds)
        return pn_err_set(e, PN_EINVAL,
                          "envelope: first element must be the atom call, reply, send, ping or "
                          "pong, got %s",
                          it.type == PN_ETF_ATOM ? "another atom" : item_desc(&it));
    env->kind = kinds[k].kind;
    if (arity != kinds[k].arity)
        return pn_err_set(e, PN_EINVAL, "envelope: %s must be a %u-tuple %s, got a %u-tuple",
                          kinds[k].atom, (unsigned)kinds[k].arity, kinds[k].shape, (unsigned)arity);

    switch (env->kind) {
        case PN_ENV_CALL:
            rc = read_id(&r, env, e);
            if (rc == 0) rc = read_name(&r, env, e);
            if (rc == 0) rc = read_term(&r, env, e);
            break;
        case PN_ENV_REPLY:
            rc = read_id(&r, env, e);
            if (rc == 0) rc = read_result(&r, env, e);
            break;
        case PN_ENV_SEND:
            rc = read_name(&r, env, e);
            if (rc == 0) rc = read_term(&r, env, e);
            break;
        default:
            rc = read_nonce(&r, env, e);
            break;
    }
    if (rc < 0) return rc;
    rc = pn_etf_finish(&r, e);
    return rc < 0 ? etf_fail(rc, e) : 0;
}

/* ---- encoding --------------------------------------------------------- */

/* OTP 25's term_to_binary/1: an atom whose characters all fit Latin-1 is
 * ATOM_EXT holding Latin-1 bytes; any other atom is written as UTF-8, just
 * as OTP 26 writes it. */
static int put_valid_atom(pn_etf_buf *b, const char *name, size_t len, int flags, pn_err *e) {
    if (!(flags & PN_ENVELOPE_LEGACY_ATOMS)) return pn_etf_put_valid_atom(b, name, len, e);
    const uint8_t *s = (const uint8_t *)name;
    uint8_t out[3 + PN_ETF_ATOM_MAX_CHARS];
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        if (s[i] < 0x80) {
            out[3 + n] = s[i];
            i += 1;
        } else if (s[i] == 0xC2 || s[i] == 0xC3) {
            /* Valid UTF-8 (the caller checked), so a continuation byte follows. */
            out[3 + n] = (uint8_t)((s[i] & 0x03) << 6 | (s[i + 1] & 0x3F));
            i += 2;
        } else {
            return pn_etf_put_valid_atom(b, name, len, e);
        }
    }
    out[0] = PN_ETF_TAG_ATOM;
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)n;
    return pn_etf_put_raw(b, out, 3 + n, e);
}

/* A name from the caller (a handle, a reason) is checked once, here. */
static int put_atom(pn_etf_buf *b, const char *name, size_t len, int flags, pn_err *e) {
    if (!pn_etf_atom_name_ok(name, len))
        return pn_err_set(e, PN_EINVAL,
                          "envelope: atom name is not valid UTF-8 of at most %d characters",
                          PN_ETF_ATOM_MAX_CHARS);
    return put_valid_atom(b, name, len, flags, e);
}

/* The envelope's own atoms (call, reply, ok...) are known valid: not
 * checked per message (twice per reply: they showed in the profile of a
 * pipelined serve). */
#define PUT_OWN_ATOM(b, lit, flags, e) put_valid_atom(b, "" lit, sizeof lit - 1, flags, e)

static int check_flags(int flags, pn_err *e) {
    if (flags & ~PN_ENVELOPE_LEGACY_ATOMS)
        return pn_err_set(e, PN_EINVAL, "envelope: unknown flags 0x%x", (unsigned)flags);
    return 0;
}

static int check_id(uint64_t id, const char *kind, pn_err *e) {
    if (id == 0)
        return pn_err_set(e, PN_EINVAL, "envelope: %s id must be an integer 1..2^64-1, not 0",
                          kind);
    return 0;
}

/* The term is copied as is, so it must be exactly one term of the subset
 * already: a peer would close the connection over anything else. */
static int check_term(const uint8_t *term, size_t len, const char *what, pn_err *e) {
    int rc = pn_etf_check_term(term, len, e);
    if (rc < 0) {
        char inner[PN_ERR_MSG_MAX] = "";
        if (e) memcpy(inner, e->msg, sizeof inner);
        inner[sizeof inner - 1] = '\0';
        return pn_err_set(e, rc, "envelope: %s is not one valid term: %s", what, inner);
    }
    return 0;
}

/* The envelope nests the caller's term at most this deep ({reply, Id, {ok, V}}). */
#define ENVELOPE_NESTING 2
/* A term of n bytes opens at most n / 2 containers (the smallest, a small
 * tuple, takes two bytes), so one this short cannot end up too deep. */
#define SHALLOW_TERM_MAX (2 * (PN_ETF_MAX_DEPTH - ENVELOPE_NESTING))

/* Ends every encoder. The envelope adds nesting around the caller's term,
 * so a term that was valid alone can still be too deep inside it: decoding
 * what was written is the one check that covers every case. A term too
 * short to be that deep skips it (profiles of small calls showed the
 * second walk: term_len 0 = no caller term). */
static int finish(pn_etf_buf *b, size_t mark, size_t term_len, int rc, pn_err *e) {
    if (rc == 0 && term_len > SHALLOW_TERM_MAX) {
        pn_envelope env;
        rc = pn_envelope_decode(b->data + mark, b->len - mark, &env, e);
        if (rc == 0 && env.foreign)
            rc =
                pn_err_set(e, PN_EINVAL,
                           "envelope: its term is nested deeper than %d levels inside the envelope",
                           PN_ETF_MAX_DEPTH);
    }
    if (rc < 0) b->len = mark;
    return rc;
}

int pn_envelope_put_call(pn_etf_buf *b, uint64_t id, const char *name, size_t name_len,
                         const uint8_t *args, size_t args_len, int flags, pn_err *e) {
    size_t mark = b->len;
    int rc = check_flags(flags, e);
    if (rc == 0) rc = check_id(id, "call", e);
    if (rc == 0) rc = check_term(args, args_len, "call Args", e);
    if (rc == 0) rc = pn_etf_put_version(b, e);
    if (rc == 0) rc = pn_etf_put_tuple(b, 4, e);
    if (rc == 0) rc = PUT_OWN_ATOM(b, "call", flags, e);
    if (rc == 0) rc = pn_etf_put_u64(b, id, e);
    if (rc == 0) rc = put_atom(b, name, name_len, flags, e);
    if (rc == 0) rc = pn_etf_put_raw(b, args, args_len, e);
    return finish(b, mark, args_len, rc, e);
}

/* The bytes around a reply's id and term, as put_valid_atom writes them
 * without PN_ENVELOPE_LEGACY_ATOMS: one copy each instead of seven calls
 * (a reply per call: they showed in the profile of a pipelined serve). */
#define OWN_ATOM_BYTES(lit) PN_ETF_TAG_SMALL_ATOM_UTF8, sizeof lit - 1
static const uint8_t REPLY_HEAD[] = {
    PN_ETF_VERSION, PN_ETF_TAG_SMALL_TUPLE, 3, OWN_ATOM_BYTES("reply"), 'r', 'e', 'p', 'l', 'y'};
static const uint8_t REPLY_OK[] = {PN_ETF_TAG_SMALL_TUPLE, 2, OWN_ATOM_BYTES("ok"), 'o', 'k'};
static const uint8_t REPLY_ERROR[] = {
    PN_ETF_TAG_SMALL_TUPLE, 2, OWN_ATOM_BYTES("error"), 'e', 'r', 'r', 'o', 'r'};

int pn_envelope_put_reply(pn_etf_buf *b, uint64_t id, int ok, const uint8_t *term, size_t term_len,
                          int flags, pn_err *e) {
    size_t mark = b->len;
    int rc = check_flags(flags, e);
    if (rc == 0) rc = check_id(id, "reply", e);
    if (rc == 0) rc = check_term(term, term_len, ok ? "reply Value" : "reply Reason", e);
    if (rc == 0 && !(flags & PN_ENVELOPE_LEGACY_ATOMS)) {
        rc = pn_etf_put_raw(b, REPLY_HEAD, sizeof REPLY_HEAD, e);
        if (rc == 0) rc = pn_etf_put_u64(b, id, e);
        if (rc == 0)
            rc = ok ? pn_etf_put_raw(b, REPLY_OK, sizeof REPLY_OK, e)
                    : pn_etf_put_raw(b, REPLY_ERROR, sizeof REPLY_ERROR, e);
        if (rc == 0) rc = pn_etf_put_raw(b, term, term_len, e);
        return finish(b, mark, term_len, rc, e);
    }
    if (rc == 0) rc = pn_etf_put_version(b, e);
    if (rc == 0) rc = pn_etf_put_tuple(b, 3, e);
    if (rc == 0) rc = PUT_OWN_ATOM(b, "reply", flags, e);
    if (rc == 0) rc = pn_etf_put_u64(b, id, e);
    if (rc == 0) rc = pn_etf_put_tuple(b, 2, e);
    if (rc == 0) rc = ok ? PUT_OWN_ATOM(b, "ok", flags, e) : PUT_OWN_ATOM(b, "error", flags, e);
    if (rc == 0) rc = pn_etf_put_raw(b, term, term_len, e);
    return finish(b, mark, term_len, rc, e);
}

int pn_envelope_put_reply_error(pn_etf_buf *b, uint64_t id, const char *reason, int flags,
                                pn_err *e) {
    size_t mark = b->len;
    if (!reason) return pn_err_set(e, PN_EINVAL, "envelope: reply error reason is missing");
    int rc = check_flags(flags, e);
    if (rc == 0) rc = check_id(id, "reply", e);
    if (rc == 0) rc = pn_etf_put_version(b, e);
    if (rc == 0) rc = pn_etf_put_tuple(b, 3, e);
    if (rc == 0) rc = PUT_OWN_ATOM(b, "reply", flags, e);
    if (rc == 0) rc = pn_etf_put_u64(b, id, e);
    if (rc == 0) rc = pn_etf_put_tuple(b, 2, e);
    if (rc == 0) rc = PUT_OWN_ATOM(b, "error", flags, e);
    /* OTP 25 wrote the reason atom (no_such_handle, forbidden) as ATOM_EXT
     * too, so it follows the flag like Name does. */
    if (rc == 0) rc = put_atom(b, reason, strlen(reason), flags, e);
    return finish(b, mark, 0, rc, e);
}

int pn_envelope_put_send(pn_etf_buf *b, const char *name, size_t name_len, const uint8_t *args,
                         size_t args_len, int flags, pn_err *e) {
    size_t mark = b->len;
    int rc = check_flags(flags, e);
    if (rc == 0) rc = check_term(args, args_len, "send Args", e);
    if (rc == 0) rc = pn_etf_put_version(b, e);
    if (rc == 0) rc = pn_etf_put_tuple(b, 3, e);
    if (rc == 0) rc = PUT_OWN_ATOM(b, "send", flags, e);
    if (rc == 0) rc = put_atom(b, name, name_len, flags, e);
    if (rc == 0) rc = pn_etf_put_raw(b, args, args_len, e);
    return finish(b, mark, args_len, rc, e);
}

static int put_nonce_env(pn_etf_buf *b, const char *kind, const uint8_t *nonce, int flags,
                         pn_err *e) {
    size_t mark = b->len;
    int rc = check_flags(flags, e);
    if (rc == 0) rc = pn_etf_put_version(b, e);
    if (rc == 0) rc = pn_etf_put_tuple(b, 2, e);
    if (rc == 0) rc = put_atom(b, kind, 4, flags, e);
    if (rc == 0) rc = pn_etf_put_binary(b, nonce, PN_ENVELOPE_NONCE, e);
    return finish(b, mark, 0, rc, e);
}

int pn_envelope_put_ping(pn_etf_buf *b, const uint8_t nonce[PN_ENVELOPE_NONCE], int flags,
                         pn_err *e) {
    return put_nonce_env(b, "ping", nonce, flags, e);
}

int pn_envelope_put_pong(pn_etf_buf *b, const uint8_t nonce[PN_ENVELOPE_NONCE], int flags,
                         pn_err *e) {
    return put_nonce_env(b, "pong", nonce, flags, e);
}
