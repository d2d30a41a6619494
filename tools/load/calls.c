/*
 * calls.c: the call flow of yjt-callbench's caller/callee pairs.
 *
 * A pair is two logged-in connections of one worker (callworker.c), a gov
 * caller and a corp callee.  The pacer starts a set-up on a free pair:
 *
 *   caller  call.invite {to: callee, sdp: offer}   -> reply {call_id}
 *   callee  <- call.incoming, call.accept {sdp: answer} -> reply ok
 *   caller  <- call.accepted                       (set-up complete)
 *   ... hold_s later: caller call.hangup, both get call.ended, pair free
 *
 * This file sends those requests (one per WRITEABLE, built in place, the
 * SDP from sdp.c), takes the replies and events, and times invite ->
 * call.accepted (the set-up), invite -> call.incoming, invite -> reply,
 * accept -> call.accepted and the pacer's own lag for set-ups started
 * inside the measured window, and hang-up -> reply and both call.ended for
 * hang-ups sent inside it.  A set-up that fails (error reply, call.ended,
 * no answer within setup_timeout_s, lost connection) is counted under its
 * reason and its call hung up; the pair rests 2 s (longer while its invite
 * is unanswered) so late events of that call find nothing, and is used
 * again.  Request ids carry the attempt and the kind of request, so a late
 * reply is told from a current one.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

void cb_error(const char *text)
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

void calls_push(struct conn *c, enum op op)
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

/* ------------------------------------------------------------------------ */
/* pair life cycle                                                           */

static void release(struct pair *p)
{
    uv_timer_stop(&p->timer);
    p->state = P_FREE;
    W.free_q[(W.free_head + W.free_n++) % W.count] = (int)(p - W.pairs);
    if (W.phase == PH_RUN)
        worker_pacer_kick();
    else if (W.phase == PH_DRAIN)
        worker_check_drained();
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

    cb_error(why);
    if (in_setup) {
        if (p->measured)
            W.failed++;
        W.failed_all++;
    }
    leave_state(p);
    p->state = P_COOLDOWN;
    if (p->call_id[0] && !(p->flags & F_CALLER_ENDED))
        calls_push(&p->caller, OP_HANGUP); /* a ringing call ends "cancelled" */
    timer_in(p, COOLDOWN_MS, on_cooldown_end);
    if (W.phase == PH_DRAIN)
        worker_check_drained();
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

void calls_start(struct pair *p, uint64_t sched)
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
    calls_push(&p->caller, OP_INVITE);
}

static void on_hangup_timeout(uv_timer_t *t)
{
    struct pair *p = t->data;
    if (p->state == P_HANGUP) {
        cb_error("hang-up: no reply and call.ended on both sides within 5s");
        p->state = P_COOLDOWN;
        timer_in(p, COOLDOWN_MS, on_cooldown_end);
        if (W.phase == PH_DRAIN)
            worker_check_drained();
    }
}

void calls_hang_up(struct pair *p)
{
    if (p->state != P_UP)
        return;
    leave_state(p);
    p->state = P_HANGUP;
    timer_in(p, HANGUP_TIMEOUT_MS, on_hangup_timeout);
    calls_push(&p->caller, OP_HANGUP);
}

static void on_hold_end(uv_timer_t *t)
{
    calls_hang_up(t->data);
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
        calls_hang_up(p);
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
            cb_error(why);
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
                calls_push(&p->caller, OP_HANGUP);
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
            cb_error(why);
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
        calls_push(&p->callee, OP_ACCEPT);
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

void calls_take_message(struct conn *c, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, 0, &jerr);
    json_t *re;
    const char *type;

    if (!json_is_object(msg)) {
        cb_error("server sent a message that is not a JSON object");
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

int calls_write_next(struct conn *c, struct lws *wsi)
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
            cb_error("write failed");
            return -1;
        }
        break; /* one write per WRITEABLE */
    }
    if (c->op_n)
        lws_callback_on_writable(wsi);
    return 0;
}

/* The connection is gone: settle its login or take its pair out. */
void calls_conn_lost(struct conn *c, const char *why)
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
        cb_error(why);
        return;
    }
    if (prev == C_READY && p->state != P_LOGIN && p->state != P_DEAD) {
        cb_error(why);
        if (p->state == P_SETUP)
            fail(p, "connection lost during the set-up");
        leave_state(p);
        uv_timer_stop(&p->timer);
        p->state = P_DEAD;
        if (W.phase == PH_DRAIN)
            worker_check_drained();
    }
}
