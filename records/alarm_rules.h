/* The pure rules behind alarms, with no store and no clock: the names of
 * conditions, grades, levels and states; the level table; where a reading
 * stands against a sensor's thresholds and deadband; what that means for
 * the open alarm of its side; and when an open alarm escalates next.
 *
 * Level table. An ordered list of rules "GRADE[@HAZARD_LEVELS]=LEVEL",
 * comma-separated; the first rule whose grade matches and whose hazard
 * levels (digits 0..4, 0 for a sensor on no graded source) include the
 * sensor's wins. A grade no rule matches falls back to the default table:
 *
 *     high_high@12=red,high_high=orange,low_low=orange,high=yellow,
 *     low=yellow,interrupted=blue
 *
 * (high-high on a 一级/二级 source is red, other high-high and low-low
 * orange, high/low yellow, interruption blue).
 *
 * Escalation. Per level, T1, T2, T3 in minutes after the alarm was raised:
 * not acknowledged by T1 → step 1 (the district's duty regulators); not
 * handled by T2 → step 2 (the city's); not handled by T3 → step 3 (the
 * province's). Steps already taken are not repeated; an acknowledged alarm
 * skips step 1, a handled or closed one escalates no further. */
#ifndef YJT_ALARM_RULES_H
#define YJT_ALARM_RULES_H

#include "records/sensor.h"

#include <stdbool.h>
#include <stdint.h>

enum alarm_condition { ALARM_COND_HIGH, ALARM_COND_LOW, ALARM_COND_INTERRUPTED, ALARM_CONDITIONS };

enum alarm_grade {
    ALARM_GRADE_HIGH,
    ALARM_GRADE_HIGH_HIGH,
    ALARM_GRADE_LOW,
    ALARM_GRADE_LOW_LOW,
    ALARM_GRADE_INTERRUPTED,
    ALARM_GRADES
};

/* Worst first: red is 一级 (major risk), blue 四级 (low risk). */
enum alarm_level { ALARM_RED, ALARM_ORANGE, ALARM_YELLOW, ALARM_BLUE, ALARM_LEVELS };

enum alarm_state { ALARM_RAISED, ALARM_ACKNOWLEDGED, ALARM_HANDLED, ALARM_CLOSED, ALARM_STATES };

#define ALARM_LEVEL_RULES_MAX 32
#define ALARM_STEPS 3

const char *alarm_condition_name(enum alarm_condition c);
const char *alarm_grade_name(enum alarm_grade g);
const char *alarm_level_name(enum alarm_level l);
const char *alarm_state_name(enum alarm_state s);
/* The enum value of a name, or -1. */
int alarm_condition_parse(const char *name);
int alarm_grade_parse(const char *name);
int alarm_level_parse(const char *name);
int alarm_state_parse(const char *name);
enum alarm_condition alarm_condition_of_grade(enum alarm_grade g);

struct alarm_level_rule {
    enum alarm_grade grade;
    unsigned hazard_mask; /* bit h set: applies to hazard level h; 0: any */
    enum alarm_level level;
};

struct alarm_level_table {
    int n;
    struct alarm_level_rule rule[ALARM_LEVEL_RULES_MAX];
};

/* Parses a level table (see above). Returns 0, or -1 with *err set (free
 * with g_free). An empty text gives the default table. */
int alarm_levels_parse(const char *text, struct alarm_level_table *out, char **err);
enum alarm_level alarm_level_of(const struct alarm_level_table *t, enum alarm_grade g,
                                int hazard_level);

struct alarm_escalation {
    int64_t after_ms[ALARM_LEVELS][ALARM_STEPS]; /* T1, T2, T3 per level */
};

/* Parses "T1,T2,T3" (minutes, rising, each 1..10080) into level's row.
 * Returns 0, or -1 with *err set. */
int alarm_escalation_parse(struct alarm_escalation *e, enum alarm_level level, const char *text,
                           char **err);
/* The next escalation of an alarm of level in state, raised at raised_at,
 * whose steps up to step_done were taken: its due time, with *step_out
 * set; or 0 when it escalates no further. */
int64_t alarm_escalation_next(const struct alarm_escalation *e, enum alarm_level level,
                              enum alarm_state state, int step_done, int64_t raised_at,
                              int *step_out);

/* Where a value stands on one side (high or low) of a sensor. */
struct alarm_reading {
    bool applies;           /* the side has at least one threshold */
    bool outside;           /* past a threshold: an alarm condition */
    bool cleared;           /* back inside the deadband: the condition is over */
    enum alarm_grade grade; /* when outside */
    double threshold;       /* the threshold crossed (when outside) */
};

void alarm_reading_check(const struct sensor *s, enum alarm_condition side, double value,
                         struct alarm_reading *out);
/* True if grade a is worse than grade b (same side). */
bool alarm_grade_worse(enum alarm_grade a, enum alarm_grade b);

enum alarm_action {
    ALARM_ACT_NONE,    /* nothing changes */
    ALARM_ACT_RAISE,   /* no open alarm: raise one */
    ALARM_ACT_UPGRADE, /* the open alarm gets a worse grade */
    ALARM_ACT_CLEAR,   /* the open alarm's condition is over */
    ALARM_ACT_ACTIVE,  /* a cleared open alarm's condition is back */
};

/* What a reading r means for the side's open alarm: open says whether one
 * exists, with its grade and cleared flag. */
enum alarm_action alarm_decide(const struct alarm_reading *r, bool open, enum alarm_grade grade,
                               bool cleared);

#endif
