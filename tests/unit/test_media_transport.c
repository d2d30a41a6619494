/* A whole media transport between two endpoints in this process, over real
 * UDP sockets on 127.0.0.1: ICE (libnice, trickled candidates, the server
 * controlled), then DTLS over the selected pair (the server passive, each
 * side checking the other's fingerprint), then SRTP with the exported
 * keys: a packet protected by one side comes out of the other intact. */
#include "media/dtls.h"
#include "media/ice_agent.h"
#include "media/srtp.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

struct end {
    const char *name;
    struct ice_agent *ice;
    struct dtls_cert *cert;
    struct dtls *dtls;
    struct media_srtp *srtp;
    struct end *peer;
    bool ice_up, gathered;
    enum dtls_state dtls_state;
    GPtrArray *media_in; /* GBytes: decrypted RTP received */
};

static GMainLoop *loop;

static void on_candidate(const char *cand, void *ud)
{
    struct end *e = ud;
    if (!cand) {
        e->gathered = true;
        ice_agent_remote_done(e->peer->ice);
        return;
    }
    assert_true(g_str_has_prefix(cand, "candidate:"));
    assert_int_equal(ice_agent_add_remote_candidate(e->peer->ice, cand), 0);
}

static void dtls_send(const uint8_t *data, size_t len, void *ud)
{
    struct end *e = ud;
    ice_agent_send(e->ice, data, len);
}

static void on_state(enum ice_agent_state s, void *ud)
{
    struct end *e = ud;
    assert_int_not_equal(s, ICE_AGENT_FAILED);
    if (s == ICE_AGENT_CONNECTED && !e->ice_up) {
        e->ice_up = true;
        if (e->dtls && e->dtls_state == DTLS_HANDSHAKING)
            e->dtls_state = dtls_start(e->dtls);
    }
}

static void on_recv(const uint8_t *data, size_t len, void *ud)
{
    struct end *e = ud;
    enum media_demux kind = media_demux(data, len);
    if (kind == DEMUX_DTLS && e->dtls) {
        e->dtls_state = dtls_input(e->dtls, data, len);
        if (e->dtls_state == DTLS_CONNECTED && !e->srtp) {
            struct media_srtp_keys k;
            assert_true(dtls_srtp_keys(e->dtls, &k));
            e->srtp = media_srtp_new(&k);
            assert_non_null(e->srtp);
        }
    } else if (kind == DEMUX_RTP && e->srtp) {
        uint8_t buf[2048];
        size_t n = len;
        assert_true(len <= sizeof(buf));
        memcpy(buf, data, len);
        if (media_srtp_unprotect(e->srtp, buf, &n) == 0)
            g_ptr_array_add(e->media_in, g_bytes_new(buf, n));
    }
}

static gboolean dtls_timer(gpointer data)
{
    struct end *ends = data;
    for (int i = 0; i < 2; i++)
        if (ends[i].dtls && dtls_timeout_ms(ends[i].dtls) == 0)
            ends[i].dtls_state = dtls_handle_timeout(ends[i].dtls);
    return G_SOURCE_CONTINUE;
}

/* Runs the loop until done() or 10 s. */
static void run_until(bool (*done)(struct end *), struct end *ends)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!done(ends) && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
    assert_true(done(ends));
}

static bool both_ice(struct end *e)
{
    return e[0].ice_up && e[1].ice_up;
}

static bool both_dtls(struct end *e)
{
    return e[0].srtp && e[1].srtp;
}

static bool got_media(struct end *e)
{
    return e[0].media_in->len > 0;
}

static void test_ice_dtls_srtp_over_loopback(void **state)
{
    (void)state;
    static const char *const lo[] = {"127.0.0.1", NULL};
    struct end ends[2] = {{.name = "server"}, {.name = "client"}};
    ends[0].peer = &ends[1];
    ends[1].peer = &ends[0];
    const struct ice_agent_callbacks cb = {on_candidate, on_state, on_recv};
    for (int i = 0; i < 2; i++) {
        ends[i].media_in = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        ends[i].cert = dtls_cert_new();
        ends[i].ice = ice_agent_new(NULL, i == 1, lo, &cb, &ends[i]);
        assert_non_null(ends[i].ice);
    }
    for (int i = 0; i < 2; i++) {
        ends[i].dtls = dtls_new(ends[i].cert, i == 0 ? DTLS_PASSIVE : DTLS_ACTIVE, "sha-256",
                                dtls_cert_fingerprint(ends[1 - i].cert), dtls_send, &ends[i]);
        assert_non_null(ends[i].dtls);
        assert_int_equal(ice_agent_set_remote(ends[i].ice, ice_agent_ufrag(ends[1 - i].ice),
                                              ice_agent_pwd(ends[1 - i].ice)),
                         0);
    }
    /* A candidate that does not parse is refused, and changes nothing. */
    assert_int_equal(ice_agent_add_remote_candidate(ends[0].ice, "candidate:nonsense"), -1);
    /* Not connected yet: nothing can be sent. */
    const uint8_t early[] = {0x80, 0};
    assert_int_equal(ice_agent_send(ends[1].ice, early, sizeof(early)), -1);
    guint timer = g_timeout_add(10, dtls_timer, ends);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ice_agent_gather(ends[i].ice), 0);

    run_until(both_ice, ends);
    run_until(both_dtls, ends);
    assert_int_equal(dtls_state(ends[0].dtls), DTLS_CONNECTED);
    assert_int_equal(dtls_state(ends[1].dtls), DTLS_CONNECTED);

    /* The client sends RTP; the server decrypts it. */
    uint8_t pkt[256] = {0x80, 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7};
    memcpy(pkt + 12, "frame-of-video", 14);
    size_t len = 26;
    assert_int_equal(media_srtp_protect(ends[1].srtp, pkt, &len, sizeof(pkt)), 0);
    assert_int_equal(ice_agent_send(ends[1].ice, pkt, len), 0);
    run_until(got_media, ends);
    gsize n;
    const uint8_t *got = g_bytes_get_data(g_ptr_array_index(ends[0].media_in, 0), &n);
    assert_int_equal(n, 26);
    assert_memory_equal(got + 12, "frame-of-video", 14);

    g_source_remove(timer);
    for (int i = 0; i < 2; i++) {
        media_srtp_free(ends[i].srtp);
        dtls_free(ends[i].dtls);
        ice_agent_free(ends[i].ice);
        dtls_cert_free(ends[i].cert);
        g_ptr_array_free(ends[i].media_in, TRUE);
    }
    /* Let libnice's pending sources finish. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
}

static int setup(void **state)
{
    (void)state;
    loop = NULL;
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
        cmocka_unit_test(test_ice_dtls_srtp_over_loopback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
