/* jx_dump and jx_load against jansson itself: the same text out, the same
 * documents (or the same refusal) in. */
#include "common/jsonx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void same_dump(json_t *v)
{
    char *ours = jx_dump(v);
    char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(ours);
    assert_non_null(theirs);
    assert_string_equal(ours, theirs);
    free(ours);
    free(theirs);
    json_decref(v);
}

static void test_dump_scalars(void **state)
{
    (void)state;
    static const double reals[] = {0.0,  -0.0,      0.1,   1.5,           123.0,  1e20,
                                   1e-5, -2.5e-300, 1e300, 6.02214076e23, 3.0e-7, 100.0};
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
        same_dump(json_pack("[f]", reals[i]));
    same_dump(json_pack("[I, I, I]", (json_int_t)0, (json_int_t)INT64_MAX, (json_int_t)INT64_MIN));
    same_dump(json_pack("[b, b, n]", 1, 0));
    same_dump(json_pack("{}"));
    same_dump(json_pack("[]"));
    same_dump(json_pack("{s:[], s:{}, s:[[], {}]}", "a", "b", "c"));
}

static void test_dump_strings(void **state)
{
    (void)state;
    char all[128];
    for (int c = 1; c < 128; c++)
        all[c - 1] = (char)c;
    all[127] = '\0';
    same_dump(json_pack("{s:s}", "ascii", all));
    same_dump(json_pack("{s:s}", "k\"e\\y\n", "v"));
    same_dump(
        json_pack("{s:s}", "utf8", "\xe5\x8d\xb1\xe5\x8c\x96 \xf0\x9f\x94\xa5 caf\xc3\xa9 / \x7f"));
    same_dump(json_pack("{s:s#}", "nul", "a\0b", (int)3));
    char *sdp = malloc(8000);
    size_t n = 0;
    while (n < 7000)
        n += (size_t)sprintf(sdp + n, "a=fmtp:111 minptime=10;useinbandfec=1\r\n");
    same_dump(
        json_pack("{s:s, s:s, s:{s:s}}", "type", "call.incoming", "sdp", sdp, "from", "id", "u1"));
    free(sdp);
}

static void same_load(const char *text, size_t len)
{
    json_error_t err;
    json_t *theirs = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    json_t *ours = jx_load(text, len);
    if (!theirs) {
        if (ours)
            fail_msg("jx_load took what jansson refuses (%s): %.*s", err.text, (int)len, text);
        return;
    }
    if (!ours)
        fail_msg("jx_load refused what jansson takes: %.*s", (int)len > 200 ? 200 : (int)len, text);
    assert_true(json_equal(ours, theirs));
    json_decref(ours);
    json_decref(theirs);
}

/* Makes {"type":"x","sdp":"<body>"<tail>} with body padded past the length
 * at which jx_load decodes strings itself. */
static char *long_doc(const char *body, const char *tail)
{
    char pad[400];
    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    size_t cap = strlen(body) + strlen(tail) + 2 * sizeof(pad) + 64;
    char *t = malloc(cap);
    snprintf(t, cap, "{\"type\":\"x\",\"sdp\":\"%s%s%s\"%s}", pad, body, pad, tail);
    return t;
}

static void check_long(const char *body, const char *tail)
{
    char *t = long_doc(body, tail);
    same_load(t, strlen(t));
    free(t);
}

static void test_load_long_strings(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "",
        "v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n",
        "\\\" \\\\ \\/ \\b \\f \\n \\r \\t",
        "\\u00e9 \\u5371 \\uD83D\\uDD25 \\u0041",
        "caf\xc3\xa9 \xe5\x8d\xb1 \xf0\x9f\x94\xa5",
        "\\\\\\\\",
        /* refused, each for its own reason */
        "\\u0000",
        "\\uD83D",
        "\\uDD25",
        "\\uD83D\\u0041",
        "\\u12G4",
        "\\x",
        "\\",
        "raw\ttab",
        "raw\x01",
        "\xc0\x80",
        "\xe0\x80\x80",
        "\xed\xa0\x80",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xe5\x8d",
        "\x80",
        "\xff",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        check_long(bodies[i], "");
        check_long(bodies[i], ",\"id\":7");
    }
    /* The rest of the text is judged whole. */
    check_long("ok", ",\"sdp\":\"again\"");       /* a duplicate key */
    check_long("ok", "");                         /* plain */
    check_long("ok", ",\"x\":[1,{\"y\":\"z\"}]"); /* more after */
    check_long("ok", ",\"x\":");                  /* broken after */
    check_long("ok", "} trailing");               /* text after */
    check_long("ok", ",\"x\":tru");               /* bad literal */
    check_long("ok", ",\"x\":\"unterminated");
}

static void test_load_layouts(void **state)
{
    (void)state;
    char big[1200];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char t[16384];
    /* A long key (not cut), a long string nested (not cut), an array. */
    snprintf(t, sizeof(t), "{\"%s\":1}", big);
    same_load(t, strlen(t));
    snprintf(t, sizeof(t), "{\"a\":{\"b\":\"%s\"},\"c\":[\"%s\"]}", big, big);
    same_load(t, strlen(t));
    snprintf(t, sizeof(t), "[\"%s\", {\"k\":\"%s\"}]", big, big);
    same_load(t, strlen(t));
    /* More long strings than are cut: the rest go to jansson. */
    size_t n = (size_t)snprintf(t, sizeof(t), " {");
    for (int i = 0; i < 11; i++)
        n += (size_t)snprintf(t + n, sizeof(t) - n, "%s\"k%d\" : \"%.*s\"", i ? " , " : "", i,
                              300 + i, big);
    n += (size_t)snprintf(t + n, sizeof(t) - n, "}\n");
    same_load(t, n);
    /* An escaped key whose value is long. */
    snprintf(t, sizeof(t), "{\"s\\u0064p\":\"%s\",\"sdp\":1}", big);
    same_load(t, strlen(t));
    snprintf(t, sizeof(t), "{\"s\\u0064p\":\"%s\"}", big);
    same_load(t, strlen(t));
    /* Not an object, not JSON, nothing. */
    snprintf(t, sizeof(t), "\"%s\"", big);
    same_load(t, strlen(t));
    snprintf(t, sizeof(t), "{\"a\":\"%s", big);
    same_load(t, strlen(t));
    same_load("", 0);
}

/* Random damage to a long message: whatever jansson makes of it, jx_load
 * makes the same. */
static void test_load_mutations(void **state)
{
    (void)state;
    char *base =
        long_doc("v=0\\r\\na=\\\"x\\\" \\u00e9\\uD83D\\uDD25 \xe5\x8d\xb1\\\\", ",\"id\":\"r1\"");
    size_t len = strlen(base);
    static const char alphabet[] = "\"\\{}[],:u0aD8Fn \x01\x80\xc3\xe5\xed\xf0";
    char *t = malloc(len + 8);
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        memcpy(t, base, len);
        size_t n = len;
        int edits = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 3;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            char c = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
            if ((seed >> 20) % 4 == 0 && n > 2) { /* delete */
                memmove(t + at, t + at + 1, n - at - 1);
                n--;
            } else {
                t[at] = c;
            }
        }
        same_load(t, n);
    }
    free(t);
    free(base);
}

static void test_append_quoted(void **state)
{
    (void)state;
    static const char *const samples[] = {"plain", "", "q\"b\\s\n\t\x01", "\xe5\x8d\xb1/\x7f"};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        GString *out = g_string_new("x");
        jx_append_quoted(out, samples[i]);
        json_t *j = json_string(samples[i]);
        char *want = json_dumps(j, JSON_ENCODE_ANY);
        assert_string_equal(out->str + 1, want);
        free(want);
        json_decref(j);
        g_string_free(out, TRUE);
    }
    GString *out = g_string_new(NULL);
    jx_append_quoted(out, "bad \xc0\x80 utf-8");
    assert_string_equal(out->str, "\"\"");
    g_string_free(out, TRUE);
}

/* jx_append_int writes what printf does, at both ends of the range. */
static void test_append_int(void **state)
{
    (void)state;
    static const int64_t samples[] = {0, 7, -7, 10, 1234567890123, INT64_MAX, INT64_MIN, -1};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        GString *out = g_string_new("x");
        jx_append_int(out, samples[i]);
        char want[32];
        snprintf(want, sizeof(want), "x%" PRId64, samples[i]);
        assert_string_equal(out->str, want);
        g_string_free(out, TRUE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_scalars),  cmocka_unit_test(test_dump_strings),
        cmocka_unit_test(test_append_quoted), cmocka_unit_test(test_load_long_strings),
        cmocka_unit_test(test_load_layouts),  cmocka_unit_test(test_load_mutations),
        cmocka_unit_test(test_append_int),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
