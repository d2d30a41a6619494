/* WebSocket transport and envelope (see ws.h).
 *
 * Every message is bounded (max_frame, counted over all fragments), parsed
 * as JSON, checked to be an object with an "id" (string up to 128 bytes or
 * integer) and a "type" (string), rate-limited by a token bucket, then
 * handed to its handler. Anything wrong gets an error reply with a contract
 * code and the connection keeps serving; only a frame over the limit
 * (1009) or sustained flooding (1008) closes it. */
#include "server/ws.h"

#include "common/clock.h"
#include "common/log.h"
#include "push/feed.h"
#include "push/presence.h"
#include "records/store_replay.h"
#include "signaling/call.h"
#include "server/envelope.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/uvsource.h"

#include <string.h>

struct ws_pss {
    struct conn *conn;
};

/* The handler of type, or NULL; *gateway tells whether it is one of the
 * gateway messages. */
static const struct ws_handler *find_handler(const char *type, bool *gateway)
{
    static const struct ws_handler *const tables[] = {
        session_handlers, presence_handlers, call_handlers,    commitment_handlers, push_handlers,
        notice_handlers,  reading_handlers,  feed_handlers,    alarm_handlers,      gateway_handlers};
    for (size_t t = 0; t < G_N_ELEMENTS(tables); t++)
        for (const struct ws_handler *h = tables[t]; h->type; h++)
            if (strcmp(h->type, type) == 0) {
                *gateway = tables[t] == gateway_handlers;
                return h;
            }
    return NULL;
}

static gboolean auth_timeout(gpointer data)
{
    struct conn *c = data;
    c->auth_timer = 0;
    if (!c->authed) {
        log_info("ws", "conn=%" G_GUINT64_FORMAT " peer=%s not authenticated in time", c->serial,
                 c->peer);
        conn_close(c, 4401, "not authenticated in time");
    }
    return G_SOURCE_REMOVE;
}

/* A request of a replayed handler, waiting for its reads. */
struct ws_replayed {
    struct store_replay *rp;
    const struct ws_handler *h;
    json_t *id, *msg;
};

/* Runs of one request before its reads are made waiting. */
#define REPLAY_RUNS_MAX 8
/* Messages that may wait behind a request waiting for its reads, and
 * their bytes in all. */
#define REPLAY_QUEUE_MAX 64
#define REPLAY_QUEUE_BYTES (256 * 1024)

/* A message that came over the rate: answered rate_limited (id: its id
 * if read); a connection that keeps at it is closed. */
static void rate_refuse(struct conn *c, json_t *id)
{
    metrics_msg_in("rate_limited");
    conn_reply_error(c, id, ERR_RATE_LIMITED, "too many messages, slow down");
    if (++c->limited_streak > 4 * server.cfg.rate_burst)
        conn_close(c, 1008, "message rate abuse");
}

/* Takes a token of c's rate bucket for a message that came; false (and
 * the message refused) when empty. */
static bool rate_ok(struct conn *c, json_t *id)
{
    if (!conn_rate_take(c, server.cfg.rate_per_s, server.cfg.rate_burst)) {
        rate_refuse(c, id);
        return false;
    }
    c->limited_streak = 0;
    return true;
}

static void dispatch(struct conn *c, const char *text, size_t len, bool rated);

static void replayed_free(struct ws_replayed *x)
{
    if (!x)
        return;
    store_replay_free(x->rp);
    json_decref(x->id);
    json_decref(x->msg);
    g_free(x);
}

static void replay_ready(void *ud);

/* One run of x on c: done when it lacked no read or answered before it
 * did, else held until its reads are in. True when done. */
static bool replay_run(struct conn *c, struct ws_replayed *x)
{
    c->replay = x->rp;
    c->replay_answered = false;
    store_replay_begin(x->rp);
    x->h->fn(c, x->id, x->msg);
    int sent = store_replay_end(x->rp);
    c->replay = NULL;
    if (sent == 0 || c->replay_answered) {
        replayed_free(x);
        return true;
    }
    c->replay_held = x;
    store_replay_rerun(x->rp, REPLAY_RUNS_MAX, replay_ready, GSIZE_TO_POINTER(c->serial));
    return false;
}

/* The messages that waited behind a replayed request run, in order,
 * until one of them waits for its reads in turn. */
static void replay_drain(struct conn *c)
{
    while (!c->replay_held && !c->close_code && !g_queue_is_empty(&c->replay_queue)) {
        GBytes *b = g_queue_pop_head(&c->replay_queue);
        gsize len = 0;
        const char *text = g_bytes_get_data(b, &len);
        c->replay_queue_bytes -= len;
        dispatch(c, text, len, true);
        g_bytes_unref(b);
    }
}

static void replay_ready(void *ud)
{
    struct conn *c = conn_find(GPOINTER_TO_SIZE(ud));
    if (!c || !c->replay_held)
        return; /* gone meanwhile */
    struct ws_replayed *x = c->replay_held;
    c->replay_held = NULL;
    if (replay_run(c, x))
        replay_drain(c);
}

/* Runs handler h for a request, against a replay of its reads if h is
 * replayed and the store's reads travel. */
static void handle(struct conn *c, const struct ws_handler *h, json_t *id, json_t *msg)
{
    if (!h->replay || !store_replays(server.store)) {
        h->fn(c, id, msg);
        return;
    }
    struct ws_replayed *x = g_new0(struct ws_replayed, 1);
    *x = (struct ws_replayed){store_replay_new(server.store), h, json_incref(id), json_incref(msg)};
    replay_run(c, x);
}

/* While a request waits for its reads, the connection's next messages
 * wait behind it (a bounded number and size; those beyond are refused
 * busy). True if text was kept or refused. */
static bool replay_holds(struct conn *c, const char *text, size_t len)
{
    if (!c->replay_held && g_queue_is_empty(&c->replay_queue))
        return false;
    bool rated = conn_rate_take(c, server.cfg.rate_per_s, server.cfg.rate_burst);
    if (rated && g_queue_get_length(&c->replay_queue) < REPLAY_QUEUE_MAX &&
        c->replay_queue_bytes + len <= REPLAY_QUEUE_BYTES) {
        c->limited_streak = 0; /* rated as it came, not when it runs */
        g_queue_push_tail(&c->replay_queue, g_bytes_new(text, len));
        c->replay_queue_bytes += len;
        return true;
    }
    struct envelope env;
    envelope_parse(text, len, &env);
    if (!rated) {
        rate_refuse(c, env.id);
    } else {
        c->limited_streak = 0;
        metrics_msg_in("busy");
        conn_reply_error(c, env.id, ERR_BUSY, "too many requests waiting for an earlier one");
    }
    json_decref(env.msg);
    return true;
}

/* Handles one complete text message; rated: its token was taken when it
 * came (it waited behind a replayed request). */
static void dispatch(struct conn *c, const char *text, size_t len, bool rated)
{
    struct envelope env;
    enum err_code err = envelope_parse(text, len, &env);

    if (!rated && !rate_ok(c, env.id))
        goto out;
    if (err != ERR_NONE) {
        metrics_msg_in("invalid");
        conn_reply_error(c, env.id, err, env.why);
        goto out;
    }
    bool gateway_msg = false;
    const struct ws_handler *h = find_handler(env.type, &gateway_msg);
    if (!h) {
        metrics_msg_in("unknown");
        conn_reply_error(c, env.id, ERR_BAD_REQUEST, "unknown message type");
        goto out;
    }
    metrics_msg_in(h->type);
    if (gateway_msg != (c->gateway_enterprise != NULL)) {
        bool known = c->authed || c->gateway_enterprise;
        conn_reply_error(c, env.id, known ? ERR_FORBIDDEN : ERR_UNAUTHORIZED,
                         c->gateway_enterprise
                             ? "a gateway connection sends only readings.post"
                             : "only gateway connections (auth.apikey) send this");
        goto out;
    }
    if (h->needs_auth && !c->authed) {
        conn_reply_error(c, env.id, ERR_UNAUTHORIZED,
                         "authenticate first (auth.login or auth.token)");
        goto out;
    }
    handle(c, h, env.id, env.msg);
out:
    json_decref(env.msg);
}

static void on_receive(struct conn *c, struct lws *wsi, const void *in, size_t len)
{
    bool first = lws_is_first_fragment(wsi);
    bool final = lws_is_final_fragment(wsi);
    if (first) {
        c->rx_binary = lws_frame_is_binary(wsi);
        c->rx_overflow = false;
        if (c->rx)
            g_byte_array_set_size(c->rx, 0);
    }
    if (c->close_code)
        return; /* closing: drop input */
    if (!c->rx_overflow && !c->rx_binary) {
        size_t have = c->rx ? c->rx->len : 0;
        size_t limit =
            (size_t)(c->gateway_enterprise ? server.cfg.readings_max_body : server.cfg.max_frame);
        if (have + len > limit) {
            c->rx_overflow = true;
            conn_reply_error(c, NULL, ERR_TOO_LARGE, "message larger than the frame limit");
            conn_close(c, 1009, "message too large");
            return;
        }
        if (!c->rx)
            c->rx = g_byte_array_sized_new((guint)len);
        g_byte_array_append(c->rx, in, (guint)len);
    }
    if (!final) {
        uvsource_more(); /* read the rest in this turn if it is there */
        return;
    }
    if (c->rx_binary) {
        metrics_msg_in("binary");
        conn_reply_error(c, NULL, ERR_BAD_REQUEST, "binary frames are not accepted");
    } else if (!c->rx_overflow && c->rx &&
               !replay_holds(c, (const char *)c->rx->data, c->rx->len)) {
        dispatch(c, (const char *)c->rx->data, c->rx->len, false);
    }
    /* Return the assembly buffer to the allocator: idle connections hold none. */
    if (c->rx) {
        g_byte_array_free(c->rx, TRUE);
        c->rx = NULL;
    }
}

static bool path_is_ws(struct lws *wsi)
{
    char uri[32];
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
        return false;
    char *q = strchr(uri, '?');
    if (q)
        *q = '\0';
    return strcmp(uri, "/ws") == 0;
}

static void peer_of(struct lws *wsi, char *out, size_t len)
{
    out[0] = '\0';
    lws_get_peer_simple(wsi, out, len);
    if (!out[0])
        g_strlcpy(out, "?", len);
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct ws_pss *pss = user;
    struct conn *c = pss ? pss->conn : NULL;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (!path_is_ws(wsi))
            return 1; /* refuse the upgrade */
        if (server.stopping || conn_count() >= (unsigned)server.cfg.max_conns) {
            log_warn("ws", "refusing connection: %s",
                     server.stopping ? "shutting down" : "max_conns reached");
            return 1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED: {
        char peer[64];
        peer_of(wsi, peer, sizeof(peer));
        pss->conn = c = conn_new(wsi, peer);
        c->auth_timer = g_timeout_add_seconds((guint)server.cfg.auth_timeout_s, auth_timeout, c);
        metrics_conn("none", 1);
        log_debug("ws", "conn=%" G_GUINT64_FORMAT " peer=%s open", c->serial, c->peer);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        if (c) {
            c->last_rx_ms = clock_mono_ms();
            on_receive(c, wsi, in, len);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (c)
            c->last_rx_ms = clock_mono_ms();
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c ? conn_write_pending(c) : 0;
    case LWS_CALLBACK_CLOSED:
        if (!c)
            return 0;
        if (c->authed) {
            /* Only the device's current connection going away takes the
             * device offline; a replaced one has a successor (here, or on
             * another node: then it is still this node's current one, but
             * closed 4409 for the device's newer login there, which its
             * calls have heard of already). */
            bool current = presence_conn_of(c->user_id, c->device_id) == c;
            presence_remove(c->user_id, c, c->device_id);
            if (current && c->close_code != 4409)
                call_device_offline(c->user_id, c->device_id);
        }
        presence_unsubscribe_all(c);
        feed_drop_conn(c);
        g_clear_pointer(&c->replay_held, replayed_free);
        metrics_conn(c->authed ? c->role : c->gateway_enterprise ? "gateway" : "none", -1);
        if (c->gateway_enterprise)
            log_info("ws", "conn=%" G_GUINT64_FORMAT " gateway key=%s enterprise=%s closed",
                     c->serial, c->gateway_key_id, c->gateway_enterprise);
        else
            log_info("ws", "conn=%" G_GUINT64_FORMAT " user=%s device=%s closed", c->serial,
                     c->user_id ? c->user_id : "-", c->device_id ? c->device_id : "-");
        conn_free(c);
        pss->conn = NULL;
        return 0;
    default:
        return 0;
    }
}

static void close_one(struct conn *c, void *ud)
{
    const char *reason = ud;
    conn_close(c, 1001, reason);
}

void ws_close_all(const char *reason)
{
    conn_each(close_one, (void *)reason);
}

static void keepalive_one(struct conn *c, void *ud)
{
    int64_t now = *(int64_t *)ud;
    int64_t idle = now - c->last_rx_ms;
    int64_t interval = (int64_t)server.cfg.ping_interval_s * 1000;
    if (idle >= interval * 5 / 2) {
        log_info("ws",
                 "conn=%" G_GUINT64_FORMAT " user=%s silent for %" G_GINT64_FORMAT " ms, dropping",
                 c->serial, c->user_id ? c->user_id : "-", idle);
        /* The peer is gone or stuck: no close handshake to wait for. We
         * are on a GLib timer, outside any callback of this connection,
         * where closing at once is safe; conn_each copes with the free. */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
    } else if (idle >= interval && now - c->last_ping_ms >= interval) {
        c->last_ping_ms = now;
        conn_ping(c);
    }
}

void ws_keepalive(void)
{
    int64_t now = clock_mono_ms();
    conn_each(keepalive_one, &now);
}

size_t ws_pss_size(void)
{
    return sizeof(struct ws_pss);
}
