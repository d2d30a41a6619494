/* Recording forwarded streams to IVF, Annex-B and Ogg files (see
 * record.h). */
#include "media/record.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#define WIN 64 /* packets held for reordering (a power of two) */
#define HOLD_US (300 * 1000)
#define PKT_MAX 1500
#define FRAME_MAX (4 * 1024 * 1024) /* a video frame larger than this is dropped */
#define IVF_HEADER 32
#define IVF_UPDATE_MS 1000 /* media time between updates of the IVF duration */

struct held {
    bool used;
    uint16_t seq, len;
    int64_t at_us;
    uint8_t data[PKT_MAX];
};

struct media_recorder {
    int fd;
    bool failed;
    enum media_rec_codec codec;
    /* reordering */
    bool started;
    uint16_t next; /* the next sequence number to write */
    unsigned n_held;
    struct held *win;
    bool lost; /* a gap since the last packet written */
    /* time: RTP timestamps unwrapped, from the first packet */
    bool have_ts;
    uint32_t last_ts;
    int64_t ts_ext, ts0;
    int clock;
    /* video frame assembly */
    GByteArray *frame;
    bool frame_ok;
    uint32_t frame_ts;
    bool need_key, key_req;
    bool au_key; /* H.264: the access unit being gathered has an IDR */
    bool header_done;
    int64_t last_update_ms; /* media time of the last duration update */
    /* Ogg */
    uint32_t serial, page_seq;
    /* progress */
    uint64_t frames;
    bool any; /* a frame (or Opus packet) was written */
    int64_t first_pts, last_pts; /* in clock ticks */
};

int media_rec_codec_of(const char *name)
{
    if (g_ascii_strcasecmp(name, "VP8") == 0)
        return MEDIA_REC_VP8;
    if (g_ascii_strcasecmp(name, "H264") == 0)
        return MEDIA_REC_H264;
    if (g_ascii_strcasecmp(name, "opus") == 0)
        return MEDIA_REC_OPUS;
    return -1;
}

const char *media_rec_ext(enum media_rec_codec c)
{
    return c == MEDIA_REC_VP8 ? "ivf" : c == MEDIA_REC_H264 ? "h264" : "ogg";
}

/* ---------- output ---------- */

static void put(struct media_recorder *r, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (!r->failed && len) {
        ssize_t n = write(r->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r->failed = true;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void le16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *b, uint32_t v)
{
    le16(b, (uint16_t)v);
    le16(b + 2, (uint16_t)(v >> 16));
}

static void le64(uint8_t *b, uint64_t v)
{
    le32(b, (uint32_t)v);
    le32(b + 4, (uint32_t)(v >> 32));
}

static int64_t pts_ms(const struct media_recorder *r, int64_t ticks)
{
    return ticks * 1000 / r->clock;
}

/* IVF: a 32-byte header (time base 1/1000 s), then each frame's size, its
 * time in ms and its bytes. The header's duration field (ms) is kept up to
 * date so a cut-short file still says how long it is. */
static void ivf_header(struct media_recorder *r, uint16_t width, uint16_t height)
{
    uint8_t h[IVF_HEADER] = {'D', 'K', 'I', 'F'};
    le16(h + 4, 0);
    le16(h + 6, IVF_HEADER);
    memcpy(h + 8, "VP80", 4);
    le16(h + 12, width);
    le16(h + 14, height);
    le32(h + 16, 1000); /* time base denominator */
    le32(h + 20, 1);    /* and numerator */
    put(r, h, sizeof(h));
}

static void ivf_update_duration(struct media_recorder *r)
{
    if (r->codec != MEDIA_REC_VP8 || !r->header_done || r->failed || !r->any)
        return;
    uint8_t d[4];
    /* The span of the frames, plus one frame's worth (33 ms). */
    le32(d, (uint32_t)(pts_ms(r, r->last_pts - r->first_pts) + 33));
    if (pwrite(r->fd, d, 4, 24) != 4)
        r->failed = true;
    r->last_update_ms = pts_ms(r, r->last_pts - r->first_pts);
}

static void note_frame(struct media_recorder *r, int64_t pts)
{
    if (!r->any)
        r->first_pts = pts;
    r->any = true;
    r->last_pts = pts;
    r->frames++;
}

/* Ogg (RFC 3533) pages, one packet each; CRC-32 of polynomial 0x04c11db7. */
static uint32_t ogg_crc(const uint8_t *p, size_t n, uint32_t crc)
{
    static uint32_t table[256];
    if (!table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i << 24;
            for (int k = 0; k < 8; k++)
                c = c & 0x80000000u ? (c << 1) ^ 0x04c11db7u : c << 1;
            table[i] = c;
        }
    }
    for (size_t i = 0; i < n; i++)
        crc = (crc << 8) ^ table[((crc >> 24) ^ p[i]) & 0xff];
    return crc;
}

static void ogg_page(struct media_recorder *r, const uint8_t *pkt, size_t len, uint64_t granule,
                     uint8_t flags)
{
    uint8_t h[27 + 255];
    size_t segs = len / 255 + 1;
    if (segs > 255)
        return; /* larger than one page: not an Opus packet */
    memcpy(h, "OggS", 4);
    h[4] = 0;
    h[5] = flags;
    le64(h + 6, granule);
    le32(h + 14, r->serial);
    le32(h + 18, r->page_seq++);
    le32(h + 22, 0);
    h[26] = (uint8_t)segs;
    for (size_t i = 0; i < segs; i++)
        h[27 + i] = i + 1 < segs ? 255 : (uint8_t)(len % 255);
    uint32_t crc = ogg_crc(h, 27 + segs, 0);
    crc = ogg_crc(pkt, len, crc);
    le32(h + 22, crc);
    put(r, h, 27 + segs);
    put(r, pkt, len);
}

static void opus_headers(struct media_recorder *r)
{
    uint8_t head[19] = {'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2};
    le16(head + 10, 0);     /* pre-skip */
    le32(head + 12, 48000); /* the input's rate */
    le16(head + 16, 0);     /* gain */
    head[18] = 0;           /* mono or stereo, no mapping table */
    ogg_page(r, head, sizeof(head), 0, 0x02);
    static const char vendor[] = "yjt";
    uint8_t tags[8 + 4 + sizeof(vendor) - 1 + 4];
    memcpy(tags, "OpusTags", 8);
    le32(tags + 8, sizeof(vendor) - 1);
    memcpy(tags + 12, vendor, sizeof(vendor) - 1);
    le32(tags + 12 + sizeof(vendor) - 1, 0);
    ogg_page(r, tags, sizeof(tags), 0, 0);
}

/* Samples (at 48 kHz) in an Opus packet, from its TOC (RFC 6716 3.1). */
static unsigned opus_samples(const uint8_t *p, size_t n)
{
    if (n < 1)
        return 0;
    unsigned config = p[0] >> 3, per; /* samples per frame at 48 kHz */
    if (config < 12)
        per = (unsigned[]){480, 960, 1920, 2880}[config % 4];
    else if (config < 16)
        per = config % 2 ? 960 : 480;
    else
        per = (unsigned[]){120, 240, 480, 960}[config % 4];
    unsigned frames = (p[0] & 3) == 0 ? 1 : (p[0] & 3) < 3 ? 2 : n > 1 ? (p[1] & 0x3f) : 0;
    unsigned total = per * frames;
    return total > 5760 ? 0 : total; /* at most 120 ms */
}

/* ---------- in order: one packet at a time ---------- */

static int64_t unwrap(struct media_recorder *r, uint32_t ts)
{
    if (!r->have_ts) {
        r->have_ts = true;
        r->ts_ext = 0;
        r->ts0 = 0;
    } else {
        r->ts_ext += (int32_t)(ts - r->last_ts);
    }
    r->last_ts = ts;
    return r->ts_ext - r->ts0;
}

static void video_frame_done(struct media_recorder *r, bool key, int64_t pts)
{
    if (r->need_key && !key)
        return;
    r->need_key = false;
    const uint8_t *f = r->frame->data;
    size_t n = r->frame->len;
    if (r->codec == MEDIA_REC_VP8) {
        if (!r->header_done) {
            /* A key frame: start code, then 14-bit width and height. */
            uint16_t w = 0, h = 0;
            if (n >= 10 && f[3] == 0x9d && f[4] == 0x01 && f[5] == 0x2a) {
                w = (uint16_t)((f[6] | f[7] << 8) & 0x3fff);
                h = (uint16_t)((f[8] | f[9] << 8) & 0x3fff);
            }
            ivf_header(r, w, h);
            r->header_done = true;
        }
    }
    note_frame(r, pts);
    if (r->codec == MEDIA_REC_VP8) {
        uint8_t fh[12];
        le32(fh, (uint32_t)n);
        le64(fh + 4, (uint64_t)pts_ms(r, pts - r->first_pts));
        put(r, fh, sizeof(fh));
    }
    put(r, f, n);
    if (r->frames == 1 ||
        pts_ms(r, r->last_pts - r->first_pts) - r->last_update_ms >= IVF_UPDATE_MS)
        ivf_update_duration(r);
}

static void frame_append(struct media_recorder *r, const uint8_t *p, size_t n)
{
    if (r->frame->len + n > FRAME_MAX)
        r->frame_ok = false;
    else
        g_byte_array_append(r->frame, p, (guint)n);
}

static void vp8_packet(struct media_recorder *r, const uint8_t *pkt, const struct rtp_header *h,
                       int64_t pts)
{
    const uint8_t *p = pkt + h->payload_off;
    size_t n = h->payload_len, off = 1;
    if (n < 1)
        return;
    bool start = (p[0] & 0x10) && (p[0] & 0x07) == 0;
    if (p[0] & 0x80) { /* extended control bits */
        if (n < 2)
            return;
        uint8_t x = p[1];
        off = 2;
        if (x & 0x80) /* picture id, 7 or 15 bits */
            off += off < n && (p[off] & 0x80) ? 2 : 1;
        if (x & 0x40) /* TL0PICIDX */
            off++;
        if (x & 0x30) /* TID/KEYIDX */
            off++;
    }
    if (off > n)
        return;
    if (start) {
        g_byte_array_set_size(r->frame, 0);
        r->frame_ok = true;
        r->frame_ts = h->ts;
    } else if (!r->frame_ok || h->ts != r->frame_ts) {
        r->frame_ok = false;
        return;
    }
    frame_append(r, p + off, n - off);
    if (h->marker && r->frame_ok && r->frame->len >= 3) {
        video_frame_done(r, !(r->frame->data[0] & 1), pts);
        r->frame_ok = false;
    }
}

static void h264_nal(struct media_recorder *r, const uint8_t *p, size_t n, bool *key)
{
    static const uint8_t start[4] = {0, 0, 0, 1};
    if (n < 1)
        return;
    if ((p[0] & 0x1f) == 5)
        *key = true;
    frame_append(r, start, 4);
    frame_append(r, p, n);
}

/* RFC 6184: single NAL units, STAP-A and FU-A, gathered into access units
 * (one RTP timestamp, ending at the marker). */
static void h264_packet(struct media_recorder *r, const uint8_t *pkt, const struct rtp_header *h,
                        int64_t pts, bool *key)
{
    const uint8_t *p = pkt + h->payload_off;
    size_t n = h->payload_len;
    if (n < 1)
        return;
    if (!r->frame_ok || h->ts != r->frame_ts) {
        g_byte_array_set_size(r->frame, 0);
        r->frame_ok = true;
        r->frame_ts = h->ts;
        *key = false;
    }
    unsigned type = p[0] & 0x1f;
    if (type >= 1 && type <= 23) {
        h264_nal(r, p, n, key);
    } else if (type == 24) {
        for (size_t i = 1; i + 2 <= n;) {
            size_t len = (size_t)p[i] << 8 | p[i + 1];
            if (i + 2 + len > n)
                break;
            h264_nal(r, p + i + 2, len, key);
            i += 2 + len;
        }
    } else if (type == 28 && n >= 2) {
        uint8_t fu = p[1];
        if (fu & 0x80) {
            uint8_t hdr = (uint8_t)((p[0] & 0xe0) | (fu & 0x1f));
            h264_nal(r, &hdr, 1, key);
        }
        frame_append(r, p + 2, n - 2);
    }
    if (h->marker && r->frame_ok && r->frame->len) {
        video_frame_done(r, *key, pts);
        r->frame_ok = false;
    }
}

static void write_packet(struct media_recorder *r, const uint8_t *pkt, size_t len)
{
    struct rtp_header h;
    if (rtp_parse(pkt, len, &h) != 0)
        return;
    int64_t pts = unwrap(r, h.ts);
    if (r->lost && r->codec != MEDIA_REC_OPUS) {
        /* The frame in progress lost part of itself, and later frames
         * refer to what was lost: wait for a key frame. */
        r->frame_ok = false;
        if (!r->need_key)
            r->key_req = true;
        r->need_key = true;
    }
    r->lost = false;
    if (r->codec == MEDIA_REC_OPUS) {
        unsigned samples = opus_samples(pkt + h.payload_off, h.payload_len);
        if (!samples || (r->any && pts <= r->last_pts))
            return; /* granule positions only go forward */
        note_frame(r, pts);
        ogg_page(r, pkt + h.payload_off, h.payload_len,
                 (uint64_t)(pts - r->first_pts) + samples, 0);
    } else if (r->codec == MEDIA_REC_VP8) {
        vp8_packet(r, pkt, &h, pts);
    } else {
        h264_packet(r, pkt, &h, pts, &r->au_key);
    }
}

/* Writes held packets from r->next on while they are there; with force,
 * skips the gap to the oldest held packet first. */
static void drain(struct media_recorder *r, bool force)
{
    for (;;) {
        struct held *s = &r->win[r->next % WIN];
        if (s->used && s->seq == r->next) {
            write_packet(r, s->data, s->len);
            s->used = false;
            r->n_held--;
            r->next++;
            continue;
        }
        if (!force || !r->n_held)
            return;
        /* The oldest held packet: the smallest seq after next. */
        uint16_t best = 0;
        bool found = false;
        for (unsigned i = 0; i < WIN; i++) {
            if (r->win[i].used && (!found || (int16_t)(uint16_t)(r->win[i].seq - r->next) <
                                                 (int16_t)(uint16_t)(best - r->next))) {
                best = r->win[i].seq;
                found = true;
            }
        }
        r->next = best;
        r->lost = true;
        force = false;
    }
}

void media_recorder_packet(struct media_recorder *r, const uint8_t *pkt, size_t len,
                           const struct rtp_header *h)
{
    if (r->failed || len > PKT_MAX)
        return;
    int64_t now = g_get_monotonic_time();
    if (!r->started) {
        r->started = true;
        r->next = h->seq;
    }
    int16_t ahead = (int16_t)(uint16_t)(h->seq - r->next);
    if (ahead < 0)
        return; /* late: already skipped, or a duplicate */
    if (ahead >= WIN) {
        /* Far ahead: everything held is written, and the gap skipped. */
        while (r->n_held)
            drain(r, true);
        r->next = h->seq;
        r->lost = true;
    }
    struct held *s = &r->win[h->seq % WIN];
    if (s->used)
        return; /* a duplicate */
    s->used = true;
    s->seq = h->seq;
    s->len = (uint16_t)len;
    s->at_us = now;
    memcpy(s->data, pkt, len);
    r->n_held++;
    drain(r, false);
    /* A packet held too long means the one before it is lost. */
    while (r->n_held) {
        int64_t oldest = now;
        for (unsigned i = 0; i < WIN; i++)
            if (r->win[i].used && r->win[i].at_us < oldest)
                oldest = r->win[i].at_us;
        if (now - oldest < HOLD_US && r->n_held < WIN / 2)
            break;
        drain(r, true);
    }
}

bool media_recorder_take_keyframe_request(struct media_recorder *r)
{
    bool k = r->key_req;
    r->key_req = false;
    return k;
}

void media_recorder_progress(const struct media_recorder *r, uint64_t *frames, uint64_t *ms)
{
    *frames = r->frames;
    *ms = r->any ? (uint64_t)pts_ms(r, r->last_pts - r->first_pts) : 0;
}

struct media_recorder *media_recorder_open(const char *path, enum media_rec_codec codec,
                                           const char **why)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        *why = errno == EEXIST ? "the recording file exists already"
                               : "the recording file cannot be created";
        return NULL;
    }
    return media_recorder_open_fd(fd, codec);
}

struct media_recorder *media_recorder_open_fd(int fd, enum media_rec_codec codec)
{
    struct media_recorder *r = g_new0(struct media_recorder, 1);
    r->fd = fd;
    r->codec = codec;
    r->clock = codec == MEDIA_REC_OPUS ? 48000 : 90000;
    r->win = g_new0(struct held, WIN);
    r->frame = g_byte_array_new();
    r->need_key = codec != MEDIA_REC_OPUS;
    r->key_req = r->need_key;
    r->serial = g_random_int();
    if (codec == MEDIA_REC_OPUS)
        opus_headers(r);
    return r;
}

void media_recorder_close(struct media_recorder *r)
{
    if (!r)
        return;
    while (r->n_held)
        drain(r, true);
    ivf_update_duration(r);
    if (!r->failed)
        fsync(r->fd);
    close(r->fd);
    g_byte_array_free(r->frame, TRUE);
    g_free(r->win);
    g_free(r);
}
