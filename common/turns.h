/* Turns: work that runs one at a time per key, in the order it was added
 * (an enterprise's commitment filings, a user's push-token operations):
 * each item reads what the one before it wrote. Main loop only. */
#ifndef YJT_TURNS_H
#define YJT_TURNS_H

#include <stdbool.h>

struct turns;

struct turns *turns_new(void);
/* Frees t; items still queued are dropped without being started. */
void turns_free(struct turns *t);
/* Items of one key that may be queued (the one under way included). */
#define TURNS_MAX 64
/* Adds op under key: start(op) at once if no item of key is under way,
 * else once the ones before it are done. False, op not taken (start is
 * never called), when TURNS_MAX items of key are queued already. */
bool turns_add(struct turns *t, const char *key, void (*start)(void *op), void *op);
/* The item under way of key is done: the next one of key starts (inside
 * this call). */
void turns_done(struct turns *t, const char *key);

#endif
