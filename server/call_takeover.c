/* Taking over the calls of a node that died, and the sweep of the calls
 * left open (see call_takeover.h). */
#include "server/call_takeover.h"

#include "common/clock.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "push/presence.h"
#include "records/calls.h"
#include "records/store_replay.h"
#include "server/bus.h"
#include "server/cluster.h"
#include "server/server.h"
#include "signaling/call.h"

#include <string.h>

struct waiter {
    take_cb done;
    void *ud;
};

/* A takeover under way: one step of it is out at a time (two reads at
 * once for the record and the offer). */
struct takeover {
    char *call_id, *dead;
    GArray *waiters; /* struct waiter, told in order */
    json_t *rec;
    char *offer;
    int out;      /* answers awaited */
    int read_rc;  /* the worst of the record's and the offer's reads */
    bool claimed; /* the claim is this node's: dropped if it cannot go on */
    bool over;    /* told; freed once nothing is out */
};

static GHashTable *under_way; /* call id -> struct takeover* */

static void takeover_free(struct takeover *t)
{
    g_free(t->call_id);
    g_free(t->dead);
    g_array_free(t->waiters, TRUE);
    json_decref(t->rec);
    g_free(t->offer);
    g_free(t);
}

/* Tells the waiters; t goes once its last answer is in. */
static void finish(struct takeover *t, enum take result, const char *why)
{
    if (under_way && g_hash_table_lookup(under_way, t->call_id) == t)
        g_hash_table_remove(under_way, t->call_id);
    if (result == TAKE_FAILED && t->claimed) {
        /* a claim nobody acts on would keep every node from taking it */
        if (store_doc_remove(server.store, "call_takeovers", t->call_id) != STORE_OK)
            log_warn("call", "call=%s: its claim stays (store unavailable)", t->call_id);
    }
    if (result == TAKE_FAILED)
        log_warn("call", "call=%s of node=%s cannot be taken over now", t->call_id, t->dead);
    t->over = true;
    for (guint i = 0; i < t->waiters->len; i++) {
        struct waiter *w = &g_array_index(t->waiters, struct waiter, i);
        w->done(result, why, w->ud);
    }
    g_array_set_size(t->waiters, 0);
    if (t->out == 0)
        takeover_free(t);
}

/* An answer came: false if t was told meanwhile (then freed with its
 * last answer). */
static bool answered(struct takeover *t)
{
    t->out--;
    if (!t->over)
        return true;
    if (t->out == 0)
        takeover_free(t);
    return false;
}

/* The devices of the call's people are known: held here from now on. */
static void adopt(struct takeover *t)
{
    const char *why = NULL;
    if (call_adopt(t->call_id, t->rec, t->offer, &why) != 0) {
        finish(t, GONE, why ? why : "the call was held by a server that is gone");
        return;
    }
    char *key = g_strconcat("callnode:", t->call_id, NULL);
    if (store_kv_set(server.store, key, bus_node(), clock_now_ms() + CALLNODE_TTL_MS) != STORE_OK)
        log_warn("call", "call=%s cannot record its new node", t->call_id);
    g_free(key);
    call_owner_note(t->call_id, bus_node());
    finish(t, TAKEN, NULL);
}

static void on_devices(void *ud)
{
    struct takeover *t = ud;
    if (answered(t))
        adopt(t);
}

/* The record and the offer are in: the devices of the call's people are
 * read, then it is adopted. */
static void read_in(struct takeover *t)
{
    if (t->read_rc != STORE_OK) {
        finish(t, TAKE_FAILED, "store unavailable");
        return;
    }
    if (!t->rec) {
        finish(t, GONE, "no such call");
        return;
    }
    GPtrArray *users = g_ptr_array_new_with_free_func(g_free);
    call_adopt_users(t->rec, users);
    t->out++;
    bool later = presence_prefetch_later((const char *const *)users->pdata, (int)users->len,
                                         on_devices, t);
    g_ptr_array_free(users, TRUE);
    if (!later) {
        t->out--;
        adopt(t);
    }
}

/* The record's answer or the offer's (a call record is an object, a
 * kept value a string). */
static void on_read(int rc, const struct store_docs *d, void *ud)
{
    struct takeover *t = ud;
    if (!answered(t))
        return;
    json_t *doc = rc == STORE_OK && d->n == 1 ? d->docs[0] : NULL;
    if (rc != STORE_OK)
        t->read_rc = rc;
    else if (json_is_object(doc))
        t->rec = json_incref(doc);
    else if (json_is_string(doc))
        t->offer = g_strdup(json_string_value(doc));
    if (t->out == 0)
        read_in(t);
}

/* Claimed before: by a node taking it over, or one that ended it. */
static void on_claim_held(int rc, const struct store_docs *d, void *ud)
{
    struct takeover *t = ud;
    if (!answered(t))
        return;
    json_t *rec = rc == STORE_OK && d->n == 1 ? d->docs[0] : NULL;
    if (g_strcmp0(jx_str(rec, "state"), "ended") == 0) {
        finish(t, GONE, "the call is over");
        return;
    }
    call_owner_note(t->call_id, NULL); /* its new node is read afresh */
    finish(t, TAKEN_ELSEWHERE, NULL);
}

static void on_claimed(int rc, int64_t n, void *ud)
{
    (void)n;
    struct takeover *t = ud;
    if (!answered(t))
        return;
    const char *ids[] = {t->call_id};
    if (rc == STORE_ECONFLICT) {
        t->out++;
        if (store_docs_get_later(server.store, "calls", ids, 1, on_claim_held, t) != STORE_OK) {
            t->out--;
            finish(t, TAKE_FAILED, "store unavailable");
        }
        return;
    }
    if (rc != STORE_OK) {
        finish(t, TAKE_FAILED, "store unavailable");
        return;
    }
    t->claimed = true;
    char *key = g_strconcat("calloffer:", t->call_id, NULL); /* kept while it may ring */
    const char *keys[] = {key};
    t->out += 2;
    if (store_docs_get_later(server.store, "calls", ids, 1, on_read, t) != STORE_OK) {
        t->out--;
        t->read_rc = STORE_EIO;
    }
    if (store_kv_get_later(server.store, keys, 1, on_read, t) != STORE_OK) {
        t->out--;
        t->read_rc = STORE_EIO;
    }
    g_free(key);
    if (t->out == 0)
        read_in(t);
}

void call_take_over(const char *call_id, const char *dead, take_cb done, void *ud)
{
    struct takeover *t = under_way ? g_hash_table_lookup(under_way, call_id) : NULL;
    if (t) {
        g_array_append_val(t->waiters, ((struct waiter){done, ud}));
        return;
    }
    if (call_known(call_id)) {
        done(TAKEN, NULL, ud);
        return;
    }
    if (!under_way) {
        done(TAKE_FAILED, "the server is stopping", ud);
        return;
    }
    t = g_new0(struct takeover, 1);
    t->call_id = g_strdup(call_id);
    t->dead = g_strdup(dead);
    t->waiters = g_array_new(FALSE, FALSE, sizeof(struct waiter));
    g_array_append_val(t->waiters, ((struct waiter){done, ud}));
    g_hash_table_insert(under_way, t->call_id, t);
    json_t *claim = json_pack("{s:s, s:s, s:I}", "node", bus_node(), "from", dead, "at",
                              (json_int_t)clock_now_ms());
    t->out = 1;
    int rc = store_doc_create_later(server.store, "call_takeovers", call_id, claim, on_claimed, t);
    json_decref(claim);
    if (rc != STORE_OK) {
        t->out = 0;
        finish(t, TAKE_FAILED, "store unavailable");
    }
}

int call_takeover_under_way(const char *call_id)
{
    return under_way && g_hash_table_contains(under_way, call_id);
}

/* ---------- the sweep ----------
 *
 * Calls left open by a node that died and that nobody took over: the first
 * node alive takes over at once those whose node is known (so that a call
 * still ringing rings on, and its devices hear how it ends), and ends
 * (failed) those nobody can say where they were held once they have been
 * seen so for the grace period, looking every cluster_dead_s. The walk is
 * run against a replay of its reads (records/store_replay.h), run again
 * once they are in, so that it does not wait either. */

static GHashTable *orphans; /* call id -> int64_t* first seen orphaned (ms) */
static guint sweep_source;
static int64_t grace;
static struct sweep *sweeping; /* its reads are out */

#define SWEEP_RUNS_MAX 6 /* runs of a sweep before its reads are waited for */

struct sweep {
    int64_t now;
    GPtrArray *adopt; /* call id, its dead node, ...: to take over */
    struct store_replay *rp;
};

static void sweep_free(struct sweep *w)
{
    store_replay_free(w->rp);
    g_ptr_array_free(w->adopt, TRUE);
    g_free(w);
}

static bool keep_open(const char *call_id, void *ud)
{
    struct sweep *w = ud;
    if (call_known(call_id) || call_takeover_under_way(call_id)) {
        g_hash_table_remove(orphans, call_id);
        return true;
    }
    const char *owner = call_owner_of(call_id);
    if (owner && !cluster_node_alive(owner)) {
        call_owner_note(call_id, NULL); /* taken over since? read it afresh */
        owner = call_owner_of(call_id);
    }
    bool held = owner && cluster_node_alive(owner);
    json_t *claim = NULL;
    int claimed = held ? STORE_OK : store_doc_get(server.store, "call_takeovers", call_id, &claim);
    json_decref(claim);
    if (w->rp && store_replay_sent(w->rp) > 0)
        return true; /* a read is out: this run is thrown away */
    if (held || claimed == STORE_OK) {
        g_hash_table_remove(orphans, call_id);
        return true;
    }
    if (owner) { /* its node is dead: taken over once the walk is done */
        g_ptr_array_add(w->adopt, g_strdup(call_id));
        g_ptr_array_add(w->adopt, g_strdup(owner));
        return true;
    }
    int64_t *first = g_hash_table_lookup(orphans, call_id);
    if (!first) {
        first = g_new(int64_t, 1);
        *first = w->now;
        g_hash_table_insert(orphans, g_strdup(call_id), first);
    }
    if (w->now - *first < grace)
        return true;
    g_hash_table_remove(orphans, call_id);
    return false;
}

static void on_swept_take(enum take t, const char *why, void *ud)
{
    char *call_id = ud;
    if (t == GONE)
        log_info("call", "call=%s held by a server that is gone: %s", call_id, why);
    g_free(call_id);
}

static void sweep_run(struct sweep *w);

static void on_sweep_reads(void *ud)
{
    if (sweeping == ud)
        sweep_run(sweeping);
}

/* One run of the walk; once it lacked no read, the calls of dead nodes
 * are taken over. */
static void sweep_run(struct sweep *w)
{
    if (w->rp)
        store_replay_begin(w->rp);
    int n = 0;
    int rc = calls_recover(server.store, w->now, keep_open, w, &n);
    if (w->rp && store_replay_end(w->rp) > 0) {
        g_ptr_array_set_size(w->adopt, 0);
        store_replay_rerun(w->rp, SWEEP_RUNS_MAX, on_sweep_reads, w);
        return;
    }
    sweeping = NULL;
    if (rc == STORE_OK && n)
        log_info("call", "%d call(s) of a server that is gone ended as failed", n);
    for (guint i = 0; i + 1 < w->adopt->len; i += 2) {
        const char *call_id = g_ptr_array_index(w->adopt, i);
        call_take_over(call_id, g_ptr_array_index(w->adopt, i + 1), on_swept_take,
                       g_strdup(call_id));
    }
    sweep_free(w);
}

static gboolean on_sweep(gpointer ud)
{
    (void)ud;
    if (sweeping || !cluster_is_first())
        return G_SOURCE_CONTINUE;
    sweeping = g_new0(struct sweep, 1);
    sweeping->now = clock_now_ms();
    sweeping->adopt = g_ptr_array_new_with_free_func(g_free);
    sweeping->rp = store_replay_new(server.store);
    sweep_run(sweeping);
    return G_SOURCE_CONTINUE;
}

void call_takeover_init(int sweep_s, int64_t grace_ms)
{
    under_way = g_hash_table_new(g_str_hash, g_str_equal);
    orphans = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    grace = grace_ms;
    sweep_source = g_timeout_add_seconds((guint)sweep_s, on_sweep, NULL);
}

void call_takeover_shutdown(void)
{
    g_clear_handle_id(&sweep_source, g_source_remove);
    g_clear_pointer(&sweeping, sweep_free);
    g_clear_pointer(&orphans, g_hash_table_destroy);
    if (!under_way)
        return;
    /* takeovers still out are told they failed; each goes with its last
     * answer (the store and the cluster answer what they still owe as
     * they close) */
    GHashTable *u = under_way;
    under_way = NULL;
    GList *all = g_hash_table_get_values(u);
    g_hash_table_destroy(u);
    for (GList *l = all; l; l = l->next)
        finish(l->data, TAKE_FAILED, "the server is stopping");
    g_list_free(all);
}
