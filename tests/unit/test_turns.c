/* Turns: per key one item under way, the next started when it is done,
 * in the order added; keys apart do not wait for each other; a key's
 * queue is bounded. */
#include "common/turns.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static GString *started;

static void start(void *op)
{
    g_string_append(started, op);
}

static void test_one_at_a_time_in_order(void **state)
{
    (void)state;
    started = g_string_new(NULL);
    struct turns *t = turns_new();
    turns_add(t, "e1", start, "a");
    turns_add(t, "e1", start, "b");
    turns_add(t, "e2", start, "x"); /* another key: at once */
    turns_add(t, "e1", start, "c");
    assert_string_equal(started->str, "ax");
    turns_done(t, "e1");
    assert_string_equal(started->str, "axb");
    turns_done(t, "e2");
    turns_done(t, "e1");
    assert_string_equal(started->str, "axbc");
    turns_done(t, "e1");
    turns_done(t, "e1"); /* nothing under way: nothing happens */
    turns_add(t, "e1", start, "d"); /* the key is free again */
    assert_string_equal(started->str, "axbcd");
    turns_free(t); /* with "d" under way */
    g_string_free(started, TRUE);
}

/* An item that finishes inside its own start lets the next one start. */
static struct turns *nested;

static void start_and_finish(void *op)
{
    g_string_append(started, op);
    turns_done(nested, "k");
}

static void test_done_inside_start(void **state)
{
    (void)state;
    started = g_string_new(NULL);
    nested = turns_new();
    turns_add(nested, "k", start, "a");
    turns_add(nested, "k", start_and_finish, "b");
    turns_add(nested, "k", start_and_finish, "c");
    turns_add(nested, "k", start, "d");
    turns_done(nested, "k");
    assert_string_equal(started->str, "abcd");
    turns_done(nested, "k");
    turns_add(nested, "k", start, "e");
    assert_string_equal(started->str, "abcde");
    turns_free(nested);
    g_string_free(started, TRUE);
}

/* At most TURNS_MAX items of a key wait (the one under way included):
 * one more is refused and never started; once one is done, one more is
 * taken; other keys are not limited by it. */
static void test_bounded(void **state)
{
    (void)state;
    started = g_string_new(NULL);
    struct turns *t = turns_new();
    for (int i = 0; i < TURNS_MAX; i++)
        assert_true(turns_add(t, "k", start, "a"));
    assert_false(turns_add(t, "k", start, "x"));
    assert_true(turns_add(t, "other", start, "b"));
    assert_string_equal(started->str, "ab");
    turns_done(t, "k"); /* the second a starts */
    assert_true(turns_add(t, "k", start, "c"));
    assert_false(turns_add(t, "k", start, "x"));
    for (int i = 0; i < TURNS_MAX; i++)
        turns_done(t, "k");
    assert_null(strchr(started->str, 'x'));
    assert_int_equal(started->len, TURNS_MAX + 2); /* every a, b, c */
    assert_int_equal(started->str[started->len - 1], 'c');
    turns_free(t);
    g_string_free(started, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_at_a_time_in_order),
        cmocka_unit_test(test_done_inside_start),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
