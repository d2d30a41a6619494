/* Third parties in an SFU call: a regulator whose jurisdiction covers the
 * call joins an answered SFU call as a viewer (receive-only) or a speaker
 * (call.join with its offer, answered by the server), and leaves with
 * call.leave or call.hangup, when its device goes offline, or when its
 * media fails. Everyone in the call hears call.participant_joined and
 * call.participant_left; the call record lists who joined and when. */
#include "signaling/call_internal.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "media/room.h"
#include "records/audit.h"
#include "records/jurisdiction.h"

#include <string.h>

static void joiner_free(gpointer p)
{
    struct joiner *j = p;
    g_free(j->user_id);
    g_free(j->device_id);
    g_free(j);
}

struct joiner *call_joiner_of(const struct call *c, const char *user_id, const char *device_id)
{
    for (guint i = 0; c->joiners && i < c->joiners->len; i++) {
        struct joiner *j = g_ptr_array_index(c->joiners, i);
        if (strcmp(j->user_id, user_id) == 0 && strcmp(j->device_id, device_id) == 0)
            return j;
    }
    return NULL;
}

struct joiner *call_joiner_by_peer(const struct call *c, const struct media_peer *p)
{
    for (guint i = 0; c->joiners && i < c->joiners->len; i++) {
        struct joiner *j = g_ptr_array_index(c->joiners, i);
        if (j->peer == p)
            return j;
    }
    return NULL;
}

void call_send_joiners(const struct call *c, json_t *ev, const struct joiner *except)
{
    for (guint i = 0; c->joiners && i < c->joiners->len; i++) {
        struct joiner *j = g_ptr_array_index(c->joiners, i);
        if (j != except)
            call_send_event(j->user_id, j->device_id, json_deep_copy(ev));
    }
}

struct joiner *call_joiner_add(struct call *c, const char *user_id, const char *device_id,
                               bool speaker)
{
    struct joiner *j = g_new0(struct joiner, 1);
    j->user_id = g_strdup(user_id);
    j->device_id = g_strdup(device_id);
    j->speaker = speaker;
    if (!c->joiners)
        c->joiners = g_ptr_array_new_with_free_func(joiner_free);
    g_ptr_array_add(c->joiners, j);
    return j;
}

/* Sends ev (stolen) to both parties and every joiner but except. */
static void tell_everyone(struct call *c, json_t *ev, const struct joiner *except)
{
    if (c->caller.connected)
        call_send_event(c->caller.user_id, c->caller.device_id, json_deep_copy(ev));
    if (c->callee.user_id && c->callee.connected)
        call_send_event(c->callee.user_id, c->callee.device_id, json_deep_copy(ev));
    call_send_joiners(c, ev, except);
    json_decref(ev);
}

/* The record's entry for j: the last one of its user and device. */
static json_t *record_entry(struct call *c, const struct joiner *j)
{
    json_t *list = json_object_get(c->record, "joined");
    for (size_t i = json_array_size(list); i-- > 0;) {
        json_t *e = json_array_get(list, i);
        if (strcmp(jx_str(e, "user") ? jx_str(e, "user") : "", j->user_id) == 0 &&
            strcmp(jx_str(e, "device") ? jx_str(e, "device") : "", j->device_id) == 0)
            return e;
    }
    return NULL;
}

void call_joiner_leave(struct call *c, struct joiner *j, const char *reason)
{
    json_t *e = record_entry(c, j);
    if (e) {
        json_object_set_new(e, "left_at", json_integer(clock_now_ms()));
        json_object_set_new(e, "left", json_string(reason));
    }
    call_save(c); /* logged on failure; the device leaves all the same */
    log_info("call", "call=%s user=%s device=%s left (%s)", c->id, j->user_id, j->device_id,
             reason);
    json_t *ev = call_event("call.participant_left", c);
    json_object_set_new(ev, "user_id", json_string(j->user_id));
    json_object_set_new(ev, "device_id", json_string(j->device_id));
    json_object_set_new(ev, "role", json_string(j->speaker ? "speaker" : "viewer"));
    json_object_set_new(ev, "reason", json_string(reason));
    if (j->peer)
        media_peer_remove(j->peer);
    j->peer = NULL;
    /* A device put out (its media failed, or did not come back after a
     * takeover) hears it too; one that left or went offline knows. */
    if (strcmp(reason, "failed") == 0)
        call_send_event(j->user_id, j->device_id, json_deep_copy(ev));
    char *user = g_strdup(j->user_id);
    g_ptr_array_remove(c->joiners, j); /* frees j */
    bool still = false;
    for (guint i = 0; i < c->joiners->len; i++)
        still |= strcmp(((struct joiner *)g_ptr_array_index(c->joiners, i))->user_id, user) == 0;
    if (!still)
        call_unlink_user(c, user);
    g_free(user);
    tell_everyone(c, ev, NULL);
}

/* True if a (a gov user) may join c: its jurisdiction covers the plant or
 * carrier called, or for a call between regulators, the call's division. */
static bool may_join(const struct call_actor *a, const struct call *c)
{
    if (strcmp(a->role, "gov") != 0)
        return false;
    struct principal p = {a->role, a->org};
    const char *division = jx_str(c->record, "division");
    const char *ent = jx_str(c->record, "enterprise"), *car = jx_str(c->record, "carrier");
    if (ent)
        return division && juris_reaches(&p, ORG_ENTERPRISE, ent, division);
    if (car)
        return division && juris_reaches(&p, ORG_CARRIER, car, division);
    return division && *division && division_covers(a->org, division);
}

/* Everyone in c, for the join reply. */
static json_t *participants(const struct call *c)
{
    json_t *out = json_array();
    json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "user_id", c->caller.user_id,
                                         "device_id", c->caller.device_id, "role", "caller"));
    json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "user_id", c->callee.user_id,
                                         "device_id", c->callee.device_id, "role", "callee"));
    for (guint i = 0; c->joiners && i < c->joiners->len; i++) {
        struct joiner *j = g_ptr_array_index(c->joiners, i);
        json_array_append_new(out,
                              json_pack("{s:s, s:s, s:s}", "user_id", j->user_id, "device_id",
                                        j->device_id, "role", j->speaker ? "speaker" : "viewer"));
    }
    return out;
}

/* A third party of a call taken over (call_sfu_reopen) joins again: its
 * server end is made anew, in the role it had (the record already lists
 * it, and no one heard it leave). */
static void rejoin(struct call *c, struct joiner *j, bool speaker, const char *sdp,
                   const struct call_reply *r)
{
    if (speaker != j->speaker) {
        call_reply_err(r, ERR_CONFLICT,
                       j->speaker ? "you joined that call as a speaker"
                                  : "you joined that call as a viewer");
        return;
    }
    const char *why = NULL;
    char *answer = NULL;
    j->peer = media_room_answer(c->room, sdp, strlen(sdp), speaker, &answer, &why);
    if (!j->peer) {
        call_reply_err(r, ERR_BAD_REQUEST, why);
        return;
    }
    log_info("call", "call=%s user=%s device=%s joined again as %s", c->id, j->user_id,
             j->device_id, speaker ? "speaker" : "viewer");
    call_reply_ok(r, json_pack("{s:s, s:s, s:o}", "call_id", c->id, "sdp", answer, "participants",
                               participants(c)));
    g_free(answer);
    if (speaker)
        call_sfu_offer_speaker(c, j);
}

gboolean call_on_rejoin_over(gpointer ud)
{
    struct call_timer_ref *t = ud;
    struct call *c = g_hash_table_lookup(call_table, t->call_id);
    if (!c)
        return G_SOURCE_REMOVE;
    c->rejoin_timer = 0;
    for (guint i = c->joiners ? c->joiners->len : 0; i-- > 0;) {
        struct joiner *j = g_ptr_array_index(c->joiners, i);
        if (!j->peer && i < c->joiners->len)
            call_joiner_leave(c, j, "failed");
    }
    return G_SOURCE_REMOVE;
}

void call_join(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    const char *role = jx_str_bounded(msg, "role", 16);
    if (json_object_get(msg, "role") &&
        (!role || (strcmp(role, "viewer") != 0 && strcmp(role, "speaker") != 0))) {
        call_reply_err(r, ERR_BAD_REQUEST, "role must be \"viewer\" or \"speaker\"");
        return;
    }
    bool speaker = role && strcmp(role, "speaker") == 0;
    const char *sdp = call_sdp_of(msg, r);
    if (!sdp)
        return;
    if (!may_join(a, c)) {
        audit_log(call_store, a->user_id, "call.join", c->id, "forbidden", NULL);
        call_reply_err(r, ERR_FORBIDDEN, "that call is outside your jurisdiction");
        return;
    }
    if (!c->room) {
        call_reply_err(r, ERR_CONFLICT,
                       "only calls through the media server (mode sfu) can be"
                       " joined");
        return;
    }
    if (c->state != CALL_ACTIVE) {
        call_reply_err(r, ERR_CONFLICT, "the call is not answered yet");
        return;
    }
    struct joiner *back = call_joiner_of(c, a->user_id, a->device_id);
    if (back && !back->peer) {
        rejoin(c, back, speaker, sdp, r);
        return;
    }
    if (strcmp(a->user_id, c->caller.user_id) == 0 || strcmp(a->user_id, c->callee.user_id) == 0 ||
        back) {
        call_reply_err(r, ERR_CONFLICT, "you are already in that call");
        return;
    }
    if (c->joiners && c->joiners->len >= (guint)call_lim.max_joiners) {
        call_reply_err(r, ERR_BUSY, "the call has as many participants as call_max_joiners allows");
        return;
    }
    const char *why = NULL;
    char *answer = NULL;
    struct media_peer *peer = media_room_answer(c->room, sdp, strlen(sdp), speaker, &answer, &why);
    if (!peer) {
        call_reply_err(r, ERR_BAD_REQUEST, why);
        return;
    }
    struct joiner *j = call_joiner_add(c, a->user_id, a->device_id, speaker);
    j->peer = peer;
    json_t *list = json_object_get(c->record, "joined");
    if (!list) {
        list = json_array();
        json_object_set_new(c->record, "joined", list);
    }
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I}", "user", a->user_id, "device",
                                          a->device_id, "role", speaker ? "speaker" : "viewer",
                                          "at", (json_int_t)clock_now_ms()));
    /* Durable first: the record names the joiner before anyone hears. */
    if (call_save(c) != STORE_OK) {
        json_array_remove(list, json_array_size(list) - 1);
        media_peer_remove(peer);
        g_ptr_array_remove(c->joiners, j);
        g_free(answer);
        call_reply_err(r, ERR_UNAVAILABLE, "cannot record the join now");
        return;
    }
    call_link_user(c, a->user_id);
    audit_log(call_store, a->user_id, "call.join", c->id, speaker ? "speaker" : "viewer", NULL);
    log_info("call", "call=%s user=%s device=%s joined as %s", c->id, a->user_id, a->device_id,
             speaker ? "speaker" : "viewer");
    call_reply_ok(r, json_pack("{s:s, s:s, s:o}", "call_id", c->id, "sdp", answer, "participants",
                               participants(c)));
    g_free(answer);

    json_t *user = call_actor_json(a);
    json_t *ev = call_event("call.participant_joined", c);
    json_object_set_new(ev, "user", user);
    json_object_set_new(ev, "device_id", json_string(a->device_id));
    json_object_set_new(ev, "role", json_string(speaker ? "speaker" : "viewer"));
    tell_everyone(c, ev, j);
    if (speaker) /* the others need a section to see and hear it in */
        call_sfu_offer_speaker(c, j);
}

void call_leave(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    struct joiner *j = call_joiner_of(c, a->user_id, a->device_id);
    if (!j) {
        call_reply_err(r, ERR_FORBIDDEN, "this device has not joined that call (parties hang up)");
        return;
    }
    call_reply_ok(r, NULL);
    call_joiner_leave(c, j, "left");
}

void call_joiners_ended(struct call *c, int64_t now)
{
    for (guint i = 0; c->joiners && i < c->joiners->len; i++) {
        json_t *e = record_entry(c, g_ptr_array_index(c->joiners, i));
        if (e) {
            json_object_set_new(e, "left_at", json_integer(now));
            json_object_set_new(e, "left", json_string("ended"));
        }
    }
}

void call_joiners_free(struct call *c)
{
    if (c->joiners)
        g_ptr_array_free(c->joiners, TRUE);
    c->joiners = NULL;
}
