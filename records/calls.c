/* Call and patrol records (see calls.h). */
#include "records/calls.h"

#include <glib.h>

int calls_init(struct store *st)
{
    static const char *const call_fields[] = {"parties",   "enterprise", "carrier", "division",
                                              "patrol_id", "date",       "state"};
    for (size_t i = 0; i < G_N_ELEMENTS(call_fields); i++) {
        int rc = store_index_define(st, "calls", call_fields[i], false);
        if (rc != STORE_OK)
            return rc;
    }
    static const char *const patrol_fields[] = {"owner", "division", "date"};
    for (size_t i = 0; i < G_N_ELEMENTS(patrol_fields); i++) {
        int rc = store_index_define(st, "patrols", patrol_fields[i], false);
        if (rc != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

int calls_put(struct store *st, const char *id, json_t *doc)
{
    return store_doc_put(st, "calls", id, doc, false);
}

int calls_create(struct store *st, const char *id, json_t *doc)
{
    return store_doc_put_new(st, "calls", id, doc);
}

int calls_get(struct store *st, const char *id, json_t **out)
{
    return store_doc_get(st, "calls", id, out);
}

int calls_find(struct store *st, const char *field, const char *value, bool prefix, store_doc_cb cb,
               void *ud)
{
    return store_index_find(st, "calls", field, value, prefix, cb, ud);
}

static bool collect(const char *id, json_t *doc, void *ud)
{
    (void)id;
    json_array_append(ud, doc);
    return true;
}

void calls_end_failed(json_t *doc, int64_t now_ms)
{
    json_t *answered = json_object_get(doc, "answer_at");
    json_object_set_new(doc, "state", json_string("ended"));
    json_object_set_new(doc, "end_reason", json_string("failed"));
    json_object_set_new(doc, "end_at", json_integer(now_ms));
    if (json_is_integer(answered))
        json_object_set_new(doc, "duration_s",
                            json_integer((now_ms - json_integer_value(answered)) / 1000));
}

/* Ends as failed each call of open (an array of records) that keep does
 * not keep. */
static int end_open(struct store *st, json_t *open, int64_t now_ms,
                    bool (*keep)(const char *id, void *ud), void *ud, int *count)
{
    int rc = STORE_OK;
    size_t i;
    json_t *doc;
    json_array_foreach(open, i, doc)
    {
        if (rc != STORE_OK)
            break;
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (id && keep && keep(id, ud))
            continue; /* held by another server, alive */
        calls_end_failed(doc, now_ms);
        rc = id ? calls_put(st, id, doc) : STORE_OK;
        if (rc == STORE_OK && id)
            (*count)++;
    }
    return rc;
}

int calls_recover(struct store *st, int64_t now_ms, bool (*keep)(const char *id, void *ud),
                  void *ud, int *count)
{
    json_t *open = json_array();
    *count = 0;
    int rc = calls_find(st, "state", "ringing", false, collect, open);
    if (rc == STORE_OK)
        rc = calls_find(st, "state", "active", false, collect, open);
    if (rc == STORE_OK)
        rc = end_open(st, open, now_ms, keep, ud, count);
    json_decref(open);
    return rc;
}

int patrols_put(struct store *st, const char *id, json_t *doc)
{
    return store_doc_put(st, "patrols", id, doc, false);
}

int patrols_get(struct store *st, const char *id, json_t **out)
{
    return store_doc_get(st, "patrols", id, out);
}

int patrols_find(struct store *st, const char *field, const char *value, bool prefix,
                 store_doc_cb cb, void *ud)
{
    return store_index_find(st, "patrols", field, value, prefix, cb, ud);
}
