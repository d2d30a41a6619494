/* Store conformance for the time-series operations (sensor readings):
 * append with duplicate detection, the latest point per key, ranges,
 * trims and drops, with and without write batching, and across a reopen.
 * Only store.h is used, so another backend runs the same file. */
#include "records/store.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static char *dir;
static bool batched;

static struct store *open_store(void)
{
    char *err = NULL;
    struct store *st = store_open_sqlite(dir, &err);
    assert_non_null(st);
    if (batched)
        store_set_batching(st, true, NULL, NULL);
    return st;
}

static int setup(void **state)
{
    dir = g_dir_make_tmp("yjt-store-ts-XXXXXX", NULL);
    batched = false;
    *state = open_store();
    return 0;
}

static int setup_batched(void **state)
{
    dir = g_dir_make_tmp("yjt-store-ts-XXXXXX", NULL);
    batched = true;
    *state = open_store();
    return 0;
}

static int teardown(void **state)
{
    store_close(*state);
    const char *names[] = {"yjt.db", "yjt.db-wal", "yjt.db-shm"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        char *p = g_build_filename(dir, names[i], NULL);
        g_unlink(p);
        g_free(p);
    }
    g_rmdir(dir);
    g_free(dir);
    return 0;
}

struct pts {
    int n;
    int64_t ts[64];
    double v[64];
};

static bool collect(int64_t ts, double value, void *ud)
{
    struct pts *p = ud;
    p->ts[p->n] = ts;
    p->v[p->n++] = value;
    return p->n < 64;
}

static bool collect_latest(const struct store_ts_point *pt, void *ud)
{
    GHashTable *t = ud;
    struct store_ts_point *copy = g_memdup2(pt, sizeof(*pt));
    g_hash_table_insert(t, &copy->key, copy);
    return true;
}

static void test_append_range_latest(void **state)
{
    struct store *st = *state;
    struct store_ts_point pts[] = {
        {1, 1000, 1.5, 0}, {1, 2000, 2.5, 0}, {2, 1000, -3, 0}, {1, 1500, 9, 0}};
    struct store_ts_point latest[] = {{1, 2000, 2.5, 777}, {2, 1000, -3, 778}};
    bool ins[4];
    assert_int_equal(store_ts_write(st, pts, 4, ins, latest, 2), STORE_OK);
    assert_true(ins[0] && ins[1] && ins[2] && ins[3]);
    assert_int_equal(store_commit(st), STORE_OK);

    /* the same (key, ts) again is not written, and says so */
    struct store_ts_point again[] = {{1, 1000, 42, 0}, {1, 3000, 3, 0}};
    assert_int_equal(store_ts_write(st, again, 2, ins, NULL, 0), STORE_OK);
    assert_false(ins[0]);
    assert_true(ins[1]);

    struct pts got = {0};
    assert_int_equal(store_ts_range(st, 1, 0, 10000, 100, collect, &got), STORE_OK);
    assert_int_equal(got.n, 4);
    int64_t want_ts[] = {1000, 1500, 2000, 3000};
    double want_v[] = {1.5, 9, 2.5, 3};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(got.ts[i], want_ts[i]);
        assert_true(got.v[i] == want_v[i]);
    }
    /* half-open range and limit */
    memset(&got, 0, sizeof(got));
    assert_int_equal(store_ts_range(st, 1, 1500, 3000, 100, collect, &got), STORE_OK);
    assert_int_equal(got.n, 2);
    memset(&got, 0, sizeof(got));
    assert_int_equal(store_ts_range(st, 1, 0, 10000, 1, collect, &got), STORE_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.ts[0], 1000);

    GHashTable *t = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    assert_int_equal(store_ts_latest_each(st, collect_latest, t), STORE_OK);
    assert_int_equal(g_hash_table_size(t), 2);
    int64_t k = 1;
    struct store_ts_point *l = g_hash_table_lookup(t, &k);
    assert_int_equal(l->ts, 2000);
    assert_int_equal(l->seen, 777);
    assert_true(l->value == 2.5);
    g_hash_table_destroy(t);
}

static void test_non_finite_refused_whole(void **state)
{
    struct store *st = *state;
    struct store_ts_point pts[] = {{5, 1, 1, 0}, {5, 2, NAN, 0}};
    assert_int_equal(store_ts_write(st, pts, 2, NULL, NULL, 0), STORE_EINVAL);
    struct pts got = {0};
    assert_int_equal(store_ts_range(st, 5, 0, 100, 10, collect, &got), STORE_OK);
    assert_int_equal(got.n, 0); /* all or nothing */
}

static void test_trim_drop_reopen(void **state)
{
    struct store *st = *state;
    struct store_ts_point pts[10];
    for (int i = 0; i < 10; i++)
        pts[i] = (struct store_ts_point){7, i * 100, i, 0};
    struct store_ts_point latest = {7, 900, 9, 1};
    assert_int_equal(store_ts_write(st, pts, 10, NULL, &latest, 1), STORE_OK);
    struct store_ts_point other = {8, 50, 1, 0};
    assert_int_equal(store_ts_write(st, &other, 1, NULL, &other, 1), STORE_OK);
    int64_t deleted = -1;
    assert_int_equal(store_ts_trim_before(st, 7, 450, &deleted), STORE_OK);
    assert_int_equal(deleted, 5);
    assert_int_equal(store_commit(st), STORE_OK);

    store_close(st);
    *state = st = open_store();
    struct pts got = {0};
    assert_int_equal(store_ts_range(st, 7, 0, 10000, 100, collect, &got), STORE_OK);
    assert_int_equal(got.n, 5);
    assert_int_equal(got.ts[0], 500);
    GHashTable *t = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    assert_int_equal(store_ts_latest_each(st, collect_latest, t), STORE_OK);
    assert_int_equal(g_hash_table_size(t), 2); /* trimming keeps the latest */

    assert_int_equal(store_ts_drop(st, 7), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);
    memset(&got, 0, sizeof(got));
    assert_int_equal(store_ts_range(st, 7, 0, 10000, 100, collect, &got), STORE_OK);
    assert_int_equal(got.n, 0);
    g_hash_table_remove_all(t);
    assert_int_equal(store_ts_latest_each(st, collect_latest, t), STORE_OK);
    assert_int_equal(g_hash_table_size(t), 1);
    memset(&got, 0, sizeof(got));
    assert_int_equal(store_ts_range(st, 8, 0, 10000, 100, collect, &got), STORE_OK);
    assert_int_equal(got.n, 1);
    g_hash_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_range_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_refused_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_drop_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_range_latest, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_refused_whole, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_trim_drop_reopen, setup_batched, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
