/*
 * LAN discovery over UDP (PROTOCOL.md "LAN discovery announce"): the host
 * sends its 39-byte announce to the broadcast address every interval (and
 * when told: at start, on a network change) and hears everybody's on the
 * announce port. The port is bound with address reuse, so several hosts on
 * one machine share it and each receives every broadcast.
 *
 * As an extension the same datagram also goes to the IPv6 all-nodes group
 * ff02::1 on each interface that has a link-local address: two machines on
 * a link where nobody configured any address still find each other (and
 * dial the sender's fe80:: address with its zone).
 *
 * Announces are hints from strangers: anything that is not exactly a valid
 * announce is counted and dropped, our own key is ignored, and what the
 * host does with the rest (found.c) is bounded there.
 */
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/announce.h"
#include "net.h"

#define PN_DISCOVERY_IFACES_MAX 32 /* interfaces an IPv6 announce goes out on */
/* Larger than an announce, so a longer datagram shows as too long (or
 * truncated) rather than passing for one. */
#define PN_DISCOVERY_RBUF 64

typedef struct pn_discovery {
    pn_host *host;
    uv_udp_t udp4, udp6;
    uv_timer_t timer;
    int has6; /* udp6 was initialised */
    pn_handles closing;
    int warned4, warned6;
    struct sockaddr_in bcast;
    uint8_t msg[PN_ANNOUNCE_LEN];
    uint8_t rbuf[PN_DISCOVERY_RBUF]; /* libuv reads one datagram at a time */
} pn_discovery;

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    pn_discovery *d = hd->data;
    (void)suggested;
    *buf = uv_buf_init((char *)d->rbuf, sizeof d->rbuf);
}

/* The sender's address with the announced TCP port, in the form dial takes. */
static int sender_addr(const struct sockaddr *sa, uint16_t port, char *out, size_t cap) {
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        if (uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip) != 0) return -1;
        return snprintf(out, cap, "%s:%u", ip, port) < (int)cap ? 0 : -1;
    }
    if (sa->sa_family != AF_INET6) return -1;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    if (uv_ip6_name(s6, ip, sizeof ip) != 0) return -1;
    char zone[IF_NAMESIZE] = "";
    if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) {
        /* fe80:: means nothing without the interface it came in on. */
        if (!s6->sin6_scope_id || !if_indextoname(s6->sin6_scope_id, zone)) return -1;
        return snprintf(out, cap, "[%s%%%s]:%u", ip, zone, port) < (int)cap ? 0 : -1;
    }
    return snprintf(out, cap, "[%s]:%u", ip, port) < (int)cap ? 0 : -1;
}

static void on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags) {
    pn_discovery *d = u->data;
    pn_host *h = d->host;
    uint8_t key[PN_KEY_LEN];
    uint16_t port;
    char addr[PN_ADDR_MAX + 1];
    pn_err e;
    if (nread == 0 && !from) return; /* nothing more to read */
    if (nread < 0) {
        pn_log_limited(h, PN_LOG_DEBUG, "discovery receive", "discovery: receive: %s",
                       uv_strerror((int)nread));
        return;
    }
    if (h->closing || !from) return;
    h->stats.announces_in++;
    if (flags & UV_UDP_PARTIAL) {
        h->stats.announces_ignored++;
        pn_log_limited(h, PN_LOG_DEBUG, "discovery oversized",
                       "discovery: datagram over %d bytes ignored", PN_DISCOVERY_RBUF);
        return;
    }
    if (pn_announce_decode((const uint8_t *)buf->base, (size_t)nread, &port, key, &e) != 0) {
        h->stats.announces_ignored++;
        pn_log_limited(h, PN_LOG_DEBUG, "discovery ignored", "discovery: ignored: %s", e.msg);
        return;
    }
    /* Ours, nothing to dial, or an address the dialler would refuse. */
    if (sender_addr(from, port, addr, sizeof addr) != 0 ||
        pn_found_note(h, key, addr, "announce") != 0)
        h->stats.announces_ignored++;
}

static void send_v6(pn_discovery *d, uv_buf_t b, const uv_interface_address_t *ifs, int n) {
    pn_host *h = d->host;
    unsigned sent[PN_DISCOVERY_IFACES_MAX];
    int nsent = 0;
    struct sockaddr_in6 dst;
    uv_ip6_addr("ff02::1", h->cfg.announce_port, &dst);
    for (int i = 0; i < n && nsent < PN_DISCOVERY_IFACES_MAX; i++) {
        const struct sockaddr_in6 *a = &ifs[i].address.address6;
        if (a->sin6_family != AF_INET6 || ifs[i].is_internal ||
            !IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) || !a->sin6_scope_id)
            continue;
        int dup = 0;
        for (int j = 0; j < nsent; j++)
            dup |= sent[j] == a->sin6_scope_id;
        if (dup) continue;
        sent[nsent++] = a->sin6_scope_id;
        dst.sin6_scope_id = a->sin6_scope_id;
        int rc = uv_udp_try_send(&d->udp6, &b, 1, (const struct sockaddr *)&dst);
        if (rc >= 0) {
            h->stats.announces_sent++;
        } else if (!d->warned6) {
            d->warned6 = 1;
            pn_log(h, PN_LOG_DEBUG, "discovery: announce to ff02::1%%%s: %s", ifs[i].name,
                   uv_strerror(rc));
        }
    }
}

/* 255.255.255.255 leaves only through the interface of the default route,
 * and not at all without one (two machines on a bare switch). So the
 * limited broadcast is sent as each interface's own broadcast address
 * instead, which every listener on 0.0.0.0 receives the same way. Returns
 * the number sent; 0 when no interface has one. */
static int send_v4_each(pn_discovery *d, uv_buf_t b, const uv_interface_address_t *ifs, int n) {
    pn_host *h = d->host;
    int sent = 0, tried = 0;
    for (int i = 0; i < n && tried < PN_DISCOVERY_IFACES_MAX; i++) {
        const struct sockaddr_in *a = &ifs[i].address.address4, *m = &ifs[i].netmask.netmask4;
        if (a->sin_family != AF_INET || ifs[i].is_internal) continue;
        uint32_t mask = ntohl(m->sin_addr.s_addr);
        if (mask >= 0xfffffffeu) continue; /* /31, /32: no broadcast address on that link */
        struct sockaddr_in dst = d->bcast;
        dst.sin_addr.s_addr = htonl(ntohl(a->sin_addr.s_addr) | ~mask);
        tried++;
        int rc = uv_udp_try_send(&d->udp4, &b, 1, (const struct sockaddr *)&dst);
        if (rc >= 0) {
            sent++;
        } else if (!d->warned4) {
            d->warned4 = 1;
            pn_log(h, PN_LOG_INFO, "discovery: announce on %s: %s", ifs[i].name, uv_strerror(rc));
        }
    }
    h->stats.announces_sent += (uint64_t)sent;
    if (tried && sent == tried) d->warned4 = 0;
    return tried;
}

void pn_discovery_announce(pn_host *h) {
    pn_discovery *d = h->discovery;
    if (!d || h->closing || !h->port) return; /* not listening: nothing to announce */
    uv_buf_t b = uv_buf_init((char *)d->msg, sizeof d->msg);
    int limited = d->bcast.sin_addr.s_addr == htonl(0xffffffffu);
    int six = d->has6 && h->cfg.announce_v6;
    /* One read of the interface list serves both families. */
    uv_interface_address_t *ifs = NULL;
    int n = 0;
    if ((limited || six) && uv_interface_addresses(&ifs, &n) != 0) ifs = NULL, n = 0;
    if (!limited || send_v4_each(d, b, ifs, n) == 0) {
        int rc = uv_udp_try_send(&d->udp4, &b, 1, (const struct sockaddr *)&d->bcast);
        if (rc >= 0) {
            h->stats.announces_sent++;
            d->warned4 = 0;
        } else if (!d->warned4) { /* e.g. no IPv4 route at all: said once, until it works */
            d->warned4 = 1;
            pn_log(h, PN_LOG_INFO, "discovery: announce to %s:%u: %s", h->broadcast,
                   h->cfg.announce_port, uv_strerror(rc));
        }
    }
    if (six) send_v6(d, b, ifs, n);
    if (ifs) uv_free_interface_addresses(ifs, n);
    if (uv_is_active((uv_handle_t *)&d->timer)) uv_timer_again(&d->timer);
}

static void on_tick(uv_timer_t *t) {
    pn_discovery *d = t->data;
    pn_discovery_announce(d->host);
}

static int bind_udp(uv_udp_t *u, const struct sockaddr *sa, unsigned flags) {
    int rc = uv_udp_bind(u, sa, flags | UV_UDP_REUSEADDR);
    if (rc == 0) rc = uv_udp_recv_start(u, on_alloc, on_recv);
    return rc;
}

int pn_discovery_open(pn_host *h, pn_err *e) {
    pn_discovery *d = calloc(1, sizeof *d);
    if (!d) return pn_err_set(e, PN_ENOMEM, "out of memory");
    d->host = h;
    if (uv_ip4_addr(h->broadcast, h->cfg.announce_port, &d->bcast) != 0) {
        free(d);
        return pn_err_set(e, PN_EINVAL, "broadcast address '%s' must be a numeric IPv4 address",
                          h->broadcast);
    }
    pn_announce_encode(d->msg, (uint16_t)h->port, h->pub);
    uv_timer_init(h->loop, &d->timer);
    uv_udp_init_ex(h->loop, &d->udp4, AF_INET);
    d->has6 = uv_udp_init_ex(h->loop, &d->udp6, AF_INET6) == 0;
    d->timer.data = d->udp4.data = d->udp6.data = d;
    pn_host_adopt(h, (uv_handle_t *)&d->timer);
    pn_host_adopt(h, (uv_handle_t *)&d->udp4);
    if (d->has6) pn_host_adopt(h, (uv_handle_t *)&d->udp6);
    h->refs++;
    h->discovery = d;

    struct sockaddr_in any4;
    struct sockaddr_in6 any6;
    uv_ip4_addr("0.0.0.0", h->cfg.announce_port, &any4);
    uv_ip6_addr("::", h->cfg.announce_port, &any6);
    int rc = bind_udp(&d->udp4, (const struct sockaddr *)&any4, 0);
    if (rc == 0) rc = uv_udp_set_broadcast(&d->udp4, 1);
    if (rc != 0) {
        pn_discovery_close(h);
        return pn_err_set(e, PN_EIO, "discovery: UDP port %u: %s", h->cfg.announce_port,
                          uv_strerror(rc));
    }
    /* IPv6 is a bonus: a machine without it discovers over IPv4 alone. */
    if (d->has6 && (rc = bind_udp(&d->udp6, (const struct sockaddr *)&any6, UV_UDP_IPV6ONLY)))
        pn_log(h, PN_LOG_DEBUG, "discovery: no IPv6 on UDP port %u: %s", h->cfg.announce_port,
               uv_strerror(rc));
    if (d->has6 && rc == 0) uv_udp_set_multicast_loop(&d->udp6, 1);
    uv_timer_start(&d->timer, on_tick, h->cfg.announce_interval_ms, h->cfg.announce_interval_ms);
    if (!h->port) { /* a host that does not listen: hearing announces must not hold the loop */
        uv_unref((uv_handle_t *)&d->timer);
        uv_unref((uv_handle_t *)&d->udp4);
        if (d->has6) uv_unref((uv_handle_t *)&d->udp6);
    }
    pn_discovery_announce(h);
    return 0;
}

static void on_closed(void *ud) {
    pn_discovery *d = ud;
    pn_host_unref_free(d->host, d);
}

void pn_discovery_close(pn_host *h) {
    pn_discovery *d = h->discovery;
    if (!d) return;
    h->discovery = NULL;
    uv_handle_t *hs[] = {PN_HANDLE(&d->timer), PN_HANDLE(&d->udp4),
                         d->has6 ? PN_HANDLE(&d->udp6) : NULL};
    pn_handles_close(&d->closing, hs, sizeof hs / sizeof hs[0], on_closed, d);
}
