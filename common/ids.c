/* Ids and URL-safe base64. */
#include "common/ids.h"

#include <glib.h>
#include <inttypes.h>
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

char *id_new_sorted(const char *prefix)
{
    static int64_t last_ms;
    static uint32_t last_low;
    uint32_t low;
    if (id_random_bytes((unsigned char *)&low, sizeof(low)) < 0)
        return NULL;
    int64_t ms = g_get_real_time() / 1000;
    if (ms < last_ms)
        ms = last_ms; /* the clock stepped back: keep rising */
    if (ms == last_ms) {
        if (last_low == UINT32_MAX)
            ms++;
        else
            low = last_low + 1;
    }
    last_ms = ms;
    last_low = low;
    return g_strdup_printf("%s%012" G_GINT64_MODIFIER "x%08" PRIx32, prefix, (guint64)ms & G_GUINT64_CONSTANT(0xffffffffffff),
                           low);
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
