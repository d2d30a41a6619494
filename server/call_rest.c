/* REST routes for call records and patrols:
 *   GET /api/v1/calls            filters from, to (UTC ms), division,
 *                                enterprise, user, patrol, limit
 *   GET /api/v1/calls/{id}
 *   GET /api/v1/calls/{id}/recordings         what was recorded, with sizes
 *   GET /api/v1/calls/{id}/recordings/{file}  one recording (audited)
 *   GET /api/v1/patrols          the caller's own patrols, newest first
 *   GET /api/v1/patrols/coverage date=YYYY-MM-DD, division=CODE
 *   GET /api/v1/patrols/{id}     the report
 * A record is visible to its parties and to whoever's jurisdiction holds
 * it (jurisdiction.h); others get not_found or forbidden, never the data. */
#include "common/bizdate.h"
#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/audit.h"
#include "records/calls.h"
#include "records/jurisdiction.h"
#include "server/rest.h"
#include "server/server.h"
#include "signaling/patrol.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIST_DEFAULT 100
#define LIST_MAX 1000

static bool has_party(json_t *doc, const char *user_id)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "parties"), i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), user_id) == 0)
            return true;
    }
    return false;
}

/* True if acct may see call record doc. */
static bool call_visible(const struct account *acct, json_t *doc)
{
    if (has_party(doc, acct->id) || strcmp(acct->role, "admin") == 0)
        return true;
    if (strcmp(acct->role, "gov") == 0) {
        struct principal p = {acct->role, acct->org};
        const char *div = jx_str(doc, "division");
        return div && juris_reaches(&p, ORG_DIVISION, div, div);
    }
    if (strcmp(acct->role, "corp") == 0)
        return g_strcmp0(jx_str(doc, "enterprise"), acct->org) == 0;
    if (strcmp(acct->role, "trs") == 0)
        return g_strcmp0(jx_str(doc, "carrier"), acct->org) == 0;
    return false;
}

struct call_list {
    const struct account *acct;
    int64_t from, to;
    const char *division, *enterprise, *user, *patrol;
    json_t *out;
    GHashTable *seen; /* ids already listed */
};

static bool list_one(const char *id, json_t *doc, void *ud)
{
    (void)id;
    struct call_list *l = ud;
    int64_t at = jx_int(doc, "invite_at", 0);
    if (at < l->from || at >= l->to || !call_visible(l->acct, doc))
        return true;
    if (l->division &&
        !g_str_has_prefix(jx_str(doc, "division") ? jx_str(doc, "division") : "", l->division))
        return true;
    if (l->enterprise && g_strcmp0(jx_str(doc, "enterprise"), l->enterprise) != 0)
        return true;
    if (l->user && !has_party(doc, l->user))
        return true;
    if (l->patrol && g_strcmp0(jx_str(doc, "patrol_id"), l->patrol) != 0)
        return true;
    if (!g_hash_table_add(l->seen, g_strdup(id)))
        return true;
    json_array_append(l->out, doc);
    return true;
}

static void route_calls(struct rest_req *r)
{
    struct call_list l = {.acct = r->acct, .out = json_array()};
    int64_t limit;
    char div[8] = "";
    if (!rest_query_range(r, &l.from, &l.to) ||
        !rest_query_int(r, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit))
        goto out;
    l.enterprise = rest_query(r, "enterprise");
    l.user = rest_query(r, "user");
    l.patrol = rest_query(r, "patrol");
    if (!rest_query_division(r, div))
        goto out;
    if (div[0])
        l.division = div;
    /* Look up through the most selective index, then filter. */
    const char *field, *value;
    bool prefix = false;
    char own[8] = "";
    if (l.patrol) {
        field = "patrol_id", value = l.patrol;
    } else if (l.enterprise) {
        field = "enterprise", value = l.enterprise;
    } else if (l.user) {
        field = "parties", value = l.user;
    } else if (strcmp(r->acct->role, "corp") == 0) {
        field = "enterprise", value = r->acct->org;
    } else if (strcmp(r->acct->role, "trs") == 0) {
        field = "carrier", value = r->acct->org;
    } else if (strcmp(r->acct->role, "gov") == 0 && division_normalize(r->acct->org, own, 8)) {
        field = "division", value = l.division ? l.division : own, prefix = true;
    } else {
        field = "division", value = l.division ? l.division : "", prefix = true;
    }
    l.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int rc = calls_find(server.store, field, value, prefix, list_one, &l);
    /* a user's own calls may lie outside its organisation's scope */
    if (rc == STORE_OK && !l.patrol && !l.enterprise && !l.user)
        rc = calls_find(server.store, "parties", r->acct->id, false, list_one, &l);
    if (rc != STORE_OK) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        goto out;
    }
    size_t n = json_array_size(l.out);
    bool cut = rest_newest_first(l.out, "invite_at", limit);
    rest_reply(
        r, 200,
        json_pack("{s:O, s:I, s:b}", "calls", l.out, "total", (json_int_t)n, "truncated", cut));
out:
    if (l.seen)
        g_hash_table_destroy(l.seen);
    json_decref(l.out);
}


/* The call record of r->params[0] if r's caller may see it, else NULL
 * (having answered). */
static json_t *visible_call(struct rest_req *r)
{
    json_t *doc = NULL;
    int rc = calls_get(server.store, r->params[0], &doc);
    if (rc == STORE_EIO) {
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
    } else if (rc != STORE_OK || !call_visible(r->acct, doc)) {
        rest_error(r, ERR_NOT_FOUND, "no such call");
    } else {
        return doc;
    }
    json_decref(doc);
    return NULL;
}

/* The size of a recording file, or -1 when it is gone. */
static int64_t recording_size(const char *file)
{
    char *path = g_build_filename(server.cfg.recording_dir, file, NULL);
    struct stat st;
    int rc = stat(path, &st);
    g_free(path);
    return rc == 0 ? (int64_t)st.st_size : -1;
}

static void route_call(struct rest_req *r)
{
    json_t *doc = visible_call(r);
    if (doc)
        rest_reply(r, 200, json_pack("{s:o}", "call", doc));
}

static void route_recordings(struct rest_req *r)
{
    json_t *doc = visible_call(r);
    if (!doc)
        return;
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "recordings"), i, e)
    {
        json_t *item = json_deep_copy(e);
        int64_t size = recording_size(jx_str(e, "file") ? jx_str(e, "file") : "");
        json_object_set_new(item, "size", size < 0 ? json_null() : json_integer(size));
        json_object_set_new(item, "url",
                            json_sprintf("/api/v1/calls/%s/recordings/%s", r->params[0],
                                         jx_str(e, "file") ? jx_str(e, "file") : ""));
        json_array_append_new(out, item);
    }
    rest_reply(r, 200, json_pack("{s:s, s:o}", "call_id", r->params[0], "recordings", out));
    json_decref(doc);
}

static const char *recording_type(const char *file)
{
    return g_str_has_suffix(file, ".ivf")    ? "video/x-ivf"
           : g_str_has_suffix(file, ".ogg")  ? "audio/ogg"
           : g_str_has_suffix(file, ".h264") ? "video/h264"
                                             : "application/octet-stream";
}

static void route_recording(struct rest_req *r)
{
    json_t *doc = visible_call(r);
    if (!doc)
        return;
    /* Only a file the record lists: the name never becomes a path
     * otherwise. */
    const char *file = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "recordings"), i, e)
    {
        if (g_strcmp0(jx_str(e, "file"), r->params[1]) == 0)
            file = r->params[1];
    }
    char *path = file ? g_build_filename(server.cfg.recording_dir, file, NULL) : NULL;
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        rest_error(r, ERR_NOT_FOUND, "no such recording");
    } else {
        audit_log(server.store, r->acct->id, "call.recording.download", r->params[0], file, NULL);
        log_info("rest", "call=%s recording %s downloaded by user=%s", r->params[0], file,
                 r->acct->id);
        rest_reply_file(r, fd, (size_t)st.st_size, recording_type(file), file);
    }
    g_free(path);
    json_decref(doc);
}

static bool collect(const char *id, json_t *doc, void *ud)
{
    (void)id;
    json_array_append(ud, doc);
    return true;
}

static void route_patrols(struct rest_req *r)
{
    int64_t limit;
    if (!rest_query_int(r, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit))
        return;
    json_t *all = json_array();
    if (patrols_find(server.store, "owner", r->acct->id, false, collect, all) != STORE_OK) {
        json_decref(all);
        rest_error(r, ERR_UNAVAILABLE, "store unavailable");
        return;
    }
    rest_newest_first(all, "created_at", limit);
    rest_reply(r, 200, json_pack("{s:o}", "patrols", all));
}

static void route_patrol(struct rest_req *r)
{
    json_t *report = NULL;
    const char *why = NULL;
    enum err_code e =
        patrol_report(r->params[0], r->acct->role, r->acct->org, r->acct->id, &report, &why);
    if (e != ERR_NONE)
        rest_error(r, e, why);
    else
        rest_reply(r, 200, json_pack("{s:o}", "report", report));
}

static void route_coverage(struct rest_req *r)
{
    const char *date = rest_query(r, "date");
    const char *division = rest_query(r, "division");
    char today[BIZDATE_LEN];
    if (!date) {
        bizdate_of(clock_now_ms(), today);
        date = today;
    }
    if (!division)
        division = r->acct->org;
    json_t *out = NULL;
    const char *why = NULL;
    enum err_code e = patrol_coverage(date, division, r->acct->role, r->acct->org, &out, &why);
    if (e != ERR_NONE)
        rest_error(r, e, why);
    else
        rest_reply(r, 200, out);
}

const struct rest_route call_routes[] = {
    {REST_GET, "/api/v1/calls", route_calls, true, false},
    {REST_GET, "/api/v1/calls/*", route_call, true, false},
    {REST_GET, "/api/v1/calls/*/recordings", route_recordings, true, false},
    {REST_GET, "/api/v1/calls/*/recordings/*", route_recording, true, false},
    {REST_GET, "/api/v1/patrols", route_patrols, true, false},
    {REST_GET, "/api/v1/patrols/coverage", route_coverage, true, false},
    {REST_GET, "/api/v1/patrols/*", route_patrol, true, false},
    {0},
};
