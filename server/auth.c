/* Logins, lockouts, throttling and tokens (see auth.h).
 *
 * A login runs in three steps: on the main loop, the cheap checks (source
 * throttled? account locked?) and the account look-up; on a worker thread,
 * the PBKDF2 verification (tens of milliseconds by design); back on the
 * main loop, the outcome is recorded (failure count, lockout, audit) and
 * the caller's callback runs. Unknown usernames are verified against a
 * dummy hash so they take as long as known ones. */
#include "server/auth.h"

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "records/account_cache.h"
#include "records/audit.h"
#include "records/password.h"
#include "server/bus.h"
#include "server/metrics.h"
#include "server/server.h"

#include <glib.h>
#include <openssl/crypto.h>
#include <string.h>

#define MAX_QUEUED_LOGINS 2000

struct login_job {
    char *username;
    char *password;
    char *device_id;
    char *source;
    char *user_id; /* NULL for an unknown username */
    char *pw_hash;
    bool ok;
    auth_cb cb;
    void *ud;
};


static GThreadPool *pool;
static char *dummy_hash;
static bool stopping;

static void job_free(struct login_job *j)
{
    g_free(j->username);
    if (j->password)
        OPENSSL_cleanse(j->password, strlen(j->password));
    g_free(j->password);
    g_free(j->device_id);
    g_free(j->source);
    g_free(j->user_id);
    g_free(j->pw_hash);
    g_free(j);
}

static void outcome_clear(struct auth_outcome *o)
{
    account_free(o->acct);
    g_free(o->token);
    token_claims_clear(&o->claims);
}

static void deliver(auth_cb cb, void *ud, struct auth_outcome *o)
{
    if (o->err != ERR_NONE)
        metrics_error(o->err);
    cb(o, ud);
    outcome_clear(o);
}

static void fail_now(auth_cb cb, void *ud, enum err_code err, const char *message)
{
    struct auth_outcome o = {.err = err, .message = message};
    deliver(cb, ud, &o);
}

/* Failed logins per source address, over a sliding addr_fail_window_s,
 * counted in the store so that every node sees them. */
static int addr_failures(const char *source, int64_t now, int64_t add, double *count)
{
    char *key = g_strconcat("login.fail:", source, NULL);
    int rc = store_rate_add(server.store, key, (int64_t)server.cfg.addr_fail_window_s * 1000, now,
                            add, -1, count);
    g_free(key);
    return rc;
}


char *auth_issue(const struct account *acct, const char *device_id, struct token_claims *claims)
{
    int64_t now = clock_now_ms();
    claims->user_id = g_strdup(acct->id);
    claims->jti = id_new("t");
    claims->device_id = g_strdup(device_id ? device_id : "");
    claims->ver = acct->token_ver;
    claims->iat = now;
    claims->exp = now + (int64_t)server.cfg.token_ttl_s * 1000;
    return claims->jti ? token_issue(server.token_key, claims) : NULL;
}

/* Counts a failed password for account a; locks it at lockout_after. The
 * count expires after lockout_s, so rare typos never add up to a lock. */
static void record_failure(const struct account *a, struct lockout *lock, int64_t now,
                           const char *source)
{
    int64_t window = (int64_t)server.cfg.lockout_s * 1000;
    lock->failed++;
    if (lock->failed >= server.cfg.lockout_after) {
        lock->failed = 0;
        lock->locked_until = now + window;
        log_warn("auth", "account %s locked for %d s after %d failed logins", a->id,
                 server.cfg.lockout_s, server.cfg.lockout_after);
        audit_log(server.store, a->id, "account.locked", a->id, "ok", source);
    }
    account_lockout_set(server.store, a->id, lock, now + window);
}

/* Back on the main loop: record the result of a verification. */
static gboolean login_finish(gpointer data)
{
    struct login_job *j = data;
    struct auth_outcome o = {0};
    int64_t now = clock_now_ms();
    struct account *a = NULL;

    if (stopping) {
        o.err = ERR_UNAVAILABLE;
        o.message = "server is shutting down";
        goto out;
    }
    account_cache_stale(); /* a password or state changed elsewhere counts now */
    if (j->user_id && account_get(server.store, j->user_id, &a) != STORE_OK) {
        o.err = ERR_UNAVAILABLE;
        o.message = "store unavailable";
        goto out;
    }
    struct lockout lock = {0};
    if (a && account_lockout_get(server.store, a->id, &lock) != STORE_OK) {
        o.err = ERR_UNAVAILABLE;
        o.message = "store unavailable";
        goto out;
    }
    if (!j->ok || !a) {
        if (addr_failures(j->source, now, 1, NULL) != STORE_OK)
            log_warn("auth", "cannot count a failed login source=%s", j->source);
        metrics_login("failed");
        o.err = ERR_UNAUTHORIZED;
        o.message = "wrong username or password";
        if (a)
            record_failure(a, &lock, now, j->source);
        log_info("auth", "login failed user=%s source=%s", a ? a->id : "(unknown)", j->source);
        audit_log(server.store, a ? a->id : "-", "login", a ? a->id : "-", "failed", j->source);
        goto out;
    }
    if (a->disabled) {
        metrics_login("failed");
        o.err = ERR_FORBIDDEN;
        o.message = "account disabled";
        audit_log(server.store, a->id, "login", a->id, "disabled", j->source);
        goto out;
    }
    if (lock.locked_until > now) { /* locked meanwhile by a concurrent attempt */
        metrics_login("locked");
        o.err = ERR_RATE_LIMITED;
        o.message = "account locked after repeated failures";
        o.retry_after_ms = lock.locked_until - now;
        goto out;
    }
    if (lock.failed || lock.locked_until)
        account_lockout_clear(server.store, a->id);
    o.token = auth_issue(a, j->device_id, &o.claims);
    if (!o.token) {
        o.err = ERR_INTERNAL;
        o.message = "cannot issue token";
        goto out;
    }
    metrics_login("ok");
    log_info("auth", "login ok user=%s device=%s source=%s", a->id, j->device_id, j->source);
    audit_log(server.store, a->id, "login", a->id, "ok", j->source);
    o.acct = a;
    a = NULL;
out:
    account_free(a);
    deliver(j->cb, j->ud, &o);
    job_free(j);
    return G_SOURCE_REMOVE;
}

static void verify_in_worker(gpointer data, gpointer user_data)
{
    (void)user_data;
    struct login_job *j = data;
    bool ok = password_verify(j->password, j->pw_hash ? j->pw_hash : dummy_hash);
    j->ok = ok && j->pw_hash != NULL;
    /* Free this thread's OpenSSL state now: GLib may keep the thread
     * parked past shutdown, where its state would look leaked. */
    OPENSSL_thread_stop();
    g_main_context_invoke(NULL, login_finish, j);
}

void auth_login(const char *username, const char *password, const char *device_id,
                const char *source, auth_cb cb, void *ud)
{
    int64_t now = clock_now_ms();
    if (stopping) {
        fail_now(cb, ud, ERR_UNAVAILABLE, "server is shutting down");
        return;
    }
    double failures = 0;
    if (addr_failures(source, now, 0, &failures) != STORE_OK) {
        fail_now(cb, ud, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    if (failures >= server.cfg.addr_fail_limit) {
        metrics_login("throttled");
        log_warn("auth", "login throttled source=%s", source);
        fail_now(cb, ud, ERR_RATE_LIMITED, "too many failed logins from this address");
        return;
    }
    if (g_thread_pool_unprocessed(pool) >= MAX_QUEUED_LOGINS) {
        fail_now(cb, ud, ERR_BUSY, "too many logins in progress, retry shortly");
        return;
    }

    struct account *a = NULL;
    int rc = account_username_valid(username) ? account_find(server.store, username, &a)
                                              : STORE_ENOTFOUND;
    if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
        fail_now(cb, ud, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    struct lockout lock = {0};
    if (a && account_lockout_get(server.store, a->id, &lock) != STORE_OK) {
        account_free(a);
        fail_now(cb, ud, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    if (a && lock.locked_until > now) {
        metrics_login("locked");
        audit_log(server.store, a->id, "login", a->id, "locked", source);
        struct auth_outcome o = {.err = ERR_RATE_LIMITED,
                                 .message = "account locked after repeated failures",
                                 .retry_after_ms = lock.locked_until - now};
        account_free(a);
        deliver(cb, ud, &o);
        return;
    }
    struct login_job *j = g_new0(struct login_job, 1);
    j->username = g_strdup(username);
    j->password = g_strdup(password);
    j->device_id = g_strdup(device_id);
    j->source = g_strdup(source);
    j->cb = cb;
    j->ud = ud;
    if (a) {
        j->user_id = g_strdup(a->id);
        j->pw_hash = g_strdup(a->pw_hash);
        account_free(a);
    }
    g_thread_pool_push(pool, j, NULL);
}

/* ---------- tokens known not to be revoked (several nodes) ----------
 *
 * Every request with a token asks the store whether it was revoked: a
 * round trip to Redis on the loop. Each revocation is announced on the bus
 * ("auth.revoked"), so a token found not revoked is believed so while the
 * bus has been read without a break since (bus_in_step), for at most
 * CLEAN_MAX_MS, and forgotten when its revocation is heard. A revocation
 * then reaches the other nodes' checks as fast as the bus, not the
 * store. */
#define CLEAN_MAX 100000
#define CLEAN_MAX_MS 30000

struct clean {
    uint64_t epoch; /* bus_in_step() when read */
    int64_t at_ms;
};

static GHashTable *clean; /* jti -> struct clean*; NULL on a single node */

static bool known_clean(const char *jti, int64_t now)
{
    struct clean *e = clean ? g_hash_table_lookup(clean, jti) : NULL;
    uint64_t epoch = bus_in_step();
    return e && epoch && e->epoch == epoch && now - e->at_ms < CLEAN_MAX_MS;
}

static void remember_clean(const char *jti, int64_t now)
{
    if (!clean || !bus_in_step())
        return;
    if (g_hash_table_size(clean) >= CLEAN_MAX)
        g_hash_table_remove_all(clean); /* read again, once each */
    struct clean *e = g_new(struct clean, 1);
    e->epoch = bus_in_step();
    e->at_ms = now;
    g_hash_table_replace(clean, g_strdup(jti), e);
}

static void on_bus_revoked(const char *node, const char *user, const char *data, size_t len,
                           void *ud)
{
    (void)node;
    (void)user;
    (void)ud;
    if (!clean)
        return;
    char *jti = g_strndup(data, len);
    g_hash_table_remove(clean, jti);
    g_free(jti);
}

enum token_state auth_check_token(const char *token, struct account **acct,
                                  struct token_claims *claims)
{
    int64_t now = clock_now_ms();
    int v = token_verify(server.token_key, token, now, claims);
    if (v == -2)
        return TOKEN_EXPIRED;
    if (v < 0)
        return TOKEN_INVALID;
    int rc = STORE_ENOTFOUND;
    if (!known_clean(claims->jti, now)) {
        char *key = g_strdup_printf("revoked:%s", claims->jti);
        rc = store_kv_get(server.store, key, NULL);
        g_free(key);
        if (rc == STORE_ENOTFOUND)
            remember_clean(claims->jti, now);
    }
    enum token_state st = TOKEN_OK;
    struct account *a = NULL;
    if (rc == STORE_OK)
        st = TOKEN_REVOKED;
    else if (rc != STORE_ENOTFOUND)
        st = TOKEN_UNAVAILABLE;
    else if ((rc = account_get(server.store, claims->user_id, &a)) != STORE_OK)
        st = rc == STORE_ENOTFOUND ? TOKEN_INVALID : TOKEN_UNAVAILABLE;
    else if (a->disabled)
        st = TOKEN_DISABLED;
    else if (a->token_ver != claims->ver)
        st = TOKEN_REVOKED;
    if (st != TOKEN_OK) {
        account_free(a);
        token_claims_clear(claims);
        return st;
    }
    *acct = a;
    return TOKEN_OK;
}

int auth_revoke(const struct token_claims *claims)
{
    char *key = g_strdup_printf("revoked:%s", claims->jti);
    int rc = store_kv_set(server.store, key, claims->user_id, claims->exp);
    g_free(key);
    if (clean) { /* after the store has it: a node that hears it reads it there */
        g_hash_table_remove(clean, claims->jti);
        bus_publish("auth.revoked", claims->user_id, claims->jti, strlen(claims->jti));
    }
    return rc;
}

json_t *auth_session_json(const char *token, const struct token_claims *claims,
                          const struct account *acct)
{
    return json_pack("{s:s, s:I, s:o}", "token", token, "expires_at", (json_int_t)claims->exp,
                     "user", account_public_json(acct));
}

int auth_init(void)
{
    GError *err = NULL;
    pool = g_thread_pool_new(verify_in_worker, NULL, server.cfg.hash_threads, TRUE, &err);
    if (!pool) {
        log_error("auth", "cannot start hashing workers: %s", err->message);
        g_error_free(err);
        return -1;
    }
    unsigned char raw[16];
    id_random_bytes(raw, sizeof(raw));
    char *pw = g_strdup_printf("%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3],
                               raw[4], raw[5], raw[6], raw[7]);
    dummy_hash = password_hash(pw, server.cfg.hash_iterations);
    g_free(pw);
    stopping = false;
    if (bus_enabled()) {
        clean = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        bus_on("auth.revoked", on_bus_revoked, NULL);
    }
    return dummy_hash ? 0 : -1;
}

void auth_shutdown(void)
{
    stopping = true;
    if (pool)
        g_thread_pool_free(pool, FALSE, TRUE);
    pool = NULL;
    /* Run the completions the workers queued, so every caller hears back. */
    while (g_main_context_pending(NULL))
        g_main_context_iteration(NULL, FALSE);
    g_clear_pointer(&dummy_hash, g_free);
    g_clear_pointer(&clean, g_hash_table_destroy);
}
