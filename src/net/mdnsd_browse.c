/*
 * mDNS browsing: a small LRU table of the instances being resolved from
 * the answers of others. A PTR names an instance, its SRV gives port and
 * target, its TXT the key, the target's A/AAAA the address. Whatever is
 * missing is asked for once; a complete entry goes to pn_found_note, a
 * goodbye (TTL 0) to pn_found_gone. The sockets and the responder are
 * mdnsd.c's.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "mdnsd.h"

static pn_mdns_known *known_find(pn_mdnsd *m, const uint8_t *instance) {
    for (int i = 0; i < PN_MDNS_KNOWN_MAX; i++)
        if (m->known[i].used && pn_mdns_name_eq(m->known[i].instance, instance))
            return &m->known[i];
    return NULL;
}

static pn_mdns_known *known_get(pn_mdnsd *m, const uint8_t *instance) {
    pn_mdns_known *k = known_find(m, instance), *old = NULL;
    if (k) return k;
    for (int i = 0; i < PN_MDNS_KNOWN_MAX && !k; i++) {
        if (!m->known[i].used)
            k = &m->known[i];
        else if (!old || m->known[i].touched < old->touched)
            old = &m->known[i];
    }
    if (!k) k = old; /* full: the least recently heard of goes */
    memset(k, 0, sizeof *k);
    k->used = 1;
    memcpy(k->instance, instance, pn_mdns_name_len(instance));
    return k;
}

static void known_gone(pn_mdnsd *m, const uint8_t *instance) {
    pn_mdns_known *k = known_find(m, instance);
    if (!k) return;
    for (int i = 0; k->has_key && i < k->ngave; i++)
        pn_found_gone(m->host, k->key, k->gave[i], "mdns");
    memset(k, 0, sizeof *k);
}

/* Remembers k->addr among the addresses passed for k (the oldest goes
 * when full: the host keeps no more of a peer's addresses either). */
static void known_gave(pn_mdns_known *k) {
    for (int i = 0; i < k->ngave; i++)
        if (strcmp(k->gave[i], k->addr) == 0) return;
    if (k->ngave == PN_MDNS_GAVE_MAX) {
        memmove(k->gave[0], k->gave[1], sizeof k->gave[0] * (PN_MDNS_GAVE_MAX - 1));
        k->ngave--;
    }
    snprintf(k->gave[k->ngave++], sizeof k->gave[0], "%s", k->addr);
}

static int is_ours(const pn_mdnsd *m, const pn_mdns_known *k) {
    return pn_mdns_name_eq(k->instance, m->instance) ||
           (k->has_key && memcmp(k->key, m->host->pub, PN_KEY_LEN) == 0);
}

static void take_txt(pn_mdns_known *k, const pn_mdns_record *r) {
    const uint8_t *v;
    size_t n;
    uint8_t key[PN_KEY_LEN];
    /* A later protocol version may change what the key means: skip it. */
    if (pn_mdns_txt_get(r->rdata, r->rdlen, "v", &v, &n) && !(n == 1 && v[0] == '1')) return;
    if (!pn_mdns_txt_get(r->rdata, r->rdlen, "key", &v, &n) || n != 2 * PN_KEY_LEN) return;
    if (sodium_hex2bin(key, sizeof key, (const char *)v, n, NULL, NULL, NULL) != 0) return;
    memcpy(k->key, key, PN_KEY_LEN);
    k->has_key = 1;
}

/* Which address of an instance to dial: IPv4 before global IPv6 before
 * link-local IPv6 (3, 2, 1; 0 is not usable), and *sender says it is the
 * address the packet came from. A link-local AAAA is usable only when the
 * packet itself came over a link-local IPv6 path, whose scope id names the
 * interface it arrived on: the address is on that link, so that interface
 * is its zone. Over IPv4, or from a global source, nothing says which link
 * it belongs to; a global address never gets a zone. */
static int addr_kind(const pn_mdns_record *r, const struct sockaddr *from, int *sender) {
    const struct sockaddr_in6 *f6 = (const struct sockaddr_in6 *)from;
    int v6from = from->sa_family == AF_INET6;
    if (r->type == PN_DNS_A) {
        *sender = from->sa_family == AF_INET &&
                  memcmp(&((const struct sockaddr_in *)from)->sin_addr, r->addr, 4) == 0;
        return 3;
    }
    *sender = v6from && memcmp(&f6->sin6_addr, r->addr, 16) == 0;
    if (!(r->addr[0] == 0xfe && (r->addr[1] & 0xc0) == 0x80)) return 2;
    if (!v6from || !IN6_IS_ADDR_LINKLOCAL(&f6->sin6_addr) || f6->sin6_scope_id == 0) return 0;
    return 1;
}

static void take_addr(pn_mdns_known *k, const pn_mdns_record *r, const struct sockaddr *from) {
    char ip[INET6_ADDRSTRLEN], zone[IF_NAMESIZE];
    int sender, kind = addr_kind(r, from, &sender);
    int rank = 2 * kind + sender;
    /* A better address replaces what we have; an equal one only when it is
     * the sender's own (the sender may have moved). */
    if (kind == 0 || (k->ip[0] && (rank < k->ip_rank || (rank == k->ip_rank && !sender)))) return;
    uv_inet_ntop(kind == 3 ? AF_INET : AF_INET6, r->addr, ip, sizeof ip);
    if (kind == 3)
        snprintf(k->ip, sizeof k->ip, "%s", ip);
    else if (kind == 2)
        snprintf(k->ip, sizeof k->ip, "[%s]", ip);
    else if (if_indextoname(((const struct sockaddr_in6 *)from)->sin6_scope_id, zone))
        snprintf(k->ip, sizeof k->ip, "[%s%%%s]", ip, zone);
    else
        return; /* the interface has gone since */
    k->ip_rank = rank;
}

/* The instances a response told us something of, each once. */
typedef struct {
    pn_mdns_known *k[PN_MDNS_RECORDS_MAX];
    int n;
} touched_set;

static void touch(touched_set *t, pn_mdns_known *k) {
    for (int i = 0; i < t->n; i++)
        if (t->k[i] == k) return;
    if (t->n < PN_MDNS_RECORDS_MAX) t->k[t->n++] = k;
}

/* Names first (PTR and SRV), then what hangs off them (take_data), so
 * records may come in any order within the message. */
static void take_names(pn_mdnsd *m, const pn_mdns_msg *msg, uint64_t now, touched_set *t) {
    for (size_t i = 0; i < msg->nrecords; i++) {
        const pn_mdns_record *r = &msg->records[i];
        const uint8_t *inst = NULL;
        if (r->type == PN_DNS_PTR && pn_mdns_name_eq(r->name, m->service) &&
            pn_mdns_name_child_of(r->target, m->service, NULL, NULL))
            inst = r->target;
        else if (r->type == PN_DNS_SRV && pn_mdns_name_child_of(r->name, m->service, NULL, NULL))
            inst = r->name;
        if (!inst) continue;
        if (r->ttl == 0) {
            known_gone(m, inst);
            continue;
        }
        pn_mdns_known *k = known_get(m, inst);
        k->touched = now;
        if (r->type == PN_DNS_SRV) {
            k->port = r->port;
            memcpy(k->target, r->target, sizeof k->target);
        }
        touch(t, k);
    }
}

static void take_data(pn_mdnsd *m, const pn_mdns_msg *msg, const struct sockaddr *from,
                      uint64_t now, touched_set *t) {
    for (size_t i = 0; i < msg->nrecords; i++) {
        const pn_mdns_record *r = &msg->records[i];
        if (r->ttl == 0) continue;
        if (r->type == PN_DNS_TXT) {
            pn_mdns_known *k = known_find(m, r->name);
            if (k) take_txt(k, r);
        } else if (r->type == PN_DNS_A || r->type == PN_DNS_AAAA) {
            for (int j = 0; j < PN_MDNS_KNOWN_MAX; j++) {
                pn_mdns_known *k = &m->known[j];
                if (k->used && k->target[0] && pn_mdns_name_eq(k->target, r->name)) {
                    take_addr(k, r, from);
                    k->touched = now;
                    touch(t, k);
                }
            }
        }
    }
}

/* A whole instance goes to the host; for one with something missing the
 * question is added to qs (once per instance and kind). */
static void report_or_ask(pn_mdnsd *m, pn_mdns_known *k, int can_ask, pn_mdns_question *qs,
                          size_t *nq) {
    if (k->port && k->has_key && k->ip[0]) {
        char addr[PN_ADDR_MAX + 1];
        int n = snprintf(addr, sizeof addr, "%s:%u", k->ip, k->port);
        if (n > 0 && (size_t)n < sizeof addr && strcmp(addr, k->addr) != 0) {
            snprintf(k->addr, sizeof k->addr, "%s", addr);
            known_gave(k);
            pn_found_note(m->host, k->key, k->addr, "mdns");
        }
        return;
    }
    int what = !k->port || !k->has_key ? ASK_SRV_TXT : ASK_ADDR;
    if (!can_ask || (k->asked & what) || *nq == PN_MDNS_QUESTIONS_MAX) return;
    k->asked |= what;
    pn_mdns_question *q = &qs[(*nq)++];
    memset(q, 0, sizeof *q);
    if (what == ASK_SRV_TXT) {
        memcpy(q->name, k->instance, sizeof q->name);
        q->type = PN_DNS_ANY; /* SRV and TXT in one question */
    } else {
        memcpy(q->name, k->target, sizeof q->name);
        q->type = PN_DNS_A;
    }
    q->klass = PN_DNS_CLASS_IN;
}

void pn_mdnsd_browse_response(pn_mdnsd *m, const pn_mdns_msg *msg, const struct sockaddr *from) {
    uint64_t now = uv_now(m->host->loop);
    touched_set t = {.n = 0};
    take_names(m, msg, now, &t);
    take_data(m, msg, from, now, &t);
    pn_mdns_question qs[PN_MDNS_QUESTIONS_MAX];
    size_t nq = 0;
    /* A stranger can name new instances in every packet: what we ask back
     * is a token bucket's worth, so the LAN never hears more from us. */
    pn_mdnsd_bucket_refill(&m->followup_at, &m->followup_tokens, now, PN_MDNS_FOLLOWUP_MS,
                           PN_MDNS_FOLLOWUP_BURST);
    int can_ask = m->followup_tokens > 0;
    for (int i = 0; i < t.n && !m->host->closing; i++)
        if (!is_ours(m, t.k[i])) report_or_ask(m, t.k[i], can_ask, qs, &nq);
    if (nq && !m->host->closing) {
        m->followup_tokens--;
        pn_mdnsd_send_query(m, qs, nq);
    }
}
