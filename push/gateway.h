/* Offline delivery through the push gateway: devices register their
 * vendor push tokens (APNs, FCM, Huawei, Xiaomi, OPPO, vivo, JPush, …);
 * a push for a user with no connected device, or that no device has
 * acknowledged within ack_timeout_ms, is posted as JSON to the configured
 * gateway URL, retried with exponential backoff and jitter up to
 * max_attempts, and its delivery state is stored ("push_gateway" documents,
 * one per push id).
 *
 * Every step is a stored deadline ("gw/PUSH_ID"): a restart picks up the
 * pushes that were waiting, in flight or due for a retry. The HTTP POST
 * itself is done by the server (post callback), asynchronously; this module
 * only decides what to post and when, and never blocks the loop. At most
 * max_inflight posts run at once, so a slow gateway delays posts but never
 * the rest of the server. Main loop only. */
#ifndef YJT_GATEWAY_H
#define YJT_GATEWAY_H

#include "records/store.h"

#include <jansson.h>
#include <stdbool.h>

#define GATEWAY_TOKEN_MAX 4096
#define GATEWAY_DEVICES_MAX 20 /* registered devices per user; the oldest goes */

struct gateway_config {
    const char *url; /* NULL or empty: no gateway, nothing is tracked */
    int timeout_ms;  /* per POST */
    int retry_base_ms;
    int retry_max_ms;
    int max_attempts;
    int max_inflight;
    int ack_timeout_ms; /* an online user's push unacknowledged this long is posted */
};

/* Called once when a POST finishes: status is the HTTP status, or 0 when
 * there was no answer (error says why: refused, timeout, …). */
typedef void (*gateway_done_fn)(int status, const char *error, void *ctx);
/* Starts an asynchronous POST of body (JSON) to url; done runs later on
 * the main loop, exactly once, never from inside this call. */
typedef void (*gateway_post_fn)(const char *url, const char *body, int timeout_ms,
                                gateway_done_fn done, void *ctx);

/* Sets the gateway up and starts observing the inbox (call after
 * inbox_init). post may be NULL when no url is configured. */
int gateway_init(struct store *st, const struct gateway_config *cfg, gateway_post_fn post);
void gateway_shutdown(void);
/* Processes due deadlines: posts, retries, gives up. main.c calls it from
 * a timer; pushes for offline users also trigger it at once. */
void gateway_tick(void);

bool gateway_platform_valid(const char *platform);
/* Stores device_id's push token for user_id (replacing the device's old
 * one; the same token registered by another user or device is removed),
 * reading who holds it without waiting: done(rc, ud) from the main loop
 * once written (0, or a store error). Returns 0 when under way (done will
 * be told), STORE_EINVAL for bad values, or GATEWAY_BUSY when TURNS_MAX
 * of the user's operations wait already (done is not told). A user's
 * registrations and unregistrations are made one after another, in the
 * order they were asked. */
#define GATEWAY_BUSY (-100) /* not a store code: the caller retries later */
typedef void (*gateway_done_cb)(int rc, void *ud);
int gateway_register(const char *user_id, const char *device_id, const char *platform,
                     const char *token, gateway_done_cb done, void *ud);
/* Forgets device_id's token: done(0, ud), or STORE_ENOTFOUND if there was
 * none, or a store error; returns 0 (done will be told), or GATEWAY_BUSY
 * as gateway_register does (done is not told). */
int gateway_unregister(const char *user_id, const char *device_id, gateway_done_cb done, void *ud);
/* The stored delivery state of a push ({"state","attempts",…}, new
 * reference), or NULL if the gateway never handled it. */
json_t *gateway_state(const char *push_id);

#endif
