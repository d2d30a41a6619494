/* The durable per-user inbox: every push to a user is appended to the
 * user's sequence in the store ("inbox/USER"), where its seq rises by one
 * per push, before any device is told it exists. Each device keeps its own
 * acknowledged position (cumulative, stored), and a device that was away
 * reads what it missed with inbox_resume_later().
 *
 * This module never touches a connection: once a push is stored it hands
 * the ready-made `push` event to the deliver callback the server registered
 * at start, and the server sends it to the user's live devices. Observers
 * (the push gateway) hear of each stored push the same way. Main loop
 * only. */
#ifndef YJT_INBOX_H
#define YJT_INBOX_H

#include "records/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INBOX_KIND_MAX 32
#define INBOX_TITLE_MAX 200
#define INBOX_BODY_MAX 4000
#define INBOX_PAYLOAD_MAX 16384 /* bytes of the payload, serialised */
#define INBOX_TTL_MAX_S (30 * 86400)
#define INBOX_DEVICE_MAX 128

struct inbox_limits {
    int64_t max_age_s; /* pushes older than this are trimmed */
    int max_count;     /* pushes kept per user (a few more until the next trim) */
};

/* Called once per stored push with its `push` event, serialised (compact
 * JSON, len bytes, borrowed): the server sends it to every live device of
 * user_id. */
typedef void (*inbox_deliver_cb)(const char *user_id, int64_t seq, const char *text, size_t len,
                                 void *ud);
/* Called once per stored batch (one push to n users), after delivery,
 * with the stored item and each user's seq. */
typedef void (*inbox_observer_cb)(const char *const *user_ids, const int64_t *seqs, int n,
                                  json_t *item, void *ud);
/* Called by inbox_resume_later() per push to send; returns false if the
 * push was not taken (the caller's budget is spent): the resume stops
 * before it. */
typedef bool (*inbox_item_cb)(int64_t seq, json_t *event, void *ud);

void inbox_init(struct store *st, const struct inbox_limits *limits, inbox_deliver_cb cb, void *ud);
void inbox_shutdown(void);
/* Does up to max of the trims fan-outs put off (from a timer, a few
 * hundred at a time); returns how many it did. */
int inbox_trim_due(int max);
/* A push to at least INBOX_FANOUT_MIN users calls the fan-out hook once
 * it is stored (BEGIN), every INBOX_FANOUT_STEP deliveries (PUMP) and after
 * the last one (END): the server starts the store's flush at BEGIN and
 * sends what is durable at each PUMP, so the first deliveries go out while
 * the last are being queued. */
#define INBOX_FANOUT_MIN 256
#define INBOX_FANOUT_STEP 64
enum inbox_fanout { INBOX_FANOUT_BEGIN, INBOX_FANOUT_PUMP, INBOX_FANOUT_END };
typedef void (*inbox_fanout_cb)(enum inbox_fanout step, void *ud);
void inbox_on_fanout(inbox_fanout_cb cb, void *ud);

/* The server's batches of writes (server/commit.c): the one a write joins
 * now, whether one was judged (written and answered, or failed), whether
 * it failed. A push stored later is announced (delivered, its caller
 * told) only once its batch is judged, and not at all if the batch
 * failed: a store that confirms a batch after its replies (Redis with
 * ?wait=N) may lose a write it answered. Without them (tests) a push is
 * announced as soon as its write is answered. */
struct inbox_batches {
    uint64_t (*now)(void);
    bool (*judged)(uint64_t gen);
    bool (*failed)(uint64_t gen);
};
void inbox_set_batches(const struct inbox_batches *b);
/* The server judged a batch: the pushes held for it go on. */
void inbox_batches_judged(void);

/* Adds an observer (at most a few: the push gateway, metrics). */
void inbox_observe(inbox_observer_cb cb, void *ud);

/* Stores a push for user_id and then delivers it to every online device of
 * the user. kind is 1..32 chars (alarm, reminder, notice, call_missed, …),
 * priority "high" or "normal", ttl_s 1..30 days, title up to 200 chars and
 * body up to 4000 (either may be NULL), payload an object (borrowed, may be
 * NULL) of at most 16 KiB. Returns 0 with *seq_out (may be NULL) set,
 * STORE_EINVAL for bad arguments, or another negative STORE_E… code when
 * the store failed (nothing was delivered then). */
int inbox_push(const char *user_id, const char *kind, const char *priority, int64_t ttl_s,
               const char *title, const char *body, json_t *payload, int64_t *seq_out);
/* The same push to n users, stored in one transaction (all or none), then
 * delivered; seqs_out (may be NULL) gets each user's seq. */
int inbox_push_many(const char *const *user_ids, int n, const char *kind, const char *priority,
                    int64_t ttl_s, const char *title, const char *body, json_t *payload,
                    int64_t *seqs_out);
/* inbox_push_many() without waiting for a store that would wait for a
 * server (Redis): the push is a write of the current batch (the server
 * tells nothing of the batch, replies included, before it is durable, and
 * fails them if it fails), and it is delivered once stored, from the
 * loop. On other stores, inbox_push_many(). 0 when sent (or stored), or a
 * STORE_E… code (nothing will be delivered). */
int inbox_push_many_later(const char *const *user_ids, int n, const char *kind,
                          const char *priority, int64_t ttl_s, const char *title, const char *body,
                          json_t *payload);
/* The same, whose caller hears of it: done(rc, seqs (each user's seq,
 * NULL unless STORE_OK), n, ud) once the push is stored and delivered
 * (or failed; also when the store closes first), from the loop; on
 * other stores at once. A code other than 0 is returned instead when
 * nothing was sent (done is not told). With journal_key, the item is
 * also appended to that sequence in the same write (as
 * inbox_push_many_journaled; n may then be 0: a journal entry alone). */
typedef void (*inbox_stored_cb)(int rc, const int64_t *seqs, int n, void *ud);
int inbox_push_many_then(const char *const *user_ids, int n, const char *journal_key,
                         const char *kind, const char *priority, int64_t ttl_s, const char *title,
                         const char *body, json_t *payload, inbox_stored_cb done, void *ud);
/* inbox_push_many() that also appends the stored item to the sequence
 * journal_key in the same transaction, so the caller can later tell for
 * sure whether this batch was stored (the scheduler's "sent" record). */
int inbox_push_many_journaled(const char *const *user_ids, int n, const char *journal_key,
                              const char *kind, const char *priority, int64_t ttl_s,
                              const char *title, const char *body, json_t *payload,
                              int64_t *seqs_out);

/* The newest seq of the user's inbox (0 if none). */
int inbox_head(const char *user_id, int64_t *seq_out);
/* The same, read later (store_seq_last_later): cb(rc, head, ud) from the
 * main loop. */
int inbox_head_later(const char *user_id, store_count_cb cb, void *ud);
/* Reads the pushes after after_seq in order, at most limit of them, and
 * the head, in one read (store_seq_range_later: without holding the loop
 * on Redis); after_seq < 0 means the device's acknowledged position (read
 * first). cb gets the event of each push that has not expired (expired
 * ones are passed over), then done the code (STORE_EINVAL: after_seq is
 * past the head), the seq up to which the resume went, whether newer
 * pushes remain, and the head, from the main loop. 0, or a store code
 * (neither callback is called then). */
typedef void (*inbox_resumed_cb)(int rc, int64_t last, bool more, int64_t head, void *ud);
int inbox_resume_later(const char *user_id, const char *device_id, int64_t after_seq, int limit,
                       inbox_item_cb cb, inbox_resumed_cb done, void *ud);
/* The stored pushes after *after_seq, oldest first, at most limit,
 * expired ones included (with "expired": true): a new array in
 * *items_out. What the inbox's limits (count, age) are due to drop is left
 * out (read past, not written: *after_seq moves past it); a reader calls
 * inbox_upkeep() after, which trims it (a write: at the end of a request,
 * after its reads, see records/store_replay.h). */
int inbox_list(const char *user_id, int64_t *after_seq, int limit, json_t **items_out);
void inbox_upkeep(const char *user_id, int64_t head);

/* Records that device_id of user_id has everything up to seq, without
 * waiting where the store would (one script on Redis, part of the open
 * batch). Acks are cumulative: a lower seq than the stored one changes
 * nothing. cb(rc, acked, ud) from the main loop, acked the device's
 * position after it, rc STORE_EINVAL for a seq past the head. 0, or a
 * store code (cb never called then; STORE_EINVAL for a negative seq). */
int inbox_ack_later(const char *user_id, const char *device_id, int64_t seq, store_count_cb cb,
                    void *ud);
/* The highest position any device of the user has acknowledged. */
int inbox_acked_any(const char *user_id, int64_t *seq_out);
/* The store key inbox_acked_any reads (a kv holding the position). */
char *inbox_ackmax_key(const char *user_id);

/* The `push` event for a stored item (new reference). */
json_t *inbox_event(const char *user_id, int64_t seq, json_t *item);
/* The push id of (user_id, seq), as sent in events and to the gateway. */
char *inbox_push_id(const char *user_id, int64_t seq);

#endif
