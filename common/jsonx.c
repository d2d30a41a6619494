/* Typed, bounded access to JSON fields. */
#include "common/jsonx.h"

#include <string.h>

const char *jx_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

json_t *jx_find(const json_t *array, const char *key, const char *value)
{
    if (!value)
        return NULL;
    size_t i;
    json_t *item;
    json_array_foreach(array, i, item)
    {
        const char *v = jx_str(item, key);
        if (v && strcmp(v, value) == 0)
            return item;
    }
    return NULL;
}

const char *jx_str_bounded(const json_t *obj, const char *key, size_t max)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return NULL;
    size_t n = json_string_length(v);
    if (n == 0 || n > max || strlen(json_string_value(v)) != n)
        return NULL; /* empty, too long, or holds a NUL */
    return json_string_value(v);
}

int64_t jx_int(const json_t *obj, const char *key, int64_t def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

bool jx_bool(const json_t *obj, const char *key, bool def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}
