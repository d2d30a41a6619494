/* Sequences of the SQLite store: per-key rows numbered from 1 (inboxes,
 * the audit log, histories), each with its body inline or a reference to
 * a body shared by the rows of one fan-out; appends, ranges, trims and
 * heads. Large fan-outs keep their rows aside until they settle
 * (store_sqlite_fanout.c); everything here sees those rows too.
 *
 * A settle writes a key's consecutive rows as one row of seqs, a run: its
 * seq is the first one's, and refs (a blob, 8 bytes little-endian per
 * seq) names the shared body of each in turn. One B-tree insert for the
 * pushes a key got since its last settle, instead of one per push. A row
 * with refs NULL is a single one, its body inline or in ref. */
#include "records/store_sqlite.h"

#include "common/jsonx.h"

#include <stdlib.h>
#include <string.h>

/* The last seq of a row of seqs, in SQL. */
#define RUN_LAST "seq + coalesce(length(refs) / 8, 1) - 1"

/* How many seqs a run's blob of refs holds (its size checked: at most
 * SQLS_RUN_MAX, as written), or -1. */
static int run_count(const void *blob, int bytes)
{
    return blob && bytes > 0 && bytes % 8 == 0 && bytes / 8 <= SQLS_RUN_MAX ? bytes / 8 : -1;
}

static int64_t run_ref(const unsigned char *blob, int i)
{
    uint64_t v = 0;
    for (int b = 7; b >= 0; b--)
        v = v << 8 | blob[8 * i + b];
    return (int64_t)v;
}

int sqls_seq_put_run(struct sqlite_store *s, const char *key, int64_t seq, const int64_t *refs,
                     int n)
{
    unsigned char blob[8 * SQLS_RUN_MAX];
    if (n < 1 || n > SQLS_RUN_MAX)
        return STORE_EINVAL;
    sqlite3_stmt *ins = sqls_prep(s, "INSERT INTO seqs(key, seq, body, ref, refs)"
                                     " VALUES(?1, ?2, '', ?3, ?4)");
    if (!ins)
        return STORE_EIO;
    sqlite3_bind_text(ins, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, seq);
    if (n == 1) {
        sqlite3_bind_int64(ins, 3, refs[0]);
        sqlite3_bind_null(ins, 4);
    } else {
        for (int i = 0; i < n; i++)
            for (int b = 0; b < 8; b++)
                blob[8 * i + b] = (unsigned char)((uint64_t)refs[i] >> (8 * b));
        sqlite3_bind_null(ins, 3);
        sqlite3_bind_blob(ins, 4, blob, 8 * n, SQLITE_STATIC);
    }
    return sqls_step_done(ins);
}

/* The head of key in the database: the newest seq it ever had there. That
 * is the last seq of its newest row (a run's last); seq_heads holds the
 * head of a key only from when a trim may have taken all its rows (and,
 * in stores made before, of every key). Pending fan-out rows
 * (sqls_fan_head) come after it. */
int sqls_seq_head(struct sqlite_store *s, const char *key, int64_t *head)
{
    sqlite3_stmt *q = sqls_prep(s, "SELECT max(coalesce((SELECT " RUN_LAST " FROM seqs"
                                   " WHERE key=?1 ORDER BY seq DESC LIMIT 1), 0),"
                                   " coalesce((SELECT last FROM seq_heads WHERE key=?1), 0))");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(q);
    *head = r == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    return r == SQLITE_ROW ? STORE_OK : STORE_EIO;
}

/* Sequences whose heads are remembered, at most: past it, appends to
 * other keys read their heads (nothing is dropped at once, see
 * sqls_rows_forget_all for when all is). */
#define HEADS_MAX 262144

int sqls_seq_head_w(struct sqlite_store *s, const char *key, int64_t *head)
{
    const gint64 *h = g_hash_table_lookup(s->heads, key);
    if (!h)
        return sqls_seq_head(s, key, head);
    *head = *h;
    return STORE_OK;
}

void sqls_seq_head_note(struct sqlite_store *s, const char *key, int64_t head)
{
    gint64 *h = g_hash_table_lookup(s->heads, key);
    if (h) {
        *h = head;
    } else if (g_hash_table_size(s->heads) < HEADS_MAX) {
        h = g_new(gint64, 1);
        *h = head;
        g_hash_table_insert(s->heads, g_strdup(key), h);
    }
}

/* Appends one row to key, after its head. A fan-out to n users so reads n
 * heads and writes n rows: one B-tree write per user, not two. */
static int seq_append_locked(struct sqlite_store *s, const char *key, const char *body, int64_t ref,
                             int64_t *seq_out)
{
    int64_t seq = 0;
    if (sqls_seq_head_w(s, key, &seq) != STORE_OK)
        return STORE_EIO;
    seq++;
    sqlite3_stmt *ins =
        sqls_prep(s, "INSERT INTO seqs(key, seq, body, ref) VALUES(?1, ?2, ?3, ?4)");
    if (!ins)
        return STORE_EIO;
    /* The key is bound without a copy: it outlives the step. */
    sqlite3_bind_text(ins, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, seq);
    if (body) {
        sqlite3_bind_text(ins, 3, body, -1, SQLITE_STATIC);
        sqlite3_bind_null(ins, 4);
    } else {
        sqlite3_bind_text(ins, 3, "", 0, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, ref);
    }
    int rc = sqlite3_step(ins) == SQLITE_DONE ? STORE_OK : STORE_EIO;
    sqlite3_reset(ins);
    if (rc == STORE_OK) {
        *seq_out = seq;
        sqls_seq_head_note(s, key, seq);
    }
    return rc;
}

/* Stores body once, referenced by n sequence rows; *id_out gets its id. */
static int seq_body_add(struct sqlite_store *s, const char *body, int n, int64_t *id_out)
{
    sqlite3_stmt *q = sqls_prep(s, "INSERT INTO seq_bodies(body, refs) VALUES(?1, ?2)");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_text(q, 1, body, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, n);
    int rc = sqlite3_step(q) == SQLITE_DONE ? STORE_OK : STORE_EIO;
    sqlite3_reset(q);
    if (rc == STORE_OK)
        *id_out = sqlite3_last_insert_rowid(s->db);
    return rc;
}

/* A fan-out (one item to many keys) stores the item once and, per key,
 * only a small row that refers to it: the rows of a 10,000-key fan-out
 * shrink from the whole item each (a few hundred bytes) to about 40 bytes,
 * and with them the pages the transaction writes and the cache holds. */
int sqls_seq_append_many(struct store *st, const char *const *keys, int n, json_t *item,
                         int64_t *seqs_out)
{
    struct sqlite_store *s = ((struct sqlite_store *)st);
    char *body = jx_dump(item);
    if (!body)
        return STORE_EINVAL;
    bool fan = n > 1 && sqls_fan_wanted(s, keys, n);
    int rc = STORE_OK;
    /* Rows written here go after the key's pending ones: those settle
     * first, each in a write of its own. */
    for (int i = 0; !fan && rc == STORE_OK && i < n; i++)
        rc = sqls_fan_settle_key(s, keys[i]);
    if (rc != STORE_OK) {
        free(body);
        return rc;
    }
    rc = sqls_begin(s);
    int64_t ref = 0;
    bool shared = n > 1;
    if (rc == STORE_OK && shared)
        rc = seq_body_add(s, body, n, &ref);
    bool fanned = false;
    if (rc == STORE_OK && fan) {
        int64_t *seqs = seqs_out ? seqs_out : g_new(int64_t, (gsize)n);
        rc = sqls_fan_append(s, keys, n, ref, seqs);
        fanned = rc == STORE_OK;
        if (seqs != seqs_out)
            g_free(seqs);
    }
    for (int i = 0; !fan && rc == STORE_OK && i < n; i++) {
        int64_t seq = 0;
        rc = seq_append_locked(s, keys[i], shared ? NULL : body, ref, &seq);
        if (seqs_out)
            seqs_out[i] = seq;
    }
    rc = sqls_finish(s, rc);
    if (rc != STORE_OK && fanned)
        sqls_fan_forget(s, keys, n, ref);
    free(body);
    return rc;
}

int sqls_seq_append(struct store *st, const char *key, json_t *item, int64_t *seq_out)
{
    int64_t seq = 0;
    int rc = sqls_seq_append_many(st, &key, 1, item, &seq);
    if (rc == STORE_OK && seq_out)
        *seq_out = seq;
    return rc;
}

int sqls_seq_last(struct store *st, const char *key, int64_t *seq_out)
{
    if (sqls_fan_head(((struct sqlite_store *)st), key, seq_out))
        return STORE_OK;
    return sqls_seq_head(((struct sqlite_store *)st), key, seq_out);
}

/* Gives cb the row of q it stands on (seq, body in column 1; nothing if
 * the body does not parse); *n counts the rows given, *stopped tells
 * whether cb asked to stop. */
static void give_row(sqlite3_stmt *q, store_seq_cb cb, void *ud, int *n, bool *stopped)
{
    json_t *item = sqls_parse_body(q, 1);
    if (!item)
        return;
    *stopped = !cb(sqlite3_column_int64(q, 0), item, ud);
    json_decref(item);
    (*n)++;
}

/* Calls cb for each row (seq, body) of q, then resets it. */
static int seq_rows(sqlite3_stmt *q, store_seq_cb cb, void *ud, int *n, bool *stopped)
{
    int rc;
    while (!*stopped && (rc = sqlite3_step(q)) == SQLITE_ROW)
        give_row(q, cb, ud, n, stopped);
    if (*stopped)
        rc = SQLITE_DONE;
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

/* Gives the shared body ref as key's row seq (nothing if it is gone). */
static int body_row(struct sqlite_store *s, int64_t seq, int64_t ref, store_seq_cb cb, void *ud,
                    int *n, bool *stopped)
{
    sqlite3_stmt *q = sqls_prep(s, "SELECT ?2, body FROM seq_bodies WHERE id=?1");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, ref);
    sqlite3_bind_int64(q, 2, seq);
    return seq_rows(q, cb, ud, n, stopped);
}

/* The same for rows whose items are shared bodies (a key's pending
 * fan-out rows, or a run's seqs), those after after_seq, until limit (0:
 * no limit) rows in all. */
static int shared_rows(struct sqlite_store *s, const struct sqls_fan_row *rows, guint count,
                       int64_t after_seq, int limit, bool newest_first, store_seq_cb cb, void *ud,
                       int *n, bool *stopped)
{
    for (guint i = 0; i < count && !*stopped && (limit <= 0 || *n < limit); i++) {
        const struct sqls_fan_row *r = &rows[newest_first ? count - 1 - i : i];
        if (r->seq > after_seq && body_row(s, r->seq, r->ref, cb, ud, n, stopped) != STORE_OK)
            return STORE_EIO;
    }
    return STORE_OK;
}

/* The rows of q (seq, body, refs), single ones and runs, then resets it. */
static int range_rows(struct sqlite_store *s, sqlite3_stmt *q, int64_t after_seq, int limit,
                      bool newest_first, store_seq_cb cb, void *ud, int *n, bool *stopped)
{
    int r = SQLITE_DONE, rc = STORE_OK;
    while (rc == STORE_OK && !*stopped && (limit <= 0 || *n < limit) &&
           (r = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_type(q, 2) == SQLITE_NULL) {
            give_row(q, cb, ud, n, stopped); /* a single row (after after_seq) */
            continue;
        }
        /* A run, read out first: cb may write, and move what the
         * statement points at. */
        int64_t seq = sqlite3_column_int64(q, 0);
        const unsigned char *blob = sqlite3_column_blob(q, 2);
        int count = run_count(blob, sqlite3_column_bytes(q, 2));
        if (count < 0) {
            rc = STORE_EIO;
            break;
        }
        struct sqls_fan_row rows[SQLS_RUN_MAX];
        for (int i = 0; i < count; i++)
            rows[i] = (struct sqls_fan_row){seq + i, run_ref(blob, i)};
        rc = shared_rows(s, rows, (guint)count, after_seq, limit, newest_first, cb, ud, n, stopped);
    }
    if (rc == STORE_OK && !*stopped && (limit <= 0 || *n < limit) && r != SQLITE_DONE)
        rc = STORE_EIO;
    sqlite3_reset(q);
    return rc;
}

/* The rows of a range start after this seq: after_seq, or just before a
 * run that holds after_seq and goes on past it. */
#define RANGE_FROM                                                                                 \
    "coalesce((SELECT CASE WHEN " RUN_LAST " > ?2 THEN seq - 1 ELSE ?2 END FROM seqs"              \
    " WHERE key=?1 AND seq<=?2 ORDER BY seq DESC LIMIT 1), ?2)"

/* A key's rows in seqs come before its pending ones: oldest first reads
 * those, then these; newest first the other way round. Reading writes
 * nothing. */
int sqls_seq_range(struct store *st, const char *key, int64_t after_seq, int limit,
                   bool newest_first, store_seq_cb cb, void *ud)
{
    struct sqlite_store *s = ((struct sqlite_store *)st);
    struct sqls_fan_row *pend = NULL;
    guint npend = sqls_fan_rows(s, key, &pend); /* a copy: cb may push */
    int n = 0, rc = STORE_OK;
    bool stopped = false;
    if (newest_first)
        rc = shared_rows(s, pend, npend, after_seq, limit, true, cb, ud, &n, &stopped);
    if (rc == STORE_OK && !stopped && (limit <= 0 || n < limit)) {
        /* Each row gives one seq at least: the limit bounds the rows. */
        sqlite3_stmt *q =
            newest_first
                ? sqls_prep(s,
                            "SELECT s.seq, coalesce(b.body, s.body), s.refs FROM seqs s"
                            " LEFT JOIN seq_bodies b ON b.id=s.ref"
                            " WHERE s.key=?1 AND s.seq>" RANGE_FROM " ORDER BY s.seq DESC LIMIT ?3")
                : sqls_prep(s, "SELECT s.seq, coalesce(b.body, s.body), s.refs FROM seqs s"
                               " LEFT JOIN seq_bodies b ON b.id=s.ref"
                               " WHERE s.key=?1 AND s.seq>" RANGE_FROM " ORDER BY s.seq LIMIT ?3");
        if (!q) {
            g_free(pend);
            return STORE_EIO;
        }
        sqls_bind_text(q, 1, key);
        sqlite3_bind_int64(q, 2, after_seq);
        sqlite3_bind_int(q, 3, limit > 0 ? limit - n : -1);
        rc = range_rows(s, q, after_seq, limit, newest_first, cb, ud, &n, &stopped);
    }
    if (rc == STORE_OK && !newest_first && !stopped)
        rc = shared_rows(s, pend, npend, after_seq, limit, false, cb, ud, &n, &stopped);
    g_free(pend);
    return rc;
}

/* Keeps key's head aside (in seq_heads) if a trim up to upto_seq takes
 * its newest row. */
static int trim_keep_head(struct sqlite_store *s, const char *key, int64_t upto_seq)
{
    int64_t head = 0;
    if (sqls_seq_head(s, key, &head) != STORE_OK)
        return STORE_EIO;
    if (head == 0 || upto_seq < head)
        return STORE_OK;
    sqlite3_stmt *h = sqls_prep(s, "INSERT INTO seq_heads(key, last) VALUES(?1, ?2)"
                                   " ON CONFLICT(key) DO UPDATE SET last=max(last, ?2)");
    if (!h)
        return STORE_EIO;
    sqls_bind_text(h, 1, key);
    sqlite3_bind_int64(h, 2, head);
    return sqls_step_done(h);
}

static void count_ref(GHashTable *refs, int64_t ref)
{
    gpointer n = g_hash_table_lookup(refs, &ref);
    g_hash_table_insert(refs, g_memdup2(&ref, sizeof(ref)),
                        GINT_TO_POINTER(GPOINTER_TO_INT(n) + 1));
}

/* Deletes key's rows up to upto_seq, counting in refs (ref -> seqs) the
 * shared bodies of the seqs deleted. A run cut by upto_seq keeps its later
 * seqs, written again as a run of their own. */
static int trim_rows(struct sqlite_store *s, const char *key, int64_t upto_seq, GHashTable *refs)
{
    sqlite3_stmt *q =
        sqls_prep(s, "DELETE FROM seqs WHERE key=?1 AND seq<=?2 RETURNING seq, ref, refs");
    if (!q)
        return STORE_EIO;
    sqls_bind_text(q, 1, key);
    sqlite3_bind_int64(q, 2, upto_seq);
    GArray *tail = g_array_new(FALSE, FALSE, sizeof(int64_t));
    int r, rc = STORE_OK;
    while (rc == STORE_OK && (r = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(q, 0);
        const unsigned char *run = sqlite3_column_blob(q, 2);
        if (!run) { /* a single row: its body inline, or shared */
            if (sqlite3_column_type(q, 1) != SQLITE_NULL)
                count_ref(refs, sqlite3_column_int64(q, 1));
            continue;
        }
        int count = run_count(run, sqlite3_column_bytes(q, 2));
        if (count < 0)
            rc = STORE_EIO; /* a damaged run (never written so) */
        for (int i = 0; i < count; i++) {
            int64_t ref = run_ref(run, i);
            if (seq + i <= upto_seq)
                count_ref(refs, ref);
            else
                g_array_append_val(tail, ref);
        }
    }
    if (rc == STORE_OK && r != SQLITE_DONE)
        rc = STORE_EIO;
    sqlite3_reset(q);
    if (rc == STORE_OK && tail->len)
        rc = sqls_seq_put_run(s, key, upto_seq + 1, (const int64_t *)(void *)tail->data,
                              (int)tail->len);
    g_array_free(tail, TRUE);
    return rc;
}

/* Takes the seqs counted in refs off their shared bodies, and deletes the
 * bodies no row refers to any more. */
static int release_bodies(struct sqlite_store *s, GHashTable *refs)
{
    GHashTableIter it;
    gpointer k, v;
    int rc = STORE_OK;
    g_hash_table_iter_init(&it, refs);
    while (rc == STORE_OK && g_hash_table_iter_next(&it, &k, &v)) {
        sqlite3_stmt *u = sqls_prep(s, "UPDATE seq_bodies SET refs=refs-?2 WHERE id=?1");
        sqlite3_stmt *d = u ? sqls_prep(s, "DELETE FROM seq_bodies WHERE id=?1 AND refs<=0") : NULL;
        if (!d)
            return STORE_EIO;
        sqlite3_bind_int64(u, 1, *(int64_t *)k);
        sqlite3_bind_int(u, 2, GPOINTER_TO_INT(v));
        rc = sqls_step_done(u);
        if (rc == STORE_OK) {
            sqlite3_bind_int64(d, 1, *(int64_t *)k);
            rc = sqls_step_done(d);
        }
    }
    return rc;
}

/* Deletes the rows of key up to upto_seq, and the shared bodies that no
 * row refers to any more: in one write, so that a failure part way (the
 * rows are gone once the delete has run) undoes it all. */
int sqls_seq_trim(struct store *st, const char *key, int64_t upto_seq)
{
    struct sqlite_store *s = ((struct sqlite_store *)st);
    if (sqls_fan_settle_key(s, key) != STORE_OK)
        return STORE_EIO;
    GHashTable *refs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    int rc = sqls_begin(s);
    if (rc == STORE_OK)
        rc = trim_keep_head(s, key, upto_seq);
    if (rc == STORE_OK)
        rc = trim_rows(s, key, upto_seq, refs);
    if (rc == STORE_OK)
        rc = release_bodies(s, refs);
    g_hash_table_destroy(refs);
    return sqls_finish(s, rc);
}

/* Adds column (its SQL definition after the name) to seqs if missing. */
static int add_column(struct sqlite_store *s, const char *name, const char *def)
{
    char *probe = g_strdup_printf("SELECT %s FROM seqs LIMIT 0", name);
    sqlite3_stmt *q = NULL;
    int r = sqlite3_prepare_v2(s->db, probe, -1, &q, NULL);
    sqlite3_finalize(q);
    g_free(probe);
    if (r == SQLITE_OK)
        return STORE_OK;
    char *alter = g_strdup_printf("ALTER TABLE seqs ADD COLUMN %s %s", name, def);
    r = sqlite3_exec(s->db, alter, NULL, NULL, NULL);
    g_free(alter);
    return r == SQLITE_OK ? STORE_OK : STORE_EIO;
}

/* Stores made before sequence rows could refer to a shared body get the
 * column (their rows keep their inline bodies), and those made before
 * runs the column of a run's refs. */
int sqls_seqs_upgrade(struct sqlite_store *s)
{
    return add_column(s, "ref", "INTEGER") == STORE_OK && add_column(s, "refs", "BLOB") == STORE_OK
               ? STORE_OK
               : STORE_EIO;
}
