/*
 * mDNS / DNS-SD on libuv: the host advertises `<instance>._peernet._tcp.local`
 * (PTR, SRV with the listening port, TXT "v=1" "key=<hex>", A/AAAA of a host
 * name of its own) and browses for the same service.
 *
 * One UDP socket per family on the mDNS port (shared with any system
 * responder through SO_REUSEADDR), joined to 224.0.0.251 / ff02::fb on every
 * interface, with multicast loop on so hosts on one machine see each other.
 * Announcements go out once per interface, each carrying that interface's
 * own addresses; answers to queries are the same announcement after the
 * 20-120 ms delay of RFC 6762 §6, which also merges a burst of queries.
 * Legacy unicast queries (source port not the mDNS port) get a direct
 * answer. Probing and conflict resolution are left out: the instance and
 * host names carry the key, so two hosts never claim the same name.
 *
 * Browsing keeps a small LRU table of instances being resolved: a PTR names
 * an instance, its SRV gives port and target, its TXT the key, the target's
 * A/AAAA the address. Whatever is missing is asked for once; a complete
 * entry goes to pn_found_note, a goodbye (TTL 0) to
 * pn_found_gone.
 */
#include <net/if.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mdns.h"
#include "net.h"

#define PN_MDNS_IFACES_MAX 32                /* interfaces announced on */
#define PN_MDNS_IF_ADDRS 8                   /* addresses per family and interface */
#define PN_MDNS_KNOWN_MAX 64                 /* instances being resolved or resolved */
#define PN_MDNS_OUT_MAX 1400                 /* a datagram we build: fits the usual MTU */
#define PN_MDNS_TTL_HOST 120                 /* SRV, A, AAAA (RFC 6762 §10) */
#define PN_MDNS_TTL_OTHER 4500               /* PTR, TXT */
#define PN_MDNS_ANNOUNCES 3                  /* at start and on change, 1 s then 2 s apart */
#define PN_MDNS_QUERY_MAX_MS (3600u * 1000u) /* browse re-query interval doubles to 1 h */
#define PN_MDNS_FOLLOWUP_MS 100              /* resolve queries: one per 100 ms ... */
#define PN_MDNS_FOLLOWUP_BURST 8             /* ... after a burst of 8 */
#define PN_MDNS_LEGACY_MS 100         /* direct answers to plain resolvers: one per 100 ms ... */
#define PN_MDNS_LEGACY_BURST 8        /* ... after a burst of 8 */
#define PN_MDNS_MULTICAST_GAP_MS 1000 /* answers to queries: at most one a second (RFC 6762 §6) */
#define PN_MDNS_GAVE_MAX 4 /* addresses of one instance passed to the host, for its goodbye */

typedef struct pn_mdns_known {
    int used;
    uint64_t touched; /* uv_now(), for LRU */
    uint8_t instance[PN_MDNS_NAME_MAX];
    uint8_t target[PN_MDNS_NAME_MAX]; /* from SRV; "" until known */
    uint16_t port;                    /* 0 until known */
    int has_key;
    uint8_t key[PN_KEY_LEN];
    char ip[INET6_ADDRSTRLEN + IF_NAMESIZE + 3]; /* "1.2.3.4", "[v6]" or "[fe80::x%if]" */
    int ip_rank;                                 /* 2 * addr_kind() + sender, of ip */
    char addr[PN_ADDR_MAX];                      /* what was passed to the host, "" when nothing */
    int asked;                                   /* ASK_* already sent for it */
    /* Every address passed for it (a better one can follow the first):
     * the host forgets only the address a goodbye names, so the goodbye
     * names each of them. Oldest first. */
    char gave[PN_MDNS_GAVE_MAX][PN_ADDR_MAX];
    int ngave;
} pn_mdns_known;

enum { ASK_SRV_TXT = 1, ASK_ADDR = 2 };

typedef struct pn_mdns_if {
    char name[64];
    uint8_t v4[PN_MDNS_IF_ADDRS][4];
    uint8_t v6[PN_MDNS_IF_ADDRS][16];
    int n4, n6;
} pn_mdns_if;

struct pn_mdns {
    pn_host *host;
    uv_udp_t udp4, udp6;
    int has6, udp6_open;
    uv_timer_t announce, query, reply;
    pn_handles closing;
    uint16_t port;
    int announces_left;
    uint32_t query_ms;
    int reply_enum;       /* the delayed reply also answers service enumeration */
    uint64_t followup_at; /* uv_now() when followup_tokens was last refilled */
    int followup_tokens;  /* resolve queries that may leave now */
    uint64_t legacy_at;   /* the same bucket for direct (legacy unicast) answers */
    int legacy_tokens;
    uint64_t multicast_at;              /* uv_now() of the last multicast answer to a query */
    uint8_t service[PN_MDNS_NAME_MAX];  /* _peernet._tcp.local */
    uint8_t services[PN_MDNS_NAME_MAX]; /* _services._dns-sd._udp.local */
    uint8_t instance[PN_MDNS_NAME_MAX];
    uint8_t hostname[PN_MDNS_NAME_MAX]; /* pn-<key prefix>.local */
    uint8_t txt[128];
    size_t txtlen;
    pn_mdns_known known[PN_MDNS_KNOWN_MAX];
    pn_mdns_if ifs[PN_MDNS_IFACES_MAX];
    int nifs;
    pn_mdns_msg msg; /* parsed input */
    uint8_t rbuf[PN_MDNS_MSG_MAX];
    uint8_t obuf[PN_MDNS_OUT_MAX];
};

/* ---- interfaces ------------------------------------------------------- */

static void load_interfaces(pn_mdns *m) {
    uv_interface_address_t *a;
    int n;
    m->nifs = 0;
    if (uv_interface_addresses(&a, &n) != 0) return;
    for (int i = 0; i < n; i++) {
        int fam = a[i].address.address4.sin_family;
        if (fam != AF_INET && (fam != AF_INET6 || !m->has6)) continue;
        pn_mdns_if *f = NULL;
        for (int j = 0; j < m->nifs; j++)
            if (strcmp(m->ifs[j].name, a[i].name) == 0) f = &m->ifs[j];
        if (!f) {
            if (m->nifs == PN_MDNS_IFACES_MAX || strlen(a[i].name) >= sizeof f->name) continue;
            f = &m->ifs[m->nifs++];
            memset(f, 0, sizeof *f);
            strcpy(f->name, a[i].name);
        }
        if (fam == AF_INET && f->n4 < PN_MDNS_IF_ADDRS)
            memcpy(f->v4[f->n4++], &a[i].address.address4.sin_addr, 4);
        else if (fam == AF_INET6 && f->n6 < PN_MDNS_IF_ADDRS)
            memcpy(f->v6[f->n6++], &a[i].address.address6.sin6_addr, 16);
    }
    uv_free_interface_addresses(a, n);
}

static void join_groups(pn_mdns *m) {
    char ip[INET6_ADDRSTRLEN], zone[80];
    load_interfaces(m);
    for (int i = 0; i < m->nifs; i++) {
        pn_mdns_if *f = &m->ifs[i];
        /* Joining twice (a network change) says EADDRINUSE: harmless. */
        if (f->n4) {
            uv_inet_ntop(AF_INET, f->v4[0], ip, sizeof ip);
            int rc = uv_udp_set_membership(&m->udp4, "224.0.0.251", ip, UV_JOIN_GROUP);
            if (rc && rc != UV_EADDRINUSE)
                pn_log(m->host, PN_LOG_DEBUG, "mdns: join 224.0.0.251 on %s: %s", f->name,
                       uv_strerror(rc));
        }
        if (m->has6 && f->n6) {
            snprintf(zone, sizeof zone, "::%%%s", f->name);
            int rc = uv_udp_set_membership(&m->udp6, "ff02::fb", zone, UV_JOIN_GROUP);
            if (rc && rc != UV_EADDRINUSE)
                pn_log(m->host, PN_LOG_DEBUG, "mdns: join ff02::fb on %s: %s", f->name,
                       uv_strerror(rc));
        }
    }
}

/* ---- building our records --------------------------------------------- */

static void rec_init(pn_mdns_record *r, const uint8_t *name, uint16_t type, uint32_t ttl,
                     int flush) {
    memset(r, 0, sizeof *r);
    memcpy(r->name, name, pn_mdns_name_len(name));
    r->type = type;
    r->klass = PN_DNS_CLASS_IN;
    r->ttl = ttl;
    r->flush = flush;
}

/* Our answer: PTR (shared: no cache-flush bit), SRV, TXT and the given
 * addresses. ttl_cap 0 leaves the TTLs alone; goodbye sends them as 0.
 * Returns the length, 0 when it did not fit. */
static size_t build_answer(pn_mdns *m, uint16_t id, const pn_mdns_msg *asked, int goodbye,
                           uint32_t ttl_cap, int with_enum, const pn_mdns_if *const *ifs,
                           int nifs) {
    pn_mdns_out o;
    pn_mdns_record r;
    pn_err e;
    uint32_t th = goodbye ? 0 : PN_MDNS_TTL_HOST, to = goodbye ? 0 : PN_MDNS_TTL_OTHER;
    if (ttl_cap && th > ttl_cap) th = ttl_cap;
    if (ttl_cap && to > ttl_cap) to = ttl_cap;
    /* Legacy unicast answers are plain DNS: no cache-flush bits. */
    int flush = ttl_cap == 0;
    pn_mdns_out_init(&o, m->obuf, sizeof m->obuf, id, PN_DNS_FLAG_QR | PN_DNS_FLAG_AA);
    for (size_t i = 0; asked && i < asked->nquestions; i++)
        pn_mdns_out_question(&o, &asked->questions[i], &e);
    rec_init(&r, m->service, PN_DNS_PTR, to, 0);
    memcpy(r.target, m->instance, sizeof r.target);
    pn_mdns_out_record(&o, &r, &e);
    if (with_enum) {
        rec_init(&r, m->services, PN_DNS_PTR, to, 0);
        memcpy(r.target, m->service, sizeof r.target);
        pn_mdns_out_record(&o, &r, &e);
    }
    rec_init(&r, m->instance, PN_DNS_SRV, th, flush);
    r.port = (uint16_t)pn_host_port(m->host);
    memcpy(r.target, m->hostname, sizeof r.target);
    pn_mdns_out_record(&o, &r, &e);
    rec_init(&r, m->instance, PN_DNS_TXT, to, flush);
    r.rdata = m->txt;
    r.rdlen = (uint16_t)m->txtlen;
    pn_mdns_out_record(&o, &r, &e);
    pn_mdns_if only; /* a host listening on one address advertises that one */
    const pn_mdns_if *onlyp = &only;
    memset(&only, 0, sizeof only);
    if (uv_inet_pton(AF_INET, m->host->listen_ip, only.v4[0]) == 0)
        only.n4 = 1;
    else if (uv_inet_pton(AF_INET6, m->host->listen_ip, only.v6[0]) == 0)
        only.n6 = 1;
    if (only.n4 || only.n6) {
        ifs = &onlyp;
        nifs = 1;
    }
    for (int i = 0; i < nifs; i++) {
        for (int j = 0; j < ifs[i]->n4; j++) {
            rec_init(&r, m->hostname, PN_DNS_A, th, flush);
            memcpy(r.addr, ifs[i]->v4[j], 4);
            pn_mdns_out_record(&o, &r, &e);
        }
        for (int j = 0; j < ifs[i]->n6; j++) {
            rec_init(&r, m->hostname, PN_DNS_AAAA, th, flush);
            memcpy(r.addr, ifs[i]->v6[j], 16);
            pn_mdns_out_record(&o, &r, &e);
        }
    }
    size_t n = pn_mdns_out_finish(&o);
    if (n == 0) pn_log(m->host, PN_LOG_WARN, "mdns: answer does not fit: %s", e.msg);
    return n;
}

static void send_to(pn_mdns *m, uv_udp_t *u, const struct sockaddr *to, size_t len) {
    uv_buf_t b = uv_buf_init((char *)m->obuf, (unsigned)len);
    /* try_send: the datagram leaves now, while the multicast interface set
     * for it is still in force (and before a closing socket goes away). */
    int rc = uv_udp_try_send(u, &b, 1, to);
    if (rc < 0)
        pn_log(m->host, PN_LOG_DEBUG, "mdns: send: %s", uv_strerror(rc));
    else
        m->host->stats.mdns_out++;
}

/* The n bytes in m->obuf to the groups, out of interface f. */
static void send_groups(pn_mdns *m, const pn_mdns_if *f, size_t n) {
    struct sockaddr_in g4;
    struct sockaddr_in6 g6;
    char ip[INET6_ADDRSTRLEN], zone[80];
    if (f->n4) {
        uv_ip4_addr("224.0.0.251", m->port, &g4);
        uv_inet_ntop(AF_INET, f->v4[0], ip, sizeof ip);
        if (uv_udp_set_multicast_interface(&m->udp4, ip) == 0)
            send_to(m, &m->udp4, (const struct sockaddr *)&g4, n);
    }
    if (m->has6 && f->n6) {
        uv_ip6_addr("ff02::fb", m->port, &g6);
        snprintf(zone, sizeof zone, "::%%%s", f->name);
        if (uv_udp_set_multicast_interface(&m->udp6, zone) == 0)
            send_to(m, &m->udp6, (const struct sockaddr *)&g6, n);
    }
}

/* Sends our records on every interface, each with that interface's addresses. */
static void announce_all(pn_mdns *m, int goodbye, int with_enum) {
    if (pn_host_port(m->host) == 0) return; /* nothing to advertise */
    load_interfaces(m);
    for (int i = 0; i < m->nifs; i++) {
        const pn_mdns_if *f = &m->ifs[i];
        size_t n = build_answer(m, 0, NULL, goodbye, 0, with_enum, &f, 1);
        if (n) send_groups(m, f, n);
    }
}

static void send_query(pn_mdns *m, const pn_mdns_question *qs, size_t nq) {
    pn_mdns_out o;
    pn_err e;
    pn_mdns_out_init(&o, m->obuf, sizeof m->obuf, 0, 0);
    for (size_t i = 0; i < nq; i++)
        pn_mdns_out_question(&o, &qs[i], &e);
    size_t n = pn_mdns_out_finish(&o);
    if (n == 0) return;
    load_interfaces(m);
    for (int i = 0; i < m->nifs; i++)
        send_groups(m, &m->ifs[i], n);
}

/* ---- timers ------------------------------------------------------------ */

static void on_announce(uv_timer_t *t) {
    pn_mdns *m = t->data;
    announce_all(m, 0, 0);
    if (--m->announces_left > 0)
        uv_timer_start(&m->announce, on_announce,
                       1000u << (PN_MDNS_ANNOUNCES - 1 - m->announces_left), 0);
}

static void on_query(uv_timer_t *t) {
    pn_mdns *m = t->data;
    pn_mdns_question q;
    memset(&q, 0, sizeof q);
    memcpy(q.name, m->service, sizeof q.name);
    q.type = PN_DNS_PTR;
    q.klass = PN_DNS_CLASS_IN;
    send_query(m, &q, 1);
    uv_timer_start(&m->query, on_query, m->query_ms, 0);
    m->query_ms = m->query_ms >= PN_MDNS_QUERY_MAX_MS / 2 ? PN_MDNS_QUERY_MAX_MS : m->query_ms * 2;
}

static void on_reply(uv_timer_t *t) {
    pn_mdns *m = t->data;
    m->multicast_at = uv_now(m->host->loop);
    announce_all(m, 0, m->reply_enum);
    m->reply_enum = 0;
}

void pn_mdns_network_changed(pn_mdns *m) {
    if (!m) return;
    join_groups(m);
    m->announces_left = PN_MDNS_ANNOUNCES;
    uv_timer_start(&m->announce, on_announce, 0, 0);
    m->query_ms = 1000;
    uv_timer_start(&m->query, on_query, 0, 0);
}

/* ---- answering queries -------------------------------------------------- */

/* A token bucket: one token per period_ms, at most burst; 1 when a token
 * was taken. What strangers make us send goes through one. */
static void bucket_refill(uint64_t *at, int *tokens, uint64_t now, uint64_t period_ms, int burst) {
    uint64_t refill = (now - *at) / period_ms;
    if (refill) {
        *at = now;
        *tokens = refill >= (uint64_t)burst ? burst : *tokens + (int)refill;
        if (*tokens > burst) *tokens = burst;
    }
}

static int bucket_take(uint64_t *at, int *tokens, uint64_t now, uint64_t period_ms, int burst) {
    bucket_refill(at, tokens, now, period_ms, burst);
    if (*tokens <= 0) return 0;
    (*tokens)--;
    return 1;
}

/* Known-answer suppression (RFC 6762 §7.1): the asker already holds our PTR
 * with at least half its TTL left. */
static int ptr_known(const pn_mdns *m, const pn_mdns_msg *q) {
    for (size_t i = 0; i < q->nrecords; i++) {
        const pn_mdns_record *r = &q->records[i];
        if (r->type == PN_DNS_PTR && r->ttl >= PN_MDNS_TTL_OTHER / 2 &&
            pn_mdns_name_eq(r->name, m->service) && pn_mdns_name_eq(r->target, m->instance))
            return 1;
    }
    return 0;
}

static void handle_query(pn_mdns *m, const pn_mdns_msg *q, const struct sockaddr *from) {
    int want = 0, want_enum = 0;
    for (size_t i = 0; i < q->nquestions; i++) {
        const pn_mdns_question *qq = &q->questions[i];
        int any = qq->type == PN_DNS_ANY;
        if (qq->klass != PN_DNS_CLASS_IN && qq->klass != PN_DNS_ANY) continue;
        if ((any || qq->type == PN_DNS_PTR) && pn_mdns_name_eq(qq->name, m->service) &&
            !ptr_known(m, q))
            want = 1;
        else if ((any || qq->type == PN_DNS_PTR) && pn_mdns_name_eq(qq->name, m->services))
            want = want_enum = 1;
        else if ((any || qq->type == PN_DNS_SRV || qq->type == PN_DNS_TXT) &&
                 pn_mdns_name_eq(qq->name, m->instance))
            want = 1;
        else if ((any || qq->type == PN_DNS_A || qq->type == PN_DNS_AAAA) &&
                 pn_mdns_name_eq(qq->name, m->hostname))
            want = 1;
    }
    if (!want || pn_host_port(m->host) == 0) return;
    uint16_t sport = ntohs(((const struct sockaddr_in *)from)->sin_port);
    if (sport != m->port) {
        /* Legacy unicast (RFC 6762 §6.7): a plain resolver asked from its own
         * port; answer it directly, id and question echoed, TTLs at most 10 s. */
        const pn_mdns_if *ifs[PN_MDNS_IFACES_MAX];
        uint64_t now = uv_now(m->host->loop);
        if (!bucket_take(&m->legacy_at, &m->legacy_tokens, now, PN_MDNS_LEGACY_MS,
                         PN_MDNS_LEGACY_BURST))
            return;
        load_interfaces(m);
        for (int i = 0; i < m->nifs; i++)
            ifs[i] = &m->ifs[i];
        size_t n = build_answer(m, q->id, q, 0, 10, want_enum, ifs, m->nifs);
        if (n) send_to(m, from->sa_family == AF_INET6 ? &m->udp6 : &m->udp4, from, n);
        return;
    }
    m->reply_enum |= want_enum;
    if (!uv_is_active((uv_handle_t *)&m->reply)) {
        /* 20-120 ms, and never sooner than a second after the last answer. */
        uint64_t delay = 20 + randombytes_uniform(101), now = uv_now(m->host->loop);
        uint64_t since = now - m->multicast_at;
        if (m->multicast_at && since < PN_MDNS_MULTICAST_GAP_MS &&
            delay < PN_MDNS_MULTICAST_GAP_MS - since)
            delay = PN_MDNS_MULTICAST_GAP_MS - since;
        uv_timer_start(&m->reply, on_reply, delay, 0);
    }
}

/* ---- browsing ----------------------------------------------------------- */

static pn_mdns_known *known_find(pn_mdns *m, const uint8_t *instance) {
    for (int i = 0; i < PN_MDNS_KNOWN_MAX; i++)
        if (m->known[i].used && pn_mdns_name_eq(m->known[i].instance, instance))
            return &m->known[i];
    return NULL;
}

static pn_mdns_known *known_get(pn_mdns *m, const uint8_t *instance) {
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

static void known_gone(pn_mdns *m, const uint8_t *instance) {
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

static int is_ours(const pn_mdns *m, const pn_mdns_known *k) {
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
static void take_names(pn_mdns *m, const pn_mdns_msg *msg, uint64_t now, touched_set *t) {
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

static void take_data(pn_mdns *m, const pn_mdns_msg *msg, const struct sockaddr *from, uint64_t now,
                      touched_set *t) {
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
static void report_or_ask(pn_mdns *m, pn_mdns_known *k, int can_ask, pn_mdns_question *qs,
                          size_t *nq) {
    if (k->port && k->has_key && k->ip[0]) {
        char addr[PN_ADDR_MAX];
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

static void handle_response(pn_mdns *m, const pn_mdns_msg *msg, const struct sockaddr *from) {
    uint64_t now = uv_now(m->host->loop);
    touched_set t = {.n = 0};
    take_names(m, msg, now, &t);
    take_data(m, msg, from, now, &t);
    pn_mdns_question qs[PN_MDNS_QUESTIONS_MAX];
    size_t nq = 0;
    /* A stranger can name new instances in every packet: what we ask back
     * is a token bucket's worth, so the LAN never hears more from us. */
    bucket_refill(&m->followup_at, &m->followup_tokens, now, PN_MDNS_FOLLOWUP_MS,
                  PN_MDNS_FOLLOWUP_BURST);
    int can_ask = m->followup_tokens > 0;
    for (int i = 0; i < t.n && !m->host->closing; i++)
        if (!is_ours(m, t.k[i])) report_or_ask(m, t.k[i], can_ask, qs, &nq);
    if (nq && !m->host->closing) {
        m->followup_tokens--;
        send_query(m, qs, nq);
    }
}

/* ---- receiving -------------------------------------------------------- */

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    pn_mdns *m = hd->data;
    *buf = uv_buf_init((char *)m->rbuf, sizeof m->rbuf);
}

void pn_mdns_feed(pn_mdns *m, const uint8_t *buf, size_t len, const struct sockaddr *from) {
    pn_err e;
    if (m->host->closing) return;
    m->host->stats.mdns_in++;
    if (pn_mdns_parse(&m->msg, buf, len, &e) != 0) {
        m->host->stats.mdns_rejected++;
        pn_log(m->host, PN_LOG_DEBUG, "mdns: packet dropped: %s", e.msg);
        return;
    }
    /* RFC 6762 §18: opcode and rcode other than 0 are ignored. */
    if (m->msg.flags & 0x780F) return;
    if (!(m->msg.flags & PN_DNS_FLAG_QR))
        handle_query(m, &m->msg, from);
    else if (ntohs(((const struct sockaddr_in *)from)->sin_port) == m->port)
        handle_response(m, &m->msg, from);
    /* else RFC 6762 §6: a response from another port is not mDNS; ignored */
}

static void on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags) {
    pn_mdns *m = u->data;
    if (nread <= 0 || !from || m->host->closing) return;
    if (flags & UV_UDP_PARTIAL) {
        m->host->stats.mdns_in++;
        m->host->stats.mdns_rejected++;
        pn_log(m->host, PN_LOG_DEBUG, "mdns: datagram over %d bytes dropped", PN_MDNS_MSG_MAX);
        return;
    }
    pn_mdns_feed(m, m->rbuf, (size_t)nread, from);
}

/* ---- lifecycle -------------------------------------------------------- */

static void on_closed(void *ud) {
    pn_mdns *m = ud;
    pn_host *h = m->host;
    free(m);
    pn_host_unref(h);
}

static int open_udp(pn_mdns *m, uv_udp_t *u, const struct sockaddr *sa, unsigned flags) {
    uv_udp_init(m->host->loop, u);
    u->data = m;
    pn_host_adopt(m->host, (uv_handle_t *)u);
    uv_unref((uv_handle_t *)u); /* discovery alone does not keep a loop alive */
    int rc = uv_udp_bind(u, sa, flags | UV_UDP_REUSEADDR);
    if (rc == 0) rc = uv_udp_set_multicast_loop(u, 1);
    if (rc == 0) rc = uv_udp_set_multicast_ttl(u, 255);
    if (rc == 0) rc = uv_udp_recv_start(u, on_alloc, on_recv);
    return rc;
}

static int make_names(pn_mdns *m, const char *instance, pn_err *e) {
    char hex[2 * PN_KEY_LEN + 1], label[80];
    uint8_t local[PN_MDNS_NAME_MAX];
    sodium_bin2hex(hex, sizeof hex, m->host->pub, PN_KEY_LEN);
    int rc = pn_mdns_name_from_text(m->service, "_peernet._tcp.local", e);
    if (rc == 0) rc = pn_mdns_name_from_text(m->services, "_services._dns-sd._udp.local", e);
    if (rc == 0) rc = pn_mdns_name_from_text(local, "local", e);
    if (rc != 0) return rc;
    if (!instance) {
        snprintf(label, sizeof label, "peernet-%.16s", hex);
        instance = label;
    }
    size_t n = strlen(instance); /* 1..PN_MDNS_INSTANCE_MAX: config.c checked it */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)instance[i] < 0x20 || instance[i] == 0x7F)
            return pn_err_set(e, PN_EINVAL, "mdns instance name holds a control character");
    rc = pn_mdns_name_prepend(m->instance, (const uint8_t *)instance, n, m->service, e);
    snprintf(label, sizeof label, "pn-%.16s", hex);
    if (rc == 0) rc = pn_mdns_name_prepend(m->hostname, (const uint8_t *)label, 19, local, e);
    snprintf(label, sizeof label, "key=%s", hex);
    if (rc == 0) rc = pn_mdns_txt_add(m->txt, sizeof m->txt, &m->txtlen, "v=1", e);
    if (rc == 0) rc = pn_mdns_txt_add(m->txt, sizeof m->txt, &m->txtlen, label, e);
    return rc;
}

pn_mdns *pn_mdns_start(pn_host *h, const char *instance, uint16_t port, pn_err *e) {
    pn_mdns *m = calloc(1, sizeof *m);
    if (!m) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    m->host = h;
    m->port = port ? port : 5353;
    m->followup_tokens = PN_MDNS_FOLLOWUP_BURST;
    m->legacy_tokens = PN_MDNS_LEGACY_BURST;
    if (make_names(m, instance, e) != 0) {
        free(m);
        return NULL;
    }
    h->refs++; /* dropped when the last handle has closed */
    uv_timer_init(h->loop, &m->announce);
    uv_timer_init(h->loop, &m->query);
    uv_timer_init(h->loop, &m->reply);
    uv_timer_t *timers[] = {&m->announce, &m->query, &m->reply};
    for (int i = 0; i < 3; i++) {
        timers[i]->data = m;
        pn_host_adopt(h, (uv_handle_t *)timers[i]);
        uv_unref((uv_handle_t *)timers[i]);
    }
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    uv_ip4_addr("0.0.0.0", m->port, &a4);
    uv_ip6_addr("::", m->port, &a6);
    int rc = open_udp(m, &m->udp4, (const struct sockaddr *)&a4, 0);
    if (rc != 0) {
        pn_err_set(e, PN_EIO, "mdns: UDP port %u: %s", m->port, uv_strerror(rc));
        pn_mdns_close(m, 0);
        return NULL;
    }
    m->udp6_open = 1;
    m->has6 = open_udp(m, &m->udp6, (const struct sockaddr *)&a6, UV_UDP_IPV6ONLY) == 0;
    if (!m->has6) pn_log(h, PN_LOG_DEBUG, "mdns: no IPv6 socket; IPv4 only");
    pn_mdns_network_changed(m);
    return m;
}

void pn_mdns_close(pn_mdns *m, int goodbye) {
    if (goodbye) announce_all(m, 1, 0);
    uv_handle_t *hs[] = {PN_HANDLE(&m->announce), PN_HANDLE(&m->query), PN_HANDLE(&m->reply),
                         PN_HANDLE(&m->udp4), m->udp6_open ? PN_HANDLE(&m->udp6) : NULL};
    pn_handles_close(&m->closing, hs, sizeof hs / sizeof hs[0], on_closed, m);
}
