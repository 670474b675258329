/*
 * The network monitor: tells the host (pn_host_network_changed) when an
 * address or a link changed, so that it announces itself again at once and
 * finds out which links lost their path, instead of waiting for the next
 * announce and the slow liveness ping.
 *
 * On Linux it listens to route netlink (address and link groups) through
 * uv_poll. Where that socket cannot be opened (another OS, a sandbox) or
 * when asked (cfg.netmon == 2) it polls the interface list every
 * PN_NETMON_POLL_MS and compares. Changes come in bursts (an address and
 * its routes, DAD finishing, both ends of a veth): they are reported once
 * the burst has been quiet for PN_NETMON_SETTLE_MS.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/netlink.h"
#include "net.h"

#ifdef __linux__
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#endif

#define PN_NETMON_SETTLE_MS 100
#define PN_NETMON_POLL_MS 2000
#define PN_NETMON_BUF 16384    /* one recv; a longer batch shows as truncated: "changed" */
#define PN_NETMON_READS_MAX 64 /* recvs per wake-up, so a flood cannot hold the loop */

typedef struct pn_netmon {
    pn_host *host;
    int fd; /* the netlink socket, -1 when polling */
    uv_poll_t poll;
    uv_timer_t tick; /* the polling interval */
    uv_timer_t settle;
    int has_poll; /* poll was initialised on the netlink socket */
    pn_handles closing;
    uint64_t digest; /* polling: the interface list last seen */
    uint8_t buf[PN_NETMON_BUF];
} pn_netmon;

static void on_settled(uv_timer_t *t) {
    pn_netmon *m = t->data;
    pn_host_network_changed(m->host);
}

static void changed(pn_netmon *m, const char *what) {
    pn_log(m->host, PN_LOG_DEBUG, "netmon: %s", what);
    uv_timer_start(&m->settle, on_settled, PN_NETMON_SETTLE_MS, 0);
}

/* ---- polling ------------------------------------------------------------- */

/* Order-independent: the sum of one FNV-1a hash per address. */
static uint64_t interfaces_digest(void) {
    uv_interface_address_t *ifs;
    int n;
    uint64_t sum = 0;
    if (uv_interface_addresses(&ifs, &n) != 0) return 0;
    for (int i = 0; i < n; i++) {
        uint64_t v = 1469598103934665603ull;
        const uint8_t *parts[3] = {(const uint8_t *)ifs[i].name, (const uint8_t *)&ifs[i].address,
                                   (const uint8_t *)&ifs[i].netmask};
        size_t lens[3] = {strlen(ifs[i].name), sizeof ifs[i].address, sizeof ifs[i].netmask};
        for (int p = 0; p < 3; p++)
            for (size_t k = 0; k < lens[p]; k++)
                v = (v ^ parts[p][k]) * 1099511628211ull;
        sum += v;
    }
    uv_free_interface_addresses(ifs, n);
    return sum;
}

static void on_tick(uv_timer_t *t) {
    pn_netmon *m = t->data;
    uint64_t d = interfaces_digest();
    if (d != m->digest) {
        m->digest = d;
        changed(m, "interface list changed");
    }
}

/* ---- netlink ------------------------------------------------------------- */

#ifdef __linux__
static int netlink_open(pn_err *e) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return pn_err_set(e, PN_EIO, "netlink socket: %s", strerror(errno));
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int err = errno;
        close(fd);
        return pn_err_set(e, PN_EIO, "netlink bind: %s", strerror(err));
    }
    return fd;
}

static void on_readable(uv_poll_t *p, int status, int events) {
    pn_netmon *m = p->data;
    unsigned kinds = 0;
    (void)events;
    if (status < 0) {
        changed(m, "netlink poll error");
        return;
    }
    for (int i = 0; i < PN_NETMON_READS_MAX; i++) {
        struct sockaddr_nl from;
        struct iovec iov = {m->buf, sizeof m->buf};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_name = &from;
        mh.msg_namelen = sizeof from;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t n = recvmsg(m->fd, &mh, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == ENOBUFS) kinds |= PN_NL_OVERRUN; /* we fell behind: messages lost */
            if (errno == EINTR || errno == ENOBUFS) continue;
            break; /* EAGAIN: drained */
        }
        /* Only the kernel (port 0) speaks for the network. */
        if (mh.msg_namelen != sizeof from || from.nl_pid != 0) continue;
        if (mh.msg_flags & MSG_TRUNC) {
            kinds |= PN_NL_OVERRUN;
            continue;
        }
        pn_err e;
        if (pn_netlink_scan(m->buf, (size_t)n, &kinds, &e) != 0)
            pn_log(m->host, PN_LOG_DEBUG, "netmon: %s", e.msg);
    }
    if (kinds & PN_NL_OVERRUN)
        changed(m, "netlink overrun or error");
    else if (kinds & PN_NL_LINK)
        changed(m, "link changed");
    else if (kinds & PN_NL_ADDR)
        changed(m, "address changed");
}
#endif

/* ---- open / close -------------------------------------------------------- */

/* Like the trust file's watch, the monitor alone must not keep a loop alive. */
static void background(pn_netmon *m) {
    uv_unref((uv_handle_t *)&m->settle);
    uv_unref((uv_handle_t *)&m->tick);
    if (m->has_poll) uv_unref((uv_handle_t *)&m->poll);
}

int pn_netmon_open(pn_host *h, pn_err *e) {
    pn_netmon *m = calloc(1, sizeof *m);
    if (!m) return pn_err_set(e, PN_ENOMEM, "out of memory");
    m->host = h;
    m->fd = -1;
    pn_err ne;
#ifdef __linux__
    if (h->cfg.netmon != 2 && (m->fd = netlink_open(&ne)) < 0) {
        m->fd = -1;
        pn_log(h, PN_LOG_INFO, "netmon: %s: polling the interfaces every %d ms instead", ne.msg,
               PN_NETMON_POLL_MS);
    }
#else
    (void)ne;
#endif
    uv_timer_init(h->loop, &m->settle);
    uv_timer_init(h->loop, &m->tick);
    m->settle.data = m->tick.data = m->poll.data = m;
    pn_host_adopt(h, (uv_handle_t *)&m->settle);
    pn_host_adopt(h, (uv_handle_t *)&m->tick);
    if (m->fd >= 0) {
        int rc = uv_poll_init(h->loop, &m->poll, m->fd);
        if (rc == 0) {
            pn_host_adopt(h, (uv_handle_t *)&m->poll);
            m->has_poll = 1;
#ifdef __linux__
            rc = uv_poll_start(&m->poll, UV_READABLE, on_readable);
#endif
        }
        if (rc != 0) {
            pn_log(h, PN_LOG_INFO, "netmon: cannot poll netlink (%s): polling interfaces",
                   uv_strerror(rc));
            if (m->has_poll) uv_poll_stop(&m->poll);
        } else {
            background(m);
            h->refs++;
            h->netmon = m;
            return 0;
        }
    }
    m->digest = interfaces_digest();
    uv_timer_start(&m->tick, on_tick, PN_NETMON_POLL_MS, PN_NETMON_POLL_MS);
    background(m);
    h->refs++;
    h->netmon = m;
    return 0;
}

static void on_closed(void *ud) {
    pn_netmon *m = ud;
    if (m->fd >= 0) close(m->fd); /* uv_poll never owned it */
    pn_host_unref_free(m->host, m);
}

void pn_netmon_close(pn_host *h) {
    pn_netmon *m = h->netmon;
    if (!m) return;
    h->netmon = NULL;
    uv_handle_t *hs[] = {PN_HANDLE(&m->settle), PN_HANDLE(&m->tick),
                         m->has_poll ? PN_HANDLE(&m->poll) : NULL};
    pn_handles_close(&m->closing, hs, sizeof hs / sizeof hs[0], on_closed, m);
}
