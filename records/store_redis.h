/* Internals of the Redis store backend shared by its files: the store
 * struct and the command helpers. Only store_redis*.c include this. */
#ifndef YJT_STORE_REDIS_H
#define YJT_STORE_REDIS_H

#include "records/redis_link.h"
#include "records/store.h"

#include <glib.h>

#define RD_PAGE 500

struct idx {
    char *coll, *field;
    bool unique;
};

struct redis_store {
    struct store base;
    struct redis_link *link;
    char *url; /* as opened: for open_reader */
    char *prefix;
    GPtrArray *indexes; /* struct idx* */
    /* Batching (store_set_batching): writes whose outcome the caller does
     * not need are deferred, their replies read at the commit. */
    bool batching;
    bool dirty; /* a write was deferred since the last commit */
    void (*on_dirty)(void *ud);
    void *dirty_ud;
    /* Batches ended with store_write_batch_async() whose replies are not
     * all read (struct rd_batch*, oldest first), and whether a reply of
     * the open batch failed. */
    GQueue batches;
    bool open_failed;
    store_batch_cb batch_cb;
    void *batch_ud;
    /* The readings log's owner (store_redis_tslog.c; NULL: none), its
     * log's and its log_upto hash's keys, its lease; the log being taken
     * over and its log_upto by series. */
    char *log_owner, *log_key, *upto_key;
    int64_t lease_ms;
    int64_t log_last; /* the last id given in the owner's log */
    char *adopting;   /* whose log is being taken over ("": the log without one) */
    GHashTable *adopting_uptos;
    char adopt_cursor[32]; /* where the read of its log_upto is */
    bool adopt_scanned;    /* its log_upto read whole */
    GPtrArray *adopt_rows; /* a page of its log read, not taken yet */
    int adopt_out;         /* answers of the takeover's steps awaited */
    bool adopt_failed;     /* one failed: the takeover starts again */
    bool adopt_renewing;   /* a page taken: the claim sent decides the next */
    int64_t renewed_ms;    /* this server's lease last renewed (monotonic) */
    bool claim_sent;       /* a claim sent without waiting, not answered yet */
    char *claimed;         /* what it found to take over */
};

static inline struct redis_store *R(struct store *st)
{
    return (struct redis_store *)st;
}

/* A command begun with its verb. */
void rd_cmd_start(struct redis_cmd *c, const char *verb);
/* The key PREFIX + a + b as a word of c. */
void rd_cmd_key(struct redis_store *r, struct redis_cmd *c, const char *a, const char *b);
/* A script's arguments begun with the key prefix. */
void rd_args_start(struct redis_store *r, struct redis_cmd *c);
/* Run c (clearing it): the reply, or NULL on failure (an error reply
 * counts as one). */
redisReply *rd_run(struct redis_store *r, struct redis_cmd *c);
redisReply *rd_script(struct redis_store *r, struct redis_script *s, struct redis_cmd *args);
/* The same, when only success matters: STORE_OK or STORE_EIO. */
int rd_run_ok(struct redis_store *r, struct redis_cmd *c);
int rd_script_ok(struct redis_store *r, struct redis_script *s, struct redis_cmd *args);
int rd_write(struct redis_store *r, struct redis_cmd *c);
int rd_write_script(struct redis_store *r, struct redis_script *s, struct redis_cmd *args);
/* A deferred write was sent: the batch is dirty (on_dirty hears it once). */
void rd_dirtied(struct redis_store *r);
int64_t rd_reply_int(const redisReply *rep);
/* The number after the dash of a stream entry id "0-N", or -1. */
int64_t rd_entry_seq(const redisReply *id);
/* A sequence's stream entry {id, {b, ITEM, …}}: its item (a new
 * reference; NULL if it has none that parses) and *seq (-1 if the entry
 * is not one). */
json_t *rd_entry_item(const redisReply *e, int64_t *seq);
/* The value of field name in a stream entry's field list, or NULL. */
const redisReply *rd_entry_field(const redisReply *fields, const char *name);

/* Batching (store_redis_batch.c). */
int rd_commit(struct store *st);
void rd_set_batching(struct store *st, bool on, void (*on_dirty)(void *ud), void *ud);
/* The link's news of deferred write n (see redis_link_on_reply). */
void rd_on_reply(uint64_t n, bool ok, void *ud);
bool rd_batches_async(struct store *st);
void rd_on_batch_done(struct store *st, store_batch_cb cb, void *ud);
int rd_write_batch_async(struct store *st, uint64_t tag);
int rd_async_fd(struct store *st);
void rd_async_poll(struct store *st);

/* Sequences (store_redis_seq.c). */
extern struct redis_script rd_seq_append_lua, rd_seq_trim_older_lua;
int rd_seq_append(struct store *st, const char *key, json_t *item, int64_t *seq_out);
int rd_seq_append_many(struct store *st, const char *const *keys, int n, json_t *item,
                       int64_t *seqs_out);
int rd_seq_append_many_later(struct store *st, const char *const *keys, int n, json_t *item,
                             store_seqs_cb cb, void *ud);
int rd_seq_last(struct store *st, const char *key, int64_t *seq_out);
int rd_seq_range(struct store *st, const char *key, int64_t after_seq, int limit, bool newest_first,
                 store_seq_cb cb, void *ud);
int rd_seq_trim(struct store *st, const char *key, int64_t upto_seq);
int rd_seq_trim_older(struct store *st, const char *key, const char *field, int64_t before,
                      int scan, int64_t upto_seq);

/* The ZRANGEBYLEX bounds of an index's rows ("VALUE\0ID") whose value is
 * value (or starts with it): g_string_free both. */
void rd_index_bounds(const char *value, bool prefix, GString **min, GString **max);
/* Reads sent without waiting (store_redis_read.c). */
int rd_index_find_later(struct store *st, const char *coll, const char *field, const char *value,
                        bool prefix, bool ids_only, int limit, struct store_read *rd);
int rd_docs_get_later(struct store *st, const char *coll, const char *const *ids, int n,
                      struct store_read *rd);
int rd_doc_changes_later(struct store *st, const char *coll, int64_t after_rev, int limit,
                         struct store_read *rd);
int rd_kv_get_later(struct store *st, const char *const *keys, int n, struct store_read *rd);
int rd_seq_last_later(struct store *st, const char *key, struct store_read *rd);
int rd_deadline_take_due_later(struct store *st, const char *prefix, int64_t now_ms, int limit,
                               int64_t until_ms, struct store_read *rd);
/* Sends c (built on args; both cleared) as a write of the open batch whose
 * reply cb reads into rd; outside a batch, run at once. */
int rd_send_write_read(struct redis_store *r, struct redis_cmd *c, struct redis_cmd *args,
                       redis_call_cb cb, struct store_read *rd);
int rd_deadlines_take_later(struct store *st, const char *const *ids, int n, int64_t now_ms,
                            int64_t until_ms, struct store_read *rd);
int rd_seq_range_later(struct store *st, const char *key, int64_t after_seq, int limit,
                       struct store_read *rd);
int rd_kv_raise_later(struct store *st, const char *seq_key, const char *const *keys, int n,
                      int64_t value, struct store_read *rd);
/* Time series (store_redis_ts.c). */
extern struct redis_script rd_ts_log_lua, rd_ts_chunk_lua, rd_ts_trim_lua, rd_ts_drop_lua;
/* Logs with owners (store_redis_tslog.c). */
extern struct redis_script rd_ts_claim_lua, rd_ts_forget_lua;
const char *rd_ts_log_key(const struct redis_store *r);
int rd_ts_log_own(struct store *st, const char *owner, int lease_s);
/* The log and chunk marks this store reads as owner's (a reader of the
 * owning store's data: no lease taken). */
void rd_ts_log_name(struct redis_store *r, const char *owner);
int rd_ts_log_adopt(struct store *st, int max_rows, store_ts_log_cb cb, void *ud, bool *more);
/* The log_upto by series in hash PREFIX + name (blocks {key, upto}), or
 * NULL if the read failed. */
GHashTable *rd_ts_uptos(struct redis_store *r, const char *name);
/* fn(field, value, ud) for every field of hash PREFIX + name, in pages
 * of HSCAN: 1 goes on, 0 stops, -1 fails (STORE_EIO). */
int rd_hscan(struct redis_store *r, const char *name,
             int (*fn)(const redisReply *k, const redisReply *v, void *ud), void *ud);
void rd_ts_adoption_end(struct redis_store *r);
int rd_ts_log_append(struct store *st, int64_t seen, const struct store_ts_point *pts, int n,
                     int64_t *id_out);
/* A log entry {id, {s, SEEN, p, POINTS}}: its id, seen and points (pts,
 * of struct store_ts_point, refilled); false if it is not one. */
bool rd_ts_log_row(const redisReply *e, int64_t *id, int64_t *seen, GArray *pts);
int rd_ts_log_each(struct store *st, int64_t after_id, store_ts_log_cb cb, void *ud);
int rd_ts_log_trim(struct store *st, int64_t upto_id);
int rd_ts_chunk_put(struct store *st, int64_t key, const struct store_ts_sample *pts, int n,
                    const struct store_ts_point *latest, int64_t log_upto);
int rd_ts_chunk_range(struct store *st, int64_t key, int64_t from_ms, int64_t to_ms,
                      store_ts_chunk_cb cb, void *ud);
int rd_ts_chunk_trim_before(struct store *st, int64_t before_ms, int limit, int64_t *deleted);
int rd_ts_chunk_trim_before_later(struct store *st, int64_t before_ms, int limit,
                                  struct store_read *rd);
int rd_ts_has_later(struct store *st, const struct store_ts_point *pts, int n,
                    struct store_read *rd);
int rd_ts_drop(struct store *st, int64_t key);
int rd_ts_latest_each(struct store *st, store_ts_latest_cb cb, void *ud);

#endif
