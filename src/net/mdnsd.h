/*
 * What the two files of the host's mDNS share: mdnsd.c (the sockets, the
 * responder, the timers) and mdnsd_browse.c (what answers of others tell).
 */
#ifndef PN_NET_MDNSD_H
#define PN_NET_MDNSD_H

#include <net/if.h>

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
    char addr[PN_ADDR_MAX + 1];                  /* what was passed to the host, "" when nothing */
    int asked;                                   /* ASK_* already sent for it */
    /* Every address passed for it (a better one can follow the first):
     * the host forgets only the address a goodbye names, so the goodbye
     * names each of them. Oldest first. */
    char gave[PN_MDNS_GAVE_MAX][PN_ADDR_MAX + 1];
    int ngave;
} pn_mdns_known;

enum { ASK_SRV_TXT = 1, ASK_ADDR = 2 };

typedef struct pn_mdns_if {
    char name[64];
    uint8_t v4[PN_MDNS_IF_ADDRS][4];
    uint8_t v6[PN_MDNS_IF_ADDRS][16];
    int n4, n6;
} pn_mdns_if;

struct pn_mdnsd {
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

/* mdnsd.c */
/* The questions, to the groups out of every interface. */
void pn_mdnsd_send_query(pn_mdnsd *m, const pn_mdns_question *qs, size_t nq);
/* A token bucket: one token per period_ms, at most burst. What strangers
 * make us send goes through one. */
void pn_mdnsd_bucket_refill(uint64_t *at, int *tokens, uint64_t now, uint64_t period_ms, int burst);

/* mdnsd_browse.c: a response (or an unsolicited announcement) from from. */
void pn_mdnsd_browse_response(pn_mdnsd *m, const pn_mdns_msg *msg, const struct sockaddr *from);

#endif
