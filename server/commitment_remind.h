/* The server's hook between the records' reminder answers
 * (records/commitment_due.h) and the push inbox: it turns "who is missing
 * at the deadline" and "who has not confirmed this month" into pushes.
 * The push module's reminders scheduler calls these at their times (the
 * commitment reminders themselves need no hook: the scheduler takes
 * commitment_due_recipients() as its commitment source).
 *
 * The push function has the shape of inbox_push_many() (push/inbox.h):
 * the scheduler hands in its own, which sends with the run's write. Both
 * read everything first and push last, so that a run of the scheduler's
 * replay that lacked a read pushes nothing. */
#ifndef YJT_COMMITMENT_REMIND_H
#define YJT_COMMITMENT_REMIND_H

#include "push/reminders.h"
#include "records/store.h"

#include <jansson.h>
#include <stdint.h>

typedef reminder_push_fn remind_push_fn;

#define REMIND_TTL_S 86400

/* At the commitment deadline of date: one push per division that has
 * enterprises, to its duty regulators (or those of the nearest division
 * above), with who filed, who was late and who is missing; kind
 * "reminder", payload {"type":"commitment.summary", "date", "division",
 * "should_file", "filed", "late", "missing":[{"enterprise","name"}]}.
 * Returns the number of pushes sent, or a negative store error. */
int commitment_remind_summary(struct store *st, const char *date, int deadline_min,
                              remind_push_fn push);
/* On the confirmation day: one push to the principal and safety managers
 * of every enterprise whose file was not confirmed in the business month
 * of now_ms; kind "reminder", payload {"type":"enterprise.confirm",
 * "month", "enterprises":[ids]}. Returns 1 if sent, 0 if nobody was due,
 * or a negative store error. */
int commitment_remind_confirm(struct store *st, int64_t now_ms, remind_push_fn push);

#endif
