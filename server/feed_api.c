/* The 3D feeds on WebSocket: feed.subscribe and feed.unsubscribe, and the
 * transport push/feed.c sends through (the connection's send queue, whose
 * length tells a slow subscriber apart). */
#include "server/feed_api.h"

#include "common/jsonx.h"
#include "common/log.h"
#include "push/feed.h"
#include "records/alarm.h"
#include "records/org.h"
#include "server/conn.h"
#include "server/server.h"
#include "server/ws.h"

#include <string.h>

#define FEED_ID_MAX 32

static void io_send(void *conn, const char *text, size_t len)
{
    conn_send_text(conn, text, len, "feed");
}

static size_t io_queued(void *conn)
{
    return ((struct conn *)conn)->out_bytes;
}

/* The feeds follow every stored alarm change (and start from the open
 * alarms in memory). */
static void feed_alarm(const struct alarm *a)
{
    json_t *j = alarm_to_json(a);
    feed_alarm_update(a->id, a->sensor, a->enterprise, a->division, a->park,
                      alarm_level_name(a->level), a->state != ALARM_CLOSED,
                      a->condition == ALARM_COND_INTERRUPTED, j);
    json_decref(j);
}

static void on_alarm_changed(const struct alarm *a, void *ud)
{
    (void)ud;
    feed_alarm(a);
}

static bool load_open_alarm(const struct alarm *a, void *ud)
{
    (void)ud;
    feed_alarm(a);
    return true;
}

void feed_api_init(void)
{
    const struct config *cfg = &server.cfg;
    struct feed_limits lim = {
        .max_hz = cfg->feed_max_hz,
        .default_hz = cfg->feed_default_hz,
        .subs_per_conn = cfg->feed_subs_per_conn,
        .max_sensors = cfg->feed_max_sensors,
        .part_items = cfg->feed_part_items,
        .delta_items = cfg->feed_delta_items,
        .slow_queue_bytes = (size_t)cfg->send_queue_max / 4,
    };
    struct feed_io io = {io_send, io_queued};
    feed_init(server.store, &lim, &io);
    alarm_foreach_open(load_open_alarm, NULL);
    alarm_on_changed(on_alarm_changed, NULL);
}

void feed_api_shutdown(void)
{
    feed_shutdown();
}

static void subscribe(struct conn *c, json_t *id, json_t *msg, bool ahead);

/* A subscription to an enterprise whose division is read first. */
struct ahead {
    struct conn_req *req;
    json_t *msg;
};

static void on_division_read(void *ud)
{
    struct ahead *x = ud;
    struct conn *c = conn_req_conn(x->req);
    if (c)
        subscribe(c, x->req->id, x->msg, true);
    conn_req_free(x->req);
    json_decref(x->msg);
    g_free(x);
}

/* feed.subscribe {"enterprise"|"park"|"division", "max_hz"?} → {"feed_id"};
 * the snapshot follows the reply. An enterprise's division, where the
 * store reads later and it is not kept, is read first without waiting. */
static void h_subscribe(struct conn *c, json_t *id, json_t *msg)
{
    subscribe(c, id, msg, false);
}

static void subscribe(struct conn *c, json_t *id, json_t *msg, bool ahead)
{
    static const char *const keys[] = {"enterprise", "park", "division"};
    static const enum feed_scope scopes[] = {FEED_ENTERPRISE, FEED_PARK, FEED_DIVISION};
    int found = -1;
    for (int i = 0; i < 3; i++) {
        if (!json_object_get(msg, keys[i]))
            continue;
        if (found >= 0) {
            conn_reply_error(c, id, ERR_BAD_REQUEST,
                             "name exactly one of enterprise, park, division");
            return;
        }
        found = i;
    }
    if (found < 0) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "name one of enterprise, park, division");
        return;
    }
    const char *value = jx_str(msg, keys[found]);
    if (!value) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "the scope must be a string");
        return;
    }
    json_t *hz = json_object_get(msg, "max_hz");
    if (hz && !json_is_number(hz)) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "max_hz must be a number");
        return;
    }
    double max_hz = hz ? json_number_value(hz) : 0;
    if (hz && max_hz <= 0) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "max_hz must be positive");
        return;
    }
    const char *corp = "corp";
    if (!ahead && found == 0 && strlen(value) <= ORG_ID_MAX) {
        struct ahead *x = g_new(struct ahead, 1);
        *x = (struct ahead){conn_req_new(c, id), json_incref(msg)};
        if (org_divisions_read_later(server.store, &corp, &value, 1, on_division_read, x))
            return;
        conn_req_free(x->req);
        json_decref(x->msg);
        g_free(x);
    }
    struct principal p = {c->role, c->org};
    char *feed_id = NULL;
    const char *why = NULL;
    enum err_code err = feed_subscribe(c, &p, scopes[found], value, max_hz, &feed_id, &why);
    if (err != ERR_NONE) {
        log_info("feed", "conn=%" G_GUINT64_FORMAT " user=%s %s=%s refused: %s", c->serial,
                 c->user_id, keys[found], value, why);
        conn_reply_error(c, id, err, why);
        return;
    }
    conn_reply(c, id, json_pack("{s:s}", "feed_id", feed_id));
    g_free(feed_id);
}

static void h_unsubscribe(struct conn *c, json_t *id, json_t *msg)
{
    const char *fid = jx_str_bounded(msg, "feed_id", FEED_ID_MAX);
    if (!fid) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "feed_id must be a string");
        return;
    }
    if (feed_unsubscribe(c, fid) != ERR_NONE)
        conn_reply_error(c, id, ERR_NOT_FOUND, "no such feed on this connection");
    else
        conn_reply(c, id, NULL);
}

const struct ws_handler feed_handlers[] = {
    {"feed.subscribe", h_subscribe, true, false},
    {"feed.unsubscribe", h_unsubscribe, true, false},
    {NULL, NULL, false, false},
};
