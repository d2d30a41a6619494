/* Configuration of yjtd: defaults, an INI file ([yjtd] group) and the
 * command line, in that order of precedence (the command line wins). Every
 * limit the server enforces is a key here. */
#ifndef YJT_CONFIG_H
#define YJT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct config {
    char *listen_host;
    int listen_port;
    char *data_dir;
    char *redis;        /* the store's Redis address; empty: SQLite in data_dir */
    char *redis_prefix; /* every Redis key starts with this */
    int cluster_beat_s; /* a node's heartbeat period */
    int cluster_dead_s; /* a node silent this long is dead (its devices offline) */
    char *tls_cert;
    char *tls_key;
    char *log_level;
    bool demo;

    int token_ttl_s;     /* token lifetime */
    int lockout_after;   /* consecutive failures that lock an account */
    int lockout_s;       /* how long it stays locked */
    int addr_fail_limit; /* failures per source address per window */
    int addr_fail_window_s;
    int max_frame;  /* bytes, one WebSocket message or HTTP body */
    int rate_per_s; /* messages per connection per second */
    int rate_burst;
    int auth_timeout_s;     /* unauthenticated connections are closed after */
    int ping_interval_s;    /* idle before a ping; hang up at 2.5x */
    int hash_iterations;    /* PBKDF2 work factor for new hashes */
    int hash_threads;       /* password-hashing worker threads */
    int max_conns;          /* WebSocket connections */
    int send_queue_max;     /* bytes queued to one connection before it is dropped */
    int send_threads;       /* threads writing a large flush; 0: one per core, at most 4 */
    int commit_window_ms;   /* 0: commit each loop turn's writes; else at most this late */
    int presence_max_users; /* users in one presence query or subscription */
    int account_poll_ms;    /* how often account changes by yjtctl are picked up */

    /* calls and patrols */
    int ring_timeout_s;      /* unanswered calls end `timeout` */
    int call_grace_s;        /* a dropped party may resume within */
    int call_max_sdp;        /* bytes of one SDP */
    int call_max_candidates; /* ICE candidates per call, both ways */
    int calls_per_user;      /* calls a user may be in at once */
    int invites_per_min;     /* call.invite per user per minute */
    int patrol_min_call_s;   /* an answered patrol call this long counts */
    int patrol_max_items;    /* enterprises in one patrol */
    char *stun_urls;         /* comma-separated */
    char *turn_urls;         /* comma-separated */
    char *turn_secret;       /* coturn static-auth-secret; never logged */
    int turn_ttl_s;          /* lifetime of the TURN credentials handed out */
    char *call_mode;         /* "p2p", "sfu" or "auto" (sfu when recording): invites naming none */
    char *recording_dir;     /* SFU calls are recorded here; "": not recorded */
    int call_max_joiners;    /* third parties (call.join) in one SFU call */
    char *media_addresses;   /* comma-separated local IPs the SFU gathers ICE candidates on */
    char *media_public_ip;   /* a 1:1 NAT's public address for them, or "" */
    bool media_ice_tcp;      /* passive TCP candidates too (RFC 6544), for UDP-blocked devices */
    int media_max_kbps;      /* the most a publisher is asked to send (REMB) */
    char *business_tz;       /* business dates (date=YYYY-MM-DD) are in this zone */

    /* enterprise records and daily commitments */
    char *commitment_deadline;       /* HH:MM business time: later filings are late */
    char *commitment_reminder_times; /* HH:MM,... business time: remind who has not filed */
    int confirm_reminder_day;        /* day of the month to remind unconfirmed enterprises */
    char *test_clock;                /* tests only: ISO 8601 instant the wall clock starts at */

    /* push */
    int inbox_max_count;    /* pushes kept per user */
    int inbox_max_age_s;    /* pushes older than this are trimmed */
    int push_resume_batch;  /* pushes sent per push.resume */
    int push_ack_timeout_s; /* unacknowledged this long: posted to the gateway */
    char *gateway_url;      /* push gateway; empty: none */
    char *gateway_ca_file;  /* PEM CA bundle for an https gateway; empty: the system's */
    char *web_root;         /* the console's files; empty: found next to the binary */
    int gateway_timeout_ms;
    int gateway_retry_base_ms;
    int gateway_retry_max_ms;
    int gateway_max_attempts;
    int gateway_max_inflight;

    /* 3D feeds */
    int feed_max_hz;        /* the highest max_hz a subscriber may ask for */
    int feed_default_hz;    /* max_hz when the subscriber names none */
    int feed_subs_per_conn; /* feeds one connection may follow */
    int feed_max_sensors;   /* a scope with more sensors is refused */
    int feed_part_items;    /* sensors per feed.snapshot part */
    int feed_delta_items;   /* sensors plus alarms per feed.delta */
    /* sensors and readings */
    int readings_retention_days;   /* history kept this long */
    int readings_max_rows;         /* readings in one request */
    int readings_max_body;         /* bytes of one POST /api/v1/readings body */
    int readings_future_skew_s;    /* a reading may be this far ahead of the server clock */
    int readings_errors_max;       /* row errors listed in one report */
    int readings_trim_per_tick;    /* chunks deleted per retention tick (1 s) */
    int readings_query_max_points; /* points or buckets in one history reply */
    int readings_query_max_scan;   /* stored points one downsampled query reads */
    int readings_flush_points;     /* a sensor's buffered points become a chunk at this many */
    int readings_flush_age_s;      /* ... or once the oldest has waited this long */
    int readings_buffer_max_mb;    /* buffered readings above this: bigger buffers flushed early */
    int readings_chunks_per_tick;  /* chunks one flush tick (100 ms) writes at most */
    int sensors_list_max;          /* sensors in one list reply */

    char *selfeval_reminder_time; /* "09:00" */
    int selfeval_last_day;        /* reminders from the 1st to this day */

    /* alarms */
    char *alarm_levels;         /* level table (records/alarm_rules.h) */
    char *alarm_escalation_red; /* "T1,T2,T3" minutes */
    char *alarm_escalation_orange;
    char *alarm_escalation_yellow;
    char *alarm_escalation_blue;
    int alarm_scan_interval_ms; /* interruption scan tick */
    int alarm_scan_batch;       /* sensors visited per tick */
};

/* Fills c from defaults, the file named by --config, and argv. Returns 0,
 * 1 if --help or --version was printed, or -1 with *err set (g_free). */
int config_load(struct config *c, int argc, char **argv, char **err);
void config_free(struct config *c);
/* The alarm settings (level table, escalation times) parsed; returns 0,
 * or -1 with *err set. */
struct alarm_config;
int config_alarm(const struct config *c, struct alarm_config *out, char **err);
/* The UTC ms test_clock names, or -1 if it is malformed. */
int64_t config_test_clock_ms(const struct config *c);
/* Sets one key from its text form; returns 0 or -1 with *err set. */
int config_set(struct config *c, const char *key, const char *value, char **err);

#endif
