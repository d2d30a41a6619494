/* The gateway WebSocket stream: a plant's data gateway keeps one /ws
 * connection open, authenticates with auth.apikey {"key"} (instead of a
 * user's auth.login/auth.token) and then sends readings.post
 * {"readings":[...]} as often as it likes (within the connection's message
 * rate), each answered with the same per-row report as POST
 * /api/v1/readings. Such a connection may send nothing else (ws.c refuses
 * every other type with forbidden), and a user connection may not send
 * readings.post. The key is checked whole once; each batch then checks
 * that the key (by its id) was not revoked meanwhile, and a revoked key's
 * connection is closed 4403. */
#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/apikey.h"
#include "records/reading.h"
#include "server/conn.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/ws.h"

#define APIKEY_MAX 160

static void on_apikey(int rc, const char *enterprise, const char *kid, void *ud)
{
    struct conn_req *p = ud;
    struct conn *c = conn_req_conn(p);
    if (!c) /* gone meanwhile */
        goto out;
    c->login_pending = false;
    if (rc == STORE_ENOTFOUND) {
        log_info("ws", "conn=%" G_GUINT64_FORMAT " peer=%s gateway key refused", c->serial,
                 c->peer);
        conn_reply_error(c, p->id, ERR_UNAUTHORIZED, "invalid or revoked API key");
        conn_close(c, 4401, "invalid or revoked API key");
        goto out;
    }
    if (rc != STORE_OK) {
        conn_reply_error(c, p->id, ERR_UNAVAILABLE, "store unavailable");
        goto out;
    }
    if (c->auth_timer) {
        g_source_remove(c->auth_timer);
        c->auth_timer = 0;
    }
    c->gateway_enterprise = g_strdup(enterprise);
    c->gateway_key_id = g_strdup(kid);
    metrics_conn("none", -1);
    metrics_conn("gateway", 1);
    log_info("ws", "conn=%" G_GUINT64_FORMAT " gateway key=%s enterprise=%s authenticated",
             c->serial, kid, enterprise);
    conn_reply(
        c, p->id,
        json_pack("{s:s, s:s, s:s}", "role", "gateway", "enterprise", enterprise, "key_id", kid));
out:
    conn_req_free(p);
}

/* auth.apikey: the key's record is read without waiting; the connection
 * takes no other authentication meanwhile. */
static void h_apikey(struct conn *c, json_t *id, json_t *msg)
{
    const char *key = jx_str_bounded(msg, "key", APIKEY_MAX);
    if (!key) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "key must be a string");
        return;
    }
    if (c->authed || c->gateway_enterprise) {
        conn_reply_error(c, id, ERR_CONFLICT, "already authenticated");
        return;
    }
    if (c->login_pending) {
        conn_reply_error(c, id, ERR_BUSY, "an authentication is already in progress");
        return;
    }
    c->login_pending = true;
    apikey_check_later(server.store, key, on_apikey, conn_req_new(c, id));
}

/* A gateway's batch while its key's record is read. */
struct ws_batch {
    struct conn_req *req;
    json_t *msg;
};

static void on_ingested(enum err_code e, json_t *report, const char *why, void *ud)
{
    conn_req_answer(ud, e, why, json_incref(report));
}

static void on_key_live(int rc, void *ud)
{
    struct ws_batch *b = ud;
    struct conn *c = conn_req_conn(b->req);
    json_t *id = b->req->id;
    if (!c || !c->gateway_enterprise) {
        /* gone meanwhile: never acknowledged, the gateway sends it again */
    } else if (rc == STORE_ENOTFOUND) {
        conn_reply_error(c, id, ERR_UNAUTHORIZED, "the API key was revoked");
        conn_close(c, 4403, "API key revoked");
    } else if (rc != STORE_OK) {
        conn_reply_error(c, id, ERR_UNAVAILABLE, "store unavailable");
    } else {
        reading_ingest_later(c->gateway_enterprise, b->msg, clock_now_ms(), on_ingested, b->req);
        b->req = NULL; /* the ingest's now */
    }
    json_decref(b->msg);
    conn_req_free(b->req);
    g_free(b);
}

/* readings.post: the key is read again first (a revoked key stops at its
 * next batch), without waiting; the batches of a connection are read, and
 * so taken, in the order they came. */
static void h_readings_post(struct conn *c, json_t *id, json_t *msg)
{
    if (!c->gateway_enterprise) {
        conn_reply_error(c, id, c->authed ? ERR_FORBIDDEN : ERR_UNAUTHORIZED,
                         "readings.post needs a gateway connection (auth.apikey)");
        return;
    }
    struct ws_batch *b = g_new(struct ws_batch, 1);
    b->req = conn_req_new(c, id);
    b->msg = json_incref(msg);
    apikey_live_later(server.store, c->gateway_key_id, on_key_live, b);
}

const struct ws_handler reading_handlers[] = {
    {"auth.apikey", h_apikey, false, false},
    {NULL, NULL, false, false},
};

const struct ws_handler gateway_handlers[] = {
    {"readings.post", h_readings_post, false, false},
    {NULL, NULL, false, false},
};
