/* Whole media transports between two endpoints in this process, over real
 * UDP sockets on 127.0.0.1: ICE (libnice, trickled candidates, the server
 * controlled), DTLS over the selected pair (the server passive, each side
 * checking the other's fingerprint), SRTP and SRTCP with the exported
 * keys, both ways. A peer whose certificate does not match its SDP
 * fingerprint fails the transport; bad parameters make none. */
#include "media/ice_agent.h"
#include "media/transport.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static const char *const lo[] = {"127.0.0.1", NULL};

struct end {
    struct media_transport *t;
    struct dtls_cert *cert;
    struct end *peer;
    enum media_transport_state state;
    const char *why;
    GPtrArray *rtp, *rtcp; /* GBytes received */
};

static void on_candidate(const char *cand, void *ud)
{
    struct end *e = ud;
    if (!cand) {
        media_transport_remote_done(e->peer->t);
        return;
    }
    assert_true(g_str_has_prefix(cand, "candidate:"));
    assert_int_equal(media_transport_add_remote_candidate(e->peer->t, cand), 0);
}

static void on_state(enum media_transport_state s, const char *why, void *ud)
{
    struct end *e = ud;
    e->state = s;
    e->why = why;
}

static void on_rtp(uint8_t *pkt, size_t len, void *ud)
{
    g_ptr_array_add(((struct end *)ud)->rtp, g_bytes_new(pkt, len));
}

static void on_rtcp(uint8_t *pkt, size_t len, void *ud)
{
    g_ptr_array_add(((struct end *)ud)->rtcp, g_bytes_new(pkt, len));
}

static const struct media_transport_callbacks cb = {on_candidate, on_state, on_rtp, on_rtcp};

/* Two ends, as an offer and its answer would make them: each knows the
 * other's credentials; the server expects server_expects as the client's
 * fingerprint (NULL: the right one). Then both gather. */
static void pair_up(struct end *e, const char *server_expects)
{
    memset(e, 0, 2 * sizeof(*e));
    e[0].peer = &e[1];
    e[1].peer = &e[0];
    for (int i = 0; i < 2; i++) {
        e[i].cert = dtls_cert_new();
        e[i].rtp = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        e[i].rtcp = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        e[i].t = media_transport_new(NULL, i == 0 ? MEDIA_TRANSPORT_SERVER : MEDIA_TRANSPORT_CLIENT,
                                     e[i].cert, lo, &cb, &e[i]);
        assert_non_null(e[i].t);
    }
    const char *why = NULL;
    assert_int_equal(media_transport_set_remote(
                         e[0].t, media_transport_ufrag(e[1].t), media_transport_pwd(e[1].t),
                         "sha-256",
                         server_expects ? server_expects : dtls_cert_fingerprint(e[1].cert), &why),
                     0);
    assert_int_equal(media_transport_set_remote(e[1].t, media_transport_ufrag(e[0].t),
                                                media_transport_pwd(e[0].t), "sha-256",
                                                dtls_cert_fingerprint(e[0].cert), &why),
                     0);
    /* Set once. */
    assert_int_equal(media_transport_set_remote(e[1].t, "u", "p", "sha-256", "00", &why), -1);
    assert_int_equal(media_transport_gather(e[0].t), 0);
    assert_int_equal(media_transport_gather(e[1].t), 0);
}

static void pair_free(struct end *e)
{
    for (int i = 0; i < 2; i++) {
        media_transport_free(e[i].t);
        dtls_cert_free(e[i].cert);
        g_ptr_array_free(e[i].rtp, TRUE);
        g_ptr_array_free(e[i].rtcp, TRUE);
    }
    while (g_main_context_iteration(NULL, FALSE))
        ;
}

/* Runs the loop until done() or 10 s. */
static bool run_until(bool (*done)(struct end *), struct end *e)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!done(e) && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    return done(e);
}

static bool both_connected(struct end *e)
{
    return e[0].state == MEDIA_TRANSPORT_CONNECTED && e[1].state == MEDIA_TRANSPORT_CONNECTED;
}

static bool media_both_ways(struct end *e)
{
    return e[0].rtp->len && e[1].rtp->len && e[0].rtcp->len;
}

static bool server_failed(struct end *e)
{
    return e[0].state == MEDIA_TRANSPORT_FAILED;
}

static void test_media_both_ways_over_loopback(void **state)
{
    (void)state;
    struct end e[2];
    const uint8_t rtp[] = {0x80, 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 'v', 'i', 'd', 'e', 'o'};
    const uint8_t rtp2[] = {0x80, 111, 0, 2, 0, 0, 0, 9, 0, 0, 0, 8, 'a', 'u', 'd'};
    const uint8_t rr[] = {0x80, 201, 0, 1, 0, 0, 0, 7};
    pair_up(e, NULL);
    assert_int_equal(media_transport_send_rtp(e[1].t, rtp, sizeof(rtp)), -1); /* not yet */
    assert_true(run_until(both_connected, e));
    assert_null(e[0].why);

    assert_int_equal(media_transport_send_rtp(e[1].t, rtp, sizeof(rtp)), 0);
    assert_int_equal(media_transport_send_rtcp(e[1].t, rr, sizeof(rr)), 0);
    assert_int_equal(media_transport_send_rtp(e[0].t, rtp2, sizeof(rtp2)), 0);
    assert_true(run_until(media_both_ways, e));
    gsize n;
    const void *got = g_bytes_get_data(g_ptr_array_index(e[0].rtp, 0), &n);
    assert_int_equal(n, sizeof(rtp));
    assert_memory_equal(got, rtp, sizeof(rtp));
    got = g_bytes_get_data(g_ptr_array_index(e[0].rtcp, 0), &n);
    assert_int_equal(n, sizeof(rr));
    assert_memory_equal(got, rr, sizeof(rr));
    got = g_bytes_get_data(g_ptr_array_index(e[1].rtp, 0), &n);
    assert_int_equal(n, sizeof(rtp2));
    assert_memory_equal(got, rtp2, sizeof(rtp2));
    /* Too big to protect into one datagram: refused. */
    uint8_t big[1600] = {0x80, 96};
    assert_int_equal(media_transport_send_rtp(e[0].t, big, sizeof(big)), -1);
    pair_free(e);
}

static void test_wrong_fingerprint_fails(void **state)
{
    (void)state;
    struct dtls_cert *stranger = dtls_cert_new();
    struct end e[2];
    pair_up(e, dtls_cert_fingerprint(stranger));
    assert_true(run_until(server_failed, e));
    assert_non_null(strstr(e[0].why, "fingerprint"));
    assert_int_equal(media_transport_send_rtp(e[0].t, (const uint8_t *)"\x80", 1), -1);
    pair_free(e);
    dtls_cert_free(stranger);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    struct dtls_cert *c = dtls_cert_new();
    assert_null(media_transport_new(NULL, MEDIA_TRANSPORT_SERVER, NULL, lo, &cb, NULL));
    static const char *const bad_addr[] = {"not-an-address", NULL};
    assert_null(media_transport_new(NULL, MEDIA_TRANSPORT_SERVER, c, bad_addr, &cb, NULL));
    struct media_transport *t = media_transport_new(NULL, MEDIA_TRANSPORT_SERVER, c, lo, &cb, NULL);
    assert_non_null(t);
    const char *why = NULL;
    assert_int_equal(media_transport_set_remote(t, "u", "p", "md5", "00", &why), -1);
    assert_non_null(why);
    why = NULL;
    assert_int_equal(media_transport_set_remote(t, "", "p", "sha-256", "00", &why), -1);
    assert_non_null(why);
    assert_int_equal(media_transport_state(t), MEDIA_TRANSPORT_CONNECTING);
    media_transport_free(t);
    dtls_cert_free(c);
}

static int setup(void **state)
{
    (void)state;
    return media_srtp_init();
}

static int teardown(void **state)
{
    (void)state;
    media_srtp_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_media_both_ways_over_loopback),
        cmocka_unit_test(test_wrong_fingerprint_fails),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
