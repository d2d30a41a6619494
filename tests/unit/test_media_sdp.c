/* SDP: a browser's BUNDLE offer read section by section (codecs with
 * their fmtp and rtcp-fb, header extensions, SSRCs, ICE and DTLS values
 * inherited from the session level); the codec the server takes (Opus,
 * VP8 before H.264, H.264 only in constrained baseline with
 * packetization-mode 1); the answer (mirrored directions, the offer's
 * payload types and extension ids, passive setup, rejected sections at
 * port 0) read back by the same parser; and bad offers refused. */
#include "media/sdp.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static const char offer[] =
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1 2\r\n"
    "a=ice-ufrag:sessU\r\n"
    "a=ice-pwd:sessionpasswordsessionpw\r\n"
    "a=fingerprint:sha-256 "
    "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:"
    "99\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 0\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:audU\r\n"
    "a=ice-pwd:audiopasswordaudiopasswd\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=sendrecv\r\n"
    "a=msid:stream track-a\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=ssrc:1111 cname:abc\r\n"
    "a=ssrc:1111 msid:stream track-a\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=setup:actpass\r\n"
    "a=mid:1\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=sendonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 goog-remb\r\n"
    "a=rtcp-fb:96 transport-cc\r\n"
    "a=rtcp-fb:96 ccm fir\r\n"
    "a=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=rtcp-fb:102 nack\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=rtpmap:103 rtx/90000\r\n"
    "a=fmtp:103 apt=102\r\n"
    "a=rtpmap:45 AV1/90000\r\n"
    "a=ssrc-group:FID 2222 3333\r\n"
    "a=ssrc:2222 cname:abc\r\n"
    "a=ssrc:3333 cname:abc\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=mid:2\r\n"
    "a=sctp-port:5000\r\n";

static void test_parse_offer(void **state)
{
    (void)state;
    const char *why = NULL;
    struct sdp *s = sdp_parse(offer, strlen(offer), &why);
    assert_non_null(s);
    assert_null(why);
    assert_true(s->bundle);
    assert_int_equal(s->media->len, 3);
    struct sdp_media *a = g_ptr_array_index(s->media, 0), *v = g_ptr_array_index(s->media, 1);
    assert_int_equal(a->kind, SDP_AUDIO);
    assert_string_equal(a->mid, "0");
    assert_string_equal(a->ice_ufrag, "audU");  /* its own */
    assert_string_equal(v->ice_ufrag, "sessU"); /* inherited */
    assert_string_equal(v->fp_alg, "sha-256");
    assert_int_equal(strlen(v->fp), 95);
    assert_string_equal(v->setup, "actpass");
    assert_true(a->rtcp_mux && v->rtcp_mux);
    assert_int_equal(v->dir, SDP_SENDONLY);
    assert_int_equal(a->codecs->len, 3);
    assert_int_equal(v->codecs->len, 5);
    const struct sdp_codec *opus = sdp_pick_codec(a);
    assert_non_null(opus);
    assert_int_equal(opus->pt, 111);
    assert_int_equal(opus->channels, 2);
    assert_string_equal(opus->fmtp, "minptime=10;useinbandfec=1");
    const struct sdp_codec *vp8 = sdp_pick_codec(v);
    assert_int_equal(vp8->pt, 96);
    assert_int_equal(vp8->fb, SDP_FB_NACK | SDP_FB_PLI | SDP_FB_FIR | SDP_FB_REMB | SDP_FB_TWCC);
    const struct sdp_codec *rtx = &g_array_index(v->codecs, struct sdp_codec, 1);
    assert_int_equal(rtx->apt, 96);
    assert_int_equal(sdp_extmap_id(v, "urn:ietf:params:rtp-hdrext:sdes:mid"), 4);
    assert_int_equal(sdp_extmap_id(v, "urn:nope"), 0);
    assert_int_equal(v->ssrcs->len, 2);
    assert_int_equal(g_array_index(v->ssrcs, uint32_t, 1), 3333);
    sdp_free(s);
}

static void test_h264_only_when_baseline_mode_1(void **state)
{
    (void)state;
    const char *why = NULL;
    const char *base = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 100 101 102\r\n"
                       "a=rtpmap:100 H264/90000\r\n"
                       "a=fmtp:100 packetization-mode=0;profile-level-id=42e01f\r\n"
                       "a=rtpmap:101 H264/90000\r\n"
                       "a=fmtp:101 profile-level-id=640c1f;packetization-mode=1\r\n"
                       "a=rtpmap:102 H264/90000\r\n"
                       "a=fmtp:102 profile-level-id=42E01F;packetization-mode=1\r\n";
    struct sdp *s = sdp_parse(base, strlen(base), &why);
    assert_non_null(s);
    const struct sdp_codec *c = sdp_pick_codec(g_ptr_array_index(s->media, 0));
    assert_non_null(c);
    assert_int_equal(c->pt, 102); /* mode 0 and high profile passed over */
    sdp_free(s);
    const char *none = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 98\r\na=rtpmap:98 VP9/90000\r\n";
    s = sdp_parse(none, strlen(none), &why);
    assert_null(sdp_pick_codec(g_ptr_array_index(s->media, 0)));
    sdp_free(s);
}

static void test_answer(void **state)
{
    (void)state;
    const char *why = NULL;
    struct sdp *s = sdp_parse(offer, strlen(offer), &why);
    GPtrArray *cands = g_ptr_array_new();
    g_ptr_array_add(cands, "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host");
    g_ptr_array_add(cands, "candidate:3 1 TCP 1010828287 127.0.0.1 40001 typ host tcptype passive");
    struct sdp_answer_params p = {.ice_ufrag = "srvU",
                                  .ice_pwd = "serverpasswordserverpwd",
                                  .fingerprint = "01:02:03",
                                  .candidates = cands,
                                  .session_id = 42};
    char *answer = sdp_answer(s, &p, &why);
    assert_non_null(answer);
    assert_non_null(strstr(answer, "a=group:BUNDLE 0 1\r\n"));
    assert_non_null(strstr(answer, "a=setup:passive\r\n"));
    assert_non_null(strstr(answer, "a=fingerprint:sha-256 01:02:03\r\n"));
    /* Both sections list every candidate, UDP and TCP, then their end. */
    const char *list = "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"
                       "a=candidate:3 1 TCP 1010828287 127.0.0.1 40001 typ host tcptype passive\r\n"
                       "a=end-of-candidates\r\n";
    const char *first = strstr(answer, list);
    assert_non_null(first);
    assert_non_null(strstr(first + strlen(list), list));
    assert_null(strstr(answer, "PCMU"));
    assert_null(strstr(answer, "AV1"));
    assert_null(strstr(answer, "ssrc-audio-level")); /* an extension the server does not use */

    /* Read back: what the offer gave, mirrored. */
    struct sdp *a = sdp_parse(answer, strlen(answer), &why);
    assert_non_null(a);
    assert_int_equal(a->media->len, 3);
    struct sdp_media *au = g_ptr_array_index(a->media, 0), *vi = g_ptr_array_index(a->media, 1),
                     *dc = g_ptr_array_index(a->media, 2);
    assert_int_equal(au->codecs->len, 1);
    assert_int_equal(sdp_pick_codec(au)->pt, 111);
    assert_int_equal(au->dir, SDP_SENDRECV);
    assert_int_equal(vi->dir, SDP_RECVONLY); /* the offer sends only */
    assert_int_equal(vi->codecs->len, 2);    /* VP8 and its rtx */
    assert_int_equal(sdp_pick_codec(vi)->pt, 96);
    assert_int_equal(g_array_index(vi->codecs, struct sdp_codec, 1).apt, 96);
    /* No transport-wide congestion control: the server relays REMB. */
    assert_int_equal(sdp_pick_codec(vi)->fb, SDP_FB_NACK | SDP_FB_PLI | SDP_FB_FIR | SDP_FB_REMB);
    assert_int_equal(sdp_extmap_id(vi, "urn:ietf:params:rtp-hdrext:sdes:mid"), 4);
    assert_int_equal(sdp_extmap_id(vi, "http://www.ietf.org/id/"
                                       "draft-holmer-rmcat-transport-wide-cc-extensions-01"),
                     0);
    assert_int_equal(au->ssrcs->len, 0); /* nothing sent: no a=ssrc */
    assert_string_equal(vi->ice_ufrag, "srvU");
    assert_int_equal(dc->port, 0); /* data channel: rejected, as offered */
    assert_string_equal(dc->mid, "2");
    assert_string_equal(dc->name, "application");
    assert_string_equal(dc->proto, "UDP/DTLS/SCTP");
    assert_string_equal(dc->fmt0, "webrtc-datachannel");
    sdp_free(a);
    g_free(answer);
    g_ptr_array_free(cands, TRUE);
    sdp_free(s);
}

/* What the server sends is announced: a=msid and a=ssrc on the sections
 * that send, none on those that only receive. */
static void test_answer_announces_what_is_sent(void **state)
{
    (void)state;
    const char *why = NULL;
    struct sdp *s = sdp_parse(offer, strlen(offer), &why);
    struct sdp_send send[2] = {{.ssrc = 4242, .stream = "yjt-s", .track = "yjt-a"},
                               {.ssrc = 4343, .stream = "yjt-s", .track = "yjt-v"}};
    struct sdp_answer_params p = {.ice_ufrag = "srvU",
                                  .ice_pwd = "serverpasswordserverpwd",
                                  .fingerprint = "01:02:03",
                                  .session_id = 1,
                                  .send = send,
                                  .n_send = 2};
    char *answer = sdp_answer(s, &p, &why);
    assert_non_null(answer);
    assert_non_null(strstr(answer, "a=msid:yjt-s yjt-a\r\na=ssrc:4242 cname:yjt-s\r\n"));
    assert_null(strstr(answer, "4343")); /* video is recvonly from the server's side */
    struct sdp *a = sdp_parse(answer, strlen(answer), &why);
    assert_non_null(a);
    struct sdp_media *au = g_ptr_array_index(a->media, 0);
    assert_int_equal(au->ssrcs->len, 1);
    assert_int_equal(g_array_index(au->ssrcs, uint32_t, 0), 4242);
    sdp_free(a);
    g_free(answer);
    sdp_free(s);
}

/* An offer the server makes reads back as written, and the offer of a
 * participant answers it. */
static void test_offer(void **state)
{
    (void)state;
    struct sdp_offer_section sec[2] = {
        {.kind = SDP_AUDIO,
         .mid = "0",
         .dir = SDP_SENDRECV,
         .codec = {.pt = 111, .name = "opus", .clock = 48000, .channels = 2,
                   .fmtp = "minptime=10;useinbandfec=1", .apt = -1},
         .extmap_ids = {4, 0},
         .send = {.ssrc = 7, .stream = "st", .track = "ta"}},
        {.kind = SDP_VIDEO,
         .mid = "1",
         .dir = SDP_SENDONLY,
         .codec = {.pt = 96, .name = "VP8", .clock = 90000, .channels = 1,
                   .fb = SDP_FB_NACK | SDP_FB_PLI | SDP_FB_TWCC, .apt = -1},
         .extmap_ids = {4, 2},
         .send = {.ssrc = 8, .stream = "st", .track = "tv"}},
    };
    GPtrArray *cands = g_ptr_array_new();
    g_ptr_array_add(cands, "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host");
    g_ptr_array_add(cands, "candidate:3 1 TCP 1010828287 127.0.0.1 40001 typ host tcptype passive");
    struct sdp_offer_params p = {.ice_ufrag = "srvU",
                                 .ice_pwd = "serverpasswordserverpwd",
                                 .fingerprint = "AA:BB",
                                 .candidates = cands,
                                 .session_id = 9,
                                 .sections = sec,
                                 .n_sections = 2};
    char *text = sdp_offer(&p);
    const char *why = NULL;
    struct sdp *o = sdp_parse(text, strlen(text), &why);
    assert_non_null(o);
    assert_true(o->bundle);
    assert_int_equal(o->media->len, 2);
    struct sdp_media *au = g_ptr_array_index(o->media, 0), *vi = g_ptr_array_index(o->media, 1);
    assert_string_equal(au->setup, "actpass");
    assert_string_equal(au->mid, "0");
    assert_int_equal(sdp_pick_codec(au)->pt, 111);
    assert_string_equal(sdp_pick_codec(au)->fmtp, "minptime=10;useinbandfec=1");
    assert_int_equal(vi->dir, SDP_SENDONLY);
    assert_int_equal(sdp_pick_codec(vi)->fb, SDP_FB_NACK | SDP_FB_PLI); /* no transport-cc */
    assert_int_equal(sdp_extmap_id(vi, "urn:ietf:params:rtp-hdrext:sdes:mid"), 4);
    assert_int_equal(sdp_extmap_id(vi, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
                     2);
    assert_int_equal(g_array_index(vi->ssrcs, uint32_t, 0), 8);
    assert_non_null(strstr(text, "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"));
    assert_non_null(strstr(
        text, "a=candidate:3 1 TCP 1010828287 127.0.0.1 40001 typ host tcptype passive\r\n"));
    assert_string_equal(vi->ice_pwd, "serverpasswordserverpwd");
    assert_string_equal(vi->fp, "AA:BB");
    sdp_free(o);
    g_free(text);
    g_ptr_array_free(cands, TRUE);
}

static void test_unanswerable_and_bad(void **state)
{
    (void)state;
    const char *why = NULL;
    /* No fingerprint: nothing can be answered. */
    const char *nofp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtcp-mux\r\n"
                       "a=ice-ufrag:u\r\na=ice-pwd:p\r\na=rtpmap:111 opus/48000/2\r\n";
    struct sdp *s = sdp_parse(nofp, strlen(nofp), &why);
    assert_non_null(s);
    struct sdp_answer_params p = {.ice_ufrag = "u", .ice_pwd = "p", .fingerprint = "f"};
    assert_null(sdp_answer(s, &p, &why));
    assert_non_null(why);
    sdp_free(s);

    static const char *const bad[] = {
        "",
        "m=audio 9 RTP/AVP 0\r\n",                            /* no v= first */
        "v=0\r\nm=audio x RTP/AVP 0\r\n",                     /* bad port */
        "v=0\r\nm=audio 9 RTP/AVP 300\r\n",                   /* bad payload type */
        "v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",  /* no clock */
        "v=0\r\nm=audio 9 RTP/AVP 0\r\na=extmap:0 urn:x\r\n", /* extension id 0 */
        "v=0\r\nm=audio 9 RTP/AVP 0\r\na=ssrc:99999999999 cname:x\r\n",
        "v=0\r\nbogus\r\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        why = NULL;
        assert_null(sdp_parse(bad[i], strlen(bad[i]), &why));
        assert_non_null(why);
    }
    /* Too long a line, too many sections, too big a text. */
    GString *g = g_string_new("v=0\r\na=x:");
    for (int i = 0; i < 5000; i++)
        g_string_append_c(g, 'y');
    assert_null(sdp_parse(g->str, g->len, &why));
    g_string_assign(g, "v=0\r\n");
    for (int i = 0; i <= SDP_MAX_MEDIA; i++)
        g_string_append(g, "m=audio 9 RTP/AVP 0\r\n");
    assert_null(sdp_parse(g->str, g->len, &why));
    g_string_assign(g, "v=0\r\n");
    while (g->len <= SDP_MAX_BYTES)
        g_string_append(g, "a=comment:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
    assert_null(sdp_parse(g->str, g->len, &why));
    g_string_free(g, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_offer),
        cmocka_unit_test(test_h264_only_when_baseline_mode_1),
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_answer_announces_what_is_sent),
        cmocka_unit_test(test_offer),
        cmocka_unit_test(test_unanswerable_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
