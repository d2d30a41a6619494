/* User accounts: who may log in, with which role and organisation, and the
 * per-account state behind lockout and token revocation. Stored as
 * documents in the "users" collection, indexed by username (unique) and org.
 *
 * token_ver is part of every token a user holds: bumping it (disable,
 * password change) revokes all of that user's tokens at once.
 *
 * Only administrators change the account document. The server's per-login
 * state (consecutive failures, lockout) is kept apart, in an expiring key
 * per account, so a failed login never rewrites the account and can never
 * undo a change an administrator made at the same moment. */
#ifndef YJT_ACCOUNT_H
#define YJT_ACCOUNT_H

#include "records/store.h"

#include <stdbool.h>
#include <stdint.h>

#define USERNAME_MAX 64

struct account {
    char *id;
    char *username;
    char *display_name;
    char *role; /* gov, corp, trs, admin */
    char *org;  /* division code, enterprise id, carrier id; "-" for admin */
    char *position;
    char *phone;
    char *pw_hash;
    bool disabled;
    int64_t token_ver;
    int64_t created_at;
    int64_t updated_at;
};

struct account_new {
    const char *username, *password, *role, *org;
    const char *position, *display_name, *phone; /* optional */
    int hash_iterations;
};

int account_init(struct store *st);
bool account_role_valid(const char *role);
bool account_username_valid(const char *username);

/* Validates and creates an account. Returns 0 with *id_out set (g_free),
 * STORE_ECONFLICT for a taken username, STORE_EINVAL with a reason in *why
 * (static) for bad input, including an org that does not exist. */
int account_create(struct store *st, const struct account_new *req, char **id_out,
                   const char **why);
/* Look-ups: 0 with *out set (account_free), STORE_ENOTFOUND, or STORE_EIO. */
int account_get(struct store *st, const char *id, struct account **out);
int account_find(struct store *st, const char *username, struct account **out);
/* Writes the account back (bumps updated_at). */
int account_save(struct store *st, struct account *a);
void account_free(struct account *a);
/* A deep copy (account_free). */
struct account *account_dup(const struct account *a);

/* Lockout state of account id: consecutive failures and the end of a
 * lock (UTC ms, 0 if none). Absent state reads as zeros. */
struct lockout {
    int failed;
    int64_t locked_until;
};
/* Stores the state until expire_at_ms (after which it reads as zeros). */
int account_lockout_set(struct store *st, const char *id, const struct lockout *l,
                        int64_t expire_at_ms);
int account_lockout_clear(struct store *st, const char *id);
/* The store key of id's lockout state (g_free), and that state read from
 * its stored value (NULL: absent, zeros); a login reads it without
 * waiting (server/auth.c). */
char *account_lockout_key(const char *id);
void account_lockout_parse(const char *value, struct lockout *out);

struct account *account_from_json(const char *id, json_t *doc);
/* The public view sent to clients: id, username, display_name, role, org,
 * position. Never the hash or the lockout state. */
json_t *account_public_json(const struct account *a);

/* Calls cb for every account (list) or every account of one org. */
typedef bool (*account_cb)(struct account *a, void *ud);
int account_each(struct store *st, account_cb cb, void *ud);
int account_each_in_org(struct store *st, const char *org, account_cb cb, void *ud);

#endif
