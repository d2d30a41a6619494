/* Alarm delivery to the plant and escalation to the regulators (see
 * alarm_push.h), through the durable inbox. */
#include "push/alarm_push.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/inbox.h"
#include "records/account.h"
#include "records/commitment_due.h"

#include <string.h>

static struct store *store;

bool alarm_staff_position(const char *p)
{
    return due_is_duty(p) || due_is_contact(p);
}

struct pick {
    GPtrArray *ids;
    GHashTable *seen;
    bool gov;
};

static bool pick_user(struct account *a, void *ud)
{
    struct pick *p = ud;
    if (a->disabled || strcmp(a->role, p->gov ? "gov" : "corp") != 0)
        return true;
    if (!(p->gov ? due_is_duty(a->position) : alarm_staff_position(a->position)))
        return true;
    if (p->seen && !g_hash_table_add(p->seen, g_strdup(a->id)))
        return true;
    g_ptr_array_add(p->ids, g_strdup(a->id));
    return true;
}

int alarm_push_staff(const char *enterprise, GPtrArray *ids)
{
    struct pick p = {ids, NULL, false};
    return account_each_in_org(store, enterprise, pick_user, &p);
}

int alarm_push_duty(const char *division, GPtrArray *ids)
{
    char padded[8];
    g_strlcpy(padded, division, sizeof(padded));
    for (size_t n = strlen(padded); n < 6; n++)
        padded[n] = '0';
    padded[6] = '\0';
    struct pick p = {ids, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL), true};
    int rc = account_each_in_org(store, division, pick_user, &p);
    if (rc == STORE_OK && strcmp(padded, division) != 0)
        rc = account_each_in_org(store, padded, pick_user, &p);
    g_hash_table_destroy(p.seen);
    return rc;
}

/* Enterprises' names for the pushes, as last read, without waiting: a
 * name older than NAME_FRESH_MS is used once more while it is read again
 * (a renamed plant shows its new name from the next alarm on). The pushes
 * of an enterprise whose name was never read are held, in order, until
 * the first read answers (one round trip), then stored with it. */
#define NAME_FRESH_MS 60000
#define NAMES_MAX 100000
struct name {
    char *name; /* NULL: none known (not read yet, or the read failed) */
    int64_t read_ms;
    bool reading;
    GQueue held; /* struct held*: pushes waiting for the first read */
};

/* A push held for its enterprise's name. */
struct held {
    GPtrArray *ids;
    json_t *payload;
    char *title, *body, *alarm_id, *event;
};
static GHashTable *names; /* enterprise id -> struct name* */

static int store_push(GPtrArray *ids, const char *title, const char *body, json_t *payload,
                      const char *alarm_id, const char *event)
{
    int rc = inbox_push_many_later((const char *const *)ids->pdata, (int)ids->len, "alarm", "high",
                                   ALARM_PUSH_TTL_S, title, body, payload);
    if (rc != STORE_OK)
        log_error("alarm", "alarm=%s %s push to %u users not stored (%d)", alarm_id, event,
                  ids->len, rc);
    return rc;
}

/* Stores the held pushes of n, in order, with its name if one is known. */
static void release_held(struct name *n)
{
    struct held *h;
    while ((h = g_queue_pop_head(&n->held))) {
        if (n->name)
            json_object_set_new(h->payload, "enterprise_name", json_string(n->name));
        store_push(h->ids, h->title, h->body, h->payload, h->alarm_id, h->event);
        g_ptr_array_free(h->ids, TRUE);
        json_decref(h->payload);
        g_free(h->title);
        g_free(h->body);
        g_free(h->alarm_id);
        g_free(h->event);
        g_free(h);
    }
}

static void name_free(gpointer p)
{
    struct name *n = p;
    release_held(n); /* at shutdown: stored without the name */
    g_free(n->name);
    g_free(n);
}

static gboolean idle_name(gpointer key, gpointer value, gpointer ud)
{
    (void)key;
    (void)ud;
    return !((struct name *)value)->reading;
}

static void on_name_read(int rc, const struct store_docs *d, void *ud)
{
    char *id = ud;
    struct name *n = names ? g_hash_table_lookup(names, id) : NULL;
    if (n) {
        n->reading = false;
        if (rc == STORE_OK && d->n == 1 && d->docs[0] && jx_str(d->docs[0], "name")) {
            g_free(n->name);
            n->name = g_strdup(jx_str(d->docs[0], "name"));
            n->read_ms = g_get_monotonic_time() / 1000;
        }
        release_held(n);
    }
    g_free(id);
}

/* What is known of enterprise id's name (NULL without a table), its read
 * sent again if it is stale. */
static struct name *name_of(const char *id)
{
    if (!names)
        return NULL;
    struct name *n = g_hash_table_lookup(names, id);
    if (!n) {
        if (g_hash_table_size(names) >= NAMES_MAX)
            g_hash_table_foreach_remove(names, idle_name, NULL);
        n = g_new0(struct name, 1);
        n->read_ms = -NAME_FRESH_MS - 1;
        g_queue_init(&n->held);
        g_hash_table_insert(names, g_strdup(id), n);
    }
    if (!n->reading && g_get_monotonic_time() / 1000 - n->read_ms > NAME_FRESH_MS) {
        const char *ids[] = {id};
        n->read_ms = g_get_monotonic_time() / 1000; /* a failed read is not tried at once again */
        n->reading = store_docs_get_later(store, "enterprises", ids, 1, on_name_read,
                                          g_strdup(id)) == STORE_OK;
    }
    return n;
}

json_t *alarm_push_payload(const struct alarm *a)
{
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:b, s:s}",
                          "alarm_id", a->id, "sensor", a->sensor, "enterprise", a->enterprise,
                          "division", a->division, "level", alarm_level_name(a->level), "condition",
                          alarm_condition_name(a->condition), "grade", alarm_grade_name(a->grade),
                          "state", alarm_state_name(a->state), "raised_at",
                          (json_int_t)a->raised_at, "escalation_step", a->escalation_step,
                          "cleared", a->cleared, "event", a->event ? a->event : "");
    struct name *n = names ? g_hash_table_lookup(names, a->enterprise) : NULL;
    if (n && n->name)
        json_object_set_new(p, "enterprise_name", json_string(n->name));
    if (a->has_value)
        json_object_set_new(p, "value", json_real(a->value));
    if (a->condition != ALARM_COND_INTERRUPTED)
        json_object_set_new(p, "threshold", json_real(a->threshold));
    if (a->unit)
        json_object_set_new(p, "unit", json_string(a->unit));
    if (a->downtime)
        json_object_set_new(p, "downtime", json_string(a->downtime));
    return p;
}

static const char *const level_title[] = {"红色预警（一级）", "橙色预警（二级）",
                                          "黄色预警（三级）", "蓝色预警（四级）"};

static char *body_of(const struct alarm *a)
{
    switch (a->condition) {
    case ALARM_COND_INTERRUPTED:
        return g_strdup_printf("传感器 %s 数据中断%s", a->sensor,
                               a->downtime ? "（超过报备的恢复时间）" : "");
    default:
        return g_strdup_printf("传感器 %s %s：%g%s（阈值 %g）", a->sensor,
                               a->grade == ALARM_GRADE_HIGH_HIGH ? "高高报"
                               : a->grade == ALARM_GRADE_HIGH    ? "高报"
                               : a->grade == ALARM_GRADE_LOW_LOW ? "低低报"
                                                                 : "低报",
                               a->value, a->unit ? a->unit : "", a->threshold);
    }
}

static int push_to(const struct alarm *a, GPtrArray *ids)
{
    if (ids->len == 0)
        return STORE_OK;
    struct name *n = name_of(a->enterprise);
    json_t *payload = alarm_push_payload(a);
    char *body = body_of(a);
    int rc = STORE_OK;
    if (n && n->reading && !n->name) { /* the first read is out */
        struct held *h = g_new(struct held, 1);
        *h = (struct held){g_ptr_array_new_with_free_func(g_free),
                           json_incref(payload),
                           g_strdup(level_title[a->level]),
                           g_strdup(body),
                           g_strdup(a->id),
                           g_strdup(a->event)};
        for (guint i = 0; i < ids->len; i++)
            g_ptr_array_add(h->ids, g_strdup(g_ptr_array_index(ids, i)));
        g_queue_push_tail(&n->held, h);
    } else {
        rc = store_push(ids, level_title[a->level], body, payload, a->id, a->event);
    }
    g_free(body);
    json_decref(payload);
    return rc;
}

static void on_changed(const struct alarm *a, void *ud)
{
    (void)ud;
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    if (strcmp(a->event, "raised") == 0 || strcmp(a->event, "upgraded") == 0) {
        if (alarm_push_staff(a->enterprise, ids) == STORE_OK) {
            if (ids->len == 0)
                log_warn("alarm", "alarm=%s enterprise=%s has no duty staff to push to", a->id,
                         a->enterprise);
            else if (push_to(a, ids) == STORE_OK)
                log_info("alarm", "alarm=%s %s pushed to %u staff of %s", a->id, a->event, ids->len,
                         a->enterprise);
        }
    } else if (strcmp(a->event, "escalated") == 0) {
        json_t *last = json_array_get(a->escalations, json_array_size(a->escalations) - 1);
        size_t i;
        json_t *u;
        json_array_foreach(json_object_get(last, "users"), i, u)
            g_ptr_array_add(ids, g_strdup(json_string_value(u)));
        if (push_to(a, ids) == STORE_OK)
            log_info("alarm", "alarm=%s escalation step %d pushed to %u regulators of %s", a->id,
                     a->escalation_step, ids->len, jx_str(last, "division"));
    }
    g_ptr_array_free(ids, TRUE);
}

/* ------------------------------------------------------------ escalation */

struct due_scan {
    int64_t now;
    GPtrArray *due; /* ids (owned) */
};

/* Escalations whose alarms' stored records are being read ahead (see
 * alarm_push_tick_then): ids, skipped by the ticks meanwhile. */
static GHashTable *reading;

static bool collect_due(const struct alarm *a, void *ud)
{
    struct due_scan *s = ud;
    if (a->escalate_at && a->escalate_at <= s->now && s->due->len < ALARM_ESCALATIONS_PER_TICK &&
        alarm_sensor_is_mine(a->sensor) && !(reading && g_hash_table_contains(reading, a->id)))
        g_ptr_array_add(s->due, g_strdup(a->id));
    return true;
}

static void division_of_step(const char *division, int step, char out[8])
{
    size_t keep = step == 1 ? 6 : step == 2 ? 4 : 2;
    g_strlcpy(out, division, MIN(keep + 1, 8));
}

/* Takes the due step of alarm id; returns true if it was recorded. */
static bool take_step(const char *id, int step, int64_t now_ms, bool merged)
{
    const struct alarm *a = alarm_open_get(id);
    if (!a)
        return false;
    char div[8];
    division_of_step(a->division, step, div);
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    bool ok = false;
    if (alarm_push_duty(div, ids) == STORE_OK) {
        json_t *users = json_array();
        for (guint k = 0; k < ids->len; k++)
            json_array_append_new(users, json_string(g_ptr_array_index(ids, k)));
        if (ids->len == 0)
            log_warn("alarm", "alarm=%s escalation step %d: no duty regulator in %s", id, step,
                     div);
        ok = alarm_escalate(id, step, div, users, now_ms, merged, NULL) == STORE_OK;
        json_decref(users);
    }
    g_ptr_array_free(ids, TRUE);
    return ok;
}

/* Takes every step of the due alarms that is due at now_ms. */
static void take_due(GPtrArray *due, int64_t now_ms, bool merged)
{
    for (guint i = 0; i < due->len; i++) {
        const char *id = g_ptr_array_index(due, i);
        /* after a long gap (a restart, the test clock) several steps may
         * be due at once: each is taken and recorded, in order */
        for (int k = 0; k < ALARM_STEPS; k++) {
            const struct alarm *a = alarm_open_get(id);
            if (!a || !a->escalate_at || a->escalate_at > now_ms ||
                !take_step(id, a->escalate_step, now_ms, merged))
                break;
        }
    }
}

/* Reads ahead out, and who waits for them all to be answered (struct
 * tick_waiter*): a tick's done hears once the steps due then are taken,
 * those of earlier ticks' reads too. */
static int reads_out;
static GQueue waiters = G_QUEUE_INIT;

struct tick_waiter {
    void (*done)(void *ud);
    void *ud;
};

static void tell_waiters(void)
{
    struct tick_waiter *w;
    while ((w = g_queue_pop_head(&waiters))) {
        w->done(w->ud);
        g_free(w);
    }
}

static void on_due_read(int rc, void *ud)
{
    GPtrArray *due = ud;
    reads_out--;
    for (guint i = 0; reading && i < due->len; i++)
        g_hash_table_remove(reading, g_ptr_array_index(due, i));
    if (rc == STORE_OK && store)
        take_due(due, clock_now_ms(), true);
    else if (store) /* the next tick tries again */
        log_warn("alarm", "%u escalations wait: their alarms cannot be read (%d)", due->len, rc);
    g_ptr_array_free(due, TRUE);
    if (reads_out <= 0)
        tell_waiters();
}

void alarm_push_tick_then(int64_t now_ms, void (*done)(void *ud), void *ud)
{
    struct due_scan s = {now_ms, g_ptr_array_new_with_free_func(g_free)};
    if (store)
        alarm_foreach_open(collect_due, &s);
    if (s.due->len &&
        alarm_read_ahead((const char *const *)s.due->pdata, (int)s.due->len, on_due_read, s.due)) {
        reads_out++;
        if (!reading)
            reading = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint i = 0; i < s.due->len; i++)
            g_hash_table_add(reading, g_strdup(g_ptr_array_index(s.due, i)));
    } else {
        if (s.due->len)
            take_due(s.due, now_ms, false);
        g_ptr_array_free(s.due, TRUE);
    }
    if (!done)
        return;
    if (reads_out <= 0) {
        done(ud);
        return;
    }
    struct tick_waiter *w = g_new(struct tick_waiter, 1);
    *w = (struct tick_waiter){done, ud};
    g_queue_push_tail(&waiters, w);
}

void alarm_push_tick(int64_t now_ms)
{
    alarm_push_tick_then(now_ms, NULL, NULL);
}

int alarm_push_downtime(json_t *decl)
{
    const char *div = jx_str(decl, "division");
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    int rc = div ? alarm_push_duty(div, ids) : STORE_OK;
    if (rc == STORE_OK && ids->len > 0) {
        char *body = g_strdup_printf("企业 %s 报备离线：%s", jx_str(decl, "enterprise"),
                                     jx_str(decl, "reason"));
        rc = inbox_push_many_later((const char *const *)ids->pdata, (int)ids->len, "downtime",
                                   "normal", ALARM_PUSH_TTL_S, "离线报备", body, decl);
        g_free(body);
    }
    g_ptr_array_free(ids, TRUE);
    return rc;
}

void alarm_push_init(struct store *st)
{
    store = st;
    names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, name_free);
    alarm_on_changed(on_changed, NULL);
}

void alarm_push_shutdown(void)
{
    store = NULL;
    g_clear_pointer(&reading, g_hash_table_destroy);
    tell_waiters(); /* reads still out take nothing once they answer */
    if (names)
        g_hash_table_destroy(names);
    names = NULL;
}
