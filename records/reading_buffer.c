/* Recent readings in memory and the flusher (see reading_buffer.h).
 *
 * Why: writing every reading into a per-sensor B-tree as it arrives
 * scatters each batch of 1,000 sensors over hundreds of pages. Instead an
 * accepted batch is appended to the store's log as one row (records/
 * reading.c does that, inside the same store batch as the reply's group
 * commit), its points go into one small sorted array per sensor here, and
 * the flusher later writes each sensor's array as one chunk row.
 *
 * The buffers: a hash table from series key to struct buf (points sorted
 * by ts, unique), and an array of every buf in creation order that the
 * flusher walks round robin, VISITS_PER_TICK bufs per tick. A visited buf
 * is written as a chunk (together with its sensor's latest point and
 * log_upto, below) when it holds flush_points points, when its oldest
 * point is flush_age_s old, or, while the buffers hold more than
 * max_bytes, when it is bigger than the average non-empty buf. A tick
 * writes at most chunks_per_tick chunks; what is left waits for the next
 * round.
 *
 * Which log rows may go (the watermark): each buf remembers first_log,
 * the log row of its oldest unflushed point. A round starts by noting
 * round_last, the last log row appended so far, and walks every buf once,
 * tracking the smallest first_log of the bufs it leaves non-empty. At the
 * end of the round every point of a log row <= round_last either was
 * flushed or sits in a buf that was left non-empty (and counted), because
 * points only join bufs when their log row is appended, and rows appended
 * during the round are > round_last. So the rows up to
 * min(smallest first_log - 1, round_last) are all in chunks and are
 * deleted, in the same store batch as (or after) the chunks that hold
 * them. A buf is only ever removed from the array at the flusher's own
 * position (its sensor was deleted), so no buf is skipped in a round.
 *
 * Restart (reading_buffer_replay): chunks record, with the key's latest
 * point, log_upto = the last log row appended when the chunk was written:
 * every point of that key in rows <= log_upto is in chunks. Replay reads
 * the remaining log rows and puts back each point whose row is after its
 * key's log_upto, so nothing acknowledged is lost and nothing flushed is
 * buffered twice. Chunks of one key still overlap in time once late
 * points arrive (a late point goes into the buffer and then into a later
 * chunk): readers merge the chunks and the buffer by ts.
 *
 * Memory: 440,000 small arrays that grow and shrink all the time would
 * fragment the C heap (glibc malloc then spends most of the ingestion CPU
 * searching its bins), so the arrays come from a pool of their own: sizes
 * are powers of two (4 to POOL_MAX_CAP points), carved from 4 MiB slabs,
 * and freed arrays go to a free list per size for the next one. Slabs are
 * kept until shutdown; buffer_max_mb bounds what they hold. */
#include "records/reading_buffer.h"

#include "common/log.h"
#include "records/sensor_table.h"
#include "records/store_replay.h"

#include <string.h>

#define VISITS_PER_TICK 50000
#define ADOPT_EVERY_MS 1000
#define ADOPT_ROWS 100
#define BUF_MIN_CAP 4
#define POOL_CLASSES 13 /* 4, 8, ... 16384 points */
#define POOL_MAX_CAP (BUF_MIN_CAP << (POOL_CLASSES - 1))
#define POOL_SLAB (4u << 20)
/* bytes a buf costs besides its points: struct, hash entry, array slot */
#define BUF_OVERHEAD 96

struct buf {
    int64_t key;
    int64_t first_log; /* log row of the oldest unflushed point; 0 if none yet */
    int64_t born_ms;   /* when the oldest unflushed point arrived */
    int n, cap;
    struct store_ts_sample *pts;
};

static struct store *store;
static struct reading_buffer_config cfg;
static struct reading_buffer_stats stats;
static GHashTable *bufs; /* &key -> struct buf* */
static GPtrArray *order; /* every buf, walked round robin */
static guint nonempty;
static guint cursor;
static int64_t round_last, round_min;
static bool round_failed;
/* Chunks written with the open batch (cfg.batch_now): the trim of the
 * rounds ended, sent once batch trim_gen is durable, unless a batch has
 * failed since the oldest of those rounds began (trim_failures then):
 * its chunks may be lost, so the log rows are read back into the
 * buffers (rebuffer) before anything is trimmed again. */
static bool deferred;
static uint64_t round_failures, trim_gen, trim_failures;
static int64_t trim_upto;
static bool trim_pending, rebuffer;
struct rebuffer_read;
static struct rebuffer_read *rebuffering; /* the log read back by a thread */
static void rebuffer_free(struct rebuffer_read *r);
/* Chunks written lately, on a store whose writes are sent with the open
 * batch (deferred): a query runs against a replay of its reads, so its
 * chunks may have been read (on another connection, or before this
 * flush) a moment before it looks at the buffers; the points of a chunk
 * stay visible here for RECENT_MS after it was sent, so that a point
 * between the two is not missed (readers merge repeated points). */
#define RECENT_MS 3000
struct recent {
    int64_t key, at_ms;
    int n;
    struct store_ts_sample pts[];
};
static GHashTable *recent_by_key;        /* &key -> GQueue* of struct recent*, oldest first */
static GQueue recent_all = G_QUEUE_INIT; /* every struct recent*, oldest first */
static int64_t tick_ms;                  /* the last tick's time */

/* The next look at the logs' leases (adopt_tick), and whether a log taken
 * over has rows left. */
static int64_t adopt_next_ms;
static bool adopt_more;

/* The pool of point arrays (see the opening comment). */
static void *pool_free_list[POOL_CLASSES];
static GPtrArray *pool_slabs;
static char *slab_pos;
static size_t slab_left;
static uint64_t held; /* bytes of the arrays the bufs hold (capacity) */

static int pool_class(int cap)
{
    int c = 0;
    while ((BUF_MIN_CAP << c) < cap)
        c++;
    return c;
}

static struct store_ts_sample *pool_alloc(int cap)
{
    held += (uint64_t)cap * sizeof(struct store_ts_sample);
    if (cap > POOL_MAX_CAP)
        return g_new(struct store_ts_sample, cap);
    int c = pool_class(cap);
    void *p = pool_free_list[c];
    if (p) {
        memcpy(&pool_free_list[c], p, sizeof(void *));
        return p;
    }
    size_t size = (size_t)cap * sizeof(struct store_ts_sample);
    if (slab_left < size) {
        slab_pos = g_malloc(POOL_SLAB);
        slab_left = POOL_SLAB;
        g_ptr_array_add(pool_slabs, slab_pos);
    }
    p = slab_pos;
    slab_pos += size;
    slab_left -= size;
    return p;
}

static void pool_release(struct store_ts_sample *p, int cap)
{
    if (!p)
        return;
    held -= (uint64_t)cap * sizeof(struct store_ts_sample);
    if (cap > POOL_MAX_CAP) {
        g_free(p);
        return;
    }
    int c = pool_class(cap);
    memcpy(p, &pool_free_list[c], sizeof(void *));
    pool_free_list[c] = p;
}

static void buf_free(struct buf *b)
{
    pool_release(b->pts, b->cap);
    g_free(b);
}

static void recent_queue_free(gpointer q)
{
    g_queue_free(q);
}

/* Forgets the chunks sent before until_ms (all with INT64_MAX). */
static void recent_expire(int64_t until_ms)
{
    struct recent *r;
    while ((r = g_queue_peek_head(&recent_all)) && r->at_ms < until_ms) {
        g_queue_pop_head(&recent_all);
        GQueue *q = g_hash_table_lookup(recent_by_key, &r->key);
        g_queue_pop_head(q); /* r: the oldest of its key too */
        if (g_queue_is_empty(q))
            g_hash_table_remove(recent_by_key, &r->key);
        stats.recent_points -= (uint64_t)r->n;
        g_free(r);
    }
}

static void recent_add(const struct buf *b)
{
    struct recent *r = g_malloc(sizeof(*r) + (size_t)b->n * sizeof(*b->pts));
    r->key = b->key;
    r->at_ms = tick_ms;
    r->n = b->n;
    memcpy(r->pts, b->pts, (size_t)b->n * sizeof(*b->pts));
    GQueue *q = g_hash_table_lookup(recent_by_key, &r->key);
    if (!q) {
        q = g_queue_new(); /* keyed by a key of its own: r goes first */
        g_hash_table_insert(recent_by_key, g_memdup2(&r->key, sizeof(r->key)), q);
    }
    g_queue_push_tail(q, r);
    g_queue_push_tail(&recent_all, r);
    stats.recent_points += (uint64_t)r->n;
}

void reading_buffer_init(struct store *st, const struct reading_buffer_config *c)
{
    store = st;
    cfg = *c;
    memset(&stats, 0, sizeof(stats));
    bufs = g_hash_table_new(g_int64_hash, g_int64_equal);
    order = g_ptr_array_new_with_free_func((GDestroyNotify)buf_free);
    pool_slabs = g_ptr_array_new_with_free_func(g_free);
    memset(pool_free_list, 0, sizeof(pool_free_list));
    slab_pos = NULL;
    slab_left = 0;
    held = 0;
    nonempty = 0;
    cursor = 0;
    round_last = 0;
    round_min = INT64_MAX;
    round_failed = false;
    deferred =
        cfg.batch_now && cfg.batch_durable && cfg.batch_failures && store_commit_may_fail(st);
    round_failures = deferred ? cfg.batch_failures() : 0;
    trim_pending = rebuffer = false;
    adopt_next_ms = 0;
    adopt_more = false;
    recent_by_key = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, recent_queue_free);
    tick_ms = 0;
}

void reading_buffer_shutdown(void)
{
    if (rebuffering)
        rebuffer_free(g_steal_pointer(&rebuffering)); /* its connection ends with it */
    if (recent_by_key) {
        recent_expire(INT64_MAX);
        g_hash_table_destroy(recent_by_key);
        recent_by_key = NULL;
    }
    if (bufs)
        g_hash_table_destroy(bufs);
    if (order)
        g_ptr_array_free(order, TRUE);
    if (pool_slabs)
        g_ptr_array_free(pool_slabs, TRUE);
    pool_slabs = NULL;
    bufs = NULL;
    order = NULL;
    store = NULL;
}

const struct reading_buffer_stats *reading_buffer_stats(void)
{
    return &stats;
}

/* The index of the first point with ts >= ts. */
static int lower_bound(const struct buf *b, int64_t ts)
{
    int lo = 0, hi = b->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (b->pts[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool reading_buffer_add(int64_t key, int64_t ts, double value, int64_t now_ms)
{
    struct buf *b = g_hash_table_lookup(bufs, &key);
    if (!b) {
        b = g_new0(struct buf, 1);
        b->key = key;
        g_hash_table_insert(bufs, &b->key, b);
        g_ptr_array_add(order, b);
    }
    int at = b->n;
    if (b->n > 0 && ts <= b->pts[b->n - 1].ts) {
        at = lower_bound(b, ts);
        if (b->pts[at].ts == ts)
            return false;
    }
    if (b->n == b->cap) {
        int cap = MAX(BUF_MIN_CAP, b->cap * 2);
        struct store_ts_sample *grown = pool_alloc(cap);
        if (b->n)
            memcpy(grown, b->pts, (size_t)b->n * sizeof(*b->pts));
        pool_release(b->pts, b->cap);
        b->pts = grown;
        b->cap = cap;
    }
    memmove(b->pts + at + 1, b->pts + at, (size_t)(b->n - at) * sizeof(*b->pts));
    b->pts[at] = (struct store_ts_sample){ts, value};
    if (b->n++ == 0) {
        nonempty++;
        b->born_ms = now_ms;
        b->first_log = 0;
    }
    stats.points++;
    return true;
}

void reading_buffer_remove(int64_t key, int64_t ts)
{
    struct buf *b = g_hash_table_lookup(bufs, &key);
    if (!b || b->n == 0)
        return;
    int at = lower_bound(b, ts);
    if (at == b->n || b->pts[at].ts != ts)
        return;
    memmove(b->pts + at, b->pts + at + 1, (size_t)(b->n - at - 1) * sizeof(*b->pts));
    stats.points--;
    if (--b->n == 0)
        nonempty--;
}

bool reading_buffer_has(int64_t key, int64_t ts)
{
    struct buf *b = g_hash_table_lookup(bufs, &key);
    if (!b || b->n == 0)
        return false;
    int at = lower_bound(b, ts);
    return at < b->n && b->pts[at].ts == ts;
}

void reading_buffer_logged(int64_t key, int64_t id)
{
    struct buf *b = g_hash_table_lookup(bufs, &key);
    if (b && b->n > 0 && b->first_log == 0)
        b->first_log = id;
    if (id > stats.log_last)
        stats.log_last = id;
}

void reading_buffer_range(int64_t key, int64_t from_ms, int64_t to_ms, GArray *out)
{
    GQueue *q = recent_by_key ? g_hash_table_lookup(recent_by_key, &key) : NULL;
    for (GList *l = q ? q->head : NULL; l; l = l->next) {
        const struct recent *r = l->data;
        for (int i = 0; i < r->n; i++)
            if (r->pts[i].ts >= from_ms && r->pts[i].ts < to_ms)
                g_array_append_val(out, r->pts[i]);
    }
    struct buf *b = g_hash_table_lookup(bufs, &key);
    if (!b)
        return;
    for (int i = lower_bound(b, from_ms); i < b->n && b->pts[i].ts < to_ms; i++)
        g_array_append_val(out, b->pts[i]);
}

/* Writes b as one chunk with its sensor's latest point. */
static bool flush_buf(struct buf *b, const struct sensor *s)
{
    struct store_ts_point latest = {b->key, s->ts, s->value, s->seen_ms};
    int rc = store_ts_chunk_put(store, b->key, b->pts, b->n, &latest, stats.log_last);
    if (rc != STORE_OK) {
        stats.flush_errors++;
        log_warn("reading",
                 "chunk of %d points of series %" G_GINT64_FORMAT
                 " refused by the store (rc %d); retrying next round",
                 b->n, b->key, rc);
        return false;
    }
    if (deferred)
        recent_add(b);
    stats.chunks++;
    stats.points -= (uint64_t)b->n;
    nonempty--;
    b->n = 0;
    b->first_log = 0;
    if (b->cap > cfg.flush_points * 2) { /* a burst made it big: give it back */
        pool_release(b->pts, b->cap);
        b->cap = 0;
        b->pts = NULL;
    }
    return true;
}

static void trim_log(int64_t upto)
{
    if (store_ts_log_trim(store, upto) == STORE_OK)
        stats.log_trimmed = upto;
    else
        log_warn("reading", "log trim up to %" G_GINT64_FORMAT " failed; retrying", upto);
}

/* Ends a round: deletes the log rows all of whose points are in chunks
 * (with deferred chunks, once they are durable: trim_due). */
static void end_round(void)
{
    int64_t upto = MIN(round_min == INT64_MAX ? INT64_MAX : round_min - 1, round_last);
    if (!round_failed && upto > stats.log_trimmed) {
        if (!deferred) {
            trim_log(upto);
        } else if (!rebuffer) {
            if (!trim_pending)
                trim_failures = round_failures;
            trim_pending = true;
            trim_upto = upto;
            trim_gen = cfg.batch_now();
        }
    }
    cursor = 0;
    round_last = stats.log_last;
    round_min = INT64_MAX;
    round_failed = false;
    if (deferred)
        round_failures = cfg.batch_failures();
}

static int log_rebuffer_later(void);

/* The trim of the rounds ended, once their chunks are durable; or, if a
 * batch failed meanwhile, the log's rows read back into the buffers. */
static void trim_due(void)
{
    if (!deferred)
        return;
    if (trim_pending && cfg.batch_failures() != trim_failures) {
        trim_pending = false;
        rebuffer = true;
        log_warn("reading", "a store batch failed: reading the readings log back into memory "
                            "before it is trimmed again");
    }
    if (rebuffer) {
        if (log_rebuffer_later() != STORE_OK)
            return; /* read in a thread, or tried again next tick */
        rebuffer = false;
        round_failed = true; /* the round under way began before */
        return;
    }
    if (trim_pending && cfg.batch_durable(trim_gen)) {
        trim_pending = false;
        trim_log(trim_upto);
    }
}

static void adopt_tick(int64_t now_ms);

void reading_buffer_tick(int64_t now_ms)
{
    if (!store)
        return;
    tick_ms = now_ms;
    recent_expire(now_ms - RECENT_MS);
    adopt_tick(now_ms);
    trim_due();
    bool over = (int64_t)(held + (uint64_t)order->len * BUF_OVERHEAD) > cfg.max_bytes;
    uint64_t mean = nonempty ? stats.points / nonempty : 0;
    int written = 0;
    for (int visits = 0; visits < VISITS_PER_TICK; visits++) {
        if (cursor >= order->len) {
            end_round();
            if (order->len == 0 || visits > 0)
                break; /* the next round starts next tick */
        }
        struct buf *b = g_ptr_array_index(order, cursor);
        const struct sensor *s = sensor_table_by_key(b->key);
        if (!s) { /* deleted: its points go with it */
            stats.points -= (uint64_t)b->n;
            if (b->n > 0)
                nonempty--;
            g_hash_table_remove(bufs, &b->key);
            g_ptr_array_remove_index_fast(order, cursor);
            continue;
        }
        bool due = b->n > 0 && (b->n >= cfg.flush_points ||
                                now_ms - b->born_ms >= (int64_t)cfg.flush_age_s * 1000 ||
                                (over && (uint64_t)b->n >= mean));
        if (due) {
            if (written >= cfg.chunks_per_tick)
                return; /* resume here next tick */
            written++;
            if (!flush_buf(b, s)) {
                round_failed = true;
                return;
            }
        }
        if (b->n > 0)
            round_min = MIN(round_min, b->first_log);
        cursor++;
    }
}

/* Replay state: (key, log_upto) pairs sorted by key. */
struct upto {
    int64_t key, log_upto;
};

static bool collect_upto(const struct store_ts_point *p, int64_t log_upto, void *ud)
{
    struct upto u = {p->key, log_upto};
    g_array_append_val((GArray *)ud, u);
    return true;
}

static int cmp_upto(const void *a, const void *b)
{
    int64_t x = ((const struct upto *)a)->key, y = ((const struct upto *)b)->key;
    return x < y ? -1 : x > y;
}

/* Takes point p of log row id into its buffer (false: its sensor is
 * gone, or the point is buffered already), moving the sensor's latest
 * reading forward. */
static bool take_point(int64_t id, const struct store_ts_point *p, int64_t seen)
{
    struct sensor *s = sensor_table_by_key(p->key);
    if (!s || !reading_buffer_add(p->key, p->ts, p->value, seen))
        return false;
    reading_buffer_logged(p->key, id);
    if (!s->has_value || p->ts > s->ts) {
        s->has_value = true;
        s->value = p->value;
        s->ts = p->ts;
        s->seen_ms = seen;
        s->ingested_here = true; /* this node's own log */
    }
    return true;
}

static bool replay_row(int64_t id, int64_t seen, const struct store_ts_point *pts, int n, void *ud)
{
    GArray *uptos = ud;
    for (int i = 0; i < n; i++) {
        struct upto k = {pts[i].key, 0};
        const struct upto *u =
            uptos->len ? bsearch(&k, uptos->data, uptos->len, sizeof(k), cmp_upto) : NULL;
        if (u && id <= u->log_upto)
            continue;
        if (take_point(id, &pts[i], seen))
            stats.replayed++;
    }
    if (id > stats.log_last)
        stats.log_last = id;
    return true;
}

/* A row of another server's log taken over (store_ts_log_adopt): its
 * points of sensors still known go into this server's log, then into the
 * buffers. */
static bool adopt_row(int64_t id, int64_t seen, const struct store_ts_point *pts, int n, void *ud)
{
    (void)id;
    (void)ud;
    GArray *keep = g_array_sized_new(FALSE, FALSE, sizeof(struct store_ts_point), (guint)n);
    for (int i = 0; i < n; i++)
        if (sensor_table_by_key(pts[i].key))
            g_array_append_val(keep, pts[i]);
    int64_t mine = 0;
    bool ok = keep->len == 0 ||
              store_ts_log_append(store, seen, (const struct store_ts_point *)(void *)keep->data,
                                  (int)keep->len, &mine) == STORE_OK;
    for (guint i = 0; ok && i < keep->len; i++)
        if (take_point(mine, &g_array_index(keep, struct store_ts_point, i), seen))
            stats.adopted++;
    g_array_free(keep, TRUE);
    return ok;
}

/* About once a second, or every tick while a log being taken over has
 * rows left: renews this server's hold on its log and takes over a page
 * of a log whose server's hold ran out (store_ts_log_adopt). */
static void adopt_tick(int64_t now_ms)
{
    if (!adopt_more && now_ms < adopt_next_ms)
        return;
    adopt_next_ms = now_ms + ADOPT_EVERY_MS;
    uint64_t before = stats.adopted;
    bool was = adopt_more;
    int rc = store_ts_log_adopt(store, ADOPT_ROWS, adopt_row, NULL, &adopt_more);
    if (rc != STORE_OK) {
        adopt_more = false;
        log_warn("reading",
                 "renewing the readings log's lease or taking another over failed (rc %d)", rc);
    } else if (stats.adopted > before || (was && !adopt_more)) {
        log_info("reading", "%" G_GUINT64_FORMAT " readings of another server's log taken over%s",
                 stats.adopted - before, adopt_more ? "" : " (that log is done)");
    }
}

/* Sorts uptos and takes the rows of the log whose points they do not
 * cover (rows: each's id and seen, then its points). */
static void rebuffer_rows(GArray *uptos, GArray *rows)
{
    g_array_sort(uptos, cmp_upto);
    for (guint i = 0; i < rows->len;) {
        const int64_t *h = &g_array_index(rows, int64_t, i);
        int n = (int)h[2];
        replay_row(h[0], h[1], (const struct store_ts_point *)(const void *)(h + 3), n, uptos);
        i += 3 + (guint)n * (sizeof(struct store_ts_point) / sizeof(int64_t));
    }
}

/* The log read back, in a thread of its own on a connection of its own
 * where the store has one (Redis), so that the loop does not wait for
 * it: the rows are kept whole (what the loop would have read: the rows
 * not trimmed yet, about what the buffers hold), and the loop takes them
 * at a flush tick once it is done. */
struct rebuffer_read {
    struct store *from;
    GThread *thread;
    GArray *uptos;
    GArray *rows; /* int64_t: id, seen, n, then n points */
    int rc;
    int done;          /* atomic: the thread has finished */
    uint64_t failures; /* cfg.batch_failures() when it began */
};

G_STATIC_ASSERT(sizeof(struct store_ts_point) % sizeof(int64_t) == 0);

static bool keep_row(int64_t id, int64_t seen, const struct store_ts_point *pts, int n, void *ud)
{
    GArray *rows = ud;
    int64_t h[3] = {id, seen, n};
    g_array_append_vals(rows, h, 3);
    g_array_append_vals(rows, pts, (guint)n * (sizeof(*pts) / sizeof(int64_t)));
    return true;
}

static int read_log(struct store *st, GArray *uptos, GArray *rows)
{
    int rc = store_ts_latest_each(st, collect_upto, uptos);
    return rc == STORE_OK ? store_ts_log_each(st, 0, keep_row, rows) : rc;
}

static gpointer rebuffer_main(gpointer p)
{
    struct rebuffer_read *r = p;
    char *err = NULL;
    struct store *own = store_open_reader(r->from, &err);
    r->rc = own ? read_log(own, r->uptos, r->rows) : STORE_EIO;
    if (!own)
        log_warn("reading", "cannot open a connection to read the readings log: %s",
                 err ? err : "?");
    g_free(err);
    store_close_reader(own);
    g_atomic_int_set(&r->done, 1);
    return NULL;
}

static void rebuffer_free(struct rebuffer_read *r)
{
    g_thread_join(r->thread);
    g_array_free(r->uptos, TRUE);
    g_array_free(r->rows, TRUE);
    g_free(r);
}

/* The log's rows whose points are not in chunks, into the buffers (the
 * points buffered already stay as they are), read now and taken row by
 * row as they come (at start-up, and on a store read at once). */
static int log_rebuffer(void)
{
    GArray *uptos = g_array_new(FALSE, FALSE, sizeof(struct upto));
    int rc = store_ts_latest_each(store, collect_upto, uptos);
    if (rc == STORE_OK) {
        g_array_sort(uptos, cmp_upto);
        rc = store_ts_log_each(store, 0, replay_row, uptos);
    }
    g_array_free(uptos, TRUE);
    return rc;
}

/* The same at a flush tick, read by a thread where the store has readers:
 * STORE_OK once done, STORE_EAGAIN while the thread reads. */
static int log_rebuffer_later(void)
{
    if (!rebuffering && !store_replays(store))
        return log_rebuffer();
    if (!rebuffering) {
        struct rebuffer_read *r = g_new0(struct rebuffer_read, 1);
        r->from = store;
        r->uptos = g_array_new(FALSE, FALSE, sizeof(struct upto));
        r->rows = g_array_new(FALSE, FALSE, sizeof(int64_t));
        r->failures = cfg.batch_failures();
        r->thread = g_thread_new("log-reread", rebuffer_main, r);
        rebuffering = r;
        return STORE_EAGAIN;
    }
    if (!g_atomic_int_get(&rebuffering->done))
        return STORE_EAGAIN;
    struct rebuffer_read *r = g_steal_pointer(&rebuffering);
    /* A batch that failed while the thread read may have held chunks of
     * rows appended after its read: read again. */
    int rc = cfg.batch_failures() != r->failures ? STORE_EAGAIN : r->rc;
    if (rc == STORE_OK)
        rebuffer_rows(r->uptos, r->rows);
    rebuffer_free(r);
    return rc;
}

int reading_buffer_replay(void)
{
    int rc = log_rebuffer();
    if (rc != STORE_OK) {
        log_error("reading", "cannot replay the readings log");
        return rc;
    }
    round_last = stats.log_last;
    log_info("reading",
             "%" G_GUINT64_FORMAT
             " buffered readings replayed from the log (last row %" G_GINT64_FORMAT ")",
             stats.replayed, stats.log_last);
    return STORE_OK;
}
