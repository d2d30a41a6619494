/* The backend-independent half of the store: every call goes through here
 * so its latency is measured once, whatever the backend. */
#include "records/store.h"

#include "records/store_replay.h"

#include "common/clock.h"

#include <glib.h>
#include <math.h>
#include <time.h>

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define TIMED(st, call)                                                                            \
    do {                                                                                           \
        double t0_ = mono_s();                                                                     \
        int rc_ = (call);                                                                          \
        hist_observe(&(st)->latency, mono_s() - t0_);                                              \
        if (rc_ == STORE_EIO)                                                                      \
            (st)->errors++;                                                                        \
        return rc_;                                                                                \
    } while (0)

/* A write inside a replay's run that sent a read is refused (see
 * store_replay.h). */
#define WRITE_GUARD(st)                                                                            \
    do {                                                                                           \
        if ((st)->replay && store_replay_refuses_write(st))                                        \
            return STORE_EAGAIN;                                                                   \
    } while (0)

/* A read inside a replay's run: answered by it unless it says to read. */
#define REPLAYED(st, ...)                                                                          \
    do {                                                                                           \
        if ((st)->replay) {                                                                        \
            int rr_ = store_replay_read(st, &(struct replay_call){__VA_ARGS__});                   \
            if (rr_ != STORE_DIRECT)                                                               \
                return rr_;                                                                        \
        }                                                                                          \
    } while (0)

void store_index_values(json_t *doc, const char *field, void (*fn)(json_t *value, void *ud),
                        void *ud)
{
    json_t *v = json_object_get(doc, field);
    if (json_is_string(v)) {
        fn(v, ud);
        return;
    }
    size_t i;
    json_t *item;
    if (json_is_array(v))
        json_array_foreach(v, i, item) if (json_is_string(item)) fn(item, ud);
}

void store_close(struct store *st)
{
    if (!st)
        return;
    store_replay_close(st);
    store_rate_table_free(st->rates);
    st->rates = NULL;
    st->ops->close(st);
    store_replay_closing(true); /* the replays' reads told now run nothing again */
    store_reads_close();        /* what the closing backend answered */
    store_replay_closing(false);
}

struct store *store_open_reader(struct store *st, char **err)
{
    return st->ops->open_reader ? st->ops->open_reader(st, err) : NULL;
}

void store_close_reader(struct store *rd)
{
    if (rd)
        rd->ops->close(rd); /* its own: no rates, no replays, no reads later */
}

int store_flush(struct store *st)
{
    TIMED(st, st->ops->flush(st));
}

void store_set_batching(struct store *st, bool on, void (*on_dirty)(void *ud), void *ud)
{
    if (st->ops->set_batching)
        st->ops->set_batching(st, on, on_dirty, ud);
}

bool store_commit_may_fail(const struct store *st)
{
    return st->ops->commit_may_fail;
}

int store_write_batch(struct store *st)
{
    if (!st->ops->commit)
        return STORE_OK;
    TIMED(st, st->ops->commit(st));
}

/* Not timed: it may run on another thread than the histogram's owner. */
int store_sync(struct store *st)
{
    return st->ops->sync ? st->ops->sync(st) : STORE_OK;
}

bool store_batches_async(struct store *st)
{
    return st->ops->batches_async && st->ops->batches_async(st);
}

void store_on_batch_done(struct store *st, store_batch_cb cb, void *ud)
{
    if (st->ops->on_batch_done)
        st->ops->on_batch_done(st, cb, ud);
}

int store_write_batch_async(struct store *st, uint64_t tag)
{
    if (!st->ops->write_batch_async)
        return store_write_batch(st);
    TIMED(st, st->ops->write_batch_async(st, tag));
}

int store_async_fd(struct store *st)
{
    return st->ops->async_fd ? st->ops->async_fd(st) : -1;
}

void store_async_poll(struct store *st)
{
    if (st->ops->async_poll)
        st->ops->async_poll(st);
}

int store_commit(struct store *st)
{
    int rc = store_write_batch(st);
    return rc == STORE_OK ? store_sync(st) : rc;
}

int store_index_define(struct store *st, const char *coll, const char *field, bool unique)
{
    return st->ops->index_define(st, coll, field, unique);
}

int store_doc_put(struct store *st, const char *coll, const char *id, json_t *doc, bool create_only)
{
    WRITE_GUARD(st);
    if (!json_is_object(doc))
        return STORE_EINVAL;
    TIMED(st, st->ops->doc_put(st, coll, id, doc, create_only));
}

static int put_as(struct store *st, const char *coll, const char *id, json_t *doc,
                  enum store_put_as as)
{
    WRITE_GUARD(st);
    if (!st->ops->doc_put_as)
        return store_doc_put(st, coll, id, doc, as == STORE_PUT_NEW);
    if (!json_is_object(doc))
        return STORE_EINVAL;
    TIMED(st, st->ops->doc_put_as(st, coll, id, doc, as));
}

int store_doc_put_new(struct store *st, const char *coll, const char *id, json_t *doc)
{
    return put_as(st, coll, id, doc, STORE_PUT_NEW);
}

int store_doc_put_kept(struct store *st, const char *coll, const char *id, json_t *doc)
{
    return put_as(st, coll, id, doc, STORE_PUT_KEPT);
}

int store_doc_get(struct store *st, const char *coll, const char *id, json_t **out)
{
    REPLAYED(st, .op = REPLAY_DOC_GET, .a = coll, .b = id, .doc_out = out);
    TIMED(st, st->ops->doc_get(st, coll, id, out));
}

int store_doc_remove(struct store *st, const char *coll, const char *id)
{
    WRITE_GUARD(st);
    if (st->ops->doc_remove) {
        TIMED(st, st->ops->doc_remove(st, coll, id));
    }
    int rc = store_doc_delete(st, coll, id);
    return rc == STORE_ENOTFOUND ? STORE_OK : rc;
}

int store_doc_delete(struct store *st, const char *coll, const char *id)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->doc_delete(st, coll, id));
}

int store_doc_list(struct store *st, const char *coll, store_doc_cb cb, void *ud)
{
    REPLAYED(st, .op = REPLAY_DOC_LIST, .a = coll, .doc_cb = cb, .ud = ud);
    TIMED(st, st->ops->doc_list(st, coll, cb, ud));
}

int store_index_find(struct store *st, const char *coll, const char *field, const char *value,
                     bool prefix, store_doc_cb cb, void *ud)
{
    REPLAYED(st, .op = REPLAY_INDEX_FIND, .a = coll, .b = field, .c = value, .flag = prefix,
             .doc_cb = cb, .ud = ud);
    TIMED(st, st->ops->index_find(st, coll, field, value, prefix, cb, ud));
}

int store_doc_changes(struct store *st, const char *coll, int64_t after_rev, int64_t *last_rev,
                      store_doc_cb cb, void *ud)
{
    TIMED(st, st->ops->doc_changes(st, coll, after_rev, last_rev, cb, ud));
}

int store_seq_append(struct store *st, const char *key, json_t *item, int64_t *seq_out)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->seq_append(st, key, item, seq_out));
}

int store_seq_range(struct store *st, const char *key, int64_t after_seq, int limit,
                    bool newest_first, store_seq_cb cb, void *ud)
{
    REPLAYED(st, .op = REPLAY_SEQ_RANGE, .a = key, .x = after_seq, .limit = limit,
             .flag = newest_first, .seq_cb = cb, .ud = ud);
    TIMED(st, st->ops->seq_range(st, key, after_seq, limit, newest_first, cb, ud));
}

int store_seq_trim(struct store *st, const char *key, int64_t upto_seq)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->seq_trim(st, key, upto_seq));
}

struct older {
    const char *field;
    int64_t before;
    int64_t last; /* the newest seq below before seen so far */
};

static bool scan_older(int64_t seq, json_t *item, void *ud)
{
    struct older *o = ud;
    json_t *v = json_object_get(item, o->field);
    if ((json_is_integer(v) ? json_integer_value(v) : 0) >= o->before)
        return false;
    o->last = seq;
    return true;
}

/* For backends without an operation of their own: read, then trim. */
static int trim_older(struct store *st, const char *key, const char *field, int64_t before,
                      int scan, int64_t upto_seq)
{
    struct older o = {field, before, 0};
    int rc = st->ops->seq_range(st, key, 0, scan, false, scan_older, &o);
    if (rc != STORE_OK)
        return rc;
    int64_t upto = o.last > upto_seq ? o.last : upto_seq;
    return upto > 0 ? st->ops->seq_trim(st, key, upto) : STORE_OK;
}

int store_seq_trim_older(struct store *st, const char *key, const char *field, int64_t before,
                         int scan, int64_t upto_seq)
{
    WRITE_GUARD(st);
    if (st->ops->seq_trim_older)
        TIMED(st, st->ops->seq_trim_older(st, key, field, before, scan, upto_seq));
    TIMED(st, trim_older(st, key, field, before, scan, upto_seq));
}

int store_seq_last(struct store *st, const char *key, int64_t *seq_out)
{
    REPLAYED(st, .op = REPLAY_SEQ_LAST, .a = key, .int_out = seq_out);
    TIMED(st, st->ops->seq_last(st, key, seq_out));
}

int store_seq_append_many(struct store *st, const char *const *keys, int n, json_t *item,
                          int64_t *seqs_out)
{
    WRITE_GUARD(st);
    if (n < 0)
        return STORE_EINVAL;
    if (n == 0)
        return STORE_OK;
    TIMED(st, st->ops->seq_append_many(st, keys, n, item, seqs_out));
}

int store_seq_settle(struct store *st, int max_keys, bool all)
{
    /* Not timed: background upkeep, not a caller's wait. */
    return st->ops->seq_settle ? st->ops->seq_settle(st, max_keys, all) : STORE_OK;
}

int store_deadline_set(struct store *st, const char *id, int64_t due_ms, json_t *payload)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->deadline_set(st, id, due_ms, payload));
}

int store_deadline_set_many(struct store *st, const char *const *ids, int n, const int64_t *due_ms,
                            json_t *const *payloads)
{
    WRITE_GUARD(st);
    if (n < 0)
        return STORE_EINVAL;
    if (n == 0)
        return STORE_OK;
    TIMED(st, st->ops->deadline_set_many(st, ids, n, due_ms, payloads));
}

int store_deadline_delete(struct store *st, const char *id)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->deadline_delete(st, id));
}

int store_deadline_claim(struct store *st, const char *id, int64_t due_ms, int64_t until_ms)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->deadline_claim(st, id, due_ms, until_ms));
}

int store_deadline_due(struct store *st, int64_t now_ms, int limit, store_deadline_cb cb, void *ud)
{
    TIMED(st, st->ops->deadline_due(st, now_ms, limit, cb, ud));
}

int store_kv_set(struct store *st, const char *key, const char *value, int64_t expire_at_ms)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->kv_set(st, key, value, expire_at_ms));
}

int store_kv_get(struct store *st, const char *key, char **value_out)
{
    REPLAYED(st, .op = REPLAY_KV_GET, .a = key, .value_out = value_out);
    TIMED(st, st->ops->kv_get(st, key, value_out));
}

int store_kv_get_int(struct store *st, const char *key, int64_t *out)
{
    char *v = NULL;
    int rc = store_kv_get(st, key, &v);
    *out = rc == STORE_OK ? g_ascii_strtoll(v, NULL, 10) : 0;
    g_free(v);
    return rc == STORE_ENOTFOUND ? STORE_OK : rc;
}

int store_kv_delete(struct store *st, const char *key)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->kv_delete(st, key));
}

int store_kv_purge_expired(struct store *st, int64_t now_ms)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->kv_purge_expired(st, now_ms));
}

int store_counter_incr(struct store *st, const char *name, int64_t by, int64_t *value_out)
{
    REPLAYED(st, .op = REPLAY_COUNTER, .a = name, .x = by, .int_out = value_out);
    WRITE_GUARD(st);
    TIMED(st, st->ops->counter_incr(st, name, by, value_out));
}

int store_rate_add(struct store *st, const char *key, int64_t window_ms, int64_t now_ms, int64_t n,
                   int64_t limit, double *count_out)
{
    WRITE_GUARD(st);
    if (window_ms < 1 || n < 0 || now_ms < 0)
        return STORE_EINVAL;
    if (!st->ops->rate_add)
        return store_rate_add_local(st, key, window_ms, now_ms, n, limit, count_out);
    TIMED(st, st->ops->rate_add(st, key, window_ms, now_ms, n, limit, count_out));
}

bool store_rate_async(const struct store *st)
{
    return st->ops->rate_add_async != NULL;
}

int store_rate_add_async(struct store *st, const char *key, int64_t window_ms, int64_t now_ms,
                         int64_t n, int64_t limit, store_rate_cb cb, void *ud)
{
    WRITE_GUARD(st);
    if (window_ms < 1 || n < 0 || now_ms < 0 || !st->ops->rate_add_async)
        return STORE_EINVAL;
    return st->ops->rate_add_async(st, key, window_ms, now_ms, n, limit, cb, ud);
}

bool store_appends_later(const struct store *st)
{
    return st->ops->seq_append_many_later != NULL;
}

int store_seq_append_many_later(struct store *st, const char *const *keys, int n, json_t *item,
                                store_seqs_cb cb, void *ud)
{
    WRITE_GUARD(st);
    if (n < 1 || !keys || !item || !st->ops->seq_append_many_later)
        return STORE_EINVAL;
    return st->ops->seq_append_many_later(st, keys, n, item, cb, ud);
}

int store_ts_log_append(struct store *st, int64_t seen, const struct store_ts_point *pts, int n,
                        int64_t *id_out)
{
    WRITE_GUARD(st);
    if (n < 0)
        return STORE_EINVAL;
    for (int i = 0; i < n; i++)
        if (!isfinite(pts[i].value))
            return STORE_EINVAL; /* refused whole, whatever the backend */
    TIMED(st, st->ops->ts_log_append(st, seen, pts, n, id_out));
}

int store_ts_log_each(struct store *st, int64_t after_id, store_ts_log_cb cb, void *ud)
{
    TIMED(st, st->ops->ts_log_each(st, after_id, cb, ud));
}

int store_ts_log_trim(struct store *st, int64_t upto_id)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->ts_log_trim(st, upto_id));
}

int store_ts_chunk_put(struct store *st, int64_t key, const struct store_ts_sample *pts, int n,
                       const struct store_ts_point *latest, int64_t log_upto)
{
    WRITE_GUARD(st);
    if (n < 1 || (latest && !isfinite(latest->value)))
        return STORE_EINVAL;
    for (int i = 0; i < n; i++)
        if (!isfinite(pts[i].value) || (i > 0 && pts[i].ts <= pts[i - 1].ts))
            return STORE_EINVAL;
    TIMED(st, st->ops->ts_chunk_put(st, key, pts, n, latest, log_upto));
}

int store_ts_chunk_range(struct store *st, int64_t key, int64_t from_ms, int64_t to_ms,
                         store_ts_chunk_cb cb, void *ud)
{
    REPLAYED(st, .op = REPLAY_TS_RANGE, .x = key, .y = from_ms, .z = to_ms, .ts_cb = cb, .ud = ud);
    TIMED(st, st->ops->ts_chunk_range(st, key, from_ms, to_ms, cb, ud));
}

int store_ts_chunk_trim_before(struct store *st, int64_t before_ms, int limit, int64_t *deleted)
{
    WRITE_GUARD(st);
    if (limit < 1)
        return STORE_EINVAL;
    TIMED(st, st->ops->ts_chunk_trim_before(st, before_ms, limit, deleted));
}

int store_ts_drop(struct store *st, int64_t key)
{
    WRITE_GUARD(st);
    TIMED(st, st->ops->ts_drop(st, key));
}

int store_ts_log_own(struct store *st, const char *owner, int lease_s)
{
    if (!st->ops->ts_log_own)
        return STORE_OK;
    return st->ops->ts_log_own(st, owner, lease_s);
}

int store_ts_log_adopt(struct store *st, int max_rows, store_ts_log_cb cb, void *ud, bool *more)
{
    *more = false;
    if (!st->ops->ts_log_adopt)
        return STORE_OK;
    if (max_rows < 1 || !cb)
        return STORE_EINVAL;
    TIMED(st, st->ops->ts_log_adopt(st, max_rows, cb, ud, more));
}

int store_ts_latest_each(struct store *st, store_ts_latest_cb cb, void *ud)
{
    TIMED(st, st->ops->ts_latest_each(st, cb, ud));
}
