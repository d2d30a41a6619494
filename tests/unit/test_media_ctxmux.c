/* Member contexts driven over epoll (media/ctxmux.c): their descriptors,
 * timers and sources attached from outside run from the host loop; a
 * descriptor number reused by a new socket is still watched; a removed
 * member drains what it holds and is let go. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <cmocka.h>
#include <glib-unix.h>
#include <unistd.h>

#include "media/ctxmux.h"

static gboolean wake(gpointer ud)
{
    (void)ud;
    return G_SOURCE_CONTINUE;
}

/* Turns the default context until *flag or 2 s have passed (a timer of
 * its own wakes it, so a member that is never woken fails the test
 * rather than hanging it). */
static bool spin_until(const int *flag, int want)
{
    gint64 end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
    guint guard = g_timeout_add(50, wake, NULL);
    while (*flag < want && g_get_monotonic_time() < end)
        g_main_context_iteration(NULL, TRUE);
    g_source_remove(guard);
    return *flag >= want;
}

static void spin_for(int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;
    while (g_get_monotonic_time() < end)
        g_main_context_iteration(NULL, FALSE);
}

static gboolean count_tick(gpointer ud)
{
    (*(int *)ud)++;
    return G_SOURCE_CONTINUE;
}

static gboolean count_once(gpointer ud)
{
    (*(int *)ud)++;
    return G_SOURCE_REMOVE;
}

struct reader {
    int fd, got;
};

static gboolean on_readable(gint fd, GIOCondition cond, gpointer ud)
{
    (void)cond;
    struct reader *r = ud;
    char buf[16];
    if (read(fd, buf, sizeof(buf)) > 0)
        r->got++;
    return G_SOURCE_CONTINUE;
}

static guint watch_fd(GMainContext *ctx, struct reader *r)
{
    GSource *s = g_unix_fd_source_new(r->fd, G_IO_IN);
    g_source_set_callback(s, (GSourceFunc)(void (*)(void))on_readable, r, NULL);
    guint id = g_source_attach(s, ctx);
    g_source_unref(s);
    return id;
}

static void test_timer_runs(void **state)
{
    (void)state;
    struct ctxmux *m = ctxmux_new(NULL);
    GMainContext *ctx = ctxmux_add(m);
    int ticks = 0;
    GSource *t = g_timeout_source_new(10);
    g_source_set_callback(t, count_tick, &ticks, NULL);
    g_source_attach(t, ctx);
    assert_true(spin_until(&ticks, 5));
    g_source_destroy(t);
    g_source_unref(t);
    ctxmux_remove(m, ctx);
    ctxmux_free(m);
}

/* Among many members, a descriptor made readable runs its own member's
 * callback and no other. */
static void test_ready_descriptor_runs_its_member(void **state)
{
    (void)state;
    struct ctxmux *m = ctxmux_new(NULL);
    enum { N = 200 };
    GMainContext *ctx[N];
    struct reader r[N];
    int w[N];
    for (int i = 0; i < N; i++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        r[i] = (struct reader){p[0], 0};
        w[i] = p[1];
        ctx[i] = ctxmux_add(m);
        watch_fd(ctx[i], &r[i]);
    }
    assert_int_equal(ctxmux_members(m), N);
    spin_for(20);
    assert_int_equal(write(w[123], "x", 1), 1);
    assert_true(spin_until(&r[123].got, 1));
    assert_int_equal(write(w[7], "y", 1), 1);
    assert_true(spin_until(&r[7].got, 1));
    for (int i = 0; i < N; i++)
        if (i != 7 && i != 123)
            assert_int_equal(r[i].got, 0);
    for (int i = 0; i < N; i++) {
        ctxmux_remove(m, ctx[i]);
        close(w[i]);
    }
    ctxmux_free(m); /* the pipes' sources go with their contexts */
    for (int i = 0; i < N; i++)
        close(r[i].fd);
}

/* A source attached to an idle member by code running elsewhere on the
 * same thread runs without anything else happening in the member. */
static void test_source_attached_from_outside_wakes(void **state)
{
    (void)state;
    struct ctxmux *m = ctxmux_new(NULL);
    GMainContext *ctx = ctxmux_add(m);
    spin_for(30);
    int ran = 0;
    GSource *idle = g_idle_source_new();
    g_source_set_callback(idle, count_once, &ran, NULL);
    g_source_attach(idle, ctx);
    g_source_unref(idle);
    assert_true(spin_until(&ran, 1));
    GSource *t = g_timeout_source_new(15);
    g_source_set_callback(t, count_once, &ran, NULL);
    g_source_attach(t, ctx);
    g_source_unref(t);
    assert_true(spin_until(&ran, 2));
    ctxmux_remove(m, ctx);
    ctxmux_free(m);
}

/* A socket closed and another opened under the same number, in the same
 * member between two of its turns: the kernel dropped the old one from
 * the epoll set, and the new one must still be watched. */
static void test_reused_descriptor_number(void **state)
{
    (void)state;
    struct ctxmux *m = ctxmux_new(NULL);
    GMainContext *ctx = ctxmux_add(m);
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct reader r = {p[0], 0};
    guint id = watch_fd(ctx, &r);
    assert_int_equal(write(p[1], "a", 1), 1);
    assert_true(spin_until(&r.got, 1));

    /* Same turn of the host: drop the source, close, reopen. */
    g_source_destroy(g_main_context_find_source_by_id(ctx, id));
    int old = p[0];
    close(p[0]);
    close(p[1]);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(p[0], old);
    struct reader r2 = {p[0], 0};
    watch_fd(ctx, &r2);
    spin_for(20);
    assert_int_equal(write(p[1], "b", 1), 1);
    assert_true(spin_until(&r2.got, 1));
    ctxmux_remove(m, ctx);
    ctxmux_free(m);
    close(p[0]);
    close(p[1]);
}

/* A removed member still runs what it holds (a timer due later), and is
 * let go once it holds nothing. */
static void test_removed_member_drains(void **state)
{
    (void)state;
    struct ctxmux *m = ctxmux_new(NULL);
    GMainContext *ctx = ctxmux_add(m);
    GMainContext *other = ctxmux_add(m);
    int ran = 0;
    GSource *t = g_timeout_source_new(40);
    g_source_set_callback(t, count_once, &ran, NULL);
    g_source_attach(t, ctx);
    g_source_unref(t);
    ctxmux_remove(m, ctx);
    assert_int_equal(ctxmux_draining(m), 1);
    spin_for(10);
    assert_int_equal(ctxmux_members(m), 2); /* still holds the timer */
    assert_true(spin_until(&ran, 1));
    spin_for(20);
    assert_int_equal(ctxmux_draining(m), 0);
    assert_int_equal(ctxmux_members(m), 1);
    ctxmux_remove(m, other);
    spin_for(20);
    assert_int_equal(ctxmux_members(m), 0);
    ctxmux_free(m);
}

/* Freed while members are still in use (a transport outliving the
 * server's media): the members go as they are removed, the last one
 * taking the multiplexer with it. */
static void test_free_before_members(void **state)
{
    (void)state;
    struct ctxmux *m = ctxmux_new(NULL);
    GMainContext *a = ctxmux_add(m), *b = ctxmux_add(m);
    GSource *t = g_timeout_source_new(1000);
    g_source_set_callback(t, count_tick, NULL, NULL);
    g_source_attach(t, a);
    g_source_unref(t);
    ctxmux_free(m);
    ctxmux_remove(m, a);
    ctxmux_remove(m, b); /* frees m: nothing left for the leak checker */
}

struct closer {
    struct ctxmux *m;
    GMainContext *ctx;
    int ran;
};

static gboolean close_all(gpointer ud)
{
    struct closer *c = ud;
    ctxmux_remove(c->m, c->ctx);
    ctxmux_free(c->m); /* from inside the multiplexer's own turn */
    c->ran++;
    return G_SOURCE_REMOVE;
}

/* A member's callback that removes itself and frees the multiplexer: the
 * free waits for the end of the turn. */
static void test_free_from_a_callback(void **state)
{
    (void)state;
    struct closer c = {ctxmux_new(NULL), NULL, 0};
    c.ctx = ctxmux_add(c.m);
    GSource *idle = g_idle_source_new();
    g_source_set_callback(idle, close_all, &c, NULL);
    g_source_attach(idle, c.ctx);
    g_source_unref(idle);
    assert_true(spin_until(&c.ran, 1));
    spin_for(10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_runs),
        cmocka_unit_test(test_ready_descriptor_runs_its_member),
        cmocka_unit_test(test_source_attached_from_outside_wakes),
        cmocka_unit_test(test_reused_descriptor_number),
        cmocka_unit_test(test_removed_member_drains),
        cmocka_unit_test(test_free_before_members),
        cmocka_unit_test(test_free_from_a_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
