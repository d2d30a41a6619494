/* Server metrics in the Prometheus text format (GET /metrics): connections
 * by role, WebSocket messages in and out by type, errors by code, logins by
 * result, HTTP requests by status, and the store's latency histogram.
 * Label values come only from fixed sets, so cardinality is bounded.
 * Main loop only. */
#ifndef YJT_METRICS_H
#define YJT_METRICS_H

#include "common/errors.h"
#include "records/store.h"

void metrics_init(void);
void metrics_shutdown(void);
/* role is gov, corp, trs, admin or none (not yet authenticated). */
void metrics_conn(const char *role, int delta);
void metrics_msg_in(const char *type);
void metrics_msg_out(const char *type);
/* One socket write of WebSocket messages, carrying that many of them. */
void metrics_ws_write(int messages);
/* A flush whose writes the send pool made (writes of them). */
void metrics_ws_pool(size_t writes);
/* A push to many users, sent early (while being queued) or not (part of
 * a burst, with the next flush). */
void metrics_fanout(bool early);
void metrics_error(enum err_code code);
/* result is ok, failed, locked or throttled. */
void metrics_login(const char *result);
void metrics_http(int status);
/* Renders every metric; the caller frees with g_free(). */
char *metrics_render(const struct store *st);

#endif
