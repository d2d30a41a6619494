/* REST routes of sensors and readings:
 *   GET    /api/v1/sensors?enterprise=&division=&kind=&offset=&limit=
 *   GET    /api/v1/sensors/{id}
 *   PUT    /api/v1/sensors/{id}              create or replace
 *   DELETE /api/v1/sensors/{id}
 *   GET    /api/v1/sensors/{id}/readings?from=&to=&step=&limit=
 *   POST   /api/v1/readings                  gateways, X-Api-Key
 * Sensors are read and written by admin, the corp users of their
 * enterprise and the gov users whose jurisdiction reaches it (juris_reaches);
 * transport users have none. Readings come only from gateway keys
 * (records/apikey.h), each limited to its own enterprise's sensors. */
#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/apikey.h"
#include "records/jurisdiction.h"
#include "records/reading.h"
#include "records/sensor.h"
#include "server/rest.h"
#include "server/server.h"

#include <openssl/crypto.h>
#include <string.h>

#define LIST_DEFAULT 100
#define DAY_MS (86400 * (int64_t)1000)

static bool reaches(const struct rest_req *r, const char *enterprise, const char *division)
{
    struct principal p = {r->acct->role, r->acct->org};
    return juris_reaches(&p, ORG_ENTERPRISE, enterprise, division);
}

/* The sensor of params[0] if the caller reaches it; otherwise answers and
 * returns NULL. */
static const struct sensor *reachable(struct rest_req *r)
{
    const struct sensor *s = sensor_get(r->params[0]);
    if (!s) {
        rest_error(r, ERR_NOT_FOUND, "no such sensor");
        return NULL;
    }
    if (!reaches(r, s->enterprise, s->division)) {
        rest_error(r, ERR_FORBIDDEN, "the sensor is outside your jurisdiction");
        return NULL;
    }
    return s;
}

struct list {
    const struct rest_req *r;
    const char *enterprise, *kind;
    GPtrArray *hits;
};

static bool list_one(const struct sensor *s, void *ud)
{
    struct list *l = ud;
    if (l->enterprise && strcmp(s->enterprise, l->enterprise) != 0)
        return true;
    if (l->kind && strcmp(s->kind, l->kind) != 0)
        return true;
    if (reaches(l->r, s->enterprise, s->division))
        g_ptr_array_add(l->hits, (gpointer)s);
    return true;
}

static int by_id(const void *a, const void *b)
{
    return strcmp((*(const struct sensor *const *)a)->id, (*(const struct sensor *const *)b)->id);
}

static void route_list(struct rest_req *r)
{
    int64_t offset, limit;
    char div[8] = "", own[8] = "";
    if (!rest_query_int(r, "offset", 0, 100000000, 0, &offset) ||
        !rest_query_int(r, "limit", 1, server.cfg.sensors_list_max,
                        MIN(LIST_DEFAULT, server.cfg.sensors_list_max), &limit))
        return;
    if (strcmp(r->acct->role, "trs") == 0) {
        rest_error(r, ERR_FORBIDDEN, "transport users have no sensors");
        return;
    }
    if (!rest_query_division(r, div))
        return;
    if (strcmp(r->acct->role, "gov") == 0) {
        if (!division_normalize(r->acct->org, own, sizeof(own))) {
            rest_error(r, ERR_FORBIDDEN, "your account has no valid division");
            return;
        }
        if (div[0] && !division_covers(own, div)) {
            rest_error(r, ERR_FORBIDDEN, "the division is outside your jurisdiction");
            return;
        }
    }
    struct list l = {.r = r,
                     .enterprise = rest_query(r, "enterprise"),
                     .kind = rest_query(r, "kind"),
                     .hits = g_ptr_array_new()};
    if (strcmp(r->acct->role, "corp") == 0)
        sensor_foreach_enterprise(r->acct->org, list_one, &l);
    else if (l.enterprise)
        sensor_foreach_enterprise(l.enterprise, list_one, &l);
    else if (div[0] || own[0])
        sensor_foreach_division(div[0] ? div : own, list_one, &l);
    else
        sensor_foreach(list_one, &l);
    g_ptr_array_sort(l.hits, by_id);
    json_t *out = json_array();
    for (guint i = (guint)offset; i < l.hits->len && i < (guint)(offset + limit); i++)
        json_array_append_new(out, sensor_to_json(g_ptr_array_index(l.hits, i)));
    rest_reply(r, 200,
               json_pack("{s:o, s:I, s:I, s:I}", "sensors", out, "total", (json_int_t)l.hits->len,
                         "offset", (json_int_t)offset, "limit", (json_int_t)limit));
    g_ptr_array_unref(l.hits);
}

static void route_get(struct rest_req *r)
{
    const struct sensor *s = reachable(r);
    if (s)
        rest_reply(r, 200, json_pack("{s:o}", "sensor", sensor_to_json(s)));
}

/* True if the caller may write sensors of enterprise ent_id (looked up
 * for its division); otherwise answers. */
static bool may_write(struct rest_req *r, const char *ent_id)
{
    json_t *ent = NULL;
    int rc = store_doc_get(server.store, "enterprises", ent_id, &ent);
    if (rc == STORE_ENOTFOUND) {
        rest_error(r, ERR_NOT_FOUND, "no such enterprise");
        return false;
    }
    if (rc != STORE_OK) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return false;
    }
    bool ok = reaches(r, ent_id, jx_str(ent, "division"));
    json_decref(ent);
    if (!ok)
        rest_error(r, ERR_FORBIDDEN, "the enterprise is outside your jurisdiction");
    return ok;
}

static void route_put(struct rest_req *r)
{
    const char *why = NULL;
    if (!r->body) {
        rest_error(r, ERR_BAD_REQUEST, "body must be a sensor object");
        return;
    }
    if (!sensor_id_valid(r->params[0])) {
        rest_error(r, ERR_BAD_REQUEST, "sensor ids are 1-64 characters of A-Z a-z 0-9 _ . : -");
        return;
    }
    const char *id_in = jx_str(r->body, "id");
    if (json_object_get(r->body, "id") && g_strcmp0(id_in, r->params[0]) != 0) {
        rest_error(r, ERR_BAD_REQUEST, "id in the body differs from the path");
        return;
    }
    const char *ent = jx_str_bounded(r->body, "enterprise", 64);
    if (!ent) {
        rest_error(r, ERR_BAD_REQUEST, "enterprise must be an enterprise id");
        return;
    }
    const struct sensor *old = sensor_get(r->params[0]);
    if (old && !reaches(r, old->enterprise, old->division)) {
        rest_error(r, ERR_FORBIDDEN, "the sensor belongs to an enterprise outside your reach");
        return;
    }
    if (!may_write(r, ent))
        return;
    json_t *out = NULL;
    enum err_code e = sensor_put(server.store, r->params[0], r->body, r->acct->id, &out, &why);
    if (e != ERR_NONE)
        rest_error(r, e, why);
    else
        rest_reply(r, old ? 200 : 201, json_pack("{s:o}", "sensor", out));
}

static void route_delete(struct rest_req *r)
{
    const struct sensor *s = reachable(r);
    if (!s)
        return;
    const char *why = NULL;
    enum err_code e = sensor_delete(server.store, r->params[0], r->acct->id, &why);
    if (e != ERR_NONE)
        rest_error(r, e, why);
    else
        rest_reply(r, 200, json_pack("{s:b}", "ok", 1));
}

static void route_readings(struct rest_req *r)
{
    const struct sensor *s = reachable(r);
    if (!s)
        return;
    int64_t now = clock_now_ms(), from, to, step, limit;
    if (!rest_query_int(r, "to", 0, INT64_MAX / 2, now + 1, &to) ||
        !rest_query_int(r, "from", 0, INT64_MAX / 2, MAX(0, to - DAY_MS), &from) ||
        !rest_query_int(r, "step", 0, 366 * DAY_MS, 0, &step) ||
        !rest_query_int(r, "limit", 1, server.cfg.readings_query_max_points,
                        server.cfg.readings_query_max_points, &limit))
        return;
    json_t *out = NULL;
    const char *why = NULL;
    enum err_code e = reading_history(s, from, to, step, (int)limit, clock_now_ms(), &out, &why);
    if (e != ERR_NONE)
        rest_error(r, e, why);
    else
        rest_reply(r, 200, out);
}

/* A gateway's batch while its key is checked. */
struct post_readings {
    uint64_t hold;
    json_t *body; /* a reference of its own */
};

static void on_ingested(enum err_code e, json_t *report, const char *why, void *ud)
{
    uint64_t hold = GPOINTER_TO_SIZE(ud);
    if (e != ERR_NONE)
        rest_held_error(hold, e, why);
    else
        rest_held_reply(hold, 200, json_incref(report));
}

static void on_gateway_key(int rc, const char *enterprise, const char *id, void *ud)
{
    struct post_readings *p = ud;
    (void)id;
    if (rc == STORE_ENOTFOUND)
        rest_held_error(p->hold, ERR_UNAUTHORIZED, "invalid or revoked API key");
    else if (rc != STORE_OK)
        rest_held_error(p->hold, ERR_UNAVAILABLE, "store unavailable");
    else if (!p->body)
        rest_held_error(p->hold, ERR_BAD_REQUEST, "body must be {\"readings\":[...]}");
    else
        reading_ingest_later(enterprise, p->body, clock_now_ms(), on_ingested,
                             GSIZE_TO_POINTER(p->hold));
    json_decref(p->body);
    g_free(p);
}

/* POST /api/v1/readings: a gateway's batch, under its key's enterprise
 * (the key's record read without waiting). */
static void route_post_readings(struct rest_req *r)
{
    char key[160];
    if (!rest_header(r, "x-api-key:", key, sizeof(key))) {
        rest_error(r, ERR_UNAUTHORIZED, "missing X-Api-Key");
        return;
    }
    struct post_readings *p = g_new(struct post_readings, 1);
    p->body = json_incref(r->body);
    p->hold = rest_hold(r);
    apikey_check_later(server.store, key, on_gateway_key, p);
    OPENSSL_cleanse(key, sizeof(key));
}

const struct rest_route sensor_routes[] = {
    {REST_POST, "/api/v1/readings", route_post_readings, false, false},
    {REST_GET, "/api/v1/sensors", route_list, true, false},
    {REST_GET, "/api/v1/sensors/*/readings", route_readings, true, false},
    {REST_GET, "/api/v1/sensors/*", route_get, true, false},
    {REST_PUT, "/api/v1/sensors/*", route_put, true, true},
    {REST_DELETE, "/api/v1/sensors/*", route_delete, true, true},
    {0},
};
