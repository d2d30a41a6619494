/* Reminder recipients from the records (see commitment_due.h). */
#include "records/commitment_due.h"

#include "records/account.h"
#include "records/commitment.h"
#include "records/jurisdiction.h"

#include <stdlib.h>
#include <string.h>

bool due_is_contact(const char *position)
{
    return position &&
           (strcmp(position, "principal") == 0 || strcmp(position, "safety_manager") == 0 ||
            strcmp(position, "主要负责人") == 0 || strcmp(position, "安全管理人员") == 0);
}

bool due_is_duty(const char *position)
{
    return position && (strcmp(position, "duty") == 0 || strcmp(position, "值班") == 0);
}

struct contacts {
    GHashTable *orgs; /* enterprise ids to reach */
    GPtrArray *out;
};

static bool add_contact(struct account *a, void *ud)
{
    struct contacts *c = ud;
    if (!a->disabled && strcmp(a->role, "corp") == 0 && due_is_contact(a->position) &&
        g_hash_table_contains(c->orgs, a->org))
        g_ptr_array_add(c->out, g_strdup(a->id));
    return true;
}

/* Adds the contacts of the enterprises in orgs, in account order. */
static int contacts_of(struct store *st, GHashTable *orgs, GPtrArray *user_ids)
{
    struct contacts c = {orgs, user_ids};
    int rc = STORE_OK;
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, orgs);
    while (rc == STORE_OK && g_hash_table_iter_next(&it, &key, NULL))
        rc = account_each_in_org(st, key, add_contact, &c);
    return rc;
}

int commitment_due_recipients(struct store *st, const char *date, GPtrArray *user_ids, void *ud)
{
    (void)ud;
    json_t *day = NULL;
    int rc = commitment_day(st, date, "", NULL, 0, &day);
    if (rc != STORE_OK)
        return rc;
    GHashTable *orgs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(day, "missing"), i, m)
    {
        g_hash_table_add(orgs, g_strdup(json_string_value(json_object_get(m, "enterprise"))));
    }
    rc = contacts_of(st, orgs, user_ids);
    g_hash_table_destroy(orgs);
    json_decref(day);
    return rc;
}

static bool add_duty(struct account *a, void *ud)
{
    GHashTable *by_div = ud; /* division -> json array of ids */
    char norm[8];
    if (a->disabled || strcmp(a->role, "gov") != 0 || !due_is_duty(a->position) ||
        !division_normalize(a->org, norm, sizeof(norm)))
        return true;
    json_t *list = g_hash_table_lookup(by_div, norm);
    if (!list) {
        list = json_array();
        g_hash_table_insert(by_div, g_strdup(norm), list);
    }
    json_array_append_new(list, json_string(a->id));
    return true;
}

/* The duty regulators of division, or of the nearest division above it. */
static json_t *duty_for(GHashTable *by_div, const char *division)
{
    char d[8];
    g_strlcpy(d, division, sizeof(d));
    for (size_t n = strlen(d); n >= 2; n -= 2) {
        d[n] = '\0';
        json_t *list = g_hash_table_lookup(by_div, d);
        if (list)
            return json_incref(list);
    }
    return json_array();
}

int commitment_due_summaries(struct store *st, const char *date, int deadline_min, json_t **out)
{
    json_t *day = NULL;
    int rc = commitment_day(st, date, "", NULL, deadline_min, &day);
    if (rc != STORE_OK)
        return rc;
    GHashTable *by_div =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)json_decref);
    rc = account_each(st, add_duty, by_div);
    *out = json_array();
    size_t i, j;
    json_t *d, *m;
    json_array_foreach(json_object_get(day, "districts"), i, d)
    {
        const char *div = json_string_value(json_object_get(d, "division"));
        json_t *missing = json_array();
        json_array_foreach(json_object_get(day, "missing"), j, m)
        {
            if (g_strcmp0(json_string_value(json_object_get(m, "division")), div) == 0)
                json_array_append_new(missing, json_pack("{s:O, s:O}", "enterprise",
                                                         json_object_get(m, "enterprise"), "name",
                                                         json_object_get(m, "name")));
        }
        json_array_append_new(*out, json_pack("{s:s, s:o, s:O, s:O, s:O, s:o}", "division", div,
                                              "users", duty_for(by_div, div), "should_file",
                                              json_object_get(d, "should_file"), "filed",
                                              json_object_get(d, "filed"), "late",
                                              json_object_get(d, "late"), "missing", missing));
    }
    g_hash_table_destroy(by_div);
    json_decref(day);
    if (rc != STORE_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* The business month "YYYY-MM" of ms. */
static void month_of(int64_t ms, char out[8])
{
    char date[BIZDATE_LEN];
    bizdate_of(ms, date);
    memcpy(out, date, 7);
    out[7] = '\0';
}

int64_t due_confirm_at(int64_t now_ms, int day)
{
    char date[BIZDATE_LEN];
    int64_t at;
    if (day < 1 || day > 28)
        return -1;
    bizdate_of(now_ms, date);
    g_snprintf(date + 8, 3, "%02d", day);
    return bizdate_at(date, DUE_CONFIRM_MINUTE, &at) ? at : -1;
}

struct unconfirmed {
    char month[8];
    GHashTable *orgs;
};

static bool check_confirmed(const char *id, json_t *doc, void *ud)
{
    struct unconfirmed *u = ud;
    json_t *at = json_object_get(doc, "confirmed_at");
    char month[8] = "";
    if (json_is_integer(at))
        month_of(json_integer_value(at), month);
    if (strcmp(month, u->month) != 0)
        g_hash_table_add(u->orgs, g_strdup(id));
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int enterprise_unconfirmed_recipients(struct store *st, int64_t now_ms, GPtrArray *user_ids,
                                      json_t **enterprises)
{
    struct unconfirmed u = {.orgs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)};
    month_of(now_ms, u.month);
    int rc = store_doc_list(st, "enterprises", check_confirmed, &u);
    if (rc == STORE_OK)
        rc = contacts_of(st, u.orgs, user_ids);
    if (rc == STORE_OK && enterprises) {
        guint n = 0;
        gpointer *ids = g_hash_table_get_keys_as_array(u.orgs, &n);
        qsort(ids, n, sizeof(*ids), cmp_str);
        *enterprises = json_array();
        for (guint i = 0; i < n; i++)
            json_array_append_new(*enterprises, json_string(ids[i]));
        g_free(ids);
    }
    g_hash_table_destroy(u.orgs);
    return rc;
}
