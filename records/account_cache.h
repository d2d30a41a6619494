/* Every account in memory, never older than the store (see
 * account_cache.c). yjtd opens it at start; account_get() and
 * account_each_in_org() then read from it for that store. */
#ifndef YJT_ACCOUNT_CACHE_H
#define YJT_ACCOUNT_CACHE_H

#include "records/account.h"

/* Loads every account of st. 0, or a store error (and no cache). */
int account_cache_open(struct store *st);
void account_cache_close(void);
/* Whether reads of st's accounts are served from memory. */
bool account_cache_serves(struct store *st);
/* As account_get() and account_each_in_org(). The accounts passed to cb
 * belong to the cache: read them, keep a copy (account_dup) if needed. */
int account_cache_get(const char *id, struct account **out);
int account_cache_each_in_org(const char *org, account_cb cb, void *ud);

#endif
