/*
 * yjt-load: WebSocket connection load generator for yjtd.
 *
 * It opens many WebSocket connections (subprotocol "yjt.v1") to a yjtd
 * instance on the loopback interface, logs each one in, keeps them all idle
 * for a while and reports how fast they connected and logged in and, when
 * given the server's pid, how much resident memory the server used for them.
 *
 * The work is split over several forked worker processes (each with its own
 * libwebsockets context and at most ~19,000 sockets, because a process may
 * hold only 20,000 open files) and over several loopback source addresses
 * 127.0.0.2 .. 127.0.0.(1+S) so the ephemeral port range of a single source
 * address is never the limit.  The parent process drives the phases
 * (connect, hold, close), reads the server's RSS at the start and the end of
 * the hold, and merges the workers' results, which come back as one JSON line
 * per worker over a pipe.  It prints one JSON line on stdout and a readable
 * summary on stderr, and exits 0 only if every connection succeeded.
 *
 * Only loopback targets are accepted.  Run with --help for the options.
 */

#ifndef _GNU_SOURCE
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#endif

#include <libwebsockets.h>
#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUBPROTOCOL "yjt.v1"
#define MAX_CONNS_PER_PROC 19000 /* a process may hold 20,000 open files */
#define FD_HEADROOM 200          /* files a worker needs besides its sockets */
#define MAX_PROCS 64
#define MAX_SOURCES 254
#define RX_BUFFER_SIZE 4096
#define MAX_REPLY_BYTES (256 * 1024) /* biggest login reply we will buffer */
#define MAX_ARG_STRING 256
#define ERR_SLOTS 16
#define CLOSE_GRACE_NS (5ull * 1000000000ull)
#define TICK_BUSY_US 1000
#define TICK_IDLE_US 20000
#define NS_PER_S 1000000000ull

/*
 * lws keeps per-connection timeouts in one sorted list, so putting thousands
 * of connections into a state with a timeout at once (a close waiting for
 * its acknowledgement) costs quadratic time.  Closes are therefore issued a
 * batch at a time, like connects.
 */
#define CLOSE_INFLIGHT 256

/* ------------------------------------------------------------------------ */
/* configuration                                                             */

struct load_config {
    const char *host; /* as given on the command line */
    char address[64]; /* numeric address we connect to */
    int port;
    const char *path;
    int conns;
    int procs;
    int sources;
    double rate;  /* new connection attempts per second per process */
    int inflight; /* max unsettled connections per process */
    double hold_s;
    double timeout_s;
    const char *user;
    const char *password;
    const char *token;
    bool no_auth;
    bool token_from_login;
    bool tls;
    bool ipv6;
    int verbose;
    long server_pid;            /* 0 = not given */
    long long baseline_rss_kib; /* -1 = not given */
};

static char source_names[MAX_SOURCES][24];

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("yjt-load: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    exit(2);
}

/* ------------------------------------------------------------------------ */
/* worker process: one lws context driving a share of the connections        */

enum conn_state {
    CS_IDLE = 0,   /* not started yet */
    CS_CONNECTING, /* TCP / TLS / WebSocket handshake in progress */
    CS_OPEN,       /* handshake done, login reply pending */
    CS_READY,      /* logged in (or open, with --no-auth) */
    CS_FAILED,     /* never became ready */
    CS_DROPPED,    /* was ready, closed by the server before we closed it */
    CS_CLOSED,     /* was ready, closed by us at the end */
};

struct conn {
    struct lws *wsi;
    char *rx; /* partial login reply, only while it is fragmented */
    uint32_t rx_len;
    uint32_t index;      /* index within this worker */
    uint64_t t_start_ns; /* connection attempt started */
    uint64_t t_login_ns; /* login message written */
    uint8_t state;
    uint8_t closing;     /* close with a close frame when next writeable */
    uint8_t established; /* the WebSocket handshake completed */
    uint8_t peer_closed; /* the server sent a close frame (already recorded) */
};

struct err_slot {
    char text[96];
    unsigned count;
};

enum worker_phase { WP_CONNECT, WP_HOLD, WP_CLOSING };

struct worker {
    const struct load_config *cfg;
    int proc_index;
    int first_global; /* global index of this worker's first connection */
    int count;
    struct conn *conns;
    struct lws_context *ctx;
    lws_sorted_usec_list_t tick;
    int up_fd;   /* results to the parent */
    int down_fd; /* commands from the parent (non-blocking) */
    enum worker_phase phase;
    bool stop;
    bool settled_reported;
    int next_start;
    int inflight;
    int settled;
    int connected;
    int ready;
    int failed;
    int dropped;
    int closed_clean;
    int open_wsi;
    int closing_open; /* closes requested, socket not gone yet */
    int close_next;   /* next connection to close in the close phase */
    uint64_t t_begin_ns;
    uint64_t t_last_open_ns;
    uint64_t t_last_login_ns;
    uint64_t connect_deadline_ns;
    uint64_t final_deadline_ns; /* everything must be closed by then */
    uint64_t close_deadline_ns;
    uint64_t close_grace_ns;
    uint32_t *hs_us;
    int hs_n;
    uint32_t *login_us;
    int login_n;
    struct err_slot errs[ERR_SLOTS];
    unsigned err_other;
    bool capture_token; /* keep the token of the login reply (--token-from-login) */
    char *token;
};

static struct worker the_worker;

static void record_error(struct worker *w, const char *text)
{
    char clean[96];
    size_t n = 0;

    for (const char *p = text; *p && n + 1 < sizeof(clean); p++)
        clean[n++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
    while (n > 0 && clean[n - 1] == ' ')
        n--;
    clean[n] = '\0';

    for (int i = 0; i < ERR_SLOTS; i++) {
        if (w->errs[i].count && !strcmp(w->errs[i].text, clean)) {
            w->errs[i].count++;
            return;
        }
        if (!w->errs[i].count) {
            memcpy(w->errs[i].text, clean, n + 1);
            w->errs[i].count = 1;
            return;
        }
    }
    w->err_other++;
}

static bool conn_unsettled(const struct conn *c)
{
    return c->state == CS_IDLE || c->state == CS_CONNECTING || c->state == CS_OPEN;
}

/* Moves an unsettled connection to CS_READY or CS_FAILED, keeping counts. */
static void conn_settle(struct worker *w, struct conn *c, enum conn_state to)
{
    if (!conn_unsettled(c))
        return;
    if (c->state != CS_IDLE)
        w->inflight--;
    c->state = (uint8_t)to;
    w->settled++;
    if (to == CS_READY)
        w->ready++;
    else
        w->failed++;
}

static void conn_fail(struct worker *w, struct conn *c, const char *why)
{
    if (!conn_unsettled(c))
        return;
    record_error(w, why);
    conn_settle(w, c, CS_FAILED);
}

static void conn_detach(struct worker *w, struct conn *c)
{
    if (c->wsi) {
        c->wsi = NULL;
        w->open_wsi--;
        if (c->closing)
            w->closing_open--;
    }
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
}

/* Asks lws to close the connection cleanly (close frame) from WRITEABLE. */
static void conn_request_close(struct worker *w, struct conn *c)
{
    if (!c->wsi || c->closing)
        return;
    c->closing = 1;
    w->closing_open++;
    if (!c->established) /* nothing to say a close frame on: just drop it */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    else
        lws_callback_on_writable(c->wsi);
}

static struct conn *conn_of(struct lws *wsi, void *user)
{
    if (user)
        return user;
    return wsi ? lws_get_opaque_user_data(wsi) : NULL;
}

static uint32_t elapsed_us(uint64_t from_ns, uint64_t to_ns)
{
    uint64_t us = (to_ns - from_ns) / 1000u;
    return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int send_login(struct worker *w, struct conn *c, struct lws *wsi)
{
    const struct load_config *cfg = w->cfg;
    unsigned char buf[LWS_PRE + 2048];
    char device_id[48];
    json_t *msg;
    size_t len;

    if (w->capture_token)
        snprintf(device_id, sizeof(device_id), "load-token-%u", c->index);
    else
        snprintf(device_id, sizeof(device_id), "load-%d-%u", w->proc_index, c->index);
    if (cfg->token) {
        /*
         * yjtd keeps one connection per user and device (a second one
         * replaces the first, close code 4409), so even with a shared token
         * every connection names its own device.
         */
        msg = json_pack("{s:i, s:s, s:s, s:s, s:s}", "id", 1, "type", "auth.token", "token",
                        cfg->token, "device_id", device_id, "platform", "load");
    } else {
        msg = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "id", 1, "type", "auth.login", "username",
                        cfg->user, "password", cfg->password, "device_id", device_id, "platform",
                        "load");
    }
    if (!msg) {
        conn_fail(w, c, "cannot build login message");
        return -1;
    }
    len = json_dumpb(msg, (char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE, JSON_COMPACT);
    json_decref(msg);
    if (len == 0 || len > sizeof(buf) - LWS_PRE) {
        conn_fail(w, c, "login message too long");
        return -1;
    }
    c->t_login_ns = mono_ns();
    if (lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len) {
        conn_fail(w, c, "write of login message failed");
        return -1;
    }
    return 0;
}

/* Handles one complete text message received while the login is pending. */
static void handle_message(struct worker *w, struct conn *c, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, 0, &jerr);
    json_t *re, *ok;
    char why[96];

    if (!msg || !json_is_object(msg)) {
        json_decref(msg);
        conn_fail(w, c, "server sent invalid JSON before the login reply");
        conn_request_close(w, c);
        return;
    }
    re = json_object_get(msg, "re");
    if (!json_is_integer(re) || json_integer_value(re) != 1) {
        json_decref(msg); /* some other event: ignore it */
        return;
    }
    ok = json_object_get(msg, "ok");
    if (json_is_true(ok)) {
        uint64_t now = mono_ns();
        w->login_us[w->login_n++] = elapsed_us(c->t_login_ns, now);
        w->t_last_login_ns = now;
        if (w->capture_token && !w->token) {
            const char *token = json_string_value(json_object_get(msg, "token"));
            w->token = token ? strdup(token) : NULL;
        }
        conn_settle(w, c, CS_READY);
    } else {
        const char *code =
            json_string_value(json_object_get(json_object_get(msg, "error"), "code"));
        snprintf(why, sizeof(why), "login refused: %s", code ? code : "(no error code)");
        conn_fail(w, c, why);
        conn_request_close(w, c);
    }
    json_decref(msg);
}

static int on_receive(struct worker *w, struct conn *c, struct lws *wsi, const void *in, size_t len)
{
    bool complete = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    char *grown;

    if (c->state != CS_OPEN || lws_frame_is_binary(wsi))
        return 0; /* after login everything is ignored */

    if (complete && c->rx_len == 0) {
        handle_message(w, c, in, len);
        return 0;
    }
    if ((size_t)c->rx_len + len > MAX_REPLY_BYTES) {
        conn_fail(w, c, "message before login reply too large");
        return -1;
    }
    grown = realloc(c->rx, (size_t)c->rx_len + len + 1);
    if (!grown) {
        conn_fail(w, c, "out of memory");
        return -1;
    }
    c->rx = grown;
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += (uint32_t)len;
    if (complete) {
        handle_message(w, c, c->rx, c->rx_len);
        free(c->rx);
        c->rx = NULL;
        c->rx_len = 0;
    }
    return 0;
}

static int on_lws_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct worker *w = &the_worker;
    struct conn *c;
    char why[128];

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        c = conn_of(wsi, user);
        if (!c)
            return 0;
        conn_detach(w, c);
        snprintf(why, sizeof(why), "connect: %.100s", in ? (const char *)in : "unknown error");
        conn_fail(w, c, why);
        return 0;

    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        uint64_t now = mono_ns();
        c = conn_of(wsi, user);
        if (!c || c->state != CS_CONNECTING)
            return -1; /* given up on already */
        if (!c->wsi) {
            c->wsi = wsi;
            w->open_wsi++;
        }
        c->established = 1;
        w->connected++;
        w->hs_us[w->hs_n++] = elapsed_us(c->t_start_ns, now);
        w->t_last_open_ns = now;
        if (w->cfg->no_auth) {
            conn_settle(w, c, CS_READY);
        } else {
            c->state = CS_OPEN;
            lws_callback_on_writable(wsi);
        }
        return 0;
    }

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        c = conn_of(wsi, user);
        if (!c)
            return 0;
        if (c->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"done", 4);
            return -1;
        }
        if (c->state == CS_OPEN && !c->t_login_ns)
            return send_login(w, c, wsi);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        c = conn_of(wsi, user);
        if (!c)
            return 0;
        return on_receive(w, c, wsi, in, len);

    case LWS_CALLBACK_CLIENT_CLOSED:
        c = conn_of(wsi, user);
        if (!c)
            return 0;
        conn_detach(w, c);
        if (c->state == CS_READY) {
            if (c->closing) {
                c->state = CS_CLOSED;
                w->closed_clean++;
            } else {
                c->state = CS_DROPPED;
                w->dropped++;
                if (!c->peer_closed)
                    record_error(w, "connection lost while idle");
            }
        } else if (c->peer_closed) {
            conn_settle(w, c, CS_FAILED);
        } else {
            conn_fail(w, c,
                      c->state == CS_OPEN ? "connection lost before the login reply"
                                          : "connection lost during handshake");
        }
        return 0;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        /* the server closes: keep its close code and reason */
        const unsigned char *p = in;
        unsigned code = (p && len >= 2) ? (unsigned)(p[0] << 8 | p[1]) : 0;
        int reason_len = (p && len > 2) ? (int)(len - 2 > 60 ? 60 : len - 2) : 0;

        c = conn_of(wsi, user);
        if (!c || c->closing || c->peer_closed)
            return 0;
        c->peer_closed = 1;
        snprintf(why, sizeof(why), "%s: close %u %.*s",
                 c->state == CS_READY  ? "closed by server while idle"
                 : c->state == CS_OPEN ? "closed by server before the login reply"
                                       : "closed by server",
                 code, reason_len, reason_len ? (const char *)p + 2 : "");
        if (c->state == CS_READY || conn_unsettled(c))
            record_error(w, why);
        return 0;
    }

    case LWS_CALLBACK_WSI_DESTROY:
        /*
         * Some ways a client connection can die before its handshake
         * finished (for example killed while waiting for the server's
         * reply) produce no CONNECTION_ERROR or CLOSED; this catches them.
         */
        c = conn_of(wsi, user);
        if (!c || c->wsi != wsi)
            return 0;
        conn_detach(w, c);
        conn_fail(w, c, "dropped by lws before the handshake finished (its timeout)");
        return 0;

    default:
        return 0;
    }
}

static const struct lws_protocols worker_protocols[] = {
    {SUBPROTOCOL, on_lws_event, 0, RX_BUFFER_SIZE, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/*
 * No lws "validity" (idle ping / hangup) timers on our connections: lws keeps
 * every connection's timer in one sorted linked list, so with thousands of
 * connections each (re)arm walks thousands of entries and connecting slows
 * to a crawl.  The server's own pings are still answered by lws.
 */
static const lws_retry_bo_t no_validity_timers = {
    .secs_since_valid_ping = 0,
    .secs_since_valid_hangup = 0,
};

static void start_conn(struct worker *w, struct conn *c, uint64_t now)
{
    const struct load_config *cfg = w->cfg;
    struct lws_client_connect_info ci;
    struct lws *wsi;

    memset(&ci, 0, sizeof(ci));
    ci.context = w->ctx;
    ci.address = cfg->address;
    ci.port = cfg->port;
    ci.path = cfg->path;
    ci.host = cfg->host;
    ci.origin = cfg->host;
    ci.protocol = SUBPROTOCOL;
    ci.userdata = c;
    ci.opaque_user_data = c;
    ci.retry_and_idle_policy = &no_validity_timers;
    if (cfg->sources > 0)
        ci.iface = source_names[(w->first_global + (int)c->index) % cfg->sources];
    if (cfg->tls) {
        ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
                            LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_INSECURE;
        ci.alpn = "http/1.1";
    }

    c->state = CS_CONNECTING;
    c->t_start_ns = now;
    w->inflight++;

    wsi = lws_client_connect_via_info(&ci);
    if (!wsi) {
        conn_fail(w, c, "connect: lws_client_connect_via_info failed");
        return;
    }
    if (c->state == CS_CONNECTING && !c->wsi) {
        c->wsi = wsi;
        w->open_wsi++;
    }
}

static void start_more(struct worker *w, uint64_t now)
{
    const struct load_config *cfg = w->cfg;
    long budget = w->count - w->next_start;
    long room = cfg->inflight - w->inflight;

    if (cfg->rate > 0) {
        double elapsed = (double)(now - w->t_begin_ns) / 1e9;
        long due = (long)(elapsed * cfg->rate) + 1;
        if (due - w->next_start < budget)
            budget = due - w->next_start;
    }
    if (room < budget)
        budget = room;
    while (budget-- > 0 && w->next_start < w->count)
        start_conn(w, &w->conns[w->next_start++], now);
}

/* Gives up on every connection that is not settled yet. */
static void abort_unsettled(struct worker *w, const char *why_idle, const char *why_connecting,
                            const char *why_open)
{
    for (int i = 0; i < w->count; i++) {
        struct conn *c = &w->conns[i];
        switch (c->state) {
        case CS_IDLE:
            conn_fail(w, c, why_idle);
            break;
        case CS_CONNECTING:
            conn_fail(w, c, why_connecting);
            conn_request_close(w, c);
            break;
        case CS_OPEN:
            conn_fail(w, c, why_open);
            conn_request_close(w, c);
            break;
        default:
            break;
        }
    }
}

static void report_settled(struct worker *w)
{
    char line[32];
    int n;

    if (w->settled_reported)
        return;
    w->settled_reported = true;
    n = snprintf(line, sizeof(line), "S %d\n", w->ready);
    if (write(w->up_fd, line, (size_t)n) != n && w->cfg->verbose)
        fprintf(stderr, "yjt-load[%d]: cannot report to parent: %s\n", w->proc_index,
                strerror(errno));
}

static void close_more(struct worker *w)
{
    while (w->closing_open < CLOSE_INFLIGHT && w->close_next < w->count)
        conn_request_close(w, &w->conns[w->close_next++]);
}

static void begin_closing(struct worker *w, uint64_t now)
{
    if (w->phase == WP_CLOSING)
        return;
    if (w->phase == WP_CONNECT) {
        abort_unsettled(w, "not started: stopped by parent", "handshake not finished when stopped",
                        "no login reply when stopped");
        report_settled(w);
    }
    w->phase = WP_CLOSING;
    w->close_deadline_ns = now + CLOSE_GRACE_NS;
    if (w->close_deadline_ns > w->final_deadline_ns)
        w->close_deadline_ns = w->final_deadline_ns > now ? w->final_deadline_ns : now;
    w->close_grace_ns = w->close_deadline_ns - now;
    close_more(w);
}

static void check_parent(struct worker *w, uint64_t now)
{
    char cmd[16];
    ssize_t n = read(w->down_fd, cmd, sizeof(cmd));

    if (n >= 0) /* a command, or the parent went away */
        begin_closing(w, now);
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        begin_closing(w, now);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct worker *w = lws_container_of(sul, struct worker, tick);
    uint64_t now = mono_ns();

    check_parent(w, now);

    if (w->phase == WP_CONNECT) {
        if (now >= w->connect_deadline_ns)
            abort_unsettled(w, "not started before the deadline",
                            "handshake not finished before the deadline",
                            "no login reply before the deadline");
        else
            start_more(w, now);
        if (w->settled == w->count) {
            report_settled(w);
            w->phase = WP_HOLD;
        }
    }
    if (w->phase == WP_CLOSING)
        close_more(w);
    if (w->phase == WP_CLOSING && (w->open_wsi <= 0 || now >= w->close_deadline_ns)) {
        if (w->cfg->verbose)
            fprintf(stderr, "yjt-load[%d]: close phase took %.2fs, %d connections still open\n",
                    w->proc_index, (double)(now - (w->close_deadline_ns - w->close_grace_ns)) / 1e9,
                    w->open_wsi);
        w->stop = true;
    }
    /*
     * Always rearm: lws_service() only returns after its poll() wakes, and
     * without a pending timer that poll() could sleep for a long time.
     */
    lws_sul_schedule(w->ctx, 0, &w->tick, on_tick,
                     w->phase == WP_HOLD ? TICK_IDLE_US : TICK_BUSY_US);
}

static json_t *u32_array(const uint32_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static void report_final(struct worker *w)
{
    json_t *errs = json_object();
    json_t *r;
    char *text;

    for (int i = 0; i < ERR_SLOTS && w->errs[i].count; i++)
        json_object_set_new(errs, w->errs[i].text, json_integer(w->errs[i].count));
    if (w->err_other)
        json_object_set_new(errs, "(other errors)", json_integer(w->err_other));

    r = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:o, s:o, s:o}", "proc",
                  w->proc_index, "conns", w->count, "connected", w->connected, "ready", w->ready,
                  "failed", w->failed, "dropped", w->dropped, "closed_clean", w->closed_clean,
                  "t_begin_ns", (json_int_t)w->t_begin_ns, "t_last_open_ns",
                  (json_int_t)w->t_last_open_ns, "t_last_login_ns", (json_int_t)w->t_last_login_ns,
                  "hs_us", u32_array(w->hs_us, w->hs_n), "login_us",
                  u32_array(w->login_us, w->login_n), "errors", errs);
    if (r && w->token)
        json_object_set_new(r, "token", json_string(w->token));
    text = r ? json_dumps(r, JSON_COMPACT) : NULL;
    if (text) {
        write_all(w->up_fd, text, strlen(text));
        write_all(w->up_fd, "\n", 1);
    }
    free(text);
    json_decref(r);
}

static int run_worker(const struct load_config *cfg, int proc_index, int first_global, int count,
                      uint64_t connect_deadline_ns, uint64_t final_deadline_ns, int up_fd,
                      int down_fd)
{
    struct worker *w = &the_worker;
    struct lws_context_creation_info info;
    int level = 0;

    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    w->proc_index = proc_index;
    w->first_global = first_global;
    w->count = count;
    w->up_fd = up_fd;
    w->down_fd = down_fd;
    w->connect_deadline_ns = connect_deadline_ns;
    w->final_deadline_ns = final_deadline_ns;
    w->capture_token = proc_index < 0;
    w->conns = calloc((size_t)(count > 0 ? count : 1), sizeof(*w->conns));
    w->hs_us = calloc((size_t)(count > 0 ? count : 1), sizeof(uint32_t));
    w->login_us = calloc((size_t)(count > 0 ? count : 1), sizeof(uint32_t));
    if (!w->conns || !w->hs_us || !w->login_us) {
        fprintf(stderr, "yjt-load[%d]: out of memory\n", proc_index);
        return 1;
    }
    for (int i = 0; i < count; i++)
        w->conns[i].index = (uint32_t)i;

    if (cfg->verbose >= 1)
        level |= LLL_ERR | LLL_WARN;
    if (cfg->verbose >= 2)
        level |= LLL_NOTICE | LLL_INFO;
    lws_set_log_level(level, NULL);

    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = worker_protocols;
    info.gid = -1;
    info.uid = -1;
    info.timeout_secs = 30;
    info.connect_timeout_secs = 20;
    /*
     * fd_limit_per_thread stays 0: lws then sizes its fd lookup table to the
     * (raised) RLIMIT_NOFILE and looks sockets up directly; a smaller limit
     * makes it fall back to a linear search, slow with thousands of sockets.
     */
    if (cfg->tls)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;

    w->ctx = lws_create_context(&info);
    if (!w->ctx) {
        fprintf(stderr, "yjt-load[%d]: lws_create_context failed\n", proc_index);
        return 1;
    }

    w->t_begin_ns = mono_ns();
    w->phase = WP_CONNECT;
    lws_sul_schedule(w->ctx, 0, &w->tick, on_tick, 1);

    while (!w->stop) {
        if (lws_service(w->ctx, 0) < 0)
            break;
    }

    lws_sul_cancel(&w->tick);
    {
        uint64_t t = mono_ns();
        lws_context_destroy(w->ctx);
        if (cfg->verbose)
            fprintf(stderr, "yjt-load[%d]: lws_context_destroy took %.2fs\n", proc_index,
                    (double)(mono_ns() - t) / 1e9);
    }
    report_final(w);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* parent process: phases, server RSS, aggregation                            */

struct child {
    pid_t pid;
    int up_fd;
    int down_fd;
    bool settled;
    bool eof;
    int ready_at_settle;
    char *buf;
    size_t len;
    size_t cap;
    json_t *report;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static long long read_rss_kib(long pid)
{
    char path[64], line[256];
    long long kib = -1;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            kib = strtoll(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static void child_take_line(struct child *ch, char *line)
{
    if (line[0] == 'S' && line[1] == ' ') {
        ch->settled = true;
        ch->ready_at_settle = atoi(line + 2);
    } else if (line[0] == '{') {
        json_error_t jerr;
        json_decref(ch->report);
        ch->report = json_loads(line, 0, &jerr);
        ch->settled = true;
        if (!ch->report)
            fprintf(stderr, "yjt-load: bad report from worker %d: %s\n", (int)ch->pid, jerr.text);
    }
}

static void child_read(struct child *ch)
{
    char chunk[65536];
    ssize_t n = read(ch->up_fd, chunk, sizeof(chunk));
    char *nl;

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        ch->eof = true;
        ch->settled = true;
        close(ch->up_fd);
        ch->up_fd = -1;
        return;
    }
    if (ch->len + (size_t)n + 1 > ch->cap) {
        size_t cap = ch->cap ? ch->cap : 65536;
        while (cap < ch->len + (size_t)n + 1)
            cap *= 2;
        char *grown = realloc(ch->buf, cap);
        if (!grown) {
            fprintf(stderr, "yjt-load: out of memory\n");
            exit(1);
        }
        ch->buf = grown;
        ch->cap = cap;
    }
    memcpy(ch->buf + ch->len, chunk, (size_t)n);
    ch->len += (size_t)n;
    ch->buf[ch->len] = '\0';
    while ((nl = memchr(ch->buf, '\n', ch->len)) != NULL) {
        size_t used = (size_t)(nl - ch->buf) + 1;
        *nl = '\0';
        child_take_line(ch, ch->buf);
        memmove(ch->buf, ch->buf + used, ch->len - used);
        ch->len -= used;
        ch->buf[ch->len] = '\0';
    }
}

static void tell_children_to_close(struct child *kids, int n)
{
    for (int i = 0; i < n; i++) {
        if (kids[i].down_fd >= 0) {
            if (write(kids[i].down_fd, "C", 1) != 1) {
                /* the worker is gone already; its pipe closing says the same */
            }
            close(kids[i].down_fd);
            kids[i].down_fd = -1;
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

struct samples {
    uint32_t *v;
    size_t n;
    size_t cap;
};

static void samples_add_array(struct samples *s, json_t *arr)
{
    size_t i;
    json_t *item;

    if (!json_is_array(arr))
        return;
    if (s->n + json_array_size(arr) > s->cap) {
        size_t cap = s->n + json_array_size(arr);
        uint32_t *grown = realloc(s->v, cap * sizeof(*s->v));
        if (!grown)
            return;
        s->v = grown;
        s->cap = cap;
    }
    json_array_foreach(arr, i, item)
    {
        s->v[s->n++] = (uint32_t)json_integer_value(item);
    }
}

/* Nearest-rank percentile (pct in 1..100) of sorted samples, in milliseconds. */
static double percentile_value_ms(const struct samples *s, unsigned pct)
{
    size_t rank = (s->n * pct + 99) / 100;

    if (rank < 1)
        rank = 1;
    return (double)s->v[rank - 1] / 1000.0;
}

static json_t *percentile_ms(const struct samples *s, unsigned pct)
{
    return s->n ? json_real(percentile_value_ms(s, pct)) : json_null();
}

static json_t *rate_or_null(long count, double seconds)
{
    if (count <= 0 || seconds <= 0)
        return json_null();
    return json_real((double)count / seconds);
}

static json_t *int_or_null(long long v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

/*
 * --token-from-login: one worker process logs one connection in with the
 * username and password and hands back the session token of the reply.
 */
static char *fetch_token(const struct load_config *cfg, uint64_t deadline)
{
    struct load_config one = *cfg;
    struct child ch;
    int up[2], down[2];
    char *token = NULL;
    pid_t pid;

    one.token = NULL;
    one.conns = 1;
    if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0) {
        perror("yjt-load: pipe");
        return NULL;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        perror("yjt-load: fork");
        return NULL;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_IGN);
        close(up[0]);
        close(down[1]);
        fcntl(down[0], F_SETFL, fcntl(down[0], F_GETFL) | O_NONBLOCK);
        _exit(run_worker(&one, -1, 0, 1, deadline, deadline, up[1], down[0]));
    }
    close(up[1]);
    close(down[0]);
    memset(&ch, 0, sizeof(ch));
    ch.pid = pid;
    ch.up_fd = up[0];
    ch.down_fd = down[1];
    while (!ch.eof) {
        struct pollfd pfd = {.fd = ch.up_fd, .events = POLLIN};

        if (mono_ns() >= deadline + NS_PER_S) {
            kill(pid, SIGKILL);
            break;
        }
        if ((ch.settled || interrupted) && ch.down_fd >= 0)
            tell_children_to_close(&ch, 1);
        if (poll(&pfd, 1, 100) > 0)
            child_read(&ch);
    }
    if (ch.down_fd >= 0)
        close(ch.down_fd);
    if (ch.up_fd >= 0)
        close(ch.up_fd);
    waitpid(pid, NULL, 0);

    if (ch.report && json_string_value(json_object_get(ch.report, "token"))) {
        token = strdup(json_string_value(json_object_get(ch.report, "token")));
    } else {
        const char *key;
        json_t *val;
        fprintf(stderr, "yjt-load: --token-from-login: the login gave no token\n");
        json_object_foreach(json_object_get(ch.report, "errors"), key, val)
        {
            fprintf(stderr, "  %s\n", key);
        }
    }
    json_decref(ch.report);
    free(ch.buf);
    return token;
}

static void print_usage(void)
{
    fputs("usage: yjt-load --port PORT [options]\n"
          "\n"
          "Opens many WebSocket connections to ws://HOST:PORT/ws (subprotocol yjt.v1),\n"
          "logs them in, holds them idle and reports one JSON line on stdout.\n"
          "\n"
          "  --host HOST          target, loopback only (127.x.x.x, ::1, localhost;\n"
          "                       default 127.0.0.1)\n"
          "  --port PORT          target port (required)\n"
          "  --path PATH          WebSocket path (default /ws)\n"
          "  --tls                use wss:// and accept a self-signed certificate\n"
          "  -n, --conns N        connections in total (default 100)\n"
          "  --procs P            worker processes (default: enough for <= 19000 each)\n"
          "  --sources S          source addresses 127.0.0.2 .. 127.0.0.(1+S)\n"
          "                       (default: enough for the ephemeral port range;\n"
          "                       0 = let the kernel choose, the only choice for ::1)\n"
          "  --rate R             connection attempts per second per process (0 = no\n"
          "                       limit; default 0)\n"
          "  --inflight K         max connections per process still in handshake or\n"
          "                       waiting for the login reply (default 256)\n"
          "  --user U --password PW   log in with auth.login\n"
          "  --token T            log in with auth.token instead\n"
          "  --token-from-login   with --user/--password: log in once, then use the\n"
          "                       token from that reply for every connection\n"
          "  --no-auth            only connect, send nothing\n"
          "  --hold SECONDS       idle time once everything settled (default 10)\n"
          "  --timeout SECONDS    hard limit for the whole run (default 120)\n"
          "  --server-pid PID     read the server's VmRSS at start and end of the hold\n"
          "  --baseline-rss KIB   server RSS before any connection; adds\n"
          "                       rss_per_conn_bytes to the report\n"
          "  -v, --verbose        libwebsockets warnings (twice: notices)\n"
          "  -h, --help           this text\n"
          "\n"
          "Exit status: 0 if every connection opened, logged in and stayed up until\n"
          "the end of the hold; 1 otherwise; 2 on bad usage.\n",
          stdout);
}

static double parse_number(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        die_usage("bad value for %s: '%s'", opt, s);
    return v;
}

static const char *checked_string(const char *opt, const char *s)
{
    if (strlen(s) > MAX_ARG_STRING)
        die_usage("%s is longer than %d characters", opt, MAX_ARG_STRING);
    return s;
}

/* Accepts only loopback targets and fills cfg->address / cfg->ipv6. */
static void resolve_loopback(struct load_config *cfg)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (!strcmp(cfg->host, "localhost")) {
        snprintf(cfg->address, sizeof(cfg->address), "127.0.0.1");
        return;
    }
    if (inet_pton(AF_INET, cfg->host, &a4) == 1) {
        if ((ntohl(a4.s_addr) >> 24) != 127)
            die_usage("refusing non-loopback target %s", cfg->host);
        snprintf(cfg->address, sizeof(cfg->address), "%s", cfg->host);
        return;
    }
    if (inet_pton(AF_INET6, cfg->host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6)) {
        snprintf(cfg->address, sizeof(cfg->address), "::1");
        cfg->ipv6 = true;
        return;
    }
    die_usage("refusing non-loopback target %s (only 127.x.x.x, ::1, localhost)", cfg->host);
}

static int ephemeral_port_count(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int lo = 32768, hi = 60999;

    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2) {
            lo = 32768;
            hi = 60999;
        }
        fclose(f);
    }
    return hi > lo ? hi - lo + 1 : 1;
}

/* Checks that every source address can be bound before forking workers. */
static void check_sources(int sources)
{
    for (int i = 0; i < sources; i++) {
        struct sockaddr_in sa;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int rc;

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = 0;
        inet_pton(AF_INET, source_names[i], &sa.sin_addr);
        rc = fd >= 0 ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
        if (rc < 0) {
            fprintf(stderr, "yjt-load: cannot bind source address %s: %s\n", source_names[i],
                    strerror(errno));
            exit(2);
        }
        close(fd);
    }
}

static rlim_t raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

static void parse_args(int argc, char **argv, struct load_config *cfg)
{
    enum {
        OPT_HOST = 256,
        OPT_PORT,
        OPT_PATH,
        OPT_TLS,
        OPT_PROCS,
        OPT_SOURCES,
        OPT_RATE,
        OPT_INFLIGHT,
        OPT_USER,
        OPT_PASSWORD,
        OPT_TOKEN,
        OPT_NO_AUTH,
        OPT_TOKEN_FROM_LOGIN,
        OPT_HOLD,
        OPT_TIMEOUT,
        OPT_SERVER_PID,
        OPT_BASELINE_RSS,
    };
    static const struct option options[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"path", required_argument, NULL, OPT_PATH},
        {"tls", no_argument, NULL, OPT_TLS},
        {"conns", required_argument, NULL, 'n'},
        {"procs", required_argument, NULL, OPT_PROCS},
        {"sources", required_argument, NULL, OPT_SOURCES},
        {"rate", required_argument, NULL, OPT_RATE},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"user", required_argument, NULL, OPT_USER},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"no-auth", no_argument, NULL, OPT_NO_AUTH},
        {"token-from-login", no_argument, NULL, OPT_TOKEN_FROM_LOGIN},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"server-pid", required_argument, NULL, OPT_SERVER_PID},
        {"baseline-rss", required_argument, NULL, OPT_BASELINE_RSS},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->path = "/ws";
    cfg->conns = 100;
    cfg->procs = 0;
    cfg->sources = -1;
    cfg->inflight = 256;
    cfg->hold_s = 10;
    cfg->timeout_s = 120;
    cfg->baseline_rss_kib = -1;

    while ((opt = getopt_long(argc, argv, "n:vh", options, NULL)) != -1) {
        switch (opt) {
        case OPT_HOST:
            cfg->host = checked_string("--host", optarg);
            break;
        case OPT_PORT:
            cfg->port = (int)parse_number("--port", optarg, 1, 65535);
            break;
        case OPT_PATH:
            cfg->path = checked_string("--path", optarg);
            if (cfg->path[0] != '/')
                die_usage("--path must start with /");
            break;
        case OPT_TLS:
            cfg->tls = true;
            break;
        case 'n':
            cfg->conns = (int)parse_number("--conns", optarg, 1, MAX_PROCS * MAX_CONNS_PER_PROC);
            break;
        case OPT_PROCS:
            cfg->procs = (int)parse_number("--procs", optarg, 1, MAX_PROCS);
            break;
        case OPT_SOURCES:
            cfg->sources = (int)parse_number("--sources", optarg, 0, MAX_SOURCES);
            break;
        case OPT_RATE:
            cfg->rate = parse_number("--rate", optarg, 0, 1e7);
            break;
        case OPT_INFLIGHT:
            cfg->inflight = (int)parse_number("--inflight", optarg, 1, MAX_CONNS_PER_PROC);
            break;
        case OPT_USER:
            cfg->user = checked_string("--user", optarg);
            break;
        case OPT_PASSWORD:
            cfg->password = checked_string("--password", optarg);
            break;
        case OPT_TOKEN:
            cfg->token = checked_string("--token", optarg);
            break;
        case OPT_NO_AUTH:
            cfg->no_auth = true;
            break;
        case OPT_TOKEN_FROM_LOGIN:
            cfg->token_from_login = true;
            break;
        case OPT_HOLD:
            cfg->hold_s = parse_number("--hold", optarg, 0, 86400);
            break;
        case OPT_TIMEOUT:
            cfg->timeout_s = parse_number("--timeout", optarg, 1, 86400);
            break;
        case OPT_SERVER_PID:
            cfg->server_pid = (long)parse_number("--server-pid", optarg, 1, 1e9);
            break;
        case OPT_BASELINE_RSS:
            cfg->baseline_rss_kib = (long long)parse_number("--baseline-rss", optarg, 0, 1e12);
            break;
        case 'v':
            cfg->verbose++;
            break;
        case 'h':
            print_usage();
            exit(0);
        default:
            die_usage("bad option");
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!cfg->port)
        die_usage("--port is required");
    resolve_loopback(cfg);

    if (cfg->no_auth && (cfg->token || cfg->user || cfg->password))
        die_usage("--no-auth excludes --user/--password/--token");
    if (cfg->token && (cfg->user || cfg->password))
        die_usage("use either --token or --user/--password");
    if (!cfg->no_auth && !cfg->token && (!cfg->user || !cfg->password))
        die_usage("give --user and --password, or --token, or --no-auth");
    if (cfg->token_from_login && (!cfg->user || !cfg->password || cfg->token))
        die_usage("--token-from-login needs --user and --password and excludes --token");
}

/* Works out process and source counts and checks them against the limits. */
static void plan_layout(struct load_config *cfg, rlim_t nofile)
{
    long per_proc_limit = MAX_CONNS_PER_PROC;
    int ports = ephemeral_port_count();
    long per_source = (long)ports * 9 / 10;

    if ((long)nofile - FD_HEADROOM < per_proc_limit)
        per_proc_limit = (long)nofile - FD_HEADROOM;
    if (per_proc_limit < 1)
        die_usage("open file limit %lu is too low", (unsigned long)nofile);

    if (!cfg->procs)
        cfg->procs = (int)((cfg->conns + per_proc_limit - 1) / per_proc_limit);
    if (cfg->procs > cfg->conns)
        cfg->procs = cfg->conns;
    if (cfg->procs > MAX_PROCS)
        die_usage("%d connections would need more than %d processes", cfg->conns, MAX_PROCS);
    if ((cfg->conns + cfg->procs - 1) / cfg->procs > per_proc_limit)
        die_usage("%d connections over %d processes exceeds %ld per process (open file "
                  "limit %lu); use --procs %ld or more",
                  cfg->conns, cfg->procs, per_proc_limit, (unsigned long)nofile,
                  (cfg->conns + per_proc_limit - 1) / per_proc_limit);

    if (cfg->ipv6) {
        if (cfg->sources > 0)
            die_usage("--sources uses 127.0.0.x addresses and cannot reach ::1");
        cfg->sources = 0;
    } else if (cfg->sources < 0) {
        cfg->sources = (int)((cfg->conns + per_source - 1) / per_source);
        if (cfg->sources > MAX_SOURCES)
            die_usage("too many connections for %d source addresses", MAX_SOURCES);
    }
    if (cfg->sources == 0 && cfg->conns > per_source)
        fprintf(stderr,
                "yjt-load: warning: %d connections from one source address may run out "
                "of the %d ephemeral ports\n",
                cfg->conns, ports);
    if (cfg->sources > 0 && (cfg->conns + cfg->sources - 1) / cfg->sources > per_source)
        fprintf(stderr,
                "yjt-load: warning: %d connections per source address may run out of the "
                "%d ephemeral ports; use more --sources\n",
                (cfg->conns + cfg->sources - 1) / cfg->sources, ports);
    for (int i = 0; i < cfg->sources; i++)
        snprintf(source_names[i], sizeof(source_names[i]), "127.0.0.%d", i + 2);
}

int main(int argc, char **argv)
{
    struct load_config cfg;
    struct child kids[MAX_PROCS];
    struct sigaction sa;
    rlim_t nofile;
    uint64_t t0, hard_deadline, connect_deadline, final_deadline, latest_hold_end, reserve;
    uint64_t hold_end = 0, hold_start = 0;
    long long rss_before = -1, rss_after = -1;
    enum { PP_CONNECT, PP_HOLD, PP_CLOSE } phase = PP_CONNECT;
    bool killed = false, hold_truncated = false;
    char *fetched_token = NULL;
    int first = 0;

    parse_args(argc, argv, &cfg);
    nofile = raise_nofile();
    plan_layout(&cfg, nofile);
    check_sources(cfg.sources);

    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    t0 = mono_ns();
    hard_deadline = t0 + (uint64_t)(cfg.timeout_s * 1e9);
    if (cfg.token_from_login) {
        uint64_t budget = (uint64_t)(cfg.timeout_s * 1e9) / 4;
        fetched_token = fetch_token(&cfg, t0 + (budget < 30 * NS_PER_S ? budget : 30 * NS_PER_S));
        if (!fetched_token)
            return 1;
        cfg.token = fetched_token;
    }
    /*
     * Time budget: connecting may take until connect_deadline, the hold may
     * last until latest_hold_end, the workers' clean close must be over by
     * final_deadline, and at hard_deadline whatever is left is killed.
     */
    reserve = (uint64_t)(cfg.timeout_s * 1e9) / 4;
    if (reserve > CLOSE_GRACE_NS + 3 * NS_PER_S)
        reserve = CLOSE_GRACE_NS + 3 * NS_PER_S;
    connect_deadline = hard_deadline - reserve;
    latest_hold_end = hard_deadline - reserve / 2;
    final_deadline = hard_deadline - reserve / 8;

    fflush(stdout);
    fflush(stderr);
    memset(kids, 0, sizeof(kids));
    for (int p = 0; p < cfg.procs; p++) {
        int up[2], down[2];
        int count = cfg.conns / cfg.procs + (p < cfg.conns % cfg.procs ? 1 : 0);
        pid_t pid;

        if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0) {
            perror("yjt-load: pipe");
            return 1;
        }
        pid = fork();
        if (pid < 0) {
            perror("yjt-load: fork");
            return 1;
        }
        if (pid == 0) {
            int rc;
            signal(SIGINT, SIG_IGN);
            signal(SIGTERM, SIG_DFL);
            for (int q = 0; q < p; q++) {
                if (kids[q].up_fd >= 0)
                    close(kids[q].up_fd);
                if (kids[q].down_fd >= 0)
                    close(kids[q].down_fd);
            }
            close(up[0]);
            close(down[1]);
            fcntl(down[0], F_SETFL, fcntl(down[0], F_GETFL) | O_NONBLOCK);
            rc =
                run_worker(&cfg, p, first, count, connect_deadline, final_deadline, up[1], down[0]);
            close(up[1]);
            _exit(rc);
        }
        close(up[1]);
        close(down[0]);
        kids[p].pid = pid;
        kids[p].up_fd = up[0];
        kids[p].down_fd = down[1];
        first += count;
    }

    for (;;) {
        struct pollfd pfd[MAX_PROCS];
        int map[MAX_PROCS], npfd = 0, all_settled = 1, alive = 0, ready_now = 0;
        uint64_t now = mono_ns(), wake;
        int timeout_ms;

        for (int p = 0; p < cfg.procs; p++) {
            if (!kids[p].settled)
                all_settled = 0;
            ready_now += kids[p].ready_at_settle;
            if (!kids[p].eof) {
                alive++;
                pfd[npfd].fd = kids[p].up_fd;
                pfd[npfd].events = POLLIN;
                map[npfd++] = p;
            }
        }
        if (!alive)
            break;
        if (now >= hard_deadline) {
            for (int p = 0; p < cfg.procs; p++)
                if (!kids[p].eof)
                    kill(kids[p].pid, SIGKILL);
            killed = true;
            fprintf(stderr, "yjt-load: --timeout reached, workers killed\n");
            break;
        }
        if (phase == PP_CONNECT && (all_settled || interrupted)) {
            double hold_s = cfg.hold_s;
            hold_start = now;
            rss_before = read_rss_kib(cfg.server_pid);
            hold_end = now + (uint64_t)(hold_s * 1e9);
            if (interrupted || ready_now == 0) {
                hold_end = now; /* nothing to hold */
            } else if (hold_end > latest_hold_end) {
                hold_end = latest_hold_end > now ? latest_hold_end : now;
                hold_truncated = true;
            }
            phase = PP_HOLD;
            fprintf(stderr, "yjt-load: all workers settled after %.2fs, holding %.1fs\n",
                    (double)(now - t0) / 1e9, (double)(hold_end - now) / 1e9);
        }
        if (phase == PP_HOLD && (now >= hold_end || interrupted)) {
            rss_after = read_rss_kib(cfg.server_pid);
            hold_end = now;
            tell_children_to_close(kids, cfg.procs);
            phase = PP_CLOSE;
        }

        wake = hard_deadline;
        if (phase == PP_HOLD && hold_end < wake)
            wake = hold_end;
        timeout_ms = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
        if (timeout_ms > 250)
            timeout_ms = 250;
        if (poll(pfd, (nfds_t)npfd, timeout_ms) < 0) {
            if (errno == EINTR)
                continue;
            perror("yjt-load: poll");
            break;
        }
        for (int i = 0; i < npfd; i++)
            if (pfd[i].revents)
                child_read(&kids[map[i]]);
    }
    if (phase != PP_CLOSE)
        tell_children_to_close(kids, cfg.procs);
    for (int p = 0; p < cfg.procs; p++)
        waitpid(kids[p].pid, NULL, 0);

    /* ---- aggregate ---- */
    long connected = 0, ready = 0, failed = 0, dropped = 0, closed_clean = 0, reports = 0;
    uint64_t t_begin = 0, t_last_open = 0, t_last_login = 0;
    struct samples hs = {0}, login = {0};
    json_t *errors = json_object();

    for (int p = 0; p < cfg.procs; p++) {
        json_t *r = kids[p].report;
        int count = cfg.conns / cfg.procs + (p < cfg.conns % cfg.procs ? 1 : 0);
        const char *key;
        json_t *val;

        if (!r) {
            char why[64];
            failed += count;
            snprintf(why, sizeof(why), "worker %d gave no report", p);
            json_object_set_new(errors, why, json_integer(count));
            continue;
        }
        reports++;
        connected += (long)json_integer_value(json_object_get(r, "connected"));
        ready += (long)json_integer_value(json_object_get(r, "ready"));
        failed += (long)json_integer_value(json_object_get(r, "failed"));
        dropped += (long)json_integer_value(json_object_get(r, "dropped"));
        closed_clean += (long)json_integer_value(json_object_get(r, "closed_clean"));
        uint64_t tb = (uint64_t)json_integer_value(json_object_get(r, "t_begin_ns"));
        uint64_t to = (uint64_t)json_integer_value(json_object_get(r, "t_last_open_ns"));
        uint64_t tl = (uint64_t)json_integer_value(json_object_get(r, "t_last_login_ns"));
        if (tb && (!t_begin || tb < t_begin))
            t_begin = tb;
        if (to > t_last_open)
            t_last_open = to;
        if (tl > t_last_login)
            t_last_login = tl;
        samples_add_array(&hs, json_object_get(r, "hs_us"));
        samples_add_array(&login, json_object_get(r, "login_us"));
        json_object_foreach(json_object_get(r, "errors"), key, val)
        {
            json_int_t prev = json_integer_value(json_object_get(errors, key));
            json_object_set_new(errors, key, json_integer(prev + json_integer_value(val)));
        }
    }
    if (hs.n)
        qsort(hs.v, hs.n, sizeof(*hs.v), cmp_u32);
    if (login.n)
        qsort(login.v, login.n, sizeof(*login.v), cmp_u32);

    double connect_s =
        (t_begin && t_last_open > t_begin) ? (double)(t_last_open - t_begin) / 1e9 : 0;
    double login_s =
        (t_begin && t_last_login > t_begin) ? (double)(t_last_login - t_begin) / 1e9 : 0;
    long logged_in = cfg.no_auth ? 0 : ready;
    json_t *rss_per_conn = json_null();
    if (cfg.baseline_rss_kib >= 0 && rss_after >= 0 && connected > 0) {
        double per = (double)(rss_after - cfg.baseline_rss_kib) * 1024.0 / (double)connected;
        rss_per_conn = json_integer((json_int_t)(per < 0 ? per - 0.5 : per + 0.5));
    }

    json_t *out = json_object();
    json_object_set_new(out, "conns", json_integer(cfg.conns));
    json_object_set_new(out, "procs", json_integer(cfg.procs));
    json_object_set_new(out, "sources", json_integer(cfg.sources));
    json_object_set_new(out, "auth",
                        json_string(cfg.no_auth            ? "none"
                                    : cfg.token_from_login ? "token-from-login"
                                    : cfg.token            ? "token"
                                                           : "login"));
    json_object_set_new(out, "tls", json_boolean(cfg.tls));
    json_object_set_new(out, "connected", json_integer(connected));
    json_object_set_new(out, "logged_in", json_integer(logged_in));
    json_object_set_new(out, "failed", json_integer(failed));
    json_object_set_new(out, "dropped", json_integer(dropped));
    json_object_set_new(out, "closed_clean", json_integer(closed_clean));
    json_object_set_new(out, "connect_s", connected ? json_real(connect_s) : json_null());
    json_object_set_new(out, "connect_rate", rate_or_null(connected, connect_s));
    json_object_set_new(out, "handshake_p50_ms", percentile_ms(&hs, 50));
    json_object_set_new(out, "handshake_p99_ms", percentile_ms(&hs, 99));
    json_object_set_new(out, "login_s", logged_in ? json_real(login_s) : json_null());
    json_object_set_new(out, "login_rate",
                        cfg.no_auth ? json_null() : rate_or_null(logged_in, login_s));
    json_object_set_new(out, "login_p50_ms", percentile_ms(&login, 50));
    json_object_set_new(out, "login_p99_ms", percentile_ms(&login, 99));
    json_object_set_new(out, "hold_s",
                        json_real(hold_start && hold_end >= hold_start
                                      ? (double)(hold_end - hold_start) / 1e9
                                      : 0));
    json_object_set_new(out, "server_rss_kib_before", int_or_null(rss_before));
    json_object_set_new(out, "server_rss_kib_after", int_or_null(rss_after));
    json_object_set_new(out, "baseline_rss_kib", int_or_null(cfg.baseline_rss_kib));
    json_object_set_new(out, "rss_per_conn_bytes", rss_per_conn);
    json_object_set_new(out, "timed_out", json_boolean(killed));
    json_object_set_new(out, "interrupted", json_boolean(interrupted));
    json_object_set_new(out, "errors", errors);

    char *line = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (line) {
        printf("%s\n", line);
        fflush(stdout);
        free(line);
    }

    fprintf(stderr,
            "yjt-load: %d conns over %d procs / %d sources to %s:%d (%s%s)\n"
            "  connected  %ld   logged in %ld   failed %ld   dropped %ld   closed cleanly %ld\n",
            cfg.conns, cfg.procs, cfg.sources, cfg.address, cfg.port, cfg.tls ? "wss, " : "",
            cfg.no_auth            ? "no auth"
            : cfg.token_from_login ? "token auth, token from one password login"
            : cfg.token            ? "token auth"
                                   : "password auth",
            connected, logged_in, failed, dropped, closed_clean);
    if (hs.n)
        fprintf(stderr, "  connect    %.2f s, %.0f conn/s, handshake p50 %.2f ms p99 %.2f ms\n",
                connect_s, connect_s > 0 ? (double)connected / connect_s : 0,
                percentile_value_ms(&hs, 50), percentile_value_ms(&hs, 99));
    if (login.n)
        fprintf(stderr, "  login      %.2f s, %.0f login/s, p50 %.2f ms p99 %.2f ms\n", login_s,
                login_s > 0 ? (double)logged_in / login_s : 0, percentile_value_ms(&login, 50),
                percentile_value_ms(&login, 99));
    if (rss_before >= 0 || rss_after >= 0)
        fprintf(stderr, "  server RSS %lld KiB at hold start, %lld KiB at hold end\n", rss_before,
                rss_after);
    else if (cfg.server_pid)
        fprintf(stderr, "  server RSS could not be read from /proc/%ld/status\n", cfg.server_pid);
    if (json_is_integer(rss_per_conn))
        fprintf(stderr, "  RSS per connection %lld bytes (baseline %lld KiB)\n",
                (long long)json_integer_value(rss_per_conn), cfg.baseline_rss_kib);
    if (hold_truncated)
        fprintf(stderr, "  note: hold shortened to fit --timeout\n");
    {
        const char *key;
        json_t *val;
        json_object_foreach(errors, key, val)
        {
            fprintf(stderr, "  error x%lld: %s\n", (long long)json_integer_value(val), key);
        }
    }

    bool ok = !killed && !interrupted && reports == cfg.procs && failed == 0 && dropped == 0 &&
              ready == cfg.conns;
    json_decref(out);
    for (int p = 0; p < cfg.procs; p++) {
        json_decref(kids[p].report);
        free(kids[p].buf);
    }
    free(hs.v);
    free(login.v);
    free(fetched_token);
    return ok ? 0 : 1;
}
