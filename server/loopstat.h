/* How long each turn of the main loop keeps it busy: from the moment its
 * poll returns to the moment it polls again, every source dispatched in
 * between (network input, flushes, timers). A long turn delays every
 * reply that waits behind it, so this is where stalls show. */
#ifndef YJT_LOOPSTAT_H
#define YJT_LOOPSTAT_H

#include "common/hist.h"

#include <glib.h>

/* Starts timing the turns of ctx (the default context if NULL). */
void loopstat_start(GMainContext *ctx);
/* The turns so far, for /metrics (main thread). */
const struct hist *loopstat_turns(void);

#endif
