/* The Redis store's batching: writes whose outcome the caller does not
 * need are deferred (sent now, their replies read later), and a batch of
 * them ends either by reading every reply (store_write_batch) or without
 * waiting, told once its replies are in (store_write_batch_async). */
#include "common/log.h"
#include "records/store_redis.h"

/* A write whose outcome the caller does not need: with batching on it is
 * sent now and its reply read at the commit (many writes then share the
 * server's disk sync); otherwise run and waited for. Clears c. */
int rd_write(struct redis_store *r, struct redis_cmd *c)
{
    if (!r->batching)
        return rd_run_ok(r, c);
    int rc = redis_link_defer(r->link, c) == 0 ? STORE_OK : STORE_EIO;
    redis_cmd_clear(c);
    if (rc == STORE_OK)
        rd_dirtied(r);
    return rc;
}

void rd_dirtied(struct redis_store *r)
{
    if (!r->dirty) {
        r->dirty = true;
        if (r->on_dirty)
            r->on_dirty(r->dirty_ud);
    }
}

/* rd_write() of script s (by its body: a deferred EVALSHA could not fall
 * back to EVAL once the script is found missing). Clears args. */
int rd_write_script(struct redis_store *r, struct redis_script *s, struct redis_cmd *args)
{
    if (!r->batching)
        return rd_script_ok(r, s, args);
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_script(&c, "EVAL", s->body, args); /* borrowed from args */
    int rc = rd_write(r, &c);
    redis_cmd_clear(args);
    return rc;
}

/* The batch's deferred writes are all applied (and, with ?wait=N, on the
 * replicas), or STORE_EIO: some may be applied, some not. */
int rd_commit(struct store *st)
{
    struct redis_store *r = R(st);
    r->dirty = false;
    return redis_link_drain(r->link) == 0 ? STORE_OK : STORE_EIO;
}

/* ---- asynchronous batches ---- */

struct rd_batch {
    uint64_t upto; /* the number of its last deferred command */
    uint64_t tag;
    bool failed;
    int replicas; /* ?wait=N: its WAIT's N */
};

/* The reply of deferred write n was read (or lost): it belongs to the
 * oldest batch still waiting, or else to the open one. Batches whose last
 * write it was are told. */
void rd_on_reply(uint64_t n, bool ok, void *ud)
{
    struct redis_store *r = ud;
    struct rd_batch *b = g_queue_peek_head(&r->batches);
    struct rd_batch *last = g_queue_peek_tail(&r->batches);
    if (!last || n > last->upto) {
        r->open_failed = r->open_failed || !ok;
        return;
    }
    b->failed = b->failed || !ok;
    while ((b = g_queue_peek_head(&r->batches)) && b->upto <= n) {
        g_queue_pop_head(&r->batches);
        if (r->batch_cb)
            r->batch_cb(b->tag, !b->failed, r->batch_ud);
        g_free(b);
    }
}

/* Each batch ends when its replies are read; with ?wait=N, its last one
 * is a WAIT sent after its writes (below). */
bool rd_batches_async(struct store *st)
{
    (void)st;
    return true;
}

/* From inside a call of the link: the WAIT that ends batch b (NULL: lost
 * with the connection). Fewer replicas than asked for fail the batch: a
 * failover could lose its writes. */
static void on_waited(redisReply *rep, void *ud)
{
    struct rd_batch *b = ud;
    long long want = b->replicas;
    long long got = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (got < want) {
        b->failed = true;
        if (got >= 0)
            log_warn("store", "WAIT: a batch reached %lld of %lld replicas: refused", got, want);
    }
}

void rd_on_batch_done(struct store *st, store_batch_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    r->batch_cb = cb;
    r->batch_ud = ud;
}

int rd_write_batch_async(struct store *st, uint64_t tag)
{
    struct redis_store *r = R(st);
    r->dirty = false;
    const struct redis_url *u = redis_link_url(r->link);
    struct rd_batch *last = g_queue_peek_tail(&r->batches);
    struct rd_batch *b = g_new0(struct rd_batch, 1);
    b->tag = tag;
    b->failed = r->open_failed;
    r->open_failed = false;
    if (u->wait_replicas > 0 && !b->failed) {
        /* Sent after the batch's writes, answered once the replicas have
         * them (or wait_ms passed): the node's loop does not wait for it,
         * Redis holds this connection's later commands behind it. */
        struct redis_cmd c;
        redis_cmd_init(&c);
        redis_cmd_str(&c, "WAIT");
        redis_cmd_i64(&c, u->wait_replicas);
        redis_cmd_i64(&c, u->wait_ms);
        b->replicas = u->wait_replicas;
        b->failed = redis_link_defer_call(r->link, &c, on_waited, b) != 0;
        redis_cmd_clear(&c);
        b->failed = b->failed || r->open_failed; /* writes lost as it was sent */
        r->open_failed = false;
    }
    uint64_t upto = redis_link_sent(r->link);
    b->upto = upto;
    if (redis_link_done(r->link) >= upto && !last) {
        bool failed = b->failed;
        g_free(b);
        return failed ? STORE_EIO : STORE_OK;
    }
    g_queue_push_tail(&r->batches, b);
    /* Every reply may be in already (read by a later command): the batch
     * is then told at once, after those before it. */
    if (redis_link_done(r->link) >= upto)
        rd_on_reply(upto, true, r);
    return STORE_PENDING;
}

int rd_async_fd(struct store *st)
{
    return redis_link_fd(R(st)->link);
}

void rd_async_poll(struct store *st)
{
    redis_link_poll(R(st)->link);
}

void rd_set_batching(struct store *st, bool on, void (*on_dirty)(void *ud), void *ud)
{
    struct redis_store *r = R(st);
    if (!on && r->dirty)
        rd_commit(st);
    r->batching = on;
    r->on_dirty = on_dirty;
    r->dirty_ud = ud;
}
