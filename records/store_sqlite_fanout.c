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
 * order and many fan-outs at once, so that the pushes a key got meanwhile
 * go into one row of seqs (a run, see store_sqlite_seq.c) on one page. A
 * fan-out's row is deleted when the last of its rows has settled.
 *
 * Every read and write of a key sees its pending rows: its head is the
 * newest pending seq, a range reads them after its settled rows, and a
 * write of the key (a trim, a smaller append) first settles them. At open, the rows of
 * every fan-out still stored that are above their key's settled head are
 * pending again: a crash loses none. Pending rows are known only to the
 * process that holds them (or that opens the store after it): inboxes are
 * written and read by one process, the server. */
#include "records/store_sqlite.h"

#include "common/jsonx.h"

#include <string.h>

/* Smaller appends write their rows at once. */
#define FANOUT_MIN 32
/* Rows settle once this old ... */
#define SETTLE_AGE_US (G_USEC_PER_SEC / 2)
/* ... or all of them, when this many are pending. */
#define PENDING_MAX (1 << 20)

struct pend_key {
    char *key;    /* owned; the key of keys */
    GArray *rows; /* struct sqls_fan_row, ascending seq */
    gint64 since; /* monotonic time of the oldest */
    GList link;   /* in order, its data this */
};

/* Keys are found by hash (each append looks up every recipient's) and kept
 * in the order they got their first pending row, which is the order they
 * come due: a fan-out's keys are all due together, in the order it named
 * them. Each tick settles the oldest, sorted into key order. */
struct sqls_fanouts {
    GHashTable *keys; /* key -> struct pend_key* (owned) */
    GQueue order;     /* struct pend_key*, oldest first */
    GHashTable *left; /* fan-out ref (int64_t*, owned) -> its rows not settled (int) */
    size_t rows;
};

static void pend_key_free(gpointer p)
{
    struct pend_key *k = p;
    g_array_free(k->rows, TRUE);
    g_free(k->key);
    g_free(k);
}

/* Forgets key k (its rows settled or taken back). */
static void pend_drop(struct sqls_fanouts *f, struct pend_key *k)
{
    g_queue_unlink(&f->order, &k->link);
    g_hash_table_remove(f->keys, k->key);
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

static struct pend_key *pend_find(struct sqlite_store *s, const char *key)
{
    return s->fan ? g_hash_table_lookup(s->fan->keys, key) : NULL;
}

static int64_t pend_head(const struct pend_key *k)
{
    return g_array_index(k->rows, struct sqls_fan_row, k->rows->len - 1).seq;
}

bool sqls_fan_head(struct sqlite_store *s, const char *key, int64_t *head)
{
    struct pend_key *k = pend_find(s, key);
    if (!k)
        return false;
    *head = pend_head(k);
    return true;
}

guint sqls_fan_rows(struct sqlite_store *s, const char *key, struct sqls_fan_row **out)
{
    struct pend_key *k = pend_find(s, key);
    *out = NULL;
    if (!k)
        return 0;
    *out = g_memdup2(k->rows->data, k->rows->len * sizeof(struct sqls_fan_row));
    return k->rows->len;
}

static struct pend_key *pend_new(struct sqls_fanouts *f, const char *key, gint64 now)
{
    struct pend_key *k = g_new0(struct pend_key, 1);
    k->key = g_strdup(key);
    k->rows = g_array_new(FALSE, FALSE, sizeof(struct sqls_fan_row));
    k->since = now;
    k->link.data = k;
    g_hash_table_insert(f->keys, k->key, k);
    g_queue_push_tail_link(&f->order, &k->link);
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
        struct pend_key *k = g_hash_table_lookup(f->keys, keys[n]);
        g_array_set_size(k->rows, k->rows->len - 1);
        if (k->rows->len == 0)
            pend_drop(f, k);
    }
}

/* Appends "SEQ\tKEY\n" to text (one line per key of every fan-out). */
static void append_line(GString *text, int64_t seq, const char *key)
{
    jx_append_int(text, seq);
    g_string_append_c(text, '\t');
    g_string_append(text, key);
    g_string_append_c(text, '\n');
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
        struct pend_key *k = g_hash_table_lookup(f->keys, keys[done]);
        int64_t head = 0;
        if (k)
            head = pend_head(k);
        else if ((rc = sqls_seq_head_w(s, keys[done], &head)) != STORE_OK)
            break;
        else
            k = pend_new(f, keys[done], now);
        struct sqls_fan_row row = {head + 1, ref};
        g_array_append_val(k->rows, row);
        seqs_out[done] = row.seq;
        append_line(text, row.seq, keys[done]);
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
        return STORE_OK; /* the heads are noted as the rows settle */
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

/* How many rows of each fan-out a settle wrote: few fan-outs, so a short
 * array. A key's rows come in ascending ref, the order the array was
 * filled in, so the entry after the last one counted is tried first. */
struct ref_count {
    int64_t ref;
    int n;
};

static void ref_counted(GArray *counts, guint *hint, int64_t ref)
{
    guint len = counts->len;
    for (guint k = 0; k < len; k++) {
        guint i = (*hint + k) % len;
        struct ref_count *c = &g_array_index(counts, struct ref_count, i);
        if (c->ref == ref) {
            c->n++;
            *hint = (i + 1) % len;
            return;
        }
    }
    struct ref_count c = {ref, 1};
    g_array_append_val(counts, c);
    *hint = 0;
}

/* Writes the pending rows of keys[0..n) into seqs, and deletes the
 * fan-out rows all of whose rows are then settled; the overlay forgets
 * them only once the write has succeeded. */
static int settle(struct sqlite_store *s, struct pend_key **keys, int n)
{
    struct sqls_fanouts *f = s->fan;
    GArray *dec = g_array_new(FALSE, FALSE, sizeof(struct ref_count));
    guint hint = 0;
    int rc = sqls_begin(s);
    for (int i = 0; rc == STORE_OK && i < n; i++) {
        struct pend_key *k = keys[i];
        const struct sqls_fan_row *rows = (const struct sqls_fan_row *)(void *)k->rows->data;
        for (guint j = 0; rc == STORE_OK && j < k->rows->len;) {
            /* consecutive seqs, as a key's pending rows are, make one run */
            int64_t refs[SQLS_RUN_MAX];
            int len = 0;
            do {
                refs[len] = rows[j + (guint)len].ref;
                ref_counted(dec, &hint, refs[len]);
                len++;
            } while (len < SQLS_RUN_MAX && j + (guint)len < k->rows->len &&
                     rows[j + (guint)len].seq == rows[j].seq + len);
            rc = sqls_seq_put_run(s, k->key, rows[j].seq, refs, len);
            j += (guint)len;
        }
    }
    for (guint i = 0; rc == STORE_OK && i < dec->len; i++) {
        const struct ref_count *c = &g_array_index(dec, struct ref_count, i);
        if (GPOINTER_TO_INT(g_hash_table_lookup(f->left, &c->ref)) > c->n)
            continue;
        sqlite3_stmt *del = sqls_prep(s, "DELETE FROM seq_fanouts WHERE ref=?1");
        if (!del) {
            rc = STORE_EIO;
            break;
        }
        sqlite3_bind_int64(del, 1, c->ref);
        rc = sqls_step_done(del);
    }
    rc = sqls_finish(s, rc);
    if (rc == STORE_OK) {
        for (guint i = 0; i < dec->len; i++) {
            const struct ref_count *c = &g_array_index(dec, struct ref_count, i);
            left_add(f, c->ref, -c->n);
        }
        for (int i = 0; i < n; i++) {
            f->rows -= keys[i]->rows->len;
            sqls_seq_head_note(s, keys[i]->key, pend_head(keys[i]));
            pend_drop(f, keys[i]);
        }
    }
    g_array_free(dec, TRUE);
    return rc;
}

int sqls_fan_settle_key(struct sqlite_store *s, const char *key)
{
    struct pend_key *k = pend_find(s, key);
    return k ? settle(s, &k, 1) : STORE_OK;
}

static int by_key(gconstpointer a, gconstpointer b)
{
    return strcmp((*(struct pend_key *const *)a)->key, (*(struct pend_key *const *)b)->key);
}

int sqls_seq_settle(struct store *st, int max_keys, bool all)
{
    struct sqlite_store *s = (struct sqlite_store *)st;
    if (!s->fan || g_queue_is_empty(&s->fan->order) || max_keys <= 0)
        return STORE_OK;
    gint64 now = g_get_monotonic_time();
    all = all || s->fan->rows > PENDING_MAX;
    GPtrArray *keys = g_ptr_array_new();
    for (GList *l = s->fan->order.head; l && (int)keys->len < max_keys; l = l->next) {
        struct pend_key *k = l->data;
        if (!all && now - k->since < SETTLE_AGE_US)
            break; /* the rest came due later still */
        g_ptr_array_add(keys, k);
    }
    g_ptr_array_sort(keys, by_key); /* in key order: neighbouring pages */
    int rc = keys->len ? settle(s, (struct pend_key **)keys->pdata, (int)keys->len) : STORE_OK;
    g_ptr_array_free(keys, TRUE);
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
        struct pend_key *k = g_hash_table_lookup(f->keys, key);
        int64_t head = 0;
        int rc = STORE_OK;
        if (k)
            head = pend_head(k);
        else
            rc = sqls_seq_head(s, key, &head);
        if (rc == STORE_OK && seq > head) {
            struct sqls_fan_row row = {seq, ref};
            g_array_append_val((k ? k : pend_new(f, key, now))->rows, row);
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
    f->keys = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, pend_key_free);
    g_queue_init(&f->order);
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
    g_queue_init(&s->fan->order); /* its links are freed with their keys */
    g_hash_table_destroy(s->fan->keys);
    g_hash_table_destroy(s->fan->left);
    g_free(s->fan);
    s->fan = NULL;
}
