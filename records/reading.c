/* Readings (see reading.h): the ingestion path, history queries and the
 * retention trim.
 *
 * Ingestion is built for batches of thousands: one pass over the parsed
 * rows with no per-row allocation (the batch's arrays are allocated once),
 * one store write for the whole batch (the accepted points appended to the
 * readings log as one row), then the listeners. Each accepted point also
 * joins its sensor's in-memory buffer (records/reading_buffer.c), which
 * the flusher later writes to the store as a chunk. The in-memory latest
 * values and buffers move during the first pass, so that several rows of
 * one sensor in a batch are ordered against each other; if the store
 * refuses the batch they are put back as they were.
 *
 * Row rules (docs/protocol.md): a row newer than its sensor's latest
 * becomes the latest; a row with the latest's own ts is a duplicate and
 * is dropped; an older row is late data: stored in the history (unless that
 * exact (sensor, ts) is buffered or in a stored chunk already: duplicate)
 * but never the latest, and reported as out_of_order. Only late rows look
 * at the stored chunks; the common case touches memory only.
 *
 * History queries merge the sensor's stored chunks (which may overlap in
 * time) with its buffer, in ts order without repeats. Retention deletes
 * whole chunks whose last point is older than the period, a bounded number
 * per tick, and queries never return points older than the period, so a
 * chunk that straddles the cutoff is trimmed when read. */
#include "records/reading.h"

#include "common/jsonx.h"
#include "common/log.h"
#include "records/reading_buffer.h"
#include "records/sensor.h"
#include "records/sensor_table.h"

#include <glib.h>
#include <math.h>
#include <string.h>
#include <time.h>

enum row_code {
    RC_UNKNOWN_SENSOR,
    RC_NOT_FINITE,
    RC_BAD_ROW,
    RC_BAD_TS,
    RC_DUPLICATE,
    RC_FORBIDDEN,
    RC_DISABLED,
    RC_OUT_OF_ORDER, /* a notice: the row was stored as late data */
    RC_STORE_FAILED, /* not a row code: the store could not be read */
    RC_DUP_HISTORY,  /* duplicate of a buffered or stored point: reported later */
};

const char *const reading_code_names[8] = {"unknown_sensor", "not_finite",  "bad_row",
                                           "bad_ts",         "duplicate",   "forbidden",
                                           "disabled",       "out_of_order"};

/* One row that passed the checks, with what it changed in memory. */
struct row {
    struct sensor *s;
    int index;
    bool latest;   /* became its sensor's latest */
    bool had_prev; /* the latest before it */
    double prev;
    int64_t prev_ts, prev_seen;
};

static struct store *store;
static struct reading_config cfg;
static struct reading_stats stats;

void reading_init(struct store *st, const struct reading_config *c)
{
    store = st;
    cfg = *c;
    memset(&stats, 0, sizeof(stats));
    struct reading_buffer_config bc = {
        .flush_points = c->flush_points,
        .flush_age_s = c->flush_age_s,
        .max_bytes = (int64_t)c->buffer_max_mb * 1024 * 1024,
        .chunks_per_tick = c->chunks_per_tick,
        .batch_now = c->batch_now,
        .batch_durable = c->batch_durable,
        .batch_failures = c->batch_failures,
    };
    reading_buffer_init(st, &bc);
}

int reading_start(void)
{
    return reading_buffer_replay();
}

void reading_flush_tick(int64_t now_ms)
{
    reading_buffer_tick(now_ms);
}

static bool trimming; /* a retention trim sent, not answered yet */

void reading_shutdown(void)
{
    reading_buffer_shutdown();
    store = NULL;
    trimming = false;
}

const struct reading_stats *reading_stats(void)
{
    const struct reading_buffer_stats *b = reading_buffer_stats();
    stats.buffered = b->points;
    stats.chunks = b->chunks;
    stats.flush_errors = b->flush_errors;
    stats.replayed = b->replayed;
    stats.adopted = b->adopted;
    return &stats;
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* The value of a row: a finite number, or *code. JSON has no NaN or
 * infinity; gateways send null or the strings "NaN", "Infinity",
 * "-Infinity" for them, which count as not_finite. */
static bool row_value(const json_t *v, double *out, enum row_code *code)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        if (isfinite(*out))
            return true;
        *code = RC_NOT_FINITE;
        return false;
    }
    if (json_is_null(v) ||
        (json_is_string(v) && (strcmp(json_string_value(v), "NaN") == 0 ||
                               strcmp(json_string_value(v), "Infinity") == 0 ||
                               strcmp(json_string_value(v), "-Infinity") == 0))) {
        *code = RC_NOT_FINITE;
        return false;
    }
    *code = RC_BAD_ROW;
    return false;
}

/* Whether a stored chunk of key holds a point at ts. */
struct find {
    int64_t ts;
    bool found;
};

static bool find_ts(const struct store_ts_sample *pts, int n, void *ud)
{
    struct find *f = ud;
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (pts[mid].ts < f->ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    f->found = lo < n && pts[lo].ts == f->ts;
    return !f->found;
}

/* 1 if (key, ts) is in a stored chunk, 0 if not, -1 if the store failed. */
static int stored_has(int64_t key, int64_t ts)
{
    struct find f = {ts, false};
    if (store_ts_chunk_range(store, key, ts, ts + 1, find_ts, &f) != STORE_OK)
        return -1;
    return f.found;
}

/* Checks one row; on success fills r and the point (and adds it to its
 * sensor's buffer), else *code. */
/* The late points found stored, read ahead (reading_ingest_later). */
struct prep {
    GHashTable *stored; /* "key:ts" of the late points that are in chunks */
};

static char *point_name(int64_t key, int64_t ts)
{
    return g_strdup_printf("%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT, (gint64)key, (gint64)ts);
}

/* Whether a late point is in a stored chunk: as read ahead, else read now
 * (1, 0, or -1 if the store failed). A row that became late after the
 * read ahead (a newer one came meanwhile) was newer than everything
 * stored when it was sent: not stored (a flush of that very point by then
 * is the rare exception; history queries drop repeats). */
static int late_stored(const struct prep *prep, int64_t key, int64_t ts)
{
    if (!prep)
        return stored_has(key, ts);
    char *name = point_name(key, ts);
    bool in = prep->stored && g_hash_table_contains(prep->stored, name);
    g_free(name);
    return in;
}

static bool check_row(const json_t *item, const char *enterprise, int64_t now_ms,
                      const struct prep *prep, struct store_ts_point *pt, struct row *r,
                      enum row_code *code)
{
    if (!json_is_object(item)) {
        *code = RC_BAD_ROW;
        return false;
    }
    json_t *sid = json_object_get(item, "sensor");
    json_t *ts = json_object_get(item, "ts");
    if (!json_is_string(sid) || !json_is_integer(ts)) {
        *code = RC_BAD_ROW;
        return false;
    }
    struct sensor *s = sensor_table_get(json_string_value(sid));
    if (!s) {
        *code = RC_UNKNOWN_SENSOR;
        return false;
    }
    if (enterprise && strcmp(s->enterprise, enterprise) != 0) {
        *code = RC_FORBIDDEN;
        return false;
    }
    if (!s->enabled) {
        *code = RC_DISABLED;
        return false;
    }
    if (!row_value(json_object_get(item, "value"), &pt->value, code))
        return false;
    pt->ts = json_integer_value(ts);
    if (pt->ts > now_ms + (int64_t)cfg.future_skew_s * 1000 ||
        pt->ts < now_ms - (int64_t)cfg.retention_days * 86400000) {
        *code = RC_BAD_TS;
        return false;
    }
    if (s->has_value && pt->ts == s->ts) {
        *code = RC_DUPLICATE;
        return false;
    }
    pt->key = s->ts_key;
    pt->seen = now_ms;
    r->s = s;
    r->latest = !s->has_value || pt->ts > s->ts;
    if (!r->latest) {
        int rc = late_stored(prep, s->ts_key, pt->ts);
        if (rc < 0) {
            *code = RC_STORE_FAILED;
            return false;
        }
        if (rc > 0) {
            *code = RC_DUP_HISTORY;
            return false;
        }
    }
    if (!reading_buffer_add(s->ts_key, pt->ts, pt->value, now_ms)) {
        *code = RC_DUP_HISTORY;
        return false;
    }
    if (r->latest) {
        r->had_prev = s->has_value;
        r->prev = s->value;
        r->prev_ts = s->ts;
        r->prev_seen = s->seen_ms;
        s->has_value = true;
        s->value = pt->value;
        s->ts = pt->ts;
        s->seen_ms = now_ms;
    }
    return true;
}

/* Adds a row error to the report's list (bounded) and counts it. */
static void report_row(json_t *errors, int index, enum row_code code, bool *truncated)
{
    if (code != RC_OUT_OF_ORDER)
        stats.by_code[code]++;
    if ((int)json_array_size(errors) >= cfg.errors_max) {
        *truncated = true;
        return;
    }
    json_array_append_new(
        errors, json_pack("{s:i, s:s}", "index", index, "code", reading_code_names[code]));
}

/* The rows of body, or NULL with *e and *why. */
static const json_t *rows_of(const json_t *body, enum err_code *e, const char **why)
{
    const json_t *list = json_object_get(body, "readings");
    if (!json_is_array(list)) {
        *why = "readings must be an array of {sensor, value, ts}";
        *e = ERR_BAD_REQUEST;
        return NULL;
    }
    if (json_array_size(list) > (size_t)cfg.max_rows) {
        *why = "too many readings in one request";
        *e = ERR_TOO_LARGE;
        return NULL;
    }
    return list;
}

/* Whether a row names a sensor not known here (yet). */
static bool names_unknown(const json_t *list)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *sid = json_string_value(json_object_get(json_array_get(list, i), "sensor"));
        if (sid && !sensor_table_get(sid) && sensor_id_valid(sid))
            return true;
    }
    return false;
}

/* The batch; prep: what was read ahead (NULL: read now what is needed). */
static enum err_code ingest(const char *enterprise, const json_t *body, int64_t now_ms,
                            const struct prep *prep, json_t **report, const char **why)
{
    enum err_code bad = ERR_NONE;
    const json_t *list = rows_of(body, &bad, why);
    if (!list)
        return bad;
    size_t n = json_array_size(list);
    double t0 = mono_s();
    /* A sensor registered through another node (or yjtctl) since this node
     * last read the store's change feed (once a second) is looked up there
     * now rather than refused as unknown: before any row holds a sensor,
     * since reading the feed may replace the table's records. */
    if (!prep && names_unknown(list))
        sensor_poll_now();
    struct store_ts_point *pts = g_new(struct store_ts_point, n + 1);
    struct row *rows = g_new(struct row, n + 1);
    int *dups = g_new(int, n + 1); /* rows that repeat a buffered or stored point */
    json_t *errors = json_array();
    bool truncated = false;
    int m = 0, n_dups = 0, rejected = 0, late = 0, rc = STORE_OK;
    for (size_t i = 0; i < n; i++) {
        enum row_code code;
        rows[m].index = (int)i;
        if (check_row(json_array_get(list, i), enterprise, now_ms, prep, &pts[m], &rows[m],
                      &code)) {
            m++;
            continue;
        }
        if (code == RC_STORE_FAILED) {
            rc = STORE_EIO;
            break;
        }
        rejected++;
        if (code == RC_DUP_HISTORY)
            dups[n_dups++] = (int)i;
        else
            report_row(errors, (int)i, code, &truncated);
    }
    int64_t log_id = 0;
    if (rc == STORE_OK && m > 0)
        rc = store_ts_log_append(store, now_ms, pts, m, &log_id);
    if (rc != STORE_OK) {
        /* put the buffers and latest values back, newest change first */
        for (int i = m - 1; i >= 0; i--) {
            struct row *r = &rows[i];
            reading_buffer_remove(pts[i].key, pts[i].ts);
            if (!r->latest)
                continue;
            r->s->has_value = r->had_prev;
            r->s->value = r->prev;
            r->s->ts = r->prev_ts;
            r->s->seen_ms = r->prev_seen;
        }
        log_error("reading", "batch of %zu readings refused by the store (rc %d)", n, rc);
        *why = "store unavailable";
        json_decref(errors);
        goto out;
    }
    /* after the checks' errors: the history duplicates and late rows, in
     * row order (docs/protocol.md) */
    for (int i = 0, d = 0; i < m || d < n_dups;) {
        if (d < n_dups && (i == m || dups[d] < rows[i].index)) {
            report_row(errors, dups[d++], RC_DUPLICATE, &truncated);
            continue;
        }
        reading_buffer_logged(pts[i].key, log_id);
        if (!rows[i].latest) {
            late++;
            report_row(errors, rows[i].index, RC_OUT_OF_ORDER, &truncated);
        }
        i++;
    }
    /* The listeners see each new latest in turn: the sensor shows that
     * reading while they run; the last one of each sensor stays. */
    for (int i = 0; i < m; i++) {
        struct row *r = &rows[i];
        if (!r->latest)
            continue;
        r->s->value = pts[i].value;
        r->s->ts = pts[i].ts;
        r->s->seen_ms = pts[i].seen;
        r->s->ingested_here = true;
        r->s->remote_node = NULL;
        sensor_table_fire_reading(r->s, r->had_prev, r->prev);
    }
    int accepted = (int)n - rejected;
    stats.accepted += (uint64_t)accepted;
    stats.rejected += (uint64_t)rejected;
    stats.late += (uint64_t)late;
    stats.batches++;
    hist_observe(&stats.batch_latency, mono_s() - t0);
    *report = json_pack("{s:i, s:i, s:i, s:o}", "accepted", accepted, "rejected", rejected, "late",
                        late, "errors", errors);
    if (truncated)
        json_object_set_new(*report, "errors_truncated", json_true());
out:
    g_free(pts);
    g_free(rows);
    g_free(dups);
    return rc == STORE_OK ? ERR_NONE : ERR_UNAVAILABLE;
}

enum err_code reading_ingest(const char *enterprise, const json_t *body, int64_t now_ms,
                             json_t **report, const char **why)
{
    return ingest(enterprise, body, now_ms, NULL, report, why);
}

/* ------------------------------------------------------------ read ahead */

/* A batch whose reads are made ahead, where the store reads later: the
 * sensors not known here yet, then which of its late points are in
 * stored chunks. The batches of one enterprise are taken in the order
 * they came (a gateway's rows build on each other): each waits behind
 * the one reading ahead. */
enum stage { TO_POLL, POLLING, TO_LOOK, LOOKING, READY, FAILED };

struct pending {
    char *queue; /* its enterprise, "" for any */
    char *enterprise;
    json_t *body;
    int64_t now_ms;
    reading_ingest_cb cb;
    void *ud;
    enum stage stage;
    GArray *asked; /* struct store_ts_point: the late points looked up */
    struct prep prep;
};

static GHashTable *queues; /* enterprise -> GQueue of struct pending* */
/* Batches of one enterprise that may wait behind the one reading ahead
 * (each holds its body): more are refused busy, to be sent again. */
#define QUEUE_MAX 64

static void advance(const char *queue);

static void on_ahead_polled(void *ud)
{
    struct pending *p = ud;
    p->stage = TO_LOOK;
    advance(p->queue);
}

static void on_ahead_looked(int rc, const struct store_docs *d, void *ud)
{
    struct pending *p = ud;
    p->stage = rc == STORE_OK ? READY : FAILED;
    for (int i = 0; rc == STORE_OK && i < d->n; i++) {
        guint at = (guint)g_ascii_strtoull(d->ids[i], NULL, 10);
        if (at < p->asked->len) {
            const struct store_ts_point *pt = &g_array_index(p->asked, struct store_ts_point, at);
            g_hash_table_add(p->prep.stored, point_name(pt->key, pt->ts));
        }
    }
    advance(p->queue);
}

/* Sends the look-up of p's late points (older than their sensor's latest
 * now); false if there are none or it could not be sent (FAILED). */
static bool look_up(struct pending *p)
{
    const json_t *list = json_object_get(p->body, "readings");
    p->asked = g_array_new(FALSE, FALSE, sizeof(struct store_ts_point));
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *item = json_array_get(list, i);
        const json_t *ts = json_object_get(item, "ts");
        const struct sensor *s = sensor_table_get(jx_str(item, "sensor"));
        if (s && s->has_value && json_is_integer(ts) && json_integer_value(ts) < s->ts) {
            struct store_ts_point pt = {s->ts_key, json_integer_value(ts), 0, 0};
            g_array_append_val(p->asked, pt);
        }
    }
    p->prep.stored = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (p->asked->len == 0)
        return false;
    if (store_ts_has_later(store, (const struct store_ts_point *)(void *)p->asked->data,
                           (int)p->asked->len, on_ahead_looked, p) == STORE_OK)
        return true;
    p->stage = FAILED;
    return false;
}

/* Ingests p (its reads made) and tells its caller. */
static void finish(struct pending *p)
{
    json_t *report = NULL;
    const char *why = "store unavailable";
    enum err_code e = ERR_UNAVAILABLE;
    if (p->stage == READY && store)
        e = ingest(p->enterprise, p->body, p->now_ms, &p->prep, &report, &why);
    p->cb(e, report, e == ERR_NONE ? NULL : why, p->ud);
    json_decref(report);
    g_free(p->queue);
    g_free(p->enterprise);
    json_decref(p->body);
    if (p->asked)
        g_array_free(p->asked, TRUE);
    if (p->prep.stored)
        g_hash_table_destroy(p->prep.stored);
    g_free(p);
}

/* Takes the batches of queue that are ready, in order, and starts the
 * reads of the first that is not. */
static void advance(const char *queue)
{
    char *name = g_strdup(queue);
    GQueue *q;
    struct pending *p;
    while (queues && (q = g_hash_table_lookup(queues, name)) && (p = g_queue_peek_head(q))) {
        if (p->stage == TO_POLL) {
            p->stage = TO_LOOK;
            if (store && names_unknown(json_object_get(p->body, "readings")) &&
                sensor_poll_later(on_ahead_polled, p)) {
                p->stage = POLLING;
                break;
            }
        }
        if (p->stage == TO_LOOK) {
            p->stage = READY;
            if (store && look_up(p)) {
                p->stage = LOOKING;
                break;
            }
        }
        if (p->stage == POLLING || p->stage == LOOKING)
            break;
        g_queue_pop_head(q);
        if (g_queue_is_empty(q))
            g_hash_table_remove(queues, name); /* before the caller may add to it */
        finish(p);
    }
    g_free(name);
}

void reading_ingest_later(const char *enterprise, const json_t *body, int64_t now_ms,
                          reading_ingest_cb cb, void *ud)
{
    enum err_code e = ERR_NONE;
    const char *why = NULL;
    if (!store || !store_reads_later(store) || !rows_of(body, &e, &why)) {
        json_t *report = NULL;
        if (e == ERR_NONE)
            e = ingest(enterprise, body, now_ms, NULL, &report, &why);
        cb(e, report, e == ERR_NONE ? NULL : why, ud);
        json_decref(report);
        return;
    }
    GQueue *q = queues ? g_hash_table_lookup(queues, enterprise ? enterprise : "") : NULL;
    if (q && g_queue_get_length(q) >= QUEUE_MAX) {
        static int64_t warned_ms; /* a line a second at most */
        if (now_ms - warned_ms >= 1000) {
            warned_ms = now_ms;
            log_warn("reading", "enterprise=%s has %d batches waiting: more refused busy",
                     enterprise ? enterprise : "-", QUEUE_MAX);
        }
        cb(ERR_BUSY, NULL, "too many of this enterprise's batches waiting: send it again later",
           ud);
        return;
    }
    struct pending *p = g_new0(struct pending, 1);
    p->queue = g_strdup(enterprise ? enterprise : "");
    p->enterprise = g_strdup(enterprise);
    p->body = json_incref((json_t *)body);
    p->now_ms = now_ms;
    p->cb = cb;
    p->ud = ud;
    p->stage = TO_POLL;
    if (!queues)
        queues =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_queue_free);
    if (q) { /* behind a batch reading ahead */
        g_queue_push_tail(q, p);
        return;
    }
    q = g_queue_new();
    g_queue_push_tail(q, p);
    g_hash_table_insert(queues, g_strdup(p->queue), q);
    advance(p->queue);
}

/* History query state: raw points, or buckets being filled. */
struct history {
    json_t *points;
    int limit;
    int64_t from, step;
    int scanned, max_scan;
    bool truncated;
    int64_t next_from; /* where a truncated raw reply resumes */
    /* the open bucket */
    bool open;
    int64_t b_start;
    double b_min, b_max, b_sum;
    int64_t b_count;
};

static void close_bucket(struct history *h)
{
    if (!h->open)
        return;
    json_array_append_new(h->points, json_pack("{s:I, s:f, s:f, s:f, s:I}", "ts",
                                               (json_int_t)h->b_start, "min", h->b_min, "max",
                                               h->b_max, "avg", h->b_sum / (double)h->b_count,
                                               "count", (json_int_t)h->b_count));
    h->open = false;
}

static bool history_point(int64_t ts, double value, void *ud)
{
    struct history *h = ud;
    if (h->step <= 0) {
        if ((int)json_array_size(h->points) >= h->limit) {
            h->truncated = true;
            h->next_from = ts;
            return false;
        }
        json_array_append_new(h->points,
                              json_pack("{s:I, s:f}", "ts", (json_int_t)ts, "value", value));
        return true;
    }
    if (++h->scanned > h->max_scan) {
        h->truncated = true;
        h->next_from = ts;
        return false;
    }
    int64_t start = h->from + (ts - h->from) / h->step * h->step;
    if (h->open && start != h->b_start)
        close_bucket(h);
    if (!h->open) {
        h->open = true;
        h->b_start = start;
        h->b_min = h->b_max = value;
        h->b_sum = 0;
        h->b_count = 0;
    }
    h->b_min = MIN(h->b_min, value);
    h->b_max = MAX(h->b_max, value);
    h->b_sum += value;
    h->b_count++;
    return true;
}

static int cmp_sample(const void *a, const void *b)
{
    int64_t x = ((const struct store_ts_sample *)a)->ts,
            y = ((const struct store_ts_sample *)b)->ts;
    return x < y ? -1 : x > y;
}

/* Sorts the samples by ts and drops repeated ones. */
static void sort_unique(GArray *a)
{
    g_array_sort(a, cmp_sample);
    guint w = 0;
    for (guint i = 0; i < a->len; i++) {
        struct store_ts_sample *x = &g_array_index(a, struct store_ts_sample, i);
        if (w > 0 && g_array_index(a, struct store_ts_sample, w - 1).ts == x->ts)
            continue;
        g_array_index(a, struct store_ts_sample, w++) = *x;
    }
    g_array_set_size(a, w);
}

/* Gathers the chunks of one query: stops once the first `need` points
 * are known, i.e. at a chunk that starts after `need` gathered points
 * (chunks come in order of their first ts, so later ones cannot hold an
 * earlier point). */
struct gather {
    GArray *pts;
    int64_t from, to;
    guint need;
};

static bool gather_chunk(const struct store_ts_sample *pts, int n, void *ud)
{
    struct gather *g = ud;
    if (g->pts->len >= g->need) {
        sort_unique(g->pts);
        guint before = 0;
        while (before < g->pts->len &&
               g_array_index(g->pts, struct store_ts_sample, before).ts < pts[0].ts)
            before++;
        if (before >= g->need)
            return false;
    }
    for (int i = 0; i < n; i++)
        if (pts[i].ts >= g->from && pts[i].ts < g->to)
            g_array_append_val(g->pts, pts[i]);
    return true;
}

enum err_code reading_history(const struct sensor *s, int64_t from_ms, int64_t to_ms,
                              int64_t step_ms, int limit, int64_t now_ms, json_t **out,
                              const char **why)
{
    if (to_ms <= from_ms) {
        *why = "to must be after from";
        return ERR_BAD_REQUEST;
    }
    if (limit < 1 || limit > cfg.query_max_points)
        limit = cfg.query_max_points;
    if (step_ms > 0 && (to_ms - from_ms) / step_ms >= limit) {
        *why = "too many buckets: raise step or narrow from..to";
        return ERR_BAD_REQUEST;
    }
    struct history h = {.points = json_array(),
                        .limit = limit,
                        .from = from_ms,
                        .step = step_ms,
                        .max_scan = cfg.query_max_scan};
    int64_t cutoff = now_ms - (int64_t)cfg.retention_days * 86400000;
    struct gather g = {.pts = g_array_new(FALSE, FALSE, sizeof(struct store_ts_sample)),
                       .from = MAX(from_ms, cutoff),
                       .to = to_ms,
                       .need = (guint)(step_ms > 0 ? cfg.query_max_scan + 1 : limit + 1)};
    int rc = g.from < to_ms
                 ? store_ts_chunk_range(store, s->ts_key, g.from, to_ms, gather_chunk, &g)
                 : STORE_OK;
    if (rc != STORE_OK) {
        g_array_free(g.pts, TRUE);
        json_decref(h.points);
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
    if (g.from < to_ms)
        reading_buffer_range(s->ts_key, g.from, to_ms, g.pts);
    sort_unique(g.pts);
    for (guint i = 0; i < g.pts->len; i++) {
        const struct store_ts_sample *x = &g_array_index(g.pts, struct store_ts_sample, i);
        if (!history_point(x->ts, x->value, &h))
            break;
    }
    g_array_free(g.pts, TRUE);
    if (step_ms > 0 && h.truncated) {
        h.open = false; /* a partial bucket would mislead */
    }
    close_bucket(&h);
    *out = json_pack("{s:s, s:s, s:I, s:I, s:o}", "sensor", s->id, "unit", s->unit, "from",
                     (json_int_t)from_ms, "to", (json_int_t)to_ms, "points", h.points);
    if (step_ms > 0)
        json_object_set_new(*out, "step", json_integer(step_ms));
    if (h.truncated) {
        json_object_set_new(*out, "truncated", json_true());
        json_object_set_new(*out, "next_from", json_integer(h.next_from));
    }
    return ERR_NONE;
}

static void on_trimmed(int rc, int64_t deleted, void *ud)
{
    (void)ud;
    trimming = false;
    if (rc != STORE_OK)
        log_warn("reading", "retention trim failed; retrying next tick");
    else if (deleted)
        log_info("reading",
                 "retention: %" G_GINT64_FORMAT " chunks with no point newer than %d days deleted",
                 deleted, cfg.retention_days);
}

void reading_retention_tick(int64_t now_ms)
{
    if (!store || cfg.retention_days <= 0 || trimming)
        return;
    int64_t before = now_ms - (int64_t)cfg.retention_days * 86400000;
    /* without holding the loop for the answer where the store would */
    trimming = store_ts_chunk_trim_before_later(store, before, cfg.trim_per_tick, on_trimmed,
                                                NULL) == STORE_OK;
    if (!trimming)
        log_warn("reading", "retention trim failed; retrying next tick");
}
