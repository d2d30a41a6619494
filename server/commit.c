/* Group commit of the store's write batches, with the disk flush on a
 * thread of its own (see commit.h). */
#include "server/commit.h"

#include "common/log.h"
#include "push/inbox.h"
#include "server/conn.h"
#include "server/http.h"
#include "server/server.h"

#include <glib-unix.h>
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

/* A store whose batches are durable once its server answered them
 * (Redis): they are told by the store (on_batch_done) instead of by the
 * flusher thread, several may be under way, and the loop watches the
 * store's socket for the answers (async_watch). What the store told waits
 * in `told` for the loop's next turn, since the store may tell from
 * inside any call. */
static bool async_store;
static guint async_watch, async_tick, told_idle;
static int async_watch_fd = -1;
struct told {
    uint64_t gen;
    bool ok;
};
static GArray *told;

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

uint64_t commit_failures(void)
{
    return failed_n;
}

static void mark_failed(uint64_t gen)
{
    failed[failed_n++ % FAILED_KEPT] = gen;
    log_error("store",
              "batch %" G_GUINT64_FORMAT " could not be written: what tells of it is "
              "dropped and its connections closed",
              gen);
    conn_drop_failed();
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
    mark_failed(open_gen);
    open_gen++; /* what is queued from now on is not of the failed batch */
}

static void advance(uint64_t gen);

/* Acts on the batches the store told of, in order. */
static void act_on_told(void)
{
    for (guint i = 0; told && i < told->len; i++) {
        struct told t = g_array_index(told, struct told, i);
        if (!t.ok)
            mark_failed(t.gen);
        advance(t.gen);
    }
    if (told)
        g_array_set_size(told, 0);
}

static gboolean act_on_told_cb(gpointer data)
{
    (void)data;
    told_idle = 0;
    act_on_told();
    return G_SOURCE_REMOVE;
}

static void on_batch_done(uint64_t gen, bool ok, void *ud)
{
    (void)ud;
    g_array_append_val(told, ((struct told){gen, ok}));
    if (!told_idle)
        told_idle = g_idle_add_full(G_PRIORITY_HIGH, act_on_told_cb, NULL, NULL);
}

static void watch_store(void);

static gboolean on_store_readable(gint fd, GIOCondition cond, gpointer data)
{
    (void)data;
    store_async_poll(server.store);
    act_on_told();
    if (!(cond & G_IO_NVAL) && store_async_fd(server.store) == fd)
        return G_SOURCE_CONTINUE;
    async_watch = 0; /* another socket (a reconnect), or nothing awaited */
    watch_store();
    return G_SOURCE_REMOVE;
}

/* While answers are awaited, the store also looks now and then, so that a
 * server that went silent is given up (see redis_link_poll). */
static gboolean on_async_tick(gpointer data)
{
    (void)data;
    store_async_poll(server.store);
    act_on_told();
    if (store_async_fd(server.store) >= 0)
        return G_SOURCE_CONTINUE;
    async_tick = 0;
    g_clear_handle_id(&async_watch, g_source_remove); /* nothing awaited any more */
    return G_SOURCE_REMOVE;
}

void commit_watch_store(void)
{
    watch_store();
}

/* Watches the socket the store awaits answers on, if any. */
static void watch_store(void)
{
    int fd = store_async_fd(server.store);
    if (fd >= 0 && !async_tick)
        async_tick = g_timeout_add(250, on_async_tick, NULL);
    if (async_watch && fd == async_watch_fd)
        return;
    g_clear_handle_id(&async_watch, g_source_remove);
    if (fd < 0)
        return;
    async_watch_fd = fd;
    async_watch = g_unix_fd_add_full(G_PRIORITY_HIGH, fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                     on_store_readable, NULL, NULL);
}

/* Ends the open batch on an asynchronous store. */
static void write_async(void)
{
    dirty = false;
    written_gen = open_gen;
    int rc = store_write_batch_async(server.store, open_gen);
    if (rc == STORE_PENDING)
        watch_store();
    else
        on_batch_done(open_gen, rc == STORE_OK, NULL);
}

/* Writes the open batch to the log and hands its flush to the thread. */
static void write_and_flush(void)
{
    if (async_store) {
        write_async();
        return;
    }
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
        inbox_batches_judged();
    }
}

/* The flusher's last report: the batch it made durable (stopping if the
 * flush failed) and how long that took. */
static uint64_t flushed(double *took)
{
    g_mutex_lock(&fl.lock);
    uint64_t done = fl.done;
    int rc = fl.rc;
    *took = fl.took_s;
    g_mutex_unlock(&fl.lock);
    if (rc != STORE_OK)
        fatal("log flush");
    return done;
}

static gboolean on_flushed_cb(gpointer data)
{
    (void)data;
    double took;
    uint64_t done = flushed(&took);
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

bool commit_now(void)
{
    if (async_store || !fl.thread || !dirty || fl.busy)
        return false;
    g_clear_handle_id(&due, g_source_remove);
    write_and_flush();
    return true;
}

void commit_poll(void)
{
    if (async_store || !fl.thread)
        return;
    double took;
    uint64_t done = flushed(&took);
    if (done <= durable_gen)
        return;
    /* The flusher's report (on_flushed_cb) still comes, and finds this
     * batch done: it records the flush and starts the next one. */
    advance(done);
}

/* A read sent without waiting (store_index_find_later and its kin): its
 * answer comes on the store's socket. */
static void on_read_sent(void *ud)
{
    (void)ud;
    watch_store();
}

void commit_init(void)
{
    g_mutex_init(&fl.lock);
    g_cond_init(&fl.wake);
    fl.stop = false;
    store_set_batching(server.store, true, on_dirty, NULL);
    async_store = store_batches_async(server.store);
    store_on_read_sent(server.store, on_read_sent, NULL);
    if (async_store) { /* no flush to run: the store tells */
        told = g_array_new(FALSE, FALSE, sizeof(struct told));
        store_on_batch_done(server.store, on_batch_done, NULL);
    } else {
        fl.thread = g_thread_new("flusher", flusher_main, NULL);
    }
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
    if (async_store) {
        g_clear_handle_id(&due, g_source_remove);
        if (dirty)
            write_async();
        if (store_async_fd(server.store) >= 0)
            store_write_batch(server.store); /* reads every answer; the store tells */
        act_on_told();
        return;
    }
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
    store_on_read_sent(server.store, NULL, NULL);
    g_clear_handle_id(&due, g_source_remove);
    g_clear_handle_id(&async_watch, g_source_remove);
    g_clear_handle_id(&async_tick, g_source_remove);
    g_clear_handle_id(&told_idle, g_source_remove);
    if (told) {
        store_on_batch_done(server.store, NULL, NULL);
        g_array_free(told, TRUE);
        told = NULL;
    }
    if (fl.thread) {
        g_mutex_lock(&fl.lock);
        fl.stop = true;
        g_cond_signal(&fl.wake);
        g_mutex_unlock(&fl.lock);
        g_thread_join(fl.thread);
        fl.thread = NULL;
    }
}
