/* Tokens: round trip, expiry, tampering with payload or mac, wrong key,
 * malformed input. */
#include "server/token.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static const unsigned char key[TOKEN_KEY_LEN] = "0123456789abcdef0123456789abcde";

static char *make(int64_t exp)
{
    struct token_claims c = {
        .user_id = "u1", .jti = "t1", .device_id = "dev", .ver = 3, .iat = 1000, .exp = exp};
    return token_issue(key, &c);
}

static void test_round_trip(void **state)
{
    (void)state;
    char *t = make(5000);
    struct token_claims c;
    assert_int_equal(token_verify(key, t, 4999, &c), 0);
    assert_string_equal(c.user_id, "u1");
    assert_string_equal(c.jti, "t1");
    assert_string_equal(c.device_id, "dev");
    assert_int_equal(c.ver, 3);
    assert_int_equal(c.exp, 5000);
    token_claims_clear(&c);
    assert_int_equal(token_verify(key, t, 5000, &c), -2); /* expired at exp */
    g_free(t);
}

static void test_tampering(void **state)
{
    (void)state;
    char *t = make(5000);
    struct token_claims c;
    /* Flip one character in the payload, then in the mac. */
    char *dot1 = strchr(t, '.') + 1;
    char *bad = g_strdup(t);
    bad[dot1 - t + 2] = bad[dot1 - t + 2] == 'A' ? 'B' : 'A';
    assert_int_equal(token_verify(key, bad, 1, &c), -1);
    g_free(bad);
    bad = g_strdup(t);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(token_verify(key, bad, 1, &c), -1);
    g_free(bad);
    unsigned char other[TOKEN_KEY_LEN] = {1};
    assert_int_equal(token_verify(other, t, 1, &c), -1);
    g_free(t);
}

static void test_malformed(void **state)
{
    (void)state;
    struct token_claims c;
    const char *bad[] = {"", "v1.", "v1..", "v2.abc.def", "garbage", "v1.!!!.###", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(token_verify(key, bad[i], 1, &c), -1);
    assert_int_equal(token_verify(key, NULL, 1, &c), -1);
    char *huge = g_strnfill(TOKEN_MAX_LEN + 1, 'a');
    memcpy(huge, "v1.", 3);
    assert_int_equal(token_verify(key, huge, 1, &c), -1);
    g_free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
