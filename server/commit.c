/* Group commit of the store's write batches, with the disk flush on a
 * thread of its own (see commit.h). */
#include "server/commit.h"

#include "common/log.h"
#include "server/conn.h"
#include "server/http.h"
#include "server/server.h"

#include <glib.h>
#include <unistd.h>

/* Batches are numbered: the open one is open_gen, the last written to the
 * log written_gen, and every batch up to durable_gen is on disk. */
static uint64_t open_gen, written_gen, durable_gen;
static struct hist flushes; /* main thread only */
static bool dirty;
static guint due; /* the idle or timeout source after which the batch may be written */

/* The flusher thread: flushes up to `want`, reports `done`. */
static struct {
    GMutex lock;
    GCond wake;
    GThread *thread;
    uint64_t want, done;
    int rc;
    double took_s; /* of the flush that made `done` */
    bool stop;
    bool busy; /* main thread's view: a flush is under way */
} fl;

static gboolean on_flushed_cb(gpointer data);

/* Batches whose commit failed on a store that serves on (Redis): nothing
 * queued with them goes out. The last few are enough: their messages are
 * dropped when the batch fails, and replies wait for at most one more. */
#define FAILED_KEPT 64
static uint64_t failed[FAILED_KEPT];
static unsigned failed_n;

static void fatal(const char *what)
{
    log_error("store", "%s failed: stopping so that nothing unrecorded is announced", what);
    _exit(1);
}

static gpointer flusher_main(gpointer data)
{
    (void)data;
    g_mutex_lock(&fl.lock);
    while (!fl.stop) {
        if (fl.want <= fl.done) {
            g_cond_wait(&fl.wake, &fl.lock);
            continue;
        }
        uint64_t gen = fl.want;
        g_mutex_unlock(&fl.lock);
        gint64 t0 = g_get_monotonic_time();
        int rc = store_sync(server.store);
        double took = (double)(g_get_monotonic_time() - t0) / 1e6;
        g_mutex_lock(&fl.lock);
        fl.done = gen;
        fl.rc = rc;
        fl.took_s = took;
        g_mutex_unlock(&fl.lock);
        /* Thread-safe: adds the source and wakes the main loop. */
        g_idle_add_full(G_PRIORITY_HIGH, on_flushed_cb, NULL, NULL);
        g_mutex_lock(&fl.lock);
    }
    g_mutex_unlock(&fl.lock);
    return NULL;
}

bool commit_failed(uint64_t gen)
{
    for (unsigned i = 0; i < failed_n && i < FAILED_KEPT; i++)
        if (failed[i] == gen)
            return true;
    return false;
}

/* Writes the open batch. If that fails on a store that may fail a batch,
 * the batch is marked failed (and gets its flush all the same, so that the
 * batches after it move on); on any other store it is fatal. */
static void write_batch(void)
{
    if (store_write_batch(server.store) == STORE_OK)
        return;
    if (!store_commit_may_fail(server.store))
        fatal("commit");
    failed[failed_n++ % FAILED_KEPT] = open_gen;
    log_error("store",
              "batch %" G_GUINT64_FORMAT " could not be written: what tells of it is "
              "dropped and its connections closed",
              open_gen);
    conn_drop_failed();
    open_gen++; /* what is queued from now on is not of the failed batch */
}

/* Writes the open batch to the log and hands its flush to the thread. */
static void write_and_flush(void)
{
    write_batch();
    dirty = false;
    written_gen = open_gen;
    g_mutex_lock(&fl.lock);
    fl.want = written_gen;
    fl.busy = true;
    g_cond_signal(&fl.wake);
    g_mutex_unlock(&fl.lock);
}

static void advance(uint64_t gen)
{
    if (gen > durable_gen) {
        durable_gen = gen;
        conn_wake_deferred();
        http_wake_flushed();
    }
}

static gboolean on_flushed_cb(gpointer data)
{
    (void)data;
    g_mutex_lock(&fl.lock);
    uint64_t done = fl.done;
    int rc = fl.rc;
    double took = fl.took_s;
    g_mutex_unlock(&fl.lock);
    if (rc != STORE_OK)
        fatal("log flush");
    hist_observe(&flushes, took);
    fl.busy = false; /* one flush is asked for at a time */
    advance(done);
    /* What opened while the disk was busy goes in one batch now. */
    if (!fl.busy && dirty && !due && fl.thread)
        write_and_flush();
    return G_SOURCE_REMOVE;
}

static gboolean on_due(gpointer data)
{
    (void)data;
    due = 0;
    if (!fl.busy)
        write_and_flush();
    return G_SOURCE_REMOVE;
}

/* A batch opened: write it at the end of this turn of the loop (or
 * commit_window_ms later, if a window is set), or, if a flush is under
 * way, as soon as that flush is done. */
static void on_dirty(void *ud)
{
    (void)ud;
    dirty = true;
    open_gen = written_gen + 1;
    if (due)
        return;
    if (server.cfg.commit_window_ms > 0)
        due = g_timeout_add(server.cfg.commit_window_ms, on_due, NULL);
    else
        due = g_idle_add_full(G_PRIORITY_DEFAULT, on_due, NULL, NULL);
}

void commit_init(void)
{
    g_mutex_init(&fl.lock);
    g_cond_init(&fl.wake);
    fl.stop = false;
    fl.thread = g_thread_new("flusher", flusher_main, NULL);
    store_set_batching(server.store, true, on_dirty, NULL);
}

uint64_t commit_needed(void)
{
    return dirty ? open_gen : written_gen;
}

const struct hist *commit_flush_hist(void)
{
    return &flushes;
}

bool commit_durable(uint64_t gen)
{
    return gen <= durable_gen;
}

void server_commit(void)
{
    if (dirty) {
        if (due)
            g_source_remove(due);
        due = 0;
        write_batch();
        dirty = false;
        written_gen = open_gen;
    }
    if (written_gen <= durable_gen)
        return;
    /* Beside the thread's own flush, if one is under way: both are safe. */
    gint64 t0 = g_get_monotonic_time();
    if (store_sync(server.store) != STORE_OK)
        fatal("log flush");
    hist_observe(&flushes, (double)(g_get_monotonic_time() - t0) / 1e6);
    advance(written_gen);
}

void commit_shutdown(void)
{
    server_commit();
    if (due)
        g_source_remove(due);
    due = 0;
    if (fl.thread) {
        g_mutex_lock(&fl.lock);
        fl.stop = true;
        g_cond_signal(&fl.wake);
        g_mutex_unlock(&fl.lock);
        g_thread_join(fl.thread);
        fl.thread = NULL;
    }
}
