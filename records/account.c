/* User accounts over the store. */
#include "records/account.h"

#include "records/account_cache.h"

#include "common/clock.h"
#include "common/ids.h"
#include "common/jsonx.h"
#include "records/jurisdiction.h"
#include "records/org.h"
#include "records/password.h"

#include <glib.h>
#include <string.h>

int account_init(struct store *st)
{
    int rc = store_index_define(st, "users", "username", true);
    if (rc == 0)
        rc = store_index_define(st, "users", "org", false);
    return rc;
}

bool account_role_valid(const char *role)
{
    return role && (strcmp(role, "gov") == 0 || strcmp(role, "corp") == 0 ||
                    strcmp(role, "trs") == 0 || strcmp(role, "admin") == 0);
}

bool account_username_valid(const char *username)
{
    size_t n = username ? strlen(username) : 0;
    if (n == 0 || n > USERNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(username[i]) && !strchr("_.-@", username[i]))
            return false;
    return true;
}

static bool text_ok(const char *s, size_t max)
{
    return !s || (strlen(s) <= max && g_utf8_validate(s, -1, NULL));
}

/* Checks that org names an existing organisation of the role's kind. */
static const char *org_error(struct store *st, const char *role, const char *org)
{
    if (!org || !*org)
        return "org is required";
    json_t *doc = NULL;
    switch (juris_org_kind_of_role(role)) {
    case ORG_DIVISION:
        return division_valid(org) ? NULL : "org of a gov user must be a division code";
    case ORG_ENTERPRISE:
        if (org_enterprise_get(st, org, &doc) != 0)
            return "org of a corp user must be an existing enterprise id";
        break;
    case ORG_CARRIER:
        if (org_carrier_get(st, org, &doc) != 0)
            return "org of a trs user must be an existing carrier id";
        break;
    default:
        return NULL; /* admin */
    }
    json_decref(doc);
    return NULL;
}

static json_t *account_to_json(const struct account *a)
{
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}", "username", a->username,
                            "role", a->role, "org", a->org, "pw", a->pw_hash, "disabled",
                            a->disabled, "token_ver", (json_int_t)a->token_ver, "created_at",
                            (json_int_t)a->created_at, "updated_at", (json_int_t)a->updated_at);
    json_object_set_new(doc, "display_name", json_string(a->display_name ? a->display_name : ""));
    json_object_set_new(doc, "position", json_string(a->position ? a->position : ""));
    json_object_set_new(doc, "phone", json_string(a->phone ? a->phone : ""));
    return doc;
}

struct account *account_from_json(const char *id, json_t *doc)
{
    const char *username = jx_str(doc, "username"), *role = jx_str(doc, "role");
    const char *org = jx_str(doc, "org"), *pw = jx_str(doc, "pw");
    if (!username || !role || !org || !pw)
        return NULL;
    struct account *a = g_new0(struct account, 1);
    a->id = g_strdup(id);
    a->username = g_strdup(username);
    a->role = g_strdup(role);
    a->org = g_strdup(org);
    a->pw_hash = g_strdup(pw);
    a->display_name = g_strdup(jx_str(doc, "display_name") ? jx_str(doc, "display_name") : "");
    a->position = g_strdup(jx_str(doc, "position") ? jx_str(doc, "position") : "");
    a->phone = g_strdup(jx_str(doc, "phone") ? jx_str(doc, "phone") : "");
    a->disabled = jx_bool(doc, "disabled", false);
    a->token_ver = jx_int(doc, "token_ver", 0);
    a->created_at = jx_int(doc, "created_at", 0);
    a->updated_at = jx_int(doc, "updated_at", 0);
    return a;
}

void account_free(struct account *a)
{
    if (!a)
        return;
    g_free(a->id);
    g_free(a->username);
    g_free(a->display_name);
    g_free(a->role);
    g_free(a->org);
    g_free(a->position);
    g_free(a->phone);
    if (a->pw_hash)
        memset(a->pw_hash, 0, strlen(a->pw_hash));
    g_free(a->pw_hash);
    g_free(a);
}

struct account *account_dup(const struct account *a)
{
    struct account *d = g_new0(struct account, 1);
    *d = *a;
    d->id = g_strdup(a->id);
    d->username = g_strdup(a->username);
    d->display_name = g_strdup(a->display_name);
    d->role = g_strdup(a->role);
    d->org = g_strdup(a->org);
    d->position = g_strdup(a->position);
    d->phone = g_strdup(a->phone);
    d->pw_hash = g_strdup(a->pw_hash);
    return d;
}

json_t *account_public_json(const struct account *a)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", a->id, "username", a->username,
                     "display_name", a->display_name, "role", a->role, "org", a->org, "position",
                     a->position);
}

int account_create(struct store *st, const struct account_new *req, char **id_out, const char **why)
{
    *why = NULL;
    if (!account_username_valid(req->username))
        *why = "username must be 1 to 64 characters of A-Z a-z 0-9 _ . - @";
    else if (!account_role_valid(req->role))
        *why = "role must be gov, corp, trs or admin";
    else if (password_policy_error(req->password))
        *why = password_policy_error(req->password);
    else if (!text_ok(req->display_name, 200) || !text_ok(req->position, 64) ||
             !text_ok(req->phone, 32))
        *why = "display name, position or phone too long or not UTF-8";
    else if (strcmp(req->role, "admin") != 0)
        *why = org_error(st, req->role, req->org);
    if (*why)
        return STORE_EINVAL;

    struct account a = {0};
    char norm[8];
    a.id = id_new("u");
    a.username = (char *)req->username;
    a.role = (char *)req->role;
    a.org = (char *)(strcmp(req->role, "admin") == 0 ? "-" : req->org);
    if (strcmp(req->role, "gov") == 0 && division_normalize(req->org, norm, sizeof(norm)))
        a.org = norm;
    a.display_name = (char *)(req->display_name ? req->display_name : req->username);
    a.position = (char *)(req->position ? req->position : "");
    a.phone = (char *)(req->phone ? req->phone : "");
    a.pw_hash = password_hash(req->password, req->hash_iterations);
    a.created_at = a.updated_at = clock_now_ms();
    if (!a.id || !a.pw_hash) {
        g_free(a.id);
        g_free(a.pw_hash);
        return STORE_EIO;
    }
    json_t *doc = account_to_json(&a);
    int rc = store_doc_put(st, "users", a.id, doc, true);
    if (account_cache_serves(st))
        account_cache_stale();
    json_decref(doc);
    g_free(a.pw_hash);
    if (rc == STORE_OK)
        *id_out = a.id;
    else
        g_free(a.id);
    if (rc == STORE_ECONFLICT)
        *why = "username is taken";
    return rc;
}

int account_get(struct store *st, const char *id, struct account **out)
{
    if (account_cache_serves(st))
        return account_cache_get(id, out);
    json_t *doc = NULL;
    int rc = store_doc_get(st, "users", id, &doc);
    if (rc != STORE_OK)
        return rc;
    *out = account_from_json(id, doc);
    json_decref(doc);
    return *out ? STORE_OK : STORE_EIO;
}

struct find_ctx {
    struct account *found;
};

static bool take_first(const char *id, json_t *doc, void *ud)
{
    struct find_ctx *ctx = ud;
    ctx->found = account_from_json(id, doc);
    return false;
}

int account_find(struct store *st, const char *username, struct account **out)
{
    if (account_cache_serves(st))
        return account_cache_find(username, out);
    struct find_ctx ctx = {0};
    int rc = store_index_find(st, "users", "username", username, false, take_first, &ctx);
    if (rc != STORE_OK)
        return rc;
    if (!ctx.found)
        return STORE_ENOTFOUND;
    *out = ctx.found;
    return STORE_OK;
}

int account_save(struct store *st, struct account *a)
{
    a->updated_at = clock_now_ms();
    json_t *doc = account_to_json(a);
    int rc = store_doc_put(st, "users", a->id, doc, false);
    if (account_cache_serves(st))
        account_cache_stale();
    json_decref(doc);
    return rc;
}

struct each_ctx {
    account_cb cb;
    void *ud;
};

static bool each_doc(const char *id, json_t *doc, void *ud)
{
    struct each_ctx *ctx = ud;
    struct account *a = account_from_json(id, doc);
    if (!a)
        return true;
    bool go_on = ctx->cb(a, ctx->ud);
    account_free(a);
    return go_on;
}

int account_each(struct store *st, account_cb cb, void *ud)
{
    if (account_cache_serves(st))
        return account_cache_each(cb, ud);
    struct each_ctx ctx = {cb, ud};
    return store_doc_list(st, "users", each_doc, &ctx);
}

int account_each_in_org(struct store *st, const char *org, account_cb cb, void *ud)
{
    if (account_cache_serves(st))
        return account_cache_each_in_org(org, cb, ud);
    struct each_ctx ctx = {cb, ud};
    return store_index_find(st, "users", "org", org, false, each_doc, &ctx);
}

char *account_lockout_key(const char *id)
{
    return g_strdup_printf("lockout:%s", id);
}

void account_lockout_parse(const char *value, struct lockout *out)
{
    memset(out, 0, sizeof(*out));
    json_t *v = value ? json_loads(value, 0, NULL) : NULL;
    out->failed = (int)jx_int(v, "failed", 0);
    out->locked_until = jx_int(v, "locked_until", 0);
    json_decref(v);
}

int account_lockout_set(struct store *st, const char *id, const struct lockout *l,
                        int64_t expire_at_ms)
{
    char *key = account_lockout_key(id);
    char *value = g_strdup_printf("{\"failed\":%d,\"locked_until\":%" G_GINT64_FORMAT "}",
                                  l->failed, l->locked_until);
    int rc = store_kv_set(st, key, value, expire_at_ms);
    g_free(key);
    g_free(value);
    return rc;
}

int account_lockout_clear(struct store *st, const char *id)
{
    char *key = account_lockout_key(id);
    int rc = store_kv_delete(st, key);
    g_free(key);
    return rc;
}
