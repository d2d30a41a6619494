/* Route look-up and query helpers for the REST tables (see rest.h). */
#include "server/rest.h"

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
