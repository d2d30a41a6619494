/* What the three parts of the call state machine share (signaling/call.c,
 * call_invite.c, call_media.c) and nothing outside signaling/ may use: the
 * call, ringer and party structures, the registry tables, and the helpers
 * more than one part calls. The public interface is signaling/call.h.
 *
 * Calls live in call_table by id; call_by_user maps each user to the calls
 * it takes part in (as caller, as a callee still ringing, or as the callee
 * who answered), which is what busy detection, the per-user limit, glare
 * and device online/offline changes look up. Main loop only. */
#ifndef YJT_CALL_INTERNAL_H
#define YJT_CALL_INTERNAL_H

#include "signaling/call.h"

#include <glib.h>
#include <stdbool.h>

#define CALL_ID_MAX 64

enum call_state { CALL_RINGING, CALL_ACTIVE, CALL_ENDED };

/* The stored name of each call_state. */
extern const char *const call_state_names[];

/* A device that is ringing, with the candidates it sent before it
 * accepted (delivered to the caller if it wins). */
struct ringer {
    char *user_id;
    char *device_id;
    bool rang;
    int64_t since_ms; /* of the connection rung (0: not known) */
    GQueue early;     /* json_t* */
};

/* A third party of an SFU call (call.join). */
struct joiner {
    char *user_id;
    char *device_id;
    bool speaker;
    struct media_peer *peer;
};

/* One side of an answered call (or the caller of a ringing one). */
struct party {
    char *user_id;
    char *device_id;
    bool connected;
    guint grace_timer;
};

struct call {
    char *id;
    enum call_state state;
    struct party caller, callee;
    GHashTable *targets;  /* user ids still called (set) */
    GHashTable *ringers;  /* "user\ndevice" -> struct ringer* */
    json_t *record;       /* the stored document */
    bool saved;           /* record written once: later saves replace it */
    bool ring_told;   /* other servers were told that it rings */
    json_t *incoming;     /* call.incoming without ice_servers */
    char *offer, *answer; /* SDP */
    GQueue early_caller;  /* caller's candidates before an answer */
    int candidates;
    int64_t invite_at, answer_at;
    guint ring_timer, unreachable_timer;
    /* SFU calls: the room, and the server's end for caller [0] and callee
     * [1]. offer is then the server's offer to the callees, answer (once
     * accepted) its answer to the caller, held in sfu_answer till then. */
    struct media_room *room;
    struct media_peer *sfu_peer[2];
    char *sfu_answer;
    GPtrArray *joiners; /* struct joiner*, or NULL */
    /* Taken over: the third parties that had not joined again by then
     * leave (their peer is NULL until they do). */
    guint rejoin_timer;
};

extern struct store *call_store;
extern struct call_limits call_lim;
extern GHashTable *call_table;   /* id -> struct call* (owned) */
extern GHashTable *call_by_user; /* user id -> GHashTable(call id -> struct call*) */

/* Answers a request: with fields (stolen, may be NULL), or with an error. */
void call_reply_ok(const struct call_reply *r, json_t *fields);
void call_reply_err(const struct call_reply *r, enum err_code code, const char *message);

/* The key of a ringer in call->ringers (g_free). */
char *call_ringer_key(const char *user_id, const char *device_id);
void call_ringer_free(gpointer p);
/* The ringer of c on device_id of user_id, or NULL. */
struct ringer *call_ringer_of(const struct call *c, const char *user_id, const char *device_id);

/* Sends ev (stolen) to a device through the server's hook. */
void call_send_event(const char *user_id, const char *device_id, json_t *ev);
/* Sends a copy of ev (borrowed) to every device still ringing for c. */
void call_send_ringers(const struct call *c, json_t *ev);
/* The public view of the acting user (its account, or what the request
 * knows of it when the store cannot say). */
json_t *call_actor_json(const struct call_actor *a);
/* {"type": type, "call_id": id} */
json_t *call_event(const char *type, const struct call *c);

/* Adds c to the calls of user_id in call_by_user, or takes it out. */
void call_link_user(struct call *c, const char *user_id);
void call_unlink_user(struct call *c, const char *user_id);
/* The ids of user_id's calls, as a new list (calls may end while it is
 * walked: walk the ids and look each up again). */
GPtrArray *call_ids_of(const char *user_id);

/* The call named by msg's "call_id"; replies with the error and returns
 * NULL if there is none. */
struct call *call_find(json_t *msg, const struct call_reply *r);
/* True if a is the device that answered c. */
bool call_is_callee(const struct call *c, const struct call_actor *a);
/* Checks msg's "sdp": a non-empty string of at most max_sdp bytes. Returns
 * it, or replies with the error and returns NULL. */
const char *call_sdp_of(json_t *msg, const struct call_reply *r);

/* Writes the call's record with its current state; returns a store code. */
/* A new call (id taken) with its tables, the caller's party not connected. */
struct call *call_alloc(char *id, enum call_state state, const char *caller,
                        const char *caller_device, int64_t invite_at);
int call_save(struct call *c);
/* True if user_id is a party of an answered call, here or (through the
 * hooks) on another server. */
bool call_user_busy(const char *user_id);
/* After c was answered or ended: tells the hooks of its parties whose
 * busy state changed. */
void call_busy_update(struct call *c);
/* Tells other servers (the ring_changed hook) that c started or stopped
 * ringing; and asks them for a call from caller to callee ringing there. */
void call_ring_changed(struct call *c, bool ringing);
const char *call_ringing_elsewhere(const char *caller, const char *callee);
unsigned call_count_elsewhere(const char *user_id);
/* Frees c, stopping its timers; it must no longer be in the tables. */
void call_free(struct call *c);
/* Ends c with reason: stores the end, tells every device still in the
 * call, leaves missed-call pushes where the reason calls for one, and
 * frees c. by is the user who ended it, or NULL. */
void call_end(struct call *c, const char *reason, const char *by);

/* What a call's timer callback gets (as its gpointer). */
struct call_timer_ref {
    char *call_id;
    int which; /* 0 caller, 1 callee (grace timers) */
};

/* Starts a timer of ms that calls fn with the call's id (and which party:
 * 0 caller, 1 callee), never a pointer to the call. */
guint call_timer_start(struct call *c, int ms, int which, GSourceFunc fn);
/* Timer callbacks: the ring time is over; a party's grace period is over. */
gboolean call_on_ring_timeout(gpointer ud);
gboolean call_on_grace_over(gpointer ud);
gboolean call_on_rejoin_over(gpointer ud);
/* While ringing with no device left to ring, waits a grace period for one
 * to come back before ending the call unreachable. */
void call_check_unreachable(struct call *c);

/* Builds c->incoming (call.incoming without ice_servers) from c's record
 * and offer. */
void call_incoming_build(struct call *c);

/* Rings device_id of user_id: sends call.incoming (with that user's own
 * ICE servers) and remembers the device. */
void call_ring_device(struct call *c, const char *user_id, const char *device_id,
                      int64_t since_ms);

/* ---------- SFU calls (call_sfu.c) ---------- */

/* Reads the invite's "mode" (or the default). Returns 0 for peer-to-peer,
 * 1 for the SFU, or -1 having replied with the error. */
int call_sfu_mode(json_t *msg, const struct call_reply *r);
/* Puts the server between the caller (whose offer it answers) and the
 * callees (to whom c->offer becomes the server's offer). 0, or -1 with
 * *why. */
int call_sfu_open(struct call *c, const char *caller_offer, const char **why);
/* Opens c's room again on this server after the server that held the
 * call died (restarts: how many times so far, for the recordings' names).
 * An answered call's room is empty: each party's next offer
 * (call.renegotiate) makes its server end anew, each third party joins
 * again. A call still ringing (caller_offer: the caller's offer, kept)
 * is seated as call_sfu_open() does, c->offer the new server's offer to
 * ring the callees with. 0, or -1 with *why. */
int call_sfu_reopen(struct call *c, int restarts, const char *caller_offer, const char **why);
/* The winning callee's answer to the server's offer, with the candidates
 * it sent while ringing (taken from *early). 0, or -1 with *why. */
int call_sfu_accept(struct call *c, const char *answer, GQueue *early, const char **why);
/* A candidate (RTCIceCandidateInit, string or null) of the caller (0) or
 * the callee (1), for the server's end. */
void call_sfu_candidate(struct call *c, int which, json_t *cand);
/* The candidate (checked) of a device for its server end p. */
void call_sfu_candidate_for(struct call *c, struct media_peer *p, json_t *cand);
/* call.renegotiate in an SFU call from a party (which: 0 caller, 1
 * callee): an offer is answered by the server (an ICE restart when its
 * credentials are new) with a call.renegotiate answer event after the
 * reply; an answer completes an offer of the server's. */
void call_sfu_renegotiate(struct call *c, const struct call_actor *a, int which, const char *type,
                          const char *sdp, const struct call_reply *r);
/* The same from a joiner. */
void call_sfu_renegotiate_joiner(struct call *c, struct joiner *j, const char *type,
                                 const char *sdp, const struct call_reply *r);
/* A speaker joined: every other participant is offered one more audio and
 * video section (call.renegotiate offer events). */
void call_sfu_offer_speaker(struct call *c, const struct joiner *speaker);
/* Frees the room and the joiners. */
void call_sfu_close(struct call *c);

/* ---------- third parties of SFU calls (call_join.c) ---------- */

struct joiner *call_joiner_of(const struct call *c, const char *user_id, const char *device_id);
struct joiner *call_joiner_by_peer(const struct call *c, const struct media_peer *p);
/* Sends a copy of ev (borrowed) to every joiner but except (may be NULL). */
void call_send_joiners(const struct call *c, json_t *ev, const struct joiner *except);
/* A third party of c, not yet joined again on this server (peer NULL). */
struct joiner *call_joiner_add(struct call *c, const char *user_id, const char *device_id,
                               bool speaker);
/* Takes j out of c (reason: left, offline, failed); tells everyone left,
 * and j itself when failed. */
void call_joiner_leave(struct call *c, struct joiner *j, const char *reason);
/* Marks in the record that the joiners still in were there at the end. */
void call_joiners_ended(struct call *c, int64_t now);
void call_joiners_free(struct call *c);

#endif
