/* Recent readings in memory, and the flusher that moves them into the
 * store's chunks (see reading_buffer.c for the scheme). Only the readings
 * module (records/reading.c) uses it. */
#ifndef YJT_READING_BUFFER_H
#define YJT_READING_BUFFER_H

#include "records/store.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

struct reading_buffer_config {
    int flush_points;    /* a sensor's buffer is written as a chunk at this many points */
    int flush_age_s;     /* ... or once its oldest point has waited this long */
    int64_t max_bytes;   /* above this, the flusher also writes the bigger-than-average buffers */
    int chunks_per_tick; /* chunks one flush tick writes at most */
    /* With a store whose batches may fail (Redis) chunks are writes of the
     * open batch, not waited for, and a round's log rows are trimmed once
     * the batch that holds its chunks is durable: the group commit's
     * batch a write made now is in, whether a batch is durable, and how
     * many batches have failed so far (server/commit.h). NULL: chunks are
     * written, and the log trimmed, as the flusher goes. */
    uint64_t (*batch_now)(void);
    bool (*batch_durable)(uint64_t gen);
    uint64_t (*batch_failures)(void);
};

struct reading_buffer_stats {
    uint64_t points;       /* buffered now */
    uint64_t chunks;       /* written since start */
    uint64_t flush_errors; /* chunk writes the store refused */
    int64_t log_last;      /* last log row appended (or replayed) */
    int64_t log_trimmed;   /* log rows up to this one are deleted */
    uint64_t replayed;     /* points replayed from the log at start */
    uint64_t adopted;      /* points taken over from other servers' logs */
    uint64_t recent_points; /* of chunks sent lately, still shown (deferred stores) */
};

void reading_buffer_init(struct store *st, const struct reading_buffer_config *cfg);
/* Replays the log rows whose points are not all in chunks into the
 * buffers, moving the sensors' latest readings forward (no listener is
 * called). Call once, after sensor_init. */
int reading_buffer_replay(void);
void reading_buffer_shutdown(void);
const struct reading_buffer_stats *reading_buffer_stats(void);

/* Adds (ts, value) to key's buffer; false if that ts is buffered already. */
bool reading_buffer_add(int64_t key, int64_t ts, double value, int64_t now_ms);
/* Takes back a point reading_buffer_add just added (the log refused it). */
void reading_buffer_remove(int64_t key, int64_t ts);
bool reading_buffer_has(int64_t key, int64_t ts);
/* Tells the buffer of key that its new points are in log row id. */
void reading_buffer_logged(int64_t key, int64_t id);
/* Appends key's buffered samples with from_ms <= ts < to_ms to out (a
 * GArray of struct store_ts_sample), and, where chunks are written with
 * the open batch, those of its chunks sent in the last few seconds: a
 * point may then come twice and out is not in ts order (the caller sorts
 * and merges). */
void reading_buffer_range(int64_t key, int64_t from_ms, int64_t to_ms, GArray *out);
/* One bounded step of the flusher (call every FLUSH_TICK_MS or so). */
void reading_buffer_tick(int64_t now_ms);

#endif
