/* The store interface: everything durable goes through here.
 *
 * It is shaped so that a key-value server (Redis) can implement it as well
 * as the embedded SQLite backend that stands behind it now:
 *   - documents: JSON objects keyed by (collection, id), each put bumps a
 *     store-wide revision, so other processes can follow changes;
 *   - secondary indexes: declared per collection and field, kept by the
 *     store on every put; exact and prefix look-ups; optionally unique;
 *   - append-only sequences per key (audit log, inboxes): seq rises by one;
 *   - stored deadlines: (id, due time, payload), listed when due;
 *   - expiring keys (revoked tokens), counters and rate windows;
 *   - time series (sensor readings): an append-only log of packed batches
 *     of (integer key, ts, value) points, and per key chunks of points
 *     (first ts, last ts, packed points) plus a latest point (a Redis
 *     backend would use a stream for the log, one sorted set of chunks per
 *     key scored by last ts, and a hash for the latest).
 *
 * Every call is synchronous, and durable on return unless batching is on
 * (see store_set_batching: then durable once the batch is synced). Calls
 * return 0 or a negative STORE_E… code; the store logs nothing, the
 * caller decides. Each call's latency is recorded in store_latency for
 * /metrics. */
#ifndef YJT_STORE_H
#define YJT_STORE_H

#include "common/hist.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum {
    STORE_OK = 0,
    STORE_EIO = -1,       /* backend failure */
    STORE_ECONFLICT = -2, /* exists already, or a unique index is taken */
    STORE_ENOTFOUND = -3,
    STORE_EINVAL = -4,
    STORE_EAGAIN = -5, /* inside a replay: sent, not answered yet (store_replay.h) */
    STORE_PENDING = 1, /* store_write_batch_async: the outcome comes later */
};

struct store;

/* Called once per item by the listing calls; return false to stop early. */
typedef bool (*store_doc_cb)(const char *id, json_t *doc, void *ud);
typedef bool (*store_seq_cb)(int64_t seq, json_t *item, void *ud);
/* One time-series point: key is a small integer naming the series (not a
 * string, so a row stays compact), ts and seen are UTC ms. seen (when the
 * server received it) is kept only with the latest point of a key. */
struct store_ts_point {
    int64_t key;
    int64_t ts;
    double value;
    int64_t seen;
};
/* A point within one key's chunk. */
struct store_ts_sample {
    int64_t ts;
    double value;
};
/* One log row: id rises by one per append, seen is the append's server
 * time; the points' seen fields are not stored (they read as seen). */
typedef bool (*store_ts_log_cb)(int64_t id, int64_t seen, const struct store_ts_point *pts, int n,
                                void *ud);
/* One chunk, its samples in ts order. */
typedef bool (*store_ts_chunk_cb)(const struct store_ts_sample *pts, int n, void *ud);
/* The latest point of a key, and the log id up to which the key's points
 * are all in chunks (see store_ts_chunk_put). */
typedef bool (*store_ts_latest_cb)(const struct store_ts_point *p, int64_t log_upto, void *ud);
typedef bool (*store_deadline_cb)(const char *id, int64_t due_ms, json_t *payload, void *ud);
typedef void (*store_batch_cb)(uint64_t tag, bool ok, void *ud);

/* The answer to store_rate_add_async(): a store code and, unless it is
 * STORE_EIO, the count after the call. */
typedef void (*store_rate_cb)(int rc, double count, void *ud);
/* The answer to store_seq_append_many_later(): a store code and, when it
 * is STORE_OK, the n seqs. */
typedef void (*store_seqs_cb)(int rc, const int64_t *seqs, int n, void *ud);
/* The answer to a read made later (store_index_find_later and its kin):
 * a store code and, when it is STORE_OK, what was read, borrowed for the
 * call. */
struct store_docs {
    int n;
    char **ids;
    json_t **docs;    /* docs[i] NULL: ids[i] is gone (deleted meanwhile) */
    int64_t last_rev; /* store_doc_changes_later: the newest revision read */
    bool more;        /* more matched than the limit: read on */
};
typedef void (*store_docs_cb)(int rc, const struct store_docs *d, void *ud);
/* A read under way, which its backend fills (store_read_add) and ends
 * (store_read_done). */
struct store_read;
void store_read_add(struct store_read *rd, const char *id, size_t id_len, json_t *doc);
/* Ends rd: its callback runs from the main loop (an idle source), never
 * inside a call of the store. rd is not to be touched after. */
void store_read_done(struct store_read *rd, int rc, int64_t last_rev, bool more);
/* The answer to a count made later (store_ts_chunk_trim_before_later): a
 * store code and the count. */
typedef void (*store_count_cb)(int rc, int64_t n, void *ud);

/* What a caller knows of a record it writes (store_doc_put_new, _kept). */
enum store_put_as {
    STORE_PUT_NEW = 1, /* its id was just made: none has it */
    STORE_PUT_KEPT,    /* its unique values are those stored */
};

struct store_ops {
    void (*close)(struct store *st);
    int (*flush)(struct store *st);
    int (*commit)(struct store *st);
    int (*sync)(struct store *st);
    void (*set_batching)(struct store *st, bool on, void (*on_dirty)(void *ud), void *ud);
    int (*index_define)(struct store *st, const char *coll, const char *field, bool unique);
    int (*doc_put)(struct store *st, const char *coll, const char *id, json_t *doc,
                   bool create_only);
    int (*doc_get)(struct store *st, const char *coll, const char *id, json_t **out);
    int (*doc_delete)(struct store *st, const char *coll, const char *id);
    int (*doc_list)(struct store *st, const char *coll, store_doc_cb cb, void *ud);
    int (*index_find)(struct store *st, const char *coll, const char *field, const char *value,
                      bool prefix, store_doc_cb cb, void *ud);
    int (*doc_changes)(struct store *st, const char *coll, int64_t after_rev, int64_t *last_rev,
                       store_doc_cb cb, void *ud);
    int (*seq_append)(struct store *st, const char *key, json_t *item, int64_t *seq_out);
    int (*seq_range)(struct store *st, const char *key, int64_t after_seq, int limit,
                     bool newest_first, store_seq_cb cb, void *ud);
    int (*seq_trim)(struct store *st, const char *key, int64_t upto_seq);
    /* NULL: store_seq_trim_older() reads, then trims. */
    int (*seq_trim_older)(struct store *st, const char *key, const char *field, int64_t before,
                          int scan, int64_t upto_seq);
    int (*seq_last)(struct store *st, const char *key, int64_t *seq_out);
    int (*seq_settle)(struct store *st, int max_keys, bool all);
    int (*seq_append_many)(struct store *st, const char *const *keys, int n, json_t *item,
                           int64_t *seqs_out);
    int (*deadline_set)(struct store *st, const char *id, int64_t due_ms, json_t *payload);
    int (*deadline_set_many)(struct store *st, const char *const *ids, int n, const int64_t *due_ms,
                             json_t *const *payloads);
    int (*deadline_delete)(struct store *st, const char *id);
    int (*deadline_claim)(struct store *st, const char *id, int64_t due_ms, int64_t until_ms);
    int (*deadline_due)(struct store *st, int64_t now_ms, int limit, store_deadline_cb cb,
                        void *ud);
    /* Moves deadline id to until_ms if due at now_ms; STORE_ECONFLICT
     * with its due time if not due, STORE_ENOTFOUND if absent. For
     * store_deadlines_take_later() where the next is NULL. */
    int (*deadline_take)(struct store *st, const char *id, int64_t now_ms, int64_t until_ms,
                         int64_t *due_out, json_t **payload_out);
    int (*kv_set)(struct store *st, const char *key, const char *value, int64_t expire_at_ms);
    int (*kv_get)(struct store *st, const char *key, char **value_out);
    int (*kv_delete)(struct store *st, const char *key);
    int (*kv_purge_expired)(struct store *st, int64_t now_ms);
    int (*counter_incr)(struct store *st, const char *name, int64_t by, int64_t *value_out);
    /* A failed commit may leave some of the batch's writes applied, and
     * the backend can go on afterwards (Redis: deferred writes); else a
     * failed commit undid the batch and the store is not to be trusted. */
    bool commit_may_fail;
    /* A write whose answer need not be waited for (store_doc_put_new,
     * store_doc_put_kept); NULL: doc_put, create_only for STORE_PUT_NEW. */
    int (*doc_put_as)(struct store *st, const char *coll, const char *id, json_t *doc,
                      enum store_put_as as);
    /* NULL: store_doc_remove() is store_doc_delete(). */
    int (*doc_remove)(struct store *st, const char *coll, const char *id);
    /* Batches told durable through a callback (see store_write_batch_async);
     * NULL where store_sync() makes them durable. */
    bool (*batches_async)(struct store *st);
    void (*on_batch_done)(struct store *st, store_batch_cb cb, void *ud);
    int (*write_batch_async)(struct store *st, uint64_t tag);
    int (*async_fd)(struct store *st);
    void (*async_poll)(struct store *st);
    /* NULL: rate windows are kept in this process (store_rate.c). */
    int (*rate_add)(struct store *st, const char *key, int64_t window_ms, int64_t now_ms, int64_t n,
                    int64_t limit, double *count_out);
    /* NULL: store_rate_add_async() is not offered (the caller counts
     * with store_rate_add, which does not wait on such a store). */
    int (*rate_add_async)(struct store *st, const char *key, int64_t window_ms, int64_t now_ms,
                          int64_t n, int64_t limit, store_rate_cb cb, void *ud);
    /* NULL: store_seq_append_many_later() is not offered. */
    int (*seq_append_many_later)(struct store *st, const char *const *keys, int n, json_t *item,
                                 store_seqs_cb cb, void *ud);
    /* Reads sent without waiting for their answer (see store_reads_later);
     * each calls store_read_done(rd) exactly once if it returns STORE_OK.
     * NULL: the read is made at once and answered later all the same. */
    int (*index_find_later)(struct store *st, const char *coll, const char *field,
                            const char *value, bool prefix, bool ids_only, int limit,
                            struct store_read *rd);
    int (*docs_get_later)(struct store *st, const char *coll, const char *const *ids, int n,
                          struct store_read *rd);
    int (*doc_changes_later)(struct store *st, const char *coll, int64_t after_rev, int limit,
                             struct store_read *rd);
    int (*kv_get_later)(struct store *st, const char *const *keys, int n, struct store_read *rd);
    /* NULL: store_ts_has_later() looks at each point's chunks at once. */
    int (*ts_has_later)(struct store *st, const struct store_ts_point *pts, int n,
                        struct store_read *rd);
    int (*ts_chunk_trim_before_later)(struct store *st, int64_t before_ms, int limit,
                                      struct store_read *rd);
    int (*seq_last_later)(struct store *st, const char *key, struct store_read *rd);
    int (*deadline_take_due_later)(struct store *st, const char *prefix, int64_t now_ms, int limit,
                                   int64_t until_ms, struct store_read *rd);
    int (*deadlines_take_later)(struct store *st, const char *const *ids, int n, int64_t now_ms,
                                int64_t until_ms, struct store_read *rd);
    int (*doc_create_later)(struct store *st, const char *coll, const char *id, json_t *doc,
                            struct store_read *rd);
    int (*seq_range_later)(struct store *st, const char *key, int64_t after_seq, int limit,
                           struct store_read *rd);
    int (*kv_raise_later)(struct store *st, const char *seq_key, const char *const *keys, int n,
                          int64_t value, struct store_read *rd);
    int (*ts_log_append)(struct store *st, int64_t seen, const struct store_ts_point *pts, int n,
                         int64_t *id_out);
    int (*ts_log_each)(struct store *st, int64_t after_id, store_ts_log_cb cb, void *ud);
    int (*ts_log_trim)(struct store *st, int64_t upto_id);
    int (*ts_chunk_put)(struct store *st, int64_t key, const struct store_ts_sample *pts, int n,
                        const struct store_ts_point *latest, int64_t log_upto);
    int (*ts_chunk_range)(struct store *st, int64_t key, int64_t from_ms, int64_t to_ms,
                          store_ts_chunk_cb cb, void *ud);
    int (*ts_chunk_trim_before)(struct store *st, int64_t before_ms, int limit, int64_t *deleted);
    int (*ts_drop)(struct store *st, int64_t key);
    int (*ts_latest_each)(struct store *st, store_ts_latest_cb cb, void *ud);
    /* NULL: the store is not shared, its log is the server's own. */
    int (*ts_log_own)(struct store *st, const char *owner, int lease_s);
    int (*ts_log_adopt)(struct store *st, int max_rows, store_ts_log_cb cb, void *ud, bool *more);
    /* A new store on a connection of its own to the same data, for another
     * thread's reads (store_replay.c), and the readings log of st's
     * owner (store_ts_log_own); it writes nothing of its own. */
    struct store *(*open_reader)(struct store *st, char **err);
};

struct store {
    const struct store_ops *ops;
    struct hist latency; /* per call, seconds */
    uint64_t errors;
    struct rate_table *rates; /* for backends without rate_add */
    /* Told when a read was sent whose answer is awaited on the socket of
     * store_async_fd() (store_on_read_sent). */
    void (*read_sent)(void *ud);
    void *read_sent_ud;
    /* The request's replay its reads go through now, and the thread that
     * makes the reads replays lack (records/store_replay.h). */
    struct store_replay *replay;
    struct store_reader *reader;
};

/* For backends without rate_add (store_rate.c): rate windows in this
 * process, kept in st->rates; store_close frees them. */
int store_rate_add_local(struct store *st, const char *key, int64_t window_ms, int64_t now_ms,
                         int64_t n, int64_t limit, double *count_out);
void store_rate_table_free(struct rate_table *t);

/* For backends: calls fn with each value doc has for an index on field: a
 * string field gives one, an array one per string element (others are
 * not indexed). */
void store_index_values(json_t *doc, const char *field, void (*fn)(json_t *value, void *ud),
                        void *ud);

/* Opens (creating if needed) the SQLite store in dir/yjt.db. Returns NULL
 * and sets *err (free with g_free) on failure. */
struct store *store_open_sqlite(const char *dir, char **err);
/* Connects to the Redis server at url (see records/redis_link.h for the
 * forms) and keeps every key under prefix ("yjt:" when NULL or empty).
 * Returns NULL and sets *err when the address is malformed or the server
 * cannot be reached now; later outages make calls fail with STORE_EIO
 * until the server is back (the connection is retried with backoff). */
struct store *store_open_redis(const char *url, const char *prefix, char **err);

/* Flushes and closes; st is freed. NULL is fine. */
void store_close(struct store *st);
/* A store of its own on another connection to st's data, for one
 * thread's reads: NULL where st has none (SQLite) or it could not be
 * opened (*err set then, g_free). Closed with store_close_reader(), in
 * the same thread. */
struct store *store_open_reader(struct store *st, char **err);
void store_close_reader(struct store *rd);
int store_flush(struct store *st);

/* Batching. Off (the default), every write is durable when it returns.
 * On, writes return once they are part of the open batch, which is durable
 * only when store_commit() returns 0: a server turns batching on, commits
 * before it sends anything to anyone, and so many writes share one disk
 * flush while nothing is announced before it is durable. on_dirty(ud) is
 * called when a batch opens (schedule a commit). A failed commit returns
 * STORE_EIO: on SQLite it undid the whole batch; on Redis, where only the
 * writes whose outcome the caller does not need are deferred (sent at once,
 * their replies read at the commit, so that many share the server's disk
 * sync), some of them may have been applied. Either way nothing that tells
 * of the batch may go out. */
void store_set_batching(struct store *st, bool on, void (*on_dirty)(void *ud), void *ud);
/* Whether a failed commit leaves the store usable (see commit_may_fail):
 * the server then serves on, telling nothing of the failed batch. */
bool store_commit_may_fail(const struct store *st);
/* Commits the open batch and makes it durable: store_write_batch() and
 * store_sync() in one. */
int store_commit(struct store *st);
/* Commits the open batch to the log without waiting for the disk: its
 * writes are visible and will be durable once a store_sync() that starts
 * after this returns has returned 0. So a server keeps serving while the
 * disk flushes, and many batches may share one flush. */
int store_write_batch(struct store *st);
/* Makes every batch written so far durable. It touches no state of the
 * writer, so it may run on another thread while the owner writes the next
 * batch (and only there and on the owner's). Nothing to do, and 0, when
 * batching is off: those writes are durable as they return. */
int store_sync(struct store *st);
/* Asynchronous batches, on a store whose batch holds writes already sent
 * (Redis, unless each write must wait for replicas): a batch is durable
 * when the server has answered each of its writes, which the owner's loop
 * learns by watching store_async_fd() (-1: nothing awaited) and calling
 * store_async_poll() when it is readable; any later call of the store may
 * read answers too. store_write_batch_async() ends the open batch as tag:
 * STORE_OK if it is durable already, STORE_EIO if it failed already,
 * STORE_PENDING if cb (set with store_on_batch_done) will tell, with
 * ok false if a write of it failed or was lost with the connection (it may
 * have been applied). Batches are told in the order they were ended; cb
 * may be called from inside any call of the store. */
bool store_batches_async(struct store *st);
void store_on_batch_done(struct store *st, store_batch_cb cb, void *ud);
int store_write_batch_async(struct store *st, uint64_t tag);
int store_async_fd(struct store *st);
void store_async_poll(struct store *st);

int store_index_define(struct store *st, const char *coll, const char *field, bool unique);
/* Stores doc (an object) under (coll, id). With create_only, fails with
 * STORE_ECONFLICT if the id exists. A taken unique index value also fails
 * with STORE_ECONFLICT, and nothing is written. */
int store_doc_put(struct store *st, const char *coll, const char *id, json_t *doc,
                  bool create_only);
/* Stores doc under an id the caller has just made, so that none can exist
 * (a sortable random id, say): store_doc_put with create_only, except that
 * where the store then need not wait for the server (Redis, batching, no
 * unique index in coll) the write is deferred like a replace, and a
 * STORE_ECONFLICT is not to be relied on. */
int store_doc_put_new(struct store *st, const char *coll, const char *id, json_t *doc);
/* Replaces id's record with doc, whose unique-index values the caller
 * read to be free or its own (it read the record and changed other
 * fields, or looked the new values up in the index): where the store
 * need not wait for the server (Redis, batching) the write is deferred
 * like a replace without a unique index; should a value be found taken
 * (another writer took it meanwhile), the batch fails rather than the
 * write being dropped unseen. Elsewhere store_doc_put. */
int store_doc_put_kept(struct store *st, const char *coll, const char *id, json_t *doc);
/* *out gets a new reference, or the call returns STORE_ENOTFOUND. */
int store_doc_get(struct store *st, const char *coll, const char *id, json_t **out);
int store_doc_delete(struct store *st, const char *coll, const char *id);
/* Deletes id if it is there, without telling whether it was (STORE_OK
 * either way): where the store need not wait for the server (Redis,
 * batching) the write is deferred like a replace. */
int store_doc_remove(struct store *st, const char *coll, const char *id);
int store_doc_list(struct store *st, const char *coll, store_doc_cb cb, void *ud);
/* Documents whose indexed field equals value (or starts with it). */
int store_index_find(struct store *st, const char *coll, const char *field, const char *value,
                     bool prefix, store_doc_cb cb, void *ud);
/* Documents of coll changed after revision after_rev, oldest first;
 * *last_rev gets the newest revision seen (or after_rev). */
int store_doc_changes(struct store *st, const char *coll, int64_t after_rev, int64_t *last_rev,
                      store_doc_cb cb, void *ud);

int store_seq_append(struct store *st, const char *key, json_t *item, int64_t *seq_out);
int store_seq_range(struct store *st, const char *key, int64_t after_seq, int limit,
                    bool newest_first, store_seq_cb cb, void *ud);
int store_seq_trim(struct store *st, const char *key, int64_t upto_seq);
/* Trims key up to the last of its oldest items (at most scan of them, in
 * order, stopping at the first that is not) whose integer field is below
 * before (an item without it counts as below), and in any case up to
 * upto_seq (< 1: no such bound). Nothing is returned but an error: a
 * backend may send it without waiting (Redis: with the deferred writes,
 * one script). */
int store_seq_trim_older(struct store *st, const char *key, const char *field, int64_t before,
                         int scan, int64_t upto_seq);
/* The last seq ever appended to key (0 if none), trimmed or not. */
int store_seq_last(struct store *st, const char *key, int64_t *seq_out);
/* The same read later (see store_reads_later): cb gets the code and the
 * seq, from the main loop. */
int store_seq_last_later(struct store *st, const char *key, store_count_cb cb, void *ud);
/* store_seq_range (oldest first, at most limit items after after_seq)
 * read later: cb gets the items in docs (ids: each seq in decimal) and
 * the sequence's last seq in last_rev, read together. */
int store_seq_range_later(struct store *st, const char *key, int64_t after_seq, int limit,
                          store_docs_cb cb, void *ud);
/* Raises the integer values (as store_kv_set writes them, no expiry) of
 * the n keys to value where they are lower (or unset), unless value is
 * past the last seq of the sequence seq_key: then nothing is written and
 * cb gets STORE_EINVAL. cb gets the value of keys[0] after, from the main
 * loop. A write: on a store whose writes are batched its answer comes
 * once it is part of the open batch (Redis: sent without waiting, one
 * script), durable with it. */
int store_kv_raise_later(struct store *st, const char *seq_key, const char *const *keys, int n,
                         int64_t value, store_count_cb cb, void *ud);
/* Appends the same item to each of the n keys in one transaction (all or
 * nothing); seqs_out[i] gets the seq in keys[i]. */
int store_seq_append_many(struct store *st, const char *const *keys, int n, json_t *item,
                          int64_t *seqs_out);
/* A backend may keep a large fan-out's rows aside and write them into
 * their sequences later, many fan-outs at once (every read sees them all
 * the same). This writes those of up to max_keys keys that have waited
 * long enough (all of them with all). A server calls it from a timer. */
int store_seq_settle(struct store *st, int max_keys, bool all);

int store_deadline_set(struct store *st, const char *id, int64_t due_ms, json_t *payload);
/* Sets n deadlines in one transaction (all or nothing). */
int store_deadline_set_many(struct store *st, const char *const *ids, int n, const int64_t *due_ms,
                            json_t *const *payloads);
int store_deadline_delete(struct store *st, const char *id);
/* Takes a due deadline for this process: moves it from due_ms (as read by
 * store_deadline_due) to until_ms, a lease, only if it is still at due_ms.
 * STORE_OK: it is ours to handle (and comes back at until_ms if we die);
 * STORE_ECONFLICT: another process moved it first; STORE_ENOTFOUND: gone.
 * So several processes scanning the same deadlines handle each once. */
int store_deadline_claim(struct store *st, const char *id, int64_t due_ms, int64_t until_ms);
int store_deadline_due(struct store *st, int64_t now_ms, int limit, store_deadline_cb cb, void *ud);
/* Takes for this process, in one step, up to limit of the deadlines due
 * at now_ms whose id starts with prefix (among the first limit due): each
 * moves to until_ms, a lease, as store_deadline_claim does, so that
 * processes taking at once take each one once. cb gets those taken
 * (ids[i], docs[i] {"due_ms", "payload"}) from the main loop; where the
 * store's reads travel (store_reads_later) nothing waits for it, the
 * lease being a write of the open batch. */
int store_deadline_take_due_later(struct store *st, const char *prefix, int64_t now_ms, int limit,
                                  int64_t until_ms, store_docs_cb cb, void *ud);
/* The same for the n deadlines named (a scheduler's own, which a scan of
 * the first due might not reach behind many others): those due at now_ms
 * are taken, each as store_deadline_claim would. cb gets each of the n
 * in the order given: docs[i] {"due_ms", "payload", "taken": true} if
 * taken, {"due_ms", "taken": false} (where it is) if not due, NULL if
 * there is no such deadline. */
int store_deadlines_take_later(struct store *st, const char *const *ids, int n, int64_t now_ms,
                               int64_t until_ms, store_docs_cb cb, void *ud);

/* expire_at_ms 0 means never. kv_get returns STORE_ENOTFOUND once expired. */
int store_kv_set(struct store *st, const char *key, const char *value, int64_t expire_at_ms);
int store_kv_get(struct store *st, const char *key, char **value_out);
int store_kv_delete(struct store *st, const char *key);
/* The integer stored under key (as decimal text), 0 when unset. */
int store_kv_get_int(struct store *st, const char *key, int64_t *out);
int store_kv_purge_expired(struct store *st, int64_t now_ms);
/* Adds by to the counter name and gives its new value. Inside a replay's
 * run it is sent as a read (store_replay.h): a value a thrown run took
 * is kept for the request's next run, or left unused. */
int store_counter_incr(struct store *st, const char *name, int64_t by, int64_t *value_out);

/* Rate windows, for limits shared by every process on the store (login
 * failures per address, invites per user). The count of key's events over
 * the last window_ms is estimated from two fixed windows: the current
 * window's count plus the previous one's, weighted by how much of it the
 * last window_ms still covers. Adds n events unless that would take the
 * count above limit (limit < 0: no limit), in which case nothing is added
 * and the call returns STORE_ECONFLICT. *count_out (may be NULL) gets the
 * count after the call. n = 0 only reads. A window's count is forgotten
 * two windows later. Not durable: a backend that cannot share them keeps
 * them in this process's memory, and a restart forgets them (a limit then
 * loosens for at most one window). */
int store_rate_add(struct store *st, const char *key, int64_t window_ms, int64_t now_ms, int64_t n,
                   int64_t limit, double *count_out);
/* store_rate_add() without waiting for the answer, on a store where it
 * would wait for a server (Redis): the count is sent now and cb gets the
 * code later (STORE_OK, STORE_ECONFLICT, or STORE_EIO when the answer was
 * lost), exactly once, from inside whichever later call of the store
 * reads it (or store_async_poll()): cb must not call the store, only note
 * the answer. Returns STORE_OK when sent; STORE_EINVAL when this store
 * does not offer it (store_rate_add() then answers at once), STORE_EIO
 * when it cannot send now; cb is then never called. */
int store_rate_add_async(struct store *st, const char *key, int64_t window_ms, int64_t now_ms,
                         int64_t n, int64_t limit, store_rate_cb cb, void *ud);
/* Whether this store offers store_rate_add_async(). */
bool store_rate_async(const struct store *st);
/* store_seq_append_many() without waiting, on a store where it would
 * wait for a server (Redis): a write of the current batch (its failure
 * fails the batch, as any write's), sent now; cb gets the seqs later,
 * exactly once, from inside whichever later call of the store reads the
 * answer (or store_async_poll(), or the store's closing, with
 * STORE_EIO): cb must not call the store. Returns STORE_OK when sent (cb
 * may then already have been called), STORE_EINVAL when this store does
 * not offer it, STORE_EIO when it cannot send now (cb never called). */
int store_seq_append_many_later(struct store *st, const char *const *keys, int n, json_t *item,
                                store_seqs_cb cb, void *ud);
/* Whether this store offers store_seq_append_many_later(). */
bool store_appends_later(const struct store *st);

/* Reads that need not hold their caller. On a store shared over the
 * network (Redis) the read is sent at once, behind the writes sent before
 * it (so it sees them), and answered when its reply comes: a server's
 * loop serves on meanwhile, watching store_async_fd() and calling
 * store_async_poll() (store_on_read_sent tells it when to start). Other
 * stores read at once. Either way cb runs later, from the main loop (an
 * idle source), never inside a call of the store, exactly once when the
 * call returned STORE_OK (never otherwise); reads not told when the
 * store closes are told STORE_EIO from inside store_close(), after the
 * store is gone (a callback must not use it then).
 *
 * store_index_find_later: as store_index_find, at most limit documents
 * (more set if there were others); with ids_only their ids alone (docs[i]
 * NULL: the bodies are not read). store_docs_get_later: the documents of
 * the n ids that exist, in the order given. store_doc_changes_later: as
 * store_doc_changes, at most limit, with last_rev (a deleted document's
 * change comes with a NULL doc); read on from last_rev while more.
 * store_kv_get_later: the values of the n keys (ids[i] the key), each a
 * JSON string in docs[i], NULL where the key is not set. */
int store_index_find_later(struct store *st, const char *coll, const char *field, const char *value,
                           bool prefix, bool ids_only, int limit, store_docs_cb cb, void *ud);
int store_docs_get_later(struct store *st, const char *coll, const char *const *ids, int n,
                         store_docs_cb cb, void *ud);
int store_doc_changes_later(struct store *st, const char *coll, int64_t after_rev, int limit,
                            store_docs_cb cb, void *ud);
/* store_doc_put(create_only) sent with the open batch, answered later:
 * cb gets STORE_OK (created; n its revision), STORE_ECONFLICT (the id, or
 * a unique value, is taken) or STORE_EIO, exactly once, from the loop
 * (never inside this call). Where the store's writes are made at once,
 * the put is made now and answered all the same. */
int store_doc_create_later(struct store *st, const char *coll, const char *id, json_t *doc,
                           store_count_cb cb, void *ud);
int store_kv_get_later(struct store *st, const char *const *keys, int n, store_docs_cb cb,
                       void *ud);
/* Whether those reads leave without waiting (else they are made at once). */
bool store_reads_later(const struct store *st);
/* fn(ud) is called after each read sent to the server, so that its owner
 * watches store_async_fd() for the answer. */
void store_on_read_sent(struct store *st, void (*fn)(void *ud), void *ud);
/* For store_close(): answers the reads still queued (store_later.c). */
void store_reads_close(void);

/* Time series. The log is the durable landing place of every accepted
 * batch: ts_log_append stores the n points as one row (all or nothing)
 * and *id_out gets its id, one more than the last appended. ts_log_each
 * calls cb with every row whose id > after_id, oldest first; ts_log_trim
 * deletes the rows with id <= upto_id. */
int store_ts_log_append(struct store *st, int64_t seen, const struct store_ts_point *pts, int n,
                        int64_t *id_out);
int store_ts_log_each(struct store *st, int64_t after_id, store_ts_log_cb cb, void *ud);
int store_ts_log_trim(struct store *st, int64_t upto_id);
/* Chunks: ts_chunk_put stores the n samples of key (ts ascending, unique,
 * n >= 1) as one chunk, and with latest (when not NULL) sets key's latest
 * point and records log_upto with it, in one write. Chunks of a key may
 * overlap in time and even repeat a sample (a crash between a chunk and
 * the log trim): readers merge them. ts_chunk_range calls cb with each
 * chunk of key that has samples in [from_ms, to_ms), whole, in order of
 * their first ts. ts_chunk_trim_before deletes at most limit chunks (of
 * any key) whose last ts is < before_ms; *deleted gets how many. */
int store_ts_chunk_put(struct store *st, int64_t key, const struct store_ts_sample *pts, int n,
                       const struct store_ts_point *latest, int64_t log_upto);
int store_ts_chunk_range(struct store *st, int64_t key, int64_t from_ms, int64_t to_ms,
                         store_ts_chunk_cb cb, void *ud);
int store_ts_chunk_trim_before(struct store *st, int64_t before_ms, int limit, int64_t *deleted);
/* The same without waiting, as the reads made later are (see
 * store_reads_later): cb gets the code and how many were deleted, from
 * the main loop. Its failure fails no batch (a trim is tried again). */
int store_ts_chunk_trim_before_later(struct store *st, int64_t before_ms, int limit,
                                     store_count_cb cb, void *ud);
/* Which of the n points (key, ts; value ignored) are in a stored chunk,
 * read without waiting: cb gets, as ids, the indexes ("0", "5", …) of
 * those that are, in order, from the main loop. On Redis the read is sent
 * behind the chunks written before it (so it sees them). */
int store_ts_has_later(struct store *st, const struct store_ts_point *pts, int n, store_docs_cb cb,
                       void *ud);
/* Deletes key's chunks and latest point (log rows stay: they are trimmed
 * in order; readers skip keys they do not know). */
int store_ts_drop(struct store *st, int64_t key);
/* Calls cb with the latest point of every key. */
int store_ts_latest_each(struct store *st, store_ts_latest_cb cb, void *ud);
/* On a store several servers share (Redis), each server's log is its own:
 * owner names it (letters, digits, '-', '_'; at most 64), the same
 * across the server's restarts, and it is held by a lease of lease_s
 * seconds that store_ts_log_adopt renews. ts_log_append, ts_log_each and
 * ts_log_trim then see that log only (its ids its own, and an append a
 * write of the open batch), and ts_latest_each's log_upto is the one its
 * owner's chunks recorded. Call before any of those. A store
 * no other server shares ignores it (STORE_OK). */
int store_ts_log_own(struct store *st, const char *owner, int lease_s);
/* Renews this server's lease (call it well within lease_s), and takes
 * over the log of a server whose lease ran out (or the log of a version
 * before logs had owners), at most max_rows rows a page: cb gets, in
 * order, each row's points that are not in chunks, and must store them
 * again (store_ts_log_append) before it returns true; the rows go from
 * the old log by a write sent after cb's, made only if those were. On
 * Redis a call never waits: it takes the answer of the step sent by the
 * call before, if in, and sends the next. *more: a takeover is under way
 * (call again soon). A log emptied goes, with its owner. STORE_OK with
 * *more false on a store no other server shares. */
int store_ts_log_adopt(struct store *st, int max_rows, store_ts_log_cb cb, void *ud, bool *more);

#endif
