/* yjtd: the real-time backend process. main() wires the layers together:
 * configuration, the store, the record modules, presence, authentication,
 * and libwebsockets (HTTP, REST and WebSocket on one port) on a libuv loop
 * that runs inside the GLib main loop (uvsource.c), then runs the GLib loop
 * until SIGTERM or SIGINT.
 *
 * Shutdown is graceful: new connections are refused, every WebSocket peer
 * gets close code 1001, then (once they are gone, or after 3 s) the
 * listener closes, pending logins finish, the store is checkpointed and
 * closed, and the process exits 0. */
#include "common/bizdate.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "push/gateway.h"
#include "push/inbox.h"
#include "push/notice.h"
#include "push/presence.h"
#include "push/reminders.h"
#include "records/redis_link.h"
#include "records/account_cache.h"
#include "records/commitment_due.h"
#include "records/org.h"
#include "records/reading.h"
#include "records/records.h"
#include "records/sensor.h"
#include "server/bus.h"
#include "server/cluster.h"
#include "server/alarm_api.h"
#include "server/auth.h"
#include "server/call_api.h"
#include "server/commit.h"
#include "server/commitment_remind.h"
#include "server/conn.h"
#include "server/demo.h"
#include "server/gateway_client.h"
#include "server/http.h"
#include "server/static_files.h"
#include "server/metrics.h"
#include "server/presence_api.h"
#include "server/feed_api.h"
#include "server/push_api.h"
#include "server/server.h"
#include "server/sendpool.h"
#include "server/session.h"
#include "records/redis_tls.h"
#include "server/sensor_bus.h"
#include "server/loopstat.h"
#include "server/uvsource.h"
#include "server/ws.h"
#include "signaling/call.h"

#include <glib-unix.h>
#include <libwebsockets.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define SHUTDOWN_GRACE_MS 3000
#define GATEWAY_TICK_MS 250
#define REMINDERS_TICK_MS 1000
#define RETENTION_TICK_MS 1000
#define FLUSH_TICK_MS 100
/* Inboxes whose pending fan-out rows settle per tick: up to 20,000 a
 * second, each tick a few milliseconds of writes. */
#define SETTLE_TICK_MS 50
#define SETTLE_KEYS_PER_TICK 1000
/* Inbox trims fan-outs put off, per tick: up to 5,000 a second. */
#define TRIMS_PER_TICK 250

struct server server;

static struct lws_protocols protocols[4];
/* All zero: lws's own validity timers keep one sorted list of every
 * connection, O(n) per packet; ws_keepalive() sweeps instead. */
static const lws_retry_bo_t no_lws_validity;
static gint64 shutdown_started;
static uv_loop_t *uv_loop;

static void lws_log_bridge(int level, const char *line)
{
    char buf[512];
    g_strlcpy(buf, line, sizeof(buf));
    g_strchomp(buf);
    log_msg(level == LLL_ERR    ? LOG_ERROR
            : level == LLL_WARN ? LOG_WARN
                                : LOG_DEBUG,
            "lws", "%s", buf);
}

static gboolean finish_shutdown(gpointer data)
{
    (void)data;
    gint64 waited = (g_get_monotonic_time() - shutdown_started) / 1000;
    if (conn_count() > 0 && waited < SHUTDOWN_GRACE_MS)
        return G_SOURCE_CONTINUE;
    log_info("main", "closing listener (%u connections left after %" G_GINT64_FORMAT " ms)",
             conn_count(), waited);
    g_main_loop_quit(server.loop); /* main() destroys the lws context */
    return G_SOURCE_REMOVE;
}

static gboolean on_signal(gpointer data)
{
    if (server.stopping)
        return G_SOURCE_CONTINUE;
    log_info("main", "signal %d: shutting down, closing %u connections", GPOINTER_TO_INT(data),
             conn_count());
    server.stopping = true;
    shutdown_started = g_get_monotonic_time();
    ws_close_all("server shutting down");
    g_timeout_add(20, finish_shutdown, NULL);
    return G_SOURCE_CONTINUE;
}

static gboolean on_poll(gpointer data)
{
    (void)data;
    if (!server.stopping)
        session_poll();
    return G_SOURCE_CONTINUE;
}

/* Sensor records written by yjtctl, and the readings retention trim
 * (bounded work per tick). */
static gboolean on_sensors_tick(gpointer data)
{
    (void)data;
    if (!server.stopping) {
        sensor_poll();
        reading_retention_tick(clock_now_ms());
    }
    return G_SOURCE_CONTINUE;
}

/* Large fan-outs' inbox rows into their inboxes, and the trims of their
 * inboxes, a bounded number of inboxes per tick (see store_seq_settle and
 * inbox_trim_due). */
static gboolean on_settle_tick(gpointer data)
{
    (void)data;
    if (server.stopping)
        return G_SOURCE_CONTINUE;
    if (store_seq_settle(server.store, SETTLE_KEYS_PER_TICK, false) != STORE_OK)
        log_warn("store", "settling fan-out rows failed (they stay pending)");
    inbox_trim_due(TRIMS_PER_TICK);
    return G_SOURCE_CONTINUE;
}

/* The readings flusher: buffered points into chunks, bounded per tick. */
static gboolean on_flush_tick(gpointer data)
{
    (void)data;
    if (!server.stopping)
        reading_flush_tick(clock_now_ms());
    return G_SOURCE_CONTINUE;
}

/* On Redis, this node's readings log is its own, named by the id kept in
 * its data directory (node.id, made at the first start), so that after
 * a restart it finds the log again; a node that stays away longer than
 * cluster_dead_s leaves it to the others (store_ts_log_own). */
static int own_readings_log(void)
{
    if (!server.cfg.redis[0])
        return 0;
    char *path = g_build_filename(server.cfg.data_dir, "node.id", NULL);
    char *id = NULL;
    GError *e = NULL;
    if (g_file_get_contents(path, &id, NULL, NULL)) {
        g_strstrip(id);
    } else {
        id = id_new("n");
        if (g_mkdir_with_parents(server.cfg.data_dir, 0700) != 0 ||
            !g_file_set_contents(path, id, -1, &e)) {
            log_error("main", "cannot keep this node's id in %s: %s", path,
                      e ? e->message : g_strerror(errno));
            g_clear_error(&e);
            g_free(id);
            g_free(path);
            return -1;
        }
    }
    int rc = store_ts_log_own(server.store, id, server.cfg.cluster_dead_s);
    if (rc != STORE_OK)
        log_error("main", "%s does not hold a node id (letters, digits, '-', '_')", path);
    else
        log_info("main", "node id %s (its readings log)", id);
    g_free(id);
    g_free(path);
    return rc == STORE_OK ? 0 : -1;
}

static int start_sensors(void)
{
    if (own_readings_log() < 0 || sensor_init(server.store) != STORE_OK)
        return -1;
    struct reading_config rc = {
        .retention_days = server.cfg.readings_retention_days,
        .max_rows = server.cfg.readings_max_rows,
        .errors_max = server.cfg.readings_errors_max,
        .future_skew_s = server.cfg.readings_future_skew_s,
        .trim_per_tick = server.cfg.readings_trim_per_tick,
        .query_max_points = server.cfg.readings_query_max_points,
        .query_max_scan = server.cfg.readings_query_max_scan,
        .flush_points = server.cfg.readings_flush_points,
        .flush_age_s = server.cfg.readings_flush_age_s,
        .buffer_max_mb = server.cfg.readings_buffer_max_mb,
        .chunks_per_tick = server.cfg.readings_chunks_per_tick,
        .batch_now = commit_needed,
        .batch_durable = commit_durable,
        .batch_failures = commit_failures,
    };
    reading_init(server.store, &rc);
    return reading_start() == STORE_OK ? 0 : -1;
}

static gboolean on_keepalive(gpointer data)
{
    (void)data;
    if (!server.stopping)
        ws_keepalive();
    return G_SOURCE_CONTINUE;
}

static gboolean on_housekeeping(gpointer data)
{
    (void)data;
    store_kv_purge_expired(server.store, g_get_real_time() / 1000);
    /* Give back what a connection storm freed (TLS handshakes above all),
     * so resident memory follows the connections that are left. */
    malloc_trim(0);
    return G_SOURCE_CONTINUE;
}

static gboolean on_gateway_tick(gpointer data)
{
    (void)data;
    if (!server.stopping)
        gateway_tick();
    return G_SOURCE_CONTINUE;
}

static gboolean on_reminders_tick(gpointer data)
{
    (void)data;
    if (!server.stopping)
        reminders_tick();
    return G_SOURCE_CONTINUE;
}

/* At the commitment deadline: who filed, who was late, who is missing, to
 * the duty regulators of each district. */
static int run_summary(struct store *st, const char *date, int64_t now_ms, reminder_push_fn push,
                       void *ud)
{
    (void)now_ms;
    (void)ud;
    return commitment_remind_summary(st, date, bizdate_minute_parse(server.cfg.commitment_deadline),
                                     push);
}

/* On the confirmation day: enterprises whose file was not confirmed. */
static int run_confirm(struct store *st, const char *date, int64_t now_ms, reminder_push_fn push,
                       void *ud)
{
    (void)date;
    (void)ud;
    return commitment_remind_confirm(st, now_ms, push);
}

/* Starts the reminders scheduler; with test_clock (tests only) its clock
 * starts at that time. */
static int start_reminders(void)
{
    if (server.cfg.test_clock[0]) {
        GDateTime *t = g_date_time_new_from_iso8601(server.cfg.test_clock, NULL);
        reminders_set_now_ms(g_date_time_to_unix(t) * 1000);
        g_date_time_unref(t);
        log_warn("main", "test_clock is set: the reminders clock is not the real time");
    }
    struct reminders_config rc = {
        .tz = server.cfg.business_tz,
        .commitment_times = server.cfg.commitment_reminder_times,
        .commitment_cutoff = server.cfg.commitment_deadline,
        .selfeval_time = server.cfg.selfeval_reminder_time,
        .selfeval_last_day = server.cfg.selfeval_last_day,
        .confirm_day = server.cfg.confirm_reminder_day,
    };
    /* the same name across restarts: the host and the port served */
    char *holder =
        g_strdup_printf("%s:%d", g_get_host_name(), server.cfg.listen_port);
    rc.holder = holder;
    /* who is reminded, and the pushes the records compose */
    reminders_set_commitment_source(commitment_due_recipients, NULL);
    reminders_set_summary_runner(run_summary, NULL);
    reminders_set_confirm_runner(run_confirm, NULL);
    char *err = NULL;
    int ok = reminders_init(server.store, &rc, &err);
    g_free(holder);
    if (ok < 0) {
        log_error("main", "reminders: %s", err);
        g_free(err);
        return -1;
    }
    return 0;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_info("main", "open files limit %llu", (unsigned long long)rl.rlim_cur);
}

/* Loads the certificate chain and key once, so a bad file stops the start
 * with a clear message instead of a listener that cannot handshake. */
static int check_tls_files(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int ok = ctx && SSL_CTX_use_certificate_chain_file(ctx, server.cfg.tls_cert) == 1 &&
             SSL_CTX_use_PrivateKey_file(ctx, server.cfg.tls_key, SSL_FILETYPE_PEM) == 1 &&
             SSL_CTX_check_private_key(ctx) == 1;
    if (!ok) {
        char why[256];
        ERR_error_string_n(ERR_get_error(), why, sizeof(why));
        log_error("main", "TLS certificate %s or key %s unusable: %s", server.cfg.tls_cert,
                  server.cfg.tls_key, why);
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int start_lws(void)
{
    protocols[0] = (struct lws_protocols){
        .name = "http", .callback = http_callback, .per_session_data_size = http_pss_size()};
    /* Messages arrive in 1 KB pieces (the per-connection buffer of 10k
     * connections) but leave whole: without tx_packet_size lws would cut
     * every send to the receive buffer's size and send the rest at later
     * writeable turns, a 5 KB call.incoming taking five sends, four poll-set
     * changes and four loop turns. No message is larger than a connection's
     * send queue. */
    protocols[1] = (struct lws_protocols){.name = "yjt.v1",
                                          .callback = ws_callback,
                                          .per_session_data_size = ws_pss_size(),
                                          .rx_buffer_size = 1024,
                                          .tx_packet_size = (size_t)server.cfg.send_queue_max};
    protocols[2] = (struct lws_protocols){.name = GATEWAY_CLIENT_PROTOCOL,
                                          .callback = gateway_client_callback};

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    uv_loop = uvsource_start();
    if (!uv_loop) {
        log_error("main", "cannot start the event loop");
        return -1;
    }
    loopstat_start(NULL);
    void *loops[1] = {uv_loop};
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    info.pcontext = &server.lws; /* lws clears it once destroyed */
    info.port = server.cfg.listen_port;
    info.iface = server.cfg.listen_host;
    info.protocols = protocols;
    info.retry_and_idle_policy = &no_lws_validity;
    info.max_http_header_pool = 256;
    info.timeout_secs = 10;
    if (g_str_has_prefix(server.cfg.gateway_url, "https://")) {
        /* client TLS to the gateway, verified against the CA file or the
         * system's store */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        if (server.cfg.gateway_ca_file[0])
            info.client_ssl_ca_filepath = server.cfg.gateway_ca_file;
    }
    if (server.cfg.tls_cert) {
        if (check_tls_files() < 0)
            return -1;
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = server.cfg.tls_cert;
        info.ssl_private_key_filepath = server.cfg.tls_key;
    }
    server.lws = lws_create_context(&info);
    /* On a foreign loop lws makes the context even when its listening
     * vhost fails (the port taken, say): without that vhost yjtd would
     * run deaf, so it stops instead. */
    if (!server.lws || !lws_get_vhost_by_name(server.lws, "default")) {
        log_error("main", "cannot listen on %s:%d%s", server.cfg.listen_host,
                  server.cfg.listen_port,
                  server.cfg.tls_cert ? " (in use? check the TLS files)" : " (in use?)");
        return -1;
    }
    log_info("main", "yjtd serving %s://%s:%d (WebSocket /ws, REST /api/v1)",
             server.cfg.tls_cert ? "https" : "http", server.cfg.listen_host,
             server.cfg.listen_port);
    return 0;
}

/* The key from the store's document, if it is there and whole. */
static int key_from_doc(json_t *doc, unsigned char key[TOKEN_KEY_LEN])
{
    const char *b64 = json_string_value(json_object_get(doc, "key"));
    if (!b64)
        return -1;
    gsize n = 0;
    guchar *raw = g_base64_decode(b64, &n);
    int rc = n == TOKEN_KEY_LEN ? 0 : -1;
    if (rc == 0)
        memcpy(key, raw, TOKEN_KEY_LEN);
    OPENSSL_cleanse(raw, n);
    g_free(raw);
    return rc;
}

/* The token key kept in the store (document secrets/token_key), so that
 * every node of a cluster signs and checks tokens with one key: the first
 * node to start creates it, the others read it. 0 or -1. */
static int token_key_load_store(struct store *st, unsigned char key[TOKEN_KEY_LEN])
{
    json_t *doc = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (store_doc_get(st, "secrets", "token_key", &doc) == STORE_OK) {
            int rc = key_from_doc(doc, key);
            json_decref(doc);
            return rc;
        }
        if (id_random_bytes(key, TOKEN_KEY_LEN) < 0)
            return -1;
        char *b64 = g_base64_encode(key, TOKEN_KEY_LEN);
        doc = json_pack("{s:s}", "key", b64);
        OPENSSL_cleanse(b64, strlen(b64));
        g_free(b64);
        int rc = store_doc_put(st, "secrets", "token_key", doc, true);
        json_decref(doc);
        if (rc == STORE_OK)
            return 0;
        if (rc != STORE_ECONFLICT)
            return -1;
        /* another node created it first: read theirs */
    }
    return -1;
}

int main(int argc, char **argv)
{
    char *err = NULL;
    int rc = config_load(&server.cfg, argc, argv, &err);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "yjtd: %s\n", err);
        g_free(err);
        config_free(&server.cfg);
        return rc < 0 ? 2 : 0;
    }
    if (server.cfg.test_clock[0]) {
        int64_t start = config_test_clock_ms(&server.cfg);
        clock_set_offset_ms(start - g_get_real_time() / 1000);
    }
    umask(077);
    /* Freed heap is returned to the system by the housekeeping timer
     * (malloc_trim every 30 s), not after every large request: shrinking
     * the heap on each fan-out cost more than the fan-out itself here
     * (every brk shrink flushes the TLB on every CPU). */
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    signal(SIGPIPE, SIG_IGN);
    log_set_level((enum log_level)log_level_parse(server.cfg.log_level));
    lws_set_log_level(LLL_ERR | LLL_WARN | (log_get_level() == LOG_DEBUG ? LLL_NOTICE : 0),
                      lws_log_bridge);
    raise_fd_limit();
    if (server.cfg.test_clock[0])
        log_warn("main", "test clock: the wall clock starts at %s (for tests only)",
                 server.cfg.test_clock);

    int exit_code = 1;
    server.store =
        records_open(server.cfg.data_dir, server.cfg.redis, server.cfg.redis_prefix, &err);
    if (!server.store) {
        log_error("main", "%s", err);
        g_free(err);
        redis_tls_stop_all();
        config_free(&server.cfg);
        return 1;
    }
    if (server.cfg.redis[0]) {
        struct redis_url u;
        char *why = NULL;
        if (redis_url_parse(server.cfg.redis, &u, &why) == 0) {
            char *where = redis_url_describe(&u);
            log_info("main", "store on Redis at %s, keys under \"%s\"", where,
                     server.cfg.redis_prefix);
            g_free(where);
            redis_url_clear(&u);
        }
        g_free(why);
    }
    commit_init();
    bizdate_set_zone(server.cfg.business_tz);
    if (server.cfg.redis[0]) {
        rc = token_key_load_store(server.store, server.token_key);
        if (rc < 0) {
            log_error("main", "cannot read or create the token key in the store");
            goto out_store;
        }
    } else {
        char *key_path = g_build_filename(server.cfg.data_dir, "token.key", NULL);
        rc = token_key_load(key_path, server.token_key);
        g_free(key_path);
        if (rc < 0) {
            log_error("main", "cannot read or create the token key in %s", server.cfg.data_dir);
            goto out_store;
        }
    }
    if (server.cfg.demo &&
        demo_load(server.store, server.cfg.data_dir, server.cfg.hash_iterations) < 0)
        goto out_store;
    /* On Redis each look for changed accounts is a round trip: at most
     * every quarter second (other nodes' and yjtctl's changes show then). */
    account_cache_set_max_age(server.cfg.redis[0] ? 250 : 0);
    org_cache_divisions(server.cfg.redis[0] ? 2000 : 0);
    if (account_cache_open(server.store) != STORE_OK) {
        log_error("main", "cannot load the accounts from the store");
        goto out_store;
    }

    server.loop = g_main_loop_new(NULL, FALSE);
    if (server.cfg.redis[0]) {
        if (bus_start(server.cfg.redis, server.cfg.redis_prefix, &err) != 0) {
            log_error("main", "%s", err);
            g_free(err);
            g_main_loop_unref(server.loop);
            goto out_store;
        }
        push_api_bus_init();
        session_bus_init();
        if (cluster_start(server.cfg.redis, server.cfg.redis_prefix, server.cfg.cluster_beat_s,
                          server.cfg.cluster_dead_s, &err) != 0) {
            log_error("main", "%s", err);
            g_free(err);
            bus_stop();
            g_main_loop_unref(server.loop);
            goto out_store;
        }
    }
    metrics_init();
    conn_registry_init();
    sendpool_init(server.cfg.send_threads ? server.cfg.send_threads
                                          : (int)MIN(g_get_num_processors(), 4u));
    presence_init(presence_api_notify, NULL);
    struct inbox_limits inbox_limits = {server.cfg.inbox_max_age_s, server.cfg.inbox_max_count};
    inbox_init(server.store, &inbox_limits, push_api_deliver, NULL);
    inbox_on_fanout(push_api_fanout, NULL);
    struct inbox_batches batches = {commit_needed, commit_durable, commit_failed};
    inbox_set_batches(&batches);
    notice_init(server.store);
    gateway_client_init();
    struct gateway_config gateway_cfg = {
        .url = server.cfg.gateway_url,
        .timeout_ms = server.cfg.gateway_timeout_ms,
        .retry_base_ms = server.cfg.gateway_retry_base_ms,
        .retry_max_ms = server.cfg.gateway_retry_max_ms,
        .max_attempts = server.cfg.gateway_max_attempts,
        .max_inflight = server.cfg.gateway_max_inflight,
        .ack_timeout_ms = server.cfg.push_ack_timeout_s * 1000,
    };
    if (gateway_init(server.store, &gateway_cfg, gateway_client_post) < 0 ||
        start_reminders() < 0 || start_sensors() < 0)
        goto out_modules;
    sensor_bus_init(); /* before the alarms: their first tick asks it whose they are */
    if (alarm_api_init() < 0)
        goto out_modules;
    http_init();
    static_init(server.cfg.web_root);
    session_init();
    call_api_init();
    feed_api_init();
    if (auth_init() < 0)
        goto out_modules;
    if (start_lws() < 0)
        goto out_auth;

    guint sig_term = g_unix_signal_add(SIGTERM, on_signal, GINT_TO_POINTER(SIGTERM));
    guint sig_int = g_unix_signal_add(SIGINT, on_signal, GINT_TO_POINTER(SIGINT));
    guint poll = g_timeout_add((guint)server.cfg.account_poll_ms, on_poll, NULL);
    guint house = g_timeout_add_seconds(30, on_housekeeping, NULL);
    guint keep =
        g_timeout_add(MAX(250u, (guint)server.cfg.ping_interval_s * 250u), on_keepalive, NULL);
    guint gw = g_timeout_add(GATEWAY_TICK_MS, on_gateway_tick, NULL);
    guint rem = g_timeout_add(REMINDERS_TICK_MS, on_reminders_tick, NULL);
    guint sens = g_timeout_add(RETENTION_TICK_MS, on_sensors_tick, NULL);
    guint flush = g_timeout_add(FLUSH_TICK_MS, on_flush_tick, NULL);
    guint settle = g_timeout_add(SETTLE_TICK_MS, on_settle_tick, NULL);
    g_main_loop_run(server.loop);
    g_source_remove(sig_term);
    g_source_remove(sig_int);
    g_source_remove(poll);
    g_source_remove(house);
    g_source_remove(keep);
    g_source_remove(gw);
    g_source_remove(rem);
    g_source_remove(sens);
    g_source_remove(flush);
    g_source_remove(settle);
    exit_code = 0;

out_auth:
    if (server.lws)
        lws_context_destroy(server.lws); /* completes in the loop, below */
    uvsource_stop(uv_loop, (void *volatile *)&server.lws);
    uv_loop = NULL;
    call_api_shutdown();
    auth_shutdown();
out_modules:
    cluster_stop();
    push_api_bus_shutdown();
    sensor_bus_shutdown();
    bus_stop();
    feed_api_shutdown();
    http_shutdown();
    static_shutdown();
    gateway_client_shutdown();
    gateway_shutdown();
    alarm_api_shutdown();
    reminders_shutdown();
    reading_shutdown();
    sensor_shutdown();
    inbox_shutdown();
    presence_shutdown();
    conn_registry_shutdown();
    sendpool_shutdown();
    metrics_shutdown();
    bizdate_shutdown();
    g_main_loop_unref(server.loop);
out_store:
    account_cache_close();
    org_cache_divisions(0);
    commit_shutdown();
    if (store_flush(server.store) != STORE_OK)
        log_warn("main", "store checkpoint failed (data is safe in the WAL)");
    store_close(server.store);
    auth_forget_logins();
    redis_tls_stop_all();
    log_info("main", "stopped");
    config_free(&server.cfg);
    return exit_code;
}
