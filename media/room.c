/* A room of the SFU: participants, forwarding and RTCP (see room.h). */
#include "media/room.h"

#include "media/record.h"
#include "media/rtp.h"
#include "media/sdp.h"

#include <stdlib.h>
#include <string.h>

#define PACKET_MAX 1500
/* Video packets kept per receiver for NACKs (a power of two). */
#define RING 512
#define PLI_MIN_US (300 * 1000)
/* A packet lost on the way from a publisher is asked for NACK_TRIES
 * times, NACK_RETRY_US apart, before the server gives it up. */
#define NACK_TRIES 4
#define NACK_RETRY_US (40 * 1000)
#define MISSING_MAX 64
#define REMB_EVERY_MS 1000
#define REMB_FRESH_US (3 * 1000 * 1000)
#define DEFAULT_MAX_BITRATE 2000000
/* Sections a participant may receive in. */
#define OUT_MAX 8
/* The timestamp step a receiver sees when its source changes. */
#define AUDIO_TS_GAP 960
#define VIDEO_TS_GAP 3000

enum { K_AUDIO, K_VIDEO, K_N };

/* A packet a publisher was asked for again. */
struct missing {
    uint16_t seq;
    uint8_t tries;
    int64_t due_us; /* when to ask again, or give up */
};

/* What a participant publishes in one section. */
struct in_track {
    int pt, rtx_pt; /* -1: not published */
    uint32_t ssrc;  /* learned from its packets */
    int64_t last_pli_us;
    int ext_mid, ext_abs; /* its header extension ids (0: none) */
    bool seq_started;
    uint16_t max_seq;                 /* the newest sequence number heard (video: for NACKs) */
    struct missing miss[MISSING_MAX]; /* video, oldest first */
    unsigned n_miss;
    bool want_key; /* a loss was given up: a key frame is due */
    struct media_recorder *rec;
    bool rec_tried;
};

struct sent {
    uint16_t seq, len;
    uint8_t data[PACKET_MAX];
};

/* What the server sends a participant in one section. */
struct out_track {
    int kind;
    int pt; /* -1: not (or no longer) receiving */
    uint32_t ssrc;
    unsigned source; /* the publishing peer's id, 0: none yet */
    struct rtp_rewriter rw;
    struct sent *ring; /* video, once the first packet is sent */
    int ext_mid, ext_abs;
};

struct media_peer {
    struct media_room *room;
    unsigned id;
    struct media_transport *t;
    bool offered;     /* the server made the offer */
    bool have_remote; /* its SDP is applied */
    bool gathering;   /* writing its SDP: candidates go there */
    GPtrArray *cands; /* local candidates found while gathering */
    struct in_track in[K_N];
    struct out_track out[OUT_MAX];
    unsigned n_out;
    bool publish;        /* what it sends is forwarded */
    unsigned n_sections; /* media sections of its SDP */
    /* Its sections as the server would offer them again (direction from
     * the server's side), for offers that add sections; renegotiable when
     * each is audio or video the server took. pending: sections the last
     * such offer added, not answered yet. */
    struct sdp_offer_section secs[OUT_MAX + K_N];
    unsigned n_secs, pending;
    bool renegotiable;
    char remote_ufrag[SDP_TOKEN_MAX], remote_fp[SDP_TOKEN_MAX];
    uint64_t remb; /* the last estimate it sent (bits/s) */
    int64_t remb_us;
    enum media_transport_state state, reported;
    char *why;
    guint idle; /* a state change waiting to be reported */
    void *data;
};

struct media_room {
    struct media_room_config cfg;
    struct media_room_callbacks cb;
    void *ud;
    GPtrArray *peers; /* struct media_peer* */
    unsigned next_id;
    bool have_codecs;
    struct sdp_codec codec[K_N];
    int ext_ids[SDP_KEPT_EXTMAPS];
    guint remb_timer;
};

static struct media_stats stats;

void media_stats_get(struct media_stats *out)
{
    *out = stats;
}

static struct media_peer *peer_by_id(struct media_room *r, unsigned id)
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
static bool request_keyframe(struct media_peer *p)
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
    stats.keyframe_requests++;
    return true;
}

static gboolean on_remb_timer(gpointer data)
{
    struct media_room *r = data;
    int64_t now = g_get_monotonic_time();
    for (guint i = 0; i < r->peers->len; i++) {
        struct media_peer *p = g_ptr_array_index(r->peers, i);
        if (p->in[K_VIDEO].pt < 0 || !p->in[K_VIDEO].ssrc || p->state != MEDIA_TRANSPORT_CONNECTED)
            continue;
        uint64_t rate = r->cfg.max_bitrate;
        for (guint j = 0; j < r->peers->len; j++) {
            struct media_peer *q = g_ptr_array_index(r->peers, j);
            if (q != p && out_for(q, K_VIDEO, p->id, false) && q->remb &&
                now - q->remb_us < REMB_FRESH_US && q->remb < rate)
                rate = q->remb;
        }
        uint8_t buf[24];
        size_t n = rtcp_write_remb(buf, sizeof(buf), rtcp_sender(p), rate, &p->in[K_VIDEO].ssrc, 1);
        if (n)
            media_transport_send_rtcp(p->t, buf, n);
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

static void forward(struct media_peer *from, int kind, const uint8_t *pkt, size_t len,
                    const struct rtp_header *h)
{
    struct media_room *r = from->room;
    for (guint i = 0; i < r->peers->len; i++) {
        struct media_peer *q = g_ptr_array_index(r->peers, i);
        if (q == from || q->state != MEDIA_TRANSPORT_CONNECTED)
            continue;
        struct out_track *out = out_for(q, kind, from->id, false);
        if (!out) {
            out = out_for(q, kind, from->id, true);
            if (!out)
                continue; /* no section left for this publisher */
            if (kind == K_VIDEO)
                request_keyframe(from);
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
            stats.rtp_out++;
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
            stats.recordings++;
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
        request_keyframe(p);
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
        stats.nack_unrepaired++;
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
            stats.nack_unrepaired += (uint64_t)(d - 1);
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
            stats.nack_unrepaired++;
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
            stats.nack_sent += n;
    }
    if (in->want_key && request_keyframe(p))
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

static void on_rtp(uint8_t *pkt, size_t len, void *ud)
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
    stats.rtp_in++;
    if (repaired)
        stats.rtx_in++;
    if (kind == K_VIDEO && video->ssrc != h.ssrc) { /* a new stream: a new numbering */
        video->seq_started = false;
        video->n_miss = 0;
    }
    p->in[kind].ssrc = h.ssrc;
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
        stats.nack_missed++;
        return;
    }
    if (media_transport_send_rtp(n->q->t, s->data, s->len) == 0)
        stats.nack_resent++;
}

/* The out track of q with SSRC ssrc (live or not: pt < 0), or NULL. */
static struct out_track *out_by_ssrc(struct media_peer *q, uint32_t ssrc)
{
    for (unsigned i = 0; i < q->n_out; i++)
        if (q->out[i].ssrc == ssrc)
            return &q->out[i];
    return NULL;
}

static void on_rtcp(uint8_t *buf, size_t len, void *ud)
{
    struct media_peer *q = ud;
    size_t off = 0;
    struct rtcp_packet pkt;
    while (rtcp_next(buf, len, &off, &pkt)) {
        uint32_t sender, media;
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
        struct out_track *out = out_by_ssrc(q, media);
        if (!out || out->pt < 0)
            continue;
        if (pkt.type == RTCP_RTPFB && pkt.fmt == RTCP_FMT_NACK) {
            struct nack_ctx n = {q, out};
            rtcp_nack_each(&pkt, resend, &n);
        } else if (pkt.type == RTCP_PSFB && (pkt.fmt == RTCP_FMT_PLI || pkt.fmt == RTCP_FMT_FIR)) {
            struct media_peer *src = out->source ? peer_by_id(q->room, out->source) : NULL;
            if (src)
                request_keyframe(src);
        }
    }
}

/* ---------- transport events ---------- */

static gboolean report_state(gpointer data)
{
    struct media_peer *p = data;
    p->idle = 0;
    if (p->reported == p->state)
        return G_SOURCE_REMOVE;
    p->reported = p->state;
    /* A receiver that connects again needs a key frame to start; one that
     * connects the first time asks when its first packet is forwarded. */
    for (unsigned i = 0; p->state == MEDIA_TRANSPORT_CONNECTED && i < p->n_out; i++) {
        struct media_peer *src = p->out[i].kind == K_VIDEO && p->out[i].source
                                     ? peer_by_id(p->room, p->out[i].source)
                                     : NULL;
        if (src)
            request_keyframe(src);
    }
    if (p->room->cb.state)
        p->room->cb.state(p, p->state, p->why, p->room->ud);
    return G_SOURCE_REMOVE;
}

static void on_state(enum media_transport_state s, const char *why, void *ud)
{
    struct media_peer *p = ud;
    p->state = s;
    g_free(p->why);
    p->why = g_strdup(why);
    if (!p->idle) {
        GSource *src = g_idle_source_new();
        g_source_set_callback(src, report_state, p, NULL);
        p->idle = g_source_attach(src, p->room->cfg.ctx);
        g_source_unref(src);
    }
}

static void on_candidate(const char *cand, void *ud)
{
    struct media_peer *p = ud;
    if (!cand)
        return;
    if (p->gathering)
        g_ptr_array_add(p->cands, g_strdup(cand));
    else if (p->room->cb.candidate)
        p->room->cb.candidate(p, cand, p->room->ud);
}

/* ---------- participants ---------- */

/* The server's offer of p's sections (p->secs), with its credentials,
 * certificate and candidates. */
static char *peer_offer(struct media_peer *p)
{
    struct sdp_offer_params op = {.ice_ufrag = media_transport_ufrag(p->t),
                                  .ice_pwd = media_transport_pwd(p->t),
                                  .fingerprint = dtls_cert_fingerprint(p->room->cfg.cert),
                                  .candidates = p->cands,
                                  .session_id = g_random_int(),
                                  .sections = p->secs,
                                  .n_sections = p->n_secs + p->pending};
    return sdp_offer(&op);
}

static struct media_peer *peer_new(struct media_room *r)
{
    struct media_peer *p = g_new0(struct media_peer, 1);
    p->room = r;
    p->id = ++r->next_id;
    p->cands = g_ptr_array_new_with_free_func(g_free);
    p->state = p->reported = MEDIA_TRANSPORT_CONNECTING;
    for (int k = 0; k < K_N; k++)
        p->in[k].pt = p->in[k].rtx_pt = -1;
    const struct media_transport_callbacks cb = {on_candidate, on_state, on_rtp, on_rtcp};
    p->t = media_transport_new(r->cfg.ctx, MEDIA_TRANSPORT_SERVER, r->cfg.cert, r->cfg.addresses,
                               r->cfg.ice_tcp, &cb, p);
    if (!p->t) {
        g_ptr_array_free(p->cands, TRUE);
        g_free(p);
        return NULL;
    }
    g_ptr_array_add(r->peers, p);
    stats.peers++;
    return p;
}

/* Gathers the local candidates known at once (host candidates) for the
 * SDP; later ones go through the room's candidate callback. */
static int peer_gather(struct media_peer *p)
{
    p->gathering = true;
    int rc = media_transport_gather(p->t);
    p->gathering = false;
    /* Behind a 1:1 NAT the devices reach the server at its public
     * address, on the same port: each host candidate, UDP or passive
     * TCP, is also announced there (its own foundation, a slightly lower
     * priority, the same tcptype). */
    const char *pub = p->room->cfg.public_ip;
    for (guint i = 0, n = p->cands->len; pub && i < n; i++) {
        char **f = g_strsplit(g_ptr_array_index(p->cands, i), " ", -1);
        if (g_strv_length(f) >= 8 && strcmp(f[6], "typ") == 0 && strcmp(f[7], "host") == 0) {
            char *found = g_strdup_printf("%sn", f[0]);
            unsigned long prio = strtoul(f[3], NULL, 10);
            char *prio_s = g_strdup_printf("%lu", prio > 1 ? prio - 1 : prio);
            g_free(f[0]);
            g_free(f[3]);
            g_free(f[4]);
            f[0] = found;
            f[3] = prio_s;
            f[4] = g_strdup(pub);
            g_ptr_array_add(p->cands, g_strjoinv(" ", f));
        }
        g_strfreev(f);
    }
    return rc;
}

static void source_drop(GMainContext *ctx, guint id)
{
    GSource *s = id ? g_main_context_find_source_by_id(ctx, id) : NULL;
    if (s)
        g_source_destroy(s);
}

static void peer_free(struct media_peer *p)
{
    source_drop(p->room->cfg.ctx, p->idle);
    for (int k = 0; k < K_N; k++)
        media_recorder_close(p->in[k].rec);
    media_transport_free(p->t);
    for (unsigned i = 0; i < p->n_out; i++)
        g_free(p->out[i].ring);
    g_ptr_array_free(p->cands, TRUE);
    g_free(p->why);
    g_free(p);
    stats.peers--;
}

void media_peer_remove(struct media_peer *p)
{
    struct media_room *r = p->room;
    g_ptr_array_remove(r->peers, p);
    /* Its receivers take the next publisher that is heard. */
    for (guint i = 0; i < r->peers->len; i++) {
        struct media_peer *q = g_ptr_array_index(r->peers, i);
        for (unsigned k = 0; k < q->n_out; k++)
            if (q->out[k].source == p->id)
                q->out[k].source = 0;
    }
    peer_free(p);
}

static uint32_t new_ssrc(void)
{
    uint32_t s;
    do
        s = g_random_int();
    while (s == 0);
    return s;
}

/* A new out track of kind for p (NULL when it has OUT_MAX). */
static struct out_track *out_add(struct media_peer *p, int kind)
{
    if (p->n_out >= OUT_MAX)
        return NULL;
    struct out_track *o = &p->out[p->n_out++];
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->pt = -1;
    o->ssrc = new_ssrc();
    return o;
}

/* What the server announces for out track o of p: the n-th track of each
 * kind share a stream (a=msid), since the first publisher heard fills the
 * first of each. */
static void set_send(struct sdp_send *s, const struct media_peer *p, const struct out_track *o)
{
    unsigned nth = 0;
    for (const struct out_track *x = p->out; x < o; x++)
        if (x->kind == o->kind)
            nth++;
    s->ssrc = o->ssrc;
    g_snprintf(s->stream, sizeof(s->stream), "yjt-%u-%u", p->id, nth);
    g_snprintf(s->track, sizeof(s->track), "yjt-%u-%u-%s", p->id, nth,
               o->kind == K_AUDIO ? "a" : "v");
}

static int ext_id(const struct sdp_media *m, int which)
{
    const char *const *uris;
    sdp_kept_extmaps(&uris);
    return sdp_extmap_id(m, uris[which]);
}

/* K_AUDIO or K_VIDEO for a section, or -1. */
static int kind_of(const struct sdp_media *m)
{
    return m->kind == SDP_AUDIO ? K_AUDIO : m->kind == SDP_VIDEO ? K_VIDEO : -1;
}

/* The codec of m that matches the room's codec of its kind, or NULL. */
static const struct sdp_codec *room_codec_in(const struct media_room *r, const struct sdp_media *m,
                                             int kind)
{
    for (guint i = 0; i < m->codecs->len; i++) {
        const struct sdp_codec *c = &g_array_index(m->codecs, struct sdp_codec, i);
        if (g_ascii_strcasecmp(c->name, r->codec[kind].name) == 0 &&
            c->clock == r->codec[kind].clock)
            return c;
    }
    return NULL;
}

/* Takes what a section of the participant's SDP says it publishes (the
 * first such section of each kind, if it may publish), with its payload
 * type and extension ids. */
static void take_publish(struct media_peer *p, const struct sdp_media *m, int kind,
                         const struct sdp_codec *c)
{
    if (p->in[kind].pt >= 0 || !(m->dir == SDP_SENDRECV || m->dir == SDP_SENDONLY))
        return;
    p->in[kind].pt = c->pt;
    for (guint i = 0; kind == K_VIDEO && i < m->codecs->len; i++) {
        const struct sdp_codec *x = &g_array_index(m->codecs, struct sdp_codec, i);
        if (x->apt == c->pt && g_ascii_strcasecmp(x->name, "rtx") == 0)
            p->in[kind].rtx_pt = x->pt; /* it may repair losses with RTX */
    }
    p->in[kind].ext_mid = ext_id(m, 0);
    p->in[kind].ext_abs = ext_id(m, 1);
}

/* Makes o carry what the section says the participant receives. */
static void take_receive(struct out_track *o, const struct sdp_media *m, const struct sdp_codec *c)
{
    o->pt = c->pt;
    o->ext_mid = ext_id(m, 0);
    o->ext_abs = ext_id(m, 1);
}

/* The server's side of a direction the peer wrote. */
static enum sdp_dir server_dir(enum sdp_dir peer, bool no_receive)
{
    enum sdp_dir d = peer == SDP_SENDONLY   ? SDP_RECVONLY
                     : peer == SDP_RECVONLY ? SDP_SENDONLY
                                            : peer;
    if (no_receive)
        d = d == SDP_SENDRECV ? SDP_SENDONLY : d == SDP_RECVONLY ? SDP_INACTIVE : d;
    return d;
}

/* Notes section m of p's SDP (c: the codec taken, NULL: rejected) as the
 * server would offer it again. */
static void sec_note(struct media_peer *p, const struct sdp_media *m, int kind,
                     const struct sdp_codec *c, enum sdp_dir dir, const struct sdp_send *send)
{
    if (!c || kind < 0 || p->n_secs >= G_N_ELEMENTS(p->secs)) {
        p->renegotiable = false;
        return;
    }
    struct sdp_offer_section *sec = &p->secs[p->n_secs++];
    memset(sec, 0, sizeof(*sec));
    sec->kind = kind == K_AUDIO ? SDP_AUDIO : SDP_VIDEO;
    g_strlcpy(sec->mid, m->mid, sizeof(sec->mid));
    sec->dir = dir;
    sec->codec = *c;
    sec->codec.apt = -1;
    for (int e = 0; e < SDP_KEPT_EXTMAPS; e++)
        sec->extmap_ids[e] = ext_id(m, e);
    if (send)
        sec->send = *send;
}

static bool remote_of(const struct sdp *s, const struct sdp_media **first)
{
    for (guint i = 0; i < s->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(s->media, i);
        if (m->port && *m->ice_ufrag && *m->ice_pwd && *m->fp) {
            *first = m;
            return true;
        }
    }
    return false;
}

/* Candidates a peer wrote in its SDP (most trickle them instead; some
 * stacks gather first and write them in). */
static void sdp_candidates(struct media_peer *p, const char *text, size_t len)
{
    char *copy = g_strndup(text, len);
    char **lines = g_strsplit(copy, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_strchomp(*l);
        if (g_str_has_prefix(*l, "a=candidate:"))
            media_transport_add_remote_candidate(p->t, *l + 2);
    }
    g_strfreev(lines);
    g_free(copy);
}

/* The server's answer to p's offer s: its credentials, certificate and
 * candidates, what it sends and the payload types, by section. */
static char *peer_answer(struct media_peer *p, const struct sdp *s, const struct sdp_send *send,
                         const int *pts, const char **why)
{
    struct sdp_answer_params ap = {.ice_ufrag = media_transport_ufrag(p->t),
                                   .ice_pwd = media_transport_pwd(p->t),
                                   .fingerprint = dtls_cert_fingerprint(p->room->cfg.cert),
                                   .candidates = p->cands,
                                   .session_id = g_random_int(),
                                   .send = send,
                                   .n_send = s->media->len,
                                   .pts = pts,
                                   .no_receive = !p->publish};
    return sdp_answer(s, &ap, why);
}

struct media_peer *media_room_answer(struct media_room *r, const char *offer, size_t len,
                                     bool publish, char **answer, const char **why)
{
    *answer = NULL;
    struct sdp *s = sdp_parse(offer, len, why);
    if (!s)
        return NULL;
    const struct sdp_media *first = NULL;
    if (!remote_of(s, &first)) {
        *why = "the offer has no ICE credentials or fingerprint";
        sdp_free(s);
        return NULL;
    }
    struct media_peer *p = peer_new(r);
    if (!p) {
        *why = "no media transport could be made";
        sdp_free(s);
        return NULL;
    }
    struct sdp_send *send = g_new0(struct sdp_send, s->media->len);
    int *pts = g_new(int, s->media->len);
    bool taken[K_N] = {false, false};
    bool room_had = r->have_codecs;
    p->renegotiable = true;
    for (guint i = 0; i < s->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(s->media, i);
        int kind = kind_of(m);
        pts[i] = -1;
        const struct sdp_codec *c = kind < 0 || !m->port      ? NULL
                                    : room_had || taken[kind] ? room_codec_in(r, m, kind)
                                                              : sdp_pick_codec(m);
        if (!c) {
            sec_note(p, m, kind, NULL, SDP_INACTIVE, NULL);
            continue;
        }
        pts[i] = c->pt;
        if (publish)
            take_publish(p, m, kind, c);
        struct out_track *o =
            m->dir == SDP_SENDRECV || m->dir == SDP_RECVONLY ? out_add(p, kind) : NULL;
        if (o) {
            take_receive(o, m, c);
            set_send(&send[i], p, o);
        }
        sec_note(p, m, kind, c, server_dir(m->dir, !publish), o ? &send[i] : NULL);
        if (!room_had && !taken[kind]) {
            r->codec[kind] = *c;
            r->codec[kind].apt = -1;
            for (int e = 0; e < SDP_KEPT_EXTMAPS; e++)
                if (!r->ext_ids[e])
                    r->ext_ids[e] = ext_id(m, e);
        }
        taken[kind] = true;
    }
    if (!taken[K_AUDIO] && !taken[K_VIDEO]) {
        *why = room_had ? "the offer has none of the call's codecs"
                        : "no audio or video the server can take (Opus, VP8 or H.264 constrained"
                          " baseline with packetization-mode 1)";
        goto fail;
    }
    if (!room_had)
        r->have_codecs = true;
    if (media_transport_set_remote(p->t, first->ice_ufrag, first->ice_pwd, first->fp_alg, first->fp,
                                   why) != 0 ||
        peer_gather(p) != 0) {
        if (!*why)
            *why = "ICE could not gather candidates";
        goto fail;
    }
    p->have_remote = true;
    sdp_candidates(p, offer, len);
    p->publish = publish;
    p->n_sections = s->media->len;
    g_strlcpy(p->remote_ufrag, first->ice_ufrag, sizeof(p->remote_ufrag));
    g_strlcpy(p->remote_fp, first->fp, sizeof(p->remote_fp));
    *answer = peer_answer(p, s, send, pts, why);
    if (!*answer)
        goto fail;
    g_free(send);
    g_free(pts);
    sdp_free(s);
    return p;
fail:
    g_free(send);
    g_free(pts);
    sdp_free(s);
    media_peer_remove(p);
    return NULL;
}

struct media_peer *media_room_offer(struct media_room *r, char **offer, const char **why)
{
    *offer = NULL;
    if (!r->have_codecs) {
        *why = "the call has no media yet";
        return NULL;
    }
    struct media_peer *p = peer_new(r);
    if (!p) {
        *why = "no media transport could be made";
        return NULL;
    }
    p->offered = true;
    media_transport_set_ice_controlling(p->t, true);
    if (peer_gather(p) != 0) {
        *why = "ICE could not gather candidates";
        media_peer_remove(p);
        return NULL;
    }
    struct sdp_offer_section sec[K_N];
    size_t n = 0;
    for (int k = 0; k < K_N; k++) {
        if (!r->codec[k].name[0])
            continue;
        struct sdp_offer_section *os = &sec[n];
        memset(os, 0, sizeof(*os));
        os->kind = k == K_AUDIO ? SDP_AUDIO : SDP_VIDEO;
        g_snprintf(os->mid, sizeof(os->mid), "%zu", n);
        os->dir = SDP_SENDRECV;
        os->codec = r->codec[k];
        memcpy(os->extmap_ids, r->ext_ids, sizeof(os->extmap_ids));
        set_send(&os->send, p, out_add(p, k)); /* it receives once it answers */
        n++;
    }
    memcpy(p->secs, sec, n * sizeof(sec[0]));
    p->n_secs = n;
    p->renegotiable = true;
    *offer = peer_offer(p);
    return p;
}

int media_peer_set_answer(struct media_peer *p, const char *answer, size_t len, const char **why)
{
    if (!p->offered || p->have_remote) {
        *why = "no offer of the server is waiting for an answer";
        return -1;
    }
    struct sdp *s = sdp_parse(answer, len, why);
    if (!s)
        return -1;
    struct media_room *r = p->room;
    const struct sdp_media *first = NULL;
    int rc = -1;
    if (!remote_of(s, &first)) {
        *why = "the answer has no ICE credentials or fingerprint";
        goto out;
    }
    if (strcmp(first->setup, "active") != 0) {
        *why = "the answer must take setup:active (the server is the DTLS server)";
        goto out;
    }
    bool any = false;
    bool taken[K_N] = {false, false};
    for (guint i = 0; i < s->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(s->media, i);
        int kind = kind_of(m);
        if (kind < 0 || taken[kind] || !m->port)
            continue;
        const struct sdp_codec *c = room_codec_in(r, m, kind);
        if (!c || c->pt != r->codec[kind].pt)
            continue; /* an answer keeps the offer's payload types */
        taken[kind] = true;
        /* The server's offer was sendrecv: the answer's direction is the
         * participant's own. */
        take_publish(p, m, kind, c);
        if (m->dir == SDP_SENDRECV || m->dir == SDP_RECVONLY) {
            for (unsigned k = 0; k < p->n_out; k++)
                if (p->out[k].kind == kind)
                    take_receive(&p->out[k], m, c);
        }
        for (unsigned k = 0; k < p->n_secs; k++)
            if (strcmp(p->secs[k].mid, m->mid) == 0)
                p->secs[k].dir = server_dir(m->dir, false);
        any = true;
    }
    if (!any) {
        *why = "the answer accepts none of the offered media";
        goto out;
    }
    if (media_transport_set_remote(p->t, first->ice_ufrag, first->ice_pwd, first->fp_alg, first->fp,
                                   why) != 0)
        goto out;
    p->have_remote = true;
    sdp_candidates(p, answer, len);
    p->publish = true;
    p->n_sections = s->media->len;
    g_strlcpy(p->remote_ufrag, first->ice_ufrag, sizeof(p->remote_ufrag));
    g_strlcpy(p->remote_fp, first->fp, sizeof(p->remote_fp));
    rc = 0;
out:
    sdp_free(s);
    return rc;
}

char *media_peer_renegotiate(struct media_peer *p, const char *offer, size_t len, bool *restart,
                             const char **why)
{
    *restart = false;
    if (!p->have_remote) {
        *why = "the participant has no media connection yet";
        return NULL;
    }
    struct sdp *s = sdp_parse(offer, len, why);
    if (!s)
        return NULL;
    struct media_room *r = p->room;
    const struct sdp_media *first = NULL;
    char *answer = NULL;
    struct sdp_send *send = NULL;
    int *pts = NULL;
    if (!remote_of(s, &first)) {
        *why = "the offer has no ICE credentials or fingerprint";
        goto out;
    }
    if (p->pending) {
        *why = "an offer of the server is waiting for its answer: answer it first";
        goto out;
    }
    if (s->media->len != p->n_sections) {
        *why = "adding or removing media sections through the server is not supported";
        goto out;
    }
    if (g_ascii_strcasecmp(first->fp, p->remote_fp) != 0) {
        *why = "the certificate cannot change within a call";
        goto out;
    }
    /* The same sections as before: the n-th receiving one still carries
     * the n-th out track. */
    send = g_new0(struct sdp_send, s->media->len);
    pts = g_new(int, s->media->len);
    unsigned next_out = 0;
    for (guint i = 0; i < s->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(s->media, i);
        int kind = kind_of(m);
        const struct sdp_codec *c = kind >= 0 && m->port ? room_codec_in(r, m, kind) : NULL;
        pts[i] = c ? c->pt : -1;
        bool receives = m->dir == SDP_SENDRECV || m->dir == SDP_RECVONLY;
        if (c && receives && next_out < p->n_out && p->out[next_out].kind == kind)
            set_send(&send[i], p, &p->out[next_out++]);
    }
    if (strcmp(first->ice_ufrag, p->remote_ufrag) != 0) {
        if (media_transport_ice_restart(p->t, first->ice_ufrag, first->ice_pwd) != 0) {
            *why = "the ICE restart failed";
            goto out;
        }
        g_strlcpy(p->remote_ufrag, first->ice_ufrag, sizeof(p->remote_ufrag));
        *restart = true;
    }
    answer = peer_answer(p, s, send, pts, why);
out:
    g_free(send);
    g_free(pts);
    sdp_free(s);
    return answer;
}

char *media_peer_offer_more(struct media_peer *p, const char **why)
{
    struct media_room *r = p->room;
    if (!p->have_remote || !p->renegotiable) {
        *why = "its SDP has sections the server cannot offer again";
        return NULL;
    }
    if (p->pending) {
        *why = "an offer of the server is waiting for its answer";
        return NULL;
    }
    for (int k = 0; k < K_N; k++) {
        if (!r->codec[k].name[0] || p->n_secs + p->pending >= G_N_ELEMENTS(p->secs))
            continue;
        struct out_track *o = out_add(p, k);
        if (!o)
            break;
        struct sdp_offer_section *sec = &p->secs[p->n_secs + p->pending];
        memset(sec, 0, sizeof(*sec));
        sec->kind = k == K_AUDIO ? SDP_AUDIO : SDP_VIDEO;
        g_snprintf(sec->mid, sizeof(sec->mid), "y%u", p->n_secs + p->pending);
        sec->dir = SDP_SENDONLY;
        sec->codec = r->codec[k];
        memcpy(sec->extmap_ids, r->ext_ids, sizeof(sec->extmap_ids));
        /* The payload type and extension ids the peer already uses. */
        for (unsigned i = 0; i < p->n_secs; i++) {
            if (p->secs[i].kind == sec->kind) {
                sec->codec = p->secs[i].codec;
                memcpy(sec->extmap_ids, p->secs[i].extmap_ids, sizeof(sec->extmap_ids));
                break;
            }
        }
        set_send(&sec->send, p, o);
        p->pending++;
    }
    if (!p->pending) {
        *why = "no room for more sections";
        return NULL;
    }
    return peer_offer(p);
}

int media_peer_take_answer(struct media_peer *p, const char *answer, size_t len, const char **why)
{
    if (!p->pending) {
        *why = "no offer of the server is waiting for an answer";
        return -1;
    }
    struct sdp *s = sdp_parse(answer, len, why);
    if (!s)
        return -1;
    const struct sdp_media *first = NULL;
    int rc = -1;
    if (!remote_of(s, &first) || strcmp(first->ice_ufrag, p->remote_ufrag) != 0 ||
        g_ascii_strcasecmp(first->fp, p->remote_fp) != 0) {
        *why = "the answer must keep the connection's ICE credentials and certificate";
        goto out;
    }
    /* The new sections come to life as the answer accepts them. */
    for (unsigned j = p->n_secs; j < p->n_secs + p->pending; j++) {
        struct sdp_offer_section *sec = &p->secs[j];
        struct out_track *o = out_by_ssrc(p, sec->send.ssrc);
        for (guint i = 0; o && i < s->media->len; i++) {
            const struct sdp_media *m = g_ptr_array_index(s->media, i);
            if (strcmp(m->mid, sec->mid) != 0 || !m->port ||
                !(m->dir == SDP_RECVONLY || m->dir == SDP_SENDRECV))
                continue;
            for (guint k = 0; k < m->codecs->len; k++) {
                const struct sdp_codec *c = &g_array_index(m->codecs, struct sdp_codec, k);
                if (c->pt == sec->codec.pt)
                    take_receive(o, m, c);
            }
        }
    }
    p->n_secs += p->pending;
    p->n_sections = p->n_secs;
    rc = 0;
out:
    p->pending = rc == 0 ? 0 : p->pending;
    sdp_free(s);
    return rc;
}

int media_peer_add_candidate(struct media_peer *p, const char *candidate)
{
    if (!p->have_remote)
        return -1;
    if (!candidate) {
        media_transport_remote_done(p->t);
        return 0;
    }
    return media_transport_add_remote_candidate(p->t, candidate);
}

void media_peer_set_data(struct media_peer *p, void *data)
{
    p->data = data;
}

void *media_peer_data(const struct media_peer *p)
{
    return p->data;
}

enum media_transport_state media_peer_state(const struct media_peer *p)
{
    return p->state;
}

const char *media_peer_path(const struct media_peer *p)
{
    return media_transport_path(p->t);
}

/* ---------- rooms ---------- */

struct media_room *media_room_new(const struct media_room_config *config,
                                  const struct media_room_callbacks *cb, void *ud)
{
    if (!config->cert)
        return NULL;
    struct media_room *r = g_new0(struct media_room, 1);
    r->cfg = *config;
    r->cfg.record_dir = config->record_dir ? g_strdup(config->record_dir) : NULL;
    r->cfg.record_prefix = g_strdup(config->record_prefix ? config->record_prefix : "rec");
    r->cfg.public_ip = config->public_ip && *config->public_ip ? g_strdup(config->public_ip) : NULL;
    if (!r->cfg.max_bitrate)
        r->cfg.max_bitrate = DEFAULT_MAX_BITRATE;
    r->cb = *cb;
    r->ud = ud;
    r->peers = g_ptr_array_new();
    GSource *t = g_timeout_source_new(REMB_EVERY_MS);
    g_source_set_callback(t, on_remb_timer, r, NULL);
    r->remb_timer = g_source_attach(t, r->cfg.ctx);
    g_source_unref(t);
    return r;
}

void media_room_free(struct media_room *r)
{
    if (!r)
        return;
    source_drop(r->cfg.ctx, r->remb_timer);
    while (r->peers->len)
        media_peer_remove(g_ptr_array_index(r->peers, r->peers->len - 1));
    g_ptr_array_free(r->peers, TRUE);
    g_free((char *)r->cfg.record_dir);
    g_free((char *)r->cfg.record_prefix);
    g_free((char *)r->cfg.public_ip);
    g_free(r);
}

unsigned media_room_size(const struct media_room *r)
{
    return r->peers->len;
}
