/* Configuration of yjtd: defaults, an INI file ([yjtd] group) and the
 * command line, in that order of precedence (the command line wins). Every
 * limit the server enforces is a key here. */
#ifndef YJT_CONFIG_H
#define YJT_CONFIG_H

#include <stdbool.h>

struct config {
    char *listen_host;
    int listen_port;
    char *data_dir;
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
    int presence_max_users; /* users in one presence query or subscription */
    int account_poll_ms;    /* how often account changes by yjtctl are picked up */

    int inbox_max_count;    /* pushes kept per user */
    int inbox_max_age_s;    /* pushes older than this are trimmed */
    int push_resume_batch;  /* pushes sent per push.resume */
    int push_ack_timeout_s; /* unacknowledged this long: posted to the gateway */
    char *gateway_url;      /* push gateway; empty: none */
    char *gateway_ca_file;  /* PEM CA bundle for an https gateway; empty: the system's */
    int gateway_timeout_ms;
    int gateway_retry_base_ms;
    int gateway_retry_max_ms;
    int gateway_max_attempts;
    int gateway_max_inflight;

    char *business_tz;               /* business time zone (IANA name) */
    char *commitment_reminder_times; /* "08:30,09:30" */
    char *commitment_deadline;       /* "10:00": no catch-up after it */
    char *selfeval_reminder_time;    /* "09:00" */
    int selfeval_last_day;           /* reminders from the 1st to this day */
    char *test_clock; /* tests only: ISO 8601 start of the scheduler clock; empty: off */
};

/* Fills c from defaults, the file named by --config, and argv. Returns 0,
 * 1 if --help or --version was printed, or -1 with *err set (g_free). */
int config_load(struct config *c, int argc, char **argv, char **err);
void config_free(struct config *c);
/* Sets one key from its text form; returns 0 or -1 with *err set. */
int config_set(struct config *c, const char *key, const char *value, char **err);

#endif
