/* Jurisdiction on its edges: division code forms, prefix boundaries, each
 * role against each kind of target. */
#include "records/jurisdiction.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void test_division_codes(void **state)
{
    (void)state;
    char out[8];
    assert_true(division_valid("44"));
    assert_true(division_valid("4401"));
    assert_true(division_valid("440106"));
    assert_true(division_valid("440000"));
    assert_false(division_valid(""));
    assert_false(division_valid(NULL));
    assert_false(division_valid("4"));
    assert_false(division_valid("440"));
    assert_false(division_valid("44010"));
    assert_false(division_valid("4401066"));
    assert_false(division_valid("44a1"));
    assert_false(division_valid("00"));
    assert_false(division_valid("000000"));
    assert_true(division_normalize("440000", out, sizeof(out)));
    assert_string_equal(out, "44");
    assert_true(division_normalize("440100", out, sizeof(out)));
    assert_string_equal(out, "4401");
    assert_true(division_normalize("440106", out, sizeof(out)));
    assert_string_equal(out, "440106");
    assert_false(division_normalize("4401", out, 4)); /* buffer too small */
}

static void test_division_covers(void **state)
{
    (void)state;
    assert_true(division_covers("44", "440106"));
    assert_true(division_covers("4401", "440106"));
    assert_true(division_covers("4401", "4401"));
    assert_true(division_covers("440000", "440106"));
    assert_true(division_covers("440100", "4401"));
    assert_false(division_covers("4401", "4403"));
    assert_false(division_covers("4401", "440306"));
    assert_false(division_covers("440106", "4401")); /* a district does not cover its city */
    assert_false(division_covers("4401", "44"));
    assert_false(division_covers("45", "440106"));
    assert_false(division_covers("4", "440106")); /* invalid outer */
    assert_false(division_covers("44", "44010")); /* invalid inner */
}

static void test_gov_reach(void **state)
{
    (void)state;
    struct principal city = {"gov", "4401"};
    assert_true(juris_reaches(&city, ORG_ENTERPRISE, "E1", "440106"));
    assert_true(juris_reaches(&city, ORG_CARRIER, "C1", "4401"));
    assert_true(juris_reaches(&city, ORG_DIVISION, "440113", "440113"));
    assert_false(juris_reaches(&city, ORG_ENTERPRISE, "E2", "440305"));
    assert_false(juris_reaches(&city, ORG_DIVISION, "44", "44")); /* not the province above */
    assert_false(juris_reaches(&city, ORG_ENTERPRISE, "E1", NULL));
    assert_false(juris_reaches(&city, ORG_ENTERPRISE, "", "440106"));
    struct principal province = {"gov", "44"};
    assert_true(juris_reaches(&province, ORG_ENTERPRISE, "E2", "440305"));
    struct principal empty = {"gov", ""};
    assert_false(juris_reaches(&empty, ORG_ENTERPRISE, "E1", "440106"));
    struct principal bogus = {"gov", "4"};
    assert_false(juris_reaches(&bogus, ORG_ENTERPRISE, "E1", "440106"));
}

static void test_corp_trs_admin_reach(void **state)
{
    (void)state;
    struct principal corp = {"corp", "E1"};
    assert_true(juris_reaches(&corp, ORG_ENTERPRISE, "E1", "440106"));
    assert_false(juris_reaches(&corp, ORG_ENTERPRISE, "E10", "440106"));
    assert_false(juris_reaches(&corp, ORG_CARRIER, "E1", "440106")); /* same id, other kind */
    assert_false(juris_reaches(&corp, ORG_DIVISION, "440106", "440106"));
    struct principal trs = {"trs", "C1"};
    assert_true(juris_reaches(&trs, ORG_CARRIER, "C1", "4401"));
    assert_false(juris_reaches(&trs, ORG_ENTERPRISE, "C1", "4401"));
    assert_false(juris_reaches(&trs, ORG_CARRIER, "C2", "4401"));
    struct principal admin = {"admin", "-"};
    assert_true(juris_reaches(&admin, ORG_ENTERPRISE, "E9", "450101"));
    struct principal stranger = {"visitor", "E1"};
    assert_false(juris_reaches(&stranger, ORG_ENTERPRISE, "E1", "440106"));
    assert_false(juris_reaches(NULL, ORG_ENTERPRISE, "E1", "440106"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_division_codes),
        cmocka_unit_test(test_division_covers),
        cmocka_unit_test(test_gov_reach),
        cmocka_unit_test(test_corp_trs_admin_reach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
