/* Gateway API keys (see apikey.h). A check is one document read and one
 * SHA-256, so a revocation by yjtctl (another process) counts from the
 * next request on. Hashes are compared in constant time. */
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

int apikey_check(struct store *st, const char *key, char **enterprise_out, char **id_out)
{
    size_t n = key ? strlen(key) : 0;
    if (n < strlen(PREFIX) + ID_HEX + 2 || n > 128 || !g_str_has_prefix(key, PREFIX) ||
        key[strlen(PREFIX) + ID_HEX] != '_')
        return STORE_ENOTFOUND;
    char id[ID_HEX + 1];
    memcpy(id, key + strlen(PREFIX), ID_HEX);
    id[ID_HEX] = '\0';
    for (int i = 0; i < ID_HEX; i++)
        if (!g_ascii_isxdigit(id[i]))
            return STORE_ENOTFOUND;
    json_t *doc = NULL;
    int rc = store_doc_get(st, "apikeys", id, &doc);
    if (rc != STORE_OK)
        return rc;
    char hash[SHA256_DIGEST_LENGTH * 2 + 1];
    hash_hex(key, hash);
    const char *want = jx_str(doc, "hash");
    bool ok = want && strlen(want) == strlen(hash) &&
              CRYPTO_memcmp(want, hash, strlen(hash)) == 0 && !json_object_get(doc, "revoked_at") &&
              jx_str(doc, "enterprise");
    if (ok) {
        *enterprise_out = g_strdup(jx_str(doc, "enterprise"));
        if (id_out)
            *id_out = g_strdup(id);
    }
    json_decref(doc);
    return ok ? STORE_OK : STORE_ENOTFOUND;
}

int apikey_live(struct store *st, const char *id)
{
    json_t *doc = NULL;
    int rc = store_doc_get(st, "apikeys", id, &doc);
    if (rc == STORE_OK && json_object_get(doc, "revoked_at"))
        rc = STORE_ENOTFOUND;
    json_decref(doc);
    return rc;
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
