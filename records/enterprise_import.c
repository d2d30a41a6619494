/* Bulk import of enterprise records (see enterprise_import.h). */
#include "records/enterprise_import.h"

#include "records/enterprise.h"
#include "records/org.h"

#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const csv_columns[] = {
    "id",
    "name",
    "credit_code",
    "division",
    "park",
    "address",
    "lon",
    "lat",
    "principal_name",
    "principal_phone",
    "safety_managers",
    "licence",
    "processes",
    "key",
    "boundary",
};

/* Splits CSV text into records of fields (RFC 4180). NULL for an
 * unterminated quote. */
static GPtrArray *csv_parse(const char *s, size_t len)
{
    GPtrArray *records = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
    GPtrArray *rec = g_ptr_array_new_with_free_func(g_free);
    GString *field = g_string_new(NULL);
    size_t i = 0;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        i = 3; /* byte-order mark */
    bool quoted = false, any = false;
    for (; i < len; i++) {
        char c = s[i];
        if (quoted) {
            if (c == '"' && i + 1 < len && s[i + 1] == '"') {
                g_string_append_c(field, '"');
                i++;
            } else if (c == '"') {
                quoted = false;
            } else {
                g_string_append_c(field, c);
            }
            continue;
        }
        if (c == '"' && field->len == 0) {
            quoted = any = true;
        } else if (c == ',') {
            g_ptr_array_add(rec, g_string_free(field, FALSE));
            field = g_string_new(NULL);
            any = true;
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < len && s[i + 1] == '\n')
                i++;
            if (any || field->len) {
                g_ptr_array_add(rec, g_string_free(field, FALSE));
                field = g_string_new(NULL);
                g_ptr_array_add(records, rec);
                rec = g_ptr_array_new_with_free_func(g_free);
            }
            any = false;
        } else {
            g_string_append_c(field, c);
            any = true;
        }
    }
    if (quoted) {
        g_string_free(field, TRUE);
        g_ptr_array_unref(rec);
        g_ptr_array_unref(records);
        return NULL;
    }
    if (any || field->len) {
        g_ptr_array_add(rec, g_string_free(field, FALSE));
        g_ptr_array_add(records, rec);
    } else {
        g_string_free(field, TRUE);
        g_ptr_array_unref(rec);
    }
    return records;
}

/* A CSV cell as a number, or NAN. */
static double number(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    return *s && !*end && !errno ? v : NAN;
}

/* Converts one CSV row (column name -> cell) to the JSON row shape. A cell
 * that cannot be converted becomes a value the record validation refuses
 * with a message naming the field. */
static json_t *csv_row(GHashTable *cells)
{
    json_t *row = json_object();
    static const char *const plain[] = {"id",   "name",    "credit_code", "division",
                                        "park", "address", "licence"};
    for (size_t i = 0; i < G_N_ELEMENTS(plain); i++) {
        const char *v = g_hash_table_lookup(cells, plain[i]);
        if (v && *v)
            json_object_set_new(row, plain[i], json_string(v));
    }
    const char *lon = g_hash_table_lookup(cells, "lon"), *lat = g_hash_table_lookup(cells, "lat");
    if ((lon && *lon) || (lat && *lat)) {
        double x = number(lon ? lon : ""), y = number(lat ? lat : "");
        json_object_set_new(row, "location",
                            isfinite(x) && isfinite(y)
                                ? json_pack("{s:s, s:[f,f]}", "type", "Point", "coordinates", x, y)
                                : json_string("lon and lat must be numbers"));
    }
    const char *pn = g_hash_table_lookup(cells, "principal_name");
    const char *pp = g_hash_table_lookup(cells, "principal_phone");
    if ((pn && *pn) || (pp && *pp))
        json_object_set_new(row, "principal",
                            json_pack("{s:s, s:s}", "name", pn ? pn : "", "phone", pp ? pp : ""));
    const char *sm = g_hash_table_lookup(cells, "safety_managers");
    if (sm && *sm) {
        json_t *list = json_array();
        gchar **parts = g_strsplit(sm, ";", -1);
        for (gchar **p = parts; *p; p++) {
            const char *colon = strchr(*p, ':');
            char *name = colon ? g_strndup(*p, (gsize)(colon - *p)) : g_strdup(*p);
            json_array_append_new(list, json_pack("{s:s, s:s}", "name", g_strstrip(name), "phone",
                                                  colon ? colon + 1 : ""));
            g_free(name);
        }
        g_strfreev(parts);
        json_object_set_new(row, "safety_managers", list);
    }
    const char *pr = g_hash_table_lookup(cells, "processes");
    if (pr && *pr) {
        json_t *list = json_array();
        gchar **parts = g_strsplit(pr, ";", -1);
        for (gchar **p = parts; *p; p++)
            if (*g_strstrip(*p))
                json_array_append_new(list, json_string(*p));
        g_strfreev(parts);
        json_object_set_new(row, "processes", list);
    }
    const char *key = g_hash_table_lookup(cells, "key");
    if (key && *key) {
        bool yes = !strcmp(key, "true") || !strcmp(key, "1") || !strcmp(key, "是");
        bool no = !strcmp(key, "false") || !strcmp(key, "0") || !strcmp(key, "否");
        json_object_set_new(row, "key", yes || no ? json_boolean(yes) : json_string(key));
    }
    const char *b = g_hash_table_lookup(cells, "boundary");
    if (b && *b) {
        json_t *g = json_loads(b, JSON_REJECT_DUPLICATES, NULL);
        json_object_set_new(row, "boundary", g ? g : json_string("not JSON"));
    }
    return row;
}

json_t *import_csv_rows(const char *text, size_t len, const char **why)
{
    if (!g_utf8_validate(text, (gssize)len, NULL)) {
        *why = "CSV must be UTF-8";
        return NULL;
    }
    GPtrArray *recs = csv_parse(text, len);
    if (!recs) {
        *why = "CSV has an unterminated quoted field";
        return NULL;
    }
    json_t *rows = NULL;
    if (recs->len == 0) {
        *why = "CSV needs a header row";
        goto out;
    }
    GPtrArray *header = g_ptr_array_index(recs, 0);
    for (guint c = 0; c < header->len; c++) {
        const char *name = g_ptr_array_index(header, c);
        bool known = false;
        for (size_t k = 0; k < G_N_ELEMENTS(csv_columns); k++)
            known = known || strcmp(name, csv_columns[k]) == 0;
        if (!known) {
            *why = "CSV header has an unknown column (see the column list)";
            goto out;
        }
    }
    if (recs->len - 1 > IMPORT_MAX_ROWS) {
        *why = "at most 5000 rows per import";
        goto out;
    }
    rows = json_array();
    for (guint r = 1; r < recs->len; r++) {
        GPtrArray *rec = g_ptr_array_index(recs, r);
        GHashTable *cells = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint c = 0; c < header->len && c < rec->len; c++)
            g_hash_table_insert(cells, g_ptr_array_index(header, c), g_ptr_array_index(rec, c));
        json_t *row = csv_row(cells);
        if (rec->len != header->len)
            json_object_set_new(row, "_error",
                                json_string("row has a different number of cells "
                                            "than the header"));
        json_array_append_new(rows, row);
        g_hash_table_destroy(cells);
    }
out:
    g_ptr_array_unref(recs);
    return rows;
}

json_t *import_json_rows(const json_t *doc, const char **why)
{
    const json_t *rows = json_is_array(doc) ? doc : json_object_get(doc, "enterprises");
    if (!json_is_array(rows)) {
        *why = "JSON import must be an array of records or {\"enterprises\": [...]}";
        return NULL;
    }
    if (json_array_size(rows) > IMPORT_MAX_ROWS) {
        *why = "at most 5000 rows per import";
        return NULL;
    }
    return json_deep_copy(rows);
}

/* What the rows before took, in one import. Every row is read before any
 * is written, so that an import run against a replay of its reads (a
 * request on Redis) writes without waiting: a later row cannot count on
 * the store to see an earlier row's id or credit code. */
struct import_seen {
    GHashTable *ids;   /* ids of rows accepted */
    GHashTable *codes; /* credit code -> id, of rows accepted */
};

/* Why the record rec of row id clashes with an earlier row, or NULL. */
static const char *clash(const struct import_seen *seen, const char *id, json_t *rec)
{
    const char *code = json_string_value(json_object_get(rec, "credit_code"));
    const char *holder = code ? g_hash_table_lookup(seen->codes, code) : NULL;
    if (g_hash_table_contains(seen->ids, id))
        return "the id is on an earlier row";
    if (holder && strcmp(holder, id) != 0)
        return "the credit code is on an earlier row";
    return NULL;
}

/* A row read and found good, to write. */
struct import_ok {
    json_t *report; /* its line, borrowed */
    char *id;
    json_t *doc; /* as read (NULL: new) */
    json_t *fields;
};

static void import_ok_free(gpointer p)
{
    struct import_ok *k = p;
    g_free(k->id);
    json_decref(k->doc);
    json_decref(k->fields);
    g_free(k);
}

/* The report line of one row, read and checked (nothing written); a good
 * one is added to good. */
static json_t *import_row(struct store *st, const json_t *in, import_allow_fn allow, void *ud,
                          size_t n, struct import_seen *seen, GPtrArray *good)
{
    json_t *r = json_pack("{s:I}", "row", (json_int_t)n);
    const char *why = NULL;
    const char *id = json_string_value(json_object_get(in, "id"));
    json_t *fields = json_is_object(in) ? json_deep_copy(in) : NULL;
    json_t *doc = NULL;
    if (id)
        json_object_set_new(r, "id", json_string(id));
    if (!fields) {
        why = "a row must be an object";
        goto out;
    }
    if (json_object_get(fields, "_error")) {
        why = json_string_value(json_object_get(fields, "_error"));
        goto out;
    }
    json_object_del(fields, "id");
    int rc = id ? store_doc_get(st, "enterprises", id, &doc) : STORE_EINVAL;
    if (!id) {
        why = "id is required";
        goto out;
    }
    if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
        why = "store unavailable";
        goto out;
    }
    if (!doc && !org_id_valid(id)) {
        why = "id must be 1 to 64 characters of A-Z a-z 0-9 _ . -";
        goto out;
    }
    /* validate on a copy, to check the jurisdiction of the result */
    json_t *rec = doc ? json_deep_copy(doc) : json_object();
    bool ok = enterprise_merge_fields(rec, fields, &why) && enterprise_complete(rec, &why);
    const char *division = json_string_value(json_object_get(rec, "division"));
    const char *existing = doc ? json_string_value(json_object_get(doc, "division")) : NULL;
    if (ok && !allow(division, existing, ud)) {
        why = "outside your jurisdiction";
        ok = false;
    }
    if (ok && (why = clash(seen, id, rec)) != NULL)
        ok = false;
    rc = ok ? enterprise_code_free(st, id, rec) : STORE_OK;
    if (rc != STORE_OK) {
        why = rc == STORE_ECONFLICT ? "the credit code belongs to another enterprise"
                                    : "store unavailable";
        ok = false;
    }
    const char *code = json_string_value(json_object_get(rec, "credit_code"));
    if (ok) {
        g_hash_table_add(seen->ids, g_strdup(id));
        if (code)
            g_hash_table_replace(seen->codes, g_strdup(code), g_strdup(id));
        struct import_ok *k = g_new(struct import_ok, 1);
        *k = (struct import_ok){r, g_strdup(id), json_incref(doc), json_incref(fields)};
        g_ptr_array_add(good, k);
        json_object_set_new(r, "action", json_string(doc ? "updated" : "created"));
    }
    json_decref(rec);
out:
    json_object_set_new(r, "ok", json_boolean(why == NULL));
    if (why)
        json_object_set_new(r, "error", json_string(why));
    json_decref(fields);
    json_decref(doc);
    return r;
}

json_t *import_apply(struct store *st, const json_t *rows, const char *actor, bool dry_run,
                     import_allow_fn allow, void *ud)
{
    json_t *report = json_array();
    size_t i, accepted = 0;
    json_t *in;
    struct import_seen seen = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
                               g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)};
    GPtrArray *good = g_ptr_array_new_with_free_func(import_ok_free);
    json_array_foreach((json_t *)rows, i, in)
    {
        json_array_append_new(report, import_row(st, in, allow, ud, i + 1, &seen, good));
    }
    /* then the good rows are written */
    for (guint k = 0; k < good->len; k++) {
        struct import_ok *w = g_ptr_array_index(good, k);
        const char *why = NULL;
        if (dry_run || enterprise_put_read(st, w->id, w->doc, w->fields, actor, "import", true,
                                           &why) == ERR_NONE) {
            accepted++;
            continue;
        }
        json_object_set_new(w->report, "ok", json_false());
        json_object_set_new(w->report, "error", json_string(why));
        json_object_del(w->report, "action");
    }
    g_ptr_array_free(good, TRUE);
    g_hash_table_destroy(seen.ids);
    g_hash_table_destroy(seen.codes);
    size_t total = json_array_size(rows);
    return json_pack("{s:I, s:I, s:I, s:b, s:o}", "total", (json_int_t)total, "accepted",
                     (json_int_t)accepted, "rejected", (json_int_t)(total - accepted), "dry_run",
                     dry_run, "rows", report);
}
