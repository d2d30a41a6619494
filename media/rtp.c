/* RTP and RTCP packets (see rtp.h). */
#include "media/rtp.h"

#include <string.h>

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

bool rtp_is_rtcp(const uint8_t *p, size_t len)
{
    return len >= RTCP_HEADER_LEN && p[1] >= 192 && p[1] <= 223;
}

int rtp_parse(const uint8_t *p, size_t len, struct rtp_header *h)
{
    if (len < RTP_HEADER_MIN || p[0] >> 6 != 2)
        return -1;
    memset(h, 0, sizeof(*h));
    h->csrc_count = p[0] & 0x0f;
    h->marker = p[1] >> 7;
    h->payload_type = p[1] & 0x7f;
    h->seq = be16(p + 2);
    h->ts = be32(p + 4);
    h->ssrc = be32(p + 8);
    size_t off = RTP_HEADER_MIN + 4u * h->csrc_count;
    if (off > len)
        return -1;
    if (p[0] & 0x10) {
        if (len - off < 4)
            return -1;
        h->ext_profile = be16(p + off);
        h->ext_len = 4u * be16(p + off + 2);
        h->ext_off = off + 4;
        if (h->ext_len > len - h->ext_off)
            return -1;
        off = h->ext_off + h->ext_len;
    }
    size_t pad = 0;
    if (p[0] & 0x20) {
        pad = p[len - 1];
        if (pad == 0 || pad > len - off)
            return -1;
    }
    h->payload_off = off;
    h->payload_len = len - off - pad;
    return 0;
}

bool rtp_ext_find(const uint8_t *p, const struct rtp_header *h, uint8_t id, const uint8_t **data,
                  size_t *len)
{
    if (!h->ext_len || id == 0)
        return false;
    const uint8_t *e = p + h->ext_off;
    size_t n = h->ext_len, i = 0;
    bool one_byte = h->ext_profile == 0xBEDE;
    if (!one_byte && (h->ext_profile & 0xFFF0) != 0x1000)
        return false; /* not RFC 8285 */
    while (i < n) {
        if (e[i] == 0) { /* padding between elements */
            i++;
            continue;
        }
        uint8_t el_id;
        size_t el_len, hdr;
        if (one_byte) {
            el_id = e[i] >> 4;
            if (el_id == 15)
                return false; /* reserved: stop reading (RFC 8285 4.2) */
            el_len = (size_t)(e[i] & 0x0f) + 1;
            hdr = 1;
        } else {
            if (n - i < 2)
                return false;
            el_id = e[i];
            el_len = e[i + 1];
            hdr = 2;
        }
        if (el_len > n - i - hdr)
            return false;
        if (el_id == id) {
            *data = e + i + hdr;
            *len = el_len;
            return true;
        }
        i += hdr + el_len;
    }
    return false;
}

void rtp_set_seq(uint8_t *p, uint16_t seq)
{
    put16(p + 2, seq);
}

void rtp_set_ts(uint8_t *p, uint32_t ts)
{
    put32(p + 4, ts);
}

void rtp_set_ssrc(uint8_t *p, uint32_t ssrc)
{
    put32(p + 8, ssrc);
}

void rtp_set_payload_type(uint8_t *p, uint8_t pt)
{
    p[1] = (uint8_t)((p[1] & 0x80) | (pt & 0x7f));
}

bool rtcp_next(const uint8_t *p, size_t len, size_t *off, struct rtcp_packet *out)
{
    size_t o = *off;
    if (o >= len || len - o < RTCP_HEADER_LEN || p[o] >> 6 != 2)
        return false;
    size_t pkt_len = 4u * ((size_t)be16(p + o + 2) + 1);
    if (pkt_len > len - o)
        return false;
    out->fmt = p[o] & 0x1f;
    out->type = p[o + 1];
    out->body = p + o + RTCP_HEADER_LEN;
    out->body_len = pkt_len - RTCP_HEADER_LEN;
    *off = o + pkt_len;
    return true;
}

bool rtcp_fb_ssrcs(const struct rtcp_packet *pkt, uint32_t *sender, uint32_t *media)
{
    if (pkt->body_len < 8)
        return false;
    *sender = be32(pkt->body);
    *media = be32(pkt->body + 4);
    return true;
}

int rtcp_nack_each(const struct rtcp_packet *pkt, rtcp_nack_cb cb, void *ud)
{
    if (pkt->type != RTCP_RTPFB || pkt->fmt != RTCP_FMT_NACK || pkt->body_len < 8)
        return 0;
    int count = 0;
    for (size_t i = 8; i + 4 <= pkt->body_len; i += 4) {
        uint16_t pid = be16(pkt->body + i), blp = be16(pkt->body + i + 2);
        cb(pid, ud);
        count++;
        for (int b = 0; b < 16; b++) {
            if (blp & (1u << b)) {
                cb((uint16_t)(pid + b + 1), ud);
                count++;
            }
        }
    }
    return count;
}

/* The header and the two SSRCs of a feedback packet of `words` 32-bit
 * words after the header. */
static void fb_header(uint8_t *buf, uint8_t fmt, uint8_t type, size_t words, uint32_t sender,
                      uint32_t media)
{
    buf[0] = (uint8_t)(0x80 | fmt);
    buf[1] = type;
    put16(buf + 2, (uint16_t)words);
    put32(buf + 4, sender);
    put32(buf + 8, media);
}

size_t rtcp_write_pli(uint8_t *buf, size_t cap, uint32_t sender, uint32_t media)
{
    if (cap < 12)
        return 0;
    fb_header(buf, RTCP_FMT_PLI, RTCP_PSFB, 2, sender, media);
    return 12;
}

size_t rtcp_write_fir(uint8_t *buf, size_t cap, uint32_t sender, uint32_t media, uint8_t seq_nr)
{
    if (cap < 20)
        return 0;
    /* RFC 5104 4.3.1.2: the header's media SSRC is unused (0); the FCI
     * names the stream. */
    fb_header(buf, RTCP_FMT_FIR, RTCP_PSFB, 4, sender, 0);
    put32(buf + 12, media);
    buf[16] = seq_nr;
    buf[17] = buf[18] = buf[19] = 0;
    return 20;
}

size_t rtcp_write_nack(uint8_t *buf, size_t cap, uint32_t sender, uint32_t media,
                       const uint16_t *seqs, size_t n)
{
    if (n == 0 || cap < 16)
        return 0;
    size_t off = 12;
    for (size_t i = 0; i < n;) {
        if (cap - off < 4)
            return 0;
        uint16_t pid = seqs[i++], blp = 0;
        while (i < n) {
            uint16_t d = (uint16_t)(seqs[i] - pid);
            if (d < 1 || d > 16)
                break;
            blp |= (uint16_t)(1u << (d - 1));
            i++;
        }
        put16(buf + off, pid);
        put16(buf + off + 2, blp);
        off += 4;
    }
    fb_header(buf, RTCP_FMT_NACK, RTCP_RTPFB, off / 4 - 1, sender, media);
    return off;
}

bool rtcp_remb_read(const struct rtcp_packet *pkt, uint64_t *bitrate)
{
    /* sender, media (0), "REMB", count, exponent and mantissa, SSRCs. */
    if (pkt->type != RTCP_PSFB || pkt->fmt != RTCP_FMT_REMB || pkt->body_len < 16 ||
        memcmp(pkt->body + 8, "REMB", 4) != 0)
        return false;
    const uint8_t *b = pkt->body + 12;
    size_t n = b[0];
    if (pkt->body_len < 16 + 4 * n)
        return false;
    unsigned exp = b[1] >> 2;
    uint64_t mantissa = ((uint64_t)(b[1] & 3) << 16) | ((uint64_t)b[2] << 8) | b[3];
    if (exp > 46)
        return false; /* more than 2^64 bits/s */
    *bitrate = mantissa << exp;
    return true;
}

size_t rtcp_write_remb(uint8_t *buf, size_t cap, uint32_t sender, uint64_t bitrate,
                       const uint32_t *ssrcs, size_t n)
{
    size_t len = 20 + 4 * n;
    if (n > 255 || cap < len)
        return 0;
    unsigned exp = 0;
    while ((bitrate >> exp) > 0x3ffff)
        exp++;
    uint32_t mantissa = (uint32_t)(bitrate >> exp);
    fb_header(buf, RTCP_FMT_REMB, RTCP_PSFB, len / 4 - 1, sender, 0);
    memcpy(buf + 12, "REMB", 4);
    buf[16] = (uint8_t)n;
    buf[17] = (uint8_t)((exp << 2) | (mantissa >> 16));
    put16(buf + 18, (uint16_t)(mantissa & 0xffff));
    for (size_t i = 0; i < n; i++)
        put32(buf + 20 + 4 * i, ssrcs[i]);
    return len;
}

void rtp_rewrite(struct rtp_rewriter *r, uint32_t ssrc, uint16_t seq, uint32_t ts, uint32_t ts_gap,
                 uint16_t *seq_out, uint32_t *ts_out)
{
    if (!r->started || ssrc != r->src_ssrc) {
        uint16_t next_seq = r->started ? (uint16_t)(r->last_seq + 1) : seq;
        uint32_t next_ts = r->started ? r->last_ts + ts_gap : ts;
        r->seq_delta = (uint16_t)(next_seq - seq);
        r->ts_delta = next_ts - ts;
        r->src_ssrc = ssrc;
        if (!r->started) {
            r->last_seq = (uint16_t)(next_seq - 1);
            r->last_ts = next_ts;
        }
        r->started = true;
    }
    *seq_out = (uint16_t)(seq + r->seq_delta);
    *ts_out = ts + r->ts_delta;
    /* Late (reordered) packets keep their place; only newer ones move the
     * end on. */
    if ((int16_t)(*seq_out - r->last_seq) > 0)
        r->last_seq = *seq_out;
    if ((int32_t)(*ts_out - r->last_ts) > 0)
        r->last_ts = *ts_out;
}
