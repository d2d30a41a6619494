/* Reception statistics of the RTP streams the SFU receives, and the RTCP
 * receiver reports made from them (RFC 3550 6.4.2, with the sequence
 * accounting of its appendix A.1, the loss fraction of A.3 and the
 * interarrival jitter of A.8), so that publishers learn the loss, jitter
 * and round-trip time of their path to the server and adapt their
 * sending, as senders do with any WebRTC peer. */
#ifndef YJT_MEDIA_RTCP_RR_H
#define YJT_MEDIA_RTCP_RR_H

#include "media/rtp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What is known of one received stream (zeroed: nothing yet). */
struct rtp_rx_stats {
    bool started;
    uint16_t max_seq;
    uint32_t cycles; /* sequence number wraps, shifted left 16 */
    uint32_t base_seq;
    uint32_t received;
    uint32_t expected_prior, received_prior; /* at the last report */
    bool have_transit;
    int64_t transit; /* arrival - RTP timestamp of the last packet, in clock units */
    double jitter;   /* in clock units */
    uint32_t lsr;    /* the middle 32 bits of the last SR's NTP time (0: none) */
    int64_t lsr_at_us;
};

/* One report block (RFC 3550 6.4.1). */
struct rtcp_report_block {
    uint32_t ssrc;
    uint8_t fraction_lost; /* since the last report, in 1/256 */
    int32_t cumulative_lost;
    uint32_t ext_max_seq;
    uint32_t jitter;
    uint32_t lsr, dlsr; /* dlsr in 1/65536 s */
};

/* Counts a packet of the stream: its sequence number and RTP timestamp,
 * when it arrived (monotonic microseconds) and the codec's clock rate. A
 * jump of more than 3,000 ahead or 100 behind starts the count again (the
 * sender restarted). */
void rtp_rx_update(struct rtp_rx_stats *s, uint16_t seq, uint32_t ts, int64_t arrival_us,
                   uint32_t clock_rate);
/* Notes a sender report of the stream that arrived at now_us. */
void rtp_rx_sender_report(struct rtp_rx_stats *s, uint32_t lsr, int64_t now_us);
/* Fills b for the stream ssrc as of now_us, and starts a new interval for
 * the next report's loss fraction. False if nothing was received yet. */
bool rtp_rx_report(struct rtp_rx_stats *s, uint32_t ssrc, int64_t now_us,
                   struct rtcp_report_block *b);

/* The sender SSRC and the LSR value (middle 32 bits of its NTP time) of
 * a sender report; false if pkt is not a well-formed SR. */
bool rtcp_sr_read(const struct rtcp_packet *pkt, uint32_t *ssrc, uint32_t *lsr);
/* Writes into out (at least 28 bytes) the sender report pkt (an SR:
 * rtcp_sr_read() true) as another sender's: its SSRC replaced and its
 * RTP timestamp moved by ts_delta, with no report blocks (they tell of
 * what its first sender receives). Its length. */
size_t rtcp_sr_restamp(const struct rtcp_packet *pkt, uint32_t ssrc, uint32_t ts_delta,
                       uint8_t *out);
/* A receiver report from sender with n blocks (at most 31); its length,
 * or 0 when cap is too small. */
size_t rtcp_write_rr(uint8_t *buf, size_t cap, uint32_t sender, const struct rtcp_report_block *b,
                     size_t n);
/* The blocks of a receiver report, into b (at most max); how many, or -1
 * if pkt is not a well-formed RR. */
int rtcp_rr_read(const struct rtcp_packet *pkt, struct rtcp_report_block *b, int max);

#endif
