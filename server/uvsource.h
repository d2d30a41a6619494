/* A libuv loop driven from the GLib main loop.
 *
 * libwebsockets watches each socket through the event library it runs on.
 * GLib's main loop polls every watched descriptor on every iteration
 * (poll(2), plus a prepare and a check per source), so with one source per
 * WebSocket an iteration costs O(connections): at 19,000 idle connections
 * keep-alive traffic alone kept a core a third busy. libuv keeps its
 * descriptors in one epoll set, so lws runs on libuv and this GSource puts
 * that whole set into GLib as a single descriptor. GLib stays the one main
 * loop of the process (timers, libnice, hiredis); lws callbacks still run
 * on the main thread. */
#ifndef YJT_UVSOURCE_H
#define YJT_UVSOURCE_H

#include <glib.h>
#include <uv.h>

/* Creates a libuv loop and attaches its source to the default GLib main
 * context. Returns the loop (for lws foreign_loops), or NULL. */
uv_loop_t *uvsource_start(void);
/* Called from an lws callback that read part of a message: the source runs
 * the loop again (a bounded number of times) before the turn ends. */
void uvsource_more(void);
/* After lws_context_destroy(): runs the loop until lws has finished (it
 * sets *done_when_null, its info.pcontext, to NULL) or 3 s pass, then
 * closes and frees the loop and detaches the source. */
void uvsource_stop(uv_loop_t *loop, void *volatile *done_when_null);

#endif
