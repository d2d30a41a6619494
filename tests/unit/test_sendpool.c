/* The send pool: many sockets written by several threads at once, each
 * job's bytes whole and in order, a full socket reported as such (what it
 * took, and EAGAIN), a closed one as an error; and without threads the
 * same, on the caller's thread. A batch started and finished later is
 * written by the threads meanwhile. */
#include "server/sendpool.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define SOCKS 600 /* several rounds of chunks for every thread */

struct pair {
    int w, r;
};

static void open_pairs(struct pair *p, int n)
{
    for (int i = 0; i < n; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
        p[i].w = sv[0];
        p[i].r = sv[1];
    }
}

static void close_pairs(struct pair *p, int n)
{
    for (int i = 0; i < n; i++) {
        if (p[i].w >= 0)
            close(p[i].w);
        if (p[i].r >= 0)
            close(p[i].r);
    }
}

/* Writes job i's text (a few hundred bytes naming i) to pair i, through
 * the pool, round after round; every reader gets exactly its own texts. */
static void every_job_once_whole_and_in_order(int threads)
{
    static struct pair p[SOCKS];
    static struct send_job jobs[SOCKS];
    static char text[SOCKS][400];
    open_pairs(p, SOCKS);
    sendpool_init(threads);
    assert_int_equal(sendpool_threads(), threads > 1 ? threads : 1);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < SOCKS; i++) {
            int n = snprintf(text[i], sizeof(text[i]), "round %d job %d ", round, i);
            memset(text[i] + n, 'a' + i % 26, sizeof(text[i]) - (size_t)n);
            jobs[i] = (struct send_job){.fd = p[i].w,
                                        .buf = (const unsigned char *)text[i],
                                        .len = sizeof(text[i]) - (size_t)(i % 7),
                                        .sent = 12345,
                                        .err = -1};
        }
        sendpool_run(jobs, SOCKS);
        for (int i = 0; i < SOCKS; i++) {
            assert_int_equal(jobs[i].err, 0);
            assert_int_equal(jobs[i].sent, jobs[i].len);
            char got[400];
            assert_int_equal(read(p[i].r, got, sizeof(got)), (ssize_t)jobs[i].len);
            assert_memory_equal(got, text[i], jobs[i].len);
        }
    }
    sendpool_shutdown();
    close_pairs(p, SOCKS);
}

static void test_pool_of_three(void **state)
{
    (void)state;
    every_job_once_whole_and_in_order(3);
}

static void test_no_pool(void **state)
{
    (void)state;
    every_job_once_whole_and_in_order(1);
}

/* Among many sockets, one that is full, one with room for part of its
 * bytes, and one whose reader is gone. */
static void test_full_and_broken_sockets(void **state)
{
    (void)state;
    static struct pair p[SOCKS];
    static struct send_job jobs[SOCKS];
    open_pairs(p, SOCKS);
    int sndbuf = 4096;
    assert_int_equal(setsockopt(p[1].w, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    char fill[512];
    memset(fill, 'f', sizeof(fill));
    while (write(p[1].w, fill, sizeof(fill)) > 0)
        ; /* full */
    assert_int_equal(errno, EAGAIN);
    close(p[2].r);
    p[2].r = -1;
    static unsigned char big[1 << 20];
    memset(big, 'b', sizeof(big));
    sendpool_init(2);
    for (int i = 0; i < SOCKS; i++)
        jobs[i] = (struct send_job){.fd = p[i].w, .buf = big, .len = i == 3 ? sizeof(big) : 100};
    sendpool_run(jobs, SOCKS);
    assert_int_equal(jobs[1].sent, 0);
    assert_int_equal(jobs[1].err, EAGAIN);
    assert_int_equal(jobs[2].err, EPIPE); /* and no SIGPIPE */
    assert_int_equal(jobs[3].err, 0);
    assert_true(jobs[3].sent > 0 && jobs[3].sent < sizeof(big));
    for (int i = 4; i < SOCKS; i++) {
        assert_int_equal(jobs[i].err, 0);
        assert_int_equal(jobs[i].sent, 100);
    }
    sendpool_shutdown();
    close_pairs(p, SOCKS);
}

/* A batch started and left to the writers: they write all of it while the
 * caller waits for nothing (sendpool_idle() turns true by itself), and
 * finishing then costs nothing. Finishing at once instead makes the caller
 * write what they have not taken. A batch too small to share is written
 * at its start. */
static void test_started_batches(void **state)
{
    (void)state;
    static struct pair p[SOCKS];
    static struct send_job jobs[SOCKS];
    static const char text[] = "started, not waited for";
    open_pairs(p, SOCKS);
    sendpool_init(2);
    assert_true(sendpool_idle());
    for (int round = 0; round < 3; round++) {
        int n = round == 2 ? 5 : SOCKS;
        for (int i = 0; i < n; i++)
            jobs[i] = (struct send_job){.fd = p[i].w,
                                        .buf = (const unsigned char *)text,
                                        .len = sizeof(text),
                                        .sent = 0,
                                        .err = -1};
        sendpool_start(jobs, (size_t)n);
        if (round == 0) {
            gint64 until = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
            while (!sendpool_idle() && g_get_monotonic_time() < until)
                g_usleep(1000);
            assert_true(sendpool_idle());
            for (int i = 0; i < n; i++) /* all written before the finish */
                assert_int_equal(jobs[i].sent, sizeof(text));
        } else if (round == 2) {
            assert_true(sendpool_idle());
        }
        sendpool_finish();
        assert_true(sendpool_idle());
        for (int i = 0; i < n; i++) {
            assert_int_equal(jobs[i].err, 0);
            assert_int_equal(jobs[i].sent, sizeof(text));
            char got[sizeof(text)];
            assert_int_equal(read(p[i].r, got, sizeof(got)), (ssize_t)sizeof(text));
            assert_memory_equal(got, text, sizeof(text));
        }
    }
    sendpool_shutdown();
    close_pairs(p, SOCKS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_of_three),
        cmocka_unit_test(test_no_pool),
        cmocka_unit_test(test_full_and_broken_sockets),
        cmocka_unit_test(test_started_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
