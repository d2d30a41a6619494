/* Rate windows kept in this process, for stores that only one process
 * uses (see store_rate_add in store.h). Each key holds the counts of its
 * current and previous fixed windows; keys whose windows have both passed
 * are dropped as the table grows, so it stays proportional to the keys
 * active in the last two windows. */
#include "records/store.h"

#include <glib.h>

#define SWEEP_MIN 1024

struct rate_entry {
    int64_t window_ms;
    int64_t index; /* of the window whose count is cur */
    int64_t cur, prev;
};

struct rate_table {
    GMutex lock;
    GHashTable *keys; /* key -> struct rate_entry* */
    guint sweep_at;   /* size at which the next sweep runs */
};

static struct rate_table *table_of(struct store *st)
{
    static GMutex init_lock;
    g_mutex_lock(&init_lock);
    if (!st->rates) {
        struct rate_table *t = g_new0(struct rate_table, 1);
        g_mutex_init(&t->lock);
        t->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        t->sweep_at = SWEEP_MIN;
        st->rates = t;
    }
    g_mutex_unlock(&init_lock);
    return st->rates;
}

/* Moves e's windows forward to the one holding now_ms. */
static void roll(struct rate_entry *e, int64_t index)
{
    if (index == e->index + 1)
        e->prev = e->cur;
    else if (index != e->index)
        e->prev = 0;
    if (index != e->index)
        e->cur = 0;
    e->index = index;
}

static void sweep(struct rate_table *t, int64_t now_ms)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, t->keys);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct rate_entry *e = v;
        if (now_ms / e->window_ms > e->index + 1)
            g_hash_table_iter_remove(&it);
    }
    guint size = g_hash_table_size(t->keys);
    t->sweep_at = size * 2 > SWEEP_MIN ? size * 2 : SWEEP_MIN;
}

int store_rate_add_local(struct store *st, const char *key, int64_t window_ms, int64_t now_ms,
                         int64_t n, int64_t limit, double *count_out)
{
    struct rate_table *t = table_of(st);
    int64_t index = now_ms / window_ms;
    double left = 1.0 - (double)(now_ms - index * window_ms) / (double)window_ms;
    int rc = STORE_OK;
    g_mutex_lock(&t->lock);
    struct rate_entry *e = g_hash_table_lookup(t->keys, key);
    if (e && e->window_ms != window_ms) {
        g_hash_table_remove(t->keys, key); /* the window changed: start again */
        e = NULL;
    }
    struct rate_entry fresh = {.window_ms = window_ms, .index = index};
    if (e)
        roll(e, index);
    const struct rate_entry *now = e ? e : &fresh;
    double count = (double)now->prev * left + (double)now->cur;
    if (limit >= 0 && count + (double)n > (double)limit) {
        rc = STORE_ECONFLICT;
    } else if (n > 0) {
        if (!e) {
            if (g_hash_table_size(t->keys) >= t->sweep_at)
                sweep(t, now_ms);
            e = g_new(struct rate_entry, 1);
            *e = fresh;
            g_hash_table_insert(t->keys, g_strdup(key), e);
        }
        e->cur += n;
        count += (double)n;
    }
    g_mutex_unlock(&t->lock);
    if (count_out)
        *count_out = count;
    return rc;
}

void store_rate_table_free(struct rate_table *t)
{
    if (!t)
        return;
    g_hash_table_destroy(t->keys);
    g_mutex_clear(&t->lock);
    g_free(t);
}
