/* Planned downtime declarations (see downtime.h): stored documents, and
 * an in-memory list of those that are current or still to come, pruned
 * a day after their planned restore time. */
#include "records/downtime.h"

#include "common/ids.h"
#include "common/jsonx.h"
#include "common/log.h"

#include <glib.h>
#include <string.h>

#define COLL "downtimes"
#define KEEP_AFTER_MS (86400LL * 1000) /* kept in memory after the restore time */

struct decl {
    char *id;
    char *enterprise;
    GHashTable *sensors; /* sensor ids, or NULL for all of the enterprise's */
    int64_t from, until, ended_at;
};

static struct store *store;
static GPtrArray *decls; /* struct decl* */

static void decl_free(gpointer p)
{
    struct decl *d = p;
    g_free(d->id);
    g_free(d->enterprise);
    if (d->sensors)
        g_hash_table_destroy(d->sensors);
    g_free(d);
}

static struct decl *decl_of(json_t *doc)
{
    const char *id = jx_str(doc, "id"), *ent = jx_str(doc, "enterprise");
    if (!id || !ent)
        return NULL;
    struct decl *d = g_new0(struct decl, 1);
    d->id = g_strdup(id);
    d->enterprise = g_strdup(ent);
    d->from = jx_int(doc, "from", 0);
    d->until = jx_int(doc, "until", 0);
    d->ended_at = jx_int(doc, "ended_at", 0);
    json_t *ss = json_object_get(doc, "sensors");
    if (json_is_array(ss)) {
        d->sensors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        size_t i;
        json_t *s;
        json_array_foreach(ss, i, s) if (json_is_string(s))
            g_hash_table_add(d->sensors, g_strdup(json_string_value(s)));
    }
    return d;
}

static bool covers_sensor(const struct decl *d, const char *enterprise, const char *sensor)
{
    return strcmp(d->enterprise, enterprise) == 0 &&
           (!d->sensors || g_hash_table_contains(d->sensors, sensor));
}

/* The end of d's window: the planned restore time, or when it was ended. */
static int64_t window_end(const struct decl *d)
{
    return d->ended_at && d->ended_at < d->until ? d->ended_at : d->until;
}

static void prune(int64_t now)
{
    for (guint i = decls->len; i-- > 0;) {
        struct decl *d = g_ptr_array_index(decls, i);
        if (window_end(d) + KEEP_AFTER_MS < now)
            g_ptr_array_remove_index_fast(decls, i);
    }
}

const char *downtime_covering(const char *enterprise, const char *sensor, int64_t now_ms)
{
    for (guint i = 0; decls && i < decls->len; i++) {
        struct decl *d = g_ptr_array_index(decls, i);
        if (d->from <= now_ms && now_ms < window_end(d) && covers_sensor(d, enterprise, sensor))
            return d->id;
    }
    return NULL;
}

const char *downtime_overrun(const char *enterprise, const char *sensor, int64_t since,
                             int64_t now_ms)
{
    for (guint i = 0; decls && i < decls->len; i++) {
        struct decl *d = g_ptr_array_index(decls, i);
        if (!d->ended_at && d->until > since && d->until <= now_ms &&
            covers_sensor(d, enterprise, sensor))
            return d->id;
    }
    return NULL;
}

enum err_code downtime_declare(const char *enterprise, const char *division, json_t *sensors,
                               const char *reason, int64_t from, int64_t until, const char *actor,
                               int64_t now_ms, json_t **out, const char **why)
{
    if (!reason || !*reason || strlen(reason) > DOWNTIME_REASON_MAX ||
        !g_utf8_validate(reason, -1, NULL)) {
        *why = "reason must be a non-empty text of at most 500 bytes";
        return ERR_BAD_REQUEST;
    }
    if (from <= 0 || until <= from || until <= now_ms || until - from > DOWNTIME_SPAN_MAX_MS) {
        *why = "from must be before until, until in the future, at most 30 days apart";
        return ERR_BAD_REQUEST;
    }
    prune(now_ms);
    if (decls->len >= DOWNTIME_ACTIVE_MAX) {
        *why = "too many current downtime declarations";
        return ERR_BUSY;
    }
    char *id = id_new_sorted("dt");
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:I}", "id", id, "enterprise", enterprise,
                  "division", division, "reason", reason, "from", (json_int_t)from, "until",
                  (json_int_t)until, "declared_by", actor, "created_at", (json_int_t)now_ms);
    if (sensors)
        json_object_set(doc, "sensors", sensors);
    int rc = store_doc_put_new(store, COLL, id, doc); /* a new sorted id: none has it */
    g_free(id);
    if (rc != STORE_OK) {
        json_decref(doc);
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
    g_ptr_array_add(decls, decl_of(doc));
    log_info("downtime",
             "downtime=%s enterprise=%s sensors=%s from=%" G_GINT64_FORMAT
             " until=%" G_GINT64_FORMAT " by user=%s",
             jx_str(doc, "id"), enterprise, sensors ? "listed" : "all", from, until, actor);
    *out = doc;
    return ERR_NONE;
}

enum err_code downtime_end(const char *id, const char *actor, int64_t now_ms, json_t **out,
                           const char **why)
{
    json_t *doc = NULL;
    if (store_doc_get(store, COLL, id, &doc) != STORE_OK) {
        *why = "no such downtime declaration";
        return ERR_NOT_FOUND;
    }
    if (json_object_get(doc, "ended_at") || jx_int(doc, "until", 0) <= now_ms) {
        json_decref(doc);
        *why = "the declaration is over already";
        return ERR_CONFLICT;
    }
    json_object_set_new(doc, "ended_at", json_integer(now_ms));
    json_object_set_new(doc, "ended_by", json_string(actor));
    if (store_doc_put(store, COLL, id, doc, false) != STORE_OK) {
        json_decref(doc);
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
    for (guint i = 0; i < decls->len; i++) {
        struct decl *d = g_ptr_array_index(decls, i);
        if (strcmp(d->id, id) == 0)
            d->ended_at = now_ms;
    }
    log_info("downtime", "downtime=%s ended early by user=%s", id, actor);
    *out = doc;
    return ERR_NONE;
}

int downtime_get(const char *id, json_t **out)
{
    return store_doc_get(store, COLL, id, out);
}

int downtime_each(const char *enterprise, const char *division, store_doc_cb cb, void *ud)
{
    return enterprise ? store_index_find(store, COLL, "enterprise", enterprise, false, cb, ud)
                      : store_index_find(store, COLL, "division", division, true, cb, ud);
}

static bool load_one(const char *id, json_t *doc, void *ud)
{
    (void)id;
    int64_t now = *(int64_t *)ud;
    struct decl *d = decl_of(doc);
    if (d && window_end(d) + KEEP_AFTER_MS >= now && decls->len < DOWNTIME_ACTIVE_MAX)
        g_ptr_array_add(decls, d);
    else if (d)
        decl_free(d);
    return true;
}

int downtime_init(struct store *st, int64_t now_ms)
{
    int rc = store_index_define(st, COLL, "enterprise", false);
    if (rc == STORE_OK)
        rc = store_index_define(st, COLL, "division", false);
    if (rc != STORE_OK)
        return rc;
    store = st;
    decls = g_ptr_array_new_with_free_func(decl_free);
    rc = store_doc_list(st, COLL, load_one, &now_ms);
    if (rc != STORE_OK)
        downtime_shutdown();
    else
        log_info("downtime", "%u current or recent declaration(s) loaded", decls->len);
    return rc;
}

void downtime_shutdown(void)
{
    if (decls)
        g_ptr_array_free(decls, TRUE);
    decls = NULL;
    store = NULL;
}
