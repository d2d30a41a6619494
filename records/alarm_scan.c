/* Interruption detection (数据中断): a bounded walk over the sensors (see
 * alarm_scan() in alarm.h).
 *
 * The scan keeps its own list of sensor ids, filled once at start from the
 * sensor table and then kept by a sensor_on_changed listener (appended on
 * put, swap-removed on delete), and walks it with a cursor that wraps
 * around. Each call visits at most budget sensors, so a tick's work is
 * bounded however many sensors there are, and no tick ever copies the
 * whole table. A sensor that never reported starts its silence when it is
 * configured (or, for those loaded at start, when the server started). */
#include "records/alarm.h"
#include "records/downtime.h"

#include "common/clock.h"
#include "common/log.h"

#include <glib.h>

static GPtrArray *ids;       /* sensor ids (owned), in no particular order */
static GHashTable *pos;      /* id (borrowed from ids) -> index + 1 */
static guint cursor;         /* next index in ids */
static GHashTable *baseline; /* sensor id -> start of silence (ms) while it never reported */
static bool (*mine_fn)(const char *sensor, void *ud);
static void *mine_ud;

void alarm_set_owner_filter(bool (*mine)(const char *sensor, void *ud), void *ud)
{
    mine_fn = mine;
    mine_ud = ud;
}

bool alarm_sensor_is_mine(const char *sensor)
{
    return !mine_fn || mine_fn(sensor, mine_ud);
}

static void track(const char *id)
{
    if (g_hash_table_contains(pos, id))
        return;
    char *own = g_strdup(id);
    g_ptr_array_add(ids, own);
    g_hash_table_insert(pos, own, GUINT_TO_POINTER(ids->len));
}

static void untrack(const char *id)
{
    guint i = GPOINTER_TO_UINT(g_hash_table_lookup(pos, id));
    if (!i--)
        return;
    g_hash_table_remove(pos, id);
    char *gone = g_ptr_array_index(ids, i);
    guint last = ids->len - 1;
    if (i != last) { /* the last id takes the freed slot */
        char *moved = g_ptr_array_index(ids, last);
        ids->pdata[i] = moved;
        g_hash_table_insert(pos, moved, GUINT_TO_POINTER(i + 1));
    }
    ids->pdata[last] = gone;
    g_ptr_array_remove_index(ids, last); /* frees gone */
}

static void set_baseline(const char *id, int64_t ms)
{
    if (g_hash_table_contains(baseline, id))
        return;
    int64_t *t = g_new(int64_t, 1);
    *t = ms;
    g_hash_table_insert(baseline, g_strdup(id), t);
}

/* A sensor configured (put) without a reading starts its silence then (the
 * record's time, the same on every node, however late a node learns of
 * it); a deleted one is forgotten. */
static void on_sensor_changed(const struct sensor *s, bool deleted, void *ud)
{
    (void)ud;
    if (!ids)
        return;
    if (deleted) {
        g_hash_table_remove(baseline, s->id);
        untrack(s->id);
        return;
    }
    track(s->id);
    if (s->has_value)
        g_hash_table_remove(baseline, s->id);
    else
        set_baseline(s->id, s->updated_ms > 0 ? s->updated_ms : clock_now_ms());
}

static bool load_one(const struct sensor *s, void *ud)
{
    track(s->id);
    if (!s->has_value)
        set_baseline(s->id, *(int64_t *)ud);
    return true;
}

void alarm_scan_init(void)
{
    if (ids)
        return;
    ids = g_ptr_array_new_with_free_func(g_free);
    pos = g_hash_table_new(g_str_hash, g_str_equal);
    baseline = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    cursor = 0;
    int64_t now = clock_now_ms();
    sensor_foreach(load_one, &now);
    sensor_on_changed(on_sensor_changed, NULL);
    log_info("alarm", "interruption scan watches %u sensor(s)", ids->len);
}

/* The moment s's silence started: its last reading's arrival, or when it
 * was configured if it never reported. */
static int64_t silent_since(const struct sensor *s, int64_t now)
{
    if (s->has_value && s->seen_ms > 0) {
        g_hash_table_remove(baseline, s->id);
        return s->seen_ms;
    }
    int64_t *t = g_hash_table_lookup(baseline, s->id);
    if (t)
        return *t;
    set_baseline(s->id, now);
    return now;
}

static void check(const struct sensor *s, int64_t now)
{
    if (!s->enabled || s->interrupt_after_ms <= 0 || !s->enterprise)
        return;
    if (!alarm_sensor_is_mine(s->id))
        return;
    int64_t since = silent_since(s, now);
    if (now - since <= s->interrupt_after_ms)
        return;
    if (downtime_covering(s->enterprise, s->id, now))
        return;
    alarm_interrupted(s, downtime_overrun(s->enterprise, s->id, since, now), now);
}

int alarm_scan(int64_t now_ms, int budget)
{
    if (!ids || ids->len == 0)
        return 0;
    guint limit = budget > 0 && (guint)budget < ids->len ? (guint)budget : ids->len;
    if (budget <= 0)
        cursor = 0; /* a full pass, from the start */
    guint n = 0;
    unsigned open_before = alarm_open_count();
    for (; n < limit; n++) {
        if (cursor >= ids->len)
            cursor = 0;
        const struct sensor *s = sensor_get(g_ptr_array_index(ids, cursor));
        cursor++;
        if (s)
            check(s, now_ms);
        /* A mass outage (a whole site, thousands of sensors) raises its
         * alarms over several ticks, so that no tick holds the loop for
         * long: each raise is a store write and a push. */
        if (budget > 0 && alarm_open_count() - open_before >= ALARM_SCAN_RAISES_MAX) {
            n++;
            break;
        }
    }
    return (int)n;
}

void alarm_scan_shutdown(void)
{
    g_clear_pointer(&pos, g_hash_table_destroy);
    if (ids)
        g_ptr_array_free(ids, TRUE);
    ids = NULL;
    cursor = 0;
    g_clear_pointer(&baseline, g_hash_table_destroy);
    mine_fn = NULL;
    mine_ud = NULL;
}
