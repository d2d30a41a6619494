/* Presence: which users are online, on which devices, and who wants to know.
 *
 * The registry maps a user id to its live connections (one per device) and
 * to the connections subscribed to that user's presence. Connections are
 * opaque pointers owned by the server layer; this module never sends
 * anything itself: on every change it calls the notify callback once, with
 * subscriber, and the server builds and sends the event. Single-threaded:
 * main loop only. */
#ifndef YJT_PRESENCE_H
#define YJT_PRESENCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Called once per change of user_id with every subscriber (n of them). */
typedef void (*presence_notify_cb)(const char *user_id, void *const *subscribers, unsigned n,
                                   void *ud);

/* With several nodes, the devices on the others: told of every local
 * change, and asked for the devices of a user held elsewhere (an array
 * of the same objects as presence_devices(), new reference). */
struct presence_cluster {
    void (*up)(const char *user_id, const char *device_id, const char *platform, int64_t since);
    void (*down)(const char *user_id, const char *device_id);
    json_t *(*remote_devices)(const char *user_id);
    /* Optional: the same from memory, NULL if they are not known there. */
    json_t *(*cached_devices)(const char *user_id);
    /* Optional: reads the devices of the n users sent without waiting; its answer is kept
     * when it comes, if still good, then done(ud) is told, from the loop.
     * False if nothing was sent (done is not told). */
    bool (*prefetch_later)(const char *const *user_ids, int n, void (*done)(void *ud), void *ud);
};

void presence_init(presence_notify_cb cb, void *ud);
/* Makes presence cluster-wide (pc is borrowed; NULL: this node only). */
void presence_set_cluster(const struct presence_cluster *pc);
/* Another node changed user_id's devices: notifies its subscribers here. */
void presence_changed_elsewhere(const char *user_id);
void presence_shutdown(void);
/* Reads the devices other nodes hold of the n users without waiting, for
 * users about to be asked about soon (an invite's, a push's): done(ud)
 * is told from the loop once the answer is in, and they are not read
 * again then. False if there was nothing to read (all known, or no
 * cluster): done is not told. */
bool presence_prefetch_later(const char *const *user_ids, int n, void (*done)(void *ud), void *ud);

/* Registers conn as the device device_id of user_id and notifies the
 * user's subscribers. Returns the connection that held the same device
 * before (the caller closes it as replaced), or NULL. */
void *presence_add(const char *user_id, void *conn, const char *device_id, const char *platform,
                   int64_t since_ms);
/* Unregisters conn as device_id of user_id (if it still is) and notifies
 * the subscribers. */
void presence_remove(const char *user_id, void *conn, const char *device_id);
/* Online anywhere (with a cluster: on this node or a live other one). */
bool presence_online(const char *user_id);
/* The same from memory alone: 1 online, 0 not, -1 not known here (its
 * devices on other nodes would have to be read). */
int presence_online_known(const char *user_id);
/* A new array of {"device_id","platform","since"} for the user's devices,
 * on every node. */
json_t *presence_devices(const char *user_id);
/* The live connection of device_id of user_id, or NULL. */
void *presence_conn_of(const char *user_id, const char *device_id);
/* When the device's connection here logged in (ms, as given to
 * presence_add), or -1 if it has none here. */
int64_t presence_since_of(const char *user_id, const char *device_id);
/* Calls fn for each live connection of user_id. */
void presence_each_conn(const char *user_id, void (*fn)(void *conn, void *ud), void *ud);

/* Subscribes subscriber to user_id's changes; returns the number of users
 * the subscriber now follows. */
unsigned presence_subscribe(void *subscriber, const char *user_id);
void presence_unsubscribe_all(void *subscriber);

#endif
