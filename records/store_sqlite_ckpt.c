/* The SQLite store's background checkpointer (see store_sqlite_ckpt.h). */
#include "records/store_sqlite_ckpt.h"

#include <glib.h>
#include <stdbool.h>

/* SQLite's own automatic checkpoint threshold, given back on stop. */
#define AUTO_CHECKPOINT_PAGES 1000
/* The log size, in multiples of pages, at which the writer checkpoints
 * itself rather than wait for the thread. */
#define INLINE_FACTOR 8
/* A backlog the writer copies itself, so that the log can restart: see
 * on_commit(). */
#define CATCHUP_PAGES 256

struct store_ckpt {
    sqlite3 *writer; /* the store's connection: its commits wake us */
    sqlite3 *db;     /* ours, used only by the thread */
    int pages;
    GThread *thread;
    GMutex lock;
    GCond wake;
    bool wanted; /* a commit left the log at pages or more */
    bool stop;
    gint running; /* the thread is in a checkpoint */
    gint copied;  /* log pages its last checkpoint had copied back */
    int last_log; /* writer only: the log's size after its previous commit */
};

/* Runs after every commit of the writer, in its thread, with the number
 * of pages now in the log. It must return SQLITE_OK: the commit has
 * happened, and an error here would report it failed. */
static int on_commit(void *ud, sqlite3 *db, const char *schema, int log_pages)
{
    struct store_ckpt *k = ud;
    if (log_pages < k->last_log)
        g_atomic_int_set(&k->copied, 0); /* the log restarted */
    k->last_log = log_pages;
    if (log_pages < k->pages)
        return SQLITE_OK;
    /* The log restarts only at a write that finds it wholly copied back,
     * and under steady writing the thread never quite gets there: each of
     * its checkpoints ends a few commits behind. So when it has left only
     * a short tail, the writer copies that tail itself (a few hundred
     * pages, far less than the whole log it would copy at 8 x pages). */
    int behind = log_pages - g_atomic_int_get(&k->copied);
    if (!g_atomic_int_get(&k->running) && behind >= 0 && behind <= CATCHUP_PAGES) {
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (log_pages >= k->pages * INLINE_FACTOR) {
        /* Far behind: the writer catches up itself. Busy (the thread is
         * at it) is fine. */
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    g_mutex_lock(&k->lock);
    if (!k->wanted) {
        k->wanted = true;
        g_cond_signal(&k->wake);
    }
    g_mutex_unlock(&k->lock);
    return SQLITE_OK;
}

/* Waits to be woken, checkpoints what the log holds, and again, until
 * stopped. A passive checkpoint takes no lock a writer needs. */
static gpointer ckpt_main(gpointer data)
{
    struct store_ckpt *k = data;
    for (;;) {
        g_mutex_lock(&k->lock);
        while (!k->wanted && !k->stop)
            g_cond_wait(&k->wake, &k->lock);
        bool stop = k->stop;
        k->wanted = false;
        g_mutex_unlock(&k->lock);
        if (stop)
            break;
        int log = 0, copied = 0;
        g_atomic_int_set(&k->running, 1);
        if (sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) ==
            SQLITE_OK)
            g_atomic_int_set(&k->copied, copied);
        g_atomic_int_set(&k->running, 0);
    }
    return NULL;
}

struct store_ckpt *store_ckpt_start(sqlite3 *db, const char *path, int pages)
{
    struct store_ckpt *k = g_new0(struct store_ckpt, 1);
    k->writer = db;
    k->pages = pages > 0 ? pages : AUTO_CHECKPOINT_PAGES;
    if (sqlite3_open_v2(path, &k->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(k->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
        goto err;
    g_mutex_init(&k->lock);
    g_cond_init(&k->wake);
    k->thread = g_thread_try_new("store-ckpt", ckpt_main, k, NULL);
    if (!k->thread) {
        g_mutex_clear(&k->lock);
        g_cond_clear(&k->wake);
        goto err;
    }
    sqlite3_wal_hook(db, on_commit, k); /* replaces the automatic checkpoints */
    return k;
err:
    sqlite3_close(k->db);
    g_free(k);
    return NULL;
}

void store_ckpt_stop(struct store_ckpt *k)
{
    if (!k)
        return;
    sqlite3_wal_autocheckpoint(k->writer, AUTO_CHECKPOINT_PAGES); /* drops our hook */
    g_mutex_lock(&k->lock);
    k->stop = true;
    g_cond_signal(&k->wake);
    g_mutex_unlock(&k->lock);
    g_thread_join(k->thread);
    g_mutex_clear(&k->lock);
    g_cond_clear(&k->wake);
    sqlite3_close(k->db);
    g_free(k);
}
