/* The durable per-user inbox (see inbox.h) on the store's sequences and
 * keys:
 *   inbox/USER          the pushes, one stored item per seq;
 *   inbox.ack/USER/DEV  a device's acknowledged seq (key-value);
 *   inbox.ackmax/USER   the highest seq any device of USER acknowledged.
 * Trimming is amortised: by count every TRIM_EVERY pushes of a user, by age
 * at the same moments and whenever the inbox is read. Users are staggered
 * (each at its own seq modulo TRIM_EVERY), so that a push to thousands of
 * users, all at the same seq, does not trim them all at once; and the
 * trims a fan-out asks for wait in trim_due for inbox_trim_due() (a timer),
 * off the path of its deliveries. */
#include "push/inbox.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define TRIM_EVERY 32
#define AGE_SCAN 256
/* Trims put off at most; past it a fan-out trims at once. */
#define TRIM_DUE_MAX 100000

struct observer {
    inbox_observer_cb cb;
    void *ud;
};

static struct store *store;
static struct inbox_limits limits;
static inbox_deliver_cb deliver_cb;
static void *deliver_ud;
static GArray *observers;    /* struct observer */
static GHashTable *trim_due; /* inbox key (owned) -> its head then (gint64*, owned) */
static inbox_fanout_cb fanout_cb;
static void *fanout_ud;

void inbox_init(struct store *st, const struct inbox_limits *l, inbox_deliver_cb cb, void *ud)
{
    store = st;
    limits = *l;
    deliver_cb = cb;
    deliver_ud = ud;
    observers = g_array_new(FALSE, FALSE, sizeof(struct observer));
    trim_due = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static void announce(const char *const *user_ids, const char *const *keys, const int64_t *seqs,
                     int n, json_t *item);
static void announce_stored(void);
static void later_drop_all(void);

void inbox_shutdown(void)
{
    later_drop_all();
    if (observers)
        g_array_free(observers, TRUE);
    observers = NULL;
    g_clear_pointer(&trim_due, g_hash_table_destroy);
    inbox_set_batches(NULL);
    store = NULL;
}

void inbox_on_fanout(inbox_fanout_cb cb, void *ud)
{
    fanout_cb = cb;
    fanout_ud = ud;
}

void inbox_observe(inbox_observer_cb cb, void *ud)
{
    struct observer o = {cb, ud};
    g_array_append_val(observers, o);
}

#define SEQ_PREFIX "inbox/"

static char *seq_key(const char *user_id)
{
    return g_strconcat(SEQ_PREFIX, user_id, NULL);
}

/* prefix and each of strs[0..n), then extra (if not NULL), then NULL: in
 * one allocation (g_free), where a push to 10,000 users would make 10,000
 * (and a copy of its users' ids as many more). */
static char **strv_block(const char *prefix, const char *const *strs, int n, const char *extra)
{
    size_t plen = strlen(prefix), bytes = extra ? strlen(extra) + 1 : 0;
    for (int i = 0; i < n; i++)
        bytes += plen + strlen(strs[i]) + 1;
    char **v = g_malloc(((size_t)n + 2) * sizeof(char *) + bytes);
    char *p = (char *)(v + n + 2);
    for (int i = 0; i <= n; i++) {
        const char *s = i < n ? strs[i] : extra;
        if (!s) {
            v[i] = NULL;
            continue;
        }
        size_t len = strlen(s);
        v[i] = p;
        if (i < n) {
            memcpy(p, prefix, plen);
            p += plen;
        }
        memcpy(p, s, len + 1);
        p += len + 1;
    }
    v[n + 1] = NULL;
    return v;
}

static char *ack_key(const char *user_id, const char *device_id)
{
    return g_strconcat("inbox.ack/", user_id, "/", device_id, NULL);
}

char *inbox_ackmax_key(const char *user_id)
{
    return g_strconcat("inbox.ackmax/", user_id, NULL);
}

char *inbox_push_id(const char *user_id, int64_t seq)
{
    return g_strdup_printf("%s:%" G_GINT64_FORMAT, user_id, seq);
}

json_t *inbox_event(const char *user_id, int64_t seq, json_t *item)
{
    char *id = inbox_push_id(user_id, seq);
    json_t *ev = json_pack("{s:s, s:I, s:s}", "type", "push", "seq", (json_int_t)seq, "id", id);
    g_free(id);
    json_object_update(ev, item);
    return ev;
}

/* Whether s is written in JSON as it is: printable ASCII, no quote or
 * backslash. */
static bool plain_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

/* Writes into out the serialised `push` event of (user_id, seq) for the
 * item serialised as item_text ("{...}"): the same JSON as
 * inbox_event(), without building it, so that a fan-out serialises its
 * item once and only splices each user's seq and id in. */
static void event_text(GString *out, const char *user_id, int64_t seq, const char *item_text)
{
    g_string_truncate(out, 0);
    g_string_append_len(out, "{\"type\":\"push\",\"seq\":", 21);
    jx_append_int(out, seq);
    g_string_append_len(out, ",\"id\":", 6);
    /* the id, "USER:SEQ" (inbox_push_id), quoted; a user id (made by the
     * server: letters, digits, dashes) needs no escaping */
    if (plain_ascii(user_id)) {
        g_string_append_c(out, '"');
        g_string_append(out, user_id);
        g_string_append_c(out, ':');
        jx_append_int(out, seq);
        g_string_append_c(out, '"');
    } else {
        char *id = inbox_push_id(user_id, seq);
        jx_append_quoted(out, id);
        g_free(id);
    }
    if (item_text[0] == '{' && item_text[1] != '}' && item_text[1]) {
        g_string_append_c(out, ',');
        g_string_append(out, item_text + 1);
    } else {
        g_string_append_c(out, '}');
    }
}

static bool valid_text(const char *s, size_t max)
{
    return !s || (strlen(s) <= max && g_utf8_validate(s, -1, NULL));
}

/* Checks the arguments of a push and builds the stored item, or NULL. */
static json_t *make_item(const char *kind, const char *priority, int64_t ttl_s, const char *title,
                         const char *body, json_t *payload)
{
    if (!kind || !*kind || strlen(kind) > INBOX_KIND_MAX || !priority ||
        (strcmp(priority, "high") != 0 && strcmp(priority, "normal") != 0) || ttl_s < 1 ||
        ttl_s > INBOX_TTL_MAX_S || !valid_text(title, INBOX_TITLE_MAX) ||
        !valid_text(body, INBOX_BODY_MAX) || (payload && !json_is_object(payload)))
        return NULL;
    if (payload) {
        char *text = jx_dump(payload);
        size_t n = text ? strlen(text) : SIZE_MAX;
        free(text);
        if (n > INBOX_PAYLOAD_MAX)
            return NULL;
    }
    int64_t now = clock_now_ms();
    return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:o}", "kind", kind, "priority", priority,
                     "created_at", (json_int_t)now, "expires_at", (json_int_t)(now + ttl_s * 1000),
                     "title", title ? title : "", "body", body ? body : "", "payload",
                     payload ? json_incref(payload) : json_object());
}

/* Trims the user's inbox by age and (given its head) by count; on Redis
 * without waiting for it. */
static void trim(const char *key, int64_t head)
{
    int64_t cutoff = clock_now_ms() - limits.max_age_s * 1000;
    int64_t upto = head > limits.max_count ? head - limits.max_count : 0;
    if (store_seq_trim_older(store, key, "created_at", cutoff, AGE_SCAN, upto) != STORE_OK)
        log_warn("inbox", "trim of %s failed", key);
}

/* A fan-out's trims wait for inbox_trim_due(); a single push's, or any
 * past TRIM_DUE_MAX waiting, are done now. */
static void trim_soon(const char *key, int64_t head, bool later)
{
    if (!later || g_hash_table_size(trim_due) >= TRIM_DUE_MAX) {
        trim(key, head);
        return;
    }
    g_hash_table_replace(trim_due, g_strdup(key), g_memdup2(&head, sizeof(head)));
}

int inbox_trim_due(int max)
{
    int done = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, trim_due);
    while (done < max && g_hash_table_iter_next(&it, &k, &v)) {
        trim(k, *(gint64 *)v);
        g_hash_table_iter_remove(&it);
        done++;
    }
    return done;
}

static GQueue stored_later = G_QUEUE_INIT; /* struct later*, answered, in order (below) */
static void hold_answered(const char *const *user_ids, const char *const *keys, const int64_t *seqs,
                          int n, json_t *item);

int inbox_push_many(const char *const *user_ids, int n, const char *kind, const char *priority,
                    int64_t ttl_s, const char *title, const char *body, json_t *payload,
                    int64_t *seqs_out)
{
    return inbox_push_many_journaled(user_ids, n, NULL, kind, priority, ttl_s, title, body, payload,
                                     seqs_out);
}

int inbox_push_many_journaled(const char *const *user_ids, int n, const char *journal_key,
                              const char *kind, const char *priority, int64_t ttl_s,
                              const char *title, const char *body, json_t *payload,
                              int64_t *seqs_out)
{
    if (n < 0 || (n > 0 && !user_ids))
        return STORE_EINVAL;
    json_t *item = make_item(kind, priority, ttl_s, title, body, payload);
    if (!item)
        return STORE_EINVAL;
    char **keys = strv_block(SEQ_PREFIX, user_ids, n, journal_key);
    int64_t *seqs = g_new0(int64_t, (gsize)n + 2);
    int rc = store_seq_append_many(store, (const char *const *)keys, n + (journal_key ? 1 : 0),
                                   item, seqs);
    if (rc != STORE_OK) {
        log_error("inbox", "cannot store a %s push for %d user(s): store error %d", kind, n, rc);
        goto out;
    }
    announce_stored(); /* this node's devices get pushes in the order stored */
    if (seqs_out)
        memcpy(seqs_out, seqs, sizeof(*seqs) * (size_t)n);
    if (g_queue_is_empty(&stored_later))
        announce(user_ids, (const char *const *)keys, seqs, n, item);
    else /* behind pushes held for their batch: in order */
        hold_answered(user_ids, (const char *const *)keys, seqs, n, item);
out:
    g_free(keys);
    g_free(seqs);
    json_decref(item);
    return rc;
}

/* Delivers a stored push (item, at seqs[i] in keys[i] of user_ids[i]) to
 * the devices online, trims what is due, and tells the observers. */
static void announce(const char *const *user_ids, const char *const *keys, const int64_t *seqs,
                     int n, json_t *item)
{
    const char *kind = jx_str(item, "kind"), *priority = jx_str(item, "priority");
    char *item_text = deliver_cb ? jx_dump(item) : NULL;
    bool fan = item_text && fanout_cb && n >= INBOX_FANOUT_MIN;
    if (fan)
        fanout_cb(INBOX_FANOUT_BEGIN, fanout_ud);
    GString *ev = g_string_sized_new(512);
    for (int i = 0; i < n; i++) {
        if (fan && i % INBOX_FANOUT_STEP == INBOX_FANOUT_STEP - 1)
            fanout_cb(INBOX_FANOUT_PUMP, fanout_ud);
        log_debug("inbox", "push user=%s seq=%" G_GINT64_FORMAT " kind=%s priority=%s", user_ids[i],
                  seqs[i], kind, priority);
        if (item_text) {
            event_text(ev, user_ids[i], seqs[i], item_text);
            deliver_cb(user_ids[i], seqs[i], ev->str, ev->len, deliver_ud);
        }
        if ((seqs[i] + g_str_hash(user_ids[i])) % TRIM_EVERY == 0)
            trim_soon(keys[i], seqs[i], n > 1);
    }
    if (fan)
        fanout_cb(INBOX_FANOUT_END, fanout_ud);
    g_string_free(ev, TRUE);
    free(item_text);
    for (guint o = 0; n > 0 && o < observers->len; o++) {
        struct observer *ob = &g_array_index(observers, struct observer, o);
        ob->cb(user_ids, seqs, n, item, ob->ud);
    }
    if (n == 1)
        log_info("inbox", "push user=%s seq=%" G_GINT64_FORMAT " kind=%s priority=%s", user_ids[0],
                 seqs[0], kind, priority);
    else if (n > 1)
        log_info("inbox", "push to %d users kind=%s priority=%s", n, kind, priority);
}

/* ---------- fan-outs stored without waiting (inbox_push_many_later) ---------- */

/* A fan-out sent to the store; announced once its seqs are known. */
struct later {
    char **user_ids, **keys;
    int n;
    json_t *item;
    int rc;
    int64_t *seqs;
    inbox_stored_cb done; /* told after the announcement, or NULL */
    void *done_ud;
    uint64_t gen; /* the batch its write joined */
};

static struct inbox_batches batches;

struct ack_later {
    char *user_id, *device_id;
    int64_t seq, acked;
    int rc;
    uint64_t gen; /* the batch its raise joined */
    store_count_cb cb;
    void *ud;
};
static GQueue acks_held = G_QUEUE_INIT; /* struct ack_later*, answered, in order */
static void acks_release(void);
static void ack_tell(struct ack_later *x);

void inbox_set_batches(const struct inbox_batches *b)
{
    if (b)
        batches = *b;
    else
        memset(&batches, 0, sizeof(batches));
}

/* Whether the server has judged batch gen, which holds a write answered
 * rc (a failed answer needs no judging). */
static bool judged(int rc, uint64_t gen)
{
    return rc != STORE_OK || !batches.judged || batches.judged(gen);
}

/* The outcome of that write once judged: STORE_EIO if its batch failed
 * (answered, but it may be lost). */
static int judged_rc(int rc, uint64_t gen)
{
    return rc == STORE_OK && batches.failed && batches.failed(gen) ? STORE_EIO : rc;
}

static guint announce_idle;
/* Recipients of the fan-outs sent and not answered yet. Past
 * LATER_INFLIGHT_MAX a fan-out waits for the store like any push (which
 * first reads the answers before it): the loop then slows the
 * publishers down instead of queueing without end. */
#define LATER_INFLIGHT_MAX 100000
static int later_inflight;

static void later_free(struct later *l)
{
    if (l->done) /* a store gone: told so */
        l->done(l->rc == STORE_OK && l->seqs ? STORE_OK
                : l->rc                      ? l->rc
                                             : STORE_EIO,
                l->seqs, l->n, l->done_ud);
    g_free(l->user_ids);
    g_free(l->keys);
    json_decref(l->item);
    g_free(l->seqs);
    g_free(l);
}

/* A push stored waiting, while pushes stored before it are held for their
 * batch: held behind them, answered, so that devices get them in order. */
static void hold_answered(const char *const *user_ids, const char *const *keys, const int64_t *seqs,
                          int n, json_t *item)
{
    struct later *l = g_new0(struct later, 1);
    l->n = n;
    l->item = json_incref(item);
    l->user_ids = strv_block("", user_ids, n, NULL);
    l->keys = strv_block("", keys, n, NULL);
    l->seqs = g_memdup2(seqs, sizeof(*seqs) * (size_t)n);
    l->gen = batches.now ? batches.now() : 0;
    g_queue_push_tail(&stored_later, l);
}

/* The fan-outs the store answered, announced in the order they were
 * sent (from the loop, never inside a store call). */
static void announce_stored(void)
{
    struct later *l;
    while ((l = g_queue_peek_head(&stored_later))) {
        if (!judged(l->rc, l->gen))
            break; /* told by inbox_batches_judged() */
        g_queue_pop_head(&stored_later);
        l->rc = judged_rc(l->rc, l->gen);
        if (l->rc == STORE_OK)
            announce((const char *const *)l->user_ids, (const char *const *)l->keys, l->seqs, l->n,
                     l->item);
        else
            log_error("inbox", "cannot store a %s push for %d user(s): store error %d",
                      jx_str(l->item, "kind"), l->n, l->rc);
        if (l->done) {
            l->done(l->rc, l->seqs, l->n, l->done_ud);
            l->done = NULL;
        }
        later_free(l);
    }
}

static void later_drop_all(void)
{
    struct later *l;
    while ((l = g_queue_pop_head(&stored_later))) {
        /* held for a batch never judged: not sure */
        l->rc = judged(l->rc, l->gen) ? judged_rc(l->rc, l->gen) : STORE_EIO;
        later_free(l);
    }
    struct ack_later *x;
    while ((x = g_queue_pop_head(&acks_held))) { /* not judged: not sure */
        x->rc = STORE_EIO;
        ack_tell(x);
    }
    if (announce_idle)
        g_source_remove(announce_idle);
    announce_idle = 0;
}

static gboolean on_announce_idle(gpointer ud)
{
    (void)ud;
    announce_idle = 0;
    announce_stored();
    acks_release();
    return G_SOURCE_REMOVE;
}

void inbox_batches_judged(void)
{
    if ((!g_queue_is_empty(&stored_later) || !g_queue_is_empty(&acks_held)) && !announce_idle)
        announce_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_announce_idle, NULL, NULL);
}

static void on_stored_later(int rc, const int64_t *seqs, int n, void *ud)
{
    struct later *l = ud;
    later_inflight -= n;
    l->rc = rc;
    if (rc == STORE_OK) /* the users' seqs, then the journal's */
        l->seqs = g_memdup2(seqs, sizeof(*seqs) * (size_t)n);
    if (!store) { /* answered while the store closes: nobody to tell */
        later_free(l);
        return;
    }
    g_queue_push_tail(&stored_later, l);
    if (!announce_idle)
        announce_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_announce_idle, NULL, NULL);
}

int inbox_push_many_later(const char *const *user_ids, int n, const char *kind,
                          const char *priority, int64_t ttl_s, const char *title, const char *body,
                          json_t *payload)
{
    return inbox_push_many_then(user_ids, n, NULL, kind, priority, ttl_s, title, body, payload,
                                NULL, NULL);
}

int inbox_push_many_then(const char *const *user_ids, int n, const char *journal_key,
                         const char *kind, const char *priority, int64_t ttl_s, const char *title,
                         const char *body, json_t *payload, inbox_stored_cb done, void *ud)
{
    int keys = n + (journal_key ? 1 : 0);
    if (n < 0 || keys < 1 || (n > 0 && !user_ids))
        return STORE_EINVAL;
    if (!store_appends_later(store) || later_inflight + keys > LATER_INFLIGHT_MAX) {
        int64_t *seqs = done && n > 0 ? g_new0(int64_t, (gsize)n) : NULL;
        int rc = inbox_push_many_journaled(user_ids, n, journal_key, kind, priority, ttl_s, title,
                                           body, payload, seqs);
        if (done && rc == STORE_OK)
            done(rc, seqs, n, ud);
        g_free(seqs);
        return rc;
    }
    json_t *item = make_item(kind, priority, ttl_s, title, body, payload);
    if (!item)
        return STORE_EINVAL;
    struct later *l = g_new0(struct later, 1);
    l->n = n;
    l->item = item;
    l->done = done;
    l->done_ud = ud;
    l->user_ids = strv_block("", user_ids, n, NULL);
    /* the journal's seq comes after the users' */
    l->keys = strv_block(SEQ_PREFIX, user_ids, n, journal_key);
    later_inflight += keys; /* before: the answer may come at once */
    int rc = store_seq_append_many_later(store, (const char *const *)l->keys, keys, item,
                                         on_stored_later, l);
    if (rc != STORE_OK) {
        later_inflight -= keys;
        log_error("inbox", "cannot store a %s push for %d user(s): store error %d", kind, n, rc);
        l->done = NULL; /* told by the return */
        later_free(l);
        return rc;
    }
    l->gen = batches.now ? batches.now() : 0; /* the batch the write joined */
    return rc;
}

int inbox_push(const char *user_id, const char *kind, const char *priority, int64_t ttl_s,
               const char *title, const char *body, json_t *payload, int64_t *seq_out)
{
    if (!user_id || !*user_id)
        return STORE_EINVAL;
    return inbox_push_many(&user_id, 1, kind, priority, ttl_s, title, body, payload, seq_out);
}

int inbox_head(const char *user_id, int64_t *seq_out)
{
    char *key = seq_key(user_id);
    int rc = store_seq_last(store, key, seq_out);
    g_free(key);
    return rc;
}

int inbox_head_later(const char *user_id, store_count_cb cb, void *ud)
{
    char *key = seq_key(user_id);
    int rc = store_seq_last_later(store, key, cb, ud);
    g_free(key);
    return rc;
}

struct resume {
    const char *user_id;
    int64_t now;
    int64_t last;
    int count;
    bool stopped;
    inbox_item_cb cb;
    void *ud;
};

static bool resume_one(int64_t seq, json_t *item, void *ud)
{
    struct resume *r = ud;
    r->count++;
    if (jx_int(item, "expires_at", 0) > r->now) {
        json_t *ev = inbox_event(r->user_id, seq, item);
        bool taken = r->cb(seq, ev, r->ud);
        json_decref(ev);
        if (!taken) {
            r->stopped = true;
            return false;
        }
    }
    r->last = seq;
    return true;
}

/* Where a resume that read after after_seq up to head went: *last, and
 * whether newer pushes remain. Pushes trimmed away between after_seq and
 * the oldest kept one are gone; a resume past all of them lands on the
 * head. */
static void resume_end(const struct resume *r, int64_t after_seq, int64_t head, int64_t *last,
                       bool *more)
{
    *last = r->count == 0 && !r->stopped && head > after_seq ? head : r->last;
    *more = *last < head;
}

struct resume_later {
    char *user_id, *device_id;
    int64_t after_seq; /* < 0: the device's acknowledged position, read first */
    int limit;
    inbox_item_cb cb;
    inbox_resumed_cb done;
    void *ud;
};

static void resume_later_free(struct resume_later *x)
{
    g_free(x->user_id);
    g_free(x->device_id);
    g_free(x);
}

static void on_range(int rc, const struct store_docs *d, void *ud)
{
    struct resume_later *x = ud;
    int64_t last = x->after_seq;
    bool more = false;
    if (rc == STORE_OK && x->after_seq > d->last_rev)
        rc = STORE_EINVAL;
    if (rc == STORE_OK && store) {
        char *key = seq_key(x->user_id);
        trim(key, d->last_rev);
        g_free(key);
        struct resume r = {x->user_id, clock_now_ms(), x->after_seq, 0, false, x->cb, x->ud};
        for (int i = 0; i < d->n && !r.stopped; i++)
            resume_one(g_ascii_strtoll(d->ids[i], NULL, 10), d->docs[i], &r);
        resume_end(&r, x->after_seq, d->last_rev, &last, &more);
    } else if (rc == STORE_OK) {
        rc = STORE_EIO; /* the inbox closed meanwhile */
    }
    x->done(rc, last, more, rc == STORE_OK ? d->last_rev : 0, x->ud);
    resume_later_free(x);
}

static int range_later(struct resume_later *x)
{
    char *key = seq_key(x->user_id);
    int rc = store_seq_range_later(store, key, x->after_seq, x->limit, on_range, x);
    g_free(key);
    return rc;
}

/* The device's position, for a resume that did not say where from. */
static void on_acked_read(int rc, const struct store_docs *d, void *ud)
{
    struct resume_later *x = ud;
    if (rc == STORE_OK) {
        x->after_seq =
            d->n == 1 && d->docs[0] ? g_ascii_strtoll(json_string_value(d->docs[0]), NULL, 10) : 0;
        rc = store ? range_later(x) : STORE_EIO;
    }
    if (rc != STORE_OK) {
        x->done(rc, 0, false, 0, x->ud);
        resume_later_free(x);
    }
}

int inbox_resume_later(const char *user_id, const char *device_id, int64_t after_seq, int limit,
                       inbox_item_cb cb, inbox_resumed_cb done, void *ud)
{
    struct resume_later *x = g_new(struct resume_later, 1);
    *x = (struct resume_later){
        g_strdup(user_id), g_strdup(device_id), after_seq, limit, cb, done, ud};
    int rc;
    if (after_seq >= 0) {
        rc = range_later(x);
    } else {
        char *key = ack_key(user_id, device_id);
        const char *keys[] = {key};
        rc = store_kv_get_later(store, keys, 1, on_acked_read, x);
        g_free(key);
    }
    if (rc != STORE_OK)
        resume_later_free(x);
    return rc;
}

struct listing {
    const char *user_id;
    int64_t now;
    json_t *items;
};

static bool list_one(int64_t seq, json_t *item, void *ud)
{
    struct listing *l = ud;
    json_t *ev = inbox_event(l->user_id, seq, item);
    json_object_del(ev, "type");
    json_object_set_new(ev, "expired", json_boolean(jx_int(item, "expires_at", 0) <= l->now));
    json_array_append_new(l->items, ev);
    return true;
}

static int list_range(const char *key, int64_t after_seq, int limit, struct listing *l)
{
    json_array_clear(l->items);
    return store_seq_range(store, key, after_seq, limit, false, list_one, l);
}

/* How many of the items listed first a trim (see trim()) is due to
 * take: those within the count trimmed or older than the age kept. Items
 * are in the order they were made, so those due come first. */
static size_t due_listed(const struct listing *l, int64_t head)
{
    int64_t upto = head - limits.max_count;
    int64_t cutoff = l->now - limits.max_age_s * 1000;
    size_t n = 0;
    json_t *ev;
    json_array_foreach(l->items, n, ev)
    {
        if (jx_int(ev, "seq", 0) > upto && jx_int(ev, "created_at", 0) >= cutoff)
            break;
    }
    return n;
}

/* Listings read again, at most, to step over what is due to be trimmed. */
#define LIST_PASSES_MAX 16

int inbox_list(const char *user_id, int64_t *after_seq, int limit, json_t **items_out)
{
    char *key = seq_key(user_id);
    int64_t head = 0;
    struct listing l = {user_id, clock_now_ms(), json_array()};
    int rc = store_seq_last(store, key, &head);
    /* What is due to go is not shown: it is stepped over here, by reads
     * only, and trimmed by inbox_upkeep() once the request has read all
     * it reads (so that no read of it waits behind a write). */
    for (int pass = 0; rc == STORE_OK; pass++) {
        rc = list_range(key, *after_seq, limit, &l);
        size_t due = rc == STORE_OK ? due_listed(&l, head) : 0;
        if (!due || pass == LIST_PASSES_MAX)
            break;
        *after_seq = jx_int(json_array_get(l.items, due - 1), "seq", *after_seq);
    }
    g_free(key);
    if (rc != STORE_OK) {
        json_decref(l.items);
        return rc;
    }
    *items_out = l.items;
    return STORE_OK;
}

void inbox_upkeep(const char *user_id, int64_t head)
{
    char *key = seq_key(user_id);
    trim(key, head);
    g_free(key);
}

/* An ack is told, like a push, once its batch is judged (acks_held). */
static void ack_tell(struct ack_later *x)
{
    x->rc = judged_rc(x->rc, x->gen);
    if (x->rc == STORE_OK)
        log_debug("inbox", "ack user=%s device=%s seq=%" G_GINT64_FORMAT, x->user_id, x->device_id,
                  (gint64)x->acked);
    x->cb(x->rc, x->acked, x->ud);
    g_free(x->user_id);
    g_free(x->device_id);
    g_free(x);
}

/* The acks whose batch was judged, in order. */
static void acks_release(void)
{
    struct ack_later *x;
    while ((x = g_queue_peek_head(&acks_held)) && judged(x->rc, x->gen)) {
        g_queue_pop_head(&acks_held);
        ack_tell(x);
    }
}

static void on_raised(int rc, int64_t acked, void *ud)
{
    struct ack_later *x = ud;
    x->rc = rc;
    x->acked = acked;
    if (g_queue_is_empty(&acks_held) && judged(rc, x->gen)) {
        ack_tell(x);
        return;
    }
    g_queue_push_tail(&acks_held, x); /* told by inbox_batches_judged() */
}

int inbox_ack_later(const char *user_id, const char *device_id, int64_t seq, store_count_cb cb,
                    void *ud)
{
    if (seq < 0)
        return STORE_EINVAL;
    struct ack_later *x = g_new(struct ack_later, 1);
    *x = (struct ack_later){.user_id = g_strdup(user_id),
                            .device_id = g_strdup(device_id),
                            .seq = seq,
                            .cb = cb,
                            .ud = ud};
    char *key = seq_key(user_id), *ack = ack_key(user_id, device_id),
         *any = inbox_ackmax_key(user_id);
    const char *keys[] = {ack, any};
    int rc = store_kv_raise_later(store, key, keys, 2, seq, on_raised, x);
    g_free(key);
    g_free(ack);
    g_free(any);
    if (rc != STORE_OK) {
        g_free(x->user_id);
        g_free(x->device_id);
        g_free(x);
    } else {
        x->gen = batches.now ? batches.now() : 0; /* the batch the raise joined */
    }
    return rc;
}

int inbox_acked_any(const char *user_id, int64_t *seq_out)
{
    char *key = inbox_ackmax_key(user_id);
    int rc = store_kv_get_int(store, key, seq_out);
    g_free(key);
    return rc;
}
