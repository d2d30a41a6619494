/* The bus between the nodes of a cluster: what one node must tell the
 * others, such as "push 42 of user U is stored: send it to U's devices
 * you hold".
 *
 * It is a Redis stream (PREFIX bus), read by every node with a blocking
 * XREAD on a connection of its own and written with XADD on another, both
 * driven by the main loop (hiredis's asynchronous API). A stream rather
 * than pub/sub so that a node whose connection drops for a moment reads on
 * from the last entry it saw instead of missing what was sent meanwhile;
 * the stream keeps about BUS_KEEP entries. Messages published while the
 * writing connection is down wait in a bounded queue (BUS_QUEUE_MAX) and
 * go out when it is back; beyond that bound they are dropped and counted
 * (what they announce is durable in the store: devices read it when they
 * resume).
 *
 * Without a Redis address (a single node) the bus is off: bus_publish()
 * does nothing and nothing arrives. Main loop only. */
#ifndef YJT_BUS_H
#define YJT_BUS_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_KEEP 100000
#define BUS_QUEUE_MAX 100000
#define BUS_TYPE_MAX 32

/* Called for each message of its type from another node (node: its id):
 * user (may be empty) and data (len bytes, NUL-terminated). */
typedef void (*bus_handler)(const char *node, const char *user, const char *data, size_t len,
                            void *ud);

/* Starts the bus on the Redis server at url, keys under prefix. 0, or -1
 * with *err (g_free) when the address is malformed; an unreachable server
 * is retried in the background. */
int bus_start(const char *url, const char *prefix, char **err);
void bus_stop(void);
bool bus_enabled(void);
/* This node's id (random, new at every start): "" when the bus is off. */
const char *bus_node(void);
/* Registers the handler of a message type (at most 16 types). */
void bus_on(const char *type, bus_handler fn, void *ud);
/* Sends a message to every other node. */
void bus_publish(const char *type, const char *user, const char *data, size_t len);
/* Sends a message to one node (the others pass it over). */
void bus_send_to(const char *node, const char *type, const char *user, const char *data,
                 size_t len);

/* Messages of one type gathered over a turn of the loop and published as
 * one (many pushes or readings per turn), or at once past `cut` bytes. */
struct bus_batch {
    const char *type;
    size_t cut;
    GString *buf;
    guint source;
};
/* The buffer to append one item to; then call bus_batch_added(). */
GString *bus_batch_buf(struct bus_batch *b);
void bus_batch_added(struct bus_batch *b);
/* Drops what is gathered and the pending publication (shutdown). */
void bus_batch_clear(struct bus_batch *b);

/* While the reading connection stays up, every message sent to this node
 * reaches it, in order: nothing announced on the bus is missed. Returns a
 * number that stays the same as long as that holds (a new one each time
 * the connection comes back), or 0 while it is down. */
uint64_t bus_in_step(void);

struct bus_stats {
    uint64_t published, received, dropped, reconnects;
    bool reading, writing; /* both connections up */
};
void bus_get_stats(struct bus_stats *out);

#endif
