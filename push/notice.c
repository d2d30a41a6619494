/* Notices (see notice.h): audience resolution within the publisher's
 * jurisdiction, storage, the pushes, read receipts. */
#include "push/notice.h"

#include "common/clock.h"
#include "common/ids.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/inbox.h"
#include "records/account.h"
#include "records/org.h"

#include <glib.h>
#include <string.h>

#define NOTICES "notices"
#define READS "notice_reads"
#define URL_MAX 1024
#define NAME_MAX_ATT 200

static struct store *store;

void notice_init(struct store *st)
{
    store = st;
    store_index_define(st, READS, "notice", false);
}

struct collect {
    GStringChunk *ids; /* holds the user ids: a few blocks, not one each */
    /* The user ids, in the order found; each account is read once
     * (distinct orgs, distinct accounts), so none is there twice. */
    GPtrArray *order;
    const char *role;
    const char *within; /* gov: division the user's org must be strictly below */
    bool too_many;
};

static void add_user(struct collect *c, const char *id)
{
    if (c->order->len >= NOTICE_RECIPIENTS_MAX) {
        c->too_many = true;
        return;
    }
    g_ptr_array_add(c->order, g_string_chunk_insert(c->ids, id));
}

static bool corp_user(struct account *a, void *ud)
{
    struct collect *c = ud;
    if (!a->disabled && strcmp(a->role, "corp") == 0)
        add_user(c, a->id);
    return !c->too_many;
}

static bool gov_user(const char *id, json_t *doc, void *ud)
{
    struct collect *c = ud;
    const char *org = jx_str(doc, "org");
    char norm[8], within[8];
    if (strcmp(jx_str(doc, "role") ? jx_str(doc, "role") : "", "gov") == 0 && org &&
        !jx_bool(doc, "disabled", false) && division_normalize(org, norm, sizeof(norm)) &&
        division_normalize(c->within, within, sizeof(within)) && strlen(norm) > strlen(within) &&
        division_covers(within, norm))
        add_user(c, id);
    return !c->too_many;
}

static bool valid_url(const char *u)
{
    return u && strlen(u) <= URL_MAX &&
           (g_str_has_prefix(u, "https://") || g_str_has_prefix(u, "http://")) &&
           g_utf8_validate(u, -1, NULL);
}

/* Checks the attachments ([{"name","url"}]); returns a new copy or NULL. */
static json_t *attachments_of(json_t *req)
{
    json_t *a = json_object_get(req, "attachments");
    if (!a)
        return json_array();
    if (!json_is_array(a) || json_array_size(a) > NOTICE_ATTACHMENTS_MAX)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(a, i, it)
    {
        const char *name = jx_str_bounded(it, "name", NAME_MAX_ATT);
        const char *url = jx_str(it, "url");
        if (!json_is_object(it) || !name || !valid_url(url)) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, json_pack("{s:s, s:s}", "name", name, "url", url));
    }
    return out;
}

/* A publication under way: the request, then the audience as it is read
 * (on Redis without holding the loop: each read is sent and answered
 * later, see store_index_find_later). */
struct publish {
    char *publisher_id;
    struct principal pub; /* its strings owned */
    json_t *req;
    json_t *att; /* checked attachments */
    notice_done_cb cb;
    void *ud;
    struct collect c;
};

/* Enough for any province: a division's audience larger than this many
 * enterprises (or regulators' accounts) is refused as too large. */
#define AUDIENCE_SCAN_MAX 100000

static void publish_free(struct publish *p)
{
    g_free(p->publisher_id);
    g_free((char *)p->pub.role);
    g_free((char *)p->pub.org);
    json_decref(p->req);
    json_decref(p->att);
    g_ptr_array_free(p->c.order, TRUE);
    g_string_chunk_free(p->c.ids);
    g_free(p);
}

static void finish(struct publish *p, enum err_code err, const char *why, const char *id)
{
    p->cb(err, why, id, err == ERR_NONE ? (int)p->c.order->len : 0, p->ud);
    publish_free(p);
}

static void resolved(struct publish *p);

static bool answered_ok(struct publish *p, int rc, const struct store_docs *d)
{
    if (rc != STORE_OK) {
        finish(p, ERR_UNAVAILABLE, "store unavailable", NULL);
        return false;
    }
    if (d->more) {
        finish(p, ERR_TOO_LARGE, "audience larger than 20000 users", NULL);
        return false;
    }
    return true;
}

/* The enterprises of a division (ids only): their corp users. */
static void on_division(int rc, const struct store_docs *d, void *ud)
{
    struct publish *p = ud;
    if (!answered_ok(p, rc, d))
        return;
    for (int i = 0; i < d->n && !p->c.too_many; i++)
        account_each_in_org(store, d->ids[i], corp_user, &p->c);
    resolved(p);
}

/* The accounts whose org is in the division: its regulators below the
 * publisher. */
static void on_gov(int rc, const struct store_docs *d, void *ud)
{
    struct publish *p = ud;
    if (!answered_ok(p, rc, d))
        return;
    for (int i = 0; i < d->n && !p->c.too_many; i++)
        if (d->docs[i])
            gov_user(d->ids[i], d->docs[i], &p->c);
    resolved(p);
}

/* The enterprises listed: each must exist and be in the jurisdiction. */
static void on_listed(int rc, const struct store_docs *d, void *ud)
{
    struct publish *p = ud;
    if (!answered_ok(p, rc, d))
        return;
    GHashTable *found = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTable *done = g_hash_table_new(g_str_hash, g_str_equal); /* listed twice: once */
    for (int i = 0; i < d->n; i++)
        if (d->docs[i])
            g_hash_table_insert(found, d->ids[i], d->docs[i]);
    json_t *list = json_object_get(json_object_get(p->req, "audience"), "enterprises");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *id = json_string_value(e);
        json_t *doc = g_hash_table_lookup(found, id);
        const char *why = !doc ? "no such enterprise"
                          : !juris_reaches(&p->pub, ORG_ENTERPRISE, id, jx_str(doc, "division"))
                              ? "an enterprise is outside your jurisdiction"
                              : NULL;
        if (why) {
            g_hash_table_destroy(found);
            g_hash_table_destroy(done);
            finish(p, doc ? ERR_FORBIDDEN : ERR_NOT_FOUND, why, NULL);
            return;
        }
        if (g_hash_table_add(done, (char *)id))
            account_each_in_org(store, id, corp_user, &p->c);
    }
    g_hash_table_destroy(found);
    g_hash_table_destroy(done);
    resolved(p);
}

/* Checks the audience and sends the read that resolves it; ERR_NONE if
 * sent (its answer goes on), else the error. */
static enum err_code read_audience(struct publish *p, json_t *aud, const char **why)
{
    const char *type = jx_str(aud, "type");
    char norm[8];
    if (!type) {
        *why = "audience.type must be division, enterprises or gov";
        return ERR_BAD_REQUEST;
    }
    int rc;
    if (strcmp(type, "division") == 0 || strcmp(type, "gov") == 0) {
        const char *div = jx_str(aud, "division");
        if (!div && strcmp(type, "gov") == 0)
            div = p->pub.org;
        if (!div || !division_normalize(div, norm, sizeof(norm))) {
            *why = "audience.division must be a division code";
            return ERR_BAD_REQUEST;
        }
        if (!juris_reaches(&p->pub, ORG_DIVISION, norm, norm)) {
            *why = "audience outside your jurisdiction";
            return ERR_FORBIDDEN;
        }
        if (strcmp(type, "division") == 0) {
            rc = store_index_find_later(store, "enterprises", "division", norm, true, true,
                                        AUDIENCE_SCAN_MAX, on_division, p);
        } else {
            p->c.within = p->pub.org;
            /* users.org holds division codes for gov users; the filter
             * keeps gov users strictly below the publisher. */
            rc = store_index_find_later(store, "users", "org", norm, true, false, AUDIENCE_SCAN_MAX,
                                        on_gov, p);
        }
    } else if (strcmp(type, "enterprises") == 0) {
        json_t *list = json_object_get(aud, "enterprises");
        if (!json_is_array(list) || json_array_size(list) == 0 ||
            json_array_size(list) > NOTICE_ENTERPRISES_MAX) {
            *why = "audience.enterprises must be a list of 1-500 enterprise ids";
            return ERR_BAD_REQUEST;
        }
        const char *ids[NOTICE_ENTERPRISES_MAX];
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            ids[i] = json_is_string(e) ? json_string_value(e) : NULL;
            if (!org_id_valid(ids[i])) {
                *why = "audience.enterprises must be a list of enterprise ids";
                return ERR_BAD_REQUEST;
            }
        }
        rc = store_docs_get_later(store, "enterprises", ids, (int)json_array_size(list), on_listed,
                                  p);
    } else {
        *why = "audience.type must be division, enterprises or gov";
        return ERR_BAD_REQUEST;
    }
    if (rc != STORE_OK) {
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
    return ERR_NONE;
}

/* The body as a push carries it: whole if it fits an inbox item, else cut
 * at a character boundary and ended with an ellipsis (the whole notice is
 * read with notice.get). g_free. */
static char *push_body(const char *body, bool *cut)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */
    size_t len = strlen(body);
    *cut = len > INBOX_BODY_MAX;
    if (!*cut)
        return g_strdup(body);
    const char *end = body + INBOX_BODY_MAX - (sizeof(ellipsis) - 1);
    while (end > body && (*end & 0xC0) == 0x80)
        end--; /* not inside a character */
    size_t keep = (size_t)(end - body);
    char *out = g_malloc(keep + sizeof(ellipsis));
    memcpy(out, body, keep);
    memcpy(out + keep, ellipsis, sizeof(ellipsis));
    return out;
}

void notice_publish_later(const char *publisher_id, const struct principal *pub, json_t *req,
                          notice_done_cb cb, void *ud)
{
    const char *title = jx_str_bounded(req, "title", NOTICE_TITLE_MAX);
    const char *body = jx_str_bounded(req, "body", NOTICE_BODY_MAX);
    json_t *aud = json_object_get(req, "audience");
    json_t *rr = json_object_get(req, "require_read");
    if (!pub->role || strcmp(pub->role, "gov") != 0) {
        cb(ERR_FORBIDDEN, "only regulators (gov) publish notices", NULL, 0, ud);
        return;
    }
    if (!title || !body || !g_utf8_validate(title, -1, NULL) || !g_utf8_validate(body, -1, NULL)) {
        cb(ERR_BAD_REQUEST, "title (1-200) and body (1-20000) must be strings", NULL, 0, ud);
        return;
    }
    if (!json_is_object(aud) || (rr && !json_is_boolean(rr))) {
        cb(ERR_BAD_REQUEST, "audience must be an object and require_read a boolean", NULL, 0, ud);
        return;
    }
    json_t *att = attachments_of(req);
    if (!att) {
        cb(ERR_BAD_REQUEST, "attachments must be at most 10 of {name, url (http/https)}", NULL, 0,
           ud);
        return;
    }
    struct publish *p = g_new0(struct publish, 1);
    p->publisher_id = g_strdup(publisher_id);
    p->pub.role = g_strdup(pub->role);
    p->pub.org = g_strdup(pub->org);
    p->req = json_incref(req);
    p->att = att;
    p->cb = cb;
    p->ud = ud;
    p->c = (struct collect){g_string_chunk_new(4096), g_ptr_array_new(), NULL, NULL, false};
    const char *why = NULL;
    enum err_code err = read_audience(p, aud, &why);
    if (err != ERR_NONE)
        finish(p, err, why, NULL);
}

/* A notice's recipients are stored as one string, each id followed by a
 * newline: one JSON value rather than one per recipient, so that a
 * 10,000-user notice is built, stored and freed without 20,000
 * allocations. An id that cannot be written so (a newline in it) keeps
 * the list an array of ids, as notices stored before hold it. */
static json_t *recipients_json(const GPtrArray *ids)
{
    GString *text = g_string_sized_new(ids->len * 16 + 1);
    for (guint i = 0; text && i < ids->len; i++) {
        const char *id = g_ptr_array_index(ids, i);
        if (strchr(id, '\n')) {
            g_string_free(text, TRUE);
            text = NULL;
        } else {
            g_string_append(text, id);
            g_string_append_c(text, '\n');
        }
    }
    json_t *list = text ? json_stringn(text->str, text->len) : NULL;
    if (text)
        g_string_free(text, TRUE);
    if (list)
        return list;
    list = json_array();
    for (guint i = 0; i < ids->len; i++)
        json_array_append_new(list, json_string(g_ptr_array_index(ids, i)));
    return list;
}

/* The audience is known: the notice is stored, its pushes sent. */
static void resolved(struct publish *p)
{
    if (p->c.too_many) {
        finish(p, ERR_TOO_LARGE, "audience larger than 20000 users", NULL);
        return;
    }
    const char *title = jx_str(p->req, "title"), *body = jx_str(p->req, "body");
    json_t *rr = json_object_get(p->req, "require_read");
    char *id = id_new_sorted("n");
    json_t *recipients = recipients_json(p->c.order);
    bool require_read = rr && json_is_true(rr);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:b, s:I, s:o}", "id", id,
                            "publisher", p->publisher_id, "publisher_division", p->pub.org, "title",
                            title, "body", body, "attachments", p->att, "audience",
                            json_object_get(p->req, "audience"), "require_read", require_read,
                            "created_at", (json_int_t)clock_now_ms(), "recipients", recipients);
    int rc = store_doc_put_new(store, NOTICES, id, doc); /* a fresh id */
    json_decref(doc);
    if (rc == STORE_OK) {
        bool cut;
        char *text = push_body(body, &cut);
        json_t *payload = json_pack("{s:s, s:b, s:O}", "notice_id", id, "require_read",
                                    require_read, "attachments", p->att);
        if (cut)
            json_object_set_new(payload, "body_cut", json_true());
        /* On Redis the node's loop does not wait for the fan-out: the
         * reply, held with the batch, goes out once it is stored. */
        rc = inbox_push_many_later((const char *const *)p->c.order->pdata, (int)p->c.order->len,
                                   "notice", "normal", NOTICE_TTL_S, title, text, payload);
        json_decref(payload);
        g_free(text);
    }
    if (rc != STORE_OK) {
        g_free(id);
        finish(p, ERR_UNAVAILABLE, "store unavailable", NULL);
        return;
    }
    log_info("notice", "notice=%s published by user=%s to %u recipients", id, p->publisher_id,
             p->c.order->len);
    finish(p, ERR_NONE, NULL, id);
    g_free(id);
}

/* Calls fn with each recipient of a stored notice, in order, while it
 * returns true; false if it stopped. */
static bool recipients_each(json_t *doc, bool (*fn)(const char *id, void *ud), void *ud)
{
    json_t *list = json_object_get(doc, "recipients"), *u;
    size_t i;
    json_array_foreach(list, i, u)
    {
        if (json_is_string(u) && !fn(json_string_value(u), ud))
            return false;
    }
    const char *text = json_string_value(list);
    if (!text)
        return true;
    GString *id = g_string_new(NULL);
    bool on = true;
    for (const char *nl; on && (nl = strchr(text, '\n')); text = nl + 1) {
        g_string_truncate(id, 0);
        g_string_append_len(id, text, nl - text);
        on = fn(id->str, ud);
    }
    g_string_free(id, TRUE);
    return on;
}

static bool same_id(const char *id, void *ud)
{
    return strcmp(id, ud) != 0; /* on until found */
}

static bool is_recipient(json_t *doc, const char *user_id)
{
    return !recipients_each(doc, same_id, (void *)user_id);
}

enum err_code notice_read(const char *notice_id, const char *user_id, int64_t *read_at_out)
{
    json_t *doc = NULL;
    int rc = store_doc_get(store, NOTICES, notice_id, &doc);
    if (rc != STORE_OK)
        return rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
    bool mine = is_recipient(doc, user_id);
    json_decref(doc);
    if (!mine)
        return ERR_NOT_FOUND; /* reveals nothing about other people's notices */
    char *rid = g_strconcat(notice_id, "/", user_id, NULL);
    json_t *r = NULL;
    rc = store_doc_get(store, READS, rid, &r);
    if (rc == STORE_OK) {
        *read_at_out = jx_int(r, "read_at", 0);
    } else if (rc == STORE_ENOTFOUND) {
        *read_at_out = clock_now_ms();
        r = json_pack("{s:s, s:s, s:I}", "notice", notice_id, "user", user_id, "read_at",
                      (json_int_t)*read_at_out);
        rc = store_doc_put(store, READS, rid, r, false);
        if (rc == STORE_OK)
            log_info("notice", "notice=%s read by user=%s", notice_id, user_id);
    }
    json_decref(r);
    g_free(rid);
    return rc == STORE_OK ? ERR_NONE : ERR_UNAVAILABLE;
}

enum err_code notice_get(const char *notice_id, const char *viewer_id, const char *viewer_role,
                         json_t **out)
{
    json_t *doc = NULL;
    int rc = store_doc_get(store, NOTICES, notice_id, &doc);
    if (rc != STORE_OK)
        return rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
    const char *publisher = jx_str(doc, "publisher");
    if (strcmp(viewer_role, "admin") != 0 && !(publisher && strcmp(publisher, viewer_id) == 0) &&
        !is_recipient(doc, viewer_id)) {
        json_decref(doc);
        return ERR_NOT_FOUND; /* reveals nothing about other people's notices */
    }
    *out = json_pack("{s:s, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "notice_id", notice_id,
                     "title", json_object_get(doc, "title"), "body", json_object_get(doc, "body"),
                     "attachments", json_object_get(doc, "attachments"), "require_read",
                     json_object_get(doc, "require_read"), "created_at",
                     json_object_get(doc, "created_at"), "publisher",
                     json_object_get(doc, "publisher"), "publisher_division",
                     json_object_get(doc, "publisher_division"));
    json_decref(doc);
    return *out ? ERR_NONE : ERR_UNAVAILABLE;
}

static bool collect_read(const char *id, json_t *doc, void *ud)
{
    (void)id;
    const char *user = jx_str(doc, "user");
    if (user)
        json_object_set_new(ud, user, json_integer(jx_int(doc, "read_at", 0)));
    return true;
}

/* The receipts' listing: each recipient, read (with when) or not. */
struct listing {
    json_t *reads; /* user id -> read_at */
    json_t *read, *unread;
};

static bool list_one(const char *uid, void *ud)
{
    struct listing *l = ud;
    struct account *a = NULL;
    json_t *entry = NULL;
    if (account_get(store, uid, &a) == STORE_OK) {
        entry = account_public_json(a);
        account_free(a);
    } else {
        entry = json_pack("{s:s}", "id", uid);
    }
    json_t *at = json_object_get(l->reads, uid);
    if (at) {
        json_object_set(entry, "read_at", at);
        json_array_append_new(l->read, entry);
    } else {
        json_array_append_new(l->unread, entry);
    }
    return true;
}

enum err_code notice_receipts(const char *notice_id, const char *viewer_id, const char *viewer_role,
                              json_t **out, const char **why)
{
    json_t *doc = NULL;
    int rc = store_doc_get(store, NOTICES, notice_id, &doc);
    if (rc != STORE_OK) {
        *why = rc == STORE_ENOTFOUND ? "no such notice" : "store unavailable";
        return rc == STORE_ENOTFOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
    }
    if (strcmp(viewer_role, "admin") != 0 &&
        strcmp(jx_str(doc, "publisher") ? jx_str(doc, "publisher") : "", viewer_id) != 0) {
        json_decref(doc);
        *why = "only the publisher sees the receipts";
        return ERR_FORBIDDEN;
    }
    json_t *reads = json_object();
    rc = store_index_find(store, READS, "notice", notice_id, false, collect_read, reads);
    if (rc != STORE_OK) { /* before the listing is built, which may be long */
        json_decref(reads);
        json_decref(doc);
        *why = "store unavailable";
        return ERR_UNAVAILABLE;
    }
    struct listing l = {reads, json_array(), json_array()};
    recipients_each(doc, list_one, &l);
    *out = json_pack("{s:s, s:s, s:b, s:I, s:i, s:o, s:o}", "notice_id", notice_id, "title",
                     jx_str(doc, "title") ? jx_str(doc, "title") : "", "require_read",
                     jx_bool(doc, "require_read", false), "created_at",
                     (json_int_t)jx_int(doc, "created_at", 0), "total",
                     (int)(json_array_size(l.read) + json_array_size(l.unread)), "read", l.read,
                     "unread", l.unread);
    json_decref(reads);
    json_decref(doc);
    return ERR_NONE;
}
