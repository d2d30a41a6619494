/* PBKDF2-HMAC-SHA256 password hashes with a random 16-byte salt. */
#include "records/password.h"

#include "common/ids.h"

#include <glib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define KEY_LEN 32
#define MAX_ITERATIONS 10000000

const char *password_policy_error(const char *password)
{
    size_t n = password ? strlen(password) : 0;
    if (n < PASSWORD_MIN_LEN)
        return "password must be at least 8 characters";
    if (n > PASSWORD_MAX_LEN)
        return "password must be at most 256 characters";
    return NULL;
}

static bool derive(const char *password, const unsigned char *salt, size_t salt_len, int iterations,
                   unsigned char *out)
{
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iterations,
                             EVP_sha256(), KEY_LEN, out) == 1;
}

char *password_hash(const char *password, int iterations)
{
    unsigned char salt[SALT_LEN], key[KEY_LEN];
    if (iterations < 1 || iterations > MAX_ITERATIONS || id_random_bytes(salt, SALT_LEN) < 0 ||
        !derive(password, salt, SALT_LEN, iterations, key))
        return NULL;
    char *s = b64url_encode(salt, SALT_LEN);
    char *k = b64url_encode(key, KEY_LEN);
    char *out = g_strdup_printf("pbkdf2-sha256$%d$%s$%s", iterations, s, k);
    g_free(s);
    g_free(k);
    OPENSSL_cleanse(key, sizeof(key));
    return out;
}

bool password_verify(const char *password, const char *stored)
{
    if (!password || !stored || strlen(password) > PASSWORD_MAX_LEN)
        return false;
    bool ok = false;
    char **parts = g_strsplit(stored, "$", 5);
    unsigned char *salt = NULL, *want = NULL;
    size_t salt_len = 0, want_len = 0;
    if (g_strv_length(parts) != 4 || strcmp(parts[0], "pbkdf2-sha256") != 0)
        goto out;
    char *end = NULL;
    long iterations = strtol(parts[1], &end, 10);
    if (*end || iterations < 1 || iterations > MAX_ITERATIONS)
        goto out;
    salt = b64url_decode(parts[2], &salt_len);
    want = b64url_decode(parts[3], &want_len);
    if (!salt || !want || want_len != KEY_LEN)
        goto out;
    unsigned char got[KEY_LEN];
    if (derive(password, salt, salt_len, (int)iterations, got))
        ok = CRYPTO_memcmp(got, want, KEY_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
out:
    g_free(salt);
    g_free(want);
    g_strfreev(parts);
    return ok;
}
