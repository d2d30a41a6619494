/* Who must be reminded, and who is missing: the records side of the
 * commitment and confirmation reminders. The push module's reminders
 * scheduler decides when (stored deadlines, exactly once) and sends the
 * pushes; these functions only answer, for a business date or a moment,
 * who the pushes go to, from the store as it is. They never send or
 * schedule anything.
 *
 *   - Commitment reminders (at each commitment_reminder_times): the
 *     principal and safety managers (corp accounts with position
 *     "principal"/"主要负责人" or "safety_manager"/"安全管理人员", not
 *     disabled) of every enterprise without a commitment on that date.
 *     commitment_due_recipients() has the scheduler's source signature.
 *   - The deadline summary (at commitment_deadline): per division of the
 *     enterprises, the duty regulators (gov accounts with position "duty"
 *     or "值班") of that division, or of the nearest division above it
 *     that has some, with the list of who has not filed.
 *   - The monthly confirmation reminder (on confirm_reminder_day): the
 *     contacts of every enterprise whose file was not confirmed (approved)
 *     in the current business month. */
#ifndef YJT_COMMITMENT_DUE_H
#define YJT_COMMITMENT_DUE_H

#include "common/bizdate.h"
#include "records/store.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* Minutes after midnight at which the monthly confirmation reminder is
 * due on its day. */
#define DUE_CONFIRM_MINUTE (9 * 60)

bool due_is_contact(const char *position);
bool due_is_duty(const char *position);

/* Adds to user_ids (g_strdup'ed) the contacts of every enterprise that
 * has not filed a commitment on date. Returns 0 or a store error. */
int commitment_due_recipients(struct store *st, const char *date, GPtrArray *user_ids, void *ud);

/* The deadline summaries of date: an array of {"division", "users":
 * [duty regulator ids], "should_file", "filed", "late", "missing":
 * [{"enterprise","name"}]}, one per division code of the enterprises, in
 * code order; a division with no duty regulator up the chain has "users"
 * empty. deadline_min as in commitment_day(). */
int commitment_due_summaries(struct store *st, const char *date, int deadline_min, json_t **out);

/* The UTC ms at which the confirmation reminder of the business month of
 * now_ms is due (day at DUE_CONFIRM_MINUTE), or -1 for a bad day. */
int64_t due_confirm_at(int64_t now_ms, int day);
/* Adds to user_ids the contacts of every enterprise whose confirmed_at
 * is not in the business month of now_ms; *enterprises (may be NULL) gets
 * their ids. Returns 0 or a store error. */
int enterprise_unconfirmed_recipients(struct store *st, int64_t now_ms, GPtrArray *user_ids,
                                      json_t **enterprises);

#endif
