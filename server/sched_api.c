/* The clock switch for tests: POST /api/v1/test/clock moves the server's
 * wall clock (common/clock.h: filings, their lateness, call and push
 * times) and with it the reminders scheduler's clock (push/reminders.c), then
 * runs a full interruption scan and the due alarm escalations. It exists only when the
 * server was started with the test_clock key (off by default, never set in
 * production): otherwise the route answers 404 like any unknown one. */
#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/reminders.h"
#include "server/alarm_api.h"
#include "server/rest.h"
#include "server/server.h"

#include <string.h>

static void on_ticked(void *ud)
{
    rest_held_reply(GPOINTER_TO_SIZE(ud), 200,
                    json_pack("{s:I}", "now", (json_int_t)reminders_now_ms()));
}

/* The reminders due are over: then interruptions and escalations at the
 * new time, answered once taken. */
static void on_reminded(void *ud)
{
    alarm_api_tick_then(true, on_ticked, ud);
}

/* POST /api/v1/test/clock {"now": "2026-11-30T08:29:00+08:00"} (admin). */
static void route_clock(struct rest_req *r)
{
    if (!server.cfg.test_clock[0]) {
        rest_error(r, ERR_NOT_FOUND, "no such route");
        return;
    }
    if (strcmp(r->acct->role, "admin") != 0) {
        rest_error(r, ERR_FORBIDDEN, "operators only");
        return;
    }
    const char *now = r->body ? jx_str_bounded(r->body, "now", 64) : NULL;
    GDateTime *t = now ? g_date_time_new_from_iso8601(now, NULL) : NULL;
    if (!t) {
        rest_error(r, ERR_BAD_REQUEST, "now must be an ISO 8601 time with offset");
        return;
    }
    int64_t to = g_date_time_to_unix(t) * 1000;
    clock_set_offset_ms(0);
    clock_set_offset_ms(to - clock_now_ms());
    reminders_set_now_ms(to);
    g_date_time_unref(t);
    reminders_tick_then(on_reminded, GSIZE_TO_POINTER(rest_hold(r)));
}

const struct rest_route sched_routes[] = {
    {REST_POST, "/api/v1/test/clock", route_clock, true, false},
    {0},
};
