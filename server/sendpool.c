/* Parallel sends (see sendpool.h). The jobs are shared out in chunks
 * through one atomic counter: a writer that wakes late finds them taken by
 * the others, and the loop never waits for a thread that has not started
 * on a batch, only for those that took part of it. */
#include "server/sendpool.h"

#include "common/log.h"

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define CHUNK 32

static struct {
    GThread **threads;
    int n_threads;
    GMutex mu;
    GCond go, done;
    uint64_t round; /* the batch being written; writers wake when it moves */
    bool open;      /* the loop still hands out chunks of it */
    int active;     /* writers inside the batch */
    bool stop;
    struct send_job *jobs;
    size_t n;
    gint next; /* the next job not yet taken (atomic) */
} P;

static void send_one(struct send_job *j)
{
    ssize_t r;
    do
        r = send(j->fd, j->buf, j->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    j->sent = r < 0 ? 0 : (size_t)r;
    j->err = r < 0 ? errno : 0;
}

static void take_chunks(struct send_job *jobs, size_t n)
{
    for (;;) {
        size_t i = (size_t)g_atomic_int_add(&P.next, CHUNK);
        if (i >= n)
            return;
        size_t end = MIN(i + CHUNK, n);
        for (; i < end; i++)
            send_one(&jobs[i]);
    }
}

static gpointer writer(gpointer ud)
{
    (void)ud;
    uint64_t seen = 0;
    g_mutex_lock(&P.mu);
    for (;;) {
        while (!P.stop && P.round == seen)
            g_cond_wait(&P.go, &P.mu);
        if (P.stop)
            break;
        seen = P.round;
        if (!P.open)
            continue; /* woke after the batch was handed out */
        P.active++;
        struct send_job *jobs = P.jobs;
        size_t n = P.n;
        g_mutex_unlock(&P.mu);
        take_chunks(jobs, n);
        g_mutex_lock(&P.mu);
        if (--P.active == 0)
            g_cond_signal(&P.done);
    }
    g_mutex_unlock(&P.mu);
    return NULL;
}

void sendpool_init(int threads)
{
    /* P's lock and conditions are static: they need no init (and may not
     * be initialised twice, as a second init after a shutdown would). */
    if (threads <= 1)
        return;
    P.threads = g_new0(GThread *, threads - 1);
    for (int i = 0; i < threads - 1; i++) {
        P.threads[i] = g_thread_new("yjt-send", writer, NULL);
        P.n_threads++;
    }
    log_info("ws", "sending from %d threads", threads);
}

int sendpool_threads(void)
{
    return P.n_threads + 1;
}

void sendpool_start(struct send_job *jobs, size_t n)
{
    if (!P.n_threads || n <= CHUNK) {
        for (size_t i = 0; i < n; i++)
            send_one(&jobs[i]);
        return;
    }
    g_mutex_lock(&P.mu);
    P.jobs = jobs;
    P.n = n;
    g_atomic_int_set(&P.next, 0);
    P.open = true;
    P.round++;
    g_cond_broadcast(&P.go);
    g_mutex_unlock(&P.mu);
}

void sendpool_finish(void)
{
    if (!P.open) /* nothing handed out (or written at once) */
        return;
    take_chunks(P.jobs, P.n);
    g_mutex_lock(&P.mu);
    P.open = false; /* every chunk is taken: late writers stay out */
    while (P.active > 0)
        g_cond_wait(&P.done, &P.mu);
    g_mutex_unlock(&P.mu);
}

bool sendpool_idle(void)
{
    if (!P.open)
        return true;
    g_mutex_lock(&P.mu);
    bool idle = (size_t)g_atomic_int_get(&P.next) >= P.n && P.active == 0;
    g_mutex_unlock(&P.mu);
    return idle;
}

void sendpool_run(struct send_job *jobs, size_t n)
{
    sendpool_start(jobs, n);
    sendpool_finish();
}

void sendpool_shutdown(void)
{
    if (!P.threads)
        return;
    g_mutex_lock(&P.mu);
    P.stop = true;
    g_cond_broadcast(&P.go);
    g_mutex_unlock(&P.mu);
    for (int i = 0; i < P.n_threads; i++)
        g_thread_join(P.threads[i]);
    g_clear_pointer(&P.threads, g_free);
    P.n_threads = 0;
    P.stop = false;
}
