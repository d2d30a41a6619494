/* The packet path of the SFU's rooms: forwarding with rewriting, the
 * retransmission buffer, RTCP to and from participants, losses and key
 * frames (see room_int.h). */
#include "media/room_int.h"

#include <string.h>

/* Video packets kept per receiver for NACKs (a power of two). */
#define RING 512
#define PLI_MIN_US (300 * 1000)
/* A packet lost on the way from a publisher is asked for NACK_TRIES
 * times, NACK_RETRY_US apart, before the server gives it up. */
#define NACK_TRIES 4
#define NACK_RETRY_US (40 * 1000)
#define REMB_FRESH_US (3 * 1000 * 1000)
/* The timestamp step a receiver sees when its source changes. */
#define AUDIO_TS_GAP 960
#define VIDEO_TS_GAP 3000

struct media_stats media_room_stats;

void media_stats_get(struct media_stats *out)
{
    *out = media_room_stats;
}

struct media_peer *room_peer_by_id(struct media_room *r, unsigned id)
{
    for (guint i = 0; i < r->peers->len; i++) {
        struct media_peer *p = g_ptr_array_index(r->peers, i);
        if (p->id == id)
            return p;
    }
    return NULL;
}

static int kind_of_pt(const struct media_peer *p, int pt)
{
    for (int k = 0; k < K_N; k++)
        if (p->in[k].pt >= 0 && p->in[k].pt == pt)
            return k;
    return -1;
}

/* ---------- RTCP to publishers ---------- */

static uint32_t rtcp_sender(const struct media_peer *p)
{
    return p->n_out ? p->out[0].ssrc : 1;
}

/* q's out track of kind that carries publisher id (or, with bind, the
 * first free one, which then does), or NULL. */
static struct out_track *out_for(struct media_peer *q, int kind, unsigned id, bool bind)
{
    struct out_track *free_one = NULL;
    for (unsigned i = 0; i < q->n_out; i++) {
        struct out_track *o = &q->out[i];
        if (o->kind != kind || o->pt < 0)
            continue;
        if (o->source == id)
            return o;
        if (!o->source && !free_one)
            free_one = o;
    }
    if (bind && free_one)
        free_one->source = id;
    return bind ? free_one : NULL;
}

/* Asks publisher p for a key frame, unless one was asked for lately.
 * Whether it was sent. */
bool room_request_keyframe(struct media_peer *p)
{
    struct in_track *in = &p->in[K_VIDEO];
    int64_t now = g_get_monotonic_time();
    if (in->pt < 0 || !in->ssrc || p->state != MEDIA_TRANSPORT_CONNECTED ||
        (in->last_pli_us && now - in->last_pli_us < PLI_MIN_US))
        return false;
    uint8_t buf[12];
    size_t n = rtcp_write_pli(buf, sizeof(buf), rtcp_sender(p), in->ssrc);
    if (!n || media_transport_send_rtcp(p->t, buf, n) != 0)
        return false;
    in->last_pli_us = now;
    media_room_stats.keyframe_requests++;
    return true;
}

gboolean room_remb_tick(gpointer data)
{
    struct media_room *r = data;
    int64_t now = g_get_monotonic_time();
    for (guint i = 0; i < r->peers->len; i++) {
        struct media_peer *p = g_ptr_array_index(r->peers, i);
        if (p->state != MEDIA_TRANSPORT_CONNECTED)
            continue;
        /* One compound packet: the receiver report first (RFC 3550 6.1),
         * then the REMB. */
        uint8_t buf[8 + 24 * K_N + 24];
        struct rtcp_report_block b[K_N];
        size_t nb = 0, n = 0;
        for (int k = 0; k < K_N; k++)
            if (p->in[k].pt >= 0 && p->in[k].ssrc &&
                rtp_rx_report(&p->in[k].rx, p->in[k].ssrc, now, &b[nb]))
                nb++;
        if (nb)
            n = rtcp_write_rr(buf, sizeof(buf), rtcp_sender(p), b, nb);
        if (p->in[K_VIDEO].pt >= 0 && p->in[K_VIDEO].ssrc) {
            uint64_t rate = r->cfg.max_bitrate;
            for (guint j = 0; j < r->peers->len; j++) {
                struct media_peer *q = g_ptr_array_index(r->peers, j);
                if (q != p && out_for(q, K_VIDEO, p->id, false) && q->remb &&
                    now - q->remb_us < REMB_FRESH_US && q->remb < rate)
                    rate = q->remb;
            }
            n += rtcp_write_remb(buf + n, sizeof(buf) - n, rtcp_sender(p), rate,
                                 &p->in[K_VIDEO].ssrc, 1);
        }
        if (n && media_transport_send_rtcp(p->t, buf, n) == 0 && nb)
            media_room_stats.receiver_reports++;
    }
    return G_SOURCE_CONTINUE;
}

/* ---------- forwarding ---------- */

/* Makes the header extensions fit the receiver: the MID is blanked (the
 * receiver knows the stream by its SSRC, and the publisher's mid is not
 * its own), abs-send-time is restamped with the server's send time under
 * the receiver's id, anything else is blanked. Blanked bytes are zeros,
 * which RFC 8285 reads as padding. */
static void fit_extensions(uint8_t *pkt, const struct rtp_header *h, const struct in_track *in,
                           const struct out_track *out)
{
    if (!h->ext_len)
        return;
    uint8_t *e = pkt + h->ext_off;
    if (h->ext_profile != 0xBEDE) {
        memset(e, 0, h->ext_len);
        return;
    }
    size_t i = 0;
    while (i < h->ext_len) {
        if (e[i] == 0) {
            i++;
            continue;
        }
        uint8_t id = e[i] >> 4;
        size_t len = (size_t)(e[i] & 0x0f) + 1;
        if (id == 15 || i + 1 + len > h->ext_len) {
            memset(e + i, 0, h->ext_len - i);
            return;
        }
        if (id == in->ext_abs && out->ext_abs && len == 3) {
            /* 6.18 fixed-point seconds, 24 bits. */
            uint64_t us = (uint64_t)g_get_monotonic_time();
            uint32_t v = (uint32_t)(((us << 18) / 1000000) & 0xffffff);
            e[i] = (uint8_t)(out->ext_abs << 4 | 2);
            e[i + 1] = (uint8_t)(v >> 16);
            e[i + 2] = (uint8_t)(v >> 8);
            e[i + 3] = (uint8_t)v;
        } else {
            memset(e + i, 0, 1 + len);
        }
        i += 1 + len;
    }
}

/* The next participant of from's room from index *i on (which it moves
 * past) that may receive what from sends: connected, not from; NULL at
 * the end. */
static struct media_peer *next_receiver(struct media_peer *from, guint *i)
{
    GPtrArray *peers = from->room->peers;
    while (*i < peers->len) {
        struct media_peer *q = g_ptr_array_index(peers, (*i)++);
        if (q != from && q->state == MEDIA_TRANSPORT_CONNECTED)
            return q;
    }
    return NULL;
}

static void forward(struct media_peer *from, int kind, const uint8_t *pkt, size_t len,
                    const struct rtp_header *h)
{
    guint i = 0;
    struct media_peer *q;
    while ((q = next_receiver(from, &i)) != NULL) {
        struct out_track *out = out_for(q, kind, from->id, false);
        if (!out) {
            out = out_for(q, kind, from->id, true);
            if (!out)
                continue; /* no section left for this publisher */
            if (kind == K_VIDEO)
                room_request_keyframe(from);
        }
        uint8_t buf[PACKET_MAX];
        memcpy(buf, pkt, len);
        uint16_t seq;
        uint32_t ts;
        rtp_rewrite(&out->rw, h->ssrc, h->seq, h->ts, kind == K_VIDEO ? VIDEO_TS_GAP : AUDIO_TS_GAP,
                    &seq, &ts);
        rtp_set_seq(buf, seq);
        rtp_set_ts(buf, ts);
        rtp_set_ssrc(buf, out->ssrc);
        rtp_set_payload_type(buf, (uint8_t)out->pt);
        fit_extensions(buf, h, &from->in[kind], out);
        if (kind == K_VIDEO) {
            if (!out->ring)
                out->ring = g_new0(struct sent, RING);
            struct sent *s = &out->ring[seq % RING];
            s->seq = seq;
            s->len = (uint16_t)len;
            memcpy(s->data, buf, len);
        }
        if (media_transport_send_rtp(q->t, buf, len) == 0)
            media_room_stats.rtp_out++;
    }
}

/* Passes publisher from's sender report of kind (pkt) on to every
 * receiver of that stream, as the stream it receives: the SSRC it knows,
 * the timestamp it sees. Receivers need it to play audio and video in
 * step (the report ties both streams' timestamps to one clock). */
static void forward_sr(struct media_peer *from, int kind, const struct rtcp_packet *pkt)
{
    guint i = 0;
    struct media_peer *q;
    while ((q = next_receiver(from, &i)) != NULL) {
        struct out_track *out = out_for(q, kind, from->id, false);
        /* only once its packets go out under the current mapping */
        if (!out || !out->rw.started || out->rw.src_ssrc != from->in[kind].ssrc)
            continue;
        uint8_t buf[28];
        size_t n = rtcp_sr_restamp(pkt, out->ssrc, out->rw.ts_delta, buf);
        if (media_transport_send_rtcp(q->t, buf, n) == 0)
            media_room_stats.sr_forwarded++;
    }
}

/* Records what p publishes in kind, opening the file at its first
 * packet. */
static void record(struct media_peer *p, int kind, const uint8_t *pkt, size_t len,
                   const struct rtp_header *h)
{
    struct media_room *r = p->room;
    struct in_track *in = &p->in[kind];
    if (!r->cfg.record_dir)
        return;
    if (!in->rec_tried) {
        in->rec_tried = true;
        const char *kname = kind == K_AUDIO ? "audio" : "video";
        int codec = media_rec_codec_of(r->codec[kind].name);
        const char *why = "the codec cannot be recorded";
        char *file = codec < 0 ? NULL
                               : g_strdup_printf("%s-%u-%s.%s", r->cfg.record_prefix, p->id, kname,
                                                 media_rec_ext((enum media_rec_codec)codec));
        if (file) {
            char *path = g_build_filename(r->cfg.record_dir, file, NULL);
            in->rec = media_recorder_open(path, (enum media_rec_codec)codec, &why);
            g_free(path);
        }
        if (in->rec)
            media_room_stats.recordings++;
        if (r->cb.recording)
            r->cb.recording(p, kname, r->codec[kind].name, in->rec ? file : NULL,
                            in->rec ? NULL : why, r->ud);
        g_free(file);
    }
    if (!in->rec)
        return;
    media_recorder_packet(in->rec, pkt, len, h);
    if (media_recorder_take_keyframe_request(in->rec)) {
        in->last_pli_us = 0; /* the recording cannot wait out the limit */
        room_request_keyframe(p);
    }
}

static void miss_drop(struct in_track *in, unsigned i)
{
    memmove(&in->miss[i], &in->miss[i + 1], (in->n_miss - i - 1) * sizeof(in->miss[0]));
    in->n_miss--;
}

/* Seq is lost: its first ask is due now. With the list full, the oldest
 * loss is given up. */
static void miss_add(struct in_track *in, uint16_t seq, int64_t now)
{
    if (in->n_miss == MISSING_MAX) {
        miss_drop(in, 0);
        media_room_stats.nack_unrepaired++;
        in->want_key = true;
    }
    in->miss[in->n_miss++] = (struct missing){seq, 0, now};
}

/* Video from a publisher (seq, repaired or not): packets missing before
 * it are asked for again at once, and again every NACK_RETRY_US while
 * they do not come. One that NACK_TRIES asks did not bring is given up:
 * the receivers cannot decode past it, so the publisher is asked for a
 * key frame (the receivers' own requests come seconds later). */
static void track_losses(struct media_peer *p, struct in_track *in, uint16_t seq)
{
    int64_t now = g_get_monotonic_time();
    if (!in->seq_started) {
        in->seq_started = true;
        in->max_seq = seq;
        return;
    }
    int16_t d = (int16_t)(uint16_t)(seq - in->max_seq);
    if (d <= 0) { /* a retransmission or a reordered packet */
        for (unsigned i = 0; i < in->n_miss; i++)
            if (in->miss[i].seq == seq) {
                miss_drop(in, i);
                break;
            }
    } else {
        if (d > MISSING_MAX) { /* too much at once: only a key frame helps */
            media_room_stats.nack_unrepaired += (uint64_t)(d - 1);
            in->want_key = true;
        } else {
            for (uint16_t s = (uint16_t)(in->max_seq + 1); s != seq; s++)
                miss_add(in, s, now);
        }
        in->max_seq = seq;
    }
    uint16_t ask[MISSING_MAX];
    size_t n = 0;
    for (unsigned i = 0; i < in->n_miss;) {
        struct missing *m = &in->miss[i];
        if (m->due_us > now) {
            i++;
        } else if (m->tries >= NACK_TRIES) {
            miss_drop(in, i);
            media_room_stats.nack_unrepaired++;
            in->want_key = true;
        } else {
            m->tries++;
            m->due_us = now + NACK_RETRY_US;
            ask[n++] = m->seq;
            i++;
        }
    }
    if (n) {
        uint8_t buf[12 + 4 * MISSING_MAX];
        size_t len = rtcp_write_nack(buf, sizeof(buf), rtcp_sender(p), in->ssrc, ask, n);
        if (len && media_transport_send_rtcp(p->t, buf, len) == 0)
            media_room_stats.nack_sent += n;
    }
    if (in->want_key && room_request_keyframe(p))
        in->want_key = false;
}

/* An RTX packet (RFC 4588) made back into the packet it repairs: the
 * original sequence number from its first two payload bytes, the media's
 * payload type and SSRC. 0, or -1 if it carries nothing (a padding
 * probe). */
static int unwrap_rtx(const struct in_track *in, uint8_t *pkt, size_t *len, struct rtp_header *h)
{
    if (h->payload_len < 2 || !in->ssrc)
        return -1;
    const uint8_t *pl = pkt + h->payload_off;
    uint16_t osn = (uint16_t)(pl[0] << 8 | pl[1]);
    memmove(pkt + h->payload_off, pl + 2, h->payload_len - 2);
    *len = h->payload_off + h->payload_len - 2;
    pkt[0] &= (uint8_t)~0x20; /* the padding went with the move */
    rtp_set_seq(pkt, osn);
    rtp_set_payload_type(pkt, (uint8_t)in->pt);
    rtp_set_ssrc(pkt, in->ssrc);
    return rtp_parse(pkt, *len, h);
}

void room_on_rtp(uint8_t *pkt, size_t len, void *ud)
{
    struct media_peer *p = ud;
    struct rtp_header h;
    if (len > PACKET_MAX || rtp_parse(pkt, len, &h) != 0)
        return;
    struct in_track *video = &p->in[K_VIDEO];
    bool repaired = video->rtx_pt >= 0 && h.payload_type == video->rtx_pt;
    if (repaired && unwrap_rtx(video, pkt, &len, &h) != 0)
        return;
    int kind = kind_of_pt(p, h.payload_type);
    if (kind < 0)
        return; /* padding probes, or a codec not agreed */
    media_room_stats.rtp_in++;
    if (repaired)
        media_room_stats.rtx_in++;
    if (kind == K_VIDEO && video->ssrc != h.ssrc) { /* a new stream: a new numbering */
        video->seq_started = false;
        video->n_miss = 0;
    }
    struct in_track *in = &p->in[kind];
    if (in->ssrc != h.ssrc)
        memset(&in->rx, 0, sizeof(in->rx));
    in->ssrc = h.ssrc;
    if (!repaired) /* a repair is counted on its own stream by its sender */
        rtp_rx_update(&in->rx, h.seq, h.ts, g_get_monotonic_time(),
                      (uint32_t)p->room->codec[kind].clock);
    if (kind == K_VIDEO)
        track_losses(p, video, h.seq);
    record(p, kind, pkt, len, &h);
    forward(p, kind, pkt, len, &h);
}

struct nack_ctx {
    struct media_peer *q;
    struct out_track *out;
};

static void resend(uint16_t seq, void *ud)
{
    struct nack_ctx *n = ud;
    struct sent *s = n->out->ring ? &n->out->ring[seq % RING] : NULL;
    if (!s || s->seq != seq || !s->len) {
        media_room_stats.nack_missed++;
        return;
    }
    if (media_transport_send_rtp(n->q->t, s->data, s->len) == 0)
        media_room_stats.nack_resent++;
}

/* The out track of q with SSRC ssrc (live or not: pt < 0), or NULL. */
struct out_track *room_out_by_ssrc(struct media_peer *q, uint32_t ssrc)
{
    for (unsigned i = 0; i < q->n_out; i++)
        if (q->out[i].ssrc == ssrc)
            return &q->out[i];
    return NULL;
}

void room_on_rtcp(uint8_t *buf, size_t len, void *ud)
{
    struct media_peer *q = ud;
    size_t off = 0;
    struct rtcp_packet pkt;
    while (rtcp_next(buf, len, &off, &pkt)) {
        uint32_t sender, media, lsr;
        if (rtcp_sr_read(&pkt, &sender, &lsr)) {
            for (int k = 0; k < K_N; k++)
                if (q->in[k].pt >= 0 && q->in[k].ssrc && q->in[k].ssrc == sender) {
                    rtp_rx_sender_report(&q->in[k].rx, lsr, g_get_monotonic_time());
                    forward_sr(q, k, &pkt);
                }
            continue;
        }
        if ((pkt.type != RTCP_RTPFB && pkt.type != RTCP_PSFB) ||
            !rtcp_fb_ssrcs(&pkt, &sender, &media))
            continue;
        uint64_t rate;
        if (rtcp_remb_read(&pkt, &rate)) {
            q->remb = rate;
            q->remb_us = g_get_monotonic_time();
            continue;
        }
        if (pkt.type == RTCP_PSFB && pkt.fmt == RTCP_FMT_FIR && pkt.body_len >= 12)
            media = (uint32_t)pkt.body[8] << 24 | (uint32_t)pkt.body[9] << 16 |
                    (uint32_t)pkt.body[10] << 8 | pkt.body[11];
        struct out_track *out = room_out_by_ssrc(q, media);
        if (!out || out->pt < 0)
            continue;
        if (pkt.type == RTCP_RTPFB && pkt.fmt == RTCP_FMT_NACK) {
            struct nack_ctx n = {q, out};
            rtcp_nack_each(&pkt, resend, &n);
        } else if (pkt.type == RTCP_PSFB && (pkt.fmt == RTCP_FMT_PLI || pkt.fmt == RTCP_FMT_FIR)) {
            struct media_peer *src = out->source ? room_peer_by_id(q->room, out->source) : NULL;
            if (src)
                room_request_keyframe(src);
        }
    }
}
