/* Live feeds of plant state for the 3D real-scene clients.
 *
 * A subscriber (a connection, opaque here) follows one scope: an
 * enterprise, a chemical park, or a division (the regulator's overview).
 * It first gets a snapshot of the scope (every sensor's latest value and
 * state, every open alarm), sent in parts no larger than the connection
 * can take, then deltas that carry only what changed since the last one.
 *
 * Deltas are coalesced: a change marks the sensor or alarm dirty in each
 * subscription that covers it, and a subscription sends at most max_hz
 * deltas a second, each built from the current state at send time. A
 * subscriber whose connection has not drained its queue is skipped for a
 * turn, so it gets fewer, fuller deltas: never an unbounded queue and
 * never a stale value.
 *
 * Sensor changes come from records/sensor.h listeners; alarm changes
 * through feed_alarm_update(), which the server calls from the alarm
 * module's listener. Main loop only. */
#ifndef YJT_FEED_H
#define YJT_FEED_H

#include "common/errors.h"
#include "records/jurisdiction.h"
#include "records/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum feed_scope { FEED_ENTERPRISE, FEED_PARK, FEED_DIVISION };

struct feed_limits {
    double max_hz;           /* the highest max_hz a subscriber may ask for */
    double default_hz;       /* when it asks for none */
    int subs_per_conn;       /* subscriptions one connection may hold */
    int max_sensors;         /* a scope with more sensors is refused too_large */
    int part_items;          /* items (sensors, then alarms) per snapshot part */
    int delta_items;         /* sensors plus alarms per delta, at most */
    size_t slow_queue_bytes; /* a connection with more queued is skipped; also
                                the size past which a message takes no more items */
};

/* The transport: send text (len bytes, copied) to conn; how many bytes
 * conn still has queued. */
struct feed_io {
    void (*send)(void *conn, const char *text, size_t len);
    size_t (*queued)(void *conn);
};

/* st is borrowed (enterprise look-ups at subscribe). */
void feed_init(struct store *st, const struct feed_limits *limits, const struct feed_io *io);
void feed_shutdown(void);

/* Subscribes conn to a scope for principal p (copied). Checks
 * jurisdiction and limits; on success *feed_id gets a new id (g_free) and
 * the snapshot starts on the next turn of the loop (after the reply).
 * Returns ERR_NONE or forbidden, not_found (no such enterprise), too_large
 * (scope over max_sensors), busy (subs_per_conn reached), bad_request,
 * with *why (static). */
enum err_code feed_subscribe(void *conn, const struct principal *p, enum feed_scope scope,
                             const char *value, double max_hz, char **feed_id, const char **why);
/* Ends one subscription of conn; ERR_NOT_FOUND if it has none by that id. */
enum err_code feed_unsubscribe(void *conn, const char *feed_id);
/* Ends every subscription of conn (it closed). */
void feed_drop_conn(void *conn);

/* An alarm was stored: its id, the sensor (may be NULL for a gateway-wide
 * alarm), where it is, its level ("red", "orange", "yellow", "blue"),
 * whether it is still open and whether it is an interruption, and its
 * JSON (borrowed; serialised once here). */
void feed_alarm_update(const char *alarm_id, const char *sensor, const char *enterprise,
                       const char *division, const char *park, const char *level, bool open,
                       bool interrupted, const json_t *alarm);

/* Counters for /metrics. */
struct feed_stats {
    unsigned subscriptions;
    uint64_t snapshots;
    uint64_t deltas;
    uint64_t skipped_slow;
};
void feed_get_stats(struct feed_stats *out);

#endif
