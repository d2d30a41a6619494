/* The libuv-in-GLib source (see uvsource.h).
 *
 * prepare runs the loop once without blocking: that applies the watcher
 * changes lws made from GLib callbacks (libuv only tells epoll about them
 * inside uv_run) and serves whatever is already ready; then GLib sleeps on
 * the epoll descriptor, no longer than libuv's next timer. */
#include "server/uvsource.h"

#include "common/log.h"

#include <stdbool.h>

struct uv_gsource {
    GSource base;
    uv_loop_t *loop;
    gpointer tag;
};

static struct uv_gsource *the_source;
static bool more_wanted;

void uvsource_more(void)
{
    more_wanted = true;
}

/* One pass over what is ready, and more passes (at most a few) while a
 * connection is part way through a message: lws reads a WebSocket at most
 * one receive buffer (1 KiB) per pass, so a 5 KB call.invite would
 * otherwise take five turns of the main loop, each with its own commit,
 * and wait behind everything those turns do. */
static void run_ready(uv_loop_t *loop)
{
    for (int pass = 0; pass < 8; pass++) {
        more_wanted = false;
        uv_run(loop, UV_RUN_NOWAIT);
        if (!more_wanted)
            break;
    }
}

static gboolean uvs_prepare(GSource *s, gint *timeout)
{
    struct uv_gsource *u = (struct uv_gsource *)s;
    run_ready(u->loop);
    *timeout = uv_backend_timeout(u->loop);
    return *timeout == 0;
}

static gboolean uvs_check(GSource *s)
{
    struct uv_gsource *u = (struct uv_gsource *)s;
    return g_source_query_unix_fd(s, u->tag) != 0 || uv_backend_timeout(u->loop) == 0;
}

static gboolean uvs_dispatch(GSource *s, GSourceFunc cb, gpointer ud)
{
    (void)cb;
    (void)ud;
    run_ready(((struct uv_gsource *)s)->loop);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs uvs_funcs = {
    .prepare = uvs_prepare,
    .check = uvs_check,
    .dispatch = uvs_dispatch,
};

uv_loop_t *uvsource_start(void)
{
    uv_loop_t *loop = g_new0(uv_loop_t, 1);
    if (uv_loop_init(loop) != 0) {
        g_free(loop);
        return NULL;
    }
    the_source = (struct uv_gsource *)g_source_new(&uvs_funcs, sizeof(struct uv_gsource));
    the_source->loop = loop;
    the_source->tag = g_source_add_unix_fd(&the_source->base, uv_backend_fd(loop), G_IO_IN);
    g_source_set_name(&the_source->base, "libuv");
    g_source_attach(&the_source->base, NULL);
    return loop;
}

static void drain_tick(uv_timer_t *t)
{
    (void)t; /* only keeps the loop turning while lws finishes closing */
}

/* Turns the loop for about ms milliseconds with a timer of ours keeping it
 * alive (lws's own timers do not), then closes that timer and runs what
 * is left without blocking. */
static void drain_round(uv_loop_t *loop, int ms)
{
    uv_timer_t keep;
    uv_timer_init(loop, &keep);
    uv_timer_start(&keep, drain_tick, 5, 5);
    gint64 until = g_get_monotonic_time() + (gint64)ms * 1000;
    while (g_get_monotonic_time() < until)
        uv_run(loop, UV_RUN_ONCE);
    uv_timer_stop(&keep);
    uv_close((uv_handle_t *)&keep, NULL);
    for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ;
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

static void close_left(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Handles still in the loop, referenced or not. */
static int handles_left(uv_loop_t *loop)
{
    int n = 0;
    uv_walk(loop, count_handle, &n);
    return n;
}

void uvsource_stop(uv_loop_t *loop, void *volatile *done_when_null)
{
    if (!loop)
        return;
    /* lws finishes destroying a context on a foreign loop from the loop's
     * callbacks, and only once the loop holds nothing but its handles:
     * turn the loop in short rounds until lws has closed every handle (or
     * cleared the context pointer), or 3 s pass. */
    for (int round = 0; round < 60 && done_when_null && *done_when_null && handles_left(loop);
         round++)
        drain_round(loop, 50);
    /* What lws left open by then (a client connection that failed just as
     * the server stopped) is closed here, so that the loop can close and
     * free what it holds. */
    int left = handles_left(loop);
    if (left) {
        log_warn("main", "%d event loop handle(s) still open after stopping; closing them", left);
        uv_walk(loop, close_left, NULL);
        for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT); i++)
            ;
    }
    if (uv_loop_close(loop) != 0)
        log_warn("main", "the event loop did not close (%d handle(s) left)", handles_left(loop));
    g_free(loop);
    if (the_source) {
        g_source_destroy(&the_source->base);
        g_source_unref(&the_source->base);
        the_source = NULL;
    }
}
