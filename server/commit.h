/* Group commit: the store batches writes (store_set_batching) and they are
 * made durable here, always before any byte that may tell of them goes out
 * to a client.
 *
 * The open batch is written to the store's log at the end of the turn of
 * the main loop that opened it (or commit_window_ms after it opened, if a
 * window is set), and a thread of its own then flushes the log to disk
 * while the loop goes on serving. Batches that open while a flush is under
 * way are written together when it is done, so under load each flush
 * carries everything that arrived during the one before.
 *
 * Batches are numbered. A message queued for a client carries the number
 * of the newest batch at that moment (commit_needed()); it goes out only
 * once that batch is durable (commit_durable()), and connections that wait
 * are written to as soon as the flush reports (conn_wake_deferred()). So
 * nothing is announced before it is durable, nothing waits for a flush it
 * does not depend on, and the order of a connection's messages is kept.
 * HTTP responses wait the same way (http_wake_flushed()). On SQLite a
 * failed write or flush stops the process: the batch is lost, and carrying
 * on would announce state the store does not hold; a restart starts again
 * from what is durable. On Redis (whose batches hold only writes whose
 * outcome nobody needed at once, see store.h) a failed batch is dropped
 * instead, with everything queued that tells of it: the connections that
 * had such messages are closed (1011, they resume elsewhere or later), and
 * HTTP responses of the batch become 503 `unavailable`. Nothing of it was
 * acknowledged, so nothing acknowledged is lost. */
#ifndef YJT_COMMIT_H
#define YJT_COMMIT_H

#include "common/hist.h"

#include <stdbool.h>
#include <stdint.h>

/* Turns batching on for server.store and starts the flusher thread. */
void commit_init(void);
/* Commits and flushes what is open, and stops the flusher. */
void commit_shutdown(void);
/* The batch a message queued now must wait for: the open one, or else the
 * last one written. */
uint64_t commit_needed(void);
/* True once batch gen (and every batch before it) is durable. */
bool commit_durable(uint64_t gen);
/* True if batch gen failed to be written (a store that serves on after a
 * failed commit, Redis): what was queued with it must not go out. */
bool commit_failed(uint64_t gen);
/* How many batches have failed since the start. */
uint64_t commit_failures(void);
/* Writes the open batch now and starts its flush, unless a flush is under
 * way (then it waits, as always): for a push to many users, whose
 * deliveries can then go out while the rest are still being queued. Does
 * nothing on a store that tells of its batches itself (Redis). True if
 * the batch was written. */
bool commit_now(void);
/* Takes the flush the thread has finished, if any, without waiting for
 * the loop's next turn: what it made durable goes out (advance). */
void commit_poll(void);
/* Something other than a batch awaits the store's answer (a count sent
 * with store_rate_add_async): watch the store's socket until it is in. */
void commit_watch_store(void);
/* How long the flushes of the log took (for /metrics). */
const struct hist *commit_flush_hist(void);
/* Writes the open batch, if any, flushes the log on this thread if
 * anything written is not durable yet, and wakes the connections that
 * wait for it (at shutdown: the loop is not there to wait). */
void server_commit(void);

#endif
