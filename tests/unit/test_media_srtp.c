/* SRTP on OpenSSL (media/srtp_ossl.c) against libsrtp2's own ciphers.
 *
 * The process starts libsrtp2 without the replacements and makes sessions
 * with its own implementations (NSS on Debian), then installs the OpenSSL
 * ones and makes sessions with the same keys. For every profile the two
 * must write the very same bytes for the same packets, each must open
 * what the other sealed, and a packet changed in flight must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <srtp2/srtp.h>

#include "media/srtp.h"
#include "media/srtp_ossl.h"

enum { N_PROFILES = 3, N_PACKETS = 40, BUF = 1400 };

struct pair {
    struct media_srtp *a, *b; /* mirrored keys: a seals what b opens */
};

static struct pair stock[N_PROFILES];

static void make_keys(enum media_srtp_profile p, struct media_srtp_keys *a,
                      struct media_srtp_keys *b)
{
    memset(a, 0, sizeof(*a));
    assert_true(media_srtp_profile_info(p, NULL, &a->key_len, &a->salt_len));
    a->profile = p;
    for (size_t i = 0; i < MEDIA_SRTP_KEY_MAX; i++) {
        a->local_key[i] = (uint8_t)(17 * i + 5 + p);
        a->remote_key[i] = (uint8_t)(31 * i + 9);
    }
    for (size_t i = 0; i < MEDIA_SRTP_SALT_MAX; i++) {
        a->local_salt[i] = (uint8_t)(3 * i + 1);
        a->remote_salt[i] = (uint8_t)(0xf0 - 5 * i);
    }
    *b = *a;
    memcpy(b->local_key, a->remote_key, sizeof(b->local_key));
    memcpy(b->remote_key, a->local_key, sizeof(b->remote_key));
    memcpy(b->local_salt, a->remote_salt, sizeof(b->local_salt));
    memcpy(b->remote_salt, a->local_salt, sizeof(b->remote_salt));
}

static struct pair make_pair(enum media_srtp_profile p)
{
    struct media_srtp_keys ka, kb;
    make_keys(p, &ka, &kb);
    struct pair s = {media_srtp_new(&ka), media_srtp_new(&kb)};
    assert_non_null(s.a);
    assert_non_null(s.b);
    return s;
}

static void free_pair(struct pair *s)
{
    media_srtp_free(s->a);
    media_srtp_free(s->b);
}

/* RTP packet i: sizes from an empty payload to a full video packet, some
 * with a header extension, sequence numbers across a wrap (so the
 * rollover counter is in the IV and the MAC). */
static size_t rtp_packet(uint8_t *buf, int i)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 160, 1000, 1188};
    size_t payload = sizes[i % 8];
    uint16_t seq = (uint16_t)(65530 + i);
    uint32_t ts = 90000u + 3000u * (uint32_t)i, ssrc = 0x5eed0001;
    bool ext = i % 3 == 0;
    buf[0] = ext ? 0x90 : 0x80;
    buf[1] = 96 | (i % 4 == 3 ? 0x80 : 0);
    buf[2] = (uint8_t)(seq >> 8), buf[3] = (uint8_t)seq;
    for (int k = 0; k < 4; k++) {
        buf[4 + k] = (uint8_t)(ts >> (24 - 8 * k));
        buf[8 + k] = (uint8_t)(ssrc >> (24 - 8 * k));
    }
    size_t n = 12;
    if (ext) {
        const uint8_t x[8] = {0xbe, 0xde, 0, 1, 0x22, 0x01, 0x02, 0x03};
        memcpy(buf + n, x, sizeof(x));
        n += sizeof(x);
    }
    for (size_t k = 0; k < payload; k++)
        buf[n + k] = (uint8_t)(k * 7 + (size_t)i);
    return n + payload;
}

static size_t rtcp_packet(uint8_t *buf, int i)
{
    /* A sender report's header and sender info, then a PLI. */
    const uint8_t sr[28] = {0x80, 200, 0, 6, 0x5e, 0xed, 0, 1, 0xe0, 0, 0, 0, 0x10, 0,
                            0,    0,   0, 0, 0,    0,    0, 5, 0,    0, 0, 0, 0x10, 0};
    const uint8_t pli[12] = {0x81, 206, 0, 2, 0x5e, 0xed, 0, 1, 0x5e, 0xed, 0, 2};
    memcpy(buf, sr, sizeof(sr));
    buf[7] = (uint8_t)i;
    memcpy(buf + sizeof(sr), pli, sizeof(pli));
    return sizeof(sr) + sizeof(pli);
}

/* Seals or opens buf[0..*len) as SRTCP (rtcp) or SRTP: 0 or -1. */
static int seal(struct media_srtp *s, bool rtcp, uint8_t *buf, size_t *len, size_t cap)
{
    return rtcp ? media_srtp_protect_rtcp(s, buf, len, cap) : media_srtp_protect(s, buf, len, cap);
}

static int open_pkt(struct media_srtp *s, bool rtcp, uint8_t *buf, size_t *len)
{
    return rtcp ? media_srtp_unprotect_rtcp(s, buf, len) : media_srtp_unprotect(s, buf, len);
}

/* Opens a copy of the first len bytes of the n-byte packet src, with byte
 * flip (if below n) changed first. */
static int open_copy(struct media_srtp *s, bool rtcp, const uint8_t *src, size_t n, size_t len,
                     size_t flip)
{
    uint8_t buf[BUF];
    memcpy(buf, src, n);
    if (flip < n)
        buf[flip] ^= 0x10;
    return open_pkt(s, rtcp, buf, &len);
}

/* Seals packets with `from`, checks they are the bytes `expect` wrote
 * (when given), and that `to` opens them. */
static void seal_open(struct pair *from, struct pair *to, const uint8_t (*expect)[BUF],
                      const size_t *expect_len, uint8_t (*out)[BUF], size_t *out_len, bool rtcp)
{
    uint8_t buf[BUF], plain[BUF];
    for (int i = 0; i < N_PACKETS; i++) {
        size_t len = rtcp ? rtcp_packet(buf, i) : rtp_packet(buf, i), plain_len = len;
        memcpy(plain, buf, len);
        assert_int_equal(seal(from->a, rtcp, buf, &len, sizeof(buf)), 0);
        if (expect) {
            assert_int_equal(len, expect_len[i]);
            assert_memory_equal(buf, expect[i], len);
        }
        if (out) {
            memcpy(out[i], buf, len);
            out_len[i] = len;
        }
        assert_int_equal(open_pkt(to->b, rtcp, buf, &len), 0);
        assert_int_equal(len, plain_len);
        assert_memory_equal(buf, plain, len);
    }
}

static uint8_t sealed[N_PROFILES][2][N_PACKETS][BUF];
static size_t sealed_len[N_PROFILES][2][N_PACKETS];

/* Before the replacements: what libsrtp2's own write (and open). */
static int setup(void **state)
{
    (void)state;
    if (srtp_init() != srtp_err_status_ok)
        return -1;
    for (int p = 0; p < N_PROFILES; p++) {
        stock[p] = make_pair((enum media_srtp_profile)p);
        struct pair check = make_pair((enum media_srtp_profile)p);
        seal_open(&stock[p], &check, NULL, NULL, sealed[p][0], sealed_len[p][0], false);
        seal_open(&stock[p], &check, NULL, NULL, sealed[p][1], sealed_len[p][1], true);
        free_pair(&check);
        /* Fresh ones for the cross checks (the indexes start again). */
        free_pair(&stock[p]);
        stock[p] = make_pair((enum media_srtp_profile)p);
    }
    /* Every known-answer test of the replacements passes. */
    if (srtp_ossl_install() != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int p = 0; p < N_PROFILES; p++)
        free_pair(&stock[p]);
    srtp_shutdown();
    return srtp_ossl_live() == 0 ? 0 : -1; /* every OpenSSL instance freed */
}

/* The same keys and packets give the same bytes, and the stock sessions
 * open what the OpenSSL ones sealed. */
static void test_same_bytes_as_libsrtp(void **state)
{
    (void)state;
    for (int p = 0; p < N_PROFILES; p++) {
        int before = srtp_ossl_live();
        struct pair ours = make_pair((enum media_srtp_profile)p);
        assert_true(srtp_ossl_live() > before); /* they are OpenSSL's */
        seal_open(&ours, &stock[p], sealed[p][0], sealed_len[p][0], NULL, NULL, false);
        seal_open(&ours, &stock[p], sealed[p][1], sealed_len[p][1], NULL, NULL, true);
        free_pair(&ours);
    }
}

/* The OpenSSL sessions open what the stock ones sealed. */
static void test_opens_what_libsrtp_sealed(void **state)
{
    (void)state;
    for (int p = 0; p < N_PROFILES; p++) {
        struct pair ours = make_pair((enum media_srtp_profile)p);
        uint8_t buf[BUF], plain[BUF];
        for (int rtcp = 0; rtcp < 2; rtcp++)
            for (int i = 0; i < N_PACKETS; i++) {
                size_t len = sealed_len[p][rtcp][i];
                memcpy(buf, sealed[p][rtcp][i], len);
                assert_int_equal(open_pkt(ours.b, rtcp, buf, &len), 0);
                size_t plain_len = rtcp ? rtcp_packet(plain, i) : rtp_packet(plain, i);
                assert_int_equal(len, plain_len);     /* and opened right, not only */
                assert_memory_equal(buf, plain, len); /* authenticated */
            }
        free_pair(&ours);
    }
}

/* A bit flipped anywhere in a sealed packet (header, payload, tag) or a
 * packet cut short is refused; the session keeps working after. (Packet
 * 3: before the sequence numbers wrap, so a new receiver guesses its
 * rollover counter right.) */
static void test_changed_packets_refused(void **state)
{
    (void)state;
    for (int p = 0; p < N_PROFILES; p++) {
        struct pair ours = make_pair((enum media_srtp_profile)p);
        for (int rtcp = 0; rtcp < 2; rtcp++) {
            const uint8_t *pkt = sealed[p][rtcp][3];
            size_t n = sealed_len[p][rtcp][3];
            size_t where[] = {2, 12, n / 2, n - 1};
            for (size_t w = 0; w < 4; w++)
                assert_int_equal(open_copy(ours.b, rtcp, pkt, n, n, where[w]), -1);
            assert_int_equal(open_copy(ours.b, rtcp, pkt, n, n - 3, n), -1); /* cut short */
            assert_int_equal(open_copy(ours.b, rtcp, pkt, n, n, n), 0);
        }
        free_pair(&ours);
    }
}

/* media_srtp_init() installs them and says so; a transport's sessions
 * then hold OpenSSL instances, all freed with it. */
static void test_init_reports_openssl(void **state)
{
    (void)state;
    assert_string_equal(media_srtp_engine(), "none");
    assert_int_equal(media_srtp_init(), 0);
    assert_string_equal(media_srtp_engine(), "OpenSSL");
    int before = srtp_ossl_live();
    struct pair s = make_pair(MEDIA_SRTP_AES128_CM_SHA1_80);
    assert_true(srtp_ossl_live() > before);
    free_pair(&s);
    assert_int_equal(srtp_ossl_live(), before);
    media_srtp_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_libsrtp),
        cmocka_unit_test(test_opens_what_libsrtp_sealed),
        cmocka_unit_test(test_changed_packets_refused),
    };
    const struct CMUnitTest after[] = {
        cmocka_unit_test(test_init_reports_openssl),
    };
    int failed = cmocka_run_group_tests_name("against libsrtp2", tests, setup, teardown);
    return failed + cmocka_run_group_tests_name("media_srtp_init", after, NULL, NULL);
}
