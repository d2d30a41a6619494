/* Divisions, enterprises and carriers as store documents. */
#include "records/org.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "records/jurisdiction.h"

#include <glib.h>
#include <string.h>

int org_init(struct store *st)
{
    int rc = store_index_define(st, "enterprises", "division", false);
    if (rc == 0)
        rc = store_index_define(st, "carriers", "division", false);
    if (rc == 0)
        rc = store_index_define(st, "divisions", "parent", false);
    return rc;
}

bool org_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > ORG_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(id[i]) && !strchr("_.-", id[i]))
            return false;
    return true;
}

static bool name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n <= ORG_NAME_MAX && g_utf8_validate(name, -1, NULL);
}

int org_division_add(struct store *st, const char *code, const char *name, const char **why)
{
    char norm[8];
    if (!division_normalize(code, norm, sizeof(norm))) {
        *why = "division code must be 2, 4 or 6 digits";
        return STORE_EINVAL;
    }
    if (!name_valid(name)) {
        *why = "name must be 1 to 200 bytes of UTF-8";
        return STORE_EINVAL;
    }
    json_t *doc = json_pack("{s:s, s:s, s:I}", "code", norm, "name", name, "created_at",
                            (json_int_t)clock_now_ms());
    if (strlen(norm) > 2) {
        char parent[8];
        memcpy(parent, norm, strlen(norm) - 2);
        parent[strlen(norm) - 2] = '\0';
        json_object_set_new(doc, "parent", json_string(parent));
    }
    int rc = store_doc_put(st, "divisions", norm, doc, true);
    json_decref(doc);
    if (rc == STORE_ECONFLICT)
        *why = "division exists";
    return rc;
}

static int org_add(struct store *st, const char *coll, const char *id, const char *name,
                   const char *division, json_t *extra, const char **why)
{
    char norm[8];
    int rc = STORE_EINVAL;
    if (!org_id_valid(id))
        *why = "id must be 1 to 64 characters of A-Z a-z 0-9 _ . -";
    else if (!name_valid(name))
        *why = "name must be 1 to 200 bytes of UTF-8";
    else if (!division_normalize(division, norm, sizeof(norm)))
        *why = "division code must be 2, 4 or 6 digits";
    else
        rc = STORE_OK;
    if (rc != STORE_OK) {
        json_decref(extra);
        return rc;
    }
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I}", "id", id, "name", name, "division", norm,
                            "created_at", (json_int_t)clock_now_ms());
    json_object_update(doc, extra);
    json_decref(extra);
    rc = store_doc_put(st, coll, id, doc, true);
    json_decref(doc);
    if (rc == STORE_ECONFLICT)
        *why = "id exists";
    return rc;
}

int org_enterprise_add(struct store *st, const char *id, const char *name, const char *division,
                       bool key_supervised, const char **why)
{
    return org_add(st, "enterprises", id, name, division, json_pack("{s:b}", "key", key_supervised),
                   why);
}

int org_carrier_add(struct store *st, const char *id, const char *name, const char *division,
                    const char **why)
{
    return org_add(st, "carriers", id, name, division, json_object(), why);
}

int org_enterprise_get(struct store *st, const char *id, json_t **out)
{
    return store_doc_get(st, "enterprises", id, out);
}

int org_carrier_get(struct store *st, const char *id, json_t **out)
{
    return store_doc_get(st, "carriers", id, out);
}

#define DIVISIONS_KEPT 100000

struct kept_division {
    char *division;  /* NULL: the organisation does not exist */
    int64_t at_ms;   /* monotonic */
    bool refreshing; /* a read sent later is under way */
    uint64_t gen;    /* which entry it is: a late answer for a dropped one is dropped */
};

static uint64_t kept_gen;

struct refresh {
    char *key;
    uint64_t gen;
};

/* A kept division past its time is served a while longer, at most this
 * many times its time, while it is read again without waiting. */
#define DIVISIONS_STALE_FACTOR 10

static int64_t divisions_ttl_ms;
static GHashTable *divisions; /* "kind:id" -> struct kept_division* */

static void kept_free(gpointer p)
{
    struct kept_division *k = p;
    g_free(k->division);
    g_free(k);
}

void org_cache_divisions(int64_t ttl_ms)
{
    divisions_ttl_ms = ttl_ms;
    if (ttl_ms > 0 && !divisions)
        divisions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, kept_free);
    if (ttl_ms <= 0)
        g_clear_pointer(&divisions, g_hash_table_destroy);
}

void org_division_forget(const char *id)
{
    if (!divisions)
        return;
    for (int kind = ORG_ENTERPRISE; kind <= ORG_CARRIER; kind++) {
        char *key = g_strdup_printf("%d:%s", kind, id);
        g_hash_table_remove(divisions, key);
        g_free(key);
    }
}

/* A kept division read again: replaced (by NULL if its organisation is
 * gone), or dropped if its record lacks one (a failed read leaves it, to
 * be tried again). */
static void on_refreshed(int rc, const struct store_docs *d, void *ud)
{
    struct refresh *x = ud;
    char *key = x->key;
    struct kept_division *k = divisions ? g_hash_table_lookup(divisions, key) : NULL;
    if (k && k->gen != x->gen)
        k = NULL; /* dropped and read again meanwhile: this answer is older */
    if (k && rc == STORE_OK) {
        const char *div =
            d->n == 1 ? json_string_value(json_object_get(d->docs[0], "division")) : NULL;
        if (div || d->n == 0) { /* its division, or still none such */
            g_free(k->division);
            k->division = g_strdup(div);
            k->at_ms = clock_mono_ms();
            k->refreshing = false;
        } else {
            g_hash_table_remove(divisions, key);
        }
    } else if (k) {
        k->refreshing = false;
    }
    g_free(key);
    g_free(x);
}

/* Keeps division for key (taken). */
static void keep(char *key, const char *division, int64_t now)
{
    if (g_hash_table_size(divisions) >= DIVISIONS_KEPT)
        g_hash_table_remove_all(divisions);
    struct kept_division *k = g_new0(struct kept_division, 1);
    k->division = g_strdup(division);
    k->at_ms = now;
    k->gen = ++kept_gen;
    g_hash_table_replace(divisions, key, k);
}

static bool refresh_later(struct store *st, int kind, const char *org, const char *key,
                          uint64_t gen)
{
    const char *ids[] = {org};
    struct refresh *x = g_new(struct refresh, 1);
    x->key = g_strdup(key);
    x->gen = gen;
    if (store_docs_get_later(st, kind == ORG_ENTERPRISE ? "enterprises" : "carriers", ids, 1,
                             on_refreshed, x) == STORE_OK)
        return true;
    g_free(x->key);
    g_free(x);
    return false;
}

char *org_division_of(struct store *st, const char *role, const char *org)
{
    if (!role || !org)
        return NULL;
    int kind = juris_org_kind_of_role(role);
    if (kind == ORG_DIVISION) {
        char norm[8];
        return division_normalize(org, norm, sizeof(norm)) ? g_strdup(norm) : NULL;
    }
    if (kind != ORG_ENTERPRISE && kind != ORG_CARRIER)
        return NULL;
    char *key = divisions ? g_strdup_printf("%d:%s", kind, org) : NULL;
    struct kept_division *k = key ? g_hash_table_lookup(divisions, key) : NULL;
    int64_t now = key ? clock_mono_ms() : 0;
    if (k && now - k->at_ms < divisions_ttl_ms) {
        g_free(key);
        return g_strdup(k->division);
    }
    if (k && now - k->at_ms < DIVISIONS_STALE_FACTOR * divisions_ttl_ms && store_reads_later(st)) {
        if (!k->refreshing) /* read again without waiting; this one served meanwhile */
            k->refreshing = refresh_later(st, kind, org, key, k->gen);
        g_free(key);
        return g_strdup(k->division);
    }
    json_t *doc = NULL;
    if (store_doc_get(st, kind == ORG_ENTERPRISE ? "enterprises" : "carriers", org, &doc) != 0) {
        g_free(key);
        return NULL;
    }
    const char *d = json_string_value(json_object_get(doc, "division"));
    char *out = d ? g_strdup(d) : NULL;
    json_decref(doc);
    if (key && out)
        keep(key, out, now);
    else
        g_free(key);
    return out;
}

bool org_division_kept(const char *role, const char *org)
{
    int kind = role && org ? juris_org_kind_of_role(role) : -1;
    if (kind != ORG_ENTERPRISE && kind != ORG_CARRIER)
        return true; /* nothing to read */
    if (!divisions)
        return false;
    char *key = g_strdup_printf("%d:%s", kind, org);
    struct kept_division *k = g_hash_table_lookup(divisions, key);
    g_free(key);
    return k && clock_mono_ms() - k->at_ms < DIVISIONS_STALE_FACTOR * divisions_ttl_ms;
}

int org_division_get(struct store *st, const char *role, const char *org, char **out)
{
    *out = NULL;
    if (org_division_kept(role, org)) {
        *out = org_division_of(st, role, org);
        return *out ? STORE_OK : STORE_ENOTFOUND;
    }
    json_t *doc = NULL;
    int rc = juris_org_kind_of_role(role) == ORG_CARRIER ? org_carrier_get(st, org, &doc)
                                                         : org_enterprise_get(st, org, &doc);
    if (rc == STORE_OK)
        *out = g_strdup(jx_str(doc, "division") ? jx_str(doc, "division") : "");
    json_decref(doc);
    return rc;
}

/* Divisions read for org_divisions_read_later: one read per collection. */
struct divisions_read {
    int out; /* reads not answered yet */
    void (*done)(void *ud);
    void *ud;
};

struct divisions_part {
    struct divisions_read *all;
    int kind;
    GHashTable *asked; /* org ids asked for (owned): those not found are kept absent */
};

static void on_divisions(int rc, const struct store_docs *d, void *ud)
{
    struct divisions_part *part = ud;
    struct divisions_read *x = part->all;
    int64_t now = clock_mono_ms();
    for (int i = 0; rc == STORE_OK && divisions && i < d->n; i++) {
        const char *div = d->docs[i] ? jx_str(d->docs[i], "division") : NULL;
        if (div)
            keep(g_strdup_printf("%d:%s", part->kind, d->ids[i]), div, now);
        g_hash_table_remove(part->asked, d->ids[i]);
    }
    /* an organisation that does not exist is kept as such (NULL), so that
     * the request that asked finds it absent without a read; not past half
     * the table, so that ids a client makes up never crowd out real ones */
    GHashTableIter it;
    gpointer id;
    g_hash_table_iter_init(&it, part->asked);
    while (rc == STORE_OK && divisions && g_hash_table_size(divisions) < DIVISIONS_KEPT / 2 &&
           g_hash_table_iter_next(&it, &id, NULL))
        keep(g_strdup_printf("%d:%s", part->kind, (const char *)id), NULL, now);
    g_hash_table_destroy(part->asked);
    g_free(part);
    if (--x->out == 0) {
        x->done(x->ud);
        g_free(x);
    }
}

bool org_divisions_read_later(struct store *st, const char *const *roles, const char *const *orgs,
                              int n, void (*done)(void *ud), void *ud)
{
    if (!divisions || !store_reads_later(st))
        return false;
    struct divisions_read *x = g_new(struct divisions_read, 1);
    *x = (struct divisions_read){1, done, ud}; /* 1: held while sending */
    struct divisions_part *part[2];            /* enterprises, carriers: the ids each asks for */
    GPtrArray *of[2]; /* the same ids, in order (borrowed from part->asked) */
    for (int c = 0; c < 2; c++) {
        part[c] = g_new(struct divisions_part, 1);
        *part[c] =
            (struct divisions_part){x, c ? ORG_CARRIER : ORG_ENTERPRISE,
                                    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)};
        of[c] = g_ptr_array_new();
    }
    for (int i = 0; i < n; i++) {
        int kind = juris_org_kind_of_role(roles[i]);
        int c = kind == ORG_CARRIER;
        if ((kind != ORG_ENTERPRISE && kind != ORG_CARRIER) ||
            org_division_kept(roles[i], orgs[i]) || g_hash_table_contains(part[c]->asked, orgs[i]))
            continue;
        char *id = g_strdup(orgs[i]);
        g_hash_table_add(part[c]->asked, id);
        g_ptr_array_add(of[c], id);
    }
    for (int c = 0; c < 2; c++) {
        if (of[c]->len > 0 &&
            store_docs_get_later(st, c ? "carriers" : "enterprises",
                                 (const char *const *)of[c]->pdata, (int)of[c]->len, on_divisions,
                                 part[c]) == STORE_OK) {
            x->out++;
        } else {
            g_hash_table_destroy(part[c]->asked);
            g_free(part[c]);
        }
        g_ptr_array_free(of[c], TRUE);
    }
    bool sent = --x->out > 0;
    if (!sent)
        g_free(x);
    return sent;
}
