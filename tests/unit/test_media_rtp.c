/* RTP and RTCP as the SFU reads and writes them: headers with CSRCs,
 * extensions of both forms and padding; malformed packets refused whole;
 * rewriting in place; compound RTCP with PLI, FIR and NACK read and
 * written; and the numbering a subscriber sees across a source switch. */
#include "media/rtcp_rr.h"
#include "media/rtp.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* V=2, P, X, CC=1, M, PT=111, seq 0x1234, ts 0x01020304, SSRC 0xAABBCCDD,
 * one CSRC, a one-byte extension block (id 1 "ab", padding, id 3 three
 * bytes), 4 bytes of payload, 2 of padding. */
static const uint8_t full[] = {
    0xB1, 0x80 | 111, 0x12, 0x34, 1,    2, 3, 4, 0xAA, 0xBB, 0xCC, 0xDD, 0, 0, 0, 9, /* CSRC */
    0xBE, 0xDE,       0,    2, /* extension: 2 words */
    0x11, 'a',        'b',  0,    0x32, 7, 8, 9, 'p',  'a',  'y',  '!',  0, 2};

static void test_parse_full_header(void **state)
{
    (void)state;
    struct rtp_header h;
    assert_int_equal(rtp_parse(full, sizeof(full), &h), 0);
    assert_true(h.marker);
    assert_int_equal(h.payload_type, 111);
    assert_int_equal(h.seq, 0x1234);
    assert_int_equal(h.ts, 0x01020304);
    assert_int_equal(h.ssrc, 0xAABBCCDD);
    assert_int_equal(h.csrc_count, 1);
    assert_int_equal(h.ext_profile, 0xBEDE);
    assert_int_equal(h.payload_len, 4);
    assert_memory_equal(full + h.payload_off, "pay!", 4);
    const uint8_t *v;
    size_t n;
    assert_true(rtp_ext_find(full, &h, 1, &v, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(v, "ab", 2);
    assert_true(rtp_ext_find(full, &h, 3, &v, &n));
    assert_int_equal(n, 3);
    assert_int_equal(v[0], 7);
    assert_false(rtp_ext_find(full, &h, 2, &v, &n));
    assert_false(rtp_is_rtcp(full, sizeof(full)));
}

static void test_two_byte_extension(void **state)
{
    (void)state;
    const uint8_t p[] = {0x90, 96, 0, 1,  0, 0,   0,   1,   0, 0, 0, 2,  0x10,
                         0x00, 0,  2, 20, 3, 'x', 'y', 'z', 0, 0, 0, 'P'};
    struct rtp_header h;
    assert_int_equal(rtp_parse(p, sizeof(p), &h), 0);
    const uint8_t *v;
    size_t n;
    assert_true(rtp_ext_find(p, &h, 20, &v, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(v, "xyz", 3);
    assert_int_equal(h.payload_len, 1);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    struct rtp_header h;
    uint8_t p[sizeof(full)];
    memcpy(p, full, sizeof(p));
    assert_int_equal(rtp_parse(p, 11, &h), -1); /* shorter than a header */
    p[0] = (p[0] & 0x3f) | 0x40;                /* version 1 */
    assert_int_equal(rtp_parse(p, sizeof(p), &h), -1);
    memcpy(p, full, sizeof(p));
    p[0] = (p[0] & 0xf0) | 0x0f; /* 15 CSRCs: past the end */
    assert_int_equal(rtp_parse(p, sizeof(p), &h), -1);
    memcpy(p, full, sizeof(p));
    p[19] = 40; /* extension longer than the packet */
    assert_int_equal(rtp_parse(p, sizeof(p), &h), -1);
    memcpy(p, full, sizeof(p));
    p[sizeof(p) - 1] = 0; /* padding of 0 */
    assert_int_equal(rtp_parse(p, sizeof(p), &h), -1);
    p[sizeof(p) - 1] = 200; /* padding longer than the payload */
    assert_int_equal(rtp_parse(p, sizeof(p), &h), -1);
    /* An element running past its block is not found, and nothing after. */
    memcpy(p, full, sizeof(p));
    p[24] = 0x3f; /* id 3, 16 bytes */
    assert_int_equal(rtp_parse(p, sizeof(p), &h), 0);
    const uint8_t *v;
    size_t n;
    assert_false(rtp_ext_find(p, &h, 3, &v, &n));
}

static void test_rewrite_in_place(void **state)
{
    (void)state;
    uint8_t p[sizeof(full)];
    memcpy(p, full, sizeof(p));
    rtp_set_seq(p, 0xFFFE);
    rtp_set_ts(p, 0xDEADBEEF);
    rtp_set_ssrc(p, 42);
    rtp_set_payload_type(p, 96);
    struct rtp_header h;
    assert_int_equal(rtp_parse(p, sizeof(p), &h), 0);
    assert_int_equal(h.seq, 0xFFFE);
    assert_int_equal(h.ts, 0xDEADBEEF);
    assert_int_equal(h.ssrc, 42);
    assert_int_equal(h.payload_type, 96);
    assert_true(h.marker); /* kept */
    assert_memory_equal(p + 12, full + 12, sizeof(full) - 12);
}

static void add_seq(uint16_t seq, void *ud)
{
    GArray *a = ud;
    g_array_append_val(a, seq);
}

static void test_rtcp_compound(void **state)
{
    (void)state;
    uint8_t buf[256];
    /* RR, then a PLI, a FIR and a NACK written by us. */
    const uint8_t rr[8] = {0x80, RTCP_RR, 0, 1, 0, 0, 0, 5};
    memcpy(buf, rr, sizeof(rr));
    size_t len = sizeof(rr);
    len += rtcp_write_pli(buf + len, sizeof(buf) - len, 1, 2);
    len += rtcp_write_fir(buf + len, sizeof(buf) - len, 1, 2, 9);
    const uint16_t lost[] = {65534, 65535, 0, 3, 20, 100};
    len += rtcp_write_nack(buf + len, sizeof(buf) - len, 1, 2, lost, G_N_ELEMENTS(lost));
    assert_true(rtp_is_rtcp(buf, len));

    size_t off = 0;
    struct rtcp_packet p;
    uint32_t sender, media;
    assert_true(rtcp_next(buf, len, &off, &p));
    assert_int_equal(p.type, RTCP_RR);
    assert_true(rtcp_next(buf, len, &off, &p));
    assert_int_equal(p.type, RTCP_PSFB);
    assert_int_equal(p.fmt, RTCP_FMT_PLI);
    assert_true(rtcp_fb_ssrcs(&p, &sender, &media));
    assert_int_equal(sender, 1);
    assert_int_equal(media, 2);
    assert_true(rtcp_next(buf, len, &off, &p));
    assert_int_equal(p.fmt, RTCP_FMT_FIR);
    assert_int_equal(p.body_len, 16);
    assert_int_equal(p.body[11], 2); /* the FCI names the stream */
    assert_int_equal(p.body[12], 9);
    assert_true(rtcp_next(buf, len, &off, &p));
    assert_int_equal(p.type, RTCP_RTPFB);
    /* 65534 with 65535, 0 and 3 in its mask (wrapping); 20; 100. */
    assert_int_equal(p.body_len, 8 + 3 * 4);
    GArray *got = g_array_new(FALSE, FALSE, sizeof(uint16_t));
    assert_int_equal(rtcp_nack_each(&p, add_seq, got), 6);
    assert_memory_equal(got->data, lost, sizeof(lost));
    g_array_free(got, TRUE);
    assert_int_equal(off, len);
    assert_false(rtcp_next(buf, len, &off, &p));

    /* A length field running past the datagram ends the walk. */
    buf[2] = 0x7f;
    off = 0;
    assert_false(rtcp_next(buf, len, &off, &p));
    /* Too small a buffer writes nothing. */
    assert_int_equal(rtcp_write_pli(buf, 11, 1, 2), 0);
    assert_int_equal(rtcp_write_nack(buf, 19, 1, 2, lost, G_N_ELEMENTS(lost)), 0);
}

/* REMB: written and read back, exponents as needed; short or lying
 * packets refused. */
static void test_remb(void **state)
{
    (void)state;
    uint8_t buf[64];
    uint32_t ssrcs[2] = {7, 8};
    static const uint64_t rates[] = {0, 1, 262143, 262144, 500000, 2500000, 1000000000ull};
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        size_t n = rtcp_write_remb(buf, sizeof(buf), 99, rates[i], ssrcs, 2);
        assert_int_equal(n, 28);
        size_t off = 0;
        struct rtcp_packet p;
        assert_true(rtcp_next(buf, n, &off, &p));
        uint64_t r = 0;
        assert_true(rtcp_remb_read(&p, &r));
        assert_true(r <= rates[i] && r >= rates[i] - rates[i] / 100000);
        p.body_len -= 4; /* claims two SSRCs, holds one */
        assert_false(rtcp_remb_read(&p, &r));
    }
    assert_int_equal(rtcp_write_remb(buf, 20, 99, 1000, ssrcs, 2), 0);
}

static void test_rewriter_across_a_switch(void **state)
{
    (void)state;
    struct rtp_rewriter r = {0};
    uint16_t s;
    uint32_t t;
    /* Source A from its own numbers. */
    rtp_rewrite(&r, 0xA, 100, 5000, 3000, &s, &t);
    assert_int_equal(s, 100);
    assert_int_equal(t, 5000);
    rtp_rewrite(&r, 0xA, 101, 8000, 3000, &s, &t);
    assert_int_equal(s, 101);
    /* A late packet keeps its number and does not move the end back. */
    rtp_rewrite(&r, 0xA, 99, 2000, 3000, &s, &t);
    assert_int_equal(s, 99);
    /* Source B, far-off numbers: continues at 102, one frame later. */
    rtp_rewrite(&r, 0xB, 40000, 123456, 3000, &s, &t);
    assert_int_equal(s, 102);
    assert_int_equal(t, 11000);
    rtp_rewrite(&r, 0xB, 40001, 126456, 3000, &s, &t);
    assert_int_equal(s, 103);
    assert_int_equal(t, 14000);
    /* Across the 16-bit wrap. */
    struct rtp_rewriter w = {0};
    rtp_rewrite(&w, 1, 65535, 0, 3000, &s, &t);
    rtp_rewrite(&w, 2, 7, 0, 3000, &s, &t);
    assert_int_equal(s, 0);
}

/* A report block written and read back. */
static struct rtcp_report_block round_trip(const struct rtcp_report_block *b)
{
    uint8_t buf[64];
    size_t n = rtcp_write_rr(buf, sizeof(buf), 77, b, 1);
    assert_int_equal(n, 32);
    assert_int_equal(rtcp_write_rr(buf, 31, 77, b, 1), 0); /* no room */
    size_t off = 0;
    struct rtcp_packet pkt;
    assert_true(rtcp_next(buf, n, &off, &pkt));
    struct rtcp_report_block back[2];
    assert_int_equal(rtcp_rr_read(&pkt, back, 2), 1);
    return back[0];
}

/* Losses, their fraction per interval, the sequence number wrap, a
 * restart and duplicates, as RFC 3550's appendix counts them. */
static void test_receiver_report_counts(void **state)
{
    (void)state;
    struct rtp_rx_stats s = {0};
    struct rtcp_report_block b;
    assert_false(rtp_rx_report(&s, 5, 0, &b)); /* nothing received */
    /* 65500 .. 65599 (wrapping at 65536), five of them lost */
    for (int i = 0; i < 100; i++)
        if (i % 20 != 7)
            rtp_rx_update(&s, (uint16_t)(65500 + i), 0, 0, 0);
    assert_true(rtp_rx_report(&s, 5, 0, &b));
    assert_int_equal(b.ssrc, 5);
    assert_int_equal(b.ext_max_seq, 65599);
    assert_int_equal(b.cumulative_lost, 5);
    assert_int_equal(b.fraction_lost, 5 * 256 / 100);
    /* the next hundred all arrive, one of them late: nothing lost this time */
    for (int i = 100; i < 200; i++)
        if (i != 150)
            rtp_rx_update(&s, (uint16_t)(65500 + i), 0, 0, 0);
    rtp_rx_update(&s, (uint16_t)(65500 + 150), 0, 0, 0);
    assert_true(rtp_rx_report(&s, 5, 0, &b));
    assert_int_equal(b.ext_max_seq, 65699);
    assert_int_equal(b.cumulative_lost, 5);
    assert_int_equal(b.fraction_lost, 0);
    /* duplicates: more received than expected, the count goes below zero */
    for (int i = 0; i < 10; i++)
        rtp_rx_update(&s, (uint16_t)(65500 + 199), 0, 0, 0);
    assert_true(rtp_rx_report(&s, 5, 0, &b));
    assert_int_equal(b.cumulative_lost, -5);
    assert_int_equal(b.fraction_lost, 0);
    struct rtcp_report_block r = round_trip(&b);
    assert_int_equal(r.cumulative_lost, -5);
    assert_int_equal(r.ext_max_seq, 65699);
    /* a jump far ahead: the sender started again */
    rtp_rx_update(&s, 30000, 0, 0, 0);
    rtp_rx_update(&s, 30002, 0, 0, 0);
    assert_true(rtp_rx_report(&s, 5, 0, &b));
    assert_int_equal(b.ext_max_seq, 30002);
    assert_int_equal(b.cumulative_lost, 1);
    assert_int_equal(b.fraction_lost, 256 / 3);
}

/* Jitter in the stream's clock units, and the round-trip fields of the
 * last sender report. */
static void test_receiver_report_timing(void **state)
{
    (void)state;
    struct rtp_rx_stats s = {0};
    struct rtcp_report_block b;
    /* audio at 48 kHz, a packet every 20 ms (960 units), on time */
    for (int i = 0; i < 50; i++)
        rtp_rx_update(&s, (uint16_t)i, 1000u + 960u * (uint32_t)i, 20000 * (int64_t)i, 48000);
    assert_true(rtp_rx_report(&s, 9, 0, &b));
    assert_int_equal(b.jitter, 0);
    /* then each packet 5 ms (240 units) early or late, in turn: the
     * estimate moves towards the mean deviation between packets (480) */
    for (int i = 50; i < 250; i++)
        rtp_rx_update(&s, (uint16_t)i, 1000u + 960u * (uint32_t)i,
                      20000 * (int64_t)i + (i % 2 ? 5000 : -5000), 48000);
    assert_true(rtp_rx_report(&s, 9, 0, &b));
    assert_in_range(b.jitter, 470, 480);
    assert_int_equal(b.lsr, 0);
    assert_int_equal(b.dlsr, 0);
    /* a sender report: NTP 0x00010002.00030004 -> LSR 0x00020003 */
    static const uint8_t sr[] = {0x80, 200, 0, 6, 0, 0, 0, 9, 0, 1, 0, 2, 0, 3,
                                 0,    4,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t off = 0;
    struct rtcp_packet pkt;
    assert_true(rtcp_next(sr, sizeof(sr), &off, &pkt));
    uint32_t ssrc, lsr;
    assert_true(rtcp_sr_read(&pkt, &ssrc, &lsr));
    assert_int_equal(ssrc, 9);
    assert_int_equal(lsr, 0x00020003);
    pkt.body_len = 20; /* cut short */
    assert_false(rtcp_sr_read(&pkt, &ssrc, &lsr));
    rtp_rx_sender_report(&s, lsr, 1000000);
    assert_true(rtp_rx_report(&s, 9, 1500000, &b)); /* half a second later */
    assert_int_equal(b.lsr, 0x00020003);
    assert_int_equal(b.dlsr, 32768);
    struct rtcp_report_block r = round_trip(&b);
    assert_int_equal(r.lsr, 0x00020003);
    assert_int_equal(r.dlsr, 32768);
    assert_int_equal(r.jitter, b.jitter);

    /* passed on as another stream's: its SSRC and timestamp, no blocks */
    static const uint8_t sr2[] = {0x81, 200, 0,  12,   0,    0,    0,    9,  0,  1,  0,  2,  0,
                                  3,    0,   4,  0xFF, 0xFF, 0xFF, 0xF0, 0,  0,  0,  50, 0,  0,
                                  0x10, 0,   1,  2,    3,    4,    5,    6,  7,  8,  9,  10, 11,
                                  12,   13,  14, 15,   16,   17,   18,   19, 20, 21, 22, 23, 24};
    off = 0;
    assert_true(rtcp_next(sr2, sizeof(sr2), &off, &pkt));
    uint8_t out[28];
    assert_int_equal(rtcp_sr_restamp(&pkt, 0xABCD, 0x20, out), 28);
    off = 0;
    struct rtcp_packet back;
    assert_true(rtcp_next(out, sizeof(out), &off, &back));
    assert_int_equal(back.fmt, 0);
    assert_int_equal(off, 28);
    assert_true(rtcp_sr_read(&back, &ssrc, &lsr));
    assert_int_equal(ssrc, 0xABCD);
    assert_int_equal(lsr, 0x00020003);
    assert_memory_equal(out + 8, sr2 + 8, 8);    /* NTP time */
    static const uint8_t ts[] = {0, 0, 0, 0x10}; /* 0xFFFFFFF0 + 0x20, wrapped */
    assert_memory_equal(out + 16, ts, 4);
    assert_memory_equal(out + 20, sr2 + 20, 8); /* counts */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full_header),
        cmocka_unit_test(test_two_byte_extension),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_rewrite_in_place),
        cmocka_unit_test(test_rtcp_compound),
        cmocka_unit_test(test_rewriter_across_a_switch),
        cmocka_unit_test(test_remb),
        cmocka_unit_test(test_receiver_report_counts),
        cmocka_unit_test(test_receiver_report_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
