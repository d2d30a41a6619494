/* Time series in the SQLite store: sensor readings.
 *
 * Three tables. ts_log holds each accepted batch as one row: an
 * autoincrement id (never reused, even once the log is empty), the
 * server time and the points packed as 24-byte records (key, ts, value,
 * little-endian), so that acknowledging a batch of 1,000 readings appends
 * a few sequential pages instead of updating 1,000 places of a B-tree.
 * ts_chunks holds each key's points in chunks written by the readings
 * flusher: (key, first ts, last ts, count, points packed as 16-byte
 * (ts, value) records), indexed by (key, last ts) for range queries and
 * by last ts alone for the retention trim. ts_latest keeps one row per key
 * with its latest point and log_upto, the log id up to which the key's
 * points are all in chunks, so that a restart reads one row per sensor
 * and replays only the log rows that matter.
 *
 * Stores written before the log existed are upgraded on open: log_upto is
 * added to ts_latest, and the old per-point table ts_points is copied into
 * chunks (CHUNK_UPGRADE points each) and dropped. */
#include "records/store_pack.h"
#include "records/store_sqlite.h"

#include <math.h>
#include <string.h>

const char sqls_ts_schema[] =
    "CREATE TABLE IF NOT EXISTS ts_log(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " seen INTEGER NOT NULL, points BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ts_chunks(id INTEGER PRIMARY KEY, key INTEGER NOT NULL,"
    " first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, count INTEGER NOT NULL,"
    " points BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS ts_chunks_key ON ts_chunks(key, last_ts);"
    "CREATE INDEX IF NOT EXISTS ts_chunks_last ON ts_chunks(last_ts);"
    "CREATE TABLE IF NOT EXISTS ts_latest(key INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
    " value REAL NOT NULL, seen INTEGER NOT NULL, log_upto INTEGER NOT NULL DEFAULT 0);";

#define LOG_REC 24
#define CHUNK_REC 16
#define CHUNK_UPGRADE 256

static struct sqlite_store *S(struct store *st)
{
    return (struct sqlite_store *)st;
}

int sqls_ts_log_append(struct store *st, int64_t seen, const struct store_ts_point *pts, int n,
                       int64_t *id_out)
{
    struct sqlite_store *s = S(st);
    unsigned char *blob = g_malloc((size_t)n * LOG_REC + 1);
    for (int i = 0; i < n; i++) {
        if (!isfinite(pts[i].value)) {
            g_free(blob);
            return STORE_EINVAL;
        }
        unsigned char *p = blob + (size_t)i * LOG_REC;
        put_u64(p, (uint64_t)pts[i].key);
        put_u64(p + 8, (uint64_t)pts[i].ts);
        put_u64(p + 16, dbits(pts[i].value));
    }
    int rc = STORE_EIO;
    if (sqls_batch_open(s) != STORE_OK)
        goto out;
    sqlite3_stmt *q = sqls_prep(s, "INSERT INTO ts_log(seen, points) VALUES(?1, ?2)");
    if (!q)
        goto out;
    sqlite3_bind_int64(q, 1, seen);
    sqlite3_bind_blob(q, 2, blob, n * LOG_REC, SQLITE_STATIC);
    rc = sqls_step_done(q);
    sqlite3_clear_bindings(q);
    if (rc == STORE_OK && id_out)
        *id_out = sqlite3_last_insert_rowid(s->db);
out:
    g_free(blob);
    return rc;
}

int sqls_ts_log_each(struct store *st, int64_t after_id, store_ts_log_cb cb, void *ud)
{
    sqlite3_stmt *q =
        sqls_prep(S(st), "SELECT id, seen, points FROM ts_log WHERE id>?1 ORDER BY id");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, after_id);
    GArray *pts = g_array_new(FALSE, FALSE, sizeof(struct store_ts_point));
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t seen = sqlite3_column_int64(q, 1);
        const unsigned char *b = sqlite3_column_blob(q, 2);
        int len = sqlite3_column_bytes(q, 2);
        if (len % LOG_REC != 0) {
            rc = SQLITE_CORRUPT;
            break;
        }
        g_array_set_size(pts, 0);
        for (int i = 0; i < len / LOG_REC; i++) {
            const unsigned char *p = b + (size_t)i * LOG_REC;
            struct store_ts_point pt = {(int64_t)get_u64(p), (int64_t)get_u64(p + 8),
                                        bitsd(get_u64(p + 16)), seen};
            g_array_append_val(pts, pt);
        }
        if (!cb(sqlite3_column_int64(q, 0), seen, (struct store_ts_point *)(void *)pts->data,
                (int)pts->len, ud)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    g_array_free(pts, TRUE);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

int sqls_ts_log_trim(struct store *st, int64_t upto_id)
{
    struct sqlite_store *s = S(st);
    if (sqls_batch_open(s) != STORE_OK)
        return STORE_EIO;
    sqlite3_stmt *q = sqls_prep(s, "DELETE FROM ts_log WHERE id<=?1");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, upto_id);
    return sqls_step_done(q);
}

/* Inserts one chunk and (when latest is given) upserts the latest row. */
static int chunk_rows(struct sqlite_store *s, int64_t key, const struct store_ts_sample *pts, int n,
                      const struct store_ts_point *latest, int64_t log_upto)
{
    unsigned char *blob = g_malloc((size_t)n * CHUNK_REC);
    for (int i = 0; i < n; i++) {
        if (!isfinite(pts[i].value) || (i > 0 && pts[i].ts <= pts[i - 1].ts)) {
            g_free(blob);
            return STORE_EINVAL;
        }
        put_u64(blob + (size_t)i * CHUNK_REC, (uint64_t)pts[i].ts);
        put_u64(blob + (size_t)i * CHUNK_REC + 8, dbits(pts[i].value));
    }
    int rc = STORE_EIO;
    sqlite3_stmt *q = sqls_prep(s, "INSERT INTO ts_chunks(key, first_ts, last_ts, count, points)"
                                   " VALUES(?1, ?2, ?3, ?4, ?5)");
    if (q) {
        sqlite3_bind_int64(q, 1, key);
        sqlite3_bind_int64(q, 2, pts[0].ts);
        sqlite3_bind_int64(q, 3, pts[n - 1].ts);
        sqlite3_bind_int(q, 4, n);
        sqlite3_bind_blob(q, 5, blob, n * CHUNK_REC, SQLITE_STATIC);
        rc = sqls_step_done(q);
        sqlite3_clear_bindings(q);
    }
    g_free(blob);
    if (rc != STORE_OK || !latest)
        return rc;
    if (!isfinite(latest->value))
        return STORE_EINVAL;
    sqlite3_stmt *up = sqls_prep(s, "INSERT INTO ts_latest(key, ts, value, seen, log_upto)"
                                    " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE"
                                    " SET ts=?2, value=?3, seen=?4, log_upto=?5");
    if (!up)
        return STORE_EIO;
    sqlite3_bind_int64(up, 1, key);
    sqlite3_bind_int64(up, 2, latest->ts);
    sqlite3_bind_double(up, 3, latest->value);
    sqlite3_bind_int64(up, 4, latest->seen);
    sqlite3_bind_int64(up, 5, log_upto);
    return sqls_step_done(up);
}

int sqls_ts_chunk_put(struct store *st, int64_t key, const struct store_ts_sample *pts, int n,
                      const struct store_ts_point *latest, int64_t log_upto)
{
    struct sqlite_store *s = S(st);
    if (sqls_begin(s) != STORE_OK)
        return STORE_EIO;
    return sqls_finish(s, chunk_rows(s, key, pts, n, latest, log_upto));
}

int sqls_ts_chunk_range(struct store *st, int64_t key, int64_t from_ms, int64_t to_ms,
                        store_ts_chunk_cb cb, void *ud)
{
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT points FROM ts_chunks WHERE key=?1 AND last_ts>=?2"
                                       " AND first_ts<?3 ORDER BY first_ts, id");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, key);
    sqlite3_bind_int64(q, 2, from_ms);
    sqlite3_bind_int64(q, 3, to_ms);
    GArray *pts = g_array_new(FALSE, FALSE, sizeof(struct store_ts_sample));
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_blob(q, 0);
        int len = sqlite3_column_bytes(q, 0);
        if (len == 0 || len % CHUNK_REC != 0) {
            rc = SQLITE_CORRUPT;
            break;
        }
        g_array_set_size(pts, 0);
        for (int i = 0; i < len / CHUNK_REC; i++) {
            const unsigned char *p = b + (size_t)i * CHUNK_REC;
            struct store_ts_sample x = {(int64_t)get_u64(p), bitsd(get_u64(p + 8))};
            g_array_append_val(pts, x);
        }
        if (!cb((struct store_ts_sample *)(void *)pts->data, (int)pts->len, ud)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    g_array_free(pts, TRUE);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

int sqls_ts_chunk_trim_before(struct store *st, int64_t before_ms, int limit, int64_t *deleted)
{
    struct sqlite_store *s = S(st);
    if (sqls_batch_open(s) != STORE_OK)
        return STORE_EIO;
    sqlite3_stmt *q = sqls_prep(s, "DELETE FROM ts_chunks WHERE id IN (SELECT id FROM ts_chunks"
                                   " WHERE last_ts<?1 ORDER BY last_ts LIMIT ?2)");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, before_ms);
    sqlite3_bind_int(q, 2, limit);
    int rc = sqls_step_done(q);
    if (rc == STORE_OK && deleted)
        *deleted = sqlite3_changes(s->db);
    return rc;
}

int sqls_ts_drop(struct store *st, int64_t key)
{
    struct sqlite_store *s = S(st);
    if (sqls_begin(s) != STORE_OK)
        return STORE_EIO;
    int rc = STORE_EIO;
    sqlite3_stmt *a = sqls_prep(s, "DELETE FROM ts_chunks WHERE key=?1");
    if (a) {
        sqlite3_bind_int64(a, 1, key);
        rc = sqls_step_done(a);
    }
    sqlite3_stmt *b = rc == STORE_OK ? sqls_prep(s, "DELETE FROM ts_latest WHERE key=?1") : NULL;
    if (b) {
        sqlite3_bind_int64(b, 1, key);
        rc = sqls_step_done(b);
    } else {
        rc = STORE_EIO;
    }
    return sqls_finish(s, rc);
}

int sqls_ts_latest_each(struct store *st, store_ts_latest_cb cb, void *ud)
{
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT key, ts, value, seen, log_upto FROM ts_latest");
    if (!q)
        return STORE_EIO;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct store_ts_point p = {sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
                                   sqlite3_column_double(q, 2), sqlite3_column_int64(q, 3)};
        if (!cb(&p, sqlite3_column_int64(q, 4), ud)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

static bool has_column(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    bool ok = sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK;
    sqlite3_finalize(q);
    return ok;
}

/* Copies the old per-point table into chunks of up to CHUNK_UPGRADE
 * points of one key, inside the caller's transaction. */
static int upgrade_points(struct sqlite_store *s)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT key, ts, value FROM ts_points ORDER BY key, ts", -1, &q,
                           NULL) != SQLITE_OK)
        return STORE_EIO;
    struct store_ts_sample buf[CHUNK_UPGRADE];
    int n = 0, rc = STORE_OK, step;
    int64_t key = 0;
    while (rc == STORE_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(q, 0);
        if (n > 0 && (k != key || n == CHUNK_UPGRADE)) {
            rc = chunk_rows(s, key, buf, n, NULL, 0);
            n = 0;
        }
        key = k;
        buf[n++] =
            (struct store_ts_sample){sqlite3_column_int64(q, 1), sqlite3_column_double(q, 2)};
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = STORE_EIO;
    if (rc == STORE_OK && n > 0)
        rc = chunk_rows(s, key, buf, n, NULL, 0);
    sqlite3_finalize(q);
    if (rc == STORE_OK &&
        sqlite3_exec(s->db, "DROP TABLE ts_points", NULL, NULL, NULL) != SQLITE_OK)
        rc = STORE_EIO;
    return rc;
}

int sqls_ts_upgrade(struct sqlite_store *s)
{
    if (!has_column(s->db, "SELECT log_upto FROM ts_latest LIMIT 0") &&
        sqlite3_exec(s->db, "ALTER TABLE ts_latest ADD COLUMN log_upto INTEGER NOT NULL DEFAULT 0",
                     NULL, NULL, NULL) != SQLITE_OK)
        return STORE_EIO;
    if (!has_column(s->db, "SELECT key FROM ts_points LIMIT 0"))
        return STORE_OK;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return STORE_EIO;
    int rc = upgrade_points(s);
    if (sqlite3_exec(s->db, rc == STORE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        rc = STORE_EIO;
    return rc;
}
