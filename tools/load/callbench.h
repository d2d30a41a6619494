/*
 * callbench.h: what the parts of yjt-callbench share.
 *
 * yjt-callbench measures call set-up through yjtd: pairs of WebSocket
 * connections (a gov caller, a corp callee) run invite -> incoming ->
 * accept -> accepted at a paced rate, hold the call, hang up and start
 * again.  It is split like yjt-load:
 *
 *   callbench.c  options, forking the worker processes, starting them
 *                together, the server's CPU, RSS and disk writes, the merged
 *                JSON report;
 *   callworker.c one worker process: libwebsockets on a libuv (epoll) loop,
 *                logging the pairs in, the pacer, the end of the run;
 *   calls.c      the call flow of a pair (calls.h: what the two share);
 *   sdp.c        realistic SDP offer and answer texts for the messages;
 *   cli.c        (shared with yjt-load) usage errors, numeric options, the
 *                open-file limit, signals, forking the workers.
 *
 * The parent reads the workers' pipes with load_child_read() from report.c
 * (the same "S <ready>" line and final JSON line as yjt-load's workers).
 */

#ifndef YJT_CALLBENCH_H
#define YJT_CALLBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CB_MAX_PROCS 16
#define CB_MAX_SOURCES 254
#define CB_MAX_PAIRS 9000 /* 2 sockets each: stays under 20,000 open files */
#define CB_MAX_STRING 128

struct cb_config {
    const char *host; /* as given */
    char address[64]; /* numeric loopback address we connect to */
    int port;
    int callee_port; /* callees connect here (another node of a cluster); 0 = port */
    const char *path;
    int pairs;
    int procs;
    int sources;
    double rate;       /* set-ups per second, all workers together */
    double concurrent; /* established calls wanted: sets hold_s = concurrent / rate */
    double hold_s;     /* how long an answered call stays up */
    double warmup_s;   /* set-ups started before this are not measured */
    double duration_s; /* measured time after the warm-up */
    double setup_timeout_s;
    double timeout_s;     /* hard limit for the whole run */
    const char *prefix;   /* users <prefix>g<i> (caller) and <prefix>c<i> (callee) */
    const char *password; /* all of them share it */
    int offer_bytes;      /* approximate SDP sizes */
    int answer_bytes;
    int verbose;
    long server_pid; /* 0 = not given */
};

/* Loopback source addresses 127.0.0.2 .. 127.0.0.(1+sources). */
extern char cb_source_names[CB_MAX_SOURCES][24];

/*
 * One worker process: pairs first_pair .. first_pair+count-1, at rate
 * per_proc_rate.  Writes "S <ready pairs>\n" to up_fd once every connection
 * logged in (or failed), waits for "G <start ns>\n" on down_fd (the
 * monotonic time at which the paced set-ups begin), runs, and writes one
 * JSON line with its counts and latency samples.  Any other byte or EOF on
 * down_fd stops it early.  Returns the exit status.
 */
int cb_run_worker(const struct cb_config *cfg, int proc_index, int first_pair, int count,
                  double per_proc_rate, int up_fd, int down_fd);

/*
 * Writes a WebRTC-style SDP (offer or answer) of about target bytes,
 * already escaped for a JSON string (CRLF as \r\n), varied by seed.
 * Returns the escaped length, or 0 if cap is too small.
 */
size_t cb_sdp_json(char *out, size_t cap, bool offer, int target, uint64_t seed);

/* Length of the same SDP as plain text (CRLF as two bytes). */
size_t cb_sdp_plain_len(bool offer, int target);

#endif /* YJT_CALLBENCH_H */
