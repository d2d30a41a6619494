/* The sensor table (see sensor.h): every sensor record in memory, keyed by
 * id and by its integer history key, with its latest reading.
 *
 * The stored copy is the document "sensors/<id>": the record fields as the
 * client gave them (normalised), plus what the server keeps: division,
 * park and hazard_level copied from the enterprise, ts_key (the series key
 * of its readings in the store, from the counter "sensor.ts_key", never
 * reused), version (bumped by every put), created_at and updated_at. The
 * latest readings come from the store's time-series latest table at start.
 *
 * yjtctl writes sensors too (import) without loading the table: yjtd picks
 * those writes up in sensor_poll() through the store's change feed, and
 * skips its own writes there by their version. */
#include "records/sensor.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/audit.h"
#include "records/sensor_table.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define KIND_MAX 32
#define UNIT_MAX 16
#define NAME_MAX_LEN 100

struct listener {
    void *fn;
    void *ud;
};

static struct store *store;
static GHashTable *by_id;  /* id -> struct sensor* (owned) */
static GHashTable *by_key; /* &ts_key -> struct sensor* */
static struct listener reading_fns[SENSOR_LISTENERS_MAX], changed_fns[SENSOR_LISTENERS_MAX],
    remote_fns[SENSOR_LISTENERS_MAX];
static int n_reading_fns, n_changed_fns, n_remote_fns;
static int64_t last_rev;
static bool polling;   /* a poll sent later is under way */
static unsigned epoch; /* bumped at shutdown: its answer is dropped */

static const char *const threshold_names[SENSOR_THRESHOLDS] = {"low_low", "low", "high",
                                                               "high_high"};

static void sensor_free(struct sensor *s)
{
    if (!s)
        return;
    g_free(s->id); /* the shared strings stay in the pool */
    g_free(s->name);
    g_free(s);
}

bool sensor_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > SENSOR_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(id[i]) && !strchr("_.:-", id[i]))
            return false;
    return true;
}

/* Strings many sensors share (enterprise, division, park, hazard, kind,
 * unit) are kept once, in a pool that lives as long as the process: with
 * hundreds of thousands of sensors that saves most of their memory. */
static GStringChunk *pool;

static char *shared(const json_t *doc, const char *key, bool optional)
{
    const char *v = jx_str(doc, key);
    if (!v || !v[0]) {
        if (optional)
            return NULL;
        v = "";
    }
    if (!pool)
        pool = g_string_chunk_new(64 * 1024);
    return g_string_chunk_insert_const(pool, v);
}

static char *dup_opt(const json_t *doc, const char *key)
{
    const char *v = jx_str(doc, key);
    return v && v[0] ? g_strdup(v) : NULL;
}

/* A new sensor from its stored document (already validated when written). */
static struct sensor *from_doc(const char *id, const json_t *doc)
{
    struct sensor *s = g_new0(struct sensor, 1);
    s->id = g_strdup(id);
    s->enterprise = shared(doc, "enterprise", false);
    s->division = shared(doc, "division", false);
    s->park = shared(doc, "park", true);
    s->hazard = shared(doc, "hazard", true);
    s->hazard_level = (int)jx_int(doc, "hazard_level", 0);
    s->name = dup_opt(doc, "name");
    s->kind = shared(doc, "kind", false);
    s->unit = shared(doc, "unit", false);
    json_t *th = json_object_get(doc, "thresholds");
    for (int i = 0; i < SENSOR_THRESHOLDS; i++) {
        json_t *v = json_object_get(th, threshold_names[i]);
        if (json_is_number(v)) {
            s->threshold[i] = json_number_value(v);
            s->threshold_set |= 1u << i;
        }
    }
    s->deadband = json_number_value(json_object_get(doc, "deadband"));
    s->interrupt_after_ms = jx_int(doc, "interrupt_after_s", 300) * 1000;
    s->enabled = jx_bool(doc, "enabled", true);
    s->ts_key = jx_int(doc, "ts_key", 0);
    s->version = jx_int(doc, "version", 0);
    s->updated_ms = jx_int(doc, "updated_at", 0);
    return s;
}

/* Puts s into the table in place of any sensor with its id, keeping the
 * latest reading of the one it replaces, and calls the changed listeners. */
static void table_apply(struct sensor *s)
{
    struct sensor *old = g_hash_table_lookup(by_id, s->id);
    if (old && old->ts_key == s->ts_key) {
        s->has_value = old->has_value;
        s->value = old->value;
        s->ts = old->ts;
        s->seen_ms = old->seen_ms;
        s->ingested_here = old->ingested_here;
        s->remote_node = old->remote_node;
    }
    if (old)
        g_hash_table_remove(by_key, &old->ts_key);
    g_hash_table_replace(by_id, s->id, s); /* frees old */
    g_hash_table_replace(by_key, &s->ts_key, s);
    for (int i = 0; i < n_changed_fns; i++)
        ((sensor_changed_fn)changed_fns[i].fn)(s, false, changed_fns[i].ud);
}

static void table_remove(const char *id)
{
    struct sensor *s = g_hash_table_lookup(by_id, id);
    if (!s)
        return;
    for (int i = 0; i < n_changed_fns; i++)
        ((sensor_changed_fn)changed_fns[i].fn)(s, true, changed_fns[i].ud);
    g_hash_table_remove(by_key, &s->ts_key);
    g_hash_table_remove(by_id, id);
}

static bool load_one(const char *id, json_t *doc, void *ud)
{
    (void)ud;
    struct sensor *s = from_doc(id, doc);
    if (s->ts_key <= 0) {
        log_warn("sensor", "sensor=%s has no history key; skipped", id);
        sensor_free(s);
        return true;
    }
    g_hash_table_replace(by_id, s->id, s);
    g_hash_table_replace(by_key, &s->ts_key, s);
    return true;
}

static bool load_latest(const struct store_ts_point *p, int64_t log_upto, void *ud)
{
    (void)log_upto;
    (void)ud;
    struct sensor *s = g_hash_table_lookup(by_key, &p->key);
    if (s) {
        s->has_value = true;
        s->value = p->value;
        s->ts = p->ts;
        s->seen_ms = p->seen;
    }
    return true;
}

int sensor_init(struct store *st)
{
    store = st;
    by_id = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)sensor_free);
    by_key = g_hash_table_new(g_int64_hash, g_int64_equal);
    /* listeners registered before the load stay: the load calls none */
    /* the change feed starts where the load ends */
    int rc = store_doc_changes(st, "sensors", 0, &last_rev, load_one, NULL);
    if (rc == STORE_OK)
        rc = store_ts_latest_each(st, load_latest, NULL);
    if (rc != STORE_OK) {
        log_error("sensor", "cannot load the sensors from the store");
        sensor_shutdown();
        return rc;
    }
    log_info("sensor", "%u sensors loaded", g_hash_table_size(by_id));
    return STORE_OK;
}

void sensor_shutdown(void)
{
    epoch++;
    polling = false;
    g_clear_pointer(&by_key, g_hash_table_destroy);
    g_clear_pointer(&by_id, g_hash_table_destroy);
    if (pool)
        g_string_chunk_free(pool);
    pool = NULL;
    n_reading_fns = n_changed_fns = n_remote_fns = 0;
    store = NULL;
}

void sensor_on_reading(sensor_reading_fn fn, void *ud)
{
    g_return_if_fail(n_reading_fns < SENSOR_LISTENERS_MAX);
    reading_fns[n_reading_fns++] = (struct listener){(void *)fn, ud};
}

void sensor_on_remote_reading(sensor_reading_fn fn, void *ud)
{
    g_return_if_fail(n_remote_fns < SENSOR_LISTENERS_MAX);
    remote_fns[n_remote_fns++] = (struct listener){(void *)fn, ud};
}

bool sensor_apply_remote(const char *id, double value, int64_t ts, int64_t seen_ms,
                         const char *node)
{
    struct sensor *s = sensor_table_get(id);
    if (!s || !node || (s->has_value && ts <= s->ts))
        return false;
    bool had_prev = s->has_value;
    double prev = s->value;
    s->has_value = true;
    s->value = value;
    s->ts = ts;
    s->seen_ms = seen_ms;
    s->ingested_here = false;
    if (!s->remote_node || strcmp(s->remote_node, node) != 0) {
        if (!pool)
            pool = g_string_chunk_new(64 * 1024);
        s->remote_node = g_string_chunk_insert_const(pool, node);
    }
    for (int i = 0; i < n_remote_fns; i++)
        ((sensor_reading_fn)remote_fns[i].fn)(s, had_prev, prev, remote_fns[i].ud);
    return true;
}

void sensor_on_changed(sensor_changed_fn fn, void *ud)
{
    g_return_if_fail(n_changed_fns < SENSOR_LISTENERS_MAX);
    changed_fns[n_changed_fns++] = (struct listener){(void *)fn, ud};
}

void sensor_table_fire_reading(const struct sensor *s, bool had_prev, double prev)
{
    for (int i = 0; i < n_reading_fns; i++)
        ((sensor_reading_fn)reading_fns[i].fn)(s, had_prev, prev, reading_fns[i].ud);
}

struct sensor *sensor_table_get(const char *id)
{
    return by_id && id ? g_hash_table_lookup(by_id, id) : NULL;
}

struct sensor *sensor_table_by_key(int64_t key)
{
    return by_key ? g_hash_table_lookup(by_key, &key) : NULL;
}

const struct sensor *sensor_get(const char *id)
{
    return sensor_table_get(id);
}

unsigned sensor_count(void)
{
    return by_id ? g_hash_table_size(by_id) : 0;
}

/* Visits the sensors that match (field NULL: all). Matching is by a scan:
 * the foreach calls run on list requests and feed subscriptions, not per
 * reading. */
enum match { M_ALL, M_ENTERPRISE, M_PARK, M_DIVISION };

static void visit(enum match m, const char *v, sensor_cb cb, void *ud)
{
    if (!by_id)
        return;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, by_id);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const struct sensor *s = value;
        bool hit = m == M_ALL || (m == M_ENTERPRISE && strcmp(s->enterprise, v) == 0) ||
                   (m == M_PARK && s->park && strcmp(s->park, v) == 0) ||
                   (m == M_DIVISION && g_str_has_prefix(s->division, v));
        if (hit && !cb(s, ud))
            return;
    }
}

void sensor_foreach(sensor_cb cb, void *ud)
{
    visit(M_ALL, NULL, cb, ud);
}

void sensor_foreach_enterprise(const char *enterprise, sensor_cb cb, void *ud)
{
    visit(M_ENTERPRISE, enterprise, cb, ud);
}

void sensor_foreach_park(const char *park, sensor_cb cb, void *ud)
{
    visit(M_PARK, park, cb, ud);
}

void sensor_foreach_division(const char *prefix, sensor_cb cb, void *ud)
{
    visit(M_DIVISION, prefix, cb, ud);
}

json_t *sensor_to_json(const struct sensor *s)
{
    json_t *th = json_object();
    for (int i = 0; i < SENSOR_THRESHOLDS; i++)
        if (s->threshold_set & (1u << i))
            json_object_set_new(th, threshold_names[i], json_real(s->threshold[i]));
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:f, s:I, s:b, s:I}", "id", s->id,
                  "enterprise", s->enterprise, "division", s->division, "hazard_level",
                  s->hazard_level, "kind", s->kind, "unit", s->unit, "thresholds", th, "deadband",
                  s->deadband, "interrupt_after_s", (json_int_t)(s->interrupt_after_ms / 1000),
                  "enabled", s->enabled, "version", (json_int_t)s->version);
    if (s->park)
        json_object_set_new(o, "park", json_string(s->park));
    if (s->hazard)
        json_object_set_new(o, "hazard", json_string(s->hazard));
    if (s->name)
        json_object_set_new(o, "name", json_string(s->name));
    if (s->has_value)
        json_object_set_new(o, "latest",
                            json_pack("{s:f, s:I, s:I}", "value", s->value, "ts", (json_int_t)s->ts,
                                      "seen", (json_int_t)s->seen_ms));
    return o;
}

/* A bounded string field: NULL if absent; *bad set if present but not a
 * string of 1..max characters. */
static const char *str_field(const json_t *in, const char *key, size_t max, bool *bad)
{
    json_t *v = json_object_get(in, key);
    if (!v || json_is_null(v))
        return NULL;
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    if (n == 0 || n > max || strlen(json_string_value(v)) != n) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

/* Checks the thresholds object (absent or null fields are unset) and
 * writes the normalised one into doc. */
static bool check_thresholds(const json_t *th, json_t *doc, const char **why)
{
    json_t *out = json_object();
    json_object_set_new(doc, "thresholds", out);
    if (!th || json_is_null(th))
        return true;
    if (!json_is_object(th) || json_object_size(th) > SENSOR_THRESHOLDS) {
        *why = "thresholds must be an object with low_low, low, high, high_high";
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)th, k, v)
    {
        bool known = false;
        for (int i = 0; i < SENSOR_THRESHOLDS; i++)
            known = known || strcmp(k, threshold_names[i]) == 0;
        if (!known) {
            *why = "thresholds has an unknown field (low_low, low, high, high_high only)";
            return false;
        }
        if (!json_is_null(v) && (!json_is_number(v) || !isfinite(json_number_value(v)))) {
            *why = "each threshold must be a number or null";
            return false;
        }
    }
    bool have_prev = false;
    double prev = 0;
    for (int i = 0; i < SENSOR_THRESHOLDS; i++) {
        json_t *t = json_object_get(th, threshold_names[i]);
        if (!json_is_number(t))
            continue;
        double x = json_number_value(t);
        if (have_prev && x < prev) {
            *why = "thresholds must be ordered: low_low <= low <= high <= high_high";
            return false;
        }
        have_prev = true;
        prev = x;
        json_object_set_new(out, threshold_names[i], json_real(x));
    }
    return true;
}

/* Validates in and builds the stored document (without the bookkeeping
 * fields) into *doc_out. */
static enum err_code build_doc(struct store *st, const json_t *in, json_t **doc_out,
                               const char **why)
{
    static const char *const fields[] = {"enterprise", "hazard",  "name",
                                         "kind",       "unit",    "thresholds",
                                         "deadband",   "enabled", "interrupt_after_s"};
    *doc_out = NULL;
    if (!json_is_object(in)) {
        *why = "the sensor must be a JSON object";
        return ERR_BAD_REQUEST;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        bool known = strcmp(k, "id") == 0;
        for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
            known = known || strcmp(k, fields[i]) == 0;
        if (!known) {
            *why = "unknown field in sensor";
            return ERR_BAD_REQUEST;
        }
    }
    bool bad = false;
    const char *ent_id = str_field(in, "enterprise", 64, &bad);
    if (!ent_id || bad) {
        *why = "enterprise must be an enterprise id";
        return ERR_BAD_REQUEST;
    }
    const char *kind = str_field(in, "kind", KIND_MAX, &bad);
    for (const char *p = kind; p && *p && !bad; p++)
        bad = !(g_ascii_islower(*p) || g_ascii_isdigit(*p) || *p == '_');
    if (!kind || bad) {
        *why = "kind must be 1-32 characters of a-z, 0-9 and _ (level, temperature, ...)";
        return ERR_BAD_REQUEST;
    }
    const char *unit = str_field(in, "unit", UNIT_MAX, &bad);
    if (!unit || bad) {
        *why = "unit must be a string of 1-16 characters";
        return ERR_BAD_REQUEST;
    }
    const char *name = str_field(in, "name", NAME_MAX_LEN, &bad);
    const char *hazard = bad ? NULL : str_field(in, "hazard", 64, &bad);
    if (bad) {
        *why = "name (1-100 characters) and hazard (a hazard source id) must be strings";
        return ERR_BAD_REQUEST;
    }
    json_t *db = json_object_get(in, "deadband");
    double deadband = db ? json_number_value(db) : 0;
    if (db && (!json_is_number(db) || !isfinite(deadband) || deadband < 0)) {
        *why = "deadband must be a number >= 0";
        return ERR_BAD_REQUEST;
    }
    json_t *ia = json_object_get(in, "interrupt_after_s");
    json_int_t interrupt_s = ia ? (json_is_integer(ia) ? json_integer_value(ia) : -1) : 300;
    if (interrupt_s < 1 || interrupt_s > SENSOR_INTERRUPT_MAX_S) {
        *why = "interrupt_after_s must be an integer from 1 to 604800";
        return ERR_BAD_REQUEST;
    }
    json_t *en = json_object_get(in, "enabled");
    if (en && !json_is_boolean(en)) {
        *why = "enabled must be true or false";
        return ERR_BAD_REQUEST;
    }
    json_t *doc = json_pack("{s:s, s:s, s:s, s:f, s:I, s:b}", "enterprise", ent_id, "kind", kind,
                            "unit", unit, "deadband", deadband, "interrupt_after_s", interrupt_s,
                            "enabled", en ? json_is_true(en) : 1);
    if (!check_thresholds(json_object_get(in, "thresholds"), doc, why)) {
        json_decref(doc);
        return ERR_BAD_REQUEST;
    }
    if (name)
        json_object_set_new(doc, "name", json_string(name));
    json_t *ent = NULL;
    int rc = store_doc_get(st, "enterprises", ent_id, &ent);
    if (rc != STORE_OK) {
        json_decref(doc);
        *why = rc == STORE_ENOTFOUND ? "no such enterprise" : "store unavailable";
        return rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
    }
    json_object_set_new(doc, "division",
                        json_string(jx_str(ent, "division") ? jx_str(ent, "division") : ""));
    if (jx_str(ent, "park"))
        json_object_set_new(doc, "park", json_string(jx_str(ent, "park")));
    int level = 0;
    if (hazard) {
        json_t *src = jx_find(json_object_get(ent, "hazard_sources"), "id", hazard);
        if (!src) {
            json_decref(ent);
            json_decref(doc);
            *why = "hazard is not a hazard source of the enterprise";
            return ERR_NOT_FOUND;
        }
        level = (int)jx_int(src, "level", 0);
        json_object_set_new(doc, "hazard", json_string(hazard));
    }
    json_object_set_new(doc, "hazard_level", json_integer(level < 1 || level > 4 ? 0 : level));
    json_decref(ent);
    *doc_out = doc;
    return ERR_NONE;
}

enum err_code sensor_put(struct store *st, const char *id, const json_t *in, const char *actor,
                         json_t **out, const char **why)
{
    if (!sensor_id_valid(id)) {
        *why = "sensor ids are 1-64 characters of A-Z a-z 0-9 _ . : -";
        return ERR_BAD_REQUEST;
    }
    json_t *doc = NULL, *old = NULL;
    enum err_code e = build_doc(st, in, &doc, why);
    if (e != ERR_NONE)
        return e;
    int rc = store_doc_get(st, "sensors", id, &old);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND)
        goto unavailable;
    int64_t now = clock_now_ms();
    int64_t key = old ? jx_int(old, "ts_key", 0) : 0;
    if (key <= 0 && store_counter_incr(st, "sensor.ts_key", 1, &key) != STORE_OK)
        goto unavailable;
    json_object_set_new(doc, "ts_key", json_integer(key));
    json_object_set_new(doc, "version", json_integer(old ? jx_int(old, "version", 0) + 1 : 1));
    json_object_set_new(doc, "created_at",
                        json_integer(old ? jx_int(old, "created_at", now) : now));
    json_object_set_new(doc, "updated_at", json_integer(now));
    if (store_doc_put(st, "sensors", id, doc, false) != STORE_OK)
        goto unavailable;
    audit_log(st, actor, old ? "sensor.update" : "sensor.create", id, "ok", NULL);
    log_info("sensor", "sensor=%s enterprise=%s %s by %s", id, jx_str(doc, "enterprise"),
             old ? "updated" : "created", actor ? actor : "-");
    struct sensor *s = from_doc(id, doc);
    if (by_id && st == store) {
        table_apply(s);
        if (out)
            *out = sensor_to_json(s);
    } else {
        if (out)
            *out = sensor_to_json(s);
        sensor_free(s);
    }
    json_decref(doc);
    json_decref(old);
    return ERR_NONE;
unavailable:
    json_decref(doc);
    json_decref(old);
    *why = "store unavailable";
    return ERR_UNAVAILABLE;
}

enum err_code sensor_delete(struct store *st, const char *id, const char *actor, const char **why)
{
    json_t *old = NULL;
    int rc = store_doc_get(st, "sensors", id, &old);
    if (rc == STORE_ENOTFOUND) {
        *why = "no such sensor";
        return ERR_NOT_FOUND;
    }
    /* read to exist: removed without waiting for the answer (as its
     * readings are), the request's reply held for its batch */
    if (rc != STORE_OK || store_doc_remove(st, "sensors", id) != STORE_OK ||
        store_ts_drop(st, jx_int(old, "ts_key", 0)) != STORE_OK) {
        json_decref(old);
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
    json_decref(old);
    audit_log(st, actor, "sensor.delete", id, "ok", NULL);
    log_info("sensor", "sensor=%s deleted by %s", id, actor ? actor : "-");
    if (by_id && st == store)
        table_remove(id);
    return ERR_NONE;
}

/* Sensors one sensor_poll() applies at most, so that a large import
 * reaches the table over a few ticks instead of stalling the loop. */
#define POLL_MAX 20000

/* A document of the change feed, applied unless the table has it (or,
 * read_later, a newer version of it: a read sent before this process's
 * own write may be answered after it). True if applied. */
static bool pick_up(const char *id, json_t *doc, bool read_later)
{
    struct sensor *cur = g_hash_table_lookup(by_id, id);
    int64_t version = jx_int(doc, "version", 0);
    if (cur && (read_later ? version <= cur->version : version == cur->version))
        return false;
    struct sensor *s = from_doc(id, doc);
    if (s->ts_key <= 0) {
        sensor_free(s);
        return false;
    }
    log_debug("sensor", "sensor=%s picked up (version %" G_GINT64_FORMAT ")", id, s->version);
    table_apply(s);
    return true;
}

static void picked_up(int n)
{
    if (n)
        log_info("sensor", "%d sensors written by another process picked up (%u in all)", n,
                 g_hash_table_size(by_id));
}

/* One document of the change feed, read waiting. */
static bool poll_one(const char *id, json_t *doc, void *ud)
{
    int *count = ud; /* [0] read, [1] applied */
    if (++count[0] >= POLL_MAX)
        return false; /* last_rev is this one's: it is read again next time */
    if (pick_up(id, doc, false))
        count[1]++;
    return true;
}

/* A poll's answer, applied. */
static void apply_polled(int rc, const struct store_docs *d)
{
    if (rc != STORE_OK) {
        log_warn("sensor", "cannot read sensor changes from the store");
        return;
    }
    int n = 0;
    for (int i = 0; i < d->n; i++)
        if (d->docs[i] && pick_up(d->ids[i], d->docs[i], true))
            n++;
    if (d->last_rev > last_rev)
        last_rev = d->last_rev;
    picked_up(n);
}

/* The answer of a poll sent later (a shared store). */
static void on_polled(int rc, const struct store_docs *d, void *ud)
{
    unsigned *from = ud;
    bool mine = *from == epoch && by_id;
    g_free(from);
    if (!mine)
        return;
    polling = false;
    apply_polled(rc, d);
}

void sensor_poll(void)
{
    if (!by_id || polling)
        return;
    if (!store_reads_later(store)) {
        sensor_poll_now();
        return;
    }
    /* without holding the loop */
    unsigned *from = g_new(unsigned, 1);
    *from = epoch;
    polling = true;
    if (store_doc_changes_later(store, "sensors", last_rev, POLL_MAX, on_polled, from) == STORE_OK)
        return;
    polling = false;
    g_free(from);
    log_warn("sensor", "cannot read sensor changes from the store");
}

/* A poll a caller waits for (sensor_poll_later). */
struct poll_later {
    unsigned epoch;
    void (*done)(void *ud);
    void *ud;
};

static void on_polled_for(int rc, const struct store_docs *d, void *ud)
{
    struct poll_later *p = ud;
    if (p->epoch == epoch && by_id)
        apply_polled(rc, d);
    p->done(p->ud);
    g_free(p);
}

bool sensor_poll_later(void (*done)(void *ud), void *ud)
{
    if (!by_id || !store_reads_later(store))
        return false;
    struct poll_later *p = g_new(struct poll_later, 1);
    *p = (struct poll_later){epoch, done, ud};
    if (store_doc_changes_later(store, "sensors", last_rev, POLL_MAX, on_polled_for, p) == STORE_OK)
        return true;
    g_free(p);
    return false;
}

void sensor_poll_now(void)
{
    if (!by_id)
        return;
    int count[2] = {0, 0};
    int64_t rev = last_rev;
    if (store_doc_changes(store, "sensors", last_rev, &rev, poll_one, count) != STORE_OK) {
        log_warn("sensor", "cannot read sensor changes from the store");
        return;
    }
    last_rev = count[0] >= POLL_MAX ? rev - 1 : rev;
    picked_up(count[1]);
}
