/* The push gateway (see gateway.h): token registry, the stored deadline per
 * push that still may need posting, and the post/retry state machine.
 *
 * A push's way through here:
 *   stored      -> deadline gw/ID at now (user offline) or now + ack timeout
 *   due         -> acknowledged by some device? done. expired? "expired".
 *                  no registered token? "no_tokens". Else POST (the deadline
 *                  moves past the POST's timeout, so a crash retries it).
 *   2xx         -> "delivered"
 *   other / none-> "retrying", deadline at now + backoff, until
 *                  max_attempts: "failed".
 * Backoff: min(retry_max, retry_base * 2^(attempt-1)), of which a random
 * half is jitter ("equal jitter"), so retries of many pushes spread out. */
#include "push/gateway.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/turns.h"
#include "push/inbox.h"
#include "push/presence.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define TOKENS "push_tokens"
#define STATES "push_gateway"
#define DEADLINE_PREFIX "gw/"
#define TICK_SCAN 256 /* due deadlines looked at per tick */
#define CLAIM_MARGIN_MS 5000

static struct store *store;
static struct gateway_config cfg;
static char *url;
static gateway_post_fn post_fn;
static int inflight;
static guint kick_source;

static const char *const platforms[] = {"apns", "fcm",   "huawei", "honor", "xiaomi", "oppo",
                                        "vivo", "meizu", "jpush",  "getui", "web"};

bool gateway_platform_valid(const char *platform)
{
    for (size_t i = 0; platform && i < G_N_ELEMENTS(platforms); i++)
        if (strcmp(platform, platforms[i]) == 0)
            return true;
    return false;
}

static bool enabled(void)
{
    return url && *url && post_fn;
}

/* ------------------------------------------------------------ tokens */

static char *token_doc_id(const char *user_id, const char *device_id)
{
    return g_strconcat(user_id, "/", device_id, NULL);
}

static gint by_updated(gconstpointer a, gconstpointer b)
{
    int64_t x = jx_int(*(json_t *const *)a, "updated_at", 0);
    int64_t y = jx_int(*(json_t *const *)b, "updated_at", 0);
    return x < y ? -1 : x > y;
}

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

/* The token operations of a user (registrations, unregistrations) are
 * made one after another, each reading once the one before sent its
 * writes, so that they are done in the order asked. */
static struct turns *token_ops;

/* False (op not taken) when TURNS_MAX operations of the user wait. */
static bool token_op_add(const char *user_id, void (*start)(void *op), void *op)
{
    if (!token_ops)
        token_ops = turns_new();
    return turns_add(token_ops, user_id, start, op);
}

static void token_op_done(const char *user_id)
{
    if (token_ops)
        turns_done(token_ops, user_id);
}

/* A registration under way: its two reads (who holds the token, the
 * user's other devices), then its writes. */
struct reg {
    char *id, *user_id, *device_id, *platform, *token;
    GPtrArray *others; /* ids of documents to remove */
    GPtrArray *mine;   /* the user's other documents (json_t*, new refs) */
    int out, rc;       /* reads not answered, the first failure */
    gateway_done_cb done;
    void *ud;
};

static void reg_free(struct reg *g)
{
    g_free(g->id);
    g_free(g->user_id);
    g_free(g->device_id);
    g_free(g->platform);
    g_free(g->token);
    g_ptr_array_free(g->others, TRUE);
    g_ptr_array_free(g->mine, TRUE);
    g_free(g);
}

/* Both reads in: the token taken from whoever held it before, the user's
 * oldest devices past GATEWAY_DEVICES_MAX dropped, the token stored. */
static void reg_write(struct reg *g)
{
    int rc = g->rc;
    if (rc == STORE_OK && g->mine->len >= GATEWAY_DEVICES_MAX) {
        g_ptr_array_sort(g->mine, by_updated);
        for (guint i = 0; i + GATEWAY_DEVICES_MAX - 1 < g->mine->len; i++) {
            json_t *old = g_ptr_array_index(g->mine, i);
            g_ptr_array_add(g->others, token_doc_id(jx_str(old, "user"), jx_str(old, "device_id")));
        }
    }
    for (guint i = 0; rc == STORE_OK && i < g->others->len; i++) {
        rc = store_doc_remove(store, TOKENS, g_ptr_array_index(g->others, i));
    }
    if (rc == STORE_OK) {
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:I}", "user", g->user_id, "device_id",
                                g->device_id, "platform", g->platform, "token", g->token,
                                "updated_at", (json_int_t)clock_now_ms());
        rc = store_doc_put(store, TOKENS, g->id, doc, false);
        json_decref(doc);
    }
    if (rc == STORE_OK)
        log_info("gateway", "token registered user=%s device=%s platform=%s (%u replaced)",
                 g->user_id, g->device_id, g->platform, g->others->len);
    g->done(rc, g->ud);
    char *user = g_strdup(g->user_id);
    reg_free(g);
    token_op_done(user);
    g_free(user);
}

static void reg_answered(struct reg *g, int rc)
{
    if (rc != STORE_OK && g->rc == STORE_OK)
        g->rc = rc;
    if (--g->out > 0)
        return;
    if (!store) /* shut down meanwhile: nothing written */
        g->rc = STORE_EIO;
    reg_write(g);
}

static void on_token_holders(int rc, const struct store_docs *d, void *ud)
{
    struct reg *g = ud;
    for (int i = 0; rc == STORE_OK && i < d->n; i++)
        if (strcmp(d->ids[i], g->id) != 0)
            g_ptr_array_add(g->others, g_strdup(d->ids[i]));
    reg_answered(g, rc);
}

static void on_users_tokens(int rc, const struct store_docs *d, void *ud)
{
    struct reg *g = ud;
    for (int i = 0; rc == STORE_OK && i < d->n; i++)
        if (d->docs[i] && strcmp(d->ids[i], g->id) != 0)
            g_ptr_array_add(g->mine, json_incref(d->docs[i]));
    reg_answered(g, rc);
}

/* Read limits: a token is held by one device, a user has at most
 * GATEWAY_DEVICES_MAX; more are left over from before and read next time. */
#define REG_READ_MAX 1000

/* Sends a registration's two reads. */
static void reg_start(void *op)
{
    struct reg *g = op;
    g->out = 2;
    /* A token belongs to one installation: whoever held it before loses it
     * (a phone that changed hands must not get the old user's alarms). */
    int rc = store_index_find_later(store, TOKENS, "token", g->token, false, true, REG_READ_MAX,
                                    on_token_holders, g);
    if (rc != STORE_OK)
        g->out--; /* not sent: the registration fails */
    int rc2 = store_index_find_later(store, TOKENS, "user", g->user_id, false, false, REG_READ_MAX,
                                     on_users_tokens, g);
    if (rc2 != STORE_OK) /* not sent either */
        reg_answered(g, rc2);
    else if (rc != STORE_OK && g->rc == STORE_OK)
        g->rc = rc;
}

int gateway_register(const char *user_id, const char *device_id, const char *platform,
                     const char *token, gateway_done_cb done, void *ud)
{
    if (!user_id || !device_id || !*device_id || strlen(device_id) > INBOX_DEVICE_MAX ||
        !gateway_platform_valid(platform) || !token || !*token ||
        strlen(token) > GATEWAY_TOKEN_MAX || !printable_ascii(token))
        return STORE_EINVAL;
    struct reg *g = g_new0(struct reg, 1);
    g->id = token_doc_id(user_id, device_id);
    g->user_id = g_strdup(user_id);
    g->device_id = g_strdup(device_id);
    g->platform = g_strdup(platform);
    g->token = g_strdup(token);
    g->others = g_ptr_array_new_with_free_func(g_free);
    g->mine = g_ptr_array_new_with_free_func((GDestroyNotify)json_decref);
    g->done = done;
    g->ud = ud;
    if (token_op_add(user_id, reg_start, g))
        return STORE_OK;
    reg_free(g);
    return GATEWAY_BUSY; /* too many waiting: the store is that slow */
}

/* An unregistration: the token's record read first (behind the reads of
 * a registration sent before it), then deleted. */
struct unreg {
    char *id, *user_id, *device_id;
    gateway_done_cb done;
    void *ud;
};

static void unreg_free(struct unreg *u)
{
    g_free(u->id);
    g_free(u->user_id);
    g_free(u->device_id);
    g_free(u);
}

static void on_unreg_read(int rc, const struct store_docs *d, void *ud)
{
    struct unreg *u = ud;
    if (rc == STORE_OK && !store)
        rc = STORE_EIO;
    if (rc == STORE_OK && (d->n != 1 || !d->docs[0]))
        rc = STORE_ENOTFOUND;
    if (rc == STORE_OK)
        rc = store_doc_remove(store, TOKENS, u->id);
    if (rc == STORE_OK)
        log_info("gateway", "token removed user=%s device=%s", u->user_id, u->device_id);
    u->done(rc, u->ud);
    char *user = g_strdup(u->user_id);
    unreg_free(u);
    token_op_done(user);
    g_free(user);
}

static void unreg_start(void *op)
{
    struct unreg *u = op;
    const char *ids[] = {u->id};
    if (store_docs_get_later(store, TOKENS, ids, 1, on_unreg_read, u) != STORE_OK) {
        struct store_docs none = {0};
        on_unreg_read(STORE_EIO, &none, u);
    }
}

int gateway_unregister(const char *user_id, const char *device_id, gateway_done_cb done, void *ud)
{
    struct unreg *u = g_new(struct unreg, 1);
    *u = (struct unreg){token_doc_id(user_id, device_id), g_strdup(user_id), g_strdup(device_id),
                        done, ud};
    if (token_op_add(user_id, unreg_start, u))
        return STORE_OK;
    unreg_free(u);
    return GATEWAY_BUSY; /* too many waiting: the store is that slow */
}

static bool collect_device(const char *id, json_t *doc, void *ud)
{
    (void)id;
    json_array_append_new(ud, json_pack("{s:s?, s:s?, s:s?}", "device_id", jx_str(doc, "device_id"),
                                        "platform", jx_str(doc, "platform"), "token",
                                        jx_str(doc, "token")));
    return true;
}

/* ------------------------------------------------------------ state */

json_t *gateway_state(const char *push_id)
{
    json_t *doc = NULL;
    if (store_doc_get(store, STATES, push_id, &doc) != STORE_OK)
        return NULL;
    json_object_del(doc, "user");
    json_object_del(doc, "seq");
    return doc;
}

/* Records the state of a push; fields (stolen, may be NULL) are merged. */
static void set_state(const char *push_id, const char *user_id, int64_t seq, const char *state,
                      int attempts, json_t *fields)
{
    json_t *doc =
        json_pack("{s:s, s:I, s:s, s:i, s:I}", "user", user_id, "seq", (json_int_t)seq, "state",
                  state, "attempts", attempts, "updated_at", (json_int_t)clock_now_ms());
    if (fields) {
        json_object_update(doc, fields);
        json_decref(fields);
    }
    if (store_doc_put(store, STATES, push_id, doc, false) != STORE_OK)
        log_warn("gateway", "push=%s cannot record state %s", push_id, state);
    json_decref(doc);
}

static int stored_attempts(const char *push_id)
{
    json_t *doc = NULL;
    if (store_doc_get(store, STATES, push_id, &doc) != STORE_OK)
        return 0;
    int n = (int)jx_int(doc, "attempts", 0);
    json_decref(doc);
    return n;
}

static char *deadline_id(const char *push_id)
{
    return g_strconcat(DEADLINE_PREFIX, push_id, NULL);
}

static void finish(const char *push_id)
{
    char *did = deadline_id(push_id);
    if (store_deadline_delete(store, did) != STORE_OK)
        log_warn("gateway", "push=%s cannot delete its deadline", push_id);
    g_free(did);
}

static void reschedule(const char *push_id, const char *user_id, int64_t seq, int64_t due)
{
    char *did = deadline_id(push_id);
    json_t *p = json_pack("{s:s, s:I}", "user", user_id, "seq", (json_int_t)seq);
    if (store_deadline_set(store, did, due, p) != STORE_OK)
        log_warn("gateway", "push=%s cannot store its next deadline", push_id);
    json_decref(p);
    g_free(did);
}

/* The delay before retry number attempt + 1, with equal jitter. */
static int64_t backoff_ms(int attempt)
{
    int64_t d = cfg.retry_base_ms;
    for (int i = 1; i < attempt && d < cfg.retry_max_ms; i++)
        d *= 2;
    if (d > cfg.retry_max_ms)
        d = cfg.retry_max_ms;
    int64_t half = d / 2;
    return half + (half > 0 ? g_random_int_range(0, (gint32)MIN(half, G_MAXINT32 - 1) + 1) : 0);
}

/* ------------------------------------------------------------ posting */

struct post_ctx {
    char *push_id;
    char *user_id;
    int64_t seq;
    int attempt;
};

static void post_done(int status, const char *error, void *ctx)
{
    struct post_ctx *p = ctx;
    inflight--;
    if (status >= 200 && status < 300) {
        set_state(p->push_id, p->user_id, p->seq, "delivered", p->attempt,
                  json_pack("{s:i}", "last_status", status));
        finish(p->push_id);
        log_info("gateway", "push=%s delivered to the gateway (attempt %d, status %d)", p->push_id,
                 p->attempt, status);
    } else if (p->attempt >= cfg.max_attempts) {
        set_state(p->push_id, p->user_id, p->seq, "failed", p->attempt,
                  json_pack("{s:i, s:s}", "last_status", status, "last_error",
                            error ? error : "http status"));
        finish(p->push_id);
        log_warn("gateway", "push=%s given up after %d attempts (status %d%s%s)", p->push_id,
                 p->attempt, status, error ? ", " : "", error ? error : "");
    } else {
        int64_t next = clock_now_ms() + backoff_ms(p->attempt);
        set_state(p->push_id, p->user_id, p->seq, "retrying", p->attempt,
                  json_pack("{s:i, s:s, s:I}", "last_status", status, "last_error",
                            error ? error : "http status", "next_at", (json_int_t)next));
        reschedule(p->push_id, p->user_id, p->seq, next);
        log_info("gateway",
                 "push=%s attempt %d failed (status %d%s%s), retry in %" G_GINT64_FORMAT " ms",
                 p->push_id, p->attempt, status, error ? ", " : "", error ? error : "",
                 next - clock_now_ms());
    }
    g_free(p->push_id);
    g_free(p->user_id);
    g_free(p);
    if (store)
        gateway_tick(); /* a slot is free */
}

struct item_read {
    int64_t seq;
    json_t *item;
};

static bool read_item(int64_t seq, json_t *item, void *ud)
{
    struct item_read *r = ud;
    if (seq == r->seq)
        r->item = json_incref(item);
    return false;
}

/* What a due push is decided on: the user's acknowledged position, the
 * push (NULL: trimmed from the inbox), its attempts so far, the user's
 * devices with push tokens. */
struct facts {
    char *push_id, *user_id;
    int64_t seq;
    int rc; /* the first read that failed, else STORE_OK */
    int64_t acked;
    json_t *item;
    int attempts;
    json_t *devices;
};

static void facts_free(struct facts *f)
{
    g_free(f->push_id);
    g_free(f->user_id);
    json_decref(f->item);
    json_decref(f->devices);
    g_free(f);
}

/* Settles a due push, or starts its POST. True if a POST started. */
static bool decide(struct facts *f)
{
    const char *push_id = f->push_id, *user_id = f->user_id;
    int64_t seq = f->seq;
    int attempts = f->attempts;
    if (f->rc != STORE_OK)
        return false; /* store trouble: try again when it comes due again */
    if (f->acked >= seq) {
        if (attempts > 0)
            set_state(push_id, user_id, seq, "acked", attempts, NULL);
        finish(push_id);
        return false;
    }
    if (!f->item) { /* trimmed from the inbox meanwhile */
        finish(push_id);
        return false;
    }
    if (jx_int(f->item, "expires_at", 0) <= clock_now_ms()) {
        set_state(push_id, user_id, seq, "expired", attempts, NULL);
        finish(push_id);
        return false;
    }
    if (json_array_size(f->devices) == 0) {
        set_state(push_id, user_id, seq, "no_tokens", attempts, NULL);
        finish(push_id);
        log_info("gateway", "push=%s user=%s has no registered push token", push_id, user_id);
        return false;
    }
    struct post_ctx *p = g_new0(struct post_ctx, 1);
    p->push_id = g_strdup(push_id);
    p->user_id = g_strdup(user_id);
    p->seq = seq;
    p->attempt = attempts + 1;
    json_t *item = f->item;
    json_t *body = json_pack(
        "{s:s, s:s, s:I, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O, s:i}", "push_id", push_id, "user",
        user_id, "seq", (json_int_t)seq, "kind", json_object_get(item, "kind"), "priority",
        json_object_get(item, "priority"), "title", json_object_get(item, "title"), "body",
        json_object_get(item, "body"), "created_at", json_object_get(item, "created_at"),
        "expires_at", json_object_get(item, "expires_at"), "devices", f->devices, "attempt",
        p->attempt);
    char *text = jx_dump(body);
    json_decref(body);
    /* Past the POST's own timeout: if the process dies meanwhile, the push
     * comes due again after a restart and is posted again. */
    reschedule(push_id, user_id, seq, clock_now_ms() + cfg.timeout_ms + 1000);
    inflight++;
    log_debug("gateway", "push=%s posting, attempt %d", push_id, p->attempt);
    post_fn(url, text, cfg.timeout_ms, post_done, p);
    free(text);
    return true;
}

static struct facts *facts_new(const char *push_id, const char *user_id, int64_t seq)
{
    struct facts *f = g_new0(struct facts, 1);
    f->push_id = g_strdup(push_id);
    f->user_id = g_strdup(user_id);
    f->seq = seq;
    f->devices = json_array();
    return f;
}

/* Handles one due push, its facts read at once. True if a POST started. */
static bool handle_due(const char *push_id, const char *user_id, int64_t seq)
{
    struct facts *f = facts_new(push_id, user_id, seq);
    f->rc = inbox_acked_any(user_id, &f->acked);
    if (f->rc == STORE_OK && f->acked < seq) {
        char *key = g_strconcat("inbox/", user_id, NULL);
        struct item_read r = {seq, NULL};
        f->rc = store_seq_range(store, key, seq - 1, 1, false, read_item, &r);
        g_free(key);
        f->item = r.item;
    }
    f->attempts = stored_attempts(push_id);
    if (f->rc == STORE_OK && f->item)
        f->rc = store_index_find(store, TOKENS, "user", user_id, false, collect_device, f->devices);
    bool posted = decide(f);
    facts_free(f);
    return posted;
}

/* ---- the same with the facts read without waiting (Redis) ---- */

#define TOKENS_MAX 64
static int reading; /* due pushes whose facts are being read */

struct facts_read {
    struct facts *f;
    int waiting; /* reads not answered yet */
};

static void fact_in(struct facts_read *x, int rc)
{
    if (rc != STORE_OK && x->f->rc == STORE_OK)
        x->f->rc = rc;
    if (--x->waiting > 0)
        return;
    reading--;
    if (store) /* else answered while the server stops */
        decide(x->f);
    facts_free(x->f);
    g_free(x);
    if (store)
        gateway_tick(); /* a slot is free */
}

static void on_acked(int rc, const struct store_docs *d, void *ud)
{
    struct facts_read *x = ud;
    if (rc == STORE_OK && d->n == 1 && json_is_string(d->docs[0]))
        x->f->acked = g_ascii_strtoll(json_string_value(d->docs[0]), NULL, 10);
    fact_in(x, rc);
}

static void on_item(int rc, const struct store_docs *d, void *ud)
{
    struct facts_read *x = ud;
    if (rc == STORE_OK && d->n >= 1 && g_ascii_strtoll(d->ids[0], NULL, 10) == x->f->seq)
        x->f->item = json_incref(d->docs[0]);
    fact_in(x, rc);
}

static void on_attempts(int rc, const struct store_docs *d, void *ud)
{
    struct facts_read *x = ud;
    if (rc == STORE_OK && d->n == 1 && d->docs[0])
        x->f->attempts = (int)jx_int(d->docs[0], "attempts", 0);
    fact_in(x, STORE_OK); /* as stored_attempts: none read, none made */
}

static void on_tokens(int rc, const struct store_docs *d, void *ud)
{
    struct facts_read *x = ud;
    for (int i = 0; rc == STORE_OK && i < d->n; i++)
        if (d->docs[i])
            collect_device(d->ids[i], d->docs[i], x->f->devices);
    fact_in(x, rc);
}

/* Sends the reads of a due push's facts at once; decides when all are in. */
static void handle_due_later(const char *push_id, const char *user_id, int64_t seq)
{
    struct facts_read *x = g_new0(struct facts_read, 1);
    x->f = facts_new(push_id, user_id, seq);
    x->waiting = 5; /* the four reads, and this function's own hold */
    reading++;
    char *ack = inbox_ackmax_key(user_id), *inbox = g_strconcat("inbox/", user_id, NULL);
    const char *keys[] = {ack}, *ids[] = {push_id};
    int rcs[4] = {
        store_kv_get_later(store, keys, 1, on_acked, x),
        store_seq_range_later(store, inbox, seq - 1, 1, on_item, x),
        store_docs_get_later(store, STATES, ids, 1, on_attempts, x),
        store_index_find_later(store, TOKENS, "user", user_id, false, false, TOKENS_MAX, on_tokens,
                               x),
    };
    g_free(ack);
    g_free(inbox);
    for (int i = 0; i < 4; i++)
        if (rcs[i] != STORE_OK) /* not sent: never answered */
            fact_in(x, rcs[i]);
    fact_in(x, STORE_OK);
}

struct due_entry {
    char *push_id;
    char *user_id;
    int64_t seq;
    int64_t due_ms;
};

static bool collect_due(const char *id, int64_t due_ms, json_t *payload, void *ud)
{
    if (!g_str_has_prefix(id, DEADLINE_PREFIX))
        return true;
    const char *user_id = jx_str(payload, "user");
    int64_t seq = jx_int(payload, "seq", 0);
    if (!user_id || seq <= 0)
        return true;
    struct due_entry *e = g_new0(struct due_entry, 1);
    e->push_id = g_strdup(id + strlen(DEADLINE_PREFIX));
    e->user_id = g_strdup(user_id);
    e->seq = seq;
    e->due_ms = due_ms;
    g_ptr_array_add(ud, e);
    return true;
}

static void due_entry_free(gpointer p)
{
    struct due_entry *e = p;
    g_free(e->push_id);
    g_free(e->user_id);
    g_free(e);
}

/* Scans the deadlines due and handles each one this node claims. */
static void scan(void)
{
    if (!enabled() || inflight + reading >= cfg.max_inflight)
        return;
    GPtrArray *due = g_ptr_array_new_with_free_func(due_entry_free);
    int64_t now = clock_now_ms();
    if (store_deadline_due(store, now, TICK_SCAN, collect_due, due) == STORE_OK)
        for (guint i = 0; i < due->len && inflight + reading < cfg.max_inflight; i++) {
            struct due_entry *e = g_ptr_array_index(due, i);
            /* Several nodes scan the same deadlines: the one that moves it
             * to its lease (a POST's time and some) handles it; if that
             * node dies, the deadline comes back when the lease ends. */
            char *did = deadline_id(e->push_id);
            int rc = store_deadline_claim(store, did, e->due_ms,
                                          now + cfg.timeout_ms + CLAIM_MARGIN_MS);
            g_free(did);
            if (rc == STORE_OK)
                handle_due(e->push_id, e->user_id, e->seq);
        }
    g_ptr_array_free(due, TRUE);
}

static bool taking; /* a take of due deadlines sent, not answered yet */

static void on_taken(int rc, const struct store_docs *d, void *ud)
{
    (void)ud;
    taking = false;
    for (int i = 0; rc == STORE_OK && store && i < d->n; i++) {
        const json_t *payload = json_object_get(d->docs[i], "payload");
        const char *user_id = jx_str(payload, "user");
        int64_t seq = jx_int(payload, "seq", 0);
        if (user_id && seq > 0 && g_str_has_prefix(d->ids[i], DEADLINE_PREFIX))
            handle_due_later(d->ids[i] + strlen(DEADLINE_PREFIX), user_id, seq);
    }
}

/* Where the store's reads travel (Redis), each tick takes the due pushes
 * for this node in one script sent without waiting (each taken once
 * among the nodes), and reads each one's facts without waiting: the
 * loop never waits for the gateway's work. */
void gateway_tick(void)
{
    if (!enabled() || inflight + reading >= cfg.max_inflight)
        return;
    if (!store_reads_later(store)) {
        scan();
        return;
    }
    if (taking)
        return;
    int64_t now = clock_now_ms();
    taking = store_deadline_take_due_later(
                 store, DEADLINE_PREFIX, now, MIN(TICK_SCAN, cfg.max_inflight - inflight - reading),
                 now + cfg.timeout_ms + CLAIM_MARGIN_MS, on_taken, NULL) == STORE_OK;
}

static gboolean kick(gpointer data)
{
    (void)data;
    kick_source = 0;
    gateway_tick();
    return G_SOURCE_REMOVE;
}

/* Stores the deadlines of n pushes: at once for a user with no connected
 * device, after the ack timeout otherwise. */
static void set_deadlines(const char *const *user_ids, const int64_t *seqs, int n)
{
    int64_t now = clock_now_ms();
    char **ids = g_new0(char *, (gsize)n);
    int64_t *dues = g_new0(int64_t, (gsize)n);
    json_t **payloads = g_new0(json_t *, (gsize)n);
    bool now_due = false;
    for (int i = 0; i < n; i++) {
        char *pid = inbox_push_id(user_ids[i], seqs[i]);
        ids[i] = deadline_id(pid);
        g_free(pid);
        int known = presence_online_known(user_ids[i]);
        bool online = known < 0 ? presence_online(user_ids[i]) : known > 0; /* rare: read */
        dues[i] = online ? now + cfg.ack_timeout_ms : now;
        now_due |= !online;
        payloads[i] = json_pack("{s:s, s:I}", "user", user_ids[i], "seq", (json_int_t)seqs[i]);
    }
    if (store_deadline_set_many(store, (const char *const *)ids, n, dues, payloads) != STORE_OK)
        log_error("gateway", "cannot store gateway deadlines for %d push(es)", n);
    else if (now_due && !kick_source)
        kick_source = g_idle_add(kick, NULL);
    for (int i = 0; i < n; i++) {
        g_free(ids[i]);
        json_decref(payloads[i]);
    }
    g_free(ids);
    g_free(dues);
    g_free(payloads);
}

/* Pushes whose users' devices on other nodes are being read. */
struct pushed {
    GPtrArray *users; /* char* */
    GArray *seqs;     /* int64_t */
};

static void on_presence_read(void *ud)
{
    struct pushed *p = ud;
    if (store) /* else shut down meanwhile */
        set_deadlines((const char *const *)p->users->pdata, (const int64_t *)(void *)p->seqs->data,
                      (int)p->users->len);
    g_ptr_array_free(p->users, TRUE);
    g_array_free(p->seqs, TRUE);
    g_free(p);
}

/* Inbox observer: every stored push gets a deadline. Whether its user is
 * online is known here for users with a device on this node, or whose
 * devices elsewhere were read lately; the others' are read first, without
 * waiting (the deadlines are stored once they are in). */
static void on_pushed(const char *const *user_ids, const int64_t *seqs, int n, json_t *item,
                      void *ud)
{
    (void)item;
    (void)ud;
    if (!enabled() || n <= 0)
        return;
    GPtrArray *unknown = g_ptr_array_new();
    for (int i = 0; i < n; i++)
        if (presence_online_known(user_ids[i]) < 0)
            g_ptr_array_add(unknown, (gpointer)user_ids[i]);
    struct pushed *p = NULL;
    if (unknown->len) {
        p = g_new(struct pushed, 1);
        p->users = g_ptr_array_new_full((guint)n, g_free);
        p->seqs = g_array_sized_new(FALSE, FALSE, sizeof(int64_t), (guint)n);
        for (int i = 0; i < n; i++)
            g_ptr_array_add(p->users, g_strdup(user_ids[i]));
        g_array_append_vals(p->seqs, seqs, (guint)n);
        if (!presence_prefetch_later((const char *const *)unknown->pdata, (int)unknown->len,
                                     on_presence_read, p)) {
            g_ptr_array_free(p->users, TRUE);
            g_array_free(p->seqs, TRUE);
            g_clear_pointer(&p, g_free);
        }
    }
    g_ptr_array_free(unknown, TRUE);
    if (!p)
        set_deadlines(user_ids, seqs, n);
}

int gateway_init(struct store *st, const struct gateway_config *c, gateway_post_fn post)
{
    store = st;
    cfg = *c;
    url = g_strdup(c->url ? c->url : "");
    cfg.url = url;
    post_fn = post;
    inflight = 0;
    taking = false;
    reading = 0;
    if (store_index_define(st, TOKENS, "user", false) != STORE_OK ||
        store_index_define(st, TOKENS, "token", false) != STORE_OK)
        return -1;
    inbox_observe(on_pushed, NULL);
    if (enabled())
        log_info("gateway", "push gateway on: %d ms timeout, %d attempts, ack timeout %d ms",
                 cfg.timeout_ms, cfg.max_attempts, cfg.ack_timeout_ms);
    return 0;
}

void gateway_shutdown(void)
{
    if (kick_source)
        g_source_remove(kick_source);
    kick_source = 0;
    g_free(url);
    url = NULL;
    store = NULL;
}
