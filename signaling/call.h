/* The call state machine: one regulator (or plant, calling back) rings
 * every online device of every callee, the first device to accept wins,
 * ICE candidates and renegotiations flow between the two devices, and a
 * dropped device may resume within a grace period. Media never passes
 * here; the SFU (media/) will sit behind the same state machine.
 *
 * States: ringing -> active -> ended, or ringing -> ended. Every call is
 * written to the store (records/calls.h) at invite, answer and end, before
 * anyone is told; its start and end are in the audit log.
 *
 * signaling/ does not know connections: it names devices as (user id,
 * device id) and sends through the hooks the server registers. Each request
 * function answers its request exactly once through a call_reply, always
 * before the events the request causes, so a caller learns the call id
 * before the call's first event. Main loop only. */
#ifndef YJT_CALL_H
#define YJT_CALL_H

#include "common/errors.h"
#include "common/hist.h"
#include "records/store.h"
#include "signaling/ice.h"

#include <glib.h>
#include <jansson.h>
#include <stdint.h>

struct call_hooks {
    /* Sends event (reference stolen) to device_id of user_id, or to every
     * device of user_id when device_id is NULL. A device that is not
     * connected drops it. */
    void (*send)(const char *user_id, const char *device_id, json_t *event);
    /* Leaves user_id a durable call_missed push; payload is borrowed. */
    void (*missed)(const char *user_id, json_t *payload);
    /* Optional (several servers): user_id entered (busy) or left its last
     * answered call here; and whether user_id is in an answered call held
     * elsewhere, asked when it is in none here. */
    void (*busy_changed)(const char *user_id, bool busy);
    bool (*busy_elsewhere)(const char *user_id);
    /* Optional (several servers): whether a call left open in the store is
     * held by another server that is alive (then not ended at start). */
    bool (*held_elsewhere)(const char *call_id);
    /* Optional (several servers), for glare: call_id, made here by caller
     * to the users of targets (a set of ids), started ringing or stopped;
     * and the id of a call made by caller to callee that rings on another
     * server, or NULL. */
    void (*ring_changed)(const char *call_id, const char *caller, GHashTable *targets,
                         bool ringing);
    const char *(*ringing_elsewhere)(const char *caller, const char *callee);
    /* Optional (several servers), for calls_per_user: how many calls
     * user_id makes or has answered on other servers (at least). */
    unsigned (*calls_elsewhere)(const char *user_id);
};
/* Glare with a call ringing on another server: call_id, made there by
 * caller to each of the n users of targets. Each call ringing here from one
 * of them to caller that loses (see call_invite) ends busy. */
void call_glare_elsewhere(const char *call_id, const char *caller, const char *const *targets,
                          size_t n);
/* Takes over the call call_id, whose server is gone, from its stored
 * record rec (as read by the caller, borrowed): it is held here from now
 * on. The devices of its people are read from presence: the caller reads
 * them ahead (presence_prefetch_later) so that this does not wait. An answered call waits
 * for both parties to send call.resume within the grace period (and then
 * renegotiate). A ringing call (offer: the caller's offer, kept by the
 * server that is gone) rings on for what is left of its ring time, for
 * the callees that did not decline and are not busy; its caller resumes
 * within the grace period. 0 (also when it is already held here), -1
 * with *why: a call that is over, an SFU call, or a ringing call whose
 * offer is lost cannot go on: its record is ended as failed and its
 * devices hear call.ended. The caller makes sure only one server does
 * this. */
int call_adopt(const char *call_id, json_t *rec, const char *offer, const char **why);
/* The users whose devices call_adopt() looks up for the record rec: its
 * parties, callees and third parties (added to users, g_strdup'ed). */
void call_adopt_users(json_t *rec, GPtrArray *users);
/* Whether user_id is a party of an answered call held here. */
bool call_user_busy_here(const char *user_id);
/* Calls fn for each party of each answered call held here (a user in two
 * such calls twice). */
void call_foreach_busy(void (*fn)(const char *user_id, void *ud), void *ud);

/* The SFU: calls in mode "sfu" have the server at the other end of each
 * device's peer connection (media/room.h). */
struct call_media {
    bool sfu_default;             /* invites that name no mode */
    struct dtls_cert *cert;       /* the server's; NULL: no SFU */
    const char *const *addresses; /* to gather on */
    uint64_t max_bitrate;         /* bits/s */
    const char *record_dir;       /* record every SFU call's streams here; NULL: no */
    const char *public_ip;        /* a 1:1 NAT's public address, or NULL */
    bool ice_tcp;                 /* passive TCP candidates too (RFC 6544) */
};

struct call_limits {
    int ring_timeout_ms;
    int grace_ms;
    int max_sdp;
    int max_candidates;
    int calls_per_user;
    int invites_per_min;
    int max_joiners; /* third parties in one SFU call */
    struct ice_config ice;
    struct call_media media; /* borrowed; outlives the module */
};

/* The user and device a request comes from (strings borrowed). */
struct call_actor {
    const char *user_id;
    const char *device_id;
    const char *role;
    const char *org;
};

/* How a request is answered: fn(ctx, ERR_NONE, NULL, fields) or
 * fn(ctx, code, message, extra) with fields/extra stolen (may be NULL). */
struct call_reply {
    void (*fn)(void *ctx, enum err_code err, const char *message, json_t *fields);
    void *ctx;
};

/* Sets up the registry; limits and hooks are copied; st is borrowed and
 * must outlive the module. Calls left open by a previous run are closed in
 * the store as failed. */
void call_init(struct store *st, const struct call_limits *limits, const struct call_hooks *hooks);
/* Ends every call (failed) without telling anyone, and frees everything. */
void call_shutdown(void);

/* The request handlers, one per message type (msg is the whole request). */
void call_invite(const struct call_actor *a, json_t *msg, const struct call_reply *r);
/* call.invite in two steps, for a server whose store would make the
 * invite count wait (Redis): call_invite_check() answers an invite that
 * cannot go on and returns false, or returns true having answered
 * nothing; the server then counts it with store_rate_add_async() under
 * call_invite_rate_key() (g_free) over CALL_INVITE_RATE_WINDOW_MS with
 * call_invite_rate_limit(), and gives the store's answer to
 * call_invite_counted(), which checks the invite again (things may have
 * changed meanwhile) and goes on as call_invite() does after its count. */
#define CALL_INVITE_RATE_WINDOW_MS 60000
bool call_invite_check(const struct call_actor *a, json_t *msg, const struct call_reply *r);
char *call_invite_rate_key(const char *user_id);
int64_t call_invite_rate_limit(void);
void call_invite_counted(const struct call_actor *a, json_t *msg, const struct call_reply *r,
                         int rate_rc);
void call_ringing(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_accept(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_decline(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_cancel(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_hangup(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_candidate(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_renegotiate(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_resume(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_ice_servers(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_join(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void call_leave(const struct call_actor *a, json_t *msg, const struct call_reply *r);

/* Whether call_id is a call in progress held by this process. */
bool call_known(const char *call_id);

/* A device of user_id authenticated: it rings for calls still ringing. */
void call_device_online(const char *user_id, const char *device_id, int64_t since_ms);
/* A device of user_id is gone (its last connection closed): a party's
 * grace period starts; a ringing device stops ringing. */
void call_device_offline(const char *user_id, const char *device_id);

/* Calls in progress (ringing or active), for /metrics. */
unsigned call_count(void);

/* For /metrics: ended calls by reason, and the time from invite to answer
 * of answered calls. */
struct call_stats {
    const char *const *reasons; /* n_reasons names */
    const uint64_t *ended;      /* count per reason */
    unsigned n_reasons;
    const struct hist *setup;
};
void call_get_stats(struct call_stats *out);

#endif
