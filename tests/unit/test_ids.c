/* Ids and base64url: uniqueness, alphabet, round trips, bad input. */
#include "common/ids.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void test_ids(void **state)
{
    (void)state;
    char *a = id_new("u"), *b = id_new("u");
    assert_int_equal(strlen(a), 21);
    assert_true(a[0] == 'u');
    assert_string_not_equal(a, b);
    g_free(a);
    g_free(b);
}

/* Sorted ids: same shape as random ones, strictly rising even when many
 * are made within one millisecond, and led by the current time. */
static void test_sorted_ids(void **state)
{
    (void)state;
    char *prev = id_new_sorted("c");
    assert_int_equal(strlen(prev), 21);
    assert_int_equal(strspn(prev + 1, "0123456789abcdef"), 20);
    char head[13];
    memcpy(head, prev + 1, 12);
    head[12] = 0;
    gint64 now = g_get_real_time() / 1000;
    gint64 t = g_ascii_strtoll(head, NULL, 16);
    assert_true(t <= now && t > now - 5000);
    for (int i = 0; i < 10000; i++) {
        char *next = id_new_sorted("c");
        assert_int_equal(strlen(next), 21);
        assert_true(strcmp(prev, next) < 0);
        g_free(prev);
        prev = next;
    }
    g_free(prev);
}

static void test_b64url(void **state)
{
    (void)state;
    for (size_t n = 0; n < 40; n++) {
        unsigned char raw[40];
        for (size_t i = 0; i < n; i++)
            raw[i] = (unsigned char)(i * 37 + 251);
        char *enc = b64url_encode(raw, n);
        assert_null(strpbrk(enc, "+/="));
        size_t len = 0;
        unsigned char *dec = b64url_decode(enc, &len);
        assert_int_equal(len, n);
        assert_memory_equal(dec, raw, n);
        g_free(enc);
        g_free(dec);
    }
    size_t len;
    assert_null(b64url_decode("ab$c", &len));
    assert_null(b64url_decode("a b", &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_sorted_ids),
        cmocka_unit_test(test_b64url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
