/* The libuv-in-GLib source (see uvsource.h).
 *
 * prepare runs the loop once without blocking: that applies the watcher
 * changes lws made from GLib callbacks (libuv only tells epoll about them
 * inside uv_run) and serves whatever is already ready; then GLib sleeps on
 * the epoll descriptor, no longer than libuv's next timer. */
#include "server/uvsource.h"

struct uv_gsource {
    GSource base;
    uv_loop_t *loop;
    gpointer tag;
};

static struct uv_gsource *the_source;

static gboolean uvs_prepare(GSource *s, gint *timeout)
{
    struct uv_gsource *u = (struct uv_gsource *)s;
    uv_run(u->loop, UV_RUN_NOWAIT);
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
    uv_run(((struct uv_gsource *)s)->loop, UV_RUN_NOWAIT);
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

void uvsource_stop(uv_loop_t *loop)
{
    if (!loop)
        return;
    /* Closing handles complete in later loop turns; a few are enough. */
    for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ;
    uv_loop_close(loop);
    g_free(loop);
    if (the_source) {
        g_source_destroy(&the_source->base);
        g_source_unref(&the_source->base);
        the_source = NULL;
    }
}
