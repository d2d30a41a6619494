/* The presence registry (see presence.h), on GLib hash tables. */
#include "push/presence.h"

#include <glib.h>
#include <string.h>

struct device {
    void *conn;
    char *device_id;
    char *platform;
    int64_t since;
};

struct user_entry {
    GHashTable *devices;     /* device id -> struct device* */
    GPtrArray *conns;        /* the devices' connections, for each push */
    GHashTable *subscribers; /* set of subscriber pointers */
};

static GHashTable *users;   /* user id -> struct user_entry* */
static GHashTable *follows; /* subscriber -> GHashTable set of user ids */
static presence_notify_cb notify_cb;
static void *notify_ud;
static const struct presence_cluster *cluster;

static void device_free(gpointer p)
{
    struct device *d = p;
    g_free(d->device_id);
    g_free(d->platform);
    g_free(d);
}

static void entry_free(gpointer p)
{
    struct user_entry *e = p;
    g_hash_table_destroy(e->devices);
    g_ptr_array_free(e->conns, TRUE);
    g_hash_table_destroy(e->subscribers);
    g_free(e);
}

void presence_init(presence_notify_cb cb, void *ud)
{
    users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
    follows = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                    (GDestroyNotify)g_hash_table_destroy);
    notify_cb = cb;
    notify_ud = ud;
}

void presence_shutdown(void)
{
    g_clear_pointer(&users, g_hash_table_destroy);
    g_clear_pointer(&follows, g_hash_table_destroy);
}

static struct user_entry *entry_get(const char *user_id, bool create)
{
    struct user_entry *e = g_hash_table_lookup(users, user_id);
    if (!e && create) {
        e = g_new0(struct user_entry, 1);
        e->devices = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, device_free);
        e->conns = g_ptr_array_new();
        e->subscribers = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_hash_table_insert(users, g_strdup(user_id), e);
    }
    return e;
}

static void entry_gc(const char *user_id, struct user_entry *e)
{
    if (g_hash_table_size(e->devices) == 0 && g_hash_table_size(e->subscribers) == 0)
        g_hash_table_remove(users, user_id);
}

static void notify(const char *user_id, struct user_entry *e)
{
    if (!notify_cb || g_hash_table_size(e->subscribers) == 0)
        return;
    /* Copies: the callback may close subscribers, which unsubscribes them. */
    guint n = 0;
    gpointer *subs = g_hash_table_get_keys_as_array(e->subscribers, &n);
    char *uid = g_strdup(user_id);
    notify_cb(uid, subs, n, notify_ud);
    g_free(subs);
    g_free(uid);
}

static void changed_read(void *ud)
{
    char *user_id = ud;
    struct user_entry *e = users ? entry_get(user_id, false) : NULL;
    if (e)
        notify(user_id, e);
    g_free(user_id);
}

/* A change of user_id's devices, here or on another node: its subscribers
 * hear of it once its devices on the other nodes are read again without
 * waiting (the news of the change dropped what was known of them). */
static void notify_soon(const char *user_id, struct user_entry *e)
{
    if (!e || g_hash_table_size(e->subscribers) == 0)
        return;
    char *uid = g_strdup(user_id);
    if (!presence_prefetch_later((const char *const *)&uid, 1, changed_read, uid))
        changed_read(uid);
}

void *presence_add(const char *user_id, void *conn, const char *device_id, const char *platform,
                   int64_t since_ms)
{
    struct user_entry *e = entry_get(user_id, true);
    struct device *old = g_hash_table_lookup(e->devices, device_id);
    void *replaced = old && old->conn != conn ? old->conn : NULL;
    struct device *d = g_new0(struct device, 1);
    d->conn = conn;
    d->device_id = g_strdup(device_id);
    d->platform = g_strdup(platform ? platform : "");
    d->since = since_ms;
    if (old)
        g_ptr_array_remove_fast(e->conns, old->conn);
    g_ptr_array_add(e->conns, conn);
    g_hash_table_replace(e->devices, d->device_id, d); /* frees old */
    if (cluster)
        cluster->up(user_id, device_id, d->platform, since_ms);
    notify_soon(user_id, e);
    return replaced;
}

void presence_remove(const char *user_id, void *conn, const char *device_id)
{
    struct user_entry *e = entry_get(user_id, false);
    if (!e)
        return;
    struct device *d = g_hash_table_lookup(e->devices, device_id);
    if (d && d->conn == conn) {
        g_ptr_array_remove_fast(e->conns, conn);
        g_hash_table_remove(e->devices, device_id);
        if (cluster)
            cluster->down(user_id, device_id);
        notify_soon(user_id, e);
    }
    e = entry_get(user_id, false); /* a callback may not remove it, but be safe */
    if (e)
        entry_gc(user_id, e);
}

void presence_set_cluster(const struct presence_cluster *pc)
{
    cluster = pc;
}

void presence_changed_elsewhere(const char *user_id)
{
    notify_soon(user_id, entry_get(user_id, false));
}

bool presence_online(const char *user_id)
{
    struct user_entry *e = entry_get(user_id, false);
    if (e && g_hash_table_size(e->devices) > 0)
        return true;
    if (!cluster)
        return false;
    json_t *remote = cluster->remote_devices(user_id);
    bool any = json_array_size(remote) > 0;
    json_decref(remote);
    return any;
}

int presence_online_known(const char *user_id)
{
    struct user_entry *e = entry_get(user_id, false);
    if (e && g_hash_table_size(e->devices) > 0)
        return 1;
    if (!cluster)
        return 0;
    json_t *remote = cluster->cached_devices ? cluster->cached_devices(user_id) : NULL;
    if (!remote)
        return -1;
    int any = json_array_size(remote) > 0;
    json_decref(remote);
    return any;
}

static gint by_since(gconstpointer a, gconstpointer b)
{
    const struct device *x = a, *y = b;
    if (x->since != y->since)
        return x->since < y->since ? -1 : 1;
    return strcmp(x->device_id, y->device_id);
}

bool presence_prefetch_later(const char *const *user_ids, int n, void (*done)(void *ud), void *ud)
{
    return cluster && cluster->prefetch_later && n > 0 &&
           cluster->prefetch_later(user_ids, n, done, ud);
}

json_t *presence_devices(const char *user_id)
{
    json_t *arr = cluster ? cluster->remote_devices(user_id) : json_array();
    struct user_entry *e = entry_get(user_id, false);
    if (!e)
        return arr;
    GList *devs = g_list_sort(g_hash_table_get_values(e->devices), by_since);
    for (GList *l = devs; l; l = l->next) {
        struct device *d = l->data;
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:I}", "device_id", d->device_id, "platform",
                                        d->platform, "since", (json_int_t)d->since));
    }
    g_list_free(devs);
    return arr;
}

static struct device *device_get(const char *user_id, const char *device_id)
{
    struct user_entry *e = entry_get(user_id, false);
    return e ? g_hash_table_lookup(e->devices, device_id) : NULL;
}

void *presence_conn_of(const char *user_id, const char *device_id)
{
    struct device *d = device_get(user_id, device_id);
    return d ? d->conn : NULL;
}

int64_t presence_since_of(const char *user_id, const char *device_id)
{
    struct device *d = device_get(user_id, device_id);
    return d ? d->since : -1;
}

void presence_each_conn(const char *user_id, void (*fn)(void *conn, void *ud), void *ud)
{
    struct user_entry *e = entry_get(user_id, false);
    if (!e || e->conns->len == 0)
        return;
    /* Copy first: fn may close connections, which removes devices. */
    void *few[8];
    guint n = e->conns->len;
    void **conns = n <= G_N_ELEMENTS(few) ? few : g_new(void *, n);
    memcpy(conns, e->conns->pdata, n * sizeof(void *));
    for (guint i = 0; i < n; i++)
        fn(conns[i], ud);
    if (conns != few)
        g_free(conns);
}

unsigned presence_subscribe(void *subscriber, const char *user_id)
{
    GHashTable *set = g_hash_table_lookup(follows, subscriber);
    if (!set) {
        set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_hash_table_insert(follows, subscriber, set);
    }
    if (!g_hash_table_contains(set, user_id)) {
        g_hash_table_add(set, g_strdup(user_id));
        g_hash_table_add(entry_get(user_id, true)->subscribers, subscriber);
    }
    return g_hash_table_size(set);
}

void presence_unsubscribe_all(void *subscriber)
{
    GHashTable *set = g_hash_table_lookup(follows, subscriber);
    if (!set)
        return;
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        struct user_entry *e = entry_get(key, false);
        if (e) {
            g_hash_table_remove(e->subscribers, subscriber);
            entry_gc(key, e);
        }
    }
    g_hash_table_remove(follows, subscriber);
}
