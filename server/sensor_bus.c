/* Sensors and alarms across the nodes of a cluster (see sensor_bus.h). */
#include "server/sensor_bus.h"

#include "common/jsonx.h"
#include "common/log.h"
#include "push/feed.h"
#include "records/alarm.h"
#include "records/sensor.h"
#include "server/bus.h"
#include "server/cluster.h"

#include <glib.h>
#include <jansson.h>
#include <string.h>

/* A "latest" message is lines of "SENSOR\tVALUE\tTS\tSEEN\n"; the readings
 * of one loop turn go as one message, cut at this size. */
#define LATEST_BATCH_BYTES (256 * 1024)
/* An alarm's JSON larger than this is not announced (none comes close). */
#define ALARM_BUS_TEXT_MAX (64 * 1024)

static struct bus_batch latest = {.type = "latest", .cut = LATEST_BATCH_BYTES};
static bool up;
/* Sensors this node does not know yet (registered a moment ago on another
 * node) whose readings another node takes: sensor id -> node id. Without
 * it, the first node would take their alarms for orphans and escalate
 * them too. Cleared when it grows past OWNERS_MAX. */
#define OWNERS_MAX 100000
static GHashTable *owners;

/* A reading taken here became its sensor's latest (its batch is stored). */
static void on_local_reading(const struct sensor *s, bool had_prev, double prev, void *ud)
{
    (void)had_prev;
    (void)prev;
    (void)ud;
    char value[G_ASCII_DTOSTR_BUF_SIZE];
    g_ascii_dtostr(value, sizeof(value), s->value);
    g_string_append_printf(bus_batch_buf(&latest),
                           "%s\t%s\t%" G_GINT64_FORMAT "\t%" G_GINT64_FORMAT "\n", s->id, value,
                           (gint64)s->ts, (gint64)s->seen_ms);
    bus_batch_added(&latest);
}

/* Parses one "SENSOR\tVALUE\tTS\tSEEN" line (NUL-terminated) and applies it. */
static void apply_line(char *line, const char *node)
{
    char *f[4];
    int n = 0;
    for (char *p = line; n < 4; n++) {
        f[n] = p;
        char *tab = strchr(p, '\t');
        if (!tab) {
            n++;
            break;
        }
        *tab = '\0';
        p = tab + 1;
    }
    if (n != 4 || !sensor_id_valid(f[0]))
        return;
    char *e1, *e2, *e3;
    double value = g_ascii_strtod(f[1], &e1);
    gint64 ts = g_ascii_strtoll(f[2], &e2, 10);
    gint64 seen = g_ascii_strtoll(f[3], &e3, 10);
    if (*e1 || *e2 || *e3 || e1 == f[1] || e2 == f[2] || e3 == f[3] || ts <= 0 || seen <= 0)
        return;
    if (!sensor_get(f[0])) {
        if (g_hash_table_size(owners) >= OWNERS_MAX)
            g_hash_table_remove_all(owners);
        g_hash_table_replace(owners, g_strdup(f[0]), g_strdup(node));
    }
    sensor_apply_remote(f[0], value, ts, seen, node);
}

static void on_bus_latest(const char *node, const char *user, const char *data, size_t len,
                          void *ud)
{
    (void)user;
    (void)ud;
    char *copy = g_strndup(data, len);
    char *p = copy;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (!nl)
            break; /* a cut line: ignored */
        *nl = '\0';
        apply_line(p, node);
        p = nl + 1;
    }
    g_free(copy);
}

/* An alarm stored here changed: the other nodes' copies and feeds follow. */
static void on_local_alarm(const struct alarm *a, void *ud)
{
    (void)ud;
    json_t *j = alarm_to_json(a);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    size_t len = text ? strlen(text) : 0;
    if (text && len <= ALARM_BUS_TEXT_MAX)
        bus_publish("alarm", "", text, len);
    free(text);
    json_decref(j);
}

/* An alarm another node stored: this node's open alarms and its feeds
 * follow it (no push: the other node sent them). */
static void on_bus_alarm(const char *node, const char *user, const char *data, size_t len, void *ud)
{
    (void)user;
    (void)ud;
    json_error_t jerr;
    json_t *o = len <= ALARM_BUS_TEXT_MAX ? json_loadb(data, len, 0, &jerr) : NULL;
    const char *id = jx_str_bounded(o, "id", 64);
    const struct alarm *a = o ? alarm_apply_remote(o) : NULL;
    if (a) {
        feed_alarm_update(a->id, a->sensor, a->enterprise, a->division, a->park,
                          alarm_level_name(a->level), true, a->condition == ALARM_COND_INTERRUPTED,
                          o);
    } else if (id && jx_str(o, "state") && strcmp(jx_str(o, "state"), "closed") == 0 &&
               jx_str(o, "enterprise") && jx_str(o, "division")) {
        feed_alarm_update(id, jx_str(o, "sensor"), jx_str(o, "enterprise"), jx_str(o, "division"),
                          jx_str(o, "park"), jx_str(o, "level"), false, false, o);
    } else {
        log_warn("cluster", "node=%s sent an alarm this node cannot read", node);
    }
    json_decref(o);
}

/* The node that takes a sensor's readings looks after its alarms (watches
 * it for interruption, escalates); those of a sensor nobody alive is
 * known to take, the first node. */
static bool watch(const char *sensor, void *ud)
{
    (void)ud;
    const struct sensor *s = sensor ? sensor_get(sensor) : NULL;
    if (!s || (!s->ingested_here && !s->remote_node)) {
        /* not known here, or known since its last reading elsewhere */
        const char *node = sensor ? g_hash_table_lookup(owners, sensor) : NULL;
        return !(node && cluster_node_live_cached(node)) && cluster_is_first();
    }
    if (g_hash_table_size(owners) > 0)
        g_hash_table_remove(owners, sensor); /* its own record says now */
    if (s->ingested_here)
        return true;
    if (s->remote_node && cluster_node_live_cached(s->remote_node))
        return false;
    return cluster_is_first();
}

void sensor_bus_init(void)
{
    if (!bus_enabled() || up)
        return;
    up = true;
    owners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    sensor_on_reading(on_local_reading, NULL);
    alarm_on_changed(on_local_alarm, NULL);
    bus_on("latest", on_bus_latest, NULL);
    bus_on("alarm", on_bus_alarm, NULL);
    alarm_set_owner_filter(watch, NULL);
    alarm_set_shared(true);
}

void sensor_bus_shutdown(void)
{
    if (!up)
        return;
    bus_batch_clear(&latest);
    g_clear_pointer(&owners, g_hash_table_destroy);
    alarm_set_owner_filter(NULL, NULL);
    alarm_set_shared(false);
    up = false;
}
