/*
 * worker.c: one yjt-load worker process.
 *
 * main.c forks one worker per share of the connections and calls
 * load_run_worker() in it.  The worker drives a single libwebsockets context
 * on a libuv loop (epoll: lws's own poll() loop would walk all of the
 * worker's sockets at every turn, most of a core with 10,000 of them):
 * it starts connections at the configured rate and in-flight limit, spreads
 * them over the source addresses, logs each one in (auth.login or
 * auth.token), records handshake and login times and errors, and tells the
 * parent over its up pipe once every connection has settled ("S <ready>").
 * When the parent writes to (or closes) the down pipe, or the deadline
 * passes, it closes its connections a batch at a time and writes one JSON
 * report line, which report.c merges with the others.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "cli.h"
#include "load.h"
#include "rawrx.h"

#include <libwebsockets.h>
#include <jansson.h>
#include <uv.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUBPROTOCOL "yjt.v1"
#define RX_BUFFER_SIZE 4096
#define MAX_REPLY_BYTES (256 * 1024) /* biggest login reply we will buffer */
#define ERR_SLOTS 16
#define TICK_BUSY_US 1000
#define TICK_IDLE_US 20000

/*
 * lws keeps per-connection timeouts in one sorted list, so putting thousands
 * of connections into a state with a timeout at once (a close waiting for
 * its acknowledgement) costs quadratic time.  Closes are therefore issued a
 * batch at a time, like connects.
 */
#define CLOSE_INFLIGHT 256

/* ------------------------------------------------------------------------ */
/* worker process: one lws context driving a share of the connections        */

enum conn_state {
    CS_IDLE = 0,   /* not started yet */
    CS_CONNECTING, /* TCP / TLS / WebSocket handshake in progress */
    CS_OPEN,       /* handshake done, login reply pending */
    CS_READY,      /* logged in (or open, with --no-auth) */
    CS_FAILED,     /* never became ready */
    CS_DROPPED,    /* was ready, closed by the server before we closed it */
    CS_CLOSED,     /* was ready, closed by us at the end */
};

struct conn {
    struct lws *wsi;
    char *rx; /* partial login reply, only while it is fragmented */
    uint32_t rx_len;
    uint32_t index;      /* index within this worker */
    uint64_t t_start_ns; /* connection attempt started */
    uint64_t t_login_ns; /* login message written */
    uint8_t state;
    uint8_t closing;     /* close with a close frame when next writeable */
    uint8_t established; /* the WebSocket handshake completed */
    uint8_t peer_closed; /* the server sent a close frame (already recorded) */
    uint8_t feed_sent;   /* --feed: feed.subscribe written */
    uint8_t raw;         /* --raw-rx: read by rawrx through raw_fd */
    int raw_fd;
};

struct err_slot {
    char text[96];
    unsigned count;
};

enum worker_phase { WP_CONNECT, WP_HOLD, WP_CLOSING };

struct worker {
    const struct load_config *cfg;
    int proc_index;
    int first_global; /* global index of this worker's first connection */
    int count;
    struct conn *conns;
    struct lws_context *ctx;
    lws_sorted_usec_list_t tick;
    int up_fd;   /* results to the parent */
    int down_fd; /* commands from the parent (non-blocking) */
    enum worker_phase phase;
    bool stop;
    bool settled_reported;
    int next_start;
    int inflight;
    int settled;
    int connected;
    int ready;
    int failed;
    int dropped;
    int closed_clean;
    int open_wsi;
    int closing_open; /* closes requested, socket not gone yet */
    int close_next;   /* next connection to close in the close phase */
    uint64_t t_begin_ns;
    uint64_t t_last_open_ns;
    uint64_t t_last_login_ns;
    uint64_t connect_deadline_ns;
    uint64_t final_deadline_ns; /* everything must be closed by then */
    uint64_t close_deadline_ns;
    uint64_t close_grace_ns;
    /* --push-log: one (created_at ms, received wall-clock us) per push */
    int64_t *push_created;
    int64_t *push_recv_us;
    size_t push_n, push_cap;
    unsigned push_unparsed;
    uint32_t *hs_us;
    int hs_n;
    uint32_t *login_us;
    int login_n;
    struct err_slot errs[ERR_SLOTS];
    unsigned err_other;
    bool capture_token; /* keep the token of the login reply (--token-from-login) */
    char *token;
    struct rawrx *rx; /* --raw-rx */
};

static struct worker the_worker;

static void record_error(struct worker *w, const char *text)
{
    char clean[96];
    size_t n = 0;

    for (const char *p = text; *p && n + 1 < sizeof(clean); p++)
        clean[n++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
    while (n > 0 && clean[n - 1] == ' ')
        n--;
    clean[n] = '\0';

    for (int i = 0; i < ERR_SLOTS; i++) {
        if (w->errs[i].count && !strcmp(w->errs[i].text, clean)) {
            w->errs[i].count++;
            return;
        }
        if (!w->errs[i].count) {
            memcpy(w->errs[i].text, clean, n + 1);
            w->errs[i].count = 1;
            return;
        }
    }
    w->err_other++;
}

static bool conn_unsettled(const struct conn *c)
{
    return c->state == CS_IDLE || c->state == CS_CONNECTING || c->state == CS_OPEN;
}

/* Moves an unsettled connection to CS_READY or CS_FAILED, keeping counts. */
static void conn_settle(struct worker *w, struct conn *c, enum conn_state to)
{
    if (!conn_unsettled(c))
        return;
    if (c->state != CS_IDLE)
        w->inflight--;
    c->state = (uint8_t)to;
    w->settled++;
    if (to == CS_READY)
        w->ready++;
    else
        w->failed++;
}

static void conn_fail(struct worker *w, struct conn *c, const char *why)
{
    if (!conn_unsettled(c))
        return;
    record_error(w, why);
    conn_settle(w, c, CS_FAILED);
}

static void conn_detach(struct worker *w, struct conn *c)
{
    if (c->raw) { /* lws closed it: the socket goes with our descriptor too */
        if (w->rx) /* else freed with the reader already */
            rawrx_drop(w->rx, c->raw_fd);
        c->raw = 0;
    }
    if (c->wsi) {
        c->wsi = NULL;
        w->open_wsi--;
        if (c->closing)
            w->closing_open--;
    }
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
}

/* Asks lws to close the connection cleanly (close frame) from WRITEABLE. */
static void conn_request_close(struct worker *w, struct conn *c)
{
    if (!c->wsi || c->closing || c->peer_closed) /* the server's close goes on */
        return;
    c->closing = 1;
    w->closing_open++;
    if (c->raw) /* lws's reading is off: the reader says the close */
        rawrx_close(w->rx, c->raw_fd);
    else if (!c->established) /* nothing to say a close frame on: just drop it */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    else
        lws_callback_on_writable(c->wsi);
}

static struct conn *conn_of(struct lws *wsi, void *user)
{
    if (user)
        return user;
    return wsi ? lws_get_opaque_user_data(wsi) : NULL;
}

static uint32_t elapsed_us(uint64_t from_ns, uint64_t to_ns)
{
    uint64_t us = (to_ns - from_ns) / 1000u;
    return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int send_login(struct worker *w, struct conn *c, struct lws *wsi)
{
    const struct load_config *cfg = w->cfg;
    unsigned char buf[LWS_PRE + 2048];
    char device_id[48];
    json_t *msg;
    size_t len;

    if (w->capture_token)
        snprintf(device_id, sizeof(device_id), "load-token-%u", c->index);
    else
        snprintf(device_id, sizeof(device_id), "load-%d-%u", w->proc_index, c->index);
    if (cfg->token) {
        /*
         * yjtd keeps one connection per user and device (a second one
         * replaces the first, close code 4409), so even with a shared token
         * every connection names its own device.
         */
        msg = json_pack("{s:i, s:s, s:s, s:s, s:s}", "id", 1, "type", "auth.token", "token",
                        cfg->token, "device_id", device_id, "platform", "load");
    } else {
        char name[MAX_ARG_STRING + 16];
        if (cfg->users > 0)
            snprintf(name, sizeof(name), "%s%d", cfg->user,
                     (w->first_global + (int)c->index) % cfg->users);
        else
            snprintf(name, sizeof(name), "%s", cfg->user);
        msg =
            json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "id", 1, "type", "auth.login", "username",
                      name, "password", cfg->password, "device_id", device_id, "platform", "load");
    }
    if (!msg) {
        conn_fail(w, c, "cannot build login message");
        return -1;
    }
    len = json_dumpb(msg, (char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE, JSON_COMPACT);
    json_decref(msg);
    if (len == 0 || len > sizeof(buf) - LWS_PRE) {
        conn_fail(w, c, "login message too long");
        return -1;
    }
    c->t_login_ns = load_mono_ns();
    if (lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len) {
        conn_fail(w, c, "write of login message failed");
        return -1;
    }
    return 0;
}

/* --feed: follows the enterprise's 3D feed once logged in. */
static int send_feed_subscribe(struct worker *w, struct conn *c, struct lws *wsi)
{
    unsigned char buf[LWS_PRE + 512];
    json_t *msg = json_pack("{s:i, s:s, s:s, s:f}", "id", 2, "type", "feed.subscribe",
                            "enterprise", w->cfg->feed, "max_hz",
                            w->cfg->feed_hz > 0 ? w->cfg->feed_hz : 10.0);
    size_t len = msg ? json_dumpb(msg, (char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
                                  JSON_COMPACT)
                     : 0;
    json_decref(msg);
    c->feed_sent = 1;
    if (len == 0 || len > sizeof(buf) - LWS_PRE ||
        lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len) {
        record_error(w, "write of feed.subscribe failed");
        return -1;
    }
    return 0;
}

/* --raw-rx: from now on the connection is read by rawrx, through a
 * descriptor of its own for the same socket; lws stops reading it. Taken
 * as soon as the login is written, before its reply can arrive: nothing
 * the server sends is left in lws's buffers. */
static void take_raw(struct worker *w, struct conn *c)
{
    int fd = dup(lws_get_socket_fd(c->wsi));
    if (fd < 0 || rawrx_take(w->rx, fd, c) != 0) {
        record_error(w, "raw reading: cannot take the socket");
        return;
    }
    c->raw = 1;
    c->raw_fd = fd;
    lws_rx_flow_control(c->wsi, 0);
}

static void record_push(struct worker *w, const char *data, size_t len);

static void handle_message(struct worker *w, struct conn *c, const char *data, size_t len);

static void raw_text(void *conn, const char *data, size_t len, void *ud)
{
    struct worker *w = ud;
    struct conn *c = conn;
    if (c->state == CS_OPEN)
        handle_message(w, c, data, len);
    else if (c->state == CS_READY && w->cfg->push_log)
        record_push(w, data, len);
}

/* The server closed a connection read raw (or its socket failed): lws
 * drops its side, and counts it as dropped. */
static void raw_gone(void *conn, unsigned code, void *ud)
{
    struct worker *w = ud;
    struct conn *c = conn;
    char why[64];
    c->raw = 0;
    if (c->closing) { /* our close, answered: lws lets go of its side */
        if (c->wsi)
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    c->peer_closed = 1;
    snprintf(why, sizeof(why), "%s: close %u",
             c->state == CS_READY ? "closed by server while idle"
                                  : "closed by server before the login reply",
             code);
    record_error(w, why);
    if (c->wsi)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Handles one complete text message received while the login is pending. */
static void handle_message(struct worker *w, struct conn *c, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, 0, &jerr);
    json_t *re, *ok;
    char why[96];

    if (!msg || !json_is_object(msg)) {
        json_decref(msg);
        conn_fail(w, c, "server sent invalid JSON before the login reply");
        conn_request_close(w, c);
        return;
    }
    re = json_object_get(msg, "re");
    if (!json_is_integer(re) || json_integer_value(re) != 1) {
        json_decref(msg); /* some other event: ignore it */
        return;
    }
    ok = json_object_get(msg, "ok");
    if (json_is_true(ok)) {
        uint64_t now = load_mono_ns();
        w->login_us[w->login_n++] = elapsed_us(c->t_login_ns, now);
        w->t_last_login_ns = now;
        if (w->capture_token && !w->token) {
            const char *token = json_string_value(json_object_get(msg, "token"));
            w->token = token ? strdup(token) : NULL;
        }
        conn_settle(w, c, CS_READY);
        if (w->cfg->feed)
            lws_callback_on_writable(c->wsi);
    } else {
        const char *code =
            json_string_value(json_object_get(json_object_get(msg, "error"), "code"));
        snprintf(why, sizeof(why), "login refused: %s", code ? code : "(no error code)");
        conn_fail(w, c, why);
        conn_request_close(w, c);
    }
    json_decref(msg);
}

/* --push-log: notes the arrival of a push event (a complete text
 * message) with the server's created_at, for the push benchmarks; with
 * --feed, of a feed.delta with its first sensor's reading time. */
static void record_push(struct worker *w, const char *data, size_t len)
{
    static const char push_type[] = "\"type\":\"push\"", created[] = "\"created_at\":";
    static const char feed_type[] = "\"type\":\"feed.delta\"", ts_field[] = "\"ts\":";
    const char *type = w->cfg->feed ? feed_type : push_type;
    const char *field = w->cfg->feed ? ts_field : created;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!memmem(data, len, type, strlen(type)))
        return;
    const char *p = memmem(data, len, field, strlen(field));
    if (!p) {
        w->push_unparsed++;
        return;
    }
    if (w->push_n == w->push_cap) {
        size_t cap = w->push_cap ? w->push_cap * 2 : 4096;
        int64_t *a = realloc(w->push_created, cap * sizeof(int64_t));
        if (a)
            w->push_created = a;
        int64_t *b = realloc(w->push_recv_us, cap * sizeof(int64_t));
        if (b)
            w->push_recv_us = b;
        if (!a || !b)
            return;
        w->push_cap = cap;
    }
    w->push_created[w->push_n] = strtoll(p + strlen(field), NULL, 10);
    w->push_recv_us[w->push_n++] = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void write_push_log(struct worker *w)
{
    char path[MAX_ARG_STRING + 32];
    snprintf(path, sizeof(path), "%s.%d", w->cfg->push_log, w->proc_index);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "yjt-load[%d]: cannot write %s\n", w->proc_index, path);
        return;
    }
    for (size_t i = 0; i < w->push_n; i++)
        fprintf(f, "%lld %lld\n", (long long)w->push_created[i], (long long)w->push_recv_us[i]);
    fclose(f);
    if (w->push_unparsed)
        fprintf(stderr, "yjt-load[%d]: %u push events without created_at\n", w->proc_index,
                w->push_unparsed);
}

static int on_receive(struct worker *w, struct conn *c, struct lws *wsi, const void *in, size_t len)
{
    bool complete = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    char *grown;

    if (c->state == CS_READY && w->cfg->push_log && complete && lws_is_first_fragment(wsi) &&
        !lws_frame_is_binary(wsi)) {
        record_push(w, in, len);
        return 0;
    }
    if (c->state != CS_OPEN || lws_frame_is_binary(wsi))
        return 0; /* after login everything is ignored */

    if (complete && c->rx_len == 0) {
        handle_message(w, c, in, len);
        return 0;
    }
    if ((size_t)c->rx_len + len > MAX_REPLY_BYTES) {
        conn_fail(w, c, "message before login reply too large");
        return -1;
    }
    grown = realloc(c->rx, (size_t)c->rx_len + len + 1);
    if (!grown) {
        conn_fail(w, c, "out of memory");
        return -1;
    }
    c->rx = grown;
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += (uint32_t)len;
    if (complete) {
        handle_message(w, c, c->rx, c->rx_len);
        free(c->rx);
        c->rx = NULL;
        c->rx_len = 0;
    }
    return 0;
}

static int on_lws_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct worker *w = &the_worker;
    struct conn *c;
    char why[128];

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        c = conn_of(wsi, user);
        if (!c)
            return 0;
        conn_detach(w, c);
        snprintf(why, sizeof(why), "connect: %.100s", in ? (const char *)in : "unknown error");
        conn_fail(w, c, why);
        return 0;

    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        uint64_t now = load_mono_ns();
        c = conn_of(wsi, user);
        if (!c || c->state != CS_CONNECTING)
            return -1; /* given up on already */
        if (!c->wsi) {
            c->wsi = wsi;
            w->open_wsi++;
        }
        c->established = 1;
        w->connected++;
        w->hs_us[w->hs_n++] = elapsed_us(c->t_start_ns, now);
        w->t_last_open_ns = now;
        if (w->cfg->no_auth) {
            conn_settle(w, c, CS_READY);
        } else {
            c->state = CS_OPEN;
            lws_callback_on_writable(wsi);
        }
        return 0;
    }

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        c = conn_of(wsi, user);
        if (!c)
            return 0;
        if (c->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"done", 4);
            return -1;
        }
        if (c->state == CS_OPEN && !c->t_login_ns) {
            int rc = send_login(w, c, wsi);
            if (rc == 0 && w->rx)
                take_raw(w, c);
            return rc;
        }
        if (c->state == CS_READY && w->cfg->feed && !c->feed_sent)
            return send_feed_subscribe(w, c, wsi);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        c = conn_of(wsi, user);
        if (!c)
            return 0;
        return on_receive(w, c, wsi, in, len);

    case LWS_CALLBACK_CLIENT_CLOSED:
        c = conn_of(wsi, user);
        if (!c)
            return 0;
        conn_detach(w, c);
        if (c->state == CS_READY) {
            if (c->closing) {
                c->state = CS_CLOSED;
                w->closed_clean++;
            } else {
                c->state = CS_DROPPED;
                w->dropped++;
                if (!c->peer_closed)
                    record_error(w, "connection lost while idle");
            }
        } else if (c->peer_closed) {
            conn_settle(w, c, CS_FAILED);
        } else {
            conn_fail(w, c,
                      c->state == CS_OPEN ? "connection lost before the login reply"
                                          : "connection lost during handshake");
        }
        return 0;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        /* the server closes: keep its close code and reason */
        const unsigned char *p = in;
        unsigned code = (p && len >= 2) ? (unsigned)(p[0] << 8 | p[1]) : 0;
        int reason_len = (p && len > 2) ? (int)(len - 2 > 60 ? 60 : len - 2) : 0;

        c = conn_of(wsi, user);
        if (!c || c->closing || c->peer_closed)
            return 0;
        c->peer_closed = 1;
        snprintf(why, sizeof(why), "%s: close %u %.*s",
                 c->state == CS_READY  ? "closed by server while idle"
                 : c->state == CS_OPEN ? "closed by server before the login reply"
                                       : "closed by server",
                 code, reason_len, reason_len ? (const char *)p + 2 : "");
        if (c->state == CS_READY || conn_unsettled(c))
            record_error(w, why);
        return 0;
    }

    case LWS_CALLBACK_WSI_DESTROY:
        /*
         * Some ways a client connection can die before its handshake
         * finished (for example killed while waiting for the server's
         * reply) produce no CONNECTION_ERROR or CLOSED; this catches them.
         */
        c = conn_of(wsi, user);
        if (!c || c->wsi != wsi)
            return 0;
        conn_detach(w, c);
        conn_fail(w, c, "dropped by lws before the handshake finished (its timeout)");
        return 0;

    default:
        return 0;
    }
}

static const struct lws_protocols worker_protocols[] = {
    {SUBPROTOCOL, on_lws_event, 0, RX_BUFFER_SIZE, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/*
 * No lws "validity" (idle ping / hangup) timers on our connections: lws keeps
 * every connection's timer in one sorted linked list, so with thousands of
 * connections each (re)arm walks thousands of entries and connecting slows
 * to a crawl.  The server's own pings are still answered by lws.
 */
static const lws_retry_bo_t no_validity_timers = {
    .secs_since_valid_ping = 0,
    .secs_since_valid_hangup = 0,
};

static void start_conn(struct worker *w, struct conn *c, uint64_t now)
{
    const struct load_config *cfg = w->cfg;
    struct lws_client_connect_info ci;
    struct lws *wsi;

    memset(&ci, 0, sizeof(ci));
    ci.context = w->ctx;
    ci.address = cfg->address;
    ci.port = cfg->ports[(w->first_global + (int)c->index) % cfg->nports];
    ci.path = cfg->path;
    ci.host = cfg->host;
    ci.origin = cfg->host;
    ci.protocol = SUBPROTOCOL;
    ci.userdata = c;
    ci.opaque_user_data = c;
    ci.retry_and_idle_policy = &no_validity_timers;
    if (cfg->sources > 0)
        ci.iface = load_source_names[(w->first_global + (int)c->index) % cfg->sources];
    if (cfg->tls) {
        ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
                            LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_INSECURE;
        ci.alpn = "http/1.1";
    }

    c->state = CS_CONNECTING;
    c->t_start_ns = now;
    w->inflight++;

    wsi = lws_client_connect_via_info(&ci);
    if (!wsi) {
        conn_fail(w, c, "connect: lws_client_connect_via_info failed");
        return;
    }
    if (c->state == CS_CONNECTING && !c->wsi) {
        c->wsi = wsi;
        w->open_wsi++;
    }
}

static void start_more(struct worker *w, uint64_t now)
{
    const struct load_config *cfg = w->cfg;
    long budget = w->count - w->next_start;
    long room = cfg->inflight - w->inflight;

    if (cfg->rate > 0) {
        double elapsed = (double)(now - w->t_begin_ns) / 1e9;
        long due = (long)(elapsed * cfg->rate) + 1;
        if (due - w->next_start < budget)
            budget = due - w->next_start;
    }
    if (room < budget)
        budget = room;
    while (budget-- > 0 && w->next_start < w->count)
        start_conn(w, &w->conns[w->next_start++], now);
}

/* Gives up on every connection that is not settled yet. */
static void abort_unsettled(struct worker *w, const char *why_idle, const char *why_connecting,
                            const char *why_open)
{
    for (int i = 0; i < w->count; i++) {
        struct conn *c = &w->conns[i];
        switch (c->state) {
        case CS_IDLE:
            conn_fail(w, c, why_idle);
            break;
        case CS_CONNECTING:
            conn_fail(w, c, why_connecting);
            conn_request_close(w, c);
            break;
        case CS_OPEN:
            conn_fail(w, c, why_open);
            conn_request_close(w, c);
            break;
        default:
            break;
        }
    }
}

static void report_settled(struct worker *w)
{
    char line[32];
    int n;

    if (w->settled_reported)
        return;
    w->settled_reported = true;
    n = snprintf(line, sizeof(line), "S %d\n", w->ready);
    if (write(w->up_fd, line, (size_t)n) != n && w->cfg->verbose)
        fprintf(stderr, "yjt-load[%d]: cannot report to parent: %s\n", w->proc_index,
                strerror(errno));
}

static void close_more(struct worker *w)
{
    while (w->closing_open < CLOSE_INFLIGHT && w->close_next < w->count)
        conn_request_close(w, &w->conns[w->close_next++]);
}

static void begin_closing(struct worker *w, uint64_t now)
{
    if (w->phase == WP_CLOSING)
        return;
    if (w->phase == WP_CONNECT) {
        abort_unsettled(w, "not started: stopped by parent", "handshake not finished when stopped",
                        "no login reply when stopped");
        report_settled(w);
    }
    w->phase = WP_CLOSING;
    w->close_deadline_ns = now + CLOSE_GRACE_NS;
    if (w->close_deadline_ns > w->final_deadline_ns)
        w->close_deadline_ns = w->final_deadline_ns > now ? w->final_deadline_ns : now;
    w->close_grace_ns = w->close_deadline_ns - now;
    close_more(w);
}

static void check_parent(struct worker *w, uint64_t now)
{
    char cmd[16];
    ssize_t n = read(w->down_fd, cmd, sizeof(cmd));

    if (n >= 0) /* a command, or the parent went away */
        begin_closing(w, now);
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        begin_closing(w, now);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct worker *w = lws_container_of(sul, struct worker, tick);
    uint64_t now = load_mono_ns();

    check_parent(w, now);

    if (w->phase == WP_CONNECT) {
        if (now >= w->connect_deadline_ns)
            abort_unsettled(w, "not started before the deadline",
                            "handshake not finished before the deadline",
                            "no login reply before the deadline");
        else
            start_more(w, now);
        if (w->settled == w->count) {
            report_settled(w);
            w->phase = WP_HOLD;
        }
    }
    if (w->phase == WP_CLOSING)
        close_more(w);
    if (w->phase == WP_CLOSING && (w->open_wsi <= 0 || now >= w->close_deadline_ns)) {
        if (w->cfg->verbose)
            fprintf(stderr, "yjt-load[%d]: close phase took %.2fs, %d connections still open\n",
                    w->proc_index, (double)(now - (w->close_deadline_ns - w->close_grace_ns)) / 1e9,
                    w->open_wsi);
        w->stop = true;
    }
    /* Always rearm: the loop below only looks at w->stop between turns. */
    lws_sul_schedule(w->ctx, 0, &w->tick, on_tick,
                     w->phase == WP_HOLD ? TICK_IDLE_US : TICK_BUSY_US);
}

static json_t *u32_array(const uint32_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static void report_final(struct worker *w)
{
    json_t *errs = json_object();
    json_t *r;
    char *text;

    for (int i = 0; i < ERR_SLOTS && w->errs[i].count; i++)
        json_object_set_new(errs, w->errs[i].text, json_integer(w->errs[i].count));
    if (w->err_other)
        json_object_set_new(errs, "(other errors)", json_integer(w->err_other));

    r = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:o, s:o, s:o}", "proc",
                  w->proc_index, "conns", w->count, "connected", w->connected, "ready", w->ready,
                  "failed", w->failed, "dropped", w->dropped, "closed_clean", w->closed_clean,
                  "t_begin_ns", (json_int_t)w->t_begin_ns, "t_last_open_ns",
                  (json_int_t)w->t_last_open_ns, "t_last_login_ns", (json_int_t)w->t_last_login_ns,
                  "hs_us", u32_array(w->hs_us, w->hs_n), "login_us",
                  u32_array(w->login_us, w->login_n), "errors", errs);
    if (r && w->token)
        json_object_set_new(r, "token", json_string(w->token));
    text = r ? json_dumps(r, JSON_COMPACT) : NULL;
    if (text) {
        cli_write_all(w->up_fd, text, strlen(text));
        cli_write_all(w->up_fd, "\n", 1);
    }
    free(text);
    json_decref(r);
}

int load_run_worker(const struct load_config *cfg, int proc_index, int first_global, int count,
                    uint64_t connect_deadline_ns, uint64_t final_deadline_ns, int up_fd,
                    int down_fd)
{
    struct worker *w = &the_worker;
    struct lws_context_creation_info info;
    uv_loop_t loop;
    void *loops[1] = {&loop};
    int level = 0;

    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    w->proc_index = proc_index;
    w->first_global = first_global;
    w->count = count;
    w->up_fd = up_fd;
    w->down_fd = down_fd;
    w->connect_deadline_ns = connect_deadline_ns;
    w->final_deadline_ns = final_deadline_ns;
    w->capture_token = proc_index < 0;
    w->conns = calloc((size_t)(count > 0 ? count : 1), sizeof(*w->conns));
    w->hs_us = calloc((size_t)(count > 0 ? count : 1), sizeof(uint32_t));
    w->login_us = calloc((size_t)(count > 0 ? count : 1), sizeof(uint32_t));
    if (!w->conns || !w->hs_us || !w->login_us || uv_loop_init(&loop) != 0) {
        fprintf(stderr, "yjt-load[%d]: out of memory\n", proc_index);
        return 1;
    }
    for (int i = 0; i < count; i++)
        w->conns[i].index = (uint32_t)i;

    if (cfg->verbose >= 1)
        level |= LLL_ERR | LLL_WARN;
    if (cfg->verbose >= 2)
        level |= LLL_NOTICE | LLL_INFO;
    lws_set_log_level(level, NULL);

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    info.pcontext = &w->ctx; /* lws clears it once destroyed */
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = worker_protocols;
    info.gid = -1;
    info.uid = -1;
    info.timeout_secs = 30;
    info.connect_timeout_secs = 20;
    /*
     * fd_limit_per_thread stays 0: lws then sizes its fd lookup table to the
     * (raised) RLIMIT_NOFILE and looks sockets up directly; a smaller limit
     * makes it fall back to a linear search, slow with thousands of sockets.
     */
    if (cfg->tls)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;

    w->ctx = lws_create_context(&info);
    if (!w->ctx) {
        fprintf(stderr, "yjt-load[%d]: lws_create_context failed\n", proc_index);
        return 1;
    }

    if (cfg->raw_rx) { /* plain, logging in, no feed: checked by main.c */
        w->rx = rawrx_new(&loop, raw_text, raw_gone, w);
        if (!w->rx) {
            fprintf(stderr, "yjt-load[%d]: cannot set up raw reading\n", proc_index);
            return 1;
        }
    }
    w->t_begin_ns = load_mono_ns();
    w->phase = WP_CONNECT;
    lws_sul_schedule(w->ctx, 0, &w->tick, on_tick, 1);

    while (!w->stop && w->ctx)
        uv_run(&loop, UV_RUN_ONCE);

    lws_sul_cancel(&w->tick);
    if (w->rx && rawrx_skipped(w->rx))
        fprintf(stderr, "yjt-load[%d]: %u frames passed over (fragments or binary)\n", proc_index,
                rawrx_skipped(w->rx));
    rawrx_free(w->rx); /* its handle closes during the turns below */
    w->rx = NULL;
    {
        uint64_t t = load_mono_ns();
        /* lws finishes destroying a context on a foreign loop from the
         * loop's own callbacks: turn it until it has (at most 5 s). */
        lws_context_destroy(w->ctx);
        while (w->ctx && load_mono_ns() < t + 5 * NS_PER_S && uv_run(&loop, UV_RUN_NOWAIT))
            usleep(1000);
        if (cfg->verbose)
            fprintf(stderr, "yjt-load[%d]: lws_context_destroy took %.2fs\n", proc_index,
                    (double)(load_mono_ns() - t) / 1e9);
    }
    report_final(w);
    if (cfg->push_log && proc_index >= 0)
        write_push_log(w);
    free(w->push_created);
    free(w->push_recv_us);
    return 0;
}
