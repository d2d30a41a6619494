/* Group commit of the store's write batches (see commit.h). */
#include "server/commit.h"

#include "common/log.h"
#include "server/server.h"

#include <glib.h>
#include <unistd.h>

static bool dirty;
static guint idle;

static gboolean on_idle(gpointer data)
{
    (void)data;
    idle = 0;
    server_commit();
    return G_SOURCE_REMOVE;
}

/* A batch opened: commit it at the end of this turn of the loop, or
 * earlier if something is about to be sent. */
static void on_dirty(void *ud)
{
    (void)ud;
    dirty = true;
    if (!idle)
        idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_idle, NULL, NULL);
}

void commit_init(void)
{
    store_set_batching(server.store, true, on_dirty, NULL);
}

void server_commit(void)
{
    if (!dirty)
        return;
    dirty = false;
    if (store_commit(server.store) != STORE_OK) {
        log_error("store", "commit failed: stopping so that nothing unrecorded is announced");
        _exit(1);
    }
}

void commit_shutdown(void)
{
    if (idle)
        g_source_remove(idle);
    idle = 0;
    server_commit();
}
