/* Receiver reports (see rtcp_rr.h). */
#include "media/rtcp_rr.h"

#include <string.h>

#define MAX_DROPOUT 3000
#define MAX_MISORDER 100

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void restart(struct rtp_rx_stats *s, uint16_t seq)
{
    s->started = true;
    s->base_seq = seq;
    s->max_seq = seq;
    s->cycles = 0;
    s->received = 0;
    s->expected_prior = s->received_prior = 0;
    s->have_transit = false;
    s->jitter = 0;
}

void rtp_rx_update(struct rtp_rx_stats *s, uint16_t seq, uint32_t ts, int64_t arrival_us,
                   uint32_t clock_rate)
{
    if (!s->started) {
        restart(s, seq);
    } else {
        uint16_t ahead = (uint16_t)(seq - s->max_seq);
        if (ahead < MAX_DROPOUT) {
            if (seq < s->max_seq)
                s->cycles += 1u << 16; /* wrapped */
            s->max_seq = seq;
        } else if (ahead <= 65536 - MAX_MISORDER) {
            restart(s, seq); /* a jump: the sender started again */
        }                    /* else late or duplicated: counted, not the newest */
    }
    s->received++;
    if (!clock_rate)
        return;
    /* A.8: the spread of (arrival - timestamp), in the stream's units. */
    int64_t arrival = arrival_us * (int64_t)clock_rate / 1000000;
    int64_t transit = arrival - (int64_t)ts;
    if (s->have_transit) {
        int64_t d = transit - s->transit;
        /* a timestamp that wrapped between two packets is not a delay */
        if (d > -((int64_t)1 << 31) && d < ((int64_t)1 << 31))
            s->jitter += ((double)(d < 0 ? -d : d) - s->jitter) / 16.0;
    }
    s->transit = transit;
    s->have_transit = true;
}

void rtp_rx_sender_report(struct rtp_rx_stats *s, uint32_t lsr, int64_t now_us)
{
    s->lsr = lsr;
    s->lsr_at_us = now_us;
}

bool rtp_rx_report(struct rtp_rx_stats *s, uint32_t ssrc, int64_t now_us,
                   struct rtcp_report_block *b)
{
    if (!s->started || !s->received)
        return false;
    uint32_t ext_max = s->cycles + s->max_seq;
    uint32_t expected = ext_max - s->base_seq + 1;
    int64_t lost = (int64_t)expected - (int64_t)s->received;
    uint32_t expected_interval = expected - s->expected_prior;
    uint32_t received_interval = s->received - s->received_prior;
    int64_t lost_interval = (int64_t)expected_interval - (int64_t)received_interval;
    s->expected_prior = expected;
    s->received_prior = s->received;
    memset(b, 0, sizeof(*b));
    b->ssrc = ssrc;
    int64_t fraction =
        expected_interval == 0 || lost_interval <= 0 ? 0 : (lost_interval << 8) / expected_interval;
    b->fraction_lost = (uint8_t)(fraction > 255 ? 255 : fraction);
    /* 24 bits, signed (duplicates can make it negative) */
    b->cumulative_lost = (int32_t)(lost > 0x7FFFFF    ? 0x7FFFFF
                                   : lost < -0x800000 ? -0x800000
                                                      : lost);
    b->ext_max_seq = ext_max;
    b->jitter = (uint32_t)s->jitter;
    if (s->lsr) {
        b->lsr = s->lsr;
        int64_t since = now_us - s->lsr_at_us;
        int64_t dlsr = since <= 0 ? 0 : since * 65536 / 1000000;
        b->dlsr = (uint32_t)(dlsr > (int64_t)UINT32_MAX ? UINT32_MAX : dlsr);
    }
    return true;
}

bool rtcp_sr_read(const struct rtcp_packet *pkt, uint32_t *ssrc, uint32_t *lsr)
{
    /* SSRC, NTP seconds, NTP fraction, RTP timestamp, packets, octets */
    if (pkt->type != RTCP_SR || pkt->body_len < 24)
        return false;
    *ssrc = get32(pkt->body);
    uint32_t ntp_hi = get32(pkt->body + 4), ntp_lo = get32(pkt->body + 8);
    *lsr = ntp_hi << 16 | ntp_lo >> 16;
    return true;
}

size_t rtcp_sr_restamp(const struct rtcp_packet *pkt, uint32_t ssrc, uint32_t ts_delta,
                       uint8_t *out)
{
    out[0] = 0x80; /* no report blocks */
    out[1] = RTCP_SR;
    out[2] = 0;
    out[3] = 6; /* 28 bytes */
    memcpy(out + 4, pkt->body, 24);
    put32(out + 4, ssrc);
    put32(out + 16, get32(pkt->body + 12) + ts_delta);
    return 28;
}

size_t rtcp_write_rr(uint8_t *buf, size_t cap, uint32_t sender, const struct rtcp_report_block *b,
                     size_t n)
{
    size_t len = 8 + 24 * n;
    if (n > 31 || cap < len)
        return 0;
    buf[0] = (uint8_t)(0x80 | n);
    buf[1] = RTCP_RR;
    buf[2] = (uint8_t)((len / 4 - 1) >> 8);
    buf[3] = (uint8_t)(len / 4 - 1);
    put32(buf + 4, sender);
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = buf + 8 + 24 * i;
        put32(p, b[i].ssrc);
        put32(p + 4,
              (uint32_t)b[i].fraction_lost << 24 | ((uint32_t)b[i].cumulative_lost & 0xFFFFFF));
        put32(p + 8, b[i].ext_max_seq);
        put32(p + 12, b[i].jitter);
        put32(p + 16, b[i].lsr);
        put32(p + 20, b[i].dlsr);
    }
    return len;
}

int rtcp_rr_read(const struct rtcp_packet *pkt, struct rtcp_report_block *b, int max)
{
    if (pkt->type != RTCP_RR || pkt->body_len < 4 + 24u * pkt->fmt)
        return -1;
    int n = 0;
    for (int i = 0; i < pkt->fmt && n < max; i++, n++) {
        const uint8_t *p = pkt->body + 4 + 24 * i;
        uint32_t w = get32(p + 4);
        b[n].ssrc = get32(p);
        b[n].fraction_lost = (uint8_t)(w >> 24);
        int32_t lost = (int32_t)(w & 0xFFFFFF);
        b[n].cumulative_lost = lost & 0x800000 ? lost - 0x1000000 : lost;
        b[n].ext_max_seq = get32(p + 8);
        b[n].jitter = get32(p + 12);
        b[n].lsr = get32(p + 16);
        b[n].dlsr = get32(p + 20);
    }
    return n;
}
