/* The store tests' fixture, shared by test_store.c and test_store_batch.c:
 * a fresh store per test, on SQLite in a temporary directory or, with
 * YJT_TEST_REDIS set, on that Redis under a key prefix of its own; and
 * the helpers both use. */
#ifndef YJT_TEST_STORE_FIXTURE_H
#define YJT_TEST_STORE_FIXTURE_H

#include "common/clock.h"
#include "records/redis_link.h"
#include "records/store.h"
#include "records/store_sqlite_vfs.h"
#include "store_loop.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <glib/gstdio.h>

static char *dir;
/* With Redis: its address, and a key prefix of the test's own. */
static const char *redis_url;
static char prefix[64];

static inline struct store *open_store(void)
{
    char *err = NULL;
    struct store *st =
        redis_url ? store_open_redis(redis_url, prefix, &err) : store_open_sqlite(dir, &err);
    if (!st)
        fail_msg("%s", err);
    assert_int_equal(store_index_define(st, "users", "username", true), 0);
    assert_int_equal(store_index_define(st, "users", "org", false), 0);
    assert_int_equal(store_index_define(st, "ents", "division", false), 0);
    assert_int_equal(store_index_define(st, "ents", "tags", false), 0);
    return st;
}

static inline int setup(void **state)
{
    static int tests_run;
    snprintf(prefix, sizeof(prefix), "t%d.%d:", (int)getpid(), ++tests_run);
    dir = g_dir_make_tmp("yjt-store-XXXXXX", NULL);
    *state = open_store();
    return 0;
}

static int dirty_calls;

static inline void on_dirty(void *ud)
{
    (void)ud;
    dirty_calls++;
}

/* The same tests with write batching on (as yjtd runs the store). */
static inline int setup_batched(void **state)
{
    setup(state);
    dirty_calls = 0;
    store_set_batching(*state, true, on_dirty, NULL);
    return 0;
}

static inline int teardown(void **state)
{
    store_close(*state);
    char *db = g_build_filename(dir, "yjt.db", NULL);
    char *wal = g_strconcat(db, "-wal", NULL), *shm = g_strconcat(db, "-shm", NULL);
    g_unlink(db);
    g_unlink(wal);
    g_unlink(shm);
    g_rmdir(dir);
    g_free(db);
    g_free(wal);
    g_free(shm);
    g_free(dir);
    return 0;
}

static inline bool collect_ids(const char *id, json_t *doc, void *ud)
{
    (void)doc;
    g_ptr_array_add(ud, g_strdup(id));
    return true;
}

static inline GPtrArray *find(struct store *st, const char *coll, const char *field, const char *v,
                              bool prefix)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    assert_int_equal(store_index_find(st, coll, field, v, prefix, collect_ids, ids), 0);
    return ids;
}

static inline void put(struct store *st, const char *coll, const char *id, const char *json,
                       int want)
{
    json_t *doc = json_loads(json, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(store_doc_put(st, coll, id, doc, false), want);
    json_decref(doc);
}

static inline unsigned found(struct store *st, const char *coll, const char *field, const char *v)
{
    GPtrArray *ids = find(st, coll, field, v, false);
    unsigned n = ids->len;
    g_ptr_array_free(ids, TRUE);
    return n;
}

/* Asserts that value v of field is held by document id alone. */
static inline void found_only(struct store *st, const char *coll, const char *field, const char *v,
                              const char *id)
{
    GPtrArray *ids = find(st, coll, field, v, false);
    assert_int_equal(ids->len, 1);
    assert_string_equal(g_ptr_array_index(ids, 0), id);
    g_ptr_array_free(ids, TRUE);
}

/* Runs c (cleared) on a connection of its own to the test's Redis, as
 * another client would. */
static inline void redis_admin(struct redis_cmd *c)
{
    struct redis_url u;
    char *err = NULL;
    assert_int_equal(redis_url_parse(redis_url, &u, &err), 0);
    struct redis_link *l = redis_link_new(&u, 2000); /* takes u's contents */
    redisReply *rep = redis_link_call(l, c);
    if (!rep)
        fail_msg("%s", redis_link_error(l));
    freeReplyObject(rep);
    redis_link_free(l);
}

#endif
