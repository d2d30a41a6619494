/* Alarms on sensors: threshold crossings and interruptions, their level,
 * their lifecycle, and the one in-memory table of open alarms.
 *
 * An alarm belongs to one sensor and one condition. The condition is the
 * side of the sensor's range that was left: "high" (the high and high-high
 * thresholds), "low" (low and low-low), or "interrupted" (no reading for
 * the sensor's interrupt_after_ms). The grade is the worst crossing seen
 * while the alarm is open (high < high_high, low < low_low); a worse
 * reading upgrades the open alarm of that side, it never opens a second.
 * The level (red, orange, yellow, blue: 一级 to 四级) comes from the level
 * table over the grade and the hazard source's level (alarm_rules.h).
 *
 * Lifecycle: raised → acknowledged (签收) → handled (处置反馈: what was
 * found, what was done) → closed. Back inside the deadband, the alarm is
 * marked cleared (recorded, still open); a new crossing while it is open
 * only marks it active again. After an alarm is closed, the next reading
 * outside raises a new one. At most one open alarm per sensor+condition.
 *
 * Every change is written to the store ("alarms" collection, indexed by
 * sensor, enterprise, division, state, level and month) first; then the
 * listeners registered with alarm_on_changed() hear of it (the pushes and
 * escalation in push/alarm_push.c, the 3D feeds), all in the same store
 * batch. Evaluation runs as a sensor_on_reading listener. Main loop only. */
#ifndef YJT_ALARM_H
#define YJT_ALARM_H

#include "common/errors.h"
#include "records/alarm_rules.h"
#include "records/sensor.h"
#include "records/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define ALARM_TEXT_MAX 2000 /* feedback and close notes, bytes */

struct alarm {
    char *id;
    char *sensor;
    char *enterprise;
    char *division;
    char *park;   /* or NULL */
    char *hazard; /* hazard source id, or NULL */
    char *unit;   /* or NULL */
    enum alarm_condition condition;
    enum alarm_grade grade; /* the worst crossing while open */
    enum alarm_level level;
    enum alarm_state state;
    double value;     /* the reading that raised or last upgraded it */
    bool has_value;   /* false for an interruption of a sensor that never reported */
    double threshold; /* the threshold that value crossed (0 for interruptions) */
    bool cleared;     /* back inside the deadband (or reporting again) */
    int64_t raised_at, upgraded_at, cleared_at, acked_at, handled_at, closed_at;
    char *acked_by, *handled_by, *closed_by; /* user ids, or NULL */
    char *found, *done, *close_note;         /* feedback texts, or NULL */
    char *downtime;      /* the declaration whose planned restore was overrun, or NULL */
    int escalation_step; /* 0 plant, 1 district, 2 city, 3 province */
    int64_t escalate_at; /* the next escalation deadline (stored), 0 for none */
    int64_t eval_rev;    /* counts the changes readings made (raise, upgrade, clear, ...) */
    int escalate_step;   /* the step escalate_at is for */
    json_t *escalations; /* [{step, division, at, users:[…]}] */
    const char *event;   /* the last change: raised, upgraded, cleared, active,
                            acknowledged, handled, closed, escalated */
};

struct alarm_config {
    struct alarm_level_table levels;
    struct alarm_escalation escalation; /* T1, T2, T3 per level */
};

typedef void (*alarm_changed_fn)(const struct alarm *a, void *ud);

/* Loads the open alarms from the store and starts evaluating readings
 * (registers with sensor_on_reading). cfg is copied. */
int alarm_init(struct store *st, const struct alarm_config *cfg);
void alarm_shutdown(void);

/* Called after each stored change: raised, upgraded, cleared, active,
 * acknowledged, handled, closed, escalated (a->event says which). At most
 * a few listeners. */
void alarm_on_changed(alarm_changed_fn fn, void *ud);
/* An alarm another node stored (its record, as alarm_to_json gives it):
 * this node's copy of the open alarms follows it (an open one is added or
 * replaced, a closed one dropped), calling no listener. What people did
 * here that the record lacks is kept, and so are later changes readings
 * made (eval_rev); a copy that had anything the record lacked is written
 * back. Returns the copy held now, or NULL (closed, or a record it cannot
 * read). */
const struct alarm *alarm_apply_remote(json_t *doc);
/* Other servers change the same alarms (a cluster): a change this server
 * stores first reads the stored record and keeps what people did there
 * that its copy lacks, and a record another server announces keeps what
 * people did here that it lacks. Off by default. */
void alarm_set_shared(bool on);
/* Visits the open (not closed) alarms in memory; cb returns false to stop. */
void alarm_foreach_open(bool (*cb)(const struct alarm *a, void *ud), void *ud);
unsigned alarm_open_count(void);
/* The open alarm with this id, or NULL. */
const struct alarm *alarm_open_get(const char *id);

/* The alarm as JSON (docs/protocol.md "Alarm record"). New reference. */
json_t *alarm_to_json(const struct alarm *a);
/* The stored alarm (open or not) as JSON in *out, or STORE_ENOTFOUND. */
int alarm_load_json(const char *id, json_t **out);
/* The same without waiting (store_docs_get_later). */
int alarm_load_later(const char *id, store_docs_cb cb, void *ud);

/* Evaluates s's latest reading at now_ms (the sensor_on_reading listener
 * calls this). Returns 0 or a store error. */
int alarm_evaluate(const struct sensor *s, int64_t now_ms);
/* Raises (or keeps) the interruption alarm of s; downtime names the
 * overrun declaration, if any. Returns 0 or a store error. */
int alarm_interrupted(const struct sensor *s, const char *downtime, int64_t now_ms);

/* What a person does to an open alarm (by actor, a user id): acknowledge
 * it (签收), or, for a regulator to whom it was escalated, acknowledge
 * receiving it at that level (recorded in the step's "receipts"
 * [{user, at}]; the plant's lifecycle is unchanged); feed back what was
 * found and done (处置反馈); close it (a handled alarm only). */
enum alarm_deed_kind { ALARM_DEED_ACK, ALARM_DEED_RECEIPT, ALARM_DEED_FEEDBACK, ALARM_DEED_CLOSE };
struct alarm_deed {
    enum alarm_deed_kind kind;
    const char *actor;
    const char *found, *done; /* feedback */
    const char *note;         /* close, may be NULL */
    int64_t now_ms;
};
/* cb(e, why, alarm, ud): ERR_NONE with the record after the change
 * (borrowed for the call), or ERR_NOT_FOUND (no such open alarm),
 * ERR_CONFLICT (wrong state, or a receipt given already: why says which),
 * ERR_FORBIDDEN (a receipt of an alarm not escalated to actor),
 * ERR_BAD_REQUEST (texts) or ERR_UNAVAILABLE. Where other servers change
 * the alarm too and the store's reads travel, its stored record is read
 * without waiting and merged before the deed is judged, so cb comes from
 * the main loop later; else at once. The change is stored (before the
 * listeners hear of it) when cb hears of it. */
typedef void (*alarm_act_cb)(enum err_code e, const char *why, json_t *alarm, void *ud);
void alarm_act(const char *id, const struct alarm_deed *d, alarm_act_cb cb, void *ud);
/* Records escalation step (1..3) of an open alarm to division's users
 * (an array of ids, borrowed) and stores the next deadline. Where other
 * servers change the alarm too, its stored record is read and merged
 * first (waiting), unless merged: alarm_read_ahead() merged it already. */
int alarm_escalate(const char *id, int step, const char *division, json_t *users, int64_t now_ms,
                   bool merged, const struct alarm **out);
/* Where other servers change the alarms too and the store's reads travel:
 * reads the stored records of the n open alarms ids without waiting,
 * merges each into memory as a save would, then calls cb (rc: the read's
 * code; on a failure nothing is merged) from the main loop; returns
 * false, calling nothing, if the read is not needed or was not sent. */
bool alarm_read_ahead(const char *const *ids, int n, void (*cb)(int rc, void *ud), void *ud);

/* The interruption scan (alarm_scan.c): visits up to budget sensors
 * (all of them when budget <= 0), resuming where the last call stopped,
 * and raises the interruption alarm of each enabled sensor with an
 * interrupt_after_ms that has been silent longer than that, unless a
 * planned downtime covers it. A sensor that never reported counts from
 * when it was configured (or, if it was loaded at start, the start).
 * A bounded call stops early after raising ALARM_SCAN_RAISES_MAX alarms.
 * Returns the number of sensors visited. */
int alarm_scan(int64_t now_ms, int budget);
/* Which sensors' alarms this node looks after: watches for interruption
 * and escalates (all, by default, and when mine is NULL). In a cluster,
 * the node that takes a sensor's readings, and one node for those nobody
 * is known to take. sensor may be NULL (an alarm of no one sensor). */
void alarm_set_owner_filter(bool (*mine)(const char *sensor, void *ud), void *ud);
bool alarm_sensor_is_mine(const char *sensor);
/* Interruption alarms one bounded scan call raises at most. */
#define ALARM_SCAN_RAISES_MAX 200
/* Starts watching sensor records (alarm_init calls it). */
void alarm_scan_init(void);
void alarm_scan_shutdown(void);

/* Counters for /metrics. */
struct alarm_counters {
    uint64_t raised[ALARM_LEVELS]; /* by level, since start */
    uint64_t upgraded;
    uint64_t escalations;
    uint64_t closed;
};
void alarm_counters(struct alarm_counters *out);

#endif
