/* Configuration precedence (defaults < file < command line) and bounds. */
#include "server/config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static int load(struct config *c, int argc, char **argv)
{
    char *err = NULL;
    int rc = config_load(c, argc, argv, &err);
    g_free(err);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    char *argv[] = {"yjtd"};
    assert_int_equal(load(&c, 1, argv), 0);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    assert_string_equal(c.data_dir, "./data");
    assert_int_equal(c.token_ttl_s, 43200);
    assert_int_equal(c.lockout_after, 5);
    assert_int_equal(c.max_frame, 65536);
    assert_int_equal(c.rate_per_s, 50);
    assert_int_equal(c.rate_burst, 100);
    assert_int_equal(c.auth_timeout_s, 10);
    assert_true(c.media_ice_tcp);
    config_free(&c);
}

static void test_file_then_argv(void **state)
{
    (void)state;
    char *path = NULL;
    int fd = g_file_open_tmp("yjtd-XXXXXX.ini", &path, NULL);
    close(fd);
    g_file_set_contents(path, "[yjtd]\nlisten = 0.0.0.0:9000\nrate_per_s = 7\nlockout_s = 60\n", -1,
                        NULL);
    struct config c;
    char *argv[] = {"yjtd",  "--config",    path,    "--listen",           "[::1]:9001",
                    "--set", "lockout_s=5", "--set", "media_ice_tcp=false"};
    assert_int_equal(load(&c, 9, argv), 0);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 9001);
    assert_int_equal(c.rate_per_s, 7);
    assert_int_equal(c.lockout_s, 5);
    assert_false(c.media_ice_tcp);
    config_free(&c);
    g_unlink(path);
    g_free(path);
}

static void test_rejects(void **state)
{
    (void)state;
    struct config c;
    char *bad1[] = {"yjtd", "--listen", "nohost"};
    assert_int_equal(load(&c, 3, bad1), -1);
    config_free(&c);
    char *bad2[] = {"yjtd", "--set", "rate_per_s=0"};
    assert_int_equal(load(&c, 3, bad2), -1);
    config_free(&c);
    char *bad3[] = {"yjtd", "--set", "no_such_key=1"};
    assert_int_equal(load(&c, 3, bad3), -1);
    config_free(&c);
    char *bad4[] = {"yjtd", "--tls-cert", "a.pem"};
    assert_int_equal(load(&c, 3, bad4), -1);
    config_free(&c);
    char *bad5[] = {"yjtd", "--listen", "127.0.0.1:70000"};
    assert_int_equal(load(&c, 3, bad5), -1);
    config_free(&c);
    char *bad6[] = {"yjtd", "--bogus"};
    assert_int_equal(load(&c, 2, bad6), -1);
    config_free(&c);
    char *bad7[] = {"yjtd", "--config", "/nonexistent/yjtd.ini"};
    assert_int_equal(load(&c, 3, bad7), -1);
    config_free(&c);
    char *bad8[] = {"yjtd", "--set", "media_ice_tcp=maybe"};
    assert_int_equal(load(&c, 3, bad8), -1);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_then_argv),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
