/* The reminders scheduler: business-calendar jobs in the business time
 * zone (default Asia/Shanghai), each with its next run stored as a
 * deadline ("rem/JOB"), so a timer in memory is only a cache of it.
 *
 * Jobs:
 *   commitment.HHMM  every day at each configured time (08:30, 09:30): a
 *                    reminder push to the principal and safety managers of
 *                    each enterprise that has not filed today's commitment;
 *   selfeval         on the 1st to the 5th of each month at one time
 *                    (09:00): a reminder to every regulator that has not
 *                    filed this month's self-evaluation;
 *   summary          every day at the commitment deadline (10:00): the
 *                    records' summary of who has not filed, pushed by a
 *                    runner the server registers;
 *   confirm          on the confirmation day of each month, at the
 *                    self-evaluation time: the records' reminder to
 *                    enterprises whose file was not confirmed this month.
 *
 * Exactly once: a run's pushes and its record in the job's journal
 * ("reminders/JOB", a store sequence) are written in one transaction,
 * and the next run is stored after it; a run found in the journal is
 * never sent again. After a restart, a run whose time passed while the
 * server was down is caught up once if it is still the same business day
 * and before the job's cut-off (the 10:00 filing deadline for commitment
 * reminders, the end of the day for the self-evaluation); otherwise it is
 * logged as missed and the next one is scheduled.
 *
 * Who is reminded comes from source functions: the commitments and
 * self-evaluation records register theirs; until then stand-ins read
 * "commitment_filings" and "selfeval_filings" documents. Main loop only. */
#ifndef YJT_REMINDERS_H
#define YJT_REMINDERS_H

#include "records/store.h"

#include <glib.h>
#include <stdint.h>

struct reminders_config {
    const char *tz;                /* IANA zone, e.g. Asia/Shanghai */
    const char *commitment_times;  /* "08:30,09:30" */
    const char *commitment_cutoff; /* "10:00" */
    const char *selfeval_time;     /* "09:00" */
    int selfeval_last_day;         /* 5 */
    int confirm_day;               /* 25; 0: no confirmation job */
    const char *holder;            /* this node, as the holder of a run's claim;
                                      the same across its restarts (NULL: one node) */
};

/* Adds to user_ids (g_strdup'ed strings) the users to remind on business
 * date (YYYY-MM-DD). Returns 0 or a store error. */
typedef int (*reminder_source_fn)(struct store *st, const char *date, GPtrArray *user_ids,
                                  void *ud);

/* How a composed job sends a push (inbox_push_many's arguments): with the
 * run's write, which is answered later (seqs_out is not filled). */
typedef int (*reminder_push_fn)(const char *const *user_ids, int n, const char *kind,
                                const char *priority, int64_t ttl_s, const char *title,
                                const char *body, json_t *payload, int64_t *seqs_out);

/* Runs a job whose pushes the records compose (summary, confirm) for
 * business date at now_ms, sending them with push; returns how many it
 * sent, or a negative store error (the run is then tried again). It may be
 * run more than once for one run (a replay's run that lacked a read is
 * thrown away, its pushes refused): it must read before it pushes. */
typedef int (*reminder_run_fn)(struct store *st, const char *date, int64_t now_ms,
                               reminder_push_fn push, void *ud);

/* Checks the configuration (returns -1 with *err set, g_free) and sets
 * the jobs up, storing the first run of any job that has none. */
int reminders_init(struct store *st, const struct reminders_config *cfg, char **err);
void reminders_shutdown(void);
void reminders_set_commitment_source(reminder_source_fn fn, void *ud);
void reminders_set_selfeval_source(reminder_source_fn fn, void *ud);
/* The runners of the summary and confirm jobs; a job without one does
 * nothing when due. */
void reminders_set_summary_runner(reminder_run_fn fn, void *ud);
void reminders_set_confirm_runner(reminder_run_fn fn, void *ud);
/* Runs the jobs that are due (main.c calls it every second). */
void reminders_tick(void);
/* The same; done(ud) once the runs due now are over (sent, found sent,
 * missed or failed) and nothing is out (the test clock answers then). */
void reminders_tick_then(void (*done)(void *ud), void *ud);

/* The scheduler's clock: the wall clock plus an offset that only a test
 * build of the server may set (see the test_clock key). */
int64_t reminders_now_ms(void);
void reminders_set_now_ms(int64_t now_ms);

#endif
