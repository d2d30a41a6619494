/* HTTP on the same port as WebSocket: GET /healthz, GET /metrics and the
 * REST routes under /api/v1/. Bodies are JSON, bounded by max_frame;
 * errors are the contract's {"error":{"code","message"}} with the matching
 * HTTP status. */
#ifndef YJT_HTTP_H
#define YJT_HTTP_H

#include <libwebsockets.h>

void http_init(void);
void http_shutdown(void);
/* Called when a store flush reports: responses that waited for it go out. */
void http_wake_flushed(void);
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);
/* Size of the per-connection state lws allocates for http_callback. */
size_t http_pss_size(void);

#endif
