/* Turns (see turns.h): per key, a queue whose head is under way. */
#include "common/turns.h"

#include <glib.h>

struct turn {
    void (*start)(void *op);
    void *op;
};

struct turns {
    GHashTable *queues; /* key -> GQueue of struct turn*, the head under way */
};

static void queue_free(gpointer p)
{
    g_queue_free_full(p, g_free);
}

struct turns *turns_new(void)
{
    struct turns *t = g_new(struct turns, 1);
    t->queues = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, queue_free);
    return t;
}

void turns_free(struct turns *t)
{
    if (!t)
        return;
    g_hash_table_destroy(t->queues);
    g_free(t);
}

bool turns_add(struct turns *t, const char *key, void (*start)(void *op), void *op)
{
    GQueue *q = g_hash_table_lookup(t->queues, key);
    if (q && g_queue_get_length(q) >= TURNS_MAX)
        return false;
    struct turn *x = g_new(struct turn, 1);
    *x = (struct turn){start, op};
    if (q) { /* behind the one under way */
        g_queue_push_tail(q, x);
        return true;
    }
    q = g_queue_new();
    g_queue_push_tail(q, x);
    g_hash_table_insert(t->queues, g_strdup(key), q);
    start(op);
    return true;
}

void turns_done(struct turns *t, const char *key)
{
    GQueue *q = g_hash_table_lookup(t->queues, key);
    if (!q)
        return;
    g_free(g_queue_pop_head(q));
    struct turn *next = g_queue_peek_head(q);
    if (!next) {
        g_hash_table_remove(t->queues, key);
        return;
    }
    next->start(next->op);
}
