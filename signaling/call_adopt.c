/* Taking over a call whose server is gone (see call.h), from its stored
 * record: an answered call waits for its parties to resume here (an SFU
 * call's media start again in a room of this server's, each device
 * offering anew); a peer-to-peer call still ringing rings on from here,
 * for what is left of its ring time. */
#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/presence.h"
#include "records/calls.h"
#include "signaling/call_internal.h"

#include <string.h>

/* Why the call a stored record describes cannot go on here, or NULL. */
static const char *why_not(json_t *rec, const char *offer)
{
    const char *state = jx_str(rec, "state"), *mode = jx_str(rec, "mode");
    if (!jx_str(rec, "id") || !state || strcmp(state, "ended") == 0)
        return "the call is over";
    if (mode && strcmp(mode, "sfu") == 0 && !call_lim.media.cert)
        return "its media were on that server, and this one runs no media server";
    if (!jx_str(rec, "caller") || !jx_str(rec, "caller_device"))
        return "its record is incomplete";
    if (strcmp(state, "active") == 0) {
        json_t *by = json_object_get(rec, "answered_by");
        return jx_str(by, "user") && jx_str(by, "device") ? NULL : "its record is incomplete";
    }
    if (strcmp(state, "ringing") != 0)
        return "its record is incomplete";
    return offer ? NULL : "its offer was not kept";
}

/* Whether user_id declined the call before its server went. */
static bool declined(json_t *rec, const char *user_id)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(rec, "declined_by"), i, d)
    {
        if (g_strcmp0(jx_str(d, "user"), user_id) == 0)
            return true;
    }
    return false;
}

/* Rings on: the callees who neither declined nor are busy now. A device
 * online since before the invite was rung by the server that is gone and
 * still rings (its server is alive, or it would not be listed): it is
 * remembered, not rung twice, unless the offer it has is the dead
 * server's (an SFU call: every device is rung with this server's); any
 * other is rung now (if ring_new: not when the ring time is already
 * over). */
static void ring_on(struct call *c, json_t *rec, bool ring_new)
{
    bool again = c->room != NULL;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rec, "callees"), i, v)
    {
        const char *user = json_string_value(v);
        if (user && !declined(rec, user) && !call_user_busy(user))
            g_hash_table_add(c->targets, g_strdup(user));
    }
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, c->targets);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        call_link_user(c, k);
        json_t *devices = presence_devices(k);
        json_t *d;
        json_array_foreach(devices, i, d)
        {
            const char *dev = jx_str(d, "device_id");
            int64_t since = jx_int(d, "since", 0);
            if (!dev)
                continue;
            if (!ring_new || (!again && since && since < c->invite_at)) {
                struct ringer *g = g_new0(struct ringer, 1);
                g->user_id = g_strdup(k);
                g->device_id = g_strdup(dev);
                g->since_ms = since;
                g->rang = json_object_get(rec, "ringing_at") != NULL;
                g_queue_init(&g->early);
                g_hash_table_insert(c->ringers, call_ringer_key(k, dev), g);
            } else {
                call_ring_device(c, k, dev, since);
            }
        }
        json_decref(devices);
    }
}

/* True if device_id of user_id is online (on any server alive). */
static bool device_online(const char *user_id, const char *device_id)
{
    json_t *devices = presence_devices(user_id);
    size_t i;
    json_t *d;
    bool found = false;
    json_array_foreach(devices, i, d)
    {
        found |= g_strcmp0(jx_str(d, "device_id"), device_id) == 0;
    }
    json_decref(devices);
    return found;
}

/* An SFU call's media start again here. Ringing: the caller's kept offer
 * answered anew, and a new offer to ring the callees with. Answered: an
 * empty room; the third parties still online stay in it, to join again
 * within the grace period (the others left when their server died). 0,
 * or -1 with *why. */
static int reopen_media(struct call *c, const char *caller_offer, const char **why)
{
    int n = (int)jx_int(c->record, "media_restarts", 0) + 1;
    if (call_sfu_reopen(c, n, c->state == CALL_RINGING ? caller_offer : NULL, why) != 0)
        return -1;
    json_object_set_new(c->record, "media_restarts", json_integer(n));
    int64_t now = clock_now_ms();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(c->record, "joined"), i, e)
    {
        const char *user = jx_str(e, "user"), *device = jx_str(e, "device");
        if (json_object_get(e, "left") || !user || !device)
            continue;
        if (device_online(user, device)) {
            call_joiner_add(c, user, device, g_strcmp0(jx_str(e, "role"), "speaker") == 0);
            call_link_user(c, user);
        } else {
            json_object_set_new(e, "left_at", json_integer(now));
            json_object_set_new(e, "left", json_string("offline"));
        }
    }
    if (c->joiners && c->joiners->len)
        c->rejoin_timer = call_timer_start(c, call_lim.grace_ms, 0, call_on_rejoin_over);
    call_save(c); /* logged on failure: the media count is a detail */
    return 0;
}

/* The parties of an answered call taken over: a party whose device is
 * still online (its server lives) is there; the other is away until it
 * resumes, within the grace period. Through the SFU, each has that period
 * to set its media up again here, and the devices still online hear it
 * (call.media_lost). */
static void parties_back(struct call *c)
{
    struct party *parties[2] = {&c->caller, &c->callee};
    for (int which = 0; which < 2; which++) {
        struct party *p = parties[which];
        p->connected = device_online(p->user_id, p->device_id);
        if (!p->connected || c->room)
            p->grace_timer = call_timer_start(c, call_lim.grace_ms, which, call_on_grace_over);
    }
    for (int which = 0; which < 2; which++) {
        struct party *p = parties[which], *other = parties[!which];
        if (!p->connected)
            continue;
        if (!other->connected)
            call_send_event(p->user_id, p->device_id, call_event("call.peer_disconnected", c));
        if (c->room)
            call_send_event(p->user_id, p->device_id, call_event("call.media_lost", c));
    }
    if (c->joiners) {
        json_t *ev = call_event("call.media_lost", c);
        call_send_joiners(c, ev, NULL);
        json_decref(ev);
    }
}

/* The call a stored record describes, held here from now on. */
static struct call *from_record(json_t *rec, const char *offer)
{
    bool ringing = strcmp(jx_str(rec, "state"), "ringing") == 0;
    struct call *c = call_alloc(g_strdup(jx_str(rec, "id")), ringing ? CALL_RINGING : CALL_ACTIVE,
                                jx_str(rec, "caller"), jx_str(rec, "caller_device"),
                                jx_int(rec, "invite_at", 0));
    c->record = json_deep_copy(rec);
    c->saved = true;
    if (ringing) {
        c->offer = g_strdup(offer); /* through the SFU, replaced by the server's */
    } else {
        json_t *by = json_object_get(rec, "answered_by");
        c->callee.user_id = g_strdup(jx_str(by, "user"));
        c->callee.device_id = g_strdup(jx_str(by, "device"));
        c->incoming = json_object();
        c->answer_at = jx_int(rec, "answer_at", 0);
    }
    return c;
}

/* Tells the devices of a call that cannot go on that it is over (rec: as
 * it was, ringing or active): its parties, or the devices still ringing,
 * and the third parties still in it. */
static void tell_failed(json_t *rec)
{
    json_t *ev = json_pack("{s:s, s:s, s:s}", "type", "call.ended", "call_id", jx_str(rec, "id"),
                           "reason", "failed");
    if (jx_str(rec, "caller") && jx_str(rec, "caller_device"))
        call_send_event(jx_str(rec, "caller"), jx_str(rec, "caller_device"), json_deep_copy(ev));
    json_t *by = json_object_get(rec, "answered_by");
    if (jx_str(by, "user") && jx_str(by, "device"))
        call_send_event(jx_str(by, "user"), jx_str(by, "device"), json_deep_copy(ev));
    else if (g_strcmp0(jx_str(rec, "state"), "ringing") == 0) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(rec, "callees"), i, v)
        {
            if (json_is_string(v))
                call_send_event(json_string_value(v), NULL, json_deep_copy(ev));
        }
    }
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(rec, "joined"), i, j)
    {
        if (!json_object_get(j, "left") && jx_str(j, "user") && jx_str(j, "device"))
            call_send_event(jx_str(j, "user"), jx_str(j, "device"), json_deep_copy(ev));
    }
    json_decref(ev);
}

/* The record of a call that cannot go on, ended as failed at now; the
 * third parties still in it were there at the end. */
static json_t *ended_failed(json_t *rec, int64_t now)
{
    json_t *ended = json_deep_copy(rec);
    calls_end_failed(ended, now);
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(ended, "joined"), i, j)
    {
        if (!json_object_get(j, "left")) {
            json_object_set_new(j, "left_at", json_integer(now));
            json_object_set_new(j, "left", json_string("ended"));
        }
    }
    return ended;
}

/* What cannot go on is over: the record says so (once), and the devices
 * still in it hear it. */
static void end_gone(const char *call_id, json_t *rec, const char *why)
{
    const char *state = jx_str(rec, "state");
    if (!state || strcmp(state, "ended") == 0)
        return;
    json_t *ended = ended_failed(rec, clock_now_ms());
    calls_put(call_store, call_id, ended);
    json_decref(ended);
    log_info("call", "call=%s held by a server that is gone: ended (%s)", call_id, why);
    tell_failed(rec);
}

void call_adopt_users(json_t *rec, GPtrArray *users)
{
    const char *one[] = {jx_str(rec, "caller"),
                         jx_str(json_object_get(rec, "answered_by"), "user")};
    for (size_t i = 0; i < G_N_ELEMENTS(one); i++)
        if (one[i])
            g_ptr_array_add(users, g_strdup(one[i]));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rec, "callees"), i, v)
    {
        if (json_is_string(v))
            g_ptr_array_add(users, g_strdup(json_string_value(v)));
    }
    json_array_foreach(json_object_get(rec, "joined"), i, v)
    {
        if (jx_str(v, "user") && !json_object_get(v, "left"))
            g_ptr_array_add(users, g_strdup(jx_str(v, "user")));
    }
}

int call_adopt(const char *call_id, json_t *rec, const char *offer, const char **why)
{
    if (call_known(call_id))
        return 0;
    json_incref(rec);
    *why = why_not(rec, offer);
    struct call *c = *why ? NULL : from_record(rec, offer);
    bool sfu = g_strcmp0(jx_str(rec, "mode"), "sfu") == 0;
    if (c && sfu && reopen_media(c, offer, why) != 0)
        g_clear_pointer(&c, call_free);
    if (c && c->state == CALL_RINGING)
        call_incoming_build(c);
    if (!c) {
        end_gone(call_id, rec, *why);
        json_decref(rec);
        return -1;
    }
    g_hash_table_insert(call_table, c->id, c);
    call_link_user(c, c->caller.user_id);
    if (c->state == CALL_ACTIVE) {
        call_link_user(c, c->callee.user_id);
        call_busy_update(c);
        parties_back(c);
        log_info("call",
                 "call=%s taken over, answered%s; caller %s, callee %s; waiting up to %d ms", c->id,
                 c->room ? ", its media to start again here" : "",
                 c->caller.connected ? "online" : "away", c->callee.connected ? "online" : "away",
                 call_lim.grace_ms);
        json_decref(rec);
        return 0;
    }
    /* The caller is away until it resumes here, within the grace period,
     * as after a drop. */
    c->caller.grace_timer = call_timer_start(c, call_lim.grace_ms, 0, call_on_grace_over);
    int64_t left = c->invite_at + call_lim.ring_timeout_ms - clock_now_ms();
    call_ring_changed(c, true);
    ring_on(c, rec, left > 0);
    json_decref(rec);
    log_info("call", "call=%s taken over, ringing: %u device(s), %" G_GINT64_FORMAT " ms left",
             c->id, g_hash_table_size(c->ringers), MAX(left, 0));
    if (!g_hash_table_size(c->targets))
        call_end(c, "busy", NULL);
    else if (left <= 0)
        call_end(c, "timeout", NULL);
    else {
        c->ring_timer = call_timer_start(c, (int)left, 0, call_on_ring_timeout);
        call_check_unreachable(c);
    }
    return 0;
}
