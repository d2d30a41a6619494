/* Audit events as an append-only store sequence. */
#include "records/audit.h"

#include "common/clock.h"

int audit_log(struct store *st, const char *actor, const char *action, const char *target,
              const char *result, const char *source)
{
    json_t *ev = json_pack("{s:I, s:s, s:s, s:s, s:s}", "ts", (json_int_t)clock_now_ms(), "actor",
                           actor ? actor : "-", "action", action, "target", target ? target : "-",
                           "result", result ? result : "ok");
    if (source)
        json_object_set_new(ev, "source", json_string(source));
    int rc = store_seq_append(st, "audit", ev, NULL);
    json_decref(ev);
    return rc;
}

int audit_each_recent(struct store *st, int limit, store_seq_cb cb, void *ud)
{
    return store_seq_range(st, "audit", 0, limit, true, cb, ud);
}
