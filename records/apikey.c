/* Gateway API keys (see apikey.h). A check is one document read and one
 * SHA-256, so a revocation by yjtctl (another process) counts from the
 * next request on (the read is sent without waiting on Redis).
 * Hashes are compared in constant time. */
#include "records/apikey.h"

#include "common/clock.h"
#include "common/ids.h"
#include "common/jsonx.h"
#include "records/audit.h"

#include <glib.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

#define PREFIX "yjk_"
#define ID_HEX 16
#define SECRET_BYTES 32

static void hash_hex(const char *key, char out[SHA256_DIGEST_LENGTH * 2 + 1])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        g_snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int apikey_create(struct store *st, const char *enterprise, const char *label, const char *actor,
                  char **key_out, char **id_out)
{
    json_t *ent = NULL;
    int rc = store_doc_get(st, "enterprises", enterprise, &ent);
    json_decref(ent);
    if (rc != STORE_OK)
        return rc;
    unsigned char raw[ID_HEX / 2 + SECRET_BYTES];
    if (id_random_bytes(raw, sizeof(raw)) < 0)
        return STORE_EIO;
    char id[ID_HEX + 1];
    for (int i = 0; i < ID_HEX / 2; i++)
        g_snprintf(id + 2 * i, 3, "%02x", raw[i]);
    char *secret = b64url_encode(raw + ID_HEX / 2, SECRET_BYTES);
    char *key = g_strdup_printf(PREFIX "%s_%s", id, secret);
    OPENSSL_cleanse(raw, sizeof(raw));
    g_free(secret);
    char hash[SHA256_DIGEST_LENGTH * 2 + 1];
    hash_hex(key, hash);
    json_t *doc =
        json_pack("{s:s, s:s, s:I, s:s}", "enterprise", enterprise, "hash", hash, "created_at",
                  (json_int_t)clock_now_ms(), "created_by", actor ? actor : "-");
    if (label && label[0])
        json_object_set_new(doc, "label", json_string(label));
    rc = store_doc_put(st, "apikeys", id, doc, true);
    json_decref(doc);
    if (rc != STORE_OK) {
        g_free(key);
        return rc == STORE_ENOTFOUND ? STORE_EIO : rc;
    }
    audit_log(st, actor, "apikey.create", id, "ok", enterprise);
    *key_out = key;
    *id_out = g_strdup(id);
    return STORE_OK;
}

/* The id of a key as presented, if it has the shape of one. */
static bool key_id(const char *key, char id[ID_HEX + 1])
{
    size_t n = key ? strlen(key) : 0;
    if (n < strlen(PREFIX) + ID_HEX + 2 || n > 128 || !g_str_has_prefix(key, PREFIX) ||
        key[strlen(PREFIX) + ID_HEX] != '_')
        return false;
    memcpy(id, key + strlen(PREFIX), ID_HEX);
    id[ID_HEX] = '\0';
    for (int i = 0; i < ID_HEX; i++)
        if (!g_ascii_isxdigit(id[i]))
            return false;
    return true;
}

/* Whether key is the live key whose document doc is; its enterprise
 * (g_free) if so. */
static char *judge(const char *key, const json_t *doc)
{
    char hash[SHA256_DIGEST_LENGTH * 2 + 1];
    hash_hex(key, hash);
    const char *want = jx_str(doc, "hash");
    bool ok = want && strlen(want) == strlen(hash) &&
              CRYPTO_memcmp(want, hash, strlen(hash)) == 0 && !json_object_get(doc, "revoked_at") &&
              jx_str(doc, "enterprise");
    return ok ? g_strdup(jx_str(doc, "enterprise")) : NULL;
}

/* Reads key id's record without waiting; cb is told either way (at once
 * with the error if the read could not be sent). */
static void read_later(struct store *st, const char *id, store_docs_cb cb, void *ud)
{
    const char *ids[] = {id};
    int rc = store_docs_get_later(st, "apikeys", ids, 1, cb, ud);
    if (rc != STORE_OK) {
        struct store_docs none = {0};
        cb(rc, &none, ud);
    }
}

struct check_later {
    char *key;
    char id[ID_HEX + 1];
    apikey_cb cb;
    void *ud;
};

static void on_key_read(int rc, const struct store_docs *d, void *ud)
{
    struct check_later *c = ud;
    char *enterprise = NULL;
    if (rc == STORE_OK)
        rc = d->n == 1 && d->docs[0] && (enterprise = judge(c->key, d->docs[0])) ? STORE_OK
                                                                                 : STORE_ENOTFOUND;
    c->cb(rc, enterprise, c->id, c->ud);
    g_free(enterprise);
    OPENSSL_cleanse(c->key, strlen(c->key));
    g_free(c->key);
    g_free(c);
}

void apikey_check_later(struct store *st, const char *key, apikey_cb cb, void *ud)
{
    char id[ID_HEX + 1];
    if (!key_id(key, id)) {
        cb(STORE_ENOTFOUND, NULL, NULL, ud);
        return;
    }
    struct check_later *c = g_new0(struct check_later, 1);
    c->key = g_strdup(key);
    memcpy(c->id, id, sizeof(c->id));
    c->cb = cb;
    c->ud = ud;
    read_later(st, id, on_key_read, c);
}

struct live_later {
    apikey_live_cb cb;
    void *ud;
};

static void on_live_read(int rc, const struct store_docs *d, void *ud)
{
    struct live_later *l = ud;
    if (rc == STORE_OK)
        rc = d->n == 1 && d->docs[0] && !json_object_get(d->docs[0], "revoked_at")
                 ? STORE_OK
                 : STORE_ENOTFOUND;
    l->cb(rc, l->ud);
    g_free(l);
}

void apikey_live_later(struct store *st, const char *id, apikey_live_cb cb, void *ud)
{
    struct live_later *l = g_new(struct live_later, 1);
    *l = (struct live_later){cb, ud};
    read_later(st, id, on_live_read, l);
}

int apikey_revoke(struct store *st, const char *id, const char *actor)
{
    json_t *doc = NULL;
    int rc = store_doc_get(st, "apikeys", id, &doc);
    if (rc != STORE_OK)
        return rc;
    if (!json_object_get(doc, "revoked_at")) {
        json_object_set_new(doc, "revoked_at", json_integer(clock_now_ms()));
        json_object_set_new(doc, "revoked_by", json_string(actor ? actor : "-"));
        rc = store_doc_put(st, "apikeys", id, doc, false);
        if (rc == STORE_OK)
            audit_log(st, actor, "apikey.revoke", id, "ok", jx_str(doc, "enterprise"));
    }
    json_decref(doc);
    return rc;
}

struct each {
    const char *enterprise;
    store_doc_cb cb;
    void *ud;
};

static bool each_one(const char *id, json_t *doc, void *ud)
{
    struct each *e = ud;
    if (e->enterprise && g_strcmp0(jx_str(doc, "enterprise"), e->enterprise) != 0)
        return true;
    json_object_del(doc, "hash");
    json_object_set_new(doc, "id", json_string(id));
    return e->cb(id, doc, e->ud);
}

int apikey_each(struct store *st, const char *enterprise, store_doc_cb cb, void *ud)
{
    struct each e = {enterprise, cb, ud};
    return store_doc_list(st, "apikeys", each_one, &e);
}
