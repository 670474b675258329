/*
 * Incoming calls and sends being served (pn_request): made by dispatch.c
 * for a handler, answered (a call exactly once) or kept (a send), and
 * orphaned when their connection goes while they are still being served.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reason.h"
#include "net.h"

/* A request with extra bytes after it: a pooled block when they fit. */
static pn_request *request_alloc(pn_host *h, size_t extra) {
    pn_request *r;
    int small = extra <= PN_REQUEST_BLOCK - sizeof *r;
    if (small && h && h->req_pool) {
        r = h->req_pool;
        h->req_pool = r->pool_next;
        h->req_pool_len--;
    } else {
        r = malloc(small ? PN_REQUEST_BLOCK : sizeof *r + extra);
        if (!r) return NULL;
    }
    memset(r, 0, sizeof *r);
    r->small = small;
    return r;
}

/* h: the host the request was made on, or NULL when it has gone. */
static void request_release(pn_host *h, pn_request *r) {
    if (r->small && h && !h->closing && h->req_pool_len < PN_REQUEST_POOL) {
        r->pool_next = h->req_pool;
        h->req_pool = r;
        h->req_pool_len++;
        return;
    }
    free(r);
}

void pn_request_pool_free(pn_host *h) {
    while (h->req_pool) {
        pn_request *r = h->req_pool;
        h->req_pool = r->pool_next;
        free(r);
    }
    h->req_pool_len = 0;
}

pn_request *pn_request_new(pn_conn *c, const pn_envelope *env, pn_err *e) {
    if (c->state != PN_CONN_LIVE) {
        pn_err_set(e, PN_ESTATE, "connection is closing");
        return NULL;
    }
    /* One block: the request, its name and its args. */
    pn_request *r = request_alloc(c->host, env->name_len + 1 + env->term_len);
    if (!r) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    r->conn = c;
    r->peer = c->peer;
    r->is_call = env->kind == PN_ENV_CALL;
    if (r->is_call)
        c->peer->nreqs++;
    else
        c->peer->nsends++;
    r->id = env->id;
    memcpy(r->from, c->peer->key, PN_KEY_LEN);
    r->name = (char *)(r + 1);
    memcpy(r->name, env->name, env->name_len + 1);
    r->args = (uint8_t *)r->name + env->name_len + 1;
    memcpy(r->args, env->term, env->term_len);
    r->args_len = env->term_len;
    pn_list_push_front(&c->reqs, &r->link);
    return r;
}

pn_request *pn_request_new_local(pn_host *h, const uint8_t from[PN_KEY_LEN], const char *name,
                                 const uint8_t *args, size_t len, pn_call_cb cb, void *ud,
                                 pn_err *e) {
    size_t nlen = strlen(name);
    pn_request *r = request_alloc(h, nlen + 1 + len);
    if (!r) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    r->host = h;
    r->local = 1;
    r->is_call = cb != NULL;
    r->local_cb = cb;
    r->local_ud = ud;
    memcpy(r->from, from, PN_KEY_LEN);
    r->name = (char *)(r + 1);
    memcpy(r->name, name, nlen + 1);
    r->args = (uint8_t *)r->name + nlen + 1;
    if (len) memcpy(r->args, args, len);
    r->args_len = len;
    pn_list_push_front(&h->orphans, &r->link);
    return r;
}

/* Takes r off its connection's list or the host's orphans. */
static void request_unlink(pn_request *r) {
    pn_conn *c = r->conn;
    pn_list *list = c ? &c->reqs : r->host ? &r->host->orphans : NULL;
    if (list) pn_list_remove(list, &r->link);
    if (c) {
        if (c->retiring && c->state != PN_CONN_CLOSING) pn_host_mark_dirty(c->host, c);
    }
    r->conn = NULL;
}

/* The peer's handlers have caught up with its sends (dispatch.c paused). */
static void resume_links(pn_peer *p) {
    pn_conn *links[] = {p->live, p->retired};
    for (int i = 0; i < 2; i++) {
        if (!links[i]) continue;
        links[i]->pause_spent = 0;
        pn_conn_resume(links[i]);
    }
}

void pn_request_free(pn_request *r) {
    pn_host *h = r->conn ? r->conn->host : r->host;
    request_unlink(r);
    if (r->peer) {
        if (r->is_call)
            r->peer->nreqs--;
        else if (--r->peer->nsends == PN_SENDS_PAUSE_MARK(h->cfg.max_calls_in_flight) / 2)
            resume_links(r->peer);
    }
    request_release(h, r);
}

/* A kept send goes on the host's orphans at once: it has no answer to
 * wait for, so it holds no connection open (a retiring link closes when
 * idle), and it still counts against its peer until its handler is done,
 * whatever happens to the links. */
int pn_request_keep(pn_request *r) {
    if (r->is_call || r->kept) return r->is_call ? PN_ESTATE : 0;
    pn_host *h = r->conn ? r->conn->host : r->host;
    request_unlink(r);
    r->kept = 1;
    r->host = h;
    if (h) pn_list_push_front(&h->orphans, &r->link);
    return 0;
}

void pn_request_done(pn_request *r) {
    if (!r || !r->kept) return;
    if (r->host && r->host->dispatch_send == r) {
        r->kept = 0; /* dispatch_to frees it when the handler returns */
        return;
    }
    pn_request_free(r);
}

void pn_request_on_gone(pn_request *req, void (*cb)(void *ud), void *ud) {
    req->gone = cb;
    req->gone_ud = ud;
}

/* The connection closes: its calls being served become orphans. They
 * still count against their peer (max_calls_in_flight is per peer, so
 * reconnecting frees nothing), and whoever serves them is told, to stop
 * work whose answer goes nowhere. */
void pn_request_detach_all(pn_conn *c) {
    pn_host *h = c->host;
    for (pn_link *l; (l = pn_list_shift(&c->reqs));) {
        pn_request *r = PN_CONTAINER(l, pn_request, link);
        r->conn = NULL;
        r->host = h;
        pn_list_push_front(&h->orphans, l);
    }
    /* The callbacks only take note (they must not free requests): walking
     * the list again is safe. */
    for (pn_link *l = h->orphans.head; l; l = l->next) {
        pn_request *r = PN_CONTAINER(l, pn_request, link);
        if (r->local) continue; /* its caller is not a link: it is not gone */
        void (*cb)(void *) = r->gone;
        r->gone = NULL;
        if (cb) cb(r->gone_ud);
    }
}

void pn_request_forget_peer(pn_host *h, pn_peer *p) {
    for (pn_link *l = h->orphans.head; l; l = l->next) {
        pn_request *r = PN_CONTAINER(l, pn_request, link);
        if (r->peer == p) r->peer = NULL;
    }
}

void pn_request_orphan_all(pn_host *h) {
    for (pn_link *l; (l = pn_list_shift(&h->orphans));) {
        pn_request *r = PN_CONTAINER(l, pn_request, link);
        r->host = NULL;
        r->peer = NULL;
    }
}

int pn_request_is_call(const pn_request *req) {
    return req->is_call;
}
const uint8_t *pn_request_from(const pn_request *req) {
    return req->from;
}
const char *pn_request_name(const pn_request *req) {
    return req->name;
}
const uint8_t *pn_request_args(const pn_request *req, size_t *len) {
    *len = req->args_len;
    return req->args;
}

/* Encodes and queues the reply when the connection is still there; the
 * request is freed either way. */
static int answer(pn_request *req, int ok, const char *reason, const uint8_t *term, size_t len,
                  pn_err *e) {
    pn_err local;
    if (!e) e = &local;
    pn_conn *c = req->conn;
    int rc = 0;
    if (!req->is_call) {
        rc = pn_err_set(e, PN_ESTATE, "a send is not answered");
        return rc; /* the host frees a send's request itself */
    }
    if (req->local_cb) {
        pn_call_cb cb = req->local_cb;
        void *ud = req->local_ud;
        pn_host *h = req->host;
        pn_request_free(req);
        if (!reason) {
            cb(h, ok ? PN_CALL_OK : PN_CALL_ERROR, term, len, ud);
            return 0;
        }
        pn_etf_buf b; /* {error, Reason} with Reason an atom, as a link carries it */
        pn_etf_buf_init(&b, PN_ETF_ATOM_MAX_UTF8 + 8);
        rc = pn_etf_put_atom(&b, reason, strlen(reason), e);
        if (rc == 0) cb(h, PN_CALL_ERROR, b.data, b.len, ud);
        pn_etf_buf_free(&b);
        return rc;
    }
    if (c && c->state == PN_CONN_LIVE) {
        pn_host *h = c->host;
        h->scratch.len = 0;
        rc = reason ? pn_envelope_put_reply_error(&h->scratch, req->id, reason, h->env_flags, e)
                    : pn_envelope_put_reply(&h->scratch, req->id, ok, term, len, h->env_flags, e);
        if (rc != 0) {                    /* the caller still gets an answer */
            char key[PN_LOGLINE_KEY_MAX]; /* a peer's call can cause it each time */
            snprintf(key, sizeof key, "reply %.40s", req->name);
            pn_log_limited(h, PN_LOG_ERROR, key, "handler %s: reply not sent: %s", req->name,
                           e->msg);
            h->scratch.len = 0;
            pn_err e2;
            if (pn_envelope_put_reply_error(&h->scratch, req->id,
                                            pn_reason_name(PN_REASON_HANDLER_CRASH), h->env_flags,
                                            &e2) == 0)
                pn_conn_queue_envelope(c, &h->scratch, &e2);
        } else {
            pn_err e2;
            pn_conn_queue_envelope(c, &h->scratch, &e2);
        }
    }
    pn_request_free(req);
    return rc;
}

int pn_request_reply(pn_request *req, const uint8_t *value, size_t len, pn_err *e) {
    return answer(req, 1, NULL, value, len, e);
}
int pn_request_reply_error(pn_request *req, const char *reason, pn_err *e) {
    return answer(req, 0, reason, NULL, 0, e);
}
int pn_request_reply_error_term(pn_request *req, const uint8_t *reason, size_t len, pn_err *e) {
    return answer(req, 0, NULL, reason, len, e);
}
