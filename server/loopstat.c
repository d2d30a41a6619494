/* Main loop turn times (see loopstat.h): GLib calls its poll function once
 * per turn, so the time from one poll's return to the next call is that
 * turn's work. */
#include "server/loopstat.h"

static GPollFunc real_poll;
static gint64 woke_at; /* when the last poll returned (monotonic, us) */
static struct hist turns;

static gint timed_poll(GPollFD *fds, guint nfds, gint timeout)
{
    gint64 now = g_get_monotonic_time();
    if (woke_at)
        hist_observe(&turns, (double)(now - woke_at) / 1e6);
    gint rc = real_poll(fds, nfds, timeout);
    woke_at = g_get_monotonic_time();
    return rc;
}

void loopstat_start(GMainContext *ctx)
{
    if (!ctx)
        ctx = g_main_context_default();
    real_poll = g_main_context_get_poll_func(ctx);
    g_main_context_set_poll_func(ctx, timed_poll);
}

const struct hist *loopstat_turns(void)
{
    return &turns;
}
