/* The push messages on WebSocket and REST (push_api.c): push.ack,
 * push.resume, live push events, GET /api/v1/inbox, POST /api/v1/pushes. */
#ifndef YJT_PUSH_API_H
#define YJT_PUSH_API_H

#include "push/inbox.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The inbox deliver callback (registered by main.c): sends a stored push's
 * event to every live device of user_id that is not catching up. */
void push_api_deliver(const char *user_id, int64_t seq, const char *text, size_t len, void *ud);
/* The inbox's fan-out hook (inbox_on_fanout): starts the push's flush at
 * once and sends its deliveries from the send pool as they are queued. */
void push_api_fanout(enum inbox_fanout step, void *ud);
/* With several nodes: pushes stored elsewhere reach the devices here. */
void push_api_bus_init(void);
void push_api_bus_shutdown(void);
/* A device has logged in on this connection (struct conn*). */
void push_api_attach(void *conn);

#endif
