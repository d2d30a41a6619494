/* The push messages of the app contract: push.ack and push.resume over
 * WebSocket, the live `push` events, GET /api/v1/inbox, and
 * POST /api/v1/pushes (operators send a push by hand). The inbox itself is
 * push/inbox.c; this file only speaks for it on connections.
 *
 * No gap, no duplicate: a connection that has sent push.resume is
 * "tracking" with a cursor (the last seq it was sent); a live push goes out
 * to it only if it is the one right after the cursor. A device still
 * catching up (its resume answered more: true) gets nothing live until it
 * has read up to the head, and then everything, in order. */
#include "server/push_api.h"

#include "common/jsonx.h"
#include "common/log.h"
#include "push/gateway.h"
#include "push/inbox.h"
#include "push/presence.h"
#include "server/bus.h"
#include "server/commit.h"
#include "server/conn.h"
#include "server/metrics.h"
#include "server/rest.h"
#include "server/server.h"
#include "server/ws.h"

#include <stdlib.h>
#include <string.h>

#define INBOX_PAGE_MAX 200
#define INBOX_PAGE_DEFAULT 50
#define GAP_FILL_MAX 64

struct deliver {
    int64_t seq;
    const char *text;
    size_t len;
};

/* A gap being read: the connection, and the push that showed it. */
struct gap_fill {
    uint64_t serial;
    int64_t upto; /* the gap ends before this seq */
};

/* Sends the pushes of a gap, read from the inbox. */
static bool fill_one(int64_t seq, json_t *event, void *ud)
{
    struct gap_fill *g = ud;
    struct conn *c = conn_find(g->serial);
    if (!c)
        return false;
    if (seq > c->push_cursor) {
        c->push_cursor = seq;
        conn_send(c, json_incref(event), "push");
    }
    return true;
}

static void unhold(struct conn *c);

/* The gap was read and sent (what it did not find, trimmed or expired,
 * is passed over, as a resume passes it): the pushes held meanwhile,
 * the one that showed the gap first, follow. */
static void gap_filled(int rc, int64_t last, bool more, int64_t head, void *ud)
{
    (void)last;
    (void)more;
    (void)head;
    struct gap_fill *g = ud;
    struct conn *c = conn_find(g->serial);
    if (c) {
        if (rc != STORE_OK)
            log_warn("push",
                     "conn=%" G_GUINT64_FORMAT " user=%s: a gap before seq %" G_GINT64_FORMAT
                     " could not be read; the device reads it at its next push.resume",
                     c->serial, c->user_id, g->upto);
        if (c->push_cursor < g->upto - 1)
            c->push_cursor = g->upto - 1;
        unhold(c);
    }
    g_free(g);
}

/* A push that arrived while the connection's position was being read
 * (its inbox's head at login, or a push.resume): its event's text
 * follows the struct. */
struct held_push {
    int64_t seq;
    size_t len;
    char text[];
};

/* At most this many are held per connection; past it the device reads
 * the rest with push.resume. */
#define HELD_MAX 1024

static void hold(struct conn *c, const struct deliver *d)
{
    if (g_queue_get_length(&c->push_held) >= HELD_MAX)
        return;
    struct held_push *h = g_malloc(sizeof(*h) + d->len);
    h->seq = d->seq;
    h->len = d->len;
    memcpy(h->text, d->text, d->len);
    g_queue_push_tail(&c->push_held, h);
}

/* With several nodes: pushes arrive here in the order their nodes
 * announced them, not always in seq order. One already sent (or stored
 * before the device logged in) is passed over; one after a gap of at most
 * GAP_FILL_MAX has the gap read from the inbox (without waiting: it and
 * the pushes after it are held meanwhile) and sent first. A device
 * still catching up reads gaps with push.resume; a longer gap for a
 * device that follows live is left to its next resume. */
static void deliver_ordered(struct conn *c, const struct deliver *d)
{
    if (c->push_cursor_set && d->seq <= c->push_cursor)
        return;
    if (c->push_cursor_set && d->seq > c->push_cursor + 1) {
        if (c->push_tracking && (c->push_more || d->seq - c->push_cursor > GAP_FILL_MAX))
            return;
        if (d->seq - c->push_cursor <= GAP_FILL_MAX) {
            /* read without waiting; this push and those after it wait */
            struct gap_fill *g = g_new(struct gap_fill, 1);
            *g = (struct gap_fill){c->serial, d->seq};
            if (inbox_resume_later(c->user_id, c->device_id, c->push_cursor,
                                   (int)(d->seq - c->push_cursor - 1), fill_one, gap_filled,
                                   g) == STORE_OK) {
                c->push_holds++;
                hold(c, d);
                return;
            }
            g_free(g); /* cannot read it now: the device's next resume will */
        }
    }
    c->push_cursor = d->seq;
    c->push_cursor_set = true;
    conn_send_now(c, d->text, d->len, "push");
}

static void deliver_one(void *conn, void *ud)
{
    struct conn *c = conn;
    struct deliver *d = ud;
    if (c->push_holds > 0) {
        hold(c, d);
        return;
    }
    if (bus_enabled()) {
        deliver_ordered(c, d);
        return;
    }
    if (c->push_tracking && c->push_cursor != d->seq - 1)
        return; /* catching up: it reads this one with push.resume */
    c->push_cursor = d->seq;
    conn_send_now(c, d->text, d->len, "push");
}

/* One read of the connection's position is answered: once none is under
 * way, the pushes held meanwhile go out in the order they came. */
static void unhold(struct conn *c)
{
    if (--c->push_holds > 0)
        return;
    struct held_push *h;
    while (c->push_holds == 0 && (h = g_queue_pop_head(&c->push_held))) {
        struct deliver d = {h->seq, h->text, h->len};
        deliver_one(c, &d);
        g_free(h);
    }
}

/* The inbox's head at login: live pushes start after it (push.resume may
 * have set the cursor first: it stands). */
static void on_head(int rc, int64_t head, void *ud)
{
    struct conn *c = conn_find(GPOINTER_TO_SIZE(ud));
    if (!c)
        return;
    if (rc == STORE_OK && !c->push_cursor_set) {
        c->push_cursor = head;
        c->push_cursor_set = true;
    }
    unhold(c);
}

void push_api_attach(void *conn)
{
    struct conn *c = conn;
    /* live pushes start after what is stored now (single node: in the
     * order they are stored, which needs no cursor) */
    if (!bus_enabled())
        return;
    c->push_holds++;
    if (inbox_head_later(c->user_id, on_head, GSIZE_TO_POINTER(c->serial)) != STORE_OK)
        c->push_holds--; /* as a failed read: no cursor */
}

/* With several nodes, the pushes stored during one turn of the loop go to
 * the other nodes as one bus message (a fan-out to 10,000 users is a few
 * messages, not 10,000), cut at BUS_BATCH_BYTES: records of
 * "USER\nSEQ\nLEN\n" and the event's LEN bytes. */
#define BUS_BATCH_BYTES (256 * 1024)

static struct bus_batch bus_pushes = {.type = "pushes", .cut = BUS_BATCH_BYTES};

void push_api_deliver(const char *user_id, int64_t seq, const char *text, size_t len, void *ud)
{
    (void)ud;
    struct deliver d = {seq, text, len};
    presence_each_conn(user_id, deliver_one, &d);
    if (!bus_enabled())
        return;
    GString *b = bus_batch_buf(&bus_pushes);
    g_string_append_printf(b, "%s\n%" G_GINT64_FORMAT "\n%zu\n", user_id, (gint64)seq, len);
    g_string_append_len(b, text, (gssize)len);
    bus_batch_added(&bus_pushes);
}

/* A fan-out this soon after the last one is part of a burst: its
 * deliveries wait for the usual flush, which then carries several
 * fan-outs in each connection's one write (fewer sends under load). */
#define FANOUT_BURST_US (300 * 1000)

void push_api_fanout(enum inbox_fanout step, void *ud)
{
    (void)ud;
    static gint64 last;
    static bool early;
    switch (step) {
    case INBOX_FANOUT_BEGIN: { /* the push is stored: its flush starts now */
        gint64 now = g_get_monotonic_time();
        early = conn_fanout_possible() && (!last || now - last >= FANOUT_BURST_US) && commit_now();
        last = now;
        metrics_fanout(early);
        if (early)
            conn_fanout_begin();
        break;
    }
    case INBOX_FANOUT_PUMP:
        if (!early)
            return;
        commit_poll();
        conn_fanout_pump();
        break;
    case INBOX_FANOUT_END:
        if (!early)
            return;
        commit_poll();
        conn_fanout_end();
        early = false;
        break;
    }
}

/* The line at *p (before end), its length in *n; *p moves past it. NULL
 * when no whole line is left. */
static const char *next_line(const char **p, const char *end, size_t *n)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl)
        return NULL;
    const char *line = *p;
    *n = (size_t)(nl - line);
    *p = nl + 1;
    return line;
}

/* Pushes stored by another node, for the devices of their users held here. */
static void on_bus_pushes(const char *node, const char *user, const char *data, size_t len,
                          void *ud)
{
    (void)node;
    (void)user;
    (void)ud;
    const char *p = data, *end = data + len;
    while (p < end) {
        size_t ulen, slen, llen;
        const char *u = next_line(&p, end, &ulen);
        const char *s = u ? next_line(&p, end, &slen) : NULL;
        const char *l = s ? next_line(&p, end, &llen) : NULL;
        if (!l)
            return;
        char *uid = g_strndup(u, ulen);
        struct deliver d = {g_ascii_strtoll(s, NULL, 10), p, (size_t)g_ascii_strtoull(l, NULL, 10)};
        if (d.len > (size_t)(end - p) || ulen == 0) {
            g_free(uid);
            return;
        }
        if (d.seq > 0)
            presence_each_conn(uid, deliver_one, &d);
        g_free(uid);
        p += d.len;
    }
}

void push_api_bus_shutdown(void)
{
    bus_batch_clear(&bus_pushes);
}

void push_api_bus_init(void)
{
    bus_on("pushes", on_bus_pushes, NULL);
}

static void on_acked(int rc, int64_t acked, void *ud)
{
    struct conn_req *p = ud;
    struct conn *c = conn_req_conn(p);
    if (c && rc == STORE_EINVAL)
        conn_reply_error(c, p->id, ERR_BAD_REQUEST, "seq is past the newest push");
    else if (c && rc != STORE_OK)
        conn_reply_error(c, p->id, ERR_UNAVAILABLE, "store unavailable");
    else if (c)
        conn_reply(c, p->id, json_pack("{s:I}", "acked", (json_int_t)acked));
    conn_req_free(p);
}

/* Stored without waiting where the store would (one script on Redis):
 * the reply comes when it is stored, with the batch it is part of. */
static void h_ack(struct conn *c, json_t *id, json_t *msg)
{
    json_t *s = json_object_get(msg, "seq");
    if (!json_is_integer(s) || json_integer_value(s) < 0) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "seq must be a non-negative integer");
        return;
    }
    struct conn_req *p = conn_req_new(c, id);
    if (inbox_ack_later(c->user_id, c->device_id, json_integer_value(s), on_acked, p) != STORE_OK) {
        conn_req_free(p);
        conn_reply_error(c, id, ERR_UNAVAILABLE, "store unavailable");
    }
}

/* A push.resume under way: its request, and the bytes it may queue. */
struct resuming {
    struct conn_req req;
    int64_t after;  /* -1: from the device's acknowledged position */
    struct conn *c; /* while its answer is handed over */
    size_t budget, used;
    int sent;
};

static bool resume_one(int64_t seq, json_t *event, void *ud)
{
    (void)seq;
    struct resuming *r = ud;
    if (!r->c && !(r->c = conn_req_conn(&r->req)))
        return false; /* gone meanwhile */
    if (r->sent == 0) {
        size_t queued = r->c->out_bytes, half = (size_t)server.cfg.send_queue_max / 2;
        r->budget = half > queued ? half - queued : 0;
    }
    char *text = jx_dump(event);
    size_t len = text ? strlen(text) : 0;
    free(text);
    /* Always at least one, so a resume makes progress. */
    if (r->sent > 0 && r->used + len > r->budget)
        return false;
    r->used += len;
    r->sent++;
    conn_send(r->c, json_incref(event), "push");
    return true;
}

static void resumed(int rc, int64_t last, bool more, int64_t head, void *ud)
{
    struct resuming *r = ud;
    struct conn *c = conn_req_conn(&r->req);
    if (!c)
        goto out;
    c->push_resuming = false;
    if (rc == STORE_EINVAL) {
        conn_reply_error(c, r->req.id, ERR_BAD_REQUEST, "after_seq is past the newest push");
    } else if (rc != STORE_OK) {
        conn_reply_error(c, r->req.id, ERR_UNAVAILABLE, "store unavailable");
    } else {
        c->push_tracking = true;
        c->push_cursor = last;
        c->push_cursor_set = true;
        c->push_more = more;
        log_debug("push",
                  "conn=%" G_GUINT64_FORMAT " user=%s device=%s resume after=%" G_GINT64_FORMAT
                  " sent=%d last=%" G_GINT64_FORMAT " head=%" G_GINT64_FORMAT,
                  c->serial, c->user_id, c->device_id, r->after, r->sent, last, head);
        conn_reply(c, r->req.id,
                   json_pack("{s:I, s:I, s:b}", "last_seq", (json_int_t)last, "head",
                             (json_int_t)head, "more", more));
    }
    unhold(c); /* what came meanwhile follows the resume's pushes */
out:
    json_decref(r->req.id);
    g_free(r);
}

/* The pushes after after_seq (or the device's position), read without
 * waiting where the store would: the live pushes that arrive meanwhile
 * are held and follow, so the device sees no gap and no duplicate. */
static void h_resume(struct conn *c, json_t *id, json_t *msg)
{
    json_t *a = json_object_get(msg, "after_seq");
    if (a && (!json_is_integer(a) || json_integer_value(a) < 0)) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "after_seq must be a non-negative integer");
        return;
    }
    if (c->push_resuming) {
        conn_reply_error(c, id, ERR_BUSY, "a push.resume is already running");
        return;
    }
    struct resuming *r = g_new0(struct resuming, 1);
    r->req = (struct conn_req){c->serial, json_incref(id)};
    r->after = a ? json_integer_value(a) : -1;
    if (inbox_resume_later(c->user_id, c->device_id, r->after, server.cfg.push_resume_batch,
                           resume_one, resumed, r) != STORE_OK) {
        json_decref(r->req.id);
        g_free(r);
        conn_reply_error(c, id, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    c->push_resuming = true;
    c->push_holds++;
}

/* The device_id of a push.register/unregister: the field, or the
 * connection's own device. NULL (after an error reply) if malformed. */
static const char *device_of(struct conn *c, json_t *id, json_t *msg)
{
    json_t *d = json_object_get(msg, "device_id");
    const char *device_id = jx_str_bounded(msg, "device_id", INBOX_DEVICE_MAX);
    if (d && !device_id) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "device_id must be a string of 1-128 chars");
        return NULL;
    }
    return device_id ? device_id : c->device_id;
}

/* A push.register being stored. */
struct registering {
    struct conn_req *req;
    char *device_id, *platform;
};

#define BUSY_TOKENS "too many push token changes of this user under way, retry shortly"

static void on_registered(int rc, void *ud)
{
    struct registering *x = ud;
    struct conn *c = conn_req_conn(x->req);
    if (!c) {
        /* gone meanwhile */
    } else if (rc == STORE_EINVAL) {
        conn_reply_error(c, x->req->id, ERR_BAD_REQUEST,
                         "token must be a string of 1-4096 printable ASCII chars");
    } else if (rc == GATEWAY_BUSY) {
        conn_reply_error(c, x->req->id, ERR_BUSY, BUSY_TOKENS);
    } else if (rc != STORE_OK) {
        conn_reply_error(c, x->req->id, ERR_UNAVAILABLE, "store unavailable");
    } else {
        conn_reply(c, x->req->id,
                   json_pack("{s:s, s:s}", "device_id", x->device_id, "platform", x->platform));
    }
    conn_req_free(x->req);
    g_free(x->device_id);
    g_free(x->platform);
    g_free(x);
}

static void h_register(struct conn *c, json_t *id, json_t *msg)
{
    const char *device_id = device_of(c, id, msg);
    if (!device_id)
        return;
    const char *platform = jx_str(msg, "platform");
    const char *token = jx_str_bounded(msg, "token", GATEWAY_TOKEN_MAX);
    if (!gateway_platform_valid(platform)) {
        conn_reply_error(c, id, ERR_BAD_REQUEST,
                         "platform must be one of apns, fcm, huawei, honor, xiaomi, oppo, vivo, "
                         "meizu, jpush, getui, web");
        return;
    }
    if (!token) {
        conn_reply_error(c, id, ERR_BAD_REQUEST,
                         "token must be a string of 1-4096 printable ASCII chars");
        return;
    }
    struct registering *x = g_new(struct registering, 1);
    *x = (struct registering){conn_req_new(c, id), g_strdup(device_id), g_strdup(platform)};
    int rc = gateway_register(c->user_id, device_id, platform, token, on_registered, x);
    if (rc != STORE_OK)
        on_registered(rc, x);
}

static void on_unregistered(int rc, void *ud)
{
    struct conn_req *req = ud;
    struct conn *c = conn_req_conn(req);
    if (!c) {
        /* gone meanwhile */
    } else if (rc == STORE_ENOTFOUND) {
        conn_reply_error(c, req->id, ERR_NOT_FOUND, "no push token registered for this device");
    } else if (rc == GATEWAY_BUSY) {
        conn_reply_error(c, req->id, ERR_BUSY, BUSY_TOKENS);
    } else if (rc != STORE_OK) {
        conn_reply_error(c, req->id, ERR_UNAVAILABLE, "store unavailable");
    } else {
        conn_reply(c, req->id, NULL);
    }
    conn_req_free(req);
}

static void h_unregister(struct conn *c, json_t *id, json_t *msg)
{
    const char *device_id = device_of(c, id, msg);
    if (!device_id)
        return;
    struct conn_req *req = conn_req_new(c, id);
    int rc = gateway_unregister(c->user_id, device_id, on_unregistered, req);
    if (rc != STORE_OK)
        on_unregistered(rc, req);
}

const struct ws_handler push_handlers[] = {
    {"push.ack", h_ack, true, false},
    {"push.resume", h_resume, true, false},
    {"push.register", h_register, true, false},
    {"push.unregister", h_unregister, true, false},
    {NULL, NULL, false, false},
};

/* Adds to each listed push its gateway delivery state, if it has one. */
static void decorate(json_t *items)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_t *st = gateway_state(jx_str(it, "id"));
        if (st)
            json_object_set_new(it, "gateway", st);
    }
}

/* GET /api/v1/inbox?after_seq=N&limit=M: the caller's stored pushes. */
static void route_inbox(struct rest_req *r)
{
    int64_t after, limit, head = 0;
    if (!rest_query_int(r, "after_seq", 0, INT64_MAX, 0, &after) ||
        !rest_query_int(r, "limit", 1, INBOX_PAGE_MAX, INBOX_PAGE_DEFAULT, &limit))
        return;
    json_t *items = NULL;
    int rc = inbox_head(r->acct->id, &head);
    if (rc == STORE_OK)
        rc = inbox_list(r->acct->id, &after, (int)limit, &items); /* past what is due to go */
    if (rc != STORE_OK) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    size_t n = json_array_size(items);
    int64_t next = n ? jx_int(json_array_get(items, n - 1), "seq", after) : after;
    decorate(items);
    inbox_upkeep(r->acct->id, head);
    rest_reply(r, 200,
               json_pack("{s:o, s:I, s:I, s:b}", "items", items, "head", (json_int_t)head,
                         "next_after_seq", (json_int_t)next, "more", next < head));
}

/* A push sent by hand, being stored. */
struct sent {
    uint64_t hold;
    char *actor, *user_id;
};

static void sent_free(struct sent *x)
{
    g_free(x->actor);
    g_free(x->user_id);
    g_free(x);
}

static void on_sent(int rc, const int64_t *seqs, int n, void *ud)
{
    struct sent *x = ud;
    if (rc != STORE_OK || n != 1) {
        rest_held_error(x->hold, ERR_UNAVAILABLE, "store unavailable");
    } else {
        log_info("push", "push sent by hand by user=%s to user=%s seq=%" G_GINT64_FORMAT, x->actor,
                 x->user_id, seqs[0]);
        char *pid = inbox_push_id(x->user_id, seqs[0]);
        rest_held_reply(x->hold, 201,
                        json_pack("{s:I, s:s}", "seq", (json_int_t)seqs[0], "id", pid));
        g_free(pid);
    }
    sent_free(x);
}

/* POST /api/v1/pushes (admin): a push to one user, by hand: answered with
 * its seq once it is stored (on Redis without holding the loop). */
static void route_send(struct rest_req *r)
{
    if (strcmp(r->acct->role, "admin") != 0) {
        rest_error(r, ERR_FORBIDDEN, "only operators (admin) send pushes by hand");
        return;
    }
    if (!r->body) {
        rest_error(r, ERR_BAD_REQUEST, "body must be a JSON object");
        return;
    }
    const char *user_id = jx_str_bounded(r->body, "user", 64);
    const char *kind = jx_str_bounded(r->body, "kind", INBOX_KIND_MAX);
    json_t *prio = json_object_get(r->body, "priority");
    const char *priority = json_is_string(prio) ? json_string_value(prio) : NULL;
    json_t *ttl = json_object_get(r->body, "ttl_s");
    json_t *title = json_object_get(r->body, "title"), *body = json_object_get(r->body, "body");
    json_t *payload = json_object_get(r->body, "payload");
    if (!user_id || !kind || (prio && !priority) ||
        (priority && strcmp(priority, "high") && strcmp(priority, "normal")) ||
        (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
                 json_integer_value(ttl) > INBOX_TTL_MAX_S)) ||
        (title && !json_is_string(title)) || (body && !json_is_string(body)) ||
        (payload && !json_is_object(payload))) {
        rest_error(r, ERR_BAD_REQUEST,
                   "need user and kind (strings); priority high|normal, ttl_s 1..2592000, "
                   "title and body strings, payload an object");
        return;
    }
    struct account *a = NULL;
    int rc = account_get(server.store, user_id, &a);
    account_free(a);
    if (rc != STORE_OK) {
        rest_error(r, rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE,
                   rc == STORE_ENOTFOUND ? "no such user" : "store unavailable");
        return;
    }
    struct sent *x = g_new(struct sent, 1);
    *x = (struct sent){rest_hold(r), g_strdup(r->acct->id), g_strdup(user_id)};
    rc = inbox_push_many_then(&user_id, 1, NULL, kind, priority ? priority : "normal",
                              ttl ? json_integer_value(ttl) : 86400,
                              title ? json_string_value(title) : NULL,
                              body ? json_string_value(body) : NULL, payload, on_sent, x);
    if (rc != STORE_OK) {
        rest_held_error(x->hold, rc == STORE_EINVAL ? ERR_BAD_REQUEST : ERR_UNAVAILABLE,
                        rc == STORE_EINVAL ? "title, body or payload too large"
                                           : "store unavailable");
        sent_free(x);
    }
}

const struct rest_route inbox_routes[] = {
    {REST_GET, "/api/v1/inbox", route_inbox, true, false},
    {REST_POST, "/api/v1/pushes", route_send, true, false},
    {0},
};
