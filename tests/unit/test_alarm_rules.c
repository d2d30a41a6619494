/* The pure alarm rules: level table, thresholds with deadband, decisions
 * for a flapping value, escalation times. */
#include "records/alarm_rules.h"
#include "records/downtime.h"
#include "records/records.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static struct sensor tank(void)
{
    struct sensor s;
    memset(&s, 0, sizeof(s));
    s.threshold[SENSOR_LOW_LOW] = 10;
    s.threshold[SENSOR_LOW] = 20;
    s.threshold[SENSOR_HIGH] = 80;
    s.threshold[SENSOR_HIGH_HIGH] = 90;
    s.threshold_set = 0xf;
    s.deadband = 2;
    return s;
}

static void test_default_levels(void **state)
{
    (void)state;
    struct alarm_level_table t;
    char *err = NULL;
    assert_int_equal(alarm_levels_parse("", &t, &err), 0);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_HIGH_HIGH, 1), ALARM_RED);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_HIGH_HIGH, 2), ALARM_RED);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_HIGH_HIGH, 3), ALARM_ORANGE);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_HIGH_HIGH, 0), ALARM_ORANGE);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_LOW_LOW, 1), ALARM_ORANGE);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_HIGH, 1), ALARM_YELLOW);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_LOW, 4), ALARM_YELLOW);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_INTERRUPTED, 1), ALARM_BLUE);
}

static void test_custom_levels(void **state)
{
    (void)state;
    struct alarm_level_table t;
    char *err = NULL;
    assert_int_equal(alarm_levels_parse("low_low@1=red, interrupted@12=orange", &t, &err), 0);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_LOW_LOW, 1), ALARM_RED);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_LOW_LOW, 2), ALARM_ORANGE); /* default */
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_INTERRUPTED, 2), ALARM_ORANGE);
    assert_int_equal(alarm_level_of(&t, ALARM_GRADE_INTERRUPTED, 3), ALARM_BLUE);
    static const char *const bad[] = {"high=pink", "hot=red", "high@9=red",
                                      "high@=red", "high",    "high=red=blue"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        err = NULL;
        assert_int_equal(alarm_levels_parse(bad[i], &t, &err), -1);
        assert_non_null(err);
        g_free(err);
    }
}

static void test_thresholds_and_deadband(void **state)
{
    (void)state;
    struct sensor s = tank();
    struct alarm_reading r;
    alarm_reading_check(&s, ALARM_COND_HIGH, 80, &r);
    assert_true(r.applies);
    assert_false(r.outside); /* at the threshold is not past it */
    alarm_reading_check(&s, ALARM_COND_HIGH, 80.5, &r);
    assert_true(r.outside);
    assert_int_equal(r.grade, ALARM_GRADE_HIGH);
    assert_true(r.threshold == 80);
    alarm_reading_check(&s, ALARM_COND_HIGH, 95, &r);
    assert_int_equal(r.grade, ALARM_GRADE_HIGH_HIGH);
    alarm_reading_check(&s, ALARM_COND_HIGH, 79, &r);
    assert_false(r.outside);
    assert_false(r.cleared); /* inside the deadband */
    alarm_reading_check(&s, ALARM_COND_HIGH, 78, &r);
    assert_true(r.cleared);
    alarm_reading_check(&s, ALARM_COND_LOW, 5, &r);
    assert_int_equal(r.grade, ALARM_GRADE_LOW_LOW);
    alarm_reading_check(&s, ALARM_COND_LOW, 21, &r);
    assert_false(r.cleared);
    alarm_reading_check(&s, ALARM_COND_LOW, 22, &r);
    assert_true(r.cleared);
    s.threshold_set = 1u << SENSOR_HIGH_HIGH; /* only high-high: it also clears */
    alarm_reading_check(&s, ALARM_COND_LOW, 0, &r);
    assert_false(r.applies);
    alarm_reading_check(&s, ALARM_COND_HIGH, 89, &r);
    assert_false(r.outside);
    assert_false(r.cleared);
    alarm_reading_check(&s, ALARM_COND_HIGH, 88, &r);
    assert_true(r.cleared);
}

/* A value flapping around the high threshold raises once, clears once
 * (only past the deadband), comes back active, and upgrades once. */
static void test_flapping(void **state)
{
    (void)state;
    struct sensor s = tank();
    static const double values[] = {70, 81, 79, 81, 79.5, 77, 81, 91, 85, 95, 60};
    static const enum alarm_action want[] = {ALARM_ACT_NONE,   ALARM_ACT_RAISE,   ALARM_ACT_NONE,
                                             ALARM_ACT_NONE,   ALARM_ACT_NONE,    ALARM_ACT_CLEAR,
                                             ALARM_ACT_ACTIVE, ALARM_ACT_UPGRADE, ALARM_ACT_NONE,
                                             ALARM_ACT_NONE,   ALARM_ACT_CLEAR};
    bool open = false, cleared = false;
    enum alarm_grade grade = ALARM_GRADE_HIGH;
    int raised = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(values); i++) {
        struct alarm_reading r;
        alarm_reading_check(&s, ALARM_COND_HIGH, values[i], &r);
        enum alarm_action a = alarm_decide(&r, open, grade, cleared);
        assert_int_equal(a, want[i]);
        switch (a) {
        case ALARM_ACT_RAISE:
            raised++;
            open = true;
            grade = r.grade;
            cleared = false;
            break;
        case ALARM_ACT_UPGRADE:
            grade = r.grade;
            cleared = false;
            break;
        case ALARM_ACT_CLEAR:
            cleared = true;
            break;
        case ALARM_ACT_ACTIVE:
            cleared = false;
            break;
        default:
            break;
        }
    }
    assert_int_equal(raised, 1);
    assert_int_equal(grade, ALARM_GRADE_HIGH_HIGH);
    /* once closed, a new crossing raises a new alarm */
    struct alarm_reading r;
    alarm_reading_check(&s, ALARM_COND_HIGH, 81, &r);
    assert_int_equal(alarm_decide(&r, false, grade, false), ALARM_ACT_RAISE);
}

static void test_escalation(void **state)
{
    (void)state;
    struct alarm_escalation e;
    char *err = NULL;
    for (int l = 0; l < ALARM_LEVELS; l++)
        assert_int_equal(alarm_escalation_parse(&e, l, "5,30,60", &err), 0);
    int step = 0;
    int64_t t0 = 1000000;
    assert_true(alarm_escalation_next(&e, ALARM_RED, ALARM_RAISED, 0, t0, &step) == t0 + 300000);
    assert_int_equal(step, 1);
    assert_true(alarm_escalation_next(&e, ALARM_RED, ALARM_RAISED, 1, t0, &step) == t0 + 1800000);
    assert_int_equal(step, 2);
    /* acknowledged in time: straight to the city at T2 */
    assert_true(alarm_escalation_next(&e, ALARM_RED, ALARM_ACKNOWLEDGED, 0, t0, &step) ==
                t0 + 1800000);
    assert_int_equal(step, 2);
    assert_true(alarm_escalation_next(&e, ALARM_RED, ALARM_ACKNOWLEDGED, 2, t0, &step) ==
                t0 + 3600000);
    assert_int_equal(step, 3);
    assert_true(alarm_escalation_next(&e, ALARM_RED, ALARM_ACKNOWLEDGED, 3, t0, &step) == 0);
    assert_true(alarm_escalation_next(&e, ALARM_RED, ALARM_HANDLED, 0, t0, &step) == 0);
    static const char *const bad[] = {"5,30", "30,5,60", "0,1,2", "a,b,c", "5,30,60,90", ""};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        err = NULL;
        assert_int_equal(alarm_escalation_parse(&e, ALARM_RED, bad[i], &err), -1);
        g_free(err);
    }
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < ALARM_GRADES; i++)
        assert_int_equal(alarm_grade_parse(alarm_grade_name(i)), i);
    for (int i = 0; i < ALARM_STATES; i++)
        assert_int_equal(alarm_state_parse(alarm_state_name(i)), i);
    assert_int_equal(alarm_level_parse("purple"), -1);
    assert_int_equal(alarm_condition_of_grade(ALARM_GRADE_LOW_LOW), ALARM_COND_LOW);
}

/* Planned downtime against a real store: the window covers the listed
 * sensors only, an overrun names the declaration, ending it early stops
 * both. */
static void test_downtime(void **state)
{
    (void)state;
    char *dir = g_dir_make_tmp("yjt-downtime-XXXXXX", NULL);
    char *err = NULL;
    struct store *st = records_open(dir, NULL, NULL, &err);
    assert_non_null(st);
    int64_t t0 = 1764550800000; /* 2026-12-01 09:00 +08:00 */
    assert_int_equal(downtime_init(st, t0), 0);
    json_t *sensors = json_pack("[s]", "lt2"), *out = NULL;
    const char *why = NULL;
    assert_int_equal(
        downtime_declare("e1", "440106", sensors, "", t0, t0 + 1000, "u", t0, &out, &why),
        ERR_BAD_REQUEST);
    assert_int_equal(
        downtime_declare("e1", "440106", sensors, "x", t0, t0 - 1, "u", t0, &out, &why),
        ERR_BAD_REQUEST);
    assert_int_equal(downtime_declare("e1", "440106", sensors, "DCS", t0 + 60000, t0 + 3600000, "u",
                                      t0, &out, &why),
                     ERR_NONE);
    char *id = g_strdup(json_string_value(json_object_get(out, "id")));
    json_decref(out);
    assert_null(downtime_covering("e1", "lt2", t0)); /* before from */
    assert_string_equal(downtime_covering("e1", "lt2", t0 + 60000), id);
    assert_null(downtime_covering("e1", "lt1", t0 + 60000));   /* not listed */
    assert_null(downtime_covering("e2", "lt2", t0 + 60000));   /* other plant */
    assert_null(downtime_covering("e1", "lt2", t0 + 3600000)); /* restore time */
    assert_null(downtime_overrun("e1", "lt2", t0, t0 + 3599999));
    assert_string_equal(downtime_overrun("e1", "lt2", t0, t0 + 3600000), id);
    assert_null(downtime_overrun("e1", "lt2", t0 + 3600000, t0 + 3700000)); /* reported since */
    /* all sensors, ended early */
    assert_int_equal(
        downtime_declare("e1", "440106", NULL, "gateway", t0, t0 + 7200000, "u", t0, &out, &why),
        ERR_NONE);
    char *all = g_strdup(json_string_value(json_object_get(out, "id")));
    json_decref(out);
    assert_string_equal(downtime_covering("e1", "lt9", t0 + 1), all);
    assert_int_equal(downtime_end(all, "u", t0 + 2, &out, &why), ERR_NONE);
    json_decref(out);
    assert_null(downtime_covering("e1", "lt9", t0 + 3));
    assert_null(downtime_overrun("e1", "lt9", t0, t0 + 7200000));
    assert_int_equal(downtime_end(all, "u", t0 + 4, &out, &why), ERR_CONFLICT);
    /* reloaded from the store */
    downtime_shutdown();
    assert_int_equal(downtime_init(st, t0), 0);
    assert_string_equal(downtime_covering("e1", "lt2", t0 + 60000), id);
    assert_null(downtime_covering("e1", "lt9", t0 + 3));
    downtime_shutdown();
    json_decref(sensors);
    g_free(id);
    g_free(all);
    store_close(st);
    static const char *const files[] = {"yjt.db", "yjt.db-wal", "yjt.db-shm"};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        char *f = g_build_filename(dir, files[i], NULL);
        g_unlink(f);
        g_free(f);
    }
    g_rmdir(dir);
    g_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_levels),
        cmocka_unit_test(test_custom_levels),
        cmocka_unit_test(test_thresholds_and_deadband),
        cmocka_unit_test(test_flapping),
        cmocka_unit_test(test_escalation),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_downtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
