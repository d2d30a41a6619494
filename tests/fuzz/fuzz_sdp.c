/* libFuzzer target: SDP offers as the SFU reads them. Whatever parses is
 * answered, and every answer must parse again and name only payload types
 * the offer had. */
#include "media/sdp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool offered(const struct sdp *offer, int pt)
{
    for (guint i = 0; i < offer->media->len; i++) {
        const struct sdp_media *m = g_ptr_array_index(offer->media, i);
        for (guint k = 0; k < m->codecs->len; k++)
            if (g_array_index(m->codecs, struct sdp_codec, k).pt == pt)
                return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    struct sdp *s = sdp_parse((const char *)data, size, &why);
    if (!s) {
        if (!why)
            abort();
        return 0;
    }
    struct sdp_answer_params p = {.ice_ufrag = "fuzzU",
                                  .ice_pwd = "fuzzpasswordfuzzpassword",
                                  .fingerprint = "01:02",
                                  .session_id = 1};
    char *answer = sdp_answer(s, &p, &why);
    if (answer) {
        struct sdp *a = sdp_parse(answer, strlen(answer), &why);
        if (!a)
            abort();
        for (guint i = 0; i < a->media->len; i++) {
            const struct sdp_media *m = g_ptr_array_index(a->media, i);
            for (guint k = 0; m->port && k < m->codecs->len; k++)
                if (!offered(s, g_array_index(m->codecs, struct sdp_codec, k).pt))
                    abort();
        }
        sdp_free(a);
        free(answer);
    } else if (!why) {
        abort();
    }
    sdp_free(s);
    return 0;
}
