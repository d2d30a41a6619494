/* presence.query, presence.subscribe and presence.unsubscribe over
 * WebSocket, and the presence.changed events. Who may see whom is decided
 * by juris_reaches() alone: a request naming any user out of reach is
 * refused whole with `forbidden`, so it reveals nothing about that user. */
#include "common/jsonx.h"
#include "push/presence.h"
#include "records/account.h"
#include "records/jurisdiction.h"
#include "records/org.h"
#include "server/conn.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/presence_api.h"
#include "server/ws.h"

#include <string.h>

#define SUBSCRIPTIONS_PER_CONN_FACTOR 10

/* The presence view of one user: public account fields, online, devices. */
static json_t *user_view(const struct account *a)
{
    json_t *u = account_public_json(a);
    json_object_set_new(u, "online", json_boolean(presence_online(a->id)));
    json_object_set_new(u, "devices", presence_devices(a->id));
    return u;
}

/* True if the connection's user reaches account a. division_cache maps an
 * org id to its division code for the length of one request. */
static bool reaches(struct conn *c, const struct account *a, GHashTable *division_cache)
{
    int kind = juris_org_kind_of_role(a->role);
    if (kind < 0)
        return strcmp(c->role, "admin") == 0;
    char *division = g_hash_table_lookup(division_cache, a->org);
    if (!division) {
        division = org_division_of(server.store, a->role, a->org);
        if (!division)
            return false;
        g_hash_table_insert(division_cache, g_strdup(a->org), division);
    }
    struct principal p = {c->role, c->org};
    return juris_reaches(&p, (enum org_kind)kind, a->org, division);
}

struct collect {
    GPtrArray *accounts;
    const char *role; /* only accounts of this role, or NULL */
};

static bool collect_account(struct account *a, void *ud)
{
    struct collect *col = ud;
    if (!col->role || strcmp(a->role, col->role) == 0) {
        g_ptr_array_add(col->accounts, account_dup(a));
    }
    return true;
}

/* Resolves the target users of a presence request into accounts. On error
 * replies and returns NULL. */
static GPtrArray *resolve(struct conn *c, json_t *id, json_t *msg)
{
    json_t *users = json_object_get(msg, "users");
    const char *ent = jx_str_bounded(msg, "enterprise", ORG_ID_MAX);
    const char *carrier = jx_str_bounded(msg, "carrier", ORG_ID_MAX);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)account_free);
    GHashTable *divisions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    enum err_code err = ERR_NONE;
    const char *why = NULL;

    if (json_is_array(users) && !ent && !carrier) {
        if (json_array_size(users) > (size_t)server.cfg.presence_max_users) {
            err = ERR_TOO_LARGE;
            why = "too many users in one request";
            goto done;
        }
        size_t i;
        json_t *u;
        json_array_foreach(users, i, u)
        {
            struct account *a = NULL;
            if (!json_is_string(u) || json_string_length(u) > 64) {
                err = ERR_BAD_REQUEST;
                why = "users must be an array of user ids";
                goto done;
            }
            int rc = account_get(server.store, json_string_value(u), &a);
            if (rc == STORE_EIO) {
                err = ERR_UNAVAILABLE;
                why = "store unavailable";
                goto done;
            }
            if (rc != STORE_OK || !reaches(c, a, divisions)) {
                account_free(a);
                err = ERR_FORBIDDEN;
                why = "a requested user is outside your jurisdiction";
                goto done;
            }
            g_ptr_array_add(out, a);
        }
    } else if ((ent || carrier) && !users && !(ent && carrier)) {
        const char *role = ent ? "corp" : "trs", *org = ent ? ent : carrier;
        char *division = NULL; /* read ahead: from memory */
        int rc = org_division_get(server.store, role, org, &division);
        if (rc != STORE_OK) {
            err = rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
            why = err == ERR_NOT_FOUND ? "no such organisation" : "store unavailable";
            goto done;
        }
        struct principal p = {c->role, c->org};
        bool ok = juris_reaches(&p, ent ? ORG_ENTERPRISE : ORG_CARRIER, org, division);
        g_free(division);
        if (!ok) {
            err = ERR_FORBIDDEN;
            why = "organisation outside your jurisdiction";
            goto done;
        }
        struct collect col = {out, ent ? "corp" : "trs"};
        account_each_in_org(server.store, ent ? ent : carrier, collect_account, &col);
        if (out->len > (guint)server.cfg.presence_max_users) {
            err = ERR_TOO_LARGE;
            why = "organisation has too many users; query them in pages by id";
        }
    } else {
        err = ERR_BAD_REQUEST;
        why = "give exactly one of users (array), enterprise or carrier";
    }
done:
    g_hash_table_destroy(divisions);
    if (err != ERR_NONE) {
        conn_reply_error(c, id, err, why);
        g_ptr_array_free(out, TRUE);
        return NULL;
    }
    return out;
}

static json_t *views(GPtrArray *accounts)
{
    json_t *arr = json_array();
    for (guint i = 0; i < accounts->len; i++)
        json_array_append_new(arr, user_view(g_ptr_array_index(accounts, i)));
    return arr;
}

/* A query or subscription's answer once the devices its users hold on
 * other nodes are read (without waiting). */
struct answer_later {
    struct conn_req *req;
    GPtrArray *accounts;
};

static void answer_views(void *ud)
{
    struct answer_later *x = ud;
    struct conn *c = conn_req_conn(x->req);
    if (c)
        conn_reply(c, x->req->id, json_pack("{s:o}", "users", views(x->accounts)));
    conn_req_free(x->req);
    g_ptr_array_free(x->accounts, TRUE);
    g_free(x);
}

/* Answers with the users' views: at once if their devices elsewhere are
 * known, else once they are read. Takes accounts. */
static void answer(struct conn *c, json_t *id, GPtrArray *accounts)
{
    struct answer_later *x = g_new(struct answer_later, 1);
    x->req = conn_req_new(c, id);
    x->accounts = accounts;
    GPtrArray *ids = g_ptr_array_sized_new(accounts->len);
    for (guint i = 0; i < accounts->len; i++)
        g_ptr_array_add(ids, ((struct account *)g_ptr_array_index(accounts, i))->id);
    bool later =
        presence_prefetch_later((const char *const *)ids->pdata, (int)ids->len, answer_views, x);
    g_ptr_array_free(ids, TRUE);
    if (!later)
        answer_views(x);
}

typedef void (*presence_handler)(struct conn *c, json_t *id, json_t *msg);

/* A presence request of a connection that has one waiting for the
 * divisions it needs: the connection's requests run in the order they
 * came, each once it is ready. */
struct pending {
    struct conn_req *req;
    json_t *msg;
    presence_handler run;
    bool ready;
};

/* conn serial -> GQueue of struct pending*, while one of them waits. */
static GHashTable *waiting;
/* Requests of one connection that may wait; more are answered busy. */
#define WAITING_MAX 64

static void run_ready(uint64_t serial)
{
    GQueue *q = waiting ? g_hash_table_lookup(waiting, &serial) : NULL;
    struct pending *x;
    while (q && (x = g_queue_peek_head(q)) && x->ready) {
        g_queue_pop_head(q);
        struct conn *c = conn_req_conn(x->req);
        if (c)
            x->run(c, x->req->id, x->msg);
        json_decref(x->msg);
        conn_req_free(x->req);
        g_free(x);
    }
    if (q && g_queue_is_empty(q))
        g_hash_table_remove(waiting, &serial);
}

static void on_divisions_read(void *ud)
{
    struct pending *x = ud;
    x->ready = true;
    run_ready(x->req->serial);
}

/* Where a node keeps divisions and reads without waiting: reads those of
 * the organisations the request names (its users', or the enterprise or
 * carrier) that resolve() would otherwise read on the loop, telling x
 * when they are in (true); false if none is missing. */
static bool read_ahead(json_t *msg, struct pending *x)
{
    GPtrArray *roles = g_ptr_array_new(), *orgs = g_ptr_array_new();
    GPtrArray *accounts = g_ptr_array_new_with_free_func((GDestroyNotify)account_free);
    json_t *users = json_object_get(msg, "users");
    const char *ent = jx_str_bounded(msg, "enterprise", ORG_ID_MAX);
    const char *carrier = jx_str_bounded(msg, "carrier", ORG_ID_MAX);
    size_t i;
    json_t *u;
    if (json_array_size(users) <= (size_t)server.cfg.presence_max_users)
        json_array_foreach(users, i, u)
        {
            struct account *a = NULL;
            if (json_is_string(u) && json_string_length(u) <= 64 &&
                account_get(server.store, json_string_value(u), &a) == STORE_OK) {
                g_ptr_array_add(accounts, a);
                g_ptr_array_add(roles, a->role);
                g_ptr_array_add(orgs, a->org);
            }
        }
    if (ent || carrier) {
        g_ptr_array_add(roles, ent ? "corp" : "trs");
        g_ptr_array_add(orgs, (gpointer)(ent ? ent : carrier));
    }
    bool later = org_divisions_read_later(server.store, (const char *const *)roles->pdata,
                                          (const char *const *)orgs->pdata, (int)roles->len,
                                          on_divisions_read, x);
    g_ptr_array_free(roles, TRUE);
    g_ptr_array_free(orgs, TRUE);
    g_ptr_array_free(accounts, TRUE);
    return later;
}

/* Runs a presence request now, or queues it behind the connection's
 * waiting ones; reads: it may need divisions read first. */
static void handle(struct conn *c, json_t *id, json_t *msg, presence_handler run, bool reads)
{
    GQueue *q = waiting ? g_hash_table_lookup(waiting, &c->serial) : NULL;
    if (q && g_queue_get_length(q) >= WAITING_MAX) {
        conn_reply_error(c, id, ERR_BUSY, "too many presence requests waiting for an earlier one");
        return;
    }
    struct pending *x = g_new(struct pending, 1);
    *x = (struct pending){conn_req_new(c, id), json_incref(msg), run, false};
    if (!reads || !read_ahead(msg, x)) {
        if (!q) {
            run(c, id, msg);
            json_decref(x->msg);
            conn_req_free(x->req);
            g_free(x);
            return;
        }
        x->ready = true;
    }
    if (!q) {
        if (!waiting)
            waiting = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                            (GDestroyNotify)g_queue_free);
        q = g_queue_new();
        g_hash_table_insert(waiting, g_memdup2(&c->serial, sizeof(c->serial)), q);
    }
    g_queue_push_tail(q, x);
}

static void query(struct conn *c, json_t *id, json_t *msg)
{
    GPtrArray *accounts = resolve(c, id, msg);
    if (accounts)
        answer(c, id, accounts);
}

static void h_query(struct conn *c, json_t *id, json_t *msg)
{
    handle(c, id, msg, query, true);
}

static void subscribe(struct conn *c, json_t *id, json_t *msg)
{
    GPtrArray *accounts = resolve(c, id, msg);
    if (!accounts)
        return;
    unsigned limit = (unsigned)server.cfg.presence_max_users * SUBSCRIPTIONS_PER_CONN_FACTOR;
    unsigned n = 0;
    for (guint i = 0; i < accounts->len && n <= limit; i++)
        n = presence_subscribe(c, ((struct account *)g_ptr_array_index(accounts, i))->id);
    if (n > limit) {
        presence_unsubscribe_all(c);
        conn_reply_error(c, id, ERR_TOO_LARGE, "too many presence subscriptions; all cleared");
        g_ptr_array_free(accounts, TRUE);
        return;
    }
    answer(c, id, accounts); /* subscribed first: no change falls between */
}

static void h_subscribe(struct conn *c, json_t *id, json_t *msg)
{
    handle(c, id, msg, subscribe, true);
}

static void unsubscribe(struct conn *c, json_t *id, json_t *msg)
{
    (void)msg;
    presence_unsubscribe_all(c);
    conn_reply(c, id, NULL);
}

static void h_unsubscribe(struct conn *c, json_t *id, json_t *msg)
{
    handle(c, id, msg, unsubscribe, false);
}

const struct ws_handler presence_handlers[] = {
    {"presence.query", h_query, true, false},
    {"presence.subscribe", h_subscribe, true, false},
    {"presence.unsubscribe", h_unsubscribe, true, false},
    {NULL, NULL, false, false},
};

/* Presence notify callback (registered by main.c): one presence.changed
 * event, built once, to every subscriber. */
void presence_api_notify(const char *user_id, void *const *subscribers, unsigned n, void *ud)
{
    (void)ud;
    struct account *a = NULL;
    if (account_get(server.store, user_id, &a) != STORE_OK)
        return;
    json_t *ev = json_pack("{s:s, s:o}", "type", "presence.changed", "user", user_view(a));
    for (unsigned i = 0; i < n; i++)
        conn_send(subscribers[i], json_incref(ev), "presence.changed");
    json_decref(ev);
    account_free(a);
}
