/* libFuzzer target: the call and patrol state machines driven by arbitrary
 * message sequences from four users (a city regulator, a district
 * regulator and two plant users), with devices going offline and coming
 * back, and timers (1 ms ring time and grace) firing between messages.
 *
 * Input: lines; each line is <actor byte><action byte><JSON object> (actor
 * bit 7 with action bit 6: wait for timers after it). The
 * action picks a handler (or a device going offline / online); a request
 * without "call_id" gets the last call id seen, an invite without "to"
 * calls the next user, so short inputs reach deep states. Afterwards every
 * call is ended and freed, so ASan sees any leak or use after free. */
#include "common/clock.h"
#include "push/presence.h"
#include "records/account.h"
#include "records/calls.h"
#include "records/org.h"
#include "signaling/call.h"
#include "signaling/patrol.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

#define USERS 4

static struct store *st;
static char *uids[USERS];
static const char *const roles[USERS] = {"gov", "gov", "corp", "corp"};
static const char *const orgs[USERS] = {"4401", "440106", "e1", "e1"};
static const char *const positions[USERS] = {"inspector", "inspector", "principal", "clerk"};
static char last_call[64];
static char last_patrol[64];
static int fake_conn[USERS * 2];

static void hook_send(const char *user_id, const char *device_id, json_t *ev)
{
    (void)user_id;
    (void)device_id;
    json_decref(ev);
}

static void hook_missed(const char *user_id, json_t *payload)
{
    (void)user_id;
    (void)payload;
}

static void on_reply(void *ctx, enum err_code err, const char *message, json_t *fields)
{
    (void)ctx;
    (void)message;
    if (err == ERR_NONE || fields) {
        const char *id = json_string_value(json_object_get(fields, "call_id"));
        if (id)
            g_strlcpy(last_call, id, sizeof(last_call));
        id = json_string_value(json_object_get(fields, "patrol_id"));
        if (id)
            g_strlcpy(last_patrol, id, sizeof(last_patrol));
    }
    json_decref(fields);
}

static void start_calls(void)
{
    /* No media server (no certificate): "mode":"sfu" is refused. */
    struct call_limits lim = {.ring_timeout_ms = 1,
                              .grace_ms = 1,
                              .max_sdp = 4096,
                              .max_candidates = 8,
                              .calls_per_user = 2,
                              .invites_per_min = 1000,
                              .max_joiners = 2,
                              .ice = {"stun:s", "turn:t", "k", 60}};
    struct call_hooks hooks = {hook_send, hook_missed};
    call_init(st, &lim, &hooks);
    patrol_init(st, 0, 4);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* in memory where there is /dev/shm: the store flushes every input */
    char *dir = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR)
                    ? g_mkdtemp(g_strdup("/dev/shm/yjt-fuzz-call-XXXXXX"))
                    : g_dir_make_tmp("yjt-fuzz-call-XXXXXX", NULL);
    char *err = NULL;
    st = store_open_sqlite(dir, &err);
    if (!st || org_init(st) != STORE_OK || account_init(st) != STORE_OK ||
        calls_init(st) != STORE_OK)
        __builtin_trap();
    store_set_batching(st, true, NULL, NULL);
    const char *why;
    org_enterprise_add(st, "e1", "Plant", "440106", true, &why);
    org_enterprise_add(st, "e2", "Other", "440113", true, &why);
    for (int i = 0; i < USERS; i++) {
        char name[16];
        g_snprintf(name, sizeof(name), "user%d", i);
        struct account_new req = {name,         "password-1", roles[i], orgs[i],
                                  positions[i], NULL,         NULL,     1000};
        if (account_create(st, &req, &uids[i], &why) != STORE_OK)
            __builtin_trap();
    }
    store_commit(st);
    presence_init(NULL, NULL);
    for (int i = 0; i < USERS; i++)
        presence_add(uids[i], &fake_conn[i * 2], "d0", "android", 0);
    start_calls();
    g_free(dir);
    return 0;
}

typedef void (*handler)(const struct call_actor *, json_t *, const struct call_reply *);

static const handler handlers[] = {
    call_invite,  call_ringing,   call_accept,      call_decline, call_cancel,
    call_hangup,  call_candidate, call_renegotiate, call_resume,  call_ice_servers,
    patrol_start, patrol_note,    patrol_finish,
};
#define ACTIONS (G_N_ELEMENTS(handlers) + 2) /* + offline, online */

static void step(int actor, int action, json_t *msg)
{
    const char *device = (action & 0x80) ? "d1" : "d0";
    action = (action & 0x7f) % (int)ACTIONS;
    if (action == (int)G_N_ELEMENTS(handlers)) {
        presence_remove(uids[actor], presence_conn_of(uids[actor], device), device);
        call_device_offline(uids[actor], device);
        return;
    }
    if (action == (int)G_N_ELEMENTS(handlers) + 1) {
        int64_t since = 1 + (device[1] == '1'); /* as rung from presence: rung once */
        presence_add(uids[actor], &fake_conn[actor * 2 + (device[1] == '1')], device, "ios", since);
        call_device_online(uids[actor], device, since);
        return;
    }
    if (!json_object_get(msg, "call_id") && last_call[0])
        json_object_set_new(msg, "call_id", json_string(last_call));
    if (!json_object_get(msg, "patrol_id") && last_patrol[0] && action >= 10)
        json_object_set_new(msg, "patrol_id", json_string(last_patrol));
    if (handlers[action] == call_invite && !json_object_get(msg, "to"))
        json_object_set_new(msg, "to", json_pack("{s:s}", "user", uids[(actor + 2) % USERS]));
    if (handlers[action] == call_invite && !json_object_get(msg, "sdp"))
        json_object_set_new(msg, "sdp", json_string("v=0"));
    if (handlers[action] == call_accept && !json_object_get(msg, "sdp"))
        json_object_set_new(msg, "sdp", json_string("v=0"));
    struct call_actor a = {uids[actor], device, roles[actor], orgs[actor]};
    struct call_reply r = {on_reply, NULL};
    handlers[action](&a, msg, &r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    last_call[0] = last_patrol[0] = '\0';
    const uint8_t *p = data, *end = data + size;
    while (p + 2 <= end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *stop = nl ? nl : end;
        json_t *msg = json_loadb((const char *)p + 2,
                                 (size_t)(stop - p - 2) > 0 ? (size_t)(stop - p - 2) : 0, 0, NULL);
        if (!json_is_object(msg)) {
            json_decref(msg);
            msg = json_object();
        }
        step(p[0] % USERS, p[1], msg);
        json_decref(msg);
        /* let 1 ms timers (ring timeout, grace periods) fire */
        if ((p[1] & 0x40) && (p[0] & 0x80)) {
            g_usleep(1500);
            while (g_main_context_iteration(NULL, FALSE))
                ;
        }
        p = stop + (nl ? 1 : 0);
    }
    call_shutdown();
    while (g_main_context_iteration(NULL, FALSE))
        ;
    store_commit(st);
    for (int i = 0; i < USERS; i++) {
        presence_add(uids[i], &fake_conn[i * 2], "d0", "android", 0);
        presence_remove(uids[i], presence_conn_of(uids[i], "d1"), "d1");
    }
    start_calls();
    return 0;
}
