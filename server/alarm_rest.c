/* REST routes for alarms and planned downtime (docs/protocol.md):
 *   GET  /api/v1/alarms?division=&enterprise=&sensor=&level=&state=&from=&to=&limit=
 *   GET  /api/v1/alarms/stats?division=&month=YYYY-MM   monthly self-evaluation figures
 *   GET  /api/v1/alarms/{id}
 *   POST /api/v1/alarms/{id}/ack | /feedback {"found","done"} | /close {"note"?}
 *   POST /api/v1/downtimes {"enterprise"?, "sensors"?, "reason", "from"?, "until"}
 *   GET  /api/v1/downtimes?enterprise=&division=
 *   POST /api/v1/downtimes/{id}/end
 * Reads are jurisdiction-checked (juris_reaches): corp its own enterprise,
 * gov the divisions it covers, admin everything. */
#include "common/bizdate.h"
#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/alarm_push.h"
#include "records/alarm.h"
#include "records/audit.h"
#include "records/downtime.h"
#include "records/jurisdiction.h"
#include "server/alarm_api.h"
#include "server/rest.h"
#include "server/server.h"

#include <stdlib.h>
#include <string.h>

#define LIST_LIMIT_MAX 500
#define SCAN_MAX 50000 /* stored alarms looked at per request */

/* The enterprise's division, or NULL (g_free). */
static char *enterprise_division(const char *id)
{
    json_t *doc = NULL;
    char *div = NULL;
    if (store_doc_get(server.store, "enterprises", id, &doc) == STORE_OK && jx_str(doc, "division"))
        div = g_strdup(jx_str(doc, "division"));
    json_decref(doc);
    return div;
}

static bool reaches_enterprise(const struct account *acct, const char *ent, const char *division)
{
    struct principal p = {acct->role, acct->org};
    return juris_reaches(&p, ORG_ENTERPRISE, ent, division);
}

/* The scope of a listing: an enterprise, or a division prefix. Answers
 * the error itself and returns false. */
static bool scope_of(struct rest_req *r, const char **ent_out, char div_out[8])
{
    const char *ent = rest_query(r, "enterprise");
    div_out[0] = '\0';
    if (ent && (strlen(ent) > 64 || !*ent)) {
        rest_error(r, ERR_BAD_REQUEST, "enterprise must be an enterprise id");
        return false;
    }
    if (!rest_query_division(r, div_out))
        return false;
    if (strcmp(r->acct->role, "corp") == 0) {
        if ((ent && strcmp(ent, r->acct->org) != 0) || div_out[0]) {
            rest_error(r, ERR_FORBIDDEN, "you see only your own enterprise's alarms");
            return false;
        }
        *ent_out = r->acct->org;
        return true;
    }
    if (strcmp(r->acct->role, "gov") != 0 && strcmp(r->acct->role, "admin") != 0) {
        rest_error(r, ERR_FORBIDDEN, "alarms are for regulators and enterprises");
        return false;
    }
    if (ent) {
        char *div = enterprise_division(ent);
        bool ok = div && reaches_enterprise(r->acct, ent, div);
        g_free(div);
        if (!ok) {
            rest_error(r, ERR_NOT_FOUND, "no such enterprise in your jurisdiction");
            return false;
        }
        *ent_out = ent;
        return true;
    }
    if (!div_out[0] && strcmp(r->acct->role, "gov") == 0 &&
        !division_normalize(r->acct->org, div_out, 8)) {
        rest_error(r, ERR_INTERNAL, "your account has no valid division");
        return false;
    }
    struct principal p = {r->acct->role, r->acct->org};
    if (div_out[0] && !juris_reaches(&p, ORG_DIVISION, div_out, div_out)) {
        rest_error(r, ERR_FORBIDDEN, "that division is outside your jurisdiction");
        return false;
    }
    *ent_out = NULL;
    return true;
}

/* ------------------------------------------------------------ listing */

struct list_scan {
    const char *sensor;
    int level, state; /* -1: any; state ALARM_STATES: open */
    int64_t from, to;
    json_t *out;
    int scanned;
    bool truncated;
};

static bool list_one(const char *id, json_t *doc, void *ud)
{
    struct list_scan *s = ud;
    if (++s->scanned > SCAN_MAX) {
        s->truncated = true;
        return false;
    }
    int64_t at = jx_int(doc, "raised_at", 0);
    int state = alarm_state_parse(jx_str(doc, "state"));
    if ((s->sensor && g_strcmp0(jx_str(doc, "sensor"), s->sensor) != 0) ||
        (s->level >= 0 && alarm_level_parse(jx_str(doc, "level")) != s->level) ||
        (s->state >= 0 && s->state < ALARM_STATES && state != s->state) ||
        (s->state == ALARM_STATES && state == ALARM_CLOSED) || at < s->from || at >= s->to)
        return true;
    /* open alarms: the in-memory record is the newest */
    const struct alarm *a = alarm_open_get(id);
    json_array_append_new(s->out, a ? alarm_to_json(a) : json_incref(doc));
    return true;
}

static void route_list(struct rest_req *r)
{
    const char *ent;
    char div[8];
    int64_t limit, from, to;
    if (!scope_of(r, &ent, div) || !rest_query_int(r, "limit", 1, LIST_LIMIT_MAX, 100, &limit) ||
        !rest_query_range(r, &from, &to))
        return;
    struct list_scan s = {rest_query(r, "sensor"), -1, -1, from, to, json_array(), 0, false};
    const char *lv = rest_query(r, "level"), *st = rest_query(r, "state");
    if (lv && (s.level = alarm_level_parse(lv)) < 0) {
        json_decref(s.out);
        rest_error(r, ERR_BAD_REQUEST, "level must be red, orange, yellow or blue");
        return;
    }
    if (st && (s.state = strcmp(st, "open") == 0 ? ALARM_STATES : alarm_state_parse(st)) < 0) {
        json_decref(s.out);
        rest_error(r, ERR_BAD_REQUEST,
                   "state must be raised, acknowledged, handled, closed or open");
        return;
    }
    int rc = ent ? store_index_find(server.store, "alarms", "enterprise", ent, false, list_one, &s)
                 : store_index_find(server.store, "alarms", "division", div, true, list_one, &s);
    if (rc != STORE_OK) {
        json_decref(s.out);
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    size_t n = json_array_size(s.out);
    bool cut = rest_newest_first(s.out, "raised_at", limit);
    rest_reply(r, 200,
               json_pack("{s:o, s:I, s:b}", "alarms", s.out, "total", (json_int_t)n, "truncated",
                         s.truncated || cut));
}

/* The stored alarm of params[0], if the caller may see it; answers the
 * error itself and returns NULL. */
static json_t *visible_alarm(struct rest_req *r)
{
    json_t *doc = NULL;
    const char *id = r->params[0];
    if (strlen(id) > 64 || alarm_load_json(id, &doc) != STORE_OK) {
        rest_error(r, ERR_NOT_FOUND, "no such alarm");
        return NULL;
    }
    if (!reaches_enterprise(r->acct, jx_str(doc, "enterprise"), jx_str(doc, "division"))) {
        json_decref(doc);
        rest_error(r, ERR_NOT_FOUND, "no such alarm");
        return NULL;
    }
    return doc;
}

static void route_get(struct rest_req *r)
{
    json_t *doc = visible_alarm(r);
    if (doc)
        rest_reply(r, 200, json_pack("{s:o}", "alarm", doc));
}

static void on_rest_acted(enum err_code e, const char *why, json_t *alarm, void *ud)
{
    uint64_t hold = GPOINTER_TO_SIZE(ud);
    if (e != ERR_NONE)
        rest_held_error(hold, e, why);
    else
        rest_held_reply(hold, 200, json_pack("{s:O}", "alarm", alarm));
}

/* An action: what alarm_api_act finds (a closed or unknown alarm, and one
 * outside the caller's jurisdiction, are both "no such alarm" to those who
 * do not see it). */
static void act(struct rest_req *r, const char *verb)
{
    if (strlen(r->params[0]) > 64) {
        rest_error(r, ERR_NOT_FOUND, "no such alarm");
        return;
    }
    alarm_api_act(r->acct, verb, r->params[0], r->body, r->peer, on_rest_acted,
                  GSIZE_TO_POINTER(rest_hold(r)));
}

static void route_ack(struct rest_req *r)
{
    act(r, "ack");
}

static void route_feedback(struct rest_req *r)
{
    if (!r->body) {
        rest_error(r, ERR_BAD_REQUEST, "body must be {\"found\", \"done\"}");
        return;
    }
    act(r, "feedback");
}

static void route_close(struct rest_req *r)
{
    act(r, "close");
}

/* ------------------------------------------------------------ statistics */

struct tally {
    int raised, acked, acked_in_time, handled, handled_in_time;
    int by_level[ALARM_LEVELS];
    GArray *ack_s, *handle_s; /* double seconds */
};

struct stats_scan {
    const char *month;
    struct alarm_config cfg;
    GHashTable *ents, *districts; /* id -> struct tally* */
    struct tally total;
    int scanned;
    bool truncated;
};

static void tally_free(gpointer p)
{
    struct tally *t = p;
    g_array_free(t->ack_s, TRUE);
    g_array_free(t->handle_s, TRUE);
    g_free(t);
}

static struct tally *tally_new(void)
{
    struct tally *t = g_new0(struct tally, 1);
    t->ack_s = g_array_new(FALSE, FALSE, sizeof(double));
    t->handle_s = g_array_new(FALSE, FALSE, sizeof(double));
    return t;
}

static struct tally *tally_of(GHashTable *h, const char *key)
{
    struct tally *t = g_hash_table_lookup(h, key);
    if (!t) {
        t = tally_new();
        g_hash_table_insert(h, g_strdup(key), t);
    }
    return t;
}

static void count(struct tally *t, int level, int64_t raised, int64_t acked, int64_t handled,
                  const struct alarm_escalation *esc)
{
    t->raised++;
    t->by_level[level]++;
    if (acked) {
        double s = (double)(acked - raised) / 1000.0;
        t->acked++;
        t->acked_in_time += acked - raised <= esc->after_ms[level][0];
        g_array_append_val(t->ack_s, s);
    }
    if (handled) {
        double s = (double)(handled - raised) / 1000.0;
        t->handled++;
        t->handled_in_time += handled - raised <= esc->after_ms[level][1];
        g_array_append_val(t->handle_s, s);
    }
}

static bool stats_one(const char *id, json_t *doc, void *ud)
{
    (void)id;
    struct stats_scan *s = ud;
    if (++s->scanned > SCAN_MAX) {
        s->truncated = true;
        return false;
    }
    int level = alarm_level_parse(jx_str(doc, "level"));
    const char *ent = jx_str(doc, "enterprise"), *div = jx_str(doc, "division");
    if (level < 0 || !ent || !div || g_strcmp0(jx_str(doc, "month"), s->month) != 0)
        return true;
    int64_t raised = jx_int(doc, "raised_at", 0), acked = jx_int(doc, "acked_at", 0),
            handled = jx_int(doc, "handled_at", 0);
    count(&s->total, level, raised, acked, handled, &s->cfg.escalation);
    count(tally_of(s->ents, ent), level, raised, acked, handled, &s->cfg.escalation);
    count(tally_of(s->districts, div), level, raised, acked, handled, &s->cfg.escalation);
    return true;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static json_t *median(GArray *v)
{
    if (v->len == 0)
        return json_null();
    qsort(v->data, v->len, sizeof(double), cmp_double);
    double *d = (double *)v->data;
    return json_real(v->len % 2 ? d[v->len / 2] : (d[v->len / 2 - 1] + d[v->len / 2]) / 2);
}

static json_t *tally_json(struct tally *t)
{
    json_t *lv = json_object();
    for (int l = 0; l < ALARM_LEVELS; l++)
        json_object_set_new(lv, alarm_level_name(l), json_integer(t->by_level[l]));
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:o}", "raised", t->raised,
                     "acknowledged", t->acked, "acknowledged_in_time", t->acked_in_time, "handled",
                     t->handled, "handled_in_time", t->handled_in_time, "median_ack_s",
                     median(t->ack_s), "median_handle_s", median(t->handle_s), "by_level", lv);
}

static json_t *tallies_json(GHashTable *h, const char *key_name)
{
    GList *keys = g_list_sort(g_hash_table_get_keys(h), (GCompareFunc)strcmp);
    json_t *arr = json_array();
    for (GList *k = keys; k; k = k->next) {
        json_t *o = tally_json(g_hash_table_lookup(h, k->data));
        json_object_set_new(o, key_name, json_string(k->data));
        json_array_append_new(arr, o);
    }
    g_list_free(keys);
    return arr;
}

static void route_stats(struct rest_req *r)
{
    const char *ent;
    char div[8], month[BIZDATE_LEN];
    if (!scope_of(r, &ent, div))
        return;
    const char *m = rest_query(r, "month");
    if (m) {
        int64_t a, b;
        char first[BIZDATE_LEN + 3];
        g_snprintf(first, sizeof(first), "%s-01", m);
        if (strlen(m) != 7 || !bizdate_span(first, &a, &b)) {
            rest_error(r, ERR_BAD_REQUEST, "month must be YYYY-MM");
            return;
        }
        g_strlcpy(month, m, sizeof(month));
    } else {
        bizdate_of(clock_now_ms(), month);
        month[7] = '\0';
    }
    struct stats_scan s = {.month = month};
    char *err = NULL;
    if (config_alarm(&server.cfg, &s.cfg, &err) < 0) {
        g_free(err);
        rest_error(r, ERR_INTERNAL, "alarm configuration");
        return;
    }
    s.ents = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, tally_free);
    s.districts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, tally_free);
    s.total.ack_s = g_array_new(FALSE, FALSE, sizeof(double));
    s.total.handle_s = g_array_new(FALSE, FALSE, sizeof(double));
    int rc = ent ? store_index_find(server.store, "alarms", "enterprise", ent, false, stats_one, &s)
                 : store_index_find(server.store, "alarms", "division", div, true, stats_one, &s);
    if (rc != STORE_OK) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
    } else {
        json_t *body =
            json_pack("{s:s, s:o, s:o, s:o, s:b}", "month", month, "totals", tally_json(&s.total),
                      "enterprises", tallies_json(s.ents, "enterprise"), "districts",
                      tallies_json(s.districts, "division"), "truncated", s.truncated);
        json_object_set_new(body, ent ? "enterprise" : "division", json_string(ent ? ent : div));
        rest_reply(r, 200, body);
    }
    g_hash_table_destroy(s.ents);
    g_hash_table_destroy(s.districts);
    g_array_free(s.total.ack_s, TRUE);
    g_array_free(s.total.handle_s, TRUE);
}

/* ------------------------------------------------------------ downtime */

static bool json_ms(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out > 0;
    }
    GDateTime *t =
        json_is_string(v) ? g_date_time_new_from_iso8601(json_string_value(v), NULL) : NULL;
    if (!t)
        return false;
    *out = g_date_time_to_unix(t) * 1000;
    g_date_time_unref(t);
    return true;
}

static void route_declare(struct rest_req *r)
{
    json_t *b = r->body;
    const char *ent = r->acct->org;
    if (!json_is_object(b)) {
        rest_error(r, ERR_BAD_REQUEST, "body must be a downtime object");
        return;
    }
    if (strcmp(r->acct->role, "admin") == 0) {
        ent = jx_str_bounded(b, "enterprise", 64);
        if (!ent) {
            rest_error(r, ERR_BAD_REQUEST, "enterprise is required");
            return;
        }
    } else if (strcmp(r->acct->role, "corp") != 0 || !alarm_staff_position(r->acct->position)) {
        rest_error(r, ERR_FORBIDDEN,
                   "the enterprise's duty staff, safety managers and principal declare downtime");
        return;
    } else if (jx_str(b, "enterprise") && strcmp(jx_str(b, "enterprise"), ent) != 0) {
        rest_error(r, ERR_FORBIDDEN, "you declare only your own enterprise's downtime");
        return;
    }
    char *div = enterprise_division(ent);
    if (!div) {
        rest_error(r, ERR_NOT_FOUND, "no such enterprise");
        return;
    }
    int64_t now = clock_now_ms(), from = now, until = 0;
    json_t *sensors = json_object_get(b, "sensors");
    const char *why = NULL;
    if (json_object_get(b, "from") && !json_ms(json_object_get(b, "from"), &from))
        why = "from must be UTC ms or ISO 8601 with offset";
    else if (!json_ms(json_object_get(b, "until"), &until))
        why = "until (the planned restore time) must be UTC ms or ISO 8601 with offset";
    else if (sensors && (!json_is_array(sensors) || json_array_size(sensors) == 0 ||
                         json_array_size(sensors) > DOWNTIME_SENSORS_MAX))
        why = "sensors must be a non-empty array of at most 500 sensor ids";
    size_t i;
    json_t *sv;
    if (!why && sensors)
        json_array_foreach(sensors, i, sv)
        {
            const struct sensor *s = json_is_string(sv) ? sensor_get(json_string_value(sv)) : NULL;
            if (!s || g_strcmp0(s->enterprise, ent) != 0) {
                why = "every sensor must be one of the enterprise's";
                break;
            }
        }
    json_t *out = NULL;
    enum err_code e = why ? ERR_BAD_REQUEST
                          : downtime_declare(ent, div, sensors, jx_str(b, "reason"), from, until,
                                             r->acct->id, now, &out, &why);
    g_free(div);
    if (e != ERR_NONE) {
        rest_error(r, e, why);
        return;
    }
    audit_log(server.store, r->acct->id, "downtime.declare", jx_str(out, "id"), "ok", r->peer);
    alarm_push_downtime(out);
    rest_reply(r, 201, json_pack("{s:o}", "downtime", out));
}

static bool collect(const char *id, json_t *doc, void *ud)
{
    (void)id;
    json_array_append(ud, doc);
    return json_array_size(ud) < 1000;
}

static void route_downtimes(struct rest_req *r)
{
    const char *ent;
    char div[8];
    if (!scope_of(r, &ent, div))
        return;
    json_t *out = json_array();
    if (downtime_each(ent, div, collect, out) != STORE_OK) {
        json_decref(out);
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    rest_reply(r, 200, json_pack("{s:o}", "downtimes", out));
}

static void route_end(struct rest_req *r)
{
    json_t *doc = NULL;
    const char *id = r->params[0];
    if (strlen(id) > 64 || downtime_get(id, &doc) != STORE_OK ||
        !reaches_enterprise(r->acct, jx_str(doc, "enterprise"), jx_str(doc, "division"))) {
        json_decref(doc);
        rest_error(r, ERR_NOT_FOUND, "no such downtime declaration");
        return;
    }
    json_decref(doc);
    if (strcmp(r->acct->role, "admin") != 0 &&
        (strcmp(r->acct->role, "corp") != 0 || !alarm_staff_position(r->acct->position))) {
        rest_error(r, ERR_FORBIDDEN, "only the enterprise ends its downtime");
        return;
    }
    json_t *out = NULL;
    const char *why = "";
    enum err_code e = downtime_end(id, r->acct->id, clock_now_ms(), &out, &why);
    if (e != ERR_NONE) {
        rest_error(r, e, why);
        return;
    }
    audit_log(server.store, r->acct->id, "downtime.end", id, "ok", r->peer);
    rest_reply(r, 200, json_pack("{s:o}", "downtime", out));
}

const struct rest_route alarm_routes[] = {
    {REST_GET, "/api/v1/alarms", route_list, true, false},
    {REST_GET, "/api/v1/alarms/stats", route_stats, true, false},
    {REST_GET, "/api/v1/alarms/*", route_get, true, false},
    {REST_POST, "/api/v1/alarms/*/ack", route_ack, true, false},
    {REST_POST, "/api/v1/alarms/*/feedback", route_feedback, true, false},
    {REST_POST, "/api/v1/alarms/*/close", route_close, true, false},
    {REST_POST, "/api/v1/downtimes", route_declare, true, true},
    {REST_GET, "/api/v1/downtimes", route_downtimes, true, false},
    {REST_POST, "/api/v1/downtimes/*/end", route_end, true, true},
    {0},
};
