/* Configuration: one table of keys serves the file, --set and the named
 * options alike, so every key can be set in every way. */
#include "server/config.h"

#include "common/bizdate.h"
#include "common/log.h"
#include "records/alarm.h"

#include <glib.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

enum key_type { K_INT, K_STR, K_BOOL, K_LISTEN };

struct key {
    const char *name;
    enum key_type type;
    size_t offset;
    int min, max;
};

#define INT_KEY(n, lo, hi)                                                                         \
    {                                                                                              \
#n, K_INT, offsetof(struct config, n), lo, hi                                              \
    }
#define STR_KEY(n)                                                                                 \
    {                                                                                              \
#n, K_STR, offsetof(struct config, n), 0, 0                                                \
    }

static const struct key keys[] = {
    {"listen", K_LISTEN, 0, 0, 0},
    STR_KEY(data_dir),
    STR_KEY(redis),
    STR_KEY(redis_prefix),
    INT_KEY(cluster_beat_s, 1, 60),
    INT_KEY(cluster_dead_s, 2, 600),
    STR_KEY(tls_cert),
    STR_KEY(tls_key),
    STR_KEY(log_level),
    {"demo", K_BOOL, offsetof(struct config, demo), 0, 1},
    INT_KEY(token_ttl_s, 5, 30 * 86400),
    INT_KEY(lockout_after, 1, 1000),
    INT_KEY(lockout_s, 1, 86400),
    INT_KEY(addr_fail_limit, 1, 100000),
    INT_KEY(addr_fail_window_s, 1, 86400),
    INT_KEY(max_frame, 1024, 16 * 1024 * 1024),
    INT_KEY(rate_per_s, 1, 100000),
    INT_KEY(rate_burst, 1, 100000),
    INT_KEY(auth_timeout_s, 1, 3600),
    INT_KEY(ping_interval_s, 1, 3600),
    INT_KEY(hash_iterations, 1000, 10000000),
    INT_KEY(hash_threads, 1, 64),
    INT_KEY(max_conns, 1, 1000000),
    INT_KEY(send_queue_max, 4096, 256 * 1024 * 1024),
    INT_KEY(send_threads, 0, 64),
    INT_KEY(commit_window_ms, 0, 100),
    INT_KEY(presence_max_users, 1, 100000),
    INT_KEY(account_poll_ms, 100, 600000),
    INT_KEY(ring_timeout_s, 1, 600),
    INT_KEY(call_grace_s, 1, 600),
    INT_KEY(call_max_sdp, 1024, 1024 * 1024),
    INT_KEY(call_max_candidates, 1, 10000),
    INT_KEY(calls_per_user, 1, 1000),
    INT_KEY(invites_per_min, 1, 1000000),
    INT_KEY(patrol_min_call_s, 0, 86400),
    INT_KEY(patrol_max_items, 1, 10000),
    STR_KEY(stun_urls),
    STR_KEY(turn_urls),
    STR_KEY(turn_secret),
    INT_KEY(turn_ttl_s, 60, 7 * 86400),
    STR_KEY(call_mode),
    STR_KEY(recording_dir),
    INT_KEY(call_max_joiners, 0, 1000),
    STR_KEY(media_addresses),
    STR_KEY(media_public_ip),
    {"media_ice_tcp", K_BOOL, offsetof(struct config, media_ice_tcp), 0, 1},
    INT_KEY(media_max_kbps, 50, 100000),
    STR_KEY(business_tz),
    STR_KEY(commitment_deadline),
    STR_KEY(commitment_reminder_times),
    INT_KEY(confirm_reminder_day, 1, 28),
    INT_KEY(inbox_max_count, 10, 1000000),
    INT_KEY(inbox_max_age_s, 60, 366 * 86400),
    INT_KEY(push_resume_batch, 1, 10000),
    INT_KEY(push_ack_timeout_s, 1, 86400),
    STR_KEY(gateway_url),
    STR_KEY(gateway_ca_file),
    STR_KEY(web_root),
    INT_KEY(gateway_timeout_ms, 100, 120000),
    INT_KEY(gateway_retry_base_ms, 10, 3600000),
    INT_KEY(gateway_retry_max_ms, 10, 86400000),
    INT_KEY(gateway_max_attempts, 1, 100),
    INT_KEY(gateway_max_inflight, 1, 10000),
    INT_KEY(feed_max_hz, 1, 100),
    INT_KEY(feed_default_hz, 1, 100),
    INT_KEY(feed_subs_per_conn, 1, 1000),
    INT_KEY(feed_max_sensors, 1, 1000000),
    INT_KEY(feed_part_items, 10, 100000),
    INT_KEY(feed_delta_items, 10, 1000000),
    INT_KEY(readings_retention_days, 1, 3650),
    INT_KEY(readings_max_rows, 1, 100000),
    INT_KEY(readings_max_body, 1024, 64 * 1024 * 1024),
    INT_KEY(readings_future_skew_s, 0, 86400),
    INT_KEY(readings_errors_max, 0, 100000),
    INT_KEY(readings_trim_per_tick, 1, 1000000),
    INT_KEY(readings_query_max_points, 10, 1000000),
    INT_KEY(readings_query_max_scan, 1000, 100000000),
    INT_KEY(readings_flush_points, 1, 100000),
    INT_KEY(readings_flush_age_s, 1, 86400),
    INT_KEY(readings_buffer_max_mb, 1, 1024 * 1024),
    INT_KEY(readings_chunks_per_tick, 1, 1000000),
    INT_KEY(sensors_list_max, 1, 100000),
    STR_KEY(selfeval_reminder_time),
    INT_KEY(selfeval_last_day, 1, 28),
    STR_KEY(test_clock),
    STR_KEY(alarm_levels),
    STR_KEY(alarm_escalation_red),
    STR_KEY(alarm_escalation_orange),
    STR_KEY(alarm_escalation_yellow),
    STR_KEY(alarm_escalation_blue),
    INT_KEY(alarm_scan_interval_ms, 100, 60000),
    INT_KEY(alarm_scan_batch, 1, 1000000),
};

static void defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->listen_host = g_strdup("127.0.0.1");
    c->listen_port = 8080;
    c->data_dir = g_strdup("./data");
    c->redis = g_strdup("");
    c->redis_prefix = g_strdup("yjt:");
    c->cluster_beat_s = 10;
    c->cluster_dead_s = 30;
    c->log_level = g_strdup("info");
    c->token_ttl_s = 12 * 3600;
    c->lockout_after = 5;
    c->lockout_s = 900;
    c->addr_fail_limit = 30;
    c->addr_fail_window_s = 300;
    c->max_frame = 64 * 1024;
    c->readings_retention_days = 90;
    c->readings_max_rows = 10000;
    c->readings_max_body = 2 * 1024 * 1024;
    c->readings_future_skew_s = 300;
    c->readings_errors_max = 100;
    c->readings_trim_per_tick = 2000;
    c->readings_query_max_points = 10000;
    c->readings_query_max_scan = 2000000;
    c->readings_flush_points = 64;
    c->readings_flush_age_s = 300;
    c->readings_buffer_max_mb = 512;
    c->readings_chunks_per_tick = 500;
    c->sensors_list_max = 1000;
    c->rate_per_s = 50;
    c->rate_burst = 100;
    c->auth_timeout_s = 10;
    c->ping_interval_s = 20;
    c->hash_iterations = 100000;
    c->hash_threads = 2;
    c->max_conns = 100000;
    c->send_queue_max = 1024 * 1024;
    c->feed_max_hz = 20;
    c->feed_default_hz = 2;
    c->feed_subs_per_conn = 8;
    c->feed_max_sensors = 20000;
    c->feed_part_items = 500;
    c->feed_delta_items = 2000;
    c->presence_max_users = 500;
    c->account_poll_ms = 1000;
    c->ring_timeout_s = 45;
    c->call_grace_s = 30;
    c->call_max_sdp = 32 * 1024;
    c->call_max_candidates = 200;
    c->calls_per_user = 3;
    c->invites_per_min = 30;
    c->patrol_min_call_s = 60;
    c->patrol_max_items = 500;
    c->stun_urls = g_strdup("");
    c->turn_urls = g_strdup("");
    c->turn_secret = g_strdup("");
    c->turn_ttl_s = 86400;
    c->call_mode = g_strdup("auto");
    c->recording_dir = g_strdup("");
    c->call_max_joiners = 8;
    c->media_addresses = g_strdup("127.0.0.1");
    c->media_public_ip = g_strdup("");
    c->media_ice_tcp = true;
    c->media_max_kbps = 2000;
    c->business_tz = g_strdup("Asia/Shanghai");
    c->commitment_deadline = g_strdup("10:00");
    c->commitment_reminder_times = g_strdup("08:30,09:30");
    c->confirm_reminder_day = 25;
    c->inbox_max_count = 1000;
    c->inbox_max_age_s = 30 * 86400;
    c->push_resume_batch = 100;
    c->push_ack_timeout_s = 30;
    c->gateway_url = g_strdup("");
    c->gateway_ca_file = g_strdup("");
    c->web_root = g_strdup("");
    c->gateway_timeout_ms = 5000;
    c->gateway_retry_base_ms = 1000;
    c->gateway_retry_max_ms = 600000;
    c->gateway_max_attempts = 10;
    c->gateway_max_inflight = 32;
    c->selfeval_reminder_time = g_strdup("09:00");
    c->selfeval_last_day = 5;
    c->test_clock = g_strdup("");
    c->alarm_levels = g_strdup("high_high@12=red,high_high=orange,low_low=orange,high=yellow,"
                               "low=yellow,interrupted=blue");
    c->alarm_escalation_red = g_strdup("5,30,60");
    c->alarm_escalation_orange = g_strdup("5,30,60");
    c->alarm_escalation_yellow = g_strdup("5,30,60");
    c->alarm_escalation_blue = g_strdup("5,30,60");
    c->alarm_scan_interval_ms = 1000;
    c->alarm_scan_batch = 20000;
}

static int parse_listen(struct config *c, const char *v, char **err)
{
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == v || !end || *end || port < 1 || port > 65535) {
        *err = g_strdup_printf("listen must be HOST:PORT, got '%s'", v);
        return -1;
    }
    g_free(c->listen_host);
    c->listen_host = g_strndup(v, (gsize)(colon - v));
    /* [::1]:8080 -> ::1 */
    size_t n = strlen(c->listen_host);
    if (n > 2 && c->listen_host[0] == '[' && c->listen_host[n - 1] == ']') {
        memmove(c->listen_host, c->listen_host + 1, n - 2);
        c->listen_host[n - 2] = '\0';
    }
    c->listen_port = (int)port;
    return 0;
}

int config_set(struct config *c, const char *key, const char *value, char **err)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const struct key *k = &keys[i];
        if (strcmp(k->name, key) != 0)
            continue;
        char *field = (char *)c + k->offset;
        switch (k->type) {
        case K_LISTEN:
            return parse_listen(c, value, err);
        case K_STR:
            g_free(*(char **)field);
            *(char **)field = g_strdup(value);
            return 0;
        case K_BOOL:
            if (strcmp(value, "true") && strcmp(value, "false") && strcmp(value, "1") &&
                strcmp(value, "0")) {
                *err = g_strdup_printf("%s must be true or false", key);
                return -1;
            }
            *(bool *)field = strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
            return 0;
        case K_INT: {
            char *end = NULL;
            long v = strtol(value, &end, 10);
            if (!*value || *end || v < k->min || v > k->max) {
                *err = g_strdup_printf("%s must be an integer in [%d, %d], got '%s'", key, k->min,
                                       k->max, value);
                return -1;
            }
            *(int *)field = (int)v;
            return 0;
        }
        }
    }
    *err = g_strdup_printf("unknown configuration key '%s'", key);
    return -1;
}

static int load_file(struct config *c, const char *path, char **err)
{
    GKeyFile *kf = g_key_file_new();
    GError *gerr = NULL;
    int rc = 0;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &gerr)) {
        *err = g_strdup_printf("cannot read config %s: %s", path, gerr->message);
        g_error_free(gerr);
        g_key_file_free(kf);
        return -1;
    }
    gchar **names = g_key_file_get_keys(kf, "yjtd", NULL, NULL);
    for (gchar **k = names; k && *k && rc == 0; k++) {
        gchar *v = g_key_file_get_string(kf, "yjtd", *k, NULL);
        char *why = NULL;
        if (!v || config_set(c, *k, v, &why) < 0) {
            *err = g_strdup_printf("%s: %s", path, why ? why : "bad value");
            g_free(why);
            rc = -1;
        }
        g_free(v);
    }
    g_strfreev(names);
    g_key_file_free(kf);
    return rc;
}

static void usage(void)
{
    printf("usage: yjtd [options]\n"
           "  --listen HOST:PORT     address to serve HTTP and WebSocket on (127.0.0.1:8080)\n"
           "  --data-dir DIR         where the store lives (./data)\n"
           "  --redis URL            keep the store in Redis instead (redis://HOST:PORT[/DB],\n"
           "                         redis+unix://PATH, redis-sentinel://HOST:PORT,.../MASTER;\n"
           "                         rediss:// and rediss-sentinel:// with TLS)\n"
           "  --config FILE          INI file with a [yjtd] group of the same keys\n"
           "  --demo                 load the demo data set (prints the demo passwords)\n"
           "  --tls-cert FILE --tls-key FILE   serve HTTPS/WSS on the same port\n"
           "  --log-level LEVEL      debug, info, warn or error (info)\n"
           "  --set KEY=VALUE        any configuration key (see docs/operations.md)\n"
           "  --help, --version\n");
}

/* Maps a named option to its key; returns NULL if it is not one. */
static const char *option_key(const char *opt)
{
    static const char *const map[][2] = {
        {"--listen", "listen"},   {"--data-dir", "data_dir"},   {"--tls-cert", "tls_cert"},
        {"--tls-key", "tls_key"}, {"--log-level", "log_level"}, {"--redis", "redis"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(map); i++)
        if (strcmp(opt, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

int config_load(struct config *c, int argc, char **argv, char **err)
{
    defaults(c);
    /* The file first, so the command line can override it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                *err = g_strdup("--config needs a file");
                return -1;
            }
            if (load_file(c, argv[i + 1], err) < 0)
                return -1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *key = option_key(a);
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("yjtd 0.1.0\n");
            return 1;
        } else if (strcmp(a, "--demo") == 0) {
            c->demo = true;
        } else if (strcmp(a, "--config") == 0) {
            i++;
        } else if (key || strcmp(a, "--set") == 0) {
            if (i + 1 >= argc) {
                *err = g_strdup_printf("%s needs a value", a);
                return -1;
            }
            const char *v = argv[++i];
            if (key) {
                if (config_set(c, key, v, err) < 0)
                    return -1;
            } else {
                const char *eq = strchr(v, '=');
                if (!eq) {
                    *err = g_strdup_printf("--set needs KEY=VALUE, got '%s'", v);
                    return -1;
                }
                char *k = g_strndup(v, (gsize)(eq - v));
                int rc = config_set(c, k, eq + 1, err);
                g_free(k);
                if (rc < 0)
                    return -1;
            }
        } else {
            *err = g_strdup_printf("unknown option '%s' (try --help)", a);
            return -1;
        }
    }
    if (!c->tls_cert != !c->tls_key) {
        *err = g_strdup("--tls-cert and --tls-key go together");
        return -1;
    }
    if (c->gateway_url[0] && !g_str_has_prefix(c->gateway_url, "http://") &&
        !g_str_has_prefix(c->gateway_url, "https://")) {
        *err = g_strdup("gateway_url must start with http:// or https://");
        return -1;
    }
    if (c->gateway_retry_max_ms < c->gateway_retry_base_ms) {
        *err = g_strdup("gateway_retry_max_ms must be at least gateway_retry_base_ms");
        return -1;
    }
    if (log_level_parse(c->log_level) < 0) {
        *err = g_strdup_printf("log level must be debug, info, warn or error");
        return -1;
    }
    if (c->turn_urls[0] && !c->turn_secret[0]) {
        *err = g_strdup("turn_urls needs turn_secret (the TURN server's static-auth-secret)");
        return -1;
    }
    if (strcmp(c->call_mode, "p2p") != 0 && strcmp(c->call_mode, "sfu") != 0 &&
        strcmp(c->call_mode, "auto") != 0) {
        *err = g_strdup_printf("call_mode must be p2p, sfu or auto, got '%s'", c->call_mode);
        return -1;
    }
    if (c->recording_dir[0] && g_mkdir_with_parents(c->recording_dir, 0750) != 0) {
        *err = g_strdup_printf("recording_dir '%s' cannot be made: %s", c->recording_dir,
                               g_strerror(errno));
        return -1;
    }
    if (c->media_public_ip[0] && !g_hostname_is_ip_address(c->media_public_ip)) {
        *err = g_strdup_printf("media_public_ip: '%s' is not an IP address", c->media_public_ip);
        return -1;
    }
    gchar **addrs = g_strsplit(c->media_addresses, ",", -1);
    for (gchar **a = addrs; *a; a++) {
        if (!g_hostname_is_ip_address(g_strstrip(*a))) {
            *err = g_strdup_printf("media_addresses: '%s' is not an IP address", *a);
            g_strfreev(addrs);
            return -1;
        }
    }
    g_strfreev(addrs);
    GTimeZone *tz = g_time_zone_new_identifier(c->business_tz);
    if (!tz) {
        *err = g_strdup_printf("business_tz '%s' is not a known time zone", c->business_tz);
        return -1;
    }
    g_time_zone_unref(tz);
    if (bizdate_minute_parse(c->commitment_deadline) < 0) {
        *err =
            g_strdup_printf("commitment_deadline must be HH:MM, got '%s'", c->commitment_deadline);
        return -1;
    }
    gchar **times = g_strsplit(c->commitment_reminder_times, ",", -1);
    for (gchar **t = times; *t; t++) {
        if (bizdate_minute_parse(g_strstrip(*t)) < 0) {
            *err = g_strdup_printf("commitment_reminder_times must be HH:MM[,HH:MM…], got '%s'",
                                   c->commitment_reminder_times);
            g_strfreev(times);
            return -1;
        }
    }
    g_strfreev(times);
    struct alarm_config ac;
    if (config_alarm(c, &ac, err) < 0)
        return -1;
    if (c->test_clock[0] && config_test_clock_ms(c) < 0) {
        *err = g_strdup_printf("test_clock must be an ISO 8601 time with offset, got '%s'",
                               c->test_clock);
        return -1;
    }
    return 0;
}

int config_alarm(const struct config *c, struct alarm_config *out, char **err)
{
    memset(out, 0, sizeof(*out));
    const char *const esc[ALARM_LEVELS] = {c->alarm_escalation_red, c->alarm_escalation_orange,
                                           c->alarm_escalation_yellow, c->alarm_escalation_blue};
    if (alarm_levels_parse(c->alarm_levels, &out->levels, err) < 0)
        return -1;
    for (int l = 0; l < ALARM_LEVELS; l++)
        if (alarm_escalation_parse(&out->escalation, l, esc[l], err) < 0)
            return -1;
    return 0;
}

int64_t config_test_clock_ms(const struct config *c)
{
    GDateTime *t = g_date_time_new_from_iso8601(c->test_clock, NULL);
    if (!t)
        return -1;
    int64_t ms = g_date_time_to_unix(t) * 1000 + g_date_time_get_microsecond(t) / 1000;
    g_date_time_unref(t);
    return ms;
}

void config_free(struct config *c)
{
    g_free(c->listen_host);
    g_free(c->data_dir);
    g_free(c->redis);
    g_free(c->redis_prefix);
    g_free(c->tls_cert);
    g_free(c->tls_key);
    g_free(c->log_level);
    g_free(c->stun_urls);
    g_free(c->turn_urls);
    g_free(c->call_mode);
    g_free(c->recording_dir);
    g_free(c->media_addresses);
    g_free(c->media_public_ip);
    g_free(c->turn_secret);
    g_free(c->business_tz);
    g_free(c->commitment_deadline);
    g_free(c->commitment_reminder_times);
    g_free(c->gateway_url);
    g_free(c->gateway_ca_file);
    g_free(c->web_root);
    g_free(c->selfeval_reminder_time);
    g_free(c->test_clock);
    g_free(c->alarm_levels);
    g_free(c->alarm_escalation_red);
    g_free(c->alarm_escalation_orange);
    g_free(c->alarm_escalation_yellow);
    g_free(c->alarm_escalation_blue);
    memset(c, 0, sizeof(*c));
}
