/* Video patrols (视频巡查): a regulator's round of video calls to the
 * plants of its jurisdiction. patrol.start makes an ordered queue (a list
 * of enterprises, or every key-supervised one in reach), calls made with
 * the patrol's id belong to it, patrol.note records what was found at each
 * plant, patrol.finish closes it and gives the report. Coverage says, for
 * one business day and division, which key-supervised plants had an
 * answered patrol call of at least patrol_min_call_s seconds: the figure
 * regulators are assessed on each month. */
#ifndef YJT_PATROL_H
#define YJT_PATROL_H

#include "records/store.h"
#include "signaling/call.h"

void patrol_init(struct store *st, int min_call_s, int max_items);
void patrol_shutdown(void);
/* Reads patrol id without waiting, where the store reads later, so that
 * an invite naming it is checked from memory: done(ud) from the loop once
 * answered. False if nothing was sent (done is not told). */
bool patrol_read_ahead(const char *id, void (*done)(void *ud), void *ud);

void patrol_start(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void patrol_note(const struct call_actor *a, json_t *msg, const struct call_reply *r);
void patrol_finish(const struct call_actor *a, json_t *msg, const struct call_reply *r);

/* May user_id place a call to enterprise (may be NULL) under patrol_id?
 * ERR_NONE, or a code with a reason in *why (static). */
enum err_code patrol_check_call(const char *patrol_id, const char *user_id, const char *enterprise,
                                const char **why);

/* The report of patrol id as seen by principal (role, org, user id):
 * ERR_NONE with *out set, or a code with *why. */
enum err_code patrol_report(const char *id, const char *role, const char *org, const char *user_id,
                            json_t **out, const char **why);
/* Coverage of key enterprises in division on business date, for a
 * principal who must reach that division. */
enum err_code patrol_coverage(const char *date, const char *division, const char *role,
                              const char *org, json_t **out, const char **why);

#endif
