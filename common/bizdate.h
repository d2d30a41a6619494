/* Business dates: the calendar day (YYYY-MM-DD) in the configured business
 * time zone (Asia/Shanghai by default) that a UTC instant falls on, and the
 * UTC span of such a day. Daily duties (patrols, commitments) are counted
 * per business date. */
#ifndef YJT_BIZDATE_H
#define YJT_BIZDATE_H

#include <stdbool.h>
#include <stdint.h>

#define BIZDATE_LEN 11 /* "YYYY-MM-DD" and its NUL */

/* Sets the business time zone (an IANA identifier); false if unknown. */
bool bizdate_set_zone(const char *tz);
void bizdate_shutdown(void);
/* Writes the business date of UTC instant ms into out. */
void bizdate_of(int64_t ms, char out[BIZDATE_LEN]);
/* Parses "YYYY-MM-DD" (a real calendar date) and gives the UTC ms span
 * [*start, *end) of that business day. False for a malformed date. */
bool bizdate_span(const char *date, int64_t *start, int64_t *end);

/* The UTC ms of minute (0..1439 after midnight) of business day date, in
 * the business zone. False for a malformed date or minute. */
bool bizdate_at(const char *date, int minute, int64_t *ms);
/* Parses "HH:MM" (00:00..23:59) into minutes after midnight, or -1. */
int bizdate_minute_parse(const char *hhmm);

#endif
