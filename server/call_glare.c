/* Glare across the nodes of a cluster (see call_glare.h). */
#include "server/call_glare.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "server/bus.h"
#include "server/cluster.h"

#include <glib.h>
#include <string.h>

#define USER_MAX 64
#define CALL_ID_MAX 64
#define TARGETS_MAX 256
#define SLACK_MS 5000 /* beyond the ring timeout, for clocks and the bus */

struct ring {
    char *node;
    GHashTable *targets; /* user id set */
    int64_t until_ms;    /* monotonic */
};

static GHashTable *remote; /* caller id -> GHashTable(call id -> struct ring*) */
static int64_t ring_ms;
static guint sweep_source;

static void ring_free(gpointer p)
{
    struct ring *r = p;
    g_free(r->node);
    g_hash_table_destroy(r->targets);
    g_free(r);
}

static void on_changed(const char *call_id, const char *caller, GHashTable *targets, bool ringing)
{
    json_t *m = json_pack("{s:s}", "call_id", call_id);
    if (ringing) {
        json_t *to = json_array();
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, targets);
        while (g_hash_table_iter_next(&it, &k, NULL) && json_array_size(to) < TARGETS_MAX)
            json_array_append_new(to, json_string(k));
        json_object_set_new(m, "targets", to);
    }
    char *text = json_dumps(m, JSON_COMPACT);
    bus_publish("call.ring", caller, text, strlen(text));
    free(text);
    json_decref(m);
}

/* Drops the calls (of one caller) that rang for too long or whose node is
 * gone. */
static void prune(GHashTable *calls, int64_t now)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, calls);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct ring *r = v;
        if (r->until_ms < now || !cluster_node_live_cached(r->node))
            g_hash_table_iter_remove(&it);
    }
}

static const char *elsewhere(const char *caller, const char *callee)
{
    GHashTable *calls = g_hash_table_lookup(remote, caller);
    if (!calls)
        return NULL;
    prune(calls, clock_mono_ms());
    if (g_hash_table_size(calls) == 0) {
        g_hash_table_remove(remote, caller);
        return NULL;
    }
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, calls);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const struct ring *r = v;
        if (g_hash_table_contains(r->targets, callee))
            return k;
    }
    return NULL;
}

unsigned call_glare_ringing_by(const char *user_id)
{
    GHashTable *calls = remote ? g_hash_table_lookup(remote, user_id) : NULL;
    if (!calls)
        return 0;
    prune(calls, clock_mono_ms());
    unsigned n = g_hash_table_size(calls);
    if (n == 0)
        g_hash_table_remove(remote, user_id);
    return n;
}

static void forget(const char *caller, const char *call_id)
{
    GHashTable *calls = g_hash_table_lookup(remote, caller);
    if (calls && g_hash_table_remove(calls, call_id) && g_hash_table_size(calls) == 0)
        g_hash_table_remove(remote, caller);
}

static void on_bus_ring(const char *node, const char *caller, const char *data, size_t len,
                        void *ud)
{
    (void)ud;
    json_t *m = caller[0] && strlen(caller) <= USER_MAX ? jx_load(data, len) : NULL;
    const char *call_id = jx_str(m, "call_id");
    json_t *to = json_object_get(m, "targets");
    if (!call_id || !call_id[0] || strlen(call_id) > CALL_ID_MAX) {
        json_decref(m);
        return;
    }
    if (!to) {
        forget(caller, call_id);
        json_decref(m);
        return;
    }
    if (!json_is_array(to) || json_array_size(to) > TARGETS_MAX) {
        json_decref(m);
        return;
    }
    struct ring *r = g_new0(struct ring, 1);
    r->node = g_strdup(node);
    r->targets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    r->until_ms = clock_mono_ms() + ring_ms + SLACK_MS;
    const char *names[TARGETS_MAX];
    size_t n = 0, i;
    json_t *v;
    json_array_foreach(to, i, v)
    {
        const char *id = json_string_value(v);
        if (id && id[0] && strlen(id) <= USER_MAX && !g_hash_table_contains(r->targets, id)) {
            g_hash_table_add(r->targets, g_strdup(id));
            names[n++] = id;
        }
    }
    GHashTable *calls = g_hash_table_lookup(remote, caller);
    if (!calls) {
        calls = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ring_free);
        g_hash_table_insert(remote, g_strdup(caller), calls);
    }
    g_hash_table_insert(calls, g_strdup(call_id), r);
    call_glare_elsewhere(call_id, caller, names, n);
    json_decref(m);
}

static gboolean on_sweep(gpointer data)
{
    (void)data;
    int64_t now = clock_mono_ms();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, remote);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        prune(v, now);
        if (g_hash_table_size(v) == 0)
            g_hash_table_iter_remove(&it);
    }
    return G_SOURCE_CONTINUE;
}

void call_glare_init(struct call_hooks *h, int ring_timeout_ms)
{
    if (!bus_enabled())
        return;
    h->ring_changed = on_changed;
    h->ringing_elsewhere = elsewhere;
    ring_ms = ring_timeout_ms;
    remote = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                   (GDestroyNotify)g_hash_table_destroy);
    sweep_source = g_timeout_add_seconds(30, on_sweep, NULL);
    bus_on("call.ring", on_bus_ring, NULL);
}

void call_glare_shutdown(void)
{
    if (sweep_source)
        g_source_remove(sweep_source);
    sweep_source = 0;
    if (remote)
        g_hash_table_destroy(remote);
    remote = NULL;
}
