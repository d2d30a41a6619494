/*
 * load.h: what the parts of yjt-load share.
 *
 * yjt-load is the WebSocket connection load generator for yjtd (see
 * main.c for the whole picture).  It is split by process role:
 *
 *   main.c    options, loopback and limit checks, the layout of processes
 *             and source addresses, forking the workers and driving the
 *             phases (connect, hold, close) from the parent;
 *   worker.c  one worker process: a libwebsockets context that opens, logs
 *             in, holds and closes its share of the connections and reports
 *             back over a pipe;
 *   report.c  the parent's side of those pipes, the server's RSS, and the
 *             merged JSON line and readable summary at the end.
 *
 * This header holds only what more than one of those files needs: the
 * configuration, the limits, the per-worker bookkeeping the parent keeps,
 * and the load_ functions that cross file boundaries.
 */

#ifndef YJT_LOAD_H
#define YJT_LOAD_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define MAX_CONNS_PER_PROC 19000 /* a process may hold 20,000 open files */
#define FD_HEADROOM 200          /* files a worker needs besides its sockets */
#define MAX_PROCS 64
#define MAX_SOURCES 254
#define MAX_ARG_STRING 256
#define MAX_PORTS 16 /* --port given more than once: several nodes */
#define CLOSE_GRACE_NS (5ull * 1000000000ull)
#define NS_PER_S 1000000000ull

/* ------------------------------------------------------------------------ */
/* configuration                                                             */

struct load_config {
    const char *host;     /* as given on the command line */
    char address[64];     /* numeric address we connect to */
    int port;             /* the first --port */
    int ports[MAX_PORTS]; /* every --port: connection g goes to ports[g % nports] */
    int nports;
    const char *path;
    int conns;
    int procs;
    int sources;
    double rate;  /* new connection attempts per second per process */
    int inflight; /* max unsettled connections per process */
    double hold_s;
    double timeout_s;
    const char *user;
    const char *password;
    const char *token;
    int users;            /* > 0: connection g logs in as USER<g % users> */
    const char *push_log; /* record push events to PUSH_LOG.<proc> */
    const char *feed;     /* after login, follow this enterprise's 3D feed */
    double feed_hz;       /* its max_hz */
    bool no_auth;
    bool raw_rx; /* read logged-in connections without lws (rawrx.c) */
    bool token_from_login;
    bool tls;
    bool ipv6;
    int verbose;
    long server_pid;            /* 0 = not given */
    long long baseline_rss_kib; /* -1 = not given */
};

/* Source addresses 127.0.0.2 .. 127.0.0.(1+sources), filled by main.c. */
extern char load_source_names[MAX_SOURCES][24];

static inline uint64_t load_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* worker process (worker.c)                                                 */

/*
 * Runs one worker process's connections: global indexes first_global ..
 * first_global+count-1 (proc_index -1: the one --token-from-login connection,
 * whose token comes back in the report).  Writes "S <ready>\n" to up_fd once
 * every connection settled and one JSON report line at the end; any read on
 * the non-blocking down_fd (a command or EOF) starts the close phase.
 * Returns the process exit status.
 */
int load_run_worker(const struct load_config *cfg, int proc_index, int first_global, int count,
                    uint64_t connect_deadline_ns, uint64_t final_deadline_ns, int up_fd,
                    int down_fd);

/* ------------------------------------------------------------------------ */
/* parent process (report.c)                                                 */

/* The parent's view of one worker process. */
struct load_child {
    pid_t pid;
    int up_fd;
    int down_fd;
    bool settled;
    bool eof;
    int ready_at_settle;
    char *buf;
    size_t len;
    size_t cap;
    json_t *report;
};

/* What the parent saw while driving the phases, for the final report. */
struct load_outcome {
    uint64_t hold_start; /* 0 = the hold never started */
    uint64_t hold_end;
    long long rss_before; /* -1 = not read */
    long long rss_after;
    bool killed; /* --timeout reached, workers killed */
    bool interrupted;
    bool hold_truncated;
};

/* The server's VmRSS in KiB, or -1 if pid <= 0 or it cannot be read. */
long long load_read_rss_kib(long pid);

/* Reads what is available from a worker's up pipe and takes its lines. */
void load_child_read(struct load_child *ch);

/*
 * Merges the workers' reports, prints the JSON line on stdout and the
 * summary on stderr, and returns true if every connection succeeded.
 */
bool load_report(const struct load_config *cfg, const struct load_child *kids,
                 const struct load_outcome *out);

#endif /* YJT_LOAD_H */
