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
/* Checks a key as presented, its record read without waiting
 * (store_docs_get_later): cb(rc, enterprise, id, ud) from the main loop,
 * or at once for a key that cannot be one. rc is STORE_OK for a live key
 * (enterprise and the key's id borrowed), STORE_ENOTFOUND if it is
 * malformed, unknown, wrong or revoked, another store code if the store
 * failed. */
typedef void (*apikey_cb)(int rc, const char *enterprise, const char *id, void *ud);
void apikey_check_later(struct store *st, const char *key, apikey_cb cb, void *ud);
/* Whether key id (of a key checked whole once, e.g. by a connection)
 * still exists and is not revoked, read without waiting: cb(rc, ud) from
 * the main loop with STORE_OK, STORE_ENOTFOUND if it is gone or revoked,
 * or another store code. */
typedef void (*apikey_live_cb)(int rc, void *ud);
void apikey_live_later(struct store *st, const char *id, apikey_live_cb cb, void *ud);
/* Revokes key id: STORE_OK, STORE_ENOTFOUND, or a store code. Revoking
 * twice is fine. */
int apikey_revoke(struct store *st, const char *id, const char *actor);
/* Calls cb with every key's document (never the hash) of enterprise, or of
 * all enterprises when enterprise is NULL. */
int apikey_each(struct store *st, const char *enterprise, store_doc_cb cb, void *ud);

#endif
