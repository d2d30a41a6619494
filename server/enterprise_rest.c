/* REST routes of the enterprise file (一企一档) and its review workflow:
 *   GET    /api/v1/enterprises                    list (filters, paged)
 *   POST   /api/v1/enterprises/import             bulk import (gov, admin)
 *   GET    /api/v1/enterprises/{id}               record and draft
 *   PUT    /api/v1/enterprises/{id}               edit the draft (corp)
 *   POST   /api/v1/enterprises/{id}/submit        submit the draft (corp)
 *   POST   /api/v1/enterprises/{id}/review        approve or reject (gov)
 *   GET    /api/v1/enterprises/{id}/history       approved versions
 *   GET    /api/v1/enterprises/{id}/hazard-sources
 *   GET|PUT|DELETE /api/v1/enterprises/{id}/hazard-sources/{sid}
 * Every route checks jurisdiction (jurisdiction.h): a corp user reaches its
 * own enterprise, a gov user those in its division; edits are the
 * enterprise's, reviews the regulator's, admin may do both. */
#include "common/jsonx.h"
#include "common/log.h"
#include "records/audit.h"
#include "records/enterprise.h"
#include "records/enterprise_import.h"
#include "records/jurisdiction.h"
#include "server/rest.h"
#include "server/server.h"

#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 50
#define LIST_MAX 500
#define HISTORY_DEFAULT 20
#define HISTORY_MAX 100

static bool is_role(const struct rest_req *r, const char *role)
{
    return strcmp(r->acct->role, role) == 0;
}

static bool reaches(const struct rest_req *r, const char *id, const char *division)
{
    struct principal p = {r->acct->role, r->acct->org};
    return juris_reaches(&p, ORG_ENTERPRISE, id, division);
}

/* The enterprise of params[0] if the caller reaches it; otherwise answers
 * (not_found, forbidden, unavailable) and returns NULL. */
static json_t *reachable(struct rest_req *r)
{
    json_t *doc = NULL;
    int rc = store_doc_get(server.store, "enterprises", r->params[0], &doc);
    if (rc == STORE_ENOTFOUND) {
        rest_error(r, ERR_NOT_FOUND, "no such enterprise");
        return NULL;
    }
    if (rc != STORE_OK) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return NULL;
    }
    if (!reaches(r, r->params[0], jx_str(doc, "division"))) {
        json_decref(doc);
        rest_error(r, ERR_FORBIDDEN, "the enterprise is outside your jurisdiction");
        return NULL;
    }
    return doc;
}

/* Edits are the enterprise's own (and admin's). */
static bool may_edit(struct rest_req *r)
{
    if (is_role(r, "corp") || is_role(r, "admin"))
        return true;
    rest_error(r, ERR_FORBIDDEN, "only the enterprise's own users edit its file");
    return false;
}

/* The preamble of the routes that act on an enterprise without reading its
 * record: true if the caller reaches the enterprise of params[0] and, when
 * edit is true, may edit its file; otherwise answers the refusal and
 * returns false. */
static bool may_access(struct rest_req *r, bool edit)
{
    json_t *doc = reachable(r);
    bool ok = doc && (!edit || may_edit(r));
    json_decref(doc);
    return ok;
}

static json_t *summary(json_t *doc)
{
    json_t *s =
        json_pack("{s:O, s:O, s:O, s:b, s:s, s:I, s:I}", "id", json_object_get(doc, "id"), "name",
                  json_object_get(doc, "name"), "division", json_object_get(doc, "division"), "key",
                  jx_bool(doc, "key", false), "review_status",
                  jx_str(doc, "review_status") ? jx_str(doc, "review_status") : "none", "version",
                  (json_int_t)jx_int(doc, "version", 0), "hazard_level",
                  (json_int_t)jx_int(doc, "hazard_level", 0));
    static const char *const optional[] = {"park", "credit_code", "confirmed_at"};
    for (size_t i = 0; i < G_N_ELEMENTS(optional); i++)
        if (json_object_get(doc, optional[i]))
            json_object_set(s, optional[i], json_object_get(doc, optional[i]));
    return s;
}

struct list_filter {
    const struct rest_req *r;
    const char *park, *status;
    int key;   /* -1 any */
    int level; /* -1 any */
    GPtrArray *hits;
};

static bool list_one(const char *id, json_t *doc, void *ud)
{
    struct list_filter *f = ud;
    const char *status = jx_str(doc, "review_status") ? jx_str(doc, "review_status") : "none";
    if (!reaches(f->r, id, jx_str(doc, "division")))
        return true;
    if (f->park && g_strcmp0(jx_str(doc, "park"), f->park) != 0)
        return true;
    if (f->status && strcmp(status, f->status) != 0)
        return true;
    if (f->key >= 0 && jx_bool(doc, "key", false) != (f->key == 1))
        return true;
    if (f->level >= 0 && jx_int(doc, "hazard_level", 0) != f->level)
        return true;
    g_ptr_array_add(f->hits, json_incref(doc));
    return true;
}

static int by_id(const void *a, const void *b)
{
    return g_strcmp0(jx_str(*(json_t *const *)a, "id"), jx_str(*(json_t *const *)b, "id"));
}

static void route_list(struct rest_req *r)
{
    static const char *const statuses[] = {"none", "draft", "submitted", "rejected", "approved"};
    struct list_filter f = {.r = r, .key = -1, .level = -1};
    int64_t offset, limit, level;
    char div[8] = "", own[8] = "";
    if (!rest_query_int(r, "offset", 0, 1000000, 0, &offset) ||
        !rest_query_int(r, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit) ||
        !rest_query_int(r, "hazard_level", 0, 4, -1, &level))
        return;
    f.level = (int)level;
    f.park = rest_query(r, "park");
    f.status = rest_query(r, "status");
    const char *key = rest_query(r, "key");
    if (key) {
        if (strcmp(key, "true") && strcmp(key, "false")) {
            rest_error(r, ERR_BAD_REQUEST, "key must be true or false");
            return;
        }
        f.key = strcmp(key, "true") == 0;
    }
    bool status_ok = !f.status;
    for (size_t i = 0; f.status && i < G_N_ELEMENTS(statuses); i++)
        status_ok = status_ok || strcmp(f.status, statuses[i]) == 0;
    if (!status_ok) {
        rest_error(r, ERR_BAD_REQUEST,
                   "status must be none, draft, submitted, rejected or approved");
        return;
    }
    if (!rest_query_division(r, div))
        return;
    if (is_role(r, "trs")) {
        rest_error(r, ERR_FORBIDDEN, "transport users have no enterprises");
        return;
    }
    if (is_role(r, "gov")) {
        if (!division_normalize(r->acct->org, own, sizeof(own))) {
            rest_error(r, ERR_FORBIDDEN, "your account has no valid division");
            return;
        }
        if (div[0] && !division_covers(own, div)) {
            rest_error(r, ERR_FORBIDDEN, "the division is outside your jurisdiction");
            return;
        }
    }
    const char *prefix = div[0] ? div : own;
    f.hits = g_ptr_array_new_with_free_func((GDestroyNotify)json_decref);
    int rc = store_index_find(server.store, "enterprises", "division", prefix, true, list_one, &f);
    if (rc != STORE_OK) {
        g_ptr_array_unref(f.hits);
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    g_ptr_array_sort(f.hits, by_id);
    json_t *out = json_array();
    for (guint i = (guint)offset; i < f.hits->len && i < (guint)(offset + limit); i++)
        json_array_append_new(out, summary(g_ptr_array_index(f.hits, i)));
    rest_reply(r, 200,
               json_pack("{s:o, s:I, s:I, s:I}", "enterprises", out, "total",
                         (json_int_t)f.hits->len, "offset", (json_int_t)offset, "limit",
                         (json_int_t)limit));
    g_ptr_array_unref(f.hits);
}

static void route_get(struct rest_req *r)
{
    json_t *doc = reachable(r);
    if (!doc)
        return;
    int rc;
    json_t *draft = enterprise_draft_get(server.store, r->params[0], &rc);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
    } else {
        json_t *body = json_pack("{s:O}", "enterprise", doc);
        json_object_set(body, "draft", draft ? draft : json_null());
        rest_reply(r, 200, body);
    }
    json_decref(draft);
    json_decref(doc);
}

/* Answers a workflow result: name (draft or enterprise) -> out. */
static void answer(struct rest_req *r, enum err_code e, const char *why, const char *name,
                   json_t *out)
{
    if (e != ERR_NONE)
        rest_error(r, e, why);
    else
        rest_reply(r, 200, json_pack("{s:o}", name, out ? out : json_null()));
}

static void route_put(struct rest_req *r)
{
    if (!may_access(r, true))
        return;
    if (!r->body) {
        rest_error(r, ERR_BAD_REQUEST, "body must be a JSON object of record fields");
        return;
    }
    json_t *out = NULL;
    const char *why = NULL;
    enum err_code e = enterprise_edit(server.store, r->params[0], r->acct->id, r->body, &out, &why);
    if (e == ERR_NONE)
        log_info("enterprise", "enterprise=%s draft edited by user=%s", r->params[0], r->acct->id);
    answer(r, e, why, "draft", out);
}

static void route_submit(struct rest_req *r)
{
    if (!may_access(r, true))
        return;
    json_t *out = NULL;
    const char *why = NULL;
    enum err_code e = enterprise_submit(server.store, r->params[0], r->acct->id, &out, &why);
    if (e == ERR_NONE) {
        log_info("enterprise", "enterprise=%s draft submitted by user=%s", r->params[0],
                 r->acct->id);
        audit_log(server.store, r->acct->id, "enterprise.submit", r->params[0], "ok", r->peer);
    }
    answer(r, e, why, "draft", out);
}

static void route_review(struct rest_req *r)
{
    if (!may_access(r, false))
        return;
    if (!is_role(r, "gov") && !is_role(r, "admin")) {
        rest_error(r, ERR_FORBIDDEN, "only regulators review enterprise files");
        return;
    }
    const char *decision = jx_str(r->body, "decision");
    json_t *comment = json_object_get(r->body, "comment");
    if (!decision || (strcmp(decision, "approve") && strcmp(decision, "reject")) ||
        (comment && !json_is_string(comment))) {
        rest_error(r, ERR_BAD_REQUEST,
                   "body must be {\"decision\": \"approve\"|\"reject\", \"comment\": \"…\"}");
        return;
    }
    /* a draft that moves the enterprise must land in the reviewer's reach too */
    int rc;
    json_t *draft = enterprise_draft_get(server.store, r->params[0], &rc);
    const char *to = jx_str(json_object_get(draft, "record"), "division");
    bool reach = !to || reaches(r, r->params[0], to);
    json_decref(draft);
    if (!reach) {
        rest_error(r, ERR_FORBIDDEN, "the draft moves the enterprise outside your jurisdiction");
        return;
    }
    bool ok = strcmp(decision, "approve") == 0;
    json_t *out = NULL;
    const char *why = NULL;
    enum err_code e = enterprise_review(server.store, r->params[0], r->acct->id, ok,
                                        json_string_value(comment), &out, &why);
    if (e == ERR_NONE) {
        log_info("enterprise", "enterprise=%s %s by user=%s", r->params[0],
                 ok ? "approved" : "rejected", r->acct->id);
        audit_log(server.store, r->acct->id, "enterprise.review", r->params[0],
                  ok ? "approved" : "rejected", r->peer);
    }
    answer(r, e, why, ok ? "enterprise" : "draft", out);
}

static void route_history(struct rest_req *r)
{
    int64_t limit;
    if (!rest_query_int(r, "limit", 1, HISTORY_MAX, HISTORY_DEFAULT, &limit))
        return;
    if (!may_access(r, false))
        return;
    json_t *out = NULL;
    if (enterprise_history(server.store, r->params[0], (int)limit, &out) != STORE_OK) {
        json_decref(out);
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    rest_reply(r, 200, json_pack("{s:o}", "history", out));
}

static void route_sources(struct rest_req *r)
{
    json_t *doc = reachable(r);
    if (!doc)
        return;
    int rc;
    json_t *draft = enterprise_draft_get(server.store, r->params[0], &rc);
    json_t *approved = json_object_get(doc, "hazard_sources");
    json_t *body = json_object();
    json_object_set_new(body, "hazard_sources", approved ? json_incref(approved) : json_array());
    if (draft) {
        json_t *ds = json_object_get(json_object_get(draft, "record"), "hazard_sources");
        json_object_set_new(body, "draft", ds ? json_incref(ds) : json_array());
    }
    rest_reply(r, 200, body);
    json_decref(draft);
    json_decref(doc);
}

static void route_source(struct rest_req *r)
{
    json_t *doc = reachable(r);
    if (!doc)
        return;
    int rc;
    json_t *draft = enterprise_draft_get(server.store, r->params[0], &rc);
    json_t *a = jx_find(json_object_get(doc, "hazard_sources"), "id", r->params[1]);
    json_t *d = jx_find(json_object_get(json_object_get(draft, "record"), "hazard_sources"), "id",
                        r->params[1]);
    if (!a && !d) {
        rest_error(r, ERR_NOT_FOUND, "no such hazard source");
    } else {
        json_t *body = json_object();
        json_object_set(body, "approved", a ? a : json_null());
        json_object_set(body, "draft", d ? d : json_null());
        rest_reply(r, 200, body);
    }
    json_decref(draft);
    json_decref(doc);
}

static void route_source_put(struct rest_req *r)
{
    if (!may_access(r, true))
        return;
    if (!r->body) {
        rest_error(r, ERR_BAD_REQUEST, "body must be a hazard source object");
        return;
    }
    json_t *out = NULL;
    const char *why = NULL;
    enum err_code e = enterprise_source_put(server.store, r->params[0], r->acct->id, r->params[1],
                                            r->body, &out, &why);
    answer(r, e, why, "hazard_source", out);
}

static void route_source_delete(struct rest_req *r)
{
    if (!may_access(r, true))
        return;
    const char *why = NULL;
    enum err_code e =
        enterprise_source_delete(server.store, r->params[0], r->acct->id, r->params[1], &why);
    if (e != ERR_NONE)
        rest_error(r, e, why);
    else
        rest_reply(r, 200, json_pack("{s:b}", "ok", 1));
}

static bool allow_reach(const char *division, const char *existing, void *ud)
{
    const struct rest_req *r = ud;
    return division && reaches(r, "import", division) &&
           (!existing || reaches(r, "import", existing));
}

static void route_import(struct rest_req *r)
{
    if (!is_role(r, "gov") && !is_role(r, "admin")) {
        rest_error(r, ERR_FORBIDDEN, "only regulators import enterprise files");
        return;
    }
    const char *format = jx_str(r->body, "format");
    json_t *dry = json_object_get(r->body, "dry_run");
    const char *why = "body must be {\"format\": \"csv\", \"data\": \"…\"} or {\"format\": "
                      "\"json\", \"enterprises\": […]}";
    json_t *rows = NULL;
    if (dry && !json_is_boolean(dry)) {
        why = "dry_run must be true or false";
    } else if (g_strcmp0(format, "csv") == 0 && jx_str(r->body, "data")) {
        const char *data = jx_str(r->body, "data");
        rows = import_csv_rows(data, strlen(data), &why);
    } else if (g_strcmp0(format, "json") == 0) {
        rows = import_json_rows(r->body, &why);
    }
    if (!rows) {
        rest_error(r, ERR_BAD_REQUEST, why);
        return;
    }
    bool dry_run = json_is_true(dry);
    json_t *report = import_apply(server.store, rows, r->acct->id, dry_run, allow_reach, r);
    json_decref(rows);
    json_int_t acc = json_integer_value(json_object_get(report, "accepted"));
    json_int_t rej = json_integer_value(json_object_get(report, "rejected"));
    log_info("enterprise",
             "import by user=%s: %" JSON_INTEGER_FORMAT " accepted, %" JSON_INTEGER_FORMAT
             " rejected%s",
             r->acct->id, acc, rej, dry_run ? " (dry run)" : "");
    if (!dry_run)
        audit_log(server.store, r->acct->id, "enterprise.import", "-", rej ? "partial" : "ok",
                  r->peer);
    rest_reply(r, 200, report);
}

const struct rest_route enterprise_routes[] = {
    {REST_GET, "/api/v1/enterprises", route_list, true, false},
    {REST_POST, "/api/v1/enterprises/import", route_import, true, true},
    {REST_GET, "/api/v1/enterprises/*", route_get, true, false},
    {REST_PUT, "/api/v1/enterprises/*", route_put, true, true},
    {REST_POST, "/api/v1/enterprises/*/submit", route_submit, true, true},
    {REST_POST, "/api/v1/enterprises/*/review", route_review, true, true},
    {REST_GET, "/api/v1/enterprises/*/history", route_history, true, false},
    {REST_GET, "/api/v1/enterprises/*/hazard-sources", route_sources, true, false},
    {REST_GET, "/api/v1/enterprises/*/hazard-sources/*", route_source, true, false},
    {REST_PUT, "/api/v1/enterprises/*/hazard-sources/*", route_source_put, true, true},
    {REST_DELETE, "/api/v1/enterprises/*/hazard-sources/*", route_source_delete, true, true},
    {0},
};
