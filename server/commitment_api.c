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
#include "records/org.h"
#include "server/conn.h"
#include "server/rest.h"
#include "server/server.h"
#include "server/ws.h"

#include <string.h>

static int deadline_min(void)
{
    return bizdate_minute_parse(server.cfg.commitment_deadline);
}

/* A filing under way: its caller's answer. */
struct submitted {
    char *enterprise, *user_id;
    void (*answer)(enum err_code e, json_t *commitment, const char *why, void *ud);
    void *ud;
};

static void on_filed(enum err_code e, json_t *commitment, const char *why, void *ud)
{
    struct submitted *x = ud;
    if (e == ERR_NONE)
        log_info("commitment", "enterprise=%s date=%s version=%lld late=%s by user=%s",
                 x->enterprise, jx_str(commitment, "date"),
                 (long long)jx_int(commitment, "version", 0),
                 jx_bool(commitment, "version_late", false) ? "yes" : "no", x->user_id);
    x->answer(e, commitment, why, x->ud);
    g_free(x->enterprise);
    g_free(x->user_id);
    g_free(x);
}

/* Files msg for the user (role, org, user_id): answer(e, commitment
 * (borrowed), why, ud), at once or once its reads are in. */
static void submit(const char *role, const char *org, const char *user_id, const json_t *msg,
                   void (*answer)(enum err_code, json_t *, const char *, void *), void *ud)
{
    json_t *ev = json_object_get(msg, "enterprise");
    const char *ent = json_string_value(ev);
    if (ev && !ent) {
        answer(ERR_BAD_REQUEST, NULL, "enterprise must be a string", ud);
        return;
    }
    if (strcmp(role, "corp") == 0) {
        if (ent && strcmp(ent, org) != 0) {
            answer(ERR_FORBIDDEN, NULL, "you file only your own enterprise's commitment", ud);
            return;
        }
        ent = org;
    } else if (strcmp(role, "admin") != 0) {
        answer(ERR_FORBIDDEN, NULL, "only the enterprise files its commitment", ud);
        return;
    } else if (!ent) {
        answer(ERR_BAD_REQUEST, NULL, "enterprise is required", ud);
        return;
    }
    if (strlen(ent) > ORG_ID_MAX) {
        answer(ERR_NOT_FOUND, NULL, "no such enterprise", ud);
        return;
    }
    struct submitted *x = g_new(struct submitted, 1);
    *x = (struct submitted){g_strdup(ent), g_strdup(user_id), answer, ud};
    commitment_file_later(server.store, ent, user_id, msg, clock_now_ms(), deadline_min(), on_filed,
                          x);
}

static void ws_answer(enum err_code e, json_t *commitment, const char *why, void *ud)
{
    conn_req_answer(ud, e, why,
                    e == ERR_NONE ? json_pack("{s:O}", "commitment", commitment) : NULL);
}

static void h_submit(struct conn *c, json_t *id, json_t *msg)
{
    submit(c->role, c->org, c->user_id, msg, ws_answer, conn_req_new(c, id));
}

const struct ws_handler commitment_handlers[] = {
    {"commitment.submit", h_submit, true, false},
    {NULL, NULL, false, false},
};

static void rest_answer(enum err_code e, json_t *commitment, const char *why, void *ud)
{
    uint64_t hold = GPOINTER_TO_SIZE(ud);
    if (e != ERR_NONE)
        rest_held_error(hold, e, why);
    else
        rest_held_reply(hold, 200, json_pack("{s:O}", "commitment", commitment));
}

static void route_submit(struct rest_req *r)
{
    if (!r->body) {
        rest_error(r, ERR_BAD_REQUEST, "body must be a commitment object");
        return;
    }
    submit(r->acct->role, r->acct->org, r->acct->id, r->body, rest_answer,
           GSIZE_TO_POINTER(rest_hold(r)));
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
    {REST_POST, "/api/v1/commitments", route_submit, true, false},
    {REST_GET, "/api/v1/commitments", route_day, true, false},
    {REST_GET, "/api/v1/commitments/*", route_one, true, false},
    {0},
};
