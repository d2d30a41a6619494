/* The daily safety risk commitment announcement (安全风险研判与承诺公告).
 *
 * An enterprise files one per business day: its production units, the
 * state of each major hazard source, special operations in progress, the
 * day's risk grade and its principal's statement. Documents live in the
 * collection "commitments" with id "<enterprise>:<date>", indexed by date,
 * division and enterprise. A filing after the day's deadline (10:00 in the
 * business zone by default) is kept and marked late. A correction the same
 * day becomes the current version; the earlier ones are kept in
 * "previous", oldest first, and a late correction of an on-time filing
 * leaves the commitment on time. */
#ifndef YJT_COMMITMENT_H
#define YJT_COMMITMENT_H

#include "common/bizdate.h"
#include "common/errors.h"
#include "records/store.h"

#include <stdbool.h>
#include <stdint.h>

#define COMMITMENT_MAX_VERSIONS 20
#define COMMITMENT_STATEMENT_MAX 2000

extern const char *const commitment_special_ops[10];

int commitment_init(struct store *st);

/* Validates a filing against the enterprise's approved record (every
 * major hazard source must be reported) and returns the normalised
 * commitment fields, or NULL with *why (static). */
json_t *commitment_validate(const json_t *in, const json_t *enterprise, const char **why);

/* Files (or corrects) today's commitment of enterprise at now_ms;
 * deadline_min is the deadline in minutes after midnight. *out gets the
 * stored document. Errors: not_found (no enterprise), bad_request,
 * conflict (too many corrections), unavailable. */
enum err_code commitment_file(struct store *st, const char *enterprise, const char *actor,
                              const json_t *in, int64_t now_ms, int deadline_min, json_t **out,
                              const char **why);
/* The same where the store reads later (Redis): the enterprise's record
 * and today's commitment so far are read without waiting, and an
 * enterprise's filings are made one after another (each sees the one
 * before). cb(e, commitment (borrowed; NULL unless ERR_NONE), why, ud)
 * from the main loop; on other stores at once. in is copied. */
typedef void (*commitment_filed_cb)(enum err_code e, json_t *commitment, const char *why, void *ud);
void commitment_file_later(struct store *st, const char *enterprise, const char *actor,
                           const json_t *in, int64_t now_ms, int deadline_min,
                           commitment_filed_cb cb, void *ud);
/* The commitment of enterprise on date, or STORE_ENOTFOUND. */
int commitment_get(struct store *st, const char *enterprise, const char *date, json_t **out);

/* The day's view for regulators: every enterprise in division (a prefix)
 * that should file, who filed (current versions), who has not, and the
 * roll-up per division code of the enterprises and in total:
 * {"date","division","deadline","deadline_at","commitments":[…],
 *  "missing":[{"enterprise","name","division"}],
 *  "districts":[{"division","should_file","filed","late","missing",
 *                "by_grade":{"1","2","3","4"}}], "totals":{…}}.
 * When only is not NULL, just that enterprise is considered. */
int commitment_day(struct store *st, const char *date, const char *division, const char *only,
                   int deadline_min, json_t **out);

#endif
