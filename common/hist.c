/* Latency histogram: bucket bounds from 50 µs to 2.5 s. */
#include "common/hist.h"

const double hist_bounds_s[HIST_BUCKETS] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                            0.005,   0.01,   0.025,   0.1,    0.5,   2.5};

void hist_observe(struct hist *h, double seconds)
{
    int i = 0;
    while (i < HIST_BUCKETS - 1 && seconds > hist_bounds_s[i])
        i++;
    h->counts[i]++; /* values past the last bound count in +Inf only */
    if (seconds > hist_bounds_s[HIST_BUCKETS - 1])
        h->counts[i]--;
    h->total++;
    h->sum_s += seconds;
}
