/* Reads of a request that is run again rather than waited for.
 *
 * A request that only reads (a REST GET) is a function of what it reads.
 * On a store shared over the network (Redis), reading on the event loop
 * would hold every other connection of the node for a round trip; turning
 * each of some twenty handlers into a chain of callbacks would spread the
 * same logic over twice the code. Instead the request is run against a
 * replay (struct store_replay), which remembers every answer it has got:
 *
 *   - between store_replay_begin() and store_replay_end(), the store's
 *     reads (doc_get, doc_list, index_find, seq_range, seq_last, kv_get,
 *     ts_chunk_range) are answered from the replay when it has their
 *     answer. One it has not is sent without waiting: on the store's own
 *     link where the store has such a read (store_*_later: a document, an
 *     index look-up, a sequence oldest first, its head, a key), else by
 *     one of the reader threads, each with a connection of its own. The
 *     call returns STORE_EAGAIN (a reading call gives nothing), so that
 *     the run goes on and finds more of what it needs at once, or stops;
 *   - a run that sent a read is thrown away by its caller (its answer is
 *     not sent; from that read on, its log lines are dropped);
 *     store_replay_wait() tells it from the main loop when every read
 *     sent is answered, and the request is run again;
 *   - a write in a run that sent a read is refused (STORE_EAGAIN, nothing
 *     done): that run's view is not what the store holds. Once a run has
 *     written, its further reads are made at once (waiting), so a run that
 *     wrote always completes and is never run again;
 *   - a counter taken in a run that has not written (store_counter_incr)
 *     is sent as a read is, by a reader thread, and its value kept for
 *     the next runs (the run's first count of a counter gets the first
 *     value, and so on): a value taken by a request that then fails or
 *     is run no more is a gap in the count, never handed out twice;
 *   - after store_replay_last(), reads the replay lacks are made at once:
 *     a request whose reads keep changing is run a bounded number of times.
 *
 * Every read the final run sees was read from the server after the
 * request came, as the waiting reads would: in the same order for one
 * request, possibly a little earlier. A read on the store's link sees the
 * writes this process sent before it; a reader thread's connection is
 * another, so its read may not see a write the node has sent but Redis
 * has not yet acknowledged. Nothing acknowledged to a client is missed
 * either way, since a write is acknowledged only once stored.
 *
 * A cache that keeps what it reads (an organisation's division) keeps
 * only what a read answered: STORE_EAGAIN is an error to it, and the next
 * run reads the answer from the replay and keeps that.
 *
 * Only stores whose reads travel (store_reads_later()) have replays; on
 * others store_replay_new() returns NULL and requests run as before. */
#ifndef YJT_STORE_REPLAY_H
#define YJT_STORE_REPLAY_H

#include "records/store.h"

#include <stdbool.h>

struct store_replay;

/* A replay for one request, or NULL when st reads at once. */
struct store_replay *store_replay_new(struct store *st);
/* Whether store_replay_new() makes replays on st. */
bool store_replays(const struct store *st);
/* Drops the request's hold on rp (NULL is fine); reads still in flight
 * keep it until they are answered, then it is freed. */
void store_replay_free(struct store_replay *rp);
/* Runs the store's reads against rp until store_replay_end(), which
 * returns how many reads this run sent (0: the run saw all it read). */
void store_replay_begin(struct store_replay *rp);
int store_replay_end(struct store_replay *rp);
/* How many reads the current run has sent so far: its answer, once any,
 * will be thrown away. */
int store_replay_sent(const struct store_replay *rp);
/* ready(ud) runs once from the main loop when every read sent is
 * answered (failed reads too: the next run sees their error). */
void store_replay_wait(struct store_replay *rp, void (*ready)(void *ud), void *ud);
/* From the next run on, reads rp lacks are made at once. */
void store_replay_last(struct store_replay *rp);
/* After a run that sent reads (store_replay_end() > 0): counts it, makes
 * the next run the last (store_replay_last) once max_runs were thrown,
 * and tells ready(ud) when its reads are in (store_replay_wait). */
void store_replay_rerun(struct store_replay *rp, int max_runs, void (*ready)(void *ud), void *ud);
/* For a cache that sends its own reads (the accounts'): inside a run that
 * may still send reads, counts one the caller sent as the run's (the run
 * is then thrown) and returns the replay, to be handed to
 * store_replay_held_done() from the main loop once the read is answered;
 * else NULL, and the caller reads at once. */
struct store_replay *store_replay_hold(struct store *st);
/* tell: false while the caller closes (the owner is not run again). */
void store_replay_held_done(struct store_replay *rp, bool tell);

/* How many reads the readers of this process made, and how many runs were
 * thrown away for want of a read (for /metrics). */
void store_replay_counts(uint64_t *reads, uint64_t *reruns);

/* For store.c: a read as the replay sees it. */
enum replay_op {
    REPLAY_DOC_GET,
    REPLAY_DOC_LIST,
    REPLAY_INDEX_FIND,
    REPLAY_SEQ_RANGE,
    REPLAY_SEQ_LAST,
    REPLAY_KV_GET,
    REPLAY_TS_RANGE,
    REPLAY_COUNTER, /* a counter taken: see store_counter_incr() */
};

struct replay_call {
    enum replay_op op;
    const char *a, *b, *c; /* collection or key, id or field, value */
    int64_t x, y, z;       /* after_seq; a series' key, from, to; a counter's step, its nth */
    int limit;
    bool flag; /* prefix, or newest_first */
    store_doc_cb doc_cb;
    store_seq_cb seq_cb;
    store_ts_chunk_cb ts_cb;
    void *ud;
    json_t **doc_out;
    char **value_out;
    int64_t *int_out; /* seq_last's seq */
};

/* Answers q from st's replay, sends it, or returns STORE_DIRECT: the
 * caller makes the read itself, at once. */
#define STORE_DIRECT 2
int store_replay_read(struct store *st, const struct replay_call *q);
/* For a write inside a run: true if it must be refused (STORE_EAGAIN). */
bool store_replay_refuses_write(struct store *st);
/* store_close(): stops st's reader threads (reads in flight fail), and
 * brackets the telling of the reads it drops (their replays are not run
 * again). */
void store_replay_close(struct store *st);
void store_replay_closing(bool on);

#endif
