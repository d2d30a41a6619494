/* Who the commitment and confirmation reminders go to, through a business
 * day on a test clock, over a real store: reminders only to the contacts
 * of enterprises that have not filed, the deadline summary to each
 * division's duty regulators (or the nearest above), late filings counted,
 * and the monthly confirmation reminder. */
#include "common/bizdate.h"
#include "common/clock.h"
#include "records/account.h"
#include "records/commitment.h"
#include "records/commitment_due.h"
#include "records/enterprise.h"
#include "records/org.h"
#include "records/records.h"
#include "server/commitment_remind.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#define DAY "2026-12-01"

static char *dir;

/* UTC ms of HH:MM on DAY in Asia/Shanghai. */
static int64_t at(const char *date, const char *hhmm)
{
    int64_t ms = 0;
    assert_true(bizdate_at(date, bizdate_minute_parse(hhmm), &ms));
    return ms;
}

static char *add_user(struct store *st, const char *name, const char *role, const char *org,
                      const char *position, bool disabled)
{
    struct account_new req = {.username = name,
                              .password = "correct-horse-1",
                              .role = role,
                              .org = org,
                              .position = position,
                              .hash_iterations = 1000};
    char *id = NULL;
    const char *why = NULL;
    assert_int_equal(account_create(st, &req, &id, &why), 0);
    if (disabled) {
        struct account *a = NULL;
        assert_int_equal(account_get(st, id, &a), 0);
        a->disabled = true;
        assert_int_equal(account_save(st, a), 0);
        account_free(a);
    }
    return id;
}

struct world {
    struct store *st;
    char *p1, *s1, *w1, *p2, *s2, *p3, *d106, *d44, *g1;
};

static int setup(void **state)
{
    bizdate_set_zone("Asia/Shanghai");
    dir = g_dir_make_tmp("yjt-due-XXXXXX", NULL);
    char *err = NULL;
    struct world *w = g_new0(struct world, 1);
    w->st = records_open(dir, NULL, NULL, &err);
    assert_non_null(w->st);
    const char *why = NULL;
    static const char *const ents[][2] = {
        {"e1", "440106"}, {"e2", "440106"}, {"e3", "440113"}, {"f1", "440305"}};
    for (size_t i = 0; i < G_N_ELEMENTS(ents); i++)
        assert_int_equal(org_enterprise_add(w->st, ents[i][0], ents[i][0], ents[i][1], false, &why),
                         0);
    w->p1 = add_user(w->st, "p1", "corp", "e1", "principal", false);
    w->s1 = add_user(w->st, "s1", "corp", "e1", "safety_manager", false);
    w->w1 = add_user(w->st, "w1", "corp", "e1", "operator", false);
    w->p2 = add_user(w->st, "p2", "corp", "e2", "主要负责人", false);
    w->s2 = add_user(w->st, "s2", "corp", "e2", "安全管理人员", true); /* disabled */
    w->p3 = add_user(w->st, "p3", "corp", "e3", "principal", false);
    w->d106 = add_user(w->st, "d106", "gov", "440106", "duty", false);
    w->d44 = add_user(w->st, "d44", "gov", "44", "值班", false);
    w->g1 = add_user(w->st, "g1", "gov", "4401", "inspector", false);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    store_close(w->st);
    static const char *const files[] = {"yjt.db", "yjt.db-wal", "yjt.db-shm"};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        char *f = g_build_filename(dir, files[i], NULL);
        g_unlink(f);
        g_free(f);
    }
    g_rmdir(dir);
    g_free(dir);
    char **ids[] = {&w->p1, &w->s1, &w->w1, &w->p2, &w->s2, &w->p3, &w->d106, &w->d44, &w->g1};
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++)
        g_free(*ids[i]);
    g_free(w);
    clock_set_fake_ms(0);
    bizdate_shutdown();
    return 0;
}

/* Asserts that ids holds exactly the n given ids, in any order. */
static void assert_ids(GPtrArray *ids, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    if (ids->len != n)
        fail_msg("expected %zu recipients, got %u", n, ids->len);
    for (size_t i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        bool found = false;
        for (guint j = 0; j < ids->len; j++)
            found = found || strcmp(g_ptr_array_index(ids, j), want) == 0;
        if (!found)
            fail_msg("recipient %s missing", want);
    }
    va_end(ap);
}

static GPtrArray *recipients(struct store *st, const char *date)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    assert_int_equal(commitment_due_recipients(st, date, ids, NULL), 0);
    return ids;
}

static void file(struct store *st, const char *ent, const char *actor, int64_t now, int grade)
{
    json_t *in =
        json_pack("{s:{s:i, s:i, s:i}, s:[], s:{}, s:b, s:b, s:b, s:i, s:i, s:b, s:i, "
                  "s:s, s:s}",
                  "units", "total", 1, "running", 1, "stopped", 0, "hazard_sources", "special_ops",
                  "trial_production", 0, "pilot_test", 0, "startup_shutdown", 0,
                  "units_maintenance", 0, "contractors_on_site", 0, "major_hidden_danger", 0,
                  "risk_grade", grade, "committer", "Li", "statement", "ok");
    json_t *out = NULL;
    const char *why = NULL;
    enum err_code e = commitment_file(st, ent, actor, in, now, 10 * 60, &out, &why);
    if (e != ERR_NONE)
        fail_msg("filing %s: %s", ent, why);
    json_decref(out);
    json_decref(in);
}

static json_t *summary_of(json_t *summaries, const char *division)
{
    size_t i;
    json_t *s;
    json_array_foreach(summaries, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "division")), division) == 0)
            return s;
    }
    fail_msg("no summary for %s", division);
    return NULL;
}

static void test_business_day(void **state)
{
    struct world *w = *state;
    /* 08:30: nobody has filed; contacts only, never the disabled or others */
    GPtrArray *ids = recipients(w->st, DAY);
    assert_ids(ids, 4, w->p1, w->s1, w->p2, w->p3);
    g_ptr_array_unref(ids);

    /* e1 files at 09:00; at 09:30 only e2's and e3's contacts remain */
    file(w->st, "e1", w->p1, at(DAY, "09:00"), 3);
    ids = recipients(w->st, DAY);
    assert_ids(ids, 2, w->p2, w->p3);
    g_ptr_array_unref(ids);
    /* another day is another matter */
    ids = recipients(w->st, "2026-12-02");
    assert_ids(ids, 4, w->p1, w->s1, w->p2, w->p3);
    g_ptr_array_unref(ids);

    /* 10:00: one summary per division, to its duty regulators or those above */
    json_t *sum = NULL;
    assert_int_equal(commitment_due_summaries(w->st, DAY, 10 * 60, &sum), 0);
    assert_int_equal(json_array_size(sum), 3);
    json_t *s = summary_of(sum, "440106");
    assert_string_equal(json_string_value(json_array_get(json_object_get(s, "users"), 0)), w->d106);
    assert_int_equal(json_array_size(json_object_get(s, "users")), 1);
    assert_int_equal(json_integer_value(json_object_get(s, "should_file")), 2);
    assert_int_equal(json_integer_value(json_object_get(s, "filed")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(s, "missing"), 0), "enterprise")),
                        "e2");
    s = summary_of(sum, "440113");
    assert_string_equal(json_string_value(json_array_get(json_object_get(s, "users"), 0)), w->d44);
    assert_int_equal(json_array_size(json_object_get(s, "missing")), 1);
    s = summary_of(sum, "440305");
    assert_string_equal(json_string_value(json_array_get(json_object_get(s, "users"), 0)), w->d44);
    json_decref(sum);

    /* e3 files late: counted as filed and late */
    file(w->st, "e3", w->p3, at(DAY, "10:20"), 1);
    assert_int_equal(commitment_due_summaries(w->st, DAY, 10 * 60, &sum), 0);
    s = summary_of(sum, "440113");
    assert_int_equal(json_integer_value(json_object_get(s, "late")), 1);
    assert_int_equal(json_array_size(json_object_get(s, "missing")), 0);
    json_decref(sum);
    ids = recipients(w->st, DAY);
    assert_ids(ids, 1, w->p2);
    g_ptr_array_unref(ids);
}

static void test_monthly_confirmation(void **state)
{
    struct world *w = *state;
    int64_t dec3 = at("2026-12-03", "15:00");
    assert_true(due_confirm_at(dec3, 25) == at("2026-12-25", "09:00"));
    assert_true(due_confirm_at(dec3, 29) == -1);
    /* the last minutes of November in Shanghai are still November */
    assert_true(due_confirm_at(at("2026-11-30", "23:59"), 1) == at("2026-11-01", "09:00"));

    json_t *rec = json_pack(
        "{s:s, s:s, s:s, s:s, s:{s:s, s:[f,f]}, s:{s:s, s:s}, s:[{s:s, s:s}], s:s}", "name",
        "Plant", "credit_code", "91350100M000100Y43", "division", "440106", "address", "1 Road",
        "location", "type", "Point", "coordinates", 113.3, 23.1, "principal", "name", "Li", "phone",
        "13800000000", "safety_managers", "name", "Wang", "phone", "13800000001", "licence", "use");
    const char *why = NULL;
    clock_set_fake_ms(at("2026-11-20", "10:00")); /* e2 confirmed in November */
    json_object_set_new(rec, "credit_code", json_string("91110000802100433B"));
    assert_int_equal(enterprise_put_approved(w->st, "e2", rec, "t", "import", &why), ERR_NONE);
    clock_set_fake_ms(at("2026-12-02", "10:00")); /* e1 in December */
    json_object_set_new(rec, "credit_code", json_string("91350100M000100Y43"));
    assert_int_equal(enterprise_put_approved(w->st, "e1", rec, "t", "import", &why), ERR_NONE);
    json_decref(rec);

    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    json_t *ents = NULL;
    assert_int_equal(
        enterprise_unconfirmed_recipients(w->st, at("2026-12-25", "09:00"), ids, &ents), 0);
    assert_ids(ids, 2, w->p2, w->p3);
    assert_int_equal(json_array_size(ents), 3);
    assert_string_equal(json_string_value(json_array_get(ents, 0)), "e2");
    assert_string_equal(json_string_value(json_array_get(ents, 2)), "f1");
    json_decref(ents);
    g_ptr_array_unref(ids);
    /* in November, e2 was confirmed and e1 not yet */
    ids = g_ptr_array_new_with_free_func(g_free);
    assert_int_equal(enterprise_unconfirmed_recipients(w->st, at("2026-11-25", "09:00"), ids, NULL),
                     0);
    assert_ids(ids, 3, w->p1, w->s1, w->p3);
    g_ptr_array_unref(ids);
}

static json_t *pushed; /* what the recorder got */

static int record_push(const char *const *user_ids, int n, const char *kind, const char *priority,
                       int64_t ttl_s, const char *title, const char *body, json_t *payload,
                       int64_t *seqs_out)
{
    (void)seqs_out;
    json_t *users = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(users, json_string(user_ids[i]));
    json_array_append_new(pushed,
                          json_pack("{s:o, s:s, s:s, s:I, s:s, s:s, s:O}", "users", users, "kind",
                                    kind, "priority", priority, "ttl_s", (json_int_t)ttl_s, "title",
                                    title, "body", body, "payload", payload));
    return 0;
}

static void test_hook_pushes(void **state)
{
    struct world *w = *state;
    pushed = json_array();
    file(w->st, "e1", w->p1, at(DAY, "09:00"), 3);
    assert_int_equal(commitment_remind_summary(w->st, DAY, 10 * 60, record_push), 3);
    assert_int_equal(json_array_size(pushed), 3);
    json_t *p = json_array_get(pushed, 0); /* divisions in code order: 440106 first */
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "users"), 0)), w->d106);
    assert_string_equal(json_string_value(json_object_get(p, "kind")), "reminder");
    assert_non_null(strstr(json_string_value(json_object_get(p, "body")), "已报 1"));
    assert_non_null(strstr(json_string_value(json_object_get(p, "body")), "e2"));
    json_t *payload = json_object_get(p, "payload");
    assert_string_equal(json_string_value(json_object_get(payload, "type")), "commitment.summary");
    assert_string_equal(json_string_value(json_object_get(payload, "division")), "440106");
    p = json_array_get(pushed, 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "users"), 0)), w->d44);
    json_array_clear(pushed);

    assert_int_equal(commitment_remind_confirm(w->st, at("2026-12-25", "09:00"), record_push), 1);
    p = json_array_get(pushed, 0);
    assert_int_equal(json_array_size(json_object_get(p, "users")), 4);
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "payload"), "month")),
                        "2026-12");
    json_decref(pushed);
    pushed = NULL;
}

static void test_positions(void **state)
{
    (void)state;
    assert_true(due_is_contact("principal"));
    assert_true(due_is_contact("安全管理人员"));
    assert_false(due_is_contact("operator"));
    assert_false(due_is_contact(NULL));
    assert_true(due_is_duty("duty"));
    assert_false(due_is_duty("inspector"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_business_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monthly_confirmation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_pushes, setup, teardown),
        cmocka_unit_test(test_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
