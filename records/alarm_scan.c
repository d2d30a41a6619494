/* Interruption detection (数据中断): a bounded walk over the sensor table
 * (see alarm_scan() in alarm.h). Each call visits at most budget sensors
 * from a snapshot of their ids, so a tick's work is bounded however many
 * sensors there are; a new snapshot is taken when one is used up. */
#include "records/alarm.h"
#include "records/downtime.h"

#include "common/clock.h"
#include "common/log.h"

#include <glib.h>

static GPtrArray *pass;      /* sensor ids of the current pass */
static guint cursor;         /* next index in pass */
static GHashTable *baseline; /* sensor id -> first seen (ms) while it never reported */

static bool collect(const struct sensor *s, void *ud)
{
    g_ptr_array_add(ud, g_strdup(s->id));
    return true;
}

static void new_pass(void)
{
    if (pass)
        g_ptr_array_free(pass, TRUE);
    pass = g_ptr_array_new_with_free_func(g_free);
    sensor_foreach(collect, pass);
    cursor = 0;
}

/* The moment s's silence started: its last reading's arrival, or when the
 * scan first saw it if it never reported. */
static int64_t silent_since(const struct sensor *s, int64_t now)
{
    if (s->has_value && s->seen_ms > 0) {
        g_hash_table_remove(baseline, s->id);
        return s->seen_ms;
    }
    gpointer v = g_hash_table_lookup(baseline, s->id);
    if (v)
        return *(int64_t *)v;
    int64_t *t = g_new(int64_t, 1);
    *t = now;
    g_hash_table_insert(baseline, g_strdup(s->id), t);
    return now;
}

static void check(const struct sensor *s, int64_t now)
{
    if (!s->enabled || s->interrupt_after_ms <= 0 || !s->enterprise)
        return;
    int64_t since = silent_since(s, now);
    if (now - since <= s->interrupt_after_ms)
        return;
    if (downtime_covering(s->enterprise, s->id, now))
        return;
    alarm_interrupted(s, downtime_overrun(s->enterprise, s->id, since, now), now);
}

/* A sensor configured (put) without a reading starts its silence now; a
 * deleted one is forgotten. */
static void on_sensor_changed(const struct sensor *s, bool deleted, void *ud)
{
    (void)ud;
    if (!baseline)
        return;
    if (deleted || s->has_value) {
        g_hash_table_remove(baseline, s->id);
    } else if (!g_hash_table_contains(baseline, s->id)) {
        int64_t *t = g_new(int64_t, 1);
        *t = clock_now_ms();
        g_hash_table_insert(baseline, g_strdup(s->id), t);
    }
}

void alarm_scan_init(void)
{
    if (!baseline)
        baseline = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    sensor_on_changed(on_sensor_changed, NULL);
}

int alarm_scan(int64_t now_ms, int budget)
{
    if (!baseline)
        return 0; /* not started */
    if (budget <= 0 || !pass || cursor >= pass->len)
        new_pass();
    int visited = 0;
    guint limit = budget > 0 ? (guint)budget : pass->len;
    while (cursor < pass->len && (guint)visited < limit) {
        const struct sensor *s = sensor_get(g_ptr_array_index(pass, cursor));
        cursor++;
        visited++;
        if (s)
            check(s, now_ms);
    }
    return visited;
}

void alarm_scan_shutdown(void)
{
    if (pass)
        g_ptr_array_free(pass, TRUE);
    pass = NULL;
    cursor = 0;
    g_clear_pointer(&baseline, g_hash_table_destroy);
}
