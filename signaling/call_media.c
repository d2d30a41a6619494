/* What flows between the two devices of a call once it rings, and what
 * happens when a device comes and goes: ICE candidates (held until the
 * call is answered), renegotiation offers and answers, call.resume after a
 * dropped connection, and a device going offline (its grace period starts,
 * or it stops ringing) or coming online (it rings for calls still
 * ringing). The SDP and candidates are checked and passed on, never
 * interpreted. */
#include "signaling/call_internal.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"

#include <string.h>

#define CANDIDATE_LEN_MAX 2048

/* True if a is the caller's device. */
static bool is_caller(const struct call *c, const struct call_actor *a)
{
    return strcmp(c->caller.user_id, a->user_id) == 0 &&
           strcmp(c->caller.device_id, a->device_id) == 0;
}

/* ---------- candidates and renegotiation ---------- */

/* Checks a candidate: an RTCIceCandidateInit object with a string
 * "candidate", a plain string, or null (end of candidates). */
static bool candidate_ok(json_t *v)
{
    if (json_is_null(v))
        return true;
    if (json_is_string(v))
        return json_string_length(v) <= CANDIDATE_LEN_MAX;
    if (!json_is_object(v))
        return false;
    json_t *cand = json_object_get(v, "candidate");
    if (!json_is_string(cand) || json_string_length(cand) > CANDIDATE_LEN_MAX)
        return false;
    json_t *mid = json_object_get(v, "sdpMid");
    if (mid && !json_is_null(mid) && (!json_is_string(mid) || json_string_length(mid) > 64))
        return false;
    json_t *idx = json_object_get(v, "sdpMLineIndex");
    if (idx && !json_is_null(idx) && !json_is_integer(idx))
        return false;
    return json_object_size(v) <= 8;
}

/* A copy of a checked candidate with only the RTCIceCandidateInit fields. */
static json_t *candidate_clean(json_t *v)
{
    if (!json_is_object(v))
        return json_incref(v);
    json_t *out = json_object();
    static const char *const keys[] = {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"};
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        json_t *f = json_object_get(v, keys[i]);
        if (f && (json_is_string(f) || json_is_integer(f) || json_is_null(f)) &&
            !(json_is_string(f) && json_string_length(f) > CANDIDATE_LEN_MAX))
            json_object_set(out, keys[i], f);
    }
    return out;
}

void call_candidate(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    json_t *cand = json_object_get(msg, "candidate");
    if (!cand || !candidate_ok(cand)) {
        call_reply_err(r, ERR_BAD_REQUEST,
                       "candidate must be an RTCIceCandidateInit object or null");
        return;
    }
    struct ringer *g = NULL;
    bool from_caller = is_caller(c, a), from_callee = call_is_callee(c, a);
    if (!from_caller && !from_callee && c->state == CALL_RINGING)
        g = call_ringer_of(c, a->user_id, a->device_id);
    struct joiner *j =
        from_caller || from_callee || g ? NULL : call_joiner_of(c, a->user_id, a->device_id);
    if (j) {
        call_reply_ok(r, NULL);
        call_sfu_candidate_for(c, j->peer, cand);
        return;
    }
    if (!from_caller && !from_callee && !g) {
        call_reply_err(r, ERR_FORBIDDEN, "this device is not in that call");
        return;
    }
    if (++c->candidates > call_lim.max_candidates) {
        call_reply_err(r, ERR_TOO_LARGE, "too many candidates in this call (call_max_candidates)");
        return;
    }
    call_reply_ok(r, NULL);
    if (g) {
        g_queue_push_tail(&g->early, candidate_clean(cand));
        return;
    }
    if (c->room) { /* for the server's end, not the other party */
        call_sfu_candidate(c, from_caller ? 0 : 1, cand);
        return;
    }
    if (from_caller && c->state == CALL_RINGING) {
        g_queue_push_tail(&c->early_caller, candidate_clean(cand));
        return;
    }
    struct party *to = from_caller ? &c->callee : &c->caller;
    if (!to->connected)
        return; /* it will restart ICE when it resumes */
    json_t *ev = call_event("call.candidate", c);
    json_object_set_new(ev, "candidate", candidate_clean(cand));
    call_send_event(to->user_id, to->device_id, ev);
}

void call_renegotiate(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    bool from_caller = is_caller(c, a), from_callee = call_is_callee(c, a);
    struct joiner *j = call_joiner_of(c, a->user_id, a->device_id);
    if (!from_caller && !from_callee && !j) {
        call_reply_err(r, c->state == CALL_ACTIVE ? ERR_FORBIDDEN : ERR_CONFLICT,
                       c->state == CALL_ACTIVE ? "this device is not in that call"
                                               : "the call is not answered yet");
        return;
    }
    const char *type = jx_str_bounded(msg, "sdp_type", 16);
    if (!type || (strcmp(type, "offer") != 0 && strcmp(type, "answer") != 0)) {
        call_reply_err(r, ERR_BAD_REQUEST, "sdp_type must be \"offer\" or \"answer\"");
        return;
    }
    const char *sdp = call_sdp_of(msg, r);
    if (!sdp)
        return;
    if (j) {
        call_sfu_renegotiate_joiner(c, j, type, sdp, r);
        return;
    }
    if (c->room) {
        call_sfu_renegotiate(c, a, from_caller ? 0 : 1, type, sdp, r);
        return;
    }
    struct party *to = from_caller ? &c->callee : &c->caller;
    if (!to->connected) {
        call_reply_err(r, ERR_UNAVAILABLE,
                       "the other party is reconnecting; try again after it resumes");
        return;
    }
    call_reply_ok(r, NULL);
    json_t *ev = call_event("call.renegotiate", c);
    json_object_set_new(ev, "sdp", json_string(sdp));
    json_object_set_new(ev, "sdp_type", json_string(type));
    call_send_event(to->user_id, to->device_id, ev);
}

/* ---------- drops and resumes ---------- */

void call_resume(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    struct party *p = NULL, *other = NULL;
    const char *role = NULL, *remote_sdp = NULL;
    if (strcmp(c->caller.user_id, a->user_id) == 0) {
        p = &c->caller;
        other = &c->callee;
        role = "caller";
        remote_sdp = c->answer;
    } else if (c->state == CALL_ACTIVE && strcmp(c->callee.user_id, a->user_id) == 0) {
        p = &c->callee;
        other = &c->caller;
        role = "callee";
        remote_sdp = c->offer;
    } else if (c->state == CALL_RINGING && g_hash_table_contains(c->targets, a->user_id)) {
        call_reply_ok(r, json_pack("{s:s, s:s, s:s}", "call_id", c->id, "state", "ringing", "role",
                                   "callee"));
        call_ring_device(c, a->user_id, a->device_id, 0);
        call_check_unreachable(c);
        return;
    } else {
        call_reply_err(r, ERR_FORBIDDEN, "you are not in that call");
        return;
    }
    /* A party of a call taken over with its media (call_sfu_reopen) has
     * the grace period to set them up again, resumed or not. */
    bool no_media = c->room && c->state == CALL_ACTIVE && !c->sfu_peer[p == &c->callee];
    if (p->grace_timer && !no_media) {
        g_source_remove(p->grace_timer);
        p->grace_timer = 0;
    }
    bool was_away = !p->connected;
    g_free(p->device_id);
    p->device_id = g_strdup(a->device_id);
    p->connected = true;
    json_t *fields = json_pack("{s:s, s:s, s:s}", "call_id", c->id, "state",
                               call_state_names[c->state], "role", role);
    if (remote_sdp)
        json_object_set_new(fields, "sdp", json_string(remote_sdp));
    log_info("call", "call=%s resumed by user=%s device=%s", c->id, a->user_id, a->device_id);
    call_reply_ok(r, fields);
    if (was_away && c->state == CALL_ACTIVE && other->connected)
        call_send_event(other->user_id, other->device_id, call_event("call.peer_reconnected", c));
    if (no_media)
        call_send_event(a->user_id, a->device_id, call_event("call.media_lost", c));
}

/* The party of c on device_id of user_id, or NULL. */
static struct party *party_on(struct call *c, const char *user_id, const char *device_id,
                              int *which)
{
    if (strcmp(c->caller.user_id, user_id) == 0 && strcmp(c->caller.device_id, device_id) == 0) {
        *which = 0;
        return &c->caller;
    }
    if (c->state == CALL_ACTIVE && strcmp(c->callee.user_id, user_id) == 0 &&
        strcmp(c->callee.device_id, device_id) == 0) {
        *which = 1;
        return &c->callee;
    }
    return NULL;
}

void call_device_offline(const char *user_id, const char *device_id)
{
    GPtrArray *ids = call_ids_of(user_id);
    for (guint i = 0; i < ids->len; i++) {
        struct call *c = g_hash_table_lookup(call_table, g_ptr_array_index(ids, i));
        if (!c)
            continue;
        struct joiner *j = call_joiner_of(c, user_id, device_id);
        if (j) {
            call_joiner_leave(c, j, "offline");
            continue;
        }
        int which = 0;
        struct party *p = party_on(c, user_id, device_id, &which);
        if (p && p->connected) {
            p->connected = false;
            if (!p->grace_timer)
                p->grace_timer = call_timer_start(c, call_lim.grace_ms, which, call_on_grace_over);
            log_info("call", "call=%s user=%s device=%s dropped; waiting %d ms for call.resume",
                     c->id, user_id, device_id, call_lim.grace_ms);
            struct party *other = which ? &c->caller : &c->callee;
            if (c->state == CALL_ACTIVE && other->connected)
                call_send_event(other->user_id, other->device_id,
                                call_event("call.peer_disconnected", c));
        }
        if (c->state == CALL_RINGING) {
            char *k = call_ringer_key(user_id, device_id);
            if (g_hash_table_remove(c->ringers, k))
                call_check_unreachable(c);
            g_free(k);
        }
    }
    g_ptr_array_free(ids, TRUE);
}

void call_device_online(const char *user_id, const char *device_id, int64_t since_ms)
{
    GPtrArray *ids = call_ids_of(user_id);
    for (guint i = 0; i < ids->len; i++) {
        struct call *c = g_hash_table_lookup(call_table, g_ptr_array_index(ids, i));
        if (c && c->state == CALL_RINGING && g_hash_table_contains(c->targets, user_id)) {
            call_ring_device(c, user_id, device_id, since_ms);
            call_check_unreachable(c);
        }
    }
    g_ptr_array_free(ids, TRUE);
}

void call_ice_servers(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    (void)msg;
    call_reply_ok(r, json_pack("{s:o}", "ice_servers",
                               ice_servers_json(&call_lim.ice, a->user_id, clock_now_ms())));
}
