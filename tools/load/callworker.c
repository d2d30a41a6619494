/*
 * callworker.c: one yjt-callbench worker process.
 *
 * callbench.c forks the workers and calls cb_run_worker() in each.  A worker
 * owns a slice of the caller/callee pairs.  It runs libwebsockets on a libuv
 * loop (epoll: a few thousand mostly idle sockets cost nothing per wake-up),
 * opens and logs in both connections of every pair (auth.login; the
 * callee's user id comes from the login reply), reports "S <ready>" to the
 * parent and waits for "G <start ns>".  From then on its pacer starts one
 * set-up every 1/rate seconds on a free pair (the call flow is calls.c),
 * and it samples how many calls are established every 100 ms.  At the end
 * of the measured window no new set-up starts and the calls up end with
 * their hold (at once if the parent stops the run early); then it writes
 * its counts and samples as one JSON line to the parent.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "calls.h"
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct worker W;

static void on_pacer(uv_timer_t *t);

/* ------------------------------------------------------------------------ */
/* connections                                                               */

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_receive(struct conn *c, struct lws *wsi, const char *in, size_t len)
{
    bool complete = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;

    if (lws_frame_is_binary(wsi))
        return 0;
    if (complete && c->rx_len == 0) {
        calls_take_message(c, in, len);
        return 0;
    }
    if ((size_t)c->rx_len + len > MAX_MESSAGE) {
        cb_error("message over 256 KiB");
        return -1;
    }
    if (c->rx_len + len > c->rx_cap) {
        uint32_t cap = c->rx_cap ? c->rx_cap : 8192;
        while (cap < c->rx_len + len)
            cap *= 2;
        char *grown = realloc(c->rx, cap);
        if (!grown)
            return -1;
        c->rx = grown;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += (uint32_t)len;
    if (complete) {
        calls_take_message(c, c->rx, c->rx_len);
        c->rx_len = 0;
    }
    return 0;
}

static int on_lws_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct conn *c = user ? user : (wsi ? lws_get_opaque_user_data(wsi) : NULL);
    char why[112];

    if (!c)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        snprintf(why, sizeof(why), "connect: %.80s", in ? (const char *)in : "unknown error");
        calls_conn_lost(c, why);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c->state != C_CONNECTING)
            return -1;
        c->wsi = wsi;
        c->state = C_LOGIN;
        calls_push(c, OP_LOGIN);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->state == C_DEAD)
            return -1;
        return calls_write_next(c, wsi);
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(c, wsi, in, len);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        const unsigned char *b = in;
        unsigned code = (b && len >= 2) ? (unsigned)(b[0] << 8 | b[1]) : 0;
        if (!c->peer_closed && W.phase != PH_DONE) {
            c->peer_closed = true;
            snprintf(why, sizeof(why), "closed by the server: %u %.*s", code,
                     (b && len > 2) ? (int)(len - 2 > 60 ? 60 : len - 2) : 0,
                     (b && len > 2) ? (const char *)b + 2 : "");
            cb_error(why);
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        calls_conn_lost(c, "connection lost");
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c->wsi == wsi || c->state == C_CONNECTING)
            calls_conn_lost(c, "connection dropped before the handshake finished");
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {SUBPROTOCOL, on_lws_event, 0, RX_BUFFER_SIZE, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* No lws idle-ping timers: lws keeps them in one sorted list (see worker.c). */
static const lws_retry_bo_t no_validity_timers = {
    .secs_since_valid_ping = 0,
    .secs_since_valid_hangup = 0,
};

/* ------------------------------------------------------------------------ */
/* phases                                                                    */

static void start_conn(struct conn *c, int source_index)
{
    const struct cb_config *cfg = W.cfg;
    struct lws_client_connect_info ci;

    memset(&ci, 0, sizeof(ci));
    ci.context = W.ctx;
    ci.address = cfg->address;
    ci.port = c->is_callee ? cfg->callee_port : cfg->port;
    ci.path = cfg->path;
    ci.host = cfg->host;
    ci.origin = cfg->host;
    ci.protocol = SUBPROTOCOL;
    ci.userdata = c;
    ci.opaque_user_data = c;
    ci.retry_and_idle_policy = &no_validity_timers;
    if (cfg->sources > 0)
        ci.iface = cb_source_names[source_index % cfg->sources];
    c->state = C_CONNECTING;
    W.inflight++;
    if (!lws_client_connect_via_info(&ci) && c->state == C_CONNECTING)
        calls_conn_lost(c, "connect: lws_client_connect_via_info failed");
}

static void report_settled(void)
{
    char line[32];
    int n;

    for (int i = 0; i < W.count; i++) {
        struct pair *p = &W.pairs[i];
        if (p->caller.state == C_READY && p->callee.state == C_READY) {
            p->state = P_FREE;
            W.free_q[(W.free_head + W.free_n++) % W.count] = i;
            W.ready_pairs++;
        } else {
            p->state = P_DEAD;
        }
    }
    n = snprintf(line, sizeof(line), "S %d\n", W.ready_pairs);
    if (write(W.up_fd, line, (size_t)n) != n)
        W.exit_code = 1;
    W.phase = PH_WAIT_GO;
}

static void finish(void);

static void on_connect_tick(uv_timer_t *t)
{
    uint64_t now = load_mono_ns();
    int total = 2 * W.count;

    (void)t;
    while (W.next_conn < total && W.inflight < CONNECT_INFLIGHT && now < W.connect_deadline) {
        struct pair *p = &W.pairs[W.next_conn / 2];
        start_conn(W.next_conn % 2 ? &p->callee : &p->caller, W.first * 2 + W.next_conn);
        W.next_conn++;
    }
    if (now >= W.connect_deadline) {
        for (int i = 0; i < W.count; i++) {
            struct conn *cs[2] = {&W.pairs[i].caller, &W.pairs[i].callee};
            for (int k = 0; k < 2; k++) {
                if (cs[k]->state == C_IDLE || cs[k]->state == C_CONNECTING ||
                    cs[k]->state == C_LOGIN) {
                    if (cs[k]->state != C_IDLE)
                        W.inflight--;
                    W.conns_settled++;
                    cs[k]->state = C_DEAD;
                    cb_error("not logged in before the connect deadline");
                }
            }
        }
    }
    if (W.conns_settled >= total) {
        uv_timer_stop(&W.tick);
        report_settled();
    }
}

void worker_pacer_kick(void)
{
    uint64_t now = load_mono_ns(), next;

    if (W.phase != PH_RUN)
        return;
    while ((next = W.t0 + W.next_k * W.interval_ns) <= now && next < W.t_end) {
        if (!W.free_n) {
            /* no pair free: release() starts this one, late; the timer
             * still ends the run on time */
            W.starved++;
            next = W.t_end;
            break;
        }
        struct pair *p = &W.pairs[W.free_q[W.free_head]];
        W.free_head = (W.free_head + 1) % W.count;
        W.free_n--;
        calls_start(p, next);
        W.next_k++;
    }
    if (next >= W.t_end)
        next = W.t_end;
    uv_timer_start(&W.pacer, on_pacer, next > now ? (next - now + 999999) / 1000000 : 0, 0);
}

static void on_drain_tick(uv_timer_t *t)
{
    (void)t;
    worker_check_drained();
}

/*
 * No new set-ups; the calls up end when their hold does, as they would have
 * anyway: hanging them all up at once would be a burst the measured window
 * never saw, landing on the set-ups still in flight.  When stopped early
 * (hurry), they are hung up at once.
 */
static void begin_drain(bool hurry)
{
    if (hurry && !W.hurry) {
        W.hurry = true;
        for (int i = 0; i < W.count; i++)
            if (W.pairs[i].state == P_UP)
                calls_hang_up(&W.pairs[i]);
    }
    if (W.phase != PH_RUN && W.phase != PH_WAIT_GO)
        return;
    W.phase = PH_DRAIN;
    W.drain_deadline = load_mono_ns() + (uint64_t)((W.cfg->setup_timeout_s + W.cfg->hold_s) * 1e9) +
                       DRAIN_EXTRA_NS;
    uv_timer_stop(&W.pacer);
    uv_timer_start(&W.tick, on_drain_tick, 50, 50);
    worker_check_drained();
}

static void on_pacer(uv_timer_t *t)
{
    (void)t;
    if (load_mono_ns() >= W.t_end)
        begin_drain(false);
    else
        worker_pacer_kick();
}

void worker_check_drained(void)
{
    bool busy = false;

    if (W.phase != PH_DRAIN)
        return;
    for (int i = 0; i < W.count && !busy; i++)
        busy =
            W.pairs[i].state == P_SETUP || W.pairs[i].state == P_UP || W.pairs[i].state == P_HANGUP;
    if (!busy || load_mono_ns() >= W.drain_deadline) {
        if (busy)
            cb_error("calls still open at the end of the drain");
        finish();
    }
}

static void on_sample(uv_timer_t *t)
{
    uint64_t now = load_mono_ns();

    (void)t;
    if (now < W.t_measure || now >= W.t_end)
        return;
    if (!W.t_cpu_start) {
        W.t_cpu_start = now;
        W.cpu_start = cpu_seconds();
    }
    W.t_cpu_end = now;
    W.cpu_end = cpu_seconds();
    if (!W.conc_n || W.up_now < W.conc_min)
        W.conc_min = W.up_now;
    if (W.up_now > W.conc_max)
        W.conc_max = W.up_now;
    W.conc_sum += (uint64_t)W.up_now;
    W.conc_n++;
}

static void go(uint64_t t0)
{
    const struct cb_config *cfg = W.cfg;
    uint64_t now = load_mono_ns();

    if (W.phase != PH_WAIT_GO)
        return;
    W.t0 = t0 > now ? t0 : now;
    W.t_measure = W.t0 + (uint64_t)(cfg->warmup_s * 1e9);
    W.t_end = W.t_measure + (uint64_t)(cfg->duration_s * 1e9);
    W.interval_ns = (uint64_t)(1e9 / W.rate);
    W.phase = PH_RUN;
    uv_timer_start(&W.pacer, on_pacer, (W.t0 - now) / 1000000, 0);
    uv_timer_start(&W.sampler, on_sample, 100, 100);
}

static void on_parent(uv_poll_t *h, int status, int events)
{
    ssize_t n;
    char *nl;

    (void)h;
    (void)events;
    n = status < 0 ? -1
                   : read(W.down_fd, W.down_buf + W.down_len, sizeof(W.down_buf) - 1 - W.down_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) { /* the parent went away or wants us to stop */
        uv_poll_stop(&W.down_watch);
        if (W.phase == PH_CONNECT)
            finish();
        else
            begin_drain(true);
        return;
    }
    W.down_len += (size_t)n;
    W.down_buf[W.down_len] = '\0';
    while ((nl = strchr(W.down_buf, '\n')) != NULL) {
        *nl = '\0';
        if (W.down_buf[0] == 'G')
            go(strtoull(W.down_buf + 1, NULL, 10));
        else if (W.phase == PH_CONNECT)
            finish();
        else
            begin_drain(true);
        memmove(W.down_buf, nl + 1, strlen(nl + 1) + 1);
        W.down_len = strlen(W.down_buf);
    }
    if (W.down_len >= sizeof(W.down_buf) - 1)
        W.down_len = 0;
}

/* ------------------------------------------------------------------------ */
/* the report                                                                */

static json_t *u32_array(const struct samples *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(a, json_integer(s->v[i]));
    return a;
}

static void write_report(void)
{
    json_t *errs = json_object(), *r;
    char *text;

    for (int i = 0; i < ERR_SLOTS && W.errs[i].count; i++)
        json_object_set_new(errs, W.errs[i].text, json_integer(W.errs[i].count));
    if (W.err_other)
        json_object_set_new(errs, "(other errors)", json_integer(W.err_other));
    r = json_pack("{s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "proc", W.proc,
                  "pairs", W.count, "ready_pairs", W.ready_pairs, "started", (json_int_t)W.started,
                  "ok", (json_int_t)W.ok, "failed", (json_int_t)W.failed, "started_all",
                  (json_int_t)W.started_all, "ok_all", (json_int_t)W.ok_all, "failed_all",
                  (json_int_t)W.failed_all, "stray", (json_int_t)W.stray, "starved",
                  (json_int_t)W.starved);
    json_object_set_new(r, "conc_n", json_integer((json_int_t)W.conc_n));
    json_object_set_new(r, "conc_sum", json_integer((json_int_t)W.conc_sum));
    json_object_set_new(r, "conc_min", json_integer(W.conc_min));
    json_object_set_new(r, "conc_max", json_integer(W.conc_max));
    json_object_set_new(r, "cpu_s", json_real(W.cpu_end - W.cpu_start));
    json_object_set_new(
        r, "cpu_window_s",
        json_real(W.t_cpu_end > W.t_cpu_start ? (double)(W.t_cpu_end - W.t_cpu_start) / 1e9 : 0));
    json_object_set_new(r, "setup_us", u32_array(&W.setup));
    json_object_set_new(r, "incoming_us", u32_array(&W.incoming));
    json_object_set_new(r, "reply_us", u32_array(&W.reply));
    json_object_set_new(r, "accept_us", u32_array(&W.accept));
    json_object_set_new(r, "hangup_us", u32_array(&W.hangup));
    json_object_set_new(r, "lag_us", u32_array(&W.lag));
    json_object_set_new(r, "errors", errs);
    text = json_dumps(r, JSON_COMPACT);
    if (text) {
        cli_write_all(W.up_fd, text, strlen(text));
        cli_write_all(W.up_fd, "\n", 1);
    }
    free(text);
    json_decref(r);
}

static void finish(void)
{
    if (W.phase == PH_DONE)
        return;
    W.phase = PH_DONE;
    write_report();
    uv_timer_stop(&W.tick);
    uv_timer_stop(&W.pacer);
    uv_timer_stop(&W.sampler);
    uv_stop(&W.loop);
}

/* ------------------------------------------------------------------------ */

static void close_loop(void)
{
    /* lws finishes destroying a context on a foreign loop from the loop's
     * own callbacks: turn it a little (at most 2 s), like yjtd does. */
    uint64_t until = load_mono_ns() + 2 * NS_PER_S;

    lws_context_destroy(W.ctx);
    for (int i = 0; i < W.count; i++)
        uv_close((uv_handle_t *)&W.pairs[i].timer, NULL);
    uv_close((uv_handle_t *)&W.tick, NULL);
    uv_close((uv_handle_t *)&W.pacer, NULL);
    uv_close((uv_handle_t *)&W.sampler, NULL);
    if (uv_is_active((uv_handle_t *)&W.down_watch))
        uv_poll_stop(&W.down_watch);
    uv_close((uv_handle_t *)&W.down_watch, NULL);
    while (W.ctx && load_mono_ns() < until && uv_run(&W.loop, UV_RUN_NOWAIT))
        usleep(1000);
}

int cb_run_worker(const struct cb_config *cfg, int proc_index, int first_pair, int count,
                  double per_proc_rate, int up_fd, int down_fd)
{
    struct lws_context_creation_info info;
    void *loops[1];
    int level = 0;

    memset(&W, 0, sizeof(W));
    W.cfg = cfg;
    W.proc = proc_index;
    W.first = first_pair;
    W.count = count;
    W.rate = per_proc_rate;
    W.up_fd = up_fd;
    W.down_fd = down_fd;
    W.pairs = calloc((size_t)count, sizeof(*W.pairs));
    W.free_q = calloc((size_t)count, sizeof(*W.free_q));
    W.tx = malloc(TX_CAP);
    if (!W.pairs || !W.free_q || !W.tx || uv_loop_init(&W.loop) != 0) {
        fprintf(stderr, "yjt-callbench[%d]: out of memory\n", proc_index);
        return 1;
    }

    if (cfg->verbose >= 1)
        level |= LLL_ERR | LLL_WARN;
    if (cfg->verbose >= 2)
        level |= LLL_NOTICE;
    lws_set_log_level(level, NULL);
    memset(&info, 0, sizeof(info));
    loops[0] = &W.loop;
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    info.pcontext = &W.ctx; /* lws clears it once destroyed */
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.timeout_secs = 30;
    info.connect_timeout_secs = 20;
    W.ctx = lws_create_context(&info);
    if (!W.ctx) {
        fprintf(stderr, "yjt-callbench[%d]: lws_create_context failed\n", proc_index);
        return 1;
    }

    for (int i = 0; i < count; i++) {
        struct pair *p = &W.pairs[i];
        p->global = first_pair + i;
        p->caller.pair = p->callee.pair = p;
        p->callee.is_callee = true;
        uv_timer_init(&W.loop, &p->timer);
        p->timer.data = p;
    }
    uv_timer_init(&W.loop, &W.tick);
    uv_timer_init(&W.loop, &W.pacer);
    uv_timer_init(&W.loop, &W.sampler);
    uv_poll_init(&W.loop, &W.down_watch, down_fd);
    uv_poll_start(&W.down_watch, UV_READABLE, on_parent);

    W.phase = PH_CONNECT;
    W.connect_deadline = load_mono_ns() + (uint64_t)(cfg->timeout_s / 3 * 1e9);
    uv_timer_start(&W.tick, on_connect_tick, 0, 1);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    if (W.phase != PH_DONE)
        finish();
    close_loop();
    return W.exit_code;
}
