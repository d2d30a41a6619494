/* A reconnecting Redis connection on hiredis's asynchronous context (see
 * redis_link.h).
 *
 * Every command goes through a redisAsyncContext: a deferred one with a
 * callback that hiredis runs when its reply is read, by whichever call of
 * the link reads it (redis_link_poll() from the main loop, or a waiting
 * call); a waiting one (start-up, the command-line tool, reader threads)
 * by driving the same context's socket until its own callback has run.
 * Replies come in the order sent, so a waiting command's callback runs
 * after every deferred one sent before it. hiredis frees the context
 * when the connection breaks, inside the call that found out, after
 * telling each awaited callback a NULL reply (lost); the context's
 * cleanup hook tells the link, which then has none. */
#include "records/redis_link.h"
#include "records/redis_tls.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/sds.h>

#include <glib.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

struct redis_link {
    struct redis_url url;
    int timeout_ms;
    redisAsyncContext *ac; /* NULL: not connected */
    bool demoted;          /* a reply said READONLY: reconnect, through the sentinels */
    /* The deferred command being written out (its number), and whether
     * the connection was lost before it was: it then counts as never
     * sent, and its callback is not told. */
    uint64_t sending_n;
    bool send_lost;
    int64_t next_try_ms;   /* no connection attempt before this */
    int backoff_ms;
    char error[256];
    /* Deferred writes: sent, their replies not read yet (pending); of those
     * read or lost since the last drain, how many failed; and whether any
     * was sent since (a drain then waits for the replicas). */
    int pending;
    int deferred_failed;
    bool deferred_sent;
    /* Deferred writes sent, and of those how many were read or lost; each
     * is told to on_reply as it is. */
    uint64_t sent_n, done_n;
    int64_t progress_ms; /* the last reply read, or the send that began a wait */
    redis_reply_cb on_reply;
    void *reply_ud;
};

/* Round trips the main loop waited for (see redis_link_loop_waits). */
static uint64_t loop_waits, loop_wait_us;

/* Counts a wait that began at t0 (g_get_monotonic_time) if it held the
 * thread that runs the main loop. */
static void count_wait(gint64 t0)
{
    if (!g_main_context_is_owner(g_main_context_default()))
        return;
    __atomic_fetch_add(&loop_waits, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&loop_wait_us, (uint64_t)(g_get_monotonic_time() - t0), __ATOMIC_RELAXED);
}

uint64_t redis_link_loop_waits(double *seconds)
{
    if (seconds)
        *seconds = (double)__atomic_load_n(&loop_wait_us, __ATOMIC_RELAXED) / 1e6;
    return __atomic_load_n(&loop_waits, __ATOMIC_RELAXED);
}

/* A deferred command whose caller wants its reply (redis_link_defer_call);
 * a plain deferred write has none. */
struct deferred_call {
    bool write; /* redis_link_defer_write_call(): a write all the same */
    redis_call_cb cb;
    void *ud;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- addresses ---- */

/* "user:password@" at the start of *p, if there is one: *p moves past it. */
static int parse_userinfo(const char **p, struct redis_url *u)
{
    const char *at = strrchr(*p, '@'); /* a password may hold '@' and '/' */
    if (!at)
        return 0;
    const char *colon = memchr(*p, ':', (size_t)(at - *p));
    if (!colon)
        return -1; /* a password is needed; a bare user is ambiguous */
    if (colon > *p)
        u->user = g_strndup(*p, (size_t)(colon - *p));
    u->password = g_strndup(colon + 1, (size_t)(at - colon - 1));
    *p = at + 1;
    return 0;
}

static int parse_port(const char *s, size_t n, int *out)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *out = v;
    return 0;
}

/* HOST[:PORT] in s[0..n): a bracketed IPv6 address is allowed. */
static int parse_hostport(const char *s, size_t n, char **host, int *port)
{
    const char *end = s + n, *colon = NULL;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return -1;
        *host = g_strndup(s + 1, (size_t)(close - s - 1));
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (!colon && close + 1 != end)
            return -1;
    } else {
        colon = memchr(s, ':', n);
        *host = g_strndup(s, colon ? (size_t)(colon - s) : n);
    }
    *port = 6379;
    if (**host == '\0')
        return -1;
    return colon ? parse_port(colon + 1, (size_t)(end - colon - 1), port) : 0;
}

static int parse_db(const char *s, int *db)
{
    if (*s == '\0')
        return 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v < 0 || v > 1000000)
        return -1;
    *db = (int)v;
    return 0;
}

/* The options after '?': db=N, wait=N (replicas every write must reach
 * before it counts as done) and wait_ms=N (how long to wait for them);
 * with rediss://, the files tls_ca, tls_cert and tls_key. */
static bool parse_query(const char *q, struct redis_url *u)
{
    bool ok = true;
    char **kv = g_strsplit(q, "&", -1);
    for (int i = 0; ok && kv[i]; i++) {
        char *eq = strchr(kv[i], '=');
        char **file = !eq                                    ? NULL
                      : g_str_has_prefix(kv[i], "tls_ca=")   ? &u->tls_ca
                      : g_str_has_prefix(kv[i], "tls_cert=") ? &u->tls_cert
                      : g_str_has_prefix(kv[i], "tls_key=")  ? &u->tls_key
                                                             : NULL;
        if (file) {
            ok = u->tls && eq[1] && !*file;
            if (ok)
                *file = g_strdup(eq + 1);
            continue;
        }
        char *end = NULL;
        long v = eq ? strtol(eq + 1, &end, 10) : -1;
        ok = eq && end && *end == '\0' && end != eq + 1 && v >= 0;
        if (!ok)
            break;
        *eq = '\0';
        if (strcmp(kv[i], "db") == 0 && v <= 1000000)
            u->db = (int)v;
        else if (strcmp(kv[i], "wait") == 0 && v <= 16)
            u->wait_replicas = (int)v;
        else if (strcmp(kv[i], "wait_ms") == 0 && v >= 1 && v <= 60000)
            u->wait_ms = (int)v;
        else
            ok = false;
    }
    g_strfreev(kv);
    return ok;
}

static int parse_base(const char *url, struct redis_url *u, char **err);

int redis_url_parse(const char *url_in, struct redis_url *u, char **err)
{
    memset(u, 0, sizeof(*u));
    /* options start at the first '?' after the credentials */
    const char *at = strrchr(url_in, '@');
    const char *q = strchr(at ? at : url_in, '?');
    char *url = g_strndup(url_in, q ? (size_t)(q - url_in) : strlen(url_in));
    int rc = parse_base(url, u, err);
    g_free(url);
    if (rc == 0 && q && !parse_query(q + 1, u)) {
        redis_url_clear(u);
        *err = g_strdup("malformed Redis address options (db=N, wait=N, wait_ms=N; with"
                        " TLS tls_ca=FILE, tls_cert=FILE, tls_key=FILE)");
        return -1;
    }
    if (rc == 0 && u->wait_replicas && !u->wait_ms)
        u->wait_ms = 1000;
    if (rc == 0 && u->tls && !u->master) {
        /* connect through the tunnel's socket; keep the server's address */
        struct redis_tls_opts o = {u->host, u->port, u->tls_ca, u->tls_cert, u->tls_key};
        if (redis_tls_tunnel(&o, &u->socket, err) != 0) {
            redis_url_clear(u);
            return -1;
        }
        u->tls_host = u->host;
        u->tls_port = u->port;
        u->host = NULL;
        u->port = 0;
    } else if (rc == 0 && u->tls) {
        /* Tunnels to the sentinels and masters start as they are needed;
         * the first sentinel's now, so that bad TLS files stop the start. */
        struct redis_tls_opts o = {u->sentinel_host[0], u->sentinel_port[0], u->tls_ca, u->tls_cert,
                                   u->tls_key};
        char *path = NULL;
        if (redis_tls_tunnel(&o, &path, err) != 0) {
            redis_url_clear(u);
            return -1;
        }
        g_free(path);
    }
    return rc;
}

static int parse_base(const char *url, struct redis_url *u, char **err)
{
    const char *p;
    bool ok = false;
    bool tls = g_str_has_prefix(url, "rediss://");
    if (tls || g_str_has_prefix(url, "redis://")) {
        p = url + strlen(tls ? "rediss://" : "redis://");
        u->tls = tls;
        if (parse_userinfo(&p, u) == 0) {
            const char *slash = strchr(p, '/');
            size_t n = slash ? (size_t)(slash - p) : strlen(p);
            ok = parse_hostport(p, n, &u->host, &u->port) == 0 &&
                 (!slash || parse_db(slash + 1, &u->db) == 0);
        }
    } else if (g_str_has_prefix(url, "redis+unix://")) {
        p = url + strlen("redis+unix://");
        if (parse_userinfo(&p, u) == 0 && *p == '/') {
            u->socket = g_strdup(p);
            ok = true;
        }
    } else if (g_str_has_prefix(url, "redis-sentinel://") ||
               g_str_has_prefix(url, "rediss-sentinel://")) {
        u->tls = g_str_has_prefix(url, "rediss-");
        p = url + strlen(u->tls ? "rediss-sentinel://" : "redis-sentinel://");
        const char *slash;
        if (parse_userinfo(&p, u) == 0 && (slash = strchr(p, '/')) != NULL) {
            ok = true;
            char *list = g_strndup(p, (size_t)(slash - p));
            char **hosts = g_strsplit(list, ",", -1);
            for (int i = 0; ok && hosts[i]; i++) {
                if (u->n_sentinels == REDIS_MAX_SENTINELS) {
                    ok = false;
                    break;
                }
                int k = u->n_sentinels++;
                ok = parse_hostport(hosts[i], strlen(hosts[i]), &u->sentinel_host[k],
                                    &u->sentinel_port[k]) == 0;
                if (ok && !strchr(hosts[i], ':'))
                    u->sentinel_port[k] = 26379;
            }
            g_strfreev(hosts);
            g_free(list);
            const char *name = slash + 1, *db = strchr(name, '/');
            u->master = g_strndup(name, db ? (size_t)(db - name) : strlen(name));
            ok = ok && u->n_sentinels > 0 && *u->master && (!db || parse_db(db + 1, &u->db) == 0);
        }
    } else {
        *err = g_strdup_printf("unknown Redis address scheme (want redis://, rediss://,"
                               " redis+unix://, redis-sentinel:// or rediss-sentinel://)");
        return -1;
    }
    if (!ok) {
        redis_url_clear(u);
        *err = g_strdup("malformed Redis address");
        return -1;
    }
    return 0;
}

void redis_url_clear(struct redis_url *u)
{
    g_free(u->host);
    g_free(u->socket);
    g_free(u->user);
    if (u->password)
        memset(u->password, 0, strlen(u->password));
    g_free(u->password);
    for (int i = 0; i < u->n_sentinels; i++)
        g_free(u->sentinel_host[i]);
    g_free(u->master);
    g_free(u->tls_host);
    g_free(u->tls_ca);
    g_free(u->tls_cert);
    g_free(u->tls_key);
    memset(u, 0, sizeof(*u));
}

char *redis_url_describe(const struct redis_url *u)
{
    if (u->tls && !u->master)
        return g_strdup_printf("%s:%d (TLS) db %d", u->tls_host, u->tls_port, u->db);
    if (u->socket)
        return g_strdup_printf("unix:%s db %d", u->socket, u->db);
    if (u->master)
        return g_strdup_printf("sentinel master %s (%d sentinels%s) db %d", u->master,
                               u->n_sentinels, u->tls ? ", TLS" : "", u->db);
    return g_strdup_printf("%s:%d db %d", u->host, u->port, u->db);
}

/* ---- commands ---- */

void redis_cmd_init(struct redis_cmd *c)
{
    memset(c, 0, sizeof(*c));
}

static void grow(struct redis_cmd *c)
{
    if (c->n < c->cap)
        return;
    c->cap = c->cap ? c->cap * 2 : 16;
    c->v = g_renew(const char *, c->v, c->cap);
    c->len = g_renew(size_t, c->len, c->cap);
    c->owned = g_renew(char *, c->owned, c->cap);
}

void redis_cmd_bin(struct redis_cmd *c, const void *p, size_t n)
{
    grow(c);
    c->v[c->n] = p;
    c->len[c->n++] = n;
}

void redis_cmd_str(struct redis_cmd *c, const char *s)
{
    redis_cmd_bin(c, s, strlen(s));
}

static void add_owned(struct redis_cmd *c, char *s, size_t n)
{
    grow(c);
    c->owned[c->n_owned++] = s;
    redis_cmd_bin(c, s, n);
}

void redis_cmd_i64(struct redis_cmd *c, int64_t v)
{
    char *s = g_strdup_printf("%" G_GINT64_FORMAT, (gint64)v);
    add_owned(c, s, strlen(s));
}

void redis_cmd_cat(struct redis_cmd *c, const char *prefix, const char *s)
{
    char *w = g_strconcat(prefix, s, NULL);
    add_owned(c, w, strlen(w));
}

void redis_cmd_clear(struct redis_cmd *c)
{
    for (int i = 0; i < c->n_owned; i++)
        g_free(c->owned[i]);
    g_free(c->owned);
    g_free(c->v);
    g_free(c->len);
    memset(c, 0, sizeof(*c));
}

void redis_script_init(struct redis_script *s)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s->body, strlen(s->body), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
}

/* ---- connections ---- */

struct redis_link *redis_link_new(const struct redis_url *u, int timeout_ms)
{
    struct redis_link *l = g_new0(struct redis_link, 1);
    l->url = *u; /* the link takes the strings */
    l->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    if (u->wait_replicas && l->timeout_ms < u->wait_ms + 1000)
        l->timeout_ms = u->wait_ms + 1000; /* WAIT itself must not time out */
    return l;
}

static void drop(struct redis_link *l, const char *why);
static int pump(struct redis_link *l, const bool *done);

void redis_link_free(struct redis_link *l)
{
    if (!l)
        return;
    if (l->ac && l->pending > 0)
        pump(l, NULL); /* the last replies, as a drain would */
    drop(l, "closed"); /* what is still awaited is lost */
    redis_url_clear(&l->url);
    g_free(l);
}

const char *redis_link_error(const struct redis_link *l)
{
    return l->error;
}

static void set_error(struct redis_link *l, const char *what, const char *why)
{
    snprintf(l->error, sizeof(l->error), "%s: %s", what, why ? why : "?");
}

/* The TLS tunnel to host:port (rediss-sentinel://: a sentinel, or the
 * master it named), into *path; 0 or -1. */
static int tunnel_to(struct redis_link *l, const char *host, int port, char **path)
{
    struct redis_tls_opts o = {host, port, l->url.tls_ca, l->url.tls_cert, l->url.tls_key};
    char *err = NULL;
    if (redis_tls_tunnel(&o, path, &err) == 0)
        return 0;
    set_error(l, "TLS", err);
    g_free(err);
    return -1;
}

/* A sentinel's connection, waiting (a question at each connect): to
 * host:port, through a tunnel with TLS. */
static redisContext *dial_sentinel(struct redis_link *l, const char *host, int port)
{
    char *path = NULL;
    if (l->url.tls && tunnel_to(l, host, port, &path) != 0)
        return NULL;
    struct timeval tv = {l->timeout_ms / 1000, (l->timeout_ms % 1000) * 1000};
    redisContext *c =
        path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);
    g_free(path);
    if (!c) {
        set_error(l, "connect", "out of memory");
        return NULL;
    }
    if (c->err) {
        set_error(l, "connect", c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* Asks the sentinels, in turn, where the master is. */
static int sentinel_lookup(struct redis_link *l, char **host, int *port)
{
    for (int i = 0; i < l->url.n_sentinels; i++) {
        redisContext *c = dial_sentinel(l, l->url.sentinel_host[i], l->url.sentinel_port[i]);
        if (!c)
            continue;
        const char *argv[] = {"SENTINEL", "get-master-addr-by-name", l->url.master};
        redisReply *r = redisCommandArgv(c, 3, argv, NULL);
        bool found = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                     r->element[0]->type == REDIS_REPLY_STRING &&
                     r->element[1]->type == REDIS_REPLY_STRING;
        if (found) {
            *host = g_strdup(r->element[0]->str);
            *port = atoi(r->element[1]->str);
        } else {
            set_error(l, "sentinel", r ? "master unknown" : c->errstr);
        }
        if (r)
            freeReplyObject(r);
        redisFree(c);
        if (found)
            return 0;
    }
    return -1;
}

int redis_link_address(struct redis_link *l, char **host, int *port, char **path)
{
    *host = NULL;
    *port = l->url.port;
    *path = NULL;
    if (l->url.master) {
        if (sentinel_lookup(l, host, port) != 0)
            return -1;
        if (!l->url.tls)
            return 0;
        int rc = tunnel_to(l, *host, *port, path);
        g_free(*host);
        *host = NULL;
        return rc;
    }
    if (l->url.host)
        *host = g_strdup(l->url.host);
    else
        *path = g_strdup(l->url.socket);
    return 0;
}

const struct redis_url *redis_link_url(const struct redis_link *l)
{
    return &l->url;
}

/* hiredis is freeing the context (the connection broke, or drop()):
 * the awaited callbacks have been told already. */
static void on_cleanup(void *ud)
{
    redisAsyncContext *ac = ud;
    struct redis_link *l = ac->data;
    if (l->ac != ac)
        return; /* an older context, dropped already */
    if (ac->err)
        set_error(l, "connection", ac->errstr);
    l->ac = NULL;
}

/* Ends the connection; the commands still awaited are told they are lost. */
static void drop(struct redis_link *l, const char *why)
{
    redisAsyncContext *ac = l->ac;
    if (!ac)
        return;
    redisAsyncFree(ac); /* its cleanup clears l->ac */
    if (l->ac == ac) {
        l->ac = NULL;
        l->demoted = false;
    }
    if (why)
        set_error(l, "connection", why);
}

/* Waits up to timeout_ms for events on the connection's socket: those
 * that came, or 0 once the connection is dropped (why) for the wait. */
static short wait_io(struct redis_link *l, short events, const char *why)
{
    struct pollfd pfd = {.fd = l->ac->c.fd, .events = events};
    int n;
    do
        n = poll(&pfd, 1, l->timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return pfd.revents;
    drop(l, why);
    return 0;
}

/* Drives the connection, waiting at most timeout_ms for each step, until
 * *done (done NULL: until no deferred reply is awaited). -1 if the
 * connection broke or went silent meanwhile (it is dropped), else 0 (also
 * when it was dropped for a demoted server: the caller may reconnect). */
static int pump(struct redis_link *l, const bool *done)
{
    while (l->ac && !(done ? *done : l->pending == 0)) {
        redisContext *c = &l->ac->c;
        bool writing = !(c->flags & REDIS_CONNECTED) || sdslen(c->obuf) > 0;
        short got = wait_io(l, POLLIN | (writing ? POLLOUT : 0), "no reply in time");
        if (!got)
            return -1;
        if (got & (POLLOUT | POLLERR | POLLHUP))
            redisAsyncHandleWrite(l->ac);
        if (l->ac && (got & (POLLIN | POLLERR | POLLHUP)))
            redisAsyncHandleRead(l->ac);
        if (!l->ac)
            return -1; /* hiredis found it broken, and freed it */
        if (l->demoted)
            drop(l, "the server is a replica now");
    }
    return 0;
}

/* A deep copy of r that freeReplyObject() frees (hiredis frees the
 * replies it hands a callback once the callback returns). */
static redisReply *reply_dup(const redisReply *r)
{
    redisReply *c = calloc(1, sizeof(*c));
    if (!c)
        g_error("out of memory");
    c->type = r->type;
    c->integer = r->integer;
    c->len = r->len;
    if (r->str) {
        c->str = malloc(r->len + 1);
        if (!c->str)
            g_error("out of memory");
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
    }
    if (r->element) {
        c->elements = r->elements;
        c->element = calloc(r->elements ? r->elements : 1, sizeof(*c->element));
        if (!c->element)
            g_error("out of memory");
        for (size_t i = 0; i < r->elements; i++)
            c->element[i] = r->element[i] ? reply_dup(r->element[i]) : NULL;
    }
    return c;
}

static bool says_readonly(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && g_str_has_prefix(r->str, "READONLY");
}

/* A command waited for: its reply (a copy), once told. */
struct waited {
    bool done;
    redisReply *reply;
};

static void on_waited(redisAsyncContext *ac, void *reply, void *ud)
{
    struct redis_link *l = ac->data;
    struct waited *w = ud;
    w->done = true;
    w->reply = reply ? reply_dup(reply) : NULL;
    l->demoted = l->demoted || says_readonly(reply);
}

/* Sends cmd and waits for its reply (NULL: the connection was lost). */
static redisReply *exchange(struct redis_link *l, int argc, const char **argv, const size_t *len)
{
    struct waited w = {false, NULL};
    if (!l->ac) {
        set_error(l, argc ? argv[0] : "command", "not connected");
        return NULL;
    }
    if (redisAsyncCommandArgv(l->ac, on_waited, &w, argc, argv, len) != REDIS_OK) {
        drop(l, "cannot send");
        return NULL;
    }
    pump(l, &w.done); /* told, if only that it was lost with the connection */
    if (!w.reply && !l->error[0])
        set_error(l, argc ? argv[0] : "command", "connection lost");
    return w.reply;
}

/* One command of the connection's set-up, whose reply must not be an
 * error: 0 or -1. */
static int expect_ok(struct redis_link *l, const char *what, int argc, const char **argv)
{
    redisReply *r = exchange(l, argc, argv, NULL);
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (rc)
        set_error(l, what, r ? r->str : "connection lost");
    if (r)
        freeReplyObject(r);
    return rc;
}

/* Waits for the connection's connect to end: 0 once made, -1 if it
 * failed or took longer than timeout_ms (l->error says which). */
static int connected(struct redis_link *l)
{
    while (l->ac && !(l->ac->c.flags & REDIS_CONNECTED) && wait_io(l, POLLOUT, "connect timed out"))
        redisAsyncHandleWrite(l->ac); /* ends the connect, or frees the context */
    if (!l->ac && !l->error[0])
        set_error(l, "connect", "failed");
    return l->ac ? 0 : -1;
}

/* Connects and sets the connection up (AUTH, SELECT, and with Sentinel a
 * check that the server is the master): 0, or -1 with l->error set. */
static int open_ac(struct redis_link *l)
{
    char *host = NULL, *path = NULL;
    int port = 0;
    if (redis_link_address(l, &host, &port, &path) != 0)
        return -1;
    redisAsyncContext *ac =
        host ? redisAsyncConnect(host, port) : redisAsyncConnectUnix(path ? path : l->url.socket);
    g_free(host);
    g_free(path);
    if (!ac) {
        set_error(l, "connect", "out of memory");
        return -1;
    }
    if (ac->err) {
        set_error(l, "connect", ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    ac->data = l;
    ac->ev.data = ac;
    ac->ev.cleanup = on_cleanup;
    l->ac = ac;
    l->demoted = false;
    int rc = connected(l);
    if (rc == 0 && l->url.password) {
        const char *argv[] = {"AUTH", l->url.user ? l->url.user : l->url.password, l->url.password};
        rc = l->url.user ? expect_ok(l, "AUTH", 3, argv)
                         : expect_ok(l, "AUTH", 2, (const char *[]){"AUTH", l->url.password});
    }
    if (rc == 0 && l->url.db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", l->url.db);
        rc = expect_ok(l, "SELECT", 2, (const char *[]){"SELECT", db});
    }
    if (rc == 0 && l->url.master) {
        /* A sentinel's answer may be stale during a failover: the server
         * itself must say it is the master. */
        redisReply *r = exchange(l, 1, (const char *[]){"ROLE"}, NULL);
        bool master = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                      r->element[0]->type == REDIS_REPLY_STRING &&
                      strcmp(r->element[0]->str, "master") == 0;
        if (!master) {
            set_error(l, "ROLE", "the server named by the sentinels is not a master");
            rc = -1;
        }
        if (r)
            freeReplyObject(r);
    }
    if (rc != 0 || !l->ac) {
        char why[sizeof(l->error)];
        memcpy(why, l->error, sizeof(why));
        drop(l, NULL);
        memcpy(l->error, why, sizeof(why));
        return -1;
    }
    return 0;
}

int redis_link_connect(struct redis_link *l)
{
    if (l->ac)
        return 0;
    int64_t now = now_ms();
    if (now < l->next_try_ms)
        return -1; /* l->error still says why */
    if (open_ac(l) != 0) {
        l->backoff_ms = l->backoff_ms ? MIN(l->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
        l->next_try_ms = now + l->backoff_ms;
        return -1;
    }
    l->backoff_ms = 0;
    l->next_try_ms = 0;
    l->error[0] = '\0';
    return 0;
}

/* A deferred command's reply (NULL: lost with the connection). A write's
 * error, or its loss (it may have been applied), fails the batch; a
 * read's or a count's fails nothing. */
static void on_deferred(redisAsyncContext *ac, void *reply, void *ud)
{
    struct redis_link *l = ac->data;
    struct deferred_call *d = ud;
    redisReply *r = reply;
    l->pending--;
    if (!r && l->sending_n && l->sending_n == l->done_n + 1) {
        /* Lost while being written: never sent, and nobody told (d is
         * the sender's to free). */
        l->sent_n--;
        l->send_lost = true;
        return;
    }
    l->done_n++;
    if (r)
        l->progress_ms = now_ms();
    bool ok = true;
    if (!d || d->write) {
        ok = r && r->type != REDIS_REPLY_ERROR;
        if (!ok) {
            l->deferred_failed++;
            set_error(l, "deferred write", r ? r->str : ac->errstr[0] ? ac->errstr : "lost");
        }
    }
    l->demoted = l->demoted || says_readonly(r);
    if (d) {
        d->cb(r, d->ud);
        g_free(d);
    }
    if (l->on_reply)
        l->on_reply(l->done_n, ok, l->reply_ud);
}

void redis_link_on_reply(struct redis_link *l, redis_reply_cb cb, void *ud)
{
    l->on_reply = cb;
    l->reply_ud = ud;
}

uint64_t redis_link_sent(const struct redis_link *l)
{
    return l->sent_n;
}

uint64_t redis_link_done(const struct redis_link *l)
{
    return l->done_n;
}

int redis_link_fd(const struct redis_link *l)
{
    return l->pending > 0 && l->ac ? l->ac->c.fd : -1;
}

void redis_link_poll(struct redis_link *l)
{
    if (!l->ac || l->pending <= 0)
        return;
    struct pollfd pfd = {.fd = l->ac->c.fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0) {
        /* nothing yet (a reply is never waited for here), but a server
         * that stays silent as long as a command may wait is given up */
        if (now_ms() - l->progress_ms > l->timeout_ms)
            drop(l, "no reply in time");
        return;
    }
    redisAsyncHandleRead(l->ac); /* the callbacks of the replies in */
    /* Demoted: reconnect through the sentinels; what is still awaited fails. */
    if (l->ac && l->demoted)
        drop(l, "the server is a replica now");
}

/* Sends cmd with callback d (NULL: a plain write), now: it reaches the
 * server before anything this process says later on other connections
 * (the bus). 0, or -1 (nothing sent) if the server cannot be reached. */
static int send_deferred(struct redis_link *l, const struct redis_cmd *cmd, struct deferred_call *d)
{
    if (redis_link_connect(l) != 0)
        return -1;
    if (redisAsyncCommandArgv(l->ac, on_deferred, d, cmd->n, cmd->v, cmd->len) != REDIS_OK) {
        drop(l, "cannot send");
        return -1;
    }
    if (l->pending == 0)
        l->progress_ms = now_ms();
    l->pending++;
    l->sent_n++;
    uint64_t outer_n = l->sending_n; /* a send told inside another's */
    bool outer_lost = l->send_lost;
    l->sending_n = l->sent_n;
    l->send_lost = false;
    /* Written out now; the socket's buffer is full only under a server
     * that reads slowly, or stopped (it then times out). */
    while (l->ac && sdslen(l->ac->c.obuf) > 0) {
        redisAsyncHandleWrite(l->ac);
        if (!l->ac || sdslen(l->ac->c.obuf) == 0)
            break;
        gint64 t0 = g_get_monotonic_time();
        wait_io(l, POLLOUT, "cannot send in time");
        count_wait(t0);
    }
    bool lost = l->send_lost; /* the connection went before it was written */
    l->sending_n = outer_n;
    l->send_lost = outer_lost;
    return lost ? -1 : 0;
}

int redis_link_defer_call(struct redis_link *l, const struct redis_cmd *cmd, redis_call_cb cb,
                          void *ud)
{
    struct deferred_call *d = g_new(struct deferred_call, 1);
    *d = (struct deferred_call){false, cb, ud};
    if (send_deferred(l, cmd, d) != 0) {
        g_free(d);
        return -1;
    }
    return 0;
}

int redis_link_defer_write_call(struct redis_link *l, const struct redis_cmd *cmd, redis_call_cb cb,
                                void *ud)
{
    struct deferred_call *d = g_new(struct deferred_call, 1);
    *d = (struct deferred_call){true, cb, ud};
    if (send_deferred(l, cmd, d) != 0) {
        g_free(d);
        return -1;
    }
    l->deferred_sent = true;
    return 0;
}

int redis_link_defer(struct redis_link *l, const struct redis_cmd *cmd)
{
    if (send_deferred(l, cmd, NULL) != 0)
        return -1;
    l->deferred_sent = true;
    return 0;
}

/* Connected, with the deferred writes' replies read (they come first on
 * the connection): 0, or -1 with the reason in l->error. */
static int ready(struct redis_link *l)
{
    if (redis_link_connect(l) != 0)
        return -1;
    if (l->pending > 0 && (pump(l, NULL) != 0 || redis_link_connect(l) != 0))
        return -1;
    return 0;
}

/* Replies to n commands sent at once. */
struct pipeline_wait {
    int n, got;
    bool done;
    redisReply **replies;
};

static void on_piped(redisAsyncContext *ac, void *reply, void *ud)
{
    struct redis_link *l = ac->data;
    struct pipeline_wait *p = ud;
    p->replies[p->got++] = reply ? reply_dup(reply) : NULL;
    p->done = p->got == p->n;
    l->demoted = l->demoted || says_readonly(reply);
}

static int pipeline(struct redis_link *l, const struct redis_cmd *cmds, int n, redisReply **replies)
{
    if (ready(l) != 0)
        return -1;
    struct pipeline_wait p = {n, 0, n == 0, replies};
    int sent = 0;
    for (; sent < n && l->ac; sent++)
        if (redisAsyncCommandArgv(l->ac, on_piped, &p, cmds[sent].n, cmds[sent].v,
                                  cmds[sent].len) != REDIS_OK)
            break;
    if (sent < n) {
        drop(l, "cannot send"); /* tells those sent */
        return -1;
    }
    pump(l, &p.done);
    for (int i = 0; i < n; i++)
        if (!replies[i])
            return -1;
    return 0;
}

int redis_link_pipeline(struct redis_link *l, const struct redis_cmd *cmds, int n,
                        redisReply **replies)
{
    for (int i = 0; i < n; i++)
        replies[i] = NULL;
    gint64 t0 = g_get_monotonic_time();
    int rc = pipeline(l, cmds, n, replies);
    count_wait(t0);
    return rc;
}

int redis_link_drain(struct redis_link *l)
{
    if (l->pending > 0) {
        gint64 t0 = g_get_monotonic_time();
        pump(l, NULL);
        count_wait(t0);
    }
    if (l->deferred_sent && l->deferred_failed == 0 && redis_link_wait(l) != 0)
        l->deferred_failed++;
    l->deferred_sent = false;
    int failed = l->deferred_failed;
    l->deferred_failed = 0;
    return failed ? -1 : 0;
}

static redisReply *run(struct redis_link *l, const struct redis_cmd *cmd)
{
    if (ready(l) != 0)
        return NULL;
    redisReply *r = exchange(l, cmd->n, cmd->v, cmd->len);
    if (r && r->type == REDIS_REPLY_ERROR)
        set_error(l, cmd->n ? cmd->v[0] : "command", r->str);
    return r;
}

redisReply *redis_link_run(struct redis_link *l, const struct redis_cmd *cmd)
{
    gint64 t0 = g_get_monotonic_time();
    redisReply *r = run(l, cmd);
    count_wait(t0);
    return r;
}

redisReply *redis_link_call(struct redis_link *l, struct redis_cmd *c)
{
    redisReply *r = redis_link_run(l, c);
    redis_cmd_clear(c);
    if (r && r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int redis_link_wait(struct redis_link *l)
{
    if (l->url.wait_replicas <= 0)
        return 0;
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_str(&c, "WAIT");
    redis_cmd_i64(&c, l->url.wait_replicas);
    redis_cmd_i64(&c, l->url.wait_ms);
    redisReply *r = redis_link_run(l, &c);
    redis_cmd_clear(&c);
    long long got = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    if (got >= l->url.wait_replicas)
        return 0;
    if (got >= 0)
        snprintf(l->error, sizeof(l->error), "WAIT: the write reached %lld of %d replicas", got,
                 l->url.wait_replicas);
    return -1;
}

void redis_cmd_script(struct redis_cmd *c, const char *verb, const char *script,
                      const struct redis_cmd *args)
{
    redis_cmd_str(c, verb);
    redis_cmd_str(c, script);
    redis_cmd_str(c, "0");
    for (int i = 0; i < args->n; i++)
        redis_cmd_bin(c, args->v[i], args->len[i]);
}

redisReply *redis_link_script(struct redis_link *l, const struct redis_script *s,
                              const struct redis_cmd *args)
{
    struct redis_cmd c;
    redis_cmd_init(&c);
    redis_cmd_script(&c, "EVALSHA", s->sha, args);
    redisReply *r = redis_link_run(l, &c);
    if (r && r->type == REDIS_REPLY_ERROR && g_str_has_prefix(r->str, "NOSCRIPT")) {
        freeReplyObject(r);
        c.v[0] = "EVAL";
        c.len[0] = 4;
        c.v[1] = s->body;
        c.len[1] = strlen(s->body);
        r = redis_link_run(l, &c);
    }
    redis_cmd_clear(&c);
    return r;
}
