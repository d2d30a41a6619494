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
 * trip to the server, it looks at most every max_age_ms, and at once
 * after an account write of this process: other processes' changes then
 * show within max_age_ms.
 * Accounts are never deleted (they are disabled), so there is nothing
 * else to follow. */
#include "records/account_cache.h"

#include "common/clock.h"
#include "common/log.h"

#include <glib.h>
#include <string.h>

static struct {
    struct store *st;
    GHashTable *by_id;  /* id -> struct account (owned) */
    GHashTable *by_org; /* org (owned) -> GTree of id -> struct account (borrowed) */
    int64_t rev;        /* newest revision applied */
    int busy;           /* applying changes, or walking orgs (nested) */
    int64_t max_age_ms; /* 0: look before every read */
    int64_t looked_ms;  /* monotonic, of the last look */
    bool written;       /* this process wrote an account since */
} cache;

static gint cmp_id(gconstpointer a, gconstpointer b, gpointer ud)
{
    (void)ud;
    return strcmp(a, b);
}

static void forget(struct account *old)
{
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
    GTree *t = g_hash_table_lookup(cache.by_org, a->org);
    if (!t) {
        t = g_tree_new_full(cmp_id, NULL, NULL, NULL);
        g_hash_table_insert(cache.by_org, g_strdup(a->org), t);
    }
    g_tree_insert(t, a->id, a);
    return true;
}

/* Applies what changed in the store since the last look. Not while changes
 * are being applied or an org is walked (a callback that reads an account):
 * that read sees the cache as it is, and the change waits for the next. */
static int catch_up(void)
{
    if (cache.busy)
        return STORE_OK;
    int64_t now = cache.max_age_ms ? clock_mono_ms() : 0;
    if (cache.max_age_ms && !cache.written && now - cache.looked_ms < cache.max_age_ms)
        return STORE_OK;
    cache.looked_ms = now;
    cache.written = false;
    cache.busy++;
    int rc = store_doc_changes(cache.st, "users", cache.rev, &cache.rev, apply, NULL);
    cache.busy--;
    if (rc != STORE_OK)
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
    int rc = catch_up();
    if (rc != STORE_OK) {
        account_cache_close();
        return rc;
    }
    log_info("account", "%u accounts in memory", g_hash_table_size(cache.by_id));
    return STORE_OK;
}

void account_cache_close(void)
{
    /* Trees first: their keys are the accounts' ids. */
    g_clear_pointer(&cache.by_org, g_hash_table_destroy);
    g_clear_pointer(&cache.by_id, g_hash_table_destroy);
    cache.st = NULL;
}

void account_cache_set_max_age(int64_t max_age_ms)
{
    cache.max_age_ms = max_age_ms;
}

void account_cache_stale(void)
{
    cache.written = true;
}

bool account_cache_serves(struct store *st)
{
    return cache.st && cache.st == st;
}

int account_cache_get(const char *id, struct account **out)
{
    int rc = catch_up();
    if (rc != STORE_OK)
        return rc;
    struct account *a = g_hash_table_lookup(cache.by_id, id);
    if (!a)
        return STORE_ENOTFOUND;
    *out = account_dup(a);
    return STORE_OK;
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
