/* Envelope parsing (see envelope.h). */
#include "server/envelope.h"

#include "common/jsonx.h"

#include <string.h>

enum err_code envelope_parse(const char *text, size_t len, struct envelope *env)
{
    memset(env, 0, sizeof(*env));
    env->msg = jx_load(text, len);
    if (!env->msg) {
        env->why = "message is not valid JSON";
        return ERR_BAD_REQUEST;
    }
    if (!json_is_object(env->msg)) {
        env->why = "message must be a JSON object";
        return ERR_BAD_REQUEST;
    }
    json_t *id = json_object_get(env->msg, "id");
    if ((json_is_string(id) && json_string_length(id) <= ENVELOPE_ID_MAX) || json_is_integer(id))
        env->id = id;
    else {
        env->why = "\"id\" must be a string (up to 128 bytes) or an integer";
        return ERR_BAD_REQUEST;
    }
    json_t *type = json_object_get(env->msg, "type");
    if (!json_is_string(type) || json_string_length(type) == 0 ||
        json_string_length(type) > ENVELOPE_TYPE_MAX) {
        env->why = "\"type\" must be a string of 1 to 64 bytes";
        return ERR_BAD_REQUEST;
    }
    env->type = json_string_value(type);
    return ERR_NONE;
}
