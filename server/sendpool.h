/* Parallel sends: when a flush releases many connections at once (the
 * deliveries of a fan-out to thousands of users), their bytes are written
 * by several threads together instead of one send after another on the
 * loop. The loop waits meanwhile (fork and join), so nothing else writes
 * to those sockets; the threads get file descriptors and bytes, never a
 * connection, and what a socket did not take goes back to the loop. */
#ifndef YJT_SENDPOOL_H
#define YJT_SENDPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct send_job {
    int fd;
    const unsigned char *buf;
    size_t len;
    size_t sent; /* out: bytes the socket took */
    int err;     /* out: errno of a failed send, else 0 (EAGAIN: full) */
};

/* Starts threads - 1 writers (the loop is the last one); 1 or less: none. */
void sendpool_init(int threads);
/* How many threads write a batch (1 without a pool). */
int sendpool_threads(void);
/* Writes every job once, without blocking, and returns when all are done. */
void sendpool_run(struct send_job *jobs, size_t n);
/* The same in two halves, so that the loop can go on with other work
 * while the writers start on the jobs: sendpool_start() hands them out
 * (a batch too small to share is written at once), sendpool_finish()
 * writes what nobody took yet and returns when all are done. The jobs,
 * their bytes and their sockets are the writers' in between: the loop
 * must not touch them, and must finish before it starts another batch. */
void sendpool_start(struct send_job *jobs, size_t n);
void sendpool_finish(void);
/* True when no batch is in flight, or the writers have written it all
 * (sendpool_finish() would not wait). */
bool sendpool_idle(void);
/* Stops the writers. */
void sendpool_shutdown(void);

#endif
