/* The Redis addresses yjtd accepts (records/redis_link.h), and those it
 * refuses with a reason. */
#include "records/redis_link.h"
#include "records/redis_tls.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static struct redis_url parse_ok(const char *text)
{
    struct redis_url u;
    char *err = NULL;
    if (redis_url_parse(text, &u, &err) != 0)
        fail_msg("%s: %s", text, err);
    return u;
}

static void refused(const char *text)
{
    struct redis_url u;
    char *err = NULL;
    if (redis_url_parse(text, &u, &err) == 0)
        fail_msg("%s was accepted", text);
    assert_non_null(err);
    g_free(err);
}

static void test_plain(void **state)
{
    (void)state;
    struct redis_url u = parse_ok("redis://127.0.0.1:6380/2");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_null(u.password);
    redis_url_clear(&u);

    u = parse_ok("redis://redis.internal");
    assert_string_equal(u.host, "redis.internal");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    redis_url_clear(&u);

    u = parse_ok("redis://[::1]:7000");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    redis_url_clear(&u);
}

static void test_credentials(void **state)
{
    (void)state;
    /* a password may hold '@', '/' and '?' */
    struct redis_url u = parse_ok("redis://yjt:p@ss/w?rd@10.0.0.5:6379/1?wait=1");
    assert_string_equal(u.user, "yjt");
    assert_string_equal(u.password, "p@ss/w?rd");
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.db, 1);
    assert_int_equal(u.wait_replicas, 1);
    assert_int_equal(u.wait_ms, 1000);
    char *d = redis_url_describe(&u);
    assert_null(strstr(d, "p@ss")); /* never in logs */
    g_free(d);
    redis_url_clear(&u);

    u = parse_ok("redis://:secret@localhost");
    assert_null(u.user);
    assert_string_equal(u.password, "secret");
    redis_url_clear(&u);
}

static void test_unix_and_sentinel(void **state)
{
    (void)state;
    struct redis_url u = parse_ok("redis+unix:///run/redis/redis.sock?db=3&wait=2&wait_ms=250");
    assert_string_equal(u.socket, "/run/redis/redis.sock");
    assert_null(u.host);
    assert_int_equal(u.db, 3);
    assert_int_equal(u.wait_replicas, 2);
    assert_int_equal(u.wait_ms, 250);
    redis_url_clear(&u);

    u = parse_ok("redis-sentinel://10.0.0.1,10.0.0.2:26380/mymaster/4");
    assert_int_equal(u.n_sentinels, 2);
    assert_string_equal(u.sentinel_host[0], "10.0.0.1");
    assert_int_equal(u.sentinel_port[0], 26379);
    assert_int_equal(u.sentinel_port[1], 26380);
    assert_string_equal(u.master, "mymaster");
    assert_int_equal(u.db, 4);
    redis_url_clear(&u);
}

static void test_tls(void **state)
{
    (void)state;
    /* a tunnel starts (a private socket; nothing is dialled until used) */
    struct redis_url u = parse_ok("rediss://:pw@redis.example:6380/2?wait=1");
    assert_true(u.tls);
    assert_null(u.host);
    assert_string_equal(u.tls_host, "redis.example");
    assert_int_equal(u.tls_port, 6380);
    assert_int_equal(u.db, 2);
    assert_non_null(u.socket);
    char *d = redis_url_describe(&u);
    assert_string_equal(d, "redis.example:6380 (TLS) db 2");
    g_free(d);
    /* the same server and settings share one tunnel */
    struct redis_url v = parse_ok("rediss://:pw@redis.example:6380/2");
    assert_string_equal(u.socket, v.socket);
    assert_true(g_file_test(u.socket, G_FILE_TEST_EXISTS));
    char *sock = g_strdup(u.socket);
    redis_url_clear(&u);
    redis_url_clear(&v);
    redis_tls_stop_all();
    assert_false(g_file_test(sock, G_FILE_TEST_EXISTS)); /* cleaned up */
    g_free(sock);

    /* TLS to the sentinels and to the master they name */
    u = parse_ok("rediss-sentinel://:pw@10.0.0.1:26380,10.0.0.2/m1/3?wait=1");
    assert_true(u.tls);
    assert_int_equal(u.n_sentinels, 2);
    assert_int_equal(u.sentinel_port[1], 26379);
    assert_string_equal(u.master, "m1");
    assert_int_equal(u.db, 3);
    assert_null(u.socket); /* a tunnel per sentinel and master, when dialled */
    d = redis_url_describe(&u);
    assert_string_equal(d, "sentinel master m1 (2 sentinels, TLS) db 3");
    g_free(d);
    redis_url_clear(&u);
    redis_tls_stop_all();
}

static void test_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "http://localhost",
        "rediss://localhost?tls_ca=",                     /* an empty file name */
        "redis://localhost?tls_ca=/etc/ssl/certs/ca.pem", /* TLS options without TLS */
        "rediss://localhost?tls_ca=/no/such/ca.pem",      /* a file that cannot be loaded */
        "redis://",
        "redis://host:0",
        "redis://host:65536",
        "redis://host:12ab",
        "redis://host/x",
        "redis://user@host", /* a user needs a password */
        "redis://host?wait=-1",
        "redis://host?wait=99",
        "redis://host?wait_ms=0",
        "redis://host?nosuch=1",
        "redis://host?db",
        "redis+unix://relative/path",
        "redis-sentinel://h1/",
        "redis-sentinel://h1",
        "redis-sentinel://h1,h2,h3,h4,h5,h6,h7,h8,h9/m",
        "redis-sentinel://h1/m?tls_ca=/etc/ssl/certs/ca.pem", /* TLS options without TLS */
        "rediss-sentinel://h1/m?tls_ca=/no/such/ca.pem",
        "rediss-sentinel://h1",
        "redis://[::1",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
        refused(bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_unix_and_sentinel),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
