/* Fixed-width little-endian packing of integers and doubles, for the
 * binary records of the stores' time series (the same bytes on SQLite and
 * Redis, whatever the host's byte order). */
#ifndef YJT_STORE_PACK_H
#define YJT_STORE_PACK_H

#include <stdint.h>
#include <string.h>

static inline void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline uint64_t dbits(double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    return v;
}

static inline double bitsd(uint64_t v)
{
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

#endif
