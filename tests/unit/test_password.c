/* Password hashing: verify, reject, salts differ, malformed stored forms,
 * length policy. */
#include "records/password.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void test_verify(void **state)
{
    (void)state;
    char *h = password_hash("correct horse", 1000);
    assert_non_null(h);
    assert_true(g_str_has_prefix(h, "pbkdf2-sha256$1000$"));
    assert_true(password_verify("correct horse", h));
    assert_false(password_verify("correct hors", h));
    assert_false(password_verify("", h));
    char *h2 = password_hash("correct horse", 1000);
    assert_string_not_equal(h, h2); /* random salt */
    g_free(h);
    g_free(h2);
}

static void test_malformed_stored(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "pbkdf2-sha256",
                         "pbkdf2-sha256$x$AAAA$AAAA",
                         "pbkdf2-sha256$0$AAAA$AAAA",
                         "pbkdf2-sha256$1000$AAAA$AAAA",
                         "md5$1000$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                         "pbkdf2-sha256$99999999999$AAAA$AAAA",
                         NULL};
    for (int i = 0; bad[i]; i++)
        assert_false(password_verify("whatever1", bad[i]));
    assert_false(password_verify("whatever1", NULL));
    assert_false(password_verify(NULL, "pbkdf2-sha256$1000$AAAA$AAAA"));
}

static void test_policy(void **state)
{
    (void)state;
    assert_non_null(password_policy_error("short"));
    assert_null(password_policy_error("eight888"));
    char *long_pw = g_strnfill(257, 'x');
    assert_non_null(password_policy_error(long_pw));
    assert_false(password_verify(long_pw, "pbkdf2-sha256$1000$AAAA$AAAA"));
    g_free(long_pw);
    assert_null(password_hash("x", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_malformed_stored),
        cmocka_unit_test(test_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
