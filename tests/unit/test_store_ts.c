/* Store conformance for the time-series operations (sensor readings):
 * the log (append, ids, replay after an id, trim), chunks (put with the
 * latest point and log_upto, ranges of overlapping chunks, the retention
 * trim), drops, with and without write batching, and across a reopen.
 * Only store.h is used: it runs against SQLite and, when YJT_TEST_REDIS
 * names a Redis server (tests/unit/with_redis.sh), against Redis. */
#include "records/store.h"
#include "store_loop.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char *dir;
static bool batched;
static const char *redis_url;
static char prefix[64];

static struct store *open_store(void)
{
    char *err = NULL;
    struct store *st =
        redis_url ? store_open_redis(redis_url, prefix, &err) : store_open_sqlite(dir, &err);
    if (!st)
        fail_msg("%s", err);
    if (batched)
        store_set_batching(st, true, NULL, NULL);
    return st;
}

static int tests_run;

static int setup(void **state)
{
    snprintf(prefix, sizeof(prefix), "t%d.%d:", (int)getpid(), ++tests_run);
    dir = g_dir_make_tmp("yjt-store-ts-XXXXXX", NULL);
    batched = false;
    *state = open_store();
    return 0;
}

static int setup_batched(void **state)
{
    snprintf(prefix, sizeof(prefix), "t%d.%d:", (int)getpid(), ++tests_run);
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

struct logrows {
    int rows;
    int64_t ids[16], seen[16];
    int n[16];
    struct store_ts_point first[16];
};

static bool collect_log(int64_t id, int64_t seen, const struct store_ts_point *pts, int n, void *ud)
{
    struct logrows *l = ud;
    l->ids[l->rows] = id;
    l->seen[l->rows] = seen;
    l->n[l->rows] = n;
    l->first[l->rows] = pts[0];
    return ++l->rows < 16;
}

struct chunks {
    int chunks, points;
    int64_t first[16];
    int64_t ts[256];
    double v[256];
};

static bool collect_chunk(const struct store_ts_sample *pts, int n, void *ud)
{
    struct chunks *c = ud;
    c->first[c->chunks++] = pts[0].ts;
    for (int i = 0; i < n && c->points < 256; i++) {
        c->ts[c->points] = pts[i].ts;
        c->v[c->points++] = pts[i].value;
    }
    return c->chunks < 16;
}

struct latest {
    GHashTable *pts;  /* &key -> struct store_ts_point* */
    GHashTable *upto; /* &key -> int64_t* */
};

static bool collect_latest(const struct store_ts_point *pt, int64_t log_upto, void *ud)
{
    struct latest *l = ud;
    struct store_ts_point *copy = g_memdup2(pt, sizeof(*pt));
    int64_t *u = g_new(int64_t, 1);
    *u = log_upto;
    g_hash_table_insert(l->pts, &copy->key, copy);
    g_hash_table_insert(l->upto, &copy->key, u);
    return true;
}

static void latest_load(struct store *st, struct latest *l)
{
    l->pts = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    l->upto = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    assert_int_equal(store_ts_latest_each(st, collect_latest, l), STORE_OK);
}

static void latest_free(struct latest *l)
{
    g_hash_table_destroy(l->upto);
    g_hash_table_destroy(l->pts);
}

static void test_log_append_each_trim(void **state)
{
    struct store *st = *state;
    struct store_ts_point a[] = {{7, 1000, 1.5, 0}, {8, 1000, -2.0, 0}, {7, 1001, 3.0, 0}};
    struct store_ts_point b[] = {{9, 2000, 0.25, 0}};
    int64_t id1 = 0, id2 = 0, id3 = 0;
    assert_int_equal(store_ts_log_append(st, 5000, a, 3, &id1), STORE_OK);
    assert_int_equal(store_ts_log_append(st, 6000, b, 1, &id2), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);
    assert_true(id1 > 0);
    assert_int_equal(id2, id1 + 1);

    struct logrows l = {0};
    assert_int_equal(store_ts_log_each(st, 0, collect_log, &l), STORE_OK);
    assert_int_equal(l.rows, 2);
    assert_int_equal(l.ids[0], id1);
    assert_int_equal(l.n[0], 3);
    assert_int_equal(l.seen[0], 5000);
    assert_int_equal(l.first[0].key, 7);
    assert_int_equal(l.first[0].ts, 1000);
    assert_true(l.first[0].value == 1.5);
    assert_int_equal(l.first[0].seen, 5000);
    assert_int_equal(l.n[1], 1);
    assert_true(l.first[1].value == 0.25);

    memset(&l, 0, sizeof(l));
    assert_int_equal(store_ts_log_each(st, id1, collect_log, &l), STORE_OK);
    assert_int_equal(l.rows, 1);
    assert_int_equal(l.ids[0], id2);

    /* trimmed rows go; ids are never reused, even once the log is empty */
    assert_int_equal(store_ts_log_trim(st, id2), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_ts_log_each(st, 0, collect_log, &l), STORE_OK);
    assert_int_equal(l.rows, 0);
    store_close(st);
    *state = st = open_store();
    assert_int_equal(store_ts_log_append(st, 7000, b, 1, &id3), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);
    assert_true(id3 > id2);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_ts_log_each(st, 0, collect_log, &l), STORE_OK);
    assert_int_equal(l.rows, 1);
    assert_int_equal(l.ids[0], id3);
}

static void test_non_finite_refused_whole(void **state)
{
    struct store *st = *state;
    struct store_ts_point bad[] = {{1, 1000, 1.0, 0}, {1, 1001, NAN, 0}};
    int64_t id = 0;
    assert_int_equal(store_ts_log_append(st, 1, bad, 2, &id), STORE_EINVAL);
    struct store_ts_sample sbad[] = {{1000, 1.0}, {1001, INFINITY}};
    assert_int_equal(store_ts_chunk_put(st, 1, sbad, 2, NULL, 0), STORE_EINVAL);
    /* samples must be in ts order, without repeats */
    struct store_ts_sample unordered[] = {{1001, 1.0}, {1000, 2.0}};
    assert_int_equal(store_ts_chunk_put(st, 1, unordered, 2, NULL, 0), STORE_EINVAL);
    struct store_ts_sample twice[] = {{1000, 1.0}, {1000, 2.0}};
    assert_int_equal(store_ts_chunk_put(st, 1, twice, 2, NULL, 0), STORE_EINVAL);
    assert_int_equal(store_commit(st), STORE_OK);
    struct logrows l = {0};
    assert_int_equal(store_ts_log_each(st, 0, collect_log, &l), STORE_OK);
    assert_int_equal(l.rows, 0);
    struct chunks c = {0};
    assert_int_equal(store_ts_chunk_range(st, 1, 0, 10000, collect_chunk, &c), STORE_OK);
    assert_int_equal(c.chunks, 0);
}

static void test_chunks_range_latest(void **state)
{
    struct store *st = *state;
    struct store_ts_sample c1[] = {{1000, 1.0}, {1100, 2.0}, {1200, 3.0}};
    struct store_ts_sample c2[] = {{1050, 9.0}, {1300, 4.0}}; /* overlaps c1 */
    struct store_ts_sample other[] = {{1000, 100.0}};
    struct store_ts_point l7 = {7, 1200, 3.0, 5000};
    assert_int_equal(store_ts_chunk_put(st, 7, c1, 3, &l7, 10), STORE_OK);
    struct store_ts_point l7b = {7, 1300, 4.0, 6000};
    assert_int_equal(store_ts_chunk_put(st, 7, c2, 2, &l7b, 12), STORE_OK);
    assert_int_equal(store_ts_chunk_put(st, 8, other, 1, NULL, 0), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);

    struct chunks c = {0};
    assert_int_equal(store_ts_chunk_range(st, 7, 0, 10000, collect_chunk, &c), STORE_OK);
    assert_int_equal(c.chunks, 2); /* whole, in order of first ts */
    assert_int_equal(c.first[0], 1000);
    assert_int_equal(c.first[1], 1050);
    assert_int_equal(c.points, 5);
    assert_true(c.v[1] == 2.0 && c.ts[4] == 1300);
    /* only the chunks with samples in [from, to) */
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_ts_chunk_range(st, 7, 1250, 1301, collect_chunk, &c), STORE_OK);
    assert_int_equal(c.chunks, 1);
    assert_int_equal(c.first[0], 1050);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_ts_chunk_range(st, 7, 1301, 5000, collect_chunk, &c), STORE_OK);
    assert_int_equal(c.chunks, 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_ts_chunk_range(st, 7, 0, 1000, collect_chunk, &c), STORE_OK);
    assert_int_equal(c.chunks, 0);

    struct latest l;
    latest_load(st, &l);
    assert_int_equal(g_hash_table_size(l.pts), 1); /* key 8 was put without a latest */
    int64_t k = 7;
    struct store_ts_point *p = g_hash_table_lookup(l.pts, &k);
    assert_non_null(p);
    assert_int_equal(p->ts, 1300);
    assert_true(p->value == 4.0);
    assert_int_equal(p->seen, 6000);
    assert_int_equal(*(int64_t *)g_hash_table_lookup(l.upto, &k), 12);
    latest_free(&l);
}

static void on_has(int rc, const struct store_docs *d, void *ud)
{
    GString *got = ud; /* "rc:i,j,…" */
    g_string_printf(got, "%d:", rc);
    for (int i = 0; rc == STORE_OK && i < d->n; i++)
        g_string_append_printf(got, "%s%s", i ? "," : "", d->ids[i]);
}

static bool told(void *ud)
{
    return ((GString *)ud)->len > 0;
}

/* Which points are stored, read without waiting: each point's chunks,
 * overlapping ones included, on its own key; the chunks written just
 * before seen (behind them on the link). */
static void test_has_later(void **state)
{
    struct store *st = *state;
    struct store_ts_sample c1[] = {{1000, 1.0}, {1100, 2.0}, {1200, 3.0}};
    struct store_ts_sample c2[] = {{1050, 9.0}, {1300, 4.0}}; /* overlaps c1 */
    struct store_ts_sample other[] = {{1075, 100.0}};
    assert_int_equal(store_ts_chunk_put(st, 7, c1, 3, NULL, 0), STORE_OK);
    assert_int_equal(store_ts_chunk_put(st, 7, c2, 2, NULL, 0), STORE_OK);
    assert_int_equal(store_ts_chunk_put(st, 8, other, 1, NULL, 0), STORE_OK);
    if (!batched)
        assert_int_equal(store_commit(st), STORE_OK);
    struct store_ts_point q[] = {{7, 1000, 0, 0}, {7, 1001, 0, 0}, {7, 1050, 0, 0},
                                 {7, 1300, 0, 0}, {7, 1075, 0, 0}, {8, 1075, 0, 0},
                                 {9, 1000, 0, 0}, {7, 999, 0, 0},  {7, 1301, 0, 0}};
    GString *got = g_string_new(NULL);
    assert_int_equal(store_ts_has_later(st, q, 9, on_has, got), STORE_OK);
    assert_int_equal(got->len, 0); /* never inside the call */
    turn_until(st, NULL, told, got);
    assert_string_equal(got->str, "0:0,2,3,5");
    g_string_free(got, TRUE);
    if (batched)
        assert_int_equal(store_commit(st), STORE_OK);
}

static void test_trim_drop_reopen(void **state)
{
    struct store *st = *state;
    struct store_ts_sample old[] = {{1000, 1.0}, {2000, 2.0}};
    struct store_ts_sample straddle[] = {{2500, 3.0}, {3500, 4.0}};
    struct store_ts_sample other[] = {{1500, 5.0}};
    struct store_ts_point l7 = {7, 3500, 4.0, 9};
    struct store_ts_point l8 = {8, 1500, 5.0, 9};
    assert_int_equal(store_ts_chunk_put(st, 7, old, 2, NULL, 0), STORE_OK);
    assert_int_equal(store_ts_chunk_put(st, 7, straddle, 2, &l7, 3), STORE_OK);
    assert_int_equal(store_ts_chunk_put(st, 8, other, 1, &l8, 3), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);
    store_close(st);
    *state = st = open_store();

    /* chunks whose last ts is before the cutoff go, a bounded number a
     * call, told at once or (later) from the loop */
    int64_t deleted = -1;
    assert_int_equal(store_ts_chunk_trim_before(st, 3000, 1, &deleted), STORE_OK);
    assert_int_equal(deleted, 1);
    int64_t told[2] = {-1, -1};
    assert_int_equal(store_ts_chunk_trim_before_later(st, 3000, 10, on_count_told, told),
                     STORE_OK);
    assert_int_equal(told[0], -1); /* never inside the call */
    turn_until(st, told, NULL, NULL);
    assert_int_equal(told[0], STORE_OK);
    assert_int_equal(told[1], 1);
    assert_int_equal(store_ts_chunk_trim_before(st, 3000, 10, &deleted), STORE_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(store_commit(st), STORE_OK);
    struct chunks c = {0};
    assert_int_equal(store_ts_chunk_range(st, 7, 0, 10000, collect_chunk, &c), STORE_OK);
    assert_int_equal(c.chunks, 1); /* the one straddling the cutoff stays whole */
    assert_int_equal(c.points, 2);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_ts_chunk_range(st, 8, 0, 10000, collect_chunk, &c), STORE_OK);
    assert_int_equal(c.chunks, 0);
    struct latest l;
    latest_load(st, &l);
    assert_int_equal(g_hash_table_size(l.pts), 2); /* trimming keeps the latest */
    latest_free(&l);

    assert_int_equal(store_ts_drop(st, 7), STORE_OK);
    assert_int_equal(store_commit(st), STORE_OK);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_ts_chunk_range(st, 7, 0, 10000, collect_chunk, &c), STORE_OK);
    assert_int_equal(c.chunks, 0);
    latest_load(st, &l);
    assert_int_equal(g_hash_table_size(l.pts), 1);
    int64_t k = 8;
    assert_non_null(g_hash_table_lookup(l.pts, &k));
    latest_free(&l);
}

/* What an adopting server's cb is given: it stores the points again in
 * its own log, as reading_buffer.c does. */
struct adopted {
    struct store *st;
    int rows, points;
    int64_t keys[16], ts[16];
};

static bool adopt_into(int64_t id, int64_t seen, const struct store_ts_point *pts, int n, void *ud)
{
    (void)id;
    struct adopted *a = ud;
    for (int i = 0; i < n && a->points < 16; i++) {
        a->keys[a->points] = pts[i].key;
        a->ts[a->points++] = pts[i].ts;
    }
    a->rows++;
    int64_t mine = 0;
    return store_ts_log_append(a->st, seen, pts, n, &mine) == STORE_OK;
}

/* store_ts_log_adopt called as the flusher does, a row a page, until it
 * has nothing more: the first call sends the claim, the next ones take
 * its answer (read without waiting: a moment is given). Pages taken. */
static int adopt_all(struct store *st, struct adopted *got)
{
    int pages = 0;
    bool more = false;
    for (int i = 0; i < 5 || more; i++) {
        int before = got->rows;
        assert_int_equal(store_ts_log_adopt(st, 1, adopt_into, got, &more), STORE_OK);
        pages += got->rows > before;
        if (!more)
            g_usleep(20 * 1000);
    }
    return pages;
}

static int log_rows(struct store *st)
{
    struct logrows l = {0};
    assert_int_equal(store_ts_log_each(st, 0, collect_log, &l), STORE_OK);
    return l.rows;
}

/* Servers sharing a store each keep a log of their own: one's trim never
 * deletes another's rows, and the log of a server whose lease ran out is
 * taken over without the points its owner had put in chunks. */
static void test_owned_logs(void **state)
{
    struct store *b = *state;
    bool more = true;
    if (!redis_url) { /* a store of its own: nothing to own or take over */
        assert_int_equal(store_ts_log_own(b, "b", 1), STORE_OK);
        assert_int_equal(store_ts_log_adopt(b, 10, adopt_into, NULL, &more), STORE_OK);
        assert_false(more);
        return;
    }
    struct store *a = open_store(), *old = open_store();
    assert_int_equal(store_ts_log_own(a, "no good", 1), STORE_EINVAL);
    assert_int_equal(store_ts_log_own(a, "a", 1), STORE_OK);
    assert_int_equal(store_ts_log_own(b, "b", 1), STORE_OK);
    /* a log from before owners: taken over at once */
    struct store_ts_point o[] = {{4, 1, 4.0, 0}};
    int64_t id = 0, a1 = 0, a2 = 0;
    assert_int_equal(store_ts_log_append(old, 10, o, 1, &id), STORE_OK);
    store_close(old);

    struct store_ts_point r1[] = {{1, 10, 1.0, 0}, {1, 11, 1.5, 0}, {3, 5, 3.0, 0}};
    struct store_ts_point r2[] = {{1, 12, 2.0, 0}};
    struct store_ts_point rb[] = {{2, 7, 7.0, 0}};
    assert_int_equal(store_ts_log_append(a, 100, r1, 3, &a1), STORE_OK);
    assert_int_equal(store_ts_log_append(b, 100, rb, 1, &id), STORE_OK);
    assert_int_equal(store_ts_log_append(a, 100, r2, 1, &a2), STORE_OK);
    assert_int_equal(a2, a1 + 1); /* a log's ids are its own */
    struct adopted got = {.st = b};
    adopt_all(a, &got);
    adopt_all(b, &got);
    assert_int_equal(got.points, 1); /* the old log's point, now b's */
    assert_int_equal(got.keys[0], 4);

    /* a flushes series 1 up to its first row and trims: b's rows stay */
    struct store_ts_sample c1[] = {{10, 1.0}, {11, 1.5}};
    struct store_ts_point lat = {1, 11, 1.5, 100};
    assert_int_equal(store_ts_chunk_put(a, 1, c1, 2, &lat, a1), STORE_OK);
    assert_int_equal(store_ts_log_trim(a, a2), STORE_OK);
    assert_int_equal(log_rows(a), 0);
    assert_int_equal(log_rows(b), 2);
    /* a's second row again, and a third with series 3 */
    assert_int_equal(store_ts_log_append(a, 100, r1, 3, &a1), STORE_OK);
    assert_int_equal(store_ts_chunk_put(a, 1, c1, 2, &lat, a1), STORE_OK);
    assert_int_equal(store_ts_log_append(a, 100, r2, 1, &a2), STORE_OK);
    struct latest l;
    latest_load(a, &l); /* a's own log_upto, whoever wrote the latest */
    int64_t k = 1;
    assert_int_equal(*(int64_t *)g_hash_table_lookup(l.upto, &k), a1);
    latest_free(&l);

    /* a's lease is its own while it renews it; then it runs out */
    memset(&got, 0, sizeof(got));
    got.st = b;
    adopt_all(b, &got);
    assert_int_equal(got.rows, 0);
    g_usleep(1200 * 1000);
    assert_int_equal(adopt_all(b, &got), 2); /* one row a page */
    /* series 1's points of a's first row were in chunks: only series 3's
     * point of it, and the second row's */
    assert_int_equal(got.points, 2);
    assert_int_equal(got.keys[0], 3);
    assert_int_equal(got.keys[1], 1);
    assert_int_equal(got.ts[1], 12);
    assert_int_equal(log_rows(b), 4);
    assert_int_equal(log_rows(a), 0); /* taken over: gone */
    store_close(a);
}

int main(void)
{
    redis_url = getenv("YJT_TEST_REDIS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_append_each_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_refused_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_range_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_drop_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_has_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_append_each_trim, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_refused_whole, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_range_latest, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_trim_drop_reopen, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_has_later, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_owned_logs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
