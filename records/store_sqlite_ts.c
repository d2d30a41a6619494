/* Time series in the SQLite store: sensor readings.
 *
 * History is one compact table keyed by (integer series key, ts), without
 * rowid, so a point costs three integers' worth of B-tree row and a range
 * query for one key is one index walk. The latest point of every key sits
 * in a second small table, upserted per batch only for the keys whose
 * latest changed, so a restart reads 1 row per sensor instead of scanning
 * the history. A batch of points is one savepoint with one prepared
 * statement reused for every row. */
#include "records/store_sqlite.h"

#include <math.h>

const char sqls_ts_schema[] =
    "CREATE TABLE IF NOT EXISTS ts_points(key INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " value REAL NOT NULL, PRIMARY KEY(key, ts)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS ts_latest(key INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
    " value REAL NOT NULL, seen INTEGER NOT NULL);";

static struct sqlite_store *S(struct store *st)
{
    return (struct sqlite_store *)st;
}

/* Inserts the points (skipping those whose (key, ts) exists) and upserts
 * the latest ones, inside one write. */
static int write_rows(struct sqlite_store *s, const struct store_ts_point *pts, int n,
                      bool *inserted, const struct store_ts_point *latest, int n_latest)
{
    sqlite3_stmt *ins =
        sqls_prep(s, "INSERT OR IGNORE INTO ts_points(key, ts, value) VALUES(?1, ?2, ?3)");
    if (!ins)
        return STORE_EIO;
    for (int i = 0; i < n; i++) {
        if (!isfinite(pts[i].value))
            return STORE_EINVAL;
        sqlite3_bind_int64(ins, 1, pts[i].key);
        sqlite3_bind_int64(ins, 2, pts[i].ts);
        sqlite3_bind_double(ins, 3, pts[i].value);
        int rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE)
            return STORE_EIO;
        if (inserted)
            inserted[i] = sqlite3_changes(s->db) > 0;
    }
    if (n_latest == 0)
        return STORE_OK;
    sqlite3_stmt *up = sqls_prep(s, "INSERT INTO ts_latest(key, ts, value, seen)"
                                    " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE"
                                    " SET ts=?2, value=?3, seen=?4");
    if (!up)
        return STORE_EIO;
    for (int i = 0; i < n_latest; i++) {
        if (!isfinite(latest[i].value))
            return STORE_EINVAL;
        sqlite3_bind_int64(up, 1, latest[i].key);
        sqlite3_bind_int64(up, 2, latest[i].ts);
        sqlite3_bind_double(up, 3, latest[i].value);
        sqlite3_bind_int64(up, 4, latest[i].seen);
        int rc = sqlite3_step(up);
        sqlite3_reset(up);
        if (rc != SQLITE_DONE)
            return STORE_EIO;
    }
    return STORE_OK;
}

int sqls_ts_write(struct store *st, const struct store_ts_point *pts, int n, bool *inserted,
                  const struct store_ts_point *latest, int n_latest)
{
    struct sqlite_store *s = S(st);
    if (n == 0 && n_latest == 0)
        return STORE_OK;
    if (sqls_begin(s) != STORE_OK)
        return STORE_EIO;
    return sqls_finish(s, write_rows(s, pts, n, inserted, latest, n_latest));
}

int sqls_ts_range(struct store *st, int64_t key, int64_t from_ms, int64_t to_ms, int limit,
                  store_ts_cb cb, void *ud)
{
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT ts, value FROM ts_points WHERE key=?1 AND ts>=?2"
                                       " AND ts<?3 ORDER BY ts LIMIT ?4");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, key);
    sqlite3_bind_int64(q, 2, from_ms);
    sqlite3_bind_int64(q, 3, to_ms);
    sqlite3_bind_int(q, 4, limit);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (!cb(sqlite3_column_int64(q, 0), sqlite3_column_double(q, 1), ud)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}

int sqls_ts_trim_before(struct store *st, int64_t key, int64_t before_ms, int64_t *deleted)
{
    struct sqlite_store *s = S(st);
    if (sqls_batch_open(s) != STORE_OK)
        return STORE_EIO;
    sqlite3_stmt *q = sqls_prep(s, "DELETE FROM ts_points WHERE key=?1 AND ts<?2");
    if (!q)
        return STORE_EIO;
    sqlite3_bind_int64(q, 1, key);
    sqlite3_bind_int64(q, 2, before_ms);
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
    sqlite3_stmt *a = sqls_prep(s, "DELETE FROM ts_points WHERE key=?1");
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
    sqlite3_stmt *q = sqls_prep(S(st), "SELECT key, ts, value, seen FROM ts_latest");
    if (!q)
        return STORE_EIO;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct store_ts_point p = {sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
                                   sqlite3_column_double(q, 2), sqlite3_column_int64(q, 3)};
        if (!cb(&p, ud)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : STORE_EIO;
}
