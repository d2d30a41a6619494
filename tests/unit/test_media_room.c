/* A room of the SFU with two participants in this process, each a client
 * transport over real UDP sockets on 127.0.0.1: one offers and gets the
 * server's answer, the other gets the server's offer and answers it. What
 * one sends reaches the other with the server's SSRC, consecutive
 * sequence numbers, the payload type the receiver agreed and header
 * extensions made to fit; a PLI from the receiver reaches the sender; a
 * NACK is answered from the server's buffer; the receiver's REMB reaches
 * the sender; a participant leaving frees what it had. The server's SDPs
 * carry its UDP and passive TCP candidates, at the public address too. */
#include "media/room.h"
#include "media/rtcp_rr.h"
#include "media/rtp.h"
#include "media/sdp.h"
#include "media/srtp.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static const char *const lo[] = {"127.0.0.1", NULL};

/* A participant's device. */
struct device {
    struct dtls_cert *cert;
    struct media_transport *t;
    struct media_peer *peer;
    GPtrArray *cands; /* its candidates before the server knows it */
    enum media_transport_state state;
    GPtrArray *rtp, *rtcp; /* GBytes received */
};

static void dev_candidate(const char *cand, void *ud)
{
    struct device *d = ud;
    if (!d->peer) {
        g_ptr_array_add(d->cands, cand ? g_strdup(cand) : NULL);
        return;
    }
    assert_int_equal(media_peer_add_candidate(d->peer, cand), 0);
}

static void dev_state(enum media_transport_state s, const char *why, void *ud)
{
    (void)why;
    ((struct device *)ud)->state = s;
}

static void dev_rtp(uint8_t *pkt, size_t len, void *ud)
{
    g_ptr_array_add(((struct device *)ud)->rtp, g_bytes_new(pkt, len));
}

static void dev_rtcp(uint8_t *pkt, size_t len, void *ud)
{
    g_ptr_array_add(((struct device *)ud)->rtcp, g_bytes_new(pkt, len));
}

static const struct media_transport_callbacks dev_cb = {dev_candidate, dev_state, dev_rtp, dev_rtcp,
                                                        NULL};

static void dev_init(struct device *d)
{
    memset(d, 0, sizeof(*d));
    d->cert = dtls_cert_new();
    d->cands = g_ptr_array_new_with_free_func(g_free);
    d->rtp = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    d->rtcp = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    d->t = media_transport_new(NULL, MEDIA_TRANSPORT_CLIENT, d->cert, lo, false, &dev_cb, d);
    assert_non_null(d->t);
}

static void dev_clear(struct device *d)
{
    media_transport_free(d->t);
    dtls_cert_free(d->cert);
    g_ptr_array_free(d->cands, TRUE);
    g_ptr_array_free(d->rtp, TRUE);
    g_ptr_array_free(d->rtcp, TRUE);
}

/* The device's SDP, as a browser would write it (offer or answer). */
static char *dev_sdp(struct device *d, uint32_t audio_ssrc, uint32_t video_ssrc, bool answer)
{
    struct sdp_offer_section sec[2] = {
        {.kind = SDP_AUDIO,
         .mid = "0",
         .dir = SDP_SENDRECV,
         .codec = {.pt = 111, .name = "opus", .clock = 48000, .channels = 2, .apt = -1},
         .extmap_ids = {4, 2},
         .send = {.ssrc = audio_ssrc, .stream = "s", .track = "a"}},
        {.kind = SDP_VIDEO,
         .mid = "1",
         .dir = SDP_SENDRECV,
         .codec = {.pt = 96,
                   .name = "VP8",
                   .clock = 90000,
                   .channels = 1,
                   .fb = SDP_FB_NACK | SDP_FB_PLI | SDP_FB_REMB,
                   .apt = -1},
         .extmap_ids = {4, 2},
         .send = {.ssrc = video_ssrc, .stream = "s", .track = "v"}},
    };
    struct sdp_offer_params p = {.ice_ufrag = media_transport_ufrag(d->t),
                                 .ice_pwd = media_transport_pwd(d->t),
                                 .fingerprint = dtls_cert_fingerprint(d->cert),
                                 .session_id = 7,
                                 .sections = sec,
                                 .n_sections = 2};
    char *text = sdp_offer(&p);
    if (!answer)
        return text;
    GString *g = g_string_new(text);
    g_string_replace(g, "a=setup:actpass", "a=setup:active", 0);
    g_free(text);
    return g_string_free(g, FALSE);
}

/* Applies the server's SDP to the device: its credentials, fingerprint
 * and the candidates written in it; the SSRCs the server sends with. */
static void dev_take_server_sdp(struct device *d, const char *text, uint32_t ssrc[2])
{
    const char *why = NULL;
    struct sdp *s = sdp_parse(text, strlen(text), &why);
    assert_non_null(s);
    struct sdp_media *m0 = g_ptr_array_index(s->media, 0);
    assert_int_equal(
        media_transport_set_remote(d->t, m0->ice_ufrag, m0->ice_pwd, m0->fp_alg, m0->fp, &why), 0);
    for (int k = 0; k < 2; k++) {
        struct sdp_media *m = g_ptr_array_index(s->media, k);
        assert_int_equal(m->ssrcs->len, 1);
        ssrc[k] = g_array_index(m->ssrcs, uint32_t, 0);
    }
    sdp_free(s);
    char **lines = g_strsplit(text, "\r\n", -1);
    int n = 0;
    for (char **l = lines; *l; l++) {
        if (g_str_has_prefix(*l, "a=candidate:")) {
            assert_int_equal(media_transport_add_remote_candidate(d->t, *l + 2), 0);
            n++;
        }
    }
    assert_true(n > 0); /* the server's candidates are in its SDP */
    g_strfreev(lines);
    media_transport_remote_done(d->t);
}

static void dev_joined(struct device *d, struct media_peer *p)
{
    d->peer = p;
    for (guint i = 0; i < d->cands->len; i++)
        assert_int_equal(media_peer_add_candidate(p, g_ptr_array_index(d->cands, i)), 0);
}

static unsigned room_events;
static void room_state(struct media_peer *p, enum media_transport_state s, const char *why,
                       void *ud)
{
    (void)p;
    (void)s;
    (void)why;
    (void)ud;
    room_events++;
}

static void room_candidate(struct media_peer *p, const char *cand, void *ud)
{
    (void)p;
    (void)cand;
    (void)ud;
}

/* One turn of the loop, or a short sleep when nothing was ready. */
static void spin(void)
{
    if (!g_main_context_iteration(NULL, FALSE))
        g_usleep(1000);
}

static bool run_until(bool (*done)(void *), void *ud, int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    while (!done(ud) && g_get_monotonic_time() < end)
        spin();
    return done(ud);
}

static bool both_connected(void *ud)
{
    struct device *d = ud;
    return d[0].state == MEDIA_TRANSPORT_CONNECTED && d[1].state == MEDIA_TRANSPORT_CONNECTED &&
           media_peer_state(d[0].peer) == MEDIA_TRANSPORT_CONNECTED &&
           media_peer_state(d[1].peer) == MEDIA_TRANSPORT_CONNECTED;
}

static bool connected1(void *ud)
{
    struct device *d = ud;
    return d->state == MEDIA_TRANSPORT_CONNECTED &&
           media_peer_state(d->peer) == MEDIA_TRANSPORT_CONNECTED;
}

struct want {
    GPtrArray *arr;
    guint n;
};

static bool has_n(void *ud)
{
    struct want *w = ud;
    return w->arr->len >= w->n;
}

/* A video packet as a browser sends it, with MID and abs-send-time. */
static size_t video_packet(uint8_t *buf, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
    static const uint8_t hdr[] = {0x90, 96,  0, 0, 0,    0,    0, 0,
                                  0,    0,   0, 0, 0xBE, 0xDE, 0, 2, /* two words of extensions */
                                  0x40, '1',                         /* id 4 (mid) "1" */
                                  0x22, 1,   2, 3,                   /* id 2 (abs-send-time) */
                                  0,    0};
    memcpy(buf, hdr, sizeof(hdr));
    rtp_set_seq(buf, seq);
    rtp_set_ts(buf, ts);
    rtp_set_ssrc(buf, ssrc);
    for (int i = 0; i < 100; i++)
        buf[sizeof(hdr) + i] = (uint8_t)(seq + i);
    return sizeof(hdr) + 100;
}

/* Calls fn for every RTCP packet d received, in order. */
static void each_rtcp(struct device *d, void (*fn)(const struct rtcp_packet *pkt, void *ud),
                      void *ud)
{
    for (guint i = 0; i < d->rtcp->len; i++) {
        gsize len;
        const uint8_t *p = g_bytes_get_data(g_ptr_array_index(d->rtcp, i), &len);
        size_t off = 0;
        struct rtcp_packet pkt;
        while (rtcp_next(p, len, &off, &pkt))
            fn(&pkt, ud);
    }
}

struct fb_count {
    uint8_t type, fmt;
    unsigned n;
    uint32_t media;
    uint64_t remb;
};

static void count_one_fb(const struct rtcp_packet *pkt, void *ud)
{
    struct fb_count *c = ud;
    uint32_t s, m;
    if (pkt->type != c->type || pkt->fmt != c->fmt || !rtcp_fb_ssrcs(pkt, &s, &m))
        return;
    c->n++;
    c->media = m;
    if (c->type == RTCP_PSFB && c->fmt == RTCP_FMT_REMB)
        assert_true(rtcp_remb_read(pkt, &c->remb));
}

/* The RTCP packets of type/fmt d received, and the media SSRC of the last. */
static unsigned count_fb(struct device *d, uint8_t type, uint8_t fmt, uint32_t *media,
                         uint64_t *remb)
{
    struct fb_count c = {.type = type, .fmt = fmt};
    each_rtcp(d, count_one_fb, &c);
    if (media && c.n)
        *media = c.media;
    if (remb && c.n)
        *remb = c.remb;
    return c.n;
}

static void count_seq(uint16_t seq, void *ud)
{
    uint16_t *want = ud;
    if (seq == want[0])
        want[1]++;
}

static void count_nacked(const struct rtcp_packet *pkt, void *ud)
{
    rtcp_nack_each(pkt, count_seq, ud);
}

/* How many NACKs d received that ask for seq. */
static unsigned nacks_for(struct device *d, uint16_t seq)
{
    uint16_t want[2] = {seq, 0};
    each_rtcp(d, count_nacked, want);
    return want[1];
}

struct report_find {
    uint32_t ssrc;
    bool found;
    struct rtcp_report_block b;
};

static void find_report(const struct rtcp_packet *pkt, void *ud)
{
    struct report_find *f = ud;
    struct rtcp_report_block blocks[4];
    int n = rtcp_rr_read(pkt, blocks, 4);
    for (int k = 0; k < n; k++)
        if (blocks[k].ssrc == f->ssrc) {
            f->b = blocks[k];
            f->found = true;
        }
}

/* The last receiver report block d got about ssrc, into b; false if none. */
static bool last_report(struct device *d, uint32_t ssrc, struct rtcp_report_block *b)
{
    struct report_find f = {.ssrc = ssrc};
    each_rtcp(d, find_report, &f);
    if (f.found)
        *b = f.b;
    return f.found;
}

static bool pli_arrived(void *ud)
{
    return count_fb(ud, RTCP_PSFB, RTCP_FMT_PLI, NULL, NULL) > 0;
}

static bool remb_arrived(void *ud)
{
    uint32_t m = 0;
    uint64_t rate = 0;
    unsigned n = count_fb(ud, RTCP_PSFB, RTCP_FMT_REMB, &m, &rate);
    return n > 0 && rate <= 500000;
}

struct sr_find {
    uint32_t ssrc;
    bool found;
    uint32_t lsr, ts;
};

static void find_sr(const struct rtcp_packet *pkt, void *ud)
{
    struct sr_find *f = ud;
    uint32_t ssrc, lsr;
    if (rtcp_sr_read(pkt, &ssrc, &lsr) && ssrc == f->ssrc) {
        f->found = true;
        f->lsr = lsr;
        f->ts = (uint32_t)pkt->body[12] << 24 | (uint32_t)pkt->body[13] << 16 |
                (uint32_t)pkt->body[14] << 8 | pkt->body[15];
    }
}

struct sr_wait {
    struct device *d;
    uint32_t ssrc;
};

static bool sender_report_arrived(void *ud)
{
    struct sr_wait *w = ud;
    struct sr_find f = {.ssrc = w->ssrc};
    each_rtcp(w->d, find_sr, &f);
    return f.found;
}

static bool video_report_arrived(void *ud)
{
    struct rtcp_report_block b;
    return last_report(ud, 2222, &b);
}

static void test_two_participants(void **state)
{
    (void)state;
    struct dtls_cert *cert = dtls_cert_new();
    struct media_room_config cfg = {.cert = cert, .addresses = lo, .record_dir = NULL};
    struct media_room_callbacks rcb = {room_state, room_candidate, NULL};
    struct media_room *room = media_room_new(&cfg, &rcb, NULL);
    assert_non_null(room);
    const char *why = NULL;
    char *offer = NULL;

    /* The server can offer nothing before the first participant. */
    assert_null(media_room_offer(room, &offer, &why));
    assert_non_null(why);

    struct device d[2];
    dev_init(&d[0]);
    dev_init(&d[1]);
    uint32_t to_a[2], to_b[2];

    /* A offers; the server answers. */
    assert_int_equal(media_transport_gather(d[0].t), 0);
    char *a_offer = dev_sdp(&d[0], 1111, 2222, false);
    char *answer = NULL;
    struct media_peer *pa = media_room_answer(room, a_offer, strlen(a_offer), true, &answer, &why);
    assert_non_null(pa);
    assert_non_null(strstr(answer, "a=setup:passive"));
    dev_take_server_sdp(&d[0], answer, to_a);
    dev_joined(&d[0], pa);

    /* The server offers to B with the room's codecs; B answers. */
    struct media_peer *pb = media_room_offer(room, &offer, &why);
    assert_non_null(pb);
    assert_non_null(strstr(offer, "a=setup:actpass"));
    assert_non_null(strstr(offer, "a=rtpmap:96 VP8/90000"));
    assert_non_null(strstr(offer, "a=rtpmap:111 opus/48000/2"));
    media_transport_set_ice_controlling(d[1].t, false);
    dev_take_server_sdp(&d[1], offer, to_b);
    char *b_answer = dev_sdp(&d[1], 3333, 4444, true);
    /* An answer that does not take setup:active is refused. */
    assert_int_equal(media_peer_set_answer(pb, a_offer, strlen(a_offer), &why), -1);
    assert_int_equal(media_peer_set_answer(pb, b_answer, strlen(b_answer), &why), 0);
    assert_int_equal(media_transport_gather(d[1].t), 0);
    dev_joined(&d[1], pb);
    assert_int_equal(media_room_size(room), 2);

    assert_true(run_until(both_connected, d, 10000));

    /* A's video reaches B, rewritten. */
    uint8_t buf[1500];
    gint64 end_wait;
    for (int i = 0; i < 10; i++) {
        size_t n = video_packet(buf, (uint16_t)(65530 + i), 1000u + 3000u * i, 2222);
        assert_int_equal(media_transport_send_rtp(d[0].t, buf, n), 0);
    }
    struct want w = {d[1].rtp, 10};
    assert_true(run_until(has_n, &w, 3000));
    uint16_t first_seq = 0;
    for (guint i = 0; i < 10; i++) {
        gsize len;
        const uint8_t *p = g_bytes_get_data(g_ptr_array_index(d[1].rtp, i), &len);
        struct rtp_header h;
        assert_int_equal(rtp_parse(p, len, &h), 0);
        assert_int_equal(h.ssrc, to_b[1]);
        assert_int_equal(h.payload_type, 96);
        if (i == 0)
            first_seq = h.seq;
        assert_int_equal(h.seq, (uint16_t)(first_seq + i));
        assert_int_equal(h.payload_len, 100);
        assert_int_equal(p[h.payload_off], (uint8_t)(65530 + i));
        const uint8_t *ext;
        size_t elen;
        assert_false(rtp_ext_find(p, &h, 4, &ext, &elen)); /* A's mid is not B's */
        assert_true(rtp_ext_find(p, &h, 2, &ext, &elen));  /* restamped */
        assert_int_equal(elen, 3);
    }
    /* Forwarding A's first packet asked A for a key frame. */
    assert_true(run_until(pli_arrived, &d[0], 2000));
    uint32_t media = 0;
    unsigned plis = count_fb(&d[0], RTCP_PSFB, RTCP_FMT_PLI, &media, NULL);
    assert_int_equal(media, 2222);

    /* B asks for the third packet again: the server sends what it holds
     * (B's SRTP drops it as a replay, since it did get it) and counts
     * what it no longer has. */
    struct media_stats before, st;
    media_stats_get(&before);
    uint16_t lost[2] = {(uint16_t)(first_seq + 2), (uint16_t)(first_seq + 300)};
    size_t n = rtcp_write_nack(buf, sizeof(buf), 4444, to_b[1], lost, 2);
    assert_int_equal(media_transport_send_rtcp(d[1].t, buf, n), 0);
    end_wait = g_get_monotonic_time() + 2000 * 1000;
    do {
        spin();
        media_stats_get(&st);
    } while ((st.nack_resent == before.nack_resent || st.nack_missed == before.nack_missed) &&
             g_get_monotonic_time() < end_wait);
    assert_int_equal(st.nack_resent, before.nack_resent + 1);
    assert_int_equal(st.nack_missed, before.nack_missed + 1);

    /* B's PLI reaches A (once the 300 ms limit has passed). */
    g_usleep(350 * 1000);
    n = rtcp_write_pli(buf, sizeof(buf), 4444, to_b[1]);
    assert_int_equal(media_transport_send_rtcp(d[1].t, buf, n), 0);
    end_wait = g_get_monotonic_time() + 2000 * 1000;
    while (count_fb(&d[0], RTCP_PSFB, RTCP_FMT_PLI, NULL, NULL) == plis &&
           g_get_monotonic_time() < end_wait)
        spin();
    assert_int_equal(count_fb(&d[0], RTCP_PSFB, RTCP_FMT_PLI, NULL, NULL), plis + 1);

    /* B's estimate reaches A within the next REMB round. */
    n = rtcp_write_remb(buf, sizeof(buf), 4444, 500000, &to_b[1], 1);
    assert_int_equal(media_transport_send_rtcp(d[1].t, buf, n), 0);
    assert_true(run_until(remb_arrived, &d[0], 3000));

    /* A gets receiver reports on what it sends: its ten video packets,
     * none lost, the highest sequence number counted across the wrap. */
    assert_true(run_until(video_report_arrived, &d[0], 3000));
    struct rtcp_report_block rb;
    assert_true(last_report(&d[0], 2222, &rb));
    assert_int_equal(rb.ext_max_seq, 65536 + 3);
    assert_int_equal(rb.cumulative_lost, 0);
    assert_int_equal(rb.fraction_lost, 0);
    assert_int_equal(rb.lsr, 0); /* A sent no sender report */

    /* A's sender report reaches B as a report of the stream B gets. */
    static const uint8_t sr[] = {0x80, 200, 0, 6, 0,    0,    0x08, 0xAE, 0, 1,  0, 2, 0,    3,
                                 0,    4,   0, 0, 0x0B, 0xB8, 0,    0,    0, 10, 0, 0, 0x03, 0xE8};
    assert_int_equal(media_transport_send_rtcp(d[0].t, sr, sizeof(sr)), 0); /* SSRC 2222 */
    struct sr_wait sw = {&d[1], to_b[1]};
    assert_true(run_until(sender_report_arrived, &sw, 3000));
    struct sr_find f = {.ssrc = to_b[1]};
    each_rtcp(&d[1], find_sr, &f);
    assert_int_equal(f.lsr, 0x00020003);
    /* A's first packet was sent at its own timestamp: the mapping moves none */
    assert_int_equal(f.ts, 0x0BB8);
    assert_true(run_until(video_report_arrived, &d[0], 3000));
    struct rtcp_report_block rb2;
    end_wait = g_get_monotonic_time() + 3000 * 1000;
    while ((!last_report(&d[0], 2222, &rb2) || rb2.lsr != 0x00020003) &&
           g_get_monotonic_time() < end_wait)
        spin();
    assert_int_equal(rb2.lsr, 0x00020003); /* the next report echoes it */

    /* B's audio reaches A with the SSRC the server announced to A. */
    static const uint8_t audio[] = {0x80, 111, 0, 1, 0, 0, 0, 9, 0, 0, 0x0d, 0x05, 1, 2, 3};
    assert_int_equal(media_transport_send_rtp(d[1].t, audio, sizeof(audio)), 0);
    w.arr = d[0].rtp;
    w.n = 1;
    assert_true(run_until(has_n, &w, 3000));
    gsize len;
    const uint8_t *p = g_bytes_get_data(g_ptr_array_index(d[0].rtp, 0), &len);
    struct rtp_header h;
    assert_int_equal(rtp_parse(p, len, &h), 0);
    assert_int_equal(h.ssrc, to_a[0]);
    assert_int_equal(h.payload_type, 111);

    media_stats_get(&st);
    assert_true(st.rtp_out >= 11 && st.nack_resent >= 1 && st.keyframe_requests >= 2);
    assert_int_equal(st.peers, 2);

    /* A viewer joins: it gets A's video with its own SSRC, and what it
     * sends goes nowhere. */
    struct device v;
    dev_init(&v);
    assert_int_equal(media_transport_gather(v.t), 0);
    char *v_offer = dev_sdp(&v, 5555, 6666, false);
    char *v_answer = NULL;
    struct media_peer *pv =
        media_room_answer(room, v_offer, strlen(v_offer), false, &v_answer, &why);
    assert_non_null(pv);
    assert_non_null(strstr(v_answer, "a=sendonly"));
    assert_null(strstr(v_answer, "a=sendrecv"));
    uint32_t to_v[2];
    dev_take_server_sdp(&v, v_answer, to_v);
    dev_joined(&v, pv);
    struct device *vp = &v;
    assert_true(run_until(connected1, vp, 10000));
    guint b_had = d[1].rtp->len;
    for (int i = 0; i < 5; i++) {
        size_t n2 = video_packet(buf, (uint16_t)(4 + i), 40000u + 3000u * i, 2222);
        assert_int_equal(media_transport_send_rtp(d[0].t, buf, n2), 0);
        n2 = video_packet(buf, (uint16_t)(500 + i), 3000u * i, 6666);
        assert_int_equal(media_transport_send_rtp(v.t, buf, n2), 0);
    }
    w.arr = v.rtp;
    w.n = 5;
    assert_true(run_until(has_n, &w, 3000));
    w.arr = d[1].rtp;
    w.n = b_had + 5;
    assert_true(run_until(has_n, &w, 3000));
    for (guint i = 0; i < v.rtp->len; i++) {
        p = g_bytes_get_data(g_ptr_array_index(v.rtp, i), &len);
        assert_int_equal(rtp_parse(p, len, &h), 0);
        assert_int_equal(h.ssrc, to_v[1]);
    }
    for (int i = 0; i < 20; i++)
        spin();
    for (guint i = b_had; i < d[1].rtp->len; i++) {
        p = g_bytes_get_data(g_ptr_array_index(d[1].rtp, i), &len);
        assert_int_equal(rtp_parse(p, len, &h), 0);
        assert_in_range(p[h.payload_off], 4, 8); /* A's packets, none of the viewer's */
    }
    assert_int_equal(d[1].rtp->len, b_had + 5);
    media_peer_remove(pv);
    dev_clear(&v);
    g_free(v_offer);
    g_free(v_answer);

    /* Two of A's packets are lost on the way. The server asks for both at
     * once; 11 comes back after the first ask and is not asked for again;
     * 10 is asked for every 40 ms, four times in all, while A's video goes
     * on, then given up, and A is asked for a key frame. */
    media_stats_get(&before);
    plis = count_fb(&d[0], RTCP_PSFB, RTCP_FMT_PLI, NULL, NULL);
    bool resent11 = false;
    end_wait = g_get_monotonic_time() + 3000 * 1000;
    for (uint16_t seq = 9; g_get_monotonic_time() < end_wait; seq++) {
        if (seq != 10 && seq != 11) {
            n = video_packet(buf, seq, 60000u + 3000u * seq, 2222);
            assert_int_equal(media_transport_send_rtp(d[0].t, buf, n), 0);
        }
        if (!resent11 && nacks_for(&d[0], 11) == 1) {
            n = video_packet(buf, 11, 60000u + 3000u * 11, 2222);
            assert_int_equal(media_transport_send_rtp(d[0].t, buf, n), 0);
            resent11 = true;
        }
        gint64 next = g_get_monotonic_time() + 10 * 1000;
        while (g_get_monotonic_time() < next)
            spin();
        if (count_fb(&d[0], RTCP_PSFB, RTCP_FMT_PLI, NULL, NULL) > plis)
            break;
    }
    assert_true(resent11);
    assert_int_equal(count_fb(&d[0], RTCP_PSFB, RTCP_FMT_PLI, NULL, NULL), plis + 1);
    assert_int_equal(nacks_for(&d[0], 10), 4);
    assert_int_equal(nacks_for(&d[0], 11), 1);
    media_stats_get(&st);
    assert_int_equal(st.nack_unrepaired, before.nack_unrepaired + 1);
    assert_int_equal(st.nack_sent, before.nack_sent + 5);

    /* A leaves; the room goes on with B. */
    media_peer_remove(pa);
    d[0].peer = NULL;
    assert_int_equal(media_room_size(room), 1);
    assert_true(room_events >= 2);
    media_room_free(room);
    media_stats_get(&st);
    assert_int_equal(st.peers, 0);
    dev_clear(&d[0]);
    dev_clear(&d[1]);
    dtls_cert_free(cert);
    g_free(a_offer);
    g_free(b_answer);
    g_free(answer);
    g_free(offer);
}

/* Offers the server cannot take are refused with a reason, and leave
 * nothing behind. */
static void test_refused(void **state)
{
    (void)state;
    struct dtls_cert *cert = dtls_cert_new();
    struct media_room_config cfg = {.cert = cert, .addresses = lo, .record_dir = NULL};
    struct media_room_callbacks rcb = {room_state, room_candidate, NULL};
    struct media_room *room = media_room_new(&cfg, &rcb, NULL);
    const char *why = NULL;
    char *answer = NULL;
    const char *pcmu = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=rtcp-mux\r\n"
                       "a=ice-ufrag:uf\r\na=ice-pwd:pwpwpwpwpwpwpwpwpwpwpwpw\r\n"
                       "a=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n"
                       "a=rtpmap:0 PCMU/8000\r\n";
    assert_null(media_room_answer(room, pcmu, strlen(pcmu), true, &answer, &why));
    assert_non_null(strstr(why, "Opus"));
    assert_null(media_room_answer(room, "garbage", 7, true, &answer, &why));
    assert_non_null(why);
    assert_null(answer);
    assert_int_equal(media_room_size(room), 0);
    media_room_free(room);
    dtls_cert_free(cert);
}

/* Thousands of participants come and go (viewers and those offered
 * to): the room frees all they had (LeakSanitizer checks the sanitized
 * build) and stays usable. */
static void test_many_joins_and_leaves(void **state)
{
    (void)state;
    struct dtls_cert *cert = dtls_cert_new();
    struct media_room_config cfg = {.cert = cert, .addresses = lo, .record_dir = NULL};
    struct media_room_callbacks rcb = {room_state, room_candidate, NULL};
    struct media_room *room = media_room_new(&cfg, &rcb, NULL);
    struct device d;
    dev_init(&d);
    char *offer = dev_sdp(&d, 1, 2, false);
    char *answer = NULL;
    const char *why = NULL;
    struct media_peer *first = media_room_answer(room, offer, strlen(offer), true, &answer, &why);
    assert_non_null(first);
    g_free(answer);
    for (int i = 0; i < 2000; i++) {
        char *sdp = NULL;
        struct media_peer *p =
            i % 2 ? media_room_answer(room, offer, strlen(offer), false, &sdp, &why)
                  : media_room_offer(room, &sdp, &why);
        assert_non_null(p);
        assert_non_null(sdp);
        g_free(sdp);
        if (i % 3 == 0) {
            char *more = media_peer_offer_more(first, &why);
            g_free(more); /* fails once one is waiting: fine */
        }
        media_peer_remove(p);
        spin();
    }
    assert_int_equal(media_room_size(room), 1);
    struct media_stats st;
    media_stats_get(&st);
    assert_int_equal(st.peers, 1);
    media_room_free(room);
    dev_clear(&d);
    g_free(offer);
    dtls_cert_free(cert);
}

/* The candidate lines of the first section of a server SDP (split into
 * fields), and how many are TCP. */
static GPtrArray *server_candidates(const char *sdp, unsigned *tcp)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    char **lines = g_strsplit(sdp, "\r\n", -1);
    *tcp = 0;
    for (char **l = lines; *l && !g_str_has_prefix(*l, "a=end-of-candidates"); l++) {
        if (!g_str_has_prefix(*l, "a=candidate:"))
            continue;
        char **f = g_strsplit(*l + 2, " ", -1);
        assert_true(g_strv_length(f) >= 8);
        if (g_ascii_strcasecmp(f[2], "tcp") == 0)
            (*tcp)++;
        g_ptr_array_add(out, f);
    }
    g_strfreev(lines);
    return out;
}

/* With ICE-TCP the server's SDPs (answer and offer) list a passive TCP
 * host candidate next to each UDP one, ranked below every UDP one, and
 * never an active one (the server opens no connection); behind a 1:1 NAT
 * each is announced at the public address too, same port and tcptype. A
 * device's client transport takes them all. Without ICE-TCP: UDP only. */
static void test_server_candidates_over_udp_and_tcp(void **state)
{
    (void)state;
    struct dtls_cert *cert = dtls_cert_new();
    struct media_room_config cfg = {
        .cert = cert, .addresses = lo, .public_ip = "203.0.113.7", .ice_tcp = true};
    struct media_room_callbacks rcb = {room_state, room_candidate, NULL};
    struct media_room *room = media_room_new(&cfg, &rcb, NULL);
    struct device d;
    dev_init(&d);
    char *offer = dev_sdp(&d, 1, 2, false);
    char *sdp[2] = {NULL, NULL};
    const char *why = NULL;
    assert_non_null(media_room_answer(room, offer, strlen(offer), true, &sdp[0], &why));
    assert_non_null(media_room_offer(room, &sdp[1], &why));
    struct dtls_cert *dc = dtls_cert_new();
    struct media_transport *client =
        media_transport_new(NULL, MEDIA_TRANSPORT_CLIENT, dc, lo, true, &dev_cb, &d);
    assert_int_equal(media_transport_set_remote(client, "u", "p", "sha-256", "00", &why), 0);
    for (int k = 0; k < 2; k++) {
        unsigned tcp = 0;
        GPtrArray *c = server_candidates(sdp[k], &tcp);
        assert_int_equal(c->len, 4); /* UDP and TCP, local and public */
        assert_int_equal(tcp, 2);
        unsigned long udp_min = G_MAXULONG, tcp_max = 0;
        for (guint i = 0; i < c->len; i++) {
            char **f = g_ptr_array_index(c, i);
            unsigned long prio = strtoul(f[3], NULL, 10);
            bool is_tcp = g_ascii_strcasecmp(f[2], "tcp") == 0;
            assert_string_equal(f[7], "host");
            if (is_tcp) {
                assert_int_equal(g_strv_length(f), 10);
                assert_string_equal(f[8], "tcptype");
                assert_string_equal(f[9], "passive");
                tcp_max = MAX(tcp_max, prio);
            } else {
                udp_min = MIN(udp_min, prio);
            }
            /* The public twin: same transport and port, one below. */
            bool twin = false;
            for (guint j = 0; j < c->len; j++) {
                char **g = g_ptr_array_index(c, j);
                if (strcmp(f[4], "127.0.0.1") == 0 && strcmp(g[4], "203.0.113.7") == 0 &&
                    strcmp(f[2], g[2]) == 0 && strcmp(f[5], g[5]) == 0 &&
                    strtoul(g[3], NULL, 10) == prio - 1 && g_strv_length(f) == g_strv_length(g))
                    twin = true;
            }
            assert_true(twin || strcmp(f[4], "203.0.113.7") == 0);
            char *line = g_strjoinv(" ", f);
            assert_int_equal(media_transport_add_remote_candidate(client, line), 0);
            g_free(line);
        }
        assert_true(tcp_max < udp_min);
        g_ptr_array_free(c, TRUE);
        g_free(sdp[k]);
    }
    media_transport_free(client);
    dtls_cert_free(dc);
    media_room_free(room);

    /* ICE-TCP off: UDP candidates only. */
    cfg.ice_tcp = false;
    room = media_room_new(&cfg, &rcb, NULL);
    assert_non_null(media_room_answer(room, offer, strlen(offer), true, &sdp[0], &why));
    unsigned tcp = 0;
    GPtrArray *c = server_candidates(sdp[0], &tcp);
    assert_int_equal(c->len, 2);
    assert_int_equal(tcp, 0);
    g_ptr_array_free(c, TRUE);
    g_free(sdp[0]);
    media_room_free(room);
    dev_clear(&d);
    g_free(offer);
    dtls_cert_free(cert);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_participants),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_server_candidates_over_udp_and_tcp),
        cmocka_unit_test(test_many_joins_and_leaves),
    };
    if (media_srtp_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
