/* Who is in an answered call, across the nodes of a cluster.
 *
 * A callee already in an answered call is `busy` whichever node holds that
 * call. Each node announces on the bus ("call.busy") the users who enter
 * or leave their last answered call there, and keeps the set of users
 * other nodes announced, by node; a node that is no longer alive
 * (cluster.h) stops counting. A node that starts asks the others for
 * their busy users ("call.busy?") so that it knows the calls already up.
 *
 * Main loop only; does nothing without the bus. */
#ifndef YJT_CALL_BUSY_H
#define YJT_CALL_BUSY_H

#include "signaling/call.h"

/* Fills the busy hooks of h and starts listening (before call_init). */
void call_busy_init(struct call_hooks *h);
/* The other live nodes where user_id is in an answered call. */
unsigned call_busy_nodes(const char *user_id);
/* Asks the other nodes for their busy users (after call_init). */
void call_busy_ask(void);
void call_busy_shutdown(void);

#endif
