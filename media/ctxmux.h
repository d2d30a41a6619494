/* Many small GMainContexts driven from one source of a host loop, over
 * epoll.
 *
 * GLib's loop goes over every source and polls every descriptor of its
 * context on each turn. With one context for the whole SFU, a turn that
 * serves one packet pays for every device's sockets and timers: at a few
 * hundred devices that is most of a forwarding server's time. Here each
 * device's transport (its libnice agent, sockets and timers) lives in a
 * context of its own. The multiplexer keeps every member context
 * prepared, with its descriptors registered in one epoll set and its next
 * timeout noted; a turn of the host loop then checks and dispatches only
 * the members whose descriptors are ready or whose time has come, and
 * prepares them again. A source attached to a member from outside wakes
 * it (G_MAIN_CONTEXT_FLAGS_OWNERLESS_POLLING and the context's own wake-up
 * descriptor, which is in the set).
 *
 * A removed member is still driven until it holds no source, so that what
 * libnice left pending after its agent was released (timers, sockets
 * closing) runs and frees itself; then the context is released. */
#ifndef YJT_MEDIA_CTXMUX_H
#define YJT_MEDIA_CTXMUX_H

#include <glib.h>

struct ctxmux;

/* Attached to host (NULL: the default context); NULL if epoll fails. */
struct ctxmux *ctxmux_new(GMainContext *host);
/* Stops driving: gives the removed members a few rounds to drain and
 * frees them. Members still in use are freed as they are removed, and the
 * last one frees the multiplexer. */
void ctxmux_free(struct ctxmux *m);

/* A new member context, owned by the calling thread (the host's). */
GMainContext *ctxmux_add(struct ctxmux *m);
/* Hands the member back: driven until it is empty, then unreferenced. */
void ctxmux_remove(struct ctxmux *m, GMainContext *ctx);

/* Members, and of those removed ones still draining. */
guint ctxmux_members(const struct ctxmux *m);
guint ctxmux_draining(const struct ctxmux *m);

#endif
