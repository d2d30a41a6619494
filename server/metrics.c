/* Counters and gauges behind /metrics, kept in GLib hash tables keyed by
 * their (bounded) label value. */
#include "server/bus.h"
#include "server/metrics.h"

#include "server/cluster.h"
#include "server/commit.h"
#include "server/loopstat.h"
#include "records/alarm.h"
#include "records/redis_link.h"
#include "records/store_replay.h"
#include "signaling/call.h"
#include "media/room.h"

#include "common/hist.h"
#include "push/feed.h"
#include "records/reading.h"
#include "records/sensor.h"

#include <glib.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static GHashTable *conns, *msgs_in, *msgs_out, *logins, *http;
static uint64_t errors[ERR__COUNT];
static uint64_t ws_writes, ws_written, ws_pool_writes, ws_pool_batches;
static uint64_t fanouts_early, fanouts_burst;
static int64_t started_at;

static GHashTable *counter_table(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

void metrics_init(void)
{
    conns = counter_table();
    msgs_in = counter_table();
    msgs_out = counter_table();
    logins = counter_table();
    http = counter_table();
    started_at = g_get_real_time() / 1000000;
    static const char *const roles[] = {"none", "gov", "corp", "trs", "admin", "gateway"};
    for (size_t i = 0; i < G_N_ELEMENTS(roles); i++)
        metrics_conn(roles[i], 0);
    static const char *const results[] = {"ok", "failed", "locked", "throttled"};
    for (size_t i = 0; i < G_N_ELEMENTS(results); i++)
        g_hash_table_insert(logins, g_strdup(results[i]), g_new0(int64_t, 1));
}

void metrics_shutdown(void)
{
    g_clear_pointer(&conns, g_hash_table_destroy);
    g_clear_pointer(&msgs_in, g_hash_table_destroy);
    g_clear_pointer(&msgs_out, g_hash_table_destroy);
    g_clear_pointer(&logins, g_hash_table_destroy);
    g_clear_pointer(&http, g_hash_table_destroy);
}

static void add(GHashTable *t, const char *label, int64_t delta)
{
    if (!t)
        return;
    int64_t *v = g_hash_table_lookup(t, label);
    if (!v) {
        v = g_new0(int64_t, 1);
        g_hash_table_insert(t, g_strdup(label), v);
    }
    *v += delta;
}

void metrics_conn(const char *role, int delta)
{
    add(conns, role, delta);
}

void metrics_msg_in(const char *type)
{
    add(msgs_in, type, 1);
}

void metrics_msg_out(const char *type)
{
    add(msgs_out, type, 1);
}

void metrics_ws_pool(size_t writes)
{
    ws_pool_batches++;
    ws_pool_writes += writes;
}

void metrics_fanout(bool early)
{
    if (early)
        fanouts_early++;
    else
        fanouts_burst++;
}

void metrics_ws_write(int messages)
{
    ws_writes++;
    ws_written += (uint64_t)messages;
}

void metrics_error(enum err_code code)
{
    if (code > ERR_NONE && code < ERR__COUNT)
        errors[code]++;
}

void metrics_login(const char *result)
{
    add(logins, result, 1);
}

void metrics_http(int status)
{
    char label[8];
    g_snprintf(label, sizeof(label), "%d", status);
    add(http, label, 1);
}

static void render_table(GString *out, const char *name, const char *help, const char *kind,
                         const char *label, GHashTable *t)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind);
    GList *names = g_list_sort(g_hash_table_get_keys(t), (GCompareFunc)g_strcmp0);
    for (GList *l = names; l; l = l->next)
        g_string_append_printf(out, "%s{%s=\"%s\"} %" G_GINT64_FORMAT "\n", name, label,
                               (const char *)l->data, *(int64_t *)g_hash_table_lookup(t, l->data));
    g_list_free(names);
}

/* Resident set size from /proc, in bytes; 0 if unreadable. */
static long long rss_bytes(void)
{
    long long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lld %lld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

/* One histogram in the Prometheus text format. */
static void render_hist(GString *out, const char *name, const char *help, const struct hist *h)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        cum += h->counts[i];
        g_string_append_printf(out, "%s_bucket{le=\"%g\"} %" G_GUINT64_FORMAT "\n", name,
                               hist_bounds_s[i], cum);
    }
    g_string_append_printf(out,
                           "%s_bucket{le=\"+Inf\"} %" G_GUINT64_FORMAT "\n%s_sum %.6f\n"
                           "%s_count %" G_GUINT64_FORMAT "\n",
                           name, h->total, name, h->sum_s, name, h->total);
}

/* Alarms: raised by level, upgrades, escalations, closures, and the open
 * alarms gauge (records/alarm.c counts them). */
static void render_alarms(GString *out)
{
    struct alarm_counters ac;
    alarm_counters(&ac);
    g_string_append(out, "# HELP yjt_alarms_raised_total Alarms raised, by level.\n"
                         "# TYPE yjt_alarms_raised_total counter\n");
    for (int l = 0; l < ALARM_LEVELS; l++)
        g_string_append_printf(out, "yjt_alarms_raised_total{level=\"%s\"} %" G_GUINT64_FORMAT "\n",
                               alarm_level_name(l), ac.raised[l]);
    g_string_append_printf(
        out,
        "# HELP yjt_alarms_upgraded_total Open alarms upgraded by a worse reading.\n"
        "# TYPE yjt_alarms_upgraded_total counter\n"
        "yjt_alarms_upgraded_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_alarm_escalations_total Escalation steps taken.\n"
        "# TYPE yjt_alarm_escalations_total counter\n"
        "yjt_alarm_escalations_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_alarms_closed_total Alarms closed.\n"
        "# TYPE yjt_alarms_closed_total counter\n"
        "yjt_alarms_closed_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_alarms_open Open (not closed) alarms.\n"
        "# TYPE yjt_alarms_open gauge\n"
        "yjt_alarms_open %u\n",
        ac.upgraded, ac.escalations, ac.closed, alarm_open_count());
}

char *metrics_render(const struct store *st)
{
    GString *out = g_string_sized_new(4096);
    render_table(out, "yjt_connections", "Open WebSocket connections by role.", "gauge", "role",
                 conns);
    render_table(out, "yjt_messages_in_total", "WebSocket messages received by type.", "counter",
                 "type", msgs_in);
    render_table(out, "yjt_messages_out_total", "WebSocket messages sent by type.", "counter",
                 "type", msgs_out);
    g_string_append_printf(
        out,
        "# HELP yjt_ws_writes_total Socket writes of WebSocket messages.\n"
        "# TYPE yjt_ws_writes_total counter\n"
        "yjt_ws_writes_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_ws_written_messages_total WebSocket messages those writes carried (several"
        " at once when several were ready).\n"
        "# TYPE yjt_ws_written_messages_total counter\n"
        "yjt_ws_written_messages_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_ws_pool_batches_total Flushes whose writes the send threads shared.\n"
        "# TYPE yjt_ws_pool_batches_total counter\n"
        "yjt_ws_pool_batches_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_ws_pool_writes_total Socket writes the send threads made (in"
        " yjt_ws_writes_total too).\n"
        "# TYPE yjt_ws_pool_writes_total counter\n"
        "yjt_ws_pool_writes_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_push_fanouts_total Pushes to many users: sent while still being queued"
        " (early) or with the next flush, several at once (burst).\n"
        "# TYPE yjt_push_fanouts_total counter\n"
        "yjt_push_fanouts_total{path=\"early\"} %" G_GUINT64_FORMAT "\n"
        "yjt_push_fanouts_total{path=\"burst\"} %" G_GUINT64_FORMAT "\n",
        ws_writes, ws_written, ws_pool_batches, ws_pool_writes, fanouts_early, fanouts_burst);
    render_table(out, "yjt_logins_total", "Login attempts by result.", "counter", "result", logins);
    render_table(out, "yjt_http_requests_total", "HTTP requests by status.", "counter", "status",
                 http);
    g_string_append(out, "# HELP yjt_errors_total Error replies by code.\n"
                         "# TYPE yjt_errors_total counter\n");
    for (int c = ERR_NONE + 1; c < ERR__COUNT; c++)
        g_string_append_printf(out, "yjt_errors_total{code=\"%s\"} %" G_GUINT64_FORMAT "\n",
                               err_name(c), errors[c]);
    render_hist(out, "yjt_loop_turn_seconds",
                "Time the main loop stays busy per turn (every reply waiting meanwhile waits "
                "this long).",
                loopstat_turns());
    render_hist(out, "yjt_store_latency_seconds", "Latency of store calls.", &st->latency);
    render_hist(out, "yjt_store_flush_seconds",
                "Time to flush the store's log to disk, per flush (batches share one).",
                commit_flush_hist());
    g_string_append_printf(out,
                           "# HELP yjt_store_errors_total Failed store calls.\n"
                           "# TYPE yjt_store_errors_total counter\n"
                           "yjt_store_errors_total %" G_GUINT64_FORMAT "\n"
                           "# HELP yjt_start_time_seconds Start time of the process.\n"
                           "# TYPE yjt_start_time_seconds gauge\n"
                           "yjt_start_time_seconds %" G_GINT64_FORMAT "\n",
                           st->errors, started_at);
    struct mallinfo2 mi = mallinfo2();
    g_string_append_printf(out,
                           "# HELP process_resident_memory_bytes Resident memory.\n"
                           "# TYPE process_resident_memory_bytes gauge\n"
                           "process_resident_memory_bytes %lld\n"
                           "# HELP yjt_heap_inuse_bytes Heap memory allocated and not freed.\n"
                           "# TYPE yjt_heap_inuse_bytes gauge\n"
                           "yjt_heap_inuse_bytes %zu\n"
                           "# HELP yjt_heap_free_bytes Heap memory freed but still held.\n"
                           "# TYPE yjt_heap_free_bytes gauge\n"
                           "yjt_heap_free_bytes %zu\n",
                           rss_bytes(), mi.uordblks + mi.hblkhd, mi.fordblks);
    g_string_append_printf(out,
                           "# HELP yjt_calls_in_progress Calls ringing or answered.\n"
                           "# TYPE yjt_calls_in_progress gauge\n"
                           "yjt_calls_in_progress %u\n",
                           call_count());
    struct call_stats cs;
    call_get_stats(&cs);
    g_string_append(out, "# HELP yjt_calls_ended_total Calls ended, by reason.\n"
                         "# TYPE yjt_calls_ended_total counter\n");
    for (unsigned i = 0; i < cs.n_reasons; i++)
        g_string_append_printf(out, "yjt_calls_ended_total{reason=\"%s\"} %" G_GUINT64_FORMAT "\n",
                               cs.reasons[i], cs.ended[i]);
    render_hist(out, "yjt_call_setup_seconds", "Time from call.invite to the winning call.accept.",
                cs.setup);
    struct media_stats ms;
    media_stats_get(&ms);
    g_string_append_printf(
        out,
        "# HELP yjt_media_peers Connections of devices to the SFU.\n"
        "# TYPE yjt_media_peers gauge\n"
        "yjt_media_peers %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_rtp_received_total Media packets the SFU received.\n"
        "# TYPE yjt_media_rtp_received_total counter\n"
        "yjt_media_rtp_received_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_rtp_sent_total Media packets the SFU forwarded.\n"
        "# TYPE yjt_media_rtp_sent_total counter\n"
        "yjt_media_rtp_sent_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_nack_resent_total Packets sent again for a receiver's NACK.\n"
        "# TYPE yjt_media_nack_resent_total counter\n"
        "yjt_media_nack_resent_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_nack_missed_total Packets a NACK asked for that were no longer held.\n"
        "# TYPE yjt_media_nack_missed_total counter\n"
        "yjt_media_nack_missed_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_keyframe_requests_total Key frames asked of publishers (PLI).\n"
        "# TYPE yjt_media_keyframe_requests_total counter\n"
        "yjt_media_keyframe_requests_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_nack_sent_total Packets the SFU asked senders for again.\n"
        "# TYPE yjt_media_nack_sent_total counter\n"
        "yjt_media_nack_sent_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_nack_unrepaired_total Losses from senders that NACKs did not repair.\n"
        "# TYPE yjt_media_nack_unrepaired_total counter\n"
        "yjt_media_nack_unrepaired_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_rtx_received_total RTX retransmissions the SFU received.\n"
        "# TYPE yjt_media_rtx_received_total counter\n"
        "yjt_media_rtx_received_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_recordings_total Recording files opened.\n"
        "# TYPE yjt_media_recordings_total counter\n"
        "yjt_media_recordings_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_receiver_reports_total RTCP receiver reports sent to senders.\n"
        "# TYPE yjt_media_receiver_reports_total counter\n"
        "yjt_media_receiver_reports_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_media_sender_reports_forwarded_total Senders' RTCP sender reports passed "
        "on to receivers.\n"
        "# TYPE yjt_media_sender_reports_forwarded_total counter\n"
        "yjt_media_sender_reports_forwarded_total %" G_GUINT64_FORMAT "\n",
        ms.peers, ms.rtp_in, ms.rtp_out, ms.nack_resent, ms.nack_missed, ms.keyframe_requests,
        ms.nack_sent, ms.nack_unrepaired, ms.rtx_in, ms.recordings, ms.receiver_reports,
        ms.sr_forwarded);
    if (bus_enabled()) {
        struct bus_stats bs;
        bus_get_stats(&bs);
        g_string_append_printf(
            out,
            "# HELP yjt_bus_up Whether both connections of the bus to Redis are up.\n"
            "# TYPE yjt_bus_up gauge\n"
            "yjt_bus_up %d\n"
            "# HELP yjt_bus_messages_total Messages to and from the other nodes.\n"
            "# TYPE yjt_bus_messages_total counter\n"
            "yjt_bus_messages_total{dir=\"out\"} %" G_GUINT64_FORMAT "\n"
            "yjt_bus_messages_total{dir=\"in\"} %" G_GUINT64_FORMAT "\n"
            "# HELP yjt_bus_dropped_total Messages to the other nodes given up (Redis away too "
            "long, or refused).\n"
            "# TYPE yjt_bus_dropped_total counter\n"
            "yjt_bus_dropped_total %" G_GUINT64_FORMAT "\n"
            "# HELP yjt_bus_connects_total Connections to Redis opened by the bus.\n"
            "# TYPE yjt_bus_connects_total counter\n"
            "yjt_bus_connects_total %" G_GUINT64_FORMAT "\n"
            "# HELP yjt_cluster_presence_cached Users whose devices on other nodes this node "
            "remembers.\n"
            "# TYPE yjt_cluster_presence_cached gauge\n"
            "yjt_cluster_presence_cached %u\n",
            bs.reading && bs.writing, bs.published, bs.received, bs.dropped, bs.reconnects,
            cluster_cached_users());
    }
    double waited = 0;
    uint64_t waits = redis_link_loop_waits(&waited);
    g_string_append_printf(out,
                           "# HELP yjt_redis_loop_waits_total Times the event loop waited for a "
                           "reply of Redis (0 on SQLite).\n"
                           "# TYPE yjt_redis_loop_waits_total counter\n"
                           "yjt_redis_loop_waits_total %" G_GUINT64_FORMAT "\n"
                           "# HELP yjt_redis_loop_wait_seconds_total How long those waits took "
                           "in all.\n"
                           "# TYPE yjt_redis_loop_wait_seconds_total counter\n"
                           "yjt_redis_loop_wait_seconds_total %.6f\n",
                           waits, waited);
    uint64_t replay_reads, replay_reruns;
    store_replay_counts(&replay_reads, &replay_reruns);
    g_string_append_printf(
        out,
        "# HELP yjt_store_replay_reads_total Reads of REST requests sent without "
        "the event loop waiting (Redis).\n"
        "# TYPE yjt_store_replay_reads_total counter\n"
        "yjt_store_replay_reads_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_store_replay_reruns_total Runs of REST requests set aside "
        "until their reads were answered.\n"
        "# TYPE yjt_store_replay_reruns_total counter\n"
        "yjt_store_replay_reruns_total %" G_GUINT64_FORMAT "\n",
        replay_reads, replay_reruns);
    struct feed_stats fs;
    feed_get_stats(&fs);
    g_string_append_printf(
        out,
        "# HELP yjt_feed_subscriptions 3D feed subscriptions open.\n"
        "# TYPE yjt_feed_subscriptions gauge\n"
        "yjt_feed_subscriptions %u\n"
        "# HELP yjt_feed_snapshots_total Feed snapshots sent whole.\n"
        "# TYPE yjt_feed_snapshots_total counter\n"
        "yjt_feed_snapshots_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_feed_deltas_total Feed deltas sent.\n"
        "# TYPE yjt_feed_deltas_total counter\n"
        "yjt_feed_deltas_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_feed_skipped_slow_total Feed turns skipped because the subscriber had not "
        "drained its queue.\n"
        "# TYPE yjt_feed_skipped_slow_total counter\n"
        "yjt_feed_skipped_slow_total %" G_GUINT64_FORMAT "\n",
        fs.subscriptions, fs.snapshots, fs.deltas, fs.skipped_slow);
    const struct reading_stats *rs = reading_stats();
    g_string_append_printf(
        out,
        "# HELP yjt_readings_accepted_total Readings stored.\n"
        "# TYPE yjt_readings_accepted_total counter\n"
        "yjt_readings_accepted_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_readings_late_total Readings stored as late (out of order).\n"
        "# TYPE yjt_readings_late_total counter\n"
        "yjt_readings_late_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_readings_buffered Readings in memory, not yet written as chunks.\n"
        "# TYPE yjt_readings_buffered gauge\n"
        "yjt_readings_buffered %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_readings_chunks_total Chunks of readings the flusher wrote.\n"
        "# TYPE yjt_readings_chunks_total counter\n"
        "yjt_readings_chunks_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_readings_flush_errors_total Chunk writes the store refused.\n"
        "# TYPE yjt_readings_flush_errors_total counter\n"
        "yjt_readings_flush_errors_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_readings_replayed Readings replayed from the log at start.\n"
        "# TYPE yjt_readings_replayed gauge\n"
        "yjt_readings_replayed %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_readings_adopted_total Readings taken over from the log of a node gone for "
        "good.\n"
        "# TYPE yjt_readings_adopted_total counter\n"
        "yjt_readings_adopted_total %" G_GUINT64_FORMAT "\n"
        "# HELP yjt_sensors Sensors configured.\n"
        "# TYPE yjt_sensors gauge\n"
        "yjt_sensors %u\n"
        "# HELP yjt_readings_rejected_total Readings rejected, by row code.\n"
        "# TYPE yjt_readings_rejected_total counter\n",
        rs->accepted, rs->late, rs->buffered, rs->chunks, rs->flush_errors, rs->replayed,
        rs->adopted, sensor_count());
    for (int i = 0; i < 7; i++)
        g_string_append_printf(out,
                               "yjt_readings_rejected_total{code=\"%s\"} %" G_GUINT64_FORMAT "\n",
                               reading_code_names[i], rs->by_code[i]);
    render_hist(out, "yjt_readings_batch_seconds", "Time to check, store and dispatch one batch.",
                &rs->batch_latency);
    render_alarms(out);
    return g_string_free(out, FALSE);
}
