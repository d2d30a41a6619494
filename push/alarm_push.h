/* Alarm delivery and escalation.
 *
 * Delivery: a raised or upgraded alarm (already stored by records/alarm.c)
 * is pushed (kind "alarm", priority high) to the enterprise's duty staff:
 * its corp users with position duty/值班, safety_manager/安全管理人员 or
 * principal/主要负责人, not disabled.
 *
 * Escalation: alarm_push_tick() looks at the open alarms' stored
 * escalation deadlines; each one that is due takes its step: the duty
 * regulators (gov, position duty/值班) of the alarm's district (step 1),
 * city (2) or province (3) are found, the step is recorded in the alarm
 * (records) and the alarm is pushed to them. A step whose level has no
 * duty regulator is recorded with no users and logged. The deadline lives
 * in the stored alarm, so a restart loses nothing, and a deadline that
 * passed while the server was down fires at the first tick.
 *
 * Downtime declarations are pushed (kind "downtime", priority normal) to
 * the duty regulators of the enterprise's district, so the regulator sees
 * them. Main loop only. */
#ifndef YJT_ALARM_PUSH_H
#define YJT_ALARM_PUSH_H

#include "records/alarm.h"
#include "records/store.h"

#include <glib.h>
#include <jansson.h>
#include <stdint.h>

#define ALARM_PUSH_TTL_S (7 * 86400)
#define ALARM_ESCALATIONS_PER_TICK 200

/* Registers the delivery listener with alarm_on_changed(). st is borrowed. */
void alarm_push_init(struct store *st);
void alarm_push_shutdown(void);
/* Takes the escalation steps due at now_ms (at most a bounded number of
 * alarms per call). Where other servers change the alarms too and the
 * store's reads travel, the due alarms' stored records are read first
 * without waiting (one read for the tick) and merged, and the steps are
 * taken when it is answered (at the clock's time then; the alarms are
 * skipped by the ticks meanwhile). done (may be NULL) hears once no such
 * read is out any more (this tick's and earlier ones': every step due is
 * taken), from the main loop, or at once. */
void alarm_push_tick_then(int64_t now_ms, void (*done)(void *ud), void *ud);
void alarm_push_tick(int64_t now_ms);

/* True if position is one of the enterprise's alarm staff positions. */
bool alarm_staff_position(const char *position);
/* Adds (g_strdup'ed) the alarm staff of enterprise to ids. */
int alarm_push_staff(const char *enterprise, GPtrArray *ids);
/* Adds the duty regulators of exactly division (short or padded form). */
int alarm_push_duty(const char *division, GPtrArray *ids);
/* The push payload of an alarm (new reference). */
json_t *alarm_push_payload(const struct alarm *a);
/* Pushes a stored downtime declaration to the district's duty regulators. */
int alarm_push_downtime(json_t *decl);

#endif
