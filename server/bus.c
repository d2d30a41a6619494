/* The bus between the nodes of a cluster (see bus.h). */
#include "server/bus.h"

#include "common/ids.h"
#include "common/log.h"
#include "records/redis_link.h"

#include <glib.h>
#include <hiredis/async.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define READ_BLOCK_MS "10000"
#define READ_COUNT "1000"
#define MAX_TYPES 16

/* ---- hiredis on the GLib main loop ----
 *
 * A GSource per connection watching its socket. hiredis frees its context
 * from inside a read or write handler when the connection breaks, and
 * calls cleanup then: the source marks itself dead so that the handler
 * that is still running does not touch the context again, and leaves the
 * main loop. */
struct rsource {
    GSource base;
    redisAsyncContext *ac;
    gpointer tag;
    GIOCondition want;
    bool dead;
};

static gboolean rs_dispatch(GSource *s, GSourceFunc cb, gpointer ud)
{
    (void)cb;
    (void)ud;
    struct rsource *r = (struct rsource *)s;
    if (r->dead)
        return G_SOURCE_REMOVE;
    GIOCondition got = g_source_query_unix_fd(s, r->tag);
    if (got & G_IO_OUT)
        redisAsyncHandleWrite(r->ac);
    if (!r->dead && (got & (G_IO_IN | G_IO_HUP | G_IO_ERR)))
        redisAsyncHandleRead(r->ac);
    return r->dead ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static GSourceFuncs rs_funcs = {NULL, NULL, rs_dispatch, NULL, NULL, NULL};

static void rs_set(struct rsource *r, GIOCondition on, GIOCondition off)
{
    r->want = (r->want | on) & ~off;
    if (!r->dead)
        g_source_modify_unix_fd(&r->base, r->tag, r->want);
}

static void rs_add_read(void *p)
{
    rs_set(p, G_IO_IN, 0);
}

static void rs_del_read(void *p)
{
    rs_set(p, 0, G_IO_IN);
}

static void rs_add_write(void *p)
{
    rs_set(p, G_IO_OUT, 0);
}

static void rs_del_write(void *p)
{
    rs_set(p, 0, G_IO_OUT);
}

static void rs_cleanup(void *p)
{
    struct rsource *r = p;
    if (r->dead)
        return;
    r->dead = true;
    r->ac = NULL;
    g_source_remove_unix_fd(&r->base, r->tag);
    g_source_destroy(&r->base);
}

static void rs_attach(redisAsyncContext *ac)
{
    struct rsource *r = (struct rsource *)g_source_new(&rs_funcs, sizeof(*r));
    r->ac = ac;
    r->tag = g_source_add_unix_fd(&r->base, ac->c.fd, 0);
    ac->ev.addRead = rs_add_read;
    ac->ev.delRead = rs_del_read;
    ac->ev.addWrite = rs_add_write;
    ac->ev.delWrite = rs_del_write;
    ac->ev.cleanup = rs_cleanup;
    ac->ev.data = r;
    g_source_attach(&r->base, NULL);
    g_source_unref(&r->base); /* the main context holds it until it is destroyed */
}

/* ---- the bus ---- */

struct link {
    const char *name;
    redisAsyncContext *ac;
    bool up;
    int backoff_ms;
    guint retry;
};

struct msg {
    char type[BUS_TYPE_MAX + 1];
    char *to; /* "" for every node */
    char *user;
    char *data;
    size_t len;
};

struct handler {
    char type[BUS_TYPE_MAX + 1];
    bus_handler fn;
    void *ud;
};

static struct {
    bool on, stopping;
    struct redis_link *addr; /* resolves the address (Sentinel) and holds the URL */
    char *key;               /* PREFIX bus */
    char *node;
    struct link rd, wr;
    char last_id[48]; /* the last entry read, or "" before the first read */
    GQueue out;       /* struct msg*: the first `inflight` were sent, unanswered */
    guint inflight;
    GQueue entries; /* messages per entry sent and not answered, oldest first */
    guint flush;    /* the source that sends what this turn queued */
    struct handler handlers[MAX_TYPES];
    int n_handlers;
    struct bus_stats stats;
    uint64_t read_epoch; /* times the reading connection came up */
} B;

static void link_open(struct link *l);

static gboolean retry_cb(gpointer p)
{
    struct link *l = p;
    l->retry = 0;
    link_open(l);
    return G_SOURCE_REMOVE;
}

static void schedule_retry(struct link *l)
{
    if (B.stopping || l->retry)
        return;
    l->backoff_ms = l->backoff_ms ? MIN(l->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
    /* jitter, so that nodes cut off together do not come back together */
    int wait = l->backoff_ms / 2 + g_random_int_range(0, l->backoff_ms / 2 + 1);
    l->retry = g_timeout_add(wait, retry_cb, l);
}

static void msg_free(struct msg *m)
{
    g_free(m->to);
    g_free(m->user);
    g_free(m->data);
    g_free(m);
}

static void on_written(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *r = reply;
    if (!r)
        return; /* disconnected: the messages stay queued and are sent again */
    guint n = GPOINTER_TO_UINT(g_queue_pop_head(&B.entries));
    if (r->type == REDIS_REPLY_ERROR)
        log_warn("bus", "publishing %u message(s) failed: %s", n, r->str);
    for (guint i = 0; i < n && B.inflight > 0; i++) {
        B.inflight--;
        if (r->type == REDIS_REPLY_ERROR)
            B.stats.dropped++;
        else
            B.stats.published++;
        msg_free(g_queue_pop_head(&B.out));
    }
}

/* Sends what is queued and not sent yet: the messages of a loop turn go
 * as one stream entry (up to ENTRY_MAX_MSGS or ENTRY_MAX_BYTES each),
 * with the node's id once and then type, addressee, user and data per
 * message, so a turn costs Redis one XADD and one sync, not one per
 * message. */
#define ENTRY_MAX_MSGS 256
#define ENTRY_MAX_BYTES (256 * 1024)
#define ENTRY_HEAD 8
static void send_queued(void)
{
    static const char *argv[ENTRY_HEAD + 8 * ENTRY_MAX_MSGS];
    static size_t lens[ENTRY_HEAD + 8 * ENTRY_MAX_MSGS];
    while (B.wr.up && B.wr.ac && B.inflight < B.out.length) {
        const char *head[ENTRY_HEAD] = {"XADD", B.key, "MAXLEN", "~", G_STRINGIFY(BUS_KEEP),
                                        "*",    "n",   B.node};
        int argc = 0;
        for (int i = 0; i < ENTRY_HEAD; i++) {
            argv[argc] = head[i];
            lens[argc++] = strlen(head[i]);
        }
        guint n = 0;
        size_t bytes = 0;
        for (GList *it = g_queue_peek_nth_link(&B.out, B.inflight);
             it && n < ENTRY_MAX_MSGS && (n == 0 || bytes < ENTRY_MAX_BYTES); it = it->next, n++) {
            struct msg *m = it->data;
            const char *kv[8] = {"t", m->type, "o", m->to, "u", m->user, "d", m->data};
            for (int i = 0; i < 8; i++) {
                argv[argc] = kv[i];
                lens[argc++] = i == 7 ? m->len : strlen(kv[i]);
            }
            bytes += m->len;
        }
        redisAsyncCommandArgv(B.wr.ac, on_written, NULL, argc, argv, lens);
        g_queue_push_tail(&B.entries, GUINT_TO_POINTER(n));
        B.inflight += n;
    }
}

static gboolean flush_cb(gpointer data)
{
    (void)data;
    B.flush = 0;
    send_queued();
    return G_SOURCE_REMOVE;
}

static void read_next(void);

static void deliver(const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    g_strlcpy(B.last_id, entry->element[0]->str, sizeof(B.last_id));
    /* n (the sending node), then per message t, o, u and d: each d ends a
     * message (see send_queued). */
    const redisReply *f = entry->element[1];
    const redisReply *node = NULL, *type = NULL, *user = NULL, *to = NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len != 1)
            continue;
        switch (k->str[0]) {
        case 'n':
            node = v;
            break;
        case 't':
            type = v;
            break;
        case 'u':
            user = v;
            break;
        case 'o':
            to = v;
            break;
        case 'd':
            if (!node || !type || !user || strcmp(node->str, B.node) == 0)
                return;
            if (to && to->len && strcmp(to->str, B.node) != 0)
                break;
            B.stats.received++;
            for (int h = 0; h < B.n_handlers; h++)
                if (strcmp(B.handlers[h].type, type->str) == 0)
                    B.handlers[h].fn(node->str, user->str, v->str, v->len, B.handlers[h].ud);
            break;
        }
    }
}

static void on_read(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *r = reply;
    if (!r || B.stopping)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        log_warn("bus", "reading failed: %s", r->str);
        redisAsyncDisconnect(B.rd.ac); /* and read again after a pause */
        return;
    }
    /* [[key, [entry...]]], or nil when the wait ended with nothing */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
        const redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++)
            deliver(entries->element[i]);
    }
    read_next();
}

/* The stream's newest entry id, where a node that has read nothing yet
 * starts (the bus tells of what happens from now on). */
static void on_tail(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *r = reply;
    if (!r || B.stopping)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        g_strlcpy(B.last_id, r->element[0]->element[0]->str, sizeof(B.last_id));
    else if (r->type == REDIS_REPLY_ARRAY)
        g_strlcpy(B.last_id, "0-0", sizeof(B.last_id));
    else {
        log_warn("bus", "reading the stream's tail failed: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        redisAsyncDisconnect(B.rd.ac);
        return;
    }
    read_next();
}

static void read_next(void)
{
    if (!B.rd.ac || B.stopping)
        return;
    if (!B.last_id[0]) {
        const char *argv[] = {"XREVRANGE", B.key, "+", "-", "COUNT", "1"};
        redisAsyncCommandArgv(B.rd.ac, on_tail, NULL, G_N_ELEMENTS(argv), argv, NULL);
        return;
    }
    const char *argv[] = {"XREAD",       "COUNT",   READ_COUNT, "BLOCK",
                          READ_BLOCK_MS, "STREAMS", B.key,      B.last_id};
    redisAsyncCommandArgv(B.rd.ac, on_read, NULL, G_N_ELEMENTS(argv), argv, NULL);
}

static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *r = reply;
    struct link *l = priv;
    if (r && r->type == REDIS_REPLY_ERROR) {
        log_warn("bus", "%s connection refused: %s", l->name, r->str);
        redisAsyncDisconnect(ac);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;
    if (status != REDIS_OK) {
        log_warn("bus", "%s connection to Redis failed: %s", l->name, ac->errstr);
        l->ac = NULL; /* hiredis frees it */
        schedule_retry(l);
        return;
    }
    l->up = true;
    l->backoff_ms = 0;
    if (l == &B.rd)
        B.read_epoch++;
    log_info("bus", "%s connection to Redis up (node %s)", l->name, B.node);
    if (l == &B.wr)
        send_queued(); /* everything queued meanwhile goes, in order */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;
    l->ac = NULL;
    if (l->up && !B.stopping)
        log_warn("bus", "%s connection to Redis lost%s%s", l->name, status == REDIS_OK ? "" : ": ",
                 status == REDIS_OK ? "" : ac->errstr);
    l->up = false;
    if (l == &B.wr) {
        B.inflight = 0; /* what was unanswered goes again */
        g_queue_clear(&B.entries);
    }
    schedule_retry(l);
}

static void link_open(struct link *l)
{
    if (B.stopping || l->ac)
        return;
    char *host = NULL, *path = NULL;
    int port = 0;
    if (redis_link_address(B.addr, &host, &port, &path) != 0) {
        log_warn("bus", "cannot find Redis: %s", redis_link_error(B.addr));
        schedule_retry(l);
        return;
    }
    const struct redis_url *u = redis_link_url(B.addr);
    redisAsyncContext *ac = host ? redisAsyncConnect(host, port) : redisAsyncConnectUnix(path);
    g_free(host);
    g_free(path);
    if (!ac || ac->err) {
        log_warn("bus", "%s connection to Redis failed: %s", l->name,
                 ac ? ac->errstr : "no memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(l);
        return;
    }
    B.stats.reconnects++;
    ac->data = l;
    l->ac = ac;
    rs_attach(ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (u->password) {
        const char *argv[] = {"AUTH", u->user ? u->user : u->password, u->password};
        redisAsyncCommandArgv(ac, on_setup, l, u->user ? 3 : 2, argv, NULL);
    }
    if (u->db) {
        char db[16];
        g_snprintf(db, sizeof(db), "%d", u->db);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(ac, on_setup, l, 2, argv, NULL);
    }
    if (l == &B.rd)
        read_next(); /* sent once connected, after AUTH and SELECT */
}

int bus_start(const char *url, const char *prefix, char **err)
{
    struct redis_url u;
    if (redis_url_parse(url, &u, err) != 0)
        return -1;
    memset(&B, 0, sizeof(B));
    B.on = true;
    B.addr = redis_link_new(&u, 2000);
    B.key = g_strconcat(prefix && *prefix ? prefix : "yjt:", "bus", NULL);
    B.node = id_new("n");
    B.rd.name = "bus reading";
    B.wr.name = "bus writing";
    g_queue_init(&B.out);
    g_queue_init(&B.entries);
    link_open(&B.rd);
    link_open(&B.wr);
    return 0;
}

void bus_stop(void)
{
    if (!B.on)
        return;
    B.stopping = true;
    struct link *links[] = {&B.rd, &B.wr};
    for (size_t i = 0; i < G_N_ELEMENTS(links); i++) {
        if (links[i]->retry)
            g_source_remove(links[i]->retry);
        if (links[i]->ac)
            redisAsyncFree(links[i]->ac);
    }
    if (B.flush)
        g_source_remove(B.flush);
    if (B.out.length)
        log_info("bus", "%u messages not published at shutdown", B.out.length);
    g_queue_clear_full(&B.out, (GDestroyNotify)msg_free);
    g_queue_clear(&B.entries);
    redis_link_free(B.addr);
    g_free(B.key);
    g_free(B.node);
    memset(&B, 0, sizeof(B));
}

bool bus_enabled(void)
{
    return B.on;
}

const char *bus_node(void)
{
    return B.on ? B.node : "";
}

void bus_on(const char *type, bus_handler fn, void *ud)
{
    g_return_if_fail(B.n_handlers < MAX_TYPES && strlen(type) <= BUS_TYPE_MAX);
    struct handler *h = &B.handlers[B.n_handlers++];
    g_strlcpy(h->type, type, sizeof(h->type));
    h->fn = fn;
    h->ud = ud;
}

void bus_publish(const char *type, const char *user, const char *data, size_t len)
{
    bus_send_to("", type, user, data, len);
}

void bus_send_to(const char *node, const char *type, const char *user, const char *data, size_t len)
{
    if (!B.on || B.stopping)
        return;
    if (B.out.length >= BUS_QUEUE_MAX) {
        if (B.stats.dropped++ % 10000 == 0)
            log_warn("bus",
                     "Redis unreachable and %d messages queued: dropping (%" G_GUINT64_FORMAT
                     " so far)",
                     BUS_QUEUE_MAX, B.stats.dropped);
        return;
    }
    struct msg *m = g_new(struct msg, 1);
    g_strlcpy(m->type, type, sizeof(m->type));
    m->to = g_strdup(node ? node : "");
    m->user = g_strdup(user ? user : "");
    m->data = g_malloc(len + 1);
    memcpy(m->data, data, len);
    m->data[len] = '\0';
    m->len = len;
    g_queue_push_tail(&B.out, m);
    if (B.wr.up && B.wr.ac && !B.flush)
        B.flush = g_idle_add_full(G_PRIORITY_HIGH, flush_cb, NULL, NULL);
}

uint64_t bus_in_step(void)
{
    return B.on && B.rd.up ? B.read_epoch : 0;
}

void bus_get_stats(struct bus_stats *out)
{
    *out = B.stats;
    out->reading = B.rd.up;
    out->writing = B.wr.up;
}

static void batch_flush(struct bus_batch *b)
{
    if (b->buf && b->buf->len)
        bus_publish(b->type, "", b->buf->str, b->buf->len);
    if (b->buf)
        g_string_truncate(b->buf, 0);
}

static gboolean batch_flush_cb(gpointer ud)
{
    struct bus_batch *b = ud;
    b->source = 0;
    batch_flush(b);
    return G_SOURCE_REMOVE;
}

GString *bus_batch_buf(struct bus_batch *b)
{
    if (!b->buf)
        b->buf = g_string_sized_new(4096);
    return b->buf;
}

void bus_batch_added(struct bus_batch *b)
{
    if (b->buf && b->buf->len >= b->cut)
        batch_flush(b);
    else if (!b->source)
        b->source = g_idle_add_full(G_PRIORITY_HIGH_IDLE, batch_flush_cb, b, NULL);
}

void bus_batch_clear(struct bus_batch *b)
{
    if (b->source)
        g_source_remove(b->source);
    b->source = 0;
    if (b->buf)
        g_string_free(b->buf, TRUE);
    b->buf = NULL;
}
