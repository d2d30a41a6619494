/* ICE for one media transport, over libnice (RFC 8445, trickle, consent
 * freshness), on UDP and, when asked, TCP (RFC 6544).
 *
 * One agent, one stream, one component (RTP and RTCP muxed, everything
 * BUNDLEd): it gathers host candidates on the configured addresses,
 * takes the peer's credentials and candidates as they trickle in, and
 * once a pair works carries datagrams both ways (STUN stays inside
 * libnice; DTLS and SRTP come out of the receive callback). The server is
 * the controlled side; the controlling role exists for tests. Callbacks
 * run on the GMainContext the agent was made with.
 *
 * ICE-TCP: libnice listens (passive candidates) and connects (active
 * ones) on each address, frames every datagram on a TCP connection with
 * its length (RFC 4571) and drops rather than queues without bound when
 * the connection backs up. One side accepts and the other connects: the
 * server only accepts (it announces its passive candidates and takes the
 * peer's active ones, never opening a TCP connection to an address a
 * device named); the client side of tests only connects. Candidates of
 * the other direction, and simultaneous-open ones, are ignored. TCP pairs
 * rank below UDP ones, so TCP carries media only where UDP fails. */
#ifndef YJT_MEDIA_ICE_AGENT_H
#define YJT_MEDIA_ICE_AGENT_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ice_agent_state {
    ICE_AGENT_CHECKING,
    ICE_AGENT_CONNECTED, /* a pair works: send() may be used */
    ICE_AGENT_FAILED,    /* no pair works, or consent was lost */
};

struct ice_agent_callbacks {
    /* A local candidate ("candidate:..." as SDP writes it after "a="),
     * then NULL once gathering is done. */
    void (*candidate)(const char *candidate, void *ud);
    void (*state)(enum ice_agent_state state, void *ud);
    /* A datagram from the peer that is not ICE's own. */
    void (*recv)(const uint8_t *data, size_t len, void *ud);
};

/* How an agent uses TCP. */
enum ice_agent_tcp {
    ICE_AGENT_TCP_OFF,
    ICE_AGENT_TCP_ACCEPT,  /* passive: the peer connects (the server) */
    ICE_AGENT_TCP_CONNECT, /* active: connects to the peer's passive candidates */
};

struct ice_agent;

/* addresses: the local IP addresses to gather on (NULL-terminated; NULL
 * for every interface). NULL on failure. */
struct ice_agent *ice_agent_new(GMainContext *ctx, bool controlling, const char *const *addresses,
                                enum ice_agent_tcp tcp, const struct ice_agent_callbacks *cb,
                                void *ud);
void ice_agent_free(struct ice_agent *a);
/* This side's credentials, for the SDP. */
const char *ice_agent_ufrag(const struct ice_agent *a);
const char *ice_agent_pwd(const struct ice_agent *a);
/* Takes the controlling role (the server when it made the offer) or
 * the controlled one; before the peer's credentials. */
void ice_agent_set_controlling(struct ice_agent *a, bool controlling);
/* An ICE restart (RFC 8445 9): new local credentials, the peer's new
 * ones, checks begun anew (the local candidates stay; the peer's new ones
 * come with add_remote_candidate). 0 or -1. */
int ice_agent_restart(struct ice_agent *a, const char *ufrag, const char *pwd);
/* Starts gathering (candidates come through the callback). 0 or -1. */
int ice_agent_gather(struct ice_agent *a);
/* The peer's credentials (from its SDP), before its candidates. */
int ice_agent_set_remote(struct ice_agent *a, const char *ufrag, const char *pwd);
/* One of the peer's candidates, "candidate:..." with or without "a=".
 * 0, also for a TCP one the agent ignores by design (of the direction it
 * does not use, or any with TCP off); -1 if it does not parse or is not
 * for component 1 (RTCP is muxed): it is then ignored too. */
int ice_agent_add_remote_candidate(struct ice_agent *a, const char *candidate);
/* The peer has no more candidates (end-of-candidates). */
void ice_agent_remote_done(struct ice_agent *a);
/* Sends one datagram on the selected pair: 0, or -1 (no pair yet, or the
 * socket refused it). */
int ice_agent_send(struct ice_agent *a, const uint8_t *data, size_t len);
/* The selected pair's transport ("udp" or "tcp"), or NULL without one. */
const char *ice_agent_path(struct ice_agent *a);
/* True while packets go straight to the selected pair's UDP socket (not
 * through libnice: the pair is neither TCP nor relayed). */
bool ice_agent_direct(const struct ice_agent *a);

#endif
