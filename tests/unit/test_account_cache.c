/* The in-memory accounts answer exactly as the store does: the same
 * accounts per org in the same order, each read up to date with writes
 * made through the cached store and through another connection (as
 * yjtctl writes while yjtd runs), moves between orgs, disabled accounts,
 * and a read made from inside a walk. */
#include "records/account.h"
#include "records/account_cache.h"
#include "records/org.h"
#include "records/records.h"
#include "records/store.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

struct world {
    char *dir;
    struct store *st;    /* the server's, cached */
    struct store *other; /* another process's */
};

static char *add_user(struct store *st, const char *name, const char *org, const char *position)
{
    struct account_new req = {.username = name,
                              .password = "correct-horse-1",
                              .role = "corp",
                              .org = org,
                              .position = position,
                              .hash_iterations = 1000};
    char *id = NULL;
    const char *why = NULL;
    assert_int_equal(account_create(st, &req, &id, &why), 0);
    return id;
}

static int setup(void **state)
{
    struct world *w = g_new0(struct world, 1);
    w->dir = g_dir_make_tmp("yjt-acache-XXXXXX", NULL);
    char *err = NULL;
    w->st = records_open(w->dir, NULL, NULL, &err);
    assert_non_null(w->st);
    const char *why = NULL;
    assert_int_equal(org_enterprise_add(w->st, "e1", "E one", "440106", false, &why), 0);
    assert_int_equal(org_enterprise_add(w->st, "e2", "E two", "440106", false, &why), 0);
    for (int i = 0; i < 50; i++) {
        char name[16];
        g_snprintf(name, sizeof(name), "u%02d", i);
        g_free(add_user(w->st, name, i % 3 ? "e1" : "e2", i % 5 ? "operator" : "principal"));
    }
    assert_int_equal(account_cache_open(w->st), 0);
    w->other = records_open(w->dir, NULL, NULL, &err);
    assert_non_null(w->other);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    account_cache_close();
    store_close(w->other);
    store_close(w->st);
    char *cmd = g_strdup_printf("rm -rf '%s'", w->dir);
    assert_int_equal(system(cmd), 0);
    g_free(cmd);
    g_free(w->dir);
    g_free(w);
    return 0;
}

static bool collect(struct account *a, void *ud)
{
    GString *s = ud;
    g_string_append_printf(s, "%s:%s:%s:%d;", a->id, a->username, a->position, a->disabled);
    return true;
}

/* The org's accounts as the cache gives them and as the store (read
 * through the other connection, which has no cache) gives them. */
static void assert_same(struct world *w, const char *org, int expect_count)
{
    GString *cached = g_string_new(""), *stored = g_string_new("");
    assert_true(account_cache_serves(w->st));
    assert_false(account_cache_serves(w->other));
    assert_int_equal(account_each_in_org(w->st, org, collect, cached), 0);
    assert_int_equal(account_each_in_org(w->other, org, collect, stored), 0);
    assert_string_equal(cached->str, stored->str);
    int n = 0;
    for (const char *p = cached->str; (p = strchr(p, ';')); p++)
        n++;
    assert_int_equal(n, expect_count);
    g_string_free(cached, TRUE);
    g_string_free(stored, TRUE);
}

/* Rewrites account id through st: moved to org, disabled or not. */
static void move(struct store *st, const char *id, const char *org, bool disabled)
{
    struct account *a = NULL;
    assert_int_equal(account_get(st, id, &a), 0);
    g_free(a->org);
    a->org = g_strdup(org);
    a->disabled = disabled;
    assert_int_equal(account_save(st, a), 0);
    account_free(a);
}

static void test_same_as_store(void **state)
{
    struct world *w = *state;
    assert_same(w, "e1", 33);
    assert_same(w, "e2", 17);
    assert_same(w, "nobody", 0);
}

static void test_sees_every_write(void **state)
{
    struct world *w = *state;
    /* Written through the cached store, inside the server's own batch. */
    char *mine = add_user(w->st, "mine", "e2", "principal");
    assert_same(w, "e2", 18);
    /* Written by another process: seen at the very next read. */
    char *theirs = add_user(w->other, "theirs", "e2", "safety_manager");
    assert_same(w, "e2", 19);
    struct account *a = NULL;
    assert_int_equal(account_get(w->st, theirs, &a), 0);
    assert_string_equal(a->username, "theirs");
    account_free(a);

    /* Disabled and moved to another org by the other process. */
    move(w->other, theirs, "e1", true);
    assert_same(w, "e2", 18);
    assert_same(w, "e1", 34);
    assert_int_equal(account_get(w->st, theirs, &a), 0);
    assert_true(a->disabled);
    assert_string_equal(a->org, "e1");
    account_free(a);

    /* The last account of an org leaves it. */
    move(w->st, mine, "e3", false);
    assert_same(w, "e3", 1);
    move(w->st, mine, "e2", false);
    assert_same(w, "e3", 0);
    assert_same(w, "e2", 18);

    assert_int_equal(account_get(w->st, "no-such-id", &a), STORE_ENOTFOUND);
    g_free(mine);
    g_free(theirs);
}

struct nested {
    struct world *w;
    int seen;
};

/* Reads an account (and so may look for changes) from inside a walk. */
static bool read_inside(struct account *a, void *ud)
{
    struct nested *n = ud;
    struct account *b = NULL;
    assert_int_equal(account_get(n->w->st, a->id, &b), 0);
    assert_string_equal(b->username, a->username);
    account_free(b);
    if (n->seen++ == 0)
        g_free(add_user(n->w->other, "during", "e1", "operator"));
    return true;
}

/* With a maximum age (a shared store), another process's write shows at
 * the next look, not at every read; this process's own writes, and reads
 * after account_cache_stale(), look at once. */
static void test_max_age(void **state)
{
    struct world *w = *state;
    account_cache_set_max_age(3600 * 1000);
    assert_same(w, "e2", 17); /* a look: the first read since open */
    char *theirs = add_user(w->other, "theirs", "e2", "safety_manager");
    struct account *a = NULL;
    assert_int_equal(account_get(w->st, theirs, &a), STORE_ENOTFOUND);
    account_cache_stale();
    assert_int_equal(account_get(w->st, theirs, &a), 0);
    account_free(a);
    move(w->other, theirs, "e1", true);
    assert_int_equal(account_get(w->st, theirs, &a), 0);
    assert_false(a->disabled); /* not looked again yet */
    account_free(a);
    char *mine = add_user(w->st, "mine", "e2", "principal");
    assert_int_equal(account_get(w->st, mine, &a), 0); /* own write: looked */
    account_free(a);
    assert_int_equal(account_get(w->st, theirs, &a), 0);
    assert_true(a->disabled);
    account_free(a);
    account_cache_set_max_age(0);
    g_free(theirs);
    g_free(mine);
}

static void on_looked(int rc, void *ud)
{
    *(int *)ud = rc == STORE_OK ? 1 : -1;
}

/* A look asked for without waiting: answered from the loop, never inside
 * the call, and then another process's write shows although the maximum
 * age has not passed. */
static void test_after_look(void **state)
{
    struct world *w = *state;
    account_cache_set_max_age(3600 * 1000);
    assert_same(w, "e2", 17);
    char *theirs = add_user(w->other, "theirs", "e2", "safety_manager");
    struct account *a = NULL;
    assert_int_equal(account_get(w->st, theirs, &a), STORE_ENOTFOUND);
    int looked = 0, again = 0;
    account_cache_after_look(on_looked, &looked);
    account_cache_after_look(on_looked, &again);
    assert_int_equal(looked, 0);
    for (int i = 0; i < 100 && (!looked || !again); i++)
        g_main_context_iteration(NULL, looked == 0);
    assert_int_equal(looked, 1);
    assert_int_equal(again, 1);
    assert_int_equal(account_get(w->st, theirs, &a), 0);
    account_free(a);
    /* a waiter not answered when the cache closes hears STORE_EIO */
    looked = 0;
    account_cache_after_look(on_looked, &looked);
    account_cache_close();
    assert_int_equal(looked, -1);
    assert_int_equal(account_cache_open(w->st), 0);
    account_cache_set_max_age(0);
    while (g_main_context_iteration(NULL, FALSE))
        ; /* the closed cache's answer, dropped */
    g_free(theirs);
}

static void test_read_inside_walk(void **state)
{
    struct world *w = *state;
    struct nested n = {w, 0};
    assert_int_equal(account_each_in_org(w->st, "e1", read_inside, &n), 0);
    assert_int_equal(n.seen, 33); /* the walk saw the org as it began */
    assert_same(w, "e1", 34);     /* and the next read the new account */
}

static bool take_three(struct account *a, void *ud)
{
    (void)a;
    return ++*(int *)ud < 3;
}

static void test_stop_early(void **state)
{
    struct world *w = *state;
    int calls = 0;
    assert_int_equal(account_each_in_org(w->st, "e2", take_three, &calls), 0);
    assert_int_equal(calls, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_as_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sees_every_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_inside_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_look, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_early, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
