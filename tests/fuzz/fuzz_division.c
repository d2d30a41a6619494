/* libFuzzer target: division code normalisation and coverage. Checks the
 * invariant that a valid code always covers itself. */
#include "records/jurisdiction.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *mid = strchr(text, ',');
    if (mid)
        *mid++ = '\0';
    char out[8];
    if (division_normalize(text, out, sizeof(out)) && !division_covers(text, text))
        __builtin_trap();
    if (mid)
        (void)division_covers(text, mid);
    free(text);
    return 0;
}
