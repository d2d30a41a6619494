/* Replays of a request's reads (see store_replay.h).
 *
 * A read the store can send itself without waiting goes on its link, and
 * its answer comes from the main loop (store_later.c). For the others a
 * store that has replays gets a reader: READERS threads, each with its
 * own connection (opened by the backend's open_reader, in the thread, so
 * a slow connect holds nobody), fed reads through one queue. It makes each
 * read as the store's waiting calls do, keeping everything the call hands
 * its callback, and queues the read back; an eventfd wakes the main loop,
 * which files the answer in its replay and tells the replay's owner once
 * none of its reads is in flight. */
#include "records/store_replay.h"

#include "common/log.h"

#include <glib-unix.h>
#include <glib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Reader threads, each with its connection: the reads of several
 * requests, and a run's several reads, travel at once. */
#define READERS 4

/* A read keeps at most this many items (documents, seqs, samples); past
 * it the final run makes the read itself. */
#define KEEP_MAX 20000

/* One read: its arguments (owned), then its answer. */
struct replay_read {
    struct replay_call q; /* a, b, c owned; no callbacks */
    struct store_replay *rp;
    bool done;
    bool too_big;
    int rc;
    GPtrArray *ids;  /* char* */
    GPtrArray *docs; /* json_t* (or NULL) */
    GArray *seqs;    /* int64_t, seq_range */
    GArray *samples; /* struct store_ts_sample, every chunk's in order */
    GArray *chunks;  /* guint: where each chunk ends in samples */
    int64_t n;       /* seq_last */
    char *value;     /* kv_get */
    json_t *doc;     /* doc_get */
};

struct store_replay {
    struct store *st;
    GHashTable *memo; /* key -> struct replay_read* */
    int in_flight;
    int sent_run; /* reads sent by the current run */
    int counted;  /* counters taken by the current run (each has its own answer) */
    int thrown;   /* runs that sent reads */
    bool wrote, last, owner_gone;
    void (*ready)(void *ud);
    void *ready_ud;
};

struct store_reader {
    struct store *main; /* read only in the thread: what open_reader needs */
    GThread *threads[READERS];
    GAsyncQueue *jobs; /* struct replay_read*, or &stop */
    GAsyncQueue *done;
    int efd;
    guint watch;
};

static struct replay_read stop;
static uint64_t reads_sent, runs_thrown;
static bool closing; /* store_close() tells the reads it drops: nobody runs again */

void store_replay_counts(uint64_t *reads, uint64_t *reruns)
{
    *reads = reads_sent;
    *reruns = runs_thrown;
}

/* ---- the reader thread ---- */

static bool keep_doc(const char *id, json_t *doc, void *ud)
{
    struct replay_read *r = ud;
    if (r->ids->len >= KEEP_MAX) {
        r->too_big = true;
        return false;
    }
    g_ptr_array_add(r->ids, g_strdup(id));
    g_ptr_array_add(r->docs, json_incref(doc));
    return true;
}

static bool keep_item(int64_t seq, json_t *item, void *ud)
{
    struct replay_read *r = ud;
    if (r->seqs->len >= KEEP_MAX) {
        r->too_big = true;
        return false;
    }
    g_array_append_val(r->seqs, seq);
    g_ptr_array_add(r->docs, json_incref(item));
    return true;
}

static bool keep_samples(const struct store_ts_sample *pts, int n, void *ud)
{
    struct replay_read *r = ud;
    if (r->samples->len + (guint)n > KEEP_MAX * 10) {
        r->too_big = true;
        return false;
    }
    g_array_append_vals(r->samples, pts, (guint)n);
    guint end = r->samples->len;
    g_array_append_val(r->chunks, end);
    return true;
}

static void make_read(struct store *st, struct replay_read *r)
{
    const struct replay_call *q = &r->q;
    switch (q->op) {
    case REPLAY_DOC_GET:
        r->rc = store_doc_get(st, q->a, q->b, &r->doc);
        break;
    case REPLAY_DOC_LIST:
        r->rc = store_doc_list(st, q->a, keep_doc, r);
        break;
    case REPLAY_INDEX_FIND:
        r->rc = store_index_find(st, q->a, q->b, q->c, q->flag, keep_doc, r);
        break;
    case REPLAY_SEQ_RANGE:
        r->rc = store_seq_range(st, q->a, q->x, q->limit, q->flag, keep_item, r);
        break;
    case REPLAY_SEQ_LAST:
        r->rc = store_seq_last(st, q->a, &r->n);
        break;
    case REPLAY_KV_GET:
        r->rc = store_kv_get(st, q->a, &r->value);
        break;
    case REPLAY_TS_RANGE:
        r->rc = store_ts_chunk_range(st, q->x, q->y, q->z, keep_samples, r);
        break;
    case REPLAY_COUNTER:
        r->rc = store_counter_incr(st, q->a, q->x, &r->n);
        break;
    default:
        r->rc = STORE_EINVAL;
    }
}

static gpointer reader_main(gpointer p)
{
    struct store_reader *rd = p;
    struct store *own = NULL; /* this thread's */
    for (;;) {
        struct replay_read *r = g_async_queue_pop(rd->jobs);
        if (r == &stop)
            break;
        if (!own) { /* not reached yet, or not at the last try */
            char *err = NULL;
            own = store_open_reader(rd->main, &err);
            g_free(err); /* the read fails; the next one tries again */
        }
        if (own)
            make_read(own, r);
        else
            r->rc = STORE_EIO;
        g_async_queue_push(rd->done, r);
        uint64_t one = 1;
        ssize_t w = write(rd->efd, &one, sizeof(one));
        (void)w; /* a full counter still wakes the loop */
    }
    store_close_reader(own);
    return NULL;
}

/* ---- the main loop's half ---- */

static void read_free(gpointer p)
{
    struct replay_read *r = p;
    g_free((char *)r->q.a);
    g_free((char *)r->q.b);
    g_free((char *)r->q.c);
    g_ptr_array_free(r->ids, TRUE);
    g_ptr_array_free(r->docs, TRUE);
    g_array_free(r->seqs, TRUE);
    g_array_free(r->samples, TRUE);
    g_array_free(r->chunks, TRUE);
    g_free(r->value);
    json_decref(r->doc);
    g_free(r);
}

static void replay_destroy(struct store_replay *rp)
{
    g_hash_table_destroy(rp->memo);
    g_free(rp);
}

/* A read of rp is back: its owner is told when it was the last in
 * flight. */
static void one_back(struct store_replay *rp, bool tell)
{
    if (--rp->in_flight > 0)
        return;
    if (rp->owner_gone) {
        replay_destroy(rp);
        return;
    }
    void (*ready)(void *) = rp->ready;
    rp->ready = NULL;
    if (ready && tell)
        ready(rp->ready_ud);
}

/* A read is back: filed, and counted. */
static void filed(struct replay_read *r, bool tell)
{
    r->done = true;
    one_back(r->rp, tell);
}

/* tell: the owners may run again (not while the store closes). */
static void drain(struct store_reader *rd, bool tell)
{
    struct replay_read *r;
    while ((r = g_async_queue_try_pop(rd->done)))
        filed(r, tell);
}

static gboolean on_answers(gint fd, GIOCondition cond, gpointer ud)
{
    (void)cond;
    uint64_t n;
    ssize_t got = read(fd, &n, sizeof(n));
    (void)got;
    drain(ud, !closing);
    return G_SOURCE_CONTINUE;
}

static struct store_reader *reader_start(struct store *st)
{
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0)
        return NULL;
    struct store_reader *rd = g_new0(struct store_reader, 1);
    rd->main = st;
    rd->efd = efd;
    rd->jobs = g_async_queue_new();
    rd->done = g_async_queue_new();
    rd->watch = g_unix_fd_add(efd, G_IO_IN, on_answers, rd);
    for (int i = 0; i < READERS; i++)
        rd->threads[i] = g_thread_new("store-reader", reader_main, rd);
    return rd;
}

void store_replay_closing(bool on)
{
    closing = on;
}

void store_replay_close(struct store *st)
{
    struct store_reader *rd = st->reader;
    if (!rd)
        return;
    for (int i = 0; i < READERS; i++)
        g_async_queue_push_front(rd->jobs, &stop);
    for (int i = 0; i < READERS; i++)
        g_thread_join(rd->threads[i]);
    struct replay_read *r;
    while ((r = g_async_queue_try_pop(rd->jobs))) {
        r->rc = STORE_EIO;
        g_async_queue_push(rd->done, r);
    }
    drain(rd, false);
    g_source_remove(rd->watch);
    close(rd->efd);
    g_async_queue_unref(rd->jobs);
    g_async_queue_unref(rd->done);
    g_free(rd);
    st->reader = NULL;
}

bool store_replays(const struct store *st)
{
    return st && st->ops->open_reader && store_reads_later(st);
}

struct store_replay *store_replay_new(struct store *st)
{
    if (!store_replays(st))
        return NULL;
    struct store_replay *rp = g_new0(struct store_replay, 1);
    rp->st = st;
    rp->memo = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, read_free);
    return rp;
}

void store_replay_free(struct store_replay *rp)
{
    if (!rp)
        return;
    rp->ready = NULL;
    if (rp->in_flight > 0)
        rp->owner_gone = true;
    else
        replay_destroy(rp);
}

void store_replay_begin(struct store_replay *rp)
{
    rp->sent_run = 0;
    rp->counted = 0;
    rp->wrote = false;
    rp->st->replay = rp;
}

int store_replay_end(struct store_replay *rp)
{
    log_hush(false);
    if (rp->st->replay == rp)
        rp->st->replay = NULL;
    if (rp->sent_run > 0)
        runs_thrown++;
    return rp->sent_run;
}

int store_replay_sent(const struct store_replay *rp)
{
    return rp->sent_run;
}

void store_replay_wait(struct store_replay *rp, void (*ready)(void *ud), void *ud)
{
    rp->ready = ready;
    rp->ready_ud = ud;
}

void store_replay_last(struct store_replay *rp)
{
    rp->last = true;
}

void store_replay_rerun(struct store_replay *rp, int max_runs, void (*ready)(void *ud), void *ud)
{
    if (++rp->thrown >= max_runs)
        rp->last = true;
    store_replay_wait(rp, ready, ud);
}

/* A run's first read sent: what follows is thrown away. */
static void run_sent(struct store_replay *rp)
{
    if (rp->sent_run++ == 0)
        log_hush(true);
}

struct store_replay *store_replay_hold(struct store *st)
{
    struct store_replay *rp = st->replay;
    if (!rp || rp->wrote || rp->last)
        return NULL;
    rp->in_flight++;
    run_sent(rp);
    return rp;
}

void store_replay_held_done(struct store_replay *rp, bool tell)
{
    one_back(rp, tell && !closing);
}

bool store_replay_refuses_write(struct store *st)
{
    struct store_replay *rp = st->replay;
    if (!rp)
        return false;
    if (rp->sent_run > 0)
        return true;
    rp->wrote = true; /* the run completes: its reads from now on wait */
    return false;
}

/* The read's key in the memo: every argument, each with its length. */
static char *key_of(const struct replay_call *q)
{
    GString *k = g_string_new(NULL);
    g_string_append_printf(
        k, "%d %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %d %d", (int)q->op,
        (gint64)q->x, (gint64)q->y, (gint64)q->z, q->limit, (int)q->flag);
    const char *s[] = {q->a, q->b, q->c};
    for (int i = 0; i < 3; i++)
        if (s[i])
            g_string_append_printf(k, " %zu:%s", strlen(s[i]), s[i]);
        else
            g_string_append(k, " -");
    return g_string_free(k, FALSE);
}

static struct replay_read *read_new(struct store_replay *rp, const struct replay_call *q)
{
    struct replay_read *r = g_new0(struct replay_read, 1);
    r->q = (struct replay_call){.op = q->op,
                                .a = g_strdup(q->a),
                                .b = g_strdup(q->b),
                                .c = g_strdup(q->c),
                                .x = q->x,
                                .y = q->y,
                                .z = q->z,
                                .limit = q->limit,
                                .flag = q->flag};
    r->rp = rp;
    r->ids = g_ptr_array_new_with_free_func(g_free);
    r->docs = g_ptr_array_new_with_free_func((GDestroyNotify)json_decref);
    r->seqs = g_array_new(FALSE, FALSE, sizeof(int64_t));
    r->samples = g_array_new(FALSE, FALSE, sizeof(struct store_ts_sample));
    r->chunks = g_array_new(FALSE, FALSE, sizeof(guint));
    return r;
}

/* Hands a filed answer to the caller as the waiting call would: each
 * callback gets a copy of its own (callbacks may keep or change it). */
static int answer(const struct replay_read *r, const struct replay_call *q)
{
    if (r->rc != STORE_OK)
        return r->rc;
    switch (q->op) {
    case REPLAY_DOC_GET:
        *q->doc_out = json_deep_copy(r->doc);
        break;
    case REPLAY_DOC_LIST:
    case REPLAY_INDEX_FIND:
        for (guint i = 0; i < r->ids->len; i++) {
            json_t *doc = json_deep_copy(g_ptr_array_index(r->docs, i));
            bool go_on = q->doc_cb(g_ptr_array_index(r->ids, i), doc, q->ud);
            json_decref(doc);
            if (!go_on)
                break;
        }
        break;
    case REPLAY_SEQ_RANGE:
        for (guint i = 0; i < r->seqs->len; i++) {
            json_t *item = json_deep_copy(g_ptr_array_index(r->docs, i));
            bool go_on = q->seq_cb(g_array_index(r->seqs, int64_t, i), item, q->ud);
            json_decref(item);
            if (!go_on)
                break;
        }
        break;
    case REPLAY_SEQ_LAST:
    case REPLAY_COUNTER:
        *q->int_out = r->n;
        break;
    case REPLAY_KV_GET:
        *q->value_out = g_strdup(r->value);
        break;
    case REPLAY_TS_RANGE: {
        guint from = 0;
        for (guint i = 0; i < r->chunks->len; i++) {
            guint end = g_array_index(r->chunks, guint, i);
            const struct store_ts_sample *pts =
                &g_array_index(r->samples, struct store_ts_sample, from);
            if (!q->ts_cb(pts, (int)(end - from), q->ud))
                break;
            from = end;
        }
        break;
    }
    }
    return STORE_OK;
}

/* ---- reads the store itself sends without waiting ---- */

/* The answer of a read sent on the store's own link (store_*_later), as
 * the waiting call would have given it. */
static void later_docs(int rc, const struct store_docs *d, void *ud)
{
    struct replay_read *r = ud;
    r->rc = rc;
    for (int i = 0; rc == STORE_OK && i < d->n; i++) {
        switch (r->q.op) {
        case REPLAY_SEQ_RANGE: {
            int64_t seq = g_ascii_strtoll(d->ids[i], NULL, 10);
            g_array_append_val(r->seqs, seq);
            g_ptr_array_add(r->docs, json_incref(d->docs[i]));
            break;
        }
        case REPLAY_INDEX_FIND:
            g_ptr_array_add(r->ids, g_strdup(d->ids[i]));
            g_ptr_array_add(r->docs, json_incref(d->docs[i]));
            break;
        case REPLAY_DOC_GET:
            r->doc = json_incref(d->docs[i]);
            break;
        case REPLAY_KV_GET:
            r->value = g_strdup(json_string_value(d->docs[i]));
            break;
        default:
            break;
        }
    }
    if (rc == STORE_OK && (r->q.op == REPLAY_DOC_GET || r->q.op == REPLAY_KV_GET) && !r->doc &&
        !r->value)
        r->rc = STORE_ENOTFOUND;
    if (rc == STORE_OK && d->more)
        r->too_big = true;
    filed(r, !closing);
}

static void later_count(int rc, int64_t n, void *ud)
{
    struct replay_read *r = ud;
    r->rc = rc;
    r->n = n;
    filed(r, !closing);
}

/* Sends r on the store's own link when the store has such a read: no
 * thread to wake, and it sees the writes this process has sent. */
static bool send_later(struct store *st, struct replay_read *r)
{
    const struct replay_call *q = &r->q;
    const char *one[] = {q->op == REPLAY_DOC_GET ? q->b : q->a};
    switch (q->op) {
    case REPLAY_DOC_GET:
        return store_docs_get_later(st, q->a, one, 1, later_docs, r) == STORE_OK;
    case REPLAY_INDEX_FIND:
        return store_index_find_later(st, q->a, q->b, q->c, q->flag, false, KEEP_MAX, later_docs,
                                      r) == STORE_OK;
    case REPLAY_SEQ_RANGE:
        return !q->flag && q->limit > 0 &&
               store_seq_range_later(st, q->a, q->x, q->limit, later_docs, r) == STORE_OK;
    case REPLAY_KV_GET:
        return store_kv_get_later(st, one, 1, later_docs, r) == STORE_OK;
    case REPLAY_SEQ_LAST:
        return store_seq_last_later(st, q->a, later_count, r) == STORE_OK;
    default:
        return false; /* a reader thread makes it */
    }
}

int store_replay_read(struct store *st, const struct replay_call *q)
{
    struct store_replay *rp = st->replay;
    if (!rp || rp->wrote)
        return STORE_DIRECT;
    struct replay_call nth;
    if (q->op == REPLAY_COUNTER) { /* the run's first, second… count of it */
        nth = *q;
        nth.y = rp->counted++;
        q = &nth;
    }
    char *key = key_of(q);
    struct replay_read *r = g_hash_table_lookup(rp->memo, key);
    if (r && r->done) {
        g_free(key);
        return r->too_big ? STORE_DIRECT : answer(r, q);
    }
    if (!r && rp->last) {
        g_free(key);
        return STORE_DIRECT;
    }
    if (!r) {
        r = read_new(rp, q);
        if (!send_later(st, r)) {
            if (!st->reader)
                st->reader = reader_start(st);
            if (!st->reader) {
                read_free(r);
                g_free(key);
                return STORE_DIRECT;
            }
            g_async_queue_push(st->reader->jobs, r);
        }
        g_hash_table_insert(rp->memo, key, r);
        rp->in_flight++;
        reads_sent++;
    } else {
        g_free(key); /* sent by this run already */
    }
    run_sent(rp); /* the rest of this run is thrown away */
    return STORE_EAGAIN;
}
