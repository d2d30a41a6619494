/* auth.login, auth.token, auth.refresh, auth.logout and ping over
 * WebSocket, and the enforcement described in session.h. */
#include "server/session.h"
#include "signaling/call.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/presence.h"
#include "records/account_cache.h"
#include "records/org.h"
#include "server/auth.h"
#include "server/bus.h"
#include "server/metrics.h"
#include "server/push_api.h"
#include "server/server.h"
#include "server/ws.h"

#include <string.h>

#define DEVICE_ID_MAX 128
#define PLATFORM_MAX 32

/* Binds c to acct on device, after a successful login or token check. */
static void attach(struct conn *c, const struct account *acct, const struct token_claims *claims,
                   const char *device_id, const char *platform)
{
    if (c->auth_timer) {
        g_source_remove(c->auth_timer);
        c->auth_timer = 0;
    }
    c->authed = true;
    c->user_id = g_strdup(acct->id);
    c->role = g_strdup(acct->role);
    c->org = g_strdup(acct->org);
    c->device_id = g_strdup(device_id);
    char *plat = g_strdup(platform ? platform : "unknown");
    g_free(c->platform); /* platform may point into it */
    c->platform = plat;
    c->jti = g_strdup(claims->jti);
    c->token_ver = claims->ver;
    c->token_exp = claims->exp;
    metrics_conn("none", -1);
    metrics_conn(c->role, 1);
    c->online_ms = clock_now_ms();
    struct conn *old = presence_add(c->user_id, c, c->device_id, c->platform, c->online_ms);
    if (old)
        conn_close(old, 4409, "replaced by a newer connection of the same device");
    push_api_attach(c);
    log_info("ws", "conn=%" G_GUINT64_FORMAT " user=%s role=%s device=%s authenticated", c->serial,
             c->user_id, c->role, c->device_id);
}

static void login_done(struct auth_outcome *o, void *ud)
{
    struct conn_req *p = ud;
    struct conn *c = conn_req_conn(p);
    if (c) {
        c->login_pending = false;
        if (o->err != ERR_NONE) {
            json_t *err = json_pack("{s:O, s:b, s:{s:s, s:s}}", "re", p->id, "ok", 0, "error",
                                    "code", err_name(o->err), "message", o->message);
            if (o->retry_after_ms)
                json_object_set_new(json_object_get(err, "error"), "retry_after_ms",
                                    json_integer(o->retry_after_ms));
            conn_send(c, err, "error");
        } else if (c->authed) {
            conn_reply_error(c, p->id, ERR_CONFLICT, "already authenticated");
        } else {
            attach(c, o->acct, &o->claims, o->claims.device_id, c->platform);
            conn_reply(c, p->id, auth_session_json(o->token, &o->claims, o->acct));
            call_device_online(c->user_id, c->device_id, c->online_ms); /* after the reply */
        }
    }
    conn_req_free(p);
}

static bool device_fields(struct conn *c, json_t *id, json_t *msg, const char **device_id,
                          const char **platform, bool required)
{
    *device_id = jx_str_bounded(msg, "device_id", DEVICE_ID_MAX);
    *platform = jx_str_bounded(msg, "platform", PLATFORM_MAX);
    json_t *d = json_object_get(msg, "device_id"), *p = json_object_get(msg, "platform");
    if ((required && (!*device_id || !*platform)) || (d && !*device_id) || (p && !*platform)) {
        conn_reply_error(c, id, ERR_BAD_REQUEST,
                         "device_id (1-128 chars) and platform (1-32 chars) must be strings");
        return false;
    }
    return true;
}

static void h_login(struct conn *c, json_t *id, json_t *msg)
{
    const char *username = jx_str_bounded(msg, "username", 256);
    const char *password = jx_str_bounded(msg, "password", 256);
    const char *device_id, *platform;
    if (!username || !password) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "username and password must be strings");
        return;
    }
    if (!device_fields(c, id, msg, &device_id, &platform, true))
        return;
    if (c->authed || c->gateway_enterprise) {
        conn_reply_error(c, id, ERR_CONFLICT, "already authenticated");
        return;
    }
    if (c->login_pending) {
        conn_reply_error(c, id, ERR_BUSY, "a login is already in progress");
        return;
    }
    c->login_pending = true;
    g_free(c->platform);
    c->platform = g_strdup(platform ? platform : "unknown");
    auth_login(username, password, device_id, c->peer, login_done, conn_req_new(c, id));
}

static int close_code_for(enum token_state st)
{
    return (st == TOKEN_REVOKED || st == TOKEN_DISABLED) ? 4403 : 4401;
}

static const char *token_message(enum token_state st)
{
    switch (st) {
    case TOKEN_EXPIRED:
        return "token expired";
    case TOKEN_REVOKED:
        return "token revoked";
    case TOKEN_DISABLED:
        return "account disabled";
    case TOKEN_UNAVAILABLE:
        return "store unavailable";
    default:
        return "invalid token";
    }
}

/* An auth.token being checked: the connection and what it asked. */
struct pending_token {
    struct conn_req req;
    char *token, *device_id, *platform;
};

static void token_checked(enum token_state st, const struct account *acct,
                          const struct token_claims *claims, void *ud)
{
    struct pending_token *p = ud;
    struct conn *c = conn_req_conn(&p->req);
    if (!c) /* gone meanwhile */
        goto out;
    c->login_pending = false;
    if (st == TOKEN_UNAVAILABLE) {
        conn_reply_error(c, p->req.id, ERR_UNAVAILABLE, token_message(st));
    } else if (st != TOKEN_OK) {
        conn_reply_error(c, p->req.id, ERR_UNAUTHORIZED, token_message(st));
        conn_close(c, close_code_for(st), token_message(st));
    } else {
        const char *device_id = p->device_id;
        if (!device_id || !*device_id)
            device_id = *claims->device_id ? claims->device_id : "default";
        attach(c, acct, claims, device_id, p->platform);
        conn_reply(c, p->req.id, auth_session_json(p->token, claims, acct));
        call_device_online(c->user_id, c->device_id, c->online_ms); /* after the reply */
    }
out:
    json_decref(p->req.id);
    g_free(p->token);
    g_free(p->device_id);
    g_free(p->platform);
    g_free(p);
}

static void h_token(struct conn *c, json_t *id, json_t *msg)
{
    const char *token = jx_str_bounded(msg, "token", TOKEN_MAX_LEN);
    const char *device_id, *platform;
    if (!token) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "token must be a string");
        return;
    }
    if (!device_fields(c, id, msg, &device_id, &platform, false))
        return;
    if (c->authed || c->gateway_enterprise) {
        conn_reply_error(c, id, ERR_CONFLICT, "already authenticated");
        return;
    }
    if (c->login_pending) {
        conn_reply_error(c, id, ERR_BUSY, "a login is already in progress");
        return;
    }
    /* checked without holding the loop (its revocation read, on Redis) */
    c->login_pending = true;
    struct pending_token *p = g_new0(struct pending_token, 1);
    p->req = (struct conn_req){c->serial, json_incref(id)};
    p->token = g_strdup(token);
    p->device_id = g_strdup(device_id);
    p->platform = g_strdup(platform);
    auth_check_token_later(token, token_checked, p);
}

static bool current_claims(struct conn *c, struct token_claims *claims)
{
    memset(claims, 0, sizeof(*claims));
    claims->user_id = c->user_id;
    claims->jti = c->jti;
    claims->device_id = c->device_id;
    claims->ver = c->token_ver;
    claims->exp = c->token_exp;
    return true;
}

struct revoke_ctx {
    const char *jti;
    uint64_t except;
};

static void close_same_token(void *conn, void *ud)
{
    struct conn *c = conn;
    struct revoke_ctx *r = ud;
    if (c->serial != r->except && c->jti && strcmp(c->jti, r->jti) == 0)
        conn_close(c, 4403, "token revoked");
}

void session_close_token(const char *user_id, const char *jti, uint64_t except)
{
    struct revoke_ctx r = {jti, except};
    presence_each_conn(user_id, close_same_token, &r);
    /* the token's other connections may be held by other nodes */
    bus_publish("session.revoked", user_id, jti, strlen(jti));
}

static void on_revoked(const char *node, const char *user, const char *data, size_t len,
                       void *ud)
{
    (void)node;
    (void)ud;
    char *jti = g_strndup(data, len);
    struct revoke_ctx r = {jti, 0};
    presence_each_conn(user, close_same_token, &r);
    g_free(jti);
}

void session_bus_init(void)
{
    bus_on("session.revoked", on_revoked, NULL);
}

static void h_refresh(struct conn *c, json_t *id, json_t *msg)
{
    (void)msg;
    struct account *acct = NULL;
    if (account_get(server.store, c->user_id, &acct) != STORE_OK) {
        conn_reply_error(c, id, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    struct token_claims old, fresh = {0};
    current_claims(c, &old);
    char *token = auth_issue(acct, c->device_id, &fresh);
    if (!token || auth_revoke(&old) != STORE_OK) {
        conn_reply_error(c, id, ERR_UNAVAILABLE, "cannot refresh the token now");
    } else {
        /* Connections still holding the old token keep working until they
         * close; the old token can no longer open new ones. */
        g_free(c->jti);
        c->jti = g_strdup(fresh.jti);
        c->token_exp = fresh.exp;
        c->token_ver = fresh.ver;
        conn_reply(c, id,
                   json_pack("{s:s, s:I}", "token", token, "expires_at", (json_int_t)fresh.exp));
        log_info("auth", "token refreshed user=%s device=%s", c->user_id, c->device_id);
    }
    g_free(token);
    token_claims_clear(&fresh);
    account_free(acct);
}

static void h_logout(struct conn *c, json_t *id, json_t *msg)
{
    (void)msg;
    struct token_claims claims;
    current_claims(c, &claims);
    if (auth_revoke(&claims) != STORE_OK) {
        conn_reply_error(c, id, ERR_UNAVAILABLE, "cannot revoke the token now");
        return;
    }
    log_info("auth", "logout user=%s device=%s", c->user_id, c->device_id);
    session_close_token(c->user_id, c->jti, c->serial);
    conn_reply(c, id, NULL);
    conn_close(c, 1000, "logged out");
}

static void h_ping(struct conn *c, json_t *id, json_t *msg)
{
    (void)msg;
    conn_reply(c, id, json_pack("{s:I}", "now", (json_int_t)clock_now_ms()));
}

const struct ws_handler session_handlers[] = {
    {"auth.login", h_login, false, false},
    {"auth.token", h_token, false, false},
    {"auth.refresh", h_refresh, true, false},
    {"auth.logout", h_logout, true, false},
    {"ping", h_ping, true, false},
    {NULL, NULL, false, false},
};

/* Closes the connections of an account that changed, if they no longer
 * hold a valid token. */
static void enforce_one(void *conn, void *ud)
{
    struct conn *c = conn;
    const struct account *a = ud;
    if (a->disabled)
        conn_close(c, 4403, "account disabled");
    else if (a->token_ver != c->token_ver)
        conn_close(c, 4403, "token revoked");
}

/* The account cache applied a change of a: closes the connections it
 * no longer allows. */
static void account_changed(const struct account *a, void *ud)
{
    (void)ud;
    presence_each_conn(a->id, enforce_one, (void *)a);
}

static void expire_one(struct conn *c, void *ud)
{
    int64_t now = *(int64_t *)ud;
    if (c->authed && c->token_exp <= now)
        conn_close(c, 4401, "token expired");
}

void session_poll(void)
{
    account_cache_poll();
    int64_t now = clock_now_ms();
    conn_each(expire_one, &now);
}

void session_init(void)
{
    /* Every change the account cache applies from now on, in the
     * background (Redis) or at account_cache_poll() (SQLite). */
    account_cache_on_change(account_changed, NULL);
}
