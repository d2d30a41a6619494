/*
 * cli.h: what the load tools' parent processes (main.c of yjt-load,
 * callbench.c of yjt-callbench) and worker processes (worker.c,
 * callworker.c) share: usage errors named after the running tool, checked
 * numeric options, raising the open-file limit, catching SIGINT/SIGTERM,
 * forking the worker processes with their two pipes, and writing a whole
 * buffer to a pipe.
 */

#ifndef YJT_LOAD_CLI_H
#define YJT_LOAD_CLI_H

#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>

struct load_child;

/* The tool's name, the prefix of its messages ("yjt-load"); main sets it. */
extern const char *cli_prog;

/* Set by SIGINT or SIGTERM once cli_catch_signals() ran. */
extern volatile sig_atomic_t cli_interrupted;

/* Prints "<prog>: <message> (see --help)" on stderr and exits 2. */
void cli_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The number s of option opt, which must lie in lo..hi (else a usage
 * error). */
double cli_number(const char *opt, const char *s, double lo, double hi);

/* Raises the soft open-file limit to the hard one; returns the limit in
 * force (1024 if it cannot be read). */
rlim_t cli_raise_nofile(void);

/* Ignores SIGPIPE and makes SIGINT and SIGTERM set cli_interrupted. */
void cli_catch_signals(void);

/*
 * Forks procs worker processes and fills kids[0..procs-1] (pid, the read
 * end of the worker's up pipe, the write end of its down pipe).  The total
 * units of work (connections, pairs) are split evenly in index order;
 * worker p runs run(ud, p, first, count, up_fd, down_fd) with down_fd
 * non-blocking, SIGINT ignored and SIGTERM at its default, and exits with
 * what it returns.  Returns 0, or -1 (with a message) if a pipe or fork
 * failed.
 */
int cli_fork_workers(struct load_child *kids, int procs, int total,
                     int (*run)(void *ud, int proc, int first, int count, int up_fd, int down_fd),
                     void *ud);

/* Writes all of data to fd, retrying on EINTR; gives up silently if the
 * reader is gone. */
void cli_write_all(int fd, const char *data, size_t len);

#endif
