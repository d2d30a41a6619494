/*
 * calls.c: one yjt-callbench worker process.
 *
 * callbench.c forks the workers and calls cb_run_worker() in each.  A worker
 * owns a slice of the caller/callee pairs.  It runs libwebsockets on a libuv
 * loop (epoll: a few thousand mostly idle sockets cost nothing per wake-up),
 * opens and logs in both connections of every pair (auth.login; the
 * callee's user id comes from the login reply), reports "S <ready>" to the
 * parent and waits for "G <start ns>".  From then on a pacer starts one
 * set-up every 1/rate seconds on a free pair:
 *
 *   caller  call.invite {to: callee, sdp: offer}   -> reply {call_id}
 *   callee  <- call.incoming, call.accept {sdp: answer} -> reply ok
 *   caller  <- call.accepted                       (set-up complete)
 *   ... hold_s later: caller call.hangup, both get call.ended, pair free
 *
 * It times invite -> call.accepted (the set-up), invite -> call.incoming,
 * invite -> reply, accept -> call.accepted and the pacer's own lag for
 * set-ups started inside the measured window, hang-up -> reply and both
 * call.ended for hang-ups sent inside it, samples how many calls are
 * established every 100 ms, and writes it all as one JSON line to the
 * parent.  At the end of the window no new set-up starts and the calls up
 * end with their hold.  A set-up that fails (error reply, call.ended,
 * no answer within setup_timeout_s, lost connection) is counted under its
 * reason; the pair rests 2 s so late events of that call find nothing, and
 * is used again.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "callbench.h"
#include "load.h" /* load_mono_ns, NS_PER_S */

#include <jansson.h>
#include <libwebsockets.h>
#include <uv.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUBPROTOCOL "yjt.v1"
#define RX_BUFFER_SIZE 8192
#define MAX_MESSAGE (256 * 1024)
#define TX_CAP (LWS_PRE + 64 * 1024)
#define CONNECT_INFLIGHT 128
#define ERR_SLOTS 32
#define ID_LEN 64
#define COOLDOWN_MS 2000
#define HANGUP_TIMEOUT_MS 5000
#define DRAIN_EXTRA_NS (6 * NS_PER_S)
#define ORPHAN_WAIT_NS (30 * NS_PER_S)

enum op { OP_NONE, OP_LOGIN, OP_INVITE, OP_ACCEPT, OP_HANGUP };
#define OP_BITS 3 /* request id = seq << OP_BITS | op */

enum conn_state { C_IDLE, C_CONNECTING, C_LOGIN, C_READY, C_DEAD };

struct pair;

struct conn {
    struct lws *wsi;
    struct pair *pair;
    char *rx; /* a message arriving in pieces */
    uint32_t rx_len, rx_cap;
    uint8_t ops[4]; /* requests waiting for WRITEABLE */
    uint8_t op_head, op_n;
    uint8_t state;
    bool is_callee;
    bool peer_closed;
};

enum pair_state { P_LOGIN, P_FREE, P_SETUP, P_UP, P_HANGUP, P_COOLDOWN, P_DEAD };

enum {
    F_INVITE_SENT = 1 << 0,
    F_REPLY = 1 << 1,
    F_INCOMING = 1 << 2,
    F_ACCEPT_SENT = 1 << 3,
    F_ACCEPT_OK = 1 << 4,
    F_ACCEPTED = 1 << 5,
    F_HANGUP_OK = 1 << 6,
    F_CALLER_ENDED = 1 << 7,
    F_CALLEE_ENDED = 1 << 8,
};

struct pair {
    struct conn caller, callee;
    uv_timer_t timer; /* set-up timeout, hold, hang-up timeout or cool-down */
    int global;       /* user names <prefix>g<global> and <prefix>c<global> */
    uint32_t seq;     /* set-up attempt, in request ids */
    uint8_t state;
    bool measured; /* started inside the measured window */
    uint16_t flags;
    char call_id[ID_LEN];
    char callee_id[ID_LEN];
    uint64_t t_sched, t_invite, t_incoming, t_reply, t_accept, t_hangup;
};

struct samples {
    uint32_t *v;
    size_t n, cap;
};

struct err_slot {
    char text[112];
    unsigned count;
};

enum phase { PH_CONNECT, PH_WAIT_GO, PH_RUN, PH_DRAIN, PH_DONE };

struct worker {
    const struct cb_config *cfg;
    int proc;
    int first;
    int count;
    double rate;
    struct pair *pairs;
    uv_loop_t loop;
    struct lws_context *ctx;
    uv_poll_t down_watch;
    uv_timer_t tick;  /* connecting, then draining */
    uv_timer_t pacer; /* the next set-up */
    uv_timer_t sampler;
    int up_fd, down_fd;
    char down_buf[64];
    size_t down_len;
    enum phase phase;
    bool hurry; /* stopped early: hang up at once */
    int exit_code;
    /* connect phase */
    int next_conn, inflight, conns_settled, conns_ready, ready_pairs;
    uint64_t connect_deadline;
    /* run */
    int *free_q; /* ring of pair indexes */
    int free_head, free_n;
    uint64_t t0, t_measure, t_end, drain_deadline, interval_ns;
    uint64_t next_k;
    int up_now, setup_now;
    uint64_t conc_n, conc_sum;
    int conc_min, conc_max;
    double cpu_start, cpu_end;
    uint64_t t_cpu_start, t_cpu_end;
    /* counts: measured window, and all set-ups of the run */
    long started, ok, failed, started_all, ok_all, failed_all;
    long stray, starved;
    struct samples setup, incoming, reply, accept, hangup, lag;
    struct err_slot errs[ERR_SLOTS];
    unsigned err_other;
    char *tx; /* one outgoing message at a time, LWS_PRE in front */
};

static struct worker W;

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void record_error(const char *text)
{
    for (int i = 0; i < ERR_SLOTS; i++) {
        if (W.errs[i].count && !strcmp(W.errs[i].text, text)) {
            W.errs[i].count++;
            return;
        }
        if (!W.errs[i].count) {
            snprintf(W.errs[i].text, sizeof(W.errs[i].text), "%s", text);
            W.errs[i].count = 1;
            return;
        }
    }
    W.err_other++;
}

static void sample(struct samples *s, uint64_t from_ns, uint64_t to_ns)
{
    uint64_t us = to_ns > from_ns ? (to_ns - from_ns) / 1000u : 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint32_t *grown = realloc(s->v, cap * sizeof(*grown));
        if (!grown)
            return;
        s->v = grown;
        s->cap = cap;
    }
    s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* Copies an id from the server if it is a plain token (it goes into JSON). */
static bool copy_id(char *dst, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n == 0 || n >= ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((src[i] >= '0' && src[i] <= '9') || (src[i] >= 'a' && src[i] <= 'z') ||
              (src[i] >= 'A' && src[i] <= 'Z') || src[i] == '_' || src[i] == '-'))
            return false;
    memcpy(dst, src, n + 1);
    return true;
}

static void push_op(struct conn *c, enum op op)
{
    if (!c->wsi || c->state == C_DEAD || c->op_n == sizeof(c->ops))
        return;
    c->ops[(c->op_head + c->op_n++) % sizeof(c->ops)] = (uint8_t)op;
    lws_callback_on_writable(c->wsi);
}

static void timer_in(struct pair *p, uint64_t ms, uv_timer_cb cb)
{
    uv_timer_start(&p->timer, cb, ms, 0);
}

static void pacer_kick(void);
static void check_drained(void);
static void on_pacer(uv_timer_t *t);

/* ------------------------------------------------------------------------ */
/* pair life cycle                                                           */

static void release(struct pair *p)
{
    uv_timer_stop(&p->timer);
    p->state = P_FREE;
    W.free_q[(W.free_head + W.free_n++) % W.count] = (int)(p - W.pairs);
    if (W.phase == PH_RUN)
        pacer_kick();
    else if (W.phase == PH_DRAIN)
        check_drained();
}

static void on_cooldown_end(uv_timer_t *t)
{
    struct pair *p = t->data;

    if (p->state != P_COOLDOWN)
        return;
    /* An invite the server has not answered yet would still ring the
     * callee after the pair moved on: wait for its reply (and hang it up),
     * up to a limit. */
    if ((p->flags & F_INVITE_SENT) && !(p->flags & F_REPLY) &&
        load_mono_ns() < p->t_invite + ORPHAN_WAIT_NS) {
        timer_in(p, 500, on_cooldown_end);
        return;
    }
    release(p);
}

static void leave_state(struct pair *p)
{
    if (p->state == P_UP)
        W.up_now--;
    else if (p->state == P_SETUP)
        W.setup_now--;
}

/* A set-up (or the call after it) went wrong: count it, end the call on
 * the server if it may still be there, and rest the pair. */
static void fail(struct pair *p, const char *why)
{
    bool in_setup = p->state == P_SETUP;

    record_error(why);
    if (in_setup) {
        if (p->measured)
            W.failed++;
        W.failed_all++;
    }
    leave_state(p);
    p->state = P_COOLDOWN;
    if (p->call_id[0] && !(p->flags & F_CALLER_ENDED))
        push_op(&p->caller, OP_HANGUP); /* a ringing call ends "cancelled" */
    timer_in(p, COOLDOWN_MS, on_cooldown_end);
    if (W.phase == PH_DRAIN)
        check_drained();
}

static void on_setup_timeout(uv_timer_t *t)
{
    struct pair *p = t->data;
    char why[112];
    const char *what = !(p->flags & (F_REPLY | F_INCOMING)) ? "invite reply or call.incoming"
                       : !(p->flags & F_INCOMING)           ? "call.incoming"
                                                            : "call.accepted";

    if (p->state != P_SETUP)
        return;
    snprintf(why, sizeof(why), "no %s within %gs", what, W.cfg->setup_timeout_s);
    fail(p, why);
}

static void start_setup(struct pair *p, uint64_t sched)
{
    p->seq++;
    p->flags = 0;
    p->call_id[0] = '\0';
    p->t_sched = sched;
    p->measured = sched >= W.t_measure && sched < W.t_end;
    p->state = P_SETUP;
    W.setup_now++;
    if (p->measured)
        W.started++;
    W.started_all++;
    timer_in(p, (uint64_t)(W.cfg->setup_timeout_s * 1000), on_setup_timeout);
    push_op(&p->caller, OP_INVITE);
}

static void on_hangup_timeout(uv_timer_t *t)
{
    struct pair *p = t->data;
    if (p->state == P_HANGUP) {
        record_error("hang-up: no reply and call.ended on both sides within 5s");
        p->state = P_COOLDOWN;
        timer_in(p, COOLDOWN_MS, on_cooldown_end);
        if (W.phase == PH_DRAIN)
            check_drained();
    }
}

static void hang_up(struct pair *p)
{
    if (p->state != P_UP)
        return;
    leave_state(p);
    p->state = P_HANGUP;
    timer_in(p, HANGUP_TIMEOUT_MS, on_hangup_timeout);
    push_op(&p->caller, OP_HANGUP);
}

static void on_hold_end(uv_timer_t *t)
{
    hang_up(t->data);
}

static void established(struct pair *p, uint64_t now)
{
    W.setup_now--;
    p->state = P_UP;
    W.up_now++;
    if (p->measured) {
        W.ok++;
        sample(&W.setup, p->t_invite, now);
        sample(&W.incoming, p->t_invite, p->t_incoming);
        sample(&W.reply, p->t_invite, p->t_reply);
        sample(&W.accept, p->t_accept, now);
        sample(&W.lag, p->t_sched, p->t_invite);
    }
    W.ok_all++;
    if (W.hurry)
        hang_up(p);
    else
        timer_in(p, (uint64_t)(W.cfg->hold_s * 1000), on_hold_end);
}

static void maybe_released(struct pair *p, uint64_t now)
{
    const uint16_t all = F_HANGUP_OK | F_CALLER_ENDED | F_CALLEE_ENDED;
    if (p->state == P_HANGUP && (p->flags & all) == all) {
        if (p->t_hangup >= W.t_measure && p->t_hangup < W.t_end)
            sample(&W.hangup, p->t_hangup, now);
        release(p);
    }
}

/* ------------------------------------------------------------------------ */
/* messages                                                                  */

static void take_reply(struct conn *c, json_t *msg, json_int_t id)
{
    struct pair *p = c->pair;
    enum op op = (enum op)(id & ((1 << OP_BITS) - 1));
    uint32_t seq = (uint32_t)(id >> OP_BITS);
    bool ok = json_is_true(json_object_get(msg, "ok"));
    const char *code = json_string_value(json_object_get(json_object_get(msg, "error"), "code"));
    char why[112];
    uint64_t now = load_mono_ns();

    if (op == OP_LOGIN) {
        if (c->state != C_LOGIN)
            return;
        W.inflight--;
        W.conns_settled++;
        if (ok &&
            (!c->is_callee || copy_id(p->callee_id, json_string_value(json_object_get(
                                                        json_object_get(msg, "user"), "id"))))) {
            c->state = C_READY;
            W.conns_ready++;
        } else {
            snprintf(why, sizeof(why), "login: %s",
                     ok     ? "reply without user.id"
                     : code ? code
                            : "?");
            record_error(why);
            c->state = C_DEAD;
        }
        return;
    }
    if (seq != p->seq) {
        W.stray++;
        return;
    }
    switch (op) {
    case OP_INVITE:
        if (p->state == P_COOLDOWN && !(p->flags & F_REPLY)) {
            /* the reply of a set-up given up on: end that call */
            p->flags |= F_REPLY;
            if (ok && !p->call_id[0] &&
                copy_id(p->call_id, json_string_value(json_object_get(msg, "call_id"))))
                push_op(&p->caller, OP_HANGUP);
            return;
        }
        if (p->state != P_SETUP)
            return;
        if (!ok) {
            snprintf(why, sizeof(why), "invite: %s", code ? code : "?");
            fail(p, why);
            return;
        }
        p->flags |= F_REPLY;
        p->t_reply = now;
        if (!p->call_id[0]) {
            if (!copy_id(p->call_id, json_string_value(json_object_get(msg, "call_id"))))
                fail(p, "invite: reply without a usable call_id");
        } else if (strcmp(p->call_id, json_string_value(json_object_get(msg, "call_id"))
                                          ? json_string_value(json_object_get(msg, "call_id"))
                                          : "")) {
            fail(p, "invite: reply names another call than call.incoming");
        }
        return;
    case OP_ACCEPT:
        if (ok) {
            p->flags |= F_ACCEPT_OK;
        } else if (p->state == P_SETUP || p->state == P_UP) {
            snprintf(why, sizeof(why), "accept: %s", code ? code : "?");
            fail(p, why);
        }
        return;
    case OP_HANGUP:
        if (p->state != P_HANGUP)
            return; /* the hang-up of a failed set-up: nothing to wait for */
        if (!ok) {
            snprintf(why, sizeof(why), "hangup: %s", code ? code : "?");
            record_error(why);
        }
        p->flags |= F_HANGUP_OK;
        maybe_released(p, now);
        return;
    default:
        return;
    }
}

static void take_event(struct conn *c, json_t *msg, const char *type)
{
    struct pair *p = c->pair;
    const char *cid = json_string_value(json_object_get(msg, "call_id"));
    uint64_t now = load_mono_ns();
    char why[112];

    if (!strcmp(type, "call.incoming") && c->is_callee) {
        if (p->state != P_SETUP || (p->flags & F_INCOMING)) {
            W.stray++;
            return;
        }
        if (!p->call_id[0]) {
            if (!copy_id(p->call_id, cid)) {
                fail(p, "call.incoming without a usable call_id");
                return;
            }
        } else if (!cid || strcmp(cid, p->call_id)) {
            W.stray++;
            return;
        }
        p->flags |= F_INCOMING;
        p->t_incoming = now;
        push_op(&p->callee, OP_ACCEPT);
        return;
    }
    if (!cid || !p->call_id[0] || strcmp(cid, p->call_id))
        return; /* another call's, or not a call event */
    if (!strcmp(type, "call.accepted") && !c->is_callee) {
        if (p->state == P_SETUP && !(p->flags & F_ACCEPTED)) {
            p->flags |= F_ACCEPTED;
            established(p, now);
        }
        return;
    }
    if (!strcmp(type, "call.ended")) {
        const char *reason = json_string_value(json_object_get(msg, "reason"));
        p->flags |= c->is_callee ? F_CALLEE_ENDED : F_CALLER_ENDED;
        if (p->state == P_HANGUP) {
            maybe_released(p, now);
        } else if (p->state == P_SETUP && !c->is_callee) {
            snprintf(why, sizeof(why), "call.ended before call.accepted: %s",
                     reason ? reason : "?");
            fail(p, why);
        } else if (p->state == P_UP) {
            snprintf(why, sizeof(why), "call.ended during the hold: %s", reason ? reason : "?");
            fail(p, why);
        }
    }
}

static void take_message(struct conn *c, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, 0, &jerr);
    json_t *re;
    const char *type;

    if (!json_is_object(msg)) {
        record_error("server sent a message that is not a JSON object");
    } else if (json_is_integer(re = json_object_get(msg, "re"))) {
        take_reply(c, msg, json_integer_value(re));
    } else if ((type = json_string_value(json_object_get(msg, "type"))) != NULL) {
        if (c->state == C_READY)
            take_event(c, msg, type);
    }
    json_decref(msg);
}

/* Builds the next request of c into W.tx + LWS_PRE; returns its length. */
static size_t build_request(struct conn *c, enum op op)
{
    const struct cb_config *cfg = W.cfg;
    struct pair *p = c->pair;
    char *b = W.tx + LWS_PRE;
    size_t cap = TX_CAP - LWS_PRE, n = 0, sdp;
    unsigned long long id = ((unsigned long long)p->seq << OP_BITS) | op;
    int k;

    switch (op) {
    case OP_LOGIN:
        k = snprintf(b, cap,
                     "{\"id\":%d,\"type\":\"auth.login\",\"username\":\"%s%c%d\",\"password\":"
                     "\"%s\",\"device_id\":\"bench-%c%d\",\"platform\":\"load\"}",
                     OP_LOGIN, cfg->prefix, c->is_callee ? 'c' : 'g', p->global, cfg->password,
                     c->is_callee ? 'c' : 'g', p->global);
        return k > 0 && (size_t)k < cap ? (size_t)k : 0;
    case OP_INVITE:
        if (p->state != P_SETUP || (p->flags & F_INVITE_SENT))
            return 0;
        k = snprintf(b, cap,
                     "{\"id\":%llu,\"type\":\"call.invite\",\"to\":{\"user\":\"%s\"},"
                     "\"media\":{\"audio\":true,\"video\":true},\"sdp\":\"",
                     id, p->callee_id);
        n = (size_t)k;
        sdp = cb_sdp_json(b + n, cap - n - 3, true, cfg->offer_bytes,
                          ((uint64_t)p->global << 32) ^ p->seq);
        if (!sdp)
            return 0;
        n += sdp;
        memcpy(b + n, "\"}", 3);
        p->flags |= F_INVITE_SENT;
        return n + 2;
    case OP_ACCEPT:
        if (p->state != P_SETUP || (p->flags & F_ACCEPT_SENT))
            return 0;
        k = snprintf(b, cap, "{\"id\":%llu,\"type\":\"call.accept\",\"call_id\":\"%s\",\"sdp\":\"",
                     id, p->call_id);
        n = (size_t)k;
        sdp = cb_sdp_json(b + n, cap - n - 3, false, cfg->answer_bytes,
                          ((uint64_t)p->global << 32) ^ p->seq ^ 0x5a5a5a5aull);
        if (!sdp)
            return 0;
        n += sdp;
        memcpy(b + n, "\"}", 3);
        p->flags |= F_ACCEPT_SENT;
        return n + 2;
    case OP_HANGUP:
        if (!p->call_id[0])
            return 0;
        k = snprintf(b, cap, "{\"id\":%llu,\"type\":\"call.hangup\",\"call_id\":\"%s\"}", id,
                     p->call_id);
        return k > 0 && (size_t)k < cap ? (size_t)k : 0;
    default:
        return 0;
    }
}

static int on_writeable(struct conn *c, struct lws *wsi)
{
    while (c->op_n) {
        enum op op = (enum op)c->ops[c->op_head];
        size_t len;
        uint64_t now;

        c->op_head = (uint8_t)((c->op_head + 1) % sizeof(c->ops));
        c->op_n--;
        len = build_request(c, op);
        if (!len)
            continue; /* no longer wanted */
        now = load_mono_ns();
        if (op == OP_INVITE)
            c->pair->t_invite = now;
        else if (op == OP_ACCEPT)
            c->pair->t_accept = now;
        else if (op == OP_HANGUP)
            c->pair->t_hangup = now;
        if (lws_write(wsi, (unsigned char *)W.tx + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len) {
            record_error("write failed");
            return -1;
        }
        break; /* one write per WRITEABLE */
    }
    if (c->op_n)
        lws_callback_on_writable(wsi);
    return 0;
}

static int on_receive(struct conn *c, struct lws *wsi, const char *in, size_t len)
{
    bool complete = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;

    if (lws_frame_is_binary(wsi))
        return 0;
    if (complete && c->rx_len == 0) {
        take_message(c, in, len);
        return 0;
    }
    if ((size_t)c->rx_len + len > MAX_MESSAGE) {
        record_error("message over 256 KiB");
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
        take_message(c, c->rx, c->rx_len);
        c->rx_len = 0;
    }
    return 0;
}

/* The connection is gone: settle its login or take its pair out. */
static void conn_lost(struct conn *c, const char *why)
{
    struct pair *p = c->pair;
    int prev = c->state;

    c->wsi = NULL;
    c->op_n = 0;
    if (prev == C_DEAD || W.phase == PH_DONE)
        return;
    c->state = C_DEAD;
    if (prev == C_CONNECTING || prev == C_LOGIN) {
        W.inflight--;
        W.conns_settled++;
        record_error(why);
        return;
    }
    if (prev == C_READY && p->state != P_LOGIN && p->state != P_DEAD) {
        record_error(why);
        if (p->state == P_SETUP)
            fail(p, "connection lost during the set-up");
        leave_state(p);
        uv_timer_stop(&p->timer);
        p->state = P_DEAD;
        if (W.phase == PH_DRAIN)
            check_drained();
    }
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
        conn_lost(c, why);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c->state != C_CONNECTING)
            return -1;
        c->wsi = wsi;
        c->state = C_LOGIN;
        push_op(c, OP_LOGIN);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->state == C_DEAD)
            return -1;
        return on_writeable(c, wsi);
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
            record_error(why);
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        conn_lost(c, "connection lost");
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c->wsi == wsi || c->state == C_CONNECTING)
            conn_lost(c, "connection dropped before the handshake finished");
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
    ci.port = cfg->port;
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
        conn_lost(c, "connect: lws_client_connect_via_info failed");
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
                    record_error("not logged in before the connect deadline");
                }
            }
        }
    }
    if (W.conns_settled >= total) {
        uv_timer_stop(&W.tick);
        report_settled();
    }
}

static void pacer_kick(void)
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
        start_setup(p, next);
        W.next_k++;
    }
    if (next >= W.t_end)
        next = W.t_end;
    uv_timer_start(&W.pacer, on_pacer, next > now ? (next - now + 999999) / 1000000 : 0, 0);
}

static void on_drain_tick(uv_timer_t *t)
{
    (void)t;
    check_drained();
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
                hang_up(&W.pairs[i]);
    }
    if (W.phase != PH_RUN && W.phase != PH_WAIT_GO)
        return;
    W.phase = PH_DRAIN;
    W.drain_deadline = load_mono_ns() + (uint64_t)((W.cfg->setup_timeout_s + W.cfg->hold_s) * 1e9) +
                       DRAIN_EXTRA_NS;
    uv_timer_stop(&W.pacer);
    uv_timer_start(&W.tick, on_drain_tick, 50, 50);
    check_drained();
}

static void on_pacer(uv_timer_t *t)
{
    (void)t;
    if (load_mono_ns() >= W.t_end)
        begin_drain(false);
    else
        pacer_kick();
}

static void check_drained(void)
{
    bool busy = false;

    if (W.phase != PH_DRAIN)
        return;
    for (int i = 0; i < W.count && !busy; i++)
        busy =
            W.pairs[i].state == P_SETUP || W.pairs[i].state == P_UP || W.pairs[i].state == P_HANGUP;
    if (!busy || load_mono_ns() >= W.drain_deadline) {
        if (busy)
            record_error("calls still open at the end of the drain");
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
        write_all(W.up_fd, text, strlen(text));
        write_all(W.up_fd, "\n", 1);
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
