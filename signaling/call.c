/* The call state machine (see call.h).
 *
 * Calls live in a table by id; a second table maps each user to the calls
 * it takes part in (as caller, as a callee still ringing, or as the callee
 * who answered), which is what busy detection, the per-user limit, glare
 * and device online/offline changes look up. Timers (ring timeout, a
 * party's grace period, "nobody left to ring") carry the call id, never a
 * pointer, so a timer that fires after the call ended finds nothing. */
#include "signaling/call.h"

#include "common/bizdate.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/presence.h"
#include "records/account.h"
#include "records/audit.h"
#include "records/calls.h"
#include "records/jurisdiction.h"
#include "records/org.h"
#include "signaling/patrol.h"

#include <glib.h>
#include <string.h>

#define CALL_ID_MAX 64
#define POSITIONS_MAX 16
#define POSITION_LEN_MAX 64
#define CANDIDATE_LEN_MAX 2048
#define REASON_LEN_MAX 200

enum call_state { CALL_RINGING, CALL_ACTIVE, CALL_ENDED };

static const char *const state_names[] = {"ringing", "active", "ended"};

/* A device that is ringing, with the candidates it sent before it
 * accepted (delivered to the caller if it wins). */
struct ringer {
    char *user_id;
    char *device_id;
    bool rang;
    GQueue early; /* json_t* */
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
    json_t *incoming;     /* call.incoming without ice_servers */
    char *offer, *answer; /* SDP */
    GQueue early_caller;  /* caller's candidates before an answer */
    int candidates;
    int64_t invite_at, answer_at;
    guint ring_timer, unreachable_timer;
};

struct bucket {
    double tokens;
    int64_t at_ms;
};

static const char *const end_reasons[] = {"hangup", "declined", "cancelled",   "timeout",
                                          "busy",   "offline",  "unreachable", "failed"};
static uint64_t ended_by_reason[G_N_ELEMENTS(end_reasons)];
static struct hist setup_latency;

static struct store *store;
static struct call_limits lim;
static struct call_hooks hooks;
static GHashTable *calls;   /* id -> struct call* (owned) */
static GHashTable *by_user; /* user id -> GHashTable(call id -> struct call*) */
static GHashTable *buckets; /* user id -> struct bucket* (invite rate) */

/* ---------- small helpers ---------- */

static void reply_ok(const struct call_reply *r, json_t *fields)
{
    r->fn(r->ctx, ERR_NONE, NULL, fields);
}

static void reply_err(const struct call_reply *r, enum err_code code, const char *message)
{
    r->fn(r->ctx, code, message, NULL);
}

static char *ringer_key(const char *user_id, const char *device_id)
{
    return g_strconcat(user_id, "\n", device_id, NULL);
}

static void ringer_free(gpointer p)
{
    struct ringer *g = p;
    g_free(g->user_id);
    g_free(g->device_id);
    g_queue_clear_full(&g->early, (GDestroyNotify)json_decref);
    g_free(g);
}

static void send_event(const char *user_id, const char *device_id, json_t *ev)
{
    hooks.send(user_id, device_id, ev);
}

/* {"type": type, "call_id": id} */
static json_t *event(const char *type, const struct call *c)
{
    return json_pack("{s:s, s:s}", "type", type, "call_id", c->id);
}

static void link_user(struct call *c, const char *user_id)
{
    GHashTable *set = g_hash_table_lookup(by_user, user_id);
    if (!set) {
        set = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_insert(by_user, g_strdup(user_id), set);
    }
    g_hash_table_insert(set, c->id, c);
}

static void unlink_user(struct call *c, const char *user_id)
{
    GHashTable *set = g_hash_table_lookup(by_user, user_id);
    if (!set)
        return;
    g_hash_table_remove(set, c->id);
    if (!g_hash_table_size(set))
        g_hash_table_remove(by_user, user_id);
}

/* The calls of user_id, as a new list (calls may end while it is walked:
 * walk the ids and look each up again). */
static GPtrArray *call_ids_of(const char *user_id)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    GHashTable *set = g_hash_table_lookup(by_user, user_id);
    if (set) {
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, set);
        while (g_hash_table_iter_next(&it, &k, NULL))
            g_ptr_array_add(ids, g_strdup(k));
    }
    return ids;
}

/* True if user_id is a party of an answered call. */
static bool user_busy(const char *user_id)
{
    GHashTable *set = g_hash_table_lookup(by_user, user_id);
    if (!set)
        return false;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct call *c = v;
        if (c->state == CALL_ACTIVE &&
            (strcmp(c->caller.user_id, user_id) == 0 || strcmp(c->callee.user_id, user_id) == 0))
            return true;
    }
    return false;
}

/* Calls user_id has made or answered that are not over. */
static unsigned user_call_count(const char *user_id)
{
    GHashTable *set = g_hash_table_lookup(by_user, user_id);
    unsigned n = 0;
    if (!set)
        return 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct call *c = v;
        if (strcmp(c->caller.user_id, user_id) == 0 ||
            (c->callee.user_id && strcmp(c->callee.user_id, user_id) == 0))
            n++;
    }
    return n;
}

/* Takes one invite from user_id's bucket (invites_per_min per minute,
 * bursting to the same number). */
static bool invite_allowed(const char *user_id)
{
    int64_t now = clock_mono_ms();
    struct bucket *b = g_hash_table_lookup(buckets, user_id);
    if (!b) {
        b = g_new0(struct bucket, 1);
        b->tokens = lim.invites_per_min;
        b->at_ms = now;
        g_hash_table_insert(buckets, g_strdup(user_id), b);
    }
    b->tokens += (double)(now - b->at_ms) * lim.invites_per_min / 60000.0;
    if (b->tokens > lim.invites_per_min)
        b->tokens = lim.invites_per_min;
    b->at_ms = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

static struct call *find_call(json_t *msg, const struct call_reply *r)
{
    const char *id = jx_str_bounded(msg, "call_id", CALL_ID_MAX);
    if (!id) {
        reply_err(r, ERR_BAD_REQUEST, "call_id must be a string");
        return NULL;
    }
    struct call *c = g_hash_table_lookup(calls, id);
    if (!c)
        reply_err(r, ERR_NOT_FOUND, "no such call in progress");
    return c;
}

static bool is_caller(const struct call *c, const struct call_actor *a)
{
    return strcmp(c->caller.user_id, a->user_id) == 0 &&
           strcmp(c->caller.device_id, a->device_id) == 0;
}

static bool is_callee(const struct call *c, const struct call_actor *a)
{
    return c->state == CALL_ACTIVE && strcmp(c->callee.user_id, a->user_id) == 0 &&
           strcmp(c->callee.device_id, a->device_id) == 0;
}

static struct ringer *ringer_of(const struct call *c, const char *user_id, const char *device_id)
{
    char *k = ringer_key(user_id, device_id);
    struct ringer *g = g_hash_table_lookup(c->ringers, k);
    g_free(k);
    return g;
}

/* Checks an SDP field: a string of at most max_sdp bytes. */
static const char *sdp_of(json_t *msg, const struct call_reply *r)
{
    json_t *v = json_object_get(msg, "sdp");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        reply_err(r, ERR_BAD_REQUEST, "sdp must be a non-empty string");
        return NULL;
    }
    if (json_string_length(v) > (size_t)lim.max_sdp) {
        reply_err(r, ERR_TOO_LARGE, "sdp is larger than call_max_sdp");
        return NULL;
    }
    return json_string_value(v);
}

/* ---------- persistence ---------- */

/* Writes the call's record with its current state; returns a store code. */
static int save(struct call *c)
{
    json_object_set_new(c->record, "state", json_string(state_names[c->state]));
    int rc = calls_put(store, c->id, c->record);
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

static void call_free(struct call *c)
{
    if (c->ring_timer)
        g_source_remove(c->ring_timer);
    if (c->unreachable_timer)
        g_source_remove(c->unreachable_timer);
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
static void call_end(struct call *c, const char *reason, const char *by)
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
    save(c); /* logged on failure; the call ends all the same */
    for (size_t i = 0; i < G_N_ELEMENTS(end_reasons); i++)
        if (strcmp(end_reasons[i], reason) == 0)
            ended_by_reason[i]++;
    audit_log(store, by ? by : "system", "call.end", c->id, reason, NULL);
    log_info("call", "call=%s ended reason=%s by=%s after %" G_GINT64_FORMAT " ms", c->id, reason,
             by ? by : "-", now - c->invite_at);

    json_t *ev =
        json_pack("{s:s, s:s, s:s}", "type", "call.ended", "call_id", c->id, "reason", reason);
    if (by)
        json_object_set_new(ev, "by", json_string(by));
    if (c->caller.connected)
        send_event(c->caller.user_id, c->caller.device_id, json_deep_copy(ev));
    if (was == CALL_ACTIVE && c->callee.connected)
        send_event(c->callee.user_id, c->callee.device_id, json_deep_copy(ev));
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, c->ringers);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct ringer *g = v;
        send_event(g->user_id, g->device_id, json_deep_copy(ev));
    }
    json_decref(ev);

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

    unlink_user(c, c->caller.user_id);
    if (c->callee.user_id)
        unlink_user(c, c->callee.user_id);
    gpointer k;
    g_hash_table_iter_init(&it, c->targets);
    while (g_hash_table_iter_next(&it, &k, NULL))
        unlink_user(c, k);
    g_hash_table_steal(calls, c->id);
    call_free(c);
}

/* ---------- timers ---------- */

struct timer_ref {
    char *call_id;
    int which; /* 0 caller, 1 callee (grace timers) */
};

static void timer_ref_free(gpointer p)
{
    struct timer_ref *t = p;
    g_free(t->call_id);
    g_free(t);
}

static guint timer_start(struct call *c, int ms, int which, GSourceFunc fn)
{
    struct timer_ref *t = g_new0(struct timer_ref, 1);
    t->call_id = g_strdup(c->id);
    t->which = which;
    return g_timeout_add_full(G_PRIORITY_DEFAULT, (guint)ms, fn, t, timer_ref_free);
}

static gboolean on_ring_timeout(gpointer ud)
{
    struct timer_ref *t = ud;
    struct call *c = g_hash_table_lookup(calls, t->call_id);
    if (c) {
        c->ring_timer = 0;
        if (c->state == CALL_RINGING)
            call_end(c, "timeout", NULL);
    }
    return G_SOURCE_REMOVE;
}

static gboolean on_unreachable(gpointer ud)
{
    struct timer_ref *t = ud;
    struct call *c = g_hash_table_lookup(calls, t->call_id);
    if (c) {
        c->unreachable_timer = 0;
        if (c->state == CALL_RINGING && !g_hash_table_size(c->ringers))
            call_end(c, "unreachable", NULL);
    }
    return G_SOURCE_REMOVE;
}

static gboolean on_grace_over(gpointer ud)
{
    struct timer_ref *t = ud;
    struct call *c = g_hash_table_lookup(calls, t->call_id);
    if (c) {
        struct party *p = t->which ? &c->callee : &c->caller;
        p->grace_timer = 0;
        if (!p->connected) {
            log_info("call", "call=%s user=%s did not come back within the grace period", c->id,
                     p->user_id);
            call_end(c, "failed", NULL);
        }
    }
    return G_SOURCE_REMOVE;
}

/* While ringing with no device left to ring, waits a grace period for one
 * to come back before ending the call unreachable. */
static void check_unreachable(struct call *c)
{
    if (c->state != CALL_RINGING)
        return;
    if (g_hash_table_size(c->ringers)) {
        if (c->unreachable_timer) {
            g_source_remove(c->unreachable_timer);
            c->unreachable_timer = 0;
        }
    } else if (!c->unreachable_timer) {
        c->unreachable_timer = timer_start(c, lim.grace_ms, 0, on_unreachable);
    }
}

/* ---------- ringing ---------- */

/* Rings device_id of user_id: sends call.incoming (with that user's own
 * ICE servers) and remembers the device. */
static void ring_device(struct call *c, const char *user_id, const char *device_id)
{
    char *k = ringer_key(user_id, device_id);
    if (g_hash_table_contains(c->ringers, k)) {
        g_free(k); /* a new connection of a ringing device: ring it again */
    } else {
        struct ringer *g = g_new0(struct ringer, 1);
        g->user_id = g_strdup(user_id);
        g->device_id = g_strdup(device_id);
        g_queue_init(&g->early);
        g_hash_table_insert(c->ringers, k, g);
    }
    json_t *ev = json_deep_copy(c->incoming);
    json_object_set_new(ev, "ice_servers", ice_servers_json(&lim.ice, user_id, clock_now_ms()));
    send_event(user_id, device_id, ev);
}

static void ring_user(struct call *c, const char *user_id)
{
    json_t *devices = presence_devices(user_id);
    size_t i;
    json_t *d;
    json_array_foreach(devices, i, d) ring_device(c, user_id, jx_str(d, "device_id"));
    json_decref(devices);
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
            send_event(g->user_id, g->device_id, json_deep_copy(ev));
        g_hash_table_iter_remove(&it);
    }
}

/* ---------- who may call whom ---------- */

/* The division of the organisation an account belongs to (g_free), or
 * NULL. */
static char *division_of(const struct account *acct)
{
    return org_division_of(store, acct->role, acct->org);
}

/* True if the caller a may call account t (t_division: its org's
 * division). gov calls gov anywhere and the corp/trs users it covers;
 * corp/trs call the gov users that cover them. */
static bool may_call(const struct call_actor *a, const char *a_division, const struct account *t,
                     const char *t_division)
{
    if (strcmp(a->role, "gov") == 0) {
        if (strcmp(t->role, "gov") == 0)
            return true;
        int kind = juris_org_kind_of_role(t->role);
        if (kind != ORG_ENTERPRISE && kind != ORG_CARRIER)
            return false;
        struct principal p = {a->role, a->org};
        return t_division && juris_reaches(&p, (enum org_kind)kind, t->org, t_division);
    }
    if (strcmp(a->role, "corp") == 0 || strcmp(a->role, "trs") == 0) {
        if (strcmp(t->role, "gov") != 0 || !a_division)
            return false;
        struct principal p = {t->role, t->org};
        return juris_reaches(&p, (enum org_kind)juris_org_kind_of_role(a->role), a->org,
                             a_division);
    }
    return false;
}

struct pick {
    GPtrArray *accounts;
    json_t *positions; /* array of strings, or NULL for everyone */
};

static bool pick_position(struct account *acct, void *ud)
{
    struct pick *p = ud;
    if (strcmp(acct->role, "corp") != 0 || acct->disabled)
        return true;
    bool match = !p->positions;
    size_t i;
    json_t *v;
    json_array_foreach(p->positions, i, v)
    {
        if (acct->position && strcmp(json_string_value(v), acct->position) == 0)
            match = true;
    }
    if (match)
        g_ptr_array_add(p->accounts, account_dup(acct));
    return true;
}

/* ---------- call.invite ---------- */

struct target {
    GPtrArray *accounts; /* struct account* to call */
    char *enterprise;    /* the plant involved, if any */
    char *carrier;       /* the carrier involved, if any */
    char *division;      /* the division the call is filed under */
    json_t *to;          /* "to" rebuilt from the checked fields (owned) */
    enum err_code err;
    const char *why;
};

static void target_clear(struct target *t)
{
    if (t->accounts)
        g_ptr_array_free(t->accounts, TRUE);
    g_free(t->enterprise);
    g_free(t->carrier);
    g_free(t->division);
    json_decref(t->to);
    memset(t, 0, sizeof(*t));
}

/* Resolves and authorises "to" of an invite from a into t. Returns false
 * with t->err and t->why set on refusal. */
static bool resolve_target(const struct call_actor *a, json_t *to, struct target *t)
{
    t->accounts = g_ptr_array_new_with_free_func((GDestroyNotify)account_free);
    char *a_division = org_division_of(store, a->role, a->org);
    const char *user = jx_str_bounded(to, "user", 64);
    const char *ent = jx_str_bounded(to, "enterprise", ORG_ID_MAX);
    json_t *positions = json_object_get(to, "positions");
    bool ok = false;

    if (!json_is_object(to) || (!user == !ent)) {
        t->err = ERR_BAD_REQUEST;
        t->why = "to must be {\"user\"} or {\"enterprise\",\"positions\"}";
        goto out;
    }
    if (user) {
        struct account *acct = NULL;
        int rc = account_get(store, user, &acct);
        if (rc != STORE_OK) {
            t->err = rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
            t->why = rc == STORE_ENOTFOUND ? "no such user" : "store unavailable";
            goto out;
        }
        if (strcmp(acct->id, a->user_id) == 0) {
            account_free(acct);
            t->err = ERR_BAD_REQUEST;
            t->why = "you cannot call yourself";
            goto out;
        }
        char *div = division_of(acct);
        if (!may_call(a, a_division, acct, div)) {
            g_free(div);
            account_free(acct);
            t->err = ERR_FORBIDDEN;
            t->why = "that user is outside what you may call";
            goto out;
        }
        if (strcmp(acct->role, "corp") == 0)
            t->enterprise = g_strdup(acct->org);
        else if (strcmp(acct->role, "trs") == 0)
            t->carrier = g_strdup(acct->org);
        t->division = strcmp(acct->role, "gov") == 0 && strcmp(a->role, "gov") == 0
                          ? g_strdup(a_division)
                          : g_strdup(div);
        g_free(div);
        g_ptr_array_add(t->accounts, acct);
    } else {
        if (positions &&
            (!json_is_array(positions) || json_array_size(positions) > POSITIONS_MAX)) {
            t->err = ERR_BAD_REQUEST;
            t->why = "positions must be an array of at most 16 strings";
            goto out;
        }
        size_t i;
        json_t *v;
        json_array_foreach(positions, i, v)
        {
            if (!json_is_string(v) || json_string_length(v) > POSITION_LEN_MAX) {
                t->err = ERR_BAD_REQUEST;
                t->why = "positions must be an array of at most 16 strings";
                goto out;
            }
        }
        json_t *doc = NULL;
        int rc = org_enterprise_get(store, ent, &doc);
        if (rc != STORE_OK) {
            t->err = rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
            t->why = rc == STORE_ENOTFOUND ? "no such enterprise" : "store unavailable";
            goto out;
        }
        struct principal p = {a->role, a->org};
        bool reach = strcmp(a->role, "gov") == 0 &&
                     juris_reaches(&p, ORG_ENTERPRISE, ent, jx_str(doc, "division"));
        t->division = g_strdup(jx_str(doc, "division"));
        json_decref(doc);
        if (!reach) {
            t->err = ERR_FORBIDDEN;
            t->why = "that enterprise is outside your jurisdiction";
            goto out;
        }
        t->enterprise = g_strdup(ent);
        struct pick pk = {t->accounts, json_array_size(positions) ? positions : NULL};
        if (account_each_in_org(store, ent, pick_position, &pk) != STORE_OK) {
            t->err = ERR_UNAVAILABLE;
            t->why = "store unavailable";
            goto out;
        }
    }
    t->to = user ? json_pack("{s:s}", "user", user)
                 : json_pack("{s:s, s:o}", "enterprise", ent, "positions",
                             positions ? json_incref(positions) : json_array());
    if (!t->enterprise && strcmp(a->role, "corp") == 0)
        t->enterprise = g_strdup(a->org);
    if (!t->carrier && strcmp(a->role, "trs") == 0)
        t->carrier = g_strdup(a->org);
    if (!t->division)
        t->division = g_strdup(a_division ? a_division : "");
    ok = true;
out:
    g_free(a_division);
    return ok;
}

/* Glare: a target is ringing a's user with a call of its own. Returns that
 * call, or NULL. */
static struct call *glare_with(const struct call_actor *a, const struct target *t)
{
    GHashTable *set = g_hash_table_lookup(by_user, a->user_id);
    if (!set)
        return NULL;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct call *c = v;
        if (c->state != CALL_RINGING || !g_hash_table_contains(c->targets, a->user_id))
            continue;
        for (guint i = 0; i < t->accounts->len; i++) {
            const struct account *acct = g_ptr_array_index(t->accounts, i);
            if (strcmp(acct->id, c->caller.user_id) == 0)
                return c;
        }
    }
    return NULL;
}

/* Checks the optional invite fields. Returns false (and replies) if bad. */
static bool invite_fields(json_t *msg, const struct call_reply *r, json_t **media,
                          const char **patrol_id)
{
    json_t *m = json_object_get(msg, "media");
    if (m && (!json_is_object(m) ||
              (json_object_get(m, "audio") && !json_is_boolean(json_object_get(m, "audio"))) ||
              (json_object_get(m, "video") && !json_is_boolean(json_object_get(m, "video"))))) {
        reply_err(r, ERR_BAD_REQUEST, "media must be {\"audio\":bool, \"video\":bool}");
        return false;
    }
    *media = json_pack("{s:b, s:b}", "audio", jx_bool(m, "audio", true), "video",
                       jx_bool(m, "video", true));
    json_t *p = json_object_get(msg, "patrol_id");
    if (p && !json_is_null(p) && (!json_is_string(p) || json_string_length(p) > CALL_ID_MAX)) {
        json_decref(*media);
        reply_err(r, ERR_BAD_REQUEST, "patrol_id must be a string");
        return false;
    }
    *patrol_id = json_is_string(p) ? json_string_value(p) : NULL;
    return true;
}

void call_invite(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    json_t *media = NULL;
    const char *patrol_id = NULL;
    struct target t = {0};
    const char *sdp = sdp_of(msg, r);
    if (!sdp || !invite_fields(msg, r, &media, &patrol_id))
        return;
    if (!resolve_target(a, json_object_get(msg, "to"), &t)) {
        if (t.err == ERR_FORBIDDEN) {
            json_t *to = json_object_get(msg, "to");
            const char *who = jx_str(to, "user") ? jx_str(to, "user") : jx_str(to, "enterprise");
            audit_log(store, a->user_id, "call.invite", who, "forbidden", NULL);
            log_info("call", "user=%s invite refused: %s", a->user_id, t.why);
        }
        reply_err(r, t.err, t.why);
        goto out;
    }
    if (patrol_id) {
        const char *why = NULL;
        enum err_code e = patrol_check_call(patrol_id, a->user_id, t.enterprise, &why);
        if (e != ERR_NONE) {
            reply_err(r, e, why);
            goto out;
        }
    }
    if (user_call_count(a->user_id) >= (unsigned)lim.calls_per_user) {
        reply_err(r, ERR_BUSY, "you are in as many calls as calls_per_user allows");
        goto out;
    }
    if (!invite_allowed(a->user_id)) {
        reply_err(r, ERR_RATE_LIMITED, "too many invites: wait a little (invites_per_min)");
        goto out;
    }
    struct call *other = glare_with(a, &t);
    if (other) {
        /* Both ring each other: the call made by the smaller user id stays,
         * whoever arrived first, so every node decides alike. */
        if (strcmp(other->caller.user_id, a->user_id) < 0) {
            json_t *extra = json_pack("{s:s}", "call_id", other->id);
            r->fn(r->ctx, ERR_CONFLICT, "glare: that user is calling you; answer their call",
                  extra);
            log_info("call", "glare: user=%s invite yields to call=%s", a->user_id, other->id);
            goto out;
        }
        log_info("call", "glare: call=%s yields to a new invite by user=%s", other->id, a->user_id);
        json_object_set_new(other->record, "glare", json_true());
        call_end(other, "busy", NULL);
    }

    int64_t now = clock_now_ms();
    struct call *c = g_new0(struct call, 1);
    c->id = id_new("c");
    c->state = CALL_RINGING;
    c->caller.user_id = g_strdup(a->user_id);
    c->caller.device_id = g_strdup(a->device_id);
    c->caller.connected = true;
    c->targets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    c->ringers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ringer_free);
    c->offer = g_strdup(sdp);
    c->invite_at = now;
    g_queue_init(&c->early_caller);

    unsigned busy = 0;
    json_t *callees = json_array(), *parties = json_array();
    json_array_append_new(parties, json_string(a->user_id));
    for (guint i = 0; i < t.accounts->len; i++) {
        const struct account *acct = g_ptr_array_index(t.accounts, i);
        json_array_append_new(callees, json_string(acct->id));
        json_array_append_new(parties, json_string(acct->id));
        if (user_busy(acct->id))
            busy++;
        else
            g_hash_table_add(c->targets, g_strdup(acct->id));
    }

    struct account *me = NULL;
    json_t *from =
        account_get(store, a->user_id, &me) == STORE_OK
            ? account_public_json(me)
            : json_pack("{s:s, s:s, s:s}", "id", a->user_id, "role", a->role, "org", a->org);
    account_free(me);
    char date[BIZDATE_LEN];
    bizdate_of(now, date);
    c->record = json_pack("{s:s, s:s, s:s, s:o, s:O, s:o, s:o, s:s, s:O, s:I, s:s}", "id", c->id,
                          "caller", a->user_id, "caller_device", a->device_id, "callees", callees,
                          "to", t.to, "parties", parties, "media", media, "division", t.division,
                          "from", from, "invite_at", (json_int_t)now, "date", date);
    media = NULL;
    if (t.enterprise)
        json_object_set_new(c->record, "enterprise", json_string(t.enterprise));
    if (t.carrier)
        json_object_set_new(c->record, "carrier", json_string(t.carrier));
    if (patrol_id)
        json_object_set_new(c->record, "patrol_id", json_string(patrol_id));
    c->incoming = json_pack("{s:s, s:s, s:O, s:O, s:s, s:O}", "type", "call.incoming", "call_id",
                            c->id, "from", from, "to", t.to, "sdp", sdp, "media",
                            json_object_get(c->record, "media"));
    json_decref(from);
    if (t.enterprise)
        json_object_set_new(c->incoming, "enterprise", json_string(t.enterprise));
    if (patrol_id)
        json_object_set_new(c->incoming, "patrol_id", json_string(patrol_id));

    /* Durable first: the record exists before anyone hears of the call. */
    if (save(c) != STORE_OK) {
        reply_err(r, ERR_UNAVAILABLE, "cannot record the call now");
        call_free(c);
        goto out;
    }
    g_hash_table_insert(calls, c->id, c);
    link_user(c, a->user_id);
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, c->targets);
    while (g_hash_table_iter_next(&it, &k, NULL))
        link_user(c, k);
    audit_log(store, a->user_id, "call.invite", c->id, "ok", NULL);
    reply_ok(r, json_pack("{s:s, s:o}", "call_id", c->id, "ice_servers",
                          ice_servers_json(&lim.ice, a->user_id, now)));

    const char *outcome = NULL;
    if (!t.accounts->len)
        outcome = "unreachable"; /* nobody holds the positions called */
    else if (!g_hash_table_size(c->targets))
        outcome = "busy";
    log_info("call", "call=%s invite from user=%s to %u user(s)%s%s%s", c->id, a->user_id,
             t.accounts->len, patrol_id ? " patrol=" : "", patrol_id ? patrol_id : "",
             busy ? " (some busy)" : "");
    if (!outcome) {
        g_hash_table_iter_init(&it, c->targets);
        while (g_hash_table_iter_next(&it, &k, NULL))
            ring_user(c, k);
        if (!g_hash_table_size(c->ringers))
            outcome = "offline";
    }
    if (outcome) {
        call_end(c, outcome, NULL);
        goto out;
    }
    c->ring_timer = timer_start(c, lim.ring_timeout_ms, 0, on_ring_timeout);
out:
    json_decref(media);
    target_clear(&t);
}

/* ---------- the callee's answers ---------- */

void call_ringing(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = find_call(msg, r);
    if (!c)
        return;
    struct ringer *g = c->state == CALL_RINGING ? ringer_of(c, a->user_id, a->device_id) : NULL;
    if (!g) {
        reply_err(r, ERR_CONFLICT, "this device is not ringing for that call");
        return;
    }
    bool first = !json_object_get(c->record, "ringing_at");
    g->rang = true;
    reply_ok(r, NULL);
    if (first) {
        json_object_set_new(c->record, "ringing_at", json_integer(clock_now_ms()));
        if (c->caller.connected)
            send_event(c->caller.user_id, c->caller.device_id, event("call.ringing", c));
    }
}

void call_accept(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = find_call(msg, r);
    if (!c)
        return;
    if (c->state == CALL_ACTIVE) {
        reply_err(r, ERR_CONFLICT, is_callee(c, a) ? "already accepted" : "answered elsewhere");
        return;
    }
    if (!g_hash_table_contains(c->targets, a->user_id)) {
        reply_err(r, ERR_FORBIDDEN, "you are not called in this call");
        return;
    }
    const char *sdp = sdp_of(msg, r);
    if (!sdp)
        return;
    int64_t now = clock_now_ms();
    c->state = CALL_ACTIVE;
    c->callee.user_id = g_strdup(a->user_id);
    c->callee.device_id = g_strdup(a->device_id);
    c->callee.connected = true;
    c->answer = g_strdup(sdp);
    c->answer_at = now;
    json_object_set_new(c->record, "answered_by",
                        json_pack("{s:s, s:s}", "user", a->user_id, "device", a->device_id));
    json_object_set_new(c->record, "answer_at", json_integer(now));
    if (save(c) != STORE_OK) {
        c->state = CALL_RINGING;
        party_clear(&c->callee);
        g_clear_pointer(&c->answer, g_free);
        c->answer_at = 0;
        json_object_del(c->record, "answered_by");
        json_object_del(c->record, "answer_at");
        reply_err(r, ERR_UNAVAILABLE, "cannot record the answer now");
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
    reply_ok(r, json_pack("{s:s}", "call_id", c->id));

    if (c->caller.connected) {
        json_t *ev = event("call.accepted", c);
        json_object_set_new(ev, "sdp", json_string(sdp));
        json_object_set_new(ev, "answered_by",
                            json_pack("{s:s, s:s}", "user", a->user_id, "device", a->device_id));
        send_event(c->caller.user_id, c->caller.device_id, ev);
    }
    /* Everyone else who was ringing hears it was answered; only the
     * answering user stays linked to the call. */
    struct ringer *winner = ringer_of(c, a->user_id, a->device_id);
    GQueue from_callee = G_QUEUE_INIT;
    if (winner) {
        from_callee = winner->early;
        g_queue_init(&winner->early);
    }
    json_t *elsewhere = event("call.answered_elsewhere", c);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, c->ringers);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct ringer *g = v;
        if (g != winner)
            send_event(g->user_id, g->device_id, json_deep_copy(elsewhere));
    }
    json_decref(elsewhere);
    g_hash_table_remove_all(c->ringers);
    g_hash_table_iter_init(&it, c->targets);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (strcmp(k, a->user_id) != 0)
            unlink_user(c, k);
    }
    g_hash_table_remove_all(c->targets);
    /* The held candidates, in the order they came. */
    json_t *cand;
    while ((cand = g_queue_pop_head(&c->early_caller))) {
        json_t *ev = event("call.candidate", c);
        json_object_set_new(ev, "candidate", cand);
        send_event(a->user_id, a->device_id, ev);
    }
    while ((cand = g_queue_pop_head(&from_callee))) {
        json_t *ev = event("call.candidate", c);
        json_object_set_new(ev, "candidate", cand);
        if (c->caller.connected)
            send_event(c->caller.user_id, c->caller.device_id, ev);
        else
            json_decref(ev);
    }
}

/* A callee user declines (or hangs up before answering): its devices stop
 * ringing; the call ends declined once no callee is left. */
static void decline_user(struct call *c, const struct call_actor *a, const char *reason)
{
    json_t *ev = event("call.ended", c);
    json_object_set_new(ev, "reason", json_string("declined"));
    unring_user(c, a->user_id, ev, NULL);
    json_decref(ev);
    g_hash_table_remove(c->targets, a->user_id);
    unlink_user(c, a->user_id);
    json_t *declines = json_object_get(c->record, "declined_by");
    if (!declines) {
        declines = json_array();
        json_object_set_new(c->record, "declined_by", declines);
    }
    json_array_append_new(declines, json_pack("{s:s, s:s?}", "user", a->user_id, "reason", reason));
    log_info("call", "call=%s declined by user=%s", c->id, a->user_id);
    if (!g_hash_table_size(c->targets))
        call_end(c, "declined", a->user_id);
    else
        check_unreachable(c);
}

void call_decline(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = find_call(msg, r);
    if (!c)
        return;
    json_t *reason = json_object_get(msg, "reason");
    if (reason && (!json_is_string(reason) || json_string_length(reason) > REASON_LEN_MAX)) {
        reply_err(r, ERR_BAD_REQUEST, "reason must be a string of at most 200 bytes");
        return;
    }
    if (c->state != CALL_RINGING || !g_hash_table_contains(c->targets, a->user_id)) {
        reply_err(r, ERR_CONFLICT, "that call is not ringing for you");
        return;
    }
    reply_ok(r, NULL);
    decline_user(c, a, json_string_value(reason));
}

void call_cancel(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = find_call(msg, r);
    if (!c)
        return;
    if (strcmp(c->caller.user_id, a->user_id) != 0) {
        reply_err(r, ERR_FORBIDDEN, "only the caller cancels a call");
        return;
    }
    if (c->state != CALL_RINGING) {
        reply_err(r, ERR_CONFLICT, "the call was answered: use call.hangup");
        return;
    }
    reply_ok(r, NULL);
    call_end(c, "cancelled", a->user_id);
}

void call_hangup(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = find_call(msg, r);
    if (!c)
        return;
    bool caller = strcmp(c->caller.user_id, a->user_id) == 0;
    bool callee = c->callee.user_id && strcmp(c->callee.user_id, a->user_id) == 0;
    if (c->state == CALL_RINGING && g_hash_table_contains(c->targets, a->user_id)) {
        reply_ok(r, NULL);
        decline_user(c, a, "hangup");
        return;
    }
    if (!caller && !callee) {
        reply_err(r, ERR_FORBIDDEN, "you are not in that call");
        return;
    }
    reply_ok(r, NULL);
    call_end(c, c->state == CALL_RINGING ? "cancelled" : "hangup", a->user_id);
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
    struct call *c = find_call(msg, r);
    if (!c)
        return;
    json_t *cand = json_object_get(msg, "candidate");
    if (!cand || !candidate_ok(cand)) {
        reply_err(r, ERR_BAD_REQUEST, "candidate must be an RTCIceCandidateInit object or null");
        return;
    }
    struct ringer *g = NULL;
    bool from_caller = is_caller(c, a), from_callee = is_callee(c, a);
    if (!from_caller && !from_callee && c->state == CALL_RINGING)
        g = ringer_of(c, a->user_id, a->device_id);
    if (!from_caller && !from_callee && !g) {
        reply_err(r, ERR_FORBIDDEN, "this device is not in that call");
        return;
    }
    if (++c->candidates > lim.max_candidates) {
        reply_err(r, ERR_TOO_LARGE, "too many candidates in this call (call_max_candidates)");
        return;
    }
    reply_ok(r, NULL);
    if (g) {
        g_queue_push_tail(&g->early, candidate_clean(cand));
        return;
    }
    if (from_caller && c->state == CALL_RINGING) {
        g_queue_push_tail(&c->early_caller, candidate_clean(cand));
        return;
    }
    struct party *to = from_caller ? &c->callee : &c->caller;
    if (!to->connected)
        return; /* it will restart ICE when it resumes */
    json_t *ev = event("call.candidate", c);
    json_object_set_new(ev, "candidate", candidate_clean(cand));
    send_event(to->user_id, to->device_id, ev);
}

void call_renegotiate(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = find_call(msg, r);
    if (!c)
        return;
    bool from_caller = is_caller(c, a), from_callee = is_callee(c, a);
    if (!from_caller && !from_callee) {
        reply_err(r, c->state == CALL_ACTIVE ? ERR_FORBIDDEN : ERR_CONFLICT,
                  c->state == CALL_ACTIVE ? "this device is not in that call"
                                          : "the call is not answered yet");
        return;
    }
    const char *type = jx_str_bounded(msg, "sdp_type", 16);
    if (!type || (strcmp(type, "offer") != 0 && strcmp(type, "answer") != 0)) {
        reply_err(r, ERR_BAD_REQUEST, "sdp_type must be \"offer\" or \"answer\"");
        return;
    }
    const char *sdp = sdp_of(msg, r);
    if (!sdp)
        return;
    struct party *to = from_caller ? &c->callee : &c->caller;
    if (!to->connected) {
        reply_err(r, ERR_UNAVAILABLE,
                  "the other party is reconnecting; try again after it resumes");
        return;
    }
    reply_ok(r, NULL);
    json_t *ev = event("call.renegotiate", c);
    json_object_set_new(ev, "sdp", json_string(sdp));
    json_object_set_new(ev, "sdp_type", json_string(type));
    send_event(to->user_id, to->device_id, ev);
}

/* ---------- drops and resumes ---------- */

void call_resume(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct call *c = find_call(msg, r);
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
        reply_ok(r, json_pack("{s:s, s:s, s:s}", "call_id", c->id, "state", "ringing", "role",
                              "callee"));
        ring_device(c, a->user_id, a->device_id);
        check_unreachable(c);
        return;
    } else {
        reply_err(r, ERR_FORBIDDEN, "you are not in that call");
        return;
    }
    if (p->grace_timer) {
        g_source_remove(p->grace_timer);
        p->grace_timer = 0;
    }
    bool was_away = !p->connected;
    g_free(p->device_id);
    p->device_id = g_strdup(a->device_id);
    p->connected = true;
    json_t *fields = json_pack("{s:s, s:s, s:s}", "call_id", c->id, "state", state_names[c->state],
                               "role", role);
    if (remote_sdp)
        json_object_set_new(fields, "sdp", json_string(remote_sdp));
    log_info("call", "call=%s resumed by user=%s device=%s", c->id, a->user_id, a->device_id);
    reply_ok(r, fields);
    if (was_away && c->state == CALL_ACTIVE && other->connected)
        send_event(other->user_id, other->device_id, event("call.peer_reconnected", c));
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
        struct call *c = g_hash_table_lookup(calls, g_ptr_array_index(ids, i));
        if (!c)
            continue;
        int which = 0;
        struct party *p = party_on(c, user_id, device_id, &which);
        if (p && p->connected) {
            p->connected = false;
            if (!p->grace_timer)
                p->grace_timer = timer_start(c, lim.grace_ms, which, on_grace_over);
            log_info("call", "call=%s user=%s device=%s dropped; waiting %d ms for call.resume",
                     c->id, user_id, device_id, lim.grace_ms);
            struct party *other = which ? &c->caller : &c->callee;
            if (c->state == CALL_ACTIVE && other->connected)
                send_event(other->user_id, other->device_id, event("call.peer_disconnected", c));
        }
        if (c->state == CALL_RINGING) {
            char *k = ringer_key(user_id, device_id);
            if (g_hash_table_remove(c->ringers, k))
                check_unreachable(c);
            g_free(k);
        }
    }
    g_ptr_array_free(ids, TRUE);
}

void call_device_online(const char *user_id, const char *device_id)
{
    GPtrArray *ids = call_ids_of(user_id);
    for (guint i = 0; i < ids->len; i++) {
        struct call *c = g_hash_table_lookup(calls, g_ptr_array_index(ids, i));
        if (c && c->state == CALL_RINGING && g_hash_table_contains(c->targets, user_id)) {
            ring_device(c, user_id, device_id);
            check_unreachable(c);
        }
    }
    g_ptr_array_free(ids, TRUE);
}

void call_ice_servers(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    (void)msg;
    reply_ok(r, json_pack("{s:o}", "ice_servers",
                          ice_servers_json(&lim.ice, a->user_id, clock_now_ms())));
}

/* ---------- module life ---------- */

void call_init(struct store *st, const struct call_limits *limits, const struct call_hooks *h)
{
    store = st;
    lim = *limits;
    hooks = *h;
    calls = g_hash_table_new(g_str_hash, g_str_equal);
    by_user = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify)g_hash_table_destroy);
    buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    int n = 0;
    if (calls_recover(st, clock_now_ms(), &n) != STORE_OK)
        log_error("call", "cannot close the calls left open by the previous run");
    else if (n)
        log_info("call", "%d call(s) left open by the previous run recorded as failed", n);
}

void call_shutdown(void)
{
    if (!calls)
        return;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, calls);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct call *c = v;
        c->state = CALL_ENDED;
        json_object_set_new(c->record, "end_at", json_integer(clock_now_ms()));
        json_object_set_new(c->record, "end_reason", json_string("failed"));
        save(c);
        call_free(c);
    }
    g_clear_pointer(&calls, g_hash_table_destroy);
    g_clear_pointer(&by_user, g_hash_table_destroy);
    g_clear_pointer(&buckets, g_hash_table_destroy);
}

unsigned call_count(void)
{
    return calls ? g_hash_table_size(calls) : 0;
}

void call_housekeeping(void)
{
    /* A full bucket is the same as no bucket. */
    int64_t now = clock_mono_ms();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, buckets);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct bucket *b = v;
        if (b->tokens + (double)(now - b->at_ms) * lim.invites_per_min / 60000.0 >=
            lim.invites_per_min)
            g_hash_table_iter_remove(&it);
    }
}

void call_get_stats(struct call_stats *out)
{
    out->reasons = end_reasons;
    out->ended = ended_by_reason;
    out->n_reasons = G_N_ELEMENTS(end_reasons);
    out->setup = &setup_latency;
}
