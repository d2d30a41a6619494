/* The calls of a node that died, on several nodes (see call_api.c for
 * where a call lives: "callnode:ID" names its node).
 *
 * A call's state is in its node's memory. When that node dies, another
 * takes the call over: it claims it (the record "call_takeovers/ID",
 * which only one node can create), reads its record and the offer kept
 * while it may ring, reads the devices of its people, and holds it from
 * then on (signaling's call_adopt). Each step is sent without waiting and
 * taken when its answer comes, so the node's loop never waits for Redis
 * while a dead node's calls move, which is when their clients reconnect.
 *
 * The first node alive also sweeps, every cluster_dead_s, the calls left
 * open in the store: those of dead nodes it takes over, and those that no
 * node holds for the grace period it ends as failed. Main loop only. */
#ifndef YJT_CALL_TAKEOVER_H
#define YJT_CALL_TAKEOVER_H

#include <stdint.h>

/* How a call's node is known (call_api.c): "callnode:ID" in the store,
 * remembered from the call's events; kept this long. */
#define CALLNODE_TTL_MS (24 * 3600 * 1000)
/* The node holding call_id, as remembered or read at once (NULL: none). */
const char *call_owner_of(const char *call_id);
/* Remembers node as call_id's (NULL: forgets it, to read it afresh). */
void call_owner_note(const char *call_id, const char *node);

enum take {
    TAKEN,           /* held here now */
    TAKEN_ELSEWHERE, /* another node claimed it first */
    GONE,            /* over, or cannot go on (why says which) */
    TAKE_FAILED,     /* the store could not be reached: not taken */
};
typedef void (*take_cb)(enum take t, const char *why, void *ud);

/* Takes call_id over from dead, a node found dead; done(t, why, ud) is
 * told once: later, from the loop, or at once, inside this call, if the
 * call is held here already (TAKEN), the server is stopping or the claim
 * cannot be sent (TAKE_FAILED). Takeovers of one call asked for meanwhile
 * share the first one's end, in the order asked. */
void call_take_over(const char *call_id, const char *dead, take_cb done, void *ud);
/* Whether a takeover of call_id is under way here. */
int call_takeover_under_way(const char *call_id);

/* Starts the sweep (with several nodes only). */
void call_takeover_init(int sweep_s, int64_t grace_ms);
void call_takeover_shutdown(void);

#endif
