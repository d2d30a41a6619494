/* The WebSocket envelope: valid requests, and each way a message can be
 * malformed, with the id kept for the reply whenever it was readable. */
#include "server/envelope.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static enum err_code parse(const char *text, struct envelope *env)
{
    return envelope_parse(text, strlen(text), env);
}

static void test_valid(void **state)
{
    (void)state;
    struct envelope env;
    assert_int_equal(parse("{\"id\":7,\"type\":\"ping\"}", &env), ERR_NONE);
    assert_int_equal(json_integer_value(env.id), 7);
    assert_string_equal(env.type, "ping");
    json_decref(env.msg);
    assert_int_equal(parse("{\"id\":\"a-1\",\"type\":\"auth.login\",\"x\":[1]}", &env), ERR_NONE);
    assert_string_equal(json_string_value(env.id), "a-1");
    json_decref(env.msg);
}

static void test_invalid(void **state)
{
    (void)state;
    struct envelope env;
    const char *no_id[] = {"",
                           "nope",
                           "[1,2]",
                           "42",
                           "\"s\"",
                           "null",
                           "{\"type\":\"ping\"}",
                           "{\"id\":null,\"type\":\"ping\"}",
                           "{\"id\":1.5,\"type\":\"ping\"}",
                           "{\"id\":{},\"type\":\"ping\"}",
                           "{\"id\":[1],\"type\":\"ping\"}",
                           "{\"id\":true,\"type\":\"ping\"}",
                           "{\"id\":1,\"id\":2,\"type\":\"ping\"}", /* duplicate keys */
                           "{\"id\":1,\"type\":\"ping\"",
                           NULL};
    for (int i = 0; no_id[i]; i++) {
        assert_int_equal(parse(no_id[i], &env), ERR_BAD_REQUEST);
        assert_null(env.id);
        assert_non_null(env.why);
        json_decref(env.msg);
    }
    const char *with_id[] = {"{\"id\":3}", "{\"id\":3,\"type\":5}", "{\"id\":3,\"type\":\"\"}",
                             "{\"id\":3,\"type\":[\"ping\"]}", NULL};
    for (int i = 0; with_id[i]; i++) {
        assert_int_equal(parse(with_id[i], &env), ERR_BAD_REQUEST);
        assert_int_equal(json_integer_value(env.id), 3);
        json_decref(env.msg);
    }
}

static void test_bounds(void **state)
{
    (void)state;
    struct envelope env;
    char *long_id = g_strnfill(ENVELOPE_ID_MAX + 1, 'x');
    char *msg = g_strdup_printf("{\"id\":\"%s\",\"type\":\"ping\"}", long_id);
    assert_int_equal(parse(msg, &env), ERR_BAD_REQUEST);
    assert_null(env.id);
    json_decref(env.msg);
    g_free(msg);
    long_id[ENVELOPE_ID_MAX] = '\0';
    msg = g_strdup_printf("{\"id\":\"%s\",\"type\":\"ping\"}", long_id);
    assert_int_equal(parse(msg, &env), ERR_NONE);
    json_decref(env.msg);
    g_free(msg);
    g_free(long_id);
    char *long_type = g_strnfill(ENVELOPE_TYPE_MAX + 1, 't');
    msg = g_strdup_printf("{\"id\":1,\"type\":\"%s\"}", long_type);
    assert_int_equal(parse(msg, &env), ERR_BAD_REQUEST);
    json_decref(env.msg);
    g_free(msg);
    g_free(long_type);
    /* A NUL inside the text ends nothing: the length is what counts. */
    const char nul[] = "{\"id\":1,\"type\":\"ping\"}\0garbage";
    assert_int_equal(envelope_parse(nul, sizeof(nul) - 1, &env), ERR_BAD_REQUEST);
    json_decref(env.msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
