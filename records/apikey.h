/* Gateway API keys: the credential a plant's data gateway posts readings
 * with. A key belongs to one enterprise and may write only its sensors.
 *
 * A key reads "yjk_<id>_<secret>": id is 16 hex digits (public: listed,
 * logged, revoked by), secret 43 URL-safe base64 characters (256 random
 * bits). The store keeps only the SHA-256 of the whole key, in the
 * document "apikeys/<id>" {enterprise, hash, label?, created_at,
 * created_by, revoked_at?}; the key itself is shown once, at creation. */
#ifndef YJT_APIKEY_H
#define YJT_APIKEY_H

#include "records/store.h"

#include <stdbool.h>

#define APIKEY_LABEL_MAX 100

/* Creates a key for enterprise (which must exist). Returns STORE_OK with
 * *key_out (the whole key, g_free; shown once) and *id_out (g_free),
 * STORE_ENOTFOUND for an unknown enterprise, or another store code. */
int apikey_create(struct store *st, const char *enterprise, const char *label, const char *actor,
                  char **key_out, char **id_out);
/* Checks a key as presented: STORE_OK with *enterprise_out (g_free) and
 * *id_out (g_free, may be NULL) if it is a live key; STORE_ENOTFOUND if it is
 * malformed, unknown, wrong or revoked; STORE_EIO if the store failed. */
int apikey_check(struct store *st, const char *key, char **enterprise_out, char **id_out);
/* The same, the key's record read without waiting (store_docs_get_later):
 * cb(rc, enterprise (borrowed, NULL unless STORE_OK), ud) from the main
 * loop, or at once for a key that cannot be one. */
typedef void (*apikey_cb)(int rc, const char *enterprise, void *ud);
void apikey_check_later(struct store *st, const char *key, apikey_cb cb, void *ud);
/* STORE_OK if key id exists and is not revoked, STORE_ENOTFOUND if it is
 * gone or revoked, STORE_EIO if the store failed. For connections that
 * checked the whole key once and keep only its id. */
int apikey_live(struct store *st, const char *id);
/* The same, read without waiting: cb(rc, ud) from the main loop. */
typedef void (*apikey_live_cb)(int rc, void *ud);
void apikey_live_later(struct store *st, const char *id, apikey_live_cb cb, void *ud);
/* Revokes key id: STORE_OK, STORE_ENOTFOUND, or a store code. Revoking
 * twice is fine. */
int apikey_revoke(struct store *st, const char *id, const char *actor);
/* Calls cb with every key's document (never the hash) of enterprise, or of
 * all enterprises when enterprise is NULL. */
int apikey_each(struct store *st, const char *enterprise, store_doc_cb cb, void *ud);

#endif
