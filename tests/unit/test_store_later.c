/* Reads made later (store_index_find_later and its kin) on both backends
 * (tests/unit/with_redis.sh for Redis): the same answers as the waiting
 * reads, never inside the call that asked, seeing the writes sent before
 * them; on Redis sent without waiting and answered from the store's
 * socket; answered when the store closes first. */
#include "store_fixture.h"

#include "common/jsonx.h"
#include "records/org.h"

struct answer {
    int rc;
    GPtrArray *ids; /* "id" or "id:-" for a document gone */
    int64_t last_rev;
    bool more;
};

static GPtrArray *answers; /* struct answer*, in the order told */

static void answer_free(gpointer p)
{
    struct answer *a = p;
    g_ptr_array_free(a->ids, TRUE);
    g_free(a);
}

static void on_docs(int rc, const struct store_docs *d, void *ud)
{
    (void)ud;
    struct answer *a = g_new0(struct answer, 1); /* ids: "id", "id=value" or "id:-" */
    a->rc = rc;
    a->ids = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < d->n; i++) {
        json_t *doc = d->docs[i];
        g_ptr_array_add(a->ids, !doc ? g_strconcat(d->ids[i], ":-", NULL)
                                : json_is_string(doc)
                                    ? g_strconcat(d->ids[i], "=", json_string_value(doc), NULL)
                                    : g_strdup(d->ids[i]));
    }
    a->last_rev = d->last_rev;
    a->more = d->more;
    g_ptr_array_add(answers, a);
}

static int reads_sent;

static void on_read_sent(void *ud)
{
    (void)ud;
    reads_sent++;
}

static bool answered_n(void *ud)
{
    return answers->len >= GPOINTER_TO_UINT(ud);
}

/* Turns the loop until n answers were told (at most 5 s). */
static void wait_answers(struct store *st, guint n)
{
    turn_until(st, NULL, answered_n, GUINT_TO_POINTER(n));
    assert_int_equal(answers->len, n);
}

static struct answer *nth(guint i)
{
    return g_ptr_array_index(answers, i);
}

static void assert_ids(guint i, const char *want)
{
    struct answer *a = nth(i);
    assert_int_equal(a->rc, STORE_OK);
    g_ptr_array_add(a->ids, NULL);
    char *got = g_strjoinv(",", (char **)a->ids->pdata);
    g_ptr_array_remove_index(a->ids, a->ids->len - 1);
    assert_string_equal(got, want);
    g_free(got);
}

static int setup_later(void **state)
{
    setup(state);
    answers = g_ptr_array_new_with_free_func(answer_free);
    reads_sent = 0;
    store_on_read_sent(*state, on_read_sent, NULL);
    return 0;
}

static int teardown_later(void **state)
{
    teardown(state);
    g_ptr_array_free(answers, TRUE);
    return 0;
}

/* Index look-ups: exact and prefix, bounded, in the index's order, as
 * store_index_find gives them. */
static void test_index_find_later(void **state)
{
    struct store *st = *state;
    put(st, "ents", "e1", "{\"division\":\"440106\"}", 0);
    put(st, "ents", "e2", "{\"division\":\"440106\"}", 0);
    put(st, "ents", "e3", "{\"division\":\"4401\"}", 0);
    put(st, "ents", "e4", "{\"division\":\"440107\"}", 0);
    put(st, "ents", "e5", "{\"division\":\"4402\"}", 0);
    assert_int_equal(
        store_index_find_later(st, "ents", "division", "440106", false, false, 10, on_docs, NULL),
        0);
    assert_int_equal(
        store_index_find_later(st, "ents", "division", "4401", true, false, 10, on_docs, NULL), 0);
    assert_int_equal(
        store_index_find_later(st, "ents", "division", "4401", true, false, 2, on_docs, NULL), 0);
    assert_int_equal(
        store_index_find_later(st, "ents", "division", "99", true, false, 5, on_docs, NULL), 0);
    assert_int_equal(
        store_index_find_later(st, "ents", "division", "440106", false, true, 10, on_docs, NULL),
        0);
    assert_int_equal(answers->len, 0); /* never inside the call */
    wait_answers(st, 5);
    assert_ids(0, "e1,e2");
    assert_false(nth(0)->more);
    GPtrArray *sync = find(st, "ents", "division", "4401", true);
    g_ptr_array_add(sync, NULL);
    char *want = g_strjoinv(",", (char **)sync->pdata);
    assert_ids(1, want);
    g_free(want);
    g_ptr_array_free(sync, TRUE);
    assert_int_equal(nth(1)->ids->len, 4);
    assert_false(nth(1)->more);
    assert_int_equal(nth(2)->ids->len, 2);
    assert_true(nth(2)->more);
    assert_ids(3, "");
    assert_ids(4, "e1:-,e2:-"); /* ids only */
    assert_int_equal(reads_sent, redis_url ? 5 : 0);
    assert_int_equal(
        store_index_find_later(st, "ents", "division", "1", true, false, 0, on_docs, NULL),
        STORE_EINVAL);
}

/* Documents by id: those that exist, in the order asked. */
static void test_docs_get_later(void **state)
{
    struct store *st = *state;
    put(st, "users", "u1", "{\"username\":\"a\"}", 0);
    put(st, "users", "u2", "{\"username\":\"b\"}", 0);
    const char *ids[] = {"u2", "nobody", "u1"};
    assert_int_equal(store_docs_get_later(st, "users", ids, 3, on_docs, NULL), 0);
    wait_answers(st, 1);
    assert_ids(0, "u2,u1");
    assert_int_equal(store_docs_get_later(st, "users", ids, 0, on_docs, NULL), 0);
    wait_answers(st, 2);
    assert_ids(1, "");
}

/* Changes: pages of at most limit, oldest first, with the newest
 * revision read, the same as store_doc_changes. */
static void test_changes_later(void **state)
{
    struct store *st = *state;
    put(st, "users", "u1", "{\"username\":\"a\"}", 0);
    put(st, "users", "u2", "{\"username\":\"b\"}", 0);
    put(st, "users", "u3", "{\"username\":\"c\"}", 0);
    put(st, "users", "u1", "{\"username\":\"a\",\"v\":2}", 0);
    int64_t last = 0;
    GPtrArray *sync = g_ptr_array_new_with_free_func(g_free);
    assert_int_equal(store_doc_changes(st, "users", 0, &last, collect_ids, sync), 0);
    assert_int_equal(sync->len, 3);
    assert_int_equal(store_doc_changes_later(st, "users", 0, 100, on_docs, NULL), 0);
    wait_answers(st, 1);
    assert_ids(0, "u2,u3,u1");
    assert_int_equal(nth(0)->last_rev, last);
    assert_false(nth(0)->more);
    if (redis_url) { /* SQLite answers all in one (its listing has no limit) */
        assert_int_equal(store_doc_changes_later(st, "users", 0, 2, on_docs, NULL), 0);
        wait_answers(st, 2);
        assert_ids(1, "u2,u3");
        assert_true(nth(1)->more);
        assert_int_equal(store_doc_changes_later(st, "users", nth(1)->last_rev, 2, on_docs, NULL),
                         0);
        wait_answers(st, 3);
        assert_ids(2, "u1");
        assert_false(nth(2)->more);
        assert_int_equal(nth(2)->last_rev, last);
    }
    assert_int_equal(store_doc_changes_later(st, "users", last, 10, on_docs, NULL), 0);
    wait_answers(st, answers->len + 1);
    assert_ids(answers->len - 1, "");
    assert_int_equal(nth(answers->len - 1)->last_rev, last);
    g_ptr_array_free(sync, TRUE);
}

/* Values by key: a JSON string each, NULL where unset or expired. */
static void test_kv_get_later(void **state)
{
    struct store *st = *state;
    assert_int_equal(store_kv_set(st, "a", "1", 0), 0);
    assert_int_equal(store_kv_set(st, "b", "two", clock_now_ms() + 60000), 0);
    assert_int_equal(store_kv_set(st, "gone", "x", clock_now_ms() - 1), 0);
    const char *keys[] = {"b", "nope", "a", "gone"};
    assert_int_equal(store_kv_get_later(st, keys, 4, on_docs, NULL), 0);
    wait_answers(st, 1);
    assert_ids(0, "b=two,nope:-,a=1,gone:-");
    assert_int_equal(store_kv_get_later(st, keys, 0, on_docs, NULL), STORE_EINVAL);
}

/* A sequence's head read later: 0 before the first append. */
static void test_seq_last_later(void **state)
{
    struct store *st = *state;
    json_t *item = json_pack("{s:i}", "n", 1);
    assert_int_equal(store_seq_append(st, "q", item, NULL), 0);
    assert_int_equal(store_seq_append(st, "q", item, NULL), 0);
    json_decref(item);
    int64_t q[2] = {-1, -1}, none[2] = {-1, -1};
    assert_int_equal(store_seq_last_later(st, "q", on_count_told, q), 0);
    assert_int_equal(store_seq_last_later(st, "none", on_count_told, none), 0);
    assert_int_equal(q[0], -1); /* never inside the call */
    turn_until(st, none, NULL, NULL);
    assert_int_equal(q[0], STORE_OK);
    assert_int_equal(q[1], 2);
    assert_int_equal(none[0], STORE_OK);
    assert_int_equal(none[1], 0);
}

/* A sequence's items after a seq, at most limit, with its head read
 * together. */
static void test_seq_range_later(void **state)
{
    struct store *st = *state;
    for (int i = 1; i <= 4; i++) {
        json_t *item = json_pack("{s:i}", "n", i);
        assert_int_equal(store_seq_append(st, "q", item, NULL), 0);
        json_decref(item);
    }
    assert_int_equal(store_seq_range_later(st, "q", 1, 2, on_docs, NULL), 0);
    assert_int_equal(store_seq_range_later(st, "q", 4, 10, on_docs, NULL), 0);
    assert_int_equal(store_seq_range_later(st, "none", 0, 10, on_docs, NULL), 0);
    wait_answers(st, 3);
    assert_ids(0, "2,3");
    assert_int_equal(nth(0)->last_rev, 4);
    assert_ids(1, "");
    assert_int_equal(nth(1)->last_rev, 4);
    assert_ids(2, "");
    assert_int_equal(nth(2)->last_rev, 0);
}

/* Positions raised, never lowered, never past the sequence's head; with
 * batching on (as yjtd runs the store) the raise is part of the batch. */
static void test_kv_raise_later(void **state)
{
    struct store *st = *state;
    for (int i = 1; i <= 5; i++) {
        json_t *item = json_pack("{s:i}", "n", i);
        assert_int_equal(store_seq_append(st, "q", item, NULL), 0);
        json_decref(item);
    }
    store_set_batching(st, true, on_dirty, NULL);
    const char *keys[] = {"ack/dev", "ack/any"};
    int64_t a[2] = {-1, -1}, b[2] = {-1, -1}, c[2] = {-1, -1};
    assert_int_equal(store_kv_raise_later(st, "q", keys, 2, 3, on_count_told, a), 0);
    turn_until(st, a, NULL, NULL);
    assert_int_equal(a[0], STORE_OK);
    assert_int_equal(a[1], 3);
    assert_int_equal(store_kv_raise_later(st, "q", keys, 1, 2, on_count_told, b), 0);
    turn_until(st, b, NULL, NULL);
    assert_int_equal(b[0], STORE_OK);
    assert_int_equal(b[1], 3); /* not lowered */
    assert_int_equal(store_kv_raise_later(st, "q", keys + 1, 1, 6, on_count_told, c), 0);
    turn_until(st, c, NULL, NULL);
    assert_int_equal(c[0], STORE_EINVAL); /* past the head: nothing written */
    assert_int_equal(store_commit(st), 0);
    char *v = NULL;
    assert_int_equal(store_kv_get(st, "ack/any", &v), 0);
    assert_string_equal(v, "3");
    g_free(v);
    assert_int_equal(store_kv_raise_later(st, "q", keys, 0, 1, on_count_told, c), STORE_EINVAL);
}

/* Deadlines due taken in one step: only those due and of the prefix,
 * each moved to the lease, so that a second take (another process's)
 * finds none of them until the lease ends. */
static void test_deadline_take_due_later(void **state)
{
    struct store *st = *state;
    json_t *p = json_pack("{s:s}", "user", "u1");
    assert_int_equal(store_deadline_set(st, "gw/a", 100, p), 0);
    assert_int_equal(store_deadline_set(st, "gw/b", 200, p), 0);
    assert_int_equal(store_deadline_set(st, "gw/late", 5000, p), 0);
    assert_int_equal(store_deadline_set(st, "job/x", 150, p), 0);
    json_decref(p);
    store_set_batching(st, true, on_dirty, NULL);
    assert_int_equal(store_deadline_take_due_later(st, "gw/", 1000, 10, 9000, on_docs, NULL), 0);
    wait_answers(st, 1);
    assert_ids(0, "gw/a,gw/b");
    assert_int_equal(store_deadline_take_due_later(st, "gw/", 1000, 10, 9000, on_docs, NULL), 0);
    wait_answers(st, 2);
    assert_ids(1, ""); /* taken: on their lease */
    assert_int_equal(store_deadline_take_due_later(st, "gw/", 9500, 10, 20000, on_docs, NULL), 0);
    wait_answers(st, 3);
    assert_ids(2, "gw/late,gw/a,gw/b"); /* the lease ran out; by due time */
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(store_deadline_take_due_later(st, "gw/", 1000, 0, 9000, on_docs, NULL),
                     STORE_EINVAL);
}

/* A record created only if none has its id (or a unique value it
 * holds), answered later: the first create of an id wins, the second is
 * told so and changed nothing, as store_doc_put(create_only) would. */
static void test_doc_create_later(void **state)
{
    struct store *st = *state;
    assert_int_equal(store_index_define(st, "claims", "code", true), 0);
    store_set_batching(st, true, on_dirty, NULL);
    json_t *a = json_pack("{s:s, s:s}", "node", "n1", "code", "x");
    json_t *b = json_pack("{s:s, s:s}", "node", "n2", "code", "y");
    json_t *c = json_pack("{s:s, s:s}", "node", "n3", "code", "x");
    int64_t first[2] = {-1, -1}, second[2] = {-1, -1}, taken[2] = {-1, -1};
    assert_int_equal(store_doc_create_later(st, "claims", "call1", a, on_count_told, first), 0);
    assert_int_equal(store_doc_create_later(st, "claims", "call1", b, on_count_told, second), 0);
    assert_int_equal(store_doc_create_later(st, "claims", "call2", c, on_count_told, taken), 0);
    assert_int_equal(first[0], -1); /* never inside the call */
    turn_until(st, taken, NULL, NULL);
    assert_int_equal(first[0], STORE_OK);
    assert_int_equal(second[0], STORE_ECONFLICT);
    assert_int_equal(taken[0], STORE_ECONFLICT); /* "x" is call1's */
    assert_int_equal(store_commit(st), 0);
    json_t *got = NULL;
    assert_int_equal(store_doc_get(st, "claims", "call1", &got), 0);
    assert_string_equal(json_string_value(json_object_get(got, "node")), "n1");
    json_decref(got);
    assert_int_equal(store_doc_get(st, "claims", "call2", &got), STORE_ENOTFOUND);
    assert_int_equal(store_doc_create_later(st, "claims", NULL, a, on_count_told, first),
                     STORE_EINVAL);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static bool count_due(const char *id, int64_t due_ms, json_t *payload, void *ud)
{
    (void)due_ms;
    (void)payload;
    *(int *)ud += g_str_has_prefix(id, "gw/");
    return true;
}

/* Each named deadline as told: "id" taken (with its payload), "id@DUE"
 * not due, "id:-" absent. */
static void on_named(int rc, const struct store_docs *d, void *ud)
{
    (void)ud;
    struct answer *a = g_new0(struct answer, 1);
    a->rc = rc;
    a->ids = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < d->n; i++) {
        json_t *doc = d->docs[i];
        if (!doc)
            g_ptr_array_add(a->ids, g_strconcat(d->ids[i], ":-", NULL));
        else if (json_is_true(json_object_get(doc, "taken")))
            g_ptr_array_add(a->ids, g_strdup_printf("%s%s", d->ids[i],
                                                    json_object_get(doc, "payload") ? "" : "?"));
        else
            g_ptr_array_add(a->ids, g_strdup_printf("%s@%lld", d->ids[i],
                                                    (long long)jx_int(doc, "due_ms", -1)));
    }
    g_ptr_array_add(answers, a);
}

/* Named deadlines taken when due, wherever they are among the due ones:
 * behind more due deadlines than a scan of the first would read; those
 * not due told where they are, those absent told so; a second take finds
 * the first's on their lease. */
static void test_deadlines_take_later(void **state)
{
    struct store *st = *state;
    json_t *p = json_pack("{s:s}", "job", "x");
    for (int i = 0; i < 40; i++) {
        char id[16];
        g_snprintf(id, sizeof(id), "gw/%02d", i);
        assert_int_equal(store_deadline_set(st, id, 10 + i, p), 0);
    }
    assert_int_equal(store_deadline_set(st, "rem/a", 500, p), 0);
    assert_int_equal(store_deadline_set(st, "rem/b", 5000, p), 0);
    json_decref(p);
    store_set_batching(st, true, on_dirty, NULL);
    const char *ids[] = {"rem/a", "rem/b", "rem/none"};
    assert_int_equal(store_deadlines_take_later(st, ids, 3, 1000, 9000, on_named, NULL), 0);
    assert_int_equal(answers->len, 0); /* never inside the call */
    wait_answers(st, 1);
    assert_ids(0, "rem/a,rem/b@5000,rem/none:-");
    assert_int_equal(store_deadlines_take_later(st, ids, 3, 1000, 9000, on_named, NULL), 0);
    wait_answers(st, 2);
    assert_ids(1, "rem/a@9000,rem/b@5000,rem/none:-"); /* on its lease */
    assert_int_equal(store_deadlines_take_later(st, ids, 2, 9000, 20000, on_named, NULL), 0);
    wait_answers(st, 3);
    assert_ids(2, "rem/a,rem/b");
    assert_int_equal(store_commit(st), 0);
    int due = 0; /* the others were not moved */
    assert_int_equal(store_deadline_due(st, 1000, 0, count_due, &due), 0);
    assert_int_equal(due, 40);
    assert_int_equal(store_deadlines_take_later(st, ids, 0, 1000, 9000, on_named, NULL),
                     STORE_EINVAL);
}

/* With batching on (as yjtd runs the store), a read sent after a write
 * that was only sent sees it, and the answers keep their order. */
static void test_later_sees_writes(void **state)
{
    struct store *st = *state;
    store_set_batching(st, true, on_dirty, NULL);
    put(st, "ents", "e1", "{\"division\":\"440106\"}", 0);
    assert_int_equal(
        store_index_find_later(st, "ents", "division", "440106", false, false, 5, on_docs, NULL),
        0);
    put(st, "ents", "e2", "{\"division\":\"440106\"}", 0);
    const char *ids[] = {"e1", "e2"};
    assert_int_equal(store_docs_get_later(st, "ents", ids, 2, on_docs, NULL), 0);
    wait_answers(st, 2);
    assert_ids(0, "e1");
    assert_ids(1, "e1,e2");
    assert_int_equal(store_commit(st), 0);
}

/* A read not told when the store closes is told STORE_EIO as it closes:
 * the store is gone, nobody may read on from its answer. */
static void test_later_at_close(void **state)
{
    struct store *st = *state;
    put(st, "users", "u1", "{\"username\":\"a\"}", 0);
    const char *ids[] = {"u1"};
    assert_int_equal(store_docs_get_later(st, "users", ids, 1, on_docs, NULL), 0);
    store_close(st);
    *state = NULL;
    assert_int_equal(answers->len, 1);
    assert_int_equal(nth(0)->rc, STORE_EIO);
    *state = open_store();
}

static bool division_is(void *ud)
{
    struct store *st = ((void **)ud)[0];
    char *d = org_division_of(st, "corp", "e1");
    bool same = d && strcmp(d, ((void **)ud)[1]) == 0;
    g_free(d);
    return same;
}

/* The divisions kept for a shared store: past their time, served while
 * read again without waiting (on Redis), then the new one; elsewhere (and
 * for one this process changed, forgotten) read at once. */
static void test_divisions_read_again_later(void **state)
{
    struct store *st = *state;
    put(st, "enterprises", "e1", "{\"division\":\"440106\"}", 0);
    org_cache_divisions(50);
    char *d = org_division_of(st, "corp", "e1");
    assert_string_equal(d, "440106");
    g_free(d);
    put(st, "enterprises", "e1", "{\"division\":\"440113\"}", 0); /* as another node would */
    d = org_division_of(st, "corp", "e1");
    assert_string_equal(d, "440106"); /* kept */
    g_free(d);
    g_usleep(60 * 1000);
    d = org_division_of(st, "corp", "e1");
    assert_string_equal(d, redis_url ? "440106" : "440113"); /* served while read again */
    g_free(d);
    void *ud[] = {st, "440113"};
    turn_until(st, NULL, division_is, ud);
    assert_true(division_is(ud));
    put(st, "enterprises", "e1", "{\"division\":\"440305\"}", 0);
    org_division_forget("e1"); /* this process changed it */
    d = org_division_of(st, "corp", "e1");
    assert_string_equal(d, "440305");
    g_free(d);
    org_cache_divisions(0);
}

static void count_done(void *ud)
{
    (*(int64_t *)ud)++;
}

static bool told_once(void *ud)
{
    return *(int64_t *)ud > 0;
}

/* The divisions a request will need, read ahead without waiting (Redis)
 * and kept: one read per collection, done told once, every organisation
 * then known from memory; one that does not exist is kept as such (none,
 * and no read for it) until it is made. Where reads are made at once
 * nothing is sent. */
static void test_divisions_read_ahead(void **state)
{
    struct store *st = *state;
    put(st, "enterprises", "e1", "{\"division\":\"440106\"}", 0);
    put(st, "enterprises", "e2", "{\"division\":\"440113\"}", 0);
    put(st, "carriers", "c1", "{\"division\":\"440305\"}", 0);
    org_cache_divisions(60000);
    const char *roles[] = {"corp", "corp", "trs", "gov", "corp", "corp"};
    const char *orgs[] = {"e1", "e2", "c1", "4401", "e1", "nope"};
    assert_false(org_division_kept("corp", "e1"));
    assert_true(org_division_kept("gov", "4401")); /* no read needed */
    int64_t done = 0;
    bool sent = org_divisions_read_later(st, roles, orgs, 6, count_done, &done);
    assert_int_equal(sent, redis_url != NULL);
    if (sent) {
        assert_int_equal(done, 0); /* never inside the call */
        turn_until(st, NULL, told_once, &done);
        assert_int_equal(done, 1);
        assert_true(org_division_kept("corp", "e1") && org_division_kept("corp", "e2") &&
                    org_division_kept("trs", "c1"));
        assert_true(org_division_kept("corp", "nope"));
        put(st, "enterprises", "nope", "{\"division\":\"440106\"}", 0);
        assert_null(org_division_of(st, "corp", "nope")); /* known absent: not read */
        org_division_forget("nope"); /* as this node's own approval does */
        assert_false(org_division_kept("corp", "nope"));
        put(st, "enterprises", "e1", "{\"division\":\"449999\"}", 0); /* not read again */
        char *d = org_division_of(st, "corp", "e1");
        assert_string_equal(d, "440106");
        g_free(d);
        d = org_division_of(st, "trs", "c1");
        assert_string_equal(d, "440305");
        g_free(d);
        /* all kept now: nothing to read */
        const char *kept_roles[] = {"corp", "trs"};
        const char *kept_orgs[] = {"e1", "c1"};
        assert_false(org_divisions_read_later(st, kept_roles, kept_orgs, 2, count_done, &done));
    }
    org_cache_divisions(0);
}

/* A read lost with the connection (killed under it) is answered
 * STORE_EIO and fails no batch: the writes of the next commit, made on
 * a new connection, are durable. */
static void test_later_lost(void **state)
{
    struct store *st = *state;
    if (!redis_url)
        return;
    store_set_batching(st, true, on_dirty, NULL);
    const char *ids[] = {"u1"};
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_str(&c, "CLIENT");
    redis_cmd_str(&c, "PAUSE");
    redis_cmd_str(&c, "500");
    redis_admin(&c); /* so that the read is still awaited at the kill */
    assert_int_equal(store_docs_get_later(st, "users", ids, 1, on_docs, NULL), 0);
    redis_cmd_init(&c);
    redis_cmd_str(&c, "CLIENT");
    redis_cmd_str(&c, "KILL");
    redis_cmd_str(&c, "TYPE");
    redis_cmd_str(&c, "normal");
    redis_admin(&c);
    wait_answers(st, 1);
    assert_int_equal(nth(0)->rc, STORE_EIO);
    put(st, "users", "u1", "{\"username\":\"a\"}", 0);
    assert_int_equal(store_commit(st), 0);
    json_t *got = NULL;
    assert_int_equal(store_doc_get(st, "users", "u1", &got), 0);
    json_decref(got);
}

int main(void)
{
    redis_url = getenv("YJT_TEST_REDIS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index_find_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_docs_get_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_changes_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_kv_get_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_seq_last_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_seq_range_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_kv_raise_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_later_sees_writes, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_deadline_take_due_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_deadlines_take_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_doc_create_later, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_later_at_close, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_later_lost, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_divisions_read_ahead, setup_later, teardown_later),
        cmocka_unit_test_setup_teardown(test_divisions_read_again_later, setup_later,
                                        teardown_later),
    };
    return cmocka_run_group_tests_name(redis_url ? "later reads (redis)" : "later reads (sqlite)",
                                       tests, NULL, NULL);
}
