/* The Redis store backend: the store interface (store.h) on one Redis
 * primary (with replicas and Sentinel for failover; Redis Cluster is not
 * supported, since a write touches several keys at once).
 *
 * Every write that touches more than one key is one Lua script, which
 * Redis runs atomically: no other client sees half of it. A write is
 * durable when the call returns if the server runs with appendonly yes and
 * appendfsync always (Redis replies only after its log is on disk); with
 * appendfsync everysec a crash of the Redis host may lose the last second
 * (docs/operations.md). Calls wait for their reply: there is no batching.
 *
 * Keys, all under a prefix (yjt: by default), so that several deployments
 * may share a server:
 *   rev                    documents' revision counter
 *   d:COLL      hash       id -> JSON body
 *   dl:COLL     zset       ids, by name (listing in id order)
 *   dr:COLL     zset       ids, scored by the revision of their last put
 *   dx:COLL     hash       id -> the document's index rows (msgpack list of
 *                          field, value, field, value...)
 *   ix:COLL:FIELD zset     "VALUE\0ID", by name (exact and prefix look-ups)
 *   idxdefs     set        "COLL\0FIELD" of every index already filled
 *   s:KEY       stream     sequence items, entry id 0-SEQ, field b = body
 *   sh:KEY      string     last seq ever given in KEY
 *   dlz, dlb    zset, hash deadlines: id by due time; id -> payload
 *   kv:KEY      string     expiring values (Redis expires them)
 *   c:NAME      string     counters
 *   tsl, tsl:n  stream     time-series log, entry id 0-ID (fields s, p);
 *                          and its last id
 *   tsc, tsc:n  hash       chunk id -> first ts + packed samples; last id
 *   tsk:KEY     zset       a series' chunk ids, scored by their last ts
 *   tsall       zset       "KEY:CHUNKID" of every chunk, by last ts
 *   tslatest    hash       series key -> latest point and log_upto
 * Values from JSON never hold a NUL (the JSON reader refuses \u0000), so
 * "VALUE\0ID" splits unambiguously. */
#include "common/jsonx.h"
#include "records/store_redis.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- scripts ---- */

/* ARGV: prefix, coll, id, body, create_only, then (field, value, unique)
 * per index row the new document has. Returns its revision, or -1 when
 * create_only finds the id taken or a unique value belongs to another;
 * create_only "2" (a replace sent without waiting, store_doc_put_kept):
 * an error instead of -1, so that the batch fails rather than the write
 * being dropped unseen. */
static struct redis_script doc_put_lua = {
    "local P, coll, id = ARGV[1], ARGV[2], ARGV[3]\n"
    "local dk, xk = P .. 'd:' .. coll, P .. 'dx:' .. coll\n"
    "if ARGV[5] == '1' and redis.call('HEXISTS', dk, id) == 1 then return -1 end\n"
    "local want, wl = {}, {}\n"
    "for i = 6, #ARGV, 3 do\n"
    "  local k = ARGV[i] .. '\\0' .. ARGV[i + 1]\n"
    "  if not want[k] then\n"
    "    want[k] = ARGV[i + 2]; wl[#wl + 1] = ARGV[i]; wl[#wl + 1] = ARGV[i + 1]\n"
    "  end\n"
    "end\n"
    "local have = {}\n"
    "local old = redis.call('HGET', xk, id)\n"
    "if old then\n"
    "  local t = cmsgpack.unpack(old)\n"
    "  for i = 1, #t, 2 do have[t[i] .. '\\0' .. t[i + 1]] = {t[i], t[i + 1]} end\n"
    "end\n"
    "for i = 1, #wl, 2 do\n"
    "  local f, v = wl[i], wl[i + 1]\n"
    "  if not have[f .. '\\0' .. v] and want[f .. '\\0' .. v] == '1' then\n"
    "    local m = redis.call('ZRANGEBYLEX', P .. 'ix:' .. coll .. ':' .. f,\n"
    "                         '[' .. v .. '\\0', '(' .. v .. '\\1', 'LIMIT', 0, 2)\n"
    "    for _, x in ipairs(m) do\n"
    "      if x ~= v .. '\\0' .. id then\n"
    "        if ARGV[5] == '2' then return redis.error_reply('CONFLICT unique value taken') end\n"
    "        return -1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for k, r in pairs(have) do\n"
    "  if not want[k] then\n"
    "    redis.call('ZREM', P .. 'ix:' .. coll .. ':' .. r[1], r[2] .. '\\0' .. id)\n"
    "  end\n"
    "end\n"
    "for i = 1, #wl, 2 do\n"
    "  if not have[wl[i] .. '\\0' .. wl[i + 1]] then\n"
    "    redis.call('ZADD', P .. 'ix:' .. coll .. ':' .. wl[i], 0, wl[i + 1] .. '\\0' .. id)\n"
    "  end\n"
    "end\n"
    "if #wl > 0 then redis.call('HSET', xk, id, cmsgpack.pack(wl))\n"
    "elseif old then redis.call('HDEL', xk, id) end\n"
    "redis.call('HSET', dk, id, ARGV[4])\n"
    "local rev = redis.call('INCR', P .. 'rev')\n"
    "redis.call('ZADD', P .. 'dl:' .. coll, 0, id)\n"
    "redis.call('ZADD', P .. 'dr:' .. coll, rev, id)\n"
    "return rev\n",
    ""};

/* ARGV: prefix, coll, id. 1 if the document was there. */
static struct redis_script doc_del_lua = {
    "local P, coll, id = ARGV[1], ARGV[2], ARGV[3]\n"
    "if redis.call('HDEL', P .. 'd:' .. coll, id) == 0 then return 0 end\n"
    "local xk = P .. 'dx:' .. coll\n"
    "local old = redis.call('HGET', xk, id)\n"
    "if old then\n"
    "  local t = cmsgpack.unpack(old)\n"
    "  for i = 1, #t, 2 do\n"
    "    redis.call('ZREM', P .. 'ix:' .. coll .. ':' .. t[i], t[i + 1] .. '\\0' .. id)\n"
    "  end\n"
    "  redis.call('HDEL', xk, id)\n"
    "end\n"
    "redis.call('ZREM', P .. 'dl:' .. coll, id)\n"
    "redis.call('ZREM', P .. 'dr:' .. coll, id)\n"
    "return 1\n",
    ""};

/* ARGV: prefix, coll, id, field, values...: a document gains its rows of
 * an index defined after it was stored. */
static struct redis_script idx_add_lua = {
    "local P, coll, id, f = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local xk = P .. 'dx:' .. coll\n"
    "local old = redis.call('HGET', xk, id)\n"
    "local t = old and cmsgpack.unpack(old) or {}\n"
    "local have = {}\n"
    "for i = 1, #t, 2 do have[t[i] .. '\\0' .. t[i + 1]] = true end\n"
    "for i = 5, #ARGV do\n"
    "  if not have[f .. '\\0' .. ARGV[i]] then\n"
    "    have[f .. '\\0' .. ARGV[i]] = true\n"
    "    t[#t + 1] = f; t[#t + 1] = ARGV[i]\n"
    "    redis.call('ZADD', P .. 'ix:' .. coll .. ':' .. f, 0, ARGV[i] .. '\\0' .. id)\n"
    "  end\n"
    "end\n"
    "if #t > 0 then redis.call('HSET', xk, id, cmsgpack.pack(t)) end\n"
    "return 1\n",
    ""};

/* ARGV: prefix, then (id, due, payload) per deadline. */
static struct redis_script deadline_set_lua = {
    "local P = ARGV[1]\n"
    "for i = 2, #ARGV, 3 do\n"
    "  redis.call('ZADD', P .. 'dlz', ARGV[i + 1], ARGV[i])\n"
    "  redis.call('HSET', P .. 'dlb', ARGV[i], ARGV[i + 2])\n"
    "end\n"
    "return 1\n",
    ""};

/* ARGV: prefix, id, due, until: 1 claimed, -1 moved by another, -2 gone. */
static struct redis_script deadline_claim_lua = {
    "local s = redis.call('ZSCORE', ARGV[1] .. 'dlz', ARGV[2])\n"
    "if not s then return -2 end\n"
    "if tonumber(s) ~= tonumber(ARGV[3]) then return -1 end\n"
    "redis.call('ZADD', ARGV[1] .. 'dlz', ARGV[4], ARGV[2])\n"
    "return 1\n",
    ""};

/* ARGV: prefix, id. */
static struct redis_script deadline_del_lua = {"redis.call('ZREM', ARGV[1] .. 'dlz', ARGV[2])\n"
                                               "redis.call('HDEL', ARGV[1] .. 'dlb', ARGV[2])\n"
                                               "return 1\n",
                                               ""};

/* ARGV: prefix, key, window_ms, now_ms, n, limit: {added (1|0), count}.
 * The count is a string: Redis would truncate a Lua number. Its writes
 * stay out of the append-only file and the replicas (REPL_NONE), so a
 * check does not wait for a disk sync: rate windows are not durable. */
static struct redis_script rate_add_lua = {
    "redis.set_repl(redis.REPL_NONE)\n"
    "local w, now = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local n, limit = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local i = math.floor(now / w)\n"
    "local base = ARGV[1] .. 'rate:' .. ARGV[3] .. ':' .. ARGV[2] .. ':'\n"
    "local cur = tonumber(redis.call('GET', base .. i) or '0')\n"
    "local prev = tonumber(redis.call('GET', base .. (i - 1)) or '0')\n"
    "local count = prev * (1 - (now - i * w) / w) + cur\n"
    "if limit >= 0 and count + n > limit then return {0, tostring(count)} end\n"
    "if n > 0 then\n"
    "  redis.call('INCRBY', base .. i, n)\n"
    "  redis.call('PEXPIRE', base .. i, 2 * w)\n"
    "end\n"
    "return {1, tostring(count + n)}\n",
    ""};

static struct redis_script *const scripts[] = {
    &doc_put_lua,           &doc_del_lua,      &idx_add_lua,      &rd_seq_append_lua,
    &rd_seq_trim_older_lua, &deadline_set_lua, &deadline_del_lua, &deadline_claim_lua,
    &rd_ts_log_lua,         &rd_ts_chunk_lua,  &rd_ts_trim_lua,   &rd_ts_drop_lua,
    &rate_add_lua,          &rd_ts_claim_lua,  &rd_ts_forget_lua,
};

/* ---- helpers ---- */

/* A command begun with its verb. */
void rd_cmd_start(struct redis_cmd *c, const char *verb)
{
    redis_cmd_init(c);
    redis_cmd_str(c, verb);
}

/* The key PREFIX + a + b as a word of c. */
void rd_cmd_key(struct redis_store *r, struct redis_cmd *c, const char *a, const char *b)
{
    char *k = g_strconcat(r->prefix, a, b, NULL);
    redis_cmd_cat(c, "", k);
    g_free(k);
}

/* Runs c and clears it; NULL on failure, including an error reply. */
redisReply *rd_run(struct redis_store *r, struct redis_cmd *c)
{
    return redis_link_call(r->link, c);
}

redisReply *rd_script(struct redis_store *r, struct redis_script *s, struct redis_cmd *args)
{
    redisReply *rep = redis_link_script(r->link, s, args);
    redis_cmd_clear(args);
    /* every script writes: with replicas to wait for, it counts once they have it */
    if (rep && (rep->type == REDIS_REPLY_ERROR || redis_link_wait(r->link) != 0)) {
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* Runs c, expecting any reply but an error. */
int rd_run_ok(struct redis_store *r, struct redis_cmd *c)
{
    redisReply *rep = rd_run(r, c);
    if (!rep)
        return STORE_EIO;
    freeReplyObject(rep);
    return redis_link_wait(r->link) == 0 ? STORE_OK : STORE_EIO;
}

void rd_args_start(struct redis_store *r, struct redis_cmd *c)
{
    redis_cmd_init(c);
    redis_cmd_str(c, r->prefix);
}

int rd_script_ok(struct redis_store *r, struct redis_script *s, struct redis_cmd *args)
{
    redisReply *rep = rd_script(r, s, args);
    if (!rep)
        return STORE_EIO;
    freeReplyObject(rep);
    return STORE_OK;
}

int64_t rd_reply_int(const redisReply *rep)
{
    if (rep->type == REDIS_REPLY_INTEGER)
        return rep->integer;
    if (rep->type == REDIS_REPLY_STRING)
        return g_ascii_strtoll(rep->str, NULL, 10);
    return 0;
}

/* ---- documents ---- */

static bool has_unique_index(struct redis_store *r, const char *coll)
{
    for (guint i = 0; i < r->indexes->len; i++) {
        const struct idx *d = g_ptr_array_index(r->indexes, i);
        if (d->unique && strcmp(d->coll, coll) == 0)
            return true;
    }
    return false;
}

static bool has_index(struct redis_store *r, const char *coll)
{
    for (guint i = 0; i < r->indexes->len; i++)
        if (strcmp(((struct idx *)g_ptr_array_index(r->indexes, i))->coll, coll) == 0)
            return true;
    return false;
}

struct values_ctx {
    const struct idx *d;
    struct redis_cmd *c;
    bool rows;
};

static void add_value(json_t *value, void *ud)
{
    struct values_ctx *x = ud;
    if (x->rows)
        redis_cmd_str(x->c, x->d->field);
    redis_cmd_bin(x->c, json_string_value(value), json_string_length(value));
    if (x->rows)
        redis_cmd_str(x->c, x->d->unique ? "1" : "0");
}

/* Appends to c the values doc has for index d: with rows, as (field,
 * value, unique) triples; without, the values alone. */
static void index_values(const struct idx *d, json_t *doc, struct redis_cmd *c, bool rows)
{
    struct values_ctx x = {d, c, rows};
    store_index_values(doc, d->field, add_value, &x);
}

static bool backfill_one(const char *id, json_t *doc, void *ud);

struct backfill {
    struct redis_store *r;
    const struct idx *d;
    int rc;
};

static int rd_doc_list(struct store *st, const char *coll, store_doc_cb cb, void *ud);

/* An index new to this store is filled from the documents already there,
 * once; idxdefs remembers that it was. */
static int rd_index_define(struct store *st, const char *coll, const char *field, bool unique)
{
    struct redis_store *r = R(st);
    struct idx *d = g_new0(struct idx, 1);
    d->coll = g_strdup(coll);
    d->field = g_strdup(field);
    d->unique = unique;
    g_ptr_array_add(r->indexes, d);
    char *member = g_strdup_printf("%s%c%s", coll, 0, field);
    size_t mlen = strlen(coll) + 1 + strlen(field);
    struct redis_cmd c;
    rd_cmd_start(&c, "SISMEMBER");
    rd_cmd_key(r, &c, "idxdefs", "");
    redis_cmd_bin(&c, member, mlen);
    redisReply *rep = rd_run(r, &c);
    int rc = rep ? STORE_OK : STORE_EIO;
    bool known = rep && rd_reply_int(rep) == 1;
    if (rep)
        freeReplyObject(rep);
    if (rc == STORE_OK && !known) {
        struct backfill b = {r, d, STORE_OK};
        rc = rd_doc_list(st, coll, backfill_one, &b);
        if (rc == STORE_OK)
            rc = b.rc;
        if (rc == STORE_OK) {
            rd_cmd_start(&c, "SADD");
            rd_cmd_key(r, &c, "idxdefs", "");
            redis_cmd_bin(&c, member, mlen);
            rc = rd_run_ok(r, &c);
        }
    }
    g_free(member);
    return rc;
}

static bool backfill_one(const char *id, json_t *doc, void *ud)
{
    struct backfill *b = ud;
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_str(&c, b->r->prefix);
    redis_cmd_str(&c, b->d->coll);
    redis_cmd_str(&c, id);
    redis_cmd_str(&c, b->d->field);
    int fixed = c.n;
    index_values(b->d, doc, &c, false);
    if (c.n == fixed) {
        redis_cmd_clear(&c);
        return true;
    }
    redisReply *rep = rd_script(b->r, &idx_add_lua, &c);
    if (!rep) {
        b->rc = STORE_EIO;
        return false;
    }
    freeReplyObject(rep);
    return true;
}

/* as (0: nothing known): STORE_PUT_NEW, the id was just made, so none
 * exists: stored without waiting, as a replace would be (see
 * store_doc_put_new); STORE_PUT_KEPT, the unique values are those
 * stored: sent without waiting too, a value found taken failing the batch
 * (see store_doc_put_kept). */
/* The arguments of doc_put_lua for doc (mode "0", "1" or "2"), or -1. */
static int doc_put_args(struct redis_store *r, struct redis_cmd *c, const char *coll,
                        const char *id, json_t *doc, const char *mode)
{
    char *body = jx_dump(doc);
    if (!body)
        return -1;
    rd_args_start(r, c);
    redis_cmd_str(c, coll);
    redis_cmd_str(c, id);
    redis_cmd_cat(c, "", body); /* a copy: the command outlives this call */
    redis_cmd_str(c, mode);
    free(body);
    if (has_index(r, coll)) {
        for (guint i = 0; i < r->indexes->len; i++) {
            const struct idx *d = g_ptr_array_index(r->indexes, i);
            if (strcmp(d->coll, coll) == 0)
                index_values(d, doc, c, true);
        }
    }
    return 0;
}

static int doc_put(struct store *st, const char *coll, const char *id, json_t *doc,
                   bool create_only, int as)
{
    struct redis_store *r = R(st);
    if (as == STORE_PUT_NEW && !has_unique_index(r, coll))
        create_only = false;
    bool kept = as == STORE_PUT_KEPT && !create_only && r->batching;
    struct redis_cmd c;
    if (doc_put_args(r, &c, coll, id, doc, create_only ? "1" : kept ? "2" : "0") != 0)
        return STORE_EIO;
    if (kept || (!create_only && !has_unique_index(r, coll))) { /* no answer needed */
        return rd_write_script(r, &doc_put_lua, &c);
    }
    redisReply *rep = rd_script(r, &doc_put_lua, &c);
    if (!rep)
        return STORE_EIO;
    int rc = rd_reply_int(rep) < 0 ? STORE_ECONFLICT : STORE_OK;
    freeReplyObject(rep);
    return rc;
}

/* From inside a call of the link: a create's answer. */
static void created(redisReply *rep, void *ud)
{
    int rc = !rep || rep->type == REDIS_REPLY_ERROR ? STORE_EIO
             : rd_reply_int(rep) < 0                ? STORE_ECONFLICT
                                                    : STORE_OK;
    store_read_done(ud, rc, rc == STORE_OK ? rd_reply_int(rep) : 0, false);
}

/* A create-only put sent with the open batch, answered when its reply is
 * read. */
static int rd_doc_create_later(struct store *st, const char *coll, const char *id, json_t *doc,
                               struct store_read *rd)
{
    struct redis_store *r = R(st);
    struct redis_cmd args, c;
    if (doc_put_args(r, &args, coll, id, doc, "1") != 0)
        return STORE_EIO;
    redis_cmd_init(&c);
    redis_cmd_script(&c, "EVAL", doc_put_lua.body, &args);
    return rd_send_write_read(r, &c, &args, created, rd);
}

static int rd_doc_put(struct store *st, const char *coll, const char *id, json_t *doc,
                      bool create_only)
{
    return doc_put(st, coll, id, doc, create_only, 0);
}

static int rd_doc_put_as(struct store *st, const char *coll, const char *id, json_t *doc,
                         enum store_put_as as)
{
    return doc_put(st, coll, id, doc, as == STORE_PUT_NEW, as);
}

static int rd_doc_get(struct store *st, const char *coll, const char *id, json_t **out)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_cmd_start(&c, "HGET");
    rd_cmd_key(r, &c, "d:", coll);
    redis_cmd_str(&c, id);
    redisReply *rep = rd_run(r, &c);
    if (!rep)
        return STORE_EIO;
    int rc = STORE_ENOTFOUND;
    if (rep->type == REDIS_REPLY_STRING) {
        *out = jx_load(rep->str, rep->len);
        rc = *out ? STORE_OK : STORE_EIO;
    }
    freeReplyObject(rep);
    return rc;
}

static int rd_doc_delete(struct store *st, const char *coll, const char *id)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_args_start(r, &c);
    redis_cmd_str(&c, coll);
    redis_cmd_str(&c, id);
    redisReply *rep = rd_script(r, &doc_del_lua, &c);
    if (!rep)
        return STORE_EIO;
    int rc = rd_reply_int(rep) == 1 ? STORE_OK : STORE_ENOTFOUND;
    freeReplyObject(rep);
    return rc;
}

static int rd_doc_remove(struct store *st, const char *coll, const char *id)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_args_start(r, &c);
    redis_cmd_str(&c, coll);
    redis_cmd_str(&c, id);
    return rd_write_script(r, &doc_del_lua, &c);
}

/* Calls cb with the bodies of the n ids (HMGET d:coll), skipping those
 * deleted meanwhile. *stop is set when cb says so. */
static int each_body(struct redis_store *r, const char *coll, char *const *ids, const size_t *lens,
                     size_t n, store_doc_cb cb, void *ud, bool *stop)
{
    if (n == 0)
        return STORE_OK;
    struct redis_cmd c;
    rd_cmd_start(&c, "HMGET");
    rd_cmd_key(r, &c, "d:", coll);
    for (size_t i = 0; i < n; i++)
        redis_cmd_bin(&c, ids[i], lens[i]);
    redisReply *rep = rd_run(r, &c);
    if (!rep)
        return STORE_EIO;
    int rc = rep->type == REDIS_REPLY_ARRAY && rep->elements == n ? STORE_OK : STORE_EIO;
    for (size_t i = 0; rc == STORE_OK && i < n && !*stop; i++) {
        const redisReply *b = rep->element[i];
        if (b->type != REDIS_REPLY_STRING)
            continue;
        json_t *doc = jx_load(b->str, b->len);
        if (!doc)
            continue;
        char *id = g_strndup(ids[i], lens[i]);
        if (!cb(id, doc, ud))
            *stop = true;
        g_free(id);
        json_decref(doc);
    }
    freeReplyObject(rep);
    return rc;
}

/* Pages through the members of a lexically ordered zset key from min to
 * max ("[x"/"(x"/"-"/"+"), RD_PAGE at a time; each member, cut at cut (a
 * NUL for index rows, or not at all with cut < 0) down to the part after
 * it, names a document of coll given to cb. */
static int each_lex(struct redis_store *r, const char *key, const char *min, size_t minlen,
                    const char *max, size_t maxlen, bool after_nul, const char *coll,
                    store_doc_cb cb, void *ud)
{
    GString *from = g_string_new_len(min, (gssize)minlen);
    int rc = STORE_OK;
    bool stop = false;
    while (rc == STORE_OK && !stop) {
        struct redis_cmd c;
        rd_cmd_start(&c, "ZRANGEBYLEX");
        redis_cmd_str(&c, key);
        redis_cmd_bin(&c, from->str, from->len);
        redis_cmd_bin(&c, max, maxlen);
        redis_cmd_str(&c, "LIMIT");
        redis_cmd_str(&c, "0");
        redis_cmd_i64(&c, RD_PAGE);
        redisReply *rep = rd_run(r, &c);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            rc = STORE_EIO;
            if (rep)
                freeReplyObject(rep);
            break;
        }
        size_t n = rep->elements;
        char **ids = g_new(char *, n + 1);
        size_t *lens = g_new(size_t, n + 1);
        for (size_t i = 0; i < n; i++) {
            const redisReply *m = rep->element[i];
            const char *nul = after_nul ? memchr(m->str, 0, m->len) : NULL;
            ids[i] = nul ? (char *)nul + 1 : m->str;
            lens[i] = nul ? m->len - (size_t)(nul + 1 - m->str) : m->len;
        }
        rc = each_body(r, coll, ids, lens, n, cb, ud, &stop);
        if (n == RD_PAGE) {
            const redisReply *last = rep->element[n - 1];
            g_string_assign(from, "(");
            g_string_append_len(from, last->str, (gssize)last->len);
        } else {
            stop = true;
        }
        g_free(ids);
        g_free(lens);
        freeReplyObject(rep);
    }
    g_string_free(from, TRUE);
    return rc;
}

static int rd_doc_list(struct store *st, const char *coll, store_doc_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    char *key = g_strconcat(r->prefix, "dl:", coll, NULL);
    int rc = each_lex(r, key, "-", 1, "+", 1, false, coll, cb, ud);
    g_free(key);
    return rc;
}

void rd_index_bounds(const char *value, bool prefix, GString **min, GString **max)
{
    /* exact: [VALUE\0 .. (VALUE\1; prefix: [VALUE .. (VALUE\xff (no UTF-8
     * byte is 0xff, so every string that starts with VALUE is below it) */
    size_t vlen = strlen(value);
    *min = g_string_new("[");
    g_string_append_len(*min, value, (gssize)vlen);
    *max = g_string_new("(");
    g_string_append_len(*max, value, (gssize)vlen);
    if (!prefix)
        g_string_append_c(*min, '\0');
    g_string_append_c(*max, prefix ? '\xff' : '\1');
}

static int rd_index_find(struct store *st, const char *coll, const char *field, const char *value,
                         bool prefix, store_doc_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    char *key = g_strconcat(r->prefix, "ix:", coll, ":", field, NULL);
    GString *min, *max;
    rd_index_bounds(value, prefix, &min, &max);
    int rc = each_lex(r, key, min->str, min->len, max->str, max->len, true, coll, cb, ud);
    g_string_free(min, TRUE);
    g_string_free(max, TRUE);
    g_free(key);
    return rc;
}

static int rd_doc_changes(struct store *st, const char *coll, int64_t after_rev, int64_t *last_rev,
                          store_doc_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    int64_t from = after_rev;
    int rc = STORE_OK;
    bool stop = false;
    while (rc == STORE_OK && !stop) {
        struct redis_cmd c;
        rd_cmd_start(&c, "ZRANGEBYSCORE");
        rd_cmd_key(r, &c, "dr:", coll);
        char *min = g_strdup_printf("(%" G_GINT64_FORMAT, (gint64)from);
        redis_cmd_str(&c, min);
        redis_cmd_str(&c, "+inf");
        redis_cmd_str(&c, "WITHSCORES");
        redis_cmd_str(&c, "LIMIT");
        redis_cmd_str(&c, "0");
        redis_cmd_i64(&c, RD_PAGE);
        redisReply *rep = rd_run(r, &c);
        g_free(min);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
            rc = STORE_EIO;
            if (rep)
                freeReplyObject(rep);
            break;
        }
        size_t n = rep->elements / 2;
        for (size_t i = 0; i < n && rc == STORE_OK && !stop; i++) {
            const redisReply *m = rep->element[2 * i];
            from = rd_reply_int(rep->element[2 * i + 1]);
            if (last_rev)
                *last_rev = from;
            char *id = m->str;
            size_t len = m->len;
            rc = each_body(r, coll, &id, &len, 1, cb, ud, &stop);
        }
        if (n < RD_PAGE)
            stop = true;
        freeReplyObject(rep);
    }
    if (last_rev && *last_rev < after_rev)
        *last_rev = after_rev;
    return rc;
}

/* ---- deadlines, values, counters ---- */

static int rd_deadline_set_many(struct store *st, const char *const *ids, int n,
                                const int64_t *due_ms, json_t *const *payloads)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_args_start(r, &c);
    char **bodies = g_new0(char *, n);
    int rc = STORE_OK;
    for (int i = 0; i < n; i++) {
        bodies[i] = jx_dump(payloads[i]);
        if (!bodies[i])
            rc = STORE_EIO;
        redis_cmd_str(&c, ids[i]);
        redis_cmd_i64(&c, due_ms[i]);
        redis_cmd_str(&c, bodies[i] ? bodies[i] : "");
    }
    if (rc == STORE_OK) {
        rc = rd_write_script(r, &deadline_set_lua, &c);
    } else {
        redis_cmd_clear(&c);
    }
    for (int i = 0; i < n; i++)
        free(bodies[i]);
    g_free(bodies);
    return rc;
}

static int rd_deadline_set(struct store *st, const char *id, int64_t due_ms, json_t *payload)
{
    return rd_deadline_set_many(st, &id, 1, &due_ms, &payload);
}

static int rd_deadline_delete(struct store *st, const char *id)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_args_start(r, &c);
    redis_cmd_str(&c, id);
    return rd_write_script(r, &deadline_del_lua, &c);
}

static int rd_deadline_claim(struct store *st, const char *id, int64_t due_ms, int64_t until_ms)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_args_start(r, &c);
    redis_cmd_str(&c, id);
    redis_cmd_i64(&c, due_ms);
    redis_cmd_i64(&c, until_ms);
    redisReply *rep = rd_script(r, &deadline_claim_lua, &c);
    if (!rep)
        return STORE_EIO;
    int64_t v = rd_reply_int(rep);
    freeReplyObject(rep);
    return v == 1 ? STORE_OK : v == -1 ? STORE_ECONFLICT : STORE_ENOTFOUND;
}

static int rd_deadline_due(struct store *st, int64_t now_ms, int limit, store_deadline_cb cb,
                           void *ud)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_cmd_start(&c, "ZRANGEBYSCORE");
    rd_cmd_key(r, &c, "dlz", "");
    redis_cmd_str(&c, "-inf");
    redis_cmd_i64(&c, now_ms);
    redis_cmd_str(&c, "WITHSCORES");
    if (limit > 0) {
        redis_cmd_str(&c, "LIMIT");
        redis_cmd_str(&c, "0");
        redis_cmd_i64(&c, limit);
    }
    redisReply *due = rd_run(r, &c);
    if (!due || due->type != REDIS_REPLY_ARRAY || due->elements % 2) {
        if (due)
            freeReplyObject(due);
        return STORE_EIO;
    }
    size_t n = due->elements / 2;
    int rc = STORE_OK;
    if (n > 0) {
        rd_cmd_start(&c, "HMGET");
        rd_cmd_key(r, &c, "dlb", "");
        for (size_t i = 0; i < n; i++)
            redis_cmd_bin(&c, due->element[2 * i]->str, due->element[2 * i]->len);
        redisReply *bodies = rd_run(r, &c);
        if (!bodies || bodies->type != REDIS_REPLY_ARRAY || bodies->elements != n)
            rc = STORE_EIO;
        for (size_t i = 0; rc == STORE_OK && i < n; i++) {
            const redisReply *b = bodies->element[i];
            json_t *payload = b->type == REDIS_REPLY_STRING ? jx_load(b->str, b->len) : NULL;
            if (!payload)
                continue;
            bool go_on =
                cb(due->element[2 * i]->str, rd_reply_int(due->element[2 * i + 1]), payload, ud);
            json_decref(payload);
            if (!go_on)
                break;
        }
        if (bodies)
            freeReplyObject(bodies);
    }
    freeReplyObject(due);
    return rc;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rd_kv_set(struct store *st, const char *key, const char *value, int64_t expire_at_ms)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    if (expire_at_ms != 0 && expire_at_ms <= wall_ms()) {
        rd_cmd_start(&c, "DEL"); /* already expired: as if set, then gone */
        rd_cmd_key(r, &c, "kv:", key);
        return rd_write(r, &c);
    }
    rd_cmd_start(&c, "SET");
    rd_cmd_key(r, &c, "kv:", key);
    redis_cmd_str(&c, value);
    if (expire_at_ms) {
        redis_cmd_str(&c, "PXAT");
        redis_cmd_i64(&c, expire_at_ms);
    }
    return rd_write(r, &c);
}

static int rd_kv_get(struct store *st, const char *key, char **value_out)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_cmd_start(&c, "GET");
    rd_cmd_key(r, &c, "kv:", key);
    redisReply *rep = rd_run(r, &c);
    if (!rep)
        return STORE_EIO;
    int rc = rep->type == REDIS_REPLY_STRING ? STORE_OK : STORE_ENOTFOUND;
    if (rc == STORE_OK && value_out)
        *value_out = g_strndup(rep->str, rep->len);
    freeReplyObject(rep);
    return rc;
}

static int rd_kv_delete(struct store *st, const char *key)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_cmd_start(&c, "DEL");
    rd_cmd_key(r, &c, "kv:", key);
    return rd_write(r, &c);
}

static int rd_kv_purge_expired(struct store *st, int64_t now_ms)
{
    (void)st; /* Redis expires keys itself */
    (void)now_ms;
    return STORE_OK;
}

static int rd_counter_incr(struct store *st, const char *name, int64_t by, int64_t *value_out)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_cmd_start(&c, "INCRBY");
    rd_cmd_key(r, &c, "c:", name);
    redis_cmd_i64(&c, by);
    redisReply *rep = rd_run(r, &c);
    if (rep && redis_link_wait(r->link) != 0) {
        freeReplyObject(rep);
        rep = NULL;
    }
    if (!rep)
        return STORE_EIO;
    if (value_out)
        *value_out = rd_reply_int(rep);
    freeReplyObject(rep);
    return STORE_OK;
}

/* The rate script's answer {added, count}: STORE_OK, STORE_ECONFLICT
 * (not added), or STORE_EIO. */
static int rate_verdict(const redisReply *rep, double *count_out)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING)
        return STORE_EIO;
    if (count_out)
        *count_out = g_ascii_strtod(rep->element[1]->str, NULL);
    return rd_reply_int(rep->element[0]) == 1 ? STORE_OK : STORE_ECONFLICT;
}

/* The rate script's arguments (see rate_add_lua). */
static void rate_args(struct redis_store *r, struct redis_cmd *c, const char *key,
                      int64_t window_ms, int64_t now_ms, int64_t n, int64_t limit)
{
    rd_args_start(r, c);
    redis_cmd_str(c, key);
    redis_cmd_i64(c, window_ms);
    redis_cmd_i64(c, now_ms);
    redis_cmd_i64(c, n);
    redis_cmd_i64(c, limit < 0 ? -1 : limit);
}

/* Rate windows are shared by every node; they are not worth waiting for
 * replicas (a failover loosens a limit for a window at most). */
static int rd_rate_add(struct store *st, const char *key, int64_t window_ms, int64_t now_ms,
                       int64_t n, int64_t limit, double *count_out)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rate_args(r, &c, key, window_ms, now_ms, n, limit);
    redisReply *rep = redis_link_script(r->link, &rate_add_lua, &c);
    redis_cmd_clear(&c);
    if (!rep)
        return STORE_EIO;
    int rc = rate_verdict(rep, count_out);
    freeReplyObject(rep);
    return rc;
}

struct rate_call {
    store_rate_cb cb;
    void *ud;
};

static void rate_answered(redisReply *rep, void *ud)
{
    struct rate_call *x = ud;
    double count = 0;
    int rc = rep ? rate_verdict(rep, &count) : STORE_EIO;
    x->cb(rc, count, x->ud);
    g_free(x);
}

/* The script by its body (EVAL: the server caches it by its SHA-1), so
 * that a server that lost its scripts needs no second try. */
static int rd_rate_add_async(struct store *st, const char *key, int64_t window_ms, int64_t now_ms,
                             int64_t n, int64_t limit, store_rate_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    struct redis_cmd args, c;
    rate_args(r, &args, key, window_ms, now_ms, n, limit);
    redis_cmd_init(&c);
    redis_cmd_script(&c, "EVAL", rate_add_lua.body, &args);
    struct rate_call *x = g_new(struct rate_call, 1);
    x->cb = cb;
    x->ud = ud;
    int rc = redis_link_defer_call(r->link, &c, rate_answered, x) == 0 ? STORE_OK : STORE_EIO;
    if (rc != STORE_OK)
        g_free(x);
    redis_cmd_clear(&c);
    redis_cmd_clear(&args);
    return rc;
}

/* ---- the store ---- */

static int rd_flush(struct store *st)
{
    (void)st;
    return STORE_OK;
}

static void idx_free(gpointer p)
{
    struct idx *d = p;
    g_free(d->coll);
    g_free(d->field);
    g_free(d);
}

static void rd_close(struct store *st)
{
    struct redis_store *r = R(st);
    r->batch_cb = NULL; /* nobody to tell any more */
    rd_commit(st);
    redis_link_free(r->link);
    g_queue_clear_full(&r->batches, g_free);
    g_ptr_array_free(r->indexes, TRUE);
    g_free(r->prefix);
    g_free(r->url);
    g_free(r->log_owner);
    g_free(r->log_key);
    g_free(r->upto_key);
    g_free(r->claimed); /* after the link: its last answers are in */
    rd_ts_adoption_end(r);
    g_free(r);
}

/* The owner's name is set once at start-up, before any reader opens. */
static struct store *rd_open_reader(struct store *st, char **err)
{
    struct store *rd = store_open_redis(R(st)->url, R(st)->prefix, err);
    if (rd && R(st)->log_owner)
        rd_ts_log_name(R(rd), R(st)->log_owner); /* its log is this node's */
    return rd;
}

static const struct store_ops redis_ops = {
    .close = rd_close,
    .open_reader = rd_open_reader,
    .flush = rd_flush,
    .index_define = rd_index_define,
    .doc_put = rd_doc_put,
    .doc_get = rd_doc_get,
    .doc_delete = rd_doc_delete,
    .doc_list = rd_doc_list,
    .index_find = rd_index_find,
    .doc_changes = rd_doc_changes,
    .index_find_later = rd_index_find_later,
    .docs_get_later = rd_docs_get_later,
    .doc_changes_later = rd_doc_changes_later,
    .kv_get_later = rd_kv_get_later,
    .seq_last_later = rd_seq_last_later,
    .deadline_take_due_later = rd_deadline_take_due_later,
    .deadlines_take_later = rd_deadlines_take_later,
    .doc_create_later = rd_doc_create_later,
    .seq_range_later = rd_seq_range_later,
    .kv_raise_later = rd_kv_raise_later,
    .ts_chunk_trim_before_later = rd_ts_chunk_trim_before_later,
    .ts_has_later = rd_ts_has_later,
    .seq_append = rd_seq_append,
    .seq_range = rd_seq_range,
    .seq_trim = rd_seq_trim,
    .seq_trim_older = rd_seq_trim_older,
    .seq_append_many_later = rd_seq_append_many_later,
    .seq_last = rd_seq_last,
    .seq_append_many = rd_seq_append_many,
    .deadline_set = rd_deadline_set,
    .deadline_set_many = rd_deadline_set_many,
    .deadline_delete = rd_deadline_delete,
    .deadline_claim = rd_deadline_claim,
    .deadline_due = rd_deadline_due,
    .kv_set = rd_kv_set,
    .kv_get = rd_kv_get,
    .kv_delete = rd_kv_delete,
    .kv_purge_expired = rd_kv_purge_expired,
    .counter_incr = rd_counter_incr,
    .set_batching = rd_set_batching,
    .commit = rd_commit,
    .commit_may_fail = true,
    .doc_put_as = rd_doc_put_as,
    .doc_remove = rd_doc_remove,
    .batches_async = rd_batches_async,
    .on_batch_done = rd_on_batch_done,
    .write_batch_async = rd_write_batch_async,
    .async_fd = rd_async_fd,
    .async_poll = rd_async_poll,
    .rate_add = rd_rate_add,
    .rate_add_async = rd_rate_add_async,
    .ts_log_append = rd_ts_log_append,
    .ts_log_each = rd_ts_log_each,
    .ts_log_trim = rd_ts_log_trim,
    .ts_chunk_put = rd_ts_chunk_put,
    .ts_chunk_range = rd_ts_chunk_range,
    .ts_chunk_trim_before = rd_ts_chunk_trim_before,
    .ts_drop = rd_ts_drop,
    .ts_latest_each = rd_ts_latest_each,
    .ts_log_own = rd_ts_log_own,
    .ts_log_adopt = rd_ts_log_adopt,
};

struct store *store_open_redis(const char *url, const char *prefix, char **err)
{
    static gsize scripts_ready;
    if (g_once_init_enter(&scripts_ready)) {
        for (size_t i = 0; i < G_N_ELEMENTS(scripts); i++)
            redis_script_init(scripts[i]);
        g_once_init_leave(&scripts_ready, 1);
    }
    struct redis_url u;
    if (redis_url_parse(url, &u, err) != 0)
        return NULL;
    char *where = redis_url_describe(&u);
    struct redis_store *r = g_new0(struct redis_store, 1);
    r->base.ops = &redis_ops;
    r->link = redis_link_new(&u, 2000);
    redis_link_on_reply(r->link, rd_on_reply, r);
    r->url = g_strdup(url);
    r->prefix = g_strdup(prefix && *prefix ? prefix : "yjt:");
    r->indexes = g_ptr_array_new_with_free_func(idx_free);
    if (redis_link_connect(r->link) != 0) {
        *err = g_strdup_printf("cannot reach Redis at %s: %s", where, redis_link_error(r->link));
        g_free(where);
        rd_close(&r->base);
        return NULL;
    }
    g_free(where);
    return &r->base;
}
