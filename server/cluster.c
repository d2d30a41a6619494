/* Presence across the nodes of a cluster (see cluster.h). */
#include "server/cluster.h"

#include "common/log.h"
#include "push/presence.h"
#include "records/redis_link.h"
#include "server/bus.h"
#include "server/conn.h"
#include "signaling/call.h"

#include <glib.h>
#include <glib-unix.h>
#include <jansson.h>
#include <string.h>

/* ARGV: key, device, node: deletes the device's entry if this node wrote
 * it (a newer login elsewhere has overwritten it otherwise). */
static const char down_lua[] = "local v = redis.call('HGET', ARGV[1], ARGV[2])\n"
                               "if v and string.sub(v, 1, #ARGV[3] + 1) == ARGV[3] .. '\\t' then\n"
                               "  return redis.call('HDEL', ARGV[1], ARGV[2])\n"
                               "end\n"
                               "return 0\n";

struct cached {
    json_t *devices;
    int64_t at_ms;
    uint64_t epoch; /* bus_in_step() when read */
};

static struct {
    bool on;
    struct redis_link *link;
    char *prefix, *nodes_key;
    GHashTable *live;                  /* node id -> NULL: nodes whose beat is fresh */
    GHashTable *silent;                /* node id -> NULL: nodes in the beats, not fresh */
    GHashTable *asked;                 /* node id -> the beats' read (guint64*) that tells of it */
    uint64_t reads_sent, read_applied; /* beats' reads, numbered */
    GHashTable *cache; /* user id -> struct cached* */
    uint64_t drops;    /* entries dropped for a change: a read sent before is stale */
    GHashTable *dropped; /* user id -> drops then (gint64*), while prefetches are out */
    unsigned prefetches_out;
    uint64_t dropped_all; /* drops when every entry last went */
    GQueue prefetched; /* struct prefetch* answered, to apply from the loop */
    guint prefetch_idle;
    guint beat, beat_idle;
    GHashTable *beat_read; /* the last beats' read, applied from the loop */
    uint64_t beat_read_n;  /* its number */
    int dead_s;
    uint64_t errors;
    /* Presence writes are sent without waiting; their answers, read when
     * the link's socket is readable, queue the announcements, which go out
     * on the bus from the loop in the order the writes were sent. */
    GQueue told; /* struct told* */
    guint told_idle, watch, tick;
    int watch_fd;
} C;

struct told {
    char *user_id, *device_id;
    char sign; /* '+', '-' (set only if the entry was this node's), 0 */
    int64_t since;
};

/* Beats compare across machines: the real clock, never a test clock. */
static int64_t real_ms(void)
{
    return g_get_real_time() / 1000;
}

static char *key_of(const char *user_id)
{
    return g_strconcat(C.prefix, "pr:", user_id, NULL);
}

static void cached_free(gpointer p)
{
    struct cached *c = p;
    json_decref(c->devices);
    g_free(c);
}

static redisReply *run(struct redis_cmd *c)
{
    redisReply *r = redis_link_call(C.link, c);
    if (!r && C.errors++ % 1000 == 0)
        log_warn("cluster", "Redis: %s", redis_link_error(C.link));
    return r;
}

static bool believable(const struct cached *e, int64_t now);

/* user_id's entry goes: its devices changed. A prefetch sent before then
 * must not put back what it read (NULL: every entry went). */
static void dropped(const char *user_id)
{
    C.drops++;
    if (!C.prefetches_out)
        return;
    if (!user_id) {
        g_hash_table_remove_all(C.dropped);
        C.dropped_all = C.drops;
        return;
    }
    gint64 *at = g_new(gint64, 1);
    *at = (gint64)C.drops;
    g_hash_table_replace(C.dropped, g_strdup(user_id), at);
}

/* Entries that can no longer be believed are dropped at each beat, so the
 * cache holds at most the users asked about in the last
 * CLUSTER_CACHE_MAX_MS (a fan-out to a whole province's users, then
 * nothing, leaves nothing behind for long). */
static void drop_stale(int64_t now)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, C.cache);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if (!believable(v, now))
            g_hash_table_iter_remove(&it);
}

unsigned cluster_cached_users(void)
{
    return C.cache ? g_hash_table_size(C.cache) : 0;
}

/* A read of the beats (numbered n): the nodes that beat lately are now
 * believed alive, and those in the beats but silent for cluster_dead_s
 * dead (beats: node id -> 1 fresh, 2 silent; taken). A node gone silent
 * announces nothing: what is cached of its devices goes with it. */
static void apply_beats(GHashTable *beats, uint64_t n)
{
    GHashTable *live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_remove_all(C.silent);
    GHashTableIter it;
    gpointer node, v;
    g_hash_table_iter_init(&it, beats);
    while (g_hash_table_iter_next(&it, &node, &v)) {
        g_hash_table_add(GPOINTER_TO_INT(v) == 1 ? live : C.silent, g_strdup(node));
        g_hash_table_remove(C.asked, node);
    }
    g_hash_table_destroy(beats);
    C.read_applied = MAX(C.read_applied, n);
    /* a node asked about and still not in the beats is dead: what was
     * cached of its devices meanwhile (counted alive) goes */
    bool lost = false;
    g_hash_table_iter_init(&it, C.asked);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        guint64 *asked = v;
        if (*asked && *asked <= n) {
            *asked = 0; /* settled: dead */
            lost = true;
        }
    }
    g_hash_table_iter_init(&it, C.live);
    while (!lost && g_hash_table_iter_next(&it, &node, NULL))
        lost = !g_hash_table_contains(live, node);
    g_hash_table_destroy(C.live);
    C.live = live;
    if (lost) {
        g_hash_table_remove_all(C.cache);
        dropped(NULL);
    }
    drop_stale(real_ms());
}

/* The nodes of a reply to the beats' read (node, time, ...) as
 * apply_beats() takes them, or NULL if it is not one. */
static GHashTable *beats_of(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 2)
        return NULL;
    int64_t fresh = real_ms() - (int64_t)C.dead_s * 1000;
    GHashTable *beats = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *node = r->element[i], *at = r->element[i + 1];
        if (node->type == REDIS_REPLY_STRING && at->type == REDIS_REPLY_STRING)
            g_hash_table_insert(
                beats, g_strdup(node->str),
                GINT_TO_POINTER(g_ascii_strtoll(at->str, NULL, 10) > fresh ? 1 : 2));
    }
    return beats;
}

/* The read of the beats: every node that beat in the last hour, with the
 * time of its last beat. */
static void read_cmd(struct redis_cmd *c)
{
    redis_cmd_init(c);
    redis_cmd_str(c, "ZRANGE");
    redis_cmd_str(c, C.nodes_key);
    redis_cmd_str(c, "0");
    redis_cmd_str(c, "-1");
    redis_cmd_str(c, "WITHSCORES");
}

/* A beat: this node's time in the beats, those silent for an hour
 * forgotten, and the read of the others. */
static void beat_commands(struct redis_cmd c[3])
{
    int64_t now = real_ms();
    for (int i = 0; i < 2; i++)
        redis_cmd_init(&c[i]);
    redis_cmd_str(&c[0], "ZADD");
    redis_cmd_str(&c[0], C.nodes_key);
    redis_cmd_i64(&c[0], now);
    redis_cmd_str(&c[0], bus_node());
    redis_cmd_str(&c[1], "ZREMRANGEBYSCORE");
    redis_cmd_str(&c[1], C.nodes_key);
    redis_cmd_str(&c[1], "-inf");
    redis_cmd_i64(&c[1], now - 3600 * 1000);
    read_cmd(&c[2]);
}

/* The first beat, at start (nothing is served yet): waited for. */
static void beat_now(void)
{
    struct redis_cmd c[3];
    beat_commands(c);
    for (int i = 0; i < 3; i++) {
        redisReply *r = run(&c[i]);
        GHashTable *beats = i == 2 ? beats_of(r) : NULL;
        if (beats)
            apply_beats(beats, ++C.reads_sent);
        if (r)
            freeReplyObject(r);
    }
}

static gboolean on_beat_read_idle(gpointer ud)
{
    (void)ud;
    C.beat_idle = 0;
    apply_beats(g_steal_pointer(&C.beat_read), C.beat_read_n);
    return G_SOURCE_REMOVE;
}

/* From inside a call of the link: a beat's answers (ud: the read's
 * number, NULL for the writes). */
static void on_beat_answer(redisReply *r, void *ud)
{
    bool is_read = ud != NULL;
    if ((!r || r->type == REDIS_REPLY_ERROR) && C.errors++ % 1000 == 0)
        log_warn("cluster", "Redis: a beat was not %s", is_read ? "read" : "written");
    GHashTable *beats = is_read ? beats_of(r) : NULL;
    if (!beats)
        return;
    if (C.beat_read)
        g_hash_table_destroy(C.beat_read);
    C.beat_read = beats; /* applied from the loop, not inside the link */
    C.beat_read_n = GPOINTER_TO_SIZE(ud);
    if (!C.beat_idle)
        C.beat_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_beat_read_idle, NULL, NULL);
}

static void watch(void);

/* Later beats are sent without waiting; the read's answer comes when the
 * link's socket is readable. */
static gboolean on_beat(gpointer ud)
{
    (void)ud;
    struct redis_cmd c[3];
    beat_commands(c);
    bool sent = true;
    for (int i = 0; i < 3; i++) {
        sent = sent && redis_link_defer_call(C.link, &c[i], on_beat_answer,
                                             i == 2 ? GSIZE_TO_POINTER(++C.reads_sent) : NULL) == 0;
        redis_cmd_clear(&c[i]);
    }
    if (!sent && C.errors++ % 1000 == 0)
        log_warn("cluster", "Redis: %s", redis_link_error(C.link));
    watch();
    drop_stale(real_ms());
    return G_SOURCE_CONTINUE;
}

/* Whether node beat lately, from the last read of the beats, without
 * waiting. A node not in them started since (its "up" on the bus not
 * heard yet) or was silent for an hour: it counts as alive, and the beats
 * are read again at once; once a read sent after that still lacks it, it
 * is dead. */
static bool alive(const char *node)
{
    if (g_hash_table_contains(C.live, node))
        return true;
    if (g_hash_table_contains(C.silent, node))
        return false;
    guint64 *asked = g_hash_table_lookup(C.asked, node);
    if (asked) /* 0: a read after the question lacked it */
        return *asked && C.read_applied < *asked;
    if (g_hash_table_size(C.asked) >= 1000)
        g_hash_table_remove_all(C.asked);
    struct redis_cmd c;
    read_cmd(&c);
    uint64_t n = C.reads_sent + 1;
    if (redis_link_defer_call(C.link, &c, on_beat_answer, GSIZE_TO_POINTER(n)) == 0) {
        C.reads_sent = n;
        g_hash_table_insert(C.asked, g_strdup(node), g_memdup2(&n, sizeof(n)));
        watch();
    }
    redis_cmd_clear(&c);
    return true;
}

/* Tells the other nodes: "+DEVICE" logged in here, "-DEVICE" went
 * offline (and is not held by another node), "" changed otherwise. */
/* "+DEVICE<TAB>SINCE" (came online), "-DEVICE" (went offline) or "". */
static void announce(const char *user_id, char sign, const char *device_id, int64_t since)
{
    g_hash_table_remove(C.cache, user_id);
    dropped(user_id);
    char *m = sign == '+' ? g_strdup_printf("+%s\t%" G_GINT64_FORMAT, device_id, (gint64)since)
              : sign      ? g_strdup_printf("%c%s", sign, device_id)
                          : g_strdup("");
    bus_publish("presence", user_id, m, strlen(m));
    g_free(m);
}

static void announce_told(void)
{
    struct told *t;
    while ((t = g_queue_pop_head(&C.told))) {
        announce(t->user_id, t->sign, t->device_id, t->since);
        g_free(t->user_id);
        g_free(t->device_id);
        g_free(t);
    }
}

static gboolean on_told_idle(gpointer ud)
{
    (void)ud;
    C.told_idle = 0;
    announce_told();
    return G_SOURCE_REMOVE;
}

/* From inside a call of the link: a presence write's answer. */
static void on_written(redisReply *r, void *ud)
{
    struct told *t = ud;
    if ((!r || r->type == REDIS_REPLY_ERROR) && C.errors++ % 1000 == 0)
        log_warn("cluster", "Redis: presence of user=%s device=%s not written", t->user_id,
                 t->device_id);
    if (t->sign == '-' && !(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1))
        t->sign = 0; /* another node's entry now: not gone */
    g_queue_push_tail(&C.told, t);
    if (!C.told_idle)
        C.told_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_told_idle, NULL, NULL);
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer ud)
{
    (void)ud;
    redis_link_poll(C.link);
    if (!(cond & G_IO_NVAL) && redis_link_fd(C.link) == fd)
        return G_SOURCE_CONTINUE;
    C.watch = 0; /* another socket (a reconnect), or nothing awaited */
    watch();
    return G_SOURCE_REMOVE;
}

/* While answers are awaited the link also looks now and then, so that a
 * server gone silent is given up (see redis_link_poll). */
static gboolean on_tick(gpointer ud)
{
    (void)ud;
    redis_link_poll(C.link);
    if (redis_link_fd(C.link) >= 0)
        return G_SOURCE_CONTINUE;
    C.tick = 0;
    g_clear_handle_id(&C.watch, g_source_remove);
    return G_SOURCE_REMOVE;
}

/* Watches the link's socket while answers are awaited. */
static void watch(void)
{
    int fd = redis_link_fd(C.link);
    if (fd >= 0 && !C.tick)
        C.tick = g_timeout_add(250, on_tick, NULL);
    if (C.watch && fd == C.watch_fd)
        return;
    g_clear_handle_id(&C.watch, g_source_remove);
    if (fd < 0)
        return;
    C.watch_fd = fd;
    C.watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, NULL);
}

/* Sends a presence write without waiting; t is announced once answered
 * (or at once if it cannot be sent). */
static void write_later(struct redis_cmd *c, struct told *t)
{
    if (redis_link_defer_call(C.link, c, on_written, t) == 0) {
        watch();
        return;
    }
    if (C.errors++ % 1000 == 0)
        log_warn("cluster", "Redis: %s", redis_link_error(C.link));
    if (t->sign == '-')
        t->sign = 0;
    g_queue_push_tail(&C.told, t);
    if (!C.told_idle)
        C.told_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_told_idle, NULL, NULL);
}

static struct told *told_new(const char *user_id, const char *device_id, char sign, int64_t since)
{
    struct told *t = g_new(struct told, 1);
    t->user_id = g_strdup(user_id);
    t->device_id = g_strdup(device_id);
    t->sign = sign;
    t->since = since;
    return t;
}

static void up(const char *user_id, const char *device_id, const char *platform, int64_t since)
{
    char *key = key_of(user_id);
    char *val = g_strdup_printf("%s\t%s\t%" G_GINT64_FORMAT, bus_node(), platform, (gint64)since);
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_str(&c, "HSET");
    redis_cmd_str(&c, key);
    redis_cmd_str(&c, device_id);
    redis_cmd_str(&c, val);
    write_later(&c, told_new(user_id, device_id, '+', since));
    redis_cmd_clear(&c);
    g_free(val);
    g_free(key);
}

static void down(const char *user_id, const char *device_id)
{
    char *key = key_of(user_id);
    struct redis_cmd args, c;
    redis_cmd_init(&args);
    redis_cmd_str(&args, key);
    redis_cmd_str(&args, device_id);
    redis_cmd_str(&args, bus_node());
    redis_cmd_init(&c); /* by body: the server caches it, nothing to load again */
    redis_cmd_script(&c, "EVAL", down_lua, &args);
    write_later(&c, told_new(user_id, device_id, '-', 0));
    redis_cmd_clear(&c);
    redis_cmd_clear(&args);
    g_free(key);
}

static void on_forgotten(redisReply *r, void *ud)
{
    (void)r;
    (void)ud;
}

/* Deletes entries of dead nodes seen while reading (best effort, without
 * waiting). */
static void forget(const char *key, GPtrArray *devices)
{
    if (devices->len == 0)
        return;
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_str(&c, "HDEL");
    redis_cmd_str(&c, key);
    for (guint i = 0; i < devices->len; i++)
        redis_cmd_str(&c, g_ptr_array_index(devices, i));
    if (redis_link_defer_call(C.link, &c, on_forgotten, NULL) == 0)
        watch();
    redis_cmd_clear(&c);
}

/* The devices other live nodes hold, from the HGETALL of key (r may be
 * NULL); entries of dead nodes are deleted. Caches the result for
 * user_id. A new reference. */
/* The devices of user_id held by live nodes other than this one, from
 * its presence hash as n (device, value) strings in kv; the dead nodes'
 * entries are dropped. Cached as read at now, when the bus was at epoch. */
static json_t *devices_of(const char *user_id, const char *key, const char *const *kv, size_t n,
                          int64_t now, uint64_t epoch)
{
    json_t *arr = json_array();
    GPtrArray *dead = g_ptr_array_new();
    for (size_t i = 0; i + 1 < n; i += 2) {
        const char *dev = kv[i], *v = kv[i + 1];
        if (!dev || !v)
            continue;
        char **f = g_strsplit(v, "\t", 3);
        if (g_strv_length(f) == 3 && strcmp(f[0], bus_node()) != 0) {
            if (alive(f[0]))
                json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "device_id", dev,
                                                     "platform", f[1], "since",
                                                     (json_int_t)g_ascii_strtoll(f[2], NULL, 10)));
            else
                g_ptr_array_add(dead, (gpointer)dev);
        }
        g_strfreev(f);
    }
    forget(key, dead);
    g_ptr_array_free(dead, TRUE);
    struct cached *e = g_new(struct cached, 1);
    e->devices = json_copy(arr);
    e->at_ms = now;
    e->epoch = epoch;
    g_hash_table_replace(C.cache, g_strdup(user_id), e);
    return arr;
}

/* The strings of a reply's array (NULL where one is not a string), then
 * a NULL, or NULL if it is not an array: *n gets their number. */
static const char **strings_of(const redisReply *r, size_t *n)
{
    *n = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    const char **kv = g_new(const char *, r->elements + 1);
    for (size_t i = 0; i < r->elements; i++)
        kv[i] = r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : NULL;
    kv[r->elements] = NULL;
    *n = r->elements;
    return kv;
}

static json_t *devices_from(const char *user_id, const char *key, redisReply *r, int64_t now)
{
    size_t n;
    const char **kv = strings_of(r, &n);
    json_t *arr = devices_of(user_id, key, kv, n, now, bus_in_step());
    g_free(kv);
    return arr;
}

/* A cached read holds while the bus has been read without a break since
 * it was made (every change of a device is announced there and drops the
 * entry), up to CLUSTER_CACHE_MAX_MS; else for CLUSTER_CACHE_MS. */
static bool believable(const struct cached *e, int64_t now)
{
    uint64_t epoch = bus_in_step();
    int64_t ttl = epoch && e->epoch == epoch ? CLUSTER_CACHE_MAX_MS : CLUSTER_CACHE_MS;
    return now - e->at_ms < ttl;
}

static struct cached *cached_fresh(const char *user_id, int64_t now)
{
    struct cached *hit = g_hash_table_lookup(C.cache, user_id);
    return hit && believable(hit, now) ? hit : NULL;
}

/* The read of a user's devices on every node: its presence hash whole. */
static void devices_cmd(struct redis_cmd *c, const char *key)
{
    redis_cmd_init(c);
    redis_cmd_str(c, "HGETALL");
    redis_cmd_str(c, key);
}

static json_t *remote_devices(const char *user_id)
{
    int64_t now = real_ms();
    struct cached *hit = cached_fresh(user_id, now);
    if (hit)
        return json_copy(hit->devices); /* the caller may add to it */
    char *key = key_of(user_id);
    struct redis_cmd c;
    devices_cmd(&c, key);
    redisReply *r = run(&c);
    json_t *arr = devices_from(user_id, key, r, now);
    if (r)
        freeReplyObject(r);
    g_free(key);
    return arr;
}

/* A user's devices elsewhere if they are known here (fresh enough), else
 * NULL. */
static json_t *cached_devices(const char *user_id)
{
    struct cached *hit = cached_fresh(user_id, real_ms());
    return hit ? json_incref(hit->devices) : NULL;
}

/* Users' devices read without waiting, for users about to be rung or
 * asked about (an invite's, sent while its count is; a push's, whether to
 * post it to the push gateway at once): their devices are read on the
 * cluster's link, one HGETALL each, answered in order, and cached from the loop once all
 * are in, unless an entry was dropped for a change meanwhile (the read
 * may predate it: those users are then read again, up to PREFETCH_TRIES
 * times, and asked when used if they keep changing). */
#define PREFETCH_TRIES 3
struct prefetch {
    void (*done)(void *ud); /* told once applied (or not), from the loop */
    void *ud;
    GPtrArray *users; /* char* */
    GPtrArray *kvs;   /* per user, in order: GStrv of its hash, or NULL */
    int64_t now;
    uint64_t drops, epoch;
    int tries; /* reads of these users sent before, overtaken by changes */
    bool sending, queued;
};

static void prefetch_free(struct prefetch *p)
{
    g_ptr_array_free(p->users, TRUE);
    g_ptr_array_free(p->kvs, TRUE);
    g_free(p);
}

static bool prefetch_again(GPtrArray *users, struct prefetch *was);

/* Whether user's read in p predates a change of its devices. */
static bool stale_in(const struct prefetch *p, const char *user)
{
    gint64 *at = g_hash_table_lookup(C.dropped, user);
    return C.dropped_all > p->drops || (at && (uint64_t)*at > p->drops);
}

static gboolean on_prefetch_idle(gpointer ud)
{
    (void)ud;
    C.prefetch_idle = 0;
    struct prefetch *p;
    while ((p = g_queue_pop_head(&C.prefetched))) {
        GPtrArray *again = NULL; /* users whose read a change overtook */
        for (guint i = 0; i < p->users->len; i++) {
            char **kv = g_ptr_array_index(p->kvs, i);
            const char *user = g_ptr_array_index(p->users, i);
            if (stale_in(p, user)) {
                if (!again)
                    again = g_ptr_array_new_with_free_func(g_free);
                g_ptr_array_add(again, g_strdup(user));
                continue;
            }
            if (!kv)
                continue; /* lost: read when asked */
            char *key = key_of(user);
            json_decref(devices_of(user, key, (const char *const *)kv, g_strv_length(kv), p->now,
                                   p->epoch));
            g_free(key);
        }
        /* A read that a change overtook is sent again (a read sent after
         * the change's news sees it), a few times at most, and the caller
         * told once the last one is in. */
        bool chained = again && p->tries < PREFETCH_TRIES && prefetch_again(again, p);
        if (again)
            g_ptr_array_free(again, TRUE);
        if (--C.prefetches_out == 0)
            g_hash_table_remove_all(C.dropped);
        if (!chained && p->done)
            p->done(p->ud);
        prefetch_free(p);
    }
    return G_SOURCE_REMOVE;
}

/* Once every user's answer is in (and all were sent), p is applied from
 * the loop. */
static void prefetch_ready(struct prefetch *p)
{
    if (p->sending || p->queued || p->kvs->len < p->users->len)
        return;
    p->queued = true;
    g_queue_push_tail(&C.prefetched, p);
    if (!C.prefetch_idle)
        C.prefetch_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_prefetch_idle, NULL, NULL);
}

/* From inside a call of the link: one user's hash (replies come in the
 * order sent), kept as strings. */
static void on_prefetched(redisReply *r, void *ud)
{
    struct prefetch *p = ud;
    size_t n;
    const char **kv = strings_of(r, &n);
    bool whole = kv != NULL;
    for (size_t i = 0; i < n; i++)
        whole = whole && kv[i];
    g_ptr_array_add(p->kvs, whole ? g_strdupv((char **)kv) : NULL);
    g_free(kv);
    prefetch_ready(p);
}

static bool prefetch_send(const char *const *user_ids, int n, void (*done)(void *ud), void *ud,
                          int tries)
{
    int64_t now = real_ms();
    struct prefetch *p = g_new0(struct prefetch, 1);
    p->done = done;
    p->ud = ud;
    p->users = g_ptr_array_new_with_free_func(g_free);
    p->kvs = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    p->now = now;
    p->drops = C.drops;
    p->tries = tries;
    p->epoch = bus_in_step();
    for (int i = 0; i < n; i++)
        if (!cached_fresh(user_ids[i], now))
            g_ptr_array_add(p->users, g_strdup(user_ids[i]));
    guint sent = 0;
    p->sending = true; /* replies may be read by the sends that follow */
    for (; sent < p->users->len; sent++) {
        char *key = key_of(g_ptr_array_index(p->users, sent));
        struct redis_cmd c;
        devices_cmd(&c, key);
        int rc = redis_link_defer_call(C.link, &c, on_prefetched, p);
        redis_cmd_clear(&c);
        g_free(key);
        if (rc != 0)
            break;
    }
    if (sent < p->users->len) /* unreachable now: asked again when rung */
        g_ptr_array_set_size(p->users, sent);
    if (sent == 0) {
        prefetch_free(p);
        return false;
    }
    C.prefetches_out++;
    p->sending = false;
    prefetch_ready(p); /* if all were told already, inside the sends */
    watch();
    return true;
}

static bool prefetch_later(const char *const *user_ids, int n, void (*done)(void *ud), void *ud)
{
    return prefetch_send(user_ids, n, done, ud, 0);
}

static bool prefetch_again(GPtrArray *users, struct prefetch *was)
{
    return prefetch_send((const char *const *)users->pdata, (int)users->len, was->done, was->ud,
                         was->tries + 1);
}

/* Whether a device's login on node at `since` is newer than its login
 * here at `here`. The news of an older login elsewhere can arrive after a
 * newer one here (the bus is slower than a client): it must not close
 * the newer. Logins are ordered by their wall-clock time (the nodes'
 * clocks kept in step, as by NTP), ties by node id, so that both nodes
 * agree on which one stays. */
static bool newer_there(const char *node, int64_t since, int64_t here)
{
    return since > here || (since == here && strcmp(node, bus_node()) > 0);
}

/* Another node's change: its subscribers here hear of it; a login there
 * of a device held here replaces the connection here; calls ringing here
 * ring a device that came online there, and a party's device that went
 * offline there may resume within the grace period, as on one node. */
static void on_presence(const char *node, const char *user, const char *data, size_t len, void *ud)
{
    (void)node;
    (void)ud;
    g_hash_table_remove(C.cache, user);
    dropped(user);
    if (len > 1 && (data[0] == '+' || data[0] == '-')) {
        char *device = g_strndup(data + 1, len - 1);
        char *tab = strchr(device, '\t');
        int64_t since = 0;
        if (tab) {
            *tab = '\0';
            since = g_ascii_strtoll(tab + 1, NULL, 10);
        }
        struct conn *here = presence_conn_of(user, device);
        if (data[0] == '+') {
            if (here && newer_there(node, since, presence_since_of(user, device)))
                conn_close(here, 4409, "replaced by a newer connection of the same device");
            call_device_online(user, device, since);
        } else if (!here) {
            call_device_offline(user, device);
        }
        g_free(device);
    }
    presence_changed_elsewhere(user);
}

static const struct presence_cluster hooks = {up, down, remote_devices, cached_devices,
                                              prefetch_later};

/* A node that starts says so, so that the others count it alive (and
 * know who is first) at once rather than at their next beat. One that
 * stops leaves the beats (cluster_stop); the others see it at their next
 * read of them. */
static void on_node(const char *node, const char *user, const char *data, size_t len, void *ud)
{
    (void)user;
    (void)ud;
    if (len == 2 && memcmp(data, "up", 2) == 0) {
        g_hash_table_add(C.live, g_strdup(node));
        g_hash_table_remove(C.silent, node);
        g_hash_table_remove(C.asked, node);
    }
}

int cluster_start(const char *url, const char *prefix, int beat_s, int dead_s, char **err)
{
    struct redis_url u;
    if (redis_url_parse(url, &u, err) != 0)
        return -1;
    C.on = true;
    g_queue_init(&C.told);
    g_queue_init(&C.prefetched);
    C.dropped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    C.link = redis_link_new(&u, 2000);
    C.prefix = g_strdup(prefix && *prefix ? prefix : "yjt:");
    C.nodes_key = g_strconcat(C.prefix, "nodes", NULL);
    C.live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    C.silent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    C.asked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    C.cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cached_free);
    C.dead_s = dead_s;
    beat_now();
    C.beat = g_timeout_add_seconds((guint)beat_s, on_beat, NULL);
    presence_set_cluster(&hooks);
    bus_on("presence", on_presence, NULL);
    bus_on("node", on_node, NULL);
    bus_publish("node", "", "up", 2);
    return 0;
}

void cluster_stop(void)
{
    if (!C.on)
        return;
    presence_set_cluster(NULL);
    g_source_remove(C.beat);
    /* the presence writes still awaited, then what they tell */
    redis_link_drain(C.link);
    g_clear_handle_id(&C.watch, g_source_remove);
    g_clear_handle_id(&C.tick, g_source_remove);
    g_clear_handle_id(&C.told_idle, g_source_remove);
    g_clear_handle_id(&C.beat_idle, g_source_remove);
    g_clear_pointer(&C.beat_read, g_hash_table_destroy);
    announce_told();
    /* leaving: this node's beat goes, so its devices stop counting now */
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_str(&c, "ZREM");
    redis_cmd_str(&c, C.nodes_key);
    redis_cmd_str(&c, bus_node());
    redisReply *r = run(&c);
    if (r)
        freeReplyObject(r);
    redis_link_free(C.link); /* tells what it still awaited, lost */
    g_clear_handle_id(&C.prefetch_idle, g_source_remove);
    struct prefetch *p; /* every prefetch is in by now: each waiter is told */
    while ((p = g_queue_pop_head(&C.prefetched))) {
        if (p->done)
            p->done(p->ud);
        prefetch_free(p);
    }
    g_clear_pointer(&C.dropped, g_hash_table_destroy);
    C.prefetches_out = 0;
    g_hash_table_destroy(C.live);
    g_hash_table_destroy(C.silent);
    g_hash_table_destroy(C.asked);
    g_hash_table_destroy(C.cache);
    g_free(C.prefix);
    g_free(C.nodes_key);
    memset(&C, 0, sizeof(C));
}

bool cluster_node_live_cached(const char *node)
{
    if (!C.on || strcmp(node, bus_node()) == 0)
        return true;
    return g_hash_table_contains(C.live, node);
}

bool cluster_is_first(void)
{
    if (!C.on)
        return true;
    const char *me = bus_node();
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, C.live);
    while (g_hash_table_iter_next(&it, &k, NULL))
        if (strcmp(k, me) < 0)
            return false;
    return true;
}

bool cluster_node_alive(const char *node)
{
    if (!C.on || strcmp(node, bus_node()) == 0)
        return true;
    return alive(node);
}
