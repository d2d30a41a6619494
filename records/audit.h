/* The audit log: who logged in (or failed to), who changed which account.
 * An append-only sequence "audit" in the store; one JSON item per event:
 * {"ts", "actor", "action", "target", "result", "source"?}. */
#ifndef YJT_AUDIT_H
#define YJT_AUDIT_H

#include "records/store.h"

/* Appends an event. actor/target may be NULL. Returns a store code. */
int audit_log(struct store *st, const char *actor, const char *action, const char *target,
              const char *result, const char *source);
/* Calls cb for the newest limit events, newest first. */
int audit_each_recent(struct store *st, int limit, store_seq_cb cb, void *ud);

#endif
