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
 * Browsing, what the answers of others tell, is mdnsd_browse.c's.
 */
#include <net/if.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mdnsd.h"

/* ---- interfaces ------------------------------------------------------- */

static void load_interfaces(pn_mdnsd *m) {
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

static void join_groups(pn_mdnsd *m) {
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
static size_t build_answer(pn_mdnsd *m, uint16_t id, const pn_mdns_msg *asked, int goodbye,
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
    if (n == 0) /* once per query heard */
        pn_log_limited(m->host, PN_LOG_WARN, "mdns answer", "mdns: answer does not fit: %s", e.msg);
    return n;
}

static void send_to(pn_mdnsd *m, uv_udp_t *u, const struct sockaddr *to, size_t len) {
    uv_buf_t b = uv_buf_init((char *)m->obuf, (unsigned)len);
    /* try_send: the datagram leaves now, while the multicast interface set
     * for it is still in force (and before a closing socket goes away). */
    int rc = uv_udp_try_send(u, &b, 1, to);
    if (rc < 0)
        pn_log_limited(m->host, PN_LOG_DEBUG, "mdns send", "mdns: send: %s", uv_strerror(rc));
    else
        m->host->stats.mdns_out++;
}

/* The n bytes in m->obuf to the groups, out of interface f. */
static void send_groups(pn_mdnsd *m, const pn_mdns_if *f, size_t n) {
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
static void announce_all(pn_mdnsd *m, int goodbye, int with_enum) {
    if (pn_host_port(m->host) == 0) return; /* nothing to advertise */
    load_interfaces(m);
    for (int i = 0; i < m->nifs; i++) {
        const pn_mdns_if *f = &m->ifs[i];
        size_t n = build_answer(m, 0, NULL, goodbye, 0, with_enum, &f, 1);
        if (n) send_groups(m, f, n);
    }
}

void pn_mdnsd_send_query(pn_mdnsd *m, const pn_mdns_question *qs, size_t nq) {
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
    pn_mdnsd *m = t->data;
    announce_all(m, 0, 0);
    if (--m->announces_left > 0)
        uv_timer_start(&m->announce, on_announce,
                       1000u << (PN_MDNS_ANNOUNCES - 1 - m->announces_left), 0);
}

static void on_query(uv_timer_t *t) {
    pn_mdnsd *m = t->data;
    pn_mdns_question q;
    memset(&q, 0, sizeof q);
    memcpy(q.name, m->service, sizeof q.name);
    q.type = PN_DNS_PTR;
    q.klass = PN_DNS_CLASS_IN;
    pn_mdnsd_send_query(m, &q, 1);
    uv_timer_start(&m->query, on_query, m->query_ms, 0);
    m->query_ms = m->query_ms >= PN_MDNS_QUERY_MAX_MS / 2 ? PN_MDNS_QUERY_MAX_MS : m->query_ms * 2;
}

static void on_reply(uv_timer_t *t) {
    pn_mdnsd *m = t->data;
    m->multicast_at = uv_now(m->host->loop);
    announce_all(m, 0, m->reply_enum);
    m->reply_enum = 0;
}

void pn_mdnsd_network_changed(pn_mdnsd *m) {
    if (!m) return;
    join_groups(m);
    m->announces_left = PN_MDNS_ANNOUNCES;
    uv_timer_start(&m->announce, on_announce, 0, 0);
    m->query_ms = 1000;
    uv_timer_start(&m->query, on_query, 0, 0);
}

/* ---- answering queries -------------------------------------------------- */

void pn_mdnsd_bucket_refill(uint64_t *at, int *tokens, uint64_t now, uint64_t period_ms,
                            int burst) {
    uint64_t refill = (now - *at) / period_ms;
    if (refill) {
        *at = now;
        *tokens = refill >= (uint64_t)burst ? burst : *tokens + (int)refill;
        if (*tokens > burst) *tokens = burst;
    }
}

/* 1 when a token was taken. */
static int bucket_take(uint64_t *at, int *tokens, uint64_t now, uint64_t period_ms, int burst) {
    pn_mdnsd_bucket_refill(at, tokens, now, period_ms, burst);
    if (*tokens <= 0) return 0;
    (*tokens)--;
    return 1;
}

/* Known-answer suppression (RFC 6762 §7.1): the asker already holds our PTR
 * with at least half its TTL left. */
static int ptr_known(const pn_mdnsd *m, const pn_mdns_msg *q) {
    for (size_t i = 0; i < q->nrecords; i++) {
        const pn_mdns_record *r = &q->records[i];
        if (r->type == PN_DNS_PTR && r->ttl >= PN_MDNS_TTL_OTHER / 2 &&
            pn_mdns_name_eq(r->name, m->service) && pn_mdns_name_eq(r->target, m->instance))
            return 1;
    }
    return 0;
}

static void handle_query(pn_mdnsd *m, const pn_mdns_msg *q, const struct sockaddr *from) {
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

/* ---- receiving -------------------------------------------------------- */

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    pn_mdnsd *m = hd->data;
    *buf = uv_buf_init((char *)m->rbuf, sizeof m->rbuf);
}

void pn_mdnsd_feed(pn_mdnsd *m, const uint8_t *buf, size_t len, const struct sockaddr *from) {
    pn_err e;
    if (m->host->closing) return;
    m->host->stats.mdns_in++;
    if (pn_mdns_parse(&m->msg, buf, len, &e) != 0) {
        m->host->stats.mdns_rejected++;
        pn_log_limited(m->host, PN_LOG_DEBUG, "mdns dropped", "mdns: packet dropped: %s", e.msg);
        return;
    }
    /* RFC 6762 §18: opcode and rcode other than 0 are ignored. */
    if (m->msg.flags & 0x780F) return;
    if (!(m->msg.flags & PN_DNS_FLAG_QR))
        handle_query(m, &m->msg, from);
    else if (ntohs(((const struct sockaddr_in *)from)->sin_port) == m->port)
        pn_mdnsd_browse_response(m, &m->msg, from);
    /* else RFC 6762 §6: a response from another port is not mDNS; ignored */
}

static void on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags) {
    pn_mdnsd *m = u->data;
    if (nread <= 0 || !from || m->host->closing) return;
    if (flags & UV_UDP_PARTIAL) {
        m->host->stats.mdns_in++;
        m->host->stats.mdns_rejected++;
        pn_log_limited(m->host, PN_LOG_DEBUG, "mdns oversized",
                       "mdns: datagram over %d bytes dropped", PN_MDNS_MSG_MAX);
        return;
    }
    pn_mdnsd_feed(m, m->rbuf, (size_t)nread, from);
}

/* ---- lifecycle -------------------------------------------------------- */

static void on_closed(void *ud) {
    pn_mdnsd *m = ud;
    pn_host *h = m->host;
    free(m);
    pn_host_unref(h);
}

static int open_udp(pn_mdnsd *m, uv_udp_t *u, const struct sockaddr *sa, unsigned flags) {
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

static int make_names(pn_mdnsd *m, const char *instance, pn_err *e) {
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

pn_mdnsd *pn_mdnsd_start(pn_host *h, const char *instance, uint16_t port, pn_err *e) {
    pn_mdnsd *m = calloc(1, sizeof *m);
    if (!m) {
        pn_err_set(e, PN_ENOMEM, "out of memory");
        return NULL;
    }
    m->host = h;
    m->port = port ? port : PN_MDNS_PORT;
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
        pn_mdnsd_close(m, 0);
        return NULL;
    }
    m->udp6_open = 1;
    m->has6 = open_udp(m, &m->udp6, (const struct sockaddr *)&a6, UV_UDP_IPV6ONLY) == 0;
    if (!m->has6) pn_log(h, PN_LOG_DEBUG, "mdns: no IPv6 socket; IPv4 only");
    pn_mdnsd_network_changed(m);
    return m;
}

void pn_mdnsd_close(pn_mdnsd *m, int goodbye) {
    if (goodbye) announce_all(m, 1, 0);
    uv_handle_t *hs[] = {PN_HANDLE(&m->announce), PN_HANDLE(&m->query), PN_HANDLE(&m->reply),
                         PN_HANDLE(&m->udp4), m->udp6_open ? PN_HANDLE(&m->udp6) : NULL};
    pn_handles_close(&m->closing, hs, sizeof hs / sizeof hs[0], on_closed, m);
}
