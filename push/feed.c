/* Live feeds for the 3D real-scene clients: subscriptions, snapshots in
 * parts, and coalesced deltas (see feed.h for the contract).
 *
 * State kept here: the subscriptions, indexed by connection and by scope
 * value (enterprise id, park, division code) so that a change finds the
 * subscriptions it concerns with a few hash look-ups; the open alarms
 * (given by the server from the alarm module's listener), by id and by
 * sensor, so a sensor's feed state reflects its alarms; and a cache of
 * each sensor's serialised feed item, dropped when the sensor changes, so
 * that a thousand subscribers of one plant serialise each change once. A
 * subscription holds only the ids of what changed (its dirty sets); the
 * values are read when the delta is built. */
#include "push/feed.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/org.h"
#include "records/sensor.h"

#include <glib.h>
#include <math.h>
#include <string.h>

struct sub {
    char *id;
    void *conn;
    enum feed_scope scope;
    char *value; /* enterprise id, park, or short division code */
    char *role;
    char *org;
    int64_t gap_ms;
    int64_t last_sent; /* monotonic ms of the last delta */
    guint timer;
    uint64_t seq;
    GHashTable *dirty_sensors; /* sensor id (owned) → NULL */
    GHashTable *dirty_alarms;  /* alarm id (owned) → NULL */
    GPtrArray *snap;           /* sensor ids still to send in the snapshot */
    guint snap_pos;
    GPtrArray *snap_alarms; /* then the ids of the open alarms (owned) */
    guint alarm_pos;
    unsigned part;
};

/* An open alarm as the feed knows it. */
struct falarm {
    char *id;
    char *sensor;
    char *enterprise;
    char *division;
    char *park;
    int rank; /* blue 1 … red 4 */
    bool interrupted;
    char *text; /* its JSON */
};

static struct {
    bool up;
    struct store *st;
    struct feed_limits lim;
    struct feed_io io;
    GHashTable *subs;          /* id → struct sub (owned) */
    GHashTable *by_conn;       /* conn → GPtrArray of struct sub */
    GHashTable *by_scope[3];   /* scope value → GPtrArray of struct sub */
    GHashTable *alarms;        /* alarm id → struct falarm (owned) */
    GHashTable *sensor_alarms; /* sensor id → GPtrArray of struct falarm */
    GHashTable *items;         /* sensor id → serialised feed item */
    struct feed_stats stats;
    uint64_t next_id;
} F;

/* Warning levels from the least to the most severe; rank = index + 1. */
static const char *const level_names[] = {"blue", "yellow", "orange", "red"};

static int level_rank(const char *level)
{
    for (int i = 0; i < 4; i++)
        if (level && strcmp(level, level_names[i]) == 0)
            return i + 1;
    return 0;
}

static const char *rank_level(int rank)
{
    return rank >= 1 && rank <= 4 ? level_names[rank - 1] : NULL;
}

static void falarm_free(gpointer p)
{
    struct falarm *a = p;
    g_free(a->id);
    g_free(a->sensor);
    g_free(a->enterprise);
    g_free(a->division);
    g_free(a->park);
    g_free(a->text);
    g_free(a);
}

/* ---- sensor items ---------------------------------------------------- */

/* The feed state of sensor s: disabled, alarm (some open threshold alarm),
 * interrupted (only an interruption alarm open), no_data or normal; *rank
 * gets the worst open alarm's level rank. */
static const char *sensor_state(const struct sensor *s, int *rank)
{
    *rank = 0;
    bool threshold = false;
    GPtrArray *open = g_hash_table_lookup(F.sensor_alarms, s->id);
    for (guint i = 0; open && i < open->len; i++) {
        struct falarm *a = g_ptr_array_index(open, i);
        if (a->rank > *rank)
            *rank = a->rank;
        if (!a->interrupted)
            threshold = true;
    }
    if (!s->enabled)
        return "disabled";
    if (threshold)
        return "alarm";
    if (open && open->len)
        return "interrupted";
    return s->has_value ? "normal" : "no_data";
}

/* The cached feed item of sensor id, built if missing; NULL if the sensor
 * no longer exists. */
static const char *sensor_item(const char *id)
{
    const char *text = g_hash_table_lookup(F.items, id);
    if (text)
        return text;
    const struct sensor *s = sensor_get(id);
    if (!s)
        return NULL;
    int rank;
    const char *state = sensor_state(s, &rank);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", s->id, "enterprise", s->enterprise,
                          "kind", s->kind, "unit", s->unit, "state", state);
    if (!o)
        return NULL;
    if (s->name)
        json_object_set_new(o, "name", json_string(s->name));
    if (s->hazard)
        json_object_set_new(o, "hazard", json_string(s->hazard));
    if (s->has_value && isfinite(s->value)) {
        json_object_set_new(o, "value", json_real(s->value));
        json_object_set_new(o, "ts", json_integer(s->ts));
    }
    if (rank)
        json_object_set_new(o, "level", json_string(rank_level(rank)));
    char *dump = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!dump)
        return NULL;
    char *copy = g_strdup(dump);
    free(dump);
    g_hash_table_insert(F.items, g_strdup(id), copy);
    return copy;
}

/* ---- matching changes to subscriptions -------------------------------- */

static bool sub_admits(const struct sub *s, const char *enterprise, const char *division)
{
    if (s->scope != FEED_PARK)
        return true; /* the scope itself was checked at subscribe */
    struct principal p = {s->role, s->org};
    return juris_reaches(&p, ORG_ENTERPRISE, enterprise, division);
}

static void schedule(struct sub *s, int64_t delay_ms);

/* Marks id dirty (a sensor, or an alarm when alarm is true) in every
 * subscription whose scope covers (enterprise, division, park). */
static void mark_all(const char *id, bool alarm, const char *enterprise, const char *division,
                     const char *park)
{
    GPtrArray *lists[5];
    int n = 0;
    if (enterprise)
        lists[n++] = g_hash_table_lookup(F.by_scope[FEED_ENTERPRISE], enterprise);
    if (park)
        lists[n++] = g_hash_table_lookup(F.by_scope[FEED_PARK], park);
    char d[7];
    if (division && division_normalize(division, d, sizeof d)) {
        size_t len = strlen(d);
        for (size_t k = 2; k <= len && n < 5; k += 2) {
            char pre[7];
            memcpy(pre, d, k);
            pre[k] = '\0';
            lists[n++] = g_hash_table_lookup(F.by_scope[FEED_DIVISION], pre);
        }
    }
    int64_t now = clock_mono_ms();
    for (int i = 0; i < n; i++) {
        GPtrArray *subs = lists[i];
        for (guint j = 0; subs && j < subs->len; j++) {
            struct sub *s = g_ptr_array_index(subs, j);
            if (!sub_admits(s, enterprise, division))
                continue;
            GHashTable *set = alarm ? s->dirty_alarms : s->dirty_sensors;
            if (!g_hash_table_contains(set, id))
                g_hash_table_add(set, g_strdup(id));
            if (!s->snap && !s->timer) {
                int64_t due = s->last_sent + s->gap_ms - now;
                schedule(s, due > 0 ? due : 0);
            }
        }
    }
}

static void on_reading(const struct sensor *s, bool had_prev, double prev, void *ud)
{
    (void)had_prev;
    (void)prev;
    (void)ud;
    if (!F.up)
        return;
    g_hash_table_remove(F.items, s->id);
    mark_all(s->id, false, s->enterprise, s->division, s->park);
}

static void on_sensor_changed(const struct sensor *s, bool deleted, void *ud)
{
    (void)deleted;
    (void)ud;
    if (!F.up)
        return;
    g_hash_table_remove(F.items, s->id);
    mark_all(s->id, false, s->enterprise, s->division, s->park);
}

void feed_alarm_update(const char *alarm_id, const char *sensor, const char *enterprise,
                       const char *division, const char *park, const char *level, bool open,
                       bool interrupted, const json_t *alarm)
{
    if (!F.up || !alarm_id)
        return;
    struct falarm *old = g_hash_table_lookup(F.alarms, alarm_id);
    if (old && old->sensor) {
        GPtrArray *list = g_hash_table_lookup(F.sensor_alarms, old->sensor);
        if (list) {
            g_ptr_array_remove(list, old);
            if (list->len == 0)
                g_hash_table_remove(F.sensor_alarms, old->sensor);
        }
    }
    if (old)
        g_hash_table_remove(F.alarms, alarm_id);
    if (open) {
        struct falarm *a = g_new0(struct falarm, 1);
        a->id = g_strdup(alarm_id);
        a->sensor = g_strdup(sensor);
        a->enterprise = g_strdup(enterprise);
        a->division = g_strdup(division);
        a->park = g_strdup(park);
        a->rank = level_rank(level);
        a->interrupted = interrupted;
        char *dump = alarm ? json_dumps(alarm, JSON_COMPACT) : NULL;
        a->text = g_strdup(dump ? dump : "{}");
        free(dump);
        g_hash_table_insert(F.alarms, a->id, a);
        if (a->sensor) {
            GPtrArray *list = g_hash_table_lookup(F.sensor_alarms, a->sensor);
            if (!list) {
                list = g_ptr_array_new();
                g_hash_table_insert(F.sensor_alarms, g_strdup(a->sensor), list);
            }
            g_ptr_array_add(list, a);
        }
    }
    mark_all(alarm_id, true, enterprise, division, park);
    if (sensor) {
        g_hash_table_remove(F.items, sensor);
        mark_all(sensor, false, enterprise, division, park);
    }
}

/* ---- sending ----------------------------------------------------------- */

static void append_alarm(GString *out, const char *id, bool *first)
{
    const struct falarm *a = g_hash_table_lookup(F.alarms, id);
    if (!*first)
        g_string_append_c(out, ',');
    *first = false;
    if (a) {
        g_string_append(out, a->text);
    } else {
        /* Closed (or gone) since it was marked: the client drops it. */
        g_string_append(out, "{\"id\":");
        jx_append_quoted(out, id);
        g_string_append(out, ",\"state\":\"closed\"}");
    }
}

static void append_sensor(GString *out, const char *id, bool *first)
{
    const char *item = sensor_item(id);
    if (!*first)
        g_string_append_c(out, ',');
    *first = false;
    if (item) {
        g_string_append(out, item);
    } else {
        json_t *o = json_pack("{s:s, s:b}", "id", id, "deleted", 1);
        char *dump = o ? json_dumps(o, JSON_COMPACT) : NULL;
        g_string_append(out, dump ? dump : "{}");
        free(dump);
        json_decref(o);
    }
}

static void open_message(GString *out, const char *type, const struct sub *s)
{
    g_string_append_printf(out, "{\"type\":\"%s\",\"feed_id\":", type);
    jx_append_quoted(out, s->id);
}

static bool alarm_in_scope(const struct sub *s, const struct falarm *a)
{
    if (s->scope == FEED_ENTERPRISE)
        return a->enterprise && strcmp(a->enterprise, s->value) == 0;
    if (s->scope == FEED_PARK)
        return a->park && strcmp(a->park, s->value) == 0 &&
               sub_admits(s, a->enterprise, a->division);
    return a->division && division_covers(s->value, a->division);
}

/* The open alarms of s's scope, for its snapshot. */
static GPtrArray *snapshot_alarms(const struct sub *s)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, F.alarms);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct falarm *a = v;
        if (alarm_in_scope(s, a))
            g_ptr_array_add(ids, g_strdup(a->id));
    }
    return ids;
}

/* Sends the next snapshot part: sensors first, then the open alarms of
 * the scope, at most part_items of them and about slow_queue_bytes per
 * part. What is sent leaves the dirty sets: it went out with its current
 * value. An alarm closed since the snapshot began is no longer part of
 * the state and is left out. */
static void send_snapshot_part(struct sub *s)
{
    GString *out = g_string_sized_new(256 + (gsize)F.lim.part_items * 160);
    open_message(out, "feed.snapshot", s);
    g_string_append_printf(out, ",\"part\":%u,\"sensors\":[", s->part);
    bool first = true;
    int items = 0;
    guint i;
    for (i = s->snap_pos; i < s->snap->len && items < F.lim.part_items &&
                          out->len < F.lim.slow_queue_bytes;
         i++) {
        const char *id = g_ptr_array_index(s->snap, i);
        if (!sensor_get(id))
            continue; /* deleted meanwhile: not part of the state */
        append_sensor(out, id, &first);
        g_hash_table_remove(s->dirty_sensors, id);
        items++;
    }
    s->snap_pos = i;
    g_string_append(out, "],\"alarms\":[");
    first = true;
    guint j = s->alarm_pos;
    if (s->snap_pos >= s->snap->len) {
        for (; j < s->snap_alarms->len && items < F.lim.part_items &&
               out->len < F.lim.slow_queue_bytes;
             j++) {
            const char *id = g_ptr_array_index(s->snap_alarms, j);
            if (!g_hash_table_contains(F.alarms, id))
                continue;
            append_alarm(out, id, &first);
            g_hash_table_remove(s->dirty_alarms, id);
            items++;
        }
    }
    s->alarm_pos = j;
    bool last = s->snap_pos >= s->snap->len && s->alarm_pos >= s->snap_alarms->len;
    g_string_append_printf(out, "],\"last\":%s}", last ? "true" : "false");
    F.io.send(s->conn, out->str, out->len);
    g_string_free(out, TRUE);
    s->part++;
    if (last) {
        g_ptr_array_unref(s->snap);
        s->snap = NULL;
        g_ptr_array_unref(s->snap_alarms);
        s->snap_alarms = NULL;
        F.stats.snapshots++;
        s->last_sent = clock_mono_ms();
    }
}

/* Moves up to *budget ids out of set into out (a JSON array body), and
 * stops once out has grown past the message size limit. */
static void drain_set(GHashTable *set, GString *out, bool alarms, int *budget)
{
    bool first = true;
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, set);
    while (*budget > 0 && out->len < F.lim.slow_queue_bytes &&
           g_hash_table_iter_next(&it, &key, NULL)) {
        if (alarms)
            append_alarm(out, key, &first);
        else
            append_sensor(out, key, &first);
        g_hash_table_iter_remove(&it);
        (*budget)--;
    }
}

static void send_delta(struct sub *s)
{
    int budget = F.lim.delta_items;
    GString *out = g_string_sized_new(512);
    open_message(out, "feed.delta", s);
    g_string_append_printf(out, ",\"seq\":%" G_GUINT64_FORMAT ",\"alarms\":[", ++s->seq);
    drain_set(s->dirty_alarms, out, true, &budget);
    g_string_append(out, "],\"sensors\":[");
    drain_set(s->dirty_sensors, out, false, &budget);
    g_string_append(out, "]}");
    F.io.send(s->conn, out->str, out->len);
    g_string_free(out, TRUE);
    F.stats.deltas++;
    s->last_sent = clock_mono_ms();
}

static bool sub_dirty(const struct sub *s)
{
    return g_hash_table_size(s->dirty_sensors) || g_hash_table_size(s->dirty_alarms);
}

/* One turn of a subscription: snapshot parts while the connection takes
 * them, else one delta if anything changed and max_hz allows. */
static void pump(struct sub *s)
{
    if (F.io.queued(s->conn) > F.lim.slow_queue_bytes) {
        F.stats.skipped_slow++;
        schedule(s, s->gap_ms > 20 ? s->gap_ms : 20);
        return;
    }
    if (s->snap) {
        while (s->snap && F.io.queued(s->conn) <= F.lim.slow_queue_bytes)
            send_snapshot_part(s);
        if (s->snap)
            schedule(s, 20);
        else if (sub_dirty(s))
            schedule(s, s->gap_ms);
        return;
    }
    int64_t wait = s->last_sent + s->gap_ms - clock_mono_ms();
    if (wait > 0) {
        schedule(s, wait);
        return;
    }
    if (!sub_dirty(s))
        return;
    send_delta(s);
    if (sub_dirty(s))
        schedule(s, s->gap_ms);
}

static gboolean on_timer(gpointer ud)
{
    struct sub *s = ud;
    s->timer = 0;
    pump(s);
    return G_SOURCE_REMOVE;
}

static void schedule(struct sub *s, int64_t delay_ms)
{
    if (s->timer)
        return;
    s->timer = g_timeout_add((guint)delay_ms, on_timer, s);
}

/* ---- subscriptions ------------------------------------------------------ */

static void sub_free(gpointer p)
{
    struct sub *s = p;
    if (s->timer)
        g_source_remove(s->timer);
    if (s->snap)
        g_ptr_array_unref(s->snap);
    if (s->snap_alarms)
        g_ptr_array_unref(s->snap_alarms);
    g_hash_table_destroy(s->dirty_sensors);
    g_hash_table_destroy(s->dirty_alarms);
    g_free(s->id);
    g_free(s->value);
    g_free(s->role);
    g_free(s->org);
    g_free(s);
}

static void list_remove(GHashTable *index, gconstpointer key, struct sub *s)
{
    GPtrArray *list = g_hash_table_lookup(index, key);
    if (!list)
        return;
    g_ptr_array_remove(list, s);
    if (list->len == 0)
        g_hash_table_remove(index, key);
}

static void list_add(GHashTable *index, gpointer key, bool own_key, struct sub *s)
{
    GPtrArray *list = g_hash_table_lookup(index, key);
    if (!list) {
        list = g_ptr_array_new();
        g_hash_table_insert(index, own_key ? g_strdup(key) : key, list);
    }
    g_ptr_array_add(list, s);
}

/* Unlinks s from the indexes and frees it. */
static void sub_end(struct sub *s)
{
    list_remove(F.by_conn, s->conn, s);
    list_remove(F.by_scope[s->scope], s->value, s);
    g_hash_table_remove(F.subs, s->id);
}

struct collect {
    const struct principal *p;
    enum feed_scope scope;
    GPtrArray *ids;
    int max;
    bool over;
};

static bool collect_sensor(const struct sensor *s, void *ud)
{
    struct collect *c = ud;
    if (c->scope == FEED_PARK && !juris_reaches(c->p, ORG_ENTERPRISE, s->enterprise, s->division))
        return true;
    if ((int)c->ids->len >= c->max) {
        c->over = true;
        return false;
    }
    g_ptr_array_add(c->ids, g_strdup(s->id));
    return true;
}

static bool is_admin(const struct principal *p)
{
    return p->role && strcmp(p->role, "admin") == 0;
}

/* Checks that p may follow the scope; writes the stored form of value
 * (short division code) to norm. */
static enum err_code check_scope(const struct principal *p, enum feed_scope scope,
                                 const char *value, char *norm, size_t norm_len, const char **why)
{
    if (scope == FEED_DIVISION) {
        if (!division_normalize(value, norm, norm_len)) {
            *why = "division must be a division code";
            return ERR_BAD_REQUEST;
        }
        if (!is_admin(p) &&
            (!p->role || strcmp(p->role, "gov") != 0 || !division_covers(p->org, norm))) {
            *why = "division out of your jurisdiction";
            return ERR_FORBIDDEN;
        }
        return ERR_NONE;
    }
    g_strlcpy(norm, value, norm_len);
    if (scope == FEED_PARK) {
        if (!is_admin(p) && (!p->role || strcmp(p->role, "gov") != 0)) {
            *why = "park feeds are for regulators";
            return ERR_FORBIDDEN;
        }
        return ERR_NONE;
    }
    char *div = NULL; /* read ahead (feed_api.c): from memory */
    int rc = org_division_get(F.st, "corp", value, &div);
    if (rc == STORE_ENOTFOUND) {
        *why = "no such enterprise";
        return ERR_NOT_FOUND;
    }
    if (rc < 0) {
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
    bool ok = juris_reaches(p, ORG_ENTERPRISE, value, div);
    g_free(div);
    if (!ok) {
        *why = "enterprise out of your jurisdiction";
        return ERR_FORBIDDEN;
    }
    return ERR_NONE;
}

enum err_code feed_subscribe(void *conn, const struct principal *p, enum feed_scope scope,
                             const char *value, double max_hz, char **feed_id, const char **why)
{
    if (!value || !*value || strlen(value) > 64) {
        *why = "scope value must be a non-empty string of at most 64 characters";
        return ERR_BAD_REQUEST;
    }
    if (max_hz <= 0)
        max_hz = F.lim.default_hz;
    if (!isfinite(max_hz) || max_hz > F.lim.max_hz) {
        *why = "max_hz out of range";
        return ERR_BAD_REQUEST;
    }
    GPtrArray *mine = g_hash_table_lookup(F.by_conn, conn);
    if (mine && (int)mine->len >= F.lim.subs_per_conn) {
        *why = "too many feeds on this connection";
        return ERR_BUSY;
    }
    char norm[72];
    enum err_code err = check_scope(p, scope, value, norm, sizeof norm, why);
    if (err != ERR_NONE)
        return err;

    struct collect c = {p, scope, g_ptr_array_new_with_free_func(g_free), F.lim.max_sensors, false};
    if (scope == FEED_ENTERPRISE)
        sensor_foreach_enterprise(norm, collect_sensor, &c);
    else if (scope == FEED_PARK)
        sensor_foreach_park(norm, collect_sensor, &c);
    else
        sensor_foreach_division(norm, collect_sensor, &c);
    if (c.over) {
        g_ptr_array_unref(c.ids);
        *why = "scope has more sensors than a feed may carry: follow a narrower one";
        return ERR_TOO_LARGE;
    }

    struct sub *s = g_new0(struct sub, 1);
    s->id = g_strdup_printf("f%" G_GUINT64_FORMAT, ++F.next_id);
    s->conn = conn;
    s->scope = scope;
    s->value = g_strdup(norm);
    s->role = g_strdup(p->role);
    s->org = g_strdup(p->org);
    s->gap_ms = (int64_t)ceil(1000.0 / max_hz);
    s->dirty_sensors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    s->dirty_alarms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    s->snap = c.ids;
    s->snap_alarms = snapshot_alarms(s);
    g_hash_table_insert(F.subs, s->id, s);
    list_add(F.by_conn, conn, false, s);
    list_add(F.by_scope[scope], s->value, true, s);
    schedule(s, 0);
    *feed_id = g_strdup(s->id);
    log_info("feed", "feed=%s scope=%s:%s hz=%.2f sensors=%u subscribed", s->id,
             scope == FEED_ENTERPRISE ? "enterprise"
             : scope == FEED_PARK     ? "park"
                                      : "division",
             s->value, max_hz, s->snap->len);
    return ERR_NONE;
}

enum err_code feed_unsubscribe(void *conn, const char *feed_id)
{
    struct sub *s = feed_id ? g_hash_table_lookup(F.subs, feed_id) : NULL;
    if (!s || s->conn != conn)
        return ERR_NOT_FOUND;
    sub_end(s);
    return ERR_NONE;
}

void feed_drop_conn(void *conn)
{
    if (!F.up)
        return;
    GPtrArray *mine = g_hash_table_lookup(F.by_conn, conn);
    while (mine && mine->len) {
        struct sub *s = g_ptr_array_index(mine, mine->len - 1);
        bool last = mine->len == 1;
        sub_end(s); /* frees mine with the last one */
        if (last)
            break;
    }
}

void feed_get_stats(struct feed_stats *out)
{
    *out = F.stats;
    out->subscriptions = F.up ? g_hash_table_size(F.subs) : 0;
}

static void list_free(gpointer p)
{
    g_ptr_array_unref(p);
}

void feed_init(struct store *st, const struct feed_limits *limits, const struct feed_io *io)
{
    memset(&F, 0, sizeof F);
    F.st = st;
    F.lim = *limits;
    F.io = *io;
    F.subs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, sub_free);
    F.by_conn = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, list_free);
    for (int i = 0; i < 3; i++)
        F.by_scope[i] = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, list_free);
    F.alarms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, falarm_free);
    F.sensor_alarms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, list_free);
    F.items = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    F.up = true;
    sensor_on_reading(on_reading, NULL);
    sensor_on_remote_reading(on_reading, NULL);
    sensor_on_changed(on_sensor_changed, NULL);
}

void feed_shutdown(void)
{
    if (!F.up)
        return;
    /* Indexes first (they only point at subscriptions), then the owners. */
    g_hash_table_destroy(F.by_conn);
    for (int i = 0; i < 3; i++)
        g_hash_table_destroy(F.by_scope[i]);
    g_hash_table_destroy(F.subs);
    g_hash_table_destroy(F.sensor_alarms);
    g_hash_table_destroy(F.alarms);
    g_hash_table_destroy(F.items);
    memset(&F, 0, sizeof F);
}
