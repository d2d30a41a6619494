/* DTLS-SRTP between two endpoints in one process, datagrams passed by
 * hand: the handshake completes within the MTU, both sides derive mirrored
 * keys, a lost flight is sent again on the timer, a certificate that does
 * not match the SDP fingerprint is refused; then SRTP and SRTCP with
 * those keys (and with every profile) protect, check and decrypt, and
 * refuse forged and replayed packets. */
#include "media/dtls.h"
#include "media/srtp.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

struct side {
    struct dtls *d;
    GQueue *to_peer; /* GBytes datagrams on their way to the other side */
    size_t largest;
    int sent;
};

static void on_send(const uint8_t *data, size_t len, void *ud)
{
    struct side *s = ud;
    g_queue_push_tail(s->to_peer, g_bytes_new(data, len));
    s->largest = MAX(s->largest, len);
    s->sent++;
}

struct pair {
    struct dtls_cert *server_cert, *client_cert;
    struct side server, client;
};

static void pair_init(struct pair *p, const char *server_expects)
{
    memset(p, 0, sizeof(*p));
    p->server_cert = dtls_cert_new();
    p->client_cert = dtls_cert_new();
    assert_non_null(p->server_cert);
    assert_non_null(p->client_cert);
    p->server.to_peer = g_queue_new();
    p->client.to_peer = g_queue_new();
    const char *expect = server_expects ? server_expects : dtls_cert_fingerprint(p->client_cert);
    p->server.d = dtls_new(p->server_cert, DTLS_PASSIVE, "sha-256", expect, on_send, &p->server);
    p->client.d = dtls_new(p->client_cert, DTLS_ACTIVE, "SHA-256",
                           dtls_cert_fingerprint(p->server_cert), on_send, &p->client);
    assert_non_null(p->server.d);
    assert_non_null(p->client.d);
}

static void pair_free(struct pair *p)
{
    dtls_free(p->server.d);
    dtls_free(p->client.d);
    g_queue_free_full(p->server.to_peer, (GDestroyNotify)g_bytes_unref);
    g_queue_free_full(p->client.to_peer, (GDestroyNotify)g_bytes_unref);
    dtls_cert_free(p->server_cert);
    dtls_cert_free(p->client_cert);
}

/* Delivers queued datagrams both ways until none is left. */
static void pump(struct pair *p)
{
    for (int rounds = 0; rounds < 50; rounds++) {
        GBytes *b;
        bool moved = false;
        while ((b = g_queue_pop_head(p->client.to_peer))) {
            gsize n;
            const uint8_t *data = g_bytes_get_data(b, &n);
            dtls_input(p->server.d, data, n);
            g_bytes_unref(b);
            moved = true;
        }
        while ((b = g_queue_pop_head(p->server.to_peer))) {
            gsize n;
            const uint8_t *data = g_bytes_get_data(b, &n);
            dtls_input(p->client.d, data, n);
            g_bytes_unref(b);
            moved = true;
        }
        if (!moved)
            return;
    }
    fail_msg("the handshake never settled");
}

static void test_fingerprint_text(void **state)
{
    (void)state;
    struct dtls_cert *c = dtls_cert_new();
    assert_non_null(c);
    const char *fp = dtls_cert_fingerprint(c);
    assert_int_equal(strlen(fp), 32 * 3 - 1);
    for (int i = 0; i < 32; i++) {
        assert_true(g_ascii_isxdigit(fp[3 * i]) && g_ascii_isxdigit(fp[3 * i + 1]));
        assert_false(g_ascii_islower(fp[3 * i]) || g_ascii_islower(fp[3 * i + 1]));
        if (i < 31)
            assert_int_equal(fp[3 * i + 2], ':');
    }
    struct dtls_cert *other = dtls_cert_new();
    assert_string_not_equal(fp, dtls_cert_fingerprint(other));
    dtls_cert_free(other);
    /* Bad arguments make no endpoint. */
    assert_null(dtls_new(c, DTLS_PASSIVE, "md5", fp, on_send, NULL));
    assert_null(dtls_new(c, DTLS_PASSIVE, "sha-256", NULL, on_send, NULL));
    dtls_cert_free(c);
}

static void test_handshake_and_keys(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, NULL);
    assert_int_equal(dtls_start(p.server.d), DTLS_HANDSHAKING); /* passive: waits */
    assert_int_equal(p.server.sent, 0);
    assert_int_equal(dtls_start(p.client.d), DTLS_HANDSHAKING);
    assert_true(p.client.sent > 0);
    pump(&p);
    assert_int_equal(dtls_state(p.server.d), DTLS_CONNECTED);
    assert_int_equal(dtls_state(p.client.d), DTLS_CONNECTED);
    assert_null(dtls_error(p.server.d));
    assert_true(p.server.largest <= DTLS_MTU);
    assert_true(p.client.largest <= DTLS_MTU);

    struct media_srtp_keys sk, ck;
    assert_true(dtls_srtp_keys(p.server.d, &sk));
    assert_true(dtls_srtp_keys(p.client.d, &ck));
    assert_int_equal(sk.profile, MEDIA_SRTP_AEAD_AES_256_GCM); /* the best both offer */
    assert_int_equal(sk.key_len, 32);
    assert_int_equal(sk.salt_len, 12);
    assert_memory_equal(sk.local_key, ck.remote_key, sk.key_len);
    assert_memory_equal(sk.remote_key, ck.local_key, sk.key_len);
    assert_memory_equal(sk.local_salt, ck.remote_salt, sk.salt_len);
    assert_memory_equal(sk.remote_salt, ck.local_salt, sk.salt_len);
    assert_memory_not_equal(sk.local_key, sk.remote_key, sk.key_len);

    /* Datagrams of other protocols and after the handshake change nothing. */
    const uint8_t stun[] = {0x00, 0x01, 0x00, 0x00};
    assert_int_equal(dtls_input(p.server.d, stun, sizeof(stun)), DTLS_CONNECTED);
    const uint8_t junk[] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0xff};
    assert_int_equal(dtls_input(p.server.d, junk, sizeof(junk)), DTLS_CONNECTED);
    assert_int_equal(dtls_timeout_ms(p.server.d), -1);
    pair_free(&p);
}

static void test_lost_flight_is_sent_again(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, NULL);
    dtls_start(p.client.d);
    /* The ClientHello is lost. */
    g_queue_clear_full(p.client.to_peer, (GDestroyNotify)g_bytes_unref);
    int ms = dtls_timeout_ms(p.client.d);
    assert_true(ms >= 0 && ms <= 250);
    g_usleep((gulong)(ms + 20) * 1000);
    assert_int_equal(dtls_handle_timeout(p.client.d), DTLS_HANDSHAKING);
    assert_false(g_queue_is_empty(p.client.to_peer)); /* sent again */
    pump(&p);
    assert_int_equal(dtls_state(p.server.d), DTLS_CONNECTED);
    assert_int_equal(dtls_state(p.client.d), DTLS_CONNECTED);
    pair_free(&p);
}

static void test_wrong_fingerprint_is_refused(void **state)
{
    (void)state;
    struct dtls_cert *stranger = dtls_cert_new();
    struct pair p;
    pair_init(&p, dtls_cert_fingerprint(stranger));
    dtls_start(p.client.d);
    pump(&p);
    assert_int_equal(dtls_state(p.server.d), DTLS_FAILED);
    assert_non_null(dtls_error(p.server.d));
    struct media_srtp_keys k;
    assert_false(dtls_srtp_keys(p.server.d, &k));
    pair_free(&p);
    dtls_cert_free(stranger);
}

/* An RTP packet: version 2, payload type 96, the given seq, then payload. */
static size_t rtp_packet(uint8_t *buf, uint16_t seq, const char *payload)
{
    const uint8_t hdr[12] = {0x80, 96, seq >> 8, seq & 0xff, 0, 0, 0x10, 0, 0x12, 0x34, 0x56, 0x78};
    memcpy(buf, hdr, sizeof(hdr));
    memcpy(buf + 12, payload, strlen(payload));
    return 12 + strlen(payload);
}

/* Both directions between two mirrored sets of keys. */
static void roundtrip(const struct media_srtp_keys *a_keys)
{
    struct media_srtp_keys b_keys = *a_keys;
    memcpy(b_keys.local_key, a_keys->remote_key, sizeof(b_keys.local_key));
    memcpy(b_keys.remote_key, a_keys->local_key, sizeof(b_keys.remote_key));
    memcpy(b_keys.local_salt, a_keys->remote_salt, sizeof(b_keys.local_salt));
    memcpy(b_keys.remote_salt, a_keys->local_salt, sizeof(b_keys.remote_salt));
    struct media_srtp *a = media_srtp_new(a_keys), *b = media_srtp_new(&b_keys);
    assert_non_null(a);
    assert_non_null(b);

    uint8_t buf[512], plain[512], copy[512];
    for (uint16_t seq = 1000; seq < 1010; seq++) {
        size_t len = rtp_packet(buf, seq, "a frame of video"), plain_len = len;
        memcpy(plain, buf, len);
        assert_int_equal(media_srtp_protect(a, buf, &len, sizeof(buf)), 0);
        assert_true(len > plain_len);
        assert_memory_not_equal(buf + 12, plain + 12, plain_len - 12); /* encrypted */
        memcpy(copy, buf, len);
        size_t copy_len = len;
        assert_int_equal(media_srtp_unprotect(b, buf, &len), 0);
        assert_int_equal(len, plain_len);
        assert_memory_equal(buf, plain, len);
        /* The same packet again is a replay. */
        len = copy_len;
        memcpy(buf, copy, len);
        assert_int_equal(media_srtp_unprotect(b, buf, &len), -1);
    }
    /* A forged packet (one bit of the payload flipped) is refused. */
    size_t len = rtp_packet(buf, 2000, "forged"), tail;
    assert_int_equal(media_srtp_protect(b, buf, &len, sizeof(buf)), 0);
    buf[14] ^= 1;
    tail = len;
    assert_int_equal(media_srtp_unprotect(a, buf, &tail), -1);
    /* No room for the tag: refused before libsrtp writes past the buffer. */
    len = rtp_packet(buf, 2001, "full");
    assert_int_equal(media_srtp_protect(b, buf, &len, len + 4), -1);

    /* RTCP: a receiver report. */
    const uint8_t rr[8] = {0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78};
    memcpy(buf, rr, sizeof(rr));
    len = sizeof(rr);
    assert_int_equal(media_srtp_protect_rtcp(b, buf, &len, sizeof(buf)), 0);
    assert_true(len > sizeof(rr));
    assert_int_equal(media_srtp_unprotect_rtcp(a, buf, &len), 0);
    assert_int_equal(len, sizeof(rr));
    assert_memory_equal(buf, rr, sizeof(rr));
    media_srtp_free(a);
    media_srtp_free(b);
}

static void test_srtp_with_handshake_keys(void **state)
{
    (void)state;
    struct pair p;
    pair_init(&p, NULL);
    dtls_start(p.client.d);
    pump(&p);
    struct media_srtp_keys sk, ck;
    assert_true(dtls_srtp_keys(p.server.d, &sk));
    assert_true(dtls_srtp_keys(p.client.d, &ck));
    roundtrip(&sk);
    /* And across the two real endpoints' own keys. */
    struct media_srtp *srv = media_srtp_new(&sk), *cli = media_srtp_new(&ck);
    uint8_t buf[256];
    size_t len = rtp_packet(buf, 7, "hello");
    assert_int_equal(media_srtp_protect(cli, buf, &len, sizeof(buf)), 0);
    assert_int_equal(media_srtp_unprotect(srv, buf, &len), 0);
    assert_memory_equal(buf + 12, "hello", 5);
    media_srtp_free(srv);
    media_srtp_free(cli);
    pair_free(&p);
}

static void test_every_profile(void **state)
{
    (void)state;
    enum media_srtp_profile all[] = {MEDIA_SRTP_AEAD_AES_256_GCM, MEDIA_SRTP_AEAD_AES_128_GCM,
                                     MEDIA_SRTP_AES128_CM_SHA1_80};
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
        struct media_srtp_keys k = {.profile = all[i]};
        const char *name = NULL;
        assert_true(media_srtp_profile_info(all[i], &name, &k.key_len, &k.salt_len));
        assert_non_null(strstr(media_srtp_profiles_offered(), name));
        for (size_t j = 0; j < sizeof(k.local_key); j++) {
            k.local_key[j] = (uint8_t)(j * 7 + 1);
            k.remote_key[j] = (uint8_t)(j * 11 + 3);
        }
        for (size_t j = 0; j < sizeof(k.local_salt); j++) {
            k.local_salt[j] = (uint8_t)(j * 13 + 5);
            k.remote_salt[j] = (uint8_t)(j * 17 + 9);
        }
        roundtrip(&k);
    }
    struct media_srtp_keys bad = {
        .profile = MEDIA_SRTP_AES128_CM_SHA1_80, .key_len = 32, .salt_len = 14};
    assert_null(media_srtp_new(&bad));
}

static void test_demux(void **state)
{
    (void)state;
    const uint8_t stun[] = {0x00}, dtls[] = {22}, rtp[] = {0x80}, turn[] = {0x40};
    assert_int_equal(media_demux(stun, 1), DEMUX_STUN);
    assert_int_equal(media_demux(dtls, 1), DEMUX_DTLS);
    assert_int_equal(media_demux(rtp, 1), DEMUX_RTP);
    assert_int_equal(media_demux(turn, 1), DEMUX_OTHER);
    assert_int_equal(media_demux(rtp, 0), DEMUX_OTHER);
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
        cmocka_unit_test(test_fingerprint_text),
        cmocka_unit_test(test_handshake_and_keys),
        cmocka_unit_test(test_lost_flight_is_sent_again),
        cmocka_unit_test(test_wrong_fingerprint_is_refused),
        cmocka_unit_test(test_srtp_with_handshake_keys),
        cmocka_unit_test(test_every_profile),
        cmocka_unit_test(test_demux),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
