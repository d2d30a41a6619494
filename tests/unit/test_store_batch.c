/* Store batching: SQLite's batches (one transaction, its log writes) and
 * Redis's (deferred writes, and batches ended without waiting), run on
 * the backend each is about (tests/unit/with_redis.sh for Redis). */
#include "store_fixture.h"

/* Batched writes: invisible to other handles until committed, one dirty
 * notice per batch, and a failed write undoes only itself. */
static void test_batching(void **state)
{
    struct store *st = *state;
    store_set_batching(st, true, on_dirty, NULL);
    dirty_calls = 0;
    put(st, "users", "u1", "{\"username\":\"alice\"}", 0);
    put(st, "users", "u2", "{\"username\":\"alice\"}", STORE_ECONFLICT);
    assert_int_equal(store_kv_set(st, "k", "v", 0), 0);
    int64_t seq = 0;
    json_t *item = json_pack("{s:i}", "n", 1);
    assert_int_equal(store_seq_append(st, "q", item, &seq), 0);
    json_decref(item);
    assert_int_equal(seq, 1);
    assert_int_equal(dirty_calls, 1);
    json_t *got = NULL;
    assert_int_equal(store_doc_get(st, "users", "u1", &got), 0); /* its own writes */
    json_decref(got);
    assert_int_equal(store_doc_get(st, "users", "u2", &got), STORE_ENOTFOUND);

    struct store *other = open_store();
    assert_int_equal(store_doc_get(other, "users", "u1", &got), STORE_ENOTFOUND);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(store_doc_get(other, "users", "u1", &got), 0);
    json_decref(got);
    char *v = NULL;
    assert_int_equal(store_kv_get(other, "k", &v), 0);
    assert_string_equal(v, "v");
    g_free(v);
    store_close(other);

    assert_int_equal(store_commit(st), 0); /* nothing open: fine */
    put(st, "users", "u3", "{\"username\":\"carol\"}", 0);
    assert_int_equal(dirty_calls, 2);
    /* closing commits what is open */
    store_close(st);
    *state = st = open_store();
    assert_int_equal(store_doc_get(st, "users", "u3", &got), 0);
    json_decref(got);
}

/* Batches of every size reach the log whole before they are announced:
 * after each commit a connection of its own (SQLite's default VFS, as
 * another process would have) sees exactly what was committed, while the
 * checkpointer copies the log into the database; batches of several MB
 * take the log's larger-than-gathered path. */
static void test_log_writes(void **state)
{
    struct store *st = *state;
    store_set_batching(st, true, on_dirty, NULL);
    char *db = g_build_filename(dir, "yjt.db", NULL);
    sqlite3 *reader = NULL;
    assert_int_equal(sqlite3_open_v2(db, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(reader, 5000);
    char pad[2048];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    int total = 0;
    for (int batch = 0; batch < 120; batch++) {
        int n = batch % 40 == 39 ? 2500 : 1 + batch % 7 * 9;
        for (int i = 0; i < n; i++, total++) {
            char id[32], div[16];
            g_snprintf(id, sizeof(id), "e%06d", total);
            g_snprintf(div, sizeof(div), "44%02d", total % 37);
            json_t *doc = json_pack("{s:s, s:[s, s], s:s}", "division", div, "tags", "a", id, "pad",
                                    pad + total % 1500);
            assert_int_equal(store_doc_put(st, "ents", id, doc, false), 0);
            json_decref(doc);
        }
        assert_int_equal(store_commit(st), 0);
        assert_int_equal(store_sync(st), 0);
        sqlite3_stmt *q = NULL;
        assert_int_equal(sqlite3_prepare_v2(reader,
                                            "SELECT (SELECT count(*) FROM docs WHERE coll='ents'),"
                                            " (SELECT count(*) FROM idx WHERE coll='ents'"
                                            " AND field='tags' AND value='a')",
                                            -1, &q, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), total);
        assert_int_equal(sqlite3_column_int(q, 1), total);
        sqlite3_finalize(q);
    }
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(reader, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
    sqlite3_finalize(q);
    sqlite3_close(reader);
    g_free(db);
    store_close(st);
    *state = st = open_store();
    GPtrArray *ids = find(st, "ents", "tags", "a", false);
    assert_int_equal(ids->len, (guint)total);
    g_ptr_array_free(ids, TRUE);
}

static void raw_exec(sqlite3 *c, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(c, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : "?");
}

static void copy_file(const char *from, const char *to)
{
    gchar *data = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(from, &data, &len, NULL));
    assert_true(g_file_set_contents(to, data, (gssize)len, NULL));
    g_free(data);
}

static void raw_sums(sqlite3 *c, int64_t *count, int64_t *bytes)
{
    sqlite3_stmt *q = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(c, "SELECT count(*), total(length(v)) FROM t", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    *count = sqlite3_column_int64(q, 0);
    *bytes = (int64_t)sqlite3_column_double(q, 1);
    sqlite3_finalize(q);
}

/* What the store's VFS leaves in the files when COMMIT returns is a whole,
 * valid log: a copy of the files taken then (what a crash would leave)
 * recovers every committed row, SQLite checking each frame's checksum.
 * The transactions outgrow a tiny page cache, so SQLite writes pages to
 * the log before the commit, writes some of them again in place and
 * rewrites the frames' checksums when it commits. */
static void test_log_whole_at_commit(void **state)
{
    (void)state;
    const char *vfs = store_vfs_name();
    assert_non_null(vfs);
    char *db = g_build_filename(dir, "raw.db", NULL), *wal = g_strconcat(db, "-wal", NULL);
    char *crash = g_build_filename(dir, "crash.db", NULL),
         *crash_wal = g_strconcat(crash, "-wal", NULL);
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                     SQLITE_OK);
    raw_exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=8;"
                " PRAGMA wal_autocheckpoint=0; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)");
    for (int round = 0; round < 6; round++) {
        char sql[512];
        raw_exec(c, "BEGIN");
        g_snprintf(sql, sizeof(sql),
                   "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
                   " INSERT OR REPLACE INTO t SELECT i, printf('%%d-%%0500d', %d, i) FROM n",
                   200 + 100 * round, round);
        raw_exec(c, sql);
        raw_exec(c, "UPDATE t SET v = v || 'x' WHERE k % 3 = 0");
        raw_exec(c, "COMMIT");
        if (round % 2)
            raw_exec(c, "INSERT INTO t(v) VALUES('one page')"); /* a one-frame commit */
        copy_file(db, crash); /* first: reading from c could write out more */
        copy_file(wal, crash_wal);
        int64_t want_n, want_bytes, got_n, got_bytes;
        raw_sums(c, &want_n, &want_bytes);
        sqlite3 *r = NULL;
        assert_int_equal(sqlite3_open_v2(crash, &r, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        raw_sums(r, &got_n, &got_bytes);
        assert_int_equal(got_n, want_n);
        assert_int_equal(got_bytes, want_bytes);
        sqlite3_close(r);
        g_unlink(crash_wal);
        g_unlink(crash);
        char *shm = g_strconcat(crash, "-shm", NULL);
        g_unlink(shm);
        g_free(shm);
    }
    sqlite3_close(c);
    g_unlink(wal);
    g_unlink(db);
    g_free(db);
    g_free(wal);
    g_free(crash);
    g_free(crash_wal);
}

/* Makes PREFIX s:KEY a string, so that a deferred trim of it fails. */
static void spoil_stream(const char *key)
{
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_str(&c, "SET");
    char *k = g_strconcat("s:", key, NULL);
    redis_cmd_cat(&c, prefix, k);
    g_free(k);
    redis_cmd_str(&c, "not a stream");
    redis_admin(&c);
}

/* Batching on Redis: a write that may conflict (a unique index, a
 * creation) is done when it returns; one that cannot is sent at once and
 * its reply read at the commit (or by the next command): the batch is
 * dirty, this handle reads it back at once, and another handle sees it
 * once committed. A write Redis refuses fails the commit. */
static void test_redis_batching(void **state)
{
    struct store *st = *state;
    dirty_calls = 0;
    store_set_batching(st, true, on_dirty, NULL);
    put(st, "users", "u1", "{\"username\":\"alice\"}", 0);
    assert_int_equal(dirty_calls, 0);
    struct store *other = open_store();
    json_t *got = NULL;
    assert_int_equal(store_doc_get(other, "users", "u1", &got), 0);
    json_decref(got);

    put(st, "ents", "e1", "{\"division\":\"440106\"}", 0);
    json_t *line = json_pack("{s:i}", "n", 1);
    assert_int_equal(store_seq_append(st, "audit", line, NULL), 0);
    json_decref(line);
    assert_int_equal(dirty_calls, 1); /* one batch */
    assert_int_equal(store_doc_get(st, "ents", "e1", &got), 0);
    json_decref(got);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(store_doc_get(other, "ents", "e1", &got), 0);
    json_decref(got);
    int64_t last = 0;
    assert_int_equal(store_seq_last(other, "audit", &last), 0);
    assert_int_equal(last, 1);

    /* A deferred write that Redis refuses (a trim of a key that another
     * client made a string): returns at once, and the commit fails. */
    spoil_stream("spoilt");
    assert_int_equal(store_seq_trim(st, "spoilt", 3), 0);
    assert_int_equal(store_commit(st), STORE_EIO);
    assert_true(store_commit_may_fail(st));
    /* and the store serves on */
    put(st, "ents", "e2", "{\"division\":\"440106\"}", 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(store_doc_get(other, "ents", "e2", &got), 0);
    json_decref(got);
    store_close(other);
}

/* Makes the tests' Redis hold every write for ms (CLIENT PAUSE). */
static void pause_writes(int ms)
{
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_str(&c, "CLIENT");
    redis_cmd_str(&c, "PAUSE");
    redis_cmd_i64(&c, ms);
    redis_cmd_str(&c, "WRITE");
    redis_admin(&c);
}

static GArray *told;

static void on_told(uint64_t tag, bool ok, void *ud)
{
    (void)ud;
    int64_t v = ok ? (int64_t)tag : -(int64_t)tag;
    g_array_append_val(told, v);
}

static GArray *counts; /* the codes store_rate_add_async answered */

static void on_count(int rc, double count, void *ud)
{
    (void)ud;
    (void)count;
    g_array_append_val(counts, rc);
}

/* Waits (up to 5 s) until n batches were told, reading as the server's
 * loop would: when the store's socket is readable. */
static void wait_told(struct store *st, guint n)
{
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while (told->len < n && g_get_monotonic_time() < end) {
        int fd = store_async_fd(st);
        assert_true(fd >= 0);
        GPollFD pfd = {.fd = fd, .events = G_IO_IN};
        g_poll(&pfd, 1, 100);
        store_async_poll(st);
    }
    assert_int_equal(told->len, n);
}

/* Batches ended without waiting: told in order once Redis answered each
 * of their writes, by the socket or by a later call; a batch with a write
 * Redis refused is told failed, one that learnt of its failure before it
 * ended fails at once, and one that Redis leaves unanswered is given up. */
static void test_redis_async_batches(void **state)
{
    struct store *st = *state;
    told = g_array_new(FALSE, FALSE, sizeof(int64_t));
    store_set_batching(st, true, on_dirty, NULL);
    assert_true(store_batches_async(st));
    store_on_batch_done(st, on_told, NULL);
    assert_int_equal(store_async_fd(st), -1);

    put(st, "ents", "e1", "{\"division\":\"440106\"}", 0);
    assert_int_equal(store_write_batch_async(st, 1), STORE_PENDING);
    json_t *line = json_pack("{s:i}", "n", 1);
    assert_int_equal(store_seq_append(st, "audit", line, NULL), 0);
    json_decref(line);
    assert_int_equal(store_write_batch_async(st, 2), STORE_PENDING);
    assert_int_equal(told->len, 0);
    wait_told(st, 2);
    assert_int_equal(g_array_index(told, int64_t, 0), 1);
    assert_int_equal(g_array_index(told, int64_t, 1), 2);
    assert_int_equal(store_async_fd(st), -1); /* nothing awaited */
    struct store *other = open_store();
    json_t *got = NULL;
    assert_int_equal(store_doc_get(other, "ents", "e1", &got), 0);
    json_decref(got);
    store_close(other);

    /* Nothing written: durable at once. */
    assert_int_equal(store_write_batch_async(st, 3), STORE_OK);

    /* A refused write fails its batch alone; a read reads the answers
     * first, and the store tells from inside it. */
    spoil_stream("spoilt");
    assert_int_equal(store_seq_trim(st, "spoilt", 3), 0);
    assert_int_equal(store_write_batch_async(st, 4), STORE_PENDING);
    put(st, "ents", "e2", "{\"division\":\"440106\"}", 0);
    assert_int_equal(store_write_batch_async(st, 5), STORE_PENDING);
    assert_int_equal(store_doc_get(st, "ents", "e2", &got), 0);
    json_decref(got);
    assert_int_equal(told->len, 4);
    assert_int_equal(g_array_index(told, int64_t, 2), -4);
    assert_int_equal(g_array_index(told, int64_t, 3), 5);

    /* A batch whose refusal was read before it ended. */
    assert_int_equal(store_seq_trim(st, "spoilt", 3), 0);
    assert_int_equal(store_doc_get(st, "ents", "e2", &got), 0);
    json_decref(got);
    assert_int_equal(store_write_batch_async(st, 6), STORE_EIO);
    assert_int_equal(told->len, 4);

    /* A server that stops answering (writes paused 2.6 s): the batch is
     * given up once nothing came for the link's timeout (2 s), and the
     * store serves on afterwards. */
    pause_writes(2600);
    gint64 t0 = g_get_monotonic_time();
    put(st, "ents", "e3", "{\"division\":\"440106\"}", 0);
    counts = g_array_new(FALSE, FALSE, sizeof(int));
    assert_int_equal(store_rate_add_async(st, "inv", 60000, 120000, 1, 5, on_count, NULL), 0);
    assert_int_equal(store_write_batch_async(st, 7), STORE_PENDING);
    while (told->len < 5 && g_get_monotonic_time() - t0 < 5 * G_USEC_PER_SEC) {
        g_usleep(50 * 1000);
        store_async_poll(st);
    }
    assert_int_equal(told->len, 5);
    assert_int_equal(g_array_index(told, int64_t, 4), -7);
    assert_int_equal(counts->len, 1); /* lost with the connection */
    assert_int_equal(g_array_index(counts, int, 0), STORE_EIO);
    g_array_free(counts, TRUE);
    assert_true(g_get_monotonic_time() - t0 >= 1900 * 1000);
    assert_int_equal(store_async_fd(st), -1);
    g_usleep(1000 * 1000); /* the pause is over */
    put(st, "ents", "e4", "{\"division\":\"440106\"}", 0);
    assert_int_equal(store_write_batch_async(st, 8), STORE_PENDING);
    wait_told(st, 6);
    assert_int_equal(g_array_index(told, int64_t, 5), 8);
    store_on_batch_done(st, NULL, NULL);
    g_array_free(told, TRUE);
}

/* Counts sent without waiting: answered in order, by the socket or by a
 * later call, with the codes store_rate_add gives; a count Redis refuses
 * (its window's key made a hash by another client) is answered STORE_EIO
 * and fails no batch; a count is part of the link's order, so a batch
 * ended after it is told after it is answered. SQLite does not offer it. */
static void test_rate_async(void **state)
{
    struct store *st = *state;
    if (!redis_url) {
        assert_false(store_rate_async(st));
        assert_int_equal(store_rate_add_async(st, "k", 60000, 120000, 1, 2, on_count, NULL),
                         STORE_EINVAL);
        return;
    }
    assert_true(store_rate_async(st));
    told = g_array_new(FALSE, FALSE, sizeof(int64_t));
    counts = g_array_new(FALSE, FALSE, sizeof(int));
    store_set_batching(st, true, on_dirty, NULL);
    store_on_batch_done(st, on_told, NULL);
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_str(&c, "HSET");
    redis_cmd_cat(&c, prefix, "rate:60000:spoilt:2");
    redis_cmd_str(&c, "f");
    redis_cmd_str(&c, "v");
    redis_admin(&c);

    put(st, "ents", "e1", "{\"division\":\"440106\"}", 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_rate_add_async(st, "inv", 60000, 120000, 1, 2, on_count, NULL), 0);
    assert_int_equal(store_rate_add_async(st, "spoilt", 60000, 120000, 1, 2, on_count, NULL), 0);
    assert_int_equal(store_write_batch_async(st, 1), STORE_PENDING);
    assert_int_equal(counts->len, 0); /* nothing waited for */
    wait_told(st, 1);
    assert_int_equal(g_array_index(told, int64_t, 0), 1);
    assert_int_equal(counts->len, 4);
    assert_int_equal(g_array_index(counts, int, 0), STORE_OK);
    assert_int_equal(g_array_index(counts, int, 1), STORE_OK);
    assert_int_equal(g_array_index(counts, int, 2), STORE_ECONFLICT);
    assert_int_equal(g_array_index(counts, int, 3), STORE_EIO);
    double n = 0;
    assert_int_equal(store_rate_add(st, "inv", 60000, 120000, 0, 2, &n), 0);
    assert_true(n == 2.0);

    /* answered from inside a later call that waits */
    assert_int_equal(store_rate_add_async(st, "other", 60000, 120000, 1, -1, on_count, NULL), 0);
    json_t *got = NULL;
    assert_int_equal(store_doc_get(st, "ents", "e1", &got), 0);
    json_decref(got);
    assert_int_equal(counts->len, 5);
    assert_int_equal(g_array_index(counts, int, 4), STORE_OK);
    assert_int_equal(store_async_fd(st), -1);
    store_on_batch_done(st, NULL, NULL);
    g_array_free(told, TRUE);
    g_array_free(counts, TRUE);
}

/* What store_seq_append_many_later answered: per call, its code and
 * seqs, as "rc:s1,s2". */
static GPtrArray *appends;

static void on_appended(int rc, const int64_t *seqs, int n, void *ud)
{
    (void)ud;
    GString *g = g_string_new("");
    g_string_append_printf(g, "%d:", rc);
    for (int i = 0; seqs && i < n; i++)
        g_string_append_printf(g, "%s%" G_GINT64_FORMAT, i ? "," : "", (gint64)seqs[i]);
    g_ptr_array_add(appends, g_string_free(g, FALSE));
}

/* Fan-outs sent without waiting: nothing is answered before the socket is
 * read; the seqs come in order, by the socket or by a later call; the
 * append is a write of its batch (a refused one fails the batch, and is
 * answered STORE_EIO), so a batch ended after it is told after it is
 * stored; an append lost with the connection is answered STORE_EIO. Not
 * offered by SQLite. */
static void test_append_later(void **state)
{
    struct store *st = *state;
    const char *ab[] = {"inbox/a", "inbox/b"}, *a[] = {"inbox/a"}, *spoilt[] = {"spoilt"};
    json_t *item = json_pack("{s:s}", "kind", "notice");
    if (!redis_url) {
        assert_false(store_appends_later(st));
        assert_int_equal(store_seq_append_many_later(st, ab, 2, item, on_appended, NULL),
                         STORE_EINVAL);
        json_decref(item);
        return;
    }
    assert_true(store_appends_later(st));
    appends = g_ptr_array_new_with_free_func(g_free);
    told = g_array_new(FALSE, FALSE, sizeof(int64_t));
    store_set_batching(st, true, on_dirty, NULL);
    store_on_batch_done(st, on_told, NULL);

    assert_int_equal(store_seq_append_many_later(st, ab, 2, item, on_appended, NULL), 0);
    assert_int_equal(store_seq_append_many_later(st, a, 1, item, on_appended, NULL), 0);
    assert_int_equal(appends->len, 0); /* nothing waited for */
    assert_int_equal(store_write_batch_async(st, 1), STORE_PENDING);
    wait_told(st, 1);
    assert_int_equal(g_array_index(told, int64_t, 0), 1);
    assert_int_equal(appends->len, 2);
    assert_string_equal(g_ptr_array_index(appends, 0), "0:1,1");
    assert_string_equal(g_ptr_array_index(appends, 1), "0:2");

    /* answered from inside a later call that waits */
    assert_int_equal(store_seq_append_many_later(st, ab, 2, item, on_appended, NULL), 0);
    int64_t last = 0;
    assert_int_equal(store_seq_last(st, "inbox/b", &last), 0);
    assert_int_equal(last, 2);
    assert_int_equal(appends->len, 3);
    assert_string_equal(g_ptr_array_index(appends, 2), "0:3,2");
    assert_int_equal(store_write_batch_async(st, 2), STORE_OK); /* its answer was read */

    /* refused: the batch fails */
    spoil_stream("spoilt");
    assert_int_equal(store_seq_append_many_later(st, spoilt, 1, item, on_appended, NULL), 0);
    assert_int_equal(store_write_batch_async(st, 3), STORE_PENDING);
    wait_told(st, 2);
    assert_int_equal(g_array_index(told, int64_t, 1), -3);
    assert_int_equal(appends->len, 4);
    assert_string_equal(g_ptr_array_index(appends, 3), "-1:");

    /* lost with the connection: a server that stops answering (writes
     * paused 2.6 s, the link gives up after 2 s) */
    pause_writes(2600);
    assert_int_equal(store_seq_append_many_later(st, a, 1, item, on_appended, NULL), 0);
    assert_int_equal(store_write_batch_async(st, 4), STORE_PENDING);
    gint64 t0 = g_get_monotonic_time();
    while (told->len < 3 && g_get_monotonic_time() - t0 < 5 * G_USEC_PER_SEC) {
        g_usleep(50 * 1000);
        store_async_poll(st);
    }
    assert_int_equal(told->len, 3);
    assert_int_equal(g_array_index(told, int64_t, 2), -4);
    assert_int_equal(appends->len, 5);
    assert_string_equal(g_ptr_array_index(appends, 4), "-1:");
    g_usleep(1000 * 1000); /* the pause is over */
    store_on_batch_done(st, NULL, NULL);
    json_decref(item);
    g_ptr_array_free(appends, TRUE);
    g_array_free(told, TRUE);
}

int main(void)
{
    redis_url = getenv("YJT_TEST_REDIS");
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_whole_at_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_later, setup, teardown),
    };
    const struct CMUnitTest redis_only[] = {
        cmocka_unit_test_setup_teardown(test_append_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_batching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_async_batches, setup, teardown),
    };
    if (redis_url)
        return cmocka_run_group_tests_name("redis batches", redis_only, NULL, NULL);
    return cmocka_run_group_tests_name("sqlite batches", sqlite_only, NULL, NULL);
}
