/* The presence registry: devices per user, replacement of the same device,
 * subscriber notification, clean-up of unsubscribed users. */
#include "push/presence.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static GPtrArray *notes; /* "subscriber:user" strings */

static void on_change(const char *user_id, void *const *subscribers, unsigned n, void *ud)
{
    (void)ud;
    for (unsigned i = 0; i < n; i++)
        g_ptr_array_add(notes, g_strdup_printf("%s:%s", (char *)subscribers[i], user_id));
}

static int setup(void **state)
{
    (void)state;
    notes = g_ptr_array_new_with_free_func(g_free);
    presence_init(on_change, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    presence_shutdown();
    g_ptr_array_free(notes, TRUE);
    return 0;
}

static void test_devices(void **state)
{
    (void)state;
    char a[] = "connA", b[] = "connB", c[] = "connC";
    assert_false(presence_online("u1"));
    assert_null(presence_add("u1", a, "phone", "android", 1));
    assert_null(presence_add("u1", b, "desk", "web", 2));
    assert_true(presence_online("u1"));
    json_t *devs = presence_devices("u1");
    assert_int_equal(json_array_size(devs), 2);
    json_decref(devs);
    /* The same device again replaces the older connection. */
    assert_ptr_equal(presence_add("u1", c, "phone", "android", 3), a);
    devs = presence_devices("u1");
    assert_int_equal(json_array_size(devs), 2);
    json_decref(devs);
    presence_remove("u1", a, "phone"); /* already replaced: no-op */
    presence_remove("u1", b, "desk");
    presence_remove("u1", c, "phone");
    assert_false(presence_online("u1"));
    devs = presence_devices("u1");
    assert_int_equal(json_array_size(devs), 0);
    json_decref(devs);
}

static void test_subscribers(void **state)
{
    (void)state;
    char s1[] = "s1", s2[] = "s2", d[] = "dev";
    assert_int_equal(presence_subscribe(s1, "u1"), 1);
    assert_int_equal(presence_subscribe(s1, "u1"), 1); /* idempotent */
    assert_int_equal(presence_subscribe(s1, "u2"), 2);
    assert_int_equal(presence_subscribe(s2, "u1"), 1);
    presence_add("u1", d, "x", "web", 1);
    assert_int_equal(notes->len, 2);
    presence_add("u3", d, "x", "web", 1); /* nobody follows u3 */
    assert_int_equal(notes->len, 2);
    presence_unsubscribe_all(s1);
    presence_remove("u1", d, "x");
    assert_int_equal(notes->len, 3);
    assert_string_equal(g_ptr_array_index(notes, 2), "s2:u1");
    presence_unsubscribe_all(s2);
    presence_unsubscribe_all(s2); /* twice is fine */
    presence_remove("u3", d, "x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
