/* Planned downtime (离线报备): an enterprise declares that some of its
 * sensors, or all of them (its whole gateway), will be offline, with a
 * reason, from when, and the planned restore time. Inside that window no
 * interruption alarm is raised for the sensors it covers; once the planned
 * restore time has passed, a sensor still silent raises its interruption
 * alarm at once, naming the declaration it overran. The enterprise may end
 * a declaration early (the sensors are back).
 *
 * Declarations are documents in "downtimes" (indexed by enterprise and
 * division) and the current and future ones are also kept in memory, so
 * the interruption scan never goes to the store. Main loop only. */
#ifndef YJT_DOWNTIME_H
#define YJT_DOWNTIME_H

#include "common/errors.h"
#include "records/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define DOWNTIME_REASON_MAX 500
#define DOWNTIME_SENSORS_MAX 500
#define DOWNTIME_SPAN_MAX_MS (30LL * 86400 * 1000) /* one declaration covers 30 days at most */
#define DOWNTIME_ACTIVE_MAX 10000                  /* declarations kept in memory */

int downtime_init(struct store *st, int64_t now_ms);
void downtime_shutdown(void);

/* Declares downtime for enterprise (in division): sensors is NULL (all of
 * its sensors) or an array of sensor ids (borrowed, already checked to be
 * the enterprise's), reason 1..500 bytes, from < until, until in the
 * future, at most 30 days apart. *out gets the stored record (new
 * reference). Returns ERR_BAD_REQUEST (with *why), ERR_BUSY (too many
 * current declarations) or ERR_UNAVAILABLE. */
enum err_code downtime_declare(const char *enterprise, const char *division, json_t *sensors,
                               const char *reason, int64_t from, int64_t until, const char *actor,
                               int64_t now_ms, json_t **out, const char **why);
/* Ends a current declaration now (the sensors are back). ERR_NOT_FOUND if
 * it is not current; *out gets the record. */
enum err_code downtime_end(const char *id, const char *actor, int64_t now_ms, json_t **out,
                           const char **why);
/* The stored record, or STORE_ENOTFOUND. */
int downtime_get(const char *id, json_t **out);

/* The id of a declaration covering sensor (of enterprise) at now, or NULL. */
const char *downtime_covering(const char *enterprise, const char *sensor, int64_t now_ms);
/* The id of a declaration covering sensor whose planned restore time fell
 * in (since, now] without being ended early: the silence overran it. */
const char *downtime_overrun(const char *enterprise, const char *sensor, int64_t since,
                             int64_t now_ms);

/* Calls cb for every stored declaration of enterprise (or, with enterprise
 * NULL, whose division starts with division). */
int downtime_each(const char *enterprise, const char *division, store_doc_cb cb, void *ud);

#endif
