/* Parallel sends: when a flush releases many connections at once (the
 * deliveries of a fan-out to thousands of users), their bytes are written
 * by several threads together instead of one send after another on the
 * loop. The loop waits meanwhile (fork and join), so nothing else writes
 * to those sockets; the threads get file descriptors and bytes, never a
 * connection, and what a socket did not take goes back to the loop. */
#ifndef YJT_SENDPOOL_H
#define YJT_SENDPOOL_H

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
/* Stops the writers. */
void sendpool_shutdown(void);

#endif
