/* Daily commitment announcements (see commitment.h). */
#include "records/commitment.h"

#include "common/clock.h"
#include "common/turns.h"

#include <glib.h>
#include <string.h>

#define COUNT_MAX 100000
#define COMMITTER_MAX 64

const char *const commitment_special_ops[10] = {
    "hot_work_special", "hot_work_1", "hot_work_2", "confined_space", "blind_plate",
    "height",           "lifting",    "temp_power", "excavation",     "road_closure",
};

int commitment_init(struct store *st)
{
    static const char *const fields[] = {"date", "division", "enterprise"};
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
        int rc = store_index_define(st, "commitments", fields[i], false);
        if (rc != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

/* An integer field in [0, COUNT_MAX]; absent reads as def (or fails when
 * def < 0). */
static bool count(const json_t *obj, const char *key, int64_t def, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v && def >= 0) {
        *out = def;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > COUNT_MAX)
        return false;
    *out = json_integer_value(v);
    return true;
}

static bool text_ok(const json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    return s && s[0] && strlen(s) <= max && g_utf8_validate(s, -1, NULL);
}

static json_t *units(const json_t *in, const char **why)
{
    int64_t total, running, stopped;
    if (!json_is_object(in) || !count(in, "total", -1, &total) ||
        !count(in, "running", -1, &running) || !count(in, "stopped", -1, &stopped)) {
        *why = "units must be {total, running, stopped}, integers 0 to 100000";
        return NULL;
    }
    if (running + stopped != total) {
        *why = "units running + stopped must equal total";
        return NULL;
    }
    return json_pack("{s:I, s:I, s:I}", "total", (json_int_t)total, "running", (json_int_t)running,
                     "stopped", (json_int_t)stopped);
}

static json_t *special_ops(const json_t *in, const char **why)
{
    *why = "special_ops must be an object of counts (0 to 100000): hot_work_special, hot_work_1, "
           "hot_work_2, confined_space, blind_plate, height, lifting, temp_power, excavation, "
           "road_closure";
    if (!json_is_object(in))
        return NULL;
    json_t *out = json_object();
    size_t known = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(commitment_special_ops); i++) {
        int64_t n;
        if (!count(in, commitment_special_ops[i], 0, &n)) {
            json_decref(out);
            return NULL;
        }
        known += json_object_get(in, commitment_special_ops[i]) != NULL;
        json_object_set_new(out, commitment_special_ops[i], json_integer(n));
    }
    if (known != json_object_size(in)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* Each major hazard source of the approved record, reported once. */
static json_t *sources(const json_t *in, const json_t *enterprise, const char **why)
{
    const json_t *have = json_object_get(enterprise, "hazard_sources");
    GHashTable *major = g_hash_table_new(g_str_hash, g_str_equal);
    size_t i;
    json_t *s;
    json_array_foreach((json_t *)have, i, s)
    {
        if (json_is_true(json_object_get(s, "major")))
            g_hash_table_insert(major, (gpointer)json_string_value(json_object_get(s, "id")),
                                (gpointer)json_string_value(json_object_get(s, "name")));
    }
    json_t *out = json_array();
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    *why = NULL;
    if (in && !json_is_array(in))
        *why = "hazard_sources must be an array of {id, controlled}";
    json_array_foreach((json_t *)in, i, s)
    {
        const char *id = json_string_value(json_object_get(s, "id"));
        const json_t *ctl = json_object_get(s, "controlled");
        if (!id || !json_is_boolean(ctl) || json_object_size(s) != 2) {
            *why = "each hazard source must be {id, controlled: true|false}";
            break;
        }
        if (!g_hash_table_contains(major, id)) {
            *why = "a reported hazard source is not a major hazard source of the enterprise";
            break;
        }
        if (!g_hash_table_add(seen, (gpointer)id)) {
            *why = "a hazard source is reported twice";
            break;
        }
        json_array_append_new(out, json_pack("{s:s, s:s, s:O}", "id", id, "name",
                                             (const char *)g_hash_table_lookup(major, id),
                                             "controlled", ctl));
    }
    if (!*why && g_hash_table_size(seen) != g_hash_table_size(major))
        *why = "every major hazard source of the enterprise must be reported";
    g_hash_table_destroy(seen);
    g_hash_table_destroy(major);
    if (*why) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *commitment_validate(const json_t *in, const json_t *enterprise, const char **why)
{
    static const char *const known[] = {"id",
                                        "type",
                                        "enterprise",
                                        "date",
                                        "units",
                                        "hazard_sources",
                                        "special_ops",
                                        "trial_production",
                                        "pilot_test",
                                        "startup_shutdown",
                                        "units_maintenance",
                                        "contractors_on_site",
                                        "major_hidden_danger",
                                        "risk_grade",
                                        "committer",
                                        "statement"};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)in, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (!ok) {
            *why = "unknown commitment field";
            return NULL;
        }
    }
    json_t *u = units(json_object_get(in, "units"), why);
    if (!u)
        return NULL;
    json_t *out = json_pack("{s:o}", "units", u);
    json_t *hs = sources(json_object_get(in, "hazard_sources"), enterprise, why);
    json_t *ops = hs ? special_ops(json_object_get(in, "special_ops"), why) : NULL;
    if (!ops) {
        json_decref(hs);
        goto bad;
    }
    json_object_set_new(out, "hazard_sources", hs);
    json_object_set_new(out, "special_ops", ops);
    static const char *const flags[] = {"trial_production", "pilot_test", "startup_shutdown",
                                        "major_hidden_danger"};
    for (size_t i = 0; i < G_N_ELEMENTS(flags); i++) {
        json_t *b = json_object_get(in, flags[i]);
        if (!json_is_boolean(b)) {
            *why = "trial_production, pilot_test, startup_shutdown and major_hidden_danger must "
                   "be true or false";
            goto bad;
        }
        json_object_set(out, flags[i], b);
    }
    int64_t maint, contractors;
    if (!count(in, "units_maintenance", -1, &maint) ||
        !count(in, "contractors_on_site", -1, &contractors)) {
        *why = "units_maintenance and contractors_on_site must be integers 0 to 100000";
        goto bad;
    }
    json_object_set_new(out, "units_maintenance", json_integer(maint));
    json_object_set_new(out, "contractors_on_site", json_integer(contractors));
    json_t *grade = json_object_get(in, "risk_grade");
    if (!json_is_integer(grade) || json_integer_value(grade) < 1 || json_integer_value(grade) > 4) {
        *why = "risk_grade must be 1 (high), 2 (large), 3 (general) or 4 (low)";
        goto bad;
    }
    json_object_set(out, "risk_grade", grade);
    if (!text_ok(json_object_get(in, "committer"), COMMITTER_MAX)) {
        *why = "committer must be the principal's name, 1 to 64 bytes";
        goto bad;
    }
    json_object_set(out, "committer", json_object_get(in, "committer"));
    if (!text_ok(json_object_get(in, "statement"), COMMITMENT_STATEMENT_MAX)) {
        *why = "statement must be 1 to 2000 bytes of UTF-8";
        goto bad;
    }
    json_object_set(out, "statement", json_object_get(in, "statement"));
    return out;
bad:
    json_decref(out);
    return NULL;
}

static char *doc_id(const char *enterprise, const char *date)
{
    return g_strdup_printf("%s:%s", enterprise, date);
}

int commitment_get(struct store *st, const char *enterprise, const char *date, json_t **out)
{
    char *id = doc_id(enterprise, date);
    int rc = store_doc_get(st, "commitments", id, out);
    g_free(id);
    return rc;
}

/* Files with what was read: the enterprise's record (ent) and today's
 * commitment so far (prev, NULL if none), both taken; rc_prev the code of
 * that read. */
static enum err_code file_with(struct store *st, const char *enterprise, const char *actor,
                               const json_t *in, int64_t now_ms, int deadline_min, json_t *ent,
                               json_t *prev, int rc_prev, json_t **out, const char **why)
{
    char date[BIZDATE_LEN];
    bizdate_of(now_ms, date);
    const char *asked = json_string_value(json_object_get(in, "date"));
    json_t *doc = NULL;
    enum err_code e = ERR_NONE;
    int64_t deadline = 0;
    int rc = rc_prev;
    if (json_object_get(in, "date") && g_strcmp0(asked, date) != 0) {
        *why = "only today's commitment can be filed (date is the business date of now)";
        e = ERR_BAD_REQUEST;
        goto out;
    }
    doc = commitment_validate(in, ent, why);
    if (!doc) {
        e = ERR_BAD_REQUEST;
        goto out;
    }
    if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
        *why = "store unavailable";
        e = ERR_UNAVAILABLE;
        goto out;
    }
    json_t *history = prev ? json_object_get(prev, "previous") : NULL;
    history = history ? json_incref(history) : json_array();
    if (prev) {
        if (json_array_size(history) + 1 >= COMMITMENT_MAX_VERSIONS) {
            *why = "at most 20 versions of a commitment per day";
            json_decref(history);
            e = ERR_CONFLICT;
            goto out;
        }
        json_object_del(prev, "previous");
        json_array_append(history, prev);
    }
    bizdate_at(date, deadline_min, &deadline);
    bool late = now_ms > deadline;
    char *id = doc_id(enterprise, date);
    json_t *meta = json_pack(
        "{s:s, s:s, s:O, s:O, s:s, s:I, s:s, s:b, s:I}", "id", id, "enterprise", enterprise,
        "enterprise_name", json_object_get(ent, "name"), "division",
        json_object_get(ent, "division"), "date", date, "filed_at", (json_int_t)now_ms, "filed_by",
        actor, "version_late", late, "version", (json_int_t)json_array_size(history) + 1);
    json_object_update(doc, meta);
    json_decref(meta);
    /* the commitment is late when its first version was */
    json_t *first = json_array_get(history, 0);
    json_object_set_new(doc, "late",
                        json_boolean(first ? json_is_true(json_object_get(first, "late")) : late));
    json_object_set_new(
        doc, "first_filed_at",
        json_integer(first ? json_integer_value(json_object_get(first, "filed_at")) : now_ms));
    json_object_set_new(doc, "deadline_at", json_integer(deadline));
    json_object_set_new(doc, "previous", history);
    rc = store_doc_put(st, "commitments", id, doc, false);
    g_free(id);
    if (rc != STORE_OK) {
        *why = "store unavailable";
        e = ERR_UNAVAILABLE;
    } else {
        *out = json_incref(doc);
    }
out:
    json_decref(doc);
    json_decref(prev);
    json_decref(ent);
    return e;
}

enum err_code commitment_file(struct store *st, const char *enterprise, const char *actor,
                              const json_t *in, int64_t now_ms, int deadline_min, json_t **out,
                              const char **why)
{
    json_t *ent = NULL, *prev = NULL;
    int rc = store_doc_get(st, "enterprises", enterprise, &ent);
    if (rc != STORE_OK) {
        *why = rc == STORE_ENOTFOUND ? "no such enterprise" : "store unavailable";
        return rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
    }
    char date[BIZDATE_LEN];
    bizdate_of(now_ms, date);
    rc = commitment_get(st, enterprise, date, &prev);
    return file_with(st, enterprise, actor, in, now_ms, deadline_min, ent, prev, rc, out, why);
}

/* ------------------------------------------------------------ later */

/* A filing whose reads are out. An enterprise's filings are made one
 * after another (each reads the versions the one before wrote). */
struct filing {
    struct store *st;
    char *enterprise, *actor;
    json_t *in;
    int64_t now_ms;
    int deadline_min;
    commitment_filed_cb cb;
    void *ud;
    json_t *ent, *prev;
    int rc_ent, rc_prev, out;
};

static struct turns *filing; /* an enterprise's filings, one at a time */

/* (prev is given away by filing_done, or never read.) */
static void filing_free(struct filing *f)
{
    g_free(f->enterprise);
    g_free(f->actor);
    json_decref(f->in);
    json_decref(f->ent);
    g_free(f);
}

static void filing_done(struct filing *f)
{
    json_t *doc = NULL;
    const char *why = NULL;
    enum err_code e;
    if (f->rc_ent != STORE_OK) {
        e = f->rc_ent == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
        why = e == ERR_NOT_FOUND ? "no such enterprise" : "store unavailable";
        json_decref(f->prev);
    } else {
        e = file_with(f->st, f->enterprise, f->actor, f->in, f->now_ms, f->deadline_min, f->ent,
                      f->prev, f->rc_prev, &doc, &why);
        f->ent = NULL; /* taken */
    }
    f->cb(e, doc, why, f->ud);
    json_decref(doc);
    char *enterprise = g_strdup(f->enterprise);
    filing_free(f);
    turns_done(filing, enterprise); /* the enterprise's next filing reads now */
    g_free(enterprise);
}

static void on_filing_read(int rc, const struct store_docs *d, void *ud, bool is_ent)
{
    struct filing *f = ud;
    json_t *doc = rc == STORE_OK && d->n == 1 && d->docs[0] ? json_incref(d->docs[0]) : NULL;
    int code = rc != STORE_OK ? rc : doc ? STORE_OK : STORE_ENOTFOUND;
    if (is_ent) {
        f->ent = doc;
        f->rc_ent = code;
    } else {
        f->prev = doc;
        f->rc_prev = code;
    }
    if (--f->out == 0)
        filing_done(f);
}

static void on_ent_read(int rc, const struct store_docs *d, void *ud)
{
    on_filing_read(rc, d, ud, true);
}

static void on_prev_read(int rc, const struct store_docs *d, void *ud)
{
    on_filing_read(rc, d, ud, false);
}

static void filing_start(void *op)
{
    struct filing *f = op;
    char date[BIZDATE_LEN];
    bizdate_of(f->now_ms, date);
    char *id = doc_id(f->enterprise, date);
    const char *ents[] = {f->enterprise}, *ids[] = {id};
    f->out = 3; /* held while sending */
    f->rc_ent = f->rc_prev = STORE_EIO;
    if (store_docs_get_later(f->st, "enterprises", ents, 1, on_ent_read, f) != STORE_OK)
        f->out--;
    if (store_docs_get_later(f->st, "commitments", ids, 1, on_prev_read, f) != STORE_OK)
        f->out--;
    g_free(id);
    if (--f->out == 0)
        filing_done(f);
}

void commitment_file_later(struct store *st, const char *enterprise, const char *actor,
                           const json_t *in, int64_t now_ms, int deadline_min,
                           commitment_filed_cb cb, void *ud)
{
    if (!store_reads_later(st)) {
        json_t *doc = NULL;
        const char *why = NULL;
        enum err_code e =
            commitment_file(st, enterprise, actor, in, now_ms, deadline_min, &doc, &why);
        cb(e, doc, why, ud);
        json_decref(doc);
        return;
    }
    struct filing *f = g_new0(struct filing, 1);
    f->st = st;
    f->enterprise = g_strdup(enterprise);
    f->actor = g_strdup(actor);
    f->in = json_deep_copy(in);
    f->now_ms = now_ms;
    f->deadline_min = deadline_min;
    f->cb = cb;
    f->ud = ud;
    if (!filing)
        filing = turns_new();
    if (turns_add(filing, enterprise, filing_start, f))
        return;
    cb(ERR_BUSY, NULL, "too many of the enterprise's filings waiting for the store", ud);
    filing_free(f);
}

struct tally {
    int64_t should, filed, late, grade[4];
};

static json_t *tally_json(const struct tally *t)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}}", "should_file",
                     (json_int_t)t->should, "filed", (json_int_t)t->filed, "late",
                     (json_int_t)t->late, "missing", (json_int_t)(t->should - t->filed), "by_grade",
                     "1", (json_int_t)t->grade[0], "2", (json_int_t)t->grade[1], "3",
                     (json_int_t)t->grade[2], "4", (json_int_t)t->grade[3]);
}

static void tally_add(struct tally *t, const json_t *c)
{
    t->should++;
    if (!c)
        return;
    t->filed++;
    t->late += json_is_true(json_object_get(c, "late"));
    int64_t g = json_integer_value(json_object_get(c, "risk_grade"));
    if (g >= 1 && g <= 4)
        t->grade[g - 1]++;
}

static bool collect_doc(const char *id, json_t *doc, void *ud)
{
    g_hash_table_insert(ud, g_strdup(id), json_incref(doc));
    return true;
}

static bool collect_by_enterprise(const char *id, json_t *doc, void *ud)
{
    (void)id;
    const char *e = json_string_value(json_object_get(doc, "enterprise"));
    if (e)
        g_hash_table_insert(ud, g_strdup(e), json_incref(doc));
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int commitment_day(struct store *st, const char *date, const char *division, const char *only,
                   int deadline_min, json_t **out)
{
    GHashTable *ents =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)json_decref);
    GHashTable *filed =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)json_decref);
    GHashTable *districts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    int rc;
    if (only) {
        json_t *doc = NULL;
        rc = store_doc_get(st, "enterprises", only, &doc);
        if (rc == STORE_OK)
            g_hash_table_insert(ents, g_strdup(only), doc);
    } else {
        rc = store_index_find(st, "enterprises", "division", division, true, collect_doc, ents);
    }
    if (rc == STORE_OK)
        rc = store_index_find(st, "commitments", "date", date, false, collect_by_enterprise, filed);
    if (rc != STORE_OK)
        goto done;
    guint n = 0;
    gpointer *ids = g_hash_table_get_keys_as_array(ents, &n);
    qsort(ids, n, sizeof(*ids), cmp_str);
    json_t *list = json_array(), *missing = json_array();
    struct tally total = {0};
    for (guint i = 0; i < n; i++) {
        json_t *e = g_hash_table_lookup(ents, ids[i]);
        json_t *c = g_hash_table_lookup(filed, ids[i]);
        const char *div = json_string_value(json_object_get(e, "division"));
        if (!div)
            continue; /* every enterprise has one; never trust a document blindly */
        struct tally *t = g_hash_table_lookup(districts, div);
        if (!t) {
            t = g_new0(struct tally, 1);
            g_hash_table_insert(districts, (gpointer)div, t);
        }
        tally_add(t, c);
        tally_add(&total, c);
        if (c) {
            json_t *cur = json_deep_copy(c);
            json_object_set_new(
                cur, "versions",
                json_integer((json_int_t)json_array_size(json_object_get(c, "previous")) + 1));
            json_object_del(cur, "previous");
            json_array_append_new(list, cur);
        } else {
            json_array_append_new(missing,
                                  json_pack("{s:s, s:O, s:O}", "enterprise", (const char *)ids[i],
                                            "name", json_object_get(e, "name"), "division",
                                            json_object_get(e, "division")));
        }
    }
    guint nd = 0;
    gpointer *divs = g_hash_table_get_keys_as_array(districts, &nd);
    qsort(divs, nd, sizeof(*divs), cmp_str);
    json_t *rollup = json_array();
    for (guint i = 0; i < nd; i++) {
        json_t *d = tally_json(g_hash_table_lookup(districts, divs[i]));
        json_object_set_new(d, "division", json_string(divs[i]));
        json_array_append_new(rollup, d);
    }
    int64_t deadline = 0;
    bizdate_at(date, deadline_min, &deadline);
    char hhmm[8];
    g_snprintf(hhmm, sizeof(hhmm), "%02d:%02d", deadline_min / 60, deadline_min % 60);
    *out = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o}", "date", date, "division", division,
                     "deadline", hhmm, "deadline_at", (json_int_t)deadline, "commitments", list,
                     "missing", missing, "districts", rollup, "totals", tally_json(&total));
    g_free(divs);
    g_free(ids);
done:
    g_hash_table_destroy(districts);
    g_hash_table_destroy(filed);
    g_hash_table_destroy(ents);
    return rc;
}
