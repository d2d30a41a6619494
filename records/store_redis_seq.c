/* The Redis store's sequences (see store_redis.c for the keys): a
 * stream per key ("s:KEY", entries "0-SEQ" with the item in field b) and
 * its head ("sh:KEY", never lowered by a trim). Appends run as one script
 * for any number of keys; a fan-out may be sent without waiting for its
 * seqs (rd_seq_append_many_later), and a trim by age reads the items
 * where they are (rd_seq_trim_older). */
#include "common/jsonx.h"
#include "records/redis_link.h"
#include "records/store_redis.h"

#include <stdlib.h>
#include <string.h>

/* ARGV: prefix, body, keys...: the seq given in each key, in order. */
struct redis_script rd_seq_append_lua = {
    "local P, out = ARGV[1], {}\n"
    "for i = 3, #ARGV do\n"
    "  local s = redis.call('INCR', P .. 'sh:' .. ARGV[i])\n"
    "  redis.call('XADD', P .. 's:' .. ARGV[i], '0-' .. s, 'b', ARGV[2])\n"
    "  out[#out + 1] = s\n"
    "end\n"
    "return out\n",
    ""};

/* ARGV: prefix, key, field, before, scan, upto: trims the key's stream
 * (store_seq_trim_older), reading its items where they are. */
struct redis_script rd_seq_trim_older_lua = {
    "local k = ARGV[1] .. 's:' .. ARGV[2]\n"
    "local field, before = ARGV[3], tonumber(ARGV[4])\n"
    "local upto = tonumber(ARGV[6])\n"
    "for _, e in ipairs(redis.call('XRANGE', k, '-', '+', 'COUNT', tonumber(ARGV[5]))) do\n"
    "  local ok, doc = pcall(cjson.decode, e[2][2])\n"
    "  local t = ok and type(doc) == 'table' and tonumber(doc[field]) or 0\n"
    "  if t >= before then break end\n"
    "  local s = tonumber(string.match(e[1], '^0%-(%d+)$'))\n"
    "  if s and s > upto then upto = s end\n"
    "end\n"
    "if upto > 0 then redis.call('XTRIM', k, 'MINID', '0-' .. (upto + 1)) end\n"
    "return upto\n",
    ""};

/* The append script's arguments: the prefix, body (borrowed until sent),
 * the keys. */
static void append_args(struct redis_store *r, struct redis_cmd *c, const char *body,
                        const char *const *keys, int n)
{
    rd_args_start(r, c);
    redis_cmd_str(c, body);
    for (int i = 0; i < n; i++)
        redis_cmd_str(c, keys[i]);
}

/* The n seqs the append script answered (rep may be NULL): a store code. */
static int reply_seqs(const redisReply *rep, int n, int64_t *seqs)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)n)
        return STORE_EIO;
    for (int i = 0; i < n; i++)
        seqs[i] = rd_reply_int(rep->element[i]);
    return STORE_OK;
}

static int seq_append(struct redis_store *r, const char *const *keys, int n, json_t *item,
                      int64_t *seqs_out)
{
    char *body = jx_dump(item);
    if (!body)
        return STORE_EIO;
    struct redis_cmd c;
    append_args(r, &c, body, keys, n);
    if (!seqs_out) { /* an audit line: nobody waits for its seq */
        int rc = rd_write_script(r, &rd_seq_append_lua, &c);
        free(body);
        return rc;
    }
    redisReply *rep = rd_script(r, &rd_seq_append_lua, &c);
    free(body);
    int rc = reply_seqs(rep, n, seqs_out);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

struct append_call {
    int n;
    store_seqs_cb cb;
    void *ud;
};

static void appended(redisReply *rep, void *ud)
{
    struct append_call *x = ud;
    int64_t *seqs = g_new0(int64_t, (gsize)x->n);
    int rc = reply_seqs(rep, x->n, seqs);
    x->cb(rc, rc == STORE_OK ? seqs : NULL, x->n, x->ud);
    g_free(seqs);
    g_free(x);
}

/* The append script by its body, as a deferred write with an answer; not
 * batching (no server loop), at once. */
int rd_seq_append_many_later(struct store *st, const char *const *keys, int n, json_t *item,
                             store_seqs_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    if (!r->batching) {
        int64_t *seqs = g_new0(int64_t, (gsize)n);
        int rc = seq_append(r, keys, n, item, seqs);
        cb(rc, rc == STORE_OK ? seqs : NULL, n, ud);
        g_free(seqs);
        return STORE_OK;
    }
    char *body = jx_dump(item);
    if (!body)
        return STORE_EIO;
    struct redis_cmd args, c;
    append_args(r, &args, body, keys, n);
    redis_cmd_init(&c);
    redis_cmd_script(&c, "EVAL", rd_seq_append_lua.body, &args);
    struct append_call *x = g_new(struct append_call, 1);
    *x = (struct append_call){n, cb, ud};
    int rc = redis_link_defer_write_call(r->link, &c, appended, x) == 0 ? STORE_OK : STORE_EIO;
    if (rc != STORE_OK)
        g_free(x);
    else
        rd_dirtied(r);
    redis_cmd_clear(&c);
    redis_cmd_clear(&args);
    free(body);
    return rc;
}

int rd_seq_append(struct store *st, const char *key, json_t *item, int64_t *seq_out)
{
    return seq_append(R(st), &key, 1, item, seq_out);
}

int rd_seq_append_many(struct store *st, const char *const *keys, int n, json_t *item,
                       int64_t *seqs_out)
{
    return seq_append(R(st), keys, n, item, seqs_out);
}

int rd_seq_last(struct store *st, const char *key, int64_t *seq_out)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_cmd_start(&c, "GET");
    rd_cmd_key(r, &c, "sh:", key);
    redisReply *rep = rd_run(r, &c);
    if (!rep)
        return STORE_EIO;
    *seq_out = rep->type == REDIS_REPLY_STRING ? rd_reply_int(rep) : 0;
    freeReplyObject(rep);
    return STORE_OK;
}

/* The seq of a stream entry id "0-SEQ". */
int64_t rd_entry_seq(const redisReply *id)
{
    const char *dash = id->type == REDIS_REPLY_STRING ? strchr(id->str, '-') : NULL;
    return dash ? g_ascii_strtoll(dash + 1, NULL, 10) : -1;
}

json_t *rd_entry_item(const redisReply *e, int64_t *seq)
{
    *seq = -1;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
        return NULL;
    *seq = rd_entry_seq(e->element[0]);
    const redisReply *b = rd_entry_field(e->element[1], "b");
    return b && b->type == REDIS_REPLY_STRING ? jx_load(b->str, b->len) : NULL;
}

/* The value of field name in a stream entry's field list, or NULL. */
const redisReply *rd_entry_field(const redisReply *fields, const char *name)
{
    if (fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1];
    return NULL;
}

int rd_seq_range(struct store *st, const char *key, int64_t after_seq, int limit, bool newest_first,
                 store_seq_cb cb, void *ud)
{
    struct redis_store *r = R(st);
    int got = 0, rc = STORE_OK;
    bool stop = false;
    /* oldest first: from (after, +]; newest first: from [+ down to (after */
    int64_t bound = newest_first ? INT64_MAX : after_seq;
    while (rc == STORE_OK && !stop) {
        int want = limit > 0 ? MIN(RD_PAGE, limit - got) : RD_PAGE;
        struct redis_cmd c;
        rd_cmd_start(&c, newest_first ? "XREVRANGE" : "XRANGE");
        rd_cmd_key(r, &c, "s:", key);
        char *lo = g_strdup_printf("(0-%" G_GINT64_FORMAT, (gint64)after_seq);
        char *hi = bound == INT64_MAX ? g_strdup("+")
                                      : g_strdup_printf("(0-%" G_GINT64_FORMAT, (gint64)bound);
        redis_cmd_str(&c, newest_first ? hi : lo);
        redis_cmd_str(&c, newest_first ? lo : "+");
        redis_cmd_str(&c, "COUNT");
        redis_cmd_i64(&c, want);
        redisReply *rep = rd_run(r, &c);
        g_free(lo);
        g_free(hi);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            rc = STORE_EIO;
            if (rep)
                freeReplyObject(rep);
            break;
        }
        for (size_t i = 0; i < rep->elements && !stop; i++) {
            int64_t seq = -1;
            json_t *item = rd_entry_item(rep->element[i], &seq);
            if (seq < 0)
                continue;
            bound = seq;
            if (!item)
                continue;
            got++;
            if (!cb(seq, item, ud))
                stop = true;
            json_decref(item);
        }
        if ((int)rep->elements < want || (limit > 0 && got >= limit))
            stop = true;
        if (!newest_first)
            after_seq = bound; /* the next page starts after the last entry */
        freeReplyObject(rep);
    }
    return rc;
}

int rd_seq_trim(struct store *st, const char *key, int64_t upto_seq)
{
    struct redis_store *r = R(st);
    if (upto_seq < 0)
        return STORE_OK;
    struct redis_cmd c;
    rd_cmd_start(&c, "XTRIM");
    rd_cmd_key(r, &c, "s:", key);
    redis_cmd_str(&c, "MINID");
    char *min = g_strdup_printf("0-%" G_GINT64_FORMAT, (gint64)upto_seq + 1);
    redis_cmd_str(&c, min);
    int rc = rd_write(r, &c);
    g_free(min);
    return rc;
}

int rd_seq_trim_older(struct store *st, const char *key, const char *field, int64_t before,
                      int scan, int64_t upto_seq)
{
    struct redis_store *r = R(st);
    struct redis_cmd c;
    rd_args_start(r, &c);
    redis_cmd_str(&c, key);
    redis_cmd_str(&c, field);
    redis_cmd_i64(&c, before);
    redis_cmd_i64(&c, scan);
    redis_cmd_i64(&c, upto_seq > 0 ? upto_seq : 0);
    return rd_write_script(r, &rd_seq_trim_older_lua, &c);
}
