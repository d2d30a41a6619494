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

void alarm_api_tick(bool full)
{
    int64_t now = clock_now_ms();
    alarm_scan(now, full ? 0 : server.cfg.alarm_scan_batch);
    alarm_push_tick(now);
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

enum err_code alarm_api_act(const struct account *acct, const char *verb, const char *id,
                            const json_t *msg, const char *peer, json_t **out, const char **why)
{
    const struct alarm *a = alarm_open_get(id);
    if (!a) {
        json_t *doc = NULL;
        bool exists = id && alarm_load_json(id, &doc) == STORE_OK;
        bool visible = exists && (strcmp(acct->role, "admin") == 0 ||
                                  (strcmp(acct->role, "corp") == 0 &&
                                   strcmp(acct->org, jx_str(doc, "enterprise")) == 0));
        json_decref(doc);
        *why = visible ? "the alarm is closed" : "no such alarm";
        return visible ? ERR_CONFLICT : ERR_NOT_FOUND;
    }
    struct principal who = {acct->role, acct->org};
    if (!juris_reaches(&who, ORG_ENTERPRISE, a->enterprise, a->division)) {
        *why = "no such alarm";
        return ERR_NOT_FOUND; /* outside the caller's jurisdiction: not even its existence */
    }
    if (strcmp(verb, "ack") == 0 && strcmp(acct->role, "gov") == 0) {
        /* A duty regulator the alarm was escalated to acknowledges it at
         * its level. */
        char *aid = g_strdup(id);
        enum err_code e = alarm_receipt(aid, acct->id, clock_now_ms(), &a, why);
        g_free(aid);
        if (e == ERR_NONE) {
            audit_log(server.store, acct->id, "alarm.receipt", id, "ok", peer);
            *out = alarm_to_json(a);
        }
        return e;
    }
    if (!may_act(acct, a->enterprise)) {
        *why = strcmp(acct->role, "corp") == 0
                   ? "only the enterprise's duty staff, safety managers and principal act on alarms"
                   : "only the enterprise acts on its alarms";
        return ERR_FORBIDDEN;
    }
    int64_t now = clock_now_ms();
    enum err_code e;
    char *aid = g_strdup(id);
    if (strcmp(verb, "ack") == 0)
        e = alarm_ack(aid, acct->id, now, &a, why);
    else if (strcmp(verb, "feedback") == 0)
        e = alarm_feedback(aid, acct->id, jx_str(msg, "found"), jx_str(msg, "done"), now, &a, why);
    else
        e = alarm_close(aid, acct->id, jx_str(msg, "note"), now, &a, why);
    if (e == ERR_NONE) {
        char action[32];
        g_snprintf(action, sizeof(action), "alarm.%s", verb);
        audit_log(server.store, acct->id, action, aid, "ok", peer);
        if (a)
            *out = alarm_to_json(a);
        else if (alarm_load_json(aid, out) != STORE_OK)
            *out = json_pack("{s:s, s:s}", "id", aid, "state", "closed");
    }
    g_free(aid);
    return e;
}

/* ------------------------------------------------------------ WebSocket */

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
    json_t *out = NULL;
    const char *why = "";
    enum err_code e = alarm_api_act(acct, verb, aid, msg, c->peer, &out, &why);
    account_free(acct);
    if (e != ERR_NONE)
        conn_reply_error(c, id, e, why);
    else
        conn_reply(c, id, json_pack("{s:o}", "alarm", out));
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
    {"alarm.ack", h_ack, true},
    {"alarm.feedback", h_feedback, true},
    {"alarm.close", h_close, true},
    {NULL, NULL, false},
};
