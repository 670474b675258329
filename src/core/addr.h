/*
 * Peer addresses as people write them: HOST:PORT, where HOST is a DNS name
 * (labels of letters, digits and '-'), an IPv4 address or an IPv6 address
 * in brackets with an optional %zone ("[fe80::1%eth0]:4040"), and PORT is
 * 1..65535 without leading zeros. Nothing else is accepted, so an address
 * that passes pn_addr_check is safe to log and to hand to getaddrinfo.
 * Lengths are in peernet/limits.h: longer addresses are refused.
 */
#ifndef PN_ADDR_H
#define PN_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include "peernet/limits.h"
#include "peernet/err.h"

/* PN_OK when s (len bytes, no NUL needed) is a valid HOST:PORT, else
 * PN_EINVAL saying what is wrong ("address longer than 259 bytes", ...). */
int pn_addr_check(const char *s, size_t len, pn_err *e);

/* Checks addr (NUL-terminated) and splits it: the host without brackets
 * (zone kept) into host (cap bytes, else PN_ETOOBIG) and the port. */
int pn_addr_split(const char *addr, char *host, size_t cap, uint16_t *port, pn_err *e);

#endif
