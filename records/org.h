/* Organisations: administrative divisions, enterprises (plants) and
 * carriers (hazmat transport companies). Enough of each for accounts and
 * jurisdiction; the full enterprise file (一企一档) builds on these records.
 * Documents live in the collections "divisions", "enterprises", "carriers",
 * each indexed by division code. */
#ifndef YJT_ORG_H
#define YJT_ORG_H

#include "records/store.h"

#define ORG_ID_MAX 64
#define ORG_NAME_MAX 200

/* Declares the org indexes; call once after opening the store. */
int org_init(struct store *st);

/* Adds a record; returns 0, STORE_ECONFLICT if the id exists, STORE_EINVAL
 * for a bad id, name or division code (the reason in *why, static). */
int org_division_add(struct store *st, const char *code, const char *name, const char **why);
int org_enterprise_add(struct store *st, const char *id, const char *name, const char *division,
                       bool key_supervised, const char **why);
int org_carrier_add(struct store *st, const char *id, const char *name, const char *division,
                    const char **why);

/* *out gets a new reference to the document, or STORE_ENOTFOUND. */
int org_enterprise_get(struct store *st, const char *id, json_t **out);
int org_carrier_get(struct store *st, const char *id, json_t **out);
/* The division code of the organisation a user of role with org belongs
 * to (gov: org itself; corp: its enterprise's; trs: its carrier's), or NULL.
 * Free with g_free(). */
char *org_division_of(struct store *st, const char *role, const char *org);
/* With ttl_ms > 0, org_division_of() keeps what it read of enterprises and
 * carriers that long (a shared store, where each read is a round trip; a
 * change made elsewhere shows within about ttl_ms); past it, on a store
 * that reads later (Redis), the kept one is served while it is read again
 * without waiting, up to ten times ttl_ms; 0, the default: reads each
 * time. org_division_forget() drops one (this process changed it). */
void org_cache_divisions(int64_t ttl_ms);
void org_division_forget(const char *id);
/* Whether org_division_of(role, org) answers from what is kept, without a
 * read that waits. */
bool org_division_kept(const char *role, const char *org);
/* The division of an enterprise (role corp) or carrier (trs) org, telling
 * a missing record from a failed read: from what is kept (read ahead),
 * else from its record, read now. STORE_OK with *out (g_free; "" if the
 * record names none), STORE_ENOTFOUND, or the store's error. */
int org_division_get(struct store *st, const char *role, const char *org, char **out);
/* Where divisions are kept and the store reads later: reads the divisions
 * of those of the n organisations (users' roles and orgs) not kept,
 * without waiting, and keeps them; done(ud) is told from the loop once
 * every read is answered (well or not). False if nothing was sent (done
 * is not told). */
bool org_divisions_read_later(struct store *st, const char *const *roles, const char *const *orgs,
                              int n, void (*done)(void *ud), void *ud);
/* True if id is a plausible record id: 1..64 of [A-Za-z0-9_.-]. */
bool org_id_valid(const char *id);

#endif
