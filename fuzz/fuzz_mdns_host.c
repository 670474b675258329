/*
 * mDNS host fuzz target: a live host with mDNS on fed arbitrary datagrams
 * through pn_mdnsd_feed (the path its socket takes), so the responder and
 * the browser (query matching, known-answer suppression, the instance
 * table, TXT keys, addresses, goodbyes, registry updates) see what a
 * stranger on the LAN can send. It never crashes, the counters stay
 * consistent, every peer recorded as discovered has a dialable address, and
 * every direct answer it sends parses and echoes the query's id.
 *
 * One loop and one host for the process: the instance table and the
 * registry carry over from input to input, as they do on a real LAN.
 *
 * Input: chunks [flags][u16 BE len][len bytes], the last one cut to what
 * remains. flags bit 0: from the mDNS port (else from the harness's own
 * UDP socket on 127.0.0.1: a legacy unicast query, answered directly);
 * bits 1-2 (mDNS port only): the source address, 127.0.0.1, 192.0.2.2,
 * 10.1.2.3 or ::1; bit 4 turns ::1 into fe80::2 scoped to lo (a datagram
 * that came over a link-local path: link-local AAAA records get lo as their
 * zone, and only those); bit 3: turn the loop once afterwards (delayed
 * answers and dials run). Nothing is ever trusted, so no input makes the
 * host dial.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/mdns.h"
#include "net/net.h"

static uv_loop_t loop;
static pn_host *host;
static int sink = -1;
static uint16_t sink_port;
static pn_mdns_msg reply;
static uint64_t answers;
static unsigned lo_index; /* loopback's interface index: the zone of scoped sources */

static void init(void) {
    uint8_t secret[PN_KEY_LEN];
    pn_host_config cfg;
    pn_err e;
    memset(secret, 0x42, sizeof secret);
    uv_loop_init(&loop);
    pn_host_config_init(&cfg);
    cfg.secret = secret;
    cfg.listen = "127.0.0.1:0";
    cfg.mdns = 1;
    /* Only the harness may feed it: the UDP announce (on by default, port
     * 4040) let a real peernet-host on this machine announce a link-local
     * address with another zone, which the checks below then refused. */
    cfg.discovery = 0;
    cfg.netmon = 0;
    /* A port of its own: no system responder, no spec of this machine. */
    cfg.mdns_port = (uint16_t)(20000 + getpid() % 30000);
    host = pn_host_new(&loop, &cfg, &e);
    if (!host) abort();
    lo_index = if_nametoindex("lo");
    if (lo_index == 0) abort();
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sink = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (sink < 0 || bind(sink, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(sink, (struct sockaddr *)&a, &alen) != 0)
        abort();
    sink_port = ntohs(a.sin_port);
}

static int check_peer(const pn_peer_info *p, void *ud) {
    if (p->status == PN_PEER_DISCOVERED && (p->addr[0] == '\0' || p->trusted)) abort();
    /* A zone only ever comes from the scoped source, on a link-local
     * (fe80::/10) address. */
    if (strchr(p->addr, '%') && (strncmp(p->addr, "[fe", 3) != 0 || !strchr("89ab", p->addr[3]) ||
                                 p->addr[3] == '\0' || !strstr(p->addr, "%lo]:")))
        abort();
    return 0;
}

/* Direct answers leave at once (try_send on loopback): only a query the
 * harness just sent from its socket may get one, with that query's id. */
static void drain(int from_sink, uint16_t id) {
    uint8_t buf[PN_MDNS_MSG_MAX + 1];
    ssize_t n;
    while ((n = recv(sink, buf, sizeof buf, 0)) >= 0) {
        if (!from_sink || pn_mdns_parse(&reply, buf, (size_t)n, NULL) != 0) abort();
        if (!(reply.flags & PN_DNS_FLAG_QR) || reply.id != id) abort();
        answers++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!host) init();
    pn_mdnsd *m = host->mdns;
    size_t p = 0;
    while (p + 3 <= size) {
        uint8_t flags = data[p];
        size_t len = (size_t)data[p + 1] << 8 | data[p + 2];
        p += 3;
        if (len > size - p) len = size - p;
        union {
            struct sockaddr sa;
            struct sockaddr_in in4;
            struct sockaddr_in6 in6;
        } from;
        static const char *const v4[] = {"127.0.0.1", "192.0.2.2", "10.1.2.3"};
        int pick = flags >> 1 & 3;
        uint16_t port = (flags & 1) ? host->cfg.mdns_port : sink_port;
        if (!(flags & 1)) pick = 0; /* a direct answer only ever goes to the harness */
        if (pick == 3 && (flags & 16)) {
            uv_ip6_addr("fe80::2", port, &from.in6);
            from.in6.sin6_scope_id = lo_index;
        } else if (pick == 3)
            uv_ip6_addr("::1", port, &from.in6);
        else
            uv_ip4_addr(v4[pick], port, &from.in4);
        uint16_t id = len >= 2 ? (uint16_t)(data[p] << 8 | data[p + 1]) : 0;
        pn_mdnsd_feed(m, data + p, len, &from.sa);
        drain(!(flags & 1), id);
        if (flags & 8) uv_run(&loop, UV_RUN_NOWAIT);
        p += len;
    }
    pn_host_stats st;
    pn_host_get_stats(host, &st);
    if (st.mdns_rejected > st.mdns_in) abort();
    pn_host_peers(host, check_peer, NULL);
    return 0;
}
