/* The daily commitment announcement over WebSocket and REST:
 *   commitment.submit                      (WebSocket) file or correct today's
 *   POST /api/v1/commitments               the same over REST
 *   GET  /api/v1/commitments?date=&division=   the day for regulators: who
 *                                          filed, who has not, roll-up per district
 *   GET  /api/v1/commitments/{enterprise}?date=   one commitment with its
 *                                          earlier versions
 * Only the enterprise's own users file (admin may name one); regulators
 * read within their jurisdiction. */
#include "common/bizdate.h"
#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/commitment.h"
#include "records/jurisdiction.h"
#include "server/conn.h"
#include "server/rest.h"
#include "server/server.h"
#include "server/ws.h"

#include <string.h>

static int deadline_min(void)
{
    return bizdate_minute_parse(server.cfg.commitment_deadline);
}

/* Files msg for the user (role, org, user_id); *out gets the document. */
static enum err_code submit(const char *role, const char *org, const char *user_id,
                            const json_t *msg, json_t **out, const char **why)
{
    json_t *ev = json_object_get(msg, "enterprise");
    const char *ent = json_string_value(ev);
    if (ev && !ent) {
        *why = "enterprise must be a string";
        return ERR_BAD_REQUEST;
    }
    if (strcmp(role, "corp") == 0) {
        if (ent && strcmp(ent, org) != 0) {
            *why = "you file only your own enterprise's commitment";
            return ERR_FORBIDDEN;
        }
        ent = org;
    } else if (strcmp(role, "admin") != 0) {
        *why = "only the enterprise files its commitment";
        return ERR_FORBIDDEN;
    } else if (!ent) {
        *why = "enterprise is required";
        return ERR_BAD_REQUEST;
    }
    enum err_code e =
        commitment_file(server.store, ent, user_id, msg, clock_now_ms(), deadline_min(), out, why);
    if (e == ERR_NONE)
        log_info("commitment", "enterprise=%s date=%s version=%lld late=%s by user=%s", ent,
                 jx_str(*out, "date"), (long long)jx_int(*out, "version", 0),
                 jx_bool(*out, "version_late", false) ? "yes" : "no", user_id);
    return e;
}

static void h_submit(struct conn *c, json_t *id, json_t *msg)
{
    json_t *out = NULL;
    const char *why = NULL;
    enum err_code e = submit(c->role, c->org, c->user_id, msg, &out, &why);
    if (e != ERR_NONE)
        conn_reply_error(c, id, e, why);
    else
        conn_reply(c, id, json_pack("{s:o}", "commitment", out));
}

const struct ws_handler commitment_handlers[] = {
    {"commitment.submit", h_submit, true},
    {NULL, NULL, false},
};

static void route_submit(struct rest_req *r)
{
    json_t *out = NULL;
    const char *why = NULL;
    if (!r->body) {
        rest_error(r, ERR_BAD_REQUEST, "body must be a commitment object");
        return;
    }
    enum err_code e = submit(r->acct->role, r->acct->org, r->acct->id, r->body, &out, &why);
    if (e != ERR_NONE)
        rest_error(r, e, why);
    else
        rest_reply(r, 200, json_pack("{s:o}", "commitment", out));
}

/* The date query parameter (default today); answers bad_request itself. */
static bool date_param(struct rest_req *r, char out[BIZDATE_LEN])
{
    const char *d = rest_query(r, "date");
    int64_t a, b;
    if (!d) {
        bizdate_of(clock_now_ms(), out);
        return true;
    }
    if (!bizdate_span(d, &a, &b)) {
        rest_error(r, ERR_BAD_REQUEST, "date must be YYYY-MM-DD");
        return false;
    }
    g_strlcpy(out, d, BIZDATE_LEN);
    return true;
}

static void route_day(struct rest_req *r)
{
    char date[BIZDATE_LEN], div[8] = "";
    if (!date_param(r, date))
        return;
    const char *dq = rest_query(r, "division");
    const char *only = NULL;
    if (dq && !division_normalize(dq, div, sizeof(div))) {
        rest_error(r, ERR_BAD_REQUEST, "division must be a division code");
        return;
    }
    struct principal p = {r->acct->role, r->acct->org};
    if (strcmp(r->acct->role, "corp") == 0) {
        only = r->acct->org; /* a plant sees its own day */
        div[0] = '\0';
    } else if (strcmp(r->acct->role, "gov") == 0) {
        if (!div[0] && !division_normalize(r->acct->org, div, sizeof(div))) {
            rest_error(r, ERR_FORBIDDEN, "your account has no valid division");
            return;
        }
        if (!juris_reaches(&p, ORG_DIVISION, div, div)) {
            rest_error(r, ERR_FORBIDDEN, "the division is outside your jurisdiction");
            return;
        }
    } else if (strcmp(r->acct->role, "admin") != 0) {
        rest_error(r, ERR_FORBIDDEN, "commitments are for enterprises and regulators");
        return;
    }
    json_t *out = NULL;
    if (commitment_day(server.store, date, div, only, deadline_min(), &out) != STORE_OK) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    rest_reply(r, 200, out);
}

static void route_one(struct rest_req *r)
{
    char date[BIZDATE_LEN];
    if (!date_param(r, date))
        return;
    json_t *ent = NULL, *doc = NULL;
    int rc = store_doc_get(server.store, "enterprises", r->params[0], &ent);
    struct principal p = {r->acct->role, r->acct->org};
    if (rc == STORE_ENOTFOUND) {
        rest_error(r, ERR_NOT_FOUND, "no such enterprise");
    } else if (rc != STORE_OK) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
    } else if (!juris_reaches(&p, ORG_ENTERPRISE, r->params[0], jx_str(ent, "division"))) {
        rest_error(r, ERR_FORBIDDEN, "the enterprise is outside your jurisdiction");
    } else if ((rc = commitment_get(server.store, r->params[0], date, &doc)) == STORE_ENOTFOUND) {
        rest_error(r, ERR_NOT_FOUND, "no commitment filed that day");
    } else if (rc != STORE_OK) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
    } else {
        rest_reply(r, 200, json_pack("{s:O}", "commitment", doc));
    }
    json_decref(doc);
    json_decref(ent);
}

const struct rest_route commitment_routes[] = {
    {REST_POST, "/api/v1/commitments", route_submit, true},
    {REST_GET, "/api/v1/commitments", route_day, true},
    {REST_GET, "/api/v1/commitments/*", route_one, true},
    {0},
};
