/* One WebSocket connection of a device: who it is (once authenticated), its
 * bounded send queue, its message-rate bucket and its close state. The
 * WebSocket transport (ws.c) feeds it; the handlers answer through
 * conn_reply…() and conn_send(); nothing else writes to a socket.
 *
 * Connections are found by serial (never reused), so a completion that
 * arrives after the connection closed finds nothing instead of freed
 * memory. */
#ifndef YJT_CONN_H
#define YJT_CONN_H

#include "common/errors.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct lws;

struct conn {
    uint64_t serial;
    struct lws *wsi;
    char peer[64];
    int64_t connected_at;

    bool authed;
    bool login_pending;
    char *user_id;
    char *role;
    char *org;
    char *device_id;
    char *platform;
    char *jti;
    int64_t token_ver;
    int64_t token_exp;
    int64_t online_ms; /* when it authenticated: its presence's since */
    /* A data gateway (auth.apikey) instead of a user: its enterprise and
     * key id (never the key). Such a connection sends only messages whose
     * handler is for_gateway, and has authed false. */
    char *gateway_enterprise;
    char *gateway_key_id;

    GByteArray *rx; /* the message being assembled from fragments */
    bool rx_binary;
    bool rx_overflow;

    struct out_msg *out_head, *out_tail; /* the send queue (conn.c), oldest first */
    size_t out_bytes;

    double tokens; /* rate bucket */
    int64_t refill_ms;
    int limited_streak;

    int64_t last_rx_ms;   /* monotonic: any frame or pong from the peer */
    int64_t last_ping_ms; /* monotonic */
    bool ping_due;
    bool deferred; /* its next message waits for a store flush (commit.h) */

    /* Push delivery: once the device has sent push.resume (tracking), only
     * the push right after push_cursor goes out live, so a device that is
     * still catching up never sees a gap; before that it follows live. */
    int64_t push_cursor;
    bool push_tracking;
    /* With several nodes, pushes of one user reach a node out of order
     * (each node stores and announces its own): the cursor is set at
     * login, or by push.resume, and a push after a gap first has the gap
     * read from the inbox (push_api.c). push_more: the last resume
     * answered more: true, so the device is still catching up. */
    bool push_cursor_set;
    bool push_more;
    /* Reads of the connection's position under way (the inbox's head at
     * login, a push.resume; without waiting, on Redis): pushes that
     * arrive meanwhile are held here (struct held_push*, push_api.c) and
     * delivered once none is. */
    int push_holds;
    bool push_resuming;
    GQueue push_held;

    /* A request run against a replay of its reads (ws.c, a handler marked
     * replay, on a store whose reads travel): the replay while a run goes
     * on (what the connection is sent is dropped once the run sent a
     * read, and replay_answered set if it answered before), the request
     * while it waits for its reads, and the messages that came meanwhile,
     * in order (GBytes*): they run after it. */
    struct store_replay *replay;
    bool replay_answered;
    struct ws_replayed *replay_held;
    GQueue replay_queue;
    size_t replay_queue_bytes;

    int close_code; /* nonzero once a close is scheduled */
    bool close_started;
    char close_reason[96];
    guint auth_timer;
};

void conn_registry_init(void);
void conn_registry_shutdown(void);
struct conn *conn_new(struct lws *wsi, const char *peer);
/* Forgets and frees c (the transport has closed). */
void conn_free(struct conn *c);
struct conn *conn_find(uint64_t serial);

/* A request answered later (after a read sent without waiting): its
 * connection, found again by serial (NULL once gone), and its id. */
struct conn_req {
    uint64_t serial;
    json_t *id;
};
struct conn_req *conn_req_new(struct conn *c, json_t *id);
struct conn *conn_req_conn(const struct conn_req *r);
/* Frees r (NULL is fine). */
void conn_req_free(struct conn_req *r);
/* Answers r's request, if its connection is still there: fields (stolen;
 * NULL is fine) when e is ERR_NONE, else the error e with why; frees r. */
void conn_req_answer(struct conn_req *r, enum err_code e, const char *why, json_t *fields);
unsigned conn_count(void);
/* Calls fn for every open connection; fn may close connections. */
void conn_each(void (*fn)(struct conn *c, void *ud), void *ud);

/* Queues msg (reference stolen) for sending; label is its type for
 * metrics. A connection whose queue passes send_queue_max is closed 1008. */
void conn_send(struct conn *c, json_t *msg, const char *label);
/* conn_send() of a message already serialised (len bytes of text, copied). */
void conn_send_text(struct conn *c, const char *text, size_t len, const char *label);
/* conn_send_text(), but written to the socket at once if nothing is queued,
 * the store holds nothing written that is not durable yet, and the socket
 * takes it. For many sends in one turn (a push fan-out): each message
 * that waits for a writeable callback costs two changes of the socket's
 * poll set, about as much as the write itself. */
void conn_send_now(struct conn *c, const char *text, size_t len, const char *label);
/* {"re": id, "ok": true, ...fields}; fields (stolen) may be NULL. */
void conn_reply(struct conn *c, json_t *id, json_t *fields);
/* {"re": id, "ok": false, "error": {"code", "message"}}; id may be NULL. */
void conn_reply_error(struct conn *c, json_t *id, enum err_code code, const char *message);
/* Schedules a close with code and reason after what is already queued. */
void conn_close(struct conn *c, int code, const char *reason);
/* Writes the next queued message; returns -1 when the transport should
 * close the connection now. Called from the writeable callback. */
int conn_write_pending(struct conn *c);
/* Called when a store flush reports: the connections whose next message
 * waited for it write now. */
void conn_wake_deferred(void);
/* Around the deliveries of one push to many users, queued in one turn:
 * between begin and end, messages that are durable already wait for the
 * next pump instead of a writeable turn, and each pump (or the end) sends
 * what is ready through the send pool, whose writers carry on while the
 * loop queues the next ones. Without a pool, nothing changes. End before
 * the turn is over: it waits for the writers. */
bool conn_fanout_possible(void); /* a send pool is there */
void conn_fanout_begin(void);
void conn_fanout_pump(void);
void conn_fanout_end(void);
/* A batch failed (commit_failed()): every connection drops the messages
 * queued with it and after it, and is closed 1011 after the rest. */
void conn_drop_failed(void);
/* Sends a WebSocket ping at the next writeable turn. */
void conn_ping(struct conn *c);
/* Takes one token from the rate bucket; false if empty. */
bool conn_rate_take(struct conn *c, int per_s, int burst);

#endif
