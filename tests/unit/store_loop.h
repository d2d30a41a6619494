/* The store tests' turns of the main loop, for what a store answers
 * later (reads and counts sent without waiting): as a server turns it. */
#ifndef YJT_TEST_STORE_LOOP_H
#define YJT_TEST_STORE_LOOP_H

#include "records/store.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* A count told later (store_seq_last_later and its kin): told[0] the
 * code, told[1] the count; -1 until told. */
static inline void on_count_told(int rc, int64_t n, void *ud)
{
    int64_t *told = ud;
    told[0] = rc;
    told[1] = n;
}

/* Turns the loop as a server does (the store's socket, then idle
 * sources) until *flag is not below 0, or done(ud) (if set) says so, for
 * at most 5 s. */
static inline void turn_until(struct store *st, const int64_t *flag, bool (*done)(void *ud),
                              void *ud)
{
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while ((done ? !done(ud) : *flag < 0) && g_get_monotonic_time() < end) {
        int fd = store_async_fd(st);
        if (fd >= 0) {
            GPollFD pfd = {.fd = fd, .events = G_IO_IN};
            g_poll(&pfd, 1, 10);
            store_async_poll(st);
        }
        g_main_context_iteration(NULL, FALSE);
    }
}

#endif
