/* WebSocket side of calls and patrols (see call_api.h). A request becomes a
 * call_actor (the connection's user and device) and a call_reply that
 * answers on the same connection; events from signaling/ go to the
 * connection presence holds for the device. */
#include "server/call_api.h"

#include "common/log.h"
#include "media/dtls.h"
#include "media/srtp.h"
#include "push/inbox.h"
#include "push/presence.h"
#include "server/conn.h"
#include "server/server.h"
#include "server/ws.h"
#include "signaling/call.h"
#include "signaling/patrol.h"

#include <string.h>

#define MISSED_TTL_S (7 * 86400)

/* The SFU's certificate and the addresses it gathers on. */
static struct dtls_cert *media_cert;
static char **media_addrs;
static bool srtp_up;

struct ws_ctx {
    struct conn *c;
    json_t *id;
};

static void ws_reply(void *ctx, enum err_code err, const char *message, json_t *fields)
{
    struct ws_ctx *w = ctx;
    if (err == ERR_NONE) {
        conn_reply(w->c, w->id, fields);
        return;
    }
    if (!fields) {
        conn_reply_error(w->c, w->id, err, message);
        return;
    }
    /* an error with extra fields (glare names the winning call) */
    json_t *msg = json_pack("{s:O, s:b, s:{s:s, s:s}}", "re", w->id, "ok", 0, "error", "code",
                            err_name(err), "message", message);
    json_object_update(msg, fields);
    json_decref(fields);
    conn_send(w->c, msg, "reply");
}

typedef void (*sig_fn)(const struct call_actor *, json_t *, const struct call_reply *);

static void dispatch(struct conn *c, json_t *id, json_t *msg, sig_fn fn)
{
    struct ws_ctx w = {c, id};
    struct call_actor a = {c->user_id, c->device_id, c->role, c->org};
    struct call_reply r = {ws_reply, &w};
    fn(&a, msg, &r);
}

#define HANDLER(name, fn)                                                                          \
    static void name(struct conn *c, json_t *id, json_t *msg)                                      \
    {                                                                                              \
        dispatch(c, id, msg, fn);                                                                  \
    }

HANDLER(h_invite, call_invite)
HANDLER(h_ringing, call_ringing)
HANDLER(h_accept, call_accept)
HANDLER(h_decline, call_decline)
HANDLER(h_cancel, call_cancel)
HANDLER(h_hangup, call_hangup)
HANDLER(h_candidate, call_candidate)
HANDLER(h_renegotiate, call_renegotiate)
HANDLER(h_resume, call_resume)
HANDLER(h_join, call_join)
HANDLER(h_leave, call_leave)
HANDLER(h_ice, call_ice_servers)
HANDLER(h_patrol_start, patrol_start)
HANDLER(h_patrol_note, patrol_note)
HANDLER(h_patrol_finish, patrol_finish)

const struct ws_handler call_handlers[] = {
    {"call.invite", h_invite, true},          {"call.ringing", h_ringing, true},
    {"call.accept", h_accept, true},          {"call.decline", h_decline, true},
    {"call.cancel", h_cancel, true},          {"call.hangup", h_hangup, true},
    {"call.candidate", h_candidate, true},    {"call.renegotiate", h_renegotiate, true},
    {"call.resume", h_resume, true},          {"ice.servers", h_ice, true},
    {"call.join", h_join, true},              {"call.leave", h_leave, true},
    {"patrol.start", h_patrol_start, true},   {"patrol.note", h_patrol_note, true},
    {"patrol.finish", h_patrol_finish, true}, {NULL, NULL, false},
};

/* The event's type as a metrics label that outlives the event. */
static const char *label_of(json_t *ev)
{
    static const char *const known[] = {"call.incoming",
                                        "call.ringing",
                                        "call.accepted",
                                        "call.candidate",
                                        "call.ended",
                                        "call.renegotiate",
                                        "call.answered_elsewhere",
                                        "call.peer_disconnected",
                                        "call.peer_reconnected",
                                        "call.participant_joined",
                                        "call.participant_left"};
    const char *t = json_string_value(json_object_get(ev, "type"));
    for (size_t i = 0; t && i < G_N_ELEMENTS(known); i++)
        if (strcmp(known[i], t) == 0)
            return known[i];
    return "call.other";
}

static void send_copy(void *conn, void *ud)
{
    json_t *ev = ud;
    conn_send(conn, json_deep_copy(ev), label_of(ev));
}

static void hook_send(const char *user_id, const char *device_id, json_t *ev)
{
    if (device_id) {
        struct conn *c = presence_conn_of(user_id, device_id);
        if (c)
            conn_send(c, ev, label_of(ev));
        else
            json_decref(ev);
        return;
    }
    presence_each_conn(user_id, send_copy, ev);
    json_decref(ev);
}

/* A missed call: a durable push the callee finds on any device, now or
 * after it comes back (and through the push gateway when it is away). */
static void hook_missed(const char *user_id, json_t *payload)
{
    const char *name =
        json_string_value(json_object_get(json_object_get(payload, "from"), "display_name"));
    char body[256];
    g_snprintf(body, sizeof(body), "%s 呼叫了您", name && *name ? name : "监管人员");
    int rc = inbox_push(user_id, "call_missed", "high", MISSED_TTL_S, "未接视频通话", body, payload,
                        NULL);
    if (rc != STORE_OK)
        log_error("call", "cannot leave user=%s a missed-call push (%d)", user_id, rc);
}

void call_api_init(void)
{
    const struct config *cfg = &server.cfg;
    struct call_limits lim = {
        .ring_timeout_ms = cfg->ring_timeout_s * 1000,
        .grace_ms = cfg->call_grace_s * 1000,
        .max_sdp = cfg->call_max_sdp,
        .max_candidates = cfg->call_max_candidates,
        .calls_per_user = cfg->calls_per_user,
        .invites_per_min = cfg->invites_per_min,
        .max_joiners = cfg->call_max_joiners,
        .ice = {cfg->stun_urls, cfg->turn_urls, cfg->turn_secret, cfg->turn_ttl_s},
    };
    /* The SFU: one certificate for the process (its fingerprint is in
     * every SDP the server writes). Without it calls stay peer-to-peer. */
    srtp_up = media_srtp_init() == 0;
    if (srtp_up)
        media_cert = dtls_cert_new();
    if (!media_cert)
        log_error("call", "the media server could not start (SRTP or certificate): sfu calls"
                          " are refused");
    media_addrs = g_strsplit(cfg->media_addresses, ",", -1);
    for (char **a = media_addrs; *a; a++)
        g_strstrip(*a);
    bool recording = cfg->recording_dir[0] != '\0';
    lim.media.sfu_default = strcmp(cfg->call_mode, "sfu") == 0 ||
                            (recording && strcmp(cfg->call_mode, "auto") == 0);
    lim.media.record_dir = recording ? cfg->recording_dir : NULL;
    lim.media.public_ip = cfg->media_public_ip[0] ? cfg->media_public_ip : NULL;
    lim.media.ice_tcp = cfg->media_ice_tcp;
    lim.media.cert = media_cert;
    lim.media.addresses = (const char *const *)media_addrs;
    lim.media.max_bitrate = (uint64_t)cfg->media_max_kbps * 1000;
    struct call_hooks hooks = {hook_send, hook_missed};
    call_init(server.store, &lim, &hooks);
    patrol_init(server.store, cfg->patrol_min_call_s, cfg->patrol_max_items);
}

void call_api_shutdown(void)
{
    call_shutdown();
    dtls_cert_free(media_cert);
    media_cert = NULL;
    g_strfreev(media_addrs);
    media_addrs = NULL;
    if (srtp_up)
        media_srtp_shutdown();
    srtp_up = false;
}
