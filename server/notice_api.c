/* Notices on WebSocket and REST: notice.publish and notice.read, and
 * notice.get, POST /api/v1/notices, GET /api/v1/notices/{id} and
 * GET /api/v1/notices/{id}/receipts. The rules
 * (who may publish to whom, who is a recipient) are push/notice.c's. */
#include "common/jsonx.h"
#include "common/log.h"
#include "push/notice.h"
#include "server/conn.h"
#include "server/rest.h"
#include "server/server.h"
#include "server/ws.h"

#define NOTICE_ID_MAX 64

static void ws_published(enum err_code err, const char *why, const char *nid, int n, void *ud)
{
    conn_req_answer(ud, err, why,
                    err == ERR_NONE ? json_pack("{s:s, s:i}", "notice_id", nid, "recipients", n)
                                    : NULL);
}

static void h_publish(struct conn *c, json_t *id, json_t *msg)
{
    struct principal p = {c->role, c->org};
    notice_publish_later(c->user_id, &p, msg, ws_published, conn_req_new(c, id));
}

static void h_read(struct conn *c, json_t *id, json_t *msg)
{
    const char *nid = jx_str_bounded(msg, "notice_id", NOTICE_ID_MAX);
    if (!nid) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "notice_id must be a string");
        return;
    }
    int64_t at = 0;
    enum err_code err = notice_read(nid, c->user_id, &at);
    if (err != ERR_NONE)
        conn_reply_error(c, id, err,
                         err == ERR_NOT_FOUND ? "no such notice for you" : "store unavailable");
    else
        conn_reply(c, id, json_pack("{s:s, s:I}", "notice_id", nid, "read_at", (json_int_t)at));
}

static void h_get(struct conn *c, json_t *id, json_t *msg)
{
    const char *nid = jx_str_bounded(msg, "notice_id", NOTICE_ID_MAX);
    if (!nid) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "notice_id must be a string");
        return;
    }
    json_t *out = NULL;
    enum err_code err = notice_get(nid, c->user_id, c->role, &out);
    if (err != ERR_NONE)
        conn_reply_error(c, id, err,
                         err == ERR_NOT_FOUND ? "no such notice for you" : "store unavailable");
    else
        conn_reply(c, id, out);
}

const struct ws_handler notice_handlers[] = {
    {"notice.publish", h_publish, true, false},
    {"notice.read", h_read, true, true},
    {"notice.get", h_get, true, true},
    {NULL, NULL, false, false},
};

static void rest_published(enum err_code err, const char *why, const char *nid, int n, void *ud)
{
    uint64_t hold = GPOINTER_TO_SIZE(ud);
    if (err != ERR_NONE)
        rest_held_error(hold, err, why);
    else
        rest_held_reply(hold, 201, json_pack("{s:s, s:i}", "notice_id", nid, "recipients", n));
}

/* POST /api/v1/notices: notice.publish for the web console. */
static void route_publish(struct rest_req *r)
{
    if (!r->body) {
        rest_error(r, ERR_BAD_REQUEST, "body must be a JSON object");
        return;
    }
    struct principal p = {r->acct->role, r->acct->org};
    uint64_t hold = rest_hold(r);
    notice_publish_later(r->acct->id, &p, r->body, rest_published, GSIZE_TO_POINTER(hold));
}

/* GET /api/v1/notices/{id}: the whole notice, for its recipients. */
static void route_get(struct rest_req *r)
{
    json_t *out = NULL;
    enum err_code err = notice_get(r->params[0], r->acct->id, r->acct->role, &out);
    if (err != ERR_NONE)
        rest_error(r, err, err == ERR_NOT_FOUND ? "no such notice for you" : "store unavailable");
    else
        rest_reply(r, 200, out);
}

/* GET /api/v1/notices/{id}/receipts: who has read it, who has not. */
static void route_receipts(struct rest_req *r)
{
    json_t *out = NULL;
    const char *why = NULL;
    enum err_code err = notice_receipts(r->params[0], r->acct->id, r->acct->role, &out, &why);
    if (err != ERR_NONE)
        rest_error(r, err, why);
    else
        rest_reply(r, 200, out);
}

const struct rest_route notice_routes[] = {
    {REST_POST, "/api/v1/notices", route_publish, true, false},
    {REST_GET, "/api/v1/notices/*", route_get, true, false},
    {REST_GET, "/api/v1/notices/*/receipts", route_receipts, true, false},
    {0},
};
