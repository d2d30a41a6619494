/* Reads made later (store.h, "Reads that need not hold their caller"):
 * the backend-independent half. A read's answer is collected in a struct
 * store_read by the backend, wherever it comes (on Redis inside whichever
 * call of the link reads the reply), and queued; an idle source of the
 * main loop hands the answers to their callers in the order they came,
 * so a caller's callback never runs inside a store call and may use the
 * store at once. The idle source has the priority of the loop's sockets:
 * under load an answer waits its turn with them, not for the loop to be
 * idle. A backend without reads of its own makes the read at
 * once and answers it the same way. */
#include "records/store.h"
#include "records/store_replay.h"

#include <glib.h>
#include <string.h>

struct store_read {
    store_docs_cb cb;
    store_count_cb count_cb; /* instead of cb: a count, in last_rev */
    void *ud;
    int rc;
    GPtrArray *ids;  /* char* */
    GPtrArray *docs; /* json_t* or NULL */
    int64_t last_rev;
    bool more;
};

static GQueue answered = G_QUEUE_INIT;
static guint answer_idle;
static bool closing; /* store_reads_close(): every answer is STORE_EIO */

static struct store_read *read_new(store_docs_cb cb, void *ud)
{
    struct store_read *rd = g_new0(struct store_read, 1);
    rd->cb = cb;
    rd->ud = ud;
    rd->ids = g_ptr_array_new_with_free_func(g_free);
    rd->docs = g_ptr_array_new_with_free_func((GDestroyNotify)json_decref);
    return rd;
}

/* A read answered with a count (in last_rev) rather than documents. */
static struct store_read *count_read_new(store_count_cb cb, void *ud)
{
    struct store_read *rd = read_new(NULL, ud);
    rd->count_cb = cb;
    return rd;
}

static void read_free(struct store_read *rd)
{
    /* json_decref takes NULL: the entries of ids that are gone */
    g_ptr_array_free(rd->ids, TRUE);
    g_ptr_array_free(rd->docs, TRUE);
    g_free(rd);
}

void store_read_add(struct store_read *rd, const char *id, size_t id_len, json_t *doc)
{
    g_ptr_array_add(rd->ids, g_strndup(id, id_len));
    g_ptr_array_add(rd->docs, doc);
}

static void answer(struct store_read *rd)
{
    struct store_docs d = {0};
    if (closing)
        rd->rc = STORE_EIO;
    if (rd->rc == STORE_OK) {
        d.n = (int)rd->ids->len;
        d.ids = (char **)rd->ids->pdata;
        d.docs = (json_t **)rd->docs->pdata;
        d.last_rev = rd->last_rev;
        d.more = rd->more;
    }
    if (rd->count_cb)
        rd->count_cb(rd->rc, rd->last_rev, rd->ud);
    else
        rd->cb(rd->rc, &d, rd->ud);
    read_free(rd);
}

/* Answers everything queued (a callback's own reads wait for the next). */
static void answer_all(void)
{
    guint n = g_queue_get_length(&answered);
    while (n-- > 0)
        answer(g_queue_pop_head(&answered));
}

static gboolean on_answer_idle(gpointer ud)
{
    (void)ud;
    answer_idle = 0;
    answer_all();
    if (!g_queue_is_empty(&answered) && !answer_idle)
        answer_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_answer_idle, NULL, NULL);
    return G_SOURCE_REMOVE;
}

void store_read_done(struct store_read *rd, int rc, int64_t last_rev, bool more)
{
    rd->rc = rc;
    rd->last_rev = last_rev;
    rd->more = more;
    g_queue_push_tail(&answered, rd);
    if (!answer_idle)
        answer_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_answer_idle, NULL, NULL);
}

/* store_close(): every read still to be told (answered before, or as the
 * backend closed) is told now, STORE_EIO: the store is gone, so nobody
 * may read on from its answer, and the loop may not turn again. */
void store_reads_close(void)
{
    closing = true;
    while (!g_queue_is_empty(&answered))
        answer_all();
    closing = false;
    g_clear_handle_id(&answer_idle, g_source_remove);
}

bool store_reads_later(const struct store *st)
{
    return st->ops->index_find_later != NULL;
}

void store_on_read_sent(struct store *st, void (*fn)(void *ud), void *ud)
{
    st->read_sent = fn;
    st->read_sent_ud = ud;
}

/* The answer of a read the backend did not send: the read made at once. */
static bool collect(const char *id, json_t *doc, void *ud)
{
    struct store_read *rd = ud;
    store_read_add(rd, id, strlen(id), doc ? json_incref(doc) : NULL);
    return true;
}

struct bounded {
    struct store_read *rd;
    int limit;
    bool ids_only;
};

static bool collect_bounded(const char *id, json_t *doc, void *ud)
{
    struct bounded *b = ud;
    if ((int)b->rd->ids->len >= b->limit) {
        b->rd->more = true;
        return false;
    }
    return collect(id, b->ids_only ? NULL : doc, b->rd);
}

/* Ends a read the backend took (rc STORE_OK: it will answer) or refused. */
static int sent(struct store *st, struct store_read *rd, int rc)
{
    if (rc != STORE_OK) {
        read_free(rd);
        return rc;
    }
    if (st->read_sent)
        st->read_sent(st->read_sent_ud);
    return STORE_OK;
}

int store_index_find_later(struct store *st, const char *coll, const char *field, const char *value,
                           bool prefix, bool ids_only, int limit, store_docs_cb cb, void *ud)
{
    if (!coll || !field || !value || limit < 1 || !cb)
        return STORE_EINVAL;
    struct store_read *rd = read_new(cb, ud);
    if (st->ops->index_find_later)
        return sent(st, rd,
                    st->ops->index_find_later(st, coll, field, value, prefix, ids_only, limit, rd));
    struct bounded b = {rd, limit, ids_only};
    int rc = store_index_find(st, coll, field, value, prefix, collect_bounded, &b);
    store_read_done(rd, rc, 0, rd->more);
    return STORE_OK;
}

int store_docs_get_later(struct store *st, const char *coll, const char *const *ids, int n,
                         store_docs_cb cb, void *ud)
{
    if (!coll || n < 0 || (n > 0 && !ids) || !cb)
        return STORE_EINVAL;
    struct store_read *rd = read_new(cb, ud);
    if (st->ops->docs_get_later && n > 0)
        return sent(st, rd, st->ops->docs_get_later(st, coll, ids, n, rd));
    int rc = STORE_OK;
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        json_t *doc = NULL;
        rc = store_doc_get(st, coll, ids[i], &doc);
        if (rc == STORE_OK)
            store_read_add(rd, ids[i], strlen(ids[i]), doc);
        else if (rc == STORE_ENOTFOUND)
            rc = STORE_OK;
    }
    store_read_done(rd, rc, 0, false);
    return STORE_OK;
}

int store_doc_changes_later(struct store *st, const char *coll, int64_t after_rev, int limit,
                            store_docs_cb cb, void *ud)
{
    if (!coll || limit < 1 || !cb)
        return STORE_EINVAL;
    struct store_read *rd = read_new(cb, ud);
    if (st->ops->doc_changes_later)
        return sent(st, rd, st->ops->doc_changes_later(st, coll, after_rev, limit, rd));
    /* The backend's own listing has no limit: all of it, in one answer. */
    int64_t last = after_rev;
    int rc = store_doc_changes(st, coll, after_rev, &last, collect, rd);
    store_read_done(rd, rc, last, false);
    return STORE_OK;
}

int store_kv_get_later(struct store *st, const char *const *keys, int n, store_docs_cb cb, void *ud)
{
    if (n < 1 || !keys || !cb)
        return STORE_EINVAL;
    struct store_read *rd = read_new(cb, ud);
    if (st->ops->kv_get_later)
        return sent(st, rd, st->ops->kv_get_later(st, keys, n, rd));
    int rc = STORE_OK;
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        char *v = NULL;
        rc = store_kv_get(st, keys[i], &v);
        if (rc == STORE_OK || rc == STORE_ENOTFOUND) {
            store_read_add(rd, keys[i], strlen(keys[i]), v ? json_string(v) : NULL);
            rc = STORE_OK;
        }
        g_free(v);
    }
    store_read_done(rd, rc, 0, false);
    return STORE_OK;
}

int store_seq_last_later(struct store *st, const char *key, store_count_cb cb, void *ud)
{
    if (!key || !cb)
        return STORE_EINVAL;
    struct store_read *rd = count_read_new(cb, ud);
    if (st->ops->seq_last_later)
        return sent(st, rd, st->ops->seq_last_later(st, key, rd));
    int64_t last = 0;
    int rc = store_seq_last(st, key, &last);
    store_read_done(rd, rc, last, false);
    return STORE_OK;
}

struct due_seen {
    const char *prefix;
    json_t *list; /* [[id, due_ms, payload], ...] */
};

static bool collect_due(const char *id, int64_t due_ms, json_t *payload, void *ud)
{
    struct due_seen *d = ud;
    if (g_str_has_prefix(id, d->prefix))
        json_array_append_new(d->list, json_pack("[s, I, O]", id, (json_int_t)due_ms, payload));
    return true;
}

int store_deadline_take_due_later(struct store *st, const char *prefix, int64_t now_ms, int limit,
                                  int64_t until_ms, store_docs_cb cb, void *ud)
{
    if (st->replay && store_replay_refuses_write(st))
        return STORE_EAGAIN;
    if (!prefix || limit < 1 || !cb)
        return STORE_EINVAL;
    struct store_read *rd = read_new(cb, ud);
    if (st->ops->deadline_take_due_later)
        return sent(st, rd,
                    st->ops->deadline_take_due_later(st, prefix, now_ms, limit, until_ms, rd));
    struct due_seen d = {prefix, json_array()};
    int rc = store_deadline_due(st, now_ms, limit, collect_due, &d);
    size_t i;
    json_t *e;
    json_array_foreach(d.list, i, e)
    {
        if (rc != STORE_OK)
            break;
        const char *id = json_string_value(json_array_get(e, 0));
        json_int_t due = json_integer_value(json_array_get(e, 1));
        int c = store_deadline_claim(st, id, due, until_ms);
        if (c == STORE_OK)
            store_read_add(rd, id, strlen(id),
                           json_pack("{s:I, s:O}", "due_ms", due, "payload", json_array_get(e, 2)));
        else if (c != STORE_ECONFLICT && c != STORE_ENOTFOUND)
            rc = c;
    }
    json_decref(d.list);
    store_read_done(rd, rc, 0, false);
    return STORE_OK;
}

int store_doc_create_later(struct store *st, const char *coll, const char *id, json_t *doc,
                           store_count_cb cb, void *ud)
{
    if (st->replay && store_replay_refuses_write(st))
        return STORE_EAGAIN;
    if (!coll || !id || !doc || !cb)
        return STORE_EINVAL;
    struct store_read *rd = count_read_new(cb, ud);
    if (st->ops->doc_create_later)
        return sent(st, rd, st->ops->doc_create_later(st, coll, id, doc, rd));
    int rc = store_doc_put(st, coll, id, doc, true);
    store_read_done(rd, rc, 0, false);
    return STORE_OK;
}

int store_deadlines_take_later(struct store *st, const char *const *ids, int n, int64_t now_ms,
                               int64_t until_ms, store_docs_cb cb, void *ud)
{
    if (st->replay && store_replay_refuses_write(st))
        return STORE_EAGAIN;
    if (n < 1 || !ids || !cb || (!st->ops->deadlines_take_later && !st->ops->deadline_take))
        return STORE_EINVAL;
    struct store_read *rd = read_new(cb, ud);
    if (st->ops->deadlines_take_later)
        return sent(st, rd, st->ops->deadlines_take_later(st, ids, n, now_ms, until_ms, rd));
    for (int i = 0; i < n; i++) {
        int64_t due = 0;
        json_t *payload = NULL;
        int c = st->ops->deadline_take(st, ids[i], now_ms, until_ms, &due, &payload);
        if (c == STORE_OK)
            store_read_add(rd, ids[i], strlen(ids[i]),
                           json_pack("{s:I, s:o, s:b}", "due_ms", (json_int_t)due, "payload",
                                     payload, "taken", 1));
        else if (c == STORE_ECONFLICT)
            store_read_add(rd, ids[i], strlen(ids[i]),
                           json_pack("{s:I, s:b}", "due_ms", (json_int_t)due, "taken", 0));
        else if (c == STORE_ENOTFOUND)
            store_read_add(rd, ids[i], strlen(ids[i]), NULL);
        /* else (unreadable, say): left out of the answer, as not taken */
    }
    store_read_done(rd, STORE_OK, 0, false);
    return STORE_OK;
}

static bool collect_seq(int64_t seq, json_t *item, void *ud)
{
    char id[24];
    int n = g_snprintf(id, sizeof(id), "%" G_GINT64_FORMAT, (gint64)seq);
    store_read_add(ud, id, (size_t)n, json_incref(item));
    return true;
}

int store_seq_range_later(struct store *st, const char *key, int64_t after_seq, int limit,
                          store_docs_cb cb, void *ud)
{
    if (!key || limit < 1 || !cb)
        return STORE_EINVAL;
    struct store_read *rd = read_new(cb, ud);
    if (st->ops->seq_range_later)
        return sent(st, rd, st->ops->seq_range_later(st, key, after_seq, limit, rd));
    int64_t head = 0;
    int rc = store_seq_last(st, key, &head);
    if (rc == STORE_OK)
        rc = store_seq_range(st, key, after_seq, limit, false, collect_seq, rd);
    store_read_done(rd, rc, head, false);
    return STORE_OK;
}

int store_kv_raise_later(struct store *st, const char *seq_key, const char *const *keys, int n,
                         int64_t value, store_count_cb cb, void *ud)
{
    if (st->replay && store_replay_refuses_write(st))
        return STORE_EAGAIN;
    if (!seq_key || !keys || n < 1 || value < 0 || !cb)
        return STORE_EINVAL;
    struct store_read *rd = count_read_new(cb, ud);
    if (st->ops->kv_raise_later)
        return sent(st, rd, st->ops->kv_raise_later(st, seq_key, keys, n, value, rd));
    int64_t head = 0, first = 0;
    int rc = store_seq_last(st, seq_key, &head);
    if (rc == STORE_OK && value > head)
        rc = STORE_EINVAL;
    for (int i = 0; rc == STORE_OK && i < n; i++) {
        int64_t cur = 0;
        rc = store_kv_get_int(st, keys[i], &cur);
        if (rc == STORE_OK && value > cur) {
            char v[24];
            g_snprintf(v, sizeof(v), "%" G_GINT64_FORMAT, (gint64)value);
            rc = store_kv_set(st, keys[i], v, 0);
            cur = value;
        }
        if (i == 0)
            first = cur;
    }
    store_read_done(rd, rc, first, false);
    return STORE_OK;
}

int store_ts_chunk_trim_before_later(struct store *st, int64_t before_ms, int limit,
                                     store_count_cb cb, void *ud)
{
    if (st->replay && store_replay_refuses_write(st))
        return STORE_EAGAIN;
    if (limit < 1 || !cb)
        return STORE_EINVAL;
    struct store_read *rd = count_read_new(cb, ud);
    if (st->ops->ts_chunk_trim_before_later)
        return sent(st, rd, st->ops->ts_chunk_trim_before_later(st, before_ms, limit, rd));
    int64_t deleted = 0;
    int rc = store_ts_chunk_trim_before(st, before_ms, limit, &deleted);
    store_read_done(rd, rc, deleted, false);
    return STORE_OK;
}

/* Whether one chunk holds the point's ts (its samples are in ts order). */
static bool chunk_has(const struct store_ts_sample *pts, int n, void *ud)
{
    int64_t *ts = ud; /* [0] the ts, [1] 1 once found */
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (pts[mid].ts < ts[0])
            lo = mid + 1;
        else
            hi = mid;
    }
    ts[1] = lo < n && pts[lo].ts == ts[0];
    return !ts[1];
}

int store_ts_has_later(struct store *st, const struct store_ts_point *pts, int n, store_docs_cb cb,
                       void *ud)
{
    if (n < 0 || (n > 0 && !pts) || !cb)
        return STORE_EINVAL;
    struct store_read *rd = read_new(cb, ud);
    if (st->ops->ts_has_later && n > 0)
        return sent(st, rd, st->ops->ts_has_later(st, pts, n, rd));
    int rc = STORE_OK;
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        int64_t found[2] = {pts[i].ts, 0};
        rc = store_ts_chunk_range(st, pts[i].key, pts[i].ts, pts[i].ts + 1, chunk_has, found);
        char id[16];
        int len = g_snprintf(id, sizeof(id), "%d", i);
        if (rc == STORE_OK && found[1])
            store_read_add(rd, id, (size_t)len, NULL);
    }
    store_read_done(rd, rc, 0, false);
    return STORE_OK;
}
