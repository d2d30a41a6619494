/* TURN REST credentials and the ice_servers list (see ice.h). */
#include "signaling/ice.h"

#include <glib.h>
#include <string.h>

char *ice_turn_password(const char *secret, const char *username)
{
    /* GLib's HMAC: OpenSSL 3's one-shot HMAC() looks the algorithm up
     * at every call, and takes twice as long. */
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA1, (const guchar *)secret, strlen(secret));
    g_hmac_update(h, (const guchar *)username, (gssize)strlen(username));
    guint8 mac[20];
    gsize len = sizeof(mac);
    g_hmac_get_digest(h, mac, &len);
    g_hmac_unref(h);
    return g_base64_encode(mac, len);
}

/* A JSON array of the non-empty, trimmed items of a comma-separated list. */
static json_t *url_list(const char *csv)
{
    json_t *arr = json_array();
    if (!csv)
        return arr;
    char **parts = g_strsplit(csv, ",", -1);
    for (char **p = parts; *p; p++) {
        char *u = g_strstrip(*p);
        if (*u)
            json_array_append_new(arr, json_string(u));
    }
    g_strfreev(parts);
    return arr;
}

json_t *ice_servers_json(const struct ice_config *cfg, const char *user_id, int64_t now_ms)
{
    json_t *out = json_array();
    json_t *stun = url_list(cfg->stun_urls);
    if (json_array_size(stun))
        json_array_append_new(out, json_pack("{s:o}", "urls", stun));
    else
        json_decref(stun);
    json_t *turn = url_list(cfg->turn_urls);
    if (json_array_size(turn) && cfg->turn_secret && cfg->turn_secret[0]) {
        int64_t expiry = now_ms / 1000 + cfg->turn_ttl_s;
        char *username = g_strdup_printf("%" G_GINT64_FORMAT ":%s", expiry, user_id);
        char *password = ice_turn_password(cfg->turn_secret, username);
        json_array_append_new(out,
                              json_pack("{s:o, s:s, s:s, s:s, s:I}", "urls", turn, "username",
                                        username, "credential", password, "credential_type",
                                        "password", "expires_at", (json_int_t)(expiry * 1000)));
        g_free(username);
        g_free(password);
    } else {
        json_decref(turn);
    }
    return out;
}
