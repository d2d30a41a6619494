/* One participant's WebRTC transport: ICE, then DTLS over the pair ICE
 * found, then SRTP/SRTCP with the keys DTLS exported (one BUNDLEd,
 * rtcp-muxed transport per participant).
 *
 * The server's side is ICE-controlled and DTLS-passive; the client side
 * (ICE-controlling, DTLS-active) is there for tests and for offers the
 * server makes. Callers see plain RTP and RTCP: what arrives is checked
 * and decrypted before it reaches them, and what they send is protected
 * here. Everything runs on the GMainContext given. */
#ifndef YJT_MEDIA_TRANSPORT_H
#define YJT_MEDIA_TRANSPORT_H

#include "media/dtls.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum media_transport_role { MEDIA_TRANSPORT_SERVER, MEDIA_TRANSPORT_CLIENT };

enum media_transport_state {
    MEDIA_TRANSPORT_CONNECTING,
    MEDIA_TRANSPORT_CONNECTED, /* keys agreed: media flows */
    MEDIA_TRANSPORT_FAILED,    /* ICE failed or consent was lost, or DTLS failed */
    MEDIA_TRANSPORT_CLOSED,    /* the peer closed DTLS */
};

struct media_transport_callbacks {
    /* A local candidate line for the peer ("candidate:..."), then NULL. */
    void (*candidate)(const char *candidate, void *ud);
    void (*state)(enum media_transport_state state, const char *why, void *ud);
    /* Decrypted packets from the peer; the buffer may be changed (it is
     * the caller's until it returns). */
    void (*rtp)(uint8_t *pkt, size_t len, void *ud);
    void (*rtcp)(uint8_t *pkt, size_t len, void *ud);
    /* If set, RTP packets come here as they arrived, still protected and
     * not checked, instead of to rtp: for load tools that only count
     * them (the header is clear in SRTP). Never for what is forwarded. */
    void (*srtp_unchecked)(const uint8_t *pkt, size_t len, void *ud);
};

struct media_transport;
struct ctxmux;

/* Transports made with no context get a context of their own in m
 * (ctxmux.h), so that a loop turn costs what is ready, not what is open.
 * NULL (the default): they run in the default context. */
void media_transport_use_mux(struct ctxmux *m);

/* A transport with its own ICE credentials (for its SDP), gathering on
 * addresses (local IPs, NULL-terminated; NULL: all), over UDP and, with
 * ice_tcp, TCP too (RFC 6544: the server's side accepts connections, the
 * client's makes them). NULL on failure. */
struct media_transport *media_transport_new(GMainContext *ctx, enum media_transport_role role,
                                            struct dtls_cert *cert, const char *const *addresses,
                                            bool ice_tcp,
                                            const struct media_transport_callbacks *cb, void *ud);
/* What the peer's SDP says: its ICE credentials and its certificate's
 * fingerprint. Once, before its candidates. 0, or -1 with *why. */
int media_transport_set_remote(struct media_transport *t, const char *ufrag, const char *pwd,
                               const char *fp_alg, const char *fp, const char **why);
/* The DTLS role: the server's side is passive and the client's active,
 * unless the peer's SDP took the other one (a client whose offer the
 * remote server answered with setup:active). Before set_remote. */
void media_transport_set_dtls_passive(struct media_transport *t, bool passive);
/* The ICE role: the server's side is controlled unless it made the
 * offer (RFC 8445 6.1.1: the offerer controls). Before set_remote. */
void media_transport_set_ice_controlling(struct media_transport *t, bool controlling);
/* An ICE restart with the peer's new credentials (its DTLS association
 * and keys stay). 0, or -1. */
int media_transport_ice_restart(struct media_transport *t, const char *ufrag, const char *pwd);
void media_transport_free(struct media_transport *t);
const char *media_transport_ufrag(const struct media_transport *t);
const char *media_transport_pwd(const struct media_transport *t);
enum media_transport_state media_transport_state(const struct media_transport *t);
/* What the pair ICE selected runs over, "udp" or "tcp"; NULL before. */
const char *media_transport_path(const struct media_transport *t);
/* True while its packets are sent straight to the peer's UDP address. */
bool media_transport_direct(const struct media_transport *t);
/* Starts gathering; candidates come through the callback. 0 or -1. */
int media_transport_gather(struct media_transport *t);
int media_transport_add_remote_candidate(struct media_transport *t, const char *candidate);
void media_transport_remote_done(struct media_transport *t);
/* Protects and sends one packet: 0, or -1 (not connected, too big, or
 * refused). The packet is not changed. */
int media_transport_send_rtp(struct media_transport *t, const uint8_t *pkt, size_t len);
int media_transport_send_rtcp(struct media_transport *t, const uint8_t *pkt, size_t len);

#endif
