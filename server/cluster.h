/* Presence across the nodes of a cluster, in Redis.
 *
 * Every node writes the devices it holds to PREFIX pr:USER (a hash: device
 * id -> "NODE\tPLATFORM\tSINCE") as they log in and out, and its heartbeat
 * to PREFIX nodes (a sorted set of node ids by the time of their last
 * beat, every cluster_beat_s seconds, 10 by default). A node whose beat is
 * older than cluster_dead_s (30) is dead: its devices no longer count (and are deleted
 * by whoever reads them), so the connections of a node killed with -9
 * disappear within that time. Changes are announced on the bus ("presence")
 * so that subscribers on every node hear of them, and a device that logs
 * in on one node closes its older connection held by another.
 *
 * Reads of other nodes' devices are cached per user (a call or a fan-out
 * asks about its users at once, and the next one about the same users): a
 * change announced on the bus drops the entry, and so does a node that
 * falls silent. While the bus is read without a break, nothing else can
 * make an entry stale, and it holds for up to CLUSTER_CACHE_MAX_MS (so
 * that a message lost some other way, say a stream trimmed under a long
 * outage, is not believed for longer); when the bus reading broke since
 * the entry was made, for CLUSTER_CACHE_MS. Main loop only. */
#ifndef YJT_CLUSTER_H
#define YJT_CLUSTER_H

#include <stdbool.h>

#define CLUSTER_CACHE_MS 1000
#define CLUSTER_CACHE_MAX_MS 30000

/* Starts presence in Redis for this node (bus_node()), beating every
 * beat_s seconds and taking nodes silent for dead_s as dead; the bus must
 * be running. 0, or -1 with *err. */
int cluster_start(const char *url, const char *prefix, int beat_s, int dead_s, char **err);
void cluster_stop(void);
/* Whether node has beaten lately (true for this node, and without a
 * cluster). */
bool cluster_node_alive(const char *node);

/* Whether node was alive at the last read of the beats (no Redis call;
 * true for this node, and without a cluster). */
bool cluster_node_live_cached(const char *node);
/* Whether this node is the first (smallest id) of the nodes alive at the
 * last read of the beats: the one that does what one node must do for
 * all, such as watching sensors no node is known to take (true without a
 * cluster). */
bool cluster_is_first(void);
/* How many users' devices on other nodes are remembered (stale entries
 * go at each beat). */
unsigned cluster_cached_users(void);

#endif
