/* The embedded store backend: one SQLite file in WAL mode under the data
 * directory. yjtd and yjtctl may hold it open at the same time; writers take
 * the write lock with BEGIN IMMEDIATE and wait up to busy_timeout for it.
 * Outside batching, synchronous=FULL makes each commit durable before the
 * call returns, so an acknowledged write survives kill -9 and power loss
 * alike.
 *
 * In batching mode (yjtd) the first write opens a transaction that stays
 * open until store_write_batch(); each write is a savepoint inside it, so
 * it is still all-or-nothing. Many writes then share one flush of the log
 * (store_sync(), which the server runs on its own thread): the server
 * sends nothing that tells of a batch before that flush has returned, so
 * nothing is announced before it is durable. yjtctl does not batch: each
 * of its writes commits, durably, at once. */
#include "records/store_sqlite.h"

#include "common/jsonx.h"
#include "records/store_sqlite_ckpt.h"
#include "records/store_sqlite_vfs.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/* Log pages after which the checkpointer copies them back (SQLite's own
 * default threshold). */
#define CKPT_PAGES 1000

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS docs(coll TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,"
    " rev INTEGER NOT NULL, PRIMARY KEY(coll, id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS docs_by_rev ON docs(coll, rev);"
    "CREATE TABLE IF NOT EXISTS idx(coll TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,"
    " id TEXT NOT NULL, PRIMARY KEY(coll, field, value, id)) WITHOUT ROWID;"
    /* Index rows are found from their document's fields (index_sync), so
     * they need no second B-tree by document: stores made before lose it. */
    "DROP INDEX IF EXISTS idx_by_doc;"
    /* The indexes whose rows every document has (filled when defined). */
    "CREATE TABLE IF NOT EXISTS idx_defs(coll TEXT NOT NULL, field TEXT NOT NULL,"
    " PRIMARY KEY(coll, field)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS seqs(key TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,"
    " ref INTEGER, refs BLOB, PRIMARY KEY(key, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS seq_bodies(id INTEGER PRIMARY KEY, body TEXT NOT NULL,"
    " refs INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS seq_heads(key TEXT PRIMARY KEY, last INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    /* Large fan-outs whose rows are not all in seqs yet (store_sqlite_fanout.c):
     * lines of "seq<TAB>key". */
    "CREATE TABLE IF NOT EXISTS seq_fanouts(ref INTEGER PRIMARY KEY, keys TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS deadlines(id TEXT PRIMARY KEY, due INTEGER NOT NULL,"
    " body TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS deadlines_by_due ON deadlines(due);"
    "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value TEXT NOT NULL,"
    " expire_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    " WITHOUT ROWID;";

static struct sqlite_store *S(struct store *st)
{
    return (struct sqlite_store *)st;
}

/* Returns a reset, cached prepared statement for sql (a string literal). */
sqlite3_stmt *sqls_prep(struct sqlite_store *s, const char *sql)
{
    sqlite3_stmt *stmt = g_hash_table_lookup(s->stmts, sql);
    if (stmt) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        return stmt;
    }
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
        return NULL;
    g_hash_table_insert(s->stmts, (gpointer)sql, stmt);
    return stmt;
}

static int exec(struct sqlite_store *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? STORE_OK : STORE_EIO;
}

/* Runs one statement (a string literal) from the cache: the transaction
 * statements that every write runs, parsed once rather than each time. */
static int run(struct sqlite_store *s, const char *sql)
{
    sqlite3_stmt *stmt = sqls_prep(s, sql);
    if (!stmt)
        return STORE_EIO;
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

/* In batching mode, opens the batch transaction if it is not open yet and
 * tells the owner there is something to commit. */
int sqls_batch_open(struct sqlite_store *s)
{
    if (!s->batching || s->in_batch)
        return STORE_OK;
    if (run(s, "BEGIN IMMEDIATE") != STORE_OK)
        return STORE_EIO;
    sqls_rows_check(s);
    s->in_batch = true;
    if (s->on_dirty)
        s->on_dirty(s->dirty_ud);
    return STORE_OK;
}

/* The next document revision. The counter is read once per transaction
 * (which holds the write lock from its start, so no other process moves
 * it meanwhile), counted here, and written back by rev_save() when the
 * transaction commits: one row write per batch instead of an upsert per
 * document. A write undone inside a batch leaves a gap, never a reuse. */
static int next_rev(struct sqlite_store *s, int64_t *out)
{
    if (!s->rev_loaded) {
        sqlite3_stmt *q = sqls_prep(s, "SELECT value FROM counters WHERE name='store.rev'");
        if (!q)
            return STORE_EIO;
        int r = sqlite3_step(q);
        s->rev = r == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
        sqlite3_reset(q);
        if (r != SQLITE_ROW && r != SQLITE_DONE)
            return STORE_EIO;
        s->rev_loaded = true;
    }
    *out = ++s->rev;
    s->rev_dirty = true;
    return STORE_OK;
}

/* Writes the revision counter back before the transaction commits. */
static int rev_save(struct sqlite_store *s)
{
    if (!s->rev_dirty)
        return STORE_OK;
    sqlite3_stmt *q = sqls_prep(s, "INSERT INTO counters(name, value) VALUES('store.rev', ?1)"
                                 " ON CONFLICT(name) DO UPDATE SET value=excluded.value");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, s->rev);
    s->rev_dirty = false;
    return sqls_step_done(q);
}

/* The transaction ended (committed or not): the counter is read afresh. */
static void rev_forget(struct sqlite_store *s)
{
    s->rev_loaded = s->rev_dirty = false;
}

/* Starts one multi-statement write. */
int sqls_begin(struct sqlite_store *s)
{
    if (!s->batching) {
        int rc = run(s, "BEGIN IMMEDIATE");
        if (rc == STORE_OK)
            sqls_rows_check(s);
        return rc;
    }
    if (sqls_batch_open(s) != STORE_OK)
        return STORE_EIO;
    return run(s, "SAVEPOINT w");
}

/* Ends the write begun by sqls_begin(): kept if rc is STORE_OK, undone if not. */
int sqls_finish(struct sqlite_store *s, int rc)
{
    if (s->batching) {
        if (rc == STORE_OK && run(s, "RELEASE w") == STORE_OK)
            return STORE_OK;
        exec(s, "ROLLBACK TO w");
        exec(s, "RELEASE w");
        sqls_rows_forget_all(s);
        return rc == STORE_OK ? STORE_EIO : rc;
    }
    if (rc == STORE_OK)
        rc = rev_save(s);
    bool ok = rc == STORE_OK && run(s, "COMMIT") == STORE_OK;
    rev_forget(s);
    if (ok)
        return STORE_OK;
    exec(s, "ROLLBACK");
    sqls_rows_forget_all(s);
    return rc == STORE_OK ? STORE_EIO : rc;
}

void sqls_bind_text(sqlite3_stmt *stmt, int i, const char *v)
{
    sqlite3_bind_text(stmt, i, v, -1, SQLITE_TRANSIENT);
}

/* Binds the strings that follow, in order, to parameters 1..n. */
static void bind_texts(sqlite3_stmt *stmt, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 1; i <= n; i++)
        sqls_bind_text(stmt, i, va_arg(ap, const char *));
    va_end(ap);
}

int sqls_step_done(sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

json_t *sqls_parse_body(sqlite3_stmt *stmt, int col)
{
    const char *text = (const char *)sqlite3_column_text(stmt, col);
    return text ? jx_load(text, (size_t)sqlite3_column_bytes(stmt, col)) : NULL;
}

/* Runs a prepared query whose columns are (id, body[, rev]) and calls cb
 * per row; with last_rev, column 2 is the revision and *last_rev gets the
 * last one read. */
static int each_doc(sqlite3_stmt *stmt, store_doc_cb cb, void *ud, int64_t *last_rev)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (last_rev)
            *last_rev = sqlite3_column_int64(stmt, 2);
        json_t *doc = sqls_parse_body(stmt, 1);
        if (!doc)
            continue;
        char *id = g_strdup((const char *)sqlite3_column_text(stmt, 0));
        bool go_on = cb(id, doc, ud);
        g_free(id);
        json_decref(doc);
        if (!go_on) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

static int counter_incr_locked(struct sqlite_store *s, const char *name, int64_t by, int64_t *out)
{
    sqlite3_stmt *stmt = sqls_prep(s, "INSERT INTO counters(name, value) VALUES(?1, ?2)"
                                 " ON CONFLICT(name) DO UPDATE SET value = value + ?2"
                                 " RETURNING value");
    if (!stmt)
        return STORE_EIO;
    sqls_bind_text(stmt, 1, name);
    sqlite3_bind_int64(stmt, 2, by);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && out)
        *out = sqlite3_column_int64(stmt, 0);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

/* Writes the batch to the log. While batching, the connection runs with
 * synchronous=NORMAL, so COMMIT does not wait for the disk: sq_sync()
 * flushes the log afterwards, on whatever thread the server chooses. */
static int sq_commit(struct store *st)
{
    struct sqlite_store *s = S(st);
    if (!s->in_batch)
        return STORE_OK;
    s->in_batch = false;
    bool ok = rev_save(s) == STORE_OK && run(s, "COMMIT") == STORE_OK;
    rev_forget(s);
    if (!ok) {
        exec(s, "ROLLBACK");
        sqls_rows_forget_all(s);
        return STORE_EIO;
    }
    if (s->wal_fd < 0) {
        /* The log exists now: it holds this batch. Both connections keep
         * it open, so it stays the same file until the store closes
         * (checkpoints rewind or truncate it, never replace it). */
        char *wal = g_strconcat(s->path, "-wal", NULL);
        s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
        g_free(wal);
        if (s->wal_fd < 0)
            return STORE_EIO;
    }
    return STORE_OK;
}

/* Every frame COMMIT wrote is in the log file; flushing that file makes
 * them durable (a checkpoint flushes it too before it copies frames into
 * the database). Only the descriptor is touched: safe beside the writer. */
static int sq_sync(struct store *st)
{
    struct sqlite_store *s = S(st);
    if (!s->batching || s->wal_fd < 0)
        return STORE_OK;
    return fdatasync(s->wal_fd) == 0 ? STORE_OK : STORE_EIO;
}

static void sq_set_batching(struct store *st, bool on, void (*on_dirty)(void *ud), void *ud)
{
    struct sqlite_store *s = S(st);
    sq_commit(st);
    sq_sync(st);
    /* A batching writer (yjtd) must not stall on checkpoints; a writer of
     * single commits (yjtctl) keeps SQLite's own. */
    if (on && !s->ckpt)
        s->ckpt = store_ckpt_start(s->db, s->path, CKPT_PAGES);
    else if (!on) {
        store_ckpt_stop(s->ckpt);
        s->ckpt = NULL;
    }
    exec(s, on ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
    s->batching = on;
    s->on_dirty = on_dirty;
    s->dirty_ud = ud;
}

static void sq_close(struct store *st)
{
    struct sqlite_store *s = S(st);
    sq_commit(st);
    sq_sync(st);
    store_ckpt_stop(s->ckpt);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    sqls_fan_close(s);
    g_hash_table_destroy(s->stmts); /* finalizes statements */
    sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(s->db);
    g_ptr_array_free(s->indexes, TRUE);
    g_hash_table_destroy(s->row_cache);
    g_hash_table_destroy(s->heads);
    g_free(s->path);
    g_free(s);
}

static int sq_flush(struct store *st)
{
    return sqlite3_wal_checkpoint_v2(S(st)->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
                   SQLITE_OK
               ? STORE_OK
               : STORE_EIO;
}

static void index_def_free(gpointer p)
{
    struct index_def *d = p;
    g_free(d->coll);
    g_free(d->field);
    g_free(d);
}

/* 1 if the query (sql, a string literal, with two text parameters)
 * returns a row, 0 if not, -1 on error. */
static int row_exists(struct sqlite_store *s, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *q = sqls_prep(s, sql);
    if (!q)
        return -1;
    bind_texts(q, 2, a, b);
    int r = sqlite3_step(q);
    sqlite3_reset(q);
    return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -1;
}

static int index_backfill(struct sqlite_store *s, const struct index_def *d);

/* An index new to this store is filled from the documents already stored,
 * once, as CREATE INDEX would; idx_defs remembers that it was. */
static int sq_index_define(struct store *st, const char *coll, const char *field, bool unique)
{
    struct sqlite_store *s = S(st);
    struct index_def *d = g_new0(struct index_def, 1);
    d->coll = g_strdup(coll);
    d->field = g_strdup(field);
    d->unique = unique;
    g_ptr_array_add(s->indexes, d);
    sqls_rows_forget_all(s); /* cached rows lack this index's */
    int r = row_exists(s, "SELECT 1 FROM idx_defs WHERE coll=?1 AND field=?2", coll, field);
    if (r != 0)
        return r > 0 ? STORE_OK : STORE_EIO;
    int rc = sqls_begin(s);
    if (rc != STORE_OK)
        return rc;
    return sqls_finish(s, index_backfill(s, d));
}

/* One index row a document should have: the value of one indexed field. */
struct index_row {
    const struct index_def *def;
    const char *value; /* borrowed from the document */
};

/* The key of an index row in the sets below: field, a 0x1f, then value
 * (field names are ours and hold no 0x1f, so the key is unambiguous). */
static char *row_key(const char *field, const char *value)
{
    return g_strconcat(field, "\x1f", value, NULL);
}

/* Adds to want (row key -> struct index_row*) the index rows doc should
 * have for one index: a string field gives one value, an array of strings
 * one per element. */
struct rows_ctx {
    const struct index_def *def;
    GHashTable *want;
};

static void row_wanted(json_t *value, void *ud)
{
    struct rows_ctx *x = ud;
    struct index_row *r = g_new(struct index_row, 1);
    r->def = x->def;
    r->value = json_string_value(value);
    g_hash_table_replace(x->want, row_key(x->def->field, r->value), r);
}

static void rows_wanted(const struct index_def *d, json_t *doc, GHashTable *want)
{
    struct rows_ctx x = {d, want};
    store_index_values(doc, d->field, row_wanted, &x);
}

/* Stores the index row (coll, field, value, id), if it is not there. */
static int index_put(struct sqlite_store *s, const char *coll, const char *field,
                     const char *value, const char *id)
{
    sqlite3_stmt *ins = sqls_prep(s, "INSERT OR IGNORE INTO idx(coll, field, value, id)"
                                " VALUES(?1, ?2, ?3, ?4)");
    if (!ins)
        return STORE_EIO;
    bind_texts(ins, 4, coll, field, value, id);
    return sqls_step_done(ins);
}

/* Inserts one index row. Fails with STORE_ECONFLICT if the index is unique
 * and the value belongs to another document. */
static int index_insert(struct sqlite_store *s, const struct index_row *r, const char *id)
{
    const struct index_def *d = r->def;
    if (d->unique) {
        sqlite3_stmt *q = sqls_prep(s, "SELECT 1 FROM idx WHERE coll=?1 AND field=?2 AND value=?3"
                                  " AND id<>?4 LIMIT 1");
        if (!q)
            return STORE_EIO;
        bind_texts(q, 4, d->coll, d->field, r->value, id);
        int rc = sqlite3_step(q);
        sqlite3_reset(q);
        if (rc == SQLITE_ROW)
            return STORE_ECONFLICT;
        if (rc != SQLITE_DONE)
            return STORE_EIO;
    }
    return index_put(s, d->coll, d->field, r->value, id);
}

/* Gives every stored document of d's collection its rows of d. */
static int index_backfill(struct sqlite_store *s, const struct index_def *d)
{
    sqlite3_stmt *q = sqls_prep(s, "SELECT id, body FROM docs WHERE coll=?1");
    sqlite3_stmt *def = sqls_prep(s, "INSERT OR IGNORE INTO idx_defs(coll, field) VALUES(?1, ?2)");
    if (!q || !def)
        return STORE_EIO;
    sqls_bind_text(q, 1, d->coll);
    int rc = STORE_OK, r;
    while (rc == STORE_OK && (r = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *doc = sqls_parse_body(q, 1);
        if (!doc)
            continue;
        GHashTable *rows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        rows_wanted(d, doc, rows);
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, rows);
        while (rc == STORE_OK && g_hash_table_iter_next(&it, NULL, &v)) {
            const struct index_row *row = v;
            rc = index_put(s, d->coll, d->field, row->value,
                           (const char *)sqlite3_column_text(q, 0));
        }
        g_hash_table_destroy(rows);
        json_decref(doc);
    }
    sqlite3_reset(q);
    if (rc != STORE_OK)
        return rc;
    if (r != SQLITE_DONE)
        return STORE_EIO;
    bind_texts(def, 2, d->coll, d->field);
    return sqls_step_done(def);
}

/* The document stored under (coll, id) into *out (NULL if there is none). */
static int stored_doc(struct sqlite_store *s, const char *coll, const char *id, json_t **out)
{
    *out = NULL;
    sqlite3_stmt *q = sqls_prep(s, "SELECT body FROM docs WHERE coll=?1 AND id=?2");
    if (!q)
        return STORE_EIO;
    bind_texts(q, 2, coll, id);
    int r = sqlite3_step(q);
    if (r == SQLITE_ROW)
        *out = sqls_parse_body(q, 0);
    sqlite3_reset(q);
    if (r == SQLITE_ROW && !*out)
        return STORE_EIO;
    return r == SQLITE_ROW || r == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

static bool has_index(struct sqlite_store *s, const char *coll)
{
    for (guint i = 0; i < s->indexes->len; i++)
        if (strcmp(((const struct index_def *)g_ptr_array_index(s->indexes, i))->coll, coll) == 0)
            return true;
    return false;
}

/* The index rows doc should have (row key -> struct index_row*), or NULL
 * if coll has no index. The rows borrow their values from doc. */
static GHashTable *rows_of(struct sqlite_store *s, const char *coll, json_t *doc)
{
    if (!has_index(s, coll))
        return NULL;
    GHashTable *rows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; i < s->indexes->len; i++) {
        const struct index_def *d = g_ptr_array_index(s->indexes, i);
        if (strcmp(d->coll, coll) == 0)
            rows_wanted(d, doc, rows);
    }
    return rows;
}

#define ROW_CACHE_MAX 8192

static void cached_row_free(gpointer p)
{
    struct index_row *r = p;
    g_free((char *)r->value);
    g_free(r);
}

/* A document's remembered rows, and its place in the order of use. */
struct cached_doc {
    GHashTable *rows; /* row key -> struct index_row*, values owned */
    GList link;       /* in row_order; data: the cache's key */
};

static void cached_doc_free(gpointer p)
{
    struct cached_doc *d = p;
    g_hash_table_destroy(d->rows);
    g_free(d);
}

void sqls_rows_forget_all(struct sqlite_store *s)
{
    if (!s->row_cache)
        return;
    g_queue_init(&s->row_order); /* the links go with their entries */
    g_hash_table_remove_all(s->row_cache);
    g_hash_table_remove_all(s->heads);
}

void sqls_rows_check(struct sqlite_store *s)
{
    sqlite3_stmt *q = sqls_prep(s, "PRAGMA data_version");
    int64_t v = -1;
    if (q && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    if (q)
        sqlite3_reset(q);
    if (v < 0 || v != s->data_version)
        sqls_rows_forget_all(s);
    s->data_version = v;
}

static char *doc_key(const char *coll, const char *id)
{
    return g_strconcat(coll, "\x1f", id, NULL);
}

/* Remembers rows (from rows_of) as the index rows (coll, id) now has. When
 * the cache is full, the document used least lately is forgotten: one at
 * a time, so that no write pays for dropping thousands. */
static void rows_remember(struct sqlite_store *s, const char *coll, const char *id,
                          GHashTable *rows)
{
    GHashTable *own = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cached_row_free);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, rows);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const struct index_row *r = v;
        struct index_row *c = g_new(struct index_row, 1);
        c->def = r->def;
        c->value = g_strdup(r->value);
        g_hash_table_insert(own, g_strdup(k), c);
    }
    char *key = doc_key(coll, id);
    struct cached_doc *d = g_hash_table_lookup(s->row_cache, key);
    if (d) {
        g_free(key);
        g_hash_table_destroy(d->rows);
        d->rows = own;
        g_queue_unlink(&s->row_order, &d->link);
        g_queue_push_tail_link(&s->row_order, &d->link);
        return;
    }
    while (g_hash_table_size(s->row_cache) >= ROW_CACHE_MAX) {
        GList *oldest = g_queue_pop_head_link(&s->row_order);
        g_hash_table_remove(s->row_cache, oldest->data);
    }
    d = g_new0(struct cached_doc, 1);
    d->rows = own;
    d->link.data = key;
    g_hash_table_insert(s->row_cache, key, d);
    g_queue_push_tail_link(&s->row_order, &d->link);
}

static GHashTable *rows_remembered(struct sqlite_store *s, const char *coll, const char *id)
{
    char *k = doc_key(coll, id);
    struct cached_doc *d = g_hash_table_lookup(s->row_cache, k);
    g_free(k);
    return d ? d->rows : NULL;
}

static void rows_forget(struct sqlite_store *s, const char *coll, const char *id)
{
    char *k = doc_key(coll, id);
    struct cached_doc *d = g_hash_table_lookup(s->row_cache, k);
    if (d) {
        g_queue_unlink(&s->row_order, &d->link);
        g_hash_table_remove(s->row_cache, k);
    }
    g_free(k);
}

static int index_delete(struct sqlite_store *s, const char *coll, const char *field,
                        const char *value, const char *id)
{
    sqlite3_stmt *del =
        sqls_prep(s, "DELETE FROM idx WHERE coll=?1 AND field=?2 AND value=?3 AND id=?4");
    if (!del)
        return STORE_EIO;
    bind_texts(del, 4, coll, field, value, id);
    return sqls_step_done(del);
}

/* Brings the index rows of (coll, id) in line with doc, touching only the
 * rows that change. The rows the stored document has are worked out from
 * its fields (so no second B-tree maps documents to their rows; every
 * index was filled when it was defined): those doc no longer has are
 * deleted, those it newly has inserted, and those it keeps are left
 * alone. A call record saved at invite, answer and end so rewrites
 * one or two of its rows instead of all of them. Fails with
 * STORE_ECONFLICT, writing nothing more, if a new unique value belongs to
 * another document. *rows_out gets doc's rows (rows_of; NULL if coll has
 * no index), for the caller to remember once the write is done. */
static int index_sync(struct sqlite_store *s, const char *coll, const char *id, json_t *doc,
                      bool is_new, GHashTable **rows_out)
{
    GHashTable *want = rows_of(s, coll, doc);
    *rows_out = want;
    if (!want)
        return STORE_OK; /* nothing of coll is indexed */
    json_t *old = NULL;
    GHashTable *cached = is_new ? NULL : rows_remembered(s, coll, id);
    int rc = is_new || cached ? STORE_OK : stored_doc(s, coll, id, &old);
    GHashTable *have = cached ? cached : old ? rows_of(s, coll, old) : NULL;
    GHashTableIter it;
    gpointer k, v;
    if (have) {
        g_hash_table_iter_init(&it, have);
        while (rc == STORE_OK && g_hash_table_iter_next(&it, &k, &v)) {
            const struct index_row *r = v;
            if (!g_hash_table_contains(want, k))
                rc = index_delete(s, coll, r->def->field, r->value, id);
        }
    }
    g_hash_table_iter_init(&it, want);
    while (rc == STORE_OK && g_hash_table_iter_next(&it, &k, &v)) {
        if (!have || !g_hash_table_contains(have, k)) /* kept rows are there */
            rc = index_insert(s, v, id);
    }
    if (have && !cached)
        g_hash_table_destroy(have);
    json_decref(old);
    return rc;
}

/* Deletes the index rows of the stored document (coll, id). */
static int unindex_doc(struct sqlite_store *s, const char *coll, const char *id)
{
    if (!has_index(s, coll))
        return STORE_OK;
    json_t *old = NULL;
    GHashTable *cached = rows_remembered(s, coll, id);
    int rc = cached ? STORE_OK : stored_doc(s, coll, id, &old);
    GHashTable *have = cached ? cached : old ? rows_of(s, coll, old) : NULL;
    if (have) {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, have);
        while (rc == STORE_OK && g_hash_table_iter_next(&it, NULL, &v)) {
            const struct index_row *r = v;
            rc = index_delete(s, coll, r->def->field, r->value, id);
        }
        if (!cached)
            g_hash_table_destroy(have);
    }
    rows_forget(s, coll, id); /* frees cached */
    json_decref(old);
    return rc;
}

static int doc_put_locked(struct sqlite_store *s, const char *coll, const char *id, json_t *doc,
                          bool create_only)
{
    if (create_only) {
        int r = row_exists(s, "SELECT 1 FROM docs WHERE coll=?1 AND id=?2", coll, id);
        if (r != 0)
            return r > 0 ? STORE_ECONFLICT : STORE_EIO;
    }
    GHashTable *rows = NULL;
    int rc = index_sync(s, coll, id, doc, create_only, &rows);
    int64_t rev = 0;
    if (rc == STORE_OK)
        rc = next_rev(s, &rev);
    char *body = rc == STORE_OK ? jx_dump(doc) : NULL;
    sqlite3_stmt *up = sqls_prep(s, "INSERT INTO docs(coll, id, body, rev) VALUES(?1, ?2, ?3, ?4)"
                               " ON CONFLICT(coll, id) DO UPDATE SET body=?3, rev=?4");
    if (rc == STORE_OK && (!up || !body))
        rc = STORE_EIO;
    if (rc == STORE_OK) {
        bind_texts(up, 3, coll, id, body);
        sqlite3_bind_int64(up, 4, rev);
        rc = sqlite3_step(up) == SQLITE_DONE ? STORE_OK : STORE_EIO;
        sqlite3_reset(up);
    }
    free(body);
    if (rc == STORE_OK && rows)
        rows_remember(s, coll, id, rows);
    if (rows)
        g_hash_table_destroy(rows);
    return rc;
}

static int sq_doc_put(struct store *st, const char *coll, const char *id, json_t *doc,
                      bool create_only)
{
    struct sqlite_store *s = S(st);
    int rc = sqls_begin(s);
    if (rc != STORE_OK)
        return rc;
    return sqls_finish(s, doc_put_locked(s, coll, id, doc, create_only));
}

static int sq_doc_get(struct store *st, const char *coll, const char *id, json_t **out)
{
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT body FROM docs WHERE coll=?1 AND id=?2");
    if (!q)
        return STORE_EIO;
    bind_texts(q, 2, coll, id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *out = sqls_parse_body(q, 0);
        sqlite3_reset(q);
        return *out ? STORE_OK : STORE_EIO;
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_ENOTFOUND : STORE_EIO;
}

static int sq_doc_delete(struct store *st, const char *coll, const char *id)
{
    struct sqlite_store *s = S(st);
    int rc = sqls_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = unindex_doc(s, coll, id);
    if (rc == STORE_OK) {
        sqlite3_stmt *del = sqls_prep(s, "DELETE FROM docs WHERE coll=?1 AND id=?2");
        if (!del)
            return sqls_finish(s, STORE_EIO);
        bind_texts(del, 2, coll, id);
        int r = sqlite3_step(del);
        sqlite3_reset(del);
        rc = r != SQLITE_DONE ? STORE_EIO : (sqlite3_changes(s->db) ? STORE_OK : STORE_ENOTFOUND);
    }
    return sqls_finish(s, rc);
}

static int sq_doc_list(struct store *st, const char *coll, store_doc_cb cb, void *ud)
{
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT id, body FROM docs WHERE coll=?1 ORDER BY id");
    if (!q)
        return STORE_EIO;
    sqls_bind_text(q, 1, coll);
    return each_doc(q, cb, ud, NULL);
}

static int sq_index_find(struct store *st, const char *coll, const char *field, const char *value,
                         bool prefix, store_doc_cb cb, void *ud)
{
    sqlite3_stmt *q;
    if (prefix) {
        /* A range scan [value, value + U+10FFFF) is a prefix match on the
         * primary key without LIKE's escaping rules. */
        q = sqls_prep(S(st),
                 "SELECT d.id, d.body FROM idx i JOIN docs d ON d.coll=i.coll AND d.id=i.id"
                 " WHERE i.coll=?1 AND i.field=?2 AND i.value>=?3 AND i.value<?3||char(1114111)"
                 " ORDER BY i.value, i.id");
    } else {
        q = sqls_prep(S(st), "SELECT d.id, d.body FROM idx i JOIN docs d ON d.coll=i.coll AND d.id=i.id"
                        " WHERE i.coll=?1 AND i.field=?2 AND i.value=?3 ORDER BY i.id");
    }
    if (!q)
        return STORE_EIO;
    bind_texts(q, 3, coll, field, value);
    return each_doc(q, cb, ud, NULL);
}

static int sq_doc_changes(struct store *st, const char *coll, int64_t after_rev, int64_t *last_rev,
                          store_doc_cb cb, void *ud)
{
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT id, body, rev FROM docs WHERE coll=?1 AND rev>?2"
                                  " ORDER BY rev");
    if (!q)
        return STORE_EIO;
    sqls_bind_text(q, 1, coll);
    sqlite3_bind_int64(q, 2, after_rev);
    int64_t last = after_rev;
    int rc = each_doc(q, cb, ud, &last);
    if (last_rev)
        *last_rev = last;
    return rc;
}

static int sq_deadline_set(struct store *st, const char *id, int64_t due_ms, json_t *payload)
{
    if (sqls_batch_open(S(st)) != STORE_OK)
        return STORE_EIO;
    char *body = jx_dump(payload);
    sqlite3_stmt *q = sqls_prep(S(st), "INSERT INTO deadlines(id, due, body) VALUES(?1, ?2, ?3)"
                                  " ON CONFLICT(id) DO UPDATE SET due=?2, body=?3");
    if (!q || !body) {
        free(body);
        return STORE_EIO;
    }
    sqls_bind_text(q, 1, id);
    sqlite3_bind_int64(q, 2, due_ms);
    sqls_bind_text(q, 3, body);
    free(body);
    return sqls_step_done(q);
}

static int sq_deadline_set_many(struct store *st, const char *const *ids, int n,
                                const int64_t *due_ms, json_t *const *payloads)
{
    struct sqlite_store *s = S(st);
    int rc = sqls_begin(s);
    for (int i = 0; rc == STORE_OK && i < n; i++)
        rc = sq_deadline_set(st, ids[i], due_ms[i], payloads[i]);
    return sqls_finish(s, rc);
}

static int sq_deadline_delete(struct store *st, const char *id)
{
    if (sqls_batch_open(S(st)) != STORE_OK)
        return STORE_EIO;
    sqlite3_stmt *q = sqls_prep(S(st), "DELETE FROM deadlines WHERE id=?1");
    if (!q)
        return STORE_EIO;
    sqls_bind_text(q, 1, id);
    return sqls_step_done(q);
}

static int sq_deadline_claim(struct store *st, const char *id, int64_t due_ms, int64_t until_ms)
{
    struct sqlite_store *s = S(st);
    int rc = sqls_begin(s);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *q = sqls_prep(s, "UPDATE deadlines SET due=?3 WHERE id=?1 AND due=?2");
    if (!q)
        return sqls_finish(s, STORE_EIO);
    sqls_bind_text(q, 1, id);
    sqlite3_bind_int64(q, 2, due_ms);
    sqlite3_bind_int64(q, 3, until_ms);
    rc = sqls_step_done(q);
    if (rc == STORE_OK && sqlite3_changes(s->db) == 0) {
        int r = row_exists(s, "SELECT 1 FROM deadlines WHERE id=?1 AND id=?2", id, id);
        rc = r > 0 ? STORE_ECONFLICT : r == 0 ? STORE_ENOTFOUND : STORE_EIO;
    }
    return sqls_finish(s, rc);
}

/* Moves deadline id to until_ms if it is due at now_ms (STORE_OK, with
 * its due time and payload); STORE_ECONFLICT with its due time if not
 * due, STORE_ENOTFOUND if absent. The move is sq_deadline_claim's. */
static int sq_deadline_take(struct store *st, const char *id, int64_t now_ms, int64_t until_ms,
                            int64_t *due_out, json_t **payload_out)
{
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT due, body FROM deadlines WHERE id=?1");
    if (!q)
        return STORE_EIO;
    sqls_bind_text(q, 1, id);
    int r = sqlite3_step(q);
    int64_t due = r == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    json_t *body = r == SQLITE_ROW && due <= now_ms ? sqls_parse_body(q, 1) : NULL;
    sqlite3_reset(q);
    *due_out = due;
    int rc = r == SQLITE_DONE  ? STORE_ENOTFOUND
             : r != SQLITE_ROW ? STORE_EIO
             : due > now_ms    ? STORE_ECONFLICT
             : body            ? sq_deadline_claim(st, id, due, until_ms)
                               : STORE_EIO;
    if (rc == STORE_OK)
        *payload_out = body;
    else
        json_decref(body);
    return rc;
}

static int sq_deadline_due(struct store *st, int64_t now_ms, int limit, store_deadline_cb cb,
                           void *ud)
{
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT id, due, body FROM deadlines WHERE due<=?1"
                                  " ORDER BY due LIMIT ?2");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, now_ms);
    sqlite3_bind_int(q, 2, limit > 0 ? limit : -1);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *body = sqls_parse_body(q, 2);
        if (!body)
            continue;
        char *id = g_strdup((const char *)sqlite3_column_text(q, 0));
        bool go_on = cb(id, sqlite3_column_int64(q, 1), body, ud);
        g_free(id);
        json_decref(body);
        if (!go_on) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

static int sq_kv_set(struct store *st, const char *key, const char *value, int64_t expire_at_ms)
{
    if (sqls_batch_open(S(st)) != STORE_OK)
        return STORE_EIO;
    sqlite3_stmt *q = sqls_prep(S(st), "INSERT INTO kv(key, value, expire_at) VALUES(?1, ?2, ?3)"
                                  " ON CONFLICT(key) DO UPDATE SET value=?2, expire_at=?3");
    if (!q)
        return STORE_EIO;
    bind_texts(q, 2, key, value);
    sqlite3_bind_int64(q, 3, expire_at_ms);
    return sqls_step_done(q);
}

static int sq_kv_get(struct store *st, const char *key, char **value_out)
{
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT value, expire_at FROM kv WHERE key=?1");
    if (!q)
        return STORE_EIO;
    sqls_bind_text(q, 1, key);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        int64_t exp = sqlite3_column_int64(q, 1);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        bool live = exp == 0 || exp > now;
        if (live && value_out)
            *value_out = g_strdup((const char *)sqlite3_column_text(q, 0));
        sqlite3_reset(q);
        return live ? STORE_OK : STORE_ENOTFOUND;
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_ENOTFOUND : STORE_EIO;
}

static int sq_kv_delete(struct store *st, const char *key)
{
    if (sqls_batch_open(S(st)) != STORE_OK)
        return STORE_EIO;
    sqlite3_stmt *q = sqls_prep(S(st), "DELETE FROM kv WHERE key=?1");
    if (!q)
        return STORE_EIO;
    sqls_bind_text(q, 1, key);
    return sqls_step_done(q);
}

static int sq_kv_purge_expired(struct store *st, int64_t now_ms)
{
    if (sqls_batch_open(S(st)) != STORE_OK)
        return STORE_EIO;
    sqlite3_stmt *q = sqls_prep(S(st), "DELETE FROM kv WHERE expire_at<>0 AND expire_at<=?1");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, now_ms);
    return sqls_step_done(q);
}

static int sq_counter_incr(struct store *st, const char *name, int64_t by, int64_t *value_out)
{
    if (sqls_batch_open(S(st)) != STORE_OK)
        return STORE_EIO;
    return counter_incr_locked(S(st), name, by, value_out);
}

static const struct store_ops sqlite_ops = {
    .close = sq_close,
    .flush = sq_flush,
    .commit = sq_commit,
    .sync = sq_sync,
    .set_batching = sq_set_batching,
    .index_define = sq_index_define,
    .doc_put = sq_doc_put,
    .doc_get = sq_doc_get,
    .doc_delete = sq_doc_delete,
    .doc_list = sq_doc_list,
    .index_find = sq_index_find,
    .doc_changes = sq_doc_changes,
    .seq_append = sqls_seq_append,
    .seq_range = sqls_seq_range,
    .seq_trim = sqls_seq_trim,
    .seq_last = sqls_seq_last,
    .seq_append_many = sqls_seq_append_many,
    .seq_settle = sqls_seq_settle,
    .deadline_set = sq_deadline_set,
    .deadline_set_many = sq_deadline_set_many,
    .deadline_delete = sq_deadline_delete,
    .deadline_claim = sq_deadline_claim,
    .deadline_due = sq_deadline_due,
    .deadline_take = sq_deadline_take,
    .kv_set = sq_kv_set,
    .kv_get = sq_kv_get,
    .kv_delete = sq_kv_delete,
    .kv_purge_expired = sq_kv_purge_expired,
    .counter_incr = sq_counter_incr,
    .ts_log_append = sqls_ts_log_append,
    .ts_log_each = sqls_ts_log_each,
    .ts_log_trim = sqls_ts_log_trim,
    .ts_chunk_put = sqls_ts_chunk_put,
    .ts_chunk_range = sqls_ts_chunk_range,
    .ts_chunk_trim_before = sqls_ts_chunk_trim_before,
    .ts_drop = sqls_ts_drop,
    .ts_latest_each = sqls_ts_latest_each,
};

static void stmt_finalize(gpointer p)
{
    sqlite3_finalize(p);
}

struct store *store_open_sqlite(const char *dir, char **err)
{
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        *err = g_strdup_printf("cannot create data directory %s", dir);
        return NULL;
    }
    char *path = g_build_filename(dir, "yjt.db", NULL);
    struct sqlite_store *s = g_new0(struct sqlite_store, 1);
    s->base.ops = &sqlite_ops;
    s->stmts = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, stmt_finalize);
    s->indexes = g_ptr_array_new_with_free_func(index_def_free);
    s->row_cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cached_doc_free);
    s->heads = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_queue_init(&s->row_order);
    s->data_version = -1;
    s->path = path;
    s->wal_fd = -1;
    /* Each connection is used by one thread at a time (this one by the
     * loop, the checkpointer's by its thread): SQLite's own locking of
     * every call, and its counting of every allocation under a global
     * lock, would be paid for nothing (at start, before SQLite is in use;
     * refused harmlessly once it is). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             store_vfs_name());
    if (rc != SQLITE_OK)
        goto err;
    sqlite3_busy_timeout(s->db, 5000);
    if (exec(s, "PRAGMA journal_mode=WAL") != STORE_OK ||
        exec(s, "PRAGMA synchronous=FULL") != STORE_OK ||
        exec(s, "PRAGMA cache_size=-65536") != STORE_OK ||
        exec(s, "PRAGMA temp_store=MEMORY") != STORE_OK || exec(s, schema) != STORE_OK ||
        exec(s, sqls_ts_schema) != STORE_OK || sqls_seqs_upgrade(s) != STORE_OK ||
        sqls_ts_upgrade(s) != STORE_OK || sqls_fan_open(s) != STORE_OK)
        goto err;
    return &s->base;
err:
    *err = g_strdup_printf("cannot open store in %s: %s", dir,
                           s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqls_fan_close(s);
    g_hash_table_destroy(s->stmts);
    sqlite3_close(s->db);
    g_ptr_array_free(s->indexes, TRUE);
    g_hash_table_destroy(s->row_cache);
    g_hash_table_destroy(s->heads);
    g_free(s->path);
    g_free(s);
    return NULL;
}
