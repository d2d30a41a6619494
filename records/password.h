/* Password hashing: PBKDF2-HMAC-SHA256 from OpenSSL, stored as
 * "pbkdf2-sha256$ITERATIONS$SALT$HASH" (base64url), so the work factor can
 * be raised later without invalidating old hashes. Thread-safe: the server
 * calls these from its hashing worker threads. */
#ifndef YJT_PASSWORD_H
#define YJT_PASSWORD_H

#include <stdbool.h>

#define PASSWORD_MIN_LEN 8
#define PASSWORD_MAX_LEN 256

/* Returns the stored form of password (free with g_free), or NULL. */
char *password_hash(const char *password, int iterations);
/* True if password matches the stored form; false for any malformed one. */
bool password_verify(const char *password, const char *stored);
/* Checks length bounds; returns NULL if acceptable, else a reason. */
const char *password_policy_error(const char *password);

#endif
