/* SDP offers as the SFU reads them and answers as it writes them (RFC
 * 8866, with the WebRTC attributes of RFC 8829: ICE credentials, DTLS
 * fingerprint and setup role, mid and BUNDLE, rtcp-mux, rtpmap, fmtp,
 * rtcp-fb, extmap, ssrc).
 *
 * The server answers each participant's offer: Opus for audio; VP8 or
 * H.264 (constrained baseline, packetization-mode 1, which phones encode
 * in hardware) for video, with the offer's payload types; the header
 * extensions it uses; setup:passive with its own certificate's
 * fingerprint. An offer text is untrusted: sizes and counts are bounded,
 * and what does not parse is refused with a reason. */
#ifndef YJT_MEDIA_SDP_H
#define YJT_MEDIA_SDP_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define SDP_MAX_BYTES (32 * 1024)
#define SDP_MAX_MEDIA 16
#define SDP_MAX_CODECS 64
#define SDP_MAX_EXTMAPS 32
#define SDP_MAX_SSRCS 32
#define SDP_TOKEN_MAX 256

enum sdp_kind { SDP_AUDIO, SDP_VIDEO, SDP_OTHER };

/* Direction, from the side that wrote the SDP. */
enum sdp_dir { SDP_SENDRECV, SDP_SENDONLY, SDP_RECVONLY, SDP_INACTIVE };

/* rtcp-fb the codec has. */
enum {
    SDP_FB_NACK = 1 << 0,
    SDP_FB_PLI = 1 << 1,
    SDP_FB_FIR = 1 << 2,
    SDP_FB_REMB = 1 << 3,
    SDP_FB_TWCC = 1 << 4,
};

struct sdp_codec {
    int pt;
    char name[32]; /* as written: "opus", "VP8", "H264", "rtx", ... */
    int clock, channels;
    char fmtp[SDP_TOKEN_MAX];
    unsigned fb;
    int apt; /* rtx: the payload type it repairs, else -1 */
};

struct sdp_extmap {
    int id;
    char uri[SDP_TOKEN_MAX];
};

struct sdp_media {
    enum sdp_kind kind;
    /* The m= line's media, protocol and first format, as written: a
     * rejected section is answered with the same. */
    char name[16], proto[32], fmt0[32];
    int port;
    char mid[64];
    enum sdp_dir dir;
    bool rtcp_mux;
    char ice_ufrag[SDP_TOKEN_MAX], ice_pwd[SDP_TOKEN_MAX];
    char fp_alg[16], fp[SDP_TOKEN_MAX];
    char setup[16];
    GArray *codecs;  /* struct sdp_codec, in the m= line's order */
    GArray *extmaps; /* struct sdp_extmap */
    GArray *ssrcs;   /* uint32_t, as they first appear */
};

struct sdp {
    GPtrArray *media; /* struct sdp_media* */
    bool bundle;      /* a=group:BUNDLE */
    /* Session-level values that media sections inherit. */
    char ice_ufrag[SDP_TOKEN_MAX], ice_pwd[SDP_TOKEN_MAX];
    char fp_alg[16], fp[SDP_TOKEN_MAX];
    char setup[16];
};

/* Parses an offer: a new struct sdp, or NULL with *why (static text). */
struct sdp *sdp_parse(const char *text, size_t len, const char **why);
void sdp_free(struct sdp *s);

/* The codec the server takes from a media section (Opus; VP8 first, else
 * H.264 constrained baseline with packetization-mode 1), or NULL. */
const struct sdp_codec *sdp_pick_codec(const struct sdp_media *m);

/* The id the offer gave a header extension (by URI), or 0. */
int sdp_extmap_id(const struct sdp_media *m, const char *uri);

/* What the server sends in a section: its SSRC (0: nothing) and the
 * stream and track ids of a=msid (the stream id is also the cname). */
struct sdp_send {
    uint32_t ssrc;
    char stream[64], track[64];
};

/* What the server puts in its answer. */
struct sdp_answer_params {
    const char *ice_ufrag, *ice_pwd;
    const char *fingerprint;     /* sha-256, "AB:CD:..." */
    const GPtrArray *candidates; /* "candidate:..." lines' values (char*), may be NULL */
    uint64_t session_id;
    /* What the server sends in each media section, by the offer's index
     * (n_send entries; NULL: nothing). */
    const struct sdp_send *send;
    size_t n_send;
    /* The payload type to answer each section with, by the offer's index
     * (-1: reject it); NULL: the server's own choice (sdp_pick_codec). */
    const int *pts;
    /* The server takes nothing from the peer: directions are answered
     * without the server's receiving side (sendrecv -> sendonly). */
    bool no_receive;
};

/* Writes the answer to an offer: each audio and video section with a
 * codec the server takes is accepted (its direction mirrored), any other
 * is rejected (port 0), as RFC 8829 asks. NULL with *why if the offer
 * cannot be answered at all (no usable section, no ICE credentials or
 * fingerprint, no rtcp-mux). */
char *sdp_answer(const struct sdp *offer, const struct sdp_answer_params *p, const char **why);

/* The header extensions the server keeps (by URI); returns how many. */
size_t sdp_kept_extmaps(const char *const **uris);
#define SDP_KEPT_EXTMAPS 2

/* A section of an offer the server makes: one codec (no rtx), the ids of
 * the kept header extensions (by sdp_kept_extmaps' order, 0: not used),
 * and what the server sends. The server offers setup:actpass and expects
 * the answer to take setup:active. */
struct sdp_offer_section {
    enum sdp_kind kind;
    char mid[64];
    enum sdp_dir dir;
    struct sdp_codec codec;
    int extmap_ids[SDP_KEPT_EXTMAPS];
    struct sdp_send send;
};

struct sdp_offer_params {
    const char *ice_ufrag, *ice_pwd;
    const char *fingerprint;
    const GPtrArray *candidates;
    uint64_t session_id;
    const struct sdp_offer_section *sections;
    size_t n_sections;
};

/* Writes an offer (every section BUNDLEd, rtcp-mux). */
char *sdp_offer(const struct sdp_offer_params *p);

#endif
