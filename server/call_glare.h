/* Glare across the nodes of a cluster.
 *
 * Two users who invite each other through different nodes each ring the
 * other, and neither node sees both calls. So each node announces on the
 * bus ("call.ring") the calls it holds that start or stop ringing, with
 * their caller and callees, and keeps those of the other nodes. An invite
 * meets a call ringing elsewhere as it meets one ringing here (see
 * call_invite), and a node that hears of a call ringing elsewhere ends its
 * own call that loses to it: every node applies the same rule (the call
 * made by the smaller user id stays), so the two sides agree without
 * talking. Calls of a node that is no longer alive, or ringing for longer
 * than the ring timeout, are forgotten.
 *
 * Main loop only; does nothing without the bus. */
#ifndef YJT_CALL_GLARE_H
#define YJT_CALL_GLARE_H

#include "signaling/call.h"

/* Fills the glare hooks of h and starts listening (before call_init).
 * ring_timeout_ms: how long a call can ring. */
void call_glare_init(struct call_hooks *h, int ring_timeout_ms);
/* The calls user_id made that ring on other nodes. */
unsigned call_glare_ringing_by(const char *user_id);
void call_glare_shutdown(void);

#endif
