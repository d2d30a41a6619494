/* DTLS-SRTP key agreement for one media transport (RFC 5764, RFC 8827).
 *
 * The server has one certificate (dtls_cert), whose fingerprint goes in
 * every SDP it writes. Each participant's transport runs one DTLS 1.2
 * handshake over the datagrams the ICE layer carries: the server is
 * passive (setup:passive, the DTLS server); the active side exists for
 * tests and for offers the server makes. Once the handshake is done and
 * the peer's certificate matches the fingerprint its SDP announced, the
 * SRTP keys are exported (media_srtp.h). No sockets here: datagrams go in
 * through dtls_input() and out through the send callback. */
#ifndef YJT_MEDIA_DTLS_H
#define YJT_MEDIA_DTLS_H

#include "media/srtp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest DTLS datagram sent: fits a 1280-byte IPv6 path minimum with
 * the UDP, IP and TURN headers around it. */
#define DTLS_MTU 1200

struct dtls_cert;

/* A fresh ECDSA P-256 key and a self-signed certificate for it (valid from
 * a day ago for 30 days), or NULL. */
struct dtls_cert *dtls_cert_new(void);
void dtls_cert_free(struct dtls_cert *c);
/* Its SHA-256 fingerprint as SDP writes it: "AB:CD:...". */
const char *dtls_cert_fingerprint(const struct dtls_cert *c);

enum dtls_role {
    DTLS_PASSIVE, /* waits for the ClientHello: the DTLS server */
    DTLS_ACTIVE,  /* starts the handshake: the DTLS client */
};

enum dtls_state {
    DTLS_HANDSHAKING,
    DTLS_CONNECTED, /* keys exported, peer verified */
    DTLS_FAILED,
    DTLS_CLOSED, /* the peer sent close_notify */
};

/* Sends one datagram to the peer. */
typedef void (*dtls_send_cb)(const uint8_t *data, size_t len, void *ud);

struct dtls;

/* A transport's DTLS endpoint. peer_alg ("sha-256", "sha-384" or
 * "sha-512", any case) and peer_fp (colon-separated hex) are what the
 * peer's SDP announced; the handshake fails unless its certificate has
 * that fingerprint. NULL on bad arguments. */
struct dtls *dtls_new(struct dtls_cert *cert, enum dtls_role role, const char *peer_alg,
                      const char *peer_fp, dtls_send_cb send, void *ud);
void dtls_free(struct dtls *d);
/* Sends the first flight (active role; nothing to do when passive). */
enum dtls_state dtls_start(struct dtls *d);
/* One datagram from the peer (its first byte in 20..63; anything else is
 * ignored). Returns the state after it: the caller sees the handshake end
 * as the change from DTLS_HANDSHAKING to DTLS_CONNECTED. */
enum dtls_state dtls_input(struct dtls *d, const uint8_t *data, size_t len);
enum dtls_state dtls_state(const struct dtls *d);
/* Milliseconds until a lost flight must be sent again (-1: no timer). */
int dtls_timeout_ms(struct dtls *d);
/* Call when that time has passed: resends, or fails after too many. */
enum dtls_state dtls_handle_timeout(struct dtls *d);
/* Why the handshake failed (static text), or NULL. */
const char *dtls_error(const struct dtls *d);
/* The SRTP keys, once connected: false before. */
bool dtls_srtp_keys(const struct dtls *d, struct media_srtp_keys *out);

/* RFC 7983: which protocol a datagram on a media transport carries. */
enum media_demux { DEMUX_STUN, DEMUX_DTLS, DEMUX_RTP, DEMUX_OTHER };
enum media_demux media_demux(const uint8_t *data, size_t len);

#endif
