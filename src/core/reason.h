/*
 * The one list of reasons a call or send fails, and of the kinds of
 * failure, as a peer and a script see them.
 *
 * Wire reasons are the atoms of {error, Reason} (PROTOCOL.md "Standard
 * error reasons", plus the ones the host adds); local reasons are what a
 * caller on this host is told when no reply came. A Lua caller gets
 * `nil, reason, kind`, kind being one of PN_KINDS: "remote" when the peer
 * answered {error, Reason}, otherwise where the call ended.
 */
#ifndef PN_REASON_H
#define PN_REASON_H

/* X(ENUM, name, meaning) */
#define PN_REASONS(X)                                                                              \
    /* on the wire */                                                                              \
    X(NO_SUCH_HANDLE, "no_such_handle",                                                            \
      "nothing is exposed under the name, or not to this caller")                                  \
    X(FORBIDDEN, "forbidden", "the authorize predicate refused this caller")                       \
    X(HANDLER_CRASH, "handler_crash", "the handler raised (details in the serving host's log)")    \
    X(OVERLOADED, "overloaded", "too many calls in flight, or the script is at its memory cap")    \
    X(BADARG, "badarg", "the arguments or the handler's result are outside the ETF subset")        \
    X(UNKNOWN_BEAM_DIST_OP, "unknown_beam_dist_op", "beam_admin args of no known shape")           \
    /* local: no reply came */                                                                     \
    X(TIMEOUT, "timeout", "no reply within the call's timeout")                                    \
    X(CLOSED, "closed", "the link closed before the reply")                                        \
    X(NOT_CONNECTED, "not_connected", "no live link to the peer")                                  \
    X(BUSY, "busy", "the link's queue is above the send high-water mark (half of max_outbuf)")     \
    X(UNDECODABLE, "undecodable", "the reply holds a term outside the ETF subset (a pid, a ref)")

#define PN_REASON_ENUM_(e, name, meaning) PN_REASON_##e,
enum pn_reason { PN_REASONS(PN_REASON_ENUM_) PN_REASON_COUNT };
#undef PN_REASON_ENUM_

/* X(ENUM, name, meaning) */
#define PN_KINDS(X)                                                                                \
    X(REMOTE, "remote", "the peer answered {error, Reason}")                                       \
    X(TIMEOUT, "timeout", "no reply within the timeout")                                           \
    X(CLOSED, "closed", "the link closed before the reply")                                        \
    X(LOCAL, "local", "refused on this host: not connected, too many in flight, bad arguments")    \
    X(UNDECODABLE, "undecodable", "the peer answered with a term outside the ETF subset")

#define PN_KIND_ENUM_(e, name, meaning) PN_KIND_##e,
enum pn_kind { PN_KINDS(PN_KIND_ENUM_) PN_KIND_COUNT };
#undef PN_KIND_ENUM_

/* The name of a reason or a kind ("no_such_handle", "remote"). */
const char *pn_reason_name(enum pn_reason r);
const char *pn_reason_kind_name(enum pn_kind k);

#endif
