/* Sensor readings: batch ingestion, history queries and retention.
 *
 * A batch is checked row by row (a bad row is reported and skipped, never
 * fails the others), appended to the store's readings log in one write,
 * and only then are the reading listeners of sensor.h called, once per row
 * that became its sensor's latest. Recent points stay in memory until the
 * flusher (reading_flush_tick) writes them to the store as chunks. See docs/protocol.md (readings)
 * for the per-row report and every row code. */
#ifndef YJT_READING_H
#define YJT_READING_H

#include "common/errors.h"
#include "common/hist.h"
#include "records/sensor.h"

#include <jansson.h>
#include <stdint.h>

struct reading_config {
    int retention_days;   /* history older than this is trimmed */
    int max_rows;         /* readings in one batch */
    int errors_max;       /* row errors listed in one report */
    int future_skew_s;    /* a reading's ts may be this far ahead of the server */
    int trim_per_tick;    /* chunks one retention tick deletes at most */
    int query_max_points; /* points (or buckets) in one history reply */
    int query_max_scan;   /* stored points one downsampled query reads */
    int flush_points;     /* a sensor's buffered points become a chunk at this many */
    int flush_age_s;      /* ... or when the oldest has waited this long */
    int buffer_max_mb;    /* buffered points above this: bigger buffers flushed early */
    int chunks_per_tick;  /* chunks one flush tick writes at most */
    /* The group commit's batches, for chunks written without waiting (see
     * reading_buffer.h); NULL: chunks are waited for. */
    uint64_t (*batch_now)(void);
    bool (*batch_durable)(uint64_t gen);
    uint64_t (*batch_failures)(void);
};

/* Counters for /metrics. */
struct reading_stats {
    uint64_t accepted, rejected, late, batches;
    uint64_t by_code[8];       /* rejected rows per code, in reading_code_names order */
    struct hist batch_latency; /* seconds per batch, check to listeners */
    uint64_t buffered;         /* points in memory, not yet in chunks */
    uint64_t chunks;           /* chunks the flusher wrote since start */
    uint64_t flush_errors;     /* chunk writes the store refused */
    uint64_t replayed;         /* points replayed from the log at start */
    uint64_t adopted;          /* points taken over from other servers' logs */
};
extern const char *const reading_code_names[8];

void reading_init(struct store *st, const struct reading_config *cfg);
/* Replays the readings log into memory (after sensor_init): the points
 * acknowledged but not yet in chunks, and the latest values they carry. */
int reading_start(void);
/* One bounded step of the flusher; main.c calls it every 100 ms. */
void reading_flush_tick(int64_t now_ms);
const struct reading_stats *reading_stats(void);

/* Ingests body {"readings":[{"sensor","value","ts"}, ...]} on behalf of a
 * gateway of enterprise (NULL: any enterprise). now_ms is the server's
 * time of arrival. Returns ERR_NONE with *report {accepted, rejected,
 * late, errors:[{index, code}], errors_truncated?}; bad_request (no
 * readings array), too_large (more than max_rows) or unavailable (the
 * store refused the batch: nothing was stored) with *why. */
enum err_code reading_ingest(const char *enterprise, const json_t *body, int64_t now_ms,
                             json_t **report, const char **why);
/* The same without waiting for the store: where it reads later (Redis),
 * the reads the batch needs (sensors registered elsewhere since the last
 * poll, the stored chunks of its rows older than their sensor's latest)
 * are sent ahead and the batch is taken when they are answered; the
 * batches of one enterprise are taken in the order they came. cb(e,
 * report (borrowed for the call; NULL unless ERR_NONE), why, ud), at once
 * or later from the main loop. body is referenced (not to be changed). */
typedef void (*reading_ingest_cb)(enum err_code e, json_t *report, const char *why, void *ud);
void reading_ingest_later(const char *enterprise, const json_t *body, int64_t now_ms,
                          reading_ingest_cb cb, void *ud);

/* The history of s in [from_ms, to_ms): raw points, or with step_ms > 0
 * buckets of that width (min, max, avg, count). At most limit entries.
 * Points older than the retention period before now_ms are left out.
 * Returns ERR_NONE with *out, or bad_request / unavailable with *why. */
enum err_code reading_history(const struct sensor *s, int64_t from_ms, int64_t to_ms,
                              int64_t step_ms, int limit, int64_t now_ms, json_t **out,
                              const char **why);

/* Deletes up to trim_per_tick chunks that hold no point of the retention
 * period ending at now_ms: sent without waiting where the store would
 * (store_ts_chunk_trim_before_later), logged when answered; nothing new
 * is sent while one is under way. */
void reading_retention_tick(int64_t now_ms);
void reading_shutdown(void);

#endif
