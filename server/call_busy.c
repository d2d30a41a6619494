/* Who is in an answered call, across the nodes of a cluster (see
 * call_busy.h). */
#include "server/call_busy.h"

#include "server/bus.h"
#include "server/cluster.h"

#include <glib.h>
#include <string.h>

#define USER_MAX 64

static GHashTable *remote; /* user id -> set of node ids where it is busy */

static void on_changed(const char *user_id, bool busy)
{
    bus_publish("call.busy", user_id, busy ? "1" : "0", 1);
}

unsigned call_busy_nodes(const char *user_id)
{
    GHashTable *nodes = remote ? g_hash_table_lookup(remote, user_id) : NULL;
    if (!nodes)
        return 0;
    unsigned n = 0;
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, nodes);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (cluster_node_live_cached(k))
            n++;
        else
            g_hash_table_iter_remove(&it); /* its calls died with it */
    }
    if (n == 0)
        g_hash_table_remove(remote, user_id);
    return n;
}

static bool elsewhere(const char *user_id)
{
    return call_busy_nodes(user_id) > 0;
}

static void set_remote(const char *node, const char *user, bool busy)
{
    GHashTable *nodes = g_hash_table_lookup(remote, user);
    if (busy) {
        if (!nodes) {
            nodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
            g_hash_table_insert(remote, g_strdup(user), nodes);
        }
        g_hash_table_add(nodes, g_strdup(node));
    } else if (nodes) {
        g_hash_table_remove(nodes, node);
        if (g_hash_table_size(nodes) == 0)
            g_hash_table_remove(remote, user);
    }
}

static void on_bus_busy(const char *node, const char *user, const char *data, size_t len, void *ud)
{
    (void)ud;
    if (!user[0] || strlen(user) > USER_MAX || len != 1 || (data[0] != '0' && data[0] != '1'))
        return;
    set_remote(node, user, data[0] == '1');
}

static void tell(const char *user_id, void *ud)
{
    bus_send_to(ud, "call.busy", user_id, "1", 1);
}

static void on_bus_ask(const char *node, const char *user, const char *data, size_t len, void *ud)
{
    (void)user;
    (void)data;
    (void)len;
    (void)ud;
    call_foreach_busy(tell, (void *)node);
}

void call_busy_init(struct call_hooks *h)
{
    if (!bus_enabled())
        return;
    h->busy_changed = on_changed;
    h->busy_elsewhere = elsewhere;
    remote = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                   (GDestroyNotify)g_hash_table_destroy);
    bus_on("call.busy", on_bus_busy, NULL);
    bus_on("call.busy?", on_bus_ask, NULL);
}

void call_busy_ask(void)
{
    if (remote)
        bus_publish("call.busy?", "", "", 0);
}

void call_busy_shutdown(void)
{
    if (remote)
        g_hash_table_destroy(remote);
    remote = NULL;
}
