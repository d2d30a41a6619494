/* RTP and RTCP packets as the SFU reads, rewrites and writes them
 * (RFC 3550, RFC 5761 multiplexing, RFC 8285 header extensions, RFC 4585
 * feedback: NACK and PLI, RFC 5104 FIR).
 *
 * Every function here takes bytes straight from the network: lengths are
 * checked against the buffer before anything is read, and a packet that
 * does not add up is refused as a whole (-1 / false), never half-read. */
#ifndef YJT_MEDIA_RTP_H
#define YJT_MEDIA_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTP_HEADER_MIN 12
#define RTCP_HEADER_LEN 4

/* RTCP packet types and feedback formats used here. */
enum {
    RTCP_SR = 200,
    RTCP_RR = 201,
    RTCP_SDES = 202,
    RTCP_BYE = 203,
    RTCP_RTPFB = 205, /* transport feedback: FMT 1 generic NACK, 15 TWCC */
    RTCP_PSFB = 206,  /* payload-specific: FMT 1 PLI, 4 FIR, 15 REMB */
};
#define RTCP_FMT_NACK 1
#define RTCP_FMT_PLI 1
#define RTCP_FMT_FIR 4
#define RTCP_FMT_REMB 15 /* PSFB application layer feedback */

struct rtp_header {
    bool marker;
    uint8_t payload_type;
    uint16_t seq;
    uint32_t ts, ssrc;
    uint8_t csrc_count;
    /* Header extension block (RFC 3550 5.3.1): its profile (0xBEDE for
     * one-byte elements, 0x100X for two-byte) and its data, if any. */
    uint16_t ext_profile;
    size_t ext_off, ext_len;
    size_t payload_off, payload_len; /* padding excluded */
};

/* True when a datagram on a muxed transport is RTCP rather than RTP (its
 * second byte is 192..223, RFC 5761 4). */
bool rtp_is_rtcp(const uint8_t *p, size_t len);

/* Reads an RTP packet's header: 0, or -1 when it is not a valid RTP
 * packet (version, lengths of CSRCs, extension and padding). */
int rtp_parse(const uint8_t *p, size_t len, struct rtp_header *h);

/* The data of header extension element id (1..14 one-byte, 1..255
 * two-byte): true with *data and *len set, false if absent. */
bool rtp_ext_find(const uint8_t *p, const struct rtp_header *h, uint8_t id, const uint8_t **data,
                  size_t *len);

/* Rewrites fields of a packet rtp_parse() accepted. */
void rtp_set_seq(uint8_t *p, uint16_t seq);
void rtp_set_ts(uint8_t *p, uint32_t ts);
void rtp_set_ssrc(uint8_t *p, uint32_t ssrc);
void rtp_set_payload_type(uint8_t *p, uint8_t pt);

/* One packet of a compound RTCP datagram. */
struct rtcp_packet {
    uint8_t type, fmt;   /* fmt: the RC/FMT field */
    const uint8_t *body; /* after the 4-byte header */
    size_t body_len;
};

/* Walks a compound RTCP datagram: each call gives the next packet at
 * *off and advances it. false at the end, or at a packet whose length
 * field runs past the datagram (the rest is then ignored). */
bool rtcp_next(const uint8_t *p, size_t len, size_t *off, struct rtcp_packet *out);

/* Sender and media SSRC of a feedback packet (RTPFB/PSFB): false if the
 * packet is too short. */
bool rtcp_fb_ssrcs(const struct rtcp_packet *pkt, uint32_t *sender, uint32_t *media);

/* Calls cb for every sequence number a generic NACK asks for (each item
 * is a packet id and a bitmask of the 16 after it). Returns how many. */
typedef void (*rtcp_nack_cb)(uint16_t seq, void *ud);
int rtcp_nack_each(const struct rtcp_packet *pkt, rtcp_nack_cb cb, void *ud);

/* Writers: the packet's length, or 0 when cap is too small. */
size_t rtcp_write_pli(uint8_t *buf, size_t cap, uint32_t sender, uint32_t media);
size_t rtcp_write_fir(uint8_t *buf, size_t cap, uint32_t sender, uint32_t media, uint8_t seq_nr);
/* A NACK for n sequence numbers (ascending, modulo 2^16), packed into as
 * few items as they allow. */
size_t rtcp_write_nack(uint8_t *buf, size_t cap, uint32_t sender, uint32_t media,
                       const uint16_t *seqs, size_t n);

/* Receiver Estimated Maximum Bitrate (draft-alvestrand-rmcat-remb): the
 * bitrate in bits/s the receiver asks senders to stay under, for the
 * streams it lists. false if pkt is not a well-formed REMB. */
bool rtcp_remb_read(const struct rtcp_packet *pkt, uint64_t *bitrate);
/* A REMB of bitrate for the n SSRCs listed (n at most 255). */
size_t rtcp_write_remb(uint8_t *buf, size_t cap, uint32_t sender, uint64_t bitrate,
                       const uint32_t *ssrcs, size_t n);

/* Seamless outgoing numbering for a subscriber whose source may change
 * (another publisher, a restarted stream): sequence numbers continue
 * one by one across a switch, and timestamps continue from the last one
 * sent, so the subscriber's decoder sees one stream. */
struct rtp_rewriter {
    bool started;
    uint32_t src_ssrc;
    uint16_t seq_delta; /* out = in + delta */
    uint32_t ts_delta;
    uint16_t last_seq; /* last sent */
    uint32_t last_ts;
};

/* The outgoing seq and ts of an incoming packet of source ssrc. A packet of
 * a new source starts a new mapping: its first packet follows the last one
 * sent (seq + 1, ts + ts_gap, the clock ticks the switch is worth). */
void rtp_rewrite(struct rtp_rewriter *r, uint32_t ssrc, uint16_t seq, uint32_t ts, uint32_t ts_gap,
                 uint16_t *seq_out, uint32_t *ts_out);

#endif
