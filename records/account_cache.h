/* Every account in memory, never older than the store (see
 * account_cache.c). yjtd opens it at start; account_get() and
 * account_each_in_org() then read from it for that store. */
#ifndef YJT_ACCOUNT_CACHE_H
#define YJT_ACCOUNT_CACHE_H

#include "records/account.h"

/* Loads every account of st. 0, or a store error (and no cache). */
int account_cache_open(struct store *st);
void account_cache_close(void);
/* With max_age_ms > 0 (a store that several servers share, where each
 * look is a round trip), the cache looks at the store's changes every
 * max_age_ms in the background on a store that reads later (Redis), else
 * at a read when the last look is that old; and a read looks at once if
 * this process wrote an account since. 0 (the default): before every
 * read. */
void account_cache_set_max_age(int64_t max_age_ms);
/* The next read looks at the store: after this process wrote an account,
 * or before a read that must be current (a login's). */
void account_cache_stale(void);
/* cb(rc, ud) once a look at the store sent after this call is applied
 * (STORE_OK), or failed: from the main loop, never inside this call
 * unless the cache is closed (STORE_EIO at once). Waiters not answered
 * when the cache closes hear STORE_EIO then. */
typedef void (*account_cache_cb)(int rc, void *ud);
void account_cache_after_look(account_cache_cb cb, void *ud);
/* Whether a read served now comes from memory without a look at the
 * store first: false when no background look was answered lately, or
 * after account_cache_stale(). A caller on the main loop that must not
 * wait then rides account_cache_after_look() first. */
bool account_cache_current(void);
/* Between account_cache_as_is(true) and (false), reads are served from
 * memory as they are, with no look first: for a caller that has just
 * ridden one. */
void account_cache_as_is(bool on);
/* fn(account, ud) for each account the cache applies after this call,
 * changed by this process or another (one listener; NULL: none). fn must
 * not write accounts. */
typedef void (*account_change_fn)(const struct account *a, void *ud);
void account_cache_on_change(account_change_fn fn, void *ud);
/* Looks at the store now where the cache does not look in the background
 * (a timer's, so that changes made elsewhere reach the listener). */
void account_cache_poll(void);
/* Whether reads of st's accounts are served from memory. */
bool account_cache_serves(struct store *st);
/* As account_get(), account_find() and account_each_in_org(). The accounts passed to cb
 * belong to the cache: read them, keep a copy (account_dup) if needed. */
int account_cache_get(const char *id, struct account **out);
int account_cache_find(const char *username, struct account **out);
int account_cache_each_in_org(const char *org, account_cb cb, void *ud);
/* Every account, in no order. */
int account_cache_each(account_cb cb, void *ud);

#endif
