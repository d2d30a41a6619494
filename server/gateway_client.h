/* Outgoing HTTP(S) POSTs to the push gateway, on the server's lws context
 * (gateway_client.c). main.c hands gateway_client_post to push/gateway.c. */
#ifndef YJT_GATEWAY_CLIENT_H
#define YJT_GATEWAY_CLIENT_H

#include "push/gateway.h"

#include <libwebsockets.h>

#define GATEWAY_CLIENT_PROTOCOL "yjt-gateway-client"

void gateway_client_init(void);
/* Answers every request still open ("shutting down"); after the lws
 * context is destroyed. */
void gateway_client_shutdown(void);
/* The gateway_post_fn: POSTs body (JSON) to url, answers done later. */
void gateway_client_post(const char *url, const char *body, int timeout_ms, gateway_done_fn done,
                         void *ctx);
/* The lws protocol callback of the client connections. */
int gateway_client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len);

#endif
