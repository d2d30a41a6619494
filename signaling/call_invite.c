/* Starting a call (call.invite): resolving and authorising whom it calls
 * (a user, or the holders of positions at a plant), the rule of who may
 * call whom (gov calls gov anywhere and the plants and carriers it covers;
 * plants and carriers call the regulators that cover them), the per-user
 * call limit and invite rate, glare (two users ringing each other), the
 * optional invite fields, and the call's first record and ring. */
#include "signaling/call_internal.h"

#include "common/bizdate.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/presence.h"
#include "records/account.h"
#include "records/audit.h"
#include "records/jurisdiction.h"
#include "records/org.h"
#include "signaling/patrol.h"

#include <string.h>

#define POSITIONS_MAX 16
#define POSITION_LEN_MAX 64

/* ---------- limits ---------- */

/* Calls user_id has made or answered that are not over, here and (as far
 * as this server knows) on the others. */
static unsigned user_call_count(const char *user_id)
{
    GHashTable *set = g_hash_table_lookup(call_by_user, user_id);
    unsigned n = call_count_elsewhere(user_id);
    if (!set)
        return n;
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

char *call_invite_rate_key(const char *user_id)
{
    return g_strconcat("call.invite:", user_id, NULL);
}

int64_t call_invite_rate_limit(void)
{
    return call_lim.invites_per_min;
}

/* Counts one invite of user_id unless it has made invites_per_min in the
 * last minute (a sliding estimate, kept in the store so that invites
 * through every node count): a store code. */
static int invite_count(const char *user_id)
{
    char *key = call_invite_rate_key(user_id);
    int rc = store_rate_add(call_store, key, CALL_INVITE_RATE_WINDOW_MS, clock_now_ms(), 1,
                            call_lim.invites_per_min, NULL);
    g_free(key);
    return rc;
}

/* Whether the count (a store code) lets the invite go on; else answers. */
static bool rate_allows(const struct call_reply *r, int rc)
{
    if (rc == STORE_OK)
        return true;
    if (rc == STORE_ECONFLICT)
        call_reply_err(r, ERR_RATE_LIMITED, "too many invites: wait a little (invites_per_min)");
    else
        call_reply_err(r, ERR_UNAVAILABLE, "cannot count invites now");
    return false;
}

static void ring_user(struct call *c, const char *user_id)
{
    json_t *devices = presence_devices(user_id);
    size_t i;
    json_t *d;
    json_array_foreach(devices, i, d)
        call_ring_device(c, user_id, jx_str(d, "device_id"), jx_int(d, "since", 0));
    json_decref(devices);
}

/* ---------- who may call whom ---------- */

/* The division of the organisation an account belongs to (g_free), or
 * NULL. */
static char *division_of(const struct account *acct)
{
    return org_division_of(call_store, acct->role, acct->org);
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
    char *a_division = org_division_of(call_store, a->role, a->org);
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
        int rc = account_get(call_store, user, &acct);
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
        int rc = STORE_OK;
        if (org_division_kept("corp", ent)) { /* read ahead: from memory */
            t->division = org_division_of(call_store, "corp", ent);
        } else {
            json_t *doc = NULL;
            rc = org_enterprise_get(call_store, ent, &doc);
            if (rc == STORE_OK)
                t->division = g_strdup(jx_str(doc, "division") ? jx_str(doc, "division") : "");
            json_decref(doc);
        }
        if (rc != STORE_OK || !t->division) {
            t->err = rc == STORE_OK || rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
            t->why = t->err == ERR_NOT_FOUND ? "no such enterprise" : "store unavailable";
            goto out;
        }
        struct principal p = {a->role, a->org};
        bool reach =
            strcmp(a->role, "gov") == 0 && juris_reaches(&p, ORG_ENTERPRISE, ent, t->division);
        if (!reach) {
            t->err = ERR_FORBIDDEN;
            t->why = "that enterprise is outside your jurisdiction";
            goto out;
        }
        t->enterprise = g_strdup(ent);
        struct pick pk = {t->accounts, json_array_size(positions) ? positions : NULL};
        if (account_each_in_org(call_store, ent, pick_position, &pk) != STORE_OK) {
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
    GHashTable *set = g_hash_table_lookup(call_by_user, a->user_id);
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

/* Glare, the new invite losing: refused with the call that stays. */
static void glare_refuse(const struct call_reply *r, const char *user_id, const char *stays,
                         const char *where)
{
    r->fn(r->ctx, ERR_CONFLICT, "glare: that user is calling you; answer their call",
          json_pack("{s:s}", "call_id", stays));
    log_info("call", "glare: user=%s invite yields to call=%s%s", user_id, stays, where);
}

/* Glare, c ringing here losing to winner: it ends busy. */
static void glare_end(struct call *c, const char *winner)
{
    log_info("call", "glare: call=%s yields to %s", c->id, winner);
    json_object_set_new(c->record, "glare", json_true());
    call_end(c, "busy", NULL);
}

void call_glare_elsewhere(const char *call_id, const char *caller, const char *const *targets,
                          size_t n)
{
    GHashTable *set = call_by_user ? g_hash_table_lookup(call_by_user, caller) : NULL;
    if (!set)
        return;
    GPtrArray *losers = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct call *c = v;
        if (c->state != CALL_RINGING || !g_hash_table_contains(c->targets, caller) ||
            strcmp(caller, c->caller.user_id) >= 0)
            continue;
        for (size_t i = 0; i < n; i++)
            if (strcmp(targets[i], c->caller.user_id) == 0) {
                g_ptr_array_add(losers, c);
                break;
            }
    }
    char *winner = g_strdup_printf("call=%s elsewhere", call_id);
    for (guint i = 0; i < losers->len; i++)
        glare_end(g_ptr_array_index(losers, i), winner);
    g_free(winner);
    g_ptr_array_free(losers, TRUE);
}

void call_incoming_build(struct call *c)
{
    json_t *rec = c->record;
    c->incoming = json_pack("{s:s, s:s, s:O, s:O, s:s, s:O, s:O}", "type", "call.incoming",
                            "call_id", c->id, "from", json_object_get(rec, "from"), "to",
                            json_object_get(rec, "to"), "sdp", c->offer, "media",
                            json_object_get(rec, "media"), "mode", json_object_get(rec, "mode"));
    static const char *const optional[] = {"enterprise", "patrol_id"};
    for (size_t i = 0; i < G_N_ELEMENTS(optional); i++)
        if (json_object_get(rec, optional[i]))
            json_object_set(c->incoming, optional[i], json_object_get(rec, optional[i]));
}

/* Checks the optional invite fields. Returns false (and replies) if bad. */
static bool invite_fields(json_t *msg, const struct call_reply *r, json_t **media,
                          const char **patrol_id)
{
    json_t *m = json_object_get(msg, "media");
    if (m && (!json_is_object(m) ||
              (json_object_get(m, "audio") && !json_is_boolean(json_object_get(m, "audio"))) ||
              (json_object_get(m, "video") && !json_is_boolean(json_object_get(m, "video"))))) {
        call_reply_err(r, ERR_BAD_REQUEST, "media must be {\"audio\":bool, \"video\":bool}");
        return false;
    }
    *media = json_pack("{s:b, s:b}", "audio", jx_bool(m, "audio", true), "video",
                       jx_bool(m, "video", true));
    json_t *p = json_object_get(msg, "patrol_id");
    if (p && !json_is_null(p) && (!json_is_string(p) || json_string_length(p) > CALL_ID_MAX)) {
        json_decref(*media);
        call_reply_err(r, ERR_BAD_REQUEST, "patrol_id must be a string");
        return false;
    }
    *patrol_id = json_is_string(p) ? json_string_value(p) : NULL;
    return true;
}

/* An invite between its checks and its start. */
struct invite {
    const char *sdp;
    int sfu;
    json_t *media;
    const char *patrol_id;
    struct target t;
};

static void invite_clear(struct invite *x)
{
    json_decref(x->media);
    target_clear(&x->t);
}

/* Everything that may refuse an invite before it is counted. True, or
 * false having answered. */
static bool invite_prepare(const struct call_actor *a, json_t *msg, const struct call_reply *r,
                           struct invite *x)
{
    x->sdp = call_sdp_of(msg, r);
    x->sfu = x->sdp ? call_sfu_mode(msg, r) : -1;
    if (!x->sdp || x->sfu < 0 || !invite_fields(msg, r, &x->media, &x->patrol_id))
        return false;
    if (!resolve_target(a, json_object_get(msg, "to"), &x->t)) {
        if (x->t.err == ERR_FORBIDDEN) {
            json_t *to = json_object_get(msg, "to");
            const char *who = jx_str(to, "user") ? jx_str(to, "user") : jx_str(to, "enterprise");
            audit_log(call_store, a->user_id, "call.invite", who, "forbidden", NULL);
            log_info("call", "user=%s invite refused: %s", a->user_id, x->t.why);
        }
        call_reply_err(r, x->t.err, x->t.why);
        return false;
    }
    if (x->patrol_id) {
        const char *why = NULL;
        enum err_code e = patrol_check_call(x->patrol_id, a->user_id, x->t.enterprise, &why);
        if (e != ERR_NONE) {
            call_reply_err(r, e, why);
            return false;
        }
    }
    if (user_call_count(a->user_id) >= (unsigned)call_lim.calls_per_user) {
        call_reply_err(r, ERR_BUSY, "you are in as many calls as calls_per_user allows");
        return false;
    }
    return true;
}

bool call_invite_check(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct invite x = {0};
    bool ok = invite_prepare(a, msg, r, &x);
    invite_clear(&x);
    return ok;
}

static void invite_start(const struct call_actor *a, const struct call_reply *r, struct invite *x);

void call_invite(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    struct invite x = {0};
    if (invite_prepare(a, msg, r, &x) && rate_allows(r, invite_count(a->user_id)))
        invite_start(a, r, &x);
    invite_clear(&x);
}

void call_invite_counted(const struct call_actor *a, json_t *msg, const struct call_reply *r,
                         int rate_rc)
{
    struct invite x = {0};
    if (invite_prepare(a, msg, r, &x) && rate_allows(r, rate_rc))
        invite_start(a, r, &x);
    invite_clear(&x);
}

/* The invite, checked and counted: glare, then the call's first record
 * and ring. */
static void invite_start(const struct call_actor *a, const struct call_reply *r, struct invite *x)
{
    struct target t = x->t; /* borrowed: x keeps it */
    const char *sdp = x->sdp, *patrol_id = x->patrol_id;
    int sfu = x->sfu;
    struct call *other = glare_with(a, &t);
    bool glare_here = other != NULL; /* other may be freed below */
    if (other) {
        /* Both ring each other: the call made by the smaller user id stays,
         * whoever arrived first, so every node decides alike. */
        if (strcmp(other->caller.user_id, a->user_id) < 0) {
            glare_refuse(r, a->user_id, other->id, "");
            return;
        }
        char *winner = g_strdup_printf("a new invite by user=%s", a->user_id);
        glare_end(other, winner);
        g_free(winner);
    }
    /* The same with a call ringing on another server; if it loses, that
     * server ends it when it hears of this one. */
    for (guint i = 0; !glare_here && i < t.accounts->len; i++) {
        const struct account *acct = g_ptr_array_index(t.accounts, i);
        const char *there = call_ringing_elsewhere(acct->id, a->user_id);
        if (there && strcmp(acct->id, a->user_id) < 0) {
            glare_refuse(r, a->user_id, there, " elsewhere");
            return;
        }
    }

    int64_t now = clock_now_ms();
    struct call *c = call_alloc(id_new_sorted("c"), CALL_RINGING, a->user_id, a->device_id, now);
    c->caller.connected = true;
    c->offer = g_strdup(sdp);
    if (sfu) {
        /* The server answers the caller and offers to the callees. */
        const char *why = NULL;
        if (call_sfu_open(c, sdp, &why) != 0) {
            log_info("call", "user=%s sfu invite refused: %s", a->user_id, why);
            call_reply_err(r, ERR_BAD_REQUEST, why);
            call_free(c);
            return;
        }
    }

    unsigned busy = 0;
    json_t *callees = json_array(), *parties = json_array();
    json_array_append_new(parties, json_string(a->user_id));
    for (guint i = 0; i < t.accounts->len; i++) {
        const struct account *acct = g_ptr_array_index(t.accounts, i);
        json_array_append_new(callees, json_string(acct->id));
        json_array_append_new(parties, json_string(acct->id));
        if (call_user_busy(acct->id))
            busy++;
        else
            g_hash_table_add(c->targets, g_strdup(acct->id));
    }

    json_t *from = call_actor_json(a);
    char date[BIZDATE_LEN];
    bizdate_of(now, date);
    c->record = json_pack("{s:s, s:s, s:s, s:o, s:O, s:o, s:o, s:s, s:O, s:I, s:s}", "id", c->id,
                          "caller", a->user_id, "caller_device", a->device_id, "callees", callees,
                          "to", t.to, "parties", parties, "media", x->media, "division", t.division,
                          "from", from, "invite_at", (json_int_t)now, "date", date);
    x->media = NULL;
    json_object_set_new(c->record, "mode", json_string(sfu ? "sfu" : "p2p"));
    if (t.enterprise)
        json_object_set_new(c->record, "enterprise", json_string(t.enterprise));
    if (t.carrier)
        json_object_set_new(c->record, "carrier", json_string(t.carrier));
    if (patrol_id)
        json_object_set_new(c->record, "patrol_id", json_string(patrol_id));
    json_decref(from);
    call_incoming_build(c);

    /* Durable first: the record exists before anyone hears of the call. */
    if (call_save(c) != STORE_OK) {
        call_reply_err(r, ERR_UNAVAILABLE, "cannot record the call now");
        call_free(c);
        return;
    }
    g_hash_table_insert(call_table, c->id, c);
    call_link_user(c, a->user_id);
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, c->targets);
    while (g_hash_table_iter_next(&it, &k, NULL))
        call_link_user(c, k);
    audit_log(call_store, a->user_id, "call.invite", c->id, "ok", NULL);
    call_reply_ok(r, json_pack("{s:s, s:s, s:o}", "call_id", c->id, "mode", sfu ? "sfu" : "p2p",
                               "ice_servers", ice_servers_json(&call_lim.ice, a->user_id, now)));

    const char *outcome = NULL;
    if (!t.accounts->len)
        outcome = "unreachable"; /* nobody holds the positions called */
    else if (!g_hash_table_size(c->targets))
        outcome = "busy";
    log_info("call", "call=%s invite from user=%s to %u user(s)%s%s%s%s", c->id, a->user_id,
             t.accounts->len, patrol_id ? " patrol=" : "", patrol_id ? patrol_id : "",
             busy ? " (some busy)" : "", sfu ? " via the sfu" : "");
    if (!outcome) {
        call_ring_changed(c, true); /* before any device hears of it */
        g_hash_table_iter_init(&it, c->targets);
        while (g_hash_table_iter_next(&it, &k, NULL))
            ring_user(c, k);
        if (!g_hash_table_size(c->ringers))
            outcome = "offline";
    }
    if (outcome) {
        call_end(c, outcome, NULL);
        return;
    }
    c->ring_timer = call_timer_start(c, call_lim.ring_timeout_ms, 0, call_on_ring_timeout);
}
