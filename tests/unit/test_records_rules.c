/* The pure rules of enterprise records: the unified social credit code
 * check character (GB 32100-2015, samples in data/credit_codes.txt that
 * credit_codes.py verifies independently), plant location and boundary
 * validation, and GB 18218-2018 grading of major hazard sources. */
#include "records/credit_code.h"
#include "records/geo.h"
#include "records/hazard.h"

#include <glib.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void test_credit_code_samples(void **state)
{
    (void)state;
    gchar *text = NULL;
    assert_true(g_file_get_contents(TEST_DATA_DIR "/credit_codes.txt", &text, NULL, NULL));
    gchar **lines = g_strsplit(text, "\n", -1);
    int valid = 0, invalid = 0;
    for (gchar **l = lines; *l; l++) {
        if (!**l || **l == '#')
            continue;
        const char *sp = strchr(*l, ' ');
        assert_non_null(sp);
        bool want = strncmp(*l, "valid ", 6) == 0;
        const char *why = NULL;
        bool got = credit_code_valid(sp + 1, &why);
        if (got != want)
            fail_msg("%s: expected %s (%s)", sp + 1, want ? "valid" : "invalid", why ? why : "");
        if (!want)
            assert_non_null(why);
        want ? valid++ : invalid++;
    }
    assert_true(valid >= 8 && invalid >= 8);
    g_strfreev(lines);
    g_free(text);
}

static void test_credit_code_check_char(void **state)
{
    (void)state;
    /* published codes */
    assert_int_equal(credit_code_check_char("91350100M000100Y4"), '3');
    assert_int_equal(credit_code_check_char("91110000802100433"), 'B');
    assert_int_equal(credit_code_check_char("9135010OM000100Y4"), '\0'); /* O is not allowed */
    const char *why = NULL;
    assert_false(credit_code_valid(NULL, &why));
    assert_false(credit_code_valid("91350100M000100Y44", &why));
    assert_string_equal(why, "check character does not match (GB 32100-2015)");
}

static json_t *ring(const double (*pts)[2], size_t n)
{
    json_t *r = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(r, json_pack("[f,f]", pts[i][0], pts[i][1]));
    return json_pack("{s:s, s:[o]}", "type", "Polygon", "coordinates", r);
}

static bool poly_ok(const double (*pts)[2], size_t n, const char **why)
{
    json_t *p = ring(pts, n);
    bool ok = geo_polygon_valid(p, why);
    json_decref(p);
    return ok;
}

static void test_polygons(void **state)
{
    (void)state;
    const char *why = NULL;
    const double square[][2] = {
        {113.30, 23.10}, {113.31, 23.10}, {113.31, 23.11}, {113.30, 23.11}, {113.30, 23.10}};
    assert_true(poly_ok(square, 5, &why));
    const double concave[][2] = {{113.30, 23.10}, {113.32, 23.10}, {113.31, 23.105},
                                 {113.32, 23.11}, {113.30, 23.11}, {113.30, 23.10}};
    assert_true(poly_ok(concave, 6, &why));
    const double open[][2] = {{113.30, 23.10}, {113.31, 23.10}, {113.31, 23.11}, {113.30, 23.11}};
    assert_false(poly_ok(open, 4, &why));
    assert_string_equal(why, "boundary ring is not closed (first and last positions differ)");
    const double bowtie[][2] = {
        {113.30, 23.10}, {113.31, 23.11}, {113.31, 23.10}, {113.30, 23.11}, {113.30, 23.10}};
    assert_false(poly_ok(bowtie, 5, &why));
    assert_string_equal(why, "boundary intersects itself");
    /* a vertex touching a non-adjacent edge */
    const double touch[][2] = {{113.0, 23.0}, {113.4, 23.0}, {113.4, 23.4},
                               {113.2, 23.0}, {113.0, 23.4}, {113.0, 23.0}};
    assert_false(poly_ok(touch, 6, &why));
    assert_string_equal(why, "boundary intersects itself");
    const double spike[][2] = {
        {113.0, 23.0}, {113.4, 23.0}, {113.2, 23.0}, {113.2, 23.3}, {113.0, 23.0}};
    assert_false(poly_ok(spike, 5, &why));
    const double flat[][2] = {{113.0, 23.0}, {113.2, 23.0}, {113.4, 23.0}, {113.0, 23.0}};
    assert_false(poly_ok(flat, 4, &why));
    const double dup[][2] = {
        {113.0, 23.0}, {113.2, 23.0}, {113.2, 23.0}, {113.2, 23.2}, {113.0, 23.0}};
    assert_false(poly_ok(dup, 5, &why));
    assert_string_equal(why, "boundary has a repeated position (zero-length edge)");
    const double paris[][2] = {{2.30, 48.80}, {2.31, 48.80}, {2.31, 48.81}, {2.30, 48.80}};
    assert_false(poly_ok(paris, 4, &why));
    const double tiny[][2] = {{113.0, 23.0}, {113.1, 23.0}, {113.0, 23.0}};
    assert_false(poly_ok(tiny, 3, &why));
    assert_string_equal(why, "boundary ring must have 4 to 1000 positions");

    json_t *holes = json_pack("{s:s, s:[[[f,f],[f,f],[f,f],[f,f]],[]]}", "type", "Polygon",
                              "coordinates", 113.0, 23.0, 113.1, 23.0, 113.1, 23.1, 113.0, 23.0);
    assert_false(geo_polygon_valid(holes, &why));
    json_decref(holes);
    json_t *junk = json_pack("{s:s, s:[[[s,f]]]}", "type", "Polygon", "coordinates", "x", 1.0);
    assert_false(geo_polygon_valid(junk, &why));
    json_decref(junk);
    json_t *pt = json_pack("{s:s, s:[f,f]}", "type", "Point", "coordinates", 113.3, 23.1);
    assert_true(geo_point_valid(pt, &why));
    json_decref(pt);
    pt = json_pack("{s:s, s:[f,f]}", "type", "Point", "coordinates", 23.1, 113.3); /* swapped */
    assert_false(geo_point_valid(pt, &why));
    json_decref(pt);
    assert_true(geo_in_china(GEO_LON_MIN, GEO_LAT_MAX));
    assert_false(geo_in_china(NAN, 30));
}

static void test_alpha_beta(void **state)
{
    (void)state;
    assert_true(hazard_alpha(0) == 0.5);
    assert_true(hazard_alpha(1) == 1.0);
    assert_true(hazard_alpha(29) == 1.0);
    assert_true(hazard_alpha(30) == 1.2);
    assert_true(hazard_alpha(49) == 1.2);
    assert_true(hazard_alpha(50) == 1.5);
    assert_true(hazard_alpha(99) == 1.5);
    assert_true(hazard_alpha(100) == 2.0);
    assert_true(hazard_beta("氯", NULL) == 4);
    assert_true(hazard_beta("Chlorine", "W2") == 4); /* Table 3 first */
    assert_true(hazard_beta("光气", "J1") == 4);
    assert_true(hazard_beta("碳酰氯", NULL) == 20);
    assert_true(hazard_beta("甲醇", "W5.1") == 1.5);
    assert_true(hazard_beta("柴油", "W5") == 1);
    assert_true(hazard_beta("unknown", NULL) == 0);
    assert_true(hazard_beta("unknown", "W9") == 0);
}

static void test_levels_and_boundaries(void **state)
{
    (void)state;
    assert_int_equal(hazard_level(100), 1);
    assert_int_equal(hazard_level(99.999999), 2);
    assert_int_equal(hazard_level(50), 2);
    assert_int_equal(hazard_level(49.999999), 3);
    assert_int_equal(hazard_level(10), 3);
    assert_int_equal(hazard_level(9.999999), 4);
    assert_int_equal(hazard_level(0), 4);

    /* R = 1.0 · 1 · 10/1 = 10: the boundary of level 3 */
    struct hazard_chem ten = {10, 1, 1};
    assert_true(hazard_r(1.0, &ten, 1) == 10);
    assert_int_equal(hazard_level(hazard_r(1.0, &ten, 1)), 3);
    /* R = 1.2 · 1.5 · 250/9 = 50, which floating point computes inexactly:
     * the rounding to 6 decimals grades it level 2, not 3 */
    struct hazard_chem fifty = {250, 9, 1.5};
    assert_true(hazard_r(1.2, &fifty, 1) == 50);
    assert_int_equal(hazard_level(hazard_r(1.2, &fifty, 1)), 2);
    /* ammonia 2 · 150/10 = 30 plus chlorine 4 · 5/5 = 4, α 1.5 (50 people):
     * R = 1.5 · 34 = 51; S = 15 + 1 = 16 */
    struct hazard_chem plant[] = {{150, 10, 2}, {5, 5, 4}};
    assert_true(hazard_s(plant, 2) == 16);
    assert_true(hazard_r(1.5, plant, 2) == 51);
    /* R = 2 · (2 · 25/1) = 100: level 1 */
    struct hazard_chem hundred = {25, 1, 2};
    assert_int_equal(hazard_level(hazard_r(2.0, &hundred, 1)), 1);
    /* just under: 2 · 2 · 24.99/1 = 99.96 */
    struct hazard_chem under = {24.99, 1, 2};
    assert_int_equal(hazard_level(hazard_r(2.0, &under, 1)), 2);
}

static void test_source_eval(void **state)
{
    (void)state;
    const char *why = NULL;
    json_t *in = json_loads("{\"name\":\"液氨罐区\",\"kind\":\"tank_farm\",\"people_500m\":60,"
                            "\"declared_level\":3,\"declared_r\":51,"
                            "\"chemicals\":[{\"name\":\"氨\",\"max_qty_t\":150,"
                            "\"critical_qty_t\":10,\"beta\":1},"
                            "{\"name\":\"chlorine\",\"max_qty_t\":5,\"critical_qty_t\":5}]}",
                            0, NULL);
    json_t *out = hazard_source_eval(in, &why);
    assert_non_null(out);
    assert_true(json_real_value(json_object_get(out, "alpha")) == 1.5);
    assert_true(json_real_value(json_object_get(out, "s")) == 16);
    assert_true(json_real_value(json_object_get(out, "r")) == 51);
    assert_int_equal(json_integer_value(json_object_get(out, "level")), 2);
    assert_true(json_is_true(json_object_get(out, "major")));
    json_t *flags = json_object_get(out, "flags");
    assert_int_equal(json_array_size(flags), 2); /* β of ammonia, declared level */
    assert_string_equal(json_string_value(json_array_get(flags, 0)), "beta_differs:氨");
    assert_string_equal(json_string_value(json_array_get(flags, 1)), "declared_level_differs");
    json_decref(out);

    /* below the threshold: S = 0.5 */
    json_object_set_new(in, "chemicals",
                        json_pack("[{s:s, s:f, s:f}]", "name", "柴油", "max_qty_t", 2500.0,
                                  "critical_qty_t", 5000.0));
    json_object_del(in, "declared_level");
    json_object_del(in, "declared_r");
    out = hazard_source_eval(in, &why);
    assert_non_null(out);
    assert_true(json_is_false(json_object_get(out, "major")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "flags"), 0)),
                        "below_threshold");
    json_decref(out);

    /* bad inputs */
    json_object_set_new(in, "kind", json_string("silo"));
    assert_null(hazard_source_eval(in, &why));
    json_object_set_new(in, "kind", json_string("warehouse"));
    json_object_set_new(
        in, "chemicals",
        json_pack("[{s:s, s:f, s:f}]", "name", "x", "max_qty_t", 1.0, "critical_qty_t", 0.0));
    assert_null(hazard_source_eval(in, &why));
    assert_non_null(strstr(why, "critical_qty_t"));
    json_object_set_new(in, "chemicals", json_array());
    assert_null(hazard_source_eval(in, &why));
    json_object_set_new(in, "people_500m", json_integer(-1));
    assert_null(hazard_source_eval(in, &why));
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credit_code_samples),
        cmocka_unit_test(test_credit_code_check_char),
        cmocka_unit_test(test_polygons),
        cmocka_unit_test(test_alpha_beta),
        cmocka_unit_test(test_levels_and_boundaries),
        cmocka_unit_test(test_source_eval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
