/* Whose readings log is whose, in the Redis store several servers share.
 *
 * Each server appends the readings it accepts to a log of its own (the
 * stream tsl:o:OWNER), flushes them to chunks, and deletes the rows it
 * flushed: from its own log only, so that it never deletes what another
 * server has not flushed yet. OWNER names the server across its restarts
 * (server/main.c keeps it in the data directory), so that a server killed
 * with -9 finds its log again at start and replays it; its hash
 * tsup:OWNER holds, per series, the last row of that log whose points of
 * the series are in chunks (what replay skips).
 *
 * A server that does not come back leaves its log behind. Every server
 * holds a lease in the hash tsl:owners (OWNER -> "DEADLINE HOLDER", times
 * in ms of Redis's clock), renewed each time it calls
 * store_ts_log_adopt, about once a second; a log whose lease ran out is
 * claimed by the first server that looks (it becomes the holder, for one
 * lease), which reads it a page at a time, stores again in its own log
 * the points its owner had not flushed, and only then deletes the page.
 * Once the log is empty it goes, with the owner's hash and lease. If the
 * owner comes back meanwhile, its lease is its own again, the claim ends,
 * and both may hold some points twice: readers merge repeated points, so
 * nothing is lost and nothing shows twice. A log from before logs had
 * owners ("tsl", with the log_upto in each series' latest point) is
 * taken over the same way. */
#include "common/log.h"
#include "records/store_pack.h"
#include "records/store_redis.h"

#include <string.h>

#define LATEST_LEN 32
#define OWNER_MAX 64

/* ARGV: prefix, me, lease ms, "1" to look for a log to take over. Renews
 * my lease; returns an owner whose log is now mine to take over ("" for
 * the log without an owner), or nil. */
struct redis_script rd_ts_claim_lua = {
    "local P, me, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local H = P .. 'tsl:owners'\n"
    "redis.call('HSET', H, me, (now + lease) .. ' ' .. me)\n"
    "if ARGV[4] ~= '1' then return false end\n"
    "if redis.call('EXISTS', P .. 'tsl') == 1 and redis.call('HEXISTS', H, '') == 0 then\n"
    "  redis.call('HSET', H, '', '0 ')\n"
    "end\n"
    "local all = redis.call('HGETALL', H)\n"
    "for i = 1, #all, 2 do\n"
    "  local o, v = all[i], all[i + 1]\n"
    "  if o ~= me then\n"
    "    local d, holder = string.match(v, '^(%d+) (.*)$')\n"
    "    if d == nil or tonumber(d) < now or holder == me then\n"
    "      redis.call('HSET', H, o, (now + lease) .. ' ' .. me)\n"
    "      return o\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return false\n",
    ""};

/* ARGV: prefix, me, owner, its log's key, its hash or "". Forgets an
 * owner whose log is empty, if I still hold it. 1 if it went. */
struct redis_script rd_ts_forget_lua = {
    "local P, me, o = ARGV[1], ARGV[2], ARGV[3]\n"
    "local v = redis.call('HGET', P .. 'tsl:owners', o)\n"
    "if not v or string.match(v, '^%d+ (.*)$') ~= me then return 0 end\n"
    "if redis.call('XLEN', P .. ARGV[4]) > 0 then return 0 end\n"
    "redis.call('DEL', P .. ARGV[4])\n"
    "if ARGV[5] ~= '' then redis.call('DEL', P .. ARGV[5]) end\n"
    "redis.call('HDEL', P .. 'tsl:owners', o)\n"
    "return 1\n",
    ""};

const char *rd_ts_log_key(const struct redis_store *r)
{
    return r->log_key ? r->log_key : "tsl";
}

static bool owner_ok(const char *owner)
{
    size_t n = strlen(owner);
    if (n == 0 || n > OWNER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(owner[i]) && owner[i] != '-' && owner[i] != '_')
            return false;
    return true;
}

static int claim(struct redis_store *r, char **owner);

/* The last id the owner's log was given (kept by Redis through trims), 0
 * if it has none. */
static int last_id(struct redis_store *r, int64_t *out)
{
    struct redis_cmd c;
    rd_cmd_start(&c, "EXISTS");
    rd_cmd_key(r, &c, r->log_key, "");
    redisReply *rep = rd_run(r, &c);
    if (!rep)
        return STORE_EIO;
    bool exists = rd_reply_int(rep) == 1;
    freeReplyObject(rep);
    *out = 0;
    if (!exists)
        return STORE_OK;
    rd_cmd_start(&c, "XINFO");
    redis_cmd_str(&c, "STREAM");
    rd_cmd_key(r, &c, r->log_key, "");
    rep = rd_run(r, &c);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return STORE_EIO;
    }
    const redisReply *last = rd_entry_field(rep, "last-generated-id");
    int64_t id = last ? rd_entry_seq(last) : -1;
    freeReplyObject(rep);
    if (id < 0)
        return STORE_EIO;
    *out = id;
    return STORE_OK;
}

void rd_ts_log_name(struct redis_store *r, const char *owner)
{
    g_free(r->log_owner);
    g_free(r->log_key);
    g_free(r->upto_key);
    r->log_owner = g_strdup(owner);
    r->log_key = owner ? g_strconcat("tsl:o:", owner, NULL) : NULL;
    r->upto_key = owner ? g_strconcat("tsup:", owner, NULL) : NULL;
}

int rd_ts_log_own(struct store *st, const char *owner, int lease_s)
{
    struct redis_store *r = R(st);
    if (!owner || !owner_ok(owner) || lease_s < 1)
        return STORE_EINVAL;
    rd_ts_log_name(r, owner);
    r->lease_ms = (int64_t)lease_s * 1000;
    int rc = last_id(r, &r->log_last);
    if (rc == STORE_OK)
        rc = claim(r, NULL); /* held before the first row is appended */
    return rc;
}

/* {key, log_upto} blocks by key. */
static GHashTable *uptos_new(void)
{
    return g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
}

static void upto_set(GHashTable *h, int64_t key, int64_t upto)
{
    int64_t *u = g_new(int64_t, 2);
    u[0] = key;
    u[1] = upto;
    g_hash_table_replace(h, u, u);
}

int rd_hscan(struct redis_store *r, const char *name,
             int (*fn)(const redisReply *k, const redisReply *v, void *ud), void *ud)
{
    char cursor[32] = "0";
    int rc = STORE_OK, more = 1;
    do {
        struct redis_cmd c;
        rd_cmd_start(&c, "HSCAN");
        rd_cmd_key(r, &c, name, "");
        redis_cmd_str(&c, cursor);
        redis_cmd_str(&c, "COUNT");
        redis_cmd_i64(&c, RD_PAGE);
        redisReply *rep = rd_run(r, &c);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            if (rep)
                freeReplyObject(rep);
            return STORE_EIO;
        }
        g_strlcpy(cursor, rep->element[0]->str, sizeof(cursor));
        const redisReply *kv = rep->element[1];
        for (size_t i = 0; i + 1 < kv->elements && more > 0; i += 2)
            more = fn(kv->element[i], kv->element[i + 1], ud);
        freeReplyObject(rep);
        if (more < 0)
            rc = STORE_EIO;
    } while (more > 0 && strcmp(cursor, "0") != 0);
    return rc;
}

static int upto_field(const redisReply *k, const redisReply *v, void *h)
{
    upto_set(h, rd_reply_int(k), rd_reply_int(v));
    return 1;
}

/* The log_upto kept in each series' latest point (the log without an
 * owner's). */
static int latest_field(const redisReply *k, const redisReply *v, void *h)
{
    if (v->type != REDIS_REPLY_STRING || v->len != LATEST_LEN)
        return -1;
    upto_set(h, rd_reply_int(k), (int64_t)get_u64((const unsigned char *)v->str + 24));
    return 1;
}

GHashTable *rd_ts_uptos(struct redis_store *r, const char *hash)
{
    GHashTable *h = uptos_new();
    if (rd_hscan(r, hash, upto_field, h) != STORE_OK) {
        g_hash_table_destroy(h);
        return NULL;
    }
    return h;
}

/* The claim's command: renews the lease, and with look, looks for a log
 * to take over. */
static void claim_cmd(struct redis_store *r, struct redis_cmd *c, bool look)
{
    rd_args_start(r, c);
    redis_cmd_str(c, r->log_owner);
    redis_cmd_i64(c, r->lease_ms);
    redis_cmd_str(c, look ? "1" : "0");
}

static char *claimed_owner(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_STRING ? g_strndup(rep->str, rep->len) : NULL;
}

/* Renews the lease, waiting; with owner, *owner (g_free) an owner whose
 * log is mine to take over, or NULL. */
static int claim(struct redis_store *r, char **owner)
{
    struct redis_cmd c;
    claim_cmd(r, &c, owner != NULL);
    redisReply *rep = rd_script(r, &rd_ts_claim_lua, &c);
    if (!rep)
        return STORE_EIO;
    if (owner)
        *owner = claimed_owner(rep);
    freeReplyObject(rep);
    return STORE_OK;
}

/* The answer to a claim sent without waiting (inside a call of the link:
 * it does not use it). */
static void on_claimed(redisReply *rep, void *ud)
{
    struct redis_store *r = ud;
    r->claim_sent = false;
    if (!r->claimed)
        r->claimed = claimed_owner(rep);
}

/* The claim as a write of the open batch, its answer kept for the next
 * call (a node with nothing to take over never waits for it). */
static int claim_later(struct redis_store *r)
{
    if (r->claim_sent)
        return STORE_OK;
    struct redis_cmd args, c;
    claim_cmd(r, &args, true);
    redis_cmd_init(&c);
    redis_cmd_script(&c, "EVAL", rd_ts_claim_lua.body, &args);
    int rc = redis_link_defer_call(r->link, &c, on_claimed, r) == 0 ? STORE_OK : STORE_EIO;
    r->claim_sent = rc == STORE_OK;
    if (rc == STORE_OK)
        r->renewed_ms = g_get_monotonic_time() / 1000;
    redis_cmd_clear(&c);
    redis_cmd_clear(&args);
    return rc;
}

/* ARGV: prefix, the old log's key, the first id it keeps, my log's key,
 * the first and last ids this server gave its log for the page's rows
 * ("0" "0": none). Trims a page taken over from the old log, only if my
 * log got every one of those rows (their ids are consecutive): a row
 * whose append failed is read again with its page. 1 if trimmed. */
static const char trim_taken_lua[] =
    "local P = ARGV[1]\n"
    "local first, last = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "if first > 0 then\n"
    "  local got = redis.call('XRANGE', P .. ARGV[4], '0-' .. first, '0-' .. last)\n"
    "  if #got ~= last - first + 1 then return 0 end\n"
    "end\n"
    "redis.call('XTRIM', P .. ARGV[2], 'MINID', ARGV[3])\n"
    "return 1\n";

/* A row of a page read from the log being taken over. */
struct taken_row {
    int64_t id, seen;
    GArray *pts; /* struct store_ts_point */
};

static void taken_row_free(gpointer p)
{
    struct taken_row *w = p;
    g_array_free(w->pts, TRUE);
    g_free(w);
}

void rd_ts_adoption_end(struct redis_store *r)
{
    g_free(r->adopting);
    r->adopting = NULL;
    g_clear_pointer(&r->adopting_uptos, g_hash_table_destroy);
    g_clear_pointer(&r->adopt_rows, g_ptr_array_unref);
    r->adopt_cursor[0] = '\0';
    r->adopt_scanned = r->adopt_failed = r->adopt_renewing = false;
}

static bool legacy_of(const struct redis_store *r)
{
    return r->adopting && r->adopting[0] == '\0';
}

/* The old log's key and its owner's log_upto hash (NULL: the log without
 * an owner, whose log_upto is in each series' latest point). */
static char *old_log(const struct redis_store *r)
{
    return legacy_of(r) ? g_strdup("tsl") : g_strconcat("tsl:o:", r->adopting, NULL);
}

/* From inside a call of the link: a page of the old owner's log_upto. */
static void on_uptos(redisReply *rep, void *ud)
{
    struct redis_store *r = ud;
    r->adopt_out--;
    if (!r->adopting_uptos)
        return; /* ended meanwhile */
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY) {
        r->adopt_failed = true;
        return;
    }
    const redisReply *kv = rep->element[1];
    int (*fn)(const redisReply *, const redisReply *, void *) =
        legacy_of(r) ? latest_field : upto_field;
    for (size_t i = 0; i + 1 < kv->elements; i += 2)
        if (fn(kv->element[i], kv->element[i + 1], r->adopting_uptos) < 0)
            r->adopt_failed = true;
    g_strlcpy(r->adopt_cursor, rep->element[0]->str, sizeof(r->adopt_cursor));
    r->adopt_scanned = strcmp(r->adopt_cursor, "0") == 0;
}

/* From inside a call of the link: a page of the old log. */
static void on_page(redisReply *rep, void *ud)
{
    struct redis_store *r = ud;
    r->adopt_out--;
    if (!r->adopting)
        return;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        r->adopt_failed = true;
        return;
    }
    r->adopt_rows = g_ptr_array_new_with_free_func(taken_row_free);
    for (size_t i = 0; i < rep->elements; i++) {
        struct taken_row *w = g_new0(struct taken_row, 1);
        w->pts = g_array_new(FALSE, FALSE, sizeof(struct store_ts_point));
        g_ptr_array_add(r->adopt_rows, w);
        if (!rd_ts_log_row(rep->element[i], &w->id, &w->seen, w->pts))
            r->adopt_failed = true;
    }
}

static void on_cleared(redisReply *rep, void *ud)
{
    (void)ud;
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        log_warn("store", "a page taken over stays in the old readings log (read again)");
}

/* Sends c as a step whose answer cb reads into r (the next call takes it
 * from there); false if Redis cannot be reached. */
static bool step_sent(struct redis_store *r, struct redis_cmd *c, redis_call_cb cb)
{
    bool ok = redis_link_defer_call(r->link, c, cb, r) == 0;
    redis_cmd_clear(c);
    r->adopt_out += ok;
    return ok;
}

/* The next page of the old owner's log_upto. */
static bool send_uptos(struct redis_store *r)
{
    struct redis_cmd c;
    char *hash = legacy_of(r) ? g_strdup("tslatest") : g_strconcat("tsup:", r->adopting, NULL);
    rd_cmd_start(&c, "HSCAN");
    rd_cmd_key(r, &c, hash, "");
    redis_cmd_str(&c, r->adopt_cursor[0] ? r->adopt_cursor : "0");
    redis_cmd_str(&c, "COUNT");
    redis_cmd_i64(&c, RD_PAGE);
    g_free(hash);
    return step_sent(r, &c, on_uptos);
}

static bool send_page(struct redis_store *r, int max_rows)
{
    struct redis_cmd c;
    char *log = old_log(r);
    rd_cmd_start(&c, "XRANGE");
    rd_cmd_key(r, &c, log, "");
    redis_cmd_str(&c, "-");
    redis_cmd_str(&c, "+");
    redis_cmd_str(&c, "COUNT");
    redis_cmd_i64(&c, max_rows);
    g_free(log);
    return step_sent(r, &c, on_page);
}

/* The page in hand to cb (each row's points not in chunks, which cb
 * stores again in this server's log, a write of the open batch), then
 * the old rows' trim, sent after those writes and made only if they were
 * (trim_taken_lua). The number of rows. */
static int take_page(struct redis_store *r, store_ts_log_cb cb, void *ud, bool *ok)
{
    GPtrArray *rows = g_steal_pointer(&r->adopt_rows);
    int64_t last = -1, mine = r->log_last;
    *ok = true;
    for (guint i = 0; i < rows->len && *ok; i++) {
        struct taken_row *w = g_ptr_array_index(rows, i);
        guint kept = 0;
        for (guint k = 0; k < w->pts->len; k++) {
            const struct store_ts_point *x = &g_array_index(w->pts, struct store_ts_point, k);
            const int64_t *u = g_hash_table_lookup(r->adopting_uptos, &x->key);
            if (!u || w->id > u[1])
                g_array_index(w->pts, struct store_ts_point, kept++) = *x;
        }
        *ok = kept == 0 || cb(w->id, w->seen, (const struct store_ts_point *)(void *)w->pts->data,
                              (int)kept, ud);
        last = *ok ? w->id : last;
    }
    int n = (int)rows->len;
    g_ptr_array_unref(rows);
    if (last < 0)
        return n;
    char *log = old_log(r);
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    redis_cmd_str(&args, log);
    char *min = g_strdup_printf("0-%" G_GINT64_FORMAT, (gint64)last + 1);
    redis_cmd_str(&args, min);
    redis_cmd_str(&args, r->log_key);
    redis_cmd_i64(&args, r->log_last > mine ? mine + 1 : 0); /* the page's rows, given in a row */
    redis_cmd_i64(&args, r->log_last > mine ? r->log_last : 0);
    redis_cmd_init(&c);
    redis_cmd_script(&c, "EVAL", trim_taken_lua, &args);
    if (redis_link_defer_call(r->link, &c, on_cleared, NULL) != 0)
        *ok = false;
    redis_cmd_clear(&c);
    redis_cmd_clear(&args);
    g_free(min);
    g_free(log);
    return n;
}

/* The old owner goes with its log, once that is empty, if this server
 * still holds it (rd_ts_forget_lua), without waiting. */
static void forget_owner(struct redis_store *r)
{
    char *log = old_log(r);
    char *hash = legacy_of(r) ? NULL : g_strconcat("tsup:", r->adopting, NULL);
    struct redis_cmd args, c;
    rd_args_start(r, &args);
    redis_cmd_str(&args, r->log_owner);
    redis_cmd_str(&args, r->adopting);
    redis_cmd_str(&args, log);
    redis_cmd_str(&args, hash ? hash : "");
    redis_cmd_init(&c);
    redis_cmd_script(&c, "EVAL", rd_ts_forget_lua.body, &args);
    if (redis_link_defer_call(r->link, &c, on_cleared, NULL) != 0)
        log_warn("store", "a readings log taken over stays until its next claim");
    redis_cmd_clear(&c);
    redis_cmd_clear(&args);
    g_free(hash);
    g_free(log);
}

static void on_renewed(redisReply *rep, void *ud)
{
    (void)rep;
    (void)ud;
}

/* While a takeover goes on, this server's own lease is renewed about
 * once a second as when it is idle (a long read of the old owner's
 * log_upto takes many steps and sends no claim). */
static void renew_own(struct redis_store *r)
{
    int64_t now = g_get_monotonic_time() / 1000;
    if (now - r->renewed_ms < 1000)
        return;
    struct redis_cmd args, c;
    claim_cmd(r, &args, false);
    redis_cmd_init(&c);
    redis_cmd_script(&c, "EVAL", rd_ts_claim_lua.body, &args);
    if (redis_link_defer_call(r->link, &c, on_renewed, NULL) == 0)
        r->renewed_ms = now;
    redis_cmd_clear(&c);
    redis_cmd_clear(&args);
}

/* Each call takes one step and never waits: the claim (renewing this
 * server's lease and looking for a log to take over), the pages of the
 * old owner's log_upto, then page after page of its log, each claimed
 * anew; a step's answer is taken by the next call. */
int rd_ts_log_adopt(struct store *st, int max_rows, store_ts_log_cb cb, void *ud, bool *more)
{
    struct redis_store *r = R(st);
    *more = false;
    if (!r->log_owner)
        return STORE_OK;
    if (r->adopt_out > 0 || r->claim_sent)
        redis_link_poll(r->link); /* the answers in, if any: never waits */
    if (r->adopting)
        renew_own(r);
    if (r->adopt_out > 0 || (r->claim_sent && r->adopting)) {
        *more = r->adopting != NULL;
        return STORE_OK; /* an answer is awaited */
    }
    if (r->adopt_failed) {
        rd_ts_adoption_end(r);
        return STORE_EIO;
    }
    if (!r->adopting || r->adopt_renewing) {
        if (r->claim_sent)
            return STORE_OK;
        char *owner = r->claimed;
        r->claimed = NULL;
        if (!owner) {
            bool went = r->adopt_renewing; /* its owner came back, or it went */
            rd_ts_adoption_end(r);
            return went ? STORE_OK : claim_later(r);
        }
        r->adopt_renewing = false;
        if (!r->adopting || strcmp(r->adopting, owner) != 0) {
            rd_ts_adoption_end(r);
            r->adopting = owner;
            r->adopting_uptos = uptos_new();
            log_warn("store", "taking over the readings log of %s, whose lease ran out",
                     owner[0] ? owner : "the servers before logs had owners");
        } else {
            g_free(owner);
        }
    }
    *more = true;
    if (!r->adopt_scanned)
        return send_uptos(r) ? STORE_OK : STORE_EIO;
    if (!r->adopt_rows)
        return send_page(r, max_rows) ? STORE_OK : STORE_EIO;
    bool ok;
    int rows = take_page(r, cb, ud, &ok);
    if (!ok) {
        rd_ts_adoption_end(r);
        return STORE_EIO;
    }
    if (rows < max_rows) { /* the last page: the owner goes once its log is empty */
        forget_owner(r);
        rd_ts_adoption_end(r);
        *more = false;
        return STORE_OK;
    }
    r->adopt_renewing = true; /* held a lease longer, and the next page */
    return claim_later(r);
}
