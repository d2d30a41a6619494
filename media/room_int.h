/* What room.c (participants, SDP, lifecycle) and room_fwd.c (the packet
 * path: forwarding, RTCP, losses) share inside the SFU's rooms; not for
 * use outside media/. */
#ifndef YJT_MEDIA_ROOM_INT_H
#define YJT_MEDIA_ROOM_INT_H
#include "media/record.h"
#include "media/rtcp_rr.h"
#include "media/room.h"
#include "media/rtp.h"
#include "media/sdp.h"
#include "media/transport.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define PACKET_MAX 1500
#define MISSING_MAX 64
/* Sections a participant may receive in. */
#define OUT_MAX 8

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
    struct rtp_rx_stats rx; /* for the receiver reports the publisher gets */
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

/* Process-wide counters (room_fwd.c). */
extern struct media_stats media_room_stats;
struct media_peer *room_peer_by_id(struct media_room *r, unsigned id);
/* The out track of q with SSRC ssrc (live or not: pt < 0), or NULL. */
struct out_track *room_out_by_ssrc(struct media_peer *q, uint32_t ssrc);
/* Asks publisher p for a key frame, unless one was asked for lately.
 * Whether it was sent. */
bool room_request_keyframe(struct media_peer *p);
/* The room's RTCP round to publishers, every second: a receiver report
 * for each stream, and a REMB for video (a GSourceFunc, data: the room). */
gboolean room_remb_tick(gpointer data);
/* The transport's packet callbacks (ud: the peer). */
void room_on_rtp(uint8_t *pkt, size_t len, void *ud);
void room_on_rtcp(uint8_t *buf, size_t len, void *ud);

#endif
