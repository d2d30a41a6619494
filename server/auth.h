/* Authentication: password logins (hashed on a worker pool, never on the
 * event loop), lockout per account and throttling per source address,
 * token issue, check, refresh and revocation. REST and WebSocket both log
 * in through here, so the rules are the same on both. Every login attempt
 * is counted in metrics and written to the audit log. */
#ifndef YJT_AUTH_H
#define YJT_AUTH_H

#include "common/errors.h"
#include "records/account.h"
#include "server/token.h"

#include <jansson.h>

struct auth_outcome {
    enum err_code err;
    const char *message;  /* for the client; static */
    struct account *acct; /* on success */
    char *token;          /* on success */
    struct token_claims claims;
    int64_t retry_after_ms; /* for rate_limited */
};

/* Called on the main loop when a login finishes; o is freed after. */
typedef void (*auth_cb)(struct auth_outcome *o, void *ud);

enum token_state {
    TOKEN_OK,
    TOKEN_INVALID,
    TOKEN_EXPIRED,
    TOKEN_REVOKED,
    TOKEN_DISABLED,
    TOKEN_UNAVAILABLE
};

int auth_init(void);
/* Waits for the hashing workers, then finishes pending logins with
 * `unavailable`. */
void auth_shutdown(void);

/* After the store and the account cache closed (which answer the reads
 * of logins cut short by auth_shutdown): frees what is left. */
void auth_forget_logins(void);

/* Starts a login; cb runs later on the main loop, exactly once. */
void auth_login(const char *username, const char *password, const char *device_id,
                const char *source, auth_cb cb, void *ud);
/* Checks a token without holding the loop where the store would (its
 * revocation is read later, store_kv_get_later): cb gets the state, and
 * on TOKEN_OK the account and the claims (borrowed for the call), exactly
 * once, at once when nothing is to be read (an invalid or expired token,
 * one known not revoked), else from the main loop. */
typedef void (*auth_token_cb)(enum token_state st, const struct account *acct,
                              const struct token_claims *claims, void *ud);
void auth_check_token_later(const char *token, auth_token_cb cb, void *ud);
/* Issues a token for acct on device_id; fills *claims. NULL on failure. */
char *auth_issue(const struct account *acct, const char *device_id, struct token_claims *claims);
/* Revokes one token until its expiry. Returns 0 or a store error. */
int auth_revoke(const struct token_claims *claims);
/* {"token","expires_at","user"} for a login or token reply. */
json_t *auth_session_json(const char *token, const struct token_claims *claims,
                          const struct account *acct);

#endif
