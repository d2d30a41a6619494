/* Whole media transports between two endpoints in this process, over real
 * UDP sockets on 127.0.0.1: ICE (libnice, trickled candidates, the server
 * controlled), DTLS over the selected pair (the server passive, each side
 * checking the other's fingerprint), SRTP and SRTCP with the exported
 * keys, both ways. The same over TCP alone (ICE-TCP, RFC 6544: the
 * server accepts, the client connects; datagrams framed on the stream).
 * A peer whose certificate does not match its SDP fingerprint fails the
 * transport; bad parameters make none; a peer's candidate lines are
 * checked before libnice sees them. */
#include "media/ice_agent.h"
#include "media/transport.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
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
    bool tcp_only;         /* only its TCP candidates reach the peer */
    GPtrArray *cands;      /* the candidate lines it announced */
};

/* Field i of a candidate line ("" when it has fewer; g_free). */
static char *cand_field(const char *cand, int i)
{
    char **f = g_strsplit(cand, " ", -1);
    char *v = (int)g_strv_length(f) > i ? g_strdup(f[i]) : g_strdup("");
    g_strfreev(f);
    return v;
}

static bool is_tcp(const char *cand)
{
    char *t = cand_field(cand, 2);
    bool tcp = g_ascii_strcasecmp(t, "tcp") == 0;
    g_free(t);
    return tcp;
}

static void on_candidate(const char *cand, void *ud)
{
    struct end *e = ud;
    if (!cand) {
        media_transport_remote_done(e->peer->t);
        return;
    }
    assert_true(g_str_has_prefix(cand, "candidate:"));
    g_ptr_array_add(e->cands, g_strdup(cand));
    if (e->tcp_only && !is_tcp(cand))
        return; /* a network that lets no UDP through */
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

static const struct media_transport_callbacks cb = {on_candidate, on_state, on_rtp, on_rtcp, NULL};

/* A counting client's: RTP as it arrived, still protected. */
static void on_srtp(const uint8_t *pkt, size_t len, void *ud)
{
    g_ptr_array_add(((struct end *)ud)->rtp, g_bytes_new(pkt, len));
}

static const struct media_transport_callbacks counting_cb = {on_candidate, on_state, on_rtp,
                                                             on_rtcp, on_srtp};
/* The client of the next pair_up counts instead of decrypting. */
static bool counting_client;

/* Two ends, as an offer and its answer would make them: each knows the
 * other's credentials; the server expects server_expects as the client's
 * fingerprint (NULL: the right one). With tcp both gather TCP candidates
 * as well, and only those are exchanged. Then both gather. */
static void pair_up_over(struct end *e, const char *server_expects, bool tcp)
{
    memset(e, 0, 2 * sizeof(*e));
    e[0].peer = &e[1];
    e[1].peer = &e[0];
    for (int i = 0; i < 2; i++) {
        e[i].cert = dtls_cert_new();
        e[i].rtp = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        e[i].rtcp = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        e[i].cands = g_ptr_array_new_with_free_func(g_free);
        e[i].tcp_only = tcp;
        e[i].t = media_transport_new(NULL, i == 0 ? MEDIA_TRANSPORT_SERVER : MEDIA_TRANSPORT_CLIENT,
                                     e[i].cert, lo, tcp,
                                     i == 1 && counting_client ? &counting_cb : &cb, &e[i]);
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

static void pair_up(struct end *e, const char *server_expects)
{
    pair_up_over(e, server_expects, false);
}

static void pair_free(struct end *e)
{
    for (int i = 0; i < 2; i++) {
        media_transport_free(e[i].t);
        dtls_cert_free(e[i].cert);
        g_ptr_array_free(e[i].rtp, TRUE);
        g_ptr_array_free(e[i].rtcp, TRUE);
        g_ptr_array_free(e[i].cands, TRUE);
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
    assert_string_equal(media_transport_path(e[0].t), "udp");
    assert_true(media_transport_direct(e[0].t) && media_transport_direct(e[1].t));
    pair_free(e);
}

/* A client that only counts gets RTP still protected (the clear header,
 * then ciphertext and the tag) and RTCP decrypted as any other. */
static bool client_got_rtp_and_rtcp(struct end *e)
{
    return e[1].rtp->len && e[1].rtcp->len;
}

static void test_counting_client_gets_rtp_unchecked(void **state)
{
    (void)state;
    struct end e[2];
    const uint8_t rtp[] = {0x80, 96, 0, 5, 0, 0, 0, 9, 0, 0, 0, 8, 'v', 'i', 'd', 'e', 'o', '!'};
    const uint8_t rr[] = {0x80, 201, 0, 1, 0, 0, 0, 8};
    counting_client = true;
    pair_up(e, NULL);
    counting_client = false;
    assert_true(run_until(both_connected, e));
    assert_int_equal(media_transport_send_rtp(e[0].t, rtp, sizeof(rtp)), 0);
    assert_int_equal(media_transport_send_rtcp(e[0].t, rr, sizeof(rr)), 0);
    assert_true(run_until(client_got_rtp_and_rtcp, e));
    gsize n;
    const uint8_t *got = g_bytes_get_data(g_ptr_array_index(e[1].rtp, 0), &n);
    assert_true(n > sizeof(rtp));                                  /* the authentication tag */
    assert_memory_equal(got, rtp, 12);                             /* the header is clear */
    assert_memory_not_equal(got + 12, rtp + 12, sizeof(rtp) - 12); /* the payload is not */
    got = g_bytes_get_data(g_ptr_array_index(e[1].rtcp, 0), &n);
    assert_int_equal(n, sizeof(rr));
    assert_memory_equal(got, rr, sizeof(rr));
    pair_free(e);
}

/* The priority and the tcptype ("" for UDP) of a candidate line. */
static unsigned long cand_priority(const char *cand)
{
    char *p = cand_field(cand, 3);
    unsigned long v = strtoul(p, NULL, 10);
    g_free(p);
    return v;
}

static const char *tcptype(const char *cand)
{
    const char *t = strstr(cand, " tcptype ");
    return t ? t + 9 : "";
}

static bool many_both_ways(struct end *e)
{
    return e[0].rtp->len >= 50 && e[1].rtp->len >= 50;
}

/* Only TCP candidates cross (a network that blocks UDP): the server
 * announces passive ones, below its UDP ones, the client active ones
 * (port 9: it connects, RFC 6544 4.5), and ICE, DTLS and SRTP come up
 * over the client's connection. Packets of every size up to the largest
 * arrive whole and in order, each framed on the stream. */
static void test_media_over_ice_tcp_only(void **state)
{
    (void)state;
    struct end e[2];
    pair_up_over(e, NULL, true);
    assert_true(run_until(both_connected, e));
    unsigned long udp_min = G_MAXULONG, tcp_max = 0;
    unsigned tcp[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        for (guint k = 0; k < e[i].cands->len; k++) {
            const char *c = g_ptr_array_index(e[i].cands, k);
            if (!is_tcp(c)) {
                udp_min = i == 0 ? MIN(udp_min, cand_priority(c)) : udp_min;
                continue;
            }
            tcp[i]++;
            assert_string_equal(tcptype(c), i == 0 ? "passive" : "active");
            if (i == 0)
                tcp_max = MAX(tcp_max, cand_priority(c));
            else
                assert_non_null(strstr(c, " 127.0.0.1 9 typ host"));
        }
    }
    assert_true(tcp[0] > 0 && tcp[1] > 0);
    assert_true(tcp_max < udp_min);
    assert_string_equal(media_transport_path(e[0].t), "tcp");
    assert_false(media_transport_direct(e[0].t) || media_transport_direct(e[1].t));
    assert_string_equal(media_transport_path(e[1].t), "tcp");

    uint8_t pkt[1400];
    for (int n = 0; n < 50; n++) {
        size_t len = 12 + (size_t)n * 27;
        memset(pkt, n, sizeof(pkt));
        pkt[0] = 0x80;
        pkt[1] = 96;
        pkt[2] = 0;
        pkt[3] = (uint8_t)n;
        assert_int_equal(media_transport_send_rtp(e[1].t, pkt, len), 0);
        assert_int_equal(media_transport_send_rtp(e[0].t, pkt, len), 0);
    }
    assert_true(run_until(many_both_ways, e));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(e[i].rtp->len, 50);
        for (int n = 0; n < 50; n++) {
            gsize len;
            const uint8_t *got = g_bytes_get_data(g_ptr_array_index(e[i].rtp, n), &len);
            assert_int_equal(len, 12 + (size_t)n * 27);
            assert_int_equal(got[3], n);
            assert_int_equal(got[len - 1], n);
        }
    }
    pair_free(e);
}

/* A peer's candidate lines are untrusted: what does not have the shape
 * of RFC 8839 is refused before libnice parses it (which would take some
 * and log a GLib critical for others: those are made fatal here), and so
 * is RTCP's component; TCP candidates the server does not use are
 * ignored. */
static void test_remote_candidates_are_checked(void **state)
{
    (void)state;
    GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    struct dtls_cert *c = dtls_cert_new();
    struct media_transport *t =
        media_transport_new(NULL, MEDIA_TRANSPORT_SERVER, c, lo, true, &cb, NULL);
    struct media_transport *udp =
        media_transport_new(NULL, MEDIA_TRANSPORT_SERVER, c, lo, false, &cb, NULL);
    const char *why = NULL;
    assert_int_equal(media_transport_set_remote(t, "u", "p", "sha-256", "00", &why), 0);
    assert_int_equal(media_transport_set_remote(udp, "u", "p", "sha-256", "00", &why), 0);
    static const char *const taken[] = {
        "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
        "a=candidate:1 1 UDP 2122260223 127.0.0.1 50000 typ host generation 0 ufrag x",
        /* as Chromium writes its TCP candidates */
        "candidate:3 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0 ufrag x"
        " network-id 1",
        "candidate:4 1 TCP 1518280447 127.0.0.1 9 typ host tcptype active",
        /* ignored: the server opens no TCP connection */
        "candidate:5 1 tcp 1518280447 127.0.0.1 5000 typ host tcptype passive",
        "candidate:6 1 tcp 1518280447 127.0.0.1 5000 typ host tcptype so",
        NULL,
    };
    for (int i = 0; taken[i]; i++) {
        assert_int_equal(media_transport_add_remote_candidate(t, taken[i]), 0);
        assert_int_equal(media_transport_add_remote_candidate(udp, taken[i]), 0);
    }
    char *long_line = g_strnfill(2000, 'x');
    const char *const refused[] = {
        "candidate:1 1 tcp 1518280447 127.0.0.1 5000 typ host", /* no tcptype */
        "candidate:1 1 tcp 1518280447 127.0.0.1 5000 typ host tcptype",
        "candidate:1 1 tcp 1518280447 127.0.0.1 5000 typ host tcptype bogus",
        "candidate:1 1 tcp 1518280447 127.0.0.1 5000 typ host generation 0 tcptype",
        "candidate:1 1 udp 1 127.0.0.1 99999 typ host",
        "candidate:1 1 udp 1 127.0.0.1 -5 typ host",
        "candidate:1 1 udp 1 127.0.0.1 5000 typ",
        "candidate:1 1 udp 1 127.0.0.1 5000 typ host generation",
        "candidate:1 1 udp 1 127.0.0.1 5000 typ srflx raddr 10.0.0.1 rport",
        "candidate:1 1  udp 1 127.0.0.1 5000 typ host",
        "candidate:1 1 sctp 1 127.0.0.1 5000 typ host",
        "candidate:1 1 udp 1 127.0.0.1 5000 type host",
        "candidate:1 1 udp 1 not-an-address 5000 typ host",
        "candidate:1 1 udp 1 127.0.0.1 5000 typ bogus",
        "candidate:7 2 udp 2122260222 127.0.0.1 50001 typ host", /* RTCP is muxed */
        "1 1 udp 1 127.0.0.1 5000 typ host",
        "",
        long_line,
        NULL,
    };
    for (int i = 0; refused[i]; i++) {
        assert_int_equal(media_transport_add_remote_candidate(t, refused[i]), -1);
        assert_int_equal(media_transport_add_remote_candidate(udp, refused[i]), -1);
    }
    assert_int_equal(media_transport_add_remote_candidate(t, NULL), -1);
    g_free(long_line);
    assert_null(media_transport_path(t));
    media_transport_free(t);
    media_transport_free(udp);
    dtls_cert_free(c);
    g_log_set_always_fatal(fatal);
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
    assert_null(media_transport_new(NULL, MEDIA_TRANSPORT_SERVER, NULL, lo, false, &cb, NULL));
    static const char *const bad_addr[] = {"not-an-address", NULL};
    assert_null(media_transport_new(NULL, MEDIA_TRANSPORT_SERVER, c, bad_addr, false, &cb, NULL));
    struct media_transport *t =
        media_transport_new(NULL, MEDIA_TRANSPORT_SERVER, c, lo, false, &cb, NULL);
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
        cmocka_unit_test(test_counting_client_gets_rtp_unchecked),
        cmocka_unit_test(test_media_over_ice_tcp_only),
        cmocka_unit_test(test_remote_candidates_are_checked),
        cmocka_unit_test(test_wrong_fingerprint_fails),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
