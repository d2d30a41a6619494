/* The call state machine's core (see call.h): the registry of calls in
 * progress, their timers (ring timeout, a party's grace period, "nobody
 * left to ring"), the callee's answers (ringing, accept, decline) and the
 * ways a call ends (cancel, hangup, timeouts), freeing, and the statistics
 * /metrics reads. Starting a call is in call_invite.c; candidates,
 * renegotiation, resumes and devices coming and going in call_media.c;
 * what the three share is in call_internal.h.
 *
 * Timers carry the call id, never a pointer, so a timer that fires after
 * the call ended finds nothing. */
#include "signaling/call_internal.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/account.h"
#include "records/audit.h"
#include "records/calls.h"

#include <string.h>

#define REASON_LEN_MAX 200

const char *const call_state_names[] = {"ringing", "active", "ended"};

static const char *const end_reasons[] = {"hangup", "declined", "cancelled",   "timeout",
                                          "busy",   "offline",  "unreachable", "failed"};
static uint64_t ended_by_reason[G_N_ELEMENTS(end_reasons)];
static struct hist setup_latency;

struct store *call_store;
struct call_limits call_lim;
static struct call_hooks hooks;
GHashTable *call_table;
GHashTable *call_by_user;

/* ---------- small helpers ---------- */

void call_reply_ok(const struct call_reply *r, json_t *fields)
{
    r->fn(r->ctx, ERR_NONE, NULL, fields);
}

void call_reply_err(const struct call_reply *r, enum err_code code, const char *message)
{
    r->fn(r->ctx, code, message, NULL);
}

char *call_ringer_key(const char *user_id, const char *device_id)
{
    return g_strconcat(user_id, "\n", device_id, NULL);
}

void call_ringer_free(gpointer p)
{
    struct ringer *g = p;
    g_free(g->user_id);
    g_free(g->device_id);
    g_queue_clear_full(&g->early, (GDestroyNotify)json_decref);
    g_free(g);
}

void call_send_event(const char *user_id, const char *device_id, json_t *ev)
{
    hooks.send(user_id, device_id, ev);
}

/* {"type": type, "call_id": id} */
json_t *call_event(const char *type, const struct call *c)
{
    return json_pack("{s:s, s:s}", "type", type, "call_id", c->id);
}

json_t *call_actor_json(const struct call_actor *a)
{
    struct account *acct = NULL;
    json_t *out =
        account_get(call_store, a->user_id, &acct) == STORE_OK
            ? account_public_json(acct)
            : json_pack("{s:s, s:s, s:s}", "id", a->user_id, "role", a->role, "org", a->org);
    account_free(acct);
    return out;
}

void call_send_ringers(const struct call *c, json_t *ev)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, c->ringers);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct ringer *g = v;
        call_send_event(g->user_id, g->device_id, json_deep_copy(ev));
    }
}

void call_link_user(struct call *c, const char *user_id)
{
    GHashTable *set = g_hash_table_lookup(call_by_user, user_id);
    if (!set) {
        set = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_insert(call_by_user, g_strdup(user_id), set);
    }
    g_hash_table_insert(set, c->id, c);
}

void call_unlink_user(struct call *c, const char *user_id)
{
    GHashTable *set = g_hash_table_lookup(call_by_user, user_id);
    if (!set)
        return;
    g_hash_table_remove(set, c->id);
    if (!g_hash_table_size(set))
        g_hash_table_remove(call_by_user, user_id);
}

/* The calls of user_id, as a new list (calls may end while it is walked:
 * walk the ids and look each up again). */
GPtrArray *call_ids_of(const char *user_id)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    GHashTable *set = g_hash_table_lookup(call_by_user, user_id);
    if (set) {
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, set);
        while (g_hash_table_iter_next(&it, &k, NULL))
            g_ptr_array_add(ids, g_strdup(k));
    }
    return ids;
}

struct call *call_find(json_t *msg, const struct call_reply *r)
{
    const char *id = jx_str_bounded(msg, "call_id", CALL_ID_MAX);
    if (!id) {
        call_reply_err(r, ERR_BAD_REQUEST, "call_id must be a string");
        return NULL;
    }
    struct call *c = g_hash_table_lookup(call_table, id);
    if (!c)
        call_reply_err(r, ERR_NOT_FOUND, "no such call in progress");
    return c;
}

bool call_known(const char *call_id)
{
    return call_table && g_hash_table_contains(call_table, call_id);
}

bool call_is_callee(const struct call *c, const struct call_actor *a)
{
    return c->state == CALL_ACTIVE && strcmp(c->callee.user_id, a->user_id) == 0 &&
           strcmp(c->callee.device_id, a->device_id) == 0;
}

struct ringer *call_ringer_of(const struct call *c, const char *user_id, const char *device_id)
{
    char *k = call_ringer_key(user_id, device_id);
    struct ringer *g = g_hash_table_lookup(c->ringers, k);
    g_free(k);
    return g;
}

/* Checks an SDP field: a string of at most max_sdp bytes. */
const char *call_sdp_of(json_t *msg, const struct call_reply *r)
{
    json_t *v = json_object_get(msg, "sdp");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        call_reply_err(r, ERR_BAD_REQUEST, "sdp must be a non-empty string");
        return NULL;
    }
    if (json_string_length(v) > (size_t)call_lim.max_sdp) {
        call_reply_err(r, ERR_TOO_LARGE, "sdp is larger than call_max_sdp");
        return NULL;
    }
    return json_string_value(v);
}

/* ---------- busy ---------- */

bool call_user_busy_here(const char *user_id)
{
    GHashTable *set = call_by_user ? g_hash_table_lookup(call_by_user, user_id) : NULL;
    if (!set)
        return false;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct call *c = v;
        if (c->state == CALL_ACTIVE &&
            (strcmp(c->caller.user_id, user_id) == 0 ||
             (c->callee.user_id && strcmp(c->callee.user_id, user_id) == 0)))
            return true;
    }
    return false;
}

void call_foreach_busy(void (*fn)(const char *user_id, void *ud), void *ud)
{
    if (!call_table)
        return;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, call_table);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct call *c = v;
        if (c->state != CALL_ACTIVE)
            continue;
        fn(c->caller.user_id, ud);
        if (c->callee.user_id)
            fn(c->callee.user_id, ud);
    }
}

bool call_user_busy(const char *user_id)
{
    return call_user_busy_here(user_id) || (hooks.busy_elsewhere && hooks.busy_elsewhere(user_id));
}

void call_busy_update(struct call *c)
{
    if (!hooks.busy_changed)
        return;
    const char *parties[] = {c->caller.user_id, c->callee.user_id};
    for (size_t i = 0; i < G_N_ELEMENTS(parties); i++)
        if (parties[i])
            hooks.busy_changed(parties[i], call_user_busy_here(parties[i]));
}

void call_ring_changed(struct call *c, bool ringing)
{
    if (!hooks.ring_changed || c->ring_told == ringing)
        return;
    c->ring_told = ringing;
    hooks.ring_changed(c->id, c->caller.user_id, c->targets, ringing);
}

const char *call_ringing_elsewhere(const char *caller, const char *callee)
{
    return hooks.ringing_elsewhere ? hooks.ringing_elsewhere(caller, callee) : NULL;
}

unsigned call_count_elsewhere(const char *user_id)
{
    return hooks.calls_elsewhere ? hooks.calls_elsewhere(user_id) : 0;
}

/* ---------- persistence ---------- */

/* Writes the call's record with its current state; returns a store code. */
int call_save(struct call *c)
{
    json_object_set_new(c->record, "state", json_string(call_state_names[c->state]));
    int rc = c->saved ? calls_put(call_store, c->id, c->record)
                      : calls_create(call_store, c->id, c->record);
    c->saved = c->saved || rc == STORE_OK;
    if (rc != STORE_OK)
        log_error("call", "call=%s cannot be stored (%d)", c->id, rc);
    return rc;
}

/* ---------- ending and freeing ---------- */

static void party_clear(struct party *p)
{
    if (p->grace_timer)
        g_source_remove(p->grace_timer);
    g_free(p->user_id);
    g_free(p->device_id);
    memset(p, 0, sizeof(*p));
}

struct call *call_alloc(char *id, enum call_state state, const char *caller,
                        const char *caller_device, int64_t invite_at)
{
    struct call *c = g_new0(struct call, 1);
    c->id = id;
    c->state = state;
    c->caller.user_id = g_strdup(caller);
    c->caller.device_id = g_strdup(caller_device);
    c->targets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    c->ringers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, call_ringer_free);
    c->invite_at = invite_at;
    g_queue_init(&c->early_caller);
    return c;
}

void call_free(struct call *c)
{
    call_sfu_close(c);
    if (c->ring_timer)
        g_source_remove(c->ring_timer);
    if (c->unreachable_timer)
        g_source_remove(c->unreachable_timer);
    if (c->rejoin_timer)
        g_source_remove(c->rejoin_timer);
    party_clear(&c->caller);
    party_clear(&c->callee);
    g_hash_table_destroy(c->targets);
    g_hash_table_destroy(c->ringers);
    json_decref(c->record);
    json_decref(c->incoming);
    g_free(c->offer);
    g_free(c->answer);
    g_queue_clear_full(&c->early_caller, (GDestroyNotify)json_decref);
    g_free(c->id);
    g_free(c);
}

static bool reason_leaves_missed(const char *reason)
{
    return strcmp(reason, "timeout") == 0 || strcmp(reason, "offline") == 0 ||
           strcmp(reason, "unreachable") == 0;
}

/* Ends c with reason: stores the end, tells every device still in the
 * call, leaves missed-call pushes where the reason calls for one, and
 * frees c. by is the user who ended it, or NULL. */
void call_end(struct call *c, const char *reason, const char *by)
{
    int64_t now = clock_now_ms();
    enum call_state was = c->state;
    c->state = CALL_ENDED;
    json_object_set_new(c->record, "end_at", json_integer(now));
    json_object_set_new(c->record, "end_reason", json_string(reason));
    if (by)
        json_object_set_new(c->record, "ended_by", json_string(by));
    if (c->answer_at)
        json_object_set_new(c->record, "duration_s", json_integer((now - c->answer_at) / 1000));
    call_joiners_ended(c, now);
    call_save(c); /* logged on failure; the call ends all the same */
    if (was == CALL_ACTIVE)
        call_busy_update(c);
    else if (was == CALL_RINGING)
        call_ring_changed(c, false);
    for (size_t i = 0; i < G_N_ELEMENTS(end_reasons); i++)
        if (strcmp(end_reasons[i], reason) == 0)
            ended_by_reason[i]++;
    audit_log(call_store, by ? by : "system", "call.end", c->id, reason, NULL);
    log_info("call", "call=%s ended reason=%s by=%s after %" G_GINT64_FORMAT " ms", c->id, reason,
             by ? by : "-", now - c->invite_at);

    json_t *ev =
        json_pack("{s:s, s:s, s:s}", "type", "call.ended", "call_id", c->id, "reason", reason);
    if (by)
        json_object_set_new(ev, "by", json_string(by));
    if (c->caller.connected)
        call_send_event(c->caller.user_id, c->caller.device_id, json_deep_copy(ev));
    if (was == CALL_ACTIVE && c->callee.connected)
        call_send_event(c->callee.user_id, c->callee.device_id, json_deep_copy(ev));
    call_send_ringers(c, ev);
    call_send_joiners(c, ev, NULL);
    json_decref(ev);

    GHashTableIter it;
    if (reason_leaves_missed(reason)) {
        json_t *payload = json_pack("{s:s, s:O, s:s, s:I}", "call_id", c->id, "from",
                                    json_object_get(c->incoming, "from"), "reason", reason,
                                    "invite_at", (json_int_t)c->invite_at);
        gpointer k;
        g_hash_table_iter_init(&it, c->targets);
        while (g_hash_table_iter_next(&it, &k, NULL))
            hooks.missed(k, payload);
        json_decref(payload);
    }

    call_unlink_user(c, c->caller.user_id);
    if (c->callee.user_id)
        call_unlink_user(c, c->callee.user_id);
    for (guint i = 0; c->joiners && i < c->joiners->len; i++)
        call_unlink_user(c, ((struct joiner *)g_ptr_array_index(c->joiners, i))->user_id);
    gpointer k;
    g_hash_table_iter_init(&it, c->targets);
    while (g_hash_table_iter_next(&it, &k, NULL))
        call_unlink_user(c, k);
    g_hash_table_steal(call_table, c->id);
    call_free(c);
}

/* ---------- timers ---------- */

static void timer_ref_free(gpointer p)
{
    struct call_timer_ref *t = p;
    g_free(t->call_id);
    g_free(t);
}

guint call_timer_start(struct call *c, int ms, int which, GSourceFunc fn)
{
    struct call_timer_ref *t = g_new0(struct call_timer_ref, 1);
    t->call_id = g_strdup(c->id);
    t->which = which;
    return g_timeout_add_full(G_PRIORITY_DEFAULT, (guint)ms, fn, t, timer_ref_free);
}

gboolean call_on_ring_timeout(gpointer ud)
{
    struct call_timer_ref *t = ud;
    struct call *c = g_hash_table_lookup(call_table, t->call_id);
    if (c) {
        c->ring_timer = 0;
        if (c->state == CALL_RINGING)
            call_end(c, "timeout", NULL);
    }
    return G_SOURCE_REMOVE;
}

static gboolean on_unreachable(gpointer ud)
{
    struct call_timer_ref *t = ud;
    struct call *c = g_hash_table_lookup(call_table, t->call_id);
    if (c) {
        c->unreachable_timer = 0;
        if (c->state == CALL_RINGING && !g_hash_table_size(c->ringers))
            call_end(c, "unreachable", NULL);
    }
    return G_SOURCE_REMOVE;
}

gboolean call_on_grace_over(gpointer ud)
{
    struct call_timer_ref *t = ud;
    struct call *c = g_hash_table_lookup(call_table, t->call_id);
    if (c) {
        struct party *p = t->which ? &c->callee : &c->caller;
        p->grace_timer = 0;
        if (!p->connected) {
            log_info("call", "call=%s user=%s did not come back within the grace period", c->id,
                     p->user_id);
            call_end(c, "failed", NULL);
        } else if (c->room && !c->sfu_peer[t->which]) {
            log_info("call",
                     "call=%s user=%s did not set its media up again within the grace"
                     " period",
                     c->id, p->user_id);
            call_end(c, "failed", NULL);
        }
    }
    return G_SOURCE_REMOVE;
}

/* While ringing with no device left to ring, waits a grace period for one
 * to come back before ending the call unreachable. */
void call_check_unreachable(struct call *c)
{
    if (c->state != CALL_RINGING)
        return;
    if (g_hash_table_size(c->ringers)) {
        if (c->unreachable_timer) {
            g_source_remove(c->unreachable_timer);
            c->unreachable_timer = 0;
        }
    } else if (!c->unreachable_timer) {
        c->unreachable_timer = call_timer_start(c, call_lim.grace_ms, 0, on_unreachable);
    }
}

/* ---------- ringing ---------- */

/* Rings device_id of user_id: sends call.incoming (with that user's own
 * ICE servers) and remembers the device. since_ms is when the device's
 * connection came online (its presence "since"), or 0 if not known: a
 * connection already rung is not rung twice (with several nodes, the news
 * of a login elsewhere can come after an invite found the device). */
void call_ring_device(struct call *c, const char *user_id, const char *device_id,
                      int64_t since_ms)
{
    char *k = call_ringer_key(user_id, device_id);
    struct ringer *g = g_hash_table_lookup(c->ringers, k);
    if (g) {
        g_free(k); /* a new connection of a ringing device: ring it again */
        if (since_ms && g->since_ms == since_ms)
            return;
    } else {
        g = g_new0(struct ringer, 1);
        g->user_id = g_strdup(user_id);
        g->device_id = g_strdup(device_id);
        g_queue_init(&g->early);
        g_hash_table_insert(c->ringers, k, g);
    }
    g->since_ms = since_ms;
    json_t *ev = json_deep_copy(c->incoming);
    json_object_set_new(ev, "ice_servers",
                        ice_servers_json(&call_lim.ice, user_id, clock_now_ms()));
    call_send_event(user_id, device_id, ev);
}

/* Removes every ringing device of user_id, sending each `ev` (a new
 * reference each; ev itself is borrowed) unless ev is NULL. */
static void unring_user(struct call *c, const char *user_id, json_t *ev, const char *except_dev)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, c->ringers);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct ringer *g = v;
        if (strcmp(g->user_id, user_id) != 0)
            continue;
        if (ev && !(except_dev && strcmp(g->device_id, except_dev) == 0))
            call_send_event(g->user_id, g->device_id, json_deep_copy(ev));
        g_hash_table_iter_remove(&it);
    }
}

/* ---------- the callee's answers ---------- */

void call_ringing(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    struct ringer *g =
        c->state == CALL_RINGING ? call_ringer_of(c, a->user_id, a->device_id) : NULL;
    if (!g) {
        call_reply_err(r, ERR_CONFLICT, "this device is not ringing for that call");
        return;
    }
    bool first = !json_object_get(c->record, "ringing_at");
    g->rang = true;
    call_reply_ok(r, NULL);
    if (first) {
        json_object_set_new(c->record, "ringing_at", json_integer(clock_now_ms()));
        if (c->caller.connected)
            call_send_event(c->caller.user_id, c->caller.device_id, call_event("call.ringing", c));
    }
}

void call_accept(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    if (c->state == CALL_ACTIVE) {
        call_reply_err(r, ERR_CONFLICT,
                       call_is_callee(c, a) ? "already accepted" : "answered elsewhere");
        return;
    }
    if (!g_hash_table_contains(c->targets, a->user_id)) {
        call_reply_err(r, ERR_FORBIDDEN, "you are not called in this call");
        return;
    }
    const char *sdp = call_sdp_of(msg, r);
    if (!sdp)
        return;
    if (c->room) {
        /* The answer is to the server's offer; the caller gets the
         * server's answer to its own. */
        struct ringer *g = call_ringer_of(c, a->user_id, a->device_id);
        GQueue none = G_QUEUE_INIT;
        const char *why = NULL;
        if (call_sfu_accept(c, sdp, g ? &g->early : &none, &why) != 0) {
            call_reply_err(r, ERR_BAD_REQUEST, why);
            return;
        }
    }
    int64_t now = clock_now_ms();
    c->state = CALL_ACTIVE;
    c->callee.user_id = g_strdup(a->user_id);
    c->callee.device_id = g_strdup(a->device_id);
    c->callee.connected = true;
    if (!c->room)
        c->answer = g_strdup(sdp);
    c->answer_at = now;
    json_object_set_new(c->record, "answered_by",
                        json_pack("{s:s, s:s}", "user", a->user_id, "device", a->device_id));
    json_object_set_new(c->record, "answer_at", json_integer(now));
    if (call_save(c) != STORE_OK) {
        c->state = CALL_RINGING;
        party_clear(&c->callee);
        g_clear_pointer(&c->answer, g_free);
        c->answer_at = 0;
        json_object_del(c->record, "answered_by");
        json_object_del(c->record, "answer_at");
        call_reply_err(r, ERR_UNAVAILABLE, "cannot record the answer now");
        if (c->room) /* the server took the answer: the call cannot ring on */
            call_end(c, "failed", NULL);
        return;
    }
    if (c->ring_timer)
        g_source_remove(c->ring_timer);
    if (c->unreachable_timer)
        g_source_remove(c->unreachable_timer);
    c->ring_timer = c->unreachable_timer = 0;
    hist_observe(&setup_latency, (double)(now - c->invite_at) / 1000.0);
    log_info("call", "call=%s accepted by user=%s device=%s after %" G_GINT64_FORMAT " ms", c->id,
             a->user_id, a->device_id, now - c->invite_at);
    call_reply_ok(r, json_pack("{s:s}", "call_id", c->id));
    call_ring_changed(c, false);
    call_busy_update(c);

    if (c->caller.connected) {
        json_t *ev = call_event("call.accepted", c);
        json_object_set_new(ev, "sdp", json_string(c->answer));
        json_object_set_new(ev, "answered_by",
                            json_pack("{s:s, s:s}", "user", a->user_id, "device", a->device_id));
        call_send_event(c->caller.user_id, c->caller.device_id, ev);
    }
    /* Everyone else who was ringing hears it was answered; only the
     * answering user stays linked to the call. */
    struct ringer *winner = call_ringer_of(c, a->user_id, a->device_id);
    GQueue from_callee = G_QUEUE_INIT;
    if (winner) {
        from_callee = winner->early;
        g_queue_init(&winner->early);
    }
    json_t *elsewhere = call_event("call.answered_elsewhere", c);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, c->ringers);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct ringer *g = v;
        if (g != winner)
            call_send_event(g->user_id, g->device_id, json_deep_copy(elsewhere));
    }
    json_decref(elsewhere);
    g_hash_table_remove_all(c->ringers);
    g_hash_table_iter_init(&it, c->targets);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (strcmp(k, a->user_id) != 0)
            call_unlink_user(c, k);
    }
    g_hash_table_remove_all(c->targets);
    /* The held candidates, in the order they came. */
    json_t *cand;
    while ((cand = g_queue_pop_head(&c->early_caller))) {
        json_t *ev = call_event("call.candidate", c);
        json_object_set_new(ev, "candidate", cand);
        call_send_event(a->user_id, a->device_id, ev);
    }
    while ((cand = g_queue_pop_head(&from_callee))) {
        json_t *ev = call_event("call.candidate", c);
        json_object_set_new(ev, "candidate", cand);
        if (c->caller.connected)
            call_send_event(c->caller.user_id, c->caller.device_id, ev);
        else
            json_decref(ev);
    }
}

/* A callee user declines (or hangs up before answering): its devices stop
 * ringing; the call ends declined once no callee is left. */
static void decline_user(struct call *c, const struct call_actor *a, const char *reason)
{
    json_t *ev = call_event("call.ended", c);
    json_object_set_new(ev, "reason", json_string("declined"));
    unring_user(c, a->user_id, ev, NULL);
    json_decref(ev);
    g_hash_table_remove(c->targets, a->user_id);
    call_unlink_user(c, a->user_id);
    json_t *declines = json_object_get(c->record, "declined_by");
    if (!declines) {
        declines = json_array();
        json_object_set_new(c->record, "declined_by", declines);
    }
    json_array_append_new(declines, json_pack("{s:s, s:s?}", "user", a->user_id, "reason", reason));
    log_info("call", "call=%s declined by user=%s", c->id, a->user_id);
    if (!g_hash_table_size(c->targets)) {
        call_end(c, "declined", a->user_id);
        return;
    }
    /* it rings on for the others: a server taking it over must know */
    call_save(c);
    call_check_unreachable(c);
}

void call_decline(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    json_t *reason = json_object_get(msg, "reason");
    if (reason && (!json_is_string(reason) || json_string_length(reason) > REASON_LEN_MAX)) {
        call_reply_err(r, ERR_BAD_REQUEST, "reason must be a string of at most 200 bytes");
        return;
    }
    if (c->state != CALL_RINGING || !g_hash_table_contains(c->targets, a->user_id)) {
        call_reply_err(r, ERR_CONFLICT, "that call is not ringing for you");
        return;
    }
    call_reply_ok(r, NULL);
    decline_user(c, a, json_string_value(reason));
}

void call_cancel(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    if (strcmp(c->caller.user_id, a->user_id) != 0) {
        call_reply_err(r, ERR_FORBIDDEN, "only the caller cancels a call");
        return;
    }
    if (c->state != CALL_RINGING) {
        call_reply_err(r, ERR_CONFLICT, "the call was answered: use call.hangup");
        return;
    }
    call_reply_ok(r, NULL);
    call_end(c, "cancelled", a->user_id);
}

void call_hangup(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = call_find(msg, r);
    if (!c)
        return;
    bool caller = strcmp(c->caller.user_id, a->user_id) == 0;
    bool callee = c->callee.user_id && strcmp(c->callee.user_id, a->user_id) == 0;
    if (c->state == CALL_RINGING && g_hash_table_contains(c->targets, a->user_id)) {
        call_reply_ok(r, NULL);
        decline_user(c, a, "hangup");
        return;
    }
    struct joiner *j = call_joiner_of(c, a->user_id, a->device_id);
    if (j) { /* a third party hangs up: it leaves, the call goes on */
        call_reply_ok(r, NULL);
        call_joiner_leave(c, j, "left");
        return;
    }
    if (!caller && !callee) {
        call_reply_err(r, ERR_FORBIDDEN, "you are not in that call");
        return;
    }
    call_reply_ok(r, NULL);
    call_end(c, c->state == CALL_RINGING ? "cancelled" : "hangup", a->user_id);
}

/* ---------- module life ---------- */

static bool held_elsewhere(const char *id, void *ud)
{
    (void)ud;
    return hooks.held_elsewhere && hooks.held_elsewhere(id);
}

void call_init(struct store *st, const struct call_limits *limits, const struct call_hooks *h)
{
    call_store = st;
    call_lim = *limits;
    hooks = *h;
    call_table = g_hash_table_new(g_str_hash, g_str_equal);
    call_by_user = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify)g_hash_table_destroy);
    int n = 0;
    if (calls_recover(st, clock_now_ms(), held_elsewhere, NULL, &n) != STORE_OK)
        log_error("call", "cannot close the calls left open by the previous run");
    else if (n)
        log_info("call", "%d call(s) left open by the previous run recorded as failed", n);
}

void call_shutdown(void)
{
    if (!call_table)
        return;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, call_table);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct call *c = v;
        c->state = CALL_ENDED;
        json_object_set_new(c->record, "end_at", json_integer(clock_now_ms()));
        json_object_set_new(c->record, "end_reason", json_string("failed"));
        call_save(c);
        call_free(c);
    }
    g_clear_pointer(&call_table, g_hash_table_destroy);
    g_clear_pointer(&call_by_user, g_hash_table_destroy);
}

unsigned call_count(void)
{
    return call_table ? g_hash_table_size(call_table) : 0;
}

void call_get_stats(struct call_stats *out)
{
    out->reasons = end_reasons;
    out->ended = ended_by_reason;
    out->n_reasons = G_N_ELEMENTS(end_reasons);
    out->setup = &setup_latency;
}
