/* Reads of the Redis store sent without waiting (store.h, "Reads that
 * need not hold their caller"). Each is one command, a script where it
 * must find ids and then their bodies, sent behind the writes already
 * sent on the link (Redis runs one connection's commands in order, so it
 * sees them) and answered when its reply is read, by whichever later call
 * of the link reads it. The scripts are sent by body (EVAL; the server
 * caches them), so a server that lost its scripts needs no second try.
 * Sent the same way: the readings' retention trim, and the raise of
 * positions (a write, sent with the open batch). */
#include "records/store_redis.h"

#include "common/jsonx.h"

#include <string.h>

/* ARGV: prefix, coll, field, min, max, limit, ids_only (1/0). The members
 * of the index between min and max ("VALUE\0ID"), at most limit, and the
 * body of each unless ids_only: {more (0/1), {id, body or false, …}}. */
static const char index_find_lua[] =
    "local n = tonumber(ARGV[6])\n"
    "local m = redis.call('ZRANGEBYLEX', ARGV[1] .. 'ix:' .. ARGV[2] .. ':' .. ARGV[3],\n"
    "                     ARGV[4], ARGV[5], 'LIMIT', 0, n + 1)\n"
    "local d = ARGV[1] .. 'd:' .. ARGV[2]\n"
    "local out = {}\n"
    "for i = 1, math.min(#m, n) do\n"
    "  local at = string.find(m[i], '\\0', 1, true)\n"
    "  local id = at and string.sub(m[i], at + 1) or m[i]\n"
    "  out[#out + 1] = id\n"
    "  out[#out + 1] = ARGV[7] == '1' or redis.call('HGET', d, id)\n"
    "end\n"
    "return {#m > n and 1 or 0, out}\n";

/* ARGV: prefix, coll, after_rev, limit. The documents changed after
 * after_rev, oldest first, at most limit: {id, rev, body or false, …}. */
static const char changes_lua[] =
    "local m = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'dr:' .. ARGV[2], '(' .. ARGV[3],\n"
    "                     '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))\n"
    "local d = ARGV[1] .. 'd:' .. ARGV[2]\n"
    "local out = {}\n"
    "for i = 1, #m, 2 do\n"
    "  out[#out + 1] = m[i]\n"
    "  out[#out + 1] = m[i + 1]\n"
    "  out[#out + 1] = redis.call('HGET', d, m[i])\n"
    "end\n"
    "return out\n";

/* A body as the reply carries it: a document, or NULL (gone, or not
 * JSON: a reader skips it as the waiting reads do). */
static json_t *body_of(const redisReply *b)
{
    return b->type == REDIS_REPLY_STRING ? jx_load(b->str, b->len) : NULL;
}

static bool is_array(const redisReply *rep, size_t multiple)
{
    return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements % multiple == 0;
}

/* Sends c (cleared) with cb; STORE_OK, or STORE_EIO if it cannot be sent
 * now (cb never called). */
static int send_read(struct redis_store *r, struct redis_cmd *c, redis_call_cb cb, void *ud)
{
    int rc = redis_link_defer_call(r->link, c, cb, ud) == 0 ? STORE_OK : STORE_EIO;
    redis_cmd_clear(c);
    return rc;
}

static void script_cmd(struct redis_cmd *c, const char *body, struct redis_cmd *args)
{
    redis_cmd_init(c);
    redis_cmd_script(c, "EVAL", body, args);
}

/* {more, {id, body, …}}: the documents found that still exist. */
static void index_found(redisReply *rep, void *ud)
{
    struct store_read *rd = ud;
    if (!is_array(rep, 2) || rep->elements != 2 || !is_array(rep->element[1], 2)) {
        store_read_done(rd, STORE_EIO, 0, false);
        return;
    }
    const redisReply *list = rep->element[1];
    for (size_t i = 0; i + 1 < list->elements; i += 2) {
        const redisReply *id = list->element[i];
        const redisReply *b = list->element[i + 1];
        bool ids_only = b->type == REDIS_REPLY_INTEGER; /* Lua's true */
        json_t *doc = ids_only ? NULL : body_of(b);
        if (id->type == REDIS_REPLY_STRING && (doc || ids_only))
            store_read_add(rd, id->str, id->len, doc);
        else
            json_decref(doc);
    }
    store_read_done(rd, STORE_OK, 0, rd_reply_int(rep->element[0]) == 1);
}

int rd_index_find_later(struct store *st, const char *coll, const char *field, const char *value,
                        bool prefix, bool ids_only, int limit, struct store_read *rd)
{
    struct redis_store *r = R(st);
    GString *min, *max;
    rd_index_bounds(value, prefix, &min, &max);
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    redis_cmd_str(&args, coll);
    redis_cmd_str(&args, field);
    redis_cmd_bin(&args, min->str, min->len);
    redis_cmd_bin(&args, max->str, max->len);
    redis_cmd_i64(&args, limit);
    redis_cmd_str(&args, ids_only ? "1" : "0");
    script_cmd(&c, index_find_lua, &args);
    int rc = send_read(r, &c, index_found, rd);
    redis_cmd_clear(&args);
    g_string_free(min, TRUE);
    g_string_free(max, TRUE);
    return rc;
}

/* A multi-get under way: the names asked for, in order. */
struct got {
    struct store_read *rd;
    char **ids;
    size_t *lens;
    int n;
    bool values; /* MGET's values (kv:KEY), not HMGET's documents */
};

static void got_free(struct got *g)
{
    for (int i = 0; i < g->n; i++)
        g_free(g->ids[i]);
    g_free(g->ids);
    g_free(g->lens);
    g_free(g);
}

/* One reply element per name asked for: a document for each that exists
 * (HMGET), or each value as a JSON string, NULL where unset (MGET). */
static void got(redisReply *rep, void *ud)
{
    struct got *g = ud;
    int rc = is_array(rep, 1) && rep->elements == (size_t)g->n ? STORE_OK : STORE_EIO;
    for (int i = 0; rc == STORE_OK && i < g->n; i++) {
        const redisReply *v = rep->element[i];
        json_t *doc = NULL;
        if (g->values && v->type == REDIS_REPLY_STRING)
            doc = json_stringn(v->str, v->len);
        else if (!g->values)
            doc = body_of(v);
        if (doc || g->values)
            store_read_add(g->rd, g->ids[i], g->lens[i], doc);
    }
    store_read_done(g->rd, rc, 0, false);
    got_free(g);
}

/* HMGET d:coll ids… or MGET kv:key…, answered by got(). */
static int get_later(struct redis_store *r, const char *coll, const char *const *names, int n,
                     struct store_read *rd)
{
    struct got *g = g_new0(struct got, 1);
    g->rd = rd;
    g->n = n;
    g->values = coll == NULL;
    g->ids = g_new(char *, n);
    g->lens = g_new(size_t, n);
    struct redis_cmd c;
    rd_cmd_start(&c, g->values ? "MGET" : "HMGET");
    if (!g->values)
        rd_cmd_key(r, &c, "d:", coll);
    for (int i = 0; i < n; i++) {
        g->ids[i] = g_strdup(names[i]);
        g->lens[i] = strlen(names[i]);
        if (g->values)
            rd_cmd_key(r, &c, "kv:", names[i]);
        else
            redis_cmd_bin(&c, g->ids[i], g->lens[i]);
    }
    int rc = send_read(r, &c, got, g);
    if (rc != STORE_OK) /* the read itself is the caller's to free */
        got_free(g);
    return rc;
}

int rd_docs_get_later(struct store *st, const char *coll, const char *const *ids, int n,
                      struct store_read *rd)
{
    return get_later(R(st), coll, ids, n, rd);
}

int rd_kv_get_later(struct store *st, const char *const *keys, int n, struct store_read *rd)
{
    return get_later(R(st), NULL, keys, n, rd);
}

struct changes {
    struct store_read *rd;
    int64_t after_rev;
    int limit;
};

/* {id, rev, body, …}: every change, a deleted document's with NULL. */
static void changes_read(redisReply *rep, void *ud)
{
    struct changes *x = ud;
    struct store_read *rd = x->rd;
    int64_t last = x->after_rev;
    size_t n = is_array(rep, 3) ? rep->elements / 3 : 0;
    if (!is_array(rep, 3)) {
        store_read_done(rd, STORE_EIO, last, false);
        g_free(x);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = rep->element[3 * i];
        last = rd_reply_int(rep->element[3 * i + 1]);
        if (id->type == REDIS_REPLY_STRING)
            store_read_add(rd, id->str, id->len, body_of(rep->element[3 * i + 2]));
    }
    store_read_done(rd, STORE_OK, last, n == (size_t)x->limit);
    g_free(x);
}

int rd_doc_changes_later(struct store *st, const char *coll, int64_t after_rev, int limit,
                         struct store_read *rd)
{
    struct redis_store *r = R(st);
    struct changes *x = g_new(struct changes, 1);
    x->rd = rd;
    x->after_rev = after_rev;
    x->limit = limit;
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    redis_cmd_str(&args, coll);
    redis_cmd_i64(&args, after_rev);
    redis_cmd_i64(&args, limit);
    script_cmd(&c, changes_lua, &args);
    int rc = send_read(r, &c, changes_read, x);
    redis_cmd_clear(&args);
    if (rc != STORE_OK)
        g_free(x);
    return rc;
}

/* GET sh:KEY: the head of a sequence, unset (0) before its first append. */
static void head_read(redisReply *rep, void *ud)
{
    bool ok = rep && (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_NIL);
    store_read_done(ud, ok ? STORE_OK : STORE_EIO,
                    ok && rep->type == REDIS_REPLY_STRING ? rd_reply_int(rep) : 0, false);
}

int rd_seq_last_later(struct store *st, const char *key, struct store_read *rd)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_cmd_start(&c, "GET");
    rd_cmd_key(r, &c, "sh:", key);
    return send_read(r, &c, head_read, rd);
}

static void trimmed(redisReply *rep, void *ud)
{
    bool ok = rep && rep->type != REDIS_REPLY_ERROR;
    store_read_done(ud, ok ? STORE_OK : STORE_EIO, ok ? rd_reply_int(rep) : 0, false);
}

/* The readings' retention trim (store_redis_ts.c's script), answered with
 * how many chunks went; its failure fails no batch (it is tried again). */
int rd_ts_chunk_trim_before_later(struct store *st, int64_t before_ms, int limit,
                                  struct store_read *rd)
{
    struct redis_store *r = R(st);
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    redis_cmd_i64(&args, before_ms);
    redis_cmd_i64(&args, limit);
    script_cmd(&c, rd_ts_trim_lua.body, &args);
    int rc = send_read(r, &c, trimmed, rd);
    redis_cmd_clear(&args);
    return rc;
}

/* ARGV: prefix, then key, ts for each point. Which points are in a
 * stored chunk of their key: their indexes (0-based). A chunk (store_
 * redis_ts.c) is its first ts then (ts, value) records of 16 bytes, the
 * numbers little-endian; its score in tsk:KEY is its last ts, so the
 * chunks that may hold ts are those scored ts or more whose first is ts
 * or less (chunks may overlap: each is looked at, the 64 whose last ts
 * comes first: the one holding ts is among the first unless late data
 * made many overlap it; a repeat missed so is dropped by the readers). */
static const char has_lua[] =
    "local P = ARGV[1]\n"
    "local function u64(s, at)\n"
    "  local v = 0\n"
    "  for i = at + 7, at, -1 do v = v * 256 + string.byte(s, i) end\n"
    "  return v\n"
    "end\n"
    "local out = {}\n"
    "for a = 2, #ARGV - 1, 2 do\n"
    "  local ts = tonumber(ARGV[a + 1])\n"
    "  local found = false\n"
    "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'tsk:' .. ARGV[a], ts, '+inf',\n"
    "                                 'LIMIT', 0, 64)) do\n"
    "    local b = redis.call('HGET', P .. 'tsc', id)\n"
    "    if b and #b >= 24 and u64(b, 1) <= ts then\n"
    "      local lo, hi = 0, math.floor((#b - 8) / 16)\n"
    "      while lo < hi do\n"
    "        local mid = math.floor((lo + hi) / 2)\n"
    "        if u64(b, 9 + mid * 16) < ts then lo = mid + 1 else hi = mid end\n"
    "      end\n"
    "      if lo < math.floor((#b - 8) / 16) and u64(b, 9 + lo * 16) == ts then\n"
    "        found = true\n"
    "        break\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if found then out[#out + 1] = (a - 2) / 2 end\n"
    "end\n"
    "return out\n";

static void has_read(redisReply *rep, void *ud)
{
    struct store_read *rd = ud;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        store_read_done(rd, STORE_EIO, 0, false);
        return;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        char id[24];
        int n = g_snprintf(id, sizeof(id), "%lld", rep->element[i]->integer);
        store_read_add(rd, id, (size_t)n, NULL);
    }
    store_read_done(rd, STORE_OK, 0, false);
}

int rd_ts_has_later(struct store *st, const struct store_ts_point *pts, int n,
                    struct store_read *rd)
{
    struct redis_store *r = R(st);
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    for (int i = 0; i < n; i++) {
        redis_cmd_i64(&args, pts[i].key);
        redis_cmd_i64(&args, pts[i].ts);
    }
    script_cmd(&c, has_lua, &args);
    int rc = send_read(r, &c, has_read, rd);
    redis_cmd_clear(&args);
    return rc;
}

/* ARGV: prefix, key, after_seq, limit. The head and the items after
 * after_seq, read together: {head, {entry, …}}. */
static const char range_lua[] =
    "local head = redis.call('GET', ARGV[1] .. 'sh:' .. ARGV[2]) or '0'\n"
    "local e = redis.call('XRANGE', ARGV[1] .. 's:' .. ARGV[2], '(0-' .. ARGV[3], '+',\n"
    "                     'COUNT', tonumber(ARGV[4]))\n"
    "return {head, e}\n";

static void range_read(redisReply *rep, void *ud)
{
    struct store_read *rd = ud;
    if (!is_array(rep, 2) || rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_ARRAY) {
        store_read_done(rd, STORE_EIO, 0, false);
        return;
    }
    const redisReply *list = rep->element[1];
    for (size_t i = 0; i < list->elements; i++) {
        int64_t seq = -1;
        json_t *item = rd_entry_item(list->element[i], &seq);
        if (!item || seq < 0) {
            json_decref(item);
            continue;
        }
        char id[24];
        int n = g_snprintf(id, sizeof(id), "%" G_GINT64_FORMAT, (gint64)seq);
        store_read_add(rd, id, (size_t)n, item);
    }
    store_read_done(rd, STORE_OK, rd_reply_int(rep->element[0]), false);
}

int rd_seq_range_later(struct store *st, const char *key, int64_t after_seq, int limit,
                       struct store_read *rd)
{
    struct redis_store *r = R(st);
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    redis_cmd_str(&args, key);
    redis_cmd_i64(&args, after_seq);
    redis_cmd_i64(&args, limit);
    script_cmd(&c, range_lua, &args);
    int rc = send_read(r, &c, range_read, rd);
    redis_cmd_clear(&args);
    return rc;
}

/* ARGV: prefix, seq key, value, key…: raises each kv:key to value, unless
 * value is past the sequence's head (-1, nothing written); the value of
 * the first key after. */
static const char raise_lua[] =
    "local v = tonumber(ARGV[3])\n"
    "if v > tonumber(redis.call('GET', ARGV[1] .. 'sh:' .. ARGV[2]) or '0') then\n"
    "  return -1\n"
    "end\n"
    "local first\n"
    "for i = 4, #ARGV do\n"
    "  local k = ARGV[1] .. 'kv:' .. ARGV[i]\n"
    "  local cur = tonumber(redis.call('GET', k) or '0')\n"
    "  if v > cur then\n"
    "    redis.call('SET', k, ARGV[3])\n"
    "    cur = v\n"
    "  end\n"
    "  first = first or cur\n"
    "end\n"
    "return first\n";

static void raised(redisReply *rep, void *ud)
{
    int rc = rep && rep->type == REDIS_REPLY_INTEGER ? STORE_OK : STORE_EIO;
    if (rc == STORE_OK && rep->integer < 0)
        rc = STORE_EINVAL;
    store_read_done(ud, rc, rc == STORE_OK ? rep->integer : 0, false);
}

/* A write sent with the open batch (its loss fails the batch, as any
 * deferred write's), answered when its reply is read; without batching,
 * made at once. Clears c and args. */
int rd_send_write_read(struct redis_store *r, struct redis_cmd *c, struct redis_cmd *args,
                       redis_call_cb cb, struct store_read *rd)
{
    int rc = STORE_OK;
    if (!r->batching) { /* a write durable on return, as every write then */
        redisReply *rep = redis_link_run(r->link, c);
        if (rep && rep->type != REDIS_REPLY_ERROR && redis_link_wait(r->link) != 0) {
            freeReplyObject(rep);
            rep = NULL;
        }
        cb(rep, rd);
        if (rep)
            freeReplyObject(rep);
    } else if (redis_link_defer_write_call(r->link, c, cb, rd) == 0) {
        rd_dirtied(r);
    } else {
        rc = STORE_EIO;
    }
    redis_cmd_clear(c);
    redis_cmd_clear(args);
    return rc;
}

int rd_kv_raise_later(struct store *st, const char *seq_key, const char *const *keys, int n,
                      int64_t value, struct store_read *rd)
{
    struct redis_store *r = R(st);
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    redis_cmd_str(&args, seq_key);
    redis_cmd_i64(&args, value);
    for (int i = 0; i < n; i++)
        redis_cmd_str(&args, keys[i]);
    script_cmd(&c, raise_lua, &args);
    return rd_send_write_read(r, &c, &args, raised, rd);
}

/* ARGV: prefix, id prefix, now, limit, until: {id, due, "1", payload,
 * ...} of the deadlines taken (read by taken(), as take_ids_lua's). */
static const char take_due_lua[] =
    "local P, pre, now, lim, til = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
    "local due = redis.call('ZRANGEBYSCORE', P .. 'dlz', '-inf', now, 'WITHSCORES',\n"
    "                       'LIMIT', 0, lim)\n"
    "local out = {}\n"
    "for i = 1, #due, 2 do\n"
    "  local id = due[i]\n"
    "  if string.sub(id, 1, #pre) == pre then\n"
    "    redis.call('ZADD', P .. 'dlz', til, id)\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = due[i + 1]\n"
    "    out[#out + 1] = '1'\n"
    "    out[#out + 1] = redis.call('HGET', P .. 'dlb', id) or ''\n"
    "  end\n"
    "end\n"
    "return out\n";

/* {id, due or "", "1" if taken else "0", payload or "", ...}: each taken
 * one {"due_ms", "payload", "taken": true}, each not due {"due_ms",
 * "taken": false}, each absent NULL; with only_taken (a scan of the due
 * ones), those taken whose payload reads only. */
static void take_answer(redisReply *rep, struct store_read *rd, bool only_taken)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements % 4) {
        store_read_done(rd, STORE_EIO, 0, false);
        return;
    }
    for (size_t i = 0; i + 3 < rep->elements; i += 4) {
        const redisReply *id = rep->element[i], *due = rep->element[i + 1],
                         *took = rep->element[i + 2], *body = rep->element[i + 3];
        if (id->type != REDIS_REPLY_STRING || due->type != REDIS_REPLY_STRING ||
            took->type != REDIS_REPLY_STRING || body->type != REDIS_REPLY_STRING)
            continue;
        bool is_taken = due->len && strcmp(took->str, "1") == 0;
        json_t *payload = is_taken ? jx_load(body->str, body->len) : NULL;
        json_t *doc = NULL;
        if (only_taken && !payload)
            continue;
        if (is_taken)
            doc = json_pack("{s:I, s:o, s:b}", "due_ms", (json_int_t)rd_reply_int(due), "payload",
                            payload ? payload : json_object(), "taken", 1);
        else if (due->len)
            doc = json_pack("{s:I, s:b}", "due_ms", (json_int_t)rd_reply_int(due), "taken", 0);
        store_read_add(rd, id->str, id->len, doc);
    }
    store_read_done(rd, STORE_OK, 0, false);
}

static void taken(redisReply *rep, void *ud)
{
    take_answer(rep, ud, true);
}

/* As rd_kv_raise_later, a write answered when its reply is read. */
int rd_deadline_take_due_later(struct store *st, const char *prefix, int64_t now_ms, int limit,
                               int64_t until_ms, struct store_read *rd)
{
    struct redis_store *r = R(st);
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    redis_cmd_str(&args, prefix);
    redis_cmd_i64(&args, now_ms);
    redis_cmd_i64(&args, limit);
    redis_cmd_i64(&args, until_ms);
    script_cmd(&c, take_due_lua, &args);
    return rd_send_write_read(r, &c, &args, taken, rd);
}

/* ARGV: prefix, now, until, ids...: for each id, {id, due or "", "1" if
 * taken else "0", payload or ""}. */
static const char take_ids_lua[] =
    "local P, now, til = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local out = {}\n"
    "for i = 4, #ARGV do\n"
    "  local id = ARGV[i]\n"
    "  local due = redis.call('ZSCORE', P .. 'dlz', id)\n"
    "  local take = due and tonumber(due) <= now\n"
    "  if take then redis.call('ZADD', P .. 'dlz', til, id) end\n"
    "  out[#out + 1] = id\n"
    "  out[#out + 1] = due or ''\n"
    "  out[#out + 1] = take and '1' or '0'\n"
    "  out[#out + 1] = take and (redis.call('HGET', P .. 'dlb', id) or '') or ''\n"
    "end\n"
    "return out\n";

static void taken_named(redisReply *rep, void *ud)
{
    take_answer(rep, ud, false);
}

int rd_deadlines_take_later(struct store *st, const char *const *ids, int n, int64_t now_ms,
                            int64_t until_ms, struct store_read *rd)
{
    struct redis_store *r = R(st);
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    redis_cmd_i64(&args, now_ms);
    redis_cmd_i64(&args, until_ms);
    for (int i = 0; i < n; i++)
        redis_cmd_str(&args, ids[i]);
    script_cmd(&c, take_ids_lua, &args);
    return rd_send_write_read(r, &c, &args, taken_named, rd);
}
