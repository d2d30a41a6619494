/* Readings (see reading.h): the ingestion path, history queries and the
 * retention trim.
 *
 * Ingestion is built for batches of thousands: one pass over the parsed
 * rows with no per-row allocation (the batch's arrays are allocated once),
 * one store write for the whole batch (history points plus the new latest
 * point of each sensor that changed), then the listeners. The in-memory
 * latest values move during the first pass, so that several rows of one
 * sensor in a batch are ordered against each other; if the store refuses
 * the batch they are put back as they were.
 *
 * Row rules (docs/protocol.md): a row newer than its sensor's latest
 * becomes the latest; a row with the latest's own ts is a duplicate and
 * is dropped; an older row is late data: stored in the history (unless that
 * exact (sensor, ts) is stored already: duplicate) but never the latest,
 * and reported as out_of_order. */
#include "records/reading.h"

#include "common/log.h"
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
static GArray *trim_keys; /* the ts_keys of the current retention round */
static guint trim_pos;

void reading_init(struct store *st, const struct reading_config *c)
{
    store = st;
    cfg = *c;
    memset(&stats, 0, sizeof(stats));
}

void reading_shutdown(void)
{
    if (trim_keys)
        g_array_free(trim_keys, TRUE);
    trim_keys = NULL;
    trim_pos = 0;
    store = NULL;
}

const struct reading_stats *reading_stats(void)
{
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

/* Checks one row; on success fills r and the point, else *code. */
static bool check_row(const json_t *item, const char *enterprise, int64_t now_ms,
                      struct store_ts_point *pt, struct row *r, enum row_code *code)
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

enum err_code reading_ingest(const char *enterprise, const json_t *body, int64_t now_ms,
                             json_t **report, const char **why)
{
    json_t *list = json_object_get(body, "readings");
    if (!json_is_array(list)) {
        *why = "readings must be an array of {sensor, value, ts}";
        return ERR_BAD_REQUEST;
    }
    size_t n = json_array_size(list);
    if (n > (size_t)cfg.max_rows) {
        *why = "too many readings in one request";
        return ERR_TOO_LARGE;
    }
    double t0 = mono_s();
    struct store_ts_point *pts = g_new(struct store_ts_point, n + 1);
    struct store_ts_point *latest = g_new(struct store_ts_point, n + 1);
    struct row *rows = g_new(struct row, n + 1);
    bool *inserted = g_new(bool, n + 1);
    json_t *errors = json_array();
    bool truncated = false;
    int m = 0, n_latest = 0, rejected = 0, late = 0;
    for (size_t i = 0; i < n; i++) {
        enum row_code code;
        rows[m].index = (int)i;
        if (check_row(json_array_get(list, i), enterprise, now_ms, &pts[m], &rows[m], &code)) {
            m++;
            continue;
        }
        rejected++;
        report_row(errors, (int)i, code, &truncated);
    }
    for (int i = 0; i < m; i++)
        if (rows[i].latest && rows[i].s->ts == pts[i].ts)
            latest[n_latest++] = pts[i];
    int rc = store_ts_write(store, pts, m, inserted, latest, n_latest);
    if (rc != STORE_OK) {
        /* put the latest values back, newest change first */
        for (int i = m - 1; i >= 0; i--) {
            struct row *r = &rows[i];
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
    for (int i = 0; i < m; i++) {
        struct row *r = &rows[i];
        if (!inserted[i]) {
            rejected++;
            report_row(errors, r->index, RC_DUPLICATE, &truncated);
        } else if (!r->latest) {
            late++;
            report_row(errors, r->index, RC_OUT_OF_ORDER, &truncated);
        }
    }
    /* The listeners see each new latest in turn: the sensor shows that
     * reading while they run; the last one of each sensor stays. */
    for (int i = 0; i < m; i++) {
        struct row *r = &rows[i];
        if (!r->latest || !inserted[i])
            continue;
        r->s->value = pts[i].value;
        r->s->ts = pts[i].ts;
        r->s->seen_ms = pts[i].seen;
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
    g_free(latest);
    g_free(rows);
    g_free(inserted);
    return rc == STORE_OK ? ERR_NONE : ERR_UNAVAILABLE;
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

enum err_code reading_history(const struct sensor *s, int64_t from_ms, int64_t to_ms,
                              int64_t step_ms, int limit, json_t **out, const char **why)
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
    int rc = store_ts_range(store, s->ts_key, from_ms, to_ms,
                            step_ms > 0 ? cfg.query_max_scan + 1 : limit + 1, history_point, &h);
    if (rc != STORE_OK) {
        json_decref(h.points);
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
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

static bool collect_key(const struct sensor *s, void *ud)
{
    g_array_append_val((GArray *)ud, s->ts_key);
    return true;
}

/* Points one retention tick deletes at most, and the span of one delete:
 * a sensor with a long backlog (after retention_days was lowered) is
 * trimmed an hour of its history at a time, over as many ticks as it
 * takes, so that no tick stalls the event loop. */
#define TRIM_POINTS_PER_TICK 100000
#define TRIM_SLICE_MS (3600 * (int64_t)1000)

static bool first_point(int64_t ts, double value, void *ud)
{
    (void)value;
    *(int64_t *)ud = ts;
    return false;
}

int64_t reading_retention_tick(int64_t now_ms)
{
    if (!store || cfg.retention_days <= 0)
        return 0;
    if (!trim_keys || trim_pos >= trim_keys->len) {
        if (trim_keys)
            g_array_free(trim_keys, TRUE);
        trim_keys = g_array_new(FALSE, FALSE, sizeof(int64_t));
        sensor_foreach(collect_key, trim_keys);
        trim_pos = 0;
    }
    int64_t before = now_ms - (int64_t)cfg.retention_days * 86400000;
    int64_t total = 0;
    int sensors = 0;
    while (sensors < cfg.trim_per_tick && total < TRIM_POINTS_PER_TICK &&
           trim_pos < trim_keys->len) {
        int64_t key = g_array_index(trim_keys, int64_t, trim_pos);
        int64_t oldest = INT64_MAX, deleted = 0;
        if (store_ts_range(store, key, INT64_MIN, before, 1, first_point, &oldest) != STORE_OK)
            goto failed;
        int64_t upto = oldest == INT64_MAX || oldest > before - TRIM_SLICE_MS
                           ? before
                           : oldest + TRIM_SLICE_MS;
        if (oldest != INT64_MAX && store_ts_trim_before(store, key, upto, &deleted) != STORE_OK)
            goto failed;
        total += deleted;
        if (upto >= before) { /* this sensor is done; else its next hour next */
            trim_pos++;
            sensors++;
        }
    }
    if (total)
        log_info("reading", "retention: %" G_GINT64_FORMAT " points older than %d days trimmed",
                 total, cfg.retention_days);
    return total;
failed:
    log_warn("reading", "retention trim failed; retrying next tick");
    return total;
}
