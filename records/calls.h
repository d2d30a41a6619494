/* Call and patrol records: the durable side of video calls and video
 * patrols (视频巡查). The call state machine (signaling/call.c) builds each
 * call's document and writes it here at invite, answer and end; patrols
 * (signaling/patrol.c) keep their queue, notes and report here.
 *
 * Collections and their indexes:
 *   "calls":   parties (every user involved), enterprise, carrier,
 *              division, patrol_id, date (business date of the invite),
 *              state (ringing, active, ended)
 *   "patrols": owner, division, date */
#ifndef YJT_CALLS_H
#define YJT_CALLS_H

#include "records/store.h"

int calls_init(struct store *st);

/* Writes (creates or replaces) the document of call id. */
int calls_put(struct store *st, const char *id, json_t *doc);
/* The first write of a call, under an id just made (store_doc_put_new:
 * cheaper than calls_put, which works out the rows the stored record had,
 * and on Redis it does not wait for the server). */
int calls_create(struct store *st, const char *id, json_t *doc);
int calls_get(struct store *st, const char *id, json_t **out);
/* Calls whose indexed field equals value (or starts with it). */
int calls_find(struct store *st, const char *field, const char *value, bool prefix, store_doc_cb cb,
               void *ud);
/* Marks the call record doc ended "failed" at now_ms (with its duration
 * if it was answered); the caller stores it. */
void calls_end_failed(json_t *doc, int64_t now_ms);
/* Marks every call still ringing or active as ended "failed" at now_ms
 * (after a restart nobody holds their state any more), but those keep
 * keeps. *count gets how many. It reads, then writes: it may be run
 * against a replay of its reads (records/store_replay.h). */
int calls_recover(struct store *st, int64_t now_ms, bool (*keep)(const char *id, void *ud),
                  void *ud, int *count);

int patrols_put(struct store *st, const char *id, json_t *doc);
int patrols_get(struct store *st, const char *id, json_t **out);
int patrols_find(struct store *st, const char *field, const char *value, bool prefix,
                 store_doc_cb cb, void *ud);

#endif
