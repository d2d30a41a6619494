/* Regulators' monthly self-evaluation (自评): each regulator files one per
 * filing period, a calendar month of the business time zone, from the 1st
 * to the 5th (selfeval_last_day) of that month, about the month before.
 * Documents in the collection "selfeval_filings", id USER/YYYY-MM (the
 * filing period), indexed by period and division; the reminders scheduler
 * reminds the regulators who have none for the current period. */
#ifndef YJT_SELFEVAL_H
#define YJT_SELFEVAL_H

#include "records/store.h"

#define SELFEVAL_SUMMARY_MAX 8000

int selfeval_init(struct store *st);
/* Files (or replaces, the same period) the self-evaluation of gov user
 * user_id of division at now_ms with summary. Returns 0 with *out (the
 * stored document, new reference), STORE_EINVAL with *why, or a store
 * error. */
int selfeval_file(struct store *st, const char *user_id, const char *division, const char *summary,
                  int64_t now_ms, json_t **out, const char **why);
/* The filings of period (YYYY-MM) whose division is within division: a
 * new object {user id: document}. */
int selfeval_of_period(struct store *st, const char *period, const char *division, json_t **out);

#endif
