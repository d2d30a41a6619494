/* Every account in memory, never older than the store (see
 * account_cache.c). yjtd opens it at start; account_get() and
 * account_each_in_org() then read from it for that store. */
#ifndef YJT_ACCOUNT_CACHE_H
#define YJT_ACCOUNT_CACHE_H

#include "records/account.h"

/* Loads every account of st. 0, or a store error (and no cache). */
int account_cache_open(struct store *st);
void account_cache_close(void);
/* With max_age_ms > 0, a read applies the store's changes only if the last
 * look is that old, or this process wrote an account since (a store that
 * several servers share, where each look is a round trip); 0 (the
 * default): before every read. */
void account_cache_set_max_age(int64_t max_age_ms);
/* The next read looks at the store: after this process wrote an account,
 * or before a read that must be current (a login's). */
void account_cache_stale(void);
/* Whether reads of st's accounts are served from memory. */
bool account_cache_serves(struct store *st);
/* As account_get() and account_each_in_org(). The accounts passed to cb
 * belong to the cache: read them, keep a copy (account_dup) if needed. */
int account_cache_get(const char *id, struct account **out);
int account_cache_each_in_org(const char *org, account_cb cb, void *ud);

#endif
