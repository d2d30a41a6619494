/* ICE server configuration for devices: the STUN and TURN URLs from the
 * configuration, and TURN credentials minted per user by the TURN REST
 * scheme that coturn implements with use-auth-secret/static-auth-secret:
 * the username is "<expiry unix seconds>:<user id>", the password the
 * base64 HMAC-SHA1 of that username under the shared secret. The TURN
 * server checks the HMAC and the expiry itself; yjtd keeps no state. */
#ifndef YJT_ICE_H
#define YJT_ICE_H

#include <jansson.h>
#include <stdint.h>

struct ice_config {
    const char *stun_urls;   /* comma-separated, may be empty */
    const char *turn_urls;   /* comma-separated, may be empty */
    const char *turn_secret; /* required with turn_urls */
    int turn_ttl_s;
};

/* The RTCIceServer list for user_id at now_ms: [{"urls":[…]}, {"urls":[…],
 * "username","credential","credential_type":"password","expires_at"}]
 * (entries with no URLs left out). A new reference. */
json_t *ice_servers_json(const struct ice_config *cfg, const char *user_id, int64_t now_ms);
/* Writes the TURN password for username under secret (base64, new string:
 * g_free). */
char *ice_turn_password(const char *secret, const char *username);

#endif
