/* A room of the SFU: the participants of one call, each with its own
 * transport, and what each one publishes forwarded to every other.
 *
 * The first participant's offer sets the room's codecs (Opus; VP8, else
 * H.264 constrained baseline); the server answers it. Participants the
 * server offers to get those codecs with the first offer's payload types
 * and header extension ids; participants that offer later must include
 * them. A participant publishes at most one audio and one video stream;
 * each section it receives in carries one other publisher's stream of
 * that kind (the first one heard that no other section of it carries;
 * when that publisher leaves, the next one heard), with the server's
 * SSRC, sequence numbers and timestamps continuing across a change of
 * source.
 *
 * Losses from a publisher are asked for again at once (NACK), and its
 * retransmissions (RTX, RFC 4588, when it offered RTX) are made back into
 * the packets they repair and forwarded like the rest.
 *
 * RTCP: key-frame requests (PLI, FIR) from a receiver go to the publisher
 * it gets video from as PLI, at most one per publisher every 300 ms, and
 * one is sent when a receiver connects; NACKs are answered from the last
 * 512 video packets sent to that receiver; every second each video
 * publisher gets a REMB with the smallest estimate its receivers sent in
 * the last 3 s (capped by the room's maximum).
 *
 * Knows nothing of users or JSON. Main context only. */
#ifndef YJT_MEDIA_ROOM_H
#define YJT_MEDIA_ROOM_H

#include "media/dtls.h"
#include "media/transport.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct media_room;
struct media_peer;

struct media_room_config {
    GMainContext *ctx;
    struct dtls_cert *cert;       /* borrowed; outlives the room */
    const char *const *addresses; /* to gather on (NULL-terminated); NULL: every interface */
    uint64_t max_bitrate;         /* REMB cap for publishers, bits/s (0: 2,000,000) */
    /* Recording: each published stream is written to
     * "<record_dir>/<record_prefix>-<participant>-<audio|video>.<ext>"
     * (media/record.h). NULL: nothing is recorded. Copied. */
    const char *record_dir, *record_prefix;
    /* The public address of a 1:1 NAT in front of addresses: each host
     * candidate is announced there too. NULL: none. Copied. */
    const char *public_ip;
    /* Passive TCP host candidates too (RFC 6544), for devices whose
     * network lets no UDP through. */
    bool ice_tcp;
};

struct media_room_callbacks {
    /* A participant's transport connected, failed or closed. Called from
     * the main loop, never from inside a media_* call: the participant may
     * be removed here. */
    void (*state)(struct media_peer *p, enum media_transport_state s, const char *why, void *ud);
    /* A local candidate found after the SDP was written (the ones known
     * at once are in the SDP), for the participant's device. */
    void (*candidate)(struct media_peer *p, const char *candidate, void *ud);
    /* A recording of p's audio or video began in file (its name in
     * record_dir); NULL: not wanted. error: why it could not (file then
     * NULL). */
    void (*recording)(struct media_peer *p, const char *kind, const char *codec, const char *file,
                      const char *error, void *ud);
};

/* config is copied (not what it points to). NULL on failure. */
struct media_room *media_room_new(const struct media_room_config *config,
                                  const struct media_room_callbacks *cb, void *ud);
/* Frees the room and every participant still in it. */
void media_room_free(struct media_room *r);
unsigned media_room_size(const struct media_room *r);

/* A participant that made an offer: the server's answer (g_free) in
 * *answer. Each section the participant receives in gets one publisher's
 * audio or video (up to 8 sections); it publishes the first section of
 * each kind it sends in, unless publish is false (a viewer: the answer
 * then receives nothing). NULL with *why (static text) when it cannot be
 * answered. */
struct media_peer *media_room_answer(struct media_room *r, const char *offer, size_t len,
                                     bool publish, char **answer, const char **why);
/* A participant the server offers to, with the room's codecs (sendrecv):
 * the offer (g_free) in *offer. NULL with *why when the room has no
 * codecs yet. */
struct media_peer *media_room_offer(struct media_room *r, char **offer, const char **why);
/* The participant's answer to the server's offer: 0, or -1 with *why. */
int media_peer_set_answer(struct media_peer *p, const char *answer, size_t len, const char **why);
/* A new offer from a participant already connected: the same media
 * sections (adding or removing tracks is refused), maybe new ICE
 * credentials, which restart ICE (*restart; a phone that moved from Wi-Fi
 * to 4G). Returns the answer (g_free), or NULL with *why. */
char *media_peer_renegotiate(struct media_peer *p, const char *offer, size_t len, bool *restart,
                             const char **why);
/* An offer of the server to a participant already connected: its
 * sections, and one more audio and one more video section the server
 * sends in (for a new speaker). NULL with *why when its SDP had sections
 * the server cannot offer again, or an offer is already waiting. */
char *media_peer_offer_more(struct media_peer *p, const char **why);
/* The participant's answer to that offer: the new sections it accepts
 * carry the next publisher heard that it has no section for. 0, or -1
 * with *why (the offer then still waits). */
int media_peer_take_answer(struct media_peer *p, const char *answer, size_t len, const char **why);
/* One of the participant's ICE candidates ("candidate:...", with or
 * without "a="), or NULL when it has no more. 0, or -1 if it does not
 * parse or comes before the participant's SDP. */
int media_peer_add_candidate(struct media_peer *p, const char *candidate);
/* Takes the participant out of the room and frees it. */
void media_peer_remove(struct media_peer *p);

void media_peer_set_data(struct media_peer *p, void *data);
void *media_peer_data(const struct media_peer *p);
enum media_transport_state media_peer_state(const struct media_peer *p);
/* What the participant's media runs over, "udp" or "tcp" (NULL before
 * ICE found a pair). */
const char *media_peer_path(const struct media_peer *p);

/* Process-wide counters, for /metrics. */
struct media_stats {
    uint64_t recordings;        /* recording files opened */
    uint64_t rtp_in, rtp_out;   /* media packets received, and sent on */
    uint64_t nack_resent;       /* packets sent again for a NACK */
    uint64_t nack_missed;       /* asked for but no longer held */
    uint64_t nack_sent;         /* packets the server asked publishers for again */
    uint64_t nack_unrepaired;   /* losses from publishers given up (a key frame asked) */
    uint64_t rtx_in;            /* RTX retransmissions received */
    uint64_t keyframe_requests; /* PLIs sent to publishers */
    uint64_t receiver_reports;  /* RTCP receiver reports sent to publishers */
    uint64_t sr_forwarded;      /* publishers' sender reports passed on to receivers */
    uint64_t peers;             /* participants now */
};
void media_stats_get(struct media_stats *out);

#endif
