/* libFuzzer target: jx_load and jx_dump against jansson on arbitrary bytes.
 * Both parsers must take or refuse the same texts and make equal documents
 * of them, and both serialisers must write the same text. */
#include "common/jsonx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *theirs = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *ours = jx_load((const char *)data, size);
    if (!theirs != !ours || (ours && !json_equal(ours, theirs)))
        __builtin_trap();
    if (ours) {
        char *a = jx_dump(ours);
        char *b = json_dumps(ours, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!a || !b || strcmp(a, b) != 0)
            __builtin_trap();
        free(a);
        free(b);
    }
    json_decref(ours);
    json_decref(theirs);
    return 0;
}
