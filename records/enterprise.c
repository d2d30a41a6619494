/* The enterprise file and its review workflow (see enterprise.h). */
#include "records/enterprise.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "records/credit_code.h"
#include "records/geo.h"
#include "records/hazard.h"
#include "records/jurisdiction.h"
#include "records/org.h"

#include <glib.h>
#include <string.h>

#define DRAFTS "enterprise_drafts"
#define TEXT_MAX 200
#define ADDRESS_MAX 500
#define PERSON_NAME_MAX 64

const char *const enterprise_processes[ENTERPRISE_PROCESSES] = {
    "光气及光气化工艺", "电解工艺(氯碱)", "氯化工艺",   "硝化工艺",   "合成氨工艺",
    "裂解(裂化)工艺",   "氟化工艺",       "加氢工艺",   "重氮化工艺", "氧化工艺",
    "过氧化工艺",       "胺基化工艺",     "磺化工艺",   "聚合工艺",   "烷基化工艺",
    "新型煤化工工艺",   "电石生产工艺",   "偶氮化工艺",
};

/* The fields of a record that an edit may change, in display order. */
static const char *const record_fields[] = {
    "name",           "credit_code", "division",        "park",    "address",   "location",
    "boundary",       "principal",   "safety_managers", "licence", "processes", "key",
    "hazard_sources",
};

static const char *const licences[] = {"production", "operation", "use"};

int enterprise_init(struct store *st)
{
    return store_index_define(st, "enterprises", "credit_code", true);
}

static bool text_ok(const json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    return s && s[0] && strlen(s) <= max && g_utf8_validate(s, -1, NULL);
}

static bool phone_ok(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (n < 5 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isdigit(s[i]) && !strchr("+- ", s[i]))
            return false;
    return true;
}

/* {name, phone} normalised, or NULL. */
static json_t *person(const json_t *v)
{
    const json_t *name = json_object_get(v, "name"), *phone = json_object_get(v, "phone");
    if (!json_is_object(v) || json_object_size(v) != 2 || !text_ok(name, PERSON_NAME_MAX) ||
        !phone_ok(phone))
        return NULL;
    return json_pack("{s:O, s:O}", "name", name, "phone", phone);
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* Copies {type, coordinates} of a validated geometry. */
static json_t *geometry(const json_t *v)
{
    return json_pack("{s:O, s:o}", "type", json_object_get(v, "type"), "coordinates",
                     json_deep_copy(json_object_get(v, "coordinates")));
}

/* Evaluates the array of hazard sources; ids are kept or assigned. */
static json_t *sources(const json_t *v, const char **why)
{
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n > ENTERPRISE_MAX_SOURCES) {
        *why = "hazard_sources must be an array of at most 50 sources";
        return NULL;
    }
    json_t *out = json_array();
    GHashTable *ids = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < n; i++) {
        const json_t *in = json_array_get(v, i);
        const char *id = json_string_value(json_object_get(in, "id"));
        json_t *src = hazard_source_eval(in, why);
        if (!src)
            goto bad;
        if (!id) {
            char gen[16];
            g_snprintf(gen, sizeof(gen), "hs%zu", i + 1);
            json_object_set_new(src, "id", json_string(gen));
        } else if (!org_id_valid(id)) {
            *why = "hazard source id must be 1 to 64 characters of A-Z a-z 0-9 _ . -";
            json_decref(src);
            goto bad;
        }
        json_array_append_new(out, src);
    }
    /* ids unique (generated ones could meet given ones) */
    size_t i;
    json_t *src;
    json_array_foreach(out, i, src)
    {
        if (!g_hash_table_add(ids, (gpointer)json_string_value(json_object_get(src, "id")))) {
            *why = "hazard source ids must be unique";
            goto bad;
        }
    }
    g_hash_table_destroy(ids);
    return out;
bad:
    g_hash_table_destroy(ids);
    json_decref(out);
    return NULL;
}

/* Validates one field; returns its normalised value (new reference), or
 * NULL with *why. */
static json_t *field_value(const char *key, const json_t *v, const char **why)
{
    char norm[8];
    if (strcmp(key, "name") == 0 || strcmp(key, "park") == 0) {
        if (text_ok(v, TEXT_MAX))
            return json_deep_copy(v);
        *why = strcmp(key, "name") == 0 ? "name must be 1 to 200 bytes of UTF-8"
                                        : "park must be 1 to 200 bytes of UTF-8";
    } else if (strcmp(key, "address") == 0) {
        if (text_ok(v, ADDRESS_MAX))
            return json_deep_copy(v);
        *why = "address must be 1 to 500 bytes of UTF-8";
    } else if (strcmp(key, "credit_code") == 0) {
        const char *reason = "must be a string";
        if (json_is_string(v) && credit_code_valid(json_string_value(v), &reason))
            return json_deep_copy(v);
        /* the check's reasons, named for the field */
        static const char *const named[][2] = {
            {"must be 18 characters", "credit_code must be 18 characters"},
            {"characters must be 0-9 or upper-case A-Y without I, O, S, V, Z",
             "credit_code characters must be 0-9 or upper-case A-Y without I, O, S, V, Z"},
            {"characters 3 to 8 must be a division code (digits)",
             "credit_code characters 3 to 8 must be a division code (digits)"},
            {"check character does not match (GB 32100-2015)",
             "credit_code check character does not match (GB 32100-2015)"},
        };
        *why = "credit_code must be a string";
        for (size_t i = 0; i < G_N_ELEMENTS(named); i++)
            if (strcmp(reason, named[i][0]) == 0)
                *why = named[i][1];
    } else if (strcmp(key, "division") == 0) {
        if (json_is_string(v) && division_normalize(json_string_value(v), norm, sizeof(norm)))
            return json_string(norm);
        *why = "division must be a division code (2, 4 or 6 digits)";
    } else if (strcmp(key, "location") == 0) {
        const char *reason;
        if (geo_point_valid(v, &reason))
            return geometry(v);
        *why = reason;
    } else if (strcmp(key, "boundary") == 0) {
        if (geo_polygon_valid(v, why))
            return geometry(v);
    } else if (strcmp(key, "principal") == 0) {
        json_t *p = person(v);
        if (p)
            return p;
        *why = "principal must be {name (1 to 64 bytes), phone (5 to 20 of 0-9 + - space)}";
    } else if (strcmp(key, "safety_managers") == 0) {
        size_t n = json_array_size(v);
        if (json_is_array(v) && n >= 1 && n <= ENTERPRISE_MAX_MANAGERS) {
            json_t *out = json_array();
            for (size_t i = 0; out && i < n; i++) {
                json_t *p = person(json_array_get(v, i));
                if (p) {
                    json_array_append_new(out, p);
                } else {
                    json_decref(out);
                    out = NULL;
                }
            }
            if (out)
                return out;
        }
        *why = "safety_managers must be 1 to 10 of {name, phone}";
    } else if (strcmp(key, "licence") == 0) {
        if (in_list(json_string_value(v), licences, G_N_ELEMENTS(licences)))
            return json_deep_copy(v);
        *why = "licence must be production, operation or use";
    } else if (strcmp(key, "processes") == 0) {
        size_t n = json_array_size(v);
        bool ok = json_is_array(v) && n <= ENTERPRISE_PROCESSES;
        for (size_t i = 0; ok && i < n; i++) {
            const char *p = json_string_value(json_array_get(v, i));
            ok = in_list(p, enterprise_processes, ENTERPRISE_PROCESSES);
            for (size_t j = 0; ok && j < i; j++)
                ok = strcmp(p, json_string_value(json_array_get(v, j))) != 0;
        }
        if (ok)
            return json_deep_copy(v);
        *why = "processes must be distinct names from the list of 18 key-supervised processes";
    } else if (strcmp(key, "key") == 0) {
        if (json_is_boolean(v))
            return json_deep_copy(v);
        *why = "key must be true or false";
    } else if (strcmp(key, "hazard_sources") == 0) {
        return sources(v, why);
    } else {
        *why = "unknown record field";
    }
    return NULL;
}

static bool optional_field(const char *key)
{
    return strcmp(key, "park") == 0 || strcmp(key, "boundary") == 0 ||
           strcmp(key, "processes") == 0 || strcmp(key, "hazard_sources") == 0;
}

bool enterprise_merge_fields(json_t *rec, const json_t *patch, const char **why)
{
    if (!json_is_object(patch)) {
        *why = "the record must be a JSON object";
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)patch, key, v)
    {
        if (!in_list(key, record_fields, G_N_ELEMENTS(record_fields))) {
            *why = "unknown record field (see the list in the protocol)";
            return false;
        }
        if (json_is_null(v) && optional_field(key)) {
            json_object_del(rec, key);
            continue;
        }
        json_t *val = field_value(key, v, why);
        if (!val)
            return false;
        json_object_set_new(rec, key, val);
    }
    return true;
}

bool enterprise_complete(const json_t *rec, const char **why)
{
    static const char *const required[][2] = {
        {"name", "the record lacks name"},
        {"credit_code", "the record lacks credit_code"},
        {"division", "the record lacks division"},
        {"address", "the record lacks address"},
        {"location", "the record lacks location"},
        {"principal", "the record lacks principal"},
        {"safety_managers", "the record lacks safety_managers"},
        {"licence", "the record lacks licence"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(required); i++) {
        if (!json_object_get(rec, required[i][0])) {
            *why = required[i][1];
            return false;
        }
    }
    return true;
}

/* The editable fields of a record, copied. */
static json_t *editable_copy(const json_t *doc)
{
    json_t *out = json_object();
    for (size_t i = 0; i < G_N_ELEMENTS(record_fields); i++) {
        json_t *v = json_object_get(doc, record_fields[i]);
        if (v)
            json_object_set_new(out, record_fields[i], json_deep_copy(v));
    }
    return out;
}

/* The highest level (lowest number) among major sources, 0 if none. */
static int record_level(const json_t *rec)
{
    int best = 0;
    size_t i;
    json_t *src;
    json_array_foreach(json_object_get(rec, "hazard_sources"), i, src)
    {
        int l = (int)json_integer_value(json_object_get(src, "level"));
        if (json_is_true(json_object_get(src, "major")) && l >= 1 && (best == 0 || l < best))
            best = l;
    }
    return best;
}

/* Every flag of the record's sources, as [{source, flags}]. */
static json_t *record_flags(const json_t *rec)
{
    json_t *out = json_array();
    size_t i;
    json_t *src;
    json_array_foreach(json_object_get(rec, "hazard_sources"), i, src)
    {
        json_t *flags = json_object_get(src, "flags");
        if (json_array_size(flags))
            json_array_append_new(out,
                                  json_pack("{s:O, s:O, s:O}", "source", json_object_get(src, "id"),
                                            "name", json_object_get(src, "name"), "flags", flags));
    }
    return out;
}

json_t *enterprise_draft_get(struct store *st, const char *id, int *rc)
{
    json_t *d = NULL;
    *rc = store_doc_get(st, DRAFTS, id, &d);
    return *rc == STORE_OK ? d : NULL;
}

static json_int_t jx_version(const json_t *doc)
{
    return json_integer_value(json_object_get(doc, "version"));
}

static enum err_code store_err(int rc, const char **why)
{
    if (rc == STORE_ENOTFOUND) {
        *why = "no such enterprise";
        return ERR_NOT_FOUND;
    }
    if (rc == STORE_ECONFLICT) {
        *why = "the credit code belongs to another enterprise";
        return ERR_CONFLICT;
    }
    *why = "store unavailable";
    return ERR_UNAVAILABLE;
}

/* Sets the review status shown on the record (for listing by status):
 * the record as read, its credit code unchanged, so the write need not
 * wait for the unique index's answer. */
static int set_status(struct store *st, json_t *doc, const char *id, const char *status)
{
    json_object_set_new(doc, "review_status", json_string(status));
    org_division_forget(id);
    return store_doc_put_kept(st, "enterprises", id, doc);
}

/* Loads the record and an editable draft (created from the record when
 * there is none, reopened when rejected). */
static enum err_code open_draft(struct store *st, const char *id, const char *actor, json_t **doc,
                                json_t **draft, const char **why)
{
    int rc = store_doc_get(st, "enterprises", id, doc);
    if (rc != STORE_OK)
        return store_err(rc, why);
    *draft = enterprise_draft_get(st, id, &rc);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
        json_decref(*doc);
        return store_err(rc, why);
    }
    if (!*draft) {
        *draft = json_pack("{s:s, s:s, s:o, s:I, s:s, s:I}", "enterprise", id, "status", "draft",
                           "record", editable_copy(*doc), "base_version", jx_version(*doc),
                           "created_by", actor, "created_at", (json_int_t)clock_now_ms());
    }
    const char *status = json_string_value(json_object_get(*draft, "status"));
    if (g_strcmp0(status, "submitted") == 0) {
        *why = "the draft is submitted and waits for review";
        json_decref(*doc);
        json_decref(*draft);
        return ERR_CONFLICT;
    }
    return ERR_NONE;
}

/* Stores the edited draft and marks the record "draft". */
static enum err_code save_draft(struct store *st, const char *id, const char *actor, json_t *doc,
                                json_t *draft, json_t **out, const char **why)
{
    json_t *rec = json_object_get(draft, "record");
    json_object_set_new(draft, "status", json_string("draft"));
    json_object_set_new(draft, "edited_by", json_string(actor));
    json_object_set_new(draft, "edited_at", json_integer(clock_now_ms()));
    json_object_set_new(draft, "hazard_level", json_integer(record_level(rec)));
    json_object_set_new(draft, "flags", record_flags(rec));
    int rc = store_doc_put(st, DRAFTS, id, draft, false);
    if (rc == STORE_OK)
        rc = set_status(st, doc, id, "draft");
    enum err_code e = rc == STORE_OK ? ERR_NONE : store_err(rc, why);
    if (e == ERR_NONE && out)
        *out = json_incref(draft);
    json_decref(doc);
    json_decref(draft);
    return e;
}

enum err_code enterprise_edit(struct store *st, const char *id, const char *actor,
                              const json_t *patch, json_t **out, const char **why)
{
    json_t *doc, *draft;
    enum err_code e = open_draft(st, id, actor, &doc, &draft, why);
    if (e != ERR_NONE)
        return e;
    if (!enterprise_merge_fields(json_object_get(draft, "record"), patch, why)) {
        json_decref(doc);
        json_decref(draft);
        return ERR_BAD_REQUEST;
    }
    return save_draft(st, id, actor, doc, draft, out, why);
}

enum err_code enterprise_source_put(struct store *st, const char *id, const char *actor,
                                    const char *source_id, const json_t *src, json_t **out,
                                    const char **why)
{
    if (!org_id_valid(source_id)) {
        *why = "hazard source id must be 1 to 64 characters of A-Z a-z 0-9 _ . -";
        return ERR_BAD_REQUEST;
    }
    json_t *eval = hazard_source_eval(src, why);
    if (!eval)
        return ERR_BAD_REQUEST;
    json_object_set_new(eval, "id", json_string(source_id));
    json_t *doc, *draft;
    enum err_code e = open_draft(st, id, actor, &doc, &draft, why);
    if (e != ERR_NONE) {
        json_decref(eval);
        return e;
    }
    json_t *rec = json_object_get(draft, "record");
    json_t *list = json_object_get(rec, "hazard_sources");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(rec, "hazard_sources", list);
    }
    size_t i, at = json_array_size(list);
    json_t *s;
    json_array_foreach(list, i, s)
    {
        if (g_strcmp0(json_string_value(json_object_get(s, "id")), source_id) == 0)
            at = i;
    }
    if (at == json_array_size(list) && at >= ENTERPRISE_MAX_SOURCES) {
        *why = "an enterprise has at most 50 hazard sources";
        json_decref(eval);
        json_decref(doc);
        json_decref(draft);
        return ERR_TOO_LARGE;
    }
    if (at < json_array_size(list))
        json_array_set(list, at, eval);
    else
        json_array_append(list, eval);
    if (out)
        *out = json_incref(eval);
    json_decref(eval);
    e = save_draft(st, id, actor, doc, draft, NULL, why);
    if (e != ERR_NONE && out) {
        json_decref(*out);
        *out = NULL;
    }
    return e;
}

enum err_code enterprise_source_delete(struct store *st, const char *id, const char *actor,
                                       const char *source_id, const char **why)
{
    json_t *doc, *draft;
    enum err_code e = open_draft(st, id, actor, &doc, &draft, why);
    if (e != ERR_NONE)
        return e;
    json_t *list = json_object_get(json_object_get(draft, "record"), "hazard_sources");
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        if (g_strcmp0(json_string_value(json_object_get(s, "id")), source_id) == 0) {
            json_array_remove(list, i);
            return save_draft(st, id, actor, doc, draft, NULL, why);
        }
    }
    json_decref(doc);
    json_decref(draft);
    *why = "no such hazard source in the draft";
    return ERR_NOT_FOUND;
}

enum err_code enterprise_submit(struct store *st, const char *id, const char *actor, json_t **out,
                                const char **why)
{
    json_t *doc, *draft;
    enum err_code e = open_draft(st, id, actor, &doc, &draft, why);
    if (e != ERR_NONE)
        return e;
    json_t *rec = json_object_get(draft, "record");
    if (!enterprise_complete(rec, why)) {
        json_decref(doc);
        json_decref(draft);
        return ERR_BAD_REQUEST;
    }
    json_object_set_new(draft, "status", json_string("submitted"));
    json_object_set_new(draft, "submitted_by", json_string(actor));
    json_object_set_new(draft, "submitted_at", json_integer(clock_now_ms()));
    json_object_set_new(draft, "hazard_level", json_integer(record_level(rec)));
    json_object_set_new(draft, "flags", record_flags(rec));
    int rc = store_doc_put(st, DRAFTS, id, draft, false);
    if (rc == STORE_OK)
        rc = set_status(st, doc, id, "submitted");
    e = rc == STORE_OK ? ERR_NONE : store_err(rc, why);
    if (e == ERR_NONE && out)
        *out = json_incref(draft);
    json_decref(doc);
    json_decref(draft);
    return e;
}

/* [{field, from, to}] for every editable field that differs. */
static json_t *changes(const json_t *before, const json_t *after)
{
    json_t *out = json_array();
    for (size_t i = 0; i < G_N_ELEMENTS(record_fields); i++) {
        const char *f = record_fields[i];
        json_t *a = json_object_get(before, f), *b = json_object_get(after, f);
        if (a == b || (a && b && json_equal(a, b)))
            continue;
        json_t *c = json_pack("{s:s}", "field", f);
        json_object_set(c, "from", a ? a : json_null());
        json_object_set(c, "to", b ? b : json_null());
        json_array_append_new(out, c);
    }
    return out;
}

struct code_holder {
    const char *id;
    bool other;
};

static bool other_holder(const char *id, json_t *doc, void *ud)
{
    (void)doc;
    struct code_holder *h = ud;
    h->other = h->other || strcmp(id, h->id) != 0;
    return !h->other;
}

int enterprise_code_free(struct store *st, const char *id, json_t *doc)
{
    const char *code = jx_str(doc, "credit_code");
    struct code_holder h = {id, false};
    int rc = code
                 ? store_index_find(st, "enterprises", "credit_code", code, false, other_holder, &h)
                 : STORE_OK;
    return rc == STORE_OK && h.other ? STORE_ECONFLICT : rc;
}

/* Replaces the editable fields of doc by those of rec and records the
 * approval (version, confirmation, history). */
static enum err_code approve(struct store *st, const char *id, json_t *doc, const json_t *rec,
                             const char *actor, const char *source, const json_t *draft,
                             const char *comment, bool code_read, const char **why)
{
    json_t *diff = changes(doc, rec);
    for (size_t i = 0; i < G_N_ELEMENTS(record_fields); i++)
        json_object_del(doc, record_fields[i]);
    json_object_update(doc, (json_t *)rec);
    if (!json_object_get(doc, "key"))
        json_object_set_new(doc, "key", json_false());
    int64_t now = clock_now_ms();
    json_int_t version = jx_version(doc) + 1;
    json_object_set_new(doc, "version", json_integer(version));
    json_object_set_new(doc, "confirmed_at", json_integer(now));
    json_object_set_new(doc, "confirmed_by", json_string(actor));
    json_object_set_new(doc, "review_status", json_string("approved"));
    json_object_set_new(doc, "hazard_level", json_integer(record_level(rec)));
    json_object_set_new(doc, "updated_at", json_integer(now));
    int rc = code_read ? STORE_OK : enterprise_code_free(st, id, doc);
    if (rc == STORE_OK)
        rc = store_doc_put_kept(st, "enterprises", id, doc);
    if (rc == STORE_OK)
        org_division_forget(id); /* after the read: a run thrown away changes nothing */
    if (rc != STORE_OK) {
        json_decref(diff);
        return store_err(rc, why);
    }
    json_t *h =
        json_pack("{s:I, s:I, s:s, s:s, s:o, s:o}", "version", version, "at", (json_int_t)now, "by",
                  actor, "source", source, "changes", diff, "record", editable_copy(doc));
    if (draft) {
        json_object_set(h, "submitted_by", json_object_get(draft, "submitted_by"));
        json_object_set(h, "submitted_at", json_object_get(draft, "submitted_at"));
    }
    if (comment)
        json_object_set_new(h, "comment", json_string(comment));
    char *key = g_strdup_printf("enterprise_history:%s", id);
    rc = store_seq_append(st, key, h, NULL);
    g_free(key);
    json_decref(h);
    return rc == STORE_OK ? ERR_NONE : store_err(rc, why);
}

enum err_code enterprise_review(struct store *st, const char *id, const char *actor, bool ok,
                                const char *comment, json_t **out, const char **why)
{
    if (comment && (strlen(comment) > ENTERPRISE_COMMENT_MAX || !g_utf8_validate(comment, -1, 0))) {
        *why = "comment must be at most 2000 bytes of UTF-8";
        return ERR_BAD_REQUEST;
    }
    if (!ok && (!comment || !comment[0])) {
        *why = "a rejection needs a comment";
        return ERR_BAD_REQUEST;
    }
    json_t *doc = NULL;
    int rc = store_doc_get(st, "enterprises", id, &doc);
    if (rc != STORE_OK)
        return store_err(rc, why);
    json_t *draft = enterprise_draft_get(st, id, &rc);
    enum err_code e = ERR_NONE;
    if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
        e = store_err(rc, why);
    } else if (!draft ||
               g_strcmp0(json_string_value(json_object_get(draft, "status")), "submitted") != 0) {
        *why = "nothing submitted to review";
        e = ERR_CONFLICT;
    } else if (!ok) {
        json_object_set_new(draft, "status", json_string("rejected"));
        json_object_set_new(draft, "reviewed_by", json_string(actor));
        json_object_set_new(draft, "reviewed_at", json_integer(clock_now_ms()));
        json_object_set_new(draft, "comment", json_string(comment));
        rc = store_doc_put(st, DRAFTS, id, draft, false);
        if (rc == STORE_OK)
            rc = set_status(st, doc, id, "rejected");
        e = rc == STORE_OK ? ERR_NONE : store_err(rc, why);
        if (e == ERR_NONE && out)
            *out = json_incref(draft);
    } else {
        e = approve(st, id, doc, json_object_get(draft, "record"), actor, "review", draft, comment,
                    false, why);
        if (e == ERR_NONE) {
            rc = store_doc_remove(st, DRAFTS, id); /* gone or not: deferred */
            e = rc == STORE_OK ? ERR_NONE : store_err(rc, why);
        }
        if (e == ERR_NONE && out)
            *out = json_incref(doc);
    }
    json_decref(draft);
    json_decref(doc);
    return e;
}

static bool collect(int64_t seq, json_t *item, void *ud)
{
    (void)seq;
    json_array_append(ud, item);
    return true;
}

int enterprise_history(struct store *st, const char *id, int limit, json_t **out)
{
    char *key = g_strdup_printf("enterprise_history:%s", id);
    *out = json_array();
    int rc = store_seq_range(st, key, 0, limit, true, collect, *out);
    g_free(key);
    return rc;
}

enum err_code enterprise_put_read(struct store *st, const char *id, json_t *doc,
                                  const json_t *fields, const char *actor, const char *source,
                                  bool code_read, const char **why)
{
    if (!doc && !org_id_valid(id)) {
        *why = "id must be 1 to 64 characters of A-Z a-z 0-9 _ . -";
        return ERR_BAD_REQUEST;
    }
    json_t *rec = doc ? editable_copy(doc) : json_object();
    enum err_code e = ERR_NONE;
    if (!enterprise_merge_fields(rec, fields, why) || !enterprise_complete(rec, why)) {
        e = ERR_BAD_REQUEST;
    } else {
        json_t *to =
            doc ? json_deep_copy(doc)
                : json_pack("{s:s, s:I}", "id", id, "created_at", (json_int_t)clock_now_ms());
        e = approve(st, id, to, rec, actor, source, NULL, NULL, code_read, why);
        json_decref(to);
    }
    json_decref(rec);
    return e;
}

enum err_code enterprise_put_approved(struct store *st, const char *id, const json_t *fields,
                                      const char *actor, const char *source, const char **why)
{
    json_t *doc = NULL;
    int rc = store_doc_get(st, "enterprises", id, &doc);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND)
        return store_err(rc, why);
    enum err_code e = enterprise_put_read(st, id, doc, fields, actor, source, false, why);
    json_decref(doc);
    return e;
}
