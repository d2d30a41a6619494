/* Large fan-outs stored whole, their per-key rows settled later.
 *
 * A sequence's rows live in seqs, keyed (key, seq): each key's rows are
 * together, so a push to 10,000 inboxes writes a row into 10,000 places
 * and, once inboxes hold more than a page of rows each, dirties 10,000
 * pages (40 MB of log per push). Instead, a fan-out to FANOUT_MIN keys or
 * more is written as one row of seq_fanouts: its shared body's id and, for
 * each key, the seq it gets (one sequential write of about 35 bytes per
 * key). Its rows are kept here, per key, until they settle into seqs:
 * when they are SETTLE_AGE old (store_seq_settle(), from a timer), in key
 * order and many fan-outs at once, so that a key's page is written once
 * for all the pushes it got meanwhile. A fan-out's row is deleted when
 * the last of its rows has settled.
 *
 * Every read and write of a key sees its pending rows: its head is the
 * newest pending seq, a range reads them after its settled rows, and a
 * write of the key (a trim, a smaller append) first settles them. At open, the rows of
 * every fan-out still stored that are above their key's settled head are
 * pending again: a crash loses none. Pending rows are known only to the
 * process that holds them (or that opens the store after it): inboxes are
 * written and read by one process, the server. */
#include "records/store_sqlite.h"

#include <string.h>

/* Smaller appends write their rows at once. */
#define FANOUT_MIN 32
/* Rows settle once this old ... */
#define SETTLE_AGE_US (G_USEC_PER_SEC / 2)
/* ... or all of them, when this many are pending. */
#define PENDING_MAX (1 << 20)

struct pend_key {
    GArray *rows; /* struct sqls_fan_row, ascending seq */
    gint64 since; /* monotonic time of the oldest */
};

struct sqls_fanouts {
    GTree *keys;      /* key (owned) -> struct pend_key* */
    GHashTable *left; /* fan-out ref (int64_t*, owned) -> its rows not settled (int) */
    size_t rows;
};

static void pend_key_free(gpointer p)
{
    struct pend_key *k = p;
    g_array_free(k->rows, TRUE);
    g_free(k);
}

static gint key_cmp(gconstpointer a, gconstpointer b, gpointer ud)
{
    (void)ud;
    return strcmp(a, b);
}

bool sqls_fan_wanted(const struct sqlite_store *s, const char *const *keys, int n)
{
    if (!s->fan || n < FANOUT_MIN)
        return false;
    /* The keys go into text, one per line after a tab. */
    for (int i = 0; i < n; i++)
        if (strpbrk(keys[i], "\t\n"))
            return false;
    return true;
}

bool sqls_fan_head(struct sqlite_store *s, const char *key, int64_t *head)
{
    struct pend_key *k = s->fan ? g_tree_lookup(s->fan->keys, key) : NULL;
    if (!k)
        return false;
    *head = g_array_index(k->rows, struct sqls_fan_row, k->rows->len - 1).seq;
    return true;
}

guint sqls_fan_rows(struct sqlite_store *s, const char *key, struct sqls_fan_row **out)
{
    struct pend_key *k = s->fan ? g_tree_lookup(s->fan->keys, key) : NULL;
    *out = NULL;
    if (!k)
        return 0;
    *out = g_memdup2(k->rows->data, k->rows->len * sizeof(struct sqls_fan_row));
    return k->rows->len;
}

static struct pend_key *pend_get(struct sqls_fanouts *f, const char *key, gint64 now)
{
    struct pend_key *k = g_tree_lookup(f->keys, key);
    if (!k) {
        k = g_new0(struct pend_key, 1);
        k->rows = g_array_new(FALSE, FALSE, sizeof(struct sqls_fan_row));
        k->since = now;
        g_tree_insert(f->keys, g_strdup(key), k);
    }
    return k;
}

static void left_add(struct sqls_fanouts *f, int64_t ref, int by)
{
    gpointer n = g_hash_table_lookup(f->left, &ref);
    int v = GPOINTER_TO_INT(n) + by;
    if (v > 0)
        g_hash_table_insert(f->left, g_memdup2(&ref, sizeof(ref)), GINT_TO_POINTER(v));
    else
        g_hash_table_remove(f->left, &ref);
}

/* Takes back the newest pending row of keys[0..n), last key first. */
static void unpend(struct sqls_fanouts *f, const char *const *keys, int n)
{
    while (n-- > 0) {
        struct pend_key *k = g_tree_lookup(f->keys, keys[n]);
        g_array_set_size(k->rows, k->rows->len - 1);
        if (k->rows->len == 0)
            g_tree_remove(f->keys, keys[n]);
    }
}

int sqls_fan_append(struct sqlite_store *s, const char *const *keys, int n, int64_t ref,
                    int64_t *seqs_out)
{
    struct sqls_fanouts *f = s->fan;
    gint64 now = g_get_monotonic_time();
    GString *text = g_string_sized_new((gsize)n * 40);
    int rc = STORE_OK, done = 0;
    /* Rows go in at once, so that a key named twice gets two seqs; they
     * come out again if the fan-out's row cannot be written. */
    for (; done < n && rc == STORE_OK; done++) {
        int64_t head = 0;
        if (!sqls_fan_head(s, keys[done], &head))
            rc = sqls_seq_head_w(s, keys[done], &head);
        if (rc != STORE_OK)
            break;
        struct sqls_fan_row row = {head + 1, ref};
        g_array_append_val(pend_get(f, keys[done], now)->rows, row);
        seqs_out[done] = row.seq;
        g_string_append_printf(text, "%" G_GINT64_FORMAT "\t%s\n", row.seq, keys[done]);
    }
    if (rc == STORE_OK) {
        sqlite3_stmt *q = sqls_prep(s, "INSERT INTO seq_fanouts(ref, keys) VALUES(?1, ?2)");
        if (!q) {
            rc = STORE_EIO;
        } else {
            sqlite3_bind_int64(q, 1, ref);
            sqlite3_bind_text(q, 2, text->str, (int)text->len, SQLITE_STATIC);
            rc = sqls_step_done(q);
        }
    }
    g_string_free(text, TRUE);
    if (rc == STORE_OK) {
        f->rows += (size_t)n;
        left_add(f, ref, n);
        for (int i = 0; i < n; i++)
            sqls_seq_head_note(s, keys[i], seqs_out[i]);
        return STORE_OK;
    }
    unpend(f, keys, done);
    return rc;
}

void sqls_fan_forget(struct sqlite_store *s, const char *const *keys, int n, int64_t ref)
{
    struct sqls_fanouts *f = s->fan;
    unpend(f, keys, n);
    f->rows -= (size_t)n;
    g_hash_table_remove(f->left, &ref);
}

/* Writes the pending rows of keys[0..n) into seqs, and deletes the
 * fan-out rows all of whose rows are then settled; the overlay forgets
 * them only once the write has succeeded. */
static int settle(struct sqlite_store *s, char **keys, int n)
{
    struct sqls_fanouts *f = s->fan;
    GHashTable *dec = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    int rc = sqls_begin(s);
    for (int i = 0; rc == STORE_OK && i < n; i++) {
        struct pend_key *k = g_tree_lookup(f->keys, keys[i]);
        for (guint j = 0; rc == STORE_OK && j < k->rows->len; j++) {
            const struct sqls_fan_row *r = &g_array_index(k->rows, struct sqls_fan_row, j);
            sqlite3_stmt *ins = sqls_prep(s, "INSERT INTO seqs(key, seq, body, ref)"
                                             " VALUES(?1, ?2, '', ?3)");
            if (!ins) {
                rc = STORE_EIO;
                break;
            }
            sqlite3_bind_text(ins, 1, keys[i], -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 2, r->seq);
            sqlite3_bind_int64(ins, 3, r->ref);
            rc = sqls_step_done(ins);
            int d = GPOINTER_TO_INT(g_hash_table_lookup(dec, &r->ref)) + 1;
            g_hash_table_insert(dec, g_memdup2(&r->ref, sizeof(r->ref)), GINT_TO_POINTER(d));
        }
    }
    GHashTableIter it;
    gpointer ref, d;
    g_hash_table_iter_init(&it, dec);
    while (rc == STORE_OK && g_hash_table_iter_next(&it, &ref, &d)) {
        if (GPOINTER_TO_INT(g_hash_table_lookup(f->left, ref)) > GPOINTER_TO_INT(d))
            continue;
        sqlite3_stmt *del = sqls_prep(s, "DELETE FROM seq_fanouts WHERE ref=?1");
        if (!del) {
            rc = STORE_EIO;
            break;
        }
        sqlite3_bind_int64(del, 1, *(int64_t *)ref);
        rc = sqls_step_done(del);
    }
    rc = sqls_finish(s, rc);
    if (rc == STORE_OK) {
        g_hash_table_iter_init(&it, dec);
        while (g_hash_table_iter_next(&it, &ref, &d))
            left_add(f, *(int64_t *)ref, -GPOINTER_TO_INT(d));
        for (int i = 0; i < n; i++) {
            struct pend_key *k = g_tree_lookup(f->keys, keys[i]);
            f->rows -= k->rows->len;
            g_tree_remove(f->keys, keys[i]);
        }
    }
    g_hash_table_destroy(dec);
    return rc;
}

int sqls_fan_settle_key(struct sqlite_store *s, const char *key)
{
    if (!s->fan || !g_tree_lookup(s->fan->keys, key))
        return STORE_OK;
    char *k = (char *)key;
    return settle(s, &k, 1);
}

struct pick {
    gint64 now;
    bool all;
    GPtrArray *keys;
    int max;
};

static gboolean pick_old(gpointer key, gpointer value, gpointer ud)
{
    struct pick *p = ud;
    const struct pend_key *k = value;
    if (p->all || p->now - k->since >= SETTLE_AGE_US)
        g_ptr_array_add(p->keys, key);
    return (int)p->keys->len >= p->max;
}

int sqls_seq_settle(struct store *st, int max_keys, bool all)
{
    struct sqlite_store *s = (struct sqlite_store *)st;
    if (!s->fan || g_tree_nnodes(s->fan->keys) == 0 || max_keys <= 0)
        return STORE_OK;
    struct pick p = {g_get_monotonic_time(), all || s->fan->rows > PENDING_MAX, g_ptr_array_new(),
                     max_keys};
    g_tree_foreach(s->fan->keys, pick_old, &p); /* in key order: neighbouring pages */
    int rc = p.keys->len ? settle(s, (char **)p.keys->pdata, (int)p.keys->len) : STORE_OK;
    g_ptr_array_free(p.keys, TRUE);
    return rc;
}

size_t sqls_fan_pending(const struct sqlite_store *s)
{
    return s->fan ? s->fan->rows : 0;
}

/* Loads one stored fan-out: its rows above their key's settled head are
 * pending again. */
static int load_one(struct sqlite_store *s, int64_t ref, const char *text, gint64 now)
{
    struct sqls_fanouts *f = s->fan;
    int pending = 0;
    const char *p = text;
    while (*p) {
        const char *tab = strchr(p, '\t'), *nl = tab ? strchr(tab, '\n') : NULL;
        if (!tab || !nl)
            return STORE_EIO;
        int64_t seq = g_ascii_strtoll(p, NULL, 10);
        char *key = g_strndup(tab + 1, (gsize)(nl - tab - 1));
        int64_t head = 0;
        int rc = STORE_OK;
        if (!sqls_fan_head(s, key, &head))
            rc = sqls_seq_head(s, key, &head);
        if (rc == STORE_OK && seq > head) {
            struct sqls_fan_row row = {seq, ref};
            g_array_append_val(pend_get(f, key, now)->rows, row);
            pending++;
        }
        g_free(key);
        if (rc != STORE_OK)
            return rc;
        p = nl + 1;
    }
    f->rows += (size_t)pending;
    if (pending)
        left_add(f, ref, pending);
    return STORE_OK;
}

int sqls_fan_open(struct sqlite_store *s)
{
    struct sqls_fanouts *f = g_new0(struct sqls_fanouts, 1);
    f->keys = g_tree_new_full(key_cmp, NULL, g_free, pend_key_free);
    f->left = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    s->fan = f;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT ref, keys FROM seq_fanouts ORDER BY ref", -1, &q, NULL) !=
        SQLITE_OK)
        return STORE_EIO;
    gint64 now = g_get_monotonic_time();
    int r, rc = STORE_OK;
    GArray *settled = g_array_new(FALSE, FALSE, sizeof(int64_t));
    while (rc == STORE_OK && (r = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t ref = sqlite3_column_int64(q, 0);
        size_t before = f->rows;
        rc = load_one(s, ref, (const char *)sqlite3_column_text(q, 1), now);
        if (rc == STORE_OK && f->rows == before)
            g_array_append_val(settled, ref); /* every row settled: a leftover */
    }
    if (rc == STORE_OK && r != SQLITE_DONE)
        rc = STORE_EIO;
    sqlite3_finalize(q);
    for (guint i = 0; rc == STORE_OK && i < settled->len; i++) {
        sqlite3_stmt *del = sqls_prep(s, "DELETE FROM seq_fanouts WHERE ref=?1");
        if (!del)
            rc = STORE_EIO;
        else {
            sqlite3_bind_int64(del, 1, g_array_index(settled, int64_t, i));
            rc = sqls_step_done(del);
        }
    }
    g_array_free(settled, TRUE);
    return rc;
}

void sqls_fan_close(struct sqlite_store *s)
{
    if (!s->fan)
        return;
    g_tree_destroy(s->fan->keys);
    g_hash_table_destroy(s->fan->left);
    g_free(s->fan);
    s->fan = NULL;
}
