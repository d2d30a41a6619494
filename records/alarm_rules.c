/* The pure alarm rules (see alarm_rules.h): names, the level table,
 * threshold checks with the deadband, decisions and escalation times. */
#include "records/alarm_rules.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LEVELS                                                                             \
    "high_high@12=red,high_high=orange,low_low=orange,high=yellow,low=yellow,interrupted=blue"

static const char *const condition_names[] = {"high", "low", "interrupted"};
static const char *const grade_names[] = {"high", "high_high", "low", "low_low", "interrupted"};
static const char *const level_names[] = {"red", "orange", "yellow", "blue"};
static const char *const state_names[] = {"raised", "acknowledged", "handled", "closed"};

const char *alarm_condition_name(enum alarm_condition c)
{
    return c < ALARM_CONDITIONS ? condition_names[c] : "?";
}

const char *alarm_grade_name(enum alarm_grade g)
{
    return g < ALARM_GRADES ? grade_names[g] : "?";
}

const char *alarm_level_name(enum alarm_level l)
{
    return l < ALARM_LEVELS ? level_names[l] : "?";
}

const char *alarm_state_name(enum alarm_state s)
{
    return s < ALARM_STATES ? state_names[s] : "?";
}

static int find_name(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int alarm_condition_parse(const char *name)
{
    return find_name(condition_names, ALARM_CONDITIONS, name);
}

int alarm_grade_parse(const char *name)
{
    return find_name(grade_names, ALARM_GRADES, name);
}

int alarm_level_parse(const char *name)
{
    return find_name(level_names, ALARM_LEVELS, name);
}

int alarm_state_parse(const char *name)
{
    return find_name(state_names, ALARM_STATES, name);
}

enum alarm_condition alarm_condition_of_grade(enum alarm_grade g)
{
    switch (g) {
    case ALARM_GRADE_HIGH:
    case ALARM_GRADE_HIGH_HIGH:
        return ALARM_COND_HIGH;
    case ALARM_GRADE_LOW:
    case ALARM_GRADE_LOW_LOW:
        return ALARM_COND_LOW;
    default:
        return ALARM_COND_INTERRUPTED;
    }
}

/* ------------------------------------------------------------ levels */

static int parse_rules(const char *text, struct alarm_level_table *out, char **err)
{
    out->n = 0;
    gchar **items = g_strsplit(text, ",", -1);
    int rc = 0;
    for (gchar **it = items; *it && rc == 0; it++) {
        g_strstrip(*it);
        if (!**it)
            continue;
        char *eq = strchr(*it, '=');
        char *at = strchr(*it, '@');
        if (!eq || (at && at > eq) || out->n == ALARM_LEVEL_RULES_MAX) {
            rc = -1;
            break;
        }
        *eq = '\0';
        if (at)
            *at = '\0';
        int g = alarm_grade_parse(g_strstrip(*it));
        int l = alarm_level_parse(g_strstrip(eq + 1));
        unsigned mask = 0;
        for (const char *h = at ? at + 1 : ""; *h; h++) {
            if (*h < '0' || *h > '4') {
                rc = -1;
                break;
            }
            mask |= 1u << (*h - '0');
        }
        if (g < 0 || l < 0 || (at && !mask))
            rc = -1;
        else if (rc == 0)
            out->rule[out->n++] =
                (struct alarm_level_rule){(enum alarm_grade)g, mask, (enum alarm_level)l};
    }
    g_strfreev(items);
    if (rc < 0 && err)
        *err = g_strdup_printf("alarm_levels must be up to %d rules GRADE[@LEVELS]=COLOUR "
                               "(grades high_high, high, low, low_low, interrupted; hazard levels "
                               "0-4; colours red, orange, yellow, blue), got '%s'",
                               ALARM_LEVEL_RULES_MAX, text);
    return rc;
}

int alarm_levels_parse(const char *text, struct alarm_level_table *out, char **err)
{
    return parse_rules(text && *text ? text : DEFAULT_LEVELS, out, err);
}

static bool rule_level(const struct alarm_level_table *t, enum alarm_grade g, int hazard_level,
                       enum alarm_level *out)
{
    unsigned bit = hazard_level >= 0 && hazard_level <= 4 ? 1u << hazard_level : 0;
    for (int i = 0; i < t->n; i++) {
        const struct alarm_level_rule *r = &t->rule[i];
        if (r->grade == g && (!r->hazard_mask || (r->hazard_mask & bit))) {
            *out = r->level;
            return true;
        }
    }
    return false;
}

enum alarm_level alarm_level_of(const struct alarm_level_table *t, enum alarm_grade g,
                                int hazard_level)
{
    enum alarm_level l;
    if (t && rule_level(t, g, hazard_level, &l))
        return l;
    struct alarm_level_table def;
    parse_rules(DEFAULT_LEVELS, &def, NULL);
    return rule_level(&def, g, hazard_level, &l) ? l : ALARM_BLUE;
}

/* ------------------------------------------------------------ escalation */

int alarm_escalation_parse(struct alarm_escalation *e, enum alarm_level level, const char *text,
                           char **err)
{
    gchar **parts = g_strsplit(text ? text : "", ",", -1);
    int rc = g_strv_length(parts) == ALARM_STEPS ? 0 : -1;
    int64_t prev = 0;
    for (int i = 0; rc == 0 && i < ALARM_STEPS; i++) {
        char *end;
        g_strstrip(parts[i]);
        long m = strtol(parts[i], &end, 10);
        if (!parts[i][0] || *end || m < 1 || m > 10080 || m * 60000 <= prev)
            rc = -1;
        else
            e->after_ms[level][i] = prev = (int64_t)m * 60000;
    }
    g_strfreev(parts);
    if (rc < 0 && err)
        *err = g_strdup_printf("alarm_escalation_%s must be T1,T2,T3 in minutes, rising, each "
                               "1-10080, got '%s'",
                               alarm_level_name(level), text ? text : "");
    return rc;
}

int64_t alarm_escalation_next(const struct alarm_escalation *e, enum alarm_level level,
                              enum alarm_state state, int step_done, int64_t raised_at,
                              int *step_out)
{
    if (state >= ALARM_HANDLED || level >= ALARM_LEVELS)
        return 0;
    for (int step = step_done + 1; step <= ALARM_STEPS; step++) {
        if (step == 1 && state != ALARM_RAISED)
            continue; /* acknowledged in time: the district is not called */
        *step_out = step;
        return raised_at + e->after_ms[level][step - 1];
    }
    return 0;
}

/* ------------------------------------------------------------ readings */

static bool has(const struct sensor *s, enum sensor_threshold t)
{
    return (s->threshold_set & (1u << t)) != 0;
}

void alarm_reading_check(const struct sensor *s, enum alarm_condition side, double v,
                         struct alarm_reading *r)
{
    memset(r, 0, sizeof(*r));
    double db = s->deadband > 0 ? s->deadband : 0;
    if (side == ALARM_COND_HIGH) {
        bool h = has(s, SENSOR_HIGH), hh = has(s, SENSOR_HIGH_HIGH);
        r->applies = h || hh;
        if (!r->applies)
            return;
        if (hh && v > s->threshold[SENSOR_HIGH_HIGH]) {
            r->outside = true;
            r->grade = ALARM_GRADE_HIGH_HIGH;
            r->threshold = s->threshold[SENSOR_HIGH_HIGH];
        } else if (h && v > s->threshold[SENSOR_HIGH]) {
            r->outside = true;
            r->grade = ALARM_GRADE_HIGH;
            r->threshold = s->threshold[SENSOR_HIGH];
        }
        double lowest = h ? s->threshold[SENSOR_HIGH] : s->threshold[SENSOR_HIGH_HIGH];
        r->cleared = v <= lowest - db;
    } else if (side == ALARM_COND_LOW) {
        bool l = has(s, SENSOR_LOW), ll = has(s, SENSOR_LOW_LOW);
        r->applies = l || ll;
        if (!r->applies)
            return;
        if (ll && v < s->threshold[SENSOR_LOW_LOW]) {
            r->outside = true;
            r->grade = ALARM_GRADE_LOW_LOW;
            r->threshold = s->threshold[SENSOR_LOW_LOW];
        } else if (l && v < s->threshold[SENSOR_LOW]) {
            r->outside = true;
            r->grade = ALARM_GRADE_LOW;
            r->threshold = s->threshold[SENSOR_LOW];
        }
        double highest = l ? s->threshold[SENSOR_LOW] : s->threshold[SENSOR_LOW_LOW];
        r->cleared = v >= highest + db;
    }
}

bool alarm_grade_worse(enum alarm_grade a, enum alarm_grade b)
{
    return (a == ALARM_GRADE_HIGH_HIGH && b == ALARM_GRADE_HIGH) ||
           (a == ALARM_GRADE_LOW_LOW && b == ALARM_GRADE_LOW);
}

enum alarm_action alarm_decide(const struct alarm_reading *r, bool open, enum alarm_grade grade,
                               bool cleared)
{
    if (!r->applies)
        return open && !cleared ? ALARM_ACT_CLEAR : ALARM_ACT_NONE; /* thresholds removed */
    if (r->outside) {
        if (!open)
            return ALARM_ACT_RAISE;
        if (alarm_grade_worse(r->grade, grade))
            return ALARM_ACT_UPGRADE;
        return cleared ? ALARM_ACT_ACTIVE : ALARM_ACT_NONE;
    }
    if (open && !cleared && r->cleared)
        return ALARM_ACT_CLEAR;
    return ALARM_ACT_NONE; /* inside the deadband: no change either way */
}
