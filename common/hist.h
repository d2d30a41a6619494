/* A fixed-bucket latency histogram in the Prometheus style: cumulative
 * counts per upper bound, plus sum and count. Not thread-safe: each one is
 * owned by one thread (the main loop). */
#ifndef YJT_HIST_H
#define YJT_HIST_H

#include <stdint.h>

#define HIST_BUCKETS 12

struct hist {
    uint64_t counts[HIST_BUCKETS]; /* per bucket, not cumulative */
    uint64_t total;
    double sum_s;
};

extern const double hist_bounds_s[HIST_BUCKETS];

void hist_observe(struct hist *h, double seconds);

#endif
