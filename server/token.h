/* Bearer tokens: "v1.<payload>.<mac>", the payload a base64url JSON object
 * {"u": user id, "v": token version, "j": token id, "d": device id,
 * "i": issued at, "e": expires at (UTC ms)}, the mac base64url
 * HMAC-SHA256 over "v1.<payload>" with the server's secret. A token is
 * valid while its mac checks, it has not expired, its id is not revoked and
 * its version equals the user's current token_ver (see account.h). */
#ifndef YJT_TOKEN_H
#define YJT_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_KEY_LEN 32
#define TOKEN_MAX_LEN 2048

struct token_claims {
    char *user_id;
    char *jti;
    char *device_id;
    int64_t ver;
    int64_t iat;
    int64_t exp;
};

/* Returns a new token (g_free), or NULL. */
char *token_issue(const unsigned char key[TOKEN_KEY_LEN], const struct token_claims *c);
/* Checks format, mac and expiry against now_ms. Returns 0 and fills *out
 * (token_claims_clear), -1 if malformed or forged, -2 if expired. */
int token_verify(const unsigned char key[TOKEN_KEY_LEN], const char *token, int64_t now_ms,
                 struct token_claims *out);
void token_claims_clear(struct token_claims *c);

/* Loads the secret from path, creating a random one (mode 0600) if the file
 * does not exist. Returns 0 or -1. */
int token_key_load(const char *path, unsigned char key[TOKEN_KEY_LEN]);


#endif
