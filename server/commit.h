/* Group commit: the store batches writes (store_set_batching) and they are
 * made durable here, and always before any byte that may tell of them goes
 * out to a client. The batch is committed at the end of the turn of the
 * main loop that opened it, or, with commit_window_ms set, that many
 * milliseconds after it opened. Meanwhile connections with something to
 * send wait for the commit (conn.c asks commit_pending() before it writes
 * and is woken by conn_wake_deferred()), so all the messages read in one
 * turn, or one window, share one disk flush, and nothing is announced
 * before it is durable. HTTP responses commit at once (server_commit())
 * rather than wait. */
#ifndef YJT_COMMIT_H
#define YJT_COMMIT_H

#include <stdbool.h>

/* Turns batching on for server.store. */
void commit_init(void);
/* Commits what is open and stops scheduling commits. */
void commit_shutdown(void);
/* True while a batch is open: anything written now would go out before
 * the writes it may depend on are durable. */
bool commit_pending(void);
/* Commits the open batch, if any, and wakes the connections that wait for
 * it. A failed commit stops the process: the batch is lost, and carrying
 * on would announce state the store does not hold; a restart starts again
 * from what is durable. */
void server_commit(void);

#endif
