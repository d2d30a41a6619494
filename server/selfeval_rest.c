/* REST routes for regulators' monthly self-evaluations (records/selfeval.h):
 *   POST /api/v1/self-evaluations   {"summary"}: file this period's (gov)
 *   GET  /api/v1/self-evaluations   period=YYYY-MM, division=CODE: who in
 *                                   the division filed and who has not */
#include "common/bizdate.h"
#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/audit.h"
#include "records/jurisdiction.h"
#include "records/selfeval.h"
#include "server/rest.h"
#include "server/server.h"

#include <string.h>

static void route_file(struct rest_req *r)
{
    if (strcmp(r->acct->role, "gov") != 0) {
        rest_error(r, ERR_FORBIDDEN, "only regulators (gov) file self-evaluations");
        return;
    }
    const char *summary = r->body ? jx_str(r->body, "summary") : NULL;
    json_t *doc = NULL;
    const char *why = "summary must be a non-empty string";
    int rc =
        selfeval_file(server.store, r->acct->id, r->acct->org, summary, clock_now_ms(), &doc, &why);
    if (rc == STORE_EINVAL) {
        rest_error(r, ERR_BAD_REQUEST, why);
        return;
    }
    if (rc != STORE_OK) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    audit_log(server.store, r->acct->id, "selfeval.file", jx_str(doc, "period"), "ok", r->peer);
    log_info("selfeval", "user=%s filed the self-evaluation of period %s", r->acct->id,
             jx_str(doc, "period"));
    rest_reply(r, 201, json_pack("{s:o}", "self_evaluation", doc));
}

struct gov_scan {
    const char *division;
    json_t *filed;
    json_t *missing;
};

static bool pick_gov(struct account *a, void *ud)
{
    struct gov_scan *s = ud;
    char div[8];
    if (strcmp(a->role, "gov") != 0 || a->disabled ||
        !division_normalize(a->org, div, sizeof(div)) || !division_covers(s->division, div))
        return true;
    if (!json_object_get(s->filed, a->id))
        json_array_append_new(s->missing, account_public_json(a));
    return true;
}

static void route_list(struct rest_req *r)
{
    char today[BIZDATE_LEN], period[8], div[8];
    bizdate_of(clock_now_ms(), today);
    g_strlcpy(period, today, sizeof(period));
    const char *p = rest_query(r, "period");
    if (p) {
        if (strlen(p) != 7 || p[4] != '-' || !g_ascii_isdigit(p[0]) || !g_ascii_isdigit(p[5])) {
            rest_error(r, ERR_BAD_REQUEST, "period must be YYYY-MM");
            return;
        }
        g_strlcpy(period, p, sizeof(period));
    }
    const char *d = rest_query(r, "division") ? rest_query(r, "division") : r->acct->org;
    if (!division_normalize(d, div, sizeof(div))) {
        rest_error(r, ERR_BAD_REQUEST, "division must be a division code");
        return;
    }
    struct principal who = {r->acct->role, r->acct->org};
    if (!juris_reaches(&who, ORG_DIVISION, div, div)) {
        rest_error(r, ERR_FORBIDDEN, "that division is outside your jurisdiction");
        return;
    }
    struct gov_scan s = {div, NULL, json_array()};
    if (selfeval_of_period(server.store, period, div, &s.filed) != STORE_OK ||
        account_each(server.store, pick_gov, &s) != STORE_OK) {
        json_decref(s.filed);
        json_decref(s.missing);
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    json_t *filed = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(s.filed, k, v) json_array_append(filed, v);
    json_decref(s.filed);
    rest_reply(r, 200,
               json_pack("{s:s, s:s, s:o, s:o}", "period", period, "division", div, "filed", filed,
                         "missing", s.missing));
}

const struct rest_route selfeval_routes[] = {
    {REST_POST, "/api/v1/self-evaluations", route_file, true, false},
    {REST_GET, "/api/v1/self-evaluations", route_list, true, false},
    {0},
};
