/* Notices (通知): a regulator publishes a notice to an audience inside its
 * jurisdiction (every enterprise of a division, a list of enterprises, or
 * the regulators of its sub-divisions); each recipient gets a `notice`
 * push; recipients record read receipts; the publisher sees who has read
 * it and who has not.
 *
 * Stored as documents: "notices" (the notice and its recipient list, fixed
 * at publication) and "notice_reads" (one per reader, indexed by notice).
 * Main loop only. */
#ifndef YJT_NOTICE_H
#define YJT_NOTICE_H

#include "common/errors.h"
#include "records/jurisdiction.h"
#include "records/store.h"

#include <jansson.h>

#define NOTICE_TITLE_MAX 200
#define NOTICE_BODY_MAX 20000
#define NOTICE_ATTACHMENTS_MAX 10
#define NOTICE_ENTERPRISES_MAX 500
#define NOTICE_RECIPIENTS_MAX 20000
#define NOTICE_TTL_S (30 * 86400)

void notice_init(struct store *st);

/* How a publication ended: ERR_NONE with the notice's id and its number
 * of recipients, or the contract error and why (static). Borrowed. */
typedef void (*notice_done_cb)(enum err_code err, const char *why, const char *id, int recipients,
                               void *ud);
/* Publishes req ({"title","body","attachments"?,"audience","require_read"?})
 * for publisher (a gov user: id and division); cb tells how it ended,
 * once: at once for a request refused as it stands, else from the main
 * loop once the audience was read (reads that do not hold the loop,
 * store_index_find_later) and the notice stored. */
void notice_publish_later(const char *publisher_id, const struct principal *publisher, json_t *req,
                          notice_done_cb cb, void *ud);
/* Records that user_id has read notice_id; *read_at_out gets the time of
 * the first read. ERR_NOT_FOUND if there is no such notice or user_id is
 * not among its recipients. */
enum err_code notice_read(const char *notice_id, const char *user_id, int64_t *read_at_out);
/* The whole notice (its push may carry the body cut: payload.body_cut) for
 * a recipient, its publisher or an admin: {"notice_id","title","body",
 * "attachments","require_read","created_at","publisher",
 * "publisher_division"}, new reference in *out. ERR_NOT_FOUND for anyone
 * else, as for a notice that does not exist. */
enum err_code notice_get(const char *notice_id, const char *viewer_id, const char *viewer_role,
                         json_t **out);
/* The receipts of notice_id for its publisher (or an admin):
 * {"notice_id","total","read":[…],"unread":[…]}, new reference in *out. */
enum err_code notice_receipts(const char *notice_id, const char *viewer_id, const char *viewer_role,
                              json_t **out, const char **why);

#endif
