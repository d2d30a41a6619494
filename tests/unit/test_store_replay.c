/* Replays of a request's reads (records/store_replay.h), on a real Redis
 * (tests/unit/with_redis.sh): a reader runs as a GET handler does (its
 * reads sent on the store's link, its collection and series read by the
 * reader threads), and its final run sees what the waiting reads see,
 * without the loop waiting once; writes of a run that lacked a read are refused; a run
 * after store_replay_last() reads what it lacks itself; counters taken in
 * a run are kept for its next runs; a replay freed or
 * a store closed with reads in flight. On SQLite there is no replay. */
#include "store_fixture.h"

#include "records/store_replay.h"

static uint64_t waits(void)
{
    return redis_link_loop_waits(NULL);
}

static bool keep_seq(int64_t seq, json_t *item, void *ud)
{
    g_string_append_printf(ud, " %" G_GINT64_FORMAT "=%s", (gint64)seq,
                           json_string_value(json_object_get(item, "t")));
    return true;
}

static bool keep_id(const char *id, json_t *doc, void *ud)
{
    g_string_append_printf(ud, " %s", id);
    json_object_set_new(doc, "changed", json_true()); /* a callback may change what it gets */
    return true;
}

static bool keep_samples(const struct store_ts_sample *pts, int n, void *ud)
{
    for (int i = 0; i < n; i++)
        g_string_append_printf(ud, " %" G_GINT64_FORMAT ":%g", (gint64)pts[i].ts, pts[i].value);
    return true;
}

/* Reads as a GET handler would: an enterprise, then the enterprises its
 * division's prefix finds (a read that needs the first), and beside them
 * reads that need nothing (an inbox, a key, a sequence's head, a
 * collection, a series). Independent reads go on after a failed one, as a
 * list does; what depends on a failed read stops. The first error is
 * returned; out gets what was read. */
static int handler(struct store *st, GString *out)
{
    int first = STORE_OK;
    json_t *e = NULL;
    int rc = store_doc_get(st, "ents", "e1", &e);
    if (rc == STORE_OK) {
        const char *d = json_string_value(json_object_get(e, "division"));
        g_string_append_printf(out, "e1 %s;", d);
        rc = store_index_find(st, "ents", "division", "4401", true, keep_id, out);
        g_string_append(out, ";");
        json_decref(e);
    }
    first = first ? first : rc;
    rc = store_seq_range(st, "inbox:u1", 1, 10, false, keep_seq, out);
    first = first ? first : rc;
    char *v = NULL;
    rc = store_kv_get(st, "k1", &v);
    g_string_append_printf(out, "; k1=%s", v ? v : "-");
    g_free(v);
    first = first ? first : rc;
    int64_t last = 0;
    rc = store_seq_last(st, "inbox:u1", &last);
    g_string_append_printf(out, "; last=%" G_GINT64_FORMAT ";", (gint64)last);
    first = first ? first : rc;
    rc = store_doc_list(st, "users", keep_id, out);
    first = first ? first : rc;
    g_string_append(out, ";");
    rc = store_ts_chunk_range(st, 7, 0, 10000, keep_samples, out);
    first = first ? first : rc;
    json_t *gone = NULL;
    rc = store_doc_get(st, "ents", "nobody", &gone);
    g_string_append_printf(out, "; nobody %d", rc);
    return first ? first : rc == STORE_ENOTFOUND ? STORE_OK : rc;
}

static void fill(struct store *st)
{
    put(st, "ents", "e1", "{\"division\":\"440106\"}", 0);
    put(st, "ents", "e2", "{\"division\":\"440107\"}", 0);
    put(st, "ents", "e3", "{\"division\":\"4402\"}", 0);
    put(st, "users", "u1", "{\"username\":\"a\"}", 0);
    put(st, "users", "u2", "{\"username\":\"b\"}", 0);
    for (int i = 0; i < 3; i++) {
        json_t *item = json_pack("{s:s}", "t", i == 0 ? "x" : i == 1 ? "y" : "z");
        int64_t seq;
        assert_int_equal(store_seq_append(st, "inbox:u1", item, &seq), 0);
        json_decref(item);
    }
    assert_int_equal(store_kv_set(st, "k1", "v1", 0), 0);
    struct store_ts_sample pts[] = {{1000, 1.5}, {2000, 2.5}};
    assert_int_equal(store_ts_chunk_put(st, 7, pts, 2, NULL, 0), 0);
}

static void on_ready(void *ud)
{
    (*(int64_t *)ud)++;
}

/* Runs handler against rp until a run lacks nothing; returns the runs
 * thrown away. */
static int replay_until_whole(struct store *st, struct store_replay *rp, GString *out, int *rc)
{
    int thrown = 0;
    for (;;) {
        g_string_truncate(out, 0);
        store_replay_begin(rp);
        *rc = handler(st, out);
        int sent = store_replay_end(rp);
        if (sent == 0)
            return thrown;
        assert_int_equal(*rc, STORE_EAGAIN);
        thrown++;
        assert_true(thrown < 5);
        int64_t told = -1;
        store_replay_wait(rp, on_ready, &told);
        told = -1;
        turn_until(st, &told, NULL, NULL);
        assert_int_equal(told, 0);
    }
}

static void test_replay_sees_what_waiting_reads_see(void **state)
{
    struct store *st = *state;
    fill(st);
    GString *want = g_string_new(NULL);
    uint64_t w0 = waits();
    assert_int_equal(handler(st, want), 0);
    assert_true(waits() - w0 >= 7); /* the waiting reads hold the loop */
    assert_string_equal(want->str, "e1 440106; e1 e2; 2=y 3=z; k1=v1; last=3; u1 u2; "
                                   "1000:1.5 2000:2.5; nobody -3");

    struct store_replay *rp = store_replay_new(st);
    assert_non_null(rp);
    uint64_t reads0, reruns0, reads1, reruns1;
    store_replay_counts(&reads0, &reruns0);
    GString *got = g_string_new(NULL);
    int rc;
    w0 = waits();
    /* the first run lacks all but the index look-up, which needs the
     * enterprise; the second lacks that; the third has everything */
    assert_int_equal(replay_until_whole(st, rp, got, &rc), 2);
    assert_int_equal(rc, 0);
    assert_int_equal(waits() - w0, 0);
    assert_string_equal(got->str, want->str);
    store_replay_counts(&reads1, &reruns1);
    assert_int_equal(reads1 - reads0, 8);
    assert_int_equal(reruns1 - reruns0, 2);
    /* a run again reads nothing: every answer is kept, callbacks got copies */
    g_string_truncate(got, 0);
    store_replay_begin(rp);
    assert_int_equal(handler(st, got), 0);
    assert_int_equal(store_replay_end(rp), 0);
    assert_string_equal(got->str, want->str);
    store_replay_free(rp);
    g_string_free(want, TRUE);
    g_string_free(got, TRUE);
}

/* A write in a run that lacked a read is refused and not made; a write in
 * a run that lacked nothing is made, and that run's later reads wait. */
static void test_replay_writes(void **state)
{
    struct store *st = *state;
    fill(st);
    struct store_replay *rp = store_replay_new(st);
    store_replay_begin(rp);
    json_t *doc = NULL;
    assert_int_equal(store_doc_get(st, "ents", "e1", &doc), STORE_EAGAIN);
    assert_int_equal(store_kv_set(st, "k2", "refused", 0), STORE_EAGAIN);
    json_t *e9 = json_pack("{s:s}", "division", "4403");
    assert_int_equal(store_doc_put(st, "ents", "e9", e9, false), STORE_EAGAIN);
    int64_t seq;
    assert_int_equal(store_seq_append(st, "inbox:u1", e9, &seq), STORE_EAGAIN);
    assert_int_equal(store_replay_end(rp), 1);
    assert_int_equal(store_doc_get(st, "ents", "e9", &doc), STORE_ENOTFOUND); /* outside: waits */
    int64_t told = -1;
    store_replay_wait(rp, on_ready, &told);
    turn_until(st, &told, NULL, NULL);

    store_replay_begin(rp);
    assert_int_equal(store_doc_get(st, "ents", "e1", &doc), 0);
    json_decref(doc);
    assert_int_equal(store_doc_put(st, "ents", "e9", e9, false), 0);
    uint64_t w0 = waits();
    assert_int_equal(store_doc_get(st, "ents", "e9", &doc), 0); /* after a write: at once */
    assert_true(waits() > w0);
    json_decref(doc);
    assert_int_equal(store_replay_end(rp), 0);
    char *v = NULL;
    assert_int_equal(store_kv_get(st, "k2", &v), STORE_ENOTFOUND);
    json_decref(e9);
    store_replay_free(rp);
}

/* A counter taken in a run is sent as a read: its value is kept for the
 * next runs (the nth count of a run gets the nth value), the loop does
 * not wait, and a value taken by a run thrown away is never handed out
 * again; after the run wrote, a count waits as a write does. */
static void test_replay_counters(void **state)
{
    struct store *st = *state;
    int64_t v = 0;
    assert_int_equal(store_counter_incr(st, "n", 10, &v), 0);
    assert_int_equal(v, 10);
    struct store_replay *rp = store_replay_new(st);
    int64_t a = 0, b = 0;
    uint64_t w0 = waits();
    for (int run = 0;; run++) {
        assert_true(run < 3);
        store_replay_begin(rp);
        int ra = store_counter_incr(st, "n", 1, &a);
        int rb = store_counter_incr(st, "n", 1, &b);
        if (store_replay_end(rp) == 0) {
            assert_int_equal(ra, 0);
            assert_int_equal(rb, 0);
            break;
        }
        assert_int_equal(ra, STORE_EAGAIN);
        int64_t told = -1;
        store_replay_wait(rp, on_ready, &told);
        told = -1;
        turn_until(st, &told, NULL, NULL);
    }
    assert_int_equal(waits() - w0, 0);
    assert_true(a >= 11 && a <= 12 && b >= 11 && b <= 12 && a != b);
    /* a run again gets the same values, and takes no more */
    store_replay_begin(rp);
    int64_t a2 = 0, b2 = 0;
    assert_int_equal(store_counter_incr(st, "n", 1, &a2), 0);
    assert_int_equal(store_counter_incr(st, "n", 1, &b2), 0);
    assert_int_equal(store_replay_end(rp), 0);
    assert_int_equal(a2, a);
    assert_int_equal(b2, b);
    /* a run that wrote counts at once, waiting */
    store_replay_begin(rp);
    assert_int_equal(store_kv_set(st, "k", "v", 0), 0);
    int64_t c = 0;
    assert_int_equal(store_counter_incr(st, "n", 1, &c), 0);
    assert_true(waits() > w0);
    assert_int_equal(store_replay_end(rp), 0);
    assert_int_equal(c, 13);
    store_replay_free(rp);
    /* a replay thrown away after its count leaves a gap, not a repeat */
    struct store_replay *gone = store_replay_new(st);
    store_replay_begin(gone);
    assert_int_equal(store_counter_incr(st, "n", 1, &c), STORE_EAGAIN);
    store_replay_end(gone);
    int64_t told = -1;
    store_replay_wait(gone, on_ready, &told);
    turn_until(st, &told, NULL, NULL);
    store_replay_free(gone);
    assert_int_equal(store_counter_incr(st, "n", 1, &c), 0);
    assert_int_equal(c, 15);
}

/* After store_replay_last(), what the replay lacks is read at once. */
static void test_replay_last(void **state)
{
    struct store *st = *state;
    fill(st);
    struct store_replay *rp = store_replay_new(st);
    store_replay_last(rp);
    store_replay_begin(rp);
    char *v = NULL;
    uint64_t w0 = waits();
    assert_int_equal(store_kv_get(st, "k1", &v), 0);
    assert_true(waits() > w0);
    assert_string_equal(v, "v1");
    g_free(v);
    assert_int_equal(store_replay_end(rp), 0);
    store_replay_free(rp);
}

/* A replay freed with reads in flight is freed once they are answered;
 * a store closed with reads in flight tells nobody. */
static void test_replay_gone(void **state)
{
    struct store *st = *state;
    fill(st);
    struct store_replay *rp = store_replay_new(st);
    store_replay_begin(rp);
    char *v = NULL;
    assert_int_equal(store_kv_get(st, "k1", &v), STORE_EAGAIN);
    store_replay_end(rp);
    store_replay_free(rp);
    struct store_replay *rp2 = store_replay_new(st);
    store_replay_begin(rp2);
    assert_int_equal(store_kv_get(st, "k1", &v), STORE_EAGAIN);
    store_replay_end(rp2);
    int64_t told = -1;
    store_replay_wait(rp2, on_ready, &told);
    turn_until(st, &told, NULL, NULL); /* both answered; rp freed meanwhile */
    assert_int_equal(told, 0);

    struct store_replay *rp3 = store_replay_new(st);
    store_replay_begin(rp3);
    assert_int_equal(store_kv_get(st, "k3", &v), STORE_EAGAIN);
    store_replay_end(rp3);
    told = -1;
    store_replay_wait(rp3, on_ready, &told);
    store_close(st); /* the read fails, unheard */
    *state = open_store();
    assert_int_equal(told, -1);
    store_replay_free(rp2);
    store_replay_free(rp3);
}

/* A store that reads at once has no replay: requests run as before. */
static void test_no_replay_on_sqlite(void **state)
{
    assert_null(store_replay_new(*state));
}

static int setup_replay(void **state)
{
    setup(state);
    g_main_context_acquire(NULL); /* so that waits of this thread count */
    return 0;
}

static int teardown_replay(void **state)
{
    g_main_context_release(NULL);
    return teardown(state);
}

int main(void)
{
    redis_url = getenv("YJT_TEST_REDIS");
    const struct CMUnitTest redis_tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_sees_what_waiting_reads_see, setup_replay,
                                        teardown_replay),
        cmocka_unit_test_setup_teardown(test_replay_writes, setup_replay, teardown_replay),
        cmocka_unit_test_setup_teardown(test_replay_counters, setup_replay, teardown_replay),
        cmocka_unit_test_setup_teardown(test_replay_last, setup_replay, teardown_replay),
        cmocka_unit_test_setup_teardown(test_replay_gone, setup_replay, teardown_replay),
    };
    const struct CMUnitTest sqlite_tests[] = {
        cmocka_unit_test_setup_teardown(test_no_replay_on_sqlite, setup_replay, teardown_replay),
    };
    if (!redis_url)
        return cmocka_run_group_tests_name("replays (sqlite)", sqlite_tests, NULL, NULL);
    return cmocka_run_group_tests_name("replays (redis)", redis_tests, NULL, NULL);
}
