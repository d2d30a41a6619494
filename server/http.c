/* HTTP routes (see http.h).
 *
 * A request is read whole (headers, then a bounded body), routed, and
 * answered from LWS_CALLBACK_HTTP_WRITEABLE: headers in one writeable
 * turn, the body in the next. A login answers later, when the hashing
 * worker is done; the request is then found again by its serial, so a
 * client that hung up meanwhile costs nothing. */
#include "server/http.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/store_replay.h"
#include "server/auth.h"
#include "server/commit.h"
#include "server/metrics.h"
#include "server/rest.h"
#include "server/server.h"
#include "server/session.h"
#include "server/static_files.h"

#include <openssl/ssl.h>
#include <string.h>
#include <unistd.h>

struct http_pss {
    uint64_t serial;
    struct lws *wsi;
    enum rest_method method;
    char path[128];
    char peer[64];
    GByteArray *body;
    bool body_too_large;
    bool routed;   /* lws may also report BODY_COMPLETION for an empty body */
    bool held;     /* its handler answers later (rest_hold) */
    bool path_odd; /* the decoded path held a NUL or did not fit path[] */
    /* the response, once known */
    bool ready;
    uint64_t gen; /* the store batch the response may tell of (commit.h) */
    bool headers_sent;
    int status;
    const char *content_type;
    const char *cache_control; /* NULL: no-store */
    char etag[48];             /* static files: their validator, else empty */
    char *resp;                /* LWS_PRE bytes of headroom, then resp_len bytes */
    size_t resp_len;
    int file_fd; /* a file body (rest_reply_file): sent in chunks; -1 or 0: none */
    bool file_body;
    size_t file_sent;      /* of resp_len */
    char disposition[160]; /* Content-Disposition, or empty */
    int64_t retry_after_s;
    /* A GET on a store whose reads travel runs against a replay of its
     * reads until a run lacks none (store_replay.h), as this account. */
    struct store_replay *replay;
    struct account *replay_acct;
    bool replay_route; /* a write whose route is replayed too */
    bool write_turn;   /* that write's replay under way (one at a time) */
};

/* Runs of one request before its reads are made waiting. */
#define REPLAY_RUNS_MAX 8

/* A file body is read and written this much at a time. */
#define FILE_CHUNK (64 * 1024)

static GHashTable *pending;  /* serial -> struct http_pss* awaiting a login or a held answer */
static GHashTable *flushing; /* serial -> struct http_pss* whose response waits for a flush */
static uint64_t next_serial = 1;

size_t http_pss_size(void)
{
    return sizeof(struct http_pss);
}

void http_init(void)
{
    pending = g_hash_table_new(g_int64_hash, g_int64_equal);
    flushing = g_hash_table_new(g_int64_hash, g_int64_equal);
}

/* Replayed writes run one at a time: each reads (from its replay) and
 * writes before the next reads, as the loop made them when it waited, so
 * that two of them never both read what neither has written yet. */
static bool write_busy;
static GQueue write_waiting = G_QUEUE_INIT; /* serials of held requests, in order */
static guint write_next;
static void write_turn_end(void);

void http_shutdown(void)
{
    g_clear_pointer(&pending, g_hash_table_destroy);
    g_clear_pointer(&flushing, g_hash_table_destroy);
    g_queue_clear(&write_waiting);
    g_clear_handle_id(&write_next, g_source_remove);
    write_busy = false;
}

void http_wake_flushed(void)
{
    if (!flushing || !g_hash_table_size(flushing))
        return;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, flushing);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        struct http_pss *h = v;
        if (!commit_durable(h->gen))
            continue;
        g_hash_table_iter_remove(&it);
        lws_callback_on_writable(h->wsi);
    }
}

/* The largest body a request may carry: readings batches are large by
 * design, everything else is bounded by max_frame. */
static size_t http_body_limit(const struct http_pss *h)
{
    if (h->method == REST_POST && strcmp(h->path, "/api/v1/readings") == 0)
        return (size_t)server.cfg.readings_max_body;
    return (size_t)server.cfg.max_frame;
}

static void reset(struct http_pss *h)
{
    if (h->serial && pending)
        g_hash_table_remove(pending, &h->serial);
    if (h->serial && flushing)
        g_hash_table_remove(flushing, &h->serial);
    if (h->body)
        g_byte_array_free(h->body, TRUE);
    g_free(h->resp);
    if (h->file_body)
        close(h->file_fd);
    store_replay_free(h->replay);
    account_free(h->replay_acct);
    bool turn = h->write_turn;
    memset(h, 0, sizeof(*h));
    if (turn)
        write_turn_end();
}

/* True in a run of a replay that sent a read: its answer is thrown
 * away, the request runs again once the read is answered. */
static bool thrown(const struct http_pss *h)
{
    return h->replay && store_replay_sent(h->replay) > 0;
}

/* Answers with len bytes of data (copied) of the given content type. */
static void respond_bytes(struct http_pss *h, int status, const char *type, const void *data,
                          size_t len)
{
    if (thrown(h))
        return;
    h->resp = g_malloc(LWS_PRE + len + 1);
    memcpy(h->resp + LWS_PRE, data, len);
    h->resp[LWS_PRE + len] = '\0';
    h->resp_len = len;
    h->status = status;
    h->content_type = type;
    h->ready = true;
    h->gen = commit_needed();
    metrics_http(status);
    lws_callback_on_writable(h->wsi);
}

static void respond_text(struct http_pss *h, int status, const char *type, const char *text)
{
    respond_bytes(h, status, type, text, strlen(text));
}

/* Sends body (reference stolen) as JSON with status. */
static void respond_json(struct http_pss *h, int status, json_t *body)
{
    if (thrown(h)) {
        json_decref(body);
        return;
    }
    char *text = jx_dump(body);
    json_decref(body);
    respond_text(h, status, "application/json", text ? text : "{}");
    free(text);
}

static void respond_error(struct http_pss *h, enum err_code code, const char *message)
{
    if (thrown(h))
        return;
    metrics_error(code);
    respond_json(h, err_http_status(code),
                 json_pack("{s:{s:s, s:s}}", "error", "code", err_name(code), "message", message));
}

/* What a request goes on with once its token is good: the account and
 * the token's claims, borrowed for the call. */
typedef void (*authed_fn)(struct http_pss *h, const struct account *acct,
                          const struct token_claims *claims);

struct bearer_wait {
    uint64_t serial;
    authed_fn then;
};

static uint64_t hold(struct http_pss *h);
static struct http_pss *unhold(uint64_t hold);

static void bearer_checked(enum token_state st, const struct account *acct,
                           const struct token_claims *claims, void *ud)
{
    struct bearer_wait *b = ud;
    struct http_pss *h = unhold(b->serial);
    authed_fn then = b->then;
    g_free(b);
    if (!h)
        return; /* the client went away */
    h->held = false;
    if (st == TOKEN_OK)
        then(h, acct, claims);
    else if (st == TOKEN_UNAVAILABLE)
        respond_error(h, ERR_UNAVAILABLE, "store unavailable");
    else
        respond_error(h, ERR_UNAUTHORIZED,
                      st == TOKEN_EXPIRED    ? "token expired"
                      : st == TOKEN_REVOKED  ? "token revoked"
                      : st == TOKEN_DISABLED ? "account disabled"
                                             : "invalid token");
}

/* Reads "Authorization: Bearer T" and checks T without holding the loop
 * (on Redis its revocation is read later): then() goes on with the
 * request, at once or from a later turn, or the request is answered. */
static void bearer_then(struct http_pss *h, authed_fn then)
{
    char hdr[TOKEN_MAX_LEN + 16];
    int n = lws_hdr_copy(h->wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 7 || g_ascii_strncasecmp(hdr, "Bearer ", 7) != 0) {
        respond_error(h, ERR_UNAUTHORIZED, "missing Authorization: Bearer token");
        return;
    }
    struct bearer_wait *b = g_new(struct bearer_wait, 1);
    b->serial = hold(h);
    b->then = then;
    auth_check_token_later(hdr + 7, bearer_checked, b);
}

static void login_done(struct auth_outcome *o, void *ud)
{
    uint64_t serial = GPOINTER_TO_SIZE(ud);
    struct http_pss *h = pending ? g_hash_table_lookup(pending, &serial) : NULL;
    if (!h)
        return; /* the client went away */
    g_hash_table_remove(pending, &serial);
    if (o->err == ERR_NONE) {
        respond_json(h, 200, auth_session_json(o->token, &o->claims, o->acct));
        return;
    }
    if (o->retry_after_ms)
        h->retry_after_s = (o->retry_after_ms + 999) / 1000;
    /* metrics_error was counted by auth */
    respond_json(
        h, err_http_status(o->err),
        json_pack("{s:{s:s, s:s}}", "error", "code", err_name(o->err), "message", o->message));
}

static void route_login(struct http_pss *h, json_t *body)
{
    const char *username = jx_str_bounded(body, "username", 256);
    const char *password = jx_str_bounded(body, "password", 256);
    const char *device_id = jx_str_bounded(body, "device_id", 128);
    const char *platform = jx_str_bounded(body, "platform", 32);
    if (!username || !password) {
        respond_error(h, ERR_BAD_REQUEST, "username and password must be strings");
        return;
    }
    if (!device_id || !platform) {
        respond_error(h, ERR_BAD_REQUEST,
                      "device_id (1-128 chars) and platform (1-32 chars) must be strings");
        return;
    }
    h->serial = next_serial++;
    g_hash_table_insert(pending, &h->serial, h);
    auth_login(username, password, device_id, h->peer, login_done, GSIZE_TO_POINTER(h->serial));
}

static void refresh_authed(struct http_pss *h, const struct account *acct,
                           const struct token_claims *old)
{
    struct token_claims fresh = {0};
    char *token = auth_issue(acct, old->device_id, &fresh);
    if (!token || auth_revoke(old) != STORE_OK)
        respond_error(h, ERR_UNAVAILABLE, "cannot refresh the token now");
    else
        respond_json(h, 200,
                     json_pack("{s:s, s:I}", "token", token, "expires_at", (json_int_t)fresh.exp));
    g_free(token);
    token_claims_clear(&fresh);
}

static void route_refresh(struct http_pss *h)
{
    bearer_then(h, refresh_authed);
}

static void logout_authed(struct http_pss *h, const struct account *acct,
                          const struct token_claims *claims)
{
    if (auth_revoke(claims) != STORE_OK) {
        respond_error(h, ERR_UNAVAILABLE, "cannot revoke the token now");
    } else {
        session_close_token(claims->user_id, claims->jti, 0);
        respond_json(h, 200, json_pack("{s:b}", "ok", 1));
    }
    log_info("auth", "logout user=%s (REST)", acct->id);
}

static void route_logout(struct http_pss *h)
{
    bearer_then(h, logout_authed);
}

/* GET /api/v1/me: the caller's own account. */
static void route_me(struct rest_req *r)
{
    rest_reply(r, 200, json_pack("{s:o}", "user", account_public_json(r->acct)));
}

const struct rest_route account_routes[] = {
    {REST_GET, "/api/v1/me", route_me, true, false},
    {0},
};

void rest_reply(struct rest_req *r, int status, json_t *body)
{
    respond_json(r->http, status, body);
}

/* The request answers later: it waits in the pending table under a
 * serial of its own (its connection's end takes it out). */
static uint64_t hold(struct http_pss *h)
{
    h->held = true;
    h->serial = next_serial++;
    g_hash_table_insert(pending, &h->serial, h);
    return h->serial;
}

uint64_t rest_hold(struct rest_req *r)
{
    return hold(r->http);
}

/* The held request, taken out of the table; NULL if its client left. */
static struct http_pss *unhold(uint64_t hold)
{
    struct http_pss *h = pending ? g_hash_table_lookup(pending, &hold) : NULL;
    if (h)
        g_hash_table_remove(pending, &hold);
    return h;
}

void rest_held_reply(uint64_t hold, int status, json_t *body)
{
    struct http_pss *h = unhold(hold);
    if (h)
        respond_json(h, status, body);
    else
        json_decref(body);
}

void rest_held_error(uint64_t hold, enum err_code code, const char *message)
{
    struct http_pss *h = unhold(hold);
    if (h)
        respond_error(h, code, message);
}

void rest_reply_file(struct rest_req *r, int fd, size_t len, const char *type, const char *name)
{
    struct http_pss *h = r->http;
    if (thrown(h)) {
        close(fd);
        return;
    }
    h->file_fd = fd;
    h->file_body = true;
    h->file_sent = 0;
    h->resp_len = len;
    h->status = 200;
    h->content_type = type;
    g_snprintf(h->disposition, sizeof(h->disposition), "attachment; filename=\"%s\"", name);
    h->ready = true;
    h->gen = commit_needed();
    metrics_http(200);
    lws_callback_on_writable(h->wsi);
}

void rest_error(struct rest_req *r, enum err_code code, const char *message)
{
    respond_error(r->http, code, message);
}

bool rest_header(const struct rest_req *r, const char *name, char *out, size_t len)
{
    const struct http_pss *h = r->http;
    return lws_hdr_custom_copy(h->wsi, out, (int)len, name, (int)strlen(name)) > 0;
}

/* The query string as a table of URL-decoded name -> value. */
static GHashTable *query_table(struct lws *wsi)
{
    GHashTable *q = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    char frag[512];
    for (int i = 0; i < 32; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        char *eq = strchr(frag, '=');
        if (eq)
            *eq = '\0';
        g_hash_table_insert(q, g_strdup(frag), g_strdup(eq ? eq + 1 : ""));
    }
    return q;
}

/* Calls the route of a request under /api/v1/ as acct (NULL for a route
 * without a token). */
static void rest_call(struct http_pss *h, const struct account *acct)
{
    char **segs = g_strsplit(h->path, "/", -1);
    struct rest_req r = {.method = h->method,
                         .path = h->path,
                         .peer = h->peer,
                         .http = h,
                         .acct = (struct account *)acct};
    bool known = false;
    const struct rest_route *route = rest_find(h->method, segs, r.params, &known);
    if (!route) { /* found before the token's check: cannot be */
        respond_error(h, ERR_INTERNAL, "no route");
        goto out;
    }
    if (h->method == REST_POST || h->method == REST_PUT) {
        if (h->body_too_large) {
            respond_error(h, ERR_TOO_LARGE, "request body too large");
            goto out;
        }
        if (h->body && h->body->len) {
            r.body = jx_load((const char *)h->body->data, h->body->len);
            if (!json_is_object(r.body)) {
                respond_error(h, ERR_BAD_REQUEST, "body must be a JSON object");
                goto out;
            }
        }
    }
    r.query = query_table(h->wsi);
    route->fn(&r);
    if (!h->ready && !h->held && !thrown(h)) {
        log_error("http", "route %s answered nothing", route->pattern);
        respond_error(h, ERR_INTERNAL, "no answer");
    }
out:
    json_decref(r.body);
    if (r.query)
        g_hash_table_destroy(r.query);
    g_strfreev(segs);
}

static void replay_ready(void *ud);

/* One run of a replayed request: done when it lacked no read (or
 * answered before it did); else held until its reads are answered. */
static void replay_run(struct http_pss *h)
{
    store_replay_begin(h->replay);
    rest_call(h, h->replay_acct);
    int sent = store_replay_end(h->replay);
    if (sent == 0 || h->ready || h->held) {
        g_clear_pointer(&h->replay, store_replay_free);
        g_clear_pointer(&h->replay_acct, account_free);
        if (h->write_turn) {
            h->write_turn = false;
            write_turn_end();
        }
        return;
    }
    uint64_t serial = hold(h);
    store_replay_rerun(h->replay, REPLAY_RUNS_MAX, replay_ready, GSIZE_TO_POINTER(serial));
}

static void replay_ready(void *ud)
{
    struct http_pss *h = unhold(GPOINTER_TO_SIZE(ud));
    if (!h)
        return; /* the client went away */
    h->held = false;
    replay_run(h);
}

/* Starts the replay of h (its account in replay_acct). */
static void replay_start(struct http_pss *h)
{
    h->replay = store_replay_new(server.store);
    if (h->replay_route)
        h->write_turn = write_busy = true;
    replay_run(h);
}

static gboolean on_write_next(gpointer ud)
{
    (void)ud;
    write_next = 0;
    while (!write_busy && !g_queue_is_empty(&write_waiting)) {
        uint64_t serial = GPOINTER_TO_SIZE(g_queue_pop_head(&write_waiting));
        struct http_pss *h = unhold(serial);
        if (!h)
            continue; /* the client went away meanwhile */
        h->held = false;
        replay_start(h);
    }
    return G_SOURCE_REMOVE;
}

/* The replayed write under way is done (or gone): the next one starts,
 * from the loop. */
static void write_turn_end(void)
{
    write_busy = false;
    if (!g_queue_is_empty(&write_waiting) && !write_next)
        write_next = g_idle_add_full(G_PRIORITY_DEFAULT, on_write_next, NULL, NULL);
}

/* Runs the route of a request under /api/v1/, its token checked if it
 * needs one (acct and claims, borrowed; NULL otherwise). A GET (or a
 * write whose route says so) on a store whose reads travel is replayed
 * rather than waited for; replayed writes wait for each other. */
static void rest_run(struct http_pss *h, const struct account *acct,
                     const struct token_claims *claims)
{
    (void)claims;
    if ((h->method == REST_GET || h->replay_route) && store_replays(server.store)) {
        h->replay_acct = acct ? account_dup(acct) : NULL;
        if (h->replay_route && write_busy) {
            g_queue_push_tail(&write_waiting, GSIZE_TO_POINTER(hold(h)));
            return;
        }
        replay_start(h);
        return;
    }
    rest_call(h, acct);
}

/* Dispatches a request under /api/v1/ to its route table entry. */
static void route_rest(struct http_pss *h)
{
    char **segs = g_strsplit(h->path, "/", -1);
    const char *params[REST_MAX_PARAMS];
    bool known = false;
    const struct rest_route *route = rest_find(h->method, segs, params, &known);
    g_strfreev(segs);
    if (route)
        h->replay_route = route->replay;
    if (!route)
        respond_error(h, known ? ERR_BAD_REQUEST : ERR_NOT_FOUND,
                      known ? "method not allowed on this route" : "no such route");
    else if (route->needs_auth)
        bearer_then(h, rest_run);
    else
        rest_run(h, NULL, NULL);
}

/* True when the request's If-None-Match names etag (or is "*"). */
static bool etag_matches(struct lws *wsi, const char *etag)
{
    char inm[256];
    if (lws_hdr_copy(wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) <= 0)
        return false;
    if (strcmp(inm, "*") == 0)
        return true;
    gchar **tags = g_strsplit(inm, ",", 32);
    bool hit = false;
    for (gchar **t = tags; *t && !hit; t++) {
        const char *v = g_strstrip(*t);
        if (g_str_has_prefix(v, "W/"))
            v += 2;
        hit = strcmp(v, etag) == 0;
    }
    g_strfreev(tags);
    return hit;
}

/* GET of anything else: a file of the console (static_files.c), or 304
 * when the browser's copy is current. */
static void route_static(struct http_pss *h)
{
    struct static_file f;
    if (h->path_odd) {
        respond_error(h, ERR_BAD_REQUEST, "malformed path");
        return;
    }
    switch (static_lookup(h->path, &f)) {
    case STATIC_OK: {
        h->cache_control = f.cache;
        g_strlcpy(h->etag, f.etag, sizeof(h->etag));
        if (etag_matches(h->wsi, f.etag)) {
            respond_bytes(h, 304, f.type, "", 0);
        } else {
            gsize len = 0;
            const void *data = g_bytes_get_data(f.body, &len);
            respond_bytes(h, 200, f.type, data, len);
        }
        g_bytes_unref(f.body);
        return;
    }
    case STATIC_REFUSED:
        log_info("http", "refused static path from %s", h->peer);
        respond_error(h, ERR_BAD_REQUEST, "malformed path");
        return;
    case STATIC_NOT_FOUND:
    default:
        respond_error(h, ERR_NOT_FOUND, "no such route");
        return;
    }
}

/* Routes a complete request, once. */
static void route(struct http_pss *h)
{
    if (h->routed)
        return;
    h->routed = true;
    const char *p = h->path;
    if (strcmp(p, "/healthz") == 0 && h->method == REST_GET) {
        respond_json(h, server.stopping ? 503 : 200,
                     json_pack("{s:s}", "status", server.stopping ? "stopping" : "ok"));
        return;
    }
    if (strcmp(p, "/metrics") == 0 && h->method == REST_GET) {
        char *text = metrics_render(server.store);
        respond_text(h, 200, "text/plain; version=0.0.4", text);
        g_free(text);
        return;
    }
    bool is_post = h->method == REST_POST;
    if (strcmp(p, "/api/v1/auth/login") == 0 && is_post) {
        if (h->body_too_large) {
            respond_error(h, ERR_TOO_LARGE, "request body too large");
            return;
        }
        json_t *body = h->body ? jx_load((const char *)h->body->data, h->body->len) : NULL;
        if (!json_is_object(body))
            respond_error(h, ERR_BAD_REQUEST, "body must be a JSON object");
        else
            route_login(h, body);
        json_decref(body);
        return;
    }
    if (strcmp(p, "/api/v1/auth/refresh") == 0 && is_post) {
        route_refresh(h);
        return;
    }
    if (strcmp(p, "/api/v1/auth/logout") == 0 && is_post) {
        route_logout(h);
        return;
    }
    if (g_str_has_prefix(p, "/api/v1/")) {
        route_rest(h);
        return;
    }
    if (strcmp(p, "/ws") == 0) {
        respond_error(h, ERR_BAD_REQUEST, "/ws is a WebSocket endpoint (subprotocol yjt.v1)");
        return;
    }
    if (h->method == REST_GET) {
        route_static(h);
        return;
    }
    respond_error(h, ERR_NOT_FOUND, "no such route");
}

static int write_response(struct http_pss *h)
{
    if (!h->ready)
        return 0;
    if (!h->headers_sent && commit_failed(h->gen)) {
        /* The store failed a write this response told of. */
        g_clear_pointer(&h->resp, g_free);
        if (h->file_body)
            close(h->file_fd);
        h->file_body = false;
        respond_error(h, ERR_UNAVAILABLE, "store unavailable");
        h->gen = 0; /* tells of nothing */
        return 0;
    }
    if (!h->headers_sent && !commit_durable(h->gen)) {
        /* Nothing goes out before it is durable: the response waits for
         * the flush of the batch it may tell of (http_wake_flushed), and
         * the loop serves others meanwhile. */
        if (!h->serial)
            h->serial = next_serial++;
        g_hash_table_insert(flushing, &h->serial, h);
        return 0;
    }
    if (!h->headers_sent) {
        unsigned char buf[LWS_PRE + 1024];
        unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
        if (lws_add_http_common_headers(h->wsi, (unsigned)h->status, h->content_type, h->resp_len,
                                        &p, end))
            return -1;
        if (h->retry_after_s) {
            char v[24];
            int n = g_snprintf(v, sizeof(v), "%" G_GINT64_FORMAT, h->retry_after_s);
            if (lws_add_http_header_by_name(h->wsi, (const unsigned char *)"retry-after:",
                                            (const unsigned char *)v, n, &p, end))
                return -1;
        }
        const char *cc = h->cache_control ? h->cache_control : "no-store";
        if (lws_add_http_header_by_name(h->wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)cc, (int)strlen(cc), &p, end))
            return -1;
        if (h->etag[0] && lws_add_http_header_by_name(h->wsi, (const unsigned char *)"etag:",
                                                      (const unsigned char *)h->etag,
                                                      (int)strlen(h->etag), &p, end))
            return -1;
        if (h->disposition[0] &&
            lws_add_http_header_by_name(h->wsi, (const unsigned char *)"content-disposition:",
                                        (const unsigned char *)h->disposition,
                                        (int)strlen(h->disposition), &p, end))
            return -1;
        if (lws_add_http_header_by_name(h->wsi, (const unsigned char *)"x-content-type-options:",
                                        (const unsigned char *)"nosniff", 7, &p, end))
            return -1;
        if (lws_finalize_write_http_header(h->wsi, start, &p, end))
            return -1;
        h->headers_sent = true;
        lws_callback_on_writable(h->wsi);
        return 0;
    }
    if (h->file_body) {
        /* A file goes out a chunk per writable turn, never all in memory. */
        static unsigned char chunk[LWS_PRE + FILE_CHUNK];
        size_t want = h->resp_len - h->file_sent;
        if (want > FILE_CHUNK)
            want = FILE_CHUNK;
        ssize_t n = pread(h->file_fd, chunk + LWS_PRE, want, (off_t)h->file_sent);
        if (n != (ssize_t)want)
            return -1; /* the file shrank or failed: the client sees a short body */
        h->file_sent += want;
        bool last = h->file_sent == h->resp_len;
        if (lws_write(h->wsi, chunk + LWS_PRE, want, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
            0)
            return -1;
        if (!last) {
            lws_callback_on_writable(h->wsi);
            return 0;
        }
    } else if (lws_write(h->wsi, (unsigned char *)h->resp + LWS_PRE, h->resp_len,
                         LWS_WRITE_HTTP_FINAL) < 0) {
        return -1;
    }
    struct lws *wsi = h->wsi;
    reset(h);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct http_pss *h = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        reset(h);
        h->wsi = wsi;
        lws_get_peer_simple(wsi, h->peer, sizeof(h->peer));
        if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
            h->method = REST_POST;
        else if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
            h->method = REST_GET;
        else if (lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI))
            h->method = REST_PUT;
        else if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI))
            h->method = REST_DELETE;
        g_strlcpy(h->path, in ? (const char *)in : "", sizeof(h->path));
        h->path_odd = !in || strnlen(in, len) != len || len >= sizeof(h->path);
        char *q = strchr(h->path, '?');
        if (q)
            *q = '\0';
        if (h->method == REST_OTHER) {
            respond_error(h, ERR_BAD_REQUEST, "only GET, POST, PUT and DELETE are served");
            return 0;
        }
        /* A POST with a body answers at BODY_COMPLETION; others now. */
        char cl[24] = "";
        lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
        if ((h->method == REST_POST || h->method == REST_PUT) && cl[0] && strcmp(cl, "0") != 0)
            return 0;
        route(h);
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (h->body_too_large)
            return 0;
        if (!h->body)
            h->body = g_byte_array_new();
        if (h->body->len + len > http_body_limit(h)) {
            h->body_too_large = true;
            g_byte_array_set_size(h->body, 0);
            return 0;
        }
        g_byte_array_append(h->body, in, (guint)len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        route(h);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return write_response(h);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* A WebSocket upgrade without the yjt.v1 subprotocol lands here:
         * refuse it, or it would sit open outside every rule of ws.c. */
        log_debug("http", "refusing a WebSocket upgrade without subprotocol yjt.v1");
        return 1;
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* The server's SSL_CTX, once at start: TLS 1.2 at least, and
         * record buffers released while a connection is idle. */
        if (user) {
            SSL_CTX_set_min_proto_version((SSL_CTX *)user, TLS1_2_VERSION);
            SSL_CTX_set_mode((SSL_CTX *)user, SSL_MODE_RELEASE_BUFFERS);
            log_info("http", "TLS context ready");
        }
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (h)
            reset(h);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
