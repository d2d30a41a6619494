/* The Redis link on hiredis's async context (records/redis_link.h):
 * a refused connect, deferred commands and their callbacks, waiting
 * commands after them, and a connection killed under awaited commands.
 * The parts that need a server run against YJT_TEST_REDIS
 * (tests/unit/with_redis.sh). */
#include "records/redis_link.h"

#include <glib.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>

static const char *redis_url;

static struct redis_link *link_to(const char *url)
{
    struct redis_url u;
    char *err = NULL;
    if (redis_url_parse(url, &u, &err) != 0)
        fail_msg("%s: %s", url, err);
    return redis_link_new(&u, 1000);
}

/* A loopback port nobody listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t n = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

struct told {
    int calls;
    bool lost;
    long long integer;
};

static void on_call(redisReply *r, void *ud)
{
    struct told *t = ud;
    t->calls++;
    t->lost = r == NULL;
    t->integer = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

static void cmd_of(struct redis_cmd *c, const char *a, const char *b, const char *d)
{
    redis_cmd_init(c);
    redis_cmd_str(c, a);
    if (b)
        redis_cmd_str(c, b);
    if (d)
        redis_cmd_str(c, d);
}

/* Polls the link until nothing deferred is awaited (at most 2 s). */
static void poll_all(struct redis_link *l)
{
    for (int i = 0; i < 200 && redis_link_fd(l) >= 0; i++) {
        struct pollfd p = {.fd = redis_link_fd(l), .events = POLLIN};
        poll(&p, 1, 10);
        redis_link_poll(l);
    }
    assert_int_equal(redis_link_fd(l), -1);
}

/* Nothing listens: the connect fails at once with the reason, the next
 * attempt waits out the backoff (a deferred command is refused, its
 * callback never told). */
static void test_refused(void **state)
{
    (void)state;
    char *url = g_strdup_printf("redis://127.0.0.1:%d", closed_port());
    struct redis_link *l = link_to(url);
    g_free(url);
    assert_int_equal(redis_link_connect(l), -1);
    assert_non_null(strstr(redis_link_error(l), "refused"));
    struct told t = {0};
    struct redis_cmd c;
    cmd_of(&c, "PING", NULL, NULL);
    assert_int_equal(redis_link_defer_call(l, &c, on_call, &t), -1);
    redis_cmd_clear(&c);
    assert_int_equal(t.calls, 0);
    assert_int_equal(redis_link_sent(l), 0);
    redis_link_free(l);
    assert_int_equal(t.calls, 0);
}

/* Deferred commands are told in order as the link is polled; a waiting
 * command sent after them reads their replies first; a drain counts the
 * writes. */
static void test_deferred_then_waiting(void **state)
{
    (void)state;
    if (!redis_url)
        skip();
    struct redis_link *l = link_to(redis_url);
    assert_int_equal(redis_link_connect(l), 0);
    struct redis_cmd c;
    cmd_of(&c, "DEL", "yjt-test-link", NULL);
    redisReply *r = redis_link_call(l, &c);
    assert_non_null(r);
    freeReplyObject(r);
    struct told t[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        cmd_of(&c, "INCR", "yjt-test-link", NULL);
        assert_int_equal(redis_link_defer_call(l, &c, on_call, &t[i]), 0);
        redis_cmd_clear(&c);
    }
    assert_int_equal(redis_link_sent(l), 3);
    poll_all(l);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i].calls, 1);
        assert_int_equal(t[i].integer, i + 1);
    }
    assert_int_equal(redis_link_done(l), 3);
    /* two more deferred, then a waiting read: it comes after them */
    struct told u = {0};
    cmd_of(&c, "INCR", "yjt-test-link", NULL);
    assert_int_equal(redis_link_defer(l, &c), 0);
    redis_cmd_clear(&c);
    cmd_of(&c, "INCR", "yjt-test-link", NULL);
    assert_int_equal(redis_link_defer_call(l, &c, on_call, &u), 0);
    redis_cmd_clear(&c);
    cmd_of(&c, "GET", "yjt-test-link", NULL);
    r = redis_link_run(l, &c);
    redis_cmd_clear(&c);
    assert_non_null(r);
    assert_string_equal(r->str, "5");
    freeReplyObject(r);
    assert_int_equal(u.calls, 1);
    assert_int_equal(u.integer, 5);
    assert_int_equal(redis_link_drain(l), 0);
    /* a write's error fails the drain */
    cmd_of(&c, "HSET", "yjt-test-link", NULL); /* wrong number of arguments */
    redis_cmd_str(&c, "f");
    assert_int_equal(redis_link_defer(l, &c), 0);
    redis_cmd_clear(&c);
    assert_int_equal(redis_link_drain(l), -1);
    cmd_of(&c, "DEL", "yjt-test-link", NULL);
    redisReply *d = redis_link_call(l, &c);
    assert_non_null(d);
    freeReplyObject(d);
    redis_link_free(l);
}

/* Commands awaited when the server kills the connection are each told
 * once that they are lost (a write's loss fails the drain); the next
 * command reconnects. */
static void test_killed_under_awaited(void **state)
{
    (void)state;
    if (!redis_url)
        skip();
    struct redis_link *l = link_to(redis_url);
    struct redis_link *admin = link_to(redis_url);
    struct redis_cmd c;
    cmd_of(&c, "CLIENT", "SETNAME", "yjt-test-victim");
    redisReply *r = redis_link_call(l, &c);
    assert_non_null(r);
    freeReplyObject(r);
    /* held by the server while the kill comes */
    cmd_of(&c, "CLIENT", "PAUSE", "300");
    r = redis_link_call(admin, &c);
    assert_non_null(r);
    freeReplyObject(r);
    struct told t = {0};
    cmd_of(&c, "INCR", "yjt-test-link2", NULL);
    assert_int_equal(redis_link_defer_write_call(l, &c, on_call, &t), 0);
    redis_cmd_clear(&c);
    cmd_of(&c, "CLIENT", "KILL", "TYPE");
    redis_cmd_str(&c, "normal");
    redis_cmd_str(&c, "SKIPME");
    redis_cmd_str(&c, "yes"); /* every client but the admin's */
    r = redis_link_call(admin, &c);
    assert_non_null(r);
    freeReplyObject(r);
    poll_all(l);
    assert_int_equal(t.calls, 1);
    assert_true(t.lost);
    assert_int_equal(redis_link_drain(l), -1); /* it may or may not have been applied */
    cmd_of(&c, "PING", NULL, NULL);
    r = redis_link_call(l, &c);
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    cmd_of(&c, "DEL", "yjt-test-link2", NULL);
    r = redis_link_call(l, &c);
    assert_non_null(r);
    freeReplyObject(r);
    redis_link_free(admin);
    redis_link_free(l);
    assert_int_equal(t.calls, 1);
}

int main(void)
{
    redis_url = getenv("YJT_TEST_REDIS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_deferred_then_waiting),
        cmocka_unit_test(test_killed_under_awaited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
