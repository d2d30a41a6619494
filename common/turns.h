/* Turns: work that runs one at a time per key, in the order it was added
 * (an enterprise's commitment filings, a user's push-token operations):
 * each item reads what the one before it wrote. Main loop only. */
#ifndef YJT_TURNS_H
#define YJT_TURNS_H

struct turns;

struct turns *turns_new(void);
/* Frees t; items still queued are dropped without being started. */
void turns_free(struct turns *t);
/* Adds op under key: start(op) at once if no item of key is under way,
 * else once the ones before it are done. */
void turns_add(struct turns *t, const char *key, void (*start)(void *op), void *op);
/* The item under way of key is done: the next one of key starts (inside
 * this call). */
void turns_done(struct turns *t, const char *key);

#endif
