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

/* Random bytes for ids, drawn from the CSPRNG a pool at a time: one
 * RAND_bytes call (and its locking) per id was 2% of a call set-up. Each
 * thread has its own pool, so no byte is handed out twice. */
static int pool_take(unsigned char *out, size_t n)
{
    static _Thread_local unsigned char pool[512];
    static _Thread_local size_t left;
    if (n > sizeof(pool))
        return id_random_bytes(out, n);
    if (left < n) {
        if (id_random_bytes(pool, sizeof(pool)) < 0)
            return -1;
        left = sizeof(pool);
    }
    memcpy(out, pool + sizeof(pool) - left, n);
    memset(pool + sizeof(pool) - left, 0, n);
    left -= n;
    return 0;
}

char *id_new(const char *prefix)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[10];
    if (pool_take(raw, sizeof(raw)) < 0)
        return NULL;
    size_t p = strlen(prefix);
    char *s = g_malloc(p + 2 * sizeof(raw) + 1);
    memcpy(s, prefix, p);
    for (size_t i = 0; i < sizeof(raw); i++) {
        s[p + 2 * i] = hex[raw[i] >> 4];
        s[p + 2 * i + 1] = hex[raw[i] & 15];
    }
    s[p + 2 * sizeof(raw)] = '\0';
    return s;
}

char *id_new_sorted(const char *prefix)
{
    static int64_t last_ms;
    static uint32_t last_low;
    uint32_t low;
    if (pool_take((unsigned char *)&low, sizeof(low)) < 0)
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
