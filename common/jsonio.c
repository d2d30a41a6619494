/* JSON text in and out (see jsonx.h: jx_dump, jx_load).
 *
 * jansson decodes and encodes strings a character at a time through its
 * stream and buffer layers; for the long strings yjt relays (an SDP offer
 * is 3 to 6 KB) that was most of the cost of a call set-up. Here long
 * top-level strings are cut out of the text before jansson parses the
 * rest, and decoded by a table-driven loop that copies runs of plain
 * bytes; the serialiser writes runs the same way. Both accept and produce
 * exactly what jansson does (same escapes, same number formats, same
 * errors: invalid UTF-8, control characters, lone surrogates, \u0000,
 * duplicate keys), which the unit tests check against jansson itself. */
#include "common/jsonx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- output ---------- */

struct jbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static bool jb_reserve(struct jbuf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
    if (!jb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void jb_putc(struct jbuf *b, char c)
{
    if (jb_reserve(b, 1))
        b->p[b->len++] = c;
}

/* Bytes a string may hold as they are: everything but '"', '\\' and
 * control characters (jansson writes DEL and non-ASCII unescaped too). */
static bool plain_out[256];
/* Bytes a string's text may hold as they are: as plain_out, and ASCII
 * only, since other bytes must be checked as UTF-8. */
static bool plain_in[256];

static void tables_init(void)
{
    static bool done;
    if (done)
        return;
    for (int c = 0; c < 256; c++) {
        plain_out[c] = c >= 0x20 && c != '"' && c != '\\';
        plain_in[c] = plain_out[c] && c < 0x80;
    }
    done = true;
}

static void dump_string(struct jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    jb_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && plain_out[(unsigned char)s[run]])
            run++;
        jb_put(b, s + i, run - i);
        if (run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        char esc[6] = {'\\', 0};
        size_t len = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        jb_put(b, esc, len);
        i = run + 1;
    }
    jb_putc(b, '"');
}

/* A real as jansson writes it: 17 significant digits, always with a '.'
 * or an exponent, the exponent without '+' or leading zeros. */
static void dump_real(struct jbuf *b, double v)
{
    char t[64];
    int n = snprintf(t, sizeof(t) - 3, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof(t) - 3 || strpbrk(t, "in")) { /* inf, nan */
        b->failed = true;
        return;
    }
    if (!strchr(t, '.') && !strchr(t, 'e')) {
        memcpy(t + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(t, 'e');
    if (e) {
        char *from = e + 1, *to = e + 1;
        if (*from == '+')
            from++;
        else if (*from == '-')
            from = ++to;
        while (*from == '0' && from[1])
            from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(t);
    }
    jb_put(b, t, (size_t)n);
}

#define DUMP_MAX_DEPTH 2048

static void dump_value(struct jbuf *b, const json_t *v, int depth)
{
    if (depth > DUMP_MAX_DEPTH) {
        b->failed = true;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        jb_putc(b, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it && !b->failed;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                jb_putc(b, ',');
            first = false;
            const char *key = json_object_iter_key(it);
            dump_string(b, key, strlen(key));
            jb_putc(b, ':');
            dump_value(b, json_object_iter_value(it), depth + 1);
        }
        jb_putc(b, '}');
        break;
    }
    case JSON_ARRAY: {
        jb_putc(b, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n && !b->failed; i++) {
            if (i)
                jb_putc(b, ',');
            dump_value(b, json_array_get(v, i), depth + 1);
        }
        jb_putc(b, ']');
        break;
    }
    case JSON_STRING:
        dump_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: {
        char t[32];
        int n = snprintf(t, sizeof(t), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        jb_put(b, t, (size_t)n);
        break;
    }
    case JSON_REAL:
        dump_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        jb_put(b, "true", 4);
        break;
    case JSON_FALSE:
        jb_put(b, "false", 5);
        break;
    case JSON_NULL:
        jb_put(b, "null", 4);
        break;
    }
}

char *jx_dump(const json_t *v)
{
    if (!v)
        return NULL;
    tables_init();
    struct jbuf b = {0};
    dump_value(&b, v, 0);
    if (!b.failed && jb_reserve(&b, 0)) {
        b.p[b.len] = '\0';
        return b.p;
    }
    free(b.p);
    return NULL;
}

void jx_append_int(GString *out, int64_t v)
{
    char digits[24];
    int i = (int)sizeof(digits);
    /* the magnitude as unsigned, so that INT64_MIN has one too */
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do
        digits[--i] = (char)('0' + m % 10);
    while ((m /= 10) > 0);
    if (v < 0)
        digits[--i] = '-';
    g_string_append_len(out, digits + i, (gssize)sizeof(digits) - i);
}

void jx_append_quoted(GString *out, const char *s)
{
    size_t n = strlen(s);
    if (!g_utf8_validate(s, (gssize)n, NULL)) {
        g_string_append(out, "\"\"");
        return;
    }
    tables_init();
    struct jbuf b = {0};
    dump_string(&b, s, n);
    if (b.failed)
        g_string_append(out, "\"\"");
    else
        g_string_append_len(out, b.p, (gssize)b.len);
    free(b.p);
}

/* ---------- input ---------- */

/* Strings at least this long at the top level of an object are cut out
 * and decoded here; shorter ones are not worth the bookkeeping. */
#define LONG_STRING 256
#define MAX_CUTS 8

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static long hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* The length of the well-formed UTF-8 sequence at s[0..n) (no overlong
 * forms, surrogates or code points past U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned long cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the body of a JSON string (between its quotes) into out, which
 * has room for n bytes (decoding never grows a string). Returns the
 * decoded length, or -1 where jansson would refuse the string. */
static long decode_string(const char *s, size_t n, char *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && plain_in[(unsigned char)s[run]])
            run++;
        memcpy(out + o, s + i, run - i);
        o += run - i;
        i = run;
        if (i == n)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t len = utf8_seq((const unsigned char *)s + i, n - i);
            if (!len)
                return -1;
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
            continue;
        }
        if (c != '\\' || i + 1 >= n)
            return -1; /* a control character, or a lone backslash */
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case '"':
            out[o++] = '"';
            break;
        case '\\':
            out[o++] = '\\';
            break;
        case '/':
            out[o++] = '/';
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            long cp = i + 4 <= n ? hex4(s + i) : -1;
            if (cp <= 0) /* malformed, or \u0000 */
                return -1;
            i += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return -1; /* a low surrogate first */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u' ? hex4(s + i + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += put_utf8(out + o, (unsigned long)cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)o;
}

/* Where a string starting at text[i] (its opening quote) ends: the index
 * of its closing quote, or len if it does not end. */
static size_t string_end(const char *text, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        const char *q = memchr(text + i, '"', len - i);
        if (!q)
            return len;
        i = (size_t)(q - text);
        size_t bs = 0; /* backslashes just before the quote */
        while (bs < i && text[i - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return i;
    }
    return len;
}

struct cut {
    size_t key, key_end; /* the key's body, between its quotes */
    size_t val, val_end; /* the value's body */
};

/* Finds the long string values of the top-level object in text. Returns
 * how many (up to MAX_CUTS; further ones stay for jansson), or 0 if the
 * text is not laid out as an object (jansson then judges it whole). */
static int find_cuts(const char *text, size_t len, struct cut *cuts)
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    if (i == len || text[i] != '{')
        return 0;
    int depth = 0, n = 0;
    bool in_value = false; /* at depth 1: between a ':' and its ',' */
    size_t key = 0, key_end = 0;
    for (; i < len; i++) {
        char c = text[i];
        if (c == '"') {
            size_t end = string_end(text, len, i);
            if (end == len)
                return 0;
            if (depth == 1 && !in_value) {
                key = i + 1;
                key_end = end;
            } else if (depth == 1 && end - i - 1 >= LONG_STRING && n < MAX_CUTS) {
                cuts[n++] = (struct cut){key, key_end, i + 1, end};
            }
            i = end;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return n;
        } else if (depth == 1 && c == ':') {
            in_value = true;
        } else if (depth == 1 && c == ',') {
            in_value = false;
        }
    }
    return 0;
}

/* Puts the decoded long string of cut c into doc, decoding into scratch
 * (room for the key, a NUL and the value). Returns 1 when done, 0 if
 * jansson did not see the layout the scan saw (the caller then parses the
 * text whole), -1 if the key or value is one jansson would refuse. */
static int fill_cut(json_t *doc, const char *text, const struct cut *c, char *scratch)
{
    long kl = decode_string(text + c->key, c->key_end - c->key, scratch);
    if (kl < 0)
        return -1;
    scratch[kl] = '\0'; /* no NUL inside: decode_string refuses \u0000 */
    char *val = scratch + kl + 1;
    long vl = decode_string(text + c->val, c->val_end - c->val, val);
    if (vl < 0)
        return -1;
    /* The key holds the "" left in place of the body, unless the scan and
     * the parser disagree. */
    json_t *was = json_object_get(doc, scratch);
    if (!json_is_string(was) || json_string_length(was) != 0)
        return 0;
    json_object_set_new(doc, scratch, json_stringn_nocheck(val, (size_t)vl));
    return 1;
}

json_t *jx_load(const char *text, size_t len)
{
    tables_init();
    struct cut cuts[MAX_CUTS];
    int n = len >= LONG_STRING ? find_cuts(text, len, cuts) : 0;
    if (!n)
        return json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);

    /* The text without the long strings' bodies: each value becomes "". */
    size_t cut_bytes = 0, scratch_len = 0;
    for (int k = 0; k < n; k++) {
        size_t klen = cuts[k].key_end - cuts[k].key, vlen = cuts[k].val_end - cuts[k].val;
        cut_bytes += vlen;
        if (klen + vlen + 2 > scratch_len)
            scratch_len = klen + vlen + 2; /* decoding never grows a string */
    }
    char *rest = malloc(len - cut_bytes), *scratch = malloc(scratch_len);
    json_t *doc = NULL;
    if (rest && scratch) {
        size_t from = 0, r = 0;
        for (int k = 0; k < n; k++) {
            memcpy(rest + r, text + from, cuts[k].val - from);
            r += cuts[k].val - from;
            from = cuts[k].val_end;
        }
        memcpy(rest + r, text + from, len - from);
        r += len - from;
        /* If the rest is not valid, neither is the whole. */
        doc = json_loadb(rest, r, JSON_REJECT_DUPLICATES, NULL);
    }
    for (int k = 0; doc && k < n; k++) {
        int got = fill_cut(doc, text, &cuts[k], scratch);
        if (got <= 0) {
            json_decref(doc);
            doc = got == 0 ? json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
            break;
        }
    }
    free(rest);
    free(scratch);
    return doc;
}
