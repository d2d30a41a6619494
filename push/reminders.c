/* The reminders scheduler (see reminders.h), on GLib's time zones and the
 * store's deadlines. */
#include "push/reminders.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/inbox.h"
#include "records/account.h"

#include <stdlib.h>
#include <string.h>

#define DEADLINE_PREFIX "rem/"
#define JOURNAL_PREFIX "reminders/"
#define REMINDER_TTL_S 86400
#define CLAIM_LEASE_MS (10 * 60 * 1000)

enum job_kind { JOB_COMMITMENT, JOB_SELFEVAL, JOB_SUMMARY, JOB_CONFIRM };

struct job {
    char *name;
    enum job_kind kind;
    int hour, minute;               /* run time, business time zone */
    int cutoff_hour, cutoff_minute; /* no catch-up at or after this */
    int64_t due_ms;                 /* cache of the stored deadline rem/NAME */
    char *due_date;                 /* its business date */
};

static struct store *store;
static GTimeZone *tz;
static GPtrArray *jobs; /* struct job* */
static int selfeval_last_day;
static int confirm_day;
static reminder_run_fn summary_fn, confirm_fn;
static void *summary_ud, *confirm_ud;
static int64_t clock_offset_ms;
static char *holder;
static reminder_source_fn commitment_fn, selfeval_fn;
static void *commitment_ud, *selfeval_ud;

int64_t reminders_now_ms(void)
{
    return clock_now_ms() + clock_offset_ms;
}

void reminders_set_now_ms(int64_t now_ms)
{
    clock_offset_ms = now_ms - clock_now_ms();
    log_info("reminders", "scheduler clock set to %" G_GINT64_FORMAT, now_ms);
}

void reminders_set_commitment_source(reminder_source_fn fn, void *ud)
{
    commitment_fn = fn;
    commitment_ud = ud;
}

void reminders_set_selfeval_source(reminder_source_fn fn, void *ud)
{
    selfeval_fn = fn;
    selfeval_ud = ud;
}

void reminders_set_summary_runner(reminder_run_fn fn, void *ud)
{
    summary_fn = fn;
    summary_ud = ud;
}

void reminders_set_confirm_runner(reminder_run_fn fn, void *ud)
{
    confirm_fn = fn;
    confirm_ud = ud;
}

/* ------------------------------------------------------------ stand-ins */

struct pick {
    struct store *st;
    const char *date;
    GPtrArray *out;
    const char *enterprise;
    int rc;
};

static bool is_commitment_contact(const char *position)
{
    return position &&
           (strcmp(position, "principal") == 0 || strcmp(position, "safety_manager") == 0 ||
            strcmp(position, "主要负责人") == 0 || strcmp(position, "安全管理人员") == 0);
}

static bool pick_contact(struct account *a, void *ud)
{
    struct pick *p = ud;
    if (!a->disabled && strcmp(a->role, "corp") == 0 && is_commitment_contact(a->position))
        g_ptr_array_add(p->out, g_strdup(a->id));
    return true;
}

static bool pick_enterprise(const char *id, json_t *doc, void *ud)
{
    (void)doc;
    struct pick *p = ud;
    char *fid = g_strconcat(id, "/", p->date, NULL);
    json_t *filed = NULL;
    int rc = store_doc_get(p->st, "commitment_filings", fid, &filed);
    g_free(fid);
    json_decref(filed);
    if (rc == STORE_ENOTFOUND)
        rc = account_each_in_org(p->st, id, pick_contact, p);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND)
        p->rc = rc;
    return p->rc == STORE_OK;
}

/* Stand-in until the commitments records exist: every enterprise without
 * a "commitment_filings" document ENTERPRISE/DATE. */
static int standin_commitment(struct store *st, const char *date, GPtrArray *out, void *ud)
{
    (void)ud;
    struct pick p = {st, date, out, NULL, STORE_OK};
    int rc = store_doc_list(st, "enterprises", pick_enterprise, &p);
    return rc != STORE_OK ? rc : p.rc;
}

static bool filed_by(const char *id, json_t *doc, void *ud)
{
    (void)id;
    if (jx_str(doc, "user"))
        g_hash_table_add(ud, g_strdup(jx_str(doc, "user")));
    return true;
}

struct regulators {
    GHashTable *filed; /* user ids that filed the period */
    GPtrArray *out;
};

static bool pick_regulator(struct account *a, void *ud)
{
    struct regulators *r = ud;
    if (!a->disabled && strcmp(a->role, "gov") == 0 && !g_hash_table_contains(r->filed, a->id))
        g_ptr_array_add(r->out, g_strdup(a->id));
    return true;
}

/* The default self-evaluation source: every regulator without a
 * "selfeval_filings" document of the period (YYYY-MM; written by
 * records/selfeval.c when it files, which defines the index by period):
 * one look-up of the period's filings, the accounts from memory where
 * they are kept. */
static int standin_selfeval(struct store *st, const char *date, GPtrArray *out, void *ud)
{
    (void)ud;
    char month[8];
    g_strlcpy(month, date, sizeof(month));
    struct regulators r = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL), out};
    int rc = store_index_find(st, "selfeval_filings", "period", month, false, filed_by, r.filed);
    if (rc == STORE_OK)
        rc = account_each(st, pick_regulator, &r);
    g_hash_table_destroy(r.filed);
    return rc;
}

/* ------------------------------------------------------------ calendar */

static GDateTime *local_of(int64_t ms)
{
    GDateTime *utc = g_date_time_new_from_unix_utc(ms / 1000);
    GDateTime *local = g_date_time_to_timezone(utc, tz);
    g_date_time_unref(utc);
    return local;
}

static int64_t ms_of(GDateTime *dt)
{
    return g_date_time_to_unix(dt) * 1000;
}

static char *date_of(int64_t ms)
{
    GDateTime *l = local_of(ms);
    char *d = g_date_time_format(l, "%Y-%m-%d");
    g_date_time_unref(l);
    return d;
}

/* The time of day h:m on the business day of day (a local time). */
static GDateTime *at_time(GDateTime *day, int h, int m)
{
    return g_date_time_new(tz, g_date_time_get_year(day), g_date_time_get_month(day),
                           g_date_time_get_day_of_month(day), h, m, 0);
}

/* The first run of job strictly after after_ms. */
static int64_t next_run(const struct job *j, int64_t after_ms)
{
    GDateTime *day = local_of(after_ms);
    int64_t out = 0;
    for (int i = 0; i < 40 && !out; i++) {
        GDateTime *run = at_time(day, j->hour, j->minute); /* NULL in a DST gap */
        bool ok =
            run &&
            (j->kind != JOB_SELFEVAL || g_date_time_get_day_of_month(run) <= selfeval_last_day) &&
            (j->kind != JOB_CONFIRM || g_date_time_get_day_of_month(run) == confirm_day);
        if (ok && ms_of(run) > after_ms)
            out = ms_of(run);
        if (run)
            g_date_time_unref(run);
        GDateTime *next = g_date_time_add_days(day, 1);
        g_date_time_unref(day);
        day = next;
    }
    g_date_time_unref(day);
    return out;
}

static int64_t cutoff_of(const struct job *j, int64_t run_ms)
{
    GDateTime *day = local_of(run_ms);
    GDateTime *c = j->cutoff_hour == 24 ? at_time(day, 23, 59)
                                        : at_time(day, j->cutoff_hour, j->cutoff_minute);
    int64_t ms = c ? ms_of(c) + (j->cutoff_hour == 24 ? 60000 : 0) : run_ms + 3600000;
    if (c)
        g_date_time_unref(c);
    g_date_time_unref(day);
    return ms;
}

/* ------------------------------------------------------------ runs */

static char *deadline_id(const struct job *j)
{
    return g_strconcat(DEADLINE_PREFIX, j->name, NULL);
}

static int schedule(struct job *j, int64_t run_ms)
{
    char *did = deadline_id(j);
    char *date = date_of(run_ms);
    json_t *p = json_pack("{s:s, s:s}", "job", j->name, "date", date);
    int rc = store_deadline_set(store, did, run_ms, p);
    if (rc == STORE_OK) {
        log_info("reminders", "job=%s next run %s (%" G_GINT64_FORMAT ")", j->name, date, run_ms);
        j->due_ms = run_ms;
        g_free(j->due_date);
        j->due_date = g_strdup(date);
    }
    json_decref(p);
    g_free(date);
    g_free(did);
    return rc;
}

static bool last_journal(int64_t seq, json_t *item, void *ud)
{
    (void)seq;
    *(char **)ud = g_strdup(jx_str(json_object_get(item, "payload"), "date"));
    return false;
}

/* Runs a job whose pushes the records compose, then notes the run in the
 * job's journal. The runner's pushes and the note are written in the same
 * turn of the loop, so the store's batch makes them durable together (a
 * crash before the commit loses both, and nothing was sent). */
static int run_composed(const struct job *j, const char *date, const char *journal)
{
    reminder_run_fn fn = j->kind == JOB_SUMMARY ? summary_fn : confirm_fn;
    void *ud = j->kind == JOB_SUMMARY ? summary_ud : confirm_ud;
    if (!fn)
        return STORE_OK;
    int n = fn(store, date, reminders_now_ms(), ud);
    if (n < 0)
        return n;
    json_t *note =
        json_pack("{s:{s:s, s:s, s:i}}", "payload", "job", j->name, "date", date, "pushes", n);
    int rc = store_seq_append(store, journal, note, NULL);
    json_decref(note);
    if (rc == STORE_OK)
        log_info("reminders", "job=%s date=%s sent %d push(es)", j->name, date, n);
    return rc;
}

/* With several nodes every one of them finds the same run due: the first
 * to create the run's claim ("reminder_claims/JOB/DATE", holding a lease
 * of CLAIM_LEASE_MS) runs it, the others pass. A node that dies holding a
 * claim delays the run until the lease is over; then another takes it
 * over, and the journal still tells whether it was sent. A node that
 * restarts holds its own claims again (the holder is the node's name). Returns 1 when
 * this node may run it, 0 when another holds it, or a store error. */
static int claim_run(const struct job *j, const char *date)
{
    char *id = g_strconcat(j->name, "/", date, NULL);
    const char *me = holder;
    int64_t now = reminders_now_ms();
    json_t *lease =
        json_pack("{s:s, s:I}", "holder", me, "until", (json_int_t)(now + CLAIM_LEASE_MS));
    int rc = store_doc_put(store, "reminder_claims", id, lease, true);
    if (rc == STORE_ECONFLICT) {
        json_t *held = NULL;
        rc = store_doc_get(store, "reminder_claims", id, &held);
        bool mine = rc == STORE_OK && g_strcmp0(jx_str(held, "holder"), me) == 0;
        if (rc == STORE_OK && (mine || json_integer_value(json_object_get(held, "until")) < now))
            rc = store_doc_put(store, "reminder_claims", id, lease, false); /* renewed, or lapsed */
        else if (rc == STORE_OK)
            rc = 0;
        json_decref(held);
    }
    json_decref(lease);
    g_free(id);
    return rc == STORE_OK ? 1 : rc;
}

/* Sends the run of job for date, unless its journal says it was sent. */
static int run_job(const struct job *j, const char *date)
{
    char *journal = g_strconcat(JOURNAL_PREFIX, j->name, NULL);
    char *last = NULL;
    int claimed = claim_run(j, date);
    if (claimed <= 0) {
        if (claimed == 0)
            log_info("reminders", "job=%s date=%s is run by another node", j->name, date);
        g_free(journal);
        return claimed;
    }
    int rc = store_seq_range(store, journal, 0, 1, true, last_journal, &last);
    if (rc == STORE_OK && last && strcmp(last, date) == 0) {
        log_info("reminders", "job=%s date=%s was already sent", j->name, date);
        goto out;
    }
    if (rc == STORE_OK && (j->kind == JOB_SUMMARY || j->kind == JOB_CONFIRM)) {
        rc = run_composed(j, date, journal);
        goto out;
    }
    GPtrArray *users = g_ptr_array_new_with_free_func(g_free);
    if (rc == STORE_OK)
        rc = j->kind == JOB_COMMITMENT
                 ? (commitment_fn ? commitment_fn : standin_commitment)(store, date, users,
                                                                        commitment_ud)
                 : (selfeval_fn ? selfeval_fn : standin_selfeval)(store, date, users, selfeval_ud);
    if (rc == STORE_OK) {
        char month[8];
        g_strlcpy(month, date, sizeof(month));
        json_t *payload = j->kind == JOB_COMMITMENT
                              ? json_pack("{s:s, s:s, s:s}", "job", j->name, "reminder",
                                          "commitment", "date", date)
                              : json_pack("{s:s, s:s, s:s, s:s}", "job", j->name, "reminder",
                                          "selfeval", "date", date, "month", month);
        char body[160];
        if (j->kind == JOB_COMMITMENT)
            g_snprintf(body, sizeof(body), "请于 %02d:%02d 前填报今日（%s）安全承诺。",
                       j->cutoff_hour, j->cutoff_minute, date);
        else
            g_snprintf(body, sizeof(body), "请于本月 %d 日前完成 %s 监管自评。", selfeval_last_day,
                       month);
        rc = inbox_push_many_journaled(
            (const char *const *)users->pdata, (int)users->len, journal, "reminder", "normal",
            REMINDER_TTL_S, j->kind == JOB_COMMITMENT ? "安全承诺填报提醒" : "监管自评提醒", body,
            payload, NULL);
        json_decref(payload);
        if (rc == STORE_OK)
            log_info("reminders", "job=%s date=%s sent to %u users", j->name, date, users->len);
    }
    g_ptr_array_free(users, TRUE);
out:
    g_free(last);
    g_free(journal);
    return rc;
}

static struct job *find_job(const char *name)
{
    for (guint i = 0; i < jobs->len; i++) {
        struct job *j = g_ptr_array_index(jobs, i);
        if (strcmp(j->name, name) == 0)
            return j;
    }
    return NULL;
}

void reminders_tick(void)
{
    if (!store)
        return;
    int64_t now = reminders_now_ms();
    for (guint i = 0; i < jobs->len; i++) {
        struct job *j = g_ptr_array_index(jobs, i);
        if (!j->due_date || j->due_ms > now)
            continue;
        char *today = date_of(now);
        int rc = STORE_OK;
        if (strcmp(today, j->due_date) == 0 && now < cutoff_of(j, j->due_ms)) {
            if (now - j->due_ms > 60000)
                log_info("reminders", "job=%s date=%s catching up %" G_GINT64_FORMAT " s late",
                         j->name, j->due_date, (now - j->due_ms) / 1000);
            rc = run_job(j, j->due_date);
        } else {
            log_warn("reminders", "job=%s date=%s missed (server down past its cut-off)", j->name,
                     j->due_date);
        }
        g_free(today);
        /* Sent (or missed for good): store the next run. On a store error
         * the job stays due and is tried again next tick. */
        if (rc == STORE_OK)
            schedule(j, next_run(j, MAX(now, j->due_ms)));
    }
}

/* ------------------------------------------------------------ set-up */

static bool parse_hhmm(const char *s, int *h, int *m)
{
    char *end;
    long hh = strtol(s, &end, 10);
    if (end == s || *end != ':')
        return false;
    const char *ms = end + 1;
    long mm = strtol(ms, &end, 10);
    if (end == ms || *end || end - ms != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59)
        return false;
    *h = (int)hh;
    *m = (int)mm;
    return true;
}

static void job_free(gpointer p)
{
    struct job *j = p;
    g_free(j->due_date);
    g_free(j->name);
    g_free(j);
}

static struct job *job_new(const char *name, enum job_kind kind, int h, int m, int ch, int cm)
{
    struct job *j = g_new0(struct job, 1);
    j->name = g_strdup(name);
    j->kind = kind;
    j->hour = h;
    j->minute = m;
    j->cutoff_hour = ch;
    j->cutoff_minute = cm;
    return j;
}

/* Loads a stored rem/ deadline into its job (at start). */
static bool load_deadline(const char *id, int64_t due_ms, json_t *payload, void *ud)
{
    GPtrArray *stale = ud;
    if (!g_str_has_prefix(id, DEADLINE_PREFIX))
        return true;
    struct job *j = find_job(id + strlen(DEADLINE_PREFIX));
    const char *date = jx_str(payload, "date");
    if (!j) { /* a job no longer configured: deleted after the scan */
        g_ptr_array_add(stale, g_strdup(id));
    } else if (date) {
        j->due_ms = due_ms;
        g_free(j->due_date);
        j->due_date = g_strdup(date);
    }
    return true;
}

int reminders_init(struct store *st, const struct reminders_config *cfg, char **err)
{
    g_free(holder);
    holder = g_strdup(cfg->holder ? cfg->holder : "this node");
    tz = g_time_zone_new_identifier(cfg->tz);
    if (!tz) {
        *err = g_strdup_printf("unknown time zone '%s'", cfg->tz);
        return -1;
    }
    int ch, cm, sh, sm;
    if (!parse_hhmm(cfg->commitment_cutoff, &ch, &cm) ||
        !parse_hhmm(cfg->selfeval_time, &sh, &sm)) {
        *err = g_strdup("reminder times must be HH:MM");
        goto fail;
    }
    jobs = g_ptr_array_new_with_free_func(job_free);
    gchar **times = g_strsplit(cfg->commitment_times, ",", -1);
    for (gchar **t = times; *t; t++) {
        int h, m;
        g_strstrip(*t);
        if (!**t)
            continue;
        if (!parse_hhmm(*t, &h, &m) || jobs->len >= 8) {
            *err = g_strdup_printf("commitment reminder times must be up to 8 HH:MM, got '%s'", *t);
            g_strfreev(times);
            goto fail;
        }
        char name[32];
        g_snprintf(name, sizeof(name), "commitment.%02d%02d", h, m);
        if (!find_job(name))
            g_ptr_array_add(jobs, job_new(name, JOB_COMMITMENT, h, m, ch, cm));
    }
    g_strfreev(times);
    g_ptr_array_add(jobs, job_new("selfeval", JOB_SELFEVAL, sh, sm, 24, 0));
    g_ptr_array_add(jobs, job_new("summary", JOB_SUMMARY, ch, cm, 24, 0));
    if (cfg->confirm_day > 0)
        g_ptr_array_add(jobs, job_new("confirm", JOB_CONFIRM, sh, sm, 24, 0));
    selfeval_last_day = cfg->selfeval_last_day;
    confirm_day = cfg->confirm_day;
    store = st;

    /* The stored runs are the truth; the jobs keep a copy. A job without a
     * stored next run starts from now: a new install does not send what
     * was due before it existed. */
    GPtrArray *stale = g_ptr_array_new_with_free_func(g_free);
    int rc = store_deadline_due(st, INT64_MAX, 0, load_deadline, stale);
    for (guint i = 0; rc == STORE_OK && i < stale->len; i++) {
        log_info("reminders", "dropping the schedule of %s (no longer configured)",
                 (char *)g_ptr_array_index(stale, i));
        store_deadline_delete(st, g_ptr_array_index(stale, i));
    }
    g_ptr_array_free(stale, TRUE);
    int64_t now = reminders_now_ms();
    for (guint i = 0; rc == STORE_OK && i < jobs->len; i++) {
        struct job *j = g_ptr_array_index(jobs, i);
        if (!j->due_date)
            rc = schedule(j, next_run(j, now));
    }
    if (rc != STORE_OK) {
        *err = g_strdup("cannot store the reminder schedule");
        store = NULL;
        goto fail;
    }
    return 0;
fail:
    if (jobs)
        g_ptr_array_free(jobs, TRUE);
    jobs = NULL;
    g_time_zone_unref(tz);
    tz = NULL;
    return -1;
}

void reminders_shutdown(void)
{
    g_free(holder);
    holder = NULL;
    if (jobs)
        g_ptr_array_free(jobs, TRUE);
    jobs = NULL;
    if (tz)
        g_time_zone_unref(tz);
    tz = NULL;
    store = NULL;
}
