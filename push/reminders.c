/* The reminders scheduler (see reminders.h), on GLib's time zones and the
 * store's deadlines. */
#include "push/reminders.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/inbox.h"
#include "records/account.h"
#include "records/store_replay.h"

#include <stdlib.h>
#include <string.h>

#define DEADLINE_PREFIX "rem/"
#define JOURNAL_PREFIX "reminders/"
#define REMINDER_TTL_S 86400
#define CLAIM_LEASE_MS (10 * 60 * 1000)
#define TAKE_MAX 16 /* jobs: at most 8 commitment times and 3 more */

enum job_kind { JOB_COMMITMENT, JOB_SELFEVAL, JOB_SUMMARY, JOB_CONFIRM };

struct job {
    char *name;
    enum job_kind kind;
    int hour, minute;               /* run time, business time zone */
    int cutoff_hour, cutoff_minute; /* no catch-up at or after this */
    int64_t try_ms;      /* when to try taking its run (the stored deadline rem/NAME, as known) */
    int64_t lease_until; /* of the take under way */
    bool asked;          /* in the take under way */
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
    if (rc == STORE_OK)
        log_info("reminders", "job=%s next run %s (%" G_GINT64_FORMAT ")", j->name, date, run_ms);
    /* a failed write: tried again soon, the run taken where it is (at its
     * lease's end it is found sent, and the next one stored) */
    j->try_ms = rc == STORE_OK ? run_ms : MIN(run_ms, reminders_now_ms() + 1000);
    json_decref(p);
    g_free(date);
    g_free(did);
    return rc;
}

/* ------------------------------------------------------------ taking runs
 *
 * With several nodes every one of them finds the same run due. A node
 * takes it by moving its deadline to a lease (CLAIM_LEASE_MS, rewritten
 * with the node's name), in one store step that only one node's take can
 * win (store_deadlines_take_later); the others find it not due. A node
 * that dies holding a run delays it until the lease is over, then another
 * takes it, and the journal still tells whether it was sent; a node that
 * restarts makes its own leases due again at once. Nothing here waits for
 * the store on the loop: the take is answered later, and a run reads what
 * it needs through a replay (records/store_replay.h), run again once its
 * reads are in; its pushes and journal entry are one write sent without
 * waiting, and the run is over when that write is stored. */

static struct job *find_job(const char *name)
{
    for (guint i = 0; i < jobs->len; i++) {
        struct job *j = g_ptr_array_index(jobs, i);
        if (strcmp(j->name, name) == 0)
            return j;
    }
    return NULL;
}

struct run {
    uint64_t serial;
    struct job *j;
    char *date;
    int64_t due_ms; /* when it was due, before any lease */
    struct store_replay *rp;
    unsigned users; /* pushed to */
    bool in_body;   /* told of its write from inside the run */
    bool told;
    int told_rc;
};

#define TAKE_RUNS_MAX 4 /* runs of a replay before its reads are waited for */

struct waiter {
    void (*fn)(void *ud);
    void *ud;
};

static GQueue queued = G_QUEUE_INIT; /* struct run*, taken, run in turn */
static struct run *running;          /* its reads or its write are out */
static uint64_t run_serial;
static bool taking;     /* a take sent, not answered */
static bool again;      /* ticked while busy: once more after */
static bool stepping;   /* inside step(): runs done are followed there */
static GArray *waiters; /* struct waiter, told once nothing is out */
static bool restored;   /* a dropped schedule was stored again this tick */

static void step(void);

static void run_free(struct run *r)
{
    store_replay_free(r->rp);
    g_free(r->date);
    g_free(r);
}

static bool last_journal(int64_t seq, json_t *item, void *ud)
{
    (void)seq;
    *(char **)ud = g_strdup(jx_str(json_object_get(item, "payload"), "date"));
    return false;
}

/* Its deadline back where it was before it was taken: due again at once
 * (a run that failed, or one this node stops before it is done). */
static void put_back(const struct run *r)
{
    char *did = deadline_id(r->j);
    json_t *p = json_pack("{s:s, s:s}", "job", r->j->name, "date", r->date);
    if (store_deadline_set(store, did, r->due_ms, p) != STORE_OK)
        log_warn("reminders", "job=%s date=%s stays leased until its lease ends", r->j->name,
                 r->date);
    json_decref(p);
    g_free(did);
}

/* A run is over: rc STORE_OK (sent, found sent, or missed) stores the
 * job's next run; else it is due again, tried at the next tick. */
static void finish(struct run *r, int rc)
{
    if (running == r)
        running = NULL;
    int64_t now = reminders_now_ms();
    if (rc == STORE_OK) {
        schedule(r->j, next_run(r->j, MAX(now, r->due_ms)));
    } else {
        log_warn("reminders", "job=%s date=%s not sent (store error %d): tried again", r->j->name,
                 r->date, rc);
        put_back(r);
        r->j->try_ms = now + 1000;
    }
    run_free(r);
    step();
}

/* The write of a run's pushes and journal entry was stored (or failed). */
static void on_journaled(int rc, const int64_t *seqs, int n, void *ud)
{
    (void)seqs;
    (void)n;
    struct run *r = running;
    if (!r || r->serial != GPOINTER_TO_SIZE(ud))
        return; /* shut down meanwhile */
    if (r->in_body) {
        r->told = true;
        r->told_rc = rc;
        return;
    }
    if (rc == STORE_OK)
        log_info("reminders", "job=%s date=%s sent to %u users", r->j->name, r->date, r->users);
    finish(r, rc);
}

/* A composed job's push: sent with the run's write batch. */
static int push_composed(const char *const *user_ids, int n, const char *kind, const char *priority,
                         int64_t ttl_s, const char *title, const char *body, json_t *payload,
                         int64_t *seqs_out)
{
    (void)seqs_out; /* not known yet: the write is answered later */
    int rc = inbox_push_many_then(user_ids, n, NULL, kind, priority, ttl_s, title, body, payload,
                                  NULL, NULL);
    if (rc == STORE_OK && running)
        running->users += (unsigned)n;
    return rc;
}

/* The pushes of a run: STORE_PENDING once its write is sent (told by
 * on_journaled), STORE_OK if the journal says it was sent, else the
 * error that stopped it (STORE_EAGAIN: a read is out, see attempt()). */
static int run_body(struct run *r)
{
    const struct job *j = r->j;
    char *journal = g_strconcat(JOURNAL_PREFIX, j->name, NULL), *last = NULL;
    void *serial = GSIZE_TO_POINTER(r->serial);
    GPtrArray *users = g_ptr_array_new_with_free_func(g_free);
    int rc = store_seq_range(store, journal, 0, 1, true, last_journal, &last);
    if (rc == STORE_OK && last && strcmp(last, r->date) == 0) {
        log_info("reminders", "job=%s date=%s was already sent", j->name, r->date);
        goto out;
    }
    if (rc == STORE_OK && (j->kind == JOB_SUMMARY || j->kind == JOB_CONFIRM)) {
        reminder_run_fn fn = j->kind == JOB_SUMMARY ? summary_fn : confirm_fn;
        void *ud = j->kind == JOB_SUMMARY ? summary_ud : confirm_ud;
        int n = fn ? fn(store, r->date, reminders_now_ms(), push_composed, ud) : 0;
        if (n < 0) {
            rc = n;
            goto out;
        }
        json_t *note = json_pack("{s:s, s:s, s:i}", "job", j->name, "date", r->date, "pushes", n);
        rc = inbox_push_many_then(NULL, 0, journal, "reminder", "normal", REMINDER_TTL_S, NULL,
                                  NULL, note, on_journaled, serial);
        json_decref(note);
        rc = rc == STORE_OK ? STORE_PENDING : rc;
        goto out;
    }
    if (rc == STORE_OK)
        rc = j->kind == JOB_COMMITMENT
                 ? (commitment_fn ? commitment_fn : standin_commitment)(store, r->date, users,
                                                                        commitment_ud)
                 : (selfeval_fn ? selfeval_fn : standin_selfeval)(store, r->date, users,
                                                                  selfeval_ud);
    if (rc == STORE_OK) {
        char month[8];
        g_strlcpy(month, r->date, sizeof(month));
        json_t *payload = j->kind == JOB_COMMITMENT
                              ? json_pack("{s:s, s:s, s:s}", "job", j->name, "reminder",
                                          "commitment", "date", r->date)
                              : json_pack("{s:s, s:s, s:s, s:s}", "job", j->name, "reminder",
                                          "selfeval", "date", r->date, "month", month);
        char body[160];
        if (j->kind == JOB_COMMITMENT)
            g_snprintf(body, sizeof(body), "请于 %02d:%02d 前填报今日（%s）安全承诺。",
                       j->cutoff_hour, j->cutoff_minute, r->date);
        else
            g_snprintf(body, sizeof(body), "请于本月 %d 日前完成 %s 监管自评。", selfeval_last_day,
                       month);
        r->users = users->len;
        rc = inbox_push_many_then((const char *const *)users->pdata, (int)users->len, journal,
                                  "reminder", "normal", REMINDER_TTL_S,
                                  j->kind == JOB_COMMITMENT ? "安全承诺填报提醒" : "监管自评提醒",
                                  body, payload, on_journaled, serial);
        json_decref(payload);
        rc = rc == STORE_OK ? STORE_PENDING : rc;
    }
out:
    g_ptr_array_free(users, TRUE);
    g_free(last);
    g_free(journal);
    return rc;
}

static void attempt(struct run *r);

static void on_reads_in(void *ud)
{
    if (running && running->serial == GPOINTER_TO_SIZE(ud))
        attempt(running);
}

/* One run of r's body: against its replay where the store's reads travel;
 * a run that lacked a read is run again once its reads are in. */
static void attempt(struct run *r)
{
    if (r->rp)
        store_replay_begin(r->rp);
    r->in_body = true;
    int rc = run_body(r);
    r->in_body = false;
    int sent = r->rp ? store_replay_end(r->rp) : 0;
    if (sent > 0) {
        r->users = 0;
        store_replay_rerun(r->rp, TAKE_RUNS_MAX, on_reads_in, GSIZE_TO_POINTER(r->serial));
        return;
    }
    if (rc == STORE_PENDING && !r->told)
        return; /* on_journaled tells */
    if (rc == STORE_PENDING) {
        rc = r->told_rc;
        if (rc == STORE_OK)
            log_info("reminders", "job=%s date=%s sent to %u users", r->j->name, r->date, r->users);
    }
    finish(r, rc);
}

/* Runs a taken run: sent, unless it is too late for it. */
static void start(struct run *r)
{
    int64_t now = reminders_now_ms();
    char *today = date_of(now);
    bool late = strcmp(today, r->date) != 0 || now >= cutoff_of(r->j, r->due_ms);
    g_free(today);
    running = r;
    if (late) {
        log_warn("reminders", "job=%s date=%s missed (server down past its cut-off)", r->j->name,
                 r->date);
        finish(r, STORE_OK);
        return;
    }
    if (now - r->due_ms > 60000)
        log_info("reminders", "job=%s date=%s catching up %" G_GINT64_FORMAT " s late", r->j->name,
                 r->date, (now - r->due_ms) / 1000);
    r->rp = store_replay_new(store);
    attempt(r);
}

static void take(void);

/* Nothing is out: the waiters are told. */
static void settle(void)
{
    if (!waiters || !waiters->len)
        return;
    GArray *told = waiters;
    waiters = g_array_new(FALSE, FALSE, sizeof(struct waiter));
    for (guint i = 0; i < told->len; i++) {
        struct waiter *w = &g_array_index(told, struct waiter, i);
        w->fn(w->ud);
    }
    g_array_free(told, TRUE);
}

/* Starts the runs taken, one at a time; once none is left, takes again
 * if a tick came meanwhile, else tells the waiters. */
static void step(void)
{
    if (stepping)
        return;
    stepping = true;
    struct run *r;
    while (!running && (r = g_queue_pop_head(&queued)))
        start(r);
    stepping = false;
    if (running || taking || !store)
        return;
    if (again) {
        again = false;
        take();
        return;
    }
    settle();
}

/* A run taken: queued, and its lease named so that this node takes it
 * again at once if it restarts. */
static void queue_run(struct job *j, const char *id, json_t *p, int64_t taken_due)
{
    struct run *r = g_new0(struct run, 1);
    r->serial = ++run_serial;
    r->j = j;
    r->date = g_strdup(jx_str(p, "date"));
    r->due_ms = jx_int(p, "due", taken_due);
    json_t *lease = json_pack("{s:s, s:s, s:I, s:s}", "job", j->name, "date", r->date, "due",
                              (json_int_t)r->due_ms, "holder", holder);
    if (store_deadline_set(store, id, j->lease_until, lease) != STORE_OK)
        log_warn("reminders", "job=%s date=%s: its lease is not named", j->name, r->date);
    json_decref(lease);
    g_queue_push_tail(&queued, r);
}

static void on_taken(int rc, const struct store_docs *d, void *ud)
{
    (void)ud;
    taking = false;
    if (!store)
        return; /* shut down meanwhile */
    if (rc != STORE_OK)
        log_warn("reminders", "cannot take the runs due (store error %d): tried again", rc);
    for (int i = 0; rc == STORE_OK && i < d->n; i++) {
        struct job *j = find_job(d->ids[i] + strlen(DEADLINE_PREFIX));
        json_t *doc = d->docs[i], *p = json_object_get(doc, "payload");
        if (!j || !j->asked)
            continue;
        if (!doc) {
            /* dropped by a node that does not know the job (another
             * configuration, during a rolling change): stored again where
             * this node had it, and taken again at once */
            log_warn("reminders", "job=%s: its schedule was dropped elsewhere; stored again",
                     j->name);
            if (schedule(j, j->try_ms) == STORE_OK && !restored)
                again = restored = true; /* once a tick */
        } else if (json_is_true(json_object_get(doc, "taken")) && jx_str(p, "date")) {
            queue_run(j, d->ids[i], p, jx_int(doc, "due_ms", 0));
        } else if (json_is_true(json_object_get(doc, "taken"))) {
            log_warn("reminders", "job=%s: its schedule was unreadable; stored again", j->name);
            schedule(j, next_run(j, reminders_now_ms()));
        } else {
            /* run by another node (it is then at the next run), or held
             * until its lease is over */
            j->try_ms = jx_int(doc, "due_ms", reminders_now_ms() + 1000);
        }
    }
    for (guint i = 0; i < jobs->len; i++)
        ((struct job *)g_ptr_array_index(jobs, i))->asked = false;
    step();
}

/* Takes, in one step of the store, the runs due by this node's clock. */
static void take(void)
{
    int64_t now = reminders_now_ms();
    const char *ids[TAKE_MAX];
    char *owned[TAKE_MAX];
    int n = 0;
    for (guint i = 0; i < jobs->len && n < TAKE_MAX; i++) {
        struct job *j = g_ptr_array_index(jobs, i);
        if (j->try_ms > now)
            continue;
        j->asked = true;
        j->lease_until = now + CLAIM_LEASE_MS;
        ids[n] = owned[n] = deadline_id(j);
        n++;
    }
    if (n) {
        taking = store_deadlines_take_later(store, ids, n, now, now + CLAIM_LEASE_MS, on_taken,
                                            NULL) == STORE_OK;
        if (!taking)
            log_warn("reminders", "cannot take the runs due: tried again");
    }
    for (int i = 0; i < n; i++)
        g_free(owned[i]);
    if (!taking) {
        for (guint i = 0; i < jobs->len; i++)
            ((struct job *)g_ptr_array_index(jobs, i))->asked = false;
        step();
    }
}

void reminders_tick_then(void (*done)(void *ud), void *ud)
{
    if (!store) {
        if (done)
            done(ud);
        return;
    }
    if (done)
        g_array_append_val(waiters, ((struct waiter){done, ud}));
    restored = false;
    if (taking || running || !g_queue_is_empty(&queued)) {
        again = true;
        return;
    }
    take();
}

void reminders_tick(void)
{
    reminders_tick_then(NULL, NULL);
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

struct loading {
    int64_t now;
    GPtrArray *stale; /* ids of jobs no longer configured */
    json_t *mine;     /* [[id, due, date], ...]: leases of this node's previous run */
};

/* Loads a stored rem/ deadline into its job (at start). */
static bool load_deadline(const char *id, int64_t due_ms, json_t *payload, void *ud)
{
    struct loading *l = ud;
    if (!g_str_has_prefix(id, DEADLINE_PREFIX))
        return true;
    struct job *j = find_job(id + strlen(DEADLINE_PREFIX));
    const char *date = jx_str(payload, "date");
    if (!j) { /* a job no longer configured: deleted after the scan */
        g_ptr_array_add(l->stale, g_strdup(id));
    } else if (date) {
        j->try_ms = due_ms;
        if (due_ms > l->now && g_strcmp0(jx_str(payload, "holder"), holder) == 0) {
            j->try_ms = jx_int(payload, "due", l->now);
            json_array_append_new(l->mine, json_pack("[s, I, s]", id, (json_int_t)j->try_ms, date));
        }
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
    int64_t now = reminders_now_ms();
    struct loading l = {now, g_ptr_array_new_with_free_func(g_free), json_array()};
    int rc = store_deadline_due(st, INT64_MAX, 0, load_deadline, &l);
    for (guint i = 0; rc == STORE_OK && i < l.stale->len; i++) {
        log_info("reminders", "dropping the schedule of %s (no longer configured)",
                 (char *)g_ptr_array_index(l.stale, i));
        store_deadline_delete(st, g_ptr_array_index(l.stale, i));
    }
    /* Runs this node held when it stopped: due again at once, here. */
    size_t k;
    json_t *m;
    json_array_foreach(l.mine, k, m)
    {
        const char *id = json_string_value(json_array_get(m, 0));
        const char *date = json_string_value(json_array_get(m, 2));
        json_t *p = json_pack("{s:s, s:s}", "job", id + strlen(DEADLINE_PREFIX), "date", date);
        if (rc == STORE_OK)
            rc = store_deadline_set(st, id, json_integer_value(json_array_get(m, 1)), p);
        json_decref(p);
        log_info("reminders", "job=%s date=%s was held by this node: due again",
                 id + strlen(DEADLINE_PREFIX), date);
    }
    g_ptr_array_free(l.stale, TRUE);
    json_decref(l.mine);
    for (guint i = 0; rc == STORE_OK && i < jobs->len; i++) {
        struct job *j = g_ptr_array_index(jobs, i);
        if (!j->try_ms)
            rc = schedule(j, next_run(j, now));
    }
    waiters = g_array_new(FALSE, FALSE, sizeof(struct waiter));
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
    /* runs taken and not done: due again at once, here or elsewhere (one
     * whose write went out finds it in its journal) */
    struct run *r;
    while (store && (r = running ? running : g_queue_pop_head(&queued))) {
        running = NULL;
        put_back(r);
        run_free(r);
    }
    if (waiters)
        g_array_free(waiters, TRUE);
    waiters = NULL;
    taking = again = false;
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
