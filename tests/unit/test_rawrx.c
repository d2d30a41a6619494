/* The load client's frame reader (tools/load/rawrx.c), over a socket pair:
 * frames cut anywhere (written a byte at a time), the three length forms,
 * several frames in one write, pings answered with masked pongs, control
 * frames and binary ones passed over, a masked frame refused, the closing
 * handshake both ways, and a hang-up. */
#include "rawrx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <fcntl.h>
#include <glib.h>

struct seen {
    GPtrArray *texts;
    int gone;
    unsigned code;
};

static void on_text(void *conn, const char *data, size_t len, void *ud)
{
    (void)conn;
    g_ptr_array_add(((struct seen *)ud)->texts, g_strndup(data, len));
}

static void on_gone(void *conn, unsigned code, void *ud)
{
    (void)conn;
    struct seen *s = ud;
    s->gone++;
    s->code = code;
}

struct rig {
    uv_loop_t loop;
    struct rawrx *r;
    int ours, peer; /* the reader's end, the "server's" */
    struct seen seen;
};

static void rig_open(struct rig *g)
{
    memset(g, 0, sizeof(*g));
    g->seen.texts = g_ptr_array_new_with_free_func(g_free);
    assert_int_equal(uv_loop_init(&g->loop), 0);
    g->r = rawrx_new(&g->loop, on_text, on_gone, &g->seen);
    assert_non_null(g->r);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    g->ours = sv[0];
    g->peer = sv[1];
    assert_int_equal(rawrx_take(g->r, g->ours, g), 0);
}

static void turn(struct rig *g)
{
    for (int i = 0; i < 3; i++)
        uv_run(&g->loop, UV_RUN_NOWAIT);
}

static void rig_close(struct rig *g)
{
    rawrx_free(g->r);
    turn(g);
    assert_int_equal(uv_loop_close(&g->loop), 0);
    close(g->peer);
    g_ptr_array_free(g->seen.texts, TRUE);
}

/* A server's (unmasked) frame of op with payload p[0..n). */
static GByteArray *frame(unsigned op, bool fin, const char *p, size_t n)
{
    GByteArray *f = g_byte_array_new();
    guint8 h[10];
    size_t hl = 2;
    h[0] = (guint8)((fin ? 0x80 : 0) | op);
    if (n < 126) {
        h[1] = (guint8)n;
    } else if (n <= 0xffff) {
        h[1] = 126;
        h[2] = (guint8)(n >> 8);
        h[3] = (guint8)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (guint8)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    g_byte_array_append(f, h, (guint)hl);
    g_byte_array_append(f, (const guint8 *)p, (guint)n);
    return f;
}

static void send_all(struct rig *g, const GByteArray *b, size_t step)
{
    for (size_t at = 0; at < b->len; at += step) {
        size_t n = MIN(step, b->len - at);
        assert_int_equal(write(g->peer, b->data + at, n), (ssize_t)n);
        turn(g);
    }
}

/* What the reader wrote back: one client frame, unmasked; its op. */
static unsigned reply(struct rig *g, char *payload, size_t *n)
{
    guint8 b[256];
    ssize_t got = read(g->peer, b, sizeof(b));
    assert_true(got >= 6);
    assert_true(b[1] & 0x80); /* a client's frames are masked */
    *n = b[1] & 0x7f;
    assert_int_equal((size_t)got, 6 + *n);
    for (size_t i = 0; i < *n; i++)
        payload[i] = (char)(b[6 + i] ^ b[2 + i % 4]);
    return b[0] & 0x0f;
}

static void test_frames_cut_anywhere(void **state)
{
    (void)state;
    struct rig g;
    rig_open(&g);
    char *mid = g_malloc(300), *big = g_malloc(70000);
    memset(mid, 'm', 300);
    memset(big, 'b', 70000);
    GByteArray *all = g_byte_array_new();
    const char *texts[] = {"{\"a\":1}", mid, big};
    size_t lens[] = {7, 300, 70000};
    for (int i = 0; i < 3; i++) {
        GByteArray *f = frame(0x1, true, texts[i], lens[i]);
        g_byte_array_append(all, f->data, f->len);
        g_byte_array_free(f, TRUE);
    }
    GByteArray *small = g_byte_array_new();
    g_byte_array_append(small, all->data, all->len - 70010); /* the first two */
    send_all(&g, small, 1);
    assert_int_equal(g.seen.texts->len, 2);
    /* the third in pieces of 1,000 bytes, then all three again at once */
    GByteArray *third = g_byte_array_new();
    g_byte_array_append(third, all->data + small->len, all->len - small->len);
    send_all(&g, third, 1000);
    send_all(&g, all, all->len);
    assert_int_equal(g.seen.texts->len, 6);
    for (int k = 0; k < 6; k++) {
        const char *t = g_ptr_array_index(g.seen.texts, k);
        assert_int_equal(strlen(t), lens[k % 3]);
        assert_memory_equal(t, texts[k % 3], lens[k % 3]);
    }
    assert_int_equal(g.seen.gone, 0);
    assert_int_equal(rawrx_skipped(g.r), 0);
    g_byte_array_free(all, TRUE);
    g_byte_array_free(small, TRUE);
    g_byte_array_free(third, TRUE);
    g_free(mid);
    g_free(big);
    rig_close(&g);
}

static void test_control_frames(void **state)
{
    (void)state;
    struct rig g;
    rig_open(&g);
    GByteArray *ping = frame(0x9, true, "1234", 4);
    GByteArray *pong = frame(0xA, true, "x", 1);
    GByteArray *bin = frame(0x2, true, "\x01\x02", 2);
    GByteArray *part = frame(0x1, false, "half", 4);
    send_all(&g, ping, ping->len);
    char p[128];
    size_t n = 0;
    assert_int_equal(reply(&g, p, &n), 0xA);
    assert_int_equal(n, 4);
    assert_memory_equal(p, "1234", 4);
    send_all(&g, pong, pong->len);
    send_all(&g, bin, bin->len);
    send_all(&g, part, part->len);
    assert_int_equal(g.seen.texts->len, 0);
    assert_int_equal(rawrx_skipped(g.r), 2); /* the binary frame and the fragment */
    assert_int_equal(g.seen.gone, 0);
    /* the server closes: answered with its code, then reported */
    GByteArray *cl = frame(0x8, true, "\x03\xe9", 2);
    send_all(&g, cl, cl->len);
    assert_int_equal(reply(&g, p, &n), 0x8);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "\x03\xe9", 2);
    assert_int_equal(g.seen.gone, 1);
    assert_int_equal(g.seen.code, 1001);
    g_byte_array_free(ping, TRUE);
    g_byte_array_free(pong, TRUE);
    g_byte_array_free(bin, TRUE);
    g_byte_array_free(part, TRUE);
    g_byte_array_free(cl, TRUE);
    rig_close(&g);
}

static void test_our_close_waits_for_the_hang_up(void **state)
{
    (void)state;
    struct rig g;
    rig_open(&g);
    rawrx_close(g.r, g.ours);
    char p[128];
    size_t n = 0;
    assert_int_equal(reply(&g, p, &n), 0x8);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "\x03\xe8", 2); /* 1000 */
    GByteArray *cl = frame(0x8, true, "\x03\xe8", 2);
    send_all(&g, cl, cl->len);
    assert_int_equal(g.seen.gone, 0); /* the answer: the hang-up comes next */
    shutdown(g.peer, SHUT_WR);
    turn(&g);
    assert_int_equal(g.seen.gone, 1);
    assert_int_equal(g.seen.code, 1000);
    g_byte_array_free(cl, TRUE);
    rig_close(&g);
}

static void test_bad_frames_end_it(void **state)
{
    (void)state;
    struct rig g;
    rig_open(&g);
    const guint8 masked[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    assert_int_equal(write(g.peer, masked, sizeof(masked)), (ssize_t)sizeof(masked));
    turn(&g);
    assert_int_equal(g.seen.gone, 1);
    assert_int_equal(g.seen.texts->len, 0);
    rig_close(&g);

    rig_open(&g);
    const guint8 huge[] = {0x81, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}; /* 256 MiB */
    assert_int_equal(write(g.peer, huge, sizeof(huge)), (ssize_t)sizeof(huge));
    turn(&g);
    assert_int_equal(g.seen.gone, 1);
    rig_close(&g);

    rig_open(&g); /* a hang-up without a close frame */
    close(g.peer);
    g.peer = open("/dev/null", O_RDONLY);
    turn(&g);
    assert_int_equal(g.seen.gone, 1);
    assert_int_equal(g.seen.code, 0);
    rig_close(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_cut_anywhere),
        cmocka_unit_test(test_control_frames),
        cmocka_unit_test(test_our_close_waits_for_the_hang_up),
        cmocka_unit_test(test_bad_frames_end_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
