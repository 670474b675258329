/*
 * The serving side: the handlers exposed by name, and the dispatch of an
 * incoming call or send to one (bounds per peer, the authorize predicate,
 * the request handed to the handler). Requests themselves are request.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reason.h"
#include "net.h"

/* A handler revoked while one is running (it may be that one, or the host
 * is closing from inside it) is released only once it has returned. */
static void handler_drop(pn_host *h, pn_handler *hd) {
    if (h->dispatching) {
        hd->revoked = 1;
        PN_CHAIN_PUSH(h->graveyard, hd);
        return;
    }
    if (hd->def.release) hd->def.release(hd->def.ud);
    free(hd->name);
    free(hd);
}

void pn_dispatch_release_all(pn_host *h) {
    for (unsigned b = 0; b < PN_HANDLER_BUCKETS; b++) {
        while (h->handlers[b]) {
            pn_handler *hd = h->handlers[b];
            PN_CHAIN_UNLINK(&h->handlers[b]);
            handler_drop(h, hd);
        }
    }
}

static unsigned name_bucket(const char *name) {
    uint32_t v = 2166136261u; /* FNV-1a */
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        v = (v ^ *s) * 16777619u;
    return v % PN_HANDLER_BUCKETS;
}

static pn_handler *find_handler(const pn_host *h, const char *name) {
    for (pn_handler *hd = h->handlers[name_bucket(name)]; hd; hd = hd->next)
        if (strcmp(hd->name, name) == 0) return hd;
    return NULL;
}

int pn_host_expose(pn_host *h, const char *name, const pn_handler_def *def, pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    if (h->closing) return pn_err_set(e, PN_ESTATE, "host is closed");
    if (!name || !pn_etf_atom_name_ok(name, strlen(name)) || !name[0])
        return pn_err_set(e, PN_EINVAL, "handle name must be 1..255 characters of UTF-8");
    if (!def || !def->handler) return pn_err_set(e, PN_EINVAL, "a handler function is required");
    if (find_handler(h, name)) return pn_err_set(e, PN_EEXIST, "'%s' is already exposed", name);
    pn_handler *hd = calloc(1, sizeof *hd);
    if (!hd || !(hd->name = strdup(name))) {
        free(hd);
        return pn_err_set(e, PN_ENOMEM, "out of memory");
    }
    hd->def = *def;
    PN_CHAIN_PUSH(h->handlers[name_bucket(name)], hd);
    return 0;
}

int pn_host_revoke(pn_host *h, const char *name) {
    pn_handler **pp;
    PN_CHAIN_SEEK(pp, h->handlers[name_bucket(name)], strcmp((*pp)->name, name) == 0);
    pn_handler *hd = *pp;
    if (!hd) return PN_ENOTFOUND;
    PN_CHAIN_UNLINK(pp);
    handler_drop(h, hd);
    return 0;
}

static void reply_error(pn_conn *c, uint64_t id, enum pn_reason reason) {
    pn_host *h = c->host;
    pn_err e;
    h->scratch.len = 0;
    if (pn_envelope_put_reply_error(&h->scratch, id, pn_reason_name(reason), h->env_flags, &e) == 0)
        pn_conn_queue_envelope(c, &h->scratch, &e);
}

/* Runs with h->dispatching raised: hd stays allocated whatever the
 * predicate or the handler do to the host. */
static void dispatch_to(pn_host *h, pn_conn *c, const pn_envelope *env, pn_handler *hd) {
    int is_call = env->kind == PN_ENV_CALL;
    if (hd->def.authorize && !hd->def.authorize(h, c->peer->key, env->name, hd->def.ud)) {
        if (is_call && c->state == PN_CONN_LIVE) reply_error(c, env->id, PN_REASON_FORBIDDEN);
        return;
    }
    /* The predicate may have closed the link, untrusted the peer or revoked
     * the name: then the handler does not run. */
    if (c->state != PN_CONN_LIVE || !c->peer->trusted) return;
    if (hd->revoked) {
        if (is_call) reply_error(c, env->id, PN_REASON_NO_SUCH_HANDLE);
        return;
    }
    pn_err e;
    if (env->foreign) {
        /* A pid, a ref, a fun...: no handler can be given these args, but
         * the envelope is sound, so only this call fails. */
        char k[PN_LOG_KEY_BUF], key[PN_LOGLINE_KEY_MAX];
        pn_etf_check_term(env->term, env->term_len, &e);
        snprintf(key, sizeof key, "foreign args %s", pn_log_key(c->peer->key, k));
        pn_log_limited(h, PN_LOG_WARN, key,
                       "peer %s…: %s '%s' has args outside the ETF subset (%s)%s", k,
                       is_call ? "call" : "send", env->name, e.msg,
                       is_call ? ": answered badarg" : ": dropped");
        if (is_call) reply_error(c, env->id, PN_REASON_BADARG);
        return;
    }
    pn_request *req = pn_request_new(c, env, &e);
    if (!req) {
        if (is_call) reply_error(c, env->id, PN_REASON_HANDLER_CRASH);
        return;
    }
    if (is_call) {
        hd->def.handler(h, req, hd->def.ud); /* req may be answered and gone now */
        return;
    }
    pn_request *outer = h->dispatch_send;
    h->dispatch_send = req;
    hd->def.handler(h, req, hd->def.ud);
    h->dispatch_send = outer;
    if (!req->kept) pn_request_free(req);
}

/* Leaves a dispatch: handlers revoked meanwhile are released now. */
static void dispatch_leave(pn_host *h) {
    if (--h->dispatching == 0) {
        while (h->graveyard) {
            pn_handler *dead = h->graveyard;
            PN_CHAIN_UNLINK(&h->graveyard);
            handler_drop(h, dead);
        }
    }
}

/* The path of a call that came over a live link from a trusted peer, but
 * without one: the lookup, the predicate, the request to the handler. */
int pn_host_deliver(pn_host *h, const uint8_t from[PN_KEY_LEN], const char *name,
                    const uint8_t *args, size_t len, pn_call_cb cb, void *ud, pn_err *e) {
    if (h->closing) return pn_err_set(e, PN_ESTATE, "host is closed");
    pn_handler *hd = find_handler(h, name);
    if (!hd || (hd->def.authorize && !hd->def.authorize(h, from, name, hd->def.ud))) {
        pn_request *r = cb ? pn_request_new_local(h, from, name, NULL, 0, cb, ud, e) : NULL;
        enum pn_reason why = hd ? PN_REASON_FORBIDDEN : PN_REASON_NO_SUCH_HANDLE;
        if (r) pn_request_reply_error(r, pn_reason_name(why), e);
        return cb && !r ? PN_ENOMEM : 0;
    }
    pn_request *req = pn_request_new_local(h, from, name, args, len, cb, ud, e);
    if (!req) return PN_ENOMEM;
    h->dispatching++;
    if (cb) {
        hd->def.handler(h, req, hd->def.ud);
    } else {
        pn_request *outer = h->dispatch_send;
        h->dispatch_send = req;
        hd->def.handler(h, req, hd->def.ud);
        h->dispatch_send = outer;
        if (!req->kept) pn_request_free(req);
    }
    dispatch_leave(h);
    return 0;
}

/* "peer K…: over N WHAT'NAME'DONE", limited per kind and peer (key:
 * kind + K): once per call or send over the bound, so built without
 * printf. */
static void log_excess(pn_host *h, pn_conn *c, const pn_envelope *env, const char *kind,
                       const char *what, const char *done) {
    if (!h->cfg.log) return;
    char k[PN_LOG_KEY_BUF];
    pn_log_key(c->peer->key, k);
    pn_log_text key, line;
    pn_log_text_init(&key);
    pn_log_text_add(&key, kind);
    pn_log_text_add(&key, k);
    pn_log_text_init(&line);
    pn_log_text_add(&line, "peer ");
    pn_log_text_add(&line, k);
    pn_log_text_add(&line, "…: over ");
    pn_log_text_u32(&line, h->cfg.max_calls_in_flight);
    pn_log_text_add(&line, what);
    pn_log_text_add(&line, env->name);
    pn_log_text_add(&line, done);
    pn_log_limited_text(h, PN_LOG_WARN, key.buf, line.buf);
}

void pn_dispatch(pn_host *h, pn_conn *c, const pn_envelope *env) {
    int is_call = env->kind == PN_ENV_CALL;
    /* Per peer, not per connection: calls of its closed connections still
     * being served count too. */
    if (is_call && c->peer->nreqs >= h->cfg.max_calls_in_flight) {
        log_excess(h, c, env, "overloaded ", " calls in flight, '", "' refused");
        reply_error(c, env->id, PN_REASON_OVERLOADED);
        return;
    }
    /* Sends kept by their handler (waiting in a script's run queue) have a
     * bound of their own: a send has no answer to refuse with, so the
     * excess is dropped and counted. */
    if (!is_call && c->peer->nsends >= h->cfg.max_calls_in_flight) {
        h->stats.sends_dropped++;
        log_excess(h, c, env, "sends ", " sends awaiting their handler, '", "' dropped");
        return;
    }
    /* An atom may hold NUL; no exposed name does, so such a name matches nothing. */
    pn_handler *hd = strlen(env->name) == env->name_len ? find_handler(h, env->name) : NULL;
    if (!hd) {
        if (is_call) reply_error(c, env->id, PN_REASON_NO_SUCH_HANDLE);
        return;
    }
    h->dispatching++;
    dispatch_to(h, c, env, hd);
    dispatch_leave(h);
    if (!is_call && c->state == PN_CONN_LIVE && c->peer &&
        c->peer->nsends >= PN_SENDS_PAUSE_MARK(h->cfg.max_calls_in_flight))
        pn_conn_pause(c);
}
