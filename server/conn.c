/* Connections: registry, send queue, rate bucket, close handling. */
#include "server/conn.h"
#include "server/commit.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/store_replay.h"
#include "server/metrics.h"
#include "server/sendpool.h"
#include "server/server.h"

#include <errno.h>
#include <libwebsockets.h>
#include <string.h>

#define WRITES_PER_TURN 32
/* Connections released by one flush from which the send pool writes them. */
#define PARALLEL_MIN 256
/* The most bytes framed for the send pool at once. */
#define POOL_BATCH_BYTES (4u * 1024 * 1024)

/* A queued message. The queue is a list through next (one allocation per
 * message, none for its place in the queue). */
struct out_msg {
    struct out_msg *next;
    uint64_t gen; /* the store batch it may tell of: sent once that is durable */
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the text */
};

static bool defer_write(struct conn *c);
static void mark_deferred(struct conn *c);

static bool outq_empty(const struct conn *c)
{
    return c->out_head == NULL;
}

static void outq_push(struct conn *c, struct out_msg *m)
{
    c->out_bytes += m->len;
    m->next = NULL;
    if (c->out_tail)
        c->out_tail->next = m;
    else
        c->out_head = m;
    c->out_tail = m;
}

/* Takes the oldest message off the queue (the caller frees it). */
static struct out_msg *outq_pop(struct conn *c)
{
    struct out_msg *m = c->out_head;
    if (m) {
        c->out_head = m->next;
        if (!c->out_head)
            c->out_tail = NULL;
        c->out_bytes -= m->len;
    }
    return m;
}

/* Frees m and every message after it; prev is the one before m (NULL if
 * m is the oldest). */
static void outq_cut(struct conn *c, struct out_msg *prev, struct out_msg *m)
{
    while (m) {
        struct out_msg *next = m->next;
        c->out_bytes -= m->len;
        g_free(m);
        m = next;
    }
    if (prev)
        prev->next = NULL;
    else
        c->out_head = NULL;
    c->out_tail = prev;
}

static GHashTable *conns; /* serial -> struct conn* */
static uint64_t next_serial = 1;
static GArray *deferred;      /* serials of the connections that wait for a commit */
static unsigned char *frames; /* scratch for write_frames() */
static size_t frames_size;
static bool fanout; /* between conn_fanout_begin() and conn_fanout_end() */

void conn_registry_init(void)
{
    conns = g_hash_table_new(g_int64_hash, g_int64_equal);
    deferred = g_array_new(FALSE, FALSE, sizeof(uint64_t));
}

void conn_registry_shutdown(void)
{
    g_clear_pointer(&conns, g_hash_table_destroy);
    if (deferred)
        g_array_free(deferred, TRUE);
    deferred = NULL;
    g_clear_pointer(&frames, g_free);
    frames_size = 0;
}

struct conn *conn_new(struct lws *wsi, const char *peer)
{
    struct conn *c = g_new0(struct conn, 1);
    c->serial = next_serial++;
    c->wsi = wsi;
    g_strlcpy(c->peer, peer, sizeof(c->peer));
    c->connected_at = clock_now_ms();
    c->tokens = server.cfg.rate_burst;
    c->refill_ms = c->last_rx_ms = clock_mono_ms();
    g_queue_init(&c->push_held);
    g_queue_init(&c->replay_queue);
    g_hash_table_insert(conns, &c->serial, c);
    return c;
}

void conn_free(struct conn *c)
{
    g_hash_table_remove(conns, &c->serial);
    if (c->auth_timer)
        g_source_remove(c->auth_timer);
    outq_cut(c, NULL, c->out_head);
    g_queue_clear_full(&c->push_held, g_free);
    g_queue_clear_full(&c->replay_queue, (GDestroyNotify)g_bytes_unref);
    if (c->rx)
        g_byte_array_free(c->rx, TRUE);
    g_free(c->user_id);
    g_free(c->role);
    g_free(c->org);
    g_free(c->device_id);
    g_free(c->platform);
    g_free(c->jti);
    g_free(c->gateway_enterprise);
    g_free(c->gateway_key_id);
    g_free(c);
}

struct conn *conn_find(uint64_t serial)
{
    return conns ? g_hash_table_lookup(conns, &serial) : NULL;
}

struct conn_req *conn_req_new(struct conn *c, json_t *id)
{
    struct conn_req *r = g_new(struct conn_req, 1);
    r->serial = c->serial;
    r->id = json_incref(id);
    return r;
}

struct conn *conn_req_conn(const struct conn_req *r)
{
    return conn_find(r->serial);
}

void conn_req_free(struct conn_req *r)
{
    if (!r)
        return;
    json_decref(r->id);
    g_free(r);
}

void conn_req_answer(struct conn_req *r, enum err_code e, const char *why, json_t *fields)
{
    struct conn *c = conn_req_conn(r);
    if (c && e == ERR_NONE) {
        conn_reply(c, r->id, fields);
        fields = NULL;
    } else if (c) {
        conn_reply_error(c, r->id, e, why);
    }
    json_decref(fields);
    conn_req_free(r);
}

unsigned conn_count(void)
{
    return conns ? g_hash_table_size(conns) : 0;
}

void conn_each(void (*fn)(struct conn *c, void *ud), void *ud)
{
    /* Collect serials first: fn may close (but never free) connections. */
    GArray *serials = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, conns);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_array_append_val(serials, ((struct conn *)v)->serial);
    for (guint i = 0; i < serials->len; i++) {
        struct conn *c = conn_find(g_array_index(serials, uint64_t, i));
        if (c)
            fn(c, ud);
    }
    g_array_free(serials, TRUE);
}

/* In a run of a replayed request (ws.c) that sent a read, nothing goes
 * out: the request runs again once its reads are in. A reply of a run
 * that sent none answers the request (it is not run again). */
static bool thrown(struct conn *c, bool reply)
{
    if (!c->replay)
        return false;
    if (store_replay_sent(c->replay) > 0)
        return true;
    if (reply)
        c->replay_answered = true;
    return false;
}

void conn_send_text(struct conn *c, const char *text, size_t len, const char *label)
{
    if (c->close_code || thrown(c, false))
        return; /* closing: nothing more goes out */
    if (c->out_bytes + len > (size_t)server.cfg.send_queue_max) {
        log_warn("ws", "conn=%" G_GUINT64_FORMAT " user=%s send queue full (%zu bytes), closing",
                 c->serial, c->user_id ? c->user_id : "-", c->out_bytes);
        outq_cut(c, NULL, c->out_head);
        conn_close(c, 1008, "send queue full");
        return;
    }
    struct out_msg *m = g_malloc(sizeof(*m) + LWS_PRE + len);
    m->gen = commit_needed();
    m->len = len;
    memcpy(m->buf + LWS_PRE, text, len);
    outq_push(c, m);
    metrics_msg_out(label);
    /* Waiting for the flush, it is written when the flush reports; asking
     * for a writeable turn now would only cost two poll-set changes. In a
     * fan-out, what is durable already waits for the next pump. */
    if (defer_write(c))
        return;
    if (fanout)
        mark_deferred(c);
    else
        lws_callback_on_writable(c->wsi);
}

/* Gives up on a connection whose socket failed outside its callbacks:
 * lws closes it from its own loop. */
static void conn_kill(struct conn *c)
{
    c->close_code = 1011;
    c->close_started = true;
    outq_cut(c, NULL, c->out_head);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void conn_send_now(struct conn *c, const char *text, size_t len, const char *label)
{
    /* Telling of a batch not yet durable, the message waits in the queue;
     * in a fan-out it waits for the next pump (the send pool). */
    if (fanout || c->close_code || c->ping_due || !outq_empty(c) ||
        !commit_durable(commit_needed()) || lws_partial_buffered(c->wsi)) {
        conn_send_text(c, text, len, label);
        return;
    }
    unsigned char stack[LWS_PRE + 1024];
    unsigned char *buf = len <= sizeof(stack) - LWS_PRE ? stack : g_malloc(LWS_PRE + len);
    memcpy(buf + LWS_PRE, text, len);
    /* A partial write is kept by lws, which then reports it buffered (so
     * later messages queue behind it) and sends the rest when it can. */
    int n = lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT);
    if (buf != stack)
        g_free(buf);
    metrics_msg_out(label);
    metrics_ws_write(1);
    if (n < 0) {
        log_info("ws", "conn=%" G_GUINT64_FORMAT " user=%s write failed, closing", c->serial,
                 c->user_id ? c->user_id : "-");
        conn_kill(c);
    }
}

void conn_send(struct conn *c, json_t *msg, const char *label)
{
    /* a reply sent whole (an error with fields of its own) answers too */
    bool reply = c->replay && label && (strcmp(label, "reply") == 0 || strcmp(label, "error") == 0);
    if (c->close_code || thrown(c, reply)) {
        json_decref(msg);
        return; /* closing: nothing more goes out */
    }
    char *text = jx_dump(msg);
    json_decref(msg);
    if (!text)
        return;
    conn_send_text(c, text, strlen(text), label);
    free(text);
}

void conn_reply(struct conn *c, json_t *id, json_t *fields)
{
    if (thrown(c, true)) {
        json_decref(fields);
        return;
    }
    json_t *msg = json_pack("{s:O, s:b}", "re", id ? id : json_null(), "ok", 1);
    if (fields) {
        json_object_update(msg, fields);
        json_decref(fields);
    }
    conn_send(c, msg, "reply");
}

void conn_reply_error(struct conn *c, json_t *id, enum err_code code, const char *message)
{
    if (thrown(c, true))
        return;
    metrics_error(code);
    json_t *msg = json_pack("{s:O, s:b, s:{s:s, s:s}}", "re", id ? id : json_null(), "ok", 0,
                            "error", "code", err_name(code), "message", message);
    conn_send(c, msg, "error");
}

void conn_close(struct conn *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    c->close_code = code;
    g_strlcpy(c->close_reason, reason, sizeof(c->close_reason));
    log_info("ws", "conn=%" G_GUINT64_FORMAT " user=%s closing code=%d reason=%s", c->serial,
             c->user_id ? c->user_id : "-", code, reason);
    lws_callback_on_writable(c->wsi);
}

void conn_ping(struct conn *c)
{
    if (c->close_code || c->ping_due)
        return;
    c->ping_due = true;
    lws_callback_on_writable(c->wsi);
}

/* Starts the closing handshake of a connection whose queue has drained:
 * lws sends the close frame with our code and reason, waits for the
 * peer's reply (at most 5 s), then closes. This runs from an idle
 * callback, outside any callback of the connection: asking lws to close
 * by returning -1 from a writeable callback takes a path that, in the
 * Debian build of lws 4.1 on libuv, kills the socket before the close
 * frame leaves. */
static gboolean close_now(gpointer data)
{
    struct conn *c = conn_find(GPOINTER_TO_SIZE(data));
    if (c) {
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
    }
    return G_SOURCE_REMOVE;
}

/* Writes queued messages while the socket takes them, up to
 * WRITES_PER_TURN: one per turn lets a burst of events (pushes) outgrow
 * the queue of a device that reads perfectly well. lws keeps the unsent
 * tail of a partial write itself and reports the pipe choked until it is
 * out. Returns how many were written, or -1 if the socket failed. */
/* Frames of several messages written with one send: each message becomes
 * a WebSocket text frame here (FIN and opcode, then its length in 1, 3 or
 * 9 bytes; a server's frames are not masked), and the frames go out
 * together as raw bytes. lws_write() would make one send per message;
 * under load (a burst of pushes, a reply and its events) a connection
 * often has several ready at once. */
#define FRAMES_MAX_BYTES (64 * 1024)

static size_t frame_header(unsigned char *h, size_t len)
{
    h[0] = 0x81;
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* How many of the queue's first messages are durable and fit in one
 * write of frames (at most max); *bytes gets their framed size. */
static int ready_run(struct conn *c, int max, size_t *bytes)
{
    int n = 0;
    size_t total = 0;
    for (struct out_msg *m = c->out_head; m && n < max; m = m->next) {
        size_t framed = m->len + (m->len < 126 ? 2 : m->len <= 0xffff ? 4 : 10);
        if (!commit_durable(m->gen) || (n > 0 && total + framed > FRAMES_MAX_BYTES))
            break;
        total += framed;
        n++;
    }
    *bytes = total;
    return n;
}

/* Moves the first n messages of the queue, framed, into out (their
 * framed size, from ready_run). */
static void frame_run(struct conn *c, int n, unsigned char *out)
{
    for (int i = 0; i < n; i++) {
        struct out_msg *m = outq_pop(c);
        out += frame_header(out, m->len);
        memcpy(out, m->buf + LWS_PRE, m->len);
        out += m->len;
        g_free(m);
    }
}

/* The scratch buffer, with room for len bytes after LWS_PRE. */
static unsigned char *scratch(size_t len)
{
    if (frames_size < LWS_PRE + len) {
        g_free(frames);
        frames_size = MAX(LWS_PRE + len, LWS_PRE + FRAMES_MAX_BYTES);
        frames = g_malloc(frames_size);
    }
    return frames + LWS_PRE;
}

/* Writes bytes already framed through lws (which keeps what the socket
 * does not take). */
static int write_raw(struct conn *c, const unsigned char *data, size_t len)
{
    unsigned char *p = scratch(len);
    if (data != p)
        memcpy(p, data, len);
    return lws_write(c->wsi, p, len, LWS_WRITE_RAW) < 0 ? -1 : 0;
}

/* Writes the first n messages of the queue (n > 1) as one buffer. */
static int write_frames(struct conn *c, int n, size_t bytes)
{
    unsigned char *p = scratch(bytes);
    frame_run(c, n, p);
    return write_raw(c, p, bytes);
}

static int write_queue(struct conn *c)
{
    int wrote = 0;
    size_t bytes;
    int n;
    while (wrote < WRITES_PER_TURN && (n = ready_run(c, WRITES_PER_TURN - wrote, &bytes)) > 0) {
        metrics_ws_write(n);
        if (n > 1) {
            if (write_frames(c, n, bytes) < 0)
                return -1;
        } else {
            struct out_msg *m = outq_pop(c);
            int rc = lws_write(c->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
            g_free(m);
            if (rc < 0)
                return -1;
        }
        wrote += n;
        /* A socket that took only part of it: lws keeps the rest and sends
         * it at the next writeable turn, and nothing may be written before.
         * (Asking whether the socket is full would cost a poll() per
         * message; a full socket shows up here at the next write.) */
        if (lws_partial_buffered(c->wsi))
            break;
    }
    return wrote;
}

/* Nothing goes out before it is durable: while the next queued message
 * tells of a batch not yet flushed, the connection waits for the flush. It
 * is then written to directly (see conn_wake_deferred) rather than at its
 * next writeable turn, by which time the loop may have written the next
 * batch: under steady load that could put it off again and again. */
static bool defer_write(struct conn *c)
{
    struct out_msg *m = c->out_head;
    if (!m || commit_durable(m->gen))
        return false;
    mark_deferred(c);
    return true;
}

/* Puts the connection on the list conn_wake_deferred() writes, once. */
static void mark_deferred(struct conn *c)
{
    if (!c->deferred) {
        c->deferred = true;
        g_array_append_val(deferred, c->serial);
    }
}

static void drop_failed(struct conn *c, void *ud)
{
    (void)ud;
    struct out_msg *prev = NULL, *m = c->out_head;
    while (m && !commit_failed(m->gen)) {
        prev = m;
        m = m->next;
    }
    if (!m)
        return;
    outq_cut(c, prev, m); /* this message and every later one */
    log_warn("ws",
             "conn=%" G_GUINT64_FORMAT " user=%s closed: the store failed a write it "
             "was waiting for",
             c->serial, c->user_id ? c->user_id : "-");
    conn_close(c, 1011, "store unavailable: reconnect and resume");
}

void conn_drop_failed(void)
{
    conn_each(drop_failed, NULL);
}

/* After a connection's turn at a flush: what is left waits for a later
 * flush or a writeable turn. */
static void after_wake(struct conn *c)
{
    if (defer_write(c))
        return; /* its next message waits for a later flush */
    if (!outq_empty(c) || c->ping_due || c->close_code)
        lws_callback_on_writable(c->wsi);
}

static void write_failed(struct conn *c)
{
    log_info("ws", "conn=%" G_GUINT64_FORMAT " user=%s write failed, closing", c->serial,
             c->user_id ? c->user_id : "-");
    conn_kill(c);
}

static bool may_write(const struct conn *c)
{
    return !c->close_code && !c->ping_due && !lws_partial_buffered(c->wsi);
}

/* A connection's turn at a flush, on the loop. */
static void wake_one(struct conn *c)
{
    if (may_write(c) && write_queue(c) < 0)
        write_failed(c);
    else
        after_wake(c);
}

/* Connections framed for the send pool: their bytes, one job each (its
 * buf an offset into bytes until they are sent) and whose it is. */
struct pool_batch {
    GArray *jobs;   /* struct send_job */
    GArray *owners; /* serials */
    GByteArray *bytes;
};

/* The batch the writers may still be sending (a fan-out's), or none. */
static struct pool_batch flying;

static void pool_batch_init(struct pool_batch *b, guint conns)
{
    b->jobs = g_array_sized_new(FALSE, FALSE, sizeof(struct send_job), conns);
    b->owners = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), conns);
    b->bytes = g_byte_array_sized_new(MIN(conns * 512, POOL_BATCH_BYTES));
}

static void pool_batch_free(struct pool_batch *b)
{
    g_byte_array_free(b->bytes, TRUE);
    g_array_free(b->owners, TRUE);
    g_array_free(b->jobs, TRUE);
    memset(b, 0, sizeof(*b));
}

/* The jobs of a batch, their offsets made pointers. */
static struct send_job *pool_jobs(struct pool_batch *b)
{
    struct send_job *js = (struct send_job *)(void *)b->jobs->data;
    for (guint i = 0; i < b->jobs->len; i++)
        js[i].buf = b->bytes->data + (uintptr_t)js[i].buf;
    metrics_ws_pool(b->jobs->len);
    return js;
}

/* After the writers: what a socket did not take goes to lws, which keeps
 * it and sends it when the socket drains (nothing was written to it in
 * between); then the batch is emptied. */
static void pool_done(struct pool_batch *b)
{
    struct send_job *js = (struct send_job *)(void *)b->jobs->data;
    for (guint i = 0; i < b->jobs->len; i++) {
        struct conn *c = conn_find(g_array_index(b->owners, uint64_t, i));
        if (!c)
            continue;
        struct send_job *j = &js[i];
        if (j->err && j->err != EAGAIN && j->err != EWOULDBLOCK) {
            write_failed(c);
            continue;
        }
        if (j->sent < j->len && write_raw(c, j->buf + j->sent, j->len - j->sent) < 0) {
            write_failed(c);
            continue;
        }
        after_wake(c);
    }
    g_array_set_size(b->jobs, 0);
    g_array_set_size(b->owners, 0);
    g_byte_array_set_size(b->bytes, 0);
}

/* Sends what the batch holds, waiting for the writers, and empties it. */
static void pool_send(struct pool_batch *b)
{
    sendpool_run(pool_jobs(b), b->jobs->len);
    pool_done(b);
}

/* Waits for the batch in flight, if any, and takes its results. */
static void pool_land(void)
{
    if (!flying.jobs)
        return;
    sendpool_finish();
    pool_done(&flying);
    pool_batch_free(&flying);
}

/* A flush that released many plain connections: each one's ready run is
 * framed here and the send pool writes them together, POOL_BATCH_BYTES at
 * most at a time (a copy of what the queues hold). TLS connections are
 * written by lws on the loop, as at any other time. In a fan-out the last
 * batch is left in flight (async) for the writers while the loop goes on
 * queueing; a connection in it is framed again only after it landed. */
static void wake_parallel(GArray *serials, bool async)
{
    pool_land();
    struct pool_batch b;
    pool_batch_init(&b, serials->len);
    for (guint i = 0; i < serials->len; i++) {
        struct conn *c = conn_find(g_array_index(serials, uint64_t, i));
        if (!c || !c->deferred)
            continue;
        c->deferred = false;
        if (!may_write(c) || lws_is_ssl(c->wsi)) {
            wake_one(c);
            continue;
        }
        size_t len;
        int n = ready_run(c, WRITES_PER_TURN, &len);
        if (n == 0) {
            after_wake(c);
            continue;
        }
        metrics_ws_write(n);
        if (b.bytes->len + len > POOL_BATCH_BYTES && b.jobs->len)
            pool_send(&b);
        struct send_job j = {.fd = lws_get_socket_fd(c->wsi), .len = len};
        j.buf = (const unsigned char *)(uintptr_t)b.bytes->len;
        g_byte_array_set_size(b.bytes, b.bytes->len + (guint)len);
        frame_run(c, n, b.bytes->data + (uintptr_t)j.buf);
        g_array_append_val(b.jobs, j);
        g_array_append_val(b.owners, c->serial);
    }
    if (async && b.jobs->len) {
        sendpool_start(pool_jobs(&b), b.jobs->len);
        flying = b;
        return;
    }
    if (b.jobs->len)
        pool_send(&b);
    pool_batch_free(&b);
}

void conn_wake_deferred(void)
{
    if (!deferred || !deferred->len)
        return;
    GArray *now = deferred; /* taken whole: what is woken starts a new list */
    deferred = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    if (fanout || (conn_fanout_possible() && now->len >= PARALLEL_MIN)) {
        wake_parallel(now, fanout);
        g_array_free(now, TRUE);
        return;
    }
    for (guint i = 0; i < now->len; i++) {
        struct conn *c = conn_find(g_array_index(now, uint64_t, i));
        if (!c || !c->deferred)
            continue;
        c->deferred = false;
        wake_one(c);
    }
    g_array_free(now, TRUE);
}

bool conn_fanout_possible(void)
{
    return sendpool_threads() > 1;
}

void conn_fanout_begin(void)
{
    fanout = conn_fanout_possible();
}

void conn_fanout_pump(void)
{
    /* While the writers are still at the last batch, the loop queues on. */
    if (fanout && deferred->len && commit_durable(commit_needed()) &&
        (!flying.jobs || sendpool_idle()))
        conn_wake_deferred();
}

void conn_fanout_end(void)
{
    if (!fanout)
        return;
    pool_land();
    fanout = false;
    /* What was queued since the last pump, if it is durable already;
     * the rest waits for its flush as usual. */
    if (deferred->len && commit_durable(commit_needed()))
        conn_wake_deferred();
}

int conn_write_pending(struct conn *c)
{
    if (defer_write(c))
        return 0;
    if (c->ping_due && !c->close_code) {
        /* A payload, because lws does not report empty pongs. */
        unsigned char buf[LWS_PRE + 8];
        int64_t now = clock_mono_ms();
        memcpy(buf + LWS_PRE, &now, sizeof(now));
        c->ping_due = false;
        if (lws_write(c->wsi, buf + LWS_PRE, sizeof(now), LWS_WRITE_PING) < 0)
            return -1;
        if (!outq_empty(c))
            lws_callback_on_writable(c->wsi);
        return 0;
    }
    int wrote = write_queue(c);
    if (wrote < 0)
        return -1;
    if (wrote) {
        if (!outq_empty(c) || c->close_code)
            lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (c->close_code && !c->close_started) {
        c->close_started = true;
        g_idle_add(close_now, GSIZE_TO_POINTER(c->serial));
    }
    return 0;
}

bool conn_rate_take(struct conn *c, int per_s, int burst)
{
    int64_t now = clock_mono_ms();
    c->tokens += (double)(now - c->refill_ms) * per_s / 1000.0;
    if (c->tokens > burst)
        c->tokens = burst;
    c->refill_ms = now;
    if (c->tokens < 1.0)
        return false;
    c->tokens -= 1.0;
    return true;
}
