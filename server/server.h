/* The process-wide state of yjtd, in one place (Redis-style global): the
 * configuration, the store, the token key and the event loop. Set up by
 * main.c; everything else reads it. Main loop only. */
#ifndef YJT_SERVER_H
#define YJT_SERVER_H

#include "records/store.h"
#include "server/config.h"
#include "server/token.h"

#include <glib.h>
#include <stdbool.h>

struct lws_context;

struct server {
    struct config cfg;
    struct store *store;
    unsigned char token_key[TOKEN_KEY_LEN];
    GMainLoop *loop;
    struct lws_context *lws;
    bool stopping;
};

extern struct server server;

#endif
