/* WebSocket side of calls and patrols (see call_api.h). A request becomes a
 * call_actor (the connection's user and device) and a call_reply that
 * answers on the same connection; events from signaling/ go to the
 * connection presence holds for the device. */
#include "server/call_api.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "media/ctxmux.h"
#include "media/dtls.h"
#include "media/srtp.h"
#include "media/transport.h"
#include "push/inbox.h"
#include "push/presence.h"
#include "records/account.h"
#include "records/account_cache.h"
#include "records/calls.h"
#include "records/org.h"
#include "server/bus.h"
#include "server/call_busy.h"
#include "server/call_glare.h"
#include "server/call_takeover.h"
#include "server/cluster.h"
#include "server/commit.h"
#include "server/conn.h"
#include "server/server.h"
#include "server/ws.h"
#include "signaling/call.h"
#include "signaling/patrol.h"

#include <string.h>

#define MISSED_TTL_S (7 * 86400)

/* The SFU's certificate and the addresses it gathers on. */
static struct dtls_cert *media_cert;
static struct ctxmux *media_mux;
static char **media_addrs;
static bool srtp_up;

struct ws_ctx {
    struct conn *c;
    json_t *id;
};

static void ws_reply(void *ctx, enum err_code err, const char *message, json_t *fields)
{
    struct ws_ctx *w = ctx;
    if (err == ERR_NONE) {
        conn_reply(w->c, w->id, fields);
        return;
    }
    if (!fields) {
        conn_reply_error(w->c, w->id, err, message);
        return;
    }
    /* an error with extra fields (glare names the winning call) */
    json_t *msg = json_pack("{s:O, s:b, s:{s:s, s:s}}", "re", w->id, "ok", 0, "error", "code",
                            err_name(err), "message", message);
    json_object_update(msg, fields);
    json_decref(fields);
    conn_send(w->c, msg, "reply");
}

typedef void (*sig_fn)(const struct call_actor *, json_t *, const struct call_reply *);

/* The event's type as a metrics label that outlives the event. */
static const char *label_of(json_t *ev)
{
    static const char *const known[] = {"call.incoming",
                                        "call.ringing",
                                        "call.accepted",
                                        "call.candidate",
                                        "call.ended",
                                        "call.renegotiate",
                                        "call.answered_elsewhere",
                                        "call.peer_disconnected",
                                        "call.peer_reconnected",
                                        "call.participant_joined",
                                        "call.participant_left"};
    const char *t = json_string_value(json_object_get(ev, "type"));
    for (size_t i = 0; t && i < G_N_ELEMENTS(known); i++)
        if (strcmp(known[i], t) == 0)
            return known[i];
    return "call.other";
}

static void send_copy(void *conn, void *ud)
{
    json_t *ev = ud;
    conn_send(conn, json_deep_copy(ev), label_of(ev));
}

/* ---------- several nodes ----------
 *
 * A call lives on the node its caller invited from (its owner), which
 * writes "callnode:ID" to the store at invite. A request about a call this
 * node does not hold goes to the owner over the bus ("call.req"), with
 * the actor and where to answer; the owner answers over the bus
 * ("call.rep") and the answer reaches the requesting connection. Events
 * for devices held by other nodes travel as "call.dev". */

#define OWNERS_MAX 10000
/* A ringing call's offer is kept its ring time and this much more. */
#define CALLOFFER_SLACK_MS (60 * 1000)

static GHashTable *owners; /* call id -> node id, learnt from call.dev */

void call_owner_note(const char *call_id, const char *node)
{
    if (!owners)
        return;
    if (!node) {
        g_hash_table_remove(owners, call_id);
        return;
    }
    if (g_hash_table_size(owners) >= OWNERS_MAX)
        g_hash_table_remove_all(owners);
    g_hash_table_insert(owners, g_strdup(call_id), g_strdup(node));
}

const char *call_owner_of(const char *call_id)
{
    const char *node = g_hash_table_lookup(owners, call_id);
    if (node)
        return node;
    char *key = g_strconcat("callnode:", call_id, NULL), *val = NULL;
    if (store_kv_get(server.store, key, &val) == STORE_OK) {
        if (g_hash_table_size(owners) >= OWNERS_MAX)
            g_hash_table_remove_all(owners);
        g_hash_table_insert(owners, g_strdup(call_id), val);
        node = val;
    }
    g_free(key);
    return node;
}

/* At start: a call left open in the store whose node is alive is that
 * node's, not a leftover of this one's previous run. The beats were just
 * read: a node not fresh in them holds no call. */
static bool held_elsewhere(const char *call_id)
{
    const char *owner = call_owner_of(call_id);
    return owner && strcmp(owner, bus_node()) != 0 && cluster_node_live_cached(owner);
}

/* Answers a request that came from another node. */
struct remote_ctx {
    char *node;
    uint64_t serial;
    json_t *id;
    json_int_t fwd;
};

static void remote_reply(void *ctx, enum err_code err, const char *message, json_t *fields)
{
    struct remote_ctx *x = ctx;
    json_t *m = json_pack("{s:I, s:I, s:O, s:i}", "fwd", x->fwd, "serial", (json_int_t)x->serial,
                          "re", x->id, "err", (int)err);
    if (message)
        json_object_set_new(m, "message", json_string(message));
    if (fields)
        json_object_set_new(m, "fields", fields);
    char *text = json_dumps(m, JSON_COMPACT);
    bus_send_to(x->node, "call.rep", "", text, strlen(text));
    free(text);
    json_decref(m);
}

/* A request handed to another node, waiting for its answer: if none
 * comes within FORWARD_TIMEOUT_MS (the node died meanwhile), the device
 * hears `unavailable` rather than nothing. */
#define FORWARD_TIMEOUT_MS 5000

struct forwarded {
    uint64_t n;
    uint64_t serial;
    json_t *id;
    guint timer;
};

static GHashTable *pending; /* n -> struct forwarded* */
static uint64_t forward_seq;

static void forwarded_free(gpointer p)
{
    struct forwarded *f = p;
    if (f->timer)
        g_source_remove(f->timer);
    json_decref(f->id);
    g_free(f);
}

static gboolean forward_expired(gpointer p)
{
    struct forwarded *f = p;
    f->timer = 0;
    struct conn *c = conn_find(f->serial);
    if (c)
        conn_reply_error(c, f->id, ERR_UNAVAILABLE, "the server holding this call did not answer");
    g_hash_table_remove(pending, GSIZE_TO_POINTER(f->n));
    return G_SOURCE_REMOVE;
}

/* For calls_per_user: the calls the user made that ring on other nodes,
 * and one for each other node where it is in an answered call (a node
 * says busy or not, not how many). */
static unsigned calls_elsewhere(const char *user_id)
{
    return call_glare_ringing_by(user_id) + call_busy_nodes(user_id);
}

static void run_here(struct conn *c, json_t *id, json_t *msg, sig_fn fn, const int *counted);
static bool owner_read_start(struct conn *c, json_t *id, json_t *msg, sig_fn fn, bool may_take);

/* A request held while its call is taken over here. */
struct held_take {
    struct conn_req *req;
    json_t *msg;
    sig_fn fn;
};

static void on_request_take(enum take t, const char *why, void *ud)
{
    struct held_take *h = ud;
    struct conn *c = conn_req_conn(h->req);
    if (c && t == TAKEN) {
        run_here(c, h->req->id, h->msg, h->fn, NULL); /* held here now */
    } else if (c && t == TAKEN_ELSEWHERE) {
        /* to the node that claimed it, once its name is read */
        if (!owner_read_start(c, h->req->id, h->msg, h->fn, false))
            conn_reply_error(c, h->req->id, ERR_UNAVAILABLE, "store unavailable");
    } else if (c) {
        conn_reply_error(c, h->req->id, t == GONE ? ERR_NOT_FOUND : ERR_UNAVAILABLE,
                         t == GONE ? why : "the call is being taken over: try again");
    }
    conn_req_free(h->req);
    json_decref(h->msg);
    g_free(h);
}

/* Sends a request about a call held on another node there (owner, as
 * known or read; NULL if the store knows none), or says why not on c;
 * false: the handler runs here. A call whose node is dead is taken over
 * here (if may_take: not again after another node claimed it), the
 * request held meanwhile. */
static bool forward_to(struct conn *c, json_t *id, json_t *msg, const char *call_id,
                       const char *owner, sig_fn fn, bool may_take)
{
    if (!owner || strcmp(owner, bus_node()) == 0)
        return false; /* not found here: the handler says so */
    if (!cluster_node_alive(owner)) {
        /* the call's state was in that node's memory: an answered call is
         * taken over here (one node claims it), any other is over */
        if (!may_take) {
            conn_reply_error(c, id, ERR_UNAVAILABLE, "the call is being taken over: try again");
            return true;
        }
        struct held_take *h = g_new(struct held_take, 1);
        *h = (struct held_take){conn_req_new(c, id), json_incref(msg), fn};
        call_take_over(call_id, owner, on_request_take, h);
        return true;
    }

    struct forwarded *f = g_new0(struct forwarded, 1);
    f->n = ++forward_seq;
    f->serial = c->serial;
    f->id = json_incref(id);
    f->timer = g_timeout_add(FORWARD_TIMEOUT_MS, forward_expired, f);
    g_hash_table_insert(pending, GSIZE_TO_POINTER(f->n), f);
    json_t *m = json_pack("{s:I, s:I, s:O, s:{s:s, s:s, s:s, s:s}, s:O}", "fwd", (json_int_t)f->n,
                          "serial", (json_int_t)c->serial, "re", id, "actor", "user", c->user_id,
                          "device", c->device_id, "role", c->role, "org", c->org, "msg", msg);
    char *text = json_dumps(m, JSON_COMPACT);
    bus_send_to(owner, "call.req", c->user_id, text, strlen(text));
    free(text);
    json_decref(m);
    return true;
}

/* The call a request is about, if it may be held on another node. */
static const char *call_elsewhere(json_t *msg)
{
    const char *call_id = json_string_value(json_object_get(msg, "call_id"));
    return bus_enabled() && call_id && !call_known(call_id) ? call_id : NULL;
}

static bool forward(struct conn *c, json_t *id, json_t *msg, sig_fn fn)
{
    const char *call_id = call_elsewhere(msg);
    return call_id && forward_to(c, id, msg, call_id, call_owner_of(call_id), fn, true);
}

/* A request about a call whose node is not known here waits, without
 * holding the loop, for the read of "callnode:ID"; the requests about
 * that call that come meanwhile wait behind it (reads are answered in
 * the order sent), so none overtakes another. */
struct owner_read {
    struct conn_req *req;
    json_t *msg;
    sig_fn fn;
    char *call_id;
    bool may_take; /* false: another node claimed the call from a dead one */
};

static GHashTable *owner_reads; /* call id -> reads under way (guint) */

static void owner_read_done(const char *call_id)
{
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(owner_reads, call_id));
    if (n > 1)
        g_hash_table_insert(owner_reads, g_strdup(call_id), GUINT_TO_POINTER(n - 1));
    else
        g_hash_table_remove(owner_reads, call_id);
}

static void owner_read_free(struct owner_read *o)
{
    conn_req_free(o->req);
    json_decref(o->msg);
    g_free(o->call_id);
    g_free(o);
}

static void on_owner_read(int rc, const struct store_docs *d, void *ud)
{
    struct owner_read *o = ud;
    if (!owner_reads) { /* shut down meanwhile */
        owner_read_free(o);
        return;
    }
    const char *node = rc == STORE_OK && d->n == 1 ? json_string_value(d->docs[0]) : NULL;
    if (node)
        call_owner_note(o->call_id, node);
    owner_read_done(o->call_id);
    struct conn *c = conn_req_conn(o->req);
    if (c && rc != STORE_OK)
        conn_reply_error(c, o->req->id, ERR_UNAVAILABLE, "store unavailable");
    else if (c && (call_known(o->call_id) ||
                   !forward_to(c, o->req->id, o->msg, o->call_id,
                               g_hash_table_lookup(owners, o->call_id), o->fn, o->may_take)))
        run_here(c, o->req->id, o->msg, o->fn, NULL);
    owner_read_free(o);
}

/* Reads the node of the request's call without waiting, the request
 * held until it is in. False if the read could not be sent. */
static bool owner_read_start(struct conn *c, json_t *id, json_t *msg, sig_fn fn, bool may_take)
{
    const char *call_id = json_string_value(json_object_get(msg, "call_id"));
    if (!call_id || !owner_reads)
        return false;
    struct owner_read *o = g_new(struct owner_read, 1);
    *o =
        (struct owner_read){conn_req_new(c, id), json_incref(msg), fn, g_strdup(call_id), may_take};
    char *key = g_strconcat("callnode:", call_id, NULL);
    const char *keys[] = {key};
    int rc = store_kv_get_later(server.store, keys, 1, on_owner_read, o);
    g_free(key);
    if (rc != STORE_OK) {
        owner_read_free(o);
        return false;
    }
    guint under_way = GPOINTER_TO_UINT(g_hash_table_lookup(owner_reads, call_id));
    g_hash_table_insert(owner_reads, g_strdup(call_id), GUINT_TO_POINTER(under_way + 1));
    return true;
}

/* True if the request waits for its call's node to be read (Redis). */
static bool owner_later(struct conn *c, json_t *id, json_t *msg, sig_fn fn)
{
    const char *call_id = call_elsewhere(msg);
    if (!call_id || !store_reads_later(server.store))
        return false;
    guint under_way = GPOINTER_TO_UINT(g_hash_table_lookup(owner_reads, call_id));
    if (!under_way && g_hash_table_contains(owners, call_id))
        return false;
    return owner_read_start(c, id, msg, fn, true); /* else read as before */
}

/* The requests about one call that another node may hand over. */
static sig_fn fn_of(const char *type)
{
    static const struct {
        const char *type;
        sig_fn fn;
    } table[] = {
        {"call.ringing", call_ringing},
        {"call.accept", call_accept},
        {"call.decline", call_decline},
        {"call.cancel", call_cancel},
        {"call.hangup", call_hangup},
        {"call.candidate", call_candidate},
        {"call.renegotiate", call_renegotiate},
        {"call.resume", call_resume},
        {"call.join", call_join},
        {"call.leave", call_leave},
    };
    for (size_t i = 0; type && i < G_N_ELEMENTS(table); i++)
        if (strcmp(table[i].type, type) == 0)
            return table[i].fn;
    return NULL;
}

/* The bus sends again what it had not heard Redis take when its
 * connection dropped, so a request Redis did take arrives twice. Each node
 * numbers its requests (fwd) and the bus keeps a node's messages in order,
 * so a request numbered at or below the last one handled from its node is
 * such a copy: a second call.candidate would add the candidate twice. */
static GHashTable *handled; /* node id -> last fwd handled (gint64*) */

static bool first_time(const char *node, json_t *fwd)
{
    if (!json_is_integer(fwd))
        return false;
    gint64 n = json_integer_value(fwd);
    gint64 *last = g_hash_table_lookup(handled, node);
    if (last && n <= *last)
        return false;
    if (!last) {
        if (g_hash_table_size(handled) >= OWNERS_MAX)
            g_hash_table_remove_all(handled); /* nodes come and go with restarts */
        last = g_new(gint64, 1);
        g_hash_table_insert(handled, g_strdup(node), last);
    }
    *last = n;
    return true;
}

static void on_call_req(const char *node, const char *user, const char *data, size_t len, void *ud)
{
    (void)user;
    (void)ud;
    json_t *m = json_loadb(data, len, 0, NULL);
    if (!first_time(node, json_object_get(m, "fwd"))) {
        log_info("call", "request %" JSON_INTEGER_FORMAT " from node=%s seen before: dropped",
                 json_integer_value(json_object_get(m, "fwd")), node);
        json_decref(m);
        return;
    }
    json_t *actor = json_object_get(m, "actor"), *msg = json_object_get(m, "msg");
    sig_fn fn = fn_of(json_string_value(json_object_get(msg, "type")));
    struct call_actor a = {jx_str(actor, "user"), jx_str(actor, "device"), jx_str(actor, "role"),
                           jx_str(actor, "org")};
    if (fn && a.user_id && a.device_id && a.role && a.org &&
        json_is_integer(json_object_get(m, "serial"))) {
        struct remote_ctx x = {
            g_strdup(node), (uint64_t)json_integer_value(json_object_get(m, "serial")),
            json_object_get(m, "re"), json_integer_value(json_object_get(m, "fwd"))};
        struct call_reply r = {remote_reply, &x};
        fn(&a, msg, &r);
        g_free(x.node);
    }
    json_decref(m);
}

static void on_call_rep(const char *node, const char *user, const char *data, size_t len, void *ud)
{
    (void)node;
    (void)user;
    (void)ud;
    json_t *m = json_loadb(data, len, 0, NULL);
    gpointer key = GSIZE_TO_POINTER((gsize)json_integer_value(json_object_get(m, "fwd")));
    struct forwarded *f = g_hash_table_lookup(pending, key);
    /* answered after it expired (the device was told unavailable): dropped */
    struct conn *c = f ? conn_find(f->serial) : NULL;
    json_int_t code = json_integer_value(json_object_get(m, "err"));
    enum err_code err = code >= 0 && code < ERR__COUNT ? (enum err_code)code : ERR_INTERNAL;
    if (c) {
        struct ws_ctx w = {c, json_object_get(m, "re")};
        json_t *fields = json_object_get(m, "fields");
        ws_reply(&w, err, jx_str(m, "message"), fields ? json_incref(fields) : NULL);
    }
    if (f)
        g_hash_table_remove(pending, key);
    json_decref(m);
}

/* An event for devices held here, from the call's owner. */
static void on_call_dev(const char *node, const char *user, const char *data, size_t len, void *ud)
{
    (void)ud;
    const char *nl = memchr(data, '\n', len);
    json_t *ev = nl ? json_loadb(nl + 1, len - (size_t)(nl + 1 - data), 0, NULL) : NULL;
    if (!ev)
        return;
    const char *call_id = jx_str(ev, "call_id");
    const char *type = jx_str(ev, "type");
    if (call_id && type && strcmp(type, "call.ended") == 0)
        g_hash_table_remove(owners, call_id);
    else if (call_id && !g_hash_table_contains(owners, call_id) &&
             g_hash_table_size(owners) < OWNERS_MAX)
        g_hash_table_insert(owners, g_strdup(call_id), g_strdup(node));
    char *device = g_strndup(data, (size_t)(nl - data));
    if (*device) {
        struct conn *c = presence_conn_of(user, device);
        if (c)
            conn_send(c, json_incref(ev), label_of(ev));
    } else {
        presence_each_conn(user, send_copy, ev);
    }
    g_free(device);
    json_decref(ev);
}

struct invite_ctx {
    struct ws_ctx w;
    const char *offer;
};

/* The caller's node owns a new call: the others find it in the store,
 * with the caller's offer while it may ring (to ring on should the node
 * die: the record does not hold the SDP, which GET /api/v1/calls shows). */
static void invite_reply(void *ctx, enum err_code err, const char *message, json_t *fields)
{
    struct invite_ctx *x = ctx;
    const char *call_id = err == ERR_NONE ? jx_str(fields, "call_id") : NULL;
    if (call_id) {
        int64_t now = clock_now_ms();
        char *key = g_strconcat("callnode:", call_id, NULL);
        if (store_kv_set(server.store, key, bus_node(), now + CALLNODE_TTL_MS) != STORE_OK)
            log_warn("call", "call=%s cannot record its node", call_id);
        g_free(key);
        key = g_strconcat("calloffer:", call_id, NULL);
        if (store_kv_set(server.store, key, x->offer,
                         now + server.cfg.ring_timeout_s * 1000 + CALLOFFER_SLACK_MS) != STORE_OK)
            log_warn("call", "call=%s cannot keep its offer", call_id);
        g_free(key);
    }
    ws_reply(&x->w, err, message, fields);
}

/* ---------- invites counted without waiting ----------
 *
 * On Redis, counting an invite (invites_per_min) would wait for Redis on
 * the loop: the invite is checked, its count sent, and once the answer
 * is in (read by whichever store call comes next, or when the store's
 * socket is readable) it goes on at the loop's next turn, checked again
 * (see call_invite_counted). */

struct counting {
    uint64_t serial; /* the inviting connection */
    json_t *id, *msg;
    int rc;      /* the count's answer */
    int waiting; /* answers still to come: the count's, its callees' devices' */
};

static GHashTable *counting; /* n -> struct counting*, sent and not gone on */
static GQueue counted;       /* n of those answered, in order */
static guint counted_source;
static uint64_t counting_seq;

static void counting_free(gpointer p)
{
    struct counting *x = p;
    json_decref(x->id);
    json_decref(x->msg);
    g_free(x);
}

static gboolean on_counted_turn(gpointer ud)
{
    (void)ud;
    counted_source = 0;
    gpointer n;
    while ((n = g_queue_pop_head(&counted))) {
        struct counting *x = g_hash_table_lookup(counting, n);
        struct conn *c = x ? conn_find(x->serial) : NULL;
        if (c) /* else the device went away meanwhile: nobody to answer */
            run_here(c, x->id, x->msg, call_invite, &x->rc);
        g_hash_table_remove(counting, n);
    }
    return G_SOURCE_REMOVE;
}

/* One of the answers an invite waits for is in: the last queues it. */
static void answered(gpointer n)
{
    struct counting *x = counting ? g_hash_table_lookup(counting, n) : NULL;
    if (!x || --x->waiting > 0)
        return;
    g_queue_push_tail(&counted, n);
    if (!counted_source)
        counted_source = g_idle_add_full(G_PRIORITY_DEFAULT, on_counted_turn, NULL, NULL);
}

/* From inside a store call: only notes the answer. */
static void on_counted(int rc, double count, void *ud)
{
    (void)count;
    struct counting *x = counting ? g_hash_table_lookup(counting, ud) : NULL;
    if (!x)
        return;
    x->rc = rc;
    answered(ud);
}

/* An enterprise's accounts whose devices an invite reads ahead. */
#define ORG_CALLEES_MAX 200

static bool add_id(struct account *acct, void *ud)
{
    GPtrArray *ids = ud;
    if (!acct->disabled && ids->len < ORG_CALLEES_MAX)
        g_ptr_array_add(ids, acct->id);
    return true;
}

/* While an invite is counted, the devices of whom it will ring (a user,
 * or an enterprise's staff as the accounts in memory list them) are read
 * on the cluster's link, and the invite goes on once both are answered,
 * so that ringing them need not wait for Redis. True if sent. */
static bool prefetch_callees(json_t *to, gpointer n)
{
    const char *user = jx_str(to, "user"), *ent = jx_str(to, "enterprise");
    if (!bus_enabled() || (!user && !ent))
        return false;
    if (user)
        return presence_prefetch_later(&user, 1, answered, n);
    if (!account_cache_serves(server.store))
        return false;
    GPtrArray *ids = g_ptr_array_new();
    account_cache_each_in_org(ent, add_id, ids);
    bool sent =
        presence_prefetch_later((const char *const *)ids->pdata, (int)ids->len, answered, n);
    g_ptr_array_free(ids, TRUE);
    return sent;
}

static bool invite_count_later(struct conn *c, json_t *id, json_t *msg, bool ahead);

/* An invite whose checks' reads are made ahead. */
struct invite_ahead {
    uint64_t serial;
    json_t *id, *msg;
    int waiting;
};

static void on_invite_ahead(void *ud)
{
    struct invite_ahead *x = ud;
    if (--x->waiting > 0)
        return;
    struct conn *c = conn_find(x->serial);
    if (c && !server.stopping)
        invite_count_later(c, x->id, x->msg, true);
    else if (c)
        conn_reply_error(c, x->id, ERR_UNAVAILABLE, "the server is stopping");
    json_decref(x->id);
    json_decref(x->msg);
    g_free(x);
}

/* Where the store reads later: the divisions of the caller's and the
 * callee's organisations and the patrol the invite names, which its
 * checks would read on the loop, are read first, without waiting; the
 * invite goes on once they are in (true). False if none was missing. */
static bool invite_read_ahead(struct conn *c, json_t *id, json_t *msg)
{
    json_t *to = json_object_get(msg, "to");
    const char *user = jx_str_bounded(to, "user", 64);
    const char *ent = jx_str_bounded(to, "enterprise", ORG_ID_MAX);
    const char *roles[2] = {c->role, NULL}, *orgs[2] = {c->org, NULL};
    struct account *acct = NULL;
    if (user && account_get(server.store, user, &acct) == STORE_OK) {
        roles[1] = acct->role;
        orgs[1] = acct->org;
    } else if (ent) {
        roles[1] = "corp";
        orgs[1] = ent;
    }
    struct invite_ahead *x = g_new(struct invite_ahead, 1);
    *x = (struct invite_ahead){c->serial, json_incref(id), json_incref(msg), 1};
    if (org_divisions_read_later(server.store, roles, orgs, roles[1] ? 2 : 1, on_invite_ahead, x))
        x->waiting++;
    if (patrol_read_ahead(jx_str(msg, "patrol_id"), on_invite_ahead, x))
        x->waiting++;
    account_free(acct);
    bool later = x->waiting > 1;
    if (!later) {
        json_decref(x->id);
        json_decref(x->msg);
        g_free(x);
    } else {
        x->waiting--; /* the hold while sending */
    }
    return later;
}

/* Counts an invite without waiting, on a store that offers it. False if
 * it does not (the invite then runs as usual). ahead: its reads were made
 * ahead already. */
static bool invite_count_later(struct conn *c, json_t *id, json_t *msg, bool ahead)
{
    if (!counting)
        return false;
    if (!ahead && invite_read_ahead(c, id, msg))
        return true;
    struct ws_ctx w = {c, id};
    struct call_actor a = {c->user_id, c->device_id, c->role, c->org};
    struct call_reply r = {ws_reply, &w};
    if (!call_invite_check(&a, msg, &r))
        return true; /* answered */
    gpointer n = GSIZE_TO_POINTER(++counting_seq);
    struct counting *x = g_new0(struct counting, 1);
    x->serial = c->serial;
    x->id = json_incref(id);
    x->msg = json_incref(msg);
    x->waiting = 1;
    g_hash_table_insert(counting, n, x);
    char *key = call_invite_rate_key(c->user_id);
    int rc = store_rate_add_async(server.store, key, CALL_INVITE_RATE_WINDOW_MS, clock_now_ms(), 1,
                                  call_invite_rate_limit(), on_counted, n);
    g_free(key);
    if (rc == STORE_OK) {
        commit_watch_store();
        if (prefetch_callees(json_object_get(msg, "to"), n))
            x->waiting++; /* rung once its callees' devices are read too */
        return true;
    }
    g_hash_table_remove(counting, n);
    run_here(c, id, msg, call_invite, &rc); /* cannot count now: refused as unavailable */
    return true;
}

/* A patrol's note whose patrol is read first. */
struct patrol_ahead {
    struct conn_req *req;
    json_t *msg;
    sig_fn fn;
};

static void on_patrol_read(void *ud)
{
    struct patrol_ahead *x = ud;
    struct conn *c = conn_req_conn(x->req);
    if (c && !server.stopping)
        run_here(c, x->req->id, x->msg, x->fn, NULL);
    else if (c)
        conn_reply_error(c, x->req->id, ERR_UNAVAILABLE, "the server is stopping");
    conn_req_free(x->req);
    json_decref(x->msg);
    g_free(x);
}

/* Where the store reads later: the patrol a note names is read first,
 * without waiting, and the request runs once it is in (it then finds the
 * patrol in memory). True if sent. (A finish, which reads the patrol's
 * calls too, is replayed: see call_handlers.) */
static bool patrol_later(struct conn *c, json_t *id, json_t *msg, sig_fn fn)
{
    const char *pid = jx_str_bounded(msg, "patrol_id", 64);
    if (fn != patrol_note || !pid)
        return false;
    struct patrol_ahead *x = g_new(struct patrol_ahead, 1);
    *x = (struct patrol_ahead){conn_req_new(c, id), json_incref(msg), fn};
    if (patrol_read_ahead(pid, on_patrol_read, x))
        return true;
    conn_req_free(x->req);
    json_decref(x->msg);
    g_free(x);
    return false;
}

static void dispatch(struct conn *c, json_t *id, json_t *msg, sig_fn fn)
{
    if (fn == call_invite && invite_count_later(c, id, msg, false))
        return;
    if (patrol_later(c, id, msg, fn))
        return;
    if (fn != call_invite && (owner_later(c, id, msg, fn) || forward(c, id, msg, fn)))
        return;
    run_here(c, id, msg, fn, NULL);
}

/* Runs fn for a request held here, answering on c; an invite whose count
 * was sent first goes on with its answer (*counted). */
static void run_here(struct conn *c, json_t *id, json_t *msg, sig_fn fn, const int *counted)
{
    struct invite_ctx x = {{c, id}, jx_str(msg, "sdp")};
    struct call_actor a = {c->user_id, c->device_id, c->role, c->org};
    struct call_reply r = {ws_reply, &x.w};
    if (fn == call_invite && bus_enabled())
        r = (struct call_reply){invite_reply, &x};
    if (counted)
        call_invite_counted(&a, msg, &r, *counted);
    else
        fn(&a, msg, &r);
}

#define HANDLER(name, fn)                                                                          \
    static void name(struct conn *c, json_t *id, json_t *msg)                                      \
    {                                                                                              \
        dispatch(c, id, msg, fn);                                                                  \
    }

HANDLER(h_invite, call_invite)
HANDLER(h_ringing, call_ringing)
HANDLER(h_accept, call_accept)
HANDLER(h_decline, call_decline)
HANDLER(h_cancel, call_cancel)
HANDLER(h_hangup, call_hangup)
HANDLER(h_candidate, call_candidate)
HANDLER(h_renegotiate, call_renegotiate)
HANDLER(h_resume, call_resume)
HANDLER(h_join, call_join)
HANDLER(h_leave, call_leave)
HANDLER(h_ice, call_ice_servers)
HANDLER(h_patrol_start, patrol_start)
HANDLER(h_patrol_note, patrol_note)
HANDLER(h_patrol_finish, patrol_finish)

const struct ws_handler call_handlers[] = {
    {"call.invite", h_invite, true, false},
    {"call.ringing", h_ringing, true, false},
    {"call.accept", h_accept, true, false},
    {"call.decline", h_decline, true, false},
    {"call.cancel", h_cancel, true, false},
    {"call.hangup", h_hangup, true, false},
    {"call.candidate", h_candidate, true, false},
    {"call.renegotiate", h_renegotiate, true, false},
    {"call.resume", h_resume, true, false},
    {"ice.servers", h_ice, true, false},
    {"call.join", h_join, true, false},
    {"call.leave", h_leave, true, false},
    {"patrol.start", h_patrol_start, true, true},
    {"patrol.note", h_patrol_note, true, false},
    {"patrol.finish", h_patrol_finish, true, true},
    {NULL, NULL, false, false},
};

/* With several nodes, devices held elsewhere get the event over the bus:
 * "DEVICE\n" (empty: every device of the user) and the event. */
static void send_elsewhere(const char *user_id, const char *device_id, json_t *ev)
{
    char *text = json_dumps(ev, JSON_COMPACT);
    char *m = g_strconcat(device_id ? device_id : "", "\n", text, NULL);
    bus_publish("call.dev", user_id, m, strlen(m));
    g_free(m);
    free(text);
}

static void hook_send(const char *user_id, const char *device_id, json_t *ev)
{
    if (device_id) {
        struct conn *c = presence_conn_of(user_id, device_id);
        if (c)
            conn_send(c, ev, label_of(ev));
        else if (bus_enabled())
            send_elsewhere(user_id, device_id, ev);
        if (!c)
            json_decref(ev);
        return;
    }
    presence_each_conn(user_id, send_copy, ev);
    if (bus_enabled())
        send_elsewhere(user_id, NULL, ev);
    json_decref(ev);
}

/* A missed call: a durable push the callee finds on any device, now or
 * after it comes back (and through the push gateway when it is away). */
static void hook_missed(const char *user_id, json_t *payload)
{
    const char *name =
        json_string_value(json_object_get(json_object_get(payload, "from"), "display_name"));
    char body[256];
    g_snprintf(body, sizeof(body), "%s 呼叫了您", name && *name ? name : "监管人员");
    const char *users[] = {user_id};
    int rc = inbox_push_many_later(users, 1, "call_missed", "high", MISSED_TTL_S, "未接视频通话",
                                   body, payload); /* on Redis: stored without waiting */
    if (rc != STORE_OK)
        log_error("call", "cannot leave user=%s a missed-call push (%d)", user_id, rc);
}

void call_api_init(void)
{
    const struct config *cfg = &server.cfg;
    struct call_limits lim = {
        .ring_timeout_ms = cfg->ring_timeout_s * 1000,
        .grace_ms = cfg->call_grace_s * 1000,
        .max_sdp = cfg->call_max_sdp,
        .max_candidates = cfg->call_max_candidates,
        .calls_per_user = cfg->calls_per_user,
        .invites_per_min = cfg->invites_per_min,
        .max_joiners = cfg->call_max_joiners,
        .ice = {cfg->stun_urls, cfg->turn_urls, cfg->turn_secret, cfg->turn_ttl_s},
    };
    /* The SFU: one certificate for the process (its fingerprint is in
     * every SDP the server writes). Without it calls stay peer-to-peer. */
    srtp_up = media_srtp_init() == 0;
    if (srtp_up) {
        log_info("call", "SRTP ciphers: %s", media_srtp_engine());
        media_cert = dtls_cert_new();
        /* Each device's transport in a context of its own, over epoll. */
        if ((media_mux = ctxmux_new(NULL)))
            media_transport_use_mux(media_mux);
        else
            log_warn("call", "epoll for the media contexts failed: one context for all");
    }
    if (!media_cert)
        log_error("call", "the media server could not start (SRTP or certificate): sfu calls"
                          " are refused");
    media_addrs = g_strsplit(cfg->media_addresses, ",", -1);
    for (char **a = media_addrs; *a; a++)
        g_strstrip(*a);
    bool recording = cfg->recording_dir[0] != '\0';
    lim.media.sfu_default =
        strcmp(cfg->call_mode, "sfu") == 0 || (recording && strcmp(cfg->call_mode, "auto") == 0);
    lim.media.record_dir = recording ? cfg->recording_dir : NULL;
    lim.media.public_ip = cfg->media_public_ip[0] ? cfg->media_public_ip : NULL;
    lim.media.ice_tcp = cfg->media_ice_tcp;
    lim.media.cert = media_cert;
    lim.media.addresses = (const char *const *)media_addrs;
    lim.media.max_bitrate = (uint64_t)cfg->media_max_kbps * 1000;
    struct call_hooks hooks = {.send = hook_send, .missed = hook_missed};
    call_busy_init(&hooks);
    call_glare_init(&hooks, lim.ring_timeout_ms);
    if (bus_enabled())
        hooks.calls_elsewhere = calls_elsewhere;
    if (bus_enabled()) {
        owners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        owner_reads = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        hooks.held_elsewhere = held_elsewhere;
    }
    call_init(server.store, &lim, &hooks);
    if (store_rate_async(server.store))
        counting = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, counting_free);
    call_busy_ask();
    if (bus_enabled()) {
        pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, forwarded_free);
        handled = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        call_takeover_init(server.cfg.cluster_dead_s, (int64_t)server.cfg.call_grace_s * 1000);
        bus_on("call.req", on_call_req, NULL);
        bus_on("call.rep", on_call_rep, NULL);
        bus_on("call.dev", on_call_dev, NULL);
    }
    patrol_init(server.store, cfg->patrol_min_call_s, cfg->patrol_max_items);
}

void call_api_shutdown(void)
{
    call_shutdown();
    patrol_shutdown();
    call_busy_shutdown();
    call_glare_shutdown();
    call_takeover_shutdown();
    g_clear_handle_id(&counted_source, g_source_remove);
    g_queue_clear(&counted);
    g_clear_pointer(&counting, g_hash_table_destroy);
    if (owners)
        g_hash_table_destroy(owners);
    owners = NULL;
    g_clear_pointer(&owner_reads, g_hash_table_destroy);
    if (pending)
        g_hash_table_destroy(pending);
    pending = NULL;
    if (handled)
        g_hash_table_destroy(handled);
    handled = NULL;
    dtls_cert_free(media_cert);
    media_cert = NULL;
    media_transport_use_mux(NULL);
    g_clear_pointer(&media_mux, ctxmux_free);
    g_strfreev(media_addrs);
    media_addrs = NULL;
    if (srtp_up)
        media_srtp_shutdown();
    srtp_up = false;
}
