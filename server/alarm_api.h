/* Alarms in the server (see alarm_api.c): start-up, the periodic tick,
 * and the lifecycle actions shared by the WebSocket and REST glue. */
#ifndef YJT_ALARM_API_H
#define YJT_ALARM_API_H

#include "common/errors.h"
#include "records/account.h"

#include <jansson.h>
#include <stdbool.h>

/* Loads the alarms and downtime declarations, registers delivery, fires
 * the escalations that came due while the server was down, and starts the
 * tick (alarm_scan_interval_ms). Returns 0 or -1 (logged). */
int alarm_api_init(void);
void alarm_api_shutdown(void);
/* One tick: the interruption scan (alarm_scan_batch sensors, or all of
 * them with full) and the due escalations; done (may be NULL) hears when
 * those are taken (alarm_push_tick_then). */
void alarm_api_tick(bool full);
void alarm_api_tick_then(bool full, void (*done)(void *ud), void *ud);

/* Runs verb ("ack", "feedback", "close") on alarm id for acct, with the
 * request's fields in msg (borrowed for the call), audited: cb(e, why,
 * alarm, ud) with the record after the change (borrowed for the call), at
 * once or later from the main loop (alarm_act). */
typedef void (*alarm_api_cb)(enum err_code e, const char *why, json_t *alarm, void *ud);
void alarm_api_act(const struct account *acct, const char *verb, const char *id, const json_t *msg,
                   const char *peer, alarm_api_cb cb, void *ud);

#endif
