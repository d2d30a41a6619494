/* Route look-up and query helpers for the REST tables (see rest.h), and
 * the pieces the list routes share: the from/to window, the division
 * filter, and the newest-first page. */
#include "server/rest.h"

#include "common/jsonx.h"
#include "records/jurisdiction.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct rest_route *const tables[] = {
    account_routes, call_routes,  enterprise_routes, commitment_routes, inbox_routes,
    notice_routes,  sched_routes, selfeval_routes,   sensor_routes, alarm_routes};

/* True if segs match pattern; params get the "*" segments. */
static bool match(const char *pattern, char **segs, const char *params[REST_MAX_PARAMS])
{
    char **pat = g_strsplit(pattern, "/", -1);
    bool ok = g_strv_length(pat) == g_strv_length(segs);
    int np = 0;
    for (int i = 0; ok && pat[i]; i++) {
        if (strcmp(pat[i], "*") == 0) {
            if (!segs[i][0] || np == REST_MAX_PARAMS)
                ok = false;
            else
                params[np++] = segs[i];
        } else if (strcmp(pat[i], segs[i]) != 0) {
            ok = false;
        }
    }
    g_strfreev(pat);
    return ok;
}

const struct rest_route *rest_find(enum rest_method method, char **segs,
                                   const char *params[REST_MAX_PARAMS], bool *path_known)
{
    *path_known = false;
    for (size_t t = 0; t < G_N_ELEMENTS(tables); t++) {
        for (const struct rest_route *r = tables[t]; r->pattern; r++) {
            const char *p[REST_MAX_PARAMS] = {0};
            if (!match(r->pattern, segs, p))
                continue;
            if (r->method != method) {
                *path_known = true;
                continue;
            }
            memcpy(params, p, sizeof(p));
            return r;
        }
    }
    return NULL;
}

const char *rest_query(const struct rest_req *r, const char *name)
{
    return r->query ? g_hash_table_lookup(r->query, name) : NULL;
}

bool rest_query_int(struct rest_req *r, const char *name, int64_t min, int64_t max, int64_t def,
                    int64_t *out)
{
    const char *v = rest_query(r, name);
    *out = def;
    if (!v)
        return true;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max) {
        char msg[160];
        g_snprintf(msg, sizeof(msg), "query parameter %s must be an integer in [%lld, %lld]", name,
                   (long long)min, (long long)max);
        rest_error(r, ERR_BAD_REQUEST, msg);
        return false;
    }
    *out = n;
    return true;
}

bool rest_query_range(struct rest_req *r, int64_t *from, int64_t *to)
{
    return rest_query_int(r, "from", 0, INT64_MAX, 0, from) &&
           rest_query_int(r, "to", 0, INT64_MAX, INT64_MAX, to);
}

bool rest_query_division(struct rest_req *r, char out[8])
{
    const char *v = rest_query(r, "division");
    out[0] = '\0';
    if (v && !division_normalize(v, out, 8)) {
        rest_error(r, ERR_BAD_REQUEST, "division must be a division code");
        return false;
    }
    return true;
}

struct keyed {
    int64_t key;
    json_t *item;
};

static int by_key_desc(const void *x, const void *y)
{
    int64_t a = ((const struct keyed *)x)->key, b = ((const struct keyed *)y)->key;
    return a < b ? 1 : a > b ? -1 : 0;
}

bool rest_newest_first(json_t *items, const char *field, int64_t limit)
{
    size_t n = json_array_size(items);
    struct keyed *v = g_new(struct keyed, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        v[i].item = json_incref(json_array_get(items, i));
        v[i].key = jx_int(v[i].item, field, 0);
    }
    qsort(v, n, sizeof(*v), by_key_desc);
    json_array_clear(items);
    for (size_t i = 0; i < n; i++) {
        if (i < (size_t)limit)
            json_array_append_new(items, v[i].item);
        else
            json_decref(v[i].item);
    }
    g_free(v);
    return n > (size_t)limit;
}
