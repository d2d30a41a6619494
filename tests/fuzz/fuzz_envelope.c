/* libFuzzer target: the WebSocket envelope parser on arbitrary bytes. */
#include "server/envelope.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope env;
    enum err_code rc = envelope_parse((const char *)data, size, &env);
    if (rc == ERR_NONE && (!env.id || !env.type))
        __builtin_trap();
    json_decref(env.msg);
    return 0;
}
