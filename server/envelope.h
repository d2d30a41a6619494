/* The WebSocket envelope: one JSON object per text message, with an "id"
 * (string up to 128 bytes, or integer) and a "type" (string up to 64
 * bytes). Pure parsing, no I/O, so it is unit-tested and fuzzed alone. */
#ifndef YJT_ENVELOPE_H
#define YJT_ENVELOPE_H

#include "common/errors.h"

#include <jansson.h>
#include <stddef.h>

#define ENVELOPE_ID_MAX 128
#define ENVELOPE_TYPE_MAX 64

struct envelope {
    json_t *msg;      /* the parsed message, or NULL; caller json_decref()s */
    json_t *id;       /* borrowed from msg; NULL unless the id is valid */
    const char *type; /* borrowed from msg; NULL unless valid */
    const char *why;  /* static text when the result is not ERR_NONE */
};

/* Parses text[0..len). Returns ERR_NONE with every field set, or
 * ERR_BAD_REQUEST with why, and with id set whenever it was readable (so
 * the error reply can carry it). */
enum err_code envelope_parse(const char *text, size_t len, struct envelope *env);

#endif
