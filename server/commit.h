/* Group commit: the store batches writes (store_set_batching) and they are
 * made durable here, once per turn of the main loop and always before any
 * byte goes out to a client (conn.c and http.c call server_commit() before
 * they write). So many writes share one disk flush, and nothing is
 * announced before it is durable. */
#ifndef YJT_COMMIT_H
#define YJT_COMMIT_H

/* Turns batching on for server.store. */
void commit_init(void);
/* Commits what is open and stops scheduling commits. */
void commit_shutdown(void);
/* Commits the open batch, if any. A failed commit stops the process: the
 * batch is lost, and carrying on would announce state the store does not
 * hold; a restart starts again from what is durable. */
void server_commit(void);

#endif
