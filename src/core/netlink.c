#include "netlink.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>

#ifndef IFF_LOWER_UP /* in linux/if.h, which clashes with net/if.h */
#define IFF_LOWER_UP 0x10000
#endif

#define PN_NETLINK_BATCH_MAX (1 << 20) /* one recv is far smaller; anything bigger is not ours */

int pn_netlink_scan(const uint8_t *buf, size_t len, unsigned *events, pn_err *e) {
    if (len > PN_NETLINK_BATCH_MAX)
        return pn_err_set(e, PN_EINVAL, "netlink batch of %zu bytes", len);
    int left = (int)len;
    /* The header is copied out: the buffer carries no alignment promise. */
    for (size_t off = 0; left > 0;) {
        struct nlmsghdr nh;
        if ((size_t)left < sizeof nh)
            return pn_err_set(e, PN_EINVAL, "netlink: %d stray bytes at %zu", left, off);
        memcpy(&nh, buf + off, sizeof nh);
        /* NLMSG_OK, spelled out: its int/u32 comparison trips -Wsign-compare. */
        if (nh.nlmsg_len < sizeof nh || nh.nlmsg_len > (unsigned)left)
            return pn_err_set(e, PN_EINVAL, "netlink: message of %u bytes at %zu, %d left",
                              nh.nlmsg_len, off, left);
        size_t payload = nh.nlmsg_len - NLMSG_HDRLEN;
        const uint8_t *body = buf + off + NLMSG_HDRLEN;
        switch (nh.nlmsg_type) {
            case RTM_NEWADDR:
            case RTM_DELADDR:
                if (payload < sizeof(struct ifaddrmsg))
                    return pn_err_set(e, PN_EINVAL, "netlink: short address message");
                *events |= PN_NL_ADDR;
                break;
            case RTM_NEWLINK:
            case RTM_DELLINK: {
                struct ifinfomsg ifi;
                if (payload < sizeof ifi)
                    return pn_err_set(e, PN_EINVAL, "netlink: short link message");
                memcpy(&ifi, body, sizeof ifi);
                /* NEWLINK also reports statistics and renames; only a change
                 * of up/running/carrier moves where packets can go. */
                if (nh.nlmsg_type == RTM_DELLINK ||
                    (ifi.ifi_change & (IFF_UP | IFF_RUNNING | IFF_LOWER_UP)))
                    *events |= PN_NL_LINK;
                break;
            }
            case NLMSG_ERROR:
            case NLMSG_OVERRUN:
                *events |= PN_NL_OVERRUN;
                break;
            default: /* NLMSG_DONE, NLMSG_NOOP, routes, neighbours: not ours */
                break;
        }
        size_t step = NLMSG_ALIGN(nh.nlmsg_len);
        if (step >= (size_t)left) break; /* the last one may go without its padding */
        off += step;
        left -= (int)step;
    }
    return 0;
}
