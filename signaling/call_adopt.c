/* Taking over an answered call whose server is gone (see call.h). */
#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "records/calls.h"
#include "signaling/call_internal.h"

#include <string.h>

/* The answered peer-to-peer call a stored record describes, or NULL with
 * *why when the record cannot be taken over. */
static struct call *from_record(json_t *rec, const char **why)
{
    const char *id = jx_str(rec, "id"), *state = jx_str(rec, "state");
    const char *caller = jx_str(rec, "caller"), *caller_dev = jx_str(rec, "caller_device");
    json_t *by = json_object_get(rec, "answered_by");
    const char *callee = jx_str(by, "user"), *callee_dev = jx_str(by, "device");
    if (!id || !state || strcmp(state, "active") != 0) {
        *why =
            state && strcmp(state, "ended") == 0 ? "the call is over" : "the call was not answered";
        return NULL;
    }
    if (jx_str(rec, "mode") && strcmp(jx_str(rec, "mode"), "sfu") == 0) {
        *why = "its media were on that server";
        return NULL;
    }
    if (!caller || !caller_dev || !callee || !callee_dev) {
        *why = "its record is incomplete";
        return NULL;
    }
    struct call *c =
        call_alloc(g_strdup(id), CALL_ACTIVE, caller, caller_dev, jx_int(rec, "invite_at", 0));
    c->callee.user_id = g_strdup(callee);
    c->callee.device_id = g_strdup(callee_dev);
    c->record = json_deep_copy(rec);
    c->saved = true;
    c->incoming = json_object();
    c->answer_at = jx_int(rec, "answer_at", 0);
    return c;
}

int call_adopt(const char *call_id, const char **why)
{
    if (call_known(call_id))
        return 0;
    json_t *rec = NULL;
    int rc = calls_get(call_store, call_id, &rec);
    if (rc != STORE_OK) {
        *why = rc == STORE_ENOTFOUND ? "no such call" : "store unavailable";
        return rc == STORE_ENOTFOUND ? -1 : -2;
    }
    struct call *c = from_record(rec, why);
    if (!c) {
        /* what cannot go on is over: the record says so (once) */
        const char *state = jx_str(rec, "state");
        if (state && strcmp(state, "ended") != 0) {
            calls_end_failed(rec, clock_now_ms());
            calls_put(call_store, call_id, rec);
            log_info("call", "call=%s held by a server that is gone: ended (%s)", call_id, *why);
        }
        json_decref(rec);
        return -1;
    }
    json_decref(rec);
    /* Both parties are away until they resume here, within the grace
     * period, as after a drop. */
    c->caller.grace_timer = call_timer_start(c, call_lim.grace_ms, 0, call_on_grace_over);
    c->callee.grace_timer = call_timer_start(c, call_lim.grace_ms, 1, call_on_grace_over);
    g_hash_table_insert(call_table, c->id, c);
    call_link_user(c, c->caller.user_id);
    call_link_user(c, c->callee.user_id);
    call_busy_update(c);
    log_info("call", "call=%s taken over from a server that is gone; waiting %d ms for its parties",
             c->id, call_lim.grace_ms);
    return 0;
}
