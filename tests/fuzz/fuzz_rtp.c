/* libFuzzer target: the SFU's datagram demultiplexer (STUN, DTLS or
 * SRTP by first byte) and its RTP and RTCP readers on arbitrary datagrams.
 * Each input is read as RTP (header, every header extension id of both
 * forms) and as compound RTCP (every packet, feedback SSRCs, every NACKed
 * sequence number, sender and receiver reports), then the NACK numbers
 * and the receiver reports are written back and re-read: they must come
 * out the same. */
#include "media/dtls.h"
#include "media/rtcp_rr.h"
#include "media/rtp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct nacks {
    uint16_t seqs[4096];
    size_t n;
};

static void collect(uint16_t seq, void *ud)
{
    struct nacks *k = ud;
    if (k->n < sizeof(k->seqs) / sizeof(k->seqs[0]))
        k->seqs[k->n++] = seq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* RFC 7983: what a muxed datagram is, by its first byte. */
    enum media_demux d = media_demux(data, size);
    if (size &&
        ((d == DEMUX_STUN && data[0] > 3) || (d == DEMUX_DTLS && (data[0] < 20 || data[0] > 63)) ||
         (d == DEMUX_RTP && (data[0] < 128 || data[0] > 191))))
        abort();
    struct rtp_header h;
    if (!rtp_is_rtcp(data, size) && rtp_parse(data, size, &h) == 0) {
        if (h.payload_off + h.payload_len > size)
            abort();
        for (int id = 1; id < 256; id++) {
            const uint8_t *v;
            size_t n;
            if (rtp_ext_find(data, &h, (uint8_t)id, &v, &n) && (v < data || v + n > data + size))
                abort();
        }
    }
    size_t off = 0;
    struct rtcp_packet p;
    static struct nacks k, again;
    while (rtcp_next(data, size, &off, &p)) {
        if (p.body + p.body_len > data + size)
            abort();
        uint32_t sender, media;
        uint64_t rate;
        uint32_t lsr;
        if (rtcp_sr_read(&p, &sender, &lsr)) {
            /* passed on as another stream's: read back with that SSRC */
            uint8_t sr[28];
            struct rtcp_packet q;
            size_t o = 0;
            uint32_t s2, l2;
            if (rtcp_sr_restamp(&p, sender ^ 1, 7, sr) != sizeof(sr) ||
                !rtcp_next(sr, sizeof(sr), &o, &q) || !rtcp_sr_read(&q, &s2, &l2) ||
                s2 != (sender ^ 1) || l2 != lsr)
                __builtin_trap();
        }
        /* A receiver report written back and read again says the same. */
        struct rtcp_report_block rb_in[31], rb_back[31];
        memset(rb_in, 0, sizeof(rb_in)); /* and their padding */
        memset(rb_back, 0, sizeof(rb_back));
        int nrb = rtcp_rr_read(&p, rb_in, 31);
        if (nrb > 0) {
            uint8_t rr[8 + 24 * 31];
            size_t rl = rtcp_write_rr(rr, sizeof(rr), 1, rb_in, (size_t)nrb);
            struct rtcp_packet q;
            size_t o = 0;
            if (!rl || !rtcp_next(rr, rl, &o, &q) || rtcp_rr_read(&q, rb_back, 31) != nrb ||
                memcmp(rb_in, rb_back, sizeof(rb_in[0]) * (size_t)nrb) != 0)
                __builtin_trap();
        }
        if (rtcp_remb_read(&p, &rate)) {
            /* A REMB read back as written says the same (to 18 bits). */
            uint8_t rb[24];
            size_t rl = rtcp_write_remb(rb, sizeof(rb), 1, rate, &media, 0);
            struct rtcp_packet q;
            size_t o = 0;
            uint64_t back = 0;
            if (!rl || !rtcp_next(rb, rl, &o, &q) || !rtcp_remb_read(&q, &back) || back > rate)
                __builtin_trap();
        }
        if (!rtcp_fb_ssrcs(&p, &sender, &media))
            continue;
        k.n = 0;
        rtcp_nack_each(&p, collect, &k);
        if (k.n == 0 || k.n > 512)
            continue;
        /* Written back (ascending as sent: the reader's order is) and read
         * again: the same numbers. */
        static uint8_t buf[16 + 4 * 512];
        size_t len = rtcp_write_nack(buf, sizeof(buf), sender, media, k.seqs, k.n);
        if (!len)
            abort();
        size_t o = 0;
        struct rtcp_packet q;
        again.n = 0;
        if (!rtcp_next(buf, len, &o, &q) || o != len)
            abort();
        rtcp_nack_each(&q, collect, &again);
        /* Repeated or unordered numbers may pack differently, but every
         * number asked for is asked for again. */
        for (size_t i = 0; i < k.n; i++) {
            size_t j = 0;
            while (j < again.n && again.seqs[j] != k.seqs[i])
                j++;
            if (j == again.n)
                abort();
        }
    }
    return 0;
}
