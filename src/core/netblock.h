/* Address blocks ("10.0.0.0/8", "::1"): parsed once from configuration,
 * then matched against a client's address as eddy_request_peer writes it.
 * Shared by the proxy's trusted proxies and the status page's allow list. */
#ifndef EDDY_CORE_NETBLOCK_H
#define EDDY_CORE_NETBLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct net_block {
    sa_family_t family;    /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    uint8_t bits;          /* prefix length */
} net_block;

/* "ADDRESS" (a block of one) or "ADDRESS/BITS": 0, or -EINVAL. */
int net_block_parse(const char *text, net_block *out);
/* Whether peer (text; an IPv4-mapped IPv6 address counts as IPv4) lies in
 * one of the n blocks. */
bool net_block_match(const net_block *blocks, unsigned n, const char *peer);

#endif
