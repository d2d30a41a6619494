/* The WebSocket endpoint /ws (subprotocol yjt.v1): frames in, envelope
 * checks, rate limiting, dispatch to the handler of each message type, and
 * the contract's close codes. Handlers live with their concern
 * (session.c, presence_api.c) and register through ws_handler tables. */
#ifndef YJT_WS_H
#define YJT_WS_H

#include "server/conn.h"

#include <libwebsockets.h>

struct ws_handler {
    const char *type;
    /* id is the request id (borrowed), msg the whole request (borrowed).
     * The handler sends exactly one reply, now or later. */
    void (*fn)(struct conn *c, json_t *id, json_t *msg);
    bool needs_auth;
    /* On a store whose reads travel (Redis), run against a replay of its
     * reads rather than waiting for them (records/store_replay.h): run,
     * thrown away and run again once the reads it lacked are in, while
     * the connection's next messages wait behind it. Only for a handler
     * that answers at once (no reply later), and that before its first
     * write does nothing a thrown run must not have done (its sends to
     * its own connection are dropped, its log lines hushed). */
    bool replay;
};

extern const struct ws_handler session_handlers[];
extern const struct ws_handler presence_handlers[];
extern const struct ws_handler call_handlers[];
extern const struct ws_handler commitment_handlers[];
extern const struct ws_handler push_handlers[];
extern const struct ws_handler notice_handlers[];
extern const struct ws_handler feed_handlers[];
extern const struct ws_handler reading_handlers[];
/* The messages of data gateways (auth.apikey connections): only they may
 * send these, and they may send nothing else. */
extern const struct ws_handler gateway_handlers[];
extern const struct ws_handler alarm_handlers[];

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len);
/* Closes every connection with 1001 (server shutting down). */
void ws_close_all(const char *reason);
size_t ws_pss_size(void);
/* Keep-alive sweep, every quarter ping interval: pings connections idle
 * for ping_interval_s, and drops those idle for 2.5 times that. */
void ws_keepalive(void);

#endif
