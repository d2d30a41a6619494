/* Pure pieces of signaling: TURN REST credentials (the scheme coturn
 * checks) and business dates in the business time zone. */
#include "common/bizdate.h"
#include "signaling/ice.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void test_turn_password(void **state)
{
    (void)state;
    /* base64(HMAC-SHA1("secret", "1700000000:u1")), computed independently */
    char *pw = ice_turn_password("secret", "1700000000:u1");
    assert_string_equal(pw, "nHzZnCmm4aatc14e91U9AY8VNQM=");
    g_free(pw);
}

static void test_ice_servers(void **state)
{
    (void)state;
    struct ice_config cfg = {" stun:a:3478 ,, stun:b:3478", "turn:t:3478?transport=udp", "secret",
                             600};
    json_t *list = ice_servers_json(&cfg, "u1", 1700000000000 - 600000);
    assert_int_equal(json_array_size(list), 2);
    json_t *stun = json_object_get(json_array_get(list, 0), "urls");
    assert_int_equal(json_array_size(stun), 2);
    assert_string_equal(json_string_value(json_array_get(stun, 0)), "stun:a:3478");
    json_t *turn = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(turn, "username")), "1700000000:u1");
    assert_string_equal(json_string_value(json_object_get(turn, "credential")),
                        "nHzZnCmm4aatc14e91U9AY8VNQM=");
    assert_int_equal(json_integer_value(json_object_get(turn, "expires_at")), 1700000000000);
    json_decref(list);
    /* no secret, no TURN entry; nothing configured, an empty list */
    struct ice_config none = {"", "turn:t:3478", "", 600};
    list = ice_servers_json(&none, "u1", 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void test_bizdate(void **state)
{
    (void)state;
    char d[BIZDATE_LEN];
    assert_true(bizdate_set_zone("Asia/Shanghai"));
    bizdate_of(1795968000000 - 1, d); /* 2026-11-29T15:59:59.999Z */
    assert_string_equal(d, "2026-11-29");
    bizdate_of(1795968000000, d); /* 16:00Z is midnight in Shanghai */
    assert_string_equal(d, "2026-11-30");
    int64_t a, b;
    assert_true(bizdate_span("2026-11-30", &a, &b));
    assert_int_equal(a, 1795968000000);
    assert_int_equal(b - a, 86400000);
    assert_false(bizdate_span("2026-02-30", &a, &b));
    assert_false(bizdate_span("2026-1-30", &a, &b));
    assert_false(bizdate_span("20261130xx", &a, &b));
    assert_false(bizdate_span(NULL, &a, &b));
    assert_true(bizdate_set_zone("UTC"));
    bizdate_of(1795968000000 - 1, d);
    assert_string_equal(d, "2026-11-29");
    assert_false(bizdate_set_zone("Nowhere/Atlantis"));
    bizdate_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turn_password),
        cmocka_unit_test(test_ice_servers),
        cmocka_unit_test(test_bizdate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
