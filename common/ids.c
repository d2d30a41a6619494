/* Ids and URL-safe base64. */
#include "common/ids.h"

#include <glib.h>
#include <openssl/rand.h>
#include <string.h>

int id_random_bytes(unsigned char *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

char *id_new(const char *prefix)
{
    unsigned char raw[10];
    if (id_random_bytes(raw, sizeof(raw)) < 0)
        return NULL;
    GString *s = g_string_new(prefix);
    for (size_t i = 0; i < sizeof(raw); i++)
        g_string_append_printf(s, "%02x", raw[i]);
    return g_string_free(s, FALSE);
}

char *b64url_encode(const unsigned char *data, size_t len)
{
    char *s = g_base64_encode(data, len);
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        s[--n] = '\0';
    for (char *p = s; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    return s;
}

unsigned char *b64url_decode(const char *text, size_t *out_len)
{
    size_t n = strlen(text);
    if (n > 8192)
        return NULL;
    char *s = g_malloc(n + 4);
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!g_ascii_isalnum(c) && c != '=') {
            g_free(s);
            return NULL;
        }
        s[i] = c;
    }
    while (n % 4)
        s[n++] = '=';
    s[n] = '\0';
    gsize len = 0;
    unsigned char *out = g_base64_decode(s, &len);
    g_free(s);
    *out_len = len;
    return out;
}
