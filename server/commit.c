/* Group commit of the store's write batches (see commit.h). */
#include "server/commit.h"

#include "common/log.h"
#include "server/conn.h"
#include "server/server.h"

#include <glib.h>
#include <unistd.h>

static bool dirty;
static guint due; /* the idle or timeout source that commits the open batch */

static gboolean on_due(gpointer data)
{
    (void)data;
    due = 0;
    server_commit();
    return G_SOURCE_REMOVE;
}

/* A batch opened: commit it at the end of this turn of the loop, or
 * commit_window_ms later if a window is set. */
static void on_dirty(void *ud)
{
    (void)ud;
    dirty = true;
    if (due)
        return;
    if (server.cfg.commit_window_ms > 0)
        due = g_timeout_add(server.cfg.commit_window_ms, on_due, NULL);
    else
        due = g_idle_add_full(G_PRIORITY_DEFAULT, on_due, NULL, NULL);
}

void commit_init(void)
{
    store_set_batching(server.store, true, on_dirty, NULL);
}

bool commit_pending(void)
{
    return dirty;
}

void server_commit(void)
{
    if (!dirty)
        return;
    dirty = false;
    if (due)
        g_source_remove(due);
    due = 0;
    if (store_commit(server.store) != STORE_OK) {
        log_error("store", "commit failed: stopping so that nothing unrecorded is announced");
        _exit(1);
    }
    conn_wake_deferred();
}

void commit_shutdown(void)
{
    server_commit();
    if (due)
        g_source_remove(due);
    due = 0;
}
