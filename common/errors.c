/* Error code names and HTTP statuses, one table. */
#include "common/errors.h"

static const struct {
    const char *name;
    int status;
} table[ERR__COUNT] = {
    [ERR_NONE] = {"ok", 200},
    [ERR_BAD_REQUEST] = {"bad_request", 400},
    [ERR_UNAUTHORIZED] = {"unauthorized", 401},
    [ERR_FORBIDDEN] = {"forbidden", 403},
    [ERR_NOT_FOUND] = {"not_found", 404},
    [ERR_CONFLICT] = {"conflict", 409},
    [ERR_BUSY] = {"busy", 409},
    [ERR_RATE_LIMITED] = {"rate_limited", 429},
    [ERR_TOO_LARGE] = {"too_large", 413},
    [ERR_UNAVAILABLE] = {"unavailable", 503},
    [ERR_INTERNAL] = {"internal", 500},
};

const char *err_name(enum err_code code)
{
    return (code >= 0 && code < ERR__COUNT) ? table[code].name : "internal";
}

int err_http_status(enum err_code code)
{
    return (code >= 0 && code < ERR__COUNT) ? table[code].status : 500;
}
