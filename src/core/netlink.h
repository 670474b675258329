/*
 * Reading the kernel's route-netlink notifications (rtnetlink(7)) for the
 * network monitor: which kinds of change a batch of messages reports.
 * The bytes come from the kernel, but they are still input: every message
 * is bounds-checked (NLMSG_OK) before a field is read.
 */
#ifndef PN_NETLINK_H
#define PN_NETLINK_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/err.h"

#define PN_NL_ADDR 1    /* an address was added or removed */
#define PN_NL_LINK 2    /* an interface went up or down, appeared or left */
#define PN_NL_OVERRUN 4 /* the kernel reported an error: assume anything changed */

/* Ors the PN_NL_* kinds found in buf into *events. PN_EINVAL (with what
 * was found so far in *events) when a message is cut short or malformed. */
int pn_netlink_scan(const uint8_t *buf, size_t len, unsigned *events, pn_err *e);

#endif
