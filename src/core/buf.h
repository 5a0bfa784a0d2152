/* Small helpers for the byte buffers protocols keep per connection and
 * per stream: grown by doubling, sized in 32 bits, freed when drained. */
#ifndef EDDY_CORE_BUF_H
#define EDDY_CORE_BUF_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* Makes *buf hold at least need bytes: doubling from *cap (or min when
 * empty); 0, or -ENOMEM (past 4 GiB, or no memory), *buf unchanged. */
static inline int buf_grow(char **buf, uint32_t *cap, size_t need, size_t min)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : min;
    while (ncap < need)
        ncap *= 2;
    if (ncap > UINT32_MAX)
        return -ENOMEM;
    char *nb = realloc(*buf, ncap);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = (uint32_t)ncap;
    return 0;
}

/* Writes v in decimal at p; returns the end. */
static inline char *buf_put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

#endif
