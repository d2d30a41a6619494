/* The inbox's trims: users are staggered, so that a push to many users at
 * the same seq trims only about one in TRIM_EVERY (32) of them; a
 * fan-out's trims wait for inbox_trim_due() and then leave each inbox
 * within its count limit (plus one trimming interval); a single push
 * trims at once. On SQLite, or Redis with YJT_TEST_REDIS. */
#include "push/inbox.h"
#include "store_fixture.h"

#include <stdio.h>

#define USERS 300
#define MAX_COUNT 10

static GPtrArray *user_ids(void)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < USERS; i++)
        g_ptr_array_add(ids, g_strdup_printf("u%03d", i));
    return ids;
}

static bool count_one(int64_t seq, json_t *item, void *ud)
{
    (void)seq;
    (void)item;
    (*(int *)ud)++;
    return true;
}

/* Pushes kept in an inbox, read from the store (not through the inbox,
 * whose reads trim). */
static int kept(struct store *st, const char *user)
{
    char *key = g_strconcat("inbox/", user, NULL);
    int n = 0;
    assert_int_equal(store_seq_range(st, key, 0, 1000, false, count_one, &n), 0);
    g_free(key);
    return n;
}

static void push_all(GPtrArray *ids, int k)
{
    char title[32];
    snprintf(title, sizeof(title), "notice %d", k);
    assert_int_equal(inbox_push_many((const char *const *)ids->pdata, (int)ids->len, "notice",
                                     "normal", 3600, title, "body", NULL, NULL),
                     0);
}

static void test_fan_out_trims_are_staggered_and_put_off(void **state)
{
    struct store *st = *state;
    struct inbox_limits limits = {30 * 24 * 3600, MAX_COUNT};
    inbox_init(st, &limits, NULL, NULL);
    GPtrArray *ids = user_ids();
    int total = 0, most = 0;
    for (int k = 1; k <= 96; k++) {
        push_all(ids, k);
        int due = inbox_trim_due(1000000);
        total += due;
        most = MAX(most, due);
    }
    /* Each user trims once every 32 pushes: three times in 96, spread. */
    assert_int_equal(total, 3 * USERS);
    assert_true(most < USERS / 4);
    for (guint i = 0; i < ids->len; i++) {
        int n = kept(st, g_ptr_array_index(ids, i));
        assert_true(n >= MAX_COUNT && n <= MAX_COUNT + 32);
    }
    /* Put off: nothing is trimmed until inbox_trim_due(), a few at a time. */
    for (int k = 97; k <= 140; k++)
        push_all(ids, k);
    int over = 0;
    for (guint i = 0; i < ids->len; i++)
        over += kept(st, g_ptr_array_index(ids, i)) > MAX_COUNT + 32;
    assert_true(over > 0);
    assert_int_equal(inbox_trim_due(10), 10);
    int rest = inbox_trim_due(1000000);
    assert_true(rest > 0);
    assert_int_equal(inbox_trim_due(1000000), 0);
    for (guint i = 0; i < ids->len; i++)
        assert_true(kept(st, g_ptr_array_index(ids, i)) <= MAX_COUNT + 32);
    g_ptr_array_free(ids, TRUE);
    inbox_shutdown();
}

static void test_a_single_push_trims_at_once(void **state)
{
    struct store *st = *state;
    struct inbox_limits limits = {30 * 24 * 3600, MAX_COUNT};
    inbox_init(st, &limits, NULL, NULL);
    for (int k = 0; k < 100; k++)
        assert_int_equal(inbox_push("alone", "notice", "normal", 3600, "t", "b", NULL, NULL), 0);
    assert_int_equal(inbox_trim_due(1000000), 0);
    assert_true(kept(st, "alone") <= MAX_COUNT + 32);
    inbox_shutdown();
}

struct got {
    GPtrArray *texts; /* each delivery's event */
    GPtrArray *users;
};

static void on_deliver(const char *user_id, int64_t seq, const char *text, size_t len, void *ud)
{
    (void)seq;
    struct got *g = ud;
    g_ptr_array_add(g->texts, g_strndup(text, len));
    g_ptr_array_add(g->users, g_strdup(user_id));
}

/* Each user's event is the item's with its own seq and id spliced in, as
 * JSON that parses, also for a user id that needs escaping. */
static void test_each_event_names_its_user_and_seq(void **state)
{
    struct store *st = *state;
    struct inbox_limits limits = {30 * 24 * 3600, MAX_COUNT};
    struct got g = {g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free)};
    inbox_init(st, &limits, on_deliver, &g);
    GPtrArray *ids = user_ids();
    g_ptr_array_add(ids, g_strdup("q\"b\\s/\xe5\x8d\xb1"));
    for (int k = 1; k <= 2; k++)
        push_all(ids, k);
    assert_int_equal(g.texts->len, 2 * ids->len);
    for (guint i = 0; i < g.texts->len; i++) {
        json_error_t err;
        json_t *ev = json_loads(g_ptr_array_index(g.texts, i), 0, &err);
        assert_non_null(ev);
        int64_t seq = json_integer_value(json_object_get(ev, "seq"));
        assert_int_equal(seq, i < ids->len ? 1 : 2);
        char *id = inbox_push_id(g_ptr_array_index(g.users, i), seq);
        assert_string_equal(json_string_value(json_object_get(ev, "id")), id);
        assert_string_equal(json_string_value(json_object_get(ev, "type")), "push");
        assert_string_equal(json_string_value(json_object_get(ev, "kind")), "notice");
        assert_string_equal(json_string_value(json_object_get(ev, "body")), "body");
        g_free(id);
        json_decref(ev);
    }
    g_ptr_array_free(ids, TRUE);
    inbox_shutdown();
    g_ptr_array_free(g.texts, TRUE);
    g_ptr_array_free(g.users, TRUE);
}

int main(void)
{
    redis_url = getenv("YJT_TEST_REDIS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fan_out_trims_are_staggered_and_put_off, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_single_push_trims_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_event_names_its_user_and_seq, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
