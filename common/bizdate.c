/* Business dates over GLib's time zone database (see bizdate.h). */
#include "common/bizdate.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

static GTimeZone *zone;

bool bizdate_set_zone(const char *tz)
{
    GTimeZone *z = g_time_zone_new_identifier(tz);
    if (!z)
        return false;
    if (zone)
        g_time_zone_unref(zone);
    zone = z;
    return true;
}

void bizdate_shutdown(void)
{
    if (zone)
        g_time_zone_unref(zone);
    zone = NULL;
}

static GTimeZone *current(void)
{
    if (!zone)
        bizdate_set_zone("Asia/Shanghai");
    if (!zone) /* no time zone database: UTC+8 fixed */
        zone = g_time_zone_new_offset(8 * 3600);
    return zone;
}

void bizdate_of(int64_t ms, char out[BIZDATE_LEN])
{
    GDateTime *utc = g_date_time_new_from_unix_utc(ms / 1000);
    GDateTime *local = utc ? g_date_time_to_timezone(utc, current()) : NULL;
    if (!local) {
        g_strlcpy(out, "1970-01-01", BIZDATE_LEN);
    } else {
        g_snprintf(out, BIZDATE_LEN, "%04d-%02d-%02d", g_date_time_get_year(local),
                   g_date_time_get_month(local), g_date_time_get_day_of_month(local));
    }
    if (local)
        g_date_time_unref(local);
    if (utc)
        g_date_time_unref(utc);
}

/* Parses a real calendar date "YYYY-MM-DD". */
static bool parse_date(const char *date, int *y, int *m, int *d)
{
    if (!date || strlen(date) != 10 || date[4] != '-' || date[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !g_ascii_isdigit(date[i]))
            return false;
    *y = atoi(date), *m = atoi(date + 5), *d = atoi(date + 8);
    return g_date_valid_dmy((GDateDay)*d, (GDateMonth)*m, (GDateYear)*y);
}

bool bizdate_span(const char *date, int64_t *start, int64_t *end)
{
    int y, m, d;
    if (!parse_date(date, &y, &m, &d))
        return false;
    GDateTime *a = g_date_time_new(current(), y, m, d, 0, 0, 0);
    if (!a)
        return false;
    GDateTime *b = g_date_time_add_days(a, 1);
    *start = g_date_time_to_unix(a) * 1000;
    *end = g_date_time_to_unix(b) * 1000;
    g_date_time_unref(a);
    g_date_time_unref(b);
    return true;
}

bool bizdate_at(const char *date, int minute, int64_t *ms)
{
    int y, m, d;
    if (minute < 0 || minute >= 24 * 60 || !parse_date(date, &y, &m, &d))
        return false;
    GDateTime *t = g_date_time_new(current(), y, m, d, minute / 60, minute % 60, 0);
    if (!t)
        return false;
    *ms = g_date_time_to_unix(t) * 1000;
    g_date_time_unref(t);
    return true;
}

int bizdate_minute_parse(const char *hhmm)
{
    if (!hhmm || strlen(hhmm) != 5 || hhmm[2] != ':' || !g_ascii_isdigit(hhmm[0]) ||
        !g_ascii_isdigit(hhmm[1]) || !g_ascii_isdigit(hhmm[3]) || !g_ascii_isdigit(hhmm[4]))
        return -1;
    int h = (hhmm[0] - '0') * 10 + hhmm[1] - '0', mi = (hhmm[3] - '0') * 10 + hhmm[4] - '0';
    return h < 24 && mi < 60 ? h * 60 + mi : -1;
}
