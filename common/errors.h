/* The contract's error codes, their names on the wire and their HTTP
 * statuses. Every error a client sees is one of these. */
#ifndef YJT_ERRORS_H
#define YJT_ERRORS_H

enum err_code {
    ERR_NONE = 0,
    ERR_BAD_REQUEST,
    ERR_UNAUTHORIZED,
    ERR_FORBIDDEN,
    ERR_NOT_FOUND,
    ERR_CONFLICT,
    ERR_BUSY,
    ERR_RATE_LIMITED,
    ERR_TOO_LARGE,
    ERR_UNAVAILABLE,
    ERR_INTERNAL,
    ERR__COUNT
};

const char *err_name(enum err_code code);
int err_http_status(enum err_code code);

#endif
