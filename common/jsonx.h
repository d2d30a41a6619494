/* Small helpers over jansson for reading untrusted JSON objects: typed field
 * access that returns NULL (or a default) instead of trusting the input. */
#ifndef YJT_JSONX_H
#define YJT_JSONX_H

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The string value of key, or NULL if absent or not a string. */
const char *jx_str(const json_t *obj, const char *key);
/* Like jx_str but also NULL for an empty string or one longer than max. */
const char *jx_str_bounded(const json_t *obj, const char *key, size_t max);
/* The integer value of key, or def if absent or not an integer. */
int64_t jx_int(const json_t *obj, const char *key, int64_t def);
bool jx_bool(const json_t *obj, const char *key, bool def);
/* The first object of array whose key is the string value, or NULL
 * (borrowed). Also NULL if array is not an array or value is NULL. */
json_t *jx_find(const json_t *array, const char *key, const char *value);
/* Compact serialisation, as json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)
 * writes it but faster on long strings; NULL on failure (out of memory,
 * nesting deeper than 2048). The caller frees with free(). */
char *jx_dump(const json_t *v);
/* Parses text[0..len) as json_loadb(text, len, JSON_REJECT_DUPLICATES)
 * does (an object or array, nothing after it), but decodes an object's
 * long top-level strings (an SDP) without jansson's per-character cost.
 * NULL if the text is not valid. */
json_t *jx_load(const char *text, size_t len);
/* Appends s (NUL-terminated) to out as a JSON string, quoted and escaped
 * as jx_dump writes it; "" if s is not valid UTF-8. */
void jx_append_quoted(GString *out, const char *s);
/* Appends v in decimal, as printf's "%" PRId64 would (no format string to
 * interpret: for numbers written once per recipient of a push). */
void jx_append_int(GString *out, int64_t v);

#endif
