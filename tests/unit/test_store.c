/* Store conformance: what every backend must do, run against SQLite and,
 * when YJT_TEST_REDIS names a Redis server (tests/unit/with_redis.sh
 * starts one), against Redis. The tests only use store.h, except those of
 * the SQLite backend's own machinery (shared sequence bodies), which look
 * into its file and run on SQLite only. Batching: test_store_batch.c. */
#include "store_fixture.h"

static void test_docs(void **state)
{
    struct store *st = *state;
    json_t *doc = json_pack("{s:s, s:s}", "username", "alice", "org", "E1");
    assert_int_equal(store_doc_put(st, "users", "u1", doc, true), 0);
    assert_int_equal(store_doc_put(st, "users", "u1", doc, true), STORE_ECONFLICT);
    json_decref(doc);
    json_t *got = NULL;
    assert_int_equal(store_doc_get(st, "users", "u1", &got), 0);
    assert_string_equal(json_string_value(json_object_get(got, "username")), "alice");
    json_decref(got);
    assert_int_equal(store_doc_get(st, "users", "nope", &got), STORE_ENOTFOUND);
    assert_int_equal(store_doc_get(st, "other", "u1", &got), STORE_ENOTFOUND);
    json_t *arr = json_array();
    assert_int_equal(store_doc_put(st, "users", "x", arr, false), STORE_EINVAL);
    json_decref(arr);
    assert_int_equal(store_doc_delete(st, "users", "u1"), 0);
    assert_int_equal(store_doc_delete(st, "users", "u1"), STORE_ENOTFOUND);
    GPtrArray *ids = find(st, "users", "username", "alice", false);
    assert_int_equal(ids->len, 0); /* the index went with the document */
    g_ptr_array_free(ids, TRUE);
}

static void test_unique_index(void **state)
{
    struct store *st = *state;
    put(st, "users", "u1", "{\"username\":\"alice\",\"org\":\"E1\"}", 0);
    put(st, "users", "u2", "{\"username\":\"alice\",\"org\":\"E2\"}", STORE_ECONFLICT);
    json_t *got = NULL;
    assert_int_equal(store_doc_get(st, "users", "u2", &got),
                     STORE_ENOTFOUND); /* nothing half-written */
    GPtrArray *ids = find(st, "users", "org", "E2", false);
    assert_int_equal(ids->len, 0);
    g_ptr_array_free(ids, TRUE);
    /* Renaming frees the old value; rewriting the same doc keeps its own. */
    put(st, "users", "u1", "{\"username\":\"alice2\",\"org\":\"E1\"}", 0);
    put(st, "users", "u1", "{\"username\":\"alice2\",\"org\":\"E1\"}", 0);
    put(st, "users", "u2", "{\"username\":\"alice\",\"org\":\"E2\"}", 0);
}

/* The number of documents found under an exact value. */

/* A rewrite moves the index rows of the values that changed: the document
 * is found under its new values and no longer under its old ones, kept
 * values still find it (once), and a dropped field drops its rows. */
static void test_index_moves(void **state)
{
    struct store *st = *state;
    put(st, "ents", "a", "{\"division\":\"440106\",\"tags\":[\"key\",\"tank\"]}", 0);
    put(st, "ents", "b", "{\"division\":\"440106\",\"tags\":[\"tank\"]}", 0);
    put(st, "ents", "a", "{\"division\":\"440113\",\"tags\":[\"tank\",\"pipe\"]}", 0);
    assert_int_equal(found(st, "ents", "division", "440106"), 1); /* only b */
    assert_int_equal(found(st, "ents", "division", "440113"), 1);
    assert_int_equal(found(st, "ents", "tags", "key"), 0);
    assert_int_equal(found(st, "ents", "tags", "tank"), 2);
    assert_int_equal(found(st, "ents", "tags", "pipe"), 1);
    GPtrArray *ids = find(st, "ents", "division", "4401", true);
    assert_int_equal(ids->len, 2); /* a and b, each once */
    g_ptr_array_free(ids, TRUE);
    /* The same document again changes nothing. */
    put(st, "ents", "a", "{\"division\":\"440113\",\"tags\":[\"tank\",\"pipe\"]}", 0);
    assert_int_equal(found(st, "ents", "division", "440113"), 1);
    assert_int_equal(found(st, "ents", "tags", "tank"), 2);
    /* A field that goes away, or stops being a string, leaves its index. */
    put(st, "ents", "a", "{\"division\":4401}", 0);
    assert_int_equal(found(st, "ents", "division", "440113"), 0);
    assert_int_equal(found(st, "ents", "tags", "tank"), 1);
    assert_int_equal(found(st, "ents", "tags", "pipe"), 0);
    /* and comes back when it does */
    put(st, "ents", "a", "{\"division\":\"440113\",\"tags\":\"pipe\"}", 0);
    assert_int_equal(found(st, "ents", "division", "440113"), 1);
    assert_int_equal(found(st, "ents", "tags", "pipe"), 1);
    /* Deleting takes every row, changed or not. */
    assert_int_equal(store_doc_delete(st, "ents", "a"), 0);
    assert_int_equal(found(st, "ents", "division", "440113"), 0);
    assert_int_equal(found(st, "ents", "tags", "pipe"), 0);
    /* A removal takes the rows too, and says nothing of a missing one. */
    json_t *b = json_pack("{s:s}", "division", "440113");
    assert_int_equal(store_doc_put(st, "ents", "b", b, false), 0);
    json_decref(b);
    assert_int_equal(found(st, "ents", "division", "440113"), 1);
    assert_int_equal(store_doc_remove(st, "ents", "b"), 0);
    assert_int_equal(store_doc_remove(st, "ents", "b"), 0);
    assert_int_equal(found(st, "ents", "division", "440113"), 0);
    json_t *gone = NULL;
    assert_int_equal(store_doc_get(st, "ents", "b", &gone), STORE_ENOTFOUND);
}

/* An index defined after documents were stored is filled from them at
 * once (as CREATE INDEX would), only the first time it is defined; their
 * rows then move with them, and deleting them takes the rows. */
static void test_index_defined_later(void **state)
{
    struct store *st = *state;
    put(st, "sites", "s1", "{\"zone\":\"north\",\"n\":1}", 0);
    put(st, "sites", "s2", "{\"zone\":\"north\",\"n\":1}", 0);
    put(st, "sites", "s3", "{\"zone\":7}", 0);
    assert_int_equal(store_index_define(st, "sites", "zone", false), 0);
    assert_int_equal(found(st, "sites", "zone", "north"), 2);
    put(st, "sites", "s1", "{\"zone\":\"north\",\"n\":2}", 0);
    assert_int_equal(found(st, "sites", "zone", "north"), 2);
    put(st, "sites", "s2", "{\"zone\":\"south\",\"n\":1}", 0);
    assert_int_equal(found(st, "sites", "zone", "north"), 1);
    assert_int_equal(found(st, "sites", "zone", "south"), 1);
    /* Defined again (the next start): nothing doubles. */
    assert_int_equal(store_index_define(st, "sites", "zone", false), 0);
    assert_int_equal(found(st, "sites", "zone", "north"), 1);
    assert_int_equal(store_doc_delete(st, "sites", "s1"), 0);
    assert_int_equal(found(st, "sites", "zone", "north"), 0);
    assert_int_equal(store_doc_delete(st, "sites", "s2"), 0);
    assert_int_equal(found(st, "sites", "zone", "south"), 0);
}

/* A unique value moves with its document: the old value is free at once,
 * the new one is taken, and a rewrite refused for a taken value leaves
 * every index as it was. */
static void test_unique_index_moves(void **state)
{
    struct store *st = *state;
    put(st, "users", "u1", "{\"username\":\"alice\",\"org\":\"E1\"}", 0);
    put(st, "users", "u2", "{\"username\":\"bob\",\"org\":\"E2\"}", 0);
    put(st, "users", "u1", "{\"username\":\"carol\",\"org\":\"E1\"}", 0);
    assert_int_equal(found(st, "users", "username", "alice"), 0);
    assert_int_equal(found(st, "users", "username", "carol"), 1);
    put(st, "users", "u3", "{\"username\":\"alice\",\"org\":\"E3\"}", 0); /* free again */
    put(st, "users", "u3", "{\"username\":\"carol\",\"org\":\"E9\"}", STORE_ECONFLICT);
    assert_int_equal(found(st, "users", "org", "E9"), 0); /* nothing half-written */
    assert_int_equal(found(st, "users", "org", "E3"), 1);
    assert_int_equal(found(st, "users", "username", "alice"), 1);
    found_only(st, "users", "username", "carol", "u1");
    /* Two documents swap their values through a third. */
    put(st, "users", "u1", "{\"username\":\"tmp\",\"org\":\"E1\"}", 0);
    put(st, "users", "u2", "{\"username\":\"carol\",\"org\":\"E2\"}", 0);
    put(st, "users", "u1", "{\"username\":\"bob\",\"org\":\"E1\"}", 0);
    found_only(st, "users", "username", "bob", "u1");
    assert_int_equal(found(st, "users", "username", "tmp"), 0);
}

static void test_prefix_and_multi(void **state)
{
    struct store *st = *state;
    put(st, "ents", "a", "{\"division\":\"440106\",\"tags\":[\"key\",\"tank\"]}", 0);
    put(st, "ents", "b", "{\"division\":\"440113\",\"tags\":[\"tank\"]}", 0);
    put(st, "ents", "c", "{\"division\":\"440305\"}", 0);
    put(st, "ents", "d", "{\"division\":4401}", 0); /* not a string: not indexed */
    GPtrArray *ids = find(st, "ents", "division", "4401", true);
    assert_int_equal(ids->len, 2);
    assert_string_equal(g_ptr_array_index(ids, 0), "a");
    assert_string_equal(g_ptr_array_index(ids, 1), "b");
    g_ptr_array_free(ids, TRUE);
    ids = find(st, "ents", "division", "4401", false);
    assert_int_equal(ids->len, 0);
    g_ptr_array_free(ids, TRUE);
    ids = find(st, "ents", "division", "44", true);
    assert_int_equal(ids->len, 3);
    g_ptr_array_free(ids, TRUE);
    ids = find(st, "ents", "tags", "tank", false);
    assert_int_equal(ids->len, 2);
    g_ptr_array_free(ids, TRUE);
    /* Prefix matching is literal: % and _ are not wildcards. */
    ids = find(st, "ents", "division", "44%", true);
    assert_int_equal(ids->len, 0);
    g_ptr_array_free(ids, TRUE);
}

static void test_changes(void **state)
{
    struct store *st = *state;
    int64_t rev0 = 0, rev1 = 0, rev2 = 0;
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    assert_int_equal(store_doc_changes(st, "users", 0, &rev0, collect_ids, ids), 0);
    put(st, "users", "u1", "{\"username\":\"a\"}", 0);
    put(st, "users", "u2", "{\"username\":\"b\"}", 0);
    put(st, "ents", "e1", "{\"division\":\"44\"}", 0);
    put(st, "users", "u1", "{\"username\":\"a1\"}", 0);
    g_ptr_array_set_size(ids, 0);
    assert_int_equal(store_doc_changes(st, "users", rev0, &rev1, collect_ids, ids), 0);
    assert_int_equal(ids->len, 2); /* u2 then u1 (u1's newest revision) */
    assert_string_equal(g_ptr_array_index(ids, 0), "u2");
    assert_string_equal(g_ptr_array_index(ids, 1), "u1");
    assert_true(rev1 > rev0);
    g_ptr_array_set_size(ids, 0);
    assert_int_equal(store_doc_changes(st, "users", rev1, &rev2, collect_ids, ids), 0);
    assert_int_equal(ids->len, 0);
    assert_int_equal(rev2, rev1);
    g_ptr_array_free(ids, TRUE);
}

static bool collect_seq(int64_t seq, json_t *item, void *ud)
{
    (void)item;
    g_array_append_val((GArray *)ud, seq);
    return true;
}

static void test_sequences(void **state)
{
    struct store *st = *state;
    for (int i = 1; i <= 5; i++) {
        int64_t seq = 0;
        json_t *item = json_pack("{s:i}", "n", i);
        assert_int_equal(store_seq_append(st, "inbox:u1", item, &seq), 0);
        assert_int_equal(seq, i);
        json_decref(item);
    }
    int64_t other = 0;
    json_t *item = json_object();
    assert_int_equal(store_seq_append(st, "inbox:u2", item, &other), 0);
    assert_int_equal(other, 1); /* per key */
    GArray *seqs = g_array_new(FALSE, FALSE, sizeof(int64_t));
    assert_int_equal(store_seq_range(st, "inbox:u1", 2, 0, false, collect_seq, seqs), 0);
    assert_int_equal(seqs->len, 3);
    assert_int_equal(g_array_index(seqs, int64_t, 0), 3);
    g_array_set_size(seqs, 0);
    assert_int_equal(store_seq_range(st, "inbox:u1", 0, 2, true, collect_seq, seqs), 0);
    assert_int_equal(seqs->len, 2);
    assert_int_equal(g_array_index(seqs, int64_t, 0), 5);
    assert_int_equal(g_array_index(seqs, int64_t, 1), 4);
    /* Trimming never reuses numbers. */
    assert_int_equal(store_seq_trim(st, "inbox:u1", 5), 0);
    int64_t seq = 0;
    assert_int_equal(store_seq_append(st, "inbox:u1", item, &seq), 0);
    assert_int_equal(seq, 6);
    g_array_set_size(seqs, 0);
    assert_int_equal(store_seq_range(st, "inbox:u1", 0, 0, false, collect_seq, seqs), 0);
    assert_int_equal(seqs->len, 1);

    /* The head survives trimming; an unknown key has head 0. */
    int64_t last = -1;
    assert_int_equal(store_seq_trim(st, "inbox:u1", 6), 0);
    assert_int_equal(store_seq_last(st, "inbox:u1", &last), 0);
    assert_int_equal(last, 6);
    /* and the next row follows it, also after a trim of an emptied key */
    int64_t next = 0;
    json_t *again = json_pack("{s:i}", "n", 7);
    assert_int_equal(store_seq_append(st, "inbox:u1", again, &next), 0);
    assert_int_equal(next, 7);
    assert_int_equal(store_seq_trim(st, "inbox:u1", 7), 0);
    assert_int_equal(store_seq_trim(st, "inbox:u1", 7), 0);
    assert_int_equal(store_seq_append(st, "inbox:u1", again, &next), 0);
    assert_int_equal(next, 8);
    json_decref(again);
    assert_int_equal(store_seq_trim(st, "inbox:u1", 8), 0);
    assert_int_equal(store_seq_last(st, "inbox:nobody", &last), 0);
    assert_int_equal(last, 0);

    /* One item to several keys in one transaction. */
    const char *keys[] = {"inbox:u1", "inbox:u2", "inbox:u3"};
    int64_t seqs3[3] = {0};
    assert_int_equal(store_seq_append_many(st, keys, 3, item, seqs3), 0);
    assert_int_equal(seqs3[0], 9);
    assert_int_equal(seqs3[1], other + 1);
    assert_int_equal(seqs3[2], 1);
    json_decref(item);
    g_array_free(seqs, TRUE);
}

static bool collect_n(int64_t seq, json_t *item, void *ud)
{
    (void)seq;
    GArray *a = ud;
    int64_t n = json_integer_value(json_object_get(item, "n"));
    g_array_append_val(a, n);
    return true;
}

/* SQLite backend: the number sql (a query of one value) reads through a
 * second handle. */
static int64_t number_of(const char *sql)
{
    assert_null(redis_url);
    char *db = g_build_filename(dir, "yjt.db", NULL);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(h);
    g_free(db);
    return n;
}

/* The same: the number of rows of a table. */
static int64_t rows_of(const char *table)
{
    char *sql = g_strdup_printf("SELECT count(*) FROM %s", table);
    int64_t n = number_of(sql);
    g_free(sql);
    return n;
}

/* A fan-out stores its item once; the item goes when the last key that
 * refers to it is trimmed. */
/* What collect (collect_n, collect_seq) gathers of key's items, in order,
 * as text joined by sep: "1,2,3". */
static char *seq_text(struct store *st, const char *key, store_seq_cb collect, const char *sep)
{
    GArray *vs = g_array_new(FALSE, FALSE, sizeof(int64_t));
    assert_int_equal(store_seq_range(st, key, 0, 0, false, collect, vs), 0);
    GString *s = g_string_new("");
    for (guint i = 0; i < vs->len; i++)
        g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? sep : "",
                               (gint64)g_array_index(vs, int64_t, i));
    g_array_free(vs, TRUE);
    return g_string_free(s, FALSE);
}

/* The values ("n") of key's items in order, as text: "1,2,3". */
static char *items_of(struct store *st, const char *key)
{
    return seq_text(st, key, collect_n, ",");
}

static void assert_items(struct store *st, const char *key, const char *want)
{
    char *got = items_of(st, key);
    assert_string_equal(got, want);
    g_free(got);
}

static int64_t head_of(struct store *st, const char *key)
{
    int64_t h = -1;
    assert_int_equal(store_seq_last(st, key, &h), 0);
    return h;
}

/* The seqs of key, oldest first, as a string ("3 4 5"). */
static char *seqs_of(struct store *st, const char *key)
{
    return seq_text(st, key, collect_seq, " ");
}

static void append_at(struct store *st, const char *key, const char *json)
{
    json_t *item = json_loads(json, 0, NULL);
    int64_t seq = 0;
    assert_int_equal(store_seq_append(st, key, item, &seq), 0);
    json_decref(item);
}

static void trims_to(struct store *st, int64_t before, int scan, int64_t upto, const char *left)
{
    assert_int_equal(store_seq_trim_older(st, "inbox:t", "at", before, scan, upto), 0);
    assert_int_equal(store_commit(st), 0);
    char *now = seqs_of(st, "inbox:t");
    assert_string_equal(now, left);
    g_free(now);
}

/* A trim by age and count: up to the last of the oldest items below the
 * bound (no further than scan items, stopping at the first that is not;
 * an item without the field counts as old), and up to a seq in any case;
 * the head is kept. */
static void test_trim_older(void **state)
{
    struct store *st = *state;
    for (int at = 10; at <= 50; at += 10) {
        char json[32];
        g_snprintf(json, sizeof(json), "{\"at\": %d}", at);
        append_at(st, "inbox:t", json);
    }
    assert_int_equal(store_commit(st), 0);
    trims_to(st, 25, 10, 0, "3 4 5");       /* by age: 10 and 20 */
    trims_to(st, 100, 1, 0, "4 5");         /* no further than scan items */
    trims_to(st, 0, 10, 4, "5");            /* by count: up to 4 whatever their age */
    append_at(st, "inbox:t", "{\"x\": 1}"); /* 6: without the field, old */
    append_at(st, "inbox:t", "{\"at\": 70}");
    append_at(st, "inbox:t", "{\"at\": 5}");
    assert_int_equal(store_commit(st), 0);
    trims_to(st, 60, 10, 0, "7 8"); /* stops at the first new one (7) */
    trims_to(st, 60, 10, -1, "7 8");
    int64_t last = 0;
    assert_int_equal(store_seq_last(st, "inbox:t", &last), 0);
    assert_int_equal(last, 8);
    /* an unknown key is nothing to trim */
    assert_int_equal(store_seq_trim_older(st, "inbox:none", "at", 100, 10, 3), 0);
    assert_int_equal(store_commit(st), 0);
}

/* A fan-out to many keys is stored whole and its rows settle later: every
 * read, append and trim of a key sees them in order before and after they
 * settle, and after the store is closed with rows still pending (as a
 * crash leaves it). */
static void test_large_fanouts(void **state)
{
    struct store *st = *state;
    enum { N = 100 };
    char *names[N + 1];
    const char *keys[N + 1];
    for (int i = 0; i < N; i++)
        keys[i] = names[i] = g_strdup_printf("inbox:k%03d", i);
    int64_t seqs[N + 1];
    json_t *item = json_pack("{s:i}", "n", 1);
    assert_int_equal(store_seq_append(st, "inbox:k005", item, &seqs[0]), 0);
    json_decref(item);

    item = json_pack("{s:i}", "n", 2);
    assert_int_equal(store_seq_append_many(st, keys, N, item, seqs), 0);
    json_decref(item);
    assert_int_equal(seqs[5], 2);
    assert_int_equal(seqs[6], 1);
    assert_int_equal(head_of(st, "inbox:k005"), 2);
    /* A key named twice gets two rows. */
    keys[N] = "inbox:k007";
    item = json_pack("{s:i}", "n", 3);
    assert_int_equal(store_seq_append_many(st, keys, N + 1, item, seqs), 0);
    json_decref(item);
    assert_int_equal(seqs[7], 2);
    assert_int_equal(seqs[N], 3);
    store_commit(st);
    if (!redis_url)
        assert_int_equal(rows_of("seq_fanouts"), 2);

    /* Reads give settled rows, then pending ones, and write nothing. */
    assert_items(st, "inbox:k010", "2,3");
    assert_items(st, "inbox:k005", "1,2,3");
    assert_items(st, "inbox:k007", "2,3,3");
    GArray *got = g_array_new(FALSE, FALSE, sizeof(int64_t));
    assert_int_equal(store_seq_range(st, "inbox:k005", 0, 2, true, collect_seq, got), 0);
    assert_int_equal(got->len, 2);
    assert_int_equal(g_array_index(got, int64_t, 0), 3);
    assert_int_equal(g_array_index(got, int64_t, 1), 2);
    g_array_set_size(got, 0);
    assert_int_equal(store_seq_range(st, "inbox:k005", 1, 1, false, collect_seq, got), 0);
    assert_int_equal(got->len, 1);
    assert_int_equal(g_array_index(got, int64_t, 0), 2);
    g_array_set_size(got, 0);
    assert_int_equal(store_seq_range(st, "inbox:k005", 0, 3, true, collect_seq, got), 0);
    assert_int_equal(got->len, 3);
    assert_int_equal(g_array_index(got, int64_t, 2), 1);
    g_array_free(got, TRUE);
    store_commit(st);
    if (!redis_url)
        assert_int_equal(rows_of("seq_fanouts"), 2);
    /* A single append goes after the pending rows. */
    item = json_pack("{s:i}", "n", 4);
    int64_t seq = 0;
    assert_int_equal(store_seq_append(st, "inbox:k020", item, &seq), 0);
    assert_int_equal(seq, 3);
    json_decref(item);
    /* A trim takes pending rows too. */
    assert_int_equal(store_seq_trim(st, "inbox:k030", 1), 0);
    assert_items(st, "inbox:k030", "3");

    /* Closed with rows pending: all there after the reopen. */
    store_commit(st);
    store_close(st);
    st = *state = open_store();
    assert_int_equal(head_of(st, "inbox:k050"), 2);
    assert_items(st, "inbox:k050", "2,3");
    assert_items(st, "inbox:k020", "2,3,4");
    assert_items(st, "inbox:k030", "3");
    assert_items(st, "inbox:k007", "2,3,3");
    item = json_pack("{s:i}", "n", 5);
    assert_int_equal(store_seq_append_many(st, keys, N, item, seqs), 0);
    json_decref(item);
    assert_int_equal(seqs[99], 3);

    /* Settled, the fan-outs' rows go; every key reads the same. */
    assert_int_equal(store_seq_settle(st, 1000, true), 0);
    store_commit(st);
    if (!redis_url)
        assert_int_equal(rows_of("seq_fanouts"), 0);
    assert_items(st, "inbox:k099", "2,3,5");
    assert_items(st, "inbox:k005", "1,2,3,5");
    assert_int_equal(head_of(st, "inbox:k007"), 4);
    store_close(st);
    st = *state = open_store();
    assert_items(st, "inbox:k099", "2,3,5");
    assert_int_equal(head_of(st, "inbox:k007"), 4);
    /* Trimming frees the shared bodies as before. */
    for (int i = 0; i < N; i++)
        assert_int_equal(store_seq_trim(st, keys[i], 10), 0);
    store_commit(st);
    if (!redis_url)
        assert_int_equal(rows_of("seq_bodies"), 0);
    for (int i = 0; i < N; i++)
        g_free(names[i]);
}

/* Collects (seq, n) pairs into got, and asks to stop once it holds stop
 * of them (0: never). */
struct pairs {
    GArray *got; /* int64_t */
    int stop;
};

static bool collect_pair(int64_t seq, json_t *item, void *ud)
{
    struct pairs *p = ud;
    int64_t n = json_integer_value(json_object_get(item, "n"));
    g_array_append_val(p->got, seq);
    g_array_append_val(p->got, n);
    return p->stop == 0 || (int)p->got->len < 2 * p->stop;
}

/* Every range of key, seqs from..to stored with item n == seq: each
 * after_seq, limit (or a reader that stops) and order gives what it
 * should, bodies included. */
static void assert_ranges(struct store *st, const char *key, int64_t from, int64_t to)
{
    static const int limits[] = {0, 1, 3, 64, -2}; /* -2: no limit, stop after 2 */
    struct pairs p = {g_array_new(FALSE, FALSE, sizeof(int64_t)), 0};
    for (int64_t after = 0; after <= to + 1; after++)
        for (guint l = 0; l < G_N_ELEMENTS(limits); l++)
            for (int newest = 0; newest < 2; newest++) {
                int limit = MAX(limits[l], 0);
                p.stop = limits[l] < 0 ? -limits[l] : 0;
                g_array_set_size(p.got, 0);
                assert_int_equal(store_seq_range(st, key, after, limit, newest, collect_pair, &p),
                                 0);
                int64_t lo = MAX(after + 1, from), want = MAX(to - lo + 1, 0);
                int most = limit ? limit : p.stop;
                if (most && want > most)
                    want = most;
                assert_int_equal(p.got->len, 2 * want);
                for (int64_t i = 0; i < want; i++) {
                    int64_t seq = newest ? to - i : lo + i;
                    assert_int_equal(g_array_index(p.got, int64_t, 2 * i), seq);
                    assert_int_equal(g_array_index(p.got, int64_t, 2 * i + 1), seq);
                }
            }
    g_array_free(p.got, TRUE);
}

/* SQLite: the seqs that still refer to a shared body, all bodies told. */
static void assert_body_refs(int64_t want)
{
    if (!redis_url)
        assert_int_equal(number_of("SELECT coalesce(sum(refs), 0) FROM seq_bodies"), want);
}

/* Settled, a key's rows are stored as runs (SQLite: one row for up to 64
 * consecutive seqs): reads from inside a run, trims that cut one, the head
 * and a reopen all see each seq as before. */
static void test_settled_runs(void **state)
{
    struct store *st = *state;
    enum { N = 40, PUSHES = 70 };
    char *names[N];
    const char *keys[N];
    for (int i = 0; i < N; i++)
        keys[i] = names[i] = g_strdup_printf("inbox:r%02d", i);
    int64_t seqs[N];
    for (int p = 1; p <= PUSHES; p++) {
        json_t *item = json_pack("{s:i}", "n", p);
        assert_int_equal(store_seq_append_many(st, keys, N, item, seqs), 0);
        json_decref(item);
        assert_int_equal(seqs[N - 1], p);
    }
    assert_int_equal(store_seq_settle(st, 1000, true), 0);
    assert_int_equal(store_commit(st), 0);
    if (!redis_url) {
        assert_int_equal(rows_of("seqs"), 2 * N); /* 64 and 6 per key */
        assert_int_equal(rows_of("seq_fanouts"), 0);
    }
    assert_ranges(st, "inbox:r07", 1, PUSHES);
    assert_int_equal(head_of(st, "inbox:r07"), PUSHES);

    /* A trim inside the first run keeps the rest of it. */
    assert_int_equal(store_seq_trim(st, "inbox:r07", 10), 0);
    assert_int_equal(store_commit(st), 0);
    assert_ranges(st, "inbox:r07", 11, PUSHES);
    assert_int_equal(head_of(st, "inbox:r07"), PUSHES);
    if (!redis_url)
        assert_int_equal(rows_of("seq_bodies"), PUSHES); /* the other keys refer */
    assert_body_refs(N * PUSHES - 10);
    /* Every key trimmed past the first run: its bodies go. */
    for (int i = 0; i < N; i++)
        assert_int_equal(store_seq_trim(st, keys[i], 64), 0);
    assert_int_equal(store_commit(st), 0);
    if (!redis_url) {
        assert_int_equal(rows_of("seq_bodies"), PUSHES - 64);
        assert_int_equal(rows_of("seqs"), N);
    }
    assert_body_refs(N * (PUSHES - 64));
    assert_ranges(st, "inbox:r07", 65, PUSHES);
    /* Cut to its last seq, and then single appends after it. */
    assert_int_equal(store_seq_trim(st, "inbox:r08", PUSHES - 1), 0);
    assert_int_equal(store_commit(st), 0);
    assert_body_refs(N * (PUSHES - 64) - (PUSHES - 1 - 64));
    json_t *item = json_pack("{s:i}", "n", PUSHES + 1);
    int64_t seq = 0;
    assert_int_equal(store_seq_append(st, "inbox:r08", item, &seq), 0);
    json_decref(item);
    assert_int_equal(seq, PUSHES + 1);
    assert_int_equal(store_commit(st), 0);
    assert_ranges(st, "inbox:r08", PUSHES, PUSHES + 1);

    /* After a reopen; then all taken, the head stays. */
    store_close(st);
    st = *state = open_store();
    assert_ranges(st, "inbox:r07", 65, PUSHES);
    assert_ranges(st, "inbox:r08", PUSHES, PUSHES + 1);
    assert_int_equal(head_of(st, "inbox:r09"), PUSHES);
    assert_int_equal(store_seq_trim(st, "inbox:r09", PUSHES), 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(head_of(st, "inbox:r09"), PUSHES);
    assert_items(st, "inbox:r09", "");
    for (int i = 0; i < N; i++) {
        assert_int_equal(store_seq_trim(st, keys[i], PUSHES + 1), 0);
        g_free(names[i]);
    }
    assert_int_equal(store_commit(st), 0);
    if (!redis_url)
        assert_int_equal(rows_of("seq_bodies"), 0);
}

static void test_shared_bodies(void **state)
{
    struct store *st = *state;
    const char *keys[] = {"a", "b", "c"};
    int64_t seqs[3];
    json_t *item = json_pack("{s:i}", "n", 7);
    assert_int_equal(store_seq_append_many(st, keys, 3, item, seqs), 0);
    json_decref(item);
    item = json_pack("{s:i}", "n", 8);
    assert_int_equal(store_seq_append(st, "a", item, &seqs[0]), 0);
    assert_int_equal(store_seq_append_many(st, keys, 2, item, seqs), 0);
    json_decref(item);
    assert_int_equal(seqs[0], 3);
    assert_int_equal(rows_of("seq_bodies"), 2);
    GArray *ns = g_array_new(FALSE, FALSE, sizeof(int64_t));
    assert_int_equal(store_seq_range(st, "a", 0, 0, false, collect_n, ns), 0);
    assert_int_equal(ns->len, 3);
    assert_int_equal(g_array_index(ns, int64_t, 0), 7);
    assert_int_equal(g_array_index(ns, int64_t, 1), 8);
    assert_int_equal(g_array_index(ns, int64_t, 2), 8);
    assert_int_equal(store_seq_trim(st, "a", 3), 0);
    assert_int_equal(store_seq_trim(st, "b", 1), 0);
    assert_int_equal(rows_of("seq_bodies"), 2); /* c and b still refer */
    assert_int_equal(store_seq_trim(st, "c", 1), 0);
    assert_int_equal(rows_of("seq_bodies"), 1);
    g_array_set_size(ns, 0);
    assert_int_equal(store_seq_range(st, "b", 0, 0, true, collect_n, ns), 0);
    assert_int_equal(ns->len, 1);
    assert_int_equal(g_array_index(ns, int64_t, 0), 8);
    assert_int_equal(store_seq_trim(st, "b", 2), 0);
    assert_int_equal(rows_of("seq_bodies"), 0);
    assert_int_equal(rows_of("seqs"), 0);
    g_array_free(ns, TRUE);
}

/* A store made before shared bodies: its rows read as before, and new
 * fan-outs share their bodies. */
static void test_seqs_upgrade(void **state)
{
    store_close(*state);
    char *db = g_build_filename(dir, "yjt.db", NULL);
    g_unlink(db);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(h,
                     "CREATE TABLE seqs(key TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT "
                     "NULL, PRIMARY KEY(key, seq)) WITHOUT ROWID;"
                     "CREATE TABLE seq_heads(key TEXT PRIMARY KEY, last INTEGER NOT NULL)"
                     " WITHOUT ROWID;"
                     "INSERT INTO seqs VALUES('a', 1, '{\"n\":5}');"
                     "INSERT INTO seq_heads VALUES('a', 1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(h);
    g_free(db);
    struct store *st = *state = open_store();
    const char *keys[] = {"a", "b"};
    int64_t seqs[2];
    json_t *item = json_pack("{s:i}", "n", 6);
    assert_int_equal(store_seq_append_many(st, keys, 2, item, seqs), 0);
    json_decref(item);
    assert_int_equal(seqs[0], 2);
    GArray *ns = g_array_new(FALSE, FALSE, sizeof(int64_t));
    assert_int_equal(store_seq_range(st, "a", 0, 0, false, collect_n, ns), 0);
    assert_int_equal(ns->len, 2);
    assert_int_equal(g_array_index(ns, int64_t, 0), 5);
    assert_int_equal(g_array_index(ns, int64_t, 1), 6);
    assert_int_equal(store_seq_trim(st, "a", 2), 0);
    assert_int_equal(rows_of("seq_bodies"), 1);
    g_array_free(ns, TRUE);
    /* and settled fan-outs are written as runs into the old table */
    const char *many[40];
    char *names[40];
    for (int i = 0; i < 40; i++)
        many[i] = names[i] = g_strdup_printf("m%02d", i);
    for (int p = 1; p <= 3; p++) {
        item = json_pack("{s:i}", "n", p);
        assert_int_equal(store_seq_append_many(st, many, 40, item, NULL), 0);
        json_decref(item);
    }
    assert_int_equal(store_seq_settle(st, 100, true), 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(rows_of("seqs"), 1 + 40); /* b's, and a run per key */
    assert_ranges(st, "m39", 1, 3);
    for (int i = 0; i < 40; i++)
        g_free(names[i]);
}

static bool collect_deadline(const char *id, int64_t due, json_t *payload, void *ud)
{
    (void)due;
    (void)payload;
    g_ptr_array_add(ud, g_strdup(id));
    return true;
}

static void test_deadlines(void **state)
{
    struct store *st = *state;
    json_t *p = json_object();
    assert_int_equal(store_deadline_set(st, "late", 300, p), 0);
    assert_int_equal(store_deadline_set(st, "early", 100, p), 0);
    assert_int_equal(store_deadline_set(st, "mid", 200, p), 0);
    assert_int_equal(store_deadline_set(st, "mid", 250, p), 0); /* moved, not duplicated */
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    assert_int_equal(store_deadline_due(st, 260, 0, collect_deadline, ids), 0);
    assert_int_equal(ids->len, 2);
    assert_string_equal(g_ptr_array_index(ids, 0), "early");
    assert_string_equal(g_ptr_array_index(ids, 1), "mid");
    g_ptr_array_set_size(ids, 0);
    assert_int_equal(store_deadline_due(st, 1000, 1, collect_deadline, ids), 0);
    assert_int_equal(ids->len, 1);
    assert_int_equal(store_deadline_delete(st, "early"), 0);
    g_ptr_array_set_size(ids, 0);
    assert_int_equal(store_deadline_due(st, 1000, 0, collect_deadline, ids), 0);
    assert_int_equal(ids->len, 2);

    const char *many[] = {"m1", "m2"};
    int64_t dues[] = {50, 5000};
    json_t *payloads[] = {p, p};
    assert_int_equal(store_deadline_set_many(st, many, 2, dues, payloads), 0);
    g_ptr_array_set_size(ids, 0);
    assert_int_equal(store_deadline_due(st, 60, 0, collect_deadline, ids), 0);
    assert_int_equal(ids->len, 1);
    assert_string_equal(g_ptr_array_index(ids, 0), "m1");

    /* Claims: only from the due time read, once; the lease moves it. */
    assert_int_equal(store_deadline_claim(st, "m1", 50, 900), 0);
    assert_int_equal(store_deadline_claim(st, "m1", 50, 950), STORE_ECONFLICT);
    assert_int_equal(store_deadline_claim(st, "nosuch", 50, 950), STORE_ENOTFOUND);
    g_ptr_array_set_size(ids, 0);
    assert_int_equal(store_deadline_due(st, 800, 0, collect_deadline, ids), 0);
    for (guint i = 0; i < ids->len; i++)
        assert_string_not_equal(g_ptr_array_index(ids, i), "m1");
    g_ptr_array_set_size(ids, 0);
    assert_int_equal(store_deadline_due(st, 900, 0, collect_deadline, ids), 0);
    bool back = false;
    for (guint i = 0; i < ids->len; i++)
        back = back || strcmp(g_ptr_array_index(ids, i), "m1") == 0;
    assert_true(back); /* the lease ended: due again */
    assert_int_equal(store_deadline_claim(st, "m1", 900, 1900), 0);
    g_ptr_array_free(ids, TRUE);
    json_decref(p);
}

static void test_kv_counters(void **state)
{
    struct store *st = *state;
    int64_t now = clock_now_ms();
    char *v = NULL;
    assert_int_equal(store_kv_set(st, "forever", "1", 0), 0);
    assert_int_equal(store_kv_set(st, "gone", "2", now - 1), 0);
    assert_int_equal(store_kv_set(st, "later", "3", now + 60000), 0);
    assert_int_equal(store_kv_get(st, "forever", &v), 0);
    assert_string_equal(v, "1");
    g_free(v);
    assert_int_equal(store_kv_get(st, "gone", NULL), STORE_ENOTFOUND);
    assert_int_equal(store_kv_get(st, "later", NULL), 0);
    assert_int_equal(store_kv_purge_expired(st, now), 0);
    assert_int_equal(store_kv_delete(st, "later"), 0);
    assert_int_equal(store_kv_get(st, "later", NULL), STORE_ENOTFOUND);
    int64_t c = 0;
    assert_int_equal(store_counter_incr(st, "n", 5, &c), 0);
    assert_int_equal(c, 5);
    assert_int_equal(store_counter_incr(st, "n", -2, &c), 0);
    assert_int_equal(c, 3);
}

static double rate(struct store *st, const char *key, int64_t now, int64_t n, int64_t limit,
                   int want_rc)
{
    double count = -1;
    assert_int_equal(store_rate_add(st, key, 60000, now, n, limit, &count), want_rc);
    return count;
}

/* Rate windows: a limit holds over a sliding minute, estimated from the
 * previous minute's count weighted by how much of it is still in range. */
static void test_rate_windows(void **state)
{
    struct store *st = *state;
    const int64_t t = INT64_C(29000000) * 60000; /* the start of a window */
    for (int i = 1; i <= 3; i++)
        assert_true(rate(st, "u1", t + i, 1, 3, 0) == i);
    assert_true(rate(st, "u1", t + 10, 1, 3, STORE_ECONFLICT) == 3); /* nothing added */
    assert_true(rate(st, "u1", t + 20, 0, -1, 0) == 3);
    assert_true(rate(st, "u2", t + 20, 0, -1, 0) == 0); /* keys are apart */
    /* A quarter into the next window, three quarters of the last count. */
    assert_true(rate(st, "u1", t + 75000, 1, 3, STORE_ECONFLICT) == 2.25);
    assert_true(rate(st, "u1", t + 105000, 1, 3, 0) == 1.75);
    assert_true(rate(st, "u1", t + 105000, 1, 3, 0) == 2.75);
    assert_true(rate(st, "u1", t + 105000, 1, 3, STORE_ECONFLICT) == 2.75);
    /* Half into the third window: half of the second's two; the first's
     * three are gone. A window later, nothing. */
    assert_true(rate(st, "u1", t + 150000, 0, -1, 0) == 1);
    assert_true(rate(st, "u1", t + 240000, 0, -1, 0) == 0);
    /* No limit: always added. */
    assert_true(rate(st, "u3", t, 5, -1, 0) == 5);
    assert_true(rate(st, "u3", t, 500, -1, 0) == 505);
    assert_int_equal(store_rate_add(st, "u3", 0, t, 1, -1, NULL), STORE_EINVAL);
    assert_int_equal(store_rate_add(st, "u3", 60000, t, -1, -1, NULL), STORE_EINVAL);
}

static void test_reopen_and_second_handle(void **state)
{
    struct store *st = *state;
    put(st, "users", "u1", "{\"username\":\"alice\"}", 0);
    /* A second process (yjtctl) writes while the first has the file open. */
    struct store *other = open_store();
    put(other, "users", "u2", "{\"username\":\"alice\"}", STORE_ECONFLICT);
    put(other, "users", "u2", "{\"username\":\"bob\"}", 0);
    store_close(other);
    json_t *got = NULL;
    assert_int_equal(store_doc_get(st, "users", "u2", &got), 0);
    json_decref(got);
    store_close(st);
    *state = st = open_store();
    assert_int_equal(store_doc_get(st, "users", "u1", &got), 0);
    json_decref(got);
    GPtrArray *ids = find(st, "users", "username", "bob", false);
    assert_int_equal(ids->len, 1);
    g_ptr_array_free(ids, TRUE);
    assert_true(st->latency.total > 0);
}

/* A rewrite finds the rows the stored document has even when another
 * connection (another process) rewrote it after this one last did. */
static void test_index_after_other_writer(void **state)
{
    struct store *st = *state;
    store_set_batching(st, true, on_dirty, NULL);
    put(st, "ents", "e1", "{\"division\":\"4401\",\"tags\":[\"a\"]}", 0);
    assert_int_equal(store_commit(st), 0);
    struct store *other = open_store();
    put(other, "ents", "e1", "{\"division\":\"4402\",\"tags\":[\"b\"]}", 0);
    store_close(other);
    put(st, "ents", "e1", "{\"division\":\"4403\",\"tags\":[\"a\"]}", 0);
    assert_int_equal(store_commit(st), 0);
    static const char *const gone[][2] = {
        {"division", "4401"}, {"division", "4402"}, {"tags", "b"}};
    for (size_t i = 0; i < G_N_ELEMENTS(gone); i++) {
        GPtrArray *ids = find(st, "ents", gone[i][0], gone[i][1], false);
        assert_int_equal(ids->len, 0);
        g_ptr_array_free(ids, TRUE);
    }
    GPtrArray *ids = find(st, "ents", "division", "4403", false);
    assert_int_equal(ids->len, 1);
    g_ptr_array_free(ids, TRUE);
    ids = find(st, "ents", "tags", "a", false);
    assert_int_equal(ids->len, 1);
    g_ptr_array_free(ids, TRUE);
}

/* Appends number on from the newest row even when another process
 * appended to the same sequence after this one last did (the SQLite store
 * remembers the heads it wrote), after fan-outs and single appends alike;
 * and an undone write leaves no head behind. */
static void test_seq_heads_after_other_writer(void **state)
{
    struct store *st = *state;
    store_set_batching(st, true, on_dirty, NULL);
    enum { N = 40 }; /* enough to be stored as one fan-out */
    char names[N][16];
    const char *keys[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "in:%d", i);
        keys[i] = names[i];
    }
    json_t *item = json_pack("{s:i}", "n", 1);
    int64_t seqs[N], seq = 0;
    assert_int_equal(store_seq_append_many(st, keys, N, item, seqs), 0);
    assert_true(seqs[0] == 1 && seqs[N - 1] == 1);
    assert_int_equal(store_seq_append(st, "in:0", item, &seq), 0);
    assert_true(seq == 2);
    assert_int_equal(store_commit(st), 0);
    struct store *other = open_store();
    assert_int_equal(store_seq_append(other, "in:0", item, &seq), 0);
    assert_true(seq == 3);
    store_close(other);
    assert_int_equal(store_seq_append(st, "in:0", item, &seq), 0);
    assert_true(seq == 4);
    assert_int_equal(store_seq_append_many(st, keys, N, item, seqs), 0);
    assert_true(seqs[0] == 5 && seqs[1] == 2 && seqs[N - 1] == 2);
    assert_int_equal(store_commit(st), 0);
    /* A key named twice in one fan-out gets two seqs; the next goes after. */
    keys[1] = keys[0];
    assert_int_equal(store_seq_append_many(st, keys, N, item, seqs), 0);
    assert_true(seqs[0] == 6 && seqs[1] == 7 && seqs[2] == 3);
    assert_int_equal(store_seq_append(st, "in:0", item, &seq), 0);
    assert_true(seq == 8);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(store_seq_last(st, "in:0", &seq), 0);
    assert_true(seq == 8);
    json_decref(item);
}

/* A document stored under an id just made is found by id and by its
 * index rows, and a later replace moves its rows (batched on Redis, the
 * first write does not wait for the server). */
static void test_put_new(void **state)
{
    struct store *st = *state;
    json_t *doc = json_pack("{s:s, s:[s, s]}", "division", "440106", "tags", "key", "tank");
    assert_int_equal(store_doc_put_new(st, "ents", "n1", doc), 0);
    json_decref(doc);
    json_t *got = NULL;
    assert_int_equal(store_doc_get(st, "ents", "n1", &got), 0);
    assert_string_equal(json_string_value(json_object_get(got, "division")), "440106");
    json_decref(got);
    assert_int_equal(found(st, "ents", "division", "440106"), 1);
    assert_int_equal(found(st, "ents", "tags", "tank"), 1);
    put(st, "ents", "n1", "{\"division\":\"440113\",\"tags\":[\"key\"]}", 0);
    assert_int_equal(found(st, "ents", "division", "440106"), 0);
    assert_int_equal(found(st, "ents", "tags", "tank"), 0);
    assert_int_equal(found(st, "ents", "tags", "key"), 1);
    assert_int_equal(store_commit(st), 0);
}

/* A replace whose unique values are those stored (store_doc_put_kept) is
 * made; one whose value another document holds is never made: refused at
 * once where the store waits for it, else its batch fails. */
static void test_put_kept(void **state)
{
    struct store *st = *state;
    put(st, "users", "u1", "{\"username\":\"alice\",\"org\":\"E1\"}", 0);
    put(st, "users", "u2", "{\"username\":\"bob\",\"org\":\"E2\"}", 0);
    assert_int_equal(store_commit(st), 0);
    json_t *doc = json_pack("{s:s, s:s}", "username", "alice", "org", "E7");
    assert_int_equal(store_doc_put_kept(st, "users", "u1", doc), 0);
    json_decref(doc);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(found(st, "users", "org", "E7"), 1);
    assert_int_equal(found(st, "users", "username", "alice"), 1);
    doc = json_pack("{s:s, s:s}", "username", "bob", "org", "E8"); /* bob is u2's */
    int rc = store_doc_put_kept(st, "users", "u1", doc);
    json_decref(doc);
    if (rc == STORE_OK)
        assert_int_not_equal(store_commit(st), 0); /* sent without waiting: the batch fails */
    else
        assert_int_equal(rc, STORE_ECONFLICT);
    assert_int_equal(found(st, "users", "org", "E8"), 0);
    assert_int_equal(found(st, "users", "org", "E7"), 1);
    found_only(st, "users", "username", "bob", "u2");
}
/* More documents than the SQLite store remembers the rows of: a replace
 * of one forgotten long ago, of one still remembered, and of one
 * remembered again after a replace moved it to the back of the queue, all
 * move their rows. */
static void test_index_many_docs(void **state)
{
    struct store *st = *state;
    store_set_batching(st, true, on_dirty, NULL);
    enum { N = 9000 };
    char id[16], doc[64];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        snprintf(doc, sizeof(doc), "{\"division\":\"d%d\"}", i % 3);
        put(st, "ents", id, doc, 0);
        if (i == 10) /* m1 goes to the back: remembered longer than m0 */
            put(st, "ents", "m1", "{\"division\":\"d1\"}", 0);
    }
    assert_int_equal(store_commit(st), 0);
    static const char *const moved[] = {"m0", "m1", "m2", "m8999", "m4500"};
    for (size_t i = 0; i < G_N_ELEMENTS(moved); i++)
        put(st, "ents", moved[i], "{\"division\":\"moved\"}", 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(found(st, "ents", "division", "moved"), 5);
    /* m0, m4500 were d0; m1 d1; m2, m8999 d2 */
    assert_int_equal(found(st, "ents", "division", "d0"), N / 3 - 2);
    assert_int_equal(found(st, "ents", "division", "d1"), N / 3 - 1);
    assert_int_equal(found(st, "ents", "division", "d2"), N / 3 - 2);
    assert_int_equal(store_doc_delete(st, "ents", "m8999"), 0);
    assert_int_equal(store_doc_delete(st, "ents", "m0"), 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(found(st, "ents", "division", "moved"), 3);
}

int main(void)
{
    redis_url = getenv("YJT_TEST_REDIS");
    const struct CMUnitTest common[] = {
        cmocka_unit_test_setup_teardown(test_docs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_multi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_defined_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_index_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_older, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadlines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_windows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_and_second_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_after_other_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_heads_after_other_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_many_docs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_fanouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_runs, setup, teardown),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_shared_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_fanouts, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_settled_runs, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_seqs_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docs, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_unique_index, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_multi, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_index_moves, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_put_new, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_put_kept, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_index_defined_later, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_unique_index_moves, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_changes, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_sequences, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_trim_older, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_deadlines, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_kv_counters, setup_batched, teardown),
    };
    const struct CMUnitTest redis_only[] = {
        cmocka_unit_test_setup_teardown(test_docs, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_unique_index, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_multi, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_index_moves, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_put_new, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_put_kept, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_unique_index_moves, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_changes, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_sequences, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_trim_older, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_deadlines, setup_batched, teardown),
        cmocka_unit_test_setup_teardown(test_kv_counters, setup_batched, teardown),
    };
    int failed = cmocka_run_group_tests_name(redis_url ? "redis" : "sqlite", common, NULL, NULL);
    if (redis_url)
        return failed + cmocka_run_group_tests_name("redis only", redis_only, NULL, NULL);
    return failed + cmocka_run_group_tests_name("sqlite only", sqlite_only, NULL, NULL);
}
