/* Calls through the SFU: the same messages, in the same order, as a
 * peer-to-peer call, with the server at the other end of each device's
 * peer connection. The caller's offer (call.invite) is answered by the
 * server, which offers to the callees (call.incoming); the winning
 * callee's answer (call.accept) goes to the server, and the caller gets
 * the server's answer in call.accepted. Candidates go to the server's end
 * of the sender's connection, never to the other party; the server's own
 * are in its SDP (and in call.candidate events if one is found later).
 * A party whose media fails (ICE, consent, DTLS) ends the call failed; a
 * joiner's (call_join.c) only takes it out. */
#include "signaling/call_internal.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "media/room.h"

#include <string.h>

int call_sfu_mode(json_t *msg, const struct call_reply *r)
{
    json_t *m = json_object_get(msg, "mode");
    const char *mode = json_is_string(m) ? json_string_value(m) : NULL;
    if (m && (!mode || (strcmp(mode, "p2p") != 0 && strcmp(mode, "sfu") != 0))) {
        call_reply_err(r, ERR_BAD_REQUEST, "mode must be \"p2p\" or \"sfu\"");
        return -1;
    }
    bool sfu = mode ? strcmp(mode, "sfu") == 0 : call_lim.media.sfu_default;
    if (sfu && !call_lim.media.cert) {
        call_reply_err(r, ERR_UNAVAILABLE, "the media server is not running on this node");
        return -1;
    }
    return sfu ? 1 : 0;
}

/* Which party a peer is: 0 the caller, 1 the callee, -1 a joiner. */
static int party_of(struct call *c, struct media_peer *p)
{
    return p == c->sfu_peer[0] ? 0 : p == c->sfu_peer[1] ? 1 : -1;
}

static void on_state(struct media_peer *p, enum media_transport_state s, const char *why, void *ud)
{
    struct call *c = ud;
    int which = party_of(c, p);
    struct joiner *j = which < 0 ? call_joiner_by_peer(c, p) : NULL;
    if (which < 0 && !j)
        return;
    const char *who = which == 0 ? "caller" : which == 1 ? "callee" : j->user_id;
    if (s == MEDIA_TRANSPORT_CONNECTED) {
        const char *path = media_peer_path(p);
        log_info("call", "call=%s media of the %s connected over %s", c->id, who,
                 path ? path : "ICE");
        return;
    }
    log_info("call", "call=%s media of the %s %s: %s", c->id, who,
             s == MEDIA_TRANSPORT_FAILED ? "failed" : "closed", why ? why : "-");
    if (j)
        call_joiner_leave(c, j, "failed"); /* a joiner's failure is its own */
    else if (c->state != CALL_ENDED)
        call_end(c, "failed", NULL); /* frees the room: nothing may follow */
}

static void on_candidate(struct media_peer *p, const char *candidate, void *ud)
{
    struct call *c = ud;
    int which = party_of(c, p);
    json_t *ev = call_event("call.candidate", c);
    json_object_set_new(
        ev, "candidate",
        json_pack("{s:s, s:s, s:i}", "candidate", candidate, "sdpMid", "0", "sdpMLineIndex", 0));
    struct joiner *j = which < 0 ? call_joiner_by_peer(c, p) : NULL;
    if (j) {
        call_send_event(j->user_id, j->device_id, ev);
    } else if (which == 0 && c->caller.connected) {
        call_send_event(c->caller.user_id, c->caller.device_id, ev);
    } else if (which == 1 && c->state == CALL_ACTIVE && c->callee.connected) {
        call_send_event(c->callee.user_id, c->callee.device_id, ev);
    } else if (which == 1 && c->state == CALL_RINGING) {
        call_send_ringers(c, ev);
        json_decref(ev);
    } else {
        json_decref(ev);
    }
}

/* A recording began (or could not): listed in the call's record, so
 * GET /api/v1/calls/{id}/recordings finds it. */
static void on_recording(struct media_peer *p, const char *kind, const char *codec,
                         const char *file, const char *error, void *ud)
{
    struct call *c = ud;
    int which = party_of(c, p);
    struct joiner *j = which < 0 ? call_joiner_by_peer(c, p) : NULL;
    const char *user = which == 0   ? c->caller.user_id
                       : which == 1 ? c->callee.user_id
                       : j          ? j->user_id
                                    : "";
    if (!file) {
        log_error("call", "call=%s cannot record the %s of user=%s: %s", c->id, kind, user, error);
        return;
    }
    json_t *list = json_object_get(c->record, "recordings");
    if (!list) {
        list = json_array();
        json_object_set_new(c->record, "recordings", list);
    }
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "file", file, "kind",
                                          kind, "codec", codec, "user", user, "party",
                                          which == 0   ? "caller"
                                          : which == 1 ? "callee"
                                                       : "joiner",
                                          "started_at", (json_int_t)clock_now_ms()));
    call_save(c);
    log_info("call", "call=%s recording the %s of user=%s to %s", c->id, kind, user, file);
}

/* Opens c's room; its recordings' names begin with prefix. */
static int open_room(struct call *c, const char *prefix, const char **why)
{
    struct media_room_config cfg = {NULL,
                                    call_lim.media.cert,
                                    call_lim.media.addresses,
                                    call_lim.media.max_bitrate,
                                    call_lim.media.record_dir,
                                    prefix,
                                    call_lim.media.public_ip,
                                    call_lim.media.ice_tcp};
    struct media_room_callbacks cb = {on_state, on_candidate, on_recording};
    c->room = media_room_new(&cfg, &cb, c);
    if (!c->room) {
        *why = "the media server could not open a room";
        return -1;
    }
    return 0;
}

/* The server's ends for the caller (its offer answered, the answer held)
 * and the callees (c->offer becomes the server's offer). */
static int seat_parties(struct call *c, const char *caller_offer, const char **why)
{
    char *answer = NULL, *offer = NULL;
    c->sfu_peer[0] =
        media_room_answer(c->room, caller_offer, strlen(caller_offer), true, &answer, why);
    if (c->sfu_peer[0])
        c->sfu_peer[1] = media_room_offer(c->room, &offer, why);
    if (!c->sfu_peer[1]) {
        g_free(answer);
        call_sfu_close(c);
        return -1;
    }
    c->sfu_answer = answer;
    g_free(c->offer);
    c->offer = offer;
    return 0;
}

int call_sfu_open(struct call *c, const char *caller_offer, const char **why)
{
    if (open_room(c, c->id, why) != 0)
        return -1;
    return seat_parties(c, caller_offer, why);
}

int call_sfu_reopen(struct call *c, int restarts, const char *caller_offer, const char **why)
{
    if (!call_lim.media.cert) {
        *why = "the media server is not running on this node";
        return -1;
    }
    /* Not the names of the first room's files: a shared recording
     * directory keeps both. */
    char *prefix = g_strdup_printf("%s.%d", c->id, restarts);
    int rc = open_room(c, prefix, why);
    g_free(prefix);
    return rc == 0 && caller_offer ? seat_parties(c, caller_offer, why) : rc;
}

/* The candidate line of a checked candidate value, or NULL for the end of
 * candidates (null, or an empty string as browsers send). */
static const char *candidate_line(json_t *cand)
{
    const char *line = json_is_string(cand) ? json_string_value(cand) : jx_str(cand, "candidate");
    return line && *line ? line : NULL;
}

void call_sfu_candidate_for(struct call *c, struct media_peer *p, json_t *cand)
{
    if (p && media_peer_add_candidate(p, candidate_line(cand)) != 0)
        log_debug("call", "call=%s a device's candidate was not taken", c->id);
}

void call_sfu_candidate(struct call *c, int which, json_t *cand)
{
    call_sfu_candidate_for(c, c->sfu_peer[which], cand);
}

int call_sfu_accept(struct call *c, const char *answer, GQueue *early, const char **why)
{
    if (media_peer_set_answer(c->sfu_peer[1], answer, strlen(answer), why) != 0)
        return -1;
    json_t *cand;
    while ((cand = g_queue_pop_head(early))) {
        call_sfu_candidate(c, 1, cand);
        json_decref(cand);
    }
    g_free(c->answer);
    c->answer = c->sfu_answer;
    c->sfu_answer = NULL;
    return 0;
}

/* An offer or answer from the device (user, device) of peer p. Returns the
 * server's answer to an offer (g_free), or NULL (an answer taken, or an
 * error replied). */
static char *renegotiate(struct call *c, struct media_peer *p, const char *who, const char *type,
                         const char *sdp, const struct call_reply *r)
{
    const char *why = NULL;
    if (strcmp(type, "answer") == 0) {
        if (media_peer_take_answer(p, sdp, strlen(sdp), &why) != 0) {
            call_reply_err(r, ERR_BAD_REQUEST, why);
            return NULL;
        }
        log_info("call", "call=%s the %s took the server's offer", c->id, who);
        call_reply_ok(r, NULL);
        return NULL;
    }
    bool restart = false;
    char *answer = media_peer_renegotiate(p, sdp, strlen(sdp), &restart, &why);
    if (!answer) {
        call_reply_err(r, strstr(why, "waiting") ? ERR_CONFLICT : ERR_BAD_REQUEST, why);
        return NULL;
    }
    log_info("call", "call=%s the %s renegotiated%s", c->id, who, restart ? " (ICE restart)" : "");
    call_reply_ok(r, NULL);
    return answer;
}

static void send_sdp(struct call *c, const char *user_id, const char *device_id, const char *sdp,
                     const char *type)
{
    json_t *ev = call_event("call.renegotiate", c);
    json_object_set_new(ev, "sdp", json_string(sdp));
    json_object_set_new(ev, "sdp_type", json_string(type));
    call_send_event(user_id, device_id, ev);
}

/* Offers p (of user_id on device_id) a section for a new speaker. */
static void offer_more(struct call *c, struct media_peer *p, const char *user_id,
                       const char *device_id)
{
    const char *why = NULL;
    char *offer = p ? media_peer_offer_more(p, &why) : NULL;
    if (!offer) {
        log_info("call", "call=%s user=%s is not offered the new speaker: %s", c->id, user_id,
                 why ? why : "no media connection");
        return;
    }
    send_sdp(c, user_id, device_id, offer, "offer");
    g_free(offer);
}

/* The party's first offer to a room opened again (call_sfu_reopen): its
 * server end made anew. The answer (g_free), or NULL having replied. */
static char *media_again(struct call *c, int which, const char *type, const char *sdp,
                         const struct call_reply *r)
{
    if (strcmp(type, "offer") != 0) {
        call_reply_err(r, ERR_CONFLICT,
                       "this server holds no media for your device yet: send an offer");
        return NULL;
    }
    const char *why = NULL;
    char *answer = NULL;
    struct media_peer *p = media_room_answer(c->room, sdp, strlen(sdp), true, &answer, &why);
    if (!p) {
        call_reply_err(r, ERR_BAD_REQUEST, why);
        return NULL;
    }
    c->sfu_peer[which] = p;
    struct party *party = which ? &c->callee : &c->caller;
    if (party->connected && party->grace_timer) {
        g_source_remove(party->grace_timer);
        party->grace_timer = 0;
    }
    log_info("call", "call=%s media of the %s set up again on this server", c->id,
             which ? "callee" : "caller");
    call_reply_ok(r, NULL);
    return answer;
}

/* The first speaker of c with media, to offer a section for to a party
 * whose media were set up again after it joined, or NULL. */
static struct joiner *speaker_with_media(struct call *c)
{
    for (guint i = 0; c->joiners && i < c->joiners->len; i++) {
        struct joiner *j = g_ptr_array_index(c->joiners, i);
        if (j->speaker && j->peer)
            return j;
    }
    return NULL;
}

void call_sfu_renegotiate(struct call *c, const struct call_actor *a, int which, const char *type,
                          const char *sdp, const struct call_reply *r)
{
    bool again = !c->sfu_peer[which];
    char *answer =
        again ? media_again(c, which, type, sdp, r)
              : renegotiate(c, c->sfu_peer[which], which ? "callee" : "caller", type, sdp, r);
    if (!answer)
        return;
    send_sdp(c, a->user_id, a->device_id, answer, "answer");
    /* What call.resume hands back: the server's latest SDP for the device. */
    char **keep = which == 0 ? &c->answer : &c->offer;
    g_free(*keep);
    *keep = answer;
    struct joiner *sp = again ? speaker_with_media(c) : NULL;
    if (sp)
        offer_more(c, c->sfu_peer[which], a->user_id, a->device_id);
}

void call_sfu_renegotiate_joiner(struct call *c, struct joiner *j, const char *type,
                                 const char *sdp, const struct call_reply *r)
{
    if (!j->peer) {
        call_reply_err(r, ERR_CONFLICT,
                       "this server holds no media for your device yet: send call.join again");
        return;
    }
    char *answer = renegotiate(c, j->peer, j->user_id, type, sdp, r);
    if (answer)
        send_sdp(c, j->user_id, j->device_id, answer, "answer");
    g_free(answer);
}

void call_sfu_offer_speaker(struct call *c, const struct joiner *speaker)
{
    if (c->caller.connected)
        offer_more(c, c->sfu_peer[0], c->caller.user_id, c->caller.device_id);
    if (c->callee.connected)
        offer_more(c, c->sfu_peer[1], c->callee.user_id, c->callee.device_id);
    for (guint i = 0; c->joiners && i < c->joiners->len; i++) {
        struct joiner *j = g_ptr_array_index(c->joiners, i);
        if (j != speaker)
            offer_more(c, j->peer, j->user_id, j->device_id);
    }
}

void call_sfu_close(struct call *c)
{
    call_joiners_free(c);
    media_room_free(c->room);
    c->room = NULL;
    c->sfu_peer[0] = c->sfu_peer[1] = NULL;
    g_clear_pointer(&c->sfu_answer, g_free);
}
