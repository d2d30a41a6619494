/* Token signing and checking with HMAC-SHA256 (OpenSSL). */
#include "server/token.h"

#include "common/ids.h"
#include "common/jsonx.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <unistd.h>

static void mac(const unsigned char key[TOKEN_KEY_LEN], const char *data, size_t len,
                unsigned char out[32])
{
    unsigned int out_len = 32;
    HMAC(EVP_sha256(), key, TOKEN_KEY_LEN, (const unsigned char *)data, len, out, &out_len);
}

char *token_issue(const unsigned char key[TOKEN_KEY_LEN], const struct token_claims *c)
{
    json_t *p = json_pack("{s:s, s:I, s:s, s:s, s:I, s:I}", "u", c->user_id, "v",
                          (json_int_t)c->ver, "j", c->jti, "d", c->device_id ? c->device_id : "",
                          "i", (json_int_t)c->iat, "e", (json_int_t)c->exp);
    if (!p)
        return NULL;
    char *text = jx_dump(p);
    json_decref(p);
    char *payload = b64url_encode((const unsigned char *)text, strlen(text));
    free(text);
    char *signed_part = g_strdup_printf("v1.%s", payload);
    g_free(payload);
    unsigned char m[32];
    mac(key, signed_part, strlen(signed_part), m);
    char *m64 = b64url_encode(m, sizeof(m));
    char *token = g_strdup_printf("%s.%s", signed_part, m64);
    g_free(signed_part);
    g_free(m64);
    return token;
}

void token_claims_clear(struct token_claims *c)
{
    g_free(c->user_id);
    g_free(c->jti);
    g_free(c->device_id);
    memset(c, 0, sizeof(*c));
}

int token_verify(const unsigned char key[TOKEN_KEY_LEN], const char *token, int64_t now_ms,
                 struct token_claims *out)
{
    memset(out, 0, sizeof(*out));
    if (!token || strlen(token) > TOKEN_MAX_LEN || strncmp(token, "v1.", 3) != 0)
        return -1;
    const char *dot = strrchr(token, '.');
    if (dot <= token + 3)
        return -1;
    size_t mac_len = 0;
    unsigned char *got = b64url_decode(dot + 1, &mac_len);
    unsigned char want[32];
    mac(key, token, (size_t)(dot - token), want);
    bool ok = got && mac_len == 32 && CRYPTO_memcmp(got, want, 32) == 0;
    g_free(got);
    if (!ok)
        return -1;
    char *payload64 = g_strndup(token + 3, (gsize)(dot - token - 3));
    size_t plen = 0;
    unsigned char *ptext = b64url_decode(payload64, &plen);
    g_free(payload64);
    json_t *p = ptext ? json_loadb((const char *)ptext, plen, 0, NULL) : NULL;
    g_free(ptext);
    const char *u = jx_str(p, "u"), *j = jx_str(p, "j"), *d = jx_str(p, "d");
    int rc = -1;
    if (u && j && json_is_integer(json_object_get(p, "e"))) {
        out->user_id = g_strdup(u);
        out->jti = g_strdup(j);
        out->device_id = g_strdup(d ? d : "");
        out->ver = jx_int(p, "v", -1);
        out->iat = jx_int(p, "i", 0);
        out->exp = jx_int(p, "e", 0);
        rc = out->exp > now_ms ? 0 : -2;
        if (rc < 0)
            token_claims_clear(out);
    }
    json_decref(p);
    return rc;
}

int token_key_load(const char *path, unsigned char key[TOKEN_KEY_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, key, TOKEN_KEY_LEN);
        close(fd);
        return n == TOKEN_KEY_LEN ? 0 : -1;
    }
    if (errno != ENOENT || id_random_bytes(key, TOKEN_KEY_LEN) < 0)
        return -1;
    /* Write a temporary file and rename it, so a crash never leaves a short key. */
    char *tmp = g_strdup_printf("%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = -1;
    if (fd >= 0) {
        if (write(fd, key, TOKEN_KEY_LEN) == TOKEN_KEY_LEN && fsync(fd) == 0)
            rc = 0;
        close(fd);
        if (rc == 0 && rename(tmp, path) != 0)
            rc = -1;
    }
    g_free(tmp);
    return rc;
}
