/* Internals of the SQLite store backend shared by its files: the store
 * struct, the statement cache and the write bracket (begin/finish, which
 * joins the open batch as a savepoint when batching is on). Only
 * store_sqlite*.c include this; everyone else goes through store.h. */
#ifndef YJT_STORE_SQLITE_H
#define YJT_STORE_SQLITE_H

#include "records/store.h"

#include <glib.h>
#include <sqlite3.h>

struct store_ckpt;
struct sqls_fanouts;

struct index_def {
    char *coll;
    char *field;
    bool unique;
};

struct sqlite_store {
    struct store base;
    sqlite3 *db;
    GHashTable *stmts;  /* SQL text (static) -> sqlite3_stmt* */
    GPtrArray *indexes; /* struct index_def* */
    bool batching;      /* writes join one transaction until commit */
    bool in_batch;      /* that transaction is open */
    void (*on_dirty)(void *ud);
    void *dirty_ud;
    char *path;              /* of the database file */
    struct store_ckpt *ckpt; /* checkpoints off the writer's thread, while batching */
    int wal_fd;              /* the log file, for store_sync(); -1 until a batch is written */
    /* The documents' revision counter, read once per transaction and
     * written back when it commits (see next_rev()). */
    int64_t rev;
    bool rev_loaded, rev_dirty;
    struct sqls_fanouts *fan; /* large fan-outs' rows not yet in seqs */
    /* The index rows of documents this process wrote lately ("coll 0x1f
     * id": its row key -> struct index_row*), so that a
     * replace need not read and parse the stored document; valid while no
     * other process wrote (PRAGMA data_version, checked as each
     * transaction opens) and dropped whole when a write is undone. */
    GHashTable *row_cache; /* "coll 0x1f id" -> struct cached_doc* */
    GQueue row_order;      /* its entries, least lately used first */
    /* The heads of the sequences this process appended to lately (key ->
     * gint64*), so that an append (a fan-out: one per recipient) need not
     * read it; valid and dropped as row_cache is. */
    GHashTable *heads;
    int64_t data_version;
};

/* Drops what row_cache and heads hold (a write was undone, or another
 * process wrote). */
void sqls_rows_forget_all(struct sqlite_store *s);
/* At the start of each write transaction: forgets the cached rows if
 * another process has written since the last. */
void sqls_rows_check(struct sqlite_store *s);

/* A reset, cached prepared statement for sql (a string literal), or NULL. */
sqlite3_stmt *sqls_prep(struct sqlite_store *s, const char *sql);
/* In batching mode, opens the batch transaction if it is not open yet. */
int sqls_batch_open(struct sqlite_store *s);
/* Starts one multi-statement write; sqls_finish() keeps it if rc is
 * STORE_OK and undoes it otherwise, returning the final code. */
int sqls_begin(struct sqlite_store *s);
int sqls_finish(struct sqlite_store *s, int rc);
/* Steps a statement that returns no rows and resets it. */
int sqls_step_done(sqlite3_stmt *q);

/* Text parameter i bound (copied); the JSON body in column col, or NULL. */
void sqls_bind_text(sqlite3_stmt *stmt, int i, const char *v);
json_t *sqls_parse_body(sqlite3_stmt *stmt, int col);

/* Sequences (store_sqlite_seq.c): the store ops, and the upgrade of
 * stores made before shared bodies (at open). */
int sqls_seq_append_many(struct store *st, const char *const *keys, int n, json_t *item,
                         int64_t *seqs_out);
int sqls_seq_append(struct store *st, const char *key, json_t *item, int64_t *seq_out);
int sqls_seq_last(struct store *st, const char *key, int64_t *seq_out);
int sqls_seq_range(struct store *st, const char *key, int64_t after_seq, int limit,
                   bool newest_first, store_seq_cb cb, void *ud);
int sqls_seq_trim(struct store *st, const char *key, int64_t upto_seq);
int sqls_seqs_upgrade(struct sqlite_store *s);
/* The head of key among the rows in seqs (0 if none ever). */
int sqls_seq_head(struct sqlite_store *s, const char *key, int64_t *head);
/* The same for an append, inside its write: remembered from this process's
 * last append to key if there was one (see heads). */
int sqls_seq_head_w(struct sqlite_store *s, const char *key, int64_t *head);
/* Remembers head as key's newest seq (an append wrote it). */
void sqls_seq_head_note(struct sqlite_store *s, const char *key, int64_t head);
/* The most seqs one row of seqs holds (a run, see store_sqlite_seq.c). */
#define SQLS_RUN_MAX 64
/* Writes seqs seq..seq+n-1 of key (1 <= n <= SQLS_RUN_MAX), whose shared
 * bodies are refs[0..n), as one row. */
int sqls_seq_put_run(struct sqlite_store *s, const char *key, int64_t seq, const int64_t *refs,
                     int n);

/* Large fan-outs (store_sqlite_fanout.c). */
int sqls_fan_open(struct sqlite_store *s);
void sqls_fan_close(struct sqlite_store *s);
/* Whether an append of one body to these n keys is stored as a fan-out. */
bool sqls_fan_wanted(const struct sqlite_store *s, const char *const *keys, int n);
/* Inside an open write: gives each key its next seq, pending, and stores
 * the fan-out (shared body ref) whole. */
int sqls_fan_append(struct sqlite_store *s, const char *const *keys, int n, int64_t ref,
                    int64_t *seqs_out);
/* A pending row: its seq, and the shared body it refers to. */
struct sqls_fan_row {
    int64_t seq, ref;
};
/* A copy (g_free) of key's pending rows, ascending; their count. */
guint sqls_fan_rows(struct sqlite_store *s, const char *key, struct sqls_fan_row **out);
/* Takes back a fan-out whose write was undone after sqls_fan_append(). */
void sqls_fan_forget(struct sqlite_store *s, const char *const *keys, int n, int64_t ref);
/* True, with its newest pending seq, when key has pending rows. */
bool sqls_fan_head(struct sqlite_store *s, const char *key, int64_t *head);
/* Writes key's pending rows into seqs (nothing to do if none). */
int sqls_fan_settle_key(struct sqlite_store *s, const char *key);
int sqls_seq_settle(struct store *st, int max_keys, bool all);
/* How many rows are pending. */
size_t sqls_fan_pending(const struct sqlite_store *s);

/* The time-series half (store_sqlite_ts.c). */
extern const char sqls_ts_schema[];
int sqls_ts_log_append(struct store *st, int64_t seen, const struct store_ts_point *pts, int n,
                       int64_t *id_out);
int sqls_ts_log_each(struct store *st, int64_t after_id, store_ts_log_cb cb, void *ud);
int sqls_ts_log_trim(struct store *st, int64_t upto_id);
int sqls_ts_chunk_put(struct store *st, int64_t key, const struct store_ts_sample *pts, int n,
                      const struct store_ts_point *latest, int64_t log_upto);
int sqls_ts_chunk_range(struct store *st, int64_t key, int64_t from_ms, int64_t to_ms,
                        store_ts_chunk_cb cb, void *ud);
int sqls_ts_chunk_trim_before(struct store *st, int64_t before_ms, int limit, int64_t *deleted);
int sqls_ts_drop(struct store *st, int64_t key);
/* Upgrades a store written before the log (at open, outside any batch). */
int sqls_ts_upgrade(struct sqlite_store *s);
int sqls_ts_latest_each(struct store *st, store_ts_latest_cb cb, void *ud);

#endif
