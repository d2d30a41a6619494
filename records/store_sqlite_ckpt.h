/* The SQLite store's background checkpointer (store_sqlite.c uses it while
 * batching, that is in yjtd).
 *
 * In WAL mode every commit appends to the -wal file, and a checkpoint
 * copies those pages back into the database file and syncs it. SQLite
 * does that by itself in the commit that takes the log past 1,000 pages,
 * in the committing thread: in yjtd that stalls the event loop for the
 * whole copy and its fsync, every few dozen call set-ups. The
 * checkpointer instead runs checkpoints on its own connection in its own
 * thread, woken by the writer's commits once the log holds `pages` pages;
 * the writer goes on appending meanwhile, and the log restarts from its
 * beginning at the first write after a checkpoint that caught up. As the
 * thread under steady writing always ends a little behind, the writer
 * copies a short remaining tail itself (at most a few hundred pages) so
 * that the log does restart.
 * Durability does not change: a commit is durable when its log pages are
 * synced, before any checkpoint. Should the log still reach 8 × pages
 * (the thread far behind), the writer checkpoints in its commit as SQLite
 * would, so the log stays bounded. */
#ifndef YJT_STORE_SQLITE_CKPT_H
#define YJT_STORE_SQLITE_CKPT_H

#include <sqlite3.h>

struct store_ckpt;

/* Starts checkpointing the database at path for the writer connection db
 * (whose automatic checkpoints it replaces). NULL if the thread's
 * connection cannot be opened; db then keeps checkpointing by itself. */
struct store_ckpt *store_ckpt_start(sqlite3 *db, const char *path, int pages);
/* Stops the thread (after the checkpoint it is running, if any) and gives
 * db its automatic checkpoints back. NULL is fine. */
void store_ckpt_stop(struct store_ckpt *k);

#endif
