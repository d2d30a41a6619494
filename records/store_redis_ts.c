/* Time series in the Redis store (sensor readings): the log is a stream
 * (entry id 0-ID, fields s = server time, p = points packed as 24-byte
 * records, as in the SQLite store), one per server that owns one (see
 * store_redis_tslog.c), its ids the server's own ("tsl" for a store
 * without an owner, its ids from one counter); chunks are a hash of chunk id -> first ts and 16-byte
 * samples, with a sorted set per series of its chunk ids by last ts and
 * one of every chunk by last ts for the retention trim; the latest point
 * of each series (and its log_upto) is a hash field, and an owner's
 * log_upto of each series it flushed a field of its own hash. */
#include "records/store_pack.h"
#include "records/store_redis.h"

#include <stdlib.h>

#define LOG_REC 24
#define CHUNK_REC 16
#define LATEST_LEN 32

/* ARGV: prefix, seen, packed points, the log's key. The new log id. */
struct redis_script rd_ts_log_lua = {
    "local id = redis.call('INCR', ARGV[1] .. 'tsl:n')\n"
    "redis.call('XADD', ARGV[1] .. ARGV[4], '0-' .. id, 's', ARGV[2], 'p', ARGV[3])\n"
    "return id\n",
    ""};

/* ARGV: prefix, key, last ts, chunk, latest or "", the owner's log_upto
 * hash or "", log_upto. */
struct redis_script rd_ts_chunk_lua = {
    "local P, key = ARGV[1], ARGV[2]\n"
    "local id = redis.call('INCR', P .. 'tsc:n')\n"
    "redis.call('HSET', P .. 'tsc', id, ARGV[4])\n"
    "redis.call('ZADD', P .. 'tsk:' .. key, ARGV[3], id)\n"
    "redis.call('ZADD', P .. 'tsall', ARGV[3], key .. ':' .. id)\n"
    "if ARGV[5] ~= '' then\n"
    "  redis.call('HSET', P .. 'tslatest', key, ARGV[5])\n"
    "  if ARGV[6] ~= '' then redis.call('HSET', P .. ARGV[6], key, ARGV[7]) end\n"
    "end\n"
    "return id\n",
    ""};

/* ARGV: prefix, before ms, limit. How many chunks went. */
struct redis_script rd_ts_trim_lua = {
    "local P = ARGV[1]\n"
    "local m = redis.call('ZRANGEBYSCORE', P .. 'tsall', '-inf', '(' .. ARGV[2],\n"
    "                     'LIMIT', 0, ARGV[3])\n"
    "for _, x in ipairs(m) do\n"
    "  local key, id = string.match(x, '^(.*):(%d+)$')\n"
    "  redis.call('ZREM', P .. 'tsk:' .. key, id)\n"
    "  redis.call('HDEL', P .. 'tsc', id)\n"
    "  redis.call('ZREM', P .. 'tsall', x)\n"
    "end\n"
    "return #m\n",
    ""};

/* ARGV: prefix, key, the owner's log_upto hash or "". */
struct redis_script rd_ts_drop_lua = {
    "local P, key = ARGV[1], ARGV[2]\n"
    "for _, id in ipairs(redis.call('ZRANGE', P .. 'tsk:' .. key, 0, -1)) do\n"
    "  redis.call('HDEL', P .. 'tsc', id)\n"
    "  redis.call('ZREM', P .. 'tsall', key .. ':' .. id)\n"
    "end\n"
    "redis.call('DEL', P .. 'tsk:' .. key)\n"
    "redis.call('HDEL', P .. 'tslatest', key)\n"
    "if ARGV[3] ~= '' then redis.call('HDEL', P .. ARGV[3], key) end\n"
    "return 1\n",
    ""};

int rd_ts_log_append(struct store *st, int64_t seen, const struct store_ts_point *pts, int n,
                     int64_t *id_out)
{
    struct redis_store *r = R(st);
    unsigned char *blob = g_malloc((size_t)n * LOG_REC + 1);
    for (int i = 0; i < n; i++) {
        unsigned char *p = blob + (size_t)i * LOG_REC;
        put_u64(p, (uint64_t)pts[i].key);
        put_u64(p + 8, (uint64_t)pts[i].ts);
        put_u64(p + 16, dbits(pts[i].value));
    }
    struct redis_cmd c;
    if (r->log_owner) {
        /* A log of its own: the ids are this server's to give, so the row
         * is a write like any other, sent with the open batch (no wait). */
        int64_t id = ++r->log_last;
        char *eid = g_strdup_printf("0-%" G_GINT64_FORMAT, (gint64)id);
        rd_cmd_start(&c, "XADD");
        rd_cmd_key(r, &c, r->log_key, "");
        redis_cmd_str(&c, eid);
        redis_cmd_str(&c, "s");
        redis_cmd_i64(&c, seen);
        redis_cmd_str(&c, "p");
        redis_cmd_bin(&c, blob, (size_t)n * LOG_REC);
        /* (rows taken over from another log too: the old rows go by a
         * write sent after these, made only if these were) */
        int rc = rd_write(r, &c);
        g_free(eid);
        g_free(blob);
        if (rc == STORE_OK && id_out)
            *id_out = id;
        return rc;
    }
    rd_args_start(r, &c);
    redis_cmd_i64(&c, seen);
    redis_cmd_bin(&c, blob, (size_t)n * LOG_REC);
    redis_cmd_str(&c, rd_ts_log_key(r));
    redisReply *rep = rd_script(r, &rd_ts_log_lua, &c);
    g_free(blob);
    if (!rep)
        return STORE_EIO;
    if (id_out)
        *id_out = rd_reply_int(rep);
    freeReplyObject(rep);
    return STORE_OK;
}

bool rd_ts_log_row(const redisReply *e, int64_t *id, int64_t *seen, GArray *pts)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
        return false;
    *id = rd_entry_seq(e->element[0]);
    const redisReply *s = rd_entry_field(e->element[1], "s");
    const redisReply *p = rd_entry_field(e->element[1], "p");
    if (*id < 0 || !s || !p || p->type != REDIS_REPLY_STRING || p->len % LOG_REC)
        return false;
    *seen = rd_reply_int(s);
    g_array_set_size(pts, 0);
    for (size_t k = 0; k < p->len / LOG_REC; k++) {
        const unsigned char *b = (const unsigned char *)p->str + k * LOG_REC;
        struct store_ts_point x = {(int64_t)get_u64(b), (int64_t)get_u64(b + 8),
                                   bitsd(get_u64(b + 16)), *seen};
        g_array_append_val(pts, x);
    }
    return true;
}

int rd_ts_log_each(struct store *st, int64_t after_id, store_ts_log_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    GArray *pts = g_array_new(FALSE, FALSE, sizeof(struct store_ts_point));
    int rc = STORE_OK;
    bool stop = false;
    while (rc == STORE_OK && !stop) {
        struct redis_cmd c;
        rd_cmd_start(&c, "XRANGE");
        rd_cmd_key(r, &c, rd_ts_log_key(r), "");
        char *lo = g_strdup_printf("(0-%" G_GINT64_FORMAT, (gint64)after_id);
        redis_cmd_str(&c, lo);
        redis_cmd_str(&c, "+");
        redis_cmd_str(&c, "COUNT");
        redis_cmd_i64(&c, RD_PAGE);
        redisReply *rep = rd_run(r, &c);
        g_free(lo);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            rc = STORE_EIO;
            if (rep)
                freeReplyObject(rep);
            break;
        }
        for (size_t i = 0; i < rep->elements && !stop && rc == STORE_OK; i++) {
            int64_t id, seen;
            if (!rd_ts_log_row(rep->element[i], &id, &seen, pts)) {
                rc = STORE_EIO;
                break;
            }
            after_id = id;
            if (!cb(id, seen, (struct store_ts_point *)(void *)pts->data, (int)pts->len, ud))
                stop = true;
        }
        if (rep->elements < RD_PAGE)
            stop = true;
        freeReplyObject(rep);
    }
    g_array_free(pts, TRUE);
    return rc;
}

int rd_ts_log_trim(struct store *st, int64_t upto_id)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_cmd_start(&c, "XTRIM");
    rd_cmd_key(r, &c, rd_ts_log_key(r), "");
    redis_cmd_str(&c, "MINID");
    char *min = g_strdup_printf("0-%" G_GINT64_FORMAT, (gint64)(upto_id < 0 ? 0 : upto_id) + 1);
    redis_cmd_str(&c, min);
    int rc = rd_write(r, &c);
    g_free(min);
    return rc;
}

int rd_ts_chunk_put(struct store *st, int64_t key, const struct store_ts_sample *pts, int n,
                    const struct store_ts_point *latest, int64_t log_upto)
{
    struct redis_store *r = R(st);
    size_t len = 8 + (size_t)n * CHUNK_REC;
    unsigned char *blob = g_malloc(len);
    put_u64(blob, (uint64_t)pts[0].ts);
    for (int i = 0; i < n; i++) {
        put_u64(blob + 8 + (size_t)i * CHUNK_REC, (uint64_t)pts[i].ts);
        put_u64(blob + 16 + (size_t)i * CHUNK_REC, dbits(pts[i].value));
    }
    unsigned char lat[LATEST_LEN];
    struct redis_cmd c;
    rd_args_start(r, &c);
    redis_cmd_i64(&c, key);
    redis_cmd_i64(&c, pts[n - 1].ts);
    redis_cmd_bin(&c, blob, len);
    if (latest) {
        put_u64(lat, (uint64_t)latest->ts);
        put_u64(lat + 8, dbits(latest->value));
        put_u64(lat + 16, (uint64_t)latest->seen);
        put_u64(lat + 24, (uint64_t)log_upto);
        redis_cmd_bin(&c, lat, sizeof(lat));
    } else {
        redis_cmd_str(&c, "");
    }
    redis_cmd_str(&c, r->upto_key ? r->upto_key : "");
    redis_cmd_i64(&c, log_upto);
    int rc = rd_write_script(r, &rd_ts_chunk_lua, &c);
    g_free(blob);
    return rc;
}

struct chunk {
    int64_t first, id;
    const redisReply *body;
};

static int chunk_cmp(const void *a, const void *b)
{
    const struct chunk *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int rd_ts_chunk_range(struct store *st, int64_t key, int64_t from_ms, int64_t to_ms,
                      store_ts_chunk_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_cmd_start(&c, "ZRANGEBYSCORE");
    char *k = g_strdup_printf("%" G_GINT64_FORMAT, (gint64)key);
    rd_cmd_key(r, &c, "tsk:", k);
    g_free(k);
    redis_cmd_i64(&c, from_ms);
    redis_cmd_str(&c, "+inf");
    redisReply *ids = rd_run(r, &c);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        if (ids)
            freeReplyObject(ids);
        return STORE_EIO;
    }
    size_t n = ids->elements;
    if (n == 0) {
        freeReplyObject(ids);
        return STORE_OK;
    }
    rd_cmd_start(&c, "HMGET");
    rd_cmd_key(r, &c, "tsc", "");
    for (size_t i = 0; i < n; i++)
        redis_cmd_bin(&c, ids->element[i]->str, ids->element[i]->len);
    redisReply *bodies = rd_run(r, &c);
    int rc =
        bodies && bodies->type == REDIS_REPLY_ARRAY && bodies->elements == n ? STORE_OK : STORE_EIO;
    struct chunk *ch = g_new(struct chunk, n);
    size_t m = 0;
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        const redisReply *b = bodies->element[i];
        if (b->type != REDIS_REPLY_STRING)
            continue; /* trimmed meanwhile */
        if (b->len < 8 + CHUNK_REC || (b->len - 8) % CHUNK_REC) {
            rc = STORE_EIO;
            break;
        }
        int64_t first = (int64_t)get_u64((const unsigned char *)b->str);
        if (first >= to_ms)
            continue;
        ch[m++] = (struct chunk){first, rd_reply_int(ids->element[i]), b};
    }
    qsort(ch, m, sizeof(*ch), chunk_cmp);
    GArray *pts = g_array_new(FALSE, FALSE, sizeof(struct store_ts_sample));
    for (size_t i = 0; rc == STORE_OK && i < m; i++) {
        const unsigned char *p = (const unsigned char *)ch[i].body->str + 8;
        size_t count = (ch[i].body->len - 8) / CHUNK_REC;
        g_array_set_size(pts, 0);
        for (size_t j = 0; j < count; j++) {
            struct store_ts_sample x = {(int64_t)get_u64(p + j * CHUNK_REC),
                                        bitsd(get_u64(p + j * CHUNK_REC + 8))};
            g_array_append_val(pts, x);
        }
        if (!cb((struct store_ts_sample *)(void *)pts->data, (int)pts->len, ud))
            break;
    }
    g_array_free(pts, TRUE);
    g_free(ch);
    if (bodies)
        freeReplyObject(bodies);
    freeReplyObject(ids);
    return rc;
}

int rd_ts_chunk_trim_before(struct store *st, int64_t before_ms, int limit, int64_t *deleted)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_args_start(r, &c);
    redis_cmd_i64(&c, before_ms);
    redis_cmd_i64(&c, limit);
    redisReply *rep = rd_script(r, &rd_ts_trim_lua, &c);
    if (!rep)
        return STORE_EIO;
    if (deleted)
        *deleted = rd_reply_int(rep);
    freeReplyObject(rep);
    return STORE_OK;
}

int rd_ts_drop(struct store *st, int64_t key)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_args_start(r, &c);
    redis_cmd_i64(&c, key);
    redis_cmd_str(&c, r->upto_key ? r->upto_key : "");
    return rd_write_script(r, &rd_ts_drop_lua, &c); /* a write of the open batch */
}

struct latest_each {
    GHashTable *uptos; /* the owner's: the latest's log_upto is another's */
    store_ts_latest_cb cb;
    void *ud;
};

static int latest_one(const redisReply *k, const redisReply *v, void *ud)
{
    struct latest_each *e = ud;
    if (v->type != REDIS_REPLY_STRING || v->len != LATEST_LEN)
        return -1;
    const unsigned char *b = (const unsigned char *)v->str;
    struct store_ts_point p = {rd_reply_int(k), (int64_t)get_u64(b), bitsd(get_u64(b + 8)),
                               (int64_t)get_u64(b + 16)};
    int64_t upto = (int64_t)get_u64(b + 24);
    if (e->uptos) {
        const int64_t *u = g_hash_table_lookup(e->uptos, &p.key);
        upto = u ? u[1] : 0;
    }
    return e->cb(&p, upto, e->ud) ? 1 : 0;
}

int rd_ts_latest_each(struct store *st, store_ts_latest_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    struct latest_each e = {NULL, cb, ud};
    if (r->upto_key && !(e.uptos = rd_ts_uptos(r, r->upto_key)))
        return STORE_EIO;
    int rc = rd_hscan(r, "tslatest", latest_one, &e);
    if (e.uptos)
        g_hash_table_destroy(e.uptos);
    return rc;
}
