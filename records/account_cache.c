/* Every account in memory, for the server's bulk reads.
 *
 * A notice to a division, an alarm to a plant's duty staff, a call to an
 * enterprise's principal: each resolves users by organisation, and read
 * from the store that means parsing every account document of the org
 * (10,000 of them for a large district's notice). yjtd reads accounts far
 * more often than anybody writes one, so it keeps them all here, by id
 * and by org (each org's accounts in id order, as the store's index
 * returns them).
 *
 * The cache is never older than the store: before each read it applies
 * the account documents whose revision is newer than the last one it saw
 * (one indexed query, which usually returns nothing). That covers the
 * server's own writes and those of other processes (yjtctl) alike. On a
 * store shared by several servers (Redis), where that query is a round
 * trip to the server, it looks every max_age_ms in the background (a read
 * sent without waiting, store_doc_changes_later, applied when it is
 * answered), so reads are served from memory without holding the loop,
 * and other processes' changes show within about max_age_ms. A read looks
 * itself, waiting, only after an account write of this process (which it
 * must see), after account_cache_stale(), or when no look was answered
 * for a while (the store away: the read then fails as the store does).
 * account_cache_after_look() waits for a look sent after it was asked,
 * without holding the loop (a login, which must see a password changed
 * elsewhere).
 * Accounts are never deleted (they are disabled), so there is nothing
 * else to follow. */
#include "records/account_cache.h"

#include "common/clock.h"
#include "common/log.h"
#include "records/store_replay.h"

#include <glib.h>
#include <string.h>

static struct {
    struct store *st;
    GHashTable *by_id;  /* id -> struct account (owned) */
    GHashTable *by_org; /* org (owned) -> GTree of id -> struct account (borrowed) */
    GHashTable *by_name; /* username -> struct account (both borrowed) */
    int64_t rev;        /* newest revision applied */
    int busy;           /* applying changes, or walking orgs (nested) */
    int64_t max_age_ms; /* 0: look before every read */
    int64_t looked_ms;  /* monotonic, of the last look */
    /* Accounts this process wrote (account_cache_stale), and how many of
     * those writes an answered look or catch-up has read. */
    uint64_t writes, writes_read;
    /* Looks in the background (max_age_ms > 0). */
    guint tick;
    bool reading;          /* a look sent, not answered yet */
    int64_t reading_after; /* the revision it reads after */
    int64_t reading_ms;    /* when it was sent */
    uint64_t reading_writes; /* writes when it was sent */
    bool closing;          /* answering its waiters as it closes */
    GPtrArray *riders;     /* struct waiter*: answered by the look under way */
    GPtrArray *waiting;    /* struct waiter*: for the next look sent */
    GPtrArray *failed;     /* struct waiter*: a look that could not be sent */
    guint failed_idle;
    unsigned gen; /* bumped at close: answers of an older cache are dropped */
    account_change_fn on_change;
    void *on_change_ud;
} cache;

struct waiter {
    account_cache_cb cb;
    void *ud;
};

/* A look sent later answers this many changes at most; more are read by
 * the next look, sent at once. */
#define LOOK_PAGE 2000

static gint cmp_id(gconstpointer a, gconstpointer b, gpointer ud)
{
    (void)ud;
    return strcmp(a, b);
}

static void forget(struct account *old)
{
    if (old->username && g_hash_table_lookup(cache.by_name, old->username) == old)
        g_hash_table_remove(cache.by_name, old->username);
    GTree *t = g_hash_table_lookup(cache.by_org, old->org);
    if (t) {
        g_tree_remove(t, old->id);
        if (g_tree_nnodes(t) == 0)
            g_hash_table_remove(cache.by_org, old->org);
    }
    g_hash_table_remove(cache.by_id, old->id); /* frees old */
}

/* store_doc_cb: one account document written since the last revision. */
static bool apply(const char *id, json_t *doc, void *ud)
{
    (void)ud;
    struct account *old = g_hash_table_lookup(cache.by_id, id);
    if (old)
        forget(old);
    struct account *a = account_from_json(id, doc);
    if (!a) {
        log_warn("account", "user=%s: stored account cannot be read, left out", id);
        return true;
    }
    g_hash_table_insert(cache.by_id, a->id, a);
    if (a->username)
        g_hash_table_replace(cache.by_name, a->username, a);
    GTree *t = g_hash_table_lookup(cache.by_org, a->org);
    if (!t) {
        t = g_tree_new_full(cmp_id, NULL, NULL, NULL);
        g_hash_table_insert(cache.by_org, g_strdup(a->org), t);
    }
    g_tree_insert(t, a->id, a);
    if (cache.on_change)
        cache.on_change(a, cache.on_change_ud);
    return true;
}

static void look_later(void);
static void start_ticks(void);

/* How long reads are served from memory without an answered look. */
static int64_t stale_limit_ms(void)
{
    return 4 * cache.max_age_ms + 1000;
}

/* This process wrote an account that no answered look has read yet. */
static bool unread_write(void)
{
    return cache.writes != cache.writes_read;
}

bool account_cache_current(void)
{
    if (!cache.st || cache.busy || !cache.tick)
        return true; /* nothing looks in the background: SQLite, or tests */
    if (unread_write() || !cache.max_age_ms)
        return false;
    int64_t age = clock_mono_ms() - cache.looked_ms;
    return age < stale_limit_ms();
}

static void on_held_look(int rc, void *ud)
{
    (void)rc; /* the next run sees the cache as the look left it */
    store_replay_held_done(ud, !cache.closing);
}

void account_cache_as_is(bool on)
{
    cache.busy += on ? 1 : -1;
}

/* Applies what changed in the store since the last look. Not while changes
 * are being applied or an org is walked (a callback that reads an account):
 * that read sees the cache as it is, and the change waits for the next. */
static int catch_up(void)
{
    if (cache.busy)
        return STORE_OK;
    int64_t now = cache.max_age_ms ? clock_mono_ms() : 0;
    if (cache.max_age_ms && !unread_write() && now - cache.looked_ms < cache.max_age_ms)
        return STORE_OK;
    if (cache.tick && !unread_write() && now - cache.looked_ms < stale_limit_ms()) {
        look_later(); /* the background look is late: one now, served meanwhile */
        return STORE_OK;
    }
    /* Inside a request run against a replay (store_replay.h): the look is
     * sent and the run thrown, to be run again once it is answered. */
    struct store_replay *rp = cache.tick ? store_replay_hold(cache.st) : NULL;
    if (rp) {
        account_cache_after_look(on_held_look, rp);
        return STORE_EAGAIN;
    }
    uint64_t writes = cache.writes;
    cache.looked_ms = now;
    cache.busy++;
    int rc = store_doc_changes(cache.st, "users", cache.rev, &cache.rev, apply, NULL);
    cache.busy--;
    if (rc == STORE_OK)
        cache.writes_read = MAX(cache.writes_read, writes);
    else
        log_warn("account", "cannot read account changes from the store");
    return rc;
}

int account_cache_open(struct store *st)
{
    account_cache_close();
    cache.st = st;
    cache.rev = 0;
    cache.by_id =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)account_free);
    cache.by_org =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_tree_unref);
    cache.by_name = g_hash_table_new(g_str_hash, g_str_equal);
    cache.riders = g_ptr_array_new();
    cache.waiting = g_ptr_array_new();
    cache.failed = g_ptr_array_new();
    int rc = catch_up();
    if (rc != STORE_OK) {
        account_cache_close();
        return rc;
    }
    start_ticks();
    log_info("account", "%u accounts in memory", g_hash_table_size(cache.by_id));
    return STORE_OK;
}

static void answer_all(GPtrArray *waiters, int rc)
{
    while (waiters && waiters->len) {
        struct waiter *w = g_ptr_array_steal_index(waiters, 0);
        w->cb(rc, w->ud);
        g_free(w);
    }
}

struct look {
    unsigned gen;
};

/* A look's answer: applied if nothing else looked since it was sent (a
 * waiting look covers it then); its riders hear of it. */
static void on_look(int rc, const struct store_docs *d, void *ud)
{
    struct look *l = ud;
    bool mine = l->gen == cache.gen && cache.st;
    g_free(l);
    if (!mine)
        return;
    cache.reading = false;
    if (rc == STORE_OK && cache.rev == cache.reading_after) {
        cache.busy++;
        for (int i = 0; i < d->n; i++)
            if (d->docs[i])
                apply(d->ids[i], d->docs[i], NULL);
        cache.busy--;
        if (d->last_rev > cache.rev)
            cache.rev = d->last_rev;
        if (d->more) { /* the rest at once: its riders wait for all of it */
            look_later();
            return;
        }
        cache.looked_ms = MAX(cache.looked_ms, cache.reading_ms);
        cache.writes_read = MAX(cache.writes_read, cache.reading_writes);
    } else if (rc != STORE_OK) {
        log_warn("account", "cannot read account changes from the store");
    }
    answer_all(cache.riders, rc);
    if (cache.waiting->len)
        look_later();
}

static gboolean on_failed_idle(gpointer ud)
{
    (void)ud;
    cache.failed_idle = 0;
    answer_all(cache.failed, STORE_EIO);
    return G_SOURCE_REMOVE;
}

/* Sends a look unless one is under way; those waiting ride on it. */
static void look_later(void)
{
    if (cache.reading || !cache.st)
        return;
    cache.reading = true;
    cache.reading_after = cache.rev;
    cache.reading_ms = clock_mono_ms();
    cache.reading_writes = cache.writes; /* this look reads those writes */
    g_ptr_array_extend_and_steal(cache.riders, g_steal_pointer(&cache.waiting));
    cache.waiting = g_ptr_array_new();
    struct look *l = g_new(struct look, 1);
    l->gen = cache.gen;
    int rc = store_doc_changes_later(cache.st, "users", cache.rev, LOOK_PAGE, on_look, l);
    if (rc != STORE_OK) {
        g_free(l);
        cache.reading = false;
        log_warn("account", "cannot read account changes from the store");
        /* told from the loop, as an answer would be */
        g_ptr_array_extend_and_steal(cache.failed, g_steal_pointer(&cache.riders));
        cache.riders = g_ptr_array_new();
        if (!cache.failed_idle)
            cache.failed_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_failed_idle, NULL, NULL);
    }
}

static gboolean on_tick(gpointer ud)
{
    (void)ud;
    look_later();
    return G_SOURCE_CONTINUE;
}

void account_cache_after_look(account_cache_cb cb, void *ud)
{
    if (!cache.st) {
        cb(STORE_EIO, ud);
        return;
    }
    struct waiter *w = g_new(struct waiter, 1);
    w->cb = cb;
    w->ud = ud;
    g_ptr_array_add(cache.waiting, w);
    look_later();
}

static void start_ticks(void)
{
    g_clear_handle_id(&cache.tick, g_source_remove);
    if (cache.st && cache.max_age_ms > 0 && store_reads_later(cache.st))
        cache.tick = g_timeout_add((guint)cache.max_age_ms, on_tick, NULL);
}

void account_cache_close(void)
{
    g_clear_handle_id(&cache.tick, g_source_remove);
    cache.on_change = NULL;
    cache.gen++;
    cache.reading = false;
    cache.st = NULL;
    g_clear_handle_id(&cache.failed_idle, g_source_remove);
    cache.closing = true;
    answer_all(cache.failed, STORE_EIO);
    answer_all(cache.riders, STORE_EIO);
    answer_all(cache.waiting, STORE_EIO);
    cache.closing = false;
    g_clear_pointer(&cache.failed, g_ptr_array_unref);
    g_clear_pointer(&cache.riders, g_ptr_array_unref);
    g_clear_pointer(&cache.waiting, g_ptr_array_unref);
    /* Trees and names first: their keys are the accounts'. */
    g_clear_pointer(&cache.by_name, g_hash_table_destroy);
    g_clear_pointer(&cache.by_org, g_hash_table_destroy);
    g_clear_pointer(&cache.by_id, g_hash_table_destroy);
}

void account_cache_set_max_age(int64_t max_age_ms)
{
    cache.max_age_ms = max_age_ms;
    start_ticks();
}

void account_cache_on_change(account_change_fn fn, void *ud)
{
    cache.on_change = fn;
    cache.on_change_ud = ud;
}

void account_cache_poll(void)
{
    if (cache.st && !cache.tick)
        catch_up(); /* its failure is logged there */
}

void account_cache_stale(void)
{
    cache.writes++;
}

bool account_cache_serves(struct store *st)
{
    return cache.st && cache.st == st;
}

/* A copy of the account that table holds under key, the cache caught up. */
static int look_up(GHashTable *table, const char *key, struct account **out)
{
    int rc = catch_up();
    if (rc != STORE_OK)
        return rc;
    struct account *a = g_hash_table_lookup(table, key);
    if (!a)
        return STORE_ENOTFOUND;
    *out = account_dup(a);
    return STORE_OK;
}

int account_cache_get(const char *id, struct account **out)
{
    return look_up(cache.by_id, id, out);
}

int account_cache_find(const char *username, struct account **out)
{
    return look_up(cache.by_name, username, out);
}

struct each_ctx {
    account_cb cb;
    void *ud;
};

static gboolean each_one(gpointer key, gpointer value, gpointer ud)
{
    (void)key;
    struct each_ctx *ctx = ud;
    return !ctx->cb(value, ctx->ud);
}

int account_cache_each_in_org(const char *org, account_cb cb, void *ud)
{
    int rc = catch_up();
    if (rc != STORE_OK)
        return rc;
    GTree *t = g_hash_table_lookup(cache.by_org, org);
    if (!t)
        return STORE_OK;
    struct each_ctx ctx = {cb, ud};
    cache.busy++;
    g_tree_foreach(t, each_one, &ctx);
    cache.busy--;
    return STORE_OK;
}

int account_cache_each(account_cb cb, void *ud)
{
    int rc = catch_up();
    if (rc != STORE_OK)
        return rc;
    struct each_ctx ctx = {cb, ud};
    cache.busy++;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, cache.by_id);
    while (g_hash_table_iter_next(&it, NULL, &v) && !each_one(NULL, v, &ctx))
        ;
    cache.busy--;
    return STORE_OK;
}
