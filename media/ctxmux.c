/* Many small GMainContexts driven over epoll (see ctxmux.h).
 *
 * Each member is kept in GLib's "prepared and queried" state: its poll
 * records (descriptors and events) are registered in the epoll set with
 * the member as their data, and its next timeout is noted as a deadline.
 * A turn runs, for each member that is ready, the rest of GLib's
 * iteration: a poll() of its own few records (to fill in what happened),
 * check, dispatch, then prepare and query again to refresh its
 * registrations. Descriptors are re-registered with EPOLL_CTL_MOD (ADD
 * when the kernel no longer knows them) at every refresh: a socket closed
 * and another opened under the same number between two refreshes would
 * otherwise be missed, since the kernel drops closed descriptors from an
 * epoll set by itself. */
#include "media/ctxmux.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <unistd.h>

/* How long a removed member is driven at most before it is let go. */
#define DRAIN_MAX_US (60 * G_USEC_PER_SEC)
#define EVENTS_PER_WAIT 256
/* How often a member with a descriptor epoll cannot watch is looked at. */
#define UNWATCHED_US (10 * 1000)

struct member {
    struct ctxmux *mux;
    GMainContext *ctx;
    GPollFD *fds;
    gint nfds, cap, prio;
    gint64 deadline;   /* monotonic microseconds; G_MAXINT64: none */
    gint64 removed_at; /* 0 while in use */
    bool empty;        /* removed, and since then found with no source but
                        * the wake-up record */
    bool ready;        /* in this turn's list */
    bool unwatched;    /* has a descriptor epoll refused */
};

struct ctxmux {
    GSource base;
    int epfd;
    gpointer tag;
    GPtrArray *members; /* struct member *, in no order */
    GPtrArray *ready;
    GHashTable *owner; /* descriptor -> the member registered for it */
    guint draining;
    bool closing;     /* ctxmux_free() ran: goes when its last member does */
    bool dispatching; /* in mux_dispatch() */
    bool free_asked;  /* ctxmux_free() called from a member's callback */
};

static guint32 to_epoll(gushort events)
{
    guint32 e = 0;
    if (events & G_IO_IN)
        e |= EPOLLIN;
    if (events & G_IO_OUT)
        e |= EPOLLOUT;
    if (events & G_IO_PRI)
        e |= EPOLLPRI;
    return e;
}

static void watch(struct ctxmux *m, struct member *mem, int fd, gushort events)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};
    if (epoll_ctl(m->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 &&
        (errno != ENOENT || epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)) {
        /* Not something epoll watches (a regular file, say): the member
         * is looked at every few milliseconds instead. */
        mem->unwatched = true;
        return;
    }
    g_hash_table_insert(m->owner, GINT_TO_POINTER(fd), mem);
}

static void unwatch(struct ctxmux *m, struct member *mem, int fd)
{
    if (g_hash_table_lookup(m->owner, GINT_TO_POINTER(fd)) != mem)
        return; /* closed, and its number is another member's now */
    g_hash_table_remove(m->owner, GINT_TO_POINTER(fd));
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, fd, NULL); /* ENOENT/EBADF: it was closed */
}

static bool has_fd(const struct member *mem, int fd)
{
    for (gint i = 0; i < mem->nfds; i++)
        if (mem->fds[i].fd == fd)
            return true;
    return false;
}

/* GLib's prepare and query for the member; its registrations and deadline
 * follow what they say. */
static void refresh(struct member *mem)
{
    struct ctxmux *m = mem->mux;
    gint was_n = mem->nfds;
    gint *was = g_newa(gint, was_n > 0 ? was_n : 1);
    for (gint i = 0; i < was_n; i++)
        was[i] = mem->fds[i].fd;

    gint prio = G_MAXINT, timeout = -1, n;
    gboolean due = g_main_context_prepare(mem->ctx, &prio);
    while ((n = g_main_context_query(mem->ctx, prio, &timeout, mem->fds, mem->cap)) > mem->cap) {
        mem->cap = n;
        mem->fds = g_renew(GPollFD, mem->fds, mem->cap);
    }
    mem->nfds = n;
    mem->prio = prio;
    gint64 now = g_get_monotonic_time();
    mem->deadline = timeout < 0 ? G_MAXINT64 : now + (gint64)timeout * 1000;
    mem->empty = mem->removed_at && !due && timeout < 0 && n <= 1;
    mem->unwatched = false;
    for (gint i = 0; i < n; i++)
        watch(m, mem, mem->fds[i].fd, mem->fds[i].events);
    if (mem->unwatched)
        mem->deadline = MIN(mem->deadline, now + UNWATCHED_US);
    if (mem->removed_at)
        mem->deadline = MIN(mem->deadline, mem->removed_at + DRAIN_MAX_US);
    for (gint i = 0; i < was_n; i++)
        if (!has_fd(mem, was[i]))
            unwatch(m, mem, was[i]);
}

/* The rest of one GLib iteration, then ready for the next. */
static void run(struct member *mem)
{
    if (mem->nfds > 0)
        g_poll(mem->fds, (guint)mem->nfds, 0);
    if (g_main_context_check(mem->ctx, mem->prio, mem->fds, mem->nfds))
        g_main_context_dispatch(mem->ctx);
    refresh(mem);
}

static void member_free(struct ctxmux *m, struct member *mem)
{
    for (gint i = 0; i < mem->nfds; i++)
        unwatch(m, mem, mem->fds[i].fd);
    g_main_context_release(mem->ctx);
    g_main_context_unref(mem->ctx);
    g_free(mem->fds);
    g_free(mem);
}

/* Lets go of removed members that are empty or have drained long enough.
 * Emptiness is looked at again: a source may have been attached since the
 * member's last turn. */
static void reap(struct ctxmux *m, gint64 now)
{
    for (guint i = 0; i < m->members->len;) {
        struct member *mem = m->members->pdata[i];
        bool expired = mem->removed_at && now - mem->removed_at >= DRAIN_MAX_US;
        if (mem->removed_at && mem->empty && !expired)
            refresh(mem);
        if (mem->removed_at && (mem->empty || expired)) {
            g_ptr_array_remove_index_fast(m->members, i);
            m->draining--;
            member_free(m, mem);
        } else {
            i++;
        }
    }
}

static gint64 next_deadline(const struct ctxmux *m)
{
    gint64 next = G_MAXINT64;
    for (guint i = 0; i < m->members->len; i++) {
        const struct member *mem = m->members->pdata[i];
        if (mem->deadline < next)
            next = mem->deadline;
    }
    return next;
}

static gboolean mux_prepare(GSource *s, gint *timeout)
{
    gint64 next = next_deadline((struct ctxmux *)s), now = g_get_monotonic_time();
    if (next <= now) {
        *timeout = 0;
        return TRUE;
    }
    *timeout = next == G_MAXINT64 ? -1 : (gint)MIN((next - now + 999) / 1000, G_MAXINT);
    return FALSE;
}

static gboolean mux_check(GSource *s)
{
    struct ctxmux *m = (struct ctxmux *)s;
    return g_source_query_unix_fd(s, m->tag) != 0 || next_deadline(m) <= g_get_monotonic_time();
}

static gboolean mux_dispatch(GSource *s, GSourceFunc cb, gpointer ud)
{
    (void)cb;
    (void)ud;
    struct ctxmux *m = (struct ctxmux *)s;
    struct epoll_event ev[EVENTS_PER_WAIT];
    int n = epoll_wait(m->epfd, ev, EVENTS_PER_WAIT, 0);
    for (int i = 0; i < n; i++) {
        struct member *mem = g_hash_table_lookup(m->owner, GINT_TO_POINTER(ev[i].data.fd));
        if (mem && !mem->ready) {
            mem->ready = true;
            g_ptr_array_add(m->ready, mem);
        }
    }
    gint64 now = g_get_monotonic_time();
    for (guint i = 0; i < m->members->len; i++) {
        struct member *mem = m->members->pdata[i];
        if (!mem->ready && mem->deadline <= now) {
            mem->ready = true;
            g_ptr_array_add(m->ready, mem);
        }
    }
    /* Members are only freed by reap(), below: a member removed by
     * another's callback stays valid through the list. */
    m->dispatching = true;
    for (guint i = 0; i < m->ready->len; i++)
        run(m->ready->pdata[i]);
    m->dispatching = false;
    for (guint i = 0; i < m->ready->len; i++)
        ((struct member *)m->ready->pdata[i])->ready = false;
    g_ptr_array_set_size(m->ready, 0);
    if (m->free_asked) {
        ctxmux_free(m); /* the host source goes with it */
        return G_SOURCE_REMOVE;
    }
    if (m->draining)
        reap(m, g_get_monotonic_time());
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs mux_funcs = {mux_prepare, mux_check, mux_dispatch, NULL, NULL, NULL};

struct ctxmux *ctxmux_new(GMainContext *host)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return NULL;
    struct ctxmux *m = (struct ctxmux *)g_source_new(&mux_funcs, sizeof(*m));
    m->epfd = epfd;
    m->members = g_ptr_array_new();
    m->ready = g_ptr_array_new();
    m->owner = g_hash_table_new(g_direct_hash, g_direct_equal);
    m->tag = g_source_add_unix_fd(&m->base, epfd, G_IO_IN);
    g_source_set_name(&m->base, "media contexts");
    g_source_attach(&m->base, host);
    return m;
}

static void finish(struct ctxmux *m)
{
    g_ptr_array_free(m->members, TRUE);
    g_ptr_array_free(m->ready, TRUE);
    g_hash_table_destroy(m->owner);
    close(m->epfd);
    g_source_unref(&m->base);
}

void ctxmux_free(struct ctxmux *m)
{
    if (!m)
        return;
    if (m->dispatching) {
        m->free_asked = true; /* done when the turn is over */
        return;
    }
    /* What the removed members still hold, given a few rounds to run. */
    for (int round = 0; round < 20 && m->draining; round++) {
        for (guint i = 0; i < m->members->len; i++) {
            struct member *mem = m->members->pdata[i];
            if (mem->removed_at)
                run(mem);
        }
        reap(m, g_get_monotonic_time());
    }
    g_source_destroy(&m->base); /* no more turns */
    reap(m, G_MAXINT64);        /* the removed ones left: all past their time */
    m->closing = true;
    if (m->members->len == 0)
        finish(m);
    /* Otherwise the last member's ctxmux_remove() finishes it. */
}

GMainContext *ctxmux_add(struct ctxmux *m)
{
    struct member *mem = g_new0(struct member, 1);
    mem->mux = m;
    mem->ctx = g_main_context_new_with_flags(G_MAIN_CONTEXT_FLAGS_OWNERLESS_POLLING);
    g_main_context_acquire(mem->ctx);
    mem->deadline = G_MAXINT64;
    g_ptr_array_add(m->members, mem);
    refresh(mem);
    return mem->ctx;
}

void ctxmux_remove(struct ctxmux *m, GMainContext *ctx)
{
    for (guint i = 0; i < m->members->len; i++) {
        struct member *mem = m->members->pdata[i];
        if (mem->ctx != ctx || mem->removed_at)
            continue;
        if (m->closing) {
            g_ptr_array_remove_index_fast(m->members, i);
            member_free(m, mem);
            if (m->members->len == 0)
                finish(m);
        } else {
            /* Not prepared here: this may run inside the member's own
             * dispatch. Its next turn comes at once and says whether it
             * is empty. */
            mem->removed_at = g_get_monotonic_time();
            mem->empty = false;
            mem->deadline = mem->removed_at;
            m->draining++;
        }
        return;
    }
}

guint ctxmux_members(const struct ctxmux *m)
{
    return m->members->len;
}

guint ctxmux_draining(const struct ctxmux *m)
{
    return m->draining;
}
