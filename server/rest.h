/* REST routes under /api/v1/: each concern declares a table of routes
 * (method, path pattern, handler) next to its code, the way WebSocket
 * handlers are declared in ws_handler tables; http.c reads the request,
 * finds the route, checks the bearer token when the route needs one, parses
 * the JSON body, and hands the handler a struct rest_req. The handler
 * answers exactly once with rest_reply() or rest_error(), before it
 * returns.
 *
 * A pattern is a path whose segments are literal or "*" (any one segment,
 * available as params[i] in order), as in "/api/v1/patrols/ *" without
 * the space. Tables are
 * searched in order, so a literal route listed before a "*" one wins. */
#ifndef YJT_REST_H
#define YJT_REST_H

#include "common/errors.h"
#include "records/account.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

enum rest_method { REST_OTHER, REST_GET, REST_POST, REST_PUT, REST_DELETE };

#define REST_MAX_PARAMS 4

struct rest_req {
    enum rest_method method;
    const char *path;
    const char *params[REST_MAX_PARAMS]; /* the "*" segments, in order */
    GHashTable *query;                   /* name -> value, URL-decoded */
    json_t *body;                        /* the parsed body (POST/PUT), or NULL */
    struct account *acct;                /* the caller, when the route needs auth */
    const char *peer;                    /* client address, for logs and audit */
    void *http;                          /* transport state (http.c) */
};

struct rest_route {
    enum rest_method method;
    const char *pattern;
    void (*fn)(struct rest_req *r);
    bool needs_auth;
    /* A write replayed as GETs are, on a store whose reads travel: its
     * reads come before its first write, it changes nothing but the
     * store's records before that write, and it answers with an error
     * when a read or write fails (so a run that lacked a read, whose
     * writes are refused, does nothing and is set aside). */
    bool replay;
};

/* Route tables, one per concern; each ends with a {0} entry. */
extern const struct rest_route account_routes[];
extern const struct rest_route call_routes[];
extern const struct rest_route selfeval_routes[];
extern const struct rest_route enterprise_routes[];
extern const struct rest_route commitment_routes[];
extern const struct rest_route inbox_routes[];
extern const struct rest_route notice_routes[];
extern const struct rest_route sched_routes[];
extern const struct rest_route sensor_routes[];
extern const struct rest_route alarm_routes[];

/* Sends body (reference stolen) with HTTP status. */
void rest_reply(struct rest_req *r, int status, json_t *body);
/* For a handler that answers later (after a read sent without waiting):
 * instead of answering, it holds the request and returns; r is gone
 * then, the hold names the request. rest_held_reply() and
 * rest_held_error() answer it later, once (nothing is sent if the client
 * went away meanwhile; body is freed all the same). */
uint64_t rest_hold(struct rest_req *r);
void rest_held_reply(uint64_t hold, int status, json_t *body);
void rest_held_error(uint64_t hold, enum err_code code, const char *message);
/* Sends the file fd (len bytes; fd is then the transport's, closed when
 * done) with status 200, Content-Type type and as attachment name, a
 * chunk at a time. */
void rest_reply_file(struct rest_req *r, int fd, size_t len, const char *type, const char *name);
/* Sends the contract error {"error":{"code","message"}} with its status. */
void rest_error(struct rest_req *r, enum err_code code, const char *message);
/* Copies the request header name (lower case with its colon, as in
 * "x-api-key:") into out; false if absent, empty or longer than len-1. */
bool rest_header(const struct rest_req *r, const char *name, char *out, size_t len);
/* The query parameter name, or NULL. */
const char *rest_query(const struct rest_req *r, const char *name);
/* The query parameter name as an integer in [min, max]; def when absent.
 * Returns false (and answers bad_request) when present but not such a
 * number. */
bool rest_query_int(struct rest_req *r, const char *name, int64_t min, int64_t max, int64_t def,
                    int64_t *out);
/* The time window of a listing: from= and to= as UTC ms, 0 and INT64_MAX
 * when absent. Returns false (and answers bad_request, as rest_query_int)
 * when either is present but not a non-negative integer. */
bool rest_query_range(struct rest_req *r, int64_t *from, int64_t *to);
/* The division= filter in its short form (records/jurisdiction.h) in out,
 * or "" when absent. Returns false (and answers bad_request) when present
 * but not a division code. */
bool rest_query_division(struct rest_req *r, char out[8]);

/* Sorts items, an array of objects, by their integer field (0 where
 * missing) newest, that is largest, first, and cuts it to its first limit
 * entries. Returns true if it cut any. */
bool rest_newest_first(json_t *items, const char *field, int64_t limit);

/* Finds the route for method and the path split into segs (from
 * g_strsplit(path, "/", -1); the caller keeps them) among all tables, and
 * points params at the "*" segments. Returns NULL if none; *path_known
 * then tells whether a route exists for the path with another method. */
const struct rest_route *rest_find(enum rest_method method, char **segs,
                                   const char *params[REST_MAX_PARAMS], bool *path_known);

#endif
