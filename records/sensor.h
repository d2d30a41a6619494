/* Sensors on major hazard sources, and their readings.
 *
 * A sensor belongs to an enterprise and (optionally) one of its hazard
 * sources; it measures one kind of quantity (level, temperature, pressure,
 * flow, gas concentration, ...) in one unit, against up to four thresholds
 * (low-low, low, high, high-high), with a deadband for clearing and the
 * silence after which it counts as interrupted (数据中断).
 *
 * Every sensor lives in memory (a GLib hash table keyed by id, loaded at
 * start from the "sensors" collection) together with its latest reading,
 * so that ingestion, alarm evaluation and the 3D feeds never go to the
 * store to look one up. Readings are appended to the store's history in
 * batches before a batch is acknowledged.
 *
 * Upward news goes through listeners the upper layers register at start:
 * one call per accepted reading that became its sensor's latest (after the
 * batch is in the store), and one per sensor record put or deleted. Alarm
 * evaluation (records/alarm.c) and the feeds (push/feed.c) are such
 * listeners. */
#ifndef YJT_SENSOR_H
#define YJT_SENSOR_H

#include "common/errors.h"
#include "records/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Threshold slots, in the order of the "thresholds" object's fields. */
enum sensor_threshold {
    SENSOR_LOW_LOW = 0,
    SENSOR_LOW = 1,
    SENSOR_HIGH = 2,
    SENSOR_HIGH_HIGH = 3,
    SENSOR_THRESHOLDS = 4,
};

/* Every string belongs to the table (several are shared between sensors):
 * read them, never free or change them. */
struct sensor {
    char *id;
    char *enterprise; /* enterprise id */
    char *division;   /* the enterprise's division code, copied at load/put */
    char *park;       /* the enterprise's chemical park, or NULL */
    char *hazard;     /* hazard source id within the enterprise, or NULL */
    int hazard_level; /* 1..4 of that source (GB 18218), 0 if unknown/none */
    char *name;       /* optional display name, or NULL */
    char *kind;       /* level, temperature, pressure, flow, gas, ... */
    char *unit;
    double threshold[SENSOR_THRESHOLDS];
    unsigned threshold_set; /* bit (1u << slot) set when that slot is present */
    double deadband;        /* >= 0, in the sensor's unit */
    int64_t interrupt_after_ms;
    bool enabled;

    /* The latest accepted reading (in memory; restored from the store at
     * start). has_value is false until the first one. */
    bool has_value;
    double value;
    int64_t ts;      /* the reading's own time, UTC ms */
    int64_t seen_ms; /* server time it arrived, UTC ms (interruption clock) */

    /* Who takes its readings, in a cluster: this node (a reading was
     * accepted here since start), another node (remote_node, its bus id,
     * from that node's announcement), or neither known (both unset). */
    bool ingested_here;
    const char *remote_node;

    int64_t ts_key;  /* the integer naming its history in the store's time series */
    int64_t updated_ms; /* when its record was last put (updated_at), UTC ms */
    int64_t version; /* bumped by every put; a stored copy with another one is newer */
};

/* Called once per accepted reading that became s's latest, after the batch
 * holding it is written to the store (within the same store batch, so a
 * listener's own writes commit together with it). prev/had_prev are the
 * latest value before it. */
typedef void (*sensor_reading_fn)(const struct sensor *s, bool had_prev, double prev, void *ud);
/* Called after a sensor record was put (s is the new state) or deleted
 * (deleted true; s is still valid during the call, freed after). */
typedef void (*sensor_changed_fn)(const struct sensor *s, bool deleted, void *ud);
typedef bool (*sensor_cb)(const struct sensor *s, void *ud);

#define SENSOR_LISTENERS_MAX 8

/* Loads every sensor and its latest reading. st is borrowed. The load
 * calls no listener (listeners may register before or after it; those
 * that need the initial set walk it with sensor_foreach). */
int sensor_init(struct store *st);
void sensor_shutdown(void);

void sensor_on_reading(sensor_reading_fn fn, void *ud);
/* Called for a reading another node accepted (sensor_apply_remote) that
 * became the sensor's latest here: for what shows state (the feeds), not
 * for what acts on it (alarm evaluation runs on the node that took it). */
void sensor_on_remote_reading(sensor_reading_fn fn, void *ud);
void sensor_on_changed(sensor_changed_fn fn, void *ud);

/* The sensor with this id, or NULL. Valid until the next put/delete of it
 * (on the main loop: until control returns to the loop). */
const struct sensor *sensor_get(const char *id);
/* Visits every sensor, or those of one enterprise, of one park, or those
 * whose division starts with prefix; cb returns false to stop. */
void sensor_foreach(sensor_cb cb, void *ud);
void sensor_foreach_enterprise(const char *enterprise, sensor_cb cb, void *ud);
void sensor_foreach_park(const char *park, sensor_cb cb, void *ud);
void sensor_foreach_division(const char *prefix, sensor_cb cb, void *ud);
unsigned sensor_count(void);

/* Writes (creates or replaces) sensor id from in, the record fields of
 * docs/protocol.md: checks them (ordered thresholds, deadband >= 0,
 * interrupt_after_s in 1..SENSOR_INTERRUPT_MAX_S, an existing enterprise,
 * a hazard source of that enterprise), copies division, park and the
 * hazard level from the enterprise, keeps the history key of an existing
 * sensor, audits the write by actor, and (when the table is loaded)
 * updates the table and calls the changed listeners. Returns ERR_NONE with
 * *out (when given) the sensor's JSON, or bad_request / not_found /
 * unavailable with *why (static text). The caller checks who may write. */
#define SENSOR_INTERRUPT_MAX_S (7 * 86400)
#define SENSOR_ID_MAX 64
enum err_code sensor_put(struct store *st, const char *id, const json_t *in, const char *actor,
                         json_t **out, const char **why);
/* Deletes sensor id, its history and latest reading. */
enum err_code sensor_delete(struct store *st, const char *id, const char *actor, const char **why);
/* True if id may name a sensor: 1..SENSOR_ID_MAX of [A-Za-z0-9_.:-]. */
bool sensor_id_valid(const char *id);
/* A reading of sensor id that node (a bus id) accepted and stored: it
 * becomes the latest here too if it is newer than the one held (the value,
 * its time, and seen_ms, when that node took it), the sensor counts as
 * that node's, and the remote listeners are called. False if there is no
 * such sensor or the reading is not newer. */
bool sensor_apply_remote(const char *id, double value, int64_t ts, int64_t seen_ms,
                         const char *node);
/* Picks up sensors written by another process (yjtctl import, another
 * node) since the last call; main.c calls it every second. On a store
 * that reads later (Redis) the read is sent and applied when answered,
 * without holding the loop. */
void sensor_poll(void);
/* The same, read at once (waiting): reading_ingest() calls it when a
 * request names a sensor not known yet. */
void sensor_poll_now(void);
/* The same read without waiting, where the store reads later: done(ud)
 * once the changes are applied (or the read failed), from the loop.
 * False if nothing was sent (done is not told). */
bool sensor_poll_later(void (*done)(void *ud), void *ud);

/* The sensor as JSON (the record fields of docs/protocol.md plus "latest"
 * {value, ts} when it has one). New reference. */
json_t *sensor_to_json(const struct sensor *s);

#endif
