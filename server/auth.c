/* Logins, lockouts, throttling and tokens (see auth.h).
 *
 * A login runs in steps: on the main loop, the cheap checks (source
 * throttled? account locked?) and the account look-up; on a worker thread,
 * the PBKDF2 verification (tens of milliseconds by design); back on the
 * main loop, the outcome is recorded (failure count, lockout, audit) and
 * the caller's callback runs. What the main-loop steps read from the
 * store (the source's failures, a look at the accounts, the lockout) is
 * read without waiting: on Redis the loop serves other connections while
 * the answers travel. Unknown usernames are verified against a dummy hash
 * so they take as long as known ones. */
#include "server/auth.h"

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "records/account_cache.h"
#include "records/audit.h"
#include "records/password.h"
#include "server/bus.h"
#include "server/commit.h"
#include "server/metrics.h"
#include "server/server.h"

#include <glib.h>
#include <openssl/crypto.h>
#include <string.h>

#define MAX_QUEUED_LOGINS 2000

/* A login's steps. Each of the first, third and fourth reads what it
 * needs without waiting (reads sent later, store.h), so that on Redis the
 * loop serves on meanwhile; the step goes on when its answers are in. */
enum login_step {
    LOGIN_LOOKUP, /* the source's failures, and a look at the accounts */
    LOGIN_LOCK,   /* the account's lockout */
    LOGIN_HASH,   /* the password, on a worker */
    LOGIN_RECORD, /* a new look and the lockout, then the outcome */
};

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
    enum login_step step;
    int waits;       /* answers the step still awaits */
    int rc;          /* STORE_OK, or the code of a read that failed */
    double failures; /* the source's failed logins (LOGIN_LOOKUP) */
    struct lockout lock;
    bool told; /* the caller has heard (shut down while it read) */
};

static GThreadPool *pool;
static char *dummy_hash;
static bool stopping;
static GHashTable *reading;            /* struct login_job* awaiting answers */
static GQueue answered = G_QUEUE_INIT; /* jobs whose answers are all in */
static guint answered_idle;

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

/* Ends a job with an error (unless its caller heard already). */
static void job_fail(struct login_job *j, enum err_code err, const char *message)
{
    if (!j->told)
        fail_now(j->cb, j->ud, err, message);
    job_free(j);
}

/* The key counting failed logins from source (g_free). */
static char *addr_key(const char *source)
{
    return g_strconcat("login.fail:", source, NULL);
}

/* Failed logins per source address, over a sliding addr_fail_window_s,
 * counted in the store so that every node sees them. */
static int addr_failures(const char *source, int64_t now, int64_t add, double *count)
{
    char *key = addr_key(source);
    int rc = store_rate_add(server.store, key, (int64_t)server.cfg.addr_fail_window_s * 1000, now,
                            add, -1, count);
    g_free(key);
    return rc;
}

static void on_failure_counted(int rc, double count, void *ud)
{
    (void)count;
    if (rc != STORE_OK)
        log_warn("auth", "cannot count a failed login source=%s", (const char *)ud);
    g_free(ud);
}

/* Adds a failed login from source, without waiting where the store
 * would (its answer is only logged). */
static void addr_failed(const char *source, int64_t now)
{
    if (store_rate_async(server.store)) {
        char *key = addr_key(source), *who = g_strdup(source);
        int rc =
            store_rate_add_async(server.store, key, (int64_t)server.cfg.addr_fail_window_s * 1000,
                                 now, 1, -1, on_failure_counted, who);
        g_free(key);
        if (rc == STORE_OK) {
            commit_watch_store();
            return;
        }
        g_free(who);
    }
    if (addr_failures(source, now, 1, NULL) != STORE_OK)
        log_warn("auth", "cannot count a failed login source=%s", source);
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

/* ---------- a login's reads ---------- */

static void step(struct login_job *j);

static gboolean on_answered_idle(gpointer ud)
{
    (void)ud;
    answered_idle = 0;
    struct login_job *j;
    while ((j = g_queue_pop_head(&answered)))
        step(j);
    return G_SOURCE_REMOVE;
}

/* One answer of the step's reads is in (rc: how it went). The step goes
 * on from the loop once all are, never inside the store call that read
 * the answer; a job whose caller heard already just ends. */
static void job_answered(struct login_job *j, int rc)
{
    if (rc != STORE_OK && j->rc == STORE_OK)
        j->rc = rc;
    if (--j->waits > 0)
        return;
    if (reading)
        g_hash_table_remove(reading, j);
    if (j->told) {
        job_free(j);
        return;
    }
    g_queue_push_tail(&answered, j);
    if (!answered_idle)
        answered_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_answered_idle, NULL, NULL);
}

static void on_looked(int rc, void *ud)
{
    job_answered(ud, rc);
}

/* From inside a store call: only noted. */
static void on_addr_count(int rc, double count, void *ud)
{
    struct login_job *j = ud;
    j->failures = count;
    job_answered(j, rc == STORE_ECONFLICT ? STORE_OK : rc);
}

static void on_lock_read(int rc, const struct store_docs *d, void *ud)
{
    struct login_job *j = ud;
    if (rc == STORE_OK && d->n == 1 && d->docs[0])
        account_lockout_parse(json_string_value(d->docs[0]), &j->lock);
    job_answered(j, rc);
}

/* Starts reads for the job's next step: waits is their number; a read
 * that could not be sent counts as answered with its code. */
static void reads_begin(struct login_job *j, enum login_step next, int waits)
{
    j->step = next;
    j->waits = waits + 1; /* one more, given back at reads_end */
    j->rc = STORE_OK;
    g_hash_table_add(reading, j);
}

static void reads_end(struct login_job *j)
{
    commit_watch_store();
    job_answered(j, STORE_OK);
}

static void read_lock(struct login_job *j)
{
    char *key = account_lockout_key(j->user_id);
    const char *keys[] = {key};
    int rc = store_kv_get_later(server.store, keys, 1, on_lock_read, j);
    g_free(key);
    if (rc != STORE_OK)
        job_answered(j, rc);
}

/* Back on the main loop: record the result of a verification. */
static void record(struct login_job *j)
{
    struct auth_outcome o = {0};
    int64_t now = clock_now_ms();
    struct account *a = NULL;

    if (j->rc != STORE_OK ||
        (j->user_id && account_get(server.store, j->user_id, &a) != STORE_OK)) {
        o.err = ERR_UNAVAILABLE;
        o.message = "store unavailable";
        goto out;
    }
    if (!j->ok || !a) {
        addr_failed(j->source, now);
        metrics_login("failed");
        o.err = ERR_UNAUTHORIZED;
        o.message = "wrong username or password";
        if (a)
            record_failure(a, &j->lock, now, j->source);
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
    if (j->lock.locked_until > now) { /* locked meanwhile by a concurrent attempt */
        metrics_login("locked");
        o.err = ERR_RATE_LIMITED;
        o.message = "account locked after repeated failures";
        o.retry_after_ms = j->lock.locked_until - now;
        goto out;
    }
    if (j->lock.failed || j->lock.locked_until)
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
}

/* The account is known (or not), and not locked: to the hashing workers. */
static void to_hash(struct login_job *j)
{
    j->step = LOGIN_HASH;
    g_thread_pool_push(pool, j, NULL);
}

/* The answers of a step are in: the next one. */
static void step(struct login_job *j)
{
    if (stopping) {
        job_fail(j, ERR_UNAVAILABLE, "server is shutting down");
        return;
    }
    if (j->rc != STORE_OK && j->step != LOGIN_RECORD) {
        job_fail(j, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    switch (j->step) {
    case LOGIN_LOOKUP: {
        if (j->failures >= server.cfg.addr_fail_limit) {
            metrics_login("throttled");
            log_warn("auth", "login throttled source=%s", j->source);
            job_fail(j, ERR_RATE_LIMITED, "too many failed logins from this address");
            return;
        }
        struct account *a = NULL;
        int rc = account_username_valid(j->username) ? account_find(server.store, j->username, &a)
                                                     : STORE_ENOTFOUND;
        if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
            job_fail(j, ERR_UNAVAILABLE, "store unavailable");
            return;
        }
        if (!a) {
            to_hash(j); /* against the dummy hash, as long as a real one */
            return;
        }
        j->user_id = g_strdup(a->id);
        j->pw_hash = g_strdup(a->pw_hash);
        account_free(a);
        reads_begin(j, LOGIN_LOCK, 1);
        read_lock(j);
        reads_end(j);
        return;
    }
    case LOGIN_LOCK:
        if (j->lock.locked_until > clock_now_ms()) {
            metrics_login("locked");
            audit_log(server.store, j->user_id, "login", j->user_id, "locked", j->source);
            struct auth_outcome o = {.err = ERR_RATE_LIMITED,
                                     .message = "account locked after repeated failures",
                                     .retry_after_ms = j->lock.locked_until - clock_now_ms()};
            deliver(j->cb, j->ud, &o);
            job_free(j);
            return;
        }
        to_hash(j);
        return;
    case LOGIN_RECORD:
        record(j);
        return;
    case LOGIN_HASH:
        break;
    }
    job_fail(j, ERR_INTERNAL, "login out of step");
}

/* Back on the main loop from the worker: a new look at the accounts (a
 * password or state changed elsewhere counts now) and the lockout (a
 * concurrent attempt may have locked it), then the outcome. */
static gboolean hashed(gpointer data)
{
    struct login_job *j = data;
    if (stopping) {
        job_fail(j, ERR_UNAVAILABLE, "server is shutting down");
        return G_SOURCE_REMOVE;
    }
    memset(&j->lock, 0, sizeof(j->lock));
    reads_begin(j, LOGIN_RECORD, j->user_id ? 2 : 1);
    account_cache_after_look(on_looked, j);
    if (j->user_id)
        read_lock(j);
    reads_end(j);
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
    g_main_context_invoke(NULL, hashed, j);
}

void auth_login(const char *username, const char *password, const char *device_id,
                const char *source, auth_cb cb, void *ud)
{
    if (stopping) {
        fail_now(cb, ud, ERR_UNAVAILABLE, "server is shutting down");
        return;
    }
    if (g_thread_pool_unprocessed(pool) + g_hash_table_size(reading) >= MAX_QUEUED_LOGINS) {
        fail_now(cb, ud, ERR_BUSY, "too many logins in progress, retry shortly");
        return;
    }
    struct login_job *j = g_new0(struct login_job, 1);
    j->username = g_strdup(username);
    j->password = g_strdup(password);
    j->device_id = g_strdup(device_id);
    j->source = g_strdup(source);
    j->cb = cb;
    j->ud = ud;
    /* The source's failures, counted without waiting where the store
     * would; and a look at the accounts sent now, so that one created or
     * changed elsewhere a moment ago is found. */
    bool count_later = store_rate_async(server.store);
    reads_begin(j, LOGIN_LOOKUP, count_later ? 2 : 1);
    if (count_later) {
        char *key = addr_key(source);
        int rc =
            store_rate_add_async(server.store, key, (int64_t)server.cfg.addr_fail_window_s * 1000,
                                 clock_now_ms(), 0, -1, on_addr_count, j);
        g_free(key);
        if (rc != STORE_OK)
            job_answered(j, rc);
    } else if (addr_failures(source, clock_now_ms(), 0, &j->failures) != STORE_OK) {
        j->rc = STORE_EIO;
    }
    account_cache_after_look(on_looked, j);
    reads_end(j);
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

/* The account of claims judged: TOKEN_OK with *acct, or why not (claims
 * then cleared). rc: the read of the token's revocation. */
static enum token_state judge(int rc, struct token_claims *claims, struct account **acct)
{
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

/* The signature and expiry: TOKEN_OK with claims filled, or why not. */
static enum token_state verify(const char *token, int64_t now, struct token_claims *claims)
{
    int v = token_verify(server.token_key, token, now, claims);
    return v == -2 ? TOKEN_EXPIRED : v < 0 ? TOKEN_INVALID : TOKEN_OK;
}

static char *revoked_key(const char *jti)
{
    return g_strdup_printf("revoked:%s", jti);
}

struct token_check {
    struct token_claims claims;
    auth_token_cb cb;
    void *ud;
    int rc; /* the revocation's read, while the accounts are looked at */
};

static void tell(struct token_check *t, enum token_state st, struct account *acct)
{
    t->cb(st, acct, &t->claims, t->ud);
    account_free(acct);
    token_claims_clear(&t->claims);
    g_free(t);
}

static void on_accounts_current(int rc, void *ud)
{
    struct token_check *t = ud;
    struct account *a = NULL;
    enum token_state st = TOKEN_UNAVAILABLE;
    if (rc == STORE_OK) {
        account_cache_as_is(true); /* as the look left it: no read on the loop */
        st = judge(t->rc, &t->claims, &a);
        account_cache_as_is(false);
    }
    tell(t, st, a);
}

/* Judges t (rc: the revocation's read) and tells, from memory: when the
 * account cache has not been current lately (Redis slow or restarting),
 * once a look at the accounts is answered rather than with a read that
 * holds the loop. */
static void judge_and_tell(struct token_check *t, int rc)
{
    if (rc == STORE_ENOTFOUND && account_cache_serves(server.store) && !account_cache_current()) {
        t->rc = rc;
        account_cache_after_look(on_accounts_current, t);
        return;
    }
    struct account *a = NULL;
    enum token_state st = judge(rc, &t->claims, &a);
    tell(t, st, a);
}

/* The revocation's read answered (from the loop). */
static void on_revoked_read(int rc, const struct store_docs *d, void *ud)
{
    struct token_check *t = ud;
    if (rc == STORE_OK)
        rc = d->n == 1 && d->docs[0] ? STORE_OK : STORE_ENOTFOUND;
    if (rc == STORE_ENOTFOUND)
        remember_clean(t->claims.jti, clock_now_ms());
    judge_and_tell(t, rc);
}

void auth_check_token_later(const char *token, auth_token_cb cb, void *ud)
{
    int64_t now = clock_now_ms();
    struct token_check *t = g_new0(struct token_check, 1);
    t->cb = cb;
    t->ud = ud;
    enum token_state st = verify(token, now, &t->claims);
    if (st != TOKEN_OK) {
        tell(t, st, NULL);
        return;
    }
    if (known_clean(t->claims.jti, now)) { /* no revocation to read */
        judge_and_tell(t, STORE_ENOTFOUND);
        return;
    }
    char *key = revoked_key(t->claims.jti);
    const char *keys[] = {key};
    int rc = store_kv_get_later(server.store, keys, 1, on_revoked_read, t);
    g_free(key);
    if (rc != STORE_OK)
        tell(t, TOKEN_UNAVAILABLE, NULL);
}

int auth_revoke(const struct token_claims *claims)
{
    char *key = revoked_key(claims->jti);
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
    reading = g_hash_table_new(NULL, NULL);
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
    /* Logins still reading: their callers hear now; the jobs end when
     * their answers come (the store and the cache answer as they close). */
    GHashTableIter it;
    gpointer j;
    g_hash_table_iter_init(&it, reading);
    while (g_hash_table_iter_next(&it, &j, NULL)) {
        struct login_job *job = j;
        fail_now(job->cb, job->ud, ERR_UNAVAILABLE, "server is shutting down");
        job->told = true;
    }
    g_clear_pointer(&dummy_hash, g_free);
    g_clear_pointer(&clean, g_hash_table_destroy);
}

void auth_forget_logins(void)
{
    g_clear_pointer(&reading, g_hash_table_destroy);
}
