/* Video patrols (see patrol.h). A patrol is one document in the store:
 * {id, owner, division, date, status: open|finished, scope, items: [
 * {enterprise, name, division, result?, findings?, noted_at?}], created_at,
 * finished_at?, summary?}. Its calls are the call records carrying its id;
 * the report joins the two when asked, so it is never out of date. */
#include "signaling/patrol.h"

#include "common/bizdate.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/audit.h"
#include "records/calls.h"
#include "records/jurisdiction.h"
#include "records/org.h"

#include <glib.h>
#include <string.h>

#define FINDINGS_MAX 4000
#define SUMMARY_MAX 4000

static struct store *store;
static int min_call_s;
static int max_items;

/* Patrols read ahead for the invites that name them (patrol_read_ahead),
 * and as this node last wrote them: an invite's check uses one this
 * recent rather than read it on the loop. */
#define AHEAD_FRESH_MS 2000
#define AHEAD_MAX 1000
struct ahead {
    json_t *doc;
    int64_t at_ms; /* monotonic */
    uint64_t gen;  /* when it was read (sent) or written: a later one wins */
};
static GHashTable *ahead; /* patrol id -> struct ahead* */
static uint64_t ahead_gen, cleared_gen;

static void ahead_free(gpointer p)
{
    struct ahead *x = p;
    json_decref(x->doc);
    g_free(x);
}

/* Keeps doc as patrol id's (gen: when it was read or written), unless
 * what is kept is newer (a write made after the read was sent). */
static void ahead_keep(const char *id, json_t *doc, uint64_t gen)
{
    if (!ahead || !id)
        return;
    struct ahead *old = g_hash_table_lookup(ahead, id);
    if ((old && old->gen > gen) || gen < cleared_gen)
        return; /* a write since (perhaps forgotten in a clearing) is newer */
    if (g_hash_table_size(ahead) >= AHEAD_MAX) {
        g_hash_table_remove_all(ahead);
        cleared_gen = ahead_gen + 1; /* what was read before may be stale now */
    }
    struct ahead *x = g_new(struct ahead, 1);
    *x = (struct ahead){json_deep_copy(doc), g_get_monotonic_time() / 1000, gen};
    g_hash_table_replace(ahead, g_strdup(id), x);
}

/* Patrol id as read ahead (found or not: doc NULL) or written here
 * within AHEAD_FRESH_MS, else read now. */
static int patrol_get(const char *id, json_t **doc)
{
    struct ahead *x = ahead ? g_hash_table_lookup(ahead, id) : NULL;
    if (x && g_get_monotonic_time() / 1000 - x->at_ms < AHEAD_FRESH_MS) {
        *doc = json_deep_copy(x->doc); /* the caller may change it */
        return x->doc ? STORE_OK : STORE_ENOTFOUND;
    }
    return patrols_get(store, id, doc);
}

/* Stores a patrol, remembering it as written. */
static int put(const char *id, json_t *doc)
{
    int rc = patrols_put(store, id, doc);
    if (rc == STORE_OK)
        ahead_keep(id, doc, ++ahead_gen);
    else if (ahead)
        g_hash_table_remove(ahead, id);
    return rc;
}

void patrol_init(struct store *st, int min_call, int items)
{
    store = st;
    min_call_s = min_call;
    max_items = items;
    if (!ahead)
        ahead = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ahead_free);
}

void patrol_shutdown(void)
{
    g_clear_pointer(&ahead, g_hash_table_destroy);
    store = NULL;
}

struct read_ahead {
    char *id;
    uint64_t gen;
    void (*done)(void *ud);
    void *ud;
};

static void on_ahead(int rc, const struct store_docs *d, void *ud)
{
    struct read_ahead *x = ud;
    /* none: kept as such, not read again (while the table is less than
     * half full: ids a client makes up must not crowd out real ones) */
    if (rc == STORE_OK && (d->n == 1 || g_hash_table_size(ahead) < AHEAD_MAX / 2))
        ahead_keep(x->id, d->n == 1 ? d->docs[0] : NULL, x->gen);
    x->done(x->ud);
    g_free(x->id);
    g_free(x);
}

bool patrol_read_ahead(const char *id, void (*done)(void *ud), void *ud)
{
    if (!ahead || !store || !id || !store_reads_later(store))
        return false;
    struct read_ahead *x = g_new(struct read_ahead, 1);
    *x = (struct read_ahead){g_strdup(id), ++ahead_gen, done, ud};
    const char *ids[] = {id};
    if (store_docs_get_later(store, "patrols", ids, 1, on_ahead, x) == STORE_OK)
        return true;
    g_free(x->id);
    g_free(x);
    return false;
}

static void reply_ok(const struct call_reply *r, json_t *fields)
{
    r->fn(r->ctx, ERR_NONE, NULL, fields);
}

static void reply_err(const struct call_reply *r, enum err_code code, const char *message)
{
    r->fn(r->ctx, code, message, NULL);
}

/* Appends an item for enterprise doc (id given) if it is new. */
static void add_item(json_t *items, GHashTable *seen, const char *id, json_t *doc)
{
    if (g_hash_table_contains(seen, id))
        return;
    g_hash_table_add(seen, g_strdup(id));
    json_array_append_new(items,
                          json_pack("{s:s, s:s, s:s, s:b}", "enterprise", id, "name",
                                    jx_str(doc, "name") ? jx_str(doc, "name") : "", "division",
                                    jx_str(doc, "division"), "key", jx_bool(doc, "key", false)));
}

struct key_scan {
    json_t *items;
    GHashTable *seen;
    int count;
};

static bool add_key(const char *id, json_t *doc, void *ud)
{
    struct key_scan *k = ud;
    if (jx_bool(doc, "key", false)) {
        add_item(k->items, k->seen, id, doc);
        k->count++;
    }
    return true;
}

void patrol_start(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    if (strcmp(a->role, "gov") != 0) {
        reply_err(r, ERR_FORBIDDEN, "only regulators (gov) patrol");
        return;
    }
    json_t *list = json_object_get(msg, "enterprises");
    const char *scope = jx_str_bounded(msg, "scope", 16);
    if (!list == !scope || (scope && strcmp(scope, "key") != 0) ||
        (list && (!json_is_array(list) || !json_array_size(list)))) {
        reply_err(r, ERR_BAD_REQUEST,
                  "give either enterprises (a non-empty array of ids) or scope \"key\"");
        return;
    }
    if (list && json_array_size(list) > (size_t)max_items) {
        reply_err(r, ERR_TOO_LARGE, "more enterprises than patrol_max_items");
        return;
    }
    json_t *items = json_array();
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    struct principal p = {a->role, a->org};
    bool lacked = false;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        json_t *doc = NULL;
        if (!json_is_string(v) || json_string_length(v) > ORG_ID_MAX) {
            reply_err(r, ERR_BAD_REQUEST, "enterprises must be an array of ids");
            goto out;
        }
        int rc = org_enterprise_get(store, json_string_value(v), &doc);
        if (rc == STORE_EAGAIN) { /* a replayed run lacked it: the others are sent too */
            lacked = true;
            continue;
        }
        if (rc != STORE_OK) {
            reply_err(r, rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE,
                      rc == STORE_ENOTFOUND ? "no such enterprise" : "store unavailable");
            goto out;
        }
        bool ok = juris_reaches(&p, ORG_ENTERPRISE, json_string_value(v), jx_str(doc, "division"));
        if (ok)
            add_item(items, seen, json_string_value(v), doc);
        json_decref(doc);
        if (!ok) {
            reply_err(r, ERR_FORBIDDEN, "an enterprise is outside your jurisdiction");
            goto out;
        }
    }
    if (lacked) { /* this run is thrown away; the next has every enterprise */
        reply_err(r, ERR_UNAVAILABLE, "store unavailable");
        goto out;
    }
    if (scope) {
        char div[8];
        if (!division_normalize(a->org, div, sizeof(div))) {
            reply_err(r, ERR_FORBIDDEN, "your account has no valid division");
            goto out;
        }
        struct key_scan k = {items, seen, 0};
        if (store_index_find(store, "enterprises", "division", div, true, add_key, &k) !=
            STORE_OK) {
            reply_err(r, ERR_UNAVAILABLE, "store unavailable");
            goto out;
        }
        if (json_array_size(items) > (size_t)max_items) {
            reply_err(r, ERR_TOO_LARGE, "more key enterprises than patrol_max_items");
            goto out;
        }
    }
    int64_t now = clock_now_ms();
    char date[BIZDATE_LEN];
    bizdate_of(now, date);
    char *id = id_new_sorted("p");
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:I}", "id", id, "owner",
                            a->user_id, "division", a->org, "date", date, "status", "open", "scope",
                            scope ? "key" : "list", "items", items, "created_at", (json_int_t)now);
    int rc = put(id, doc);
    if (rc != STORE_OK) {
        reply_err(r, ERR_UNAVAILABLE, "cannot record the patrol now");
    } else {
        audit_log(store, a->user_id, "patrol.start", id, "ok", NULL);
        log_info("patrol", "patrol=%s started by user=%s with %zu enterprise(s)", id, a->user_id,
                 json_array_size(items));
        reply_ok(r, json_pack("{s:s, s:O, s:s}", "patrol_id", id, "items", items, "date", date));
    }
    json_decref(doc);
    g_free(id);
out:
    json_decref(items);
    g_hash_table_destroy(seen);
}

/* Loads patrol id for its owner; replies and returns NULL on failure. */
static json_t *own_patrol(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    const char *id = jx_str_bounded(msg, "patrol_id", 64);
    if (!id) {
        reply_err(r, ERR_BAD_REQUEST, "patrol_id must be a string");
        return NULL;
    }
    json_t *doc = NULL;
    int rc = patrol_get(id, &doc); /* read ahead (call_api.c), or written here just now */
    if (rc != STORE_OK) {
        reply_err(r, rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE,
                  rc == STORE_ENOTFOUND ? "no such patrol" : "store unavailable");
        return NULL;
    }
    if (g_strcmp0(jx_str(doc, "owner"), a->user_id) != 0) {
        json_decref(doc);
        reply_err(r, ERR_FORBIDDEN, "that patrol is not yours");
        return NULL;
    }
    if (g_strcmp0(jx_str(doc, "status"), "open") != 0) {
        json_decref(doc);
        reply_err(r, ERR_CONFLICT, "that patrol is finished");
        return NULL;
    }
    return doc;
}

void patrol_note(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    const char *ent = jx_str_bounded(msg, "enterprise", ORG_ID_MAX);
    const char *result = jx_str_bounded(msg, "result", 16);
    json_t *findings = json_object_get(msg, "findings");
    if (!ent || !result || (strcmp(result, "normal") != 0 && strcmp(result, "issue") != 0)) {
        reply_err(r, ERR_BAD_REQUEST,
                  "enterprise (an id) and result (\"normal\" or \"issue\") are required");
        return;
    }
    if (findings && !json_is_null(findings) &&
        (!json_is_string(findings) || json_string_length(findings) > FINDINGS_MAX)) {
        reply_err(r, ERR_BAD_REQUEST, "findings must be a string of at most 4000 bytes");
        return;
    }
    json_t *doc = own_patrol(a, msg, r);
    if (!doc)
        return;
    json_t *item = jx_find(json_object_get(doc, "items"), "enterprise", ent);
    if (!item) {
        json_decref(doc);
        reply_err(r, ERR_NOT_FOUND, "that enterprise is not in the patrol");
        return;
    }
    json_object_set_new(item, "result", json_string(result));
    json_object_set_new(item, "findings",
                        json_string(json_is_string(findings) ? json_string_value(findings) : ""));
    json_object_set_new(item, "noted_at", json_integer(clock_now_ms()));
    if (put(jx_str(doc, "id"), doc) != STORE_OK) {
        reply_err(r, ERR_UNAVAILABLE, "cannot record the note now");
    } else {
        log_info("patrol", "patrol=%s enterprise=%s noted %s", jx_str(doc, "id"), ent, result);
        reply_ok(r, json_pack("{s:O}", "item", item));
    }
    json_decref(doc);
}

/* ---------- the report ---------- */

static bool collect_calls(const char *id, json_t *doc, void *ud)
{
    (void)id;
    json_array_append(ud, doc);
    return true;
}

/* Seconds call doc was answered for, as of now (0 if never answered). */
static int64_t answered_s(json_t *call, int64_t now)
{
    json_t *ans = json_object_get(call, "answer_at");
    if (!json_is_integer(ans))
        return 0;
    json_t *end = json_object_get(call, "end_at");
    int64_t until = json_is_integer(end) ? json_integer_value(end) : now;
    return (until - json_integer_value(ans)) / 1000;
}

/* The report of patrol doc: its items, each with its calls and whether it
 * was reached (an answered call of at least min_call_s), and totals. */
static json_t *build_report(json_t *doc)
{
    json_t *calls = json_array();
    int rc = calls_find(store, "patrol_id", jx_str(doc, "id"), false, collect_calls, calls);
    if (rc != STORE_OK) {
        json_decref(calls);
        return NULL;
    }
    int64_t now = clock_now_ms();
    json_t *report = json_deep_copy(doc);
    json_t *items = json_object_get(report, "items");
    int reached = 0, normal = 0, issue = 0;
    size_t i, j;
    json_t *item, *call;
    json_array_foreach(items, i, item)
    {
        json_t *mine = json_array();
        bool ok = false;
        json_array_foreach(calls, j, call)
        {
            if (g_strcmp0(jx_str(call, "enterprise"), jx_str(item, "enterprise")) != 0)
                continue;
            int64_t secs = answered_s(call, now);
            if (json_is_integer(json_object_get(call, "answer_at")) && secs >= min_call_s)
                ok = true;
            json_t *summary =
                json_pack("{s:s, s:s, s:I, s:I}", "call_id", jx_str(call, "id"), "state",
                          jx_str(call, "state"), "invite_at",
                          (json_int_t)jx_int(call, "invite_at", 0), "answered_s", (json_int_t)secs);
            if (jx_str(call, "end_reason"))
                json_object_set_new(summary, "end_reason", json_string(jx_str(call, "end_reason")));
            json_array_append_new(mine, summary);
        }
        json_object_set_new(item, "calls", mine);
        json_object_set_new(item, "reached", json_boolean(ok));
        reached += ok;
        normal += g_strcmp0(jx_str(item, "result"), "normal") == 0;
        issue += g_strcmp0(jx_str(item, "result"), "issue") == 0;
    }
    json_object_set_new(report, "totals",
                        json_pack("{s:I, s:i, s:i, s:i, s:I, s:i}", "enterprises",
                                  (json_int_t)json_array_size(items), "reached", reached, "normal",
                                  normal, "issue", issue, "calls",
                                  (json_int_t)json_array_size(calls), "min_call_s", min_call_s));
    json_decref(calls);
    return report;
}

void patrol_finish(const struct call_actor *a, json_t *msg, const struct call_reply *r)
{
    json_t *summary = json_object_get(msg, "summary");
    if (summary && !json_is_null(summary) &&
        (!json_is_string(summary) || json_string_length(summary) > SUMMARY_MAX)) {
        reply_err(r, ERR_BAD_REQUEST, "summary must be a string of at most 4000 bytes");
        return;
    }
    json_t *doc = own_patrol(a, msg, r);
    if (!doc)
        return;
    json_object_set_new(doc, "status", json_string("finished"));
    json_object_set_new(doc, "finished_at", json_integer(clock_now_ms()));
    if (json_is_string(summary))
        json_object_set(doc, "summary", summary);
    /* the report first: its reads come before the write (a replayed
     * request's reads after a write would wait, store_replay.h) */
    json_t *report = build_report(doc);
    if (!report || put(jx_str(doc, "id"), doc) != STORE_OK) {
        json_decref(report);
        reply_err(r, ERR_UNAVAILABLE, "cannot finish the patrol now");
    } else {
        audit_log(store, a->user_id, "patrol.finish", jx_str(doc, "id"), "ok", NULL);
        log_info("patrol", "patrol=%s finished by user=%s", jx_str(doc, "id"), a->user_id);
        reply_ok(r, json_pack("{s:o}", "report", report));
    }
    json_decref(doc);
}

enum err_code patrol_check_call(const char *patrol_id, const char *user_id, const char *enterprise,
                                const char **why)
{
    json_t *doc = NULL;
    int rc = patrol_get(patrol_id, &doc); /* read ahead, or written here, just now */
    enum err_code e = ERR_NONE;
    if (rc != STORE_OK) {
        *why = rc == STORE_ENOTFOUND ? "no such patrol" : "store unavailable";
        return rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
    }
    if (g_strcmp0(jx_str(doc, "owner"), user_id) != 0) {
        e = ERR_FORBIDDEN;
        *why = "that patrol is not yours";
    } else if (g_strcmp0(jx_str(doc, "status"), "open") != 0) {
        e = ERR_CONFLICT;
        *why = "that patrol is finished";
    } else if (!enterprise || !jx_find(json_object_get(doc, "items"), "enterprise", enterprise)) {
        e = ERR_BAD_REQUEST;
        *why = "a patrol call must go to an enterprise in the patrol";
    }
    json_decref(doc);
    return e;
}

enum err_code patrol_report(const char *id, const char *role, const char *org, const char *user_id,
                            json_t **out, const char **why)
{
    json_t *doc = NULL;
    int rc = patrols_get(store, id, &doc);
    if (rc != STORE_OK) {
        *why = rc == STORE_ENOTFOUND ? "no such patrol" : "store unavailable";
        return rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
    }
    struct principal p = {role, org};
    const char *div = jx_str(doc, "division");
    if (g_strcmp0(jx_str(doc, "owner"), user_id) != 0 &&
        !juris_reaches(&p, ORG_DIVISION, div, div)) {
        json_decref(doc);
        *why = "that patrol is outside your jurisdiction";
        return ERR_FORBIDDEN;
    }
    *out = build_report(doc);
    json_decref(doc);
    if (!*out) {
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
    return ERR_NONE;
}

struct coverage_scan {
    json_t *list;
};

static bool add_key_ent(const char *id, json_t *doc, void *ud)
{
    struct coverage_scan *s = ud;
    if (jx_bool(doc, "key", false))
        json_array_append_new(s->list, json_pack("{s:s, s:s, s:s}", "enterprise", id, "name",
                                                 jx_str(doc, "name") ? jx_str(doc, "name") : "",
                                                 "division", jx_str(doc, "division")));
    return true;
}

enum err_code patrol_coverage(const char *date, const char *division, const char *role,
                              const char *org, json_t **out, const char **why)
{
    int64_t start, end;
    char div[8];
    if (!bizdate_span(date, &start, &end)) {
        *why = "date must be YYYY-MM-DD";
        return ERR_BAD_REQUEST;
    }
    if (!division_normalize(division, div, sizeof(div))) {
        *why = "division must be a division code";
        return ERR_BAD_REQUEST;
    }
    struct principal p = {role, org};
    if (!juris_reaches(&p, ORG_DIVISION, div, div)) {
        *why = "that division is outside your jurisdiction";
        return ERR_FORBIDDEN;
    }
    struct coverage_scan s = {json_array()};
    json_t *calls = json_array();
    if (store_index_find(store, "enterprises", "division", div, true, add_key_ent, &s) !=
            STORE_OK ||
        calls_find(store, "date", date, false, collect_calls, calls) != STORE_OK) {
        json_decref(s.list);
        json_decref(calls);
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
    /* enterprise -> the first qualifying patrol call of the day */
    GHashTable *done = g_hash_table_new(g_str_hash, g_str_equal);
    int64_t now = clock_now_ms();
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call)
    {
        const char *ent = jx_str(call, "enterprise");
        if (!ent || !jx_str(call, "patrol_id") ||
            !json_is_integer(json_object_get(call, "answer_at")) ||
            answered_s(call, now) < min_call_s || g_hash_table_contains(done, ent))
            continue;
        g_hash_table_insert(done, (gpointer)ent, call);
    }
    int patrolled = 0;
    json_t *ent;
    json_array_foreach(s.list, i, ent)
    {
        json_t *call = g_hash_table_lookup(done, jx_str(ent, "enterprise"));
        json_object_set_new(ent, "patrolled", json_boolean(call != NULL));
        if (call) {
            patrolled++;
            json_object_set_new(ent, "call_id", json_string(jx_str(call, "id")));
            json_object_set_new(ent, "patrol_id", json_string(jx_str(call, "patrol_id")));
            json_object_set_new(ent, "answered_s", json_integer(answered_s(call, now)));
        }
    }
    size_t total = json_array_size(s.list);
    *out = json_pack("{s:s, s:s, s:I, s:i, s:f, s:i, s:o}", "date", date, "division", div, "total",
                     (json_int_t)total, "patrolled", patrolled, "rate",
                     total ? (double)patrolled / (double)total : 0.0, "min_call_s", min_call_s,
                     "enterprises", s.list);
    g_hash_table_destroy(done);
    json_decref(calls);
    return ERR_NONE;
}
