#include "core/netblock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int net_block_parse(const char *text, net_block *out)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t al = slash ? (size_t)(slash - text) : strlen(text);
    if (al >= sizeof(addr))
        return -EINVAL;
    memcpy(addr, text, al);
    addr[al] = 0;
    net_block b = {0};
    unsigned max;
    if (inet_pton(AF_INET, addr, b.addr) == 1)
        b.family = AF_INET, max = 32;
    else if (inet_pton(AF_INET6, addr, b.addr) == 1)
        b.family = AF_INET6, max = 128;
    else
        return -EINVAL;
    unsigned bits = max;
    if (slash) {
        char *end;
        unsigned long v = strtoul(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end || v > max)
            return -EINVAL;
        bits = (unsigned)v;
    }
    b.bits = (uint8_t)bits;
    *out = b;
    return 0;
}

bool net_block_match(const net_block *blocks, unsigned n, const char *peer)
{
    uint8_t a[16];
    sa_family_t fam;
    if (inet_pton(AF_INET, peer, a) == 1) {
        fam = AF_INET;
    } else if (inet_pton(AF_INET6, peer, a) == 1) {
        fam = AF_INET6;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) { /* an IPv4 client on an IPv6 socket */
            memmove(a, a + 12, 4);
            fam = AF_INET;
        }
    } else {
        return false;
    }
    for (unsigned i = 0; i < n; i++) {
        const net_block *t = &blocks[i];
        if (t->family != fam)
            continue;
        unsigned full = t->bits / 8, rest = t->bits % 8;
        if (memcmp(a, t->addr, full) != 0)
            continue;
        if (rest && ((a[full] ^ t->addr[full]) & (uint8_t)(0xff << (8 - rest))))
            continue;
        return true;
    }
    return false;
}
