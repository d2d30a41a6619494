/* Alarm records and their lifecycle (see alarm.h): the table of open
 * alarms in memory (by id, and by sensor+condition so that a side never
 * has two), evaluation of each accepted reading, and the transitions, each
 * stored before the listeners hear of it. */
#include "records/alarm.h"

#include "common/bizdate.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/jsonx.h"
#include "common/log.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define COLL "alarms"
#define LISTENERS_MAX 8

static struct store *store;
static struct alarm_config cfg;
static GHashTable *open_by_id; /* id -> struct alarm* (owned) */
/* sensor id -> struct slots: its open alarm per condition (borrowed). A
 * reading of a sensor with no open alarm costs one look-up, no allocation. */
static GHashTable *open_by_sensor;

struct slots {
    struct alarm *a[ALARM_CONDITIONS];
};
static struct {
    alarm_changed_fn fn;
    void *ud;
} listeners[LISTENERS_MAX];
static int n_listeners;
static struct alarm_counters counters;

static const char *const index_fields[] = {"sensor", "enterprise", "division",
                                           "state",  "level",      "month"};

/* ------------------------------------------------------------ records */

static void alarm_free(gpointer p)
{
    struct alarm *a = p;
    if (!a)
        return;
    g_free(a->id);
    g_free(a->sensor);
    g_free(a->enterprise);
    g_free(a->division);
    g_free(a->park);
    g_free(a->hazard);
    g_free(a->unit);
    g_free(a->acked_by);
    g_free(a->handled_by);
    g_free(a->closed_by);
    g_free(a->found);
    g_free(a->done);
    g_free(a->close_note);
    g_free(a->downtime);
    json_decref(a->escalations);
    g_free(a);
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

static void set_time(json_t *o, const char *k, int64_t v)
{
    if (v)
        json_object_set_new(o, k, json_integer(v));
}

json_t *alarm_to_json(const struct alarm *a)
{
    char date[BIZDATE_LEN];
    bizdate_of(a->raised_at, date);
    date[7] = '\0';
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:i, s:s}", "id", a->id,
                  "sensor", a->sensor, "enterprise", a->enterprise, "division", a->division,
                  "condition", alarm_condition_name(a->condition), "grade",
                  alarm_grade_name(a->grade), "level", alarm_level_name(a->level), "state",
                  alarm_state_name(a->state), "cleared", a->cleared, "raised_at",
                  (json_int_t)a->raised_at, "escalation_step", a->escalation_step, "month", date);
    json_object_set_new(o, "escalations",
                        a->escalations ? json_deep_copy(a->escalations) : json_array());
    json_object_set_new(o, "eval_rev", json_integer(a->eval_rev));
    set_str(o, "park", a->park);
    set_str(o, "hazard", a->hazard);
    set_str(o, "unit", a->unit);
    if (a->has_value)
        json_object_set_new(o, "value", json_real(a->value));
    if (a->condition != ALARM_COND_INTERRUPTED)
        json_object_set_new(o, "threshold", json_real(a->threshold));
    set_time(o, "upgraded_at", a->upgraded_at);
    set_time(o, "cleared_at", a->cleared_at);
    set_time(o, "acked_at", a->acked_at);
    set_str(o, "acked_by", a->acked_by);
    set_time(o, "handled_at", a->handled_at);
    set_str(o, "handled_by", a->handled_by);
    if (a->found || a->done)
        json_object_set_new(o, "feedback",
                            json_pack("{s:s, s:s}", "found", a->found ? a->found : "", "done",
                                      a->done ? a->done : ""));
    set_time(o, "closed_at", a->closed_at);
    set_str(o, "closed_by", a->closed_by);
    set_str(o, "close_note", a->close_note);
    set_str(o, "downtime", a->downtime);
    set_time(o, "escalate_at", a->escalate_at);
    return o;
}

static char *dup_field(json_t *doc, const char *k)
{
    const char *v = jx_str(doc, k);
    return v ? g_strdup(v) : NULL;
}

/* The open alarm of a stored document, or NULL if it is malformed. */
static struct alarm *alarm_from_json(json_t *doc)
{
    int cond = alarm_condition_parse(jx_str(doc, "condition"));
    int grade = alarm_grade_parse(jx_str(doc, "grade"));
    int level = alarm_level_parse(jx_str(doc, "level"));
    int state = alarm_state_parse(jx_str(doc, "state"));
    if (!jx_str(doc, "id") || !jx_str(doc, "sensor") || !jx_str(doc, "enterprise") ||
        !jx_str(doc, "division") || cond < 0 || grade < 0 || level < 0 || state < 0)
        return NULL;
    struct alarm *a = g_new0(struct alarm, 1);
    a->id = dup_field(doc, "id");
    a->sensor = dup_field(doc, "sensor");
    a->enterprise = dup_field(doc, "enterprise");
    a->division = dup_field(doc, "division");
    a->park = dup_field(doc, "park");
    a->hazard = dup_field(doc, "hazard");
    a->unit = dup_field(doc, "unit");
    a->condition = cond;
    a->grade = grade;
    a->level = level;
    a->state = state;
    json_t *v = json_object_get(doc, "value");
    a->has_value = json_is_number(v);
    a->value = json_number_value(v);
    a->threshold = json_number_value(json_object_get(doc, "threshold"));
    a->cleared = jx_bool(doc, "cleared", false);
    a->raised_at = jx_int(doc, "raised_at", 0);
    a->upgraded_at = jx_int(doc, "upgraded_at", 0);
    a->cleared_at = jx_int(doc, "cleared_at", 0);
    a->acked_at = jx_int(doc, "acked_at", 0);
    a->handled_at = jx_int(doc, "handled_at", 0);
    a->closed_at = jx_int(doc, "closed_at", 0);
    a->acked_by = dup_field(doc, "acked_by");
    a->handled_by = dup_field(doc, "handled_by");
    a->closed_by = dup_field(doc, "closed_by");
    json_t *fb = json_object_get(doc, "feedback");
    a->found = dup_field(fb, "found");
    a->done = dup_field(fb, "done");
    a->close_note = dup_field(doc, "close_note");
    a->downtime = dup_field(doc, "downtime");
    a->escalation_step = (int)jx_int(doc, "escalation_step", 0);
    a->escalate_at = jx_int(doc, "escalate_at", 0);
    a->eval_rev = jx_int(doc, "eval_rev", 0);
    json_t *esc = json_object_get(doc, "escalations");
    a->escalations = json_is_array(esc) ? json_deep_copy(esc) : json_array();
    a->event = "loaded";
    return a;
}

static bool shared; /* other servers change these alarms too (alarm_set_shared) */

static void take_str(char **dst, const char *src)
{
    if (!*dst && src)
        *dst = g_strdup(src);
}

static int receipts_of(json_t *escalations)
{
    int n = 0;
    size_t i;
    json_t *step;
    json_array_foreach(escalations, i, step) n +=
        (int)json_array_size(json_object_get(step, "receipts"));
    return n;
}

/* What people did to the alarm, as src has it, added to d where d lacks
 * it: an acknowledgement, feedback, a close, escalations and their
 * receipts. The state only moves forward, and no further than handled (a
 * close is only ever applied by the server that closes). True if d gained
 * anything. */
static bool merge_people(struct alarm *d, const struct alarm *s)
{
    bool more = (!d->acked_by && s->acked_by) || (!d->handled_by && s->handled_by) ||
                (!d->found && s->found) || s->escalation_step > d->escalation_step;
    enum alarm_state st = s->state < ALARM_CLOSED ? s->state : ALARM_HANDLED;
    if (d->state < st) {
        d->state = st;
        more = true;
    }
    if (!d->acked_at)
        d->acked_at = s->acked_at;
    take_str(&d->acked_by, s->acked_by);
    if (!d->handled_at)
        d->handled_at = s->handled_at;
    take_str(&d->handled_by, s->handled_by);
    take_str(&d->found, s->found);
    take_str(&d->done, s->done);
    if (s->escalation_step > d->escalation_step ||
        (s->escalation_step == d->escalation_step &&
         receipts_of(s->escalations) > receipts_of(d->escalations))) {
        d->escalation_step = s->escalation_step;
        json_decref(d->escalations);
        d->escalations = json_deep_copy(s->escalations);
    }
    return more;
}

/* What readings did to the alarm (its level, crossing, value, whether it
 * is cleared), as s has it, into d if s has later changes of that kind
 * (eval_rev). True if d took them. */
static bool merge_eval(struct alarm *d, const struct alarm *s)
{
    if (s->eval_rev <= d->eval_rev)
        return false;
    d->eval_rev = s->eval_rev;
    d->level = s->level;
    d->grade = s->grade;
    d->value = s->value;
    d->has_value = s->has_value;
    d->threshold = s->threshold;
    d->cleared = s->cleared;
    d->cleared_at = s->cleared_at;
    d->upgraded_at = s->upgraded_at;
    g_free(d->downtime);
    d->downtime = g_strdup(s->downtime);
    return true;
}

static struct alarm *alarm_from_json(json_t *doc);

/* With other servers writing the same alarm, what they stored since this
 * server's copy was last brought up to date is kept (read, merged, then
 * written: the window left is one round trip): what people did, and what
 * readings did if the stored record has later changes of that kind. */
static void merge_doc(struct alarm *a, json_t *doc)
{
    struct alarm *stored = alarm_from_json(doc);
    if (stored && stored->state != ALARM_CLOSED) {
        merge_people(a, stored);
        merge_eval(a, stored);
    }
    alarm_free(stored);
}

static void merge_stored(struct alarm *a)
{
    json_t *doc = NULL;
    if (store_doc_get(store, COLL, a->id, &doc) != STORE_OK)
        return;
    merge_doc(a, doc);
    json_decref(doc);
}

/* Writes a as it is in memory (create: under its new id). */
static int put(struct alarm *a, bool create)
{
    json_t *doc = alarm_to_json(a);
    int rc = create ? store_doc_put_new(store, COLL, a->id, doc) /* a new id */
                    : store_doc_put(store, COLL, a->id, doc, false);
    json_decref(doc);
    if (rc != STORE_OK)
        log_error("alarm", "alarm=%s sensor=%s cannot be stored (%d)", a->id, a->sensor, rc);
    return rc;
}

static int save(struct alarm *a, bool create)
{
    if (shared && !create)
        merge_stored(a);
    return put(a, create);
}

static void notify(struct alarm *a, const char *event)
{
    a->event = event;
    for (int i = 0; i < n_listeners; i++)
        listeners[i].fn(a, listeners[i].ud);
}

/* What readings change in an alarm, on a store whose reads travel
 * (Redis, shared): the stored record is read without waiting, merged as
 * save() does, written, and then the listeners hear of it, in order.
 * Changes that come while the read is out join it (the write holds them
 * all; each is told). saving: alarm id (owned) -> GPtrArray of events. */
static GHashTable *saving;

static void on_saved_read(int rc, const struct store_docs *d, void *ud)
{
    char *id = ud;
    GPtrArray *events = NULL;
    gpointer key = NULL;
    struct alarm *a = NULL;
    if (saving && g_hash_table_steal_extended(saving, id, &key, (gpointer *)&events))
        a = g_hash_table_lookup(open_by_id, id);
    g_free(key);
    if (a) { /* else closed meanwhile: the close wrote it whole */
        if (rc == STORE_OK && d->n == 1 && d->docs[0])
            merge_doc(a, d->docs[0]);
        int rc_put = put(a, false);
        for (guint i = 0; rc_put == STORE_OK && i < events->len; i++)
            if (g_ptr_array_index(events, i))
                notify(a, g_ptr_array_index(events, i));
    }
    if (events)
        g_ptr_array_free(events, TRUE);
    g_free(id);
}

/* Saves a's change by a reading and tells event (NULL: nobody): without
 * waiting where the store's reads travel, else at once. */
static int save_and_notify(struct alarm *a, const char *event)
{
    if (!shared || !store_reads_later(store)) {
        int rc = save(a, false);
        if (rc == STORE_OK && event)
            notify(a, event);
        return rc;
    }
    if (!saving)
        saving = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GPtrArray *events = g_hash_table_lookup(saving, a->id);
    if (events) {
        g_ptr_array_add(events, (gpointer)event);
        return STORE_OK;
    }
    events = g_ptr_array_new();
    g_ptr_array_add(events, (gpointer)event);
    g_hash_table_insert(saving, g_strdup(a->id), events);
    const char *ids[] = {a->id};
    int rc = store_docs_get_later(store, COLL, ids, 1, on_saved_read, g_strdup(a->id));
    if (rc != STORE_OK) { /* not sent: waits as ever */
        g_hash_table_remove(saving, a->id);
        g_ptr_array_free(events, TRUE);
        rc = save(a, false);
        if (rc == STORE_OK && event)
            notify(a, event);
    }
    return rc;
}

/* Recomputes the alarm's next escalation deadline from its state. */
static void reschedule(struct alarm *a)
{
    a->escalate_step = 0;
    a->escalate_at = alarm_escalation_next(&cfg.escalation, a->level, a->state, a->escalation_step,
                                           a->raised_at, &a->escalate_step);
}

static void track(struct alarm *a)
{
    g_hash_table_replace(open_by_id, a->id, a);
    struct slots *sl = g_hash_table_lookup(open_by_sensor, a->sensor);
    if (!sl) {
        sl = g_new0(struct slots, 1);
        g_hash_table_insert(open_by_sensor, g_strdup(a->sensor), sl);
    }
    sl->a[a->condition] = a;
}

static void untrack(struct alarm *a)
{
    struct slots *sl = g_hash_table_lookup(open_by_sensor, a->sensor);
    if (sl && sl->a[a->condition] == a) {
        sl->a[a->condition] = NULL;
        bool empty = true;
        for (int c = 0; c < ALARM_CONDITIONS; c++)
            empty = empty && !sl->a[c];
        if (empty)
            g_hash_table_remove(open_by_sensor, a->sensor);
    }
    g_hash_table_remove(open_by_id, a->id); /* frees a */
}

/* ------------------------------------------------------------ evaluation */

static struct alarm *open_of(const char *sensor, enum alarm_condition c)
{
    struct slots *sl = g_hash_table_lookup(open_by_sensor, sensor);
    return sl ? sl->a[c] : NULL;
}

static int raise_alarm(const struct sensor *s, enum alarm_grade grade, bool has_value, double value,
                       double threshold, const char *downtime, int64_t now)
{
    struct alarm *a = g_new0(struct alarm, 1);
    a->id = id_new_sorted("al");
    a->sensor = g_strdup(s->id);
    a->enterprise = g_strdup(s->enterprise);
    a->division = g_strdup(s->division ? s->division : "");
    a->park = g_strdup(s->park);
    a->hazard = g_strdup(s->hazard);
    a->unit = g_strdup(s->unit);
    a->condition = alarm_condition_of_grade(grade);
    a->grade = grade;
    a->level = alarm_level_of(&cfg.levels, grade, s->hazard_level);
    a->state = ALARM_RAISED;
    a->has_value = has_value;
    a->value = value;
    a->threshold = threshold;
    a->raised_at = now;
    a->downtime = g_strdup(downtime);
    a->escalations = json_array();
    a->eval_rev = 1;
    reschedule(a);
    int rc = save(a, true);
    if (rc != STORE_OK) {
        alarm_free(a);
        return rc;
    }
    track(a);
    counters.raised[a->level]++;
    log_info("alarm", "alarm=%s raised sensor=%s enterprise=%s %s level=%s value=%g%s%s", a->id,
             a->sensor, a->enterprise, alarm_grade_name(grade), alarm_level_name(a->level), value,
             downtime ? " downtime overrun=" : "", downtime ? downtime : "");
    notify(a, "raised");
    return STORE_OK;
}

/* Applies a decision to the side's open alarm (a may be NULL for RAISE). */
static int act(const struct sensor *s, struct alarm *a, enum alarm_action action,
               const struct alarm_reading *r, double value, int64_t now)
{
    switch (action) {
    case ALARM_ACT_RAISE:
        return raise_alarm(s, r->grade, true, value, r->threshold, NULL, now);
    case ALARM_ACT_UPGRADE: {
        enum alarm_level l = alarm_level_of(&cfg.levels, r->grade, s->hazard_level);
        a->grade = r->grade;
        if (l < a->level)
            a->level = l;
        a->value = value;
        a->has_value = true;
        a->threshold = r->threshold;
        a->upgraded_at = now;
        a->cleared = false;
        reschedule(a);
        counters.upgraded++;
        log_info("alarm", "alarm=%s upgraded sensor=%s %s level=%s value=%g", a->id, a->sensor,
                 alarm_grade_name(a->grade), alarm_level_name(a->level), value);
        break;
    }
    case ALARM_ACT_CLEAR:
        a->cleared = true;
        a->cleared_at = now;
        log_info("alarm", "alarm=%s sensor=%s condition cleared (value=%g), open until handled",
                 a->id, a->sensor, value);
        break;
    case ALARM_ACT_ACTIVE:
        a->cleared = false;
        log_info("alarm", "alarm=%s sensor=%s condition back (value=%g)", a->id, a->sensor, value);
        break;
    default:
        return STORE_OK;
    }
    a->eval_rev++;
    return save_and_notify(a, action == ALARM_ACT_UPGRADE ? "upgraded"
                              : action == ALARM_ACT_CLEAR ? "cleared"
                                                          : "active");
}

int alarm_evaluate(const struct sensor *s, int64_t now_ms)
{
    if (!store || !s->has_value || !s->enabled || !s->enterprise)
        return STORE_OK;
    int rc = STORE_OK;
    static const enum alarm_condition sides[] = {ALARM_COND_HIGH, ALARM_COND_LOW};
    for (size_t i = 0; i < G_N_ELEMENTS(sides) && rc == STORE_OK; i++) {
        struct alarm_reading r;
        alarm_reading_check(s, sides[i], s->value, &r);
        struct alarm *a = open_of(s->id, sides[i]);
        enum alarm_action action =
            alarm_decide(&r, a != NULL, a ? a->grade : ALARM_GRADE_HIGH, a ? a->cleared : false);
        rc = act(s, a, action, &r, s->value, now_ms);
    }
    /* a reading ends the sensor's interruption */
    struct alarm *in = open_of(s->id, ALARM_COND_INTERRUPTED);
    if (rc == STORE_OK && in && !in->cleared) {
        in->cleared = true;
        in->cleared_at = now_ms;
        in->eval_rev++;
        rc = save_and_notify(in, "cleared");
        if (rc == STORE_OK)
            log_info("alarm", "alarm=%s sensor=%s reporting again", in->id, in->sensor);
    }
    return rc;
}

int alarm_interrupted(const struct sensor *s, const char *downtime, int64_t now_ms)
{
    if (!store || !s->enterprise)
        return STORE_OK;
    struct alarm *a = open_of(s->id, ALARM_COND_INTERRUPTED);
    if (!a)
        return raise_alarm(s, ALARM_GRADE_INTERRUPTED, s->has_value, s->value, 0, downtime, now_ms);
    if (!a->cleared)
        return STORE_OK;
    a->cleared = false;
    a->eval_rev++;
    int rc = save_and_notify(a, "active");
    if (rc == STORE_OK)
        log_info("alarm", "alarm=%s sensor=%s interrupted again", a->id, a->sensor);
    return rc;
}

static void on_reading(const struct sensor *s, bool had_prev, double prev, void *ud)
{
    (void)had_prev;
    (void)prev;
    (void)ud;
    alarm_evaluate(s, clock_now_ms());
}

/* ------------------------------------------------------------ lifecycle */

static bool text_ok(const char *t, bool required)
{
    if (!t)
        return !required;
    size_t n = strlen(t);
    return (n > 0 || !required) && n <= ALARM_TEXT_MAX && g_utf8_validate(t, -1, NULL);
}

/* Stores a transition; on a store failure the alarm is reloaded from the
 * store so memory never runs ahead of it. */
static enum err_code commit_change(struct alarm *a, const char *event, const struct alarm **out,
                                   bool merged)
{
    int rc = merged ? put(a, false) : save(a, false);
    if (rc != STORE_OK) {
        json_t *doc = NULL;
        struct alarm *back = NULL;
        if (store_doc_get(store, COLL, a->id, &doc) == STORE_OK)
            back = alarm_from_json(doc);
        json_decref(doc);
        untrack(a);
        if (back && back->state != ALARM_CLOSED)
            track(back);
        else
            alarm_free(back);
        return ERR_UNAVAILABLE;
    }
    log_info("alarm", "alarm=%s %s", a->id, event);
    notify(a, event);
    if (out)
        *out = a;
    return ERR_NONE;
}

static struct alarm *find_open(const char *id, const char **why)
{
    struct alarm *a = id ? g_hash_table_lookup(open_by_id, id) : NULL;
    if (!a)
        *why = "no such open alarm";
    return a;
}

/* The escalation step of a whose users include actor (the latest one), or
 * NULL. */
static json_t *escalation_to(const struct alarm *a, const char *actor)
{
    json_t *found = NULL;
    size_t i, j;
    json_t *e, *u;
    json_array_foreach(a->escalations, i, e)
    {
        json_array_foreach(json_object_get(e, "users"), j, u)
        {
            if (json_is_string(u) && strcmp(json_string_value(u), actor) == 0)
                found = e;
        }
    }
    return found;
}

static enum err_code do_ack(struct alarm *a, const struct alarm_deed *d, const char **why)
{
    if (a->state != ALARM_RAISED) {
        *why = "the alarm was already acknowledged";
        return ERR_CONFLICT;
    }
    a->state = ALARM_ACKNOWLEDGED;
    a->acked_at = d->now_ms;
    a->acked_by = g_strdup(d->actor);
    reschedule(a);
    return ERR_NONE;
}

static enum err_code do_receipt(struct alarm *a, const struct alarm_deed *d, const char **why)
{
    json_t *step = escalation_to(a, d->actor);
    if (!step) {
        *why = "the alarm was not escalated to you: the enterprise acknowledges it";
        return ERR_FORBIDDEN;
    }
    json_t *receipts = json_object_get(step, "receipts");
    if (!json_is_array(receipts)) {
        receipts = json_array();
        json_object_set_new(step, "receipts", receipts);
    }
    size_t i;
    json_t *r;
    json_array_foreach(receipts, i, r)
    {
        const char *who = json_string_value(json_object_get(r, "user"));
        if (who && strcmp(who, d->actor) == 0) {
            *why = "you already acknowledged this escalation";
            return ERR_CONFLICT;
        }
    }
    json_array_append_new(receipts,
                          json_pack("{s:s, s:I}", "user", d->actor, "at", (json_int_t)d->now_ms));
    return ERR_NONE;
}

static enum err_code do_feedback(struct alarm *a, const struct alarm_deed *d, const char **why)
{
    if (a->state != ALARM_ACKNOWLEDGED) {
        *why = a->state == ALARM_RAISED ? "acknowledge the alarm first"
                                        : "the alarm was already handled";
        return ERR_CONFLICT;
    }
    a->state = ALARM_HANDLED;
    a->handled_at = d->now_ms;
    a->handled_by = g_strdup(d->actor);
    a->found = g_strdup(d->found);
    a->done = g_strdup(d->done);
    reschedule(a);
    return ERR_NONE;
}

static enum err_code do_close(struct alarm *a, const struct alarm_deed *d, const char **why)
{
    if (a->state != ALARM_HANDLED) {
        *why = "only a handled alarm (with feedback) can be closed";
        return ERR_CONFLICT;
    }
    a->state = ALARM_CLOSED;
    a->closed_at = d->now_ms;
    a->closed_by = g_strdup(d->actor);
    a->close_note = g_strdup(d->note);
    a->escalate_at = 0;
    return ERR_NONE;
}

static const struct {
    const char *event;
    enum err_code (*apply)(struct alarm *a, const struct alarm_deed *d, const char **why);
} deeds[] = {
    [ALARM_DEED_ACK] = {"acknowledged", do_ack},
    [ALARM_DEED_RECEIPT] = {"receipted", do_receipt},
    [ALARM_DEED_FEEDBACK] = {"handled", do_feedback},
    [ALARM_DEED_CLOSE] = {"closed", do_close},
};

/* Applies d to a (already merged with what is stored where others write
 * it too), stores it and tells the listeners; cb hears the record after
 * the change. merged: the stored record was merged already (no read). */
static void deed_apply(struct alarm *a, const struct alarm_deed *d, bool merged, alarm_act_cb cb,
                       void *ud)
{
    const char *why = "";
    enum err_code e = deeds[d->kind].apply(a, d, &why);
    if (e != ERR_NONE) {
        cb(e, why, NULL, ud);
        return;
    }
    e = commit_change(a, deeds[d->kind].event, NULL, merged);
    if (e != ERR_NONE) {
        cb(e, "store unavailable", NULL, ud);
        return;
    }
    json_t *doc = alarm_to_json(a);
    if (d->kind == ALARM_DEED_CLOSE) {
        counters.closed++;
        untrack(a); /* closed alarms leave memory */
    }
    cb(ERR_NONE, NULL, doc, ud);
    json_decref(doc);
}

/* A deed waiting for the stored record (a copy of its texts). */
struct deed_later {
    char *id;
    struct alarm_deed d;
    alarm_act_cb cb;
    void *ud;
};

static void on_deed_read(int rc, const struct store_docs *docs, void *ud)
{
    struct deed_later *l = ud;
    const char *why = "no such open alarm";
    struct alarm *a = open_by_id ? find_open(l->id, &why) : NULL;
    if (rc != STORE_OK || !a) {
        l->cb(rc != STORE_OK ? ERR_UNAVAILABLE : ERR_NOT_FOUND,
              rc != STORE_OK ? "store unavailable" : why, NULL, l->ud);
    } else {
        if (docs->n == 1 && docs->docs[0])
            merge_doc(a, docs->docs[0]);
        deed_apply(a, &l->d, true, l->cb, l->ud);
    }
    g_free(l->id);
    g_free((char *)l->d.actor);
    g_free((char *)l->d.found);
    g_free((char *)l->d.done);
    g_free((char *)l->d.note);
    g_free(l);
}

void alarm_act(const char *id, const struct alarm_deed *d, alarm_act_cb cb, void *ud)
{
    bool texts = d->kind == ALARM_DEED_FEEDBACK ? text_ok(d->found, true) && text_ok(d->done, true)
                 : d->kind == ALARM_DEED_CLOSE  ? text_ok(d->note, false)
                                                : true;
    if (!texts) {
        cb(ERR_BAD_REQUEST,
           d->kind == ALARM_DEED_CLOSE
               ? "note must be a text of at most 2000 bytes"
               : "found and done must be non-empty texts of at most 2000 bytes",
           NULL, ud);
        return;
    }
    const char *why;
    struct alarm *a = find_open(id, &why);
    if (!a) {
        cb(ERR_NOT_FOUND, why, NULL, ud);
        return;
    }
    if (shared && store_reads_later(store)) {
        struct deed_later *l = g_new(struct deed_later, 1);
        *l = (struct deed_later){g_strdup(id), *d, cb, ud};
        l->d.actor = g_strdup(d->actor);
        l->d.found = g_strdup(d->found);
        l->d.done = g_strdup(d->done);
        l->d.note = g_strdup(d->note);
        const char *ids[] = {id};
        if (store_docs_get_later(store, COLL, ids, 1, on_deed_read, l) == STORE_OK)
            return;
        struct store_docs none = {0}; /* not sent: the record is not merged */
        on_deed_read(STORE_EIO, &none, l);
        return;
    }
    deed_apply(a, d, false, cb, ud);
}

int alarm_escalate(const char *id, int step, const char *division, json_t *users, int64_t now_ms,
                   bool merged, const struct alarm **out)
{
    const char *why;
    struct alarm *a = find_open(id, &why);
    if (!a || step <= a->escalation_step || step > ALARM_STEPS)
        return STORE_EINVAL;
    a->escalation_step = step;
    json_array_append_new(a->escalations,
                          json_pack("{s:i, s:s, s:I, s:O}", "step", step, "division", division,
                                    "at", (json_int_t)now_ms, "users", users));
    reschedule(a);
    counters.escalations++;
    enum err_code e = commit_change(a, "escalated", out, merged);
    return e == ERR_NONE ? STORE_OK : STORE_EIO;
}

struct ahead {
    void (*cb)(int rc, void *ud);
    void *ud;
};

static void on_ahead(int rc, const struct store_docs *d, void *ud)
{
    struct ahead *x = ud;
    for (int i = 0; rc == STORE_OK && i < d->n; i++) {
        struct alarm *a = open_by_id ? g_hash_table_lookup(open_by_id, d->ids[i]) : NULL;
        if (a && d->docs[i])
            merge_doc(a, d->docs[i]);
    }
    x->cb(rc, x->ud);
    g_free(x);
}

bool alarm_read_ahead(const char *const *ids, int n, void (*cb)(int rc, void *ud), void *ud)
{
    if (!shared || !store_reads_later(store) || n <= 0)
        return false;
    struct ahead *x = g_new(struct ahead, 1);
    *x = (struct ahead){cb, ud};
    if (store_docs_get_later(store, COLL, ids, n, on_ahead, x) == STORE_OK)
        return true;
    g_free(x);
    return false;
}

/* ------------------------------------------------------------ queries */

void alarm_set_shared(bool on)
{
    shared = on;
}

const struct alarm *alarm_apply_remote(json_t *doc)
{
    if (!open_by_id)
        return NULL;
    struct alarm *a = alarm_from_json(doc);
    if (!a)
        return NULL;
    struct alarm *held = g_hash_table_lookup(open_by_id, a->id);
    /* what was done here and had not reached that server when it wrote
     * stays, and goes back to the store */
    bool resave = false;
    if (held && a->state != ALARM_CLOSED) {
        resave = merge_people(a, held);
        resave = merge_eval(a, held) || resave;
    }
    if (held)
        untrack(held);
    if (a->state == ALARM_CLOSED) {
        alarm_free(a);
        return NULL;
    }
    struct alarm *other = open_of(a->sensor, a->condition);
    if (other)
        untrack(other); /* the other node's is the one raised since */
    reschedule(a);
    track(a);
    /* the stored record is read again (without waiting where reads
     * travel) and merged before the write, as any save does */
    if (resave && save_and_notify(a, NULL) == STORE_OK)
        log_info("alarm", "alarm=%s merges what two servers did at once", a->id);
    return a;
}

void alarm_on_changed(alarm_changed_fn fn, void *ud)
{
    if (n_listeners < LISTENERS_MAX) {
        listeners[n_listeners].fn = fn;
        listeners[n_listeners].ud = ud;
        n_listeners++;
    }
}

void alarm_foreach_open(bool (*cb)(const struct alarm *a, void *ud), void *ud)
{
    if (!open_by_id)
        return;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, open_by_id);
    while (g_hash_table_iter_next(&it, NULL, &v))
        if (!cb(v, ud))
            return;
}

unsigned alarm_open_count(void)
{
    return open_by_id ? g_hash_table_size(open_by_id) : 0;
}

const struct alarm *alarm_open_get(const char *id)
{
    return open_by_id && id ? g_hash_table_lookup(open_by_id, id) : NULL;
}

int alarm_load_later(const char *id, store_docs_cb cb, void *ud)
{
    const char *ids[] = {id};
    return store_docs_get_later(store, COLL, ids, 1, cb, ud);
}

int alarm_load_json(const char *id, json_t **out)
{
    const struct alarm *a = alarm_open_get(id);
    if (a) {
        *out = alarm_to_json(a);
        return STORE_OK;
    }
    return store_doc_get(store, COLL, id, out);
}

void alarm_counters(struct alarm_counters *out)
{
    *out = counters;
}

/* ------------------------------------------------------------ set-up */

static bool load_open(const char *id, json_t *doc, void *ud)
{
    (void)id;
    int *n = ud;
    struct alarm *a = alarm_from_json(doc);
    if (!a) {
        log_warn("alarm", "alarm=%s: malformed record skipped", id);
        return true;
    }
    if (a->state == ALARM_CLOSED || open_of(a->sensor, a->condition)) {
        alarm_free(a);
        return true;
    }
    reschedule(a); /* the configured T1/T2/T3 of now */
    track(a);
    (*n)++;
    return true;
}

int alarm_init(struct store *st, const struct alarm_config *c)
{
    int rc = STORE_OK;
    for (size_t i = 0; i < G_N_ELEMENTS(index_fields) && rc == STORE_OK; i++)
        rc = store_index_define(st, COLL, index_fields[i], false);
    if (rc != STORE_OK)
        return rc;
    store = st;
    cfg = *c;
    open_by_id = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, alarm_free);
    open_by_sensor = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    int n = 0;
    static const char *const open_states[] = {"raised", "acknowledged", "handled"};
    for (size_t i = 0; i < G_N_ELEMENTS(open_states) && rc == STORE_OK; i++)
        rc = store_index_find(st, COLL, "state", open_states[i], false, load_open, &n);
    if (rc != STORE_OK) {
        alarm_shutdown();
        return rc;
    }
    sensor_on_reading(on_reading, NULL);
    alarm_scan_init();
    log_info("alarm", "%d open alarm(s) loaded", n);
    return STORE_OK;
}

void alarm_shutdown(void)
{
    if (saving) { /* reads still out are answered into nothing */
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, saving);
        while (g_hash_table_iter_next(&it, NULL, &v))
            g_ptr_array_free(v, TRUE);
        g_clear_pointer(&saving, g_hash_table_destroy);
    }
    g_clear_pointer(&open_by_sensor, g_hash_table_destroy);
    g_clear_pointer(&open_by_id, g_hash_table_destroy);
    n_listeners = 0;
    store = NULL;
    memset(&counters, 0, sizeof(counters));
}
