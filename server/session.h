/* Sessions: the auth.* messages on WebSocket, binding a connection to a
 * user and device, and keeping that binding honest afterwards: a newer
 * connection of the same device replaces the older (4409); a revoked
 * token, a disabled account or a password change (also by yjtctl in
 * another process) closes the user's connections (4403); an expired token
 * closes its connection (4401). */
#ifndef YJT_SESSION_H
#define YJT_SESSION_H

#include "server/conn.h"

#include <stdint.h>

void session_init(void);
/* Periodic check (main.c calls it every account_poll_ms): picks up account
 * changes made by any process and closes connections whose token expired. */
void session_poll(void);
/* Closes (4403) every connection of user_id that authenticated with the
 * token jti, except the connection with serial except (0 for none). */
void session_close_token(const char *user_id, const char *jti, uint64_t except);
/* With several nodes: a token revoked on one closes its connections on all. */
void session_bus_init(void);

#endif
