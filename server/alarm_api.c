/* Alarms in the server: start-up wiring (records, delivery, downtime),
 * the tick that runs the interruption scan and the escalations, and the
 * lifecycle over WebSocket:
 *   alarm.ack       {"alarm_id"}                    签收
 *   alarm.feedback  {"alarm_id","found","done"}     处置反馈
 *   alarm.close     {"alarm_id","note"?}
 * each replying {"alarm": {…}} (the record after the change).
 *
 * Who acts: the enterprise's own alarm staff (corp users of the alarm's
 * enterprise with position duty/值班, safety_manager/安全管理人员 or
 * principal/主要负责人) and admin. Regulators read alarms in their
 * jurisdiction and are told of escalations, but do not act on the plant's
 * behalf (forbidden). Every transition is audited. */
#include "server/alarm_api.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/alarm_push.h"
#include "records/account.h"
#include "records/audit.h"
#include "records/downtime.h"
#include "records/jurisdiction.h"
#include "server/conn.h"
#include "server/server.h"
#include "server/ws.h"

#include <string.h>

static guint tick_source;

void alarm_api_tick_then(bool full, void (*done)(void *ud), void *ud)
{
    int64_t now = clock_now_ms();
    alarm_scan(now, full ? 0 : server.cfg.alarm_scan_batch);
    alarm_push_tick_then(now, done, ud);
}

void alarm_api_tick(bool full)
{
    alarm_api_tick_then(full, NULL, NULL);
}

static gboolean on_tick(gpointer data)
{
    (void)data;
    if (!server.stopping)
        alarm_api_tick(false);
    return G_SOURCE_CONTINUE;
}

int alarm_api_init(void)
{
    struct alarm_config ac;
    char *err = NULL;
    if (config_alarm(&server.cfg, &ac, &err) < 0) {
        log_error("alarm", "%s", err);
        g_free(err);
        return -1;
    }
    if (downtime_init(server.store, clock_now_ms()) != STORE_OK ||
        alarm_init(server.store, &ac) != STORE_OK) {
        log_error("alarm", "cannot load the alarms or downtime declarations");
        downtime_shutdown();
        return -1;
    }
    alarm_push_init(server.store);
    /* deadlines that passed while the server was down fire now */
    alarm_push_tick(clock_now_ms());
    tick_source = g_timeout_add((guint)server.cfg.alarm_scan_interval_ms, on_tick, NULL);
    return 0;
}

void alarm_api_shutdown(void)
{
    if (tick_source)
        g_source_remove(tick_source);
    tick_source = 0;
    alarm_push_shutdown();
    alarm_scan_shutdown();
    alarm_shutdown();
    downtime_shutdown();
}

/* True if the account may act on the alarms of enterprise. */
static bool may_act(const struct account *acct, const char *enterprise)
{
    if (strcmp(acct->role, "admin") == 0)
        return true;
    return strcmp(acct->role, "corp") == 0 && strcmp(acct->org, enterprise) == 0 &&
           alarm_staff_position(acct->position);
}

/* An action under way: what its audit line and its caller need. */
struct act {
    char *actor, *role, *org, *action, *id, *peer;
    alarm_api_cb cb;
    void *ud;
};

static struct act *act_new(const struct account *acct, const char *action, const char *id,
                           const char *peer, alarm_api_cb cb, void *ud)
{
    struct act *x = g_new(struct act, 1);
    *x = (struct act){g_strdup(acct->id),
                      g_strdup(acct->role),
                      g_strdup(acct->org),
                      g_strdup(action),
                      g_strdup(id),
                      g_strdup(peer),
                      cb,
                      ud};
    return x;
}

static void act_free(struct act *x)
{
    g_free(x->actor);
    g_free(x->role);
    g_free(x->org);
    g_free(x->action);
    g_free(x->id);
    g_free(x->peer);
    g_free(x);
}

/* An alarm not open here: closed (for whoever sees it) or unknown. */
static void on_not_open(int rc, const struct store_docs *d, void *ud)
{
    struct act *x = ud;
    json_t *doc = rc == STORE_OK && d->n == 1 ? d->docs[0] : NULL;
    bool visible =
        doc &&
        (strcmp(x->role, "admin") == 0 ||
         (strcmp(x->role, "corp") == 0 && g_strcmp0(x->org, jx_str(doc, "enterprise")) == 0));
    if (rc != STORE_OK && rc != STORE_ENOTFOUND)
        x->cb(ERR_UNAVAILABLE, "store unavailable", NULL, x->ud);
    else
        x->cb(visible ? ERR_CONFLICT : ERR_NOT_FOUND,
              visible ? "the alarm is closed" : "no such alarm", NULL, x->ud);
    act_free(x);
}

static void on_acted(enum err_code e, const char *why, json_t *alarm, void *ud)
{
    struct act *x = ud;
    if (e == ERR_NONE)
        audit_log(server.store, x->actor, x->action, x->id, "ok", x->peer);
    x->cb(e, why, alarm, x->ud);
    act_free(x);
}

void alarm_api_act(const struct account *acct, const char *verb, const char *id, const json_t *msg,
                   const char *peer, alarm_api_cb cb, void *ud)
{
    const struct alarm *a = alarm_open_get(id);
    if (!a) {
        struct act *x = act_new(acct, verb, id, peer, cb, ud);
        if (!id || alarm_load_later(id, on_not_open, x) != STORE_OK) {
            struct store_docs none = {0};
            on_not_open(id ? STORE_EIO : STORE_ENOTFOUND, &none, x);
        }
        return;
    }
    struct principal who = {acct->role, acct->org};
    if (!juris_reaches(&who, ORG_ENTERPRISE, a->enterprise, a->division)) {
        /* outside the caller's jurisdiction: not even its existence */
        cb(ERR_NOT_FOUND, "no such alarm", NULL, ud);
        return;
    }
    struct alarm_deed d = {.actor = acct->id, .now_ms = clock_now_ms()};
    const char *action;
    if (strcmp(verb, "ack") == 0 && strcmp(acct->role, "gov") == 0) {
        /* A duty regulator the alarm was escalated to acknowledges it at
         * its level. */
        d.kind = ALARM_DEED_RECEIPT;
        action = "alarm.receipt";
    } else if (!may_act(acct, a->enterprise)) {
        cb(ERR_FORBIDDEN,
           strcmp(acct->role, "corp") == 0
               ? "only the enterprise's duty staff, safety managers and principal act on alarms"
               : "only the enterprise acts on its alarms",
           NULL, ud);
        return;
    } else if (strcmp(verb, "ack") == 0) {
        d.kind = ALARM_DEED_ACK;
        action = "alarm.ack";
    } else if (strcmp(verb, "feedback") == 0) {
        d.kind = ALARM_DEED_FEEDBACK;
        d.found = jx_str(msg, "found");
        d.done = jx_str(msg, "done");
        action = "alarm.feedback";
    } else {
        d.kind = ALARM_DEED_CLOSE;
        d.note = jx_str(msg, "note");
        action = "alarm.close";
    }
    alarm_act(id, &d, on_acted, act_new(acct, action, id, peer, cb, ud));
}

/* ------------------------------------------------------------ WebSocket */

static void on_ws_acted(enum err_code e, const char *why, json_t *alarm, void *ud)
{
    conn_req_answer(ud, e, why, e == ERR_NONE ? json_pack("{s:O}", "alarm", alarm) : NULL);
}

static void handle(struct conn *c, json_t *id, json_t *msg, const char *verb)
{
    const char *aid = jx_str_bounded(msg, "alarm_id", 64);
    if (!aid) {
        conn_reply_error(c, id, ERR_BAD_REQUEST, "alarm_id must be a string");
        return;
    }
    struct account *acct = NULL;
    if (account_get(server.store, c->user_id, &acct) != STORE_OK) {
        conn_reply_error(c, id, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    alarm_api_act(acct, verb, aid, msg, c->peer, on_ws_acted, conn_req_new(c, id));
    account_free(acct);
}

static void h_ack(struct conn *c, json_t *id, json_t *msg)
{
    handle(c, id, msg, "ack");
}

static void h_feedback(struct conn *c, json_t *id, json_t *msg)
{
    handle(c, id, msg, "feedback");
}

static void h_close(struct conn *c, json_t *id, json_t *msg)
{
    handle(c, id, msg, "close");
}

const struct ws_handler alarm_handlers[] = {
    {"alarm.ack", h_ack, true, false},
    {"alarm.feedback", h_feedback, true, false},
    {"alarm.close", h_close, true, false},
    {NULL, NULL, false, false},
};
